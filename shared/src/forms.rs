//! Template parameter forms. A Backstage template's `spec.parameters` is one
//! JSON Schema or a list of them (one wizard page each) with `ui:*` hints.
//! This crate turns a page into the fields to show for the current answers
//! (conditional fields from `dependencies` and `if`/`then`/`else` included)
//! and validates answers. The browser uses it for live feedback and the
//! server for the authoritative check, so both apply exactly the same rules.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One wizard page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// The page title (`title`, else "Step n").
    pub title: String,
    /// The page description, if any.
    pub description: Option<String>,
    /// The page's JSON Schema (an object schema).
    pub schema: Value,
}

/// The pages of `spec.parameters` (a list, or a single schema).
pub fn pages(parameters: &Value) -> Vec<Page> {
    let list: Vec<&Value> = match parameters {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![parameters],
        _ => Vec::new(),
    };
    list.into_iter()
        .enumerate()
        .map(|(i, schema)| Page {
            title: schema
                .get("title")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| format!("Step {}", i + 1)),
            description: schema
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned),
            schema: schema.clone(),
        })
        .collect()
}

/// How a field is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Widget {
    /// A one-line text input.
    Text,
    /// A multi-line text input (`ui:widget: textarea`, or `ui:options.rows`).
    TextArea,
    /// A masked input whose value is a secret (`ui:widget: password`, `ui:field: Secret`).
    Password,
    /// A number input; `integer` for whole numbers.
    Number {
        /// Whole numbers only.
        integer: bool,
    },
    /// A checkbox.
    Checkbox,
    /// A drop-down of (value, label).
    Select(Vec<(Value, String)>),
    /// Radio buttons of (value, label) (`ui:widget: radio`).
    Radio(Vec<(Value, String)>),
    /// A list of strings (one per line in the browser) or of enum values.
    List {
        /// Allowed values, when the items are an enum (checkboxes).
        options: Vec<(Value, String)>,
    },
    /// A nested object, shown as a group of fields.
    Object,
    /// Picks a Group the user belongs to (`ui:field: OwnerPicker`).
    OwnerPicker,
    /// Picks a catalog entity of the given kinds (`ui:field: EntityPicker`).
    EntityPicker {
        /// Lowercase kinds to offer (empty: any).
        kinds: Vec<String>,
    },
    /// A repository location on an allowed host (`ui:field: RepoUrlPicker`).
    RepoUrlPicker {
        /// Hosts the user may choose from.
        allowed_hosts: Vec<String>,
    },
}

/// A field of a page, for the current answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    /// The property name.
    pub name: String,
    /// Its path from the page root (`db.size`).
    pub path: String,
    /// The label (`title`, else the name).
    pub label: String,
    /// `description` and `ui:help`, joined.
    pub help: Option<String>,
    /// Whether an answer is required.
    pub required: bool,
    /// How to show it.
    pub widget: Widget,
    /// The property's schema.
    pub schema: Value,
    /// Nested fields (for objects).
    pub children: Vec<Field>,
    /// `ui:autofocus`.
    pub autofocus: bool,
}

/// A validation problem at `path`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Dotted path of the field (`name`, `db.size`, `tags[1]`).
    pub path: String,
    /// What is wrong, for a person.
    pub message: String,
}

fn str_of<'a>(schema: &'a Value, key: &str) -> Option<&'a str> {
    schema.get(key).and_then(Value::as_str)
}

fn ui_option<'a>(schema: &'a Value, key: &str) -> Option<&'a Value> {
    schema.get("ui:options").and_then(|o| o.get(key))
}

fn types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn options(schema: &Value) -> Vec<(Value, String)> {
    let values = schema
        .get("enum")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let names = schema.get("enumNames").and_then(Value::as_array);
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let label = names
                .and_then(|n| n.get(i))
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| display(&v));
            (v, label)
        })
        .collect()
}

