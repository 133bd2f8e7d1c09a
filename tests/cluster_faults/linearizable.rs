//! A linearizability checker for a history of registers (one per key), in the style of
//! Wing & Gong with Lowe's memoization: a depth-first search for an order of the operations
//! that respects real time and the register's semantics. Writes whose outcome is unknown have
//! no return time: they may take effect at any point after their call, or never.

use std::collections::{BTreeMap, HashSet};

/// What an operation did to, or saw of, its key's register (`None`: no point).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// An upsert (`Some`) or a delete (`None`).
    Write(Option<u64>),
    /// A payload edit: changes the value only if the point exists.
    SetIfPresent(u64),
    /// A read that saw this value.
    Read(Option<u64>),
}

#[derive(Clone, Debug)]
pub struct Op {
    pub key: u64,
    pub action: Action,
    /// Nanoseconds since the history began.
    pub call: u128,
    /// `None`: the outcome is unknown (only for writes).
    pub ret: Option<u128>,
}

/// Checks every key's history; the error names the first key that cannot be linearized.
pub fn check(history: &[Op]) -> Result<(), String> {
    let mut by_key: BTreeMap<u64, Vec<&Op>> = BTreeMap::new();
    for op in history {
        by_key.entry(op.key).or_default().push(op);
    }
    for (key, mut ops) in by_key {
        ops.sort_by_key(|o| o.call);
        if !linearizable(&ops) {
            return Err(format!(
                "key {key}: no linearization of its {} operations",
                ops.len()
            ));
        }
    }
    Ok(())
}

fn apply(state: Option<u64>, action: Action) -> Option<Option<u64>> {
    match action {
        Action::Write(v) => Some(v),
        Action::SetIfPresent(v) => Some(state.map(|_| v)),
        Action::Read(seen) => (seen == state).then_some(state),
    }
}

fn linearizable(ops: &[&Op]) -> bool {
    let words = ops.len().div_ceil(64);
    let known = ops.iter().filter(|o| o.ret.is_some()).count();
    let mut done = vec![0u64; words];
    let mut seen: HashSet<(Vec<u64>, Option<u64>)> = HashSet::new();
    // The stack of choices: (op index, state before it).
    let mut stack: Vec<(usize, Option<u64>)> = Vec::new();
    let mut state: Option<u64> = None;
    let mut linearized_known = 0;
    let mut next = 0; // the next candidate to try at this depth
    loop {
        if linearized_known == known {
            return true;
        }
        let is_done = |done: &[u64], i: usize| done[i / 64] >> (i % 64) & 1 == 1;
        // An operation can go next only if no pending one returned before it was called.
        let horizon = ops
            .iter()
            .enumerate()
            .filter(|(i, _)| !is_done(&done, *i))
            .filter_map(|(_, o)| o.ret)
            .min()
            .unwrap_or(u128::MAX);
        let mut advanced = false;
        let mut i = next;
        while i < ops.len() && ops[i].call <= horizon {
            if !is_done(&done, i) {
                if let Some(after) = apply(state, ops[i].action) {
                    done[i / 64] |= 1 << (i % 64);
                    if seen.insert((done.clone(), after)) {
                        stack.push((i, state));
                        state = after;
                        linearized_known += usize::from(ops[i].ret.is_some());
                        next = 0;
                        advanced = true;
                        break;
                    }
                    done[i / 64] &= !(1 << (i % 64));
                }
            }
            i += 1;
        }
        if advanced {
            continue;
        }
        // Nothing fits here: undo the last choice and try the one after it.
        let Some((last, before)) = stack.pop() else {
            return false;
        };
        done[last / 64] &= !(1 << (last % 64));
        linearized_known -= usize::from(ops[last].ret.is_some());
        state = before;
        next = last + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(action: Action, call: u128, ret: Option<u128>) -> Op {
        Op {
            key: 1,
            action,
            call,
            ret,
        }
    }

    #[test]
    fn accepts_overlapping_reads_either_way_and_refuses_stale_ones() {
        let w = |v, c, r| op(Action::Write(Some(v)), c, Some(r));
        let r = |v: Option<u64>, c, rt| op(Action::Read(v), c, Some(rt));
        // A read overlapping a write may see either value.
        assert!(check(&[w(1, 0, 10), w(2, 20, 40), r(Some(1), 25, 30)]).is_ok());
        assert!(check(&[w(1, 0, 10), w(2, 20, 40), r(Some(2), 25, 30)]).is_ok());
        // After the second write returned, the first value is stale.
        assert!(check(&[w(1, 0, 10), w(2, 20, 40), r(Some(1), 50, 60)]).is_err());
        // A value never written cannot be read.
        assert!(check(&[w(1, 0, 10), r(Some(9), 20, 30)]).is_err());
    }

    #[test]
    fn unknown_writes_may_apply_late_or_never() {
        let unknown = op(Action::Write(Some(5)), 0, None);
        let read = |v: Option<u64>, c| op(Action::Read(v), c, Some(c + 1));
        assert!(check(&[unknown.clone(), read(None, 10), read(Some(5), 20)]).is_ok());
        assert!(check(&[unknown.clone(), read(None, 10)]).is_ok());
        // But once seen it cannot be unseen.
        assert!(check(&[unknown, read(Some(5), 10), read(None, 20)]).is_err());
    }

    #[test]
    fn edits_apply_only_to_present_points() {
        let edit = op(Action::SetIfPresent(7), 0, Some(5));
        let read = |v: Option<u64>| op(Action::Read(v), 10, Some(11));
        assert!(check(&[edit.clone(), read(None)]).is_ok());
        assert!(check(&[edit, read(Some(7))]).is_err());
    }
}
