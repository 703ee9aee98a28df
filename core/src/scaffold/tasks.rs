//! Scaffolder tasks: created open, claimed by one worker at a time (one
//! worker of one replica, when several share PostgreSQL), each step's state
//! and output recorded as it finishes, every event kept. A restart, or a
//! replica whose claim's heartbeat lapsed, leaves tasks that another worker
//! takes over and resumes (or fails, with the log intact, when they need
//! secrets that were only ever held in memory). Statements: `paved-store`.

use paved_store::scaffold_tasks as stored;
use paved_store::Db;
use serde_json::Value;

use crate::{now_unix, CoreError};

pub use stored::{EventRow, StepRow, TaskRow};

/// How often a worker renews its claim on the task it runs.
pub const HEARTBEAT_SECS: u64 = 15;

/// A claim whose heartbeat is older than this is a stopped replica's: another
/// replica takes the task over.
pub const STALE_AFTER_SECS: i64 = 90;

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
pub async fn create(db: impl Into<Db<'_>>, task: NewTask<'_>) -> Result<(), CoreError> {
    let now = now_unix();
    let mut tx = db.into().begin().await?;
    stored::insert_task(
        tx.conn(),
        stored::NewTaskRow {
            id: task.id,
            template_ref: task.template_ref,
            template_json: task.template_json,
            template_dir: task.template_dir,
            values_json: task.values_json,
            secret_names: task.secret_names,
            created_by: task.created_by,
            principal_json: task.principal_json,
            user_ref: task.user_ref,
            owner_team: task.owner_team,
            wizard_session: task.wizard_session,
            time_saved_minutes: task.time_saved_minutes,
            created_at: now,
        },
    )
    .await?;
    for (position, (id, name, action)) in task.steps.iter().enumerate() {
        stored::insert_step(tx.conn(), task.id, id, position as i64, name, action).await?;
    }
    crate::audit::record(
        tx.conn(),
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

/// Claims the oldest open task for worker `worker`, if any. However many
/// workers and replicas claim at once, each task goes to exactly one.
pub async fn claim_next(db: impl Into<Db<'_>>, worker: &str) -> Result<Option<TaskRow>, CoreError> {
    let db = db.into();
    match stored::claim_next(db, worker, now_unix()).await? {
        Some(id) => Ok(Some(get(db, &id).await?)),
        None => Ok(None),
    }
}

/// One task.
pub async fn get(db: impl Into<Db<'_>>, id: &str) -> Result<TaskRow, CoreError> {
    stored::get(db.into(), id)
        .await?
        .ok_or_else(|| CoreError::NotFound(format!("task {id}")))
}

/// Tasks, newest first; only `created_by`'s when given.
pub async fn list(
    db: impl Into<Db<'_>>,
    created_by: Option<&str>,
    limit: i64,
) -> Result<Vec<TaskRow>, CoreError> {
    Ok(stored::list(db.into(), created_by, limit).await?)
}

/// A task's steps in order.
pub async fn steps(db: impl Into<Db<'_>>, task_id: &str) -> Result<Vec<StepRow>, CoreError> {
    Ok(stored::steps(db.into(), task_id).await?)
}

/// Sets a step's status (and output, when it completed).
pub async fn set_step(
    db: impl Into<Db<'_>>,
    task_id: &str,
    step_id: &str,
    status: &str,
    output: Option<&Value>,
) -> Result<(), CoreError> {
    let output = output.map(Value::to_string);
    stored::set_step(db.into(), task_id, step_id, status, output, now_unix()).await?;
    Ok(())
}

/// Appends an event (already masked by the caller) and returns its id.
pub async fn append_event(
    db: impl Into<Db<'_>>,
    task_id: &str,
    step_id: Option<&str>,
    kind: &str,
    message: &str,
    status: Option<&str>,
) -> Result<i64, CoreError> {
    let mut conn = db.into().acquire().await?;
    Ok(stored::append_event(
        conn.conn(),
        stored::NewEvent {
            task_id,
            step_id,
            kind,
            message,
            status,
            at: now_unix(),
        },
    )
    .await?)
}

/// Events of a task after event id `after`, oldest first (at most 1,000).
pub async fn events(
    db: impl Into<Db<'_>>,
    task_id: &str,
    after: i64,
) -> Result<Vec<EventRow>, CoreError> {
    Ok(stored::events(db.into(), task_id, after).await?)
}

/// Ends a task: `completed`, `failed` or `cancelled`, with its output or
/// error, an audit entry and, when given, its last event `(kind, message)`
/// (already masked) in the same transaction, so whoever sees that event reads
/// the final status. Returns the event's id.
pub async fn finish(
    db: impl Into<Db<'_>>,
    task: &TaskRow,
    status: &str,
    output: Option<&Value>,
    error: Option<&str>,
    last_event: Option<(&str, &str)>,
) -> Result<Option<i64>, CoreError> {
    let now = now_unix();
    let output = output.map(Value::to_string);
    let mut tx = db.into().begin().await?;
    stored::finish(tx.conn(), &task.id, status, output, error, now).await?;
    crate::audit::record(
        tx.conn(),
        &task.created_by,
        &format!("scaffolder.task.{status}"),
        &task.id,
        None,
        Some(serde_json::json!({"template": task.template_ref, "error": error})),
    )
    .await?;
    let event = match last_event {
        Some((kind, message)) => Some(
            stored::append_event(
                tx.conn(),
                stored::NewEvent {
                    task_id: &task.id,
                    step_id: None,
                    kind,
                    message,
                    status: Some(status),
                    at: now,
                },
            )
            .await?,
        ),
        None => None,
    };
    tx.commit().await?;
    Ok(event)
}

/// Asks a running task to stop after its current step; an open one is cancelled at once.
pub async fn request_cancel(db: impl Into<Db<'_>>, id: &str) -> Result<String, CoreError> {
    let db = db.into();
    let task = get(db, id).await?;
    match task.status.as_str() {
        "open" => {
            finish(
                db,
                &task,
                "cancelled",
                None,
                Some("cancelled before it started"),
                None,
            )
            .await?;
            stored::cancel_open_steps(db, id).await?;
            Ok("cancelled".into())
        }
        "processing" => {
            stored::set_cancel_requested(db, id).await?;
            Ok("cancelling".into())
        }
        other => Err(CoreError::Conflict(format!(
            "the task is already {other}; there is nothing to cancel"
        ))),
    }
}

/// Whether cancellation was asked for.
pub async fn cancel_requested(db: impl Into<Db<'_>>, id: &str) -> Result<bool, CoreError> {
    Ok(stored::cancel_requested(db.into(), id).await?)
}

/// Re-opens a failed or cancelled task from its first unfinished step.
/// With `from_start` (the workspace is gone), every step runs again.
pub async fn reopen(
    db: impl Into<Db<'_>>,
    id: &str,
    actor: &str,
    from_start: bool,
) -> Result<String, CoreError> {
    let db = db.into();
    let task = get(db, id).await?;
    if !matches!(task.status.as_str(), "failed" | "cancelled") {
        return Err(CoreError::Conflict(format!(
            "only failed or cancelled tasks can be retried; this one is {}",
            task.status
        )));
    }
    if from_start {
        stored::reset_steps(db, id).await?;
    }
    let from = stored::first_unfinished_step(db, id)
        .await?
        .unwrap_or_default();
    let mut tx = db.begin().await?;
    stored::reopen(tx.conn(), id, &from).await?;
    crate::audit::record(
        tx.conn(),
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

/// Renews `worker`'s claim on task `id`; `false` once it no longer holds it.
pub async fn heartbeat(db: impl Into<Db<'_>>, id: &str, worker: &str) -> Result<bool, CoreError> {
    Ok(stored::heartbeat(db.into(), id, worker, now_unix()).await?)
}

/// Which running tasks [`recover`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stranded {
    /// Every running task another worker claimed: the one process restarted.
    AllOthers,
    /// Only those whose heartbeat is older than this (unix seconds): their
    /// replica stopped while the others kept running.
    StaleBefore(i64),
}

/// Tasks another worker was running. Each is taken over by exactly one
/// recovering worker. Those whose answers included secrets fail (secrets
/// are never stored, only held by the process that took the answers); the
/// rest go back to open, resuming at the interrupted step. Returns
/// (resumed, failed).
pub async fn recover(
    db: impl Into<Db<'_>>,
    worker: &str,
    which: Stranded,
) -> Result<(usize, usize), CoreError> {
    let db = db.into();
    let stale_before = match which {
        Stranded::AllOthers => None,
        Stranded::StaleBefore(at) => Some(at),
    };
    let (mut resumed, mut failed) = (0, 0);
    for task in stored::stranded(db, worker, stale_before).await? {
        if !stored::take_over(db, &task.id, task.heartbeat_at, worker, now_unix()).await? {
            // Another worker took it first, or its own worker beat again.
            continue;
        }
        let interrupted = stored::interrupted_step(db, &task.id).await?;
        let needs_secrets = task.secret_names != "[]";
        if needs_secrets || task.cancel_requested != 0 {
            let message = if task.cancel_requested != 0 {
                "Paved stopped while this task was being cancelled; it is cancelled.".to_owned()
            } else {
                "Paved stopped while this task was running. Its secret answers are never stored, so it cannot resume on its own: retry it and enter them again.".to_owned()
            };
            append_event(
                db,
                &task.id,
                interrupted.as_deref(),
                "recovered",
                &message,
                Some("failed"),
            )
            .await?;
            if let Some(step) = &interrupted {
                set_step(db, &task.id, step, "failed", None).await?;
            }
            let status = if task.cancel_requested != 0 {
                "cancelled"
            } else {
                "failed"
            };
            finish(db, &task, status, None, Some(&message), None).await?;
            failed += 1;
        } else {
            if let Some(step) = &interrupted {
                set_step(db, &task.id, step, "open", None).await?;
            }
            stored::requeue(db, &task.id, worker).await?;
            append_event(
                db,
                &task.id,
                interrupted.as_deref(),
                "recovered",
                "Paved stopped while this task was running; it resumes at the interrupted step.",
                None,
            )
            .await?;
            resumed += 1;
        }
    }
    Ok((resumed, failed))
}

/// Tasks that ended (failed or cancelled) before `before`, whose workspaces may go.
pub async fn ended_before(db: impl Into<Db<'_>>, before: i64) -> Result<Vec<String>, CoreError> {
    Ok(stored::ended_before(db.into(), before).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{both_backends, postgres_testing, run};

    fn new_task<'a>(id: &'a str, secret_names: &'a str) -> NewTask<'a> {
        NewTask {
            id,
            template_ref: "template:default/service",
            template_json: "{}",
            template_dir: None,
            values_json: r#"{"name":"svc"}"#,
            secret_names,
            created_by: "user:dana",
            principal_json: "{}",
            user_ref: Some("user:default/dana"),
            owner_team: Some("payments"),
            wizard_session: None,
            time_saved_minutes: Some(30),
            steps: ["fetch", "publish", "register"]
                .iter()
                .map(|s| ((*s).to_owned(), format!("Step {s}"), format!("{s}:action")))
                .collect(),
        }
    }

    /// What a test compares across backends: everything but clock readings.
    fn shape(t: &TaskRow) -> (String, String, Option<String>, i64, Option<String>) {
        (
            t.id.clone(),
            t.status.clone(),
            t.resume_from.clone(),
            t.cancel_requested,
            t.error.clone(),
        )
    }

    /// A task's life (claim, steps, events, failure, retry from the failed
    /// step, cancellation) reads the same on SQLite and PostgreSQL.
    #[tokio::test]
    async fn tasks_work_alike_on_both_backends() {
        let Some((sqlite, postgres)) = both_backends("tasks").await else {
            return;
        };
        let mut seen = vec![];
        for db in [Db::Sqlite(&sqlite), Db::Postgres(&postgres)] {
            let mut out = vec![];
            create(db, new_task("t1", "[]")).await.unwrap();
            create(db, new_task("t2", "[]")).await.unwrap();
            assert_eq!(stored::unfinished_of(db, "user:dana").await.unwrap(), 2);
            assert_eq!(stored::unfinished_of(db, "user:lee").await.unwrap(), 0);
            // A wizard run's events, and who started it.
            assert_eq!(stored::wizard_owner(db, "run-1").await.unwrap(), None);
            for (event, page) in [("started", None), ("page", Some(2))] {
                let e = stored::WizardEvent {
                    session: "run-1",
                    template_ref: "template:default/service",
                    actor: "user:dana",
                    event,
                    page,
                    at: 5,
                };
                stored::insert_wizard_event(db, e).await.unwrap();
            }
            assert_eq!(
                stored::wizard_owner(db, "run-1").await.unwrap().as_deref(),
                Some("user:dana")
            );
            // Oldest first.
            let claimed = claim_next(db, "w1").await.unwrap().unwrap();
            out.push(format!("{:?}", shape(&claimed)));
            set_step(db, "t1", "fetch", "processing", None)
                .await
                .unwrap();
            let output = serde_json::json!({"ok": true});
            set_step(db, "t1", "fetch", "completed", Some(&output))
                .await
                .unwrap();
            set_step(db, "t1", "publish", "processing", None)
                .await
                .unwrap();
            let first = append_event(db, "t1", Some("fetch"), "log", "fetched", None)
                .await
                .unwrap();
            append_event(db, "t1", Some("publish"), "log", "pushing", None)
                .await
                .unwrap();
            let events = events(db, "t1", first).await.unwrap();
            out.push(format!(
                "{:?}",
                events.iter().map(|e| e.message.clone()).collect::<Vec<_>>()
            ));
            set_step(db, "t1", "publish", "failed", None).await.unwrap();
            let task = get(db, "t1").await.unwrap();
            let last = finish(
                db,
                &task,
                "failed",
                None,
                Some("push refused"),
                Some(("completion", "failed")),
            )
            .await
            .unwrap();
            assert!(last.unwrap() > first);
            out.push(format!("{:?}", shape(&get(db, "t1").await.unwrap())));
            // A retry resumes at the failed step; the completed one stays.
            assert_eq!(
                reopen(db, "t1", "user:dana", false).await.unwrap(),
                "publish"
            );
            out.push(format!("{:?}", shape(&get(db, "t1").await.unwrap())));
            out.push(format!(
                "{:?}",
                steps(db, "t1")
                    .await
                    .unwrap()
                    .iter()
                    .map(|s| (s.step_id.clone(), s.status.clone(), s.output_json.clone()))
                    .collect::<Vec<_>>()
            ));
            // Cancelling: an open task at once, a running one on request.
            assert_eq!(request_cancel(db, "t2").await.unwrap(), "cancelled");
            let running = claim_next(db, "w1").await.unwrap().unwrap();
            assert_eq!(running.id, "t1");
            assert_eq!(request_cancel(db, "t1").await.unwrap(), "cancelling");
            assert!(cancel_requested(db, "t1").await.unwrap());
            assert!(matches!(
                request_cancel(db, "t2").await,
                Err(CoreError::Conflict(_))
            ));
            out.push(format!(
                "{:?}",
                list(db, Some("user:dana"), 10)
                    .await
                    .unwrap()
                    .iter()
                    .map(shape)
                    .collect::<Vec<_>>()
            ));
            assert!(claim_next(db, "w1").await.unwrap().is_none());
            assert!(matches!(get(db, "nope").await, Err(CoreError::NotFound(_))));
            seen.push(out);
        }
        assert_eq!(seen[0], seen[1]);
    }

    async fn replicas(url: &str, n: usize) -> Vec<sqlx::PgPool> {
        let mut pools = vec![];
        for _ in 0..n {
            pools.push(crate::db::connect_postgres(url, 4).await.unwrap());
        }
        pools
    }

    /// Three replicas with two workers each drain one queue: every task is
    /// claimed, and by exactly one worker.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_task_is_claimed_by_exactly_one_worker_of_three_replicas() {
        let Some(url) = postgres_testing::fresh_database("claims").await else {
            return;
        };
        let pools = replicas(&url, 3).await;
        let ids: Vec<String> = (0..60).map(|i| format!("task-{i:02}")).collect();
        for id in &ids {
            create(&pools[0], new_task(id, "[]")).await.unwrap();
        }
        let mut workers = vec![];
        for (r, pool) in pools.iter().enumerate() {
            for w in 0..2 {
                let pool = pool.clone();
                let worker = format!("replica-{r}-worker-{w}");
                workers.push(tokio::spawn(async move {
                    let mut mine = vec![];
                    while let Some(task) = claim_next(&pool, &worker).await.unwrap() {
                        assert_eq!(task.status, "processing");
                        mine.push(task.id);
                    }
                    mine
                }));
            }
        }
        let mut claimed = vec![];
        for w in workers {
            claimed.extend(w.await.unwrap());
        }
        claimed.sort();
        assert_eq!(claimed, ids, "every task once, none twice");
    }

    /// A replica stops with a task running: after its heartbeat lapses, of two
    /// replicas recovering at once exactly one takes the task over, and it
    /// resumes at the interrupted step; a task whose replica still beats is
    /// left alone, and one that needs secret answers fails with a clear
    /// message instead of running without them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stopped_replicas_task_is_taken_over_once_and_resumes() {
        let Some(url) = postgres_testing::fresh_database("takeover").await else {
            return;
        };
        let pools = replicas(&url, 3).await;
        let (a, b, c) = (&pools[0], &pools[1], &pools[2]);
        for id in ["lost", "alive", "secret"] {
            let secrets = if id == "secret" { r#"["token"]"# } else { "[]" };
            create(a, new_task(id, secrets)).await.unwrap();
        }
        for worker in ["replica-a", "replica-b", "replica-a"] {
            let task = claim_next(a, worker).await.unwrap().unwrap();
            set_step(a, &task.id, "fetch", "completed", None)
                .await
                .unwrap();
            set_step(a, &task.id, "publish", "processing", None)
                .await
                .unwrap();
        }
        // Replica A stopped 100 s ago; B still beats.
        let stale = now_unix() - 100;
        run(
            Db::Postgres(a),
            &format!(
                "UPDATE scaffolder_tasks SET heartbeat_at = {stale} WHERE claimed_by = 'replica-a'"
            ),
        )
        .await;
        let cutoff = Stranded::StaleBefore(now_unix() - STALE_AFTER_SECS);
        let (from_b, from_c) = tokio::join!(
            recover(b, "replica-b", cutoff),
            recover(c, "replica-c", cutoff)
        );
        let (from_b, from_c) = (from_b.unwrap(), from_c.unwrap());
        assert_eq!(
            (from_b.0 + from_c.0, from_b.1 + from_c.1),
            (1, 1),
            "one resumed and one failed, each by one replica: {from_b:?} {from_c:?}"
        );
        // The lost task is queued again at its interrupted step, with a note.
        let lost = get(b, "lost").await.unwrap();
        assert_eq!(lost.status, "open");
        let steps = steps(b, "lost").await.unwrap();
        let states: Vec<_> = steps.iter().map(|s| s.status.as_str()).collect();
        assert_eq!(states, ["completed", "open", "open"]);
        let log = events(b, "lost", 0).await.unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].kind, "recovered");
        assert_eq!(log[0].step_id.as_deref(), Some("publish"));
        // The secret one fails and says why.
        let secret = get(b, "secret").await.unwrap();
        assert_eq!(secret.status, "failed");
        assert!(secret.error.unwrap().contains("enter them again"));
        // B's own task, beating, was not touched; A, back, no longer holds its own.
        assert_eq!(get(c, "alive").await.unwrap().status, "processing");
        assert!(heartbeat(c, "alive", "replica-b").await.unwrap());
        assert!(!heartbeat(a, "lost", "replica-a").await.unwrap());
        // The resumed task is claimed again by exactly one worker.
        let again = claim_next(c, "replica-c").await.unwrap().unwrap();
        assert_eq!(again.id, "lost");
        assert!(claim_next(b, "replica-b").await.unwrap().is_none());
        // Nothing is stale now: a second round takes nothing.
        assert_eq!(recover(b, "replica-b", cutoff).await.unwrap(), (0, 0));
    }
}
