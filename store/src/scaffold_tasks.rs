//! Scaffolder tasks, their steps and their event log.
//!
//! A task is claimed by one worker at a time. On PostgreSQL several replicas
//! share the queue: [`claim_next`] skips rows another replica is claiming
//! (`FOR UPDATE SKIP LOCKED`), the claiming worker's [`heartbeat`] keeps its
//! claim, and a claim whose heartbeat lapsed is taken over by exactly one
//! other worker ([`take_over`] compares the heartbeat it read).

use serde::{Deserialize, Serialize};
use sqlx::Error;

use crate::{dual, dual_conn, Conn, Db};

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

/// What a new task's row holds.
#[derive(Debug, Clone, Copy)]
pub struct NewTaskRow<'a> {
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
    /// Unix seconds.
    pub created_at: i64,
}

/// Stores an open task (its steps follow with [`insert_step`]).
pub async fn insert_task(conn: Conn<'_>, t: NewTaskRow<'_>) -> Result<(), Error> {
    dual_conn!(conn, |c|
        sqlite: sqlx::query!(
            r#"INSERT INTO scaffolder_tasks (id, template_ref, template_json, template_dir, values_json, secret_names,
                  created_by, principal_json, user_ref, owner_team, wizard_session, status, time_saved_minutes, created_at)
               VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'open', ?12, ?13)"#,
            t.id,
            t.template_ref,
            t.template_json,
            t.template_dir,
            t.values_json,
            t.secret_names,
            t.created_by,
            t.principal_json,
            t.user_ref,
            t.owner_team,
            t.wizard_session,
            t.time_saved_minutes,
            t.created_at
        )
        .execute(c)
        .await
        .map(drop),
        postgres: sqlx::query!(
            r#"INSERT INTO scaffolder_tasks (id, template_ref, template_json, template_dir, values_json, secret_names,
                  created_by, principal_json, user_ref, owner_team, wizard_session, status, time_saved_minutes, created_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'open', $12, $13)"#,
            t.id,
            t.template_ref,
            t.template_json,
            t.template_dir,
            t.values_json,
            t.secret_names,
            t.created_by,
            t.principal_json,
            t.user_ref,
            t.owner_team,
            t.wizard_session,
            t.time_saved_minutes,
            t.created_at
        )
        .execute(c)
        .await
        .map(drop),
    )
}

/// Stores one open step of a task.
pub async fn insert_step(
    conn: Conn<'_>,
    task_id: &str,
    step_id: &str,
    position: i64,
    name: &str,
    action: &str,
) -> Result<(), Error> {
    dual_conn!(conn, |c|
        sqlite: sqlx::query!(
            "INSERT INTO scaffolder_steps (task_id, step_id, position, name, action, status) VALUES (?1, ?2, ?3, ?4, ?5, 'open')",
            task_id,
            step_id,
            position,
            name,
            action
        )
        .execute(c)
        .await
        .map(drop),
        postgres: sqlx::query!(
            "INSERT INTO scaffolder_steps (task_id, step_id, position, name, action, status) VALUES ($1, $2, $3, $4, $5, 'open')",
            task_id,
            step_id,
            position,
            name,
            action
        )
        .execute(c)
        .await
        .map(drop),
    )
}

/// Claims the oldest open task for `worker`; its id, if there was one.
/// Concurrent claims (other workers, other replicas) never get the same
/// task: on PostgreSQL a row being claimed is skipped, not waited for.
pub async fn claim_next(db: Db<'_>, worker: &str, now: i64) -> Result<Option<String>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_scalar!(
            r#"UPDATE scaffolder_tasks SET status = 'processing', claimed_by = ?1,
                  started_at = COALESCE(started_at, ?2), heartbeat_at = ?2
               WHERE id = (SELECT id FROM scaffolder_tasks WHERE status = 'open' ORDER BY created_at, rowid LIMIT 1)
                 AND status = 'open'
               RETURNING id AS "id!""#,
            worker,
            now
        )
        .fetch_optional(pool)
        .await,
        postgres: sqlx::query_scalar!(
            r#"UPDATE scaffolder_tasks SET status = 'processing', claimed_by = $1,
                  started_at = COALESCE(started_at, $2), heartbeat_at = $2
               WHERE id = (SELECT id FROM scaffolder_tasks WHERE status = 'open'
                           ORDER BY created_at, seq LIMIT 1 FOR UPDATE SKIP LOCKED)
                 AND status = 'open'
               RETURNING id"#,
            worker,
            now
        )
        .fetch_optional(pool)
        .await,
    )
}

