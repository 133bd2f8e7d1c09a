//! The `Points` service: writes, retrieval, scroll, count, facets and every search.

use axum::http::Method;
use serde_json::{json, Map, Value};
use tonic::{Request, Response, Status};

use super::call::{collection, Call};
use super::common::{
    object, optional_filter, point_id, point_ids, put, shard_key, with_payload, with_vectors,
};
use super::proto::{self, points_server::Points};
use super::query::{self, ReadParams};
use super::results::{self, items, take};
use super::writes::{
    batch_operation, delete_payload_body, delete_vectors_body, field_schema, selector_body,
    set_payload_body, update_vectors_body, upsert_body,
};
use super::{unimplemented, Grpc};

/// A write's call: `?wait=` and `?timeout=` beside its body.
fn write(
    method: Method,
    path: String,
    body: Value,
    wait: Option<bool>,
    timeout: Option<u64>,
) -> Call {
    Call::new(method, path)
        .body(body)
        .param("wait", wait)
        .param("timeout", timeout)
}

/// A read's call: `?consistency=` and `?timeout=` beside its body.
fn read(path: String, body: Value, params: ReadParams) -> Call {
    params.call(path, body)
}

fn points(name: &str, tail: &str) -> String {
    format!("{}/points{tail}", collection(name))
}

fn operation(result: Value, time: f64) -> Result<proto::PointsOperationResponse, Status> {
    Ok(proto::PointsOperationResponse {
        result: Some(results::update(&result)),
        time,
        usage: None,
    })
}

#[tonic::async_trait]
impl Points for Grpc {
    async fn upsert(
        &self,
        request: Request<proto::UpsertPoints>,
    ) -> Result<Response<proto::PointsOperationResponse>, Status> {
        let to_call = |u: proto::UpsertPoints| {
            let path = points(&u.collection_name, "");
            let body = upsert_body(
                u.points,
                u.update_filter,
                u.update_mode,
                u.shard_key_selector,
            )?;
            Ok(write(Method::PUT, path, body, u.wait, u.timeout))
        };
        self.rpc("qdrant.Points/Upsert", request, to_call, operation)
            .await
    }

    async fn delete(
        &self,
        request: Request<proto::DeletePoints>,
    ) -> Result<Response<proto::PointsOperationResponse>, Status> {
        let to_call = |d: proto::DeletePoints| {
            let path = points(&d.collection_name, "/delete");
            let body = selector_body(d.points, d.shard_key_selector)?;
            Ok(write(Method::POST, path, body, d.wait, d.timeout))
        };
        self.rpc("qdrant.Points/Delete", request, to_call, operation)
            .await
    }

    async fn get(
        &self,
        request: Request<proto::GetPoints>,
    ) -> Result<Response<proto::GetResponse>, Status> {
        let to_call = |g: proto::GetPoints| {
            let mut body = Map::new();
            body.insert("ids".into(), point_ids(g.ids)?);
            put(&mut body, "with_payload", with_payload(g.with_payload));
            put(&mut body, "with_vector", with_vectors(g.with_vectors));
            shard_key(&mut body, g.shard_key_selector);
            let params = ReadParams::new(g.read_consistency, g.timeout);
            Ok(read(
                points(&g.collection_name, ""),
                Value::Object(body),
                params,
            ))
        };
        self.rpc_typed("qdrant.Points/Get", request, to_call, |r, time| {
            let result = results::records(r)?;
            Ok(proto::GetResponse {
                result,
                time,
                usage: None,
            })
        })
        .await
    }

    async fn update_vectors(
        &self,
        request: Request<proto::UpdatePointVectors>,
    ) -> Result<Response<proto::PointsOperationResponse>, Status> {
        let to_call = |u: proto::UpdatePointVectors| {
            let path = points(&u.collection_name, "/vectors");
            let body = update_vectors_body(u.points, u.update_filter, u.shard_key_selector)?;
            Ok(write(Method::PUT, path, body, u.wait, u.timeout))
        };
        self.rpc("qdrant.Points/UpdateVectors", request, to_call, operation)
            .await
    }

    async fn delete_vectors(
        &self,
        request: Request<proto::DeletePointVectors>,
    ) -> Result<Response<proto::PointsOperationResponse>, Status> {
        let to_call = |d: proto::DeletePointVectors| {
            let path = points(&d.collection_name, "/vectors/delete");
            let body = delete_vectors_body(d.points_selector, d.vectors, d.shard_key_selector)?;
            Ok(write(Method::POST, path, body, d.wait, d.timeout))
        };
        self.rpc("qdrant.Points/DeleteVectors", request, to_call, operation)
            .await
    }

