//! `kube:apply`: the rendered manifests reach a cluster the same way every
//! time. The plan puts every object in the service's namespace (refusing
//! cluster-wide objects and other namespaces), adds the namespace labelled
//! with the owning team and orders objects by what depends on what; then
//! the cluster's own admission chain answers a server-side dry run of every
//! object (field manager `paved`) before anything changes; then each is
//! applied with server-side apply, and the workloads' rollouts are watched
//! until ready or the timeout, with warnings, events and detected problems
//! in the log.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{json, Value};

use super::cluster::{describe, status_code};
use super::resources::{self, UNKNOWN_ORDER};

/// The field manager Paved applies as.
pub const FIELD_MANAGER: &str = "paved";

/// How a log line is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// Where progress goes (the task's live log; a list in tests).
#[async_trait::async_trait]
pub trait Progress: Send + Sync {
    async fn line(&self, level: Level, message: &str);
}

/// One object to apply.
#[derive(Debug, Clone)]
pub struct Item {
    /// `Kind/name`.
    pub label: String,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    /// `None` for cluster-scoped objects (the namespace itself).
    pub namespace: Option<String>,
    pub order: u8,
    pub body: Value,
}

/// What to apply where.
#[derive(Debug, Clone)]
pub struct Plan {
    pub namespace: String,
    /// The team the namespace belongs to.
    pub team: String,
    pub items: Vec<Item>,
}

/// Builds the plan: every object in `namespace`, the namespace labelled
/// with `team` first, dependencies before dependants. Refuses objects that
/// name another namespace, cluster-wide objects and malformed objects,
/// naming each.
pub fn plan(objects: Vec<Value>, namespace: &str, team: &str) -> Result<Plan, String> {
    let mut items = Vec::new();
    let mut problems = Vec::new();
    let mut namespace_object: Option<Value> = None;
    for (i, mut object) in objects.into_iter().enumerate() {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if api_version.is_empty() || kind.is_empty() || name.is_empty() {
            problems.push(format!(
                "object {} has no apiVersion, kind or metadata.name",
                i + 1
            ));
            continue;
        }
        let label = format!("{kind}/{name}");
        if !super::is_object_name(&name) && !is_path_segment(&name) {
            problems.push(format!("{label}: `{name}` is not a Kubernetes object name"));
            continue;
        }
        if object.pointer("/metadata/generateName").is_some() {
            problems.push(format!(
                "{label}: generateName cannot be applied; give it a fixed name"
            ));
            continue;
        }
        let known = resources::known(&api_version, &kind);
        if kind == "Namespace" && api_version == "v1" {
            if name != namespace {
                problems.push(format!(
                    "{label}: this service deploys to the namespace `{namespace}`, not `{name}`"
                ));
            } else {
                namespace_object = Some(object);
            }
            continue;
        }
        if known.is_some_and(|k| !k.namespaced) {
            problems.push(format!(
                "{label} is cluster-wide; only the platform team applies cluster-wide objects, so remove it from the template"
            ));
            continue;
        }
        match object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
        {
            Some(ns) if ns != namespace => {
                problems.push(format!(
                    "{label} names the namespace `{ns}`, but this service deploys to `{namespace}`"
                ));
                continue;
            }
            Some(_) => {}
            None => {
                if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert("namespace".into(), json!(namespace));
                }
            }
        }
        // Status is the cluster's to write.
        if let Some(map) = object.as_object_mut() {
            map.remove("status");
        }
        items.push(Item {
            label,
            api_version,
            kind,
            name,
            namespace: Some(namespace.to_owned()),
            order: known.map_or(UNKNOWN_ORDER, |k| k.order),
            body: object,
        });
    }
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    if items.is_empty() {
        return Err("no Kubernetes objects to apply".into());
    }
    let mut ns = namespace_object.unwrap_or_else(
        || json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
    );
    if let Some(meta) = ns.get_mut("metadata").and_then(Value::as_object_mut) {
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        if let Some(labels) = labels.as_object_mut() {
            for (k, v) in [
                ("owner", team),
                ("team", team),
                ("paved.dev/team", team),
                ("app.kubernetes.io/managed-by", "paved"),
            ] {
                labels.insert(k.into(), json!(v));
            }
        }
    }
    items.push(Item {
        label: format!("Namespace/{namespace}"),
        api_version: "v1".into(),
        kind: "Namespace".into(),
        name: namespace.to_owned(),
        namespace: None,
        order: 0,
        body: ns,
    });
    items.sort_by_key(|i| i.order);
    Ok(Plan {
        namespace: namespace.to_owned(),
        team: team.to_owned(),
        items,
    })
}

