//! `PAVED_POLICY_*`: where the policies come from and how the admission
//! webhook is reached.

use std::path::PathBuf;

use secrecy::SecretString;

use crate::config::ConfigError;

/// Policy settings.
#[derive(Debug)]
pub struct PolicyConfig {
    /// `PAVED_POLICY_DIRS`: comma-separated folders of ConstraintTemplates,
    /// Constraints and `.rego` files (default `policies`, skipped when absent).
    pub dirs: Vec<PathBuf>,
    /// Whether the folders were named explicitly (then each must exist).
    pub explicit: bool,
    /// `PAVED_ADMISSION_TOKEN`: when set, the admission webhook requires it as
    /// a bearer token (the API server sends it from its admission kubeconfig).
    pub admission_token: Option<SecretString>,
    /// `PAVED_POLICY_VIOLATIONS_KEPT`: recorded violations kept, newest first
    /// (default 100000).
    pub violations_kept: i64,
}

pub(crate) fn parse(get: &impl Fn(&str) -> Option<String>) -> Result<PolicyConfig, ConfigError> {
    let (dirs, explicit) = match get("PAVED_POLICY_DIRS") {
        Some(raw) => (
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect::<Vec<_>>(),
            true,
        ),
        None => (vec![PathBuf::from("policies")], false),
    };
    if explicit {
        for dir in &dirs {
            if !dir.exists() {
                return Err(ConfigError::new(
                    "PAVED_POLICY_DIRS",
                    format!("`{}` does not exist", dir.display()),
                ));
            }
        }
    }
    let violations_kept = match get("PAVED_POLICY_VIOLATIONS_KEPT") {
        None => 100_000,
        Some(raw) => raw
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| (1_000..=100_000_000).contains(n))
            .ok_or_else(|| {
                ConfigError::new(
                    "PAVED_POLICY_VIOLATIONS_KEPT",
                    "must be a whole number from 1000 to 100000000",
                )
            })?,
    };
    Ok(PolicyConfig {
        dirs,
        explicit,
        admission_token: get("PAVED_ADMISSION_TOKEN").map(SecretString::from),
        violations_kept,
    })
}
