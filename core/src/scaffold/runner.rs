//! Runs tasks: workers claim open tasks, run their steps in order (skipping
//! those done before a restart), record each step's output for the next,
//! honour cancellation between steps, and clean the workspace up at the end.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use super::actions::{self, ActionContext};
use super::expr::{truthy, Expressions};
use super::log::{Masker, TaskLog};
use super::tasks::{self, Stranded, TaskRow};
use super::template::{self, Template};
use crate::auth::{AuthMethod, Principal};
use crate::CoreState;

/// The most times one step may run through `each`.
pub const MAX_EACH: usize = 200;

/// The scaffolder's in-process state: this process's worker id, secret
/// answers (memory only), the event counter live streams wait on, and the
/// wake-up for idle workers.
pub struct Scaffolder {
    /// Identifies this process's claims, so a restart knows what was interrupted.
    pub worker_id: String,
    secrets: Mutex<HashMap<String, BTreeMap<String, SecretString>>>,
    task_events: Mutex<HashMap<String, Arc<tokio::sync::watch::Sender<u64>>>>,
    streams: Mutex<HashMap<String, usize>>,
    wake: tokio::sync::Notify,
    /// The expression engine.
    pub expressions: Expressions,
}

impl std::fmt::Debug for Scaffolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scaffolder")
            .field("worker_id", &self.worker_id)
            .finish_non_exhaustive()
    }
}

impl Default for Scaffolder {
    fn default() -> Self {
        Self::new()
    }
}

impl Scaffolder {
    /// A fresh state with a new worker id.
    pub fn new() -> Self {
        Self {
            worker_id: uuid::Uuid::new_v4().to_string(),
            secrets: Mutex::default(),
            task_events: Mutex::default(),
            streams: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            expressions: Expressions::new(),
        }
    }

    /// Keeps a task's secret answers in memory until it ends.
    pub fn hold_secrets(&self, task_id: &str, secrets: BTreeMap<String, SecretString>) {
        self.secrets
            .lock()
            .expect("secrets lock")
            .insert(task_id.to_owned(), secrets);
    }

    fn secrets_of(&self, task_id: &str) -> Option<BTreeMap<String, SecretString>> {
        self.secrets
            .lock()
            .expect("secrets lock")
            .get(task_id)
            .cloned()
    }

    /// Whether a task's secret answers are still held.
    pub fn has_secrets(&self, task_id: &str) -> bool {
        self.secrets
            .lock()
            .expect("secrets lock")
            .contains_key(task_id)
    }

    fn drop_secrets(&self, task_id: &str) {
        self.secrets.lock().expect("secrets lock").remove(task_id);
    }

    /// Wakes a worker (a task was queued).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The wake-up channel of one task's events (created on first use;
    /// channels nobody holds any more are dropped as new ones are made).
    fn task_channel(&self, task_id: &str) -> Arc<tokio::sync::watch::Sender<u64>> {
        let mut map = self.task_events.lock().expect("events lock");
        if map.len() >= 256 {
            map.retain(|_, s| Arc::strong_count(s) > 1 || s.receiver_count() > 0);
        }
        map.entry(task_id.to_owned())
            .or_insert_with(|| Arc::new(tokio::sync::watch::channel(0).0))
            .clone()
    }

    /// Wakes this replica's live streams of task `task_id` (if it has any)
    /// after another replica stored its event `id`.
    pub fn wake_streams(&self, task_id: &str, id: i64) {
        let map = self.task_events.lock().expect("events lock");
        if let Some(sender) = map.get(task_id) {
            sender.send_replace(id as u64);
        }
    }

    /// A receiver that changes whenever task `task_id` logs an event (and
    /// only then: other tasks' events wake nobody watching this one).
    pub fn subscribe(&self, task_id: &str) -> tokio::sync::watch::Receiver<u64> {
        self.task_channel(task_id).subscribe()
    }