/// A name some kinds allow beyond DNS subdomains (RBAC names such as
/// `system:reader`): one URL path segment, nothing that changes the URL.
fn is_path_segment(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':'))
}

/// What `kube:apply` did.
#[derive(Debug, Clone)]
pub struct Applied {
    /// `Kind/name` of every object applied, in order.
    pub objects: Vec<String>,
    /// Whether every rollout became ready (false when not waited for).
    pub ready: bool,
}

/// Options of one apply.
#[derive(Debug, Clone)]
pub struct Options {
    /// Take over fields another manager owns.
    pub force: bool,
    /// Wait for rollouts.
    pub wait: bool,
    pub timeout: Duration,
    pub poll: Duration,
}

async fn resource(client: &kube::Client, item: &Item) -> Result<ApiResource, String> {
    if let Some(k) = resources::known(&item.api_version, &item.kind) {
        return Ok(k.api_resource());
    }
    let (group, version) = resources::split_api_version(&item.api_version);
    let gvk = GroupVersionKind::gvk(group, version, &item.kind);
    let (ar, caps) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .map_err(|e| {
            format!(
                "{}: the cluster does not serve {} {} ({})",
                item.label,
                item.api_version,
                item.kind,
                describe(&e)
            )
        })?;
    if caps.scope == kube::discovery::Scope::Cluster {
        return Err(format!(
            "{} is cluster-wide; only the platform team applies cluster-wide objects, so remove it from the template",
            item.label
        ));
    }
    Ok(ar)
}

fn api(client: &kube::Client, item: &Item, ar: &ApiResource) -> Api<DynamicObject> {
    match &item.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
        None => Api::all_with(client.clone(), ar),
    }
}

fn refusal(item: &Item, err: &kube::Error) -> String {
    let message = describe(err);
    match status_code(err) {
        Some(409) => format!(
            "{}: {message}. Another field manager owns these fields: set `force: true` on the step to take them over, or stop managing them elsewhere",
            item.label
        ),
        _ => format!("{}: {message}", item.label),
    }
}

/// Dry-runs, applies and (with `wait`) watches the rollout of `plan`.
pub async fn run(
    client: &kube::Client,
    plan: &Plan,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Applied, String> {
    let mut resolved = Vec::with_capacity(plan.items.len());
    for item in &plan.items {
        resolved.push(resource(client, item).await?);
    }
    let params = {
        let p = PatchParams::apply(FIELD_MANAGER);
        if options.force {
            p.force()
        } else {
            p
        }
    };

    // The namespace must exist for the cluster to dry-run what goes in it.
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let mut created_namespace = false;
    match namespaces.get_opt(&plan.namespace).await {
        Ok(Some(existing)) => {
            let owner = existing
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("paved.dev/team"));
            if let Some(other) = owner.filter(|t| **t != plan.team) {
                return Err(format!(
                    "the namespace {} belongs to team {other}; team {} cannot deploy there",
                    plan.namespace, plan.team
                ));
            }
        }
        Ok(None) => {
            created_namespace = true;
            progress
                .line(
                    Level::Info,
                    &format!(
                        "The namespace {} does not exist yet: creating it first, so the cluster can dry-run what goes in it",
                        plan.namespace
                    ),
                )
                .await;
            let (item, ar) = (&plan.items[0], &resolved[0]);
            api(client, item, ar)
                .patch(&item.name, &params, &Patch::Apply(&item.body))
                .await
                .map_err(|e| {
                    format!("the namespace could not be created: {}", refusal(item, &e))
                })?;
        }
        Err(e) => {
            return Err(format!(
                "cannot read the namespace {}: {}",
                plan.namespace,
                describe(&e)
            ))
        }
    }

    // Server-side dry run of everything: the cluster's admission chain
    // (Gatekeeper included) answers before anything changes.
    let dry = params.clone().dry_run();
    let mut refused = Vec::new();
    for (item, ar) in plan.items.iter().zip(&resolved) {
        if let Err(e) = api(client, item, ar)
            .patch(&item.name, &dry, &Patch::Apply(&item.body))
            .await
        {
            let why = refusal(item, &e);
            progress
                .line(Level::Error, &format!("dry run refused: {why}"))
                .await;
            refused.push(why);
        }
    }
    if !refused.is_empty() {
        return Err(format!(
            "the cluster refused {} of {} objects in the server-side dry run, so nothing was applied{}: {}",
            refused.len(),
            plan.items.len(),
            if created_namespace {
                format!(" (only the namespace {} was created, for the dry run)", plan.namespace)
            } else {
                String::new()
            },
            refused.join("; ")
        ));
    }
    progress
        .line(
            Level::Info,
            &format!(
                "Server-side dry run passed for {} objects (field manager {FIELD_MANAGER})",
                plan.items.len()
            ),
        )
        .await;

    let mut applied = Vec::new();
    for (item, ar) in plan.items.iter().zip(&resolved) {
        match api(client, item, ar)
            .patch(&item.name, &params, &Patch::Apply(&item.body))
            .await
        {
            Ok(obj) => {
                let generation = obj
                    .metadata
                    .generation
                    .map(|g| format!(", generation {g}"))
                    .unwrap_or_default();
                progress
                    .line(Level::Info, &format!("Applied {}{generation}", item.label))
                    .await;
                applied.push(item.label.clone());
            }
            Err(e) => {
                let why = refusal(item, &e);
                progress
                    .line(Level::Error, &format!("apply failed: {why}"))
                    .await;
                return Err(format!(
                    "{why} ({} of {} objects applied before it; running the step again converges)",
                    applied.len(),
                    plan.items.len()
                ));
            }
        }
    }

    let mut ready = false;
    if options.wait {
        let deadline = tokio::time::Instant::now() + options.timeout;
        wait_all(client, plan, deadline, options, progress).await?;
        ready = true;
    }
    Ok(Applied {
        objects: applied,
        ready,
    })
}

