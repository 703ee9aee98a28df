//! Typed configuration from `PAVED_*` environment variables, loaded once at
//! start-up. A missing or malformed value stops start-up with a message that
//! names the variable. Secret values are wrapped in [`SecretString`] so they
//! are never printed.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::auth::{MappedRole, RoleMapping};

/// A configuration problem, naming the variable at fault.
#[derive(Debug, thiserror::Error)]
#[error("configuration error in {var}: {message}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: &'static str,
    /// What is wrong with it.
    pub message: String,
}

/// `PAVED_DATABASE_URL` (default `sqlite://data/paved.db`), checked: what
/// the server and `paved migrate` open. Blank counts as unset.
pub fn database_url(lookup: impl Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    let url = lookup("PAVED_DATABASE_URL")
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "sqlite://data/paved.db".into());
    if !url.starts_with("sqlite:") {
        return Err(ConfigError::new(
            "PAVED_DATABASE_URL",
            "must be a SQLite URL such as sqlite://data/paved.db",
        ));
    }
    Ok(url)
}

/// `PAVED_DATABASE_URL` for `paved migrate`: a SQLite URL as for the server,
/// or a PostgreSQL one (`postgres://…`), whose schema replicas will share.
pub fn migration_url(lookup: impl Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    match lookup("PAVED_DATABASE_URL").filter(|v| !v.trim().is_empty()) {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => Ok(url),
        Some(url) if !url.starts_with("sqlite:") => Err(ConfigError::new(
            "PAVED_DATABASE_URL",
            "must be a SQLite URL such as sqlite://data/paved.db or a PostgreSQL URL such as postgres://paved@db/paved",
        )),
        _ => database_url(lookup),
    }
}

impl ConfigError {
    pub(crate) fn new(var: &'static str, message: impl Into<String>) -> Self {
        Self {
            var,
            message: message.into(),
        }
    }
}

/// The whole configuration.
#[derive(Debug)]
pub struct Config {
    /// `PAVED_BIND`: the socket address to listen on.
    pub bind: SocketAddr,
    /// `PAVED_PUBLIC_URL`: the URL people reach Paved at (used for redirects and CSRF checks).
    pub public_url: Url,
    /// `PAVED_DATABASE_URL`: the SQLite database.
    pub database_url: String,
    /// `PAVED_SITE_ROOT`: the folder holding the built `pkg/` assets.
    pub site_root: String,
    /// OpenID Connect settings.
    pub oidc: OidcConfig,
    /// `PAVED_SERVICE_TOKENS`: static bearer tokens for machines.
    pub service_tokens: Vec<ServiceToken>,
    /// `PAVED_SESSION_IDLE_MINUTES`: a session ends after this long without requests.
    pub session_idle: Duration,
    /// `PAVED_SESSION_MAX_HOURS`: a session ends this long after sign-in, whatever the activity.
    pub session_max_age: Duration,
    /// `PAVED_DEMO`: seed demo teams and people at start.
    pub demo: bool,
    /// Personal API token lifetimes.
    pub tokens: TokenLimits,
    /// `PAVED_SIGN_IN_STARTS_PER_MINUTE`: sign-ins one client address may
    /// start per minute (each writes a short-lived session).
    pub sign_in_starts_per_minute: u32,
    /// `PAVED_CLOCK_START`: the instant (unix ms) budgets and the gateway's
    /// ledger start from, advancing in real time; for tests and demos that
    /// must not depend on today's date. `None`: the system clock.
    pub clock_start_ms: Option<i64>,
    /// Catalog ingestion settings.
    pub catalog: CatalogConfig,
    /// `PAVED_VAULT_*`: where secrets are provisioned; `None` when `PAVED_VAULT_ADDR` is unset.
    pub vault: Option<VaultConfig>,
    /// `PAVED_SCAFFOLDER_*`: where tasks work and publish.
    pub scaffolder: ScaffolderConfig,
    /// `PAVED_LLM_*` and `PAVED_BUDGET_*`: the LLM gateway and budgets.
    pub llm: crate::gateway::config::LlmConfig,
    /// `PAVED_OUTCOMES_*` and `PAVED_EVENTS_*`: delivery events and DORA.
    pub outcomes: crate::outcomes::config::OutcomesConfig,
    /// `PAVED_POLICY_*` and `PAVED_ADMISSION_TOKEN`: policies and the admission webhook.
    pub policy: crate::policy::config::PolicyConfig,
    /// `PAVED_KUBE_*`: the clusters golden paths deploy to.
    pub kube: crate::kube::config::KubeConfig,
}