/// One task.
pub async fn get(db: Db<'_>, id: &str) -> Result<Option<TaskRow>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_as!(
            TaskRow,
            r#"SELECT id AS "id!", template_ref, template_json, template_dir, values_json, secret_names, created_by,
                      principal_json, user_ref, owner_team, wizard_session, status, resume_from, cancel_requested,
                      error, output_json, time_saved_minutes, created_at, started_at, finished_at, heartbeat_at
               FROM scaffolder_tasks WHERE id = ?1"#,
            id
        )
        .fetch_optional(pool)
        .await,
        postgres: sqlx::query_as!(
            TaskRow,
            r#"SELECT id, template_ref, template_json, template_dir, values_json, secret_names, created_by,
                      principal_json, user_ref, owner_team, wizard_session, status, resume_from, cancel_requested,
                      error, output_json, time_saved_minutes, created_at, started_at, finished_at, heartbeat_at
               FROM scaffolder_tasks WHERE id = $1"#,
            id
        )
        .fetch_optional(pool)
        .await,
    )
}

/// Tasks, newest first; only `created_by`'s when given.
pub async fn list(db: Db<'_>, created_by: Option<&str>, limit: i64) -> Result<Vec<TaskRow>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_as!(
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
        .await,
        postgres: sqlx::query_as!(
            TaskRow,
            r#"SELECT id, template_ref, template_json, template_dir, values_json, secret_names, created_by,
                      principal_json, user_ref, owner_team, wizard_session, status, resume_from, cancel_requested,
                      error, output_json, time_saved_minutes, created_at, started_at, finished_at, heartbeat_at
               FROM scaffolder_tasks WHERE $1::TEXT IS NULL OR created_by = $1
               ORDER BY created_at DESC, seq DESC LIMIT $2"#,
            created_by,
            limit
        )
        .fetch_all(pool)
        .await,
    )
}

/// A task's steps in order.
pub async fn steps(db: Db<'_>, task_id: &str) -> Result<Vec<StepRow>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_as!(
            StepRow,
            r#"SELECT step_id, position, name, action, status, output_json, started_at, finished_at
               FROM scaffolder_steps WHERE task_id = ?1 ORDER BY position"#,
            task_id
        )
        .fetch_all(pool)
        .await,
        postgres: sqlx::query_as!(
            StepRow,
            r#"SELECT step_id, position, name, action, status, output_json, started_at, finished_at
               FROM scaffolder_steps WHERE task_id = $1 ORDER BY position"#,
            task_id
        )
        .fetch_all(pool)
        .await,
    )
}

/// Sets a step's status (its output too, when given), stamping when it
/// started or ended, and refreshes the task's heartbeat.
pub async fn set_step(
    db: Db<'_>,
    task_id: &str,
    step_id: &str,
    status: &str,
    output: Option<String>,
    now: i64,
) -> Result<(), Error> {
    dual!(db, |pool|
        sqlite: {
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
            .await
            .map(drop)
        },
        postgres: {
            sqlx::query!(
                r#"UPDATE scaffolder_steps SET status = $3,
                      output_json = COALESCE($4, output_json),
                      started_at = CASE WHEN $3 = 'processing' THEN $5 ELSE started_at END,
                      finished_at = CASE WHEN $3 IN ('completed', 'failed', 'skipped', 'cancelled') THEN $5 ELSE finished_at END
                   WHERE task_id = $1 AND step_id = $2"#,
                task_id,
                step_id,
                status,
                output,
                now
            )
            .execute(pool)
            .await?;
            sqlx::query!(
                "UPDATE scaffolder_tasks SET heartbeat_at = $2 WHERE id = $1",
                task_id,
                now
            )
            .execute(pool)
            .await
            .map(drop)
        },
    )
}

