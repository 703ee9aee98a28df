//! Server-side helpers for server functions: the caller, the core state and
//! error mapping (which also sets the response's status code).

use leptos::prelude::*;
use leptos_axum::ResponseOptions;
use paved_core::auth::Principal;
use paved_core::{CoreError, CoreState};

use crate::error::AppError;

/// The signed-in caller, put in the request by the server's authentication
/// middleware. Every server function calls this first.
pub fn require_user() -> Result<Principal, AppError> {
    use_context::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Principal>().cloned())
        .ok_or_else(|| fail(AppError::Unauthenticated))
}

/// The domain state (database pool, configuration).
pub fn core() -> Result<CoreState, AppError> {
    use_context::<CoreState>().ok_or_else(|| {
        tracing::error!("CoreState missing from the Leptos context");
        fail(AppError::Internal)
    })
}

/// Sets the response status for `err` and returns it.
pub fn fail(err: AppError) -> AppError {
    if let Some(options) = use_context::<ResponseOptions>() {
        if let Ok(status) = http::StatusCode::from_u16(err.status()) {
            options.set_status(status);
        }
    }
    err
}

impl From<paved_core::auth::Forbidden> for AppError {
    fn from(refusal: paved_core::auth::Forbidden) -> Self {
        fail(AppError::Forbidden(refusal.0))
    }
}

impl From<CoreError> for AppError {
    fn from(err: CoreError) -> Self {
        let mapped = match err {
            CoreError::Unauthenticated => AppError::Unauthenticated,
            CoreError::Forbidden(m) => AppError::Forbidden(m),
            CoreError::NotFound(what) => AppError::NotFound(format!("{what} was not found.")),
            CoreError::Invalid { field, message } => AppError::Invalid {
                field: field.to_owned(),
                message,
            },
            CoreError::Conflict(m) => AppError::Conflict(m),
            CoreError::InvalidFields(list) => AppError::InvalidFields(list),
            CoreError::Unavailable(m) => AppError::Unavailable(m),
            CoreError::Upstream(m) => AppError::Upstream(m),
            CoreError::TooManyRequests(m) => AppError::TooManyRequests(m),
            CoreError::Database(e) => {
                tracing::error!(error = %e, "database error in a server function");
                AppError::Internal
            }
        };
        fail(mapped)
    }
}
