//! Gateway keys: team leads create them for their team (optionally bound to a
//! workspace); the value is shown once and stored as a SHA-256 hash; they can
//! be revoked and show when they were last used.

pub use paved_shared::budgets::GatewayKeyInfo;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rand::RngCore;
use secrecy::SecretString;
use serde_json::json;
use sqlx::SqlitePool;

use crate::auth::{authorize, Action, Principal};
use crate::tokens::hash_token;
use crate::{audit, now_unix, CoreError};

/// Every gateway key starts with this, so secret scanners can spot leaks.
pub const GATEWAY_KEY_PREFIX: &str = "pvg_";

/// A key just created: the value is returned only here, once.
pub struct NewGatewayKey {
    /// Row id.
    pub id: i64,
    /// The key (show once).
    pub value: SecretString,
    /// Its listing.
    pub info: GatewayKeyInfo,
}

/// Creates a key for `team` (leads and admins).
pub async fn create(
    pool: &SqlitePool,
    caller: &Principal,
    team: &str,
    name: &str,
    workspace: Option<&str>,
) -> Result<NewGatewayKey, CoreError> {
    authorize(caller, Action::LeadTeam(team))?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 80 {
        return Err(CoreError::Invalid {
            field: "name",
            message: "must be 1–80 characters".into(),
        });
    }
    let workspace = workspace
        .filter(|w| !w.is_empty())
        .map(super::validate_workspace)
        .transpose()?;
    super::require_team(pool, team).await?;
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    let value = format!("{GATEWAY_KEY_PREFIX}{}", hex::encode(bytes));
    let hash = hash_token(&value);
    let prefix: String = value.chars().take(GATEWAY_KEY_PREFIX.len() + 6).collect();
    let actor = caller.actor();
    let now = now_unix();
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let id = sqlx::query_scalar!(
        r#"INSERT INTO llm_gateway_keys (team, workspace_id, name, key_hash, key_prefix, created_by, created_at)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id AS "id!: i64""#,
        team,
        workspace,
        name,
        hash,
        prefix,
        actor,
        now
    )
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        &actor,
        "gateway_key.create",
        &format!("team:{team}/gateway-key:{id}"),
        None,
        Some(json!({"name": name, "workspace_id": workspace, "prefix": prefix})),
    )
    .await?;
    tx.commit().await?;
    Ok(NewGatewayKey {
        id,
        value: SecretString::from(value),
        info: GatewayKeyInfo {
            id,
            team: team.to_owned(),
            workspace_id: workspace,
            name: name.to_owned(),
            prefix,
            created_by: actor,
            created_at: now,
            last_used_at: None,
            revoked_at: None,
        },
    })
}

/// The team's keys, newest first (members may look).
pub async fn list(
    pool: &SqlitePool,
    caller: &Principal,
    team: &str,
) -> Result<Vec<GatewayKeyInfo>, CoreError> {
    authorize(caller, Action::ViewTeam(team))?;
    Ok(sqlx::query_as!(
        GatewayKeyInfo,
        r#"SELECT id AS "id!: i64", team, workspace_id, name, key_prefix AS prefix, created_by, created_at, last_used_at, revoked_at
           FROM llm_gateway_keys WHERE team = ?1 ORDER BY created_at DESC, id DESC"#,
        team
    )
    .fetch_all(pool)
    .await?)
}

/// Revokes a key (leads and admins). The gateway refuses it at once.
pub async fn revoke(
    pool: &SqlitePool,
    cache: &KeyCache,
    caller: &Principal,
    team: &str,
    id: i64,
) -> Result<(), CoreError> {
    authorize(caller, Action::LeadTeam(team))?;
    let now = now_unix();
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let row = sqlx::query!(
        "SELECT key_hash, revoked_at FROM llm_gateway_keys WHERE id = ?1 AND team = ?2",
        id,
        team
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| CoreError::NotFound(format!("gateway key {id} of team {team}")))?;
    if row.revoked_at.is_none() {
        sqlx::query!(
            "UPDATE llm_gateway_keys SET revoked_at = ?2 WHERE id = ?1",
            id,
            now
        )
        .execute(&mut *tx)
        .await?;
        audit::record(
            &mut *tx,
            &caller.actor(),
            "gateway_key.revoke",
            &format!("team:{team}/gateway-key:{id}"),
            None,
            None,
        )
        .await?;
    }
    tx.commit().await?;
    cache.forget(&row.key_hash);
    Ok(())
}

/// Who a gateway key spends for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyIdentity {
    /// The key's id.
    pub id: i64,
    /// Its name (the caller in usage reports).
    pub name: String,
    /// The team that pays.
    pub team: String,
    /// The workspace, `""` if none.
    pub workspace: String,
}

/// Active keys by hash, read through from SQLite. Revoking in this process
/// drops the entry at once; entries are re-read after [`KEY_CACHE_TTL_MS`]
/// so a revocation elsewhere takes effect too.
#[derive(Debug, Clone, Default)]
pub struct KeyCache {
    by_hash: Arc<RwLock<HashMap<String, CachedKey>>>,
    /// The last minute each key's use was written, per key id.
    noted: Arc<RwLock<HashMap<i64, i64>>>,
}

/// A looked-up key (or its absence) and when it was read (unix ms).
type CachedKey = (Option<KeyIdentity>, i64);

/// How long a looked-up key is trusted before it is read again.
pub const KEY_CACHE_TTL_MS: i64 = 5_000;

impl KeyCache {
    fn forget(&self, hash: &str) {
        self.by_hash
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(hash);
    }

    /// Whether `minute` is a new last-used minute for key `id` (then it
    /// should be written); false when it was already noted.
    pub fn note_use(&self, id: i64, minute: i64) -> bool {
        let mut noted = self.noted.write().unwrap_or_else(|e| e.into_inner());
        match noted.get(&id) {
            Some(m) if *m >= minute => false,
            _ => {
                noted.insert(id, minute);
                true
            }
        }
    }

    /// The key's identity, or `None` when unknown or revoked.
    pub async fn authenticate(
        &self,
        pool: &SqlitePool,
        presented: &str,
        now_ms: i64,
    ) -> Result<Option<KeyIdentity>, CoreError> {
        if !presented.starts_with(GATEWAY_KEY_PREFIX) {
            return Ok(None);
        }
        let hash = hash_token(presented);
        if let Some((found, at)) = self
            .by_hash
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&hash)
        {
            if now_ms - at < KEY_CACHE_TTL_MS {
                return Ok(found.clone());
            }
        }
        let found = sqlx::query!(
            r#"SELECT id AS "id!: i64", name, team, workspace_id FROM llm_gateway_keys WHERE key_hash = ?1 AND revoked_at IS NULL"#,
            hash
        )
        .fetch_optional(pool)
        .await?
        .map(|r| KeyIdentity {
            id: r.id,
            name: r.name,
            team: r.team,
            workspace: r.workspace_id.unwrap_or_default(),
        });
        let mut map = self.by_hash.write().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            map.clear();
        }
        map.insert(hash, (found.clone(), now_ms));
        Ok(found)
    }
}
