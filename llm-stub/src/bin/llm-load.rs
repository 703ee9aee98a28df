//! `llm-load`: a small HTTP/1.1 load generator for the gateway benchmark
//! (`scripts/bench-gateway.sh`). Prints one JSON line.
//!
//! ```text
//! llm-load --url URL [--header 'K: V']... [--header-file F] [--body JSON] [--idempotency]
//!          (--rate R | --max [--connections C]) [--duration S] [--warmup S]
//! ```
//!
//! - `--rate R`: open loop. Request *i* is scheduled at `start + i / R`
//!   whatever the earlier ones are doing, and its latency is measured from
//!   that scheduled instant, so time spent queued behind a slow server (or
//!   waiting for a free connection) counts: no coordinated omission.
//! - `--max`: closed loop. `C` connections each send the next request as soon
//!   as the previous answer has been read; reports the maximum throughput.
//!
//! Plain `http://` only, keep-alive connections driven by hyper directly (no
//! pool or TLS layers) on one runtime thread by default, so the generator stays
//! cheap next to the server it measures on a small machine.
//!
//! Latency is taken over every request that got an HTTP answer (whatever its
//! status), from scheduled (open loop) or sent (closed loop) time to the last
//! byte of the body; percentiles are exact (nearest rank over the sorted samples).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::timeout;

const USAGE: &str = "\
usage: llm-load --url URL (--rate R | --max) [options]

  --url URL            http:// URL to call
  --header 'K: V'      extra request header (repeatable)
  --header-file FILE   one 'K: V' header per line, taken in turn: closed loop,
                       connection i adds line i mod n; open loop, request i does
                       (e.g. a different person's token for each)
  --body JSON          request body; sends POST with content-type application/json
                       (default: GET without a body)
  --method M           override the method
  --idempotency        send a unique Idempotency-Key header with every request
  --vary               replace {n} in the body with a number unique to each request
  --rate R             open loop: R requests per second at fixed intervals
  --max                closed loop: as fast as the connections allow
  --connections C      closed loop: connections (default 64);
                       open loop: most connections/requests in flight (default 2048)
  --duration S         measured seconds (default 20)
  --warmup S           seconds of the same load before measuring (default 0)
  --timeout S          per-request timeout in seconds (default 30)
  --threads N          runtime worker threads (default 1)";

/// Parsed command line.
#[derive(Debug, Clone)]
struct Args {
    url: Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Headers taken in turn by connection (closed loop) or request (open
    /// loop) (`--header-file`).
    per_connection: Vec<(HeaderName, HeaderValue)>,
    body: Option<Bytes>,
    method: Option<Method>,
    idempotency: bool,
    /// Replace `{n}` in the body with a per-request counter (`--vary`).
    vary: bool,
    rate: Option<f64>,
    connections: Option<usize>,
    duration: Duration,
    warmup: Duration,
    timeout: Duration,
    threads: usize,
}

fn seconds(flag: &str, v: &str) -> Result<Duration, String> {
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("invalid {flag}: {v}"))
}

/// Parses the arguments after the program name; `Ok(None)` means `--help`.
fn header(v: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, val) = v
        .split_once(':')
        .ok_or_else(|| format!("a header must be 'Name: value': {v}"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("invalid header name in {v}"))?;
    let val =
        HeaderValue::from_str(val.trim()).map_err(|_| format!("invalid header value in {v}"))?;
    Ok((name, val))
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut url = None;
    let mut headers = Vec::new();
    let mut per_connection = Vec::new();
    let mut body = None;
    let mut method = None;
    let mut idempotency = false;
    let mut vary = false;
    let mut rate = None;
    let mut max = false;
    let mut connections = None;
    let mut duration = Duration::from_secs(20);
    let mut warmup = Duration::ZERO;
    let mut request_timeout = Duration::from_secs(30);
    let mut threads = 1;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--help" | "-h" => return Ok(None),
            "--url" => {
                let v = value()?;
                let uri: Uri = v.parse().map_err(|e| format!("invalid --url {v}: {e}"))?;
                if uri.scheme_str() != Some("http") || uri.host().is_none() {
                    return Err(format!("--url must be an http:// URL with a host: {v}"));
                }
                url = Some(uri);
            }
            "--header" | "-H" => {
                headers.push(header(&value()?)?);
            }
            "--header-file" => {
                let path = value()?;
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read --header-file {path}: {e}"))?;
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    per_connection.push(header(line)?);
                }
                if per_connection.is_empty() {
                    return Err(format!("--header-file {path} has no headers"));
                }
            }
            "--body" => {
                let v = value()?;
                serde_json::from_str::<Value>(&v)
                    .map_err(|e| format!("--body is not JSON: {e}"))?;
                body = Some(Bytes::from(v));
            }
            "--method" => {
                let v = value()?;
                method = Some(
                    Method::from_bytes(v.as_bytes())
                        .map_err(|_| format!("invalid --method {v}"))?,
                );
            }
            "--idempotency" => idempotency = true,
            "--vary" => vary = true,
            "--rate" => {
                let v = value()?;
                rate = Some(
                    v.parse::<f64>()
                        .ok()
                        .filter(|r| r.is_finite() && *r > 0.0)
                        .ok_or_else(|| format!("invalid --rate: {v}"))?,
                );
            }
            "--max" => max = true,
            "--connections" | "-c" => {
                let v = value()?;
                connections = Some(
                    v.parse::<usize>()
                        .ok()
                        .filter(|c| *c > 0)
                        .ok_or_else(|| format!("invalid --connections: {v}"))?,
                );
            }
            "--duration" | "-d" => duration = seconds("--duration", &value()?)?,
            "--warmup" => warmup = seconds("--warmup", &value()?)?,
            "--timeout" => request_timeout = seconds("--timeout", &value()?)?,
            "--threads" => {
                let v = value()?;
                threads = v
                    .parse::<usize>()
                    .ok()
                    .filter(|t| *t > 0)
                    .ok_or_else(|| format!("invalid --threads: {v}"))?;
            }
            _ => return Err(format!("unknown argument: {flag}")),
        }
    }
    let url = url.ok_or("--url is required")?;
    match (rate.is_some(), max) {
        (true, true) => return Err("--rate and --max exclude each other".into()),
        (false, false) => return Err("one of --rate R or --max is required".into()),
        _ => {}
    }
    if duration.is_zero() {
        return Err("--duration must be positive".into());
    }
    Ok(Some(Args {
        url,
        headers,
        per_connection,
        body,
        method,
        idempotency,
        vary,
        rate,
        connections,
        duration,
        warmup,
        timeout: request_timeout,
        threads,
    }))
}

