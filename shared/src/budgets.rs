//! LLM budgets on the wire: what the Budget page, the platform overview and
//! the REST API (`/api/v1/teams/{team}/budget…`) send, and the limits the
//! editor checks as a lead types and the server enforces.

use serde::{Deserialize, Serialize};

/// The largest limit accepted: $10M per period keeps nanocent sums far from overflow.
pub const MAX_LIMIT_CENTS: i64 = 1_000_000_000;

/// `$12.34` from whole cents (limits); the same rule as [`dollars_f`].
pub fn dollars(cents: i64) -> String {
    dollars_f(cents as f64)
}

/// The one rule for every amount the pages show, so a headline and the
/// tables beside it agree: whole cents from a dollar up (`$12.35`), and
/// below a dollar four decimals when the amount has a fraction of a cent
/// (`$0.0052`; `<$0.0001` when smaller still), otherwise cents (`$0.50`).
pub fn dollars_f(cents: f64) -> String {
    let sign = if cents < 0.0 { "-" } else { "" };
    let c = cents.abs();
    let whole_cents = (c - c.round()).abs() < 1e-9;
    if c >= 100.0 || whole_cents {
        format!("{sign}${:.2}", c / 100.0)
    } else if c < 0.01 {
        format!("{sign}<$0.0001")
    } else {
        format!("{sign}${:.4}", c / 100.0)
    }
}

/// Cents (with fractions) from the ledger's exact nanocents.
pub fn cents_from_nanocents(nanocents: i64) -> f64 {
    nanocents as f64 / NANOCENTS_PER_CENT as f64
}

/// Nanocents in a cent: the ledger's exact unit.
pub const NANOCENTS_PER_CENT: i64 = 1_000_000_000;

/// How long a budget lasts before it resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// From local midnight to the next.
    Daily,
    /// From Monday 00:00 local to the next Monday.
    Weekly,
    /// From the 1st 00:00 local to the 1st of the next month.
    #[default]
    Monthly,
}

impl Period {
    /// Every period, shortest first.
    pub const ALL: [Period; 3] = [Period::Daily, Period::Weekly, Period::Monthly];

    /// Parses `daily`, `weekly` or `monthly`.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == raw)
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Daily => "daily",
            Period::Weekly => "weekly",
            Period::Monthly => "monthly",
        }
    }

    /// "per day", "per week", "per month".
    pub fn per(self) -> &'static str {
        match self {
            Period::Daily => "per day",
            Period::Weekly => "per week",
            Period::Monthly => "per month",
        }
    }
}

/// What happens when spend reaches the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnLimit {
    /// New requests are refused (429 `budget_exceeded`).
    #[default]
    Block,
    /// Requests go on; the team is alerted.
    Alert,
}

impl OnLimit {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            OnLimit::Block => "block",
            OnLimit::Alert => "alert",
        }
    }

    /// Parses `block` or `alert`.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "block" => Some(OnLimit::Block),
            "alert" => Some(OnLimit::Alert),
            _ => None,
        }
    }
}

/// A budget with this period's figures, as the API and the editor show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetView {
    /// The team.
    pub team: String,
    /// The workspace, if this is a workspace budget.
    pub workspace_id: Option<String>,
    /// `daily`, `weekly` or `monthly`.
    pub period: Period,
    /// Limit per period.
    pub limit_cents: i64,
    /// Soft alert threshold in %.
    pub soft_alert_percent: i64,
    /// `block` or `alert`.
    pub on_limit: OnLimit,
    /// Allowed models (empty: all).
    pub allowed_models: Vec<String>,
    /// Requests per minute.
    pub rpm_limit: Option<i64>,
    /// Tokens per minute.
    pub tpm_limit: Option<i64>,
    /// The version to send back with a change.
    pub version: i64,
    /// Who changed it last.
    pub updated_by: String,
    /// When (unix seconds).
    pub updated_at: i64,
    /// Settled spend this period (cents, rounded up).
    pub spent_cents: i64,
    /// Held by requests in flight (cents, rounded up).
    pub reserved_cents: i64,
    /// Settled spend this period, exactly (nanocents), for amounts shown to a fraction of a cent.
    pub spent_nanocents: i64,
    /// Held by requests in flight, exactly (nanocents).
    pub reserved_nanocents: i64,
    /// Left before the limit (cents, rounded down, never negative).
    pub remaining_cents: i64,
    /// Start of this period (RFC 3339).
    pub period_start: String,
    /// When it resets (RFC 3339).
    pub resets_at: String,
    /// When it resets, in the configured zone (`2026-12-01 00:00 CET`).
    pub resets_at_local: String,
    /// Whether spend has reached the soft threshold.
    pub soft_alert_crossed: bool,
}

