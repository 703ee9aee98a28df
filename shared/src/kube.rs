//! Kubernetes on the wire: the clusters Paved deploys to and reads from, and
//! the runtime view of a service (what runs, what is failing, why, and what
//! to do about it), as `/api/kube/v1` and the service and team pages speak
//! them.

use serde::{Deserialize, Serialize};

/// A configured cluster as admins see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterView {
    pub name: String,
    /// Where its credentials come from: `kubeconfig <path>` or `in-cluster`.
    pub source: String,
    /// Teams that may deploy there (`*` for every team).
    pub teams: Vec<String>,
    /// The namespace a team's services go to, `{team}` replaced.
    pub namespace_pattern: String,
    /// Deployments there count as production deployments.
    pub production: bool,
    /// `ok`, `unreachable` or `unknown` (not checked yet).
    pub state: String,
    /// The API server's version, when reachable.
    pub version: Option<String>,
    /// Why it is unreachable, in words.
    pub message: Option<String>,
    /// When it was last checked (RFC 3339, UTC).
    pub checked_at: Option<String>,
    /// How long the check took, in milliseconds.
    pub latency_ms: Option<u64>,
}

/// How serious a detected problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// One detected problem with a workload, like Backstage's Kubernetes error
/// detection: what is wrong, on which object, and what usually fixes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// A stable code: `CrashLoopBackOff`, `ImagePullBackOff`, `InvalidImageName`,
    /// `CreateContainerConfigError`, `OOMKilled`, `ReadinessFailing`,
    /// `DeploymentCondition`, `HpaAtMaxReplicas`.
    pub code: String,
    pub severity: Severity,
    /// `Kind/name` of the object (a pod's container as `Pod/name (container)`).
    pub object: String,
    /// What is wrong, from the object's own status.
    pub message: String,
    /// What usually fixes it.
    pub suggestion: String,
    /// How many objects show the same problem (pods of one workload).
    pub count: u32,
}

/// A workload: Deployment, StatefulSet, DaemonSet, Job or CronJob.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkloadView {
    pub kind: String,
    pub name: String,
    /// Desired replicas (pods to complete for a Job; `null` for a CronJob).
    pub desired: Option<i32>,
    pub ready: i32,
    pub updated: i32,
    pub available: i32,
    /// Images of its pod template.
    pub images: Vec<String>,
    /// A one-line state: `Available`, `Progressing`, `Failed`, `Suspended`, …
    pub status: String,
    /// For a CronJob, its schedule; for a Job, its completions.
    pub detail: Option<String>,
}

/// A pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PodView {
    pub name: String,
    /// `Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`.
    pub phase: String,
    /// Ready containers out of all.
    pub ready: String,
    pub restarts: i32,
    /// The reason the last container run ended (`OOMKilled`, `Error`, …).
    pub last_termination: Option<String>,
    /// The waiting reason of a container that is not running (`CrashLoopBackOff`, …).
    pub waiting: Option<String>,
    pub node: Option<String>,
    /// RFC 3339, UTC.
    pub started_at: Option<String>,
    pub containers: Vec<String>,
}

/// A HorizontalPodAutoscaler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HpaView {
    pub name: String,
    pub target: String,
    pub min_replicas: i32,
    pub max_replicas: i32,
    pub current_replicas: i32,
    pub desired_replicas: i32,
}

/// A Service or an Ingress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EndpointView {
    /// `Service` or `Ingress`.
    pub kind: String,
    pub name: String,
    /// Type and ports of a Service; hosts and paths of an Ingress.
    pub detail: String,
    /// An Ingress's URLs (`http(s)://host/path`).
    pub urls: Vec<String>,
}

/// A Kubernetes event about one of the service's objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventView {
    /// `Normal` or `Warning`.
    pub kind: String,
    pub reason: String,
    pub object: String,
    pub message: String,
    pub count: i32,
    /// RFC 3339, UTC.
    pub last_seen: Option<String>,
}

/// What runs for a service in one cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterRuntime {
    pub cluster: String,
    pub namespace: String,
    /// The label selector the objects were found by.
    pub selector: String,
    /// `ok` or `unreachable` (then `message` says why and the rest is empty
    /// or, when an earlier read exists, that read with `stale` set).
    pub state: String,
    pub message: Option<String>,
    /// The data is from an earlier read because the cluster cannot be reached now.
    pub stale: bool,
    /// When the data was read from the cluster (RFC 3339, UTC).
    pub fetched_at: Option<String>,
    pub workloads: Vec<WorkloadView>,
    pub pods: Vec<PodView>,
    pub hpas: Vec<HpaView>,
    pub endpoints: Vec<EndpointView>,
    pub problems: Vec<Problem>,
    /// Recent events; only for the owning team and admins (`null` otherwise).
    pub events: Option<Vec<EventView>>,
    /// Whether the viewer may read container logs here.
    pub can_read_logs: bool,
}

/// The runtime view of one catalog entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuntimeView {
    pub entity_ref: String,
    /// `none` (no cluster configured), `not-deployed` (the entity names no
    /// cluster workload) or `ok` (see `clusters`).
    pub state: String,
    /// What to do next when there is nothing to show.
    pub message: Option<String>,
    pub clusters: Vec<ClusterRuntime>,
    /// Seconds between refreshes of the cached data.
    pub refresh_seconds: u64,
}

/// Container logs as the owning team reads them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PodLogs {
    pub pod: String,
    pub container: String,
    /// The previous (crashed) run's logs rather than the current one's.
    pub previous: bool,
    pub lines: Vec<String>,
    /// The log was cut to its last lines.
    pub truncated: bool,
}
