//! Search by a sparse vector over one snapshot: the exact top-k by dot product over shared
//! dimensions. Sealed segments answer from their inverted index (MaxScore pruning); the
//! append segment, small by design, is scanned. With the IDF modifier the query's values are
//! first weighted by each dimension's inverse document frequency ([`IdfStats`]), counted over
//! the live points that have the sparse vector: here for one snapshot, summed over the shards
//! of a cluster collection by the collection layer.

use super::search::Hit;
use super::segment::SegmentData;
use super::snapshot::{SegmentView, Snapshot};
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::filter::Filter;
use crate::index::sparse::{idf, SparseVector};
use crate::index::TopK;

/// What IDF weights come from: how many live points have the sparse vector (`n`) and, for
/// each dimension a query needs, how many of them have that dimension (`df`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IdfStats {
    pub n: usize,
    pub df: BTreeMap<u32, usize>,
}

impl IdfStats {
    /// Adds another part of the collection's counts (a shard's).
    pub fn add(&mut self, other: &IdfStats) {
        self.n += other.n;
        for (dim, df) in &other.df {
            *self.df.entry(*dim).or_default() += df;
        }
    }

    /// `query` with each value multiplied by its dimension's IDF (a dimension not counted
    /// has df 0).
    pub fn weigh(&self, query: &SparseVector) -> SparseVector {
        query.weighted(|dim| idf(self.df.get(&dim).copied().unwrap_or(0), self.n))
    }
}

/// A search of one sparse space.
pub struct SparseSearch<'a> {
    pub space: usize,
    /// The query, IDF-weighted already where the space asks for it.
    pub query: &'a SparseVector,
    pub limit: usize,
    pub offset: usize,
    pub filter: Option<&'a Filter>,
}

/// The hits, best first, `offset` skipped; `distance` is the negated score.
pub fn search_sparse(snapshot: &Snapshot, s: &SparseSearch) -> Vec<Hit> {
    let k = s.limit.saturating_add(s.offset);
    if k == 0 || s.query.is_empty() {
        return Vec::new();
    }
    let query = s.query;
    let mut all: Vec<Hit> = Vec::new();
    for (i, seg) in snapshot.segments.iter().enumerate() {
        if seg.live() == 0 {
            continue;
        }
        let accept = |o: u32| seg.is_live(o) && s.filter.is_none_or(|f| f.matches(&seg.point(o)));
        let found = match &*seg.data {
            SegmentData::Indexed(data) => match data.inverted.get(s.space) {
                Some(index) => index.search(query, k, &accept),
                None => Vec::new(),
            },
            SegmentData::Plain(_) => scan(seg, s.space, query, k, &accept),
        };
        all.extend(found.into_iter().map(|(offset, score)| Hit {
            segment: i,
            offset,
            distance: -score,
        }));
    }
    all.sort_unstable();
    all.into_iter().skip(s.offset).take(s.limit).collect()
}

/// The best `k` points `accept` takes, each scored against the query.
fn scan(
    seg: &SegmentView,
    space: usize,
    query: &SparseVector,
    k: usize,
    accept: &dyn Fn(u32) -> bool,
) -> Vec<(u32, f32)> {
    let mut top = TopK::new(k);
    for o in (0..seg.data.len() as u32).filter(|&o| accept(o)) {
        if let Some(score) = seg.data.sparse(space, o).dot(query) {
            top.push(o, -score);
        }
    }
    let found = top.into_sorted_vec().into_iter();
    found.map(|(o, d)| (o, -d)).collect()
}

/// The IDF counts of `dims` over the live points that have the sparse vector of space `space`
/// and match `corpus` (Qdrant's `params.idf.corpus`): a scan of the matching points.
pub fn corpus_idf_stats(
    snapshot: &Snapshot,
    space: usize,
    dims: &[u32],
    corpus: &Filter,
) -> IdfStats {
    let mut stats = IdfStats {
        n: 0,
        df: dims.iter().map(|&d| (d, 0)).collect(),
    };
    let bound = snapshot.bind(Some(corpus.clone()));
    for (_, point) in snapshot.scan(None, bound.as_ref()) {
        let Some(v) = point.sparse(space) else {
            continue;
        };
        stats.n += 1;
        for (dim, df) in stats.df.iter_mut() {
            *df += usize::from(v.indices().binary_search(dim).is_ok());
        }
    }
    stats
}

/// The IDF counts of the dimensions `dims` of sparse space `space` in one snapshot.
pub fn idf_stats(snapshot: &Snapshot, space: usize, dims: &[u32]) -> IdfStats {
    let mut n = 0;
    let mut df = vec![0usize; dims.len()];
    for seg in &snapshot.segments {
        let live = |o: u32| seg.is_live(o);
        match &*seg.data {
            SegmentData::Indexed(data) => {
                let Some(index) = data.inverted.get(space) else {
                    continue;
                };
                let whole = seg.deleted.count() == 0;
                let has = |o: u32| !seg.data.sparse(space, o).is_empty();
                n += index.points() - seg.deleted.iter().filter(|&o| has(o)).count();
                for (d, &dim) in df.iter_mut().zip(dims) {
                    // Without deletions a posting list's length is the live count.
                    *d += match whole {
                        true => index.posting_len(dim),
                        false => index.df(dim, &live),
                    };
                }
            }
            SegmentData::Plain(_) => {
                for o in (0..seg.data.len() as u32).filter(|&o| live(o)) {
                    let v = seg.data.sparse(space, o);
                    n += usize::from(!v.is_empty());
                    for (d, dim) in df.iter_mut().zip(dims) {
                        *d += usize::from(v.indices().binary_search(dim).is_ok());
                    }
                }
            }
        }
    }
    IdfStats {
        n,
        df: dims.iter().copied().zip(df).collect(),
    }
}
