//! A bounded in-memory cache in front of the SQLite session store.
//!
//! Every signed-in request reads its session; without a cache that is a
//! SQLite round trip (and a thread hand-off) per request. Paved runs as one
//! process over one SQLite file, so a write-through cache in that process
//! never serves a stale session: every save and delete (sign-in, sign-out,
//! idle refresh) goes through it.

use std::collections::{BTreeMap, HashMap};
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
/// evicts the least recently used session, one at a time (the SQLite store
/// still has it, so this costs one cache miss later). A flood of new
/// sessions therefore pushes out only the oldest idle ones, never the whole
/// cache at once.
#[derive(Debug, Clone)]
pub struct BoundedMemoryStore {
    inner: Arc<Mutex<Lru>>,
    capacity: usize,
}

/// The records with their last use, and the use order (oldest first).
#[derive(Debug, Default)]
struct Lru {
    records: HashMap<Id, (Record, u64)>,
    order: BTreeMap<u64, Id>,
    tick: u64,
}

impl Lru {
    fn touch(&mut self, id: &Id) {
        self.tick += 1;
        let tick = self.tick;
        if let Some((_, used)) = self.records.get_mut(id) {
            self.order.remove(used);
            *used = tick;
            self.order.insert(tick, *id);
        }
    }

    fn insert(&mut self, record: Record) {
        self.remove(&record.id);
        self.tick += 1;
        self.order.insert(self.tick, record.id);
        self.records.insert(record.id, (record, self.tick));
    }

    fn remove(&mut self, id: &Id) {
        if let Some((_, used)) = self.records.remove(id) {
            self.order.remove(&used);
        }
    }

    fn evict_oldest(&mut self) {
        if let Some((_, id)) = self.order.pop_first() {
            self.records.remove(&id);
        }
    }
}

impl BoundedMemoryStore {
    /// A cache for at most `capacity` sessions.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::default(),
            capacity: capacity.max(1),
        }
    }

    /// How many sessions are cached now.
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        // A panic while holding the lock cannot leave a half-written map.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
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
        let mut lru = self.lock();
        lru.insert(record.clone());
        while lru.records.len() > self.capacity {
            lru.evict_oldest();
        }
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let now = now();
        let mut lru = self.lock();
        let found = lru
            .records
            .get(id)
            .map(|(r, _)| r)
            .filter(|r| r.expiry_date > now)
            .cloned();
        if found.is_some() {
            lru.touch(id);
        } else {
            lru.remove(id);
        }
        Ok(found)
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

    #[tokio::test]
    async fn a_flood_evicts_the_least_recently_used_not_everyone() {
        let store = BoundedMemoryStore::new(100);
        let mut people = Vec::new();
        for _ in 0..50 {
            let r = record(time::Duration::hours(8));
            store.save(&r).await.unwrap();
            people.push(r.id);
        }
        // Anonymous sessions pour in while the people keep using theirs:
        // only the oldest anonymous ones make room, never everyone at once.
        for round in 0..40 {
            for _ in 0..25 {
                store
                    .save(&record(time::Duration::minutes(10)))
                    .await
                    .unwrap();
                assert!(store.len() <= 100);
            }
            for id in &people {
                assert!(store.load(id).await.unwrap().is_some(), "round {round}");
            }
        }
        for id in &people {
            assert!(store.load(id).await.unwrap().is_some());
        }
    }
}
