//! Sign-in against the real oidc-provider (npm), over real HTTP: session id
//! cycling, group mapping, and the bad cases (wrong client secret, tampered nonce).

mod common;

use std::str::FromStr;
use std::sync::Arc;

use common::{free_port, TestIdp};
use paved_core::config::Config;
use paved_server::session::{COOKIE_NAME, PENDING_LOGIN_KEY};
use paved_server::AppState;
use reqwest::cookie::{CookieStore, Jar};
use reqwest::redirect::Policy;
use tower_sessions::session::Id;
use tower_sessions::SessionStore;

struct Running {
    url: String,
    state: AppState,
    idp: TestIdp,
    client: reqwest::Client,
    jar: Arc<Jar>,
    _dir: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn start(client_secret: &str) -> Running {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("paved_server=debug")
        .try_init();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let idp = TestIdp::start(&url);
    let dir = tempfile::tempdir().unwrap();
    let vars = [
        ("PAVED_BIND", format!("127.0.0.1:{port}")),
        ("PAVED_PUBLIC_URL", url.clone()),
        (
            "PAVED_DATABASE_URL",
            format!("sqlite://{}/paved.db", dir.path().display()),
        ),
        ("PAVED_OIDC_ISSUER", idp.issuer.clone()),
        ("PAVED_OIDC_CLIENT_ID", "paved".into()),
        ("PAVED_OIDC_CLIENT_SECRET", client_secret.into()),
    ];
    let config =
        Config::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
            .unwrap();
    let state = AppState::build(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let router = paved_server::router(state.clone());
    let server = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    let jar = Arc::new(Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(Policy::none())
        .build()
        .unwrap();
    Running {
        url,
        state,
        idp,
        client,
        jar,
        _dir: dir,
        server,
    }
}

impl Running {
    fn session_cookie(&self) -> Option<String> {
        let header = self.jar.cookies(&self.url.parse().unwrap())?;
        header.to_str().unwrap().split("; ").find_map(|c| {
            c.strip_prefix(&format!("{COOKIE_NAME}="))
                .map(str::to_owned)
        })
    }

    /// Follows the flow through the provider's form and returns Paved's callback URL, uncalled.
    async fn until_callback(&self, username: &str, password: &str) -> String {
        let mut location = self.location_of(&format!("{}/auth/login", self.url)).await;
        for _ in 0..10 {
            if location.starts_with(&format!("{}/auth/callback", self.url)) {
                return location;
            }
            let response = self.client.get(&location).send().await.unwrap();
            let base = response.url().clone();
            let next = if response.status().is_redirection() {
                response.headers()["location"].to_str().unwrap().to_owned()
            } else {
                let html = response.text().await.unwrap();
                let action = html
                    .split("action=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap()
                    .to_owned();
                let posted = self
                    .client
                    .post(base.join(&action).unwrap())
                    .form(&[("username", username), ("password", password)])
                    .send()
                    .await
                    .unwrap();
                assert!(
                    posted.status().is_redirection(),
                    "sign-in form refused: {}",
                    posted.status()
                );
                posted.headers()["location"].to_str().unwrap().to_owned()
            };
            location = base.join(&next).unwrap().to_string();
        }
        panic!("too many redirects");
    }

    async fn location_of(&self, url: &str) -> String {
        let response = self.client.get(url).send().await.unwrap();
        assert!(
            response.status().is_redirection(),
            "{url} answered {}",
            response.status()
        );
        response.headers()["location"].to_str().unwrap().to_owned()
    }

    async fn me_status(&self) -> u16 {
        self.client
            .get(format!("{}/api/v1/me", self.url))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

#[tokio::test]
async fn sign_in_cycles_the_session_id_and_maps_groups_to_teams() {
    let app = start("paved-demo-secret").await;
    assert!(app.idp.issuer.starts_with("http://127.0.0.1:"));
    let callback = app.until_callback("lee", "lee-demo").await;
    let before = app
        .session_cookie()
        .expect("sign-in in progress is kept in a session");
    assert_eq!(app.location_of(&callback).await, "/");
    let after = app.session_cookie().expect("signed-in session");
    assert_ne!(before, after, "the session id must change at sign-in");

    let me: serde_json::Value = app
        .client
        .get(format!("{}/api/v1/me", app.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["subject"], "lee");
    assert_eq!(me["display_name"], "Lee Lead");
    assert_eq!(me["email"], "lee@paved.demo");
    assert_eq!(
        me["teams"],
        serde_json::json!([{ "team": "payments", "role": "lead" }])
    );
}

#[tokio::test]
async fn a_wrong_client_secret_gives_a_clear_error_and_no_session() {
    let app = start("not-the-secret").await;
    let callback = app.until_callback("dana", "dana-demo").await;
    assert_eq!(
        app.location_of(&callback).await,
        "/signin?error=client_rejected"
    );
    assert_eq!(app.me_status().await, 401);
}

#[tokio::test]
async fn a_tampered_nonce_is_rejected_and_leaves_no_session() {
    let app = start("paved-demo-secret").await;
    let callback = app.until_callback("dana", "dana-demo").await;

    // Change the nonce this session expects, as if the ID token were replayed from another sign-in.
    let id = Id::from_str(&app.session_cookie().unwrap()).unwrap();
    let mut record = app.state.sessions.load(&id).await.unwrap().unwrap();
    record.data.get_mut(PENDING_LOGIN_KEY).unwrap()["nonce"] =
        serde_json::json!("some-other-nonce");
    app.state.sessions.save(&record).await.unwrap();

    assert_eq!(
        app.location_of(&callback).await,
        "/signin?error=invalid_id_token"
    );
    assert_eq!(app.me_status().await, 401);
    assert!(
        app.state.sessions.load(&id).await.unwrap().is_none(),
        "the failed sign-in's session is deleted"
    );
}

/// Attack: an anonymous client floods `/auth/login`. Each start writes a
/// session row, so starts are rate limited per client, and an unfinished
/// sign-in's session lives ten minutes, not a signed-in session's hours.
#[tokio::test]
async fn attack_sign_in_starts_are_rate_limited_and_short_lived() {
    let running = start("paved-demo-secret").await;
    // One real sign-in first: its session lives as long as the idle timeout.
    let callback = running.until_callback("dana", "dana-demo").await;
    assert_eq!(running.location_of(&callback).await, "/");
    let now = paved_core::now_unix();
    let signed_in: i64 = sqlx::query_scalar(
        "SELECT MAX(CAST(strftime('%s', expiry_date) AS INTEGER)) FROM tower_sessions",
    )
    .fetch_one(&running.state.core.db)
    .await
    .unwrap();
    assert!(
        signed_in > now + 3600,
        "a signed-in session lives its idle timeout"
    );

    let mut redirected = 1;
    let mut limited = 0;
    for _ in 0..(running.state.core.config.sign_in_starts_per_minute + 10) {
        // A fresh client each time, as a flood would.
        let client = reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .unwrap();
        let response = client
            .get(format!("{}/auth/login", running.url))
            .send()
            .await
            .unwrap();
        match response.status().as_u16() {
            302 | 303 | 307 => redirected += 1,
            429 => {
                assert!(response.headers().contains_key("retry-after"));
                limited += 1
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(
        redirected,
        running.state.core.config.sign_in_starts_per_minute
    );
    assert_eq!(limited, 11);
    let pending: Vec<i64> =
        sqlx::query_scalar("SELECT e FROM (SELECT CAST(strftime('%s', expiry_date) AS INTEGER) AS e FROM tower_sessions) WHERE e < ?1")
            .bind(signed_in)
            .fetch_all(&running.state.core.db)
            .await
            .unwrap();
    assert_eq!(
        pending.len() as u32,
        running.state.core.config.sign_in_starts_per_minute - 1
    );
    let now = paved_core::now_unix();
    for expiry in pending {
        assert!(
            expiry <= now + paved_server::oidc::PENDING_LOGIN_MINUTES * 60 + 5,
            "a pending sign-in lives {}s",
            expiry - now
        );
    }
}
