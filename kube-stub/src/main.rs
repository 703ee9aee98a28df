//! `kube-stub`: a stand-in Kubernetes API server on localhost.
//!
//! ```text
//! kube-stub [--addr 127.0.0.1:0] [--fixtures DIR] [--token T] [--write-kubeconfig PATH]
//!           [--logs DIR] [--admission-webhook URL] [--admission-token T]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use paved_kube_stub::{kubeconfig, serve, Config, Stub};
use tokio::net::TcpListener;

const USAGE: &str = "\
usage: kube-stub [--addr HOST:PORT] [--fixtures DIR] [--token T] [--write-kubeconfig PATH]
                 [--logs DIR] [--admission-webhook URL] [--admission-token T]

  --addr HOST:PORT         where to listen (default 127.0.0.1:6443; port 0 picks one)
  --fixtures DIR           load every *.yaml, *.yml and *.json object under DIR at start
  --token T                require `Authorization: Bearer T` on every API request
  --write-kubeconfig PATH  write a kubeconfig (context `stub`) for the bound address
  --logs DIR               container logs: DIR/<namespace>/<pod>/<container>[.previous].log
  --admission-webhook URL  POST an AdmissionReview here before every create and update
  --admission-token T      bearer token for the webhook

Prints `listening on http://ADDR` once bound (and the kubeconfig written).";

/// Parsed command line.
#[derive(Debug, Default, PartialEq, Eq)]
struct Args {
    addr: String,
    fixtures: Option<PathBuf>,
    kubeconfig: Option<PathBuf>,
    token: Option<String>,
    logs: Option<PathBuf>,
    webhook: Option<String>,
    webhook_token: Option<String>,
}

/// Parses the arguments after the program name; `Ok(None)` means `--help`.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        addr: "127.0.0.1:6443".to_owned(),
        ..Args::default()
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg, None),
        };
        if flag == "--help" || flag == "-h" {
            return Ok(None);
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--addr" => parsed.addr = value()?,
            "--fixtures" => parsed.fixtures = Some(value()?.into()),
            "--token" => parsed.token = Some(value()?),
            "--write-kubeconfig" => parsed.kubeconfig = Some(value()?.into()),
            "--logs" => parsed.logs = Some(value()?.into()),
            "--admission-webhook" => parsed.webhook = Some(value()?),
            "--admission-token" => parsed.webhook_token = Some(value()?),
            _ => return Err(format!("unknown argument: {flag}")),
        }
    }
    Ok(Some(parsed))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("{message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let stub = Stub::new(Config {
        token: args.token.clone(),
        logs: args.logs,
        admission_webhook: args.webhook,
        admission_token: args.webhook_token,
    });
    if let Some(dir) = &args.fixtures {
        match stub.load_fixtures(dir) {
            Ok(n) => eprintln!("loaded {n} objects from {}", dir.display()),
            Err(e) => {
                eprintln!("cannot load fixtures: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let listener = match TcpListener::bind(&args.addr).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("cannot listen on {}: {err}", args.addr);
            return ExitCode::FAILURE;
        }
    };
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(err) => {
            eprintln!("cannot read the bound address: {err}");
            return ExitCode::FAILURE;
        }
    };
    let server = format!("http://{addr}");
    if let Some(path) = &args.kubeconfig {
        if let Err(err) = std::fs::write(path, kubeconfig(&server, args.token.as_deref())) {
            eprintln!("cannot write {}: {err}", path.display());
            return ExitCode::FAILURE;
        }
    }
    println!("listening on {server}");
    serve(listener, stub).await;
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Args>, String> {
        parse_args(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn flags() {
        let a = parse(&[
            "--addr",
            "127.0.0.1:0",
            "--token=t",
            "--fixtures",
            "f",
            "--admission-webhook",
            "http://x",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(a.addr, "127.0.0.1:0");
        assert_eq!(a.token.as_deref(), Some("t"));
        assert_eq!(a.fixtures, Some(PathBuf::from("f")));
        assert_eq!(a.webhook.as_deref(), Some("http://x"));
        assert_eq!(parse(&[]).unwrap().unwrap().addr, "127.0.0.1:6443");
        assert_eq!(parse(&["--help"]).unwrap(), None);
        assert!(parse(&["--logs"]).is_err());
        assert!(parse(&["--nope"]).is_err());
    }
}
