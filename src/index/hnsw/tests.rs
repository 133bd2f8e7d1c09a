use super::*;
use crate::index::flat;
use crate::index::testing::random_vectors;

const SEED: u64 = 0x5EED_2024;

/// Scales every row to unit length, as the service does for cosine collections.
fn normalize(vectors: &mut [f32], dim: usize) {
    for row in vectors.chunks_exact_mut(dim) {
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        row.iter_mut().for_each(|x| *x /= norm);
    }
}

fn params(m: usize) -> HnswParams {
    HnswParams {
        m,
        ef_construct: 100,
        seed: SEED,
    }
}

/// Mean recall@k of the graph against exact search over `queries`.
fn recall(g: &Graph, vectors: &[f32], queries: &[f32], dim: usize, metric: Metric) -> f64 {
    let k = 10;
    let mut hits = 0usize;
    let mut total = 0usize;
    for q in queries.chunks_exact(dim) {
        let truth = flat::top_k(vectors, dim, metric, q, k, |_| true);
        let got = g.search(vectors, dim, metric, q, k, 64, Accept::All);
        assert_eq!(got.len(), k);
        assert!(got.windows(2).all(|w| w[0].1 <= w[1].1), "not sorted");
        hits += got
            .iter()
            .filter(|(o, _)| truth.iter().any(|t| t.0 == *o))
            .count();
        total += k;
    }
    hits as f64 / total as f64
}

fn dataset(metric: Metric) -> (Vec<f32>, Vec<f32>) {
    let dim = 32;
    let mut base = random_vectors(5000, dim, SEED);
    let mut queries = random_vectors(200, dim, SEED ^ 1);
    if metric == Metric::Dot {
        normalize(&mut base, dim);
        normalize(&mut queries, dim);
    }
    (base, queries)
}

#[test]
fn recall_per_metric_build_and_extend() {
    let dim = 32;
    println!("seed {SEED:#x}");
    for metric in [Metric::Dot, Metric::L2, Metric::L1] {
        let (base, queries) = dataset(metric);
        let g = Graph::build(&base, dim, metric, params(16));
        g.validate().expect("built graph is consistent");
        let r = recall(&g, &base, &queries, dim, metric);
        println!("{metric:?} build recall@10 = {r:.3}");
        assert!(r >= 0.9, "{metric:?} recall {r}");

        let half = Graph::build(&base[..2500 * dim], dim, metric, params(16));
        let before = half.clone();
        let full = half.extend(&base, dim, metric, params(16));
        assert_eq!(half, before, "extend must not touch the source graph");
        assert_eq!(full.len(), 5000);
        full.validate().expect("extended graph is consistent");
        let r = recall(&full, &base, &queries, dim, metric);
        println!("{metric:?} extend recall@10 = {r:.3}");
        assert!(r >= 0.9, "{metric:?} extend recall {r}");
    }
}

#[test]
fn filter_returns_only_accepted_and_fills_k() {
    let dim = 16;
    let base = random_vectors(3000, dim, SEED ^ 2);
    let queries = random_vectors(50, dim, SEED ^ 3);
    let g = Graph::build(&base, dim, Metric::L2, params(8));
    let accept = |o: u32| o.is_multiple_of(10);
    let mut hits = 0;
    for q in queries.chunks_exact(dim) {
        let got = g.search(&base, dim, Metric::L2, q, 10, 32, Accept::Check(&accept));
        assert_eq!(got.len(), 10);
        assert!(got.iter().all(|(o, _)| accept(*o)));
        let truth = flat::top_k(&base, dim, Metric::L2, q, 10, accept);
        hits += got
            .iter()
            .filter(|(o, _)| truth.iter().any(|t| t.0 == *o))
            .count();
    }
    println!("filtered recall@10 = {:.3}", hits as f64 / 500.0);
    // Very selective: 3 of 3000 accepted; all of them must still be found.
    let rare = |o: u32| o % 1000 == 7;
    let got = g.search(
        &base,
        dim,
        Metric::L2,
        &queries[..dim],
        10,
        16,
        Accept::Check(&rare),
    );
    assert_eq!(got.iter().map(|r| r.0).collect::<Vec<_>>().len(), 3);
    // Nothing accepted: empty, and it must terminate.
    assert!(g
        .search(
            &base,
            dim,
            Metric::L2,
            &queries[..dim],
            10,
            16,
            Accept::Check(&|_| false)
        )
        .is_empty());
}

