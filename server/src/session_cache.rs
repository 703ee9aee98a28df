//! Sessions: kept in the database (SQLite for one process, PostgreSQL for
//! replicas, which then share them), with a bounded in-memory cache in front.
//!
//! Every signed-in request reads its session; without a cache that is a
//! database round trip per request. The cache is write-through: every save
//! and delete (sign-in, sign-out, idle refresh) goes through it, so on
//! SQLite's one process it never serves a stale session. On PostgreSQL a
//! session saved or ended by one replica is announced on the bus (by a hash
//! of its id, never the id) and every other replica drops its copy; a
//! replica that may have missed announcements starts its cache over.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use paved_core::changes::{Bus, Change};
use sha2::{Digest, Sha256};
use tokio::sync::broadcast::error::RecvError;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, CachingSessionStore, ExpiredDeletion};
use tower_sessions::SessionStore;
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

/// The store Paved uses: the database's, fronted by [`BoundedMemoryStore`].
pub type Sessions = CachingSessionStore<BoundedMemoryStore, SessionDb>;

/// How many sessions the cache keeps before it makes room.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// Builds the cached session store over `db`; on PostgreSQL the cache
/// follows the other replicas' saves and sign-outs.
pub fn cached(db: SessionDb) -> Sessions {
    let memory = BoundedMemoryStore::new(DEFAULT_CAPACITY);
    if let SessionDb::Postgres { bus, .. } = &db {
        tokio::spawn(follow(memory.clone(), bus.subscribe()));
    }
    CachingSessionStore::new(memory, db)
}

/// Where sessions are kept.
#[derive(Debug, Clone)]
pub enum SessionDb {
    /// One process's SQLite file.
    Sqlite(SqliteStore),
    /// PostgreSQL, shared by the replicas, which hear each other's changes on `bus`.
    Postgres {
        /// The `tower_sessions.session` table (`migrations/postgres/`).
        store: PostgresStore,
        /// Where saves and sign-outs are announced.
        bus: Bus,
    },
}

impl SessionDb {
    /// Sessions on PostgreSQL (the table comes with Paved's migrations).
    pub fn postgres(pool: sqlx::PgPool, bus: Bus) -> Self {
        SessionDb::Postgres {
            store: PostgresStore::new(pool),
            bus,
        }
    }
}

/// How a session is named on the bus: the SHA-256 of its id.
fn id_sha256(id: &Id) -> String {
    format!("{:x}", Sha256::digest(id.to_string().as_bytes()))
}

async fn announce(bus: &Bus, id: &Id) -> session_store::Result<()> {
    bus.publish(&Change::Session {
        id_sha256: id_sha256(id),
    })
    .await
    .map_err(|e| session_store::Error::Backend(e.to_string()))
}

#[async_trait]
impl SessionStore for SessionDb {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            SessionDb::Sqlite(s) => s.create(record).await,
            // A new id: nobody else has a copy.
            SessionDb::Postgres { store, .. } => store.create(record).await,
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            SessionDb::Sqlite(s) => s.save(record).await,
            SessionDb::Postgres { store, bus } => {
                store.save(record).await?;
                announce(bus, &record.id).await
            }
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            SessionDb::Sqlite(s) => s.load(id).await,
            SessionDb::Postgres { store, .. } => store.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            SessionDb::Sqlite(s) => s.delete(id).await,
            SessionDb::Postgres { store, bus } => {
                store.delete(id).await?;
                announce(bus, id).await
            }
        }
    }
}

#[async_trait]
impl ExpiredDeletion for SessionDb {
    async fn delete_expired(&self) -> session_store::Result<()> {
        match self {
            SessionDb::Sqlite(s) => s.delete_expired().await,
            SessionDb::Postgres { store, .. } => store.delete_expired().await,
        }
    }
}

/// Drops the copies of sessions other replicas saved or ended.
async fn follow(memory: BoundedMemoryStore, mut heard: tokio::sync::broadcast::Receiver<Change>) {
    loop {
        match heard.recv().await {
            Ok(Change::Session { id_sha256 }) => memory.forget_sha256(&id_sha256),
            Ok(Change::Everything) | Err(RecvError::Lagged(_)) => memory.clear(),
            Ok(_) => {}
            Err(RecvError::Closed) => return,
        }
    }
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
    /// Ids by the hash other replicas name them by.
    by_sha256: HashMap<String, Id>,
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
        self.by_sha256.insert(id_sha256(&record.id), record.id);
        self.tick += 1;
        self.order.insert(self.tick, record.id);
        self.records.insert(record.id, (record, self.tick));
    }

    fn remove(&mut self, id: &Id) {
        if let Some((_, used)) = self.records.remove(id) {
            self.order.remove(&used);
            self.by_sha256.remove(&id_sha256(id));
        }
    }

    fn evict_oldest(&mut self) {
        if let Some((_, id)) = self.order.pop_first() {
            self.remove(&id);
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

    /// Drops the session whose id hashes to `sha256` (another replica
    /// saved or ended it), if cached.
    pub fn forget_sha256(&self, sha256: &str) {
        let mut lru = self.lock();
        if let Some(id) = lru.by_sha256.get(sha256).copied() {
            lru.remove(&id);
        }
    }

    /// Drops every session (announcements may have been missed).
    pub fn clear(&self) {
        *self.lock() = Lru::default();
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

    /// Another replica names a session by its id's hash: that one goes,
    /// the others stay; evicted and deleted sessions leave no hash behind.
    #[tokio::test]
    async fn a_session_named_by_its_hash_is_forgotten_alone() {
        let store = BoundedMemoryStore::new(2);
        let (mut a, mut b) = (
            record(time::Duration::hours(1)),
            record(time::Duration::hours(1)),
        );
        store.create(&mut a).await.unwrap();
        store.create(&mut b).await.unwrap();
        assert_ne!(id_sha256(&a.id), a.id.to_string());
        store.forget_sha256(&id_sha256(&a.id));
        assert!(store.load(&a.id).await.unwrap().is_none());
        assert!(store.load(&b.id).await.unwrap().is_some());
        store.forget_sha256("not a hash we know");
        assert_eq!(store.len(), 1);
        for _ in 0..5 {
            store.save(&record(time::Duration::hours(1))).await.unwrap();
        }
        let hashes = store.lock().by_sha256.len();
        assert_eq!(hashes, store.len());
        store.clear();
        assert!(store.is_empty());
        let hashes = store.lock().by_sha256.len();
        assert_eq!(hashes, 0);
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
