//! Keeping deliveries: each raw delivery once (by source and delivery id),
//! and what it told, in one transaction. A redelivery changes nothing; a
//! late or out-of-order event only adds what was missing (a pending status
//! never overwrites a finished one, a resolved incident stays resolved).

use std::collections::HashSet;

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
    // Every raw delivery in one statement; the ones it kept come back (a
    // delivery id seen before is not inserted).
    let rows = serde_json::Value::Array(
        jobs.iter()
            .map(|j| {
                serde_json::json!([
                    j.source_id,
                    j.delivery_id,
                    j.event,
                    j.now,
                    j.body,
                    j.facts.len()
                ])
            })
            .collect(),
    )
    .to_string();
    let mut kept: HashSet<(String, String)> = sqlx::query!(
        r#"INSERT INTO outcome_events (source_id, delivery_id, event, received_at, body, facts)
           SELECT value ->> '$[0]', value ->> '$[1]', value ->> '$[2]', value ->> '$[3]',
                  value ->> '$[4]', value ->> '$[5]'
           FROM json_each(?1) WHERE true
           ON CONFLICT DO NOTHING RETURNING source_id, delivery_id"#,
        rows
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| (r.source_id, r.delivery_id))
    .collect();
    let mut results = Vec::with_capacity(jobs.len());
    let mut stored: Vec<&Job> = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        let key = (job.source_id.clone(), job.delivery_id.clone());
        if kept.remove(&key) {
            stored.push(job);
            results.push(Ok(Ingested::Stored(job.facts.len())));
            continue;
        }
        // Seen before: in this batch, or already kept.
        let earlier = jobs[..i]
            .iter()
            .find(|j| j.source_id == job.source_id && j.delivery_id == job.delivery_id);
        let same = match earlier {
            Some(j) => j.body == job.body,
            None => {
                sqlx::query_scalar!(
                    "SELECT body FROM outcome_events WHERE source_id = ?1 AND delivery_id = ?2",
                    job.source_id,
                    job.delivery_id
                )
                .fetch_one(&mut *tx)
                .await?
                    == job.body
            }
        };
        results.push(if same {
            Ok(Ingested::Duplicate)
        } else {
            // The same id with other content is not a redelivery: refuse it
            // rather than drop what it says.
            Err(CoreError::Invalid {
                field: "Idempotency-Key",
                message: format!(
                    "delivery `{}` was already received with another body; send new content under a new id",
                    job.delivery_id
                ),
            })
        });
    }
    apply_all(&mut tx, &stored).await?;
    tx.commit().await?;
    Ok(results)
}

