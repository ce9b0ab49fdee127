//! Device-token check at the agent: the same verification as the edge (shared code), plus what
//! only the agent knows — whether the device is still active. Revocation therefore takes effect
//! here at once, whatever the edge has cached.
//!
//! A phone sends the same token for up to 15 minutes, so the outcome is remembered
//! ([`argus_shared::token::VerifiedTokens`], the same rules as the edge): an Ed25519
//! verification and two SQLite reads per request become a hash lookup. Here the generation a
//! remembered token is tied to is the store's revocation generation, so a revocation still
//! refuses the very next request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use argus_shared::token::{self, AccessClaims, Expectations, VerifiedTokens};
use argus_shared::ws_auth;
use hyper::HeaderMap;

use crate::base::error::AgentError;
use crate::domain::key_ring::KeyRing;
use crate::domain::store::{Store, TOUCH_GRANULARITY_SECS};

/// What checking a device token needs: the verification keys and expectations, the store (is
/// the device still active?) and the memory of recent outcomes.
pub struct DeviceTokens<'a> {
    pub keys: &'a KeyRing,
    pub expectations: &'a Expectations,
    pub store: &'a Store,
    pub memory: &'a TokenMemory,
}

/// The claims are shared with the memory of verified tokens (a clone would copy their strings on
/// every request).
pub fn check(
    state: DeviceTokens<'_>,
    h: &HeaderMap,
    now: u64,
) -> Result<Arc<AccessClaims>, AgentError> {
    let token = match h.get(hyper::header::AUTHORIZATION) {
        Some(v) => {
            let header = v.to_str().map_err(|_| AgentError::InvalidToken {
                reason: "token.malformed",
            })?;
            bearer(header).ok_or(AgentError::Unauthenticated)?
        }
        // A WebSocket client that cannot set headers (LAN): the subprotocol token.
        None if crate::domain::proxy::backend::is_websocket_upgrade(h) => h
            .get(ws_auth::HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(ws_auth::token_from_protocols)
            .ok_or(AgentError::Unauthenticated)?,
        None => return Err(AgentError::Unauthenticated),
    };
    let keys = state.keys.verification_keys();
    let generation = state.store.revocation_generation();
    if let Some(claims) =
        state
            .memory
            .verified()
            .get(token, &keys, state.expectations, generation, now)
    {
        return Ok(claims.clone());
    }
    let claims = token::verify_access_token(token, &keys, state.expectations, now)
        .map(Arc::new)
        .map_err(|e| AgentError::InvalidToken { reason: e.reason() })?;
    // The generation is read before the lookup: a revocation committed in between makes the
    // remembered generation stale, so the next request looks again.
    match state.store.is_device_active(&claims.sub) {
        Ok(true) => {
            state.memory.verified().insert(
                token,
                &keys,
                state.expectations,
                claims.clone(),
                generation,
                now,
            );
            Ok(claims)
        }
        Ok(false) => Err(AgentError::InvalidToken {
            reason: "token.device_revoked",
        }),
        Err(e) => {
            tracing::error!(error = %e, "device lookup failed");
            Err(AgentError::Internal)
        }
    }
}

/// At most this many devices' touch times are remembered.
const MAX_REMEMBERED: usize = 1024;

/// What the agent remembers between requests of the same phone: verified tokens and when each
/// device's `last_seen_at` was last written.
#[derive(Default)]
pub struct TokenMemory {
    verified: Mutex<VerifiedTokens>,
    /// Device id → when its `last_seen_at` was last written (see [`TokenMemory::due_touch`]).
    touched: Mutex<HashMap<String, u64>>,
}

impl TokenMemory {
    fn verified(&self) -> MutexGuard<'_, VerifiedTokens> {
        self.verified.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the device's `last_seen_at` is due a write (the store throttles writes to one per
    /// [`TOUCH_GRANULARITY_SECS`] but reads to decide; this skips the read in between).
    pub fn due_touch(&self, device_id: &str, now: u64) -> bool {
        let mut touched = self.touched.lock().unwrap_or_else(|p| p.into_inner());
        match touched.get_mut(device_id) {
            Some(at) if now.saturating_sub(*at) < TOUCH_GRANULARITY_SECS as u64 => false,
            Some(at) => {
                *at = now;
                true
            }
            None => {
                if touched.len() >= MAX_REMEMBERED {
                    touched.clear();
                }
                touched.insert(device_id.to_owned(), now);
                true
            }
        }
    }
}

/// `Bearer <token>`, scheme case-insensitive.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touches_are_due_once_per_granularity() {
        let cache = TokenMemory::default();
        assert!(cache.due_touch("dev_1", 1_000));
        assert!(!cache.due_touch("dev_1", 1_030));
        assert!(cache.due_touch("dev_2", 1_030));
        assert!(cache.due_touch("dev_1", 1_000 + TOUCH_GRANULARITY_SECS as u64));
    }
}
