//! Personal API tokens: shown once at creation, stored only as a SHA-256
//! hash, revocable, with a last-used time and an expiry. A token stops
//! working when it expires, when it is revoked (by its owner or a platform
//! admin), when its owner is disabled, and while its owner has not signed in
//! for `PAVED_TOKEN_INACTIVE_DAYS` (it acts with the roles of the last sign-in,
//! so it must not outlive the person's access at the identity provider).

use paved_store::{tokens as stored, Db};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::auth::{authorize, Action, Principal};
use crate::config::TokenLimits;
use crate::{audit, now_unix, CoreError};
pub use paved_shared::identity::{PersonAccess, TokenInfo, UserAccess};

/// Every personal token starts with this, so secret scanners can spot leaks.
pub const TOKEN_PREFIX: &str = "pvd_";

/// A freshly created token. The value is only ever returned here, once.
pub struct NewToken {
    /// The token's row id.
    pub id: i64,
    /// The token value (to show the user once).
    pub value: SecretString,
    /// Unix seconds: when it stops working.
    pub expires_at: i64,
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

const DAY: i64 = 86_400;

/// Creates a token named `name` for the caller, living `days` (the
/// configured default when `None`, at most the configured maximum).
pub async fn create(
    db: impl Into<Db<'_>>,
    caller: &Principal,
    name: &str,
    days: Option<u32>,
    limits: &TokenLimits,
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
    let days = days.unwrap_or(limits.default_days);
    if !(1..=limits.max_days).contains(&days) {
        return Err(CoreError::Invalid {
            field: "days",
            message: format!("a token lives 1 to {} days", limits.max_days),
        });
    }
    let value = generate_value();
    let hash = hash_token(&value);
    let prefix: String = value.chars().take(TOKEN_PREFIX.len() + 6).collect();
    let now = now_unix();
    let expires_at = now + i64::from(days) * DAY;
    let mut tx = db.into().begin().await?;
    let id = stored::insert(
        tx.conn(),
        stored::NewToken {
            user_id,
            name,
            hash: &hash,
            prefix: &prefix,
            created_at: now,
            expires_at,
        },
    )
    .await
    .map_err(|e| match CoreError::from(e) {
        CoreError::Conflict(_) => {
            CoreError::Conflict(format!("you already have a token named “{name}”"))
        }
        other => other,
    })?;
    audit::record(
        tx.conn(),
        &caller.actor(),
        "token.create",
        &format!("token:{id}"),
        None,
        Some(json!({ "name": name, "prefix": prefix, "expires_at": expires_at })),
    )
    .await?;
    tx.commit().await?;
    Ok(NewToken {
        id,
        value: SecretString::from(value),
        expires_at,
    })
}

/// The caller's tokens, newest first.
pub async fn list_own(
    db: impl Into<Db<'_>>,
    caller: &Principal,
) -> Result<Vec<TokenInfo>, CoreError> {
    authorize(caller, Action::ManageOwnTokens)?;
    let user_id = caller.user_id.ok_or(CoreError::Unauthenticated)?;
    Ok(stored::of_user(db.into(), user_id).await?)
}

/// Every person with their access (platform admins).
pub async fn list_users(
    db: impl Into<Db<'_>>,
    caller: &Principal,
) -> Result<Vec<UserAccess>, CoreError> {
    authorize(caller, Action::AdministerPlatform)?;
    Ok(stored::people(db.into(), now_unix()).await?)
}

/// Every person with the tokens that still work, for the admins' access
/// page (platform admins): two queries whatever the number of people.
pub async fn access_overview(
    db: impl Into<Db<'_>>,
    caller: &Principal,
) -> Result<Vec<PersonAccess>, CoreError> {
    let db = db.into();
    let people = list_users(db, caller).await?;
    let mut by_user: std::collections::HashMap<i64, Vec<TokenInfo>> = Default::default();
    for (user_id, token) in stored::working(db, now_unix()).await? {
        by_user.entry(user_id).or_default().push(token);
    }
    Ok(people
        .into_iter()
        .map(|person| PersonAccess {
            tokens: by_user.remove(&person.id).unwrap_or_default(),
            person,
        })
        .collect())
}

/// Any person's tokens (platform admins).
pub async fn list_for_user(
    db: impl Into<Db<'_>>,
    caller: &Principal,
    user_id: i64,
) -> Result<Vec<TokenInfo>, CoreError> {
    authorize(caller, Action::AdministerPlatform)?;
    Ok(stored::of_user(db.into(), user_id).await?)
}

/// Revokes any person's token (platform admins).
pub async fn revoke_any(
    db: impl Into<Db<'_>>,
    caller: &Principal,
    id: i64,
) -> Result<(), CoreError> {
    authorize(caller, Action::AdministerPlatform)?;
    revoke_token(db.into(), caller, id, None).await
}

/// Disables or re-enables a person (platform admins): their sessions and
/// tokens stop, or work again, from their next request on every replica
/// (the cached principal is dropped here and the others are told), and
/// signing in again does not bring a disabled person back. Admins cannot
/// disable themselves.
pub async fn change_access(
    core: &crate::CoreState,
    caller: &Principal,
    user_id: i64,
    disabled: bool,
) -> Result<(), CoreError> {
    set_disabled(&core.db, caller, user_id, disabled).await?;
    core.principals.invalidate(user_id);
    crate::changes::publish(core, crate::changes::Change::Person { user_id }).await;
    Ok(())
}

/// [`change_access`] in the database alone.
pub async fn set_disabled(
    db: impl Into<Db<'_>>,
    caller: &Principal,
    user_id: i64,
    disabled: bool,
) -> Result<(), CoreError> {
    authorize(caller, Action::AdministerPlatform)?;
    if caller.user_id == Some(user_id) {
        return Err(CoreError::Invalid {
            field: "user",
            message: "you cannot disable yourself; ask another platform admin".into(),
        });
    }
    let now = now_unix();
    let at = disabled.then_some(now);
    let mut tx = db.into().begin().await?;
    if !stored::set_disabled(tx.conn(), user_id, at).await? {
        return Err(CoreError::NotFound(format!("user {user_id}")));
    }
    audit::record(
        tx.conn(),
        &caller.actor(),
        if disabled {
            "user.disable"
        } else {
            "user.enable"
        },
        &format!("user:{user_id}"),
        Some(json!({ "disabled": !disabled })),
        Some(json!({ "disabled": disabled })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Revokes one of the caller's tokens. Another user's token is "not found".
pub async fn revoke(db: impl Into<Db<'_>>, caller: &Principal, id: i64) -> Result<(), CoreError> {
    authorize(caller, Action::ManageOwnTokens)?;
    let user_id = caller.user_id.ok_or(CoreError::Unauthenticated)?;
    revoke_token(db.into(), caller, id, Some(user_id)).await
}

/// Revokes token `id` (only if `owner` holds it, when given) and audits it,
/// in one transaction. Callers have authorized already.
async fn revoke_token(
    db: Db<'_>,
    caller: &Principal,
    id: i64,
    owner: Option<i64>,
) -> Result<(), CoreError> {
    let now = now_unix();
    let mut tx = db.begin().await?;
    if !stored::revoke(tx.conn(), id, owner, now).await? {
        return Err(CoreError::NotFound("active token".into()));
    }
    let mut after = json!({ "revoked": true });
    if owner.is_none() {
        after["by_admin"] = json!(true);
    }
    audit::record(
        tx.conn(),
        &caller.actor(),
        "token.revoke",
        &format!("token:{id}"),
        Some(json!({ "revoked": false })),
        Some(after),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// How often a token's `last_used_at` is written at most: every request
/// would otherwise turn a read into a write.
pub const LAST_USED_RESOLUTION_SECS: i64 = 60;

/// Looks up a working personal token and records its use (to the minute):
/// not revoked, not expired, its owner not disabled and signed in within
/// `limits.inactive_days`. Returns the owner's user id.
pub async fn authenticate(
    db: impl Into<Db<'_>>,
    presented: &SecretString,
    limits: &TokenLimits,
) -> Result<Option<i64>, CoreError> {
    let db = db.into();
    let presented = presented.expose_secret();
    if !presented.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    let hash = hash_token(presented);
    let now = now_unix();
    let active_since = now - i64::from(limits.inactive_days) * DAY;
    let Some(token) = stored::find_working(db, &hash, now, active_since).await? else {
        return Ok(None);
    };
    if token
        .last_used_at
        .is_none_or(|t| now - t >= LAST_USED_RESOLUTION_SECS)
    {
        stored::touch(db, token.id, now).await?;
    }
    Ok(Some(token.user_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{AuthMethod, Grants, TeamRole};
    use crate::identity::{self, SignIn};
    use sqlx::SqlitePool;

    const LIMITS: TokenLimits = TokenLimits {
        default_days: 90,
        max_days: 365,
        inactive_days: 30,
    };

    async fn user(pool: impl Into<Db<'_>> + Copy, subject: &str) -> Principal {
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

    /// Tokens are created, listed, used, revoked and stop with their owner
    /// alike on SQLite and PostgreSQL.
    #[tokio::test]
    async fn tokens_work_alike_on_both_backends() {
        let Some((sqlite, postgres)) = crate::db::both_backends("tokens").await else {
            return;
        };
        let mut seen = vec![];
        for db in [Db::Sqlite(&sqlite), Db::Postgres(&postgres)] {
            let ada = user(db, "ada").await;
            let bob = user(db, "bob").await;
            let admin = Principal {
                user_id: Some(999),
                ..paved_shared::auth::testing::admin()
            };
            let first = create(db, &ada, "ci laptop", Some(7), &LIMITS)
                .await
                .unwrap();
            let second = create(db, &ada, "deploy", None, &LIMITS).await.unwrap();
            assert!(matches!(
                create(db, &ada, "ci laptop", None, &LIMITS).await,
                Err(CoreError::Conflict(_))
            ));
            assert_eq!(
                authenticate(db, &first.value, &LIMITS).await.unwrap(),
                ada.user_id
            );
            assert_eq!(
                authenticate(db, &SecretString::from("pvd_nope".to_owned()), &LIMITS)
                    .await
                    .unwrap(),
                None
            );
            let listed = list_own(db, &ada).await.unwrap();
            let names: Vec<&str> = listed.iter().map(|t| t.name.as_str()).collect();
            assert_eq!(names, ["deploy", "ci laptop"]);
            assert!(listed[1].last_used_at.is_some(), "use is recorded");
            // Nobody revokes another's token; an admin may.
            assert!(matches!(
                revoke(db, &bob, first.id).await,
                Err(CoreError::NotFound(_))
            ));
            revoke(db, &ada, first.id).await.unwrap();
            assert_eq!(authenticate(db, &first.value, &LIMITS).await.unwrap(), None);
            let overview = access_overview(db, &admin).await.unwrap();
            let counts: Vec<(String, i64, usize)> = overview
                .iter()
                .map(|p| {
                    (
                        p.person.subject.clone(),
                        p.person.active_tokens,
                        p.tokens.len(),
                    )
                })
                .collect();
            assert_eq!(counts, [("ada".into(), 1, 1), ("bob".into(), 0, 0)]);
            // A disabled owner's tokens stop; enabled again, they work.
            let ada_id = ada.user_id.unwrap();
            set_disabled(db, &admin, ada_id, true).await.unwrap();
            assert_eq!(
                authenticate(db, &second.value, &LIMITS).await.unwrap(),
                None
            );
            set_disabled(db, &admin, ada_id, false).await.unwrap();
            assert_eq!(
                authenticate(db, &second.value, &LIMITS).await.unwrap(),
                Some(ada_id)
            );
            assert!(matches!(
                set_disabled(db, &admin, ada_id + 100, true).await,
                Err(CoreError::NotFound(_))
            ));
            revoke_any(db, &admin, second.id).await.unwrap();
            assert!(list_for_user(db, &admin, ada_id)
                .await
                .unwrap()
                .iter()
                .all(|t| t.revoked_at.is_some()));
            let audit = crate::audit::list(db, 0, 20).await.unwrap();
            let actions: Vec<String> = audit.entries.iter().map(|e| e.action.clone()).collect();
            seen.push((counts, actions));
        }
        assert_eq!(seen[0], seen[1]);
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
        let token = create(&pool, &ada, "ci laptop", None, &LIMITS)
            .await
            .unwrap();
        let value = token.value.expose_secret().to_string();
        assert!(value.starts_with(TOKEN_PREFIX));

        // Only the hash is stored.
        let stored: String = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(stored, hash_token(&value));

        assert_eq!(
            authenticate(&pool, &token.value, &LIMITS).await.unwrap(),
            ada.user_id
        );
        let listed = list_own(&pool, &ada).await.unwrap();
        assert!(listed[0].last_used_at.is_some());
        assert!(value.starts_with(&listed[0].prefix));

        revoke(&pool, &ada, token.id).await.unwrap();
        assert_eq!(
            authenticate(&pool, &token.value, &LIMITS).await.unwrap(),
            None
        );
        assert!(matches!(
            revoke(&pool, &ada, token.id).await,
            Err(CoreError::NotFound(_))
        ));
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn names_are_validated_and_unique_per_user(pool: SqlitePool) {
        let ada = user(&pool, "ada").await;
        assert!(matches!(
            create(&pool, &ada, "  ", None, &LIMITS).await,
            Err(CoreError::Invalid { field: "name", .. })
        ));
        create(&pool, &ada, "ci", None, &LIMITS).await.unwrap();
        let err = create(&pool, &ada, "ci", None, &LIMITS)
            .await
            .err()
            .unwrap();
        assert_eq!(err.status_code(), 409);
        let bo = user(&pool, "bo").await;
        create(&pool, &bo, "ci", None, &LIMITS).await.unwrap();
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn nobody_revokes_another_users_token(pool: SqlitePool) {
        let ada = user(&pool, "ada").await;
        let bo = user(&pool, "bo").await;
        let token = create(&pool, &ada, "mine", None, &LIMITS).await.unwrap();
        assert!(matches!(
            revoke(&pool, &bo, token.id).await,
            Err(CoreError::NotFound(_))
        ));
        assert!(authenticate(&pool, &token.value, &LIMITS)
            .await
            .unwrap()
            .is_some());
        assert!(authenticate(
            &pool,
            &SecretString::from("pvd_forged".to_string()),
            &LIMITS
        )
        .await
        .unwrap()
        .is_none());
        assert!(
            authenticate(&pool, &SecretString::from("other".to_string()), &LIMITS)
                .await
                .unwrap()
                .is_none()
        );
    }

    /// Attack: a token outliving the person. It expires, stops when its
    /// owner has not signed in for the inactive period, and stops at once
    /// when a platform admin disables the owner or revokes it.
    #[sqlx::test(migrations = "../migrations")]
    async fn tokens_do_not_outlive_the_person(pool: SqlitePool) {
        use crate::auth::PlatformRole;
        let ada = user(&pool, "ada").await;
        let mut admin = user(&pool, "root").await;
        admin.platform_roles.insert(PlatformRole::PlatformAdmin);
        // Lifetimes: default 90 days, never past the maximum.
        let token = create(&pool, &ada, "ci", None, &LIMITS).await.unwrap();
        let listed = list_own(&pool, &ada).await.unwrap();
        assert_eq!(listed[0].expires_at, token.expires_at);
        assert_eq!(listed[0].expires_at - listed[0].created_at, 90 * 86_400);
        assert!(matches!(
            create(&pool, &ada, "forever", Some(366), &LIMITS).await,
            Err(CoreError::Invalid { field: "days", .. })
        ));
        assert!(authenticate(&pool, &token.value, &LIMITS)
            .await
            .unwrap()
            .is_some());

        // Expired.
        sqlx::query("UPDATE api_tokens SET expires_at = ?1")
            .bind(now_unix() - 1)
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(
            authenticate(&pool, &token.value, &LIMITS).await.unwrap(),
            None
        );
        sqlx::query("UPDATE api_tokens SET expires_at = ?1")
            .bind(now_unix() + 86_400)
            .execute(&pool)
            .await
            .unwrap();

        // The owner has not signed in for 31 days.
        sqlx::query("UPDATE users SET last_login_at = ?1 WHERE subject = 'ada'")
            .bind(now_unix() - 31 * 86_400)
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(
            authenticate(&pool, &token.value, &LIMITS).await.unwrap(),
            None
        );
        sqlx::query("UPDATE users SET last_login_at = ?1 WHERE subject = 'ada'")
            .bind(now_unix())
            .execute(&pool)
            .await
            .unwrap();
        assert!(authenticate(&pool, &token.value, &LIMITS)
            .await
            .unwrap()
            .is_some());

        // Disabled by an admin: tokens and the principal stop at once.
        let ada_id = ada.user_id.unwrap();
        assert!(matches!(
            set_disabled(&pool, &ada, ada_id, true).await,
            Err(CoreError::Forbidden(_))
        ));
        set_disabled(&pool, &admin, ada_id, true).await.unwrap();
        assert_eq!(
            authenticate(&pool, &token.value, &LIMITS).await.unwrap(),
            None
        );
        assert!(
            identity::load_principal(&pool, ada_id, AuthMethod::Session)
                .await
                .unwrap()
                .is_none(),
            "a disabled person's sessions end"
        );
        let users = list_users(&pool, &admin).await.unwrap();
        assert!(users
            .iter()
            .any(|u| u.subject == "ada" && u.disabled_at.is_some()));
        set_disabled(&pool, &admin, ada_id, false).await.unwrap();
        assert!(authenticate(&pool, &token.value, &LIMITS)
            .await
            .unwrap()
            .is_some());

        // An admin lists and revokes anyone's token; a developer may not.
        assert!(list_for_user(&pool, &ada, ada_id).await.is_err());
        assert_eq!(list_for_user(&pool, &admin, ada_id).await.unwrap().len(), 1);
        assert!(revoke_any(&pool, &ada, token.id).await.is_err());
        revoke_any(&pool, &admin, token.id).await.unwrap();
        assert_eq!(
            authenticate(&pool, &token.value, &LIMITS).await.unwrap(),
            None
        );
    }
}
