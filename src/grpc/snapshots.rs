//! The `Snapshots` service: a collection's snapshots (full-storage snapshots are not
//! implemented, as in the REST API).

use axum::http::Method;
use serde_json::Value;
use tonic::{Request, Response, Status};

use super::call::{collection, segment, Call};
use super::proto::{self, snapshots_server::Snapshots};
use super::results::items;
use super::{unimplemented, Grpc};

fn description(s: &Value) -> proto::SnapshotDescription {
    let creation_time = s["creation_time"]
        .as_str()
        .and_then(|t| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f").ok())
        .map(|t| {
            let t = t.and_utc();
            prost_types::Timestamp {
                seconds: t.timestamp(),
                nanos: t.timestamp_subsec_nanos() as i32,
            }
        });
    proto::SnapshotDescription {
        name: s["name"].as_str().unwrap_or_default().into(),
        creation_time,
        size: s["size"].as_i64().unwrap_or_default(),
        checksum: s["checksum"].as_str().map(str::to_string),
    }
}

fn snapshots(name: &str) -> String {
    format!("{}/snapshots", collection(name))
}

const FULL: &str = "snapshots of the whole storage are not supported; snapshot each collection";

#[tonic::async_trait]
impl Snapshots for Grpc {
    async fn create(
        &self,
        request: Request<proto::CreateSnapshotRequest>,
    ) -> Result<Response<proto::CreateSnapshotResponse>, Status> {
        let to_call = |r: proto::CreateSnapshotRequest| {
            let call = Call::new(Method::POST, snapshots(&r.collection_name));
            Ok(call.param("wait", Some(true)))
        };
        self.rpc("qdrant.Snapshots/Create", request, to_call, |r, time| {
            Ok(proto::CreateSnapshotResponse {
                snapshot_description: Some(description(&r)),
                time,
            })
        })
        .await
    }

    async fn list(
        &self,
        request: Request<proto::ListSnapshotsRequest>,
    ) -> Result<Response<proto::ListSnapshotsResponse>, Status> {
        let to_call = |r: proto::ListSnapshotsRequest| Ok(Call::get(snapshots(&r.collection_name)));
        self.rpc("qdrant.Snapshots/List", request, to_call, |r, time| {
            Ok(proto::ListSnapshotsResponse {
                snapshot_descriptions: items(r).iter().map(description).collect(),
                time,
            })
        })
        .await
    }

    async fn delete(
        &self,
        request: Request<proto::DeleteSnapshotRequest>,
    ) -> Result<Response<proto::DeleteSnapshotResponse>, Status> {
        let to_call = |r: proto::DeleteSnapshotRequest| {
            let path = format!(
                "{}/{}",
                snapshots(&r.collection_name),
                segment(&r.snapshot_name)
            );
            Ok(Call::new(Method::DELETE, path).param("wait", Some(true)))
        };
        self.rpc("qdrant.Snapshots/Delete", request, to_call, |_, time| {
            Ok(proto::DeleteSnapshotResponse { time })
        })
        .await
    }

    async fn create_full(
        &self,
        _: Request<proto::CreateFullSnapshotRequest>,
    ) -> Result<Response<proto::CreateSnapshotResponse>, Status> {
        unimplemented("qdrant.Snapshots/CreateFull", FULL)
    }

    async fn list_full(
        &self,
        _: Request<proto::ListFullSnapshotsRequest>,
    ) -> Result<Response<proto::ListSnapshotsResponse>, Status> {
        unimplemented("qdrant.Snapshots/ListFull", FULL)
    }

    async fn delete_full(
        &self,
        _: Request<proto::DeleteFullSnapshotRequest>,
    ) -> Result<Response<proto::DeleteSnapshotResponse>, Status> {
        unimplemented("qdrant.Snapshots/DeleteFull", FULL)
    }
}
