//! Prometheus metrics for the gateway with the names platform teams already
//! chart (REFERENCE §1), rendered in the text exposition format. Series are
//! atomics behind a read-mostly map, so recording costs a hash lookup and a
//! few atomic adds. Labels are bounded: never an idempotency key or a user.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// `gen_ai.client.operation.duration` buckets (seconds), also used for request latency.
pub const DURATION_BUCKETS: &[f64] = &[
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
/// Token usage buckets: powers of 4 from 1 to 67108864.
pub const TOKEN_BUCKETS: &[f64] = &[
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];
/// Gateway overhead buckets (seconds): the gateway's own time is sub-millisecond.
pub const OVERHEAD_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
];

fn add_f64(cell: &AtomicU64, v: f64) {
    let mut current = cell.load(Ordering::Relaxed);
    loop {
        let next = (f64::from_bits(current) + v).to_bits();
        match cell.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(seen) => current = seen,
        }
    }
}

enum Kind {
    Counter,
    Gauge,
    Histogram(&'static [f64]),
}

struct Series {
    value: AtomicU64,
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
}

/// One metric family: name, help, label names and its series.
pub struct Family {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    kind: Kind,
    series: RwLock<BTreeMap<Vec<String>, Arc<Series>>>,
}

impl Family {
    fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        kind: Kind,
    ) -> Self {
        Self {
            name,
            help,
            labels,
            kind,
            series: RwLock::default(),
        }
    }

