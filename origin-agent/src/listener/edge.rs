//! The tunnel listener: what cloudflared forwards from the edge Worker.
//!
//! Order: edge signature (and body digest) → body size cap → shared router. Nothing reaches
//! routing, token checks or the backend without a valid, fresh, never-seen signature from the
//! Worker.
//!
//! Bodies: digest-signed ones (≤ 1 MiB) are read and checked; streamed ones (`unsigned-body`) pass
//! through capped at `limits.max_body_bytes` (a larger `Content-Length` is refused with 413 before
//! anything is read; a chunked body that grows past it is cut and answered 413) and cut when no
//! data arrives for `limits.idle_timeout_secs`.

use std::net::SocketAddr;
use std::sync::Arc;

use argus_shared::edge_state::{self, EdgeState, RevokedDevice, EDGE_STATE_PATH};
use argus_shared::signature::BodyBinding;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::application::router::{self, Dispatched};
use crate::application::state::AppState;
use crate::base::clock::unix_now;
use crate::base::error::AgentError;
use crate::base::http::body::{self, Body};
use crate::base::http::log::Arrival;
use crate::base::http::{RequestContext, Via};
use crate::base::metrics::{RouteLabel, METRICS};
use crate::domain::auth::edge::signature::{self, EdgeFacts};
use crate::domain::proxy::backend::is_websocket_upgrade;
use crate::domain::proxy::body as proxy_body;
use crate::domain::store::MAX_ACCESS_TOKEN_LIFETIME_SECS;

/// Digest-signed bodies are at most this large (the Worker streams anything bigger, unsigned).
const MAX_SIGNED_BODY: usize = 1024 * 1024;

pub async fn handle(
    state: Arc<AppState>,
    req: Request<Incoming>,
    _peer: SocketAddr,
) -> Response<Body> {
    let request_id = crate::base::http::request_id::from_headers(req.headers());
    let arrival = Arrival::of(&req);
    let mut label = RouteLabel::Rejected;
    // Two steps, each boxed: hyper keeps one slot per connection the size of this future, idle
    // or not. Admitting the request (signature, signed body, routing) is freed before the
    // route's work runs, so a request waiting for a backend slot holds only that work.
    let admitted = Box::pin(admit(&state, req, &request_id, &mut label)).await;
    let result = match admitted {
        Ok(Admitted::Answered(resp)) => Ok(resp),
        Ok(Admitted::Routed(work)) => work.await,
        Err(e) => Err(e),
    };
    let resp = match result {
        Ok(resp) => resp,
        Err(e) => {
            if let Some(reason) = e.signature_rejection() {
                METRICS.signature_rejected(reason);
            }
            e.into_response(&request_id)
        }
    };
    arrival.answered("tunnel", &request_id, label, resp.status().as_u16());
    resp
}

/// A request past the tunnel's own checks.
enum Admitted<'a> {
    /// Answered by the listener itself (the Worker's edge-state document).
    Answered(Response<Body>),
    /// Routed: the route's work, still to run.
    Routed(Dispatched<'a>),
}

async fn admit<'a>(
    state: &'a AppState,
    mut req: Request<Incoming>,
    request_id: &str,
    label: &mut RouteLabel,
) -> Result<Admitted<'a>, AgentError> {
    let now = unix_now();
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_owned();
    let facts = signature::check(
        &state.edge_secret,
        &state.replay,
        req.method().as_str(),
        &target,
        req.headers(),
        now,
    )
    .inspect_err(|e| {
        if let Some(reason) = e.signature_rejection() {
            state.edge_stats.rejected(reason, &target, now);
        }
    })?;
    state.tunnel.carried_request();
    state.edge_stats.accepted();
    if target == EDGE_STATE_PATH {
        *label = RouteLabel::EdgeState;
        return edge_state(state, &req, &facts, now).map(Admitted::Answered);
    }
    let classified = router::classify(req.method(), &target)?;
    *label = classified.label();
    // A sealed request's ciphertext must be the one the edge signed: never a streamed body.
    if classified.route
        == argus_shared::route::Route::Agent(argus_shared::route::AgentRoute::Sealed)
        && facts.body == BodyBinding::Unsigned
    {
        return Err(AgentError::SealedRefused {
            reason: "sealed.unsigned_body",
        });
    }

    let client_upgrade = is_websocket_upgrade(req.headers()).then(|| hyper::upgrade::on(&mut req));
    let (parts, incoming) = req.into_parts();
    let body = match facts.body {
        BodyBinding::Sha256(expected) => {
            let bytes = Limited::new(incoming, MAX_SIGNED_BODY)
                .collect()
                .await
                .map_err(|_| AgentError::PayloadTooLarge)?
                .to_bytes();
            let actual: [u8; 32] = Sha256::digest(&bytes).into();
            if !bool::from(actual.ct_eq(&expected)) {
                state
                    .edge_stats
                    .rejected("signature.body_mismatch", &target, now);
                return Err(AgentError::InvalidSignature {
                    reason: "signature.body_mismatch",
                });
            }
            body::full(bytes)
        }
        BodyBinding::Unsigned => {
            proxy_body::request_body(incoming, &parts.headers, &state.config.limits)?
        }
    };
    let req = Request::from_parts(parts, body);
    router::route(
        state,
        req,
        RequestContext {
            via: Via::Tunnel,
            request_id: request_id.to_owned(),
            client_ip: facts.client_ip,
            client_upgrade,
            edge_device: facts.device_id,
        },
        classified,
    )
    .map(Admitted::Routed)
}

/// The Worker's view of keys and revocations ([`argus_shared::edge_state`]), MACed for the
/// nonce of the request it answers. Only the Worker's own signed, device-less GET gets it.
fn edge_state(
    state: &AppState,
    req: &Request<Incoming>,
    facts: &EdgeFacts,
    now: u64,
) -> Result<Response<Body>, AgentError> {
    if req.method() != hyper::Method::GET || facts.device_id.is_some() {
        return Err(AgentError::NotFound);
    }
    let nonce = req
        .headers()
        .get(argus_shared::headers::RELAY_NONCE)
        .and_then(|v| v.to_str().ok())
        .ok_or(AgentError::Internal)?;
    // A token of a device revoked earlier than this has expired anyway.
    let horizon = i64::try_from(now).unwrap_or(i64::MAX).saturating_sub(
        MAX_ACCESS_TOKEN_LIFETIME_SECS + 2 * argus_shared::token::DEFAULT_LEEWAY_SECS as i64,
    );
    let revoked = state
        .store
        .revoked_since(horizon)
        .map_err(|e| {
            tracing::error!(error = %e, "store failure");
            AgentError::Internal
        })?
        .into_iter()
        .map(|r| RevokedDevice {
            id: r.id,
            revoked_at: r.revoked_at,
        })
        .collect();
    let doc = EdgeState {
        generated_at: now,
        jwks: state.keys.jwks(),
        revoked,
        max_token_lifetime_secs: state.expectations.max_lifetime_secs,
    };
    let bytes = serde_json::to_vec(&doc).map_err(|_| AgentError::Internal)?;
    let mac = edge_state::response_mac(&state.edge_secret, nonce, &bytes)
        .map_err(|_| AgentError::Internal)?;
    Response::builder()
        .status(hyper::StatusCode::OK)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .header(edge_state::MAC_HEADER, mac)
        .body(body::full(bytes))
        .map_err(|_| AgentError::Internal)
}
