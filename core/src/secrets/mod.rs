//! Vault secret provisioning: write-only secrets per team and service, the
//! least-privilege ACL policy and Kubernetes auth role each service's
//! workloads log in with, and the Vault Agent Injector annotations that use them.
//!
//! Values pass through [`SecretValues`] straight to Vault's KV v2 engine; the
//! database keeps metadata only (path, version, who, when), and no type that
//! holds a value can be serialized or debug-printed.

pub mod naming;
pub mod store;
pub mod vault;

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};

use crate::auth::{authorize, Action, Principal};
use crate::{CoreError, CoreState};
use naming::{AccessScope, Holder, SecretTarget};
use vault::{Vault, VaultError};

pub use naming::{annotations_yaml, injector_annotations, WorkloadIdentity};

/// Most keys one secret may hold.
pub const MAX_KEYS: usize = 50;
/// Largest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// The key/value pairs of one secret version. Not `Serialize`, and its
/// `Debug` shows key names only.
pub struct SecretValues(BTreeMap<String, SecretString>);

impl std::fmt::Debug for SecretValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretValues")
            .field("keys", &self.0.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl SecretValues {
    /// Validates key names (environment-variable style) and sizes.
    pub fn from_pairs(
        pairs: impl IntoIterator<Item = (String, SecretString)>,
    ) -> Result<Self, CoreError> {
        let mut map = BTreeMap::new();
        for (key, value) in pairs {
            let key = key.trim().to_owned();
            if key.is_empty() && value.expose_secret().is_empty() {
                continue; // an untouched blank row in a form
            }
            if paved_shared::forms::secret_key_problem(&key).is_some() {
                return Err(CoreError::Invalid {
                    field: "keys",
                    message: format!(
                        "`{}` is not a key name: use letters, digits and _ (not starting with a digit), e.g. DATABASE_URL",
                        key.chars().take(40).collect::<String>()
                    ),
                });
            }
            if value.expose_secret().is_empty() {
                return Err(CoreError::Invalid {
                    field: "values",
                    message: format!("{key} has no value"),
                });
            }
            if value.expose_secret().len() > MAX_VALUE_BYTES {
                return Err(CoreError::Invalid {
                    field: "values",
                    message: format!("{key} is longer than 64 KiB"),
                });
            }
            if map.insert(key.clone(), value).is_some() {
                return Err(CoreError::Invalid {
                    field: "keys",
                    message: format!("{key} appears twice"),
                });
            }
        }
        if map.is_empty() {
            return Err(CoreError::Invalid {
                field: "keys",
                message: "add at least one key and value".into(),
            });
        }
        if map.len() > MAX_KEYS {
            return Err(CoreError::Invalid {
                field: "keys",
                message: format!("a secret holds at most {MAX_KEYS} keys"),
            });
        }
        Ok(Self(map))
    }

    /// The key names, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// The JSON body for Vault, built only at the moment of writing.
    fn to_vault_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::from(v.expose_secret())))
                .collect(),
        )
    }
}

pub use paved_shared::secrets::{
    AccessView, HolderSecrets, SecretDetail, SecretSummary, SecretVersion, SecretsPanelData,
    StepOutcome, StepState, WriteOutcome,
};

fn vault(state: &CoreState) -> Result<&std::sync::Arc<Vault>, CoreError> {
    state.vault.as_ref().ok_or_else(|| {
        CoreError::Unavailable(
            "Vault is not configured for this portal (set PAVED_VAULT_ADDR); ask your platform team.".into(),
        )
    })
}

/// Refuses early, before anything is written, when Vault is known to be down.
fn ensure_usable(vault: &Vault) -> Result<(), CoreError> {
    let status = vault.status();
    if status.state.is_down() {
        return Err(CoreError::Unavailable(format!(
            "{} Nothing was changed; try again once it is back.",
            status.detail
        )));
    }
    Ok(())
}

