//! What the tunnel listener saw from the edge: requests with a valid signature, and the ones it
//! refused, by reason. A Worker deployed with the wrong `RELAY_SIGNING_SECRET` shows up here as
//! `signature.mismatch`, a clock that drifted as `signature.stale`, someone probing the tunnel
//! hostname directly as `signature.missing` — `argus-relay doctor` reads these to say which.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

/// At most this many distinct reasons are kept (they are `&'static str`s from our own code, so
/// this is a guard, not a limit anyone should reach).
const MAX_REASONS: usize = 64;

#[derive(Debug, Default)]
pub struct EdgeStats {
    accepted: AtomicU64,
    rejected: Mutex<Rejections>,
}

#[derive(Debug, Default)]
struct Rejections {
    total: u64,
    by_reason: BTreeMap<&'static str, u64>,
    last: Option<(&'static str, u64)>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LastRejection {
    pub reason: &'static str,
    /// Unix time.
    pub at: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RejectionsView {
    pub total: u64,
    pub by_reason: BTreeMap<&'static str, u64>,
    pub last: Option<LastRejection>,
}

impl EdgeStats {
    /// A request with a valid edge signature.
    pub fn accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub fn accepted_total(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// A request the tunnel listener refused for its signature.
    pub fn rejected(&self, reason: &'static str, now: u64) {
        let mut r = self.rejected.lock().unwrap_or_else(|p| p.into_inner());
        r.total += 1;
        if r.by_reason.len() < MAX_REASONS || r.by_reason.contains_key(reason) {
            *r.by_reason.entry(reason).or_insert(0) += 1;
        }
        r.last = Some((reason, now));
    }

    pub fn rejections(&self) -> RejectionsView {
        let r = self.rejected.lock().unwrap_or_else(|p| p.into_inner());
        RejectionsView {
            total: r.total,
            by_reason: r.by_reason.clone(),
            last: r.last.map(|(reason, at)| LastRejection { reason, at }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_reason() {
        let s = EdgeStats::default();
        s.accepted();
        s.rejected("signature.mismatch", 10);
        s.rejected("signature.mismatch", 11);
        s.rejected("signature.missing", 12);
        let r = s.rejections();
        assert_eq!(s.accepted_total(), 1);
        assert_eq!(r.total, 3);
        assert_eq!(r.by_reason["signature.mismatch"], 2);
        assert_eq!(
            r.last,
            Some(LastRejection {
                reason: "signature.missing",
                at: 12
            })
        );
    }
}
