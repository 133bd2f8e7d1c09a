//! HNSW graph (Malkov & Yashunin). The published [`Graph`] is a frozen, lock-free flat layout.
//! `build.rs` has the [`LiveGraph`] that grows by parallel insertion while searches read it,
//! which builds freeze into a `Graph`; `compact.rs` drops deleted nodes without a rebuild;
//! `search.rs` walks either kind; `io.rs` (de)serialises the frozen one.

mod build;
mod compact;
mod io;
mod rows;
mod search;
#[cfg(test)]
mod tests;

use crate::error::Corrupt;
use crate::index::distance::Metric;
use crate::index::flat::Scored;
use crate::index::quant::Quantized;
pub use build::LiveGraph;
pub use rows::{multi_span, Multi, Picked, Rows, Subset};
pub(crate) use rows::{prefetch_row, Flat, Holed};
pub(crate) use search::Scorer;
pub use search::{Accept, Estimate};
use search::{ByFn, Links, QuantScorer, RowQuery};

/// Construction parameters.
#[derive(Clone, Copy, Debug)]
pub struct HnswParams {
    /// Links per node on upper layers (layer 0 gets twice as many); clamped to 2..=MAX_M.
    pub m: usize,
    /// Beam width while inserting.
    pub ef_construct: usize,
    /// Seed of the level draws, so builds are reproducible up to thread scheduling.
    pub seed: u64,
}

/// Largest supported `m` (layer-0 counts are stored as u16).
pub const MAX_M: usize = 4096;

/// Highest layer a node may get; deeper levels are astronomically unlikely anyway.
const MAX_LEVEL: usize = 32;

/// A frozen HNSW graph over row offsets `0..len()` of an external vector array.
#[derive(Clone, PartialEq)]
pub struct Graph {
    /// Link capacity on upper layers.
    m: usize,
    /// Link capacity (and row stride) on layer 0, always `2 * m`.
    m0: usize,
    /// Layer-0 links, `m0` slots per node.
    layer0: Vec<u32>,
    /// Used slots per node in `layer0`.
    counts0: Vec<u16>,
    /// Per node, its highest layer.
    levels: Vec<u8>,
    /// Per node, where its upper blocks start in `upper` (n + 1 entries).
    upper_start: Vec<usize>,
    /// Per node, per layer 1..=level: a count followed by `m` link slots.
    upper: Vec<u32>,
    /// Where every search starts (meaningless when empty).
    entry: u32,
    /// Level of `entry`.
    max_level: usize,
}

impl Graph {
    /// Builds a graph over all `vectors.len()/dim` vectors, in parallel on the current rayon pool.
    pub fn build(vectors: &[f32], dim: usize, metric: Metric, params: HnswParams) -> Graph {
        build::build(vectors, dim, metric, params)
    }

    /// Returns a new graph: a copy of `self` (which covers the first self.len() vectors) with
    /// vectors self.len()..vectors.len()/dim inserted, in parallel. `self` is untouched.
    /// The link capacity of `self` is kept; `params.m` is ignored.
    pub fn extend(&self, vectors: &[f32], dim: usize, metric: Metric, params: HnswParams) -> Graph {
        build::extend(self, vectors, dim, metric, params)
    }

    /// k nearest accepted nodes as (offset, distance) ascending. Rejected nodes are still
    /// traversed (they keep the graph connected) but never returned. ef = max(ef, k).
    /// While fewer than k nodes are accepted the search widens past the beam, within a budget
    /// of about 64·ef·2m distance evaluations. Returns nothing if `query` or `vectors` do not
    /// match `dim` and `len()`.
    #[allow(clippy::too_many_arguments)] // The signature is the crate-wide contract.
    pub fn search(
        &self,
        vectors: &[f32],
        dim: usize,
        metric: Metric,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: Accept,
    ) -> Vec<(u32, f32)> {
        let n = self.len();
        if n == 0 || k == 0 || dim == 0 || query.len() != dim || vectors.len() / dim < n {
            return Vec::new();
        }
        self.search_rows(&Flat { vectors, dim }, metric, query, k, ef, accept)
    }

    /// Builds a graph over the `rows` of a subset ([`Picked`]): node `i` is `rows.picked[i]`.
    pub fn build_picked(rows: &Picked, metric: Metric, params: HnswParams) -> Graph {
        build::build_rows(rows, rows.picked.len(), metric, params)
    }

    /// Like [`Graph::extend`] for a graph built by [`Graph::build_picked`]: a copy of `self`
    /// with the nodes of `rows.picked[self.len()..]` inserted.
    pub fn extend_picked(&self, rows: &Picked, metric: Metric, params: HnswParams) -> Graph {
        build::extend_rows(self, rows, rows.picked.len(), metric, params)
    }

