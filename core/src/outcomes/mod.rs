//! Delivery outcomes: DORA's five keys per team and per component, from the
//! delivery events GitHub, GitLab, Apache DevLake's webhook API and any other
//! tool (Paved's generic JSON) send as they happen. Each delivery is
//! verified, kept raw with its delivery id (a redelivery changes nothing),
//! and read into facts ([`events`]); attribution and the numbers are
//! computed when asked ([`compute`]), so every number comes with the
//! deployments, changes and incidents behind it and the reason each counts.

pub mod adoption;
pub mod cache;
pub mod capabilities;
pub mod compute;
pub mod config;
pub mod demo;
pub mod events;
pub mod read;
pub mod sources;
pub mod store;
pub mod surveys;

use std::sync::Arc;

pub use paved_shared::outcomes::Dora as DoraView;
use paved_shared::outcomes::{BandScheme, Dora, EventEndpoints, List, OutcomesPage, SourcesPage};
use sqlx::SqlitePool;

use self::compute::{Attribution, Rules, Scope, Window};
use self::config::OutcomesConfig;
use self::events::{Fact, Refused};
use self::sources::SourceKind;
use crate::auth::{authorize, Action, Principal};
use crate::CoreError;

/// Why a delivery was not taken.
#[derive(Debug)]
pub enum ReceiveError {
    /// No source's secret or token matches (401); nothing is kept.
    Unauthenticated(String),
    /// The body is not what the source sends (400); nothing is kept.
    Invalid(Refused),
    /// Storing failed.
    Core(CoreError),
}

impl From<CoreError> for ReceiveError {
    fn from(e: CoreError) -> Self {
        ReceiveError::Core(e)
    }
}

/// What happened to a delivery.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Receipt {
    /// The source it was taken from.
    pub source: String,
    /// How many facts it told (0: an event Paved does not use).
    pub facts: usize,
    /// A redelivery of one already kept: nothing changed.
    pub duplicate: bool,
}

/// One delivery as received.
#[derive(Debug)]
pub struct Delivery<'a> {
    /// The source kind the endpoint serves.
    pub kind: SourceKind,
    /// The event's name (`X-GitHub-Event`, `X-Gitlab-Event`, `deployments`, …).
    pub event: &'a str,
    /// The delivery's id, when the source sends one; otherwise the body's hash is used.
    pub delivery_id: Option<&'a str>,
    /// `X-Hub-Signature-256` (GitHub) or the token (the others).
    pub credential: &'a str,
    /// The raw body.
    pub body: &'a [u8],
}

