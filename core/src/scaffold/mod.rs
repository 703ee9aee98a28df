//! Golden paths: Backstage v1beta3 templates from the catalog, their
//! expressions, and the durable scaffolder that runs them. The functions here
//! are what the UI and the scaffolder API call: each authorizes, validates,
//! and then queues, reads or controls tasks.

pub mod actions;
mod bitbucket;
pub mod expr;
mod gitlab;
pub mod log;
pub mod metrics;
pub mod page;
mod publish;
pub mod runner;
pub mod tasks;
pub mod template;

use std::collections::BTreeMap;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::auth::{authorize, Action, Principal};
use crate::{CoreError, CoreState};
pub use runner::{run_workers, Scaffolder};
use template::Template;

pub use paved_shared::scaffold::TemplateSummary;

impl From<&Template> for TemplateSummary {
    fn from(t: &Template) -> Self {
        Self {
            entity_ref: t.entity_ref.clone(),
            name: t.name.clone(),
            title: t.title.clone(),
            description: t.description.clone(),
            tags: t.tags.clone(),
            spec_type: t.spec_type.clone(),
            owner: t.owner.clone(),
            time_saved_minutes: t.time_saved_minutes,
        }
    }
}

/// Every template in the catalog, by title. Everyone signed in sees them.
pub async fn list_templates(core: &CoreState) -> Result<Vec<TemplateSummary>, CoreError> {
    let rows = sqlx::query_scalar!(
        r#"SELECT body AS "body!" FROM catalog_entities WHERE kind_key = 'template' ORDER BY COALESCE(title, name)"#
    )
    .fetch_all(&core.db)
    .await?;
    Ok(rows
        .iter()
        .filter_map(|body| serde_json::from_str::<Value>(body).ok())
        .filter_map(|entity| template::parse(&entity).ok())
        .map(|t| TemplateSummary::from(&t))
        .collect())
}

/// A template, its entity as stored, and its folder (when read from a file).
/// Where a template was read from: what its relative skeleton paths
/// (`./skeleton`) resolve against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateBase {
    /// The folder of a template read from a file.
    Dir(PathBuf),
    /// The URL of a template read from a git host (the template file itself).
    Url(url::Url),
}

impl TemplateBase {
    /// Reads the form stored with a task (a folder path or a URL).
    pub fn parse(stored: &str) -> Self {
        match url::Url::parse(stored) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => TemplateBase::Url(url),
            _ => TemplateBase::Dir(PathBuf::from(stored)),
        }
    }

    /// The form stored with a task.
    pub fn stored(&self) -> String {
        match self {
            TemplateBase::Dir(dir) => dir.display().to_string(),
            TemplateBase::Url(url) => url.to_string(),
        }
    }

    /// Where a catalog entity read from `source` (`file:<path>` or a URL) takes its skeletons from.
    fn of_source(source: &str) -> Option<Self> {
        if let Some(path) = source.strip_prefix("file:") {
            return std::path::Path::new(path)
                .parent()
                .map(|p| TemplateBase::Dir(p.to_path_buf()));
        }
        url::Url::parse(source)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .map(TemplateBase::Url)
    }
}

pub async fn load_template(
    core: &CoreState,
    template_ref: &str,
) -> Result<(Template, Value, Option<TemplateBase>), CoreError> {
    let reference =
        crate::catalog::model::EntityRef::parse(template_ref, Some("template"), "default")
            .map_err(|message| CoreError::Invalid {
                field: "templateRef",
                message,
            })?;
    if reference.kind != "template" {
        return Err(CoreError::Invalid {
            field: "templateRef",
            message: format!("{reference} is not a Template"),
        });
    }
    let key = reference.to_string();
    let entity = crate::catalog::store::entity_by_ref(&core.db, &key)
        .await
        .map_err(|e| match e {
            CoreError::NotFound(_) => CoreError::NotFound(format!("template {key}")),
            other => other,
        })?;
    let source = sqlx::query_scalar!(
        "SELECT source FROM catalog_entities WHERE entity_ref = ?1",
        key
    )
    .fetch_optional(&core.db)
    .await?;
    let dir = source.as_deref().and_then(TemplateBase::of_source);
    let parsed = template::parse(&entity).map_err(|message| CoreError::Invalid {
        field: "templateRef",
        message,
    })?;
    Ok((parsed, entity, dir))
}

