//! The `kube-stub` binary over real HTTP, spoken to with reqwest and with a
//! real `kube::Client` built from the kubeconfig it writes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams};
use serde_json::{json, Value};
use tempfile::TempDir;

/// A running stub process, killed on drop.
struct Running {
    child: Child,
    base: String,
    kubeconfig: PathBuf,
    dir: TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `files` (relative path → content) under a fresh directory.
fn tempdir_with(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir
}

/// Starts the binary with `args` (paths may be relative to `dir`).
fn start(dir: TempDir, args: &[&str]) -> Running {
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-stub"))
        .current_dir(dir.path())
        .args(["--addr", "127.0.0.1:0", "--write-kubeconfig"])
        .arg(&kubeconfig)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned();
    Running {
        child,
        base,
        kubeconfig,
        dir,
    }
}

async fn client(stub: &Running) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(&stub.kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

fn api_error(err: kube::Error) -> Box<kube::core::Status> {
    match err {
        kube::Error::Api(status) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn deployment(name: &str, replicas: i32, image: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }))
    .unwrap()
}

async fn create_namespace(client: &kube::Client, name: &str) {
    let ns: Namespace = serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
    )
    .unwrap();
    Api::<Namespace>::all(client.clone())
        .patch(name, &PatchParams::apply("paved"), &Patch::Apply(&ns))
        .await
        .unwrap();
}

async fn pods_of(client: &kube::Client, ns: &str, app: &str) -> Vec<Pod> {
    Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap()
        .items
}

fn name_of(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap()
}

const PODS_YAML: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: payments
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: payments, labels: {app: web, tier: front}}
spec: {containers: [{name: app, image: nginx}]}
status: {phase: Running}
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, namespace: payments, labels: {app: web, tier: front}}
spec: {containers: [{name: app, image: nginx}]}
status: {phase: Running}
---
apiVersion: v1
kind: Pod
metadata: {name: api-1, namespace: payments, labels: {app: api}}
spec: {containers: [{name: app, image: api}]}
status: {phase: Pending}
"#;

const PODS_JSON: &str = r#"{"apiVersion": "v1", "kind": "List", "items": [
  {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-1", "namespace": "search", "labels": {"app": "web", "tier": "front"}},
   "spec": {"containers": [{"name": "app", "image": "nginx"}]}},
  {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "db-0", "namespace": "search", "labels": {"app": "db"}},
   "spec": {"containers": [{"name": "db", "image": "postgres"}]}}
]}"#;

