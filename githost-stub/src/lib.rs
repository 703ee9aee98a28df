//! A local stand-in for GitHub's REST API, over real HTTP on loopback, for
//! the parts Paved uses: repository contents (raw and JSON), repositories.
//! Its answers follow GitHub's recorded responses (npm `@octokit/fixtures`):
//! the same status codes, error bodies, `ETag`s and `x-ratelimit-*` headers.
//! Every request is checked against GitHub's OpenAPI description
//! ([`openapi::check`]); what does not fit is kept in
//! [`GithubStub::violations`] for the test to assert on.

pub mod forge;
pub mod gitlab;
pub mod openapi;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// A repository the stand-in serves.
#[derive(Debug, Clone)]
pub struct Repo {
    /// The owner (an organization or a user).
    pub owner: String,
    /// The repository's name.
    pub name: String,
    /// Private repositories answer 404 without a token that may read them.
    pub private: bool,
    /// Archived repositories are read-only.
    pub archived: bool,
    /// The default branch.
    pub default_branch: String,
    /// Branches (and tags) to their files: path → bytes.
    pub refs: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    /// Repositories created through the API are real bare git repositories
    /// (pushed to over smart HTTP); their files are read with git.
    pub bare: Option<PathBuf>,
    /// The description given at creation.
    pub description: Option<String>,
    /// Topics set through the API.
    pub topics: Vec<String>,
}

impl Repo {
    /// A repository with `files` on its default branch `main`.
    pub fn new(owner: &str, name: &str, files: &[(&str, &str)]) -> Self {
        Self {
            owner: owner.into(),
            name: name.into(),
            private: false,
            archived: false,
            default_branch: "main".into(),
            refs: BTreeMap::from([(
                "main".to_owned(),
                files
                    .iter()
                    .map(|(p, c)| ((*p).to_owned(), c.as_bytes().to_vec()))
                    .collect(),
            )]),
            bare: None,
            description: None,
            topics: Vec::new(),
        }
    }

    /// The files at `git_ref` (a branch, tag or commit).
    fn files(&self, git_ref: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        match &self.bare {
            Some(bare) => bare_files(bare, git_ref),
            None => self.refs.get(git_ref).cloned(),
        }
    }

    /// The newest commit of `git_ref`: (sha, message), for repositories with history.
    fn head(&self, git_ref: &str) -> Option<(String, String)> {
        let out = bare_git(
            self.bare.as_ref()?,
            &["log", "-1", "--format=%H%n%B", git_ref],
        )?;
        let text = String::from_utf8_lossy(&out).into_owned();
        let (sha, message) = text.split_once('\n')?;
        Some((sha.to_owned(), message.trim_end().to_owned()))
    }

    /// The same repository, private.
    pub fn private(mut self) -> Self {
        self.private = true;
        self
    }

    fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
}

/// A pull request opened through the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pull {
    /// `owner/name` of the repository.
    pub repo: String,
    /// Its number in the repository.
    pub number: u64,
    /// Title and body.
    pub title: String,
    /// The description.
    pub body: String,
    /// The branch proposed, and the branch it goes into.
    pub head: String,
    /// The branch it goes into.
    pub base: String,
    /// Opened as a draft.
    pub draft: bool,
    /// Users and team slugs asked for a review.
    pub reviewers: Vec<String>,
    /// Team slugs asked for a review.
    pub team_reviewers: Vec<String>,
}

/// A request the stand-in received (the token is reduced to whether one came).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// `GET`, `POST`…
    pub method: String,
    /// The path.
    pub path: String,
    /// Whether an `Authorization` header was present.
    pub authorized: bool,
    /// Whether `If-None-Match` was sent.
    pub conditional: bool,
    /// The status answered.
    pub status: u16,
    /// The JSON body sent, if any.
    pub body: Option<Value>,
}

#[derive(Debug)]
struct Inner {
    repos: Vec<Repo>,
    /// Organizations and their team slugs.
    orgs: BTreeMap<String, Vec<String>>,
    /// The login every accepted token belongs to.
    login: String,
    /// Where created repositories live (bare, pushed to over smart HTTP).
    git_root: PathBuf,
    /// Team access granted: (org/team, owner/repo, permission).
    grants: Vec<(String, String, String)>,
    /// Protected branches: (owner/repo, branch).
    protected: Vec<(String, String)>,
    /// `http://127.0.0.1:<port>`, for clone URLs.
    base_url: String,
    /// A GitHub App: its id and public key, and how long its installation tokens live.
    app: Option<(u64, rsa::RsaPublicKey, i64)>,
    /// Installation tokens minted so far.
    minted: usize,
    tokens: Vec<String>,
    rate_limit: i64,
    remaining: i64,
    reset_at: i64,
    requests: Vec<Recorded>,
    /// Git smart-HTTP requests: (method, path?query).
    git_requests: Vec<(String, String)>,
    /// Pull requests opened through the API.
    pulls: Vec<Pull>,
    /// `GitHub-Authentication-Token-Expiration`, sent on authenticated
    /// answers (as GitHub does for tokens that expire).
    token_expiration: Option<String>,
    violations: Vec<String>,
}

/// The running stand-in.
#[derive(Clone)]
pub struct GithubStub {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    load: Arc<Load>,
    _git_root: Arc<TempRoot>,
}

/// Requests in flight now, and the most at once.
#[derive(Debug, Default)]
pub struct Load {
    now: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
}

