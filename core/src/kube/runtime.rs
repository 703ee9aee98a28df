//! The runtime view: what runs for a service, read from the clusters the
//! entity names (never the others), one refresh per cluster and namespace
//! per interval whatever the number of viewers (the first viewer after the
//! interval reads; everyone else, including those arriving meanwhile, gets
//! that read), filtered per entity in memory.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Event, Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ListParams};
use paved_shared::kube::{ClusterRuntime, EndpointView, EventView, HpaView, PodView, WorkloadView};

use super::cluster::{describe, status_code, Cluster};
use super::detect;

/// Everything read from one namespace of one cluster.
#[derive(Default)]
pub struct Snapshot {
    /// Unix seconds.
    pub fetched_at: i64,
    pub pods: Vec<Pod>,
    pub deployments: Vec<Deployment>,
    pub statefulsets: Vec<StatefulSet>,
    pub daemonsets: Vec<DaemonSet>,
    pub jobs: Vec<Job>,
    pub cronjobs: Vec<CronJob>,
    pub hpas: Vec<HorizontalPodAutoscaler>,
    pub services: Vec<Service>,
    pub ingresses: Vec<Ingress>,
    pub events: Vec<Event>,
}

struct Entry {
    at: Instant,
    data: Option<Arc<Snapshot>>,
    error: Option<String>,
}

/// Namespaces kept at most (per process); past it, the ones nobody is
/// reading are dropped.
pub const MAX_NAMESPACES: usize = 1_000;
/// Most objects of one kind read from one namespace (events: the newest
/// first is not guaranteed by the API, so the cap is generous).
pub const MAX_OBJECTS: u32 = 2_000;

/// One namespace's entry; its lock is held while the cluster is read, so
/// viewers arriving meanwhile wait for that read instead of sending theirs.
type Slot = Arc<tokio::sync::Mutex<Option<Entry>>>;

/// Namespaces' objects, kept for the refresh interval.
#[derive(Default)]
pub struct RuntimeCache {
    slots: Mutex<HashMap<(String, String), Slot>>,
    /// Reads sent to clusters (one per refresh of a namespace).
    pub refreshes: AtomicU64,
}

/// One namespace's read: the data (possibly from an earlier read) and the
/// error of the latest read, if it failed.
pub struct Read {
    pub data: Option<Arc<Snapshot>>,
    pub error: Option<String>,
}

impl RuntimeCache {
    /// The namespace's objects, read from the cluster at most once per `refresh`.
    pub async fn read(&self, cluster: &Cluster, namespace: &str, refresh: Duration) -> Read {
        let slot = {
            let mut slots = self.slots.lock().expect("runtime cache lock");
            if slots.len() >= MAX_NAMESPACES {
                // Namespaces nobody is reading right now go first; their
                // next viewer reads them again.
                slots.retain(|_, slot| Arc::strong_count(slot) > 1);
            }
            slots
                .entry((cluster.config.name.clone(), namespace.to_owned()))
                .or_default()
                .clone()
        };
        let mut entry = slot.lock().await;
        if let Some(e) = entry.as_ref() {
            if e.at.elapsed() < refresh {
                return Read {
                    data: e.data.clone(),
                    error: e.error.clone(),
                };
            }
        }
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        let previous = entry.as_ref().and_then(|e| e.data.clone());
        // However the cluster answers (or an exec credential plugin hangs),
        // viewers waiting for this read get an answer in bounded time.
        let limit = cluster.timeout() * 2;
        let fetched = match tokio::time::timeout(limit, fetch(cluster, namespace)).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {} s", limit.as_secs())),
        };
        let fresh = match fetched {
            Ok(s) => Entry {
                at: Instant::now(),
                data: Some(Arc::new(s)),
                error: None,
            },
            Err(error) => {
                tracing::warn!(cluster = %cluster.config.name, namespace, %error, "cluster read failed");
                Entry {
                    at: Instant::now(),
                    data: previous,
                    error: Some(error),
                }
            }
        };
        let read = Read {
            data: fresh.data.clone(),
            error: fresh.error.clone(),
        };
        *entry = Some(fresh);
        read
    }
}

