//! Attribution and the five keys, as plain functions over what the events
//! told: which changes each deployment shipped (and why), which deployment
//! each incident is blamed on (and why), which deployments are rework, and
//! the numbers over a window. Nothing here reads the clock or the database.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap, HashSet};

use paved_shared::outcomes::{
    Band, BandScheme, ChangeFailureRate, ChangeView, DeploymentFrequency, DeploymentView, Dora,
    IncidentView, LeadTime, RecoveryTime, ReworkRate,
};

/// A deployment as stored.
#[derive(Debug, Clone)]
pub struct DeployRow {
    /// Row id.
    pub id: i64,
    /// The source's key.
    pub key: String,
    /// `host/owner/name`.
    pub repo: Option<String>,
    /// The component the event named.
    pub component_ref: Option<String>,
    /// As the source named it.
    pub environment: String,
    /// The commit deployed.
    pub sha: Option<String>,
    /// `pending`, `success` or `failure`.
    pub status: String,
    /// When it finished.
    pub finished_at: i64,
    /// Why the event says it is rework.
    pub rework: Option<String>,
    /// The incident it fixes.
    pub fixes: Option<String>,
    /// A title.
    pub title: Option<String>,
}

/// An incident as stored.
#[derive(Debug, Clone)]
pub struct IncidentRow {
    /// Row id.
    pub id: i64,
    /// The source's key.
    pub key: String,
    /// Where it was filed.
    pub repo: Option<String>,
    /// The component it names.
    pub component_ref: Option<String>,
    /// Its title.
    pub title: String,
    /// A link.
    pub url: Option<String>,
    /// Opened.
    pub created_at: i64,
    /// Resolved.
    pub resolved_at: Option<i64>,
    /// `root cause: <sha>`.
    pub cause_sha: Option<String>,
    /// A named deployment.
    pub cause_deployment: Option<String>,
}

/// What is known of one commit.
#[derive(Debug, Clone, Default)]
pub struct CommitInfo {
    /// When it was committed.
    pub at: Option<i64>,
    /// The paths it touched, when known.
    pub files: Option<Vec<String>>,
}

/// A merge: its commit stands for the branch ending at `head_sha`.
#[derive(Debug, Clone)]
pub struct MergeInfo {
    /// The branch's last commit.
    pub head_sha: Option<String>,
    /// The pull request.
    pub number: String,
}

/// One repository's history as far as events told it.
#[derive(Debug, Clone, Default)]
pub struct RepoGraph {
    /// Commits by sha.
    pub commits: HashMap<String, CommitInfo>,
    /// Parents by sha.
    pub parents: HashMap<String, Vec<String>>,
    /// Merges by their commit.
    pub merges: HashMap<String, MergeInfo>,
}

/// One component's view of the world: its repositories and, in a monorepo,
/// its folder.
#[derive(Debug, Clone)]
pub struct Scope {
    /// `component:namespace/name`.
    pub component: String,
    /// Its repositories (`host/owner/name`).
    pub repos: Vec<String>,
    /// In a monorepo, the folder its changes live under.
    pub path_prefix: Option<String>,
}

/// The settings attribution follows.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// A component's first deployment reaches this far back for changes.
    pub first_deploy_lookback_secs: i64,
    /// An incident without a named cause is blamed on the latest production
    /// deployment at most this long before it.
    pub incident_window_secs: i64,
}

/// A change shipped by a deployment.
#[derive(Debug, Clone)]
pub struct Shipped {
    /// The commit.
    pub sha: String,
    /// Its repository.
    pub repo: String,
    /// When it was committed.
    pub committed_at: Option<i64>,
    /// Why it counts (or why its lead time does not); see [`Shipped::reason`].
    pub why: ChangeReason,
    /// Whether its lead time counts here: only at its first deployment to
    /// any of the environments asked for (two production environments ship
    /// the same change twice, but it reached production once).
    pub counts_lead: bool,
}

/// How a change reached a deployment (rendered by [`Shipped::reason`], so
/// a year of changes kept in memory is not a year of sentences).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeReason {
    /// The commit deployed.
    Deployed,
    /// An ancestor of the commit deployed.
    Ancestor,
    /// A merge commit whose branch's commits were not received (the pull request).
    Merge(String),
    /// Reached, but no push told when it was committed.
    NoTime,
}

impl Shipped {
    /// Why it counts (or why its lead time does not), for a person;
    /// `deployed` is the commit its deployment deployed.
    pub fn reason(&self, deployed: Option<&str>) -> String {
        let deployed = deployed.map(short).unwrap_or("a commit");
        let reason = match &self.why {
            ChangeReason::Merge(number) => format!(
                "merge of #{number} (its branch's commits were not received, so the merge commit's time counts)"
            ),
            ChangeReason::NoTime => format!(
                "reached {deployed} but no push told when it was committed, so it has no lead time"
            ),
            ChangeReason::Deployed => "the deployed commit".to_owned(),
            ChangeReason::Ancestor => format!("an ancestor of the deployed commit {deployed}"),
        };
        if self.counts_lead {
            reason
        } else {
            format!("{reason}; it reached another of these environments earlier, where its lead time counts")
        }
    }
}

