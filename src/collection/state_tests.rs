//! The writer's apply rules, tested without RocksDB or HTTP.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::config::{CollectionConfig, CreateCollection};
use super::ops::{Operation, PointWrite, Selector};
use super::optimizer::{BuildJob, BuildKind};
use super::segment::{IndexedSegment, PlainSegment, SegmentData};
use super::snapshot::Loc;
use super::state::{Change, Pending, WriterState};
use super::CollectionError;
use crate::config::{Config, SyncPolicy};
use crate::filter::Filter;
use crate::point_id::PointId;
use crate::storage::codec::StoredPoint;

fn state() -> WriterState {
    let req: CreateCollection =
        serde_json::from_value(json!({"vectors": {"size": 2, "distance": "Euclid"}})).unwrap();
    let config = CollectionConfig::from_request(
        req,
        &Config::defaults().collection_defaults,
        SyncPolicy::Os,
        0,
    )
    .unwrap();
    WriterState::new(config, 1)
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

fn upsert(ids: &[u64]) -> Operation {
    Operation::Upsert(
        ids.iter()
            .map(|&i| PointWrite {
                id: PointId::Num(i),
                vectors: vec![vec![i as f32, 0.0]],
                sparse: Vec::new(),
                payload: obj(json!({"i": i})),
            })
            .collect(),
    )
}

/// Resolves and applies one operation the way the writer does.
fn run(state: &mut WriterState, op: Operation) -> Result<(), CollectionError> {
    let lsn = state.lsn + 1;
    let pending = state.resolve(&op, lsn, &[])?;
    state.apply(pending.changes);
    state.lsn = lsn;
    Ok(())
}

#[test]
fn later_operations_of_a_group_see_earlier_ones() {
    let s = state();
    let first = s.resolve(&upsert(&[1]), 1, &[]).unwrap();
    let set = Operation::SetPayload {
        payload: obj(json!({"x": 1})),
        selector: Selector::Ids(vec![PointId::Num(1)]),
        key: None,
    };
    let second = s.resolve(&set, 2, &[&first]).unwrap();
    let Change::Put(_, p) = &second.changes[0] else {
        panic!("expected a put")
    };
    assert_eq!(Value::Object((*p.payload).clone()), json!({"i": 1, "x": 1}));
    assert_eq!(p.vectors, vec![vec![1.0, 0.0]]);
    // Without the first operation the point does not exist and the edit fails.
    assert!(matches!(
        s.resolve(&set, 2, &[]),
        Err(CollectionError::NotFound(_))
    ));
}

#[test]
fn overwrite_and_delete_tombstone_old_versions() {
    let mut s = state();
    run(&mut s, upsert(&[1, 2, 3])).unwrap();
    run(&mut s, upsert(&[2])).unwrap();
    let filter =
        Filter::from_json(&json!({"must": [{"key": "i", "match": {"value": 3}}]})).unwrap();
    run(&mut s, Operation::Delete(Selector::Filter(filter))).unwrap();
    let snap = s.snapshot();
    assert_eq!(snap.points_count(), 2);
    assert_eq!(snap.segments.last().unwrap().live(), 2);
    assert_eq!(snap.get(PointId::Num(2)).unwrap().version(), 2);
    assert!(snap.get(PointId::Num(3)).is_none());
}

#[test]
fn install_keeps_only_points_unchanged_since_the_build_started() {
    let mut s = state();
    run(&mut s, upsert(&[1, 2, 3])).unwrap();
    s.freeze_append();
    let frozen_id = *s.sealed.keys().next().unwrap();
    let frozen = s.sealed[&frozen_id].data.clone();
    // While the "build" runs: point 2 is overwritten and point 3 deleted.
    run(&mut s, upsert(&[2])).unwrap();
    run(
        &mut s,
        Operation::Delete(Selector::Ids(vec![PointId::Num(3)])),
    )
    .unwrap();
    let mut built = PlainSegment::new(
        s.dims.clone(),
        s.multi.clone(),
        s.names.clone(),
        s.sparse_names.clone(),
    );
    let sources: Vec<Loc> = (0..3)
        .map(|o| {
            let point = StoredPoint {
                version: frozen.version(o),
                vectors: frozen.vectors(o),
                sparse: Vec::new(),
                payload: frozen.payload(o).clone(),
            };
            built.push(frozen.id(o), point);
            Loc {
                segment: frozen_id,
                offset: o,
            }
        })
        .collect();
    let new_id = s.allocate_segment_id();
    s.install(
        new_id,
        Arc::new(SegmentData::Plain(built)),
        &sources,
        &[frozen_id],
        None,
    );
    let snap = s.snapshot();
    assert_eq!(snap.points_count(), 2);
    assert_eq!(
        snap.locations.get(&PointId::Num(1)),
        Some(&Loc {
            segment: new_id,
            offset: 0
        })
    );
    assert_ne!(
        snap.locations.get(&PointId::Num(2)).unwrap().segment,
        new_id
    );
    let installed = snap.segment(new_id).unwrap();
    assert!(installed.is_live(0) && !installed.is_live(1) && !installed.is_live(2));
    assert!(snap.segment(frozen_id).is_none());
}

#[test]
fn a_failed_operation_leaves_pending_changes_alone() {
    let s = state();
    let mut group = Pending::default();
    group.extend(s.resolve(&upsert(&[7]), 1, &[]).unwrap());
    let bad = Operation::ClearPayload(Selector::Ids(vec![PointId::Num(8)]));
    assert!(s.resolve(&bad, 2, &[&group]).is_err());
    assert_eq!(group.changes.len(), 1);
}

/// Plans and runs one index build the way the writer does, and installs it.
fn build_once(s: &mut WriterState, kind: BuildKind, dir: &std::path::Path) -> Vec<u64> {
    let job = BuildJob::plan(s, kind, dir.to_path_buf()).expect("a build is due");
    let built = super::optimizer::run(job, "test").unwrap();
    s.busy.clear();
    let replaces = built.replaces.clone();
    install(s, built);
    replaces
}

/// Installs a finished build the way the writer does.
fn install(s: &mut WriterState, built: super::optimizer::Built) {
    s.install(
        built.id,
        built.data,
        &built.sources,
        &built.replaces,
        built.indexes,
    );
}

#[test]
fn fresh_indexing_and_vacuum_run_on_disjoint_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = state();
    run(&mut s, upsert(&(0..1200).collect::<Vec<_>>())).unwrap();
    s.freeze_append();
    assert!(BuildJob::plan(&mut s, BuildKind::Merge, dir.path().into()).is_none());
    build_once(&mut s, BuildKind::Fresh, dir.path());
    let big = *s.sealed.keys().next().unwrap();
    // A quarter deleted: past the 20% vacuum threshold.
    let gone: Vec<PointId> = (0..300).map(PointId::Num).collect();
    run(&mut s, Operation::Delete(Selector::Ids(gone))).unwrap();
    run(&mut s, upsert(&(2000..2100).collect::<Vec<_>>())).unwrap();
    assert_eq!(s.unindexed_points(), 100);
    s.freeze_append();

    // The vacuum takes the big segment; the fresh build, planned while it runs, takes only
    // the frozen points (into a new segment, as the only indexed one is being vacuumed).
    let vacuum = BuildJob::plan(&mut s, BuildKind::Merge, dir.path().into()).unwrap();
    assert_eq!(vacuum.inputs(), vec![big]);
    let fresh = BuildJob::plan(&mut s, BuildKind::Fresh, dir.path().into()).unwrap();
    assert!(!fresh.inputs().contains(&big), "{:?}", fresh.inputs());
    assert!(BuildJob::plan(&mut s, BuildKind::Fresh, dir.path().into()).is_none());
    for job in [fresh, vacuum] {
        install(&mut s, super::optimizer::run(job, "test").unwrap());
    }
    s.busy.clear();
    assert_eq!(s.unindexed_points(), 0);
    assert_eq!(s.indexed_ids().len(), 2);
    assert!(!s.sealed.contains_key(&big));

    // Two healthy indexed segments: the next merge folds them into one.
    build_once(&mut s, BuildKind::Merge, dir.path());
    assert_eq!(s.indexed_ids().len(), 1);
    assert_eq!(s.snapshot().points_count(), 1000);
}

