//! Tokens already verified, remembered so a phone's next requests skip the Ed25519 check.
//!
//! A phone sends the same access token for up to 15 minutes; verifying its signature is nearly
//! all the CPU of a request's gate (≈ 0.1 ms natively, several times that in wasm). Both the edge
//! Worker (per isolate) and the agent keep a [`VerifiedTokens`]. A remembered outcome is used only
//! if:
//!
//! - the token presented is byte-for-byte the one verified (the map is keyed by the whole token);
//! - the key set and the expectations (issuer, audience, leeway, size cap) are equal to the ones it
//!   was verified under — a rotated-out or replaced key makes every token under it verify again;
//! - the caller's `generation` is the one recorded: the agent passes its store's revocation
//!   generation, so any revocation forgets everything; the edge checks its revocation list on
//!   every request anyway and passes 0;
//! - its `exp`, `nbf` and `iat` are still valid at `now` (the same rule as [`verify_access_token`]).
//!
//! Otherwise [`VerifiedTokens::get`] misses and the caller runs the full verification, which also
//! produces the precise error. Only tokens that verified are ever inserted.
//!
//! [`verify_access_token`]: super::verify_access_token

use std::collections::HashMap;
use std::sync::Arc;

use super::{check_times, AccessClaims, Expectations, KeySet};

/// Default number of tokens remembered (a household has a handful of phones).
pub const DEFAULT_CAPACITY: usize = 1024;

/// See the module docs.
#[derive(Debug)]
pub struct VerifiedTokens {
    capacity: usize,
    map: HashMap<Box<str>, Remembered>,
}

#[derive(Debug)]
struct Remembered {
    keys: KeySet,
    expect: Expectations,
    /// Shared with the callers: a hit costs no copy of the claims' strings.
    claims: Arc<AccessClaims>,
    generation: u64,
}

impl Default for VerifiedTokens {
    fn default() -> Self {
        VerifiedTokens::with_capacity(DEFAULT_CAPACITY)
    }
}

impl VerifiedTokens {
    /// Remembers at most `capacity` tokens.
    pub fn with_capacity(capacity: usize) -> Self {
        VerifiedTokens {
            capacity: capacity.max(1),
            map: HashMap::new(),
        }
    }

    /// The claims of `token` if it was verified under these `keys` and `expect`, at this
    /// `generation`, and its time claims still hold at `now`.
    pub fn get(
        &self,
        token: &str,
        keys: &KeySet,
        expect: &Expectations,
        generation: u64,
        now: u64,
    ) -> Option<&Arc<AccessClaims>> {
        let r = self.map.get(token)?;
        let c = &r.claims;
        let usable = r.generation == generation
            && r.keys == *keys
            && r.expect == *expect
            && check_times(c.exp, c.nbf, c.iat, expect, now).is_ok();
        usable.then_some(c)
    }

