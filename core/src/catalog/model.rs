//! Backstage-compatible catalog entities: references, per-kind validation
//! with field-level messages, and relations computed in both directions.
//!
//! Entities are kept as JSON (`serde_json::Value`) exactly as authored, so
//! unknown fields survive a round trip; this module reads the parts it knows.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `apiVersion`s accepted for the built-in kinds.
pub const API_VERSIONS: [&str; 2] = ["backstage.io/v1alpha1", "backstage.io/v1beta1"];

/// The kinds this catalog accepts.
pub const KINDS: [&str; 9] = [
    "Component",
    "API",
    "Resource",
    "System",
    "Domain",
    "Group",
    "User",
    "Location",
    "Template",
];

/// The rules of a kind whose `spec` another feature defines (the scaffolder's
/// Template): the catalog checks its `apiVersion` and asks it about the spec,
/// without knowing those rules itself.
pub trait KindSpec: Send + Sync {
    /// The kind, as written in YAML (`Template`).
    fn kind(&self) -> &'static str;
    /// The one `apiVersion` accepted for it.
    fn api_version(&self) -> &'static str;
    /// Problems with an entity's `spec`, as (field, message).
    fn spec_problems(&self, spec: &Value) -> Vec<(String, String)>;
}

/// The kinds registered by other features, consulted by [`validate`].
#[derive(Clone, Default)]
pub struct Kinds(Vec<std::sync::Arc<dyn KindSpec>>);

impl Kinds {
    /// These kinds and `spec`.
    pub fn with(mut self, spec: impl KindSpec + 'static) -> Self {
        self.0.push(std::sync::Arc::new(spec));
        self
    }

    fn find(&self, kind: &str) -> Option<&dyn KindSpec> {
        self.0
            .iter()
            .find(|k| k.kind().eq_ignore_ascii_case(kind))
            .map(|k| k.as_ref())
    }
}

impl std::fmt::Debug for Kinds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|k| k.kind()))
            .finish()
    }
}

/// The namespace used when none is given.
pub const DEFAULT_NAMESPACE: &str = "default";

/// A reference to an entity, compared case-insensitively (stored lowercase).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EntityRef {
    /// Lowercase kind (`component`).
    pub kind: String,
    /// Lowercase namespace (`default`).
    pub namespace: String,
    /// Lowercase name.
    pub name: String,
}

impl std::fmt::Display for EntityRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}/{}", self.kind, self.namespace, self.name)
    }
}

impl EntityRef {
    /// Builds a reference, lowercasing every part.
    pub fn new(kind: &str, namespace: &str, name: &str) -> Self {
        Self {
            kind: kind.to_ascii_lowercase(),
            namespace: namespace.to_ascii_lowercase(),
            name: name.to_ascii_lowercase(),
        }
    }

    /// Parses `[kind:][namespace/]name`. `default_kind` fills a missing kind;
    /// without one, a kind is required.
    pub fn parse(
        raw: &str,
        default_kind: Option<&str>,
        default_namespace: &str,
    ) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("the reference is empty".into());
        }
        let (kind, rest) = match raw.split_once(':') {
            Some((k, r)) => (Some(k), r),
            None => (None, raw),
        };
        let kind = match kind.or(default_kind) {
            Some(k) if !k.is_empty() => k,
            _ => return Err(format!("`{raw}` needs a kind, like `component:{raw}`")),
        };
        let (namespace, name) = match rest.split_once('/') {
            Some((ns, n)) => (ns, n),
            None => (default_namespace, rest),
        };
        if namespace.is_empty() || name.is_empty() || name.contains('/') || name.contains(':') {
            return Err(format!(
                "`{raw}` is not a valid reference; use [kind:][namespace/]name"
            ));
        }
        Ok(Self::new(kind, namespace, name))
    }
}

