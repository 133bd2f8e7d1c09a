//! Background segment work: index builds that fold frozen append segments (and indexed
//! segments) into one HNSW segment, writing the files of segments sealed from a live-indexed
//! append segment, and building the graphs per tenant of indexed segments.
//!
//! A job runs on its own thread with rayon inside, reading only immutable inputs, so searches
//! and writes go on meanwhile. A build extends the graph of the indexed segment with the most
//! live points with the other inputs' live points; when too many of that segment's points are
//! deleted (a vacuum), its graph is first compacted to the live ones, which costs a fraction of
//! a rebuild. The result goes to disk first, then back to the writer, which decides per point
//! whether it is still current.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::VectorSpace;
use super::index_files;
use super::segment::{IndexedSegment, SegmentData, SpaceRows, SEGMENT_FORMAT};
use super::snapshot::Loc;
use super::state::{index_segment, Sealed, WriterState};
use super::tenants::{self, TenantGraphs};
use crate::bitset::Bitset;
use crate::filter::index::{PayloadSchema, SegmentIndexes};
use crate::index::hnsw::{Flat, Graph, HnswParams, Holed, Multi, Rows};
use crate::index::sparse::SparseVector;
use crate::index::typed::Elements;
use crate::index::Metric;
use crate::storage::codec::Payload;
use crate::storage::files;

/// Everything a build needs, captured from the writer's state when it starts.
pub struct BuildJob {
    id: u64,
    kind: BuildKind,
    spaces: Arc<[VectorSpace]>,
    dims: Arc<[usize]>,
    sparse_names: Arc<[String]>,
    /// Segment whose graph is extended, if any: it keeps all its offsets, or only its live
    /// ones when `compact_base` (too many are deleted: a vacuum).
    base: Option<(u64, Sealed)>,
    compact_base: bool,
    /// Segments whose live points are appended.
    others: Vec<(u64, Sealed)>,
    threads: usize,
    dir: PathBuf,
    /// The payload schema when the job started: a build indexes its result's payloads too.
    schema: Arc<PayloadSchema>,
    /// Values of a tenant field with at most this many live points get no graph of their own
    /// (the smallest full-scan threshold among the spaces).
    tenant_min_points: usize,
}

/// The kinds of job, which run side by side on disjoint segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildKind {
    /// Writes the file of a segment sealed from the append segment (already indexed).
    Persist,
    /// Indexes frozen append segments (into the largest healthy indexed segment, or a new
    /// one): takes time in proportion to the fresh points, so writes may wait for it.
    Fresh,
    /// Vacuums and merges indexed segments: takes time in proportion to the collection, so
    /// it must never hold up fresh indexing.
    Merge,
    /// Builds the graphs per tenant of an indexed segment that lacks some (see
    /// [`super::tenants`]), writing them to its tenant graph file.
    Tenants,
}

/// A finished build, for the writer to install.
pub struct Built {
    pub id: u64,
    pub data: Arc<SegmentData>,
    /// Where each offset's point came from.
    pub sources: Vec<Loc>,
    /// Segments the new one replaces.
    pub replaces: Vec<u64>,
    /// The new segment's payload indexes, for the schema the job started with.
    pub indexes: Option<(Arc<PayloadSchema>, SegmentIndexes)>,
    /// A tenant job's graphs, or those a build carries over from the segment it extended, for
    /// the schema the job started with.
    pub tenants: Option<TenantGraphs>,
    pub took: Duration,
}

