//! A local stand-in, over real HTTP on loopback, for the other hosts Paved
//! reads from and publishes to: Bitbucket Cloud (REST 2.0), Bitbucket Data
//! Center / Server (REST 1.0), Azure DevOps Services (Git REST 7.1) and
//! Gitea / Forgejo (API v1). One [`ForgeStub`] plays one kind. Each serves
//! what Paved uses of it, on that host's own paths and with its own way of
//! authenticating: raw file contents (with an `ETag`, answering 304 to a
//! matching `If-None-Match`), the connection check, and for the Bitbucket
//! kinds the repository API (look up, create, newest commit); repositories
//! are real bare git repositories served over git's smart HTTP at the
//! host's clone path. Each request is checked against the parameters the
//! host's REST reference documents (required ones present, none unknown);
//! what does not fit is kept in [`ForgeStub::violations`].

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

use crate::{
    bare_files, bare_git, commit_files, decode, git_backend, init_bare, now_nanos, TempRoot,
};

/// Which host a [`ForgeStub`] plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forge {
    /// bitbucket.org: repositories `WORKSPACE/slug`, Bearer tokens.
    BitbucketCloud,
    /// Bitbucket Data Center: repositories `PROJECT/slug`, Bearer tokens
    /// (HTTP access tokens), clone URLs under `/scm/`.
    BitbucketServer,
    /// dev.azure.com: repositories `org/project/repo`, Basic with the PAT
    /// as password, clone URLs `/org/project/_git/repo`.
    AzureDevops,
    /// Gitea or Forgejo: repositories `owner/name`, `Authorization: token …`.
    Gitea,
}

impl Forge {
    /// The integration kind Paved calls it.
    pub fn kind(self) -> &'static str {
        match self {
            Forge::BitbucketCloud => "bitbucket-cloud",
            Forge::BitbucketServer => "bitbucket-server",
            Forge::AzureDevops => "azure-devops",
            Forge::Gitea => "gitea",
        }
    }

    /// The API root's path.
    fn api_prefix(self) -> &'static str {
        match self {
            Forge::BitbucketCloud => "/2.0",
            Forge::BitbucketServer => "/rest/api/1.0",
            Forge::AzureDevops => "",
            Forge::Gitea => "/api/v1",
        }
    }

    /// Where the bare repository of `repo` lives under the git root (its
    /// clone URL's path).
    fn clone_path(self, repo: &str) -> String {
        match self {
            Forge::BitbucketServer => {
                let (project, slug) = repo.split_once('/').unwrap_or((repo, ""));
                format!("scm/{}/{slug}.git", project.to_ascii_lowercase())
            }
            Forge::AzureDevops => {
                let mut parts = repo.splitn(3, '/');
                let (org, project, name) = (
                    parts.next().unwrap_or_default(),
                    parts.next().unwrap_or_default(),
                    parts.next().unwrap_or_default(),
                );
                format!("{org}/{project}/_git/{name}")
            }
            Forge::BitbucketCloud | Forge::Gitea => format!("{repo}.git"),
        }
    }

    /// The token a request's authorization header carries, in this host's scheme.
    fn token(self, headers: &HeaderMap) -> Option<String> {
        let value = headers.get("authorization")?.to_str().ok()?;
        match self {
            Forge::BitbucketCloud | Forge::BitbucketServer => {
                value.strip_prefix("Bearer ").map(str::to_owned)
            }
            Forge::Gitea => value.strip_prefix("token ").map(str::to_owned),
            Forge::AzureDevops => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(value.strip_prefix("Basic ")?.trim())
                    .ok()?;
                let pair = String::from_utf8(decoded).ok()?;
                pair.split_once(':').map(|(_, p)| p.to_owned())
            }
        }
    }
}

/// A repository the stand-in holds.
#[derive(Debug, Clone)]
pub struct Hosted {
    /// `WORKSPACE/slug`, `PROJECT/slug`, `org/project/repo` or `owner/name`.
    pub repo: String,
    /// The description given at creation.
    pub description: String,
    /// Private repositories answer 404 without a token.
    pub private: bool,
    bare: PathBuf,
}

impl Hosted {
    /// The files at `git_ref`: path → bytes.
    pub fn files(&self, git_ref: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        bare_files(&self.bare, git_ref)
    }