    fn get(&self, values: &[&str]) -> Arc<Series> {
        debug_assert_eq!(values.len(), self.labels.len(), "{}", self.name);
        if let Some(s) = self
            .series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&values.iter().map(|v| (*v).to_owned()).collect::<Vec<_>>())
        {
            return s.clone();
        }
        let key: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        let buckets = match self.kind {
            Kind::Histogram(b) => b.iter().map(|_| AtomicU64::new(0)).collect(),
            _ => Vec::new(),
        };
        self.series
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_insert_with(|| {
                Arc::new(Series {
                    value: AtomicU64::new(0f64.to_bits()),
                    buckets,
                    count: AtomicU64::new(0),
                })
            })
            .clone()
    }

    /// Adds `v` to a counter (or gauge).
    pub fn add(&self, values: &[&str], v: f64) {
        add_f64(&self.get(values).value, v);
    }

    /// Sets a gauge.
    pub fn set(&self, values: &[&str], v: f64) {
        self.get(values).value.store(v.to_bits(), Ordering::Relaxed);
    }

    /// Observes one value in a histogram.
    pub fn observe(&self, values: &[&str], v: f64) {
        let Kind::Histogram(bounds) = self.kind else {
            return;
        };
        let s = self.get(values);
        if let Some(i) = bounds.iter().position(|b| v <= *b) {
            s.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        s.count.fetch_add(1, Ordering::Relaxed);
        add_f64(&s.value, v);
    }

    /// Removes every series (gauges recomputed at scrape time).
    pub fn clear(&self) {
        self.series
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    fn render(&self, out: &mut String) {
        let kind = match self.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram(_) => "histogram",
        };
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {kind}", self.name);
        let series = self.series.read().unwrap_or_else(|e| e.into_inner());
        for (values, s) in series.iter() {
            let labels = |extra: Option<(&str, String)>| {
                let mut parts: Vec<String> = self
                    .labels
                    .iter()
                    .zip(values)
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect();
                if let Some((k, v)) = extra {
                    parts.push(format!("{k}=\"{v}\""));
                }
                if parts.is_empty() {
                    String::new()
                } else {
                    format!("{{{}}}", parts.join(","))
                }
            };
            let value = f64::from_bits(s.value.load(Ordering::Relaxed));
            match self.kind {
                Kind::Counter | Kind::Gauge => {
                    let _ = writeln!(out, "{}{} {}", self.name, labels(None), number(value));
                }
                Kind::Histogram(bounds) => {
                    let mut cumulative = 0;
                    for (bound, count) in bounds.iter().zip(&s.buckets) {
                        cumulative += count.load(Ordering::Relaxed);
                        let _ = writeln!(
                            out,
                            "{}_bucket{} {cumulative}",
                            self.name,
                            labels(Some(("le", number(*bound))))
                        );
                    }
                    let count = s.count.load(Ordering::Relaxed);
                    let _ = writeln!(
                        out,
                        "{}_bucket{} {count}",
                        self.name,
                        labels(Some(("le", "+Inf".into())))
                    );
                    let _ = writeln!(out, "{}_sum{} {}", self.name, labels(None), number(value));
                    let _ = writeln!(out, "{}_count{} {count}", self.name, labels(None));
                }
            }
        }
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

const REQUEST: &[&str] = &["provider", "model", "team", "workspace_id", "request_type"];
const ERROR: &[&str] = &[
    "provider",
    "model",
    "team",
    "workspace_id",
    "request_type",
    "error_type",
];
const GENAI: &[&str] = &[
    "gen_ai_operation_name",
    "gen_ai_provider_name",
    "gen_ai_request_model",
];
const GENAI_TOKENS: &[&str] = &[
    "gen_ai_operation_name",
    "gen_ai_provider_name",
    "gen_ai_request_model",
    "gen_ai_token_type",
];

/// The gateway's metric families.
pub struct GatewayMetrics {
    /// `llm_request_latency_seconds`.
    pub latency: Family,
    /// `llm_requests_total` (with `status_class`).
    pub requests: Family,
    /// `llm_request_error_total`.
    pub errors: Family,
    /// `llm_cost_cents_total`.
    pub cost: Family,
    /// `llm_input_tokens_total`.
    pub input_tokens: Family,
    /// `llm_output_tokens_total`.
    pub output_tokens: Family,
    /// `llm_gateway_overhead_seconds`.
    pub overhead: Family,
    /// `llm_team_budget_remaining_cents`.
    pub budget_remaining: Family,
    /// `llm_team_max_budget_cents`.
    pub budget_limit: Family,
    /// `llm_team_spend_cents`.
    pub budget_spent: Family,
    /// `llm_upstream_circuit_state`.
    pub circuit: Family,
    /// `llm_budget_reservations_held`.
    pub held: Family,
    /// `llm_upstream_retries_total`.
    pub retries: Family,
    /// `gen_ai_client_operation_duration_seconds`.
    pub genai_duration: Family,
    /// `gen_ai_client_token_usage`.
    pub genai_tokens: Family,
    /// `llm_cache_requests_total`.
    pub cache: Family,
    /// `llm_cache_saved_cents_total`.
    pub cache_saved: Family,
    /// `llm_guardrail_findings_total`.
    pub guardrails: Family,
    /// `llm_fallbacks_total`.
    pub fallbacks: Family,
}

impl std::fmt::Debug for GatewayMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GatewayMetrics")
    }
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        Self {
            latency: Family::new(
                "llm_request_latency_seconds",
                "Time from request to the last byte answered, by model and team.",
                REQUEST,
                Kind::Histogram(DURATION_BUCKETS),
            ),
            requests: Family::new(
                "llm_requests_total",
                "Gateway requests by outcome class.",
                &[
                    "provider",
                    "model",
                    "team",
                    "workspace_id",
                    "request_type",
                    "status_class",
                ],
                Kind::Counter,
            ),
            errors: Family::new(
                "llm_request_error_total",
                "Gateway requests that failed or were refused, by error class.",
                ERROR,
                Kind::Counter,
            ),
            cost: Family::new(
                "llm_cost_cents_total",
                "Settled LLM spend in cents.",
                &["workspace_id", "team"],
                Kind::Counter,
            ),
            input_tokens: Family::new(
                "llm_input_tokens_total",
                "Prompt tokens billed.",
                REQUEST,
                Kind::Counter,
            ),
            output_tokens: Family::new(
                "llm_output_tokens_total",
                "Completion tokens billed.",
                REQUEST,
                Kind::Counter,
            ),
            overhead: Family::new(
                "llm_gateway_overhead_seconds",
                "Time spent in the gateway itself (total minus upstream).",
                &["provider", "model", "request_type"],
                Kind::Histogram(OVERHEAD_BUCKETS),
            ),
            budget_remaining: Family::new(
                "llm_team_budget_remaining_cents",
                "Budget left this period (limit minus spent and reserved).",
                &["team", "workspace_id"],
                Kind::Gauge,
            ),
            budget_limit: Family::new(
                "llm_team_max_budget_cents",
                "Budget limit per period.",
                &["team", "workspace_id"],
                Kind::Gauge,
            ),
            budget_spent: Family::new(
                "llm_team_spend_cents",
                "Settled spend this period.",
                &["team", "workspace_id"],
                Kind::Gauge,
            ),
            circuit: Family::new(
                "llm_upstream_circuit_state",
                "Circuit breaker per provider and model: 0 closed, 1 half-open, 2 open.",
                &["provider", "model"],
                Kind::Gauge,
            ),
            held: Family::new(
                "llm_budget_reservations_held",
                "Budget reservations currently held by requests in flight.",
                &[],
                Kind::Gauge,
            ),
            retries: Family::new(
                "llm_upstream_retries_total",
                "Upstream attempts retried, by the status that caused them.",
                &["provider", "model", "reason"],
                Kind::Counter,
            ),
            genai_duration: Family::new(
                "gen_ai_client_operation_duration_seconds",
                "GenAI operation duration (OpenTelemetry gen_ai.client.operation.duration).",
                GENAI,
                Kind::Histogram(DURATION_BUCKETS),
            ),
            genai_tokens: Family::new(
                "gen_ai_client_token_usage",
                "GenAI tokens per operation (OpenTelemetry gen_ai.client.token.usage).",
                GENAI_TOKENS,
                Kind::Histogram(TOKEN_BUCKETS),
            ),
            cache: Family::new(
                "llm_cache_requests_total",
                "Cacheable gateway requests by result (hit, miss).",
                &["team", "model", "result"],
                Kind::Counter,
            ),
            cache_saved: Family::new(
                "llm_cache_saved_cents_total",
                "What cache hits would have cost, in cents.",
                &["team"],
                Kind::Counter,
            ),
            guardrails: Family::new(
                "llm_guardrail_findings_total",
                "Guardrail matches by detector, where (prompt, response) and action.",
                &["team", "detector", "stage", "action"],
                Kind::Counter,
            ),
            fallbacks: Family::new(
                "llm_fallbacks_total",
                "Requests served by another deployment or model than the first tried.",
                &["model", "served_by"],
                Kind::Counter,
            ),
        }
    }
}