/// A deployment with what it shipped and caused.
#[derive(Debug, Clone)]
pub struct Attributed {
    /// The deployment.
    pub row: DeployRow,
    /// The component it counts for.
    pub component: String,
    /// Why it counts for the component.
    pub reason: String,
    /// What it shipped.
    pub changes: Vec<Shipped>,
    /// Why it counts as rework, if it does.
    pub rework: Option<String>,
    /// Incidents blamed on it (keys).
    pub caused: Vec<String>,
}

/// An incident with the deployment it is blamed on.
#[derive(Debug, Clone)]
pub struct Blamed {
    /// The incident.
    pub row: IncidentRow,
    /// The component.
    pub component: String,
    /// The deployment's row id.
    pub deployment: Option<i64>,
    /// Why.
    pub reason: String,
}

/// Everything attributed for one component in one set of environments.
#[derive(Debug, Clone, Default)]
pub struct Attribution {
    /// Successful deployments, oldest first.
    pub deployments: Vec<Attributed>,
    /// Failed deployments (listed, never counted as deployments).
    pub failed: Vec<DeployRow>,
    /// Incidents.
    pub incidents: Vec<Blamed>,
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}

fn touches(info: Option<&CommitInfo>, prefix: &str) -> bool {
    match info.and_then(|i| i.files.as_ref()) {
        None => true,
        Some(files) => files.iter().any(|f| f.starts_with(prefix)),
    }
}

/// Which changes each deployment of `scope` shipped, which incidents each
/// caused, and which are rework. `deployments` are this component's (by
/// name, or by repository) in the environments asked for; `graphs` the
/// history of its repositories.
pub fn attribute(
    scope: &Scope,
    deployments: &[DeployRow],
    incidents: &[IncidentRow],
    graphs: &HashMap<String, impl std::borrow::Borrow<RepoGraph>>,
    rules: Rules,
) -> Attribution {
    let mut out = Attribution::default();
    let mut ordered: Vec<&DeployRow> = deployments.iter().collect();
    ordered.sort_by_key(|d| (d.finished_at, d.id));
    let empty = RepoGraph::default();
    // Per environment: the commits already shipped, and the history horizon
    // (the first deployment's look-back) no walk goes beyond.
    let mut shipped: HashMap<&str, HashSet<&str>> = HashMap::new();
    let mut horizon: HashMap<&str, i64> = HashMap::new();
    let mut reached: HashSet<&str> = HashSet::new();
    for d in ordered {
        if d.status == "failure" {
            out.failed.push(d.clone());
            continue;
        }
        if d.status != "success" {
            continue;
        }
        let env = d.environment.as_str();
        let first = !horizon.contains_key(env);
        let limit = *horizon
            .entry(env)
            .or_insert(d.finished_at - rules.first_deploy_lookback_secs);
        let seen = shipped.entry(env).or_default();
        let explicit = d.component_ref.as_deref() == Some(scope.component.as_str());
        let mut changes = Vec::new();
        if let (Some(repo), Some(sha)) = (&d.repo, &d.sha) {
            let graph = graphs.get(repo).map(|g| g.borrow()).unwrap_or(&empty);
            let mut stack: Vec<&str> = vec![sha.as_str()];
            let mut walked = 0usize;
            while let Some(node) = stack.pop() {
                if seen.contains(node) {
                    continue;
                }
                let info = graph.commits.get(node);
                if let Some(at) = info.and_then(|i| i.at) {
                    if at < limit {
                        continue;
                    }
                }
                seen.insert(node);
                walked += 1;
                if walked > 20_000 {
                    break;
                }
                let merge = graph.merges.get(node);
                let branch_known = merge
                    .and_then(|m| m.head_sha.as_ref())
                    .is_some_and(|h| graph.commits.contains_key(h));
                if let Some(parents) = graph.parents.get(node) {
                    stack.extend(parents.iter().map(String::as_str));
                }
                if let Some(head) = merge.and_then(|m| m.head_sha.as_deref()) {
                    stack.push(head);
                }
                if branch_known {
                    // The merge stands for its branch's commits, counted themselves.
                    continue;
                }
                if let Some(prefix) = &scope.path_prefix {
                    if !touches(info, prefix) {
                        continue;
                    }
                }
                let why = match (merge, info.and_then(|i| i.at)) {
                    (Some(m), Some(_)) => ChangeReason::Merge(m.number.clone()),
                    (_, None) => ChangeReason::NoTime,
                    (None, Some(_)) if node == sha.as_str() => ChangeReason::Deployed,
                    (None, Some(_)) => ChangeReason::Ancestor,
                };
                changes.push(Shipped {
                    sha: node.to_owned(),
                    repo: repo.clone(),
                    committed_at: info.and_then(|i| i.at),
                    why,
                    counts_lead: reached.insert(node),
                });
            }
        }
        changes.sort_by(|a, b| a.committed_at.cmp(&b.committed_at).then(a.sha.cmp(&b.sha)));
        if !explicit && scope.path_prefix.is_some() && changes.is_empty() {
            // A monorepo deployment that changed nothing under this component's folder.
            continue;
        }
        let reason = if explicit {
            "the deployment names this component".to_owned()
        } else {
            format!(
                "deployed {} of {}, this component's repository",
                d.sha.as_deref().map(short).unwrap_or("a commit"),
                d.repo.as_deref().unwrap_or_default()
            )
        } + if first {
            "; the first deployment seen, so only changes from the look-back window count"
        } else {
            ""
        };
        let rework = d.rework.clone().or_else(|| {
            d.fixes
                .as_ref()
                .map(|key| format!("made to fix incident {key}"))
        });
        out.deployments.push(Attributed {
            row: d.clone(),
            component: scope.component.clone(),
            reason,
            changes,
            rework,
            caused: Vec::new(),
        });
    }

    for i in incidents {
        let (deployment, reason) = blame(i, &out.deployments, rules);
        if let Some(index) = deployment {
            out.deployments[index].caused.push(i.key.clone());
        }
        out.incidents.push(Blamed {
            row: i.clone(),
            component: scope.component.clone(),
            deployment: deployment.map(|d| out.deployments[d].row.id),
            reason,
        });
    }
    out
}

