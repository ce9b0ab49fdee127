//! Device-token check at the agent: the same verification as the edge (shared code), plus what
//! only the agent knows — whether the device is still active. Revocation therefore takes effect
//! here at once, whatever the edge has cached.
//!
//! A phone sends the same token for up to 15 minutes, so the outcome is remembered
//! ([`VerifiedTokens`]): an Ed25519 verification and two SQLite reads per request become a hash
//! lookup. A remembered token is used only if it is byte-for-byte the one presented, the key set
//! it was verified against is still the current one, its time claims are still valid now, and no
//! device was revoked since its device was found active (the store's revocation generation) — so
//! a revocation still refuses the very next request.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use argus_shared::token::{self, AccessClaims, Expectations, KeySet};
use argus_shared::ws_auth;
use hyper::HeaderMap;

use crate::error::AgentError;
use crate::state::AppState;
use crate::store::TOUCH_GRANULARITY_SECS;

/// The claims are shared with the cache of verified tokens (a clone would copy their strings on
/// every request).
pub fn check(state: &AppState, h: &HeaderMap, now: u64) -> Result<Arc<AccessClaims>, AgentError> {
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
    let generation = state.store.revocation_generation();
    if let Some(claims) =
        state
            .verified_tokens
            .get(token, &keys, &state.expectations, generation, now)
    {
        return Ok(claims);
    }
    let claims = token::verify_access_token(token, &keys, &state.expectations, now)
        .map(Arc::new)
        .map_err(|e| AgentError::InvalidToken { reason: e.reason() })?;
    // The generation is read before the lookup: a revocation committed in between makes the
    // remembered generation stale, so the next request looks again.
    match state.store.is_device_active(&claims.sub) {
        Ok(true) => {
            state
                .verified_tokens
                .insert(token, keys, claims.clone(), generation, now);
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

/// At most this many tokens are remembered (a household has a handful of phones).
const MAX_REMEMBERED: usize = 1024;

/// Recently verified tokens of active devices; see the module docs.
#[derive(Default)]
pub struct VerifiedTokens {
    hasher: RandomState,
    map: Mutex<HashMap<u64, Remembered>>,
    /// Device id → when its `last_seen_at` was last written (see [`VerifiedTokens::due_touch`]).
    touched: Mutex<HashMap<String, u64>>,
}

struct Remembered {
    token: Box<str>,
    keys: Arc<KeySet>,
    claims: Arc<AccessClaims>,
    /// The store's revocation generation when the device was last found active.
    generation: u64,
}

impl VerifiedTokens {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Remembered>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(
        &self,
        token: &str,
        keys: &Arc<KeySet>,
        expect: &Expectations,
        generation: u64,
        now: u64,
    ) -> Option<Arc<AccessClaims>> {
        let key = self.hasher.hash_one(token);
        let map = self.lock();
        let r = map.get(&key)?;
        let leeway = expect.leeway_secs;
        let c = &r.claims;
        // A plain comparison leaks no timing worth having: only a token whose keyed 64-bit hash
        // (random key per process) equals a remembered one's gets this far.
        let usable = *r.token == *token
            && Arc::ptr_eq(&r.keys, keys)
            && r.generation == generation
            && now <= c.exp.saturating_add(leeway)
            && c.nbf <= now.saturating_add(leeway)
            && c.iat <= now.saturating_add(leeway);
        usable.then(|| c.clone())
    }

    fn insert(
        &self,
        token: &str,
        keys: Arc<KeySet>,
        claims: Arc<AccessClaims>,
        generation: u64,
        now: u64,
    ) {
        let key = self.hasher.hash_one(token);
        let mut map = self.lock();
        if map.len() >= MAX_REMEMBERED && !map.contains_key(&key) {
            map.retain(|_, r| now <= r.claims.exp.saturating_add(token::DEFAULT_LEEWAY_SECS));
            if map.len() >= MAX_REMEMBERED {
                map.clear();
            }
        }
        map.insert(
            key,
            Remembered {
                token: token.into(),
                keys,
                claims,
                generation,
            },
        );
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
    use argus_shared::token::Scope;

    fn claims(exp: u64) -> AccessClaims {
        AccessClaims {
            iss: "https://r".into(),
            aud: "argus-relay".into(),
            sub: "dev_1".into(),
            iat: 1_000,
            nbf: 1_000,
            exp,
            jti: "j1".into(),
            scope: Scope::Viewer,
            name: "phone".into(),
            platform: "ios".into(),
            app_version: None,
            os_version: None,
        }
    }

    #[test]
    fn remembered_only_while_everything_still_holds() {
        let cache = VerifiedTokens::default();
        let expect = Expectations::new("https://r", "argus-relay");
        let keys = Arc::new(KeySet::new());
        cache.insert("tok.en.1", keys.clone(), Arc::new(claims(1_900)), 7, 1_000);
        assert!(cache.get("tok.en.1", &keys, &expect, 7, 1_500).is_some());
        // Another token, another key set, a revocation since, or past expiry: look again.
        assert!(cache.get("tok.en.2", &keys, &expect, 7, 1_500).is_none());
        let rotated = Arc::new(KeySet::new());
        assert!(cache.get("tok.en.1", &rotated, &expect, 7, 1_500).is_none());
        assert!(cache.get("tok.en.1", &keys, &expect, 8, 1_500).is_none());
        let late = 1_900 + expect.leeway_secs + 1;
        assert!(cache.get("tok.en.1", &keys, &expect, 7, late).is_none());
        let early = 1_000 - expect.leeway_secs - 1;
        assert!(cache.get("tok.en.1", &keys, &expect, 7, early).is_none());
    }

    #[test]
    fn touches_are_due_once_per_granularity() {
        let cache = VerifiedTokens::default();
        assert!(cache.due_touch("dev_1", 1_000));
        assert!(!cache.due_touch("dev_1", 1_030));
        assert!(cache.due_touch("dev_2", 1_030));
        assert!(cache.due_touch("dev_1", 1_000 + TOUCH_GRANULARITY_SECS as u64));
    }
}
