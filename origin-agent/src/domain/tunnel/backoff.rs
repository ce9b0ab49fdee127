//! Exponential backoff with jitter and no retry limit, for restarting cloudflared.
//!
//! Attempt `n` (0-based, consecutive failures) waits a delay drawn uniformly from
//! `(nominal/2, nominal]` where `nominal = min(max, initial · 2ⁿ)` ("equal jitter": never less
//! than half the nominal delay, never more than `max`, and a crowd of agents restarting after
//! the same outage spreads out). The caller resets `n` to 0 once a connection has been stable
//! (see [`super::machine`]).

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    pub const DEFAULT: Backoff = Backoff {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(60),
    };

    /// The delay before the retry that follows `attempt` consecutive failures (0 = the first
    /// retry), cap applied, without jitter.
    pub fn nominal(&self, attempt: u32) -> Duration {
        let max = self.max.max(self.initial);
        // 2^attempt overflows quickly; once past the cap, stay there.
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.initial.checked_mul(factor).map_or(max, |d| d.min(max))
    }

    /// The delay with jitter; `unit` is a uniform sample from `[0, 1)` (values outside are
    /// clamped), so tests can pass fixed samples.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let nominal = self.nominal(attempt);
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        // (nominal/2, nominal]: 1.0 - unit/2 is in (0.5, 1.0].
        nominal.mul_f64(1.0 - unit / 2.0)
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff {
        initial: Duration::from_millis(500),
        max: Duration::from_secs(30),
    };

    #[test]
    fn nominal_doubles_up_to_the_cap() {
        let got: Vec<u64> = (0..9).map(|n| B.nominal(n).as_millis() as u64).collect();
        assert_eq!(
            got,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
    }

    #[test]
    fn no_overflow_and_no_retry_limit() {
        for n in [31, 32, 63, 64, 1000, u32::MAX] {
            assert_eq!(B.nominal(n), B.max, "attempt {n}");
            let d = B.delay(n, 0.999);
            assert!(d > B.max / 2 && d <= B.max, "attempt {n}: {d:?}");
        }
        let huge = Backoff {
            initial: Duration::from_secs(u64::MAX / 4),
            max: Duration::from_secs(u64::MAX / 2),
        };
        assert_eq!(huge.nominal(10), huge.max);
    }

    #[test]
    fn jitter_stays_within_half_to_full_nominal() {
        // A simple deterministic sweep of the unit interval, plus its edges.
        for n in 0..12 {
            let nominal = B.nominal(n);
            for i in 0..=1000 {
                let unit = f64::from(i) / 1000.0;
                let d = B.delay(n, unit);
                assert!(
                    d <= nominal,
                    "attempt {n}, unit {unit}: {d:?} > {nominal:?}"
                );
                assert!(d >= nominal / 2, "attempt {n}, unit {unit}: {d:?} < half");
            }
            assert_eq!(B.delay(n, 0.0), nominal);
        }
        // Garbage samples never leave the range.
        for unit in [-1.0, 2.0, f64::NAN, f64::INFINITY] {
            let d = B.delay(3, unit);
            assert!(d >= B.nominal(3) / 2 && d <= B.nominal(3), "{unit}: {d:?}");
        }
    }

    #[test]
    fn jitter_spreads_delays() {
        let a = B.delay(4, 0.1);
        let b = B.delay(4, 0.9);
        assert!(
            a > b,
            "different samples give different delays: {a:?} {b:?}"
        );
    }

    #[test]
    fn a_cap_below_initial_means_initial() {
        let b = Backoff {
            initial: Duration::from_secs(5),
            max: Duration::from_secs(1),
        };
        assert_eq!(b.nominal(0), Duration::from_secs(5));
        assert_eq!(b.nominal(7), Duration::from_secs(5));
    }
}