/// Verifies, reads and keeps one delivery.
pub async fn receive(
    core: &crate::CoreState,
    delivery: Delivery<'_>,
    now: i64,
) -> Result<Receipt, ReceiveError> {
    let (pool, config) = (&core.db, &core.config.outcomes);
    let source = match delivery.kind {
        SourceKind::Github => {
            sources::verify_github(pool, config, delivery.body, delivery.credential).await?
        }
        kind => sources::verify_token(pool, config, kind, delivery.credential).await?,
    }
    .ok_or_else(|| {
        ReceiveError::Unauthenticated(match delivery.kind {
            SourceKind::Github => {
                "X-Hub-Signature-256 does not match any GitHub event source's secret".into()
            }
            SourceKind::Gitlab => {
                "X-Gitlab-Token is not the token of any GitLab event source".into()
            }
            _ => "the bearer token is not the token of any event source of this kind".into(),
        })
    })?;
    let text = std::str::from_utf8(delivery.body).map_err(|_| {
        ReceiveError::Invalid(Refused {
            field: "body".into(),
            message: "is not UTF-8 JSON".into(),
        })
    })?;
    let payload: serde_json::Value = if text.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(text).map_err(|_| {
            ReceiveError::Invalid(Refused {
                field: "body".into(),
                message: "is not JSON".into(),
            })
        })?
    };
    let facts: Vec<Fact> = match (delivery.kind, delivery.event) {
        (SourceKind::Github, event) => events::github(event, &payload, config),
        (SourceKind::Gitlab, event) => events::gitlab(event, &payload),
        (SourceKind::Devlake, "deployments") => events::devlake_deployment(&payload),
        (SourceKind::Devlake, "issues") => events::devlake_issue(&payload),
        (SourceKind::Devlake, "pull_requests") => events::devlake_pull_request(&payload),
        (SourceKind::Devlake, close) => match close.strip_prefix("issue-close:") {
            Some(key) => Ok(vec![Fact::IncidentResolved {
                key: key.to_owned(),
                at: now,
            }]),
            None => Ok(Vec::new()),
        },
        (SourceKind::Generic, _) => events::generic(&payload),
    }
    .map_err(ReceiveError::Invalid)?;
    let hashed;
    let delivery_id = match delivery
        .delivery_id
        .filter(|d| !d.is_empty() && d.len() <= 255)
    {
        Some(id) => id,
        None => {
            use sha2::{Digest, Sha256};
            hashed = format!(
                "sha256:{}",
                hex::encode(
                    Sha256::new()
                        .chain_update(delivery.event)
                        .chain_update(delivery.body)
                        .finalize()
                )
            );
            &hashed
        }
    };
    let fact_count = facts.len();
    let mut touched: Vec<String> = Vec::new();
    let mut histories: Vec<String> = Vec::new();
    let mut everything = false;
    for fact in &facts {
        match fact {
            Fact::Commits { repo, .. } | Fact::Merge { repo, .. } => {
                histories.push(repo.clone());
                touched.push(repo.clone());
            }
            Fact::Deployment(d) => touched.extend(d.repo.iter().chain(&d.component).cloned()),
            Fact::Incident(i) => touched.extend(i.repo.iter().chain(&i.component).cloned()),
            Fact::IncidentResolved { .. } | Fact::IncidentWithdrawn { .. } => everything = true,
        }
    }
    let stored = core
        .outcomes_writer
        .submit(
            pool,
            store::Job {
                source_id: source.clone(),
                delivery_id: delivery_id.to_owned(),
                event: delivery.event.to_owned(),
                body: text.to_owned(),
                facts,
                now,
            },
        )
        .await?;
    for repo in &histories {
        core.outcomes_graphs.invalidate(repo);
    }
    if everything {
        core.outcomes_versions.touch_everything();
    } else if !touched.is_empty() {
        core.outcomes_versions
            .touch(touched.iter().map(String::as_str));
    }
    Ok(Receipt {
        source,
        facts: fact_count,
        duplicate: stored == store::Ingested::Duplicate,
    })
}

/// The event source of deployments Paved makes itself (`kube:apply`).
pub const PAVED_SOURCE: &str = "paved";

/// Keeps a deployment Paved made itself (a golden path's `kube:apply`),
/// under its own source, as any delivery is kept: once per deployment key
/// (the delivery's id).
pub async fn record_own_deployment(
    core: &crate::CoreState,
    deployment: events::Deployment,
    now: i64,
) -> Result<bool, CoreError> {
    let pool = &core.db;
    sqlx::query!(
        "INSERT INTO outcome_sources (id, kind, name, created_by, created_at)
         VALUES (?1, 'generic', 'Paved deployments (kube:apply)', 'paved', ?2) ON CONFLICT DO NOTHING",
        PAVED_SOURCE,
        now
    )
    .execute(pool)
    .await?;
    let body = serde_json::json!({
        "type": "deployment",
        "id": deployment.key,
        "component": deployment.component,
        "environment": deployment.environment,
        "sha": deployment.sha,
        "status": deployment.status.as_str(),
        "finished_at": crate::rfc3339_utc(deployment.finished_at),
        "title": deployment.title,
    })
    .to_string();
    let touched: Vec<String> = deployment
        .repo
        .iter()
        .chain(&deployment.component)
        .cloned()
        .collect();
    let stored = core
        .outcomes_writer
        .submit(
            pool,
            store::Job {
                source_id: PAVED_SOURCE.into(),
                delivery_id: deployment.key.clone(),
                event: "deployment".into(),
                body,
                facts: vec![Fact::Deployment(deployment)],
                now,
            },
        )
        .await?;
    core.outcomes_versions
        .touch(touched.iter().map(String::as_str));
    Ok(stored != store::Ingested::Duplicate)
}

/// A query as a caller writes it (all optional).
#[derive(Debug, Clone, Default)]
pub struct QueryInput {
    /// Start: `2026-11-01` (midnight in `tz`) or an RFC 3339 time.
    pub from: Option<String>,
    /// End (exclusive), in the same forms.
    pub to: Option<String>,
    /// One environment instead of the production ones.
    pub env: Option<String>,
    /// The IANA time zone days are counted in (default UTC).
    pub tz: Option<String>,
    /// `2024` (default) or `2023`: how change failure rate is banded.
    pub bands: Option<String>,
}

