//! Index builds: fold frozen append segments (and indexed segments) into one HNSW segment.
//!
//! A build runs on its own thread with rayon inside, reading only immutable inputs, so searches
//! and writes go on meanwhile. The largest indexed segment is extended in place of a rebuild when
//! few of its points are deleted; otherwise everything live is rebuilt (vacuum). The result goes
//! to disk first, then back to the writer, which decides per point whether it is still current.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::VectorSpace;
use super::segment::{IndexedSegment, SegmentData, SEGMENT_FORMAT};
use super::snapshot::Loc;
use super::state::{Sealed, WriterState};
use crate::index::hnsw::{Graph, HnswParams};
use crate::storage::codec::Payload;
use crate::storage::files;

/// Everything a build needs, captured from the writer's state when it starts.
pub struct BuildJob {
    id: u64,
    kind: BuildKind,
    spaces: Arc<[VectorSpace]>,
    dims: Arc<[usize]>,
    /// Segment to extend (keeps all its offsets), if one is worth keeping.
    base: Option<(u64, Sealed)>,
    /// Segments whose live points are appended.
    others: Vec<(u64, Sealed)>,
    threads: usize,
    dir: PathBuf,
}

/// The two kinds of build, which run side by side on disjoint segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildKind {
    /// Indexes frozen append segments (into the largest healthy indexed segment, or a new
    /// one): takes time in proportion to the fresh points, so writes may wait for it.
    Fresh,
    /// Vacuums and merges indexed segments: takes time in proportion to the collection, so
    /// it must never hold up fresh indexing.
    Merge,
}

/// A finished build, for the writer to install.
pub struct Built {
    pub id: u64,
    pub data: Arc<SegmentData>,
    /// Where each offset's point came from.
    pub sources: Vec<Loc>,
    /// Segments the new one replaces.
    pub replaces: Vec<u64>,
    pub took: Duration,
}

impl BuildJob {
    /// Decides whether a build of `kind` is due and captures its inputs, leaving out segments
    /// another running build reads (`state.busy`), and marks its own inputs busy.
    pub fn plan(state: &mut WriterState, kind: BuildKind, dir: PathBuf) -> Option<BuildJob> {
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
        };
        if !due {
            return None;
        }
        let base = indexed
            .iter()
            .filter(|(_, s)| !needs_vacuum(s))
            .max_by_key(|(_, s)| s.data.len())
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
            base: base_entry,
            others,
            threads: config.hnsw_config.max_indexing_threads,
            dir,
        })
    }

    /// The segments this build reads (and replaces when it is installed).
    pub fn inputs(&self) -> Vec<u64> {
        let base = self.base.iter().map(|(id, _)| *id);
        base.chain(self.others.iter().map(|(id, _)| *id)).collect()
    }
}

/// Nice value of index-build threads. Builds are throughput work that can wait; searches and
/// write acknowledgements are latency work. At nice 10 the scheduler gives a build about a tenth
/// of the CPU share of a search thread competing for the same core, so a sustained ingest does
/// not stretch search latency, and an idle machine still gives builds every core.
const BUILD_NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority to [`BUILD_NICE`] (Linux: nice is per thread).
fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain system calls on the calling thread's own id; failure leaves the
        // priority unchanged, which is harmless.
        let rc = unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, BUILD_NICE)
        };
        if rc != 0 {
            tracing::debug!("could not lower the priority of an index-build thread");
        }
    }
}