/// A template's wizard pages (Backstage's parameter-schema answer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParameterSchema {
    /// The template's title.
    pub title: String,
    /// Its description.
    pub description: String,
    /// One entry per page: `{title, description, schema}`.
    pub steps: Vec<Value>,
}

/// The wizard pages of a template.
pub async fn parameter_schema(
    core: &CoreState,
    template_ref: &str,
) -> Result<ParameterSchema, CoreError> {
    let (t, _, _) = load_template(core, template_ref).await?;
    Ok(ParameterSchema {
        title: t.title.clone(),
        description: t.description.clone(),
        steps: paved_shared::forms::pages(&t.parameters)
            .into_iter()
            .map(|p| json!({"title": p.title, "description": p.description, "schema": p.schema}))
            .collect(),
    })
}

/// A request to run a template.
pub struct RunRequest {
    /// `template:default/name`.
    pub template_ref: String,
    /// The answers (secret fields may be here; they are moved to `secrets`).
    pub values: Value,
    /// Secret answers: held in memory, never stored.
    pub secrets: BTreeMap<String, SecretString>,
    /// The wizard run this came from, for the funnel metrics.
    pub wizard_session: Option<String>,
}

impl std::fmt::Debug for RunRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunRequest")
            .field("template_ref", &self.template_ref)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Moves secret fields out of `values`, validates every answer against the
/// template's pages, checks every owner and entity picker answer names an
/// entity of an allowed kind that exists in the catalog (replacing it with
/// its canonical reference), and checks the caller may act for the chosen
/// owner and repository owner. Answers the owner team (if the template has
/// an owner picker).
async fn check_request(
    core: &CoreState,
    principal: &Principal,
    template: &Template,
    request: &mut RunRequest,
) -> Result<Option<String>, CoreError> {
    use secrecy::ExposeSecret;
    let secret_fields = paved_shared::forms::secret_fields(&template.parameters);
    if let Value::Object(values) = &mut request.values {
        for field in &secret_fields {
            if let Some(Value::String(s)) = take_path(values, field) {
                request
                    .secrets
                    .entry(field.clone())
                    .or_insert(SecretString::from(s));
            }
        }
    } else if !request.values.is_null() {
        return Err(CoreError::Invalid {
            field: "values",
            message: "must be an object of answers".into(),
        });
    }
    let mut all = match &request.values {
        Value::Object(m) => m.clone(),
        _ => Default::default(),
    };
    for (k, v) in &request.secrets {
        put_path(&mut all, k, Value::String(v.expose_secret().to_owned()));
    }
    let all = Value::Object(all);
    let errors = paved_shared::forms::validate_pages(&template.parameters, &all);
    if !errors.is_empty() {
        return Err(CoreError::InvalidFields(
            errors.into_iter().map(|e| (e.path, e.message)).collect(),
        ));
    }
    let mut owner_team = None;
    let mut problems = Vec::new();
    let mut canonical = Vec::new();
    for page in paved_shared::forms::pages(&template.parameters) {
        for field in paved_shared::forms::fields(&page.schema, &all) {
            let is_owner = match &field.widget {
                paved_shared::forms::Widget::OwnerPicker => true,
                paved_shared::forms::Widget::EntityPicker { .. } => false,
                paved_shared::forms::Widget::RepoUrlPicker { .. } => {
                    if let Some(raw) = all.get(&field.name).and_then(Value::as_str) {
                        check_repo_owner(principal, &field.path, raw)?;
                    }
                    continue;
                }
                _ => continue,
            };
            let Some(answer) = all.get(&field.name).and_then(Value::as_str) else {
                continue;
            };
            let reference = paved_shared::forms::picker_ref(&field.schema, answer)
                .map_err(|message| CoreError::InvalidFields(vec![(field.path.clone(), message)]))?;
            match crate::catalog::store::entity_by_ref(&core.db, &reference).await {
                Ok(_) => {}
                Err(CoreError::NotFound(_)) => {
                    problems.push((
                        field.path.clone(),
                        format!("{reference} is not in the catalog; choose one from the list"),
                    ));
                    continue;
                }
                Err(e) => return Err(e),
            }
            if is_owner {
                let team = reference.rsplit('/').next().unwrap_or_default().to_owned();
                authorize(principal, Action::ActInTeam(&team)).map_err(|_| {
                    CoreError::Forbidden(format!(
                        "Only members of team {team} can create services it owns."
                    ))
                })?;
                owner_team = Some(team);
            }
            canonical.push((field.name.clone(), reference));
        }
    }
    if !problems.is_empty() {
        return Err(CoreError::InvalidFields(problems));
    }
    if let Value::Object(values) = &mut request.values {
        for (name, reference) in canonical {
            values.insert(name, Value::String(reference));
        }
    }
    Ok(owner_team)
}