/// One thing wrong with an entity, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldProblem {
    /// Dotted path, e.g. `metadata.name` or `spec.owner`.
    pub field: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl FieldProblem {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A relation from one entity to another.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Relation {
    /// The entity the relation starts at.
    pub source: EntityRef,
    /// `ownedBy`, `partOf`, ...
    pub kind: String,
    /// The entity it points to.
    pub target: EntityRef,
}

/// The relation pairs, each with its reverse.
pub const RELATION_PAIRS: [(&str, &str); 7] = [
    ("ownedBy", "ownerOf"),
    ("partOf", "hasPart"),
    ("dependsOn", "dependencyOf"),
    ("providesApi", "apiProvidedBy"),
    ("consumesApi", "apiConsumedBy"),
    ("memberOf", "hasMember"),
    ("childOf", "parentOf"),
];

/// Whether `s` is a valid `metadata.name`: 1–63 chars, `[A-Za-z0-9]` runs joined by `-`, `_` or `.`.
pub fn is_valid_name(s: &str) -> bool {
    if s.is_empty() || s.len() > 63 {
        return false;
    }
    let bytes = s.as_bytes();
    let sep = |b: u8| matches!(b, b'-' | b'_' | b'.');
    if sep(bytes[0]) || sep(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut previous_sep = false;
    for &b in bytes {
        if sep(b) {
            if previous_sep {
                return false;
            }
            previous_sep = true;
        } else if b.is_ascii_alphanumeric() {
            previous_sep = false;
        } else {
            return false;
        }
    }
    true
}

/// Whether `s` is a valid namespace: 1–63 chars of `[a-z0-9]` runs joined by `-`.
pub fn is_valid_namespace(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Whether `s` is a valid tag: 1–63 chars of `[a-z0-9:+#]` runs joined by `-`.
pub fn is_valid_tag(s: &str) -> bool {
    let ok =
        |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b':' | b'+' | b'#');
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
        && s.bytes().all(|b| ok(b) || b == b'-')
}

/// The reference fields of each kind: (field, default kind, relation, is a list).
fn reference_fields(
    kind: &str,
) -> &'static [(&'static str, Option<&'static str>, &'static str, bool)] {
    match kind {
        "Component" => &[
            ("owner", Some("group"), "ownedBy", false),
            ("system", Some("system"), "partOf", false),
            ("subcomponentOf", Some("component"), "partOf", false),
            ("providesApis", Some("api"), "providesApi", true),
            ("consumesApis", Some("api"), "consumesApi", true),
            ("dependsOn", None, "dependsOn", true),
            ("dependencyOf", None, "dependencyOf", true),
        ],
        "API" => &[
            ("owner", Some("group"), "ownedBy", false),
            ("system", Some("system"), "partOf", false),
        ],
        "Resource" => &[
            ("owner", Some("group"), "ownedBy", false),
            ("system", Some("system"), "partOf", false),
            ("dependsOn", None, "dependsOn", true),
            ("dependencyOf", None, "dependencyOf", true),
        ],
        "System" => &[
            ("owner", Some("group"), "ownedBy", false),
            ("domain", Some("domain"), "partOf", false),
        ],
        "Domain" => &[
            ("owner", Some("group"), "ownedBy", false),
            ("subdomainOf", Some("domain"), "partOf", false),
        ],
        "Group" => &[
            ("parent", Some("group"), "childOf", false),
            ("children", Some("group"), "parentOf", true),
            ("members", Some("user"), "hasMember", true),
        ],
        "User" => &[("memberOf", Some("group"), "memberOf", true)],
        "Template" => &[("owner", Some("group"), "ownedBy", false)],
        _ => &[],
    }
}

/// Required string fields in `spec`, per kind.
fn required_spec_strings(kind: &str) -> &'static [&'static str] {
    match kind {
        "Component" => &["type", "lifecycle", "owner"],
        "API" => &["type", "lifecycle", "owner", "definition"],
        "Resource" => &["type", "owner"],
        "System" | "Domain" => &["owner"],
        "Group" => &["type"],
        "Template" => &["type"],
        _ => &[],
    }
}

/// A validated entity: its reference and the relations it declares (both directions).
#[derive(Debug, Clone, PartialEq)]
pub struct ValidEntity {
    /// The entity as authored (with `metadata.namespace` filled in).
    pub body: Value,
    /// Its reference.
    pub entity_ref: EntityRef,
    /// Relations it declares, both directions.
    pub relations: Vec<Relation>,
}

