//! What routing a request of a cluster collection decides before anything is sent: which
//! shard each part of a write goes to, which consistency a read asked for, and the consistency
//! token that carries the LSNs a client has seen.

use crate::error::Invalid;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ring::shard_of;
use super::types::GroupId;
use crate::collection::ops::{Operation, Selector};
use crate::point_id::PointId;

/// The header of the consistency token, on responses and on the reads that send it back.
pub const TOKEN_HEADER: &str = "x-vecdb-consistency-token";

/// Splits operations by shard, keeping their order within each shard. A write by ids goes
/// only to the shards of those ids; a write by filter goes to every shard.
pub fn split(ops: Vec<Operation>, shards: u32) -> Vec<Vec<Operation>> {
    let mut out: Vec<Vec<Operation>> = vec![Vec::new(); shards as usize];
    for op in ops {
        match op {
            Operation::Upsert(writes) => {
                for (shard, part) in by_shard(writes, |w| w.id, shards) {
                    out[shard].push(Operation::Upsert(part));
                }
            }
            Operation::Delete(selector) => {
                for (shard, s) in split_selector(selector, shards) {
                    out[shard].push(Operation::Delete(s));
                }
            }
            Operation::SetPayload {
                payload,
                selector,
                key,
            } => {
                for (shard, selector) in split_selector(selector, shards) {
                    let (payload, key) = (payload.clone(), key.clone());
                    out[shard].push(Operation::SetPayload {
                        payload,
                        selector,
                        key,
                    });
                }
            }
            Operation::OverwritePayload { payload, selector } => {
                for (shard, selector) in split_selector(selector, shards) {
                    let payload = payload.clone();
                    out[shard].push(Operation::OverwritePayload { payload, selector });
                }
            }
            Operation::DeletePayload { keys, selector } => {
                for (shard, selector) in split_selector(selector, shards) {
                    let keys = keys.clone();
                    out[shard].push(Operation::DeletePayload { keys, selector });
                }
            }
            Operation::ClearPayload(selector) => {
                for (shard, s) in split_selector(selector, shards) {
                    out[shard].push(Operation::ClearPayload(s));
                }
            }
            Operation::DeleteVectors {
                selector,
                spaces,
                sparse,
            } => {
                for (shard, selector) in split_selector(selector, shards) {
                    let (spaces, sparse) = (spaces.clone(), sparse.clone());
                    out[shard].push(Operation::DeleteVectors {
                        selector,
                        spaces,
                        sparse,
                    });
                }
            }
            Operation::UpdateVectors { updates, filter } => {
                for (shard, updates) in by_shard(updates, |u| u.id, shards) {
                    let filter = filter.clone();
                    out[shard].push(Operation::UpdateVectors { updates, filter });
                }
            }
            Operation::ConditionalUpsert {
                points,
                filter,
                mode,
            } => {
                for (shard, points) in by_shard(points, |p| p.id, shards) {
                    let filter = filter.clone();
                    out[shard].push(Operation::ConditionalUpsert {
                        points,
                        filter,
                        mode,
                    });
                }
            }
        }
    }
    out
}

/// `items` grouped by the shard of their point id, in order; shards with none left out.
fn by_shard<T: Clone>(
    items: Vec<T>,
    id: impl Fn(&T) -> PointId,
    shards: u32,
) -> impl Iterator<Item = (usize, Vec<T>)> {
    let mut parts = vec![Vec::new(); shards as usize];
    for item in items {
        parts[shard_of(id(&item), shards) as usize].push(item);
    }
    parts.into_iter().enumerate().filter(|(_, p)| !p.is_empty())
}

fn split_selector(selector: Selector, shards: u32) -> Vec<(usize, Selector)> {
    match selector {
        Selector::Ids(ids) => {
            let mut parts = vec![Vec::new(); shards as usize];
            for id in ids {
                parts[shard_of(id, shards) as usize].push(id);
            }
            parts
                .into_iter()
                .enumerate()
                .filter(|(_, ids)| !ids.is_empty())
                .map(|(shard, ids)| (shard, Selector::Ids(ids)))
                .collect()
        }
        Selector::Filter(filter) => (0..shards as usize)
            .map(|shard| (shard, Selector::Filter(filter.clone())))
            .collect(),
    }
}

/// How fresh a read must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Consistency {
    /// Any live replica, this node's own first: may miss recent writes.
    Eventual,
    /// A replica that has applied at least what the token says: never older than what the
    /// client saw before.
    Monotonic,
    /// Like monotonic, with the token a write returned; without a token, the shard's leader
    /// answers (it has applied every acknowledged write).
    ReadYourWrites,
    /// Linearizable: the leader answers after a quorum confirms it still leads.
    Strong,
}