/// A `RepoUrlPicker` answer's owner (the organization or user the repository
/// is created under) must be a team the caller acts for, like an owner
/// picker's: nobody publishes into another team's space. Hosts whose owner
/// is not a Paved team name (a personal account) are refused for everyone
/// but platform admins.
fn check_repo_owner(principal: &Principal, path: &str, raw: &str) -> Result<(), CoreError> {
    let Ok(repo) = paved_shared::forms::parse_repo_url(raw) else {
        return Ok(()); // validation has already named the problem
    };
    let Some(owner) = repo.owner.as_deref() else {
        return Ok(());
    };
    authorize(principal, Action::ActInTeam(&owner.to_ascii_lowercase())).map_err(|_| {
        CoreError::Forbidden(format!(
            "{path}: only members of team {owner} can create repositories under {owner}."
        ))
    })
}

/// Removes a dotted path (`db.password`) from nested answers.
fn take_path(values: &mut serde_json::Map<String, Value>, path: &str) -> Option<Value> {
    match path.split_once('.') {
        None => values.remove(path),
        Some((head, rest)) => match values.get_mut(head) {
            Some(Value::Object(inner)) => take_path(inner, rest),
            _ => None,
        },
    }
}

/// Puts a value at a dotted path, creating objects on the way.
fn put_path(values: &mut serde_json::Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            values.insert(path.to_owned(), value);
        }
        Some((head, rest)) => {
            let inner = values
                .entry(head.to_owned())
                .or_insert_with(|| Value::Object(Default::default()));
            if !inner.is_object() {
                *inner = Value::Object(Default::default());
            }
            if let Value::Object(map) = inner {
                put_path(map, rest, value);
            }
        }
    }
}

/// Tasks one person may have queued or running at once.
pub const MAX_RUNNING_TASKS_PER_PERSON: i64 = 25;

/// Queues a task; answers its id. Secret answers stay in memory only.
pub async fn create_task(
    core: &CoreState,
    principal: &Principal,
    mut request: RunRequest,
) -> Result<String, CoreError> {
    let (template, entity, dir) = load_template(core, &request.template_ref).await?;
    let owner_team = check_request(core, principal, &template, &mut request).await?;
    let actor = principal.actor();
    let running = paved_store::scaffold_tasks::unfinished_of((&core.db).into(), &actor).await?;
    if running >= MAX_RUNNING_TASKS_PER_PERSON {
        return Err(CoreError::TooManyRequests(format!(
            "You already have {running} tasks queued or running; wait for some to finish."
        )));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let stored_base = dir.as_ref().map(TemplateBase::stored);
    let secret_names: Vec<&String> = request.secrets.keys().collect();
    let user_ref = principal
        .user_id
        .map(|_| format!("user:default/{}", principal.subject.to_ascii_lowercase()));
    let task = tasks::NewTask {
        id: &id,
        template_ref: &template.entity_ref,
        template_json: &entity.to_string(),
        template_dir: stored_base.as_deref(),
        values_json: &request.values.to_string(),
        secret_names: &serde_json::to_string(&secret_names).unwrap_or_else(|_| "[]".into()),
        created_by: &principal.actor(),
        principal_json: &serde_json::to_string(principal).unwrap_or_default(),
        user_ref: user_ref.as_deref(),
        owner_team: owner_team.as_deref(),
        wizard_session: request.wizard_session.as_deref(),
        time_saved_minutes: template.time_saved_minutes,
        steps: template
            .steps
            .iter()
            .map(|s| (s.id.clone(), s.name.clone(), s.action.clone()))
            .collect(),
    };
    tasks::create(&core.db, task).await?;
    if !request.secrets.is_empty() {
        core.scaffolder.hold_secrets(&id, request.secrets);
    }
    if let Some(session) = &request.wizard_session {
        record_wizard_event(
            core,
            principal,
            session,
            &template.entity_ref,
            "submitted",
            None,
        )
        .await?;
    }
    core.scaffolder.wake();
    Ok(id)
}

/// One step of a task, as shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepView {
    /// Step id.
    pub id: String,
    /// Step name.
    pub name: String,
    /// Action.
    pub action: String,
    /// open, processing, completed, failed, skipped, cancelled.
    pub status: String,
    /// Unix seconds.
    pub started_at: Option<i64>,
    /// Unix seconds.
    pub finished_at: Option<i64>,
}