/// Validates one entity, asking `kinds` about the kinds other features
/// define. Returns every problem found, not only the first.
pub fn validate(entity: &Value, kinds: &Kinds) -> Result<ValidEntity, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let Some(object) = entity.as_object() else {
        return Err(vec![FieldProblem::new(
            "",
            "an entity must be a mapping with apiVersion, kind, metadata and spec",
        )]);
    };
    let defined_elsewhere = object
        .get("kind")
        .and_then(Value::as_str)
        .and_then(|k| kinds.find(k));
    match (
        object.get("apiVersion").and_then(Value::as_str),
        defined_elsewhere,
    ) {
        (Some(v), Some(spec)) if v == spec.api_version() => {}
        (Some(v), Some(spec)) => problems.push(FieldProblem::new(
            "apiVersion",
            format!(
                "`{v}` is not supported for a {}; use {}",
                spec.kind(),
                spec.api_version()
            ),
        )),
        (Some(v), None) if API_VERSIONS.contains(&v) => {}
        (Some(v), None) => problems.push(FieldProblem::new(
            "apiVersion",
            format!("`{v}` is not supported; use backstage.io/v1alpha1"),
        )),
        (None, _) => problems.push(FieldProblem::new("apiVersion", "is required")),
    }
    let kind = match object.get("kind").and_then(Value::as_str) {
        Some(k) => match KINDS.iter().find(|known| known.eq_ignore_ascii_case(k)) {
            Some(known) => Some(*known),
            None => {
                problems.push(FieldProblem::new(
                    "kind",
                    format!("unknown kind `{k}`; expected one of {}", KINDS.join(", ")),
                ));
                None
            }
        },
        None => {
            problems.push(FieldProblem::new("kind", "is required"));
            None
        }
    };

    let metadata = object.get("metadata").and_then(Value::as_object);
    let mut name = String::new();
    let mut namespace = DEFAULT_NAMESPACE.to_owned();
    match metadata {
        None => problems.push(FieldProblem::new(
            "metadata",
            "is required and must be a mapping",
        )),
        Some(m) => {
            match m.get("name").and_then(Value::as_str) {
                Some(n) if is_valid_name(n) => name = n.to_owned(),
                Some(n) => problems.push(FieldProblem::new(
                    "metadata.name",
                    format!("`{n}` is not a valid name: 1-63 letters and digits, separated by single `-`, `_` or `.`"),
                )),
                None => problems.push(FieldProblem::new("metadata.name", "is required")),
            }
            match m.get("namespace") {
                None | Some(Value::Null) => {}
                Some(Value::String(ns)) if is_valid_namespace(ns) => namespace = ns.clone(),
                Some(other) => problems.push(FieldProblem::new(
                    "metadata.namespace",
                    format!("{other} is not a valid namespace: lowercase letters, digits and `-`"),
                )),
            }
            for field in ["title", "description"] {
                if let Some(v) = m.get(field) {
                    if !v.is_string() && !v.is_null() {
                        problems.push(FieldProblem::new(
                            format!("metadata.{field}"),
                            "must be a string",
                        ));
                    }
                }
            }
            for field in ["labels", "annotations"] {
                match m.get(field) {
                    None | Some(Value::Null) => {}
                    Some(Value::Object(map)) => {
                        for (k, v) in map {
                            if !v.is_string() {
                                problems.push(FieldProblem::new(
                                    format!("metadata.{field}.{k}"),
                                    "must be a string",
                                ));
                            }
                        }
                    }
                    Some(_) => problems.push(FieldProblem::new(
                        format!("metadata.{field}"),
                        "must be a mapping of strings",
                    )),
                }
            }
            match m.get("tags") {
                None | Some(Value::Null) => {}
                Some(Value::Array(tags)) => {
                    for (i, t) in tags.iter().enumerate() {
                        match t.as_str() {
                            Some(t) if is_valid_tag(t) => {}
                            _ => problems.push(FieldProblem::new(
                                format!("metadata.tags[{i}]"),
                                format!("{t} is not a valid tag: lowercase letters, digits, `:+#`, separated by `-`"),
                            )),
                        }
                    }
                }
                Some(_) => problems.push(FieldProblem::new(
                    "metadata.tags",
                    "must be a list of strings",
                )),
            }
            match m.get("links") {
                None | Some(Value::Null) => {}
                Some(Value::Array(links)) => {
                    for (i, l) in links.iter().enumerate() {
                        match l.get("url").and_then(Value::as_str) {
                            None | Some("") => problems.push(FieldProblem::new(
                                format!("metadata.links[{i}].url"),
                                "is required",
                            )),
                            Some(url) if paved_shared::forms::safe_href(url).is_none() => problems
                                .push(FieldProblem::new(
                                    format!("metadata.links[{i}].url"),
                                    paved_shared::forms::UNSAFE_URL_MESSAGE,
                                )),
                            Some(_) => {}
                        }
                    }
                }
                Some(_) => problems.push(FieldProblem::new("metadata.links", "must be a list")),
            }
        }
    }

    let spec = object.get("spec");
    let mut relations = Vec::new();
    if let Some(kind) = kind {
        let spec_map = spec.and_then(Value::as_object);
        if spec_map.is_none() && kind != "User" {
            problems.push(FieldProblem::new(
                "spec",
                "is required and must be a mapping",
            ));
        }
        let empty = serde_json::Map::new();
        let spec_map = spec_map.unwrap_or(&empty);
        for field in required_spec_strings(kind) {
            match spec_map.get(*field) {
                Some(Value::String(s)) if !s.trim().is_empty() => {}
                Some(Value::String(_)) | None | Some(Value::Null) => problems.push(
                    FieldProblem::new(format!("spec.{field}"), format!("is required for a {kind}")),
                ),
                Some(_) => problems.push(FieldProblem::new(
                    format!("spec.{field}"),
                    "must be a string",
                )),
            }
        }
        if kind == "Group" && !matches!(spec_map.get("children"), Some(Value::Array(_))) {
            problems.push(FieldProblem::new(
                "spec.children",
                "is required for a Group (use [] for none)",
            ));
        }
        if let Some(defined) = defined_elsewhere {
            for (field, message) in defined.spec_problems(spec.unwrap_or(&Value::Null)) {
                problems.push(FieldProblem::new(field, message));
            }
        }
        if kind == "Location" {
            let has_target = spec_map.get("target").and_then(Value::as_str).is_some();
            let has_targets =
                matches!(spec_map.get("targets"), Some(Value::Array(t)) if !t.is_empty());
            if !has_target && !has_targets {
                problems.push(FieldProblem::new(
                    "spec.targets",
                    "a Location needs `target` or `targets`",
                ));
            }
        }
        let me = EntityRef::new(kind, &namespace, &name);
        relations = declared_relations(kind, &namespace, &me, spec_map, Some(&mut problems));
    }

    if !problems.is_empty() {
        return Err(problems);
    }
    let mut body = entity.clone();
    if let Some(m) = body.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert("namespace".into(), Value::String(namespace.clone()));
    }
    relations.sort();
    relations.dedup();
    Ok(ValidEntity {
        body,
        entity_ref: EntityRef::new(kind.unwrap_or_default(), &namespace, &name),
        relations,
    })
}

