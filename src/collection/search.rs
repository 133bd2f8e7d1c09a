//! Nearest-neighbour search over one snapshot: each segment searched by the plan
//! [`super::plan`] picks for it, the hits merged into one ranking. Runs on a blocking thread;
//! takes no lock.

use std::cmp::Ordering;

use super::plan::{
    resolve, sampled_selectivity, Plan, Resolved, SegmentPlan, CODE_SCAN_WORK_PER_EF,
    DENSE_CANDIDATES, RESCORED_PER_EF, SELECTIVE_FILTER,
};
use super::quantization::QuantizationSearchParams;
use super::segment::{IndexedSegment, SegmentData};
use super::snapshot::{SegmentView, Snapshot};
use super::tenants::{MemberEstimate, TenantGraph};
use crate::filter::Filter;
use crate::index::hnsw::{prefetch_row, Accept, Estimate};
use crate::index::signs::Estimator;
use crate::index::{Metric, TopK};

/// A search over one vector space of one snapshot.
pub struct SearchParams<'a> {
    pub space: usize,
    /// The query, already validated (and normalised for cosine).
    pub vector: &'a [f32],
    /// How many results to return after skipping `offset`.
    pub limit: usize,
    pub offset: usize,
    pub filter: Option<&'a Filter>,
    pub tuning: Tuning,
    /// The space's index metric.
    pub metric: Metric,
}

/// How a search trades accuracy for speed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tuning {
    /// Beam width on HNSW segments; default is the space's `ef_construct`.
    pub ef: Option<usize>,
    /// Scan everything exactly, ignoring HNSW.
    pub exact: bool,
    /// Whether and how int8 codes are used on quantized segments.
    pub quantization: QuantizationSearchParams,
    /// Share of a segment below which indexed candidates are searched with two-hop expansion
    /// (Qdrant's `acorn.max_selectivity`); `None`: the planner's default.
    pub two_hop_below: Option<f64>,
    /// Share of a segment below which indexed candidates are ranked by sign code rather than
    /// searched in the graph; `None`: the planner's cost rule ([`CODE_SCAN_WORK_PER_EF`]).
    pub code_scan_below: Option<f64>,
    /// Filtered walks score the nodes they pass through exactly, not by sign-code estimate
    /// (see [`Accept::Routed`]); for comparing the two in benchmarks.
    pub exact_routing: bool,
}

/// One result: where the point is and its index distance (lower is closer).
#[derive(Clone, Copy, Debug)]
pub struct Hit {
    pub segment: usize,
    pub offset: u32,
    pub distance: f32,
}

