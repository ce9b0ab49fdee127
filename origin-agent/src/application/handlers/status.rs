//! `GET /api/v1/relay/status` (owner devices, through the edge) and `GET /admin/status` (the
//! owner's CLI): what the relay can prove about itself right now, and, in plain words, what is
//! wrong.
//!
//! ```json
//! {
//!   "status": "ok" | "degraded",
//!   "problems": ["the tunnel is reconnecting: cloudflared exited (exit status 1)"],
//!   "notes": ["3 requests without a valid edge signature reached the tunnel …"],
//!   "instance_id": "9f2c…", "uptime_secs": 3600,
//!   "tunnel": { "monitoring": "supervised", "state": "connected", "connected": true,
//!               "ready_connections": 4, "connector_id": "…", "state_since": 1764120000,
//!               "connected_since": 1764120000, "uptime_secs": 60, "reconnects": 1,
//!               "restarts": 0, "last_error": {"message", "at", "secs_ago"} | null,
//!               "next_attempt_in_ms": null, "checked_secs_ago": 0, "hostname": "…",
//!               "cloudflared_version": "2024.8.2" },
//!   "edge": { "last_request_at": 1764123600, "last_request_secs_ago": 2,
//!             "signed_requests": 120,
//!             "rejected": {"total": 0, "by_reason": {}, "last": null,
//!                          "last_stale_at": null, "probe_mismatch_at": null} },
//!   "backend": { "reachable": true, "status": 200, "latency_ms": 3,
//!                "credential": "session" | "api_key" | "none",
//!                "session": { "state": "active" | "starting" | "expiring" | "refused" | "missing",
//!                             "username": "admin", "role": "admin", "signed_in_at": 1764120000,
//!                             "access_expires_in_secs": 80000, "last_renewed_secs_ago": 6400,
//!                             "refreshes": 2, "last_error": null, "problem": null } },
//!   "keys": { "signing_kid": "…", "verification_kids": ["…"] },
//!   "devices": { "paired": 2 },
//!   "versions": { "agent": "0.1.0", "cloudflared": "2024.8.2" }
//! }
//! ```
//!
//! Truthfulness: `tunnel.connected` is `true` only with a recent `/ready` proof from cloudflared
//! ([`crate::domain::tunnel::TunnelMonitor::view`]); `edge.last_request_at` is the time of the last
//! request that arrived with a valid edge signature — proof that phone → Worker → tunnel → agent
//! worked then. The admin variant adds local detail (cloudflared's pid, metrics address).
//!
//! `problems` (which make the status `degraded`) name the owner's setup only on evidence nobody
//! else can produce ([`crate::domain::auth::edge::stats`]): the clock, from correctly signed requests refused
//! for their time; the Worker's secret, from the owner's own `argus-relay doctor` probe refused
//! for its MAC. Other refused requests — anyone can send the tunnel a bad signature — are
//! `notes`: information, not a fault.

use std::time::{Duration, Instant};

use hyper::{Response, StatusCode};
use serde::{Deserialize, Serialize};

use crate::application::state::AppState;
use crate::base::clock::unix_now;
use crate::base::error::AgentError;
use crate::base::http::body::{self, Body};
use crate::domain::auth::edge::stats::RejectionsView;
use crate::domain::proxy::backend_session::{SessionState, SessionView};
use crate::domain::tunnel::TunnelView;

/// The backend's health check gets this long, whatever the proxy timeout.
const BACKEND_CHECK_TIMEOUT: Duration = Duration::from_secs(3);
/// Signature refusals this recent are reported as a problem.
const RECENT_REJECTION_SECS: u64 = 600;

/// The status document: serialized by the agent, deserialized by `argus-relay doctor` (one
/// definition, so the two cannot drift apart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayStatus {
    pub status: Health,
    pub problems: Vec<String>,
    /// Things worth knowing that are not the owner's misconfiguration.
    pub notes: Vec<String>,
    pub instance_id: String,
    pub uptime_secs: u64,
    pub tunnel: TunnelView,
    pub edge: EdgeStatus,
    pub backend: BackendStatus,
    pub keys: KeysStatus,
    pub devices: DevicesStatus,
    pub versions: Versions,
}

/// `ok`, or `degraded` when there are `problems`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Ok,
    Degraded,
}

