//! The GitHub stand-in as a program, for the discovery benchmark
//! (`scripts/bench-discovery.sh`): an organization of N public repositories,
//! each with a `catalog-info.yaml`, and `GET /_stub/stats` answering how many
//! requests came and the most that were in flight at once.
//!
//! `POST /_stub/file` (`{"repo": "acme/svc-0007", "path": "...", "content": "..."}`)
//! changes a file, as a push would.
//!
//! paved-githost-stub [--port N] [--org NAME] [--repos N] [--token T] [--token-expires-in-days D]

use std::sync::Arc;

use paved_githost_stub::{GithubStub, Repo};

fn usage() -> ! {
    eprintln!("usage: paved-githost-stub [--port N] [--org NAME] [--repos N] [--token T] [--token-expires-in-days D]");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let (mut port, mut org, mut count) = (9460u16, "acme".to_owned(), 2000usize);
    let mut tokens: Vec<String> = Vec::new();
    let mut expires_in_days: Option<i64> = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--port" => port = value.parse().unwrap_or_else(|_| usage()),
            "--org" => org = value,
            "--repos" => count = value.parse().unwrap_or_else(|_| usage()),
            "--token" => tokens.push(value),
            "--token-expires-in-days" => {
                expires_in_days = Some(value.parse().unwrap_or_else(|_| usage()))
            }
            _ => usage(),
        }
    }
    let repos: Vec<Repo> = (0..count)
        .map(|i| {
            let name = format!("svc-{i:04}");
            let yaml = format!(
                "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  description: Service {i}\nspec:\n  type: service\n  lifecycle: production\n  owner: group:default/team-{}\n",
                i % 40
            );
            Repo::new(&org, &name, &[("catalog-info.yaml", &yaml)])
        })
        .collect();
    let accepted: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let stub = Arc::new(GithubStub::start_on(port, repos, &accepted, i64::MAX / 2).await);
    stub.add_org(&org, &[]);
    if let Some(days) = expires_in_days {
        let at = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_hours(24 * days))
            .expect("a time within range");
        stub.set_token_expiration(&at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string());
    }
    eprintln!(
        "GitHub stand-in at {} with {count} repositories in {org}",
        stub.url()
    );
    let stats = stub.clone();
    let files = stub.clone();
    let app = axum::Router::new()
        .route(
            "/_stub/file",
            axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
                let stub = files.clone();
                async move {
                    let field = |k: &str| body[k].as_str().unwrap_or_default().to_owned();
                    stub.set_file(&field("repo"), &field("path"), &field("content"));
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        )
        .route(
            "/_stub/stats",
            axum::routing::get(move || {
                let stub = stats.clone();
                async move {
                    axum::Json(serde_json::json!({
                        "requests": stub.requests().len(),
                        "most_in_flight": stub.most_in_flight(),
                        "violations": stub.violations().len(),
                    }))
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port + 1))
        .await
        .expect("the stats port");
    eprintln!("stats at http://127.0.0.1:{}/_stub/stats", port + 1);
    axum::serve(listener, app).await.expect("serving stats");
}
