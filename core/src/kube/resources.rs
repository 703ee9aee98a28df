//! The kinds `kube:apply` knows without asking the cluster: their plural,
//! scope and the order they are applied in (what others depend on first).
//! Any other kind is looked up through the API server's discovery.

use kube::core::{ApiResource, GroupVersionKind};

/// A kind Paved knows.
pub struct Known {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
    /// Lower is applied first.
    pub order: u8,
}

/// Namespaces first, then what pods need (quotas, accounts, secrets,
/// configuration, storage, RBAC), Services before the workloads that
/// serve them, then what points at workloads (autoscalers, budgets,
/// ingresses, network policies). Unknown kinds (custom resources) go last.
pub const KNOWN: &[Known] = &[
    k("", "v1", "Namespace", "namespaces", false, 0),
    k("", "v1", "ResourceQuota", "resourcequotas", true, 1),
    k("", "v1", "LimitRange", "limitranges", true, 1),
    k("", "v1", "ServiceAccount", "serviceaccounts", true, 2),
    k("", "v1", "Secret", "secrets", true, 3),
    k("", "v1", "ConfigMap", "configmaps", true, 3),
    k(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        true,
        4,
    ),
    k("rbac.authorization.k8s.io", "v1", "Role", "roles", true, 5),
    k(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        true,
        6,
    ),
    k("", "v1", "Service", "services", true, 7),
    k("apps", "v1", "Deployment", "deployments", true, 8),
    k("apps", "v1", "StatefulSet", "statefulsets", true, 8),
    k("apps", "v1", "DaemonSet", "daemonsets", true, 8),
    k("batch", "v1", "Job", "jobs", true, 9),
    k("batch", "v1", "CronJob", "cronjobs", true, 9),
    k(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
        10,
    ),
    k(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
        10,
    ),
    k("networking.k8s.io", "v1", "Ingress", "ingresses", true, 11),
    k(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        true,
        11,
    ),
    // Cluster-wide kinds: the platform team's, refused in a service's manifests.
    k(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        false,
        0,
    ),
    k(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
        0,
    ),
    k(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
        0,
    ),
    k("", "v1", "PersistentVolume", "persistentvolumes", false, 0),
    k(
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        false,
        0,
    ),
    k(
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        "priorityclasses",
        false,
        0,
    ),
    k(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        false,
        0,
    ),
    k(
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        false,
        0,
    ),
];

/// Where unknown kinds go.
pub const UNKNOWN_ORDER: u8 = 20;

const fn k(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    order: u8,
) -> Known {
    Known {
        group,
        version,
        kind,
        plural,
        namespaced,
        order,
    }
}

/// The known kind for an `apiVersion` and `kind`.
pub fn known(api_version: &str, kind: &str) -> Option<&'static Known> {
    let (group, version) = split_api_version(api_version);
    KNOWN
        .iter()
        .find(|k| k.group == group && k.version == version && k.kind == kind)
}

/// `apps/v1` → (`apps`, `v1`); `v1` → (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

impl Known {
    pub fn api_resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group, self.version, self.kind),
            self.plural,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_kinds_resolve_with_their_plural_and_the_order_puts_dependencies_first() {
        let d = known("apps/v1", "Deployment").unwrap();
        assert_eq!(d.api_resource().plural, "deployments");
        assert_eq!(d.api_resource().api_version, "apps/v1");
        let ns = known("v1", "Namespace").unwrap();
        assert!(!ns.namespaced);
        let sa = known("v1", "ServiceAccount").unwrap();
        let svc = known("v1", "Service").unwrap();
        let ing = known("networking.k8s.io/v1", "Ingress").unwrap();
        assert!(
            ns.order < sa.order
                && sa.order < svc.order
                && svc.order < d.order
                && d.order < ing.order
        );
        assert!(known("apps/v1beta1", "Deployment").is_none());
        assert!(known("example.com/v1", "Widget").is_none());
    }

    /// The documented ClusterRole grants what `kube:apply` and the runtime
    /// view ask for, and nothing Paved never does (delete, wildcards).
    #[test]
    fn the_documented_cluster_role_covers_every_request_and_no_more() {
        let text = include_str!("../../../docs/kubernetes-rbac.yaml");
        let docs: Vec<serde_json::Value> = serde_yaml::Deserializer::from_str(text)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
        let role = docs.iter().find(|d| d["kind"] == "ClusterRole").unwrap();
        let rules = role["rules"].as_array().unwrap();
        let grants = |group: &str, resource: &str, verb: &str| {
            rules.iter().any(|r| {
                let has = |k: &str, v: &str| r[k].as_array().unwrap().iter().any(|x| x == v);
                has("apiGroups", group) && has("resources", resource) && has("verbs", verb)
            })
        };
        for k in KNOWN
            .iter()
            .filter(|k| k.namespaced || k.kind == "Namespace")
        {
            for verb in ["get", "create", "patch"] {
                assert!(grants(k.group, k.plural, verb), "{} {verb}", k.kind);
            }
        }
        for (group, resource) in [
            ("", "pods"),
            ("", "services"),
            ("", "events"),
            ("apps", "deployments"),
            ("apps", "statefulsets"),
            ("apps", "daemonsets"),
            ("batch", "jobs"),
            ("batch", "cronjobs"),
            ("autoscaling", "horizontalpodautoscalers"),
            ("networking.k8s.io", "ingresses"),
        ] {
            assert!(grants(group, resource, "list"), "{resource} list");
        }
        assert!(grants("", "pods/log", "get"));
        for r in rules {
            for v in r["verbs"].as_array().unwrap() {
                assert!(
                    ["get", "list", "create", "patch"].contains(&v.as_str().unwrap()),
                    "{v}"
                );
            }
            assert!(!r["resources"].as_array().unwrap().iter().any(|x| x == "*"));
        }
    }
}
