//! `PAVED_OUTCOMES_*` and `PAVED_EVENTS_*`: how delivery events are read
//! and attributed.

use secrecy::SecretString;

use crate::config::ConfigError;

/// How delivery events become DORA's five keys.
#[derive(Debug)]
pub struct OutcomesConfig {
    /// `PAVED_OUTCOMES_PRODUCTION`: comma-separated patterns (`*` wildcards,
    /// case-insensitive) of the environments that count as production.
    pub production: Vec<globset::GlobMatcher>,
    /// The same patterns as written, for people.
    pub production_patterns: Vec<String>,
    /// `PAVED_OUTCOMES_LOOKBACK_DAYS`: how far back a component's first
    /// deployment reaches for its changes (default 30).
    pub first_deploy_lookback_secs: i64,
    /// `PAVED_OUTCOMES_INCIDENT_WINDOW_HOURS`: an incident without an explicit
    /// cause is attributed to the component's latest production deployment
    /// at most this long before it (default 168, one week).
    pub incident_window_secs: i64,
    /// `PAVED_OUTCOMES_INCIDENT_LABEL`: the GitHub issue label that makes an
    /// issue an incident (default `incident`).
    pub incident_label: String,
    /// `PAVED_OUTCOMES_DEPLOY_WORKFLOWS`: comma-separated patterns over a
    /// GitHub Actions workflow's name or path whose successful runs count as
    /// deployments (none by default).
    pub deploy_workflows: Vec<globset::GlobMatcher>,
    /// `PAVED_EVENTS_GITHUB_SECRET`: the secret of the default GitHub source.
    pub github_secret: Option<SecretString>,
    /// `PAVED_EVENTS_GITLAB_TOKEN`: the token of the default GitLab source.
    pub gitlab_token: Option<SecretString>,
    /// `PAVED_SURVEY_KEY` (at least 32 characters): the key that lets a
    /// person find their own survey answer while the survey is open. It is
    /// never stored in the database, so the tables alone never link an
    /// answer to a person. Unset: a random key per process (an answer given
    /// before a restart can then no longer be changed).
    pub survey_key: SecretString,
    /// `PAVED_DASHBOARD_REFRESH_SECONDS`: how long the platform home's
    /// numbers are kept before they are computed again (default 30; 0
    /// computes them on every read).
    pub dashboard_refresh_secs: i64,
}

impl OutcomesConfig {
    /// Whether `environment` counts as production.
    pub fn is_production(&self, environment: &str) -> bool {
        let env = environment.to_ascii_lowercase();
        self.production.iter().any(|g| g.is_match(&env))
    }

    /// Whether a workflow run (by name or path) counts as a deployment.
    pub fn is_deploy_workflow(&self, name: &str, path: &str) -> bool {
        self.deploy_workflows
            .iter()
            .any(|g| g.is_match(name) || g.is_match(path))
    }
}

impl Default for OutcomesConfig {
    fn default() -> Self {
        parse(&|_| None).expect("the defaults are valid")
    }
}

fn globs(
    var: &'static str,
    raw: &str,
    lowercase: bool,
) -> Result<Vec<globset::GlobMatcher>, ConfigError> {
    raw.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let p = if lowercase {
                p.to_ascii_lowercase()
            } else {
                p.to_owned()
            };
            globset::Glob::new(&p)
                .map(|g| g.compile_matcher())
                .map_err(|e| ConfigError::new(var, format!("`{p}` is not a pattern: {e}")))
        })
        .collect()
}

fn hours_or_days(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: i64,
    unit_secs: i64,
) -> Result<i64, ConfigError> {
    match get(var) {
        None => Ok(default * unit_secs),
        Some(raw) => match raw.trim().parse::<i64>() {
            Ok(n) if (1..=3650 * 24).contains(&n) => Ok(n * unit_secs),
            _ => Err(ConfigError::new(
                var,
                format!("`{raw}` is not a positive whole number"),
            )),
        },
    }
}