/// The scaffolder's settings.
#[derive(Debug, Clone)]
pub struct ScaffolderConfig {
    /// `PAVED_SCAFFOLDER_WORKDIR`: one workspace folder per task under here (default `data/scaffolder`).
    pub work_dir: std::path::PathBuf,
    /// `PAVED_SCAFFOLDER_GIT_HOSTS`: `host=target` pairs; a target is `file:///srv/git`
    /// (bare repositories under a folder) or an `https://` base URL to push to.
    pub git_hosts: Vec<GitHost>,
    /// `PAVED_SCAFFOLDER_WORKERS`: tasks run at once (default 2).
    pub workers: usize,
    /// `PAVED_SCAFFOLDER_GIT_CACERT`: a PEM file of CA certificates to trust for https git hosts.
    pub git_ca_cert: Option<std::path::PathBuf>,
}

/// Where `publish:git` pushes repositories for one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHost {
    /// The host name templates use in `repoUrl` (`git.paved.demo`, `github.com`).
    pub host: String,
    /// Where repositories go.
    pub target: GitTarget,
}

/// A git host's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitTarget {
    /// Bare repositories at `<root>/<owner>/<repo>.git`.
    Local(std::path::PathBuf),
    /// Push to `<base>/<owner>/<repo>.git`; credentials from Vault at `{prefix}/git/{host}`.
    Remote(Url),
}

/// How Paved reaches Vault (or OpenBao) and where it writes.
#[derive(Debug, Clone)]
pub struct VaultConfig {
    /// `PAVED_VAULT_ADDR`: the server address, e.g. `https://vault.example.com:8200`.
    pub address: Url,
    /// `PAVED_VAULT_CACERT`: a PEM file of CA certificates to trust for TLS.
    pub ca_cert: Option<std::path::PathBuf>,
    /// `PAVED_VAULT_NAMESPACE`: the Vault Enterprise / OpenBao namespace, if any.
    pub namespace: Option<String>,
    /// `PAVED_VAULT_KV_MOUNT`: the KV version 2 mount (default `secret`).
    pub kv_mount: String,
    /// `PAVED_VAULT_PREFIX`: the folder under the mount that Paved owns (default `platform`).
    pub prefix: String,
    /// `PAVED_VAULT_K8S_AUTH_MOUNT`: the Kubernetes auth mount workloads log in through
    /// (default `kubernetes`); Paved writes one role per service there.
    pub workload_auth_mount: String,
    /// `PAVED_VAULT_WORKLOAD_TOKEN_TTL`: the token TTL of the roles Paved writes (default `1h`).
    pub workload_token_ttl: String,
    /// How Paved itself authenticates.
    pub auth: VaultAuth,
    /// `PAVED_VAULT_HEALTH_SECONDS`: how often Vault's health is polled (default 5).
    pub health_interval: Duration,
}

/// How Paved authenticates to Vault (`PAVED_VAULT_AUTH`).
#[derive(Clone)]
pub enum VaultAuth {
    /// `token` (development): `PAVED_VAULT_TOKEN`, renewed before expiry when renewable.
    Token(SecretString),
    /// `kubernetes`: log in with the pod's service-account token.
    Kubernetes {
        /// `PAVED_VAULT_AUTH_MOUNT` (default `kubernetes`).
        mount: String,
        /// `PAVED_VAULT_AUTH_ROLE`: the Vault role Paved logs in as.
        role: String,
        /// `PAVED_VAULT_K8S_TOKEN_PATH` (default the projected service-account token).
        jwt_path: std::path::PathBuf,
    },
    /// `approle`: `PAVED_VAULT_APPROLE_ROLE_ID` and `PAVED_VAULT_APPROLE_SECRET_ID`.
    AppRole {
        /// `PAVED_VAULT_AUTH_MOUNT` (default `approle`).
        mount: String,
        /// The role id (not secret on its own).
        role_id: String,
        /// The secret id.
        secret_id: SecretString,
    },
}

impl std::fmt::Debug for VaultAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VaultAuth::Token(_) => f.write_str("Token([redacted])"),
            VaultAuth::Kubernetes {
                mount,
                role,
                jwt_path,
            } => f
                .debug_struct("Kubernetes")
                .field("mount", mount)
                .field("role", role)
                .field("jwt_path", jwt_path)
                .finish(),
            VaultAuth::AppRole { mount, role_id, .. } => f
                .debug_struct("AppRole")
                .field("mount", mount)
                .field("role_id", role_id)
                .field("secret_id", &"[redacted]")
                .finish(),
        }
    }
}