/// The folder created repositories live in, removed with the stand-in.
pub(crate) struct TempRoot(pub(crate) PathBuf);

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

impl GithubStub {
    /// Starts on a free loopback port with `repos`, accepting `tokens`
    /// (each may read every repository) and `rate_limit` requests per hour.
    pub async fn start(repos: Vec<Repo>, tokens: &[&str], rate_limit: i64) -> Self {
        Self::start_on(0, repos, tokens, rate_limit).await
    }

    /// [`GithubStub::start`] on loopback port `port` (0 picks a free one).
    pub async fn start_on(port: u16, repos: Vec<Repo>, tokens: &[&str], rate_limit: i64) -> Self {
        // Fail at start, not on the first request, when the description is missing.
        openapi::description();
        let git_root = std::env::temp_dir().join(format!(
            "paved-githost-stub-{}-{}",
            std::process::id(),
            now_nanos()
        ));
        std::fs::create_dir_all(&git_root).expect("a folder for created repositories");
        let inner = Arc::new(Mutex::new(Inner {
            repos,
            orgs: BTreeMap::new(),
            login: "paved-bot".into(),
            git_root: git_root.clone(),
            grants: Vec::new(),
            protected: Vec::new(),
            base_url: String::new(),
            app: None,
            minted: 0,
            tokens: tokens.iter().map(|t| (*t).to_owned()).collect(),
            rate_limit,
            remaining: rate_limit,
            reset_at: now() + 3600,
            requests: Vec::new(),
            git_requests: Vec::new(),
            pulls: Vec::new(),
            token_expiration: None,
            violations: Vec::new(),
        }));
        let load = Arc::new(Load::default());
        let counted = load.clone();
        let app = Router::new()
            .fallback(handle)
            .with_state(inner.clone())
            .layer(axum::middleware::from_fn(
                move |request, next: axum::middleware::Next| {
                    let load = counted.clone();
                    async move {
                        use std::sync::atomic::Ordering;
                        let current = load.now.fetch_add(1, Ordering::SeqCst) + 1;
                        load.most.fetch_max(current, Ordering::SeqCst);
                        let response = next.run(request).await;
                        load.now.fetch_sub(1, Ordering::SeqCst);
                        response
                    }
                },
            ));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("the bound address");
        inner.lock().unwrap_or_else(|e| e.into_inner()).base_url = format!("http://{addr}");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            inner,
            load,
            _git_root: Arc::new(TempRoot(git_root)),
        }
    }

    /// Registers a GitHub App (`app_id`, its public key as PEM) installed for
    /// every owner; its installation tokens live `lifetime` seconds.
    pub fn with_app(&self, app_id: u64, public_key_pem: &str, lifetime: i64) {
        use rsa::pkcs8::DecodePublicKey;
        let key = rsa::RsaPublicKey::from_public_key_pem(public_key_pem)
            .or_else(|_| {
                use rsa::pkcs1::DecodeRsaPublicKey;
                rsa::RsaPublicKey::from_pkcs1_pem(public_key_pem)
            })
            .expect("an RSA public key in PEM");
        self.lock().app = Some((app_id, key, lifetime));
    }

    /// Sets how long new installation tokens live.
    pub fn set_token_lifetime(&self, lifetime: i64) {
        if let Some(app) = self.lock().app.as_mut() {
            app.2 = lifetime;
        }
    }

    /// How many installation tokens were minted.
    pub fn minted(&self) -> usize {
        self.lock().minted
    }

    /// The most requests that were in flight at once.
    pub fn most_in_flight(&self) -> usize {
        self.load.most.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Adds an organization with its team slugs.
    pub fn add_org(&self, org: &str, teams: &[&str]) {
        self.lock().orgs.insert(
            org.to_owned(),
            teams.iter().map(|t| (*t).to_owned()).collect(),
        );
    }

    /// The repository `owner/name` as the stand-in holds it.
    pub fn repo(&self, full_name: &str) -> Option<Repo> {
        self.lock()
            .repos
            .iter()
            .find(|r| r.full_name().eq_ignore_ascii_case(full_name))
            .cloned()
    }

    /// Team access granted: (org/team, owner/repo, permission).
    pub fn grants(&self) -> Vec<(String, String, String)> {
        self.lock().grants.clone()
    }

    /// Protected branches: (owner/repo, branch).
    pub fn protected(&self) -> Vec<(String, String)> {
        self.lock().protected.clone()
    }

    /// The files of `owner/name` at `git_ref`, pushed ones included.
    pub fn files(&self, full_name: &str, git_ref: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        self.repo(full_name)?.files(git_ref)
    }

    /// The API root, as `api_base_url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Requests that GitHub's description does not allow.
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// Git smart-HTTP requests so far: (method, path with query).
    pub fn git_requests(&self) -> Vec<(String, String)> {
        self.lock().git_requests.clone()
    }

    /// Adds a repository with real git history, served over smart HTTP at
    /// `{url}/{owner}/{name}.git` as well as through the API: `files`
    /// committed on `main`.
    pub fn add_git_repo(&self, owner: &str, name: &str, files: &[(&str, &str)]) {
        let bare = self.lock().git_root.join(owner).join(format!("{name}.git"));
        std::fs::create_dir_all(&bare).expect("a folder for the repository");
        init_bare(&bare).expect("git init --bare");
        self.add_repo(Repo {
            bare: Some(bare),
            refs: BTreeMap::new(),
            ..Repo::new(owner, name, &[])
        });
        self.commit(&format!("{owner}/{name}"), files);
    }

    /// Commits `files` (path, content) on the default branch of a repository
    /// made by [`GithubStub::add_git_repo`] or created through the API.
    pub fn commit(&self, full_name: &str, files: &[(&str, &str)]) {
        let bare = self
            .repo(full_name)
            .and_then(|r| r.bare)
            .expect("a repository with git history");
        commit_files(&bare, files);
    }

    /// The pull requests opened so far.
    pub fn pulls(&self) -> Vec<Pull> {
        self.lock().pulls.clone()
    }

    /// Adds a repository.
    pub fn add_repo(&self, repo: Repo) {
        self.lock().repos.push(repo);
    }

    /// Replaces (or adds) a file on a repository's default branch.
    pub fn set_file(&self, full_name: &str, path: &str, content: &str) {
        let mut inner = self.lock();
        if let Some(repo) = inner.repos.iter_mut().find(|r| r.full_name() == full_name) {
            let branch = repo.default_branch.clone();
            repo.refs
                .entry(branch)
                .or_default()
                .insert(path.to_owned(), content.as_bytes().to_vec());
        }
    }

    /// Makes authenticated answers carry `GitHub-Authentication-Token-Expiration`
    /// (GitHub's format, `2026-12-24 09:00:00 UTC`), as for a fine-grained token.
    pub fn set_token_expiration(&self, value: &str) {
        self.lock().token_expiration = Some(value.to_owned());
    }

    /// Sets the requests left in the current window (0 makes every request a 403).
    pub fn set_remaining(&self, remaining: i64) {
        self.lock().remaining = remaining;
    }

    /// When the current window resets (Unix seconds).
    pub fn reset_at(&self) -> i64 {
        self.lock().reset_at
    }
}