/// Maps a Vault failure during `doing` to a domain error with a clear message.
fn vault_failure(doing: &str, err: VaultError) -> CoreError {
    tracing::warn!(error = %err, "Vault call failed while {doing}");
    match err {
        VaultError::Unreachable(_) | VaultError::Sealed => {
            CoreError::Unavailable(format!("{err} while {doing}."))
        }
        VaultError::CasMismatch => CoreError::Conflict(
            "Someone saved a newer version of this secret since you opened it. Reload to see the current version, then rotate again.".into(),
        ),
        VaultError::NotFound(_) => CoreError::NotFound("secret".into()),
        other => CoreError::Upstream(format!("{other} while {doing}.")),
    }
}

fn kv_data_path(vault: &Vault, target: &SecretTarget) -> String {
    format!(
        "{}/data/{}",
        vault.config().kv_mount,
        target.relative_path(&vault.config().prefix)
    )
}

fn authorize_write(principal: &Principal, target: &SecretTarget) -> Result<(), CoreError> {
    let action = match target.holder {
        Holder::LlmKeys => Action::LeadTeam(&target.team),
        _ => Action::ActInTeam(&target.team),
    };
    Ok(authorize(principal, action)?)
}

/// The Kubernetes identity of a service owned by `team`; 404 when the catalog
/// has no such Component owned by that team.
pub async fn workload_identity(
    state: &CoreState,
    team: &str,
    service: &str,
) -> Result<WorkloadIdentity, CoreError> {
    match store::workload(&state.db, team, service).await? {
        Some((namespace, service_account)) => {
            // Where kube:apply deployed it wins over the annotation.
            let placed = crate::kube::workload_placement(state, team, service).await?;
            Ok(match placed {
                Some((namespace, auth_mount)) => WorkloadIdentity {
                    namespace,
                    service_account,
                    auth_mount,
                },
                None => WorkloadIdentity {
                    namespace,
                    service_account,
                    auth_mount: None,
                },
            })
        }
        None => Err(CoreError::NotFound(format!(
            "Component {service} owned by team {team}"
        ))),
    }
}

/// Creates a secret or rotates it to a new version, then converges its
/// scope's policy and role. `expected_version` is check-and-set: `Some(0)`
/// creates only, `Some(n)` rotates only if version `n` is still current,
/// `None` writes over whatever is current.
pub async fn write(
    state: &CoreState,
    principal: &Principal,
    target: &SecretTarget,
    values: SecretValues,
    expected_version: Option<i64>,
) -> Result<WriteOutcome, CoreError> {
    authorize_write(principal, target)?;
    let vault = vault(state)?;
    let workload = match &target.holder {
        Holder::Service(service) => Some(workload_identity(state, &target.team, service).await?),
        _ => None,
    };
    ensure_usable(vault)?;
    let config = vault.config();
    let relative = target.relative_path(&config.prefix);
    let path = kv_data_path(vault, target);

    let cas = match expected_version {
        Some(v) if v < 0 => {
            return Err(CoreError::Invalid {
                field: "expected_version",
                message: "must be 0 (create) or the version you are replacing".into(),
            })
        }
        Some(v) => v,
        None => current_vault_version(vault, target).await?,
    };
    let request = vaultrs::api::kv2::requests::SetSecretRequest {
        mount: config.kv_mount.clone(),
        path: relative,
        data: values.to_vault_json(),
        options: Some(vaultrs::api::kv2::requests::SetSecretRequestOptions { cas: cas as u32 }),
    };
    let written = vault.call(request).await;
    drop(values);
    let written = match written {
        Ok(w) => w,
        Err(VaultError::CasMismatch) if cas == 0 => {
            return Err(CoreError::Conflict(format!(
                "A secret named {} already exists here; rotate it instead.",
                target.name
            )))
        }
        Err(err) => return Err(vault_failure("writing the secret", err)),
    };
    let version = written
        .data
        .as_ref()
        .map(|d| d.version as i64)
        .unwrap_or(cas + 1);
    let created = version == 1 || cas == 0;
    let actor = principal.actor();
    store::record_version(
        &state.db,
        target,
        version,
        &actor,
        written.request_id.as_deref(),
        store::AuditNote {
            action: if created {
                "secret.create"
            } else {
                "secret.rotate"
            },
            target: &path,
            after: serde_json::json!({
                "version": version,
                "vault_request_id": written.request_id,
                "paved_request_id": written.correlation_id,
            }),
        },
    )
    .await?;

    let mut steps = vec![StepOutcome {
        step: "secret".into(),
        label: "Write the secret to Vault".into(),
        state: StepState::Done,
        detail: format!("version {version} at {path}"),
    }];
    let access = match AccessScope::of(target) {
        Some(scope) => {
            let (access_steps, view) =
                converge(state, vault, &actor, &scope, workload.as_ref()).await?;
            steps.extend(access_steps);
            Some(view)
        }
        None => None,
    };
    let row = store::find(&state.db, target)
        .await?
        .ok_or_else(|| CoreError::NotFound("secret".into()))?;
    Ok(WriteOutcome {
        created,
        secret: summary(vault, row),
        steps,
        access,
        vault_request_id: written.request_id,
    })
}

