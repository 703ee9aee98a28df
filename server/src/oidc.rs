//! OpenID Connect sign-in: discovery (cached, retried on failure), the
//! authorization-code flow with PKCE, state and nonce kept in the session and
//! checked at the callback, ID-token verification, and RP-initiated logout.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreIdToken};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, LogoutRequest, Nonce, PkceCodeChallenge, PkceCodeVerifier,
    PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl, Scope,
};
use paved_core::config::Config;
use paved_core::identity::{self, SignIn};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;
use tower_sessions::{Expiry, Session};

use crate::session::{SessionUser, ID_TOKEN_KEY, PENDING_LOGIN_KEY, USER_KEY};
use crate::AppState;

type OidcClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// How long discovered provider metadata (and its signing keys) is trusted before re-fetching.
const METADATA_TTL: Duration = Duration::from_secs(3600);

/// Why sign-in failed. The `code` goes to the sign-in page, which explains it;
/// details go to the log.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// Discovery failed: the issuer is down, unreachable or not an OIDC provider.
    #[error("identity provider unreachable: {0}")]
    Unreachable(String),
    /// The callback's `state` does not match the one this session started.
    #[error("state mismatch or no sign-in in progress")]
    StateMismatch,
    /// The provider refused our client credentials at the token endpoint.
    #[error("token exchange refused: {0}")]
    ClientRejected(String),
    /// The ID token was missing or failed verification (signature, issuer, audience, expiry, nonce).
    #[error("invalid ID token: {0}")]
    InvalidIdToken(String),
    /// The provider answered the authorization request with an error.
    #[error("provider returned error: {0}")]
    Denied(String),
    /// A platform admin has disabled this person.
    #[error("account disabled")]
    Disabled,
    /// Storing the session or the user failed.
    #[error("internal: {0}")]
    Internal(String),
}

impl OidcError {
    fn code(&self) -> &'static str {
        match self {
            OidcError::Unreachable(_) => "idp_unreachable",
            OidcError::StateMismatch => "state_mismatch",
            OidcError::ClientRejected(_) => "client_rejected",
            OidcError::InvalidIdToken(_) => "invalid_id_token",
            OidcError::Denied(_) => "access_denied",
            OidcError::Disabled => "account_disabled",
            OidcError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for OidcError {
    fn into_response(self) -> Response {
        tracing::warn!(error = %self, "sign-in failed");
        Redirect::to(&format!("/signin?error={}", self.code())).into_response()
    }
}

/// The sign-in in progress, kept in the session between `/auth/login` and the callback.
#[derive(Serialize, Deserialize)]
struct PendingLogin {
    state: String,
    nonce: String,
    pkce_verifier: String,
    next: String,
}

struct Discovered {
    at: Instant,
    metadata: ProviderMetadataWithLogout,
}

/// The OpenID Connect relying party.
pub struct Oidc {
    config: Arc<Config>,
    http: reqwest::Client,
    discovered: RwLock<Option<Discovered>>,
}

impl Oidc {
    /// Creates the relying party; discovery happens on first use and is cached.
    pub fn new(config: Arc<Config>) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            // Following redirects at the token endpoint would be an SSRF hazard.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            // A fresh connection per call: a kept-alive one may be closed by
            // the provider's idle timeout (Node's is 5 s) just as the token
            // exchange reuses it, and a single-use code cannot be sent twice.
            // Sign-ins are rare enough that the handshake costs nothing.
            .pool_max_idle_per_host(0)
            .build()?;
        Ok(Self {
            config,
            http,
            discovered: RwLock::new(None),
        })
    }

    async fn metadata(&self) -> Result<ProviderMetadataWithLogout, OidcError> {
        if let Some(d) = self.discovered.read().await.as_ref() {
            if d.at.elapsed() < METADATA_TTL {
                return Ok(d.metadata.clone());
            }
        }
        let issuer = IssuerUrl::new(
            self.config
                .oidc
                .issuer
                .as_str()
                .trim_end_matches('/')
                .to_owned(),
        )
        .map_err(|e| OidcError::Unreachable(e.to_string()))?;
        let metadata = ProviderMetadataWithLogout::discover_async(issuer, &self.http)
            .await
            .map_err(|e| OidcError::Unreachable(error_chain(&e)))?;
        *self.discovered.write().await = Some(Discovered {
            at: Instant::now(),
            metadata: metadata.clone(),
        });
        Ok(metadata)
    }

    async fn client(&self) -> Result<(OidcClient, ProviderMetadataWithLogout), OidcError> {
        let metadata = self.metadata().await?;
        let redirect = RedirectUrl::new(self.config.public_url_for("/auth/callback"))
            .map_err(|e| OidcError::Internal(e.to_string()))?;
        let client = CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(self.config.oidc.client_id.clone()),
            Some(ClientSecret::new(
                self.config.oidc.client_secret.expose_secret().to_owned(),
            )),
        )
        .set_redirect_uri(redirect);
        Ok((client, metadata))
    }