fn github_error(status: StatusCode, message: &str, docs: &str) -> Response {
    (
        status,
        [("content-type", "application/json; charset=utf-8")],
        json!({"message": message, "documentation_url": docs, "status": status.as_u16().to_string()}).to_string(),
    )
        .into_response()
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    if path.contains(".git/") {
        let response = git_http(&inner, &method, &uri, &headers, body).await;
        inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .git_requests
            .push((method.to_string(), uri.to_string()));
        return response;
    }
    let query: Vec<(String, String)> = uri
        .query()
        .map(|q| {
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (decode(&k.replace('+', " ")), decode(&v.replace('+', " ")))
                })
                .collect()
        })
        .unwrap_or_default();
    let json_body: Option<Value> =
        (!body.is_empty()).then(|| serde_json::from_slice(&body).unwrap_or(Value::Null));
    let problems = openapi::check(method.as_str(), &path, &query, json_body.as_ref());
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.trim_start_matches("Bearer ")
                .trim_start_matches("token ")
                .to_owned()
        });
    let if_none_match = headers
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let raw = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("raw"));
    let mut inner = inner.lock().unwrap_or_else(|e| e.into_inner());
    inner.violations.extend(problems);
    let response = answer(
        &mut inner,
        &method,
        &path,
        &query,
        token.as_deref(),
        if_none_match.as_deref(),
        raw,
        json_body.as_ref(),
    );
    let mut response = response;
    if let (Some(_), Some(expiration)) = (&token, &inner.token_expiration) {
        if let Ok(value) = axum::http::HeaderValue::from_str(expiration) {
            response
                .headers_mut()
                .insert("github-authentication-token-expiration", value);
        }
    }
    let status = response.status().as_u16();
    inner.requests.push(Recorded {
        method: method.to_string(),
        path,
        authorized: token.is_some(),
        conditional: if_none_match.is_some(),
        status,
        body: json_body,
    });
    response
}

/// Percent-decoding (a query value's `+` is a space; pass it replaced).
pub(crate) fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Git's smart HTTP protocol for created repositories, through `git
/// http-backend` (a real git server), with Basic authentication whose
/// password must be an accepted token.
async fn git_http(
    inner: &Arc<Mutex<Inner>>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let (root, tokens) = {
        let inner = inner.lock().unwrap_or_else(|e| e.into_inner());
        (inner.git_root.clone(), inner.tokens.clone())
    };
    git_backend(&root, &tokens, "GitHub", method, uri, headers, body).await
}

/// `git http-backend` over the bare repositories under `root`, for callers
/// whose Basic password is one of `tokens`.
pub(crate) async fn git_backend(
    root: &std::path::Path,
    tokens: &[String],
    realm: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let password = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|pair| pair.split_once(':').map(|(_, p)| p.to_owned()));
    if !password.is_some_and(|p| tokens.contains(&p)) {
        return (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", format!("Basic realm=\"{realm}\""))],
            "Invalid username or token.",
        )
            .into_response();
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let mut child = match tokio::process::Command::new("git")
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "http.receivepack")
        .env("GIT_CONFIG_VALUE_0", "true")
        .env("REMOTE_USER", "x-access-token")
        .env("REQUEST_METHOD", method.as_str())
        .env("PATH_INFO", uri.path())
        .env("QUERY_STRING", uri.query().unwrap_or_default())
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    if let Some(mut stdin) = child.stdin.take() {
        use tokio::io::AsyncWriteExt;
        let _ = stdin.write_all(&body).await;
    }
    let Ok(output) = child.wait_with_output().await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let out = output.stdout;
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4))
        .or_else(|| {
            out.windows(2)
                .position(|w| w == b"\n\n")
                .map(|i| (i, i + 2))
        });
    let Some((head_end, body_start)) = split else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let mut response = Response::new(axum::body::Body::from(out[body_start..].to_vec()));
    for line in String::from_utf8_lossy(&out[..head_end]).lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            if let Some(code) = value.split(' ').next().and_then(|c| c.parse::<u16>().ok()) {
                *response.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
            }
        } else if let (Ok(n), Ok(v)) = (
            axum::http::HeaderName::from_bytes(name.trim().as_bytes()),
            axum::http::HeaderValue::from_str(value),
        ) {
            response.headers_mut().append(n, v);
        }
    }
    response
}