/// A list that RBAC may not grant (or a kind the cluster lacks) reads as empty.
fn optional<T>(r: Result<kube::core::ObjectList<T>, kube::Error>) -> Result<Vec<T>, kube::Error>
where
    T: Clone,
{
    match r {
        Ok(list) => Ok(list.items),
        Err(e) if matches!(status_code(&e), Some(403 | 404)) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

async fn fetch(cluster: &Cluster, namespace: &str) -> Result<Snapshot, String> {
    let client = cluster.client().await?;
    let lp = ListParams::default().limit(MAX_OBJECTS);
    macro_rules! list {
        ($t:ty) => {{
            let api = Api::<$t>::namespaced(client.clone(), namespace);
            let lp = &lp;
            async move { api.list(lp).await }
        }};
    }
    let (
        pods,
        deployments,
        statefulsets,
        daemonsets,
        jobs,
        cronjobs,
        hpas,
        services,
        ingresses,
        events,
    ) = tokio::join!(
        list!(Pod),
        list!(Deployment),
        list!(StatefulSet),
        list!(DaemonSet),
        list!(Job),
        list!(CronJob),
        list!(HorizontalPodAutoscaler),
        list!(Service),
        list!(Ingress),
        list!(Event),
    );
    let e = |e: kube::Error| describe(&e);
    Ok(Snapshot {
        fetched_at: crate::now_unix(),
        pods: pods.map_err(e)?.items,
        deployments: deployments.map_err(e)?.items,
        statefulsets: optional(statefulsets).map_err(e)?,
        daemonsets: optional(daemonsets).map_err(e)?,
        jobs: optional(jobs).map_err(e)?,
        cronjobs: optional(cronjobs).map_err(e)?,
        hpas: optional(hpas).map_err(e)?,
        services: optional(services).map_err(e)?,
        ingresses: optional(ingresses).map_err(e)?,
        events: optional(events).map_err(e)?,
    })
}

/// An equality- and set-based label selector, as Kubernetes reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector(Vec<Requirement>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

impl Selector {
    /// Parses `a=b,c!=d,e in (x,y),f notin (z),g,!h` as Kubernetes does:
    /// keys are (optionally prefixed) label names, values label values, and
    /// anything else is refused.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut depth = 0i32;
        let mut current = String::new();
        for ch in text.chars() {
            match ch {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(std::mem::take(&mut current));
                    continue;
                }
                _ => {}
            }
            if !(0..=1).contains(&depth) {
                return Err(format!("`{text}` has unbalanced parentheses"));
            }
            current.push(ch);
        }
        if depth != 0 {
            return Err(format!("`{text}` has unbalanced parentheses"));
        }
        parts.push(current);
        let mut out = Vec::new();
        for part in parts.iter().map(|p| p.trim()) {
            if part.is_empty() {
                return Err(format!("`{text}` has an empty requirement"));
            }
            let value = |v: &str| -> Result<String, String> {
                let v = v.trim();
                if is_label_value(v) {
                    Ok(v.to_owned())
                } else {
                    Err(format!("`{v}` in `{part}` is not a label value"))
                }
            };
            let set = |rest: &str| -> Result<Vec<String>, String> {
                let inner = rest
                    .trim()
                    .strip_prefix('(')
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| format!("`{part}` needs its values in parentheses"))?;
                let values = inner.split(',').map(value).collect::<Result<Vec<_>, _>>()?;
                if values.iter().all(String::is_empty) {
                    return Err(format!("`{part}` needs at least one value"));
                }
                Ok(values)
            };
            // `key in (…)`: the operator is a word after whitespace, before `(`.
            let set_op = |op: &str| -> Option<(String, String)> {
                part.match_indices(op).find_map(|(at, _)| {
                    let rest = part[at + op.len()..].trim_start();
                    (part[..at].ends_with(char::is_whitespace) && rest.starts_with('('))
                        .then(|| (part[..at].trim().to_owned(), rest.to_owned()))
                })
            };
            let req = if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEq(k.trim().into(), value(v)?)
            } else if let Some((k, v)) = part.split_once("==") {
                Requirement::Eq(k.trim().into(), value(v)?)
            } else if let Some((k, v)) = part.split_once('=') {
                Requirement::Eq(k.trim().into(), value(v)?)
            } else if let Some((k, rest)) = set_op("notin") {
                Requirement::NotIn(k, set(&rest)?)
            } else if let Some((k, rest)) = set_op("in") {
                Requirement::In(k, set(&rest)?)
            } else if let Some(k) = part.strip_prefix('!') {
                Requirement::NotExists(k.trim().into())
            } else {
                Requirement::Exists(part.into())
            };
            let key = match &req {
                Requirement::Eq(k, _)
                | Requirement::NotEq(k, _)
                | Requirement::In(k, _)
                | Requirement::NotIn(k, _)
                | Requirement::Exists(k)
                | Requirement::NotExists(k) => k,
            };
            if !is_label_key(key) {
                return Err(format!("`{key}` in `{part}` is not a label name"));
            }
            out.push(req);
        }
        Ok(Self(out))
    }

    /// Parses a selector the runtime view may use: valid, and naming what to
    /// select ([`Selector::selects`]).
    pub fn usable(text: &str) -> Result<Self, String> {
        let selector = Self::parse(text)?;
        if selector.selects() {
            Ok(selector)
        } else {
            Err(
                "it only says what to leave out, so it would select everything in the namespace"
                    .into(),
            )
        }
    }

    /// Whether it names what to select (an `=`, `in` or existence
    /// requirement), rather than only what to leave out: `!x` alone would
    /// select every object in the namespace.
    pub fn selects(&self) -> bool {
        self.0.iter().any(|r| {
            matches!(
                r,
                Requirement::Eq(..) | Requirement::In(..) | Requirement::Exists(_)
            )
        })
    }

    pub fn matches(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k));
        self.0.iter().all(|r| match r {
            Requirement::Eq(k, v) => get(k) == Some(v),
            Requirement::NotEq(k, v) => get(k) != Some(v),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.contains(x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| !vs.contains(x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        })
    }
}

