//! Device-token check at the agent: the same verification as the edge (shared code), plus what
//! only the agent knows — whether the device is still active. Revocation therefore takes effect
//! here at once, whatever the edge has cached.

use argus_shared::token::{self, AccessClaims};
use argus_shared::ws_auth;
use hyper::HeaderMap;

use crate::error::AgentError;
use crate::state::AppState;

pub fn check(state: &AppState, h: &HeaderMap, now: u64) -> Result<AccessClaims, AgentError> {
    let token = match h.get(hyper::header::AUTHORIZATION) {
        Some(v) => {
            let header = v.to_str().map_err(|_| AgentError::InvalidToken {
                reason: "token.malformed",
            })?;
            bearer(header).ok_or(AgentError::Unauthenticated)?
        }
        // A WebSocket client that cannot set headers (LAN): the subprotocol token.
        None if crate::proxy::is_websocket_upgrade(h) => h
            .get(ws_auth::HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(ws_auth::token_from_protocols)
            .ok_or(AgentError::Unauthenticated)?,
        None => return Err(AgentError::Unauthenticated),
    };
    let keys = state.keys.verification_keys();
    let claims = token::verify_access_token(token, &keys, &state.expectations, now)
        .map_err(|e| AgentError::InvalidToken { reason: e.reason() })?;
    match state.store.is_device_active(&claims.sub) {
        Ok(true) => Ok(claims),
        Ok(false) => Err(AgentError::InvalidToken {
            reason: "token.device_revoked",
        }),
        Err(e) => {
            tracing::error!(error = %e, "device lookup failed");
            Err(AgentError::Internal)
        }
    }
}

/// `Bearer <token>`, scheme case-insensitive.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