/// A state whose indexing threshold is `kb` (2-d points are 8 bytes, so 128 points per KB).
fn state_with_threshold(kb: usize) -> WriterState {
    let mut s = state();
    let mut config = (*s.config).clone();
    config.optimizer_config.indexing_threshold = Some(kb);
    s.config = Arc::new(config);
    s
}

fn append_plain(s: &WriterState) -> &PlainSegment {
    match &s.append {
        SegmentData::Plain(p) => p,
        SegmentData::Indexed(_) => unreachable!(),
    }
}

#[test]
fn appended_points_are_indexed_as_they_arrive_and_sealed_in_place() {
    // One insertion thread: the live graph over these collinear points, and so the nearest
    // three asserted below, are then the same in every run. Insertions racing on a line could
    // leave a point unreachable (seen once: [43, 41, 45] for 42.2).
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    pool.install(indexed_as_they_arrive);
}

fn indexed_as_they_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = state_with_threshold(1);
    assert_eq!(s.tend_append(), None);
    assert!(append_plain(&s).is_indexed());
    run(&mut s, upsert(&(0..100).collect::<Vec<_>>())).unwrap();
    s.index_appended();
    assert_eq!(s.unindexed_points(), 0);
    let hits = append_plain(&s)
        .search_live(0, &[42.2, 0.0], 3, 16, crate::index::hnsw::Accept::All)
        .expect("every point is in the live graph");
    assert_eq!(
        hits.iter().map(|h| h.0).collect::<Vec<_>>(),
        vec![42, 43, 41]
    );
    assert_eq!(s.tend_append(), None, "below the threshold of 128 points");

    run(&mut s, upsert(&(100..130).collect::<Vec<_>>())).unwrap();
    s.index_appended();
    let append_id = s.append_id;
    assert_eq!(s.tend_append(), Some(append_id));
    // Sealed under the same id, so every location still holds; no file yet.
    assert!(matches!(
        *s.sealed[&append_id].data,
        SegmentData::Indexed(_)
    ));
    assert_eq!(s.locations[&PointId::Num(7)].segment, append_id);
    assert!(s.indexed_ids().is_empty());
    assert!(append_plain(&s).is_indexed() && s.append_id != append_id);

    // Writing its file is a job of its own, after which the stored list names it.
    let job = BuildJob::plan(&mut s, BuildKind::Persist, dir.path().into()).unwrap();
    assert_eq!(job.inputs(), vec![append_id]);
    assert!(BuildJob::plan(&mut s, BuildKind::Persist, dir.path().into()).is_none());
    let done = super::optimizer::run(job, "test").unwrap();
    assert!(done.replaces.is_empty());
    assert!(crate::storage::files::SegmentFile::Segment
        .path(dir.path(), append_id)
        .exists());
    s.unpersisted.remove(&done.id);
    assert_eq!(s.indexed_ids(), vec![append_id]);
}