    fn git(&self, args: &[&str]) -> Option<Vec<u8>> {
        bare_git(&self.bare, args)
    }
}

#[derive(Debug)]
struct Inner {
    forge: Forge,
    base_url: String,
    git_root: PathBuf,
    /// Bitbucket Server projects (keys) and Bitbucket Cloud workspaces that exist.
    spaces: Vec<String>,
    tokens: Vec<String>,
    repos: Vec<Hosted>,
    requests: Vec<(String, String, u16)>,
    violations: Vec<String>,
}

/// The running stand-in.
#[derive(Clone)]
pub struct ForgeStub {
    forge: Forge,
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    _git_root: Arc<TempRoot>,
}

impl ForgeStub {
    /// Starts `forge` on a free loopback port; `spaces` are the Bitbucket
    /// workspaces or projects that exist; `tokens` are accepted.
    pub async fn start(forge: Forge, spaces: &[&str], tokens: &[&str]) -> Self {
        let git_root = std::env::temp_dir().join(format!(
            "paved-{}-stub-{}-{}",
            forge.kind(),
            std::process::id(),
            now_nanos()
        ));
        std::fs::create_dir_all(&git_root).expect("a folder for repositories");
        let inner = Arc::new(Mutex::new(Inner {
            forge,
            base_url: String::new(),
            git_root: git_root.clone(),
            spaces: spaces.iter().map(|s| (*s).to_owned()).collect(),
            tokens: tokens.iter().map(|t| (*t).to_owned()).collect(),
            repos: Vec::new(),
            requests: Vec::new(),
            violations: Vec::new(),
        }));
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("the bound address");
        inner.lock().unwrap_or_else(|e| e.into_inner()).base_url = format!("http://{addr}");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            forge,
            addr,
            inner,
            _git_root: Arc::new(TempRoot(git_root)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `127.0.0.1:PORT`, the host as an integration names it.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The API root, as `api_base_url`.
    pub fn api_url(&self) -> String {
        format!("http://{}{}", self.addr, self.forge.api_prefix())
    }

    /// Adds `repo` with `files` committed on `main`.
    pub fn add_repo(&self, repo: &str, private: bool, files: &[(&str, &str)]) {
        let hosted = {
            let mut inner = self.lock();
            let hosted = new_repo(&inner, repo, "", private).expect("a new repository");
            inner.repos.push(hosted.clone());
            hosted
        };
        commit_files(&hosted.bare, files);
    }

    /// The repository `repo`.
    pub fn repo(&self, repo: &str) -> Option<Hosted> {
        self.lock().repos.iter().find(|r| r.repo == repo).cloned()
    }

    /// Every request so far: (method, path with query, status).
    pub fn requests(&self) -> Vec<(String, String, u16)> {
        self.lock().requests.clone()
    }

    /// Requests the host's REST reference does not allow.
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }
}

fn new_repo(inner: &Inner, repo: &str, description: &str, private: bool) -> Result<Hosted, String> {
    let bare = inner.git_root.join(inner.forge.clone_path(repo));
    std::fs::create_dir_all(&bare).map_err(|e| e.to_string())?;
    init_bare(&bare)?;
    Ok(Hosted {
        repo: repo.to_owned(),
        description: description.to_owned(),
        private,
        bare,
    })
}

fn json_answer(status: StatusCode, value: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// Each host's error body.
fn error(forge: Forge, status: StatusCode, text: &str) -> Response {
    let body = match forge {
        Forge::BitbucketCloud => json!({"type": "error", "error": {"message": text}}),
        Forge::BitbucketServer => json!({"errors": [{"context": null, "message": text}]}),
        Forge::AzureDevops => json!({"message": text, "typeKey": "GitItemNotFoundException"}),
        Forge::Gitea => json!({"message": text, "url": "https://docs.gitea.com/api/"}),
    };
    json_answer(status, body)
}

/// What each host's REST reference allows for the endpoints Paved calls:
/// (method, path shape, required, optional) query and body parameter names.
fn documented(
    forge: Forge,
) -> &'static [(
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
)] {
    match forge {
        Forge::BitbucketCloud => &[
            ("GET", "user", &[], &[]),
            ("GET", "repositories/:ws/:slug", &[], &[]),
            (
                "POST",
                "repositories/:ws/:slug",
                &["scm"],
                &[
                    "is_private",
                    "description",
                    "project",
                    "mainbranch",
                    "fork_policy",
                    "language",
                    "has_issues",
                    "has_wiki",
                ],
            ),
            (
                "GET",
                "repositories/:ws/:slug/src/:ref/:path",
                &[],
                &["format"],
            ),
            (
                "GET",
                "repositories/:ws/:slug/commits/:ref",
                &[],
                &["pagelen", "page", "include", "exclude"],
            ),
        ],
        Forge::BitbucketServer => &[
            ("GET", "application-properties", &[], &[]),
            ("GET", "projects/:key/repos/:slug", &[], &[]),
            (
                "POST",
                "projects/:key/repos",
                &["name"],
                &[
                    "scmId",
                    "description",
                    "defaultBranch",
                    "forkable",
                    "public",
                ],
            ),
            (
                "GET",
                "projects/:key/repos/:slug/raw/:path",
                &[],
                &["at", "markup", "htmlEscape", "includeHeadingId", "hardwrap"],
            ),
            (
                "GET",
                "projects/:key/repos/:slug/commits",
                &[],
                &["until", "since", "limit", "start", "path", "merges"],
            ),
        ],
        Forge::AzureDevops => &[(
            "GET",
            ":org/:project/_apis/git/repositories/:repo/items",
            &["path", "api-version"],
            &[
                "$format",
                "versionDescriptor.version",
                "versionDescriptor.versionType",
                "download",
                "includeContent",
                "resolveLfs",
            ],
        )],
        Forge::Gitea => &[
            ("GET", "version", &[], &[]),
            ("GET", "user", &[], &[]),
            ("GET", "repos/:owner/:repo/raw/:path", &[], &["ref"]),
        ],
    }
}