/// Runs a build to completion, including the durable segment file.
pub fn run(job: BuildJob, collection: &str) -> Result<Built, String> {
    let start = Instant::now();
    metrics::gauge!("vecdb_index_builds_running").increment(1.0);
    lower_thread_priority();
    // A pool of its own (all cores unless `max_indexing_threads` says otherwise) whose threads
    // run at background priority too.
    let result = rayon::ThreadPoolBuilder::new()
        .num_threads(job.threads)
        .thread_name(|i| format!("index-build-{i}"))
        .start_handler(|_| lower_thread_priority())
        .build()
        .map_err(|e| e.to_string())
        .and_then(|pool| pool.install(|| build(&job)));
    metrics::gauge!("vecdb_index_builds_running").decrement(1.0);
    let (segment, sources) = result?;
    std::fs::create_dir_all(&job.dir).map_err(|e| format!("{}: {e}", job.dir.display()))?;
    let path = job.dir.join(format!("{}.seg", job.id));
    files::write_atomic(&path, SEGMENT_FORMAT, &segment.encode())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let took = start.elapsed();
    metrics::histogram!("vecdb_index_build_seconds", "collection" => collection.to_string())
        .record(took.as_secs_f64());
    metrics::counter!("vecdb_index_builds_total", "collection" => collection.to_string())
        .increment(1);
    tracing::info!(
        collection,
        kind = ?job.kind,
        points = segment.ids.len(),
        secs = took.as_secs_f64(),
        "index build finished"
    );
    let mut replaces: Vec<u64> = job.others.iter().map(|(id, _)| *id).collect();
    replaces.extend(job.base.as_ref().map(|(id, _)| *id));
    Ok(Built {
        id: job.id,
        data: Arc::new(SegmentData::Indexed(segment)),
        sources,
        replaces,
        took,
    })
}

/// Gathers the points (base first, all its offsets; then the others' live points) and the graphs.
fn build(job: &BuildJob) -> Result<(IndexedSegment, Vec<Loc>), String> {
    let spaces = job.dims.len();
    let mut ids = Vec::new();
    let mut versions = Vec::new();
    let mut payloads: Vec<Payload> = Vec::new();
    let mut vectors: Vec<Vec<f32>> = vec![Vec::new(); spaces];
    let mut sources = Vec::new();
    let base = match &job.base {
        Some((id, sealed)) => match &*sealed.data {
            SegmentData::Indexed(seg) => {
                ids.extend_from_slice(&seg.ids);
                versions.extend_from_slice(&seg.versions);
                payloads.extend(seg.payloads.iter().cloned());
                for (s, v) in vectors.iter_mut().enumerate() {
                    v.extend_from_slice(&seg.vectors[s]);
                }
                sources.extend((0..seg.ids.len() as u32).map(|offset| Loc {
                    segment: *id,
                    offset,
                }));
                Some(seg)
            }
            SegmentData::Plain(_) => None,
        },
        None => None,
    };
    for (id, sealed) in &job.others {
        let data = &sealed.data;
        for offset in (0..data.len() as u32).filter(|o| !sealed.deleted.get(*o as usize)) {
            ids.push(data.id(offset));
            versions.push(data.version(offset));
            payloads.push(data.payload(offset).clone());
            for (s, v) in vectors.iter_mut().enumerate() {
                v.extend_from_slice(data.vector(s, offset));
            }
            sources.push(Loc {
                segment: *id,
                offset,
            });
        }
    }
    let graphs = (0..spaces)
        .map(|s| {
            let space = &job.spaces[s];
            let params = HnswParams {
                m: space.hnsw.m,
                ef_construct: space.hnsw.ef_construct,
                seed: job.id ^ (s as u64) << 32,
            };
            let metric = space.distance.metric();
            match base {
                // A graph built with another `m` (changed by PATCH) cannot be extended in place.
                Some(seg) if seg.graphs[s].m() == params.m => {
                    seg.graphs[s].extend(&vectors[s], space.size, metric, params)
                }
                _ => Graph::build(&vectors[s], space.size, metric, params),
            }
        })
        .collect();
    let mut segment = IndexedSegment {
        ids,
        versions,
        payloads,
        vectors,
        dims: job.dims.clone(),
        graphs,
        quantized: Vec::new(),
    };
    segment.quantize(&job.spaces);
    Ok((segment, sources))
}
