//! `kube:apply` against recorded API conversations (kube's `tower_test`
//! mock-service pattern): every request Paved sends is checked (method,
//! path, query, content type, body) and answered as the API server answers,
//! Status bodies included.

use std::sync::Mutex;
use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;
use paved_core::kube::apply::{self, Level, Options, Plan, Progress};
use serde_json::{json, Value};

type Check = Box<dyn Fn(&Value) + Send + Sync>;

struct Exchange {
    method: &'static str,
    path: String,
    query: Vec<(&'static str, &'static str)>,
    content_type: Option<&'static str>,
    check: Option<Check>,
    status: u16,
    body: Value,
    /// Served again while the next exchange does not match (polling).
    repeat: bool,
}

fn ex(method: &'static str, path: &str, status: u16, body: Value) -> Exchange {
    Exchange {
        method,
        path: path.to_owned(),
        query: Vec::new(),
        content_type: None,
        check: None,
        status,
        body,
        repeat: false,
    }
}

impl Exchange {
    fn query(mut self, q: &[(&'static str, &'static str)]) -> Self {
        self.query = q.to_vec();
        self
    }
    fn apply(mut self, dry_run: bool) -> Self {
        self.content_type = Some("application/apply-patch+yaml");
        self.query = if dry_run {
            vec![("dryRun", "All"), ("fieldManager", "paved")]
        } else {
            vec![("fieldManager", "paved")]
        };
        self
    }
    fn check(mut self, f: impl Fn(&Value) + Send + Sync + 'static) -> Self {
        self.check = Some(Box::new(f));
        self
    }
    fn repeat(mut self) -> Self {
        self.repeat = true;
        self
    }
    fn matches(&self, method: &str, path: &str) -> bool {
        self.method == method && self.path == path
    }
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

/// Serves the conversation; answers the requests it saw, in order.
async fn serve(
    mut handle: tower_test::mock::Handle<Request<Body>, Response<Body>>,
    script: Vec<Exchange>,
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut at = 0;
    while let Some((request, send)) = handle.next_request().await {
        let method = request.method().to_string();
        let path = request.uri().path().to_owned();
        let mut query: Vec<(String, String)> =
            url::form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        query.sort();
        let content_type = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        seen.push(format!("{method} {}", request.uri()));
        if at < script.len()
            && script[at].repeat
            && !script[at].matches(&method, &path)
            && at + 1 < script.len()
        {
            at += 1;
        }
        let Some(exchange) = script.get(at) else {
            panic!(
                "unexpected request after the conversation ended: {method} {}",
                request.uri()
            );
        };
        if exchange.repeat && at + 1 < script.len() && script[at + 1].matches(&method, &path) {
            at += 1;
        }
        let exchange = &script[at];
        assert!(
            exchange.matches(&method, &path),
            "request {}: expected {} {}, got {method} {path}",
            seen.len(),
            exchange.method,
            exchange.path
        );
        let mut expected: Vec<(String, String)> = exchange
            .query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        expected.sort();
        assert_eq!(query, expected, "query of {method} {path}");
        if let Some(ct) = exchange.content_type {
            assert_eq!(
                content_type.as_deref(),
                Some(ct),
                "content type of {method} {path}"
            );
        }
        let body = request.into_body().collect_bytes().await.unwrap();
        if let Some(check) = &exchange.check {
            let value: Value = serde_json::from_slice(&body).expect("a JSON body");
            check(&value);
        }
        let answer = Response::builder()
            .status(exchange.status)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&exchange.body).unwrap()))
            .unwrap();
        send.send_response(answer);
        if !exchange.repeat {
            at += 1;
        }
    }
    let rest: Vec<String> = script[at.min(script.len())..]
        .iter()
        .filter(|e| !e.repeat)
        .map(|e| format!("{} {}", e.method, e.path))
        .collect();
    assert!(rest.is_empty(), "requests never sent: {rest:?}");
    seen
}

#[derive(Default)]
struct Lines(Mutex<Vec<(Level, String)>>);

#[async_trait::async_trait]
impl Progress for Lines {
    async fn line(&self, level: Level, message: &str) {
        self.0.lock().unwrap().push((level, message.to_owned()));
    }
}