/// Waits for every workload of the plan to roll out, until `deadline`.
pub async fn wait_all(
    client: &kube::Client,
    plan: &Plan,
    deadline: tokio::time::Instant,
    options: &Options,
    progress: &dyn Progress,
) -> Result<(), String> {
    for item in plan.items.iter().filter(|i| is_workload(&i.kind)) {
        watch_rollout(client, item, deadline, options, progress).await?;
    }
    Ok(())
}

fn is_workload(kind: &str) -> bool {
    matches!(kind, "Deployment" | "StatefulSet" | "DaemonSet")
}

/// A workload's rollout as numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rollout {
    desired: i32,
    updated: i32,
    ready: i32,
    available: i32,
    /// Every replica, old ones included (kubectl waits for old ones to go).
    total: i32,
    observed: bool,
    /// A condition that says the rollout has failed.
    failed: Option<String>,
    selector: Option<String>,
}

impl Rollout {
    fn done(&self) -> bool {
        self.observed
            && self.updated >= self.desired
            && self.ready >= self.desired
            && self.available >= self.desired
            && self.total <= self.updated
    }
}

fn selector_string(
    selector: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
) -> Option<String> {
    let labels = selector.match_labels.as_ref()?;
    (!labels.is_empty()).then(|| {
        labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    })
}

