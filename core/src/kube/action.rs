//! The scaffolder's `kube:apply` step.
//!
//! Input: `cluster` (optional when the team may deploy to exactly one),
//! `namespace` (default: the cluster's pattern for the team), `path` (the
//! manifests' folder or file in the workspace, default `k8s`), `entityRef`
//! (default: the Component in the workspace's `catalog-info.yaml`),
//! `wait` (default true), `timeoutSeconds` (default 300), `force` (default
//! false), `sha` (the commit deployed, for delivery outcomes).
//! Output: `cluster`, `namespace`, `selector`, `objects`, `ready`.

use std::time::Duration;

use serde_json::{json, Value};

use super::apply::{self, Level, Options, Progress};
use crate::scaffold::actions::{self, ActionContext};

struct TaskProgress<'a, 'b> {
    ctx: &'a ActionContext<'b>,
}

#[async_trait::async_trait]
impl Progress for TaskProgress<'_, '_> {
    async fn line(&self, level: Level, message: &str) {
        let status = match level {
            Level::Info => None,
            Level::Warn => Some("warn"),
            Level::Error => Some("error"),
        };
        self.ctx
            .log
            .event(Some(self.ctx.step_id), "log", message, status)
            .await;
    }
}

/// The Component the workspace's `catalog-info.yaml` describes.
fn workspace_component(ctx: &ActionContext<'_>) -> Option<String> {
    let text = std::fs::read_to_string(ctx.workspace.join("catalog-info.yaml")).ok()?;
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let Ok(v) = <Value as serde::Deserialize>::deserialize(doc) else {
            continue;
        };
        if v.get("kind").and_then(Value::as_str) == Some("Component") {
            let name = v.pointer("/metadata/name").and_then(Value::as_str)?;
            let ns = v
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default");
            return Some(format!("component:{ns}/{name}").to_ascii_lowercase());
        }
    }
    None
}

fn bool_input(input: &Value, key: &str, default: bool) -> Result<bool, String> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s == "true" => Ok(true),
        Some(Value::String(s)) if s == "false" => Ok(false),
        Some(_) => Err(format!("the input `{key}` must be true or false")),
    }
}

