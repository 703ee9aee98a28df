//! Extractors for the JSON APIs whose refusals answer in the one error
//! envelope ([`ApiError`]) and never quote what was sent.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use paved_core::CoreError;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// A request body that must be a JSON object.
#[derive(Debug)]
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|r| ApiError::status(r.status(), "The request body could not be read."))?;
        Self::parse(&bytes)
    }
}

impl JsonObject {
    /// Reads `bytes` as a JSON object, naming the body (never quoting it) when it is not one.
    pub fn parse(bytes: &[u8]) -> Result<Self, ApiError> {
        let invalid = |message: &str| {
            ApiError::from(CoreError::Invalid {
                field: "body",
                message: message.to_owned(),
            })
        };
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(JsonObject(map)),
            Ok(_) => Err(invalid("must be a JSON object")),
            Err(_) => Err(invalid("is not valid JSON")),
        }
    }
}

/// A JSON object request body read as `T`; a body of the wrong shape is
/// refused (422) naming what was expected, never quoting what was sent.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let JsonObject(map) = JsonObject::from_request(req, state).await?;
        serde_json::from_value(Value::Object(map))
            .map(ApiJson)
            .map_err(|e| {
                let message = e.to_string();
                let message = match message.split_once(" at line") {
                    Some((m, _)) => m.to_owned(),
                    None => message,
                };
                let message = if message.starts_with("missing field")
                    || message.starts_with("unknown field")
                {
                    message
                } else {
                    match message.rsplit_once("expected ") {
                        Some((_, expected)) => {
                            format!("has a value of the wrong type: expected {expected}")
                        }
                        None => "does not have the expected shape".to_owned(),
                    }
                };
                ApiError::from(CoreError::Invalid {
                    field: "body",
                    message,
                })
            })
    }
}

/// Query parameters into a typed struct; a value that does not fit answers
/// 400 in the envelope, naming the parameters rather than quoting them.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(t)| ApiQuery(t))
            .map_err(|_| {
                ApiError::status(
                    StatusCode::BAD_REQUEST,
                    "A query parameter is not what this endpoint expects (e.g. a number).",
                )
            })
    }
}

/// Path parameters; a segment that does not fit answers 400 in the envelope.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| ApiPath(t))
            .map_err(|_| {
                ApiError::status(
                    StatusCode::BAD_REQUEST,
                    "A part of the path is not what this endpoint expects (e.g. a number).",
                )
            })
    }
}

/// The query string as (name, value) pairs in order, repeats kept
/// (`filter=a&filter=b`).
#[derive(Debug, Default)]
pub struct QueryPairs(pub Vec<(String, String)>);

impl QueryPairs {
    /// Parses a raw query string.
    pub fn parse(raw: &str) -> Self {
        QueryPairs(
            url::form_urlencoded::parse(raw.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The first value of `name`.
    pub fn first(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.uri.query().map(QueryPairs::parse).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::response::IntoResponse;

    async fn object(body: &'static str) -> Result<JsonObject, (StatusCode, Value)> {
        let req = Request::post("/").body(Body::from(body)).unwrap();
        match JsonObject::from_request(req, &()).await {
            Ok(o) => Ok(o),
            Err(e) => {
                let response = e.into_response();
                let status = response.status();
                let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
                    .await
                    .unwrap();
                Err((status, serde_json::from_slice(&bytes).unwrap()))
            }
        }
    }

    #[tokio::test]
    async fn bodies_are_refused_in_the_envelope_without_being_quoted() {
        assert_eq!(object(r#"{"a": 1}"#).await.unwrap().0["a"], 1);
        let (status, v) = object(r#"{"password": "hunter2""#).await.unwrap_err();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(v["error"]["message"], "body: is not valid JSON");
        assert!(!v.to_string().contains("hunter2"));
        let (_, v) = object(r#"["hunter2"]"#).await.unwrap_err();
        assert_eq!(v["error"]["message"], "body: must be a JSON object");
        assert!(!v.to_string().contains("hunter2"));
    }

    #[test]
    fn query_pairs_keep_repeats_and_order() {
        let q = QueryPairs::parse("filter=kind%3Dapi&filter=owner=x&limit=5");
        assert_eq!(q.all("filter"), ["kind=api", "owner=x"]);
        assert_eq!(q.first("limit").as_deref(), Some("5"));
        assert_eq!(q.first("offset"), None);
    }

    #[tokio::test]
    async fn a_path_that_does_not_fit_is_a_400_in_the_envelope() {
        use axum::routing::get;
        use tower::ServiceExt;
        let app = axum::Router::new().route(
            "/keys/{id}",
            get(|ApiPath(id): ApiPath<i64>| async move { id.to_string() }),
        );
        let ok = app
            .clone()
            .oneshot(Request::get("/keys/7").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        let bad = app
            .oneshot(Request::get("/keys/seven").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        let bytes = axum::body::to_bytes(bad.into_body(), 1 << 16)
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["error"]["name"], "InputError");
    }
}