impl BudgetView {
    /// Spend as a percentage of the limit, at most 100 (100 for a zero limit).
    pub fn used_percent(&self) -> i64 {
        if self.limit_cents > 0 {
            (self.spent_cents * 100 / self.limit_cents).min(100)
        } else {
            100
        }
    }

    /// Whether new requests are refused now: a blocking budget with nothing left.
    pub fn is_blocking(&self) -> bool {
        self.on_limit == OnLimit::Block && self.remaining_cents == 0
    }
}

/// A budget change as the editor sends it; the server validates it with the
/// same rules as the REST API's body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetForm {
    /// Daily, weekly or monthly.
    pub period: Period,
    /// Limit in cents.
    pub limit_cents: i64,
    /// Soft alert %.
    pub soft_alert_percent: i64,
    /// Block or alert.
    pub on_limit: OnLimit,
    /// Allowed models.
    pub allowed_models: Vec<String>,
    /// Requests per minute.
    pub rpm_limit: Option<i64>,
    /// Tokens per minute.
    pub tpm_limit: Option<i64>,
    /// The version the form showed (0 for a new budget).
    pub version: i64,
}

/// Reads a limit typed in dollars (`250`, `$1,250.50`) as whole cents within
/// `0..=MAX_LIMIT_CENTS`, the bound the server enforces, or says what is wrong.
pub fn parse_limit_dollars(raw: &str) -> Result<i64, String> {
    let raw = raw.trim().trim_start_matches('$').replace(',', "");
    let (whole, frac) = raw.split_once('.').unwrap_or((&raw, ""));
    let ok = !whole.is_empty()
        && whole.chars().all(|c| c.is_ascii_digit())
        && frac.len() <= 2
        && frac.chars().all(|c| c.is_ascii_digit());
    if !ok {
        return Err("Enter an amount in dollars, such as 250 or 99.50.".into());
    }
    let whole: i64 = whole
        .parse()
        .map_err(|_| "That amount is too large.".to_owned())?;
    let frac: i64 = format!("{frac:0<2}").parse().unwrap_or(0);
    let cents = whole.checked_mul(100).and_then(|c| c.checked_add(frac));
    match cents {
        Some(c) if c <= MAX_LIMIT_CENTS => Ok(c),
        _ => Err("The most a budget can be is $10,000,000.".into()),
    }
}

/// Reads an optional per-minute limit (empty: none); it must be positive, as
/// the server requires.
pub fn parse_per_minute(raw: &str, what: &str) -> Result<Option<i64>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    match raw.parse::<i64>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(format!(
            "{what} must be a positive whole number, or empty for no limit."
        )),
    }
}

/// Totals for one model, workspace, caller or day of a usage report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageGroup {
    /// The model, workspace, caller or day.
    pub key: String,
    /// Requests (all outcomes).
    pub requests: i64,
    /// Requests that failed or were refused.
    pub errors: i64,
    /// Prompt tokens.
    pub input_tokens: i64,
    /// Completion tokens.
    pub output_tokens: i64,
    /// Exact cost.
    pub cost_nanocents: i64,
    /// Cost in cents (fractional).
    pub cost_cents: f64,
}

/// A gateway key as listed (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayKeyInfo {
    /// Row id.
    pub id: i64,
    /// The team that pays.
    pub team: String,
    /// The workspace it is bound to.
    pub workspace_id: Option<String>,
    /// Its label.
    pub name: String,
    /// The first characters, to recognise it.
    pub prefix: String,
    /// Who created it.
    pub created_by: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds, if used.
    pub last_used_at: Option<i64>,
    /// Unix seconds, if revoked.
    pub revoked_at: Option<i64>,
}

/// A gateway key just created: the only time its value is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewGatewayKey {
    /// Its listing.
    pub info: GatewayKeyInfo,
    /// The key itself.
    pub key: String,
}