/// `n` unit rows around 30 centres (the same for every `seed`), as embeddings come.
fn clustered(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let centres = random_vectors(30, dim, SEED ^ 6);
    let mut rows = random_vectors(n, dim, seed);
    for (i, row) in rows.chunks_exact_mut(dim).enumerate() {
        let centre = &centres[(i % 30) * dim..(i % 30 + 1) * dim];
        row.iter_mut()
            .zip(centre)
            .for_each(|(x, c)| *x = c + 0.7 * *x);
    }
    normalize(&mut rows, dim);
    rows
}

/// Says every node is as far as can be: a walk routed by it never goes through a rejected one.
struct Blind;

impl crate::index::hnsw::Estimate for Blind {
    fn estimate(&self, _: u32) -> f32 {
        f32::INFINITY
    }
    fn prefetch(&self, _: u32) {}
}

#[test]
fn routed_walk_keeps_the_recall_of_exact_routing() {
    use crate::index::signs::{Estimator, SignCodes};
    let dim = 128;
    let base = clustered(4000, dim, SEED ^ 7);
    let queries = clustered(150, dim, SEED ^ 8);
    let g = Graph::build(&base, dim, Metric::Dot, params(8));
    let codes = SignCodes::new(&base, dim);
    let accept = |o: u32| o.is_multiple_of(2);
    let mut hits = [0usize; 3]; // exact routing, estimated, blind
    for q in queries.chunks_exact(dim) {
        let truth = flat::top_k(&base, dim, Metric::Dot, q, 10, accept);
        let estimator = Estimator {
            codes: &codes,
            query: codes.query(q),
        };
        let walks = [
            Accept::Check(&accept),
            Accept::Routed(&accept, &estimator),
            Accept::Routed(&accept, &Blind),
        ];
        for (i, walk) in walks.into_iter().enumerate() {
            let got = g.search(&base, dim, Metric::Dot, q, 10, 12, walk);
            assert_eq!(got.len(), 10);
            // Only accepted nodes, best first, each with its exact distance.
            assert!(got.windows(2).all(|w| w[0].1 <= w[1].1));
            for &(o, d) in &got {
                assert!(accept(o));
                let row = &base[o as usize * dim..(o as usize + 1) * dim];
                assert_eq!(d, Metric::Dot.distance(q, row));
            }
            hits[i] += got
                .iter()
                .filter(|(o, _)| truth.iter().any(|t| t.0 == *o))
                .count();
        }
    }
    let recall = hits.map(|h| h as f64 / (10 * queries.len() / dim) as f64);
    println!("recall@10 exact routing / estimated / blind: {recall:?}");
    // The estimate steers as well as exact distances do, and it is what keeps the walk going
    // through rejected nodes: without it the walk is stuck among accepted ones.
    assert!(recall[1] >= recall[0] - 0.05, "{recall:?}");
    assert!(recall[1] >= recall[2] + 0.05, "{recall:?}");
}

#[test]
fn serialisation_round_trip() {
    let dim = 8;
    let base = random_vectors(700, dim, SEED ^ 4);
    let g = Graph::build(&base, dim, Metric::L2, params(6));
    let mut bytes = Vec::new();
    g.write_to(&mut bytes);
    let back = Graph::read_from(&bytes).expect("round trip");
    assert_eq!(back, g);
    let q = &base[..dim];
    assert_eq!(
        back.search(&base, dim, Metric::L2, q, 5, 20, Accept::All),
        g.search(&base, dim, Metric::L2, q, 5, 20, Accept::All)
    );
    assert!(g.memory_bytes() >= 700 * 12 * 4);
}

