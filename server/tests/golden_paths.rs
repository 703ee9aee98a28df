//! Every golden path shipped in `templates/` scaffolds end to end through the
//! real scaffolder: the repository is pushed to a bare repository and clones,
//! the Rust service passes `cargo check`, the Python one `python -m
//! compileall`, every manifest parses, the entity is registered with the right
//! owner, and the gateway key is in OpenBao.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::http::StatusCode;
use common::vault::TestVault;
use common::*;
use serde_json::{json, Value};

use common::tokens::PAYMENTS_LEAD as LEAD;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

fn run(dir: &Path, program: &str, args: &[&str], envs: &[(&str, String)]) -> String {
    let mut command = std::process::Command::new(program);
    command.args(args).current_dir(dir);
    for (k, v) in envs {
        command.env(k, v);
    }
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed in {}:\n{}\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir()
            && path
                .file_name()
                .is_some_and(|n| n != ".git" && n != "target")
        {
            out.extend(yaml_files(&path));
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    out
}

/// A description a developer might type, or an attacker: quotes, braces,
/// a colon, a comment mark and a line that would start a new YAML document.
fn hostile_description(title: &str) -> String {
    format!(
        "Golden path check for {title}: \"quoted\" 'single' {{braces}} # not a comment\n---\napiVersion: backstage.io/v1alpha1\nkind: Location\nspec: {{target: /etc/passwd}}"
    )
}

/// The shipped templates registered with the org they pick from, real
/// OpenBao, bare repositories, the shipped policies and `extra`, with
/// workers running.
struct GoldenPaths {
    app: TestApp,
    vault: TestVault,
    git: tempfile::TempDir,
    _dirs: Vec<tempfile::TempDir>,
}

async fn golden_paths(extra: Vec<(&'static str, String)>) -> GoldenPaths {
    let vault = TestVault::start().await;
    let git = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let catalog = tempfile::tempdir().unwrap();
    // The org the templates pick owners and systems from.
    std::fs::write(
        catalog.path().join("org.yaml"),
        "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: payments}\nspec: {type: team, children: []}\n---\napiVersion: backstage.io/v1alpha1\nkind: System\nmetadata: {name: checkout}\nspec: {owner: payments}\n",
    )
    .unwrap();
    let roots = format!(
        "{},{}",
        root().join("templates").display(),
        catalog.path().display()
    );
    let locations = format!(
        "file:{}/templates/all.yaml,file:{}/org.yaml",
        root().display(),
        catalog.path().display()
    );
    let hosts = format!("git.paved.demo=file://{}", git.path().display());
    let work_dir = work.path().display().to_string();
    let mut vars: Vec<(&str, String)> = vec![
        ("PAVED_CATALOG_FILE_ROOTS", roots),
        ("PAVED_CATALOG_LOCATIONS", locations),
        ("PAVED_SCAFFOLDER_GIT_HOSTS", hosts),
        ("PAVED_SCAFFOLDER_WORKDIR", work_dir),
        // The shipped policies: every golden path's manifests must pass them to publish.
        (
            "PAVED_POLICY_DIRS",
            root().join("policies").display().to_string(),
        ),
    ];
    vars.extend(vault.portal_vars());
    vars.extend(extra);
    let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = test_app(&borrowed).await;
    tokio::spawn(paved_core::scaffold::run_workers(app.state.core.clone()));

    GoldenPaths {
        app,
        vault,
        git,
        _dirs: vec![work, catalog],
    }
}

/// Runs `template` with `values` as the payments lead; the finished task.
async fn run_task(app: &TestApp, template: &str, values: &Value) -> (String, Value) {
    let response = app
        .as_(LEAD).response("POST", "/api/scaffolder/v2/tasks", Some(json!({"templateRef": template, "values": values, "secrets": {"gatewayKey": "gk-golden-path-0001"}})))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let id = body_json(response).await["id"].as_str().unwrap().to_owned();
    let mut task = Value::Null;
    for _ in 0..300 {
        task = body_json(
            app.as_(LEAD)
                .response("GET", &format!("/api/scaffolder/v2/tasks/{id}"), None)
                .await,
        )
        .await;
        if matches!(task["status"].as_str(), Some("completed" | "failed")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (id, task)
}

#[tokio::test]
async fn every_shipped_template_scaffolds_a_working_service() {
    let GoldenPaths {
        app,
        vault,
        git,
        _dirs,
    } = golden_paths(Vec::new()).await;
    let templates = paved_core::scaffold::list_templates(&app.state.core)
        .await
        .unwrap();
    let names: Vec<&str> = templates.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(templates.len(), 3, "{names:?}");
    let problems = sqlx::query_scalar::<_, String>("SELECT message FROM catalog_problems")
        .fetch_all(&app.state.core.db)
        .await
        .unwrap();
    assert!(problems.is_empty(), "{problems:?}");

    for template in &templates {
        let service = format!("gp-{}", template.name.split('-').next().unwrap());
        let values = json!({
            "name": service,
            "description": hostile_description(&template.title),
            "owner": "group:default/payments",
            "system": "system:default/checkout",
            "lifecycle": "experimental",
            "model": "gpt-4o-mini",
            "otel": true,
            "repoUrl": format!("git.paved.demo?owner=payments&repo={service}"),
        });
        // A dry run first: the preview holds the skeleton.
        let response = app
            .as_(LEAD).response("POST", "/api/scaffolder/v2/dry-run", Some(json!({"templateRef": template.entity_ref, "values": values, "secrets": {"gatewayKey": "gk-golden-path-0001"}})))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let preview = body_json(response).await;
        assert!(preview["error"].is_null(), "{}: {preview}", template.name);
        assert!(preview["directoryContents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"] == "catalog-info.yaml"));

        let (id, task) = run_task(&app, &template.entity_ref, &values).await;
        assert_eq!(task["status"], "completed", "{}: {task}", template.name);
        // Its Kubernetes manifests were checked against the shipped policies before publishing.
        let (_, events) = app
            .as_(LEAD)
            .get(&format!("/api/scaffolder/v2/tasks/{id}/events"))
            .await;
        let checked = events.as_array().unwrap().iter().any(|e| {
            e["body"]["message"].as_str().is_some_and(|m| {
                m.contains(
                    "Kubernetes objects in 3 files checked against 7 policies: no violations",
                )
            })
        });
        assert!(checked, "{}: {events}", template.name);

        // The repository clones; its manifests parse.
        let clones = tempfile::tempdir().unwrap();
        let bare = git.path().join(format!("payments/{service}.git"));
        run(
            clones.path(),
            "git",
            &["clone", "--quiet", bare.to_str().unwrap(), "svc"],
            &[],
        );
        let checkout = clones.path().join("svc");
        let manifests = yaml_files(&checkout);
        assert!(manifests.len() >= 5, "{}: {manifests:?}", template.name);
        for file in &manifests {
            let text = std::fs::read_to_string(file).unwrap();
            for doc in serde_yaml::Deserializer::from_str(&text) {
                let value: serde_yaml::Value = serde::Deserialize::deserialize(doc)
                    .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                assert!(!value.is_null() || text.trim().is_empty());
            }
            assert!(
                !text.contains("${{ values"),
                "{} was not rendered",
                file.display()
            );
        }
        // The typed text is data in exactly one document, never YAML of its own.
        let info = std::fs::read_to_string(checkout.join("catalog-info.yaml")).unwrap();
        let documents: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&info)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
        assert_eq!(documents.len(), 1, "{}: {info}", template.name);
        assert_eq!(
            documents[0]["metadata"]["description"].as_str(),
            Some(hostile_description(&template.title).as_str()),
            "{}",
            template.name
        );
        let deployment = std::fs::read_to_string(checkout.join("k8s/deployment.yaml")).unwrap();
        assert!(
            !deployment.contains("gk-golden-path-0001"),
            "no raw key in manifests"
        );
        assert!(
            !deployment.to_ascii_lowercase().contains("sk-"),
            "no raw provider key"
        );

        // Registered with the right owner.
        let entity = paved_core::catalog::store::entity_by_ref(
            &app.state.core.db,
            &format!("component:default/{service}"),
        )
        .await
        .unwrap();
        assert_eq!(entity["spec"]["owner"], "group:default/payments");

        match template.name.as_str() {
            "rust-axum-service" => {
                let target = std::env::var("HOME")
                    .map(|h| format!("{h}/.cache/paved/template-target"))
                    .unwrap_or_else(|_| "/tmp/paved-template-target".into());
                run(
                    &checkout,
                    "cargo",
                    &["check", "--all-targets", "--quiet"],
                    &[("CARGO_TARGET_DIR", target)],
                );
                assert!(deployment.contains("vault.hashicorp.com/agent-inject"));
            }
            "python-fastapi-service" => {
                run(&checkout, "python3", &["-m", "compileall", "-q", "."], &[]);
                assert!(deployment.contains("vault.hashicorp.com/agent-inject"));
            }
            _ => {}
        }
        if template.name != "static-site" {
            let (status, secret) = vault
                .raw(
                    "GET",
                    &format!("secret/data/platform/payments/{service}/llm-gateway"),
                    Some(&vault.root_token),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{}", template.name);
            assert_eq!(
                secret["data"]["data"]["PAVED_LLM_GATEWAY_KEY"],
                "gk-golden-path-0001"
            );
        }
    }
}

/// The Rust golden path with a cluster picked: published, registered, its
/// key in Vault, deployed to the cluster (kube-stub over HTTP) after the
/// policy check and a server dry run, rolled out, recorded as a production
/// deployment, and its page shows it running.
#[tokio::test]
async fn a_golden_path_with_a_cluster_deploys_and_its_page_shows_it_running() {
    let stub = paved_kube_stub::Stub::new(paved_kube_stub::Config::default());
    let addr = paved_kube_stub::spawn(stub.clone()).await;
    let kube = tempfile::tempdir().unwrap();
    std::fs::write(
        kube.path().join("stub.kubeconfig"),
        paved_kube_stub::kubeconfig(&format!("http://{addr}"), None),
    )
    .unwrap();
    std::fs::write(
        kube.path().join("clusters.yaml"),
        "clusters:\n- name: prod-eu\n  kubeconfig: stub.kubeconfig\n  production: true\n  teams: [payments]\n",
    )
    .unwrap();
    let g = golden_paths(vec![
        (
            "PAVED_KUBE_CLUSTERS",
            kube.path().join("clusters.yaml").display().to_string(),
        ),
        ("PAVED_KUBE_ROLLOUT_POLL_MS", "50".into()),
    ])
    .await;
    let values = json!({
        "name": "gp-deployed",
        "description": "Summarises tickets.",
        "owner": "group:default/payments",
        "lifecycle": "experimental",
        "model": "gpt-4o-mini",
        "otel": true,
        "repoUrl": "git.paved.demo?owner=payments&repo=gp-deployed",
        "cluster": "prod-eu",
    });
    let (id, task) = run_task(&g.app, "template:default/rust-axum-service", &values).await;
    let (_, events) = g
        .app
        .as_(LEAD)
        .get(&format!("/api/scaffolder/v2/tasks/{id}/events"))
        .await;
    let messages: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["body"]["message"].as_str())
        .collect();
    assert_eq!(task["status"], "completed", "{task} {messages:#?}");
    for expected in [
        "Server-side dry run passed for 4 objects (field manager paved)",
        "Deployment/gp-deployed rolled out",
        "Recorded that component:default/gp-deployed runs in prod-eu/payments (backstage.io/kubernetes-id=gp-deployed)",
        "Recorded a production deployment of component:default/gp-deployed for delivery outcomes",
    ] {
        assert!(messages.iter().any(|m| m.contains(expected)), "no `{expected}` in {messages:#?}");
    }
    // The Vault role binds the namespace it was deployed to.
    let role = g
        .vault
        .root(
            "GET",
            "auth/kubernetes/role/paved__payments__gp-deployed",
            json!(null),
        )
        .await;
    assert_eq!(
        role["data"]["bound_service_account_namespaces"],
        json!(["payments"])
    );
    // The registered entity names the cluster; its page shows two pods running.
    let entity = paved_core::catalog::store::entity_by_ref(
        &g.app.state.core.db,
        "component:default/gp-deployed",
    )
    .await
    .unwrap();
    assert_eq!(
        entity["metadata"]["annotations"]["paved.dev/kubernetes-cluster"],
        "prod-eu"
    );
    let (status, view) = g
        .app
        .as_(LEAD)
        .get("/api/kube/v1/entities/component/default/gp-deployed/runtime")
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let cluster = &view["clusters"][0];
    assert_eq!(cluster["cluster"], "prod-eu");
    assert_eq!(cluster["workloads"][0]["status"], "Available", "{cluster}");
    assert_eq!(cluster["pods"].as_array().unwrap().len(), 2, "{cluster}");
    assert!(
        cluster["problems"].as_array().unwrap().is_empty(),
        "{cluster}"
    );
    // Lead time to the first production deployment is real.
    let first = paved_core::outcomes::first_production_deployment(
        &g.app.state.core,
        "component:default/gp-deployed",
        0,
    )
    .await
    .unwrap();
    assert!(first.is_some());
    assert!(g.git.path().join("payments/gp-deployed.git").exists());
}
