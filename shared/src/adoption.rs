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
    /// One page of teams, in `sort` order.
    pub teams: Vec<TeamRow>,
    /// How many teams there are in all.
    #[serde(default)]
    pub teams_total: u64,
    /// The page shown, from 1 ([`TEAM_PAGE_SIZE`] teams a page).
    #[serde(default)]
    pub page: u32,
    /// The column the teams are sorted by (one of [`TEAM_SORTS`]).
    #[serde(default)]
    pub sort: String,
    /// The latest survey with a shown NPS: (id, title, NPS, answers).
    pub latest_survey: Option<(String, String, i32, u64)>,
    /// Capabilities breached and at risk: (id, name, state label).
    pub attention: Vec<(String, String, String)>,
    /// Each golden path's funnel and success over the last 30 days.
    #[serde(default)]
    pub golden_paths: Vec<crate::scaffold::TemplateMetrics>,
}

/// A team budget's burn this period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Burn {
    /// Spent so far, in cents.
    pub spent_cents: f64,
    /// The limit, in cents.
    pub limit_cents: i64,
    /// At this pace, by the end of the period, in cents.
    pub projected_cents: f64,
    /// `per month`, `per week`…, for people.
    pub period: String,
}

/// What a team lead's home shows of one team at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadGlance {
    /// The team.
    pub team: String,
    /// The team budget's burn and forecast; `None` without a team budget.
    pub budget: Option<Burn>,
    /// Services whose Vault policy or Kubernetes role last failed to write.
    pub secrets_failing: u64,
    /// The team's delivery over the last 30 days, with the 30 before.
    pub dora: crate::outcomes::Dora,
}

/// Teams on one page of the platform home.
pub const TEAM_PAGE_SIZE: usize = 50;

/// The columns the platform home's teams sort by; the first is the default.
pub const TEAM_SORTS: [&str; 9] = [
    "ai_cost",
    "team",
    "members",
    "services",
    "runs",
    "deploys",
    "lead_time",
    "secrets",
    "nps",
];

/// `sort` if it is one of [`TEAM_SORTS`], else the default.
pub fn team_sort(sort: &str) -> &'static str {
    TEAM_SORTS
        .iter()
        .find(|s| **s == sort)
        .copied()
        .unwrap_or(TEAM_SORTS[0])
}

/// Sorts teams by a column of [`TEAM_SORTS`]: the team name and lead time
/// ascending (shortest first, teams without one last), every other column
/// descending; ties by name.
pub fn sort_teams<R: std::borrow::Borrow<TeamRow>>(rows: &mut [R], sort: &str) {
    let key = |r: &TeamRow| -> f64 {
        match sort {
            "members" => r.members as f64,
            "services" => r.services as f64,
            "runs" => r.template_runs as f64,
            "deploys" => r
                .dora
                .as_ref()
                .map_or(-1.0, |d| d.deployment_frequency.per_week),
            "lead_time" => r
                .dora
                .as_ref()
                .and_then(|d| d.lead_time_seconds.median)
                .map_or(f64::MAX, |m| m as f64),
            "nps" => r.nps.map_or(-1000.0, f64::from),
            "secrets" => r.secrets as f64,
            _ => r.ai_cost_cents,
        }
    };
    rows.sort_by(|a, b| {
        let (a, b) = (a.borrow(), b.borrow());
        match sort {
            "team" => a.team.cmp(&b.team),
            "lead_time" => key(a).total_cmp(&key(b)).then_with(|| a.team.cmp(&b.team)),
            _ => key(b).total_cmp(&key(a)).then_with(|| a.team.cmp(&b.team)),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(team: &str, cost: f64, nps: Option<i32>) -> TeamRow {
        TeamRow {
            team: team.into(),
            ai_cost_cents: cost,
            nps,
            ..TeamRow::default()
        }
    }

    #[test]
    fn teams_sort_by_a_known_column_with_ties_by_name() {
        let mut rows = vec![
            row("b", 5.0, None),
            row("a", 5.0, Some(10)),
            row("c", 9.0, Some(-20)),
        ];
        sort_teams(&mut rows, team_sort("ai_cost"));
        let names = |rows: &[TeamRow]| rows.iter().map(|r| r.team.clone()).collect::<Vec<_>>();
        assert_eq!(names(&rows), ["c", "a", "b"]);
        sort_teams(&mut rows, team_sort("nps"));
        assert_eq!(names(&rows), ["a", "c", "b"], "no NPS last");
        sort_teams(&mut rows, team_sort("team"));
        assert_eq!(names(&rows), ["a", "b", "c"]);
        assert_eq!(team_sort("'; DROP"), "ai_cost");
        assert_eq!(team_sort("secrets"), "secrets");
    }
}
