//! Graphs per tenant. A keyword (or uuid) field indexed with `is_tenant: true` names the tenant
//! each point belongs to, and nearly every search then filters on one tenant. A filtered walk
//! of the segment's graph must pass through other tenants' points to reach this one's, so at
//! best it costs what an unfiltered search of the whole segment does; a graph over the tenant's
//! own points is walked like an unfiltered search over fewer points. So each sealed segment
//! gets, per tenant field, a graph per value that holds more than the full-scan threshold of
//! live points (fewer are scored one by one) and at most [`MAX_SHARE`] of them (the segment's
//! own graph serves larger ones as well), in every vector space.
//!
//! Graphs are built by a background job once a segment is built or merged, or when a field
//! becomes a tenant field (see `optimizer`); until then searches use the segment's graph. A
//! build that extends a segment keeps its offsets, so its graphs are carried over and the job
//! extends them with the points added, as the build extends the segment's own graph. They
//! are kept in `<id>.tg` beside the segment file, and dropped when their field stops being a
//! tenant field. A graph's members are the live points holding its value when it was built:
//! a sealed segment's payloads never change, so only deletions, which every search checks,
//! make a member stale.

use crate::error::Corrupt;
use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use super::config::VectorSpace;
use super::segment::{IndexedSegment, SpaceRows};
use crate::bitset::Bitset;
use crate::bytes::{put_prefixed, put_u32, Reader};
use crate::filter::index::{IndexSpec, PayloadSchema, SegmentIndexes};
use crate::filter::{parse_path, Condition, Filter, JsonPath, Match, MatchValue, ValueVariants};
use crate::index::hnsw::{Estimate, Holed, Picked, Subset};
use crate::index::{Graph, HnswParams};
use crate::storage::files;

/// Version of the `.tg` file layout.
pub const TENANT_FORMAT: u32 = 1;

/// Values holding more than this share of a segment's live points get no graph of their own:
/// the walk of the segment's graph, routed past the rest by code estimates, is about as fast,
/// without the memory and build time. `vecdb bench-filter` (116,659 × 384, ef 16 to 64)
/// measured a tenant of 30% at 1.02–1.07× unfiltered search's throughput in its graph against
/// 0.76–0.88× walking the segment's, and one of 50% at 0.77–0.90× against 0.81–0.87×.
pub const MAX_SHARE: f64 = 0.5;

/// The tenant graphs of one sealed segment.
#[derive(Default, Clone)]
pub struct TenantGraphs {
    /// The tenant fields (schema names) graphs were built for, with the spec they had then,
    /// including those where no value was large enough to get one.
    pub fields: Vec<(String, IndexSpec)>,
    pub graphs: Vec<Arc<TenantGraph>>,
    /// `Some(n)`: graphs carried over from the segment a build extended, whose offsets below
    /// `n` this segment keeps; they lack the points added after, so no search uses them, and
    /// a job extends them instead of building anew.
    pub carried: Option<usize>,
}

/// The graphs over the points holding one value of a tenant field.
pub struct TenantGraph {
    pub field: String,
    /// The field's path, as conditions name it.
    key: JsonPath,
    pub value: String,
    /// The segment offsets of the graphs' nodes, ascending: node `i` is `members[i]`.
    pub members: Vec<u32>,
    /// One graph per vector space.
    pub spaces: Vec<Graph>,
}

impl std::fmt::Debug for TenantGraphs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fields: Vec<&str> = self.fields.iter().map(|f| f.0.as_str()).collect();
        let graphs: Vec<(&str, &str, usize)> = self
            .graphs
            .iter()
            .map(|g| (g.field.as_str(), g.value.as_str(), g.members.len()))
            .collect();
        f.debug_struct("TenantGraphs")
            .field("fields", &fields)
            .field("graphs", &graphs)
            .field("carried", &self.carried)
            .finish()
    }
}

impl TenantGraphs {
    /// Whether some tenant field of `schema` has no graphs built for its spec.
    pub fn missing(&self, schema: &PayloadSchema) -> bool {
        self.carried.is_some()
            || wanted(schema)
                .any(|(name, spec)| !self.fields.iter().any(|f| f.0 == *name && f.1 == *spec))
    }