/// The longest window asked for at once.
pub const MAX_WINDOW_DAYS: i64 = 731;

pub(crate) fn instant(
    raw: &str,
    field: &'static str,
    tz: &jiff::tz::TimeZone,
) -> Result<i64, CoreError> {
    if let Ok(t) = raw.parse::<jiff::Timestamp>() {
        return Ok(t.as_second());
    }
    raw.parse::<jiff::civil::Date>()
        .ok()
        .and_then(|d| d.to_zoned(tz.clone()).ok())
        .map(|z| z.timestamp().as_second())
        .ok_or_else(|| CoreError::Invalid {
            field,
            message: format!("`{raw}` is not a date (2026-11-01) or an RFC 3339 time"),
        })
}

impl Query {
    /// The production environments over the 30 days before `now` (unix
    /// seconds), UTC days, DORA 2024 bands: the dashboards' window.
    pub fn trailing_30_days(now: i64) -> Query {
        Query {
            window: Window {
                from: now - 30 * 86_400,
                to: now,
                tz: jiff::tz::TimeZone::UTC,
            },
            environment: None,
            scheme: BandScheme::Dora2024,
        }
    }

    /// Checks `input`; the default window is the 30 days up to the end of
    /// today (in `tz`) as of `now` (unix seconds).
    pub fn parse(input: &QueryInput, now: i64) -> Result<Query, CoreError> {
        let tz = match input.tz.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            None => jiff::tz::TimeZone::UTC,
            Some(name) => jiff::tz::TimeZone::get(name).map_err(|_| CoreError::Invalid {
                field: "tz",
                message: format!("`{name}` is not an IANA time zone such as Europe/Berlin"),
            })?,
        };
        let end_of_today = jiff::Timestamp::from_second(now)
            .ok()
            .map(|t| t.to_zoned(tz.clone()).date())
            .and_then(|d| d.tomorrow().ok())
            .and_then(|d| d.to_zoned(tz.clone()).ok())
            .map(|z| z.timestamp().as_second())
            .unwrap_or(now);
        let to = match &input.to {
            Some(raw) => instant(raw, "to", &tz)?,
            None => end_of_today,
        };
        let from = match &input.from {
            Some(raw) => instant(raw, "from", &tz)?,
            None => to - 30 * 86_400,
        };
        if from >= to {
            return Err(CoreError::Invalid {
                field: "from",
                message: "must be before `to`".into(),
            });
        }
        if to - from > MAX_WINDOW_DAYS * 86_400 {
            return Err(CoreError::Invalid {
                field: "from",
                message: format!("the window may span at most {MAX_WINDOW_DAYS} days"),
            });
        }
        let scheme = match input.bands.as_deref() {
            None | Some("2024") => BandScheme::Dora2024,
            Some("2023") => BandScheme::Dora2023,
            Some(other) => {
                return Err(CoreError::Invalid {
                    field: "bands",
                    message: format!("`{other}` is not 2024 or 2023"),
                })
            }
        };
        let environment = input
            .env
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| {
                if e.len() > 255 {
                    Err(CoreError::Invalid {
                        field: "env",
                        message: "is longer than 255 characters".into(),
                    })
                } else {
                    Ok(e.to_owned())
                }
            })
            .transpose()?;
        Ok(Query {
            window: Window { from, to, tz },
            environment,
            scheme,
        })
    }
}

/// What to compute: a window, the environments, the band scheme.
#[derive(Debug, Clone)]
pub struct Query {
    /// The window.
    pub window: Window,
    /// Only this environment (case-insensitive); `None`: the production ones.
    pub environment: Option<String>,
    /// How change failure rate is banded.
    pub scheme: BandScheme,
}

fn rules(config: &OutcomesConfig) -> Rules {
    Rules {
        first_deploy_lookback_secs: config.first_deploy_lookback_secs,
        incident_window_secs: config.incident_window_secs,
    }
}

