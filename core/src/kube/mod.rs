//! Kubernetes: the clusters golden paths deploy to (`PAVED_KUBE_CLUSTERS`),
//! the scaffolder's `kube:apply` (policy check, server-side dry run,
//! server-side apply, rollout), where each service runs
//! (`kube_placements`), and the runtime view of a service with its
//! problems, events and logs.

pub mod action;
pub mod apply;
pub mod cluster;
pub mod config;
pub mod detect;
pub mod resources;
pub mod runtime;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};
use paved_shared::kube::{ClusterRuntime, ClusterView, PodLogs, RuntimeView};
use serde_json::{json, Value};

use crate::auth::{authorize, Action, Principal};
use crate::{CoreError, CoreState};

use self::cluster::{describe, Clusters};
use self::config::KubeConfig;
use self::runtime::{RuntimeCache, Selector};

/// The annotation that names the clusters an entity runs in (comma-separated).
pub const CLUSTER_ANNOTATION: &str = "paved.dev/kubernetes-cluster";
/// Backstage's annotations for where an entity's objects are.
pub const ID_ANNOTATION: &str = "backstage.io/kubernetes-id";
pub const NAMESPACE_ANNOTATION: &str = "backstage.io/kubernetes-namespace";
pub const SELECTOR_ANNOTATION: &str = "backstage.io/kubernetes-label-selector";

/// Most log lines returned.
pub const LOG_LINES: i64 = 500;
/// Most bytes of log read (a single huge line is cut there).
pub const LOG_BYTES: i64 = 256 * 1024;

/// The clusters, their clients and the runtime cache.
pub struct Kube {
    pub config: KubeConfig,
    pub clusters: Clusters,
    pub cache: RuntimeCache,
}

impl Kube {
    pub fn new(config: KubeConfig) -> Self {
        Self {
            clusters: Clusters::new(&config),
            config,
            cache: RuntimeCache::default(),
        }
    }

    /// With explicit clusters (tests: clients over a recorded conversation).
    pub fn with_clusters(config: KubeConfig, clusters: Clusters) -> Self {
        Self {
            config,
            clusters,
            cache: RuntimeCache::default(),
        }
    }
}

/// Every cluster with its health, for admins.
pub async fn clusters(
    core: &CoreState,
    principal: &Principal,
) -> Result<Vec<ClusterView>, CoreError> {
    authorize(principal, Action::AdministerPlatform)?;
    let checks = core.kube.clusters.iter().map(|c| async move {
        let health = c.health().await;
        c.view(Some(&health))
    });
    Ok(futures_util::future::join_all(checks).await)
}

/// Where an entity's objects are in one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub cluster: String,
    pub namespace: String,
    pub selector: String,
}

/// A placement recorded by `kube:apply`.
#[derive(Debug, Clone)]
pub struct Placement {
    pub cluster: String,
    pub namespace: String,
    pub selector: String,
    /// The team whose kube:apply recorded it.
    pub team: String,
}

async fn placements(core: &CoreState, entity_ref: &str) -> Result<Vec<Placement>, CoreError> {
    let lower = entity_ref.to_ascii_lowercase();
    Ok(paved_store::kube::placements((&core.db).into(), &lower)
        .await?
        .into_iter()
        .map(|r| Placement {
            cluster: r.cluster,
            namespace: r.namespace,
            selector: r.selector,
            team: r.team,
        })
        .collect())
}

/// The clusters (and namespace and selector in each) an entity names: its
/// placements, and its annotations (`paved.dev/kubernetes-cluster`, or the
/// only configured cluster when the entity has Backstage's Kubernetes
/// annotations and there is exactly one). Never any other cluster.
pub fn targets(kube: &Kube, entity: &Value, placements: &[Placement]) -> Vec<Target> {
    let annotation = |k: &str| {
        entity
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(k))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let selector = annotation(SELECTOR_ANNOTATION)
        .map(str::to_owned)
        .or_else(|| annotation(ID_ANNOTATION).map(|id| format!("{ID_ANNOTATION}={id}")));
    let namespace = annotation(NAMESPACE_ANNOTATION)
        .unwrap_or("default")
        .to_owned();
    let mut out: Vec<Target> = placements
        .iter()
        .filter(|p| kube.clusters.get(&p.cluster).is_some())
        .map(|p| Target {
            cluster: p.cluster.clone(),
            namespace: p.namespace.clone(),
            selector: p.selector.clone(),
        })
        .collect();
    let Some(selector) = selector else {
        return out;
    };
    let named: Vec<String> = match annotation(CLUSTER_ANNOTATION) {
        Some(list) => list
            .split(',')
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .collect(),
        None if kube.clusters.len() == 1 && out.is_empty() => kube
            .clusters
            .iter()
            .map(|c| c.config.name.clone())
            .collect(),
        None => Vec::new(),
    };
    for cluster in named {
        if out.iter().any(|t| t.cluster == cluster) {
            continue;
        }
        out.push(Target {
            cluster,
            namespace: namespace.clone(),
            selector: selector.clone(),
        });
    }
    out
}

