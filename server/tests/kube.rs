//! The runtime view and logs over the real router, against a recorded API
//! server on loopback (the lists a cluster answered, replayed over HTTP):
//! who sees what, one cluster read per refresh whatever the number of
//! viewers, an unreachable cluster, and the clusters page.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use common::{test_app, tokens, TestApp};
use serde_json::{json, Value};

const CATALOG: &str = r#"apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: checkout
  annotations:
    backstage.io/kubernetes-id: checkout
    backstage.io/kubernetes-namespace: payments
    paved.dev/kubernetes-cluster: prod-eu
spec:
  type: service
  lifecycle: production
  owner: group:default/payments
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: ledger
  annotations:
    backstage.io/kubernetes-id: ledger
    backstage.io/kubernetes-namespace: payments
    paved.dev/kubernetes-cluster: gone
spec:
  type: service
  lifecycle: production
  owner: group:default/payments
---
# Team search's component points at a namespace that is not its own.
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: sneaky
  annotations:
    backstage.io/kubernetes-id: checkout
    backstage.io/kubernetes-namespace: payments
    paved.dev/kubernetes-cluster: prod-eu
spec:
  type: service
  lifecycle: production
  owner: group:default/search
---
# A selector that only leaves things out would select everything.
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: everything
  annotations:
    backstage.io/kubernetes-label-selector: "!canary"
    backstage.io/kubernetes-namespace: payments
    paved.dev/kubernetes-cluster: prod-eu
spec:
  type: service
  lifecycle: production
  owner: group:default/payments
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: docs-site
spec:
  type: website
  lifecycle: production
  owner: group:default/search
"#;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../core/src/kube/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": format!("{kind}List"), "metadata": {"resourceVersion": "1"}, "items": items})
}

/// A recorded API server: the lists the cluster answered, and request counts.
async fn recorded_cluster(requests: Arc<AtomicUsize>) -> String {
    let mut pods = fixture("pods-crashloop.json")["items"]
        .as_array()
        .unwrap()
        .clone();
    pods.push(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "billing-1", "namespace": "payments", "labels": {"backstage.io/kubernetes-id": "billing"}},
        "spec": {"containers": [{"name": "app", "image": "billing:1"}]},
        "status": {"phase": "Running"}}));
    let deployment = fixture("deployment-healthy.json");
    let event = json!({"apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "checkout-7d9c8b6f5d-x2k9p.17a", "namespace": "payments"},
        "involvedObject": {"kind": "Pod", "name": "checkout-7d9c8b6f5d-x2k9p", "namespace": "payments"},
        "reason": "BackOff", "message": "Back-off restarting failed container app", "type": "Warning", "count": 12,
        "lastTimestamp": "2025-06-12T10:29:00Z"});
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (pods, deployment, event) = (pods.clone(), deployment.clone(), event.clone());
        let requests = requests.clone();
        async move {
            requests.fetch_add(1, Ordering::SeqCst);
            let path = req.uri().path().to_owned();
            let query = req.uri().query().unwrap_or("").to_owned();
            let body = match path.as_str() {
                "/version" => json!({"major": "1", "minor": "33", "gitVersion": "v1.33.1"}),
                "/api/v1/namespaces/payments/pods" => list("Pod", pods),
                "/apis/apps/v1/namespaces/payments/deployments" => list("Deployment", vec![deployment]),
                "/api/v1/namespaces/payments/events" => list("Event", vec![event]),
                p if p.starts_with("/api/v1/namespaces/payments/pods/") => {
                    let rest = &p["/api/v1/namespaces/payments/pods/".len()..];
                    if let Some(pod) = rest.strip_suffix("/log") {
                        assert!(query.contains("container=app"), "{query}");
                        let text = if query.contains("previous=true") {
                            format!("{pod}: panic: connection refused\n")
                        } else {
                            "starting\nlistening on :8080\n".to_owned()
                        };
                        return (StatusCode::OK, text).into_response();
                    }
                    match pods.iter().find(|p| p["metadata"]["name"] == rest) {
                        Some(p) => p.clone(),
                        None => {
                            return (StatusCode::NOT_FOUND, axum::Json(json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                "reason": "NotFound", "code": 404, "message": format!("pods \"{rest}\" not found")}))).into_response()
                        }
                    }
                }
                _ => list("Item", Vec::new()),
            };
            axum::Json(body).into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

use axum::response::IntoResponse;

fn kubeconfig(server: &str) -> String {
    format!("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\nusers:\n- name: u\n  user:\n    token: recorded\ncurrent-context: c\n")
}

