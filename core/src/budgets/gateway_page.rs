//! The gateway part of a team's Budget page: the team's gateway settings,
//! its newest request logs and what the response cache saved this period,
//! in one call, so the page's server function stays a single core call.

use crate::auth::{authorize, Action, Principal};
use crate::gateway::settings;
use crate::{CoreError, CoreState};
use paved_shared::budgets::{CacheSaving, GatewaySettings, ProviderKeyAge, RequestLogEntry};

/// How many request logs the page lists at a time.
pub const LOGS_PER_PAGE: i64 = 50;

/// What the Budget page shows about the team's gateway settings and traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayPage {
    /// The team's settings as saved (the defaults when it has none).
    pub settings: GatewaySettings,
    /// The caller may change them (team leads and platform admins).
    pub can_edit: bool,
    /// Up to [`LOGS_PER_PAGE`] request logs, newest first.
    pub logs: Vec<RequestLogEntry>,
    /// The id to list older logs before, when there may be more.
    pub older_before: Option<i64>,
    /// What the cache saved per feature this period, most saved first.
    pub savings: Vec<CacheSaving>,
    /// How old the team's own provider keys are (`None`: it uses the platform's).
    pub key_age: Option<ProviderKeyAge>,
}

/// `team`'s gateway settings, request logs (before `logs_before`, when
/// given) and cache savings this period: its members, platform PMs and admins.
pub async fn gateway_page(
    core: &CoreState,
    caller: &Principal,
    team: &str,
    logs_before: Option<i64>,
) -> Result<GatewayPage, CoreError> {
    authorize(caller, Action::ViewTeam(team))?;
    let ledger = &core.budgets.ledger;
    let settings = settings::get(&core.gateway.settings, &core.db, caller, team).await?;
    let logs = settings::request_logs(
        &core.db,
        ledger.time_zone(),
        caller,
        team,
        logs_before,
        LOGS_PER_PAGE,
    )
    .await?;
    let older_before = (logs.len() as i64 == LOGS_PER_PAGE)
        .then(|| logs.last().map(|e| e.id))
        .flatten();
    let from = ledger.period_or_recent(team, 30).0;
    let savings = settings::cache_savings(&core.db, caller, team, from).await?;
    let key_age = settings::provider_key_age(
        &core.gateway.settings,
        &core.db,
        ledger.time_zone(),
        caller,
        team,
        crate::now_unix(),
    )
    .await?;
    Ok(GatewayPage {
        settings,
        can_edit: authorize(caller, Action::LeadTeam(team)).is_ok(),
        logs,
        older_before,
        savings,
        key_age,
    })
}
