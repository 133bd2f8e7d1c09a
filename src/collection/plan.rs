//! The query planner: for each segment, how a search is run, chosen from the payload indexes'
//! estimate of the filter's cardinality.
//!
//! - No filter: HNSW over the live points.
//! - The filter is narrowed by payload indexes (see [`crate::filter::index`]) into the set of
//!   candidate offsets, whose size is known exactly:
//!   - few candidates (at most the space's `full_scan_threshold` in points): score each one
//!     exactly: cheaper than a graph walk, and recall is 1;
//!   - more, in a dot-product (or cosine) space, unless the walk below is cheaper at this
//!     `ef` ([`CODE_SCAN_WORK_PER_EF`]): every candidate ranked by its one-bit sign code
//!     ([`crate::index::signs`]), read in the order of the filter's most selective indexed
//!     field, and the closest few scored exactly. It reads a 32nd of the floats' memory and
//!     never loses a candidate to a graph that the filter has thinned out;
//!   - under a fifth of the segment otherwise: HNSW that scores candidates only, reaching them
//!     across other nodes in two hops ([`Accept::Sparse`], ACORN-1), so the walk neither pays
//!     for rejected nodes nor loses the candidates' connectivity;
//!   - a larger share: filtered HNSW, walking through rejected nodes; where the space has sign
//!     codes, it scores those by an estimate from their code ([`Accept::Routed`]) and reads
//!     the floats of accepted nodes only.
//!
//!   Where the filter keeps one tenant that has a graph of its own ([`super::tenants`]), the
//!   choice between codes and a walk, and between walks, is made against that tenant's points
//!   instead of the segment's, and the walk is of the tenant's graph.
//! - The filter needs payloads (a field without an index, the append segment): sample its
//!   selectivity; scan exactly when it is selective, else HNSW checking each node's payload.
//!   Both are slower, and logged and counted as such.
//!
//! [`choose`] makes these decisions from [`Facts`] alone; `search.rs` gathers the facts and
//! carries the choice out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use utoipa::ToSchema;

use super::snapshot::{SegmentView, Snapshot};
use crate::bitset::Bitset;
use crate::filter::index::{Candidates, Narrower};
use crate::filter::{Filter, HasIdCondition};
#[cfg(doc)]
use crate::index::hnsw::Accept;

/// How one segment was searched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    /// HNSW, no filter.
    Graph,
    /// Every live point scored (a small collection, or `exact: true`).
    FullScan,
    /// Payload indexes gave few candidates; each was scored.
    IndexedScan,
    /// Payload indexes gave under 20% of the segment; HNSW scoring only those (two-hop).
    IndexedGraphSparse,
    /// Payload indexes gave a large share of the segment; HNSW checking each node against them.
    IndexedGraph,
    /// The filter keeps one tenant (a value of a field indexed with `is_tenant`): HNSW over
    /// that tenant's own points, checking each against the candidates.
    IndexedTenantGraph,
    /// Payload indexes gave more candidates than are scored one by one: all ranked by their
    /// one-bit sign codes, the closest scored exactly.
    IndexedCodeScan,
    /// The filter needs payloads and is selective: every point's payload read, matches scored.
    PayloadScan,
    /// The filter needs payloads: HNSW reading each visited node's payload.
    PayloadGraph,
}

impl Plan {
    pub const ALL: [Plan; 9] = [
        Plan::Graph,
        Plan::FullScan,
        Plan::IndexedScan,
        Plan::IndexedGraphSparse,
        Plan::IndexedGraph,
        Plan::IndexedTenantGraph,
        Plan::IndexedCodeScan,
        Plan::PayloadScan,
        Plan::PayloadGraph,
    ];

    /// The name metrics and telemetry use.
    pub fn name(self) -> &'static str {
        match self {
            Plan::Graph => "graph",
            Plan::FullScan => "full_scan",
            Plan::IndexedScan => "indexed_scan",
            Plan::IndexedGraphSparse => "indexed_graph_sparse",
            Plan::IndexedGraph => "indexed_graph",
            Plan::IndexedTenantGraph => "indexed_tenant_graph",
            Plan::IndexedCodeScan => "indexed_code_scan",
            Plan::PayloadScan => "payload_scan",
            Plan::PayloadGraph => "payload_graph",
        }
    }

    /// Whether the plan reads payloads to filter (no index could answer).
    pub fn reads_payloads(self) -> bool {
        matches!(self, Plan::PayloadScan | Plan::PayloadGraph)
    }
}

/// What the planner decided for one segment, as `?explain=true` reports it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SegmentPlan {
    pub segment: u64,
    /// Whether the segment has payload indexes. The segment new writes go to (at most the
    /// indexing threshold of points) and one waiting for its index build have none; their
    /// payloads are read.
    pub has_payload_indexes: bool,
    pub plan: Plan,
    /// Live points in the segment.
    pub live_points: usize,
    /// Candidates the payload indexes left (live ones), when they could answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidates: Option<usize>,
    /// Whether the candidates still had their payloads checked (part of the filter has no index).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub payload_checked: bool,
    /// Whether the graph found fewer than asked and the segment was then scanned exactly.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub fell_back_to_scan: bool,
}

