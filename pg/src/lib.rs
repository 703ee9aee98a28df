//! Paved on PostgreSQL: what a fleet of Paved replicas must share, each
//! store checked at compile time against its own Postgres schema
//! (`pg/migrations/`, offline data in `.sqlx/` beside SQLite's).
//!
//! Today this holds the LLM budget ledger ([`ledger::SharedLedger`]), whose
//! budget rows are the fleet's single truth, so N replicas never admit more
//! than a budget's limit between them.

pub mod ledger;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;

/// Paved's PostgreSQL migrations. sqlx holds a session advisory lock while it
/// migrates, so replicas starting together apply each migration once.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// A pool on `url` (`postgres://…`) with the schema migrated.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?.application_name("paved");
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .connect_with(options)
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// Fresh databases on the test cluster, for this crate's tests and any other
/// crate's that run against PostgreSQL.
pub mod testing {
    use sqlx::postgres::{PgConnectOptions, PgPool};
    use sqlx::{ConnectOptions, Connection};
    use std::str::FromStr;

    /// The variable the test command sets to its throwaway cluster's URL.
    pub const URL_VARIABLE: &str = "PAVED_TEST_POSTGRES_URL";

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

    /// Creates an empty database with a unique name and returns its URL
    /// (not migrated: [`crate::connect`] migrates).
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
        let url = options.database(&name).to_url_lossy().to_string();
        Some(url)
    }

    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

    /// A fresh, migrated database's pool (`None` when skipped, see [`cluster_url`]).
    pub async fn fresh_pool(prefix: &str, max_connections: u32) -> Option<(String, PgPool)> {
        let url = fresh_database(prefix).await?;
        let pool = crate::connect(&url, max_connections)
            .await
            .expect("migrate a test database");
        Some((url, pool))
    }
}