async fn current_vault_version(vault: &Vault, target: &SecretTarget) -> Result<i64, CoreError> {
    let config = vault.config();
    let request = vaultrs::api::kv2::requests::ReadSecretMetadataRequest {
        mount: config.kv_mount.clone(),
        path: target.relative_path(&config.prefix),
    };
    match vault.call(request).await {
        Ok(answer) => Ok(answer.data.map(|m| m.current_version as i64).unwrap_or(0)),
        Err(VaultError::NotFound(_)) => Ok(0),
        Err(err) => Err(vault_failure("reading the secret's current version", err)),
    }
}

/// Re-runs the policy and role steps for a service (or the team scope), e.g.
/// after a failure part-way. Idempotent.
pub async fn reconverge(
    state: &CoreState,
    principal: &Principal,
    team: &str,
    holder: &Holder,
) -> Result<(Vec<StepOutcome>, AccessView), CoreError> {
    authorize(principal, Action::ActInTeam(team))?;
    let vault = vault(state)?;
    let scope = AccessScope {
        team: team.to_owned(),
        holder: holder.clone(),
    };
    let workload = match holder {
        Holder::Service(service) => Some(workload_identity(state, team, service).await?),
        Holder::Team => None,
        Holder::LlmKeys => {
            return Err(CoreError::Invalid {
                field: "service",
                message: "LLM provider keys have no workload access to provision".into(),
            })
        }
    };
    ensure_usable(vault)?;
    converge(state, vault, &principal.actor(), &scope, workload.as_ref()).await
}