struct Fixture {
    app: TestApp,
    requests: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

async fn with_clusters() -> Fixture {
    let requests = Arc::new(AtomicUsize::new(0));
    let server = recorded_cluster(requests.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("catalog-info.yaml"), CATALOG).unwrap();
    std::fs::write(dir.path().join("prod.kubeconfig"), kubeconfig(&server)).unwrap();
    // Nothing listens on port 9: a cluster that cannot be reached.
    std::fs::write(
        dir.path().join("gone.kubeconfig"),
        kubeconfig("http://127.0.0.1:9"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("clusters.yaml"),
        "clusters:\n- name: prod-eu\n  kubeconfig: prod.kubeconfig\n  production: true\n- name: gone\n  kubeconfig: gone.kubeconfig\n",
    )
    .unwrap();
    let root = dir.path().display().to_string();
    let location = format!("file:{}/catalog-info.yaml", root);
    let clusters = format!("{root}/clusters.yaml");
    let app = test_app(&[
        ("PAVED_CATALOG_FILE_ROOTS", root.as_str()),
        ("PAVED_CATALOG_LOCATIONS", location.as_str()),
        ("PAVED_KUBE_CLUSTERS", clusters.as_str()),
        ("PAVED_KUBE_TIMEOUT_SECONDS", "2"),
    ])
    .await;
    Fixture {
        app,
        requests,
        _dir: dir,
    }
}

const CHECKOUT: &str = "/api/kube/v1/entities/component/default/checkout";

#[tokio::test]
async fn the_owning_team_sees_problems_events_and_logs_others_see_the_summary() {
    let f = with_clusters().await;
    let (status, view) = f
        .app
        .as_(tokens::PAYMENTS_DEV)
        .get(&format!("{CHECKOUT}/runtime"))
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["state"], "ok");
    let clusters = view["clusters"].as_array().unwrap();
    assert_eq!(
        clusters.len(),
        1,
        "only the cluster the entity names: {view}"
    );
    let c = &clusters[0];
    assert_eq!(c["cluster"], "prod-eu");
    assert_eq!(c["state"], "ok");
    // Three crash-looping pods of one ReplicaSet: one problem, counted.
    let crash = c["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["code"] == "CrashLoopBackOff")
        .expect("a crash loop");
    assert_eq!(crash["count"], 3);
    assert!(
        crash["suggestion"].as_str().unwrap().contains("previous"),
        "{crash}"
    );
    // The selector keeps the other service's pod out.
    let pods: Vec<&str> = c["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(pods.len(), 3, "{pods:?}");
    assert!(!pods.contains(&"billing-1"));
    assert_eq!(c["workloads"][0]["name"], "checkout");
    assert_eq!(c["events"][0]["reason"], "BackOff");
    assert_eq!(c["can_read_logs"], true);

    // Another team: the workload summary, no events, no logs.
    let (status, other) = f
        .app
        .as_(tokens::SEARCH_DEV)
        .get(&format!("{CHECKOUT}/runtime"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let c = &other["clusters"][0];
    assert!(c["events"].is_null(), "{c}");
    assert_eq!(c["can_read_logs"], false);
    assert_eq!(
        c["problems"].as_array().unwrap().len(),
        view["clusters"][0]["problems"].as_array().unwrap().len()
    );

    let logs =
        format!("{CHECKOUT}/logs?cluster=prod-eu&pod=checkout-7d9c8b6f5d-x2k9p&previous=true");
    let (status, body) = f.app.as_(tokens::SEARCH_DEV).get(&logs).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = f.app.as_(tokens::PAYMENTS_DEV).get(&logs).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["previous"], true);
    assert_eq!(body["container"], "app");
    assert_eq!(
        body["lines"][0],
        "checkout-7d9c8b6f5d-x2k9p: panic: connection refused"
    );
    // A pod of another service in the same namespace is not this entity's.
    let (status, _) = f
        .app
        .as_(tokens::PAYMENTS_DEV)
        .get(&format!("{CHECKOUT}/logs?cluster=prod-eu&pod=billing-1"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = f
        .app
        .as_(tokens::PAYMENTS_DEV)
        .get(&format!(
            "{CHECKOUT}/logs?cluster=prod-eu&pod=checkout-7d9c8b6f5d-x2k9p&container=sidecar"
        ))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn fifty_viewers_cost_the_cluster_one_read_per_refresh() {
    let f = with_clusters().await;
    let before = f.requests.load(Ordering::SeqCst);
    let views = futures_util::future::join_all((0..50).map(|i| {
        let app = &f.app;
        async move {
            let token = if i % 2 == 0 {
                tokens::PAYMENTS_DEV
            } else {
                tokens::SEARCH_DEV
            };
            app.as_(token).get(&format!("{CHECKOUT}/runtime")).await
        }
    }))
    .await;
    assert!(views
        .iter()
        .all(|(s, v)| *s == StatusCode::OK && v["clusters"][0]["state"] == "ok"));
    // One refresh: one list per kind of object (10), whatever the viewers.
    assert_eq!(f.requests.load(Ordering::SeqCst) - before, 10);
    assert_eq!(
        f.app.state.core.kube.cache.refreshes.load(Ordering::SeqCst),
        1
    );
}

#[tokio::test]
async fn an_unreachable_cluster_is_a_clear_state_and_admins_see_each_clusters_health() {
    let f = with_clusters().await;
    let (status, view) = f
        .app
        .as_(tokens::PAYMENTS_DEV)
        .get("/api/kube/v1/entities/component/default/ledger/runtime")
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let c = &view["clusters"][0];
    assert_eq!(c["cluster"], "gone");
    assert_eq!(c["state"], "unreachable");
    assert!(
        c["message"].as_str().unwrap().contains("cannot be reached"),
        "{c}"
    );

    // An entity that names no workload says what to do.
    let (_, none) = f
        .app
        .as_(tokens::SEARCH_DEV)
        .get("/api/kube/v1/entities/component/default/docs-site/runtime")
        .await;
    assert_eq!(none["state"], "not-deployed");
    assert!(none["message"].as_str().unwrap().contains("kube:apply"));

    let (status, _) = f
        .app
        .as_(tokens::PAYMENTS_LEAD)
        .get("/api/kube/v1/clusters")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, list) = f.app.as_(tokens::ADMIN).get("/api/kube/v1/clusters").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let by_name = |n: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("prod-eu")["state"], "ok");
    assert_eq!(by_name("prod-eu")["version"], "v1.33.1");
    assert_eq!(by_name("prod-eu")["production"], true);
    assert_eq!(by_name("gone")["state"], "unreachable");
    assert!(
        by_name("gone")["message"]
            .as_str()
            .unwrap()
            .contains("reach"),
        "{list}"
    );
}

#[tokio::test]
async fn without_clusters_the_view_says_how_to_connect_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("catalog-info.yaml"), CATALOG).unwrap();
    let root = dir.path().display().to_string();
    let location = format!("file:{root}/catalog-info.yaml");
    let app = test_app(&[
        ("PAVED_CATALOG_FILE_ROOTS", root.as_str()),
        ("PAVED_CATALOG_LOCATIONS", location.as_str()),
    ])
    .await;
    let (status, body) = app
        .as_(tokens::PAYMENTS_DEV)
        .get(&format!("{CHECKOUT}/runtime"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "none");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("PAVED_KUBE_CLUSTERS"));
    let (status, _) = app
        .as_(tokens::PAYMENTS_DEV)
        .get("/api/kube/v1/entities/component/default/nothing/runtime")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, list) = app.as_(tokens::ADMIN).get("/api/kube/v1/clusters").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn annotations_alone_never_open_another_namespaces_events_or_logs() {
    let f = with_clusters().await;
    // Team search's component points at payments' namespace: its members
    // see the summary, never events or logs.
    let (status, view) = f
        .app
        .as_(tokens::SEARCH_DEV)
        .get("/api/kube/v1/entities/component/default/sneaky/runtime")
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let c = &view["clusters"][0];
    assert_eq!(c["pods"].as_array().unwrap().len(), 3, "{c}");
    assert!(c["events"].is_null(), "{c}");
    assert_eq!(c["can_read_logs"], false);
    // Nor the cluster's free text in problems.
    assert!(!c.to_string().contains("back-off 5m0s"), "{c}");
    let (status, body) = f
        .app
        .as_(tokens::SEARCH_DEV)
        .get("/api/kube/v1/entities/component/default/sneaky/logs?cluster=prod-eu&pod=checkout-7d9c8b6f5d-x2k9p")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let (_, view) = f
        .app
        .as_(tokens::PAYMENTS_DEV)
        .get("/api/kube/v1/entities/component/default/everything/runtime")
        .await;
    assert_eq!(view["clusters"][0]["state"], "invalid", "{view}");
    assert!(view["clusters"][0]["pods"].as_array().unwrap().is_empty());

    // Names that would change the API server's URL are refused.
    for pod in ["..", "a%2Fb", "x%3Fprevious%3Dtrue", "UPPER"] {
        let (status, _) = f
            .app
            .as_(tokens::PAYMENTS_DEV)
            .get(&format!("{CHECKOUT}/logs?cluster=prod-eu&pod={pod}"))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{pod}");
    }
}