impl PartialEq for Hit {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Hit {}
impl PartialOrd for Hit {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Hit {
    fn cmp(&self, other: &Self) -> Ordering {
        self.distance
            .total_cmp(&other.distance)
            .then(self.segment.cmp(&other.segment))
            .then(self.offset.cmp(&other.offset))
    }
}

/// Cap on the beam an `oversampling` factor can ask for.
const MAX_OVERSAMPLED_EF: usize = 100_000;

/// A search's hits and how each segment was searched.
pub struct Searched {
    /// Best first, `offset` already skipped.
    pub hits: Vec<Hit>,
    pub plans: Vec<SegmentPlan>,
}

/// Runs a search over every segment of the snapshot, each with its own plan.
pub fn search(snapshot: &Snapshot, params: &SearchParams) -> Searched {
    let k = params.limit.saturating_add(params.offset);
    if k == 0 {
        return Searched {
            hits: Vec::new(),
            plans: Vec::new(),
        };
    }
    let space = &snapshot.spaces[params.space];
    // A collection this small is searched exactly, as Qdrant searches one below its indexing
    // threshold (client test suites compare such results with exact ones).
    let small = snapshot.points_count() < snapshot.config.full_scan_threshold_points(space);
    let run = Run {
        snapshot,
        params,
        k,
        ef: params.tuning.ef.unwrap_or(space.hnsw.ef_construct).max(k),
        scan_all: params.tuning.exact || small,
        few: snapshot.config.full_scan_threshold_points(space),
    };
    let mut all = Vec::new();
    let mut plans = Vec::with_capacity(snapshot.segments.len());
    // An empty segment (a fresh append segment, say) has nothing to plan or count.
    for (i, seg) in snapshot
        .segments
        .iter()
        .enumerate()
        .filter(|(_, s)| s.live() > 0)
    {
        let (found, plan) = run.segment(seg);
        all.extend(found.into_iter().map(|(offset, distance)| Hit {
            segment: i,
            offset,
            distance,
        }));
        plans.push(plan);
    }
    all.sort_unstable();
    let hits = all
        .into_iter()
        .skip(params.offset)
        .take(params.limit)
        .collect();
    Searched { hits, plans }
}

/// Entries of a field's order, per candidate, up to which reading the candidates' codes in
/// that order beats reading them in offset order.
const RUNS_PER_CANDIDATE: usize = 4;

/// One search's settings, shared by its segments.
struct Run<'a> {
    snapshot: &'a Snapshot,
    params: &'a SearchParams<'a>,
    k: usize,
    ef: usize,
    /// Score every point exactly.
    scan_all: bool,
    /// Candidate counts up to this are scored one by one rather than searched in the graph.
    few: usize,
}

impl Run<'_> {
    /// Plans and runs the search of one segment.
    fn segment(&self, seg: &SegmentView) -> (Vec<(u32, f32)>, SegmentPlan) {
        let mut report = SegmentPlan {
            segment: seg.id,
            has_payload_indexes: seg.indexes.is_some(),
            plan: Plan::Graph,
            live_points: seg.live(),
            candidates: None,
            payload_checked: false,
            fell_back_to_scan: false,
        };
        let filter = self.params.filter;
        let resolved = filter.and_then(|f| resolve(self.snapshot, seg, f));
        let live = |o: u32| seg.is_live(o);
        let found = match (filter, resolved) {
            (None, _) => {
                report.plan = if self.scan_all {
                    Plan::FullScan
                } else {
                    Plan::Graph
                };
                self.graph_or_scan(seg, &mut report, Accept::Check(&live), seg.live())
            }
            (Some(f), Some(r)) => {
                let card = r.set.count();
                report.candidates = Some(card);
                report.payload_checked = !r.exact;
                let set = &r.set;
                let checked = |o: u32| set.get(o as usize) && f.matches(&seg.point(o));
                let cheap = |o: u32| set.get(o as usize);
                let accept: &dyn Fn(u32) -> bool = if r.exact { &cheap } else { &checked };
                let share = card as f64 / seg.live().max(1) as f64;
                if self.scan_all || card <= self.few {
                    report.plan = Plan::IndexedScan;
                    self.scan(seg, set.iter(), accept)
                } else if let Some(tenant) = self.tenant_graph(seg, f) {
                    self.tenant_walk(seg, tenant, (&r, card), accept, &mut report)
                } else if let Some(found) = self.code_scan(seg, (&r, card), share) {
                    report.plan = Plan::IndexedCodeScan;
                    found
                } else {
                    let estimator = self.estimator(seg);
                    let estimate = estimator.as_ref().map(|e| e as &dyn Estimate);
                    let walk = self.walk(&r, share, accept, estimate, &mut report);
                    self.graph_or_scan(seg, &mut report, walk, card)
                }
            }
            (Some(f), None) => {
                let accept = |o: u32| seg.is_live(o) && f.matches(&seg.point(o));
                let selective = sampled_selectivity(seg, f) < SELECTIVE_FILTER;
                report.plan = if self.scan_all || selective {
                    Plan::PayloadScan
                } else {
                    Plan::PayloadGraph
                };
                self.graph_or_scan(seg, &mut report, Accept::Check(&accept), seg.live())
            }
        };
        (found, report)
    }