/// Recomputes the trailing checksum so corruption reaches the structural validation.
fn reseal(bytes: &mut [u8]) {
    let body = bytes.len() - 8;
    let sum = super::io::checksum(&bytes[..body]);
    bytes[body..].copy_from_slice(&sum.to_le_bytes());
}

#[test]
fn corrupted_bytes_never_panic() {
    let dim = 4;
    let base = random_vectors(60, dim, SEED ^ 5);
    let g = Graph::build(&base, dim, Metric::L2, params(4));
    let mut bytes = Vec::new();
    g.write_to(&mut bytes);
    for len in 0..bytes.len() {
        assert!(
            Graph::read_from(&bytes[..len]).is_err(),
            "truncated to {len}"
        );
    }
    for pos in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xFF] {
            let mut bad = bytes.clone();
            bad[pos] ^= flip;
            assert!(Graph::read_from(&bad).is_err(), "flip at {pos} not caught");
            if pos < bytes.len() - 8 {
                reseal(&mut bad);
                // Past the checksum: either rejected or a graph that is safe to search.
                if let Ok(g2) = Graph::read_from(&bad) {
                    let got = g2.search(&base, dim, Metric::L2, &base[..dim], 5, 10, Accept::All);
                    assert!(got.len() <= 5);
                }
            }
        }
    }
    let mut extra = bytes.clone();
    extra.push(0);
    assert!(Graph::read_from(&extra).is_err());
}

#[test]
fn edge_cases() {
    let dim = 3;
    let empty = Graph::build(&[], dim, Metric::L2, params(16));
    assert!(empty.is_empty());
    assert!(empty
        .search(&[], dim, Metric::L2, &[0.0; 3], 5, 10, Accept::All)
        .is_empty());
    let mut bytes = Vec::new();
    empty.write_to(&mut bytes);
    assert_eq!(Graph::read_from(&bytes).expect("empty round trip"), empty);

    let one = [1.0, 2.0, 3.0];
    let g = Graph::build(&one, dim, Metric::L2, params(16));
    assert_eq!(
        g.search(&one, dim, Metric::L2, &one, 5, 10, Accept::All),
        vec![(0, 0.0)]
    );

    let base = random_vectors(30, dim, SEED ^ 6);
    let g = Graph::build(&base, dim, Metric::L1, params(4));
    let got = g.search(&base, dim, Metric::L1, &base[..dim], 100, 1, Accept::All);
    assert_eq!(got.len(), 30, "k > len returns every node");
    // Mismatched query length or too few vectors are refused rather than misread.
    assert!(g
        .search(&base, dim, Metric::L1, &[0.0; 2], 5, 10, Accept::All)
        .is_empty());
    assert!(g
        .search(
            &base[..dim * 10],
            dim,
            Metric::L1,
            &base[..dim],
            5,
            10,
            Accept::All
        )
        .is_empty());
    // Extending with no new rows is a plain copy.
    assert_eq!(g.extend(&base, dim, Metric::L1, params(4)), g);
}

#[test]
fn identical_vectors_terminate() {
    let dim = 8;
    let base = vec![0.5f32; 400 * dim];
    for metric in [Metric::Dot, Metric::L2, Metric::L1] {
        let g = Graph::build(&base, dim, metric, params(8));
        g.validate().expect("consistent");
        let got = g.search(&base, dim, metric, &base[..dim], 10, 20, Accept::All);
        assert_eq!(got.len(), 10);
        let g2 = g.extend(
            &[base.clone(), vec![0.5; 50 * dim]].concat(),
            dim,
            metric,
            params(8),
        );
        assert_eq!(g2.len(), 450);
    }
}

