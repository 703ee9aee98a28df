//! Roles, the group-to-role mapping, the signed-in [`Principal`] and the one
//! authorization helper every server function and endpoint uses.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::CoreError;

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

/// What one group (or service token) grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappedRole {
    /// A platform-wide role.
    Platform(PlatformRole),
    /// A role in a team; `team` may be `*` in a mapping rule, meaning "the
    /// part of the group name the `*` matched".
    Team {
        /// The team name.
        team: String,
        /// The role in it.
        role: TeamRole,
    },
}

impl MappedRole {
    /// Parses `platform_admin`, `platform_pm`, `developer:<team>` or `team_lead:<team>`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if let Some(role) = PlatformRole::parse(raw) {
            return Ok(MappedRole::Platform(role));
        }
        let (kind, team) = raw.split_once(':').ok_or_else(|| {
            format!("`{raw}` is not one of platform_admin, platform_pm, developer:<team>, team_lead:<team>")
        })?;
        let role = match kind {
            "developer" => TeamRole::Member,
            "team_lead" => TeamRole::Lead,
            other => {
                return Err(format!(
                    "unknown role `{other}` (use developer or team_lead)"
                ))
            }
        };
        if team != "*" && !is_valid_team_name(team) {
            return Err(format!(
                "`{team}` is not a valid team name (lowercase letters, digits and dashes)"
            ));
        }
        Ok(MappedRole::Team {
            team: team.to_owned(),
            role,
        })
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

/// One `group-pattern=role` rule. The pattern may contain one `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingRule {
    prefix: String,
    suffix: Option<String>,
    role: MappedRole,
}

/// Ordered rules turning identity-provider groups into teams and roles. For
/// each group the first matching rule wins.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoleMapping {
    rules: Vec<MappingRule>,
}

/// The teams and platform roles a set of groups grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Platform-wide roles.
    pub platform_roles: BTreeSet<PlatformRole>,
    /// Team name to role (lead outranks member).
    pub teams: BTreeMap<String, TeamRole>,
}

impl Grants {
    /// Whether nothing was granted (the person sees the "ask your platform team" page).
    pub fn is_empty(&self) -> bool {
        self.platform_roles.is_empty() && self.teams.is_empty()
    }

    fn add(&mut self, role: MappedRole) {
        match role {
            MappedRole::Platform(p) => {
                self.platform_roles.insert(p);
            }
            MappedRole::Team { team, role } => {
                let entry = self.teams.entry(team).or_insert(role);
                *entry = (*entry).max(role);
            }
        }
    }
}

impl RoleMapping {
    /// Parses comma-separated `pattern=role` rules, e.g.
    /// `paved-admins=platform_admin,team-*-leads=team_lead:*,team-*=developer:*`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut rules = Vec::new();
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (pattern, role) = entry
                .split_once('=')
                .ok_or_else(|| format!("rule `{entry}` is not `group=role`"))?;
            let pattern = pattern.trim();
            if pattern.is_empty() {
                return Err(format!("rule `{entry}` has an empty group pattern"));
            }
            let role = MappedRole::parse(role)?;
            let (prefix, suffix) = match pattern.split_once('*') {
                Some((p, s)) if !s.contains('*') => (p.to_owned(), Some(s.to_owned())),
                Some(_) => return Err(format!("pattern `{pattern}` has more than one `*`")),
                None => (pattern.to_owned(), None),
            };
            if suffix.is_none() && matches!(&role, MappedRole::Team { team, .. } if team == "*") {
                return Err(format!(
                    "rule `{entry}` uses team `*` but its pattern has no `*`"
                ));
            }
            rules.push(MappingRule {
                prefix,
                suffix,
                role,
            });
        }
        if rules.is_empty() {
            return Err("no rules given".into());
        }
        Ok(Self { rules })
    }

    /// Maps groups to grants. Groups that match no rule are ignored; a `*`
    /// capture that is not a valid team name is ignored too.
    pub fn grants_for<S: AsRef<str>>(&self, groups: &[S]) -> Grants {
        let mut grants = Grants::default();
        for group in groups {
            let group = group.as_ref();
            for rule in &self.rules {
                let captured = match &rule.suffix {
                    None if group == rule.prefix => None,
                    None => continue,
                    Some(suffix) => {
                        let Some(middle) = group
                            .strip_prefix(rule.prefix.as_str())
                            .and_then(|rest| rest.strip_suffix(suffix.as_str()))
                        else {
                            continue;
                        };
                        if middle.is_empty() {
                            continue;
                        }
                        Some(middle)
                    }
                };
                let role = match (&rule.role, captured) {
                    (MappedRole::Team { team, role }, Some(c)) if team == "*" => {
                        if !is_valid_team_name(c) {
                            continue;
                        }
                        MappedRole::Team {
                            team: c.to_owned(),
                            role: *role,
                        }
                    }
                    (role, _) => role.clone(),
                };
                grants.add(role);
                break;
            }
        }
        grants
    }
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

    /// Whether the caller has no team and no platform role.
    pub fn has_no_access(&self) -> bool {
        self.platform_roles.is_empty() && self.teams.is_empty()
    }
}