    /// Takes one of `actor`'s live event streams, at most
    /// [`MAX_STREAMS_PER_PRINCIPAL`] at once; the slot is given back when
    /// the returned guard is dropped (the stream ends or the client leaves).
    pub fn open_stream(self: &Arc<Self>, actor: &str) -> Result<StreamSlot, crate::CoreError> {
        let mut streams = self.streams.lock().expect("streams lock");
        let open = streams.entry(actor.to_owned()).or_default();
        if *open >= MAX_STREAMS_PER_PRINCIPAL {
            return Err(crate::CoreError::TooManyRequests(format!(
                "You already have {MAX_STREAMS_PER_PRINCIPAL} live task logs open; close one and try again."
            )));
        }
        *open += 1;
        Ok(StreamSlot {
            scaffolder: self.clone(),
            actor: actor.to_owned(),
        })
    }
}

/// Live event streams one person may have open at once.
pub const MAX_STREAMS_PER_PRINCIPAL: usize = 8;

/// One open event stream, counted against its person while held.
#[derive(Debug)]
pub struct StreamSlot {
    scaffolder: Arc<Scaffolder>,
    actor: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut streams = self.scaffolder.streams.lock().expect("streams lock");
        if let Some(open) = streams.get_mut(&self.actor) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                streams.remove(&self.actor);
            }
        }
    }
}

/// The workspace folder of a task.
pub(crate) fn workspace_of(core: &CoreState, task_id: &str) -> PathBuf {
    core.config.scaffolder.work_dir.join(task_id)
}

/// Recovers tasks a previous process left running, then runs `workers` loops forever.
pub async fn run_workers(core: CoreState) {
    let scaffolder = core.scaffolder.clone();
    // One process per database on SQLite: whatever is still running was
    // its predecessor's.
    match tasks::recover(&core.db, &scaffolder.worker_id, Stranded::AllOthers).await {
        Ok((0, 0)) => {}
        Ok((resumed, failed)) => {
            tracing::info!(
                resumed,
                failed,
                "scaffolder tasks recovered after a restart"
            )
        }
        Err(e) => tracing::error!(error = %e, "cannot recover scaffolder tasks"),
    }
    let mut handles = Vec::new();
    let janitor = core.clone();
    handles.push(tokio::spawn(async move {
        loop {
            if let Err(e) = clean_workspaces(&janitor, crate::now_unix()).await {
                tracing::warn!(error = %e, "cannot clean old scaffolder workspaces");
            }
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
    }));
    // A claim whose heartbeat lapsed (its worker hung, or its replica
    // stopped) is taken over, checked every half minute.
    let rescuer = core.clone();
    handles.push(tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            let stale = Stranded::StaleBefore(crate::now_unix() - tasks::STALE_AFTER_SECS);
            match tasks::recover(&rescuer.db, &rescuer.scaffolder.worker_id, stale).await {
                Ok((0, 0)) => {}
                Ok((resumed, failed)) => {
                    rescuer.scaffolder.wake();
                    tracing::warn!(
                        resumed,
                        failed,
                        "scaffolder tasks taken over from a stopped worker"
                    )
                }
                Err(e) => tracing::warn!(error = %e, "cannot check for stalled scaffolder tasks"),
            }
        }
    }));
    for _ in 0..core.config.scaffolder.workers.max(1) {
        let core = core.clone();
        handles.push(tokio::spawn(async move { worker_loop(core).await }));
    }
    for h in handles {
        let _ = h.await;
    }
}

