//! `vecdb bench-sparse`: exact sparse search over BM25 weights of the dataset's texts, through
//! the inverted index with MaxScore pruning, against a brute-force scan of every point.
//!
//! Each text of `texts.tsv.zst` ("lemma, lemma: gloss") is tokenized (runs of letters and
//! digits, lowercased); a base text's vector holds each term's BM25 document weight
//! tf·(k1 + 1) / (tf + k1·(1 − b + b·len/avglen)) with k1 = 1.2, b = 0.75, and a query text's
//! vector holds 1 per term times the term's IDF over the base (Qdrant's `modifier: idf`
//! arrangement: document weights stored, IDF applied to the query). Reported: index build
//! time, index memory per point, and queries/second of top-10 search one query at a time on
//! one thread, pruned and brute force, with a check that both return the same points.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::index::sparse::{idf, InvertedIndex, SparseVector};
use crate::index::TopK;

/// What to measure.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The dataset's `texts.tsv.zst` (read through the `zstd` command).
    #[arg(long, default_value = "../shared/data/texts.tsv.zst")]
    pub texts: PathBuf,
    /// Results per query.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Queries run by brute force (it is slow); all 1,000 run through the index.
    #[arg(long, default_value_t = 200)]
    pub brute_queries: usize,
}

const K1: f32 = 1.2;
const B: f32 = 0.75;

/// Lowercased runs of letters and digits.
fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The base and query texts of the dataset, in row order.
pub(super) fn read_texts(path: &PathBuf) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let mut child = Command::new("zstd")
        .arg("-dc")
        .arg(path)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot run zstd to read {}: {e}", path.display()))?;
    let out = child.stdout.take().expect("piped stdout");
    let (mut base, mut queries) = (Vec::new(), Vec::new());
    for line in std::io::BufReader::new(out).lines().skip(1) {
        let line = line?;
        let mut fields = line.splitn(4, '\t');
        let (split, text) = (fields.next(), fields.nth(2));
        match (split, text) {
            (Some("base"), Some(t)) => base.push(t.to_string()),
            (Some("query"), Some(t)) => queries.push(t.to_string()),
            _ => {}
        }
    }
    anyhow::ensure!(child.wait()?.success(), "zstd failed on {}", path.display());
    Ok((base, queries))
}

/// Term ids, and the BM25 document vectors of `docs`.
pub(super) fn documents(docs: &[String]) -> (HashMap<String, u32>, Vec<SparseVector>) {
    let mut vocabulary: HashMap<String, u32> = HashMap::new();
    let tokenized: Vec<Vec<String>> = docs.iter().map(|d| tokens(d)).collect();
    let average = tokenized.iter().map(Vec::len).sum::<usize>() as f32 / docs.len().max(1) as f32;
    let vectors = tokenized
        .iter()
        .map(|words| {
            let mut tf: HashMap<u32, f32> = HashMap::new();
            for w in words {
                let next = vocabulary.len() as u32;
                *tf.entry(*vocabulary.entry(w.clone()).or_insert(next))
                    .or_default() += 1.0;
            }
            let norm = K1 * (1.0 - B + B * words.len() as f32 / average);
            let (indices, values) = tf
                .into_iter()
                .map(|(term, f)| (term, f * (K1 + 1.0) / (f + norm)))
                .unzip();
            SparseVector::new(indices, values).expect("distinct terms, finite weights")
        })
        .collect();
    (vocabulary, vectors)
}

/// The known terms of a query text, each once, in order.
pub(super) fn query_terms(text: &str, vocabulary: &HashMap<String, u32>) -> Vec<u32> {
    let mut terms: Vec<u32> = tokens(text)
        .iter()
        .filter_map(|w| vocabulary.get(w).copied())
        .collect();
    terms.sort_unstable();
    terms.dedup();
    terms
}

/// A query text's vector: each known term once, weighted by its IDF over `df`.
fn query_vector(
    text: &str,
    vocabulary: &HashMap<String, u32>,
    df: &[usize],
    n: usize,
) -> SparseVector {
    let terms = query_terms(text, vocabulary);
    let values = terms.iter().map(|&t| idf(df[t as usize], n)).collect();
    SparseVector::new(terms, values).expect("distinct terms")
}

fn brute_force(points: &[SparseVector], query: &SparseVector, k: usize) -> Vec<(u32, f32)> {
    let mut top = TopK::new(k);
    for (o, p) in points.iter().enumerate() {
        if let Some(s) = query.dot(p) {
            top.push(o as u32, -s);
        }
    }
    top.into_sorted_vec()
        .into_iter()
        .map(|(o, d)| (o, -d))
        .collect()
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (base, query_texts) = read_texts(&args.texts)?;
    let (vocabulary, points) = documents(&base);
    let mut df = vec![0usize; vocabulary.len()];
    for p in &points {
        p.indices().iter().for_each(|&t| df[t as usize] += 1);
    }
    let queries: Vec<SparseVector> = query_texts
        .iter()
        .map(|t| query_vector(t, &vocabulary, &df, points.len()))
        .collect();
    let nnz: usize = points.iter().map(SparseVector::len).sum();
    println!(
        "{} base texts, {} queries, {} terms, {:.1} terms per text",
        points.len(),
        queries.len(),
        vocabulary.len(),
        nnz as f64 / points.len() as f64
    );
    let started = Instant::now();
    let index = InvertedIndex::build(points.iter().enumerate().map(|(o, p)| (o as u32, p)));
    let build = started.elapsed().as_secs_f64();
    let per_point = index.memory_bytes() as f64 / points.len() as f64;
    println!("index build {build:.3} s, {per_point:.1} bytes per point");
    let all = |_: u32| true;
    let started = Instant::now();
    let found: Vec<Vec<(u32, f32)>> = queries
        .iter()
        .map(|q| index.search(q, args.k, &all))
        .collect();
    let pruned_qps = queries.len() as f64 / started.elapsed().as_secs_f64();
    let brute_n = args.brute_queries.min(queries.len());
    let started = Instant::now();
    let exact: Vec<Vec<(u32, f32)>> = queries[..brute_n]
        .iter()
        .map(|q| brute_force(&points, q, args.k))
        .collect();
    let brute_qps = brute_n as f64 / started.elapsed().as_secs_f64();
    let same = found
        .iter()
        .zip(&exact)
        .filter(|(f, e)| {
            f.len() == e.len()
                && f.iter()
                    .zip(e.iter())
                    .all(|(a, b)| (a.1 - b.1).abs() <= 1e-4 * b.1.abs().max(1.0))
        })
        .count();
    println!(
        "top-{}: pruned index {pruned_qps:.0} QPS, brute force {brute_qps:.0} QPS ({:.1}x); {same} of {brute_n} answers equal to brute force (scores within 1e-4)",
        args.k,
        pruned_qps / brute_qps
    );
    anyhow::ensure!(
        same == brute_n,
        "the pruned search differs from brute force"
    );
    Ok(())
}