    /// How a walk takes the candidates `r`, `share` of the nodes of the graph walked: through
    /// rejected nodes, or by two-hop expansion when the candidates are few. A walk through
    /// rejected nodes is routed by code estimates where there are codes and the check is a
    /// bitset lookup: it checks every neighbour it meets, where the plain walk checks only those
    /// close enough to enter the results, which matters when a check reads a payload. Sets the
    /// report's plan to the segment graph's.
    fn walk<'a>(
        &self,
        r: &Resolved,
        share: f64,
        accept: &'a dyn Fn(u32) -> bool,
        estimator: Option<&'a dyn Estimate>,
        report: &mut SegmentPlan,
    ) -> Accept<'a> {
        let below = self.params.tuning.two_hop_below.unwrap_or(DENSE_CANDIDATES);
        report.plan = Plan::IndexedGraph;
        if !r.exact {
            Accept::Check(accept)
        } else if share >= below {
            match estimator {
                Some(e) => Accept::Routed(accept, e),
                None => Accept::Check(accept),
            }
        } else {
            report.plan = Plan::IndexedGraphSparse;
            Accept::Sparse(accept)
        }
    }

    /// The tenant graph of `seg` that holds every point `filter` accepts, if there is one and
    /// the space is searched in floats (a quantized one is walked over its int8 codes in the
    /// segment's graph).
    fn tenant_graph<'s>(&self, seg: &'s SegmentView, filter: &Filter) -> Option<&'s TenantGraph> {
        let SegmentData::Indexed(data) = &*seg.data else {
            return None;
        };
        let quantized = data.quantized(self.params.space).is_some();
        if quantized && !self.params.tuning.quantization.ignore {
            return None;
        }
        seg.tenants.find(filter)
    }

    /// The search of candidates `r` that all lie in `tenant`: their codes ranked, or a walk of
    /// the tenant's graph, chosen as for the segment's graph but against the tenant's points.
    fn tenant_walk(
        &self,
        seg: &SegmentView,
        tenant: &TenantGraph,
        (r, card): (&Resolved, usize),
        accept: &dyn Fn(u32) -> bool,
        report: &mut SegmentPlan,
    ) -> Vec<(u32, f32)> {
        let share = card as f64 / tenant.members.len().max(1) as f64;
        if let Some(found) = self.code_scan(seg, (r, card), share) {
            report.plan = Plan::IndexedCodeScan;
            return found;
        }
        let members = &tenant.members;
        let member_accept = |node: u32| members.get(node as usize).is_some_and(|&o| accept(o));
        // Every member is a candidate: the walk is an unfiltered one over the tenant, with no
        // node to reject and so nothing to estimate.
        let whole = r.exact && card == members.len();
        let estimator = (!whole).then(|| self.estimator(seg)).flatten();
        let member_estimate = estimator
            .as_ref()
            .map(|inner| MemberEstimate { inner, members });
        let estimate = member_estimate.as_ref().map(|e| e as &dyn Estimate);
        let walk = match whole {
            true => Accept::All,
            false => self.walk(r, share, &member_accept, estimate, report),
        };
        report.plan = Plan::IndexedTenantGraph;
        let (space, params) = (self.params.space, self.params);
        let found = match (&*seg.data, tenant.spaces.get(space)) {
            (SegmentData::Indexed(data), Some(graph)) => {
                let rows = tenant.rows(&data.vectors[space], data.dims[space]);
                graph.search_picked(&rows, params.metric, params.vector, self.k, self.ef, walk)
            }
            _ => Vec::new(),
        };
        if found.len() >= self.k.min(card) {
            return found
                .into_iter()
                .map(|(node, d)| (members[node as usize], d))
                .collect();
        }
        // As in `graph_or_scan`: the graph missed candidates, so they are scored one by one.
        report.fell_back_to_scan = true;
        self.scan(seg, r.set.iter(), accept)
    }

    /// Sign-code estimates of the query's distances in `seg`, if its space has codes.
    fn estimator<'s>(&self, seg: &'s SegmentView) -> Option<Estimator<'s>> {
        if self.params.tuning.exact_routing {
            return None;
        }
        let SegmentData::Indexed(data) = &*seg.data else {
            return None;
        };
        let codes = data.signs(self.params.space)?;
        let query = codes.query(self.params.vector);
        Some(Estimator { codes, query })
    }

    /// The exact distances of the `card` candidates `r` whose sign codes are closest to the
    /// query's, the best `k`; `None` when codes do not apply (the space has none, the
    /// candidates need payload checks) or the graph whose nodes they are `share` of is cheaper
    /// to walk for this many candidates at this `ef`.
    fn code_scan(
        &self,
        seg: &SegmentView,
        (r, card): (&Resolved, usize),
        share: f64,
    ) -> Option<Vec<(u32, f32)>> {
        let pays = match self.params.tuning.code_scan_below {
            Some(below) => share < below,
            None => card as f64 * share < CODE_SCAN_WORK_PER_EF * self.ef as f64,
        };
        if !r.exact || !pays {
            return None;
        }
        let SegmentData::Indexed(data) = &*seg.data else {
            return None;
        };
        let codes = data.signs(self.params.space)?;
        let keep = self.ef.saturating_mul(RESCORED_PER_EF).max(self.k);
        let query = codes.query(self.params.vector);
        let filter = self.params.filter?;
        let runs = seg.indexes.as_ref()?.code_runs(self.params.space, filter);
        // Runs are streamed, scattered candidates each cost a miss: runs win unless they hold
        // many times more entries than there are candidates.
        let closest = match runs.filter(|runs| runs.len <= RUNS_PER_CANDIDATE * card) {
            Some(runs) => codes.closest_in_runs(
                &query,
                runs.arranged,
                runs.order,
                &runs.runs,
                // Runs holding every candidate and as many entries hold nothing else.
                (runs.len != card).then(|| r.set.words()),
                keep,
            ),
            None => codes.closest(&query, r.set.words(), keep),
        };
        Some(self.rescore(seg, &closest))
    }

    /// Runs `report.plan` when it is a graph plan (falling back to scanning when the graph
    /// returns fewer than min(k, `most`) hits), else scans every offset through `accept`.
    fn graph_or_scan(
        &self,
        seg: &SegmentView,
        report: &mut SegmentPlan,
        accept: Accept,
        most: usize,
    ) -> Vec<(u32, f32)> {
        let graph_plan = !matches!(report.plan, Plan::FullScan | Plan::PayloadScan);
        let test = |o: u32| accept.test(o);
        if graph_plan {
            // The graph can miss points: tombstones all around the query, or a part of the
            // graph its entry point does not reach. Fewer hits than the segment could give
            // means that happened, so it is scanned instead: a search never returns fewer
            // than `limit` points when that many exist and match.
            match approximate(seg, self.params, self.k, self.ef, accept) {
                Some(hits) if hits.len() >= self.k.min(most) => return hits,
                Some(_) => report.fell_back_to_scan = true,
                None => {}
            }
        }
        self.scan(seg, 0..seg.data.len() as u32, &test)
    }

    /// Exact top-k of `offsets` of one segment, loading each vector a few ahead of its use.
    fn rescore(&self, seg: &SegmentView, offsets: &[u32]) -> Vec<(u32, f32)> {
        const AHEAD: usize = 4;
        let params = self.params;
        let row = |o: u32| seg.data.vector(params.space, o);
        let mut top = TopK::new(self.k);
        for (i, &o) in offsets.iter().enumerate() {
            if let Some(&next) = offsets.get(i + AHEAD) {
                let ahead = row(next);
                prefetch_row(ahead.as_ptr() as *const u8, ahead.len() * 4, 32);
            }
            top.push(o, params.metric.distance(params.vector, row(o)));
        }
        top.into_sorted_vec()
    }

    /// Exact top-k over `offsets` of one segment that `accept` takes.
    fn scan(
        &self,
        seg: &SegmentView,
        offsets: impl Iterator<Item = u32>,
        accept: &dyn Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        let params = self.params;
        let mut top = TopK::new(self.k);
        for o in offsets.filter(|&o| accept(o)) {
            let v = seg.data.vector(params.space, o);
            top.push(o, params.metric.distance(params.vector, v));
        }
        top.into_sorted_vec()
    }
}