#[test]
fn indexing_off_scans_and_points_from_before_are_indexed_in_place_or_frozen() {
    let mut s = state_with_threshold(0);
    run(&mut s, upsert(&(0..3000).collect::<Vec<_>>())).unwrap();
    assert_eq!(s.tend_append(), None);
    assert!(!append_plain(&s).is_indexed());
    assert_eq!(s.unindexed_points(), 3000);

    // Turned on with more points than are indexed in place: frozen for a background build.
    s.config = state_with_threshold(1000).config;
    assert_eq!(s.tend_append(), None);
    assert!(s.frozen_waiting() && append_plain(&s).is_indexed());
    assert_eq!(s.unindexed_points(), 3000);

    // A few points (as after a restart) are indexed right away.
    let mut s = state_with_threshold(0);
    run(&mut s, upsert(&(0..50).collect::<Vec<_>>())).unwrap();
    s.tend_append();
    s.config = state_with_threshold(1000).config;
    s.tend_append();
    assert!(!s.frozen_waiting() && append_plain(&s).is_indexed());
    assert_eq!(s.unindexed_points(), 0);
}

#[test]
fn sealed_segments_keep_which_points_lack_a_vector_in_both_file_formats() {
    let s = state();
    let mut plain = PlainSegment::new(
        s.dims.clone(),
        s.multi.clone(),
        s.names.clone(),
        s.sparse_names.clone(),
    );
    plain.start_index(&s.spaces, 1024, 7);
    for i in 0..200u64 {
        // Every third point lacks the vector.
        let vector = match i % 3 {
            0 => Vec::new(),
            _ => vec![i as f32, (i % 7) as f32],
        };
        let point = StoredPoint {
            version: 1,
            vectors: vec![vector],
            sparse: Vec::new(),
            payload: Arc::default(),
        };
        plain.push(PointId::Num(i), point);
    }
    plain.index_new();
    let sealed = plain.seal(&s.spaces).unwrap();
    let lacking: Vec<u32> = (0..200).filter(|o| o % 3 == 0).collect();
    let absent = sealed.absent[0].as_ref().unwrap();
    assert_eq!(absent.iter().collect::<Vec<_>>(), lacking);
    // No search reaches a point without the vector.
    let found = sealed.graphs[0].search(
        &sealed.floats(0),
        2,
        crate::index::Metric::L2,
        &[0.0, 0.0],
        200,
        400,
        crate::index::hnsw::Accept::All,
    );
    assert_eq!(found.len(), 200 - lacking.len());
    assert!(found.iter().all(|(o, _)| o % 3 != 0));

    let bytes = sealed.encode();
    let names = || (s.names.clone(), s.sparse_names.clone());
    let (n, sp) = names();
    let format = super::segment::SEGMENT_FORMAT;
    let decoded = IndexedSegment::decode(&bytes, format, &s.dims, &s.multi, n, sp).unwrap();
    assert_eq!(decoded.absent, sealed.absent);
    let data = SegmentData::Indexed(decoded);
    assert!(!data.has_vector(0, 3) && data.has_vector(0, 4));
    assert!(data.vectors(3)[0].is_empty());
    // Format 1 had no absence flags (its points all have every vector), nor element types. A
    // file of it is this one without the type before the space's vectors, and without the
    // flag and bitset after them.
    let type_at = 8 + 4 + 200 * (17 + 8) + 4;
    let flags_at = type_at + 1 + 200 * 2 * 4;
    let mut v1 = bytes[..type_at].to_vec();
    v1.extend_from_slice(&bytes[type_at + 1..flags_at]);
    v1.extend_from_slice(&bytes[flags_at + 1 + 8 * 200usize.div_ceil(64)..]);
    let (n, sp) = names();
    let old = IndexedSegment::decode(&v1, 1, &s.dims, &s.multi, n, sp).unwrap();
    assert_eq!(old.absent, vec![None]);
    let (n, sp) = names();
    assert!(IndexedSegment::decode(&v1, 2, &s.dims, &s.multi, n, sp).is_err());
}