/// Reads the settings through `get` (unset or blank variables give `None`).
pub fn parse(get: &impl Fn(&str) -> Option<String>) -> Result<OutcomesConfig, ConfigError> {
    let production_raw = get("PAVED_OUTCOMES_PRODUCTION")
        .unwrap_or_else(|| "production,prod,prod-*,production-*".into());
    let production = globs("PAVED_OUTCOMES_PRODUCTION", &production_raw, true)?;
    if production.is_empty() {
        return Err(ConfigError::new(
            "PAVED_OUTCOMES_PRODUCTION",
            "names no environment; give at least one pattern such as production",
        ));
    }
    let incident_label = get("PAVED_OUTCOMES_INCIDENT_LABEL").unwrap_or_else(|| "incident".into());
    if incident_label.len() > 50 {
        return Err(ConfigError::new(
            "PAVED_OUTCOMES_INCIDENT_LABEL",
            "is longer than GitHub's 50-character label limit",
        ));
    }
    Ok(OutcomesConfig {
        production_patterns: production_raw
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
        production,
        first_deploy_lookback_secs: hours_or_days(get, "PAVED_OUTCOMES_LOOKBACK_DAYS", 30, 86_400)?,
        incident_window_secs: hours_or_days(
            get,
            "PAVED_OUTCOMES_INCIDENT_WINDOW_HOURS",
            168,
            3_600,
        )?,
        incident_label,
        deploy_workflows: globs(
            "PAVED_OUTCOMES_DEPLOY_WORKFLOWS",
            &get("PAVED_OUTCOMES_DEPLOY_WORKFLOWS").unwrap_or_default(),
            false,
        )?,
        github_secret: get("PAVED_EVENTS_GITHUB_SECRET").map(SecretString::from),
        gitlab_token: get("PAVED_EVENTS_GITLAB_TOKEN").map(SecretString::from),
        survey_key: match get("PAVED_SURVEY_KEY") {
            Some(key) if key.trim().len() >= 32 => SecretString::from(key.trim().to_owned()),
            Some(_) => return Err(ConfigError::new(
                "PAVED_SURVEY_KEY",
                "is shorter than 32 characters; use a random value such as `openssl rand -hex 32`",
            )),
            None => SecretString::from(hex::encode(rand::random::<[u8; 32]>())),
        },
        dashboard_refresh_secs: match get("PAVED_DASHBOARD_REFRESH_SECONDS") {
            None => 30,
            Some(raw) => match raw.trim().parse::<i64>() {
                Ok(n) if (0..=3600).contains(&n) => n,
                _ => {
                    return Err(ConfigError::new(
                        "PAVED_DASHBOARD_REFRESH_SECONDS",
                        format!("`{raw}` is not a whole number of seconds from 0 to 3600"),
                    ))
                }
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_is_matched_by_pattern_case_insensitively() {
        let config = OutcomesConfig::default();
        for env in [
            "production",
            "Production",
            "prod",
            "prod-eu",
            "production-us",
        ] {
            assert!(config.is_production(env), "{env}");
        }
        for env in ["staging", "preprod", "dev"] {
            assert!(!config.is_production(env), "{env}");
        }
        let custom =
            parse(&|k| (k == "PAVED_OUTCOMES_PRODUCTION").then(|| "live, *-prd".into())).unwrap();
        assert!(custom.is_production("eu-prd") && custom.is_production("LIVE"));
        assert!(!custom.is_production("production"));
    }

    #[test]
    fn bad_values_name_their_variable() {
        let err =
            parse(&|k| (k == "PAVED_OUTCOMES_LOOKBACK_DAYS").then(|| "soon".into())).unwrap_err();
        assert_eq!(err.var, "PAVED_OUTCOMES_LOOKBACK_DAYS");
        let err = parse(&|k| (k == "PAVED_OUTCOMES_PRODUCTION").then(|| " , ".into())).unwrap_err();
        assert_eq!(err.var, "PAVED_OUTCOMES_PRODUCTION");
        let err =
            parse(&|k| (k == "PAVED_OUTCOMES_DEPLOY_WORKFLOWS").then(|| "[".into())).unwrap_err();
        assert_eq!(err.var, "PAVED_OUTCOMES_DEPLOY_WORKFLOWS");
        let err =
            parse(&|k| (k == "PAVED_DASHBOARD_REFRESH_SECONDS").then(|| "-1".into())).unwrap_err();
        assert!(
            err.to_string().contains("PAVED_DASHBOARD_REFRESH_SECONDS"),
            "{err}"
        );
        assert_eq!(OutcomesConfig::default().dashboard_refresh_secs, 30);
        let err = parse(&|k| (k == "PAVED_SURVEY_KEY").then(|| "short".into())).unwrap_err();
        assert_eq!(err.var, "PAVED_SURVEY_KEY");
    }
}