fn shape(forge: Forge, segments: &[String]) -> String {
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (forge, s.as_slice()) {
        (Forge::BitbucketCloud, ["repositories", _, _]) => "repositories/:ws/:slug".into(),
        (Forge::BitbucketCloud, ["repositories", _, _, "src", _, ..]) => {
            "repositories/:ws/:slug/src/:ref/:path".into()
        }
        (Forge::BitbucketCloud, ["repositories", _, _, "commits", _]) => {
            "repositories/:ws/:slug/commits/:ref".into()
        }
        (Forge::BitbucketServer, ["projects", _, "repos"]) => "projects/:key/repos".into(),
        (Forge::BitbucketServer, ["projects", _, "repos", _]) => "projects/:key/repos/:slug".into(),
        (Forge::BitbucketServer, ["projects", _, "repos", _, "raw", ..]) => {
            "projects/:key/repos/:slug/raw/:path".into()
        }
        (Forge::BitbucketServer, ["projects", _, "repos", _, "commits"]) => {
            "projects/:key/repos/:slug/commits".into()
        }
        (Forge::AzureDevops, [_, _, "_apis", "git", "repositories", _, "items"]) => {
            ":org/:project/_apis/git/repositories/:repo/items".into()
        }
        (Forge::Gitea, ["repos", _, _, "raw", ..]) => "repos/:owner/:repo/raw/:path".into(),
        (_, other) => other.join("/"),
    }
}

