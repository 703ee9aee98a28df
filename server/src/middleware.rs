//! Request authentication (bearer token or session), the CSRF origin check
//! for browser writes, and the gate that sends anonymous callers to sign-in
//! (pages) or answers 401 (APIs and server functions).

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use paved_core::auth::{AuthMethod, Principal};
use paved_core::config::service_token_matches;
use paved_core::{identity, tokens};
use secrecy::SecretString;
use tower_sessions::Session;

use crate::session::{SessionUser, IDLE_REFRESH_SECS, USER_KEY};
use crate::AppState;

/// A refusal in the APIs' one error envelope ([`crate::error::ApiError`]).
pub fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    crate::error::ApiError::status(status, message).into_response()
}

/// Paths anyone may request without signing in.
fn is_public(path: &str) -> bool {
    path == "/signin"
        || path == "/healthz"
        || path == "/readyz"
        || path == "/favicon.svg"
        || path.starts_with("/auth/")
        || path.starts_with("/pkg/")
}

fn is_api(path: &str) -> bool {
    path.starts_with("/api/")
}

/// Authenticates the request and stores the [`Principal`] in its extensions.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let bearer = match bearer_token(request.headers()) {
        Ok(b) => b,
        Err(message) => return json_error(StatusCode::UNAUTHORIZED, message),
    };

    let principal = if let Some(token) = bearer {
        match principal_from_token(&state, token).await {
            Ok(Some(p)) => Some(p),
            Ok(None) => {
                return json_error(
                    StatusCode::UNAUTHORIZED,
                    "The bearer token is not valid or has been revoked.",
                )
            }
            Err(response) => return response,
        }
    } else {
        // Browser requests carry ambient cookies, so writes must come from our own origin.
        if !is_safe_method(request.method())
            && !same_origin(request.headers(), &state.core.config.public_origin())
        {
            return json_error(
                StatusCode::FORBIDDEN,
                "Cross-origin request refused: this change must come from a Paved page.",
            );
        }
        match request.extensions().get::<Session>().cloned() {
            Some(session) => match principal_from_session(&state, &session).await {
                Ok(p) => p,
                Err(response) => return response,
            },
            None => None,
        }
    };

    match principal {
        Some(p) => {
            if let Some(user) = p.user_id {
                let now = state.core.budgets.ledger.now_ms() / 1000;
                state.core.activity.touch(&state.core.db, user, now);
            }
            request.extensions_mut().insert(p);
            next.run(request).await
        }
        None if is_public(&path) => next.run(request).await,
        None if is_api(&path) => {
            json_error(StatusCode::UNAUTHORIZED, "Sign in or send a bearer token.")
        }
        None => {
            let target = request
                .uri()
                .path_and_query()
                .map(|pq| pq.as_str().to_owned())
                .unwrap_or_else(|| "/".into());
            let location = if target == "/" {
                "/signin".to_owned()
            } else {
                format!(
                    "/signin?next={}",
                    url::form_urlencoded::byte_serialize(target.as_bytes()).collect::<String>()
                )
            };
            Redirect::to(&location).into_response()
        }
    }
}

fn is_safe_method(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether `Origin` (or, when absent, `Referer`) names the public origin.
fn same_origin(headers: &HeaderMap, public_origin: &str) -> bool {
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        return origin == public_origin;
    }
    if let Some(referer) = headers.get(header::REFERER).and_then(|v| v.to_str().ok()) {
        return url::Url::parse(referer)
            .map(|u| u.origin().ascii_serialization() == public_origin)
            .unwrap_or(false);
    }
    false
}

/// `Ok(None)` without an Authorization header; `Err` when it is present but not `Bearer <token>`.
fn bearer_token(headers: &HeaderMap) -> Result<Option<String>, &'static str> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| "The Authorization header is not valid text.")?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or("Use `Authorization: Bearer <token>`.")?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err("Use `Authorization: Bearer <token>`.");
    }
    Ok(Some(token.trim().to_owned()))
}

