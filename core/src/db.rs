//! Opening the SQLite database: WAL (checkpointed in the background), foreign
//! keys on, migrations applied. Storage that runs on PostgreSQL too lives in
//! `paved-store` ([`Db`]).

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

/// The migrations in the workspace's `migrations/` folder, embedded at compile time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

pub use paved_store::{connect_postgres, postgres_testing, Db, POSTGRES_MIGRATOR};

/// Opens (creating if needed) the database at `url` and applies migrations.
pub async fn connect(url: &str) -> Result<SqlitePool, sqlx::Error> {
    let pool = open(url).await?;
    migrate(&pool).await?;
    tokio::spawn(checkpoint_wal(pool.clone()));
    Ok(pool)
}

/// The pool on `url` (the file created if missing), not yet migrated.
async fn open(url: &str) -> Result<SqlitePool, sqlx::Error> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let path = path.split('?').next().unwrap_or(path);
        if let Some(parent) = std::path::Path::new(path).parent() {
            if !parent.as_os_str().is_empty() && path != ":memory:" {
                std::fs::create_dir_all(parent).map_err(sqlx::Error::Io)?;
            }
        }
    }
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(BUSY_WAIT)
        // Reads through a shared memory map instead of a read() per page, and a
        // bigger page cache per connection: catalog queries touch many pages.
        // Without the map every page goes through SQLite's page cache, whose
        // one mutex (this build enables memory management) made 10 concurrent
        // catalog lists 4× slower. The price: each connection maps the file
        // itself, and the kernel counts the shared pages in RSS once per map.
        .pragma("mmap_size", MMAP_SIZE)
        .pragma("cache_size", "-4096")
        // Checkpoints run in the background (below), never inside a commit:
        // otherwise every ~1000 pages one unlucky write (a gateway budget
        // hold, say) waits for the checkpoint's fsync.
        .pragma("wal_autocheckpoint", "0")
        // When the log starts over, a file grown past this is cut back to it.
        .pragma("journal_size_limit", WAL_SIZE_LIMIT.to_string());
    SqlitePoolOptions::new()
        .max_connections(8)
        // A connection is a file handle in this process: nothing outside can
        // break it, and the default ping before every acquire is one more
        // round trip to the connection's thread for every query.
        .test_before_acquire(false)
        .after_connect(|conn, _| {
            Box::pin(async move {
                let mut handle = conn.lock_handle().await?;
                retry_every_millisecond_when_busy(handle.as_raw_handle());
                Ok(())
            })
        })
        .connect_with(options)
        .await
}

/// What `paved migrate` did: migrations recorded before and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// Migrations the database recorded as applied before.
    pub before: i64,
    /// Migrations it records now (every migration this build has).
    pub after: i64,
}

/// Opens the database at `url` (creating a SQLite file), applies the
/// migrations it lacks, and closes it: `paved migrate`, run once before a new
/// version of Paved starts. On PostgreSQL sqlx holds an advisory lock while
/// it migrates, so replicas or jobs migrating at once apply each migration
/// once.
pub async fn migrate_only(url: &str) -> Result<Migrated, sqlx::Error> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let (before, after) = paved_store::migrate_postgres(url).await?;
        return Ok(Migrated { before, after });
    }
    let pool = open(url).await?;
    let before = applied_migrations(&mut *pool.acquire().await?).await?;
    migrate(&pool).await?;
    let after = applied_migrations(&mut *pool.acquire().await?).await?;
    pool.close().await;
    Ok(Migrated { before, after })
}

/// How long a statement waits for SQLite's write lock before failing busy.
const BUSY_WAIT: Duration = Duration::from_secs(5);

