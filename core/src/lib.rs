//! Paved's domain library: plain async functions over a [`sqlx::SqlitePool`],
//! testable without Leptos or HTTP. Server functions (in `app`) and HTTP-only
//! endpoints (in `server`) both call into this crate.

pub mod audit;
pub mod auth;
pub mod budgets;
pub mod catalog;
pub mod changes;
pub mod config;
pub mod db;
pub mod error;
pub mod gateway;
pub mod identity;
pub mod integrations;
pub mod kube;
pub mod notifications;
pub mod outcomes;
pub mod policy;
pub mod scaffold;
pub mod secrets;
pub mod teams;
pub mod tokens;

use std::sync::Arc;

pub use error::CoreError;

/// What every domain call needs, built once at start-up and shared by
/// reference-counted clones.
#[derive(Clone)]
pub struct CoreState {
    /// The SQLite connection pool.
    pub db: sqlx::SqlitePool,
    /// The typed configuration, loaded once.
    pub config: Arc<config::Config>,
    /// The git hosts files are read from, with their credentials and rate limits.
    pub integrations: Arc<integrations::Integrations>,
    /// Where the catalog may read from (allow-lists and limits).
    pub catalog: Arc<catalog::source::Sources>,
    /// Facet counts, cached until the catalog changes.
    pub facet_cache: Arc<catalog::query::FacetCache>,
    /// The Vault connection, when `PAVED_VAULT_ADDR` is set.
    pub vault: Option<Arc<secrets::vault::Vault>>,
    /// The scaffolder's in-process state (workers, secret answers, live events).
    pub scaffolder: Arc<scaffold::Scaffolder>,
    /// Budgets: the ledger, prices and gateway keys.
    pub budgets: Arc<budgets::Budgets>,
    /// The LLM gateway: routes, breakers, provider credentials and metrics;
    /// it charges [`CoreState::budgets`].
    pub gateway: Arc<gateway::Gateway>,
    /// Refreshes people ask for, throttled per location and in total.
    pub refresher: Arc<catalog::refresh::Refresher>,
    /// Signed-in people's principals, cached for [`identity::PRINCIPAL_TTL`];
    /// every change to a person's access drops their entry at once.
    pub principals: identity::PrincipalCache,
    /// Delivery events are written by one task in this process, the ones
    /// that arrive together in one transaction (group commit).
    pub outcomes_writer: Arc<outcomes::store::Writer>,
    /// Repository histories the Outcomes reads walk, kept between reads.
    pub outcomes_graphs: Arc<outcomes::read::GraphCache>,
    /// What each kept delivery touched, so cached attributions know they are stale.
    pub outcomes_versions: Arc<outcomes::cache::Versions>,
    /// Components' attributions kept between reads.
    pub outcomes_attributions: Arc<outcomes::cache::AttributionCache>,
    /// Every team's DORA keys, kept while nothing they were read from changed.
    pub outcomes_board: Arc<outcomes::cache::Board<outcomes::ByTeam>>,
    /// The platform home's numbers, kept for `PAVED_DASHBOARD_REFRESH_SECONDS`.
    pub platform_snapshot: Arc<outcomes::cache::Board<outcomes::adoption::Snapshot>>,
    /// Survey results kept until the next answer.
    pub survey_results: Arc<outcomes::surveys::ResultsCache>,
    /// Who used Paved today (for weekly and monthly active people).
    pub activity: Arc<outcomes::adoption::Activity>,
    /// The policies in force, exceptions and the violation log.
    pub policies: Arc<policy::Policies>,
    /// The Kubernetes clusters, their clients and the runtime cache.
    pub kube: Arc<kube::Kube>,
    /// Whether this process leads the fleet's background jobs (catalog
    /// refreshes, SLO checks, retention): always, on SQLite's one process.
    pub leader: paved_store::leader::Leadership,
    /// Where changes other replicas cache are published and heard
    /// ([`changes`]): nobody else to tell, on SQLite.
    pub bus: changes::Bus,
}

/// Why the domain state could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CoreStartError {
    /// The Vault client could not be built (an unreadable CA file).
    #[error(transparent)]
    Vault(#[from] secrets::vault::VaultError),
    /// The budget ledger or prices could not be loaded.
    #[error(transparent)]
    Budgets(#[from] budgets::BudgetsStartError),
    /// The gateway's HTTP client could not be built.
    #[error(transparent)]
    Gateway(#[from] gateway::GatewayStartError),
    /// The event sources from the environment could not be recorded.
    #[error(transparent)]
    Outcomes(#[from] CoreError),
    /// A policy in `PAVED_POLICY_DIRS` does not load or compile.
    #[error(transparent)]
    Policy(#[from] policy::PolicyStartError),
}

impl CoreState {
    /// Builds the state from an open pool and the configuration: the Vault
    /// client, and the gateway with its ledger loaded from SQLite. `clock` is
    /// the time budgets are computed at ([`budgets::ledger::SystemClock`] in
    /// production, a [`budgets::ledger::ManualClock`] in tests).
    pub async fn new(
        db: sqlx::SqlitePool,
        config: Arc<config::Config>,
        clock: Arc<dyn budgets::ledger::Clock>,
    ) -> Result<Self, CoreStartError> {
        let vault = match &config.vault {
            Some(vault) => Some(Arc::new(secrets::vault::Vault::new(vault.clone())?)),
            None => None,
        };
        let integrations = Arc::new(integrations::Integrations::new(
            config.catalog.integrations.clone(),
            vault.clone(),
        ));
        let catalog = catalog::source::Sources::new(
            &config.catalog.file_roots,
            &config.catalog.allowed_hosts,
            catalog::source::SourceLimits::default(),
        )
        .with_kinds(catalog::model::Kinds::default().with(scaffold::template::TemplateKind))
        .with_integrations(integrations.clone());
        outcomes::sources::sync_environment(&db, &config.outcomes).await?;
        let policies = Arc::new(policy::Policies::start(&db, &config.policy).await?);
        let budgets = budgets::Budgets::start(&db, &config, clock.clone()).await?;
        let kube = Arc::new(kube::Kube::new(config.kube.clone()));
        let leader = paved_store::leader::Leadership::sole();
        let gateway = gateway::Gateway::start(
            db.clone(),
            config.clone(),
            vault.clone(),
            budgets.clone(),
            clock,
            leader.clone(),
        )
        .await?;
        Ok(Self {
            integrations,
            budgets,
            gateway,
            db,
            config,
            catalog: Arc::new(catalog),
            facet_cache: Arc::default(),
            vault,
            scaffolder: Arc::new(scaffold::Scaffolder::new()),
            refresher: Arc::default(),
            principals: identity::PrincipalCache::new(identity::PRINCIPAL_TTL, 10_000),
            outcomes_writer: Arc::default(),
            outcomes_graphs: Arc::default(),
            outcomes_versions: Arc::default(),
            outcomes_attributions: Arc::default(),
            outcomes_board: Arc::default(),
            platform_snapshot: Arc::default(),
            survey_results: Arc::default(),
            activity: Arc::default(),
            policies,
            kube,
            leader,
            bus: changes::Bus::sole(),
        })
    }
}

/// A unix timestamp (seconds) as RFC 3339 in UTC (`2026-12-06T22:55:01Z`),
/// as the APIs answer times.
pub fn rfc3339_utc(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Seconds since the Unix epoch, the timestamp format of every table.
pub fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
