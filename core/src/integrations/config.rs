//! `PAVED_INTEGRATIONS`: the git hosts Paved reads from and publishes to,
//! each with its API and where its credential lives in Vault.
//!
//! ```yaml
//! integrations:
//!   - host: github.com
//!     kind: github
//!     credential: git/github.com          # a token, field `token`
//!   - host: ghe.example.com
//!     kind: github-enterprise             # API at https://ghe.example.com/api/v3
//!     credential: { app_id: 12345, private_key: git/ghe-app }
//!   - host: git.example.com:8443
//!     kind: git
//! ```

use serde::Deserialize;
use url::Url;

/// What kind of server a host is, which decides its URLs and API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostKind {
    /// github.com.
    Github,
    /// GitHub Enterprise Server (API under `/api/v3`).
    GithubEnterprise,
    /// GitLab (gitlab.com or self-managed; API under `/api/v4`).
    Gitlab,
    /// bitbucket.org (API at api.bitbucket.org/2.0).
    BitbucketCloud,
    /// Bitbucket Data Center / Server (API under `/rest/api/1.0`).
    BitbucketServer,
    /// Azure DevOps Services (dev.azure.com).
    AzureDevops,
    /// Gitea or Forgejo (API under `/api/v1`).
    Gitea,
    /// Any git server over http(s): files are read with a shallow, sparse `git` fetch.
    Git,
}

impl HostKind {
    /// The name used in `PAVED_INTEGRATIONS`.
    pub fn as_str(self) -> &'static str {
        match self {
            HostKind::Github => "github",
            HostKind::GithubEnterprise => "github-enterprise",
            HostKind::Gitlab => "gitlab",
            HostKind::BitbucketCloud => "bitbucket-cloud",
            HostKind::BitbucketServer => "bitbucket-server",
            HostKind::AzureDevops => "azure-devops",
            HostKind::Gitea => "gitea",
            HostKind::Git => "git",
        }
    }

    /// Whether the kind is a GitHub (github.com or Enterprise Server).
    pub fn is_github(self) -> bool {
        matches!(self, HostKind::Github | HostKind::GithubEnterprise)
    }

    fn default_api(self, origin: &str) -> String {
        match self {
            HostKind::Github => "https://api.github.com".into(),
            HostKind::GithubEnterprise => format!("{origin}/api/v3"),
            HostKind::Gitlab => format!("{origin}/api/v4"),
            HostKind::BitbucketCloud => "https://api.bitbucket.org/2.0".into(),
            HostKind::BitbucketServer => format!("{origin}/rest/api/1.0"),
            HostKind::AzureDevops => origin.to_owned(),
            HostKind::Gitea => format!("{origin}/api/v1"),
            HostKind::Git => origin.to_owned(),
        }
    }
}

/// Where an integration's credential lives in Vault, as a path under
/// Paved's prefix (`PAVED_VAULT_PREFIX`). Paved's policy lets it read
/// `{prefix}/git/*`, so credentials live there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialRef {
    /// No credential: public repositories only.
    None,
    /// A token (field `token`; for Bitbucket Cloud also `username`).
    Token {
        /// The path under the prefix, e.g. `git/github.com`.
        path: String,
    },
    /// A GitHub App: installation tokens are minted from its private key
    /// (field `private_key`, PEM) and renewed before they expire.
    GithubApp {
        /// The App's id.
        app_id: u64,
        /// The path under the prefix holding `private_key`.
        path: String,
    },
}

/// One configured git host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integration {
    /// `host` or `host:port` (the port only when it is not the scheme's
    /// default), lowercase, as URLs on this host name it.
    pub host: String,
    /// What the host is.
    pub kind: HostKind,
    /// The API root (no trailing slash).
    pub api_base_url: Url,
    /// Where its credential lives.
    pub credential: CredentialRef,
}

impl Integration {
    /// Whether `url` is on this host (scheme http or https).
    pub fn matches(&self, url: &Url) -> bool {
        matches!(url.scheme(), "http" | "https") && host_key(url).is_some_and(|h| h == self.host)
    }
}

