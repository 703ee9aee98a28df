//! People, teams, tokens and the audit log on the wire: what the identity
//! pages and `/api/v1/…` send.

use serde::{Deserialize, Serialize};

use crate::auth::{AuthMethod, Principal, TeamRole};

/// The signed-in caller as `GET /api/v1/me` answers it: roles and teams as
/// plain lists, a stable shape for scripts. The pages use [`Principal`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    /// The OIDC subject (or service-token name).
    pub subject: String,
    /// A name to show.
    pub display_name: String,
    /// E-mail, when known.
    pub email: Option<String>,
    /// `session`, `personal_token` or `service_token`.
    pub auth_method: AuthMethod,
    /// `platform_pm`, `platform_admin`.
    pub platform_roles: Vec<crate::auth::PlatformRole>,
    /// Team memberships.
    pub teams: Vec<Membership>,
}

/// One team the caller belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The team's name.
    pub team: String,
    /// `member` or `lead`.
    pub role: TeamRole,
}

impl From<&Principal> for Me {
    fn from(p: &Principal) -> Self {
        Me {
            subject: p.subject.clone(),
            display_name: p.display_name.clone(),
            email: p.email.clone(),
            auth_method: p.method.clone(),
            platform_roles: p.platform_roles.iter().copied().collect(),
            teams: p
                .teams
                .iter()
                .map(|(team, role)| Membership {
                    team: team.clone(),
                    role: *role,
                })
                .collect(),
        }
    }
}

/// A team with its members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamDetail {
    /// The team's name (`payments`).
    pub name: String,
    /// A name to show.
    pub display_name: String,
    /// Members, leads first.
    pub members: Vec<TeamMember>,
}

/// One member of a team.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamMember {
    /// A name to show.
    pub display_name: String,
    /// E-mail, when known.
    pub email: Option<String>,
    /// `member` or `lead`.
    pub role: TeamRole,
}

/// A team page: the team, and what the catalog says about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamPage {
    /// The team and its members.
    pub team: TeamDetail,
    /// Members per the catalog Group of the same name (`user:…` references),
    /// `None` when the catalog has no such Group.
    pub catalog_members: Option<Vec<String>>,
    /// What the catalog says the team owns (references).
    pub owns: Vec<String>,
}

/// A personal API token as listed (never its value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Row id.
    pub id: i64,
    /// The label the user gave it.
    pub name: String,
    /// The first characters, to recognise it.
    pub prefix: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds, if ever used.
    pub last_used_at: Option<i64>,
    /// Unix seconds, if revoked.
    pub revoked_at: Option<i64>,
    /// Unix seconds: when it stops working.
    pub expires_at: i64,
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

/// A person as platform admins see them: enough to decide on their access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserAccess {
    /// Row id.
    pub id: i64,
    /// The OpenID Connect subject.
    pub subject: String,
    /// Display name.
    pub display_name: String,
    /// Unix seconds of the last sign-in.
    pub last_login_at: Option<i64>,
    /// Unix seconds, if disabled.
    pub disabled_at: Option<i64>,
    /// Tokens that still work.
    pub active_tokens: i64,
}

/// A person with the tokens that still work, for the admins' Access page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonAccess {
    /// The person (its fields sit beside `tokens` on the wire).
    #[serde(flatten)]
    pub person: UserAccess,
    /// Tokens that still work, newest first.
    pub tokens: Vec<TokenInfo>,
}

/// One audit-log entry as shown to admins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Row id.
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// Who did it.
    pub actor: String,
    /// What they did.
    pub action: String,
    /// What it was done to.
    pub target: String,
    /// JSON before the change.
    pub before: Option<String>,
    /// JSON after the change.
    pub after: Option<String>,
}

/// A page of the audit log, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    /// The entries on this page.
    pub entries: Vec<AuditEntry>,
    /// How many entries exist in all.
    pub total: i64,
    /// How many entries precede this page.
    pub offset: i64,
    /// The page size.
    pub limit: i64,
}

/// The audit log's page size on the Audit page.
pub const AUDIT_PAGE_SIZE: i64 = 50;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::PlatformRole;
    use std::collections::{BTreeMap, BTreeSet};

    #[test]
    fn me_keeps_the_api_shape() {
        let p = Principal {
            user_id: Some(7),
            subject: "dana".into(),
            display_name: "Dana".into(),
            email: None,
            method: AuthMethod::PersonalToken,
            platform_roles: BTreeSet::from([PlatformRole::PlatformPm]),
            teams: BTreeMap::from([("payments".to_owned(), TeamRole::Lead)]),
        };
        assert_eq!(
            serde_json::to_value(Me::from(&p)).unwrap(),
            serde_json::json!({
                "subject": "dana", "display_name": "Dana", "email": null,
                "auth_method": "personal_token", "platform_roles": ["platform_pm"],
                "teams": [{"team": "payments", "role": "lead"}]
            })
        );
    }
}
