//! The tunnel from the edge to this agent — cloudflared (Cloudflare), supervised as a child
//! process or observed when it runs on its own, or rathole (the self-hosted relay), supervised —
//! and the truth about it for the status endpoints.
//!
//! - [`provider`] — which program (cloudflared or rathole), and what differs between them;
//! - [`CloudflaredConfig`] — the `[cloudflared]` configuration section
//!   ([`crate::base::config::cloudflared`]), and the [`Mode`] and [`Timing`] it sets;
//! - [`rathole`] — rathole's client file, timing and log lines (`[rathole]`:
//!   [`crate::base::config::rathole`]);
//! - [`machine`] — the pure state machine (Disconnected → Connecting → Connected → Reconnecting
//!   → Backoff) and its timeouts;
//! - [`backoff`] — exponential backoff with jitter, no retry limit;
//! - [`readiness`] — cloudflared's `GET /ready` (the only proof of an edge connection);
//! - [`supervisor`] — the process and probe I/O driving the machine;
//! - [`cloudflared_config`] — the `config.yml` that `argus-relay tunnel config` writes.
//!
//! [`TunnelMonitor`] is what the rest of the agent sees: the latest snapshot, rendered by
//! [`TunnelMonitor::view`] so that it never says "connected" without a recent `/ready` proof.

pub mod backoff;
pub mod cloudflared_config;
pub mod machine;
pub mod provider;
pub mod rathole;
pub mod readiness;
pub mod supervisor;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use backoff::Backoff;
use machine::Timing;

pub use crate::base::config::cloudflared::CloudflaredConfig;
pub use machine::{Mode, Snapshot, TunnelState};
pub use provider::TunnelProvider;

/// Facts from the configuration, fixed for the agent's life.
#[derive(Debug)]
struct Watched {
    mode: Mode,
    provider: &'static str,
    metrics: Option<SocketAddr>,
    binary: PathBuf,
    hostname: Option<String>,
    /// A snapshot older than this (no probe verdict) proves nothing any more.
    stale_after: Duration,
}

#[derive(Debug, Default)]
struct Report {
    snapshot: Option<Snapshot>,
    pid: Option<u32>,
    version: Option<String>,
}

/// The shared, latest word on the tunnel. Cheap to clone.
#[derive(Clone, Debug)]
pub struct TunnelMonitor {
    watched: Option<Arc<Watched>>,
    report: Arc<Mutex<Report>>,
    carried: Arc<Carried>,
}

/// When the tunnel last carried a request the Worker signed, as milliseconds after `epoch`
/// (0: never). Written by the tunnel listener on every request, read by the supervisor.
#[derive(Debug)]
struct Carried {
    epoch: Instant,
    last_ms: AtomicU64,
}

impl TunnelMonitor {
    /// `None`: no tunnel section, nothing is watched.
    pub fn new(cfg: Option<&TunnelProvider>) -> TunnelMonitor {
        TunnelMonitor {
            watched: cfg.map(|c| {
                Arc::new(Watched {
                    mode: c.mode(),
                    provider: c.name(),
                    metrics: c.metrics(),
                    binary: c.binary().to_path_buf(),
                    hostname: c.far_end(),
                    stale_after: (c.probe_interval() * 3 + Duration::from_secs(2))
                        .max(c.probe_interval() + readiness_timeout(c.probe_interval()) * 2),
                })
            }),
            report: Arc::new(Mutex::new(Report::default())),
            carried: Arc::new(Carried {
                epoch: Instant::now(),
                last_ms: AtomicU64::new(0),
            }),
        }
    }