fn blame(
    incident: &IncidentRow,
    deployments: &[Attributed],
    rules: Rules,
) -> (Option<usize>, String) {
    if let Some(named) = &incident.cause_deployment {
        if let Some(at) = deployments.iter().position(|d| &d.row.key == named) {
            return (Some(at), format!("the incident names deployment {named}"));
        }
    }
    if let Some(cause) = &incident.cause_sha {
        let found = deployments.iter().position(|d| {
            d.row
                .sha
                .as_deref()
                .is_some_and(|s| s.starts_with(cause.as_str()))
                || d.changes.iter().any(|c| c.sha.starts_with(cause.as_str()))
        });
        if let Some(at) = found {
            return (
                Some(at),
                format!(
                    "its root cause {} first shipped in deployment {}",
                    short(cause),
                    deployments[at].row.key
                ),
            );
        }
    }
    let latest = deployments
        .iter()
        .enumerate()
        .rev()
        .find(|(_, d)| d.row.finished_at <= incident.created_at)
        .filter(|(_, d)| incident.created_at - d.row.finished_at <= rules.incident_window_secs);
    match latest {
        Some((at, d)) => (
            Some(at),
            format!(
                "{}the latest production deployment ({}) in the {} hours before it was opened",
                if incident.cause_sha.is_some() || incident.cause_deployment.is_some() {
                    "its named cause was never deployed here, so "
                } else {
                    ""
                },
                d.row.key,
                rules.incident_window_secs / 3600
            ),
        ),
        None => (
            None,
            format!(
                "no production deployment in the {} hours before it was opened",
                rules.incident_window_secs / 3600
            ),
        ),
    }
}

fn median(sorted: &[i64]) -> Option<i64> {
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[n / 2]),
        n => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2),
    }
}

/// The nearest-rank percentile `p` (0..=100) of sorted values.
fn percentile(sorted: &[i64], p: u32) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p as usize * sorted.len()).div_ceil(100).max(1);
    Some(sorted[rank - 1])
}

const DAY: i64 = 86_400;
const WEEK: i64 = 7 * DAY;

/// The band of a median lead time.
pub fn lead_time_band(median_secs: i64) -> Band {
    match median_secs {
        s if s < DAY => Band::Elite,
        s if s < WEEK => Band::High,
        s if s < 30 * DAY => Band::Medium,
        _ => Band::Low,
    }
}

/// The band of deployment-days per week.
pub fn frequency_band(days_per_week: f64) -> Band {
    match days_per_week {
        d if d >= 3.0 => Band::Elite,
        d if d >= 1.0 => Band::High,
        d if d >= 12.0 / 52.0 => Band::Medium,
        _ => Band::Low,
    }
}

