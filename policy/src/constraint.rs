//! Gatekeeper Constraints: which template, with what parameters, applied to
//! which objects (`spec.match`), and what happens on a violation where.

use serde_json::Value;

use crate::matcher::Match;
use crate::{PolicyError, Result};

/// What a violation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EnforcementAction {
    /// Recorded only.
    Dryrun,
    /// Allowed, with a warning.
    Warn,
    /// Refused.
    Deny,
}

impl EnforcementAction {
    pub fn parse(s: &str) -> Option<EnforcementAction> {
        match s.to_ascii_lowercase().as_str() {
            "deny" => Some(EnforcementAction::Deny),
            "warn" => Some(EnforcementAction::Warn),
            "dryrun" => Some(EnforcementAction::Dryrun),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EnforcementAction::Deny => "deny",
            EnforcementAction::Warn => "warn",
            EnforcementAction::Dryrun => "dryrun",
        }
    }
}

/// Where a policy is enforced. Gatekeeper's names where it has them, so a
/// constraint written for Gatekeeper scopes the same way in Paved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EnforcementPoint {
    /// The admission webhook (`validation.gatekeeper.sh`).
    Admission,
    /// CI: `paved policy test` (`gator.gatekeeper.sh`, Gatekeeper's CLI).
    Ci,
    /// The scaffolder's `policy:check` (`scaffolder.paved.dev`).
    Scaffolder,
    /// The playground and audits (`audit.gatekeeper.sh`).
    Audit,
}

impl EnforcementPoint {
    pub const ALL: [EnforcementPoint; 4] = [
        EnforcementPoint::Scaffolder,
        EnforcementPoint::Ci,
        EnforcementPoint::Admission,
        EnforcementPoint::Audit,
    ];

    /// The name used in `scopedEnforcementActions[].enforcementPoints[].name`.
    pub fn name(self) -> &'static str {
        match self {
            EnforcementPoint::Admission => "validation.gatekeeper.sh",
            EnforcementPoint::Ci => "gator.gatekeeper.sh",
            EnforcementPoint::Scaffolder => "scaffolder.paved.dev",
            EnforcementPoint::Audit => "audit.gatekeeper.sh",
        }
    }

    /// A short word for pages and stored violations.
    pub fn label(self) -> &'static str {
        match self {
            EnforcementPoint::Admission => "admission",
            EnforcementPoint::Ci => "ci",
            EnforcementPoint::Scaffolder => "scaffolder",
            EnforcementPoint::Audit => "audit",
        }
    }

    pub fn from_label(s: &str) -> Option<EnforcementPoint> {
        EnforcementPoint::ALL
            .into_iter()
            .find(|p| p.label() == s || p.name() == s)
    }
}

/// The action of a constraint at each enforcement point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actions {
    /// `spec.enforcementAction: deny|warn|dryrun` (default deny): the same everywhere.
    Everywhere(EnforcementAction),
    /// `spec.enforcementAction: scoped` with `scopedEnforcementActions`:
    /// `(action, point names)`, where `*` names every point.
    Scoped(Vec<(EnforcementAction, Vec<String>)>),
}

impl Actions {
    /// The action at `point`: the strictest that names it, or `None` when the
    /// constraint does not apply there.
    pub fn at(&self, point: EnforcementPoint) -> Option<EnforcementAction> {
        match self {
            Actions::Everywhere(action) => Some(*action),
            Actions::Scoped(scoped) => scoped
                .iter()
                .filter(|(_, points)| points.iter().any(|p| p == "*" || p == point.name()))
                .map(|(action, _)| *action)
                .max(),
        }
    }

    /// Each point and its action, for pages.
    pub fn summary(&self) -> Vec<(EnforcementPoint, Option<EnforcementAction>)> {
        EnforcementPoint::ALL
            .into_iter()
            .map(|p| (p, self.at(p)))
            .collect()
    }
}

/// A Constraint: an instance of a template's kind.
#[derive(Debug, Clone)]
pub struct Constraint {
    pub kind: String,
    pub name: String,
    pub parameters: Value,
    /// The parameters as regorus reads them, converted once.
    pub parameters_rego: regorus::Value,
    pub matcher: Match,
    pub actions: Actions,
    /// The constraint as written.
    pub source: Value,
}

