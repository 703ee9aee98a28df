//! The scaffolder end to end over the real router: templates from the
//! catalog, dry runs, real tasks that push to a bare git repository, register
//! in the catalog and write to a real OpenBao, Backstage's own example
//! template unmodified, restarts, cancel and retry, and secrets that never leak.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, StatusCode};
use common::vault::TestVault;
use common::*;
use paved_shared::auth::testing;
use serde_json::{json, Value};

use common::tokens::{ADMIN, PAYMENTS_DEV as DEV, SEARCH_DEV as SEARCH};
const SECRET: &str = "sk-scaffold-7f3a9c21-never-shown";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scaffolder")
}

fn backstage_example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../node_modules/@backstage/create-app/templates/default-app/examples/template")
}

struct Fixture {
    app: TestApp,
    vault: Option<TestVault>,
    git_root: PathBuf,
    _dirs: Vec<tempfile::TempDir>,
}

async fn fixture(with_vault: bool) -> Fixture {
    fixture_with(with_vault, true).await
}

async fn fixture_with(with_vault: bool, workers: bool) -> Fixture {
    fixture_full(with_vault, workers, Vec::new()).await
}

async fn fixture_full(with_vault: bool, workers: bool, extra: Vec<(&str, String)>) -> Fixture {
    captured_logs();
    let git = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let vault = if with_vault {
        Some(TestVault::start().await)
    } else {
        None
    };
    let roots = format!(
        "{},{}",
        fixtures().display(),
        backstage_example()
            .canonicalize()
            .expect("npm packages installed (scripts/setup.sh test)")
            .display()
    );
    let locations = format!(
        "file:{}/catalog.yaml,file:{}/template.yaml",
        fixtures().display(),
        backstage_example().canonicalize().unwrap().display()
    );
    let hosts = format!(
        "git.paved.test=file://{0},github.com=file://{0}",
        git.path().display()
    );
    let work_dir = work.path().display().to_string();
    let mut vars: Vec<(&str, String)> = vec![
        ("PAVED_CATALOG_FILE_ROOTS", roots),
        ("PAVED_CATALOG_LOCATIONS", locations),
        ("PAVED_SCAFFOLDER_GIT_HOSTS", hosts),
        ("PAVED_SCAFFOLDER_WORKDIR", work_dir),
    ];
    vars.extend(extra);
    if let Some(v) = &vault {
        vars.extend(v.portal_vars());
    }
    let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = test_app(&borrowed).await;
    if workers {
        tokio::spawn(paved_core::scaffold::run_workers(app.state.core.clone()));
    }
    Fixture {
        app,
        vault,
        git_root: git.path().to_path_buf(),
        _dirs: vec![git, work],
    }
}

impl Fixture {
    /// The messages of a task's events, oldest first.
    async fn messages(&self, id: &str) -> Vec<String> {
        let (_, events) = self
            .app
            .as_(DEV)
            .request(
                "GET",
                &format!("/api/scaffolder/v2/tasks/{id}/events"),
                None,
            )
            .await;
        events
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["body"]["message"].as_str().map(str::to_owned))
            .collect()
    }

    async fn wait_for(&self, id: &str, statuses: &[&str]) -> Value {
        self.wait_for_as(id, statuses, DEV).await
    }

    async fn wait_for_as(&self, id: &str, statuses: &[&str], token: &str) -> Value {
        for _ in 0..300 {
            let (status, task) = self
                .app
                .as_(token)
                .request("GET", &format!("/api/scaffolder/v2/tasks/{id}"), None)
                .await;
            assert_eq!(status, StatusCode::OK, "{task}");
            if statuses.contains(&task["status"].as_str().unwrap_or_default()) {
                return task;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("task {id} never reached {statuses:?}");
    }
}

fn feature_values(name: &str) -> Value {
    json!({
        "name": name,
        "owner": "group:default/payments",
        "system": "system:default/checkout",
        "flavour": "fancy",
        "colour": "teal ${{ parameters.owner }}",
        "features": ["health", "metrics"],
        "repoUrl": format!("git.paved.test?owner=payments&repo={name}"),
    })
}

fn git_in(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn templates_are_listed_with_their_pages_and_unknown_actions_are_refused_at_registration() {
    let f = fixture(false).await;
    let (status, schema) = f
        .app
        .as_(DEV)
        .request(
            "GET",
            "/api/scaffolder/v2/templates/default/template/feature-service/parameter-schema",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{schema}");
    assert_eq!(schema["title"], "Feature test service");
    assert_eq!(schema["steps"].as_array().unwrap().len(), 3);
    assert_eq!(schema["steps"][2]["title"], "Repository");
    let (_, actions) = f
        .app
        .as_(DEV)
        .request("GET", "/api/scaffolder/v2/actions", None)
        .await;
    assert!(actions
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["id"] == "publish:git"));

    // A template naming an action Paved lacks is a catalog problem that names it.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata: {name: bad}\nspec:\n  type: service\n  steps:\n    - {id: x, action: 'aws:s3:create'}\n",
    )
    .unwrap();
    let found = paved_core::catalog::store::preview_yaml(
        &f.app.state.core.catalog,
        "bad.yaml",
        &std::fs::read_to_string(&file).unwrap(),
    )
    .await;
    assert!(found.entities.is_empty());
    assert!(
        found
            .problems
            .iter()
            .any(|p| p.message.contains("`aws:s3:create`")),
        "{:?}",
        found.problems
    );
}

#[tokio::test]
async fn a_dry_run_previews_the_files_without_publishing_anything() {
    let f = fixture(false).await;
    let (status, result) = f.app.as_(DEV).request("POST", "/api/scaffolder/v2/dry-run", Some(json!({"templateRef": "template:default/feature-service", "values": feature_values("svc-dry"), "secrets": {"apiKey": SECRET}})))
        .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert!(result["error"].is_null(), "{result}");
    let files: Vec<(String, String)> = result["directoryContents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            use base64::Engine as _;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(f["base64Content"].as_str().unwrap())
                .unwrap();
            (
                f["path"].as_str().unwrap().to_owned(),
                String::from_utf8(raw).unwrap(),
            )
        })
        .collect();
    let file = |p: &str| {
        files
            .iter()
            .find(|(path, _)| path == p)
            .map(|(_, c)| c.clone())
            .unwrap_or_else(|| panic!("no {p} in {files:?}"))
    };
    // File names are rendered; contents too; workflow files are copied without templating.
    assert_eq!(
        file("src/svc-dry.txt"),
        "Service svc-dry\n- health\n- metrics\n\n"
    );
    assert!(file(".github/workflows/ci.yaml").contains("${{ github.sha }}"));
    assert_eq!(file("raw/untouched.txt"), "verbatim ${{ values.name }}\n");
    let info = file("catalog-info.yaml");
    let parsed: Value = serde_yaml::from_str(&info).unwrap();
    assert_eq!(parsed["metadata"]["name"], "svc-dry");
    assert_eq!(parsed["spec"]["system"], "system:default/checkout");
    // What a user typed is data: their `${{ … }}` arrives verbatim, never evaluated.
    assert!(parsed["metadata"]["description"]
        .as_str()
        .unwrap()
        .contains("teal ${{ parameters.owner }}"));
    // Steps: each ran per item, the conditional one ran (fancy), nothing was published.
    let log: Vec<String> = result["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["body"]["message"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        log.iter().any(|l| l == "feature 0 is health")
            && log.iter().any(|l| l == "feature 1 is metrics")
    );
    assert!(log.iter().any(|l| l.starts_with("fancy colour teal")));
    assert!(log.iter().any(|l| l.starts_with("Would create file://")));
    assert!(log
        .iter()
        .any(|l| l.contains("Would register component:default/svc-dry")));
    assert!(log.iter().any(|l| l.contains("(secret: ***)")), "{log:?}");
    assert!(!result.to_string().contains(SECRET));
    assert!(!f.git_root.join("payments/svc-dry.git").exists());
    assert_eq!(
        result["output"]["links"][1]["entityRef"],
        "component:default/svc-dry"
    );
}

