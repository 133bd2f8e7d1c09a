//! Nearest-neighbour search over one snapshot: each segment searched by the plan
//! [`super::plan`] picks for it, the hits merged into one ranking. Runs on a blocking thread;
//! takes no lock.

use std::cmp::Ordering;

use super::indexed::{Measure, SpaceScorer};
use super::plan::{
    choose, narrow, sampled_selectivity, Choice, Facts, FilterFacts, Narrowed, Plan, SegmentPlan,
    Walk, RESCORED_PER_EF,
};
use super::quantization::QuantizationSearchParams;
use super::segment::{IndexedSegment, SegmentData};
use super::snapshot::{SegmentView, Snapshot};
use super::tenants::{MemberEstimate, TenantGraph};
use crate::filter::Filter;
use crate::index::hnsw::{Accept, Estimate};
use crate::index::signs::Estimator;
use crate::index::typed::Kernels;
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
    /// searched in the graph; `None`: the planner's cost rule ([`super::plan::CODE_SCAN_WORK_PER_EF`]).
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
    for (i, seg) in snapshot.segments.iter().enumerate() {
        let seg = seg.for_space(params.space);
        if seg.live() == 0 {
            continue;
        }
        let (found, plan) = run.segment(&seg);
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
        let filter = self.params.filter;
        let narrowed = filter.and_then(|f| narrow(self.snapshot, seg, f));
        let tenant = match (filter, &narrowed) {
            (Some(f), Some(_)) => self.tenant_graph(seg, f),
            _ => None,
        };
        let choice = choose(&self.facts(seg, narrowed.as_ref(), tenant));
        let mut report = SegmentPlan {
            segment: seg.id,
            has_payload_indexes: seg.indexes.is_some(),
            plan: choice.plan(),
            live_points: seg.live(),
            candidates: narrowed.as_ref().map(|r| r.set.count()),
            payload_checked: narrowed.as_ref().is_some_and(|r| !r.exact),
            fell_back_to_scan: false,
        };
        let found = match (filter, &narrowed) {
            (None, _) => {
                let live = |o: u32| seg.is_live(o);
                self.graph_or_scan(seg, &mut report, Accept::Check(&live), seg.live())
            }
            (Some(f), None) => {
                let accept = |o: u32| seg.is_live(o) && f.matches(&seg.point(o));
                self.graph_or_scan(seg, &mut report, Accept::Check(&accept), seg.live())
            }
            (Some(f), Some(r)) => self.indexed(seg, f, r, tenant, choice, &mut report),
        };
        (found, report)
    }

    /// What the planner decides from: this search, the segment, what the payload indexes
    /// made of the filter (`narrowed`) and the tenant graph holding all candidates, if any.
    fn facts(
        &self,
        seg: &SegmentView,
        narrowed: Option<&Narrowed>,
        tenant: Option<&TenantGraph>,
    ) -> Facts {
        let tuning = &self.params.tuning;
        let codes = match &*seg.data {
            SegmentData::Indexed(data) => data.signs(self.params.space).is_some(),
            SegmentData::Plain(_) => false,
        };
        let filter = match (self.params.filter, narrowed) {
            (None, _) => FilterFacts::None,
            (Some(_), Some(r)) => FilterFacts::Indexed {
                candidates: r.set.count(),
                exact: r.exact,
                tenant: tenant.map(|t| t.members.len()),
            },
            (Some(f), None) => FilterFacts::Payloads {
                selectivity: sampled_selectivity(seg, f),
            },
        };
        Facts {
            scan_all: self.scan_all,
            few: self.few,
            ef: self.ef,
            live: seg.live(),
            filter,
            two_hop_below: tuning.two_hop_below,
            code_scan_below: tuning.code_scan_below,
            codes,
            estimates: codes && !tuning.exact_routing,
        }
    }

    /// Carries out `choice` for the candidates `r` the payload indexes gave for `filter`.
    fn indexed(
        &self,
        seg: &SegmentView,
        filter: &Filter,
        r: &Narrowed,
        tenant: Option<&TenantGraph>,
        choice: Choice,
        report: &mut SegmentPlan,
    ) -> Vec<(u32, f32)> {
        let set = &r.set;
        let checked = |o: u32| set.get(o as usize) && filter.matches(&seg.point(o));
        let cheap = |o: u32| set.get(o as usize);
        let accept: &dyn Fn(u32) -> bool = if r.exact { &cheap } else { &checked };
        match (choice, tenant) {
            (Choice::CodeScan, _) => self
                .code_scan(seg, r)
                .unwrap_or_else(|| self.scan(seg, set.iter(), accept)),
            (Choice::Walk { walk, .. }, Some(tenant)) => {
                self.tenant_walk(seg, tenant, r, walk, accept, report)
            }
            (Choice::Walk { walk, .. }, None) => {
                let estimator = self.estimator(seg, walk);
                let estimate = estimator.as_ref().map(|e| e as &dyn Estimate);
                let accept = taking(walk, accept, estimate);
                self.graph_or_scan(seg, report, accept, set.count())
            }
            _ => self.scan(seg, set.iter(), accept),
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

    /// The walk of `tenant`'s graph for candidates `r`, which all lie in it.
    fn tenant_walk(
        &self,
        seg: &SegmentView,
        tenant: &TenantGraph,
        r: &Narrowed,
        walk: Walk,
        accept: &dyn Fn(u32) -> bool,
        report: &mut SegmentPlan,
    ) -> Vec<(u32, f32)> {
        let members = &tenant.members;
        let member_accept = |node: u32| members.get(node as usize).is_some_and(|&o| accept(o));
        let estimator = self.estimator(seg, walk);
        let member_estimate = estimator
            .as_ref()
            .map(|inner| MemberEstimate { inner, members });
        let estimate = member_estimate.as_ref().map(|e| e as &dyn Estimate);
        let accept_node = taking(walk, &member_accept, estimate);
        let (space, params) = (self.params.space, self.params);
        let found = match (&*seg.data, tenant.spaces.get(space)) {
            (SegmentData::Indexed(data), Some(graph)) => {
                let (k, ef) = (self.k, self.ef);
                match data.vectors[space].as_f32() {
                    Some(vectors) => {
                        let rows = tenant.rows(vectors, data.dims[space]);
                        graph.search_picked(&rows, params.metric, params.vector, k, ef, accept_node)
                    }
                    None => {
                        let kernels = Kernels::of(params.metric);
                        let members = Some(&members[..]);
                        let scorer = stored_rows(data, space, members, kernels, params.vector);
                        graph.search_scored(&scorer, k, ef, accept_node)
                    }
                }
            }
            _ => Vec::new(),
        };
        if found.len() >= self.k.min(r.set.count()) {
            return found
                .into_iter()
                .map(|(node, d)| (members[node as usize], d))
                .collect();
        }
        // As in `graph_or_scan`: the graph missed candidates, so they are scored one by one.
        report.fell_back_to_scan = true;
        self.scan(seg, r.set.iter(), accept)
    }

    /// Sign-code estimates of the query's distances in `seg`, for a walk routed by them.
    fn estimator<'s>(&self, seg: &'s SegmentView, walk: Walk) -> Option<Estimator<'s>> {
        if walk != Walk::Routed {
            return None;
        }
        let SegmentData::Indexed(data) = &*seg.data else {
            return None;
        };
        let codes = data.signs(self.params.space)?;
        let query = codes.query(self.params.vector);
        Some(Estimator { codes, query })
    }

    /// The exact distances of the candidates `r` whose sign codes are closest to the query's,
    /// the best `k`; `None` when the segment has no codes for the space.
    fn code_scan(&self, seg: &SegmentView, r: &Narrowed) -> Option<Vec<(u32, f32)>> {
        let card = r.set.count();
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
        let kernels = Kernels::of(params.metric);
        let mut top = TopK::new(self.k);
        for (i, &o) in offsets.iter().enumerate() {
            if let Some(&next) = offsets.get(i + AHEAD) {
                seg.data.prefetch(params.space, next);
            }
            top.push(
                o,
                seg.data.distance(params.space, &kernels, params.vector, o),
            );
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
        let kernels = Kernels::of(params.metric);
        let mut top = TopK::new(self.k);
        for o in offsets.filter(|&o| accept(o)) {
            top.push(
                o,
                seg.data.distance(params.space, &kernels, params.vector, o),
            );
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
    let space = params.space;
    let kernels = Kernels::of(params.metric);
    let q = params.tuning.quantization;
    match data.quantized(space).filter(|_| !q.ignore) {
        Some(codes) => {
            let exact = |o: u32| data.distance(space, &kernels, params.vector, o);
            let rescore = q
                .rescore
                .unwrap_or(true)
                .then_some(&exact as &dyn Fn(u32) -> f32);
            // Oversampling widens the beam so at least limit × oversampling are rescored.
            let wide = (k as f64 * q.oversampling.unwrap_or(1.0)).ceil() as usize;
            let ef = ef.max(wide.min(MAX_OVERSAMPLED_EF));
            // Int8 distances are approximate already: estimates are not mixed in with them.
            let accept = accept.exact();
            graph.search_quantized(codes, rescore, params.vector, k, ef, accept)
        }
        None => match data.vectors[space].as_f32() {
            Some(vectors) => {
                let dim = data.dims[space];
                graph.search(vectors, dim, params.metric, params.vector, k, ef, accept)
            }
            None => {
                let scorer = stored_rows(data, space, None, kernels, params.vector);
                graph.search_scored(&scorer, k, ef, accept)
            }
        },
    }
}

/// A walk over the stored (narrow) rows of space `space`, from `query` under `kernels`.
fn stored_rows<'a>(
    data: &'a IndexedSegment,
    space: usize,
    picked: Option<&'a [u32]>,
    kernels: Kernels,
    query: &'a [f32],
) -> SpaceScorer<'a> {
    SpaceScorer {
        segment: data,
        space,
        picked,
        measure: Measure::Kernels(kernels, query),
    }
}

/// How a walk of kind `walk` takes nodes that `accept` checks, routed by `estimate` when it
/// is a routed walk.
fn taking<'a>(
    walk: Walk,
    accept: &'a dyn Fn(u32) -> bool,
    estimate: Option<&'a dyn Estimate>,
) -> Accept<'a> {
    match (walk, estimate) {
        (Walk::Whole, _) => Accept::All,
        (Walk::TwoHop, _) => Accept::Sparse(accept),
        (Walk::Routed, Some(e)) => Accept::Routed(accept, e),
        _ => Accept::Check(accept),
    }
}