    /// Like [`Graph::search`] on a graph built by [`Graph::build_picked`] over `rows`; node ids
    /// (in `accept` and the results) are the graph's own, indexes into `rows.picked`. Returns
    /// nothing if `rows` does not have a row per node.
    pub fn search_picked(
        &self,
        rows: &Picked,
        metric: Metric,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: Accept,
    ) -> Vec<(u32, f32)> {
        if self.is_empty() || k == 0 || query.len() != rows.dim || rows.picked.len() != self.len() {
            return Vec::new();
        }
        self.search_rows(rows, metric, query, k, ef, accept)
    }

    /// The search both float searches share, once their inputs are checked.
    fn search_rows<R: Rows>(
        &self,
        rows: &R,
        metric: Metric,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: Accept,
    ) -> Vec<(u32, f32)> {
        let q = RowQuery {
            rows,
            kernel: metric.kernel(),
            vector: query,
        };
        self.search_with(&q, k, ef, k, accept)
            .into_iter()
            .map(|c| (c.offset, c.distance))
            .collect()
    }

    /// Builds a graph over rows `0..n` of any [`Rows`] (multivectors too), leaving out the
    /// rows that are not [`Rows::present`].
    pub fn build_over<R: Rows>(rows: &R, n: usize, metric: Metric, params: HnswParams) -> Graph {
        build::build_rows(rows, n, metric, params)
    }

    /// Like [`Graph::extend`] over any [`Rows`]: a copy of `self` with rows `self.len()..n`.
    pub fn extend_over<R: Rows>(
        &self,
        rows: &R,
        n: usize,
        metric: Metric,
        params: HnswParams,
    ) -> Graph {
        build::extend_rows(self, rows, n, metric, params)
    }

    /// Like [`Graph::search_by`] over any [`Rows`] with one row per node (multivectors too).
    pub fn search_by_rows<R: Rows>(
        &self,
        rows: &R,
        distance: &dyn Fn(&[f32]) -> f32,
        k: usize,
        ef: usize,
        accept: Accept,
    ) -> Vec<(u32, f32)> {
        self.search_scored(&ByFn { rows, distance }, k, ef, accept)
    }

    /// k nearest accepted nodes by any [`Scorer`] (rows stored in another type), as
    /// (offset, distance) ascending.
    pub(crate) fn search_scored<S: Scorer>(
        &self,
        scorer: &S,
        k: usize,
        ef: usize,
        accept: Accept,
    ) -> Vec<(u32, f32)> {
        if self.is_empty() || k == 0 {
            return Vec::new();
        }
        self.search_with(scorer, k, ef, k, accept)
            .into_iter()
            .map(|c| (c.offset, c.distance))
            .collect()
    }

    /// Like [`Graph::search`], but traverses over int8 codes `rows` (a quarter of the memory
    /// reads). With `rescore` (the exact distance to a node) every candidate the beam kept is
    /// rescored and the best k returned; without, the approximate distances are returned.
    pub fn search_quantized(
        &self,
        rows: &Quantized,
        rescore: Option<&dyn Fn(u32) -> f32>,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: Accept,
    ) -> Vec<(u32, f32)> {
        let n = self.len();
        if n == 0 || k == 0 || query.len() != rows.dim() || rows.len() < n {
            return Vec::new();
        }
        let scorer = QuantScorer {
            rows,
            query: rows.query(query),
        };
        let Some(rescore) = rescore else {
            let found = self.search_with(&scorer, k, ef, k, accept);
            return found.into_iter().map(|c| (c.offset, c.distance)).collect();
        };
        let mut found: Vec<(u32, f32)> = self
            .search_with(&scorer, k, ef, ef.max(k), accept)
            .into_iter()
            .map(|c| (c.offset, rescore(c.offset)))
            .collect();
        found.sort_unstable_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        found.truncate(k);
        found
    }

    /// Descends the upper layers and beam-searches layer 0 with `scorer`; returns the best
    /// `keep` accepted nodes, closest first.
    fn search_with<S: Scorer>(
        &self,
        scorer: &S,
        k: usize,
        ef: usize,
        keep: usize,
        accept: Accept,
    ) -> Vec<Scored> {
        let entry = (self.entry, self.max_level);
        search::query(self, entry, self.m0, scorer, k, ef, keep, accept)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.counts0.len()
    }