fn with_rate_headers(mut response: Response, inner: &Inner) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit", inner.rate_limit),
        ("x-ratelimit-remaining", inner.remaining.max(0)),
        (
            "x-ratelimit-used",
            inner.rate_limit - inner.remaining.max(0),
        ),
        ("x-ratelimit-reset", inner.reset_at),
    ] {
        headers.insert(
            name,
            value
                .to_string()
                .parse()
                .expect("a number is a header value"),
        );
    }
    headers.insert("x-ratelimit-resource", "core".parse().expect("static"));
    response
}

#[allow(clippy::too_many_arguments)]
fn answer(
    inner: &mut Inner,
    method: &Method,
    path: &str,
    query: &[(String, String)],
    token: Option<&str>,
    if_none_match: Option<&str>,
    raw: bool,
    body: Option<&Value>,
) -> Response {
    if let Some(response) = app_endpoints(inner, method, path, token) {
        return response;
    }
    if token.is_some_and(|t| !inner.tokens.iter().any(|k| k == t)) {
        return github_error(
            StatusCode::UNAUTHORIZED,
            "Bad credentials",
            "https://docs.github.com/rest",
        );
    }
    if inner.remaining <= 0 {
        let response = github_error(
            StatusCode::FORBIDDEN,
            "API rate limit exceeded for installation. If you reach out to GitHub Support for help, please include the request ID.",
            "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting",
        );
        return with_rate_headers(response, inner);
    }
    inner.remaining -= 1;
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(decode)
        .collect();
    let seg = |i: usize| segments.get(i).map(String::as_str);
    let response = match (method, seg(0)) {
        (&Method::GET, Some("rate_limit")) if segments.len() == 1 => {
            let core = json!({"limit": inner.rate_limit, "remaining": inner.remaining.max(0),
                              "reset": inner.reset_at, "used": inner.rate_limit - inner.remaining.max(0)});
            json_answer(json!({"resources": {"core": core}, "rate": core}))
        }
        (&Method::GET, Some("user")) if segments.len() == 1 => match token {
            Some(_) => json_answer(json!({"login": inner.login, "type": "User"})),
            None => github_error(
                StatusCode::UNAUTHORIZED,
                "Requires authentication",
                "https://docs.github.com/rest/users/users#get-the-authenticated-user",
            ),
        },
        (&Method::GET, Some("orgs")) if segments.len() == 2 => {
            if inner.orgs.contains_key(&segments[1]) {
                json_answer(json!({"login": segments[1], "type": "Organization"}))
            } else {
                not_found("https://docs.github.com/rest/orgs/orgs#get-an-organization")
            }
        }
        (&Method::GET, Some("orgs" | "users"))
            if segments.len() == 3 && seg(2) == Some("repos") =>
        {
            let is_org = seg(0) == Some("orgs");
            let owner = segments[1].clone();
            if is_org && !inner.orgs.contains_key(&owner) {
                not_found("https://docs.github.com/rest/repos/repos#list-organization-repositories")
            } else {
                let number = |name: &str, default: usize| {
                    query
                        .iter()
                        .find(|(k, _)| k == name)
                        .and_then(|(_, v)| v.parse::<usize>().ok())
                        .unwrap_or(default)
                };
                let per_page = number("per_page", 30).clamp(1, 100);
                let page = number("page", 1).max(1);
                let visible: Vec<Value> = inner
                    .repos
                    .iter()
                    .filter(|r| r.owner == owner && (!r.private || token.is_some()))
                    .skip((page - 1) * per_page)
                    .take(per_page)
                    .map(repo_json)
                    .collect();
                json_answer(Value::Array(visible))
            }
        }
        (&Method::POST, Some("orgs")) if segments.len() == 3 && seg(2) == Some("repos") => {
            if token.is_none() {
                github_error(
                    StatusCode::UNAUTHORIZED,
                    "Requires authentication",
                    "https://docs.github.com/rest/repos/repos#create-an-organization-repository",
                )
            } else if !inner.orgs.contains_key(&segments[1]) {
                not_found(
                    "https://docs.github.com/rest/repos/repos#create-an-organization-repository",
                )
            } else {
                let owner = segments[1].clone();
                create_repo(inner, &owner, body)
            }
        }
        (&Method::POST, Some("user")) if segments.len() == 2 && seg(1) == Some("repos") => {
            if token.is_none() {
                github_error(StatusCode::UNAUTHORIZED, "Requires authentication", "https://docs.github.com/rest/repos/repos#create-a-repository-for-the-authenticated-user")
            } else {
                let owner = inner.login.clone();
                create_repo(inner, &owner, body)
            }
        }
        (&Method::PUT, Some("orgs"))
            if segments.len() == 7 && seg(2) == Some("teams") && seg(4) == Some("repos") =>
        {
            let known = inner
                .orgs
                .get(&segments[1])
                .is_some_and(|t| t.contains(&segments[3]));
            let repo_known = inner
                .repos
                .iter()
                .any(|r| r.full_name() == format!("{}/{}", segments[5], segments[6]));
            if known && repo_known {
                let permission = body
                    .and_then(|b| b["permission"].as_str())
                    .unwrap_or("push")
                    .to_owned();
                inner.grants.push((
                    format!("{}/{}", segments[1], segments[3]),
                    format!("{}/{}", segments[5], segments[6]),
                    permission,
                ));
                StatusCode::NO_CONTENT.into_response()
            } else {
                not_found("https://docs.github.com/rest/teams/teams#add-or-update-team-repository-permissions")
            }
        }
        (_, Some("repos")) if segments.len() >= 3 => {
            let full = format!("{}/{}", segments[1], segments[2]);
            let index = inner
                .repos
                .iter()
                .position(|r| r.full_name().eq_ignore_ascii_case(&full))
                .filter(|i| !inner.repos[*i].private || token.is_some());
            match (index, method, seg(3)) {
                (None, _, _) => {
                    not_found("https://docs.github.com/rest/repos/repos#get-a-repository")
                }
                (Some(i), &Method::GET, None) => {
                    let mut answer = repo_json(&inner.repos[i]);
                    answer["clone_url"] = json!(format!(
                        "{}/{}.git",
                        inner.base_url,
                        inner.repos[i].full_name()
                    ));
                    json_answer(answer)
                }
                (Some(i), &Method::GET, Some("contents")) => {
                    let repo = &inner.repos[i];
                    let file_path = segments[4..].join("/");
                    let git_ref = query
                        .iter()
                        .find(|(k, _)| k == "ref")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_else(|| repo.default_branch.clone());
                    contents(repo, &git_ref, &file_path, if_none_match, raw)
                }
                (Some(i), &Method::GET, Some("git"))
                    if seg(4) == Some("trees") && segments.len() == 6 =>
                {
                    tree(&inner.repos[i], &segments[5])
                }
                (Some(i), &Method::GET, Some("commits")) if segments.len() == 4 => {
                    let repo = &inner.repos[i];
                    let git_ref = query
                        .iter()
                        .find(|(k, _)| k == "sha")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_else(|| repo.default_branch.clone());
                    match repo.head(&git_ref) {
                        Some((sha, message)) => {
                            json_answer(json!([{"sha": sha, "commit": {"message": message}}]))
                        }
                        None if repo.bare.is_some()
                            && repo.head(&repo.default_branch).is_some() =>
                        {
                            github_error(
                                StatusCode::NOT_FOUND,
                                &format!("No commit found for SHA: {git_ref}"),
                                "https://docs.github.com/rest/commits/commits#list-commits",
                            )
                        }
                        None if repo.bare.is_some() => github_error(
                            StatusCode::CONFLICT,
                            "Git Repository is empty.",
                            "https://docs.github.com/rest/commits/commits#list-commits",
                        ),
                        None => {
                            not_found("https://docs.github.com/rest/commits/commits#list-commits")
                        }
                    }
                }
                (Some(i), &Method::GET, Some("pulls")) if segments.len() == 4 => {
                    let full = inner.repos[i].full_name();
                    let field = |name: &str| {
                        query
                            .iter()
                            .find(|(k, _)| k == name)
                            .map(|(_, v)| v.clone())
                    };
                    let state = field("state").unwrap_or_else(|| "open".into());
                    let head = field("head");
                    let owner = inner.repos[i].owner.clone();
                    let list: Vec<Value> = inner
                        .pulls
                        .iter()
                        .filter(|p| p.repo == full && matches!(state.as_str(), "open" | "all"))
                        .filter(|p| {
                            head.as_ref()
                                .is_none_or(|h| *h == format!("{owner}:{}", p.head))
                        })
                        .map(|p| pull_json(inner, p))
                        .collect();
                    json_answer(Value::Array(list))
                }
                (Some(i), &Method::POST, Some("pulls")) if segments.len() == 4 => {
                    open_pull(inner, i, token, body)
                }
                (Some(i), &Method::POST, Some("pulls"))
                    if segments.len() == 6 && seg(5) == Some("requested_reviewers") =>
                {
                    let full = inner.repos[i].full_name();
                    let number: u64 = segments[4].parse().unwrap_or_default();
                    let names = |key: &str| -> Vec<String> {
                        body.and_then(|b| b[key].as_array())
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    };
                    let (reviewers, teams) = (names("reviewers"), names("team_reviewers"));
                    match inner
                        .pulls
                        .iter_mut()
                        .find(|p| p.repo == full && p.number == number)
                    {
                        Some(pull) => {
                            pull.reviewers.extend(reviewers);
                            pull.team_reviewers.extend(teams);
                            let pull = pull.clone();
                            let answer = pull_json(inner, &pull);
                            (
                                StatusCode::CREATED,
                                [("content-type", "application/json; charset=utf-8")],
                                answer.to_string(),
                            )
                                .into_response()
                        }
                        None => not_found("https://docs.github.com/rest/pulls/review-requests#request-reviewers-for-a-pull-request"),
                    }
                }
                (Some(i), &Method::PUT, Some("topics")) if segments.len() == 4 => {
                    let names: Vec<String> = body
                        .and_then(|b| b["names"].as_array())
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect();
                    inner.repos[i].topics = names.clone();
                    json_answer(json!({"names": names}))
                }
                (Some(i), &Method::PUT, Some("branches"))
                    if seg(5) == Some("protection") && segments.len() == 6 =>
                {
                    let entry = (inner.repos[i].full_name(), segments[4].clone());
                    inner.protected.push(entry);
                    json_answer(json!({"url": path}))
                }
                (Some(_), _, _) => not_found("https://docs.github.com/rest"),
            }
        }
        _ => not_found("https://docs.github.com/rest"),
    };
    with_rate_headers(response, inner)
}

