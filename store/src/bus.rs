//! Changes that other replicas' caches must hear about at once: a person's
//! access, a revoked gateway key, the price table.
//!
//! A replica that makes such a change updates its own caches directly and
//! [`Bus::publish`]es it; on PostgreSQL every replica (itself included)
//! receives it through `LISTEN`/`NOTIFY` on the channel [`CHANNEL`], usually
//! within milliseconds. A listener that lost its connection cannot know what
//! it missed, so it reports [`Change::Everything`] once it is back, and the
//! caches start over. On SQLite there is one process, whose caches the change
//! already reached: publishing does nothing.

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// The `LISTEN`/`NOTIFY` channel Paved's replicas share.
pub const CHANNEL: &str = "paved_changes";

/// A change caches must hear about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// A person's memberships, roles or access (disabled, re-enabled)
    /// changed: their cached principal is stale.
    Person {
        /// The person's row id.
        user_id: i64,
    },
    /// A gateway key was revoked.
    GatewayKey {
        /// Its SHA-256 hash (the cache's key; never the key itself).
        hash: String,
    },
    /// The price table changed.
    Prices,
    /// Policy exceptions, or the services with Vault roles that policies
    /// check annotations against, changed.
    Policies,
    /// A scaffolder task logged an event: live streams of it on other
    /// replicas read on.
    TaskEvent {
        /// The task.
        task_id: String,
        /// The event's id.
        id: i64,
    },
    /// A browser session was saved or ended: other replicas' copies are stale.
    Session {
        /// SHA-256 (hex) of the session's id: the id is a credential and
        /// never travels or reaches a log.
        id_sha256: String,
    },
    /// Changes may have been missed (a listener reconnected): forget everything.
    Everything,
}

/// Where this replica publishes changes and hears the fleet's.
#[derive(Clone, Debug)]
pub struct Bus {
    heard: broadcast::Sender<Change>,
    postgres: Option<(sqlx::PgPool, std::sync::Arc<Listening>)>,
}

#[derive(Debug)]
struct Listening(tokio::task::JoinHandle<()>);

impl Drop for Listening {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Change {
    /// What kind of change it is, for logs (never the values it carries).
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Person { .. } => "person",
            Change::GatewayKey { .. } => "gateway_key",
            Change::Prices => "prices",
            Change::Policies => "policies",
            Change::TaskEvent { .. } => "task_event",
            Change::Session { .. } => "session",
            Change::Everything => "everything",
        }
    }
}

impl Bus {
    /// The only process on its database (SQLite): nobody else to tell.
    pub fn sole() -> Self {
        Self {
            heard: broadcast::channel(1024).0,
            postgres: None,
        }
    }

    /// Listens on `pool`'s database for the fleet's changes (the listener's
    /// connection is its own, re-opened when lost) and publishes there.
    /// Returns once listening, so nothing published after is missed.
    pub async fn listen(pool: sqlx::PgPool) -> Result<Self, sqlx::Error> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        let heard = broadcast::channel(1024).0;
        let task = tokio::spawn(relay(listener, heard.clone()));
        Ok(Self {
            heard,
            postgres: Some((pool, std::sync::Arc::new(Listening(task)))),
        })
    }

    /// Tells every replica (this one too, on PostgreSQL) about `change`.
    /// Call it after the change committed.
    pub async fn publish(&self, change: &Change) -> Result<(), sqlx::Error> {
        if let Some((pool, _)) = &self.postgres {
            let payload = serde_json::to_string(change).unwrap_or_default();
            #[cfg(not(paved_sqlx_only = "sqlite"))]
            sqlx::query_scalar!(
                r#"SELECT pg_notify($1, $2)::TEXT AS "sent""#,
                CHANNEL,
                payload
            )
            .fetch_one(pool)
            .await?;
            #[cfg(paved_sqlx_only = "sqlite")]
            let _ = (pool, payload);
        }
        Ok(())
    }

    /// Changes heard from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.heard.subscribe()
    }
}

/// Hands every notification to the subscribers; after a lost connection
/// (the listener re-connects and listens again by itself) they hear
/// [`Change::Everything`].
async fn relay(mut listener: sqlx::postgres::PgListener, heard: broadcast::Sender<Change>) {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => match serde_json::from_str(notification.payload()) {
                Ok(change) => {
                    let _ = heard.send(change);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "an unreadable change notification: caches start over");
                    let _ = heard.send(Change::Everything);
                }
            },
            Ok(None) => {
                tracing::warn!("the change listener lost its connection; caches start over");
                let _ = heard.send(Change::Everything);
            }
            Err(e) => {
                tracing::warn!(error = %e, "the change listener cannot reach PostgreSQL");
                let _ = heard.send(Change::Everything);
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_travel_as_small_json() {
        let change = Change::GatewayKey {
            hash: "ab12".into(),
        };
        let text = serde_json::to_string(&change).unwrap();
        assert_eq!(text, r#"{"change":"gateway_key","hash":"ab12"}"#);
        assert_eq!(serde_json::from_str::<Change>(&text).unwrap(), change);
        assert_eq!(
            serde_json::to_string(&Change::Person { user_id: 7 }).unwrap(),
            r#"{"change":"person","user_id":7}"#
        );
    }

    #[tokio::test]
    async fn the_sole_process_publishes_to_nobody() {
        let bus = Bus::sole();
        let mut heard = bus.subscribe();
        bus.publish(&Change::Prices).await.unwrap();
        assert!(heard.try_recv().is_err());
    }

    /// Three replicas: what one publishes every one hears, in order; a
    /// replica whose listening connection is cut hears `Everything` and then
    /// the changes after it.
    #[cfg(not(paved_sqlx_only = "sqlite"))]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_replica_hears_each_change_and_a_cut_one_starts_over() {
        use std::time::Duration;
        let Some((url, admin)) = crate::postgres_testing::fresh_pool("bus", 2).await else {
            return;
        };
        let mut buses = vec![];
        for _ in 0..3 {
            let pool = crate::connect_postgres(&url, 2).await.unwrap();
            buses.push(Bus::listen(pool).await.unwrap());
        }
        let mut ears: Vec<_> = buses.iter().map(Bus::subscribe).collect();
        let sent = [
            Change::Person { user_id: 3 },
            Change::GatewayKey { hash: "h".into() },
            Change::Prices,
        ];
        for change in &sent {
            buses[1].publish(change).await.unwrap();
        }
        for ear in &mut ears {
            for change in &sent {
                let got = tokio::time::timeout(Duration::from_secs(10), ear.recv())
                    .await
                    .expect("heard in time")
                    .unwrap();
                assert_eq!(&got, change);
            }
        }
        // Cut replica 2's listening connection (as a network fault would).
        let cut: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = current_database() AND query LIKE 'LISTEN%') t",
        )
        .fetch_one(&admin)
        .await
        .unwrap();
        assert_eq!(cut, 3, "each replica listens on one connection");
        let got = tokio::time::timeout(Duration::from_secs(10), ears[2].recv())
            .await
            .expect("told to start over")
            .unwrap();
        assert_eq!(got, Change::Everything);
        // Listening again: later changes arrive.
        let later = Change::Person { user_id: 9 };
        let mut heard = false;
        for _ in 0..50 {
            buses[0].publish(&later).await.unwrap();
            match tokio::time::timeout(Duration::from_millis(200), ears[2].recv()).await {
                Ok(Ok(change)) if change == later => {
                    heard = true;
                    break;
                }
                _ => {}
            }
        }
        assert!(heard, "a re-connected listener hears new changes");
    }
}