/// A label value: empty, or up to 63 alphanumerics, `-`, `_` and `.`,
/// starting and ending alphanumeric.
fn is_label_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// A label key: a non-empty label value as its name, optionally after a
/// DNS subdomain prefix and `/`.
fn is_label_key(k: &str) -> bool {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    !name.is_empty()
        && is_label_value(name)
        && prefix.is_none_or(|p| {
            !p.is_empty()
                && p.len() <= 253
                && p.split('.').all(crate::secrets::store::is_dns1123_label)
        })
}

fn ts(t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> String {
    crate::rfc3339_utc(t.0.as_second())
}

fn images(spec: Option<&k8s_openapi::api::core::v1::PodSpec>) -> Vec<String> {
    spec.map(|s| {
        s.containers
            .iter()
            .filter_map(|c| c.image.clone())
            .collect()
    })
    .unwrap_or_default()
}

/// Builds one cluster's part of the view for `selector` from a snapshot.
pub fn view(
    cluster: &str,
    namespace: &str,
    selector_text: &str,
    selector: &Selector,
    snapshot: &Snapshot,
    with_events: bool,
    now: jiff::Timestamp,
) -> ClusterRuntime {
    let m = |labels: &Option<BTreeMap<String, String>>| selector.matches(labels.as_ref());
    let pods: Vec<Pod> = snapshot
        .pods
        .iter()
        .filter(|p| m(&p.metadata.labels))
        .cloned()
        .collect();
    let deployments: Vec<Deployment> = snapshot
        .deployments
        .iter()
        .filter(|d| m(&d.metadata.labels))
        .cloned()
        .collect();
    let statefulsets: Vec<StatefulSet> = snapshot
        .statefulsets
        .iter()
        .filter(|d| m(&d.metadata.labels))
        .cloned()
        .collect();
    let daemonsets: Vec<DaemonSet> = snapshot
        .daemonsets
        .iter()
        .filter(|d| m(&d.metadata.labels))
        .cloned()
        .collect();
    let mut workload_names: Vec<(String, String)> = Vec::new();
    let mut workloads = Vec::new();
    for d in &deployments {
        let spec = d.spec.clone().unwrap_or_default();
        let status = d.status.clone().unwrap_or_default();
        let desired = spec.replicas.unwrap_or(1);
        let available = status.available_replicas.unwrap_or(0);
        let failing =
            status.conditions.iter().flatten().any(|c| {
                c.status == "False" && (c.type_ == "Available" || c.type_ == "Progressing")
            });
        let name = d.metadata.name.clone().unwrap_or_default();
        workload_names.push(("Deployment".into(), name.clone()));
        workloads.push(WorkloadView {
            kind: "Deployment".into(),
            name,
            desired: Some(desired),
            ready: status.ready_replicas.unwrap_or(0),
            updated: status.updated_replicas.unwrap_or(0),
            available,
            images: images(spec.template.spec.as_ref()),
            status: if failing {
                "Failing"
            } else if desired == 0 {
                "Scaled to zero"
            } else if available >= desired {
                "Available"
            } else {
                "Progressing"
            }
            .into(),
            detail: None,
        });
    }
    for s in &statefulsets {
        let spec = s.spec.clone().unwrap_or_default();
        let status = s.status.clone().unwrap_or_default();
        let desired = spec.replicas.unwrap_or(1);
        let ready = status.ready_replicas.unwrap_or(0);
        let name = s.metadata.name.clone().unwrap_or_default();
        workload_names.push(("StatefulSet".into(), name.clone()));
        workloads.push(WorkloadView {
            kind: "StatefulSet".into(),
            name,
            desired: Some(desired),
            ready,
            updated: status.updated_replicas.unwrap_or(0),
            available: status.available_replicas.unwrap_or(0),
            images: images(spec.template.spec.as_ref()),
            status: if ready >= desired {
                "Available"
            } else {
                "Progressing"
            }
            .into(),
            detail: None,
        });
    }
    for d in &daemonsets {
        let spec = d.spec.clone().unwrap_or_default();
        let status = d.status.clone().unwrap_or_default();
        let name = d.metadata.name.clone().unwrap_or_default();
        workload_names.push(("DaemonSet".into(), name.clone()));
        workloads.push(WorkloadView {
            kind: "DaemonSet".into(),
            name,
            desired: Some(status.desired_number_scheduled),
            ready: status.number_ready,
            updated: status.updated_number_scheduled.unwrap_or(0),
            available: status.number_available.unwrap_or(0),
            images: images(spec.template.spec.as_ref()),
            status: if status.number_ready >= status.desired_number_scheduled {
                "Available"
            } else {
                "Progressing"
            }
            .into(),
            detail: None,
        });
    }
    for j in snapshot.jobs.iter().filter(|j| m(&j.metadata.labels)) {
        let spec = j.spec.clone().unwrap_or_default();
        let status = j.status.clone().unwrap_or_default();
        let failed = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Failed" && c.status == "True");
        let complete = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Complete" && c.status == "True");
        let name = j.metadata.name.clone().unwrap_or_default();
        workload_names.push(("Job".into(), name.clone()));
        workloads.push(WorkloadView {
            kind: "Job".into(),
            name,
            desired: Some(spec.completions.unwrap_or(1)),
            ready: status.ready.unwrap_or(0),
            updated: status.succeeded.unwrap_or(0),
            available: status.active.unwrap_or(0),
            images: images(spec.template.spec.as_ref()),
            status: if failed {
                "Failed"
            } else if complete {
                "Complete"
            } else {
                "Running"
            }
            .into(),
            detail: Some(format!(
                "{} succeeded, {} failed",
                status.succeeded.unwrap_or(0),
                status.failed.unwrap_or(0)
            )),
        });
    }
    for c in snapshot.cronjobs.iter().filter(|j| m(&j.metadata.labels)) {
        let spec = c.spec.clone().unwrap_or_default();
        let status = c.status.clone().unwrap_or_default();
        let name = c.metadata.name.clone().unwrap_or_default();
        workload_names.push(("CronJob".into(), name.clone()));
        workloads.push(WorkloadView {
            kind: "CronJob".into(),
            name,
            desired: None,
            ready: 0,
            updated: 0,
            available: status.active.map_or(0, |a| a.len() as i32),
            images: images(
                spec.job_template
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.spec.as_ref()),
            ),
            status: if spec.suspend == Some(true) {
                "Suspended"
            } else {
                "Scheduled"
            }
            .into(),
            detail: Some(format!(
                "{}{}",
                spec.schedule,
                status
                    .last_schedule_time
                    .as_ref()
                    .map(|t| format!(", last run {}", ts(t)))
                    .unwrap_or_default()
            )),
        });
    }
    let hpas: Vec<HorizontalPodAutoscaler> = snapshot
        .hpas
        .iter()
        .filter(|h| {
            m(&h.metadata.labels)
                || h.spec.as_ref().is_some_and(|s| {
                    workload_names.iter().any(|(k, n)| {
                        *k == s.scale_target_ref.kind && *n == s.scale_target_ref.name
                    })
                })
        })
        .cloned()
        .collect();
    let problems = detect::detect(
        &detect::Observed {
            pods: &pods,
            deployments: &deployments,
            statefulsets: &statefulsets,
            daemonsets: &daemonsets,
            hpas: &hpas,
            details: with_events,
        },
        now,
    );
    let pod_views: Vec<PodView> = pods.iter().map(pod_view).collect();
    let hpa_views = hpas
        .iter()
        .map(|h| {
            let spec = h.spec.clone().unwrap_or_default();
            let status = h.status.clone().unwrap_or_default();
            HpaView {
                name: h.metadata.name.clone().unwrap_or_default(),
                target: format!(
                    "{}/{}",
                    spec.scale_target_ref.kind, spec.scale_target_ref.name
                ),
                min_replicas: spec.min_replicas.unwrap_or(1),
                max_replicas: spec.max_replicas,
                current_replicas: status.current_replicas.unwrap_or(0),
                desired_replicas: status.desired_replicas,
            }
        })
        .collect();
    let mut endpoints = Vec::new();
    for s in snapshot.services.iter().filter(|s| m(&s.metadata.labels)) {
        let spec = s.spec.clone().unwrap_or_default();
        let ports = spec
            .ports
            .iter()
            .flatten()
            .map(|p| format!("{}/{}", p.port, p.protocol.as_deref().unwrap_or("TCP")))
            .collect::<Vec<_>>()
            .join(", ");
        endpoints.push(EndpointView {
            kind: "Service".into(),
            name: s.metadata.name.clone().unwrap_or_default(),
            detail: format!("{} {ports}", spec.type_.as_deref().unwrap_or("ClusterIP")),
            urls: Vec::new(),
        });
    }
    for i in snapshot.ingresses.iter().filter(|s| m(&s.metadata.labels)) {
        let spec = i.spec.clone().unwrap_or_default();
        let tls_hosts: Vec<String> = spec
            .tls
            .iter()
            .flatten()
            .flat_map(|t| t.hosts.clone().unwrap_or_default())
            .collect();
        let mut urls = Vec::new();
        for rule in spec.rules.iter().flatten() {
            let Some(host) = &rule.host else { continue };
            let scheme = if tls_hosts.contains(host) {
                "https"
            } else {
                "http"
            };
            let paths: Vec<String> = rule
                .http
                .as_ref()
                .map(|h| {
                    h.paths
                        .iter()
                        .map(|p| p.path.clone().unwrap_or_else(|| "/".into()))
                        .collect()
                })
                .unwrap_or_else(|| vec!["/".into()]);
            for p in paths {
                urls.push(format!("{scheme}://{host}{p}"));
            }
        }
        endpoints.push(EndpointView {
            kind: "Ingress".into(),
            name: i.metadata.name.clone().unwrap_or_default(),
            detail: urls.join(" "),
            urls,
        });
    }
    let events = with_events.then(|| {
        // Exactly the objects shown, and the ReplicaSets that own their pods;
        // never a name that merely starts like one of them.
        let mut names: Vec<(&str, &str)> = pods
            .iter()
            .filter_map(|p| p.metadata.name.as_deref().map(|n| ("Pod", n)))
            .chain(workload_names.iter().map(|(k, n)| (k.as_str(), n.as_str())))
            .collect();
        for p in &pods {
            for o in p.metadata.owner_references.iter().flatten() {
                names.push((o.kind.as_str(), o.name.as_str()));
            }
        }
        let mut events: Vec<&Event> = snapshot
            .events
            .iter()
            .filter(|e| {
                let kind = e.involved_object.kind.as_deref().unwrap_or_default();
                e.involved_object
                    .name
                    .as_deref()
                    .is_some_and(|n| names.contains(&(kind, n)))
            })
            .collect();
        events.sort_by_key(|e| {
            std::cmp::Reverse(
                e.last_timestamp
                    .as_ref()
                    .map(|t| t.0)
                    .or(e.event_time.as_ref().map(|t| t.0)),
            )
        });
        events
            .into_iter()
            .take(50)
            .map(|e| EventView {
                kind: e.type_.clone().unwrap_or_else(|| "Normal".into()),
                reason: e.reason.clone().unwrap_or_default(),
                object: format!(
                    "{}/{}",
                    e.involved_object.kind.as_deref().unwrap_or(""),
                    e.involved_object.name.as_deref().unwrap_or("")
                ),
                message: e.message.clone().unwrap_or_default(),
                count: e.count.unwrap_or(1),
                last_seen: e.last_timestamp.as_ref().map(ts).or(e
                    .event_time
                    .as_ref()
                    .map(|t| crate::rfc3339_utc(t.0.as_second()))),
            })
            .collect()
    });
    ClusterRuntime {
        cluster: cluster.to_owned(),
        namespace: namespace.to_owned(),
        selector: selector_text.to_owned(),
        state: "ok".into(),
        message: None,
        stale: false,
        fetched_at: Some(crate::rfc3339_utc(snapshot.fetched_at)),
        workloads,
        pods: pod_views,
        hpas: hpa_views,
        endpoints,
        problems,
        events,
        can_read_logs: with_events,
    }
}

