//! The attack suite: what an attacker with a developer account, or none,
//! would try against the portal's pages and APIs, each with the refusal
//! expected and proof that nothing changed. (Scaffolder attacks live in
//! `scaffolder.rs` beside its fixture, prefixed `attack_`; the page-wide
//! Content-Security-Policy check in `csp.rs`.)

mod common;

use axum::http::{header, StatusCode};
use common::*;
use paved_core::auth::TeamRole;

#[tokio::test]
async fn personal_answers_are_never_cached_and_https_sends_hsts() {
    let app = test_app(&[]).await;
    let cookie = app
        .session_for("dana", &[("payments", TeamRole::Member)], &[])
        .await;
    for path in ["/", "/api/v1/me", "/catalog"] {
        let response = app.send(get_with(path, header::COOKIE, &cookie)).await;
        assert_eq!(
            response
                .headers()
                .get(header::CACHE_CONTROL)
                .map(|v| v.to_str().unwrap()),
            Some("no-store"),
            "{path}"
        );
        assert!(response
            .headers()
            .get(header::STRICT_TRANSPORT_SECURITY)
            .is_none());
    }
    let app = test_app(&[("PAVED_PUBLIC_URL", "https://paved.test")]).await;
    let response = app.send(get("/healthz")).await;
    assert!(response
        .headers()
        .get(header::STRICT_TRANSPORT_SECURITY)
        .is_some_and(|v| v.to_str().unwrap().contains("max-age=")));
}

#[tokio::test]
async fn javascript_links_never_become_links() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("links.yaml");
    std::fs::write(
        &file,
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: evil-links\n  links:\n    - {url: 'javascript:alert(document.cookie)', title: Docs}\nspec: {type: service, lifecycle: production, owner: payments}\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: fine-links\n  links:\n    - {url: 'https://docs.example.com/fine', title: Docs}\nspec: {type: service, lifecycle: production, owner: payments}\n",
    )
    .unwrap();
    let roots = dir.path().display().to_string();
    let locations = format!("file:{}", file.display());
    let app = test_app(&[
        ("PAVED_CATALOG_FILE_ROOTS", roots.as_str()),
        ("PAVED_CATALOG_LOCATIONS", locations.as_str()),
    ])
    .await;
    // Ingestion refuses the entity and tells its owners which field.
    let problem: (Option<String>, String) = sqlx::query_as(
        "SELECT field, message FROM catalog_problems WHERE entity_ref = 'component:default/evil-links'",
    )
    .fetch_one(&app.state.core.db)
    .await
    .unwrap();
    assert_eq!(problem.0.as_deref(), Some("metadata.links[0].url"));
    assert!(problem.1.contains("javascript:"), "{}", problem.1);
    let stored: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM catalog_entities WHERE entity_ref = 'component:default/evil-links'",
    )
    .fetch_one(&app.state.core.db)
    .await
    .unwrap();
    assert_eq!(stored, 0);

    // Data that got in before (or around) ingestion still renders as text.
    sqlx::query("UPDATE catalog_entities SET body = replace(body, 'https://docs.example.com/fine', 'javascript:alert(document.cookie)') WHERE entity_ref = 'component:default/fine-links'")
        .execute(&app.state.core.db)
        .await
        .unwrap();
    let cookie = app
        .session_for("dana", &[("payments", TeamRole::Member)], &[])
        .await;
    let response = app
        .send(get_with(
            "/catalog/component/default/fine-links",
            header::COOKIE,
            &cookie,
        ))
        .await;
    assert_status(&response, StatusCode::OK);
    let html = body_text(response).await;
    assert!(
        html.contains("javascript:alert(document.cookie)"),
        "shown as text"
    );
    assert!(
        !html.to_ascii_lowercase().contains("href=\"javascript:"),
        "never as a link"
    );
    assert!(html.contains("data-testid=\"unsafe-link\""));
}

