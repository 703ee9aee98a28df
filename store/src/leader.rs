//! Fleet-wide leadership for background jobs (catalog refreshes, janitors,
//! SLO checks): with several replicas on PostgreSQL each job must run once
//! across the fleet, not once per replica.
//!
//! On PostgreSQL one replica is the leader: it holds a session advisory lock
//! on a connection of its own, taken out of the pool. The lock lives exactly
//! as long as that connection, so a replica that dies (even `kill -9`) gives
//! it up when its socket closes, and another replica, trying every
//! [`RETRY`], takes over. The leader checks its connection every [`RETRY`]
//! too: once it cannot reach the database it stops calling itself leader
//! (its lock may already be gone), so two replicas never both run a job for
//! longer than one check. On SQLite there is one process per database, which
//! always leads.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// How often a follower tries to take the lead, and a leader checks it still holds it.
pub const RETRY: Duration = Duration::from_secs(1);

/// The advisory lock key Paved's leader holds ("paved" in ASCII). One
/// database holds one Paved fleet.
pub const LOCK_KEY: i64 = 0x70_6176_6564;

/// Whether this replica leads the fleet. Clones share one campaign; when the
/// last clone is dropped the campaign stops and a held lock is released.
#[derive(Clone, Debug)]
pub struct Leadership {
    leading: watch::Receiver<bool>,
    _campaign: Option<Arc<Campaign>>,
}

#[derive(Debug)]
struct Campaign(tokio::task::JoinHandle<()>);

impl Drop for Campaign {
    fn drop(&mut self) {
        // Dropping the task drops its connection: the lock goes with it.
        self.0.abort();
    }
}

impl Leadership {
    /// The only process on its database (SQLite): always the leader.
    pub fn sole() -> Self {
        let (_, leading) = watch::channel(true);
        Self {
            leading,
            _campaign: None,
        }
    }

    /// Campaigns for the fleet's lead on `pool`'s database, holding
    /// advisory lock `key` while it leads (Paved uses [`LOCK_KEY`]; tests
    /// use keys of their own).
    #[cfg(not(paved_sqlx_only = "sqlite"))]
    pub fn campaign(pool: sqlx::PgPool, key: i64) -> Self {
        let (tell, leading) = watch::channel(false);
        let task = tokio::spawn(campaign(pool, key, tell));
        Self {
            leading,
            _campaign: Some(Arc::new(Campaign(task))),
        }
    }

    /// Whether this replica leads now (a job checks just before it runs).
    pub fn is_leader(&self) -> bool {
        *self.leading.borrow()
    }

    /// Waits until this replica leads.
    pub async fn until_leading(&self) {
        let mut leading = self.leading.clone();
        // An error means the campaign ended, which only dropping it does.
        let _ = leading.wait_for(|l| *l).await;
    }
}

#[cfg(not(paved_sqlx_only = "sqlite"))]
async fn campaign(pool: sqlx::PgPool, key: i64, tell: watch::Sender<bool>) {
    'campaign: loop {
        // A connection of the campaign's own: a pooled one would go back to
        // the pool still holding the lock.
        let mut conn = match pool.acquire().await {
            Ok(conn) => conn.detach(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot reach PostgreSQL to campaign for the fleet's lead");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        loop {
            let held = sqlx::query_scalar!(r#"SELECT pg_try_advisory_lock($1) AS "held!""#, key)
                .fetch_one(&mut conn)
                .await;
            match held {
                Ok(true) => break,
                Ok(false) => tokio::time::sleep(RETRY).await,
                Err(e) => {
                    tracing::warn!(error = %e, "lost the connection campaigning for the fleet's lead");
                    drop(conn);
                    tokio::time::sleep(RETRY).await;
                    continue 'campaign;
                }
            }
        }
        // Leading from here while the connection answers (and the lock, a
        // session's, is still ours).
        let mut leading = false;
        loop {
            let still = sqlx::query_scalar!(
                r#"SELECT EXISTS (SELECT 1 FROM pg_locks
                     WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
                       AND ((classid::BIGINT << 32) | objid::BIGINT) = $1) AS "held!""#,
                key
            )
            .fetch_one(&mut conn)
            .await
            .unwrap_or(false);
            if still != leading {
                leading = still;
                tell.send_replace(leading);
                if leading {
                    tracing::info!("this replica leads the fleet's background jobs");
                } else {
                    tracing::warn!("this replica no longer leads the fleet's background jobs");
                }
            }
            if !leading {
                break;
            }
            tokio::time::sleep(RETRY).await;
        }
        drop(conn);
        tokio::time::sleep(RETRY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(not(paved_sqlx_only = "sqlite"))]
    use crate::postgres_testing;

    #[cfg(not(paved_sqlx_only = "sqlite"))]
    /// How many of `replicas` call themselves leader now.
    fn leaders(replicas: &[Leadership]) -> usize {
        replicas.iter().filter(|r| r.is_leader()).count()
    }

    #[cfg(not(paved_sqlx_only = "sqlite"))]
    /// Waits (up to 15 s) until exactly one replica leads, never seeing two.
    async fn one_leader(replicas: &[Leadership]) -> usize {
        for _ in 0..150 {
            let n = leaders(replicas);
            assert!(n <= 1, "{n} replicas lead at once");
            if n == 1 {
                return replicas.iter().position(|r| r.is_leader()).unwrap();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no replica took the lead");
    }

    #[tokio::test]
    async fn the_sole_process_always_leads() {
        let sole = Leadership::sole();
        assert!(sole.is_leader());
        sole.until_leading().await;
    }

    /// Three replicas campaign on one database: one leads, the others wait;
    /// when the leader goes (its process ends, or its connection is cut) one
    /// other replica takes over, and at no moment do two lead.
    #[cfg(not(paved_sqlx_only = "sqlite"))]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_replica_leads_and_another_takes_over_when_it_goes() {
        let Some((url, admin)) = postgres_testing::fresh_pool("leader", 2).await else {
            return;
        };
        let key = 42;
        let mut replicas = vec![];
        for _ in 0..3 {
            let pool = crate::connect_postgres(&url, 2).await.unwrap();
            replicas.push(Leadership::campaign(pool, key));
        }
        let first = one_leader(&replicas).await;
        // Stays alone in the lead over several checks.
        for _ in 0..25 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert_eq!(leaders(&replicas), 1);
            assert!(replicas[first].is_leader());
        }
        // The leader's process ends: its lock goes with its connection.
        replicas.remove(first);
        let second = one_leader(&replicas).await;
        // The new leader's connection is cut (as a crash or a network
        // partition would).
        let cut = sqlx::query_scalar::<_, bool>(
            "SELECT pg_terminate_backend(pid) FROM pg_locks
             WHERE locktype = 'advisory' AND objid = $1 AND granted",
        )
        .bind(key)
        .fetch_one(&admin)
        .await
        .unwrap();
        assert!(cut);
        // It notices at its next check (until then it may still think it
        // leads: the tolerance the module documents), and then one replica
        // leads again, alone.
        for _ in 0..150 {
            if !replicas[second].is_leader() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!replicas[second].is_leader(), "a cut leader stops leading");
        let third = one_leader(&replicas).await;
        for _ in 0..15 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert_eq!(leaders(&replicas), 1);
        }
        tokio::time::timeout(Duration::from_secs(1), replicas[third].until_leading())
            .await
            .unwrap();
    }
}
