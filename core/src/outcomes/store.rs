//! Keeping deliveries: each raw delivery once (by source and delivery id),
//! and what it told, in one transaction. A redelivery changes nothing; a
//! late or out-of-order event only adds what was missing (a pending status
//! never overwrites a finished one, a resolved incident stays resolved).

use sqlx::{Connection, SqliteConnection, SqlitePool};

use super::events::{Fact, Incident};
use crate::CoreError;

/// What happened to a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// Kept, with how many facts it told.
    Stored(usize),
    /// Seen before (same source and delivery id): nothing changed.
    Duplicate,
}

/// One delivery to keep: who sent it, its id, the raw body and what it told.
#[derive(Debug)]
pub struct Job {
    /// The source it came from.
    pub source_id: String,
    /// Its delivery id (unique per source).
    pub delivery_id: String,
    /// The event's name.
    pub event: String,
    /// The raw body, kept for re-computation.
    pub body: String,
    /// What it told.
    pub facts: Vec<Fact>,
    /// When it was received.
    pub now: i64,
}

/// Keeps one delivery of `source_id` and applies its `facts`.
pub async fn ingest(
    pool: &SqlitePool,
    source_id: &str,
    delivery_id: &str,
    event: &str,
    body: &str,
    facts: &[Fact],
    now: i64,
) -> Result<Ingested, CoreError> {
    let job = Job {
        source_id: source_id.to_owned(),
        delivery_id: delivery_id.to_owned(),
        event: event.to_owned(),
        body: body.to_owned(),
        facts: facts.to_vec(),
        now,
    };
    let mut conn = pool.acquire().await?;
    ingest_batch(&mut conn, std::slice::from_ref(&job))
        .await
        .pop()
        .unwrap_or(Ok(Ingested::Duplicate))
}

/// Keeps `jobs` in one transaction and answers each. A delivery refused on
/// its own (an id reused with another body) is refused before it writes
/// anything, so the others are kept; if the transaction itself fails, each
/// delivery is tried again in a transaction of its own, so one bad delivery
/// never costs the others theirs.
pub async fn ingest_batch(
    conn: &mut SqliteConnection,
    jobs: &[Job],
) -> Vec<Result<Ingested, CoreError>> {
    match try_batch(conn, jobs).await {
        Ok(results) => results,
        Err(e) if jobs.len() == 1 => vec![Err(e)],
        Err(e) => {
            tracing::warn!(error = %e, deliveries = jobs.len(), "a batch of deliveries failed; keeping them one by one");
            let mut results = Vec::with_capacity(jobs.len());
            for job in jobs {
                results.push(match try_batch(conn, std::slice::from_ref(job)).await {
                    Ok(mut one) => one.pop().unwrap_or(Ok(Ingested::Duplicate)),
                    Err(e) => Err(e),
                });
            }
            results
        }
    }
}

