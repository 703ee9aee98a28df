//! Every HTML page answers with a strict Content-Security-Policy whose fresh
//! nonce is on each inline script (the attack suite's CSP check).
//!
//! It runs in a process of its own: rendering the catalog page while other
//! tests' runtimes in the same process shut down was seen to hang about one
//! run in ten (before and after the one-shape work); alone it never has.

mod common;

use axum::http::header;
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
