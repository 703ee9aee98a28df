//! Storage that runs on both of Paved's databases: SQLite, the embedded
//! default, and PostgreSQL, which several replicas share.
//!
//! Each function takes a [`Db`] (a borrowed pool of either backend) and
//! writes its statement once per backend with [`dual!`]: both are checked at
//! compile time, each against its own schema (`migrations/` and
//! `migrations/postgres/`), with offline data in `.sqlx/`. This crate holds
//! nothing but such statements, so `scripts/sqlx-prepare.sh` can compile it
//! once per backend (`--cfg paved_sqlx_only=…`) against that backend's
//! database; the domain (`paved-core`) keeps the rules and maps errors.

use std::str::FromStr;

use sqlx::SqlitePool;

pub mod audit;
pub mod budgets;
pub mod bus;
pub mod gateway_keys;
pub mod kube;
pub mod leader;
pub mod notifications;
pub mod policy;
pub mod prices;
pub mod scaffold_tasks;
pub mod secrets;
pub mod teams;
pub mod tokens;
pub mod users;

/// Paved's PostgreSQL migrations (`migrations/postgres/`). sqlx holds a session
/// advisory lock while it migrates, so replicas starting together apply each
/// migration once.
pub static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// A pool of either backend, borrowed: storage functions that run on both
/// take `impl Into<Db<'_>>`, so callers pass `&SqlitePool` or `&PgPool`.
#[derive(Clone, Copy, Debug)]
pub enum Db<'a> {
    /// The embedded default (one process).
    Sqlite(&'a SqlitePool),
    /// Shared by several replicas.
    Postgres(&'a sqlx::PgPool),
}

impl<'a> From<&'a SqlitePool> for Db<'a> {
    fn from(pool: &'a SqlitePool) -> Self {
        Db::Sqlite(pool)
    }
}

impl<'a> From<&'a sqlx::PgPool> for Db<'a> {
    fn from(pool: &'a sqlx::PgPool) -> Self {
        Db::Postgres(pool)
    }
}

/// Runs the arm for the backend `db` (a [`Db`]) is on, its pool bound to
/// `pool`: each arm holds that backend's statement, so both are checked at
/// compile time against their own schema (the texts must differ, since sqlx
/// keeps offline data by the statement's text; placeholders already do:
/// `?1` and `$1`). `scripts/sqlx-prepare.sh` compiles one backend's arms at a
/// time (`--cfg paved_sqlx_only=…`), each against its own database.
///
/// ```ignore
/// let n = paved_store::dual!(db, |pool|
///     sqlite: sqlx::query_scalar!("SELECT COUNT(*) FROM teams").fetch_one(pool).await,
///     postgres: sqlx::query_scalar!("SELECT COUNT(*) AS \"n!\" FROM teams").fetch_one(pool).await)?;
/// ```
#[macro_export]
macro_rules! dual {
    ($db:expr, |$pool:ident| sqlite: $sqlite:expr, postgres: $postgres:expr $(,)?) => {
        match $crate::Db::from($db) {
            #[cfg(not(paved_sqlx_only = "postgres"))]
            $crate::Db::Sqlite($pool) => $sqlite,
            #[cfg(not(paved_sqlx_only = "sqlite"))]
            $crate::Db::Postgres($pool) => $postgres,
            #[allow(unreachable_patterns)]
            _ => unreachable!("built to check one backend's statements only"),
        }
    };
}

impl<'a> Db<'a> {
    /// Begins a transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so concurrent writers queue instead of failing on
    /// a snapshot conflict; on PostgreSQL rows are locked as they are written.
    pub async fn begin(self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// Takes one connection from the pool, for a statement that takes a
    /// [`Conn`] but needs no transaction.
    pub async fn acquire(self) -> Result<PoolConn, sqlx::Error> {
        Ok(match self {
            Db::Sqlite(pool) => PoolConn::Sqlite(pool.acquire().await?),
            Db::Postgres(pool) => PoolConn::Postgres(pool.acquire().await?),
        })
    }
}

/// A connection taken from a pool of either backend (given back when dropped).
#[derive(Debug)]
pub enum PoolConn {
    /// SQLite.
    Sqlite(sqlx::pool::PoolConnection<sqlx::Sqlite>),
    /// PostgreSQL.
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
}

impl PoolConn {
    /// The connection, for one statement.
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            PoolConn::Sqlite(c) => Conn::Sqlite(c),
            PoolConn::Postgres(c) => Conn::Postgres(c),
        }
    }
}

/// A connection of either backend, borrowed (a transaction's, usually:
/// pass `&mut *tx`).
#[derive(Debug)]
pub enum Conn<'c> {
    /// SQLite.
    Sqlite(&'c mut sqlx::SqliteConnection),
    /// PostgreSQL.
    Postgres(&'c mut sqlx::PgConnection),
}

impl Conn<'_> {
    /// The same connection for one more statement (a `Conn` is moved into
    /// each call).
    pub fn reborrow(&mut self) -> Conn<'_> {
        match self {
            Conn::Sqlite(c) => Conn::Sqlite(c),
            Conn::Postgres(c) => Conn::Postgres(c),
        }
    }
}

