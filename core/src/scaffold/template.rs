//! Backstage `scaffolder.backstage.io/v1beta3` Template entities: parsing
//! and the checks run when the catalog ingests one (known actions, unique
//! step ids, expressions that compile, valid parameter patterns).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::expr::Expressions;

/// The apiVersion of templates.
pub const TEMPLATE_API_VERSION: &str = "scaffolder.backstage.io/v1beta3";

/// The actions Paved runs, with a one-line description each.
pub const ACTIONS: [(&str, &str); 17] = [
    (
        "fetch:template",
        "Renders a skeleton folder into the workspace with ${{ values.x }}",
    ),
    ("fetch:plain", "Copies a folder into the workspace as it is"),
    (
        "fetch:plain:file",
        "Copies one file into the workspace as it is",
    ),
    (
        "publish:git",
        "Creates a repository on a configured git host and pushes the workspace",
    ),
    (
        "publish:github",
        "Backstage's GitHub publisher, run as publish:git",
    ),
    (
        "publish:gitlab",
        "Backstage's GitLab publisher: creates the project through GitLab's API, then pushes",
    ),
    (
        "publish:bitbucket",
        "Backstage's Bitbucket publisher (Cloud or Data Center): creates the repository through the API, then pushes",
    ),
    (
        "publish:bitbucketCloud",
        "Backstage's Bitbucket Cloud publisher, run as publish:bitbucket",
    ),
    (
        "publish:bitbucketServer",
        "Backstage's Bitbucket Data Center publisher, run as publish:bitbucket",
    ),
    (
        "publish:github:pull-request",
        "Opens a pull request with the workspace's files in an existing GitHub repository",
    ),
    (
        "catalog:register",
        "Registers the new repository's catalog-info.yaml in the catalog",
    ),
    (
        "vault:provision",
        "Writes a secret to Vault with its policy and Kubernetes role",
    ),
    (
        "notification:send",
        "Sends an in-portal notification to users or an entity's owners",
    ),
    (
        "policy:check",
        "Checks the workspace's Kubernetes manifests against the platform's policies; a violation fails the step",
    ),
    (
        "kube:apply",
        "Deploys the workspace's Kubernetes manifests: policy check, server-side dry run, server-side apply, rollout",
    ),
    (
        "debug:log",
        "Writes a message (and optionally the workspace listing) to the log",
    ),
    (
        "debug:wait",
        "Waits (seconds, up to 10 minutes); a cancel stops it",
    ),
];

/// Whether Paved has `action`.
pub fn is_known_action(action: &str) -> bool {
    ACTIONS.iter().any(|(id, _)| *id == action)
}

