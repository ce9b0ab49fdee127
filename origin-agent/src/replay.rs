//! Remembers edge-signature nonces for as long as their signatures could still verify, so each
//! signed request is accepted once.
//!
//! A signature verifies only within [`MAX_SKEW_SECS`] of its own timestamp
//! ([`argus_shared::signature::verify`]), so a nonce is kept until its timestamp plus
//! `MAX_SKEW_SECS` has passed — not a full window from its arrival: a replay later than that is
//! refused as stale anyway. With the Worker's clock in step this keeps half as many nonces as
//! remembering `2 * MAX_SKEW_SECS` from arrival (memory grows with the request rate: ~20 bytes a
//! request of the last minute).

use std::collections::{HashSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::Mutex;

use argus_shared::signature::MAX_SKEW_SECS;

/// Nonces are kept as 64-bit keyed hashes (SipHash, random key per process), in a set for lookup
/// and a queue in arrival order for expiry, whose expiries (whole seconds, nearly all equal to
/// their neighbours') are run-length encoded: O(1) per request, ~20 bytes per nonce remembered.
/// A false "replayed" needs two of the Worker's random nonces to collide in 64 bits within a
/// minute or two. Only correctly signed requests add nonces, so only the Worker fills this.
#[derive(Default)]
pub struct ReplayCache {
    hasher: std::collections::hash_map::RandomState,
    inner: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    set: HashSet<u64, BuildIdentity>,
    /// Keys, oldest first.
    queue: VecDeque<u64>,
    /// (expiry, how many keys of `queue` in a row have it), oldest first.
    expiries: VecDeque<(u64, u32)>,
}

impl ReplayCache {
    /// Records `nonce` of a signature made at `timestamp` (already checked to be within
    /// `MAX_SKEW_SECS` of `now`); false if it was already seen while it could verify.
    pub fn first_use(&self, nonce: &str, timestamp: u64, now: u64) -> bool {
        let key = self.hasher.hash_one(nonce);
        let Ok(mut seen) = self.inner.lock() else {
            return false;
        };
        let seen = &mut *seen;
        // The queue is in arrival order, its expiries nearly so (timestamps differ by the
        // edge's clock and transit time): an entry behind the front may leave a little late,
        // never early.
        while let Some(&(expires, n)) = seen.expiries.front() {
            if expires > now {
                break;
            }
            seen.expiries.pop_front();
            for old in seen.queue.drain(..n as usize) {
                seen.set.remove(&old);
            }
        }
        if !seen.set.insert(key) {
            return false;
        }
        // Past `timestamp + MAX_SKEW_SECS` the signature is stale: forget it then. `now` bounds
        // it too, should a caller pass a timestamp it did not check.
        let expires = timestamp.min(now + MAX_SKEW_SECS) + MAX_SKEW_SECS + 1;
        seen.queue.push_back(key);
        match seen.expiries.back_mut() {
            Some((e, n)) if *e == expires && *n < u32::MAX => *n += 1,
            _ => seen.expiries.push_back((expires, 1)),
        }
        true
    }
}

/// The keys are already hashes: no second hashing.
#[derive(Default, Clone, Copy)]
struct BuildIdentity;

impl BuildHasher for BuildIdentity {
    type Hasher = IdentityHasher;
    fn build_hasher(&self) -> IdentityHasher {
        IdentityHasher(0)
    }
}

struct IdentityHasher(u64);

impl std::hash::Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_accepted_once_within_the_window() {
        let cache = ReplayCache::default();
        assert!(cache.first_use("n1", 100, 100));
        assert!(!cache.first_use("n1", 100, 150));
        // Still refused as long as a signature made at 100 is fresh…
        assert!(!cache.first_use("n1", 100, 100 + MAX_SKEW_SECS));
        assert!(cache.first_use("n2", 100, 150));
        // …and one made ahead of the agent's clock is kept for its whole window.
        let ahead = 200 + MAX_SKEW_SECS;
        assert!(cache.first_use("n3", ahead, 200));
        assert!(!cache.first_use("n3", ahead, ahead + MAX_SKEW_SECS));
    }

    #[test]
    fn a_nonce_is_forgotten_once_its_signature_is_stale() {
        let cache = ReplayCache::default();
        assert!(cache.first_use("n1", 100, 120));
        assert!(cache.first_use("other", 161, 161));
        let seen = cache.inner.lock().unwrap();
        assert_eq!(seen.set.len(), 1);
    }

    #[test]
    fn out_of_order_expiries_leave_late_never_early() {
        let cache = ReplayCache::default();
        assert!(cache.first_use("a", 101, 101));
        assert!(cache.first_use("b", 100, 101));
        assert!(cache.first_use("c", 101, 101));
        // "b" (stale after 160) waits behind "a" (stale after 161)…
        assert!(cache.first_use("d", 161, 161));
        assert!(!cache.first_use("a", 101, 161));
        assert!(!cache.first_use("c", 101, 161));
        // …and all three go once "a" can.
        assert!(cache.first_use("e", 162, 162));
        let seen = cache.inner.lock().unwrap();
        assert_eq!(seen.set.len(), 2);
        assert_eq!(seen.queue.len(), 2);
    }

    #[test]
    fn old_entries_are_pruned() {
        let cache = ReplayCache::default();
        for i in 0..5000 {
            assert!(cache.first_use(&format!("n{i}"), 0, 0));
        }
        assert!(cache.first_use("late", 10_000, 10_000));
        let seen = cache.inner.lock().unwrap();
        assert_eq!((seen.set.len(), seen.queue.len()), (1, 1));
        assert_eq!(seen.expiries.len(), 1);
    }
}
