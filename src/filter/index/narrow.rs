//! Narrowing a filter down with one segment's payload indexes: the offsets it can match, and
//! whether all of them do.

use super::SegmentIndexes;
use crate::bitset::Bitset;
use crate::filter::{Condition, Filter, HasIdCondition};

/// What the indexes tell about a filter on one segment.
#[derive(Clone, Debug)]
pub struct Candidates {
    /// Offsets that may match; `None`: any offset may.
    pub set: Option<Bitset>,
    /// Whether every offset of `set` matches (else each must still be checked against the
    /// payload). Tombstones are not applied.
    pub exact: bool,
}

impl Candidates {
    const ANY_UNCHECKED: Candidates = Candidates {
        set: None,
        exact: false,
    };

    /// Every offset, no check needed (an empty clause list).
    fn exact_all() -> Candidates {
        Candidates {
            set: None,
            exact: true,
        }
    }

    fn exact(set: Bitset) -> Candidates {
        Candidates {
            set: Some(set),
            exact: true,
        }
    }

    /// Both hold.
    fn and(self, other: Candidates) -> Candidates {
        let set = match (self.set, other.set) {
            (None, s) | (s, None) => s,
            (Some(mut a), Some(b)) => {
                a.and(&b);
                Some(a)
            }
        };
        Candidates {
            set,
            exact: self.exact && other.exact,
        }
    }

    /// Either holds.
    fn or(parts: impl Iterator<Item = Candidates>) -> Candidates {
        let mut union = Some(Bitset::default());
        let mut exact = true;
        for part in parts {
            exact &= part.exact;
            match (&mut union, part.set) {
                (Some(u), Some(s)) => u.or(&s),
                _ => union = None,
            }
        }
        Candidates { set: union, exact }
    }

    /// This holds and `other` does not; only an exact `other` can be taken away.
    fn and_not(self, other: Candidates, len: usize) -> Candidates {
        if !other.exact {
            return Candidates {
                exact: false,
                ..self
            };
        }
        let mut set = self.set.unwrap_or_else(|| Bitset::full(len));
        match other.set {
            Some(s) => set.and_not(&s),
            None => set = Bitset::default(), // `other` matches everything
        }
        Candidates {
            set: Some(set),
            exact: self.exact,
        }
    }
}

/// What a segment offers for narrowing a filter: its indexes, its length, and the offsets of a
/// `has_id` list in it.
pub struct Narrower<'a> {
    pub indexes: &'a SegmentIndexes,
    pub len: usize,
    pub ids: &'a dyn Fn(&HasIdCondition) -> Bitset,
}

impl Narrower<'_> {
    /// The candidates of a whole filter.
    pub fn candidates(&self, filter: &Filter) -> Candidates {
        let mut out = filter
            .must
            .iter()
            .map(|c| self.condition(c))
            .fold(Candidates::exact_all(), Candidates::and);
        if !filter.should.is_empty() {
            out = out.and(Candidates::or(
                filter.should.iter().map(|c| self.condition(c)),
            ));
        }
        for c in &filter.must_not {
            out = out.and_not(self.condition(c), self.len);
        }
        if filter.min_should.is_some() {
            out.exact = false;
        }
        out
    }

    fn condition(&self, condition: &Condition) -> Candidates {
        match condition {
            Condition::Field(field) => match self.indexes.answer(field) {
                Some((set, exact)) => Candidates {
                    set: Some(set),
                    exact,
                },
                None => Candidates::ANY_UNCHECKED,
            },
            Condition::HasId(c) => Candidates::exact((self.ids)(c)),
            Condition::Filter(f) => self.candidates(f),
            _ => Candidates::ANY_UNCHECKED,
        }
    }
}
