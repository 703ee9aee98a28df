//! Replicas' caches follow each other's changes: two Paved processes (two
//! app states over one database, their sessions on PostgreSQL) hear,
//! through PostgreSQL's LISTEN/NOTIFY, that a person was disabled, a
//! gateway key revoked, a price changed, a policy exception granted or
//! revoked, or a session ended, and stop
//! serving what they had cached, long before their caches' own time to
//! live would have.

mod common;

use std::time::Duration;

use axum::http::{header, StatusCode};
use common::{get_with, test_app, tokens, TestApp};
use paved_core::auth::TeamRole;
use paved_core::changes::Bus;
use paved_core::db::postgres_testing;
use paved_server::session_cache::{self, SessionDb};
use serde_json::json;

/// Two replicas sharing one database, each listening on `url`'s bus.
async fn replicas(url: &str) -> (TestApp, TestApp) {
    let shared = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/fleet.db", shared.path().display());
    let mut apps = vec![];
    for _ in 0..2 {
        let policies = format!("{}/../policies", env!("CARGO_MANIFEST_DIR"));
        let mut app = test_app(&[
            ("PAVED_DATABASE_URL", &db),
            ("PAVED_POLICY_DIRS", &policies),
        ])
        .await;
        let pool = paved_core::db::connect_postgres(url, 2).await.unwrap();
        app.state.core.bus = Bus::listen(pool.clone()).await.unwrap();
        tokio::spawn(paved_core::changes::follow(app.state.core.clone()));
        app.state.session_db = SessionDb::postgres(pool, app.state.core.bus.clone());
        app.state.sessions = session_cache::cached(app.state.session_db.clone());
        app.router = paved_server::router(app.state.clone());
        apps.push(app);
    }
    // The shared database outlives the apps' own folders.
    std::mem::forget(shared);
    let b = apps.pop().unwrap();
    (apps.pop().unwrap(), b)
}

