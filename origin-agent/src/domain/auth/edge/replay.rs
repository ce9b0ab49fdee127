//! Remembers edge-signature nonces for as long as their signatures could still verify, so each
//! signed request is accepted once.
//!
//! A signature verifies only within [`MAX_SKEW_SECS`] of its own timestamp
//! ([`argus_shared::signature::verify`]), so a nonce is kept until its timestamp plus
//! `MAX_SKEW_SECS` has passed (a replay later than that is refused as stale anyway), and at most
//! `GENERATION_SECS` longer. Memory grows with the request rate: ~10 bytes a request of the
//! last minute and a bit.

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::sync::Mutex;

use argus_shared::signature::MAX_SKEW_SECS;

use crate::domain::auth::edge::fingerprint_set::FingerprintSet;

/// Nonces are grouped by their signature's timestamp, this many seconds a group ("generation"):
/// a generation is dropped whole once its newest timestamp is stale. Shorter keeps fewer stale
/// nonces; longer, fewer sets (at most 121 / 8 + 1 = 16 live).
const GENERATION_SHIFT: u32 = 3;
#[cfg(test)]
pub const GENERATION_SECS: u64 = 1 << GENERATION_SHIFT;

/// Nonces are kept as 64-bit keyed hashes (SipHash, a random key per process, so nobody can aim
/// for a collision), 8 bytes each in a flat table per generation ([`FingerprintSet`]). A request
/// looks in one table: a replay carries the same signed timestamp, so the same generation. A
/// false "replayed" needs two of the Worker's random nonces to collide in 64 bits within a
/// minute or two. Only correctly signed requests add nonces, so only the Worker fills this.
#[derive(Default)]
pub struct ReplayCache {
    hasher: std::collections::hash_map::RandomState,
    inner: Mutex<Generations>,
}

#[derive(Default)]
struct Generations {
    /// Oldest first, by `id`, no two with the same.
    live: VecDeque<Generation>,
}

struct Generation {
    /// `timestamp >> GENERATION_SHIFT` of its nonces.
    id: u64,
    seen: FingerprintSet,
}

impl ReplayCache {
    /// Records `nonce` of a signature made at `timestamp` (already checked to be within
    /// `MAX_SKEW_SECS` of `now`; anything else is refused); false if it was already seen while
    /// it could verify.
    pub fn first_use(&self, nonce: &str, timestamp: u64, now: u64) -> bool {
        if timestamp.abs_diff(now) > MAX_SKEW_SECS {
            return false;
        }
        let fingerprint = self.hasher.hash_one(nonce);
        let Ok(mut generations) = self.inner.lock() else {
            return false;
        };
        generations.forget_stale(now);
        generations.insert(timestamp >> GENERATION_SHIFT, fingerprint)
    }
}

impl Generations {
    /// Drops the generations whose every signature is stale: the newest timestamp of generation
    /// `id` is `((id + 1) << GENERATION_SHIFT) - 1`, stale once `now` is past it plus
    /// `MAX_SKEW_SECS`.
    fn forget_stale(&mut self, now: u64) {
        while let Some(oldest) = self.live.front() {
            let newest_timestamp = ((oldest.id + 1) << GENERATION_SHIFT) - 1;
            if newest_timestamp + MAX_SKEW_SECS >= now {
                break;
            }
            self.live.pop_front();
        }
    }

    fn insert(&mut self, id: u64, fingerprint: u64) -> bool {
        // Nearly always the newest generation, or the one just before.
        let at = match self.live.iter().rposition(|g| g.id <= id) {
            Some(i) if self.live[i].id == id => i,
            found => {
                // A new generation starts as large as the newest one ended, and 1/8 more, so
                // at a steady rate it never grows (growing doubles the table).
                let expected = self.live.back().map_or(0, |g| g.seen.len());
                let at = found.map_or(0, |i| i + 1);
                self.live.insert(
                    at,
                    Generation {
                        id,
                        seen: FingerprintSet::with_expected(expected + expected / 8),
                    },
                );
                at
            }
        };
        self.live[at].seen.insert(fingerprint)
    }