/// What an event says.
#[derive(Debug, Clone, Copy)]
pub struct NewEvent<'a> {
    pub task_id: &'a str,
    pub step_id: Option<&'a str>,
    /// `log`, `step`, `completion`, `cancelled` or `recovered`.
    pub kind: &'a str,
    /// Already masked.
    pub message: &'a str,
    pub status: Option<&'a str>,
    /// Unix seconds.
    pub at: i64,
}

/// Appends an event and returns its id (ids grow in the order events commit
/// within a task's single writer).
pub async fn append_event(conn: Conn<'_>, e: NewEvent<'_>) -> Result<i64, Error> {
    dual_conn!(conn, |c|
        sqlite: sqlx::query_scalar!(
            r#"INSERT INTO scaffolder_events (task_id, step_id, kind, message, status, at)
               VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id AS "id!""#,
            e.task_id,
            e.step_id,
            e.kind,
            e.message,
            e.status,
            e.at
        )
        .fetch_one(c)
        .await,
        postgres: sqlx::query_scalar!(
            r#"INSERT INTO scaffolder_events (task_id, step_id, kind, message, status, at)
               VALUES ($1, $2, $3, $4, $5, $6) RETURNING id"#,
            e.task_id,
            e.step_id,
            e.kind,
            e.message,
            e.status,
            e.at
        )
        .fetch_one(c)
        .await,
    )
}

/// Events of a task after event id `after`, oldest first (at most 1,000).
pub async fn events(db: Db<'_>, task_id: &str, after: i64) -> Result<Vec<EventRow>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_as!(
            EventRow,
            r#"SELECT id AS "id!", task_id, step_id, kind, message, status, at
               FROM scaffolder_events WHERE task_id = ?1 AND id > ?2 ORDER BY id LIMIT 1000"#,
            task_id,
            after
        )
        .fetch_all(pool)
        .await,
        postgres: sqlx::query_as!(
            EventRow,
            r#"SELECT id, task_id, step_id, kind, message, status, at
               FROM scaffolder_events WHERE task_id = $1 AND id > $2 ORDER BY id LIMIT 1000"#,
            task_id,
            after
        )
        .fetch_all(pool)
        .await,
    )
}

/// Ends a task with `status`, its output or error; the claim is released.
pub async fn finish(
    conn: Conn<'_>,
    id: &str,
    status: &str,
    output: Option<String>,
    error: Option<&str>,
    now: i64,
) -> Result<(), Error> {
    dual_conn!(conn, |c|
        sqlite: sqlx::query!(
            r#"UPDATE scaffolder_tasks SET status = ?2, output_json = ?3, error = ?4, finished_at = ?5,
                  heartbeat_at = ?5, claimed_by = NULL, resume_from = NULL
               WHERE id = ?1"#,
            id,
            status,
            output,
            error,
            now
        )
        .execute(c)
        .await
        .map(drop),
        postgres: sqlx::query!(
            r#"UPDATE scaffolder_tasks SET status = $2, output_json = $3, error = $4, finished_at = $5,
                  heartbeat_at = $5, claimed_by = NULL, resume_from = NULL
               WHERE id = $1"#,
            id,
            status,
            output,
            error,
            now
        )
        .execute(c)
        .await
        .map(drop),
    )
}

/// Marks a task's still-open steps cancelled.
pub async fn cancel_open_steps(db: Db<'_>, id: &str) -> Result<(), Error> {
    dual!(db, |pool|
        sqlite: sqlx::query!(
            "UPDATE scaffolder_steps SET status = 'cancelled' WHERE task_id = ?1 AND status = 'open'",
            id
        )
        .execute(pool)
        .await
        .map(drop),
        postgres: sqlx::query!(
            "UPDATE scaffolder_steps SET status = 'cancelled' WHERE task_id = $1 AND status = 'open'",
            id
        )
        .execute(pool)
        .await
        .map(drop),
    )
}

