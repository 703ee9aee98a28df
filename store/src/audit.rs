//! The audit log.

use paved_shared::identity::AuditEntry;
use sqlx::Error;

use crate::{dual, dual_conn, Conn, Db};

/// Appends one entry (pass a transaction's connection, so the entry
/// commits with the change it records).
#[allow(clippy::too_many_arguments)]
pub async fn insert(
    conn: Conn<'_>,
    at: i64,
    actor: &str,
    action: &str,
    target: &str,
    before: Option<String>,
    after: Option<String>,
) -> Result<(), Error> {
    dual_conn!(conn, |c|
        sqlite: sqlx::query!(
            "INSERT INTO audit_log (at, actor, action, target, before_json, after_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            at,
            actor,
            action,
            target,
            before,
            after
        )
        .execute(c)
        .await
        .map(drop),
        postgres: sqlx::query!(
            "INSERT INTO audit_log (at, actor, action, target, before_json, after_json) VALUES ($1, $2, $3, $4, $5, $6)",
            at,
            actor,
            action,
            target,
            before,
            after
        )
        .execute(c)
        .await
        .map(drop),
    )
}

/// Entries newest first, skipping `offset`, at most `limit`, and how many
/// there are in all.
pub async fn page(db: Db<'_>, offset: i64, limit: i64) -> Result<(Vec<AuditEntry>, i64), Error> {
    let entries = dual!(db, |pool|
        sqlite: sqlx::query_as!(
            AuditEntry,
            r#"SELECT id AS "id!", at, actor, action, target, before_json AS before, after_json AS after
               FROM audit_log ORDER BY at DESC, id DESC LIMIT ?1 OFFSET ?2"#,
            limit,
            offset
        )
        .fetch_all(pool)
        .await,
        postgres: sqlx::query_as!(
            AuditEntry,
            r#"SELECT id, at, actor, action, target, before_json AS before, after_json AS after
               FROM audit_log ORDER BY at DESC, id DESC LIMIT $1 OFFSET $2"#,
            limit,
            offset
        )
        .fetch_all(pool)
        .await,
    )?;
    let total = dual!(db, |pool|
        sqlite: sqlx::query_scalar!(r#"SELECT COUNT(*) AS "n!: i64" FROM audit_log"#)
            .fetch_one(pool)
            .await,
        postgres: sqlx::query_scalar!(r#"SELECT COUNT(*) AS "n!" FROM audit_log"#)
            .fetch_one(pool)
            .await,
    )?;
    Ok((entries, total))
}
