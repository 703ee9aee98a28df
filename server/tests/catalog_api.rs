//! The Backstage-compatible catalog API over the real router, with Backstage's
//! example catalog from ../shared/conformance.

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::{json, Value};

const ADMIN: &str = tokens::ADMIN;
const READER: &str = tokens::PAYMENTS_DEV;

fn examples() -> String {
    // PAVED_CONFORMANCE_DIR (set by scripts/test.sh), else ../shared/conformance beside the project.
    let base = std::env::var_os("PAVED_CONFORMANCE_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance")
        });
    base.join("backstage-catalog-examples")
        .canonicalize()
        .expect("the conformance material must exist: set PAVED_CONFORMANCE_DIR or keep ../shared/conformance beside the project")
        .display()
        .to_string()
}

async fn app() -> TestApp {
    let roots = examples();
    test_app(&[("PAVED_CATALOG_FILE_ROOTS", &roots)]).await
}

async fn register(app: &TestApp, file: &str) -> Value {
    let response = app
        .as_(ADMIN)
        .response(
            "POST",
            "/api/catalog/locations",
            Some(json!({"type": "file", "target": format!("{}/{file}", examples())})),
        )
        .await;
    assert_status(&response, StatusCode::CREATED);
    body_json(response).await
}

#[tokio::test]
async fn reading_needs_sign_in_and_writing_needs_a_platform_admin() {
    let app = app().await;
    assert_status(
        &app.send(get("/api/catalog/entities")).await,
        StatusCode::UNAUTHORIZED,
    );
    assert_status(
        &app.as_(READER)
            .response("GET", "/api/catalog/entities", None)
            .await,
        StatusCode::OK,
    );

    let target = json!({"type": "file", "target": format!("{}/all.yaml", examples())});
    let refused = app
        .as_(READER)
        .response("POST", "/api/catalog/locations", Some(target.clone()))
        .await;
    assert_status(&refused, StatusCode::FORBIDDEN);
    assert_eq!(body_json(refused).await["error"]["name"], "NotAllowedError");

    let created = register(&app, "all.yaml").await;
    let id = created["location"]["id"].as_str().unwrap().to_owned();
    let uid = body_json(
        app.as_(READER)
            .response(
                "GET",
                "/api/catalog/entities/by-name/component/default/petstore",
                None,
            )
            .await,
    )
    .await["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    for (method, uri, body) in [
        (
            "DELETE",
            format!("/api/catalog/entities/by-uid/{uid}"),
            None,
        ),
        ("DELETE", format!("/api/catalog/locations/{id}"), None),
        ("POST", "/api/catalog/refresh".to_string(), Some(json!({}))),
    ] {
        let response = app.as_(READER).response(method, &uri, body.clone()).await;
        assert_status(&response, StatusCode::FORBIDDEN);
        assert_status(
            &app.as_(ADMIN).response(method, &uri, body).await,
            if method == "DELETE" {
                StatusCode::NO_CONTENT
            } else {
                StatusCode::OK
            },
        );
    }
    // Anyone signed in may ask for an entity's source to be re-read.
    register(&app, "components/petstore-component.yaml").await;
    let ask = app
        .as_(READER)
        .response(
            "POST",
            "/api/catalog/refresh",
            Some(json!({"entityRef": "component:default/petstore"})),
        )
        .await;
    assert_status(&ask, StatusCode::OK);

    let log = sqlx::query_scalar::<_, String>("SELECT action FROM audit_log ORDER BY id")
        .fetch_all(&app.state.core.db)
        .await
        .unwrap();
    assert!(log.contains(&"catalog.location.register".to_string()));
    assert!(log.contains(&"catalog.location.delete".to_string()));
    assert!(log.contains(&"catalog.entity.delete".to_string()));
}

