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
            if let Err(e) = write(&db, &rows, &counts, kept).await {
                tracing::error!(error = %e, rows = rows.len(), "recording policy violations failed");
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

async fn write(
    db: &sqlx::SqlitePool,
    rows: &[ViolationRow],
    counts: &Counts,
    kept: i64,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    for ((hour, policy), (n, errors)) in counts {
        let (n, errors) = (*n as i64, *errors as i64);
        sqlx::query!(
            "INSERT INTO policy_evaluations_hourly (hour, policy, evaluations, errors) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (hour, policy) DO UPDATE SET evaluations = evaluations + excluded.evaluations,
                                                     errors = errors + excluded.errors",
            hour,
            policy,
            n,
            errors
        )
        .execute(&mut *tx)
        .await?;
    }
    for r in rows {
        sqlx::query!(
            "INSERT INTO policy_violations (at, point, action, policy, kind, object, namespace, message, source, team)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            r.at,
            r.point,
            r.action,
            r.policy,
            r.kind,
            r.object,
            r.namespace,
            r.message,
            r.source,
            r.team
        )
        .execute(&mut *tx)
        .await?;
    }
    // Keep the newest `kept` rows: ids only grow, so one range delete on the key.
    sqlx::query!(
        "DELETE FROM policy_violations WHERE id <= (SELECT MAX(id) FROM policy_violations) - ?1",
        kept
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}