    /// The graphs of the fields `schema` still marks as tenant fields with the spec they were
    /// built for, if any others are held.
    pub fn retain(&self, schema: &PayloadSchema) -> Option<TenantGraphs> {
        let kept = |name: &str| {
            let held = self.fields.iter().find(|f| f.0 == name);
            held.is_some_and(|(_, spec)| spec.is_tenant() && schema.get(name) == Some(spec))
        };
        if self.fields.iter().all(|f| kept(&f.0)) {
            return None;
        }
        Some(TenantGraphs {
            fields: self.fields.iter().filter(|f| kept(&f.0)).cloned().collect(),
            graphs: self
                .graphs
                .iter()
                .filter(|g| kept(&g.field))
                .cloned()
                .collect(),
            carried: self.carried,
        })
    }

    /// The graph a search with `filter` may walk instead of the segment's: one whose value a
    /// `must` condition matches exactly (every point the filter accepts is then a member), the
    /// smallest if several are.
    pub fn find(&self, filter: &Filter) -> Option<&TenantGraph> {
        if self.graphs.is_empty() || self.carried.is_some() {
            return None;
        }
        let matched = filter.must.iter().filter_map(|c| match c {
            Condition::Field(f) => match &f.r#match {
                Some(Match::Value(MatchValue {
                    value: ValueVariants::String(v),
                })) => Some((&f.key, v.as_str())),
                _ => None,
            },
            _ => None,
        });
        matched
            .filter_map(|(key, value)| {
                let same = |g: &&Arc<TenantGraph>| g.key == *key && g.value == value;
                self.graphs.iter().find(same)
            })
            .min_by_key(|g| g.members.len())
            .map(|g| &**g)
    }

    /// These graphs as carried over to a segment whose first `len` offsets are the ones they
    /// were built over.
    pub fn carry(&self, len: usize) -> TenantGraphs {
        TenantGraphs {
            carried: Some(self.carried.unwrap_or(len).min(len)),
            ..self.clone()
        }
    }

    /// Graphs searches can use.
    pub fn usable(&self) -> usize {
        match self.carried {
            Some(_) => 0,
            None => self.graphs.len(),
        }
    }

    /// Heap bytes the graphs hold (for telemetry).
    pub fn memory_bytes(&self) -> usize {
        let one = |g: &Arc<TenantGraph>| {
            g.members.capacity() * 4 + g.spaces.iter().map(Graph::memory_bytes).sum::<usize>()
        };
        self.graphs.iter().map(one).sum()
    }
}

impl TenantGraph {
    /// The members' rows of one space's vectors, node `i` being `members[i]`.
    pub fn rows<'a>(&'a self, vectors: &'a [f32], dim: usize) -> Picked<'a> {
        Self::picked(vectors, dim, &self.members)
    }

    fn picked<'a>(vectors: &'a [f32], dim: usize, members: &'a [u32]) -> Picked<'a> {
        Picked {
            vectors,
            dim,
            picked: members,
        }
    }
}

/// Sign-code estimates of a tenant graph's nodes, read at their segment offsets.
pub struct MemberEstimate<'a> {
    pub inner: &'a dyn Estimate,
    pub members: &'a [u32],
}

impl Estimate for MemberEstimate<'_> {
    #[inline]
    fn estimate(&self, id: u32) -> f32 {
        self.members
            .get(id as usize)
            .map_or(f32::INFINITY, |&o| self.inner.estimate(o))
    }

    #[inline]
    fn prefetch(&self, id: u32) {
        if let Some(&o) = self.members.get(id as usize) {
            self.inner.prefetch(o);
        }
    }
}

/// What building one segment's tenant graphs reads.
pub struct Inputs<'a> {
    pub segment: &'a IndexedSegment,
    pub deleted: &'a Bitset,
    /// The segment's payload indexes, built for `schema`.
    pub indexes: &'a SegmentIndexes,
    pub schema: &'a PayloadSchema,
    pub spaces: &'a [VectorSpace],
    /// Values with at most this many live points get no graph.
    pub min_points: usize,
    pub seed: u64,
}

/// The tenant fields of `schema`.
fn wanted(schema: &PayloadSchema) -> impl Iterator<Item = (&String, &IndexSpec)> {
    schema.iter().filter(|(_, spec)| spec.is_tenant())
}