#[test]
fn single_thread_builds_are_reproducible() {
    let dim = 8;
    let base = random_vectors(500, dim, SEED ^ 7);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let a = pool.install(|| Graph::build(&base, dim, Metric::L2, params(8)));
    let b = pool.install(|| Graph::build(&base, dim, Metric::L2, params(8)));
    assert_eq!(a, b);
}

/// Recall@10 of searches over the first `len` nodes of a live graph.
fn live_recall(g: &LiveGraph, base: &[f32], queries: &[f32], dim: usize, len: usize) -> f64 {
    let rows = super::rows::Flat {
        vectors: &base[..len * dim],
        dim,
    };
    let entry = g.entry().expect("non-empty graph");
    let (k, mut hits) = (10, 0usize);
    for q in queries.chunks_exact(dim) {
        let truth = flat::top_k(&base[..len * dim], dim, Metric::L2, q, k, |_| true);
        let got = g.search(&rows, len, entry, q, k, 64, Accept::All);
        assert_eq!(got.len(), k.min(len));
        assert!(got.iter().all(|(o, _)| (*o as usize) < len));
        hits += got
            .iter()
            .filter(|(o, _)| truth.iter().any(|t| t.0 == *o))
            .count();
    }
    hits as f64 / (queries.len() / dim * k.min(len)) as f64
}

#[test]
fn live_graph_grows_in_batches_and_freezes_into_a_valid_graph() {
    let dim = 32;
    let (base, queries) = dataset(Metric::L2);
    let rows = super::rows::Flat {
        vectors: &base,
        dim,
    };
    let g = LiveGraph::new(Metric::L2, params(16), 5000);
    let mut len = 0;
    for batch in [1, 7, 64, 428, 1500, 3000] {
        g.insert_all(&rows, len..len + batch);
        len += batch;
        let r = live_recall(&g, &base, &queries, dim, len);
        println!("{len} nodes: live recall@10 = {r:.3}");
        assert!(r >= 0.9, "live recall {r} at {len} nodes");
    }
    let frozen = g.freeze(len);
    frozen.validate().expect("frozen live graph is consistent");
    let r = recall(&frozen, &base, &queries, dim, Metric::L2);
    assert!(r >= 0.9, "frozen recall {r}");
    // Rows beyond the capacity are left out rather than written out of bounds.
    let small = LiveGraph::new(Metric::L2, params(16), 100);
    small.insert_all(&rows, 0..5000);
    assert!(small.freeze(small.capacity()).validate().is_ok());
}

#[test]
fn searches_while_the_graph_grows_see_only_their_prefix() {
    let dim = 16;
    let base = random_vectors(4000, dim, SEED ^ 8);
    let rows = super::rows::Flat {
        vectors: &base,
        dim,
    };
    let g = LiveGraph::new(Metric::L2, params(8), 4000);
    // What a published snapshot holds: inserted nodes and the entry point as of then.
    let published = std::sync::Mutex::new((0usize, None::<(u32, usize)>));
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let readers: Vec<_> = (0..2)
            .map(|r| {
                let (g, rows, published, done) = (&g, &rows, &published, &done);
                s.spawn(move || {
                    let (mut searches, mut found_self) = (0, 0);
                    let mut i = r;
                    while !done.load(std::sync::atomic::Ordering::Acquire) {
                        let (len, entry) = *published.lock().unwrap();
                        let Some(entry) = entry else { continue };
                        let q = rows.row((i % len) as u32);
                        let got = g.search(rows, len, entry, q, 10, 32, Accept::All);
                        assert_eq!(got.len(), 10.min(len));
                        assert!(got.iter().all(|(o, _)| (*o as usize) < len));
                        assert!(got.windows(2).all(|w| w[0].1 <= w[1].1));
                        // The query is a stored row, so it should find itself.
                        found_self += usize::from(got[0].1 == 0.0);
                        searches += 1;
                        i += 7;
                    }
                    (searches, found_self)
                })
            })
            .collect();
        for start in (0..4000).step_by(50) {
            g.insert_all(&rows, start..start + 50);
            *published.lock().unwrap() = (start + 50, g.entry());
        }
        done.store(true, std::sync::atomic::Ordering::Release);
        for r in readers {
            let (searches, found_self) = r.join().unwrap();
            println!("{found_self} of {searches} searches found their own row");
            assert!(searches > 0 && found_self * 100 >= searches * 95);
        }
    });
}

