//! `events-load`: the delivery-outcomes benchmark's generator and sender
//! (`scripts/bench-outcomes.sh`). Prints one JSON line.
//!
//! ```text
//! events-load catalog --components N --teams T          # catalog YAML on stdout
//! events-load send --url BASE --secret S --components N [--rounds R]
//!             [--commits K] [--incident-every E] [--connections C] [--end UNIX]
//! ```
//!
//! `send` posts a year (ending at `--end`, default now) of GitHub webhook
//! deliveries for `N` repositories `acme/svc-NNNN` as GitHub sends them,
//! each signed with `X-Hub-Signature-256`: per repository `R` rounds of a
//! `push` of `K` commits (chained by `before`/`after`) and the
//! `deployment_status` (success, production) of its head, and every `E`th
//! round an `issues` delivery labelled `incident` whose body names the
//! round's head as the root cause (opened and closed). Deliveries go out over
//! `C` keep-alive connections as fast as the server answers; the answer
//! reports deliveries per second and latency percentiles.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;

const USAGE: &str = "\
usage: events-load catalog --components N --teams T
       events-load send --url BASE --secret S --components N [--rounds 200] [--commits 10]
                   [--incident-every 20] [--connections 8] [--end UNIX_SECONDS]";

const YEAR: i64 = 365 * 86_400;

fn hmac_sha256(key: &[u8], body: &[u8]) -> String {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    let outer: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&inner)
        .chain_update(body)
        .finalize();
    hex::encode(
        Sha256::new()
            .chain_update(&outer)
            .chain_update(inner)
            .finalize(),
    )
}

/// A commit's sha (never all zeros, which GitHub uses for "no commit").
fn sha(c: usize, r: usize, k: usize) -> String {
    format!("{:016x}{r:016x}{k:08x}", c + 1)
}

/// A delivery ready to send: event, delivery id, body, signature.
type Signed = (&'static str, String, Bytes, String);

fn time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

struct Plan {
    components: usize,
    rounds: usize,
    commits: usize,
    incident_every: usize,
    end: i64,
}

impl Plan {
    /// When round `r` of repository `c` deploys.
    fn deployed_at(&self, c: usize, r: usize) -> i64 {
        let step = YEAR / self.rounds as i64;
        self.end - YEAR + r as i64 * step + (c as i64 * 97) % step.max(1)
    }

    /// The deliveries of one round of one repository: (event, delivery id, body).
    fn deliveries(&self, c: usize, r: usize) -> Vec<(&'static str, String, String)> {
        let repo = format!("https://github.com/acme/svc-{c:04}");
        let full_name = format!("acme/svc-{c:04}");
        let repository = json!({"full_name": full_name, "html_url": repo});
        let at = self.deployed_at(c, r);
        let before = if r == 0 {
            "0".repeat(40)
        } else {
            sha(c, r - 1, self.commits - 1)
        };
        let commits: Vec<_> = (0..self.commits)
            .map(|k| {
                json!({"id": sha(c, r, k), "timestamp": time(at - 3_600 * (2 + (self.commits - k) as i64 * 3)),
                       "message": format!("change {k}"), "modified": [format!("src/file{k}.rs")]})
            })
            .collect();
        let head = sha(c, r, self.commits - 1);
        let push = json!({"ref": "refs/heads/main", "before": before, "after": head,
                          "commits": commits, "repository": repository});
        let id = c * 10_000 + r + 1;
        let status = json!({"action": "created",
            "deployment_status": {"state": "success", "created_at": time(at), "updated_at": time(at)},
            "deployment": {"id": id, "sha": head, "environment": "production", "created_at": time(at - 300)},
            "repository": repository});
        let mut out = vec![
            ("push", format!("p-{c}-{r}"), push.to_string()),
            (
                "deployment_status",
                format!("d-{c}-{r}"),
                status.to_string(),
            ),
        ];
        if r % self.incident_every == self.incident_every / 2 {
            let issue = json!({"action": "closed", "issue": {
                "number": r + 1, "title": format!("Errors after deployment {id}"),
                "labels": [{"name": "incident"}], "state": "closed",
                "body": format!("root cause: {head}"),
                "html_url": format!("{repo}/issues/{}", r + 1),
                "created_at": time(at + 600), "closed_at": time(at + 600 + 5_400)},
                "repository": repository});
            out.push(("issues", format!("i-{c}-{r}"), issue.to_string()));
        }
        out
    }
}

fn catalog(components: usize, teams: usize) -> String {
    let mut yaml = String::new();
    for t in 0..teams {
        yaml.push_str(&format!(
            "---\napiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: team-{t:02}\nspec:\n  type: team\n  children: []\n"
        ));
    }
    for c in 0..components {
        yaml.push_str(&format!(
            "---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: svc-{c:04}\n  annotations:\n    github.com/project-slug: acme/svc-{c:04}\nspec:\n  type: service\n  lifecycle: production\n  owner: group:default/team-{:02}\n",
            c % teams
        ));
    }
    yaml
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn number(args: &[String], name: &str, default: usize) -> Result<usize, String> {
    match flag(args, name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| format!("{name}: `{v}` is not a number")),
    }
}

async fn connect(addr: &str) -> Option<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await.ok()?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.ok()?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Some(sender)
}

