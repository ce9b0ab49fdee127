//! `GET /api/v1/relay/status` (owner devices, through the edge) and `GET /admin/status` (the
//! owner's CLI): what the relay can prove about itself right now, and, in plain words, what is
//! wrong.
//!
//! ```json
//! {
//!   "status": "ok" | "degraded",
//!   "problems": ["the tunnel is reconnecting: cloudflared exited (exit status 1)"],
//!   "instance_id": "9f2c…", "uptime_secs": 3600,
//!   "tunnel": { "monitoring": "supervised", "state": "connected", "connected": true,
//!               "ready_connections": 4, "connector_id": "…", "state_since": 1764120000,
//!               "connected_since": 1764120000, "uptime_secs": 60, "reconnects": 1,
//!               "restarts": 0, "last_error": {"message", "at", "secs_ago"} | null,
//!               "next_attempt_in_ms": null, "checked_secs_ago": 0, "hostname": "…",
//!               "cloudflared_version": "2024.8.2" },
//!   "edge": { "last_request_at": 1764123600, "last_request_secs_ago": 2,
//!             "signed_requests": 120,
//!             "rejected": {"total": 0, "by_reason": {}, "last": null} },
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
//! ([`crate::tunnel::TunnelMonitor::view`]); `edge.last_request_at` is the time of the last
//! request that arrived with a valid edge signature — proof that phone → Worker → tunnel → agent
//! worked then. The admin variant adds local detail (cloudflared's pid, metrics address).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hyper::{Response, StatusCode};
use serde::Serialize;

use crate::backend_session::{SessionState, SessionView};
use crate::body::{self, Body};
use crate::clock::unix_now;
use crate::edge_stats::RejectionsView;
use crate::error::AgentError;
use crate::state::AppState;
use crate::tunnel::TunnelView;

/// The backend's health check gets this long, whatever the proxy timeout.
const BACKEND_CHECK_TIMEOUT: Duration = Duration::from_secs(3);
/// Signature refusals this recent are reported as a problem.
const RECENT_REJECTION_SECS: u64 = 600;

#[derive(Serialize)]
pub struct RelayStatus {
    pub status: &'static str,
    pub problems: Vec<String>,
    pub instance_id: String,
    pub uptime_secs: u64,
    pub tunnel: TunnelView,
    pub edge: EdgeStatus,
    pub backend: BackendStatus,
    pub keys: KeysStatus,
    pub devices: DevicesStatus,
    pub versions: Versions,
}

#[derive(Serialize)]
pub struct EdgeStatus {
    /// Unix time of the last request with a valid edge signature.
    pub last_request_at: Option<u64>,
    pub last_request_secs_ago: Option<u64>,
    /// Requests with a valid edge signature since the agent started.
    pub signed_requests: u64,
    /// Requests the tunnel listener refused for their signature, by reason.
    pub rejected: RejectionsView,
}

#[derive(Serialize)]
pub struct BackendStatus {
    pub reachable: bool,
    pub status: Option<u16>,
    pub latency_ms: Option<u64>,
    /// What the agent sends ArgusAI now: its user session, the API key fallback, or nothing.
    pub credential: &'static str,
    /// The agent's ArgusAI session ([`crate::backend_session`]).
    pub session: Option<SessionView>,
}

#[derive(Serialize)]
pub struct KeysStatus {
    pub signing_kid: String,
    pub verification_kids: Vec<String>,
}

#[derive(Serialize)]
pub struct DevicesStatus {
    /// Paired, not revoked.
    pub paired: u64,
}

#[derive(Serialize)]
pub struct Versions {
    pub agent: &'static str,
    pub cloudflared: Option<String>,
}

async fn backend_status(state: &AppState) -> BackendStatus {
    let started = Instant::now();
    let session = state.backend.session().map(|s| s.view());
    let credential = match &session {
        Some(v) if matches!(v.state, SessionState::Active | SessionState::Expiring) => "session",
        _ if state.backend.has_api_key() => "api_key",
        _ => "none",
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
        let fallback = if backend.credential == "api_key" {
            " (meanwhile the agent sends its API key: ArgusAI checks it with bcrypt on every \
             request, and refuses it on user-only routes)"
        } else {
            ""
        };
        out.push(format!("{problem}{fallback}"));
    }
    if let Some(last) = &edge.rejected.last {
        if last.reason == "signature.mismatch"
            && now.saturating_sub(last.at) <= RECENT_REJECTION_SECS
        {
            out.push(format!(
                "requests signed with another secret were refused ({} so far, the last {} s ago): \
                 the Worker's RELAY_SIGNING_SECRET does not match this agent's \
                 (`argus-relay worker-config` prints it)",
                edge.rejected
                    .by_reason
                    .get("signature.mismatch")
                    .copied()
                    .unwrap_or(0),
                now.saturating_sub(last.at)
            ));
        }
        if last.reason == "signature.stale" && now.saturating_sub(last.at) <= RECENT_REJECTION_SECS
        {
            out.push(
                "edge requests were refused as too old or too new: this machine's clock is off \
                 (enable NTP time sync)"
                    .into(),
            );
        }
    }
    out
}

/// The whole status document.
pub async fn collect(state: &AppState, detail: bool) -> Result<RelayStatus, AgentError> {
    let backend = backend_status(state).await;
    let now = unix_now();
    let tunnel = state.tunnel.view(Instant::now(), now, detail);
    let last = state.last_edge_request.load(Ordering::Relaxed);
    let paired = state.store.device_count().map_err(|e| {
        tracing::error!(error = %e, "store failure");
        AgentError::Internal
    })?;
    let edge = EdgeStatus {
        last_request_at: (last != 0).then_some(last),
        last_request_secs_ago: (last != 0).then(|| now.saturating_sub(last)),
        signed_requests: state.edge_stats.accepted_total(),
        rejected: state.edge_stats.rejections(),
    };
    let problems = problems(&tunnel, &backend, &edge, now);
    let keys = state.keys.verification_keys();
    Ok(RelayStatus {
        status: if problems.is_empty() {
            "ok"
        } else {
            "degraded"
        },
        problems,
        instance_id: state.instance_id.clone(),
        uptime_secs: now.saturating_sub(state.started_at),
        versions: Versions {
            agent: env!("CARGO_PKG_VERSION"),
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

pub async fn answer(state: &AppState, detail: bool) -> Result<Response<Body>, AgentError> {
    Ok(body::json(StatusCode::OK, &collect(state, detail).await?))
}