    /// Remembers that `token` verified to `claims` under `keys` and `expect`. Full: expired
    /// entries go first; if none had expired, everything is forgotten (a full map is either an
    /// attack or a very large household; either way the cost is one verification per token).
    pub fn insert(
        &mut self,
        token: &str,
        keys: &KeySet,
        expect: &Expectations,
        claims: Arc<AccessClaims>,
        generation: u64,
        now: u64,
    ) {
        if self.map.len() >= self.capacity && !self.map.contains_key(token) {
            self.map
                .retain(|_, r| now <= r.claims.exp.saturating_add(r.expect.leeway_secs));
            if self.map.len() >= self.capacity {
                self.map.clear();
            }
        }
        self.map.insert(
            token.into(),
            Remembered {
                keys: keys.clone(),
                expect: expect.clone(),
                claims,
                generation,
            },
        );
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{sign_access_token, verify_access_token, Scope, TokenSigningKey};

    const NOW: u64 = 1_800_000_000;

    fn claims(sub: &str, exp: u64) -> AccessClaims {
        AccessClaims {
            iss: "https://r".into(),
            aud: "argus-relay".into(),
            sub: sub.into(),
            iat: NOW,
            nbf: NOW,
            exp,
            jti: "j1".into(),
            scope: Scope::Viewer,
            name: "phone".into(),
            platform: "ios".into(),
            app_version: None,
            os_version: None,
        }
    }

    struct Case {
        key: TokenSigningKey,
        keys: KeySet,
        expect: Expectations,
    }

    fn case(seed: u8) -> Case {
        let key = TokenSigningKey::from_seed_with_thumbprint_kid([seed; 32]);
        let keys = KeySet::from_signing_key(&key);
        Case {
            key,
            keys,
            expect: Expectations::new("https://r", "argus-relay"),
        }
    }

    /// Verifies and remembers, as the gate does.
    fn remember(cache: &mut VerifiedTokens, c: &Case, token: &str, generation: u64) {
        let claims = verify_access_token(token, &c.keys, &c.expect, NOW).expect("valid token");
        cache.insert(token, &c.keys, &c.expect, Arc::new(claims), generation, NOW);
    }

    #[test]
    fn a_remembered_token_is_used_only_exactly_as_verified() {
        let c = case(1);
        let token = sign_access_token(&c.key, &claims("dev_1", NOW + 900));
        let mut cache = VerifiedTokens::default();
        remember(&mut cache, &c, &token, 7);
        let hit = cache.get(&token, &c.keys, &c.expect, 7, NOW + 10);
        assert_eq!(hit.map(|c| c.sub.as_str()), Some("dev_1"));

        // One byte different: a miss (the full check then refuses it).
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(cache.get(&tampered, &c.keys, &c.expect, 7, NOW).is_none());
        // Another generation (a revocation at the agent).
        assert!(cache.get(&token, &c.keys, &c.expect, 8, NOW).is_none());
        // The key rotated out, or other expectations.
        let other = case(2);
        assert!(cache.get(&token, &other.keys, &c.expect, 7, NOW).is_none());
        let other_aud = Expectations::new("https://r", "someone-else");
        assert!(cache.get(&token, &c.keys, &other_aud, 7, NOW).is_none());
    }

    #[test]
    fn time_claims_are_checked_again_on_every_hit() {
        let c = case(1);
        let token = sign_access_token(&c.key, &claims("dev_1", NOW + 900));
        let mut cache = VerifiedTokens::default();
        remember(&mut cache, &c, &token, 0);
        let leeway = c.expect.leeway_secs;
        assert!(cache
            .get(&token, &c.keys, &c.expect, 0, NOW + 900 + leeway)
            .is_some());
        assert!(cache
            .get(&token, &c.keys, &c.expect, 0, NOW + 900 + leeway + 1)
            .is_none());
        // A clock that went back before nbf/iat.
        assert!(cache
            .get(&token, &c.keys, &c.expect, 0, NOW - leeway - 1)
            .is_none());
    }

    #[test]
    fn a_full_cache_drops_expired_tokens_first_and_stays_bounded() {
        let c = case(1);
        let mut cache = VerifiedTokens::with_capacity(4);
        let short = sign_access_token(&c.key, &claims("dev_short", NOW + 1));
        remember(&mut cache, &c, &short, 0);
        let long: Vec<String> = (0..3)
            .map(|i| sign_access_token(&c.key, &claims(&format!("dev_{i}"), NOW + 900)))
            .collect();
        for t in &long {
            remember(&mut cache, &c, t, 0);
        }
        assert_eq!(cache.len(), 4);
        // Full, later: the expired one goes, the live ones stay.
        let later = NOW + 120;
        let fresh = sign_access_token(&c.key, &claims("dev_new", NOW + 900));
        let claims_new = verify_access_token(&fresh, &c.keys, &c.expect, NOW).unwrap();
        cache.insert(&fresh, &c.keys, &c.expect, Arc::new(claims_new), 0, later);
        assert_eq!(cache.len(), 4);
        assert!(cache.get(&short, &c.keys, &c.expect, 0, NOW).is_none());
        for t in &long {
            assert!(cache.get(t, &c.keys, &c.expect, 0, later).is_some());
        }
        // Full of live tokens: everything goes, the bound holds.
        let another = sign_access_token(&c.key, &claims("dev_x", NOW + 900));
        let claims_x = verify_access_token(&another, &c.keys, &c.expect, NOW).unwrap();
        cache.insert(&another, &c.keys, &c.expect, Arc::new(claims_x), 0, later);
        assert_eq!(cache.len(), 1);
    }
}
