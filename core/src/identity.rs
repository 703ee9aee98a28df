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

    let mut tx = pool.begin().await?;
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

/// Loads the principal of user `user_id` (a browser session or a personal token).
/// `None` when the user no longer exists.
pub async fn load_principal(
    pool: &SqlitePool,
    user_id: i64,
    method: AuthMethod,
) -> Result<Option<Principal>, CoreError> {
    let mut conn = pool.acquire().await?;
    let Some(user) = sqlx::query!(
        "SELECT subject, email, display_name, platform_roles FROM users WHERE id = ?1",
        user_id
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let teams = memberships_of(&mut conn, user_id).await?;
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
    async fn unknown_user_has_no_principal(pool: SqlitePool) {
        assert!(load_principal(&pool, 42, AuthMethod::Session)
            .await
            .unwrap()
            .is_none());
    }
}
