//! The per-request CPU work of the edge gate, callable from node (wasm) and natively:
//! canonicalize the path, classify the route, verify an EdDSA access token, evaluate the example
//! policy, sign the forwarded request. `run(n, remembered)` does it `n` times and returns a
//! checksum so nothing is optimised away; the caller times it.
//!
//! `remembered = false`: every request verifies the token's signature (a token the isolate sees
//! for the first time). `remembered = true`: the gate's steady state, a phone's repeat requests
//! with its token in the isolate's [`VerifiedTokens`] — exactly what `edge-worker/src/gate.rs`
//! does.

use argus_shared::path;
use argus_shared::policy::{DeviceFacts, Policy, RequestFacts};
use argus_shared::route;
use argus_shared::signature::{self, BodyBinding, SignedParts};
use argus_shared::token::{
    self, AccessClaims, Expectations, KeySet, Scope, TokenSigningKey, VerifiedTokens,
};
use wasm_bindgen::prelude::*;

const NOW: u64 = 1_800_000_000;
const POLICY: &str = include_str!("../../../docs/example-policy.toml");

struct Fixture {
    token: String,
    keys: KeySet,
    expect: Expectations,
    policy: Policy,
}

fn fixture() -> Fixture {
    let key = TokenSigningKey::from_seed_with_thumbprint_kid([7; 32]);
    let claims = AccessClaims {
        iss: "https://relay.bench".into(),
        aud: "argus-relay".into(),
        sub: "dev_bench".into(),
        iat: NOW,
        nbf: NOW,
        exp: NOW + 900,
        jti: "bench".into(),
        scope: Scope::Viewer,
        name: "Bench phone".into(),
        platform: "ios".into(),
        app_version: Some("1.4.0".into()),
        os_version: Some("18.1".into()),
    };
    Fixture {
        token: token::sign_access_token(&key, &claims),
        keys: KeySet::from_signing_key(&key),
        expect: Expectations::new("https://relay.bench", "argus-relay"),
        policy: Policy::from_toml(POLICY).unwrap_or_else(|_| Policy::default_policy()),
    }
}

fn one(f: &Fixture, i: u32, remembered: Option<&mut VerifiedTokens>) -> u32 {
    let target = "/api/v1/events?limit=20&offset=0";
    let Ok(t) = path::canonicalize(target) else {
        return 0;
    };
    let _ = route::classify("GET", &t.decoded_path);
    let now = NOW + u64::from(i % 60);
    let claims = match remembered {
        Some(cache) => match cache.get(&f.token, &f.keys, &f.expect, 0, now) {
            Some(c) => c.clone(),
            None => {
                let Ok(c) = token::verify_access_token(&f.token, &f.keys, &f.expect, now) else {
                    return 0;
                };
                let c = std::sync::Arc::new(c);
                cache.insert(&f.token, &f.keys, &f.expect, c.clone(), 0, now);
                c
            }
        },
        None => {
            let Ok(c) = token::verify_access_token(&f.token, &f.keys, &f.expect, now) else {
                return 0;
            };
            std::sync::Arc::new(c)
        }
    };
    let allowed = f
        .policy
        .evaluate(&RequestFacts {
            method: "GET",
            decoded_path: &t.decoded_path,
            country: Some("US"),
            asn: Some(64500),
            tls_version: Some("TLSv1.3"),
            device: Some(DeviceFacts {
                platform: &claims.platform,
                app_version: claims.app_version.as_deref(),
                os_version: claims.os_version.as_deref(),
                scope_read_only: true,
            }),
        })
        .is_allow();
    let sig = signature::sign(
        &[0x5a; 32],
        &SignedParts {
            method: "GET",
            path_and_query: target,
            device_id: Some(&claims.sub),
            client_ip: Some("203.0.113.7"),
            body: BodyBinding::of_bytes(b""),
            link: None,
        },
        NOW,
        "0123456789abcdef0123456789abcdef",
    )
    .unwrap_or_default();
    u32::from(allowed) + sig.len() as u32
}

/// Runs the gate's work `n` times (see the module docs for `remembered`); returns a checksum.
#[wasm_bindgen]
pub fn run(n: u32, remembered: bool) -> u32 {
    let f = fixture();
    let mut cache = VerifiedTokens::default();
    (0..n).fold(0u32, |acc, i| {
        let cache = remembered.then_some(&mut cache);
        acc.wrapping_add(one(&f, i, cache))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_benchmarked_request_is_allowed_and_signed() {
        // 1 (allowed) + the signature's length: proves every step ran and succeeded.
        assert_eq!(super::run(1, false), 1 + 67);
        // Remembering changes the cost, not the outcome.
        assert_eq!(super::run(50, true), super::run(50, false));
    }
}