/// Writes the scope's ACL policy and (for services) its Kubernetes role,
/// records how each went, and returns the steps and the resulting view.
async fn converge(
    state: &CoreState,
    vault: &Vault,
    actor: &str,
    scope: &AccessScope,
    workload: Option<&WorkloadIdentity>,
) -> Result<(Vec<StepOutcome>, AccessView), CoreError> {
    let config = vault.config();
    let holder = scope.holder.segment().to_owned();
    let previous = store::access(&state.db, &scope.team, &holder).await?;
    let now = crate::now_unix();
    let mut row = store::AccessRow {
        policy_name: scope.policy_name(),
        role_name: scope.role_name(),
        namespace: workload.map(|w| w.namespace.clone()),
        service_account: workload.map(|w| w.service_account.clone()),
        policy_synced_at: None,
        role_synced_at: None,
        last_attempt_at: now,
        last_error: None,
    };
    // Earlier successes count only if they wrote what is wanted now.
    if let Some(prev) = &previous {
        if prev.policy_name == row.policy_name {
            row.policy_synced_at = prev.policy_synced_at;
        }
        if prev.role_name == row.role_name
            && prev.namespace == row.namespace
            && prev.service_account == row.service_account
        {
            row.role_synced_at = prev.role_synced_at;
        }
    }
    let mut steps = Vec::new();
    let mut errors = Vec::new();
    let mut request_ids = serde_json::Map::new();

    let policy = vaultrs::api::sys::requests::CreatePolicyRequest {
        name: row.policy_name.clone(),
        policy: scope.policy_hcl(config),
    };
    match vault.call(policy).await {
        Ok(answer) => {
            row.policy_synced_at = Some(now);
            request_ids.insert("policy".into(), answer.correlation_id.into());
            steps.push(StepOutcome {
                step: "policy".into(),
                label: "Write the read-only Vault policy".into(),
                state: StepState::Done,
                detail: format!("policy {}", row.policy_name),
            });
        }
        Err(err) => {
            let message = format!("policy {} not written: {err}", row.policy_name);
            errors.push(message.clone());
            steps.push(StepOutcome {
                step: "policy".into(),
                label: "Write the read-only Vault policy".into(),
                state: StepState::Failed,
                detail: message,
            });
        }
    }

    match (&row.role_name, workload) {
        (Some(role), Some(workload)) => {
            let team_policy = AccessScope {
                team: scope.team.clone(),
                holder: Holder::Team,
            }
            .policy_name();
            let request = vaultrs::api::auth::kubernetes::requests::CreateKubernetesRoleRequest {
                mount: workload
                    .auth_mount
                    .clone()
                    .unwrap_or_else(|| config.workload_auth_mount.clone()),
                name: role.clone(),
                bound_service_account_names: vec![workload.service_account.clone()],
                bound_service_account_namespaces: vec![workload.namespace.clone()],
                token_policies: Some(vec![row.policy_name.clone(), team_policy]),
                token_ttl: Some(config.workload_token_ttl.clone()),
                token_max_ttl: Some(config.workload_token_ttl.clone()),
                ..Default::default()
            };
            match vault.call(request).await {
                Ok(answer) => {
                    row.role_synced_at = Some(now);
                    request_ids.insert("role".into(), answer.correlation_id.into());
                    steps.push(StepOutcome {
                        step: "role".into(),
                        label: "Bind the Kubernetes service account to the policy".into(),
                        state: StepState::Done,
                        detail: format!(
                            "role {role} for {}/{} at auth/{}",
                            workload.namespace,
                            workload.service_account,
                            workload
                                .auth_mount
                                .as_deref()
                                .unwrap_or(&config.workload_auth_mount)
                        ),
                    });
                }
                Err(err) => {
                    let message = match &err {
                        VaultError::NotFound(_) | VaultError::Rejected { status: 400 | 404, .. } => format!(
                            "role {role} not written: Kubernetes auth is not enabled at auth/{} in Vault; ask a Vault admin to enable and configure it",
                            config.workload_auth_mount
                        ),
                        _ => format!("role {role} not written: {err}"),
                    };
                    errors.push(message.clone());
                    steps.push(StepOutcome {
                        step: "role".into(),
                        label: "Bind the Kubernetes service account to the policy".into(),
                        state: StepState::Failed,
                        detail: message,
                    });
                }
            }
        }
        _ => steps.push(StepOutcome {
            step: "role".into(),
            label: "Bind the Kubernetes service account to the policy".into(),
            state: StepState::Skipped,
            detail: "team-wide secrets are read through each service's role".into(),
        }),
    }

    row.last_error = (!errors.is_empty()).then(|| errors.join("; "));
    store::save_access(&state.db, &scope.team, &holder, &row).await?;
    // The Vault injection policy now requires this service's annotations.
    if let Err(e) = state.policies.refresh_parameters(&state.db).await {
        tracing::warn!(error = %e, "the policies' service list could not be refreshed");
    }
    crate::changes::publish(state, crate::changes::Change::Policies).await;
    crate::audit::record(
        &mut *state.db.acquire().await?,
        actor,
        "secret.access",
        &format!("{}/{}", scope.team, holder),
        None,
        Some(serde_json::json!({
            "policy": row.policy_name,
            "role": row.role_name,
            "namespace": row.namespace,
            "service_account": row.service_account,
            "steps": steps.iter().map(|s| serde_json::json!({"step": s.step, "state": s.state})).collect::<Vec<_>>(),
            "paved_request_ids": request_ids,
        })),
    )
    .await?;
    let names: Vec<String> = store::list(&state.db, &scope.team, &holder)
        .await?
        .into_iter()
        .map(|r| r.name)
        .collect();
    Ok((steps, access_view(vault, scope, &row, &names)))
}