/// A value as a person would read it.
pub fn display(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn widget_for(schema: &Value) -> Widget {
    match str_of(schema, "ui:field") {
        Some("OwnerPicker") => return Widget::OwnerPicker,
        Some("EntityPicker") | Some("MyGroupsPicker") => {
            let kinds = ui_option(schema, "catalogFilter")
                .and_then(|f| f.get("kind"))
                .map(|k| match k {
                    Value::String(s) => vec![s.to_ascii_lowercase()],
                    Value::Array(list) => list
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_ascii_lowercase)
                        .collect(),
                    _ => Vec::new(),
                })
                .or_else(|| {
                    ui_option(schema, "allowedKinds").map(|k| {
                        string_list(Some(k))
                            .iter()
                            .map(|s| s.to_ascii_lowercase())
                            .collect()
                    })
                })
                .unwrap_or_default();
            return Widget::EntityPicker { kinds };
        }
        Some("RepoUrlPicker") => {
            let allowed_hosts = string_list(ui_option(schema, "allowedHosts"));
            return Widget::RepoUrlPicker { allowed_hosts };
        }
        Some("Secret") => return Widget::Password,
        _ => {}
    }
    let widget = str_of(schema, "ui:widget");
    if widget == Some("password") {
        return Widget::Password;
    }
    let kinds = types(schema);
    if schema.get("enum").is_some() {
        return if widget == Some("radio") {
            Widget::Radio(options(schema))
        } else {
            Widget::Select(options(schema))
        };
    }
    match kinds.first().copied() {
        Some("boolean") => Widget::Checkbox,
        Some("integer") => Widget::Number { integer: true },
        Some("number") => Widget::Number { integer: false },
        Some("array") => Widget::List {
            options: schema.get("items").map(options).unwrap_or_default(),
        },
        Some("object") => Widget::Object,
        _ if widget == Some("textarea") || ui_option(schema, "rows").is_some() => Widget::TextArea,
        _ => Widget::Text,
    }
}

/// Whether `value` counts as an answer (RJSF treats "" as unanswered).
fn answered(value: Option<&Value>) -> bool {
    !matches!(value, None | Some(Value::Null)) && value != Some(&Value::String(String::new()))
}