/// A circuit breaker's state, as the UI and the `llm_upstream_circuit_state` gauge show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    /// Requests flow.
    Closed,
    /// One probe is allowed through.
    HalfOpen,
    /// Requests are refused until the cooldown passes.
    Open,
}

impl CircuitState {
    /// The gauge value: 0 closed, 1 half-open, 2 open.
    pub fn gauge(self) -> f64 {
        match self {
            CircuitState::Closed => 0.0,
            CircuitState::HalfOpen => 1.0,
            CircuitState::Open => 2.0,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::HalfOpen => "half_open",
            CircuitState::Open => "open",
        }
    }
}

/// One circuit breaker in a listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CircuitInfo {
    /// Provider.
    pub provider: String,
    /// Model.
    pub model: String,
    /// State now.
    pub state: CircuitState,
    /// Consecutive failures counted.
    pub consecutive_failures: u32,
    /// Milliseconds until a probe is allowed, when open.
    pub retry_in_ms: u64,
}

/// One day of the period, for the spend chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayPoint {
    /// `2026-11-27`, in the budgets' time zone.
    pub day: String,
    /// Spend that day (cents).
    pub cost_cents: f64,
}

/// One change in a budget's history, summarised for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetChange {
    /// The version this change produced.
    pub version: i64,
    /// The workspace, if a workspace budget.
    pub workspace_id: Option<String>,
    /// Who.
    pub changed_by: String,
    /// When (unix seconds).
    pub changed_at: i64,
    /// What changed: "limit $10.00 → $25.00, period monthly → weekly".
    pub summary: String,
}

/// The team budget with its chart: what the editor island needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetBoard {
    /// The team.
    pub team: String,
    /// The team budget, if set.
    pub budget: Option<BudgetView>,
    /// Each day of the period (or of the last 30 days without a budget).
    pub days: Vec<DayPoint>,
    /// Index of today in `days`.
    pub today: usize,
    /// Linear projection of spend at the period's end (cents).
    pub projected_cents: f64,
    /// The caller may change the budget.
    pub can_edit: bool,
    /// Models a budget may allow.
    pub priced_models: Vec<String>,
}

/// Everything on a team's Budget page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetPage {
    /// Chart and editor.
    pub board: BudgetBoard,
    /// Workspace budgets.
    pub workspaces: Vec<BudgetView>,
    /// Spend by model this period.
    pub by_model: Vec<UsageGroup>,
    /// Spend by workspace this period.
    pub by_workspace: Vec<UsageGroup>,
    /// Spend by the product feature callers named (`X-Paved-Feature`) this period.
    #[serde(default)]
    pub by_feature: Vec<UsageGroup>,
    /// Each feature's cost per day of the board's days, in cents.
    #[serde(default)]
    pub feature_days: Vec<(String, Vec<f64>)>,
    /// Top callers (gateway keys) this period.
    pub callers: Vec<UsageGroup>,
    /// Budget changes, newest first.
    pub history: Vec<BudgetChange>,
    /// The team's gateway keys.
    pub keys: Vec<GatewayKeyInfo>,
    /// Upstream circuit breakers.
    pub circuits: Vec<CircuitInfo>,
    /// The caller may create and revoke keys.
    pub can_manage_keys: bool,
}

/// A price as the overview lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceLine {
    /// Provider.
    pub provider: String,
    /// Model.
    pub model: String,
    /// Dollars per million input tokens (`0.80`, `0.075`).
    pub input_usd: String,
    /// Dollars per million output tokens.
    pub output_usd: String,
    /// Who set it.
    pub updated_by: String,
    /// Offered by the gateway (a configured upstream).
    pub routed: bool,
}

/// The platform overview for PMs and admins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    /// Every budget, by team and workspace.
    pub budgets: Vec<BudgetView>,
    /// Prices, the models the gateway offers first.
    pub prices: Vec<PriceLine>,
    /// Breakers.
    pub circuits: Vec<CircuitInfo>,
    /// The caller may edit prices.
    pub can_edit_prices: bool,
    /// Each model's calls over the last 24 hours, busiest first.
    #[serde(default)]
    pub models: Vec<ModelHealth>,
}