/// The tenant graphs `inputs.schema` asks for: those in `have` for a field still wanted are
/// kept, or extended with the points added since when they were carried over; the others are
/// built (in parallel on the current rayon pool).
pub fn build(inputs: &Inputs, have: &TenantGraphs) -> TenantGraphs {
    let have = have.retain(inputs.schema).unwrap_or_else(|| have.clone());
    let (mut out, carried) = match have.carried {
        Some(len) => (TenantGraphs::default(), Some((have, len))),
        None => (have, None),
    };
    let live = inputs.segment.ids.len() - inputs.deleted.count();
    // Graph builds compare rows with each other, in float32: narrow rows are widened, once.
    let mut floats = Vec::new();
    for (field, spec) in wanted(inputs.schema) {
        if out.fields.iter().any(|f| f.0 == *field) {
            continue;
        }
        // The field is marked done even without an index to read, or no job would ever end.
        out.fields.push((field.clone(), spec.clone()));
        let (Ok(key), Some(index)) = (parse_path(field), inputs.indexes.field_named(field)) else {
            continue;
        };
        let mut values = index.string_postings().unwrap_or_default();
        values.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (value, mut members) in values {
            members.retain(|&o| !inputs.deleted.get(o as usize));
            let n = members.len();
            if n <= inputs.min_points || n as f64 > MAX_SHARE * live as f64 {
                continue;
            }
            let old = carried.as_ref().and_then(|(have, len)| {
                let same = |g: &&Arc<TenantGraph>| g.field == *field && g.value == value;
                have.graphs.iter().find(same).map(|g| (g, *len))
            });
            if floats.is_empty() {
                let spaces = 0..inputs.spaces.len();
                floats = spaces.map(|s| inputs.segment.floats(s)).collect();
            }
            let graph = match old {
                Some((old, len)) => extend_one(inputs, &floats, old, &members, len),
                None => build_one(inputs, &floats, field, &key, value, members),
            };
            out.graphs.push(Arc::new(graph));
        }
    }
    out
}

/// HNSW parameters of a tenant graph of `members` points in space `s`.
fn params(inputs: &Inputs, s: usize, members: usize) -> HnswParams {
    let space = &inputs.spaces[s];
    HnswParams {
        m: space.hnsw.m,
        ef_construct: space.hnsw.ef_construct,
        seed: inputs.seed ^ (s as u64) << 32 ^ members as u64,
    }
}

/// The multivectors of space `s` of `members`, as graph rows (those lacking them left out).
fn multi_rows<'a>(
    inputs: &'a Inputs,
    floats: &'a [f32],
    s: usize,
    members: &'a [u32],
) -> Subset<'a, Holed<'a, SpaceRows<'a>>> {
    let segment = &inputs.segment;
    let rows = Holed {
        rows: SpaceRows::new(floats, segment.ends[s].as_deref(), segment.dims[s]),
        absent: segment.absent[s].as_ref(),
    };
    Subset {
        rows,
        picked: members,
    }
}

/// The graphs of one value, in every space.
fn build_one(
    inputs: &Inputs,
    floats: &[Cow<[f32]>],
    field: &str,
    key: &JsonPath,
    value: &str,
    members: Vec<u32>,
) -> TenantGraph {
    let spaces = inputs.spaces.iter().enumerate().map(|(s, space)| {
        let params = params(inputs, s, members.len());
        let metric = space.metric();
        if space.multi {
            return Graph::build_over(
                &multi_rows(inputs, &floats[s], s, &members),
                members.len(),
                metric,
                params,
            );
        }
        let rows = TenantGraph::picked(&floats[s], space.size, &members);
        Graph::build_picked(&rows, metric, params)
    });
    TenantGraph {
        field: field.to_string(),
        key: key.clone(),
        value: value.to_string(),
        spaces: spaces.collect(),
        members,
    }
}

/// `old`'s graphs (over offsets below `len`, some of which may have been deleted since) with
/// the `live` members from `len` on inserted.
fn extend_one(
    inputs: &Inputs,
    floats: &[Cow<[f32]>],
    old: &TenantGraph,
    live: &[u32],
    len: usize,
) -> TenantGraph {
    let mut members = old.members.clone();
    members.extend(live.iter().filter(|&&o| o as usize >= len));
    let spaces = inputs.spaces.iter().enumerate().map(|(s, space)| {
        let params = params(inputs, s, members.len());
        let metric = space.metric();
        if space.multi {
            let rows = multi_rows(inputs, &floats[s], s, &members);
            return old.spaces[s].extend_over(&rows, members.len(), metric, params);
        }
        let rows = TenantGraph::picked(&floats[s], space.size, &members);
        old.spaces[s].extend_picked(&rows, metric, params)
    });
    TenantGraph {
        field: old.field.clone(),
        key: old.key.clone(),
        value: old.value.clone(),
        spaces: spaces.collect(),
        members,
    }
}

/// Writes segment `id`'s tenant graphs durably; a failure is logged (the next start builds
/// them again).
pub fn write(dir: &Path, id: u64, graphs: &TenantGraphs, collection: &str) {
    let path = files::SegmentFile::Tenants.path(dir, id);
    if let Err(e) = files::write_atomic(&path, TENANT_FORMAT, &encode(graphs)) {
        tracing::warn!(collection, file = %path.display(), error = %e, "could not write a tenant graph file; its graphs will be built again at the next start");
    }
}

