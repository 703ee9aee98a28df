//! The platform's capabilities as products (`/api/outcomes/v1/capabilities`
//! and `/capabilities`): each golden path, LLM model route, the gateway, the
//! scaffolder, secrets and the catalog, with an owner, a lifecycle, SLOs
//! computed from Paved's own records, the error budget left and how fast it
//! burns.

use serde::{Deserialize, Serialize};

/// Where an SLO stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SloState {
    /// Nothing happened in the window: nothing to judge.
    NoData,
    /// Inside the objective with budget to spare.
    Met,
    /// Inside the objective, but under a quarter of the error budget is left
    /// or it is burning fast.
    AtRisk,
    /// Below the objective: the error budget is spent.
    Breached,
}

impl SloState {
    /// For people.
    pub fn label(self) -> &'static str {
        match self {
            SloState::NoData => "No data",
            SloState::Met => "Met",
            SloState::AtRisk => "At risk",
            SloState::Breached => "Breached",
        }
    }
}

/// One SLO of a capability, with what it was computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloView {
    /// Stable id within the capability (`availability`, `success_rate`).
    pub id: String,
    /// For people ("Requests answered without a server error").
    pub name: String,
    /// The objective, 0..1 (0.995).
    pub objective: f64,
    /// The window the SLI covers, in days.
    pub window_days: u32,
    /// Good events in the window.
    pub good: u64,
    /// All events in the window.
    pub total: u64,
    /// `good / total`, or `null` with no events.
    pub sli: Option<f64>,
    /// Share of the error budget left: 1 untouched, 0 spent, below 0 overspent.
    pub error_budget_remaining: Option<f64>,
    /// How fast the budget burns over the last [`BURN_WINDOW_HOURS`]: 1 spends
    /// it exactly over the window; `null` with no recent events.
    pub burn_rate: Option<f64>,
    /// Whether the burn rate is at or above [`FAST_BURN`].
    pub fast_burn: bool,
    /// Where it stands.
    pub state: SloState,
}

/// The recent window the burn rate is read over.
pub const BURN_WINDOW_HOURS: i64 = 6;

/// A burn rate at which a 28-day budget is gone in under 5 days (Google's
/// SRE workbook pages at 6× over 6 hours).
pub const FAST_BURN: f64 = 6.0;

/// A capability and its SLOs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapabilityView {
    /// Stable id (`gateway`, `golden-path:default/rust-axum-service`, `model:gpt-4o`).
    pub id: String,
    /// For people.
    pub name: String,
    /// `gateway`, `model-route`, `golden-path`, `scaffolder`, `secrets`, `catalog`.
    pub kind: String,
    /// The owning team.
    pub owner: String,
    /// `experimental`, `production`, `deprecated`…
    pub lifecycle: String,
    /// What it is.
    pub description: String,
    /// How to roll a bad change back (from `paved.dev/rollback`), if written down.
    pub rollback: Option<String>,
    /// The cost controls that apply, in words.
    pub cost_controls: Vec<String>,
    /// Where it lives in Paved (a relative link).
    pub link: Option<String>,
    /// The catalog entity that declares it, if any (`kind:namespace/name`).
    pub declared_by: Option<String>,
    /// Its SLOs.
    pub slos: Vec<SloView>,
    /// The worst of its SLOs.
    pub state: SloState,
}

/// Where the registry opens at capability `id` (ids hold `:` and `/`, so it
/// travels as a query value).
pub fn href(id: &str) -> String {
    format!("/capabilities?id={}", crate::forms::percent_encode(id))
}
