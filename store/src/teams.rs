//! Teams and their members.

use serde::{Deserialize, Serialize};
use sqlx::Error;

use crate::{dual, Db};

/// A team in a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamSummary {
    /// The team's name.
    pub name: String,
    /// A name to show.
    pub display_name: String,
    /// How many members it has.
    pub member_count: i64,
}

/// A team's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamRow {
    /// Row id.
    pub id: i64,
    /// The team's name.
    pub name: String,
    /// A name to show.
    pub display_name: String,
}

/// A member of a team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    /// The person's name.
    pub display_name: String,
    /// Their e-mail, if known.
    pub email: Option<String>,
    /// `lead` or `member`.
    pub role: String,
}

/// All teams with their member counts, by name (byte order, as SQLite sorts).
pub async fn list(db: Db<'_>) -> Result<Vec<TeamSummary>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_as!(
            TeamSummary,
            r#"SELECT t.name, t.display_name, COUNT(m.user_id) AS "member_count!: i64"
               FROM teams t LEFT JOIN memberships m ON m.team_id = t.id
               GROUP BY t.id ORDER BY t.name"#
        )
        .fetch_all(pool)
        .await,
        postgres: sqlx::query_as!(
            TeamSummary,
            r#"SELECT t.name, t.display_name, COUNT(m.user_id) AS "member_count!"
               FROM teams t LEFT JOIN memberships m ON m.team_id = t.id
               GROUP BY t.id ORDER BY t.name COLLATE "C""#
        )
        .fetch_all(pool)
        .await,
    )
}

/// The team called `name`.
pub async fn find(db: Db<'_>, name: &str) -> Result<Option<TeamRow>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_as!(
            TeamRow,
            r#"SELECT id AS "id!", name, display_name FROM teams WHERE name = ?1"#,
            name
        )
        .fetch_optional(pool)
        .await,
        postgres: sqlx::query_as!(
            TeamRow,
            "SELECT id, name, display_name FROM teams WHERE name = $1",
            name
        )
        .fetch_optional(pool)
        .await,
    )
}

/// A team's members, leads first, then by name.
pub async fn members(db: Db<'_>, team_id: i64) -> Result<Vec<MemberRow>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_as!(
            MemberRow,
            r#"SELECT u.display_name, u.email, m.role
               FROM memberships m JOIN users u ON u.id = m.user_id
               WHERE m.team_id = ?1
               ORDER BY m.role = 'lead' DESC, u.display_name"#,
            team_id
        )
        .fetch_all(pool)
        .await,
        postgres: sqlx::query_as!(
            MemberRow,
            r#"SELECT u.display_name, u.email, m.role
               FROM memberships m JOIN users u ON u.id = m.user_id
               WHERE m.team_id = $1
               ORDER BY m.role = 'lead' DESC, u.display_name COLLATE "C""#,
            team_id
        )
        .fetch_all(pool)
        .await,
    )
}
