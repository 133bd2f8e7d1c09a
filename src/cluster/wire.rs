//! The binary form of what the cluster stores and sends: Raft log entries, votes and state
//! machine marks in RocksDB, and Raft messages between peers. MessagePack with field names:
//! a vector's floats take 5 bytes each instead of about 10 characters of decimal text that
//! must be printed and parsed again, and the format describes itself, so payloads
//! (`serde_json::Value`) and optional fields round-trip.
//!
//! Every encoded value starts with [`TAG`]. Values stored by builds that wrote JSON (which never
//! starts with that byte) still decode, so a node's existing Raft log reads after an upgrade.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The first byte of every encoded value; JSON text never starts with it.
const TAG: u8 = 0xc1;

/// The content type of encoded message bodies on the internal port.
pub const CONTENT_TYPE: &str = "application/vnd.vecdb.msgpack";

/// Why a value did not encode or decode.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("cannot encode: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    #[error("cannot decode: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
    #[error("cannot decode JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// `value` in the binary form.
pub fn to_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, WireError> {
    let mut out = vec![TAG];
    let mut encoder = rmp_serde::Serializer::new(&mut out).with_struct_map();
    value.serialize(&mut encoder)?;
    Ok(out)
}

/// A value from its binary form, or from the JSON that earlier builds wrote.
pub fn from_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    match bytes.split_first() {
        Some((&TAG, rest)) => Ok(rmp_serde::from_slice(rest)?),
        _ => Ok(serde_json::from_slice(bytes)?),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::collection::ops::{Operation, PointWrite, Selector};
    use crate::filter::Filter;
    use crate::point_id::PointId;

    /// Operations of every kind, with the shapes that trip up binary formats: UUID and the
    /// largest integer ids, several vector spaces, extreme floats, nested payloads with large
    /// and negative numbers, filters.
    fn operations() -> Vec<Operation> {
        let uuid = PointId::parse_str("5c56c793-69f3-4fbf-87e6-c4bf54c28c26").unwrap();
        let payload = json!({"a": {"b": [1, -2, 3.25, "x", null, true]}, "big": u64::MAX,
                             "neg": i64::MIN, "": {}});
        let payload = payload.as_object().unwrap().clone();
        let filter = Filter::from_json(&json!({
            "must": [{"key": "city", "match": {"any": ["a", "b"]}},
                     {"key": "n", "range": {"gte": -1.5}}],
            "must_not": [{"has_id": [1, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"]}],
            "min_should": {"conditions": [{"is_empty": {"key": "t"}}], "min_count": 1}
        }))
        .unwrap();
        let point = |id, vectors| PointWrite {
            sparse: Vec::new(),
            id,
            vectors,
            payload: payload.clone(),
        };
        vec![
            Operation::Upsert(vec![
                point(
                    PointId::Num(u64::MAX),
                    vec![vec![0.1, -2.5e-8, f32::MAX], vec![1.0]],
                ),
                point(uuid, vec![vec![f32::MIN_POSITIVE, 0.0, -0.0], vec![]]),
            ]),
            Operation::Delete(Selector::Ids(vec![PointId::Num(7), uuid])),
            Operation::Delete(Selector::Filter(filter.clone())),
            Operation::SetPayload {
                payload: payload.clone(),
                selector: Selector::Filter(filter),
                key: Some("a.b".into()),
            },
            Operation::OverwritePayload {
                payload,
                selector: Selector::Ids(vec![]),
            },
            Operation::DeletePayload {
                keys: vec!["a".into(), "big".into()],
                selector: Selector::Ids(vec![PointId::Num(0)]),
            },
            Operation::ClearPayload(Selector::Ids(vec![uuid])),
        ]
    }

    #[test]
    fn operations_round_trip_exactly() {
        let ops = operations();
        let bytes = to_bytes(&ops).unwrap();
        let back: Vec<Operation> = from_bytes(&bytes).unwrap();
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&ops).unwrap()
        );
    }

    #[test]
    fn forwarded_write_answers_round_trip() {
        use crate::cluster::engine::ConsensusError;
        use crate::cluster::shard::ShardReply;
        use crate::cluster::types::Peer;
        use crate::collection::CollectionError;
        type Answer = Result<(u64, ShardReply), ConsensusError>;
        let leader = Peer {
            api: "10.0.0.2:6333".into(),
            p2p: "10.0.0.2:6335".into(),
        };
        let answers: Vec<Answer> = vec![
            Ok((7, Ok(()))),
            Ok((
                8,
                Err(CollectionError::BadRequest("wrong dimension".into())),
            )),
            Err(ConsensusError::NotLeader {
                leader: Some((42, leader)),
            }),
            Err(ConsensusError::NotLeader { leader: None }),
            Err(ConsensusError::Unavailable("no quorum".into())),
        ];
        for answer in answers {
            let back: Answer = from_bytes(&to_bytes(&answer).unwrap()).unwrap();
            assert_eq!(format!("{back:?}"), format!("{answer:?}"));
        }
    }

    #[test]
    fn json_from_earlier_builds_still_decodes() {
        let value = json!({"payload": {"a": [1, -2, 3.5, "x", null, {"b": u64::MAX}]}});
        let from_json: serde_json::Value =
            from_bytes(&serde_json::to_vec(&value).unwrap()).unwrap();
        assert_eq!(from_json, value);
        let binary: serde_json::Value = from_bytes(&to_bytes(&value).unwrap()).unwrap();
        assert_eq!(binary, value);
        assert!(from_bytes::<serde_json::Value>(&[TAG, 0xc1]).is_err());
    }
}