/// How long personal API tokens live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenLimits {
    /// `PAVED_TOKEN_DEFAULT_DAYS`: a new token's lifetime unless chosen.
    pub default_days: u32,
    /// `PAVED_TOKEN_MAX_DAYS`: the longest lifetime anyone may choose.
    pub max_days: u32,
    /// `PAVED_TOKEN_INACTIVE_DAYS`: tokens of people who have not signed in
    /// for this long stop working (until they sign in again).
    pub inactive_days: u32,
}

impl Default for TokenLimits {
    fn default() -> Self {
        Self {
            default_days: 90,
            max_days: 365,
            inactive_days: 30,
        }
    }
}

/// Where the catalog may read from, and how often it refreshes.
#[derive(Debug, Clone)]
pub struct CatalogConfig {
    /// `PAVED_CATALOG_FILE_ROOTS`: directories `file` locations may read under.
    pub file_roots: Vec<std::path::PathBuf>,
    /// `PAVED_CATALOG_ALLOWED_HOSTS`: origins (`host`, `host:port` or
    /// `http(s)://host[:port]`) `url` locations may fetch from.
    pub allowed_hosts: Vec<crate::catalog::source::AllowedOrigin>,
    /// `PAVED_INTEGRATIONS`: a YAML file of git hosts (kind, API, credential
    /// in Vault); their hosts are allowed for `url` locations too.
    pub integrations: Vec<crate::integrations::Integration>,
    /// `PAVED_CATALOG_REFRESH_MINUTES`: how often every location is re-read.
    pub refresh_interval: Duration,
    /// `PAVED_CATALOG_LOCATIONS`: locations (`file:<path>` or `url:<url>`) registered at start.
    pub locations: Vec<(String, String)>,
}

/// OpenID Connect client settings.
#[derive(Debug)]
pub struct OidcConfig {
    /// `PAVED_OIDC_ISSUER`: the issuer URL (discovery at `/.well-known/openid-configuration`).
    pub issuer: Url,
    /// `PAVED_OIDC_CLIENT_ID`.
    pub client_id: String,
    /// `PAVED_OIDC_CLIENT_SECRET`.
    pub client_secret: SecretString,
    /// `PAVED_OIDC_SCOPES`: space-separated scopes to request.
    pub scopes: Vec<String>,
    /// `PAVED_OIDC_GROUPS_CLAIM`: the ID-token claim holding groups; dots reach into objects
    /// (e.g. `realm_access.roles` for Keycloak realm roles).
    pub groups_claim: String,
    /// `PAVED_OIDC_ROLE_MAPPING`: how groups become teams and roles.
    pub role_mapping: RoleMapping,
}

/// A static service token (`name:token:role[:team]`).
pub struct ServiceToken {
    /// A label for logs and the audit log.
    pub name: String,
    /// The token value.
    pub token: SecretString,
    /// What the token may do.
    pub role: MappedRole,
}

impl std::fmt::Debug for ServiceToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceToken")
            .field("name", &self.name)
            .field("token", &"[redacted]")
            .field("role", &self.role)
            .finish()
    }
}

/// The default group-to-role mapping, documented in the README.
pub const DEFAULT_ROLE_MAPPING: &str = "paved-platform-admins=platform_admin,paved-platform-pms=platform_pm,team-*-leads=team_lead:*,team-*=developer:*";

