//! Mutated messages through the request conversions: whatever a client sends that protobuf
//! decodes, converting it into the REST dialect returns a value or an `INVALID_ARGUMENT`,
//! never a panic.

use proptest::prelude::*;
use prost::Message;

use super::proto::{self, condition::ConditionOneOf, query::Variant};
use super::{config, query, writes};

fn id(n: u64) -> proto::PointId {
    proto::PointId {
        point_id_options: Some(proto::point_id::PointIdOptions::Num(n)),
    }
}

fn field(key: &str) -> proto::Condition {
    proto::Condition {
        condition_one_of: Some(ConditionOneOf::Field(proto::FieldCondition {
            key: key.into(),
            r#match: Some(proto::Match {
                match_value: Some(proto::r#match::MatchValue::Keyword("x".into())),
            }),
            range: Some(proto::Range {
                gte: Some(1.0),
                ..Default::default()
            }),
            ..Default::default()
        })),
    }
}

fn filter() -> proto::Filter {
    proto::Filter {
        must: vec![field("a"), field("b.c[]")],
        should: vec![proto::Condition {
            condition_one_of: Some(ConditionOneOf::HasId(proto::HasIdCondition {
                has_id: vec![id(1), id(2)],
            })),
        }],
        ..Default::default()
    }
}

fn dense(data: Vec<f32>) -> proto::VectorInput {
    proto::VectorInput {
        variant: Some(proto::vector_input::Variant::Dense(proto::DenseVector {
            data,
        })),
    }
}

/// Rich messages of each kind the fuzzer starts from.
fn seeds() -> Vec<(u8, Vec<u8>)> {
    let prefetch = proto::PrefetchQuery {
        query: Some(proto::Query {
            variant: Some(Variant::Nearest(dense(vec![0.5, 1.0]))),
        }),
        filter: Some(filter()),
        limit: Some(5),
        ..Default::default()
    };
    let query = proto::QueryPoints {
        collection_name: "c".into(),
        prefetch: vec![prefetch.clone(), prefetch],
        query: Some(proto::Query {
            variant: Some(Variant::Formula(proto::Formula {
                expression: Some(proto::Expression {
                    variant: Some(proto::expression::Variant::Sum(proto::SumExpression {
                        sum: vec![
                            proto::Expression {
                                variant: Some(proto::expression::Variant::Variable(
                                    "$score".into(),
                                )),
                            },
                            proto::Expression {
                                variant: Some(proto::expression::Variant::Condition(field("k"))),
                            },
                        ],
                    })),
                }),
                defaults: Default::default(),
            })),
        }),
        filter: Some(filter()),
        limit: Some(3),
        ..Default::default()
    };
    #[allow(deprecated)]
    let point = proto::PointStruct {
        id: Some(id(7)),
        payload: [(
            "k".to_string(),
            super::json::from_json(serde_json::json!({"a": [1, 2.5, "x"]})),
        )]
        .into_iter()
        .collect(),
        vectors: Some(proto::Vectors {
            vectors_options: Some(proto::vectors::VectorsOptions::Vector(proto::Vector {
                data: vec![1.0, 2.0, 3.0, 4.0],
                vectors_count: Some(2),
                ..Default::default()
            })),
        }),
    };
    let upsert = proto::UpsertPoints {
        collection_name: "c".into(),
        points: vec![point.clone(), point],
        update_filter: Some(filter()),
        ..Default::default()
    };
    let create = proto::CreateCollection {
        collection_name: "c".into(),
        vectors_config: Some(proto::VectorsConfig {
            config: Some(proto::vectors_config::Config::Params(proto::VectorParams {
                size: 4,
                distance: proto::Distance::Dot as i32,
                hnsw_config: Some(proto::HnswConfigDiff {
                    m: Some(8),
                    ..Default::default()
                }),
                ..Default::default()
            })),
        }),
        ..Default::default()
    };
    let recommend = proto::RecommendPoints {
        collection_name: "c".into(),
        positive: vec![id(1)],
        filter: Some(filter()),
        limit: 4,
        strategy: Some(1),
        ..Default::default()
    };
    vec![
        (0, query.encode_to_vec()),
        (1, upsert.encode_to_vec()),
        (2, create.encode_to_vec()),
        (3, recommend.encode_to_vec()),
    ]
}

/// Decodes `bytes` as message `kind` and converts it; a decoding failure is tonic's to refuse.
fn convert(kind: u8, bytes: &[u8]) {
    let _ = match kind {
        0 => proto::QueryPoints::decode(bytes).map(|m| query::query_points(m).is_ok()),
        1 => proto::UpsertPoints::decode(bytes).map(|m| {
            writes::upsert_body(
                m.points,
                m.update_filter,
                m.update_mode,
                m.shard_key_selector,
            )
            .is_ok()
        }),
        2 => proto::CreateCollection::decode(bytes).map(|m| config::create_body(m).is_ok()),
        _ => proto::RecommendPoints::decode(bytes).map(|m| query::recommend(m).is_ok()),
    };
}

#[test]
fn the_seeds_convert() {
    for (kind, bytes) in seeds() {
        let converted = match kind {
            0 => query::query_points(proto::QueryPoints::decode(&bytes[..]).unwrap()),
            1 => {
                let m = proto::UpsertPoints::decode(&bytes[..]).unwrap();
                writes::upsert_body(m.points, m.update_filter, m.update_mode, None)
            }
            2 => config::create_body(proto::CreateCollection::decode(&bytes[..]).unwrap()),
            _ => query::recommend(proto::RecommendPoints::decode(&bytes[..]).unwrap()),
        };
        assert!(converted.is_ok(), "seed {kind}: {converted:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn mutated_messages_convert_without_panicking(
        seed in 0usize..4,
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..10),
    ) {
        let (kind, mut bytes) = seeds().swap_remove(seed);
        for (at, byte, op) in edits {
            let at = at % (bytes.len() + 1);
            match op {
                0 if at < bytes.len() => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => bytes.truncate(at),
            }
        }
        convert(kind, &bytes);
    }
}
