//! The `Collections` service: collection configuration in both directions.

use axum::http::Method;
use serde_json::Value;
use tonic::{Request, Response, Status};

use super::call::{collection, Call};
use super::common::{object, required};
use super::config::{create_body, info_out, update_body};
use super::proto::{self, collections_server::Collections};
use super::results::{items, take};
use super::{unimplemented, Grpc};

fn alias_actions(actions: Vec<proto::AliasOperations>) -> Result<Value, Status> {
    use proto::alias_operations::Action;
    let actions = actions
        .into_iter()
        .map(|a| {
            Ok(match required(a.action, "alias action")? {
                Action::CreateAlias(c) => object!({"create_alias": object!({
                    "collection_name": c.collection_name, "alias_name": c.alias_name})}),
                Action::RenameAlias(r) => object!({"rename_alias": object!({
                    "old_alias_name": r.old_alias_name, "new_alias_name": r.new_alias_name})}),
                Action::DeleteAlias(d) => {
                    object!({"delete_alias": object!({"alias_name": d.alias_name})})
                }
            })
        })
        .collect::<Result<Vec<_>, Status>>()?;
    Ok(object!({ "actions": actions }))
}

fn aliases_out(mut result: Value) -> Vec<proto::AliasDescription> {
    items(take(&mut result, "aliases"))
        .into_iter()
        .map(|a| proto::AliasDescription {
            alias_name: a["alias_name"].as_str().unwrap_or_default().into(),
            collection_name: a["collection_name"].as_str().unwrap_or_default().into(),
        })
        .collect()
}

fn replica_state(s: &Value) -> i32 {
    let state = s
        .as_str()
        .and_then(proto::ReplicaState::from_str_name)
        .unwrap_or(proto::ReplicaState::Active);
    state as i32
}

fn operation(result: Value, time: f64) -> Result<proto::CollectionOperationResponse, Status> {
    Ok(proto::CollectionOperationResponse {
        result: super::results::flag(&result),
        time,
    })
}

#[tonic::async_trait]
impl Collections for Grpc {
    async fn get(
        &self,
        request: Request<proto::GetCollectionInfoRequest>,
    ) -> Result<Response<proto::GetCollectionInfoResponse>, Status> {
        let to_call =
            |r: proto::GetCollectionInfoRequest| Ok(Call::get(collection(&r.collection_name)));
        self.rpc("qdrant.Collections/Get", request, to_call, |info, time| {
            Ok(proto::GetCollectionInfoResponse {
                result: Some(info_out(info)),
                time,
            })
        })
        .await
    }

    async fn list(
        &self,
        request: Request<proto::ListCollectionsRequest>,
    ) -> Result<Response<proto::ListCollectionsResponse>, Status> {
        let to_call = |_| Ok(Call::get("/collections".into()));
        self.rpc(
            "qdrant.Collections/List",
            request,
            to_call,
            |mut r, time| {
                let collections = items(take(&mut r, "collections"))
                    .into_iter()
                    .map(|c| proto::CollectionDescription {
                        name: c["name"].as_str().unwrap_or_default().into(),
                    })
                    .collect();
                Ok(proto::ListCollectionsResponse { collections, time })
            },
        )
        .await
    }

    async fn create(
        &self,
        request: Request<proto::CreateCollection>,
    ) -> Result<Response<proto::CollectionOperationResponse>, Status> {
        let to_call = |c: proto::CreateCollection| {
            let (path, timeout) = (collection(&c.collection_name), c.timeout);
            Ok(Call::put(path, create_body(c)?).param("timeout", timeout))
        };
        self.rpc("qdrant.Collections/Create", request, to_call, operation)
            .await
    }

    async fn update(
        &self,
        request: Request<proto::UpdateCollection>,
    ) -> Result<Response<proto::CollectionOperationResponse>, Status> {
        let to_call = |u: proto::UpdateCollection| {
            let (path, timeout) = (collection(&u.collection_name), u.timeout);
            let call = Call::new(Method::PATCH, path).body(update_body(u)?);
            Ok(call.param("timeout", timeout))
        };
        self.rpc("qdrant.Collections/Update", request, to_call, operation)
            .await
    }

    async fn delete(
        &self,
        request: Request<proto::DeleteCollection>,
    ) -> Result<Response<proto::CollectionOperationResponse>, Status> {
        let to_call = |d: proto::DeleteCollection| {
            let call = Call::new(Method::DELETE, collection(&d.collection_name));
            Ok(call.param("timeout", d.timeout))
        };
        self.rpc("qdrant.Collections/Delete", request, to_call, operation)
            .await
    }

    async fn update_aliases(
        &self,
        request: Request<proto::ChangeAliases>,
    ) -> Result<Response<proto::CollectionOperationResponse>, Status> {
        let to_call = |c: proto::ChangeAliases| {
            let body = alias_actions(c.actions)?;
            let call = Call::post("/collections/aliases".into(), body);
            Ok(call.param("timeout", c.timeout))
        };
        self.rpc(
            "qdrant.Collections/UpdateAliases",
            request,
            to_call,
            operation,
        )
        .await
    }

