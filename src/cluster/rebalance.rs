//! How shard replicas move when the peers change: a joining peer takes its share from the most
//! loaded peers, a leaving one hands each of its replicas to the least loaded others, and
//! nothing else moves.
//!
//! Placing every collection again over the new peers (`ring::place`) would also balance them,
//! but the load bound makes placements shift between old peers too; moving only to or from
//! the peer that changed keeps a rebalance to the ≈ 1/N of the replicas it must move. The ring
//! still decides *which* shards a joining peer takes: those it would have been given had it
//! been there from the start, so that repeated joins and leaves do not drift away from it.
//!
//! The results are lists of changed placements for a metadata command. The peers that hold a
//! shard follow them as membership changes of its Raft group (add as learner, catch up,
//! promote, then remove), so a shard never has fewer replicas than before while it moves.

use std::collections::{BTreeMap, BTreeSet};

use super::meta::MetaState;
use super::ring::{place, stable_hash};
use super::types::NodeId;

/// Changed placements: collection, shard number, its new replica peers.
pub type Placements = Vec<(String, usize, Vec<NodeId>)>;

/// How many replicas each of `peers` holds, over all collections.
fn loads(state: &MetaState, peers: &BTreeSet<NodeId>) -> BTreeMap<NodeId, usize> {
    let mut load: BTreeMap<NodeId, usize> = peers.iter().map(|p| (*p, 0)).collect();
    let replicas = state.collections.values().flat_map(|c| &c.shards);
    for r in replicas.flat_map(|p| &p.replicas) {
        if let Some(n) = load.get_mut(r) {
            *n += 1;
        }
    }
    load
}

/// A tie-breaker between peers for one shard, so that equal peers share the moves.
fn tie(name: &str, shard: usize, peer: NodeId) -> u64 {
    stable_hash(format!("{name}/{shard}/{peer}").as_bytes())
}

/// The placements that change when peer `leaving` goes and `peers` remain: each of its
/// replicas goes to the remaining peer that holds the fewest replicas and none of that shard;
/// a shard that has no such peer keeps fewer replicas.
pub fn without_peer(state: &MetaState, leaving: NodeId, peers: &BTreeSet<NodeId>) -> Placements {
    let mut load = loads(state, peers);
    let mut changed = Vec::new();
    for (name, collection) in &state.collections {
        for (shard, placement) in collection.shards.iter().enumerate() {
            if !placement.replicas.contains(&leaving) {
                continue;
            }
            let mut replicas: Vec<NodeId> = placement.replicas.clone();
            replicas.retain(|r| *r != leaving);
            let pick = load
                .iter()
                .filter(|(p, _)| !replicas.contains(p) && **p != leaving)
                .min_by_key(|(p, n)| (**n, tie(name, shard, **p)))
                .map(|(p, _)| *p);
            if let Some(peer) = pick {
                replicas.push(peer);
                *load.entry(peer).or_default() += 1;
            }
            changed.push((name.clone(), shard, replicas));
        }
    }
    changed
}

/// The placements that change when peer `joined` is added and `peers` (with it) hold the
/// data: it takes an even share of every collection's replicas, each from the most loaded of
/// that shard's holders. Shares are rounded over the running total, so many small collections
/// still give it its part of the whole.
pub fn with_peer(state: &MetaState, joined: NodeId, peers: &BTreeSet<NodeId>) -> Placements {
    let mut load = loads(state, peers);
    let n = peers.len().max(1);
    let (mut seen, mut taken) = (0usize, load.get(&joined).copied().unwrap_or(0));
    let mut changed = Vec::new();
    for (name, collection) in &state.collections {
        seen += collection
            .shards
            .iter()
            .map(|p| p.replicas.len())
            .sum::<usize>();
        let due = ((seen as f64 / n as f64).round() as usize).saturating_sub(taken);
        let shards = collection.shards.len() as u32;
        let factor = collection.config.params.replication_factor;
        let ring = place(name, shards, factor, peers);
        // The shards the ring gives the new peer first, then the others in a stable order.
        let mut candidates: Vec<usize> = (0..collection.shards.len())
            .filter(|s| !collection.shards[*s].replicas.contains(&joined))
            .collect();
        candidates.sort_by_key(|s| (!ring[*s].contains(&joined), tie(name, *s, joined)));
        for shard in candidates.into_iter().take(due) {
            let mut replicas = collection.shards[shard].replicas.clone();
            // A holder that is no longer a peer gives its place up first.
            let weight = |p: &NodeId| load.get(p).copied().unwrap_or(usize::MAX);
            let Some(slot) = (0..replicas.len())
                .max_by_key(|i| (weight(&replicas[*i]), tie(name, shard, replicas[*i])))
            else {
                continue;
            };
            if let Some(n) = load.get_mut(&replicas[slot]) {
                *n -= 1;
            }
            replicas[slot] = joined;
            *load.entry(joined).or_default() += 1;
            taken += 1;
            changed.push((name.clone(), shard, replicas));
        }
    }
    changed
}

#[cfg(test)]
#[path = "rebalance_tests.rs"]
mod tests;