/// The band of a change failure rate: DORA 2024's clusters by nearest
/// centroid (elite 5 %, medium 10 %, high 20 %, low 40 %), or DORA 2023's
/// thresholds (0–5, 5–10, 10–15, above 15 %).
pub fn failure_band(rate: f64, scheme: BandScheme) -> Band {
    match scheme {
        BandScheme::Dora2024 => {
            let centroids = [
                (Band::Elite, 0.05),
                (Band::Medium, 0.10),
                (Band::High, 0.20),
                (Band::Low, 0.40),
            ];
            centroids
                .iter()
                .min_by(|a, b| (rate - a.1).abs().total_cmp(&(rate - b.1).abs()))
                .map(|c| c.0)
                .unwrap_or(Band::Low)
        }
        BandScheme::Dora2023 => match rate {
            r if r <= 0.05 => Band::Elite,
            r if r <= 0.10 => Band::High,
            r if r <= 0.15 => Band::Medium,
            _ => Band::Low,
        },
    }
}

/// The band of a median recovery time.
pub fn recovery_band(median_secs: i64) -> Band {
    match median_secs {
        s if s < 3_600 => Band::Elite,
        s if s < DAY => Band::High,
        s if s < WEEK => Band::Medium,
        _ => Band::Low,
    }
}

/// A window `[from, to)` in unix seconds, and the time zone deployment days
/// are counted in.
#[derive(Debug, Clone)]
pub struct Window {
    /// Start (inclusive).
    pub from: i64,
    /// End (exclusive).
    pub to: i64,
    /// Where a day begins.
    pub tz: jiff::tz::TimeZone,
}

impl Window {
    fn contains(&self, t: i64) -> bool {
        self.from <= t && t < self.to
    }

    /// The window of the same length just before this one.
    pub fn previous(&self) -> Window {
        Window {
            from: self.from - (self.to - self.from),
            to: self.from,
            tz: self.tz.clone(),
        }
    }
}

/// The five keys over `window` from the attributions of one or more
/// components (a team), with the window before as `previous`.
fn each<A: Borrow<Attribution>>(attributions: &[A]) -> impl Iterator<Item = &Attribution> {
    attributions.iter().map(|a| a.borrow())
}

pub fn dora<A: Borrow<Attribution>>(
    attributions: &[A],
    window: &Window,
    scheme: BandScheme,
) -> Dora {
    let mut current = keys(attributions, window, scheme);
    current.previous = Some(Box::new(keys(attributions, &window.previous(), scheme)));
    current
}

/// The five keys for each of the `weeks` seven-day windows up to `to`,
/// oldest first (the sparklines' points).
pub fn weekly<A: Borrow<Attribution>>(
    attributions: &[A],
    to: i64,
    tz: &jiff::tz::TimeZone,
    weeks: usize,
    scheme: BandScheme,
) -> Vec<Dora> {
    (0..weeks as i64)
        .rev()
        .map(|back| {
            let end = to - back * 7 * 86_400;
            let window = Window {
                from: end - 7 * 86_400,
                to: end,
                tz: tz.clone(),
            };
            keys(attributions, &window, scheme)
        })
        .collect()
}

fn keys<A: Borrow<Attribution>>(attributions: &[A], window: &Window, scheme: BandScheme) -> Dora {
    // A team's monorepo deployment counts for each component it changed,
    // but is one deployment: merge them by row.
    let mut merged: BTreeMap<i64, (&Attributed, Vec<&Shipped>, bool)> = BTreeMap::new();
    for d in each(attributions)
        .flat_map(|a| &a.deployments)
        .filter(|d| window.contains(d.row.finished_at))
    {
        let entry = merged.entry(d.row.id).or_insert((d, Vec::new(), false));
        for c in &d.changes {
            if !entry.1.iter().any(|seen| seen.sha == c.sha) {
                entry.1.push(c);
            }
        }
        entry.2 |= !d.caused.is_empty();
    }
    let deployments: Vec<&Attributed> = merged.values().map(|(d, _, _)| *d).collect();
    let count = deployments.len() as u64;
    let days: HashSet<jiff::civil::Date> = deployments
        .iter()
        .filter_map(|d| jiff::Timestamp::from_second(d.row.finished_at).ok())
        .map(|t| t.to_zoned(window.tz.clone()).date())
        .collect();
    let weeks = (window.to - window.from) as f64 / WEEK as f64;
    let per_week = if weeks > 0.0 {
        count as f64 / weeks
    } else {
        0.0
    };
    let days_per_week = if weeks > 0.0 {
        days.len() as f64 / weeks
    } else {
        0.0
    };

    let mut leads: Vec<i64> = merged
        .values()
        .flat_map(|(d, changes, _)| {
            changes
                .iter()
                .filter(|c| c.counts_lead)
                .filter_map(|c| c.committed_at.map(|at| d.row.finished_at - at))
        })
        .filter(|l| *l > 0)
        .collect();
    leads.sort_unstable();
    let lead_median = median(&leads);

    let failed = merged.values().filter(|(_, _, caused)| *caused).count() as u64;
    let rework = deployments.iter().filter(|d| d.rework.is_some()).count() as u64;
    let ratio = |n: u64| (count > 0).then(|| n as f64 / count as f64);
    let cfr = ratio(failed);

    // Each incident once, even when it counts for several components.
    let mut incidents: BTreeMap<i64, &Blamed> = BTreeMap::new();
    for b in each(attributions).flat_map(|a| &a.incidents) {
        if window.contains(b.row.created_at) {
            incidents.insert(b.row.id, b);
        }
    }
    let mut recoveries: Vec<i64> = incidents
        .values()
        .filter_map(|b| b.row.resolved_at.map(|r| r - b.row.created_at))
        .filter(|r| *r >= 0)
        .collect();
    recoveries.sort_unstable();
    let recovery_median = median(&recoveries);

    Dora {
        from: crate::rfc3339_utc(window.from),
        to: crate::rfc3339_utc(window.to),
        deployment_frequency: DeploymentFrequency {
            deployments: count,
            deployment_days: days.len() as u64,
            per_week,
            days_per_week,
            band: (count > 0).then(|| frequency_band(days_per_week)),
        },
        lead_time_seconds: LeadTime {
            median: lead_median,
            p90: percentile(&leads, 90),
            changes: leads.len() as u64,
            band: lead_median.map(lead_time_band),
        },
        change_failure_rate: ChangeFailureRate {
            value: cfr,
            failed,
            deployments: count,
            band: cfr.map(|r| failure_band(r, scheme)),
        },
        recovery_time_seconds: RecoveryTime {
            median: recovery_median,
            incidents: recoveries.len() as u64,
            open: incidents
                .values()
                .filter(|b| b.row.resolved_at.is_none())
                .count() as u64,
            band: recovery_median.map(recovery_band),
        },
        rework_rate: ReworkRate {
            value: ratio(rework),
            rework,
            deployments: count,
        },
        previous: None,
    }
}

