//! Vacuum without a rebuild. The compacted graph holds only the kept nodes, renumbered in
//! order; each keeps its old links to kept nodes, and each link to a dropped node is replaced
//! by that node's own kept neighbours (one hop), pruned with the usual heuristic when the list
//! overflows. This is FreshDiskANN's delete consolidation: a few dozen distances per node
//! instead of an insertion's beam search, so vacuuming a segment costs a fraction of
//! rebuilding it.

use rayon::prelude::*;

use super::build::select;
use super::rows::{Flat, Rows};
use super::Graph;
use crate::index::distance::Metric;
use crate::index::flat::Scored;

/// Marks for "not kept" in the old-to-new id map.
const DROPPED: u32 = u32::MAX;

impl Graph {
    /// The graph over nodes `keep` (ascending old offsets into `vectors`, `dim` floats each),
    /// which become nodes `0..keep.len()`. `None` if `keep` is not ascending or out of range.
    pub fn compact(
        &self,
        keep: &[u32],
        vectors: &[f32],
        dim: usize,
        metric: Metric,
    ) -> Option<Graph> {
        if vectors.len() / dim.max(1) < self.len() {
            return None;
        }
        self.compact_rows(keep, &Flat { vectors, dim }, metric)
    }

    /// Like [`Graph::compact`] over any rows with one row per node (multivectors too).
    pub fn compact_rows<R: Rows>(&self, keep: &[u32], rows: &R, metric: Metric) -> Option<Graph> {
        let n = self.len();
        let ascending = keep.windows(2).all(|w| w[0] < w[1]);
        if !ascending || keep.last().is_some_and(|&k| k as usize >= n) {
            return None;
        }
        let mut new_id = vec![DROPPED; n];
        for (i, &old) in keep.iter().enumerate() {
            new_id[old as usize] = i as u32;
        }
        let kernel = metric.kernel();
        // Per kept node, per layer: its new list, in new ids.
        let lists: Vec<Vec<Vec<u32>>> = keep
            .par_iter()
            .map(|&v| {
                (0..=self.level(v))
                    .map(|l| {
                        let cap = if l == 0 { self.m0 } else { self.m };
                        let cands = self.consolidated(v, l, &new_id);
                        let mut scored: Vec<Scored> = cands
                            .iter()
                            .map(|&c| Scored {
                                distance: rows.distance(kernel, rows.row(v), rows.row(c)),
                                offset: c,
                            })
                            .collect();
                        scored.sort_unstable();
                        select(kernel, rows, &scored, cap)
                            .iter()
                            .map(|c| new_id[c.offset as usize])
                            .collect()
                    })
                    .collect()
            })
            .collect();
        Some(self.assemble(keep, &new_id, lists))
    }

    /// `v`'s links on `level` to kept nodes, with each dropped neighbour replaced by its own
    /// kept neighbours on that level (old ids, no duplicates, never `v`).
    fn consolidated(&self, v: u32, level: usize, new_id: &[u32]) -> Vec<u32> {
        let kept = |x: u32| new_id[x as usize] != DROPPED && x != v;
        let mut out: Vec<u32> = Vec::new();
        let mut add = |x: u32| {
            if kept(x) && !out.contains(&x) {
                out.push(x);
            }
        };
        for &nb in self.neighbors(v, level) {
            if new_id[nb as usize] != DROPPED {
                add(nb);
            } else {
                self.neighbors(nb, level).iter().for_each(|&x| add(x));
            }
        }
        out
    }

    /// Packs per-node lists into the flat layout, with an entry point among the kept nodes.
    fn assemble(&self, keep: &[u32], new_id: &[u32], lists: Vec<Vec<Vec<u32>>>) -> Graph {
        let (m, m0) = (self.m, self.m0);
        let mut graph = Graph {
            m,
            m0,
            layer0: Vec::with_capacity(keep.len() * m0),
            counts0: Vec::with_capacity(keep.len()),
            levels: Vec::with_capacity(keep.len()),
            upper_start: Vec::with_capacity(keep.len() + 1),
            upper: Vec::new(),
            entry: 0,
            max_level: 0,
        };
        for node in lists {
            let level0 = &node[0];
            graph.counts0.push(level0.len() as u16);
            graph.layer0.extend_from_slice(level0);
            graph
                .layer0
                .resize(graph.layer0.len() + m0 - level0.len(), 0);
            graph.levels.push((node.len() - 1) as u8);
            graph.upper_start.push(graph.upper.len());
            for list in &node[1..] {
                graph.upper.push(list.len() as u32);
                graph.upper.extend_from_slice(list);
                graph.upper.resize(graph.upper.len() + m - list.len(), 0);
            }
        }
        graph.upper_start.push(graph.upper.len());
        // The old entry point if it is kept, else the kept node on the highest layer.
        let entry = match new_id.get(self.entry as usize) {
            Some(&e) if e != DROPPED => Some(e),
            _ => (0..keep.len() as u32)
                .max_by_key(|&i| (graph.levels[i as usize], std::cmp::Reverse(i))),
        };
        if let Some(e) = entry {
            graph.entry = e;
            graph.max_level = graph.levels[e as usize] as usize;
        }
        graph
    }
}