async fn worker_loop(core: CoreState) {
    let scaffolder = core.scaffolder.clone();
    loop {
        match tasks::claim_next(&core.db, &scaffolder.worker_id).await {
            Ok(Some(task)) => {
                let id = task.id.clone();
                // The claim is renewed while the task runs, however long a
                // step takes, so no other worker takes it over.
                let beat = {
                    let (db, id) = (core.db.clone(), id.clone());
                    let worker = scaffolder.worker_id.clone();
                    tokio::spawn(async move {
                        let period = std::time::Duration::from_secs(tasks::HEARTBEAT_SECS);
                        loop {
                            tokio::time::sleep(period).await;
                            match tasks::heartbeat(&db, &id, &worker).await {
                                Ok(true) => {}
                                Ok(false) => break,
                                Err(e) => {
                                    tracing::warn!(error = %e, task = %id, "cannot renew a scaffolder task's claim")
                                }
                            }
                        }
                    })
                };
                let result = run_task(&core, task).await;
                beat.abort();
                if let Err(e) = result {
                    tracing::error!(error = %e, task = %id, "scaffolder task could not be recorded");
                }
            }
            Ok(None) => {
                let _ = tokio::time::timeout(
                    std::time::Duration::from_secs(2),
                    scaffolder.wake.notified(),
                )
                .await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot claim a scaffolder task");
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
        }
    }
}

/// How long a failed or cancelled task keeps its workspace for a retry.
pub const KEEP_FAILED_WORKSPACES_SECS: i64 = 7 * 24 * 3600;

/// Removes the workspaces of tasks that ended more than a week before `now`,
/// and dry-run folders a crash left behind. Answers how many were removed.
pub async fn clean_workspaces(core: &CoreState, now: i64) -> Result<usize, crate::CoreError> {
    let mut removed = 0;
    for id in tasks::ended_before(&core.db, now - KEEP_FAILED_WORKSPACES_SECS).await? {
        if std::fs::remove_dir_all(workspace_of(core, &id)).is_ok() {
            removed += 1;
        }
    }
    let root = &core.config.scaffolder.work_dir;
    if let Ok(entries) = std::fs::read_dir(root) {
        for entry in entries.flatten() {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 3600);
            if entry.file_name().to_string_lossy().starts_with("dry-run-") && stale {
                let _ = std::fs::remove_dir_all(entry.path());
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// The `user` context: `${{ user.entity.metadata.name }}`, `${{ user.ref }}`.
pub fn user_context(principal: &Principal) -> Value {
    let name = principal.subject.to_ascii_lowercase();
    json!({
        "ref": format!("user:default/{name}"),
        "entity": {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "User",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"profile": {"displayName": principal.display_name, "email": principal.email}},
        },
    })
}

fn secrets_context(secrets: &BTreeMap<String, SecretString>) -> Value {
    Value::Object(
        secrets
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.expose_secret().to_owned())))
            .collect(),
    )
}

fn masker_for(secrets: &BTreeMap<String, SecretString>) -> Masker {
    Masker::new(secrets.values().map(|s| s.expose_secret().to_owned()))
}

/// Runs one claimed task to its end (completed, failed or cancelled).
/// Ends the task with its last event written in the same transaction, then
/// wakes the live streams: whoever sees the completion event and reads the
/// task gets the final status.
#[allow(clippy::too_many_arguments)]
async fn conclude(
    core: &CoreState,
    log: &TaskLog,
    task: &TaskRow,
    status: &str,
    output: Option<&Value>,
    error: Option<&str>,
    kind: &str,
    message: &str,
) -> Result<(), crate::CoreError> {
    let masked = log.masker().mask(message);
    // The failure text may quote an action's input: masked like every log line.
    let error = error.map(|e| log.masker().mask(e));
    let event = tasks::finish(
        &core.db,
        task,
        status,
        output,
        error.as_deref(),
        Some((kind, &masked)),
    )
    .await?;
    if let Some(id) = event {
        log.woke(id).await;
    }
    Ok(())
}