impl Lines {
    fn text(&self) -> String {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(l, m)| format!("{l:?}: {m}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn manifests() -> Vec<Value> {
    vec![
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "labels": {"app": "web", "backstage.io/kubernetes-id": "web"}},
               "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                        "template": {"metadata": {"labels": {"app": "web"}},
                                     "spec": {"containers": [{"name": "app", "image": "registry.example/web:1.0"}]}}}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "web"}}),
    ]
}

fn the_plan() -> Plan {
    apply::plan(manifests(), "payments", "payments").unwrap()
}

const NS: &str = "/api/v1/namespaces/payments";
const SA: &str = "/api/v1/namespaces/payments/serviceaccounts/web";
const SVC: &str = "/api/v1/namespaces/payments/services/web";
const DEPLOY: &str = "/apis/apps/v1/namespaces/payments/deployments/web";

fn echo(body: Value, generation: i64) -> Value {
    let mut b = body;
    b["metadata"]["generation"] = json!(generation);
    b["metadata"]["uid"] = json!("0b6f7c1e-0000-4000-8000-000000000001");
    b
}

/// The namespace exists; the dry runs of the namespace, the account and
/// the Service pass; the Deployment's dry run is answered `status`, `body`.
fn refused_dry_run(status: u16, body: Value) -> Vec<Exchange> {
    vec![
        ex(
            "GET",
            NS,
            200,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "payments"}}),
        ),
        ex("PATCH", NS, 200, json!({})).apply(true),
        ex("PATCH", SA, 200, json!({})).apply(true),
        ex("PATCH", SVC, 200, json!({})).apply(true),
        ex("PATCH", DEPLOY, status, body).apply(true),
        // No request after this: the conversation fails on any apply.
    ]
}

fn deployment_status(generation: i64, ready: i32, conditions: Value) -> Value {
    let mut d = echo(manifests()[0].clone(), generation);
    d["metadata"]["namespace"] = json!("payments");
    d["status"] = json!({"observedGeneration": generation, "replicas": 2, "updatedReplicas": 2,
                         "readyReplicas": ready, "availableReplicas": ready, "conditions": conditions});
    d
}

fn options(wait: bool, timeout: Duration) -> Options {
    Options {
        force: false,
        wait,
        timeout,
        poll: Duration::from_millis(100),
    }
}

async fn run(
    script: Vec<Exchange>,
    options: Options,
) -> (Result<apply::Applied, String>, Lines, Vec<String>) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(serve(handle, script));
    let client = kube::Client::new(service, "default");
    let lines = Lines::default();
    let plan = the_plan();
    let result = apply::run(&client, &plan, &options, &lines).await;
    drop(client);
    let seen = server.await.expect("the conversation held");
    (result, lines, seen)
}

