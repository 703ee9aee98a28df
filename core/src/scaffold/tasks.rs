//! Scaffolder tasks in SQLite: created open, claimed by one worker at a time,
//! each step's state and output recorded as it finishes, every event kept.
//! A restart finds the tasks its predecessor was running and resumes them
//! (or fails them, with the log intact, when they need secrets that were only
//! ever held in memory).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::SqlitePool;

use crate::{now_unix, CoreError};

/// A task's row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRow {
    pub id: String,
    pub template_ref: String,
    pub template_json: String,
    pub template_dir: Option<String>,
    pub values_json: String,
    pub secret_names: String,
    pub created_by: String,
    pub principal_json: String,
    pub user_ref: Option<String>,
    pub owner_team: Option<String>,
    pub wizard_session: Option<String>,
    pub status: String,
    pub resume_from: Option<String>,
    pub cancel_requested: i64,
    pub error: Option<String>,
    pub output_json: Option<String>,
    pub time_saved_minutes: Option<i64>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub heartbeat_at: Option<i64>,
}

/// A step's row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRow {
    pub step_id: String,
    pub position: i64,
    pub name: String,
    pub action: String,
    pub status: String,
    pub output_json: Option<String>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

/// An event's row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRow {
    pub id: i64,
    pub task_id: String,
    pub step_id: Option<String>,
    pub kind: String,
    pub message: String,
    pub status: Option<String>,
    pub at: i64,
}

/// What a new task needs.
pub struct NewTask<'a> {
    pub id: &'a str,
    pub template_ref: &'a str,
    pub template_json: &'a str,
    pub template_dir: Option<&'a str>,
    pub values_json: &'a str,
    pub secret_names: &'a str,
    pub created_by: &'a str,
    pub principal_json: &'a str,
    pub user_ref: Option<&'a str>,
    pub owner_team: Option<&'a str>,
    pub wizard_session: Option<&'a str>,
    pub time_saved_minutes: Option<i64>,
    /// (id, name, action) in order.
    pub steps: Vec<(String, String, String)>,
}