/// The one authorization check. `Ok` when `principal` may perform `action`;
/// otherwise a [`CoreError::Forbidden`] whose message says what is needed.
pub fn authorize(principal: &Principal, action: Action<'_>) -> Result<(), CoreError> {
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
        Err(CoreError::Forbidden(forbidden_message(action)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_ROLE_MAPPING;

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
    fn default_mapping_turns_groups_into_teams_and_roles() {
        let mapping = RoleMapping::parse(DEFAULT_ROLE_MAPPING).unwrap();
        let grants = mapping.grants_for(&[
            "team-payments",
            "team-search-leads",
            "paved-platform-pms",
            "unrelated",
        ]);
        assert_eq!(grants.teams.get("payments"), Some(&TeamRole::Member));
        assert_eq!(grants.teams.get("search"), Some(&TeamRole::Lead));
        assert!(!grants.teams.contains_key("search-leads"));
        assert_eq!(
            grants.platform_roles,
            BTreeSet::from([PlatformRole::PlatformPm])
        );
    }

    #[test]
    fn lead_outranks_member_whatever_the_group_order() {
        let mapping = RoleMapping::parse(DEFAULT_ROLE_MAPPING).unwrap();
        for groups in [
            ["team-payments-leads", "team-payments"],
            ["team-payments", "team-payments-leads"],
        ] {
            let grants = mapping.grants_for(&groups);
            assert_eq!(grants.teams.get("payments"), Some(&TeamRole::Lead));
        }
    }

    #[test]
    fn unmapped_groups_grant_nothing() {
        let mapping = RoleMapping::parse(DEFAULT_ROLE_MAPPING).unwrap();
        assert!(mapping
            .grants_for(&["everyone", "team-", "team-Bad_Name"])
            .is_empty());
        assert!(mapping.grants_for::<&str>(&[]).is_empty());
    }

    #[test]
    fn explicit_team_rules_and_bad_rules() {
        let mapping =
            RoleMapping::parse("okta-pay=developer:payments, okta-admins = platform_admin")
                .unwrap();
        let grants = mapping.grants_for(&["okta-pay", "okta-admins"]);
        assert_eq!(grants.teams.get("payments"), Some(&TeamRole::Member));
        assert!(grants.platform_roles.contains(&PlatformRole::PlatformAdmin));
        assert!(RoleMapping::parse("a=developer:*").is_err());
        assert!(RoleMapping::parse("a*b*=developer:*").is_err());
        assert!(RoleMapping::parse("a=wizard").is_err());
        assert!(RoleMapping::parse("").is_err());
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
        assert_eq!(err.status_code(), 403);
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
