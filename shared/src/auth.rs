//! Who is calling and what they may do: platform and team roles, the
//! signed-in [`Principal`] and the one [`authorize`] rule. The server enforces
//! it on every call; the browser asks the same function to decide what to
//! show, so the two never disagree.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// A role that spans the whole platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlatformRole {
    /// Reviews adoption, NPS and outcomes across teams.
    PlatformPm,
    /// Owns templates, policies, locations and the audit log.
    PlatformAdmin,
}

impl PlatformRole {
    /// The role's configuration/storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            PlatformRole::PlatformPm => "platform_pm",
            PlatformRole::PlatformAdmin => "platform_admin",
        }
    }

    /// Parses a storage name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "platform_pm" => Some(PlatformRole::PlatformPm),
            "platform_admin" => Some(PlatformRole::PlatformAdmin),
            _ => None,
        }
    }
}

/// A person's role within one team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeamRole {
    /// A developer on the team.
    Member,
    /// The team's lead: sets budgets, destroys secrets.
    Lead,
}

impl TeamRole {
    /// The storage name (`member` / `lead`).
    pub fn as_str(self) -> &'static str {
        match self {
            TeamRole::Member => "member",
            TeamRole::Lead => "lead",
        }
    }

    /// Parses a storage name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "member" => Some(TeamRole::Member),
            "lead" => Some(TeamRole::Lead),
            _ => None,
        }
    }
}

/// Whether `name` is usable as a team name: 1–63 of `[a-z0-9-]`, not starting or ending with `-`.
pub fn is_valid_team_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// How a caller proved who it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A browser session after OpenID Connect sign-in.
    Session,
    /// A personal API token created in the UI.
    PersonalToken,
    /// A static service token from `PAVED_SERVICE_TOKENS`.
    ServiceToken,
}

/// The authenticated caller of a request. It holds no credentials, so a
/// scaffolder task can keep it to act as its creator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The user's row id; `None` for service tokens.
    pub user_id: Option<i64>,
    /// The OIDC subject, or the service token's name.
    pub subject: String,
    /// A name to show.
    pub display_name: String,
    /// E-mail, when known.
    pub email: Option<String>,
    /// How the caller authenticated.
    pub method: AuthMethod,
    /// Platform-wide roles.
    pub platform_roles: BTreeSet<PlatformRole>,
    /// Team memberships.
    pub teams: BTreeMap<String, TeamRole>,
}

