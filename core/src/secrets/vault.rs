//! The connection to Vault (or OpenBao): Paved's own login and token renewal,
//! health polling for the UI banner and `/readyz`, and one `call` that runs a
//! `vaultrs` endpoint with a correlation header and returns Vault's request id.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustify::endpoint::{Endpoint, MiddleWare};
use rustify::enums::{RequestMethod, RequestType, ResponseType};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use vaultrs::api::{AuthInfo, EndpointMiddleware};
use vaultrs::client::{Client as _, VaultClient, VaultClientSettingsBuilder};

use crate::config::{VaultAuth, VaultConfig};

/// The header every Paved request to Vault carries. Enable it in Vault's audit
/// log (`sys/config/auditing/request-headers/x-paved-request-id`) to match
/// entries that answer without a request id (204s).
pub const CORRELATION_HEADER: &str = "x-paved-request-id";

/// What Vault looks like from here, for the banner and `/readyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VaultState {
    /// Not checked yet.
    Unknown,
    /// Unsealed, and Paved holds a valid token.
    Ready,
    /// Vault answers but is sealed.
    Sealed,
    /// Vault answers but is not initialized.
    Uninitialized,
    /// Vault does not answer.
    Unreachable,
    /// Vault answers but refused Paved's credentials.
    Unauthenticated,
}

impl VaultState {
    /// Vault cannot serve secrets at all (sealed, uninitialized or not
    /// answering): writes are refused before they start and pages say so.
    pub fn is_down(self) -> bool {
        matches!(
            self,
            VaultState::Sealed | VaultState::Unreachable | VaultState::Uninitialized
        )
    }
}

/// The sentence for a healthy Vault.
const READY: &str = "Vault is unsealed and answering.";

/// The last observed state with a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaultStatus {
    /// The state.
    pub state: VaultState,
    /// What it means, for the banner.
    pub detail: String,
    /// Unix seconds of the observation.
    pub checked_at: i64,
}

impl VaultStatus {
    fn new(state: VaultState, detail: impl Into<String>) -> Self {
        Self {
            state,
            detail: detail.into(),
            checked_at: crate::now_unix(),
        }
    }
}

/// A failed Vault call, classified. Messages never contain secret values:
/// Vault does not echo request bodies, and connection errors name only the URL.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// Vault could not be reached (connection refused, reset, timed out).
    #[error("Vault is unreachable: {0}")]
    Unreachable(String),
    /// Vault is sealed.
    #[error("Vault is sealed")]
    Sealed,
    /// Paved's token was refused (expired, revoked, or lacks this path).
    #[error("Vault denied Paved's request to {path}: permission denied")]
    Denied {
        /// The Vault path.
        path: String,
    },
    /// The path does not exist.
    #[error("nothing at {0} in Vault")]
    NotFound(String),
    /// Check-and-set did not match the current version.
    #[error("the secret changed since it was read")]
    CasMismatch,
    /// Any other refusal, with Vault's message.
    #[error("Vault refused {path} ({status}): {message}")]
    Rejected {
        /// The Vault path.
        path: String,
        /// Vault's HTTP status.
        status: u16,
        /// Vault's error messages, joined.
        message: String,
    },
    /// The client could not be built (bad CA file).
    #[error("cannot set up the Vault client: {0}")]
    Setup(String),
}

/// A successful call: the response data (if any) and Vault's request id.
pub struct VaultResponse<T> {
    /// The `data` of Vault's answer.
    pub data: Option<T>,
    /// Vault's `request_id` (absent on 204 answers).
    pub request_id: Option<String>,
    /// The `x-paved-request-id` Paved sent.
    pub correlation_id: String,
}

/// The Vault connection, shared by every request.
pub struct Vault {
    config: VaultConfig,
    client: VaultClient,
    token: RwLock<Option<SecretString>>,
    status: RwLock<VaultStatus>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("address", &self.config.address.as_str())
            .finish_non_exhaustive()
    }
}

struct CallMiddleware {
    inner: EndpointMiddleware,
    correlation_id: String,
}