/// Asks a running task to stop after its current step.
pub async fn set_cancel_requested(db: Db<'_>, id: &str) -> Result<(), Error> {
    dual!(db, |pool|
        sqlite: sqlx::query!(
            "UPDATE scaffolder_tasks SET cancel_requested = 1 WHERE id = ?1",
            id
        )
        .execute(pool)
        .await
        .map(drop),
        postgres: sqlx::query!(
            "UPDATE scaffolder_tasks SET cancel_requested = 1 WHERE id = $1",
            id
        )
        .execute(pool)
        .await
        .map(drop),
    )
}

/// Whether cancellation was asked for (`false` for an unknown task).
pub async fn cancel_requested(db: Db<'_>, id: &str) -> Result<bool, Error> {
    let flag = dual!(db, |pool|
        sqlite: sqlx::query_scalar!(
            r#"SELECT cancel_requested AS "c!: i64" FROM scaffolder_tasks WHERE id = ?1"#,
            id
        )
        .fetch_optional(pool)
        .await,
        postgres: sqlx::query_scalar!(
            "SELECT cancel_requested FROM scaffolder_tasks WHERE id = $1",
            id
        )
        .fetch_optional(pool)
        .await,
    )?;
    Ok(flag.unwrap_or(0) != 0)
}

/// Every step of a task open again, outputs dropped (a retry from the start).
pub async fn reset_steps(db: Db<'_>, id: &str) -> Result<(), Error> {
    dual!(db, |pool|
        sqlite: sqlx::query!(
            "UPDATE scaffolder_steps SET status = 'open', output_json = NULL WHERE task_id = ?1",
            id
        )
        .execute(pool)
        .await
        .map(drop),
        postgres: sqlx::query!(
            "UPDATE scaffolder_steps SET status = 'open', output_json = NULL WHERE task_id = $1",
            id
        )
        .execute(pool)
        .await
        .map(drop),
    )
}

/// The first step of a task that neither completed nor was skipped.
pub async fn first_unfinished_step(db: Db<'_>, id: &str) -> Result<Option<String>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_scalar!(
            r#"SELECT step_id AS "step_id!" FROM scaffolder_steps
               WHERE task_id = ?1 AND status NOT IN ('completed', 'skipped') ORDER BY position LIMIT 1"#,
            id
        )
        .fetch_optional(pool)
        .await,
        postgres: sqlx::query_scalar!(
            r#"SELECT step_id FROM scaffolder_steps
               WHERE task_id = $1 AND status NOT IN ('completed', 'skipped') ORDER BY position LIMIT 1"#,
            id
        )
        .fetch_optional(pool)
        .await,
    )
}

/// Re-opens an ended task at step `from`: its unfinished steps open again,
/// its error and claim cleared.
pub async fn reopen(mut conn: Conn<'_>, id: &str, from: &str) -> Result<(), Error> {
    dual_conn!(conn.reborrow(), |c|
        sqlite: sqlx::query!(
            "UPDATE scaffolder_steps SET status = 'open', started_at = NULL, finished_at = NULL WHERE task_id = ?1 AND status NOT IN ('completed', 'skipped')",
            id
        )
        .execute(c)
        .await
        .map(drop),
        postgres: sqlx::query!(
            "UPDATE scaffolder_steps SET status = 'open', started_at = NULL, finished_at = NULL WHERE task_id = $1 AND status NOT IN ('completed', 'skipped')",
            id
        )
        .execute(c)
        .await
        .map(drop),
    )?;
    dual_conn!(conn, |c|
        sqlite: sqlx::query!(
            r#"UPDATE scaffolder_tasks SET status = 'open', error = NULL, cancel_requested = 0, finished_at = NULL,
                  claimed_by = NULL, resume_from = ?2 WHERE id = ?1"#,
            id,
            from
        )
        .execute(c)
        .await
        .map(drop),
        postgres: sqlx::query!(
            r#"UPDATE scaffolder_tasks SET status = 'open', error = NULL, cancel_requested = 0, finished_at = NULL,
                  claimed_by = NULL, resume_from = $2 WHERE id = $1"#,
            id,
            from
        )
        .execute(c)
        .await
        .map(drop),
    )
}

