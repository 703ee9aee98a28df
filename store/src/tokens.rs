//! Personal API tokens (only their SHA-256 hashes) and people's access.

use paved_shared::identity::{TokenInfo, UserAccess};
use sqlx::Error;

use crate::{dual, dual_conn, Conn, Db};

/// A token to store.
#[derive(Debug, Clone, Copy)]
pub struct NewToken<'a> {
    /// Its owner.
    pub user_id: i64,
    /// Its name (unique per owner).
    pub name: &'a str,
    /// SHA-256 of the value (hex).
    pub hash: &'a str,
    /// The first characters, to recognise it in lists.
    pub prefix: &'a str,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Stores a token; returns its id (a name the owner already uses is a unique violation).
pub async fn insert(conn: Conn<'_>, token: NewToken<'_>) -> Result<i64, Error> {
    dual_conn!(conn, |c|
        sqlite: sqlx::query_scalar!(
            r#"INSERT INTO api_tokens (user_id, name, token_hash, token_prefix, created_at, expires_at)
               VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id AS "id!""#,
            token.user_id,
            token.name,
            token.hash,
            token.prefix,
            token.created_at,
            token.expires_at
        )
        .fetch_one(c)
        .await,
        postgres: sqlx::query_scalar!(
            r#"INSERT INTO api_tokens (user_id, name, token_hash, token_prefix, created_at, expires_at)
               VALUES ($1, $2, $3, $4, $5, $6) RETURNING id"#,
            token.user_id,
            token.name,
            token.hash,
            token.prefix,
            token.created_at,
            token.expires_at
        )
        .fetch_one(c)
        .await,
    )
}

/// A person's tokens, newest first.
pub async fn of_user(db: Db<'_>, user_id: i64) -> Result<Vec<TokenInfo>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_as!(
            TokenInfo,
            r#"SELECT id AS "id!", name, token_prefix AS prefix, created_at, last_used_at, revoked_at,
                      COALESCE(expires_at, created_at + 7776000) AS "expires_at!: i64"
               FROM api_tokens WHERE user_id = ?1 ORDER BY created_at DESC, id DESC"#,
            user_id
        )
        .fetch_all(pool)
        .await,
        postgres: sqlx::query_as!(
            TokenInfo,
            r#"SELECT id, name, token_prefix AS prefix, created_at, last_used_at, revoked_at,
                      COALESCE(expires_at, created_at + 7776000) AS "expires_at!"
               FROM api_tokens WHERE user_id = $1 ORDER BY created_at DESC, id DESC"#,
            user_id
        )
        .fetch_all(pool)
        .await,
    )
}

/// Every person with how many tokens still work at `now`, by name.
pub async fn people(db: Db<'_>, now: i64) -> Result<Vec<UserAccess>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_as!(
            UserAccess,
            r#"SELECT u.id AS "id!", u.subject, u.display_name, u.last_login_at, u.disabled_at,
                      (SELECT COUNT(*) FROM api_tokens t WHERE t.user_id = u.id AND t.revoked_at IS NULL
                          AND COALESCE(t.expires_at, 0) > ?1) AS "active_tokens!: i64"
               FROM users u ORDER BY u.display_name, u.id"#,
            now
        )
        .fetch_all(pool)
        .await,
        postgres: sqlx::query_as!(
            UserAccess,
            r#"SELECT u.id, u.subject, u.display_name, u.last_login_at, u.disabled_at,
                      (SELECT COUNT(*) FROM api_tokens t WHERE t.user_id = u.id AND t.revoked_at IS NULL
                          AND COALESCE(t.expires_at, 0) > $1) AS "active_tokens!"
               FROM users u ORDER BY u.display_name COLLATE "C", u.id"#,
            now
        )
        .fetch_all(pool)
        .await,
    )
}