#[tokio::test]
async fn a_first_deploy_creates_the_namespace_dry_runs_everything_applies_in_order_and_waits_for_the_rollout(
) {
    let ns_body =
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "payments"}});
    let mut script = vec![
        ex(
            "GET",
            NS,
            404,
            status(404, "NotFound", "namespaces \"payments\" not found"),
        ),
        // Created first so the cluster can dry-run what goes in it.
        ex("PATCH", NS, 201, echo(ns_body.clone(), 0))
            .apply(false)
            .check(|b| {
                assert_eq!(b["metadata"]["labels"]["team"], "payments");
                assert_eq!(
                    b["metadata"]["labels"]["app.kubernetes.io/managed-by"],
                    "paved"
                );
            }),
    ];
    // The dry run of every object, in dependency order, before anything else.
    for (path, kind) in [
        (NS, "Namespace"),
        (SA, "ServiceAccount"),
        (SVC, "Service"),
        (DEPLOY, "Deployment"),
    ] {
        script.push(
            ex(
                "PATCH",
                path,
                200,
                json!({"kind": kind, "metadata": {"name": "web"}}),
            )
            .apply(true)
            .check(move |b| {
                assert_eq!(b["kind"], kind);
                if kind != "Namespace" {
                    assert_eq!(b["metadata"]["namespace"], "payments", "{kind}");
                }
            }),
        );
    }
    for (path, kind) in [(NS, "Namespace"), (SA, "ServiceAccount"), (SVC, "Service")] {
        script.push(
            ex(
                "PATCH",
                path,
                200,
                json!({"kind": kind, "metadata": {"name": "x", "generation": 1}}),
            )
            .apply(false),
        );
    }
    script.push(
        ex("PATCH", DEPLOY, 200, echo(manifests()[0].clone(), 1))
            .apply(false)
            .check(|b| assert!(b.get("status").is_none(), "status is the cluster's")),
    );
    // The rollout: half ready, then ready.
    script.push(ex("GET", DEPLOY, 200, deployment_status(1, 1, json!([]))));
    script.push(ex(
        "GET",
        DEPLOY,
        200,
        deployment_status(1, 2, json!([{"type": "Available", "status": "True"}])),
    ));
    let (result, lines, seen) = run(script, options(true, Duration::from_secs(5))).await;
    let applied = result.unwrap_or_else(|e| panic!("{e}\n{}", lines.text()));
    assert_eq!(
        applied.objects,
        [
            "Namespace/payments",
            "ServiceAccount/web",
            "Service/web",
            "Deployment/web"
        ]
    );
    assert!(applied.ready);
    let log = lines.text();
    assert!(log.contains("does not exist yet"), "{log}");
    assert!(
        log.contains("Server-side dry run passed for 4 objects"),
        "{log}"
    );
    assert!(
        log.contains("Deployment/web: 1 of 2 replicas ready"),
        "{log}"
    );
    assert!(log.contains("Deployment/web rolled out"), "{log}");
    let first_real = seen
        .iter()
        .position(|s| s.starts_with("PATCH") && !s.contains("dryRun"))
        .unwrap();
    assert!(
        seen[first_real].contains("/namespaces/payments?"),
        "{seen:?}"
    );
    let last_dry = seen.iter().rposition(|s| s.contains("dryRun=All")).unwrap();
    let second_real = seen
        .iter()
        .skip(first_real + 1)
        .position(|s| s.starts_with("PATCH") && !s.contains("dryRun"))
        .unwrap()
        + first_real
        + 1;
    assert!(
        last_dry < second_real,
        "every dry run comes before the apply: {seen:?}"
    );
}

