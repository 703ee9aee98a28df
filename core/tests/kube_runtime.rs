//! The runtime view's reads against a recorded API conversation (kube's
//! `tower_test` mock): exactly one list per kind of object, namespaced, with
//! no selector (the view filters in memory, so every entity in the
//! namespace shares the read), and nothing more however many read it.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;
use paved_core::kube::cluster::Clusters;
use paved_core::kube::config::{ClusterConfig, Credentials};
use paved_core::kube::runtime::{self, RuntimeCache, Selector};
use serde_json::json;

fn cluster() -> ClusterConfig {
    ClusterConfig {
        name: "prod-eu".into(),
        credentials: Credentials::InCluster,
        teams: vec!["*".into()],
        namespace: "{team}".into(),
        production: true,
        environment: "production".into(),
        vault_auth_mount: None,
    }
}

fn list(kind: &str, items: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": format!("{kind}List"), "metadata": {"resourceVersion": "7"}, "items": items})
}

#[tokio::test]
async fn one_read_is_ten_namespaced_lists_shared_by_every_viewer() {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let recorded = seen.clone();
    let server = tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            assert_eq!(request.method(), http::Method::GET);
            let uri = request.uri().to_string();
            recorded.lock().unwrap().push(uri.clone());
            let path = request.uri().path().to_owned();
            let body = match path.as_str() {
                "/api/v1/namespaces/payments/pods" => list(
                    "Pod",
                    json!([
                        {"metadata": {"name": "web-1", "namespace": "payments", "labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "app", "image": "web:1"}]},
                         "status": {"phase": "Running", "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "image": "web:1", "imageID": ""}]}},
                        {"metadata": {"name": "db-1", "namespace": "payments", "labels": {"app": "db"}},
                         "spec": {"containers": [{"name": "db", "image": "db:1"}]}, "status": {"phase": "Running"}}
                    ]),
                ),
                // A kind RBAC does not grant reads as empty.
                "/apis/batch/v1/namespaces/payments/cronjobs" => {
                    let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
                        "message": "cronjobs.batch is forbidden: User \"paved\" cannot list resource \"cronjobs\""});
                    send.send_response(
                        Response::builder()
                            .status(403)
                            .body(Body::from(serde_json::to_vec(&status).unwrap()))
                            .unwrap(),
                    );
                    continue;
                }
                _ => list("Item", json!([])),
            };
            send.send_response(
                Response::builder()
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&body).unwrap()))
                    .unwrap(),
            );
        }
    });
    let client = kube::Client::new(service, "default");
    let clusters = Clusters::default().with_client(cluster(), client);
    let cluster = clusters.get("prod-eu").unwrap();
    let cache = RuntimeCache::default();
    let reads = futures_util::future::join_all(
        (0..25).map(|_| cache.read(cluster, "payments", Duration::from_secs(60))),
    )
    .await;
    assert!(reads.iter().all(|r| r.error.is_none() && r.data.is_some()));
    let seen_now: BTreeSet<String> = seen.lock().unwrap().iter().cloned().collect();
    let expected: BTreeSet<String> = [
        "/api/v1/namespaces/payments/pods",
        "/apis/apps/v1/namespaces/payments/deployments",
        "/apis/apps/v1/namespaces/payments/statefulsets",
        "/apis/apps/v1/namespaces/payments/daemonsets",
        "/apis/batch/v1/namespaces/payments/jobs",
        "/apis/batch/v1/namespaces/payments/cronjobs",
        "/apis/autoscaling/v2/namespaces/payments/horizontalpodautoscalers",
        "/api/v1/namespaces/payments/services",
        "/apis/networking.k8s.io/v1/namespaces/payments/ingresses",
        "/api/v1/namespaces/payments/events",
    ]
    .into_iter()
    // At most MAX_OBJECTS of each kind.
    .map(|p| format!("{p}?&limit={}", runtime::MAX_OBJECTS))
    .collect();
    assert_eq!(seen.lock().unwrap().len(), 10, "{seen_now:#?}");
    assert_eq!(seen_now, expected);
    assert_eq!(cache.refreshes.load(std::sync::atomic::Ordering::SeqCst), 1);

    // The view filters the shared read by the entity's selector.
    let snapshot = reads[0].data.clone().unwrap();
    let selector = Selector::parse("app=web").unwrap();
    let view = runtime::view(
        "prod-eu",
        "payments",
        "app=web",
        &selector,
        &snapshot,
        false,
        jiff::Timestamp::now(),
    );
    assert_eq!(view.pods.len(), 1);
    assert_eq!(view.pods[0].name, "web-1");
    assert_eq!(view.pods[0].ready, "1/1");
    assert!(view.events.is_none() && !view.can_read_logs);
    drop(clusters);
    server.await.unwrap();
}
