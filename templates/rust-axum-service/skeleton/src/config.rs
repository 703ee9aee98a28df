//! Runtime configuration, read from environment variables.

use std::path::PathBuf;
use std::time::Duration;

/// The platform LLM gateway inside the cluster (OpenAI-compatible).
pub const DEFAULT_GATEWAY_URL: &str = "http://paved.platform.svc/llm/v1";
/// The model chosen when the service was created.
pub const DEFAULT_MODEL: &str = "${{ values.model }}";
/// Where the Vault Agent writes the gateway key, as `KEY=value` lines.
pub const DEFAULT_KEY_FILE: &str = "/vault/secrets/llm-gateway";
/// The variable holding the key, in the environment or in the key file.
pub const KEY_VAR: &str = "PAVED_LLM_GATEWAY_KEY";

/// Where the gateway key comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// Given directly (environment variable `PAVED_LLM_GATEWAY_KEY`).
    Static(String),
    /// Read from a `KEY=value` file on every call, so a key rotated in Vault
    /// is picked up without a restart.
    File(PathBuf),
}

impl KeySource {
    /// The current key, or why there is none.
    pub fn load(&self) -> Result<String, String> {
        match self {
            KeySource::Static(key) => Ok(key.clone()),
            KeySource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    format!(
                        "no LLM gateway key: {KEY_VAR} is not set and {} cannot be read ({e})",
                        path.display()
                    )
                })?;
                parse_key_file(&text).ok_or_else(|| {
                    format!(
                        "no LLM gateway key: {} has no {KEY_VAR}= line",
                        path.display()
                    )
                })
            }
        }
    }
}

/// Finds `PAVED_LLM_GATEWAY_KEY=value` in a dotenv-style file (as rendered by
/// the Vault Agent). Blank lines, comments and `export ` prefixes are allowed.
pub fn parse_key_file(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.strip_prefix("export ").unwrap_or(line).split_once('='))
        .find(|(key, _)| key.trim() == KEY_VAR)
        .map(|(_, value)| value.trim().trim_matches('"').to_owned())
        .filter(|value| !value.is_empty())
}

/// Everything the service needs to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// The address to listen on.
    pub listen: String,
    /// The gateway's base URL, without a trailing slash (`.../v1`).
    pub gateway_url: String,
    /// The model to ask for.
    pub model: String,
    /// Where the gateway key comes from.
    pub key: KeySource,
    /// The timeout of one gateway request.
    pub timeout: Duration,
    /// How many times one call is attempted (retries reuse the Idempotency-Key).
    pub max_attempts: u32,
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (tests pass a map here).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let key = match get(KEY_VAR) {
            Some(key) => KeySource::Static(key.trim().to_owned()),
            None => KeySource::File(
                get("PAVED_LLM_GATEWAY_KEY_FILE")
                    .unwrap_or_else(|| DEFAULT_KEY_FILE.to_owned())
                    .into(),
            ),
        };
        Self {
            listen: format!(
                "0.0.0.0:{}",
                get("PORT")
                    .and_then(|p| p.parse::<u16>().ok())
                    .unwrap_or(8080)
            ),
            gateway_url: get("PAVED_LLM_GATEWAY_URL")
                .unwrap_or_else(|| DEFAULT_GATEWAY_URL.to_owned())
                .trim_end_matches('/')
                .to_owned(),
            model: get("PAVED_LLM_MODEL").unwrap_or_else(|| DEFAULT_MODEL.to_owned()),
            key,
            timeout: Duration::from_secs(
                get("PAVED_LLM_TIMEOUT_SECONDS")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(30),
            ),
            max_attempts: get("PAVED_LLM_MAX_ATTEMPTS")
                .and_then(|s| s.parse().ok())
                .unwrap_or(2u32)
                .clamp(1, 5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Config {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_point_at_the_platform_gateway_and_the_vault_file() {
        let c = config(&[]);
        assert_eq!(c.gateway_url, DEFAULT_GATEWAY_URL);
        assert_eq!(c.model, DEFAULT_MODEL);
        assert_eq!(c.key, KeySource::File(DEFAULT_KEY_FILE.into()));
        assert_eq!(c.listen, "0.0.0.0:8080");
        assert_eq!(c.max_attempts, 2);
    }

    #[test]
    fn environment_overrides_win() {
        let c = config(&[
            ("PAVED_LLM_GATEWAY_URL", "http://127.0.0.1:9/v1/"),
            ("PAVED_LLM_GATEWAY_KEY", " k-123 "),
            ("PAVED_LLM_MODEL", "other-model"),
            ("PORT", "9000"),
        ]);
        assert_eq!(c.gateway_url, "http://127.0.0.1:9/v1");
        assert_eq!(c.key, KeySource::Static("k-123".into()));
        assert_eq!(c.model, "other-model");
        assert_eq!(c.listen, "0.0.0.0:9000");
    }

    #[test]
    fn key_file_lines_are_parsed() {
        let text =
            "# rendered by vault agent\nOTHER=1\nexport PAVED_LLM_GATEWAY_KEY=\"pk-abc=def\"\n";
        assert_eq!(parse_key_file(text).as_deref(), Some("pk-abc=def"));
        assert_eq!(parse_key_file("OTHER=1\n"), None);
        assert_eq!(parse_key_file("PAVED_LLM_GATEWAY_KEY=\n"), None);
    }

    #[test]
    fn key_file_is_read_on_each_load() {
        let path = std::env::temp_dir().join(format!("llm-gateway-{}", uuid::Uuid::new_v4()));
        let source = KeySource::File(path.clone());
        assert!(source.load().unwrap_err().contains("cannot be read"));
        std::fs::write(&path, "PAVED_LLM_GATEWAY_KEY=first\n").unwrap();
        assert_eq!(source.load().unwrap(), "first");
        std::fs::write(&path, "PAVED_LLM_GATEWAY_KEY=rotated\n").unwrap();
        assert_eq!(source.load().unwrap(), "rotated");
        std::fs::remove_file(&path).unwrap();
    }
}