/// One step of a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Unique id (`publish`), used by `${{ steps.publish.output.x }}`.
    pub id: String,
    /// A name for people.
    pub name: String,
    /// The action to run.
    pub action: String,
    /// The input, evaluated just before the step runs.
    pub input: Value,
    /// Run only when this evaluates truthy.
    pub condition: Option<Value>,
    /// Run once per item of this list/object (`${{ each.value }}`).
    pub each: Option<Value>,
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Template {
    /// `template:namespace/name`, lowercase.
    pub entity_ref: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.title`, else the name.
    pub title: String,
    /// `metadata.description`.
    pub description: String,
    /// `metadata.tags`.
    pub tags: Vec<String>,
    /// `spec.type` (service, website, …).
    pub spec_type: String,
    /// `spec.owner`, if any.
    pub owner: Option<String>,
    /// `spec.parameters` as authored (a schema or a list).
    pub parameters: Value,
    /// `spec.steps`.
    pub steps: Vec<Step>,
    /// `spec.output` as authored.
    pub output: Value,
    /// `backstage.io/time-saved` in minutes, when given (ISO 8601 duration).
    pub time_saved_minutes: Option<i64>,
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

/// Parses a stored Template entity (already validated by the catalog).
pub fn parse(entity: &Value) -> Result<Template, String> {
    let name = str_at(entity, &["metadata", "name"])
        .ok_or("the template has no name")?
        .to_owned();
    let namespace = str_at(entity, &["metadata", "namespace"]).unwrap_or("default");
    let spec = entity.get("spec").ok_or("the template has no spec")?;
    let steps = spec
        .get("steps")
        .and_then(Value::as_array)
        .ok_or("the template has no steps")?
        .iter()
        .enumerate()
        .map(|(i, s)| Step {
            id: s
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| format!("step-{}", i + 1)),
            name: s
                .get("name")
                .and_then(Value::as_str)
                .or_else(|| s.get("id").and_then(Value::as_str))
                .unwrap_or("step")
                .to_owned(),
            action: s
                .get("action")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            input: s
                .get("input")
                .cloned()
                .unwrap_or(Value::Object(Default::default())),
            condition: s.get("if").cloned(),
            each: s.get("each").cloned(),
        })
        .collect();
    Ok(Template {
        entity_ref: format!("template:{namespace}/{name}").to_ascii_lowercase(),
        title: str_at(entity, &["metadata", "title"])
            .unwrap_or(&name)
            .to_owned(),
        description: str_at(entity, &["metadata", "description"])
            .unwrap_or_default()
            .to_owned(),
        tags: entity["metadata"]["tags"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        spec_type: str_at(spec, &["type"]).unwrap_or_default().to_owned(),
        owner: str_at(spec, &["owner"]).map(str::to_owned),
        parameters: spec.get("parameters").cloned().unwrap_or(Value::Null),
        steps,
        output: spec.get("output").cloned().unwrap_or(Value::Null),
        time_saved_minutes: str_at(
            entity,
            &["metadata", "annotations", "backstage.io/time-saved"],
        )
        .and_then(iso8601_minutes),
        name,
    })
}

/// `PT4H`, `P1DT2H30M`, `PT90M` → minutes.
pub fn iso8601_minutes(raw: &str) -> Option<i64> {
    let rest = raw.trim().strip_prefix('P')?;
    let (date, time) = rest.split_once('T').unwrap_or((rest, ""));
    let mut total = 0f64;
    let mut number = String::new();
    for c in date.chars() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let n: f64 = number.parse().ok()?;
        number.clear();
        total += match c {
            'W' => n * 7.0 * 24.0 * 60.0,
            'D' => n * 24.0 * 60.0,
            _ => return None,
        };
    }
    for c in time.chars() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let n: f64 = number.parse().ok()?;
        number.clear();
        total += match c {
            'H' => n * 60.0,
            'M' => n,
            'S' => n / 60.0,
            _ => return None,
        };
    }
    if !number.is_empty() {
        return None;
    }
    Some(total.round() as i64)
}

/// The Template kind as the catalog checks it: the catalog knows nothing of
/// parameters, steps or actions and asks this.
pub struct TemplateKind;

impl crate::catalog::model::KindSpec for TemplateKind {
    fn kind(&self) -> &'static str {
        "Template"
    }

    fn api_version(&self) -> &'static str {
        TEMPLATE_API_VERSION
    }

    fn spec_problems(&self, spec: &Value) -> Vec<(String, String)> {
        spec_problems(spec)
    }
}

/// Problems with a Template's `spec`, as (field, message), for catalog ingestion.
pub fn spec_problems(spec: &Value) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let expressions = Expressions::new();
    for p in paved_shared::forms::schema_problems(spec.get("parameters").unwrap_or(&Value::Null)) {
        let (field, message) = p.split_once(": ").unwrap_or(("spec.parameters", &p));
        problems.push((field.to_owned(), message.to_owned()));
    }
    let Some(steps) = spec.get("steps").and_then(Value::as_array) else {
        problems.push(("spec.steps".into(), "is required: a list of steps".into()));
        return problems;
    };
    let mut ids: Vec<&str> = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let at = |f: &str| format!("spec.steps[{i}].{f}");
        match step.get("action").and_then(Value::as_str) {
            None => problems.push((at("action"), "is required".into())),
            Some(action) if !is_known_action(action) => problems.push((
                at("action"),
                format!(
                    "Paved has no action `{action}`; it has {}",
                    ACTIONS
                        .iter()
                        .map(|(a, _)| *a)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
            Some(_) => {}
        }
        if let Some(id) = step.get("id").and_then(Value::as_str) {
            if ids.contains(&id) {
                problems.push((at("id"), format!("`{id}` is used by an earlier step")));
            }
            ids.push(id);
        }
        let mut strings = Vec::new();
        collect_strings(step.get("input").unwrap_or(&Value::Null), &mut strings);
        if let Some(Value::String(s)) = step.get("if") {
            strings.push(s);
        }
        if let Some(Value::String(s)) = step.get("each") {
            strings.push(s);
        }
        for s in strings {
            if s.contains("${{") || s.contains("{%") {
                if let Err(e) = expressions.check(s) {
                    problems.push((
                        at("input"),
                        format!("the expression `{s}` does not compile: {e}"),
                    ));
                }
            }
        }
    }
    problems
}

fn collect_strings<'a>(v: &'a Value, out: &mut Vec<&'a String>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(list) => list.iter().for_each(|x| collect_strings(x, out)),
        Value::Object(map) => map.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_actions_are_named() {
        let spec = json!({"type": "service", "steps": [
            {"id": "a", "action": "fetch:template", "input": {"url": "./x", "values": {"n": "${{ parameters.n }}"}}},
            {"id": "a", "action": "aws:s3:create"},
            {"id": "c", "action": "debug:log", "input": {"message": "${{ parameters.n"}}
        ]});
        let problems = spec_problems(&spec);
        assert!(problems
            .iter()
            .any(|(f, m)| f == "spec.steps[1].action" && m.contains("`aws:s3:create`")));
        assert!(problems
            .iter()
            .any(|(f, m)| f == "spec.steps[1].id" && m.contains("earlier")));
        assert!(problems.iter().any(|(f, _)| f == "spec.steps[2].input"));
        assert_eq!(problems.len(), 3, "{problems:?}");
    }

    #[test]
    fn durations_and_parsing() {
        assert_eq!(iso8601_minutes("PT4H"), Some(240));
        assert_eq!(iso8601_minutes("P1DT30M"), Some(1470));
        assert_eq!(iso8601_minutes("PT90M"), Some(90));
        assert_eq!(iso8601_minutes("4 hours"), None);
        let t = parse(&json!({
            "apiVersion": TEMPLATE_API_VERSION, "kind": "Template",
            "metadata": {"name": "rust", "annotations": {"backstage.io/time-saved": "PT2H"}},
            "spec": {"type": "service", "parameters": [], "steps": [{"id": "x", "action": "debug:log", "if": "${{ parameters.a }}"}]}
        }))
        .unwrap();
        assert_eq!(t.entity_ref, "template:default/rust");
        assert_eq!(t.time_saved_minutes, Some(120));
        assert_eq!(t.steps[0].condition, Some(json!("${{ parameters.a }}")));
    }
}