/// The deployments behind the numbers in `window`, newest first.
pub fn deployment_views<A: Borrow<Attribution>>(
    attributions: &[A],
    window: &Window,
) -> Vec<DeploymentView> {
    let mut out: Vec<DeploymentView> = each(attributions)
        .flat_map(|a| {
            a.deployments
                .iter()
                .filter(|d| window.contains(d.row.finished_at))
                .map(|d| {
                    let mut leads: Vec<i64> = d
                        .changes
                        .iter()
                        .filter(|c| c.counts_lead)
                        .filter_map(|c| c.committed_at.map(|at| d.row.finished_at - at))
                        .filter(|l| *l > 0)
                        .collect();
                    leads.sort_unstable();
                    DeploymentView {
                        id: d.row.id,
                        key: d.row.key.clone(),
                        component: d.component.clone(),
                        environment: d.row.environment.clone(),
                        sha: d.row.sha.clone(),
                        title: d.row.title.clone(),
                        status: d.row.status.clone(),
                        finished_at: crate::rfc3339_utc(d.row.finished_at),
                        changes: d.changes.len() as u64,
                        lead_time_median_seconds: median(&leads),
                        caused_incidents: d.caused.clone(),
                        rework: d.rework.clone(),
                        reason: d.reason.clone(),
                    }
                })
                .chain(
                    a.failed
                        .iter()
                        .filter(|f| window.contains(f.finished_at))
                        .map(|f| DeploymentView {
                            id: f.id,
                            key: f.key.clone(),
                            component: String::new(),
                            environment: f.environment.clone(),
                            sha: f.sha.clone(),
                            title: f.title.clone(),
                            status: f.status.clone(),
                            finished_at: crate::rfc3339_utc(f.finished_at),
                            changes: 0,
                            lead_time_median_seconds: None,
                            caused_incidents: Vec::new(),
                            rework: None,
                            reason: "the deployment failed, so it is not counted as a deployment"
                                .into(),
                        }),
                )
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort_by(|a, b| b.finished_at.cmp(&a.finished_at).then(b.id.cmp(&a.id)));
    out
}

/// The changes behind lead time in `window`, the longest wait first.
pub fn change_views<A: Borrow<Attribution>>(
    attributions: &[A],
    window: &Window,
) -> Vec<ChangeView> {
    let mut out: Vec<ChangeView> = each(attributions)
        .flat_map(|a| &a.deployments)
        .filter(|d| window.contains(d.row.finished_at))
        .flat_map(|d| {
            d.changes.iter().map(move |c| {
                let lead = c
                    .committed_at
                    .filter(|_| c.counts_lead)
                    .map(|at| d.row.finished_at - at);
                let reason = c.reason(d.row.sha.as_deref());
                let reason = match lead {
                    Some(l) if l <= 0 => format!(
                        "{reason}; committed after the deployment finished (clock skew?), so its lead time is left out"
                    ),
                    _ => reason,
                };
                ChangeView {
                    sha: c.sha.clone(),
                    repo: c.repo.clone(),
                    component: d.component.clone(),
                    deployment: d.row.key.clone(),
                    committed_at: c.committed_at.map(crate::rfc3339_utc),
                    deployed_at: crate::rfc3339_utc(d.row.finished_at),
                    lead_seconds: lead.filter(|l| *l > 0),
                    reason,
                }
            })
        })
        .collect();
    out.sort_by(|a, b| b.lead_seconds.cmp(&a.lead_seconds).then(a.sha.cmp(&b.sha)));
    out
}

/// The incidents opened in `window`, newest first.
pub fn incident_views<A: Borrow<Attribution>>(
    attributions: &[A],
    window: &Window,
) -> Vec<IncidentView> {
    let keys: HashMap<i64, &str> = each(attributions)
        .flat_map(|a| &a.deployments)
        .map(|d| (d.row.id, d.row.key.as_str()))
        .collect();
    let mut seen = HashSet::new();
    let mut out: Vec<IncidentView> = each(attributions)
        .flat_map(|a| &a.incidents)
        .filter(|b| window.contains(b.row.created_at))
        .filter(|b| seen.insert((b.row.id, b.component.clone())))
        .map(|b| IncidentView {
            key: b.row.key.clone(),
            title: b.row.title.clone(),
            url: b.row.url.clone(),
            component: b.component.clone(),
            created_at: crate::rfc3339_utc(b.row.created_at),
            resolved_at: b.row.resolved_at.map(crate::rfc3339_utc),
            recovery_seconds: b.row.resolved_at.map(|r| r - b.row.created_at),
            deployment: b
                .deployment
                .and_then(|id| keys.get(&id).map(|k| (*k).to_owned())),
            reason: b.reason.clone(),
        })
        .collect();
    out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.key.cmp(&b.key)));
    out
}

