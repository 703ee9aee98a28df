//! The HTTP test app: the real router over a fresh SQLite file, plus helpers
//! to sign people in (a session as the OIDC callback would leave it) and to
//! start the real oidc-provider.
#![allow(dead_code)]

pub mod vault;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, Response, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use paved_core::auth::{Grants, PlatformRole, TeamRole};
use paved_core::config::Config;
use paved_core::identity::{self, SignIn};
use paved_server::session::{SessionUser, COOKIE_NAME, USER_KEY};
use paved_server::AppState;
use tower::ServiceExt;
use tower_sessions::session::{Id, Record};
use tower_sessions::SessionStore;

/// The public URL every test app claims (CSRF checks compare against it).
pub const PUBLIC_URL: &str = "http://paved.test";

pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    _dir: tempfile::TempDir,
}

/// The service tokens every test app accepts unless a test sets
/// `PAVED_SERVICE_TOKENS` itself, declared once for every test file.
pub mod tokens {
    pub const ADMIN: &str = "admin-token-0123456789abcdef";
    pub const PAYMENTS_DEV: &str = "dev-token-0123456789abcdef";
    pub const PAYMENTS_LEAD: &str = "lead-token-0123456789abcdef";
    pub const SEARCH_DEV: &str = "search-token-0123456789abcdef";
    pub const SEARCH_LEAD: &str = "other-lead-0123456789abcdef";
    /// `PAVED_SERVICE_TOKENS` for the tokens above: `admin` (platform admin),
    /// `dev` and `lead` of payments, `search` and `other` (its lead) of search.
    pub const ALL: &str = "admin:admin-token-0123456789abcdef:platform_admin,\
        dev:dev-token-0123456789abcdef:developer:payments,\
        lead:lead-token-0123456789abcdef:team_lead:payments,\
        search:search-token-0123456789abcdef:developer:search,\
        other:other-lead-0123456789abcdef:team_lead:search";
}

/// Builds the app with `vars` on top of minimal defaults (the [`tokens`]
/// included). The issuer points at a closed port unless a test overrides it.
pub async fn test_app(vars: &[(&str, &str)]) -> TestApp {
    test_app_with_clock(vars, Arc::new(paved_core::budgets::ledger::SystemClock)).await
}

/// [`test_app`] whose budgets (and demo usage) run on `clock`.
pub async fn test_app_with_clock(
    vars: &[(&str, &str)],
    clock: Arc<dyn paved_core::budgets::ledger::Clock>,
) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/paved.db", dir.path().display());
    let mut env: HashMap<String, String> = HashMap::from([
        ("PAVED_PUBLIC_URL".into(), PUBLIC_URL.into()),
        ("PAVED_DATABASE_URL".into(), db),
        ("PAVED_OIDC_ISSUER".into(), "http://127.0.0.1:9".into()),
        ("PAVED_OIDC_CLIENT_ID".into(), "paved".into()),
        (
            "PAVED_OIDC_CLIENT_SECRET".into(),
            "paved-demo-secret".into(),
        ),
        ("PAVED_SITE_ROOT".into(), dir.path().display().to_string()),
        ("PAVED_SERVICE_TOKENS".into(), tokens::ALL.into()),
    ]);
    for (k, v) in vars {
        env.insert((*k).into(), (*v).into());
    }
    let config = Config::from_lookup(|k| env.get(k).cloned()).expect("test config");
    let state = AppState::build_with_clock(config, clock)
        .await
        .expect("app state");
    paved_server::ingest_configured_locations(&state.core, &state.catalog_ready).await;
    TestApp {
        router: paved_server::router(state.clone()),
        state,
        _dir: dir,
    }
}

/// A caller of the test app's JSON APIs: `app.as_(tokens::ADMIN).put(uri, json)`.
/// `app.with_session(&cookie).call("budget_save", form)` calls a server function
/// as a signed-in person.
pub struct Client<'a> {
    app: &'a TestApp,
    headers: Vec<(header::HeaderName, String)>,
}

