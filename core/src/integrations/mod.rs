//! Git hosts as integrations: files read by their blob/tree/raw URLs through
//! each host's API with the integration's credential, conditional requests so
//! an unchanged file costs one small request, and the host's rate limit
//! respected (a limited host is not asked again before it resets).
//!
//! Credentials come from Vault into the one request that uses them: they are
//! never logged, stored, put in an error or on a command line.

pub mod config;
pub mod git;
pub mod page;
pub mod url;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::secrets::vault::Vault;
pub use config::{CredentialRef, HostKind, Integration};
pub use url::RepoPath;

/// How long a credential read from Vault is used before it is read again.
const CREDENTIAL_TTL: Duration = Duration::from_secs(300);
/// The largest file a skeleton fetched with git may hold.
const MAX_GIT_FILE: usize = 10 * 1024 * 1024;
/// How many conditional-request answers are remembered.
const ETAG_ENTRIES: usize = 20_000;

/// A file read from a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Its text.
    pub text: Arc<String>,
    /// True when the host answered 304: the same bytes as the last read.
    pub unchanged: bool,
    /// What identifies these bytes on the host (an ETag or a commit id), when it said.
    pub version: Option<String>,
}

/// A repository as an organization listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSummary {
    /// Its name.
    pub name: String,
    /// Its path on the host: `owner/name` (GitHub) or `group/sub/name` (GitLab).
    pub full_name: String,
    /// Archived repositories are skipped by discovery.
    pub archived: bool,
    /// Its default branch.
    pub default_branch: String,
}

/// What a host said about its rate limit on its last answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests left in the window.
    pub remaining: Option<i64>,
    /// The window's size.
    pub limit: Option<i64>,
    /// When the window resets (Unix seconds).
    pub reset_at: Option<i64>,
    /// Set while the host refuses for the rate limit: no request is sent before then.
    pub limited_until: Option<i64>,
}

/// The git hosts Paved knows, and what it remembers of each.
pub struct Integrations {
    list: Vec<Integration>,
    vault: Option<Arc<Vault>>,
    vault_prefix: String,
    http: reqwest::Client,
    credentials: Mutex<HashMap<String, (Option<SecretString>, Instant)>>,
    /// GitHub App installation tokens per host/owner, with their expiry (Unix seconds).
    installations: Mutex<HashMap<String, (SecretString, i64)>>,
    etags: Mutex<HashMap<String, (String, Arc<String>)>>,
    limits: Mutex<HashMap<String, RateLimit>>,
    /// When each host's token expires, as the host said (GitHub's
    /// `GitHub-Authentication-Token-Expiration`).
    expiries: Mutex<HashMap<String, i64>>,
    now: Box<dyn Fn() -> i64 + Send + Sync>,
}

