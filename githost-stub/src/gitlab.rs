//! A local stand-in for GitLab's REST API (v4), over real HTTP on loopback,
//! for the parts Paved uses: raw repository files, namespaces, projects
//! (created through the API, pushed to over git's smart HTTP), commits and
//! the version check. Its answers follow GitLab's REST API documentation:
//! the same paths (project ids or URL-encoded paths), `PRIVATE-TOKEN`
//! authentication, status codes and `{"message": …}` error bodies, `ETag`s
//! on raw files and `RateLimit-*` headers. GitLab publishes no complete
//! machine-readable description, so each request is checked against the
//! parameters those pages document (required ones present, none unknown);
//! what does not fit is kept in [`GitlabStub::violations`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

use crate::{
    bare_files, bare_git, commit_files, decode, git_backend, init_bare, now_nanos, TempRoot,
};

/// A project the stand-in holds (always a real bare git repository).
#[derive(Debug, Clone)]
pub struct Project {
    /// Its id.
    pub id: u64,
    /// `group/sub/name`.
    pub path_with_namespace: String,
    /// The description given at creation.
    pub description: String,
    /// `private`, `internal` or `public`.
    pub visibility: String,
    /// Topics given at creation.
    pub topics: Vec<String>,
    /// The default branch.
    pub default_branch: String,
    /// Archived projects are read-only.
    pub archived: bool,
    bare: PathBuf,
}

impl Project {
    fn git(&self, args: &[&str]) -> Option<Vec<u8>> {
        bare_git(&self.bare, args)
    }

    /// The files at `git_ref`: path → bytes.
    pub fn files(&self, git_ref: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        bare_files(&self.bare, git_ref)
    }
}

#[derive(Debug)]
struct Inner {
    /// `https://HOST` people see (web URLs), which may differ from where
    /// the stand-in listens.
    external: String,
    base_url: String,
    git_root: PathBuf,
    groups: Vec<String>,
    user: String,
    tokens: Vec<String>,
    projects: Vec<Project>,
    next_id: u64,
    remaining: i64,
    requests: Vec<(String, String, u16)>,
    violations: Vec<String>,
}

/// The running GitLab stand-in.
#[derive(Clone)]
pub struct GitlabStub {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    _git_root: Arc<TempRoot>,
}

impl GitlabStub {
    /// Starts on a free loopback port. `external_host` is the host people
    /// see in web URLs (`gitlab.example.com`; `None`: the stand-in's own
    /// address); `groups` exist; `tokens` are accepted and belong to the
    /// user `paved-bot`.
    pub async fn start(external_host: Option<&str>, groups: &[&str], tokens: &[&str]) -> Self {
        let git_root = std::env::temp_dir().join(format!(
            "paved-gitlab-stub-{}-{}",
            std::process::id(),
            now_nanos()
        ));
        std::fs::create_dir_all(&git_root).expect("a folder for projects");
        let inner = Arc::new(Mutex::new(Inner {
            external: external_host
                .map(|h| format!("https://{h}"))
                .unwrap_or_default(),
            base_url: String::new(),
            git_root: git_root.clone(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            user: "paved-bot".into(),
            tokens: tokens.iter().map(|t| (*t).to_owned()).collect(),
            projects: Vec::new(),
            next_id: 100,
            remaining: 2000,
            requests: Vec::new(),
            violations: Vec::new(),
        }));
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("the bound address");
        {
            let mut inner = inner.lock().unwrap_or_else(|e| e.into_inner());
            inner.base_url = format!("http://{addr}");
            if inner.external.is_empty() {
                inner.external = inner.base_url.clone();
            }
        }
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
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
        format!("http://{}/api/v4", self.addr)
    }

    /// Adds a project `path_with_namespace` with `files` committed on `main`.
    pub fn add_project(&self, path_with_namespace: &str, private: bool, files: &[(&str, &str)]) {
        let project = {
            let mut inner = self.lock();
            let project = new_project(
                &mut inner,
                path_with_namespace,
                "",
                if private { "private" } else { "public" },
                Vec::new(),
            )
            .expect("a new project");
            inner.projects.push(project.clone());
            project
        };
        commit_files(&project.bare, files);
    }

    /// Archives the project `path_with_namespace`.
    pub fn archive(&self, path_with_namespace: &str) {
        if let Some(p) = self
            .lock()
            .projects
            .iter_mut()
            .find(|p| p.path_with_namespace == path_with_namespace)
        {
            p.archived = true;
        }
    }

    /// The project `path_with_namespace`.
    pub fn project(&self, path_with_namespace: &str) -> Option<Project> {
        self.lock()
            .projects
            .iter()
            .find(|p| p.path_with_namespace == path_with_namespace)
            .cloned()
    }

    /// Every request so far: (method, path with query, status).
    pub fn requests(&self) -> Vec<(String, String, u16)> {
        self.lock().requests.clone()
    }

    /// Requests that GitLab's documentation does not allow.
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }
}

