//! Qdrant's gRPC API through the official Rust client (`qdrant-client`), against the real
//! server: a collection created, points upserted, queried with a filter, scrolled and deleted,
//! each answer checked against what the REST API says about the same collection.

mod common;

use common::Server;
use qdrant_client::qdrant::{
    Condition, CreateCollectionBuilder, DeletePointsBuilder, Distance, Filter, PointStruct,
    PointsIdsList, QueryPointsBuilder, ScrollPointsBuilder, UpsertPointsBuilder,
    VectorParamsBuilder,
};
use qdrant_client::{Payload, Qdrant, QdrantError};
use serde_json::json;

fn point(i: u64) -> PointStruct {
    let kind = if i.is_multiple_of(2) { "even" } else { "odd" };
    let payload = Payload::from([("n", (i as i64).into()), ("kind", kind.into())]);
    PointStruct::new(i, vec![i as f32, 1.0, 0.5, -1.0], payload)
}

fn id(p: &Option<qdrant_client::qdrant::PointId>) -> u64 {
    use qdrant_client::qdrant::point_id::PointIdOptions;
    match p.as_ref().and_then(|p| p.point_id_options.clone()) {
        Some(PointIdOptions::Num(n)) => n,
        other => panic!("not a numeric id: {other:?}"),
    }
}

#[test]
fn the_official_rust_client_works_over_grpc() {
    let (server, _data) = Server::start();
    // The REST checks use a blocking client: each gRPC call gets its own `block_on`.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = Qdrant::from_url(&server.grpc)
        .skip_compatibility_check()
        .build()
        .unwrap();
    let health = runtime.block_on(client.health_check()).unwrap();
    assert_eq!(health.version, env!("CARGO_PKG_VERSION"));

    let vectors = VectorParamsBuilder::new(4, Distance::Cosine);
    let create = CreateCollectionBuilder::new("rust").vectors_config(vectors);
    assert!(
        runtime
            .block_on(client.create_collection(create))
            .unwrap()
            .result
    );
    let points: Vec<PointStruct> = (1..=30).map(point).collect();
    let upsert = UpsertPointsBuilder::new("rust", points).wait(true);
    runtime.block_on(client.upsert_points(upsert)).unwrap();
    let count = |server: &Server| {
        let (_, count) = server.call("POST", "/collections/rust/points/count", Some(json!({})));
        count["result"]["count"].as_u64().unwrap()
    };
    assert_eq!(count(&server), 30);

    let even = Filter::must([Condition::matches("kind", "even".to_string())]);
    let query = QueryPointsBuilder::new("rust")
        .query(vec![30.0, 1.0, 0.5, -1.0])
        .filter(even.clone())
        .limit(5)
        .with_payload(true);
    let found = runtime.block_on(client.query(query)).unwrap().result;
    let ids: Vec<u64> = found.iter().map(|p| id(&p.id)).collect();
    let (_, rest) = server.call(
        "POST",
        "/collections/rust/points/query",
        Some(json!({"query": [30.0, 1.0, 0.5, -1.0], "limit": 5,
            "filter": {"must": [{"key": "kind", "match": {"value": "even"}}]}})),
    );
    let rest_ids: Vec<u64> = rest["result"]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, rest_ids);
    assert_eq!(ids.len(), 5);
    assert!(ids.iter().all(|i| i.is_multiple_of(2)), "{ids:?}");
    let kinds = found.iter().map(|p| p.payload["kind"].as_str().cloned());
    assert!(kinds.into_iter().all(|k| k.as_deref() == Some("even")));

    let scroll = ScrollPointsBuilder::new("rust").filter(even).limit(4);
    let page = runtime.block_on(client.scroll(scroll)).unwrap();
    let ids: Vec<u64> = page.result.iter().map(|p| id(&p.id)).collect();
    assert_eq!(ids, [2, 4, 6, 8]);
    assert_eq!(id(&page.next_page_offset), 10);

    let doomed = PointsIdsList {
        ids: (1..=10).map(Into::into).collect(),
    };
    let delete = DeletePointsBuilder::new("rust").points(doomed).wait(true);
    runtime.block_on(client.delete_points(delete)).unwrap();
    assert_eq!(count(&server), 20);

    match runtime.block_on(client.collection_info("missing")) {
        Err(QdrantError::ResponseError { status }) => {
            assert_eq!(status.code(), tonic::Code::NotFound);
            assert_eq!(status.message(), "Collection `missing` doesn't exist!");
        }
        other => panic!("expected NOT_FOUND, got {other:?}"),
    }
}
