//! A growable bitset over a segment's offsets: tombstones (bit `i` set means offset `i` is
//! deleted), and the candidate sets payload indexes narrow filters into.

/// Offset flags of one segment. Tombstones are cloned (copy-on-write) when a published set
/// changes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bitset {
    words: Vec<u64>,
    ones: usize,
}

impl Bitset {
    /// Whether bit `i` is set; bits past the end are clear.
    #[inline]
    pub fn get(&self, i: usize) -> bool {
        self.words
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Sets bit `i`, growing as needed.
    pub fn set(&mut self, i: usize) {
        let word = i / 64;
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let mask = 1 << (i % 64);
        if self.words[word] & mask == 0 {
            self.words[word] |= mask;
            self.ones += 1;
        }
    }

    /// Number of set bits.
    pub fn count(&self) -> usize {
        self.ones
    }

    /// Sets every bit of `bits`: the bulk form of [`Bitset::set`], without a branch per bit,
    /// for building sets of many thousands of offsets per query.
    pub fn set_all(&mut self, bits: impl IntoIterator<Item = u32>) {
        for i in bits {
            let word = i as usize / 64;
            if word >= self.words.len() {
                self.words.resize(word + 1, 0);
            }
            self.words[word] |= 1 << (i % 64);
        }
        self.recount();
    }

    /// Bits `0..len` all set.
    pub fn full(len: usize) -> Bitset {
        let mut words = vec![u64::MAX; len / 64];
        if !len.is_multiple_of(64) {
            words.push((1u64 << (len % 64)) - 1);
        }
        Bitset { words, ones: len }
    }

    /// Keeps the bits also set in `other`.
    pub fn and(&mut self, other: &Bitset) {
        self.words.truncate(other.words.len());
        for (w, o) in self.words.iter_mut().zip(&other.words) {
            *w &= o;
        }
        self.recount();
    }

    /// Adds the bits set in `other`.
    pub fn or(&mut self, other: &Bitset) {
        if self.words.len() < other.words.len() {
            self.words.resize(other.words.len(), 0);
        }
        for (w, o) in self.words.iter_mut().zip(&other.words) {
            *w |= o;
        }
        self.recount();
    }

    /// Clears the bits set in `other`.
    pub fn and_not(&mut self, other: &Bitset) {
        for (w, o) in self.words.iter_mut().zip(&other.words) {
            *w &= !o;
        }
        self.recount();
    }

    /// Number of bits set in both.
    pub fn and_count(&self, other: &Bitset) -> usize {
        let both = self.words.iter().zip(&other.words);
        both.map(|(a, b)| (a & b).count_ones() as usize).sum()
    }

    /// The bits as words: bit `i % 64` of word `i / 64` is bit `i`.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// The set whose words (as [`Bitset::words`] gives them) are `words`.
    pub fn from_words(words: Vec<u64>) -> Bitset {
        let mut bits = Bitset { words, ones: 0 };
        bits.recount();
        bits
    }

    /// The set bits, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            let mut rest = w;
            std::iter::from_fn(move || {
                (rest != 0).then(|| {
                    let bit = rest.trailing_zeros();
                    rest &= rest - 1;
                    (i * 64) as u32 + bit
                })
            })
        })
    }

    fn recount(&mut self) {
        self.ones = count_ones(&self.words);
    }
}

/// Set bits in `words`. Candidate sets are recounted after every union or intersection, and
/// without the popcnt instruction (not in the x86_64 baseline) counting is a dozen operations
/// a word: a tenth of a 10%-selective query's time went there.
fn count_ones(words: &[u64]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("popcnt") {
        // SAFETY: the CPU was just checked to support popcnt.
        return unsafe { count_ones_popcnt(words) };
    }
    count_ones_portable(words)
}

#[inline(always)]
fn count_ones_portable(words: &[u64]) -> usize {
    words.iter().map(|w| w.count_ones() as usize).sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn count_ones_popcnt(words: &[u64]) -> usize {
    count_ones_portable(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_and_counts() {
        let mut b = Bitset::default();
        assert!(!b.get(1000));
        b.set(3);
        b.set(3);
        b.set(130);
        assert!(b.get(3) && b.get(130) && !b.get(4));
        assert_eq!(b.count(), 2);
    }

    #[test]
    fn set_algebra() {
        let mut evens = Bitset::default();
        (0..200).step_by(2).for_each(|i| evens.set(i));
        let mut low = Bitset::full(70);
        assert_eq!(low.count(), 70);
        assert!(low.get(69) && !low.get(70));
        low.and(&evens);
        assert_eq!(
            low.iter().collect::<Vec<_>>(),
            (0..70).step_by(2).collect::<Vec<_>>()
        );
        let mut all = low.clone();
        all.or(&evens);
        assert_eq!(all.count(), 100);
        all.and_not(&low);
        assert_eq!(all.iter().next(), Some(70));
        assert_eq!(all.count(), 65);
    }
}
