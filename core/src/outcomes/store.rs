//! Keeping deliveries: each raw delivery once (by source and delivery id),
//! and what it told, in one transaction. A redelivery changes nothing; a
//! late or out-of-order event only adds what was missing (a pending status
//! never overwrites a finished one, a resolved incident stays resolved).

use sqlx::SqlitePool;

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
    let mut tx = pool.begin().await?;
    let count = facts.len() as i64;
    let inserted = sqlx::query!(
        "INSERT INTO outcome_events (source_id, delivery_id, event, received_at, body, facts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
        source_id,
        delivery_id,
        event,
        now,
        body,
        count
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        // The same id with other content is not a redelivery: refuse it
        // rather than drop what it says.
        let kept = sqlx::query_scalar!(
            "SELECT body FROM outcome_events WHERE source_id = ?1 AND delivery_id = ?2",
            source_id,
            delivery_id
        )
        .fetch_one(&mut *tx)
        .await?;
        if kept != body {
            return Err(CoreError::Invalid {
                field: "Idempotency-Key",
                message: format!(
                    "delivery `{delivery_id}` was already received with another body; send new content under a new id"
                ),
            });
        }
        return Ok(Ingested::Duplicate);
    }
    for fact in facts {
        apply(&mut tx, source_id, fact).await?;
    }
    sqlx::query!(
        "UPDATE outcome_sources SET last_event_at = ?2, event_count = event_count + 1 WHERE id = ?1",
        source_id,
        now
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Ingested::Stored(facts.len()))
}

async fn apply(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    source_id: &str,
    fact: &Fact,
) -> Result<(), CoreError> {
    match fact {
        Fact::Commits { repo, commits } => {
            for c in commits {
                let files = (!c.files.is_empty())
                    .then(|| serde_json::to_string(&c.files).unwrap_or_default());
                sqlx::query!(
                    "INSERT INTO outcome_commits (repo, sha, committed_at, files) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (repo, sha) DO UPDATE SET
                        committed_at = COALESCE(outcome_commits.committed_at, excluded.committed_at),
                        files = COALESCE(outcome_commits.files, excluded.files)",
                    repo,
                    c.sha,
                    c.at,
                    files
                )
                .execute(&mut **tx)
                .await?;
                for parent in &c.parents {
                    sqlx::query!(
                        "INSERT INTO outcome_parents (repo, sha, parent) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                        repo,
                        c.sha,
                        parent
                    )
                    .execute(&mut **tx)
                    .await?;
                }
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
