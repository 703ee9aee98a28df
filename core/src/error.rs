//! The domain layer's one error type. HTTP layers map it to status codes.

/// Errors from domain calls. Messages are safe to show a user: they never
/// contain SQL text or secret values (database errors are logged, not shown).
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The caller is not signed in or its credentials are not valid.
    #[error("sign-in required")]
    Unauthenticated,
    /// The caller is known but lacks the role for this action.
    #[error("{0}")]
    Forbidden(String),
    /// The thing asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// Input failed validation; `field` names the offending input.
    #[error("{field}: {message}")]
    Invalid {
        /// The input field at fault.
        field: &'static str,
        /// What is wrong with it, for a person.
        message: String,
    },
    /// Several inputs failed validation, as (field path, message) — a form's answers.
    #[error("{}", .0.iter().map(|(f, m)| format!("{f}: {m}")).collect::<Vec<_>>().join("; "))]
    InvalidFields(Vec<(String, String)>),
    /// The change conflicts with existing state (e.g. a unique name).
    #[error("{0}")]
    Conflict(String),
    /// A service Paved depends on (Vault) is sealed, unreachable or not configured.
    #[error("{0}")]
    Unavailable(String),
    /// A service Paved depends on refused or failed a request; the message says which step.
    #[error("{0}")]
    Upstream(String),
    /// The caller asked too often; the message says when to try again.
    #[error("{0}")]
    TooManyRequests(String),
    /// The database failed; the detail is logged, never shown.
    #[error("database error")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for CoreError {
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err {
            if db.is_unique_violation() {
                return CoreError::Conflict("that name is already taken".into());
            }
            if db.is_foreign_key_violation() || db.is_check_violation() {
                return CoreError::Invalid {
                    field: "input",
                    message: "refers to something that does not exist or is not allowed".into(),
                };
            }
        }
        CoreError::Database(err)
    }
}

impl From<crate::auth::Forbidden> for CoreError {
    fn from(refusal: crate::auth::Forbidden) -> Self {
        CoreError::Forbidden(refusal.0)
    }
}

impl CoreError {
    /// The HTTP status code this error stands for.
    pub fn status_code(&self) -> u16 {
        match self {
            CoreError::Unauthenticated => 401,
            CoreError::Forbidden(_) => 403,
            CoreError::NotFound(_) => 404,
            CoreError::Invalid { .. } | CoreError::InvalidFields(_) => 422,
            CoreError::Conflict(_) => 409,
            CoreError::Unavailable(_) => 503,
            CoreError::Upstream(_) => 502,
            CoreError::TooManyRequests(_) => 429,
            CoreError::Database(_) => 500,
        }
    }
}
