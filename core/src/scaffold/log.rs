//! A task's log: every line masked for secret answers before it is stored
//! or streamed, then appended to the task's events (or, in a dry run, kept
//! in memory).

use std::sync::Mutex;

use sqlx::SqlitePool;

use super::tasks;

/// Replaces secret values with `***`.
#[derive(Clone, Default)]
pub struct Masker {
    // Longest first, so a secret containing another is masked whole.
    values: Vec<String>,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Masker({} values)", self.values.len())
    }
}

impl Masker {
    /// Masks these values (empty ones are ignored).
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let mut values: Vec<String> = values.into_iter().filter(|v| !v.is_empty()).collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Self { values }
    }

    /// `text` with every secret value replaced.
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), "***");
            }
        }
        out
    }

    /// Masks every string inside a JSON value.
    pub fn mask_json(&self, value: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(s) => Value::String(self.mask(s)),
            Value::Array(list) => Value::Array(list.iter().map(|v| self.mask_json(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.mask_json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// Where a task's log lines go.
pub enum TaskLog {
    /// A real task: its events table, and a wake-up for live streams.
    Stored {
        /// The database.
        pool: SqlitePool,
        /// The task.
        task_id: String,
        /// Secret values to hide.
        masker: Masker,
        /// Bumped on every event so event streams wake up.
        notify: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
        /// Tells the other replicas, whose streams of this task wake too.
        bus: crate::changes::Bus,
    },
    /// A dry run: lines kept in order, in memory.
    Memory {
        /// Secret values to hide.
        masker: Masker,
        /// (step id, message).
        lines: Mutex<Vec<(Option<String>, String)>>,
    },
}

impl TaskLog {
    /// The masker in use.
    pub fn masker(&self) -> &Masker {
        match self {
            TaskLog::Stored { masker, .. } | TaskLog::Memory { masker, .. } => masker,
        }
    }

    /// Wakes live event streams, here and on other replicas, after event
    /// `id` was stored elsewhere.
    pub async fn woke(&self, id: i64) {
        if let TaskLog::Stored {
            notify,
            bus,
            task_id,
            ..
        } = self
        {
            notify.send_replace(id as u64);
            announce(bus, task_id, id).await;
        }
    }

    /// Logs `message` for `step` (masked).
    pub async fn info(&self, step: Option<&str>, message: &str) {
        self.event(step, "log", message, None).await;
    }

    /// Records an event of `kind` (masked); storage failures are logged, never fatal.
    pub async fn event(&self, step: Option<&str>, kind: &str, message: &str, status: Option<&str>) {
        let masked = self.masker().mask(message);
        match self {
            TaskLog::Stored {
                pool,
                task_id,
                notify,
                bus,
                ..
            } => match tasks::append_event(pool, task_id, step, kind, &masked, status).await {
                Ok(id) => {
                    notify.send_replace(id as u64);
                    announce(bus, task_id, id).await;
                }
                Err(e) => tracing::error!(error = %e, task = %task_id, "cannot store a task event"),
            },
            TaskLog::Memory { lines, .. } => {
                lines
                    .lock()
                    .expect("dry-run log lock")
                    .push((step.map(str::to_owned), masked));
            }
        }
    }
}

/// Tells the other replicas that task `task_id` stored event `id` (nothing
/// to tell on SQLite); a failure only delays their streams to their next
/// re-check.
async fn announce(bus: &crate::changes::Bus, task_id: &str, id: i64) {
    let change = crate::changes::Change::TaskEvent {
        task_id: task_id.to_owned(),
        id,
    };
    if let Err(e) = bus.publish(&change).await {
        tracing::warn!(error = %e, task = %task_id, "cannot tell the other replicas about a task event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_longest_first_and_inside_json() {
        let m = Masker::new([
            "hunter2".to_owned(),
            "hunter2-extended".to_owned(),
            String::new(),
        ]);
        assert_eq!(m.mask("a hunter2-extended b hunter2"), "a *** b ***");
        let j = m.mask_json(&serde_json::json!({"k": ["x hunter2"]}));
        assert_eq!(j["k"][0], "x ***");
    }
}
