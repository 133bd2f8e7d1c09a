//! The insertable graph. A [`LiveGraph`] grows from any number of threads while searches read it
//! without locking:
//! - nodes live in pages that are allocated once and never move;
//! - every link list is a run of atomics, so a racing read can only see a slightly stale list
//!   (every slot always holds the id of some inserted node);
//! - writers serialise on a per-node mutex that readers never take. A thread holds at most one
//!   node lock at a time, so there is no deadlock.
//!
//! Index builds use one privately and [`LiveGraph::freeze`] packs it into the flat [`Graph`];
//! an append segment keeps one and grows it as its points arrive.

use std::cmp::Ordering;
use std::ops::Range;
use std::sync::atomic::{
    AtomicU32, AtomicUsize, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};
use std::sync::{Mutex, MutexGuard, OnceLock};

use rayon::prelude::*;

use super::rows::{self, Rows};
use super::search::{self, Accept, Beam, Links, RowQuery, Scorer};
use super::{Graph, HnswParams, MAX_LEVEL, MAX_M};
use crate::index::distance::{Kernel, Metric};
use crate::index::flat::{cmp_distance, Scored};

/// Nodes per page (a power of two).
const PAGE_BITS: usize = 10;
const PAGE: usize = 1 << PAGE_BITS;

/// The lists of [`PAGE`] consecutive nodes.
struct Page {
    /// Layer-0 links, `m0` slots per node.
    links0: Box<[AtomicU32]>,
    /// Used slots per node in `links0`.
    counts0: Box<[AtomicU32]>,
    /// Per node, set when it is inserted: for each upper layer a count and `m` link slots.
    upper: Box<[OnceLock<Box<[AtomicU32]>>]>,
    /// Per node: held by a writer while it edits any of the node's lists.
    locks: Box<[Mutex<()>]>,
}

impl Page {
    fn new(m0: usize) -> Page {
        let atomics = |n: usize| (0..n).map(|_| AtomicU32::new(0)).collect();
        Page {
            links0: atomics(PAGE * m0),
            counts0: atomics(PAGE),
            upper: (0..PAGE).map(|_| OnceLock::new()).collect(),
            locks: (0..PAGE).map(|_| Mutex::new(())).collect(),
        }
    }
}

/// An HNSW graph that grows by insertion and can be searched while it grows.
pub struct LiveGraph {
    kernel: Kernel,
    m: usize,
    m0: usize,
    ef: usize,
    seed: u64,
    /// Boxed so an unallocated page costs one pointer, and a big capacity stays cheap.
    pages: Box<[OnceLock<Box<Page>>]>,
    /// One past the highest node id inserted so far.
    bound: AtomicUsize,
    /// Entry point and its level; `None` until the first node is in.
    entry: Mutex<Option<(u32, usize)>>,
}

/// Locks `m`, ignoring poisoning: lists are always left consistent between statements.
/// Only contended acquisitions are reported (as lock `hnsw_build_node`), so the common path
/// stays one uncontended `try_lock`.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.try_lock() {
        Ok(guard) => guard,
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => {
            let start = std::time::Instant::now();
            let guard = m.lock().unwrap_or_else(|e| e.into_inner());
            let labels = [("lock", "hnsw_build_node")];
            metrics::counter!("vecdb_lock_contended_total", &labels).increment(1);
            metrics::histogram!("vecdb_lock_wait_seconds", &labels)
                .record(start.elapsed().as_secs_f64());
            guard
        }
    }
}

/// splitmix64 finaliser: a cheap, well-mixed hash used as a per-node RNG.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Level of `node`: floor(-ln(u) / ln(m)), drawn from (seed, node) so it is reproducible.
fn draw_level(seed: u64, node: usize, m: usize) -> usize {
    let bits = splitmix64(seed ^ splitmix64(node as u64));
    let u = ((bits >> 11) as f64 + 1.0) / (1u64 << 53) as f64; // in (0, 1], so ln is finite
    let level = (-u.ln() / (m as f64).ln()).floor();
    level.min(MAX_LEVEL as f64) as usize
}