/// The object schema in effect for `values`: the base `properties` and
/// `required`, plus whatever `dependencies` and `if`/`then`/`else` (also
/// inside `allOf`) bring in for these answers.
pub fn effective(schema: &Value, values: &Value) -> (Map<String, Value>, Vec<String>) {
    let mut properties = schema
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut required: Vec<String> = string_list(schema.get("required"));
    let merge = |props: &mut Map<String, Value>, req: &mut Vec<String>, extra: &Value| {
        if let Some(p) = extra.get("properties").and_then(Value::as_object) {
            for (k, v) in p {
                // A branch that only narrows an existing field (the selector's enum) adds nothing to show.
                props.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        for r in string_list(extra.get("required")) {
            if !req.contains(&r) {
                req.push(r);
            }
        }
    };
    if let Some(deps) = schema.get("dependencies").and_then(Value::as_object) {
        for (key, dep) in deps {
            if !answered(values.get(key)) {
                continue;
            }
            match dep {
                Value::Array(names) => {
                    for n in names.iter().filter_map(Value::as_str) {
                        if !required.iter().any(|r| r == n) {
                            required.push(n.to_owned());
                        }
                    }
                }
                Value::Object(_) => {
                    if let Some(branches) = dep.get("oneOf").and_then(Value::as_array) {
                        if let Some(branch) = branches.iter().find(|b| branch_matches(b, values)) {
                            merge(&mut properties, &mut required, branch);
                        }
                    } else {
                        merge(&mut properties, &mut required, dep);
                    }
                }
                _ => {}
            }
        }
    }
    let mut conditionals: Vec<&Value> = vec![schema];
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        conditionals.extend(all.iter());
    }
    for c in conditionals {
        if let Some(condition) = c.get("if") {
            let holds = condition_holds(condition, values);
            let chosen = if holds { c.get("then") } else { c.get("else") };
            if let Some(chosen) = chosen {
                merge(&mut properties, &mut required, chosen);
            }
        }
    }
    (properties, required)
}

/// A `oneOf` branch of a dependency matches when every property it
/// constrains with `enum`/`const` that also has an answer matches it.
fn branch_matches(branch: &Value, values: &Value) -> bool {
    let Some(props) = branch.get("properties").and_then(Value::as_object) else {
        return false;
    };
    let mut constrained = false;
    for (key, schema) in props {
        if schema.get("enum").is_none() && schema.get("const").is_none() {
            continue;
        }
        constrained = true;
        let Some(value) = values.get(key) else {
            return false;
        };
        if !validate_value(schema, value, key).is_empty() {
            return false;
        }
    }
    constrained
}

/// An `if` schema holds when the answers it mentions validate against it.
fn condition_holds(condition: &Value, values: &Value) -> bool {
    let (props, required) = (
        condition
            .get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        string_list(condition.get("required")),
    );
    for r in &required {
        if !answered(values.get(r)) {
            return false;
        }
    }
    props.iter().all(|(key, schema)| match values.get(key) {
        Some(v) => validate_value(schema, v, key).is_empty(),
        None => true,
    })
}

/// A JSON list of strings (anything else is skipped).
pub fn string_list(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The fields of an object schema for the current answers, ordered by `ui:order`.
pub fn fields(schema: &Value, values: &Value) -> Vec<Field> {
    fields_at(schema, values, "")
}

fn fields_at(schema: &Value, values: &Value, prefix: &str) -> Vec<Field> {
    let (properties, required) = effective(schema, values);
    let order = string_list(schema.get("ui:order"));
    let mut names: Vec<&String> = properties.keys().collect();
    // ui:order first (with `*` standing for the rest), then authoring order.
    if !order.is_empty() {
        let rest_at = order.iter().position(|o| o == "*").unwrap_or(order.len());
        let rank = |n: &str| match order.iter().position(|o| o == n) {
            Some(i) if i < rest_at => (0, i),
            Some(i) => (2, i),
            None => (1, 0),
        };
        names.sort_by_key(|n| rank(n));
    }
    names
        .into_iter()
        .filter(|name| {
            let s = &properties[*name];
            str_of(s, "ui:widget") != Some("hidden") && s.get("ui:field") != Some(&Value::Null)
        })
        .map(|name| {
            let schema = properties[name].clone();
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            let help = [str_of(&schema, "description"), str_of(&schema, "ui:help")]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            let widget = widget_for(&schema);
            let children = if widget == Widget::Object {
                fields_at(&schema, values.get(name).unwrap_or(&Value::Null), &path)
            } else {
                Vec::new()
            };
            Field {
                label: str_of(&schema, "title").unwrap_or(name).to_owned(),
                help: (!help.is_empty()).then_some(help),
                required: required.iter().any(|r| r == name),
                autofocus: schema.get("ui:autofocus") == Some(&Value::Bool(true)),
                name: name.clone(),
                path,
                widget,
                schema,
                children,
            }
        })
        .collect()
}

/// Validates the answers to one page's object schema.
pub fn validate(schema: &Value, values: &Value) -> Vec<FieldError> {
    validate_object(schema, values, "")
}

/// Validates answers against every page; `values` holds all pages' answers.
pub fn validate_pages(parameters: &Value, values: &Value) -> Vec<FieldError> {
    pages(parameters)
        .iter()
        .flat_map(|p| validate(&p.schema, values))
        .collect()
}

/// Paths of every field whose answer is a secret (masked, sent apart, never stored).
pub fn secret_fields(parameters: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for page in pages(parameters) {
        collect_secret_fields(&page.schema, "", &mut out);
    }
    out
}

fn collect_secret_fields(schema: &Value, prefix: &str, out: &mut Vec<String>) {
    let mut all: Vec<&Map<String, Value>> = Vec::new();
    if let Some(p) = schema.get("properties").and_then(Value::as_object) {
        all.push(p);
    }
    // Conditional branches may add secret fields too.
    let mut branches: Vec<&Value> = Vec::new();
    if let Some(deps) = schema.get("dependencies").and_then(Value::as_object) {
        for dep in deps.values() {
            branches.push(dep);
            if let Some(one_of) = dep.get("oneOf").and_then(Value::as_array) {
                branches.extend(one_of.iter());
            }
        }
    }
    for key in ["then", "else"] {
        if let Some(b) = schema.get(key) {
            branches.push(b);
        }
    }
    if let Some(all_of) = schema.get("allOf").and_then(Value::as_array) {
        for a in all_of {
            for key in ["then", "else"] {
                if let Some(b) = a.get(key) {
                    branches.push(b);
                }
            }
        }
    }
    for b in branches {
        if let Some(p) = b.get("properties").and_then(Value::as_object) {
            all.push(p);
        }
    }
    for props in all {
        for (name, s) in props {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            if widget_for(s) == Widget::Password {
                if !out.contains(&path) {
                    out.push(path);
                }
            } else if types(s).first() == Some(&"object") {
                collect_secret_fields(s, &path, out);
            }
        }
    }
}

fn validate_object(schema: &Value, values: &Value, prefix: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let (properties, required) = effective(schema, values);
    let at = |name: &str| {
        if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}.{name}")
        }
    };
    for name in &required {
        if !answered(values.get(name)) {
            errors.push(FieldError {
                path: at(name),
                message: "is required".into(),
            });
        }
    }
    for (name, s) in &properties {
        if let Some(value) = values.get(name) {
            if !answered(Some(value)) {
                continue;
            }
            errors.extend(validate_value(s, value, &at(name)));
        }
    }
    errors
}