#[tokio::test]
async fn a_disabled_person_is_locked_out_at_once_and_only_admins_manage_access() {
    use paved_core::auth::{AuthMethod, PlatformRole};
    let app = test_app(&[]).await;
    let dana_cookie = app
        .session_for("dana", &[("payments", TeamRole::Member)], &[])
        .await;
    let admin_cookie = app
        .session_for("ada", &[], &[PlatformRole::PlatformAdmin])
        .await;
    let db = &app.state.core.db;
    let dana_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE subject = 'dana'")
        .fetch_one(db)
        .await
        .unwrap();
    let dana = paved_core::identity::load_principal(db, dana_id, AuthMethod::Session)
        .await
        .unwrap()
        .unwrap();
    let token =
        paved_core::tokens::create(db, &dana, "laptop", None, &app.state.core.config.tokens)
            .await
            .unwrap();
    let token_value = secrecy::ExposeSecret::expose_secret(&token.value).to_owned();
    let me_with_token = || {
        axum::http::Request::get("/api/v1/me")
            .header(header::AUTHORIZATION, format!("Bearer {token_value}"))
            .body(axum::body::Body::empty())
            .unwrap()
    };
    assert_status(&app.send(me_with_token()).await, StatusCode::OK);

    let post = |uri: &str, cookie: &str| {
        axum::http::Request::post(uri)
            .header(header::COOKIE, cookie)
            .header(header::ORIGIN, PUBLIC_URL)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    // A developer cannot see or change anyone's access, not even to lock out an admin.
    for uri in [
        "/api/v1/admin/users",
        &format!("/api/v1/admin/users/{dana_id}/tokens"),
    ] {
        let r = app.send(get_with(uri, header::COOKIE, &dana_cookie)).await;
        assert_status(&r, StatusCode::FORBIDDEN);
    }
    let ada_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE subject = 'ada'")
        .fetch_one(db)
        .await
        .unwrap();
    let r = app
        .send(post(
            &format!("/api/v1/admin/users/{ada_id}/disable"),
            &dana_cookie,
        ))
        .await;
    assert_status(&r, StatusCode::FORBIDDEN);
    let r = app
        .send(post(
            &format!("/api/v1/admin/tokens/{}/revoke", token.id),
            &dana_cookie,
        ))
        .await;
    assert_status(&r, StatusCode::FORBIDDEN);
    // The access page's server functions refuse a developer the same way.
    for (name, form) in [
        ("admin_access", String::new()),
        (
            "admin_set_disabled",
            format!("user_id={ada_id}&disabled=true"),
        ),
        ("admin_revoke_token", format!("id={}", token.id)),
    ] {
        let r = app.with_session(&dana_cookie).call(name, &form).await;
        assert_status(&r, StatusCode::FORBIDDEN);
    }
    assert_status(&app.send(me_with_token()).await, StatusCode::OK);
    let r = app
        .with_session(&admin_cookie)
        .call("admin_access", "")
        .await;
    assert_status(&r, StatusCode::OK);
    let people = body_json(r).await;
    let listed = people
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["subject"] == "dana")
        .unwrap();
    assert_eq!(listed["tokens"][0]["name"], "laptop", "{people}");
    assert!(
        !people.to_string().contains(&token_value),
        "never a token's value"
    );

    // The admin sees dana's token and disables dana: session and token stop at once.
    let r = app
        .send(get_with(
            &format!("/api/v1/admin/users/{dana_id}/tokens"),
            header::COOKIE,
            &admin_cookie,
        ))
        .await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(body_json(r).await.as_array().unwrap().len(), 1);
    let r = app
        .send(post(
            &format!("/api/v1/admin/users/{dana_id}/disable"),
            &admin_cookie,
        ))
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let r = app
        .send(get_with("/api/v1/me", header::COOKIE, &dana_cookie))
        .await;
    assert_status(&r, StatusCode::UNAUTHORIZED);
    assert_status(&app.send(me_with_token()).await, StatusCode::UNAUTHORIZED);

    // Re-enabled, the token works again until an admin revokes it.
    let r = app
        .send(post(
            &format!("/api/v1/admin/users/{dana_id}/enable"),
            &admin_cookie,
        ))
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_status(&app.send(me_with_token()).await, StatusCode::OK);

    // The Access page's server function stops a session as promptly as the
    // API: dana (signed in again, the disable ended the last session) is
    // cached by the request before, and still out on the very next one.
    let dana_cookie = app
        .session_for("dana", &[("payments", TeamRole::Member)], &[])
        .await;
    let me = || get_with("/api/v1/me", header::COOKIE, &dana_cookie);
    assert_status(&app.send(me()).await, StatusCode::OK);
    let r = app
        .with_session(&admin_cookie)
        .call(
            "admin_set_disabled",
            &format!("user_id={dana_id}&disabled=true"),
        )
        .await;
    assert_status(&r, StatusCode::OK);
    assert_status(&app.send(me()).await, StatusCode::UNAUTHORIZED);
    let r = app
        .with_session(&admin_cookie)
        .call(
            "admin_set_disabled",
            &format!("user_id={dana_id}&disabled=false"),
        )
        .await;
    assert_status(&r, StatusCode::OK);
    assert_status(&app.send(me_with_token()).await, StatusCode::OK);
    let r = app
        .send(post(
            &format!("/api/v1/admin/tokens/{}/revoke", token.id),
            &admin_cookie,
        ))
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_status(&app.send(me_with_token()).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn readiness_tells_anonymous_callers_nothing_about_vault() {
    let app = test_app(&[
        ("PAVED_VAULT_ADDR", "http://127.0.0.1:9"),
        ("PAVED_VAULT_TOKEN", "s.unused-in-this-test"),
    ])
    .await;
    // The health poller has tried the closed port at least once.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let r = app.send(get("/readyz")).await;
    let body = body_text(r).await;
    assert!(!body.contains("127.0.0.1:9"), "{body}");
    assert!(body.contains("\"vault\""), "{body}");
    let cookie = app
        .session_for("dana", &[("payments", TeamRole::Member)], &[])
        .await;
    let body = body_text(app.send(get_with("/readyz", header::COOKIE, &cookie)).await).await;
    assert!(
        body.contains("\"detail\""),
        "signed-in callers see the detail: {body}"
    );
}

#[tokio::test]
async fn nobody_writes_into_another_persons_wizard_run() {
    let app = test_app(&[]).await;
    let dana = app
        .session_for("dana", &[("payments", TeamRole::Member)], &[])
        .await;
    let sid = app
        .session_for("sid", &[("search", TeamRole::Member)], &[])
        .await;
    let event =
        |event: &str| format!("session=run-1&template_ref=template:default/x&event={event}");
    assert_status(
        &app.with_session(&dana)
            .call("scaffold_wizard_event", &event("started"))
            .await,
        StatusCode::OK,
    );
    // Sid cannot mark Dana's run abandoned (the funnel would lie).
    assert_status(
        &app.with_session(&sid)
            .call("scaffold_wizard_event", &event("abandoned"))
            .await,
        StatusCode::FORBIDDEN,
    );
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT actor, event FROM wizard_events ORDER BY id")
            .fetch_all(&app.state.core.db)
            .await
            .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_status(
        &app.with_session(&dana)
            .call("scaffold_wizard_event", &event("page"))
            .await,
        StatusCode::OK,
    );
}

#[tokio::test]
async fn behind_https_the_session_cookie_is_host_only() {
    let app = test_app(&[("PAVED_PUBLIC_URL", "https://paved.test")]).await;
    let cookie = app
        .session_for("dana", &[("payments", TeamRole::Member)], &[])
        .await;
    let id = cookie.split_once('=').unwrap().1;
    // The portal reads the session only under the `__Host-` name.
    let host = format!("{}={id}", paved_server::session::SECURE_COOKIE_NAME);
    let r = app
        .send(get_with("/api/v1/me", header::COOKIE, &host))
        .await;
    assert_status(&r, StatusCode::OK);
    let r = app
        .send(get_with("/api/v1/me", header::COOKIE, &cookie))
        .await;
    assert_status(&r, StatusCode::UNAUTHORIZED);
}