impl Client<'_> {
    /// Sends `method uri` with `body` as JSON; answers the status and the
    /// body parsed as JSON (a string when it is not JSON, null when empty).
    pub async fn request(
        &self,
        method: &str,
        uri: &str,
        body: Option<serde_json::Value>,
    ) -> (StatusCode, serde_json::Value) {
        let (status, text) = self.text(method, uri, body).await;
        let value = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        };
        (status, value)
    }

    /// [`Client::request`] answering the body as it came, for tests that
    /// search it for values that must not be there.
    pub async fn text(
        &self,
        method: &str,
        uri: &str,
        body: Option<serde_json::Value>,
    ) -> (StatusCode, String) {
        let response = self.response(method, uri, body).await;
        let status = response.status();
        (status, body_text(response).await)
    }

    /// The whole response, for tests that read its headers.
    pub async fn response(
        &self,
        method: &str,
        uri: &str,
        body: Option<serde_json::Value>,
    ) -> Response<Body> {
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let request = match body {
            Some(b) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => request.body(Body::empty()),
        };
        self.app.send(request.unwrap()).await
    }

    /// Calls the server function `name` with a URL-encoded `form`, as the
    /// browser's forms do.
    pub async fn call(&self, name: &str, form: &str) -> Response<Body> {
        let headers: Vec<(header::HeaderName, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str()))
            .collect();
        self.app.send(server_fn(name, form, &headers)).await
    }

    /// Calls the server function `name` with a JSON body, as islands do.
    pub async fn call_json(&self, name: &str, body: serde_json::Value) -> Response<Body> {
        let mut request = Request::post(format!("/api/{name}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json");
        for (k, v) in &self.headers {
            request = request.header(k, v);
        }
        self.app
            .send(request.body(Body::from(body.to_string())).unwrap())
            .await
    }

    pub async fn get(&self, uri: &str) -> (StatusCode, serde_json::Value) {
        self.request("GET", uri, None).await
    }

    pub async fn post(
        &self,
        uri: &str,
        body: serde_json::Value,
    ) -> (StatusCode, serde_json::Value) {
        self.request("POST", uri, Some(body)).await
    }

    pub async fn put(&self, uri: &str, body: serde_json::Value) -> (StatusCode, serde_json::Value) {
        self.request("PUT", uri, Some(body)).await
    }

    pub async fn patch(
        &self,
        uri: &str,
        body: serde_json::Value,
    ) -> (StatusCode, serde_json::Value) {
        self.request("PATCH", uri, Some(body)).await
    }

    pub async fn delete(&self, uri: &str) -> (StatusCode, serde_json::Value) {
        self.request("DELETE", uri, None).await
    }
}

impl TestApp {
    /// A caller presenting `token` as a bearer token.
    pub fn as_(&self, token: &str) -> Client<'_> {
        Client {
            app: self,
            headers: vec![(header::AUTHORIZATION, format!("Bearer {token}"))],
        }
    }

    /// A caller with the session `cookie` (from [`TestApp::session_for`]),
    /// sending the portal's own origin as a browser does.
    pub fn with_session(&self, cookie: &str) -> Client<'_> {
        Client {
            app: self,
            headers: vec![
                (header::COOKIE, cookie.to_owned()),
                (header::ORIGIN, PUBLIC_URL.to_owned()),
            ],
        }
    }

    /// A caller with no credentials.
    pub fn anonymous(&self) -> Client<'_> {
        Client {
            app: self,
            headers: Vec::new(),
        }
    }

    pub async fn send(&self, request: Request<Body>) -> Response<Body> {
        self.router.clone().oneshot(request).await.unwrap()
    }

    /// Creates the user and a session for them; returns the `Cookie` header value.
    pub async fn session_for(
        &self,
        subject: &str,
        teams: &[(&str, TeamRole)],
        platform: &[PlatformRole],
    ) -> String {
        self.session_signed_in_at(subject, teams, platform, paved_core::now_unix())
            .await
    }

    pub async fn session_signed_in_at(
        &self,
        subject: &str,
        teams: &[(&str, TeamRole)],
        platform: &[PlatformRole],
        signed_in_at: i64,
    ) -> String {
        let user_id = identity::upsert_from_sign_in(
            &self.state.core.db,
            &SignIn {
                subject: subject.into(),
                email: Some(format!("{subject}@example.com")),
                name: Some(subject.into()),
                grants: Grants {
                    platform_roles: platform.iter().copied().collect(),
                    teams: teams.iter().map(|(t, r)| (t.to_string(), *r)).collect(),
                },
            },
        )
        .await
        .unwrap();
        let mut record = Record {
            id: Id::default(),
            data: HashMap::from([(
                USER_KEY.to_string(),
                serde_json::to_value(SessionUser {
                    user_id,
                    signed_in_at,
                    last_seen: signed_in_at,
                })
                .unwrap(),
            )]),
            expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        };
        self.state.sessions.create(&mut record).await.unwrap();
        format!("{COOKIE_NAME}={}", record.id)
    }
}

