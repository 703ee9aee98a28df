//! The object under review, in the shape Gatekeeper hands a template as
//! `input.review` (an admission request: `kind`, `name`, `namespace`,
//! `operation`, `object`, `oldObject`, `userInfo`, …).

use serde_json::{json, Map, Value};

/// A Kubernetes group/version/kind.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Gvk {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl Gvk {
    /// From an object's `apiVersion` and `kind`.
    pub fn of(object: &Value) -> Gvk {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api_version.to_string()),
        };
        Gvk {
            group,
            version,
            kind: str_at(object, &["kind"]).to_string(),
        }
    }

    /// `group/version` (or `version` for the core group), as `apiVersion` spells it.
    pub fn group_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// What a policy reviews: the request (Gatekeeper's `input.review`) plus what
/// matching needs to know about it.
#[derive(Debug, Clone)]
pub struct Review {
    /// The JSON given to templates as `input.review`.
    pub request: Value,
    pub gvk: Gvk,
    pub name: String,
    pub namespace: String,
    /// The object (for a DELETE, the old object), for label and name matching.
    pub object: Value,
    /// The old object of an UPDATE, whose labels also count for matching.
    pub old_object: Option<Value>,
}

/// Cluster-scoped kinds of the core Kubernetes APIs (an object without a
/// namespace of any other kind is taken to be in `default`, as kubectl would
/// create it; Gatekeeper's audit reads the scope from discovery).
const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "Node",
    "PersistentVolume",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "StorageClass",
    "PriorityClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "APIService",
    "CSIDriver",
    "CSINode",
    "VolumeAttachment",
    "RuntimeClass",
    "IngressClass",
    "PodSecurityPolicy",
    "CertificateSigningRequest",
    "ComponentStatus",
    "ConstraintTemplate",
    "FlowSchema",
    "PriorityLevelConfiguration",
];

/// Whether objects of this kind live outside namespaces.
pub fn is_cluster_scoped(gvk: &Gvk) -> bool {
    CLUSTER_SCOPED.contains(&gvk.kind.as_str()) || gvk.group == "constraints.gatekeeper.sh"
}

impl Review {
    /// A review of a plain object, as Gatekeeper's audit and `gator` build it:
    /// the object, its kind, name and namespace; no operation.
    pub fn of_object(object: Value) -> Review {
        let gvk = Gvk::of(&object);
        let name = object_name(&object);
        let namespace = str_at(&object, &["metadata", "namespace"]).to_string();
        // Gatekeeper's AdmissionRequest for an object under audit: empty uid,
        // operation and userInfo, no old object; name and namespace when set.
        let mut request = Map::new();
        request.insert("uid".into(), Value::String(String::new()));
        request.insert(
            "kind".into(),
            json!({"group": gvk.group, "version": gvk.version, "kind": gvk.kind}),
        );
        request.insert(
            "resource".into(),
            json!({"group": "", "version": "", "resource": ""}),
        );
        if !name.is_empty() {
            request.insert("name".into(), Value::String(name.clone()));
        }
        if !namespace.is_empty() {
            request.insert("namespace".into(), Value::String(namespace.clone()));
        }
        request.insert("operation".into(), Value::String(String::new()));
        request.insert("userInfo".into(), json!({}));
        request.insert("object".into(), object.clone());
        request.insert("oldObject".into(), Value::Null);
        request.insert("options".into(), Value::Null);
        Review {
            request: Value::Object(request),
            gvk,
            name,
            namespace,
            object,
            old_object: None,
        }
    }

    /// A review of the object about to be created by applying a manifest
    /// (the scaffolder and `paved policy test`): a CREATE request.
    pub fn of_manifest(object: Value) -> Review {
        let mut review = Review::of_object(object);
        review.request["operation"] = Value::String("CREATE".into());
        review
    }