impl MiddleWare for CallMiddleware {
    fn request<E: Endpoint>(
        &self,
        endpoint: &E,
        req: &mut http::Request<Vec<u8>>,
    ) -> Result<(), rustify::errors::ClientError> {
        self.inner.request(endpoint, req)?;
        if let Ok(value) = http::HeaderValue::from_str(&self.correlation_id) {
            req.headers_mut().insert(CORRELATION_HEADER, value);
        }
        Ok(())
    }

    fn response<E: Endpoint>(
        &self,
        _: &E,
        _: &mut http::Response<Vec<u8>>,
    ) -> Result<(), rustify::errors::ClientError> {
        Ok(())
    }
}

impl Vault {
    /// Builds the client; no request is made until [`Vault::login`].
    pub fn new(config: VaultConfig) -> Result<Self, VaultError> {
        let mut settings = VaultClientSettingsBuilder::default();
        settings
            .address(config.address.as_str())
            .timeout(Some(Duration::from_secs(10)))
            .token("");
        if let Some(path) = &config.ca_cert {
            settings.ca_certs(vec![path.display().to_string()]);
        }
        if let Some(ns) = &config.namespace {
            settings.namespace(Some(ns.clone()));
        }
        let settings = settings
            .build()
            .map_err(|e| VaultError::Setup(e.to_string()))?;
        let client = VaultClient::new(settings).map_err(|e| VaultError::Setup(e.to_string()))?;
        let token = match &config.auth {
            VaultAuth::Token(token) => Some(token.clone()),
            _ => None,
        };
        Ok(Self {
            config,
            client,
            token: RwLock::new(token),
            status: RwLock::new(VaultStatus::new(VaultState::Unknown, "not checked yet")),
        })
    }

    /// The configuration this connection was built from.
    pub fn config(&self) -> &VaultConfig {
        &self.config
    }

    /// The last observed status.
    pub fn status(&self) -> VaultStatus {
        self.status.read().expect("vault status lock").clone()
    }

    fn set_status(&self, status: VaultStatus) {
        let mut current = self.status.write().expect("vault status lock");
        if current.state != status.state {
            tracing::info!(state = ?status.state, detail = %status.detail, "Vault status changed");
        }
        *current = status;
    }

