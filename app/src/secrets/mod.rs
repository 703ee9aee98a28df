//! The secrets feature in the UI: wire types and server functions. The
//! panel (an island) is in `panel.rs`. Values travel browser → server once,
//! inside [`SecretPairs`], and never come back.

pub mod panel;

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

use crate::api::{authorize, Action};
use crate::error::AppError;

/// The holder segment of a team's shared secrets.
pub const TEAM_HOLDER: &str = "_team";
/// The holder segment of a team's LLM provider keys.
pub const LLM_HOLDER: &str = "_llm";
/// The fixed name of a team's LLM provider keys.
pub const LLM_KEYS_NAME: &str = "provider-keys";

/// Key/value pairs typed into a secret form. Its `Debug` never shows values,
/// and on the server it cannot be serialized back out: the browser build
/// serializes it (to send it), the server build only reads it.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
pub struct SecretPairs(pub Vec<(String, String)>);

impl std::fmt::Debug for SecretPairs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| (k, "[redacted]")))
            .finish()
    }
}

impl Serialize for SecretPairs {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[cfg(not(feature = "ssr"))]
        {
            self.0.serialize(serializer)
        }
        #[cfg(feature = "ssr")]
        {
            // The server never sends values anywhere.
            let redacted: Vec<(&str, &str)> = self
                .0
                .iter()
                .map(|(k, _)| (k.as_str(), "[redacted]"))
                .collect();
            redacted.serialize(serializer)
        }
    }
}

/// One secret in a list (never its values).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRowView {
    /// The secret's name.
    pub name: String,
    /// The KV v2 data path.
    pub path: String,
    /// The current version.
    pub version: i64,
    /// Unix seconds of the last write.
    pub updated_at: i64,
    /// Who wrote it last.
    pub updated_by: String,
}

/// What workloads need, and whether it is in place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessInfo {
    /// The ACL policy.
    pub policy: String,
    /// The Kubernetes auth role, for services.
    pub role: Option<String>,
    /// `namespace/service-account`, for services.
    pub workload: Option<String>,
    /// Everything written.
    pub complete: bool,
    /// Why the last run failed.
    pub last_error: Option<String>,
    /// The injector annotations as YAML.
    pub annotations_yaml: String,
}

/// One provisioning step's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepView {
    /// What the step does.
    pub label: String,
    /// `done`, `failed` or `skipped`.
    pub state: String,
    /// Detail.
    pub detail: String,
}

/// One version's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionView {
    /// Version number.
    pub version: i64,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// Who wrote it through Paved.
    pub created_by: Option<String>,
    /// When it was deleted, if it was.
    pub deleted_at: Option<String>,
    /// Destroyed for good.
    pub destroyed: bool,
}

/// Everything the secrets panel of a service or team shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretsPanelData {
    /// The team.
    pub team: String,
    /// The service name, `_team` or `_llm`.
    pub holder: String,
    /// The secrets.
    pub secrets: Vec<SecretRowView>,
    /// Workload access, once provisioned.
    pub access: Option<AccessInfo>,
    /// Whether the caller may create and rotate.
    pub can_write: bool,
    /// Whether the caller may delete versions and destroy.
    pub can_destroy: bool,
    /// Set when Vault is down or sealed.
    pub vault_notice: Option<String>,
    /// False when this portal has no Vault configured.
    pub configured: bool,
}

/// The answer to a save.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaveResult {
    /// The secret after the write.
    pub secret: SecretRowView,
    /// Whether this created it.
    pub created: bool,
    /// Each step.
    pub steps: Vec<StepView>,
    /// Workload access after the write.
    pub access: Option<AccessInfo>,
}

#[cfg(feature = "ssr")]
mod convert {
    use super::*;
    use paved_core::secrets::{AccessView, SecretSummary, StepOutcome, StepState};

    pub fn row(s: SecretSummary) -> SecretRowView {
        SecretRowView {
            name: s.name,
            path: s.path,
            version: s.current_version,
            updated_at: s.updated_at,
            updated_by: s.updated_by,
        }
    }

    pub fn access(a: AccessView) -> AccessInfo {
        AccessInfo {
            policy: a.policy_name,
            role: a.role_name,
            workload: a
                .namespace
                .zip(a.service_account)
                .map(|(ns, sa)| format!("{ns}/{sa}")),
            complete: a.complete,
            last_error: a.last_error,
            annotations_yaml: a.annotations_yaml,
        }
    }