impl Config {
    /// Loads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Loads the configuration through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let required = |var: &'static str| {
            get(var).ok_or_else(|| ConfigError::new(var, "is required but not set"))
        };

        let bind_raw = get("PAVED_BIND").unwrap_or_else(|| "127.0.0.1:3000".into());
        let bind: SocketAddr = bind_raw.parse().map_err(|_| {
            ConfigError::new(
                "PAVED_BIND",
                format!("`{bind_raw}` is not a socket address like 127.0.0.1:3000"),
            )
        })?;
        let public_raw = get("PAVED_PUBLIC_URL").unwrap_or_else(|| format!("http://{bind}"));
        let public_url = parse_http_url("PAVED_PUBLIC_URL", &public_raw)?;

        let database_url = database_url(get)?;

        let issuer = parse_http_url("PAVED_OIDC_ISSUER", &required("PAVED_OIDC_ISSUER")?)?;
        let client_id = required("PAVED_OIDC_CLIENT_ID")?;
        let client_secret = SecretString::from(required("PAVED_OIDC_CLIENT_SECRET")?);
        let scopes: Vec<String> = get("PAVED_OIDC_SCOPES")
            .unwrap_or_else(|| "openid email profile groups".into())
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if !scopes.iter().any(|s| s == "openid") {
            return Err(ConfigError::new(
                "PAVED_OIDC_SCOPES",
                "must include the `openid` scope",
            ));
        }
        let groups_claim = get("PAVED_OIDC_GROUPS_CLAIM").unwrap_or_else(|| "groups".into());
        let mapping_raw =
            get("PAVED_OIDC_ROLE_MAPPING").unwrap_or_else(|| DEFAULT_ROLE_MAPPING.into());
        let role_mapping = RoleMapping::parse(&mapping_raw)
            .map_err(|m| ConfigError::new("PAVED_OIDC_ROLE_MAPPING", m))?;

        let service_tokens = match get("PAVED_SERVICE_TOKENS") {
            Some(raw) => parse_service_tokens(&raw)?,
            None => Vec::new(),
        };

        let session_idle =
            Duration::from_secs(60 * parse_u64(&get, "PAVED_SESSION_IDLE_MINUTES", 480)?);
        let session_max_age =
            Duration::from_secs(3600 * parse_u64(&get, "PAVED_SESSION_MAX_HOURS", 24)?);
        let demo = match get("PAVED_DEMO").as_deref() {
            None | Some("0") | Some("false") => false,
            Some("1") | Some("true") => true,
            Some(other) => {
                return Err(ConfigError::new(
                    "PAVED_DEMO",
                    format!("`{other}` is not one of true, false, 1, 0"),
                ))
            }
        };
        let days = |var: &'static str, default: u64| -> Result<u32, ConfigError> {
            u32::try_from(parse_u64(&get, var, default)?)
                .ok()
                .filter(|n| (1..=3650).contains(n))
                .ok_or_else(|| ConfigError::new(var, "must be a number of days from 1 to 3650"))
        };
        let tokens = TokenLimits {
            default_days: days("PAVED_TOKEN_DEFAULT_DAYS", 90)?,
            max_days: days("PAVED_TOKEN_MAX_DAYS", 365)?,
            inactive_days: days("PAVED_TOKEN_INACTIVE_DAYS", 30)?,
        };
        if tokens.default_days > tokens.max_days {
            return Err(ConfigError::new(
                "PAVED_TOKEN_DEFAULT_DAYS",
                format!(
                    "{} is longer than PAVED_TOKEN_MAX_DAYS ({})",
                    tokens.default_days, tokens.max_days
                ),
            ));
        }
        let sign_in_starts_per_minute =
            u32::try_from(parse_u64(&get, "PAVED_SIGN_IN_STARTS_PER_MINUTE", 60)?)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    ConfigError::new(
                        "PAVED_SIGN_IN_STARTS_PER_MINUTE",
                        "must be a whole number from 1 up",
                    )
                })?;
        let clock_start_ms = match get("PAVED_CLOCK_START") {
            None => None,
            Some(raw) => Some(
                raw.trim()
                    .parse::<jiff::Timestamp>()
                    .map_err(|_| {
                        ConfigError::new(
                            "PAVED_CLOCK_START",
                            format!(
                                "`{raw}` is not an RFC 3339 instant such as 2026-03-18T12:00:00Z"
                            ),
                        )
                    })?
                    .as_millisecond(),
            ),
        };

        let list = |var: &str| -> Vec<String> {
            get(var)
                .map(|v| {
                    v.split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut locations = Vec::new();
        for entry in list("PAVED_CATALOG_LOCATIONS") {
            match entry.split_once(':') {
                Some((kind @ ("file" | "url"), target)) if !target.is_empty() => {
                    locations.push((kind.to_owned(), target.to_owned()))
                }
                _ => {
                    return Err(ConfigError::new(
                        "PAVED_CATALOG_LOCATIONS",
                        format!("`{entry}` is not `file:<path>` or `url:<url>`"),
                    ))
                }
            }
        }
        let catalog = CatalogConfig {
            file_roots: match get("PAVED_CATALOG_FILE_ROOTS") {
                Some(_) => list("PAVED_CATALOG_FILE_ROOTS")
                    .into_iter()
                    .map(Into::into)
                    .collect(),
                None => vec!["catalog".into()],
            },
            allowed_hosts: list("PAVED_CATALOG_ALLOWED_HOSTS")
                .iter()
                .map(|h| h.parse())
                .collect::<Result<_, String>>()
                .map_err(|m| ConfigError::new("PAVED_CATALOG_ALLOWED_HOSTS", m))?,
            integrations: match get("PAVED_INTEGRATIONS") {
                None => Vec::new(),
                Some(path) => {
                    let yaml = std::fs::read_to_string(&path).map_err(|e| {
                        ConfigError::new("PAVED_INTEGRATIONS", format!("cannot read `{path}`: {e}"))
                    })?;
                    crate::integrations::config::parse(&yaml).map_err(|m| {
                        ConfigError::new("PAVED_INTEGRATIONS", format!("`{path}`: {m}"))
                    })?
                }
            },
            refresh_interval: Duration::from_secs(
                60 * parse_u64(&get, "PAVED_CATALOG_REFRESH_MINUTES", 30)?,
            ),
            locations,
        };

        let vault = parse_vault(&get)?;
        let mut git_hosts = Vec::new();
        for entry in list("PAVED_SCAFFOLDER_GIT_HOSTS") {
            const VAR: &str = "PAVED_SCAFFOLDER_GIT_HOSTS";
            let Some((host, target)) = entry.split_once('=') else {
                return Err(ConfigError::new(
                    VAR,
                    format!("`{entry}` is not `host=target`"),
                ));
            };
            let target = if let Some(path) = target.strip_prefix("file://") {
                let path = std::path::PathBuf::from(path);
                if !path.is_absolute() {
                    return Err(ConfigError::new(
                        VAR,
                        format!("`{target}` must be an absolute file:/// path"),
                    ));
                }
                GitTarget::Local(path)
            } else {
                let url = Url::parse(target).map_err(|_| {
                    ConfigError::new(
                        VAR,
                        format!("`{target}` is not file:///path or an https:// URL"),
                    )
                })?;
                if !matches!(url.scheme(), "https" | "ssh") {
                    return Err(ConfigError::new(
                        VAR,
                        format!("`{target}` must use https or ssh"),
                    ));
                }
                GitTarget::Remote(url)
            };
            git_hosts.push(GitHost {
                host: host.trim().to_ascii_lowercase(),
                target,
            });
        }
        let scaffolder = ScaffolderConfig {
            work_dir: get("PAVED_SCAFFOLDER_WORKDIR")
                .unwrap_or_else(|| "data/scaffolder".into())
                .into(),
            git_hosts,
            workers: parse_u64(&get, "PAVED_SCAFFOLDER_WORKERS", 2)? as usize,
            git_ca_cert: match get("PAVED_SCAFFOLDER_GIT_CACERT") {
                None => None,
                Some(path) if std::path::Path::new(&path).is_file() => Some(path.into()),
                Some(path) => {
                    return Err(ConfigError::new(
                        "PAVED_SCAFFOLDER_GIT_CACERT",
                        format!("`{path}` is not a readable file"),
                    ))
                }
            },
        };

        let llm = parse_llm(&get)?;
        let outcomes = crate::outcomes::config::parse(&get)?;
        let policy = crate::policy::config::parse(&get)?;
        let kube = crate::kube::config::parse(&get)?;

        Ok(Self {
            llm,
            outcomes,
            policy,
            kube,
            catalog,
            vault,
            scaffolder,
            bind,
            public_url,
            database_url,
            site_root: get("PAVED_SITE_ROOT").unwrap_or_else(|| "target/site".into()),
            oidc: OidcConfig {
                issuer,
                client_id,
                client_secret,
                scopes,
                groups_claim,
                role_mapping,
            },
            service_tokens,
            session_idle,
            session_max_age,
            demo,
            tokens,
            sign_in_starts_per_minute,
            clock_start_ms,
        })
    }

    /// Whether cookies must carry the `Secure` flag (public URL is https).
    pub fn secure_cookies(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// The public origin (`scheme://host[:port]`) that browser writes must come from.
    pub fn public_origin(&self) -> String {
        self.public_url.origin().ascii_serialization()
    }

    /// The public URL with `path` appended (path starts with `/`).
    pub fn public_url_for(&self, path: &str) -> String {
        format!("{}{}", self.public_url.as_str().trim_end_matches('/'), path)
    }
}

fn parse_vault(get: &impl Fn(&str) -> Option<String>) -> Result<Option<VaultConfig>, ConfigError> {
    let Some(address_raw) = get("PAVED_VAULT_ADDR") else {
        return Ok(None);
    };
    let address = parse_http_url("PAVED_VAULT_ADDR", &address_raw)?;
    let required = |var: &'static str, why: &str| {
        get(var).ok_or_else(|| ConfigError::new(var, format!("is required {why}")))
    };
    let segment = |var: &'static str, default: &str| -> Result<String, ConfigError> {
        let value = get(var).unwrap_or_else(|| default.into());
        let value = value.trim().trim_matches('/').to_owned();
        let ok = !value.is_empty()
            && value.split('/').all(|part| {
                !part.is_empty()
                    && part != ".."
                    && part
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            });
        if ok {
            Ok(value)
        } else {
            Err(ConfigError::new(
                var,
                format!("`{value}` is not a Vault path (letters, digits, - _ . and /)"),
            ))
        }
    };
    let ca_cert = get("PAVED_VAULT_CACERT").map(std::path::PathBuf::from);
    if let Some(path) = &ca_cert {
        if !path.is_file() {
            return Err(ConfigError::new(
                "PAVED_VAULT_CACERT",
                format!("`{}` is not a readable file", path.display()),
            ));
        }
    }
    let auth = match get("PAVED_VAULT_AUTH").as_deref().unwrap_or("token") {
        "token" => VaultAuth::Token(SecretString::from(required(
            "PAVED_VAULT_TOKEN",
            "when PAVED_VAULT_AUTH is token (the default)",
        )?)),
        "kubernetes" => VaultAuth::Kubernetes {
            mount: segment("PAVED_VAULT_AUTH_MOUNT", "kubernetes")?,
            role: required(
                "PAVED_VAULT_AUTH_ROLE",
                "when PAVED_VAULT_AUTH is kubernetes",
            )?,
            jwt_path: get("PAVED_VAULT_K8S_TOKEN_PATH")
                .unwrap_or_else(|| "/var/run/secrets/kubernetes.io/serviceaccount/token".into())
                .into(),
        },
        "approle" => VaultAuth::AppRole {
            mount: segment("PAVED_VAULT_AUTH_MOUNT", "approle")?,
            role_id: required(
                "PAVED_VAULT_APPROLE_ROLE_ID",
                "when PAVED_VAULT_AUTH is approle",
            )?,
            secret_id: SecretString::from(required(
                "PAVED_VAULT_APPROLE_SECRET_ID",
                "when PAVED_VAULT_AUTH is approle",
            )?),
        },
        other => {
            return Err(ConfigError::new(
                "PAVED_VAULT_AUTH",
                format!("`{other}` is not one of token, kubernetes, approle"),
            ))
        }
    };
    let ttl = get("PAVED_VAULT_WORKLOAD_TOKEN_TTL").unwrap_or_else(|| "1h".into());
    let ttl_ok = {
        let digits = ttl.trim_end_matches(['s', 'm', 'h']);
        !digits.is_empty()
            && digits.chars().all(|c| c.is_ascii_digit())
            && ttl.len() - digits.len() <= 1
    };
    if !ttl_ok {
        return Err(ConfigError::new(
            "PAVED_VAULT_WORKLOAD_TOKEN_TTL",
            format!("`{ttl}` is not a duration like 900s, 30m or 1h"),
        ));
    }
    Ok(Some(VaultConfig {
        address,
        ca_cert,
        namespace: get("PAVED_VAULT_NAMESPACE"),
        kv_mount: segment("PAVED_VAULT_KV_MOUNT", "secret")?,
        prefix: segment("PAVED_VAULT_PREFIX", "platform")?,
        workload_auth_mount: segment("PAVED_VAULT_K8S_AUTH_MOUNT", "kubernetes")?,
        workload_token_ttl: ttl,
        auth,
        health_interval: Duration::from_secs(parse_u64(get, "PAVED_VAULT_HEALTH_SECONDS", 5)?),
    }))
}