/// What one request template needs; shared by all tasks.
struct Target {
    addr: String,
    method: Method,
    path: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    per_connection: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    idempotency: Option<String>,
    /// The body split at `{n}`, when each request varies it.
    vary: Option<(String, String)>,
    varied: AtomicU64,
    counter: AtomicU64,
    timeout: Duration,
}

impl Target {
    fn new(args: &Args) -> Self {
        let host = args.url.host().unwrap_or("127.0.0.1");
        let port = args.url.port_u16().unwrap_or(80);
        let authority = args
            .url
            .authority()
            .map_or_else(|| host.to_owned(), |a| a.as_str().to_owned());
        let mut headers = vec![(
            HOST,
            HeaderValue::from_str(&authority).unwrap_or(HeaderValue::from_static("localhost")),
        )];
        if args.body.is_some() && !args.headers.iter().any(|(n, _)| n == CONTENT_TYPE) {
            headers.push((CONTENT_TYPE, HeaderValue::from_static("application/json")));
        }
        headers.extend(args.headers.iter().cloned());
        let nonce = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Self {
            addr: format!("{host}:{port}"),
            method: args.method.clone().unwrap_or(if args.body.is_some() {
                Method::POST
            } else {
                Method::GET
            }),
            path: args
                .url
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
            headers,
            per_connection: args.per_connection.clone(),
            body: args.body.clone().unwrap_or_default(),
            idempotency: args
                .idempotency
                .then(|| format!("llm-load-{}-{nonce:x}", std::process::id())),
            vary: args
                .vary
                .then(|| {
                    let text = String::from_utf8_lossy(args.body.as_deref().unwrap_or_default());
                    text.split_once("{n}")
                        .map(|(a, b)| (a.to_owned(), b.to_owned()))
                })
                .flatten(),
            varied: AtomicU64::new(0),
            counter: AtomicU64::new(0),
            timeout: args.timeout,
        }
    }