    /// True when the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.counts0.is_empty()
    }

    /// Bytes of heap memory the graph holds (for telemetry).
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        self.layer0.capacity() * size_of::<u32>()
            + self.counts0.capacity() * size_of::<u16>()
            + self.levels.capacity()
            + self.upper_start.capacity() * size_of::<usize>()
            + self.upper.capacity() * size_of::<u32>()
    }

    /// Upper-layer link capacity the graph was built with.
    pub fn m(&self) -> usize {
        self.m
    }

    /// Highest layer of `node`.
    fn level(&self, node: u32) -> usize {
        self.levels.get(node as usize).map_or(0, |&l| l as usize)
    }

    /// Slice of `node`'s block on upper `level` (count first), if it has that layer.
    fn upper_block(&self, node: u32, level: usize) -> Option<&[u32]> {
        if level == 0 || level > self.level(node) {
            return None;
        }
        let start = self.upper_start[node as usize] + (level - 1) * (self.m + 1);
        self.upper.get(start..start + self.m + 1)
    }

    /// Checks every structural invariant search relies on; used after deserialising.
    fn validate(&self) -> Result<(), Corrupt> {
        let n = self.len();
        if self.m < 2 || self.m > MAX_M || self.m0 != 2 * self.m {
            return corrupt!("bad link capacity m={} m0={}", self.m, self.m0);
        }
        if self.levels.len() != n || self.upper_start.len() != n + 1 {
            return Err("per-node arrays disagree on the node count".into());
        }
        if self.layer0.len() != n * self.m0 {
            return Err("layer-0 array has the wrong size".into());
        }
        if n > 0 && (self.entry as usize >= n || self.level(self.entry) != self.max_level) {
            return Err("entry point is out of range or not on the top layer".into());
        }
        if n == 0 && (self.entry != 0 || self.max_level != 0) {
            return Err("empty graph with an entry point".into());
        }
        if self.upper_start.last() != Some(&self.upper.len()) {
            return Err("upper-layer array has the wrong size".into());
        }
        for node in 0..n as u32 {
            self.validate_node(node)?;
        }
        Ok(())
    }

    /// Checks one node's lists: counts within capacity, neighbours exist on that layer.
    fn validate_node(&self, node: u32) -> Result<(), Corrupt> {
        let i = node as usize;
        let level = self.level(node);
        if level > self.max_level {
            return corrupt!("node {node} is above the entry point's level");
        }
        let span = self.upper_start[i + 1].checked_sub(self.upper_start[i]);
        if span != Some(level * (self.m + 1)) {
            return corrupt!("node {node} has a malformed upper block");
        }
        if self.counts0[i] as usize > self.m0 {
            return corrupt!("node {node} has too many layer-0 links");
        }
        for l in 0..=level {
            let ok = self
                .neighbors(node, l)
                .iter()
                .all(|&nb| (nb as usize) < self.len() && self.level(nb) >= l);
            if !ok {
                return corrupt!("node {node} links to a missing node on layer {l}");
            }
            let count = self.upper_block(node, l).map_or(0, |b| b[0] as usize);
            if count > self.m {
                return corrupt!("node {node} has too many links on layer {l}");
            }
        }
        Ok(())
    }

    /// Neighbours of `node` on `level` (empty if it is not on that layer).
    #[inline]
    fn neighbors(&self, node: u32, level: usize) -> &[u32] {
        if level == 0 {
            let i = node as usize;
            let count = self.counts0.get(i).map_or(0, |&c| c as usize);
            let start = i * self.m0;
            return self.layer0.get(start..start + count).unwrap_or(&[]);
        }
        match self.upper_block(node, level) {
            Some(block) => {
                let count = (block[0] as usize).min(self.m);
                &block[1..1 + count]
            }
            None => &[],
        }
    }
}

impl std::fmt::Debug for Graph {
    /// A summary: the link arrays are far too long to print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("len", &self.len())
            .field("m", &self.m)
            .field("entry", &self.entry)
            .field("max_level", &self.max_level)
            .field("memory_bytes", &self.memory_bytes())
            .finish()
    }
}

impl Links for Graph {
    #[inline]
    fn node_count(&self) -> usize {
        self.len()
    }

    #[inline]
    fn for_each_neighbor(&self, node: u32, level: usize, f: impl FnMut(u32)) {
        self.neighbors(node, level).iter().copied().for_each(f);
    }

    #[inline(always)]
    fn prefetch_links(&self, node: u32) {
        search::prefetch_addr(self.counts0.as_ptr().wrapping_add(node as usize));
        search::prefetch_addr(self.layer0.as_ptr().wrapping_add(node as usize * self.m0));
    }
}
