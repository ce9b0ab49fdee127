//! Remembers edge-signature nonces for as long as their signatures could still verify, so each
//! signed request is accepted once.

use std::collections::HashMap;
use std::sync::Mutex;

use argus_shared::signature::MAX_SKEW_SECS;

/// How long a nonce is remembered: a signature is fresh for ±MAX_SKEW_SECS around its timestamp.
const REMEMBER_SECS: u64 = 2 * MAX_SKEW_SECS + 1;

#[derive(Default)]
pub struct ReplayCache {
    seen: Mutex<HashMap<String, u64>>,
}

impl ReplayCache {
    /// Records `nonce`; false if it was already seen within the window.
    pub fn first_use(&self, nonce: &str, now: u64) -> bool {
        let Ok(mut seen) = self.seen.lock() else {
            return false;
        };
        if seen.len() > 4096 {
            seen.retain(|_, expires| *expires > now);
        }
        match seen.get(nonce) {
            Some(expires) if *expires > now => false,
            _ => {
                seen.insert(nonce.to_owned(), now + REMEMBER_SECS);
                true
            }
        }
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
        assert!(cache.seen.lock().unwrap().len() < 100);
    }
}
