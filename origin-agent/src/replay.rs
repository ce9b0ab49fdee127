//! Remembers edge-signature nonces for as long as their signatures could still verify, so each
//! signed request is accepted once.

use std::collections::{HashSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::Mutex;

use argus_shared::signature::MAX_SKEW_SECS;

/// How long a nonce is remembered: a signature is fresh for ±MAX_SKEW_SECS around its timestamp.
const REMEMBER_SECS: u64 = 2 * MAX_SKEW_SECS + 1;

/// Nonces are kept as 64-bit keyed hashes (SipHash, random key per process), in a set for lookup
/// and a queue in arrival order for expiry: O(1) per request, ~30 bytes per nonce remembered.
/// A false "replayed" needs two of the Worker's random nonces to collide in 64 bits within two
/// minutes. Only correctly signed requests add nonces, so only the Worker fills this.
#[derive(Default)]
pub struct ReplayCache {
    hasher: std::collections::hash_map::RandomState,
    inner: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    set: HashSet<u64, BuildIdentity>,
    /// (expiry, key), oldest first.
    queue: VecDeque<(u64, u64)>,
}

impl ReplayCache {
    /// Records `nonce`; false if it was already seen within the window.
    pub fn first_use(&self, nonce: &str, now: u64) -> bool {
        let key = self.hasher.hash_one(nonce);
        let Ok(mut seen) = self.inner.lock() else {
            return false;
        };
        let seen = &mut *seen;
        while let Some(&(expires, old)) = seen.queue.front() {
            if expires > now {
                break;
            }
            seen.queue.pop_front();
            seen.set.remove(&old);
        }
        if !seen.set.insert(key) {
            return false;
        }
        seen.queue.push_back((now + REMEMBER_SECS, key));
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
        assert!(cache.first_use("n1", 100));
        assert!(!cache.first_use("n1", 150));
        assert!(!cache.first_use("n1", 100 + REMEMBER_SECS - 1));
        assert!(cache.first_use("n2", 150));
    }

    #[test]
    fn old_entries_are_pruned() {
        let cache = ReplayCache::default();
        for i in 0..5000 {
            assert!(cache.first_use(&format!("n{i}"), 0));
        }
        assert!(cache.first_use("late", 10_000));
        let seen = cache.inner.lock().unwrap();
        assert_eq!((seen.set.len(), seen.queue.len()), (1, 1));
    }
}