/// The relations a valid entity declares, both directions, sorted: what
/// [`validate`] returned for it, worked out again from its body (a crawl
/// keeps entities as text and computes these only when writing them).
pub fn relations_of(body: &Value, me: &EntityRef) -> Vec<Relation> {
    let Some(kind) = body.get("kind").and_then(Value::as_str) else {
        return Vec::new();
    };
    let empty = serde_json::Map::new();
    let spec_map = body
        .get("spec")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    // References without a namespace default to the entity's, as authored.
    let namespace = body
        .get("metadata")
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or(&me.namespace);
    let mut relations = declared_relations(kind, namespace, me, spec_map, None);
    relations.sort();
    relations.dedup();
    relations
}

/// The relations `spec_map`'s reference fields declare for entity `me` of
/// `kind`; each field that is not a valid reference goes to `problems`.
fn declared_relations(
    kind: &str,
    namespace: &str,
    me: &EntityRef,
    spec_map: &serde_json::Map<String, Value>,
    mut problems: Option<&mut Vec<FieldProblem>>,
) -> Vec<Relation> {
    let mut relations = Vec::new();
    let mut problem = |path: String, message: String| {
        if let Some(p) = problems.as_deref_mut() {
            p.push(FieldProblem::new(path, message));
        }
    };
    for (field, default_kind, relation, is_list) in reference_fields(kind) {
        let values: Vec<(String, &Value)> = match spec_map.get(*field) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(items)) if *is_list => items
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("spec.{field}[{i}]"), v))
                .collect(),
            Some(v) if !is_list => vec![(format!("spec.{field}"), v)],
            Some(_) => {
                problem(
                    format!("spec.{field}"),
                    if *is_list {
                        "must be a list of entity references".into()
                    } else {
                        "must be an entity reference".into()
                    },
                );
                continue;
            }
        };
        for (path, value) in values {
            let Some(raw) = value.as_str() else {
                problem(path, "must be an entity reference string".into());
                continue;
            };
            match EntityRef::parse(raw, *default_kind, namespace) {
                Ok(target) => relations.extend(relation_pair(me, relation, &target)),
                Err(message) => problem(path, message),
            }
        }
    }
    relations
}

