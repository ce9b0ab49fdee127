//! Sealed mode: device requests as Oblivious HTTP (RFC 9458) messages, so the relay (Worker,
//! Cloudflare, cloudflared) decides *who* talks to the home but reads nothing of *what* they say.
//!
//! The phone encapsulates a whole Binary HTTP request (RFC 9292) to the agent's HPKE key and
//! `POST`s it to [`SEALED_PATH`] with its device token in the outer `Authorization`. The Worker
//! gates it like any device request and forwards the ciphertext, digest-signed; the agent opens
//! it, routes the inner request as a plain one from the same device, and seals the answer.
//!
//! This module holds what both sides agree on and needs no crypto: paths, media types, limits,
//! the key-configuration pin and the freshness window. The crypto (the `ohttp` and `bhttp`
//! crates) lives with the agent and the clients only: the Worker never decrypts.

use sha2::{Digest, Sha256};

/// The one path a sealed request is sent to (`POST`).
pub const SEALED_PATH: &str = "/api/v1/relay/sealed";
/// Where the agent's key configuration is served, publicly (`GET`).
pub const KEYS_PATH: &str = "/.well-known/ohttp-keys";
/// RFC 9458 media types.
pub const REQUEST_MEDIA_TYPE: &str = "message/ohttp-req";
pub const RESPONSE_MEDIA_TYPE: &str = "message/ohttp-res";
pub const KEYS_MEDIA_TYPE: &str = "application/ohttp-keys";

/// A sealed request is at most this large: the Worker digest-signs bodies up to 1 MiB and a
/// sealed one must be signed (the agent refuses an `unsigned-body` sealed request).
pub const MAX_SEALED_REQUEST_BYTES: usize = 1024 * 1024;
/// The largest inner response the agent seals (one message, no chunking): event pages,
/// thumbnails and frames fit many times over; a video or an export does not and is answered
/// `413 sealed.response_too_large` inside the seal (fetch those plain, or on the LAN).
pub const MAX_SEALED_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// The inner request's `Date` must be within this many seconds of the agent's clock, and the
/// agent remembers every encapsulation it opened for this long: a replayed sealed request is
/// either stale or remembered.
pub const FRESHNESS_WINDOW_SECS: u64 = 60;

/// An inner response header: the pin ([`key_config_pin`]) of the key configuration the agent
/// serves now. Read inside the seal, so a phone can trust it to follow a key rotation.
pub const CURRENT_KEYS_HEADER: &str = "argus-ohttp-keys-sha256";

/// The pin of a key configuration: lower-case hex SHA-256 of the `application/ohttp-keys` body
/// exactly as [`KEYS_PATH`] serves it. Pairing carries it (QR link and pairing answers) so a relay
/// that substitutes its own key is caught by the phone.
pub fn key_config_pin(served_key_config: &[u8]) -> String {
    hex::encode(Sha256::digest(served_key_config))
}

/// Whether `pin` has the shape of a [`key_config_pin`] (64 lower-case hex digits).
pub fn is_pin(pin: &str) -> bool {
    pin.len() == 64 && pin.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Why a sealed request's freshness was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FreshnessError {
    #[error("the sealed request carries no Date")]
    Missing,
    #[error("the sealed request's Date is not an HTTP date")]
    Malformed,
    #[error("the sealed request's Date is more than {FRESHNESS_WINDOW_SECS} s away")]
    OutOfWindow,
}

impl FreshnessError {
    /// Stable reason code.
    pub fn reason(self) -> &'static str {
        match self {
            FreshnessError::Missing => "sealed.date_missing",
            FreshnessError::Malformed => "sealed.date_malformed",
            FreshnessError::OutOfWindow => "sealed.stale",
        }
    }
}

/// Checks the inner request's date (Unix seconds) against `now`: within
/// [`FRESHNESS_WINDOW_SECS`] either way.
pub fn check_fresh(date: Option<u64>, now: u64) -> Result<(), FreshnessError> {
    let date = date.ok_or(FreshnessError::Missing)?;
    if date.abs_diff(now) > FRESHNESS_WINDOW_SECS {
        return Err(FreshnessError::OutOfWindow);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pin_is_the_sha256_of_the_served_bytes() {
        let pin = key_config_pin(b"abc");
        assert_eq!(
            pin,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(is_pin(&pin));
        assert!(!is_pin(&pin.to_uppercase()));
        assert!(!is_pin(&pin[1..]));
    }

    #[test]
    fn a_sealed_request_is_fresh_within_sixty_seconds_either_way() {
        assert_eq!(check_fresh(Some(1_000), 1_000), Ok(()));
        assert_eq!(check_fresh(Some(940), 1_000), Ok(()));
        assert_eq!(check_fresh(Some(1_060), 1_000), Ok(()));
        assert_eq!(
            check_fresh(Some(939), 1_000),
            Err(FreshnessError::OutOfWindow)
        );
        assert_eq!(
            check_fresh(Some(1_061), 1_000),
            Err(FreshnessError::OutOfWindow)
        );
        assert_eq!(check_fresh(None, 1_000), Err(FreshnessError::Missing));
    }

    #[test]
    fn the_sealed_routes_are_the_relays_own() {
        use crate::route::{classify, AgentRoute, PublicRoute, Route};
        assert_eq!(
            classify("POST", SEALED_PATH),
            Route::Agent(AgentRoute::Sealed)
        );
        assert_eq!(classify("GET", SEALED_PATH), Route::MethodNotAllowed);
        assert_eq!(
            classify("GET", KEYS_PATH),
            Route::Public(PublicRoute::OhttpKeys)
        );
        assert_eq!(
            classify("GET", "/api/v1/relay/sealed/x"),
            Route::Refused("route.unknown_agent_path")
        );
    }

    #[test]
    fn the_policy_can_require_sealed_mode_and_lets_sealed_requests_through_by_default() {
        use crate::policy::{Decision, DeviceFacts, Policy, RequestFacts};
        assert!(!Policy::default_policy().sealed_required());
        let required = Policy::from_toml("version = 1\n[sealed]\nrequired = true\n").unwrap();
        assert!(required.sealed_required());
        assert!(Policy::from_toml("version = 1\n[sealed]\nrequire = true\n").is_err());

        // A viewer's sealed POST passes the edge: the inner method is the agent's to judge.
        let facts = RequestFacts {
            method: "POST",
            decoded_path: SEALED_PATH,
            country: Some("CH"),
            asn: None,
            tls_version: None,
            device: Some(DeviceFacts {
                platform: "ios",
                app_version: None,
                os_version: None,
                scope_read_only: true,
            }),
        };
        assert_eq!(Policy::default_policy().evaluate(&facts), Decision::Allow);
        let keys = RequestFacts {
            method: "GET",
            decoded_path: KEYS_PATH,
            device: None,
            ..facts
        };
        assert_eq!(Policy::default_policy().evaluate(&keys), Decision::Allow);
    }
}
