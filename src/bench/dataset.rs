//! Dataset loading: base vectors, queries and exact ground truth, in the shared `.npy` layout
//! (`base.npy`, `queries.npy`, `gt_ids.npy`) or ann-benchmarks' TEXMEX layout (`base.fvecs`,
//! `queries.fvecs`, `gt.ivecs`).

use std::path::Path;

use anyhow::{bail, Context};

/// A row-major matrix.
pub struct Matrix<T> {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<T>,
}

impl<T> Matrix<T> {
    /// Row `i`.
    pub fn row(&self, i: usize) -> &[T] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
}

/// Base vectors, queries and the exact neighbours of each query (row numbers into base).
pub struct Dataset {
    pub base: Matrix<f32>,
    pub queries: Matrix<f32>,
    pub truth: Matrix<i32>,
}

impl Dataset {
    /// Loads `dir`, preferring the `.npy` files when both layouts are present.
    pub fn load(dir: &Path) -> anyhow::Result<Dataset> {
        let npy = dir.join("base.npy").exists();
        let ds = if npy {
            Dataset {
                base: read_npy(&dir.join("base.npy"), "<f4", f32::from_le_bytes)?,
                queries: read_npy(&dir.join("queries.npy"), "<f4", f32::from_le_bytes)?,
                truth: read_npy(&dir.join("gt_ids.npy"), "<i4", i32::from_le_bytes)?,
            }
        } else {
            Dataset {
                base: read_vecs(&dir.join("base.fvecs"), f32::from_le_bytes)?,
                queries: read_vecs(&dir.join("queries.fvecs"), f32::from_le_bytes)?,
                truth: read_vecs(&dir.join("gt.ivecs"), i32::from_le_bytes)?,
            }
        };
        if ds.base.cols != ds.queries.cols || ds.truth.rows != ds.queries.rows {
            bail!(
                "dataset shapes disagree: base {}×{}, queries {}×{}, truth {}×{}",
                ds.base.rows,
                ds.base.cols,
                ds.queries.rows,
                ds.queries.cols,
                ds.truth.rows,
                ds.truth.cols
            );
        }
        Ok(ds)
    }
}

/// Reads a 2-D little-endian numpy array of 4-byte elements.
fn read_npy<T>(path: &Path, descr: &str, conv: fn([u8; 4]) -> T) -> anyhow::Result<Matrix<T>> {
    let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        bail!("{}: not a .npy file", path.display());
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
    };
    let header = std::str::from_utf8(
        bytes
            .get(start..start + header_len)
            .context("short header")?,
    )?;
    if !header.contains(descr) || header.contains("'fortran_order': True") {
        bail!(
            "{}: expected a C-order {descr} array, header {header}",
            path.display()
        );
    }
    let shape = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .context("no shape")?;
    let dims: Vec<usize> = shape
        .split(',')
        .filter_map(|d| d.trim().parse().ok())
        .collect();
    let (rows, cols) = match dims[..] {
        [r, c] => (r, c),
        [r] => (r, 1),
        _ => bail!("{}: unsupported shape {shape}", path.display()),
    };
    let body = &bytes[start + header_len..];
    if body.len() != rows * cols * 4 {
        bail!(
            "{}: {} data bytes for shape {rows}×{cols}",
            path.display(),
            body.len()
        );
    }
    let data = body
        .chunks_exact(4)
        .map(|c| conv([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok(Matrix { rows, cols, data })
}

/// Reads a TEXMEX `.fvecs`/`.ivecs` file: each row is an i32 dimension and then the values.
fn read_vecs<T>(path: &Path, conv: fn([u8; 4]) -> T) -> anyhow::Result<Matrix<T>> {
    let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
    let dim = i32::from_le_bytes(bytes.get(..4).context("empty file")?.try_into()?) as usize;
    let row = 4 * (dim + 1);
    if dim == 0 || bytes.len() % row != 0 {
        bail!("{}: not a vecs file of dimension {dim}", path.display());
    }
    let mut data = Vec::with_capacity(bytes.len() / row * dim);
    for r in bytes.chunks_exact(row) {
        data.extend(
            r[4..]
                .chunks_exact(4)
                .map(|c| conv([c[0], c[1], c[2], c[3]])),
        );
    }
    Ok(Matrix {
        rows: bytes.len() / row,
        cols: dim,
        data,
    })
}

/// Recall@k of `found` (row numbers) against the first k of `truth`.
pub fn recall(found: &[u64], truth: &[i32], k: usize) -> f64 {
    let want = &truth[..k.min(truth.len())];
    let hits = found
        .iter()
        .take(k)
        .filter(|id| want.contains(&(**id as i32)))
        .count();
    hits as f64 / k as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_npy_and_vecs_layouts() {
        let dir = tempfile::tempdir().unwrap();
        let mut npy = b"\x93NUMPY\x01\x00".to_vec();
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }          \n";
        npy.extend_from_slice(&(header.len() as u16).to_le_bytes());
        npy.extend_from_slice(header.as_bytes());
        for x in [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0] {
            npy.extend_from_slice(&x.to_le_bytes());
        }
        std::fs::write(dir.path().join("a.npy"), &npy).unwrap();
        let m = read_npy(&dir.path().join("a.npy"), "<f4", f32::from_le_bytes).unwrap();
        assert_eq!((m.rows, m.cols, m.row(1)), (2, 3, &[4.0, 5.0, 6.0][..]));
        let mut vecs = Vec::new();
        for row in [[7i32, 8], [9, 10]] {
            vecs.extend_from_slice(&2i32.to_le_bytes());
            row.iter()
                .for_each(|x| vecs.extend_from_slice(&x.to_le_bytes()));
        }
        std::fs::write(dir.path().join("a.ivecs"), &vecs).unwrap();
        let m = read_vecs(&dir.path().join("a.ivecs"), i32::from_le_bytes).unwrap();
        assert_eq!((m.rows, m.cols, m.row(1)), (2, 2, &[9, 10][..]));
        assert!(read_npy(&dir.path().join("a.ivecs"), "<f4", f32::from_le_bytes).is_err());
    }

    #[test]
    fn recall_counts_overlap() {
        assert_eq!(recall(&[1, 2, 3], &[3, 2, 9], 3), 2.0 / 3.0);
    }
}