/// The team that owns an entity (`group:default/payments` → `payments`).
pub fn owner_team(entity: &Value) -> Option<String> {
    let owner = entity.pointer("/spec/owner").and_then(Value::as_str)?;
    let name = match owner.split_once(':') {
        Some((kind, rest)) if kind.eq_ignore_ascii_case("group") => rest,
        Some(_) => return None,
        None => owner,
    };
    let name = name.rsplit('/').next().unwrap_or(name);
    Some(name.to_ascii_lowercase())
}

/// Whether the owning team's events and logs may be read in `target`'s
/// namespace: it is the namespace the cluster gives the team, or the team's
/// own kube:apply put the entity there. A catalog annotation alone never
/// entitles anyone to another namespace's events or logs.
fn entitled(kube: &Kube, target: &Target, owner: Option<&str>, placed: &[Placement]) -> bool {
    let Some(owner) = owner else {
        return false;
    };
    let team_namespace = kube
        .clusters
        .get(&target.cluster)
        .is_some_and(|c| c.config.namespace_for(owner) == target.namespace);
    team_namespace
        || placed.iter().any(|p| {
            p.cluster == target.cluster && p.namespace == target.namespace && p.team == owner
        })
}

/// A pod or object name as Kubernetes accepts them (a DNS subdomain).
pub fn is_object_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(crate::secrets::store::is_dns1123_label)
}

/// A cluster's part of the view with nothing to show but `state` and why.
fn empty_view(target: &Target, state: &str, message: String) -> ClusterRuntime {
    ClusterRuntime {
        cluster: target.cluster.clone(),
        namespace: target.namespace.clone(),
        selector: target.selector.clone(),
        state: state.into(),
        message: Some(message),
        stale: false,
        fetched_at: None,
        workloads: Vec::new(),
        pods: Vec::new(),
        hpas: Vec::new(),
        endpoints: Vec::new(),
        problems: Vec::new(),
        events: None,
        can_read_logs: false,
    }
}

fn unreachable(target: &Target, message: String, stale: Option<ClusterRuntime>) -> ClusterRuntime {
    match stale {
        Some(mut view) => {
            view.state = "unreachable".into();
            view.stale = true;
            view.message = Some(format!(
                "{} cannot be reached right now ({message}); showing what it reported at {}",
                target.cluster,
                view.fetched_at.clone().unwrap_or_default()
            ));
            view
        }
        None => empty_view(
            target,
            "unreachable",
            format!(
                "{} cannot be reached: {message}. Paved tries again on the next refresh; if it persists, ask a platform admin to check the cluster's credentials and network on the Clusters page.",
                target.cluster
            ),
        ),
    }
}

async fn cluster_runtime(
    core: &CoreState,
    target: &Target,
    with_events: bool,
    now: jiff::Timestamp,
) -> ClusterRuntime {
    let Some(cluster) = core.kube.clusters.get(&target.cluster) else {
        return unreachable(
            target,
            "it is not configured in PAVED_KUBE_CLUSTERS".into(),
            None,
        );
    };
    if !crate::secrets::store::is_dns1123_label(&target.namespace) {
        return empty_view(
            target,
            "invalid",
            format!(
                "`{}` is not a Kubernetes namespace; fix the {NAMESPACE_ANNOTATION} annotation",
                target.namespace
            ),
        );
    }
    let selector = match Selector::usable(&target.selector) {
        Ok(s) => s,
        Err(e) => {
            return empty_view(
                target,
                "invalid",
                format!(
                    "the label selector `{}` cannot be used: {e}; fix the {SELECTOR_ANNOTATION} annotation",
                    target.selector
                ),
            )
        }
    };
    let read = core
        .kube
        .cache
        .read(cluster, &target.namespace, core.kube.config.refresh)
        .await;
    let view = read.data.as_ref().map(|s| {
        runtime::view(
            &target.cluster,
            &target.namespace,
            &target.selector,
            &selector,
            s,
            with_events,
            now,
        )
    });
    match (read.error, view) {
        (None, Some(v)) => v,
        (Some(e), stale) => unreachable(target, e, stale),
        (None, None) => unreachable(target, "no answer".into(), None),
    }
}

