//! Policy as code over HTTP: the admission webhook with recorded
//! AdmissionReviews, the policy API (bundle, violations, exceptions, check).

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::{body_json, test_app, tokens, TestApp};
use paved_shared::auth::TeamRole;
use serde_json::{json, Value};

fn policies_dir() -> String {
    format!("{}/../policies", env!("CARGO_MANIFEST_DIR"))
}

async fn app() -> TestApp {
    test_app(&[("PAVED_POLICY_DIRS", &policies_dir())]).await
}

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/admission/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn admit_raw(app: &TestApp, content_type: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let request = Request::post("/api/admission/v1/validate")
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .unwrap();
    let response = app.send(request).await;
    let status = response.status();
    (status, body_json(response).await)
}

async fn admit(app: &TestApp, review: &Value) -> Value {
    let (status, body) = admit_raw(app, "application/json", review.to_string().into_bytes()).await;
    assert_eq!(status, StatusCode::OK);
    body
}

#[tokio::test]
async fn recorded_reviews_are_allowed_denied_and_warned_with_the_uid_echoed() {
    let app = app().await;
    let allowed = admit(&app, &fixture("pod-create-allowed.json")).await;
    assert_eq!(allowed["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(allowed["kind"], "AdmissionReview");
    assert_eq!(
        allowed["response"]["uid"],
        "b8f2e7a4-6f51-4d4b-9a3e-2c1d0e9f8a71"
    );
    assert_eq!(allowed["response"]["allowed"], true);
    assert_eq!(allowed["response"]["status"]["code"], 200);
    assert!(allowed["response"].get("warnings").is_none());

    let denied = admit(&app, &fixture("pod-create-denied.json")).await;
    let response = &denied["response"];
    assert_eq!(response["uid"], "0c5d9e6f-2a7b-4c3d-8e1f-9a0b1c2d3e4f");
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 403);
    assert_eq!(response["status"]["reason"], "Forbidden");
    let message = response["status"]["message"].as_str().unwrap();
    let lines: Vec<&str> = message.lines().collect();
    assert_eq!(lines.len(), 2, "{message}");
    assert!(lines.contains(&"[no-raw-openai-api-key] Pod chat-5d9c7b6f4-7hjkl: container app declares OPENAI_API_KEY directly; the key must come from Vault through the platform SDK"), "{message}");
    assert!(lines.contains(&"[pinned-images] Pod chat-5d9c7b6f4-7hjkl: container app uses the tag latest; pin a version or a digest"), "{message}");

    // Owner labels deny in the scaffolder and CI but only warn at admission.
    let warned = admit(&app, &fixture("deployment-create-warned.json")).await;
    let response = &warned["response"];
    assert_eq!(response["allowed"], true);
    assert_eq!(response["status"]["code"], 299);
    let warnings = response["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .starts_with("[owner-and-team-labels] Deployment chat must carry the labels"),
        "{warnings:?}"
    );

    // v1beta1 is answered in v1beta1.
    let beta = admit(&app, &fixture("pod-create-v1beta1.json")).await;
    assert_eq!(beta["apiVersion"], "admission.k8s.io/v1beta1");
    assert_eq!(
        beta["response"]["uid"],
        "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b"
    );
    assert_eq!(beta["response"]["allowed"], false);

    // A DELETE is reviewed against its old object.
    let delete = admit(&app, &fixture("pod-delete.json")).await;
    assert_eq!(
        delete["response"]["uid"],
        "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d"
    );
    assert_eq!(delete["response"]["allowed"], false);

    // Decisions and their latency are on /metrics, as Gatekeeper exports them.
    let (status, metrics) = app.as_(tokens::ADMIN).text("GET", "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        metrics.contains("paved_policy_admission_requests_total{status=\"allow\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("paved_policy_admission_requests_total{status=\"deny\"} 3\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("paved_policy_admission_requests_total{status=\"warn\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("paved_policy_admission_duration_seconds_count 5\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("paved_policy_violations_total{point=\"admission\",action=\"deny\"} 4\n"),
        "{metrics}"
    );

    // Every decision that found something is recorded for the admins' page.
    let (status, page) = app
        .as_(tokens::ADMIN)
        .get("/api/policy/v1/violations?point=admission")
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(page["total"], items.len() as i64);
    assert!(items
        .iter()
        .any(|v| v["action"] == "warn" && v["policy"] == "owner-and-team-labels"));
    let denied_rows: Vec<_> = items
        .iter()
        .filter(|v| v["source"] == "0c5d9e6f-2a7b-4c3d-8e1f-9a0b1c2d3e4f")
        .collect();
    assert_eq!(denied_rows.len(), 2);
    assert!(denied_rows.iter().all(|v| v["action"] == "deny"
        && v["object"] == "Pod/payments/chat-5d9c7b6f4-7hjkl"
        && v["namespace"] == "payments"));
}

#[tokio::test]
async fn malformed_requests_get_a_400_review_never_an_allow() {
    let app = app().await;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("application/json", b"{not json".to_vec(), "not JSON"),
        ("application/json", Vec::new(), "empty"),
        ("text/plain", fixture("pod-create-allowed.json").to_string().into_bytes(), "Content-Type"),
        ("application/json", json!({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v2", "request": {"uid": "u"}}).to_string().into_bytes(), "unsupported apiVersion"),
        ("application/json", json!({"kind": "ConfigMap", "apiVersion": "v1"}).to_string().into_bytes(), "AdmissionReview"),
        ("application/json", json!({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1"}).to_string().into_bytes(), "missing request"),
        ("application/json", json!({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": {"uid": "u", "operation": "CREATE"}}).to_string().into_bytes(), "no object"),
        ("application/json", json!({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": {"uid": "u", "operation": "DELETE", "object": {"kind": "Pod"}}}).to_string().into_bytes(), "oldObject"),
        ("application/json", json!({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": {"object": {"kind": "Pod"}}}).to_string().into_bytes(), "uid"),
    ];
    for (content_type, body, expect) in cases {
        let (status, answer) = admit_raw(&app, content_type, body).await;
        assert_eq!(status, StatusCode::OK);
        let response = &answer["response"];
        assert_eq!(response["allowed"], false, "{expect}: {answer}");
        assert_eq!(response["status"]["code"], 400, "{expect}: {answer}");
        assert_eq!(response["uid"], "");
        assert!(
            response["status"]["message"]
                .as_str()
                .unwrap()
                .contains(expect),
            "{expect}: {answer}"
        );
    }
    // Oversized: answered 413 without reading it all.
    let mut big = fixture("pod-create-allowed.json");
    big["request"]["object"]["metadata"]["annotations"] =
        json!({"padding": "x".repeat(5 * 1024 * 1024)});
    let (status, answer) = admit_raw(&app, "application/json", big.to_string().into_bytes()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["response"]["allowed"], false);
    assert_eq!(answer["response"]["status"]["code"], 413);
}

#[tokio::test]
async fn the_admission_token_is_required_when_configured() {
    let app = test_app(&[
        ("PAVED_POLICY_DIRS", &policies_dir()),
        ("PAVED_ADMISSION_TOKEN", "admission-secret-0123456789"),
    ])
    .await;
    let review = fixture("pod-create-allowed.json");
    let (status, answer) =
        admit_raw(&app, "application/json", review.to_string().into_bytes()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer["response"]["allowed"], false);
    let request = Request::post("/api/admission/v1/validate")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, "Bearer admission-secret-0123456789")
        .body(Body::from(review.to_string()))
        .unwrap();
    let answer = body_json(app.send(request).await).await;
    assert_eq!(answer["response"]["allowed"], true);
}

#[tokio::test]
async fn exceptions_apply_until_revoked_or_expired_and_are_audited() {
    let app = app().await;
    // Teams exist once someone of them signs in.
    app.session_for("pat", &[("payments", TeamRole::Lead)], &[])
        .await;
    let denied = fixture("pod-create-denied.json");
    assert_eq!(admit(&app, &denied).await["response"]["allowed"], false);

    let grant = json!({"policy": "pinned-images", "namespace": "payments", "object_name": "chat-*", "team": "payments", "reason": "Vendor image only published as latest until March", "days": 30});
    // Only platform admins grant exceptions.
    let (status, _) = app
        .as_(tokens::PAYMENTS_LEAD)
        .post("/api/policy/v1/exceptions", grant.clone())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Bad input names the field.
    for (field, value) in [
        ("policy", json!("no-such")),
        ("namespace", json!("Pay ments")),
        ("days", json!(0)),
        ("reason", json!("short")),
        ("team", json!("ghosts")),
    ] {
        let mut bad = grant.clone();
        bad[field] = value;
        let (status, body) = app
            .as_(tokens::ADMIN)
            .post("/api/policy/v1/exceptions", bad)
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(field),
            "{body}"
        );
    }
    let (status, created) = app
        .as_(tokens::ADMIN)
        .post("/api/policy/v1/exceptions", grant)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["state"], "active");

    // The image finding is excepted; the OpenAI key still denies.
    let answer = admit(&app, &denied).await;
    let message = answer["response"]["status"]["message"].as_str().unwrap();
    assert!(!message.contains("pinned-images"), "{message}");
    assert!(message.contains("no-raw-openai-api-key"), "{message}");
    let (_, page) = app
        .as_(tokens::ADMIN)
        .get("/api/policy/v1/violations?policy=pinned-images")
        .await;
    assert_eq!(page["items"][0]["action"], "excepted");

    // Audited.
    let id = created["id"].as_i64().unwrap();
    let (status, _) = app
        .as_(tokens::ADMIN)
        .post(&format!("/api/policy/v1/exceptions/{id}/revoke"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let message = admit(&app, &denied).await["response"]["status"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("pinned-images"), "{message}");
    let (status, _) = app
        .as_(tokens::ADMIN)
        .post(&format!("/api/policy/v1/exceptions/{id}/revoke"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let entries: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'policy.exception.%'")
            .fetch_one(&app.state.core.db)
            .await
            .unwrap();
    assert_eq!(entries, 2);

    // An expired exception stops applying at once.
    let (_, again) = app
        .as_(tokens::ADMIN)
        .post("/api/policy/v1/exceptions", json!({"policy": "pinned-images", "namespace": "payments", "team": "payments", "reason": "Vendor image only published as latest", "days": 1}))
        .await;
    let answer = admit(&app, &denied).await;
    assert!(!answer["response"]["status"]["message"]
        .as_str()
        .unwrap()
        .contains("pinned-images"));
    sqlx::query("UPDATE policy_exceptions SET expires_at = 1 WHERE id = ?1")
        .bind(again["id"].as_i64().unwrap())
        .execute(&app.state.core.db)
        .await
        .unwrap();
    // The in-memory list is re-read on change; expiry is checked at decision time.
    let (_, list) = app
        .as_(tokens::ADMIN)
        .get("/api/policy/v1/exceptions")
        .await;
    assert_eq!(list[0]["state"], "expired");
}

#[tokio::test]
async fn the_bundle_and_the_check_api() {
    let app = app().await;
    let (status, bundle) = app
        .as_(tokens::PAYMENTS_DEV)
        .get("/api/policy/v1/bundle")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bundle["kind"], "PolicyBundle");
    assert!(bundle["templates"].as_array().unwrap().len() >= 6);
    assert!(bundle["constraints"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["metadata"]["name"] == "no-raw-openai-api-key"));
    let (status, _) = app.anonymous().get("/api/policy/v1/bundle").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, policies) = app
        .as_(tokens::PAYMENTS_DEV)
        .get("/api/policy/v1/policies")
        .await;
    assert_eq!(status, StatusCode::OK);
    let labels = policies
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "owner-and-team-labels")
        .unwrap();
    assert_eq!(labels["actions"], json!(["deny", "deny", "warn"]));
    assert_eq!(labels["owner"], "group:default/platform");

    let manifests = "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\nspec:\n  securityContext: {runAsNonRoot: true}\n  containers:\n  - name: app\n    image: nginx:latest\n    resources: {requests: {cpu: 1m, memory: 1Mi}, limits: {cpu: 1m, memory: 1Mi}}\n";
    let (status, report) = app
        .as_(tokens::PAYMENTS_DEV)
        .post("/api/policy/v1/check", json!({"manifests": manifests}))
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["objects"], 1);
    assert_eq!(report["blocked"], true);
    assert_eq!(report["findings"][0]["policy"], "pinned-images");
    assert_eq!(report["findings"][0]["line"], 1);
    let (status, body) = app
        .as_(tokens::PAYMENTS_DEV)
        .post("/api/policy/v1/check", json!({"manifests": "kind: ["}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // The playground records nothing; developers cannot read violations.
    let (status, _) = app
        .as_(tokens::PAYMENTS_DEV)
        .get("/api/policy/v1/violations")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, page) = app
        .as_(tokens::ADMIN)
        .get("/api/policy/v1/violations")
        .await;
    assert_eq!(page["total"], 0);
}

#[tokio::test]
async fn policies_that_do_not_compile_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.rego"),
        "package main\n\ndeny contains msg if {\n  msg := \n}\n",
    )
    .unwrap();
    let config = paved_core::config::Config::from_lookup(|k| match k {
        "PAVED_DATABASE_URL" => Some(format!("sqlite://{}/p.db", dir.path().display())),
        "PAVED_OIDC_ISSUER" => Some("http://127.0.0.1:9".into()),
        "PAVED_OIDC_CLIENT_ID" => Some("paved".into()),
        "PAVED_OIDC_CLIENT_SECRET" => Some("s".into()),
        "PAVED_POLICY_DIRS" => Some(dir.path().display().to_string()),
        _ => None,
    })
    .unwrap();
    let err = paved_server::AppState::build(config)
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("bad.rego"), "{err}");
    let missing = paved_core::config::Config::from_lookup(|k| match k {
        "PAVED_OIDC_ISSUER" => Some("http://127.0.0.1:9".into()),
        "PAVED_OIDC_CLIENT_ID" => Some("paved".into()),
        "PAVED_OIDC_CLIENT_SECRET" => Some("s".into()),
        "PAVED_POLICY_DIRS" => Some("/nonexistent/policies".into()),
        _ => None,
    });
    assert!(missing
        .unwrap_err()
        .to_string()
        .contains("PAVED_POLICY_DIRS"));
}

#[tokio::test]
async fn each_policy_is_a_capability_with_its_owner_and_an_evaluation_slo() {
    let app = app().await;
    for _ in 0..3 {
        admit(&app, &fixture("pod-create-allowed.json")).await;
    }
    app.state.core.policies.log.flush().await;
    let (status, list) = app
        .as_(tokens::PAYMENTS_DEV)
        .get("/api/outcomes/v1/capabilities")
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let policy = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "policy:no-raw-openai-api-key")
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(policy["kind"], "policy");
    assert_eq!(policy["owner"], "platform");
    assert_eq!(policy["link"], "/policies");
    let slo = &policy["slos"][0];
    assert_eq!(slo["id"], "evaluation_success");
    assert_eq!(slo["total"], 3);
    assert_eq!(slo["good"], 3);
    assert!(policy["cost_controls"][0]
        .as_str()
        .unwrap()
        .contains("deny at admission"));
    // Owner labels apply to Deployments only: the Pods did not count for it.
    let labels = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "policy:owner-and-team-labels")
        .unwrap();
    assert_eq!(labels["slos"][0]["total"], 0);
    assert!(labels["cost_controls"][0]
        .as_str()
        .unwrap()
        .contains("warn at admission"));
}

#[tokio::test]
async fn services_with_secrets_must_be_injected_by_vault() {
    let app = app().await;
    let deployment = |annotations: Value| {
        json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "v-1", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                "operation": "CREATE", "namespace": "payments",
                "object": {"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": "chat", "namespace": "payments", "labels": {"owner": "payments", "team": "payments"}},
                    "spec": {"selector": {"matchLabels": {"app": "chat"}}, "template": {
                        "metadata": {"labels": {"app": "chat"}, "annotations": annotations},
                        "spec": {"serviceAccountName": "chat", "securityContext": {"runAsNonRoot": true},
                            "containers": [{"name": "app", "image": "registry.example.com/chat:1.4.2",
                                "resources": {"requests": {"cpu": "1m", "memory": "1Mi"}, "limits": {"cpu": "1m", "memory": "1Mi"}}}]}}}}}
        })
    };
    // No service has secrets yet: nothing to require.
    assert_eq!(
        admit(&app, &deployment(json!({}))).await["response"]["allowed"],
        true
    );
    // Paved provisions chat's secrets (its role binds payments/chat).
    sqlx::query(
        "INSERT INTO secret_access (team, holder, policy_name, role_name, namespace, service_account, last_attempt_at)
         VALUES ('payments', 'chat', 'paved__payments__chat', 'paved__payments__chat', 'payments', 'chat', 1)",
    )
    .execute(&app.state.core.db)
    .await
    .unwrap();
    app.state
        .core
        .policies
        .refresh_parameters(&app.state.core.db)
        .await
        .unwrap();
    let answer = admit(&app, &deployment(json!({}))).await;
    assert_eq!(answer["response"]["allowed"], false);
    assert!(answer["response"]["status"]["message"].as_str().unwrap().starts_with(
        "[vault-injection-for-secrets] Deployment chat runs as service account chat of service chat, which has secrets in Paved"
    ), "{answer}");
    let injected = json!({"vault.hashicorp.com/agent-inject": "true", "vault.hashicorp.com/role": "paved__payments__chat"});
    assert_eq!(
        admit(&app, &deployment(injected)).await["response"]["allowed"],
        true
    );
    // The bundle CI downloads carries the same list.
    let (_, bundle) = app
        .as_(tokens::PAYMENTS_DEV)
        .get("/api/policy/v1/bundle")
        .await;
    let constraint = bundle["constraints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["metadata"]["name"] == "vault-injection-for-secrets")
        .unwrap();
    assert_eq!(
        constraint["spec"]["parameters"]["services"][0]["role"],
        "paved__payments__chat"
    );
}

#[tokio::test]
async fn policies_reload_and_a_broken_one_leaves_them_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let copy = |from: &str| {
        let src = format!("{}/{from}", policies_dir());
        let dst = dir.path().join(from);
        std::fs::create_dir_all(&dst).unwrap();
        for f in ["template.yaml", "constraint.yaml"] {
            std::fs::copy(format!("{src}/{f}"), dst.join(f)).unwrap();
        }
    };
    copy("image-tags");
    let app = test_app(&[("PAVED_POLICY_DIRS", &dir.path().display().to_string())]).await;
    let denied = fixture("pod-create-denied.json");
    let message = |a: Value| {
        a["response"]["status"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert!(!message(admit(&app, &denied).await).contains("no-raw-openai-api-key"));
    copy("no-openai-api-key");
    let (status, _) = app
        .as_(tokens::PAYMENTS_LEAD)
        .post("/api/policy/v1/reload", json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app
        .as_(tokens::ADMIN)
        .post("/api/policy/v1/reload", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["policies"], 2);
    assert!(message(admit(&app, &denied).await).contains("no-raw-openai-api-key"));
    // A template that does not compile: refused with its file, the two stay in force.
    std::fs::write(dir.path().join("no-openai-api-key/template.yaml"), "apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata: {name: pavednoopenaiapikey}\nspec:\n  crd: {spec: {names: {kind: PavedNoOpenAIAPIKey}}}\n  targets:\n    - target: admission.k8s.gatekeeper.sh\n      rego: |\n        package x\n        violation[{\"msg\": m}] { m := }\n").unwrap();
    let (status, body) = app
        .as_(tokens::ADMIN)
        .post("/api/policy/v1/reload", json!({}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("pavednoopenaiapikey"),
        "{body}"
    );
    assert!(message(admit(&app, &denied).await).contains("no-raw-openai-api-key"));
}

#[tokio::test]
async fn someone_without_a_team_or_role_sees_no_policies() {
    let app = app().await;
    let cookie = app.session_for("newcomer", &[], &[]).await;
    let client = app.with_session(&cookie);
    for uri in [
        "/api/policy/v1/policies",
        "/api/policy/v1/bundle",
        "/api/policy/v1/exceptions",
        "/api/policy/v1/cli/linux-x86_64",
        "/api/policy/v1/violations",
    ] {
        let (status, _) = client.get(uri).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri}");
    }
    let (status, _) = client
        .post("/api/policy/v1/check", json!({"manifests": "kind: Pod\n"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = client.post("/api/policy/v1/reload", json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Their page says so instead of showing policies.
    let response = client.call_json("policy_page_data", json!({})).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}
