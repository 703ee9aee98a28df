//! Gateway keys: team leads create them for their team (optionally bound to a
//! workspace); the value is shown once and stored as a SHA-256 hash; they can
//! be revoked and show when they were last used.

pub use paved_shared::budgets::GatewayKeyInfo;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use paved_store::{gateway_keys, Db};
use rand::RngCore;
use secrecy::SecretString;
use serde_json::json;

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
    db: impl Into<Db<'_>>,
    caller: &Principal,
    team: &str,
    name: &str,
    workspace: Option<&str>,
) -> Result<NewGatewayKey, CoreError> {
    let db = db.into();
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
    super::require_team(db, team).await?;
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    let value = format!("{GATEWAY_KEY_PREFIX}{}", hex::encode(bytes));
    let hash = hash_token(&value);
    let prefix: String = value.chars().take(GATEWAY_KEY_PREFIX.len() + 6).collect();
    let actor = caller.actor();
    let now = now_unix();
    let mut tx = db.begin().await?;
    let id = gateway_keys::insert(
        tx.conn(),
        gateway_keys::NewKey {
            team,
            workspace: workspace.as_deref(),
            name,
            hash: &hash,
            prefix: &prefix,
            created_by: &actor,
            created_at: now,
        },
    )
    .await?;
    audit::record(
        tx.conn(),
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
    db: impl Into<Db<'_>>,
    caller: &Principal,
    team: &str,
) -> Result<Vec<GatewayKeyInfo>, CoreError> {
    authorize(caller, Action::ViewTeam(team))?;
    Ok(gateway_keys::list(db.into(), team).await?)
}

/// Revokes a key (leads and admins) and answers its hash. This process
/// refuses it at once; other processes when they hear of it
/// ([`crate::budgets::revoke_key`] tells them) or, at the latest, once their
/// cached entry is older than [`KEY_CACHE_TTL_MS`].
pub async fn revoke(
    db: impl Into<Db<'_>>,
    cache: &KeyCache,
    caller: &Principal,
    team: &str,
    id: i64,
) -> Result<String, CoreError> {
    authorize(caller, Action::LeadTeam(team))?;
    let now = now_unix();
    let mut tx = db.into().begin().await?;
    let (key_hash, revoked_at) = gateway_keys::find_for_update(tx.conn(), id, team)
        .await?
        .ok_or_else(|| CoreError::NotFound(format!("gateway key {id} of team {team}")))?;
    if revoked_at.is_none() {
        gateway_keys::revoke(tx.conn(), id, now).await?;
        audit::record(
            tx.conn(),
            &caller.actor(),
            "gateway_key.revoke",
            &format!("team:{team}/gateway-key:{id}"),
            None,
            None,
        )
        .await?;
    }
    tx.commit().await?;
    cache.forget(&key_hash);
    Ok(key_hash)
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

/// How long a looked-up key is trusted before it is read again: a key
/// revoked by another process (a replica) is refused here within a second.
pub const KEY_CACHE_TTL_MS: i64 = 1_000;

impl KeyCache {
    /// Drops the key with this hash (revoked here or by another replica).
    pub fn forget(&self, hash: &str) {
        self.by_hash
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(hash);
    }

    /// Drops every key (changes may have been missed).
    pub fn clear(&self) {
        self.by_hash
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
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
        db: impl Into<Db<'_>>,
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
        let found = gateway_keys::active_by_hash(db.into(), &hash)
            .await?
            .map(|k| KeyIdentity {
                id: k.id,
                name: k.name,
                team: k.team,
                workspace: k.workspace_id.unwrap_or_default(),
            });
        let mut map = self.by_hash.write().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            map.clear();
        }
        map.insert(hash, (found.clone(), now_ms));
        Ok(found)
    }
}