async fn run_task(core: &CoreState, task: TaskRow) -> Result<(), crate::CoreError> {
    let scaffolder = core.scaffolder.clone();
    let secrets = scaffolder.secrets_of(&task.id).unwrap_or_default();
    let log = TaskLog::Stored {
        pool: core.db.clone(),
        task_id: task.id.clone(),
        masker: masker_for(&secrets),
        notify: scaffolder.task_channel(&task.id),
        bus: core.bus.clone(),
    };
    let entity: Value = serde_json::from_str(&task.template_json).unwrap_or_default();
    let template = match template::parse(&entity) {
        Ok(t) => t,
        Err(e) => {
            let message = format!("the template cannot be read: {e}");
            conclude(
                core,
                &log,
                &task,
                "failed",
                None,
                Some(&message),
                "completion",
                &message,
            )
            .await?;
            return Ok(());
        }
    };
    let snapshot: Principal =
        serde_json::from_str(&task.principal_json).map_err(|_| crate::CoreError::Invalid {
            field: "principal",
            message: "the task's creator cannot be read".into(),
        })?;
    // Act with the creator's current teams and roles, not those at creation.
    let principal = match snapshot.user_id {
        Some(id) => crate::identity::load_principal(&core.db, id, AuthMethod::Session)
            .await?
            .unwrap_or(snapshot),
        None => snapshot,
    };
    let secret_names: Vec<String> = serde_json::from_str(&task.secret_names).unwrap_or_default();
    if secret_names.iter().any(|n| !secrets.contains_key(n)) {
        let message = "This task's secret answers are not available any more (Paved restarted); retry it and enter them again.".to_owned();
        conclude(
            core,
            &log,
            &task,
            "failed",
            None,
            Some(&message),
            "completion",
            &message,
        )
        .await?;
        return Ok(());
    }
    let values: Value = serde_json::from_str(&task.values_json).unwrap_or(json!({}));
    let workspace = workspace_of(core, &task.id);
    if let Err(e) = std::fs::create_dir_all(&workspace) {
        let message = format!("cannot create the task's workspace: {e}");
        conclude(
            core,
            &log,
            &task,
            "failed",
            None,
            Some(&message),
            "completion",
            &message,
        )
        .await?;
        return Ok(());
    }
    let template_base = task.template_dir.as_deref().map(super::TemplateBase::parse);
    let outcome = run_steps(
        core,
        &task,
        &template,
        &principal,
        &values,
        &secrets,
        &workspace,
        template_base.as_ref(),
        &log,
        false,
    )
    .await?;
    match outcome {
        StepsOutcome::Completed(context) => {
            let output = scaffolder
                .expressions
                .evaluate(&template.output, &context)
                .map(|o| log.masker().mask_json(&o))
                .unwrap_or_else(|e| json!({"text": [{"title": "Output", "content": format!("the template's output could not be evaluated: {e}")}]}));
            conclude(
                core,
                &log,
                &task,
                "completed",
                Some(&output),
                None,
                "completion",
                "The task completed.",
            )
            .await?;
            scaffolder.drop_secrets(&task.id);
            let _ = std::fs::remove_dir_all(&workspace);
        }
        StepsOutcome::Failed(message) => {
            conclude(
                core,
                &log,
                &task,
                "failed",
                None,
                Some(&message),
                "completion",
                &message,
            )
            .await?;
            // Secrets and workspace stay for a retry from the failed step.
        }
        StepsOutcome::Cancelled => {
            conclude(
                core,
                &log,
                &task,
                "cancelled",
                None,
                Some("cancelled"),
                "cancelled",
                "The task was cancelled.",
            )
            .await?;
            scaffolder.drop_secrets(&task.id);
            let _ = std::fs::remove_dir_all(&workspace);
        }
    }
    Ok(())
}

/// How a run of steps ended.
pub enum StepsOutcome {
    /// All steps ran; the final context (parameters, steps' outputs).
    Completed(Value),
    /// A step failed, with the message for people.
    Failed(String),
    /// Cancelled between steps.
    Cancelled,
}

