//! Adoption and the platform PM's home (`/api/outcomes/v1/adoption`,
//! `/platform`): how much of the company uses the platform, each as a
//! weekly trend, and every team side by side.

use serde::{Deserialize, Serialize};

use crate::outcomes::Dora;

/// One week of adoption (weeks start on Monday, UTC).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AdoptionWeek {
    /// The Monday that starts it (`2026-03-02`).
    pub week: String,
    /// People who used Paved that week.
    pub active_people: u64,
    /// Golden-path runs started.
    pub template_runs: u64,
    /// Of them, finished successfully.
    pub template_successes: u64,
    /// Gateway calls.
    pub gateway_requests: u64,
    /// Gateway spend, in cents.
    pub gateway_cost_cents: f64,
    /// Secret versions written.
    pub secret_writes: u64,
}

/// Adoption across the company.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Adoption {
    /// Every team.
    pub teams_total: u64,
    /// Teams that own something in the catalog or ran a golden path.
    pub teams_onboarded: u64,
    /// Components in the catalog.
    pub services_total: u64,
    /// Of them, created through a golden path (`backstage.io/source-template`).
    pub services_from_golden_paths: u64,
    /// People known to Paved.
    pub people_total: u64,
    /// People active in the last 7 days.
    pub weekly_active: u64,
    /// People active in the last 30 days.
    pub monthly_active: u64,
    /// Hours saved by successful golden-path runs in the last 30 days
    /// (`backstage.io/time-saved` × runs).
    pub hours_saved_30d: f64,
    /// The last 12 weeks, oldest first.
    pub weeks: Vec<AdoptionWeek>,
}

/// One team on the platform home, over the last 30 days.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TeamRow {
    /// The team.
    pub team: String,
    /// Members.
    pub members: u64,
    /// Components it owns.
    pub services: u64,
    /// Golden-path runs.
    pub template_runs: u64,
    /// Gateway calls.
    pub gateway_requests: u64,
    /// Gateway spend, in cents.
    pub ai_cost_cents: f64,
    /// Gateway spend per day, oldest first (30 values), for a sparkline.
    pub ai_cost_daily: Vec<f64>,
    /// Secrets it keeps.
    pub secrets: u64,
    /// DORA over the last 30 days, when it has delivery events.
    pub dora: Option<Dora>,
    /// The team's NPS in the latest survey that shows it (large enough group).
    pub nps: Option<i32>,
}

/// The platform PM's home.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlatformHome {
    /// Adoption across the company.
    pub adoption: Adoption,
    /// Every team.
    pub teams: Vec<TeamRow>,
    /// The latest survey with a shown NPS: (id, title, NPS, answers).
    pub latest_survey: Option<(String, String, i32, u64)>,
    /// Capabilities breached and at risk: (id, name, state label).
    pub attention: Vec<(String, String, String)>,
    /// Each golden path's funnel and success over the last 30 days.
    #[serde(default)]
    pub golden_paths: Vec<crate::scaffold::TemplateMetrics>,
}
