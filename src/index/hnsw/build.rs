//! Parallel construction. While inserting, every node's lists sit behind their own mutex (a lock
//! is held only while one list is read or rewritten, never two at once, so there is no deadlock);
//! `freeze` then packs everything into the lock-free flat [`Graph`].

use std::cmp::Ordering;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Mutex, MutexGuard};

use rayon::prelude::*;

use super::search::{self, Beam, Links, Query, Space};
use super::{Graph, HnswParams, MAX_LEVEL, MAX_M};
use crate::index::distance::Metric;
use crate::index::flat::{cmp_distance, Scored};

/// Neighbour lists of one node, one per layer `0..=level`.
type NodeLinks = Vec<Vec<u32>>;

/// Mutable graph under construction.
struct Builder<'a> {
    space: Space<'a>,
    m: usize,
    m0: usize,
    ef: usize,
    levels: Vec<u8>,
    nodes: Vec<Mutex<NodeLinks>>,
    /// Entry point and its level; `None` until the first node is in.
    entry: Mutex<Option<(u32, usize)>>,
}

/// Locks `m`, ignoring poisoning: lists are always left consistent between statements.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
    let builder = Builder::new(space, m, params.ef_construct, levels, Vec::new(), None);
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
    let m = graph.m;
    let mut levels = graph.levels.clone();
    levels.extend((old..n).map(|i| draw_level(params.seed, i, m)));
    let existing = (0..old as u32)
        .map(|node| {
            (0..=graph.level(node))
                .map(|l| graph.with_neighbors(node, l, |nbrs| nbrs.to_vec()))
                .collect()
        })
        .collect();
    let entry = (!graph.is_empty()).then_some((graph.entry, graph.max_level));
    let space = Space {
        vectors,
        dim,
        kernel: metric.kernel(),
    };
    let builder = Builder::new(space, m, params.ef_construct, levels, existing, entry);
    builder.insert_all(old..n);
    builder.freeze()
}

impl<'a> Builder<'a> {
    /// A builder whose first `existing.len()` nodes already have their lists.
    fn new(
        space: Space<'a>,
        m: usize,
        ef_construct: usize,
        levels: Vec<u8>,
        existing: Vec<NodeLinks>,
        entry: Option<(u32, usize)>,
    ) -> Builder<'a> {
        let m0 = 2 * m;
        let fresh = levels[existing.len()..].iter().map(|&level| {
            let mut lists = vec![Vec::with_capacity(m0 + 1)];
            lists.extend((0..level).map(|_| Vec::with_capacity(m + 1)));
            lists
        });
        let nodes = existing.into_iter().chain(fresh).map(Mutex::new).collect();
        Builder {
            space,
            m,
            m0,
            ef: ef_construct.max(1),
            levels,
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

    /// Inserts `range` using every thread of the current pool, in roughly ascending order
    /// (a shared counter, like hnswlib) so that early nodes see a graph that is already dense.
    fn insert_all(&self, range: Range<usize>) {
        let next = AtomicUsize::new(range.start);
        let workers = rayon::current_num_threads().max(1);
        (0..workers).into_par_iter().for_each(|_| loop {
            let i = next.fetch_add(1, AtomicOrdering::Relaxed);
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
            let chosen = self.select(&found, self.m);
            self.connect(q, l, &chosen);
        }
        if let Some(mut guard) = hold {
            *guard = Some((q, level));
        }
    }

    /// Gives `q` the links `chosen` on `level` and adds the back-links.
    fn connect(&self, q: u32, level: usize, chosen: &[Scored]) {
        {
            let mut lists = lock(&self.nodes[q as usize]);
            let list = &mut lists[level];
            // Another thread may already have linked to `q` here; merge rather than overwrite.
            for c in chosen {
                if !list.contains(&c.offset) {
                    list.push(c.offset);
                }
            }
            if list.len() > self.cap(level) {
                self.prune(q, list, self.cap(level));
            }
        }
        for c in chosen {
            self.add_link(c.offset, q, level);
        }
    }

    /// Adds `to` to `from`'s list on `level`, pruning with the heuristic when it overflows.
    fn add_link(&self, from: u32, to: u32, level: usize) {
        let mut lists = lock(&self.nodes[from as usize]);
        let Some(list) = lists.get_mut(level) else {
            return;
        };
        if list.contains(&to) {
            return;
        }
        list.push(to);
        if list.len() > self.cap(level) {
            self.prune(from, list, self.cap(level));
        }
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
        let mut layer0 = vec![0u32; n * m0];
        let mut counts0 = vec![0u16; n];
        let mut upper_start = Vec::with_capacity(n + 1);
        let mut upper = Vec::new();
        for (i, node) in self.nodes.into_iter().enumerate() {
            let lists = node.into_inner().unwrap_or_else(|e| e.into_inner());
            upper_start.push(upper.len());
            for (l, list) in lists.iter().enumerate() {
                let list = &list[..list.len().min(if l == 0 { m0 } else { m })];
                if l == 0 {
                    layer0[i * m0..i * m0 + list.len()].copy_from_slice(list);
                    counts0[i] = list.len() as u16;
                } else {
                    upper.push(list.len() as u32);
                    upper.extend_from_slice(list);
                    upper.resize(upper.len() + m - list.len(), 0);
                }
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

    fn with_neighbors<R>(&self, node: u32, level: usize, f: impl FnOnce(&[u32]) -> R) -> R {
        let lists = lock(&self.nodes[node as usize]);
        f(lists.get(level).map_or(&[], |v| v.as_slice()))
    }
}
