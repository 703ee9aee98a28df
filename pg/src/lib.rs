//! Paved on PostgreSQL: what a fleet of Paved replicas must share, each
//! store checked at compile time against its own Postgres schema
//! (`migrations/postgres/`, offline data in `.sqlx/` beside SQLite's).
//!
//! Today this holds the LLM budget ledger ([`ledger::SharedLedger`]), whose
//! budget rows are the fleet's single truth, so N replicas never admit more
//! than a budget's limit between them.

pub mod ledger;

/// Paved's PostgreSQL migrations (`migrations/postgres/`, embedded by
/// `paved-store`, whose storage runs on both backends), a migrated pool, and
/// fresh databases on the test cluster.
pub use paved_core::db::{
    connect_postgres as connect, postgres_testing as testing, POSTGRES_MIGRATOR as MIGRATOR,
};