/// The relation `relation` from `source` to `target`, and its reverse.
fn relation_pair(source: &EntityRef, relation: &str, target: &EntityRef) -> [Relation; 2] {
    let reverse = RELATION_PAIRS
        .iter()
        .find_map(|(a, b)| {
            if *a == relation {
                Some(*b)
            } else if *b == relation {
                Some(*a)
            } else {
                None
            }
        })
        .unwrap_or(relation);
    [
        Relation {
            source: source.clone(),
            kind: relation.to_owned(),
            target: target.clone(),
        },
        Relation {
            source: target.clone(),
            kind: reverse.to_owned(),
            target: source.clone(),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn component(name: &str, spec: Value) -> Value {
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": name}, "spec": spec})
    }

    #[test]
    fn references_parse_with_defaults() {
        assert_eq!(
            EntityRef::parse("team-a", Some("group"), "default")
                .unwrap()
                .to_string(),
            "group:default/team-a"
        );
        assert_eq!(
            EntityRef::parse("user:guest", Some("group"), "default")
                .unwrap()
                .to_string(),
            "user:default/guest"
        );
        assert_eq!(
            EntityRef::parse("default/Team-A", Some("group"), "x")
                .unwrap()
                .to_string(),
            "group:default/team-a"
        );
        assert_eq!(
            EntityRef::parse("Resource:ns/db", None, "default")
                .unwrap()
                .to_string(),
            "resource:ns/db"
        );
        assert!(EntityRef::parse("db", None, "default")
            .unwrap_err()
            .contains("needs a kind"));
        assert!(EntityRef::parse("a/b/c", Some("group"), "default").is_err());
        assert!(EntityRef::parse("", Some("group"), "default").is_err());
    }

    #[test]
    fn relations_worked_out_from_a_valid_body_match_validation() {
        let kinds = Kinds::default();
        for yaml in [
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: web, namespace: shop}\nspec: {type: service, lifecycle: production, owner: team-a, system: store, dependsOn: ['resource:db', 'component:default/auth'], providesApis: [orders], consumesApis: ['other/pay']}",
            "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: team-a}\nspec: {type: team, parent: eng, children: [team-b], members: [ana, 'user:ops/bo']}",
            "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {name: ana}\nspec: {memberOf: [team-a]}",
            "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {name: bo}",
            "apiVersion: backstage.io/v1alpha1\nkind: System\nmetadata: {name: store}\nspec: {owner: team-a, domain: commerce}",
        ] {
            let value: Value = serde_yaml::from_str(yaml).unwrap();
            let valid = validate(&value, &kinds).unwrap();
            assert_eq!(
                relations_of(&valid.body, &valid.entity_ref),
                valid.relations,
                "{yaml}"
            );
        }
    }

    #[test]
    fn names_tags_and_namespaces() {
        for ok in [
            "a",
            "petstore",
            "wayback-archive",
            "A.b_c-9",
            &"x".repeat(63),
        ] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "invalid component",
            "-a",
            "a-",
            "a--b",
            "a..b",
            &"x".repeat(64),
            "ünï",
        ] {
            assert!(!is_valid_name(bad), "{bad}");
        }
        assert!(is_valid_tag("go") && is_valid_tag("c++") && is_valid_tag("java:11"));
        assert!(!is_valid_tag("go 1.15.3") && !is_valid_tag("Go"));
        assert!(is_valid_namespace("alternative") && !is_valid_namespace("Alt"));
    }

    #[test]
    fn component_relations_in_both_directions() {
        let e = component(
            "wayback-search",
            json!({"type": "service", "lifecycle": "production", "owner": "team-a", "system": "wayback",
                   "providesApis": ["wayback-search"], "dependsOn": ["resource:db"]}),
        );
        let valid = validate(&e, &Kinds::default()).unwrap();
        assert_eq!(
            valid.entity_ref.to_string(),
            "component:default/wayback-search"
        );
        let rel: Vec<String> = valid
            .relations
            .iter()
            .map(|r| format!("{} {} {}", r.source, r.kind, r.target))
            .collect();
        for expected in [
            "component:default/wayback-search ownedBy group:default/team-a",
            "group:default/team-a ownerOf component:default/wayback-search",
            "component:default/wayback-search partOf system:default/wayback",
            "system:default/wayback hasPart component:default/wayback-search",
            "component:default/wayback-search providesApi api:default/wayback-search",
            "api:default/wayback-search apiProvidedBy component:default/wayback-search",
            "component:default/wayback-search dependsOn resource:default/db",
            "resource:default/db dependencyOf component:default/wayback-search",
        ] {
            assert!(
                rel.contains(&expected.to_string()),
                "missing {expected} in {rel:?}"
            );
        }
        assert_eq!(valid.body["metadata"]["namespace"], "default");
    }

    #[test]
    fn problems_name_their_fields() {
        let e = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": "invalid component", "tags": ["go", "go 1.15.3"]},
            "spec": {"type": "service", "owner": "user:guest", "dependsOn": ["db"]}});
        let problems = validate(&e, &Kinds::default()).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "metadata.name",
                "metadata.tags[1]",
                "spec.lifecycle",
                "spec.dependsOn[0]"
            ]
        );
        assert!(problems[0].message.contains("invalid component"));
    }

    #[test]
    fn unknown_kinds_and_versions_are_refused() {
        let e = json!({"apiVersion": "example.com/v9", "kind": "Spaceship", "metadata": {"name": "x"}, "spec": {}});
        let problems = validate(&e, &Kinds::default()).unwrap_err();
        assert_eq!(problems[0].field, "apiVersion");
        assert_eq!(problems[1].field, "kind");
        assert!(problems[1].message.contains("unknown kind `Spaceship`"));
        assert!(validate(&json!("just a string"), &Kinds::default()).is_err());
    }

    #[test]
    fn groups_users_and_locations() {
        let g = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"name": "team-a"},
            "spec": {"type": "team", "parent": "backstage", "children": [], "members": ["ada"]}});
        let v = validate(&g, &Kinds::default()).unwrap();
        let rel: Vec<String> = v
            .relations
            .iter()
            .map(|r| format!("{} {} {}", r.source, r.kind, r.target))
            .collect();
        assert!(rel.contains(&"group:default/team-a childOf group:default/backstage".to_string()));
        assert!(rel.contains(&"group:default/backstage parentOf group:default/team-a".to_string()));
        assert!(rel.contains(&"user:default/ada memberOf group:default/team-a".to_string()));
        let no_children = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"name": "g"}, "spec": {"type": "team"}});
        assert_eq!(
            validate(&no_children, &Kinds::default()).unwrap_err()[0].field,
            "spec.children"
        );
        let loc = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Location", "metadata": {"name": "l"}, "spec": {}});
        assert_eq!(
            validate(&loc, &Kinds::default()).unwrap_err()[0].field,
            "spec.targets"
        );
        let user = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "User", "metadata": {"name": "u"}, "spec": {"memberOf": ["team-a"]}});
        assert!(validate(&user, &Kinds::default()).is_ok());
    }
}
