//! Nearest-neighbour search over one snapshot: HNSW on indexed segments, exact scan on the rest,
//! merged into one ranking. Runs on a blocking thread; takes no lock.

use std::cmp::Ordering;

use super::quantization::QuantizationSearchParams;
use super::segment::{IndexedSegment, SegmentData};
use super::snapshot::{SegmentView, Snapshot};
use crate::filter::Filter;
use crate::index::{Metric, TopK};

/// A search over one vector space of one snapshot.
pub struct SearchParams<'a> {
    pub space: usize,
    /// The query, already validated (and normalised for cosine).
    pub vector: &'a [f32],
    /// How many results to return after skipping `offset`.
    pub limit: usize,
    pub offset: usize,
    pub filter: Option<&'a Filter>,
    pub tuning: Tuning,
    /// The space's index metric.
    pub metric: Metric,
}

/// How a search trades accuracy for speed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tuning {
    /// Beam width on HNSW segments; default is the space's `ef_construct`.
    pub ef: Option<usize>,
    /// Scan everything exactly, ignoring HNSW.
    pub exact: bool,
    /// Whether and how int8 codes are used on quantized segments.
    pub quantization: QuantizationSearchParams,
}

/// One result: where the point is and its index distance (lower is closer).
#[derive(Clone, Copy, Debug)]
pub struct Hit {
    pub segment: usize,
    pub offset: u32,
    pub distance: f32,
}

impl PartialEq for Hit {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Hit {}
impl PartialOrd for Hit {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Hit {
    fn cmp(&self, other: &Self) -> Ordering {
        self.distance
            .total_cmp(&other.distance)
            .then(self.segment.cmp(&other.segment))
            .then(self.offset.cmp(&other.offset))
    }
}

/// A filter selecting fewer than this fraction of a segment is answered by exact scan of the
/// matching points: graph search would visit mostly rejected nodes and lose recall.
const SELECTIVE_FILTER: f64 = 0.05;
/// Cap on the beam an `oversampling` factor can ask for.
const MAX_OVERSAMPLED_EF: usize = 100_000;
/// Points sampled to estimate a filter's selectivity.
const SAMPLE: usize = 512;

/// Runs a search; hits are ordered best first, `offset` already skipped.
pub fn search(snapshot: &Snapshot, params: &SearchParams) -> Vec<Hit> {
    let k = params.limit.saturating_add(params.offset);
    if k == 0 {
        return Vec::new();
    }
    let space = &snapshot.spaces[params.space];
    // A collection this small is searched exactly, as Qdrant searches one below its indexing
    // threshold (client test suites compare such results with exact ones).
    let small = snapshot.points_count() < snapshot.config.full_scan_threshold_points(space);
    let ef = params.tuning.ef.unwrap_or(space.hnsw.ef_construct).max(k);
    let mut all = Vec::new();
    for (i, seg) in snapshot.segments.iter().enumerate() {
        let accept =
            |o: u32| seg.is_live(o) && params.filter.is_none_or(|f| f.matches(&seg.point(o)));
        let use_graph = !params.tuning.exact
            && !small
            && params
                .filter
                .is_none_or(|f| selectivity(seg, f) >= SELECTIVE_FILTER);
        let found = match use_graph.then(|| approximate(seg, params, k, ef, &accept)) {
            // The graph can miss live points: tombstones all around the query, or a part of
            // the graph its entry point does not reach. Fewer hits than the segment could
            // give means that happened, so the segment is scanned exactly instead: a search
            // never returns fewer than `limit` points when that many exist and match.
            Some(Some(hits)) if hits.len() >= k.min(seg.live()) => hits,
            _ => exact(seg, params, k, &accept),
        };
        all.extend(found.into_iter().map(|(offset, distance)| Hit {
            segment: i,
            offset,
            distance,
        }));
    }
    all.sort_unstable();
    all.into_iter()
        .skip(params.offset)
        .take(params.limit)
        .collect()
}

/// HNSW search of one segment, `None` if it has no graph for the space.
fn approximate(
    seg: &SegmentView,
    params: &SearchParams,
    k: usize,
    ef: usize,
    accept: &dyn Fn(u32) -> bool,
) -> Option<Vec<(u32, f32)>> {
    match &*seg.data {
        SegmentData::Indexed(data) => {
            let graph = data.graphs.get(params.space)?;
            Some(graph_search(data, graph, params, k, ef, accept))
        }
        SegmentData::Plain(plain) => plain.search_live(params.space, params.vector, k, ef, accept),
    }
}

/// HNSW search of one indexed segment: over int8 codes when the space is quantized (unless the
/// request says `ignore`), rescoring the kept candidates with the floats unless `rescore: false`.
fn graph_search(
    data: &IndexedSegment,
    graph: &crate::index::Graph,
    params: &SearchParams,
    k: usize,
    ef: usize,
    accept: &dyn Fn(u32) -> bool,
) -> Vec<(u32, f32)> {
    let (space, dim) = (params.space, data.dims[params.space]);
    let vectors = &data.vectors[space];
    let q = params.tuning.quantization;
    match data.quantized(space).filter(|_| !q.ignore) {
        Some(codes) => {
            let originals = q.rescore.unwrap_or(true).then_some(vectors.as_slice());
            // Oversampling widens the beam so at least limit × oversampling are rescored.
            let wide = (k as f64 * q.oversampling.unwrap_or(1.0)).ceil() as usize;
            let ef = ef.max(wide.min(MAX_OVERSAMPLED_EF));
            graph.search_quantized(
                codes,
                originals,
                dim,
                params.metric,
                params.vector,
                k,
                ef,
                accept,
            )
        }
        None => graph.search(vectors, dim, params.metric, params.vector, k, ef, accept),
    }
}

/// Exact top-k over one segment.
fn exact(
    seg: &SegmentView,
    params: &SearchParams,
    k: usize,
    accept: &dyn Fn(u32) -> bool,
) -> Vec<(u32, f32)> {
    let mut top = TopK::new(k);
    let mut consider = |offset: u32, v: &[f32]| {
        if accept(offset) {
            top.push(offset, params.metric.distance(params.vector, v));
        }
    };
    match &*seg.data {
        SegmentData::Plain(plain) => plain.for_each_vector(params.space, consider),
        SegmentData::Indexed(data) => {
            let dim = data.dims[params.space];
            for (o, v) in data.vectors[params.space].chunks_exact(dim).enumerate() {
                consider(o as u32, v);
            }
        }
    }
    top.into_sorted_vec()
}

/// Fraction of a segment's live points a filter accepts, estimated on an even sample.
fn selectivity(seg: &SegmentView, filter: &Filter) -> f64 {
    let len = seg.data.len();
    if len == 0 {
        return 1.0;
    }
    let step = (len / SAMPLE).max(1);
    let (mut seen, mut hit) = (0usize, 0usize);
    for o in (0..len).step_by(step).map(|o| o as u32) {
        if seg.is_live(o) {
            seen += 1;
            hit += usize::from(filter.matches(&seg.point(o)));
        }
    }
    if seen == 0 {
        1.0
    } else {
        hit as f64 / seen as f64
    }
}
