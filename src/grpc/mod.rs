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
mod json;
mod points;
mod query;
mod results;
mod snapshots;

use std::time::Instant;

use serde_json::Value;
use tonic::{Request, Response, Status};

use crate::api::AppState;
use crate::cluster::route::TOKEN_HEADER;
use call::{Answer, Call, Dispatcher};

/// The code generated from `proto/` (package `qdrant`).
#[allow(clippy::all, clippy::pedantic, deprecated, missing_docs)]
pub mod proto {
    tonic::include_proto!("qdrant");
}

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
    routes.prepare().into_axum_router().fallback(unknown_method)
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
    /// Serves one method: `to_call` converts the message, `answer` converts the result and the
    /// seconds taken into the reply. Counted and timed per method.
    async fn rpc<Q, R>(
        &self,
        method: &'static str,
        request: Request<Q>,
        to_call: impl FnOnce(Q) -> Result<Call, Status>,
        answer: impl FnOnce(Value, f64) -> Result<R, Status>,
    ) -> Result<Response<R>, Status> {
        let start = Instant::now();
        let (meta, _, message) = request.into_parts();
        let outcome = async {
            let call = to_call(message)?;
            let Answer { result, token } = self.dispatcher.call(&meta, call).await?;
            let mut response = Response::new(answer(result, start.elapsed().as_secs_f64())?);
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