fn check(
    forge: Forge,
    method: &Method,
    shape: &str,
    query: &[(String, String)],
    body: Option<&Value>,
) -> Vec<String> {
    let Some((_, _, required, optional)) = documented(forge)
        .iter()
        .find(|(m, s, _, _)| *m == method.as_str() && *s == shape)
    else {
        return vec![format!(
            "{method} {}/{shape} is not an endpoint the {} stand-in documents",
            forge.api_prefix(),
            forge.kind()
        )];
    };
    let mut given: Vec<String> = query.iter().map(|(k, _)| k.clone()).collect();
    if let Some(Value::Object(map)) = body {
        given.extend(map.keys().cloned());
    }
    let mut problems = Vec::new();
    for r in *required {
        if !given.iter().any(|g| g == r) {
            problems.push(format!("{method} {shape}: `{r}` is required"));
        }
    }
    for g in &given {
        if !required.contains(&g.as_str()) && !optional.contains(&g.as_str()) {
            problems.push(format!(
                "{method} {shape}: `{g}` is not a documented parameter"
            ));
        }
    }
    problems
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    if path.ends_with("/info/refs")
        || path.ends_with("/git-upload-pack")
        || path.ends_with("/git-receive-pack")
    {
        let (root, tokens, forge) = {
            let inner = inner.lock().unwrap_or_else(|e| e.into_inner());
            (inner.git_root.clone(), inner.tokens.clone(), inner.forge)
        };
        return git_backend(&root, &tokens, forge.kind(), &method, &uri, &headers, body).await;
    }
    let forge = inner.lock().unwrap_or_else(|e| e.into_inner()).forge;
    let Some(api_path) = path.strip_prefix(&format!("{}/", forge.api_prefix())) else {
        return error(forge, StatusCode::NOT_FOUND, "Not Found");
    };
    let segments: Vec<String> = api_path.split('/').map(decode).collect();
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
    let token = forge.token(&headers);
    let if_none_match = headers
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut inner = inner.lock().unwrap_or_else(|e| e.into_inner());
    let problems = check(
        forge,
        &method,
        &shape(forge, &segments),
        &query,
        json_body.as_ref(),
    );
    inner.violations.extend(problems);
    let response = answer(
        &mut inner,
        &method,
        &segments,
        &query,
        token.as_deref(),
        if_none_match.as_deref(),
        json_body.as_ref(),
    );
    inner.requests.push((
        method.to_string(),
        uri.to_string(),
        response.status().as_u16(),
    ));
    response
}

/// A file's bytes at `git_ref` with its blob id as `ETag`.
fn raw(
    forge: Forge,
    repo: &Hosted,
    git_ref: &str,
    file: &str,
    if_none_match: Option<&str>,
) -> Response {
    let Some(blob) = repo.git(&["rev-parse", &format!("{git_ref}:{file}")]) else {
        return error(
            forge,
            StatusCode::NOT_FOUND,
            &format!("{file} was not found at {git_ref}"),
        );
    };
    let etag = format!("\"{}\"", String::from_utf8_lossy(&blob).trim());
    if if_none_match == Some(etag.as_str()) {
        return (StatusCode::NOT_MODIFIED, [("etag", etag)]).into_response();
    }
    let bytes = repo
        .git(&["show", &format!("{git_ref}:{file}")])
        .unwrap_or_default();
    let content_type = match forge {
        Forge::AzureDevops => "application/octet-stream",
        _ => "text/plain; charset=utf-8",
    };
    (
        StatusCode::OK,
        [("content-type", content_type.to_owned()), ("etag", etag)],
        bytes,
    )
        .into_response()
}

/// The newest commit of `git_ref`: (hash, message).
fn head(repo: &Hosted, git_ref: &str) -> Option<(String, String)> {
    let out = repo.git(&["log", "-1", "--format=%H%n%B", git_ref])?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (hash, message) = text.split_once('\n')?;
    Some((hash.to_owned(), message.trim_end().to_owned()))
}

