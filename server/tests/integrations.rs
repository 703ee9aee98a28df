//! Git-host integrations over the real router: catalog files registered by
//! their GitHub blob URLs, read through a local stand-in of GitHub's REST API
//! (every request checked against GitHub's OpenAPI description) with a token
//! kept in a real OpenBao; conditional refreshes, rate limits, and errors
//! that say what to fix.

mod common;

use axum::http::StatusCode;
use common::tokens::{ADMIN, PAYMENTS_DEV};
use common::vault::TestVault;
use common::*;
use paved_core::auth::{PlatformRole, TeamRole};
use paved_githost_stub::forge::{Forge, ForgeStub};
use paved_githost_stub::gitlab::GitlabStub;
use paved_githost_stub::{GithubStub, Repo};
use serde_json::{json, Value};

const TOKEN: &str = "ghp_stand-in-token-5d1c8e2b-never-shown";
const WEBHOOK_SECRET: &str = "whsec-3f9a7c1e-stand-in";
const GITLAB_TOKEN: &str = "glpat-stand-in-7a41c2d9-never-shown";

const PAYMENTS_API: &str = r#"apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: payments-api
  description:
    $text: ./docs/summary.txt
spec:
  type: service
  lifecycle: production
  owner: group:default/payments
"#;

const INVOICES: &str = r#"apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: invoices
spec:
  type: service
  lifecycle: experimental
  owner: group:default/payments
"#;

struct Fixture {
    app: TestApp,
    github: GithubStub,
    _vault: TestVault,
    dir: tempfile::TempDir,
}

/// Backstage's own example template (`@backstage/create-app`), file by file,
/// as a repository would hold it under `nodejs/`.
fn backstage_example_files() -> Vec<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../node_modules/@backstage/create-app/templates/default-app/examples/template");
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(&root).unwrap().display().to_string();
                out.push((
                    format!("nodejs/{relative}"),
                    std::fs::read_to_string(&path).unwrap(),
                ));
            }
        }
    }
    out
}

async fn fixture(with_credential: bool) -> Fixture {
    fixture_with(
        if with_credential {
            "credential: git/github.com"
        } else {
            ""
        },
        false,
    )
    .await
}

/// The stand-in behind `github.com` with `credential`; with `plain_git`, its
/// smart-HTTP side is also configured as a plain git server (kind `git`,
/// token at `git/plain`).
async fn fixture_with(credential: &str, plain_git: bool) -> Fixture {
    fixture_full(credential, plain_git, &[]).await
}

/// Another host's stand-in to configure: (kind, host, api_base_url, token);
/// its token is kept at `git/{kind}`.
type Extra<'a> = (&'a str, String, String, &'a str);