/// What runs for an entity, in the clusters it names. Everyone who can read
/// the catalog sees the workload summary; events and logs are the owning
/// team's and admins'.
pub async fn runtime(
    core: &CoreState,
    principal: &Principal,
    entity_ref: &str,
) -> Result<RuntimeView, CoreError> {
    let entity = crate::catalog::store::entity_by_ref(&core.db, entity_ref).await?;
    runtime_of(core, principal, entity_ref, &entity, jiff::Timestamp::now()).await
}

async fn runtime_of(
    core: &CoreState,
    principal: &Principal,
    entity_ref: &str,
    entity: &Value,
    now: jiff::Timestamp,
) -> Result<RuntimeView, CoreError> {
    let refresh_seconds = core.kube.config.refresh.as_secs();
    if core.kube.clusters.is_empty() {
        return Ok(RuntimeView {
            entity_ref: entity_ref.to_owned(),
            state: "none".into(),
            message: Some(
                "No Kubernetes cluster is connected to Paved. A platform admin connects clusters with PAVED_KUBE_CLUSTERS (see the README's Kubernetes section).".into(),
            ),
            clusters: Vec::new(),
            refresh_seconds,
        });
    }
    let placed = placements(core, entity_ref).await?;
    let targets = targets(&core.kube, entity, &placed);
    if targets.is_empty() {
        return Ok(RuntimeView {
            entity_ref: entity_ref.to_owned(),
            state: "not-deployed".into(),
            message: Some(format!(
                "Paved does not know where this runs. Deploy it with a golden path's kube:apply step, or add the annotations {ID_ANNOTATION} (or {SELECTOR_ANNOTATION}), {NAMESPACE_ANNOTATION} and {CLUSTER_ANNOTATION} to its catalog-info.yaml."
            )),
            clusters: Vec::new(),
            refresh_seconds,
        });
    }
    let owner = owner_team(entity);
    let member = match &owner {
        Some(team) => authorize(principal, Action::ActInTeam(team)).is_ok(),
        None => principal.is_admin(),
    };
    let clusters = futures_util::future::join_all(targets.iter().map(|t| {
        let insider = member && entitled(&core.kube, t, owner.as_deref(), &placed);
        cluster_runtime(core, t, insider, now)
    }))
    .await;
    Ok(RuntimeView {
        entity_ref: entity_ref.to_owned(),
        state: "ok".into(),
        message: None,
        clusters,
        refresh_seconds,
    })
}

/// The runtime of every Component a team owns that runs somewhere.
pub async fn team_runtime(
    core: &CoreState,
    principal: &Principal,
    team: &str,
) -> Result<Vec<RuntimeView>, CoreError> {
    let owner = format!("group:default/{}", team.to_ascii_lowercase());
    let rows = sqlx::query!(
        r#"SELECT entity_ref AS "entity_ref!", body AS "body!" FROM catalog_entities
           WHERE kind_key = 'component' AND lower(owner_ref) = ?1 ORDER BY name_key LIMIT 200"#,
        owner
    )
    .fetch_all(&core.db)
    .await?;
    let now = jiff::Timestamp::now();
    // Together: components in one namespace share its read, and an
    // unreachable cluster costs one timeout, not one per component.
    let views = futures_util::future::join_all(rows.iter().map(|r| async move {
        let entity: Value = serde_json::from_str(&r.body).unwrap_or_default();
        runtime_of(core, principal, &r.entity_ref, &entity, now).await
    }))
    .await;
    let mut out = Vec::new();
    for view in views {
        let view = view?;
        if view.state == "ok" {
            out.push(view);
        }
    }
    Ok(out)
}

