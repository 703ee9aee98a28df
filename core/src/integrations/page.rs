//! What platform admins see of the git hosts: each integration, its rate
//! limit as the host last reported it, how many locations read through it,
//! and a connection test.

use paved_shared::catalog::{ConnectionCheck, IntegrationView};

use super::{CredentialRef, HostKind};
use crate::auth::{authorize, Action, Principal};
use crate::{CoreError, CoreState};

/// Every configured integration: platform admins only.
pub async fn overview(
    core: &CoreState,
    caller: &Principal,
) -> Result<Vec<IntegrationView>, CoreError> {
    authorize(caller, Action::AdministerPlatform)?;
    let locations = crate::catalog::store::locations(&core.db).await?;
    let integrations = &core.integrations;
    Ok(integrations
        .list()
        .iter()
        .map(|i| {
            let limit = integrations.rate_limit(&i.host);
            IntegrationView {
                host: i.host.clone(),
                kind: i.kind.as_str().to_owned(),
                api_base_url: i.api_base_url.to_string(),
                credential: match &i.credential {
                    CredentialRef::None => "none (public repositories only)".to_owned(),
                    CredentialRef::Token { path } => format!("token at {path} in Vault"),
                    CredentialRef::GithubApp { app_id, path } => {
                        format!("GitHub App {app_id}, key at {path} in Vault")
                    }
                },
                rate_remaining: limit.remaining,
                rate_limit: limit.limit,
                rate_reset_at: limit.reset_at,
                limited_until: limit.limited_until,
                locations: locations
                    .iter()
                    .filter(|l| url::Url::parse(&l.target).is_ok_and(|u| i.matches(&u)))
                    .count(),
            }
        })
        .collect())
}

/// Asks `host` who the credential is (GitHub: its rate limit, which every
/// token may read): platform admins only. A refusal is an answer, not an error.
pub async fn test_connection(
    core: &CoreState,
    caller: &Principal,
    host: &str,
) -> Result<ConnectionCheck, CoreError> {
    authorize(caller, Action::AdministerPlatform)?;
    let integrations = &core.integrations;
    let integration = integrations
        .list()
        .iter()
        .find(|i| i.host == host)
        .ok_or_else(|| CoreError::NotFound(format!("integration {host}")))?;
    let path = match integration.kind {
        HostKind::Github | HostKind::GithubEnterprise => "rate_limit",
        HostKind::Gitlab => "version",
        HostKind::BitbucketCloud => "user",
        HostKind::BitbucketServer => "application-properties",
        HostKind::Gitea => "version",
        HostKind::AzureDevops | HostKind::Git => "",
    };
    let outcome = integrations
        .api(integration, reqwest::Method::GET, path, None)
        .await;
    Ok(match outcome {
        Ok((200, answer)) => {
            let limit = integrations.rate_limit(host);
            let detail = match (limit.remaining, limit.limit) {
                (Some(left), Some(of)) => format!("; {left} of {of} requests left this hour"),
                _ => answer["resources"]["core"]["remaining"]
                    .as_i64()
                    .map(|left| format!("; {left} requests left this hour"))
                    .unwrap_or_default(),
            };
            ConnectionCheck {
                ok: true,
                message: format!("Connected to {host}{detail}."),
            }
        }
        Ok((401, _)) => ConnectionCheck {
            ok: false,
            message: format!(
                "{host} refused the credential (401): check that it is valid and not expired."
            ),
        },
        Ok((status, _)) => ConnectionCheck {
            ok: false,
            message: format!("{host} answered {status}."),
        },
        Err(message) => ConnectionCheck { ok: false, message },
    })
}