/// Number of whole rows, capped so every offset fits in a u32.
fn row_count(vectors: &[f32], dim: usize) -> usize {
    if dim == 0 {
        return 0;
    }
    (vectors.len() / dim).min(u32::MAX as usize)
}

impl LiveGraph {
    /// An empty graph with room for `capacity` nodes (pages are allocated as nodes arrive).
    /// `params.m` is clamped to 2..=[`MAX_M`].
    pub fn new(metric: Metric, params: HnswParams, capacity: usize) -> LiveGraph {
        let m = params.m.clamp(2, MAX_M);
        let capacity = capacity.min(u32::MAX as usize);
        LiveGraph {
            kernel: metric.kernel(),
            m,
            m0: 2 * m,
            ef: params.ef_construct.max(1),
            seed: params.seed,
            pages: (0..capacity.div_ceil(PAGE))
                .map(|_| OnceLock::new())
                .collect(),
            bound: AtomicUsize::new(0),
            entry: Mutex::new(None),
        }
    }

    /// A graph starting with the nodes and lists of `base`, keeping its link capacity.
    pub fn from_graph(
        base: &Graph,
        metric: Metric,
        params: HnswParams,
        capacity: usize,
    ) -> LiveGraph {
        let params = HnswParams {
            m: base.m,
            ..params
        };
        let graph = LiveGraph::new(metric, params, capacity.max(base.len()));
        for node in 0..base.len() as u32 {
            let level = base.level(node);
            graph.init_node(node, level);
            for l in 0..=level {
                graph.update(node, l, |list| {
                    list.extend_from_slice(base.neighbors(node, l))
                });
            }
        }
        if !base.is_empty() {
            *lock(&graph.entry) = Some((base.entry, base.max_level));
        }
        graph
    }

    /// How many nodes the graph can hold.
    pub fn capacity(&self) -> usize {
        self.pages.len() * PAGE
    }

    /// The current entry point and its level, for searches of what is inserted now.
    pub fn entry(&self) -> Option<(u32, usize)> {
        *lock(&self.entry)
    }

    fn page(&self, node: u32) -> Option<&Page> {
        self.pages
            .get(node as usize >> PAGE_BITS)?
            .get()
            .map(|p| &**p)
    }

    /// Allocates `node`'s page if needed and gives it empty lists for `level` upper layers.
    fn init_node(&self, node: u32, level: usize) {
        let page =
            self.pages[node as usize >> PAGE_BITS].get_or_init(|| Box::new(Page::new(self.m0)));
        let slots = level * (self.m + 1);
        let block = (0..slots).map(|_| AtomicU32::new(0)).collect();
        let _ = page.upper[node as usize & (PAGE - 1)].set(block);
        self.bound.fetch_max(node as usize + 1, Relaxed);
    }

    /// Highest layer of `node` (0 if it is not inserted).
    fn level(&self, node: u32) -> usize {
        self.page(node)
            .and_then(|p| p.upper[node as usize & (PAGE - 1)].get())
            .map_or(0, |b| b.len() / (self.m + 1))
    }

    /// The count slot and link slots of `node` on `level`, if it has that layer.
    fn slots(&self, node: u32, level: usize) -> Option<(&AtomicU32, &[AtomicU32])> {
        let page = self.page(node)?;
        let i = node as usize & (PAGE - 1);
        if level == 0 {
            let row = &page.links0[i * self.m0..(i + 1) * self.m0];
            return Some((&page.counts0[i], row));
        }
        let block = page.upper[i].get()?;
        let start = (level - 1) * (self.m + 1);
        let block = block.get(start..start + self.m + 1)?;
        Some((&block[0], &block[1..]))
    }