async fn principal_from_token(
    state: &AppState,
    token: String,
) -> Result<Option<Principal>, Response> {
    let config = &state.core.config;
    if let Some(service) = config
        .service_tokens
        .iter()
        .find(|t| service_token_matches(t, &token))
    {
        let mut principal = Principal {
            user_id: None,
            subject: service.name.clone(),
            display_name: format!("{} (service token)", service.name),
            email: None,
            method: AuthMethod::ServiceToken,
            platform_roles: Default::default(),
            teams: Default::default(),
        };
        match &service.role {
            paved_core::auth::MappedRole::Platform(role) => {
                principal.platform_roles.insert(*role);
            }
            paved_core::auth::MappedRole::Team { team, role } => {
                principal.teams.insert(team.clone(), *role);
            }
        }
        return Ok(Some(principal));
    }
    let secret = SecretString::from(token);
    let user_id = tokens::authenticate(&state.core.db, &secret, &state.core.config.tokens)
        .await
        .map_err(internal)?;
    match user_id {
        None => Ok(None),
        Some(id) => identity::load_principal(&state.core.db, id, AuthMethod::PersonalToken)
            .await
            .map_err(internal),
    }
}

async fn principal_from_session(
    state: &AppState,
    session: &Session,
) -> Result<Option<Principal>, Response> {
    let user: Option<SessionUser> = match session.get(USER_KEY).await {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(error = %e, "unreadable session; treating as signed out");
            None
        }
    };
    let Some(user) = user else {
        return Ok(None);
    };
    let now = paved_core::now_unix();
    let max_age = state.core.config.session_max_age.as_secs() as i64;
    if now - user.signed_in_at > max_age {
        // Absolute expiry: however active, a session ends `PAVED_SESSION_MAX_HOURS` after sign-in.
        let _ = session.flush().await;
        return Ok(None);
    }
    let principal = state
        .core
        .principals
        .session_principal(&state.core.db, user.user_id)
        .await
        .map_err(internal)?;
    if principal.is_none() {
        let _ = session.flush().await;
    } else if now - user.last_seen >= IDLE_REFRESH_SECS {
        // Modifying the session makes tower-sessions save it with a new idle expiry.
        let refreshed = SessionUser {
            last_seen: now,
            ..user
        };
        if let Err(e) = session.insert(USER_KEY, refreshed).await {
            tracing::warn!(error = %e, "could not refresh the session's idle expiry");
        }
    }
    Ok(principal)
}

fn internal(err: paved_core::CoreError) -> Response {
    tracing::error!(error = %err, source = ?std::error::Error::source(&err), "authentication lookup failed");
    json_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong on our side; it has been logged.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_token(&h), Ok(None));
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer_token(&h), Ok(Some("abc".into())));
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert!(bearer_token(&h).is_err());
        h.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
        assert!(bearer_token(&h).is_err());
    }

    #[test]
    fn origin_check_prefers_origin_then_referer() {
        let public = "http://127.0.0.1:3000";
        let mut h = HeaderMap::new();
        assert!(!same_origin(&h, public));
        h.insert(
            header::REFERER,
            "http://127.0.0.1:3000/profile".parse().unwrap(),
        );
        assert!(same_origin(&h, public));
        h.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert!(!same_origin(&h, public));
        h.insert(header::ORIGIN, public.parse().unwrap());
        assert!(same_origin(&h, public));
    }
}

/// This response's Content-Security-Policy nonce, put in the request's
/// extensions for Leptos (which stamps it on its inline scripts) and used
/// for the header once the page is rendered.
#[derive(Debug, Clone)]
pub struct CspNonce(pub String);

/// Gives every request a fresh nonce and every HTML answer the
/// Content-Security-Policy naming it (`app::content_security_policy`).
pub async fn content_security_policy(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 18];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let nonce = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    request.extensions_mut().insert(CspNonce(nonce.clone()));
    let mut response = next.run(request).await;
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html"));
    if html
        && !response
            .headers()
            .contains_key(header::CONTENT_SECURITY_POLICY)
    {
        let idp = state.core.config.oidc.issuer.origin().ascii_serialization();
        if let Ok(value) =
            header::HeaderValue::from_str(&app::content_security_policy(&nonce, &idp))
        {
            response
                .headers_mut()
                .insert(header::CONTENT_SECURITY_POLICY, value);
        }
    }
    response
}
