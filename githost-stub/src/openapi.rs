//! Checks each request the stand-in receives against GitHub's own OpenAPI
//! description (npm `@octokit/openapi`, read at run time, never copied into
//! this repository): the operation must exist, its query parameters must be
//! declared (and the required ones present), and a JSON body must carry the
//! required properties, only declared ones, of the declared types.

use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::Value;

/// Where the description is read from: `GITHUB_OPENAPI_JSON`, or the npm
/// package beside the workspace.
pub fn description_path() -> PathBuf {
    std::env::var_os("GITHUB_OPENAPI_JSON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../node_modules/@octokit/openapi/generated/api.github.com.json")
        })
}

/// GitHub's REST description, parsed once per process.
pub fn description() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = description_path();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "GitHub's OpenAPI description is needed at {} ({e}); `npm ci` installs @octokit/openapi",
                path.display()
            )
        });
        serde_json::from_str(&text).expect("GitHub's OpenAPI description is JSON")
    })
}

fn resolve<'a>(spec: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(pointer) => spec
            .pointer(pointer.trim_start_matches('#'))
            .map(|v| resolve(spec, v))
            .unwrap_or(value),
        None => value,
    }
}

/// The path template of `path` in the description, preferring the most
/// literal match (a trailing `{path}` takes the rest of the path, as in the
/// contents API).
fn template_for<'a>(spec: &'a Value, path: &str) -> Option<(&'a str, &'a Value)> {
    let actual: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut best: Option<(usize, &str, &Value)> = None;
    for (template, item) in spec.get("paths")?.as_object()? {
        let parts: Vec<&str> = template.trim_start_matches('/').split('/').collect();
        let mut literal = 0;
        let mut matched = true;
        for (i, part) in parts.iter().enumerate() {
            let is_param = part.starts_with('{') && part.ends_with('}');
            if is_param && *part == "{path}" && i == parts.len() - 1 {
                matched = actual.len() > i && actual[i..].iter().all(|s| !s.is_empty());
                break;
            }
            match actual.get(i) {
                Some(a) if is_param && !a.is_empty() => {}
                Some(a) if a == part => literal += 1,
                _ => {
                    matched = false;
                    break;
                }
            }
            if i == parts.len() - 1 && actual.len() != parts.len() {
                matched = false;
            }
        }
        if matched && best.is_none_or(|(l, _, _)| literal > l) {
            best = Some((literal, template, item));
        }
    }
    best.map(|(_, t, item)| (t, item))
}

fn type_ok(schema: &Value, value: &Value) -> bool {
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return true,
    };
    let nullable = schema.get("nullable").and_then(Value::as_bool) == Some(true);
    types.iter().any(|t| match (*t, value) {
        ("string", Value::String(_))
        | ("boolean", Value::Bool(_))
        | ("object", Value::Object(_))
        | ("array", Value::Array(_))
        | ("null", Value::Null)
        | ("number", Value::Number(_)) => true,
        ("integer", Value::Number(n)) => n.is_i64() || n.is_u64(),
        _ => false,
    }) || (nullable && value.is_null())
}

/// The problems with one request, empty when GitHub would accept its shape.
pub fn check(
    method: &str,
    path: &str,
    query: &[(String, String)],
    body: Option<&Value>,
) -> Vec<String> {
    let spec = description();
    let what = format!("{method} {path}");
    let Some((template, item)) = template_for(spec, path) else {
        return vec![format!("{what}: no such path in GitHub's REST API")];
    };
    let Some(operation) = item.get(method.to_ascii_lowercase()) else {
        return vec![format!("{what}: {template} has no {method} operation")];
    };
    let mut problems = Vec::new();
    let parameters: Vec<&Value> = item
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(
            operation
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        )
        .map(|p| resolve(spec, p))
        .collect();
    let declared: Vec<&str> = parameters
        .iter()
        .filter(|p| p.get("in").and_then(Value::as_str) == Some("query"))
        .filter_map(|p| p.get("name").and_then(Value::as_str))
        .collect();
    for (name, _) in query {
        if !declared.contains(&name.as_str()) {
            problems.push(format!(
                "{what}: query parameter `{name}` is not declared for {method} {template}"
            ));
        }
    }
    for p in &parameters {
        if p.get("in").and_then(Value::as_str) == Some("query")
            && p.get("required").and_then(Value::as_bool) == Some(true)
        {
            let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
            if !query.iter().any(|(n, _)| n == name) {
                problems.push(format!(
                    "{what}: required query parameter `{name}` is missing"
                ));
            }
        }
    }
    let schema = operation
        .pointer("/requestBody/content/application~1json/schema")
        .map(|s| resolve(spec, s));
    match (schema, body) {
        (None, Some(_)) => problems.push(format!("{what}: {method} {template} takes no JSON body")),
        (Some(schema), None) => {
            if operation
                .pointer("/requestBody/required")
                .and_then(Value::as_bool)
                == Some(true)
            {
                problems.push(format!("{what}: a JSON body is required"));
            }
            let _ = schema;
        }
        (Some(schema), Some(body)) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let Some(object) = body.as_object() else {
                problems.push(format!("{what}: the body must be a JSON object"));
                return problems;
            };
            for required in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = required.as_str().unwrap_or_default();
                if !object.contains_key(name) {
                    problems.push(format!(
                        "{what}: required body property `{name}` is missing"
                    ));
                }
            }
            if let Some(properties) = properties {
                for (name, value) in object {
                    match properties.get(name) {
                        None => {
                            problems.push(format!("{what}: body property `{name}` is not declared"))
                        }
                        Some(p) if !type_ok(resolve(spec, p), value) => problems.push(format!(
                            "{what}: body property `{name}` has the wrong type ({value})"
                        )),
                        Some(_) => {}
                    }
                }
            }
        }
        (None, None) => {}
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn what_github_declares_passes() {
        assert_eq!(
            check(
                "GET",
                "/repos/acme/svc/contents/a/b/catalog-info.yaml",
                &q(&[("ref", "main")]),
                None
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            check("GET", "/repos/acme/svc", &[], None),
            Vec::<String>::new()
        );
        assert_eq!(
            check(
                "POST",
                "/orgs/acme/repos",
                &[],
                Some(&serde_json::json!({"name": "svc", "private": true, "description": "x"}))
            ),
            Vec::<String>::new()
        );
    }

    #[test]
    fn what_github_does_not_declare_is_a_violation() {
        let cases = [
            check("GET", "/repos/acme/svc/contentz/x", &[], None),
            check("PATCH", "/repos/acme/svc/contents/x", &[], None),
            check(
                "GET",
                "/repos/acme/svc/contents/x",
                &q(&[("branch", "main")]),
                None,
            ),
            check(
                "POST",
                "/orgs/acme/repos",
                &[],
                Some(&serde_json::json!({"private": true})),
            ),
            check(
                "POST",
                "/orgs/acme/repos",
                &[],
                Some(&serde_json::json!({"name": "svc", "private": "yes"})),
            ),
            check(
                "POST",
                "/orgs/acme/repos",
                &[],
                Some(&serde_json::json!({"name": "svc", "colour": "red"})),
            ),
        ];
        for (i, problems) in cases.iter().enumerate() {
            assert_eq!(problems.len(), 1, "case {i}: {problems:?}");
        }
    }
}
