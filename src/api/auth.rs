//! API keys, as Qdrant does them: a full-access key and a read-only key, sent in an `api-key`
//! header or as `Authorization: Bearer <key>`, compared in constant time.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// What a request's key allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    Full,
    ReadOnly,
}

/// The configured keys. Without a full-access key, authentication is off.
#[derive(Clone, Debug)]
pub struct Keys {
    full: Vec<u8>,
    read_only: Option<Vec<u8>>,
}

impl Keys {
    /// `None` when no full-access key is configured.
    pub fn new(full: Option<&str>, read_only: Option<&str>) -> Option<Arc<Keys>> {
        Some(Arc::new(Keys {
            full: full?.as_bytes().to_vec(),
            read_only: read_only.map(|k| k.as_bytes().to_vec()),
        }))
    }

    /// Checks both keys, always both, so the time taken says nothing about which matched.
    fn access(&self, given: &[u8]) -> Option<Access> {
        let full = constant_time_eq::constant_time_eq(given, &self.full);
        let read = self
            .read_only
            .as_ref()
            .is_some_and(|k| constant_time_eq::constant_time_eq(given, k));
        match (full, read) {
            (true, _) => Some(Access::Full),
            (false, true) => Some(Access::ReadOnly),
            (false, false) => None,
        }
    }
}

/// Paths anyone may call: probes for orchestrators, and the API's own documentation.
fn is_open(path: &str) -> bool {
    matches!(path, "/healthz" | "/livez" | "/readyz" | "/openapi.json") || path.starts_with("/docs")
}

/// Routes that only read, though they take a POST body.
const READ_POSTS: &[&str] = &[
    "/collections/{name}/points",
    "/collections/{name}/points/search",
    "/collections/{name}/points/search/batch",
    "/collections/{name}/points/query",
    "/collections/{name}/points/query/batch",
    "/collections/{name}/points/scroll",
    "/collections/{name}/points/count",
    "/collections/{name}/points/recommend",
    "/collections/{name}/points/recommend/batch",
    "/collections/{name}/points/discover",
    "/collections/{name}/points/discover/batch",
    "/collections/{name}/points/query/groups",
    "/collections/{name}/points/search/groups",
    "/collections/{name}/points/recommend/groups",
    "/collections/{name}/points/search/matrix/pairs",
    "/collections/{name}/points/search/matrix/offsets",
    "/collections/{name}/facet",
    "/collections/{name}/points/facet",
];

fn is_read(req: &Request) -> bool {
    let method = req.method();
    if method == Method::GET || method == Method::HEAD {
        return true;
    }
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str());
    method == Method::POST && route.is_some_and(|r| READ_POSTS.contains(&r))
}

/// The key a request carries, from `api-key` or `Authorization: Bearer`.
fn presented(req: &Request) -> Option<&[u8]> {
    if let Some(key) = req.headers().get("api-key") {
        return Some(key.as_bytes());
    }
    let auth = req.headers().get(header::AUTHORIZATION)?.as_bytes();
    let scheme = auth.get(..7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| auth[7..].trim_ascii())
}

/// Middleware: 401 without a valid key, 403 when a read-only key tries to write. The messages
/// name neither key nor what was sent.
pub async fn check(keys: Arc<Keys>, req: Request, next: Next) -> Response {
    if is_open(req.uri().path()) {
        return next.run(req).await;
    }
    let access = match presented(&req) {
        None => {
            return ApiError::Unauthorized(
                "an API key is required: send it in the `api-key` header or as `Authorization: Bearer <key>`"
                    .into(),
            )
            .into_response()
        }
        Some(given) => keys.access(given),
    };
    match access {
        None => ApiError::Unauthorized("invalid API key".into()).into_response(),
        Some(Access::ReadOnly) if !is_read(&req) => {
            ApiError::Forbidden("this API key allows reads only".into()).into_response()
        }
        Some(_) => next.run(req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_grant_what_they_are_for() {
        let keys = Keys::new(Some("full-key"), Some("read-key")).unwrap();
        assert_eq!(keys.access(b"full-key"), Some(Access::Full));
        assert_eq!(keys.access(b"read-key"), Some(Access::ReadOnly));
        assert_eq!(keys.access(b"full-ke"), None);
        assert_eq!(keys.access(b""), None);
        assert!(Keys::new(None, Some("read-key")).is_none());
    }

    #[test]
    fn bearer_and_header_forms_are_read() {
        let req = |name: &str, value: &str| {
            Request::builder()
                .header(name, value)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        assert_eq!(presented(&req("api-key", "k1")), Some(&b"k1"[..]));
        assert_eq!(
            presented(&req("authorization", "Bearer k2")),
            Some(&b"k2"[..])
        );
        assert_eq!(
            presented(&req("authorization", "bearer  k3 ")),
            Some(&b"k3"[..])
        );
        assert_eq!(presented(&req("authorization", "Basic abc")), None);
        assert_eq!(presented(&req("authorization", "Bear")), None);
    }
}