fn access_view(
    vault: &Vault,
    scope: &AccessScope,
    row: &store::AccessRow,
    secret_names: &[String],
) -> AccessView {
    let annotations = injector_annotations(vault.config(), scope, secret_names);
    let complete = row.policy_synced_at.is_some()
        && (row.role_name.is_none() || row.role_synced_at.is_some())
        && row.last_error.is_none();
    AccessView {
        policy_name: row.policy_name.clone(),
        role_name: row.role_name.clone(),
        namespace: row.namespace.clone(),
        service_account: row.service_account.clone(),
        policy_synced_at: row.policy_synced_at,
        role_synced_at: row.role_synced_at,
        last_error: row.last_error.clone(),
        complete,
        annotations_yaml: if annotations.is_empty() {
            String::new()
        } else {
            annotations_yaml(&annotations)
        },
        annotations,
    }
}

fn summary(vault: &Vault, row: store::SecretRow) -> SecretSummary {
    let target = SecretTarget {
        team: row.team.clone(),
        holder: Holder::from_segment(&row.holder),
        name: row.name.clone(),
    };
    SecretSummary {
        path: kv_data_path(vault, &target),
        team: row.team,
        holder: row.holder,
        name: row.name,
        current_version: row.current_version,
        updated_at: row.updated_at,
        updated_by: row.updated_by,
    }
}

/// The secrets of a service (or the team as a whole, or its LLM keys) with
/// their access state. Members of the team and platform admins only.
pub async fn list(
    state: &CoreState,
    principal: &Principal,
    team: &str,
    holder: &Holder,
) -> Result<HolderSecrets, CoreError> {
    authorize(principal, Action::ActInTeam(team))?;
    let vault = vault(state)?;
    holder_secrets(state, vault, team, holder).await
}

async fn holder_secrets(
    state: &CoreState,
    vault: &Vault,
    team: &str,
    holder: &Holder,
) -> Result<HolderSecrets, CoreError> {
    let segment = holder.segment();
    let rows = store::list(&state.db, team, segment).await?;
    let names: Vec<String> = rows.iter().map(|r| r.name.clone()).collect();
    let access = store::access(&state.db, team, segment).await?.map(|row| {
        let scope = AccessScope {
            team: team.to_owned(),
            holder: holder.clone(),
        };
        access_view(vault, &scope, &row, &names)
    });
    Ok(HolderSecrets {
        team: team.to_owned(),
        holder: segment.to_owned(),
        secrets: rows.into_iter().map(|r| summary(vault, r)).collect(),
        access,
    })
}

/// Every secret of a team, grouped by holder (team-wide first). Members and admins.
pub async fn team_secrets(
    state: &CoreState,
    principal: &Principal,
    team: &str,
) -> Result<Vec<HolderSecrets>, CoreError> {
    authorize(principal, Action::ActInTeam(team))?;
    let vault = vault(state)?;
    let mut holders: Vec<String> = store::list_team(&state.db, team)
        .await?
        .into_iter()
        .map(|r| r.holder)
        .collect();
    holders.dedup();
    let mut out = Vec::new();
    for holder in holders {
        out.push(holder_secrets(state, vault, team, &Holder::from_segment(&holder)).await?);
    }
    out.sort_by_key(|h| (h.holder != naming::TEAM_SEGMENT, h.holder.clone()));
    Ok(out)
}