/// Polls `check` every 20 ms until it holds; how long that took.
async fn within<F, Fut>(limit: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_replica_reaches_the_others_caches() {
    let Some(url) = postgres_testing::fresh_database("fleet_caches").await else {
        return;
    };
    let (a, b) = replicas(&url).await;

    // A person signed in, served by replica B (their principal now cached
    // there for 5 s), is disabled by an admin on replica A.
    let cookie = b
        .session_for("dana", &[("payments", TeamRole::Member)], &[])
        .await;
    let me = || get_with("/api/v1/me", header::COOKIE, &cookie);
    assert_eq!(b.send(me()).await.status(), StatusCode::OK);
    let dana: i64 = sqlx::query_scalar("SELECT id FROM users WHERE subject = 'dana'")
        .fetch_one(&a.state.core.db)
        .await
        .unwrap();
    let (status, _) = a
        .as_(tokens::ADMIN)
        .post(&format!("/api/v1/admin/users/{dana}/disable"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let took = within(Duration::from_secs(4), || async {
        b.send(me()).await.status() == StatusCode::UNAUTHORIZED
    })
    .await;
    println!("a disabled person refused by the other replica after {took:?}");
    assert!(
        took.is_some(),
        "replica B refuses a person disabled on A before its 5 s cache would expire"
    );

    // A gateway key checked on B (cached there), revoked on A. B's cache is
    // asked at one fixed instant, so its 1 s time to live never runs out:
    // only the notification can drop the key.
    let (status, created) = a
        .as_(tokens::PAYMENTS_LEAD)
        .post(
            "/api/budgets/v1/teams/payments/keys",
            json!({"name": "ci", "workspace_id": null}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_i64().unwrap();
    let cache = &b.state.core.budgets.keys;
    let db = &b.state.core.db;
    assert!(cache.authenticate(db, &key, 0).await.unwrap().is_some());
    let (status, body) = a
        .as_(tokens::PAYMENTS_LEAD)
        .delete(&format!("/api/budgets/v1/teams/payments/keys/{id}"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let took = within(Duration::from_secs(10), || async {
        cache.authenticate(db, &key, 0).await.unwrap().is_none()
    })
    .await;
    println!("a revoked key refused by the other replica after {took:?}");
    assert!(took.is_some(), "replica B drops a key revoked on A");

    // A price set on A is in force on B.
    let (status, body) = a
        .as_(tokens::ADMIN)
        .put(
            "/api/budgets/v1/prices/fleet/fleet-model",
            json!({"input_usd_per_mtok": "1.5", "output_usd_per_mtok": "3"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let prices = &b.state.core.budgets.prices;
    let took = within(Duration::from_secs(10), || async {
        prices.get("fleet", "fleet-model").is_some()
    })
    .await;
    assert!(took.is_some(), "replica B reads a price set on A");
    let (status, _) = a
        .as_(tokens::ADMIN)
        .delete("/api/budgets/v1/prices/fleet/fleet-model")
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let took = within(Duration::from_secs(10), || async {
        prices.get("fleet", "fleet-model").is_none()
    })
    .await;
    assert!(took.is_some(), "replica B stops using a price removed on A");
}

/// A session started on one replica works on the other; signed out on the
/// first, it is refused by the second, which had it cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_shared_and_a_sign_out_reaches_every_replica() {
    let Some(url) = postgres_testing::fresh_database("fleet_sessions").await else {
        return;
    };
    let (a, b) = replicas(&url).await;
    let cookie = a
        .session_for("dana", &[("payments", TeamRole::Member)], &[])
        .await;
    let me = || get_with("/api/v1/me", header::COOKIE, &cookie);
    assert_eq!(a.send(me()).await.status(), StatusCode::OK);
    let r = b.send(me()).await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "a session started on A is valid on B"
    );
    assert_eq!(common::body_json(r).await["subject"], "dana");
    // Now cached on B. Signed out on A:
    let logout = axum::http::Request::post("/auth/logout")
        .header(header::COOKIE, &cookie)
        .header(header::ORIGIN, common::PUBLIC_URL)
        .body(axum::body::Body::empty())
        .unwrap();
    assert!(a.send(logout).await.status().is_redirection());
    assert_eq!(a.send(me()).await.status(), StatusCode::UNAUTHORIZED);
    let took = within(Duration::from_secs(10), || async {
        b.send(me()).await.status() == StatusCode::UNAUTHORIZED
    })
    .await;
    println!("a signed-out session refused by the other replica after {took:?}");
    assert!(
        took.is_some(),
        "replica B refuses a session signed out on A"
    );
    let rows: i64 = {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query_scalar("SELECT COUNT(*) FROM tower_sessions.session")
            .fetch_one(&mut conn)
            .await
            .unwrap()
    };
    assert_eq!(rows, 0, "the session is gone from the shared table");
}

/// What the admission webhook of `app` says about `review`: allowed, and the
/// message when denied.
async fn admit(app: &TestApp, review: &serde_json::Value) -> (bool, String) {
    let request = axum::http::Request::post("/api/admission/v1/validate")
        .header(header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from(review.to_string()))
        .unwrap();
    let answer = common::body_json(app.send(request).await).await;
    (
        answer["response"]["allowed"] == true,
        answer["response"]["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// A policy exception granted on one replica applies at the other's
/// admission webhook, and stops applying there once revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_exception_granted_on_one_replica_applies_on_the_other() {
    let Some(url) = postgres_testing::fresh_database("fleet_policy").await else {
        return;
    };
    let (a, b) = replicas(&url).await;
    a.session_for("pat", &[("payments", TeamRole::Lead)], &[])
        .await;
    let path = format!(
        "{}/tests/fixtures/admission/pod-create-denied.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let denied: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(admit(&b, &denied).await.1.contains("pinned-images"));
    let (status, created) = a
        .as_(tokens::ADMIN)
        .post(
            "/api/policy/v1/exceptions",
            json!({"policy": "pinned-images", "namespace": "payments", "object_name": "chat-*",
                   "team": "payments", "reason": "Vendor image only published as latest until March", "days": 30}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let took = within(Duration::from_secs(10), || async {
        !admit(&b, &denied).await.1.contains("pinned-images")
    })
    .await;
    println!("an exception granted on A applied on B after {took:?}");
    assert!(
        took.is_some(),
        "replica B applies an exception granted on A"
    );
    let id = created["id"].as_i64().unwrap();
    let (status, _) = a
        .as_(tokens::ADMIN)
        .post(&format!("/api/policy/v1/exceptions/{id}/revoke"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let took = within(Duration::from_secs(10), || async {
        admit(&b, &denied).await.1.contains("pinned-images")
    })
    .await;
    assert!(
        took.is_some(),
        "replica B stops applying an exception revoked on A"
    );
}

/// A task's live log served by one replica shows the lines another replica
/// (the one running the task) logs, without waiting for the stream's
/// 15-second re-check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_log_streamed_by_one_replica_shows_the_lines_another_logs() {
    use http_body_util::BodyExt;
    let Some(url) = postgres_testing::fresh_database("fleet_tasks").await else {
        return;
    };
    let (a, b) = replicas(&url).await;
    let cookie = b
        .session_for("dana", &[("payments", TeamRole::Member)], &[])
        .await;
    let task_id = "6f1c2a52-3d4e-4f60-8a71-92b3c4d5e6f7";
    paved_core::scaffold::tasks::create(
        &a.state.core.db,
        paved_core::scaffold::tasks::NewTask {
            id: task_id,
            template_ref: "template:default/service",
            template_json: "{}",
            template_dir: None,
            values_json: "{}",
            secret_names: "[]",
            created_by: "user:dana",
            principal_json: "{}",
            user_ref: Some("user:default/dana"),
            owner_team: Some("payments"),
            wizard_session: None,
            time_saved_minutes: None,
            steps: vec![("publish".into(), "Publish".into(), "publish:git".into())],
        },
    )
    .await
    .unwrap();
    // Replica B streams the task's log; nothing is logged yet, so the stream waits.
    let response = b
        .send(get_with(
            &format!("/api/scaffolder/v2/tasks/{task_id}/eventstream"),
            header::COOKIE,
            &cookie,
        ))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        let mut body = response.into_body();
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(data) = frame.data_ref() {
                let _ = seen_tx.send(String::from_utf8_lossy(data).into_owned());
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Replica A, running the task, logs a line.
    let log = paved_core::scaffold::log::TaskLog::Stored {
        pool: a.state.core.db.clone(),
        task_id: task_id.to_owned(),
        masker: Default::default(),
        notify: std::sync::Arc::new(tokio::sync::watch::channel(0).0),
        bus: a.state.core.bus.clone(),
    };
    let start = std::time::Instant::now();
    log.info(Some("publish"), "pushed to the repository").await;
    let arrived = tokio::time::timeout(Duration::from_secs(8), async {
        while let Some(text) = seen.recv().await {
            if text.contains("pushed to the repository") {
                return true;
            }
        }
        false
    })
    .await;
    println!(
        "a line logged on A reached B's stream after {:?}",
        start.elapsed()
    );
    assert_eq!(
        arrived,
        Ok(true),
        "B's stream shows A's line well before its 15 s re-check"
    );
}
