//! The API's error type: one enum, one status code each, rendered in Qdrant's envelope
//! `{"status": {"error": "..."}, "time": ...}`.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::ToSchema;

use super::elapsed_secs;
use crate::collection::CollectionError;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or cannot apply (400).
    #[error("{0}")]
    BadRequest(String),
    /// A collection or point does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The thing to create exists already (409).
    #[error("{0}")]
    Conflict(String),
    /// The body is larger than `service.max_request_size_mb` (413).
    #[error("{0}")]
    TooLarge(String),
    /// A bounded queue or gate is full; the client should retry (503 + Retry-After).
    #[error("{0}")]
    Overloaded(String),
    /// The service cannot do it now: storage failure, shutting down (503).
    #[error("{0}")]
    Unavailable(String),
    /// The disk is full (507).
    #[error("{0}")]
    InsufficientStorage(String),
    /// A bug: never caused by client input (500).
    #[error("{0}")]
    Internal(String),
}

/// The error body.
#[derive(Serialize, ToSchema)]
pub struct ErrorResponse {
    pub status: ErrorStatus,
    /// Seconds spent on the request.
    pub time: f64,
}

/// What went wrong.
#[derive(Serialize, ToSchema)]
pub struct ErrorStatus {
    pub error: String,
}

impl ApiError {
    /// The HTTP status of each kind.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Overloaded(_) | ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = ErrorResponse {
            status: ErrorStatus {
                error: self.to_string(),
            },
            time: elapsed_secs(),
        };
        let mut response = (status, axum::Json(body)).into_response();
        match self {
            ApiError::Overloaded(_) => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            }
            // The rest of an oversized body is never read, so the connection cannot carry another
            // request: say so, or a keep-alive client reuses it and its next request fails.
            ApiError::TooLarge(_) => {
                response.headers_mut().insert(
                    header::CONNECTION,
                    header::HeaderValue::from_static("close"),
                );
            }
            _ => {}
        }
        response
    }
}

impl From<CollectionError> for ApiError {
    fn from(e: CollectionError) -> Self {
        match e {
            CollectionError::NotFound(m) => ApiError::NotFound(m),
            CollectionError::BadRequest(m) => ApiError::BadRequest(m),
            CollectionError::Conflict(m) => ApiError::Conflict(m),
            CollectionError::Overloaded(m) => ApiError::Overloaded(m),
            CollectionError::Closed(m) => ApiError::Unavailable(m),
            CollectionError::Storage(m) if m.contains("No space left") => {
                ApiError::InsufficientStorage(format!("storage error: {m}"))
            }
            CollectionError::Storage(m) => ApiError::Unavailable(format!("storage error: {m}")),
        }
    }
}

/// `Json<T>` whose rejections are [`ApiError`]s with the parser's exact message.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let status = rejection.status();
    let text = rejection.body_text();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::TooLarge(format!("request body is too large: {text}"));
    }
    // axum phrases these as "Failed to deserialize the JSON body into the target type: <path>: <why>".
    let why = text
        .strip_prefix("Failed to deserialize the JSON body into the target type: ")
        .or_else(|| text.strip_prefix("Failed to parse the request body as JSON: "))
        .unwrap_or(&text);
    ApiError::BadRequest(format!("Format error in JSON body: {why}"))
}

/// `Path<T>` with [`ApiError`] rejections.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e: PathRejection| {
                ApiError::BadRequest(format!("bad path: {}", e.body_text()))
            })
    }
}

/// `Query<T>` with [`ApiError`] rejections.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e: QueryRejection| {
                ApiError::BadRequest(format!("bad query string: {}", e.body_text()))
            })
    }
}

/// A JSON body that may be absent: an empty body means `T::default()`.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::TooLarge(format!("request body is too large: {}", e.body_text()))
                } else {
                    ApiError::BadRequest(format!("cannot read the request body: {}", e.body_text()))
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(&mut de)
            .map(OptionalJson)
            .map_err(|e| {
                ApiError::BadRequest(format!(
                    "Format error in JSON body: {}: {}",
                    e.path(),
                    e.inner()
                ))
            })
    }
}