/// Applies what the kept deliveries told, one statement per table for the
/// whole batch. The tables are independent of one another, so this is what
/// applying the deliveries one after another would leave; within a table the
/// rows go in arrival order (a later status of a deployment wins as before).
/// Incidents, whose facts (opened, resolved, withdrawn) act on one another,
/// are applied one by one in order.
async fn apply_all(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    jobs: &[&Job],
) -> Result<(), CoreError> {
    use serde_json::{json, Value};
    let (mut commits, mut parents, mut merges, mut deployments) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for job in jobs {
        for fact in &job.facts {
            match fact {
                Fact::Commits { repo, commits: cs } => {
                    for c in cs {
                        commits.push(json!([
                            repo,
                            c.sha,
                            c.at,
                            (!c.files.is_empty())
                                .then(|| serde_json::to_string(&c.files).unwrap_or_default()),
                        ]));
                        parents.extend(c.parents.iter().map(|p| json!([repo, c.sha, p])));
                    }
                }
                Fact::Merge {
                    repo,
                    merge_sha,
                    head_sha,
                    number,
                    opened_at,
                    merged_at,
                } => merges.push(json!([
                    repo, merge_sha, head_sha, number, opened_at, merged_at
                ])),
                Fact::Deployment(d) => deployments.push(json!([
                    job.source_id,
                    d.key,
                    d.repo,
                    d.component,
                    d.environment,
                    d.sha,
                    d.status.as_str(),
                    d.started_at,
                    d.finished_at,
                    d.rework,
                    d.fixes,
                    d.title
                ])),
                Fact::Incident(_)
                | Fact::IncidentResolved { .. }
                | Fact::IncidentWithdrawn { .. } => {}
            }
        }
    }
    if !commits.is_empty() {
        let rows = Value::Array(commits).to_string();
        sqlx::query!(
            "INSERT INTO outcome_commits (repo, sha, committed_at, files)
             SELECT value ->> '$[0]', value ->> '$[1]', value ->> '$[2]', value ->> '$[3]'
             FROM json_each(?1) WHERE true
             ON CONFLICT (repo, sha) DO UPDATE SET
                committed_at = COALESCE(outcome_commits.committed_at, excluded.committed_at),
                files = COALESCE(outcome_commits.files, excluded.files)",
            rows
        )
        .execute(&mut **tx)
        .await?;
    }
    if !parents.is_empty() {
        let rows = Value::Array(parents).to_string();
        sqlx::query!(
            "INSERT INTO outcome_parents (repo, sha, parent)
             SELECT value ->> '$[0]', value ->> '$[1]', value ->> '$[2]' FROM json_each(?1) WHERE true
             ON CONFLICT DO NOTHING",
            rows
        )
        .execute(&mut **tx)
        .await?;
    }
    if !merges.is_empty() {
        let rows = Value::Array(merges).to_string();
        sqlx::query!(
            "INSERT INTO outcome_merges (repo, merge_sha, head_sha, number, opened_at, merged_at)
             SELECT value ->> '$[0]', value ->> '$[1]', value ->> '$[2]', value ->> '$[3]',
                    value ->> '$[4]', value ->> '$[5]'
             FROM json_each(?1) WHERE true
             ON CONFLICT (repo, merge_sha) DO UPDATE SET
                head_sha = COALESCE(excluded.head_sha, outcome_merges.head_sha),
                opened_at = COALESCE(excluded.opened_at, outcome_merges.opened_at)",
            rows
        )
        .execute(&mut **tx)
        .await?;
    }
    if !deployments.is_empty() {
        let rows = Value::Array(deployments).to_string();
        sqlx::query!(
            "INSERT INTO outcome_deployments
                (source_id, key, repo, component_ref, environment, sha, status, started_at, finished_at, rework, fixes, title)
             SELECT value ->> '$[0]', value ->> '$[1]', value ->> '$[2]', value ->> '$[3]', value ->> '$[4]',
                    value ->> '$[5]', value ->> '$[6]', value ->> '$[7]', value ->> '$[8]', value ->> '$[9]',
                    value ->> '$[10]', value ->> '$[11]'
             FROM json_each(?1) WHERE true
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
            rows
        )
        .execute(&mut **tx)
        .await?;
    }
    for job in jobs {
        for fact in &job.facts {
            if matches!(
                fact,
                Fact::Incident(_) | Fact::IncidentResolved { .. } | Fact::IncidentWithdrawn { .. }
            ) {
                apply_incident(tx, &job.source_id, fact).await?;
            }
        }
    }
    Ok(())
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
    /// How many times the writer yields, finding nothing new, before it
    /// writes what it has (each a few microseconds).
    pub const GATHER_YIELDS: usize = 8;

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
        // Deliveries tend to arrive together (senders answered by the last
        // commit send their next at once): before writing, let the handlers
        // already running hand theirs over, so one transaction carries them.
        let mut idle = 0;
        while batch.len() < Writer::MAX_BATCH && bytes < Writer::MAX_BATCH_BYTES {
            match receiver.try_recv() {
                Ok(next) => {
                    bytes += next.job.body.len();
                    batch.push(next);
                    idle = 0;
                }
                Err(_) if idle < Writer::GATHER_YIELDS => {
                    idle += 1;
                    tokio::task::yield_now().await;
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

async fn apply_incident(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    source_id: &str,
    fact: &Fact,
) -> Result<(), CoreError> {
    match fact {
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
        Fact::Commits { .. } | Fact::Merge { .. } | Fact::Deployment(_) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcomes::events::{Commit, DeployStatus, Deployment};

    fn job(id: &str, body: &str, facts: Vec<Fact>) -> Job {
        Job {
            source_id: "src".into(),
            delivery_id: id.into(),
            event: "generic".into(),
            body: body.into(),
            facts,
            now: 1_000,
        }
    }

    fn deployment(status: DeployStatus, finished_at: i64) -> Fact {
        Fact::Deployment(Deployment {
            key: "d1".into(),
            repo: Some("github.com/acme/a".into()),
            component: None,
            environment: "production".into(),
            sha: Some("abc".into()),
            status,
            started_at: Some(10),
            finished_at,
            rework: None,
            fixes: None,
            title: None,
        })
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn a_batch_keeps_each_delivery_once_and_applies_facts_in_arrival_order(pool: SqlitePool) {
        sqlx::query(
            "INSERT INTO outcome_sources (id, kind, name, created_by, created_at) VALUES ('src', 'generic', 'S', 't', 0)",
        )
        .execute(&pool)
        .await
        .unwrap();
        let commit = |sha: &str, parent: &str| Commit {
            sha: sha.into(),
            at: Some(5),
            parents: vec![parent.into()],
            files: vec![],
        };
        let incident = Fact::Incident(Incident {
            key: "INC-1".into(),
            repo: None,
            component: None,
            title: "down".into(),
            url: None,
            created_at: 20,
            resolved_at: None,
            cause_sha: None,
            cause_deployment: None,
        });
        let jobs = vec![
            job(
                "1",
                "a",
                vec![
                    Fact::Commits {
                        repo: "github.com/acme/a".into(),
                        commits: vec![commit("abc", "p0"), commit("def", "abc")],
                    },
                    deployment(DeployStatus::Pending, 11),
                ],
            ),
            job(
                "2",
                "b",
                vec![deployment(DeployStatus::Success, 12), incident],
            ),
            // A redelivery within the batch, and the same id with other content.
            job("1", "a", vec![deployment(DeployStatus::Failure, 99)]),
            job("2", "changed", vec![]),
            job(
                "3",
                "c",
                vec![Fact::IncidentResolved {
                    key: "INC-1".into(),
                    at: 30,
                }],
            ),
            // A later pending status never overwrites a finished one.
            job("4", "d", vec![deployment(DeployStatus::Pending, 13)]),
        ];
        let mut conn = pool.acquire().await.unwrap();
        let results = ingest_batch(&mut conn, &jobs).await;
        assert!(matches!(results[0], Ok(Ingested::Stored(2))));
        assert!(matches!(results[1], Ok(Ingested::Stored(2))));
        assert!(matches!(results[2], Ok(Ingested::Duplicate)));
        assert!(matches!(
            results[3],
            Err(CoreError::Invalid {
                field: "Idempotency-Key",
                ..
            })
        ));
        assert!(matches!(results[4], Ok(Ingested::Stored(1))));
        assert!(matches!(results[5], Ok(Ingested::Stored(1))));
        let (status, finished): (String, i64) =
            sqlx::query_as("SELECT status, finished_at FROM outcome_deployments WHERE key = 'd1'")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!((status.as_str(), finished), ("success", 12));
        let n = |sql: &'static str| {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>(sql)
                    .fetch_one(&pool)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(n("SELECT COUNT(*) FROM outcome_events").await, 4);
        assert_eq!(n("SELECT COUNT(*) FROM outcome_commits").await, 2);
        assert_eq!(n("SELECT COUNT(*) FROM outcome_parents").await, 2);
        assert_eq!(
            n("SELECT resolved_at FROM outcome_incidents WHERE key = 'INC-1'").await,
            30
        );
        assert_eq!(
            n("SELECT event_count FROM outcome_sources WHERE id = 'src'").await,
            4
        );
        // Sent again later, everything is a duplicate and nothing changes.
        let again = ingest_batch(&mut conn, &jobs[..2]).await;
        assert!(again.iter().all(|r| matches!(r, Ok(Ingested::Duplicate))));
        assert_eq!(
            n("SELECT event_count FROM outcome_sources WHERE id = 'src'").await,
            4
        );
    }
}