/// Running tasks that are not `worker`'s: all of them (`stale_before` is
/// `None`: the one process restarted), or only those whose heartbeat is
/// older than `stale_before` (unix seconds: their replica stopped).
pub async fn stranded(
    db: Db<'_>,
    worker: &str,
    stale_before: Option<i64>,
) -> Result<Vec<TaskRow>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_as!(
            TaskRow,
            r#"SELECT id AS "id!", template_ref, template_json, template_dir, values_json, secret_names, created_by,
                      principal_json, user_ref, owner_team, wizard_session, status, resume_from, cancel_requested,
                      error, output_json, time_saved_minutes, created_at, started_at, finished_at, heartbeat_at
               FROM scaffolder_tasks
               WHERE status = 'processing' AND (claimed_by IS NULL OR claimed_by != ?1)
                 AND (?2 IS NULL OR heartbeat_at IS NULL OR heartbeat_at < ?2)
               ORDER BY created_at, rowid"#,
            worker,
            stale_before
        )
        .fetch_all(pool)
        .await,
        postgres: sqlx::query_as!(
            TaskRow,
            r#"SELECT id, template_ref, template_json, template_dir, values_json, secret_names, created_by,
                      principal_json, user_ref, owner_team, wizard_session, status, resume_from, cancel_requested,
                      error, output_json, time_saved_minutes, created_at, started_at, finished_at, heartbeat_at
               FROM scaffolder_tasks
               WHERE status = 'processing' AND claimed_by IS DISTINCT FROM $1
                 AND ($2::BIGINT IS NULL OR heartbeat_at IS NULL OR heartbeat_at < $2)
               ORDER BY created_at, seq"#,
            worker,
            stale_before
        )
        .fetch_all(pool)
        .await,
    )
}

/// Takes a stranded task over for `worker` if it is still running with the
/// heartbeat `seen` (read by [`stranded`]): of several workers recovering
/// the same task, exactly one gets `true`; a replica that was only slow, and
/// has since beaten again, keeps its task.
pub async fn take_over(
    db: Db<'_>,
    id: &str,
    seen: Option<i64>,
    worker: &str,
    now: i64,
) -> Result<bool, Error> {
    let done = dual!(db, |pool|
        sqlite: sqlx::query!(
            r#"UPDATE scaffolder_tasks SET claimed_by = ?3, heartbeat_at = ?4
               WHERE id = ?1 AND status = 'processing' AND heartbeat_at IS ?2"#,
            id,
            seen,
            worker,
            now
        )
        .execute(pool)
        .await
        .map(|r| r.rows_affected()),
        postgres: sqlx::query!(
            r#"UPDATE scaffolder_tasks SET claimed_by = $3, heartbeat_at = $4
               WHERE id = $1 AND status = 'processing' AND heartbeat_at IS NOT DISTINCT FROM $2"#,
            id,
            seen,
            worker,
            now
        )
        .execute(pool)
        .await
        .map(|r| r.rows_affected()),
    )?;
    Ok(done == 1)
}

/// The step a task was running when its worker stopped.
pub async fn interrupted_step(db: Db<'_>, id: &str) -> Result<Option<String>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_scalar!(
            r#"SELECT step_id AS "step_id!" FROM scaffolder_steps WHERE task_id = ?1 AND status = 'processing' LIMIT 1"#,
            id
        )
        .fetch_optional(pool)
        .await,
        postgres: sqlx::query_scalar!(
            "SELECT step_id FROM scaffolder_steps WHERE task_id = $1 AND status = 'processing' LIMIT 1",
            id
        )
        .fetch_optional(pool)
        .await,
    )
}

/// Puts a task `worker` holds back in the queue (it resumes at its
/// unfinished steps with whichever worker claims it next).
pub async fn requeue(db: Db<'_>, id: &str, worker: &str) -> Result<bool, Error> {
    let done = dual!(db, |pool|
        sqlite: sqlx::query!(
            "UPDATE scaffolder_tasks SET status = 'open', claimed_by = NULL WHERE id = ?1 AND claimed_by = ?2 AND status = 'processing'",
            id,
            worker
        )
        .execute(pool)
        .await
        .map(|r| r.rows_affected()),
        postgres: sqlx::query!(
            "UPDATE scaffolder_tasks SET status = 'open', claimed_by = NULL WHERE id = $1 AND claimed_by = $2 AND status = 'processing'",
            id,
            worker
        )
        .execute(pool)
        .await
        .map(|r| r.rows_affected()),
    )?;
    Ok(done == 1)
}