#[tokio::test]
async fn token_version_discovery_status_bodies_and_request_counts() {
    let stub = start(tempdir_with(&[]), &["--token", "s3cret"]);
    let http = reqwest::Client::new();

    let resp = http
        .get(format!("{}/version", stub.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
    );

    let client = client(&stub).await;
    let info = client.apiserver_version().await.unwrap();
    assert_eq!((info.major.as_str(), info.minor.as_str()), ("1", "33"));
    assert_eq!(info.git_version, "v1.33.0-paved-stub");

    let authed = |path: &str| {
        http.get(format!("{}{path}", stub.base))
            .bearer_auth("s3cret")
    };
    let apps: Value = authed("/apis/apps/v1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(apps["kind"], "APIResourceList");
    let deploy = apps["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "deployments")
        .unwrap();
    assert_eq!(deploy["kind"], "Deployment");
    assert_eq!(deploy["singularName"], "deployment");
    assert_eq!(deploy["namespaced"], true);
    assert!(deploy["verbs"]
        .as_array()
        .unwrap()
        .contains(&json!("patch")));
    let core: Value = authed("/api/v1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "pods/log"));
    let gvk = kube::core::GroupVersionKind::gvk("apps", "v1", "Deployment");
    let (resource, caps) = kube::discovery::pinned_kind(&client, &gvk).await.unwrap();
    assert_eq!(
        (resource.plural.as_str(), caps.scope),
        ("deployments", kube::discovery::Scope::Namespaced)
    );
    let widget = kube::core::GroupVersionKind::gvk("example.com", "v1", "Widget");
    assert!(kube::discovery::pinned_kind(&client, &widget)
        .await
        .is_err());
    let groups: Value = authed("/apis").send().await.unwrap().json().await.unwrap();
    assert!(groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["name"] == "rbac.authorization.k8s.io"));

    let missing = authed("/apis/apps/v1/namespaces/default/deployments/x")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.json::<Value>().await.unwrap(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "deployments.apps \"x\" not found", "reason": "NotFound",
               "details": {"name": "x", "group": "apps", "kind": "deployments"}, "code": 404})
    );
    let unknown = authed("/apis/apps/v1/namespaces/default/widgets")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.json::<Value>().await.unwrap()["reason"], "NotFound");
    // `/api/v1/namespaces/{name}` is the Namespace itself.
    let ns: Value = authed("/api/v1/namespaces/default")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (ns["kind"].as_str(), ns["status"]["phase"].as_str()),
        (Some("Namespace"), Some("Active"))
    );

    let counts: Value = http
        .get(format!("{}/_stub/requests", stub.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counts["by_path"]["GET /version"], 2);
    // Once by hand, once by kube's discovery.
    assert_eq!(counts["by_path"]["GET /apis/apps/v1"], 2);
    assert_eq!(counts["by_path"]["GET /apis/example.com/v1"], 1);
    assert_eq!(counts["total"], 10);
    let reset: Value = http
        .post(format!("{}/_stub/requests/reset", stub.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reset, json!({"total": 0, "by_path": {}}));
    Api::<Pod>::namespaced(client.clone(), "default")
        .list(&ListParams::default())
        .await
        .unwrap();
    Api::<Pod>::namespaced(client.clone(), "default")
        .list(&ListParams::default())
        .await
        .unwrap();
    let counts: Value = http
        .get(format!("{}/_stub/requests", stub.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        counts,
        json!({"total": 2, "by_path": {"GET /api/v1/namespaces/default/pods": 2}})
    );
}

#[tokio::test]
async fn fixtures_and_pod_lists_by_label_and_field_selector() {
    let dir = tempdir_with(&[
        ("fixtures/pods.yaml", PODS_YAML),
        ("fixtures/more/search.json", PODS_JSON),
    ]);
    let stub = start(dir, &["--fixtures", "fixtures"]);
    let client = client(&stub).await;
    let payments: Api<Pod> = Api::namespaced(client.clone(), "payments");

    let web = payments
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    let names: Vec<String> = web.items.iter().map(name_of).collect();
    assert_eq!(names, ["web-1", "web-2"]);
    assert!(web.metadata.resource_version.is_some());
    assert_eq!(
        payments
            .list(&ListParams::default().labels("app in (web,api)"))
            .await
            .unwrap()
            .items
            .len(),
        3
    );
    assert_eq!(
        payments
            .list(&ListParams::default().labels("app!=web"))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert_eq!(
        payments
            .list(&ListParams::default().labels("!tier"))
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    let all: Api<Pod> = Api::all(client.clone());
    let fronts = all
        .list(&ListParams::default().labels("tier"))
        .await
        .unwrap();
    let where_: Vec<(String, String)> = fronts
        .items
        .iter()
        .map(|p| (p.metadata.namespace.clone().unwrap(), name_of(p)))
        .collect();
    assert_eq!(
        where_,
        [
            ("payments".into(), "web-1".into()),
            ("payments".into(), "web-2".into()),
            ("search".into(), "web-1".into())
        ]
    );
    let by_field = all
        .list(&ListParams::default().fields("metadata.name=web-1,metadata.namespace=search"))
        .await
        .unwrap();
    assert_eq!(by_field.items.len(), 1);

    // The raw list: kind, resourceVersion, items with apiVersion/kind.
    let raw: Value = reqwest::get(format!("{}/api/v1/namespaces/search/pods", stub.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(raw["kind"], "PodList");
    assert_eq!(raw["apiVersion"], "v1");
    assert!(
        raw["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    assert_eq!(raw["items"][0]["kind"], "Pod");
    assert_eq!(raw["items"][0]["apiVersion"], "v1");
    assert!(raw["items"][0]["metadata"]["uid"].as_str().is_some());
    let bad = reqwest::get(format!(
        "{}/api/v1/pods?fieldSelector=spec.foo%3Dx",
        stub.base
    ))
    .await
    .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(
        bad.json::<Value>().await.unwrap()["message"],
        "field label not supported: spec.foo"
    );
}

#[tokio::test]
async fn server_side_apply_dry_run_stores_nothing_then_creates_deployment_and_pods() {
    let stub = start(tempdir_with(&[]), &[]);
    let client = client(&stub).await;
    create_namespace(&client, "shop").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    let web = deployment("web", 2, "nginx:1.27");

    let dry = deployments
        .patch(
            "web",
            &PatchParams::apply("paved").dry_run(),
            &Patch::Apply(&web),
        )
        .await
        .unwrap();
    assert_eq!(dry.metadata.name.as_deref(), Some("web"));
    assert_eq!(dry.metadata.generation, Some(1));
    assert!(dry.metadata.uid.is_some());
    assert_eq!(
        api_error(deployments.get("web").await.unwrap_err()).code,
        404
    );
    assert!(pods_of(&client, "shop", "web").await.is_empty());

    let created = deployments
        .patch("web", &PatchParams::apply("paved"), &Patch::Apply(&web))
        .await
        .unwrap();
    let managers = created.metadata.managed_fields.clone().unwrap();
    assert_eq!(managers.len(), 1);
    assert_eq!(
        (
            managers[0].manager.as_deref(),
            managers[0].operation.as_deref()
        ),
        (Some("paved"), Some("Apply"))
    );

    let live = deployments.get("web").await.unwrap();
    let status = live.status.clone().unwrap();
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(
        (
            status.replicas,
            status.updated_replicas,
            status.ready_replicas,
            status.available_replicas
        ),
        (Some(2), Some(2), Some(2), Some(2))
    );
    let conditions = status.conditions.unwrap();
    let progressing = conditions
        .iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(
        (progressing.status.as_str(), progressing.reason.as_deref()),
        ("True", Some("NewReplicaSetAvailable"))
    );
    assert!(conditions
        .iter()
        .any(|c| c.type_ == "Available" && c.status == "True"));

    let pods = pods_of(&client, "shop", "web").await;
    assert_eq!(pods.len(), 2);
    let hash = pods[0].metadata.labels.as_ref().unwrap()["pod-template-hash"].clone();
    assert_eq!(hash.len(), 10);
    for pod in &pods {
        let name = name_of(pod);
        assert!(
            name.starts_with(&format!("web-{hash}-")) && name.len() == "web-".len() + 10 + 6,
            "{name}"
        );
        let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.clone()),
            ("ReplicaSet", format!("web-{hash}"))
        );
        let status = pod.status.as_ref().unwrap();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert!(status.container_statuses.as_ref().unwrap()[0].ready);
    }
    let ds: DaemonSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {
            "metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "agent", "image": "agent:1"}]}}},
    }))
    .unwrap();
    let daemonsets: Api<DaemonSet> = Api::namespaced(client.clone(), "shop");
    daemonsets
        .patch("agent", &PatchParams::apply("paved"), &Patch::Apply(&ds))
        .await
        .unwrap();
    let ds_status = daemonsets.get("agent").await.unwrap().status.unwrap();
    assert_eq!(
        (ds_status.desired_number_scheduled, ds_status.number_ready),
        (1, 1)
    );
    assert_eq!(ds_status.observed_generation, Some(1));
    assert_eq!(pods_of(&client, "shop", "agent").await.len(), 1);
    let rs = Api::<ReplicaSet>::namespaced(client.clone(), "shop")
        .get(&format!("web-{hash}"))
        .await
        .unwrap();
    assert_eq!(rs.metadata.owner_references.unwrap()[0].name, "web");

    // Unchanged: same generation, same pods.
    let again = deployments
        .patch("web", &PatchParams::apply("paved"), &Patch::Apply(&web))
        .await
        .unwrap();
    assert_eq!(again.metadata.generation, Some(1));
    let same: Vec<String> = pods_of(&client, "shop", "web")
        .await
        .iter()
        .map(name_of)
        .collect();
    assert_eq!(same, pods.iter().map(name_of).collect::<Vec<_>>());

    // A new image: generation 2, a new ReplicaSet, the old pods gone.
    let v2 = deployment("web", 2, "nginx:1.28");
    let updated = deployments
        .patch("web", &PatchParams::apply("paved"), &Patch::Apply(&v2))
        .await
        .unwrap();
    assert_eq!(updated.metadata.generation, Some(2));
    let new_pods = pods_of(&client, "shop", "web").await;
    assert_eq!(new_pods.len(), 2);
    assert!(new_pods
        .iter()
        .all(|p| p.metadata.labels.as_ref().unwrap()["pod-template-hash"] != hash));

    // Over plain HTTP: 201 on create, 200 on update; fieldManager is required.
    let http = reqwest::Client::new();
    let url = format!("{}/apis/apps/v1/namespaces/shop/deployments/api", stub.base);
    let apply = |query: &'static str| {
        http.patch(format!("{url}{query}"))
            .header("content-type", "application/apply-patch+yaml")
            .body(serde_json::to_string(&deployment("api", 1, "api:1")).unwrap())
            .send()
    };
    assert_eq!(apply("?fieldManager=paved").await.unwrap().status(), 201);
    assert_eq!(apply("?fieldManager=paved").await.unwrap().status(), 200);
    let no_manager = apply("").await.unwrap();
    assert_eq!(no_manager.status(), 422);
    assert_eq!(
        no_manager.json::<Value>().await.unwrap()["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    let yaml =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: fast\n";
    let cm = http
        .patch(format!(
            "{}/api/v1/namespaces/shop/configmaps/settings?fieldManager=paved",
            stub.base
        ))
        .header("content-type", "application/apply-patch+yaml")
        .body(yaml)
        .send()
        .await
        .unwrap();
    assert_eq!(cm.status(), 201);
    assert_eq!(cm.json::<Value>().await.unwrap()["data"]["mode"], "fast");
}

#[tokio::test]
async fn a_conflicting_apply_is_409_until_forced() {
    let stub = start(tempdir_with(&[]), &[]);
    let client = client(&stub).await;
    create_namespace(&client, "shop").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    deployments
        .patch(
            "web",
            &PatchParams::apply("paved"),
            &Patch::Apply(&deployment("web", 2, "nginx")),
        )
        .await
        .unwrap();

    let three = deployment("web", 3, "nginx");
    let err = api_error(
        deployments
            .patch(
                "web",
                &PatchParams::apply("ops-console"),
                &Patch::Apply(&three),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"paved\": .spec.replicas"
    );
    // A dry run meets the same conflict.
    let dry = deployments
        .patch(
            "web",
            &PatchParams::apply("ops-console").dry_run(),
            &Patch::Apply(&three),
        )
        .await
        .unwrap_err();
    assert_eq!(api_error(dry).code, 409);

    let forced = deployments
        .patch(
            "web",
            &PatchParams::apply("ops-console").force(),
            &Patch::Apply(&three),
        )
        .await
        .unwrap();
    assert_eq!(forced.spec.unwrap().replicas, Some(3));
    let managers: Vec<String> = forced
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, ["paved", "ops-console"]);
    assert_eq!(pods_of(&client, "shop", "web").await.len(), 3);

    // An imperative edit (an Update manager) conflicts too, named with its API version.
    let edit = PatchParams {
        field_manager: Some("kubectl-client-side-apply".into()),
        ..Default::default()
    };
    deployments
        .patch(
            "web",
            &edit,
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .unwrap();
    let err = api_error(
        deployments
            .patch(
                "web",
                &PatchParams::apply("ops-console"),
                &Patch::Apply(&three),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
    );
}

#[tokio::test]
async fn rollout_never_gives_unready_status_pending_pods_and_warning_events() {
    let stub = start(tempdir_with(&[]), &[]);
    let client = client(&stub).await;
    create_namespace(&client, "shop").await;
    let mut broken = deployment("cart", 2, "registry.example/cart:missing");
    broken.spec.as_mut().unwrap().progress_deadline_seconds = Some(1);
    broken.metadata.annotations =
        Some([("stub.paved.dev/rollout".to_owned(), "never".to_owned())].into());
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    deployments
        .patch("cart", &PatchParams::apply("paved"), &Patch::Apply(&broken))
        .await
        .unwrap();

    let status = deployments.get("cart").await.unwrap().status.unwrap();
    assert_eq!(
        (status.replicas, status.updated_replicas),
        (Some(2), Some(2))
    );
    assert_eq!(status.ready_replicas.unwrap_or(0), 0);
    assert_eq!(status.available_replicas.unwrap_or(0), 0);
    let conditions = status.conditions.unwrap();
    let progressing = conditions
        .iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(
        (progressing.status.as_str(), progressing.reason.as_deref()),
        ("True", Some("ReplicaSetUpdated"))
    );
    assert!(conditions
        .iter()
        .any(|c| c.type_ == "Available" && c.status == "False"));

    let pods = pods_of(&client, "shop", "cart").await;
    assert_eq!(pods.len(), 2);
    let events: Api<Event> = Api::namespaced(client.clone(), "shop");
    for pod in &pods {
        let status = pod.status.as_ref().unwrap();
        assert_eq!(status.phase.as_deref(), Some("Pending"));
        let container = &status.container_statuses.as_ref().unwrap()[0];
        assert!(!container.ready);
        let waiting = container.state.as_ref().unwrap().waiting.as_ref().unwrap();
        assert_eq!(waiting.reason.as_deref(), Some("ImagePullBackOff"));
        assert_eq!(
            waiting.message.as_deref(),
            Some("Back-off pulling image \"registry.example/cart:missing\"")
        );

        let selector = format!(
            "involvedObject.kind=Pod,involvedObject.name={},type=Warning",
            name_of(pod)
        );
        let warnings = events
            .list(&ListParams::default().fields(&selector))
            .await
            .unwrap()
            .items;
        assert_eq!(warnings.len(), 1);
        let e = &warnings[0];
        assert_eq!(e.reason.as_deref(), Some("Failed"));
        assert_eq!(
            e.message.as_deref(),
            Some("Failed to pull image \"registry.example/cart:missing\": not found")
        );
        assert_eq!(e.count, Some(1));
        assert!(e.first_timestamp.is_some() && e.last_timestamp.is_some());
    }
    let logs = Api::<Pod>::namespaced(client.clone(), "shop")
        .logs(&name_of(&pods[0]), &LogParams::default())
        .await
        .unwrap_err();
    let logs = api_error(logs);
    assert_eq!(logs.code, 400);
    assert!(
        logs.message
            .ends_with("is waiting to start: trying and failing to pull image"),
        "{}",
        logs.message
    );

    // At spec.progressDeadlineSeconds the deployment controller gives up.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let conditions = deployments
        .get("cart")
        .await
        .unwrap()
        .status
        .unwrap()
        .conditions
        .unwrap();
    let progressing = conditions
        .iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(progressing.status, "False");
    assert_eq!(
        progressing.reason.as_deref(),
        Some("ProgressDeadlineExceeded")
    );
    assert!(progressing
        .message
        .as_deref()
        .unwrap()
        .ends_with("has timed out progressing."));
}

/// What the webhook received: the Authorization header and the review.
type Seen = Arc<Mutex<Vec<(Option<String>, Value)>>>;

/// A tiny validating webhook: denies `:latest` images, warns otherwise.
async fn webhook(seen: Seen) -> String {
    use axum::http::HeaderMap;
    use axum::Json;
    let app = axum::Router::new().route(
        "/validate",
        axum::routing::post(move |headers: HeaderMap, Json(review): Json<Value>| {
            let seen = seen.clone();
            async move {
                let auth = headers.get("authorization").map(|v| v.to_str().unwrap().to_owned());
                seen.lock().unwrap().push((auth, review.clone()));
                let request = &review["request"];
                let image = request["object"]["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap_or("");
                let response = if image.ends_with(":latest") {
                    json!({"uid": request["uid"], "allowed": false, "status": {"message": "image tag latest is not allowed"}})
                } else {
                    json!({"uid": request["uid"], "allowed": true, "warnings": ["no resource limits set"]})
                };
                Json(json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/validate")
}

#[tokio::test]
async fn the_admission_webhook_can_deny_and_warn() {
    let seen: Seen = Arc::default();
    let url = webhook(seen.clone()).await;
    let stub = start(
        tempdir_with(&[]),
        &["--admission-webhook", &url, "--admission-token", "wh-token"],
    );
    let client = client(&stub).await;
    create_namespace(&client, "shop").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");

    let latest = deployment("web", 1, "nginx:latest");
    let err = api_error(
        deployments
            .patch(
                "web",
                &PatchParams::apply("paved").dry_run(),
                &Patch::Apply(&latest),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        err.message,
        "admission webhook \"paved.dev\" denied the request: image tag latest is not allowed"
    );
    {
        let seen = seen.lock().unwrap();
        let (auth, review) = seen.last().unwrap();
        assert_eq!(auth.as_deref(), Some("Bearer wh-token"));
        assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
        let r = &review["request"];
        assert_eq!(
            r["kind"],
            json!({"group": "apps", "version": "v1", "kind": "Deployment"})
        );
        assert_eq!(
            r["resource"],
            json!({"group": "apps", "version": "v1", "resource": "deployments"})
        );
        assert_eq!(
            (r["name"].as_str(), r["namespace"].as_str()),
            (Some("web"), Some("shop"))
        );
        assert_eq!(
            (r["operation"].as_str(), r["dryRun"].as_bool()),
            (Some("CREATE"), Some(true))
        );
        assert_eq!(r["userInfo"]["username"], "paved");
        assert!(r["oldObject"].is_null());
        assert!(r["uid"].as_str().is_some());
    }
    assert_eq!(
        api_error(deployments.get("web").await.unwrap_err()).code,
        404
    );

    // Allowed, with the webhook's warning relayed as a Warning header.
    let resp = reqwest::Client::new()
        .patch(format!(
            "{}/apis/apps/v1/namespaces/shop/deployments/web?fieldManager=paved",
            stub.base
        ))
        .header("content-type", "application/apply-patch+yaml")
        .body(serde_json::to_string(&deployment("web", 1, "nginx:1.27")).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(
        resp.headers()["warning"],
        "299 - \"no resource limits set\""
    );
    let update = deployment("web", 2, "nginx:1.27");
    deployments
        .patch("web", &PatchParams::apply("paved"), &Patch::Apply(&update))
        .await
        .unwrap();
    let last = seen.lock().unwrap().last().unwrap().1["request"].clone();
    assert_eq!(
        (last["operation"].as_str(), last["dryRun"].as_bool()),
        (Some("UPDATE"), Some(false))
    );
    assert_eq!(last["oldObject"]["spec"]["replicas"], 1);

    // An unreachable webhook fails the write closed.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/validate", l.local_addr().unwrap())
    };
    let down = start(tempdir_with(&[]), &["--admission-webhook", &closed]);
    let resp = reqwest::Client::new()
        .patch(format!(
            "{}/api/v1/namespaces/default/configmaps/c?fieldManager=paved",
            down.base
        ))
        .header("content-type", "application/apply-patch+yaml")
        .body("{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"c\"}}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["reason"], "InternalError");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .starts_with("Internal error occurred: failed calling webhook \"paved.dev\""));
}

#[tokio::test]
async fn pod_logs_with_previous_and_tail_lines() {
    let dir = tempdir_with(&[
        (
            "logs/payments/worker-0/app.log",
            "starting\nconnecting to db\npanic: db unreachable\n",
        ),
        (
            "logs/payments/worker-0/app.previous.log",
            "starting\npanic: db unreachable (previous)\n",
        ),
    ]);
    let logs_dir = dir.path().join("logs");
    let stub = start(dir, &["--logs", logs_dir.to_str().unwrap()]);
    assert!(stub.dir.path().join("kubeconfig").exists());
    let crashing = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "worker-0", "namespace": "payments", "labels": {"app": "worker"}},
        "spec": {"containers": [{"name": "app", "image": "worker:1"}, {"name": "sidecar", "image": "proxy:1"}]},
        "status": {"phase": "Running", "containerStatuses": [
            {"name": "app", "image": "worker:1", "imageID": "", "ready": false, "restartCount": 4,
             "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 1m20s restarting failed container"}},
             "lastState": {"terminated": {"exitCode": 2, "reason": "Error"}}},
            {"name": "sidecar", "image": "proxy:1", "imageID": "", "ready": true, "restartCount": 0, "state": {"running": {}}}
        ]},
    });
    let placed = reqwest::Client::new()
        .post(format!("{}/_stub/objects", stub.base))
        .json(&crashing)
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 200);

    let client = client(&stub).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "payments");
    let pod = pods.get("worker-0").await.unwrap();
    assert_eq!(
        pod.status.unwrap().container_statuses.unwrap()[0].restart_count,
        4
    );
    let current = LogParams {
        container: Some("app".into()),
        ..Default::default()
    };
    assert_eq!(
        pods.logs("worker-0", &current).await.unwrap(),
        "starting\nconnecting to db\npanic: db unreachable\n"
    );
    let tail = LogParams {
        tail_lines: Some(1),
        ..current.clone()
    };
    assert_eq!(
        pods.logs("worker-0", &tail).await.unwrap(),
        "panic: db unreachable\n"
    );
    let previous = LogParams {
        previous: true,
        ..current.clone()
    };
    assert_eq!(
        pods.logs("worker-0", &previous).await.unwrap(),
        "starting\npanic: db unreachable (previous)\n"
    );

    let no_previous = LogParams {
        container: Some("sidecar".into()),
        previous: true,
        ..Default::default()
    };
    let err = api_error(pods.logs("worker-0", &no_previous).await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (400, "BadRequest"));
    assert_eq!(
        err.message,
        "previous terminated container \"sidecar\" in pod \"worker-0\" not found"
    );
    let err = api_error(
        pods.logs("worker-0", &LogParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(
        err.message,
        "a container name must be specified for pod worker-0, choose one of: [app sidecar]"
    );
    let err = api_error(pods.logs("nope", &current).await.unwrap_err());
    assert_eq!(
        (err.code, err.message.as_str()),
        (404, "pods \"nope\" not found")
    );
}

#[tokio::test]
async fn writes_are_checked_like_the_api_server_and_deletes_cascade() {
    let stub = start(tempdir_with(&[]), &[]);
    let client = client(&stub).await;
    let http = reqwest::Client::new();
    let apply = |path: String, body: Value| {
        http.patch(format!("{}{path}?fieldManager=paved", stub.base))
            .header("content-type", "application/apply-patch+yaml")
            .body(body.to_string())
            .send()
    };
    let web = serde_json::to_value(deployment("web", 1, "nginx")).unwrap();

    let resp = apply(
        "/apis/apps/v1/namespaces/nowhere/deployments/web".into(),
        web.clone(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["message"],
        "namespaces \"nowhere\" not found"
    );
    create_namespace(&client, "shop").await;

    let resp = apply(
        "/apis/apps/v1/namespaces/shop/deployments/other".into(),
        web.clone(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["message"],
        "the name of the object (web) does not match the name on the URL (other)"
    );

    let mut in_other_ns = web.clone();
    in_other_ns["metadata"]["namespace"] = json!("default");
    let resp = apply(
        "/apis/apps/v1/namespaces/shop/deployments/web".into(),
        in_other_ns,
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);

    let mut v1beta1 = web.clone();
    v1beta1["apiVersion"] = json!("apps/v1beta1");
    let resp = apply(
        "/apis/apps/v1/namespaces/shop/deployments/web".into(),
        v1beta1,
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);

    let mut no_image = web.clone();
    no_image["spec"]["template"]["spec"]["containers"][0]["image"] = json!(null);
    let resp = apply(
        "/apis/apps/v1/namespaces/shop/deployments/web".into(),
        no_image,
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 422);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["reason"], "Invalid");
    assert_eq!(body["message"], "Deployment.apps \"web\" is invalid: spec.template.spec.containers[0].image: Required value");

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    deployments
        .patch(
            "web",
            &PatchParams::apply("paved"),
            &Patch::Apply(&deployment("web", 2, "nginx")),
        )
        .await
        .unwrap();
    assert_eq!(pods_of(&client, "shop", "web").await.len(), 2);
    let scaled = deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.metadata.generation, Some(2));
    assert_eq!(pods_of(&client, "shop", "web").await.len(), 1);

    let deleted = deployments
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    let status = deleted.right().expect("a Status");
    assert_eq!(status.details.unwrap().name, "web");
    assert_eq!(
        api_error(deployments.get("web").await.unwrap_err()).code,
        404
    );
    assert!(pods_of(&client, "shop", "web").await.is_empty());
}

#[test]
fn kubeconfig_names_the_stub_context() {
    let stub = start(tempdir_with(&[]), &["--token", "t"]);
    let text = std::fs::read_to_string(Path::new(&stub.kubeconfig)).unwrap();
    let config: Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(config["current-context"], "stub");
    assert_eq!(config["contexts"][0]["name"], "stub");
    assert_eq!(
        config["clusters"][0]["cluster"]["server"],
        stub.base.as_str()
    );
    assert_eq!(config["users"][0]["user"]["token"], "t");
}