async fn send(args: Vec<String>) -> Result<serde_json::Value, String> {
    let url = flag(&args, "--url").ok_or("--url is required")?;
    let secret = flag(&args, "--secret")
        .ok_or("--secret is required")?
        .to_owned();
    let addr = url
        .strip_prefix("http://")
        .ok_or("--url must be http://")?
        .trim_end_matches('/')
        .to_owned();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let plan = Arc::new(Plan {
        components: number(&args, "--components", 500)?,
        rounds: number(&args, "--rounds", 200)?,
        commits: number(&args, "--commits", 10)?.max(1),
        incident_every: number(&args, "--incident-every", 20)?.max(1),
        end: flag(&args, "--end")
            .map(|v| v.parse().map_err(|_| "--end: not unix seconds".to_owned()))
            .transpose()?
            .unwrap_or(now),
    });
    let connections = number(&args, "--connections", 8)?;
    let slots = plan.components * plan.rounds;
    // Every delivery is built and signed before the clock starts, so the
    // load generator's own work does not take the server's CPU on a shared
    // machine while it is measured.
    let prepared: Arc<Vec<Vec<Signed>>> = Arc::new(
        (0..slots)
            .map(|slot| {
                let (r, c) = (slot / plan.components, slot % plan.components);
                plan.deliveries(c, r)
                    .into_iter()
                    .map(|(event, delivery, body)| {
                        let signature =
                            format!("sha256={}", hmac_sha256(secret.as_bytes(), body.as_bytes()));
                        (event, delivery, Bytes::from(body), signature)
                    })
                    .collect()
            })
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let addr = Arc::new(addr);
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..connections {
        let (prepared, next, addr) = (prepared.clone(), next.clone(), addr.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies: Vec<u64> = Vec::new();
            let mut failures: Vec<String> = Vec::new();
            let mut sender = None;
            loop {
                let slot = next.fetch_add(1, Ordering::Relaxed);
                if slot >= slots {
                    break;
                }
                // Round by round across every repository, as time passes.
                for (event, delivery, body, signature) in prepared[slot].iter().cloned() {
                    let request = Request::builder()
                        .method(Method::POST)
                        .uri("/api/events/v1/github")
                        .header(HOST, addr.as_str())
                        .header(CONTENT_TYPE, "application/json")
                        .header("x-github-event", event)
                        .header("x-github-delivery", delivery)
                        .header("x-hub-signature-256", signature)
                        .body(Full::new(body))
                        .map_err(|e| e.to_string());
                    let Ok(request) = request else { continue };
                    if sender
                        .as_ref()
                        .is_none_or(|s: &SendRequest<_>| s.is_closed())
                    {
                        sender = connect(&addr).await;
                    }
                    let Some(s) = sender.as_mut() else {
                        failures.push("connect".into());
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    let sent = Instant::now();
                    let outcome = async {
                        s.ready().await.map_err(|_| "io".to_owned())?;
                        let response =
                            s.send_request(request).await.map_err(|_| "io".to_owned())?;
                        let status = response.status().as_u16();
                        let body = response
                            .into_body()
                            .collect()
                            .await
                            .map_err(|_| "io".to_owned())?;
                        if status == 202 {
                            Ok(())
                        } else {
                            Err(format!(
                                "{status}: {}",
                                String::from_utf8_lossy(&body.to_bytes())
                            ))
                        }
                    }
                    .await;
                    latencies.push(sent.elapsed().as_micros() as u64);
                    if let Err(e) = outcome {
                        if e == "io" {
                            sender = None;
                        }
                        failures.push(e);
                    }
                }
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = Vec::new();
    for w in workers {
        if let Ok((l, f)) = w.await {
            latencies.extend(l);
            failures.extend(f);
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |q: f64| {
        if latencies.is_empty() {
            0.0
        } else {
            let i = ((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len()) - 1;
            latencies[i] as f64 / 1000.0
        }
    };
    Ok(json!({
        "deliveries": latencies.len(),
        "failed": failures.len(),
        "first_failures": failures.iter().take(3).collect::<Vec<_>>(),
        "commits": plan.components * plan.rounds * plan.commits,
        "deployments": plan.components * plan.rounds,
        "seconds": (seconds * 100.0).round() / 100.0,
        "deliveries_per_second": (latencies.len() as f64 / seconds).round(),
        "latency_ms": {"p50": pct(0.5), "p95": pct(0.95), "p99": pct(0.99)},
        "connections": connections,
    }))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("catalog") => {
            let (Ok(components), Ok(teams)) = (
                number(&args, "--components", 500),
                number(&args, "--teams", 50),
            ) else {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            };
            print!("{}", catalog(components, teams.max(1)));
            ExitCode::SUCCESS
        }
        Some("send") => {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("events-load: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(send(args)) {
                Ok(report) => {
                    println!("{report}");
                    if report["failed"] == 0 {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("events-load: {e}\n{USAGE}");
                    ExitCode::from(2)
                }
            }
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            hmac_sha256(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn times_are_rfc_3339() {
        assert_eq!(time(1_772_496_000), "2026-03-03T00:00:00Z");
    }
}