#[tokio::test]
async fn a_task_publishes_registers_provisions_and_notifies_and_its_secret_never_leaks() {
    let f = fixture(true).await;
    let (status, created) = f.app.as_(DEV).request("POST", "/api/scaffolder/v2/tasks", Some(json!({"templateRef": "template:default/feature-service", "values": feature_values("svc-real"), "secrets": {"apiKey": SECRET}})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let task = f.wait_for(&id, &["completed", "failed"]).await;
    assert_eq!(task["status"], "completed", "{task}");
    let statuses: Vec<(&str, &str)> = task["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert!(
        statuses.iter().all(|(_, s)| *s == "completed"),
        "{statuses:?}"
    );
    assert_eq!(
        task["output"]["links"][1]["entityRef"],
        "component:default/svc-real"
    );

    // The repository can be cloned and holds the rendered skeleton.
    let bare = f.git_root.join("payments/svc-real.git");
    assert!(bare.is_dir());
    let clone_dir = tempfile::tempdir().unwrap();
    git_in(
        clone_dir.path(),
        &["clone", "--quiet", bare.to_str().unwrap(), "svc"],
    );
    let checkout = clone_dir.path().join("svc");
    assert!(checkout.join("src/svc-real.txt").is_file());
    assert!(git_in(&checkout, &["log", "-1", "--format=%B"]).contains(&format!("Paved-Task: {id}")));

    // Registered with the right owner.
    let entity = paved_core::catalog::store::entity_by_ref(
        &f.app.state.core.db,
        "component:default/svc-real",
    )
    .await
    .unwrap();
    assert_eq!(entity["spec"]["owner"], "group:default/payments");
    // The secret is in OpenBao, with its policy and role.
    let vault = f.vault.as_ref().unwrap();
    let (status, secret) = vault
        .raw(
            "GET",
            "secret/data/platform/payments/svc-real/api",
            Some(&vault.root_token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(secret["data"]["data"]["API_KEY"], SECRET);
    // The team was notified.
    let notified = sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM notifications WHERE recipient = 'group:default/payments'",
    )
    .fetch_one(&f.app.state.core.db)
    .await
    .unwrap();
    assert_eq!(notified, 1);

    // The event log streams (SSE) to its end and masks the secret.
    let response = f
        .app
        .as_(DEV)
        .response(
            "GET",
            &format!("/api/scaffolder/v2/tasks/{id}/eventstream"),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let stream = body_text(response).await;
    assert!(stream.contains("event: completion"), "{stream}");
    assert!(stream.contains("Beginning step Render the skeleton"));
    assert!(stream.contains("(secret: ***)"));
    let (_, events) = f
        .app
        .as_(DEV)
        .request(
            "GET",
            &format!("/api/scaffolder/v2/tasks/{id}/events"),
            None,
        )
        .await;
    assert!(events.as_array().unwrap().len() > 10);

    // The secret is nowhere: events, task, database file, logs.
    let (_, task_again) = f
        .app
        .as_(DEV)
        .request("GET", &format!("/api/scaffolder/v2/tasks/{id}"), None)
        .await;
    for text in [stream.clone(), events.to_string(), task_again.to_string()] {
        assert!(!text.contains(SECRET));
    }
    assert!(
        !contains_bytes(&f.app.database_bytes(), SECRET),
        "secret in the database"
    );
    assert!(
        !contains_bytes(&captured_logs().lock().unwrap(), SECRET),
        "secret in the logs"
    );

    // Every task is in the audit log.
    let audit = paved_core::audit::list(&f.app.state.core.db, 0, 200)
        .await
        .unwrap();
    assert!(audit
        .entries
        .iter()
        .any(|e| e.action == "scaffolder.task.create" && e.target == id));
    assert!(audit
        .entries
        .iter()
        .any(|e| e.action == "scaffolder.task.completed" && e.target == id));

    // Running it again with the same name: publish refuses, the task fails at that step, nothing is overwritten.
    let (_, again) = f.app.as_(DEV).request("POST", "/api/scaffolder/v2/tasks", Some(json!({"templateRef": "template:default/feature-service", "values": feature_values("svc-real")})))
        .await;
    let again = f
        .wait_for(again["id"].as_str().unwrap(), &["completed", "failed"])
        .await;
    assert_eq!(again["status"], "failed");
    assert!(
        again["error"].as_str().unwrap().contains("already exists"),
        "{again}"
    );
}

#[tokio::test]
async fn backstage_example_template_runs_unmodified() {
    let f = fixture(false).await;
    // Backstage's example registers a Component owned by `user:guest` under
    // the `guest` repository owner: only a platform admin's task may do that.
    let (status, created) = f.app.as_(ADMIN).request("POST", "/api/scaffolder/v2/tasks", Some(json!({"templateRef": "template:default/example-nodejs-template", "values": {"name": "example-svc", "repoUrl": "github.com?owner=guest&repo=example-svc"}})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let task = f
        .wait_for_as(
            created["id"].as_str().unwrap(),
            &["completed", "failed"],
            ADMIN,
        )
        .await;
    assert_eq!(task["status"], "completed", "{task}");
    let clone_dir = tempfile::tempdir().unwrap();
    git_in(
        clone_dir.path(),
        &[
            "clone",
            "--quiet",
            f.git_root.join("guest/example-svc.git").to_str().unwrap(),
            "x",
        ],
    );
    let package: Value = serde_json::from_str(
        &std::fs::read_to_string(clone_dir.path().join("x/package.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(package["name"], "example-svc");
    let entity = paved_core::catalog::store::entity_by_ref(
        &f.app.state.core.db,
        "component:default/example-svc",
    )
    .await
    .unwrap();
    assert_eq!(entity["spec"]["owner"], "user:guest");
    assert_eq!(
        task["output"]["links"][0]["url"],
        format!(
            "file://{}",
            f.git_root.join("guest/example-svc.git").display()
        )
    );
}

#[tokio::test]
async fn bad_answers_get_field_errors_and_other_teams_are_refused() {
    let f = fixture(false).await;
    let mut values = feature_values("Bad Name");
    values.as_object_mut().unwrap().remove("colour");
    values["repoUrl"] = json!("github.com?owner=payments&repo=x");
    let (status, body) = f
        .app
        .as_(DEV)
        .request(
            "POST",
            "/api/scaffolder/v2/tasks",
            Some(json!({"templateRef": "template:default/feature-service", "values": values})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("name: must match the pattern"),
        "{message}"
    );
    assert!(message.contains("colour: is required"), "{message}");
    assert!(
        message.contains("repoUrl: the host must be one of: git.paved.test"),
        "{message}"
    );
    // A member of search cannot create a service owned by payments.
    let (status, body) = f.app.as_(SEARCH).request("POST", "/api/scaffolder/v2/tasks", Some(json!({"templateRef": "template:default/feature-service", "values": feature_values("svc-x")})))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = f
        .app
        .as_(DEV)
        .request(
            "POST",
            "/api/scaffolder/v2/tasks",
            Some(json!({"templateRef": "template:default/nope", "values": {}})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Skeleton paths that would leave the workspace are refused.
    for values in [
        json!({"fileName": "../../escaped.txt"}),
        json!({"fileName": "/etc/escaped.txt"}),
        json!({"target": "../outside"}),
    ] {
        let (status, created) = f
            .app
            .as_(DEV)
            .request(
                "POST",
                "/api/scaffolder/v2/tasks",
                Some(json!({"templateRef": "template:default/escape-test", "values": values})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let task = f
            .wait_for(created["id"].as_str().unwrap(), &["completed", "failed"])
            .await;
        assert_eq!(task["status"], "failed", "{values}");
        assert!(
            task["error"]
                .as_str()
                .unwrap()
                .contains("would leave the workspace"),
            "{task}"
        );
    }
    // Another team's member cannot read a task.
    let (_, created) = f
        .app
        .as_(DEV)
        .request(
            "POST",
            "/api/scaffolder/v2/tasks",
            Some(json!({"templateRef": "template:default/escape-test", "values": {}})),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    f.wait_for(id, &["completed"]).await;
    let (status, _) = f
        .app
        .as_(SEARCH)
        .request("GET", &format!("/api/scaffolder/v2/tasks/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn cancel_stops_a_task_and_retry_resumes_from_the_failed_step() {
    let f = fixture(false).await;
    let (_, created) = f
        .app
        .as_(DEV)
        .request(
            "POST",
            "/api/scaffolder/v2/tasks",
            Some(json!({"templateRef": "template:default/escape-test", "values": {"wait": 30}})),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    for _ in 0..100 {
        let (_, task) = f
            .app
            .as_(DEV)
            .request("GET", &format!("/api/scaffolder/v2/tasks/{id}"), None)
            .await;
        if task["steps"][1]["status"] == "processing" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _) = f
        .app
        .as_(SEARCH)
        .request(
            "POST",
            &format!("/api/scaffolder/v2/tasks/{id}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = f
        .app
        .as_(DEV)
        .request(
            "POST",
            &format!("/api/scaffolder/v2/tasks/{id}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let task = f.wait_for(&id, &["cancelled"]).await;
    assert_eq!(task["steps"][1]["status"], "cancelled");
    // Its workspace went with the cancel, so a retry starts over (and finishes).
    let (status, body) = f
        .app
        .as_(DEV)
        .request(
            "POST",
            &format!("/api/scaffolder/v2/tasks/{id}/retry"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["fromStep"], "fetch");

    // A publish that clashes fails at that step; once the clash is gone, retry resumes there.
    std::fs::create_dir_all(f.git_root.join("payments/svc-retry.git")).unwrap();
    let (_, created) = f.app.as_(DEV).request("POST", "/api/scaffolder/v2/tasks", Some(json!({"templateRef": "template:default/feature-service", "values": feature_values("svc-retry")})))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let failed = f.wait_for(&id, &["failed"]).await;
    let publish = failed["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "publish")
        .unwrap()
        .clone();
    assert_eq!(publish["status"], "failed");
    std::fs::remove_dir_all(f.git_root.join("payments/svc-retry.git")).unwrap();
    let (status, body) = f
        .app
        .as_(DEV)
        .request(
            "POST",
            &format!("/api/scaffolder/v2/tasks/{id}/retry"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["fromStep"], "publish");
    let done = f.wait_for(&id, &["completed", "failed"]).await;
    assert_eq!(done["status"], "completed", "{done}");
    let starts = f
        .messages(&id)
        .await
        .iter()
        .filter(|m| *m == "Beginning step Render the skeleton")
        .count();
    assert_eq!(starts, 1, "completed steps are not run again");
}

#[tokio::test]
async fn a_restart_resumes_interrupted_tasks_or_fails_those_that_needed_secrets() {
    let f = fixture_with(false, false).await;
    let core = f.app.state.core.clone();
    // Two tasks stuck "processing" under a worker that no longer exists, as after a crash.
    let mut ids = Vec::new();
    for secrets in [json!({}), json!({"apiKey": SECRET})] {
        let values = if secrets == json!({}) {
            json!({})
        } else {
            json!({"wait": 0})
        };
        let template = if secrets == json!({}) {
            "template:default/escape-test"
        } else {
            "template:default/feature-service"
        };
        let values = if template.contains("feature") {
            feature_values("svc-crash")
        } else {
            values
        };
        let request = paved_core::scaffold::RunRequest {
            template_ref: template.into(),
            values,
            secrets: secrets
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        secrecy::SecretString::from(v.as_str().unwrap().to_owned()),
                    )
                })
                .collect(),
            wizard_session: None,
        };
        let principal = testing::member("payments").as_service_token();
        // Queue without waking, then mark it claimed by a dead worker mid-step.
        let id = paved_core::scaffold::create_task(&core, &principal, request)
            .await
            .unwrap();
        sqlx::query("UPDATE scaffolder_tasks SET status = 'processing', claimed_by = 'dead-worker' WHERE id = ?1")
            .bind(&id)
            .execute(&core.db)
            .await
            .unwrap();
        sqlx::query("UPDATE scaffolder_steps SET status = 'processing' WHERE task_id = ?1 AND step_id = 'fetch'")
            .bind(&id)
            .execute(&core.db)
            .await
            .unwrap();
        paved_core::scaffold::tasks::append_event(
            &core.db,
            &id,
            Some("fetch"),
            "log",
            "written before the crash",
            None,
        )
        .await
        .unwrap();
        ids.push(id);
    }
    // "Restart": a new process (new scaffolder state, secrets gone) recovers.
    let mut restarted = core.clone();
    restarted.scaffolder = Arc::new(paved_core::scaffold::Scaffolder::new());
    let (resumed, failed) = paved_core::scaffold::tasks::recover(
        &restarted.db,
        &restarted.scaffolder.worker_id,
        paved_core::scaffold::tasks::Stranded::AllOthers,
    )
    .await
    .unwrap();
    assert_eq!((resumed, failed), (1, 1));
    tokio::spawn(paved_core::scaffold::run_workers(restarted.clone()));
    let plain = f.wait_for(&ids[0], &["completed", "failed"]).await;
    assert_eq!(plain["status"], "completed", "{plain}");
    let with_secret = f.wait_for(&ids[1], &["failed"]).await;
    assert!(with_secret["error"]
        .as_str()
        .unwrap()
        .contains("enter them again"));
    for id in &ids {
        let messages = f.messages(id).await;
        assert!(
            messages.iter().any(|m| m == "written before the crash"),
            "the log survives: {messages:?}"
        );
        assert!(messages.iter().any(|m| m.contains("Paved stopped")));
    }
    // Retrying the secret one (in the restarted process) needs the secret again.
    let principal = testing::member("payments").as_service_token();
    let refused = paved_core::scaffold::retry(&restarted, &principal, &ids[1], Default::default())
        .await
        .unwrap_err();
    assert_eq!(refused.status_code(), 422);
    assert!(refused.to_string().contains("apiKey"), "{refused}");
}

#[tokio::test]
async fn twenty_concurrent_tasks_all_finish() {
    let f = fixture(false).await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let (status, created) = f.app.as_(DEV).request("POST", "/api/scaffolder/v2/tasks", Some(json!({"templateRef": "template:default/feature-service", "values": feature_values(&format!("svc-load-{i}"))})))
            .await;
        assert_eq!(status, StatusCode::CREATED);
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    for (i, id) in ids.iter().enumerate() {
        let task = f.wait_for(id, &["completed", "failed"]).await;
        assert_eq!(task["status"], "completed", "{task}");
        assert!(f
            .git_root
            .join(format!("payments/svc-load-{i}.git"))
            .is_dir());
    }
}

#[tokio::test]
async fn a_task_interrupted_by_a_killed_process_resumes_in_the_next_one() {
    let f = fixture_with(false, false).await;
    let core = f.app.state.core.clone();
    let (_, created) = f
        .app
        .as_(DEV)
        .request(
            "POST",
            "/api/scaffolder/v2/tasks",
            Some(json!({"templateRef": "template:default/escape-test", "values": {"wait": 2}})),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();

    // Process A: its own runtime runs the workers; it dies (runtime dropped) in the middle of the wait step.
    let mut core_a = core.clone();
    core_a.scaffolder = Arc::new(paved_core::scaffold::Scaffolder::new());
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let process_a = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.spawn(paved_core::scaffold::run_workers(core_a));
        stopped.recv().unwrap();
        runtime.shutdown_background();
    });
    for _ in 0..200 {
        let (_, task) = f
            .app
            .as_(DEV)
            .request("GET", &format!("/api/scaffolder/v2/tasks/{id}"), None)
            .await;
        if task["steps"][1]["status"] == "processing" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(()).unwrap();
    process_a.join().unwrap();
    let (_, task) = f
        .app
        .as_(DEV)
        .request("GET", &format!("/api/scaffolder/v2/tasks/{id}"), None)
        .await;
    assert_eq!(
        task["status"], "processing",
        "left mid-task by the dead process: {task}"
    );
    assert_eq!(task["steps"][0]["status"], "completed");

    // Process B starts, finds it, and finishes it without redoing the finished step.
    let mut core_b = core.clone();
    core_b.scaffolder = Arc::new(paved_core::scaffold::Scaffolder::new());
    tokio::spawn(paved_core::scaffold::run_workers(core_b));
    let done = f.wait_for(&id, &["completed", "failed"]).await;
    assert_eq!(done["status"], "completed", "{done}");
    let messages = f.messages(&id).await;
    assert!(
        messages.iter().any(|m| m.contains("Paved stopped")),
        "{messages:?}"
    );
    assert_eq!(
        messages
            .iter()
            .filter(|m| **m == "Beginning step Render")
            .count(),
        1,
        "{messages:?}"
    );
    assert_eq!(
        messages
            .iter()
            .filter(|m| **m == "Beginning step Wait a little")
            .count(),
        2,
        "{messages:?}"
    );
}

#[tokio::test]
async fn golden_path_metrics_follow_wizards_and_tasks() {
    let f = fixture(false).await;
    let core = f.app.state.core.clone();
    let principal = testing::member("payments").as_service_token();
    let template = "template:default/feature-service";
    // A wizard run that creates a task, and one abandoned two days ago.
    for (session, event) in [
        ("s-done", "started"),
        ("s-done", "page"),
        ("s-done", "review"),
        ("s-gone", "started"),
    ] {
        paved_core::scaffold::record_wizard_event(
            &core, &principal, session, template, event, None,
        )
        .await
        .unwrap();
    }
    sqlx::query("UPDATE wizard_events SET at = at - 172800 WHERE session = 's-gone'")
        .execute(&core.db)
        .await
        .unwrap();
    let request = |name: &str, session: Option<&str>| paved_core::scaffold::RunRequest {
        template_ref: template.into(),
        values: feature_values(name),
        secrets: Default::default(),
        wizard_session: session.map(str::to_owned),
    };
    let ok = paved_core::scaffold::create_task(
        &core,
        &principal,
        request("svc-metrics", Some("s-done")),
    )
    .await
    .unwrap();
    std::fs::create_dir_all(f.git_root.join("payments/svc-metrics-clash.git")).unwrap();
    let bad =
        paved_core::scaffold::create_task(&core, &principal, request("svc-metrics-clash", None))
            .await
            .unwrap();
    f.wait_for(&ok, &["completed"]).await;
    f.wait_for(&bad, &["failed"]).await;
    let all = paved_core::scaffold::metrics::metrics(&core, 0)
        .await
        .unwrap();
    let m = all.iter().find(|m| m.template_ref == template).unwrap();
    assert_eq!(
        (m.wizards_started, m.wizards_submitted, m.wizards_abandoned),
        (2, 1, 1)
    );
    assert_eq!(m.completion_rate, Some(0.5));
    assert_eq!((m.tasks, m.tasks_succeeded, m.tasks_failed), (2, 1, 1));
    assert_eq!(m.success_rate, Some(0.5));
    assert_eq!(m.failures_by_step, vec![("publish".to_owned(), 1)]);
    assert!(m.lead_time_median_secs.is_some());
    assert_eq!(m.time_saved_minutes, 180);
    // The abandoned run never left the first page.
    assert_eq!(m.abandoned_at, vec![("first page".to_owned(), 1)]);

    // Golden-path lead time runs on to the new service's first successful
    // production deployment: none yet.
    assert_eq!(
        (m.services_in_production, m.production_lead_time_median_secs),
        (0, None)
    );
    let entity_ref: String = sqlx::query_scalar(
        "SELECT json_extract(output_json, '$.entityRef') FROM scaffolder_steps
         WHERE task_id = ?1 AND action = 'catalog:register'",
    )
    .bind(&ok)
    .fetch_one(&core.db)
    .await
    .unwrap();
    let started: i64 =
        sqlx::query_scalar("SELECT MIN(at) FROM wizard_events WHERE session = 's-done'")
            .fetch_one(&core.db)
            .await
            .unwrap();
    // Staging first, then a failed production deployment, then the one that counts.
    for (key, environment, status, after) in [
        ("d1", "staging", "success", 1_800),
        ("d2", "production", "failure", 3_600),
        ("d3", "production", "success", 7_200),
        ("d4", "production", "success", 9_000),
    ] {
        sqlx::query(
            "INSERT INTO outcome_deployments (source_id, key, component_ref, environment, status, finished_at)
             VALUES ('test', ?1, ?2, ?3, ?4, ?5)",
        )
        .bind(key)
        .bind(&entity_ref)
        .bind(environment)
        .bind(status)
        .bind(started + after)
        .execute(&core.db)
        .await
        .unwrap();
    }
    let all = paved_core::scaffold::metrics::metrics(&core, 0)
        .await
        .unwrap();
    let m = all.iter().find(|m| m.template_ref == template).unwrap();
    assert_eq!(
        (m.services_in_production, m.production_lead_time_median_secs),
        (1, Some(7_200))
    );
}

/// A git smart-HTTP server over TLS that requires Basic credentials (tests/fixtures/git-https/server.py).
struct HttpsGit {
    url: String,
    root: tempfile::TempDir,
    child: std::process::Child,
}

impl HttpsGit {
    fn start(user: &str, token: &str) -> HttpsGit {
        let root = tempfile::tempdir().unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/git-https");
        let mut child = std::process::Command::new("python3")
            .arg(dir.join("server.py"))
            .arg(root.path())
            .arg(dir.join("cert.pem"))
            .arg(dir.join("key.pem"))
            .args([user, token])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening ")
            .expect("the git server started");
        HttpsGit {
            url: format!("https://127.0.0.1:{port}"),
            root,
            child,
        }
    }
}

impl Drop for HttpsGit {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn publishes_to_an_https_git_host_with_credentials_from_vault() {
    let vault = TestVault::start().await;
    vault
        .root(
            "POST",
            "secret/data/platform/git/gitlab.paved.test",
            json!({"data": {"username": "paved", "token": "git-token-4711"}}),
        )
        .await;
    let git = HttpsGit::start("paved", "git-token-4711");
    let f = remote_fixture(
        vault,
        format!("gitlab.paved.test={0},nocreds.paved.test={0}", git.url),
        vec![(
            "PAVED_SCAFFOLDER_GIT_CACERT",
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/git-https/cert.pem")
                .display()
                .to_string(),
        )],
        git.root.path().to_path_buf(),
    )
    .await;

    let mut values = feature_values("svc-remote");
    values["repoUrl"] = json!("gitlab.paved.test?owner=payments&repo=svc-remote");
    let (_, created) = f.app.as_(DEV).request("POST", "/api/scaffolder/v2/tasks", Some(json!({"templateRef": "template:default/feature-service", "values": values.clone()}))).await;
    let task = f
        .wait_for(created["id"].as_str().unwrap(), &["completed", "failed"])
        .await;
    assert_eq!(task["status"], "completed", "{task}");
    assert_eq!(
        task["output"]["links"][0]["url"],
        format!("{}/payments/svc-remote.git", git.url)
    );
    // The server holds the pushed repository; the catalog entry was read back from it over https.
    let clone_dir = tempfile::tempdir().unwrap();
    git_in(
        clone_dir.path(),
        &[
            "clone",
            "--quiet",
            git.root
                .path()
                .join("payments/svc-remote.git")
                .to_str()
                .unwrap(),
            "x",
        ],
    );
    assert!(clone_dir.path().join("x/src/svc-remote.txt").is_file());
    paved_core::catalog::store::entity_by_ref(&f.app.state.core.db, "component:default/svc-remote")
        .await
        .unwrap();

    // Publishing again to the same repository is refused; so is a host Paved has no credentials for.
    let (_, again) = f
        .app
        .as_(DEV)
        .request(
            "POST",
            "/api/scaffolder/v2/tasks",
            Some(json!({"templateRef": "template:default/feature-service", "values": values})),
        )
        .await;
    let again = f
        .wait_for(again["id"].as_str().unwrap(), &["completed", "failed"])
        .await;
    assert!(
        again["error"].as_str().unwrap().contains("already exists"),
        "{again}"
    );
    let mut values = feature_values("svc-nocreds");
    values["repoUrl"] = json!("nocreds.paved.test?owner=payments&repo=svc-nocreds");
    let (_, denied) = f
        .app
        .as_(DEV)
        .request(
            "POST",
            "/api/scaffolder/v2/tasks",
            Some(json!({"templateRef": "template:default/feature-service", "values": values})),
        )
        .await;
    let denied = f
        .wait_for(denied["id"].as_str().unwrap(), &["completed", "failed"])
        .await;
    assert_eq!(denied["status"], "failed");
    assert!(!git.root.path().join("payments/svc-nocreds.git").exists());
    // The token never shows up in the task's log.
    let (_, events) = f
        .app
        .as_(DEV)
        .request(
            "GET",
            &format!(
                "/api/scaffolder/v2/tasks/{}/events",
                denied["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert!(!events.to_string().contains("git-token-4711"));
}

/// An sshd on loopback that serves git (creating a repository on its first
/// push) to one client key; host and client keys are made for the test.
struct SshGit {
    port: u16,
    root: tempfile::TempDir,
    client_key: String,
    known_hosts: String,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl SshGit {
    fn start() -> SshGit {
        let dir = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let d = dir.path();
        for name in ["host", "client", "other"] {
            let out = std::process::Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(d.join(name))
                .output()
                .expect("ssh-keygen (openssh-client)");
            assert!(out.status.success());
        }
        std::fs::copy(d.join("client.pub"), d.join("authorized_keys")).unwrap();
        let wrapper = d.join("git-only.sh");
        std::fs::write(
            &wrapper,
            "#!/bin/sh\nset -e\ncase \"$SSH_ORIGINAL_COMMAND\" in\n  git-receive-pack*) repo=$(printf '%s' \"$SSH_ORIGINAL_COMMAND\" | sed \"s/^git-receive-pack '\\(.*\\)'$/\\1/\"); [ -d \"$repo\" ] || git init --quiet --bare -b main \"$repo\" ;;\n  git-upload-pack*) ;;\n  *) echo 'git only' >&2; exit 1 ;;\nesac\nexec sh -c \"$SSH_ORIGINAL_COMMAND\"\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let port = free_port();
        let config = d.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nPidFile {pid}\nAuthorizedKeysFile {keys}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nForceCommand {wrapper}\nLogLevel ERROR\n",
                host = d.join("host").display(),
                pid = d.join("sshd.pid").display(),
                keys = d.join("authorized_keys").display(),
                wrapper = wrapper.display(),
            ),
        )
        .unwrap();
        let _ = std::fs::create_dir_all("/run/sshd");
        let child = std::process::Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("sshd (openssh-server; scripts/setup.sh test installs it)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let host_pub = std::fs::read_to_string(d.join("host.pub")).unwrap();
        let other_pub = std::fs::read_to_string(d.join("other.pub")).unwrap();
        let _ = other_pub;
        SshGit {
            port,
            client_key: std::fs::read_to_string(d.join("client")).unwrap(),
            known_hosts: format!("[127.0.0.1]:{port} {}", host_pub.trim()),
            root,
            child,
            _dir: dir,
        }
    }

    fn wrong_known_hosts(&self) -> String {
        let other = std::fs::read_to_string(self._dir.path().join("other.pub")).unwrap();
        format!("[127.0.0.1]:{} {}", self.port, other.trim())
    }
}

impl Drop for SshGit {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn publishes_over_ssh_with_a_key_from_vault_and_checks_the_host_key() {
    let vault = TestVault::start().await;
    let ssh = SshGit::start();
    vault
        .root(
            "POST",
            "secret/data/platform/git/ssh.paved.test",
            json!({"data": {"ssh_private_key": ssh.client_key, "known_hosts": ssh.known_hosts}}),
        )
        .await;
    vault
        .root("POST", "secret/data/platform/git/badhost.paved.test", json!({"data": {"ssh_private_key": ssh.client_key, "known_hosts": ssh.wrong_known_hosts()}}))
        .await;
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let base = format!(
        "ssh://{user}@127.0.0.1:{}{}",
        ssh.port,
        ssh.root.path().display()
    );
    let f = remote_fixture(
        vault,
        format!("ssh.paved.test={base},badhost.paved.test={base}"),
        Vec::new(),
        ssh.root.path().to_path_buf(),
    )
    .await;

    let mut values = feature_values("svc-ssh");
    values["repoUrl"] = json!("ssh.paved.test?owner=payments&repo=svc-ssh");
    let (_, created) = f
        .app
        .as_(DEV)
        .request(
            "POST",
            "/api/scaffolder/v2/tasks",
            Some(json!({"templateRef": "template:default/feature-service", "values": values})),
        )
        .await;
    let task = f
        .wait_for(created["id"].as_str().unwrap(), &["completed", "failed"])
        .await;
    assert_eq!(task["status"], "completed", "{task}");
    let clone_dir = tempfile::tempdir().unwrap();
    git_in(
        clone_dir.path(),
        &[
            "clone",
            "--quiet",
            ssh.root
                .path()
                .join("payments/svc-ssh.git")
                .to_str()
                .unwrap(),
            "x",
        ],
    );
    assert!(clone_dir.path().join("x/catalog-info.yaml").is_file());
    paved_core::catalog::store::entity_by_ref(&f.app.state.core.db, "component:default/svc-ssh")
        .await
        .unwrap();

    // A host whose key does not match what Vault says is refused, and nothing is pushed.
    let mut values = feature_values("svc-mitm");
    values["repoUrl"] = json!("badhost.paved.test?owner=payments&repo=svc-mitm");
    let (_, created) = f
        .app
        .as_(DEV)
        .request(
            "POST",
            "/api/scaffolder/v2/tasks",
            Some(json!({"templateRef": "template:default/feature-service", "values": values})),
        )
        .await;
    let refused = f
        .wait_for(created["id"].as_str().unwrap(), &["completed", "failed"])
        .await;
    assert_eq!(refused["status"], "failed");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("host key"),
        "{refused}"
    );
    assert!(!ssh.root.path().join("payments/svc-mitm.git").exists());
    // No key material is left in the workspace or the log.
    let (_, events) = f
        .app
        .as_(DEV)
        .request(
            "GET",
            &format!(
                "/api/scaffolder/v2/tasks/{}/events",
                refused["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert!(!events.to_string().contains("PRIVATE KEY"));
}

/// A test app whose scaffolder publishes to the remote `hosts`, with Vault, workers running.
async fn remote_fixture(
    vault: TestVault,
    hosts: String,
    extra: Vec<(&'static str, String)>,
    git_root: PathBuf,
) -> Fixture {
    let work = tempfile::tempdir().unwrap();
    let mut vars: Vec<(&str, String)> = vec![
        ("PAVED_CATALOG_FILE_ROOTS", fixtures().display().to_string()),
        (
            "PAVED_CATALOG_LOCATIONS",
            format!("file:{}/catalog.yaml", fixtures().display()),
        ),
        ("PAVED_SCAFFOLDER_GIT_HOSTS", hosts),
        (
            "PAVED_SCAFFOLDER_WORKDIR",
            work.path().display().to_string(),
        ),
    ];
    vars.extend(extra);
    vars.extend(vault.portal_vars());
    let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = test_app(&borrowed).await;
    tokio::spawn(paved_core::scaffold::run_workers(app.state.core.clone()));
    Fixture {
        app,
        vault: Some(vault),
        git_root,
        _dirs: vec![work],
    }
}

#[tokio::test]
async fn old_workspaces_are_cleaned_and_a_retry_then_starts_over() {
    let f = fixture(false).await;
    let core = f.app.state.core.clone();
    std::fs::create_dir_all(f.git_root.join("payments/svc-janitor.git")).unwrap();
    let (_, created) = f.app.as_(DEV).request("POST", "/api/scaffolder/v2/tasks", Some(json!({"templateRef": "template:default/feature-service", "values": feature_values("svc-janitor")})))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    f.wait_for(&id, &["failed"]).await;
    let workspace = core.config.scaffolder.work_dir.join(&id);
    assert!(
        workspace.is_dir(),
        "a failed task keeps its workspace for a retry"
    );
    // A week and a day later the janitor removes it.
    let later = paved_core::now_unix() + 8 * 24 * 3600;
    assert_eq!(
        paved_core::scaffold::runner::clean_workspaces(&core, paved_core::now_unix())
            .await
            .unwrap(),
        0
    );
    assert!(
        paved_core::scaffold::runner::clean_workspaces(&core, later)
            .await
            .unwrap()
            >= 1
    );
    assert!(!workspace.exists());
    // Retrying then runs every step again and the repository gets the rendered files.
    std::fs::remove_dir_all(f.git_root.join("payments/svc-janitor.git")).unwrap();
    let (status, body) = f
        .app
        .as_(DEV)
        .request(
            "POST",
            &format!("/api/scaffolder/v2/tasks/{id}/retry"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["fromStep"], "fetch");
    let done = f.wait_for(&id, &["completed", "failed"]).await;
    assert_eq!(done["status"], "completed", "{done}");
    let clone_dir = tempfile::tempdir().unwrap();
    git_in(
        clone_dir.path(),
        &[
            "clone",
            "--quiet",
            f.git_root
                .join("payments/svc-janitor.git")
                .to_str()
                .unwrap(),
            "x",
        ],
    );
    assert!(clone_dir.path().join("x/src/svc-janitor.txt").is_file());
}

#[tokio::test]
async fn notifications_reach_the_team_and_only_its_members_can_read_them() {
    let f = fixture(false).await;
    let (_, created) = f.app.as_(DEV).request("POST", "/api/scaffolder/v2/tasks", Some(json!({"templateRef": "template:default/feature-service", "values": feature_values("svc-notify")})))
        .await;
    f.wait_for(created["id"].as_str().unwrap(), &["completed"])
        .await;
    let member = f
        .app
        .session_for(
            "dana",
            &[("payments", paved_core::auth::TeamRole::Member)],
            &[],
        )
        .await;
    let outsider = f
        .app
        .session_for(
            "sid",
            &[("search", paved_core::auth::TeamRole::Member)],
            &[],
        )
        .await;
    let mine = body_json(
        f.app
            .with_session(&member)
            .call("notifications_list", "")
            .await,
    )
    .await;
    assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine[0]["title"], "svc-notify is ready");
    let id = mine[0]["id"].as_i64().unwrap();
    // Another team sees nothing and cannot mark it read.
    let theirs = body_json(
        f.app
            .with_session(&outsider)
            .call("notifications_list", "")
            .await,
    )
    .await;
    assert!(theirs.as_array().unwrap().is_empty(), "{theirs}");
    let form = format!("id={id}");
    let refused = f
        .app
        .with_session(&outsider)
        .call("notifications_read", &form)
        .await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    let read = f
        .app
        .with_session(&member)
        .call("notifications_read", &form)
        .await;
    assert_eq!(read.status(), StatusCode::OK);
    let unread = body_json(
        f.app
            .with_session(&member)
            .call("notifications_unread", "")
            .await,
    )
    .await;
    assert_eq!(unread, json!(0));
    // Attack: one member's read mark used to mark a team notification read
    // for the whole team. It is each person's own.
    let teammate = f
        .app
        .session_for(
            "erin",
            &[("payments", paved_core::auth::TeamRole::Member)],
            &[],
        )
        .await;
    assert_eq!(
        body_json(
            f.app
                .with_session(&teammate)
                .call("notifications_unread", "")
                .await
        )
        .await,
        json!(1)
    );
    let theirs = body_json(
        f.app
            .with_session(&teammate)
            .call("notifications_list", "")
            .await,
    )
    .await;
    assert_eq!(theirs[0]["read"], json!(false), "{theirs}");
    let again = f
        .app
        .with_session(&member)
        .call("notifications_read", &form)
        .await;
    assert_eq!(again.status(), StatusCode::OK, "marking twice is harmless");
    assert_eq!(
        body_json(
            f.app
                .with_session(&teammate)
                .call("notifications_unread", "")
                .await
        )
        .await,
        json!(1)
    );
    let mine = body_json(
        f.app
            .with_session(&member)
            .call("notifications_list", "")
            .await,
    )
    .await;
    assert_eq!(mine[0]["read"], json!(true), "{mine}");
}

#[tokio::test]
async fn whoever_sees_the_completion_event_reads_the_final_status() {
    let f = fixture(false).await;
    for _ in 0..10 {
        let (_, created) = f
            .app
            .as_(DEV)
            .request(
                "POST",
                "/api/scaffolder/v2/tasks",
                Some(json!({"templateRef": "template:default/escape-test", "values": {}})),
            )
            .await;
        let id = created["id"].as_str().unwrap().to_owned();
        // The live log ends with the completion event; the task read right after is finished.
        let stream = f
            .app
            .as_(DEV)
            .response(
                "GET",
                &format!("/api/scaffolder/v2/tasks/{id}/eventstream"),
                None,
            )
            .await;
        let stream = body_text(stream).await;
        assert!(stream.contains("event: completion"), "{stream}");
        let (_, task) = f
            .app
            .as_(DEV)
            .request("GET", &format!("/api/scaffolder/v2/tasks/{id}"), None)
            .await;
        assert_eq!(task["status"], "completed", "{task}");
    }
}

// ---- Attacks: a developer of one team trying to reach further ----

fn unsafe_values(name: &str, repo: &str, tagline: &str) -> Value {
    json!({
        "name": name,
        "owner": "group:default/payments",
        "tagline": tagline,
        "repoUrl": format!("git.paved.test?owner=payments&repo={repo}"),
    })
}

async fn task_count(f: &Fixture) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM scaffolder_tasks")
        .fetch_one(&f.app.state.core.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn attack_hostile_picker_answers_are_refused_before_a_task_exists() {
    let f = fixture(false).await;
    let start = |values: Value| {
        let body = json!({"templateRef": "template:default/feature-service", "values": values});
        let f = &f;
        async move {
            f.app
                .as_(DEV)
                .request("POST", "/api/scaffolder/v2/tasks", Some(body))
                .await
        }
    };
    // YAML smuggled through the System picker.
    let mut values = feature_values("svc-picker");
    values["system"] =
        json!("checkout\n---\napiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: evil}\nspec: {target: /etc/passwd}");
    let (status, body) = start(values).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("system"), "{body}");
    // A reference to something that is not in the catalog, or of the wrong kind.
    for (field, answer) in [
        ("system", "system:default/nowhere"),
        ("system", "group:default/payments"),
        ("owner", "user:default/dana"),
        ("owner", "group:default/nobody"),
    ] {
        let mut values = feature_values("svc-picker");
        values[field] = json!(answer);
        let (status, body) = start(values).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}: {body}");
    }
    // Another team's owner, or another team's repository space.
    let mut values = feature_values("svc-picker");
    values["owner"] = json!("group:default/search");
    let (status, _) = start(values).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let mut values = feature_values("svc-picker");
    values["repoUrl"] = json!("git.paved.test?owner=search&repo=svc-picker");
    let (status, body) = start(values).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(task_count(&f).await, 0, "no task was created");

    // A loose but valid answer is stored in its canonical form.
    let mut values = feature_values("svc-canonical");
    values["system"] = json!("Checkout");
    let (status, created) = start(values).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let stored: String = sqlx::query_scalar("SELECT values_json FROM scaffolder_tasks")
        .fetch_one(&f.app.state.core.db)
        .await
        .unwrap();
    assert!(
        stored.contains("\"system\":\"system:default/checkout\""),
        "{stored}"
    );
}

#[tokio::test]
async fn attack_catalog_register_takes_only_what_the_team_may_own() {
    let f = fixture(false).await;
    let run = |values: Value| {
        let body = json!({"templateRef": "template:default/unsafe-service", "values": values});
        let f = &f;
        async move {
            let (status, created) = f
                .app
                .as_(DEV)
                .request("POST", "/api/scaffolder/v2/tasks", Some(body))
                .await;
            assert_eq!(status, StatusCode::CREATED, "{created}");
            let id = created["id"].as_str().unwrap().to_owned();
            f.wait_for(&id, &["completed", "failed"]).await
        }
    };
    let exists = |entity_ref: &'static str| {
        let db = f.app.state.core.db.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM catalog_entities WHERE entity_ref = ?1",
            )
            .bind(entity_ref)
            .fetch_one(&db)
            .await
            .unwrap()
                > 0
        }
    };
    // The answer adds a Group, a User, another team's Component and a
    // Location pointing at the whole fixture catalog.
    let hostile = format!(
        "fine\n---\napiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {{name: paved-platform-admins}}\nspec: {{type: team, children: []}}\n---\napiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {{name: mallory}}\nspec: {{memberOf: [paved-platform-admins]}}\n---\napiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {{name: evil}}\nspec: {{target: {}}}\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {{name: search-takeover}}\nspec: {{type: service, lifecycle: production, owner: search}}\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: svc-extra\n  description: last",
        fixtures().join("catalog.yaml").display()
    );
    let task = run(unsafe_values("svc-hostile", "svc-hostile", &hostile)).await;
    assert_eq!(task["status"], "failed", "{task}");
    let error = task["error"].as_str().unwrap_or_default();
    assert!(error.contains("nothing was registered"), "{error}");
    assert!(error.contains("is a Group"), "{error}");
    assert!(error.contains("is a User"), "{error}");
    assert!(error.contains("is a Location"), "{error}");
    assert!(error.contains("search-takeover"), "{error}");
    for gone in [
        "group:default/paved-platform-admins",
        "user:default/mallory",
        "location:default/evil",
        "component:default/svc-extra",
        "component:default/search-takeover",
        "component:default/svc-hostile",
    ] {
        assert!(!exists(gone).await, "{gone} was registered");
    }

    // A legitimate one registers; a second repository claiming the same
    // entity does not take it over.
    let task = run(unsafe_values("svc-one", "svc-one", "first")).await;
    assert_eq!(task["status"], "completed", "{task}");
    assert!(exists("component:default/svc-one").await);
    let task = run(unsafe_values("svc-one", "svc-two", "second")).await;
    assert_eq!(task["status"], "failed", "{task}");
    assert!(
        task["error"]
            .as_str()
            .unwrap_or_default()
            .contains("already in the catalog"),
        "{task}"
    );
    let entity = paved_core::catalog::store::entity_by_ref(
        &f.app.state.core.db,
        "component:default/svc-one",
    )
    .await
    .unwrap();
    assert_eq!(entity["metadata"]["description"], "first");
}

/// Attack: endless or unlimited live logs. A finished task's stream ends (204
/// when nothing is left, so EventSource stops reconnecting), one person may
/// hold only a few at once, and another team never gets one.
#[tokio::test]
async fn attack_event_streams_end_are_capped_and_authorized() {
    use paved_core::scaffold::runner::MAX_STREAMS_PER_PRINCIPAL;
    let f = fixture(false).await;
    let (_, created) = f
        .app
        .as_(DEV)
        .request(
            "POST",
            "/api/scaffolder/v2/tasks",
            Some(json!({"templateRef": "template:default/escape-test", "values": {"wait": 30}})),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    f.wait_for(&id, &["processing"]).await;
    let stream = format!("/api/scaffolder/v2/tasks/{id}/eventstream");
    let dev = f.app.as_(DEV);
    let open = || dev.response("GET", &stream, None);
    // Responses whose bodies are not read keep their streams (and slots) open.
    let mut held = Vec::new();
    for _ in 0..MAX_STREAMS_PER_PRINCIPAL {
        let r = open().await;
        assert_eq!(r.status(), StatusCode::OK);
        held.push(r);
    }
    let r = open().await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another team's member gets no stream at all.
    let r = f
        .app
        .as_(SEARCH)
        .response(
            "GET",
            &format!("/api/scaffolder/v2/tasks/{id}/eventstream"),
            None,
        )
        .await;
    assert!(r.status() == StatusCode::FORBIDDEN || r.status() == StatusCode::NOT_FOUND);
    // Closing streams gives the slots back.
    held.clear();
    let (status, _) = f
        .app
        .as_(DEV)
        .request(
            "POST",
            &format!("/api/scaffolder/v2/tasks/{id}/cancel"),
            None,
        )
        .await;
    assert!(status.is_success(), "{status}");
    let task = f.wait_for(&id, &["cancelled", "failed", "completed"]).await;
    assert_ne!(task["status"], "processing");
    // The finished task's stream sends what is left and ends; asked again
    // from its last event, it answers 204.
    let r = open().await;
    assert_eq!(r.status(), StatusCode::OK);
    let text = body_text(r).await;
    let last = text
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .next_back()
        .unwrap()
        .to_owned();
    let r = f
        .app
        .send(get_with(
            &format!("/api/scaffolder/v2/tasks/{id}/eventstream"),
            header::AUTHORIZATION,
            &format!("Bearer {DEV}"),
        ))
        .await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "from the start there is a log to send"
    );
    drop(r);
    let mut request = bearer(
        "GET",
        &format!("/api/scaffolder/v2/tasks/{id}/eventstream"),
        DEV,
        None,
    );
    request
        .headers_mut()
        .insert("last-event-id", last.parse().unwrap());
    let r = f.app.send(request).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

/// Attack: one person queues tasks without end. Past the per-person limit a
/// new task is refused with 429 until some finish; others are not affected.
#[tokio::test]
async fn attack_a_person_cannot_queue_tasks_without_end() {
    use paved_core::scaffold::MAX_RUNNING_TASKS_PER_PERSON;
    let f = fixture_with(false, false).await;
    let app = &f.app;
    let start = move |token: &'static str| async move {
        app.as_(token)
            .post(
                "/api/scaffolder/v2/tasks",
                json!({"templateRef": "template:default/escape-test", "values": {}}),
            )
            .await
    };
    for _ in 0..MAX_RUNNING_TASKS_PER_PERSON {
        let (status, body) = start(DEV).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = start(DEV).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(task_count(&f).await, MAX_RUNNING_TASKS_PER_PERSON);
    let (status, _) = start(SEARCH).await;
    assert_eq!(status, StatusCode::CREATED, "another person still can");
}

/// Attack: a nested `ui:widget: password` answer sent among the ordinary
/// values, then quoted by a failing step. The answer is taken out of the
/// stored values, and the failure text, the events, the database and the
/// logs show it only masked.
#[tokio::test]
async fn attack_a_nested_secret_quoted_by_a_failure_stays_masked() {
    const NESTED: &str = "nested-pw-5f1c9e3d-never-shown";
    let f = fixture(false).await;
    let (status, created) = f
        .app
        .as_(DEV)
        .request(
            "POST",
            "/api/scaffolder/v2/tasks",
            Some(json!({"templateRef": "template:default/leaky-failure",
                "values": {"db": {"host": "db.internal", "password": NESTED}}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let task = f.wait_for(&id, &["completed", "failed"]).await;
    assert_eq!(task["status"], "failed", "{task}");
    let error = task["error"].as_str().unwrap();
    assert!(
        error.contains("missing-***.txt"),
        "the failure still says what failed: {error}"
    );
    assert_eq!(
        task["spec"]["parameters"]["db"]["host"], "db.internal",
        "{task}"
    );
    assert!(
        task["spec"]["parameters"]["db"].get("password").is_none(),
        "{task}"
    );
    assert_eq!(task["secretNames"], json!(["db.password"]), "{task}");
    let (_, events) = f
        .app
        .as_(DEV)
        .request(
            "GET",
            &format!("/api/scaffolder/v2/tasks/{id}/events"),
            None,
        )
        .await;
    for text in [task.to_string(), events.to_string()] {
        assert!(!text.contains(NESTED), "{text}");
    }
    assert!(
        !contains_bytes(&f.app.database_bytes(), NESTED),
        "secret in the database"
    );
    assert!(
        !contains_bytes(&captured_logs().lock().unwrap(), NESTED),
        "secret in the logs"
    );
}

fn shipped_policies() -> String {
    format!("{}/../policies", env!("CARGO_MANIFEST_DIR"))
}

/// A template whose manifests break a policy fails at `policy:check`, with
/// each violation in the live log (file, document, object, message), and
/// publishes nothing; fixed manifests pass and publish. Without a
/// `policy:check` step, publishing checks the manifests itself.
#[tokio::test]
async fn policy_check_blocks_publishing_a_violating_service() {
    let f = fixture_full(false, true, vec![("PAVED_POLICY_DIRS", shipped_policies())]).await;
    for (name, explicit) in [("svc-latest", true), ("svc-latest-implicit", false)] {
        let (status, created) = f
            .app
            .as_(DEV)
            .post(
                "/api/scaffolder/v2/tasks",
                json!({"templateRef": "template:default/policy-checked",
                    "values": {"name": name, "image": "nginx:latest", "explicit": explicit}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        let task = f.wait_for(&id, &["completed", "failed"]).await;
        assert_eq!(task["status"], "failed", "{task}");
        let error = task["error"].as_str().unwrap();
        assert!(error.contains("1 violation block publishing"), "{error}");
        let messages = f.messages(&id).await;
        let violation = messages
            .iter()
            .find(|m| m.starts_with("violation: "))
            .unwrap_or_else(|| panic!("{messages:#?}"));
        assert_eq!(
            violation,
            &format!("violation: k8s/deployment.yaml:7 (document 2) Deployment/payments/{name}: [pinned-images] Deployment {name}: container app uses the tag latest; pin a version or a digest")
        );
        assert!(
            !f.git_root.join(format!("payments/{name}.git")).exists(),
            "nothing is published"
        );
    }
    // Recorded at the scaffolder's enforcement point, with the team.
    f.app.state.core.policies.log.flush().await;
    let (_, page) = f
        .app
        .as_(ADMIN)
        .get("/api/policy/v1/violations?point=scaffolder")
        .await;
    assert_eq!(page["total"], 2, "{page}");
    assert_eq!(page["items"][0]["team"], "payments");

    // A pinned image passes and publishes.
    let (_, created) = f
        .app
        .as_(DEV)
        .post(
            "/api/scaffolder/v2/tasks",
            json!({"templateRef": "template:default/policy-checked",
                "values": {"name": "svc-pinned", "image": "nginx:1.27.3", "explicit": true}}),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let task = f.wait_for(&id, &["completed", "failed"]).await;
    assert_eq!(task["status"], "completed", "{task}");
    let messages = f.messages(&id).await;
    assert!(
        messages.iter().any(
            |m| m == "2 Kubernetes objects in 1 file checked against 7 policies: no violations"
        ),
        "{messages:#?}"
    );
    assert!(f.git_root.join("payments/svc-pinned.git").exists());
}

/// A cluster stand-in (kube-stub, over HTTP) named `prod-eu`, production.
async fn kube_cluster() -> (paved_kube_stub::Stub, tempfile::TempDir, String) {
    let stub = paved_kube_stub::Stub::new(paved_kube_stub::Config::default());
    let addr = paved_kube_stub::spawn(stub.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("stub.kubeconfig"),
        paved_kube_stub::kubeconfig(&format!("http://{addr}"), None),
    )
    .unwrap();
    let clusters = dir.path().join("clusters.yaml");
    std::fs::write(
        &clusters,
        "clusters:\n- name: prod-eu\n  kubeconfig: stub.kubeconfig\n  production: true\n  teams: [payments]\n",
    )
    .unwrap();
    let path = clusters.display().to_string();
    (stub, dir, path)
}

#[tokio::test]
async fn kube_apply_deploys_after_the_policy_check_and_a_server_dry_run_and_records_where_it_runs()
{
    let (stub, _dir, clusters) = kube_cluster().await;
    let f = fixture_full(
        false,
        true,
        vec![
            ("PAVED_POLICY_DIRS", shipped_policies()),
            ("PAVED_KUBE_CLUSTERS", clusters),
            ("PAVED_KUBE_ROLLOUT_POLL_MS", "50".into()),
        ],
    )
    .await;
    // Runs the template with `values` added to a name and an image; the
    // task id and the finished task.
    let deploy = |name: &'static str, image: &'static str, extra: Value| {
        let f = &f;
        async move {
            let mut values = json!({"name": name, "image": image});
            values
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            let (status, created) = f
                .app
                .as_(DEV)
                .post(
                    "/api/scaffolder/v2/tasks",
                    json!({"templateRef": "template:default/kube-deployed", "values": values}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{created}");
            let id = created["id"].as_str().unwrap().to_owned();
            let task = f.wait_for(&id, &["completed", "failed"]).await;
            (id, task)
        }
    };
    let (id, task) = deploy("svc-kube", "registry.example/svc:1.0.0", json!({})).await;
    let messages = f.messages(&id).await;
    assert_eq!(task["status"], "completed", "{task} {messages:#?}");
    let position = |needle: &str| {
        messages
            .iter()
            .position(|m| m.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in {messages:#?}"))
    };
    // Policies, then the dry run of everything, then the apply, then the rollout.
    let checked = position("checked against 7 policies: no violations");
    let dry = position("Server-side dry run passed for 4 objects");
    let applied = position("Applied Deployment/svc-kube");
    let rolled = position("Deployment/svc-kube rolled out");
    assert!(
        checked < dry && dry < applied && applied < rolled,
        "{messages:#?}"
    );
    position("Recorded that component:default/svc-kube runs in prod-eu/payments (backstage.io/kubernetes-id=svc-kube)");
    position("Recorded a production deployment of component:default/svc-kube");
    // What the cluster holds: the namespace labelled with the team, the
    // Deployment applied by field manager paved.
    let ns = stub
        .get("v1", "Namespace", "", "payments")
        .expect("the namespace");
    assert_eq!(ns["metadata"]["labels"]["team"], "payments");
    let deployment = stub
        .get("apps/v1", "Deployment", "payments", "svc-kube")
        .expect("the deployment");
    assert_eq!(
        deployment["metadata"]["managedFields"][0]["manager"],
        "paved"
    );
    assert_eq!(
        deployment["metadata"]["managedFields"][0]["operation"],
        "Apply"
    );
    let pool = &f.app.state.core.db;
    let placed: (String, String, i64) = sqlx::query_as(
        "SELECT cluster, namespace, ready FROM kube_placements WHERE entity_ref = 'component:default/svc-kube'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(placed, ("prod-eu".into(), "payments".into(), 1));
    let deployed: (String, String, Option<String>) = sqlx::query_as(
        "SELECT environment, status, sha FROM outcome_deployments WHERE component_ref = 'component:default/svc-kube'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(deployed.0, "production");
    assert_eq!(deployed.1, "success");
    assert_eq!(
        deployed.2.as_deref(),
        Some("4b825dc642cb6eb9a060e54bf8d69288fbee4904")
    );

    // Running it again converges: same objects, same generation.
    let generation = deployment["metadata"]["generation"].clone();
    let (_, task) = deploy("svc-kube", "registry.example/svc:1.0.0", json!({})).await;
    assert_eq!(task["status"], "completed", "{task}");
    let after = stub
        .get("apps/v1", "Deployment", "payments", "svc-kube")
        .unwrap();
    assert_eq!(after["metadata"]["generation"], generation);

    // A policy violation stops everything before the cluster is asked anything.
    let (bad_id, task) = deploy("svc-latest", "registry.example/svc:latest", json!({})).await;
    assert_eq!(task["status"], "failed", "{task}");
    assert!(stub
        .get("apps/v1", "Deployment", "payments", "svc-latest")
        .is_none());
    assert!(f
        .messages(&bad_id)
        .await
        .iter()
        .all(|m| !m.contains("dry run")));

    // Another team's namespace is refused before anything is sent.
    let (_, task) = deploy(
        "svc-elsewhere",
        "registry.example/svc:1.0.0",
        json!({"namespace": "search"}),
    )
    .await;
    assert_eq!(task["status"], "failed", "{task}");
    assert!(
        task["error"]
            .as_str()
            .unwrap()
            .contains("team payments deploys to the namespace payments on prod-eu, not search"),
        "{task}"
    );
    assert!(stub.get("v1", "Namespace", "", "search").is_none());

    // A rollout that never becomes ready: the timeout, with the cluster's
    // events and the detected problem in the log; the objects stay applied.
    let (stuck_id, task) = deploy(
        "svc-stuck",
        "registry.example/missing:1.0.0",
        json!({"stuck": true}),
    )
    .await;
    assert_eq!(task["status"], "failed", "{task}");
    let error = task["error"].as_str().unwrap();
    assert!(
        error.contains("Deployment/svc-stuck was not ready within 2 s"),
        "{error}"
    );
    let messages = f.messages(&stuck_id).await;
    assert!(
        messages
            .iter()
            .any(|m| m.contains("Failed to pull image \"registry.example/missing:1.0.0\"")),
        "{messages:#?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("problem ImagePullBackOff")),
        "{messages:#?}"
    );
    // Not a Component of the team in the catalog: deployed, not recorded.
    assert!(
        messages.iter().any(|m| m.contains(
            "component:default/svc-stuck is not a Component of team payments in the catalog"
        )),
        "{messages:#?}"
    );
    // No production deployment is recorded for it.
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outcome_deployments WHERE component_ref = 'component:default/svc-stuck'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(count, 0);
}
