//! A growable bitset for tombstones: bit `i` set means offset `i` of a segment is deleted.

/// Deleted-offset flags of one segment. Cloned (copy-on-write) when a published one changes.
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
}
