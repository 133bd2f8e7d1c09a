//! Layer search shared by construction and queries: greedy descent, beam search, and the
//! thread-local scratch (visited stamps and heaps) that keeps queries allocation-free.

use std::cell::RefCell;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::rows::Rows;
use crate::index::distance::Kernel;
use crate::index::flat::{cmp_distance, Scored};
use crate::index::quant::{QuantQuery, Quantized};

/// Read access to neighbour lists, implemented by the frozen graph and by the builder.
pub(crate) trait Links {
    /// Number of nodes (every neighbour id is below this).
    fn node_count(&self) -> usize;

    /// Calls `f` on each neighbour of `node` on `level` (none if it is not on that layer).
    fn for_each_neighbor(&self, node: u32, level: usize, f: impl FnMut(u32));

    /// Hints that `node`'s layer-0 list will be read soon.
    fn prefetch_links(&self, _node: u32) {}
}

/// Starts pulling the cache line at `p` into L1; `p` may be any address.
#[inline(always)]
pub(crate) fn prefetch_addr<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: prefetch never faults, even on an address outside any allocation.
        unsafe { _mm_prefetch(p as *const i8, _MM_HINT_T0) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Cache lines of each fresh neighbour prefetched while the list is scanned (like hnswlib).
const FIRST_LINES: usize = 1;
/// How many neighbours ahead the whole vector is prefetched while distances are computed.
const AHEAD: usize = 2;
/// Cap on "the whole vector" (2 KiB) so huge dimensions do not flood the load queue.
const FULL_LINES: usize = 32;

/// What a layer search compares candidates with: a distance from the query to a node, and a
/// hint to start loading a node's vector.
pub(crate) trait Scorer {
    /// Distance from the query to node `id` (lower is closer).
    fn dist(&self, id: u32) -> f32;
    /// Starts pulling up to `max_lines` cache lines of node `id`'s vector into cache.
    fn prefetch(&self, id: u32, max_lines: usize);
}

/// A vector to search for, compared against rows with a distance kernel.
pub(crate) struct RowQuery<'a, R> {
    pub rows: &'a R,
    pub kernel: Kernel,
    pub vector: &'a [f32],
}

impl<R: Rows> Scorer for RowQuery<'_, R> {
    #[inline]
    fn dist(&self, id: u32) -> f32 {
        self.rows
            .distance(self.kernel, self.vector, self.rows.row(id))
    }

    #[inline(always)]
    fn prefetch(&self, id: u32, max_lines: usize) {
        self.rows.prefetch(id, max_lines);
    }
}

/// Rows compared by a distance the caller computes from each row.
pub(crate) struct ByFn<'a, R> {
    pub rows: &'a R,
    pub distance: &'a dyn Fn(&[f32]) -> f32,
}

impl<R: Rows> Scorer for ByFn<'_, R> {
    #[inline]
    fn dist(&self, id: u32) -> f32 {
        (self.distance)(self.rows.row(id))
    }

    #[inline(always)]
    fn prefetch(&self, id: u32, max_lines: usize) {
        self.rows.prefetch(id, max_lines);
    }
}

/// A query encoded for int8 codes, compared against quantized rows.
pub(crate) struct QuantScorer<'a> {
    pub rows: &'a Quantized,
    pub query: QuantQuery,
}

impl Scorer for QuantScorer<'_> {
    #[inline]
    fn dist(&self, id: u32) -> f32 {
        self.rows.distance(&self.query, id)
    }

    #[inline(always)]
    fn prefetch(&self, id: u32, max_lines: usize) {
        self.rows.prefetch(id, max_lines);
    }
}

/// Generation-stamped visited set: clearing is a counter bump, not a memset.
#[derive(Default)]
pub(crate) struct Visited {
    marks: Vec<u16>,
    generation: u16,
}

