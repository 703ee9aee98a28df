//! HTTP tests over the real router: authentication, the sign-in gate,
//! authorization, CSRF, tokens, sessions and health.

mod common;

use axum::http::{header, StatusCode};
use common::*;
use paved_core::auth::{PlatformRole, TeamRole};

#[tokio::test]
async fn anonymous_api_and_server_function_calls_get_401() {
    let app = test_app(&[]).await;
    let response = app.send(get("/api/v1/me")).await;
    assert_status(&response, StatusCode::UNAUTHORIZED);
    let body = body_json(response).await;
    assert_eq!(body["response"]["statusCode"], 401);
    assert_eq!(body["error"]["name"], "AuthenticationError");

    let response = app
        .send(server_fn(
            "current_user",
            "",
            &[(header::ORIGIN, PUBLIC_URL)],
        ))
        .await;
    assert_status(&response, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn anonymous_pages_redirect_to_sign_in_keeping_the_destination() {
    let app = test_app(&[]).await;
    let response = app.send(get("/teams/payments?tab=members")).await;
    assert_status(&response, StatusCode::SEE_OTHER);
    assert_eq!(
        location(&response),
        "/signin?next=%2Fteams%2Fpayments%3Ftab%3Dmembers"
    );

    let response = app.send(get("/")).await;
    assert_eq!(location(&response), "/signin");
}

#[tokio::test]
async fn public_pages_and_health_need_no_sign_in() {
    let app = test_app(&[]).await;
    assert_status(&app.send(get("/healthz")).await, StatusCode::OK);
    let ready = app.send(get("/readyz")).await;
    assert_status(&ready, StatusCode::OK);
    assert_eq!(body_json(ready).await["checks"]["database"], "ok");
    let signin = app.send(get("/signin")).await;
    assert_status(&signin, StatusCode::OK);
    assert_eq!(signin.headers()[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(signin.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert!(body_text(signin)
        .await
        .contains("Sign in with your company account"));
}

#[tokio::test]
async fn a_signed_in_developer_gets_their_identity() {
    let app = test_app(&[]).await;
    let cookie = app
        .session_for("dana", &[("payments", TeamRole::Member)], &[])
        .await;
    let response = app
        .send(get_with("/api/v1/me", header::COOKIE, &cookie))
        .await;
    assert_status(&response, StatusCode::OK);
    let me = body_json(response).await;
    assert_eq!(me["subject"], "dana");
    assert_eq!(me["auth_method"], "session");
    assert_eq!(
        me["teams"],
        serde_json::json!([{ "team": "payments", "role": "member" }])
    );
    assert_eq!(me["platform_roles"], serde_json::json!([]));
}

#[tokio::test]
async fn a_wrong_role_gets_403_from_server_functions_and_pages() {
    let app = test_app(&[]).await;
    let dev = app
        .session_for("dana", &[("payments", TeamRole::Member)], &[])
        .await;
    let admin = app
        .session_for("ada", &[], &[PlatformRole::PlatformAdmin])
        .await;

    let refused = app.with_session(&dev).call("audit_log", "offset=0").await;
    assert_status(&refused, StatusCode::FORBIDDEN);
    assert!(body_text(refused)
        .await
        .contains("only open to platform admins"));
    assert_status(
        &app.with_session(&admin).call("audit_log", "offset=0").await,
        StatusCode::OK,
    );

    let page = app
        .send(get_with("/admin/audit", header::COOKIE, &dev))
        .await;
    assert_status(&page, StatusCode::FORBIDDEN);
    assert!(body_text(page)
        .await
        .contains("The audit log is only open to platform admins."));

    let as_dev = app.with_session(&dev);
    assert_status(
        &as_dev.call("team_detail", "name=search").await,
        StatusCode::FORBIDDEN,
    );
    assert_status(
        &as_dev.call("team_detail", "name=payments").await,
        StatusCode::OK,
    );
}

#[tokio::test]
async fn cross_origin_browser_writes_are_refused_and_change_nothing() {
    let app = test_app(&[]).await;
    let cookie = app
        .session_for("dana", &[("payments", TeamRole::Member)], &[])
        .await;

    for origin in [Some("http://evil.example"), None] {
        let mut headers = vec![(header::COOKIE, cookie.as_str())];
        if let Some(o) = origin {
            headers.push((header::ORIGIN, o));
        }
        let response = app
            .send(server_fn("create_token", "name=stolen", &headers))
            .await;
        assert_status(&response, StatusCode::FORBIDDEN);
        assert!(body_text(response)
            .await
            .contains("Cross-origin request refused"));
    }
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens")
        .fetch_one(&app.state.core.db)
        .await
        .unwrap();
    assert_eq!(count, 0);

    // A Referer from our own origin is enough when Origin is absent.
    let response = app
        .send(server_fn(
            "create_token",
            "name=mine",
            &[
                (header::COOKIE, &cookie),
                (header::REFERER, &format!("{PUBLIC_URL}/profile")),
            ],
        ))
        .await;
    assert_status(&response, StatusCode::OK);
}

#[tokio::test]
async fn service_tokens_are_accepted_with_their_role() {
    let app = test_app(&[("PAVED_SERVICE_TOKENS", "ci:ci-token-0123456789abcdef:platform_admin, bot:bot-token-0123456789abcdef:developer:payments")]).await;
    let me = app
        .send(get_with(
            "/api/v1/me",
            header::AUTHORIZATION,
            "Bearer ci-token-0123456789abcdef",
        ))
        .await;
    assert_status(&me, StatusCode::OK);
    let me = body_json(me).await;
    assert_eq!(me["auth_method"], "service_token");
    assert_eq!(me["platform_roles"], serde_json::json!(["platform_admin"]));

    // Bearer calls carry no ambient credentials, so no Origin is needed.
    let ci = app.as_("ci-token-0123456789abcdef");
    assert_status(&ci.call("audit_log", "offset=0").await, StatusCode::OK);
    let bot = app.as_("bot-token-0123456789abcdef");
    assert_status(
        &bot.call("audit_log", "offset=0").await,
        StatusCode::FORBIDDEN,
    );
    // Service tokens are not people: they cannot mint personal tokens.
    assert_status(
        &ci.call("create_token", "name=x").await,
        StatusCode::FORBIDDEN,
    );
}

#[tokio::test]
async fn personal_tokens_work_until_revoked_and_bad_tokens_are_refused() {
    let app = test_app(&[]).await;
    let cookie = app
        .session_for("lee", &[("payments", TeamRole::Lead)], &[])
        .await;
    let created = app
        .with_session(&cookie)
        .call("create_token", "name=laptop")
        .await;
    assert_status(&created, StatusCode::OK);
    let created = body_json(created).await;
    let token = created["value"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {token}");

    let me = app
        .send(get_with("/api/v1/me", header::AUTHORIZATION, &bearer))
        .await;
    assert_status(&me, StatusCode::OK);
    assert_eq!(body_json(me).await["auth_method"], "personal_token");

    // The list never includes the value, and records the use.
    let list = app.with_session(&cookie).call("list_tokens", "").await;
    let list_text = body_text(list).await;
    assert!(!list_text.contains(&token));
    assert!(!list_text.contains("\"last_used_at\":null"));

    let id = created["id"].to_string();
    let revoke = app
        .with_session(&cookie)
        .call("revoke_token", &format!("id={id}"))
        .await;
    assert_status(&revoke, StatusCode::OK);
    let refused = app
        .send(get_with("/api/v1/me", header::AUTHORIZATION, &bearer))
        .await;
    assert_status(&refused, StatusCode::UNAUTHORIZED);

    for bad in [
        "Bearer pvd_not-a-real-token",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "token",
    ] {
        let response = app
            .send(get_with("/api/v1/me", header::AUTHORIZATION, bad))
            .await;
        assert_status(&response, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn sessions_end_at_the_absolute_lifetime() {
    let app = test_app(&[("PAVED_SESSION_MAX_HOURS", "1")]).await;
    let two_hours_ago = paved_core::now_unix() - 7200;
    let cookie = app
        .session_signed_in_at(
            "dana",
            &[("payments", TeamRole::Member)],
            &[],
            two_hours_ago,
        )
        .await;
    let response = app
        .send(get_with("/api/v1/me", header::COOKIE, &cookie))
        .await;
    assert_status(&response, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_unknown_session_cookie_is_anonymous() {
    let app = test_app(&[]).await;
    let response = app
        .send(get_with(
            "/api/v1/me",
            header::COOKIE,
            "paved_session=AAAAAAAAAAAAAAAAAAAAAA",
        ))
        .await;
    assert_status(&response, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_unreachable_issuer_gives_a_clear_message_not_a_panic() {
    let app = test_app(&[]).await;
    let response = app.send(get("/auth/login")).await;
    assert_status(&response, StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/signin?error=idp_unreachable");
    let page = app.send(get("/signin?error=idp_unreachable")).await;
    assert!(body_text(page).await.contains("could not be reached"));
}

#[tokio::test]
async fn a_callback_without_a_sign_in_in_progress_is_refused() {
    let app = test_app(&[]).await;
    let response = app.send(get("/auth/callback?code=abc&state=forged")).await;
    assert_eq!(location(&response), "/signin?error=state_mismatch");
    assert!(response.headers().get(header::SET_COOKIE).is_none());
}

#[tokio::test]
async fn sign_out_needs_our_origin_and_clears_the_session() {
    let app = test_app(&[]).await;
    let cookie = app
        .session_for("dana", &[("payments", TeamRole::Member)], &[])
        .await;
    let post = |origin: &str| {
        axum::http::Request::post("/auth/logout")
            .header(header::COOKIE, &cookie)
            .header(header::ORIGIN, origin)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    assert_status(
        &app.send(post("http://evil.example")).await,
        StatusCode::FORBIDDEN,
    );
    assert_status(
        &app.send(get_with("/api/v1/me", header::COOKIE, &cookie))
            .await,
        StatusCode::OK,
    );

    let response = app.send(post(PUBLIC_URL)).await;
    assert_status(&response, StatusCode::SEE_OTHER);
    // The issuer is unreachable here, so only the local session ends.
    assert_eq!(location(&response), "/signin?signed_out=1");
    assert_status(
        &app.send(get_with("/api/v1/me", header::COOKIE, &cookie))
            .await,
        StatusCode::UNAUTHORIZED,
    );
}

#[tokio::test]
async fn activity_refreshes_the_idle_expiry() {
    use std::str::FromStr;
    use tower_sessions::session::Id;
    use tower_sessions::SessionStore;

    let app = test_app(&[]).await;
    let ten_minutes_ago = paved_core::now_unix() - 600;
    let cookie = app
        .session_signed_in_at(
            "dana",
            &[("payments", TeamRole::Member)],
            &[],
            ten_minutes_ago,
        )
        .await;
    let id = Id::from_str(cookie.split_once('=').unwrap().1).unwrap();
    let before = app.state.sessions.load(&id).await.unwrap().unwrap();

    assert_status(
        &app.send(get_with("/api/v1/me", header::COOKIE, &cookie))
            .await,
        StatusCode::OK,
    );
    let after = app.state.sessions.load(&id).await.unwrap().unwrap();
    let last_seen = after.data["user"]["last_seen"].as_i64().unwrap();
    assert!(
        last_seen >= paved_core::now_unix() - 5,
        "last_seen refreshed"
    );
    assert_eq!(
        after.data["user"]["signed_in_at"], ten_minutes_ago,
        "the absolute lifetime still counts from sign-in"
    );
    assert!(after.expiry_date >= before.expiry_date);
}

/// The browser bundle's files come with the compressed copy the browser
/// accepts, and always with their own status: many chunk requests beside
/// pages that answer 403 (the page a developer gets for the audit log) must
/// all be 200, as a page loads hundreds of chunks while others render.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundle_files_are_served_compressed_and_never_take_another_response_status() {
    let site = tempfile::tempdir().unwrap();
    let pkg = site.path().join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    let wasm = b"\0asm\x01\0\0\0 chunk".to_vec();
    std::fs::write(pkg.join("chunk_7.wasm"), &wasm).unwrap();
    std::fs::write(pkg.join("chunk_7.wasm.br"), b"brotli copy").unwrap();
    std::fs::write(pkg.join("chunk_7.wasm.gz"), b"gzip copy").unwrap();
    let app = test_app(&[("PAVED_SITE_ROOT", site.path().to_str().unwrap())]).await;

    let br = app
        .send(get_with(
            "/pkg/chunk_7.wasm",
            header::ACCEPT_ENCODING,
            "gzip, br",
        ))
        .await;
    assert_status(&br, StatusCode::OK);
    assert_eq!(br.headers()[header::CONTENT_ENCODING], "br");
    assert_eq!(br.headers()[header::CONTENT_TYPE], "application/wasm");
    assert_eq!(body_text(br).await, "brotli copy");
    let plain = app.send(get("/pkg/chunk_7.wasm")).await;
    assert_status(&plain, StatusCode::OK);
    assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
    assert_status(
        &app.send(get("/pkg/chunk_8.wasm")).await,
        StatusCode::NOT_FOUND,
    );

    let dev = app
        .session_for("dana", &[("payments", TeamRole::Member)], &[])
        .await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..240 {
        let router = app.router.clone();
        let dev = dev.clone();
        tasks.spawn(async move {
            use tower::ServiceExt;
            let (uri, expected) = if i % 12 == 0 {
                ("/admin/audit", StatusCode::FORBIDDEN)
            } else {
                ("/pkg/chunk_7.wasm", StatusCode::OK)
            };
            let response = router
                .oneshot(get_with(uri, header::COOKIE, &dev))
                .await
                .unwrap();
            (uri, expected, response.status())
        });
    }
    while let Some(done) = tasks.join_next().await {
        let (uri, expected, status) = done.unwrap();
        assert_eq!(status, expected, "{uri}");
    }
}
