//! `PAVED_KUBE_*`: the clusters Paved deploys to and reads from.
//!
//! `PAVED_KUBE_CLUSTERS` names a YAML file:
//!
//! ```yaml
//! clusters:
//!   - name: prod-eu
//!     kubeconfig: /etc/paved/prod-eu.kubeconfig   # or `inCluster: true`
//!     context: prod-eu                           # optional: the kubeconfig's current context otherwise
//!     teams: ["*"]                               # who may deploy there
//!     namespace: "{team}"                        # where a team's services go
//!     production: true                           # deployments here are production deployments
//!     environment: production                    # the environment delivery events name (default: production or the cluster's name)
//!     vaultAuthMount: kubernetes-prod-eu         # the Vault Kubernetes auth mount of this cluster
//! ```
//!
//! Without the file, Paved running inside a cluster (`KUBERNETES_SERVICE_HOST`
//! set) reads that cluster with its own service account, named by
//! `PAVED_KUBE_IN_CLUSTER_NAME` (default `local`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigError;

/// Where a cluster's credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A kubeconfig file, with an optional context.
    Kubeconfig {
        path: PathBuf,
        context: Option<String>,
    },
    /// The pod's own service account.
    InCluster,
}

/// One cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    pub name: String,
    pub credentials: Credentials,
    /// Teams that may deploy there; `*` for all.
    pub teams: Vec<String>,
    /// The namespace pattern, `{team}` replaced by the owning team.
    pub namespace: String,
    pub production: bool,
    /// The environment name delivery events carry.
    pub environment: String,
    /// The Vault Kubernetes auth mount for workloads of this cluster.
    pub vault_auth_mount: Option<String>,
}

impl ClusterConfig {
    /// Whether `team` may deploy here.
    pub fn allows(&self, team: &str) -> bool {
        self.teams.iter().any(|t| t == "*" || t == team)
    }

    /// The namespace a service of `team` goes to.
    pub fn namespace_for(&self, team: &str) -> String {
        self.namespace.replace("{team}", team)
    }

    /// Where the credentials come from, for people.
    pub fn source(&self) -> String {
        match &self.credentials {
            Credentials::Kubeconfig { path, context } => match context {
                Some(c) => format!("kubeconfig {} (context {c})", path.display()),
                None => format!("kubeconfig {}", path.display()),
            },
            Credentials::InCluster => "in-cluster service account".into(),
        }
    }
}

/// Kubernetes settings.
#[derive(Debug, Clone)]
pub struct KubeConfig {
    pub clusters: Vec<ClusterConfig>,
    /// `PAVED_KUBE_REFRESH_SECONDS`: how long a namespace's objects are
    /// reused before the cluster is asked again (default 15).
    pub refresh: Duration,
    /// `PAVED_KUBE_TIMEOUT_SECONDS`: connect and read timeout per request (default 10).
    pub timeout: Duration,
    /// `PAVED_KUBE_ROLLOUT_POLL_MS`: how often `kube:apply` looks at a
    /// rollout (default 2000).
    pub rollout_poll: Duration,
}

impl Default for KubeConfig {
    fn default() -> Self {
        Self {
            clusters: Vec::new(),
            refresh: Duration::from_secs(15),
            timeout: Duration::from_secs(10),
            rollout_poll: Duration::from_secs(2),
        }
    }
}