/// Each scope's attribution up to the query's end, from the cache when no
/// delivery about it was kept since it was computed.
async fn attribute_all(
    core: &crate::CoreState,
    scopes: &[Scope],
    query: &Query,
) -> Result<Vec<Arc<Attribution>>, CoreError> {
    let mut out = Vec::with_capacity(scopes.len());
    for scope in scopes {
        let key = cache::Key::new(scope, query.environment.as_deref(), query.window.to);
        let stamp = core.outcomes_versions.stamp(scope);
        let attribution = match core.outcomes_attributions.get(&key, stamp) {
            Some(kept) => kept,
            None => {
                let fresh = Arc::new(attribute_one(core, scope, query).await?);
                core.outcomes_attributions.put(key, fresh.clone(), stamp);
                fresh
            }
        };
        out.push(attribution);
    }
    Ok(out)
}

async fn attribute_one(
    core: &crate::CoreState,
    scope: &Scope,
    query: &Query,
) -> Result<Attribution, CoreError> {
    let (pool, config) = (&core.db, &core.config.outcomes);
    let graphs = read::graphs(pool, &core.outcomes_graphs, std::slice::from_ref(scope)).await?;
    let inputs = read::inputs(pool, scope, query.window.to).await?;
    let deployments: Vec<_> = inputs
        .deployments
        .into_iter()
        .filter(|d| match &query.environment {
            Some(env) => d.environment.eq_ignore_ascii_case(env),
            None => config.is_production(&d.environment),
        })
        .collect();
    Ok(compute::attribute(
        scope,
        &deployments,
        &inputs.incidents,
        &graphs,
        rules(config),
    ))
}

/// The scopes a target names: a team's components, or one component.
#[derive(Debug, Clone)]
pub enum Target {
    /// Every component the team owns.
    Team(String),
    /// One component (`component:namespace/name`).
    Component(String),
}

/// Team outcomes are open to the team, platform PMs and admins; a
/// component's to everyone who may read the catalog (every signed-in person).
async fn scopes(
    pool: &SqlitePool,
    principal: &Principal,
    target: &Target,
) -> Result<Vec<Scope>, CoreError> {
    if let Target::Team(team) = target {
        authorize(principal, Action::ViewTeam(team))?;
    }
    match target {
        Target::Team(team) => read::team_scopes(pool, team).await,
        Target::Component(entity_ref) => Ok(vec![read::component_scope(pool, entity_ref).await?]),
    }
}

/// The five keys for `target` over the query's window, with the window before.
pub async fn dora(
    core: &crate::CoreState,
    principal: &Principal,
    target: &Target,
    query: &Query,
) -> Result<Dora, CoreError> {
    let scopes = scopes(&core.db, principal, target).await?;
    let attributions = attribute_all(core, &scopes, query).await?;
    Ok(compute::dora(&attributions, &query.window, query.scheme))
}

pub use paved_shared::outcomes::Behind;

/// The deployments, changes and incidents behind `target`'s numbers.
pub async fn behind(
    core: &crate::CoreState,
    principal: &Principal,
    target: &Target,
    query: &Query,
) -> Result<Behind, CoreError> {
    let scopes = scopes(&core.db, principal, target).await?;
    let attributions = attribute_all(core, &scopes, query).await?;
    Ok(Behind {
        deployments: compute::deployment_views(&attributions, &query.window),
        changes: compute::change_views(&attributions, &query.window),
        incidents: compute::incident_views(&attributions, &query.window),
    })
}

/// How many weeks the Outcomes pages' sparklines show.
pub const SPARKLINE_WEEKS: usize = 12;

fn endpoints(public_url: &url::Url) -> EventEndpoints {
    let at = |path: &str| {
        let mut url = public_url.clone();
        let base = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base}{path}"));
        url.to_string()
    };
    EventEndpoints {
        github: at(SourceKind::Github.endpoint()),
        gitlab: at(SourceKind::Gitlab.endpoint()),
        generic: at(SourceKind::Generic.endpoint()),
        devlake: at(SourceKind::Devlake.endpoint()).replace("%7Bid%7D", "{id}"),
    }
}

