//! What platform admins see of the git hosts: each integration, its rate
//! limit as the host last reported it, how many locations read through it,
//! and a connection test.

use paved_shared::catalog::{ConnectionCheck, IntegrationView};

use super::{CredentialRef, HostKind};
use crate::auth::{authorize, Action, Principal};
use crate::{CoreError, CoreState};

/// How long before a token's expiry the page warns (14 days).
const EXPIRY_WARNING: i64 = 14 * 24 * 3600;

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
            let expires = integrations.token_expires_at(&i.host);
            let renewed = matches!(i.credential, CredentialRef::GithubApp { .. });
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
                token_expires_at: expires,
                token_expires_soon: !renewed
                    && expires.is_some_and(|at| at - integrations.now() < EXPIRY_WARNING),
                token_renewed: renewed,
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
            let expiry = match integrations.token_expires_at(host) {
                Some(at) if !matches!(integration.credential, CredentialRef::GithubApp { .. }) => {
                    let days = (at - integrations.now()) / 86_400;
                    format!(
                        " The token expires on {} ({}); replace it in Vault before then.",
                        jiff::Timestamp::from_second(at)
                            .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
                            .unwrap_or_default(),
                        match days {
                            d if d < 0 => "already past".to_owned(),
                            0 => "within a day".to_owned(),
                            1 => "in 1 day".to_owned(),
                            d => format!("in {d} days"),
                        }
                    )
                }
                _ => String::new(),
            };
            ConnectionCheck {
                ok: true,
                message: format!("Connected to {host}{detail}.{expiry}"),
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
