//! The attack suite: what an attacker with a developer account, or none,
//! would try against the portal's pages and APIs, each with the refusal
//! expected and proof that nothing changed. (Scaffolder attacks live in
//! `scaffolder.rs` beside its fixture, prefixed `attack_`.)

mod common;

use axum::http::{header, StatusCode};
use common::*;
use paved_core::auth::TeamRole;

/// Every inline `<script>` in `html` carries `nonce`, and the CSP names it.
fn assert_csp(html: &str, csp: &str) {
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("no nonce in {csp}"));
    assert!(nonce.len() >= 16, "{nonce}");
    for directive in [
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp} lacks {directive}");
    }
    let scripts = csp
        .split(';')
        .find(|d| d.trim_start().starts_with("script-src"))
        .unwrap();
    assert!(!scripts.contains("unsafe-inline"), "{scripts}");
    let mut count = 0;
    for (i, _) in html.match_indices("<script") {
        let tag = &html[i..i + html[i..].find('>').unwrap()];
        if tag.contains("src=") {
            continue;
        }
        count += 1;
        assert!(
            tag.contains(&format!("nonce=\"{nonce}\"")),
            "an inline script without this response's nonce: {tag}"
        );
    }
    assert!(count >= 1, "the theme bootstrap is inline");
}

#[tokio::test]
async fn every_page_sends_a_csp_whose_nonce_is_on_each_inline_script() {
    let app = test_app(&[]).await;
    let cookie = app
        .session_for("dana", &[("payments", TeamRole::Member)], &[])
        .await;
    let mut nonces = Vec::new();
    for (path, signed_in) in [
        ("/signin", false),
        ("/", true),
        ("/catalog", true),
        ("/create", true),
        ("/profile", true),
        ("/no/such/page", true),
    ] {
        let request = if signed_in {
            get_with(path, header::COOKIE, &cookie)
        } else {
            get(path)
        };
        let response = app.send(request).await;
        let csp = response
            .headers()
            .get(header::CONTENT_SECURITY_POLICY)
            .unwrap_or_else(|| panic!("{path}: no Content-Security-Policy"))
            .to_str()
            .unwrap()
            .to_owned();
        let html = body_text(response).await;
        assert_csp(&html, &csp);
        nonces.push(csp);
    }
    nonces.sort();
    nonces.dedup();
    assert_eq!(nonces.len(), 6, "a fresh nonce per response");
}

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