fn parse_http_url(var: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw)
        .map_err(|e| ConfigError::new(var, format!("`{raw}` is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::new(var, "must be an http:// or https:// URL"));
    }
    Ok(url)
}

fn parse_llm(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<crate::gateway::config::LlmConfig, ConfigError> {
    let routes = match get("PAVED_LLM_UPSTREAMS") {
        None => Default::default(),
        Some(path) => {
            let yaml = std::fs::read_to_string(&path).map_err(|e| {
                ConfigError::new("PAVED_LLM_UPSTREAMS", format!("cannot read `{path}`: {e}"))
            })?;
            crate::gateway::config::parse_upstreams(&yaml)
                .map_err(|m| ConfigError::new("PAVED_LLM_UPSTREAMS", format!("`{path}` {m}")))?
        }
    };
    let time_zone = get("PAVED_BUDGET_TIMEZONE").unwrap_or_else(|| "UTC".into());
    crate::budgets::period::time_zone(&time_zone)
        .map_err(|m| ConfigError::new("PAVED_BUDGET_TIMEZONE", m))?;
    let max_retries = match get("PAVED_LLM_MAX_RETRIES") {
        None => 2,
        Some(raw) => raw
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= 10)
            .ok_or_else(|| {
                ConfigError::new("PAVED_LLM_MAX_RETRIES", format!("`{raw}` is not 0–10"))
            })?,
    };
    let alert_webhook = match get("PAVED_BUDGET_ALERT_WEBHOOK") {
        None => None,
        Some(raw) => Some(parse_http_url("PAVED_BUDGET_ALERT_WEBHOOK", &raw)?),
    };
    Ok(crate::gateway::config::LlmConfig {
        routes,
        time_zone,
        reservation_ttl: Duration::from_secs(parse_u64(
            get,
            "PAVED_LLM_RESERVATION_TTL_SECS",
            600,
        )?),
        timeout: Duration::from_secs(parse_u64(get, "PAVED_LLM_TIMEOUT_SECS", 120)?),
        max_retries,
        retry_base: Duration::from_millis(parse_u64(get, "PAVED_LLM_RETRY_BASE_MS", 500)?),
        retry_cap: Duration::from_millis(parse_u64(get, "PAVED_LLM_RETRY_CAP_MS", 8000)?),
        breaker_failures: u32::try_from(parse_u64(get, "PAVED_LLM_BREAKER_FAILURES", 5)?)
            .unwrap_or(u32::MAX),
        breaker_cooldown: Duration::from_millis(parse_u64(
            get,
            "PAVED_LLM_BREAKER_COOLDOWN_MS",
            30_000,
        )?),
        max_body_bytes: usize::try_from(parse_u64(get, "PAVED_LLM_MAX_BODY_BYTES", 4 << 20)?)
            .unwrap_or(usize::MAX),
        cache_max_bytes: usize::try_from(parse_u64(get, "PAVED_LLM_CACHE_MAX_BYTES", 64 << 20)?)
            .unwrap_or(usize::MAX),
        alert_webhook,
        credential_ttl: Duration::from_secs(parse_u64(get, "PAVED_LLM_CREDENTIAL_TTL_SECS", 60)?),
    })
}

fn parse_u64(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: u64,
) -> Result<u64, ConfigError> {
    match get(var) {
        None => Ok(default),
        Some(raw) => match raw.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(ConfigError::new(
                var,
                format!("`{raw}` is not a positive whole number"),
            )),
        },
    }
}

