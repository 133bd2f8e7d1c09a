//! A linearizability checker for a history of registers (one per key). It walks each key's
//! history in time order and keeps every configuration the register could be in: its state,
//! which of the operations in flight have already taken effect, and which writes of unknown
//! outcome have not yet. When an operation returns, only the configurations in which it can
//! take effect survive (the "just-in-time" formulation of Lowe's linearizability testing).
//!
//! A write whose outcome is unknown has no return: it may take effect at any point after its
//! call, or never, and it stays pending for the rest of the history. Such writes are what
//! makes a naive search exponential; three rules keep this one linear in their number:
//! - a configuration with more of them still pending can do everything one with fewer can,
//!   so only the maximal configurations are kept;
//! - an unknown write matters only through an operation that observes it, so it is let take
//!   effect only just before a known operation whose outcome it changes (a read that sees
//!   its value or sees the point gone, an edit it makes take effect or makes a no-op);
//! - unknown deletes are all alike, and so are unknown upserts whose value is never read:
//!   when one of a kind is needed, trying the first pending one covers the others.

use std::collections::{BTreeMap, HashMap, HashSet};

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

/// Checks every key's history; the error names the first key that cannot be linearized and
/// the operation that could not take effect.
pub fn check(history: &[Op]) -> Result<(), String> {
    let mut by_key: BTreeMap<u64, Vec<&Op>> = BTreeMap::new();
    for op in history {
        by_key.entry(op.key).or_default().push(op);
    }
    for (key, ops) in by_key {
        if let Err(op) = Register::new(&ops).walk() {
            return Err(format!(
                "key {key}: {:?} (called at {} ns, returned at {:?} ns) cannot take effect \
                 in any order of its {} operations that respects real time",
                op.action,
                op.call,
                op.ret,
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

/// A set of unknown writes, by their own numbering.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct Bits(Vec<u64>);

impl Bits {
    fn set(&mut self, bit: usize, on: bool) {
        if self.0.len() <= bit / 64 {
            self.0.resize(bit / 64 + 1, 0);
        }
        if on {
            self.0[bit / 64] |= 1 << (bit % 64);
        } else {
            self.0[bit / 64] &= !(1 << (bit % 64));
        }
    }

    fn has(&self, bit: usize) -> bool {
        self.0
            .get(bit / 64)
            .is_some_and(|w| w >> (bit % 64) & 1 == 1)
    }

    /// The members that are also in `mask`, in order.
    fn and<'a>(&'a self, mask: &'a Bits) -> impl Iterator<Item = usize> + 'a {
        let words = self.0.iter().zip(&mask.0).map(|(a, b)| a & b);
        words.enumerate().flat_map(|(w, word)| {
            (0..64)
                .filter(move |b| word >> b & 1 == 1)
                .map(move |b| w * 64 + b)
        })
    }

    fn contains_all(&self, other: &Bits) -> bool {
        let word = |i: usize| self.0.get(i).copied().unwrap_or(0);
        other.0.iter().enumerate().all(|(i, w)| w & !word(i) == 0)
    }
}

/// One way the register could be.
#[derive(Clone, Debug)]
struct Config {
    state: Option<u64>,
    /// The operations in flight (by index) that have already taken effect, sorted.
    took_effect: Vec<usize>,
    /// The unknown writes that have not taken effect yet.
    pending: Bits,
}

impl Config {
    /// This configuration after unknown write `bit` took effect.
    fn consume(&self, bit: usize, state: Option<u64>) -> Config {
        let mut pending = self.pending.clone();
        pending.set(bit, false);
        Config {
            state,
            took_effect: self.took_effect.clone(),
            pending,
        }
    }
}

/// The configurations, keeping only those no other covers.
#[derive(Default)]
struct Frontier {
    by_shape: HashMap<(Option<u64>, Vec<usize>), Vec<Bits>>,
}

impl Frontier {
    /// Adds `config` unless one already here can do all it can; whether it was added.
    fn add(&mut self, config: &Config) -> bool {
        let shape = (config.state, config.took_effect.clone());
        let same = self.by_shape.entry(shape).or_default();
        if same.iter().any(|p| p.contains_all(&config.pending)) {
            return false;
        }
        same.retain(|p| !config.pending.contains_all(p));
        same.push(config.pending.clone());
        true
    }

    fn into_configs(self) -> Vec<Config> {
        let shapes = self.by_shape.into_iter();
        shapes
            .flat_map(|((state, took_effect), all)| {
                all.into_iter().map(move |pending| Config {
                    state,
                    took_effect: took_effect.clone(),
                    pending,
                })
            })
            .collect()
    }
}

/// One key's history, walked in time order.
struct Register<'a> {
    ops: &'a [&'a Op],
    /// For each unknown write, its own number (its bit in `Config::pending`), and back.
    unknown_bit: Vec<Option<usize>>,
    unknown_op: Vec<usize>,
    /// The unknown write (by bit) that writes each value; values are unique.
    writer_of: HashMap<u64, usize>,
    deletes: Bits,
    /// Unknown upserts whose value some read saw, and those whose value nobody saw.
    seen_upserts: Bits,
    unseen_upserts: Bits,
}

impl<'a> Register<'a> {
    fn new(ops: &'a [&'a Op]) -> Register<'a> {
        let read: HashSet<u64> = ops
            .iter()
            .filter_map(|o| match o.action {
                Action::Read(v) => v,
                _ => None,
            })
            .collect();
        let mut register = Register {
            ops,
            unknown_bit: vec![None; ops.len()],
            unknown_op: Vec::new(),
            writer_of: HashMap::new(),
            deletes: Bits::default(),
            seen_upserts: Bits::default(),
            unseen_upserts: Bits::default(),
        };
        let unknown = ops.iter().enumerate().filter(|(_, o)| o.ret.is_none());
        for (bit, (i, op)) in unknown.enumerate() {
            register.unknown_bit[i] = Some(bit);
            register.unknown_op.push(i);
            match op.action {
                Action::Write(None) => register.deletes.set(bit, true),
                Action::Write(Some(v)) if read.contains(&v) => register.seen_upserts.set(bit, true),
                Action::Write(Some(_)) => register.unseen_upserts.set(bit, true),
                _ => {}
            }
            if let Action::Write(Some(v)) | Action::SetIfPresent(v) = op.action {
                register.writer_of.insert(v, bit);
            }
        }
        register
    }

    /// Calls and returns in time order (calls first on a tie: the two overlap).
    fn events(&self) -> Vec<(u128, bool, usize)> {
        let mut events: Vec<(u128, bool, usize)> = Vec::new();
        for (i, op) in self.ops.iter().enumerate() {
            events.push((op.call, false, i));
            if let Some(ret) = op.ret {
                events.push((ret, true, i));
            }
        }
        events.sort();
        events
    }

    /// `Ok` if the history linearizes, else the operation that could not take effect.
    fn walk(&self) -> Result<(), &'a Op> {
        let start = Config {
            state: None,
            took_effect: Vec::new(),
            pending: Bits::default(),
        };
        let mut configs = vec![start];
        let mut in_flight: Vec<usize> = Vec::new();
        for (_, is_return, i) in self.events() {
            match (is_return, self.unknown_bit[i]) {
                (false, Some(bit)) => {
                    for config in &mut configs {
                        config.pending.set(bit, true);
                    }
                }
                (false, None) => in_flight.push(i),
                (true, _) => {
                    in_flight.retain(|&j| j != i);
                    configs = self.returned(i, &configs, &in_flight);
                    if configs.is_empty() {
                        return Err(self.ops[i]);
                    }
                }
            }
        }
        Ok(())
    }

    /// The configurations in which operation `i`, now returning, has taken effect: those in
    /// which it already had, and those in which it can take effect now. Operations that could
    /// take effect after it are still in flight or pending afterwards, so only orders that end
    /// with `i` need exploring.
    fn returned(&self, i: usize, configs: &[Config], in_flight: &[usize]) -> Vec<Config> {
        let mut after = Frontier::default();
        let (done, not_yet): (Vec<&Config>, Vec<&Config>) =
            configs.iter().partition(|c| c.took_effect.contains(&i));
        for config in done {
            after.add(config);
        }
        for before in self.closure(not_yet, in_flight) {
            for now in self.ways(&before, self.ops[i].action) {
                after.add(&now);
            }
        }
        let mut configs = after.into_configs();
        // `i` has returned: it is no longer in flight, so it need not be remembered.
        for config in &mut configs {
            config.took_effect.retain(|&j| j != i);
        }
        configs
    }

    /// Every configuration reachable from `configs` by letting operations in flight (other
    /// than the returning one, which is not in `in_flight`) take effect.
    fn closure(&self, configs: Vec<&Config>, in_flight: &[usize]) -> Vec<Config> {
        let mut seen = Frontier::default();
        let mut queue: Vec<Config> = configs.into_iter().cloned().collect();
        queue.retain(|c| seen.add(c));
        let mut reached = Vec::new();
        while let Some(config) = queue.pop() {
            for &j in in_flight {
                if config.took_effect.contains(&j) {
                    continue;
                }
                for mut next in self.ways(&config, self.ops[j].action) {
                    next.took_effect.push(j);
                    next.took_effect.sort_unstable();
                    if seen.add(&next) {
                        queue.push(next);
                    }
                }
            }
            reached.push(config);
        }
        reached
    }

    /// The configurations after a known operation takes effect in `config`, directly or
    /// right after the unknown writes that change its outcome.
    fn ways(&self, config: &Config, action: Action) -> Vec<Config> {
        let mut ways = Vec::new();
        let mut take = |from: Config| {
            if let Some(state) = apply(from.state, action) {
                ways.push(Config { state, ..from });
            }
        };
        take(config.clone());
        match (action, config.state) {
            (Action::Read(Some(v)), state) if state != Some(v) => {
                let Some(&bit) = self.writer_of.get(&v) else {
                    return ways;
                };
                if !config.pending.has(bit) {
                    return ways;
                }
                match (self.unknown_action(bit), state) {
                    (Action::Write(_), _) | (Action::SetIfPresent(_), Some(_)) => {
                        take(config.consume(bit, Some(v)))
                    }
                    // An unknown edit of an absent point needs an unknown upsert before it.
                    _ => {
                        for (upsert, present) in self.upserts(config) {
                            take(config.consume(upsert, present).consume(bit, Some(v)));
                        }
                    }
                }
            }
            (Action::Read(None) | Action::SetIfPresent(_), Some(_)) => {
                if let Some(delete) = config.pending.and(&self.deletes).next() {
                    take(config.consume(delete, None));
                }
            }
            (Action::SetIfPresent(_), None) => {
                for (upsert, present) in self.upserts(config) {
                    take(config.consume(upsert, present));
                }
            }
            _ => {}
        }
        ways
    }

    fn unknown_action(&self, bit: usize) -> Action {
        self.ops[self.unknown_op[bit]].action
    }

    /// The pending unknown upserts worth trying to make a point present, with the state each
    /// leaves: every one whose value some read saw, and the first of those nobody saw.
    fn upserts<'c>(
        &'c self,
        config: &'c Config,
    ) -> impl Iterator<Item = (usize, Option<u64>)> + 'c {
        let unseen = config.pending.and(&self.unseen_upserts).next();
        let upserts = config.pending.and(&self.seen_upserts).chain(unseen);
        upserts.map(|bit| match self.unknown_action(bit) {
            Action::Write(value) => (bit, value),
            other => unreachable!("{other:?} is not an upsert"),
        })
    }
}

#[cfg(test)]
#[path = "linearizable_tests.rs"]
mod tests;
