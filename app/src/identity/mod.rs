//! Identity in the UI: who is signed in, teams, personal tokens, the audit
//! log and the admins' Access page. Server functions here and beside each
//! page are thin: `require_user()`, typed input, one `paved_core` call.

pub mod access;
pub mod audit;
pub mod home;
pub mod profile;
pub mod signin;
pub mod team;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

pub use paved_shared::auth::{authorize, Action, Principal, TeamRole};
pub use paved_shared::identity::{AuditPage, CreatedToken, TeamPage, TokenInfo, AUDIT_PAGE_SIZE};

/// Which home page a person sees: their most senior role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HomeRole {
    /// Owns templates and policies.
    Admin,
    /// Reviews adoption and NPS.
    ProductManager,
    /// Leads a team.
    Lead,
    /// Builds services.
    Developer,
    /// Signed in, but no group maps to anything.
    Unassigned,
}

/// The home page `me` sees.
pub fn home_role(me: &Principal) -> HomeRole {
    if authorize(me, Action::AdministerPlatform).is_ok() {
        HomeRole::Admin
    } else if authorize(me, Action::ViewPlatformInsights).is_ok() {
        HomeRole::ProductManager
    } else if me.led_teams().next().is_some() {
        HomeRole::Lead
    } else if !me.teams.is_empty() {
        HomeRole::Developer
    } else {
        HomeRole::Unassigned
    }
}

/// A platform-wide problem every page mentions (e.g. Vault sealed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformNotice {
    /// What is wrong and what it means, for people.
    pub message: String,
}

/// Problems with services the portal depends on, shown as a banner on every page.
#[server(endpoint = "platform_notices")]
pub async fn platform_notices() -> Result<Vec<PlatformNotice>, AppError> {
    use paved_core::secrets::vault::VaultState;
    crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let mut notices = Vec::new();
    if let Some(vault) = &core.vault {
        let status = vault.status();
        if matches!(
            status.state,
            VaultState::Sealed
                | VaultState::Unreachable
                | VaultState::Uninitialized
                | VaultState::Unauthenticated
        ) {
            notices.push(PlatformNotice {
                message: format!(
                    "{} Secrets cannot be created or rotated until this is fixed; everything else works.",
                    status.detail
                ),
            });
        }
    }
    Ok(notices)
}

/// The signed-in caller.
#[server(endpoint = "current_user")]
pub async fn current_user() -> Result<Principal, AppError> {
    crate::ssr::require_user()
}

/// A team with its members; members of the team, PMs and admins only.
#[server(endpoint = "team_detail")]
pub async fn team_detail(name: String) -> Result<TeamPage, AppError> {
    let user = crate::ssr::require_user()?;
    Ok(paved_core::teams::page(&crate::ssr::core()?, &user, &name).await?)
}

/// The caller's personal API tokens.
#[server(endpoint = "list_tokens")]
pub async fn list_tokens() -> Result<Vec<TokenInfo>, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::tokens::list_own(&core.db, &user).await?)
}

/// Creates a personal API token; its value is returned this once.
#[server(endpoint = "create_token")]
pub async fn create_token(name: String, days: Option<u32>) -> Result<CreatedToken, AppError> {
    use secrecy::ExposeSecret;
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let token =
        paved_core::tokens::create(&core.db, &user, &name, days, &core.config.tokens).await?;
    Ok(CreatedToken {
        id: token.id,
        name: name.trim().to_owned(),
        value: token.value.expose_secret().to_owned(),
        expires_at: token.expires_at,
    })
}

/// Revokes one of the caller's tokens.
#[server(endpoint = "revoke_token")]
pub async fn revoke_token(id: i64) -> Result<(), AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    paved_core::tokens::revoke(&core.db, &user, id).await?;
    Ok(())
}

/// A page of the audit log; platform admins only.
#[server(endpoint = "audit_log")]
pub async fn audit_log(offset: i64) -> Result<AuditPage, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::audit::page(&core.db, &user, offset, AUDIT_PAGE_SIZE).await?)
}
