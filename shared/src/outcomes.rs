//! Delivery outcomes on the wire: DORA's five keys as the REST API
//! (`/api/outcomes/v1/…`) and the Outcomes pages speak them, with the lists
//! behind every number. Times are RFC 3339 in UTC or seconds, ratios 0..1,
//! and `null` where there is no data (never 0 for "unknown").

use serde::{Deserialize, Serialize};

/// A DORA performance band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    /// Elite.
    Elite,
    /// High.
    High,
    /// Medium.
    Medium,
    /// Low.
    Low,
}

impl Band {
    /// The band's name for people.
    pub fn label(self) -> &'static str {
        match self {
            Band::Elite => "Elite",
            Band::High => "High",
            Band::Medium => "Medium",
            Band::Low => "Low",
        }
    }
}

/// Which DORA report places change failure rate into bands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum BandScheme {
    /// The 2024 clusters, by nearest centroid (the default).
    #[default]
    #[serde(rename = "2024")]
    Dora2024,
    /// The 2023 thresholds.
    #[serde(rename = "2023")]
    Dora2023,
}

/// Deployment frequency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentFrequency {
    /// Successful production deployments in the window.
    pub deployments: u64,
    /// Days (in the asked time zone) with at least one.
    pub deployment_days: u64,
    /// Deployments per week.
    pub per_week: f64,
    /// Deployment days per week (what the band is placed by).
    pub days_per_week: f64,
    /// The band; `null` without deployments.
    pub band: Option<Band>,
}

/// Lead time for changes, in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadTime {
    /// The median.
    pub median: Option<i64>,
    /// The 90th percentile (nearest rank).
    pub p90: Option<i64>,
    /// Changes with a lead time.
    pub changes: u64,
    /// The band of the median.
    pub band: Option<Band>,
}

/// Change failure rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeFailureRate {
    /// Failed / deployments.
    pub value: Option<f64>,
    /// Deployments that caused at least one incident.
    pub failed: u64,
    /// Deployments.
    pub deployments: u64,
    /// The band.
    pub band: Option<Band>,
}

/// Failed-deployment recovery time, in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveryTime {
    /// The median time from an incident's opening to its resolution.
    pub median: Option<i64>,
    /// Resolved incidents opened in the window.
    pub incidents: u64,
    /// Incidents opened in the window and still open.
    pub open: u64,
    /// The band of the median.
    pub band: Option<Band>,
}

/// Deployment rework rate (DORA publishes no bands for it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReworkRate {
    /// Rework / deployments.
    pub value: Option<f64>,
    /// Deployments made to fix an incident.
    pub rework: u64,
    /// Deployments.
    pub deployments: u64,
}

/// DORA's five keys over a window, and the window before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dora {
    /// Start of the window (inclusive).
    pub from: String,
    /// End of the window (exclusive).
    pub to: String,
    /// Deployment frequency.
    pub deployment_frequency: DeploymentFrequency,
    /// Lead time for changes.
    pub lead_time_seconds: LeadTime,
    /// Change failure rate.
    pub change_failure_rate: ChangeFailureRate,
    /// Failed-deployment recovery time.
    pub recovery_time_seconds: RecoveryTime,
    /// Deployment rework rate.
    pub rework_rate: ReworkRate,
    /// The same for the window of the same length just before.
    pub previous: Option<Box<Dora>>,
}

/// A deployment behind the numbers, with why it counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentView {
    /// Paved's id.
    pub id: i64,
    /// The source's id for it.
    pub key: String,
    /// The component it counts for.
    pub component: String,
    /// The environment.
    pub environment: String,
    /// The commit deployed.
    pub sha: Option<String>,
    /// A title.
    pub title: Option<String>,
    /// `success` or `failure`.
    pub status: String,
    /// When it finished.
    pub finished_at: String,
    /// How many changes it shipped.
    pub changes: u64,
    /// The median lead time of its changes.
    pub lead_time_median_seconds: Option<i64>,
    /// Incidents blamed on it.
    pub caused_incidents: Vec<String>,
    /// Why it counts as rework, when it does.
    pub rework: Option<String>,
    /// Why it counts for this component.
    pub reason: String,
}

/// A change behind lead time, with why it counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeView {
    /// The commit.
    pub sha: String,
    /// Its repository (`host/owner/name`).
    pub repo: String,
    /// The component.
    pub component: String,
    /// The deployment that shipped it.
    pub deployment: String,
    /// When it was committed.
    pub committed_at: Option<String>,
    /// When it reached the environment.
    pub deployed_at: String,
    /// The difference, when it counts.
    pub lead_seconds: Option<i64>,
    /// Why it belongs to that deployment.
    pub reason: String,
}

/// An incident behind change failure rate and recovery time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentView {
    /// The source's key.
    pub key: String,
    /// Its title.
    pub title: String,
    /// A link (http/https only).
    pub url: Option<String>,
    /// The component.
    pub component: String,
    /// Opened.
    pub created_at: String,
    /// Resolved.
    pub resolved_at: Option<String>,
    /// Resolved minus opened.
    pub recovery_seconds: Option<i64>,
    /// The deployment it is blamed on.
    pub deployment: Option<String>,
    /// Why.
    pub reason: String,
}

/// A kind of source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// GitHub webhooks (`X-Hub-Signature-256`).
    Github,
    /// GitLab webhooks (`X-Gitlab-Token`).
    Gitlab,
    /// Apache DevLake's webhook API (bearer token).
    Devlake,
    /// Paved's generic JSON (bearer token).
    Generic,
}