    async fn list_collection_aliases(
        &self,
        request: Request<proto::ListCollectionAliasesRequest>,
    ) -> Result<Response<proto::ListAliasesResponse>, Status> {
        let to_call = |r: proto::ListCollectionAliasesRequest| {
            Ok(Call::get(format!(
                "{}/aliases",
                collection(&r.collection_name)
            )))
        };
        let method = "qdrant.Collections/ListCollectionAliases";
        self.rpc(method, request, to_call, |r, time| {
            Ok(proto::ListAliasesResponse {
                aliases: aliases_out(r),
                time,
            })
        })
        .await
    }

    async fn list_aliases(
        &self,
        request: Request<proto::ListAliasesRequest>,
    ) -> Result<Response<proto::ListAliasesResponse>, Status> {
        let to_call = |_| Ok(Call::get("/aliases".into()));
        self.rpc(
            "qdrant.Collections/ListAliases",
            request,
            to_call,
            |r, time| {
                Ok(proto::ListAliasesResponse {
                    aliases: aliases_out(r),
                    time,
                })
            },
        )
        .await
    }

    async fn collection_cluster_info(
        &self,
        request: Request<proto::CollectionClusterInfoRequest>,
    ) -> Result<Response<proto::CollectionClusterInfoResponse>, Status> {
        let to_call = |r: proto::CollectionClusterInfoRequest| {
            Ok(Call::get(format!(
                "{}/cluster",
                collection(&r.collection_name)
            )))
        };
        let method = "qdrant.Collections/CollectionClusterInfo";
        self.rpc(method, request, to_call, |mut r, time| {
            let local_shards = items(take(&mut r, "local_shards"))
                .iter()
                .map(|s| proto::LocalShardInfo {
                    shard_id: s["shard_id"].as_u64().unwrap_or_default() as u32,
                    points_count: s["points_count"].as_u64().unwrap_or_default(),
                    state: replica_state(&s["state"]),
                    shard_key: None,
                })
                .collect();
            let remote_shards = items(take(&mut r, "remote_shards"))
                .iter()
                .map(|s| proto::RemoteShardInfo {
                    shard_id: s["shard_id"].as_u64().unwrap_or_default() as u32,
                    peer_id: s["peer_id"].as_u64().unwrap_or_default(),
                    state: replica_state(&s["state"]),
                    shard_key: None,
                })
                .collect();
            Ok(proto::CollectionClusterInfoResponse {
                peer_id: r["peer_id"].as_u64().unwrap_or_default(),
                shard_count: r["shard_count"].as_u64().unwrap_or_default(),
                local_shards,
                remote_shards,
                shard_transfers: Vec::new(),
                resharding_operations: Vec::new(),
                time,
            })
        })
        .await
    }

    async fn collection_exists(
        &self,
        request: Request<proto::CollectionExistsRequest>,
    ) -> Result<Response<proto::CollectionExistsResponse>, Status> {
        let to_call = |r: proto::CollectionExistsRequest| {
            Ok(Call::get(format!(
                "{}/exists",
                collection(&r.collection_name)
            )))
        };
        self.rpc(
            "qdrant.Collections/CollectionExists",
            request,
            to_call,
            |r, time| {
                Ok(proto::CollectionExistsResponse {
                    result: Some(proto::CollectionExists {
                        exists: r["exists"].as_bool().unwrap_or_default(),
                    }),
                    time,
                })
            },
        )
        .await
    }

    async fn update_collection_cluster_setup(
        &self,
        _: Request<proto::UpdateCollectionClusterSetupRequest>,
    ) -> Result<Response<proto::UpdateCollectionClusterSetupResponse>, Status> {
        unimplemented(
            "qdrant.Collections/UpdateCollectionClusterSetup",
            "shards are placed by the hash ring, not moved by hand",
        )
    }

    async fn create_shard_key(
        &self,
        _: Request<proto::CreateShardKeyRequest>,
    ) -> Result<Response<proto::CreateShardKeyResponse>, Status> {
        unimplemented(
            "qdrant.Collections/CreateShardKey",
            "custom sharding is not supported",
        )
    }

    async fn delete_shard_key(
        &self,
        _: Request<proto::DeleteShardKeyRequest>,
    ) -> Result<Response<proto::DeleteShardKeyResponse>, Status> {
        unimplemented(
            "qdrant.Collections/DeleteShardKey",
            "custom sharding is not supported",
        )
    }

    async fn list_shard_keys(
        &self,
        _: Request<proto::ListShardKeysRequest>,
    ) -> Result<Response<proto::ListShardKeysResponse>, Status> {
        unimplemented(
            "qdrant.Collections/ListShardKeys",
            "custom sharding is not supported",
        )
    }
}
