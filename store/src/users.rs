//! People and their memberships (what sign-in writes and every request reads).

use sqlx::Error;

use crate::{dual, dual_conn, Conn, Db};

/// Who signed in, as stored.
#[derive(Debug, Clone, Copy)]
pub struct UserUpsert<'a> {
    /// The OpenID Connect `sub`.
    pub subject: &'a str,
    /// The e-mail, if the provider gave one.
    pub email: Option<&'a str>,
    /// A name to show.
    pub display_name: &'a str,
    /// Comma-separated platform roles.
    pub platform_roles: &'a str,
    /// Unix seconds.
    pub now: i64,
}

/// Creates or updates the user; returns the id.
pub async fn upsert(conn: Conn<'_>, user: UserUpsert<'_>) -> Result<i64, Error> {
    dual_conn!(conn, |c|
        sqlite: sqlx::query_scalar!(
            r#"INSERT INTO users (subject, email, display_name, platform_roles, created_at, last_login_at)
               VALUES (?1, ?2, ?3, ?4, ?5, ?5)
               ON CONFLICT (subject) DO UPDATE SET
                 email = excluded.email,
                 display_name = excluded.display_name,
                 platform_roles = excluded.platform_roles,
                 last_login_at = excluded.last_login_at
               RETURNING id AS "id!""#,
            user.subject,
            user.email,
            user.display_name,
            user.platform_roles,
            user.now,
        )
        .fetch_one(c)
        .await,
        postgres: sqlx::query_scalar!(
            r#"INSERT INTO users (subject, email, display_name, platform_roles, created_at, last_login_at)
               VALUES ($1, $2, $3, $4, $5, $5)
               ON CONFLICT (subject) DO UPDATE SET
                 email = excluded.email,
                 display_name = excluded.display_name,
                 platform_roles = excluded.platform_roles,
                 last_login_at = excluded.last_login_at
               RETURNING id"#,
            user.subject,
            user.email,
            user.display_name,
            user.platform_roles,
            user.now,
        )
        .fetch_one(c)
        .await,
    )
}

/// The user's teams and roles (`lead` or `member`).
pub async fn memberships(conn: Conn<'_>, user_id: i64) -> Result<Vec<(String, String)>, Error> {
    dual_conn!(conn, |c|
        sqlite: sqlx::query!(
            r#"SELECT t.name AS "team!", m.role AS "role!"
               FROM memberships m JOIN teams t ON t.id = m.team_id
               WHERE m.user_id = ?1"#,
            user_id
        )
        .fetch_all(c)
        .await
        .map(|rows| rows.into_iter().map(|r| (r.team, r.role)).collect()),
        postgres: sqlx::query!(
            r#"SELECT t.name AS team, m.role
               FROM memberships m JOIN teams t ON t.id = m.team_id
               WHERE m.user_id = $1"#,
            user_id
        )
        .fetch_all(c)
        .await
        .map(|rows| rows.into_iter().map(|r| (r.team, r.role)).collect()),
    )
}

/// Removes all of the user's memberships.
pub async fn clear_memberships(conn: Conn<'_>, user_id: i64) -> Result<(), Error> {
    dual_conn!(conn, |c|
        sqlite: sqlx::query!("DELETE FROM memberships WHERE user_id = ?1", user_id)
            .execute(c)
            .await
            .map(drop),
        postgres: sqlx::query!("DELETE FROM memberships WHERE user_id = $1", user_id)
            .execute(c)
            .await
            .map(drop),
    )
}

/// Adds a membership (`role`: `lead` or `member`).
pub async fn add_membership(
    conn: Conn<'_>,
    user_id: i64,
    team_id: i64,
    role: &str,
) -> Result<(), Error> {
    dual_conn!(conn, |c|
        sqlite: sqlx::query!(
            "INSERT INTO memberships (user_id, team_id, role) VALUES (?1, ?2, ?3)",
            user_id,
            team_id,
            role
        )
        .execute(c)
        .await
        .map(drop),
        postgres: sqlx::query!(
            "INSERT INTO memberships (user_id, team_id, role) VALUES ($1, $2, $3)",
            user_id,
            team_id,
            role
        )
        .execute(c)
        .await
        .map(drop),
    )
}

/// The id of team `name`, created (display name = name) when missing.
pub async fn ensure_team(conn: Conn<'_>, name: &str, now: i64) -> Result<i64, Error> {
    dual_conn!(conn, |c|
        sqlite: sqlx::query_scalar!(
            r#"INSERT INTO teams (name, display_name, created_at) VALUES (?1, ?1, ?2)
               ON CONFLICT (name) DO UPDATE SET name = excluded.name
               RETURNING id AS "id!""#,
            name,
            now
        )
        .fetch_one(c)
        .await,
        postgres: sqlx::query_scalar!(
            r#"INSERT INTO teams (name, display_name, created_at) VALUES ($1, $1, $2)
               ON CONFLICT (name) DO UPDATE SET name = excluded.name
               RETURNING id"#,
            name,
            now
        )
        .fetch_one(c)
        .await,
    )
}

/// What a principal is made of: the person and `team:role` pairs joined by
/// commas (team names are `[a-z0-9-]`, so they parse back unambiguously).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalRow {
    /// The OpenID Connect `sub`.
    pub subject: String,
    /// The e-mail.
    pub email: Option<String>,
    /// A name to show.
    pub display_name: String,
    /// Comma-separated platform roles.
    pub platform_roles: String,
    /// `team:role,team:role`, if any.
    pub teams: Option<String>,
}

/// The person with their memberships in one query (it runs on every
/// request); `None` when unknown or disabled.
pub async fn principal(db: Db<'_>, user_id: i64) -> Result<Option<PrincipalRow>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_as!(
            PrincipalRow,
            r#"SELECT u.subject, u.email, u.display_name, u.platform_roles,
                      (SELECT group_concat(t.name || ':' || m.role, ',')
                         FROM memberships m JOIN teams t ON t.id = m.team_id
                        WHERE m.user_id = u.id) AS "teams: String"
               FROM users u WHERE u.id = ?1 AND u.disabled_at IS NULL"#,
            user_id
        )
        .fetch_optional(pool)
        .await,
        postgres: sqlx::query_as!(
            PrincipalRow,
            r#"SELECT u.subject, u.email, u.display_name, u.platform_roles,
                      (SELECT string_agg(t.name || ':' || m.role, ',')
                         FROM memberships m JOIN teams t ON t.id = m.team_id
                        WHERE m.user_id = u.id) AS teams
               FROM users u WHERE u.id = $1 AND u.disabled_at IS NULL"#,
            user_id
        )
        .fetch_optional(pool)
        .await,
    )
}
