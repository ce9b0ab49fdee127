//! Per-client failure windows for the pairing endpoints, in memory.
//!
//! A client (the phone's IP as the edge saw it) with [`MAX_FAILURES`] failed code attempts in the
//! last [`WINDOW_SECS`] is refused with 429 before its next attempt reaches the store, so one
//! guesser cannot burn the 10-tries-per-code budget of everyone's codes. Memory is bounded: at
//! most [`MAX_TRACKED`] clients are remembered; when full, the oldest entries go first.
//! (Restarting the agent forgets the windows; the per-code cap in the store does not forget.)

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Failures allowed per client per window.
pub const MAX_FAILURES: usize = 5;
/// The window, in seconds.
pub const WINDOW_SECS: u64 = 600;
/// Clients remembered at once.
pub const MAX_TRACKED: usize = 10_000;

/// Who the failures are charged to. Requests with no known client IP share one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Client {
    Ip(IpAddr),
    Unknown,
}

impl From<Option<IpAddr>> for Client {
    fn from(ip: Option<IpAddr>) -> Self {
        match ip {
            // IPv6 clients are charged per /64: one subscriber usually holds a whole /64.
            Some(IpAddr::V6(v6)) => {
                let mut o = v6.octets();
                o[8..].fill(0);
                Client::Ip(IpAddr::V6(o.into()))
            }
            Some(ip) => Client::Ip(ip),
            None => Client::Unknown,
        }
    }
}

#[derive(Default)]
pub struct FailureLimiter {
    failures: Mutex<HashMap<Client, Vec<u64>>>,
}

impl FailureLimiter {
    /// `Err(retry_after_secs)` when `client` is locked out at `now`.
    pub fn check(&self, client: Client, now: u64) -> Result<(), u64> {
        let mut map = self.lock();
        let Some(times) = map.get_mut(&client) else {
            return Ok(());
        };
        times.retain(|&t| t + WINDOW_SECS > now);
        if times.len() >= MAX_FAILURES {
            let oldest = times.iter().copied().min().unwrap_or(now);
            return Err((oldest + WINDOW_SECS).saturating_sub(now).max(1));
        }
        Ok(())
    }

    /// Charges one failure to `client`.
    pub fn record_failure(&self, client: Client, now: u64) {
        let mut map = self.lock();
        if map.len() >= MAX_TRACKED && !map.contains_key(&client) {
            map.retain(|_, times| times.iter().any(|&t| t + WINDOW_SECS > now));
            if map.len() >= MAX_TRACKED {
                // Still full of live entries: drop the one whose last failure is oldest.
                if let Some(victim) = map
                    .iter()
                    .min_by_key(|(_, t)| t.iter().copied().max().unwrap_or(0))
                    .map(|(c, _)| *c)
                {
                    map.remove(&victim);
                }
            }
        }
        let times = map.entry(client).or_default();
        times.retain(|&t| t + WINDOW_SECS > now);
        times.push(now);
        if times.len() > MAX_FAILURES {
            times.remove(0);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Client, Vec<u64>>> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Client {
        Client::from(Some(s.parse::<IpAddr>().unwrap()))
    }

    #[test]
    fn five_failures_lock_a_client_out_for_the_rest_of_the_window() {
        let l = FailureLimiter::default();
        let c = ip("203.0.113.7");
        for i in 0..MAX_FAILURES as u64 {
            assert_eq!(l.check(c, 1000 + i), Ok(()));
            l.record_failure(c, 1000 + i);
        }
        assert_eq!(l.check(c, 1010), Err(WINDOW_SECS - 10));
        assert_eq!(
            l.check(ip("203.0.113.8"), 1010),
            Ok(()),
            "others are not affected"
        );
        assert_eq!(
            l.check(c, 1000 + WINDOW_SECS),
            Ok(()),
            "the oldest failure aged out"
        );
    }

    #[test]
    fn ipv6_clients_are_grouped_by_64() {
        let l = FailureLimiter::default();
        for i in 0..MAX_FAILURES {
            l.record_failure(ip(&format!("2001:db8:1:2::{i:x}")), 5);
        }
        assert!(l.check(ip("2001:db8:1:2:ffff::1"), 6).is_err());
        assert!(l.check(ip("2001:db8:1:3::1"), 6).is_ok());
    }

    #[test]
    fn memory_stays_bounded() {
        let l = FailureLimiter::default();
        for i in 0..(MAX_TRACKED as u32 + 50) {
            l.record_failure(Client::Ip(IpAddr::from(i.to_be_bytes())), 10);
        }
        assert!(l.lock().len() <= MAX_TRACKED);
    }
}
