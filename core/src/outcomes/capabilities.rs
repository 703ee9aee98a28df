//! The platform's capabilities as products: a registry of what the platform
//! team offers (the LLM gateway and each model route, the scaffolder and
//! each golden path, secrets, the catalog), each with an owner, a lifecycle,
//! SLOs computed from Paved's own records, the error budget left and its
//! burn rate. A breach or a fast burn notifies the owner once, and again
//! only after it has recovered and happened anew.
//!
//! Owners, lifecycles, objectives and rollback notes live in git like
//! everything else: a golden path's come from its Template, and any catalog
//! entity annotated `paved.dev/capability: <id>` declares them for that
//! capability (its `spec.owner` and `spec.lifecycle`, plus
//! `paved.dev/slo-objective: "99.9"` and `paved.dev/rollback: <text>`).
//! Without a declaration team `platform` ([`PLATFORM_TEAM`], the owner
//! the shipped Templates name) owns the built-in capabilities.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use paved_shared::capabilities::{CapabilityView, SloState, SloView, BURN_WINDOW_HOURS, FAST_BURN};
use serde_json::Value;
use sqlx::SqlitePool;

use crate::notifications::{self, Severity};
use crate::CoreError;

/// The window every SLO is computed over, in days.
pub const WINDOW_DAYS: u32 = 28;

/// The most time the gateway may add to a call (the provider's own time
/// excluded) for it to count as fast: the `fast` column of the hourly
/// rollup (`llm_usage_model_hourly`, kept by a trigger) counts against it.
pub const ADDED_LATENCY_MS: i64 = 25;

const ADDED_LATENCY_SLI: &str =
    "Calls to a provider where the gateway itself added at most 25 ms (the provider's time excluded)";

/// The team that owns the built-in capabilities unless a catalog entity says otherwise.
pub const PLATFORM_TEAM: &str = "platform";

/// Good and total events over the window and over the recent burn window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Good events in the window.
    pub good: u64,
    /// All events in the window.
    pub total: u64,
    /// Good events in the last [`BURN_WINDOW_HOURS`].
    pub recent_good: u64,
    /// All events in the last [`BURN_WINDOW_HOURS`].
    pub recent_total: u64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.good += other.good;
        self.total += other.total;
        self.recent_good += other.recent_good;
        self.recent_total += other.recent_total;
    }
}

/// One SLO's numbers from its counts and objective (0..1).
///
/// The error budget is the share of events allowed to be bad,
/// `(1 − objective) × total`; what is left of it is
/// `1 − bad / allowed`. The burn rate is the recent bad share over the
/// allowed share: at 1 the budget lasts exactly the window.
pub fn evaluate(id: &str, name: &str, objective: f64, c: Counts) -> SloView {
    let allowed = 1.0 - objective;
    let sli = (c.total > 0).then(|| c.good as f64 / c.total as f64);
    // A 100% objective allows no bad event: untouched or overspent.
    let remaining = sli.map(|s| match (allowed > 0.0, s >= 1.0) {
        (true, _) => 1.0 - (1.0 - s) / allowed,
        (false, true) => 1.0,
        (false, false) => -1.0,
    });
    let burn_rate = (c.recent_total > 0 && allowed > 0.0).then(|| {
        let bad = (c.recent_total - c.recent_good.min(c.recent_total)) as f64;
        bad / c.recent_total as f64 / allowed
    });
    let fast_burn = burn_rate.is_some_and(|b| b >= FAST_BURN);
    let state = match (sli, remaining) {
        (None, _) => SloState::NoData,
        (Some(s), _) if s < objective => SloState::Breached,
        (_, Some(r)) if r < 0.25 || fast_burn => SloState::AtRisk,
        _ => SloState::Met,
    };
    SloView {
        id: id.to_owned(),
        name: name.to_owned(),
        objective,
        window_days: WINDOW_DAYS,
        good: c.good,
        total: c.total,
        sli,
        error_budget_remaining: remaining,
        burn_rate,
        fast_burn,
        state,
    }
}

/// What a catalog entity declares about a capability.
#[derive(Debug, Clone, Default)]
struct Declared {
    entity: String,
    owner: Option<String>,
    lifecycle: Option<String>,
    objective: Option<f64>,
    rollback: Option<String>,
}

fn team_of(owner_ref: &str) -> String {
    let name = owner_ref.rsplit('/').next().unwrap_or(owner_ref);
    name.rsplit(':').next().unwrap_or(name).to_owned()
}