#[tokio::test]
async fn an_admission_webhook_refusing_the_dry_run_is_logged_and_nothing_is_applied() {
    let denied = "admission webhook \"validation.gatekeeper.sh\" denied the request: [no-openai-api-key] container app declares OPENAI_API_KEY; use Vault";
    let script = refused_dry_run(403, status(403, "Forbidden", denied));
    let (result, lines, seen) = run(script, options(true, Duration::from_secs(5))).await;
    let err = result.unwrap_err();
    assert!(err.contains("nothing was applied"), "{err}");
    assert!(err.contains("[no-openai-api-key]"), "{err}");
    let log = lines.text();
    assert!(log.contains("dry run refused: Deployment/web: admission webhook \"validation.gatekeeper.sh\" denied"), "{log}");
    assert!(
        seen.iter()
            .all(|s| !s.starts_with("PATCH") || s.contains("dryRun=All")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_field_conflict_names_the_other_manager_and_the_way_out() {
    let conflict = "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas";
    let script = refused_dry_run(409, status(409, "Conflict", conflict));
    let (result, lines, _) = run(script, options(false, Duration::from_secs(5))).await;
    let err = result.unwrap_err();
    assert!(err.contains("kubectl-client-side-apply"), "{err}");
    assert!(err.contains("force: true"), "{err}");
    assert!(lines.text().contains(".spec.replicas"));

    // With force, every apply (dry run included) says so.
    let mut script = vec![ex(
        "GET",
        NS,
        200,
        json!({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "payments"}}),
    )];
    for dry in [true, false] {
        for path in [NS, SA, SVC, DEPLOY] {
            let q: &[(&str, &str)] = if dry {
                &[
                    ("dryRun", "All"),
                    ("fieldManager", "paved"),
                    ("force", "true"),
                ]
            } else {
                &[("fieldManager", "paved"), ("force", "true")]
            };
            script.push(ex("PATCH", path, 200, json!({})).apply(dry).query(q));
        }
    }
    let mut forced = options(false, Duration::from_secs(5));
    forced.force = true;
    let (result, lines, _) = run(script, forced).await;
    assert_eq!(
        result
            .unwrap_or_else(|e| panic!("{e}\n{}", lines.text()))
            .objects
            .len(),
        4
    );
}

#[tokio::test]
async fn a_rollout_that_never_becomes_ready_times_out_with_its_events_and_problems_in_the_log() {
    let mut script = vec![ex(
        "GET",
        NS,
        200,
        json!({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "payments"}}),
    )];
    for dry in [true, false] {
        for path in [NS, SA, SVC, DEPLOY] {
            script.push(ex("PATCH", path, 200, json!({"metadata": {"generation": 1}})).apply(dry));
        }
    }
    script.push(
        ex(
            "GET",
            DEPLOY,
            200,
            deployment_status(
                1,
                0,
                json!([{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}]),
            ),
        )
        .repeat(),
    );
    let pod = json!({"metadata": {"name": "web-5d9c7b6f4-x2x7q", "namespace": "payments", "labels": {"app": "web"},
                                  "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d9c7b6f4", "uid": "u", "controller": true}]},
                     "spec": {"containers": [{"name": "app", "image": "registry.example/web:1.0"}]},
                     "status": {"phase": "Pending", "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0,
                        "image": "registry.example/web:1.0", "imageID": "",
                        "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"registry.example/web:1.0\""}}}]}});
    script.push(
        ex(
            "GET",
            "/api/v1/namespaces/payments/pods",
            200,
            json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [pod]}),
        )
        .query(&[("labelSelector", "app=web")]),
    );
    script.push(ex("GET", "/api/v1/namespaces/payments/events", 200, json!({"apiVersion": "v1", "kind": "EventList", "metadata": {}, "items": [
        {"metadata": {"name": "web-5d9c7b6f4-x2x7q.1", "namespace": "payments"}, "type": "Warning", "reason": "Failed", "count": 4,
         "message": "Failed to pull image \"registry.example/web:1.0\": not found",
         "lastTimestamp": "2026-12-07T01:00:00Z",
         "involvedObject": {"kind": "Pod", "name": "web-5d9c7b6f4-x2x7q", "namespace": "payments"}},
        {"metadata": {"name": "other.1", "namespace": "payments"}, "type": "Warning", "reason": "BackOff",
         "message": "not ours", "involvedObject": {"kind": "Pod", "name": "billing-1", "namespace": "payments"}}
    ]})));
    let (result, lines, seen) = run(script, options(true, Duration::from_millis(500))).await;
    let err = result.unwrap_err();
    assert!(err.contains("Deployment/web was not ready within"), "{err}");
    assert!(err.contains("0 of 2 replicas ready"), "{err}");
    let log = lines.text();
    assert!(
        log.contains("event Failed on Pod/web-5d9c7b6f4-x2x7q: Failed to pull image"),
        "{log}"
    );
    assert!(log.contains("(×4)"), "{log}");
    assert!(!log.contains("not ours"), "{log}");
    assert!(log.contains("problem ImagePullBackOff"), "{log}");
    // It polled more than once and logged the unchanged state once.
    assert!(
        seen.iter()
            .filter(|s| s.starts_with("GET /apis/apps/v1"))
            .count()
            >= 3,
        "{seen:?}"
    );
    assert_eq!(log.matches("0 of 2 replicas ready").count(), 1, "{log}");
}

#[tokio::test]
async fn a_custom_kind_is_found_through_discovery_and_a_cluster_wide_one_is_refused() {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let script = vec![ex(
        "GET",
        "/apis/example.com/v1",
        200,
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "example.com/v1", "resources": [
            {"name": "widgets", "singularName": "widget", "namespaced": false, "kind": "Widget", "verbs": ["get", "patch"]}
        ]}),
    )];
    let server = tokio::spawn(serve(handle, script));
    let client = kube::Client::new(service, "default");
    let plan = apply::plan(
        vec![json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})],
        "payments",
        "payments",
    )
    .unwrap();
    let lines = Lines::default();
    let err = apply::run(
        &client,
        &plan,
        &options(false, Duration::from_secs(1)),
        &lines,
    )
    .await
    .unwrap_err();
    drop(client);
    server.await.unwrap();
    assert!(err.contains("Widget/w is cluster-wide"), "{err}");
}

#[tokio::test]
async fn a_namespace_that_belongs_to_another_team_is_refused_before_any_dry_run() {
    let script = vec![ex(
        "GET",
        NS,
        200,
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": "payments", "labels": {"paved.dev/team": "search"}}}),
    )];
    let (result, _, seen) = run(script, options(false, Duration::from_secs(1))).await;
    let err = result.unwrap_err();
    assert!(err.contains("belongs to team search"), "{err}");
    assert_eq!(seen.len(), 1, "{seen:?}");
}