    /// Calls `f` on each neighbour of `node` on `level` below `bound`.
    #[inline]
    fn neighbors_below(&self, node: u32, level: usize, bound: usize, mut f: impl FnMut(u32)) {
        let Some((count, row)) = self.slots(node, level) else {
            return;
        };
        let count = (count.load(Acquire) as usize).min(row.len());
        for slot in &row[..count] {
            let nb = slot.load(Relaxed);
            if (nb as usize) < bound {
                f(nb);
            }
        }
    }

    /// Inserts the rows in `range` of `rows` using every thread of the current pool. A shared
    /// counter (as in hnswlib) keeps the order close to ascending, unlike range splitting, which
    /// would start a second thread in the middle of the data while the graph is still empty.
    /// Rows beyond the capacity are left out.
    pub fn insert_all<R: Rows>(&self, rows: &R, range: Range<usize>) {
        let end = range.end.min(self.capacity());
        if range.start >= end {
            return;
        }
        let next = AtomicUsize::new(range.start);
        let workers = rayon::current_num_threads().clamp(1, end - range.start);
        (0..workers).into_par_iter().for_each(|_| loop {
            let i = next.fetch_add(1, Relaxed);
            if i >= end {
                break;
            }
            if rows.present(i as u32) {
                self.insert(rows, i as u32);
            }
        });
    }

    /// Inserts one node: greedy descent to its level, then beam search and linking per layer.
    fn insert<R: Rows>(&self, rows: &R, q: u32) {
        let level = draw_level(self.seed, q as usize, self.m);
        self.init_node(q, level);
        let mut guard = lock(&self.entry);
        let Some((ep, top)) = *guard else {
            *guard = Some((q, level));
            return;
        };
        // A node that raises the top level keeps the entry lock until it is linked, as in hnswlib,
        // so no one can start from it before its upper layers exist.
        let hold = if level > top {
            Some(guard)
        } else {
            drop(guard);
            None
        };
        let query = RowQuery {
            rows,
            kernel: self.kernel,
            vector: rows.row(q),
        };
        let mut cur = Scored {
            distance: query.dist(ep),
            offset: ep,
        };
        for l in (level + 1..=top).rev() {
            cur = search::greedy(self, &query, cur, l);
        }
        for l in (0..=level.min(top)).rev() {
            let found = search::with_scratch(|s| {
                search::beam_search(self, s, &query, |_| true, cur, Beam::build(l, self.ef));
                let mut found: Vec<Scored> = s.results.drain().filter(|c| c.offset != q).collect();
                found.sort_unstable();
                found
            });
            if let Some(&closest) = found.first() {
                cur = closest;
            }
            // hnswlib's choice: m links for the new node on every layer; layer 0 fills up to
            // 2m through back-links. Choosing 2m here measured no better recall per distance.
            let chosen = self.select(rows, &found, self.m);
            self.connect(rows, q, l, &chosen);
        }
        if let Some(mut guard) = hold {
            *guard = Some((q, level));
        }
    }

    /// Gives `q` the links `chosen` on `level` and adds the back-links.
    fn connect<R: Rows>(&self, rows: &R, q: u32, level: usize, chosen: &[Scored]) {
        // Another thread may already have linked to `q` here; merge rather than overwrite.
        self.update(q, level, |list| {
            self.merge(rows, q, list, chosen.iter().map(|c| c.offset), level)
        });
        for c in chosen {
            self.update(c.offset, level, |list| {
                self.merge(rows, c.offset, list, [q].into_iter(), level)
            });
        }
    }

    /// Adds `extra` to `base`'s `list` on `level`, pruning with the heuristic on overflow.
    fn merge<R: Rows>(
        &self,
        rows: &R,
        base: u32,
        list: &mut Vec<u32>,
        extra: impl Iterator<Item = u32>,
        level: usize,
    ) {
        for x in extra {
            if x != base && !list.contains(&x) {
                list.push(x);
            }
        }
        let cap = if level == 0 { self.m0 } else { self.m };
        if list.len() > cap {
            self.prune(rows, base, list, cap);
        }
    }

