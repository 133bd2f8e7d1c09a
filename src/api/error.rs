//! The API's error type: one enum, one status code each, rendered in Qdrant's envelope
//! `{"status": {"error": "..."}, "time": ...}`.

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::ToSchema;

use super::elapsed_secs;
use crate::collection::CollectionError;
use crate::error::Invalid;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or cannot apply (400).
    #[error("{0}")]
    BadRequest(String),
    /// A collection or point does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// No API key, or a wrong one (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The API key does not allow this (403).
    #[error("{0}")]
    Forbidden(String),
    /// The path exists, the method does not (405).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A value breaks a documented constraint, worded as Qdrant's validator words it
    /// ([`crate::error::VALIDATION`]) (422).
    #[error("{0}")]
    Unprocessable(String),
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
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
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

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        match e.validation() {
            Some(_) => ApiError::Unprocessable(e.0),
            None => ApiError::BadRequest(e.0),
        }
    }
}

impl From<CollectionError> for ApiError {
    fn from(e: CollectionError) -> Self {
        match e {
            CollectionError::NotFound(m) => ApiError::NotFound(m),
            CollectionError::BadRequest(m) => ApiError::BadRequest(m),
            CollectionError::Conflict(m) => ApiError::Conflict(m),
            CollectionError::Overloaded(m) => ApiError::Overloaded(m),
            CollectionError::DiskFull(m) => ApiError::InsufficientStorage(m),
            CollectionError::Closed(m) => ApiError::Unavailable(m),
            CollectionError::Storage(m) if m.contains("No space left") => {
                ApiError::InsufficientStorage(format!("storage error: {m}"))
            }
            CollectionError::Storage(m) => ApiError::Unavailable(format!("storage error: {m}")),
        }
    }
}

/// A body handed over already parsed, in the request's extensions instead of as bytes: how the
/// gRPC services pass their converted requests to the same handlers.
#[derive(Clone, Debug)]
pub struct JsonBody(pub serde_json::Value);

/// Takes a parsed body out of the request, when one was handed over.
fn parsed_body(req: &mut Request) -> Option<serde_json::Value> {
    req.extensions_mut().remove::<JsonBody>().map(|b| b.0)
}

/// A parsed body as `T`: moved as is when `T` is a `Value` (upserts parse their own).
fn from_parsed<T: DeserializeOwned + 'static>(value: serde_json::Value) -> Result<T, ApiError> {
    let any: Box<dyn std::any::Any> = Box::new(value);
    match any.downcast::<T>() {
        Ok(same) => Ok(*same),
        Err(any) => match any.downcast::<serde_json::Value>() {
            Ok(value) => from_value(*value),
            Err(_) => unreachable!("the box holds a Value"),
        },
    }
}

/// A JSON body whose rejections are [`ApiError`]s with the parser's exact message. Like
/// Qdrant, any content type is read as JSON (curl's `-d` sends a form content type).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned + Send + 'static, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(mut req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(value) = parsed_body(&mut req) {
            return from_parsed(value).map(ApiJson);
        }
        let bytes = read_body(req, state).await?;
        if bytes.len() < BLOCKING_DECODE_BYTES {
            return decode_json(&bytes).map(ApiJson);
        }
        // A batch of vectors takes milliseconds to parse: off the executor, so the requests
        // sharing this worker thread (searches among them) do not wait behind it.
        tokio::task::spawn_blocking(move || decode_json(&bytes).map(ApiJson))
            .await
            .map_err(|e| ApiError::Internal(format!("body decoding failed: {e}")))?
    }
}

/// Bodies at least this large are parsed on the blocking pool (about 1,500 floats of JSON).
const BLOCKING_DECODE_BYTES: usize = 16 * 1024;

/// The whole body, within the configured size limit.
async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(format!("request body is too large: {}", e.body_text()))
        } else {
            ApiError::BadRequest(format!("cannot read the request body: {}", e.body_text()))
        }
    })
}

/// Parses a body. The plain parser runs first (path tracking costs a few percent of a search);
/// only a body that fails is parsed again to name the path of the error.
fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every body of the API is an object; serde would otherwise read an array as a struct's
    // fields by position.
    if bytes.trim_ascii_start().first() == Some(&b'[') {
        return Err(ApiError::BadRequest(
            "Format error in JSON body: expected a JSON object, got an array".into(),
        ));
    }
    let plain = match serde_json::from_slice(bytes) {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Err(e) => Err(body_error(e.path(), &e.inner().to_string())),
        // Only trailing characters after a valid value fail the plain parser alone.
        Ok(_) => Err(ApiError::BadRequest(format!(
            "Format error in JSON body: {plain}"
        ))),
    }
}

/// The error of a body that does not deserialize, at `path`: a format error (400), or the
/// validation error (422) a field's own parser raised. Such a parser names the field it parses
/// (`vector.text`), so its path takes the place of the last step of `path`.
fn body_error(path: &serde_path_to_error::Path, inner: &str) -> ApiError {
    if let Some(invalid) = validation_at("", path, inner) {
        return invalid.into();
    }
    let why = match path.to_string().as_str() {
        "." => inner.to_string(),
        at => format!("{at}: {inner}"),
    };
    ApiError::BadRequest(format!("Format error in JSON body: {why}"))
}

/// When a field's own parser raised a validation error (`inner`) at `path` below `root`: the
/// error with the whole path. The parser names the field it parses (`vector.text`), so its
/// path takes the place of the last step of `path`.
pub fn validation_at(root: &str, path: &serde_path_to_error::Path, inner: &str) -> Option<Invalid> {
    use serde_path_to_error::Segment;
    // serde_json appends the position; a validation message ends at its bracket.
    let message = inner.rsplit_once(" at line ").map_or(inner, |(m, _)| m);
    let invalid = Invalid(message.to_string());
    let (field, why) = invalid.validation()?;
    let steps: Vec<&Segment> = path.iter().collect();
    let mut full = root.to_string();
    for step in &steps[..steps.len().saturating_sub(1)] {
        if !full.is_empty() && !matches!(step, Segment::Seq { .. }) {
            full.push('.');
        }
        full.push_str(&step.to_string());
    }
    if !full.is_empty() {
        full.push('.');
    }
    full.push_str(field);
    Some(Invalid::field(&full, why))
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

impl<T: DeserializeOwned + Default + 'static, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(mut req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(value) = parsed_body(&mut req) {
            return from_parsed(value).map(OptionalJson);
        }
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        decode_json(&bytes).map(OptionalJson)
    }
}

/// A body already read as JSON, parsed into `T` with the same messages as [`ApiJson`].
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    if value.is_array() {
        return Err(ApiError::BadRequest(
            "Format error in JSON body: expected a JSON object, got an array".into(),
        ));
    }
    // The plain deserializer first, from a reference (path tracking costs a tenth of a
    // search); only a body that fails is deserialized again to name the path of the error.
    if let Ok(parsed) = T::deserialize(&value) {
        return Ok(parsed);
    }
    serde_path_to_error::deserialize(value)
        .map_err(|e| body_error(e.path(), &e.inner().to_string()))
}