fn parse_service_tokens(raw: &str) -> Result<Vec<ServiceToken>, ConfigError> {
    const VAR: &str = "PAVED_SERVICE_TOKENS";
    let mut tokens = Vec::new();
    for (index, entry) in raw
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .enumerate()
    {
        let parts: Vec<&str> = entry.splitn(3, ':').collect();
        let [name, token, role] = parts[..] else {
            return Err(ConfigError::new(
                VAR,
                format!("entry {} is not `name:token:role`", index + 1),
            ));
        };
        if name.is_empty() {
            return Err(ConfigError::new(
                VAR,
                format!("entry {} has an empty name", index + 1),
            ));
        }
        if token.len() < 16 {
            return Err(ConfigError::new(
                VAR,
                format!("the token of `{name}` is shorter than 16 characters"),
            ));
        }
        let role = MappedRole::parse(role)
            .map_err(|m| ConfigError::new(VAR, format!("the role of `{name}`: {m}")))?;
        if tokens.iter().any(|t: &ServiceToken| t.name == name) {
            return Err(ConfigError::new(VAR, format!("`{name}` appears twice")));
        }
        tokens.push(ServiceToken {
            name: name.to_owned(),
            token: SecretString::from(token.to_owned()),
            role,
        });
    }
    Ok(tokens)
}