#[cfg(test)]
mod tests {
    //! Hand-computed scenarios: every expected number below is worked out
    //! in the comments from the events listed.
    use super::*;

    const T: i64 = 1_714_521_600; // 2024-05-01T00:00:00Z
    const H: i64 = 3_600;
    const REPO: &str = "github.com/acme/pay";

    fn commit(
        graph: &mut RepoGraph,
        sha: &str,
        at: i64,
        parent: Option<&str>,
        files: Option<&[&str]>,
    ) {
        graph.commits.insert(
            sha.into(),
            CommitInfo {
                at: Some(at),
                files: files.map(|f| f.iter().map(|s| (*s).to_owned()).collect()),
            },
        );
        if let Some(p) = parent {
            graph.parents.entry(sha.into()).or_default().push(p.into());
        }
    }

    fn deploy(id: i64, env: &str, sha: &str, at: i64) -> DeployRow {
        DeployRow {
            id,
            key: format!("d{id}"),
            repo: Some(REPO.into()),
            component_ref: None,
            environment: env.into(),
            sha: Some(sha.into()),
            status: "success".into(),
            finished_at: at,
            rework: None,
            fixes: None,
            title: None,
        }
    }

    fn incident(id: i64, created: i64, resolved: Option<i64>, cause: Option<&str>) -> IncidentRow {
        IncidentRow {
            id,
            key: format!("I{id}"),
            repo: Some(REPO.into()),
            component_ref: None,
            title: "down".into(),
            url: None,
            created_at: created,
            resolved_at: resolved,
            cause_sha: cause.map(str::to_owned),
            cause_deployment: None,
        }
    }

    fn scope(prefix: Option<&str>) -> Scope {
        Scope {
            component: "component:default/pay".into(),
            repos: vec![REPO.into()],
            path_prefix: prefix.map(str::to_owned),
        }
    }

    const RULES: Rules = Rules {
        first_deploy_lookback_secs: 30 * DAY,
        incident_window_secs: 168 * H,
    };

    /// c0 (40 days old) ← c1 ← [squash m1 of branch f1 ← f2] ← c2 ← c3.
    fn history() -> HashMap<String, RepoGraph> {
        let mut g = RepoGraph::default();
        commit(&mut g, "c0", T - 40 * DAY, None, None);
        commit(&mut g, "c1", T - H, Some("c0"), None);
        commit(&mut g, "f1", T + H, Some("c1"), None);
        commit(&mut g, "f2", T + 3 * H, Some("f1"), None);
        commit(&mut g, "m1", T + 5 * H, Some("c1"), None);
        g.merges.insert(
            "m1".into(),
            MergeInfo {
                head_sha: Some("f2".into()),
                number: "12".into(),
            },
        );
        commit(&mut g, "c2", T + 6 * H, Some("m1"), None);
        commit(&mut g, "c3", T + 27 * H / 2, Some("c2"), None);
        HashMap::from([(REPO.to_owned(), g)])
    }

    fn utc(from: i64, to: i64) -> Window {
        Window {
            from,
            to,
            tz: jiff::tz::TimeZone::UTC,
        }
    }