pub fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

pub fn get_with(uri: &str, name: header::HeaderName, value: &str) -> Request<Body> {
    Request::get(uri)
        .header(name, value)
        .body(Body::empty())
        .unwrap()
}

/// A server-function call as the browser makes it (form-encoded POST).
pub fn server_fn(name: &str, form: &str, headers: &[(header::HeaderName, &str)]) -> Request<Body> {
    let mut builder = Request::post(format!("/api/{name}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json");
    for (k, v) in headers {
        builder = builder.header(k.clone(), *v);
    }
    builder.body(Body::from(form.to_owned())).unwrap()
}

pub async fn body_text(response: Response<Body>) -> String {
    String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap()
}

pub async fn body_json(response: Response<Body>) -> serde_json::Value {
    let text = body_text(response).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

pub fn location(response: &Response<Body>) -> String {
    response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned()
}

pub fn assert_status(response: &Response<Body>, status: StatusCode) {
    assert_eq!(
        response.status(),
        status,
        "headers: {:?}",
        response.headers()
    );
}

/// The real oidc-provider (npm), started on a free loopback port for one test.
pub struct TestIdp {
    pub issuer: String,
    child: Child,
}

impl TestIdp {
    pub fn start(public_url: &str) -> TestIdp {
        let port = free_port();
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let mut child = Command::new("node")
            .arg("end2end/oidc/provider.mjs")
            .current_dir(root)
            .env("OIDC_PORT", port.to_string())
            .env("PAVED_PUBLIC_URL", public_url)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node must be installed (scripts/setup.sh test installs the npm packages)");
        let stdout = child.stdout.take().unwrap();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
        loop {
            match lines.next() {
                Some(Ok(line)) if line.contains("oidc-provider ready") => break,
                Some(Ok(_)) => continue,
                _ => panic!("oidc-provider did not start; run scripts/setup.sh test to install npm packages"),
            }
        }
        // Keep draining its output: a closed pipe would kill the provider at its next log line.
        std::thread::spawn(move || lines.for_each(drop));
        TestIdp {
            issuer: format!("http://127.0.0.1:{port}"),
            child,
        }
    }
}

impl Drop for TestIdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Every log line of a test binary, at TRACE level, so tests can search them for secrets.
pub fn captured_logs() -> std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    use std::sync::{Arc, Mutex, OnceLock};
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer: Arc<Mutex<Vec<u8>>> = Arc::default();
        let sink = buffer.clone();
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || LogWriter(sink.clone()))
            .try_init();
        buffer
    })
    .clone()
}

struct LogWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether `needle` occurs in `haystack` (bytes of a file or a log).
pub fn contains_bytes(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// A JSON API request with a bearer token.
pub fn bearer(
    method: &str,
    uri: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.map(|b| Body::from(b.to_string())).unwrap_or_default())
        .unwrap()
}

impl TestApp {
    /// The SQLite database file and its WAL, as bytes, to search for values that must not be stored.
    pub fn database_bytes(&self) -> Vec<u8> {
        let url = &self.state.core.config.database_url;
        let path = url.trim_start_matches("sqlite://");
        let mut bytes = std::fs::read(path).unwrap();
        for suffix in ["-wal", "-shm"] {
            if let Ok(more) = std::fs::read(format!("{path}{suffix}")) {
                bytes.extend(more);
            }
        }
        bytes
    }
}

/// Checks Prometheus text with `promtool check metrics` (installed by
/// scripts/test.sh; required in CI).
#[allow(dead_code)]
pub fn promtool_check_metrics(text: &str) {
    match std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(mut child) => {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "promtool: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Err(_) if std::env::var("CI").is_err() => {
            eprintln!("promtool is not installed; scripts/test.sh installs it");
        }
        Err(e) => panic!("promtool must run in CI: {e}"),
    }
}
