//! The secrets feature in the UI: wire types and server functions. The
//! panel (an island) is in `panel.rs`. Values travel browser → server once,
//! inside [`SecretPairs`], and never come back.

pub mod panel;

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::identity::{authorize, Action};

pub use paved_shared::secrets::{
    AccessView, SecretSummary, SecretVersion, SecretsPanelData, StepOutcome, StepState,
    WriteOutcome, LLM_HOLDER, LLM_KEYS_NAME, TEAM_HOLDER,
};

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

/// What the secrets panel of a service (`holder` = its name), a team
/// (`_team`) or a team's LLM keys (`_llm`) shows: members of the team and
/// platform admins.
#[server(endpoint = "secrets_panel")]
pub async fn secrets_panel(team: String, holder: String) -> Result<SecretsPanelData, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::secrets::panel(&core, &user, &team, &holder).await?)
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
) -> Result<WriteOutcome, AppError> {
    use secrecy::SecretString;
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let target = target(&team, &holder, &name)?;
    let values = paved_core::secrets::SecretValues::from_pairs(
        pairs.0.into_iter().map(|(k, v)| (k, SecretString::from(v))),
    )?;
    Ok(paved_core::secrets::write(&core, &user, &target, values, Some(expected_version)).await?)
}

#[cfg(feature = "ssr")]
fn target(
    team: &str,
    holder: &str,
    name: &str,
) -> Result<paved_core::secrets::naming::SecretTarget, paved_core::CoreError> {
    paved_core::secrets::naming::SecretTarget::in_holder(team, holder, name)
}

/// A secret's versions (metadata only).
#[server(endpoint = "secrets_versions")]
pub async fn secret_versions(
    team: String,
    holder: String,
    name: String,
) -> Result<Vec<SecretVersion>, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let target = target(&team, &holder, &name)?;
    Ok(paved_core::secrets::detail(&core, &user, &target)
        .await?
        .versions)
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
    let target = target(&team, &holder, &name)?;
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
    let target = target(&team, &holder, &name)?;
    Ok(paved_core::secrets::destroy(&core, &user, &target, &confirmation).await?)
}

/// Re-runs the policy and role steps.
#[server(endpoint = "secrets_finish")]
pub async fn finish_provisioning(
    team: String,
    holder: String,
) -> Result<(Vec<StepOutcome>, AccessView), AppError> {
    use paved_core::secrets::naming::Holder;
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let holder = Holder::from_segment(&holder.to_ascii_lowercase());
    Ok(paved_core::secrets::reconverge(&core, &user, &team, &holder).await?)
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
