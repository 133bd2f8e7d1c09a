use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::cluster::meta::{MetaCommand, MetaReply};
use crate::collection::config::CollectionConfig;

fn config(shards: u32, replication_factor: u32) -> CollectionConfig {
    serde_json::from_value(serde_json::json!({
        "params": {"vectors": {"size": 2, "distance": "Dot"}, "shard_number": shards,
            "replication_factor": replication_factor, "write_consistency_factor": 1,
            "on_disk_payload": false},
        "hnsw_config": {"m": 16, "ef_construct": 100, "full_scan_threshold": 10000,
            "max_indexing_threads": 0, "on_disk": false},
        "optimizer_config": {"deleted_threshold": 0.2, "vacuum_min_vector_number": 1000,
            "default_segment_number": 0, "flush_interval_sec": 5},
        "wal_config": {"wal_capacity_mb": 32, "wal_segments_ahead": 0,
            "sync_policy": "group", "group_commit_interval_ms": 2}
    }))
    .expect("config")
}

fn peers(ids: impl IntoIterator<Item = NodeId>) -> BTreeSet<NodeId> {
    ids.into_iter().collect()
}

/// A cluster state whose collections (name, shards, replication factor) were placed by the
/// ring over `over`, as collection creation places them.
fn cluster(collections: &[(&str, u32, u32)], over: &BTreeSet<NodeId>) -> MetaState {
    let mut state = MetaState::default();
    for (name, shards, factor) in collections {
        let create = MetaCommand::CreateCollection {
            name: name.to_string(),
            config: config(*shards, *factor),
            replicas: place(name, *shards, *factor, over),
        };
        assert_eq!(state.apply(create), MetaReply::Done);
    }
    state
}

fn placements(state: &MetaState) -> BTreeMap<(String, usize), Vec<NodeId>> {
    let shards = state.collections.iter().flat_map(|(name, c)| {
        let placed = c.shards.iter().enumerate();
        placed.map(|(s, p)| ((name.clone(), s), p.replicas.clone()))
    });
    shards.collect()
}

fn total(state: &MetaState) -> usize {
    placements(state).values().map(Vec::len).sum()
}

fn applied(state: &MetaState, changed: Placements) -> MetaState {
    let mut next = state.clone();
    let command = MetaCommand::Place {
        placements: changed,
    };
    assert_eq!(next.apply(command), MetaReply::Done);
    next
}

/// The replicas each peer lost and gained between two states.
fn moves(before: &MetaState, after: &MetaState) -> (Vec<NodeId>, Vec<NodeId>) {
    let (old, new) = (placements(before), placements(after));
    let (mut lost, mut gained) = (Vec::new(), Vec::new());
    for (shard, was) in &old {
        let now = &new[shard];
        lost.extend(was.iter().filter(|p| !now.contains(p)));
        gained.extend(now.iter().filter(|p| !was.contains(p)));
    }
    (lost, gained)
}

fn max_over_mean(state: &MetaState, over: &BTreeSet<NodeId>) -> f64 {
    let load = loads(state, over);
    let mean = total(state) as f64 / over.len() as f64;
    *load.values().max().unwrap() as f64 / mean
}

#[test]
fn a_fourth_peer_takes_a_quarter_and_only_it_gains() {
    let collections = [("a", 8, 2), ("b", 8, 2), ("c", 8, 2)];
    let before = cluster(&collections, &peers([1, 2, 3]));
    let four = peers([1, 2, 3, 4]);
    let after = applied(&before, with_peer(&before, 4, &four));

    let (lost, gained) = moves(&before, &after);
    assert!(gained.iter().all(|p| *p == 4), "gained: {gained:?}");
    assert!(lost.iter().all(|p| *p != 4), "lost: {lost:?}");
    let fraction = gained.len() as f64 / total(&before) as f64;
    assert!((0.18..=0.32).contains(&fraction), "moved {fraction}");
    assert!(
        max_over_mean(&after, &four) <= 1.25,
        "{:?}",
        loads(&after, &four)
    );
    // Every shard keeps its replica count, on distinct peers.
    for (shard, replicas) in placements(&after) {
        let distinct: BTreeSet<_> = replicas.iter().collect();
        assert_eq!(
            (replicas.len(), distinct.len()),
            (2, 2),
            "{shard:?}: {replicas:?}"
        );
    }
    // Each collection is spread too, not only the whole.
    for name in ["a", "b", "c"] {
        let held = after.collections[name].shards.iter();
        let on_four = held.filter(|p| p.replicas.contains(&4)).count();
        assert!(
            (3..=5).contains(&on_four),
            "{name}: {on_four} of 8 shards on peer 4"
        );
    }
}

