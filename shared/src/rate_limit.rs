//! The edge's request limits, and the counter that enforces them where Cloudflare's
//! rate-limiting binding does not exist (the self-hosted relay's plain workerd).
//!
//! On Cloudflare the limits are the `[[ratelimits]]` bindings of `wrangler.toml`, which must say
//! the same numbers as [`PAIRING`] and [`DEVICE`] (a test in `tests/tests/selfhost.rs` compares
//! them). Self-hosted, the Worker counts in its isolate with a [`SlidingWindow`]: plain workerd
//! runs one isolate per Worker, so one counter sees every request of the server.
//!
//! The window is the sliding-window approximation Cloudflare describes for its own limiter: the
//! previous period's count, weighted by how much of it still overlaps the last `period`, plus the
//! current period's count. A burst at a period boundary therefore cannot reach twice the limit.

use std::collections::HashMap;

/// At most `requests` per `period_secs`, per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub requests: u32,
    pub period_secs: u32,
}

/// The public pairing and identity routes, per client IP. The ArgusAI iOS app polls the pairing
/// status every 2 s (30 a minute).
pub const PAIRING: Limit = Limit {
    requests: 60,
    period_secs: 60,
};

/// The authenticated API, per device.
pub const DEVICE: Limit = Limit {
    requests: 600,
    period_secs: 60,
};

/// Keys a [`SlidingWindow`] tracks at most. A flood of distinct keys beyond it (e.g. spoofed
/// source addresses) is refused rather than allowed untracked.
pub const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Counts {
    /// Index of the current period (`now / period`).
    period_index: u64,
    current: u32,
    previous: u32,
}

/// Per-key counts over a sliding window of one [`Limit`]. Time is passed in (milliseconds).
#[derive(Debug)]
pub struct SlidingWindow {
    limit: Limit,
    max_keys: usize,
    counts: HashMap<String, Counts>,
}

impl SlidingWindow {
    pub fn new(limit: Limit) -> SlidingWindow {
        SlidingWindow::with_max_keys(limit, MAX_KEYS)
    }

    pub fn with_max_keys(limit: Limit, max_keys: usize) -> SlidingWindow {
        SlidingWindow {
            limit,
            max_keys,
            counts: HashMap::new(),
        }
    }

    fn period_ms(&self) -> u64 {
        u64::from(self.limit.period_secs.max(1)) * 1000
    }

    /// Counts one request for `key` at `now_ms`; `false` when it is over the limit (a refused
    /// request is not counted).
    pub fn allow(&mut self, key: &str, now_ms: u64) -> bool {
        let period_ms = self.period_ms();
        let index = now_ms / period_ms;
        if !self.counts.contains_key(key) && self.counts.len() >= self.max_keys {
            self.forget_idle(index);
            if self.counts.len() >= self.max_keys {
                return false;
            }
        }
        let entry = self.counts.entry(key.to_owned()).or_insert(Counts {
            period_index: index,
            current: 0,
            previous: 0,
        });
        if entry.period_index != index {
            entry.previous = if entry.period_index + 1 == index {
                entry.current
            } else {
                0
            };
            entry.current = 0;
            entry.period_index = index;
        }
        let into_period = (now_ms % period_ms) as f64 / period_ms as f64;
        let estimate = f64::from(entry.previous) * (1.0 - into_period) + f64::from(entry.current);
        if estimate + 1.0 > f64::from(self.limit.requests) {
            return false;
        }
        entry.current += 1;
        true
    }

    /// Drops keys with no request in the current or the previous period (they count nothing).
    fn forget_idle(&mut self, index: u64) {
        self.counts.retain(|_, c| c.period_index + 1 >= index);
    }

    pub fn tracked_keys(&self) -> usize {
        self.counts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN_PER_MINUTE: Limit = Limit {
        requests: 10,
        period_secs: 60,
    };

    #[test]
    fn the_limit_holds_within_a_period_and_per_key() {
        let mut w = SlidingWindow::new(TEN_PER_MINUTE);
        for i in 0..10 {
            assert!(w.allow("ip:a", 1_000 + i), "request {i}");
        }
        assert!(!w.allow("ip:a", 2_000));
        assert!(w.allow("ip:b", 2_000), "another key has its own count");
    }

    #[test]
    fn a_burst_at_the_boundary_cannot_double_the_limit() {
        let mut w = SlidingWindow::new(TEN_PER_MINUTE);
        for _ in 0..10 {
            assert!(w.allow("k", 59_000));
        }
        // 1 s into the next period, the previous period still weighs 59/60 of its 10.
        assert!(!w.allow("k", 61_000));
        // Half-way, half of it is left: 5 more fit.
        let allowed = (0..10).filter(|_| w.allow("k", 90_000)).count();
        assert_eq!(allowed, 5);
        // Two periods later everything is forgotten.
        assert!(w.allow("k", 180_000));
    }

    #[test]
    fn refused_requests_are_not_counted() {
        let mut w = SlidingWindow::new(Limit {
            requests: 1,
            period_secs: 10,
        });
        assert!(w.allow("k", 0));
        for _ in 0..100 {
            assert!(!w.allow("k", 5_000));
        }
        // The previous period held one request; at 15 s half of it weighs: 0.5 + 1 > 1.
        assert!(!w.allow("k", 15_000));
        assert!(w.allow("k", 20_000));
    }

    #[test]
    fn a_flood_of_keys_is_bounded_and_idle_keys_are_forgotten() {
        let mut w = SlidingWindow::with_max_keys(TEN_PER_MINUTE, 3);
        for k in ["a", "b", "c"] {
            assert!(w.allow(k, 0));
        }
        assert!(!w.allow("d", 1_000), "full: a new key is refused");
        assert!(w.allow("a", 1_000), "known keys still count");
        // Two periods later the old keys are idle and make room.
        assert!(w.allow("d", 120_000));
        assert_eq!(w.tracked_keys(), 1);
    }
}
