//! The built-in kinds the stub serves, and the discovery documents that
//! describe them (`/api`, `/apis`, `/api/v1`, `/apis/{group}/{version}`).

use serde_json::{json, Value};

/// One resource type: its group/version, kind and plural.
#[derive(Debug, PartialEq, Eq)]
pub struct Kind {
    /// The API group; empty for the core group.
    pub group: &'static str,
    /// The version within the group.
    pub version: &'static str,
    /// `Deployment`.
    pub kind: &'static str,
    /// `deployments`, the resource name in paths.
    pub plural: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// `kubectl`'s abbreviations, listed in discovery.
    pub short_names: &'static [&'static str],
    /// Whether it has a `status` subresource.
    pub status: bool,
}

const fn k(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    status: bool,
) -> Kind {
    Kind {
        group,
        version,
        kind,
        plural,
        namespaced,
        short_names,
        status,
    }
}

/// Every kind served, in discovery order.
#[rustfmt::skip]
pub static KINDS: &[Kind] = &[
    k("", "v1", "Namespace", "namespaces", false, &["ns"], true),
    k("", "v1", "ResourceQuota", "resourcequotas", true, &["quota"], true),
    k("", "v1", "LimitRange", "limitranges", true, &["limits"], false),
    k("", "v1", "ServiceAccount", "serviceaccounts", true, &["sa"], false),
    k("", "v1", "ConfigMap", "configmaps", true, &["cm"], false),
    k("", "v1", "Secret", "secrets", true, &[], false),
    k("", "v1", "Service", "services", true, &["svc"], true),
    k("", "v1", "Pod", "pods", true, &["po"], true),
    k("", "v1", "Event", "events", true, &["ev"], false),
    k("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true, &["pvc"], true),
    k("apps", "v1", "Deployment", "deployments", true, &["deploy"], true),
    k("apps", "v1", "StatefulSet", "statefulsets", true, &["sts"], true),
    k("apps", "v1", "DaemonSet", "daemonsets", true, &["ds"], true),
    k("apps", "v1", "ReplicaSet", "replicasets", true, &["rs"], true),
    k("batch", "v1", "Job", "jobs", true, &[], true),
    k("batch", "v1", "CronJob", "cronjobs", true, &["cj"], true),
    k("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true, &["hpa"], true),
    k("networking.k8s.io", "v1", "Ingress", "ingresses", true, &["ing"], true),
    k("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true, &["netpol"], false),
    k("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true, &["pdb"], true),
    k("rbac.authorization.k8s.io", "v1", "Role", "roles", true, &[], false),
    k("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true, &[], false),
];

impl Kind {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, or `pods`: how Status messages name the resource.
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_owned()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Deployment.apps`, or `Pod`: how validation errors name the kind.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_owned()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    /// This kind's position in [`KINDS`], its key in the store.
    pub fn index(&self) -> usize {
        KINDS.iter().position(|k| k == self).unwrap_or(0)
    }
}

/// The kind served at `/{api or apis/group}/{version}/{plural}`.
pub fn by_resource(group: &str, version: &str, plural: &str) -> Option<&'static Kind> {
    KINDS
        .iter()
        .find(|k| k.group == group && k.version == version && k.plural == plural)
}

/// The kind of an object by its `apiVersion` and `kind`.
pub fn by_type(api_version: &str, kind: &str) -> Option<&'static Kind> {
    KINDS
        .iter()
        .find(|k| k.api_version() == api_version && k.kind == kind)
}

/// The kind by its name alone (`Deployment`).
pub fn by_kind(kind: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.kind == kind)
}

/// The groups other than core, in order, without repeats.
fn groups() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for k in KINDS.iter().filter(|k| !k.group.is_empty()) {
        if !out.contains(&(k.group, k.version)) {
            out.push((k.group, k.version));
        }
    }
    out
}

/// `GET /api`.
pub fn api_versions(server: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server}],
    })
}

fn group_json(group: &str, version: &str) -> Value {
    let gv = json!({"groupVersion": format!("{group}/{version}"), "version": version});
    json!({"name": group, "versions": [gv], "preferredVersion": gv})
}

/// `GET /apis`.
pub fn api_group_list() -> Value {
    let groups: Vec<Value> = groups()
        .into_iter()
        .map(|(g, v)| group_json(g, v))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/{group}`, if the group is served.
pub fn api_group(group: &str) -> Option<Value> {
    let (g, v) = groups().into_iter().find(|(g, _)| *g == group)?;
    let mut out = group_json(g, v);
    out["kind"] = json!("APIGroup");
    out["apiVersion"] = json!("v1");
    Some(out)
}

/// `GET /api/v1` or `/apis/{group}/{version}`, if served.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let kinds: Vec<&Kind> = KINDS
        .iter()
        .filter(|k| k.group == group && k.version == version)
        .collect();
    if kinds.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for k in kinds {
        // The verbs the stub serves (no create, update or watch).
        let verbs = ["delete", "get", "list", "patch"];
        let mut r = json!({
            "name": k.plural,
            "singularName": k.kind.to_lowercase(),
            "namespaced": k.namespaced,
            "kind": k.kind,
            "verbs": verbs,
        });
        if !k.short_names.is_empty() {
            r["shortNames"] = json!(k.short_names);
        }
        resources.push(r);
        if k.status {
            resources.push(json!({
                "name": format!("{}/status", k.plural),
                "singularName": "",
                "namespaced": k.namespaced,
                "kind": k.kind,
                "verbs": ["get", "patch"],
            }));
        }
        if k.plural == "pods" {
            resources.push(json!({
                "name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get"],
            }));
        }
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}