fn objective_of(raw: Option<&str>) -> Option<f64> {
    let v: f64 = raw?.trim().trim_end_matches('%').parse().ok()?;
    (v > 0.0 && v < 100.0).then_some(v / 100.0)
}

fn declared(
    entity: &str,
    owner: Option<String>,
    lifecycle: Option<String>,
    annotations: &Value,
) -> Declared {
    let ann = |k: &str| annotations.get(k).and_then(Value::as_str);
    Declared {
        entity: entity.to_owned(),
        owner: owner.map(|o| team_of(&o)),
        lifecycle,
        objective: objective_of(ann("paved.dev/slo-objective")),
        rollback: ann("paved.dev/rollback")
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(|r| r.chars().take(2000).collect()),
    }
}

/// An entity's annotations from their stored JSON (`null` when absent or unreadable).
fn annotations_of(raw: Option<&str>) -> Value {
    raw.and_then(|a| serde_json::from_str(a).ok())
        .unwrap_or(Value::Null)
}

/// The raw records the registry is computed from.
struct Inputs {
    models: BTreeMap<String, Counts>,
    latency: BTreeMap<String, Counts>,
    tasks: BTreeMap<String, Counts>,
    secrets: Counts,
    catalog: Counts,
    templates: Vec<(String, String, Declared)>,
    declarations: BTreeMap<String, Declared>,
    /// Evaluations per policy (good: without an evaluation error).
    policies: BTreeMap<String, Counts>,
}

fn counts(total: i64, good: i64, recent_total: i64, recent_good: i64) -> Counts {
    let u = |v: i64| v.max(0) as u64;
    Counts {
        good: u(good),
        total: u(total),
        recent_good: u(recent_good),
        recent_total: u(recent_total),
    }
}