fn tree(repo: &Repo, git_ref: &str) -> Response {
    let Some(files) = repo.files(git_ref) else {
        return github_error(
            StatusCode::NOT_FOUND,
            "Not Found",
            "https://docs.github.com/rest/git/trees#get-a-tree",
        );
    };
    let mut entries = Vec::new();
    let mut folders = std::collections::BTreeSet::new();
    for (path, bytes) in &files {
        let mut at = path.as_str();
        while let Some((parent, _)) = at.rsplit_once('/') {
            folders.insert(parent.to_owned());
            at = parent;
        }
        entries.push(
            json!({"path": path, "mode": "100644", "type": "blob", "size": bytes.len(),
                            "sha": hex::encode(&Sha256::digest(bytes)[..20])}),
        );
    }
    for folder in folders {
        entries.push(json!({"path": folder, "mode": "040000", "type": "tree"}));
    }
    json_answer(
        json!({"sha": hex::encode(&Sha256::digest(git_ref.as_bytes())[..20]), "tree": entries, "truncated": false}),
    )
}

/// Whether `jwt` is the App's: RS256 under its key, issued by its id, and
/// within GitHub's ten-minute window.
fn app_jwt_ok(app: &(u64, rsa::RsaPublicKey, i64), jwt: &str) -> bool {
    use rsa::signature::Verifier;
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, claims, signature] = parts.as_slice() else {
        return false;
    };
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (Ok(claims), Ok(signature)) = (b64.decode(claims), b64.decode(signature)) else {
        return false;
    };
    let Ok(signature) = rsa::pkcs1v15::Signature::try_from(signature.as_slice()) else {
        return false;
    };
    let verifier = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(app.1.clone());
    if verifier
        .verify(format!("{header}.{}", parts[1]).as_bytes(), &signature)
        .is_err()
    {
        return false;
    }
    let Ok(claims) = serde_json::from_slice::<Value>(&claims) else {
        return false;
    };
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap_or(0),
        claims["exp"].as_i64().unwrap_or(0),
    );
    claims["iss"].as_str() == Some(app.0.to_string().as_str())
        && exp > now()
        && iat <= now() + 60
        && exp - iat <= 600
}