/// A container's logs (the previous run's with `previous`), for the owning
/// team and admins, and only of a pod that belongs to the entity.
pub async fn logs(
    core: &CoreState,
    principal: &Principal,
    entity_ref: &str,
    cluster_name: &str,
    pod: &str,
    container: Option<&str>,
    previous: bool,
) -> Result<PodLogs, CoreError> {
    if !is_object_name(pod) {
        return Err(CoreError::Invalid {
            field: "pod",
            message: format!("`{pod}` is not a pod name"),
        });
    }
    if let Some(c) = container.filter(|c| !crate::secrets::store::is_dns1123_label(c)) {
        return Err(CoreError::Invalid {
            field: "container",
            message: format!("`{c}` is not a container name"),
        });
    }
    let entity = crate::catalog::store::entity_by_ref(&core.db, entity_ref).await?;
    let owner = owner_team(&entity);
    match &owner {
        Some(team) => authorize(principal, Action::ActInTeam(team))?,
        None => authorize(principal, Action::AdministerPlatform)?,
    }
    let placed = placements(core, entity_ref).await?;
    let target = targets(&core.kube, &entity, &placed)
        .into_iter()
        .find(|t| t.cluster == cluster_name)
        .ok_or_else(|| CoreError::NotFound(format!("{entity_ref} in cluster {cluster_name}")))?;
    if !crate::secrets::store::is_dns1123_label(&target.namespace)
        || !entitled(&core.kube, &target, owner.as_deref(), &placed)
    {
        return Err(CoreError::Forbidden(format!(
            "{} is not team {}'s namespace in {cluster_name}, so its logs stay closed; deploy the service there with kube:apply",
            target.namespace,
            owner.as_deref().unwrap_or("(none)")
        )));
    }
    let cluster = core
        .kube
        .clusters
        .get(cluster_name)
        .ok_or_else(|| CoreError::NotFound(format!("cluster {cluster_name}")))?;
    let selector = Selector::usable(&target.selector).map_err(|e| CoreError::Invalid {
        field: "selector",
        message: format!(
            "the label selector `{}` cannot be used: {e}",
            target.selector
        ),
    })?;
    let client = cluster.client().await.map_err(CoreError::Unavailable)?;
    let pods: Api<Pod> = Api::namespaced(client, &target.namespace);
    let found = pods
        .get_opt(pod)
        .await
        .map_err(|e| CoreError::Unavailable(format!("{cluster_name}: {}", describe(&e))))?
        .filter(|p| selector.matches(p.metadata.labels.as_ref()))
        .ok_or_else(|| CoreError::NotFound(format!("pod {pod} of {entity_ref}")))?;
    // Init containers too: a crash-looping migration is one of them.
    let containers: Vec<String> = found
        .spec
        .as_ref()
        .map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
                .map(|c| c.name.clone())
                .collect()
        })
        .unwrap_or_default();
    let container = match container {
        Some(c) if containers.iter().any(|x| x == c) => c.to_owned(),
        Some(c) => {
            return Err(CoreError::Invalid {
                field: "container",
                message: format!("pod {pod} has no container `{c}`"),
            })
        }
        None => containers
            .first()
            .cloned()
            .ok_or_else(|| CoreError::NotFound(format!("containers of pod {pod}")))?,
    };
    let params = LogParams {
        container: Some(container.clone()),
        previous,
        tail_lines: Some(LOG_LINES + 1),
        limit_bytes: Some(LOG_BYTES),
        ..Default::default()
    };
    let text = pods
        .logs(pod, &params)
        .await
        .map_err(|e| match cluster::status_code(&e) {
            Some(400 | 404) => CoreError::NotFound(format!(
                "{} logs of {pod}/{container} ({})",
                if previous { "previous" } else { "current" },
                describe(&e)
            )),
            _ => CoreError::Unavailable(format!("{cluster_name}: {}", describe(&e))),
        })?;
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let truncated = lines.len() as i64 > LOG_LINES;
    if truncated {
        lines.drain(..lines.len() - LOG_LINES as usize);
    }
    Ok(PodLogs {
        pod: pod.to_owned(),
        container,
        previous,
        lines,
        truncated,
    })
}