async fn inputs(pool: &SqlitePool, now: i64) -> Result<Inputs, CoreError> {
    let since = now - i64::from(WINDOW_DAYS) * 86_400;
    let recent = now - BURN_WINDOW_HOURS * 3600;
    // Gateway calls from the hourly rollup (a window edge falls on the hour):
    // good unless the gateway or its provider failed (5xx); fast when the
    // gateway itself added at most ADDED_LATENCY_MS.
    let (since_hour, recent_hour) = (since.div_euclid(3600), recent.div_euclid(3600));
    let mut models = BTreeMap::new();
    let mut latency = BTreeMap::new();
    for r in sqlx::query!(
        r#"SELECT model, SUM(requests) AS "total!: i64", SUM(requests - failed) AS "good!: i64",
                  SUM(CASE WHEN hour >= ?2 THEN requests ELSE 0 END) AS "recent_total!: i64",
                  SUM(CASE WHEN hour >= ?2 THEN requests - failed ELSE 0 END) AS "recent_good!: i64",
                  SUM(timed) AS "timed!: i64", SUM(fast) AS "fast!: i64",
                  SUM(CASE WHEN hour >= ?2 THEN timed ELSE 0 END) AS "recent_timed!: i64",
                  SUM(CASE WHEN hour >= ?2 THEN fast ELSE 0 END) AS "recent_fast!: i64"
           FROM llm_usage_model_hourly WHERE hour >= ?1 GROUP BY model HAVING SUM(requests) > 0"#,
        since_hour,
        recent_hour
    )
    .fetch_all(pool)
    .await?
    {
        models.insert(
            r.model.clone(),
            counts(r.total, r.good, r.recent_total, r.recent_good),
        );
        latency.insert(
            r.model,
            counts(r.timed, r.fast, r.recent_timed, r.recent_fast),
        );
    }
    // Scaffolder tasks that finished: completed is good, failed is bad; cancelled is the person's choice.
    let tasks = sqlx::query!(
        r#"SELECT template_ref, COUNT(*) AS "total!: i64", SUM(status = 'completed') AS "good!: i64",
                  SUM(finished_at >= ?2) AS "recent_total!: i64",
                  SUM(finished_at >= ?2 AND status = 'completed') AS "recent_good!: i64"
           FROM scaffolder_tasks WHERE finished_at >= ?1 AND status IN ('completed', 'failed')
           GROUP BY template_ref"#,
        since,
        recent
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| {
        (
            r.template_ref.to_ascii_lowercase(),
            counts(r.total, r.good, r.recent_total, r.recent_good),
        )
    })
    .collect();
    let s = sqlx::query!(
        r#"SELECT COUNT(*) AS "total!: i64", COALESCE(SUM(last_error IS NULL), 0) AS "good!: i64",
                  COALESCE(SUM(last_attempt_at >= ?2), 0) AS "recent_total!: i64",
                  COALESCE(SUM(last_attempt_at >= ?2 AND last_error IS NULL), 0) AS "recent_good!: i64"
           FROM secret_access WHERE last_attempt_at >= ?1"#,
        since,
        recent
    )
    .fetch_one(pool)
    .await?;
    let secrets = counts(s.total, s.good, s.recent_total, s.recent_good);
    // Catalog locations read in the window: a read that failed outright is bad
    // (problems in the YAML are the authors', not the catalog's).
    let c = sqlx::query!(
        r#"SELECT COUNT(*) AS "total!: i64", COALESCE(SUM(status != 'failed'), 0) AS "good!: i64",
                  COALESCE(SUM(last_refresh_at >= ?2), 0) AS "recent_total!: i64",
                  COALESCE(SUM(last_refresh_at >= ?2 AND status != 'failed'), 0) AS "recent_good!: i64"
           FROM catalog_locations WHERE status != 'pending' AND last_refresh_at >= ?1"#,
        since,
        recent
    )
    .fetch_one(pool)
    .await?;
    let catalog = counts(c.total, c.good, c.recent_total, c.recent_good);
    let templates = sqlx::query!(
        r#"SELECT entity_ref, name, title, owner_ref, lifecycle,
                  json_extract(body, '$.metadata.annotations') AS "annotations: String"
           FROM catalog_entities WHERE kind_key = 'template' AND orphan = 0 ORDER BY entity_ref"#
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| {
        let annotations = annotations_of(r.annotations.as_deref());
        let name = r.title.unwrap_or(r.name);
        let d = declared(&r.entity_ref, r.owner_ref, r.lifecycle, &annotations);
        (r.entity_ref, name, d)
    })
    .collect();
    let declarations = sqlx::query!(
        r#"SELECT e.entity_ref, e.owner_ref, e.lifecycle, f.value AS capability,
                  json_extract(e.body, '$.metadata.annotations') AS "annotations: String"
           FROM catalog_fields f JOIN catalog_entities e ON e.uid = f.entity_uid
           WHERE f.key = 'metadata.annotations.paved.dev/capability' AND e.orphan = 0
           ORDER BY e.entity_ref"#
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| {
        let annotations = annotations_of(r.annotations.as_deref());
        (
            r.capability,
            declared(&r.entity_ref, r.owner_ref, r.lifecycle, &annotations),
        )
    })
    .collect();
    let policies = sqlx::query!(
        r#"SELECT policy, SUM(evaluations) AS "total!: i64", SUM(evaluations - errors) AS "good!: i64",
                  SUM(CASE WHEN hour >= ?2 THEN evaluations ELSE 0 END) AS "recent_total!: i64",
                  SUM(CASE WHEN hour >= ?2 THEN evaluations - errors ELSE 0 END) AS "recent_good!: i64"
           FROM policy_evaluations_hourly WHERE hour >= ?1 GROUP BY policy"#,
        since_hour,
        recent_hour
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| {
        (
            r.policy,
            counts(r.total, r.good, r.recent_total, r.recent_good),
        )
    })
    .collect();
    Ok(Inputs {
        models,
        latency,
        tasks,
        secrets,
        catalog,
        templates,
        declarations,
        policies,
    })
}

struct Builder<'a> {
    declarations: &'a BTreeMap<String, Declared>,
}

impl Builder<'_> {
    #[allow(clippy::too_many_arguments)]
    fn capability(
        &self,
        id: String,
        name: String,
        kind: &str,
        description: String,
        link: Option<String>,
        base: Option<&Declared>,
        slos: Vec<(&str, &str, f64, Counts)>,
        cost_controls: Vec<String>,
    ) -> CapabilityView {
        let over = self.declarations.get(&id.to_ascii_lowercase());
        let pick =
            |f: fn(&Declared) -> Option<String>| over.and_then(f).or_else(|| base.and_then(f));
        let objective_override = over
            .and_then(|d| d.objective)
            .or_else(|| base.and_then(|d| d.objective));
        let slos: Vec<SloView> = slos
            .into_iter()
            .map(|(sid, sname, objective, c)| {
                evaluate(sid, sname, objective_override.unwrap_or(objective), c)
            })
            .collect();
        let state = slos
            .iter()
            .map(|s| s.state)
            .max()
            .unwrap_or(SloState::NoData);
        CapabilityView {
            name,
            kind: kind.to_owned(),
            owner: pick(|d| d.owner.clone()).unwrap_or_else(|| PLATFORM_TEAM.to_owned()),
            lifecycle: pick(|d| d.lifecycle.clone()).unwrap_or_else(|| "production".to_owned()),
            description,
            rollback: pick(|d| d.rollback.clone()),
            cost_controls,
            link,
            declared_by: over.or(base).map(|d| d.entity.clone()),
            slos,
            state,
            id,
        }
    }
}

