//! The error type every server function returns, shared by server and browser.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// What went wrong, in words fit for the person using the portal. Internal
/// details (SQL, upstream bodies, secrets) never travel in here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// Not signed in (401).
    #[error("Your session has ended. Please sign in again.")]
    Unauthenticated,
    /// Signed in but not allowed (403).
    #[error("{0}")]
    Forbidden(String),
    /// Nothing there (404).
    #[error("{0}")]
    NotFound(String),
    /// Bad input (422), naming the field.
    #[error("{message}")]
    Invalid {
        /// The form field at fault.
        field: String,
        /// What to fix.
        message: String,
    },
    /// Several answers need fixing (422), as (field path, message).
    #[error("Some answers need fixing: {}", .0.iter().map(|(f, m)| format!("{f} {m}")).collect::<Vec<_>>().join("; "))]
    InvalidFields(Vec<(String, String)>),
    /// Clashes with existing state (409).
    #[error("{0}")]
    Conflict(String),
    /// A service Paved depends on (Vault) is down or sealed (503).
    #[error("{0}")]
    Unavailable(String),
    /// A service Paved depends on refused the request (502).
    #[error("{0}")]
    Upstream(String),
    /// Asked too often (429); the message says when to try again.
    #[error("{0}")]
    TooManyRequests(String),
    /// Our fault (500); the details are in the server log.
    #[error("Something went wrong on our side. It has been logged; please try again.")]
    Internal,
    /// The request never reached the server or its answer was unreadable.
    #[error("Could not reach Paved: {0}")]
    Transport(String),
}

impl AppError {
    /// The HTTP status this error stands for.
    pub fn status(&self) -> u16 {
        match self {
            AppError::Unauthenticated => 401,
            AppError::Forbidden(_) => 403,
            AppError::NotFound(_) => 404,
            AppError::Invalid { .. } | AppError::InvalidFields(_) => 422,
            AppError::Conflict(_) => 409,
            AppError::Unavailable(_) => 503,
            AppError::Upstream(_) => 502,
            AppError::TooManyRequests(_) => 429,
            AppError::Internal | AppError::Transport(_) => 500,
        }
    }

    /// The message for `field`, when this is a validation error about it.
    pub fn field_message(&self, field: &str) -> Option<String> {
        match self {
            AppError::Invalid { field: f, message } if f == field => Some(message.clone()),
            AppError::InvalidFields(list) => list
                .iter()
                .find(|(f, _)| f == field)
                .map(|(_, m)| m.clone()),
            _ => None,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::Transport(value.to_string())
    }
}