/// What the agent sends ArgusAI now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Credential {
    /// Its user session ([`crate::backend_session`]).
    Session,
    /// The API key fallback.
    ApiKey,
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeStatus {
    /// Unix time of the last request with a valid edge signature.
    pub last_request_at: Option<u64>,
    pub last_request_secs_ago: Option<u64>,
    /// Requests with a valid edge signature since the agent started.
    pub signed_requests: u64,
    /// Requests the tunnel listener refused for their signature, by reason.
    pub rejected: RejectionsView,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendStatus {
    pub reachable: bool,
    pub status: Option<u16>,
    pub latency_ms: Option<u64>,
    /// What the agent sends ArgusAI now: its user session, the API key fallback, or nothing.
    pub credential: Credential,
    /// The agent's ArgusAI session ([`crate::domain::proxy::backend_session`]).
    pub session: Option<SessionView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysStatus {
    pub signing_kid: String,
    pub verification_kids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevicesStatus {
    /// Paired, not revoked.
    pub paired: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versions {
    pub agent: String,
    pub cloudflared: Option<String>,
}

async fn backend_status(state: &AppState) -> BackendStatus {
    let started = Instant::now();
    let session = state.backend.session().map(|s| s.view());
    let credential = match &session {
        Some(v) if matches!(v.state, SessionState::Active | SessionState::Expiring) => {
            Credential::Session
        }
        _ if state.backend.has_api_key() => Credential::ApiKey,
        _ => Credential::None,
    };
    match tokio::time::timeout(BACKEND_CHECK_TIMEOUT, state.backend.get("/health")).await {
        Ok(Ok(resp)) => BackendStatus {
            reachable: true,
            status: Some(resp.status().as_u16()),
            latency_ms: u64::try_from(started.elapsed().as_millis()).ok(),
            credential,
            session,
        },
        _ => BackendStatus {
            reachable: false,
            status: None,
            latency_ms: None,
            credential,
            session,
        },
    }
}

/// The problems, in plain words, that make the status `degraded`.
fn problems(
    tunnel: &TunnelView,
    backend: &BackendStatus,
    edge: &EdgeStatus,
    now: u64,
) -> Vec<String> {
    let mut out = Vec::new();
    if tunnel.connected == Some(false) {
        let mut p = format!("the tunnel is not connected (state: {})", tunnel.state);
        if let Some(e) = &tunnel.last_error {
            p.push_str(&format!("; last error {} s ago: {}", e.secs_ago, e.message));
        }
        if let Some(ms) = tunnel.next_attempt_in_ms {
            p.push_str(&format!("; next attempt in {:.1} s", ms as f64 / 1000.0));
        }
        out.push(p);
    }
    match (backend.reachable, backend.status) {
        (false, _) => out.push("ArgusAI (the backend) does not answer its health check".into()),
        (true, Some(s)) if !(200..300).contains(&s) => {
            out.push(format!("ArgusAI's health check answers HTTP {s}"))
        }
        _ => {}
    }
    if let Some(problem) = backend.session.as_ref().and_then(|s| s.problem.as_ref()) {
        let fallback = if backend.credential == Credential::ApiKey {
            " (meanwhile the agent sends its API key: ArgusAI checks it with bcrypt on every \
             request, and refuses it on user-only routes)"
        } else {
            ""
        };
        out.push(format!("{problem}{fallback}"));
    }
    out.extend(edge_problems(edge, now));
    out
}

/// Within `RECENT_REJECTION_SECS` of `now`.
fn recent(at: Option<u64>, now: u64) -> Option<u64> {
    at.map(|t| now.saturating_sub(t))
        .filter(|ago| *ago <= RECENT_REJECTION_SECS)
}

/// The owner's setup, blamed only on evidence a forger cannot produce ([`crate::domain::auth::edge::stats`]).
fn edge_problems(edge: &EdgeStatus, now: u64) -> Vec<String> {
    let mut out = Vec::new();
    let r = &edge.rejected;
    // The owner's own check came through the Worker with another secret, and no correctly
    // signed request has arrived since (which would mean it was fixed).
    if let Some(ago) = recent(r.probe_mismatch_at, now) {
        if edge.last_request_at < r.probe_mismatch_at {
            out.push(format!(
                "`argus-relay doctor`'s request through the Worker {ago} s ago was signed with \
                 another secret: the Worker's RELAY_SIGNING_SECRET does not match this agent's \
                 (`argus-relay worker-config` prints it)"
            ));
        }
    }
    if let Some(ago) = recent(r.last_stale_at, now) {
        out.push(format!(
            "correctly signed edge requests were refused as too old or too new (the last {ago} s \
             ago): this machine's clock is off (enable NTP time sync)"
        ));
    }
    out
}

/// Refused requests that prove nothing about the setup, as information.
fn edge_notes(edge: &EdgeStatus, now: u64) -> Vec<String> {
    let r = &edge.rejected;
    let Some(last) = &r.last else {
        return Vec::new();
    };
    let Some(ago) = recent(Some(last.at), now) else {
        return Vec::new();
    };
    let stale = r.by_reason.get("signature.stale").copied().unwrap_or(0);
    let unsigned = r.total.saturating_sub(stale);
    if unsigned == 0 {
        return Vec::new();
    }
    vec![format!(
        "{unsigned} request{} without a valid edge signature reached the tunnel and {} refused \
         (the last {ago} s ago: {}). Anyone who finds the tunnel's hostname can send these; they \
         say nothing about this setup. If phones cannot connect through the relay, \
         `argus-relay doctor` checks the Worker's secret",
        if unsigned == 1 { "" } else { "s" },
        if unsigned == 1 { "was" } else { "were" },
        last.reason,
    )]
}

/// The whole status document.
pub async fn collect(state: &AppState, detail: bool) -> Result<RelayStatus, AgentError> {
    let backend = backend_status(state).await;
    let now = unix_now();
    let tunnel = state.tunnel.view(Instant::now(), now, detail);
    let last = state
        .tunnel
        .last_carried()
        .map(|at| now.saturating_sub(Instant::now().saturating_duration_since(at).as_secs()));
    let paired = state.store.device_count().map_err(|e| {
        tracing::error!(error = %e, "store failure");
        AgentError::Internal
    })?;
    let edge = EdgeStatus {
        last_request_at: last,
        last_request_secs_ago: last.map(|last| now.saturating_sub(last)),
        signed_requests: state.edge_stats.accepted_total(),
        rejected: state.edge_stats.rejections(),
    };
    let problems = problems(&tunnel, &backend, &edge, now);
    let notes = edge_notes(&edge, now);
    let keys = state.keys.verification_keys();
    Ok(RelayStatus {
        status: if problems.is_empty() {
            Health::Ok
        } else {
            Health::Degraded
        },
        problems,
        notes,
        instance_id: state.instance_id.clone(),
        uptime_secs: now.saturating_sub(state.started_at),
        versions: Versions {
            agent: env!("CARGO_PKG_VERSION").into(),
            cloudflared: tunnel.cloudflared_version.clone(),
        },
        tunnel,
        edge,
        backend,
        keys: KeysStatus {
            signing_kid: state.keys.current().kid.clone(),
            verification_kids: keys.kids().into_iter().map(str::to_owned).collect(),
        },
        devices: DevicesStatus { paired },
    })
}

#[cfg(test)]
impl RelayStatus {
    /// A plausible document (tests of the status and of its readers).
    pub(crate) fn example() -> RelayStatus {
        RelayStatus {
            status: Health::Ok,
            problems: Vec::new(),
            notes: Vec::new(),
            instance_id: "9f2c".into(),
            uptime_secs: 3600,
            tunnel: TunnelView::unmonitored(),
            edge: EdgeStatus {
                last_request_at: None,
                last_request_secs_ago: None,
                signed_requests: 0,
                rejected: crate::domain::auth::edge::stats::EdgeStats::default().rejections(),
            },
            backend: BackendStatus {
                reachable: true,
                status: Some(200),
                latency_ms: Some(3),
                credential: Credential::ApiKey,
                session: None,
            },
            keys: KeysStatus {
                signing_kid: "k1".into(),
                verification_kids: vec!["k1".into()],
            },
            devices: DevicesStatus { paired: 2 },
            versions: Versions {
                agent: env!("CARGO_PKG_VERSION").into(),
                cloudflared: None,
            },
        }
    }
}

pub async fn answer(state: &AppState, detail: bool) -> Result<Response<Body>, AgentError> {
    Ok(body::json(StatusCode::OK, &collect(state, detail).await?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::auth::edge::stats::EdgeStats;

    const NOW: u64 = 10_000;

    #[test]
    fn the_status_document_round_trips_through_json() {
        let mut status = RelayStatus::example();
        let stats = EdgeStats::default();
        stats.rejected("signature.stale", "/api/v1/events", NOW - 30);
        status.edge = edge(&stats, Some(NOW - 1));
        status.backend.session = Some(SessionView {
            state: SessionState::Expiring,
            username: Some("admin".into()),
            role: Some("admin".into()),
            signed_in_at: Some(1),
            access_expires_in_secs: Some(30),
            last_renewed_secs_ago: Some(86_000),
            refreshes: 2,
            last_error: Some("ArgusAI did not answer".into()),
            problem: Some("renewing fails".into()),
        });
        status.tunnel.process = Some(crate::domain::tunnel::ProcessView {
            pid: Some(42),
            metrics: Some("127.0.0.1:20241".parse().unwrap()),
            binary: None,
        });
        let json = serde_json::to_string(&status).unwrap();
        let back: RelayStatus = serde_json::from_str(&json).unwrap();
        assert_eq!(back, status);
        // The names the documentation above promises.
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["status"], "ok");
        assert_eq!(v["backend"]["credential"], "api_key");
        assert_eq!(v["backend"]["session"]["state"], "expiring");
        assert_eq!(v["edge"]["rejected"]["by_reason"]["signature.stale"], 1);
        assert_eq!(v["tunnel"]["monitoring"], "none");
        assert_eq!(v["devices"]["paired"], 2);
    }

    fn edge(stats: &EdgeStats, last_valid: Option<u64>) -> EdgeStatus {
        EdgeStatus {
            last_request_at: last_valid,
            last_request_secs_ago: last_valid.map(|t| NOW - t),
            signed_requests: stats.accepted_total(),
            rejected: stats.rejections(),
        }
    }

    #[test]
    fn forged_signatures_and_timestamps_blame_nothing() {
        let stats = EdgeStats::default();
        // What anyone can send: a random MAC (refused as a mismatch whatever its timestamp),
        // no signature, a malformed one — with or without valid traffic around it.
        for reason in [
            "signature.mismatch",
            "signature.missing",
            "signature.malformed",
        ] {
            stats.rejected(reason, "/api/v1/health?doctor_probe=guess", NOW - 5);
        }
        for last_valid in [None, Some(NOW - 3_000), Some(NOW - 1)] {
            let e = edge(&stats, last_valid);
            assert!(edge_problems(&e, NOW).is_empty(), "{last_valid:?}");
            let notes = edge_notes(&e, NOW);
            assert_eq!(notes.len(), 1);
            assert!(notes[0].starts_with("3 requests without a valid edge signature"));
            assert!(!notes[0].contains("does not match"));
        }
        // Old ones are not mentioned at all.
        assert!(edge_notes(&edge(&stats, None), NOW + RECENT_REJECTION_SECS + 10).is_empty());
    }

    #[test]
    fn the_owners_probe_refused_for_its_mac_blames_the_secret_until_fixed() {
        let stats = EdgeStats::default();
        let probe = stats.new_probe(NOW - 10).unwrap();
        stats.rejected(
            "signature.mismatch",
            &format!("/api/v1/health?doctor_probe={probe}"),
            NOW - 9,
        );
        let p = edge_problems(&edge(&stats, Some(NOW - 3_000)), NOW);
        assert_eq!(p.len(), 1);
        assert!(
            p[0].contains("RELAY_SIGNING_SECRET does not match"),
            "{p:?}"
        );
        assert!(edge_problems(&edge(&stats, None), NOW)[0].contains("does not match"));
        // A correctly signed request since: fixed.
        assert!(edge_problems(&edge(&stats, Some(NOW - 2)), NOW).is_empty());
        // Forgotten after the window.
        assert!(edge_problems(&edge(&stats, None), NOW + RECENT_REJECTION_SECS).is_empty());
    }

    #[test]
    fn signed_requests_refused_for_their_time_blame_the_clock() {
        let stats = EdgeStats::default();
        stats.rejected("signature.stale", "/api/v1/events", NOW - 30);
        let p = edge_problems(&edge(&stats, None), NOW);
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("clock is off"), "{p:?}");
        assert!(edge_notes(&edge(&stats, None), NOW).is_empty());
        assert!(edge_problems(&edge(&stats, None), NOW + RECENT_REJECTION_SECS).is_empty());
    }
}
