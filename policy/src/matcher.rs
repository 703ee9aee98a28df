//! `spec.match`, exactly as Gatekeeper applies it: kinds, scope, namespaces,
//! excludedNamespaces, labelSelector, namespaceSelector and name, ANDed; a
//! constraint applies when the object or (on update) the old object matches.

use serde_json::{Map, Value};

use crate::review::{str_at, Gvk, Review};

/// A namespace wildcard or name pattern: `x`, `x*`, `*x` or `*x*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wildcard(pub String);

impl Wildcard {
    pub fn matches(&self, candidate: &str) -> bool {
        let p = self.0.as_str();
        if p == "*" {
            return true;
        }
        match (p.strip_prefix('*'), p.strip_suffix('*')) {
            (Some(_), Some(_)) if p.len() >= 2 => candidate.contains(&p[1..p.len() - 1]),
            (Some(rest), None) => candidate.ends_with(rest),
            (None, Some(rest)) => candidate.starts_with(rest),
            _ => candidate == p,
        }
    }

    /// Whether a `generateName` fits the pattern: only `x*` and `*x*` can
    /// (the rest of the name is not chosen yet).
    pub fn matches_generate_name(&self, generate_name: &str) -> bool {
        let p = self.0.as_str();
        if generate_name.is_empty() {
            return false;
        }
        if p.len() >= 2 && p.starts_with('*') && p.ends_with('*') {
            return generate_name.contains(&p[1..p.len() - 1]);
        }
        if let (false, Some(rest)) = (p.starts_with('*'), p.strip_suffix('*')) {
            return generate_name.starts_with(rest);
        }
        false
    }
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A Kubernetes label selector (`matchLabels` and `matchExpressions`, ANDed).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    pub requirements: Vec<Requirement>,
}

impl LabelSelector {
    pub fn from_value(value: &Value) -> Result<LabelSelector, String> {
        let mut requirements = Vec::new();
        if let Some(labels) = value.get("matchLabels") {
            let labels = labels
                .as_object()
                .ok_or("matchLabels must be a map of strings")?;
            for (k, v) in labels {
                let v = v.as_str().ok_or("matchLabels values must be strings")?;
                requirements.push(Requirement::In(k.clone(), vec![v.to_string()]));
            }
        }
        for expr in value
            .get("matchExpressions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = expr
                .get("key")
                .and_then(Value::as_str)
                .ok_or("matchExpressions[].key is required")?
                .to_string();
            let values: Vec<String> = expr
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            let op = expr.get("operator").and_then(Value::as_str).unwrap_or("");
            let requirement = match op {
                "In" | "NotIn" if values.is_empty() => {
                    return Err(format!("operator {op} on {key:?} needs values"))
                }
                "Exists" | "DoesNotExist" if !values.is_empty() => {
                    return Err(format!("operator {op} on {key:?} takes no values"))
                }
                "In" => Requirement::In(key, values),
                "NotIn" => Requirement::NotIn(key, values),
                "Exists" => Requirement::Exists(key),
                "DoesNotExist" => Requirement::DoesNotExist(key),
                other => {
                    return Err(format!(
                        "unknown operator {other:?} (In, NotIn, Exists or DoesNotExist)"
                    ))
                }
            };
            requirements.push(requirement);
        }
        Ok(LabelSelector { requirements })
    }

    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.requirements.iter().all(|r| match r {
            Requirement::In(k, vs) => get(k).is_some_and(|v| vs.iter().any(|x| x == v)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|v| !vs.iter().any(|x| x == v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        })
    }
}

/// One `kinds` entry: API groups and kinds, empty or `*` meaning any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindMatch {
    pub api_groups: Vec<String>,
    pub kinds: Vec<String>,
}

/// `spec.match` of a constraint. The default matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Match {
    pub kinds: Vec<KindMatch>,
    /// `Cluster`, `Namespaced`, or anything else for both.
    pub scope: String,
    pub namespaces: Vec<Wildcard>,
    pub excluded_namespaces: Vec<Wildcard>,
    pub label_selector: Option<LabelSelector>,
    pub namespace_selector: Option<LabelSelector>,
    pub name: Option<Wildcard>,
}

