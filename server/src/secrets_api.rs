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
use paved_shared::secrets::{AccessView, HolderSecrets, SecretDetail, StepOutcome};
use secrecy::SecretString;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, JsonObject};
use crate::openapi::BearerAuth;
use crate::AppState;

/// The OpenAPI document of this API, generated from the handlers and types
/// below (committed as `docs/secrets-openapi.json`; a test keeps them equal).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Paved secrets API",
        version = "1",
        description = "Write-only Vault (KV v2) secrets per team and service. Values go to Vault only: responses carry paths, versions, the Vault policy and Kubernetes auth role, and the Vault Agent Injector annotations, never values. Authenticate with a bearer token (personal token or service token). Members of a team create and rotate its secrets; only team leads and platform admins delete versions or destroy secrets."
    ),
    servers((url = "/api/secrets/v1")),
    paths(list, provision, put_secret, detail, destroy, delete_version),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct SecretsApi;

/// The refusals every call of this API may answer with.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
enum Refusals {
    /// Not signed in / no valid bearer token
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// Not a member (or lead) of the team
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// No such service (Component owned by the team) or secret
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// Invalid name, key or body; the message names the field and never quotes a value
    #[response(status = 422)]
    Invalid(ErrorBody),
    /// Vault is sealed, unreachable or not configured; nothing was changed
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// The body of a secret write.
// Read field by field through `parse_put_body`, so no error ever quotes a
// value; this type only describes it.
#[derive(ToSchema)]
#[allow(dead_code)]
struct PutSecret {
    /// Key names (letters, digits, _) to values; 1 to 50 keys.
    data: BTreeMap<String, String>,
    /// Check-and-set: 0 creates only; n writes only if version n is current.
    /// Omitted: write over the current version.
    #[schema(minimum = 0)]
    cas: Option<i64>,
}

/// The answer to a write.
#[derive(Serialize, ToSchema)]
struct PutResult {
    /// The KV v2 data path.
    #[schema(example = "secret/data/platform/payments/payments-api/database")]
    path: String,
    /// The version written.
    version: i64,
    /// Whether this created the secret (version 1).
    created: bool,
    /// The Vault ACL policy workloads read it with.
    policy: Option<String>,
    /// The Kubernetes auth role (services only).
    role: Option<String>,
    /// The Vault Agent Injector annotations for the service's pods.
    annotations: BTreeMap<String, String>,
    /// Secret, policy and role steps.
    steps: Vec<StepOutcome>,
    /// Vault's request id of the write, to match Vault's audit log.
    vault_request_id: Option<String>,
    /// Present on 502 only: the value was saved, its workload access is incomplete.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Incomplete>,
}

/// Why a saved secret's access is incomplete.
#[derive(Serialize, ToSchema)]
struct Incomplete {
    /// `IncompleteProvisioning`.
    name: &'static str,
    /// What to do.
    message: &'static str,
}

/// The answer to `POST /{team}/{service}/provision`.
#[derive(Serialize, ToSchema)]
struct Provisioned {
    /// The policy and role steps.
    steps: Vec<StepOutcome>,
    /// What workloads need, and whether it is in place.
    access: AccessView,
}

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

fn put_result(outcome: WriteOutcome) -> PutResult {
    let access = outcome.access;
    PutResult {
        path: outcome.secret.path,
        version: outcome.secret.current_version,
        created: outcome.created,
        policy: access.as_ref().map(|a| a.policy_name.clone()),
        role: access.as_ref().and_then(|a| a.role_name.clone()),
        annotations: access
            .map(|a| a.annotations.into_iter().collect())
            .unwrap_or_default(),
        steps: outcome.steps,
        vault_request_id: outcome.vault_request_id,
        error: None,
    }
}

/// `PUT /{team}/{service}/{name}`: 201 on the first version, 200 on a new one.
/// When the value was written but its policy or role was not, 502 with the
/// steps, so the caller knows what is missing (re-running converges).
#[utoipa::path(
    put,
    path = "/{team}/{service}/{name}",
    summary = "Create or rotate a secret, then converge its policy and role",
    params(
        ("team" = String, Path, description = "Team name (the catalog Group)."),
        ("service" = String, Path, description = "Catalog Component name owned by the team, or `_team` for the team's shared secrets."),
        ("name" = String, Path, description = "The secret's name: lowercase letters, digits and single hyphens, at most 40 characters."),
    ),
    request_body = PutSecret,
    responses(
        (status = 201, description = "Created (version 1)", body = PutResult),
        (status = 200, description = "Rotated (a new version)", body = PutResult),
        (status = 409, description = "Check-and-set failed: someone wrote a newer version, or the secret exists and cas was 0", body = ErrorBody),
        (status = 502, description = "The value was written but the policy or role was not; see steps and re-run", body = PutResult),
        Refusals,
    )
)]
async fn put_secret(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath((team, service, name)): ApiPath<(String, String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let target = target(&team, &service, &name)?;
    let (values, cas) = parse_put_body(body)?;
    let outcome = secrets::write(&state.core, &principal, &target, values, cas).await?;
    let (complete, created) = (outcome.complete(), outcome.created);
    let mut answer = put_result(outcome);
    let status = if !complete {
        answer.error = Some(Incomplete {
            name: "IncompleteProvisioning",
            message: "The secret was saved, but its workload access is incomplete; see steps. Re-run with POST .../provision.",
        });
        StatusCode::BAD_GATEWAY
    } else if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(answer)).into_response())
}

