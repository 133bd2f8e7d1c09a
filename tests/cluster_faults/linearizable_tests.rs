//! The checker against hand-made histories, and against an exhaustive search on random small ones.

use super::*;

fn op(action: Action, call: u128, ret: Option<u128>) -> Op {
    Op {
        key: 1,
        action,
        call,
        ret,
    }
}

fn w(v: u64, call: u128, ret: u128) -> Op {
    op(Action::Write(Some(v)), call, Some(ret))
}

fn r(v: Option<u64>, call: u128, ret: u128) -> Op {
    op(Action::Read(v), call, Some(ret))
}

#[test]
fn accepts_overlapping_reads_either_way_and_refuses_stale_ones() {
    // A read overlapping a write may see either value.
    assert!(check(&[w(1, 0, 10), w(2, 20, 40), r(Some(1), 25, 30)]).is_ok());
    assert!(check(&[w(1, 0, 10), w(2, 20, 40), r(Some(2), 25, 30)]).is_ok());
    // After the second write returned, the first value is stale.
    assert!(check(&[w(1, 0, 10), w(2, 20, 40), r(Some(1), 50, 60)]).is_err());
    // A value never written cannot be read.
    assert!(check(&[w(1, 0, 10), r(Some(9), 20, 30)]).is_err());
}

#[test]
fn concurrent_reads_must_agree_on_one_order() {
    // Two writes overlap; two later overlapping reads may see them in either order, but
    // once a read that began after another ended sees the older value, time went back.
    let writes = [w(1, 0, 100), w(2, 0, 100)];
    let ok = [r(Some(1), 10, 20), r(Some(2), 30, 40), r(Some(2), 50, 60)];
    let back = [r(Some(1), 10, 20), r(Some(2), 30, 40), r(Some(1), 50, 60)];
    let history = |reads: &[Op]| [&writes[..], reads].concat();
    assert!(check(&history(&ok)).is_ok());
    assert!(check(&history(&back)).is_err());
}

#[test]
fn unknown_writes_may_apply_late_or_never() {
    let unknown = op(Action::Write(Some(5)), 0, None);
    let read = |v: Option<u64>, c| r(v, c, c + 1);
    assert!(check(&[unknown.clone(), read(None, 10), read(Some(5), 20)]).is_ok());
    assert!(check(&[unknown.clone(), read(None, 10)]).is_ok());
    // But once seen it cannot be unseen.
    assert!(check(&[unknown.clone(), read(Some(5), 10), read(None, 20)]).is_err());
    // Nor can it take effect twice.
    let delete = op(Action::Write(None), 30, Some(31));
    let twice = [
        unknown,
        read(Some(5), 10),
        delete,
        read(None, 40),
        read(Some(5), 50),
    ];
    assert!(check(&twice).is_err());
}

#[test]
fn an_unknown_upsert_can_make_a_later_edit_take_effect() {
    let unknown = op(Action::Write(Some(5)), 0, None);
    let edit = op(Action::SetIfPresent(7), 10, Some(20));
    assert!(check(&[unknown, edit.clone(), r(Some(7), 30, 40)]).is_ok());
    // Without it the point never existed, so the edit changed nothing.
    assert!(check(&[edit, r(Some(7), 30, 40)]).is_err());
}

#[test]
fn edits_apply_only_to_present_points() {
    let edit = op(Action::SetIfPresent(7), 0, Some(5));
    let read = |v: Option<u64>| r(v, 10, 11);
    assert!(check(&[edit.clone(), read(None)]).is_ok());
    assert!(check(&[edit, read(Some(7))]).is_err());
}

#[test]
fn thousands_of_unknown_writes_stay_tractable() {
    // Every other write's outcome is unknown, and none of them is ever seen: the checker
    // must carry them all to the end without trying their orders.
    let mut history = Vec::new();
    for n in 0..3_000u64 {
        let t = u128::from(n) * 100;
        history.push(op(Action::Write(Some(1_000_000 + n)), t, None));
        history.push(w(n, t + 10, t + 30));
        history.push(r(Some(n), t + 40, t + 50));
    }
    let started = std::time::Instant::now();
    assert!(check(&history).is_ok());
    // The last unknown write may be read after everything.
    history.push(r(Some(1_002_999), 400_000, 400_010));
    assert!(check(&history).is_ok());
    // But then the known write before it cannot be read again.
    history.push(r(Some(2_999), 400_020, 400_030));
    assert!(check(&history).is_err());
    eprintln!(
        "checked 9,000 operations three times in {:?}",
        started.elapsed()
    );
}

/// Whether `ops` linearize, by trying every order: the definition, for small histories.
fn exhaustive(ops: &[Op]) -> bool {
    fn search(ops: &[Op], done: &mut Vec<bool>, state: Option<u64>) -> bool {
        let pending_known = (0..ops.len()).filter(|&i| !done[i] && ops[i].ret.is_some());
        let Some(horizon) = pending_known.filter_map(|i| ops[i].ret).min() else {
            return true; // every known operation took effect; the unknown ones need not
        };
        for i in 0..ops.len() {
            if done[i] || ops[i].call > horizon {
                continue;
            }
            if let Some(after) = apply(state, ops[i].action) {
                done[i] = true;
                let found = search(ops, done, after);
                done[i] = false;
                if found {
                    return true;
                }
            }
        }
        false
    }
    search(ops, &mut vec![false; ops.len()], None)
}

/// A random history of a few overlapping operations on one key, with unique written values
/// (as the fault harness's are) and reads of values that were or were not written.
fn random_history(rng: &mut crate::common::Rng) -> Vec<Op> {
    let n = 3 + rng.below(5);
    (0..n)
        .map(|v| {
            let call = u128::from(rng.below(60));
            let ret = call + 1 + u128::from(rng.below(30));
            let value = |rng: &mut crate::common::Rng| match rng.below(n + 1) {
                0 => None,
                v => Some(v),
            };
            let action = match rng.below(10) {
                0..=2 => Action::Write(Some(v + 1)),
                3 => Action::Write(None),
                4 => Action::SetIfPresent(v + 1),
                _ => Action::Read(value(rng)),
            };
            let unknown = !matches!(action, Action::Read(_)) && rng.below(3) == 0;
            op(action, call, (!unknown).then_some(ret))
        })
        .collect()
}

#[test]
fn agrees_with_trying_every_order() {
    let seed = crate::common::seed();
    let mut rng = crate::common::Rng(seed);
    let (mut yes, mut no) = (0, 0);
    for _ in 0..20_000 {
        let history = random_history(&mut rng);
        let expected = exhaustive(&history);
        assert_eq!(
            check(&history).is_ok(),
            expected,
            "seed {seed}: {history:#?}"
        );
        if expected {
            yes += 1
        } else {
            no += 1
        }
    }
    // Both answers must be common, or the comparison says little.
    assert!(yes > 2_000 && no > 2_000, "{yes} linearizable, {no} not");
}