impl std::fmt::Debug for Integrations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Integrations")
            .field(
                "hosts",
                &self.list.iter().map(|i| &i.host).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Integrations {
    /// The configured integrations, reading credentials from `vault`.
    pub fn new(list: Vec<Integration>, vault: Option<Arc<Vault>>) -> Self {
        let vault_prefix = vault
            .as_ref()
            .map(|v| v.config().prefix.clone())
            .unwrap_or_default();
        let http = reqwest::Client::builder()
            // A redirect could lead to a host the credential is not meant for.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .user_agent(concat!("Paved/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self {
            list,
            vault,
            vault_prefix,
            http,
            credentials: Mutex::default(),
            installations: Mutex::default(),
            etags: Mutex::default(),
            limits: Mutex::default(),
            expiries: Mutex::default(),
            now: Box::new(crate::now_unix),
        }
    }

    /// The configured integrations.
    pub fn list(&self) -> &[Integration] {
        &self.list
    }

    /// The integration serving `url`, if any.
    pub fn for_url(&self, url: &::url::Url) -> Option<&Integration> {
        self.list.iter().find(|i| i.matches(url))
    }

    /// The last rate-limit state seen from `host`.
    pub fn rate_limit(&self, host: &str) -> RateLimit {
        lock(&self.limits).get(host).cloned().unwrap_or_default()
    }

    /// When the credential of `host` expires, if known: the token's expiry
    /// as the host reported it, or the soonest expiry of the GitHub App
    /// installation tokens held now (those are renewed on their own).
    pub fn token_expires_at(&self, host: &str) -> Option<i64> {
        let reported = lock(&self.expiries).get(host).copied();
        let prefix = format!("{host}/");
        let installations = lock(&self.installations)
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, (_, expires))| *expires)
            .min();
        match (reported, installations) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The time now, as the integrations see it.
    pub fn now(&self) -> i64 {
        (self.now)()
    }

    /// Refuses at once while `host` waits for its rate limit to reset.
    fn backing_off(&self, host: &str, now: i64) -> Result<(), String> {
        match self.rate_limit(host).limited_until.filter(|u| *u > now) {
            Some(until) => Err(format!(
                "{host} rate-limited Paved; it is not asked again before {} (in {} s)",
                format_utc(until),
                until - now
            )),
            None => Ok(()),
        }
    }

    /// Reads the file `url` names through its integration's API: with the
    /// credential, conditionally (an unchanged file is one 304), within `max`
    /// bytes. Errors say what to fix and never quote the credential.
    pub async fn read_file(
        &self,
        integration: &Integration,
        url: &::url::Url,
        max: usize,
    ) -> Result<Fetched, String> {
        let file = url::parse(integration, url)?;
        let Some(request_url) = url::raw_file_request(integration, &file) else {
            return self.read_with_git(integration, url, &file, max).await;
        };
        let host = &integration.host;
        let now = (self.now)();
        self.backing_off(host, now)?;
        let credential = self.credential(integration, owner_of(&file.repo)).await?;
        let cache_key = request_url.to_string();
        let cached = lock(&self.etags).get(&cache_key).cloned();
        let mut request = self.http.get(request_url.clone());
        request = match integration.kind {
            HostKind::Github | HostKind::GithubEnterprise => request
                .header("accept", "application/vnd.github.raw")
                .header("x-github-api-version", "2022-11-28"),
            _ => request,
        };
        if let Some(token) = &credential {
            request = authorize(request, integration.kind, token);
        }
        if let Some((etag, _)) = &cached {
            request = request.header("if-none-match", etag.as_str());
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| format!("cannot reach {host} for {url}: {}", without_url(&e)))?;
        self.note_rate_limit(host, &response, now);
        let status = response.status();
        if status == reqwest::StatusCode::NOT_MODIFIED {
            if let Some((etag, text)) = cached {
                return Ok(Fetched {
                    text,
                    unchanged: true,
                    version: Some(etag),
                });
            }
        }
        if !status.is_success() {
            return Err(self.explain(integration, url, status, credential.is_some(), now));
        }
        if response.content_length().is_some_and(|n| n as usize > max) {
            return Err(format!("{url} is larger than the {} KB limit", max / 1024));
        }
        let etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("cannot read {url} from {host}: {}", without_url(&e)))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > max {
                return Err(format!("{url} is larger than the {} KB limit", max / 1024));
            }
        }
        let text =
            Arc::new(String::from_utf8(body).map_err(|_| format!("{url} is not UTF-8 text"))?);
        if let Some(etag) = &etag {
            let mut etags = lock(&self.etags);
            if etags.len() >= ETAG_ENTRIES {
                etags.clear();
            }
            etags.insert(cache_key, (etag.clone(), text.clone()));
        }
        Ok(Fetched {
            text,
            unchanged: false,
            version: etag,
        })
    }

    /// Copies the folder `folder` of a repository into `dest` (created), at
    /// most `max_files` files of at most the read limit each: one listing of
    /// the repository's tree, then each file. Answers how many files came.
    pub async fn download(
        &self,
        integration: &Integration,
        folder: &RepoPath,
        dest: &std::path::Path,
        max_files: usize,
    ) -> Result<usize, String> {
        if !integration.kind.is_github() {
            // Other hosts' APIs list trees page by page or not at all: one
            // shallow, sparse git fetch is fewer requests on every one of them.
            let clone = git::clone_url(integration, &folder.repo)?;
            let env = self.git_env(integration, &folder.repo).await?;
            return git::download(&clone, folder, &env, dest, max_files, MAX_GIT_FILE)
                .await
                .map_err(|e| {
                    format!(
                        "cannot fetch {} from {}: {e}",
                        folder.repo, integration.host
                    )
                });
        }
        let api = integration.api_base_url.as_str().trim_end_matches('/');
        let repo = url::encode_path(&folder.repo);
        let credential = self.credential(integration, owner_of(&folder.repo)).await?;
        let get = |address: String| {
            let mut request = self
                .http
                .get(address)
                .header("accept", "application/vnd.github+json")
                .header("x-github-api-version", "2022-11-28");
            if let Some(token) = &credential {
                request = authorize(request, integration.kind, token);
            }
            request
        };
        let host = &integration.host;
        let json = |response: reqwest::Response| async move {
            let status = response.status();
            if !status.is_success() {
                return Err(status);
            }
            response.json::<Value>().await.map_err(|_| status)
        };
        let now = (self.now)();
        let git_ref = match &folder.git_ref {
            Some(r) => r.clone(),
            None => {
                let response = get(format!("{api}/repos/{repo}"))
                    .send()
                    .await
                    .map_err(|e| format!("cannot reach {host}: {}", without_url(&e)))?;
                self.note_rate_limit(host, &response, now);
                let answer = json(response).await.map_err(|status| {
                    self.explain_repo(integration, &folder.repo, status, credential.is_some(), now)
                })?;
                answer["default_branch"]
                    .as_str()
                    .unwrap_or("main")
                    .to_owned()
            }
        };
        let response = get(format!(
            "{api}/repos/{repo}/git/trees/{}?recursive=1",
            url::encode(&git_ref)
        ))
        .send()
        .await
        .map_err(|e| format!("cannot reach {host}: {}", without_url(&e)))?;
        self.note_rate_limit(host, &response, now);
        let tree = json(response).await.map_err(|status| {
            self.explain_repo(integration, &folder.repo, status, credential.is_some(), now)
        })?;
        if tree["truncated"].as_bool() == Some(true) {
            return Err(format!(
                "{}'s tree at {git_ref} is too large for {host} to list at once; keep skeletons in a smaller repository",
                folder.repo
            ));
        }
        let prefix = if folder.path.is_empty() {
            String::new()
        } else {
            format!("{}/", folder.path)
        };
        let files: Vec<String> = tree["tree"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["type"] == "blob")
            .filter_map(|e| e["path"].as_str())
            .filter(|p| p.starts_with(&prefix))
            .map(str::to_owned)
            .collect();
        if files.is_empty() {
            return Err(format!(
                "{host} has no folder {} in {} at {git_ref}",
                if folder.path.is_empty() {
                    "/"
                } else {
                    &folder.path
                },
                folder.repo
            ));
        }
        if files.len() > max_files {
            return Err(format!("the folder has more than {max_files} files"));
        }
        std::fs::create_dir_all(dest)
            .map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
        for path in &files {
            let relative = &path[prefix.len()..];
            if relative
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == ".." || s.contains('\\'))
            {
                return Err(format!(
                    "{} holds a file named {path:?}, which Paved will not write",
                    folder.repo
                ));
            }
            let file = RepoPath {
                repo: folder.repo.clone(),
                git_ref: Some(git_ref.clone()),
                path: path.clone(),
            };
            let address = url::raw_file_request(integration, &file)
                .ok_or_else(|| format!("{host} serves no raw files"))?;
            let mut request = self
                .http
                .get(address)
                .header("accept", "application/vnd.github.raw")
                .header("x-github-api-version", "2022-11-28");
            if let Some(token) = &credential {
                request = authorize(request, integration.kind, token);
            }
            let response = request
                .send()
                .await
                .map_err(|e| format!("cannot reach {host}: {}", without_url(&e)))?;
            self.note_rate_limit(host, &response, now);
            let status = response.status();
            if !status.is_success() {
                return Err(self.explain_repo(
                    integration,
                    &folder.repo,
                    status,
                    credential.is_some(),
                    now,
                ));
            }
            let bytes = response
                .bytes()
                .await
                .map_err(|e| format!("cannot read {path} from {host}: {}", without_url(&e)))?;
            let target = dest.join(relative);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            std::fs::write(&target, &bytes).map_err(|e| format!("cannot write {relative}: {e}"))?;
        }
        Ok(files.len())
    }

    /// Reads a file with git (kind `git`, whose servers have no file API):
    /// `git ls-remote` first, and the file is fetched only when the ref's
    /// commit moved since the last read.
    async fn read_with_git(
        &self,
        integration: &Integration,
        url: &::url::Url,
        file: &RepoPath,
        max: usize,
    ) -> Result<Fetched, String> {
        let clone = git::clone_url(integration, &file.repo)?;
        let env = self.git_env(integration, &file.repo).await?;
        let cache_key = format!("git:{url}");
        let fail = |e: String| format!("cannot read {url}: {e}");
        let commit = git::remote_commit(&clone, file.git_ref.as_deref(), &env)
            .await
            .map_err(fail)?;
        if let Some((seen, text)) = lock(&self.etags).get(&cache_key) {
            if *seen == commit {
                return Ok(Fetched {
                    text: text.clone(),
                    unchanged: true,
                    version: Some(commit),
                });
            }
        }
        let (text, commit) = git::read_file(&clone, file, &env, max)
            .await
            .map_err(fail)?;
        let text = Arc::new(text);
        let mut etags = lock(&self.etags);
        if etags.len() >= ETAG_ENTRIES {
            etags.clear();
        }
        etags.insert(cache_key, (commit.clone(), text.clone()));
        Ok(Fetched {
            text,
            unchanged: false,
            version: Some(commit),
        })
    }

    /// The environment that gives git the integration's credential for
    /// `repo` (none for a host without one): the token as password, with
    /// Vault's `username` field or the kind's usual user name.
    pub async fn git_env(
        &self,
        integration: &Integration,
        repo: &str,
    ) -> Result<Vec<(String, String)>, String> {
        let owner = if integration.kind == HostKind::Git {
            None
        } else {
            owner_of(repo)
        };
        let Some(token) = self.credential(integration, owner).await? else {
            return Ok(Vec::new());
        };
        let user = match &integration.credential {
            CredentialRef::Token { path } => self
                .vault_field_maybe(integration, path, "username")
                .await?
                .map(|u| u.expose_secret().to_owned()),
            _ => None,
        }
        .unwrap_or_else(|| git::default_user(integration.kind).to_owned());
        Ok(git::basic_auth_env(&user, token.expose_secret()))
    }

    /// One call of `integration`'s REST API with its credential: the status
    /// and the JSON answer (`null` when there is none). The rate limit is noted
    /// and respected as for reads.
    pub async fn api(
        &self,
        integration: &Integration,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), String> {
        let host = &integration.host;
        let now = (self.now)();
        self.backing_off(host, now)?;
        let owner = {
            let mut parts = path.trim_start_matches('/').split('/');
            match (parts.next(), parts.next()) {
                (Some("repos" | "orgs" | "users"), Some(owner)) => {
                    Some(owner.split('?').next().unwrap_or(owner))
                }
                _ => None,
            }
        };
        let credential = self.credential(integration, owner).await?;
        let address = format!(
            "{}/{}",
            integration.api_base_url.as_str().trim_end_matches('/'),
            path.trim_start_matches('/')
        );
        let mut request = self.http.request(method, address);
        request = if integration.kind.is_github() {
            request
                .header("accept", "application/vnd.github+json")
                .header("x-github-api-version", "2022-11-28")
        } else {
            request.header("accept", "application/json")
        };
        if let Some(token) = &credential {
            request = authorize(request, integration.kind, token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("cannot reach {host}: {}", without_url(&e)))?;
        self.note_rate_limit(host, &response, now);
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// Checks a webhook delivery's `X-Hub-Signature-256` (`sha256=<hex>`)
    /// against the integration's `webhook_secret` (a field beside its token
    /// in Vault), in constant time.
    pub async fn verify_webhook(
        &self,
        integration: &Integration,
        body: &[u8],
        signature: &str,
    ) -> Result<(), String> {
        let path = match &integration.credential {
            CredentialRef::Token { path } | CredentialRef::GithubApp { path, .. } => path,
            CredentialRef::None => {
                return Err(format!(
                    "{} has no credential in PAVED_INTEGRATIONS, so no webhook secret to check deliveries with",
                    integration.host
                ))
            }
        };
        let vault = self.vault.as_ref().ok_or("Vault is not configured")?;
        let full = format!("{}/{path}", self.vault_prefix);
        let data = vault
            .read_kv(&full)
            .await
            .map_err(|e| format!("cannot read the webhook secret from Vault: {e}"))?;
        let secret = data
            .as_ref()
            .and_then(|d| d.get("webhook_secret"))
            .and_then(Value::as_str)
            .ok_or_else(|| format!("no `webhook_secret` field at {full} in Vault"))?;
        let expected = hex::encode(hmac_sha256(secret.as_bytes(), body));
        let given = signature.trim().strip_prefix("sha256=").unwrap_or_default();
        let same = given.len() == expected.len()
            && given
                .bytes()
                .zip(expected.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if same {
            Ok(())
        } else {
            Err("the delivery's X-Hub-Signature-256 does not match the webhook secret".into())
        }
    }

    /// The integration's token, for a git push over https (never put on a
    /// command line: see the scaffolder's `basic_auth_env`).
    pub async fn token(
        &self,
        integration: &Integration,
        owner: &str,
    ) -> Result<Option<SecretString>, String> {
        self.credential(integration, Some(owner)).await
    }

    /// Every repository of `owner` (an organization, or else a user) that
    /// the credential can see, 100 per request.
    pub async fn list_repos(
        &self,
        integration: &Integration,
        owner: &str,
    ) -> Result<Vec<RepoSummary>, String> {
        let gitlab = integration.kind == HostKind::Gitlab;
        if !integration.kind.is_github() && !gitlab {
            return Err(format!(
                "Paved discovers repositories only on GitHub and GitLab hosts, and {} is a {} host; register each repository's file as a url location instead",
                integration.host,
                integration.kind.as_str(),
            ));
        }
        let host = &integration.host;
        let mut out = Vec::new();
        let mut scope = if gitlab {
            format!("groups/{}", url::encode(owner))
        } else {
            format!("orgs/{}", url::encode(owner))
        };
        let listing = if gitlab {
            "projects?include_subgroups=true&with_shared=false&order_by=id&sort=asc&per_page=100"
        } else {
            "repos?per_page=100"
        };
        let mut page = 1;
        loop {
            let (status, answer) = self
                .api(
                    integration,
                    reqwest::Method::GET,
                    &format!("{scope}/{listing}&page={page}"),
                    None,
                )
                .await?;
            if status == 404 && page == 1 && scope.starts_with("orgs/") {
                scope = format!("users/{}", url::encode(owner));
                continue;
            }
            if status != 200 {
                let now = (self.now)();
                let url = ::url::Url::parse(&format!("https://{host}/{owner}"))
                    .unwrap_or_else(|_| integration.api_base_url.clone());
                return Err(self.explain(
                    integration,
                    &url,
                    reqwest::StatusCode::from_u16(status)
                        .unwrap_or(reqwest::StatusCode::BAD_GATEWAY),
                    !matches!(integration.credential, CredentialRef::None),
                    now,
                ));
            }
            let repos = answer.as_array().cloned().unwrap_or_default();
            let count = repos.len();
            out.extend(repos.iter().filter_map(|r| {
                let (name, full_name, default_branch) = if gitlab {
                    (
                        r["path"].as_str()?,
                        r["path_with_namespace"].as_str()?.to_owned(),
                        // An empty project has none.
                        r["default_branch"].as_str().unwrap_or_default(),
                    )
                } else {
                    let name = r["name"].as_str()?;
                    (
                        name,
                        format!("{owner}/{name}"),
                        r["default_branch"].as_str().unwrap_or("main"),
                    )
                };
                Some(RepoSummary {
                    name: name.to_owned(),
                    full_name,
                    archived: r["archived"].as_bool().unwrap_or(false),
                    default_branch: default_branch.to_owned(),
                })
            }));
            if count < 100 || page >= 1000 {
                break;
            }
            page += 1;
        }
        Ok(out)
    }

    fn explain_repo(
        &self,
        integration: &Integration,
        repo: &str,
        status: reqwest::StatusCode,
        with_credential: bool,
        now: i64,
    ) -> String {
        let url = ::url::Url::parse(&format!("https://{}/{repo}", integration.host))
            .unwrap_or_else(|_| integration.api_base_url.clone());
        self.explain(integration, &url, status, with_credential, now)
    }

    fn explain(
        &self,
        integration: &Integration,
        url: &::url::Url,
        status: reqwest::StatusCode,
        with_credential: bool,
        now: i64,
    ) -> String {
        let host = &integration.host;
        let credential = match &integration.credential {
            CredentialRef::None => "no credential is configured for it".to_owned(),
            CredentialRef::Token { path } | CredentialRef::GithubApp { path, .. } => {
                format!("its credential is at {}/{path} in Vault", self.vault_prefix)
            }
        };
        match status.as_u16() {
            401 => format!("{host} refused the credential for {url} (401): {credential}; check that it is valid and not expired"),
            403 | 429 if self.rate_limit(host).limited_until.is_some_and(|u| u > now) => {
                let until = self.rate_limit(host).limited_until.unwrap_or(now);
                format!("{host} rate-limited Paved ({status}); it is not asked again before {} (in {} s)", format_utc(until), until - now)
            }
            403 => format!("{host} forbade reading {url} (403): {credential}; give it read access to the repository"),
            404 if with_credential => format!("{host} has no {url} that its credential can read (404): check the path and ref, and that the credential may read the repository"),
            404 => format!("{host} has no public {url} (404): check the path and ref; a private repository needs a credential ({credential})"),
            _ => format!("{host} answered {status} for {url}"),
        }
    }

    fn note_rate_limit(&self, host: &str, response: &reqwest::Response, now: i64) {
        let header = |names: &[&str]| {
            names.iter().find_map(|n| {
                response
                    .headers()
                    .get(*n)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<i64>().ok())
            })
        };
        let remaining = header(&["x-ratelimit-remaining", "ratelimit-remaining"]);
        let limit = header(&["x-ratelimit-limit", "ratelimit-limit"]);
        let reset_at = header(&["x-ratelimit-reset", "ratelimit-reset"]);
        let retry_after = header(&["retry-after"]);
        if let Some(expires) = response
            .headers()
            .get("github-authentication-token-expiration")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_expiration)
        {
            lock(&self.expiries).insert(host.to_owned(), expires);
        }
        let status = response.status().as_u16();
        let limited =
            matches!(status, 403 | 429) && (remaining == Some(0) || retry_after.is_some());
        let mut limits = lock(&self.limits);
        let entry = limits.entry(host.to_owned()).or_default();
        if remaining.is_some() {
            entry.remaining = remaining;
            entry.limit = limit;
            entry.reset_at = reset_at;
        }
        entry.limited_until = if limited {
            Some(
                retry_after
                    .map(|s| now + s)
                    .or(reset_at)
                    .unwrap_or(now + 60)
                    .max(now + 1),
            )
        } else {
            None
        };
    }

    /// The integration's token, read from Vault (cached for five minutes).
    /// The token for a request about `owner`'s repositories: the
    /// integration's token, or an installation token of its GitHub App.
    async fn credential(
        &self,
        integration: &Integration,
        owner: Option<&str>,
    ) -> Result<Option<SecretString>, String> {
        let path = match &integration.credential {
            CredentialRef::None => return Ok(None),
            CredentialRef::Token { path } => path,
            CredentialRef::GithubApp { app_id, path } => {
                let owner = owner.ok_or_else(|| {
                    format!(
                        "{} uses a GitHub App, whose tokens act for one installation, and this request names no repository owner",
                        integration.host
                    )
                })?;
                return self
                    .installation_token(integration, *app_id, path, owner)
                    .await
                    .map(Some);
            }
        };
        self.vault_field(integration, path, "token").await.map(Some)
    }

    /// A field of the secret at `path` (under the prefix), cached for five minutes.
    async fn vault_field(
        &self,
        integration: &Integration,
        path: &str,
        field: &str,
    ) -> Result<SecretString, String> {
        self.vault_field_maybe(integration, path, field)
            .await?
            .ok_or_else(|| {
                format!(
                    "no `{field}` field at {}/{path} in Vault for {}",
                    self.vault_prefix, integration.host
                )
            })
    }

    /// [`Self::vault_field`], answering `None` when the secret has no such
    /// field (remembered as well, so an optional field is not asked for on
    /// every request).
    async fn vault_field_maybe(
        &self,
        integration: &Integration,
        path: &str,
        field: &str,
    ) -> Result<Option<SecretString>, String> {
        let key = format!("{path}#{field}");
        if let Some((value, at)) = lock(&self.credentials).get(&key) {
            if at.elapsed() < CREDENTIAL_TTL {
                return Ok(value.clone());
            }
        }
        let vault = self.vault.as_ref().ok_or_else(|| {
            format!(
                "{}'s credential is at {path} in Vault, but Vault is not configured (PAVED_VAULT_ADDR)",
                integration.host
            )
        })?;
        let full = format!("{}/{path}", self.vault_prefix);
        let data = vault.read_kv(&full).await.map_err(|e| {
            format!(
                "cannot read {}'s credential from Vault at {full}: {e}",
                integration.host
            )
        })?;
        let value = data
            .as_ref()
            .and_then(|d| d.get(field))
            .and_then(Value::as_str)
            .map(|t| SecretString::from(t.to_owned()));
        lock(&self.credentials).insert(key, (value.clone(), Instant::now()));
        Ok(value)
    }

    /// An installation token of the GitHub App `app_id` for `owner`'s
    /// installation: minted with a JWT signed by the App's private key (field
    /// `private_key` at `path`), reused until five minutes before it expires.
    async fn installation_token(
        &self,
        integration: &Integration,
        app_id: u64,
        path: &str,
        owner: &str,
    ) -> Result<SecretString, String> {
        let host = &integration.host;
        let now = (self.now)();
        let cache_key = format!("{host}/{}", owner.to_ascii_lowercase());
        if let Some((token, expires_at)) = lock(&self.installations).get(&cache_key) {
            if expires_at - now > 300 {
                return Ok(token.clone());
            }
        }
        let key = self.vault_field(integration, path, "private_key").await?;
        let jwt = github_app::jwt(app_id, key.expose_secret(), now)
            .map_err(|e| format!("the GitHub App key at {path} in Vault cannot sign: {e}"))?;
        let api = integration.api_base_url.as_str().trim_end_matches('/');
        let call = |method: reqwest::Method, address: String| {
            self.http
                .request(method, address)
                .bearer_auth(&jwt)
                .header("accept", "application/vnd.github+json")
                .header("x-github-api-version", "2022-11-28")
        };
        let mut installation = None;
        for scope in ["orgs", "users"] {
            let response = call(
                reqwest::Method::GET,
                format!("{api}/{scope}/{}/installation", url::encode(owner)),
            )
            .send()
            .await
            .map_err(|e| format!("cannot reach {host}: {}", without_url(&e)))?;
            if response.status().is_success() {
                let answer: Value = response.json().await.unwrap_or(Value::Null);
                installation = answer["id"].as_u64();
                break;
            }
            if response.status().as_u16() == 401 {
                return Err(format!(
                    "{host} refused the GitHub App {app_id}'s signature (401): check the app id and the key at {path} in Vault"
                ));
            }
        }
        let installation = installation.ok_or_else(|| {
            format!(
                "the GitHub App {app_id} is not installed for {owner} on {host}: install it there"
            )
        })?;
        let response = call(
            reqwest::Method::POST,
            format!("{api}/app/installations/{installation}/access_tokens"),
        )
        .send()
        .await
        .map_err(|e| format!("cannot reach {host}: {}", without_url(&e)))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        let token = answer["token"]
            .as_str()
            .filter(|_| status.is_success())
            .map(|t| SecretString::from(t.to_owned()))
            .ok_or_else(|| {
                format!("{host} would not mint an installation token for {owner} ({status})")
            })?;
        let expires_at = answer["expires_at"]
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map(|t| t.as_second())
            .unwrap_or(now + 3600);
        tracing::info!(host = %host, owner = %owner, installation, expires_at, "minted a GitHub App installation token");
        lock(&self.installations).insert(cache_key, (token.clone(), expires_at));
        Ok(token)
    }
}