/// A task, as shown (never secret values).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskView {
    /// Task id.
    pub id: String,
    /// The template.
    pub template_ref: String,
    /// The template's title.
    pub template_title: String,
    /// open, processing, completed, failed, cancelled.
    pub status: String,
    /// Who started it.
    pub created_by: String,
    /// The owner team.
    pub owner_team: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub started_at: Option<i64>,
    /// Unix seconds.
    pub finished_at: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
    /// The template's evaluated `output` (links, text).
    pub output: Option<Value>,
    /// The answers (secrets excluded).
    pub values: Value,
    /// Names of the secret answers given.
    pub secret_names: Vec<String>,
    /// Steps in order.
    pub steps: Vec<StepView>,
}

fn can_see(principal: &Principal, task: &tasks::TaskRow) -> bool {
    principal.is_admin()
        || task.created_by == principal.actor()
        || task
            .owner_team
            .as_deref()
            .is_some_and(|t| principal.team_role(t).is_some())
}

async fn visible_task(
    core: &CoreState,
    principal: &Principal,
    id: &str,
) -> Result<tasks::TaskRow, CoreError> {
    let task = tasks::get(&core.db, id).await?;
    if !can_see(principal, &task) {
        return Err(CoreError::Forbidden(
            "Only the person who started this task, its owner team and platform admins can see it."
                .into(),
        ));
    }
    Ok(task)
}

/// A task with its steps.
pub async fn task(
    core: &CoreState,
    principal: &Principal,
    id: &str,
) -> Result<TaskView, CoreError> {
    let task = visible_task(core, principal, id).await?;
    view(core, task).await
}