impl SourceKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Github => "github",
            SourceKind::Gitlab => "gitlab",
            SourceKind::Devlake => "devlake",
            SourceKind::Generic => "generic",
        }
    }

    /// The kind named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "github" => Some(SourceKind::Github),
            "gitlab" => Some(SourceKind::Gitlab),
            "devlake" => Some(SourceKind::Devlake),
            "generic" => Some(SourceKind::Generic),
            _ => None,
        }
    }

    /// Where this kind posts, relative to the public URL.
    pub fn endpoint(self) -> &'static str {
        match self {
            SourceKind::Github => "/api/events/v1/github",
            SourceKind::Gitlab => "/api/events/v1/gitlab",
            SourceKind::Devlake => "/api/events/v1/devlake/connections/{id}/deployments",
            SourceKind::Generic => "/api/events/v1/generic",
        }
    }
}

/// A source as admins see it (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceView {
    /// Its id.
    pub id: String,
    /// Its kind.
    pub kind: SourceKind,
    /// A name for people.
    pub name: String,
    /// Where it posts.
    pub endpoint: String,
    /// Set by an environment variable rather than created here.
    pub from_environment: bool,
    /// When it was created (unix seconds).
    pub created_at: i64,
    /// When its secret was last replaced.
    pub rotated_at: Option<i64>,
    /// When it last delivered an event.
    pub last_event_at: Option<i64>,
    /// How many deliveries it made.
    pub event_count: i64,
}

/// A source with its new secret, shown this once.
#[derive(Clone, Serialize, Deserialize)]
pub struct Created {
    /// The source.
    pub source: SourceView,
    /// The secret (GitHub) or token (the others).
    pub secret: String,
}

impl std::fmt::Debug for Created {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Created")
            .field("source", &self.source)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// Events no component claims.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unmapped {
    /// `deployment` or `incident`.
    pub kind: String,
    /// The repository they name.
    pub repo: Option<String>,
    /// The component they name (which does not exist).
    pub component: Option<String>,
    /// How many.
    pub count: i64,
    /// The newest (unix seconds).
    pub latest: i64,
}

/// The lists behind the numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Behind {
    /// Deployments (successful and failed), newest first.
    pub deployments: Vec<DeploymentView>,
    /// Changes, the longest lead time first.
    pub changes: Vec<ChangeView>,
    /// Incidents, newest first.
    pub incidents: Vec<IncidentView>,
}

/// Which list a page shows below the five keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum List {
    /// The deployments (the default).
    #[default]
    Deployments,
    /// The changes behind lead time.
    Changes,
    /// The incidents behind change failure rate and recovery time.
    Incidents,
}

impl List {
    /// The list named `s` (`deployments` when unknown or absent).
    pub fn parse(s: &str) -> List {
        match s {
            "changes" => List::Changes,
            "incidents" => List::Incidents,
            _ => List::Deployments,
        }
    }

    /// The query-string name.
    pub fn as_str(self) -> &'static str {
        match self {
            List::Deployments => "deployments",
            List::Changes => "changes",
            List::Incidents => "incidents",
        }
    }
}

/// Where each kind of source posts, for the empty states.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEndpoints {
    /// GitHub webhooks.
    pub github: String,
    /// GitLab webhooks.
    pub gitlab: String,
    /// Paved's generic JSON.
    pub generic: String,
    /// DevLake's webhook API (`{id}`: the source's id).
    pub devlake: String,
}

/// An Outcomes page: a team's or a component's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomesPage {
    /// The five keys over the asked window, with the window before.
    pub dora: Dora,
    /// The five keys per week for the 12 weeks up to the window's end, oldest first.
    pub weeks: Vec<Dora>,
    /// What the shown list holds (at most [`OutcomesPage::LIST_LIMIT`] rows).
    pub behind: Behind,
    /// How many rows the shown list has in all.
    pub list_total: u64,
    /// The components counted (`component:namespace/name`).
    pub components: Vec<String>,
    /// Whether any delivery event reached these components, ever.
    pub has_events: bool,
    /// Where events are sent.
    pub endpoints: EventEndpoints,
    /// The environment asked for; `None`: the production ones.
    pub environment: Option<String>,
    /// The production environment patterns.
    pub production: Vec<String>,
    /// The signed-in person manages event sources.
    pub manages_sources: bool,
}

impl OutcomesPage {
    /// The most rows a page lists.
    pub const LIST_LIMIT: usize = 200;
}

/// The admins' page: event sources and unmapped events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourcesPage {
    /// Every source.
    pub sources: Vec<SourceView>,
    /// Events no component claims.
    pub unmapped: Vec<Unmapped>,
    /// Where events are sent.
    pub endpoints: EventEndpoints,
}

/// A human duration: `42 s`, `17 min`, `5.2 h`, `3.1 d`.
pub fn duration(secs: i64) -> String {
    let s = secs.max(0) as f64;
    if s < 60.0 {
        format!("{secs} s")
    } else if s < 3_600.0 {
        format!("{:.0} min", s / 60.0)
    } else if s < 86_400.0 {
        format!("{:.1} h", s / 3_600.0)
    } else {
        format!("{:.1} d", s / 86_400.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(42), "42 s");
        assert_eq!(duration(17 * 60), "17 min");
        assert_eq!(duration(5 * 3600 + 720), "5.2 h");
        assert_eq!(duration(3 * 86_400 + 8_640), "3.1 d");
    }

    #[test]
    fn bands_and_schemes_have_wire_names() {
        assert_eq!(serde_json::to_string(&Band::Elite).unwrap(), "\"elite\"");
        assert_eq!(
            serde_json::to_string(&BandScheme::Dora2023).unwrap(),
            "\"2023\""
        );
    }
}
