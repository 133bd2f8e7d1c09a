//! Qdrant's gRPC API on `service.grpc_port`: the `qdrant.Qdrant`, `Collections`, `Points` and
//! `Snapshots` services of Qdrant's `.proto` files (`proto/`, code generated at build time).
//!
//! Every method is a thin adapter: it converts its message into the request the REST dialect
//! would send ([`common`] and the service modules), hands it to the same router REST requests
//! go through ([`call`]), and converts the answer back ([`results`]). Behaviour therefore
//! cannot differ between the two APIs: same validation, keys, limits, deadlines, consistency
//! levels and cluster routing.

mod call;
mod collections;
mod common;
mod config;
#[cfg(test)]
mod fuzz;
mod json;
mod points;
mod query;
mod results;
mod snapshots;
mod writes;

use std::time::Instant;

use serde_json::Value;
use tonic::{Request, Response, Status};

use crate::api::in_process::Reply;
use crate::api::AppState;
use crate::cluster::route::TOKEN_HEADER;
use call::{Answer, Call, Dispatcher};

/// The code generated from `proto/` (package `qdrant`), a crate of its own.
pub use vecdb_grpc_proto as proto;

/// Qdrant's version these services follow (of the `.proto` files in `proto/`).
pub const PROTO_VERSION: &str = "1.20.0";

/// The gRPC services as one router, for an HTTP/2 listener.
pub fn router(state: AppState) -> axum::Router {
    use proto::collections_server::CollectionsServer;
    use proto::points_server::PointsServer;
    use proto::qdrant_server::QdrantServer;
    use proto::snapshots_server::SnapshotsServer;
    let limit = state.config.service.max_request_size_mb * 1024 * 1024;
    let grpc = Grpc {
        dispatcher: Dispatcher::new(crate::api::for_grpc(state)),
    };
    let routes = tonic::service::Routes::new(QdrantServer::new(grpc.clone()))
        .add_service(CollectionsServer::new(grpc.clone()).max_decoding_message_size(limit))
        .add_service(PointsServer::new(grpc.clone()).max_decoding_message_size(limit))
        .add_service(SnapshotsServer::new(grpc).max_decoding_message_size(limit));
    routes
        .prepare()
        .into_axum_router()
        .fallback(unknown_method)
        .layer(axum::middleware::map_response(undecodable_is_invalid))
}

/// tonic answers a message it cannot decode with `INTERNAL`; it is the client's input that is
/// wrong, so the answer is `INVALID_ARGUMENT` (a server error is never the client's doing).
async fn undecodable_is_invalid(
    mut response: axum::response::Response,
) -> axum::response::Response {
    let headers = response.headers_mut();
    let internal = headers.get("grpc-status").is_some_and(|s| s == "13");
    let decode = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .is_some_and(|m| {
            m.starts_with("failed%20to%20decode") || m.starts_with("failed to decode")
        });
    if internal && decode {
        let code = axum::http::HeaderValue::from(tonic::Code::InvalidArgument as i32);
        headers.insert("grpc-status", code);
    }
    response
}

/// A path no service has: `UNIMPLEMENTED`, naming it.
async fn unknown_method(uri: axum::http::Uri) -> axum::response::Response {
    let status = Status::unimplemented(format!("vecdb has no gRPC method {}", uri.path()));
    status.into_http()
}

/// The services' shared state: where their calls go.
#[derive(Clone)]
pub struct Grpc {
    dispatcher: Dispatcher,
}

impl Grpc {
    /// Serves one method: `to_call` converts the message, `answer` converts the result (as
    /// JSON) and the seconds taken into the reply. Counted and timed per method.
    async fn rpc<Q, R>(
        &self,
        method: &'static str,
        request: Request<Q>,
        to_call: impl FnOnce(Q) -> Result<Call, Status>,
        answer: impl FnOnce(Value, f64) -> Result<R, Status>,
    ) -> Result<Response<R>, Status> {
        let json = |reply: Reply, time| {
            let result = reply
                .into_json()
                .map_err(|e| Status::internal(format!("the answer did not serialise: {e}")))?;
            answer(result, time)
        };
        self.rpc_typed(method, request, to_call, json).await
    }

    /// [`Grpc::rpc`] with `answer` given the handler's result as it is, for methods that
    /// convert their handler's result type directly.
    async fn rpc_typed<Q, R>(
        &self,
        method: &'static str,
        request: Request<Q>,
        to_call: impl FnOnce(Q) -> Result<Call, Status>,
        answer: impl FnOnce(Reply, f64) -> Result<R, Status>,
    ) -> Result<Response<R>, Status> {
        let start = Instant::now();
        let (meta, _, message) = request.into_parts();
        let outcome = async {
            let call = to_call(message)?;
            let Answer { reply, token } = self.dispatcher.call(&meta, call).await?;
            let mut response = Response::new(answer(reply, start.elapsed().as_secs_f64())?);
            if let Some(token) = token.and_then(|t| t.to_str().ok()?.parse().ok()) {
                response.metadata_mut().insert(TOKEN_HEADER, token);
            }
            Ok(response)
        }
        .await;
        record(method, outcome.as_ref().err(), start);
        outcome
    }
}

/// Per-method metrics, next to the HTTP ones.
fn record(method: &'static str, error: Option<&Status>, start: Instant) {
    let code = error.map_or(tonic::Code::Ok, Status::code);
    metrics::histogram!("vecdb_grpc_request_duration_seconds", "method" => method)
        .record(start.elapsed().as_secs_f64());
    let code = format!("{code:?}");
    metrics::counter!("vecdb_grpc_requests_total", "method" => method, "code" => code).increment(1);
}

/// A method vecdb does not implement: `UNIMPLEMENTED`, naming it (and counted like the rest).
fn unimplemented<R>(method: &'static str, why: &str) -> Result<Response<R>, Status> {
    let status = Status::unimplemented(format!("{method} is not implemented by vecdb: {why}"));
    record(method, Some(&status), Instant::now());
    Err(status)
}

#[tonic::async_trait]
impl proto::qdrant_server::Qdrant for Grpc {
    /// Open like REST's probes: no key needed.
    async fn health_check(
        &self,
        _: Request<proto::HealthCheckRequest>,
    ) -> Result<Response<proto::HealthCheckReply>, Status> {
        record("qdrant.Qdrant/HealthCheck", None, Instant::now());
        Ok(Response::new(proto::HealthCheckReply {
            title: crate::api::service::TITLE.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            commit: None,
        }))
    }
}