/// The rows of `keep`, in order: what a vacuumed segment holds.
fn gather(base: &[f32], dim: usize, keep: &[u32]) -> Vec<f32> {
    keep.iter()
        .flat_map(|&k| {
            base[k as usize * dim..(k as usize + 1) * dim]
                .iter()
                .copied()
        })
        .collect()
}

#[test]
fn compaction_drops_nodes_and_keeps_recall() {
    let dim = 32;
    let (base, queries) = dataset(Metric::L2);
    let g = Graph::build(&base, dim, Metric::L2, params(16));
    let mut rng = SEED;
    let mut random_third = Vec::new();
    for i in 0..5000u32 {
        rng = splitmix(rng);
        if rng.is_multiple_of(3) || i == g.entry {
            random_third.push(i);
        }
    }
    let survivors = |dropped: &[u32]| {
        (0..5000u32)
            .filter(|i| !dropped.contains(i))
            .collect::<Vec<_>>()
    };
    let cases = [
        (
            "a random third and the entry point",
            survivors(&random_third),
        ),
        ("the first half", (2500..5000).collect()),
        ("nothing", (0..5000).collect()),
    ];
    for (what, keep) in cases {
        let small = g
            .compact(&keep, &base, dim, Metric::L2)
            .expect("valid keep list");
        small.validate().expect("compacted graph is consistent");
        assert_eq!(small.len(), keep.len());
        let rows = gather(&base, dim, &keep);
        let r = recall(&small, &rows, &queries, dim, Metric::L2);
        println!("dropping {what}: recall@10 = {r:.3}");
        assert!(r >= 0.9, "dropping {what}: recall {r}");
        // It stays extendable like any graph.
        let grown = small.extend(
            &[rows.clone(), base[..100 * dim].to_vec()].concat(),
            dim,
            Metric::L2,
            params(16),
        );
        grown
            .validate()
            .expect("extended compacted graph is consistent");
    }
    let empty = g.compact(&[], &base, dim, Metric::L2).unwrap();
    assert!(empty.is_empty() && empty.validate().is_ok());
    assert!(
        g.compact(&[3, 2], &base, dim, Metric::L2).is_none(),
        "unsorted"
    );
    assert!(
        g.compact(&[5000], &base, dim, Metric::L2).is_none(),
        "out of range"
    );
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z ^ (z >> 27)
}

/// Points of 1 to 5 vectors each (`dim` floats), as rows of [`Multi`]: (floats, ends).
fn multivectors(n: usize, dim: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
    // Row j of point i comes from the same cluster as all of the point's rows.
    let pool = clustered(n * 5 * 30, dim, seed);
    let pool: Vec<f32> = (0..n * 5)
        .flat_map(|r| {
            let (i, j) = (r / 5, r % 5);
            let row = (j * 30 + i % 30) * dim + (i / 30) * 30 * 5 * dim;
            pool[row..row + dim].to_vec()
        })
        .collect();
    let (mut data, mut ends) = (Vec::new(), Vec::with_capacity(n));
    let mut rng = seed;
    for i in 0..n {
        rng = splitmix(rng);
        let rows = 1 + (rng % 5) as usize;
        data.extend_from_slice(&pool[i * 5 * dim..(i * 5 + rows) * dim]);
        ends.push(data.len());
    }
    (data, ends)
}