    async fn set_payload(
        &self,
        request: Request<proto::SetPayloadPoints>,
    ) -> Result<Response<proto::PointsOperationResponse>, Status> {
        let to_call = |s: proto::SetPayloadPoints| {
            let path = points(&s.collection_name, "/payload");
            let body = set_payload_body(s.payload, s.points_selector, s.key, s.shard_key_selector)?;
            Ok(write(Method::POST, path, body, s.wait, s.timeout))
        };
        self.rpc("qdrant.Points/SetPayload", request, to_call, operation)
            .await
    }

    async fn overwrite_payload(
        &self,
        request: Request<proto::SetPayloadPoints>,
    ) -> Result<Response<proto::PointsOperationResponse>, Status> {
        let to_call = |s: proto::SetPayloadPoints| {
            let path = points(&s.collection_name, "/payload");
            let body = set_payload_body(s.payload, s.points_selector, s.key, s.shard_key_selector)?;
            Ok(write(Method::PUT, path, body, s.wait, s.timeout))
        };
        self.rpc(
            "qdrant.Points/OverwritePayload",
            request,
            to_call,
            operation,
        )
        .await
    }

    async fn delete_payload(
        &self,
        request: Request<proto::DeletePayloadPoints>,
    ) -> Result<Response<proto::PointsOperationResponse>, Status> {
        let to_call = |d: proto::DeletePayloadPoints| {
            let path = points(&d.collection_name, "/payload/delete");
            let body = delete_payload_body(d.keys, d.points_selector, d.shard_key_selector)?;
            Ok(write(Method::POST, path, body, d.wait, d.timeout))
        };
        self.rpc("qdrant.Points/DeletePayload", request, to_call, operation)
            .await
    }

    async fn clear_payload(
        &self,
        request: Request<proto::ClearPayloadPoints>,
    ) -> Result<Response<proto::PointsOperationResponse>, Status> {
        let to_call = |c: proto::ClearPayloadPoints| {
            let path = points(&c.collection_name, "/payload/clear");
            let body = selector_body(c.points, c.shard_key_selector)?;
            Ok(write(Method::POST, path, body, c.wait, c.timeout))
        };
        self.rpc("qdrant.Points/ClearPayload", request, to_call, operation)
            .await
    }

    async fn create_field_index(
        &self,
        request: Request<proto::CreateFieldIndexCollection>,
    ) -> Result<Response<proto::PointsOperationResponse>, Status> {
        let to_call = |c: proto::CreateFieldIndexCollection| {
            let path = format!("{}/index", collection(&c.collection_name));
            let schema = field_schema(c.field_type, c.field_index_params)?;
            let body = object!({"field_name": c.field_name, "field_schema": schema});
            Ok(write(Method::PUT, path, body, c.wait, c.timeout))
        };
        self.rpc(
            "qdrant.Points/CreateFieldIndex",
            request,
            to_call,
            operation,
        )
        .await
    }

    async fn delete_field_index(
        &self,
        request: Request<proto::DeleteFieldIndexCollection>,
    ) -> Result<Response<proto::PointsOperationResponse>, Status> {
        let to_call = |d: proto::DeleteFieldIndexCollection| {
            let path = format!(
                "{}/index/{}",
                collection(&d.collection_name),
                super::call::segment(&d.field_name)
            );
            let call = Call::new(Method::DELETE, path);
            Ok(call.param("wait", d.wait).param("timeout", d.timeout))
        };
        self.rpc(
            "qdrant.Points/DeleteFieldIndex",
            request,
            to_call,
            operation,
        )
        .await
    }

    async fn create_vector_name(
        &self,
        _: Request<proto::CreateVectorNameRequest>,
    ) -> Result<Response<proto::PointsOperationResponse>, Status> {
        unimplemented(
            "qdrant.Points/CreateVectorName",
            "a collection's vector spaces are fixed when it is created",
        )
    }

    async fn delete_vector_name(
        &self,
        _: Request<proto::DeleteVectorNameRequest>,
    ) -> Result<Response<proto::PointsOperationResponse>, Status> {
        unimplemented(
            "qdrant.Points/DeleteVectorName",
            "a collection's vector spaces are fixed when it is created",
        )
    }

