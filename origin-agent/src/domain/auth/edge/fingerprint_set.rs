//! A set of 64-bit fingerprints (already uniformly distributed keyed hashes) in one flat array:
//! open addressing, linear probing, no deletion (the replay cache drops whole sets). 8 bytes a
//! slot and nothing else — a general hash set of `u64` takes 9 bytes a bucket and grows to twice
//! what it needs.

/// Slots kept at most this full (`len / slots` ≤ 4/5): linear probing stays at a few probes,
/// all but the rarest within one or two cache lines.
const MAX_LOAD_NUM: usize = 4;
const MAX_LOAD_DEN: usize = 5;
const MIN_SLOTS: usize = 16;

/// `0` marks an empty slot; the fingerprint `0` is stored as `1` (two of 2^64 values share a
/// slot value: a collision chance of 2^-63, nothing anyone can steer when the hash is keyed).
#[derive(Debug)]
pub struct FingerprintSet {
    slots: Box<[u64]>,
    len: usize,
}

impl FingerprintSet {
    /// Room for `expected` fingerprints without growing.
    pub fn with_expected(expected: usize) -> FingerprintSet {
        let slots = (expected.saturating_mul(MAX_LOAD_DEN) / MAX_LOAD_NUM + 1).max(MIN_SLOTS);
        FingerprintSet {
            slots: vec![0; slots].into_boxed_slice(),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[cfg(test)]
    /// Bytes held (for tests and accounting).
    pub fn bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<u64>()
    }

    /// Adds `fingerprint`; false if it was there already.
    pub fn insert(&mut self, fingerprint: u64) -> bool {
        let fp = fingerprint.max(1);
        if (self.len + 1) * MAX_LOAD_DEN > self.slots.len() * MAX_LOAD_NUM {
            self.grow();
        }
        match place(&self.slots, fp) {
            Slot::Found => false,
            Slot::Empty(i) => {
                self.slots[i] = fp;
                self.len += 1;
                true
            }
        }
    }

    #[cfg(test)]
    pub fn contains(&self, fingerprint: u64) -> bool {
        matches!(place(&self.slots, fingerprint.max(1)), Slot::Found)
    }

    fn grow(&mut self) {
        let mut bigger = vec![0u64; self.slots.len() * 2].into_boxed_slice();
        for &fp in self.slots.iter().filter(|&&fp| fp != 0) {
            if let Slot::Empty(i) = place(&bigger, fp) {
                bigger[i] = fp;
            }
        }
        self.slots = bigger;
    }
}

enum Slot {
    Found,
    Empty(usize),
}

/// Where `fp` is, or the empty slot it would go in. The table is never full (load ≤ 4/5), so
/// the probe ends.
fn place(slots: &[u64], fp: u64) -> Slot {
    // The fingerprint's high bits scaled to the table (any size, not only powers of two).
    let mut i = ((u128::from(fp) * slots.len() as u128) >> 64) as usize;
    loop {
        match slots[i] {
            0 => return Slot::Empty(i),
            v if v == fp => return Slot::Found,
            _ => i = if i + 1 == slots.len() { 0 } else { i + 1 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_fingerprint_is_new_once() {
        let mut s = FingerprintSet::with_expected(0);
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut all = Vec::new();
        for _ in 0..10_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            assert!(s.insert(x));
            all.push(x);
        }
        assert_eq!(s.len(), 10_000);
        for &x in &all {
            assert!(s.contains(x));
            assert!(!s.insert(x));
        }
        assert!(!s.contains(12345));
        assert!(s.len() * MAX_LOAD_DEN <= s.slots.len() * MAX_LOAD_NUM);
    }

    #[test]
    fn zero_and_the_last_slot_are_ordinary() {
        let mut s = FingerprintSet::with_expected(4);
        assert!(s.insert(0));
        assert!(!s.insert(0));
        // All land in the last slot's neighbourhood and wrap around.
        for fp in [u64::MAX, u64::MAX - 1, u64::MAX - 2] {
            assert!(s.insert(fp));
        }
        for fp in [0, u64::MAX, u64::MAX - 1, u64::MAX - 2] {
            assert!(s.contains(fp));
        }
    }

    #[test]
    fn sized_for_what_is_expected() {
        let s = FingerprintSet::with_expected(1000);
        assert_eq!(s.bytes(), (1000 * 5 / 4 + 1) * 8);
        assert!(s.is_empty());
    }
}