impl SegmentPlan {
    /// Whether payloads were read for want of an index on a field (not because the segment
    /// has no indexes at all).
    pub fn missed_index(&self) -> bool {
        self.has_payload_indexes && (self.plan.reads_payloads() || self.payload_checked)
    }
}

/// What the planner knows of one segment and one search: all it decides from.
#[derive(Clone, Copy, Debug)]
pub struct Facts {
    /// Score every point exactly (`exact: true`, or a collection under its full-scan threshold).
    pub scan_all: bool,
    /// Candidate counts up to this are scored one by one (the space's full-scan threshold).
    pub few: usize,
    /// The search's beam width.
    pub ef: usize,
    /// Live points in the segment.
    pub live: usize,
    pub filter: FilterFacts,
    /// The request's override of [`DENSE_CANDIDATES`].
    pub two_hop_below: Option<f64>,
    /// The request's override of the code-scan cost rule: a share below which codes win.
    pub code_scan_below: Option<f64>,
    /// The segment has sign codes for the space (only indexed segments of dot-product and
    /// cosine spaces do).
    pub codes: bool,
    /// Walks may route by code estimates (codes exist and the request did not ask for exact
    /// routing).
    pub estimates: bool,
}

/// What the planner knows of the filter on one segment.
#[derive(Clone, Copy, Debug)]
pub enum FilterFacts {
    None,
    /// Payload indexes answered it.
    Indexed {
        /// Live candidates they left.
        candidates: usize,
        /// Whether the candidates match without a payload check.
        exact: bool,
        /// Points of the tenant graph holding every candidate, when there is one to walk.
        tenant: Option<usize>,
    },
    /// Only payloads can answer it; this share of a sample matched.
    Payloads {
        selectivity: f64,
    },
}

/// How one segment is searched: the planner's decision, which search.rs carries out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// HNSW over the live points.
    Graph,
    /// Every live point scored.
    FullScan,
    /// Every candidate of the payload indexes scored.
    IndexedScan,
    /// The candidates ranked by sign code, the closest scored exactly.
    CodeScan,
    /// A walk of the segment's graph, or of the tenant's graph (`tenant`), taking candidates
    /// as `walk` says.
    Walk { tenant: bool, walk: Walk },
    /// Every payload read, the matches scored.
    PayloadScan,
    /// HNSW reading each visited node's payload.
    PayloadGraph,
}

/// How a graph walk takes the candidates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Walk {
    /// Through rejected nodes, scoring each met node exactly ([`Accept::Check`]).
    Checked,
    /// Through rejected nodes, scored by their code estimate ([`Accept::Routed`]).
    Routed,
    /// Two-hop expansion over candidates only ([`Accept::Sparse`]).
    TwoHop,
    /// Every node is a candidate: an unfiltered walk ([`Accept::All`]).
    Whole,
}

impl Choice {
    /// The plan reported for it.
    pub fn plan(self) -> Plan {
        match self {
            Choice::Graph => Plan::Graph,
            Choice::FullScan => Plan::FullScan,
            Choice::IndexedScan => Plan::IndexedScan,
            Choice::CodeScan => Plan::IndexedCodeScan,
            Choice::Walk { tenant: true, .. } => Plan::IndexedTenantGraph,
            Choice::Walk {
                walk: Walk::TwoHop, ..
            } => Plan::IndexedGraphSparse,
            Choice::Walk { .. } => Plan::IndexedGraph,
            Choice::PayloadScan => Plan::PayloadScan,
            Choice::PayloadGraph => Plan::PayloadGraph,
        }
    }
}

/// The planner: how to search one segment, from what is known of it (see the module's notes).
pub fn choose(facts: &Facts) -> Choice {
    match facts.filter {
        FilterFacts::None if facts.scan_all => Choice::FullScan,
        FilterFacts::None => Choice::Graph,
        FilterFacts::Payloads { selectivity } => {
            if facts.scan_all || selectivity < SELECTIVE_FILTER {
                Choice::PayloadScan
            } else {
                Choice::PayloadGraph
            }
        }
        FilterFacts::Indexed {
            candidates,
            exact,
            tenant,
        } => {
            if facts.scan_all || candidates <= facts.few {
                return Choice::IndexedScan;
            }
            // Shares are of the graph that would be walked: the tenant's or the segment's.
            let nodes = tenant.unwrap_or(facts.live).max(1);
            let share = candidates as f64 / nodes as f64;
            if exact && facts.codes && code_scan_pays(facts, candidates, share) {
                return Choice::CodeScan;
            }
            let walk = if tenant == Some(candidates) && exact {
                Walk::Whole
            } else if !exact {
                Walk::Checked
            } else if share >= facts.two_hop_below.unwrap_or(DENSE_CANDIDATES) {
                match facts.estimates {
                    true => Walk::Routed,
                    false => Walk::Checked,
                }
            } else {
                Walk::TwoHop
            };
            Choice::Walk {
                tenant: tenant.is_some(),
                walk,
            }
        }
    }
}

