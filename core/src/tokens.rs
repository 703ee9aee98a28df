//! Personal API tokens: shown once at creation, stored only as a SHA-256
//! hash, revocable, with a last-used time.

use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;

use crate::auth::{authorize, Action, Principal};
use crate::{audit, now_unix, CoreError};

/// Every personal token starts with this, so secret scanners can spot leaks.
pub const TOKEN_PREFIX: &str = "pvd_";

/// A freshly created token. The value is only ever returned here, once.
pub struct NewToken {
    /// The token's row id.
    pub id: i64,
    /// The token value (to show the user once).
    pub value: SecretString,
}

/// A token as listed (never the value).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Row id.
    pub id: i64,
    /// The label the user gave it.
    pub name: String,
    /// The first characters, to recognise it.
    pub prefix: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds, if ever used.
    pub last_used_at: Option<i64>,
    /// Unix seconds, if revoked.
    pub revoked_at: Option<i64>,
}

/// The SHA-256 of a token, hex-encoded: what the database keeps.
pub fn hash_token(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

fn generate_value() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// Creates a token named `name` for the caller.
pub async fn create(
    pool: &SqlitePool,
    caller: &Principal,
    name: &str,
) -> Result<NewToken, CoreError> {
    authorize(caller, Action::ManageOwnTokens)?;
    let user_id = caller.user_id.ok_or(CoreError::Unauthenticated)?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 80 {
        return Err(CoreError::Invalid {
            field: "name",
            message: "give the token a name of 1 to 80 characters".into(),
        });
    }
    let value = generate_value();
    let hash = hash_token(&value);
    let prefix: String = value.chars().take(TOKEN_PREFIX.len() + 6).collect();
    let now = now_unix();
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let id = sqlx::query_scalar!(
        r#"INSERT INTO api_tokens (user_id, name, token_hash, token_prefix, created_at)
           VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id AS "id!""#,
        user_id,
        name,
        hash,
        prefix,
        now
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| match CoreError::from(e) {
        CoreError::Conflict(_) => {
            CoreError::Conflict(format!("you already have a token named “{name}”"))
        }
        other => other,
    })?;
    audit::record(
        &mut *tx,
        &caller.actor(),
        "token.create",
        &format!("token:{id}"),
        None,
        Some(json!({ "name": name, "prefix": prefix })),
    )
    .await?;
    tx.commit().await?;
    Ok(NewToken {
        id,
        value: SecretString::from(value),
    })
}

/// The caller's tokens, newest first.
pub async fn list_own(pool: &SqlitePool, caller: &Principal) -> Result<Vec<TokenInfo>, CoreError> {
    authorize(caller, Action::ManageOwnTokens)?;
    let user_id = caller.user_id.ok_or(CoreError::Unauthenticated)?;
    Ok(sqlx::query_as!(
        TokenInfo,
        r#"SELECT id AS "id!", name, token_prefix AS prefix, created_at, last_used_at, revoked_at
           FROM api_tokens WHERE user_id = ?1 ORDER BY created_at DESC, id DESC"#,
        user_id
    )
    .fetch_all(pool)
    .await?)
}

/// Revokes one of the caller's tokens. Another user's token is "not found".
pub async fn revoke(pool: &SqlitePool, caller: &Principal, id: i64) -> Result<(), CoreError> {
    authorize(caller, Action::ManageOwnTokens)?;
    let user_id = caller.user_id.ok_or(CoreError::Unauthenticated)?;
    let now = now_unix();
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let revoked = sqlx::query!(
        "UPDATE api_tokens SET revoked_at = ?3 WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
        id,
        user_id,
        now
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if revoked == 0 {
        return Err(CoreError::NotFound("active token".into()));
    }
    audit::record(
        &mut *tx,
        &caller.actor(),
        "token.revoke",
        &format!("token:{id}"),
        Some(json!({ "revoked": false })),
        Some(json!({ "revoked": true })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// How often a token's `last_used_at` is written at most: every request
/// would otherwise turn a read into a write.
pub const LAST_USED_RESOLUTION_SECS: i64 = 60;

/// Looks up an active personal token and records its use (to the minute).
/// Returns the owner's user id.
pub async fn authenticate(
    pool: &SqlitePool,
    presented: &SecretString,
) -> Result<Option<i64>, CoreError> {
    let presented = presented.expose_secret();
    if !presented.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    let hash = hash_token(presented);
    let Some(token) = sqlx::query!(
        "SELECT id, user_id, last_used_at FROM api_tokens WHERE token_hash = ?1 AND revoked_at IS NULL",
        hash
    )
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let now = now_unix();
    if token
        .last_used_at
        .is_none_or(|t| now - t >= LAST_USED_RESOLUTION_SECS)
    {
        sqlx::query!(
            "UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1",
            token.id,
            now
        )
        .execute(pool)
        .await?;
    }
    Ok(Some(token.user_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{AuthMethod, Grants, TeamRole};
    use crate::identity::{self, SignIn};

    async fn user(pool: &SqlitePool, subject: &str) -> Principal {
        let id = identity::upsert_from_sign_in(
            pool,
            &SignIn {
                subject: subject.into(),
                email: None,
                name: None,
                grants: Grants {
                    teams: [("payments".to_string(), TeamRole::Member)].into(),
                    ..Default::default()
                },
            },
        )
        .await
        .unwrap();
        identity::load_principal(pool, id, AuthMethod::Session)
            .await
            .unwrap()
            .unwrap()
    }

    #[test]
    fn hashing_is_stable_and_hides_the_value() {
        let h = hash_token("pvd_abc");
        assert_eq!(h.len(), 64);
        assert_eq!(h, hash_token("pvd_abc"));
        assert_ne!(h, hash_token("pvd_abd"));
        assert!(!h.contains("abc"));
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn token_lifecycle(pool: SqlitePool) {
        let ada = user(&pool, "ada").await;
        let token = create(&pool, &ada, "ci laptop").await.unwrap();
        let value = token.value.expose_secret().to_string();
        assert!(value.starts_with(TOKEN_PREFIX));

        // Only the hash is stored.
        let stored: String = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(stored, hash_token(&value));

        assert_eq!(
            authenticate(&pool, &token.value).await.unwrap(),
            ada.user_id
        );
        let listed = list_own(&pool, &ada).await.unwrap();
        assert!(listed[0].last_used_at.is_some());
        assert!(value.starts_with(&listed[0].prefix));

        revoke(&pool, &ada, token.id).await.unwrap();
        assert_eq!(authenticate(&pool, &token.value).await.unwrap(), None);
        assert!(matches!(
            revoke(&pool, &ada, token.id).await,
            Err(CoreError::NotFound(_))
        ));
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn names_are_validated_and_unique_per_user(pool: SqlitePool) {
        let ada = user(&pool, "ada").await;
        assert!(matches!(
            create(&pool, &ada, "  ").await,
            Err(CoreError::Invalid { field: "name", .. })
        ));
        create(&pool, &ada, "ci").await.unwrap();
        let err = create(&pool, &ada, "ci").await.err().unwrap();
        assert_eq!(err.status_code(), 409);
        let bo = user(&pool, "bo").await;
        create(&pool, &bo, "ci").await.unwrap();
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn nobody_revokes_another_users_token(pool: SqlitePool) {
        let ada = user(&pool, "ada").await;
        let bo = user(&pool, "bo").await;
        let token = create(&pool, &ada, "mine").await.unwrap();
        assert!(matches!(
            revoke(&pool, &bo, token.id).await,
            Err(CoreError::NotFound(_))
        ));
        assert!(authenticate(&pool, &token.value).await.unwrap().is_some());
        assert!(
            authenticate(&pool, &SecretString::from("pvd_forged".to_string()))
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            authenticate(&pool, &SecretString::from("other".to_string()))
                .await
                .unwrap()
                .is_none()
        );
    }
}