    async fn search(
        &self,
        request: Request<proto::SearchPoints>,
    ) -> Result<Response<proto::SearchResponse>, Status> {
        let to_call = |s: proto::SearchPoints| {
            let path = points(&s.collection_name, "/search");
            let params = ReadParams::new(s.read_consistency, s.timeout);
            Ok(read(path, query::search(s)?, params))
        };
        self.rpc_typed("qdrant.Points/Search", request, to_call, |r, time| {
            let result = results::search_points(r)?;
            Ok(proto::SearchResponse {
                result,
                time,
                usage: None,
            })
        })
        .await
    }

    async fn search_batch(
        &self,
        request: Request<proto::SearchBatchPoints>,
    ) -> Result<Response<proto::SearchBatchResponse>, Status> {
        let to_call = |s: proto::SearchBatchPoints| {
            let path = points(&s.collection_name, "/search/batch");
            let params = ReadParams::new(s.read_consistency, s.timeout);
            Ok(read(
                path,
                query::batch(s.search_points, query::search)?,
                params,
            ))
        };
        self.rpc("qdrant.Points/SearchBatch", request, to_call, |r, time| {
            let result = results::batches(r)?;
            Ok(proto::SearchBatchResponse {
                result,
                time,
                usage: None,
            })
        })
        .await
    }

    async fn search_groups(
        &self,
        request: Request<proto::SearchPointGroups>,
    ) -> Result<Response<proto::SearchGroupsResponse>, Status> {
        let to_call = |s: proto::SearchPointGroups| {
            let path = points(&s.collection_name, "/search/groups");
            let params = ReadParams::new(s.read_consistency, s.timeout);
            Ok(read(path, query::search_groups(s)?, params))
        };
        self.rpc("qdrant.Points/SearchGroups", request, to_call, |r, time| {
            Ok(proto::SearchGroupsResponse {
                result: results::some_groups(r)?,
                time,
                usage: None,
            })
        })
        .await
    }

    async fn scroll(
        &self,
        request: Request<proto::ScrollPoints>,
    ) -> Result<Response<proto::ScrollResponse>, Status> {
        let to_call = |s: proto::ScrollPoints| {
            let mut body = Map::new();
            put(&mut body, "filter", optional_filter(s.filter)?);
            put(&mut body, "offset", s.offset.map(point_id).transpose()?);
            put(&mut body, "limit", s.limit);
            put(&mut body, "with_payload", with_payload(s.with_payload));
            put(&mut body, "with_vector", with_vectors(s.with_vectors));
            put(&mut body, "order_by", query::order_by_opt(s.order_by)?);
            shard_key(&mut body, s.shard_key_selector);
            let params = ReadParams::new(s.read_consistency, s.timeout);
            Ok(read(
                points(&s.collection_name, "/scroll"),
                Value::Object(body),
                params,
            ))
        };
        self.rpc_typed("qdrant.Points/Scroll", request, to_call, |r, time| {
            let (result, next_page_offset) = results::scroll_page(r)?;
            Ok(proto::ScrollResponse {
                next_page_offset,
                result,
                time,
                usage: None,
            })
        })
        .await
    }

    async fn recommend(
        &self,
        request: Request<proto::RecommendPoints>,
    ) -> Result<Response<proto::RecommendResponse>, Status> {
        let to_call = |r: proto::RecommendPoints| {
            let path = points(&r.collection_name, "/recommend");
            let params = ReadParams::new(r.read_consistency, r.timeout);
            Ok(read(path, query::recommend(r)?, params))
        };
        self.rpc_typed("qdrant.Points/Recommend", request, to_call, |r, time| {
            let result = results::search_points(r)?;
            Ok(proto::RecommendResponse {
                result,
                time,
                usage: None,
            })
        })
        .await
    }

    async fn recommend_batch(
        &self,
        request: Request<proto::RecommendBatchPoints>,
    ) -> Result<Response<proto::RecommendBatchResponse>, Status> {
        let to_call = |r: proto::RecommendBatchPoints| {
            let path = points(&r.collection_name, "/recommend/batch");
            let params = ReadParams::new(r.read_consistency, r.timeout);
            Ok(read(
                path,
                query::batch(r.recommend_points, query::recommend)?,
                params,
            ))
        };
        self.rpc(
            "qdrant.Points/RecommendBatch",
            request,
            to_call,
            |r, time| {
                let result = results::batches(r)?;
                Ok(proto::RecommendBatchResponse {
                    result,
                    time,
                    usage: None,
                })
            },
        )
        .await
    }