impl KubeConfig {
    pub fn cluster(&self, name: &str) -> Option<&ClusterConfig> {
        self.clusters.iter().find(|c| c.name == name)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    clusters: Vec<FileCluster>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileCluster {
    name: String,
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
    #[serde(default)]
    in_cluster: bool,
    #[serde(default)]
    teams: Option<Vec<String>>,
    namespace: Option<String>,
    #[serde(default)]
    production: bool,
    environment: Option<String>,
    vault_auth_mount: Option<String>,
}

const VAR: &str = "PAVED_KUBE_CLUSTERS";

fn seconds(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
    unit: fn(u64) -> Duration,
) -> Result<Duration, ConfigError> {
    match get(var) {
        None => Ok(unit(default)),
        Some(raw) => raw
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| range.contains(n))
            .map(unit)
            .ok_or_else(|| {
                ConfigError::new(
                    var,
                    format!(
                        "must be a whole number from {} to {}",
                        range.start(),
                        range.end()
                    ),
                )
            }),
    }
}

/// A cluster or team name as Paved accepts them: a DNS-1123 label.
fn is_name(s: &str) -> bool {
    crate::secrets::store::is_dns1123_label(s)
}

pub(crate) fn parse(get: &impl Fn(&str) -> Option<String>) -> Result<KubeConfig, ConfigError> {
    let mut config = KubeConfig {
        refresh: seconds(
            get,
            "PAVED_KUBE_REFRESH_SECONDS",
            15,
            1..=3600,
            Duration::from_secs,
        )?,
        timeout: seconds(
            get,
            "PAVED_KUBE_TIMEOUT_SECONDS",
            10,
            1..=300,
            Duration::from_secs,
        )?,
        rollout_poll: seconds(
            get,
            "PAVED_KUBE_ROLLOUT_POLL_MS",
            2000,
            10..=60_000,
            Duration::from_millis,
        )?,
        clusters: Vec::new(),
    };
    match get(VAR) {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ConfigError::new(VAR, format!("cannot read `{path}`: {e}")))?;
            config.clusters = parse_file(&text, std::path::Path::new(&path))
                .map_err(|m| ConfigError::new(VAR, format!("`{path}`: {m}")))?;
        }
        None if get("KUBERNETES_SERVICE_HOST").is_some() => {
            let name = get("PAVED_KUBE_IN_CLUSTER_NAME").unwrap_or_else(|| "local".to_owned());
            if !is_name(&name) {
                return Err(ConfigError::new(
                    "PAVED_KUBE_IN_CLUSTER_NAME",
                    "must be 1 to 63 lowercase letters, digits and dashes",
                ));
            }
            config.clusters.push(ClusterConfig {
                environment: name.clone(),
                name,
                credentials: Credentials::InCluster,
                teams: vec!["*".into()],
                namespace: "{team}".into(),
                production: false,
                vault_auth_mount: None,
            });
        }
        None => {}
    }
    Ok(config)
}