fn pod_view(p: &Pod) -> PodView {
    let status = p.status.clone().unwrap_or_default();
    let statuses = status.container_statuses.clone().unwrap_or_default();
    let ready = statuses.iter().filter(|c| c.ready).count();
    let total = p
        .spec
        .as_ref()
        .map_or(statuses.len(), |s| s.containers.len());
    PodView {
        name: p.metadata.name.clone().unwrap_or_default(),
        phase: status.phase.clone().unwrap_or_else(|| "Unknown".into()),
        ready: format!("{ready}/{total}"),
        restarts: statuses.iter().map(|c| c.restart_count).sum(),
        last_termination: statuses.iter().find_map(|c| {
            c.last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .map(|t| {
                    format!(
                        "{} (exit {})",
                        t.reason.clone().unwrap_or_else(|| "Terminated".into()),
                        t.exit_code
                    )
                })
        }),
        waiting: statuses.iter().find_map(|c| {
            c.state
                .as_ref()
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.clone())
        }),
        node: p.spec.as_ref().and_then(|s| s.node_name.clone()),
        started_at: status.start_time.as_ref().map(ts),
        containers: p
            .spec
            .as_ref()
            .map(|s| s.containers.iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selectors_read_as_kubernetes_reads_them() {
        let l = labels(&[("app", "web"), ("tier", "front"), ("env", "prod")]);
        for (s, expected) in [
            ("app=web", true),
            ("app==web,tier=front", true),
            ("app=api", false),
            ("env!=dev", true),
            ("env in (prod, staging)", true),
            ("env notin (prod)", false),
            ("tier", true),
            ("!canary", true),
            ("!tier", false),
            ("domain in (x)", false),
            ("tier in (front)", true),
            ("app=web,env in (dev)", false),
        ] {
            assert_eq!(
                Selector::parse(s).unwrap().matches(Some(&l)),
                expected,
                "{s}"
            );
        }
        assert!(Selector::parse("env in(prod)").unwrap().matches(Some(&l)));
        assert!(!Selector::parse("app=web").unwrap().matches(None));
        for bad in [
            "",
            "env in prod",
            "a=b),c=d",
            "x in ()",
            "a=b,,c=d",
            "app=we b",
            "bad key=x",
            "a=(b",
            "app.kubernetes.io//name=x",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
        assert!(Selector::parse("backstage.io/kubernetes-id=web")
            .unwrap()
            .selects());
        assert!(!Selector::parse("!canary,env!=dev").unwrap().selects());
    }
}