/// What the scaffolder's `kube:apply` records once applied.
pub struct Record<'a> {
    pub entity_ref: &'a str,
    pub cluster: &'a str,
    pub namespace: &'a str,
    pub selector: &'a str,
    pub team: &'a str,
    pub objects: &'a [String],
    pub task_id: &'a str,
    pub actor: &'a str,
    pub ready: bool,
    pub now: i64,
}

/// Records where a service runs (replacing the cluster's earlier record).
pub async fn record_placement(core: &CoreState, r: Record<'_>) -> Result<(), CoreError> {
    let lower = r.entity_ref.to_ascii_lowercase();
    let objects = serde_json::to_string(r.objects).unwrap_or_else(|_| "[]".into());
    let mut tx = paved_store::Db::from(&core.db).begin().await?;
    paved_store::kube::record(
        tx.conn(),
        paved_store::kube::NewPlacement {
            entity_ref: &lower,
            cluster: r.cluster,
            namespace: r.namespace,
            selector: r.selector,
            team: r.team,
            objects: &objects,
            task_id: r.task_id,
            applied_by: r.actor,
            applied_at: r.now,
            ready: r.ready,
        },
    )
    .await?;
    crate::audit::record(
        tx.conn(),
        r.actor,
        "kube.apply",
        &format!("{}@{}/{}", r.entity_ref, r.cluster, r.namespace),
        None,
        Some(json!({"objects": r.objects, "task": r.task_id, "ready": r.ready})),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Where `kube:apply` last deployed the Component `service` of `team`, for
/// Vault's Kubernetes role: (namespace, the cluster's auth mount if it
/// names one).
pub async fn workload_placement(
    core: &CoreState,
    team: &str,
    service: &str,
) -> Result<Option<(String, Option<String>)>, CoreError> {
    let row = paved_store::kube::latest_of_service(
        (&core.db).into(),
        team,
        &service.to_ascii_lowercase(),
    )
    .await?;
    Ok(row.map(|(cluster, namespace)| {
        let mount = core
            .kube
            .config
            .cluster(&cluster)
            .and_then(|c| c.vault_auth_mount.clone());
        (namespace, mount)
    }))
}

#[cfg(test)]
mod both_backends_tests {
    use paved_store::kube as stored;
    use paved_store::Db;

    /// Placements are recorded, replaced per cluster, marked ready and found
    /// by service name alike on SQLite and PostgreSQL.
    #[tokio::test]
    async fn placements_are_kept_alike_on_both_backends() {
        let Some((sqlite, postgres)) = crate::db::both_backends("kube").await else {
            return;
        };
        let mut seen = vec![];
        for db in [Db::Sqlite(&sqlite), Db::Postgres(&postgres)] {
            let mut out = vec![];
            let place =
                |cluster: &'static str, namespace: &'static str, at: i64| stored::NewPlacement {
                    entity_ref: "component:default/checkout",
                    cluster,
                    namespace,
                    selector: "app.kubernetes.io/name=checkout",
                    team: "payments",
                    objects: r#"["Deployment/checkout"]"#,
                    task_id: "t1",
                    applied_by: "user:dana",
                    applied_at: at,
                    ready: false,
                };
            for p in [
                place("prod-eu", "payments", 10),
                place("dev", "payments-dev", 20),
                // The same cluster again: replaces its record.
                place("prod-eu", "payments-v2", 30),
            ] {
                let mut tx = db.begin().await.unwrap();
                stored::record(tx.conn(), p).await.unwrap();
                tx.commit().await.unwrap();
            }
            stored::mark_ready(db, "component:default/checkout", "dev")
                .await
                .unwrap();
            out.push(format!(
                "{:?}",
                stored::placements(db, "component:default/checkout")
                    .await
                    .unwrap()
            ));
            // The newest placement of service "checkout" of this team.
            out.push(format!(
                "{:?} {:?} {:?}",
                stored::latest_of_service(db, "payments", "checkout")
                    .await
                    .unwrap(),
                stored::latest_of_service(db, "search", "checkout")
                    .await
                    .unwrap(),
                stored::latest_of_service(db, "payments", "check")
                    .await
                    .unwrap(),
            ));
            seen.push(out);
        }
        assert_eq!(seen[0], seen[1]);
        assert!(seen[0][1].starts_with(r#"Some(("prod-eu", "payments-v2")) None None"#));
    }
}