    pub fn step(s: StepOutcome) -> StepView {
        StepView {
            label: s.label,
            state: match s.state {
                StepState::Done => "done",
                StepState::Failed => "failed",
                StepState::Skipped => "skipped",
            }
            .into(),
            detail: s.detail,
        }
    }

    pub fn holder(holder: &str) -> paved_core::secrets::naming::Holder {
        paved_core::secrets::naming::Holder::from_segment(&holder.to_ascii_lowercase())
    }

    pub fn target(
        team: &str,
        holder: &str,
        name: &str,
    ) -> Result<paved_core::secrets::naming::SecretTarget, paved_core::CoreError> {
        use paved_core::secrets::naming::SecretTarget;
        match holder {
            TEAM_HOLDER => SecretTarget::team_wide(team, name),
            LLM_HOLDER => SecretTarget::llm_keys(team),
            service => SecretTarget::service(team, service, name),
        }
    }
}

/// The secrets of a service (`holder` = its name), a team (`_team`) or a
/// team's LLM keys (`_llm`). Members of the team and platform admins only.
#[server(endpoint = "secrets_panel")]
pub async fn secrets_panel(team: String, holder: String) -> Result<SecretsPanelData, AppError> {
    use paved_core::auth::{authorize, Action};
    use paved_core::secrets::vault::VaultState;
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    if core.vault.is_none() {
        authorize(&user, Action::ActInTeam(&team))?;
        return Ok(SecretsPanelData {
            team,
            holder,
            secrets: Vec::new(),
            access: None,
            can_write: false,
            can_destroy: false,
            vault_notice: None,
            configured: false,
        });
    }
    let listed = paved_core::secrets::list(&core, &user, &team, &convert::holder(&holder)).await?;
    let status = core.vault.as_ref().map(|v| v.status());
    let lead = authorize(&user, Action::LeadTeam(&team)).is_ok();
    Ok(SecretsPanelData {
        team: listed.team,
        can_write: if holder == LLM_HOLDER { lead } else { true },
        can_destroy: lead,
        holder: listed.holder,
        secrets: listed.secrets.into_iter().map(convert::row).collect(),
        access: listed.access.map(convert::access),
        vault_notice: status
            .filter(|s| {
                matches!(
                    s.state,
                    VaultState::Sealed | VaultState::Unreachable | VaultState::Uninitialized
                )
            })
            .map(|s| s.detail),
        configured: true,
    })
}

/// The secrets card of a service or team: the panel for members and admins,
/// a short explanation for everyone else (who never see names or paths).
#[component]
pub fn SecretsSection(
    #[prop(into)] team: String,
    #[prop(into)] holder: String,
    #[prop(into)] title: String,
    #[prop(optional, into)] class: String,
    #[prop(into)] intro: String,
) -> impl IntoView {
    let me = expect_context::<crate::components::MeResource>();
    let key = (team.clone(), holder.clone());
    view! {
        <crate::components::Card title=title class=class>
            <p class="mb-3 text-sm text-slate-600 dark:text-slate-400">{intro}</p>
            <Suspense fallback=|| view! { <p class="text-sm text-slate-500">"Loading secrets…"</p> }>
                {move || {
                    let (team, holder) = key.clone();
                    Suspend::new(async move {
                        let allowed = me.await.is_ok_and(|m| authorize(&m, Action::ActInTeam(&team)).is_ok());
                        if !allowed {
                            return view! {
                                <p class="text-sm text-slate-500" data-testid="secrets-hidden">{format!("Only members of team {team} can see and manage these secrets.")}</p>
                            }.into_any();
                        }
                        match secrets_panel(team, holder).await {
                            Ok(data) if !data.configured => view! {
                                <p class="text-sm text-slate-500">"Vault is not configured for this portal yet (PAVED_VAULT_ADDR); ask your platform team."</p>
                            }.into_any(),
                            Ok(data) => view! { <panel::SecretsPanel data /> }.into_any(),
                            Err(e) => view! { <p role="alert" class="text-sm text-red-600">{e.to_string()}</p> }.into_any(),
                        }
                    })
                }}
            </Suspense>
        </crate::components::Card>
    }
}