async fn try_batch(
    conn: &mut SqliteConnection,
    jobs: &[Job],
) -> Result<Vec<Result<Ingested, CoreError>>, CoreError> {
    let mut tx = conn.begin().await?;
    let mut results = Vec::with_capacity(jobs.len());
    let mut counts: std::collections::HashMap<&str, (i64, i64)> = Default::default();
    for job in jobs {
        let result = ingest_one(&mut tx, job).await?;
        if let Ok(Ingested::Stored(_)) = result {
            let entry = counts.entry(job.source_id.as_str()).or_default();
            entry.0 += 1;
            entry.1 = entry.1.max(job.now);
        }
        results.push(result);
    }
    for (source_id, (count, last)) in counts {
        sqlx::query!(
            "UPDATE outcome_sources SET last_event_at = MAX(COALESCE(last_event_at, 0), ?2),
                event_count = event_count + ?3 WHERE id = ?1",
            source_id,
            last,
            count
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(results)
}

/// Keeps one delivery in `tx`: the inner error refuses this delivery (and
/// nothing of it was written), the outer one fails the transaction.
async fn ingest_one(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    job: &Job,
) -> Result<Result<Ingested, CoreError>, CoreError> {
    let count = job.facts.len() as i64;
    let inserted = sqlx::query!(
        "INSERT INTO outcome_events (source_id, delivery_id, event, received_at, body, facts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
        job.source_id,
        job.delivery_id,
        job.event,
        job.now,
        job.body,
        count
    )
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        // The same id with other content is not a redelivery: refuse it
        // rather than drop what it says.
        let kept = sqlx::query_scalar!(
            "SELECT body FROM outcome_events WHERE source_id = ?1 AND delivery_id = ?2",
            job.source_id,
            job.delivery_id
        )
        .fetch_one(&mut **tx)
        .await?;
        if kept != job.body {
            return Ok(Err(CoreError::Invalid {
                field: "Idempotency-Key",
                message: format!(
                    "delivery `{}` was already received with another body; send new content under a new id",
                    job.delivery_id
                ),
            }));
        }
        return Ok(Ok(Ingested::Duplicate));
    }
    for fact in &job.facts {
        apply(tx, &job.source_id, fact).await?;
    }
    Ok(Ok(Ingested::Stored(job.facts.len())))
}

/// Group commit: deliveries that arrive while one batch is being written
/// are written together in the next transaction, by one task. SQLite has one
/// writer; a transaction per webhook spends most of its time committing and
/// handing the write lock over, a batch pays that once.
#[derive(Debug, Default)]
pub struct Writer {
    queue: std::sync::OnceLock<tokio::sync::mpsc::Sender<Pending>>,
}

#[derive(Debug)]
struct Pending {
    job: Job,
    reply: tokio::sync::oneshot::Sender<Result<Ingested, CoreError>>,
}

impl Writer {
    /// The most deliveries in one transaction.
    pub const MAX_BATCH: usize = 64;
    /// The most body bytes in one transaction (one large delivery goes alone).
    pub const MAX_BATCH_BYTES: usize = 8 << 20;

    /// Keeps `job` (in the next batch) and answers once it is committed.
    pub async fn submit(&self, pool: &SqlitePool, job: Job) -> Result<Ingested, CoreError> {
        let queue = self.queue.get_or_init(|| {
            let (sender, receiver) = tokio::sync::mpsc::channel(1024);
            tokio::spawn(write_batches(pool.clone(), receiver));
            sender
        });
        let (reply, answer) = tokio::sync::oneshot::channel();
        queue.send(Pending { job, reply }).await.map_err(|_| {
            CoreError::Unavailable(
                "the delivery writer has stopped; send the delivery again".into(),
            )
        })?;
        answer.await.map_err(|_| {
            CoreError::Unavailable(
                "the delivery writer has stopped; send the delivery again".into(),
            )
        })?
    }
}

/// The writer keeps one connection with a larger page cache: the indexes
/// it inserts into stay warm between batches instead of being read again
/// through whichever pooled connection comes next.
const WRITER_CACHE_KIB: i64 = 32 * 1024;

async fn writer_connection(
    pool: &SqlitePool,
) -> Result<sqlx::pool::PoolConnection<sqlx::Sqlite>, CoreError> {
    let mut conn = pool.acquire().await?;
    let pragma = format!("PRAGMA cache_size = -{WRITER_CACHE_KIB}");
    sqlx::Executor::execute(&mut *conn, pragma.as_str()).await?;
    Ok(conn)
}

async fn write_batches(pool: SqlitePool, mut receiver: tokio::sync::mpsc::Receiver<Pending>) {
    let mut conn = None;
    while let Some(first) = receiver.recv().await {
        let mut bytes = first.job.body.len();
        let mut batch = vec![first];
        while batch.len() < Writer::MAX_BATCH && bytes < Writer::MAX_BATCH_BYTES {
            match receiver.try_recv() {
                Ok(next) => {
                    bytes += next.job.body.len();
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        let (jobs, replies): (Vec<Job>, Vec<_>) =
            batch.into_iter().map(|p| (p.job, p.reply)).unzip();
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match writer_connection(&pool).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    tracing::error!(error = %e, "no database connection for delivery events");
                    for reply in replies {
                        let _ = reply.send(Err(CoreError::Unavailable(
                            "the delivery could not be kept; send it again".into(),
                        )));
                    }
                    continue;
                }
            },
        };
        let results = ingest_batch(c, &jobs).await;
        if results
            .iter()
            .any(|r| matches!(r, Err(CoreError::Database(_))))
        {
            // A fresh connection next time, in case this one is broken.
            conn = None;
        }
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }
}

async fn apply(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    source_id: &str,
    fact: &Fact,
) -> Result<(), CoreError> {
    match fact {
        Fact::Commits { repo, commits } => {
            // One statement per table, however many commits a push tells.
            let rows = serde_json::Value::Array(
                commits
                    .iter()
                    .map(|c| {
                        serde_json::json!({
                            "sha": c.sha,
                            "at": c.at,
                            "files": (!c.files.is_empty())
                                .then(|| serde_json::to_string(&c.files).unwrap_or_default()),
                        })
                    })
                    .collect(),
            )
            .to_string();
            sqlx::query!(
                "INSERT INTO outcome_commits (repo, sha, committed_at, files)
                 SELECT ?1, value ->> '$.sha', value ->> '$.at', value ->> '$.files' FROM json_each(?2) WHERE true
                 ON CONFLICT (repo, sha) DO UPDATE SET
                    committed_at = COALESCE(outcome_commits.committed_at, excluded.committed_at),
                    files = COALESCE(outcome_commits.files, excluded.files)",
                repo,
                rows
            )
            .execute(&mut **tx)
            .await?;
            let parents = serde_json::Value::Array(
                commits
                    .iter()
                    .flat_map(|c| c.parents.iter().map(|p| serde_json::json!([c.sha, p])))
                    .collect(),
            );
            if parents.as_array().is_some_and(|p| !p.is_empty()) {
                let parents = parents.to_string();
                sqlx::query!(
                    "INSERT INTO outcome_parents (repo, sha, parent)
                     SELECT ?1, value ->> '$[0]', value ->> '$[1]' FROM json_each(?2) WHERE true
                     ON CONFLICT DO NOTHING",
                    repo,
                    parents
                )
                .execute(&mut **tx)
                .await?;
            }
        }
        Fact::Merge {
            repo,
            merge_sha,
            head_sha,
            number,
            opened_at,
            merged_at,
        } => {
            sqlx::query!(
                "INSERT INTO outcome_merges (repo, merge_sha, head_sha, number, opened_at, merged_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (repo, merge_sha) DO UPDATE SET
                    head_sha = COALESCE(excluded.head_sha, outcome_merges.head_sha),
                    opened_at = COALESCE(excluded.opened_at, outcome_merges.opened_at)",
                repo,
                merge_sha,
                head_sha,
                number,
                opened_at,
                merged_at
            )
            .execute(&mut **tx)
            .await?;
        }
        Fact::Deployment(d) => {
            let status = d.status.as_str();
            sqlx::query!(
                "INSERT INTO outcome_deployments
                    (source_id, key, repo, component_ref, environment, sha, status, started_at, finished_at, rework, fixes, title)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT (source_id, key) DO UPDATE SET
                    repo = COALESCE(excluded.repo, outcome_deployments.repo),
                    component_ref = COALESCE(excluded.component_ref, outcome_deployments.component_ref),
                    environment = excluded.environment,
                    sha = COALESCE(excluded.sha, outcome_deployments.sha),
                    finished_at = CASE WHEN excluded.status = 'pending' AND outcome_deployments.status <> 'pending'
                                       THEN outcome_deployments.finished_at ELSE excluded.finished_at END,
                    status = CASE WHEN excluded.status = 'pending' THEN outcome_deployments.status ELSE excluded.status END,
                    started_at = MIN(COALESCE(outcome_deployments.started_at, excluded.started_at),
                                     COALESCE(excluded.started_at, outcome_deployments.started_at)),
                    rework = COALESCE(excluded.rework, outcome_deployments.rework),
                    fixes = COALESCE(excluded.fixes, outcome_deployments.fixes),
                    title = COALESCE(excluded.title, outcome_deployments.title)",
                source_id,
                d.key,
                d.repo,
                d.component,
                d.environment,
                d.sha,
                status,
                d.started_at,
                d.finished_at,
                d.rework,
                d.fixes,
                d.title
            )
            .execute(&mut **tx)
            .await?;
        }
        Fact::Incident(Incident {
            key,
            repo,
            component,
            title,
            url,
            created_at,
            resolved_at,
            cause_sha,
            cause_deployment,
        }) => {
            sqlx::query!(
                "INSERT INTO outcome_incidents
                    (source_id, key, repo, component_ref, title, url, created_at, resolved_at, cause_sha, cause_deployment)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (source_id, key) DO UPDATE SET
                    repo = COALESCE(excluded.repo, outcome_incidents.repo),
                    component_ref = COALESCE(excluded.component_ref, outcome_incidents.component_ref),
                    title = excluded.title,
                    url = COALESCE(excluded.url, outcome_incidents.url),
                    created_at = MIN(outcome_incidents.created_at, excluded.created_at),
                    resolved_at = COALESCE(outcome_incidents.resolved_at, excluded.resolved_at),
                    cause_sha = COALESCE(excluded.cause_sha, outcome_incidents.cause_sha),
                    cause_deployment = COALESCE(excluded.cause_deployment, outcome_incidents.cause_deployment),
                    withdrawn = 0",
                source_id,
                key,
                repo,
                component,
                title,
                url,
                created_at,
                resolved_at,
                cause_sha,
                cause_deployment
            )
            .execute(&mut **tx)
            .await?;
        }
        Fact::IncidentResolved { key, at } => {
            sqlx::query!(
                "UPDATE outcome_incidents SET resolved_at = COALESCE(resolved_at, ?3)
                 WHERE source_id = ?1 AND key = ?2",
                source_id,
                key,
                at
            )
            .execute(&mut **tx)
            .await?;
        }
        Fact::IncidentWithdrawn { key } => {
            sqlx::query!(
                "UPDATE outcome_incidents SET withdrawn = 1 WHERE source_id = ?1 AND key = ?2",
                source_id,
                key
            )
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}