/// Creates an open task with its steps and audit entry, in one transaction.
pub async fn create(pool: &SqlitePool, task: NewTask<'_>) -> Result<(), CoreError> {
    let now = now_unix();
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query!(
        r#"INSERT INTO scaffolder_tasks (id, template_ref, template_json, template_dir, values_json, secret_names,
              created_by, principal_json, user_ref, owner_team, wizard_session, status, time_saved_minutes, created_at)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'open', ?12, ?13)"#,
        task.id,
        task.template_ref,
        task.template_json,
        task.template_dir,
        task.values_json,
        task.secret_names,
        task.created_by,
        task.principal_json,
        task.user_ref,
        task.owner_team,
        task.wizard_session,
        task.time_saved_minutes,
        now
    )
    .execute(&mut *tx)
    .await?;
    for (position, (id, name, action)) in task.steps.iter().enumerate() {
        let position = position as i64;
        sqlx::query!(
            "INSERT INTO scaffolder_steps (task_id, step_id, position, name, action, status) VALUES (?1, ?2, ?3, ?4, ?5, 'open')",
            task.id,
            id,
            position,
            name,
            action
        )
        .execute(&mut *tx)
        .await?;
    }
    crate::audit::record(
        &mut *tx,
        task.created_by,
        "scaffolder.task.create",
        task.id,
        None,
        Some(serde_json::json!({
            "template": task.template_ref,
            "owner": task.owner_team,
            "secrets": serde_json::from_str::<Value>(task.secret_names).unwrap_or_default(),
        })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Claims the oldest open task for worker `worker`, if any.
pub async fn claim_next(pool: &SqlitePool, worker: &str) -> Result<Option<TaskRow>, CoreError> {
    let now = now_unix();
    let id = sqlx::query_scalar!(
        r#"UPDATE scaffolder_tasks SET status = 'processing', claimed_by = ?1,
              started_at = COALESCE(started_at, ?2), heartbeat_at = ?2
           WHERE id = (SELECT id FROM scaffolder_tasks WHERE status = 'open' ORDER BY created_at, rowid LIMIT 1)
             AND status = 'open'
           RETURNING id AS "id!""#,
        worker,
        now
    )
    .fetch_optional(pool)
    .await?;
    match id {
        Some(id) => Ok(Some(get(pool, &id).await?)),
        None => Ok(None),
    }
}

/// One task.
pub async fn get(pool: &SqlitePool, id: &str) -> Result<TaskRow, CoreError> {
    sqlx::query_as!(
        TaskRow,
        r#"SELECT id AS "id!", template_ref, template_json, template_dir, values_json, secret_names, created_by,
                  principal_json, user_ref, owner_team, wizard_session, status, resume_from, cancel_requested,
                  error, output_json, time_saved_minutes, created_at, started_at, finished_at, heartbeat_at
           FROM scaffolder_tasks WHERE id = ?1"#,
        id
    )
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| CoreError::NotFound(format!("task {id}")))
}

/// Tasks, newest first; only `created_by`'s when given.
pub async fn list(
    pool: &SqlitePool,
    created_by: Option<&str>,
    limit: i64,
) -> Result<Vec<TaskRow>, CoreError> {
    Ok(sqlx::query_as!(
        TaskRow,
        r#"SELECT id AS "id!", template_ref, template_json, template_dir, values_json, secret_names, created_by,
                  principal_json, user_ref, owner_team, wizard_session, status, resume_from, cancel_requested,
                  error, output_json, time_saved_minutes, created_at, started_at, finished_at, heartbeat_at
           FROM scaffolder_tasks WHERE ?1 IS NULL OR created_by = ?1
           ORDER BY created_at DESC, rowid DESC LIMIT ?2"#,
        created_by,
        limit
    )
    .fetch_all(pool)
    .await?)
}

/// A task's steps in order.
pub async fn steps(pool: &SqlitePool, task_id: &str) -> Result<Vec<StepRow>, CoreError> {
    Ok(sqlx::query_as!(
        StepRow,
        r#"SELECT step_id, position, name, action, status, output_json, started_at, finished_at
           FROM scaffolder_steps WHERE task_id = ?1 ORDER BY position"#,
        task_id
    )
    .fetch_all(pool)
    .await?)
}

/// Sets a step's status (and output, when it completed).
pub async fn set_step(
    pool: &SqlitePool,
    task_id: &str,
    step_id: &str,
    status: &str,
    output: Option<&Value>,
) -> Result<(), CoreError> {
    let now = now_unix();
    let output = output.map(Value::to_string);
    sqlx::query!(
        r#"UPDATE scaffolder_steps SET status = ?3,
              output_json = COALESCE(?4, output_json),
              started_at = CASE WHEN ?3 = 'processing' THEN ?5 ELSE started_at END,
              finished_at = CASE WHEN ?3 IN ('completed', 'failed', 'skipped', 'cancelled') THEN ?5 ELSE finished_at END
           WHERE task_id = ?1 AND step_id = ?2"#,
        task_id,
        step_id,
        status,
        output,
        now
    )
    .execute(pool)
    .await?;
    sqlx::query!(
        "UPDATE scaffolder_tasks SET heartbeat_at = ?2 WHERE id = ?1",
        task_id,
        now
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Appends an event (already masked by the caller) and returns its id.
pub async fn append_event(
    pool: &SqlitePool,
    task_id: &str,
    step_id: Option<&str>,
    kind: &str,
    message: &str,
    status: Option<&str>,
) -> Result<i64, CoreError> {
    let now = now_unix();
    Ok(sqlx::query_scalar!(
        r#"INSERT INTO scaffolder_events (task_id, step_id, kind, message, status, at)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id AS "id!""#,
        task_id,
        step_id,
        kind,
        message,
        status,
        now
    )
    .fetch_one(pool)
    .await?)
}

/// Events of a task after event id `after`, oldest first (at most 1,000).
pub async fn events(
    pool: &SqlitePool,
    task_id: &str,
    after: i64,
) -> Result<Vec<EventRow>, CoreError> {
    Ok(sqlx::query_as!(
        EventRow,
        r#"SELECT id AS "id!", task_id, step_id, kind, message, status, at
           FROM scaffolder_events WHERE task_id = ?1 AND id > ?2 ORDER BY id LIMIT 1000"#,
        task_id,
        after
    )
    .fetch_all(pool)
    .await?)
}

/// Ends a task: `completed`, `failed` or `cancelled`, with its output or
/// error, an audit entry and, when given, its last event `(kind, message)`
/// (already masked) in the same transaction, so whoever sees that event reads
/// the final status. Returns the event's id.
pub async fn finish(
    pool: &SqlitePool,
    task: &TaskRow,
    status: &str,
    output: Option<&Value>,
    error: Option<&str>,
    last_event: Option<(&str, &str)>,
) -> Result<Option<i64>, CoreError> {
    let now = now_unix();
    let output = output.map(Value::to_string);
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query!(
        r#"UPDATE scaffolder_tasks SET status = ?2, output_json = ?3, error = ?4, finished_at = ?5,
              heartbeat_at = ?5, claimed_by = NULL, resume_from = NULL
           WHERE id = ?1"#,
        task.id,
        status,
        output,
        error,
        now
    )
    .execute(&mut *tx)
    .await?;
    crate::audit::record(
        &mut *tx,
        &task.created_by,
        &format!("scaffolder.task.{status}"),
        &task.id,
        None,
        Some(serde_json::json!({"template": task.template_ref, "error": error})),
    )
    .await?;
    let event = match last_event {
        Some((kind, message)) => Some(
            sqlx::query_scalar!(
                r#"INSERT INTO scaffolder_events (task_id, step_id, kind, message, status, at)
                   VALUES (?1, NULL, ?2, ?3, ?4, ?5) RETURNING id AS "id!""#,
                task.id,
                kind,
                message,
                status,
                now
            )
            .fetch_one(&mut *tx)
            .await?,
        ),
        None => None,
    };
    tx.commit().await?;
    Ok(event)
}

/// Asks a running task to stop after its current step; an open one is cancelled at once.
pub async fn request_cancel(pool: &SqlitePool, id: &str) -> Result<String, CoreError> {
    let task = get(pool, id).await?;
    match task.status.as_str() {
        "open" => {
            finish(
                pool,
                &task,
                "cancelled",
                None,
                Some("cancelled before it started"),
                None,
            )
            .await?;
            sqlx::query!(
                "UPDATE scaffolder_steps SET status = 'cancelled' WHERE task_id = ?1 AND status = 'open'",
                id
            )
            .execute(pool)
            .await?;
            Ok("cancelled".into())
        }
        "processing" => {
            sqlx::query!(
                "UPDATE scaffolder_tasks SET cancel_requested = 1 WHERE id = ?1",
                id
            )
            .execute(pool)
            .await?;
            Ok("cancelling".into())
        }
        other => Err(CoreError::Conflict(format!(
            "the task is already {other}; there is nothing to cancel"
        ))),
    }
}

/// Whether cancellation was asked for.
pub async fn cancel_requested(pool: &SqlitePool, id: &str) -> Result<bool, CoreError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT cancel_requested AS "c!: i64" FROM scaffolder_tasks WHERE id = ?1"#,
        id
    )
    .fetch_optional(pool)
    .await?
    .unwrap_or(0)
        != 0)
}