#[test]
fn removing_a_peer_moves_only_its_replicas() {
    let collections = [("a", 8, 2), ("b", 8, 2), ("c", 8, 2)];
    let four = peers([1, 2, 3, 4]);
    let before = cluster(&collections, &four);
    let three = peers([1, 3, 4]);
    let after = applied(&before, without_peer(&before, 2, &three));

    let (lost, gained) = moves(&before, &after);
    let held = loads(&before, &four)[&2];
    assert_eq!(lost, vec![2; held], "only peer 2's replicas leave");
    assert_eq!(gained.len(), held);
    assert!(gained.iter().all(|p| three.contains(p)));
    assert!(
        max_over_mean(&after, &three) <= 1.25,
        "{:?}",
        loads(&after, &three)
    );
    assert_eq!(total(&after), total(&before));
}

#[test]
fn joins_stay_within_bounds_for_many_shapes() {
    let shapes: [&[(&str, u32, u32)]; 4] = [
        &[
            ("a", 1, 1),
            ("b", 1, 1),
            ("c", 1, 1),
            ("d", 1, 1),
            ("e", 1, 1),
            ("f", 1, 1),
        ],
        &[("a", 6, 3), ("b", 2, 2)],
        &[("a", 12, 1)],
        &[("a", 16, 2), ("b", 5, 3), ("c", 3, 1)],
    ];
    for shape in shapes {
        for n in 1..7u64 {
            let old = peers(1..=n);
            let state = cluster(shape, &old);
            let joined = peers(1..=n + 1);
            let after = applied(&state, with_peer(&state, n + 1, &joined));
            let (lost, gained) = moves(&state, &after);
            assert!(
                gained.iter().all(|p| *p == n + 1),
                "{shape:?} {n}: {gained:?}"
            );
            assert_eq!(lost.len(), gained.len());
            // Its share of the whole, rounded, and never more than one shard per replica.
            let share = (total(&state) as f64 / (n + 1) as f64).round() as usize;
            let shards: usize = shape.iter().map(|(_, s, _)| *s as usize).sum();
            assert_eq!(gained.len(), share.min(shards), "{shape:?} {n}");
        }
    }
}

#[test]
fn a_dead_peers_replicas_go_to_the_least_loaded_others() {
    let mut state = MetaState::default();
    let create = MetaCommand::CreateCollection {
        name: "c".into(),
        config: config(3, 2),
        replicas: vec![vec![1, 2], vec![2, 3], vec![1, 3]],
    };
    assert_eq!(state.apply(create), MetaReply::Done);
    let changed = without_peer(&state, 2, &peers([1, 3, 4]));
    // Shards 0 and 1 lose peer 2; peer 4 holds nothing, so it takes both.
    let expected = vec![
        ("c".to_string(), 0, vec![1, 4]),
        ("c".to_string(), 1, vec![3, 4]),
    ];
    assert_eq!(changed, expected);
    let command = MetaCommand::RemovePeer {
        id: 2,
        placements: changed,
    };
    assert_eq!(state.apply(command), MetaReply::Done);
    let placed: Vec<Vec<NodeId>> = state.collections["c"]
        .shards
        .iter()
        .map(|p| p.replicas.clone())
        .collect();
    assert_eq!(placed, vec![vec![1, 4], vec![3, 4], vec![1, 3]]);
    // The groups keep their ids and founders.
    assert_eq!(state.collections["c"].shards[0].initial, vec![1, 2]);
}