    #[cfg(test)]
    fn remembered(&self) -> (usize, usize) {
        self.live
            .iter()
            .fold((0, 0), |(n, b), g| (n + g.seen.len(), b + g.seen.bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argus_shared::fuzzing::XorShift;
    use std::collections::HashMap;

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
    fn refused_to_the_last_second_whatever_the_timestamp_in_its_generation() {
        for timestamp in 1_000..1_000 + 2 * GENERATION_SECS {
            let cache = ReplayCache::default();
            assert!(cache.first_use("n", timestamp, timestamp));
            let last = timestamp + MAX_SKEW_SECS;
            // Another request at that second forgets what is stale by then…
            assert!(cache.first_use("other", last, last));
            // …but not this one, whose signature still verifies.
            assert!(!cache.first_use("n", timestamp, last), "{timestamp}");
        }
    }

    #[test]
    fn a_timestamp_outside_the_window_is_refused() {
        let cache = ReplayCache::default();
        assert!(!cache.first_use("n1", 100, 100 + MAX_SKEW_SECS + 1));
        assert!(!cache.first_use("n2", 100 + MAX_SKEW_SECS + 1, 100));
    }

    #[test]
    fn a_nonce_is_forgotten_at_most_a_generation_after_its_signature_is_stale() {
        let cache = ReplayCache::default();
        assert!(cache.first_use("n1", 100, 120));
        let stale_by = (((100 >> GENERATION_SHIFT) + 1) << GENERATION_SHIFT) + MAX_SKEW_SECS;
        assert!(stale_by <= 100 + MAX_SKEW_SECS + GENERATION_SECS);
        assert!(cache.first_use("other", stale_by - 1, stale_by - 1));
        assert_eq!(cache.inner.lock().unwrap().remembered().0, 2);
        assert!(cache.first_use("other2", stale_by, stale_by));
        assert_eq!(cache.inner.lock().unwrap().remembered().0, 2);
    }

    /// Against a model that remembers every accepted (nonce, timestamp): a replay (same nonce,
    /// same signed timestamp) is refused for as long as its signature could verify, whatever the
    /// order of timestamps; a nonce never seen is accepted.
    #[test]
    fn agrees_with_remembering_everything() {
        let cache = ReplayCache::default();
        let mut accepted: HashMap<(String, u64), ()> = HashMap::new();
        let mut nonces: HashMap<String, ()> = HashMap::new();
        let mut rng = XorShift(7);
        let mut now = 1_000_000u64;
        for _ in 0..200_000 {
            now += rng.next_u64() % 2;
            let timestamp = now - MAX_SKEW_SECS + rng.next_u64() % (2 * MAX_SKEW_SECS + 1);
            // Few nonces and timestamps, so many repeat, within and after their window.
            let nonce = format!("n{}", rng.next_u64() % 3000);
            let replay = accepted.contains_key(&(nonce.clone(), timestamp));
            let got = cache.first_use(&nonce, timestamp, now);
            if replay {
                assert!(!got, "replay of {nonce} at {timestamp} accepted at {now}");
            }
            if !nonces.contains_key(&nonce) {
                assert!(got, "first use of {nonce} refused");
            }
            if got {
                accepted.insert((nonce.clone(), timestamp), ());
                nonces.insert(nonce, ());
            }
        }
    }

    #[test]
    fn about_ten_bytes_a_nonce_at_a_steady_rate() {
        let cache = ReplayCache::default();
        for i in 0..100_000u64 {
            let now = 1_000 + i / 1_000; // 1,000 a second for 100 s
            assert!(cache.first_use(&format!("n{i}"), now, now));
        }
        let (n, bytes) = cache.inner.lock().unwrap().remembered();
        // Kept: the last 61 s and up to one generation more.
        assert!((61_000..=(61 + GENERATION_SECS as usize) * 1_000).contains(&n));
        assert!(bytes <= n * 12, "{bytes} bytes for {n} nonces");
    }

    #[test]
    fn old_generations_are_dropped() {
        let cache = ReplayCache::default();
        for i in 0..5000 {
            assert!(cache.first_use(&format!("n{i}"), 0, 0));
        }
        assert!(cache.first_use("late", 10_000, 10_000));
        let g = cache.inner.lock().unwrap();
        assert_eq!(g.live.len(), 1);
        assert_eq!(g.remembered().0, 1);
    }
}
