//! A bounded in-memory cache in front of the SQLite session store.
//!
//! Every signed-in request reads its session; without a cache that is a
//! SQLite round trip (and a thread hand-off) per request. Paved runs as one
//! process over one SQLite file, so a write-through cache in that process
//! never serves a stale session: every save and delete (sign-in, sign-out,
//! idle refresh) goes through it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, CachingSessionStore};
use tower_sessions::SessionStore;
use tower_sessions_sqlx_store::SqliteStore;

/// The store Paved uses: SQLite, fronted by [`BoundedMemoryStore`].
pub type Sessions = CachingSessionStore<BoundedMemoryStore, SqliteStore>;

/// How many sessions the cache keeps before it makes room.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// Builds the cached session store over `sqlite`.
pub fn cached(sqlite: SqliteStore) -> Sessions {
    CachingSessionStore::new(BoundedMemoryStore::new(DEFAULT_CAPACITY), sqlite)
}

/// An in-memory session map that never grows past its capacity: when full it
/// drops expired records, and if that is not enough, everything (the SQLite
/// store still has them, so this costs only cache misses).
#[derive(Debug, Clone)]
pub struct BoundedMemoryStore {
    records: Arc<Mutex<HashMap<Id, Record>>>,
    capacity: usize,
}

impl BoundedMemoryStore {
    /// A cache for at most `capacity` sessions.
    pub fn new(capacity: usize) -> Self {
        Self {
            records: Arc::default(),
            capacity: capacity.max(1),
        }
    }

    /// How many sessions are cached now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Id, Record>> {
        // A panic while holding the lock cannot leave a half-written map.
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

#[async_trait]
impl SessionStore for BoundedMemoryStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // The backing store has already chosen a unique id.
        self.save(record).await
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let mut records = self.lock();
        if records.len() >= self.capacity && !records.contains_key(&record.id) {
            let now = now();
            records.retain(|_, r| r.expiry_date > now);
            if records.len() >= self.capacity {
                records.clear();
            }
        }
        records.insert(record.id, record.clone());
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let now = now();
        Ok(self.lock().get(id).filter(|r| r.expiry_date > now).cloned())
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.lock().remove(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(expires_in: time::Duration) -> Record {
        Record {
            id: Id::default(),
            data: Default::default(),
            expiry_date: now() + expires_in,
        }
    }

    #[tokio::test]
    async fn keeps_loads_and_deletes_records() {
        let store = BoundedMemoryStore::new(4);
        let mut r = record(time::Duration::hours(1));
        store.create(&mut r).await.unwrap();
        assert_eq!(store.load(&r.id).await.unwrap().unwrap().id, r.id);
        store.delete(&r.id).await.unwrap();
        assert!(store.load(&r.id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn expired_records_are_not_served() {
        let store = BoundedMemoryStore::new(4);
        let r = record(time::Duration::seconds(-1));
        store.save(&r).await.unwrap();
        assert!(store.load(&r.id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn never_grows_past_capacity() {
        let store = BoundedMemoryStore::new(3);
        let expired = record(time::Duration::seconds(-1));
        store.save(&expired).await.unwrap();
        for _ in 0..10 {
            store.save(&record(time::Duration::hours(1))).await.unwrap();
            assert!(store.len() <= 3);
        }
        assert!(store.load(&expired.id).await.unwrap().is_none());
    }
}
