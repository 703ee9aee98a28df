//! `paved-ledger-load`: reserve-then-settle at a fixed rate against the
//! budget ledger, as the gateway does for each request, and report latency.
//! `--backend postgres` runs one replica's `SharedLedger` (start several
//! processes on one database for a fleet); `--backend sqlite` runs the
//! single-process ledger, for comparison. Prints one JSON object.
//!
//!     paved-ledger-load --backend postgres --url postgres://… --rate 2000 --seconds 10 [--setup]

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::tz::TimeZone;
use paved_core::budgets::ledger::{Clock, Ledger, ReserveRequest, SystemClock, UsageRecord};
use paved_core::budgets::period::Period;
use paved_core::budgets::{BudgetRule, OnLimit, MAX_LIMIT_CENTS};
use paved_pg::ledger::SharedLedger;

struct Args {
    backend: String,
    url: String,
    replica: String,
    rate: u64,
    seconds: u64,
    setup: bool,
}

fn args() -> Result<Args, String> {
    let mut out = Args {
        backend: "postgres".into(),
        url: String::new(),
        replica: "load".into(),
        rate: 1000,
        seconds: 10,
        setup: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--backend" => out.backend = value()?,
            "--url" => out.url = value()?,
            "--replica" => out.replica = value()?,
            "--rate" => out.rate = value()?.parse().map_err(|_| "--rate: a number")?,
            "--seconds" => out.seconds = value()?.parse().map_err(|_| "--seconds: a number")?,
            "--setup" => out.setup = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if out.url.is_empty() {
        return Err("--url is required".into());
    }
    if !matches!(out.backend.as_str(), "postgres" | "sqlite") {
        return Err("--backend is postgres or sqlite".into());
    }
    Ok(out)
}

fn rule() -> BudgetRule {
    BudgetRule {
        team: "bench".into(),
        workspace_id: None,
        period: Period::Monthly,
        limit_cents: MAX_LIMIT_CENTS,
        soft_alert_percent: 100,
        on_limit: OnLimit::Block,
        allowed_models: vec![],
        rpm_limit: None,
        tpm_limit: None,
        version: 1,
        updated_by: "bench".into(),
        updated_at: 0,
    }
}

#[derive(Clone)]
enum Backend {
    Shared(SharedLedger),
    Local(Ledger),
}

impl Backend {
    /// One request's ledger work; returns (reserve, settle) durations.
    async fn request(&self, n: u64, replica: &str) -> Result<(Duration, Duration), String> {
        let request = ReserveRequest {
            id: format!("{replica}-{n}-{}", std::process::id()),
            team: "bench".into(),
            workspace: String::new(),
            model: "gpt-4o-mini".into(),
            amount_nanocents: 1_000_000,
            estimated_tokens: 300,
            idempotency: None,
        };
        let t0 = Instant::now();
        match self {
            Backend::Shared(ledger) => {
                let hold = ledger.reserve(request).await.map_err(|e| e.to_string())?;
                let t1 = Instant::now();
                ledger
                    .settle(&hold, 400_000, 300, None)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok((t1 - t0, t1.elapsed()))
            }
            Backend::Local(ledger) => {
                let hold = ledger.reserve(request).await.map_err(|e| e.to_string())?;
                let t1 = Instant::now();
                let usage = UsageRecord {
                    team: "bench".into(),
                    model: "gpt-4o-mini".into(),
                    provider: "openai".into(),
                    request_type: "chat".into(),
                    cost_nanocents: 400_000,
                    status: 200,
                    attempts: 1,
                    ..UsageRecord::default()
                };
                ledger.settle(&hold, usage, None);
                Ok((t1 - t0, t1.elapsed()))
            }
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("paved-ledger-load: {e}");
            std::process::exit(2);
        }
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ttl = Duration::from_secs(600);
    let backend = match args.backend.as_str() {
        "postgres" => {
            let pool = paved_pg::connect(&args.url, 16)
                .await
                .unwrap_or_else(|e| panic!("cannot open {}: {e}", args.url));
            let ledger = SharedLedger::new(pool, TimeZone::UTC, ttl, clock, &args.replica);
            if args.setup {
                ledger
                    .apply_rule(&rule())
                    .await
                    .expect("install the budget");
            }
            Backend::Shared(ledger)
        }
        _ => {
            let pool = paved_core::db::connect(&args.url)
                .await
                .unwrap_or_else(|e| panic!("cannot open {}: {e}", args.url));
            let ledger = Ledger::start(pool, TimeZone::UTC, ttl, clock)
                .await
                .expect("start the ledger");
            ledger.apply_rule(rule());
            Backend::Local(ledger)
        }
    };
    // Warm the pool, then run open-loop at the given rate.
    for n in 0..50 {
        backend.request(u64::MAX - n, &args.replica).await.ok();
    }
    let total = args.rate * args.seconds;
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..total {
        let due = started + interval.mul_f64(n as f64);
        tokio::time::sleep_until(due.into()).await;
        let backend = backend.clone();
        let replica = args.replica.clone();
        tasks.spawn(async move { backend.request(n, &replica).await });
    }
    let mut reserve = vec![];
    let mut settle = vec![];
    let mut errors = 0u64;
    let mut first_error = None;
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok((r, s))) => {
                reserve.push(r.as_micros() as u64);
                settle.push(s.as_micros() as u64);
            }
            Ok(Err(e)) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    reserve.sort_unstable();
    settle.sort_unstable();
    println!(
        "{{\"backend\":\"{}\",\"replica\":\"{}\",\"requests\":{},\"ok\":{},\"errors\":{},\"seconds\":{:.2},\"throughput\":{:.0},\"reserve_p50_us\":{},\"reserve_p99_us\":{},\"reserve_max_us\":{},\"settle_p50_us\":{},\"settle_p99_us\":{},\"first_error\":{:?}}}",
        args.backend,
        args.replica,
        total,
        reserve.len(),
        errors,
        elapsed,
        reserve.len() as f64 / elapsed,
        percentile(&reserve, 50.0),
        percentile(&reserve, 99.0),
        reserve.last().copied().unwrap_or(0),
        percentile(&settle, 50.0),
        percentile(&settle, 99.0),
        first_error.unwrap_or_default(),
    );
}
