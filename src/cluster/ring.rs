//! Where data lives: points to shards by a stable hash of their id, and shard replicas to
//! peers on a consistent hash ring with virtual nodes and a load bound.
//!
//! The ring's promise is small movement: placing the same shards over one more or one fewer
//! peer changes only about the replicas that peer gains or held (≈ 1/N of them), so a joining
//! or leaving peer moves little data. The load bound (consistent hashing with bounded loads,
//! Mirrokni, Thorup and Zadimoghaddam) keeps any peer from holding more than
//! `ceil((1 + ε) · average)` replicas of a collection, however the virtual nodes fall.
//!
//! Every hash here is fixed by this file (FNV-1a, then a splitmix64 finaliser), never by a
//! library whose output may change between versions: placement must agree across peers and
//! releases.

use std::collections::{BTreeMap, BTreeSet};

use super::types::NodeId;
use crate::point_id::PointId;

/// Virtual nodes per peer: enough that shares stay within a few percent of even.
const VIRTUAL_NODES: u64 = 64;
/// ε of the load bound.
const LOAD_SLACK: f64 = 0.25;

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A stable 64-bit hash of `bytes`.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    splitmix64(h)
}

/// Jump consistent hash (Lamping and Veach): a bucket in `0..buckets` for `key`, moving only
/// 1/n of the keys when a bucket is added.
fn jump(mut key: u64, buckets: u32) -> u32 {
    let (mut b, mut j): (i64, i64) = (-1, 0);
    while j < i64::from(buckets) {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b.max(0) as u32
}

/// The shard of point `id` in a collection of `shards` shards.
pub fn shard_of(id: PointId, shards: u32) -> u32 {
    jump(stable_hash(&id.to_key()), shards.max(1))
}

/// The replica peers of each of `shards` shards of collection `name`: `replication_factor`
/// distinct peers per shard (fewer only if there are fewer peers), the first one preferred as
/// the shard's initial leader.
pub fn place(
    name: &str,
    shards: u32,
    replication_factor: u32,
    peers: &BTreeSet<NodeId>,
) -> Vec<Vec<NodeId>> {
    let ring: BTreeMap<u64, NodeId> = peers
        .iter()
        .flat_map(|&peer| {
            (0..VIRTUAL_NODES).map(move |v| {
                let mut key = peer.to_be_bytes().to_vec();
                key.extend_from_slice(&v.to_be_bytes());
                (stable_hash(&key), peer)
            })
        })
        .collect();
    let per_shard = (replication_factor as usize).clamp(1, peers.len().max(1));
    let total = shards as usize * per_shard;
    // The slack lets a large placement follow the ring; a small one is held to the even share
    // where the ring allows it.
    let average = total as f64 / peers.len().max(1) as f64;
    let bound = (average.ceil() as usize).max(((1.0 + LOAD_SLACK) * average).floor() as usize);
    let mut load: BTreeMap<NodeId, usize> = BTreeMap::new();
    (0..shards)
        .map(|shard| {
            let start = stable_hash(format!("{name}/{shard}").as_bytes());
            let clockwise = ring.range(start..).chain(ring.range(..start));
            let mut chosen: Vec<NodeId> = Vec::with_capacity(per_shard);
            for (_, &peer) in clockwise {
                if chosen.len() == per_shard {
                    break;
                }
                if !chosen.contains(&peer) && load.get(&peer).copied().unwrap_or(0) < bound {
                    chosen.push(peer);
                    *load.entry(peer).or_default() += 1;
                }
            }
            // The bound can leave a late shard short (the peers under it already hold that
            // shard): the least loaded of the others make up the count.
            while chosen.len() < per_shard {
                let Some(&peer) = peers
                    .iter()
                    .filter(|p| !chosen.contains(p))
                    .min_by_key(|p| load.get(p).copied().unwrap_or(0))
                else {
                    break;
                };
                chosen.push(peer);
                *load.entry(peer).or_default() += 1;
            }
            chosen
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(ids: impl IntoIterator<Item = u64>) -> BTreeSet<NodeId> {
        ids.into_iter().map(|i| splitmix64(i) >> 11).collect()
    }

    fn replicas(placement: &[Vec<NodeId>]) -> BTreeSet<(usize, NodeId)> {
        placement
            .iter()
            .enumerate()
            .flat_map(|(s, r)| r.iter().map(move |p| (s, *p)))
            .collect()
    }

    #[test]
    fn every_shard_gets_its_replicas() {
        for n in 1..=7u64 {
            for shards in 1..=12 {
                for rf in 1..=4 {
                    let placed = place("c", shards, rf, &peers(1..=n));
                    let want = (rf as usize).min(n as usize);
                    for replicas in &placed {
                        let distinct: BTreeSet<_> = replicas.iter().collect();
                        assert_eq!(distinct.len(), want, "{n} peers {shards} shards rf {rf}");
                    }
                }
            }
        }
    }

    #[test]
    fn points_spread_evenly_and_stay_on_their_shard() {
        let mut counts = [0usize; 6];
        for n in 0..60_000u64 {
            counts[shard_of(PointId::Num(n), 6) as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "uneven shards: {counts:?}");
        }
        let id = PointId::Num(42);
        assert_eq!(shard_of(id, 6), shard_of(id, 6));
        assert_eq!(shard_of(id, 1), 0);
        // Jump hashing: one more shard takes about 1/7 of the points, from every shard.
        let moved = (0..70_000u64)
            .filter(|&n| shard_of(PointId::Num(n), 6) != shard_of(PointId::Num(n), 7))
            .count();
        assert!((8_000..12_000).contains(&moved), "moved {moved}");
    }

    #[test]
    fn replicas_are_distinct_and_loads_bounded() {
        for n in 1..=7u64 {
            let peers = peers(1..=n);
            let placement = place("c", 12, 3, &peers);
            let per = 3.min(n as usize);
            let mut load: BTreeMap<NodeId, usize> = BTreeMap::new();
            for r in &placement {
                assert_eq!(r.len(), per, "{placement:?}");
                assert_eq!(r.iter().collect::<BTreeSet<_>>().len(), per);
                for p in r {
                    assert!(peers.contains(p));
                    *load.entry(*p).or_default() += 1;
                }
            }
            let bound = (1.25 * (12 * per) as f64 / n as f64).ceil() as usize;
            assert!(load.values().all(|&l| l <= bound), "{n} peers: {load:?}");
        }
    }

    #[test]
    fn a_joining_or_leaving_peer_moves_few_replicas() {
        let (shards, rf) = (60, 2);
        let before = replicas(&place("c", shards, rf, &peers(1..=5)));
        let joined = replicas(&place("c", shards, rf, &peers(1..=6)));
        let left = replicas(&place("c", shards, rf, &peers(1..=4)));
        let total = (shards * rf) as usize;
        // The ideal is 1/6 (join) and 1/5 (leave) of the replicas; the load bound may shift a
        // few more.
        let moved_join = before.difference(&joined).count();
        let moved_leave = before.difference(&left).count();
        assert!(
            moved_join <= total * 3 / 10,
            "join moved {moved_join} of {total}"
        );
        assert!(
            moved_leave <= total * 3 / 10,
            "leave moved {moved_leave} of {total}"
        );
        assert!(moved_join > 0 && moved_leave > 0);
    }

    #[test]
    fn placement_is_a_pure_function_of_its_inputs() {
        let p = peers(1..=4);
        assert_eq!(place("a", 8, 2, &p), place("a", 8, 2, &p));
        assert_ne!(place("a", 8, 2, &p), place("b", 8, 2, &p));
        assert!(place("a", 3, 2, &BTreeSet::new()).iter().all(Vec::is_empty));
    }
}
