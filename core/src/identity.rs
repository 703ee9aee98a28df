//! People: upserting users from OpenID Connect claims and loading the
//! [`Principal`] of a signed-in user.

use std::collections::{BTreeMap, BTreeSet};

use paved_store::{users, Conn, Db};
use serde_json::json;

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
pub async fn upsert_from_sign_in(
    db: impl Into<Db<'_>>,
    sign_in: &SignIn,
) -> Result<i64, CoreError> {
    let now = now_unix();
    let display_name = sign_in
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .or_else(|| sign_in.email.clone())
        .unwrap_or_else(|| sign_in.subject.clone());
    let platform_roles = join_roles(&sign_in.grants.platform_roles);

    let mut tx = db.into().begin().await?;
    let user_id = users::upsert(
        tx.conn(),
        users::UserUpsert {
            subject: &sign_in.subject,
            email: sign_in.email.as_deref(),
            display_name: &display_name,
            platform_roles: &platform_roles,
            now,
        },
    )
    .await?;

    let before: BTreeMap<String, TeamRole> = users::memberships(tx.conn(), user_id)
        .await?
        .into_iter()
        .filter_map(|(team, role)| TeamRole::parse(&role).map(|role| (team, role)))
        .collect();
    if before != sign_in.grants.teams {
        users::clear_memberships(tx.conn(), user_id).await?;
        for (team, role) in &sign_in.grants.teams {
            let team_id = users::ensure_team(tx.conn(), team, now).await?;
            users::add_membership(tx.conn(), user_id, team_id, role.as_str()).await?;
        }
        audit::record(
            tx.conn(),
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
pub(crate) async fn ensure_team<'c>(
    conn: impl Into<Conn<'c>>,
    name: &str,
    now: i64,
) -> Result<i64, CoreError> {
    Ok(users::ensure_team(conn.into(), name, now).await?)
}

/// Loads the principal of user `user_id` (a browser session or a personal token),
/// in one query since it runs on every request. `None` when the user no longer exists.
/// A disabled person has no principal: their sessions and tokens end.
pub async fn load_principal(
    db: impl Into<Db<'_>>,
    user_id: i64,
    method: AuthMethod,
) -> Result<Option<Principal>, CoreError> {
    let Some(user) = users::principal(db.into(), user_id).await? else {
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

/// How long a signed-in person's principal is reused without reading the database.
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
        db: impl Into<Db<'_>>,
        user_id: i64,
    ) -> Result<Option<Principal>, CoreError> {
        if let Some((at, principal)) = self.lock().get(&user_id) {
            if at.elapsed() < self.ttl {
                return Ok(Some(principal.clone()));
            }
        }
        let loaded = load_principal(db, user_id, AuthMethod::Session).await?;
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

    /// Forgets everyone (changes may have been missed).
    pub fn clear(&self) {
        self.lock().clear();
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
    use sqlx::SqlitePool;

    /// Sign-in, memberships, their audit entries and principals come out
    /// the same on SQLite and PostgreSQL.
    #[tokio::test]
    async fn sign_in_and_principals_work_alike_on_both_backends() {
        let Some((sqlite, postgres)) = crate::db::both_backends("identity").await else {
            return;
        };
        let mut seen = vec![];
        for db in [Db::Sqlite(&sqlite), Db::Postgres(&postgres)] {
            let first = sign_in(
                "ada",
                &[("payments", TeamRole::Lead), ("search", TeamRole::Member)],
                &[PlatformRole::PlatformPm],
            );
            let id = upsert_from_sign_in(db, &first).await.unwrap();
            let p = load_principal(db, id, AuthMethod::Session)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(p.team_role("payments"), Some(TeamRole::Lead));
            assert_eq!(p.team_role("search"), Some(TeamRole::Member));
            assert!(p.platform_roles.contains(&PlatformRole::PlatformPm));
            // The same groups again: no change, no audit entry.
            assert_eq!(upsert_from_sign_in(db, &first).await.unwrap(), id);
            // Moved to another team, no platform role.
            let moved = sign_in("ada", &[("ml", TeamRole::Member)], &[]);
            assert_eq!(upsert_from_sign_in(db, &moved).await.unwrap(), id);
            let cache = PrincipalCache::new(PRINCIPAL_TTL, 10);
            let p = cache.session_principal(db, id).await.unwrap().unwrap();
            assert_eq!(p.team_role("payments"), None);
            assert_eq!(p.team_role("ml"), Some(TeamRole::Member));
            assert!(p.platform_roles.is_empty());
            let audit = crate::audit::list(db, 0, 10).await.unwrap();
            assert_eq!(audit.total, 2, "first sign-in and the move");
            let teams: Vec<(String, i64)> = crate::teams::list(db)
                .await
                .unwrap()
                .into_iter()
                .map(|t| (t.name, t.member_count))
                .collect();
            assert_eq!(
                teams,
                [
                    ("ml".into(), 1),
                    ("payments".into(), 0),
                    ("search".into(), 0)
                ]
            );
            // A disabled person has no principal.
            crate::db::run(db, "UPDATE users SET disabled_at = 1 WHERE subject = 'ada'").await;
            assert!(load_principal(db, id, AuthMethod::Session)
                .await
                .unwrap()
                .is_none());
            assert!(load_principal(db, id + 1, AuthMethod::Session)
                .await
                .unwrap()
                .is_none());
            seen.push((p, teams));
        }
        assert_eq!(seen[0], seen[1]);
    }

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