/// An Outcomes page: the five keys, their weekly trend, one list behind
/// them (`list`) and what the empty states need.
pub async fn page(
    core: &crate::CoreState,
    principal: &Principal,
    target: &Target,
    query: &Query,
    list: List,
) -> Result<OutcomesPage, CoreError> {
    let config = &core.config.outcomes;
    let scopes = scopes(&core.db, principal, target).await?;
    let attributions = attribute_all(core, &scopes, query).await?;
    let has_events = attributions
        .iter()
        .any(|a| !a.deployments.is_empty() || !a.failed.is_empty() || !a.incidents.is_empty());
    let window = &query.window;
    let (behind, list_total) = {
        let limit = OutcomesPage::LIST_LIMIT;
        let mut behind = Behind {
            deployments: Vec::new(),
            changes: Vec::new(),
            incidents: Vec::new(),
        };
        let total = match list {
            List::Deployments => {
                behind.deployments = compute::deployment_views(&attributions, window);
                let n = behind.deployments.len();
                behind.deployments.truncate(limit);
                n
            }
            List::Changes => {
                behind.changes = compute::change_views(&attributions, window);
                let n = behind.changes.len();
                behind.changes.truncate(limit);
                n
            }
            List::Incidents => {
                behind.incidents = compute::incident_views(&attributions, window);
                let n = behind.incidents.len();
                behind.incidents.truncate(limit);
                n
            }
        };
        (behind, total as u64)
    };
    Ok(OutcomesPage {
        dora: compute::dora(&attributions, window, query.scheme),
        weeks: compute::weekly(
            &attributions,
            window.to,
            &window.tz,
            SPARKLINE_WEEKS,
            query.scheme,
        ),
        behind,
        list_total,
        components: scopes.into_iter().map(|s| s.component).collect(),
        has_events,
        endpoints: endpoints(&core.config.public_url),
        environment: query.environment.clone(),
        production: config.production_patterns.clone(),
        manages_sources: authorize(principal, Action::AdministerPlatform).is_ok(),
    })
}

/// The admins' page: every event source and the unmapped events.
pub async fn sources_page(
    core: &crate::CoreState,
    principal: &Principal,
) -> Result<SourcesPage, CoreError> {
    authorize(principal, Action::AdministerPlatform)?;
    Ok(SourcesPage {
        sources: sources::list(&core.db, principal).await?,
        unmapped: read::unmapped(&core.db).await?,
        endpoints: endpoints(&core.config.public_url),
    })
}

/// Events no component claims, for admins to map.
pub async fn unmapped(
    pool: &SqlitePool,
    principal: &Principal,
) -> Result<Vec<read::Unmapped>, CoreError> {
    authorize(principal, Action::AdministerPlatform)?;
    read::unmapped(pool).await
}