    /// Rewrites `node`'s list on `level` under its lock.
    fn update(&self, node: u32, level: usize, edit: impl FnOnce(&mut Vec<u32>)) {
        let (Some(page), Some((count, row))) = (self.page(node), self.slots(node, level)) else {
            return;
        };
        let _guard = lock(&page.locks[node as usize & (PAGE - 1)]);
        let used = (count.load(Relaxed) as usize).min(row.len());
        let mut list: Vec<u32> = row[..used].iter().map(|x| x.load(Relaxed)).collect();
        edit(&mut list);
        let len = list.len().min(row.len());
        for (slot, &x) in row.iter().zip(&list[..len]) {
            slot.store(x, Relaxed);
        }
        // Zero what pruning freed so the frozen layout (and its equality) is deterministic.
        for slot in row.iter().take(used).skip(len) {
            slot.store(0, Relaxed);
        }
        count.store(len as u32, Release);
    }

    /// Shrinks `list` (the links of `base`) to at most `cap` using the selection heuristic.
    fn prune<R: Rows>(&self, rows: &R, base: u32, list: &mut Vec<u32>, cap: usize) {
        let mut cands: Vec<Scored> = list
            .iter()
            .map(|&x| Scored {
                distance: rows.distance(self.kernel, rows.row(base), rows.row(x)),
                offset: x,
            })
            .collect();
        cands.sort_unstable();
        let kept = self.select(rows, &cands, cap);
        list.clear();
        list.extend(kept.iter().map(|c| c.offset));
    }

    fn select<R: Rows>(&self, rows: &R, cands: &[Scored], cap: usize) -> Vec<Scored> {
        select(self.kernel, rows, cands, cap)
    }

    /// Packs nodes `0..len` (all inserted, no insertion running) into the flat layout.
    pub fn freeze(&self, len: usize) -> Graph {
        let (m, m0) = (self.m, self.m0);
        let mut layer0 = Vec::with_capacity(len * m0);
        let mut counts0 = Vec::with_capacity(len);
        let mut levels = Vec::with_capacity(len);
        let mut upper_start = Vec::with_capacity(len + 1);
        let mut upper = Vec::new();
        for node in 0..len as u32 {
            let mut list = Vec::with_capacity(m0);
            self.neighbors_below(node, 0, len, |nb| list.push(nb));
            counts0.push(list.len() as u16);
            list.resize(m0, 0);
            layer0.extend_from_slice(&list);
            let level = self.level(node);
            levels.push(level as u8);
            upper_start.push(upper.len());
            for l in 1..=level {
                let mut list = Vec::with_capacity(m);
                self.neighbors_below(node, l, len, |nb| list.push(nb));
                upper.push(list.len() as u32);
                upper.extend_from_slice(&list);
                upper.resize(upper.len() + m - list.len(), 0);
            }
        }
        upper_start.push(upper.len());
        let (entry, max_level) = self
            .entry()
            .filter(|&(e, _)| (e as usize) < len)
            .unwrap_or((0, 0));
        Graph {
            m,
            m0,
            layer0,
            counts0,
            levels,
            upper_start,
            upper,
            entry,
            max_level,
        }
    }

    /// k nearest accepted nodes among the first `len`, as (offset, distance) ascending, like
    /// [`Graph::search`]. `entry` is the entry point as it was when those nodes were in (a later
    /// one may not be among them); links to later nodes are not followed.
    #[allow(clippy::too_many_arguments)] // Graph::search's contract plus the view.
    pub fn search<R: Rows>(
        &self,
        rows: &R,
        len: usize,
        entry: (u32, usize),
        query: &[f32],
        k: usize,
        ef: usize,
        accept: Accept,
    ) -> Vec<(u32, f32)> {
        if k == 0 || entry.0 as usize >= len || rows.row(entry.0).len() != query.len() {
            return Vec::new();
        }
        let scorer = RowQuery {
            rows,
            kernel: self.kernel,
            vector: query,
        };
        let view = LiveView { graph: self, len };
        search::query(&view, entry, self.m0, &scorer, k, ef, k, accept)
            .into_iter()
            .map(|c| (c.offset, c.distance))
            .collect()
    }
}

