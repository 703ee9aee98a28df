//! Keeping every replica's caches current. A change that other replicas
//! cache (a person's access, a revoked gateway key, the price table) is
//! applied to this process's caches by the code that makes it, then
//! published on the [`Bus`]; every replica follows the bus ([`follow`]) and
//! applies what it hears. On SQLite (one process) publishing does nothing.

use tokio::sync::broadcast::error::RecvError;

pub use paved_store::bus::{Bus, Change};

use crate::CoreState;

/// Tells the other replicas about a committed change. A failure is logged,
/// not returned: the change is made, and other replicas' caches re-read
/// within their time to live (principals 5 s, gateway keys 1 s).
pub async fn publish(core: &CoreState, change: Change) {
    if let Err(e) = core.bus.publish(&change).await {
        tracing::warn!(error = %e, change = change.kind(), "cannot tell the other replicas about a change");
    }
}

/// Applies a change heard on the bus to this replica's caches.
pub async fn apply(core: &CoreState, change: &Change) {
    match change {
        Change::Person { user_id } => core.principals.invalidate(*user_id),
        Change::GatewayKey { hash } => core.budgets.keys.forget(hash),
        Change::Prices => reload_prices(core).await,
        Change::Policies => reload_policies(core).await,
        Change::TaskEvent { task_id, id } => core.scaffolder.wake_streams(task_id, *id),
        // Sessions are the web server's: its session cache follows the bus itself.
        Change::Session { .. } => {}
        Change::Everything => {
            core.principals.clear();
            core.budgets.keys.clear();
            reload_prices(core).await;
            reload_policies(core).await;
        }
    }
}

async fn reload_policies(core: &CoreState) {
    if let Err(e) = core.policies.reload_exceptions(&core.db).await {
        tracing::warn!(error = %e, "cannot re-read the policy exceptions");
    }
    if let Err(e) = core.policies.refresh_parameters(&core.db).await {
        tracing::warn!(error = %e, "cannot re-read the services the policies check");
    }
}

async fn reload_prices(core: &CoreState) {
    if let Err(e) = core.budgets.prices.reload(&core.db).await {
        tracing::warn!(error = %e, "cannot re-read the price table");
    }
}

/// Applies every change this replica hears, for as long as it runs.
pub async fn follow(core: CoreState) {
    let mut heard = core.bus.subscribe();
    loop {
        match heard.recv().await {
            Ok(change) => apply(&core, &change).await,
            // Fell behind: what was dropped is unknown.
            Err(RecvError::Lagged(_)) => apply(&core, &Change::Everything).await,
            Err(RecvError::Closed) => return,
        }
    }
}