/// Re-opens a failed or cancelled task from its first unfinished step.
/// With `from_start` (the workspace is gone), every step runs again.
pub async fn reopen(
    pool: &SqlitePool,
    id: &str,
    actor: &str,
    from_start: bool,
) -> Result<String, CoreError> {
    let task = get(pool, id).await?;
    if !matches!(task.status.as_str(), "failed" | "cancelled") {
        return Err(CoreError::Conflict(format!(
            "only failed or cancelled tasks can be retried; this one is {}",
            task.status
        )));
    }
    if from_start {
        sqlx::query!(
            "UPDATE scaffolder_steps SET status = 'open', output_json = NULL WHERE task_id = ?1",
            id
        )
        .execute(pool)
        .await?;
    }
    let from = sqlx::query_scalar!(
        r#"SELECT step_id AS "step_id!" FROM scaffolder_steps
           WHERE task_id = ?1 AND status NOT IN ('completed', 'skipped') ORDER BY position LIMIT 1"#,
        id
    )
    .fetch_optional(pool)
    .await?
    .unwrap_or_default();
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query!(
        "UPDATE scaffolder_steps SET status = 'open', started_at = NULL, finished_at = NULL WHERE task_id = ?1 AND status NOT IN ('completed', 'skipped')",
        id
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        r#"UPDATE scaffolder_tasks SET status = 'open', error = NULL, cancel_requested = 0, finished_at = NULL,
              claimed_by = NULL, resume_from = ?2 WHERE id = ?1"#,
        id,
        from
    )
    .execute(&mut *tx)
    .await?;
    crate::audit::record(
        &mut *tx,
        actor,
        "scaffolder.task.retry",
        id,
        None,
        Some(serde_json::json!({"from_step": from})),
    )
    .await?;
    tx.commit().await?;
    Ok(from)
}