impl GatewayMetrics {
    /// Renders every family in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        for family in [
            &self.latency,
            &self.requests,
            &self.errors,
            &self.cost,
            &self.input_tokens,
            &self.output_tokens,
            &self.overhead,
            &self.budget_remaining,
            &self.budget_limit,
            &self.budget_spent,
            &self.circuit,
            &self.held,
            &self.retries,
            &self.genai_duration,
            &self.genai_tokens,
            &self.cache,
            &self.cache_saved,
            &self.guardrails,
            &self.fallbacks,
        ] {
            family.render(&mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_histograms_counters_and_escapes_labels() {
        let m = GatewayMetrics::default();
        let labels = ["openai", "gpt-4o-mini", "pay\"ments", "", "chat"];
        m.latency.observe(&labels, 0.05);
        m.latency.observe(&labels, 100.0);
        m.cost.add(&["", "payments"], 0.25);
        m.cost.add(&["", "payments"], 0.5);
        let text = m.render();
        assert!(text.contains("# TYPE llm_request_latency_seconds histogram"));
        assert!(text.contains(r#"llm_request_latency_seconds_bucket{provider="openai",model="gpt-4o-mini",team="pay\"ments",workspace_id="",request_type="chat",le="0.04"} 0"#));
        assert!(text.contains(r#"le="0.08"} 1"#));
        assert!(text.contains(r#"le="+Inf"} 2"#));
        assert!(text.contains(r#"llm_request_latency_seconds_count{provider="openai",model="gpt-4o-mini",team="pay\"ments",workspace_id="",request_type="chat"} 2"#));
        assert!(text.contains(r#"llm_cost_cents_total{workspace_id="",team="payments"} 0.75"#));
    }
}