/// Reads the clusters file; relative kubeconfig paths are relative to it.
pub fn parse_file(text: &str, path: &std::path::Path) -> Result<Vec<ClusterConfig>, String> {
    let file: File = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    let base = path.parent().unwrap_or(std::path::Path::new("."));
    let mut out: Vec<ClusterConfig> = Vec::new();
    for c in file.clusters {
        let at = format!("cluster `{}`", c.name);
        if !is_name(&c.name) {
            return Err(format!(
                "{at}: a name is 1 to 63 lowercase letters, digits and dashes"
            ));
        }
        if out.iter().any(|o| o.name == c.name) {
            return Err(format!("{at} is listed twice"));
        }
        let credentials = match (c.kubeconfig, c.in_cluster) {
            (Some(p), false) => {
                let p = if p.is_relative() { base.join(p) } else { p };
                let text = std::fs::read_to_string(&p)
                    .map_err(|e| format!("{at}: cannot read kubeconfig `{}`: {e}", p.display()))?;
                let kc: ::kube::config::Kubeconfig = serde_yaml::from_str(&text)
                    .map_err(|e| format!("{at}: `{}` is not a kubeconfig: {e}", p.display()))?;
                if let Some(ctx) = &c.context {
                    if !kc.contexts.iter().any(|n| &n.name == ctx) {
                        return Err(format!(
                            "{at}: the kubeconfig `{}` has no context `{ctx}`",
                            p.display()
                        ));
                    }
                } else if kc.current_context.is_none() {
                    return Err(format!(
                        "{at}: the kubeconfig `{}` has no current-context; name one with `context`",
                        p.display()
                    ));
                }
                Credentials::Kubeconfig {
                    path: p,
                    context: c.context,
                }
            }
            (None, true) => Credentials::InCluster,
            (Some(_), true) => {
                return Err(format!(
                    "{at}: give either `kubeconfig` or `inCluster: true`, not both"
                ))
            }
            (None, false) => {
                return Err(format!(
                    "{at}: give its `kubeconfig` path or `inCluster: true`"
                ))
            }
        };
        let teams = c.teams.unwrap_or_else(|| vec!["*".into()]);
        if let Some(bad) = teams.iter().find(|t| *t != "*" && !is_name(t)) {
            return Err(format!("{at}: `{bad}` in `teams` is not a team name"));
        }
        let namespace = c.namespace.unwrap_or_else(|| "{team}".into());
        if !namespace.contains("{team}") {
            return Err(format!(
                "{at}: `namespace` must contain {{team}}: each team deploys to its own namespace, so one team can never overwrite another's objects"
            ));
        }
        if !is_name(&namespace.replace("{team}", "team")) {
            return Err(format!(
                "{at}: `namespace` must give a Kubernetes name once `{{team}}` is replaced (lowercase letters, digits and dashes)"
            ));
        }
        if let Some(m) = &c.vault_auth_mount {
            if m.is_empty()
                || !m
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '/'))
            {
                return Err(format!("{at}: `vaultAuthMount` `{m}` is not a mount path"));
            }
        }
        let environment = c.environment.unwrap_or_else(|| {
            if c.production {
                "production".into()
            } else {
                c.name.clone()
            }
        });
        out.push(ClusterConfig {
            name: c.name,
            credentials,
            teams,
            namespace,
            production: c.production,
            environment,
            vault_auth_mount: c.vault_auth_mount,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECONFIG: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:6443\ncontexts:\n- name: stub\n  context:\n    cluster: c\n    user: u\nusers:\n- name: u\n  user:\n    token: t\ncurrent-context: stub\n";

    fn dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("kc.yaml"), KUBECONFIG).unwrap();
        d
    }

    #[test]
    fn reads_clusters_with_defaults_and_relative_kubeconfigs() {
        let d = dir();
        let path = d.path().join("clusters.yaml");
        let got = parse_file(
            "clusters:\n- name: prod-eu\n  kubeconfig: kc.yaml\n  production: true\n  teams: [payments]\n  vaultAuthMount: kubernetes-prod\n- name: dev\n  kubeconfig: kc.yaml\n  context: stub\n  namespace: dev-{team}\n",
            &path,
        )
        .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].environment, "production");
        assert!(got[0].allows("payments") && !got[0].allows("search"));
        assert_eq!(got[0].namespace_for("payments"), "payments");
        assert_eq!(got[1].namespace_for("search"), "dev-search");
        assert_eq!(got[1].environment, "dev");
        assert!(got[1].allows("anyone"));
        assert_eq!(
            got[1].credentials,
            Credentials::Kubeconfig {
                path: d.path().join("kc.yaml"),
                context: Some("stub".into())
            }
        );
    }

    #[test]
    fn bad_files_name_the_cluster_and_the_problem() {
        let d = dir();
        let path = d.path().join("clusters.yaml");
        for (file, expected) in [
            (
                "clusters:\n- name: Prod\n  kubeconfig: kc.yaml\n",
                "1 to 63",
            ),
            ("clusters:\n- name: a\n", "kubeconfig"),
            (
                "clusters:\n- name: a\n  kubeconfig: missing.yaml\n",
                "cannot read kubeconfig",
            ),
            (
                "clusters:\n- name: a\n  kubeconfig: kc.yaml\n  context: nope\n",
                "no context `nope`",
            ),
            (
                "clusters:\n- name: a\n  kubeconfig: kc.yaml\n- name: a\n  inCluster: true\n",
                "twice",
            ),
            (
                "clusters:\n- name: a\n  inCluster: true\n  namespace: 'Team_{team}'\n",
                "namespace",
            ),
            (
                "clusters:\n- name: a\n  inCluster: true\n  teams: ['bad team']\n",
                "not a team name",
            ),
            (
                "clusters:\n- name: a\n  inCluster: true\n  colour: blue\n",
                "unknown field",
            ),
            (
                "clusters:\n- name: a\n  inCluster: true\n  namespace: shared\n",
                "must contain {team}",
            ),
        ] {
            let err = parse_file(file, &path).unwrap_err();
            assert!(err.contains(expected), "{file}: {err}");
        }
    }

    #[test]
    fn the_variable_is_named_when_the_file_is_missing_and_in_cluster_is_the_fallback() {
        let err = parse(&|k| (k == VAR).then(|| "/nonexistent/clusters.yaml".into())).unwrap_err();
        assert_eq!(err.var, VAR);
        let none = parse(&|_| None).unwrap();
        assert!(none.clusters.is_empty());
        let inside =
            parse(&|k| (k == "KUBERNETES_SERVICE_HOST").then(|| "10.0.0.1".into())).unwrap();
        assert_eq!(inside.clusters[0].name, "local");
        assert_eq!(inside.clusters[0].credentials, Credentials::InCluster);
        let err = parse(&|k| (k == "PAVED_KUBE_REFRESH_SECONDS").then(|| "0".into())).unwrap_err();
        assert_eq!(err.var, "PAVED_KUBE_REFRESH_SECONDS");
    }
}