    async fn recommend_groups(
        &self,
        request: Request<proto::RecommendPointGroups>,
    ) -> Result<Response<proto::RecommendGroupsResponse>, Status> {
        let to_call = |r: proto::RecommendPointGroups| {
            let path = points(&r.collection_name, "/recommend/groups");
            let params = ReadParams::new(r.read_consistency, r.timeout);
            Ok(read(path, query::recommend_groups(r)?, params))
        };
        self.rpc(
            "qdrant.Points/RecommendGroups",
            request,
            to_call,
            |r, time| {
                Ok(proto::RecommendGroupsResponse {
                    result: results::some_groups(r)?,
                    time,
                    usage: None,
                })
            },
        )
        .await
    }

    async fn discover(
        &self,
        request: Request<proto::DiscoverPoints>,
    ) -> Result<Response<proto::DiscoverResponse>, Status> {
        let to_call = |d: proto::DiscoverPoints| {
            let path = points(&d.collection_name, "/discover");
            let params = ReadParams::new(d.read_consistency, d.timeout);
            Ok(read(path, query::discover(d)?, params))
        };
        self.rpc_typed("qdrant.Points/Discover", request, to_call, |r, time| {
            let result = results::search_points(r)?;
            Ok(proto::DiscoverResponse {
                result,
                time,
                usage: None,
            })
        })
        .await
    }

    async fn discover_batch(
        &self,
        request: Request<proto::DiscoverBatchPoints>,
    ) -> Result<Response<proto::DiscoverBatchResponse>, Status> {
        let to_call = |d: proto::DiscoverBatchPoints| {
            let path = points(&d.collection_name, "/discover/batch");
            let params = ReadParams::new(d.read_consistency, d.timeout);
            Ok(read(
                path,
                query::batch(d.discover_points, query::discover)?,
                params,
            ))
        };
        self.rpc(
            "qdrant.Points/DiscoverBatch",
            request,
            to_call,
            |r, time| {
                let result = results::batches(r)?;
                Ok(proto::DiscoverBatchResponse {
                    result,
                    time,
                    usage: None,
                })
            },
        )
        .await
    }

    async fn count(
        &self,
        request: Request<proto::CountPoints>,
    ) -> Result<Response<proto::CountResponse>, Status> {
        let to_call = |c: proto::CountPoints| {
            let mut body = Map::new();
            put(&mut body, "filter", optional_filter(c.filter)?);
            put(&mut body, "exact", c.exact);
            shard_key(&mut body, c.shard_key_selector);
            let params = ReadParams::new(c.read_consistency, c.timeout);
            Ok(read(
                points(&c.collection_name, "/count"),
                Value::Object(body),
                params,
            ))
        };
        self.rpc("qdrant.Points/Count", request, to_call, |r, time| {
            let count = r["count"].as_u64().unwrap_or_default();
            let result = Some(proto::CountResult { count });
            Ok(proto::CountResponse {
                result,
                time,
                usage: None,
            })
        })
        .await
    }

    async fn update_batch(
        &self,
        request: Request<proto::UpdateBatchPoints>,
    ) -> Result<Response<proto::UpdateBatchResponse>, Status> {
        let to_call = |u: proto::UpdateBatchPoints| {
            let operations = u
                .operations
                .into_iter()
                .map(batch_operation)
                .collect::<Result<Vec<_>, _>>()?;
            let path = points(&u.collection_name, "/batch");
            let body = object!({ "operations": operations });
            Ok(write(Method::POST, path, body, u.wait, u.timeout))
        };
        self.rpc("qdrant.Points/UpdateBatch", request, to_call, |r, time| {
            let result = items(r).iter().map(results::update).collect();
            Ok(proto::UpdateBatchResponse {
                result,
                time,
                usage: None,
            })
        })
        .await
    }

    async fn query(
        &self,
        request: Request<proto::QueryPoints>,
    ) -> Result<Response<proto::QueryResponse>, Status> {
        let to_call = |q: proto::QueryPoints| {
            let path = points(&q.collection_name, "/query");
            let params = ReadParams::new(q.read_consistency, q.timeout);
            Ok(read(path, query::query_points(q)?, params))
        };
        self.rpc_typed("qdrant.Points/Query", request, to_call, |r, time| {
            let result = results::query_points(r)?;
            Ok(proto::QueryResponse {
                result,
                time,
                usage: None,
            })
        })
        .await
    }

    async fn query_batch(
        &self,
        request: Request<proto::QueryBatchPoints>,
    ) -> Result<Response<proto::QueryBatchResponse>, Status> {
        let to_call = |q: proto::QueryBatchPoints| {
            let path = points(&q.collection_name, "/query/batch");
            let params = ReadParams::new(q.read_consistency, q.timeout);
            Ok(read(
                path,
                query::batch(q.query_points, query::query_points)?,
                params,
            ))
        };
        self.rpc("qdrant.Points/QueryBatch", request, to_call, |r, time| {
            let result = results::batches(r)?;
            Ok(proto::QueryBatchResponse {
                result,
                time,
                usage: None,
            })
        })
        .await
    }