/// After a restart: tasks another process was running. Those whose answers
/// included secrets fail (secrets are never stored); the rest go back to open,
/// resuming at the interrupted step. Returns (resumed, failed).
pub async fn recover(pool: &SqlitePool, worker: &str) -> Result<(usize, usize), CoreError> {
    let stranded = sqlx::query_as!(
        TaskRow,
        r#"SELECT id AS "id!", template_ref, template_json, template_dir, values_json, secret_names, created_by,
                  principal_json, user_ref, owner_team, wizard_session, status, resume_from, cancel_requested,
                  error, output_json, time_saved_minutes, created_at, started_at, finished_at, heartbeat_at
           FROM scaffolder_tasks WHERE status = 'processing' AND (claimed_by IS NULL OR claimed_by != ?1)"#,
        worker
    )
    .fetch_all(pool)
    .await?;
    let (mut resumed, mut failed) = (0, 0);
    for task in stranded {
        let interrupted = sqlx::query_scalar!(
            r#"SELECT step_id AS "step_id!" FROM scaffolder_steps WHERE task_id = ?1 AND status = 'processing' LIMIT 1"#,
            task.id
        )
        .fetch_optional(pool)
        .await?;
        let needs_secrets = task.secret_names != "[]";
        if needs_secrets || task.cancel_requested != 0 {
            let message = if task.cancel_requested != 0 {
                "Paved restarted while this task was being cancelled; it is cancelled.".to_owned()
            } else {
                "Paved restarted while this task was running. Its secret answers are never stored, so it cannot resume on its own: retry it and enter them again.".to_owned()
            };
            append_event(
                pool,
                &task.id,
                interrupted.as_deref(),
                "recovered",
                &message,
                Some("failed"),
            )
            .await?;
            if let Some(step) = &interrupted {
                set_step(pool, &task.id, step, "failed", None).await?;
            }
            let status = if task.cancel_requested != 0 {
                "cancelled"
            } else {
                "failed"
            };
            finish(pool, &task, status, None, Some(&message), None).await?;
            failed += 1;
        } else {
            if let Some(step) = &interrupted {
                set_step(pool, &task.id, step, "open", None).await?;
            }
            sqlx::query!(
                "UPDATE scaffolder_tasks SET status = 'open', claimed_by = NULL WHERE id = ?1",
                task.id
            )
            .execute(pool)
            .await?;
            append_event(
                pool,
                &task.id,
                interrupted.as_deref(),
                "recovered",
                "Paved restarted while this task was running; it resumes at the interrupted step.",
                None,
            )
            .await?;
            resumed += 1;
        }
    }
    Ok((resumed, failed))
}

/// Tasks that ended (failed or cancelled) before `before`, whose workspaces may go.
pub async fn ended_before(pool: &SqlitePool, before: i64) -> Result<Vec<String>, CoreError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT id AS "id!" FROM scaffolder_tasks
           WHERE status IN ('failed', 'cancelled') AND finished_at IS NOT NULL AND finished_at < ?1"#,
        before
    )
    .fetch_all(pool)
    .await?)
}