/// What a caller wants to do; [`authorize`] decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'a> {
    /// Read the audit log.
    ViewAuditLog,
    /// See a team's page and members.
    ViewTeam(&'a str),
    /// Change a team's settings (budgets, destroying secrets).
    LeadTeam(&'a str),
    /// Act as a member of a team (create services, rotate secrets).
    ActInTeam(&'a str),
    /// Create or revoke one's own personal API tokens.
    ManageOwnTokens,
    /// Review adoption, NPS and outcomes across all teams.
    ViewPlatformInsights,
    /// Manage templates, policies and catalog locations.
    AdministerPlatform,
}

impl Principal {
    /// The actor string written to the audit log.
    pub fn actor(&self) -> String {
        match self.method {
            AuthMethod::ServiceToken => format!("service:{}", self.subject),
            _ => format!("user:{}", self.subject),
        }
    }

    /// Whether the caller holds `role`.
    pub fn has(&self, role: PlatformRole) -> bool {
        self.platform_roles.contains(&role)
    }

    /// Whether the caller is a platform admin.
    pub fn is_admin(&self) -> bool {
        self.has(PlatformRole::PlatformAdmin)
    }

    /// The caller's role in `team`, if any.
    pub fn team_role(&self, team: &str) -> Option<TeamRole> {
        self.teams.get(team).copied()
    }

    /// The teams the caller leads.
    pub fn led_teams(&self) -> impl Iterator<Item = &str> {
        self.teams
            .iter()
            .filter(|(_, role)| **role == TeamRole::Lead)
            .map(|(team, _)| team.as_str())
    }

    /// Whether the caller has no team and no platform role.
    pub fn has_no_access(&self) -> bool {
        self.platform_roles.is_empty() && self.teams.is_empty()
    }
}

/// The one authorization check. `Ok` when `principal` may perform `action`;
/// otherwise [`Forbidden`] with a message that says what is needed. The
/// server enforces it on every call; the browser asks it only to decide what
/// to offer.
pub fn authorize(principal: &Principal, action: Action<'_>) -> Result<(), Forbidden> {
    let allowed = match action {
        Action::ViewAuditLog | Action::AdministerPlatform => principal.is_admin(),
        Action::ViewPlatformInsights => {
            principal.is_admin() || principal.has(PlatformRole::PlatformPm)
        }
        Action::ViewTeam(team) => {
            principal.is_admin()
                || principal.has(PlatformRole::PlatformPm)
                || principal.team_role(team).is_some()
        }
        Action::ActInTeam(team) => principal.is_admin() || principal.team_role(team).is_some(),
        Action::LeadTeam(team) => {
            principal.is_admin() || principal.team_role(team) == Some(TeamRole::Lead)
        }
        Action::ManageOwnTokens => principal.user_id.is_some(),
    };
    if allowed {
        Ok(())
    } else {
        Err(Forbidden(forbidden_message(action)))
    }
}

fn forbidden_message(action: Action<'_>) -> String {
    match action {
        Action::ViewAuditLog => "The audit log is only open to platform admins.".into(),
        Action::AdministerPlatform => "Only platform admins can do this.".into(),
        Action::ViewPlatformInsights => {
            "Only platform PMs and admins can see platform insights.".into()
        }
        Action::ViewTeam(team) => format!("You are not a member of team {team}."),
        Action::ActInTeam(team) => format!("Only members of team {team} can do this."),
        Action::LeadTeam(team) => {
            format!("Only the lead of team {team} (or a platform admin) can do this.")
        }
        Action::ManageOwnTokens => {
            "Personal API tokens belong to people; service tokens cannot manage them.".into()
        }
    }
}

/// Why [`authorize`] refused: a message for the caller naming what is needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forbidden(pub String);

impl std::fmt::Display for Forbidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Forbidden {}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(platform: &[PlatformRole], teams: &[(&str, TeamRole)]) -> Principal {
        Principal {
            user_id: Some(1),
            subject: "s".into(),
            display_name: "S".into(),
            email: None,
            method: AuthMethod::Session,
            platform_roles: platform.iter().copied().collect(),
            teams: teams.iter().map(|(t, r)| (t.to_string(), *r)).collect(),
        }
    }

    #[test]
    fn authorize_checks_roles_and_teams() {
        let dev = principal(&[], &[("payments", TeamRole::Member)]);
        let lead = principal(&[], &[("payments", TeamRole::Lead)]);
        let pm = principal(&[PlatformRole::PlatformPm], &[]);
        let admin = principal(&[PlatformRole::PlatformAdmin], &[]);

        assert!(authorize(&dev, Action::ViewAuditLog).is_err());
        assert!(authorize(&admin, Action::ViewAuditLog).is_ok());
        assert!(authorize(&dev, Action::ViewTeam("payments")).is_ok());
        assert!(authorize(&dev, Action::ViewTeam("search")).is_err());
        assert!(authorize(&dev, Action::LeadTeam("payments")).is_err());
        assert!(authorize(&lead, Action::LeadTeam("payments")).is_ok());
        assert!(authorize(&lead, Action::LeadTeam("search")).is_err());
        assert!(authorize(&pm, Action::ViewPlatformInsights).is_ok());
        assert!(authorize(&dev, Action::ViewPlatformInsights).is_err());
        assert!(authorize(&pm, Action::ActInTeam("payments")).is_err());
        let err = authorize(&dev, Action::ViewAuditLog).unwrap_err();
        assert!(err.to_string().contains("platform admins"));
    }

    #[test]
    fn service_tokens_cannot_manage_personal_tokens() {
        let mut service = principal(&[PlatformRole::PlatformAdmin], &[]);
        service.user_id = None;
        service.method = AuthMethod::ServiceToken;
        assert!(authorize(&service, Action::ManageOwnTokens).is_err());
        assert_eq!(service.actor(), "service:s");
    }
}

/// Principals for tests, built the same way everywhere: `member("payments")`,
/// `lead("payments")`, `pm()`, `admin()`, adjusted with `named`, `also_member`
/// and `also_lead`. Each is a signed-in person (user id 1) unless
/// `as_service_token` says otherwise.
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    use super::{AuthMethod, PlatformRole, Principal, TeamRole};

    fn person() -> Principal {
        Principal {
            user_id: Some(1),
            subject: "dev".into(),
            display_name: "dev".into(),
            email: None,
            method: AuthMethod::Session,
            platform_roles: Default::default(),
            teams: Default::default(),
        }
    }

    /// A developer in `team`.
    pub fn member(team: &str) -> Principal {
        person().also_member(team)
    }

    /// The lead of `team`.
    pub fn lead(team: &str) -> Principal {
        person().also_lead(team)
    }

    /// A platform PM, in no team.
    pub fn pm() -> Principal {
        Principal {
            platform_roles: [PlatformRole::PlatformPm].into(),
            ..person()
        }
    }

    /// A platform admin, in no team.
    pub fn admin() -> Principal {
        Principal {
            platform_roles: [PlatformRole::PlatformAdmin].into(),
            ..person()
        }
    }

    impl Principal {
        /// The same roles under another subject (and display name).
        pub fn named(mut self, subject: &str) -> Self {
            subject.clone_into(&mut self.subject);
            subject.clone_into(&mut self.display_name);
            self
        }

        /// Adds membership of `team`.
        pub fn also_member(mut self, team: &str) -> Self {
            self.teams.insert(team.to_owned(), TeamRole::Member);
            self
        }

        /// Adds the lead role of `team`.
        pub fn also_lead(mut self, team: &str) -> Self {
            self.teams.insert(team.to_owned(), TeamRole::Lead);
            self
        }

        /// The same roles held by a service token (no user row).
        pub fn as_service_token(mut self) -> Self {
            self.user_id = None;
            self.method = AuthMethod::ServiceToken;
            self
        }
    }
}