/// Creates (`expected_version` 0) or rotates (the version the form showed) a secret.
#[server(endpoint = "secrets_save", input = Json)]
pub async fn save_secret(
    team: String,
    holder: String,
    name: String,
    pairs: SecretPairs,
    expected_version: i64,
) -> Result<SaveResult, AppError> {
    use secrecy::SecretString;
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let target = convert::target(&team, &holder, &name)?;
    let values = paved_core::secrets::SecretValues::from_pairs(
        pairs.0.into_iter().map(|(k, v)| (k, SecretString::from(v))),
    )?;
    let outcome =
        paved_core::secrets::write(&core, &user, &target, values, Some(expected_version)).await?;
    Ok(SaveResult {
        created: outcome.created,
        secret: convert::row(outcome.secret),
        steps: outcome.steps.into_iter().map(convert::step).collect(),
        access: outcome.access.map(convert::access),
    })
}

/// A secret's versions (metadata only).
#[server(endpoint = "secrets_versions")]
pub async fn secret_versions(
    team: String,
    holder: String,
    name: String,
) -> Result<Vec<VersionView>, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let target = convert::target(&team, &holder, &name)?;
    let detail = paved_core::secrets::detail(&core, &user, &target).await?;
    Ok(detail
        .versions
        .into_iter()
        .map(|v| VersionView {
            version: v.version,
            created_at: v.created_at,
            created_by: v.created_by,
            deleted_at: v.deleted_at,
            destroyed: v.destroyed,
        })
        .collect())
}

/// Soft-deletes one version; leads and admins.
#[server(endpoint = "secrets_delete_version")]
pub async fn delete_secret_version(
    team: String,
    holder: String,
    name: String,
    version: i64,
) -> Result<(), AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let target = convert::target(&team, &holder, &name)?;
    Ok(paved_core::secrets::delete_version(&core, &user, &target, version).await?)
}

/// Destroys every version; leads and admins, with the name typed as confirmation.
#[server(endpoint = "secrets_destroy")]
pub async fn destroy_secret(
    team: String,
    holder: String,
    name: String,
    confirmation: String,
) -> Result<(), AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let target = convert::target(&team, &holder, &name)?;
    Ok(paved_core::secrets::destroy(&core, &user, &target, &confirmation).await?)
}

/// Re-runs the policy and role steps.
#[server(endpoint = "secrets_finish")]
pub async fn finish_provisioning(
    team: String,
    holder: String,
) -> Result<(Vec<StepView>, AccessInfo), AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let (steps, access) =
        paved_core::secrets::reconverge(&core, &user, &team, &convert::holder(&holder)).await?;
    Ok((
        steps.into_iter().map(convert::step).collect(),
        convert::access(access),
    ))
}

/// Services of a team that have secrets, for the team page.
#[server(endpoint = "secrets_team_services")]
pub async fn team_secret_services(team: String) -> Result<Vec<(String, usize)>, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let all = paved_core::secrets::team_secrets(&core, &user, &team).await?;
    Ok(all
        .into_iter()
        .filter(|h| !h.holder.starts_with('_'))
        .map(|h| (h.holder, h.secrets.len()))
        .collect())
}

/// Validates a secret name as the server does (the same function, for live feedback).
pub fn name_problem(name: &str) -> Option<&'static str> {
    paved_shared::forms::secret_name_problem(name)
}

/// Validates a key name as the server does (for live feedback).
pub fn key_problem(key: &str) -> Option<&'static str> {
    paved_shared::forms::secret_key_problem(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_rules_match_the_servers() {
        assert!(name_problem("database").is_none());
        assert!(name_problem("Database").is_some());
        assert!(name_problem("db--x").is_some());
        assert!(key_problem("DATABASE_URL").is_none());
        assert!(key_problem("1X").is_some());
        assert!(key_problem("A-B").is_some());
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn live_name_rule_is_the_servers_rule() {
        for name in [
            "database",
            "db-2",
            "a",
            "Db",
            "2db",
            "db-",
            "d--b",
            "x_y",
            "",
            &"a".repeat(41),
        ] {
            assert_eq!(
                name_problem(name).is_none(),
                paved_core::secrets::naming::validate_secret_name(name).is_ok(),
                "{name}"
            );
        }
    }

    #[test]
    fn pairs_never_debug_print_values() {
        let pairs = SecretPairs(vec![("K".into(), "hunter2".into())]);
        assert!(!format!("{pairs:?}").contains("hunter2"));
        #[cfg(feature = "ssr")]
        assert!(!serde_json::to_string(&pairs).unwrap().contains("hunter2"));
    }
}