impl BuildJob {
    /// Decides whether a build of `kind` is due and captures its inputs, leaving out segments
    /// another running build reads (`state.busy`), and marks its own inputs busy.
    pub fn plan(state: &mut WriterState, kind: BuildKind, dir: PathBuf) -> Option<BuildJob> {
        match kind {
            BuildKind::Persist => return Self::persist(state, dir),
            BuildKind::Tenants => return Self::tenants(state, dir),
            BuildKind::Fresh | BuildKind::Merge => {}
        }
        let config = state.config.clone();
        let opt = &config.optimizer_config;
        let needs_vacuum = |s: &Sealed| {
            let len = s.data.len();
            len >= opt.vacuum_min_vector_number
                && s.deleted.count() as f64 > opt.deleted_threshold * len as f64
        };
        let free: Vec<(u64, Sealed)> = state
            .sealed
            .iter()
            .filter(|(id, _)| !state.busy.contains(id))
            .map(|(id, s)| (*id, s.clone()))
            .collect();
        let is_plain = |s: &Sealed| matches!(*s.data, SegmentData::Plain(_));
        let indexed: Vec<&(u64, Sealed)> = free.iter().filter(|(_, s)| !is_plain(s)).collect();
        let due = match kind {
            BuildKind::Fresh => free.iter().any(|(_, s)| is_plain(s)),
            BuildKind::Merge => indexed.len() > 1 || indexed.iter().any(|(_, s)| needs_vacuum(s)),
            BuildKind::Persist | BuildKind::Tenants => false,
        };
        if !due {
            return None;
        }
        let base = indexed
            .iter()
            .max_by_key(|(_, s)| s.data.len() - s.deleted.count())
            .map(|(id, _)| *id);
        let (mut base_entry, mut others) = (None, Vec::new());
        for (id, s) in free {
            if Some(id) == base {
                base_entry = Some((id, s));
            } else if (kind == BuildKind::Fresh) == is_plain(&s) {
                others.push((id, s));
            }
        }
        state
            .busy
            .extend(base_entry.iter().chain(&others).map(|(id, _)| *id));
        Some(BuildJob {
            id: state.allocate_segment_id(),
            kind,
            spaces: state.spaces.clone(),
            dims: state.dims.clone(),
            sparse_names: state.sparse_names.clone(),
            compact_base: base_entry.as_ref().is_some_and(|(_, s)| needs_vacuum(s)),
            base: base_entry,
            others,
            threads: config.hnsw_config.max_indexing_threads,
            dir,
            schema: state.schema.clone(),
            tenant_min_points: 0,
        })
    }

    /// A job writing the file of an unpersisted segment that no other job reads, if any.
    fn persist(state: &mut WriterState, dir: PathBuf) -> Option<BuildJob> {
        let id = *state
            .unpersisted
            .iter()
            .find(|id| !state.busy.contains(id))?;
        let sealed = state.sealed.get(&id)?.clone();
        state.busy.insert(id);
        Some(BuildJob {
            id,
            kind: BuildKind::Persist,
            spaces: state.spaces.clone(),
            dims: state.dims.clone(),
            sparse_names: state.sparse_names.clone(),
            base: Some((id, sealed)),
            compact_base: false,
            others: Vec::new(),
            threads: 1,
            dir,
            schema: state.schema.clone(),
            tenant_min_points: 0,
        })
    }

    /// A job building the missing tenant graphs of a persisted indexed segment that no other
    /// job reads, if any.
    fn tenants(state: &mut WriterState, dir: PathBuf) -> Option<BuildJob> {
        let (id, sealed) = state.sealed.iter().find(|(id, s)| {
            matches!(*s.data, SegmentData::Indexed(_))
                && !state.busy.contains(id)
                && !state.unpersisted.contains(id)
                && s.tenants.missing(&state.schema)
        })?;
        let (id, sealed) = (*id, sealed.clone());
        state.busy.insert(id);
        let config = &state.config;
        let min_points = state
            .spaces
            .iter()
            .map(|s| config.full_scan_threshold_points(s))
            .min();
        Some(BuildJob {
            id,
            kind: BuildKind::Tenants,
            spaces: state.spaces.clone(),
            dims: state.dims.clone(),
            sparse_names: state.sparse_names.clone(),
            base: Some((id, sealed)),
            compact_base: false,
            others: Vec::new(),
            threads: config.hnsw_config.max_indexing_threads,
            dir,
            schema: state.schema.clone(),
            tenant_min_points: min_points.unwrap_or(0),
        })
    }