    /// Whether the issuer's discovery document can be fetched (for `/readyz`).
    pub async fn is_reachable(&self) -> bool {
        self.metadata().await.is_ok()
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Only same-origin paths may be returned to after sign-in (no open
/// redirects). The candidate must be an absolute path with no control
/// characters or backslashes anywhere (browsers strip tabs and newlines and
/// read `\` as `/`, which turns `/%09/evil` or `/\evil` into another host),
/// and, resolved against the public URL, must stay on its origin.
fn safe_next(public_url: &url::Url, next: Option<&str>) -> String {
    let Some(n) = next else {
        return "/".to_owned();
    };
    let hostile = n.chars().any(|c| c.is_control() || c == '\\')
        || !n.starts_with('/')
        || n.starts_with("//");
    if hostile {
        return "/".to_owned();
    }
    match public_url.join(n) {
        Ok(url) if url.origin() == public_url.origin() && !url.path().starts_with("/auth/") => {
            let mut out = url.path().to_owned();
            if let Some(q) = url.query() {
                out.push('?');
                out.push_str(q);
            }
            if let Some(f) = url.fragment() {
                out.push('#');
                out.push_str(f);
            }
            // A path that only parsing made absolute-looking (`/.//evil`) is refused too.
            if out.starts_with("//") {
                "/".to_owned()
            } else {
                out
            }
        }
        _ => "/".to_owned(),
    }
}

/// How long a started sign-in may take before its session is dropped.
pub const PENDING_LOGIN_MINUTES: i64 = 10;

/// Query of `/auth/login`.
#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// `GET /auth/login`: starts the authorization-code flow.
pub async fn login(
    State(state): State<AppState>,
    client_addr: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    session: Session,
    Query(query): Query<LoginQuery>,
) -> Result<Response, OidcError> {
    // Every start writes a session row: a client may start only a few a minute.
    let key = client_addr.map_or_else(|| "local".to_owned(), |c| c.0 .0.ip().to_string());
    if let Err(wait) = state.sign_in_limiter.check(&key) {
        tracing::warn!(client = %key, "sign-in starts rate limited");
        return Ok((
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            [(
                axum::http::header::RETRY_AFTER,
                wait.as_secs().max(1).to_string(),
            )],
            "Too many sign-in attempts from this address; wait a minute and try again.",
        )
            .into_response());
    }
    let (client, _) = state.oidc.client().await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client.authorize_url(
        CoreAuthenticationFlow::AuthorizationCode,
        CsrfToken::new_random,
        Nonce::new_random,
    );
    for scope in state
        .core
        .config
        .oidc
        .scopes
        .iter()
        .filter(|s| *s != "openid")
    {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    let (url, csrf, nonce) = request.set_pkce_challenge(challenge).url();
    let pending = PendingLogin {
        state: csrf.secret().clone(),
        nonce: nonce.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
        next: safe_next(&state.core.config.public_url, query.next.as_deref()),
    };
    session
        .insert(PENDING_LOGIN_KEY, pending)
        .await
        .map_err(|e| OidcError::Internal(e.to_string()))?;
    // A sign-in that is never finished is forgotten after ten minutes.
    session.set_expiry(Some(Expiry::OnInactivity(
        tower_sessions::cookie::time::Duration::minutes(PENDING_LOGIN_MINUTES),
    )));
    Ok(Redirect::to(url.as_str()).into_response())
}

/// Query of `/auth/callback`.
#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /auth/callback`: checks state, exchanges the code, verifies the ID
/// token (signature, issuer, audience, expiry, nonce), upserts the user and
/// starts a fresh session (new id).
pub async fn callback(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, OidcError> {
    let result = finish_sign_in(&state, &session, query).await;
    if result.is_err() {
        // A failed sign-in leaves no session behind.
        let _ = session.flush().await;
    }
    result
}

async fn finish_sign_in(
    state: &AppState,
    session: &Session,
    query: CallbackQuery,
) -> Result<Response, OidcError> {
    let pending: Option<PendingLogin> = session
        .remove(PENDING_LOGIN_KEY)
        .await
        .map_err(|e| OidcError::Internal(e.to_string()))?;
    let Some(pending) = pending else {
        return Err(OidcError::StateMismatch);
    };
    if query.state.as_deref() != Some(pending.state.as_str()) {
        return Err(OidcError::StateMismatch);
    }
    if let Some(error) = query.error {
        // Both come from the query string: logged with control characters escaped.
        return Err(OidcError::Denied(format!(
            "{}: {}",
            error.escape_debug(),
            query.error_description.unwrap_or_default().escape_debug()
        )));
    }
    let code = query.code.ok_or(OidcError::StateMismatch)?;

    let (client, _) = state.oidc.client().await?;
    let token_response = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| OidcError::Internal(e.to_string()))?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier))
        .request_async(&state.oidc.http)
        .await
        .map_err(|e| match e {
            // The provider was not reached (or its answer was lost): not a
            // verdict on Paved's credentials.
            openidconnect::RequestTokenError::Request(_) => {
                OidcError::Unreachable(format!("token endpoint: {}", error_chain(&e)))
            }
            _ => OidcError::ClientRejected(error_chain(&e)),
        })?;

    use openidconnect::TokenResponse;
    let id_token = token_response
        .id_token()
        .ok_or_else(|| OidcError::InvalidIdToken("the token response has no id_token".into()))?;
    let verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &Nonce::new(pending.nonce))
        .map_err(|e| OidcError::InvalidIdToken(error_chain(&e)))?;

    // The signature was verified above; read the groups claim from the same payload.
    let groups = groups_from_jwt(&id_token.to_string(), &state.core.config.oidc.groups_claim);
    let grants = state.core.config.oidc.role_mapping.grants_for(&groups);
    let sign_in = SignIn {
        subject: claims.subject().to_string(),
        email: claims.email().map(|e| e.to_string()),
        name: claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.to_string()),
        grants,
    };
    let user_id = identity::upsert_from_sign_in(&state.core.db, &sign_in)
        .await
        .map_err(|e| OidcError::Internal(e.to_string()))?;
    state.core.principals.invalidate(user_id);
    paved_core::changes::publish(&state.core, paved_core::changes::Change::Person { user_id })
        .await;
    if identity::load_principal(
        &state.core.db,
        user_id,
        paved_core::auth::AuthMethod::Session,
    )
    .await
    .map_err(|e| OidcError::Internal(e.to_string()))?
    .is_none()
    {
        return Err(OidcError::Disabled);
    }
    tracing::info!(subject = %sign_in.subject, teams = ?sign_in.grants.teams.keys().collect::<Vec<_>>(), "signed in");