fn answer(
    inner: &mut Inner,
    method: &Method,
    segments: &[String],
    query: &[(String, String)],
    token: Option<&str>,
    if_none_match: Option<&str>,
    body: Option<&Value>,
) -> Response {
    let forge = inner.forge;
    let authenticated = match token {
        Some(t) if inner.tokens.iter().any(|k| k == t) => true,
        Some(_) => return error(forge, StatusCode::UNAUTHORIZED, "Authentication failed"),
        None => false,
    };
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let visible = |inner: &Inner, repo: &str| {
        inner
            .repos
            .iter()
            .find(|r| r.repo == repo)
            .filter(|r| !r.private || authenticated)
            .cloned()
    };
    let not_found = |what: &str| {
        error(
            forge,
            StatusCode::NOT_FOUND,
            &format!("{what} does not exist"),
        )
    };
    match (forge, method, seg.as_slice()) {
        (Forge::BitbucketCloud | Forge::Gitea, &Method::GET, ["user"])
        | (Forge::BitbucketServer, &Method::GET, ["application-properties"])
        | (Forge::Gitea, &Method::GET, ["version"])
            if !authenticated =>
        {
            error(forge, StatusCode::UNAUTHORIZED, "Authentication required")
        }
        (Forge::BitbucketCloud | Forge::Gitea, &Method::GET, ["user"]) => json_answer(
            StatusCode::OK,
            json!({"username": "paved-bot", "login": "paved-bot", "type": "user"}),
        ),
        (Forge::BitbucketServer, &Method::GET, ["application-properties"]) => json_answer(
            StatusCode::OK,
            json!({"version": "8.19.1", "buildNumber": "8019001", "displayName": "Bitbucket"}),
        ),
        (Forge::Gitea, &Method::GET, ["version"]) => {
            json_answer(StatusCode::OK, json!({"version": "1.22.3"}))
        }
        (Forge::Gitea, &Method::GET, ["repos", owner, name, "raw", file @ ..]) => {
            let Some(repo) = visible(inner, &format!("{owner}/{name}")) else {
                return not_found("The repository");
            };
            raw(
                forge,
                &repo,
                &param("ref").unwrap_or("main".into()),
                &file.join("/"),
                if_none_match,
            )
        }
        (
            Forge::AzureDevops,
            &Method::GET,
            [org, project, "_apis", "git", "repositories", name, "items"],
        ) => {
            if !authenticated {
                // Azure DevOps sends people without a token to sign in.
                return (
                    StatusCode::UNAUTHORIZED,
                    "TF400813: The user is not authorized to access this resource.",
                )
                    .into_response();
            }
            let Some(repo) = visible(inner, &format!("{org}/{project}/{name}")) else {
                return not_found("TF401019: The Git repository");
            };
            let file = param("path").unwrap_or_default();
            let git_ref = param("versionDescriptor.version").unwrap_or("main".into());
            raw(
                forge,
                &repo,
                &git_ref,
                file.trim_start_matches('/'),
                if_none_match,
            )
        }
        (Forge::BitbucketServer, &Method::GET, ["projects", key, "repos", slug, rest @ ..]) => {
            let Some(repo) = visible(inner, &format!("{key}/{slug}")) else {
                return not_found(&format!("Repository {key}/{slug}"));
            };
            match rest {
                [] => json_answer(StatusCode::OK, server_repo_json(inner, &repo)),
                ["raw", file @ ..] => {
                    let git_ref = param("at").unwrap_or("main".into());
                    let git_ref = git_ref.trim_start_matches("refs/heads/");
                    raw(forge, &repo, git_ref, &file.join("/"), if_none_match)
                }
                ["commits"] => {
                    let until = param("until").unwrap_or("main".into());
                    match head(&repo, until.trim_start_matches("refs/heads/")) {
                        Some((hash, message)) => json_answer(
                            StatusCode::OK,
                            json!({"size": 1, "limit": 1, "isLastPage": false, "start": 0,
                                   "values": [{"id": hash, "displayId": &hash[..11], "message": message}]}),
                        ),
                        None => error(
                            forge,
                            StatusCode::NOT_FOUND,
                            &format!("Commit '{until}' does not exist in repository '{slug}'."),
                        ),
                    }
                }
                _ => not_found("The resource"),
            }
        }
        (Forge::BitbucketServer, &Method::POST, ["projects", key, "repos"]) => {
            if !authenticated {
                return error(forge, StatusCode::UNAUTHORIZED, "Authentication required");
            }
            if !inner.spaces.iter().any(|s| s == key) {
                return error(
                    forge,
                    StatusCode::NOT_FOUND,
                    &format!("Project {key} does not exist."),
                );
            }
            let Some(name) = body.and_then(|b| b["name"].as_str()) else {
                return error(forge, StatusCode::BAD_REQUEST, "name is required");
            };
            let slug = name.to_ascii_lowercase();
            let full = format!("{key}/{slug}");
            if inner.repos.iter().any(|r| r.repo == full) {
                return json_answer(
                    StatusCode::CONFLICT,
                    json!({"errors": [{"context": "name", "message": "This repository URL is already taken.", "exceptionName": null}]}),
                );
            }
            let description = body
                .and_then(|b| b["description"].as_str())
                .unwrap_or_default();
            let private = !body.and_then(|b| b["public"].as_bool()).unwrap_or(false);
            match new_repo(inner, &full, description, private) {
                Ok(repo) => {
                    let answer = server_repo_json(inner, &repo);
                    inner.repos.push(repo);
                    json_answer(StatusCode::CREATED, answer)
                }
                Err(e) => error(forge, StatusCode::INTERNAL_SERVER_ERROR, &e),
            }
        }
        (Forge::BitbucketCloud, &Method::GET, ["repositories", ws, slug, rest @ ..]) => {
            let Some(repo) = visible(inner, &format!("{ws}/{slug}")) else {
                return not_found(&format!("Repository {ws}/{slug}"));
            };
            match rest {
                [] => json_answer(StatusCode::OK, cloud_repo_json(inner, &repo)),
                ["src", git_ref, file @ ..] => {
                    raw(forge, &repo, git_ref, &file.join("/"), if_none_match)
                }
                ["commits", git_ref] => match head(&repo, git_ref) {
                    Some((hash, message)) => json_answer(
                        StatusCode::OK,
                        json!({"pagelen": 1, "values": [{"type": "commit", "hash": hash, "message": message}]}),
                    ),
                    None => error(
                        forge,
                        StatusCode::NOT_FOUND,
                        &format!("Ref not found: {git_ref}"),
                    ),
                },
                _ => not_found("The resource"),
            }
        }
        (Forge::BitbucketCloud, &Method::POST, ["repositories", ws, slug]) => {
            if !authenticated {
                return error(forge, StatusCode::UNAUTHORIZED, "Authentication required");
            }
            if !inner.spaces.iter().any(|s| s == ws) {
                return error(
                    forge,
                    StatusCode::NOT_FOUND,
                    &format!("Workspace {ws} not found"),
                );
            }
            let full = format!("{ws}/{slug}");
            if inner.repos.iter().any(|r| r.repo == full) {
                return error(
                    forge,
                    StatusCode::BAD_REQUEST,
                    "Repository with this Slug and Owner already exists.",
                );
            }
            if body.and_then(|b| b["scm"].as_str()) != Some("git") {
                return error(forge, StatusCode::BAD_REQUEST, "scm: must be git");
            }
            let description = body
                .and_then(|b| b["description"].as_str())
                .unwrap_or_default();
            let private = body.and_then(|b| b["is_private"].as_bool()).unwrap_or(true);
            match new_repo(inner, &full, description, private) {
                Ok(repo) => {
                    let answer = cloud_repo_json(inner, &repo);
                    inner.repos.push(repo);
                    json_answer(StatusCode::OK, answer)
                }
                Err(e) => error(forge, StatusCode::INTERNAL_SERVER_ERROR, &e),
            }
        }
        _ => not_found("The resource"),
    }
}