async fn view(core: &CoreState, task: tasks::TaskRow) -> Result<TaskView, CoreError> {
    let steps = tasks::steps(&core.db, &task.id).await?;
    let title = serde_json::from_str::<Value>(&task.template_json)
        .ok()
        .and_then(|e| {
            e["metadata"]["title"]
                .as_str()
                .or(e["metadata"]["name"].as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| task.template_ref.clone());
    Ok(TaskView {
        template_title: title,
        values: serde_json::from_str(&task.values_json).unwrap_or(Value::Null),
        secret_names: serde_json::from_str(&task.secret_names).unwrap_or_default(),
        output: task
            .output_json
            .as_deref()
            .and_then(|o| serde_json::from_str(o).ok()),
        steps: steps
            .into_iter()
            .map(|s| StepView {
                id: s.step_id,
                name: s.name,
                action: s.action,
                status: s.status,
                started_at: s.started_at,
                finished_at: s.finished_at,
            })
            .collect(),
        id: task.id,
        template_ref: task.template_ref,
        status: task.status,
        created_by: task.created_by,
        owner_team: task.owner_team,
        created_at: task.created_at,
        started_at: task.started_at,
        finished_at: task.finished_at,
        error: task.error,
    })
}

/// Tasks the caller may see, newest first (only their own unless `all` and admin).
pub async fn list_tasks(
    core: &CoreState,
    principal: &Principal,
    all: bool,
) -> Result<Vec<TaskView>, CoreError> {
    let mine = principal.actor();
    let filter = if all && principal.is_admin() {
        None
    } else {
        Some(mine.as_str())
    };
    let rows = tasks::list(&core.db, filter, 100).await?;
    let mut out = Vec::new();
    for row in rows {
        out.push(view(core, row).await?);
    }
    Ok(out)
}

/// A task's events after `after` (log lines are already masked).
pub async fn events(
    core: &CoreState,
    principal: &Principal,
    id: &str,
    after: i64,
) -> Result<Vec<tasks::EventRow>, CoreError> {
    visible_task(core, principal, id).await?;
    tasks::events(&core.db, id, after).await
}

/// Cancels a task (its creator or an admin).
pub async fn cancel(
    core: &CoreState,
    principal: &Principal,
    id: &str,
) -> Result<String, CoreError> {
    let task = visible_task(core, principal, id).await?;
    if task.created_by != principal.actor() && !principal.is_admin() {
        return Err(CoreError::Forbidden(
            "Only the person who started this task (or an admin) can cancel it.".into(),
        ));
    }
    let outcome = tasks::request_cancel(&core.db, id).await?;
    crate::audit::record(
        &mut *core.db.acquire().await?,
        &principal.actor(),
        "scaffolder.task.cancel",
        id,
        None,
        None,
    )
    .await?;
    Ok(outcome)
}

/// Retries a failed or cancelled task from its first unfinished step (its
/// creator or an admin). Secret answers must be given again if the task had any
/// and they are no longer held.
pub async fn retry(
    core: &CoreState,
    principal: &Principal,
    id: &str,
    secrets: BTreeMap<String, SecretString>,
) -> Result<String, CoreError> {
    let task = visible_task(core, principal, id).await?;
    if task.created_by != principal.actor() && !principal.is_admin() {
        return Err(CoreError::Forbidden(
            "Only the person who started this task (or an admin) can retry it.".into(),
        ));
    }
    let names: Vec<String> = serde_json::from_str(&task.secret_names).unwrap_or_default();
    let held = core.scaffolder.has_secrets(id);
    if !names.is_empty() && !held {
        let missing: Vec<(String, String)> = names
            .iter()
            .filter(|n| !secrets.contains_key(*n))
            .map(|n| (n.clone(), "enter this secret again to retry".to_owned()))
            .collect();
        if !missing.is_empty() {
            return Err(CoreError::InvalidFields(missing));
        }
        core.scaffolder.hold_secrets(id, secrets);
    }
    // Without its workspace (cancelled, or cleaned up after a week) the task starts over:
    // later steps must not publish an empty folder. Steps that already ran recognise their own work.
    let from_start = !runner::workspace_of(core, id).is_dir();
    let from = tasks::reopen(&core.db, id, &principal.actor(), from_start).await?;
    core.scaffolder.wake();
    Ok(from)
}

/// A dry run's result: the log, the files the fetch steps produced, the output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DryRun {
    /// Log lines (masked), as (step id, message).
    pub log: Vec<(Option<String>, String)>,
    /// The workspace's files after the run.
    pub files: Vec<DryRunFile>,
    /// Each step's status: completed, skipped, failed, open.
    pub steps: Vec<StepView>,
    /// The template's evaluated output, if every step passed.
    pub output: Option<Value>,
    /// Why it stopped, if a step failed.
    pub error: Option<String>,
}

pub use paved_shared::scaffold::DryRunFile;

/// Runs a template without publishing, registering, provisioning or notifying:
/// the fetch steps render into a scratch workspace, which is returned and removed.
pub async fn dry_run(
    core: &CoreState,
    principal: &Principal,
    mut request: RunRequest,
) -> Result<DryRun, CoreError> {
    use secrecy::ExposeSecret;
    let (template, _, dir) = load_template(core, &request.template_ref).await?;
    let owner_team = check_request(core, principal, &template, &mut request).await?;
    let id = format!("dry-run-{}", uuid::Uuid::new_v4());
    let workspace = core.config.scaffolder.work_dir.join(&id);
    std::fs::create_dir_all(&workspace)
        .map_err(|e| CoreError::Unavailable(format!("cannot create a scratch workspace: {e}")))?;
    let log = log::TaskLog::Memory {
        masker: log::Masker::new(
            request
                .secrets
                .values()
                .map(|s| s.expose_secret().to_owned()),
        ),
        lines: Default::default(),
    };
    let row = tasks::TaskRow {
        id: id.clone(),
        template_ref: template.entity_ref.clone(),
        template_json: String::new(),
        template_dir: None,
        values_json: String::new(),
        secret_names: "[]".into(),
        created_by: principal.actor(),
        principal_json: String::new(),
        user_ref: None,
        owner_team,
        wizard_session: None,
        status: "processing".into(),
        resume_from: None,
        cancel_requested: 0,
        error: None,
        output_json: None,
        time_saved_minutes: None,
        created_at: crate::now_unix(),
        started_at: None,
        finished_at: None,
        heartbeat_at: None,
    };
    let outcome = runner::run_steps(
        core,
        &row,
        &template,
        principal,
        &request.values,
        &request.secrets,
        &workspace,
        dir.as_ref(),
        &log,
        true,
    )
    .await;
    let files = collect_files(&workspace, log.masker());
    let _ = std::fs::remove_dir_all(&workspace);
    let lines = match log {
        log::TaskLog::Memory { lines, .. } => lines.into_inner().unwrap_or_default(),
        log::TaskLog::Stored { .. } => Vec::new(),
    };
    let ran: Vec<String> = lines.iter().filter_map(|(s, _)| s.clone()).collect();
    let (output, error, failed_at) = match outcome? {
        runner::StepsOutcome::Completed(context) => (
            core.scaffolder
                .expressions
                .evaluate(&template.output, &context)
                .ok(),
            None,
            None,
        ),
        runner::StepsOutcome::Failed(message) => {
            let at = lines.iter().rev().find_map(|(s, _)| s.clone());
            (None, Some(message), at)
        }
        runner::StepsOutcome::Cancelled => (None, Some("cancelled".into()), None),
    };
    let skipped: Vec<&str> = lines
        .iter()
        .filter(|(_, m)| m.starts_with("Skipping step"))
        .filter_map(|(s, _)| s.as_deref())
        .collect();
    let steps = template
        .steps
        .iter()
        .map(|s| StepView {
            status: if failed_at.as_deref() == Some(s.id.as_str()) {
                "failed"
            } else if skipped.contains(&s.id.as_str()) {
                "skipped"
            } else if ran.contains(&s.id) {
                "completed"
            } else {
                "open"
            }
            .into(),
            id: s.id.clone(),
            name: s.name.clone(),
            action: s.action.clone(),
            started_at: None,
            finished_at: None,
        })
        .collect();
    Ok(DryRun {
        log: lines,
        files,
        steps,
        output,
        error,
    })
}

fn collect_files(root: &std::path::Path, masker: &log::Masker) -> Vec<DryRunFile> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            let content = if size <= 64 * 1024 {
                std::fs::read_to_string(&path).ok().map(|t| masker.mask(&t))
            } else {
                None
            };
            out.push(DryRunFile {
                path: path
                    .strip_prefix(root)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .into_owned(),
                size,
                content,
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Records a wizard funnel event (`started`, `page`, `review`, `dry_run`, `submitted`, `abandoned`).
pub async fn record_wizard_event(
    core: &CoreState,
    principal: &Principal,
    session: &str,
    template_ref: &str,
    event: &str,
    page: Option<i64>,
) -> Result<(), CoreError> {
    if !matches!(
        event,
        "started" | "page" | "review" | "dry_run" | "submitted" | "abandoned"
    ) {
        return Err(CoreError::Invalid {
            field: "event",
            message: format!("`{event}` is not a wizard event"),
        });
    }
    if session.is_empty() || session.len() > 64 {
        return Err(CoreError::Invalid {
            field: "session",
            message: "must be 1 to 64 characters".into(),
        });
    }
    let actor = principal.actor();
    // A wizard run belongs to whoever started it: nobody adds events to
    // another person's run (the funnel metrics would lie).
    let db = paved_store::Db::from(&core.db);
    let owner = paved_store::scaffold_tasks::wizard_owner(db, session).await?;
    if owner.is_some_and(|o| o != actor) {
        return Err(CoreError::Forbidden(
            "This wizard run belongs to someone else.".into(),
        ));
    }
    let now = crate::now_unix();
    let template_ref = template_ref.to_ascii_lowercase();
    paved_store::scaffold_tasks::insert_wizard_event(
        db,
        paved_store::scaffold_tasks::WizardEvent {
            session,
            template_ref: &template_ref,
            actor: &actor,
            event,
            page,
            at: now,
        },
    )
    .await?;
    Ok(())
}

/// The actions Paved has, for `GET /actions`.
pub fn list_actions() -> Vec<Value> {
    template::ACTIONS
        .iter()
        .map(|(id, description)| json!({"id": id, "description": description, "schema": {"input": {"type": "object"}, "output": {"type": "object"}}}))
        .collect()
}

/// Catalog entities a wizard's entity pickers offer: (kind, reference, title),
/// at most 1,000 per kind.
pub async fn entity_options(
    core: &CoreState,
    kinds: &[String],
) -> Result<Vec<(String, String, String)>, CoreError> {
    let mut out = Vec::new();
    for kind in kinds {
        let kind = kind.to_ascii_lowercase();
        let rows = sqlx::query!(
            r#"SELECT entity_ref AS "entity_ref!", COALESCE(title, name) AS "title!: String"
               FROM catalog_entities WHERE kind_key = ?1 ORDER BY name_key LIMIT 1000"#,
            kind
        )
        .fetch_all(&core.db)
        .await?;
        out.extend(
            rows.into_iter()
                .map(|r| (kind.clone(), r.entity_ref, r.title)),
        );
    }
    Ok(out)
}