/// Renews `worker`'s claim on a running task; `false` when it no longer
/// holds it (the task ended, or another worker took it over).
pub async fn heartbeat(db: Db<'_>, id: &str, worker: &str, now: i64) -> Result<bool, Error> {
    let done = dual!(db, |pool|
        sqlite: sqlx::query!(
            "UPDATE scaffolder_tasks SET heartbeat_at = ?3 WHERE id = ?1 AND claimed_by = ?2 AND status = 'processing'",
            id,
            worker,
            now
        )
        .execute(pool)
        .await
        .map(|r| r.rows_affected()),
        postgres: sqlx::query!(
            "UPDATE scaffolder_tasks SET heartbeat_at = $3 WHERE id = $1 AND claimed_by = $2 AND status = 'processing'",
            id,
            worker,
            now
        )
        .execute(pool)
        .await
        .map(|r| r.rows_affected()),
    )?;
    Ok(done == 1)
}

/// Tasks that ended (failed or cancelled) before `before`.
pub async fn ended_before(db: Db<'_>, before: i64) -> Result<Vec<String>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_scalar!(
            r#"SELECT id AS "id!" FROM scaffolder_tasks
               WHERE status IN ('failed', 'cancelled') AND finished_at IS NOT NULL AND finished_at < ?1"#,
            before
        )
        .fetch_all(pool)
        .await,
        postgres: sqlx::query_scalar!(
            r#"SELECT id FROM scaffolder_tasks
               WHERE status IN ('failed', 'cancelled') AND finished_at IS NOT NULL AND finished_at < $1"#,
            before
        )
        .fetch_all(pool)
        .await,
    )
}

/// How many of `created_by`'s tasks are queued or running.
pub async fn unfinished_of(db: Db<'_>, created_by: &str) -> Result<i64, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_scalar!(
            "SELECT COUNT(*) FROM scaffolder_tasks WHERE created_by = ?1 AND status IN ('open', 'processing')",
            created_by
        )
        .fetch_one(pool)
        .await,
        postgres: sqlx::query_scalar!(
            r#"SELECT COUNT(*) AS "n!" FROM scaffolder_tasks WHERE created_by = $1 AND status IN ('open', 'processing')"#,
            created_by
        )
        .fetch_one(pool)
        .await,
    )
}

/// Who started wizard run `session`, if anyone.
pub async fn wizard_owner(db: Db<'_>, session: &str) -> Result<Option<String>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_scalar!(
            "SELECT actor FROM wizard_events WHERE session = ?1 LIMIT 1",
            session
        )
        .fetch_optional(pool)
        .await,
        postgres: sqlx::query_scalar!(
            "SELECT actor FROM wizard_events WHERE session = $1 LIMIT 1",
            session
        )
        .fetch_optional(pool)
        .await,
    )
}

/// A wizard funnel event.
#[derive(Debug, Clone, Copy)]
pub struct WizardEvent<'a> {
    pub session: &'a str,
    /// Lowercase.
    pub template_ref: &'a str,
    pub actor: &'a str,
    /// `started`, `page`, `review`, `dry_run`, `submitted` or `abandoned`.
    pub event: &'a str,
    pub page: Option<i64>,
    /// Unix seconds.
    pub at: i64,
}

/// Stores a wizard funnel event.
pub async fn insert_wizard_event(db: Db<'_>, e: WizardEvent<'_>) -> Result<(), Error> {
    dual!(db, |pool|
        sqlite: sqlx::query!(
            "INSERT INTO wizard_events (session, template_ref, actor, event, page, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            e.session,
            e.template_ref,
            e.actor,
            e.event,
            e.page,
            e.at
        )
        .execute(pool)
        .await
        .map(drop),
        postgres: sqlx::query!(
            "INSERT INTO wizard_events (session, template_ref, actor, event, page, at) VALUES ($1, $2, $3, $4, $5, $6)",
            e.session,
            e.template_ref,
            e.actor,
            e.event,
            e.page,
            e.at
        )
        .execute(pool)
        .await
        .map(drop),
    )
}