/// The owner part of `owner/name` (or of a clone URL's path).
fn owner_of(repo: &str) -> Option<&str> {
    repo.split('/')
        .next()
        .filter(|o| !o.is_empty() && !o.contains(':'))
}

/// GitHub App authentication: the JWT an App signs to ask for installation tokens.
pub mod github_app {
    use base64::Engine;
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::{SignatureEncoding, Signer};

    /// A JWT for App `app_id`, valid from a minute ago (clock drift) for nine
    /// minutes (GitHub allows ten), signed RS256 with the App's PEM key
    /// (PKCS#1, as GitHub issues them, or PKCS#8).
    pub fn jwt(app_id: u64, private_key_pem: &str, now: i64) -> Result<String, String> {
        let key = rsa::RsaPrivateKey::from_pkcs1_pem(private_key_pem)
            .or_else(|_| rsa::RsaPrivateKey::from_pkcs8_pem(private_key_pem))
            .map_err(|_| "not an RSA private key in PEM".to_owned())?;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let header = b64(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = b64(
            serde_json::json!({"iat": now - 60, "exp": now + 540, "iss": app_id.to_string()})
                .to_string()
                .as_bytes(),
        );
        let signing_input = format!("{header}.{claims}");
        let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key);
        let signature = signer
            .try_sign(signing_input.as_bytes())
            .map_err(|e| e.to_string())?;
        Ok(format!("{signing_input}.{}", b64(&signature.to_bytes())))
    }
}

