//! `/api/secrets/v1`: secret provisioning for pipelines, with bearer tokens
//! and the same rules as the UI. Answers carry paths, versions, policy, role
//! and annotations, never values. The service segment `_team` addresses a
//! team's shared secrets.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use paved_core::auth::Principal;
use paved_core::secrets::{self, naming, SecretValues, WriteOutcome};
use paved_core::CoreError;
use secrecy::SecretString;
use serde_json::json;

use crate::error::ApiError;
use crate::extract::{ApiPath, JsonObject};
use crate::AppState;

/// The secrets API routes (mounted at `/api/secrets/v1`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/{team}/{service}", get(list))
        .route("/{team}/{service}/provision", post(provision))
        .route(
            "/{team}/{service}/{name}",
            get(detail).put(put_secret).delete(destroy),
        )
        .route(
            "/{team}/{service}/{name}/versions/{version}",
            delete(delete_version),
        )
}

fn holder(service: &str) -> naming::Holder {
    if service == naming::TEAM_SEGMENT {
        naming::Holder::Team
    } else {
        naming::Holder::Service(service.to_ascii_lowercase())
    }
}

fn target(team: &str, service: &str, name: &str) -> Result<naming::SecretTarget, CoreError> {
    if service == naming::TEAM_SEGMENT {
        naming::SecretTarget::team_wide(team, name)
    } else {
        naming::SecretTarget::service(team, service, name)
    }
}

/// Reads `{"data": {"KEY": "value", ...}, "cas": n?}` without ever echoing a
/// value in an error (serde's messages can quote the offending input).
fn parse_put_body(
    mut object: serde_json::Map<String, serde_json::Value>,
) -> Result<(SecretValues, Option<i64>), CoreError> {
    let invalid = |field: &'static str, message: &str| CoreError::Invalid {
        field,
        message: message.to_owned(),
    };
    let cas = match object.remove("cas") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => Some(
            n.as_i64()
                .filter(|v| *v >= 0)
                .ok_or_else(|| invalid("cas", "must be 0 or a version number"))?,
        ),
        Some(_) => return Err(invalid("cas", "must be 0 or a version number")),
    };
    let Some(serde_json::Value::Object(data)) = object.remove("data") else {
        return Err(invalid(
            "data",
            "must be an object of key names to string values",
        ));
    };
    Ok((
        SecretValues::from_pairs(secret_strings("data", data)?)?,
        cas,
    ))
}

/// A JSON object of names to secret strings, held as secrets from here on.
/// A value that is not a string is refused naming its key, never quoting it
/// (serde's own messages would).
pub(crate) fn secret_strings(
    field: &'static str,
    map: serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<(String, SecretString)>, CoreError> {
    map.into_iter()
        .map(|(key, value)| match value {
            serde_json::Value::String(s) => Ok((key, SecretString::from(s))),
            _ => Err(CoreError::Invalid {
                field,
                message: format!(
                    "the value of {} must be a string",
                    key.chars().take(40).collect::<String>()
                ),
            }),
        })
        .collect()
}

fn outcome_json(outcome: &WriteOutcome) -> serde_json::Value {
    let annotations: BTreeMap<&str, &str> = outcome
        .access
        .as_ref()
        .map(|a| {
            a.annotations
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "path": outcome.secret.path,
        "version": outcome.secret.current_version,
        "created": outcome.created,
        "policy": outcome.access.as_ref().map(|a| a.policy_name.clone()),
        "role": outcome.access.as_ref().and_then(|a| a.role_name.clone()),
        "annotations": annotations,
        "steps": outcome.steps,
        "vault_request_id": outcome.vault_request_id,
    })
}

/// `PUT /{team}/{service}/{name}`: 201 on the first version, 200 on a new one.
/// When the value was written but its policy or role was not, 502 with the
/// steps, so the caller knows what is missing (re-running converges).
async fn put_secret(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath((team, service, name)): ApiPath<(String, String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let target = target(&team, &service, &name)?;
    let (values, cas) = parse_put_body(body)?;
    let outcome = secrets::write(&state.core, &principal, &target, values, cas).await?;
    let mut answer = outcome_json(&outcome);
    let status = if !outcome.complete() {
        answer["error"] = json!({
            "name": "IncompleteProvisioning",
            "message": "The secret was saved, but its workload access is incomplete; see steps. Re-run with POST .../provision.",
        });
        StatusCode::BAD_GATEWAY
    } else if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(answer)).into_response())
}

/// `GET /{team}/{service}`: the secrets' metadata with access state.
async fn list(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath((team, service)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let holder = holder(&service);
    // Validates the names the same way writes do.
    target(&team, &service, "probe")?;
    let secrets = secrets::list(&state.core, &principal, &team, &holder).await?;
    Ok(Json(secrets).into_response())
}

/// `GET /{team}/{service}/{name}`: metadata and versions.
async fn detail(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath((team, service, name)): ApiPath<(String, String, String)>,
) -> Result<Response, ApiError> {
    let target = target(&team, &service, &name)?;
    Ok(Json(secrets::detail(&state.core, &principal, &target).await?).into_response())
}

/// `DELETE /{team}/{service}/{name}`: destroys every version (leads and admins).
async fn destroy(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath((team, service, name)): ApiPath<(String, String, String)>,
) -> Result<Response, ApiError> {
    let target = target(&team, &service, &name)?;
    secrets::destroy(&state.core, &principal, &target, &target.name.clone()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /{team}/{service}/{name}/versions/{version}`: soft-deletes one version.
async fn delete_version(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath((team, service, name, version)): ApiPath<(String, String, String, i64)>,
) -> Result<Response, ApiError> {
    let target = target(&team, &service, &name)?;
    secrets::delete_version(&state.core, &principal, &target, version).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /{team}/{service}/provision`: re-runs the policy and role steps.
async fn provision(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath((team, service)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    target(&team, &service, "probe")?;
    let (steps, access) =
        secrets::reconverge(&state.core, &principal, &team, &holder(&service)).await?;
    let status = if access.complete {
        StatusCode::OK
    } else {
        StatusCode::BAD_GATEWAY
    };
    Ok((status, Json(json!({"steps": steps, "access": access}))).into_response())
}

/// `GET /openapi.json`: the OpenAPI document for this API.
async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("../../docs/secrets-openapi.json"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_put_body(body: &[u8]) -> Result<(SecretValues, Option<i64>), ApiError> {
        Ok(super::parse_put_body(JsonObject::parse(body)?.0)?)
    }

    #[test]
    fn put_body_errors_never_quote_values() {
        for body in [
            r#"{"data": {"TOKEN": 987654321}}"#,
            r#"{"data": "987654321"}"#,
            r#"{"data": {"TOKEN": "987654321"}, "cas": "987654321"}"#,
            r#"{"data": {"TOKEN": "987654321""#,
        ] {
            let err = parse_put_body(body.as_bytes()).unwrap_err();
            assert_eq!(err.status_code(), 422);
            assert!(!err.to_string().contains("987654321"), "{err}");
        }
        let (values, cas) =
            parse_put_body(br#"{"data": {"TOKEN": "987654321"}, "cas": 2}"#).unwrap();
        assert_eq!(values.keys().collect::<Vec<_>>(), ["TOKEN"]);
        assert_eq!(cas, Some(2));
    }
}