/// HNSW search of one segment, `None` if it has no graph for the space.
fn approximate(
    seg: &SegmentView,
    params: &SearchParams,
    k: usize,
    ef: usize,
    accept: Accept,
) -> Option<Vec<(u32, f32)>> {
    match &*seg.data {
        SegmentData::Indexed(data) => {
            let graph = data.graphs.get(params.space)?;
            Some(graph_search(data, graph, params, k, ef, accept))
        }
        SegmentData::Plain(plain) => plain.search_live(params.space, params.vector, k, ef, accept),
    }
}

/// HNSW search of one indexed segment: over int8 codes when the space is quantized (unless the
/// request says `ignore`), rescoring the kept candidates with the floats unless `rescore: false`.
fn graph_search(
    data: &IndexedSegment,
    graph: &crate::index::Graph,
    params: &SearchParams,
    k: usize,
    ef: usize,
    accept: Accept,
) -> Vec<(u32, f32)> {
    let (space, dim) = (params.space, data.dims[params.space]);
    let vectors = &data.vectors[space];
    let q = params.tuning.quantization;
    match data.quantized(space).filter(|_| !q.ignore) {
        Some(codes) => {
            let originals = q.rescore.unwrap_or(true).then_some(vectors.as_slice());
            // Oversampling widens the beam so at least limit × oversampling are rescored.
            let wide = (k as f64 * q.oversampling.unwrap_or(1.0)).ceil() as usize;
            let ef = ef.max(wide.min(MAX_OVERSAMPLED_EF));
            // Int8 distances are approximate already: estimates are not mixed in with them.
            let accept = accept.exact();
            graph.search_quantized(
                codes,
                originals,
                dim,
                params.metric,
                params.vector,
                k,
                ef,
                accept,
            )
        }
        None => graph.search(vectors, dim, params.metric, params.vector, k, ef, accept),
    }
}