/// [`fixture_with`], plus `extra` hosts (GitLab, Bitbucket, Azure DevOps,
/// Gitea stand-ins), each with its token in Vault.
async fn fixture_full(credential: &str, plain_git: bool, extra: &[Extra<'_>]) -> Fixture {
    captured_logs();
    let github = GithubStub::start(
        vec![
            Repo::new(
                "acme",
                "payments-api",
                &[
                    ("catalog-info.yaml", PAYMENTS_API),
                    ("docs/summary.txt", "Takes payments for every shop."),
                ],
            )
            .private(),
            Repo::new("acme", "invoices", &[("catalog-info.yaml", INVOICES)]),
            {
                let files = backstage_example_files();
                let borrowed: Vec<(&str, &str)> = files
                    .iter()
                    .map(|(p, c)| (p.as_str(), c.as_str()))
                    .collect();
                Repo::new("acme", "templates", &borrowed).private()
            },
        ],
        &[TOKEN],
        5_000,
    )
    .await;
    let vault = TestVault::start().await;
    vault
        .root(
            "POST",
            "secret/data/platform/git/github.com",
            json!({"data": {"token": TOKEN, "webhook_secret": WEBHOOK_SECRET}}),
        )
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("integrations.yaml");
    let mut yaml = format!(
        "integrations:\n  - host: github.com\n    kind: github\n    api_base_url: {}\n    {credential}\n",
        github.url()
    );
    if plain_git {
        vault
            .root(
                "POST",
                "secret/data/platform/git/plain",
                json!({"data": {"token": TOKEN, "username": "paved"}}),
            )
            .await;
        yaml.push_str(&format!(
            "  - host: {}\n    kind: git\n    credential: git/plain\n",
            github.url().trim_start_matches("http://")
        ));
    }
    for (kind, host, api, token) in extra {
        vault
            .root(
                "POST",
                &format!("secret/data/platform/git/{kind}"),
                json!({"data": {"token": token}}),
            )
            .await;
        yaml.push_str(&format!(
            "  - host: {host}\n    kind: {kind}\n    api_base_url: {api}\n    credential: git/{kind}\n"
        ));
    }
    std::fs::write(&file, yaml).unwrap();
    let git = dir.path().join("git");
    let mut vars: Vec<(&str, String)> = vec![
        ("PAVED_INTEGRATIONS", file.display().to_string()),
        (
            "PAVED_SCAFFOLDER_GIT_HOSTS",
            format!("github.com=file://{}", git.display()),
        ),
        (
            "PAVED_SCAFFOLDER_WORKDIR",
            dir.path().join("work").display().to_string(),
        ),
    ];
    vars.extend(vault.portal_vars());
    let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = test_app(&borrowed).await;
    tokio::spawn(paved_core::scaffold::run_workers(app.state.core.clone()));
    Fixture {
        app,
        github,
        _vault: vault,
        dir,
    }
}

impl Fixture {
    async fn register(&self, url: &str) -> (StatusCode, Value) {
        self.app
            .as_(ADMIN)
            .post(
                "/api/catalog/locations",
                json!({"type": "url", "target": url}),
            )
            .await
    }

    /// Registers `url`, which must read without a problem.
    async fn register_cleanly(&self, url: &str) -> Value {
        let (status, body) = self.register(url).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["problems"], json!([]), "{body}");
        body
    }

    async fn problems(&self, id: &str) -> Vec<String> {
        let (_, body) = self
            .app
            .as_(ADMIN)
            .get(&format!("/api/catalog/locations/{id}/problems"))
            .await;
        body["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["message"].as_str().unwrap().to_owned())
            .collect()
    }
}

#[tokio::test]
async fn a_private_repository_is_read_by_its_blob_url_with_the_token_from_vault() {
    let f = fixture(true).await;
    f.register_cleanly("https://github.com/acme/payments-api/blob/main/catalog-info.yaml")
        .await;
    let (status, entity) = f
        .app
        .as_(PAYMENTS_DEV)
        .get("/api/catalog/entities/by-name/component/default/payments-api")
        .await;
    assert_eq!(status, StatusCode::OK, "{entity}");
    // The $text placeholder was read relative to the file, in the same repository.
    assert_eq!(
        entity["metadata"]["description"],
        "Takes payments for every shop."
    );
    let requests = f.github.requests();
    assert!(requests.len() >= 2, "{requests:?}");
    assert!(requests.iter().all(|r| r.authorized && r.status == 200));
    assert_eq!(f.github.violations(), Vec::<String>::new());

    // A refresh asks conditionally: the unchanged file and its $text
    // placeholder cost one 304 each, and nothing is parsed again.
    let before = f.github.requests().len();
    let parsed = f.app.state.core.catalog.files_parsed();
    let (status, _) = f
        .app
        .as_(ADMIN)
        .post(
            "/api/catalog/refresh",
            json!({"entityRef": "component:default/payments-api"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let refreshed = &f.github.requests()[before..];
    assert_eq!(refreshed.len(), 2, "{refreshed:?}");
    assert!(
        refreshed.iter().all(|r| r.conditional && r.status == 304),
        "{refreshed:?}"
    );
    assert_eq!(f.app.state.core.catalog.files_parsed(), parsed);
    // A change is read on the next refresh.
    f.github.set_file(
        "acme/payments-api",
        "docs/summary.txt",
        "Takes payments, and refunds them.",
    );
    f.app
        .as_(ADMIN)
        .post(
            "/api/catalog/refresh",
            json!({"entityRef": "component:default/payments-api"}),
        )
        .await;
    let (_, entity) = f
        .app
        .as_(PAYMENTS_DEV)
        .get("/api/catalog/entities/by-name/component/default/payments-api")
        .await;
    assert_eq!(
        entity["metadata"]["description"],
        "Takes payments, and refunds them."
    );
    assert_eq!(f.app.state.core.catalog.files_parsed(), parsed + 1);

    // The token never left Vault but for the requests that used it.
    assert!(!contains_bytes(&captured_logs().lock().unwrap(), TOKEN));
    assert!(!contains_bytes(&f.app.database_bytes(), TOKEN));
    assert_eq!(f.github.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn failures_say_what_to_fix() {
    let f = fixture(false).await;
    // Public repositories need no credential.
    f.register_cleanly("https://github.com/acme/invoices/blob/main/catalog-info.yaml")
        .await;
    assert!(f.github.requests().iter().all(|r| !r.authorized));

    // A private repository without a credential: the path, or a credential.
    let (status, body) = f
        .register("https://github.com/acme/payments-api/blob/main/catalog-info.yaml")
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let message = body["problems"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("404") && message.contains("private repository needs a credential"),
        "{body}"
    );

    // A URL that names no file is refused at registration, with the shape to use.
    let (status, body) = f
        .register("https://github.com/acme/invoices/issues/3")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("https://HOST/OWNER/REPO/blob/REF/PATH"));

    // Rate limited: the message says until when, and Paved does not ask again before.
    let (_, locations) = f.app.as_(ADMIN).get("/api/catalog/locations").await;
    let id = locations
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["data"]["target"].as_str().unwrap().contains("invoices"))
        .map(|l| l["data"]["id"].as_str().unwrap().to_owned())
        .unwrap();
    f.github.set_remaining(0);
    let refresh = json!({"entityRef": "component:default/invoices"});
    f.app
        .as_(ADMIN)
        .post("/api/catalog/refresh", refresh.clone())
        .await;
    let problems = f.problems(&id).await;
    assert!(
        problems.iter().any(|p| p.contains("rate-limited")),
        "{problems:?}"
    );
    let asked = f.github.requests().len();
    f.app.as_(ADMIN).post("/api/catalog/refresh", refresh).await;
    assert_eq!(
        f.github.requests().len(),
        asked,
        "no request before the reset"
    );
    let problems = f.problems(&id).await;
    assert!(
        problems
            .iter()
            .any(|p| p.contains("not asked again before")),
        "{problems:?}"
    );
    assert_eq!(f.github.violations(), Vec::<String>::new());
}

/// Backstage's example template registered by its URL in a private
/// repository: its `./content` skeleton is fetched from the same repository
/// folder through the integration (the real task is in the publish test).
#[tokio::test]
async fn a_template_registered_by_url_fetches_its_skeleton_from_the_repository() {
    let f = fixture(true).await;
    f.register_cleanly("https://github.com/acme/templates/blob/main/nodejs/template.yaml")
        .await;
    let values =
        json!({"name": "example-svc", "repoUrl": "github.com?owner=guest&repo=example-svc"});
    let (status, dry) = f
        .app
        .as_(ADMIN)
        .post(
            "/api/scaffolder/v2/dry-run",
            json!({"templateRef": "template:default/example-nodejs-template", "values": values}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    let files: Vec<&str> = dry["directoryContents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    for expected in ["catalog-info.yaml", "index.js", "package.json"] {
        assert!(files.contains(&expected), "{files:?}");
    }

    // No fetched copy of the skeleton is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(f.dir.path().join("work"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".fetch-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(f.github.violations(), Vec::<String>::new());
    let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
    if let Some(at) = logs.find(TOKEN) {
        panic!(
            "the token is in the logs: {}",
            &logs[at.saturating_sub(600)..(at + 100).min(logs.len())]
        );
    }
}

/// A plain git server (kind `git`): a catalog file and a template named as
/// Docker build contexts name them (`REPO.git#REF:PATH`) are read with a
/// shallow, sparse git fetch with the token from Vault; a refresh of an
/// unchanged ref asks only for the ref; the skeleton next to the template
/// comes the same way.
#[tokio::test]
async fn a_plain_git_server_serves_catalog_files_and_skeletons_through_git() {
    let f = fixture_with("credential: git/github.com", true).await;
    let files = backstage_example_files();
    let mut borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    borrowed.push(("catalog-info.yaml", INVOICES));
    f.github.add_git_repo("acme", "platform", &borrowed);
    let base = format!("{}/acme/platform.git", f.github.url());

    f.register_cleanly(&format!("{base}#main:catalog-info.yaml"))
        .await;
    let (status, entity) = f
        .app
        .as_(PAYMENTS_DEV)
        .get("/api/catalog/entities/by-name/component/default/invoices")
        .await;
    assert_eq!(status, StatusCode::OK, "{entity}");
    assert_eq!(entity["spec"]["lifecycle"], "experimental");
    let first = f.github.git_requests();
    assert!(
        first.iter().any(|(m, _)| m == "POST"),
        "the file came over git's smart HTTP: {first:?}"
    );

    // Unchanged: git ls-remote only (the ref advertisement), no fetch, no parse.
    let parsed = f.app.state.core.catalog.files_parsed();
    let refresh = json!({"entityRef": "component:default/invoices"});
    let (status, _) = f
        .app
        .as_(ADMIN)
        .post("/api/catalog/refresh", refresh.clone())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(f.app.state.core.catalog.files_parsed(), parsed);
    let again = &f.github.git_requests()[first.len()..];
    assert!(
        !again.is_empty() && again.len() <= 2,
        "one ls-remote, nothing fetched: {again:?}"
    );

    // A new commit is read on the next refresh.
    f.github.commit(
        "acme/platform",
        &[(
            "catalog-info.yaml",
            &INVOICES.replace("experimental", "production"),
        )],
    );
    f.app.as_(ADMIN).post("/api/catalog/refresh", refresh).await;
    let (_, entity) = f
        .app
        .as_(PAYMENTS_DEV)
        .get("/api/catalog/entities/by-name/component/default/invoices")
        .await;
    assert_eq!(entity["spec"]["lifecycle"], "production");

    // A template from the same server fetches its ./content skeleton with git.
    f.register_cleanly(&format!("{base}#main:nodejs/template.yaml"))
        .await;
    let values =
        json!({"name": "example-svc", "repoUrl": "github.com?owner=guest&repo=example-svc"});
    let (status, dry) = f
        .app
        .as_(ADMIN)
        .post(
            "/api/scaffolder/v2/dry-run",
            json!({"templateRef": "template:default/example-nodejs-template", "values": values}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    let paths: Vec<&str> = dry["directoryContents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    for expected in ["catalog-info.yaml", "index.js", "package.json"] {
        assert!(paths.contains(&expected), "{paths:?}");
    }
    assert!(!paths.contains(&"template.yaml"), "{paths:?}");

    // A ref that does not exist says so on the location.
    let (status, body) = f.register(&format!("{base}#nope:catalog-info.yaml")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let message = body["problems"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("no branch or tag named nope"), "{body}");

    // The token went to git through its environment only.
    assert!(!contains_bytes(&captured_logs().lock().unwrap(), TOKEN));
    assert!(!contains_bytes(&f.app.database_bytes(), TOKEN));
}

async fn run_task(f: &Fixture, template: &str, values: Value) -> Value {
    let (status, created) = f
        .app
        .as_(ADMIN)
        .post(
            "/api/scaffolder/v2/tasks",
            json!({"templateRef": template, "values": values}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap();
    for _ in 0..300 {
        let (_, task) = f
            .app
            .as_(ADMIN)
            .get(&format!("/api/scaffolder/v2/tasks/{id}"))
            .await;
        if matches!(task["status"].as_str(), Some("completed" | "failed")) {
            return task;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("task {id} did not finish");
}

/// `publish:github` on a GitHub integration creates the repository through
/// the API (GitHub never creates one on push), pushes over git's smart HTTP
/// with the token, protects the branch, and `catalog:register` registers the
/// file from the new repository as a URL location; a second task never
/// overwrites it.
#[tokio::test]
async fn publish_github_creates_the_repository_then_pushes_and_registers_it() {
    let f = fixture(true).await;
    f.github.add_org("acme", &["payments"]);
    let (status, body) = f
        .register("https://github.com/acme/templates/blob/main/nodejs/template.yaml")
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let values =
        json!({"name": "example-svc", "repoUrl": "github.com?owner=acme&repo=example-svc"});
    let task = run_task(
        &f,
        "template:default/example-nodejs-template",
        values.clone(),
    )
    .await;
    assert_eq!(task["status"], "completed", "{task}");

    let repo = f
        .github
        .repo("acme/example-svc")
        .expect("the repository was created");
    assert!(repo.private, "private unless the template says otherwise");
    assert_eq!(repo.description.as_deref(), Some("This is example-svc"));
    let files = f.github.files("acme/example-svc", "main").unwrap();
    let package: Value = serde_json::from_slice(&files["package.json"]).unwrap();
    assert_eq!(package["name"], "example-svc");
    assert_eq!(
        f.github.protected(),
        vec![("acme/example-svc".to_owned(), "main".to_owned())]
    );
    let created: Vec<_> = f
        .github
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/orgs/acme/repos")
        .collect();
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0].body.as_ref().unwrap()["visibility"], "private");

    // Registered from the new repository, as a location that refreshes from it.
    let (status, entity) = f
        .app
        .as_(PAYMENTS_DEV)
        .get("/api/catalog/entities/by-name/component/default/example-svc")
        .await;
    assert_eq!(status, StatusCode::OK, "{entity}");
    // As Backstage's catalog does: the repository's slug and the file's folder.
    let annotations = &entity["metadata"]["annotations"];
    assert_eq!(
        annotations["github.com/project-slug"], "acme/example-svc",
        "{entity}"
    );
    assert_eq!(
        annotations["backstage.io/source-location"],
        "url:https://github.com/acme/example-svc/blob/main/",
        "{entity}"
    );
    let (_, locations) = f.app.as_(ADMIN).get("/api/catalog/locations").await;
    assert!(
        locations
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["data"]["type"] == "url"
                && l["data"]["target"]
                    == "https://github.com/acme/example-svc/blob/main/catalog-info.yaml"),
        "{locations}"
    );

    // Another task for the same repository never overwrites it.
    let again = run_task(&f, "template:default/example-nodejs-template", values).await;
    assert_eq!(again["status"], "failed", "{again}");
    assert!(
        again["error"].as_str().unwrap().contains("already exists"),
        "{again}"
    );
    let files_after = f.github.files("acme/example-svc", "main").unwrap();
    assert_eq!(files, files_after);

    // No fetched copy of a skeleton is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(f.dir.path().join("work"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".fetch-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(f.github.violations(), Vec::<String>::new());
    assert!(!contains_bytes(&captured_logs().lock().unwrap(), TOKEN));
    assert!(!contains_bytes(&f.app.database_bytes(), TOKEN));
}

const ALERTS_TEMPLATE: &str = r#"apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: add-alerts
  title: Add alert rules
spec:
  owner: group:default/payments
  type: service
  parameters:
    - title: Where
      required: [repoUrl, service]
      properties:
        repoUrl: { type: string }
        service: { type: string }
  steps:
    - id: fetch
      action: fetch:template
      input:
        url: ./content
        values:
          service: ${{ parameters.service }}
    - id: pr
      action: publish:github:pull-request
      input:
        repoUrl: ${{ parameters.repoUrl }}
        branchName: paved/alerts-${{ parameters.service }}
        title: Add alert rules for ${{ parameters.service }}
        description: Proposed by Paved
        targetPath: monitoring
        reviewers: [octocat]
        teamReviewers: [payments]
  output:
    links:
      - title: Pull request
        url: ${{ steps.pr.output.remoteUrl }}
"#;

/// `publish:github:pull-request` proposes the rendered files to an existing
/// repository: a branch from the default branch with the files under
/// `targetPath`, a pull request with reviewers, the default branch untouched;
/// another task never takes over an open pull request from the same branch.
#[tokio::test]
async fn publish_github_pull_request_proposes_files_to_an_existing_repository() {
    let f = fixture(true).await;
    f.github.add_repo(Repo::new(
        "acme",
        "pr-templates",
        &[
            ("alerts/template.yaml", ALERTS_TEMPLATE),
            (
                "alerts/content/alerts.yaml",
                "service: ${{ values.service }}\n",
            ),
        ],
    ));
    f.github
        .add_git_repo("acme", "payments-src", &[("README.md", "# payments\n")]);
    f.register_cleanly("https://github.com/acme/pr-templates/blob/main/alerts/template.yaml")
        .await;
    let values =
        json!({"repoUrl": "github.com?owner=acme&repo=payments-src", "service": "payments"});
    let task = run_task(&f, "template:default/add-alerts", values.clone()).await;
    assert_eq!(task["status"], "completed", "{task}");

    let pulls = f.github.pulls();
    assert_eq!(pulls.len(), 1, "{pulls:?}");
    let pull = &pulls[0];
    assert_eq!(
        (pull.head.as_str(), pull.base.as_str(), pull.title.as_str()),
        (
            "paved/alerts-payments",
            "main",
            "Add alert rules for payments"
        )
    );
    assert_eq!(pull.reviewers, vec!["octocat".to_owned()]);
    assert_eq!(pull.team_reviewers, vec!["payments".to_owned()]);
    let proposed = f
        .github
        .files("acme/payments-src", "paved/alerts-payments")
        .unwrap();
    assert_eq!(proposed["monitoring/alerts.yaml"], b"service: payments\n");
    assert_eq!(proposed["README.md"], b"# payments\n");
    let main = f.github.files("acme/payments-src", "main").unwrap();
    assert_eq!(main.keys().collect::<Vec<_>>(), vec!["README.md"]);
    let output = task["output"].to_string();
    assert!(
        output.contains("https://github.com/acme/payments-src/pull/1"),
        "{task}"
    );

    // Another task with the same branch finds the pull request open, and stops.
    let again = run_task(&f, "template:default/add-alerts", values).await;
    assert_eq!(again["status"], "failed", "{again}");
    let error = again["error"].as_str().unwrap();
    assert!(
        error.contains("pull request #1") && error.contains("already open"),
        "{again}"
    );
    assert_eq!(f.github.pulls().len(), 1);
    assert_eq!(
        f.github
            .files("acme/payments-src", "paved/alerts-payments")
            .unwrap(),
        proposed
    );
    assert_eq!(f.github.violations(), Vec::<String>::new());
    assert!(!contains_bytes(&captured_logs().lock().unwrap(), TOKEN));
}

const GITLAB_TEMPLATE: &str = r#"apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: gitlab-service
  title: A service on GitLab
spec:
  owner: group:default/payments
  type: service
  parameters:
    - title: Name
      required: [name]
      properties:
        name: { type: string }
  steps:
    - id: fetch
      action: fetch:template
      input:
        url: ./content
        values:
          name: ${{ parameters.name }}
    - id: publish
      action: publish:gitlab
      input:
        repoUrl: HOST?owner=acme&repo=${{ parameters.name }}
        description: The ${{ parameters.name }} service
        topics: [paved]
    - id: register
      action: catalog:register
      input:
        repoContentsUrl: ${{ steps.publish.output.repoContentsUrl }}
        catalogInfoPath: /catalog-info.yaml
"#;

/// GitLab end to end: a template in a private project read by its `/-/blob/`
/// URL (raw files API with `PRIVATE-TOKEN`, ETags), its skeleton fetched with
/// git, and `publish:gitlab` creating the project in its group through the
/// API before pushing; the entity registered from the new project refreshes
/// with a 304; a second task never overwrites the project.
#[tokio::test]
async fn gitlab_templates_are_read_and_publish_gitlab_creates_the_project() {
    let gitlab = GitlabStub::start(None, &["acme"], &[GITLAB_TOKEN]).await;
    let template = GITLAB_TEMPLATE.replace("HOST", &gitlab.host());
    gitlab.add_project(
        "acme/templates",
        true,
        &[
            ("service/template.yaml", template.as_str()),
            (
                "service/content/catalog-info.yaml",
                "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: ${{ values.name }}\nspec:\n  type: service\n  lifecycle: experimental\n  owner: group:default/payments\n",
            ),
        ],
    );
    let f = fixture_full(
        "credential: git/github.com",
        false,
        &[("gitlab", gitlab.host(), gitlab.api_url(), GITLAB_TOKEN)],
    )
    .await;
    f.register_cleanly(&format!(
        "https://{}/acme/templates/-/blob/main/service/template.yaml",
        gitlab.host()
    ))
    .await;
    let task = run_task(
        &f,
        "template:default/gitlab-service",
        json!({"name": "ledger"}),
    )
    .await;
    assert_eq!(task["status"], "completed", "{task}");

    let project = gitlab
        .project("acme/ledger")
        .expect("the project was created");
    assert_eq!(project.visibility, "private");
    assert_eq!(project.description, "The ledger service");
    assert_eq!(project.topics, vec!["paved".to_owned()]);
    let files = project.files("main").unwrap();
    assert!(String::from_utf8_lossy(&files["catalog-info.yaml"]).contains("name: ledger"));
    let (status, entity) = f
        .app
        .as_(PAYMENTS_DEV)
        .get("/api/catalog/entities/by-name/component/default/ledger")
        .await;
    assert_eq!(status, StatusCode::OK, "{entity}");
    assert_eq!(
        entity["metadata"]["annotations"]["gitlab.com/project-slug"], "acme/ledger",
        "{entity}"
    );

    // A refresh of the new entity's file is one conditional request.
    let before = gitlab.requests().len();
    f.app
        .as_(ADMIN)
        .post(
            "/api/catalog/refresh",
            json!({"entityRef": "component:default/ledger"}),
        )
        .await;
    let refreshed = &gitlab.requests()[before..];
    assert_eq!(refreshed.len(), 1, "{refreshed:?}");
    assert_eq!(refreshed[0].2, 304, "{refreshed:?}");

    // Another task for the same project never overwrites it.
    let again = run_task(
        &f,
        "template:default/gitlab-service",
        json!({"name": "ledger"}),
    )
    .await;
    assert_eq!(again["status"], "failed", "{again}");
    assert!(
        again["error"].as_str().unwrap().contains("already exists"),
        "{again}"
    );
    assert_eq!(project.files("main").unwrap(), files);

    assert_eq!(gitlab.violations(), Vec::<String>::new());
    assert!(!contains_bytes(
        &captured_logs().lock().unwrap(),
        GITLAB_TOKEN
    ));
    assert!(!contains_bytes(&f.app.database_bytes(), GITLAB_TOKEN));
}

const BITBUCKET_TOKEN: &str = "bbat-stand-in-91c3e0aa-never-shown";
const FORGE_TOKEN: &str = "pat-stand-in-2b7d90f1-never-shown";

/// A template that renders `./content` and publishes with `ACTION` to
/// `REPO_URL` (`NAME` stands for the parameter), then registers the new
/// repository's catalog file.
const PUBLISHING_TEMPLATE: &str = r#"apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: TEMPLATE_NAME
spec:
  owner: group:default/payments
  type: service
  parameters:
    - title: Name
      required: [name]
      properties:
        name: { type: string }
  steps:
    - id: fetch
      action: fetch:template
      input:
        url: ./content
        values:
          name: ${{ parameters.name }}
    - id: publish
      action: ACTION
      input:
        repoUrl: REPO_URL
        description: The ${{ parameters.name }} service
    - id: register
      action: catalog:register
      input:
        repoContentsUrl: ${{ steps.publish.output.repoContentsUrl }}
        catalogInfoPath: /catalog-info.yaml
"#;

const SKELETON_CATALOG_INFO: &str = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: ${{ values.name }}\nspec:\n  type: service\n  lifecycle: experimental\n  owner: group:default/payments\n";

/// Bitbucket Cloud and Bitbucket Data Center end to end: a template in a
/// private repository read by its `/src/` or `/browse/` URL with the Bearer
/// token from Vault, its skeleton fetched with git from the host's clone
/// path, and `publish:bitbucket` (and Backstage's per-kind names) creating
/// the repository through the API before pushing; the registered entity
/// refreshes with one 304; a second task never overwrites the repository.
#[tokio::test]
async fn bitbucket_templates_are_read_and_publish_bitbucket_creates_the_repository() {
    let cloud = ForgeStub::start(Forge::BitbucketCloud, &["acme"], &[BITBUCKET_TOKEN]).await;
    let server = ForgeStub::start(Forge::BitbucketServer, &["PLAT"], &[BITBUCKET_TOKEN]).await;
    let cases = [
        (
            &cloud,
            "acme/templates",
            "publish:bitbucketCloud",
            format!("{}?workspace=acme&project=PAY&repo=${{{{ parameters.name }}}}", cloud.host()),
            format!("https://{}/acme/templates/src/main/service/template.yaml", cloud.host()),
            "acme/ledger",
        ),
        (
            &server,
            "PLAT/templates",
            "publish:bitbucket",
            format!("{}?project=PLAT&repo=${{{{ parameters.name }}}}", server.host()),
            format!(
                "https://{}/projects/PLAT/repos/templates/browse/service/template.yaml?at=refs/heads/main",
                server.host()
            ),
            "PLAT/ledger-dc",
        ),
    ];
    for (stub, repo, action, repo_url, _, _) in &cases {
        let template = PUBLISHING_TEMPLATE
            .replace(
                "TEMPLATE_NAME",
                &format!("on-{}", stub.host().replace([':', '.'], "-")),
            )
            .replace("ACTION", action)
            .replace("REPO_URL", repo_url);
        stub.add_repo(
            repo,
            true,
            &[
                ("service/template.yaml", template.as_str()),
                ("service/content/catalog-info.yaml", SKELETON_CATALOG_INFO),
            ],
        );
    }
    let f = fixture_full(
        "credential: git/github.com",
        false,
        &[
            (
                "bitbucket-cloud",
                cloud.host(),
                cloud.api_url(),
                BITBUCKET_TOKEN,
            ),
            (
                "bitbucket-server",
                server.host(),
                server.api_url(),
                BITBUCKET_TOKEN,
            ),
        ],
    )
    .await;
    for (stub, _, _, _, template_url, created) in &cases {
        f.register_cleanly(template_url).await;
        let template = format!(
            "template:default/on-{}",
            stub.host().replace([':', '.'], "-")
        );
        let name = created.rsplit('/').next().unwrap();
        let task = run_task(&f, &template, json!({"name": name})).await;
        assert_eq!(task["status"], "completed", "{task}");

        let hosted = stub.repo(created).expect("the repository was created");
        assert!(hosted.private, "repositories are private unless asked");
        assert_eq!(hosted.description, format!("The {name} service"));
        let files = hosted.files("main").unwrap();
        assert!(
            String::from_utf8_lossy(&files["catalog-info.yaml"]).contains(&format!("name: {name}"))
        );
        let (status, entity) = f
            .app
            .as_(PAYMENTS_DEV)
            .get(&format!(
                "/api/catalog/entities/by-name/component/default/{name}"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{entity}");

        // A refresh of the new entity's file is one conditional request.
        let before = stub.requests().len();
        f.app
            .as_(ADMIN)
            .post(
                "/api/catalog/refresh",
                json!({"entityRef": format!("component:default/{name}")}),
            )
            .await;
        let refreshed = &stub.requests()[before..];
        assert_eq!(refreshed.len(), 1, "{refreshed:?}");
        assert_eq!(refreshed[0].2, 304, "{refreshed:?}");

        // Another task for the same repository never overwrites it.
        let again = run_task(&f, &template, json!({"name": name})).await;
        assert_eq!(again["status"], "failed", "{again}");
        assert!(
            again["error"].as_str().unwrap().contains("already exists"),
            "{again}"
        );
        assert_eq!(hosted.files("main").unwrap(), files);
        assert_eq!(stub.violations(), Vec::<String>::new());
    }
    assert!(!contains_bytes(
        &captured_logs().lock().unwrap(),
        BITBUCKET_TOKEN
    ));
    assert!(!contains_bytes(&f.app.database_bytes(), BITBUCKET_TOKEN));
}

/// Azure DevOps and Gitea: catalog files and templates read by the hosts'
/// own URLs (`_git/REPO?path=…&version=GB…`, `/src/branch/…`) through
/// their file APIs with each host's way of sending the token, skeletons
/// fetched with git from their clone paths (a dry run renders them), and
/// an unchanged refresh answered 304.
#[tokio::test]
async fn azure_devops_and_gitea_files_and_skeletons_are_read_with_their_own_credentials() {
    let azure = ForgeStub::start(Forge::AzureDevops, &[], &[FORGE_TOKEN]).await;
    let gitea = ForgeStub::start(Forge::Gitea, &[], &[FORGE_TOKEN]).await;
    let cases = [
        (
            &azure,
            "acme/platform/templates",
            format!("https://{}/acme/platform/_git/templates?path=/service/template.yaml&version=GBmain", azure.host()),
            format!("https://{}/acme/platform/_git/templates?path=/catalog-info.yaml", azure.host()),
        ),
        (
            &gitea,
            "acme/templates",
            format!("https://{}/acme/templates/src/branch/main/service/template.yaml", gitea.host()),
            format!("https://{}/acme/templates/src/branch/main/catalog-info.yaml", gitea.host()),
        ),
    ];
    for (i, (stub, repo, _, _)) in cases.iter().enumerate() {
        let template = PUBLISHING_TEMPLATE
            .replace("TEMPLATE_NAME", &format!("read-{i}"))
            .replace("ACTION", "publish:github")
            .replace(
                "REPO_URL",
                "github.com?owner=acme&repo=${{ parameters.name }}",
            );
        stub.add_repo(
            repo,
            true,
            &[
                ("service/template.yaml", template.as_str()),
                ("service/content/catalog-info.yaml", SKELETON_CATALOG_INFO),
                ("service/content/docs/index.md", "# ${{ values.name }}\n"),
                (
                    "catalog-info.yaml",
                    &component(&format!("hosted-{i}"), "first"),
                ),
            ],
        );
    }
    let f = fixture_full(
        "credential: git/github.com",
        false,
        &[
            ("azure-devops", azure.host(), azure.api_url(), FORGE_TOKEN),
            ("gitea", gitea.host(), gitea.api_url(), FORGE_TOKEN),
        ],
    )
    .await;
    for (i, (stub, _, template_url, catalog_url)) in cases.iter().enumerate() {
        f.register_cleanly(catalog_url).await;
        let (status, entity) = f
            .app
            .as_(PAYMENTS_DEV)
            .get(&format!(
                "/api/catalog/entities/by-name/component/default/hosted-{i}"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{entity}");
        assert_eq!(entity["metadata"]["description"], "first");

        f.register_cleanly(template_url).await;
        let (status, dry) = f
            .app
            .as_(ADMIN)
            .post(
                "/api/scaffolder/v2/dry-run",
                json!({"templateRef": format!("template:default/read-{i}"), "values": {"name": "dry-svc"}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{dry}");
        let files: Vec<(&str, &str)> = dry["directoryContents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["path"].as_str().unwrap(),
                    f["base64Content"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        let paths: Vec<&str> = files.iter().map(|(p, _)| *p).collect();
        assert!(
            paths.contains(&"catalog-info.yaml") && paths.contains(&"docs/index.md"),
            "{paths:?}"
        );

        let before = stub.requests().len();
        f.app
            .as_(ADMIN)
            .post(
                "/api/catalog/refresh",
                json!({"entityRef": format!("component:default/hosted-{i}")}),
            )
            .await;
        let refreshed = &stub.requests()[before..];
        assert_eq!(refreshed.len(), 1, "{refreshed:?}");
        assert_eq!(refreshed[0].2, 304, "{refreshed:?}");
        assert_eq!(stub.violations(), Vec::<String>::new());
    }
    assert!(!contains_bytes(
        &captured_logs().lock().unwrap(),
        FORGE_TOKEN
    ));
    assert!(!contains_bytes(&f.app.database_bytes(), FORGE_TOKEN));
}

/// GitLab group discovery as Backstage writes it (`gitlab-discovery`,
/// `https://HOST/GROUP/blob/*/PATH`): every project of the group and its
/// subgroups is listed through GitLab's API, archived ones skipped; each
/// project with the file becomes its own location (a broken file reported
/// there); an unchanged rescan is one listing page and one conditional read
/// per project.
#[tokio::test]
async fn a_gitlab_group_is_discovered_with_its_subgroups() {
    let gitlab = GitlabStub::start(None, &["acme", "acme/platform"], &[GITLAB_TOKEN]).await;
    for i in 0..6 {
        let name = format!("svc-{i}");
        let content = match i {
            2 => "kind: Component\nmetadata: [not, a, mapping\n".to_owned(),
            _ => component(&name, "first"),
        };
        let files: Vec<(&str, &str)> = if i == 3 {
            vec![("README.md", "no catalog file here")]
        } else {
            vec![("catalog-info.yaml", content.as_str())]
        };
        gitlab.add_project(&format!("acme/{name}"), true, &files);
    }
    gitlab.archive("acme/svc-4");
    gitlab.add_project(
        "acme/platform/tools",
        true,
        &[("catalog-info.yaml", &component("tools", "first"))],
    );
    let f = fixture_full(
        "credential: git/github.com",
        false,
        &[("gitlab", gitlab.host(), gitlab.api_url(), GITLAB_TOKEN)],
    )
    .await;
    let target = format!("https://{}/acme/blob/*/catalog-info.yaml", gitlab.host());
    let (status, refused) = f
        .app
        .as_(ADMIN)
        .post(
            "/api/catalog/locations",
            json!({"type": "github-discovery", "target": target}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(
        refused.to_string().contains("not on a GitHub host"),
        "{refused}"
    );

    let (status, body) = f
        .app
        .as_(ADMIN)
        .post(
            "/api/catalog/locations",
            json!({"type": "gitlab-discovery", "target": target}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["location"]["type"], "gitlab-discovery", "{body}");
    let discovery_id = body["location"]["id"].as_str().unwrap().to_owned();
    assert!(f.problems(&discovery_id).await.is_empty());

    let (_, locations) = f.app.as_(ADMIN).get("/api/catalog/locations").await;
    let mut discovered: Vec<(String, i64)> = locations
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["data"])
        .filter(|l| l["type"] == "url")
        .map(|l| {
            (
                l["target"].as_str().unwrap().to_owned(),
                l["problemCount"].as_i64().unwrap(),
            )
        })
        .collect();
    discovered.sort();
    let host = gitlab.host();
    let expected: Vec<(String, i64)> = [
        ("acme/platform/tools", 0),
        ("acme/svc-0", 0),
        ("acme/svc-1", 0),
        ("acme/svc-2", 1),
        ("acme/svc-5", 0),
    ]
    .iter()
    .map(|(p, n)| {
        (
            format!("https://{host}/{p}/-/blob/main/catalog-info.yaml"),
            *n,
        )
    })
    .collect();
    assert_eq!(discovered, expected);
    for name in ["svc-0", "svc-1", "svc-5", "tools"] {
        let (status, entity) = f
            .app
            .as_(PAYMENTS_DEV)
            .get(&format!(
                "/api/catalog/entities/by-name/component/default/{name}"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{name}: {entity}");
    }

    // An unchanged rescan: one listing page and one conditional read per project.
    let before = gitlab.requests().len();
    let (status, _) = f
        .app
        .as_(ADMIN)
        .post("/api/catalog/refresh", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let rescan = &gitlab.requests()[before..];
    let listings = rescan.iter().filter(|r| r.1.contains("/groups/")).count();
    let reads: Vec<_> = rescan.iter().filter(|r| r.1.contains("/raw?")).collect();
    assert_eq!(listings, 1, "{rescan:?}");
    // Six projects are not archived: five files unchanged, one project without the file.
    assert_eq!(reads.len(), 6, "{rescan:?}");
    assert_eq!(reads.iter().filter(|r| r.2 == 304).count(), 5, "{rescan:?}");
    assert!(
        reads.iter().any(|r| r.1.contains("svc-3") && r.2 == 404),
        "{rescan:?}"
    );
    assert_eq!(gitlab.violations(), Vec::<String>::new());
    assert!(!contains_bytes(
        &captured_logs().lock().unwrap(),
        GITLAB_TOKEN
    ));
}

fn component(name: &str, description: &str) -> String {
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  description: {description}\nspec:\n  type: service\n  lifecycle: production\n  owner: group:default/payments\n"
    )
}

/// A signed GitHub `push` delivery for `full_name`'s main branch.
fn push_delivery(full_name: &str, secret: &str) -> (String, String) {
    let body = json!({
        "ref": "refs/heads/main",
        "repository": {"full_name": full_name, "html_url": format!("https://github.com/{full_name}")},
        "commits": [{"modified": ["catalog-info.yaml"]}],
    })
    .to_string();
    let signature = format!(
        "sha256={}",
        hex::encode(paved_core::integrations::hmac_sha256(
            secret.as_bytes(),
            body.as_bytes()
        ))
    );
    (body, signature)
}

/// Discovery of an organization with 50 repositories: each repository with
/// the file becomes its own location (two broken files reported there),
/// archived ones and those without the file are skipped; an unchanged
/// rescan costs one request per repository; a signed push refreshes only
/// the location it changes.
#[tokio::test]
async fn an_organization_is_discovered_and_a_push_refreshes_only_its_location() {
    let f = fixture(true).await;
    f.github.add_org("acme", &["payments"]);
    for i in 0..50 {
        let name = format!("svc-{i:02}");
        let content = match i {
            3 => "kind: Component\nmetadata: [not, a, mapping\n".to_owned(),
            4 => "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: svc-04\n"
                .to_owned(),
            _ => component(&name, "first"),
        };
        let mut repo = if i == 5 {
            Repo::new("acme", &name, &[("README.md", "no catalog file here")])
        } else {
            Repo::new("acme", &name, &[("catalog-info.yaml", content.as_str())])
        };
        repo.archived = i >= 48;
        f.github.add_repo(repo);
    }
    let (status, body) = f
        .app
        .as_(ADMIN)
        .post(
            "/api/catalog/locations",
            json!({"type": "github-discovery", "target": "https://github.com/acme/svc-*/blob/-/catalog-info.yaml"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["problems"], json!([]), "{body}");
    let discovery_id = body["location"]["id"].as_str().unwrap().to_owned();

    let (_, locations) = f.app.as_(ADMIN).get("/api/catalog/locations").await;
    let discovered: Vec<&Value> = locations
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["data"])
        .filter(|l| {
            l["type"] == "url"
                && l["target"]
                    .as_str()
                    .unwrap()
                    .starts_with("https://github.com/acme/svc-")
        })
        .collect();
    // 50 repositories: one without the file and two archived are not locations.
    assert_eq!(discovered.len(), 47, "{locations}");
    let mut with_problems: Vec<&str> = discovered
        .iter()
        .filter(|l| l["problemCount"].as_i64().unwrap() > 0)
        .map(|l| l["target"].as_str().unwrap())
        .collect();
    with_problems.sort();
    assert_eq!(
        with_problems,
        [
            "https://github.com/acme/svc-03/blob/main/catalog-info.yaml",
            "https://github.com/acme/svc-04/blob/main/catalog-info.yaml"
        ]
    );
    let (_, page) = f
        .app
        .as_(ADMIN)
        .get(
            "/api/catalog/entities/by-query?filter=kind=component&limit=1&fullTextFilterTerm=first",
        )
        .await;
    assert_eq!(page["totalItems"], 45, "{page}");
    assert!(f.problems(&discovery_id).await.is_empty());

    // An unchanged rescan: one listing page and one conditional read per repository.
    let before = f.github.requests().len();
    let (status, _) = f
        .app
        .as_(ADMIN)
        .post("/api/catalog/refresh", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let rescan = &f.github.requests()[before..];
    let reads: Vec<_> = rescan
        .iter()
        .filter(|r| r.path.contains("/contents/"))
        .collect();
    // One read per repository that is not archived: unchanged files answer
    // 304; the repository without the file is asked again (it may have one now).
    assert_eq!(reads.len(), 48, "{rescan:?}");
    assert!(
        reads.iter().all(|r| (r.conditional && r.status == 304)
            || (r.path == "/repos/acme/svc-05/contents/catalog-info.yaml" && r.status == 404)),
        "{reads:?}"
    );
    assert_eq!(
        rescan.len() - reads.len(),
        1,
        "one listing page: {rescan:?}"
    );

    // A push to svc-07 refreshes its location, and only that one.
    f.github.set_file(
        "acme/svc-07",
        "catalog-info.yaml",
        &component("svc-07", "second"),
    );
    let (forged, _) = push_delivery("acme/svc-07", WEBHOOK_SECRET);
    let bad = axum::http::Request::post("/api/catalog/webhooks/github")
        .header("x-github-event", "push")
        .header("x-hub-signature-256", format!("sha256={}", "0".repeat(64)))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(forged))
        .unwrap();
    assert_status(&f.app.send(bad).await, StatusCode::UNAUTHORIZED);
    let before = f.github.requests().len();
    let (body, signature) = push_delivery("acme/svc-07", WEBHOOK_SECRET);
    let delivery = axum::http::Request::post("/api/catalog/webhooks/github")
        .header("x-github-event", "push")
        .header("x-hub-signature-256", signature)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body))
        .unwrap();
    let response = f.app.send(delivery).await;
    assert_status(&response, StatusCode::ACCEPTED);
    let answer = body_json(response).await;
    assert_eq!(answer["refreshed"].as_array().unwrap().len(), 1, "{answer}");
    let mut description = Value::Null;
    for _ in 0..100 {
        let (_, entity) = f
            .app
            .as_(PAYMENTS_DEV)
            .get("/api/catalog/entities/by-name/component/default/svc-07")
            .await;
        description = entity["metadata"]["description"].clone();
        if description == "second" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(description, "second");
    let after: Vec<String> = f.github.requests()[before..]
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        after,
        ["/repos/acme/svc-07/contents/catalog-info.yaml"],
        "only svc-07 was read"
    );

    assert_eq!(f.github.violations(), Vec::<String>::new());
    assert!(!contains_bytes(&captured_logs().lock().unwrap(), TOKEN));
    assert!(!contains_bytes(
        &captured_logs().lock().unwrap(),
        WEBHOOK_SECRET
    ));
}

/// Platform admins see each git host (where its credential lives, never the
/// credential), its rate limit as the host last reported it and how many
/// locations read through it, and test its connection; others are refused.
#[tokio::test]
async fn admins_see_each_git_host_and_test_its_connection() {
    let f = fixture(true).await;
    // The token expires in three days, as GitHub says on every answer.
    let expires = paved_core::now_unix() + 3 * 86_400;
    let stamp = jiff::Timestamp::from_second(expires)
        .unwrap()
        .strftime("%Y-%m-%d %H:%M:%S UTC")
        .to_string();
    f.github.set_token_expiration(&stamp);
    let (status, body) = f
        .register("https://github.com/acme/invoices/blob/main/catalog-info.yaml")
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let admin = f
        .app
        .session_for("ada", &[], &[PlatformRole::PlatformAdmin])
        .await;
    let response = f
        .app
        .with_session(&admin)
        .call("integrations_overview", "")
        .await;
    assert_status(&response, StatusCode::OK);
    let text = body_text(response).await;
    assert!(!text.contains(TOKEN));
    let list: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(list[0]["host"], "github.com");
    assert_eq!(list[0]["kind"], "github");
    assert_eq!(list[0]["credential"], "token at git/github.com in Vault");
    assert_eq!(list[0]["locations"], 1);
    assert_eq!(list[0]["rate_limit"], 5000);
    assert!(list[0]["rate_remaining"].as_i64().unwrap() < 5000);
    assert_eq!(list[0]["token_expires_at"], expires);
    assert_eq!(list[0]["token_expires_soon"], true);
    assert_eq!(list[0]["token_renewed"], false);

    let response = f
        .app
        .with_session(&admin)
        .call("integration_test", "host=github.com")
        .await;
    assert_status(&response, StatusCode::OK);
    let check = body_json(response).await;
    assert_eq!(check["ok"], true, "{check}");
    assert!(
        check["message"]
            .as_str()
            .unwrap()
            .starts_with("Connected to github.com"),
        "{check}"
    );
    assert!(
        check["message"]
            .as_str()
            .unwrap()
            .contains("The token expires on"),
        "{check}"
    );

    // The location page says which integration reads it.
    let (_, locations) = f.app.as_(ADMIN).get("/api/catalog/locations").await;
    let id = locations[0]["data"]["id"].as_str().unwrap();
    let response = f
        .app
        .with_session(&admin)
        .call("catalog_location", &format!("id={id}"))
        .await;
    assert_status(&response, StatusCode::OK);
    assert_eq!(
        body_json(response).await["integration"],
        "github.com (github)"
    );

    let member = f
        .app
        .session_for("dana", &[("payments", TeamRole::Member)], &[])
        .await;
    for (name, form) in [
        ("integrations_overview", ""),
        ("integration_test", "host=github.com"),
    ] {
        let response = f.app.with_session(&member).call(name, form).await;
        assert_status(&response, StatusCode::FORBIDDEN);
    }
    assert_eq!(f.github.violations(), Vec::<String>::new());
}

/// Reads through a GitHub App: Paved signs a JWT with the App's key from
/// Vault, finds the installation, mints an installation token, reuses it,
/// and mints a new one when the old one is within five minutes of expiry;
/// neither the key nor a token is ever logged or stored.
#[tokio::test]
async fn a_github_app_mints_installation_tokens_and_renews_them() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("app.pem");
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let private_key = openssl(&["genrsa", "-traditional", "2048"]);
    std::fs::write(&key_path, &private_key).unwrap();
    let public_key = openssl(&["rsa", "-in", key_path.to_str().unwrap(), "-pubout"]);

    let f = fixture_with(
        "credential: { app_id: 42, private_key: git/github-app }",
        false,
    )
    .await;
    // Installation tokens that live two minutes are within five minutes of
    // expiry at once: each use mints a new one.
    f.github.with_app(42, &public_key, 120);
    f._vault
        .root(
            "POST",
            "secret/data/platform/git/github-app",
            json!({"data": {"private_key": private_key}}),
        )
        .await;
    f.register_cleanly("https://github.com/acme/payments-api/blob/main/catalog-info.yaml")
        .await;
    assert_eq!(f.github.minted(), 2, "the file and its $text placeholder");

    // Tokens that live an hour are reused: one more mint, then none.
    f.github.set_token_lifetime(3600);
    let refresh = json!({"entityRef": "component:default/payments-api"});
    f.app
        .as_(ADMIN)
        .post("/api/catalog/refresh", refresh.clone())
        .await;
    assert_eq!(f.github.minted(), 3);
    f.github
        .set_file("acme/payments-api", "docs/summary.txt", "Renewed.");
    f.app.as_(ADMIN).post("/api/catalog/refresh", refresh).await;
    assert_eq!(f.github.minted(), 3, "the fresh token is reused");
    let (_, entity) = f
        .app
        .as_(PAYMENTS_DEV)
        .get("/api/catalog/entities/by-name/component/default/payments-api")
        .await;
    assert_eq!(entity["metadata"]["description"], "Renewed.");

    // The page shows the current installation token's expiry, renewed by Paved.
    let admin = f
        .app
        .session_for("ada", &[], &[PlatformRole::PlatformAdmin])
        .await;
    let response = f
        .app
        .with_session(&admin)
        .call("integrations_overview", "")
        .await;
    let list: Value = serde_json::from_str(&body_text(response).await).unwrap();
    assert_eq!(list[0]["token_renewed"], true, "{list}");
    assert_eq!(list[0]["token_expires_soon"], false, "{list}");
    assert!(list[0]["token_expires_at"].as_i64().is_some(), "{list}");

    assert_eq!(f.github.violations(), Vec::<String>::new());
    let logs = captured_logs();
    let logs = logs.lock().unwrap();
    assert!(!contains_bytes(&logs, "BEGIN RSA PRIVATE KEY"));
    assert!(!contains_bytes(&logs, "ghs_stub_installation_"));
    assert!(!contains_bytes(
        &f.app.database_bytes(),
        "ghs_stub_installation_"
    ));
    assert!(!contains_bytes(&f.app.database_bytes(), "PRIVATE KEY"));
}

/// Attack: a repository whose tree names a file outside the skeleton folder
/// (`..`) is refused before anything is written; a forged webhook for a host
/// that is not configured is refused too.
#[tokio::test]
async fn attack_hostile_trees_and_foreign_webhooks_are_refused() {
    let f = fixture(true).await;
    let mut files = backstage_example_files();
    files.push((
        "nodejs/content/../../escaped.txt".to_owned(),
        "outside".to_owned(),
    ));
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    f.github.add_repo(Repo::new("evil", "templates", &borrowed));
    f.register_cleanly("https://github.com/evil/templates/blob/main/nodejs/template.yaml")
        .await;
    let (status, dry) = f
        .app
        .as_(ADMIN)
        .post(
            "/api/scaffolder/v2/dry-run",
            json!({"templateRef": "template:default/example-nodejs-template",
                   "values": {"name": "x-svc", "repoUrl": "github.com?owner=acme&repo=x-svc"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert!(
        dry.to_string().contains("which Paved will not write"),
        "{dry}"
    );
    assert!(!f.dir.path().join("escaped.txt").exists());
    assert!(!f.dir.path().join("work/escaped.txt").exists());

    let body = json!({"ref": "refs/heads/main",
                      "repository": {"full_name": "a/b", "html_url": "https://gitlab.evil.example/a/b"}})
    .to_string();
    let forged = axum::http::Request::post("/api/catalog/webhooks/github")
        .header("x-github-event", "push")
        .header("x-hub-signature-256", format!("sha256={}", "0".repeat(64)))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body))
        .unwrap();
    assert_status(&f.app.send(forged).await, StatusCode::NOT_FOUND);
    let unsigned = axum::http::Request::post("/api/catalog/webhooks/github")
        .header("x-github-event", "push")
        .body(axum::body::Body::from("{}"))
        .unwrap();
    assert_status(&f.app.send(unsigned).await, StatusCode::UNAUTHORIZED);
}