impl Visited {
    /// Forgets every mark and makes room for ids below `n`.
    fn reset(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // Wrapped: old stamps could now collide, so clear them for real.
            self.marks.fill(0);
            self.generation = 1;
        }
    }

    /// Whether `id` is marked.
    #[inline(always)]
    fn contains(&self, id: u32) -> bool {
        self.marks
            .get(id as usize)
            .is_none_or(|m| *m == self.generation)
    }

    /// Marks `id`; true if it was not marked yet.
    #[inline(always)]
    fn insert(&mut self, id: u32) -> bool {
        match self.marks.get_mut(id as usize) {
            Some(m) if *m != self.generation => {
                *m = self.generation;
                true
            }
            // Out-of-range ids cannot occur in a validated graph; treat them as seen.
            _ => false,
        }
    }
}

/// Per-thread reusable buffers for one layer search.
#[derive(Default)]
pub(crate) struct Scratch {
    visited: Visited,
    candidates: BinaryHeap<Reverse<Scored>>,
    /// Best accepted nodes so far, worst on top; holds at most `ef`.
    pub results: BinaryHeap<Scored>,
    fresh: Vec<u32>,
    /// Rejected neighbours whose own neighbours a sparse search looks at.
    hops: Vec<u32>,
    /// Rejected neighbours a routed search estimates.
    rejected: Vec<u32>,
}

