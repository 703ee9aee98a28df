//! Secret provisioning against a real OpenBao server: workloads log in through
//! the Kubernetes role Paved writes and read exactly their path; values never
//! reach responses, logs or the database; faults are reported step by step
//! and a re-run converges; other teams are refused and Vault stays untouched.

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::vault::TestVault;
use common::*;
use serde_json::{json, Value};

use common::tokens::{PAYMENTS_DEV, PAYMENTS_LEAD, SEARCH_DEV};

const CATALOG: &str = r#"
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: { name: payments }
spec: { type: team, children: [] }
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: { name: search }
spec: { type: team, children: [] }
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: checkout
  annotations:
    backstage.io/kubernetes-namespace: payments
spec: { type: service, lifecycle: production, owner: payments }
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: indexer
  annotations:
    backstage.io/kubernetes-namespace: search
    paved.dev/kubernetes-service-account: indexer-sa
spec: { type: service, lifecycle: production, owner: search }
"#;

struct Fixture {
    app: TestApp,
    vault: TestVault,
    _catalog: tempfile::TempDir,
}

async fn fixture_with(vault: TestVault, vault_addr: Option<&str>) -> Fixture {
    captured_logs();
    let catalog = tempfile::tempdir().unwrap();
    std::fs::write(catalog.path().join("catalog-info.yaml"), CATALOG).unwrap();
    let root = catalog.path().display().to_string();
    let location = format!("file:{root}/catalog-info.yaml");
    let addr = vault_addr.map(str::to_owned).unwrap_or(vault.addr.clone());
    let app = test_app(&[
        ("PAVED_CATALOG_FILE_ROOTS", &root),
        ("PAVED_CATALOG_LOCATIONS", &location),
        ("PAVED_VAULT_ADDR", &addr),
        ("PAVED_VAULT_TOKEN", &vault.portal_token),
    ])
    .await;
    Fixture {
        app,
        vault,
        _catalog: catalog,
    }
}

async fn fixture() -> Fixture {
    let vault = TestVault::start().await;
    fixture_with(vault, None).await
}