/// Runs the template's steps in order. For stored tasks, steps already
/// completed (before a restart or a failure) are skipped and their outputs
/// restored; for dry runs (`dry_run`), every step runs with `dry_run` set.
#[allow(clippy::too_many_arguments)]
pub async fn run_steps(
    core: &CoreState,
    task: &TaskRow,
    template: &Template,
    principal: &Principal,
    values: &Value,
    secrets: &BTreeMap<String, SecretString>,
    workspace: &Path,
    template_base: Option<&super::TemplateBase>,
    log: &TaskLog,
    dry_run: bool,
) -> Result<StepsOutcome, crate::CoreError> {
    let expressions = &core.scaffolder.expressions;
    let mut context = json!({
        "parameters": values,
        "secrets": secrets_context(secrets),
        "user": user_context(principal),
        "steps": {},
        "context": {"task": {"id": task.id}},
    });
    let recorded = if dry_run {
        Vec::new()
    } else {
        tasks::steps(&core.db, &task.id).await?
    };
    let policy_checked = std::sync::atomic::AtomicBool::new(false);
    for step in &template.steps {
        let row = recorded.iter().find(|r| r.step_id == step.id);
        match row.map(|r| r.status.as_str()) {
            Some("completed") => {
                let output: Value = row
                    .and_then(|r| r.output_json.as_deref())
                    .and_then(|o| serde_json::from_str(o).ok())
                    .unwrap_or(json!({}));
                context["steps"][&step.id] = json!({"output": output});
                continue;
            }
            Some("skipped") => continue,
            _ => {}
        }
        if !dry_run && tasks::cancel_requested(&core.db, &task.id).await? {
            for later in template.steps.iter().skip_while(|s| s.id != step.id) {
                tasks::set_step(&core.db, &task.id, &later.id, "cancelled", None).await?;
            }
            return Ok(StepsOutcome::Cancelled);
        }
        let set = |status: &'static str, output: Option<Value>| {
            let id = step.id.clone();
            async move {
                if dry_run {
                    Ok(())
                } else {
                    tasks::set_step(&core.db, &task.id, &id, status, output.as_ref()).await
                }
            }
        };
        if let Some(condition) = &step.condition {
            let run = match expressions.evaluate(condition, &context) {
                Ok(v) => truthy(&v),
                Err(e) => {
                    set("failed", None).await?;
                    return Ok(StepsOutcome::Failed(format!(
                        "step {} failed: its `if` could not be evaluated: {e}",
                        step.name
                    )));
                }
            };
            if !run {
                log.event(
                    Some(&step.id),
                    "step",
                    &format!("Skipping step {}: its condition is false", step.name),
                    Some("skipped"),
                )
                .await;
                set("skipped", None).await?;
                continue;
            }
        }
        set("processing", None).await?;
        log.event(
            Some(&step.id),
            "step",
            &format!("Beginning step {}", step.name),
            Some("processing"),
        )
        .await;
        let iterations: Vec<Option<Value>> = match &step.each {
            None => vec![None],
            Some(each) => match expressions.evaluate(each, &context) {
                Ok(Value::Array(items)) => items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| Some(json!({"key": i, "value": v})))
                    .collect(),
                Ok(Value::Object(map)) => map
                    .into_iter()
                    .map(|(k, v)| Some(json!({"key": k, "value": v})))
                    .collect(),
                Ok(_) | Err(_) => {
                    set("failed", None).await?;
                    return Ok(StepsOutcome::Failed(format!(
                        "step {} failed: `each` must evaluate to a list or an object",
                        step.name
                    )));
                }
            },
        };
        if iterations.len() > MAX_EACH {
            set("failed", None).await?;
            return Ok(StepsOutcome::Failed(format!(
                "step {} failed: `each` gives {} items; a step runs at most {MAX_EACH} times",
                step.name,
                iterations.len()
            )));
        }
        let mut outputs = Vec::new();
        for item in &iterations {
            if let Some(item) = item {
                context["each"] = item.clone();
            }
            let input = match expressions.evaluate(&step.input, &context) {
                Ok(i) => i,
                Err(e) => {
                    set("failed", None).await?;
                    let message = log.masker().mask(&format!(
                        "step {} failed: its input could not be evaluated: {e}",
                        step.name
                    ));
                    log.event(Some(&step.id), "step", &message, Some("failed"))
                        .await;
                    return Ok(StepsOutcome::Failed(message));
                }
            };
            let ctx = ActionContext {
                core,
                task_id: &task.id,
                step_id: &step.id,
                principal,
                owner_team: task.owner_team.as_deref(),
                workspace,
                template_base,
                log,
                dry_run,
                expressions,
                policy_checked: &policy_checked,
            };
            match actions::run(&step.action, &ctx, &input).await {
                Ok(output) => outputs.push(log.masker().mask_json(&output)),
                Err(_) if !dry_run && tasks::cancel_requested(&core.db, &task.id).await? => {
                    for later in template.steps.iter().skip_while(|s| s.id != step.id) {
                        tasks::set_step(&core.db, &task.id, &later.id, "cancelled", None).await?;
                    }
                    return Ok(StepsOutcome::Cancelled);
                }
                Err(message) => {
                    set("failed", None).await?;
                    let message = log
                        .masker()
                        .mask(&format!("step {} failed: {message}", step.name));
                    log.event(Some(&step.id), "step", &message, Some("failed"))
                        .await;
                    return Ok(StepsOutcome::Failed(message));
                }
            }
        }
        if let Some(obj) = context.as_object_mut() {
            obj.remove("each");
        }
        let output = if step.each.is_some() {
            json!({"results": outputs})
        } else {
            outputs.pop().unwrap_or(json!({}))
        };
        context["steps"][&step.id] = json!({"output": output});
        set("completed", Some(output)).await?;
        log.event(
            Some(&step.id),
            "step",
            &format!("Finished step {}", step.name),
            Some("completed"),
        )
        .await;
    }
    Ok(StepsOutcome::Completed(context))
}
