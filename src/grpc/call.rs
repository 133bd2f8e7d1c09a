//! How a gRPC method is answered. Its request is converted into the request the REST dialect
//! would send and handed, in process, to the same router REST requests go through: the same
//! handlers, keys, limits, deadlines, consistency levels and cluster routing. Neither way goes
//! through JSON text: the body travels as a parsed `serde_json::Value` ([`JsonBody`]), and a
//! success comes back as the handler's own result ([`in_process`]).

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use axum::Router;
use serde_json::Value;
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};
use tower::ServiceExt;

use crate::api::error::JsonBody;
use crate::api::in_process::{self, Handed, Reply};
use crate::api::GrpcDeadline;
use crate::cluster::route::TOKEN_HEADER;

/// One request of the REST dialect.
pub struct Call {
    method: Method,
    path: String,
    query: Vec<(&'static str, String)>,
    body: Option<Value>,
    /// A read of points, which takes a consistency level.
    read: bool,
}

impl Call {
    /// `method` on `path`, whose `{name}`-like segments the caller has already encoded with
    /// [`segment`].
    pub fn new(method: Method, path: String) -> Call {
        Call {
            method,
            path,
            query: Vec::new(),
            body: None,
            read: false,
        }
    }

    /// A read of points: a POST with `body` that takes a consistency level.
    pub fn read(path: String, body: Value) -> Call {
        let mut call = Call::post(path, body);
        call.read = true;
        call
    }

    pub fn get(path: String) -> Call {
        Call::new(Method::GET, path)
    }

    pub fn post(path: String, body: Value) -> Call {
        Call::new(Method::POST, path).body(body)
    }

    pub fn put(path: String, body: Value) -> Call {
        Call::new(Method::PUT, path).body(body)
    }

    pub fn body(mut self, body: Value) -> Call {
        self.body = Some(body);
        self
    }

    /// Adds a query parameter when `value` is set.
    pub fn param(mut self, key: &'static str, value: Option<impl ToString>) -> Call {
        if let Some(value) = value {
            self.query.push((key, value.to_string()));
        }
        self
    }

    fn uri(&self) -> String {
        let mut uri = self.path.clone();
        for (i, (key, value)) in self.query.iter().enumerate() {
            uri.push(if i == 0 { '?' } else { '&' });
            uri.push_str(key);
            uri.push('=');
            uri.push_str(&segment(value));
        }
        uri
    }
}

/// `/collections/{name}` with the name encoded.
pub fn collection(name: &str) -> String {
    format!("/collections/{}", segment(name))
}

/// Percent-encodes one path segment or query value (everything but RFC 3986's unreserved
/// characters), so that a name cannot reach another route.
pub fn segment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// What a call answered: its `result`, and the consistency token of cluster mode.
pub struct Answer {
    pub reply: Reply,
    pub token: Option<HeaderValue>,
}

/// Hands calls to the router.
#[derive(Clone)]
pub struct Dispatcher {
    router: Router,
}

/// Request metadata passed on as the HTTP headers REST clients would send.
const FORWARDED: &[&str] = &["api-key", "authorization", TOKEN_HEADER];

/// Metadata naming one of vecdb's read consistency levels (`eventual`, `monotonic`,
/// `read_your_writes`, `strong`), which Qdrant's `ReadConsistency` message cannot express; a
/// level in the message itself wins.
pub const CONSISTENCY_METADATA: &str = "x-vecdb-consistency";

impl Dispatcher {
    pub fn new(router: Router) -> Dispatcher {
        Dispatcher { router }
    }

