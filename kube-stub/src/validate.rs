//! The part of the API server's validation the stub repeats: object names,
//! and the workload rules a deploy is most likely to break (selector,
//! containers, images, replicas). Failures are 422 `Invalid`, worded as
//! Kubernetes words them.

use serde_json::Value;

use crate::kinds::Kind;
use crate::status::{invalid, quote, ApiError, FieldError};

const SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| alnum(c) || *c == b'-')
        && alnum(&b[0])
        && alnum(&b[b.len() - 1])
}

fn is_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label)
}

/// Go's `%#v` of a `map[string]string`, for the selector message.
fn go_map(v: &Value) -> String {
    let parts: Vec<String> = v
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{}:{}", quote(k), v))
                .collect()
        })
        .unwrap_or_default();
    format!("map[string]string{{{}}}", parts.join(", "))
}

fn pod_spec(spec: &Value, at: &str, errs: &mut Vec<FieldError>) {
    match spec["containers"].as_array() {
        Some(cs) if !cs.is_empty() => {
            for (i, c) in cs.iter().enumerate() {
                if c["name"].as_str().unwrap_or_default().is_empty() {
                    errs.push(FieldError::required(format!("{at}.containers[{i}].name")));
                }
                if c["image"].as_str().unwrap_or_default().is_empty() {
                    errs.push(FieldError::required(format!("{at}.containers[{i}].image")));
                }
            }
        }
        _ => errs.push(FieldError::required(format!("{at}.containers"))),
    }
}

/// Validates `obj` (already named) as `kind`.
pub fn validate(kind: &Kind, obj: &Value) -> Result<(), ApiError> {
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let mut errs = Vec::new();
    let (ok, rule) = match kind.kind {
        "Namespace" => (is_label(name), LABEL),
        "Service" => (
            is_label(name) && name.starts_with(|c: char| c.is_ascii_lowercase()),
            DNS1035,
        ),
        _ => (is_subdomain(name), SUBDOMAIN),
    };
    if name.is_empty() {
        errs.push(FieldError::required("metadata.name"));
    } else if !ok {
        errs.push(FieldError::invalid("metadata.name", quote(name), rule));
    }
    let spec = &obj["spec"];
    match kind.kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => {
            let selector = &spec["selector"];
            if selector.is_null() {
                errs.push(FieldError::required("spec.selector"));
            }
            let labels = &spec["template"]["metadata"]["labels"];
            let wanted = selector["matchLabels"].as_object();
            if wanted.is_some_and(|w| w.iter().any(|(k, v)| labels.get(k) != Some(v))) {
                errs.push(FieldError::invalid(
                    "spec.template.metadata.labels",
                    go_map(labels),
                    "`selector` does not match template `labels`",
                ));
            }
            if let Some(n) = spec["replicas"].as_i64().filter(|n| *n < 0) {
                errs.push(FieldError::invalid(
                    "spec.replicas",
                    n.to_string(),
                    "must be greater than or equal to 0",
                ));
            }
            pod_spec(&spec["template"]["spec"], "spec.template.spec", &mut errs);
        }
        "Pod" => pod_spec(spec, "spec", &mut errs),
        "Job" => pod_spec(&spec["template"]["spec"], "spec.template.spec", &mut errs),
        "CronJob" => {
            if spec["schedule"].as_str().unwrap_or_default().is_empty() {
                errs.push(FieldError::required("spec.schedule"));
            }
            pod_spec(
                &spec["jobTemplate"]["spec"]["template"]["spec"],
                "spec.jobTemplate.spec.template.spec",
                &mut errs,
            );
        }
        _ => {}
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(invalid(
            kind.group,
            &kind.qualified_kind(),
            kind.kind,
            name,
            &errs,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::by_kind;
    use serde_json::json;

    #[test]
    fn deployment_rules() {
        let kind = by_kind("Deployment").unwrap();
        let ok = json!({"metadata": {"name": "web"}, "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "nginx"}]}},
        }});
        assert!(validate(kind, &ok).is_ok());
        let mut bad = ok.clone();
        bad["spec"]["template"]["spec"]["containers"][0]["image"] = json!("");
        let e = validate(kind, &bad).unwrap_err();
        assert_eq!(e.code, 422);
        assert_eq!(
            e.body["message"],
            "Deployment.apps \"web\" is invalid: spec.template.spec.containers[0].image: Required value"
        );
        assert_eq!(
            e.body["details"]["causes"][0]["reason"],
            "FieldValueRequired"
        );
        bad["spec"]["template"]["metadata"]["labels"] = json!({"app": "api"});
        let e = validate(kind, &bad).unwrap_err();
        assert!(e.body["message"].as_str().unwrap().starts_with("Deployment.apps \"web\" is invalid: [spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"api\"}: `selector` does not match template `labels`, "));
    }

    #[test]
    fn names() {
        assert!(is_label("a-1"));
        assert!(!is_label("-a"));
        assert!(!is_label("A"));
        assert!(is_subdomain("a.b-c"));
        let kind = by_kind("ConfigMap").unwrap();
        let e = validate(kind, &json!({"metadata": {"name": "Bad_Name"}})).unwrap_err();
        assert!(e.body["message"].as_str().unwrap().contains(
            "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"
        ));
    }
}
