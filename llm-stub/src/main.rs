//! `paved-llm-stub`: runs the stub LLM upstream on localhost. It serves
//! OpenAI's Chat Completions, Embeddings, Models and Responses APIs and
//! Anthropic's Messages API, scripted through `/_stub/` (see `--help`).
//!
//! ```text
//! paved-llm-stub [--port N] [--require-key KEY] [--delay-ms N]
//! ```

use std::process::ExitCode;

use paved_llm_stub::{serve, Behaviour, Stub};
use tokio::net::TcpListener;

const USAGE: &str = "\
usage: paved-llm-stub [--port N] [--require-key KEY] [--delay-ms N]

  --port N           port to listen on at 127.0.0.1 (default 9400; 0 picks one)
  --require-key KEY  require the key on /v1 endpoints: `Authorization: Bearer KEY`
                     (OpenAI endpoints) or `x-api-key: KEY` (/v1/messages)
  --delay-ms N       default delay before answering, in milliseconds (default 0)

endpoints:
  POST /v1/chat/completions  OpenAI Chat Completions (JSON or SSE with \"stream\")
  POST /v1/embeddings        OpenAI Embeddings
  GET  /v1/models            model list
  POST /v1/responses         OpenAI Responses (JSON or typed SSE events)
  POST /v1/messages          Anthropic Messages (needs `anthropic-version`;
                             JSON or typed SSE events)
  POST /_stub/push           queue behaviour(s): JSON object or array
  POST /_stub/default        set the default behaviour
  POST /_stub/reset          clear the queue and the request log
  GET  /_stub/requests       the request log
  GET  /_stub/count          the request count

behaviour JSON (all fields optional): status, delay_ms, retry_after,
retry_after_ms, prompt_tokens, completion_tokens, error_code, error_message,
omit_usage, cut_after_chunks";

/// Parsed command line.
#[derive(Debug, PartialEq, Eq)]
struct Args {
    port: u16,
    require_key: Option<String>,
    delay_ms: u64,
}

/// Parses the arguments after the program name; `Ok(None)` means `--help`.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        port: 9400,
        require_key: None,
        delay_ms: 0,
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
            "--port" => {
                let v = value()?;
                parsed.port = v.parse().map_err(|_| format!("invalid --port: {v}"))?;
            }
            "--require-key" => parsed.require_key = Some(value()?),
            "--delay-ms" => {
                let v = value()?;
                parsed.delay_ms = v.parse().map_err(|_| format!("invalid --delay-ms: {v}"))?;
            }
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

    let mut stub = Stub::new();
    if let Some(key) = &args.require_key {
        stub = stub.require_key(key);
    }
    if args.delay_ms > 0 {
        stub.set_default(Behaviour::ok().with_delay_ms(args.delay_ms));
    }

    let listener = match TcpListener::bind(("127.0.0.1", args.port)).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("cannot listen on 127.0.0.1:{}: {err}", args.port);
            return ExitCode::FAILURE;
        }
    };
    let port = listener.local_addr().map_or(args.port, |a| a.port());
    println!("listening on 127.0.0.1:{port}");
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
    fn defaults_and_flags() {
        assert_eq!(
            parse(&[]).unwrap(),
            Some(Args {
                port: 9400,
                require_key: None,
                delay_ms: 0
            })
        );
        assert_eq!(
            parse(&["--port", "0", "--require-key=sk-x", "--delay-ms", "5"]).unwrap(),
            Some(Args {
                port: 0,
                require_key: Some("sk-x".into()),
                delay_ms: 5
            })
        );
        assert_eq!(parse(&["--help"]).unwrap(), None);
        assert!(parse(&["--port"]).is_err());
        assert!(parse(&["--port", "x"]).is_err());
        assert!(parse(&["--nope"]).is_err());
    }
}
