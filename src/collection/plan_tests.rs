//! The planner's decisions, one rule at a time, from facts alone.

use super::*;

/// A segment of 10,000 live points with codes, searched at ef 64 with a full-scan threshold
/// of 100 points, and no filter.
fn facts() -> Facts {
    Facts {
        scan_all: false,
        few: 100,
        ef: 64,
        live: 10_000,
        filter: FilterFacts::None,
        two_hop_below: None,
        code_scan_below: None,
        codes: true,
        estimates: true,
    }
}

fn indexed(candidates: usize, exact: bool, tenant: Option<usize>) -> Facts {
    Facts {
        filter: FilterFacts::Indexed {
            candidates,
            exact,
            tenant,
        },
        ..facts()
    }
}

fn walk(tenant: bool, walk: Walk) -> Choice {
    Choice::Walk { tenant, walk }
}

#[test]
fn without_a_filter_the_graph_unless_everything_is_scanned() {
    assert_eq!(choose(&facts()), Choice::Graph);
    let all = Facts {
        scan_all: true,
        ..facts()
    };
    assert_eq!(choose(&all), Choice::FullScan);
}

#[test]
fn few_candidates_are_scored_one_by_one() {
    assert_eq!(choose(&indexed(100, true, None)), Choice::IndexedScan);
    assert_eq!(choose(&indexed(100, false, None)), Choice::IndexedScan);
    let all = Facts {
        scan_all: true,
        ..indexed(5_000, true, None)
    };
    assert_eq!(choose(&all), Choice::IndexedScan);
}

#[test]
fn codes_rank_the_candidates_while_cheaper_than_a_walk() {
    // 1,000 candidates, 10%: 1,000 × 0.1 = 100 < 300 × 64.
    assert_eq!(choose(&indexed(1_000, true, None)), Choice::CodeScan);
    // 5,000 candidates, 50%: 2,500 < 19,200 still; at ef 8 a walk is cheaper (2,500 > 2,400).
    assert_eq!(choose(&indexed(5_000, true, None)), Choice::CodeScan);
    let narrow = Facts {
        ef: 8,
        ..indexed(5_000, true, None)
    };
    assert_eq!(choose(&narrow), walk(false, Walk::Routed));
}

#[test]
fn codes_need_exact_candidates_and_codes() {
    assert_eq!(
        choose(&indexed(1_000, false, None)),
        walk(false, Walk::Checked)
    );
    let no_codes = Facts {
        codes: false,
        estimates: false,
        ..indexed(1_000, true, None)
    };
    assert_eq!(choose(&no_codes), walk(false, Walk::TwoHop));
}

#[test]
fn a_walk_takes_few_candidates_in_two_hops_and_many_through_rejected_nodes() {
    let at = |candidates, estimates| Facts {
        code_scan_below: Some(0.0),
        estimates,
        ..indexed(candidates, true, None)
    };
    assert_eq!(choose(&at(1_999, true)), walk(false, Walk::TwoHop));
    assert_eq!(choose(&at(2_000, true)), walk(false, Walk::Routed));
    assert_eq!(choose(&at(2_000, false)), walk(false, Walk::Checked));
}

#[test]
fn requests_override_the_thresholds() {
    let two_hop = Facts {
        two_hop_below: Some(0.6),
        code_scan_below: Some(0.0),
        ..indexed(5_000, true, None)
    };
    assert_eq!(choose(&two_hop), walk(false, Walk::TwoHop));
    let codes = Facts {
        code_scan_below: Some(0.9),
        ef: 1,
        ..indexed(8_000, true, None)
    };
    assert_eq!(choose(&codes), Choice::CodeScan);
}

#[test]
fn a_tenant_is_planned_against_its_own_points() {
    // 600 candidates are 6% of the segment but 60% of a 1,000-point tenant: a routed walk of
    // the tenant's graph once codes are ruled out.
    let tenant = Facts {
        code_scan_below: Some(0.5),
        ..indexed(600, true, Some(1_000))
    };
    assert_eq!(choose(&tenant), walk(true, Walk::Routed));
    let whole = Facts {
        code_scan_below: Some(0.5),
        ..indexed(1_000, true, Some(1_000))
    };
    assert_eq!(choose(&whole), walk(true, Walk::Whole));
    assert_eq!(choose(&indexed(600, true, Some(1_000))), Choice::CodeScan);
    assert_eq!(walk(true, Walk::TwoHop).plan(), Plan::IndexedTenantGraph);
}

#[test]
fn payload_filters_scan_when_selective() {
    let payloads = |selectivity| Facts {
        filter: FilterFacts::Payloads { selectivity },
        ..facts()
    };
    assert_eq!(choose(&payloads(0.01)), Choice::PayloadScan);
    assert_eq!(choose(&payloads(0.5)), Choice::PayloadGraph);
    let all = Facts {
        scan_all: true,
        ..payloads(0.5)
    };
    assert_eq!(choose(&all), Choice::PayloadScan);
}

#[test]
fn each_choice_reports_its_plan() {
    assert_eq!(Choice::CodeScan.plan(), Plan::IndexedCodeScan);
    assert_eq!(walk(false, Walk::TwoHop).plan(), Plan::IndexedGraphSparse);
    assert_eq!(walk(false, Walk::Routed).plan(), Plan::IndexedGraph);
    assert_eq!(walk(false, Walk::Checked).plan(), Plan::IndexedGraph);
}