    /// A review of an admission request (`AdmissionReview.request`). A DELETE
    /// carries only `oldObject`, which is then also the object reviewed.
    pub fn of_request(request: Value) -> Review {
        let mut request = request;
        let deleting = str_at(&request, &["operation"]) == "DELETE";
        let has_object = request.get("object").is_some_and(|o| !o.is_null());
        if deleting && !has_object {
            if let Some(old) = request.get("oldObject").cloned() {
                request["object"] = old;
            }
        }
        let object = request.get("object").cloned().unwrap_or(Value::Null);
        let gvk = match request.get("kind") {
            Some(kind) if kind.is_object() => Gvk {
                group: str_at(kind, &["group"]).to_string(),
                version: str_at(kind, &["version"]).to_string(),
                kind: str_at(kind, &["kind"]).to_string(),
            },
            _ => Gvk::of(&object),
        };
        if request.get("kind").is_none_or(|k| !k.is_object()) {
            request["kind"] = json!({"group": gvk.group, "version": gvk.version, "kind": gvk.kind});
        }
        let mut name = str_at(&request, &["name"]).to_string();
        if name.is_empty() {
            name = object_name(&object);
        }
        let mut namespace = str_at(&request, &["namespace"]).to_string();
        if namespace.is_empty() {
            namespace = str_at(&object, &["metadata", "namespace"]).to_string();
        }
        let old_object = request.get("oldObject").filter(|o| o.is_object()).cloned();
        Review {
            request,
            gvk,
            name,
            namespace,
            object,
            old_object,
        }
    }

    /// A review of a file's document: an `AdmissionReview` is its request,
    /// anything else a plain object.
    pub fn of_document(value: Value) -> Review {
        if value.get("kind").and_then(Value::as_str) == Some("AdmissionReview") {
            if let Some(request) = value.get("request") {
                return Review::of_request(request.clone());
            }
        }
        Review::of_object(value)
    }

    /// The object's labels (for `labelSelector`).
    pub fn labels(&self) -> Map<String, Value> {
        labels_of(&self.object)
    }

    /// The old object's labels, if this is an update.
    pub fn old_labels(&self) -> Option<Map<String, Value>> {
        self.old_object.as_ref().map(labels_of)
    }

    /// `metadata.generateName`, when the name is not yet chosen.
    pub fn generate_name(&self) -> &str {
        str_at(&self.object, &["metadata", "generateName"])
    }

    /// Whether the reviewed object is namespaced. A plain object without a
    /// namespace that is not of a cluster-scoped kind counts as namespaced.
    pub fn is_namespaced(&self) -> bool {
        !self.namespace.is_empty() || !is_cluster_scoped(&self.gvk)
    }
}

fn labels_of(object: &Value) -> Map<String, Value> {
    object
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn object_name(object: &Value) -> String {
    str_at(object, &["metadata", "name"]).to_string()
}

/// The string at a path of object keys, or "".
pub fn str_at<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    let mut at = value;
    for key in path {
        match at.get(key) {
            Some(v) => at = v,
            None => return "",
        }
    }
    at.as_str().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_object_review() {
        let r = Review::of_object(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"}
        }));
        assert_eq!(
            r.request["kind"],
            json!({"group": "apps", "version": "v1", "kind": "Deployment"})
        );
        assert_eq!(r.request["name"], "web");
        assert_eq!(r.request["namespace"], "shop");
        assert_eq!(r.request["object"]["metadata"]["name"], "web");
    }

    #[test]
    fn delete_reviews_the_old_object() {
        let r = Review::of_request(json!({
            "operation": "DELETE",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "oldObject": {"kind": "Pod", "metadata": {"name": "p", "namespace": "n"}}
        }));
        assert_eq!(r.object["metadata"]["name"], "p");
        assert_eq!(r.name, "p");
        assert_eq!(r.namespace, "n");
    }

    #[test]
    fn scope() {
        let ns = Review::of_object(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}),
        );
        assert!(!ns.is_namespaced());
        let pod = Review::of_object(
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}}),
        );
        assert!(pod.is_namespaced());
    }
}
