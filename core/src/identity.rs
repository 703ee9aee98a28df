//! People: upserting users from OpenID Connect claims and loading the
//! [`Principal`] of a signed-in user.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use sqlx::SqlitePool;

use crate::auth::{AuthMethod, Grants, PlatformRole, Principal, TeamRole};
use crate::{audit, now_unix, CoreError};

/// Who signed in, as the identity provider said.
#[derive(Debug, Clone)]
pub struct SignIn {
    /// The `sub` claim.
    pub subject: String,
    /// The `email` claim.
    pub email: Option<String>,
    /// The `name` claim (falls back to e-mail, then subject).
    pub name: Option<String>,
    /// What the person's groups grant.
    pub grants: Grants,
}

/// Creates or updates the user from a sign-in, replaces their memberships
/// with what the groups grant (creating teams as needed), all in one
/// transaction, and writes changed memberships to the audit log.
/// Returns the user id.
pub async fn upsert_from_sign_in(pool: &SqlitePool, sign_in: &SignIn) -> Result<i64, CoreError> {
    let now = now_unix();
    let display_name = sign_in
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .or_else(|| sign_in.email.clone())
        .unwrap_or_else(|| sign_in.subject.clone());
    let platform_roles = join_roles(&sign_in.grants.platform_roles);

    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let user_id = sqlx::query_scalar!(
        r#"INSERT INTO users (subject, email, display_name, platform_roles, created_at, last_login_at)
           VALUES (?1, ?2, ?3, ?4, ?5, ?5)
           ON CONFLICT (subject) DO UPDATE SET
             email = excluded.email,
             display_name = excluded.display_name,
             platform_roles = excluded.platform_roles,
             last_login_at = excluded.last_login_at
           RETURNING id AS "id!""#,
        sign_in.subject,
        sign_in.email,
        display_name,
        platform_roles,
        now,
    )
    .fetch_one(&mut *tx)
    .await?;

    let before = memberships_of(&mut tx, user_id).await?;
    if before != sign_in.grants.teams {
        sqlx::query!("DELETE FROM memberships WHERE user_id = ?1", user_id)
            .execute(&mut *tx)
            .await?;
        for (team, role) in &sign_in.grants.teams {
            let team_id = ensure_team(&mut tx, team, now).await?;
            let role = role.as_str();
            sqlx::query!(
                "INSERT INTO memberships (user_id, team_id, role) VALUES (?1, ?2, ?3)",
                user_id,
                team_id,
                role
            )
            .execute(&mut *tx)
            .await?;
        }
        audit::record(
            &mut *tx,
            "system:oidc",
            "membership.sync",
            &format!("user:{}", sign_in.subject),
            Some(json!({ "teams": before })),
            Some(json!({ "teams": sign_in.grants.teams })),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(user_id)
}

/// Returns the id of team `name`, creating it (display name = name) when missing.
pub(crate) async fn ensure_team(
    conn: &mut sqlx::SqliteConnection,
    name: &str,
    now: i64,
) -> Result<i64, CoreError> {
    let id = sqlx::query_scalar!(
        r#"INSERT INTO teams (name, display_name, created_at) VALUES (?1, ?1, ?2)
           ON CONFLICT (name) DO UPDATE SET name = excluded.name
           RETURNING id AS "id!""#,
        name,
        now
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

async fn memberships_of(
    conn: &mut sqlx::SqliteConnection,
    user_id: i64,
) -> Result<BTreeMap<String, TeamRole>, CoreError> {
    let rows = sqlx::query!(
        r#"SELECT t.name AS "team!", m.role AS "role!"
           FROM memberships m JOIN teams t ON t.id = m.team_id
           WHERE m.user_id = ?1"#,
        user_id
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| TeamRole::parse(&r.role).map(|role| (r.team, role)))
        .collect())
}

/// Loads the principal of user `user_id` (a browser session or a personal token),
/// in one query since it runs on every request. `None` when the user no longer exists.
/// A disabled person has no principal: their sessions and tokens end.
pub async fn load_principal(
    pool: &SqlitePool,
    user_id: i64,
    method: AuthMethod,
) -> Result<Option<Principal>, CoreError> {
    // Team names are `[a-z0-9-]`, so `team:role` pairs joined by commas parse back unambiguously.
    let Some(user) = sqlx::query!(
        r#"SELECT u.subject, u.email, u.display_name, u.platform_roles,
                  (SELECT group_concat(t.name || ':' || m.role, ',')
                     FROM memberships m JOIN teams t ON t.id = m.team_id
                    WHERE m.user_id = u.id) AS "teams: String"
           FROM users u WHERE u.id = ?1 AND u.disabled_at IS NULL"#,
        user_id
    )
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let teams = user
        .teams
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .filter_map(|pair| {
            let (team, role) = pair.split_once(':')?;
            Some((team.to_owned(), TeamRole::parse(role)?))
        })
        .collect();
    Ok(Some(Principal {
        user_id: Some(user_id),
        subject: user.subject,
        display_name: user.display_name,
        email: user.email,
        method,
        platform_roles: parse_roles(&user.platform_roles),
        teams,
    }))
}

/// How long a signed-in person's principal is reused without reading SQLite.
pub const PRINCIPAL_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// Principals of signed-in users, kept for a few seconds so that a page view
/// costs no database round trip for identity. Sign-in replaces the entry at
/// once; other membership changes reach active sessions within the TTL.
#[derive(Clone)]
pub struct PrincipalCache {
    entries: std::sync::Arc<
        std::sync::Mutex<std::collections::HashMap<i64, (std::time::Instant, Principal)>>,
    >,
    ttl: std::time::Duration,
    capacity: usize,
}

impl PrincipalCache {
    /// A cache whose entries live `ttl` and that holds at most `capacity` users.
    pub fn new(ttl: std::time::Duration, capacity: usize) -> Self {
        Self {
            entries: Default::default(),
            ttl,
            capacity: capacity.max(1),
        }
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<i64, (std::time::Instant, Principal)>>
    {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The principal of `user_id` for a browser session, from the cache or the database.
    pub async fn session_principal(
        &self,
        pool: &SqlitePool,
        user_id: i64,
    ) -> Result<Option<Principal>, CoreError> {
        if let Some((at, principal)) = self.lock().get(&user_id) {
            if at.elapsed() < self.ttl {
                return Ok(Some(principal.clone()));
            }
        }
        let loaded = load_principal(pool, user_id, AuthMethod::Session).await?;
        let mut entries = self.lock();
        match &loaded {
            Some(principal) => {
                if entries.len() >= self.capacity && !entries.contains_key(&user_id) {
                    let ttl = self.ttl;
                    entries.retain(|_, (at, _)| at.elapsed() < ttl);
                    if entries.len() >= self.capacity {
                        entries.clear();
                    }
                }
                entries.insert(user_id, (std::time::Instant::now(), principal.clone()));
            }
            None => {
                entries.remove(&user_id);
            }
        }
        Ok(loaded)
    }

    /// Forgets `user_id` (after their memberships changed).
    pub fn invalidate(&self, user_id: i64) {
        self.lock().remove(&user_id);
    }
}

fn join_roles(roles: &BTreeSet<PlatformRole>) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_roles(raw: &str) -> BTreeSet<PlatformRole> {
    raw.split(',').filter_map(PlatformRole::parse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign_in(subject: &str, teams: &[(&str, TeamRole)], platform: &[PlatformRole]) -> SignIn {
        SignIn {
            subject: subject.into(),
            email: Some(format!("{subject}@example.com")),
            name: Some(subject.to_uppercase()),
            grants: Grants {
                platform_roles: platform.iter().copied().collect(),
                teams: teams.iter().map(|(t, r)| (t.to_string(), *r)).collect(),
            },
        }
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn sign_in_creates_user_teams_and_memberships(pool: SqlitePool) {
        let id = upsert_from_sign_in(&pool, &sign_in("ada", &[("payments", TeamRole::Lead)], &[]))
            .await
            .unwrap();
        let p = load_principal(&pool, id, AuthMethod::Session)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(p.display_name, "ADA");
        assert_eq!(p.team_role("payments"), Some(TeamRole::Lead));
        assert!(p.platform_roles.is_empty());
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn later_sign_in_replaces_memberships_and_roles_and_audits(pool: SqlitePool) {
        let first = upsert_from_sign_in(
            &pool,
            &sign_in("bo", &[("payments", TeamRole::Member)], &[]),
        )
        .await
        .unwrap();
        let second = upsert_from_sign_in(
            &pool,
            &sign_in(
                "bo",
                &[("search", TeamRole::Member)],
                &[PlatformRole::PlatformPm],
            ),
        )
        .await
        .unwrap();
        assert_eq!(first, second);
        let p = load_principal(&pool, first, AuthMethod::Session)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(p.team_role("payments"), None);
        assert_eq!(p.team_role("search"), Some(TeamRole::Member));
        assert!(p.has(PlatformRole::PlatformPm));
        let log = audit::list(&pool, 0, 50).await.unwrap();
        assert_eq!(
            log.entries
                .iter()
                .filter(|e| e.action == "membership.sync")
                .count(),
            2
        );
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn unchanged_memberships_write_no_audit_entry(pool: SqlitePool) {
        let s = sign_in("cy", &[("payments", TeamRole::Member)], &[]);
        upsert_from_sign_in(&pool, &s).await.unwrap();
        upsert_from_sign_in(&pool, &s).await.unwrap();
        let log = audit::list(&pool, 0, 50).await.unwrap();
        assert_eq!(log.total, 1);
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn cached_principals_expire_and_can_be_invalidated(pool: SqlitePool) {
        let id = upsert_from_sign_in(
            &pool,
            &sign_in("dee", &[("payments", TeamRole::Member)], &[]),
        )
        .await
        .unwrap();
        let cache = PrincipalCache::new(std::time::Duration::from_secs(60), 10);
        let first = cache.session_principal(&pool, id).await.unwrap().unwrap();
        assert_eq!(first.team_role("payments"), Some(TeamRole::Member));

        upsert_from_sign_in(&pool, &sign_in("dee", &[("search", TeamRole::Lead)], &[]))
            .await
            .unwrap();
        let cached = cache.session_principal(&pool, id).await.unwrap().unwrap();
        assert_eq!(
            cached.team_role("payments"),
            Some(TeamRole::Member),
            "served from the cache"
        );
        cache.invalidate(id);
        let fresh = cache.session_principal(&pool, id).await.unwrap().unwrap();
        assert_eq!(fresh.team_role("search"), Some(TeamRole::Lead));

        let no_ttl = PrincipalCache::new(std::time::Duration::ZERO, 10);
        upsert_from_sign_in(&pool, &sign_in("dee", &[], &[]))
            .await
            .unwrap();
        assert!(no_ttl
            .session_principal(&pool, id)
            .await
            .unwrap()
            .unwrap()
            .teams
            .is_empty());
        assert!(no_ttl
            .session_principal(&pool, 999)
            .await
            .unwrap()
            .is_none());
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn unknown_user_has_no_principal(pool: SqlitePool) {
        assert!(load_principal(&pool, 42, AuthMethod::Session)
            .await
            .unwrap()
            .is_none());
    }
}