    /// The current version of the KV v2 secret at `path` (under the mount):
    /// its key/value map, or `None` when nothing is stored there.
    pub async fn read_kv(
        &self,
        path: &str,
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>, VaultError> {
        let request = vaultrs::api::kv2::requests::ReadSecretRequest {
            mount: self.config.kv_mount.clone(),
            path: path.to_owned(),
            version: None,
        };
        match self.call(request).await {
            Ok(answer) => Ok(answer.data.and_then(|d| d.data.as_object().cloned())),
            Err(VaultError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// [`Vault::read_kv`] with Vault's `request_id` of the read, for
    /// joining Paved's traces with Vault's audit log.
    #[allow(clippy::type_complexity)]
    pub async fn read_kv_traced(
        &self,
        path: &str,
    ) -> Result<
        (
            Option<serde_json::Map<String, serde_json::Value>>,
            Option<String>,
        ),
        VaultError,
    > {
        let request = vaultrs::api::kv2::requests::ReadSecretRequest {
            mount: self.config.kv_mount.clone(),
            path: path.to_owned(),
            version: None,
        };
        match self.call(request).await {
            Ok(answer) => Ok((
                answer.data.and_then(|d| d.data.as_object().cloned()),
                answer.request_id,
            )),
            Err(VaultError::NotFound(_)) => Ok((None, None)),
            Err(e) => Err(e),
        }
    }

    /// Runs `endpoint` with Paved's token and a fresh correlation id.
    pub async fn call<E>(&self, endpoint: E) -> Result<VaultResponse<E::Response>, VaultError>
    where
        E: Endpoint,
    {
        self.call_as(endpoint, true).await
    }

    /// Runs `endpoint`; `wrapped` says whether Vault wraps the answer in
    /// `{request_id, data, ...}` (everything except a few `sys/` endpoints).
    async fn call_as<E>(
        &self,
        endpoint: E,
        wrapped: bool,
    ) -> Result<VaultResponse<E::Response>, VaultError>
    where
        E: Endpoint,
    {
        let token = self
            .token
            .read()
            .expect("vault token lock")
            .as_ref()
            .map(|t| t.expose_secret().to_owned())
            .unwrap_or_default();
        let mut inner = self.client.middle().clone();
        inner.token = token;
        let correlation_id = uuid::Uuid::new_v4().to_string();
        let middleware = CallMiddleware {
            inner,
            correlation_id: correlation_id.clone(),
        };
        let path = endpoint.path();
        let result = endpoint
            .with_middleware(&middleware)
            .exec(self.client.http())
            .await;
        let response = match result {
            Ok(response) => response,
            Err(err) => {
                let err = classify(&path, err);
                if let Some(status) = self.status_after(&err) {
                    self.set_status(status);
                }
                return Err(err);
            }
        };
        if response.response.body().is_empty() {
            return Ok(VaultResponse {
                data: None,
                request_id: None,
                correlation_id,
            });
        }
        if !wrapped {
            let data = response.parse().map_err(|e| VaultError::Rejected {
                path: path.clone(),
                status: 200,
                message: format!("unexpected answer: {e}"),
            })?;
            return Ok(VaultResponse {
                data: Some(data),
                request_id: None,
                correlation_id,
            });
        }
        let wrapped = response
            .wrap::<vaultrs::api::EndpointResult<E::Response>>()
            .map_err(|e| VaultError::Rejected {
                path: path.clone(),
                status: 200,
                message: format!("unexpected answer: {e}"),
            })?;
        Ok(VaultResponse {
            data: wrapped.data,
            request_id: Some(wrapped.request_id).filter(|id| !id.is_empty()),
            correlation_id,
        })
    }

    /// What a failed call says about Vault itself (down or sealed), if anything.
    fn status_after(&self, err: &VaultError) -> Option<VaultStatus> {
        match err {
            VaultError::Unreachable(detail) => Some(VaultStatus::new(
                VaultState::Unreachable,
                format!(
                    "Vault at {} does not answer ({detail}).",
                    self.config.address
                ),
            )),
            VaultError::Sealed => Some(VaultStatus::new(
                VaultState::Sealed,
                "Vault is sealed; secrets cannot be read or written until it is unsealed.",
            )),
            _ => None,
        }
    }

    /// Polls `sys/health` and records the result.
    pub async fn check_health(&self) -> VaultStatus {
        let status = match self.call_as(Health, false).await {
            Ok(_) => {
                if self.token.read().expect("vault token lock").is_some() {
                    VaultStatus::new(VaultState::Ready, READY)
                } else {
                    VaultStatus::new(
                        VaultState::Unauthenticated,
                        "Vault answers, but Paved has not logged in yet.",
                    )
                }
            }
            // sys/health answers sealed/uninitialized nodes with 503/501 bodies.
            Err(VaultError::Rejected { status: 501, .. }) => {
                VaultStatus::new(VaultState::Uninitialized, "Vault is not initialized.")
            }
            Err(err) => self
                .status_after(&err)
                .unwrap_or_else(|| VaultStatus::new(VaultState::Unreachable, err.to_string())),
        };
        // Keep an authentication failure visible until a login succeeds.
        let keep_auth_failure =
            status.state == VaultState::Ready && self.status().state == VaultState::Unauthenticated;
        if !keep_auth_failure {
            self.set_status(status.clone());
        }
        self.status()
    }

    /// Logs in (Kubernetes or AppRole) or looks up the configured token.
    /// Returns how long the token lives and whether it can be renewed.
    pub async fn login(&self) -> Result<(Duration, bool), VaultError> {
        let auth: AuthInfo = match &self.config.auth {
            VaultAuth::Token(_) => {
                let lookup = self
                    .call(vaultrs::api::token::requests::LookupTokenSelfRequest {})
                    .await
                    .inspect_err(|e| self.note_auth_failure(e))?;
                let data = lookup.data.ok_or_else(|| VaultError::Rejected {
                    path: "auth/token/lookup-self".into(),
                    status: 200,
                    message: "no token data".into(),
                })?;
                self.set_status(VaultStatus::new(VaultState::Ready, READY));
                return Ok((
                    Duration::from_secs(data.ttl),
                    data.renewable && data.ttl > 0,
                ));
            }
            VaultAuth::Kubernetes {
                mount,
                role,
                jwt_path,
            } => {
                let jwt = std::fs::read_to_string(jwt_path).map_err(|e| {
                    VaultError::Setup(format!(
                        "cannot read the service-account token at {}: {e}",
                        jwt_path.display()
                    ))
                })?;
                vaultrs::auth::kubernetes::login(&self.client, mount, role, jwt.trim())
                    .await
                    .map_err(|e| classify_vaultrs(&format!("auth/{mount}/login"), e))
                    .inspect_err(|e| self.note_auth_failure(e))?
            }
            VaultAuth::AppRole {
                mount,
                role_id,
                secret_id,
            } => vaultrs::auth::approle::login(
                &self.client,
                mount,
                role_id,
                secret_id.expose_secret(),
            )
            .await
            .map_err(|e| classify_vaultrs(&format!("auth/{mount}/login"), e))
            .inspect_err(|e| self.note_auth_failure(e))?,
        };
        *self.token.write().expect("vault token lock") =
            Some(SecretString::from(auth.client_token));
        self.set_status(VaultStatus::new(VaultState::Ready, READY));
        Ok((Duration::from_secs(auth.lease_duration), auth.renewable))
    }

    fn note_auth_failure(&self, err: &VaultError) {
        if matches!(
            err,
            VaultError::Denied { .. } | VaultError::Rejected { .. } | VaultError::Setup(_)
        ) {
            self.set_status(VaultStatus::new(
                VaultState::Unauthenticated,
                format!("Vault refused Paved's credentials: {err}"),
            ));
        }
    }

    /// Renews Paved's token; returns the new TTL.
    pub async fn renew(&self) -> Result<Duration, VaultError> {
        let answer = self.call(RenewSelf).await?;
        let _ = answer;
        // renew-self answers with `auth`, which `call` does not keep; look the token up again.
        let lookup = self
            .call(vaultrs::api::token::requests::LookupTokenSelfRequest {})
            .await?;
        Ok(Duration::from_secs(lookup.data.map(|d| d.ttl).unwrap_or(0)))
    }

    /// Keeps Paved logged in (renewing at two thirds of the TTL, logging in
    /// again when renewal fails) and polls health. Runs for the process lifetime.
    pub async fn maintain(self: Arc<Self>) {
        let mut next_auth = tokio::time::Instant::now();
        let mut renewable = false;
        let mut backoff = Duration::from_secs(1);
        let mut health = tokio::time::interval(self.config.health_interval);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(next_auth) => {
                    let outcome = if renewable {
                        match self.renew().await {
                            Ok(ttl) if ttl > Duration::from_secs(30) => Ok((ttl, true)),
                            _ => self.login().await,
                        }
                    } else {
                        self.login().await
                    };
                    match outcome {
                        Ok((ttl, can_renew)) => {
                            backoff = Duration::from_secs(1);
                            renewable = can_renew;
                            next_auth = if ttl.is_zero() {
                                // A token without TTL (root, dev) never needs renewing; recheck hourly.
                                tokio::time::Instant::now() + Duration::from_secs(3600)
                            } else {
                                tokio::time::Instant::now() + ttl * 2 / 3
                            };
                        }
                        Err(err) => {
                            tracing::warn!(error = %err, retry_in_s = backoff.as_secs(), "Vault login failed");
                            renewable = false;
                            next_auth = tokio::time::Instant::now() + backoff;
                            backoff = (backoff * 2).min(Duration::from_secs(30));
                        }
                    }
                }
                _ = health.tick() => {
                    self.check_health().await;
                }
            }
        }
    }
}

/// `sys/health` (vaultrs' response type wants `performance_standby`, which OpenBao omits).
struct Health;

impl Endpoint for Health {
    type Response = serde_json::Value;
    const REQUEST_BODY_TYPE: RequestType = RequestType::JSON;
    const RESPONSE_BODY_TYPE: ResponseType = ResponseType::JSON;

    fn path(&self) -> String {
        "sys/health".into()
    }

    fn method(&self) -> RequestMethod {
        RequestMethod::GET
    }
}

/// `auth/token/renew-self` (vaultrs' own endpoint has a stray tab in its path).
struct RenewSelf;

impl Endpoint for RenewSelf {
    type Response = serde_json::Value;
    const REQUEST_BODY_TYPE: RequestType = RequestType::JSON;
    const RESPONSE_BODY_TYPE: ResponseType = ResponseType::JSON;

    fn path(&self) -> String {
        "auth/token/renew-self".into()
    }

    fn method(&self) -> RequestMethod {
        RequestMethod::POST
    }

    fn body(&self) -> Result<Option<Vec<u8>>, rustify::errors::ClientError> {
        Ok(Some(b"{}".to_vec()))
    }
}

fn classify_vaultrs(path: &str, err: vaultrs::error::ClientError) -> VaultError {
    match err {
        vaultrs::error::ClientError::RestClientError { source } => classify(path, source),
        vaultrs::error::ClientError::APIError { code, errors } => {
            from_status(path, code, errors.join("; "))
        }
        other => VaultError::Rejected {
            path: path.to_owned(),
            status: 0,
            message: other.to_string(),
        },
    }
}

fn classify(path: &str, err: rustify::errors::ClientError) -> VaultError {
    use rustify::errors::ClientError as E;
    match err {
        E::ServerResponseError { code, content } => {
            let message = content
                .as_deref()
                .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
                .and_then(|v| {
                    v.get("errors").and_then(|e| e.as_array()).map(|errors| {
                        errors
                            .iter()
                            .filter_map(|e| e.as_str())
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
                })
                .unwrap_or_default();
            // sys/health answers 503 with a JSON body saying sealed.
            let sealed_health = content
                .as_deref()
                .is_some_and(|c| c.contains("\"sealed\":true"));
            if sealed_health {
                return VaultError::Sealed;
            }
            from_status(path, code, message)
        }
        E::RequestError { source, .. } | E::ResponseError { source } => {
            // Only the error's own text: it names the address, never the request body.
            let mut detail = source.to_string();
            let mut cause: Option<&(dyn std::error::Error + 'static)> = source.source();
            while let Some(c) = cause {
                detail = c.to_string();
                cause = c.source();
            }
            VaultError::Unreachable(detail)
        }
        other => VaultError::Rejected {
            path: path.to_owned(),
            status: 0,
            message: other.to_string(),
        },
    }
}

fn from_status(path: &str, code: u16, message: String) -> VaultError {
    let lower = message.to_ascii_lowercase();
    match code {
        503 if lower.contains("sealed") || message.is_empty() => VaultError::Sealed,
        403 => VaultError::Denied {
            path: path.to_owned(),
        },
        404 => VaultError::NotFound(path.to_owned()),
        400 if lower.contains("check-and-set") => VaultError::CasMismatch,
        _ => VaultError::Rejected {
            path: path.to_owned(),
            status: code,
            message: if message.is_empty() {
                "no detail".into()
            } else {
                message
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        assert!(matches!(
            from_status("p", 403, "permission denied".into()),
            VaultError::Denied { .. }
        ));
        assert!(matches!(
            from_status(
                "p",
                400,
                "check-and-set parameter did not match the current version".into()
            ),
            VaultError::CasMismatch
        ));
        assert!(matches!(
            from_status("p", 503, "Vault is sealed".into()),
            VaultError::Sealed
        ));
        assert!(matches!(
            from_status("p", 404, String::new()),
            VaultError::NotFound(_)
        ));
        assert!(matches!(
            from_status("p", 500, "boom".into()),
            VaultError::Rejected { status: 500, .. }
        ));
    }
}
