//! Portal-managed fields of an entity: what the owning team keeps in Paved
//! rather than in YAML (on-call contact, support link, notes). Owners and
//! platform admins edit them; every change is audited.

use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::SqlitePool;

use crate::auth::{authorize, Action, Principal};
use crate::{audit, now_unix, CoreError};

/// The portal-managed fields of one entity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalFields {
    /// Who to page or ask (a channel, alias or rota).
    pub oncall: String,
    /// Where to ask for help (http/https).
    pub support_url: String,
    /// Free text for newcomers.
    pub notes: String,
    /// Who changed them last.
    pub updated_by: Option<String>,
    /// When (Unix seconds).
    pub updated_at: Option<i64>,
}

/// The fields of `entity_ref` (empty when never set).
pub async fn get(pool: &SqlitePool, entity_ref: &str) -> Result<PortalFields, CoreError> {
    let lower = entity_ref.to_ascii_lowercase();
    let row = sqlx::query!(
        "SELECT oncall, support_url, notes, updated_by, updated_at FROM catalog_portal_fields WHERE entity_ref = ?1",
        lower
    )
    .fetch_optional(pool)
    .await?;
    Ok(row
        .map(|r| PortalFields {
            oncall: r.oncall,
            support_url: r.support_url,
            notes: r.notes,
            updated_by: Some(r.updated_by),
            updated_at: Some(r.updated_at),
        })
        .unwrap_or_default())
}

/// Whether `caller` may edit the portal fields of an entity owned by `owner_ref`:
/// members of the owning team, the owning user, and platform admins.
pub fn can_edit(caller: &Principal, owner_ref: Option<&str>) -> bool {
    edit_check(caller, owner_ref).is_ok()
}

fn edit_check(caller: &Principal, owner_ref: Option<&str>) -> Result<(), CoreError> {
    if caller.is_admin() {
        return Ok(());
    }
    match owner_ref.and_then(|r| r.split_once(':')) {
        Some(("group", rest)) => {
            let team = rest.rsplit('/').next().unwrap_or(rest);
            Ok(authorize(caller, Action::ActInTeam(team))?)
        }
        Some(("user", rest)) if rest.rsplit('/').next() == Some(caller.subject.as_str()) => Ok(()),
        _ => Err(CoreError::Forbidden(
            "Only the owners of this entity (or a platform admin) can edit these fields.".into(),
        )),
    }
}

/// Saves the fields of `entity_ref` after checking ownership and input.
pub async fn set(
    pool: &SqlitePool,
    caller: &Principal,
    entity_ref: &str,
    fields: &PortalFields,
) -> Result<(), CoreError> {
    let lower = entity_ref.to_ascii_lowercase();
    let owner = sqlx::query!(
        "SELECT owner_ref FROM catalog_entities WHERE entity_ref = ?1",
        lower
    )
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| CoreError::NotFound(format!("entity {entity_ref}")))?
    .owner_ref;
    edit_check(caller, owner.as_deref())?;
    let oncall = fields.oncall.trim();
    let support_url = fields.support_url.trim();
    let notes = fields.notes.trim();
    if oncall.chars().count() > 120 {
        return Err(CoreError::Invalid {
            field: "oncall",
            message: "keep it under 120 characters".into(),
        });
    }
    if !support_url.is_empty() {
        let ok = url::Url::parse(support_url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
        if !ok {
            return Err(CoreError::Invalid {
                field: "support_url",
                message: "use a full http:// or https:// link".into(),
            });
        }
    }
    if notes.chars().count() > 4000 {
        return Err(CoreError::Invalid {
            field: "notes",
            message: "keep notes under 4,000 characters".into(),
        });
    }
    let before = get(pool, &lower).await?;
    let actor = caller.actor();
    let now = now_unix();
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query!(
        r#"INSERT INTO catalog_portal_fields (entity_ref, oncall, support_url, notes, updated_by, updated_at)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6)
           ON CONFLICT (entity_ref) DO UPDATE SET oncall = excluded.oncall, support_url = excluded.support_url,
             notes = excluded.notes, updated_by = excluded.updated_by, updated_at = excluded.updated_at"#,
        lower,
        oncall,
        support_url,
        notes,
        actor,
        now
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        &actor,
        "catalog.portal_fields.update",
        &lower,
        Some(json!({"oncall": before.oncall, "support_url": before.support_url, "notes": before.notes})),
        Some(json!({"oncall": oncall, "support_url": support_url, "notes": notes})),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
