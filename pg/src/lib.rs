//! Paved on PostgreSQL: what a fleet of Paved replicas must share, each
//! store checked at compile time against its own Postgres schema
//! (`migrations/postgres/`, offline data in `.sqlx/` beside SQLite's).
//!
//! Today this holds the LLM budget ledger ([`ledger::SharedLedger`]), whose
//! budget rows are the fleet's single truth, so N replicas never admit more
//! than a budget's limit between them.

pub mod ledger;

use sqlx::postgres::PgPool;

/// Paved's PostgreSQL migrations (kept with the crate, embedded by
/// `paved-core`, whose storage runs on both backends).
pub use paved_core::db::POSTGRES_MIGRATOR as MIGRATOR;

/// Fresh databases on the test cluster.
pub use paved_core::db::postgres_testing as testing;

/// A pool on `url` (`postgres://…`) with the schema migrated.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    paved_core::db::connect_postgres(url, max_connections).await
}