    /// The segments this build reads (and replaces when it is installed).
    pub fn inputs(&self) -> Vec<u64> {
        let base = self.base.iter().map(|(id, _)| *id);
        base.chain(self.others.iter().map(|(id, _)| *id)).collect()
    }
}

/// Runs a job to completion, including the durable segment file.
pub fn run(job: BuildJob, collection: &str) -> Result<Built, String> {
    let start = Instant::now();
    if job.kind == BuildKind::Tenants {
        return run_tenants(&job, collection);
    }
    let (data, sources) = match &job.base {
        Some((_, sealed)) if job.kind == BuildKind::Persist => (sealed.data.clone(), Vec::new()),
        _ => {
            let (segment, sources) = run_build(&job)?;
            (Arc::new(SegmentData::Indexed(segment)), sources)
        }
    };
    let SegmentData::Indexed(segment) = &*data else {
        return Err("only indexed segments have files".into());
    };
    std::fs::create_dir_all(&job.dir).map_err(|e| format!("{}: {e}", job.dir.display()))?;
    let path = files::SegmentFile::Segment.path(&job.dir, job.id);
    files::write_atomic(&path, SEGMENT_FORMAT, &segment.encode())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let took = start.elapsed();
    tracing::info!(
        collection,
        kind = ?job.kind,
        points = segment.ids.len(),
        secs = took.as_secs_f64(),
        "segment job finished"
    );
    if job.kind == BuildKind::Persist {
        if let Some((_, sealed)) = &job.base {
            index_files::write(&job.dir, job.id, &sealed.indexes, collection);
        }
        return Ok(Built {
            id: job.id,
            data,
            sources,
            replaces: Vec::new(),
            indexes: None,
            tenants: None,
            took,
        });
    }
    metrics::histogram!("vecdb_index_build_seconds", "collection" => collection.to_string())
        .record(took.as_secs_f64());
    metrics::counter!("vecdb_index_builds_total", "collection" => collection.to_string())
        .increment(1);
    let mut replaces: Vec<u64> = job.others.iter().map(|(id, _)| *id).collect();
    replaces.extend(job.base.as_ref().map(|(id, _)| *id));
    // Indexing payloads here keeps it off the writer, which would hold writes meanwhile.
    let indexes = index_segment(&data, &job.schema);
    index_files::write(&job.dir, job.id, &indexes, collection);
    // The new segment keeps the base's offsets unless it was compacted, so the base's tenant
    // graphs carry over, for a tenant job to extend.
    let base = job.base.as_ref().filter(|_| !job.compact_base);
    let tenants = base.map(|(_, s)| s.tenants.carry(s.data.len()));
    Ok(Built {
        id: job.id,
        data,
        sources,
        replaces,
        indexes: Some((job.schema.clone(), indexes)),
        tenants: tenants.filter(|t| !t.fields.is_empty()),
        took,
    })
}

/// Builds a segment's missing tenant graphs and writes its tenant graph file.
fn run_tenants(job: &BuildJob, collection: &str) -> Result<Built, String> {
    let start = Instant::now();
    let Some((id, sealed)) = &job.base else {
        return Err("a tenant job without its segment".into());
    };
    let SegmentData::Indexed(segment) = &*sealed.data else {
        return Err("only indexed segments get tenant graphs".into());
    };
    let inputs = tenants::Inputs {
        segment,
        deleted: &sealed.deleted,
        indexes: &sealed.indexes,
        schema: &job.schema,
        spaces: &job.spaces,
        min_points: job.tenant_min_points,
        seed: *id,
    };
    let graphs = in_build_pool(job, || tenants::build(&inputs, &sealed.tenants))?;
    tenants::write(&job.dir, *id, &graphs, collection);
    let took = start.elapsed();
    let (count, secs) = (graphs.graphs.len(), took.as_secs_f64());
    // Small segments have no tenant large enough: nothing worth a line at the default level.
    match count {
        0 => tracing::debug!(
            collection,
            segment = id,
            "no tenant large enough for a graph"
        ),
        _ => tracing::info!(
            collection,
            segment = id,
            graphs = count,
            secs,
            "tenant graphs built"
        ),
    }
    Ok(Built {
        id: *id,
        data: sealed.data.clone(),
        sources: Vec::new(),
        replaces: Vec::new(),
        indexes: None,
        tenants: Some(graphs),
        took,
    })
}