fn cloud_repo_json(inner: &Inner, repo: &Hosted) -> Value {
    let slug = repo.repo.rsplit('/').next().unwrap_or_default();
    json!({
        "type": "repository",
        "full_name": repo.repo,
        "slug": slug,
        "name": slug,
        "description": repo.description,
        "is_private": repo.private,
        "scm": "git",
        "mainbranch": {"type": "branch", "name": "main"},
        "links": {
            "html": {"href": format!("{}/{}", inner.base_url, repo.repo)},
            "clone": [
                {"name": "https", "href": format!("http://paved-bot@{}/{}.git", inner.base_url.trim_start_matches("http://"), repo.repo)},
                {"name": "ssh", "href": format!("git@bitbucket.org:{}.git", repo.repo)},
            ],
        },
    })
}

fn server_repo_json(inner: &Inner, repo: &Hosted) -> Value {
    let (key, slug) = repo.repo.split_once('/').unwrap_or((&repo.repo, ""));
    json!({
        "slug": slug,
        "name": slug,
        "description": repo.description,
        "scmId": "git",
        "state": "AVAILABLE",
        "public": !repo.private,
        "project": {"key": key},
        "links": {
            "clone": [
                {"name": "http", "href": format!("{}/{}", inner.base_url, inner.forge.clone_path(&repo.repo))},
                {"name": "ssh", "href": format!("ssh://git@bitbucket.example.com:7999/{}", inner.forge.clone_path(&repo.repo).trim_start_matches("scm/"))},
            ],
            "self": [{"href": format!("{}/projects/{key}/repos/{slug}/browse", inner.base_url)}],
        },
    })
}
