//! `GET /api/v1/relay/status`: what the relay can prove about itself right now.

use std::sync::atomic::Ordering;

use hyper::{Response, StatusCode};
use serde::Serialize;

use crate::body::{self, Body};
use crate::clock::unix_now;
use crate::error::AgentError;
use crate::state::AppState;

#[derive(Serialize)]
struct RelayStatus {
    status: &'static str,
    version: &'static str,
    uptime_secs: u64,
    devices: u64,
    backend: BackendStatus,
    edge: EdgeStatus,
}

#[derive(Serialize)]
struct BackendStatus {
    reachable: bool,
    status: Option<u16>,
}

#[derive(Serialize)]
struct EdgeStatus {
    /// Seconds since the last request with a valid edge signature.
    last_request_secs_ago: Option<u64>,
}

pub async fn answer(state: &AppState) -> Result<Response<Body>, AgentError> {
    let backend = match state.backend.get("/health").await {
        Ok(resp) => BackendStatus {
            reachable: true,
            status: Some(resp.status().as_u16()),
        },
        Err(_) => BackendStatus {
            reachable: false,
            status: None,
        },
    };
    let now = unix_now();
    let last = state.last_edge_request.load(Ordering::Relaxed);
    let devices = state.store.device_count().map_err(|e| {
        tracing::error!(error = %e, "store failure");
        AgentError::Internal
    })?;
    Ok(body::json(
        StatusCode::OK,
        &RelayStatus {
            status: if backend.reachable { "ok" } else { "degraded" },
            version: env!("CARGO_PKG_VERSION"),
            uptime_secs: now.saturating_sub(state.started_at),
            devices,
            backend,
            edge: EdgeStatus {
                last_request_secs_ago: (last != 0).then(|| now.saturating_sub(last)),
            },
        },
    ))
}