fn new_project(
    inner: &mut Inner,
    full: &str,
    description: &str,
    visibility: &str,
    topics: Vec<String>,
) -> Result<Project, String> {
    let bare = inner.git_root.join(format!("{full}.git"));
    std::fs::create_dir_all(&bare).map_err(|e| e.to_string())?;
    init_bare(&bare)?;
    inner.next_id += 1;
    Ok(Project {
        id: inner.next_id,
        path_with_namespace: full.to_owned(),
        description: description.to_owned(),
        visibility: visibility.to_owned(),
        topics,
        default_branch: "main".into(),
        archived: false,
        bare,
    })
}

fn message(status: StatusCode, text: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        json!({ "message": text }).to_string(),
    )
        .into_response()
}

fn json_answer(status: StatusCode, value: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// What GitLab's documentation allows for each endpoint Paved calls:
/// (method, path shape, required, optional) parameter names.
const DOCUMENTED: &[(&str, &str, &[&str], &[&str])] = &[
    ("GET", "version", &[], &[]),
    ("GET", "user", &[], &[]),
    ("GET", "namespaces/:id", &[], &["owned_only"]),
    (
        "GET",
        "groups/:id/projects",
        &[],
        &[
            "archived",
            "include_subgroups",
            "with_shared",
            "order_by",
            "sort",
            "per_page",
            "page",
            "simple",
            "visibility",
            "search",
        ],
    ),
    (
        "GET",
        "projects/:id",
        &[],
        &["license", "statistics", "with_custom_attributes"],
    ),
    (
        "POST",
        "projects",
        &["name"],
        &[
            "path",
            "namespace_id",
            "description",
            "visibility",
            "topics",
            "initialize_with_readme",
            "default_branch",
        ],
    ),
    (
        "GET",
        "projects/:id/repository/files/:file_path/raw",
        &["ref"],
        &["lfs"],
    ),
    (
        "GET",
        "projects/:id/repository/commits",
        &[],
        &["ref_name", "per_page", "page", "path", "since", "until"],
    ),
];

fn shape(segments: &[String]) -> String {
    match segments {
        [p, _, r, f, _, raw]
            if p == "projects" && r == "repository" && f == "files" && raw == "raw" =>
        {
            "projects/:id/repository/files/:file_path/raw".into()
        }
        [p, _, r, c] if p == "projects" && r == "repository" && c == "commits" => {
            "projects/:id/repository/commits".into()
        }
        [p, _] if p == "projects" => "projects/:id".into(),
        [n, _] if n == "namespaces" => "namespaces/:id".into(),
        [g, _, p] if g == "groups" && p == "projects" => "groups/:id/projects".into(),
        other => other.join("/"),
    }
}

fn check(
    method: &Method,
    shape: &str,
    query: &[(String, String)],
    body: Option<&Value>,
) -> Vec<String> {
    let Some((_, _, required, optional)) = DOCUMENTED
        .iter()
        .find(|(m, s, _, _)| *m == method.as_str() && *s == shape)
    else {
        return vec![format!(
            "{method} /api/v4/{shape} is not an endpoint the stand-in documents"
        )];
    };
    let mut given: Vec<String> = query.iter().map(|(k, _)| k.clone()).collect();
    if let Some(Value::Object(map)) = body {
        given.extend(map.keys().cloned());
    }
    let mut problems = Vec::new();
    for r in *required {
        if !given.iter().any(|g| g == r) {
            problems.push(format!("{method} /api/v4/{shape}: `{r}` is required"));
        }
    }
    for g in &given {
        if !required.contains(&g.as_str()) && !optional.contains(&g.as_str()) {
            problems.push(format!(
                "{method} /api/v4/{shape}: `{g}` is not a documented parameter"
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
    if path.contains(".git/") {
        let (root, tokens) = {
            let inner = inner.lock().unwrap_or_else(|e| e.into_inner());
            (inner.git_root.clone(), inner.tokens.clone())
        };
        return git_backend(&root, &tokens, "GitLab", &method, &uri, &headers, body).await;
    }
    let Some(api_path) = path.strip_prefix("/api/v4/") else {
        return message(StatusCode::NOT_FOUND, "404 Not Found");
    };
    // Segments as GitLab routes them: `%2F` inside an id stays one segment.
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
    let token = headers
        .get("private-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::to_owned)
        });
    let if_none_match = headers
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut inner = inner.lock().unwrap_or_else(|e| e.into_inner());
    let problems = check(&method, &shape(&segments), &query, json_body.as_ref());
    inner.violations.extend(problems);
    let mut response = answer(
        &mut inner,
        &method,
        &segments,
        &query,
        token.as_deref(),
        if_none_match.as_deref(),
        json_body.as_ref(),
    );
    inner.remaining -= 1;
    for (name, value) in [
        ("ratelimit-limit", 2000),
        ("ratelimit-remaining", inner.remaining.max(0)),
        ("ratelimit-reset", crate::now() + 60),
    ] {
        response.headers_mut().insert(
            name,
            value
                .to_string()
                .parse()
                .expect("a number is a header value"),
        );
    }
    inner.requests.push((
        method.to_string(),
        uri.to_string(),
        response.status().as_u16(),
    ));
    response
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
    let authenticated = match token {
        Some(t) if inner.tokens.iter().any(|k| k == t) => true,
        Some(_) => return message(StatusCode::UNAUTHORIZED, "401 Unauthorized"),
        None => false,
    };
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (method, seg.as_slice()) {
        (&Method::GET, ["version"]) | (&Method::GET, ["user"]) if !authenticated => {
            message(StatusCode::UNAUTHORIZED, "401 Unauthorized")
        }
        (&Method::GET, ["version"]) => json_answer(
            StatusCode::OK,
            json!({"version": "17.6.0", "revision": "stand-in", "enterprise": false}),
        ),
        (&Method::GET, ["user"]) => json_answer(
            StatusCode::OK,
            json!({"id": 1, "username": inner.user, "state": "active"}),
        ),
        (&Method::GET, ["namespaces", id]) => {
            if !authenticated {
                return message(StatusCode::UNAUTHORIZED, "401 Unauthorized");
            }
            let kind = if inner.groups.iter().any(|g| g == id) {
                "group"
            } else if *id == inner.user {
                "user"
            } else {
                return message(StatusCode::NOT_FOUND, "404 Namespace Not Found");
            };
            let path = id.rsplit('/').next().unwrap_or(id);
            let number = 10
                + inner
                    .groups
                    .iter()
                    .position(|g| g == id)
                    .unwrap_or(inner.groups.len()) as u64;
            json_answer(
                StatusCode::OK,
                json!({"id": number, "name": path, "path": path, "kind": kind, "full_path": id,
                       "web_url": format!("{}/{id}", inner.external)}),
            )
        }
        (&Method::GET, ["groups", group, "projects"]) => {
            if !inner.groups.iter().any(|g| g == group) {
                return message(StatusCode::NOT_FOUND, "404 Group Not Found");
            }
            let subgroups = param("include_subgroups").as_deref() == Some("true");
            let per_page: usize = param("per_page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(20)
                .clamp(1, 100);
            let page: usize = param("page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(1)
                .max(1);
            let prefix = format!("{group}/");
            let listed: Vec<Value> = inner
                .projects
                .iter()
                .filter(|p| p.visibility == "public" || authenticated)
                .filter(|p| {
                    p.path_with_namespace
                        .strip_prefix(&prefix)
                        .is_some_and(|rest| subgroups || !rest.contains('/'))
                })
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|p| project_json(inner, p))
                .collect();
            json_answer(StatusCode::OK, json!(listed))
        }
        (&Method::POST, ["projects"]) => {
            if !authenticated {
                return message(StatusCode::UNAUTHORIZED, "401 Unauthorized");
            }
            let field = |k: &str| body.and_then(|b| b[k].as_str()).map(str::to_owned);
            let Some(name) = field("name") else {
                return json_answer(StatusCode::BAD_REQUEST, json!({"error": "name is missing"}));
            };
            let path = field("path").unwrap_or_else(|| name.clone());
            let namespace = match body.and_then(|b| b["namespace_id"].as_u64()) {
                Some(id) => match inner.groups.get((id as usize).wrapping_sub(10)) {
                    Some(g) => g.clone(),
                    None if id == 10 + inner.groups.len() as u64 => inner.user.clone(),
                    None => return message(StatusCode::NOT_FOUND, "404 Namespace Not Found"),
                },
                None => inner.user.clone(),
            };
            let full = format!("{namespace}/{path}");
            if inner.projects.iter().any(|p| p.path_with_namespace == full) {
                return json_answer(
                    StatusCode::BAD_REQUEST,
                    json!({"message": {"name": ["has already been taken"], "path": ["has already been taken"]}}),
                );
            }
            let topics = body
                .and_then(|b| b["topics"].as_array())
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            let visibility = field("visibility").unwrap_or_else(|| "private".into());
            match new_project(
                inner,
                &full,
                &field("description").unwrap_or_default(),
                &visibility,
                topics,
            ) {
                Ok(project) => {
                    let answer = project_json(inner, &project);
                    inner.projects.push(project);
                    json_answer(StatusCode::CREATED, answer)
                }
                Err(e) => message(StatusCode::INTERNAL_SERVER_ERROR, &e),
            }
        }
        (&Method::GET, ["projects", id, rest @ ..]) => {
            let project = inner
                .projects
                .iter()
                .find(|p| p.path_with_namespace == *id || p.id.to_string() == *id)
                .filter(|p| p.visibility == "public" || authenticated)
                .cloned();
            let Some(project) = project else {
                return message(StatusCode::NOT_FOUND, "404 Project Not Found");
            };
            match rest {
                [] => json_answer(StatusCode::OK, project_json(inner, &project)),
                ["repository", "files", file, "raw"] => {
                    let Some(git_ref) = param("ref") else {
                        return json_answer(
                            StatusCode::BAD_REQUEST,
                            json!({"error": "ref is missing"}),
                        );
                    };
                    let Some(blob) = project.git(&["rev-parse", &format!("{git_ref}:{file}")])
                    else {
                        return message(StatusCode::NOT_FOUND, "404 File Not Found");
                    };
                    let etag = format!("\"{}\"", String::from_utf8_lossy(&blob).trim());
                    if if_none_match == Some(etag.as_str()) {
                        return (StatusCode::NOT_MODIFIED, [("etag", etag)]).into_response();
                    }
                    let bytes = project
                        .git(&["show", &format!("{git_ref}:{file}")])
                        .unwrap_or_default();
                    (
                        StatusCode::OK,
                        [
                            ("content-type", "text/plain; charset=utf-8".to_owned()),
                            ("etag", etag),
                            ("x-gitlab-file-path", (*file).to_owned()),
                            ("x-gitlab-ref", git_ref),
                        ],
                        bytes,
                    )
                        .into_response()
                }
                ["repository", "commits"] => {
                    let git_ref = param("ref_name").unwrap_or(project.default_branch.clone());
                    match project.git(&["log", "-1", "--format=%H%n%B", &git_ref]) {
                        Some(out) => {
                            let text = String::from_utf8_lossy(&out).into_owned();
                            let (sha, message) = text.split_once('\n').unwrap_or((&text, ""));
                            json_answer(
                                StatusCode::OK,
                                json!([{"id": sha, "short_id": &sha[..sha.len().min(8)],
                                        "title": message.lines().next().unwrap_or_default(),
                                        "message": message.trim_end()}]),
                            )
                        }
                        None => json_answer(StatusCode::OK, json!([])),
                    }
                }
                _ => message(StatusCode::NOT_FOUND, "404 Not Found"),
            }
        }
        _ => message(StatusCode::NOT_FOUND, "404 Not Found"),
    }
}

fn project_json(inner: &Inner, project: &Project) -> Value {
    let name = project
        .path_with_namespace
        .rsplit('/')
        .next()
        .unwrap_or_default();
    json!({
        "id": project.id,
        "name": name,
        "path": name,
        "path_with_namespace": project.path_with_namespace,
        "description": project.description,
        "visibility": project.visibility,
        "topics": project.topics,
        "default_branch": if project.git(&["rev-parse", "--verify", "-q", "HEAD"]).is_some() { json!(project.default_branch) } else { Value::Null },
        "archived": project.archived,
        "web_url": format!("{}/{}", inner.external, project.path_with_namespace),
        "http_url_to_repo": format!("{}/{}.git", inner.base_url, project.path_with_namespace),
        "empty_repo": project.git(&["rev-parse", "--verify", "-q", "HEAD"]).is_none(),
    })
}