/// Recall@10 of `search_by_rows` over multivector rows against an exact scan by `max_sim`.
fn multi_recall(g: &Graph, rows: &Multi, queries: &[Vec<f32>]) -> f64 {
    let kernel = Metric::Dot.kernel();
    let mut hits = 0;
    for q in queries {
        let distance = |row: &[f32]| crate::index::distance::max_sim(kernel, rows.dim, q, row);
        let mut exact: Vec<(u32, f32)> = (0..rows.ends.len() as u32)
            .map(|i| (i, distance(rows.row(i))))
            .collect();
        exact.sort_by(|a, b| a.1.total_cmp(&b.1));
        let truth: Vec<u32> = exact.iter().take(10).map(|e| e.0).collect();
        let got = g.search_by_rows(rows, &distance, 10, 64, Accept::All);
        hits += got.iter().filter(|(o, _)| truth.contains(o)).count();
    }
    hits as f64 / (10 * queries.len()) as f64
}

#[test]
fn multivector_graphs_keep_recall() {
    let (dim, n) = (16, 2000);
    let (data, ends) = multivectors(n, dim, SEED);
    let rows = Multi {
        vectors: &data,
        ends: &ends,
        dim,
    };
    let (qdata, qends) = multivectors(50, dim, SEED ^ 7);
    let queries: Vec<Vec<f32>> = (0..50)
        .map(|i| qdata[if i == 0 { 0 } else { qends[i - 1] }..qends[i]].to_vec())
        .collect();
    let g = Graph::build_over(&rows, n, Metric::Dot, params(16));
    g.validate().expect("built graph is consistent");
    let built = multi_recall(&g, &rows, &queries);
    println!("multivector recall@10 built {built:.3}");
    assert!(built >= 0.9, "built: {built}");
}

#[test]
fn multivector_graphs_extend_over_points_lacking_them() {
    let (dim, n) = (16, 2000);
    let (data, mut ends) = multivectors(n, dim, SEED);
    // Every ninth point lacks its multivector: an empty row, left out of the graph.
    let mut absent = crate::bitset::Bitset::default();
    let mut flat = Vec::new();
    let mut new_ends = Vec::new();
    for i in 0..n {
        let start = if i == 0 { 0 } else { ends[i - 1] };
        if i % 9 == 0 {
            absent.set(i);
        } else {
            flat.extend_from_slice(&data[start..ends[i]]);
        }
        new_ends.push(flat.len());
    }
    ends = new_ends;
    let rows = Multi {
        vectors: &flat,
        ends: &ends,
        dim,
    };
    let holed = Holed {
        rows,
        absent: Some(&absent),
    };
    let (qdata, qends) = multivectors(50, dim, SEED ^ 7);
    let queries: Vec<Vec<f32>> = (0..50)
        .map(|i| qdata[if i == 0 { 0 } else { qends[i - 1] }..qends[i]].to_vec())
        .collect();
    let half = Graph::build_over(&holed, 1000, Metric::Dot, params(16));
    let g = half.extend_over(&holed, n, Metric::Dot, params(16));
    let kernel = Metric::Dot.kernel();
    let mut hits = 0;
    for q in &queries {
        let distance = |row: &[f32]| crate::index::distance::max_sim(kernel, dim, q, row);
        let mut exact: Vec<(u32, f32)> = (0..n as u32)
            .filter(|&i| i % 9 != 0)
            .map(|i| (i, distance(rows.row(i))))
            .collect();
        exact.sort_by(|a, b| a.1.total_cmp(&b.1));
        let truth: Vec<u32> = exact.iter().take(10).map(|e| e.0).collect();
        let got = g.search_by_rows(&rows, &distance, 10, 64, Accept::All);
        assert!(
            got.iter().all(|(o, _)| o % 9 != 0),
            "a point without the vector was found"
        );
        hits += got.iter().filter(|(o, _)| truth.contains(o)).count();
    }
    let recall = hits as f64 / 500.0;
    println!("multivector recall@10 extended {recall:.3}");
    assert!(recall >= 0.9, "extended: {recall}");
}