    /// Serves `call` with the request's metadata (keys, deadline, consistency token).
    pub async fn call(&self, meta: &MetadataMap, mut call: Call) -> Result<Answer, Status> {
        let deadline = deadline(meta)?.map(|left| Instant::now() + left);
        if let Some(level) = meta.get(CONSISTENCY_METADATA) {
            if call.read && !call.query.iter().any(|(k, _)| *k == "consistency") {
                let level = level.to_str().map_err(|_| {
                    Status::invalid_argument(format!("{CONSISTENCY_METADATA}: not ASCII"))
                })?;
                call.query.push(("consistency", level.to_string()));
            }
        }
        let mut request = Request::builder()
            .method(call.method.clone())
            .uri(call.uri());
        for name in FORWARDED {
            if let Some(value) = meta.get(*name) {
                if let Ok(value) = HeaderValue::from_bytes(value.as_encoded_bytes()) {
                    request = request.header(*name, value);
                }
            }
        }
        if let Some(deadline) = deadline {
            request = request.extension(GrpcDeadline(deadline));
        }
        if let Some(body) = call.body {
            request = request
                .header(header::CONTENT_TYPE, "application/json")
                .extension(JsonBody(body));
        }
        let request = request
            .body(Body::empty())
            .map_err(|e| Status::invalid_argument(format!("bad request: {e}")))?;
        let request = self.router.clone().oneshot(request);
        let response = in_process::serve(request)
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        let status = response.status();
        let token = response.headers().get(TOKEN_HEADER).cloned();
        if let Some(reply) = response.extensions().get::<Handed>().and_then(Handed::take) {
            return Ok(Answer { reply, token });
        }
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .map_err(|e| Status::internal(format!("reading the answer: {e}")))?;
        let mut body: Value = serde_json::from_slice(&bytes)
            .map_err(|e| Status::internal(format!("the answer is not JSON: {e}")))?;
        if status.is_success() {
            let result = body.get_mut("result").map(Value::take);
            return Ok(Answer {
                reply: Reply::Json(result.unwrap_or(Value::Null)),
                token,
            });
        }
        let message = match &body["status"]["error"] {
            Value::String(message) => message.clone(),
            _ => status.to_string(),
        };
        let expired = deadline.is_some_and(|d| Instant::now() >= d);
        Err(Status::new(code(status, expired), message))
    }
}

/// The gRPC code of an HTTP status, as Qdrant maps its errors. A request whose deadline has
/// passed and that could not be served gets `DEADLINE_EXCEEDED`.
pub fn code(status: StatusCode, deadline_passed: bool) -> Code {
    match status.as_u16() {
        400 | 422 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        405 => Code::Unimplemented,
        409 => Code::AlreadyExists,
        413 | 429 | 507 => Code::ResourceExhausted,
        503 | 504 if deadline_passed => Code::DeadlineExceeded,
        503 => Code::Unavailable,
        504 => Code::DeadlineExceeded,
        _ => Code::Internal,
    }
}

/// The request's `grpc-timeout`: digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`).
fn deadline(meta: &MetadataMap) -> Result<Option<Duration>, Status> {
    let Some(raw) = meta.get("grpc-timeout") else {
        return Ok(None);
    };
    let bad = || Status::invalid_argument(format!("grpc-timeout: cannot read {raw:?}"));
    let raw = raw.to_str().map_err(|_| bad())?;
    let (digits, unit) = raw.split_at(raw.len().saturating_sub(1));
    if digits.is_empty() || digits.len() > 8 {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let left = match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return Err(bad()),
    };
    Ok(Some(left))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeout(raw: &str) -> Result<Option<Duration>, Status> {
        let mut meta = MetadataMap::new();
        meta.insert("grpc-timeout", raw.parse().unwrap());
        deadline(&meta)
    }

    #[test]
    fn grpc_timeouts_are_read_in_every_unit() {
        assert_eq!(timeout("2S").unwrap(), Some(Duration::from_secs(2)));
        assert_eq!(timeout("1500m").unwrap(), Some(Duration::from_millis(1500)));
        assert_eq!(timeout("3M").unwrap(), Some(Duration::from_secs(180)));
        assert_eq!(timeout("7u").unwrap(), Some(Duration::from_micros(7)));
        for bad in ["", "S", "12", "123456789S", "5x", "-1S"] {
            assert!(timeout(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(deadline(&MetadataMap::new()).unwrap(), None);
    }

    #[test]
    fn http_statuses_map_to_the_codes_qdrant_uses() {
        let cases = [
            (400, false, Code::InvalidArgument),
            (422, false, Code::InvalidArgument),
            (401, false, Code::Unauthenticated),
            (403, false, Code::PermissionDenied),
            (404, false, Code::NotFound),
            (409, false, Code::AlreadyExists),
            (413, false, Code::ResourceExhausted),
            (503, false, Code::Unavailable),
            (503, true, Code::DeadlineExceeded),
            (500, false, Code::Internal),
        ];
        for (status, late, expected) in cases {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(
                code(status, late),
                expected,
                "{status} (deadline passed: {late})"
            );
        }
    }

    #[test]
    fn segments_cannot_leave_their_place_in_the_path() {
        assert_eq!(segment("a-b_c.d~9"), "a-b_c.d~9");
        assert_eq!(segment("../x?y=1"), "..%2Fx%3Fy%3D1");
        assert_eq!(segment("é"), "%C3%A9");
    }
}
