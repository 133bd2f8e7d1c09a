use std::time::Duration;

use openraft::testing::{StoreBuilder, Suite};
use openraft::{CommittedLeaderId, Entry, StorageError};
use serde_json::json;
use tempfile::TempDir;

use super::*;
use crate::cluster::log_store::LogStore;
use crate::collection::config::{CollectionConfig, CreateCollection};
use crate::collection::ops::{PointWrite, Selector};
use crate::config::Config;
use crate::point_id::PointId;
use crate::storage::Store;

const GROUP: GroupId = 3;
const LOCAL: &str = "c~0";

/// A replica's storage; shuts its writers down when dropped, before the directory goes.
struct Replica {
    registry: Arc<Registry>,
    _dir: TempDir,
}

/// Stops `registry`'s writers from a plain thread: tests run inside a runtime, where the
/// blocking stop message may not be sent.
fn shut(registry: &Registry) {
    std::thread::scope(|s| {
        s.spawn(|| registry.shutdown());
    });
}

impl Drop for Replica {
    fn drop(&mut self) {
        shut(&self.registry);
    }
}

fn config() -> CollectionConfig {
    let request: CreateCollection =
        serde_json::from_value(json!({"vectors": {"size": 2, "distance": "Dot"}})).unwrap();
    let defaults = Config::defaults();
    let d = &defaults.collection_defaults;
    CollectionConfig::from_request(request, d, crate::config::SyncPolicy::Group, 2).unwrap()
}

fn replica() -> (Replica, LogStore<ShardTypes>, ShardStateMachine) {
    let dir = TempDir::new().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let registry = Arc::new(Registry::open(store.clone(), &Config::defaults()).unwrap());
    registry
        .create(LOCAL, config(), Duration::from_secs(10))
        .unwrap();
    let log = LogStore::new(store, GROUP, true);
    let sm = ShardStateMachine::open(registry.clone(), LOCAL.into(), GROUP).unwrap();
    let replica = Replica {
        registry,
        _dir: dir,
    };
    (replica, log, sm)
}

struct Builder;

impl StoreBuilder<ShardTypes, LogStore<ShardTypes>, ShardStateMachine, Replica> for Builder {
    async fn build(
        &self,
    ) -> std::result::Result<(Replica, LogStore<ShardTypes>, ShardStateMachine), StorageError<NodeId>>
    {
        Ok(replica())
    }
}

/// openraft's own conformance suite, on a shard replica over a real collection.
#[test]
fn openraft_storage_suite() {
    Suite::test_all(Builder).expect("openraft storage suite");
}

fn entry(index: u64, ops: Vec<Operation>) -> Entry<ShardTypes> {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(ShardCommand { ops }),
    }
}

fn upsert(ids: &[u64]) -> Operation {
    let points = ids
        .iter()
        .map(|&id| PointWrite {
            sparse: Vec::new(),
            id: PointId::Num(id),
            vectors: vec![vec![id as f32, 1.0]],
            payload: json!({"n": id}).as_object().unwrap().clone(),
        })
        .collect();
    Operation::Upsert(points)
}

/// (id, version, payload) of every point of the replica's collection.
fn contents(replica: &Replica) -> Vec<(PointId, u64, String)> {
    let snapshot = replica.registry.get(LOCAL).unwrap().snapshot();
    snapshot
        .scan(None, None)
        .map(|(id, p)| (id, p.version(), format!("{:?}", p.payload_arc())))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_apply_at_their_log_index_and_a_snapshot_installs_elsewhere() {
    let (a, _log, mut sm) = replica();
    let missing = Operation::OverwritePayload {
        payload: Default::default(),
        selector: Selector::Ids(vec![PointId::Num(99)]),
    };
    let replies = sm
        .apply(vec![
            entry(1, vec![upsert(&[1, 2, 3])]),
            entry(
                2,
                vec![Operation::Delete(Selector::Ids(vec![PointId::Num(2)]))],
            ),
            // Atomic per entry: the upsert before the failing operation is not applied either.
            entry(3, vec![upsert(&[7]), missing]),
        ])
        .await
        .unwrap();
    assert!(replies[0].is_ok() && replies[1].is_ok(), "{replies:?}");
    assert!(replies[2].is_err(), "{replies:?}");
    let local = a.registry.get(LOCAL).unwrap();
    assert_eq!(
        local.snapshot().lsn,
        3,
        "the LSN is the last applied log index"
    );
    let before = contents(&a);
    let ids: Vec<PointId> = before.iter().map(|p| p.0).collect();
    assert_eq!(ids, vec![PointId::Num(1), PointId::Num(3)]);
    assert!(
        before.iter().all(|p| p.1 == 1),
        "versions are log indexes: {before:?}"
    );

    let mut builder = sm.get_snapshot_builder().await;
    let snapshot = builder.build_snapshot().await.unwrap();
    assert_eq!(snapshot.meta.last_log_id.map(|l| l.index), Some(3));

    let (b, _log_b, mut sm_b) = replica();
    sm_b.install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await
        .unwrap();
    assert_eq!(contents(&b), before);
    assert_eq!(
        sm_b.applied_state().await.unwrap().0,
        snapshot.meta.last_log_id
    );
    assert_eq!(b.registry.get(LOCAL).unwrap().snapshot().lsn, 3);
    // Later entries apply on top of the installed state.
    let replies = sm_b
        .apply(vec![entry(4, vec![upsert(&[5])])])
        .await
        .unwrap();
    assert!(replies[0].is_ok());
    assert_eq!(contents(&b).len(), 3);

    // The mark is durable with the points: a reopened replica resumes where it was.
    let store = b.registry.store.clone();
    shut(&b.registry);
    let reopened = Arc::new(Registry::open(store, &Config::defaults()).unwrap());
    let mut sm_c = ShardStateMachine::open(reopened.clone(), LOCAL.into(), GROUP).unwrap();
    let applied = sm_c.applied_state().await.unwrap().0;
    assert_eq!(applied.map(|l| l.index), Some(4));
    assert_eq!(reopened.get(LOCAL).unwrap().snapshot().points_count(), 3);
    shut(&reopened);
}
