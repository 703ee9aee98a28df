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

#[tokio::test]
async fn every_shipped_template_scaffolds_a_working_service() {
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
    let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = test_app(&borrowed).await;
    tokio::spawn(paved_core::scaffold::run_workers(app.state.core.clone()));

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

        let response = app
            .as_(LEAD).response("POST", "/api/scaffolder/v2/tasks", Some(json!({"templateRef": template.entity_ref, "values": values, "secrets": {"gatewayKey": "gk-golden-path-0001"}})))
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