/// The GitHub App endpoints, authenticated by the App's JWT.
fn app_endpoints(
    inner: &mut Inner,
    method: &Method,
    path: &str,
    token: Option<&str>,
) -> Option<Response> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let installation_lookup = matches!(
        (method, segments.as_slice()),
        (&Method::GET, ["orgs" | "users", _, "installation"])
            | (&Method::GET, ["repos", _, _, "installation"])
    );
    let mint = matches!(
        (method, segments.as_slice()),
        (&Method::POST, ["app", "installations", _, "access_tokens"])
    );
    if !installation_lookup && !mint {
        return None;
    }
    let docs = "https://docs.github.com/rest/apps/apps";
    let Some(app) = inner.app.clone() else {
        return Some(not_found(docs));
    };
    if !token.is_some_and(|jwt| app_jwt_ok(&app, jwt)) {
        return Some(github_error(
            StatusCode::UNAUTHORIZED,
            "A JSON web token could not be decoded",
            docs,
        ));
    }
    if installation_lookup {
        let owner = segments[1];
        let known = inner.orgs.contains_key(owner) || inner.repos.iter().any(|r| r.owner == owner);
        return Some(if known {
            json_answer(
                json!({"id": 4200 + owner.len(), "app_id": app.0, "account": {"login": owner}}),
            )
        } else {
            not_found(docs)
        });
    }
    inner.minted += 1;
    let token = format!("ghs_stub_installation_{}_{}", inner.minted, now_nanos());
    inner.tokens.push(token.clone());
    let expires_at = jiff::Timestamp::from_second(now() + app.2)
        .map(|t| t.to_string())
        .unwrap_or_default();
    Some(
        (
            StatusCode::CREATED,
            [("content-type", "application/json; charset=utf-8")],
            json!({"token": token, "expires_at": expires_at}).to_string(),
        )
            .into_response(),
    )
}

fn not_found(docs: &str) -> Response {
    github_error(StatusCode::NOT_FOUND, "Not Found", docs)
}

fn json_answer(value: Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json; charset=utf-8")],
        value.to_string(),
    )
        .into_response()
}

