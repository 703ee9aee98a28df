//! The server-function API and its wire types (DTOs). Each server function
//! is thin: `require_user()`, authorize, validate, call `paved_core`, map the error.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// The signed-in caller, as the UI and `GET /api/v1/me` see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    /// The OIDC subject (or service-token name).
    pub subject: String,
    /// A name to show.
    pub display_name: String,
    /// E-mail, when known.
    pub email: Option<String>,
    /// `session`, `personal_token` or `service_token`.
    pub auth_method: String,
    /// `platform_pm`, `platform_admin`.
    pub platform_roles: Vec<String>,
    /// Team memberships.
    pub teams: Vec<Membership>,
}

/// One team the caller belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The team's name.
    pub team: String,
    /// `member` or `lead`.
    pub role: String,
}

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

impl Me {
    /// Whether the caller is a platform admin.
    pub fn is_admin(&self) -> bool {
        self.platform_roles.iter().any(|r| r == "platform_admin")
    }

    /// Whether the caller is a platform PM.
    pub fn is_pm(&self) -> bool {
        self.platform_roles.iter().any(|r| r == "platform_pm")
    }

    /// Whether the caller sees every team's figures (platform PMs and admins).
    pub fn sees_platform_insights(&self) -> bool {
        self.is_admin() || self.is_pm()
    }

    /// Whether the caller may act in `team` (a member, a lead, or a platform admin).
    pub fn can_act_in(&self, team: &str) -> bool {
        self.is_admin() || self.teams.iter().any(|m| m.team == team)
    }

    /// Teams the caller leads.
    pub fn led_teams(&self) -> impl Iterator<Item = &str> {
        self.teams
            .iter()
            .filter(|m| m.role == "lead")
            .map(|m| m.team.as_str())
    }

    /// The home page to show.
    pub fn home_role(&self) -> HomeRole {
        if self.is_admin() {
            HomeRole::Admin
        } else if self.is_pm() {
            HomeRole::ProductManager
        } else if self.led_teams().next().is_some() {
            HomeRole::Lead
        } else if !self.teams.is_empty() {
            HomeRole::Developer
        } else {
            HomeRole::Unassigned
        }
    }
}

#[cfg(feature = "ssr")]
impl From<&paved_core::auth::Principal> for Me {
    fn from(p: &paved_core::auth::Principal) -> Self {
        use paved_core::auth::AuthMethod;
        Me {
            subject: p.subject.clone(),
            display_name: p.display_name.clone(),
            email: p.email.clone(),
            auth_method: match p.method {
                AuthMethod::Session => "session",
                AuthMethod::PersonalToken => "personal_token",
                AuthMethod::ServiceToken => "service_token",
            }
            .into(),
            platform_roles: p
                .platform_roles
                .iter()
                .map(|r| r.as_str().to_owned())
                .collect(),
            teams: p
                .teams
                .iter()
                .map(|(team, role)| Membership {
                    team: team.clone(),
                    role: role.as_str().to_owned(),
                })
                .collect(),
        }
    }
}

/// A team page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamView {
    /// The team's name.
    pub name: String,
    /// A name to show.
    pub display_name: String,
    /// Members, leads first.
    pub members: Vec<MemberView>,
    /// Members per the catalog Group of the same name (`user:…` references),
    /// `None` when the catalog has no such Group.
    pub catalog_members: Option<Vec<String>>,
    /// What the catalog says the team owns (references).
    pub owns: Vec<String>,
}

/// A member on a team page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    /// A name to show.
    pub display_name: String,
    /// E-mail, when known.
    pub email: Option<String>,
    /// `member` or `lead`.
    pub role: String,
}

/// A personal API token in the list (never its value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenView {
    /// Row id.
    pub id: i64,
    /// Its label.
    pub name: String,
    /// The first characters of the value.
    pub prefix: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub last_used_at: Option<i64>,
    /// Unix seconds.
    pub revoked_at: Option<i64>,
    /// Unix seconds: when it stops working.
    pub expires_at: i64,
}

#[cfg(feature = "ssr")]
impl From<paved_core::tokens::TokenInfo> for TokenView {
    fn from(t: paved_core::tokens::TokenInfo) -> Self {
        Self {
            id: t.id,
            name: t.name,
            prefix: t.prefix,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
            expires_at: t.expires_at,
        }
    }
}

/// A token just created: the only time its value is sent anywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedToken {
    /// Row id.
    pub id: i64,
    /// Its label.
    pub name: String,
    /// The value, to copy now.
    pub value: String,
    /// Unix seconds: when it stops working.
    pub expires_at: i64,
}

/// One audit-log row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    /// Unix seconds.
    pub at: i64,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// To what.
    pub target: String,
    /// JSON before.
    pub before: Option<String>,
    /// JSON after.
    pub after: Option<String>,
}

/// A page of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditLogPage {
    /// Rows, newest first.
    pub rows: Vec<AuditRow>,
    /// Total rows.
    pub total: i64,
    /// Offset of this page.
    pub offset: i64,
    /// Page size.
    pub limit: i64,
}

/// The page size of the audit log.
pub const AUDIT_PAGE_SIZE: i64 = 50;

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
pub async fn current_user() -> Result<Me, AppError> {
    let user = crate::ssr::require_user()?;
    Ok(Me::from(&user))
}

/// A team with its members; members of the team, PMs and admins only.
#[server(endpoint = "team_detail")]
pub async fn team_detail(name: String) -> Result<TeamView, AppError> {
    use paved_core::auth::{authorize, Action};
    let user = crate::ssr::require_user()?;
    authorize(&user, Action::ViewTeam(&name))?;
    let core = crate::ssr::core()?;
    let team = paved_core::teams::detail(&core.db, &name).await?;
    // Catalog Groups are the portal's teams: the Group with the team's name.
    let group =
        match paved_core::catalog::store::entity_by_ref(&core.db, &format!("group:default/{name}"))
            .await
        {
            Ok(g) => Some(g),
            Err(paved_core::CoreError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
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
    let catalog_members = group.as_ref().map(|_| related("hasMember"));
    let owns = related("ownerOf");
    Ok(TeamView {
        catalog_members,
        owns,
        name: team.name,
        display_name: team.display_name,
        members: team
            .members
            .into_iter()
            .map(|m| MemberView {
                display_name: m.display_name,
                email: m.email,
                role: m.role.as_str().to_owned(),
            })
            .collect(),
    })
}

/// The caller's personal API tokens.
#[server(endpoint = "list_tokens")]
pub async fn list_tokens() -> Result<Vec<TokenView>, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let tokens = paved_core::tokens::list_own(&core.db, &user).await?;
    Ok(tokens.into_iter().map(TokenView::from).collect())
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
pub async fn audit_log(offset: i64) -> Result<AuditLogPage, AppError> {
    use paved_core::auth::{authorize, Action};
    let user = crate::ssr::require_user()?;
    authorize(&user, Action::ViewAuditLog)?;
    let core = crate::ssr::core()?;
    let page = paved_core::audit::list(&core.db, offset, AUDIT_PAGE_SIZE).await?;
    Ok(AuditLogPage {
        rows: page
            .entries
            .into_iter()
            .map(|e| AuditRow {
                at: e.at,
                actor: e.actor,
                action: e.action,
                target: e.target,
                before: e.before,
                after: e.after,
            })
            .collect(),
        total: page.total,
        offset: offset.max(0),
        limit: AUDIT_PAGE_SIZE,
    })
}
