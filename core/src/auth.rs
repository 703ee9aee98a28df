//! The group-to-role mapping: which teams and platform roles an identity
//! provider's groups grant. The roles themselves, the signed-in [`Principal`]
//! and the one authorization rule live in `paved-shared`, so the browser asks
//! the same [`authorize`] the server enforces.

use std::collections::{BTreeMap, BTreeSet};

pub use paved_shared::auth::{
    authorize, is_valid_team_name, Action, AuthMethod, Forbidden, PlatformRole, Principal, TeamRole,
};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_ROLE_MAPPING;
    use crate::CoreError;

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
    fn a_refusal_is_a_403_naming_what_is_needed() {
        let dev = paved_shared::auth::testing::member("payments");
        let err = CoreError::from(authorize(&dev, Action::ViewAuditLog).unwrap_err());
        assert_eq!(err.status_code(), 403);
        assert!(err.to_string().contains("platform admins"));
    }
}