/// Why matching could not be decided (Gatekeeper reports these as a violation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchError(pub String);

fn strings(value: Option<&Value>, field: &str) -> Result<Vec<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("match.{field} must be a list of strings"))
            })
            .collect(),
        Some(_) => Err(format!("match.{field} must be a list of strings")),
    }
}

fn valid_pattern(p: &str) -> bool {
    let inner = p.strip_prefix('*').unwrap_or(p);
    let inner = inner.strip_suffix('*').unwrap_or(inner);
    inner
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == ':')
}

impl Match {
    pub fn from_value(value: Option<&Value>) -> Result<Match, String> {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return Ok(Match::default());
        };
        if !value.is_object() {
            return Err("spec.match must be a map".into());
        }
        let mut kinds = Vec::new();
        for entry in value
            .get("kinds")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            kinds.push(KindMatch {
                api_groups: strings(entry.get("apiGroups"), "kinds[].apiGroups")?,
                kinds: strings(entry.get("kinds"), "kinds[].kinds")?,
            });
        }
        let patterns = |field: &str| -> Result<Vec<Wildcard>, String> {
            let list = strings(value.get(field), field)?;
            for p in &list {
                if !valid_pattern(p) {
                    return Err(format!(
                        "match.{field}: {p:?} is not a namespace name with an optional leading or trailing *"
                    ));
                }
            }
            Ok(list.into_iter().map(Wildcard).collect())
        };
        let selector = |field: &str| -> Result<Option<LabelSelector>, String> {
            match value.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => LabelSelector::from_value(v)
                    .map(Some)
                    .map_err(|e| format!("match.{field}: {e}")),
            }
        };
        let name = match value.get("name").and_then(Value::as_str) {
            None | Some("") => None,
            Some(n) if valid_pattern(n) => Some(Wildcard(n.to_string())),
            Some(n) => {
                return Err(format!(
                    "match.name: {n:?} is not a name with an optional leading or trailing *"
                ))
            }
        };
        Ok(Match {
            kinds,
            scope: value
                .get("scope")
                .and_then(Value::as_str)
                .unwrap_or("*")
                .to_string(),
            namespaces: patterns("namespaces")?,
            excluded_namespaces: patterns("excludedNamespaces")?,
            label_selector: selector("labelSelector")?,
            namespace_selector: selector("namespaceSelector")?,
            name,
        })
    }

    /// Whether the constraint applies to the review. `namespace` is the
    /// Namespace object of a namespaced request, when known.
    pub fn matches(&self, review: &Review, namespace: Option<&Value>) -> Result<bool, MatchError> {
        let mut any = false;
        for object in std::iter::once(&review.object).chain(review.old_object.as_ref()) {
            if object.is_null() {
                continue;
            }
            if self.matches_object(object, review, namespace)? {
                any = true;
                break;
            }
        }
        Ok(any)
    }

    fn matches_object(
        &self,
        object: &Value,
        review: &Review,
        namespace: Option<&Value>,
    ) -> Result<bool, MatchError> {
        let gvk = Gvk::of(object);
        let is_namespace = gvk.kind == "Namespace" && gvk.group.is_empty();
        let object_ns = str_at(object, &["metadata", "namespace"]);
        let has_namespace =
            !object_ns.is_empty() || namespace.is_some() || !review.namespace.is_empty();
        // kinds
        if !self.kinds.is_empty()
            && !self.kinds.iter().any(|k| {
                let kind = k.kinds.is_empty() || k.kinds.iter().any(|x| x == "*" || *x == gvk.kind);
                let group = k.api_groups.is_empty()
                    || k.api_groups.iter().any(|x| x == "*" || *x == gvk.group);
                kind && group
            })
        {
            return Ok(false);
        }
        // scope
        match self.scope.as_str() {
            "Cluster" if !is_namespace && has_namespace => return Ok(false),
            "Namespaced" if is_namespace || !has_namespace => return Ok(false),
            _ => {}
        }
        // namespaces and excludedNamespaces: the name to compare
        let ns_name = if is_namespace {
            Some(str_at(object, &["metadata", "name"]))
        } else if let Some(ns) = namespace {
            Some(str_at(ns, &["metadata", "name"]))
        } else if !object_ns.is_empty() {
            Some(object_ns)
        } else if !review.namespace.is_empty() {
            Some(review.namespace.as_str())
        } else {
            None
        };
        if let Some(ns_name) = ns_name {
            if !self.namespaces.is_empty() && !self.namespaces.iter().any(|w| w.matches(ns_name)) {
                return Ok(false);
            }
            if self.excluded_namespaces.iter().any(|w| w.matches(ns_name)) {
                return Ok(false);
            }
        }
        // labelSelector
        if let Some(selector) = &self.label_selector {
            let labels = object
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if !selector.matches(&labels) {
                return Ok(false);
            }
        }
        // namespaceSelector
        if let Some(selector) = &self.namespace_selector {
            let labels_of = |v: &Value| {
                v.pointer("/metadata/labels")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default()
            };
            if is_namespace {
                if !selector.matches(&labels_of(object)) {
                    return Ok(false);
                }
            } else if namespace.is_none() && object_ns.is_empty() && review.namespace.is_empty() {
                // cluster-scoped: the selector does not apply
            } else {
                let Some(ns) = namespace else {
                    return Err(MatchError(
                        "namespace selector for namespace-scoped object but missing Namespace"
                            .into(),
                    ));
                };
                if !selector.matches(&labels_of(ns)) {
                    return Ok(false);
                }
            }
        }
        // name (or generateName)
        if let Some(pattern) = &self.name {
            let name = str_at(object, &["metadata", "name"]);
            let generate = str_at(object, &["metadata", "generateName"]);
            if !(pattern.matches(name) || pattern.matches_generate_name(generate)) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(v: Value) -> Match {
        Match::from_value(Some(&v)).unwrap()
    }

    fn pod(ns: &str, labels: Value) -> Review {
        Review::of_object(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": ns, "labels": labels}}))
    }

    #[test]
    fn wildcards() {
        let w = |p: &str| Wildcard(p.into());
        assert!(w("kube-*").matches("kube-system"));
        assert!(!w("kube-*").matches("my-kube"));
        assert!(w("*-system").matches("kube-system"));
        assert!(w("*ube*").matches("kube-system"));
        assert!(w("*").matches("anything"));
        assert!(!w("kube").matches("kube-system"));
        assert!(w("web-*").matches_generate_name("web-"));
        assert!(w("*eb*").matches_generate_name("web-"));
        assert!(!w("*-1").matches_generate_name("web-"));
        assert!(!w("web-").matches_generate_name("web-"));
    }

    #[test]
    fn kinds_with_stars_and_empty_lists() {
        let r = Review::of_object(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "a"}}),
        );
        assert!(
            m(json!({"kinds": [{"apiGroups": ["apps"], "kinds": ["Deployment"]}]}))
                .matches(&r, None)
                .unwrap()
        );
        assert!(m(json!({"kinds": [{"apiGroups": ["*"], "kinds": ["*"]}]}))
            .matches(&r, None)
            .unwrap());
        assert!(m(json!({"kinds": [{"kinds": ["Deployment"]}]}))
            .matches(&r, None)
            .unwrap());
        assert!(
            !m(json!({"kinds": [{"apiGroups": [""], "kinds": ["Deployment"]}]}))
                .matches(&r, None)
                .unwrap()
        );
        assert!(
            !m(json!({"kinds": [{"apiGroups": ["apps"], "kinds": ["Pod"]}]}))
                .matches(&r, None)
                .unwrap()
        );
    }

    #[test]
    fn scope_and_cluster_objects() {
        let ns = Review::of_object(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system", "labels": {"team": "x"}}}),
        );
        let role = Review::of_object(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"}}),
        );
        assert!(m(json!({"scope": "Cluster"})).matches(&ns, None).unwrap());
        assert!(!m(json!({"scope": "Namespaced"}))
            .matches(&ns, None)
            .unwrap());
        assert!(m(json!({"scope": "Cluster"})).matches(&role, None).unwrap());
        assert!(!m(json!({"scope": "Cluster"}))
            .matches(&pod("a", json!({})), None)
            .unwrap());
        // A Namespace is compared by its own name; cluster-scoped objects are never excluded.
        assert!(!m(json!({"excludedNamespaces": ["kube-*"]}))
            .matches(&ns, None)
            .unwrap());
        assert!(m(json!({"excludedNamespaces": ["kube-*"]}))
            .matches(&role, None)
            .unwrap());
        assert!(m(json!({"namespaces": ["prod"]}))
            .matches(&role, None)
            .unwrap());
        // namespaceSelector: a Namespace by its own labels, cluster objects always.
        assert!(
            m(json!({"namespaceSelector": {"matchLabels": {"team": "x"}}}))
                .matches(&ns, None)
                .unwrap()
        );
        assert!(
            m(json!({"namespaceSelector": {"matchLabels": {"team": "y"}}}))
                .matches(&role, None)
                .unwrap()
        );
    }

    #[test]
    fn namespaces_and_selectors() {
        let p = pod("prod-eu", json!({"app": "web", "tier": "front"}));
        assert!(m(json!({"namespaces": ["prod-*"]}))
            .matches(&p, None)
            .unwrap());
        assert!(!m(json!({"namespaces": ["dev"]})).matches(&p, None).unwrap());
        assert!(!m(json!({"excludedNamespaces": ["*-eu"]}))
            .matches(&p, None)
            .unwrap());
        assert!(m(
            json!({"labelSelector": {"matchLabels": {"app": "web"}, "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["front", "back"]},
            {"key": "legacy", "operator": "DoesNotExist"},
            {"key": "env", "operator": "NotIn", "values": ["dev"]}]}})
        )
        .matches(&p, None)
        .unwrap());
        assert!(!m(json!({"labelSelector": {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]}})).matches(&p, None).unwrap());
        let sel = m(json!({"namespaceSelector": {"matchLabels": {"env": "prod"}}}));
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod-eu", "labels": {"env": "prod"}}});
        assert!(sel.matches(&p, Some(&ns)).unwrap());
        let other = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod-eu", "labels": {"env": "dev"}}});
        assert!(!sel.matches(&p, Some(&other)).unwrap());
        assert!(sel.matches(&p, None).is_err());
    }

    #[test]
    fn names_and_generate_name() {
        let gen = Review::of_object(
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "web-", "namespace": "a"}}),
        );
        assert!(m(json!({"name": "web-*"})).matches(&gen, None).unwrap());
        assert!(!m(json!({"name": "api-*"})).matches(&gen, None).unwrap());
        assert!(m(json!({"name": "web-1"}))
            .matches(&pod("a", json!({})), None)
            .unwrap());
        assert!(Match::from_value(Some(&json!({"name": "a.b"}))).is_err());
    }

    #[test]
    fn old_object_also_counts() {
        let r = Review::of_request(json!({
            "operation": "UPDATE",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a", "labels": {}}},
            "oldObject": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a", "labels": {"app": "web"}}}
        }));
        assert!(m(json!({"labelSelector": {"matchLabels": {"app": "web"}}}))
            .matches(&r, None)
            .unwrap());
    }

    #[test]
    fn bad_selectors_are_refused() {
        assert!(Match::from_value(Some(
            &json!({"labelSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}})
        ))
        .is_err());
        assert!(Match::from_value(Some(&json!({"labelSelector": {"matchExpressions": [{"key": "a", "operator": "Like", "values": ["x"]}]}}))).is_err());
    }
}
