//! A local stand-in for GitHub's REST API, over real HTTP on loopback, for
//! the parts Paved uses: repository contents (raw and JSON), repositories.
//! Its answers follow GitHub's recorded responses (npm `@octokit/fixtures`):
//! the same status codes, error bodies, `ETag`s and `x-ratelimit-*` headers.
//! Every request is checked against GitHub's OpenAPI description
//! ([`openapi::check`]); what does not fit is kept in
//! [`GithubStub::violations`] for the test to assert on.

pub mod openapi;

use std::collections::BTreeMap;
use std::net::SocketAddr;
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
        }
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
}

#[derive(Debug)]
struct Inner {
    repos: Vec<Repo>,
    tokens: Vec<String>,
    rate_limit: i64,
    remaining: i64,
    reset_at: i64,
    requests: Vec<Recorded>,
    violations: Vec<String>,
}

/// The running stand-in.
#[derive(Clone)]
pub struct GithubStub {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

impl GithubStub {
    /// Starts on a free loopback port with `repos`, accepting `tokens`
    /// (each may read every repository) and `rate_limit` requests per hour.
    pub async fn start(repos: Vec<Repo>, tokens: &[&str], rate_limit: i64) -> Self {
        // Fail at start, not on the first request, when the description is missing.
        openapi::description();
        let inner = Arc::new(Mutex::new(Inner {
            repos,
            tokens: tokens.iter().map(|t| (*t).to_owned()).collect(),
            rate_limit,
            remaining: rate_limit,
            reset_at: now() + 3600,
            requests: Vec::new(),
            violations: Vec::new(),
        }));
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("the bound address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, inner }
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
    );
    let status = response.status().as_u16();
    inner.requests.push(Recorded {
        method: method.to_string(),
        path,
        authorized: token.is_some(),
        conditional: if_none_match.is_some(),
        status,
    });
    response
}

/// Percent-decoding (a query value's `+` is a space; pass it replaced).
fn decode(s: &str) -> String {
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

fn answer(
    inner: &mut Inner,
    method: &Method,
    path: &str,
    query: &[(String, String)],
    token: Option<&str>,
    if_none_match: Option<&str>,
    raw: bool,
) -> Response {
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
    let response = match (method, segments.first().map(String::as_str)) {
        (&Method::GET, Some("repos")) if segments.len() >= 3 => {
            let full = format!("{}/{}", segments[1], segments[2]);
            let visible = inner
                .repos
                .iter()
                .find(|r| r.full_name().eq_ignore_ascii_case(&full))
                .filter(|r| !r.private || token.is_some());
            match (visible, segments.get(3).map(String::as_str)) {
                (None, _) => not_found("https://docs.github.com/rest/repos/repos#get-a-repository"),
                (Some(repo), None) => json_answer(repo_json(repo)),
                (Some(repo), Some("contents")) => {
                    let file_path = segments[4..].join("/");
                    let git_ref = query
                        .iter()
                        .find(|(k, _)| k == "ref")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_else(|| repo.default_branch.clone());
                    contents(repo, &git_ref, &file_path, if_none_match, raw)
                }
                (Some(repo), Some("git"))
                    if segments.get(4).map(String::as_str) == Some("trees")
                        && segments.len() == 6 =>
                {
                    tree(repo, &segments[5])
                }
                (Some(_), Some(_)) => not_found("https://docs.github.com/rest"),
            }
        }
        _ => not_found("https://docs.github.com/rest"),
    };
    with_rate_headers(response, inner)
}

fn tree(repo: &Repo, git_ref: &str) -> Response {
    let Some(files) = repo.refs.get(git_ref) else {
        return github_error(
            StatusCode::NOT_FOUND,
            "Not Found",
            "https://docs.github.com/rest/git/trees#get-a-tree",
        );
    };
    let mut entries = Vec::new();
    let mut folders = std::collections::BTreeSet::new();
    for (path, bytes) in files {
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

fn repo_json(repo: &Repo) -> Value {
    json!({
        "id": u64::from_str_radix(&hex::encode(&Sha256::digest(repo.full_name().as_bytes())[..6]), 16).unwrap_or(1),
        "name": repo.name,
        "full_name": repo.full_name(),
        "private": repo.private,
        "archived": repo.archived,
        "default_branch": repo.default_branch,
        "visibility": if repo.private { "private" } else { "public" },
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
    let Some(files) = repo.refs.get(git_ref) else {
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