/// Every capability with its SLOs as of `now` (unix seconds). Everyone
/// signed in may read the registry: it is about the platform, not a team.
pub async fn list(core: &crate::CoreState, now: i64) -> Result<Vec<CapabilityView>, CoreError> {
    let i = inputs(&core.db, now).await?;
    let b = Builder {
        declarations: &i.declarations,
    };
    let mut out = Vec::new();
    let (mut gateway, mut added) = (Counts::default(), Counts::default());
    for c in i.models.values() {
        gateway.add(*c);
    }
    for c in i.latency.values() {
        added.add(*c);
    }
    let availability = "Requests answered without a gateway or provider failure (5xx)";
    out.push(b.capability(
        "gateway".into(),
        "LLM gateway".into(),
        "gateway",
        "The OpenAI-compatible proxy every team's LLM calls go through, inside each team's budget.".into(),
        Some("/llm".into()),
        None,
        vec![
            ("availability", availability, 0.995, gateway),
            (
                "added_latency",
                ADDED_LATENCY_SLI,
                0.99,
                added,
            ),
        ],
        vec![
            "Per-team and per-workspace budgets, held before each call (never overspent)".into(),
            "Requests- and tokens-per-minute limits per budget".into(),
        ],
    ));
    let mut models: Vec<&String> = core.config.llm.routes.keys().collect();
    for m in i.models.keys() {
        if !models.contains(&m) {
            models.push(m);
        }
    }
    for model in models {
        let route = core.config.llm.routes.get(model);
        let mut providers: Vec<&str> = route
            .map(|r| r.deployments.iter().map(|d| d.provider.as_str()).collect())
            .unwrap_or_default();
        providers.dedup();
        let provider = if providers.is_empty() {
            "unknown".to_owned()
        } else {
            providers.join(", ")
        };
        let priced = route.is_some_and(|r| core.gateway.is_priced(r));
        let mut controls = vec![format!(
            "Served by provider {provider}; each team's budget may allow or refuse the model"
        )];
        if let Some(r) = route.filter(|r| r.deployments.len() > 1 || !r.fallbacks.is_empty()) {
            controls.push(format!(
                "{} deployments, weighted, each with its own circuit breaker{}",
                r.deployments.len(),
                if r.fallbacks.is_empty() {
                    String::new()
                } else {
                    format!("; falls back to {}", r.fallbacks.join(", "))
                }
            ));
        }
        if priced {
            controls.push("Priced per token in the gateway's price table".to_owned());
        } else {
            controls.push("No price set: calls are refused until an admin prices it".to_owned());
        }
        out.push(b.capability(
            format!("model:{model}"),
            format!("Model {model}"),
            "model-route",
            format!("The {model} route of the LLM gateway (provider {provider})."),
            Some("/llm".into()),
            None,
            vec![
                (
                    "availability",
                    availability,
                    0.99,
                    i.models.get(model).copied().unwrap_or_default(),
                ),
                (
                    "added_latency",
                    ADDED_LATENCY_SLI,
                    0.99,
                    i.latency.get(model).copied().unwrap_or_default(),
                ),
            ],
            controls,
        ));
    }
    let mut all_tasks = Counts::default();
    for c in i.tasks.values() {
        all_tasks.add(*c);
    }
    let success = "Runs that finished successfully (cancelled runs excluded)";
    out.push(
        b.capability(
            "scaffolder".into(),
            "Scaffolder".into(),
            "scaffolder",
            "Runs golden paths: repositories published, entities registered, secrets provisioned."
                .into(),
            Some("/create".into()),
            None,
            vec![("success_rate", success, 0.95, all_tasks)],
            vec![
                "A per-person cap on live log streams; each run's steps retried, not repeated"
                    .into(),
            ],
        ),
    );
    for (entity_ref, name, declared) in &i.templates {
        let short = entity_ref.strip_prefix("template:").unwrap_or(entity_ref);
        let link = short
            .split_once('/')
            .map(|(ns, n)| format!("/create/templates/{ns}/{n}"));
        out.push(b.capability(
            format!("golden-path:{short}"),
            format!("Golden path: {name}"),
            "golden-path",
            format!("The {name} template and everything its runs create."),
            link,
            Some(declared),
            vec![(
                "success_rate",
                success,
                0.9,
                i.tasks.get(entity_ref).copied().unwrap_or_default(),
            )],
            Vec::new(),
        ));
    }
    out.push(b.capability(
        "secrets".into(),
        "Secrets provisioning".into(),
        "secrets",
        "Writes secrets to Vault with each service's policy and Kubernetes role.".into(),
        None,
        None,
        vec![(
            "success_rate",
            "Services whose policy and role were written without an error",
            0.99,
            i.secrets,
        )],
        vec!["Write-only values; leads alone destroy versions".into()],
    ));
    out.push(b.capability(
        "catalog".into(),
        "Service catalog".into(),
        "catalog",
        "Reads catalog-info.yaml from files and git hosts and keeps it searchable.".into(),
        Some("/catalog/locations".into()),
        None,
        vec![(
            "ingestion_success",
            "Locations whose last read in the window succeeded",
            0.99,
            i.catalog,
        )],
        vec!["Refreshes throttled and coalesced per location".into()],
    ));
    // Each policy in force is a capability of the platform, owned by whoever
    // its template names (`paved.dev/owner`), with an SLO on its evaluations.
    let set = core.policies.current();
    for c in &set.constraints {
        let template = set.templates.get(&c.kind);
        let owner = template
            .and_then(|t| {
                t.source
                    .pointer("/metadata/annotations/paved.dev~1owner")
                    .and_then(Value::as_str)
            })
            .map(str::to_owned);
        let declared = Declared {
            entity: format!("policy:{}", c.name),
            owner: owner.map(|o| team_of(&o)),
            lifecycle: None,
            objective: None,
            rollback: Some(
                "Set the constraint's enforcementAction to dryrun (or grant an exception on the Policies page) and restart Paved".into(),
            ),
        };
        let title = template
            .and_then(|t| t.title.clone())
            .unwrap_or_else(|| c.kind.clone());
        let actions = c
            .actions
            .summary()
            .into_iter()
            .filter(|(p, _)| *p != paved_policy::EnforcementPoint::Audit)
            .map(|(p, a)| match a {
                Some(a) => format!("{} at {}", a.as_str(), p.label()),
                None => format!("not applied at {}", p.label()),
            })
            .collect::<Vec<_>>()
            .join(", ");
        out.push(
            b.capability(
                format!("policy:{}", c.name),
                format!("Policy: {title}"),
                "policy",
                template
                    .and_then(|t| t.description.clone())
                    .unwrap_or_else(|| format!("The {} constraint.", c.name)),
                Some("/policies".into()),
                Some(&declared),
                vec![(
                    "evaluation_success",
                    "Checks and admission decisions evaluated without a policy error",
                    0.999,
                    i.policies.get(&c.name).copied().unwrap_or_default(),
                )],
                vec![
                    format!("Enforced: {actions}"),
                    "Exceptions per namespace with an owner, a reason and an expiry".into(),
                ],
            ),
        );
    }
    Ok(out)
}