/// The tenant graphs of a segment of `len` offsets and `spaces` vector spaces loaded from
/// `dir`, for the fields `schema` still marks; none (to be built again) if the file is missing
/// or cannot be read.
pub fn load(
    dir: &Path,
    id: u64,
    len: usize,
    spaces: usize,
    schema: &PayloadSchema,
    collection: &str,
) -> TenantGraphs {
    if wanted(schema).next().is_none() {
        return TenantGraphs::default();
    }
    let path = files::SegmentFile::Tenants.path(dir, id);
    match files::read_checked(&path, TENANT_FORMAT).and_then(|b| decode(&b, len, spaces)) {
        Ok(graphs) => graphs.retain(schema).unwrap_or(graphs),
        Err(e) => {
            tracing::info!(collection, segment = id, reason = %e, "tenant graphs will be built again");
            TenantGraphs::default()
        }
    }
}

/// Layout (little-endian): `u32 count` of fields, each `name | spec as JSON`, then `u32
/// count` of graphs, each `field | value | u32 count | members | per space: u64 length | graph`
/// (see [`Graph::write_to`]); names, specs, fields and values are `u32 length | UTF-8`.
pub fn encode(graphs: &TenantGraphs) -> Vec<u8> {
    let mut out = Vec::new();
    put_u32(&mut out, graphs.fields.len());
    for (name, spec) in &graphs.fields {
        put_prefixed(&mut out, name.as_bytes());
        put_prefixed(&mut out, &serde_json::to_vec(spec).unwrap_or_default());
    }
    put_u32(&mut out, graphs.graphs.len());
    for g in &graphs.graphs {
        put_prefixed(&mut out, g.field.as_bytes());
        put_prefixed(&mut out, g.value.as_bytes());
        put_u32(&mut out, g.members.len());
        for m in &g.members {
            out.extend_from_slice(&m.to_le_bytes());
        }
        for graph in &g.spaces {
            let mut bytes = Vec::new();
            graph.write_to(&mut bytes);
            out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            out.extend_from_slice(&bytes);
        }
    }
    out
}

/// Reads what [`encode`] wrote, checking every count against the bytes left, members against
/// the segment's `len` (and their order), each graph against its members, and that graphs
/// name a listed field.
pub fn decode(bytes: &[u8], len: usize, spaces: usize) -> Result<TenantGraphs, Corrupt> {
    let mut r = Reader::new(bytes);
    let field = |r: &mut Reader| -> Result<(String, IndexSpec), Corrupt> {
        let name = r.string()?;
        let spec = serde_json::from_slice(r.prefixed()?).map_err(|e| format!("{name}: {e}"))?;
        Ok((name, spec))
    };
    let fields = (0..r.count(8)?)
        .map(|_| field(&mut r))
        .collect::<Result<Vec<_>, _>>()?;
    let mut graphs = Vec::new();
    for _ in 0..r.count(12)? {
        let field = r.string()?;
        let key = parse_path(&field).map_err(|_| format!("bad field name {field:?}"))?;
        if !fields.iter().any(|f| f.0 == field) {
            return corrupt!("a graph of unlisted field {field:?}");
        }
        let value = r.string()?;
        let members = (0..r.count(4)?)
            .map(|_| r.u32())
            .collect::<Result<Vec<_>, _>>()?;
        let ascending = members.windows(2).all(|w| w[0] < w[1]);
        if !ascending || members.last().is_some_and(|&m| m as usize >= len) {
            return corrupt!("members out of order or past the segment's {len} points");
        }
        let spaces = (0..spaces)
            .map(|_| {
                let n = usize::try_from(r.u64()?).map_err(|_| "graph too long")?;
                let graph = Graph::read_from(r.take(n)?)?;
                match graph.len() == members.len() {
                    true => Ok(graph),
                    false => corrupt!(
                        "a graph of {} nodes for {} members",
                        graph.len(),
                        members.len()
                    ),
                }
            })
            .collect::<Result<Vec<_>, Corrupt>>()?;
        let graph = TenantGraph {
            field,
            key,
            value,
            members,
            spaces,
        };
        graphs.push(Arc::new(graph));
    }
    if !r.is_empty() {
        return Err("bytes after the last graph".into());
    }
    Ok(TenantGraphs {
        fields,
        graphs,
        carried: None,
    })
}