/// Replaces SQLite's busy handler on a new connection. The one
/// `busy_timeout` installs sleeps longer and longer between tries (up to
/// 100 ms each), so a writer waiting behind a catalog refresh, which holds
/// the write lock in short steps with a pause between them, kept missing
/// the pauses (2.8 s waits behind 13k entities written in steps of 70 ms).
/// Paved's connections try again every millisecond, for [`BUSY_WAIT`] at
/// most, and so take the lock in the first pause.
#[allow(unsafe_code)]
fn retry_every_millisecond_when_busy(handle: std::ptr::NonNull<libsqlite3_sys::sqlite3>) {
    use std::cell::Cell;
    use std::os::raw::{c_int, c_void};
    thread_local! {
        // Each connection runs its statements on a thread of its own.
        static WAITING_SINCE: Cell<Option<std::time::Instant>> = const { Cell::new(None) };
    }
    extern "C" fn busy(_: *mut c_void, tries: c_int) -> c_int {
        let now = std::time::Instant::now();
        let since = WAITING_SINCE.with(|since| {
            if tries == 0 {
                since.set(Some(now));
            }
            since.get().unwrap_or(now)
        });
        if now.duration_since(since) >= BUSY_WAIT {
            return 0;
        }
        std::thread::sleep(Duration::from_millis(1));
        1
    }
    // SAFETY: `handle` is this connection's open database handle, locked by
    // the caller for the duration of the call; the callback reads no user
    // data (null) and cannot unwind (nothing in it panics).
    unsafe {
        libsqlite3_sys::sqlite3_busy_handler(handle.as_ptr(), Some(busy), std::ptr::null_mut());
    }
}

/// Bytes of the database file each connection reads through a memory map.
pub const MMAP_SIZE: &str = "268435456";
/// Sets a connection's memory map back to [`MMAP_SIZE`].
pub const RESTORE_MMAP: &str = "PRAGMA mmap_size = 268435456";

/// Applies the migrations on one connection with foreign keys off, as
/// SQLite's procedure for rebuilding a table requires (a rebuilt parent table
/// must not cascade to its children; sqlx runs each migration in a
/// transaction, where the pragma cannot change), then, when a migration ran,
/// checks every foreign key, and turns them back on. Without a migration
/// nothing ran with the keys off, so the check (a scan of every reference:
/// 130 ms of a 137 ms start with 13,000 entities) is skipped.
async fn migrate(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    sqlx::query("PRAGMA foreign_keys = OFF")
        .execute(&mut *conn)
        .await?;
    let before = applied_migrations(&mut conn).await?;
    let applied = MIGRATOR.run(&mut *conn).await;
    let broken: Vec<(String,)> =
        if applied.is_err() || applied_migrations(&mut conn).await? != before {
            sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check")
                .fetch_all(&mut *conn)
                .await?
        } else {
            Vec::new()
        };
    sqlx::query("PRAGMA foreign_keys = ON")
        .execute(&mut *conn)
        .await?;
    applied?;
    if let Some((table,)) = broken.first() {
        return Err(sqlx::Error::Protocol(format!(
            "after migrating, {table} has rows whose foreign keys point nowhere"
        )));
    }
    Ok(())
}

/// How many migrations the database records as applied (none before the first).
async fn applied_migrations(conn: &mut sqlx::SqliteConnection) -> Result<i64, sqlx::Error> {
    let exists: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_one(&mut *conn)
    .await?;
    if exists == 0 {
        return Ok(0);
    }
    sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut *conn)
        .await
}

/// WAL frames (pages) past which the checkpointer starts the log over:
/// 16,384 frames of 4 KiB, 64 MiB.
const WAL_RESTART_FRAMES: i64 = 16_384;
/// The WAL file's size kept after a restart, in bytes (the same 64 MiB):
/// the log is rewritten in place instead of freeing and allocating its
/// blocks again (truncating a 64 MiB file took 51 ms, every writer waiting).
const WAL_SIZE_LIMIT: i64 = WAL_RESTART_FRAMES * 4096;

/// WAL frames a passive checkpoint may leave uncopied for the log to be
/// started over: a RESTART checkpoint blocks writers while it copies the
/// rest, so it only runs when little is left (copying the 64 MiB a large
/// catalog refresh writes kept every writer waiting 3.5–4 s).
const RESTART_BACKLOG_FRAMES: i64 = 1_024;

/// Copies the write-ahead log into the database file every second (PASSIVE:
/// never blocks readers or the writer), which keeps the WAL small; a log
/// that grew past [`WAL_RESTART_FRAMES`] anyway is started over once a
/// passive checkpoint has copied all but [`RESTART_BACKLOG_FRAMES`] of it.
async fn checkpoint_wal(pool: SqlitePool) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        // (busy, frames in the WAL, frames copied)
        match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&pool)
            .await
        {
            // Under a steady stream of writes a passive checkpoint never
            // finds the log idle, so the WAL would only grow: past
            // WAL_RESTART_FRAMES, wait for the readers once and start it over.
            Ok((_, frames, copied))
                if frames > WAL_RESTART_FRAMES && frames - copied <= RESTART_BACKLOG_FRAMES =>
            {
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(RESTART)")
                    .execute(&pool)
                    .await
                {
                    tracing::warn!(error = %e, "WAL checkpoint (restart) failed");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
        }
    }
}