    async fn query_groups(
        &self,
        request: Request<proto::QueryPointGroups>,
    ) -> Result<Response<proto::QueryGroupsResponse>, Status> {
        let to_call = |q: proto::QueryPointGroups| {
            let path = points(&q.collection_name, "/query/groups");
            let params = ReadParams::new(q.read_consistency, q.timeout);
            Ok(read(path, query::query_groups(q)?, params))
        };
        self.rpc("qdrant.Points/QueryGroups", request, to_call, |r, time| {
            Ok(proto::QueryGroupsResponse {
                result: results::some_groups(r)?,
                time,
                usage: None,
            })
        })
        .await
    }

    async fn facet(
        &self,
        request: Request<proto::FacetCounts>,
    ) -> Result<Response<proto::FacetResponse>, Status> {
        let to_call = |f: proto::FacetCounts| {
            let mut body = Map::new();
            body.insert("key".into(), json!(f.key));
            put(&mut body, "filter", optional_filter(f.filter)?);
            put(&mut body, "limit", f.limit);
            put(&mut body, "exact", f.exact);
            shard_key(&mut body, f.shard_key_selector);
            let params = ReadParams::new(f.read_consistency, f.timeout);
            let path = format!("{}/facet", collection(&f.collection_name));
            Ok(read(path, Value::Object(body), params))
        };
        self.rpc("qdrant.Points/Facet", request, to_call, |mut r, time| {
            let hits = items(take(&mut r, "hits"))
                .iter()
                .map(|h| proto::FacetHit {
                    value: results::facet_value(&h["value"]),
                    count: h["count"].as_u64().unwrap_or_default(),
                })
                .collect();
            Ok(proto::FacetResponse {
                hits,
                time,
                usage: None,
            })
        })
        .await
    }

    async fn search_matrix_pairs(
        &self,
        request: Request<proto::SearchMatrixPoints>,
    ) -> Result<Response<proto::SearchMatrixPairsResponse>, Status> {
        let to_call = |m: proto::SearchMatrixPoints| query::matrix(m, "pairs");
        self.rpc(
            "qdrant.Points/SearchMatrixPairs",
            request,
            to_call,
            |mut r, time| {
                let pairs = items(take(&mut r, "pairs"))
                    .iter()
                    .map(|p| {
                        Ok(proto::SearchMatrixPair {
                            a: Some(results::id(&p["a"])?),
                            b: Some(results::id(&p["b"])?),
                            score: p["score"].as_f64().unwrap_or_default() as f32,
                        })
                    })
                    .collect::<Result<_, Status>>()?;
                let result = Some(proto::SearchMatrixPairs { pairs });
                Ok(proto::SearchMatrixPairsResponse {
                    result,
                    time,
                    usage: None,
                })
            },
        )
        .await
    }

    async fn search_matrix_offsets(
        &self,
        request: Request<proto::SearchMatrixPoints>,
    ) -> Result<Response<proto::SearchMatrixOffsetsResponse>, Status> {
        let to_call = |m: proto::SearchMatrixPoints| query::matrix(m, "offsets");
        self.rpc(
            "qdrant.Points/SearchMatrixOffsets",
            request,
            to_call,
            |r, time| {
                let numbers = |key: &str| -> Vec<u64> {
                    r[key]
                        .as_array()
                        .map(|xs| xs.iter().filter_map(Value::as_u64).collect())
                        .unwrap_or_default()
                };
                let scores = r["scores"]
                    .as_array()
                    .map(|xs| {
                        xs.iter()
                            .map(|x| x.as_f64().unwrap_or_default() as f32)
                            .collect()
                    })
                    .unwrap_or_default();
                let ids = r["ids"]
                    .as_array()
                    .map(|ids| ids.iter().map(results::id).collect::<Result<_, _>>())
                    .transpose()?
                    .unwrap_or_default();
                let result = Some(proto::SearchMatrixOffsets {
                    offsets_row: numbers("offsets_row"),
                    offsets_col: numbers("offsets_col"),
                    scores,
                    ids,
                });
                Ok(proto::SearchMatrixOffsetsResponse {
                    result,
                    time,
                    usage: None,
                })
            },
        )
        .await
    }
}
