//! `Status` bodies, shaped as the Kubernetes API server shapes them
//! (`k8s.io/apimachinery/pkg/api/errors`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::kinds::Kind;

/// A failed request: the HTTP code and its `Status` body.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status code, also the body's `code`.
    pub code: u16,
    /// The `Status` object.
    pub body: Value,
    /// Admission warnings to send along (`Warning` headers).
    pub warnings: Vec<String>,
}

/// `Warning: 299 - "text"`, as the API server relays admission warnings.
pub fn warning_header(text: &str) -> Option<HeaderValue> {
    HeaderValue::from_bytes(format!("299 - {}", quote(text)).as_bytes()).ok()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (
            code,
            [(header::CONTENT_TYPE, "application/json")],
            self.body.to_string(),
        )
            .into_response();
        for w in self.warnings.iter().filter_map(|w| warning_header(w)) {
            response.headers_mut().append(header::WARNING, w);
        }
        response
    }
}

/// A `Failure` Status. `details` is left out when `None`, as Kubernetes does
/// for e.g. `Unauthorized`.
pub fn failure(
    code: u16,
    reason: &str,
    message: impl Into<String>,
    details: Option<Value>,
) -> ApiError {
    let mut body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message.into(),
        "reason": reason,
    });
    if let Some(details) = details {
        body["details"] = details;
    }
    body["code"] = json!(code);
    ApiError {
        code,
        body,
        warnings: Vec::new(),
    }
}

/// `{"name", "group", "kind": <plural>}` as NotFound/AlreadyExists carry them.
fn resource_details(kind: &Kind, name: &str) -> Value {
    let mut d = json!({"name": name});
    if !kind.group.is_empty() {
        d["group"] = json!(kind.group);
    }
    d["kind"] = json!(kind.plural);
    d
}

/// 404 `deployments.apps "x" not found`.
pub fn not_found(kind: &Kind, name: &str) -> ApiError {
    failure(
        404,
        "NotFound",
        format!("{} \"{name}\" not found", kind.qualified_resource()),
        Some(resource_details(kind, name)),
    )
}

/// 404 for a path that names no resource.
pub fn no_such_resource() -> ApiError {
    failure(
        404,
        "NotFound",
        "the server could not find the requested resource",
        Some(json!({})),
    )
}

/// 409 `deployments.apps "x" already exists`.
pub fn already_exists(kind: &Kind, name: &str) -> ApiError {
    failure(
        409,
        "AlreadyExists",
        format!("{} \"{name}\" already exists", kind.qualified_resource()),
        Some(resource_details(kind, name)),
    )
}

/// 409 for a write based on a stale `resourceVersion`.
pub fn modified(kind: &Kind, name: &str) -> ApiError {
    failure(
        409,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            kind.qualified_resource()
        ),
        Some(resource_details(kind, name)),
    )
}

/// 400 BadRequest.
pub fn bad_request(message: impl Into<String>) -> ApiError {
    failure(400, "BadRequest", message, None)
}

/// 401, exactly as an API server refuses a missing or wrong token.
pub fn unauthorized() -> ApiError {
    failure(401, "Unauthorized", "Unauthorized", None)
}

/// 405 for a verb the resource does not serve here.
pub fn method_not_allowed() -> ApiError {
    failure(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
        Some(json!({})),
    )
}

/// 415 for a PATCH content type the stub does not speak.
pub fn unsupported_media_type(content_type: &str) -> ApiError {
    failure(
        415,
        "UnsupportedMediaType",
        format!("the body of the request was in an unknown format ({content_type}) - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml"),
        Some(json!({})),
    )
}

/// 500 `Internal error occurred: ...`.
pub fn internal(message: &str) -> ApiError {
    failure(
        500,
        "InternalError",
        format!("Internal error occurred: {message}"),
        Some(json!({"causes": [{"message": message}]})),
    )
}

/// One field error, as `field.Error` prints it.
#[derive(Debug, Clone)]
pub struct FieldError {
    /// `spec.template.spec.containers[0].image`.
    pub field: String,
    /// `None` for Required; else the Go-formatted bad value and why.
    pub invalid: Option<(String, String)>,
}

impl FieldError {
    /// `field: Required value`.
    pub fn required(field: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            invalid: None,
        }
    }

    /// `field: Invalid value: <value>: <detail>`.
    pub fn invalid(
        field: impl Into<String>,
        value: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            invalid: Some((value.into(), detail.into())),
        }
    }

    fn message(&self) -> String {
        match &self.invalid {
            None => "Required value".to_owned(),
            Some((value, detail)) => format!("Invalid value: {value}: {detail}"),
        }
    }
}

/// 422 Invalid: `Deployment.apps "x" is invalid: <errors>`.
pub fn invalid(
    group: &str,
    qualified_kind: &str,
    kind: &str,
    name: &str,
    errors: &[FieldError],
) -> ApiError {
    let printed: Vec<String> = errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message()))
        .collect();
    let joined = if printed.len() == 1 {
        printed[0].clone()
    } else {
        format!("[{}]", printed.join(", "))
    };
    let causes: Vec<Value> = errors
        .iter()
        .map(|e| {
            json!({
                "reason": if e.invalid.is_some() { "FieldValueInvalid" } else { "FieldValueRequired" },
                "message": e.message(),
                "field": e.field,
            })
        })
        .collect();
    let mut details = json!({"name": name});
    if name.is_empty() {
        details = json!({});
    }
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    details["kind"] = json!(kind);
    details["causes"] = json!(causes);
    failure(
        422,
        "Invalid",
        format!("{qualified_kind} \"{name}\" is invalid: {joined}"),
        Some(details),
    )
}

/// Go's `%q` for a string, close enough: JSON string quoting.
pub fn quote(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}