#[tokio::test]
async fn provisioned_service_account_reads_exactly_its_secret_and_values_never_leak() {
    let f = fixture().await;
    let value_v1 = "pw-v1-5f0c1e9a-unique";
    let value_v2 = "pw-v2-8d2b7c44-unique";

    let (status, text) = f
        .app
        .as_(PAYMENTS_DEV)
        .text(
            "PUT",
            "/api/secrets/v1/payments/checkout/database",
            Some(json!({"data": {"DATABASE_PASSWORD": value_v1, "DATABASE_USER": "checkout"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let created: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(created["version"], 1);
    assert_eq!(
        created["path"],
        "secret/data/platform/payments/checkout/database"
    );
    assert_eq!(created["policy"], "paved__payments__checkout");
    assert_eq!(created["role"], "paved__payments__checkout");
    assert_eq!(
        created["annotations"]["vault.hashicorp.com/agent-inject-secret-database"],
        "secret/data/platform/payments/checkout/database"
    );
    assert_eq!(
        created["annotations"]["vault.hashicorp.com/role"],
        "paved__payments__checkout"
    );
    assert!(!text.contains(value_v1));

    // A pod of checkout (namespace payments, service account checkout) logs in and reads it.
    let jwt = f.vault.token_review.issue("payments", "checkout");
    let workload = f
        .vault
        .kubernetes_login("paved__payments__checkout", &jwt)
        .await
        .expect("the service's own service account logs in");
    let (status, secret) = f
        .vault
        .raw(
            "GET",
            "secret/data/platform/payments/checkout/database",
            Some(&workload),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(secret["data"]["data"]["DATABASE_PASSWORD"], value_v1);

    // Another service account, or the same name in another namespace, is refused.
    for (ns, sa) in [("payments", "other-service"), ("search", "checkout")] {
        let jwt = f.vault.token_review.issue(ns, sa);
        assert!(
            f.vault
                .kubernetes_login("paved__payments__checkout", &jwt)
                .await
                .is_err(),
            "{ns}/{sa} must not log in"
        );
    }

    // The workload's token reads nothing else: not another team's data, not metadata.
    f.vault
        .root(
            "POST",
            "secret/data/platform/search/indexer/api",
            json!({"data": {"K": "v"}}),
        )
        .await;
    for path in [
        "secret/data/platform/search/indexer/api",
        "secret/metadata/platform/search/indexer/api",
        "secret/metadata/platform/payments/checkout/database",
        "secret/data/platform/llm/payments",
    ] {
        let (status, _) = f.vault.raw("GET", path, Some(&workload), None).await;
        assert_eq!(status, 403, "{path}");
    }

    // Rotation makes version 2; the versions list is metadata only.
    let (status, text) = f
        .app
        .as_(PAYMENTS_DEV)
        .text(
            "PUT",
            "/api/secrets/v1/payments/checkout/database",
            Some(json!({"data": {"DATABASE_PASSWORD": value_v2}, "cas": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let rotated: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(rotated["version"], 2);
    let (status, text) = f
        .app
        .as_(PAYMENTS_DEV)
        .text("GET", "/api/secrets/v1/payments/checkout/database", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let detail: Value = serde_json::from_str(&text).unwrap();
    let versions = detail["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["version"], 2);
    assert_eq!(versions[0]["created_by"], "service:dev");
    assert!(versions[0]["created_at"]
        .as_str()
        .unwrap()
        .starts_with("20"));
    let (status, list) = f
        .app
        .as_(PAYMENTS_DEV)
        .text("GET", "/api/secrets/v1/payments/checkout", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(list.contains("\"current_version\":2"));
    assert!(list.contains("\"complete\":true"));

    // The write is in Paved's audit log with Vault's request id, which Vault's own audit log also has.
    let request_id = rotated["vault_request_id"].as_str().unwrap().to_owned();
    let audit = paved_core::audit::list(&f.app.state.core.db, 0, 200)
        .await
        .unwrap();
    let entry = audit
        .entries
        .iter()
        .find(|e| e.action == "secret.rotate")
        .expect("rotation audited");
    assert!(entry.after.as_deref().unwrap().contains(&request_id));
    assert_eq!(entry.actor, "service:dev");
    let vault_audit = std::fs::read_to_string(&f.vault.audit_log).unwrap();
    assert!(vault_audit.contains(&request_id));

    // No value in any answer above, the database, or the logs.
    for text in [&text, &list] {
        assert!(!text.contains(value_v1) && !text.contains(value_v2));
    }
    let db = f.app.database_bytes();
    let logs = captured_logs().lock().unwrap().clone();
    assert!(!logs.is_empty(), "logs are captured");
    for value in [value_v1, value_v2] {
        assert!(!contains_bytes(&db, value), "value found in the database");
        assert!(!contains_bytes(&logs, value), "value found in the logs");
    }
}

#[tokio::test]
async fn other_teams_are_refused_and_vault_is_left_untouched() {
    let f = fixture().await;
    let uri = "/api/secrets/v1/payments/checkout/database";
    let body = json!({"data": {"PASSWORD": "intruder-value"}});
    assert_eq!(
        f.app
            .as_(SEARCH_DEV)
            .text("PUT", uri, Some(body.clone()))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        f.app
            .as_(SEARCH_DEV)
            .text("GET", "/api/secrets/v1/payments/checkout", None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        f.app.as_(SEARCH_DEV).text("GET", uri, None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        f.app.as_(SEARCH_DEV).text("DELETE", uri, None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        f.app
            .as_(SEARCH_DEV)
            .text("POST", "/api/secrets/v1/payments/checkout/provision", None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    // A team's member cannot write under a service another team owns, even naming their own team.
    let (status, text) = f
        .app
        .as_(SEARCH_DEV)
        .text(
            "PUT",
            "/api/secrets/v1/search/checkout/database",
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
    let (status, _) = f
        .vault
        .raw(
            "GET",
            "secret/metadata/platform/payments/checkout/database",
            Some(&f.vault.root_token),
            None,
        )
        .await;
    assert_eq!(status, 404, "nothing was written");
    let (status, _) = f
        .vault
        .raw(
            "GET",
            "sys/policy/paved__payments__checkout",
            Some(&f.vault.root_token),
            None,
        )
        .await;
    assert_ne!(status, 200, "no policy was written");
    // The UI's server functions apply the same rules to a signed-in member of another team.
    let outsider = f
        .app
        .session_for(
            "sid",
            &[("search", paved_core::auth::TeamRole::Member)],
            &[],
        )
        .await;
    for (name, form) in [
        ("secrets_panel", "team=payments&holder=checkout"),
        (
            "secrets_versions",
            "team=payments&holder=checkout&name=database",
        ),
        (
            "secrets_delete_version",
            "team=payments&holder=checkout&name=database&version=1",
        ),
        (
            "secrets_destroy",
            "team=payments&holder=checkout&name=database&confirmation=database",
        ),
        ("secrets_finish", "team=payments&holder=checkout"),
        ("secrets_team_services", "team=payments"),
    ] {
        let response = f.app.with_session(&outsider).call(name, form).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{name}");
    }
    let response = f
        .app
        .with_session(&outsider)
        .call_json(
            "secrets_save",
            json!({"team": "payments", "holder": "checkout", "name": "database",
                   "pairs": [["PASSWORD", "intruder-value"]], "expected_version": 0}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let (status, _) = f
        .vault
        .raw(
            "GET",
            "secret/metadata/platform/payments/checkout/database",
            Some(&f.vault.root_token),
            None,
        )
        .await;
    assert_eq!(status, 404, "still nothing written");

    // Unauthenticated calls get 401.
    let response = f
        .app
        .send(
            Request::get("/api/secrets/v1/payments/checkout")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn check_and_set_and_destroy_rules() {
    let f = fixture().await;
    let uri = "/api/secrets/v1/payments/checkout/api-key";
    let put = |cas: Option<i64>| json!({"data": {"API_KEY": "k"}, "cas": cas});
    assert_eq!(
        f.app
            .as_(PAYMENTS_DEV)
            .text("PUT", uri, Some(put(Some(0))))
            .await
            .0,
        StatusCode::CREATED
    );
    // Creating again with cas 0, or rotating from a stale version, is a conflict.
    let (status, text) = f
        .app
        .as_(PAYMENTS_DEV)
        .text("PUT", uri, Some(put(Some(0))))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{text}");
    assert!(text.contains("already exists"));
    assert_eq!(
        f.app
            .as_(PAYMENTS_DEV)
            .text("PUT", uri, Some(put(Some(1))))
            .await
            .0,
        StatusCode::OK
    );
    let (status, text) = f
        .app
        .as_(PAYMENTS_DEV)
        .text("PUT", uri, Some(put(Some(1))))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{text}");
    assert!(text.contains("newer version"));
    // Bad input is refused with the field named.
    let (status, text) = f
        .app
        .as_(PAYMENTS_DEV)
        .text(
            "PUT",
            "/api/secrets/v1/payments/checkout/Bad_Name",
            Some(put(None)),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    let (status, text) = f
        .app
        .as_(PAYMENTS_DEV)
        .text("PUT", uri, Some(json!({"data": {"not-a-key": "v"}})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    // A service that is not in the catalog is a clear 404.
    let (status, text) = f
        .app
        .as_(PAYMENTS_DEV)
        .text("PUT", "/api/secrets/v1/payments/nope/db", Some(put(None)))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");

    // Members cannot delete versions or destroy; leads can.
    assert_eq!(
        f.app
            .as_(PAYMENTS_DEV)
            .text("DELETE", &format!("{uri}/versions/1"), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        f.app.as_(PAYMENTS_DEV).text("DELETE", uri, None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        f.app
            .as_(PAYMENTS_LEAD)
            .text("DELETE", &format!("{uri}/versions/1"), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (_, text) = f.app.as_(PAYMENTS_DEV).text("GET", uri, None).await;
    let detail: Value = serde_json::from_str(&text).unwrap();
    let v1 = detail["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["version"] == 1)
        .unwrap();
    assert!(v1["deleted_at"].is_string(), "{v1}");
    assert_eq!(
        f.app.as_(PAYMENTS_LEAD).text("DELETE", uri, None).await.0,
        StatusCode::NO_CONTENT
    );
    let (status, _) = f
        .vault
        .raw(
            "GET",
            "secret/metadata/platform/payments/checkout/api-key",
            Some(&f.vault.root_token),
            None,
        )
        .await;
    assert_eq!(status, 404, "destroyed in Vault");
    assert_eq!(
        f.app.as_(PAYMENTS_DEV).text("GET", uri, None).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn vault_stopped_mid_provisioning_reports_what_is_missing_and_a_rerun_converges() {
    let vault = TestVault::start().await;
    // The portal talks to OpenBao through a proxy that kills OpenBao when the policy step starts.
    let proxy = vault.kill_switch_proxy(b"/v1/sys/policy/").await;
    let mut f = fixture_with(vault, Some(&proxy.url.clone())).await;
    proxy.arm();
    let (status, text) = f
        .app
        .as_(PAYMENTS_DEV)
        .text(
            "PUT",
            "/api/secrets/v1/payments/checkout/database",
            Some(json!({"data": {"PASSWORD": "crash-test-value"}})),
        )
        .await;
    assert!(proxy.fired(), "OpenBao was stopped mid-provisioning");
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    let steps = answer["steps"].as_array().unwrap();
    let state = |name: &str| {
        steps
            .iter()
            .find(|s| s["step"] == name)
            .map(|s| s["state"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(state("secret"), "done");
    assert_eq!(state("policy"), "failed");
    assert_eq!(state("role"), "failed");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("provision"));
    assert!(!text.contains("crash-test-value"));

    // The status says what is missing.
    let (_, list) = f
        .app
        .as_(PAYMENTS_DEV)
        .text("GET", "/api/secrets/v1/payments/checkout", None)
        .await;
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["access"]["complete"], false);
    assert!(list["access"]["policy_synced_at"].is_null());
    assert!(list["access"]["last_error"]
        .as_str()
        .unwrap()
        .contains("policy paved__payments__checkout not written"));

    // While OpenBao is down, writes are refused with a clear 503 and nothing changes.
    f.app
        .state
        .core
        .vault
        .as_ref()
        .unwrap()
        .check_health()
        .await;
    let (status, text) = f
        .app
        .as_(PAYMENTS_DEV)
        .text("POST", "/api/secrets/v1/payments/checkout/provision", None)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    assert!(text.contains("does not answer"));

    // After a restart, a re-run converges and the workload can log in.
    proxy.disarm();
    f.vault.restart().await;
    f.app
        .state
        .core
        .vault
        .as_ref()
        .unwrap()
        .check_health()
        .await;
    let (status, text) = f
        .app
        .as_(PAYMENTS_DEV)
        .text("POST", "/api/secrets/v1/payments/checkout/provision", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("\"complete\":true"));
    let jwt = f.vault.token_review.issue("payments", "checkout");
    let token = f
        .vault
        .kubernetes_login("paved__payments__checkout", &jwt)
        .await
        .expect("login");
    let (status, secret) = f
        .vault
        .raw(
            "GET",
            "secret/data/platform/payments/checkout/database",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(secret["data"]["data"]["PASSWORD"], "crash-test-value");
}

#[tokio::test]
async fn sealed_vault_is_reported_and_refuses_writes_without_touching_anything() {
    let f = fixture().await;
    let vault = f.app.state.core.vault.as_ref().unwrap();
    assert_eq!(
        vault.check_health().await.state,
        paved_core::secrets::vault::VaultState::Ready
    );
    f.vault.seal().await;
    assert_eq!(
        vault.check_health().await.state,
        paved_core::secrets::vault::VaultState::Sealed
    );

    let (status, text) = f
        .app
        .as_(PAYMENTS_DEV)
        .text(
            "PUT",
            "/api/secrets/v1/payments/checkout/database",
            Some(json!({"data": {"PASSWORD": "x"}})),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    assert!(text.contains("sealed"), "{text}");

    // /readyz stays ready (the catalog works) and reports Vault separately.
    let response = f.app.send(get("/readyz")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let ready = body_json(response).await;
    assert_eq!(ready["vault"]["state"], "sealed");

    // Every page shows the banner.
    let cookie = f
        .app
        .session_for(
            "dana",
            &[("payments", paved_core::auth::TeamRole::Member)],
            &[],
        )
        .await;
    let page = body_text(f.app.send(get_with("/", header::COOKIE, &cookie)).await).await;
    assert!(page.contains("Vault is sealed"), "banner missing");

    f.vault.unseal().await;
    assert_eq!(
        vault.check_health().await.state,
        paved_core::secrets::vault::VaultState::Ready
    );
    let page = body_text(f.app.send(get_with("/", header::COOKIE, &cookie)).await).await;
    assert!(!page.contains("Vault is sealed"));
}

#[tokio::test]
async fn the_ui_save_function_provisions_like_the_api() {
    let f = fixture().await;
    let member = f
        .app
        .session_for(
            "dana",
            &[("payments", paved_core::auth::TeamRole::Member)],
            &[],
        )
        .await;
    let as_member = f.app.with_session(&member);
    let save = |version: i64, value: &str| {
        json!({"team": "payments", "holder": "checkout", "name": "token",
               "pairs": [["TOKEN", value]], "expected_version": version})
    };
    let response = as_member
        .call_json("secrets_save", save(0, "ui-value-one"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = body_text(response).await;
    assert!(!text.contains("ui-value-one"));
    let saved: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(saved["secret"]["current_version"], 1);
    assert_eq!(saved["created"], true);
    assert!(saved["access"]["annotations_yaml"]
        .as_str()
        .unwrap()
        .contains("agent-inject-secret-token"));
    // A stale form (it still shows version 0) is refused: someone else's version is not overwritten.
    let response = as_member
        .call_json("secrets_save", save(0, "ui-value-two"))
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let response = as_member
        .call_json("secrets_save", save(1, "ui-value-two"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    // The entity page shows the annotations to members only.
    let page = body_text(
        f.app
            .send(get_with(
                "/catalog/component/default/checkout",
                header::COOKIE,
                &member,
            ))
            .await,
    )
    .await;
    assert!(page.contains("vault.hashicorp.com/agent-inject-secret-token"));
    assert!(!page.contains("ui-value"));
    let outsider = f
        .app
        .session_for(
            "sid",
            &[("search", paved_core::auth::TeamRole::Member)],
            &[],
        )
        .await;
    let response = f
        .app
        .send(get_with(
            "/catalog/component/default/checkout",
            header::COOKIE,
            &outsider,
        ))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = body_text(response).await;
    assert!(page.contains("Only members of team payments"));
    assert!(!page.contains("agent-inject-secret-token"));
    assert!(!page.contains("platform/payments/checkout"));
}

#[tokio::test]
async fn the_portal_logs_in_with_approle_or_kubernetes_and_renews_its_token() {
    let vault = TestVault::start().await;
    // AppRole with exactly Paved's documented policy.
    vault
        .root("POST", "sys/auth/approle", json!({"type": "approle"}))
        .await;
    vault
        .root(
            "POST",
            "auth/approle/role/paved",
            json!({"token_policies": ["paved-portal"], "token_ttl": "60s", "token_max_ttl": "1h"}),
        )
        .await;
    let role_id = vault
        .root("GET", "auth/approle/role/paved/role-id", json!({}))
        .await;
    let role_id = role_id["data"]["role_id"].as_str().unwrap().to_owned();
    let secret_id = vault
        .root("POST", "auth/approle/role/paved/secret-id", json!({}))
        .await;
    let secret_id = secret_id["data"]["secret_id"].as_str().unwrap().to_owned();
    // Kubernetes: the portal's own service account.
    vault
        .root(
            "POST",
            "auth/kubernetes/role/paved-portal",
            json!({"bound_service_account_names": ["paved"], "bound_service_account_namespaces": ["platform"],
                   "token_policies": ["paved-portal"], "token_ttl": "60s"}),
        )
        .await;
    let jwt_dir = tempfile::tempdir().unwrap();
    let jwt_path = jwt_dir.path().join("token");
    std::fs::write(&jwt_path, vault.token_review.issue("platform", "paved")).unwrap();

    let jwt_path = jwt_path.display().to_string();
    for auth in [
        vec![
            ("PAVED_VAULT_AUTH", "approle"),
            ("PAVED_VAULT_APPROLE_ROLE_ID", role_id.as_str()),
            ("PAVED_VAULT_APPROLE_SECRET_ID", secret_id.as_str()),
        ],
        vec![
            ("PAVED_VAULT_AUTH", "kubernetes"),
            ("PAVED_VAULT_AUTH_ROLE", "paved-portal"),
            ("PAVED_VAULT_K8S_TOKEN_PATH", jwt_path.as_str()),
        ],
    ] {
        let mut vars = vec![("PAVED_VAULT_ADDR", vault.addr.as_str())];
        vars.extend(auth.iter().copied());
        let app = test_app(&vars).await;
        let client = app.state.core.vault.as_ref().unwrap();
        let (ttl, renewable) = client.login().await.expect("login");
        assert!(
            renewable && ttl.as_secs() > 0 && ttl.as_secs() <= 60,
            "{ttl:?}"
        );
        assert!(client.renew().await.expect("renew").as_secs() > 0);
        assert_eq!(
            client.check_health().await.state,
            paved_core::secrets::vault::VaultState::Ready
        );
    }

    // Wrong credentials: a clear status, not a crash.
    let app = test_app(&[
        ("PAVED_VAULT_ADDR", vault.addr.as_str()),
        ("PAVED_VAULT_AUTH", "approle"),
        ("PAVED_VAULT_APPROLE_ROLE_ID", role_id.as_str()),
        ("PAVED_VAULT_APPROLE_SECRET_ID", "not-the-secret-id"),
    ])
    .await;
    let client = app.state.core.vault.as_ref().unwrap();
    assert!(client.login().await.is_err());
    let status = client.status();
    assert_eq!(
        status.state,
        paved_core::secrets::vault::VaultState::Unauthenticated
    );
    assert!(!status.detail.contains("not-the-secret-id"));
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    // Without Vault configured, the API says so clearly.
    let app = test_app(&[]).await;
    let response = app
        .as_(PAYMENTS_DEV)
        .response("GET", "/api/secrets/v1/openapi.json", None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let doc = body_json(response).await;
    // Generated by utoipa, which writes OpenAPI 3.1.
    assert_eq!(doc["openapi"], "3.1.0");
    for (path, methods) in [
        ("/{team}/{service}", &["get"][..]),
        ("/{team}/{service}/provision", &["post"][..]),
        ("/{team}/{service}/{name}", &["put", "get", "delete"][..]),
        (
            "/{team}/{service}/{name}/versions/{version}",
            &["delete"][..],
        ),
    ] {
        for method in methods {
            assert!(doc["paths"][path][method].is_object(), "{method} {path}");
        }
    }
    // Without Vault configured, the API says so clearly.
    let app = test_app(&[]).await;
    let response = app
        .as_(PAYMENTS_DEV)
        .response("GET", "/api/secrets/v1/payments/checkout", None)
        .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(body_text(response).await.contains("PAVED_VAULT_ADDR"));
}

/// Where `kube:apply` deployed a service decides its Vault role: the
/// namespace it applied to, at that cluster's own Kubernetes auth mount.
#[tokio::test]
async fn the_kubernetes_role_follows_where_kube_apply_deployed_the_service() {
    let vault = TestVault::start().await;
    // The production cluster's own auth mount, and Paved's policy for it.
    vault
        .root(
            "POST",
            "sys/auth/kubernetes-prod-eu",
            json!({"type": "kubernetes"}),
        )
        .await;
    vault
        .root(
            "POST",
            "auth/kubernetes-prod-eu/config",
            json!({"kubernetes_host": "https://127.0.0.1:9", "disable_local_ca_jwt": true,
                   "kubernetes_ca_cert": include_str!("fixtures/k8s-ca.pem")}),
        )
        .await;
    let policy = format!(
        "{}\npath \"auth/kubernetes-prod-eu/role/paved__*\" {{\n  capabilities = [\"create\", \"read\", \"update\"]\n}}\n",
        include_str!("../../docs/vault-policy.hcl")
    );
    vault
        .root("PUT", "sys/policy/paved-portal", json!({"policy": policy}))
        .await;
    let catalog = tempfile::tempdir().unwrap();
    std::fs::write(catalog.path().join("catalog-info.yaml"), CATALOG).unwrap();
    std::fs::write(
        catalog.path().join("prod.kubeconfig"),
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:9\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\nusers:\n- name: u\n  user:\n    token: t\ncurrent-context: c\n",
    )
    .unwrap();
    std::fs::write(
        catalog.path().join("clusters.yaml"),
        "clusters:\n- name: prod-eu\n  kubeconfig: prod.kubeconfig\n  vaultAuthMount: kubernetes-prod-eu\n",
    )
    .unwrap();
    let root = catalog.path().display().to_string();
    let location = format!("file:{root}/catalog-info.yaml");
    let clusters = format!("{root}/clusters.yaml");
    let app = test_app(&[
        ("PAVED_CATALOG_FILE_ROOTS", &root),
        ("PAVED_CATALOG_LOCATIONS", &location),
        ("PAVED_VAULT_ADDR", &vault.addr),
        ("PAVED_VAULT_TOKEN", &vault.portal_token),
        ("PAVED_KUBE_CLUSTERS", &clusters),
    ])
    .await;
    let (status, created) = app
        .as_(PAYMENTS_DEV)
        .put(
            "/api/secrets/v1/payments/checkout/database",
            json!({"data": {"DATABASE_PASSWORD": "pw-kube-1"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    // Before any deployment: the annotation's namespace, the default mount.
    let role = vault
        .root(
            "GET",
            "auth/kubernetes/role/paved__payments__checkout",
            json!(null),
        )
        .await;
    assert_eq!(
        role["data"]["bound_service_account_namespaces"],
        json!(["payments"])
    );

    // kube:apply put it in payments-prod on prod-eu.
    paved_core::kube::record_placement(
        &app.state.core,
        paved_core::kube::Record {
            entity_ref: "component:default/checkout",
            cluster: "prod-eu",
            namespace: "payments-prod",
            selector: "backstage.io/kubernetes-id=checkout",
            team: "payments",
            objects: &["Deployment/checkout".to_owned()],
            task_id: "task-1",
            actor: "user:dana",
            ready: true,
            now: 1_780_000_000,
        },
    )
    .await
    .unwrap();
    let (status, answer) = app
        .as_(PAYMENTS_DEV)
        .post("/api/secrets/v1/payments/checkout/provision", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let role = vault
        .root(
            "GET",
            "auth/kubernetes-prod-eu/role/paved__payments__checkout",
            json!(null),
        )
        .await;
    assert_eq!(
        role["data"]["bound_service_account_namespaces"],
        json!(["payments-prod"])
    );
    assert_eq!(
        role["data"]["bound_service_account_names"],
        json!(["checkout"])
    );
}
