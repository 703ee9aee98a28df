//! Teams and their members.

use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;

use crate::auth::TeamRole;
use crate::{identity, now_unix, CoreError};

pub use paved_shared::identity::{TeamDetail, TeamMember, TeamPage};

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

/// All teams, by name.
pub async fn list(pool: &SqlitePool) -> Result<Vec<TeamSummary>, CoreError> {
    let rows = sqlx::query_as!(
        TeamSummary,
        r#"SELECT t.name, t.display_name, COUNT(m.user_id) AS "member_count!: i64"
           FROM teams t LEFT JOIN memberships m ON m.team_id = t.id
           GROUP BY t.id ORDER BY t.name"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows)
}

/// One team with members, or [`CoreError::NotFound`].
pub async fn detail(pool: &SqlitePool, name: &str) -> Result<TeamDetail, CoreError> {
    let team = sqlx::query!(
        "SELECT id, name, display_name FROM teams WHERE name = ?1",
        name
    )
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| CoreError::NotFound(format!("team {name}")))?;
    let rows = sqlx::query!(
        r#"SELECT u.display_name, u.email, m.role
           FROM memberships m JOIN users u ON u.id = m.user_id
           WHERE m.team_id = ?1
           ORDER BY m.role = 'lead' DESC, u.display_name"#,
        team.id
    )
    .fetch_all(pool)
    .await?;
    Ok(TeamDetail {
        name: team.name,
        display_name: team.display_name,
        members: rows
            .into_iter()
            .filter_map(|r| {
                Some(TeamMember {
                    display_name: r.display_name,
                    email: r.email,
                    role: TeamRole::parse(&r.role)?,
                })
            })
            .collect(),
    })
}

/// A team's page (members of the team, platform PMs and admins): the team
/// and the catalog Group of the same name, the portal's view of the team.
pub async fn page(
    core: &crate::CoreState,
    caller: &crate::auth::Principal,
    name: &str,
) -> Result<TeamPage, CoreError> {
    crate::auth::authorize(caller, crate::auth::Action::ViewTeam(name))?;
    let team = detail(&core.db, name).await?;
    let group = match crate::catalog::store::entity_by_ref(
        &core.db,
        &format!("group:default/{name}"),
    )
    .await
    {
        Ok(g) => Some(g),
        Err(CoreError::NotFound(_)) => None,
        Err(e) => return Err(e),
    };
    let related = |kind: &str| -> Vec<String> {
        group
            .as_ref()
            .and_then(|g| g["relations"].as_array())
            .map(|r| {
                r.iter()
                    .filter(|r| r["type"] == kind)
                    .filter_map(|r| r["targetRef"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(TeamPage {
        catalog_members: group.as_ref().map(|_| related("hasMember")),
        owns: related("ownerOf"),
        team,
    })
}

/// A demo person: subject, name, e-mail, platform roles, team memberships.
pub type DemoPerson<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a [(&'a str, TeamRole)],
);

/// Seeds demo teams and people (idempotent), so team pages have members
/// before anyone signs in. Sign-in later refreshes each person from the IdP.
pub async fn seed_demo(
    pool: &SqlitePool,
    teams: &[(&str, &str)],
    people: &[DemoPerson<'_>],
) -> Result<(), CoreError> {
    let now = now_unix();
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    for (name, display) in teams {
        identity::ensure_team(&mut tx, name, now).await?;
        sqlx::query!(
            "UPDATE teams SET display_name = ?2 WHERE name = ?1",
            name,
            display
        )
        .execute(&mut *tx)
        .await?;
    }
    for (subject, display, email, roles, memberships) in people {
        let user_id = sqlx::query_scalar!(
            r#"INSERT INTO users (subject, email, display_name, platform_roles, created_at)
               VALUES (?1, ?2, ?3, ?4, ?5)
               ON CONFLICT (subject) DO UPDATE SET subject = excluded.subject
               RETURNING id AS "id!""#,
            subject,
            email,
            display,
            roles,
            now
        )
        .fetch_one(&mut *tx)
        .await?;
        for (team, role) in memberships.iter() {
            let team_id = identity::ensure_team(&mut tx, team, now).await?;
            let role = role.as_str();
            sqlx::query!(
                "INSERT OR IGNORE INTO memberships (user_id, team_id, role) VALUES (?1, ?2, ?3)",
                user_id,
                team_id,
                role
            )
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[sqlx::test(migrations = "../migrations")]
    async fn seeded_team_lists_leads_first(pool: SqlitePool) {
        let people: &[DemoPerson] = &[
            (
                "u1",
                "Zed Dev",
                "z@x",
                "",
                &[("payments", TeamRole::Member)],
            ),
            ("u2", "Amy Lead", "a@x", "", &[("payments", TeamRole::Lead)]),
        ];
        seed_demo(&pool, &[("payments", "Payments")], people)
            .await
            .unwrap();
        seed_demo(&pool, &[("payments", "Payments")], people)
            .await
            .unwrap();
        let team = detail(&pool, "payments").await.unwrap();
        assert_eq!(team.display_name, "Payments");
        assert_eq!(team.members.len(), 2);
        assert_eq!(team.members[0].role, TeamRole::Lead);
        assert!(matches!(
            detail(&pool, "nope").await,
            Err(CoreError::NotFound(_))
        ));
        assert_eq!(list(&pool).await.unwrap()[0].member_count, 2);
    }
}