/// Compares a presented token with a configured one without leaking timing.
pub fn service_token_matches(token: &ServiceToken, presented: &str) -> bool {
    use sha2::{Digest, Sha256};
    // Hash both sides so the comparison time does not depend on the common prefix length.
    let a = Sha256::digest(token.token.expose_secret().as_bytes());
    let b = Sha256::digest(presented.as_bytes());
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn base() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("PAVED_OIDC_ISSUER", "http://127.0.0.1:4000"),
            ("PAVED_OIDC_CLIENT_ID", "paved"),
            ("PAVED_OIDC_CLIENT_SECRET", "s3cret-value"),
        ])
    }

    fn load(vars: &HashMap<&'static str, &'static str>) -> Result<Config, ConfigError> {
        Config::from_lookup(|k| vars.get(k).map(|v| v.to_string()))
    }

    #[test]
    fn defaults_apply_when_optional_values_are_unset() {
        let config = load(&base()).unwrap();
        assert_eq!(config.bind.to_string(), "127.0.0.1:3000");
        assert_eq!(config.public_origin(), "http://127.0.0.1:3000");
        assert_eq!(config.database_url, "sqlite://data/paved.db");
        assert_eq!(config.oidc.groups_claim, "groups");
        assert!(!config.secure_cookies());
        assert!(config.service_tokens.is_empty());
    }

    #[test]
    fn missing_required_variable_is_named() {
        let mut vars = base();
        vars.remove("PAVED_OIDC_CLIENT_ID");
        let err = load(&vars).unwrap_err();
        assert_eq!(err.var, "PAVED_OIDC_CLIENT_ID");
        assert!(err.to_string().contains("PAVED_OIDC_CLIENT_ID"));
    }

    #[test]
    fn malformed_values_are_named() {
        for (var, value) in [
            ("PAVED_BIND", "localhost"),
            ("PAVED_PUBLIC_URL", "ftp://x"),
            ("PAVED_DATABASE_URL", "postgres://x"),
            ("PAVED_SERVICE_TOKENS", "ci:short:platform_admin"),
            ("PAVED_SERVICE_TOKENS", "ci:0123456789abcdef:emperor"),
            ("PAVED_OIDC_ROLE_MAPPING", "admins"),
            ("PAVED_SESSION_IDLE_MINUTES", "-3"),
            ("PAVED_DEMO", "maybe"),
            ("PAVED_CLOCK_START", "yesterday"),
            ("PAVED_SIGN_IN_STARTS_PER_MINUTE", "0"),
            ("PAVED_CATALOG_ALLOWED_HOSTS", "example.com,*.evil.test"),
            ("PAVED_TOKEN_MAX_DAYS", "0"),
            ("PAVED_TOKEN_DEFAULT_DAYS", "400"),
            ("PAVED_CATALOG_LOCATIONS", "ftp:somewhere"),
            ("PAVED_CATALOG_REFRESH_MINUTES", "0"),
            ("PAVED_VAULT_ADDR", "vault.local:8200"),
            ("PAVED_SCAFFOLDER_GIT_HOSTS", "github.com"),
            ("PAVED_SCAFFOLDER_GIT_HOSTS", "github.com=file://relative"),
            (
                "PAVED_SCAFFOLDER_GIT_HOSTS",
                "github.com=http://plain.example.com",
            ),
            ("PAVED_SCAFFOLDER_WORKERS", "0"),
        ] {
            let mut vars = base();
            vars.insert(var, value);
            let err = load(&vars).unwrap_err();
            assert_eq!(err.var, var, "{value}");
        }
    }

    #[test]
    fn secrets_are_never_debug_printed() {
        let mut vars = base();
        vars.insert(
            "PAVED_SERVICE_TOKENS",
            "ci:tok-0123456789abcdef:platform_admin",
        );
        let config = load(&vars).unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("s3cret-value"));
        assert!(!printed.contains("tok-0123456789abcdef"));
        assert!(service_token_matches(
            &config.service_tokens[0],
            "tok-0123456789abcdef"
        ));
        assert!(!service_token_matches(
            &config.service_tokens[0],
            "tok-0123456789abcdeX"
        ));
    }

    #[test]
    fn vault_is_optional_and_its_variables_are_named() {
        assert!(load(&base()).unwrap().vault.is_none());
        let mut vars = base();
        vars.insert("PAVED_VAULT_ADDR", "http://127.0.0.1:8200");
        assert_eq!(load(&vars).unwrap_err().var, "PAVED_VAULT_TOKEN");
        vars.insert("PAVED_VAULT_TOKEN", "hvs.very-secret-token");
        let config = load(&vars).unwrap();
        let vault = config.vault.as_ref().unwrap();
        assert_eq!(vault.kv_mount, "secret");
        assert_eq!(vault.prefix, "platform");
        assert_eq!(vault.workload_auth_mount, "kubernetes");
        assert!(!format!("{config:?}").contains("very-secret-token"));
        for (var, value) in [
            ("PAVED_VAULT_AUTH", "ldap"),
            ("PAVED_VAULT_PREFIX", "../escape"),
            ("PAVED_VAULT_WORKLOAD_TOKEN_TTL", "an hour"),
            ("PAVED_VAULT_CACERT", "/nonexistent/ca.pem"),
        ] {
            let mut broken = vars.clone();
            broken.insert(var, value);
            assert_eq!(load(&broken).unwrap_err().var, var, "{value}");
        }
        vars.insert("PAVED_VAULT_AUTH", "approle");
        assert_eq!(load(&vars).unwrap_err().var, "PAVED_VAULT_APPROLE_ROLE_ID");
        vars.insert("PAVED_VAULT_APPROLE_ROLE_ID", "role-id");
        vars.insert("PAVED_VAULT_APPROLE_SECRET_ID", "secret-id-value");
        let config = load(&vars).unwrap();
        assert!(!format!("{config:?}").contains("secret-id-value"));
    }

    #[test]
    fn https_public_url_makes_cookies_secure() {
        let mut vars = base();
        vars.insert("PAVED_PUBLIC_URL", "https://paved.example.com/");
        let config = load(&vars).unwrap();
        assert!(config.secure_cookies());
        assert_eq!(
            config.public_url_for("/auth/callback"),
            "https://paved.example.com/auth/callback"
        );
    }
}
