//! What the tunnel listener saw from the edge: requests with a valid signature, and the ones it
//! refused, by reason — and which of those refusals are *evidence* about the owner's setup.
//!
//! Anyone who finds the tunnel hostname can send it requests with any signature and any
//! timestamp, so a refusal by itself proves nothing about the Worker or the clock. The status
//! ([`crate::application::handlers::status`]) blames the owner's setup only on evidence a forger cannot produce:
//!
//! - **the clock**: `signature.stale` is only said of a request whose MAC verified (the MAC is
//!   checked before the time, [`argus_shared::signature::verify`]), i.e. one the holder of the
//!   secret signed: [`RejectionsView::last_stale_at`];
//! - **the Worker's secret**: a MAC that fails says nothing about who sent it, except for the
//!   owner's own check: `argus-relay doctor` asks the admin API for a one-time probe
//!   ([`EdgeStats::new_probe`], [`PROBE_TTL_SECS`]) and sends it through the Worker in the query
//!   (`?doctor_probe=…`); a refused request carrying a live probe came through the owner's
//!   Worker: [`RejectionsView::probe_mismatch_at`].
//!
//! Every other refusal is counted by reason (`signature.missing`: someone probing the tunnel
//! hostname directly) and reported as information.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use subtle::ConstantTimeEq;

/// At most this many distinct reasons are kept (they are `&'static str`s from our own code, so
/// this is a guard, not a limit anyone should reach).
const MAX_REASONS: usize = 64;
/// A doctor probe is recognised for this long after it was made.
pub const PROBE_TTL_SECS: u64 = 120;
/// At most this many live probes; past it the oldest is forgotten.
const MAX_PROBES: usize = 8;
/// The query parameter a probe travels in.
pub const PROBE_PARAM: &str = "doctor_probe";

#[derive(Debug, Default)]
pub struct EdgeStats {
    accepted: AtomicU64,
    rejected: Mutex<Rejections>,
    /// Live doctor probes: (value, expiry).
    probes: Mutex<Vec<(String, u64)>>,
}