impl std::fmt::Debug for LiveGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveGraph")
            .field("m", &self.m)
            .field("nodes", &self.bound.load(Relaxed))
            .field("capacity", &self.capacity())
            .finish()
    }
}

/// What inserting threads walk: every node inserted so far.
impl Links for LiveGraph {
    fn node_count(&self) -> usize {
        self.bound.load(Acquire)
    }

    #[inline(always)]
    fn prefetch_links(&self, node: u32) {
        if let Some((count, row)) = self.slots(node, 0) {
            search::prefetch_addr(count);
            search::prefetch_addr(row.as_ptr());
        }
    }

    #[inline]
    fn for_each_neighbor(&self, node: u32, level: usize, f: impl FnMut(u32)) {
        self.neighbors_below(node, level, usize::MAX, f);
    }
}

/// A search's view of a [`LiveGraph`]: its first `len` nodes, as of a published snapshot.
#[derive(Clone, Copy)]
struct LiveView<'a> {
    graph: &'a LiveGraph,
    len: usize,
}

impl Links for LiveView<'_> {
    fn node_count(&self) -> usize {
        self.len
    }

    #[inline(always)]
    fn prefetch_links(&self, node: u32) {
        self.graph.prefetch_links(node);
    }

    #[inline]
    fn for_each_neighbor(&self, node: u32, level: usize, f: impl FnMut(u32)) {
        self.graph.neighbors_below(node, level, self.len, f);
    }
}

/// HNSW heuristic: walking `cands` (sorted, distances to the base) closest first, keep one only
/// if it is closer to the base than to every neighbour kept so far. Spreads links over
/// directions instead of spending them all on one tight cluster.
pub(super) fn select<R: Rows>(
    kernel: Kernel,
    rows: &R,
    cands: &[Scored],
    cap: usize,
) -> Vec<Scored> {
    if cands.len() <= cap {
        return cands.to_vec();
    }
    let mut kept: Vec<Scored> = Vec::with_capacity(cap);
    for c in cands {
        if kept.len() >= cap {
            break;
        }
        let diverse = kept.iter().all(|r| {
            let d = rows.distance(kernel, rows.row(c.offset), rows.row(r.offset));
            cmp_distance(d, c.distance) != Ordering::Less
        });
        if diverse {
            kept.push(*c);
        }
    }
    kept
}

/// Builds a graph over every row of `vectors`, in parallel on the current rayon pool.
pub(super) fn build(vectors: &[f32], dim: usize, metric: Metric, params: HnswParams) -> Graph {
    let rows = rows::Flat { vectors, dim };
    build_rows(&rows, row_count(vectors, dim), metric, params)
}

/// Builds a graph over rows `0..n` of `rows`, in parallel on the current rayon pool.
pub(super) fn build_rows<R: Rows>(rows: &R, n: usize, metric: Metric, params: HnswParams) -> Graph {
    let graph = LiveGraph::new(metric, params, n);
    graph.insert_all(rows, 0..n);
    graph.freeze(n)
}

/// A copy of `base` with rows `base.len()..` of `vectors` inserted.
pub(super) fn extend(
    base: &Graph,
    vectors: &[f32],
    dim: usize,
    metric: Metric,
    params: HnswParams,
) -> Graph {
    let rows = rows::Flat { vectors, dim };
    extend_rows(base, &rows, row_count(vectors, dim), metric, params)
}

/// A copy of `base` with rows `base.len()..n` of `rows` inserted.
pub(super) fn extend_rows<R: Rows>(
    base: &Graph,
    rows: &R,
    n: usize,
    metric: Metric,
    params: HnswParams,
) -> Graph {
    if n <= base.len() {
        return base.clone();
    }
    let graph = LiveGraph::from_graph(base, metric, params, n);
    graph.insert_all(rows, base.len()..n);
    graph.freeze(n)
}