impl<'c> From<&'c mut sqlx::SqliteConnection> for Conn<'c> {
    fn from(conn: &'c mut sqlx::SqliteConnection) -> Self {
        Conn::Sqlite(conn)
    }
}

impl<'c> From<&'c mut sqlx::PgConnection> for Conn<'c> {
    fn from(conn: &'c mut sqlx::PgConnection) -> Self {
        Conn::Postgres(conn)
    }
}

/// A transaction of either backend.
#[derive(Debug)]
pub enum Tx {
    /// SQLite.
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    /// PostgreSQL.
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Tx {
    /// The transaction's connection, for statements inside it.
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Tx::Sqlite(tx) => Conn::Sqlite(tx),
            Tx::Postgres(tx) => Conn::Postgres(tx),
        }
    }

    /// Commits it.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await,
            Tx::Postgres(tx) => tx.commit().await,
        }
    }
}

/// [`dual!`] for a connection ([`Conn`], or anything that converts into one):
/// runs the arm for its backend with the connection bound to `conn`.
#[macro_export]
macro_rules! dual_conn {
    ($conn:expr, |$c:ident| sqlite: $sqlite:expr, postgres: $postgres:expr $(,)?) => {
        match $crate::Conn::from($conn) {
            #[cfg(not(paved_sqlx_only = "postgres"))]
            $crate::Conn::Sqlite($c) => $sqlite,
            #[cfg(not(paved_sqlx_only = "sqlite"))]
            $crate::Conn::Postgres($c) => $postgres,
            #[allow(unreachable_patterns)]
            _ => unreachable!("built to check one backend's statements only"),
        }
    };
}

/// Applies the PostgreSQL migrations `url`'s database lacks, on one
/// connection, and answers how many it recorded before and after.
pub async fn migrate_postgres(url: &str) -> Result<(i64, i64), sqlx::Error> {
    use sqlx::Connection;
    let options =
        sqlx::postgres::PgConnectOptions::from_str(url)?.application_name("paved migrate");
    let mut conn = sqlx::PgConnection::connect_with(&options).await?;
    let before = applied_postgres_migrations(&mut conn).await?;
    POSTGRES_MIGRATOR.run(&mut conn).await?;
    let after = applied_postgres_migrations(&mut conn).await?;
    conn.close().await?;
    Ok((before, after))
}

/// Migrations the database records as applied (none before the first).
async fn applied_postgres_migrations(conn: &mut sqlx::PgConnection) -> Result<i64, sqlx::Error> {
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::TEXT")
        .fetch_one(&mut *conn)
        .await?;
    if table.is_none() {
        return Ok(0);
    }
    sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut *conn)
        .await
}

/// Opens a PostgreSQL pool on `url` (`postgres://…`) with the schema migrated.
pub async fn connect_postgres(
    url: &str,
    max_connections: u32,
) -> Result<sqlx::PgPool, sqlx::Error> {
    let options = sqlx::postgres::PgConnectOptions::from_str(url)?.application_name("paved");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(max_connections)
        .connect_with(options)
        .await?;
    POSTGRES_MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// Fresh PostgreSQL databases on the test cluster, for tests of any crate
/// that run against PostgreSQL.
pub mod postgres_testing {
    use sqlx::postgres::{PgConnectOptions, PgPool};
    use sqlx::{ConnectOptions, Connection};
    use std::str::FromStr;

    /// The variable the test command sets to its throwaway cluster's URL.
    pub const URL_VARIABLE: &str = "PAVED_TEST_POSTGRES_URL";

    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

    /// The cluster's URL. Without it a test is skipped with a message,
    /// except in CI (`CI=true`), where the test command always starts one
    /// and a missing URL is a failure rather than a silent pass.
    pub fn cluster_url() -> Option<String> {
        match std::env::var(URL_VARIABLE) {
            Ok(url) if !url.is_empty() => Some(url),
            _ if std::env::var("CI").as_deref() == Ok("true") => {
                panic!("{URL_VARIABLE} is not set: scripts/test.sh starts PostgreSQL and sets it")
            }
            _ => {
                eprintln!("skipped: {URL_VARIABLE} is not set (scripts/test.sh sets it)");
                None
            }
        }
    }

    /// Creates an empty database with a unique name and returns its URL.
    pub async fn fresh_database(prefix: &str) -> Option<String> {
        let url = cluster_url()?;
        let options = PgConnectOptions::from_str(&url).expect("a valid PostgreSQL URL");
        let name = format!(
            "{prefix}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let mut admin = options.connect().await.expect("the test cluster answers");
        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\""))
            .execute(&mut admin)
            .await
            .expect("drop an old test database");
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .expect("create a test database");
        admin.close().await.ok();
        Some(options.database(&name).to_url_lossy().to_string())
    }

    /// A fresh, migrated database's URL and pool (`None` when skipped).
    pub async fn fresh_pool(prefix: &str, max_connections: u32) -> Option<(String, PgPool)> {
        let url = fresh_database(prefix).await?;
        let pool = super::connect_postgres(&url, max_connections)
            .await
            .expect("migrate a test database");
        Some((url, pool))
    }
}