    // A new session id at sign-in defeats session fixation; the session now
    // lives as long as a signed-in one does.
    session
        .cycle_id()
        .await
        .map_err(|e| OidcError::Internal(e.to_string()))?;
    session.set_expiry(Some(Expiry::OnInactivity(
        tower_sessions::cookie::time::Duration::seconds(
            state.core.config.session_idle.as_secs() as i64
        ),
    )));
    session
        .insert(
            USER_KEY,
            SessionUser {
                user_id,
                signed_in_at: paved_core::now_unix(),
                last_seen: paved_core::now_unix(),
            },
        )
        .await
        .map_err(|e| OidcError::Internal(e.to_string()))?;
    session
        .insert(ID_TOKEN_KEY, id_token.to_string())
        .await
        .map_err(|e| OidcError::Internal(e.to_string()))?;
    Ok(Redirect::to(&pending.next).into_response())
}

/// Reads a claim (dotted path) holding a list of strings, or one string, from a JWT's payload.
pub fn groups_from_jwt(jwt: &str, claim: &str) -> Vec<String> {
    use base64::Engine;
    let Some(payload) = jwt.split('.').nth(1) else {
        return Vec::new();
    };
    let Ok(bytes) =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('='))
    else {
        return Vec::new();
    };
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Vec::new();
    };
    let mut value = &json;
    for part in claim.split('.') {
        match value.get(part) {
            Some(v) => value = v,
            None => return Vec::new(),
        }
    }
    match value {
        serde_json::Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        serde_json::Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// `POST /auth/logout`: ends the session here, then at the provider when it
/// offers an end-session endpoint.
pub async fn logout(State(state): State<AppState>, session: Session) -> Response {
    let id_token: Option<String> = session.get(ID_TOKEN_KEY).await.ok().flatten();
    if let Err(e) = session.flush().await {
        tracing::error!(error = %e, "could not delete the session");
    }
    let signed_out = state.core.config.public_url_for("/signin?signed_out=1");
    let end_session = match state.oidc.metadata().await {
        Ok(m) => m.additional_metadata().end_session_endpoint.clone(),
        Err(e) => {
            tracing::warn!(error = %e, "provider unreachable at sign-out; ending the local session only");
            None
        }
    };
    let Some(endpoint) = end_session else {
        return Redirect::to("/signin?signed_out=1").into_response();
    };
    let mut request = LogoutRequest::from(endpoint)
        .set_client_id(ClientId::new(state.core.config.oidc.client_id.clone()));
    if let Ok(url) = PostLogoutRedirectUrl::new(signed_out) {
        request = request.set_post_logout_redirect_uri(url);
    }
    let parsed = id_token
        .as_deref()
        .and_then(|t| CoreIdToken::from_str(t).ok());
    if let Some(token) = parsed.as_ref() {
        request = request.set_id_token_hint(token);
    }
    Redirect::to(request.http_get_url().as_str()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn jwt(payload: serde_json::Value) -> String {
        let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            enc.encode(b"{}"),
            enc.encode(payload.to_string())
        )
    }

    #[test]
    fn groups_claim_as_list_string_or_nested() {
        let t = jwt(
            serde_json::json!({"groups": ["a", "b", 3], "realm_access": {"roles": ["r"]}, "g": "solo"}),
        );
        assert_eq!(groups_from_jwt(&t, "groups"), vec!["a", "b"]);
        assert_eq!(groups_from_jwt(&t, "realm_access.roles"), vec!["r"]);
        assert_eq!(groups_from_jwt(&t, "g"), vec!["solo"]);
        assert!(groups_from_jwt(&t, "missing").is_empty());
        assert!(groups_from_jwt("not-a-jwt", "groups").is_empty());
    }

    #[test]
    fn next_is_kept_on_site() {
        let base = url::Url::parse("https://paved.example.com").unwrap();
        let next = |n| safe_next(&base, n);
        assert_eq!(next(Some("/teams/payments")), "/teams/payments");
        assert_eq!(next(Some("/catalog?kind=api#x")), "/catalog?kind=api#x");
        assert_eq!(next(Some("//evil.example")), "/");
        assert_eq!(next(Some("https://evil.example")), "/");
        assert_eq!(next(Some("/\\evil.example")), "/");
        assert_eq!(next(Some("/auth/login")), "/");
        assert_eq!(next(None), "/");
        // Browsers strip tabs and newlines: `/\t/evil` would become `//evil`.
        for hostile in [
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r//evil.example",
            "/x\\y",
            "/\u{7f}/evil",
        ] {
            assert_eq!(next(Some(hostile)), "/", "{hostile:?}");
        }
        assert_eq!(next(Some("/./auth/login")), "/");
    }
}
