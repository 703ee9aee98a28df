//! The audit log: who changed what, when, with before/after snapshots.

use crate::{now_unix, CoreError};

/// The `tracing` target of every audit entry (exported with the server's
/// audit export: OTLP logs or JSON lines).
pub const AUDIT_TARGET: &str = "paved::audit";

/// The `tracing` target of every gateway usage record (billing events).
pub const BILLING_TARGET: &str = "paved::billing";

/// Appends one entry. Pass a transaction (`&mut *tx`) so the entry commits
/// with the change it records.
pub async fn record<'c>(
    conn: impl Into<paved_store::Conn<'c>>,
    actor: &str,
    action: &str,
    target: &str,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> Result<(), CoreError> {
    let before = before.map(|v| v.to_string());
    let after = after.map(|v| v.to_string());
    paved_store::audit::insert(
        conn.into(),
        now_unix(),
        actor,
        action,
        target,
        before,
        after,
    )
    .await?;
    tracing::info!(target: AUDIT_TARGET, actor, action, object = target, "audit");
    Ok(())
}

pub use paved_shared::identity::{AuditEntry, AuditPage};

/// A page of the log for the Audit page (platform admins).
pub async fn page(
    db: impl Into<paved_store::Db<'_>>,
    caller: &crate::auth::Principal,
    offset: i64,
    limit: i64,
) -> Result<AuditPage, CoreError> {
    crate::auth::authorize(caller, crate::auth::Action::ViewAuditLog)?;
    list(db, offset, limit).await
}

/// Lists entries newest first, skipping `offset`, at most `limit` (capped at 200).
pub async fn list(
    db: impl Into<paved_store::Db<'_>>,
    offset: i64,
    limit: i64,
) -> Result<AuditPage, CoreError> {
    let db = db.into();
    let limit = limit.clamp(1, 200);
    let offset = offset.max(0);
    let (entries, total) = paved_store::audit::page(db, offset, limit).await?;
    Ok(AuditPage {
        entries,
        total,
        offset,
        limit,
    })
}