fn err(path: &str, message: impl Into<String>) -> Vec<FieldError> {
    vec![FieldError {
        path: path.to_owned(),
        message: message.into(),
    }]
}

/// Validates one value against its schema.
pub fn validate_value(schema: &Value, value: &Value, path: &str) -> Vec<FieldError> {
    if let Some(c) = schema.get("const") {
        if c != value {
            return err(path, format!("must be {}", display(c)));
        }
    }
    if let Some(choices) = schema.get("enum").and_then(Value::as_array) {
        if !choices.contains(value) {
            let labels: Vec<String> = options(schema).into_iter().map(|(_, l)| l).collect();
            return err(path, format!("must be one of: {}", labels.join(", ")));
        }
    }
    let kinds = types(schema);
    let type_ok = kinds.is_empty()
        || kinds.iter().any(|t| match *t {
            "string" => value.is_string(),
            "number" => value.is_number(),
            "integer" => value.as_f64().is_some_and(|n| n.fract() == 0.0),
            "boolean" => value.is_boolean(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            "null" => value.is_null(),
            _ => true,
        });
    if !type_ok {
        let wanted = match kinds.first().copied() {
            Some("integer") => "a whole number",
            Some("number") => "a number",
            Some("boolean") => "true or false",
            Some("array") => "a list",
            Some("object") => "a group of values",
            _ => "text",
        };
        return err(path, format!("must be {wanted}"));
    }
    match value {
        Value::String(s) => validate_string(schema, s, path),
        Value::Number(n) => validate_number(schema, n.as_f64().unwrap_or(0.0), path),
        Value::Array(items) => validate_array(schema, items, path),
        Value::Object(_) => validate_object(schema, value, path),
        _ => Vec::new(),
    }
}

fn validate_string(schema: &Value, s: &str, path: &str) -> Vec<FieldError> {
    let length = s.chars().count();
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
        if (length as u64) < min {
            return err(path, format!("must be at least {min} characters"));
        }
    }
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
        if length as u64 > max {
            return err(path, format!("must be at most {max} characters"));
        }
    }
    if let Some(pattern) = str_of(schema, "pattern") {
        match regex_lite::Regex::new(pattern) {
            Ok(re) if re.is_match(s) => {}
            Ok(_) => {
                let hint = ui_option(schema, "patternMessage")
                    .or_else(|| schema.get("ui:patternMessage"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("must match the pattern {pattern}"));
                return err(path, hint);
            }
            Err(_) => return err(path, "the template's pattern for this field is invalid"),
        }
    }
    match str_of(schema, "format") {
        Some("email") => {
            let ok = s
                .split_once('@')
                .is_some_and(|(a, b)| !a.is_empty() && b.contains('.') && !s.contains(' '));
            if !ok {
                return err(path, "must be an e-mail address");
            }
        }
        Some("uri") | Some("url") => {
            let ok = s
                .split_once("://")
                .is_some_and(|(scheme, rest)| !scheme.is_empty() && !rest.is_empty())
                && !s.contains(' ');
            if !ok {
                return err(path, "must be a URL like https://example.com");
            }
        }
        _ => {}
    }
    if schema.get("ui:field").and_then(Value::as_str) == Some("RepoUrlPicker") {
        return validate_repo_url(schema, s, path);
    }
    if let Widget::OwnerPicker | Widget::EntityPicker { .. } = widget_for(schema) {
        if let Err(message) = picker_ref(schema, s) {
            return err(path, message);
        }
    }
    if schema.get("ui:field").and_then(Value::as_str) == Some("EntityNamePicker")
        && !is_entity_name(s)
    {
        return err(
            path,
            "must be 1-63 letters and digits, separated by single -, _ or .",
        );
    }
    Vec::new()
}

/// The rule for Vault secret names (file names in the pod, part of an
/// annotation key): 1 to 40 lowercase letters, digits and single dashes,
/// starting with a letter. Shared by the server and the browser form.
pub fn secret_name_problem(name: &str) -> Option<&'static str> {
    let ok = (1..=40).contains(&name.len())
        && name.as_bytes()[0].is_ascii_lowercase()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--");
    (!ok).then_some(
        "Use 1 to 40 lowercase letters, digits and single dashes, starting with a letter (e.g. database).",
    )
}