/// Every token that works at `now`, newest first, with its owner.
pub async fn working(db: Db<'_>, now: i64) -> Result<Vec<(i64, TokenInfo)>, Error> {
    macro_rules! info {
        ($t:ident) => {
            (
                $t.user_id,
                TokenInfo {
                    id: $t.id,
                    name: $t.name,
                    prefix: $t.prefix,
                    created_at: $t.created_at,
                    last_used_at: $t.last_used_at,
                    revoked_at: $t.revoked_at,
                    expires_at: $t.expires_at,
                },
            )
        };
    }
    dual!(db, |pool|
        sqlite: sqlx::query!(
            r#"SELECT user_id, id AS "id!", name, token_prefix AS prefix, created_at, last_used_at, revoked_at,
                      expires_at AS "expires_at!: i64"
               FROM api_tokens WHERE revoked_at IS NULL AND COALESCE(expires_at, 0) > ?1
               ORDER BY created_at DESC, id DESC"#,
            now
        )
        .fetch_all(pool)
        .await
        .map(|rows| rows.into_iter().map(|t| info!(t)).collect()),
        postgres: sqlx::query!(
            r#"SELECT user_id, id, name, token_prefix AS prefix, created_at, last_used_at, revoked_at,
                      expires_at AS "expires_at!"
               FROM api_tokens WHERE revoked_at IS NULL AND COALESCE(expires_at, 0) > $1
               ORDER BY created_at DESC, id DESC"#,
            now
        )
        .fetch_all(pool)
        .await
        .map(|rows| rows.into_iter().map(|t| info!(t)).collect()),
    )
}

/// Sets when a person was disabled (`None`: enabled); whether they exist.
pub async fn set_disabled(conn: Conn<'_>, user_id: i64, at: Option<i64>) -> Result<bool, Error> {
    dual_conn!(conn, |c|
        sqlite: sqlx::query!("UPDATE users SET disabled_at = ?2 WHERE id = ?1", user_id, at)
            .execute(c)
            .await
            .map(|r| r.rows_affected() > 0),
        postgres: sqlx::query!("UPDATE users SET disabled_at = $2 WHERE id = $1", user_id, at)
            .execute(c)
            .await
            .map(|r| r.rows_affected() > 0),
    )
}

/// Revokes token `id` if it is active (and `owner`'s, when given); whether it was.
pub async fn revoke(conn: Conn<'_>, id: i64, owner: Option<i64>, now: i64) -> Result<bool, Error> {
    dual_conn!(conn, |c|
        sqlite: sqlx::query!(
            "UPDATE api_tokens SET revoked_at = ?3 WHERE id = ?1 AND (?2 IS NULL OR user_id = ?2) AND revoked_at IS NULL",
            id,
            owner,
            now
        )
        .execute(c)
        .await
        .map(|r| r.rows_affected() > 0),
        postgres: sqlx::query!(
            "UPDATE api_tokens SET revoked_at = $3 WHERE id = $1 AND ($2::BIGINT IS NULL OR user_id = $2) AND revoked_at IS NULL",
            id,
            owner,
            now
        )
        .execute(c)
        .await
        .map(|r| r.rows_affected() > 0),
    )
}

/// A working token found by its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoundToken {
    /// Its id.
    pub id: i64,
    /// Its owner.
    pub user_id: i64,
    /// When it was last used (unix seconds).
    pub last_used_at: Option<i64>,
}

/// The token with this hash if it works at `now`: not revoked, not expired,
/// its owner not disabled and signed in since `active_since`.
pub async fn find_working(
    db: Db<'_>,
    hash: &str,
    now: i64,
    active_since: i64,
) -> Result<Option<FoundToken>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_as!(
            FoundToken,
            r#"SELECT t.id AS "id!", t.user_id, t.last_used_at FROM api_tokens t JOIN users u ON u.id = t.user_id
               WHERE t.token_hash = ?1 AND t.revoked_at IS NULL AND COALESCE(t.expires_at, 0) > ?2
                 AND u.disabled_at IS NULL AND COALESCE(u.last_login_at, 0) >= ?3"#,
            hash,
            now,
            active_since
        )
        .fetch_optional(pool)
        .await,
        postgres: sqlx::query_as!(
            FoundToken,
            r#"SELECT t.id, t.user_id, t.last_used_at FROM api_tokens t JOIN users u ON u.id = t.user_id
               WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND COALESCE(t.expires_at, 0) > $2
                 AND u.disabled_at IS NULL AND COALESCE(u.last_login_at, 0) >= $3"#,
            hash,
            now,
            active_since
        )
        .fetch_optional(pool)
        .await,
    )
}

/// Records that a token was used at `now`.
pub async fn touch(db: Db<'_>, id: i64, now: i64) -> Result<(), Error> {
    dual!(db, |pool|
        sqlite: sqlx::query!("UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1", id, now)
            .execute(pool)
            .await
            .map(drop),
        postgres: sqlx::query!("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1", id, now)
            .execute(pool)
            .await
            .map(drop),
    )
}