/// Builds the graphs on a pool of their own (all cores unless `max_indexing_threads` says
/// otherwise), at normal priority. Builds are debt that writes have run up: at a lower priority
/// (nice 10 was measured) a saturating search load starves them, the debt grows, and searches
/// stay slow long after the load stops (the overload benchmark measured 90% of the search
/// throughput back 60 s after its storm at nice 10, 45 s at normal priority); the write stall
/// keeps the debt itself bounded.
fn run_build(job: &BuildJob) -> Result<(IndexedSegment, Vec<Loc>), String> {
    in_build_pool(job, || build(job))?
}

/// Runs `f` on a pool of the job's threads, counted as a running build.
fn in_build_pool<R: Send>(job: &BuildJob, f: impl FnOnce() -> R + Send) -> Result<R, String> {
    metrics::gauge!("vecdb_index_builds_running").increment(1.0);
    let result = rayon::ThreadPoolBuilder::new()
        .num_threads(job.threads)
        .thread_name(|i| format!("index-build-{i}"))
        .build()
        .map_err(|e| e.to_string())
        .map(|pool| pool.install(f));
    metrics::gauge!("vecdb_index_builds_running").decrement(1.0);
    result
}

/// Gathers the points (the base's first: all its offsets, or only the live ones when it is
/// compacted; then the others' live points) and the graphs.
fn build(job: &BuildJob) -> Result<(IndexedSegment, Vec<Loc>), String> {
    let spaces = job.dims.len();
    let mut points = Gathered {
        vectors: vec![Vec::new(); spaces],
        ends: job.spaces.iter().map(|s| s.multi.then(Vec::new)).collect(),
        absent: vec![Bitset::default(); spaces],
        sparse: vec![Vec::new(); job.sparse_names.len()],
        ..Gathered::default()
    };
    let base = match &job.base {
        Some((id, sealed)) => match &*sealed.data {
            SegmentData::Indexed(seg) => {
                let keep: Vec<u32> = (0..seg.ids.len() as u32)
                    .filter(|&o| !job.compact_base || !sealed.deleted.get(o as usize))
                    .collect();
                points.take(*id, &sealed.data, &keep);
                Some((seg, keep))
            }
            SegmentData::Plain(_) => None,
        },
        None => None,
    };
    for (id, sealed) in &job.others {
        let live: Vec<u32> = (0..sealed.data.len() as u32)
            .filter(|&o| !sealed.deleted.get(o as usize))
            .collect();
        points.take(*id, &sealed.data, &live);
    }
    let graphs = (0..spaces)
        .map(|s| space_graph(job, s, &points, base.as_ref()))
        .collect();
    let mut segment = IndexedSegment {
        ids: points.ids,
        versions: points.versions,
        payloads: points.payloads,
        vectors: points.vectors.into_iter().map(Elements::F32).collect(),
        ends: points.ends,
        dims: job.dims.clone(),
        names: job.spaces.iter().map(|s| s.name.clone()).collect(),
        sparse_names: job.sparse_names.clone(),
        sparse: points.sparse,
        inverted: Vec::new(),
        absent: points
            .absent
            .into_iter()
            .map(|a| Some(a).filter(|a| a.count() > 0))
            .collect(),
        graphs,
        quantized: Vec::new(),
        signs: Vec::new(),
    };
    segment.quantize(&job.spaces);
    segment.narrow(&job.spaces);
    segment.index_sparse();
    Ok((segment, points.sources))
}