fn create_repo(inner: &mut Inner, owner: &str, body: Option<&Value>) -> Response {
    let docs = "https://docs.github.com/rest/repos/repos#create-an-organization-repository";
    let Some(name) = body.and_then(|b| b["name"].as_str()).map(str::to_owned) else {
        return github_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid request.\n\n\"name\" wasn't supplied.",
            docs,
        );
    };
    let full = format!("{owner}/{name}");
    if inner
        .repos
        .iter()
        .any(|r| r.full_name().eq_ignore_ascii_case(&full))
    {
        let answer = json!({"message": "Repository creation failed.", "errors": [{"resource": "Repository", "code": "custom", "field": "name", "message": "name already exists on this account"}], "documentation_url": docs, "status": "422"});
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            [("content-type", "application/json; charset=utf-8")],
            answer.to_string(),
        )
            .into_response();
    }
    let bare = inner.git_root.join(owner).join(format!("{name}.git"));
    let made = std::fs::create_dir_all(&bare).is_ok() && init_bare(&bare).is_ok();
    if !made {
        return github_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not create the repository",
            docs,
        );
    }
    let private = body.and_then(|b| b["private"].as_bool()).unwrap_or(false);
    let repo = Repo {
        owner: owner.to_owned(),
        name,
        private,
        archived: false,
        default_branch: "main".into(),
        refs: BTreeMap::new(),
        bare: Some(bare),
        description: body
            .and_then(|b| b["description"].as_str())
            .map(str::to_owned),
        topics: Vec::new(),
    };
    let mut answer = repo_json(&repo);
    answer["clone_url"] = json!(format!("{}/{}.git", inner.base_url, repo.full_name()));
    inner.repos.push(repo);
    (
        StatusCode::CREATED,
        [("content-type", "application/json; charset=utf-8")],
        answer.to_string(),
    )
        .into_response()
}

/// `POST /repos/{owner}/{repo}/pulls`: both branches must exist and differ,
/// and only one open pull request per head and base.
fn open_pull(inner: &mut Inner, i: usize, token: Option<&str>, body: Option<&Value>) -> Response {
    let docs = "https://docs.github.com/rest/pulls/pulls#create-a-pull-request";
    if token.is_none() {
        return github_error(StatusCode::UNAUTHORIZED, "Requires authentication", docs);
    }
    let field = |k: &str| {
        body.and_then(|b| b[k].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let (title, head, base) = (field("title"), field("head"), field("base"));
    let repo = &inner.repos[i];
    let invalid = |message: &str| {
        let answer = json!({"message": "Validation Failed", "errors": [{"resource": "PullRequest", "code": "custom", "message": message}], "documentation_url": docs, "status": "422"});
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            [("content-type", "application/json; charset=utf-8")],
            answer.to_string(),
        )
            .into_response()
    };
    let (Some((head_sha, _)), Some((base_sha, _))) = (repo.head(&head), repo.head(&base)) else {
        return invalid(&format!(
            "head or base branch does not exist ({head}, {base})"
        ));
    };
    if head_sha == base_sha {
        return invalid(&format!("No commits between {base} and {head}"));
    }
    let full = repo.full_name();
    if inner
        .pulls
        .iter()
        .any(|p| p.repo == full && p.head == head && p.base == base)
    {
        return invalid(&format!(
            "A pull request already exists for {}:{head}.",
            repo.owner
        ));
    }
    let number = inner.pulls.iter().filter(|p| p.repo == full).count() as u64 + 1;
    let pull = Pull {
        repo: full,
        number,
        title,
        body: field("body"),
        head,
        base,
        draft: body.and_then(|b| b["draft"].as_bool()).unwrap_or(false),
        reviewers: Vec::new(),
        team_reviewers: Vec::new(),
    };
    let answer = pull_json(inner, &pull);
    inner.pulls.push(pull);
    (
        StatusCode::CREATED,
        [("content-type", "application/json; charset=utf-8")],
        answer.to_string(),
    )
        .into_response()
}

fn pull_json(inner: &Inner, pull: &Pull) -> Value {
    let repo = inner.repos.iter().find(|r| r.full_name() == pull.repo);
    let sha = |branch: &str| {
        repo.and_then(|r| r.head(branch))
            .map(|(sha, _)| sha)
            .unwrap_or_default()
    };
    let owner = pull.repo.split('/').next().unwrap_or_default();
    json!({
        "id": 1000 + pull.number,
        "number": pull.number,
        "state": "open",
        "title": pull.title,
        "body": pull.body,
        "draft": pull.draft,
        "html_url": format!("https://github.com/{}/pull/{}", pull.repo, pull.number),
        "url": format!("{}/repos/{}/pulls/{}", inner.base_url, pull.repo, pull.number),
        "user": {"login": inner.login},
        "head": {"ref": pull.head, "sha": sha(&pull.head), "label": format!("{owner}:{}", pull.head)},
        "base": {"ref": pull.base, "sha": sha(&pull.base), "label": format!("{owner}:{}", pull.base)},
        "requested_reviewers": pull.reviewers.iter().map(|l| json!({"login": l})).collect::<Vec<_>>(),
        "requested_teams": pull.team_reviewers.iter().map(|s| json!({"slug": s})).collect::<Vec<_>>(),
    })
}

/// Commits `files` (path, content) on `main` of the bare repository `bare`
/// (empty or not), as the stand-in's own user.
pub(crate) fn commit_files(bare: &std::path::Path, files: &[(&str, &str)]) {
    let work = bare.with_extension(format!("work-{}", now_nanos()));
    let git = |dir: &std::path::Path, args: &[&str]| {
        let ok = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "Stand-in")
            .env("GIT_AUTHOR_EMAIL", "stand-in@example.com")
            .env("GIT_COMMITTER_NAME", "Stand-in")
            .env("GIT_COMMITTER_EMAIL", "stand-in@example.com")
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "git {args:?}");
    };
    let parent = bare.parent().expect("the owner folder");
    git(
        parent,
        &[
            "clone",
            "-q",
            &bare.to_string_lossy(),
            &work.to_string_lossy(),
        ],
    );
    git(&work, &["checkout", "-q", "-B", "main"]);
    for (path, content) in files {
        let target = work.join(path);
        std::fs::create_dir_all(target.parent().expect("a parent")).expect("a folder");
        std::fs::write(target, content).expect("a file");
    }
    git(&work, &["add", "-A"]);
    git(
        &work,
        &["commit", "-q", "--allow-empty", "-m", "Change files"],
    );
    git(&work, &["push", "-q", "origin", "HEAD:refs/heads/main"]);
    let _ = std::fs::remove_dir_all(&work);
}

