//! Gateway keys (only their SHA-256 hashes).

use paved_shared::budgets::GatewayKeyInfo;
use sqlx::Error;

use crate::{dual, dual_conn, Conn, Db};

/// A key to store.
#[derive(Debug, Clone, Copy)]
pub struct NewKey<'a> {
    /// The team that pays.
    pub team: &'a str,
    /// The workspace it is bound to, if any.
    pub workspace: Option<&'a str>,
    /// Its name.
    pub name: &'a str,
    /// SHA-256 of the key (hex).
    pub hash: &'a str,
    /// The first characters, to recognise it in lists.
    pub prefix: &'a str,
    /// Who created it (audit actor).
    pub created_by: &'a str,
    /// Unix seconds.
    pub created_at: i64,
}

/// Stores a key; returns its id.
pub async fn insert(conn: Conn<'_>, key: NewKey<'_>) -> Result<i64, Error> {
    dual_conn!(conn, |c|
        sqlite: sqlx::query_scalar!(
            r#"INSERT INTO llm_gateway_keys (team, workspace_id, name, key_hash, key_prefix, created_by, created_at)
               VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id AS "id!: i64""#,
            key.team,
            key.workspace,
            key.name,
            key.hash,
            key.prefix,
            key.created_by,
            key.created_at
        )
        .fetch_one(c)
        .await,
        postgres: sqlx::query_scalar!(
            r#"INSERT INTO llm_gateway_keys (team, workspace_id, name, key_hash, key_prefix, created_by, created_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id"#,
            key.team,
            key.workspace,
            key.name,
            key.hash,
            key.prefix,
            key.created_by,
            key.created_at
        )
        .fetch_one(c)
        .await,
    )
}

/// A team's keys, newest first.
pub async fn list(db: Db<'_>, team: &str) -> Result<Vec<GatewayKeyInfo>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_as!(
            GatewayKeyInfo,
            r#"SELECT id AS "id!: i64", team, workspace_id, name, key_prefix AS prefix, created_by, created_at, last_used_at, revoked_at
               FROM llm_gateway_keys WHERE team = ?1 ORDER BY created_at DESC, id DESC"#,
            team
        )
        .fetch_all(pool)
        .await,
        postgres: sqlx::query_as!(
            GatewayKeyInfo,
            r#"SELECT id, team, workspace_id, name, key_prefix AS prefix, created_by, created_at, last_used_at, revoked_at
               FROM llm_gateway_keys WHERE team = $1 ORDER BY created_at DESC, id DESC"#,
            team
        )
        .fetch_all(pool)
        .await,
    )
}

/// A key of `team` by id: its hash and when it was revoked (locked for the
/// transaction on PostgreSQL).
pub async fn find_for_update(
    conn: Conn<'_>,
    id: i64,
    team: &str,
) -> Result<Option<(String, Option<i64>)>, Error> {
    dual_conn!(conn, |c|
        sqlite: sqlx::query!(
            "SELECT key_hash, revoked_at FROM llm_gateway_keys WHERE id = ?1 AND team = ?2",
            id,
            team
        )
        .fetch_optional(c)
        .await
        .map(|r| r.map(|r| (r.key_hash, r.revoked_at))),
        postgres: sqlx::query!(
            "SELECT key_hash, revoked_at FROM llm_gateway_keys WHERE id = $1 AND team = $2 FOR UPDATE",
            id,
            team
        )
        .fetch_optional(c)
        .await
        .map(|r| r.map(|r| (r.key_hash, r.revoked_at))),
    )
}

/// Marks a key revoked at `now` (unix seconds).
pub async fn revoke(conn: Conn<'_>, id: i64, now: i64) -> Result<(), Error> {
    dual_conn!(conn, |c|
        sqlite: sqlx::query!("UPDATE llm_gateway_keys SET revoked_at = ?2 WHERE id = ?1", id, now)
            .execute(c)
            .await
            .map(drop),
        postgres: sqlx::query!("UPDATE llm_gateway_keys SET revoked_at = $2 WHERE id = $1", id, now)
            .execute(c)
            .await
            .map(drop),
    )
}

/// An active key's id, name, team and workspace, by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveKey {
    /// Row id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// The team that pays.
    pub team: String,
    /// The workspace it is bound to, if any.
    pub workspace_id: Option<String>,
}

/// The key with this hash, unless unknown or revoked.
pub async fn active_by_hash(db: Db<'_>, hash: &str) -> Result<Option<ActiveKey>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_as!(
            ActiveKey,
            r#"SELECT id AS "id!: i64", name, team, workspace_id FROM llm_gateway_keys WHERE key_hash = ?1 AND revoked_at IS NULL"#,
            hash
        )
        .fetch_optional(pool)
        .await,
        postgres: sqlx::query_as!(
            ActiveKey,
            "SELECT id, name, team, workspace_id FROM llm_gateway_keys WHERE key_hash = $1 AND revoked_at IS NULL",
            hash
        )
        .fetch_optional(pool)
        .await,
    )
}