/// The graph of space `s` over the gathered points: the base's graph (compacted when the
/// build drops its deleted points) extended with the others, or a new one.
fn space_graph(
    job: &BuildJob,
    s: usize,
    points: &Gathered,
    base: Option<&(&IndexedSegment, Vec<u32>)>,
) -> Graph {
    let space = &job.spaces[s];
    let params = HnswParams {
        m: space.hnsw.m,
        ef_construct: space.hnsw.ef_construct,
        seed: job.id ^ (s as u64) << 32,
    };
    let metric = space.metric();
    // A graph built with another `m` (changed by PATCH) cannot be extended in place. Nor is a
    // multivector graph compacted: late-interaction distances are asymmetric and scale with
    // the number of vectors, and consolidating the links around deleted points measurably
    // lost recall (0.90 against 1.0 for a rebuild, 12 clusters, a quarter deleted), so it is
    // built again.
    let start = base.filter(|(seg, _)| seg.graphs[s].m() == params.m);
    let start = start.filter(|_| !(space.multi && job.compact_base));
    let start = start.and_then(|(seg, keep)| match job.compact_base {
        true => {
            // Narrow rows are widened for the while: compaction compares rows with each other.
            let floats = seg.floats(s);
            let rows = SpaceRows::new(&floats, seg.ends[s].as_deref(), space.size);
            seg.graphs[s].compact_rows(keep, &rows, metric)
        }
        false => Some(seg.graphs[s].clone()),
    });
    let absent = Some(&points.absent[s]).filter(|a| a.count() > 0);
    let (vectors, dim, n) = (&points.vectors[s][..], space.size, points.ids.len());
    match &points.ends[s] {
        None => grown(
            start,
            &Holed {
                rows: Flat { vectors, dim },
                absent,
            },
            n,
            metric,
            params,
        ),
        Some(ends) => {
            let rows = Multi { vectors, ends, dim };
            grown(start, &Holed { rows, absent }, n, metric, params)
        }
    }
}

/// `start` extended with rows `start.len()..n` of `rows`, or a graph built over all of them.
fn grown<R: Rows>(
    start: Option<Graph>,
    rows: &R,
    n: usize,
    metric: Metric,
    params: HnswParams,
) -> Graph {
    match start {
        Some(graph) => graph.extend_over(rows, n, metric, params),
        None => Graph::build_over(rows, n, metric, params),
    }
}

/// The points of a build's new segment, in offset order, and where each came from.
#[derive(Default)]
struct Gathered {
    ids: Vec<crate::point_id::PointId>,
    versions: Vec<u64>,
    payloads: Vec<Payload>,
    vectors: Vec<Vec<f32>>,
    /// Per multivector space, where each gathered point's vectors end in `vectors`.
    ends: Vec<Option<Vec<usize>>>,
    /// Per space, the gathered points lacking that vector.
    absent: Vec<Bitset>,
    /// Per sparse space, the gathered points' sparse vectors.
    sparse: Vec<Vec<SparseVector>>,
    sources: Vec<Loc>,
}

impl Gathered {
    /// Appends the points at `offsets` of segment `id`.
    fn take(&mut self, id: u64, data: &SegmentData, offsets: &[u32]) {
        for &offset in offsets {
            self.ids.push(data.id(offset));
            self.versions.push(data.version(offset));
            self.payloads.push(data.payload(offset).clone());
            for (s, v) in self.vectors.iter_mut().enumerate() {
                if !data.has_vector(s, offset) {
                    self.absent[s].set(self.ids.len() - 1);
                }
                v.extend_from_slice(&data.vector(s, offset));
                if let Some(ends) = &mut self.ends[s] {
                    ends.push(v.len());
                }
            }
            for (s, v) in self.sparse.iter_mut().enumerate() {
                v.push(data.sparse(s, offset).clone());
            }
            self.sources.push(Loc {
                segment: id,
                offset,
            });
        }
    }
}
