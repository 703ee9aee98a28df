//! Demo data for `PAVED_DEMO=true`: the teams and people of `demo/users.json`,
//! the same file the demo OpenID provider serves, so both agree on who exists.

use paved_core::auth::{Grants, PlatformRole};
use paved_core::config::Config;
use paved_core::teams::{self, DemoPerson};
use serde::Deserialize;
use sqlx::SqlitePool;

/// The demo people, shared with `end2end/oidc/provider.mjs`.
pub const DEMO_USERS_JSON: &str = include_str!("../../demo/users.json");

/// One demo person.
#[derive(Debug, Deserialize)]
pub struct DemoUser {
    /// Sign-in name (also the OIDC subject).
    pub username: String,
    /// Display name.
    pub name: String,
    /// E-mail.
    pub email: String,
    /// Identity-provider groups.
    pub groups: Vec<String>,
}

/// Seeds teams `payments` and `search` and the demo people, their roles
/// derived from their groups through the configured mapping, and the teams'
/// LLM budgets with gateway usage placed relative to `now_ms` (the budget
/// clock) in the budget time zone, and twelve weeks of delivery events.
pub async fn seed(
    pool: &SqlitePool,
    config: &Config,
    now_ms: i64,
) -> Result<(), Box<dyn std::error::Error>> {
    let users: Vec<DemoUser> = serde_json::from_str(DEMO_USERS_JSON)?;
    let grants: Vec<Grants> = users
        .iter()
        .map(|u| config.oidc.role_mapping.grants_for(&u.groups))
        .collect();
    let roles: Vec<String> = grants
        .iter()
        .map(|g| {
            g.platform_roles
                .iter()
                .map(|r: &PlatformRole| r.as_str())
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    let memberships: Vec<Vec<(&str, paved_core::auth::TeamRole)>> = grants
        .iter()
        .map(|g| g.teams.iter().map(|(t, r)| (t.as_str(), *r)).collect())
        .collect();
    let people: Vec<DemoPerson> = users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            (
                u.username.as_str(),
                u.name.as_str(),
                u.email.as_str(),
                roles[i].as_str(),
                memberships[i].as_slice(),
            )
        })
        .collect();
    teams::seed_demo(
        pool,
        &[("payments", "Payments"), ("search", "Search")],
        &people,
    )
    .await?;
    let tz = paved_core::budgets::period::time_zone(&config.llm.time_zone)?;
    paved_core::budgets::seed_demo(pool, &tz, now_ms).await?;
    paved_core::outcomes::demo::seed(pool, now_ms / 1000).await?;
    paved_core::outcomes::capabilities::seed_demo(pool, now_ms / 1000).await?;
    Ok(())
}
