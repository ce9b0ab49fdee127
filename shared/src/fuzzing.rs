//! The bodies of the fuzz targets (`fuzz/`, run with `make fuzz` under libFuzzer), kept here so
//! the same properties also run on stable in `cargo test` (`shared/tests/fuzz_smoke.rs`) over a
//! corpus of mutated inputs. Each function panics only when a property is violated.

use crate::path;
use crate::policy::{DeviceFacts, Policy, RequestFacts};
use crate::route;
use crate::token::{self, Expectations, KeySet, TokenSigningKey};

const ISSUER: &str = "https://relay.example";
const AUDIENCE: &str = "argus-relay";
const NOW: u64 = 1_800_000_000;

fn key() -> TokenSigningKey {
    TokenSigningKey::from_seed("fuzz-key", [42; 32])
}

/// Verification never panics, and accepts nothing that the key did not sign as a valid token
/// (the fuzzer cannot forge an Ed25519 signature, so anything accepted is a bug).
pub fn token_parser(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let k = key();
    let keys = KeySet::from_signing_key(&k);
    let expect = Expectations::new(ISSUER, AUDIENCE);
    if let Ok(claims) = token::verify_access_token(text, &keys, &expect, NOW) {
        // Only reachable with a genuine signature: re-signing the claims must give a token that
        // verifies to the same claims.
        let again = token::sign_access_token(&k, &claims);
        assert_eq!(
            token::verify_access_token(&again, &keys, &expect, NOW).ok(),
            Some(claims)
        );
    }
}

/// Parsing never panics; a parsed policy evaluates sample requests without panicking.
pub fn policy_parser(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(policy) = Policy::from_toml(text) else {
        return;
    };
    let _ = policy.warnings();
    for (method, p) in [
        ("GET", "/api/v1/events"),
        ("POST", "/api/v1/events/e1/feedback"),
        ("GET", "/api/v1/system/settings"),
        ("GET", "/ws"),
    ] {
        let device = DeviceFacts {
            platform: "ios",
            app_version: Some("1.4.0"),
            os_version: Some("18.1"),
            scope_read_only: method != "GET",
        };
        for device in [None, Some(device)] {
            let _ = policy.evaluate(&RequestFacts {
                method,
                decoded_path: p,
                country: Some("US"),
                asn: Some(64496),
                tls_version: Some("TLSv1.3"),
                device,
            });
        }
    }
}

/// Canonicalization never panics; an accepted target is a fixed point and routes.
pub fn path_canonicalize(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(t) = path::canonicalize(text) else {
        return;
    };
    let rebuilt = match &t.query {
        Some(q) => format!("{}?{q}", t.path),
        None => t.path.clone(),
    };
    let again = path::canonicalize(&rebuilt).expect("a canonical target stays canonical");
    assert_eq!(again.decoded_path, t.decoded_path);
    for m in ["GET", "POST", "DELETE"] {
        let _ = route::classify(m, &t.decoded_path);
    }
}

/// xorshift64*: a fixed pseudo-random sequence for the mutation loops here and in the unit
/// tests, so a failure reproduces from its seed (no dependency, no clock).
#[derive(Debug, Clone)]
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}