/// The rule for the key names inside a secret (they become environment-style
/// `KEY=value` lines): letters, digits and `_`, not starting with a digit, at
/// most 128 characters. Shared by the server and the browser form.
pub fn secret_key_problem(key: &str) -> Option<&'static str> {
    let key = key.trim();
    let ok = !key.is_empty()
        && key.len() <= 128
        && !key.as_bytes()[0].is_ascii_digit()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    (!ok).then_some("Letters, digits and _, not starting with a digit (e.g. DATABASE_URL).")
}

/// The canonical reference (`kind:namespace/name`, lowercase) of an
/// `OwnerPicker` or `EntityPicker` answer, or why it is not one: the kind
/// (defaulted when the picker allows exactly one, `group` for an owner) must
/// be one the picker allows, and namespace and name must be entity names, so
/// an answer can never carry spaces, quotes, newlines or YAML. Shared by the
/// server (which then checks the entity exists) and the browser form.
pub fn picker_ref(schema: &Value, answer: &str) -> Result<String, String> {
    let kinds = match widget_for(schema) {
        Widget::OwnerPicker => vec!["group".to_owned()],
        Widget::EntityPicker { kinds } => kinds,
        _ => Vec::new(),
    };
    canonical_entity_ref(answer, &kinds)
}

/// [`picker_ref`] for a list of allowed lowercase kinds (empty: any kind).
pub fn canonical_entity_ref(answer: &str, kinds: &[String]) -> Result<String, String> {
    let shape = || {
        if kinds.len() == 1 {
            format!(
                "Choose an entry from the list (a reference like {}:default/name).",
                kinds[0]
            )
        } else {
            "Choose an entry from the list (a reference like kind:default/name).".to_owned()
        }
    };
    let (kind, rest) = match answer.split_once(':') {
        Some((k, r)) => (k.to_ascii_lowercase(), r),
        None if kinds.len() == 1 => (kinds[0].clone(), answer),
        None => return Err(shape()),
    };
    let (namespace, name) = rest.split_once('/').unwrap_or(("default", rest));
    let valid = !kind.is_empty()
        && kind.len() <= 63
        && kind.bytes().all(|b| b.is_ascii_lowercase())
        && is_entity_name(namespace)
        && is_entity_name(name);
    if !valid {
        return Err(shape());
    }
    if !kinds.is_empty() && !kinds.contains(&kind) {
        return Err(format!(
            "must be a {} from the catalog, not a {kind}",
            kinds.join(" or ")
        ));
    }
    Ok(format!(
        "{kind}:{}/{}",
        namespace.to_ascii_lowercase(),
        name.to_ascii_lowercase()
    ))
}

/// Percent-encodes `s` for a URL query value (everything but RFC 3986 unreserved characters).
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Whether a URL that came from data (catalog YAML, template output, a
/// notification, a team note) may become a link: `http`, `https` and
/// `mailto` URLs, and relative ones (`/catalog`, `docs/x`, `#top`). Anything
/// else (`javascript:`, `data:`, `vbscript:`, a scheme hidden behind control
/// characters or whitespace, which browsers strip) is refused. Shared by
/// ingestion, the scaffolder's actions and every page that renders an `href`.
pub fn safe_href(url: &str) -> Option<&str> {
    if url.is_empty()
        || url.len() > 4096
        || url
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return None;
    }
    let scheme_end = url.find(':');
    let path_start = url.find(['/', '?', '#']);
    match scheme_end {
        Some(colon) if path_start.is_none_or(|p| colon < p) => {
            let scheme = url[..colon].to_ascii_lowercase();
            matches!(scheme.as_str(), "http" | "https" | "mailto").then_some(url)
        }
        // Relative; `//host` (scheme-relative) stays on http(s).
        _ => Some(url),
    }
}

/// The message for a URL [`safe_href`] refuses, naming what is allowed.
pub const UNSAFE_URL_MESSAGE: &str =
    "must be an http, https or mailto URL, or a relative path (other schemes such as javascript: are refused)";

/// Backstage entity names: 1-63 `[A-Za-z0-9]` runs joined by single `-`, `_` or `.`.
pub fn is_entity_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    let sep = |b: u8| matches!(b, b'-' | b'_' | b'.');
    !s.is_empty()
        && s.len() <= 63
        && !sep(bytes[0])
        && !sep(bytes[bytes.len() - 1])
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || sep(b))
        && !bytes.windows(2).any(|w| sep(w[0]) && sep(w[1]))
}

/// A parsed `RepoUrlPicker` value: `host?owner=o&repo=r` (plus optional organization, workspace, project).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoUrl {
    /// The host, e.g. `github.com`.
    pub host: String,
    /// The owner (user or organization).
    pub owner: Option<String>,
    /// The repository name.
    pub repo: String,
    /// Other query parameters (organization, workspace, project).
    pub extra: Vec<(String, String)>,
}