/// A secret's versions: Vault's metadata (created, deleted, destroyed)
/// merged with who wrote each through Paved. Never values.
pub async fn detail(
    state: &CoreState,
    principal: &Principal,
    target: &SecretTarget,
) -> Result<SecretDetail, CoreError> {
    authorize(principal, Action::ActInTeam(&target.team))?;
    let vault = vault(state)?;
    let row = store::find(&state.db, target)
        .await?
        .ok_or_else(|| CoreError::NotFound(format!("secret {}", target.name)))?;
    let recorded = store::versions(&state.db, row.id).await?;
    let config = vault.config();
    let request = vaultrs::api::kv2::requests::ReadSecretMetadataRequest {
        mount: config.kv_mount.clone(),
        path: target.relative_path(&config.prefix),
    };
    let from_vault = vault.call(request).await;
    let (versions, from_vault) = match from_vault {
        Ok(answer) => {
            let metadata = answer.data.map(|m| m.versions).unwrap_or_default();
            let mut versions: Vec<SecretVersion> = metadata
                .into_iter()
                .filter_map(|(number, meta)| {
                    let version: i64 = number.parse().ok()?;
                    let mine = recorded.iter().find(|r| r.version == version);
                    Some(SecretVersion {
                        version,
                        created_at: meta.created_time,
                        created_by: mine.map(|r| r.created_by.clone()),
                        deleted_at: Some(meta.deletion_time).filter(|t| !t.is_empty()),
                        destroyed: meta.destroyed,
                        vault_request_id: mine.and_then(|r| r.vault_request_id.clone()),
                    })
                })
                .collect();
            versions.sort_by_key(|v| std::cmp::Reverse(v.version));
            (versions, true)
        }
        Err(VaultError::NotFound(_)) => (Vec::new(), true),
        Err(err) => {
            tracing::warn!(error = %err, "cannot read secret metadata; showing Paved's records");
            let versions = recorded
                .iter()
                .map(|r| SecretVersion {
                    version: r.version,
                    created_at: time::OffsetDateTime::from_unix_timestamp(r.created_at)
                        .ok()
                        .and_then(|t| {
                            t.format(&time::format_description::well_known::Rfc3339)
                                .ok()
                        })
                        .unwrap_or_default(),
                    created_by: Some(r.created_by.clone()),
                    deleted_at: None,
                    destroyed: false,
                    vault_request_id: r.vault_request_id.clone(),
                })
                .collect();
            (versions, false)
        }
    };
    Ok(SecretDetail {
        summary: summary(vault, row),
        versions,
        from_vault,
    })
}

/// What the secrets panel of a service or team (`holder` is its path
/// segment) shows `principal`: members of the team and platform admins.
pub async fn panel(
    state: &CoreState,
    principal: &Principal,
    team: &str,
    holder: &str,
) -> Result<SecretsPanelData, CoreError> {
    authorize(principal, Action::ActInTeam(team))?;
    let Some(vault) = state.vault.as_ref() else {
        return Ok(SecretsPanelData {
            team: team.to_owned(),
            holder: holder.to_owned(),
            secrets: Vec::new(),
            access: None,
            can_write: false,
            can_destroy: false,
            vault_notice: None,
            configured: false,
        });
    };
    let holder_segment = holder.to_ascii_lowercase();
    let listed = list(
        state,
        principal,
        team,
        &Holder::from_segment(&holder_segment),
    )
    .await?;
    let status = vault.status();
    let lead = authorize(principal, Action::LeadTeam(team)).is_ok();
    Ok(SecretsPanelData {
        team: listed.team,
        can_write: holder_segment != naming::LLM_SEGMENT || lead,
        can_destroy: lead,
        holder: listed.holder,
        secrets: listed.secrets,
        access: listed.access,
        vault_notice: status.state.is_down().then_some(status.detail),
        configured: true,
    })
}