    #[test]
    fn a_squash_merge_a_redeploy_an_incident_and_a_fix() {
        let mut fix = deploy(4, "production", "c3", T + 14 * H);
        fix.fixes = Some("I1".into());
        let deployments = vec![
            deploy(1, "production", "c1", T),
            deploy(2, "production", "c2", T + 10 * H),
            deploy(3, "production", "c2", T + 12 * H), // the same commit again: no changes
            fix,
        ];
        let incidents = vec![
            incident(1, T + 11 * H, Some(T + 13 * H), None), // blamed on d2, the latest before it
            incident(2, T + 30 * H, None, Some("f1")),       // f1 shipped in d2
        ];
        let a = attribute(&scope(None), &deployments, &incidents, &history(), RULES);
        let shas = |i: usize| {
            a.deployments[i]
                .changes
                .iter()
                .map(|c| c.sha.as_str())
                .collect::<Vec<_>>()
        };
        // d1 is the first: c0 is older than the 30-day look-back.
        assert_eq!(shas(0), ["c1"]);
        // d2: the squash merge stands for its branch's commits f1 and f2.
        assert_eq!(shas(1), ["f1", "f2", "c2"]);
        assert!(shas(2).is_empty());
        assert_eq!(shas(3), ["c3"]);
        assert_eq!(a.deployments[1].caused, ["I1", "I2"]);
        assert!(
            a.incidents[1]
                .reason
                .contains("root cause f1 first shipped in deployment d2"),
            "{}",
            a.incidents[1].reason
        );
        assert_eq!(
            a.deployments[3].rework.as_deref(),
            Some("made to fix incident I1")
        );

        let d = dora(&[a], &utc(T, T + 2 * DAY), BandScheme::Dora2024);
        // 4 deployments, all on 2024-05-01: 1 deployment day in 2/7 of a week.
        assert_eq!(d.deployment_frequency.deployments, 4);
        assert_eq!(d.deployment_frequency.deployment_days, 1);
        assert!((d.deployment_frequency.per_week - 14.0).abs() < 1e-9);
        assert!((d.deployment_frequency.days_per_week - 3.5).abs() < 1e-9);
        assert_eq!(d.deployment_frequency.band, Some(Band::Elite));
        // Lead times: c1 1 h; f1 9 h, f2 7 h, c2 4 h; c3 0.5 h → median 4 h, p90 (rank 5 of 5) 9 h.
        assert_eq!(d.lead_time_seconds.median, Some(4 * H));
        assert_eq!(d.lead_time_seconds.p90, Some(9 * H));
        assert_eq!(d.lead_time_seconds.changes, 5);
        assert_eq!(d.lead_time_seconds.band, Some(Band::Elite));
        // One of four deployments caused incidents: 25 %, nearest the 2024 "high" centroid (20 %).
        assert_eq!(d.change_failure_rate.value, Some(0.25));
        assert_eq!(d.change_failure_rate.band, Some(Band::High));
        // I1 took 2 h; I2 is still open.
        assert_eq!(d.recovery_time_seconds.median, Some(2 * H));
        assert_eq!(
            (
                d.recovery_time_seconds.incidents,
                d.recovery_time_seconds.open
            ),
            (1, 1)
        );
        assert_eq!(d.recovery_time_seconds.band, Some(Band::High));
        assert_eq!((d.rework_rate.rework, d.rework_rate.value), (1, Some(0.25)));
        // The window before holds nothing: null, never 0.
        let previous = d.previous.unwrap();
        assert_eq!(previous.deployment_frequency.deployments, 0);
        assert_eq!(previous.lead_time_seconds.median, None);
        assert_eq!(previous.change_failure_rate.value, None);
        assert_eq!(previous.deployment_frequency.band, None);

        let a = attribute(&scope(None), &deployments, &incidents, &history(), RULES);
        let d2023 = dora(&[a], &utc(T, T + 2 * DAY), BandScheme::Dora2023);
        assert_eq!(d2023.change_failure_rate.band, Some(Band::Low));
    }

    #[test]
    fn window_edges_and_time_zones() {
        let deployments = vec![
            deploy(1, "production", "c1", T),
            deploy(2, "production", "c2", T + 10 * H),
        ];
        let a = attribute(&scope(None), &deployments, &[], &history(), RULES);
        // [from, to): a deployment exactly at `to` belongs to the next window.
        let d = dora(
            std::slice::from_ref(&a),
            &utc(T - DAY, T),
            BandScheme::Dora2024,
        );
        assert_eq!(d.deployment_frequency.deployments, 0);
        let d = dora(
            std::slice::from_ref(&a),
            &utc(T, T + DAY),
            BandScheme::Dora2024,
        );
        assert_eq!(d.deployment_frequency.deployments, 2);
        assert_eq!(d.deployment_frequency.deployment_days, 1);
        // In Los Angeles (UTC−7 in May) d1 is on April 30 and d2 on May 1: two days.
        let la = Window {
            from: T,
            to: T + DAY,
            tz: jiff::tz::TimeZone::get("America/Los_Angeles").unwrap(),
        };
        assert_eq!(
            dora(&[a], &la, BandScheme::Dora2024)
                .deployment_frequency
                .deployment_days,
            2
        );
    }