/// One model's calls through the gateway over a window: latency and
/// errors by class.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelHealth {
    /// The model as callers name it.
    pub model: String,
    /// Calls answered.
    pub calls: u64,
    /// Median whole time in the gateway, milliseconds.
    pub p50_ms: Option<i64>,
    /// 95th percentile of the same.
    pub p95_ms: Option<i64>,
    /// 95th percentile of the time the gateway itself added (the
    /// provider's excluded), milliseconds with a fraction.
    pub added_p95_ms: Option<f64>,
    /// (error class, calls), most first: `upstream_5xx`, `rate_limited`…
    pub errors: Vec<(String, u64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip() {
        for p in Period::ALL {
            assert_eq!(Period::parse(p.as_str()), Some(p));
            assert_eq!(
                serde_json::to_value(p).unwrap(),
                serde_json::json!(p.as_str())
            );
        }
        assert_eq!(Period::parse("yearly"), None);
        assert_eq!(OnLimit::parse("alert"), Some(OnLimit::Alert));
        assert_eq!(OnLimit::parse("Block"), None);
        assert_eq!(
            serde_json::to_value(CircuitState::HalfOpen).unwrap(),
            serde_json::json!(CircuitState::HalfOpen.as_str())
        );
    }

    #[test]
    fn limits_in_dollars_become_cents_within_bounds() {
        assert_eq!(parse_limit_dollars("250"), Ok(25_000));
        assert_eq!(parse_limit_dollars(" $1,250.5 "), Ok(125_050));
        assert_eq!(parse_limit_dollars("0.07"), Ok(7));
        assert_eq!(parse_limit_dollars("10000000"), Ok(MAX_LIMIT_CENTS));
        assert!(parse_limit_dollars("10000000.01").is_err());
        assert!(parse_limit_dollars("99999999999999999999").is_err());
        for bad in ["", "-5", "1.234", "ten", "1e3", ".5"] {
            assert!(parse_limit_dollars(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_per_minute(" ", "Requests"), Ok(None));
        assert_eq!(parse_per_minute("60", "Requests"), Ok(Some(60)));
        assert!(parse_per_minute("0", "Requests").is_err());
    }

    #[test]
    fn every_amount_follows_one_rule() {
        assert_eq!(dollars(25_000), "$250.00");
        assert_eq!(dollars(50), "$0.50");
        assert_eq!(dollars(0), "$0.00");
        assert_eq!(dollars_f(1234.567), "$12.35");
        assert_eq!(dollars_f(0.52), "$0.0052");
        assert_eq!(dollars_f(0.01), "$0.0001");
        assert_eq!(dollars_f(0.004), "<$0.0001");
        assert_eq!(dollars_f(-0.52), "-$0.0052");
        // The headline (exact nanocents) and a table row (float cents) of one call agree.
        assert_eq!(
            dollars_f(cents_from_nanocents(10_000_000)),
            dollars_f(0.01),
            "a hundredth of a cent is not shown as a cent"
        );
    }
}

/// What a guardrail does when a detector matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum GuardAction {
    /// Not checked.
    #[default]
    Off,
    /// Checked and recorded (detector and count, never the text).
    Report,
    /// The match is replaced by a placeholder such as `[EMAIL]`.
    Redact,
    /// The request (or answer) is refused.
    Block,
}

impl GuardAction {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            GuardAction::Off => "off",
            GuardAction::Report => "report",
            GuardAction::Redact => "redact",
            GuardAction::Block => "block",
        }
    }
}

/// The detectors a guardrail can use (wire names).
pub const GUARDRAIL_DETECTORS: [&str; 7] = [
    "email",
    "phone",
    "card_number",
    "iban",
    "api_key",
    "aws_key",
    "private_key",
];

/// The longest a team may keep request logs.
pub const MAX_LOG_RETENTION_DAYS: i64 = 90;

/// The longest cache lifetime.
pub const MAX_CACHE_TTL_SECS: i64 = 86_400;

