//! The rows a graph's node ids stand for ([`Rows`]): one array of fixed-size vectors
//! ([`Flat`]), a subset of one ([`Picked`], [`Subset`]), rows some points lack ([`Holed`]), and
//! multivectors ([`Multi`]), each with the distance its rows compare by.

use super::search::prefetch_addr;
use crate::index::distance::{max_sim, Kernel};
/// Starts pulling up to `max_lines` cache lines of the `bytes`-long row at `row` into cache.
#[inline(always)]
pub(crate) fn prefetch_row(row: *const u8, bytes: usize, max_lines: usize) {
    for line in 0..bytes.div_ceil(64).min(max_lines) {
        prefetch_addr(row.wrapping_add(line * 64));
    }
}

/// The vectors a graph's node ids stand for.
pub trait Rows: Sync {
    /// The vector of node `id`.
    fn row(&self, id: u32) -> &[f32];
    /// Starts pulling up to `max_lines` cache lines of node `id`'s vector into cache.
    fn prefetch(&self, _id: u32, _max_lines: usize) {}
    /// Whether node `id` has a vector at all: a point may lack one of its collection's named
    /// vectors, and such a node is left out of the graph (no links lead to it).
    fn present(&self, _id: u32) -> bool {
        true
    }
    /// Distance from `query` to the row `row` under `kernel`. Rows of single vectors compare
    /// whole; rows of multivectors ([`Multi`]) compare by late interaction.
    #[inline(always)]
    fn distance(&self, kernel: Kernel, query: &[f32], row: &[f32]) -> f32 {
        kernel(query, row)
    }
}

/// Rows of which those flagged in `absent`, if any, have no vector.
pub(crate) struct Holed<'a, R> {
    pub rows: R,
    pub absent: Option<&'a crate::bitset::Bitset>,
}

impl<R: Rows> Rows for Holed<'_, R> {
    #[inline]
    fn row(&self, id: u32) -> &[f32] {
        self.rows.row(id)
    }

    #[inline(always)]
    fn prefetch(&self, id: u32, max_lines: usize) {
        self.rows.prefetch(id, max_lines)
    }

    fn present(&self, id: u32) -> bool {
        self.absent.is_none_or(|a| !a.get(id as usize))
    }

    #[inline(always)]
    fn distance(&self, kernel: Kernel, query: &[f32], row: &[f32]) -> f32 {
        self.rows.distance(kernel, query, row)
    }
}

/// Some of `rows`, in the order `picked` lists them (like [`Picked`], over any rows).
pub struct Subset<'a, R> {
    pub rows: R,
    pub picked: &'a [u32],
}

impl<R: Rows> Rows for Subset<'_, R> {
    #[inline]
    fn row(&self, id: u32) -> &[f32] {
        self.rows.row(self.picked[id as usize])
    }

    #[inline(always)]
    fn prefetch(&self, id: u32, max_lines: usize) {
        if let Some(&row) = self.picked.get(id as usize) {
            self.rows.prefetch(row, max_lines);
        }
    }

    fn present(&self, id: u32) -> bool {
        self.rows.present(self.picked[id as usize])
    }

    #[inline(always)]
    fn distance(&self, kernel: Kernel, query: &[f32], row: &[f32]) -> f32 {
        self.rows.distance(kernel, query, row)
    }
}

/// Rows of multivectors: row `i` is the `dim`-float vectors from `ends[i - 1]` (0 for the
/// first) to `ends[i]` in `vectors`, compared by [`max_sim`] (late interaction, as ColBERT).
#[derive(Clone, Copy)]
pub struct Multi<'a> {
    pub vectors: &'a [f32],
    pub ends: &'a [usize],
    pub dim: usize,
}

/// Where multivector `i` lies in an array whose multivectors end at `ends`.
#[inline]
pub fn multi_span(ends: &[usize], i: usize) -> std::ops::Range<usize> {
    (if i == 0 { 0 } else { ends[i - 1] })..ends[i]
}

impl<'a> Multi<'a> {
    /// Row `id`, borrowed from the array rather than from `self`.
    #[inline]
    pub fn at(self, id: u32) -> &'a [f32] {
        &self.vectors[multi_span(self.ends, id as usize)]
    }
}

impl Rows for Multi<'_> {
    #[inline]
    fn row(&self, id: u32) -> &[f32] {
        self.at(id)
    }

    #[inline(always)]
    fn prefetch(&self, id: u32, max_lines: usize) {
        let start = multi_span(self.ends, id as usize).start;
        let row = self.vectors.as_ptr().wrapping_add(start);
        prefetch_row(row as *const u8, self.dim * 4, max_lines);
    }

    #[inline]
    fn distance(&self, kernel: Kernel, query: &[f32], row: &[f32]) -> f32 {
        max_sim(kernel, self.dim, query, row)
    }
}

/// Row-major vectors in one array, `dim` floats each.
#[derive(Clone, Copy)]
pub(crate) struct Flat<'a> {
    pub vectors: &'a [f32],
    pub dim: usize,
}

/// Some rows of a row-major array, in the order `picked` lists them: a graph over a subset of
/// a segment's points reads their vectors in place. Every picked row must lie in `vectors`.
#[derive(Clone, Copy)]
pub struct Picked<'a> {
    pub vectors: &'a [f32],
    pub dim: usize,
    pub picked: &'a [u32],
}

impl<'a> Picked<'a> {
    /// All the rows, by their own index.
    #[inline(always)]
    fn all(&self) -> Flat<'a> {
        Flat {
            vectors: self.vectors,
            dim: self.dim,
        }
    }
}

impl<'a> Flat<'a> {
    /// Row `id`, borrowed from the array rather than from `self`.
    #[inline]
    pub(crate) fn at(self, id: u32) -> &'a [f32] {
        let start = id as usize * self.dim;
        &self.vectors[start..start + self.dim]
    }
}

impl Rows for Flat<'_> {
    #[inline]
    fn row(&self, id: u32) -> &[f32] {
        self.at(id)
    }

    #[inline(always)]
    fn prefetch(&self, id: u32, max_lines: usize) {
        let row = self.vectors.as_ptr().wrapping_add(id as usize * self.dim);
        prefetch_row(row as *const u8, self.dim * 4, max_lines);
    }
}

impl Rows for Picked<'_> {
    #[inline]
    fn row(&self, id: u32) -> &[f32] {
        self.all().at(self.picked[id as usize])
    }

    #[inline(always)]
    fn prefetch(&self, id: u32, max_lines: usize) {
        if let Some(&row) = self.picked.get(id as usize) {
            self.all().prefetch(row, max_lines);
        }
    }
}