/// `host` or `host:port` of `url`, lowercase, the port only when not the default.
pub fn host_key(url: &Url) -> Option<String> {
    let host = url.host_str()?.to_ascii_lowercase();
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    integrations: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    host: String,
    kind: HostKind,
    api_base_url: Option<String>,
    credential: Option<CredentialEntry>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum CredentialEntry {
    Path(String),
    App { app_id: u64, private_key: String },
}

/// Parses the `PAVED_INTEGRATIONS` file: every problem names the entry
/// (`integrations[2].host`) and what to write instead.
pub fn parse(yaml: &str) -> Result<Vec<Integration>, String> {
    let file: File = serde_yaml::from_str(yaml).map_err(|e| {
        format!("is not an integrations file (a list under `integrations:` of host, kind, api_base_url, credential): {e}")
    })?;
    let mut out: Vec<Integration> = Vec::new();
    for (i, entry) in file.integrations.into_iter().enumerate() {
        let at = |field: &str| format!("integrations[{i}].{field}");
        let host = entry.host.trim().to_ascii_lowercase();
        let parsed = Url::parse(&format!("https://{host}"))
            .ok()
            .filter(|u| u.path() == "/" && u.username().is_empty() && host_key(u) == Some(host.clone()))
            .ok_or_else(|| {
                format!(
                    "{} `{}` must be a host name, with `:port` only when it is not 443 (no scheme, path or credentials)",
                    at("host"),
                    entry.host
                )
            })?;
        if out.iter().any(|o| o.host == host) {
            return Err(format!("{} `{host}` is configured twice", at("host")));
        }
        let origin = format!("https://{}", host_key(&parsed).unwrap_or_default());
        let api = entry
            .api_base_url
            .unwrap_or_else(|| entry.kind.default_api(&origin));
        let api_base_url = Url::parse(api.trim_end_matches('/'))
            .ok()
            .filter(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.username().is_empty()
                    && u.password().is_none()
                    && u.query().is_none()
            })
            .ok_or_else(|| {
                format!(
                    "{} `{api}` must be an http(s) URL without credentials or query",
                    at("api_base_url")
                )
            })?;
        let credential = match entry.credential {
            None => CredentialRef::None,
            Some(CredentialEntry::Path(path)) => CredentialRef::Token {
                path: credential_path(&at("credential"), &path)?,
            },
            Some(CredentialEntry::App {
                app_id,
                private_key,
            }) => {
                if !entry.kind.is_github() {
                    return Err(format!(
                        "{} is a GitHub App, but {host} is a {} host; use a token path",
                        at("credential"),
                        entry.kind.as_str()
                    ));
                }
                CredentialRef::GithubApp {
                    app_id,
                    path: credential_path(&at("credential.private_key"), &private_key)?,
                }
            }
        };
        out.push(Integration {
            host,
            kind: entry.kind,
            api_base_url,
            credential,
        });
    }
    Ok(out)
}

fn credential_path(at: &str, raw: &str) -> Result<String, String> {
    let path = raw.trim().trim_matches('/');
    let ok = path.starts_with("git/")
        && path.split('/').all(|s| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        });
    if ok {
        Ok(path.to_owned())
    } else {
        Err(format!(
            "{at} `{raw}` must be a Vault path under git/ (e.g. git/github.com), below PAVED_VAULT_PREFIX: Paved's policy reads credentials only there"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_with_every_kind_and_its_defaults() {
        let all = parse(
            "integrations:
  - { host: github.com, kind: github, credential: git/github.com }
  - { host: GHE.example.com, kind: github-enterprise, credential: { app_id: 7, private_key: git/ghe-app } }
  - { host: gitlab.example.com:8443, kind: gitlab }
  - { host: bitbucket.org, kind: bitbucket-cloud }
  - { host: bitbucket.example.com, kind: bitbucket-server }
  - { host: dev.azure.com, kind: azure-devops }
  - { host: gitea.example.com, kind: gitea, api_base_url: 'http://127.0.0.1:3000/api/v1/' }
  - { host: git.example.com, kind: git }
",
        )
        .unwrap();
        let apis: Vec<&str> = all.iter().map(|i| i.api_base_url.as_str()).collect();
        assert_eq!(
            apis,
            [
                "https://api.github.com/",
                "https://ghe.example.com/api/v3",
                "https://gitlab.example.com:8443/api/v4",
                "https://api.bitbucket.org/2.0",
                "https://bitbucket.example.com/rest/api/1.0",
                "https://dev.azure.com/",
                "http://127.0.0.1:3000/api/v1",
                "https://git.example.com/",
            ]
        );
        assert_eq!(all[1].host, "ghe.example.com");
        assert_eq!(
            all[1].credential,
            CredentialRef::GithubApp {
                app_id: 7,
                path: "git/ghe-app".into()
            }
        );
        assert!(all[2].matches(&Url::parse("https://gitlab.example.com:8443/a/b").unwrap()));
        assert!(!all[2].matches(&Url::parse("https://gitlab.example.com/a/b").unwrap()));
    }

    #[test]
    fn bad_entries_name_the_field() {
        for (yaml, field) in [
            ("integrations: [{ host: 'https://github.com', kind: github }]", "integrations[0].host"),
            ("integrations: [{ host: github.com, kind: github }, { host: GitHub.com, kind: github }]", "integrations[1].host"),
            ("integrations: [{ host: a.example, kind: github, credential: llm/_platform }]", "integrations[0].credential"),
            ("integrations: [{ host: a.example, kind: github, credential: git/../llm }]", "integrations[0].credential"),
            ("integrations: [{ host: a.example, kind: gitlab, credential: { app_id: 1, private_key: git/k } }]", "integrations[0].credential"),
            ("integrations: [{ host: a.example, kind: github, api_base_url: 'https://u:p@a.example' }]", "integrations[0].api_base_url"),
        ] {
            let err = parse(yaml).unwrap_err();
            assert!(err.contains(field), "{yaml}: {err}");
        }
        assert!(parse("integrations: [{ host: a.example, kind: svn }]").is_err());
        assert!(parse("integrations: [{ host: a.example, kind: git, token: x }]").is_err());
    }
}