/// The Four Keys (and rework) gauges over the trailing 30 days as of `now`,
/// per team and per component, in Prometheus' text format. A gauge with no
/// data is left out (absent, never 0).
pub async fn prometheus(core: &crate::CoreState, now: i64) -> Result<String, CoreError> {
    use std::fmt::Write;
    let board = dora_by_team(core, now).await?;
    let (teams, components) = &*board;
    let escape = |v: &str| {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    type Key = (&'static str, &'static str, fn(&Dora) -> Option<f64>);
    let keys: [Key; 5] = [
        (
            "deployments_per_week",
            "Successful production deployments per week over the last 30 days.",
            |d| Some(d.deployment_frequency.per_week),
        ),
        (
            "lead_time_seconds",
            "Median lead time for changes over the last 30 days, in seconds.",
            |d| d.lead_time_seconds.median.map(|m| m as f64),
        ),
        (
            "change_failure_rate",
            "Deployments that caused an incident, 0..1, over the last 30 days.",
            |d| d.change_failure_rate.value,
        ),
        (
            "recovery_time_seconds",
            "Median failed-deployment recovery time over the last 30 days, in seconds.",
            |d| d.recovery_time_seconds.median.map(|m| m as f64),
        ),
        (
            "rework_rate",
            "Deployments made to fix an incident, 0..1, over the last 30 days.",
            |d| d.rework_rate.value,
        ),
    ];
    let mut out = String::new();
    for (key, help, value) in keys {
        let _ = writeln!(out, "# HELP paved_dora_team_{key} {help}");
        let _ = writeln!(out, "# TYPE paved_dora_team_{key} gauge");
        for (team, d) in teams {
            if let Some(v) = value(d) {
                let _ = writeln!(
                    out,
                    "paved_dora_team_{key}{{team=\"{}\"}} {v}",
                    escape(team)
                );
            }
        }
        let _ = writeln!(out, "# HELP paved_dora_component_{key} {help}");
        let _ = writeln!(out, "# TYPE paved_dora_component_{key} gauge");
        for (team, component, d) in components {
            if let Some(v) = value(d) {
                let _ = writeln!(
                    out,
                    "paved_dora_component_{key}{{team=\"{}\",component=\"{}\"}} {v}",
                    escape(team),
                    escape(component)
                );
            }
        }
    }
    Ok(out)
}

/// When the component `entity_ref` was first deployed to production
/// successfully at or after `since` (unix seconds): a deployment naming it,
/// or one of its repositories' deployments that names no component; `None`
/// while it has not been (or is not in the catalog).
pub async fn first_production_deployment(
    core: &crate::CoreState,
    entity_ref: &str,
    since: i64,
) -> Result<Option<i64>, CoreError> {
    let pool = &core.db;
    let Some(body) = sqlx::query_scalar!(
        "SELECT body FROM catalog_entities WHERE entity_ref = ?1",
        entity_ref
    )
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let entity: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let repos = serde_json::to_string(&read::repos_of(&entity).0).unwrap_or_else(|_| "[]".into());
    let deployments = sqlx::query!(
        r#"SELECT environment, finished_at FROM outcome_deployments
           WHERE status = 'success' AND finished_at >= ?3
             AND (component_ref = ?1 OR (+component_ref IS NULL AND repo IN (SELECT value FROM json_each(?2))))
           ORDER BY finished_at"#,
        entity_ref,
        repos,
        since
    )
    .fetch_all(pool)
    .await?;
    Ok(deployments
        .into_iter()
        .find(|d| core.config.outcomes.is_production(&d.environment))
        .map(|d| d.finished_at))
}

/// DORA's keys over the last 30 days for each team, and for each of its
/// components that had deployments or incidents (absent otherwise).
pub type ByTeam = (Vec<(String, Dora)>, Vec<(String, String, Dora)>);

/// How long every team's DORA is reused while no delivery arrives (its
/// 30-day window moves on), in seconds.
pub const BOARD_MAX_AGE_SECS: i64 = 60;

/// [`ByTeam`] as of `now`, for `/metrics` and the platform home. Attributes
/// every component, past the attribution cache (it would push out what
/// people are looking at); the answer is kept on [`crate::CoreState`]'s
/// board while no delivery is kept and the mapping stays (for a minute at
/// most), so a busy platform home or a scrape every few seconds computes it
/// once.
pub async fn dora_by_team(core: &crate::CoreState, now: i64) -> Result<Arc<ByTeam>, CoreError> {
    use std::hash::{Hash, Hasher};
    let pool = &core.db;
    let version = core.outcomes_versions.counter();
    let rows = sqlx::query!(
        r#"SELECT entity_ref AS "entity_ref!", owner_ref, body FROM catalog_entities
           WHERE kind_key = 'component' AND owner_ref LIKE 'group:%' ORDER BY entity_ref"#
    )
    .fetch_all(pool)
    .await?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let components: Vec<(Scope, String)> = rows
        .into_iter()
        .map(|r| {
            let entity: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
            let (repos, path_prefix) = read::repos_of(&entity);
            let scope = Scope {
                component: r.entity_ref,
                repos,
                path_prefix,
            };
            let team = r
                .owner_ref
                .as_deref()
                .and_then(|o| o.rsplit('/').next())
                .unwrap_or_default()
                .to_owned();
            (&scope.component, &scope.repos, &scope.path_prefix, &team).hash(&mut hasher);
            (scope, team)
        })
        .collect();
    core.outcomes_board
        .get_or_compute(
            hasher.finish(),
            version,
            now,
            BOARD_MAX_AGE_SECS,
            by_team(core, components, now),
        )
        .await
}

async fn by_team(
    core: &crate::CoreState,
    components: Vec<(Scope, String)>,
    now: i64,
) -> Result<ByTeam, CoreError> {
    let query = Query::trailing_30_days(now);
    let mut by_team: std::collections::BTreeMap<String, Vec<Arc<Attribution>>> = Default::default();
    let mut out = Vec::new();
    for (scope, team) in components {
        let attribution = Arc::new(attribute_one(core, &scope, &query).await?);
        if attribution.deployments.is_empty() && attribution.incidents.is_empty() {
            continue;
        }
        let name = scope
            .component
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        out.push((
            team.clone(),
            name,
            compute::dora(
                std::slice::from_ref(&attribution),
                &query.window,
                query.scheme,
            ),
        ));
        by_team.entry(team).or_default().push(attribution);
    }
    let teams: Vec<(String, Dora)> = by_team
        .iter()
        .map(|(team, a)| (team.clone(), compute::dora(a, &query.window, query.scheme)))
        .collect();
    Ok((teams, out))
}
