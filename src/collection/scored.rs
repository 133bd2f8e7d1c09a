//! Search by a score the caller computes from a point's vector (higher is better), for queries
//! that compare each point with several vectors: recommendation by best score or sum of
//! scores, discovery, context, relevance feedback. Sealed segments are walked through their
//! HNSW graph with that score as the distance, as Qdrant does; append segments, small
//! collections and exact searches are scanned.

use super::indexed::{Measure, SpaceScorer};
use super::segment::SegmentData;
use super::snapshot::{SegmentView, Snapshot};
use crate::filter::Filter;
use crate::index::hnsw::Accept;
use crate::index::TopK;

/// A scored search over one vector space of a snapshot.
pub struct ScoredSearch<'a> {
    pub space: usize,
    /// The score of a point with vector `row`; higher is better.
    pub score: &'a dyn Fn(&[f32]) -> f32,
    pub filter: Option<&'a Filter>,
    /// How many of the best to find.
    pub k: usize,
    /// Beam width on graphs.
    pub ef: usize,
    /// Scan every segment exactly.
    pub exact: bool,
}

/// The best `k` matching points, best first, as (segment index, offset, score).
pub fn search_scored(snapshot: &Snapshot, s: &ScoredSearch) -> Vec<(usize, u32, f32)> {
    let space = &snapshot.spaces[s.space];
    // As for nearest search: a collection this small is searched exactly.
    let small = snapshot.points_count() < snapshot.config.full_scan_threshold_points(space);
    let mut best: Vec<(usize, u32, f32)> = Vec::new();
    for (i, seg) in snapshot.segments.iter().enumerate() {
        let seg = &*seg.for_space(s.space);
        if seg.live() == 0 {
            continue;
        }
        let walked = if s.exact || small { None } else { walk(seg, s) };
        let found = walked.unwrap_or_else(|| scan(seg, s));
        best.extend(found.into_iter().map(|(o, score)| (i, o, score)));
    }
    let id = |&(seg, o, _): &(usize, u32, f32)| snapshot.segments[seg].data.id(o);
    best.sort_by(|a, b| b.2.total_cmp(&a.2).then_with(|| id(a).cmp(&id(b))));
    best.truncate(s.k);
    best
}

fn accepts(seg: &SegmentView, filter: Option<&Filter>, o: u32) -> bool {
    seg.is_live(o) && filter.is_none_or(|f| f.matches(&seg.point(o)))
}

/// The graph walk of a sealed segment; `None` when it has no graph for the space, or when the
/// walk found fewer points than could match (tombstones or a filter cut it off), so that the
/// segment is scanned instead and never returns fewer than it holds.
fn walk(seg: &SegmentView, s: &ScoredSearch) -> Option<Vec<(u32, f32)>> {
    let SegmentData::Indexed(data) = &*seg.data else {
        return None;
    };
    let graph = data.graphs.get(s.space)?;
    let accept = |o: u32| accepts(seg, s.filter, o);
    let distance = |row: &[f32]| -(s.score)(row);
    let scorer = SpaceScorer {
        segment: data,
        space: s.space,
        picked: None,
        measure: Measure::Fn(&distance),
    };
    let found = graph.search_scored(&scorer, s.k, s.ef.max(s.k), Accept::Check(&accept));
    let enough = match s.filter {
        None => s.k.min(seg.live()),
        Some(_) => s.k,
    };
    (found.len() >= enough).then(|| found.into_iter().map(|(o, d)| (o, -d)).collect())
}

/// Every matching point of a segment scored; the best `k`.
fn scan(seg: &SegmentView, s: &ScoredSearch) -> Vec<(u32, f32)> {
    // TopK keeps the lowest: scores are negated.
    let mut top = TopK::new(s.k);
    for o in 0..seg.data.len() as u32 {
        if accepts(seg, s.filter, o) {
            top.push(o, -(s.score)(&seg.data.vector(s.space, o)));
        }
    }
    top.into_sorted_vec()
        .into_iter()
        .map(|(o, d)| (o, -d))
        .collect()
}