/// Whether ranking `candidates`, `share` of the graph's nodes, by code costs less than
/// walking the graph at this `ef` ([`CODE_SCAN_WORK_PER_EF`]).
fn code_scan_pays(facts: &Facts, candidates: usize, share: f64) -> bool {
    match facts.code_scan_below {
        Some(below) => share < below,
        None => candidates as f64 * share < CODE_SCAN_WORK_PER_EF * facts.ef as f64,
    }
}

/// Live candidates from payload indexes, and whether each still needs a payload check.
pub struct Narrowed {
    pub set: Bitset,
    pub exact: bool,
}

/// A filter keeping less than this share of a segment, as estimated from payloads, is
/// answered by scanning (graph search would visit mostly rejected nodes).
pub const SELECTIVE_FILTER: f64 = 0.05;
/// From this share of candidates up, the plain filtered walk beats two-hop expansion: enough
/// neighbours pass that looking through the rest costs more than it finds. `vecdb
/// bench-filter` measures both: at 30% and 50% the walk was ahead at every recall, at 10%
/// two-hop was.
pub const DENSE_CANDIDATES: f64 = 0.2;
/// When ranking by sign code beats the filtered walk: a scan costs in proportion to the
/// candidates `c`, a walk to `ef / s` (it must pass about `1/s` nodes per accepted one, `s`
/// being the candidates' share of the segment), so codes win while `c · s < W · ef`. `vecdb
/// bench-filter` put one code comparison at about 1/300 of a walk's cost per unit of `ef`, the
/// walk routed by code estimates (116,659 × 384: codes won at 10% from ef 16, at 30% from
/// about ef 32, at 50% from about ef 128). Both costs grow alike with the dimension; a larger
/// segment favours the walk.
pub const CODE_SCAN_WORK_PER_EF: f64 = 300.0;
/// Candidates scored exactly after ranking by sign code, per unit of `ef` (the knob users
/// already turn for recall): at 4, `ef` 16 / 32 / 64 gave recall@10 0.92 / 0.97 / 0.99 on the
/// benchmark dataset.
pub const RESCORED_PER_EF: usize = 4;
/// Points sampled to estimate a filter's selectivity from payloads.
const SAMPLE: usize = 512;

/// The live offsets of `seg` a filter can match, from its payload indexes; `None` when they
/// cannot narrow the filter down.
pub fn narrow(snapshot: &Snapshot, seg: &SegmentView, filter: &Filter) -> Option<Narrowed> {
    let indexes = seg.indexes.as_ref()?;
    let ids = |c: &HasIdCondition| {
        let mut out = Bitset::default();
        for id in c.has_id.as_slice() {
            if let Some(loc) = snapshot.locations.get(id).filter(|l| l.segment == seg.id) {
                out.set(loc.offset as usize);
            }
        }
        out
    };
    let narrower = Narrower {
        indexes,
        len: seg.data.len(),
        ids: &ids,
    };
    let Candidates { set, exact } = narrower.candidates(filter);
    let mut set = match set {
        Some(set) => set,
        // A filter that matches everything (no conditions): every offset, nothing to check.
        None if exact => Bitset::full(seg.data.len()),
        None => return None,
    };
    set.and_not(&seg.deleted);
    Some(Narrowed { set, exact })
}

/// Fraction of a segment's live points a filter accepts, estimated from an even sample of
/// payloads.
pub fn sampled_selectivity(seg: &SegmentView, filter: &Filter) -> f64 {
    let len = seg.data.len();
    if len == 0 {
        return 1.0;
    }
    let step = (len / SAMPLE).max(1);
    let (mut seen, mut hit) = (0usize, 0usize);
    for o in (0..len).step_by(step).map(|o| o as u32) {
        if seg.is_live(o) {
            seen += 1;
            hit += usize::from(filter.matches(&seg.point(o)));
        }
    }
    if seen == 0 {
        1.0
    } else {
        hit as f64 / seen as f64
    }
}

/// Says, at most once a minute per process, that a filter read payloads because no index
/// answered it: the fix (an index) is the user's to make.
pub fn warn_unindexed(collection: &str) {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST.load(Ordering::Relaxed);
    if now >= last + 60
        && LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(collection, "a filtered search read payloads: no payload index answers its filter (counted in /telemetry as unindexed_filter_searches); create one with PUT /collections/{{name}}/index for speed");
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