/// Parses `host?owner=o&repo=r`.
pub fn parse_repo_url(raw: &str) -> Result<RepoUrl, String> {
    let (host, query) = raw.split_once('?').ok_or_else(|| {
        format!("`{raw}` is not a repository location like github.com?owner=me&repo=my-service")
    })?;
    if host.is_empty() || host.contains('/') {
        return Err(format!("`{host}` is not a host name"));
    }
    let mut owner = None;
    let mut repo = None;
    let mut extra = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        match k {
            "owner" => owner = Some(v),
            "repo" => repo = Some(v),
            other => extra.push((other.to_owned(), v)),
        }
    }
    let repo = repo
        .filter(|r| !r.is_empty())
        .ok_or_else(|| "the repository location has no repo name".to_owned())?;
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if !segment_ok(&repo) || owner.as_deref().is_some_and(|o| !segment_ok(o)) {
        return Err("owner and repo may use letters, digits, -, _ and . only".into());
    }
    Ok(RepoUrl {
        host: host.to_ascii_lowercase(),
        owner: owner.filter(|o| !o.is_empty()),
        repo,
        extra,
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn validate_repo_url(schema: &Value, s: &str, path: &str) -> Vec<FieldError> {
    match parse_repo_url(s) {
        Err(message) => err(path, message),
        Ok(url) => {
            let allowed: Vec<String> = ui_option(schema, "allowedHosts")
                .and_then(Value::as_array)
                .map(|l| {
                    l.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_ascii_lowercase)
                        .collect()
                })
                .unwrap_or_default();
            if !allowed.is_empty() && !allowed.contains(&url.host) {
                return err(
                    path,
                    format!("the host must be one of: {}", allowed.join(", ")),
                );
            }
            if url.owner.is_none() {
                return err(path, "the repository location needs an owner");
            }
            Vec::new()
        }
    }
}

fn validate_number(schema: &Value, n: f64, path: &str) -> Vec<FieldError> {
    let num = |k: &str| schema.get(k).and_then(Value::as_f64);
    if let Some(min) = num("minimum") {
        if n < min {
            return err(path, format!("must be at least {min}"));
        }
    }
    if let Some(max) = num("maximum") {
        if n > max {
            return err(path, format!("must be at most {max}"));
        }
    }
    if let Some(min) = num("exclusiveMinimum") {
        if n <= min {
            return err(path, format!("must be more than {min}"));
        }
    }
    if let Some(max) = num("exclusiveMaximum") {
        if n >= max {
            return err(path, format!("must be less than {max}"));
        }
    }
    if let Some(step) = num("multipleOf") {
        if step > 0.0 && ((n / step).round() * step - n).abs() > 1e-9 {
            return err(path, format!("must be a multiple of {step}"));
        }
    }
    Vec::new()
}

fn validate_array(schema: &Value, items: &[Value], path: &str) -> Vec<FieldError> {
    let count = |k: &str| schema.get(k).and_then(Value::as_u64);
    if let Some(min) = count("minItems") {
        if (items.len() as u64) < min {
            return err(path, format!("needs at least {min} item(s)"));
        }
    }
    if let Some(max) = count("maxItems") {
        if items.len() as u64 > max {
            return err(path, format!("takes at most {max} item(s)"));
        }
    }
    if schema.get("uniqueItems") == Some(&Value::Bool(true)) {
        for (i, a) in items.iter().enumerate() {
            if items[..i].contains(a) {
                return err(path, format!("lists {} twice", display(a)));
            }
        }
    }
    let mut errors = Vec::new();
    if let Some(item_schema) = schema.get("items").filter(|s| s.is_object()) {
        for (i, item) in items.iter().enumerate() {
            errors.extend(validate_value(item_schema, item, &format!("{path}[{i}]")));
        }
    }
    errors
}

/// Problems with a template's parameter schemas themselves (bad patterns), for registration.
pub fn schema_problems(parameters: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if !matches!(parameters, Value::Array(_) | Value::Object(_) | Value::Null) {
        problems.push("spec.parameters must be a schema or a list of schemas".into());
        return problems;
    }
    fn walk(v: &Value, at: &str, problems: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(p)) = map.get("pattern") {
                    if regex_lite::Regex::new(p).is_err() {
                        problems.push(format!(
                            "{at}: the pattern `{p}` is not a valid regular expression"
                        ));
                    }
                }
                for (k, child) in map {
                    walk(child, &format!("{at}.{k}"), problems);
                }
            }
            Value::Array(list) => {
                for (i, child) in list.iter().enumerate() {
                    walk(child, &format!("{at}[{i}]"), problems);
                }
            }
            _ => {}
        }
    }
    walk(parameters, "spec.parameters", &mut problems);
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn page() -> Value {
        json!({
            "title": "Service",
            "required": ["name", "owner"],
            "ui:order": ["owner", "*"],
            "properties": {
                "name": {"title": "Name", "type": "string", "pattern": "^[a-z][a-z0-9-]{1,38}[a-z0-9]$", "maxLength": 40, "ui:autofocus": true},
                "owner": {"title": "Owner", "type": "string", "ui:field": "OwnerPicker", "ui:options": {"catalogFilter": {"kind": "Group"}}},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 2},
                "model": {"type": "string", "enum": ["gpt-4o-mini", "custom"], "enumNames": ["GPT-4o mini", "Custom"]},
                "otel": {"type": "boolean", "default": true},
                "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true, "maxItems": 3},
                "apiKey": {"type": "string", "ui:widget": "password"},
                "repoUrl": {"type": "string", "ui:field": "RepoUrlPicker", "ui:options": {"allowedHosts": ["git.paved.demo"]}}
            },
            "dependencies": {
                "model": {
                    "oneOf": [
                        {"properties": {"model": {"enum": ["gpt-4o-mini"]}}},
                        {"properties": {"model": {"enum": ["custom"]}, "customModel": {"type": "string", "title": "Model id", "minLength": 3}}, "required": ["customModel"]}
                    ]
                }
            },
            "if": {"properties": {"otel": {"const": true}}},
            "then": {"properties": {"otelEndpoint": {"type": "string", "format": "uri"}}}
        })
    }

    #[test]
    fn only_web_and_mail_urls_become_links() {
        for ok in [
            "https://example.com/x?y#z",
            "http://example.com",
            "HTTPS://EXAMPLE.COM",
            "mailto:team@example.com",
            "/catalog?kind=api",
            "docs/readme.md",
            "#top",
            "//cdn.example.com/x",
            "/path/with:colon",
        ] {
            assert_eq!(safe_href(ok), Some(ok), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            " javascript:alert(1)",
            "java\tscript:alert(1)",
            "java\nscript:alert(1)",
            "\u{1}javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:msgbox",
            "/\\evil.example",
            "",
        ] {
            assert_eq!(safe_href(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn picker_answers_are_references_of_the_allowed_kinds() {
        let system = json!({"type": "string", "ui:field": "EntityPicker", "ui:options": {"catalogFilter": {"kind": "System"}}});
        let owner = json!({"type": "string", "ui:field": "OwnerPicker"});
        assert_eq!(
            picker_ref(&system, "checkout"),
            Ok("system:default/checkout".into())
        );
        assert_eq!(
            picker_ref(&system, "System:Default/Checkout"),
            Ok("system:default/checkout".into())
        );
        assert_eq!(
            picker_ref(&owner, "group:default/payments"),
            Ok("group:default/payments".into())
        );
        for hostile in [
            "checkout\n---\nkind: Location",
            "checkout\"",
            "{checkout}",
            "check out",
            "component:default/checkout",
            "",
            "system:default/a/b",
        ] {
            assert!(picker_ref(&system, hostile).is_err(), "{hostile:?}");
        }
        assert!(picker_ref(&owner, "user:default/dana")
            .unwrap_err()
            .contains("group"));
        // The same rule runs in validation, so the browser shows it too.
        let page = json!({"type": "object", "properties": {"system": system}});
        let errors = validate(&page, &json!({"system": "checkout\n---\n"}));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "system");
    }

    #[test]
    fn pages_accept_a_list_or_one_schema() {
        assert_eq!(pages(&json!([page(), {"properties": {}}])).len(), 2);
        assert_eq!(
            pages(&json!([page(), {"properties": {}}]))[1].title,
            "Step 2"
        );
        assert_eq!(pages(&page())[0].title, "Service");
        assert!(pages(&json!("nope")).is_empty());
    }

    #[test]
    fn fields_follow_ui_order_and_widgets() {
        let f = fields(&page(), &json!({}));
        assert_eq!(f[0].name, "owner");
        assert_eq!(f[0].widget, Widget::OwnerPicker);
        let name = f.iter().find(|f| f.name == "name").unwrap();
        assert!(name.required && name.autofocus);
        let by = |n: &str| f.iter().find(|f| f.name == n).unwrap().widget.clone();
        assert_eq!(by("replicas"), Widget::Number { integer: true });
        assert_eq!(by("otel"), Widget::Checkbox);
        assert_eq!(by("apiKey"), Widget::Password);
        assert!(matches!(by("model"), Widget::Select(o) if o[0].1 == "GPT-4o mini"));
        assert_eq!(
            by("repoUrl"),
            Widget::RepoUrlPicker {
                allowed_hosts: vec!["git.paved.demo".into()]
            }
        );
    }

    #[test]
    fn conditional_fields_appear_with_their_answers() {
        let without = fields(&page(), &json!({"model": "gpt-4o-mini", "otel": false}));
        assert!(!without.iter().any(|f| f.name == "customModel"));
        assert!(!without.iter().any(|f| f.name == "otelEndpoint"));
        let with = fields(&page(), &json!({"model": "custom", "otel": true}));
        let custom = with.iter().find(|f| f.name == "customModel").unwrap();
        assert!(custom.required);
        assert!(with.iter().any(|f| f.name == "otelEndpoint"));
        // Validation uses the same effective schema.
        let errors = validate(
            &page(),
            &json!({"name": "svc-one", "owner": "group:default/payments", "model": "custom"}),
        );
        assert_eq!(
            errors,
            vec![FieldError {
                path: "customModel".into(),
                message: "is required".into()
            }]
        );
    }

    #[test]
    fn validation_names_each_problem() {
        let errors = validate(
            &page(),
            &json!({
                "name": "Bad Name", "replicas": 11, "model": "gpt-5", "tags": ["a", "a"],
                "repoUrl": "github.com?owner=me&repo=x", "otel": true, "otelEndpoint": "not a url"
            }),
        );
        let at = |p: &str| {
            errors
                .iter()
                .find(|e| e.path == p)
                .map(|e| e.message.clone())
        };
        assert_eq!(at("owner").as_deref(), Some("is required"));
        assert!(at("name").unwrap().contains("pattern"));
        assert_eq!(at("replicas").as_deref(), Some("must be at most 10"));
        assert!(at("model").unwrap().contains("GPT-4o mini, Custom"));
        assert!(at("tags").unwrap().contains("twice"));
        assert!(at("repoUrl").unwrap().contains("git.paved.demo"));
        assert!(at("otelEndpoint").unwrap().contains("URL"));
        let ok = validate(
            &page(),
            &json!({"name": "svc-one", "owner": "group:default/payments", "replicas": 3, "repoUrl": "git.paved.demo?owner=payments&repo=svc-one"}),
        );
        assert!(ok.is_empty(), "{ok:?}");
        // Empty strings count as unanswered, like the browser form.
        assert_eq!(
            validate(&page(), &json!({"name": "", "owner": "o"}))[0].path,
            "name"
        );
        // Wrong types are named.
        assert_eq!(
            validate(
                &page(),
                &json!({"name": "svc", "owner": "o", "replicas": "three"})
            )[0]
            .message,
            "must be a whole number"
        );
    }

    #[test]
    fn secrets_are_found_in_branches_too() {
        let mut p = page();
        p["dependencies"]["model"]["oneOf"][1]["properties"]["customKey"] =
            json!({"type": "string", "ui:widget": "password"});
        let secrets = secret_fields(&json!([p]));
        assert!(secrets.contains(&"apiKey".to_owned()));
        assert!(secrets.contains(&"customKey".to_owned()));
        assert!(!secrets.contains(&"name".to_owned()));
    }

    #[test]
    fn repo_urls_parse_like_backstage() {
        let url = parse_repo_url("github.com?owner=acme&repo=my-svc&organization=x").unwrap();
        assert_eq!(url.host, "github.com");
        assert_eq!(url.owner.as_deref(), Some("acme"));
        assert_eq!(url.repo, "my-svc");
        assert_eq!(url.extra, vec![("organization".to_owned(), "x".to_owned())]);
        assert!(parse_repo_url("github.com?owner=acme").is_err());
        assert!(parse_repo_url("github.com?owner=..&repo=x").is_err());
        assert!(parse_repo_url("github.com?owner=a&repo=..%2Fescape").is_err());
        assert!(parse_repo_url("no-query").is_err());
    }

    #[test]
    fn bad_patterns_are_reported_for_registration() {
        let problems = schema_problems(
            &json!([{"properties": {"x": {"type": "string", "pattern": "([a-z"}}}]),
        );
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("spec.parameters[0].properties.x"));
    }
}