/// Runs `kube:apply`.
pub async fn kube_apply(ctx: &ActionContext<'_>, input: &Value) -> Result<Value, String> {
    let kube = &ctx.core.kube;
    if kube.clusters.is_empty() {
        return Err("no Kubernetes cluster is connected to Paved (PAVED_KUBE_CLUSTERS); ask a platform admin to connect one, or remove the kube:apply step".into());
    }
    let team = ctx
        .team()
        .map(str::to_owned)
        .ok_or("kube:apply needs the owning team: add an OwnerPicker to the template")?;
    crate::auth::authorize(ctx.principal, crate::auth::Action::ActInTeam(&team))
        .map_err(|e| e.to_string())?;
    let allowed: Vec<&str> = kube
        .clusters
        .iter()
        .filter(|c| c.config.allows(&team))
        .map(|c| c.config.name.as_str())
        .collect();
    let cluster_name = match actions::input_str(input, "cluster") {
        Some(c) => c.to_owned(),
        None if allowed.len() == 1 => allowed[0].to_owned(),
        None => {
            return Err(format!(
                "the input `cluster` is required: team {team} may deploy to {}",
                if allowed.is_empty() {
                    "no cluster".into()
                } else {
                    allowed.join(", ")
                }
            ))
        }
    };
    let cluster = kube.clusters.get(&cluster_name).ok_or_else(|| {
        format!(
            "there is no cluster `{cluster_name}`; the clusters are {}",
            kube.clusters
                .iter()
                .map(|c| c.config.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    if !cluster.config.allows(&team) {
        return Err(format!(
            "team {team} may not deploy to {cluster_name}; ask a platform admin to add it to the cluster's teams"
        ));
    }
    let team_namespace = cluster.config.namespace_for(&team);
    let namespace = match actions::input_str(input, "namespace") {
        Some(ns) => ns.to_owned(),
        None => team_namespace.clone(),
    };
    if !crate::secrets::store::is_dns1123_label(&namespace) {
        return Err(format!("`{namespace}` is not a Kubernetes namespace name"));
    }
    // A team deploys into its own namespace only (admins anywhere).
    if namespace != team_namespace && !ctx.principal.is_admin() {
        return Err(format!(
            "team {team} deploys to the namespace {team_namespace} on {cluster_name}, not {namespace}"
        ));
    }
    let entity_ref = actions::input_str(input, "entityRef")
        .map(|r| r.to_ascii_lowercase())
        .or_else(|| workspace_component(ctx));
    // Only a Component the team owns in the catalog has its placement and
    // deployments recorded; anything else is deployed but not recorded.
    let entity_ref = match entity_ref {
        Some(r) => match crate::catalog::store::entity_by_ref(&ctx.core.db, &r).await {
            Ok(e)
                if r.starts_with("component:")
                    && super::owner_team(&e).as_deref() == Some(team.as_str()) =>
            {
                Some(r)
            }
            _ => {
                ctx.log
                    .event(
                        Some(ctx.step_id),
                        "log",
                        &format!("{r} is not a Component of team {team} in the catalog (register it before this step), so where it runs will not be recorded"),
                        Some("warn"),
                    )
                    .await;
                None
            }
        },
        None => None,
    };
    let wait = bool_input(input, "wait", true)?;
    let force = bool_input(input, "force", false)?;
    let timeout = match input.get("timeoutSeconds") {
        None | Some(Value::Null) => 300,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=3600).contains(n))
            .ok_or("the input `timeoutSeconds` must be a whole number from 1 to 3600")?,
    };
    let path = actions::input_str(input, "path").unwrap_or("k8s");
    let files = actions::manifest_files(ctx, path)?;
    let mut objects = Vec::new();
    for file in &files {
        for doc in file.documents().map_err(|e| e.to_string())? {
            let is_entity = doc
                .value
                .get("apiVersion")
                .and_then(Value::as_str)
                .is_some_and(|a| a.contains("backstage.io/"));
            if paved_policy::set::is_kubernetes_object(&doc.value) && !is_entity {
                objects.push(doc.value.clone());
            }
        }
    }
    let plan = apply::plan(objects, &namespace, &team)?;
    ctx.info(format!(
        "Deploying {} objects to {cluster_name}/{namespace}: {}",
        plan.items.len(),
        plan.items
            .iter()
            .map(|i| i.label.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .await;

    // The platform's policies first, on exactly these manifests.
    actions::check_and_log(ctx, &files).await?;
    ctx.policy_checked
        .store(true, std::sync::atomic::Ordering::Relaxed);

    if ctx.dry_run {
        ctx.info(format!(
            "Would dry-run and apply these objects on {cluster_name} with server-side apply (field manager paved){}",
            if wait { ", then wait for the rollout" } else { "" }
        ))
        .await;
        return Ok(
            json!({"cluster": cluster_name, "namespace": namespace, "objects": plan.items.iter().map(|i| i.label.clone()).collect::<Vec<_>>(), "ready": false}),
        );
    }

    let client = cluster
        .client()
        .await
        .map_err(|e| format!("cluster {cluster_name}: {e}"))?;
    let progress = TaskProgress { ctx };
    let selector = selector_of(&plan, entity_ref.as_deref());
    // Applied without waiting: the service's Vault role must name this
    // namespace before its pods need it, so the rollout is waited for after.
    let options = Options {
        force,
        wait: false,
        timeout: Duration::from_secs(timeout),
        poll: kube.config.rollout_poll,
    };
    let outcome = apply::run(&client, &plan, &options, &progress).await?;
    let now = crate::now_unix();
    if let Some(entity_ref) = &entity_ref {
        super::record_placement(
            ctx.core,
            super::Record {
                entity_ref,
                cluster: &cluster_name,
                namespace: &namespace,
                selector: &selector,
                team: &team,
                objects: &outcome.objects,
                task_id: ctx.task_id,
                actor: &ctx.principal.actor(),
                ready: false,
                now,
            },
        )
        .await
        .map_err(|e| {
            format!(
                "the objects are applied, but where {entity_ref} runs could not be recorded ({e}); run the step again"
            )
        })?;
        ctx.info(format!(
            "Recorded that {entity_ref} runs in {cluster_name}/{namespace} ({selector})"
        ))
        .await;
        reconverge_vault(ctx, &team, entity_ref).await;
    }
    let mut ready = false;
    if wait {
        let deadline = tokio::time::Instant::now() + options.timeout;
        apply::wait_all(&client, &plan, deadline, &options, &progress).await?;
        ready = true;
        if let Some(entity_ref) = &entity_ref {
            if let Err(e) =
                paved_store::kube::mark_ready((&ctx.core.db).into(), entity_ref, &cluster_name)
                    .await
            {
                tracing::error!(error = %e, entity = %entity_ref, "cannot mark the placement ready");
            }
        }
    }
    if cluster.config.production && (ready || !wait) {
        if let Some(entity_ref) = &entity_ref {
            let sha = actions::input_str(input, "sha").map(str::to_owned);
            let finished_at = crate::now_unix();
            let deployment = crate::outcomes::events::Deployment {
                key: format!("{}-{}", ctx.task_id, ctx.step_id),
                repo: None,
                component: Some(entity_ref.clone()),
                environment: cluster.config.environment.clone(),
                sha,
                status: crate::outcomes::events::DeployStatus::Success,
                started_at: None,
                finished_at,
                rework: None,
                fixes: None,
                title: Some(format!("kube:apply to {cluster_name}/{namespace}")),
            };
            match crate::outcomes::record_own_deployment(ctx.core, deployment, finished_at).await {
                Ok(_) => {
                    ctx.info(format!(
                        "Recorded a {} deployment of {entity_ref} for delivery outcomes",
                        cluster.config.environment
                    ))
                    .await
                }
                Err(e) => tracing::error!(error = %e, "cannot record the deployment event"),
            }
        }
    }
    Ok(json!({
        "cluster": cluster_name,
        "namespace": namespace,
        "selector": selector,
        "objects": outcome.objects,
        "ready": ready,
    }))
}

/// The label selector the runtime view finds the service's objects by:
/// Backstage's `backstage.io/kubernetes-id` when the workloads carry it,
/// else the first workload's own selector.
fn selector_of(plan: &apply::Plan, entity_ref: Option<&str>) -> String {
    let workloads = plan
        .items
        .iter()
        .filter(|i| matches!(i.kind.as_str(), "Deployment" | "StatefulSet" | "DaemonSet"));
    for w in workloads.clone() {
        if let Some(id) = w
            .body
            .pointer("/metadata/labels")
            .and_then(|l| l.get(super::ID_ANNOTATION))
            .and_then(Value::as_str)
        {
            return format!("{}={id}", super::ID_ANNOTATION);
        }
    }
    for w in workloads {
        if let Some(labels) = w
            .body
            .pointer("/spec/selector/matchLabels")
            .and_then(Value::as_object)
        {
            let s: Vec<String> = labels
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
                .collect();
            if !s.is_empty() {
                return s.join(",");
            }
        }
    }
    let name = entity_ref
        .and_then(|r| r.rsplit('/').next())
        .unwrap_or("unknown");
    format!("{}={name}", super::ID_ANNOTATION)
}

/// Re-binds the service's Vault role to where it now runs, when it has secrets.
async fn reconverge_vault(ctx: &ActionContext<'_>, team: &str, entity_ref: &str) {
    let Some(service) = entity_ref.rsplit('/').next() else {
        return;
    };
    if ctx.core.vault.is_none() {
        return;
    }
    let holder = crate::secrets::naming::Holder::Service(service.to_owned());
    let has_access = crate::secrets::store::access(&ctx.core.db, team, holder.segment())
        .await
        .ok()
        .flatten()
        .is_some();
    if !has_access {
        return;
    }
    match crate::secrets::reconverge(ctx.core, ctx.principal, team, &holder).await {
        Ok((steps, _)) => {
            for s in steps {
                ctx.info(format!("Vault: {} ({})", s.label, s.detail)).await;
            }
        }
        Err(e) => {
            ctx.log
                .event(
                    Some(ctx.step_id),
                    "log",
                    &format!("Vault: the service's Kubernetes role could not be re-bound to {entity_ref}'s namespace: {e}; re-run it from the service's Secrets card"),
                    Some("warn"),
                )
                .await
        }
    }
}