    /// The request connection (closed loop) or request (open loop) `turn` sends.
    fn request(&self, turn: usize) -> Request<Full<Bytes>> {
        let body = match &self.vary {
            Some((before, after)) => {
                let n = self.varied.fetch_add(1, Ordering::Relaxed);
                Bytes::from(format!("{before}{n}{after}"))
            }
            None => self.body.clone(),
        };
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = Uri::try_from(self.path.as_str()).unwrap_or_default();
        let headers = req.headers_mut();
        for (name, value) in &self.headers {
            headers.append(name.clone(), value.clone());
        }
        if !self.per_connection.is_empty() {
            let (name, value) = &self.per_connection[turn % self.per_connection.len()];
            headers.insert(name.clone(), value.clone());
        }
        if let Some(prefix) = &self.idempotency {
            let n = self.counter.fetch_add(1, Ordering::Relaxed);
            if let Ok(v) = HeaderValue::from_str(&format!("{prefix}-{n}")) {
                headers.insert(HeaderName::from_static("idempotency-key"), v);
            }
        }
        req
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, &'static str> {
        let stream = TcpStream::connect(&self.addr)
            .await
            .map_err(|_| "connect")?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| "connect")?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// Sends one request on `sender` and reads the whole answer: the status, or a transport error.
    async fn send(
        &self,
        sender: &mut SendRequest<Full<Bytes>>,
        turn: usize,
    ) -> Result<u16, &'static str> {
        let exchange = async {
            sender.ready().await.map_err(|_| "io")?;
            let response = sender
                .send_request(self.request(turn))
                .await
                .map_err(|_| "io")?;
            let status = response.status().as_u16();
            let mut body = response.into_body();
            while let Some(frame) = body.frame().await {
                frame.map_err(|_| "io")?;
            }
            Ok(status)
        };
        timeout(self.timeout, exchange)
            .await
            .unwrap_or(Err("timeout"))
    }
}

/// Samples and error counts.
#[derive(Default)]
struct Tally {
    /// Latencies in nanoseconds.
    latencies: Vec<u64>,
    /// HTTP status (or transport error) → count, for everything that was not 2xx.
    errors: BTreeMap<String, u64>,
    ok: u64,
}

impl Tally {
    fn record(&mut self, outcome: Result<u16, &'static str>, latency: Duration) {
        match outcome {
            Ok(status) => {
                self.latencies
                    .push(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
                if (200..300).contains(&status) {
                    self.ok += 1;
                } else {
                    *self.errors.entry(status.to_string()).or_default() += 1;
                }
            }
            Err(kind) => *self.errors.entry(kind.to_owned()).or_default() += 1,
        }
    }

    fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.ok += other.ok;
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }
}