impl Constraint {
    /// Read a Constraint (`constraints.gatekeeper.sh/v1beta1` or `v1alpha1`).
    pub fn from_value(value: &Value) -> Result<Constraint> {
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let name = value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let invalid = |message: String| PolicyError::Invalid {
            policy: format!("{kind}/{name}"),
            message,
        };
        if kind.is_empty() || name.is_empty() {
            return Err(invalid("kind and metadata.name are required".into()));
        }
        let spec = value.get("spec").cloned().unwrap_or(Value::Null);
        let parameters = spec.get("parameters").cloned().unwrap_or(Value::Null);
        let parameters = if parameters.is_null() {
            Value::Object(Default::default())
        } else {
            parameters
        };
        let matcher = Match::from_value(spec.get("match")).map_err(invalid)?;
        let action = spec
            .get("enforcementAction")
            .and_then(Value::as_str)
            .unwrap_or("deny");
        let actions = if action.eq_ignore_ascii_case("scoped") {
            let mut scoped = Vec::new();
            for entry in spec
                .get("scopedEnforcementActions")
                .and_then(Value::as_array)
                .ok_or_else(|| {
                    invalid("enforcementAction scoped needs scopedEnforcementActions".into())
                })?
            {
                let a = entry.get("action").and_then(Value::as_str).unwrap_or("");
                let a = EnforcementAction::parse(a).ok_or_else(|| {
                    invalid(format!(
                        "unknown action {a:?} in scopedEnforcementActions (deny, warn or dryrun)"
                    ))
                })?;
                let points: Vec<String> = entry
                    .get("enforcementPoints")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p.get("name").and_then(Value::as_str))
                    .map(|p| match EnforcementPoint::from_label(p) {
                        Some(point) => point.name().to_string(),
                        None => p.to_string(),
                    })
                    .collect();
                scoped.push((a, points));
            }
            Actions::Scoped(scoped)
        } else {
            Actions::Everywhere(EnforcementAction::parse(action).ok_or_else(|| {
                invalid(format!(
                    "unknown enforcementAction {action:?} (deny, warn, dryrun or scoped)"
                ))
            })?)
        };
        let parameters_rego = crate::template::to_rego(&parameters).map_err(invalid)?;
        Ok(Constraint {
            kind,
            name,
            parameters,
            parameters_rego,
            matcher,
            actions,
            source: value.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scoped_actions_pick_the_strictest_naming_the_point() {
        let c = Constraint::from_value(&json!({
            "kind": "K8sX", "metadata": {"name": "x"},
            "spec": {"enforcementAction": "scoped", "scopedEnforcementActions": [
                {"action": "deny", "enforcementPoints": [{"name": "scaffolder.paved.dev"}, {"name": "gator.gatekeeper.sh"}]},
                {"action": "warn", "enforcementPoints": [{"name": "validation.gatekeeper.sh"}, {"name": "scaffolder.paved.dev"}]}
            ]}
        }))
        .unwrap();
        assert_eq!(
            c.actions.at(EnforcementPoint::Scaffolder),
            Some(EnforcementAction::Deny)
        );
        assert_eq!(
            c.actions.at(EnforcementPoint::Ci),
            Some(EnforcementAction::Deny)
        );
        assert_eq!(
            c.actions.at(EnforcementPoint::Admission),
            Some(EnforcementAction::Warn)
        );
        assert_eq!(c.actions.at(EnforcementPoint::Audit), None);
    }

    #[test]
    fn default_is_deny_and_unknown_is_refused() {
        let c = Constraint::from_value(&json!({"kind": "K", "metadata": {"name": "n"}})).unwrap();
        assert_eq!(c.actions, Actions::Everywhere(EnforcementAction::Deny));
        let err = Constraint::from_value(&json!({"kind": "K", "metadata": {"name": "n"}, "spec": {"enforcementAction": "block"}}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown enforcementAction"), "{err}");
    }
}