/// Runs git on the bare repository `bare`; its output when it succeeds.
pub(crate) fn bare_git(bare: &std::path::Path, args: &[&str]) -> Option<Vec<u8>> {
    std::process::Command::new("git")
        .arg("--git-dir")
        .arg(bare)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| o.stdout)
}

/// The files of the bare repository `bare` at `git_ref`: path → bytes.
pub(crate) fn bare_files(
    bare: &std::path::Path,
    git_ref: &str,
) -> Option<BTreeMap<String, Vec<u8>>> {
    let names = bare_git(bare, &["ls-tree", "-r", "--name-only", git_ref])?;
    let mut out = BTreeMap::new();
    for name in String::from_utf8_lossy(&names).lines() {
        out.insert(
            name.to_owned(),
            bare_git(bare, &["show", &format!("{git_ref}:{name}")])?,
        );
    }
    Some(out)
}

/// An empty bare repository whose default branch is `main` and which, like
/// GitHub, serves partial clones (`--filter`).
pub(crate) fn init_bare(bare: &std::path::Path) -> Result<(), String> {
    for args in [
        &["init", "--quiet", "--bare", "-b", "main", "."][..],
        &["config", "uploadpack.allowFilter", "true"],
        &["config", "uploadpack.allowAnySHA1InWant", "true"],
    ] {
        let ok = std::process::Command::new("git")
            .args(args)
            .current_dir(bare)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(format!("git {args:?} failed"));
        }
    }
    Ok(())
}

fn repo_json(repo: &Repo) -> Value {
    json!({
        "id": u64::from_str_radix(&hex::encode(&Sha256::digest(repo.full_name().as_bytes())[..6]), 16).unwrap_or(1),
        "name": repo.name,
        "full_name": repo.full_name(),
        "private": repo.private,
        "archived": repo.archived,
        "default_branch": repo.default_branch,
        "visibility": if repo.private { "private" } else { "public" },
        "description": repo.description,
        "topics": repo.topics,
        "html_url": format!("https://github.com/{}", repo.full_name()),
        "owner": {"login": repo.owner, "type": "Organization"},
    })
}

fn contents(
    repo: &Repo,
    git_ref: &str,
    path: &str,
    if_none_match: Option<&str>,
    raw: bool,
) -> Response {
    let docs = "https://docs.github.com/rest/repos/contents#get-repository-content";
    let Some(files) = repo.files(git_ref) else {
        return github_error(
            StatusCode::NOT_FOUND,
            &format!("No commit found for the ref {git_ref}"),
            docs,
        );
    };
    let Some(bytes) = files.get(path) else {
        // A folder: its direct entries.
        let prefix = format!("{path}/");
        let mut entries: Vec<Value> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for name in files.keys().filter_map(|p| {
            p.strip_prefix(&prefix)
                .or_else(|| path.is_empty().then_some(p.as_str()))
        }) {
            let (first, rest) = name
                .split_once('/')
                .map_or((name, false), |(f, _)| (f, true));
            if seen.insert(first.to_owned()) {
                let entry_path = if path.is_empty() {
                    first.to_owned()
                } else {
                    format!("{path}/{first}")
                };
                entries.push(json!({"name": first, "path": entry_path, "type": if rest { "dir" } else { "file" }}));
            }
        }
        if entries.is_empty() {
            return not_found(docs);
        }
        return json_answer(Value::Array(entries));
    };
    let etag = format!("\"{}\"", hex::encode(Sha256::digest(bytes)));
    if if_none_match == Some(etag.as_str()) {
        return (StatusCode::NOT_MODIFIED, [("etag", etag)]).into_response();
    }
    if raw {
        (
            StatusCode::OK,
            [
                (
                    "content-type",
                    "application/vnd.github.raw; charset=utf-8".to_owned(),
                ),
                ("etag", etag),
            ],
            bytes.clone(),
        )
            .into_response()
    } else {
        let mut response = json_answer(json!({
            "type": "file",
            "encoding": "base64",
            "size": bytes.len(),
            "name": path.rsplit('/').next().unwrap_or(path),
            "path": path,
            "content": base64::engine::general_purpose::STANDARD.encode(bytes),
            "sha": hex::encode(&Sha256::digest(bytes)[..20]),
        }));
        response
            .headers_mut()
            .insert("etag", etag.parse().expect("hex is a header value"));
        response
    }
}