/// Nearest-rank percentile of sorted samples, in milliseconds.
fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    sorted[index] as f64 / 1e6
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Seconds of CPU this process has used (user + system), from /proc/self/stat.
fn own_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the command: state is field 3, utime 14 and stime 15 (1-based in proc(5)).
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Open loop at `rate` per second; samples whose scheduled time falls in the measured window.
///
/// The schedule is kept by a dedicated thread sleeping with the OS timer
/// (tens of microseconds of slack) rather than the runtime's millisecond
/// timer wheel, whose rounding would add up to a millisecond to every sample.
async fn open_loop(target: Arc<Target>, rate: f64, args: &Args) -> Tally {
    let cap = args.connections.unwrap_or(2048);
    let permits = Arc::new(Semaphore::new(cap));
    let idle: Arc<Mutex<Vec<SendRequest<Full<Bytes>>>>> = Arc::new(Mutex::new(Vec::new()));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let interval = 1.0 / rate;
    let start = Instant::now();
    let measure_from = start + args.warmup;
    let end = measure_from + args.duration;
    let runtime = tokio::runtime::Handle::current();
    let scheduler = {
        let (tally, in_flight) = (tally.clone(), in_flight.clone());
        std::thread::spawn(move || {
            let mut i: u64 = 0;
            loop {
                let scheduled = start + Duration::from_secs_f64(i as f64 * interval);
                if scheduled >= end {
                    break;
                }
                let now = Instant::now();
                if scheduled > now {
                    std::thread::sleep(scheduled - now);
                }
                let turn = usize::try_from(i).unwrap_or(usize::MAX);
                i += 1;
                let (target, permits, idle, tally, in_flight) = (
                    target.clone(),
                    permits.clone(),
                    idle.clone(),
                    tally.clone(),
                    in_flight.clone(),
                );
                in_flight.fetch_add(1, Ordering::Relaxed);
                runtime.spawn(async move {
                    let outcome = match permits.acquire().await {
                        Ok(_permit) => {
                            let pooled = {
                                let mut idle = idle.lock().unwrap_or_else(PoisonError::into_inner);
                                let mut found = None;
                                while let Some(s) = idle.pop() {
                                    if !s.is_closed() {
                                        found = Some(s);
                                        break;
                                    }
                                }
                                found
                            };
                            let sender = match pooled {
                                Some(s) => Ok(s),
                                None => target.connect().await,
                            };
                            match sender {
                                Ok(mut sender) => {
                                    let result = target.send(&mut sender, turn).await;
                                    if result.is_ok() {
                                        idle.lock()
                                            .unwrap_or_else(PoisonError::into_inner)
                                            .push(sender);
                                    }
                                    result
                                }
                                Err(e) => Err(e),
                            }
                        }
                        Err(_) => Err("closed"),
                    };
                    let latency = scheduled.elapsed();
                    if scheduled >= measure_from {
                        tally
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .record(outcome, latency);
                    }
                    in_flight.fetch_sub(1, Ordering::Release);
                });
            }
        })
    };
    // The scheduler only sleeps and spawns; wait for it off the runtime's threads.
    let _ = tokio::task::spawn_blocking(move || scheduler.join()).await;
    // Late answers still count (with their full latency), up to the request timeout.
    let give_up = Instant::now() + args.timeout + Duration::from_secs(1);
    while in_flight.load(Ordering::Acquire) > 0 && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut tally = std::mem::take(&mut *tally.lock().unwrap_or_else(PoisonError::into_inner));
    let lost = in_flight.load(Ordering::Acquire) as u64;
    if lost > 0 {
        *tally.errors.entry("unfinished".into()).or_default() += lost;
    }
    tally
}

/// Closed loop over `connections` connections; samples sent in the measured window.
async fn closed_loop(target: Arc<Target>, args: &Args) -> Tally {
    let connections = args.connections.unwrap_or(64);
    let start = Instant::now();
    let measure_from = start + args.warmup;
    let end = measure_from + args.duration;
    let mut workers = Vec::with_capacity(connections);
    for conn in 0..connections {
        let target = target.clone();
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut sender: Option<SendRequest<Full<Bytes>>> = None;
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let outcome = match sender.as_mut() {
                    Some(s) if !s.is_closed() => target.send(s, conn).await,
                    _ => match target.connect().await {
                        Ok(s) => target.send(sender.insert(s), conn).await,
                        Err(e) => Err(e),
                    },
                };
                if outcome.is_err() {
                    sender = None;
                }
                let done = Instant::now();
                if sent >= measure_from && done <= end {
                    tally.record(outcome, done - sent);
                }
                if outcome.is_err() {
                    // Don't spin on a refused connection.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            tally
        }));
    }
    let mut tally = Tally::default();
    for w in workers {
        if let Ok(t) = w.await {
            tally.merge(t);
        }
    }
    tally
}

fn report(args: &Args, mut tally: Tally, cpu: Option<f64>) -> Value {
    tally.latencies.sort_unstable();
    let s = &tally.latencies;
    let errors: u64 = tally.errors.values().sum();
    let answered = s.len() as f64;
    let secs = args.duration.as_secs_f64();
    let mean = if s.is_empty() {
        0.0
    } else {
        s.iter().map(|&n| n as f64).sum::<f64>() / answered / 1e6
    };
    let mut obj = Map::new();
    obj.insert(
        "mode".into(),
        json!(if args.rate.is_some() {
            "open"
        } else {
            "closed"
        }),
    );
    obj.insert("url".into(), json!(args.url.to_string()));
    if let Some(rate) = args.rate {
        obj.insert("target_rps".into(), json!(rate));
    } else {
        obj.insert("connections".into(), json!(args.connections.unwrap_or(64)));
    }
    obj.insert("duration_s".into(), json!(secs));
    obj.insert("requests".into(), json!(tally.ok + errors));
    obj.insert("ok".into(), json!(tally.ok));
    obj.insert("errors".into(), json!(errors));
    obj.insert("errors_by_status".into(), json!(tally.errors));
    obj.insert("rps".into(), json!(round3(tally.ok as f64 / secs)));
    obj.insert(
        "latency_ms".into(),
        json!({
            "p50": round3(percentile(s, 0.50)),
            "p90": round3(percentile(s, 0.90)),
            "p95": round3(percentile(s, 0.95)),
            "p99": round3(percentile(s, 0.99)),
            "p99_9": round3(percentile(s, 0.999)),
            "max": round3(s.last().map_or(0.0, |&n| n as f64 / 1e6)),
            "mean": round3(mean),
        }),
    );
    if let Some(cpu) = cpu {
        obj.insert("loadgen_cpu_s".into(), json!(round3(cpu)));
    }
    Value::Object(obj)
}