/// A team's gateway settings: response cache, guardrails, request logs and
/// the rotation policy for its own provider keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GatewaySettings {
    /// Seconds an identical request's answer is reused (0: no cache unless a
    /// request asks with `Cache-Control: max-age=N`).
    #[serde(default)]
    pub cache_ttl_secs: i64,
    /// Detectors the guardrails use (see [`GUARDRAIL_DETECTORS`]).
    #[serde(default)]
    pub guardrail_detectors: Vec<String>,
    /// What happens to prompts that match.
    #[serde(default)]
    pub guardrail_prompt: GuardAction,
    /// What happens to answers that match (streamed answers: reported only).
    #[serde(default)]
    pub guardrail_response: GuardAction,
    /// Keep a log of requests for debugging.
    #[serde(default)]
    pub log_requests: bool,
    /// Keep the request and response bodies too (masked).
    #[serde(default)]
    pub log_bodies: bool,
    /// Days logs are kept (1–90).
    #[serde(default = "default_retention")]
    pub log_retention_days: i64,
    /// Days after which the team's own provider keys should be rotated
    /// (owners are reminded); `None`: no policy.
    #[serde(default)]
    pub key_rotation_days: Option<i64>,
}

fn default_retention() -> i64 {
    7
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            cache_ttl_secs: 0,
            guardrail_detectors: Vec::new(),
            guardrail_prompt: GuardAction::Off,
            guardrail_response: GuardAction::Off,
            log_requests: false,
            log_bodies: false,
            log_retention_days: default_retention(),
            key_rotation_days: None,
        }
    }
}

impl GatewaySettings {
    /// Every problem, by field.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if !(0..=MAX_CACHE_TTL_SECS).contains(&self.cache_ttl_secs) {
            out.push((
                "cache_ttl_secs".into(),
                format!("must be 0–{MAX_CACHE_TTL_SECS} seconds"),
            ));
        }
        for d in &self.guardrail_detectors {
            if !GUARDRAIL_DETECTORS.contains(&d.as_str()) {
                out.push((
                    "guardrail_detectors".into(),
                    format!(
                        "unknown detector {d}; choose from {}",
                        GUARDRAIL_DETECTORS.join(", ")
                    ),
                ));
            }
        }
        let checking = self.guardrail_prompt != GuardAction::Off
            || self.guardrail_response != GuardAction::Off;
        if checking && self.guardrail_detectors.is_empty() {
            out.push((
                "guardrail_detectors".into(),
                "choose at least one detector for the guardrails to use".into(),
            ));
        }
        if !(1..=MAX_LOG_RETENTION_DAYS).contains(&self.log_retention_days) {
            out.push((
                "log_retention_days".into(),
                format!("must be 1–{MAX_LOG_RETENTION_DAYS} days"),
            ));
        }
        if self.log_bodies && !self.log_requests {
            out.push((
                "log_bodies".into(),
                "bodies are kept only when requests are logged".into(),
            ));
        }
        if self
            .key_rotation_days
            .is_some_and(|d| !(1..=3650).contains(&d))
        {
            out.push(("key_rotation_days".into(), "must be 1–3650 days".into()));
        }
        out
    }
}

/// One logged gateway request, as the Budget page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RequestLogEntry {
    /// Its id.
    pub id: i64,
    /// When (RFC 3339).
    pub at: String,
    /// The gateway key's name.
    pub key_name: Option<String>,
    /// `chat`, `responses`, `messages` or `embeddings`.
    pub request_type: String,
    /// The model that served.
    pub model: String,
    /// The deployment that served.
    pub deployment: Option<String>,
    /// The status answered.
    pub status: u16,
    /// Time in the gateway.
    pub latency_ms: i64,
    /// The product feature named.
    pub feature: Option<String>,
    /// The trace id.
    pub trace_id: Option<String>,
    /// Whether the cache answered.
    pub cache_hit: bool,
    /// Guardrail findings (detectors and counts).
    pub guardrails: Option<String>,
    /// The request body, masked (when bodies are kept).
    pub request_body: Option<String>,
    /// The response body, masked (when bodies are kept).
    pub response_body: Option<String>,
}

/// What the response cache saved a team for one feature this period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CacheSaving {
    /// The product feature (`None`: calls that named none).
    pub feature: Option<String>,
    /// Requests answered from the cache.
    pub hits: i64,
    /// What they would have cost, in cents (fractional).
    pub saved_cents: f64,
}

/// How old a team's own LLM provider keys are, against its rotation policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProviderKeyAge {
    /// When the keys were last set (RFC 3339).
    pub updated_at: String,
    /// Whole days since.
    pub age_days: i64,
    /// The team's policy, if any.
    pub rotation_days: Option<i64>,
    /// Older than the policy allows.
    pub overdue: bool,
}
