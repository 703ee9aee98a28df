//! The configured clusters: a client each (built on first use), and their
//! health as admins see it.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use paved_shared::kube::ClusterView;
use tokio::sync::OnceCell;

use super::config::{ClusterConfig, Credentials, KubeConfig};

/// How long a health check is reused.
const HEALTH_TTL: Duration = Duration::from_secs(30);

/// One cluster and its client.
pub struct Cluster {
    pub config: ClusterConfig,
    client: OnceCell<kube::Client>,
    timeout: Duration,
    health: Mutex<Option<(Instant, Health)>>,
}

/// The last health check.
#[derive(Debug, Clone)]
pub struct Health {
    pub checked_at: i64,
    pub result: Result<String, String>,
    pub latency: Duration,
}

impl Cluster {
    fn new(config: ClusterConfig, timeout: Duration) -> Self {
        Self {
            config,
            client: OnceCell::new(),
            timeout,
            health: Mutex::new(None),
        }
    }

    /// The client, built on first use from the kubeconfig or the pod's
    /// service account; an error names the cluster and says why.
    pub async fn client(&self) -> Result<kube::Client, String> {
        self.client
            .get_or_try_init(|| async {
                let mut config = match &self.config.credentials {
                    Credentials::Kubeconfig { path, context } => {
                        let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| {
                            tracing::warn!(cluster = %self.config.name, error = %e, "kubeconfig unreadable");
                            "its kubeconfig cannot be read (the server log says why)".to_owned()
                        })?;
                        let options = kube::config::KubeConfigOptions {
                            context: context.clone(),
                            ..Default::default()
                        };
                        kube::Config::from_custom_kubeconfig(kc, &options)
                            .await
                            .map_err(|e| {
                                tracing::warn!(cluster = %self.config.name, error = %e, "kubeconfig unusable");
                                "its kubeconfig cannot be used (the server log says why)".to_owned()
                            })?
                    }
                    Credentials::InCluster => kube::Config::incluster().map_err(|e| {
                        tracing::warn!(cluster = %self.config.name, error = %e, "no in-cluster credentials");
                        "no in-cluster credentials (the server log says why)".to_owned()
                    })?,
                };
                config.connect_timeout = Some(self.timeout);
                config.read_timeout = Some(self.timeout);
                config.write_timeout = Some(self.timeout);
                kube::Client::try_from(config).map_err(|e| format!("no client: {e}"))
            })
            .await
            .cloned()
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Asks the API server its version (reused for 30 s).
    pub async fn health(&self) -> Health {
        if let Some((at, h)) = self.health.lock().expect("health lock").as_ref() {
            if at.elapsed() < HEALTH_TTL {
                return h.clone();
            }
        }
        let started = Instant::now();
        let result = match self.client().await {
            Ok(client) => {
                match tokio::time::timeout(self.timeout, client.apiserver_version()).await {
                    Ok(Ok(info)) => Ok(info.git_version),
                    Ok(Err(e)) => Err(describe(&e)),
                    Err(_) => Err(format!("no answer within {} s", self.timeout.as_secs())),
                }
            }
            Err(e) => Err(e),
        };
        let health = Health {
            checked_at: crate::now_unix(),
            result,
            latency: started.elapsed(),
        };
        *self.health.lock().expect("health lock") = Some((Instant::now(), health.clone()));
        health
    }

    /// The admins' view of this cluster, with its last health check if any.
    pub fn view(&self, health: Option<&Health>) -> ClusterView {
        ClusterView {
            name: self.config.name.clone(),
            source: self.config.source(),
            teams: self.config.teams.clone(),
            namespace_pattern: self.config.namespace.clone(),
            production: self.config.production,
            state: match health.map(|h| &h.result) {
                None => "unknown",
                Some(Ok(_)) => "ok",
                Some(Err(_)) => "unreachable",
            }
            .into(),
            version: health.and_then(|h| h.result.clone().ok()),
            message: health.and_then(|h| h.result.clone().err()),
            checked_at: health.map(|h| crate::rfc3339_utc(h.checked_at)),
            latency_ms: health.map(|h| h.latency.as_millis() as u64),
        }
    }
}

/// What a failed request means, for people: the API server's own message
/// when it answered, else why it could not be reached. Never a token.
pub fn describe(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => {
            if status.message.is_empty() {
                format!("the API server answered {} {}", status.code, status.reason)
            } else {
                status.message.clone()
            }
        }
        kube::Error::HyperError(e) => format!("cannot reach the API server: {e}"),
        kube::Error::Service(e) => format!("cannot reach the API server: {e}"),
        // Credential errors can quote an exec plugin's command, environment
        // and output: logged for admins, never shown.
        kube::Error::Auth(e) => {
            tracing::warn!(error = %e, "cluster authentication failed");
            "cannot authenticate to the cluster (the server log says why)".into()
        }
        kube::Error::InferConfig(_) | kube::Error::InferKubeconfig(_) => {
            tracing::warn!(error = %err, "cluster configuration failed");
            "the cluster's configuration cannot be used (the server log says why)".into()
        }
        other => other.to_string(),
    }
}

/// The HTTP status of a failed request, when the API server answered.
pub fn status_code(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// Every configured cluster, by name.
#[derive(Default)]
pub struct Clusters {
    clusters: BTreeMap<String, Cluster>,
}

impl Clusters {
    pub fn new(config: &KubeConfig) -> Self {
        Self {
            clusters: config
                .clusters
                .iter()
                .map(|c| (c.name.clone(), Cluster::new(c.clone(), config.timeout)))
                .collect(),
        }
    }

    /// Adds a cluster whose client is given (tests: a recorded conversation).
    pub fn with_client(mut self, config: ClusterConfig, client: kube::Client) -> Self {
        let cluster = Cluster::new(config, Duration::from_secs(5));
        let _ = cluster.client.set(client);
        self.clusters.insert(cluster.config.name.clone(), cluster);
        self
    }

    pub fn get(&self, name: &str) -> Option<&Cluster> {
        self.clusters.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Cluster> {
        self.clusters.values()
    }

    pub fn is_empty(&self) -> bool {
        self.clusters.is_empty()
    }

    pub fn len(&self) -> usize {
        self.clusters.len()
    }
}