async fn read_rollout(client: &kube::Client, item: &Item) -> Result<Rollout, kube::Error> {
    let ns = item.namespace.as_deref().unwrap_or_default();
    Ok(match item.kind.as_str() {
        "Deployment" => {
            let d = Api::<Deployment>::namespaced(client.clone(), ns)
                .get(&item.name)
                .await?;
            let spec = d.spec.unwrap_or_default();
            let status = d.status.unwrap_or_default();
            let failed = status.conditions.iter().flatten().find_map(|c| {
                let bad = (c.type_ == "Progressing"
                    && c.status == "False"
                    && c.reason.as_deref() == Some("ProgressDeadlineExceeded"))
                    || (c.type_ == "ReplicaFailure" && c.status == "True");
                bad.then(|| {
                    format!(
                        "{} {}: {}",
                        c.type_,
                        c.reason.clone().unwrap_or_default(),
                        c.message.clone().unwrap_or_default()
                    )
                })
            });
            let observed = status.observed_generation >= d.metadata.generation;
            Rollout {
                desired: spec.replicas.unwrap_or(1),
                updated: status.updated_replicas.unwrap_or(0),
                ready: status.ready_replicas.unwrap_or(0),
                available: status.available_replicas.unwrap_or(0),
                total: status.replicas.unwrap_or(0),
                observed,
                // A condition left from an earlier rollout says nothing
                // until the controller has seen this one.
                failed: failed.filter(|_| observed),
                selector: selector_string(&spec.selector),
            }
        }
        "StatefulSet" => {
            let s = Api::<StatefulSet>::namespaced(client.clone(), ns)
                .get(&item.name)
                .await?;
            let spec = s.spec.unwrap_or_default();
            let status = s.status.unwrap_or_default();
            Rollout {
                desired: spec.replicas.unwrap_or(1),
                updated: status.updated_replicas.unwrap_or(0),
                ready: status.ready_replicas.unwrap_or(0),
                available: status.available_replicas.unwrap_or(0),
                total: status.replicas,
                observed: status.observed_generation >= s.metadata.generation,
                failed: None,
                selector: selector_string(&spec.selector),
            }
        }
        _ => {
            let d = Api::<DaemonSet>::namespaced(client.clone(), ns)
                .get(&item.name)
                .await?;
            let spec = d.spec.unwrap_or_default();
            let status = d.status.unwrap_or_default();
            Rollout {
                desired: status.desired_number_scheduled,
                updated: status.updated_number_scheduled.unwrap_or(0),
                ready: status.number_ready,
                available: status.number_available.unwrap_or(0),
                total: status.current_number_scheduled,
                observed: status.observed_generation >= d.metadata.generation,
                failed: None,
                selector: selector_string(&spec.selector),
            }
        }
    })
}

async fn watch_rollout(
    client: &kube::Client,
    item: &Item,
    deadline: tokio::time::Instant,
    options: &Options,
    progress: &dyn Progress,
) -> Result<(), String> {
    let mut last: Option<Rollout> = None;
    loop {
        let rollout = read_rollout(client, item).await.map_err(|e| {
            format!(
                "cannot read the rollout of {}: {}",
                item.label,
                describe(&e)
            )
        })?;
        if last.as_ref() != Some(&rollout) {
            progress
                .line(
                    Level::Info,
                    &format!(
                        "{}: {} of {} replicas ready, {} updated, {} available",
                        item.label,
                        rollout.ready,
                        rollout.desired,
                        rollout.updated,
                        rollout.available
                    ),
                )
                .await;
        }
        if rollout.done() {
            progress
                .line(Level::Info, &format!("{} rolled out", item.label))
                .await;
            return Ok(());
        }
        let failed = rollout.failed.clone();
        let timed_out = tokio::time::Instant::now() + options.poll > deadline;
        if failed.is_some() || timed_out {
            explain(client, item, rollout.selector.as_deref(), progress).await;
            return Err(match failed {
                Some(why) => format!("the rollout of {} failed: {why}", item.label),
                None => format!(
                    "{} was not ready within {} s ({} of {} replicas ready); its events and problems are in the log above. The objects stay applied: fix the cause and run the step again",
                    item.label,
                    options.timeout.as_secs(),
                    rollout.ready,
                    rollout.desired
                ),
            });
        }
        last = Some(rollout);
        tokio::time::sleep(options.poll).await;
    }
}