/// Soft-deletes one version (Vault can undelete it). Leads and admins only.
pub async fn delete_version(
    state: &CoreState,
    principal: &Principal,
    target: &SecretTarget,
    version: i64,
) -> Result<(), CoreError> {
    authorize(principal, Action::LeadTeam(&target.team))?;
    let vault = vault(state)?;
    store::find(&state.db, target)
        .await?
        .ok_or_else(|| CoreError::NotFound(format!("secret {}", target.name)))?;
    if version < 1 {
        return Err(CoreError::Invalid {
            field: "version",
            message: "must be a version number".into(),
        });
    }
    ensure_usable(vault)?;
    let config = vault.config();
    let request = vaultrs::api::kv2::requests::DeleteSecretVersionsRequest {
        mount: config.kv_mount.clone(),
        path: target.relative_path(&config.prefix),
        versions: vec![version as u64],
    };
    let answer = vault
        .call(request)
        .await
        .map_err(|e| vault_failure("deleting the version", e))?;
    crate::audit::record(
        &mut *state.db.acquire().await?,
        &principal.actor(),
        "secret.delete_version",
        &kv_data_path(vault, target),
        None,
        Some(serde_json::json!({
            "version": version,
            "vault_request_id": answer.request_id,
            "paved_request_id": answer.correlation_id,
        })),
    )
    .await
}

/// Destroys every version and the metadata of a secret. Leads and admins
/// only; `confirmation` must repeat the secret's name.
pub async fn destroy(
    state: &CoreState,
    principal: &Principal,
    target: &SecretTarget,
    confirmation: &str,
) -> Result<(), CoreError> {
    authorize(principal, Action::LeadTeam(&target.team))?;
    let vault = vault(state)?;
    let row = store::find(&state.db, target)
        .await?
        .ok_or_else(|| CoreError::NotFound(format!("secret {}", target.name)))?;
    if confirmation.trim() != target.name {
        return Err(CoreError::Invalid {
            field: "confirmation",
            message: format!("type the secret's name, {}, to destroy it", target.name),
        });
    }
    ensure_usable(vault)?;
    let config = vault.config();
    let request = vaultrs::api::kv2::requests::DeleteSecretMetadataRequest {
        mount: config.kv_mount.clone(),
        path: target.relative_path(&config.prefix),
    };
    let answer = match vault.call(request).await {
        Ok(answer) => Some(answer),
        Err(VaultError::NotFound(_)) => None,
        Err(err) => return Err(vault_failure("destroying the secret", err)),
    };
    store::remove(
        &state.db,
        target,
        &principal.actor(),
        &kv_data_path(vault, target),
        serde_json::json!({
            "current_version": row.current_version,
            "paved_request_id": answer.as_ref().map(|a| a.correlation_id.clone()),
        }),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> SecretString {
        SecretString::from(v.to_owned())
    }

    #[test]
    fn values_validate_keys_and_never_print() {
        let values = SecretValues::from_pairs([
            ("DATABASE_URL".to_owned(), s("postgres://u:hunter2@db/x")),
            ("".to_owned(), s("")),
        ])
        .unwrap();
        assert_eq!(values.keys().collect::<Vec<_>>(), ["DATABASE_URL"]);
        let printed = format!("{values:?}");
        assert!(printed.contains("DATABASE_URL"));
        assert!(!printed.contains("hunter2"));

        for pairs in [
            vec![],
            vec![("1ABC".to_owned(), s("x"))],
            vec![("A-B".to_owned(), s("x"))],
            vec![("A".to_owned(), s(""))],
            vec![("A".to_owned(), s("x")), ("A".to_owned(), s("y"))],
            vec![("A".to_owned(), s(&"x".repeat(MAX_VALUE_BYTES + 1)))],
        ] {
            let err = SecretValues::from_pairs(pairs).unwrap_err();
            assert_eq!(err.status_code(), 422);
            assert!(!err.to_string().contains("xxxx"));
        }
    }
}