#[tokio::test]
async fn list_filters_fields_and_order() {
    let app = app().await;
    register(&app, "all.yaml").await;
    let response = app
        .as_(READER).response("GET", "/api/catalog/entities?filter=kind=component,spec.type=website&fields=metadata.name,kind&order=asc:metadata.name", None)
        .await;
    assert_status(&response, StatusCode::OK);
    let items = body_json(response).await;
    let items = items.as_array().unwrap();
    assert!(!items.is_empty());
    for item in items {
        assert_eq!(
            item.as_object().unwrap().len(),
            2,
            "only the asked fields: {item}"
        );
        assert_eq!(item["kind"], "Component");
    }
    let bad = app
        .as_(READER)
        .response("GET", "/api/catalog/entities?limit=-1", None)
        .await;
    assert_status(&bad, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn by_query_pages_with_cursors_and_searches() {
    let app = app().await;
    register(&app, "all.yaml").await;
    let first = body_json(app.as_(READER).response("GET", "/api/catalog/entities/by-query?filter=kind=component&limit=5&orderField=metadata.name,asc", None).await).await;
    let total = first["totalItems"].as_i64().unwrap();
    assert!(total > 5);
    let mut names: Vec<String> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    let mut cursor = first["pageInfo"]["nextCursor"].as_str().map(str::to_owned);
    while let Some(c) = cursor {
        let page = body_json(
            app.as_(READER)
                .response(
                    "GET",
                    &format!("/api/catalog/entities/by-query?cursor={c}&limit=5"),
                    None,
                )
                .await,
        )
        .await;
        names.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["metadata"]["name"].as_str().unwrap().to_owned()),
        );
        assert!(page["pageInfo"]["prevCursor"].is_string());
        cursor = page["pageInfo"]["nextCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(
        names.len() as i64,
        total,
        "every component exactly once across pages"
    );
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| n.to_lowercase());
    assert_eq!(names, sorted);

    let search = body_json(
        app.as_(READER)
            .response(
                "GET",
                "/api/catalog/entities/by-query?fullTextFilterTerm=wayback&limit=50",
                None,
            )
            .await,
    )
    .await;
    assert!(search["totalItems"].as_i64().unwrap() >= 3);
    let bad = app
        .as_(READER)
        .response(
            "GET",
            "/api/catalog/entities/by-query?cursor=not-ours",
            None,
        )
        .await;
    assert_status(&bad, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn lookups_refs_facets_and_validation() {
    let app = app().await;
    register(&app, "all.yaml").await;
    register(&app, "acme/org.yaml").await;
    let petstore = body_json(
        app.as_(READER)
            .response(
                "GET",
                "/api/catalog/entities/by-name/Component/default/petstore",
                None,
            )
            .await,
    )
    .await;
    let uid = petstore["metadata"]["uid"].as_str().unwrap();
    let by_uid = body_json(
        app.as_(READER)
            .response("GET", &format!("/api/catalog/entities/by-uid/{uid}"), None)
            .await,
    )
    .await;
    assert_eq!(by_uid["metadata"]["name"], "petstore");
    assert!(by_uid["relations"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["type"] == "ownedBy"));
    assert_status(
        &app.as_(READER)
            .response(
                "GET",
                "/api/catalog/entities/by-name/component/default/nope",
                None,
            )
            .await,
        StatusCode::NOT_FOUND,
    );

    let refs = body_json(
        app.as_(READER).response("POST", "/api/catalog/entities/by-refs", Some(json!({"entityRefs": ["component:default/petstore", "component:default/missing", "group:team-a"], "fields": ["metadata.name"]})))
            .await,
    )
    .await;
    assert_eq!(
        refs["items"],
        json!([{"metadata": {"name": "petstore"}}, null, {"metadata": {"name": "team-a"}}])
    );

    let facets = body_json(
        app.as_(READER)
            .response(
                "GET",
                "/api/catalog/entity-facets?facet=kind&facet=spec.lifecycle&filter=kind=component",
                None,
            )
            .await,
    )
    .await;
    assert_eq!(facets["facets"]["kind"][0]["value"], "component");
    assert!(facets["facets"]["spec.lifecycle"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["value"] == "production"));

    let invalid = json!({"entity": {"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": "bad name"}, "spec": {}}});
    let response = app
        .as_(READER)
        .response("POST", "/api/catalog/validate-entity", Some(invalid))
        .await;
    assert_status(&response, StatusCode::BAD_REQUEST);
    let errors = body_json(response).await;
    assert!(errors["errors"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["field"] == "metadata.name"));
    let valid = json!({"entity": {"apiVersion": "backstage.io/v1alpha1", "kind": "System", "metadata": {"name": "ok"}, "spec": {"owner": "team-a"}}});
    assert_status(
        &app.as_(READER)
            .response("POST", "/api/catalog/validate-entity", Some(valid))
            .await,
        StatusCode::OK,
    );
}

#[tokio::test]
async fn locations_dry_run_problems_and_openapi() {
    let app = app().await;
    let dry = app
        .as_(ADMIN).response("POST", "/api/catalog/locations?dryRun=true", Some(json!({"type": "file", "target": format!("{}/components/invalid-component.yaml", examples())})))
        .await;
    assert_status(&dry, StatusCode::CREATED);
    let dry = body_json(dry).await;
    assert_eq!(dry["exists"], false);
    assert_eq!(dry["entities"], json!([]));
    assert_eq!(dry["problems"][0]["field"], "metadata.name");
    let listed = body_json(
        app.as_(READER)
            .response("GET", "/api/catalog/locations", None)
            .await,
    )
    .await;
    assert_eq!(listed, json!([]), "a dry run stores nothing");

    let created = register(&app, "components/invalid-component.yaml").await;
    let id = created["location"]["id"].as_str().unwrap();
    assert_eq!(created["location"]["status"], "failed");
    let problems = body_json(
        app.as_(READER)
            .response(
                "GET",
                &format!("/api/catalog/locations/{id}/problems"),
                None,
            )
            .await,
    )
    .await;
    assert!(problems["problems"][0]["message"]
        .as_str()
        .unwrap()
        .contains("invalid component"));

    let twice = app.as_(ADMIN).response("POST", "/api/catalog/locations", Some(json!({"type": "file", "target": format!("{}/components/invalid-component.yaml", examples())}))).await;
    assert_status(&twice, StatusCode::CONFLICT);
    let outside = app
        .as_(ADMIN)
        .response(
            "POST",
            "/api/catalog/locations",
            Some(json!({"type": "file", "target": "/etc/passwd"})),
        )
        .await;
    assert_status(&outside, StatusCode::UNPROCESSABLE_ENTITY);
    let ssrf = app
        .as_(ADMIN)
        .response(
            "POST",
            "/api/catalog/locations",
            Some(json!({"type": "url", "target": "http://169.254.169.254/"})),
        )
        .await;
    assert_status(&ssrf, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body_json(ssrf).await["error"]["message"]
        .as_str()
        .unwrap()
        .contains("PAVED_CATALOG_ALLOWED_HOSTS"));

    let spec = body_json(
        app.as_(READER)
            .response("GET", "/api/catalog/openapi.json", None)
            .await,
    )
    .await;
    // Generated by utoipa, which writes OpenAPI 3.1.
    assert_eq!(spec["openapi"], "3.1.0");
    // Every route the router serves is described.
    for (path, method) in [
        ("/entities", "get"),
        ("/entities/by-query", "get"),
        ("/entities/by-name/{kind}/{namespace}/{name}", "get"),
        ("/entities/by-uid/{uid}", "get"),
        ("/entities/by-uid/{uid}", "delete"),
        ("/entities/by-refs", "post"),
        ("/entity-facets", "get"),
        ("/locations", "get"),
        ("/locations", "post"),
        ("/locations/{id}", "get"),
        ("/locations/{id}", "delete"),
        ("/locations/{id}/problems", "get"),
        ("/validate-entity", "post"),
        ("/refresh", "post"),
    ] {
        assert!(spec["paths"][path][method].is_object(), "{method} {path}");
    }
}

#[tokio::test]
async fn configured_locations_are_read_before_ready() {
    let app = test_app(&[
        ("PAVED_CATALOG_FILE_ROOTS", &examples()),
        (
            "PAVED_CATALOG_LOCATIONS",
            &format!("file:{}/all.yaml", examples()),
        ),
    ])
    .await;
    let ready = app.send(get("/readyz")).await;
    assert_status(&ready, StatusCode::OK);
    assert_eq!(body_json(ready).await["checks"]["catalog"], "ok");
    let locations = paved_core::catalog::store::locations(&app.state.core.db)
        .await
        .unwrap();
    assert_eq!(locations.len(), 1);
    assert_eq!(locations[0].created_by, "system:config");
    assert!(locations[0].entity_count > 10);

    // Before the first pass, the portal says it is not ready yet.
    app.state
        .catalog_ready
        .store(false, std::sync::atomic::Ordering::Release);
    let not_ready = app.send(get("/readyz")).await;
    assert_status(&not_ready, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body_json(not_ready).await["checks"]["catalog"],
        "initial ingestion in progress"
    );
}

#[tokio::test]
async fn only_owners_save_portal_fields_through_the_server_function() {
    use paved_core::auth::TeamRole;
    let app = app().await;
    register(&app, "components/petstore-component.yaml").await;
    let outsider = app
        .session_for("dana", &[("payments", TeamRole::Member)], &[])
        .await;
    let owner = app
        .session_for("cara", &[("team-c", TeamRole::Member)], &[])
        .await;
    let form = "entity_ref=component%3Adefault%2Fpetstore&oncall=%23pets&support_url=https%3A%2F%2Fhelp.example.com&notes=hi";
    let refused = app
        .with_session(&outsider)
        .call("catalog_save_portal_fields", form)
        .await;
    assert_status(&refused, StatusCode::FORBIDDEN);
    let saved = app
        .with_session(&owner)
        .call("catalog_save_portal_fields", form)
        .await;
    assert_status(&saved, StatusCode::OK);
    let fields = paved_core::catalog::portal::get(&app.state.core.db, "component:default/petstore")
        .await
        .unwrap();
    assert_eq!(
        (fields.oncall.as_str(), fields.updated_by.as_deref()),
        ("#pets", Some("user:cara"))
    );
}

#[tokio::test]
async fn catalog_server_functions_check_roles_and_teams() {
    use paved_core::auth::TeamRole;
    let app = app().await;
    let dev = app
        .session_for("dana", &[("payments", TeamRole::Member)], &[])
        .await;
    let target = format!(
        "kind=file&target={}",
        url_encode(&format!("{}/all.yaml", examples()))
    );
    for (name, form) in [
        ("catalog_register_location", target.as_str()),
        ("catalog_import_yaml", "name=x&yaml=kind%3A%20Component"),
        ("team_problems", "team=search"),
    ] {
        let response = app.with_session(&dev).call(name, form).await;
        assert_status(&response, StatusCode::FORBIDDEN);
    }
    assert_status(
        &app.with_session(&dev)
            .call("team_problems", "team=payments")
            .await,
        StatusCode::OK,
    );
    assert!(paved_core::catalog::store::locations(&app.state.core.db)
        .await
        .unwrap()
        .is_empty());
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
