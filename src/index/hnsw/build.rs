//! Parallel construction. Layer-0 links live in a flat array of atomics that searches read
//! without locking (every slot always holds some valid node id, so a racing read can only see a
//! slightly stale list); writers serialise on a per-node mutex that also guards the node's
//! upper-layer lists. A thread holds at most one node lock at a time, so there is no deadlock.
//! `freeze` then packs everything into the lock-free flat [`Graph`].

use std::cmp::Ordering;
use std::ops::Range;
use std::sync::atomic::{
    AtomicU32, AtomicUsize, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};
use std::sync::{Mutex, MutexGuard};

use rayon::prelude::*;

use super::search::{self, Beam, Links, Query, Scorer, Space};
use super::{Graph, HnswParams, MAX_LEVEL, MAX_M};
use crate::index::distance::Metric;
use crate::index::flat::{cmp_distance, Scored};

/// Upper-layer lists of one node: index `l - 1` holds layer `l`.
type UpperLinks = Vec<Vec<u32>>;

/// Mutable graph under construction.
struct Builder<'a> {
    space: Space<'a>,
    m: usize,
    m0: usize,
    ef: usize,
    levels: Vec<u8>,
    /// Layer-0 links, `m0` slots per node.
    links0: Vec<AtomicU32>,
    /// Used slots per node in `links0`.
    counts0: Vec<AtomicU32>,
    /// Per node: the writer lock for all of its lists, holding its upper-layer lists.
    nodes: Vec<Mutex<UpperLinks>>,
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
fn draw_level(seed: u64, node: usize, m: usize) -> u8 {
    let bits = splitmix64(seed ^ splitmix64(node as u64));
    let u = ((bits >> 11) as f64 + 1.0) / (1u64 << 53) as f64; // in (0, 1], so ln is finite
    let level = (-u.ln() / (m as f64).ln()).floor();
    level.min(MAX_LEVEL as f64) as u8
}

/// Number of whole rows, capped so every offset fits in a u32.
fn row_count(vectors: &[f32], dim: usize) -> usize {
    if dim == 0 {
        return 0;
    }
    (vectors.len() / dim).min(u32::MAX as usize)
}

pub(super) fn build(vectors: &[f32], dim: usize, metric: Metric, params: HnswParams) -> Graph {
    let n = row_count(vectors, dim);
    let m = params.m.clamp(2, MAX_M);
    let levels = (0..n).map(|i| draw_level(params.seed, i, m)).collect();
    let space = Space {
        vectors,
        dim,
        kernel: metric.kernel(),
    };
    let builder = Builder::new(space, m, params.ef_construct, levels, None);
    builder.insert_all(0..n);
    builder.freeze()
}

pub(super) fn extend(
    graph: &Graph,
    vectors: &[f32],
    dim: usize,
    metric: Metric,
    params: HnswParams,
) -> Graph {
    let old = graph.len();
    let n = row_count(vectors, dim);
    if n <= old {
        return graph.clone();
    }
    let mut levels = graph.levels.clone();
    levels.extend((old..n).map(|i| draw_level(params.seed, i, graph.m)));
    let space = Space {
        vectors,
        dim,
        kernel: metric.kernel(),
    };
    let builder = Builder::new(space, graph.m, params.ef_construct, levels, Some(graph));
    builder.insert_all(old..n);
    builder.freeze()
}