/// Whether the database answers a trivial query (used by `/readyz`).
pub async fn is_ready(pool: &SqlitePool) -> bool {
    sqlx::query_scalar!("SELECT 1 AS one")
        .fetch_one(pool)
        .await
        .is_ok()
}

/// Both backends for a test: an in-memory SQLite database and a fresh
/// PostgreSQL one, each migrated; `None` when PostgreSQL is not available
/// (see [`postgres_testing::cluster_url`]).
#[cfg(test)]
pub(crate) async fn both_backends(prefix: &str) -> Option<(SqlitePool, sqlx::PgPool)> {
    let (_, postgres) = postgres_testing::fresh_pool(prefix, 2).await?;
    let sqlite = SqlitePool::connect("sqlite::memory:")
        .await
        .expect("an in-memory SQLite database");
    MIGRATOR
        .run(&sqlite)
        .await
        .expect("SQLite migrations apply");
    Some((sqlite, postgres))
}

/// Runs a literal statement (test set-up) on either backend.
#[cfg(test)]
pub(crate) async fn run(db: Db<'_>, sql: &str) {
    match db {
        Db::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(drop),
        Db::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(drop),
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_restored_memory_map_is_the_configured_one() {
        assert_eq!(RESTORE_MMAP, format!("PRAGMA mmap_size = {MMAP_SIZE}"));
    }

    #[tokio::test]
    async fn migrations_are_counted_and_a_second_start_applies_none() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("paved.db").display());
        let pool = connect(&url).await.unwrap();
        let mut conn = pool.acquire().await.unwrap();
        let applied = applied_migrations(&mut conn).await.unwrap();
        assert_eq!(applied, MIGRATOR.iter().count() as i64);
        drop(conn);
        pool.close().await;

        // Started again: nothing to apply, the count stays and the keys are on.
        let pool = connect(&url).await.unwrap();
        let mut conn = pool.acquire().await.unwrap();
        assert_eq!(applied_migrations(&mut conn).await.unwrap(), applied);
        let keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(keys, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiting_writer_takes_the_lock_in_a_short_pause() {
        use sqlx::Connection;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("paved.db").display());
        let pool = connect(&url).await.unwrap();
        // One writer holds the write lock 100 ms at a time with 5 ms pauses,
        // as a catalog refresh does; another waits for it meanwhile.
        let mut holder = pool.acquire().await.unwrap();
        let mut tx = holder.begin_with("BEGIN IMMEDIATE").await.unwrap();
        let waiter = tokio::spawn({
            let pool = pool.clone();
            async move {
                let mut conn = pool.acquire().await.unwrap();
                let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.unwrap();
                sqlx::query("CREATE TABLE waiter_was_here (x INTEGER)")
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }
        });
        let mut pauses = 0;
        let mut got_in = false;
        while !got_in && pauses < 3 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            tx.commit().await.unwrap();
            pauses += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
            tx = holder.begin_with("BEGIN IMMEDIATE").await.unwrap();
            // The holder has the lock again: the waiter's write is visible
            // if it took the lock in the pause.
            got_in = sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'waiter_was_here'",
            )
            .fetch_one(&mut *tx)
            .await
            .unwrap()
                == 1;
        }
        tx.commit().await.unwrap();
        waiter.await.unwrap();
        // SQLite's own handler sleeps 100 ms between late tries and kept
        // missing 5 ms pauses; Paved's tries every millisecond.
        assert!(got_in, "the waiting writer missed {pauses} pauses");
    }

    #[tokio::test]
    async fn an_empty_database_has_no_migrations_yet() {
        let pool = SqlitePool::connect("sqlite::memory:").await.unwrap();
        let mut conn = pool.acquire().await.unwrap();
        assert_eq!(applied_migrations(&mut conn).await.unwrap(), 0);
    }
}