impl Consistency {
    /// Parses the `consistency` parameter: the four levels by name, or Qdrant's values
    /// (`1` is eventual; a larger number, `majority`, `quorum` and `all` are strong, since a
    /// linearizable read is at least as fresh as any set of replicas would agree on).
    pub fn parse(raw: Option<&str>) -> Result<Consistency, Invalid> {
        let Some(raw) = raw else {
            return Ok(Consistency::ReadYourWrites);
        };
        match raw {
            "eventual" => Ok(Consistency::Eventual),
            "monotonic" => Ok(Consistency::Monotonic),
            "read_your_writes" => Ok(Consistency::ReadYourWrites),
            "strong" | "majority" | "quorum" | "all" => Ok(Consistency::Strong),
            n => match n.parse::<u32>() {
                Ok(1) => Ok(Consistency::Eventual),
                Ok(n) if n > 1 => Ok(Consistency::Strong),
                _ => invalid!(
                    "consistency: expected eventual, monotonic, read_your_writes, strong, majority, quorum, all or a positive number, got `{raw}`"
                ),
            },
        }
    }
}

/// The LSN per shard group that a client has seen: sent with every answer, sent back with
/// reads. Written `group:lsn` pairs separated by commas.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Token(pub BTreeMap<GroupId, u64>);

impl Token {
    pub fn parse(raw: &str) -> Result<Token, Invalid> {
        let mut token = Token::default();
        for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let parsed = pair
                .split_once(':')
                .and_then(|(g, l)| Some((g.parse().ok()?, l.parse().ok()?)));
            let Some((group, lsn)) = parsed else {
                return invalid!(
                    "{TOKEN_HEADER}: expected group:lsn pairs separated by commas, got `{pair}`"
                );
            };
            token.see(group, lsn);
        }
        Ok(token)
    }

    /// Records that `group` was seen at `lsn` (a token only grows).
    pub fn see(&mut self, group: GroupId, lsn: u64) {
        let seen = self.0.entry(group).or_insert(0);
        *seen = (*seen).max(lsn);
    }

    pub fn get(&self, group: GroupId) -> u64 {
        self.0.get(&group).copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pairs: Vec<String> = self.0.iter().map(|(g, l)| format!("{g}:{l}")).collect();
        f.write_str(&pairs.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collection::ops::PointWrite;
    use crate::point_id::PointId;

    fn upsert(ids: &[u64]) -> Operation {
        let writes = ids
            .iter()
            .map(|id| PointWrite {
                sparse: Vec::new(),
                id: PointId::Num(*id),
                vectors: vec![vec![0.0]],
                payload: Default::default(),
            })
            .collect();
        Operation::Upsert(writes)
    }

    fn ids_of(op: &Operation) -> Vec<PointId> {
        match op {
            Operation::Upsert(w) => w.iter().map(|w| w.id).collect(),
            Operation::Delete(Selector::Ids(ids)) => ids.clone(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn splits_every_id_to_its_shard_once() {
        let ids: Vec<u64> = (0..200).collect();
        let delete = Operation::Delete(Selector::Ids(
            ids.iter().map(|i| PointId::Num(*i)).collect(),
        ));
        let parts = split(vec![upsert(&ids), delete], 4);
        let mut seen = 0;
        for (shard, ops) in parts.iter().enumerate() {
            // The upsert part comes before the delete part, as sent.
            assert!(matches!(ops[0], Operation::Upsert(_)));
            assert!(matches!(ops[1], Operation::Delete(_)));
            for id in ids_of(&ops[0]) {
                assert_eq!(shard_of(id, 4) as usize, shard);
                seen += 1;
            }
            assert_eq!(ids_of(&ops[0]), ids_of(&ops[1]));
        }
        assert_eq!(seen, 200);
    }

    #[test]
    fn a_filter_goes_to_every_shard_and_empty_parts_are_skipped() {
        let filter: crate::filter::Filter = serde_json::from_value(serde_json::json!({})).unwrap();
        let parts = split(
            vec![
                upsert(&[7]),
                Operation::ClearPayload(Selector::Filter(filter)),
            ],
            3,
        );
        let home = shard_of(PointId::Num(7), 3) as usize;
        for (shard, ops) in parts.iter().enumerate() {
            let expected = if shard == home { 2 } else { 1 };
            assert_eq!(ops.len(), expected, "shard {shard}");
        }
    }

    #[test]
    fn consistency_accepts_qdrant_values_and_levels() {
        use Consistency::*;
        for (raw, level) in [
            (None, ReadYourWrites),
            (Some("1"), Eventual),
            (Some("2"), Strong),
            (Some("majority"), Strong),
            (Some("all"), Strong),
            (Some("monotonic"), Monotonic),
            (Some("eventual"), Eventual),
        ] {
            assert_eq!(Consistency::parse(raw).unwrap(), level, "{raw:?}");
        }
        assert!(Consistency::parse(Some("0")).is_err());
        assert!(Consistency::parse(Some("sometimes")).is_err());
    }

    #[test]
    fn tokens_round_trip_keep_maxima_and_reject_garbage() {
        let mut token = Token::parse("3:17, 5:2").unwrap();
        token.see(3, 10);
        token.see(5, 9);
        assert_eq!(token.to_string(), "3:17,5:9");
        assert_eq!(Token::parse(&token.to_string()).unwrap(), token);
        assert_eq!(token.get(4), 0);
        assert!(Token::parse("3-17").is_err());
        assert!(Token::parse("").unwrap().is_empty());
    }
}