/// Which nodes a query may return, and how it gets past the others.
#[derive(Clone, Copy)]
pub enum Accept<'a> {
    /// Every node.
    All,
    /// Nodes the check accepts. Rejected nodes are still walked through (they keep the graph
    /// connected), which suits checks that accept most nodes or cost a payload read.
    Check(&'a dyn Fn(u32) -> bool),
    /// Nodes a cheap check (a bitset lookup) accepts, when it rejects many: only accepted
    /// nodes are scored, and a rejected neighbour is looked through to its own neighbours
    /// (ACORN-1's two-hop expansion), so the accepted subgraph stays connected without
    /// paying a distance for every rejected node on the way.
    Sparse(&'a dyn Fn(u32) -> bool),
    /// Nodes the check accepts, walking through rejected nodes as `Check` does but scoring
    /// them by the estimate: a rejected node's distance only decides whether the walk goes
    /// through it, so an estimate from one cache line of code serves where the exact distance
    /// would read the whole vector (24 lines at 384 dimensions). Accepted nodes, which can be
    /// results, are scored exactly. Every neighbour met is checked, so the check must be cheap.
    Routed(&'a dyn Fn(u32) -> bool, &'a dyn Estimate),
}

/// A cheap stand-in for the query's distance to a node, on the scale of the exact one.
pub trait Estimate {
    /// The estimated distance to node `id`.
    fn estimate(&self, id: u32) -> f32;
    /// Starts loading what [`Estimate::estimate`] reads for node `id`.
    fn prefetch(&self, id: u32);
}

impl<'a> Accept<'a> {
    /// Whether `id` may be returned.
    #[inline]
    pub fn test(&self, id: u32) -> bool {
        match self {
            Accept::All => true,
            Accept::Check(f) | Accept::Sparse(f) | Accept::Routed(f, _) => f(id),
        }
    }

    /// The same nodes, with rejected ones scored exactly rather than estimated.
    pub fn exact(self) -> Accept<'a> {
        match self {
            Accept::Routed(f, _) => Accept::Check(f),
            other => other,
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` with this thread's scratch (or a fresh one if `f` re-enters, e.g. from `accept`).
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => f(&mut scratch),
        Err(_) => f(&mut Scratch::default()),
    })
}

/// Greedy walk on one layer: move to the closest neighbour until none is closer.
pub(crate) fn greedy<L: Links, S: Scorer>(
    links: &L,
    q: &S,
    mut cur: Scored,
    level: usize,
) -> Scored {
    loop {
        let mut best = cur;
        links.for_each_neighbor(cur.offset, level, |nb| {
            let d = q.dist(nb);
            // Strictly closer only, so equal distances cannot make it cycle.
            if d < best.distance {
                best = Scored {
                    distance: d,
                    offset: nb,
                };
            }
        });
        if best.offset == cur.offset {
            return cur;
        }
        cur = best;
    }
}

/// Knobs of one beam search.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Beam {
    /// Layer to search.
    pub level: usize,
    /// Beam width: how many accepted results bound the search.
    pub ef: usize,
    /// Results the caller needs; while fewer are accepted the search keeps widening.
    pub k: usize,
    /// Distance evaluations after which the search stops as soon as it holds k results.
    pub soft_budget: usize,
    /// Distance evaluations after which the search stops regardless.
    pub hard_budget: usize,
}

impl Beam {
    /// Unbudgeted search as used while building (everything is accepted there).
    pub fn build(level: usize, ef: usize) -> Beam {
        Beam {
            level,
            ef,
            k: ef,
            soft_budget: usize::MAX,
            hard_budget: usize::MAX,
        }
    }

    /// Query-time search; budgets scale with the beam so an unfiltered search never hits them.
    pub fn query(ef: usize, k: usize, m0: usize) -> Beam {
        let soft = ef.saturating_mul(m0).saturating_mul(8).max(10_000);
        Beam {
            level: 0,
            ef,
            k,
            soft_budget: soft,
            hard_budget: soft.saturating_mul(8),
        }
    }
}

/// Whether a candidate at `distance` can still improve a result set whose worst is `worst`.
#[inline(always)]
fn improves(distance: f32, worst: Option<&Scored>) -> bool {
    worst.is_none_or(|w| cmp_distance(distance, w.distance) == Ordering::Less)
}

/// Best-first beam search on one layer from `entry`; leaves up to `ef` accepted nodes in
/// `s.results`. Rejected nodes are still expanded so the graph stays connected for them.
pub(crate) fn beam_search<L: Links, S: Scorer>(
    links: &L,
    s: &mut Scratch,
    q: &S,
    accept: impl Fn(u32) -> bool,
    entry: Scored,
    beam: Beam,
) {
    let level = beam.level;
    beam_search_with(links, s, q, &accept, None, entry, beam, |s, c| {
        links.for_each_neighbor(c, level, |nb| {
            if s.visited.insert(nb) {
                q.prefetch(nb, FIRST_LINES);
                s.fresh.push(nb);
            }
        });
    });
}

/// Beam search of layer 0 that scores accepted nodes only (see [`Accept::Sparse`]): each
/// expansion takes the unvisited accepted neighbours, then those two hops away through
/// rejected neighbours, up to `m0` in all.
pub(crate) fn beam_search_sparse<L: Links, S: Scorer>(
    links: &L,
    s: &mut Scratch,
    q: &S,
    accept: &dyn Fn(u32) -> bool,
    entry: Scored,
    beam: Beam,
    m0: usize,
) {
    beam_search_with(links, s, q, accept, None, entry, beam, |s, c| {
        s.hops.clear();
        // Rejected neighbours are marked only once looked through: one left for lack of room
        // here can still be looked through from another node.
        links.for_each_neighbor(c, 0, |nb| {
            if accept(nb) {
                if s.visited.insert(nb) {
                    s.fresh.push(nb);
                }
            } else if !s.visited.contains(nb) {
                s.hops.push(nb);
            }
        });
        // The hops' lists are cache misses: start loading them all before reading any.
        for &hop in &s.hops {
            links.prefetch_links(hop);
        }
        for &hop in &s.hops {
            if s.fresh.len() >= m0 {
                break;
            }
            if !s.visited.insert(hop) {
                continue;
            }
            links.for_each_neighbor(hop, 0, |nb| {
                // Rejected nodes met here stay unmarked: they may still be looked through.
                if s.fresh.len() < m0 && accept(nb) && s.visited.insert(nb) {
                    s.fresh.push(nb);
                }
            });
        }
    });
}

/// Beam search of layer 0 that estimates rejected nodes (see [`Accept::Routed`]).
pub(crate) fn beam_search_routed<L: Links, S: Scorer>(
    links: &L,
    s: &mut Scratch,
    q: &S,
    accept: &dyn Fn(u32) -> bool,
    estimate: &dyn Estimate,
    entry: Scored,
    beam: Beam,
) {
    beam_search_with(links, s, q, accept, Some(estimate), entry, beam, |s, c| {
        links.for_each_neighbor(c, 0, |nb| {
            if !s.visited.insert(nb) {
                return;
            }
            if accept(nb) {
                q.prefetch(nb, FIRST_LINES);
                s.fresh.push(nb);
            } else {
                estimate.prefetch(nb);
                s.rejected.push(nb);
            }
        });
    });
}

/// The beam search every walk shares: `gather(s, node)` puts the nodes an expansion of `node`
/// scores into `s.fresh` (marking them visited) and, for a routed walk, the rejected ones to
/// estimate into `s.rejected`; each is scored, kept as a candidate if it can improve the
/// results, and added to them if accepted.
#[allow(clippy::too_many_arguments)] // The walk's parts: graph, scratch, scoring, knobs.
fn beam_search_with<L: Links, S: Scorer>(
    links: &L,
    s: &mut Scratch,
    q: &S,
    accept: &dyn Fn(u32) -> bool,
    estimate: Option<&dyn Estimate>,
    entry: Scored,
    beam: Beam,
    mut gather: impl FnMut(&mut Scratch, u32),
) {
    s.visited.reset(links.node_count());
    s.candidates.clear();
    s.results.clear();
    s.visited.insert(entry.offset);
    s.candidates.push(Reverse(entry));
    if accept(entry.offset) {
        s.results.push(entry);
    }
    let mut work = 0usize;
    while let Some(Reverse(c)) = s.candidates.pop() {
        let full = s.results.len() >= beam.ef;
        if full && !improves(c.distance, s.results.peek()) {
            break; // Nothing left in the frontier can enter the results.
        }
        if (work > beam.soft_budget && s.results.len() >= beam.k) || work > beam.hard_budget {
            break;
        }
        if let Some(Reverse(next)) = s.candidates.peek() {
            links.prefetch_links(next.offset);
        }
        s.fresh.clear();
        s.rejected.clear();
        gather(s, c.offset);
        work += s.fresh.len() + s.rejected.len();
        for &nb in s.fresh.iter().take(AHEAD) {
            q.prefetch(nb, FULL_LINES);
        }
        for (i, &nb) in s.fresh.iter().enumerate() {
            if let Some(&ahead) = s.fresh.get(i + AHEAD) {
                q.prefetch(ahead, FULL_LINES);
            }
            let d = q.dist(nb);
            let worst = (s.results.len() >= beam.ef)
                .then(|| s.results.peek())
                .flatten();
            if !improves(d, worst) {
                continue;
            }
            let item = Scored {
                distance: d,
                offset: nb,
            };
            s.candidates.push(Reverse(item));
            if accept(nb) {
                s.results.push(item);
                if s.results.len() > beam.ef {
                    s.results.pop();
                }
            }
        }
        let Some(estimate) = estimate else {
            continue;
        };
        for &nb in &s.rejected {
            let d = estimate.estimate(nb);
            let worst = (s.results.len() >= beam.ef)
                .then(|| s.results.peek())
                .flatten();
            if improves(d, worst) {
                s.candidates.push(Reverse(Scored {
                    distance: d,
                    offset: nb,
                }));
            }
        }
    }
}

/// A whole query: greedy descent from `entry` (a node and its level) through the upper layers,
/// then a beam search of layer 0 with `m0` links per node; returns the best `keep` accepted
/// nodes, closest first.
#[allow(clippy::too_many_arguments)] // The knobs of one search, all used.
pub(crate) fn query<L: Links, S: Scorer>(
    links: &L,
    entry: (u32, usize),
    m0: usize,
    scorer: &S,
    k: usize,
    ef: usize,
    keep: usize,
    accept: Accept,
) -> Vec<Scored> {
    let mut cur = Scored {
        distance: scorer.dist(entry.0),
        offset: entry.0,
    };
    for level in (1..=entry.1).rev() {
        cur = greedy(links, scorer, cur, level);
    }
    let beam = Beam::query(ef.max(k), k, m0);
    with_scratch(|s| {
        match accept {
            Accept::All => beam_search(links, s, scorer, |_| true, cur, beam),
            Accept::Check(f) => beam_search(links, s, scorer, f, cur, beam),
            Accept::Sparse(f) => beam_search_sparse(links, s, scorer, f, cur, beam, m0),
            Accept::Routed(f, e) => beam_search_routed(links, s, scorer, f, e, cur, beam),
        }
        let mut found: Vec<Scored> = s.results.drain().collect();
        found.sort_unstable();
        found.truncate(keep);
        found
    })
}
