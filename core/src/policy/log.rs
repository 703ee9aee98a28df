//! Recorded violations, written off the request path: the admission webhook
//! and checks hand rows to one writer task, which inserts what arrived
//! together in one transaction and keeps the table bounded.

use tokio::sync::{mpsc, oneshot};

/// One violation to record.
#[derive(Debug, Clone)]
pub struct ViolationRow {
    pub at: i64,
    pub point: &'static str,
    pub action: &'static str,
    pub policy: String,
    pub kind: String,
    pub object: String,
    pub namespace: String,
    pub message: String,
    pub source: String,
    pub team: Option<String>,
}

enum Message {
    Rows(Vec<ViolationRow>),
    Flush(oneshot::Sender<()>),
}

/// Evaluations per (hour, policy): (evaluations, errors), kept in memory and
/// written with the next batch or every few seconds, never per request.
type Counts = std::collections::BTreeMap<(i64, String), (u64, u64)>;

/// How often counted evaluations are written when no violation is.
const COUNT_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

/// The handle to the writer.
#[derive(Debug, Clone)]
pub struct ViolationLog {
    tx: mpsc::Sender<Message>,
    counts: std::sync::Arc<std::sync::Mutex<Counts>>,
    dropped: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl ViolationLog {
    /// Start the writer; it keeps the newest `kept` rows.
    pub fn start(db: sqlx::SqlitePool, kept: i64) -> ViolationLog {
        let (tx, rx) = mpsc::channel(4096);
        let counts: std::sync::Arc<std::sync::Mutex<Counts>> = Default::default();
        tokio::spawn(writer(db, rx, counts.clone(), kept));
        ViolationLog {
            tx,
            counts,
            dropped: Default::default(),
        }
    }

    /// Queue rows to record. When the writer is 4,096 batches behind, rows
    /// are dropped and counted rather than slowing decisions down.
    pub fn record(&self, rows: Vec<ViolationRow>) {
        if rows.is_empty() {
            return;
        }
        if self.tx.try_send(Message::Rows(rows)).is_err() {
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(
                "policy violation log is behind; a batch of violations was not recorded"
            );
        }
    }

    /// Count evaluations (and evaluation errors) per policy at `at`.
    pub fn count(&self, at: i64, counts: Vec<(String, u64, u64)>) {
        if counts.is_empty() {
            return;
        }
        if let Ok(mut pending) = self.counts.lock() {
            for (policy, n, errors) in counts {
                let slot = pending.entry((at.div_euclid(3600), policy)).or_default();
                slot.0 += n;
                slot.1 += errors;
            }
        }
    }

    /// Wait until everything queued so far is written.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Batches dropped because the writer was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }
}

async fn writer(
    db: sqlx::SqlitePool,
    mut rx: mpsc::Receiver<Message>,
    pending: std::sync::Arc<std::sync::Mutex<Counts>>,
    kept: i64,
) {
    let mut tick = tokio::time::interval(COUNT_FLUSH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let first = tokio::select! {
            m = rx.recv() => match m {
                Some(m) => Some(m),
                None => break,
            },
            _ = tick.tick() => None,
        };
        let mut rows = Vec::new();
        let mut flushes = Vec::new();
        let mut take = |m: Message, rows: &mut Vec<ViolationRow>| match m {
            Message::Rows(r) => rows.extend(r),
            Message::Flush(done) => flushes.push(done),
        };
        if let Some(first) = first {
            take(first, &mut rows);
        }
        for _ in 0..10_000 {
            match rx.try_recv() {
                Ok(m) => take(m, &mut rows),
                Err(_) => break,
            }
        }
        let counts = pending
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default();
        if !rows.is_empty() || !counts.is_empty() {
            if let Err(e) = write((&db).into(), &rows, &counts, kept).await {
                tracing::error!(error = %e, rows = rows.len(), "recording policy violations failed");
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

async fn write(
    db: paved_store::Db<'_>,
    rows: &[ViolationRow],
    counts: &Counts,
    kept: i64,
) -> Result<(), sqlx::Error> {
    let counts: Vec<_> = counts
        .iter()
        .map(
            |((hour, policy), (n, errors))| paved_store::policy::HourCount {
                hour: *hour,
                policy,
                evaluations: *n as i64,
                errors: *errors as i64,
            },
        )
        .collect();
    let rows: Vec<_> = rows
        .iter()
        .map(|r| paved_store::policy::NewViolation {
            at: r.at,
            point: r.point,
            action: r.action,
            policy: &r.policy,
            kind: &r.kind,
            object: &r.object,
            namespace: &r.namespace,
            message: &r.message,
            source: &r.source,
            team: r.team.as_deref(),
        })
        .collect();
    paved_store::policy::write_batch(db, &counts, &rows, kept).await
}

#[cfg(test)]
mod both_backends_tests {
    use super::*;
    use crate::db::{both_backends, run};
    use paved_store::policy as stored;
    use paved_store::Db;

    fn violation(at: i64, point: &'static str, policy: &str) -> ViolationRow {
        ViolationRow {
            at,
            point,
            action: "deny",
            policy: policy.into(),
            kind: "K8sRequiredLabels".into(),
            object: format!("Pod/prod/web-{at}"),
            namespace: "prod".into(),
            message: "missing label owner".into(),
            source: "deploy.yaml:3".into(),
            team: Some("payments".into()),
        }
    }

    /// Violations (bounded, paged, filtered, counted), hourly evaluation
    /// counts and exceptions read the same on SQLite and PostgreSQL.
    #[tokio::test]
    async fn policy_records_are_kept_alike_on_both_backends() {
        let Some((sqlite, postgres)) = both_backends("policy").await else {
            return;
        };
        let mut seen = vec![];
        for db in [Db::Sqlite(&sqlite), Db::Postgres(&postgres)] {
            let mut out = vec![];
            run(
                db,
                "INSERT INTO teams (name, display_name, created_at) VALUES ('payments', 'Payments', 0)",
            )
            .await;
            // Two batches; only the newest 5 violations are kept.
            let first: Vec<_> = (0..4)
                .map(|i| {
                    violation(
                        100 + i,
                        if i % 2 == 0 { "ci" } else { "admission" },
                        "labels",
                    )
                })
                .collect();
            let counts: Counts = [((1, "labels".to_owned()), (10, 1))].into();
            write(db, &first, &counts, 5).await.unwrap();
            let second: Vec<_> = (4..7)
                .map(|i| violation(100 + i, "scaffolder", "limits"))
                .collect();
            write(db, &second, &counts, 5).await.unwrap();
            let all = stored::violations(db, i64::MAX, None, None, 100)
                .await
                .unwrap();
            out.push(format!(
                "{:?}",
                all.iter()
                    .map(|v| (v.at, v.point.clone(), v.policy.clone()))
                    .collect::<Vec<_>>()
            ));
            // A page of 2 and the next one, by id.
            let page = stored::violations(db, i64::MAX, None, None, 2)
                .await
                .unwrap();
            let next = stored::violations(db, page[1].id, None, None, 2)
                .await
                .unwrap();
            out.push(format!(
                "{:?}",
                next.iter().map(|v| v.at).collect::<Vec<_>>()
            ));
            let ci = stored::violations(db, i64::MAX, Some("ci"), Some("labels"), 10)
                .await
                .unwrap();
            out.push(format!("{:?}", ci.iter().map(|v| v.at).collect::<Vec<_>>()));
            out.push(format!(
                "{:?} {:?} {:?}",
                stored::violation_total(db, None, None).await.unwrap(),
                stored::violation_total(db, Some("scaffolder"), None)
                    .await
                    .unwrap(),
                stored::violation_total(db, None, Some("labels"))
                    .await
                    .unwrap(),
            ));
            let mut counts = stored::counts_since(db, 103).await.unwrap();
            counts.sort();
            out.push(format!("{counts:?}"));
            let hourly: (i64, i64) = match db {
                Db::Sqlite(p) => sqlx::query_as(
                    "SELECT evaluations, errors FROM policy_evaluations_hourly WHERE hour = 1",
                )
                .fetch_one(p)
                .await
                .unwrap(),
                Db::Postgres(p) => sqlx::query_as(
                    "SELECT evaluations, errors FROM policy_evaluations_hourly WHERE hour = 1",
                )
                .fetch_one(p)
                .await
                .unwrap(),
            };
            assert_eq!(hourly, (20, 2), "two batches' counts add up");
            // Exceptions: granted, listed, revoked once.
            let mut tx = db.begin().await.unwrap();
            let new = |policy: &'static str, expires_at| stored::NewException {
                policy,
                namespace: "prod",
                object_name: "web-*",
                team: "payments",
                reason: "migrating the chart this quarter",
                expires_at,
                created_by: "user:ada",
                created_at: 10,
            };
            let a = stored::insert_exception(tx.conn(), new("labels", 1_000))
                .await
                .unwrap();
            let b = stored::insert_exception(tx.conn(), new("limits", 2_000))
                .await
                .unwrap();
            tx.commit().await.unwrap();
            let mut tx = db.begin().await.unwrap();
            assert!(stored::revoke_exception(tx.conn(), a, "user:ada", 20)
                .await
                .unwrap());
            assert!(!stored::revoke_exception(tx.conn(), a, "user:ada", 21)
                .await
                .unwrap());
            tx.commit().await.unwrap();
            let listed = stored::exceptions(db).await.unwrap();
            out.push(format!(
                "{:?}",
                listed
                    .iter()
                    .map(|e| (e.id == b, e.policy.clone(), e.revoked_at))
                    .collect::<Vec<_>>()
            ));
            out.push(format!(
                "{:?}",
                stored::unrevoked_exceptions(db).await.unwrap()
            ));
            // An exception for a team that does not exist is refused.
            let mut tx = db.begin().await.unwrap();
            let ghost = stored::NewException {
                team: "ghost",
                ..new("labels", 1)
            };
            assert!(stored::insert_exception(tx.conn(), ghost).await.is_err());
            seen.push(out);
        }
        assert_eq!(seen[0], seen[1]);
    }
}