    #[test]
    fn two_production_environments_count_a_change_once() {
        let deployments = vec![
            deploy(1, "prod-eu", "c1", T),
            deploy(2, "prod-us", "c1", T + H),
            deploy(3, "prod-eu", "c2", T + 10 * H),
            deploy(4, "prod-us", "c2", T + 11 * H),
        ];
        let a = attribute(&scope(None), &deployments, &[], &history(), RULES);
        let d = dora(&[a], &utc(T, T + DAY), BandScheme::Dora2024);
        assert_eq!(d.deployment_frequency.deployments, 4);
        // c1 (1 h), f1 (9 h), f2 (7 h), c2 (4 h): each once, at its first production deployment.
        assert_eq!(d.lead_time_seconds.changes, 4);
        assert_eq!(d.lead_time_seconds.median, Some((4 * H + 7 * H) / 2));
    }

    #[test]
    fn a_monorepo_splits_changes_by_folder() {
        let mut g = RepoGraph::default();
        commit(&mut g, "a1", T + H, None, Some(&["svc-a/main.rs"]));
        commit(
            &mut g,
            "b1",
            T + 2 * H,
            Some("a1"),
            Some(&["svc-b/main.rs"]),
        );
        commit(&mut g, "b2", T + 3 * H, Some("b1"), Some(&["svc-b/lib.rs"]));
        let graphs = HashMap::from([(REPO.to_owned(), g)]);
        let deployments = vec![
            deploy(1, "production", "b1", T + 4 * H),
            deploy(2, "production", "b2", T + 5 * H),
        ];
        let a = attribute(&scope(Some("svc-a/")), &deployments, &[], &graphs, RULES);
        // Only d1 shipped something under svc-a/ (a1); d2 touched svc-b/ only.
        assert_eq!(a.deployments.len(), 1);
        assert_eq!(
            a.deployments[0]
                .changes
                .iter()
                .map(|c| c.sha.as_str())
                .collect::<Vec<_>>(),
            ["a1"]
        );
        let b = attribute(&scope(Some("svc-b/")), &deployments, &[], &graphs, RULES);
        assert_eq!(b.deployments.len(), 2);
        assert_eq!(
            b.deployments[0]
                .changes
                .iter()
                .map(|c| c.sha.as_str())
                .collect::<Vec<_>>(),
            ["b1"]
        );
    }

    #[test]
    fn an_incident_without_a_cause_or_a_recent_deployment_is_blamed_on_nothing() {
        let deployments = vec![deploy(1, "production", "c1", T)];
        // Eight days after the only deployment: outside the one-week window.
        let late = incident(1, T + 8 * DAY, Some(T + 8 * DAY + 30 * 60), None);
        // Before any deployment.
        let early = incident(2, T - H, None, None);
        let a = attribute(
            &scope(None),
            &deployments,
            &[late, early],
            &history(),
            RULES,
        );
        assert!(a.incidents.iter().all(|i| i.deployment.is_none()));
        assert!(a.incidents[0]
            .reason
            .contains("no production deployment in the 168 hours"));
        let d = dora(&[a], &utc(T - DAY, T + 9 * DAY), BandScheme::Dora2024);
        assert_eq!(d.change_failure_rate.value, Some(0.0));
        assert_eq!(d.change_failure_rate.band, Some(Band::Elite));
        assert_eq!(d.recovery_time_seconds.median, Some(30 * 60));
        assert_eq!(d.recovery_time_seconds.band, Some(Band::Elite));
    }

    #[test]
    fn bands_follow_doras_descriptions() {
        assert_eq!(lead_time_band(23 * H), Band::Elite);
        assert_eq!(lead_time_band(DAY), Band::High);
        assert_eq!(lead_time_band(8 * DAY), Band::Medium);
        assert_eq!(lead_time_band(40 * DAY), Band::Low);
        assert_eq!(failure_band(0.07, BandScheme::Dora2024), Band::Elite);
        assert_eq!(failure_band(0.08, BandScheme::Dora2024), Band::Medium);
        assert_eq!(failure_band(0.31, BandScheme::Dora2024), Band::Low);
        assert_eq!(frequency_band(1.0), Band::High);
        assert_eq!(frequency_band(0.25), Band::Medium);
        assert_eq!(frequency_band(0.1), Band::Low);
        assert_eq!(recovery_band(2 * DAY), Band::Medium);
    }
}