impl<'a> Builder<'a> {
    /// A builder whose first `base.len()` nodes (if any) start with the lists of `base`.
    fn new(
        space: Space<'a>,
        m: usize,
        ef_construct: usize,
        levels: Vec<u8>,
        base: Option<&Graph>,
    ) -> Builder<'a> {
        let m0 = 2 * m;
        let n = levels.len();
        let old = base.map_or(0, Graph::len);
        let mut links0 = Vec::with_capacity(n * m0);
        let mut counts0 = Vec::with_capacity(n);
        let mut nodes = Vec::with_capacity(n);
        if let Some(g) = base {
            links0.extend(g.layer0.iter().map(|&x| AtomicU32::new(x)));
            counts0.extend(g.counts0.iter().map(|&c| AtomicU32::new(c as u32)));
            nodes.extend((0..old as u32).map(|node| {
                let upper = (1..=g.level(node)).map(|l| g.neighbors(node, l).to_vec());
                Mutex::new(upper.collect())
            }));
        }
        links0.resize_with(n * m0, || AtomicU32::new(0));
        counts0.resize_with(n, || AtomicU32::new(0));
        nodes.extend(
            levels[old..]
                .iter()
                .map(|&level| Mutex::new((0..level).map(|_| Vec::with_capacity(m + 1)).collect())),
        );
        let entry = base
            .filter(|g| !g.is_empty())
            .map(|g| (g.entry, g.max_level));
        Builder {
            space,
            m,
            m0,
            ef: ef_construct.max(1),
            levels,
            links0,
            counts0,
            nodes,
            entry: Mutex::new(entry),
        }
    }

    /// Link capacity on `level`.
    fn cap(&self, level: usize) -> usize {
        if level == 0 {
            self.m0
        } else {
            self.m
        }
    }

    /// Inserts `range` using every thread of the current pool. A shared counter (as in hnswlib)
    /// keeps the order close to ascending, unlike range splitting, which would start a second
    /// thread in the middle of the data while the graph is still nearly empty.
    fn insert_all(&self, range: Range<usize>) {
        let next = AtomicUsize::new(range.start);
        let workers = rayon::current_num_threads().max(1);
        (0..workers).into_par_iter().for_each(|_| loop {
            let i = next.fetch_add(1, Relaxed);
            if i >= range.end {
                break;
            }
            self.insert(i as u32);
        });
    }

    /// Inserts one node: greedy descent to its level, then beam search and linking per layer.
    fn insert(&self, q: u32) {
        let level = self.levels[q as usize] as usize;
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
        let query = Query {
            space: self.space,
            vector: self.space.row(q),
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
            let chosen = self.select(&found, self.m);
            self.connect(q, l, &chosen);
        }
        if let Some(mut guard) = hold {
            *guard = Some((q, level));
        }
    }

    /// Gives `q` the links `chosen` on `level` and adds the back-links.
    fn connect(&self, q: u32, level: usize, chosen: &[Scored]) {
        // Another thread may already have linked to `q` here; merge rather than overwrite.
        self.update(q, level, |list| {
            self.merge(q, list, chosen.iter().map(|c| c.offset), level)
        });
        for c in chosen {
            self.update(c.offset, level, |list| {
                self.merge(c.offset, list, [q].into_iter(), level)
            });
        }
    }

    /// Adds `extra` to `base`'s `list` on `level`, pruning with the heuristic on overflow.
    fn merge(
        &self,
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
        if list.len() > self.cap(level) {
            self.prune(base, list, self.cap(level));
        }
    }

    /// Rewrites `node`'s list on `level` under its lock.
    fn update(&self, node: u32, level: usize, edit: impl FnOnce(&mut Vec<u32>)) {
        let i = node as usize;
        let mut upper = lock(&self.nodes[i]);
        if level > 0 {
            if let Some(list) = upper.get_mut(level - 1) {
                edit(list);
            }
            return;
        }
        let row = &self.links0[i * self.m0..(i + 1) * self.m0];
        let count = (self.counts0[i].load(Relaxed) as usize).min(self.m0);
        let mut list: Vec<u32> = row[..count].iter().map(|x| x.load(Relaxed)).collect();
        edit(&mut list);
        let len = list.len().min(self.m0);
        for (slot, &x) in row.iter().zip(&list[..len]) {
            slot.store(x, Relaxed);
        }
        // Zero what pruning freed so the frozen layout (and its equality) is deterministic.
        for slot in row.iter().take(count).skip(len) {
            slot.store(0, Relaxed);
        }
        self.counts0[i].store(len as u32, Release);
    }

    /// Shrinks `list` (the links of `base`) to at most `cap` using the selection heuristic.
    fn prune(&self, base: u32, list: &mut Vec<u32>, cap: usize) {
        let mut cands: Vec<Scored> = list
            .iter()
            .map(|&x| Scored {
                distance: self.space.between(base, x),
                offset: x,
            })
            .collect();
        cands.sort_unstable();
        let kept = self.select(&cands, cap);
        list.clear();
        list.extend(kept.iter().map(|c| c.offset));
    }

    /// HNSW heuristic: walking `cands` (sorted, distances to the base) closest first, keep one only
    /// if it is closer to the base than to every neighbour kept so far. Spreads links over
    /// directions instead of spending them all on one tight cluster.
    fn select(&self, cands: &[Scored], cap: usize) -> Vec<Scored> {
        if cands.len() <= cap {
            return cands.to_vec();
        }
        let mut kept: Vec<Scored> = Vec::with_capacity(cap);
        for c in cands {
            if kept.len() >= cap {
                break;
            }
            let diverse = kept.iter().all(|r| {
                let d = self.space.between(c.offset, r.offset);
                cmp_distance(d, c.distance) != Ordering::Less
            });
            if diverse {
                kept.push(*c);
            }
        }
        kept
    }

    /// Packs the lists into the flat, lock-free layout.
    fn freeze(self) -> Graph {
        let n = self.nodes.len();
        let (m, m0) = (self.m, self.m0);
        let layer0 = self.links0.into_iter().map(AtomicU32::into_inner).collect();
        let counts0 = self
            .counts0
            .into_iter()
            .map(|c| c.into_inner().min(m0 as u32) as u16)
            .collect();
        let mut upper_start = Vec::with_capacity(n + 1);
        let mut upper = Vec::new();
        for node in self.nodes {
            upper_start.push(upper.len());
            for list in node.into_inner().unwrap_or_else(|e| e.into_inner()) {
                let list = &list[..list.len().min(m)];
                upper.push(list.len() as u32);
                upper.extend_from_slice(list);
                upper.resize(upper.len() + m - list.len(), 0);
            }
        }
        upper_start.push(upper.len());
        let (entry, max_level) = self
            .entry
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or((0, 0));
        Graph {
            m,
            m0,
            layer0,
            counts0,
            levels: self.levels,
            upper_start,
            upper,
            entry,
            max_level,
        }
    }
}

impl Links for Builder<'_> {
    fn node_count(&self) -> usize {
        self.nodes.len()
    }

    #[inline(always)]
    fn prefetch_links(&self, node: u32) {
        let i = node as usize;
        search::prefetch_addr(self.counts0.as_ptr().wrapping_add(i));
        search::prefetch_addr(self.links0.as_ptr().wrapping_add(i * self.m0));
    }

    #[inline]
    fn for_each_neighbor(&self, node: u32, level: usize, mut f: impl FnMut(u32)) {
        let i = node as usize;
        if level > 0 {
            let upper = lock(&self.nodes[i]);
            if let Some(list) = upper.get(level - 1) {
                list.iter().copied().for_each(f);
            }
            return;
        }
        // Lock-free read: a racing writer can only make this list slightly stale.
        let count = (self.counts0[i].load(Acquire) as usize).min(self.m0);
        for slot in &self.links0[i * self.m0..i * self.m0 + count] {
            f(slot.load(Relaxed));
        }
    }
}