#[derive(Debug, Default)]
struct Rejections {
    total: u64,
    by_reason: BTreeMap<&'static str, u64>,
    last: Option<(&'static str, u64)>,
    last_stale_at: Option<u64>,
    probe_mismatch_at: Option<u64>,
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
    /// The last refusal of a correctly signed request for its time (unix time).
    pub last_stale_at: Option<u64>,
    /// The last refusal of the owner's doctor probe, sent through the Worker, for a MAC that
    /// did not verify (unix time).
    pub probe_mismatch_at: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
#[error("the system random generator failed")]
pub struct RandomFailed(#[source] getrandom::Error);

impl EdgeStats {
    /// A request with a valid edge signature.
    pub fn accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub fn accepted_total(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// A request to `target` (path and query) the tunnel listener refused for its signature.
    pub fn rejected(&self, reason: &'static str, target: &str, now: u64) {
        let probe = reason == "signature.mismatch" && self.carries_live_probe(target, now);
        let mut r = self.rejected.lock().unwrap_or_else(|p| p.into_inner());
        r.total += 1;
        if r.by_reason.len() < MAX_REASONS || r.by_reason.contains_key(reason) {
            *r.by_reason.entry(reason).or_insert(0) += 1;
        }
        r.last = Some((reason, now));
        if reason == "signature.stale" {
            r.last_stale_at = Some(now);
        }
        if probe {
            r.probe_mismatch_at = Some(now);
        }
    }

    pub fn rejections(&self) -> RejectionsView {
        let r = self.rejected.lock().unwrap_or_else(|p| p.into_inner());
        RejectionsView {
            total: r.total,
            by_reason: r.by_reason.clone(),
            last: r.last.map(|(reason, at)| LastRejection { reason, at }),
            last_stale_at: r.last_stale_at,
            probe_mismatch_at: r.probe_mismatch_at,
        }
    }

    /// A new one-time probe for `argus-relay doctor` (128 random bits, base64url).
    pub fn new_probe(&self, now: u64) -> Result<String, RandomFailed> {
        let mut bytes = [0u8; 16];
        getrandom::getrandom(&mut bytes).map_err(RandomFailed)?;
        let probe = URL_SAFE_NO_PAD.encode(bytes);
        let mut probes = self.probes.lock().unwrap_or_else(|p| p.into_inner());
        probes.retain(|(_, expires)| *expires > now);
        if probes.len() >= MAX_PROBES {
            probes.remove(0);
        }
        probes.push((probe.clone(), now.saturating_add(PROBE_TTL_SECS)));
        Ok(probe)
    }

    /// `target`'s query has `doctor_probe=<a live probe>`; that probe is used up.
    fn carries_live_probe(&self, target: &str, now: u64) -> bool {
        let Some((_, query)) = target.split_once('?') else {
            return false;
        };
        let given: Vec<&str> = query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .filter(|(k, _)| *k == PROBE_PARAM)
            .map(|(_, v)| v)
            .collect();
        if given.is_empty() {
            return false;
        }
        let mut probes = self.probes.lock().unwrap_or_else(|p| p.into_inner());
        let found = probes.iter().position(|(p, expires)| {
            *expires > now
                && given
                    .iter()
                    .any(|g| bool::from(g.as_bytes().ct_eq(p.as_bytes())))
        });
        match found {
            Some(i) => {
                probes.remove(i);
                true
            }
            None => false,
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
        s.rejected("signature.mismatch", "/", 10);
        s.rejected("signature.mismatch", "/", 11);
        s.rejected("signature.missing", "/", 12);
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
        assert_eq!((r.last_stale_at, r.probe_mismatch_at), (None, None));
    }

    #[test]
    fn only_a_live_probe_makes_a_mismatch_evidence() {
        let s = EdgeStats::default();
        let probe = s.new_probe(100).unwrap();
        assert_eq!(probe.len(), 22);
        // Forged requests, without the probe or with a guessed one, are only counted.
        s.rejected("signature.mismatch", "/api/v1/health", 101);
        s.rejected(
            "signature.mismatch",
            "/api/v1/health?doctor_probe=AAAAAAAAAAAAAAAAAAAAAA",
            102,
        );
        assert_eq!(s.rejections().probe_mismatch_at, None);
        // The probe under another reason is not a secret mismatch.
        let with = format!("/api/v1/health?x=1&{PROBE_PARAM}={probe}");
        s.rejected("signature.missing", &with, 103);
        assert_eq!(s.rejections().probe_mismatch_at, None);
        s.rejected("signature.mismatch", &with, 104);
        assert_eq!(s.rejections().probe_mismatch_at, Some(104));
        // Used up: a replay of the same query proves nothing more.
        s.rejected("signature.mismatch", &with, 150);
        assert_eq!(s.rejections().probe_mismatch_at, Some(104));
    }

    #[test]
    fn probes_expire_and_are_capped() {
        let s = EdgeStats::default();
        let old = s.new_probe(0).unwrap();
        let late = format!("/?{PROBE_PARAM}={old}");
        s.rejected("signature.mismatch", &late, PROBE_TTL_SECS);
        assert_eq!(s.rejections().probe_mismatch_at, None);

        let first = s.new_probe(1000).unwrap();
        for i in 0..MAX_PROBES as u64 {
            s.new_probe(1000 + i).unwrap();
        }
        s.rejected(
            "signature.mismatch",
            &format!("/?{PROBE_PARAM}={first}"),
            1010,
        );
        assert_eq!(
            s.rejections().probe_mismatch_at,
            None,
            "the oldest was dropped"
        );
    }

    #[test]
    fn only_stale_refusals_date_the_clock() {
        let s = EdgeStats::default();
        s.rejected("signature.mismatch", "/", 5);
        assert_eq!(s.rejections().last_stale_at, None);
        s.rejected("signature.stale", "/", 6);
        s.rejected("signature.missing", "/", 7);
        assert_eq!(s.rejections().last_stale_at, Some(6));
    }
}