/// The demo's incident: yesterday twelve `gpt-4o` calls failed upstream
/// (502), so that model route is below its SLO and the registry, the
/// notifications and the PM's home have something to show.
pub async fn seed_demo(pool: &SqlitePool, now: i64) -> Result<(), CoreError> {
    let at = (now - 86_400) * 1000;
    let mut tx = pool.begin().await?;
    for i in 0..12_i64 {
        let when = at + i * 60_000;
        sqlx::query!(
            r#"INSERT INTO llm_usage (at, team, workspace_id, key_name, provider, model, request_type, input_tokens,
                                      output_tokens, cost_nanocents, latency_ms, status, error_type, reservation_id, feature)
               VALUES (?1, 'payments', '', 'payments-api', 'openai', 'gpt-4o', 'chat', 0, 0, 0, 30000, 502,
                       'upstream_5xx', 'demo-seed', 'fraud-explanations')"#,
            when
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// One capability by id, or not found.
pub async fn get(core: &crate::CoreState, id: &str, now: i64) -> Result<CapabilityView, CoreError> {
    list(core, now)
        .await?
        .into_iter()
        .find(|c| c.id.eq_ignore_ascii_case(id))
        .ok_or_else(|| CoreError::NotFound(format!("capability {id}")))
}

/// Notifies each owner of an SLO that is breached or burning fast, once:
/// the open alert is remembered and cleared when the SLO recovers, so the
/// next breach notifies again. Returns how many notifications were sent.
pub async fn alert(core: &crate::CoreState, now: i64) -> Result<usize, CoreError> {
    let capabilities = list(core, now).await?;
    let open: Vec<(String, String, String)> =
        sqlx::query!(r#"SELECT capability, slo, kind FROM capability_alerts"#)
            .fetch_all(&core.db)
            .await?
            .into_iter()
            .map(|r| (r.capability, r.slo, r.kind))
            .collect();
    let mut sent = 0;
    let mut tx = core.db.begin_with("BEGIN IMMEDIATE").await?;
    for c in &capabilities {
        for s in &c.slos {
            let firing = [
                ("breach", s.state == SloState::Breached),
                ("fast_burn", s.fast_burn && s.state != SloState::Breached),
            ];
            for (kind, on) in firing {
                let key = (c.id.clone(), s.id.clone(), kind.to_owned());
                let was = open.contains(&key);
                if on && !was {
                    sqlx::query!(
                        "INSERT INTO capability_alerts (capability, slo, kind, opened_at) VALUES (?1, ?2, ?3, ?4)",
                        key.0,
                        key.1,
                        key.2,
                        now
                    )
                    .execute(&mut *tx)
                    .await?;
                    let (title, severity) = if kind == "breach" {
                        (
                            format!("{} is below its SLO: {}", c.name, s.name.to_lowercase()),
                            Severity::High,
                        )
                    } else {
                        (
                            format!("{} is burning its error budget fast", c.name),
                            Severity::Normal,
                        )
                    };
                    let description = format!(
                        "{} over {} days against an objective of {}; {} of the error budget left{}.",
                        s.sli.map(percent).unwrap_or_else(|| "no data".into()),
                        s.window_days,
                        percent(s.objective),
                        s.error_budget_remaining
                            .map(|r| percent(r.max(0.0)))
                            .unwrap_or_else(|| "—".into()),
                        s.burn_rate
                            .map(|b| format!(", burning at {b:.1}×"))
                            .unwrap_or_default()
                    );
                    let link = paved_shared::capabilities::href(&c.id);
                    let origin = format!("capability:{}:{}:{kind}", c.id, s.id);
                    let recipients = [
                        format!("group:default/{}", c.owner),
                        notifications::PLATFORM_ROLE.to_owned(),
                    ];
                    notifications::send_in(
                        &mut *tx,
                        &recipients,
                        &title,
                        Some(&description),
                        Some(&link),
                        severity,
                        Some(&origin),
                        now,
                    )
                    .await?;
                    sent += 1;
                } else if !on && was {
                    sqlx::query!(
                        "DELETE FROM capability_alerts WHERE capability = ?1 AND slo = ?2 AND kind = ?3",
                        key.0,
                        key.1,
                        key.2
                    )
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
    }
    tx.commit().await?;
    Ok(sent)
}

fn percent(v: f64) -> String {
    let p = v * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("{p:.0}%")
    } else {
        format!("{p:.2}%")
    }
}

/// The SLIs as Prometheus gauges: `paved_slo_sli_ratio`,
/// `paved_slo_objective_ratio`, `paved_slo_error_budget_remaining_ratio` and
/// `paved_slo_burn_rate`, labelled `capability`, `kind`, `owner`, `slo`.
pub fn prometheus(capabilities: &[CapabilityView]) -> String {
    let escape = |v: &str| {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    type Pick = fn(&SloView) -> Option<f64>;
    let series: [(&str, &str, Pick); 4] = [
        (
            "paved_slo_sli_ratio",
            "Good events over all events in the SLO window, 0..1.",
            |s| s.sli,
        ),
        (
            "paved_slo_objective_ratio",
            "The SLO's objective, 0..1.",
            |s| Some(s.objective),
        ),
        (
            "paved_slo_error_budget_remaining_ratio",
            "Share of the error budget left: 1 untouched, 0 spent, below 0 overspent.",
            |s| s.error_budget_remaining,
        ),
        (
            "paved_slo_burn_rate",
            "Recent bad share over the allowed bad share (1 spends the budget exactly over the window).",
            |s| s.burn_rate,
        ),
    ];
    let mut out = String::new();
    for (name, help, pick) in series {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for c in capabilities {
            for s in &c.slos {
                if let Some(v) = pick(s) {
                    let _ = writeln!(
                        out,
                        "{name}{{capability=\"{}\",kind=\"{}\",owner=\"{}\",slo=\"{}\"}} {v}",
                        escape(&c.id),
                        escape(&c.kind),
                        escape(&c.owner),
                        escape(&s.id)
                    );
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(good: u64, total: u64, recent_good: u64, recent_total: u64) -> Counts {
        Counts {
            good,
            total,
            recent_good,
            recent_total,
        }
    }

    #[test]
    fn error_budget_and_burn_rate_by_hand() {
        // 99% objective, 1,000 events, 5 bad: 10 allowed, half spent.
        let s = evaluate("a", "A", 0.99, c(995, 1000, 100, 100));
        assert_eq!(s.sli, Some(0.995));
        assert!((s.error_budget_remaining.unwrap() - 0.5).abs() < 1e-9);
        assert_eq!(s.burn_rate, Some(0.0));
        assert_eq!(s.state, SloState::Met);
        // 8 bad of 10 allowed: 20% left, at risk.
        let s = evaluate("a", "A", 0.99, c(992, 1000, 0, 0));
        assert!((s.error_budget_remaining.unwrap() - 0.2).abs() < 1e-9);
        assert_eq!(s.burn_rate, None);
        assert_eq!(s.state, SloState::AtRisk);
        // 20 bad: below the objective, the budget overspent twice over.
        let s = evaluate("a", "A", 0.99, c(980, 1000, 90, 100));
        assert!((s.error_budget_remaining.unwrap() + 1.0).abs() < 1e-9);
        // Recent: 10 bad of 100 = 10% against 1% allowed = 10×, a fast burn.
        assert!((s.burn_rate.unwrap() - 10.0).abs() < 1e-9);
        assert!(s.fast_burn);
        assert_eq!(s.state, SloState::Breached);
        // Well inside the objective but burning fast now: at risk.
        let s = evaluate("a", "A", 0.99, c(9990, 10000, 93, 100));
        assert!(s.fast_burn);
        assert_eq!(s.state, SloState::AtRisk);
        // Nothing happened: no data, no budget spent, nothing to page about.
        let s = evaluate("a", "A", 0.99, c(0, 0, 0, 0));
        assert_eq!(s.state, SloState::NoData);
        assert_eq!(s.sli, None);
        assert_eq!(s.error_budget_remaining, None);
    }

    #[test]
    fn objectives_and_owners_read_from_annotations() {
        assert!((objective_of(Some("99.9")).unwrap() - 0.999).abs() < 1e-12);
        assert_eq!(objective_of(Some("95%")), Some(0.95));
        for bad in ["100", "0", "-3", "abc", ""] {
            assert_eq!(objective_of(Some(bad)), None, "{bad}");
        }
        assert_eq!(team_of("group:default/payments"), "payments");
        assert_eq!(team_of("payments"), "payments");
        assert_eq!(team_of("group:payments"), "payments");
    }

    #[test]
    fn prometheus_series_escape_labels() {
        let cap = CapabilityView {
            id: "model:a\"b".into(),
            name: "x".into(),
            kind: "model-route".into(),
            owner: "platform".into(),
            lifecycle: "production".into(),
            description: String::new(),
            rollback: None,
            cost_controls: Vec::new(),
            link: None,
            declared_by: None,
            slos: vec![evaluate("availability", "A", 0.99, c(99, 100, 0, 0))],
            state: SloState::Met,
        };
        let text = prometheus(&[cap]);
        assert!(text.contains(
            "paved_slo_sli_ratio{capability=\"model:a\\\"b\",kind=\"model-route\",owner=\"platform\",slo=\"availability\"} 0.99"
        ));
        assert!(text.contains("# TYPE paved_slo_burn_rate gauge"));
        assert!(
            !text.contains("paved_slo_burn_rate{"),
            "no recent events, no burn rate"
        );
    }
}