/// Logs the workload's warning events and its pods' detected problems.
async fn explain(
    client: &kube::Client,
    item: &Item,
    selector: Option<&str>,
    progress: &dyn Progress,
) {
    let ns = item.namespace.as_deref().unwrap_or_default();
    let mut pods = Vec::new();
    if let Some(selector) = selector {
        match Api::<Pod>::namespaced(client.clone(), ns)
            .list(&ListParams::default().labels(selector))
            .await
        {
            Ok(list) => pods = list.items,
            Err(e) => {
                progress
                    .line(
                        Level::Warn,
                        &format!("cannot list its pods: {}", describe(&e)),
                    )
                    .await
            }
        }
    }
    let names: Vec<&str> = pods
        .iter()
        .filter_map(|p| p.metadata.name.as_deref())
        .collect();
    let owners: Vec<&str> = pods
        .iter()
        .flat_map(|p| p.metadata.owner_references.iter().flatten())
        .map(|o| o.name.as_str())
        .collect();
    match Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
    {
        Ok(list) => {
            let mut warnings: Vec<&Event> = list
                .items
                .iter()
                .filter(|e| e.type_.as_deref() == Some("Warning"))
                .filter(|e| {
                    let kind = e.involved_object.kind.as_deref().unwrap_or_default();
                    e.involved_object.name.as_deref().is_some_and(|n| {
                        (kind == item.kind && n == item.name)
                            || (kind == "Pod" && names.contains(&n))
                            || (kind == "ReplicaSet" && owners.contains(&n))
                    })
                })
                .collect();
            warnings.sort_by_key(|e| std::cmp::Reverse(e.last_timestamp.as_ref().map(|t| t.0)));
            for e in warnings.iter().take(10) {
                progress
                    .line(
                        Level::Warn,
                        &format!(
                            "event {} on {}/{}: {}{}",
                            e.reason.as_deref().unwrap_or("Warning"),
                            e.involved_object.kind.as_deref().unwrap_or(""),
                            e.involved_object.name.as_deref().unwrap_or(""),
                            e.message.as_deref().unwrap_or(""),
                            match e.count {
                                Some(n) if n > 1 => format!(" (×{n})"),
                                _ => String::new(),
                            }
                        ),
                    )
                    .await;
            }
        }
        Err(e) => {
            progress
                .line(
                    Level::Warn,
                    &format!("cannot list events: {}", describe(&e)),
                )
                .await
        }
    }
    let observed = super::detect::Observed {
        pods: &pods,
        deployments: &[],
        statefulsets: &[],
        daemonsets: &[],
        hpas: &[],
        details: true,
    };
    for p in super::detect::detect(&observed, jiff::Timestamp::now()) {
        progress
            .line(
                Level::Warn,
                &format!(
                    "problem {} on {}: {} — {}",
                    p.code, p.object, p.message, p.suggestion
                ),
            )
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(kind: &str, api: &str, name: &str) -> Value {
        json!({"apiVersion": api, "kind": kind, "metadata": {"name": name}})
    }

    #[test]
    fn the_plan_orders_by_dependency_fills_the_namespace_and_labels_it() {
        let p = plan(
            vec![
                obj("Ingress", "networking.k8s.io/v1", "web"),
                obj("Deployment", "apps/v1", "web"),
                obj("Service", "v1", "web"),
                obj("Widget", "example.com/v1", "w"),
                obj("ServiceAccount", "v1", "web"),
            ],
            "payments",
            "payments",
        )
        .unwrap();
        let order: Vec<&str> = p.items.iter().map(|i| i.label.as_str()).collect();
        assert_eq!(
            order,
            [
                "Namespace/payments",
                "ServiceAccount/web",
                "Service/web",
                "Deployment/web",
                "Ingress/web",
                "Widget/w"
            ]
        );
        assert_eq!(p.items[3].body["metadata"]["namespace"], "payments");
        assert_eq!(p.items[0].body["metadata"]["labels"]["team"], "payments");
        assert_eq!(p.items[0].namespace, None);
    }

    #[test]
    fn the_plan_refuses_other_namespaces_and_cluster_wide_objects_naming_each() {
        let mut other = obj("Deployment", "apps/v1", "web");
        other["metadata"]["namespace"] = json!("kube-system");
        let err = plan(
            vec![
                other,
                obj("ClusterRole", "rbac.authorization.k8s.io/v1", "x"),
                obj("Namespace", "v1", "elsewhere"),
                json!({"kind": "Service"}),
            ],
            "payments",
            "payments",
        )
        .unwrap_err();
        for expected in [
            "Deployment/web names the namespace `kube-system`",
            "Namespace/elsewhere",
            "object 4",
        ] {
            assert!(err.contains(expected), "{err}");
        }
        assert!(err.contains("ClusterRole/x is cluster-wide"), "{err}");
        let err = plan(
            vec![obj("Namespace", "v1", "payments")],
            "payments",
            "payments",
        )
        .unwrap_err();
        assert!(err.contains("no Kubernetes objects"), "{err}");
    }

    #[test]
    fn a_template_namespace_keeps_its_labels_and_gains_the_team() {
        let mut ns = obj("Namespace", "v1", "payments");
        ns["metadata"]["labels"] = json!({"istio-injection": "enabled", "team": "someone-else"});
        let p = plan(
            vec![ns, obj("Service", "v1", "web")],
            "payments",
            "payments",
        )
        .unwrap();
        let labels = &p.items[0].body["metadata"]["labels"];
        assert_eq!(labels["istio-injection"], "enabled");
        assert_eq!(labels["team"], "payments");
    }
}