    /// A request with a valid edge signature arrived through the tunnel (the tunnel listener
    /// calls this): the tunnel program is alive and connected ([`machine::Machine::carried`]).
    pub fn carried_request(&self) {
        let ms = self.carried.epoch.elapsed().as_millis();
        let ms = u64::try_from(ms).unwrap_or(u64::MAX).max(1);
        self.carried.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// When the tunnel last carried a signed request, if ever.
    pub fn last_carried(&self) -> Option<Instant> {
        match self.carried.last_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(self.carried.epoch + Duration::from_millis(ms)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Report> {
        self.report.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn publish(&self, snapshot: Snapshot, pid: Option<u32>, version: Option<String>) {
        let mut r = self.lock();
        r.snapshot = Some(snapshot);
        r.pid = pid;
        r.version = version;
    }

    /// The status document's `tunnel` object. `detail` adds local facts (pid, metrics address,
    /// binary) for the owner's admin API; phones do not get internal addresses.
    pub fn view(&self, now: Instant, unix_now: u64, detail: bool) -> TunnelView {
        let Some(watched) = &self.watched else {
            return TunnelView::unmonitored();
        };
        let r = self.lock();
        let at = |t: Instant| unix_now.saturating_sub(now.saturating_duration_since(t).as_secs());
        let ago = |t: Instant| now.saturating_duration_since(t).as_secs();
        let mut view = TunnelView {
            provider: Some(watched.provider.into()),
            monitoring: match watched.mode {
                Mode::Supervised => "supervised".into(),
                Mode::Observed => "observed".into(),
            },
            state: "disconnected".into(),
            connected: Some(false),
            hostname: watched.hostname.clone(),
            cloudflared_version: r.version.clone(),
            process: detail.then(|| ProcessView {
                pid: r.pid,
                metrics: watched.metrics,
                binary: (watched.mode == Mode::Supervised)
                    .then(|| watched.binary.display().to_string()),
            }),
            ..TunnelView::unmonitored()
        };
        let Some(s) = &r.snapshot else {
            return view;
        };
        view.state = s.state.as_str().into();
        view.state_since = Some(at(s.state_since));
        view.reconnects = s.reconnects;
        view.restarts = s.restarts;
        view.checked_secs_ago = s.checked_at.map(ago);
        view.last_error = s.last_error.as_ref().map(|e| ErrorView {
            message: e.message.clone(),
            at: at(e.at),
            secs_ago: ago(e.at),
        });
        view.next_attempt_in_ms = s.retry_at.map(|t| {
            u64::try_from(t.saturating_duration_since(now).as_millis()).unwrap_or(u64::MAX)
        });
        if s.state == TunnelState::Connected {
            let fresh = s
                .checked_at
                .is_some_and(|t| now.saturating_duration_since(t) <= watched.stale_after);
            if fresh {
                view.connected = Some(true);
                view.ready_connections = s.ready_connections;
                view.connector_id = s.connector_id.clone();
                view.connected_since = s.connected_since.map(at);
                view.uptime_secs = s.connected_since.map(ago);
            } else {
                // The supervisor has not confirmed readiness lately: claim nothing.
                view.state = "unknown".into();
                let secs = s.checked_at.map(ago).unwrap_or(0);
                view.last_error = Some(ErrorView {
                    message: format!(
                        "{}'s readiness has not been checked for {secs} s",
                        watched.provider
                    ),
                    at: unix_now,
                    secs_ago: 0,
                });
            }
        }
        view
    }
}

/// How long one `/ready` probe may take: the interval, but at most 2 s and at least 250 ms.
pub fn readiness_timeout(interval: Duration) -> Duration {
    interval.clamp(Duration::from_millis(250), Duration::from_secs(2))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorView {
    pub message: String,
    /// Unix time.
    pub at: u64,
    pub secs_ago: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessView {
    pub pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary: Option<String>,
}

/// The `tunnel` object of the status documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelView {
    /// `cloudflared` or `rathole`; `null` when nothing is watched.
    pub provider: Option<Cow<'static, str>>,
    /// `supervised` (the agent runs cloudflared), `observed` (it only polls `/ready`) or `none`.
    pub monitoring: Cow<'static, str>,
    /// `connected`, `connecting`, `reconnecting`, `backoff`, `disconnected`, or `unknown`.
    pub state: Cow<'static, str>,
    /// `true` only with a recent proof (cloudflared's `/ready`, rathole's "control channel
    /// established"); `null` when nothing is watched.
    pub connected: Option<bool>,
    pub ready_connections: u32,
    pub connector_id: Option<String>,
    /// Unix time the current state began.
    pub state_since: Option<u64>,
    /// Unix time the current connection was established, and its age.
    pub connected_since: Option<u64>,
    pub uptime_secs: Option<u64>,
    /// Times the tunnel came back after having been connected.
    pub reconnects: u64,
    /// Times the tunnel program was started again.
    pub restarts: u64,
    pub last_error: Option<ErrorView>,
    /// In Backoff: when the tunnel program will be started again.
    pub next_attempt_in_ms: Option<u64>,
    /// Seconds since `/ready` last gave a verdict.
    pub checked_secs_ago: Option<u64>,
    /// cloudflared's public hostname, or the rathole server's `host:port`.
    pub hostname: Option<String>,
    pub cloudflared_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessView>,
}

impl TunnelView {
    pub(crate) fn unmonitored() -> TunnelView {
        TunnelView {
            provider: None,
            monitoring: "none".into(),
            state: "unknown".into(),
            connected: None,
            ready_connections: 0,
            connector_id: None,
            state_since: None,
            connected_since: None,
            uptime_secs: None,
            reconnects: 0,
            restarts: 0,
            last_error: None,
            next_attempt_in_ms: None,
            checked_secs_ago: None,
            hostname: None,
            cloudflared_version: None,
            process: None,
        }
    }
}

impl CloudflaredConfig {
    pub fn mode(&self) -> Mode {
        if self.enabled {
            Mode::Supervised
        } else {
            Mode::Observed
        }
    }

    pub fn timing(&self) -> Timing {
        Timing {
            ready_timeout: Duration::from_secs(self.ready_timeout_secs),
            unresponsive_timeout: Duration::from_secs(self.unresponsive_timeout_secs),
            stable_after: Duration::from_secs(self.stable_after_secs),
            backoff: Backoff {
                initial: Duration::from_millis(self.backoff_initial_ms),
                max: Duration::from_secs(self.backoff_max_secs),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::machine::{Machine, Probe};
    use super::*;

    fn cfg() -> CloudflaredConfig {
        CloudflaredConfig {
            token: Some("t".into()),
            ..CloudflaredConfig::default()
        }
    }

    #[test]
    fn unmonitored_claims_nothing() {
        let v = TunnelMonitor::new(None).view(Instant::now(), 1000, true);
        assert_eq!(v.monitoring, "none");
        assert_eq!(v.connected, None);
        assert!(v.process.is_none());
    }

    #[test]
    fn connected_needs_a_recent_proof() {
        let mon = TunnelMonitor::new(Some(&TunnelProvider::Cloudflared(cfg())));
        let t0 = Instant::now();
        let mut m = Machine::new(Mode::Supervised, Timing::default(), t0, Box::new(|| 0.5));
        m.start(t0);
        m.spawned(t0);
        mon.publish(m.snapshot(), Some(42), None);
        let v = mon.view(t0, 1000, false);
        assert_eq!((&*v.state, v.connected), ("connecting", Some(false)));
        assert!(v.process.is_none());

        m.probe(
            Probe::Ready {
                connections: 4,
                connector_id: Some("c".into()),
            },
            t0,
        );
        mon.publish(m.snapshot(), Some(42), Some("2024.8.2".into()));
        let v = mon.view(t0 + Duration::from_secs(1), 1001, true);
        assert_eq!((&*v.state, v.connected), ("connected", Some(true)));
        assert_eq!(v.ready_connections, 4);
        assert_eq!(v.connected_since, Some(1000));
        assert_eq!(v.uptime_secs, Some(1));
        assert_eq!(v.process.as_ref().and_then(|p| p.pid), Some(42));
        assert_eq!(v.cloudflared_version.as_deref(), Some("2024.8.2"));

        // Nobody checked for a minute: no claim.
        let v = mon.view(t0 + Duration::from_secs(60), 1060, false);
        assert_eq!(v.state, "unknown");
        assert_eq!(v.connected, Some(false));
        assert_eq!(v.ready_connections, 0);
        assert!(v.last_error.unwrap().message.contains("not been checked"));
    }

    #[test]
    fn the_section_sets_mode_and_timing() {
        let supervised = cfg();
        assert_eq!(supervised.mode(), Mode::Supervised);
        assert_eq!(supervised.timing().ready_timeout, Duration::from_secs(60));
        let observed = CloudflaredConfig {
            enabled: false,
            ..CloudflaredConfig::default()
        };
        assert_eq!(observed.mode(), Mode::Observed);
    }
}
