//! What Paved keeps in a browser session (server-side, in SQLite).

use serde::{Deserialize, Serialize};

/// Session key of the signed-in user.
pub const USER_KEY: &str = "user";
/// Session key of the raw ID token, used as `id_token_hint` at sign-out.
pub const ID_TOKEN_KEY: &str = "id_token";
/// Session key of a sign-in in progress (state, nonce, PKCE verifier).
pub const PENDING_LOGIN_KEY: &str = "oidc_pending";
/// The session cookie's name.
pub const COOKIE_NAME: &str = "paved_session";
/// The cookie's name behind https: the `__Host-` prefix makes browsers
/// refuse it unless it is `Secure`, host-only and for path `/`, so a sibling
/// subdomain cannot plant or overwrite it.
pub const SECURE_COOKIE_NAME: &str = "__Host-paved_session";

/// The signed-in user of a session.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct SessionUser {
    /// `users.id`.
    pub user_id: i64,
    /// Unix seconds; the absolute session lifetime counts from here.
    pub signed_in_at: i64,
    /// Unix seconds of the last request that refreshed the idle timeout.
    #[serde(default)]
    pub last_seen: i64,
}

/// How stale `last_seen` may get before a request refreshes it. Refreshing
/// saves the session (and so extends its idle expiry); doing it at most once a
/// minute keeps reads from turning into writes.
pub const IDLE_REFRESH_SECS: i64 = 60;