fn main() -> ExitCode {
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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let target = Arc::new(Target::new(&args));
    let cpu_before = own_cpu_seconds();
    let tally = runtime.block_on(async {
        match args.rate {
            Some(rate) => open_loop(target, rate, &args).await,
            None => closed_loop(target, &args).await,
        }
    });
    let cpu = match (cpu_before, own_cpu_seconds()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let ok = tally.ok;
    println!("{}", report(&args, tally, cpu));
    if ok == 0 {
        eprintln!("no request succeeded");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
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
            "--url",
            "http://127.0.0.1:9400/v1/chat/completions",
            "--header",
            "Authorization: Bearer x",
            "--body",
            "{\"model\":\"m\"}",
            "--rate=1000",
            "--duration",
            "2.5",
            "--idempotency",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(a.rate, Some(1000.0));
        assert_eq!(a.duration, Duration::from_millis(2500));
        assert_eq!(a.headers.len(), 1);
        assert!(a.idempotency);
        let t = Target::new(&a);
        assert_eq!(t.addr, "127.0.0.1:9400");
        assert_eq!(t.path, "/v1/chat/completions");
        assert_eq!(t.method, Method::POST);
        let r1 = t.request(0);
        let r2 = t.request(1);
        assert_ne!(
            r1.headers().get("idempotency-key"),
            r2.headers().get("idempotency-key")
        );
        assert_eq!(r1.headers()[HOST], "127.0.0.1:9400");
        assert_eq!(r1.headers()[CONTENT_TYPE], "application/json");

        assert!(parse(&["--url", "http://x/", "--max"]).unwrap().is_some());
        assert!(parse(&["--url", "http://x/"]).is_err());
        assert!(parse(&["--url", "http://x/", "--max", "--rate", "5"]).is_err());
        assert!(parse(&["--url", "https://x/", "--max"]).is_err());
        assert!(parse(&["--url", "http://x/", "--max", "--body", "{"]).is_err());
        assert!(parse(&["--url", "http://x/", "--max", "--header", "nocolon"]).is_err());
        assert_eq!(parse(&["--help"]).unwrap().map(|_| ()), None);
    }

    #[test]
    fn a_header_file_gives_each_connection_its_own_header() {
        let path = std::env::temp_dir().join(format!("llm-load-h-{}", std::process::id()));
        std::fs::write(
            &path,
            "Authorization: Bearer a\n\nAuthorization: Bearer b\n",
        )
        .unwrap();
        let file = path.to_str().unwrap();
        let a = parse(&["--url", "http://x/", "--max", "--header-file", file])
            .unwrap()
            .unwrap();
        let t = Target::new(&a);
        let auth = |conn| t.request(conn).headers()["authorization"].clone();
        assert_eq!(auth(0), "Bearer a");
        assert_eq!(auth(1), "Bearer b");
        assert_eq!(auth(2), "Bearer a");
        // Open loop takes them by request.
        assert!(parse(&["--url", "http://x/", "--rate", "5", "--header-file", file]).is_ok());
        std::fs::write(&path, "\n").unwrap();
        assert!(parse(&["--url", "http://x/", "--max", "--header-file", file]).is_err());
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn nearest_rank_percentiles() {
        let s: Vec<u64> = (1..=1000).map(|ms| ms * 1_000_000).collect();
        assert_eq!(percentile(&s, 0.5), 500.0);
        assert_eq!(percentile(&s, 0.99), 990.0);
        assert_eq!(percentile(&s, 0.999), 999.0);
        assert_eq!(percentile(&s, 1.0), 1000.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(percentile(&[7_000_000], 0.999), 7.0);
    }
}