/// `GET /{team}/{service}`: the secrets' metadata with access state.
#[utoipa::path(
    get,
    path = "/{team}/{service}",
    summary = "List a service's (or the team's) secrets: metadata and access state",
    params(
        ("team" = String, Path, description = "Team name (the catalog Group)."),
        ("service" = String, Path, description = "Catalog Component name owned by the team, or `_team` for the team's shared secrets."),
    ),
    responses((status = 200, description = "The secrets", body = HolderSecrets), Refusals)
)]
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
#[utoipa::path(
    get,
    path = "/{team}/{service}/{name}",
    summary = "A secret's metadata and versions (never values)",
    params(
        ("team" = String, Path, description = "Team name (the catalog Group)."),
        ("service" = String, Path, description = "Catalog Component name owned by the team, or `_team` for the team's shared secrets."),
        ("name" = String, Path, description = "The secret's name: lowercase letters, digits and single hyphens, at most 40 characters."),
    ),
    responses((status = 200, description = "The secret", body = SecretDetail), Refusals)
)]
async fn detail(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath((team, service, name)): ApiPath<(String, String, String)>,
) -> Result<Response, ApiError> {
    let target = target(&team, &service, &name)?;
    Ok(Json(secrets::detail(&state.core, &principal, &target).await?).into_response())
}

/// `DELETE /{team}/{service}/{name}`: destroys every version (leads and admins).
#[utoipa::path(
    delete,
    path = "/{team}/{service}/{name}",
    summary = "Destroy every version and the metadata (team leads and platform admins)",
    params(
        ("team" = String, Path, description = "Team name (the catalog Group)."),
        ("service" = String, Path, description = "Catalog Component name owned by the team, or `_team` for the team's shared secrets."),
        ("name" = String, Path, description = "The secret's name: lowercase letters, digits and single hyphens, at most 40 characters."),
    ),
    responses((status = 204, description = "Destroyed"), Refusals)
)]
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
#[utoipa::path(
    delete,
    path = "/{team}/{service}/{name}/versions/{version}",
    summary = "Soft-delete one version (team leads and platform admins; Vault can undelete it)",
    params(
        ("team" = String, Path, description = "Team name (the catalog Group)."),
        ("service" = String, Path, description = "Catalog Component name owned by the team, or `_team` for the team's shared secrets."),
        ("name" = String, Path, description = "The secret's name: lowercase letters, digits and single hyphens, at most 40 characters."),
        ("version" = i64, Path, minimum = 1, description = "The version to delete."),
    ),
    responses((status = 204, description = "Deleted"), Refusals)
)]
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
#[utoipa::path(
    post,
    path = "/{team}/{service}/provision",
    summary = "Re-run the policy and Kubernetes role steps (idempotent)",
    params(
        ("team" = String, Path, description = "Team name (the catalog Group)."),
        ("service" = String, Path, description = "Catalog Component name owned by the team, or `_team` for the team's shared secrets."),
    ),
    responses(
        (status = 200, description = "Everything in place", body = Provisioned),
        (status = 502, description = "A step failed; see steps", body = Provisioned),
        Refusals,
    )
)]
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
    Ok((status, Json(Provisioned { steps, access })).into_response())
}

/// `GET /openapi.json`: the OpenAPI document for this API.
async fn openapi() -> Response {
    Json(SecretsApi::openapi()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/secrets-openapi.json` is what the code generates. After changing
    /// the API, `PAVED_WRITE_OPENAPI=1 cargo test -p paved openapi` rewrites it.
    #[test]
    fn the_committed_openapi_document_is_the_generated_one() {
        crate::openapi::compare(
            &SecretsApi::openapi(),
            concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/secrets-openapi.json"),
        );
    }

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