/// HMAC-SHA256 (RFC 2104) of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// Adds the host kind's authorization header for `token`.
fn authorize(
    request: reqwest::RequestBuilder,
    kind: HostKind,
    token: &SecretString,
) -> reqwest::RequestBuilder {
    let secret = token.expose_secret();
    match kind {
        HostKind::Gitlab => request.header("private-token", secret),
        HostKind::Gitea => request.header("authorization", format!("token {secret}")),
        HostKind::AzureDevops => request.basic_auth("", Some(secret)),
        _ => request.bearer_auth(secret),
    }
}

/// A reqwest error without its URL (URLs are ours, but keep messages short
/// and never echo a query string).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(&format!(" for url ({url})"), "");
    }
    text
}

/// GitHub's `GitHub-Authentication-Token-Expiration` value
/// (`2026-12-24 09:00:00 UTC`, or with a numeric offset such as `-0700`).
fn parse_expiration(value: &str) -> Option<i64> {
    let value = value.trim();
    let (stamp, zone) = value.rsplit_once(' ')?;
    let civil: jiff::civil::DateTime = stamp.trim().replace(' ', "T").parse().ok()?;
    let offset_seconds = match zone {
        "UTC" | "GMT" | "Z" => 0,
        z if z.len() == 5 && (z.starts_with('+') || z.starts_with('-')) => {
            let hours: i32 = z[1..3].parse().ok()?;
            let minutes: i32 = z[3..5].parse().ok()?;
            let total = hours * 3600 + minutes * 60;
            if z.starts_with('-') {
                -total
            } else {
                total
            }
        }
        _ => return None,
    };
    let utc = civil.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    Some(utc.as_second() - i64::from(offset_seconds))
}

fn format_utc(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| t.strftime("%H:%M:%S UTC").to_string())
        .unwrap_or_else(|_| unix.to_string())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    #[test]
    fn token_expiration_headers_in_both_of_githubs_formats() {
        assert_eq!(
            super::parse_expiration("2026-12-24 09:00:00 UTC"),
            Some(1_798_102_800)
        );
        assert_eq!(
            super::parse_expiration("2026-12-24 02:00:00 -0700"),
            Some(1_798_102_800)
        );
        assert_eq!(super::parse_expiration("soon"), None);
    }

    #[test]
    fn hmac_matches_rfc_4231_and_githubs_example() {
        // RFC 4231, test case 2.
        assert_eq!(
            hex::encode(super::hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // GitHub's documented example (validating webhook deliveries).
        assert_eq!(
            hex::encode(super::hmac_sha256(
                b"It's a Secret to Everybody",
                b"Hello, World!"
            )),
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }
}
