//! Teams and their members.

use sqlx::SqlitePool;

use crate::auth::TeamRole;
use crate::{identity, now_unix, CoreError};

pub use paved_shared::identity::{TeamDetail, TeamMember, TeamPage};

pub use paved_store::teams::TeamSummary;

/// All teams, by name.
pub async fn list(db: impl Into<paved_store::Db<'_>>) -> Result<Vec<TeamSummary>, CoreError> {
    Ok(paved_store::teams::list(db.into()).await?)
}

/// One team with members, or [`CoreError::NotFound`].
pub async fn detail(
    db: impl Into<paved_store::Db<'_>>,
    name: &str,
) -> Result<TeamDetail, CoreError> {
    let db = db.into();
    let team = paved_store::teams::find(db, name)
        .await?
        .ok_or_else(|| CoreError::NotFound(format!("team {name}")))?;
    let members = paved_store::teams::members(db, team.id).await?;
    Ok(TeamDetail {
        name: team.name,
        display_name: team.display_name,
        members: members
            .into_iter()
            .filter_map(|m| {
                Some(TeamMember {
                    display_name: m.display_name,
                    email: m.email,
                    role: TeamRole::parse(&m.role)?,
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
        identity::ensure_team(&mut *tx, name, now).await?;
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
            let team_id = identity::ensure_team(&mut *tx, team, now).await?;
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

    /// The same rows give the same answers on SQLite and PostgreSQL.
    #[tokio::test]
    async fn teams_and_the_audit_log_read_alike_on_both_backends() {
        let Some((sqlite, postgres)) = crate::db::both_backends("teams").await else {
            return;
        };
        let seed = [
            "INSERT INTO users (subject, display_name, email, created_at) VALUES ('u1', 'Zed Dev', 'z@x', 1)",
            "INSERT INTO users (subject, display_name, email, created_at) VALUES ('u2', 'Amy Lead', NULL, 1)",
            "INSERT INTO users (subject, display_name, email, created_at) VALUES ('u3', 'Bo Dev', 'b@x', 1)",
            "INSERT INTO teams (name, display_name, created_at) VALUES ('search', 'Search', 1)",
            "INSERT INTO teams (name, display_name, created_at) VALUES ('payments', 'Payments', 1)",
            "INSERT INTO teams (name, display_name, created_at) VALUES ('Zeta', 'Zeta', 1)",
            "INSERT INTO memberships (user_id, team_id, role) SELECT u.id, t.id, 'member' FROM users u, teams t WHERE u.subject IN ('u1', 'u3') AND t.name = 'payments'",
            "INSERT INTO memberships (user_id, team_id, role) SELECT u.id, t.id, 'lead' FROM users u, teams t WHERE u.subject = 'u2' AND t.name = 'payments'",
            "INSERT INTO audit_log (at, actor, action, target, before_json, after_json) VALUES (10, 'user:u1', 'token.create', 'token:1', NULL, '{}')",
            "INSERT INTO audit_log (at, actor, action, target, before_json, after_json) VALUES (30, 'user:u2', 'budget.set', 'team:payments', '{\"a\":1}', '{\"a\":2}')",
            "INSERT INTO audit_log (at, actor, action, target, before_json, after_json) VALUES (20, 'service:ci', 'secret.put', 'team:search', NULL, NULL)",
        ];
        for statement in seed {
            sqlx::query(statement).execute(&sqlite).await.unwrap();
            sqlx::query(statement).execute(&postgres).await.unwrap();
        }
        let on_sqlite = (
            list(&sqlite).await.unwrap(),
            detail(&sqlite, "payments").await.unwrap(),
            crate::audit::list(&sqlite, 1, 5).await.unwrap(),
        );
        let on_postgres = (
            list(&postgres).await.unwrap(),
            detail(&postgres, "payments").await.unwrap(),
            crate::audit::list(&postgres, 1, 5).await.unwrap(),
        );
        assert_eq!(on_sqlite, on_postgres);
        let (teams, payments, audit) = on_postgres;
        let names: Vec<(&str, i64)> = teams
            .iter()
            .map(|t| (t.name.as_str(), t.member_count))
            .collect();
        // Byte order, as SQLite sorts: upper case first.
        assert_eq!(names, [("Zeta", 0), ("payments", 3), ("search", 0)]);
        let members: Vec<(&str, TeamRole)> = payments
            .members
            .iter()
            .map(|m| (m.display_name.as_str(), m.role))
            .collect();
        assert_eq!(
            members,
            [
                ("Amy Lead", TeamRole::Lead),
                ("Bo Dev", TeamRole::Member),
                ("Zed Dev", TeamRole::Member)
            ]
        );
        assert_eq!(audit.total, 3);
        let actions: Vec<&str> = audit.entries.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(
            actions,
            ["secret.put", "token.create"],
            "newest first, one skipped"
        );
        assert!(matches!(
            detail(&postgres, "nope").await,
            Err(CoreError::NotFound(_))
        ));
    }
}
