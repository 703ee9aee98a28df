//! Git-host integrations over the real router: catalog files registered by
//! their GitHub blob URLs, read through a local stand-in of GitHub's REST API
//! (every request checked against GitHub's OpenAPI description) with a token
//! kept in a real OpenBao; conditional refreshes, rate limits, and errors
//! that say what to fix.

mod common;

use axum::http::StatusCode;
use common::tokens::{ADMIN, PAYMENTS_DEV};
use common::vault::TestVault;
use common::*;
use paved_githost_stub::{GithubStub, Repo};
use serde_json::{json, Value};

const TOKEN: &str = "ghp_stand-in-token-5d1c8e2b-never-shown";

const PAYMENTS_API: &str = r#"apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: payments-api
  description:
    $text: ./docs/summary.txt
spec:
  type: service
  lifecycle: production
  owner: group:default/payments
"#;

const INVOICES: &str = r#"apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: invoices
spec:
  type: service
  lifecycle: experimental
  owner: group:default/payments
"#;

struct Fixture {
    app: TestApp,
    github: GithubStub,
    _vault: TestVault,
    _dir: tempfile::TempDir,
}

async fn fixture(with_credential: bool) -> Fixture {
    captured_logs();
    let github = GithubStub::start(
        vec![
            Repo::new(
                "acme",
                "payments-api",
                &[
                    ("catalog-info.yaml", PAYMENTS_API),
                    ("docs/summary.txt", "Takes payments for every shop."),
                ],
            )
            .private(),
            Repo::new("acme", "invoices", &[("catalog-info.yaml", INVOICES)]),
        ],
        &[TOKEN],
        5_000,
    )
    .await;
    let vault = TestVault::start().await;
    vault
        .root(
            "POST",
            "secret/data/platform/git/github.com",
            json!({"data": {"token": TOKEN}}),
        )
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("integrations.yaml");
    let credential = if with_credential {
        "credential: git/github.com"
    } else {
        ""
    };
    std::fs::write(
        &file,
        format!(
            "integrations:\n  - host: github.com\n    kind: github\n    api_base_url: {}\n    {credential}\n",
            github.url()
        ),
    )
    .unwrap();
    let mut vars: Vec<(&str, String)> = vec![("PAVED_INTEGRATIONS", file.display().to_string())];
    vars.extend(vault.portal_vars());
    let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Fixture {
        app: test_app(&borrowed).await,
        github,
        _vault: vault,
        _dir: dir,
    }
}

impl Fixture {
    async fn register(&self, url: &str) -> (StatusCode, Value) {
        self.app
            .as_(ADMIN)
            .post(
                "/api/catalog/locations",
                json!({"type": "url", "target": url}),
            )
            .await
    }

    async fn problems(&self, id: &str) -> Vec<String> {
        let (_, body) = self
            .app
            .as_(ADMIN)
            .get(&format!("/api/catalog/locations/{id}/problems"))
            .await;
        body["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["message"].as_str().unwrap().to_owned())
            .collect()
    }
}

#[tokio::test]
async fn a_private_repository_is_read_by_its_blob_url_with_the_token_from_vault() {
    let f = fixture(true).await;
    let (status, body) = f
        .register("https://github.com/acme/payments-api/blob/main/catalog-info.yaml")
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["problems"], json!([]), "{body}");
    let (status, entity) = f
        .app
        .as_(PAYMENTS_DEV)
        .get("/api/catalog/entities/by-name/component/default/payments-api")
        .await;
    assert_eq!(status, StatusCode::OK, "{entity}");
    // The $text placeholder was read relative to the file, in the same repository.
    assert_eq!(
        entity["metadata"]["description"],
        "Takes payments for every shop."
    );
    let requests = f.github.requests();
    assert!(requests.len() >= 2, "{requests:?}");
    assert!(requests.iter().all(|r| r.authorized && r.status == 200));
    assert_eq!(f.github.violations(), Vec::<String>::new());

    // A refresh asks conditionally: the unchanged file costs a 304.
    let before = f.github.requests().len();
    let (status, _) = f
        .app
        .as_(ADMIN)
        .post(
            "/api/catalog/refresh",
            json!({"entityRef": "component:default/payments-api"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let refreshed = &f.github.requests()[before..];
    assert!(!refreshed.is_empty());
    assert!(
        refreshed.iter().all(|r| r.conditional && r.status == 304),
        "{refreshed:?}"
    );
    // A change is read on the next refresh.
    f.github.set_file(
        "acme/payments-api",
        "docs/summary.txt",
        "Takes payments, and refunds them.",
    );
    f.app
        .as_(ADMIN)
        .post(
            "/api/catalog/refresh",
            json!({"entityRef": "component:default/payments-api"}),
        )
        .await;
    let (_, entity) = f
        .app
        .as_(PAYMENTS_DEV)
        .get("/api/catalog/entities/by-name/component/default/payments-api")
        .await;
    assert_eq!(
        entity["metadata"]["description"],
        "Takes payments, and refunds them."
    );

    // The token never left Vault but for the requests that used it.
    assert!(!contains_bytes(&captured_logs().lock().unwrap(), TOKEN));
    assert!(!contains_bytes(&f.app.database_bytes(), TOKEN));
    assert_eq!(f.github.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn failures_say_what_to_fix() {
    let f = fixture(false).await;
    // Public repositories need no credential.
    let (status, body) = f
        .register("https://github.com/acme/invoices/blob/main/catalog-info.yaml")
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["problems"], json!([]), "{body}");
    assert!(f.github.requests().iter().all(|r| !r.authorized));

    // A private repository without a credential: the path, or a credential.
    let (status, body) = f
        .register("https://github.com/acme/payments-api/blob/main/catalog-info.yaml")
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let message = body["problems"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("404") && message.contains("private repository needs a credential"),
        "{body}"
    );

    // A URL that names no file is refused at registration, with the shape to use.
    let (status, body) = f
        .register("https://github.com/acme/invoices/issues/3")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("https://HOST/OWNER/REPO/blob/REF/PATH"));

    // Rate limited: the message says until when, and Paved does not ask again before.
    let (_, locations) = f.app.as_(ADMIN).get("/api/catalog/locations").await;
    let id = locations
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["data"]["target"].as_str().unwrap().contains("invoices"))
        .map(|l| l["data"]["id"].as_str().unwrap().to_owned())
        .unwrap();
    f.github.set_remaining(0);
    let refresh = json!({"entityRef": "component:default/invoices"});
    f.app
        .as_(ADMIN)
        .post("/api/catalog/refresh", refresh.clone())
        .await;
    let problems = f.problems(&id).await;
    assert!(
        problems.iter().any(|p| p.contains("rate-limited")),
        "{problems:?}"
    );
    let asked = f.github.requests().len();
    f.app.as_(ADMIN).post("/api/catalog/refresh", refresh).await;
    assert_eq!(
        f.github.requests().len(),
        asked,
        "no request before the reset"
    );
    let problems = f.problems(&id).await;
    assert!(
        problems
            .iter()
            .any(|p| p.contains("not asked again before")),
        "{problems:?}"
    );
    assert_eq!(f.github.violations(), Vec::<String>::new());
}
