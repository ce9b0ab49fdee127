//! What the edge must know that only the agent decides: the token keys in use and the devices
//! revoked. The Worker fetches it from the agent through the tunnel
//! (`GET` [`EDGE_STATE_PATH`], signed like every forwarded request, device `-`), keeps it in
//! the isolate for at most [`MAX_AGE_SECS`], and refuses device tokens while it has no fresh copy.
//! That is the revocation bound at the edge: a device revoked at the agent is refused by every
//! isolate within [`MAX_AGE_SECS`] (the agent itself refuses it at once).
//!
//! The answer is authenticated: the agent MACs the body together with the nonce of the request it
//! answers ([`response_mac`]), under the same secret the Worker signs requests with, so a stale
//! or altered document (a cache on the way, a replayed answer) is refused by the Worker.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::token::Jwks;

/// The agent's path for the edge state. Phones can never reach it: [`crate::route::classify`]
/// refuses it, and the agent answers it only to a request signed by the Worker.
pub const EDGE_STATE_PATH: &str = "/relay/v1/edge-state";
/// Response header carrying [`response_mac`] as lowercase hex.
pub const MAC_HEADER: &str = "x-relay-state-mac";
/// How long the Worker trusts a fetched copy (seconds): the revocation bound at the edge.
pub const MAX_AGE_SECS: u64 = 5;
/// Upper bound on the document the Worker accepts (bytes).
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

const DOMAIN: &[u8] = b"argus-relay/edge-state/v1\0";

/// One revoked device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedDevice {
    /// The device id (the `sub` of its tokens).
    pub id: String,
    pub revoked_at: i64,
}

/// The document at [`EDGE_STATE_PATH`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeState {
    /// Unix seconds at the agent when the document was made.
    pub generated_at: u64,
    /// Every public key whose tokens may still be alive (current and not yet retired).
    pub jwks: Jwks,
    /// Devices revoked recently enough that one of their access tokens could still be unexpired.
    pub revoked: Vec<RevokedDevice>,
    /// The longest `exp - iat` of a token the agent accepts
    /// ([`crate::token::Expectations::max_lifetime_secs`]): the Worker refuses longer ones too.
    /// Absent (an older agent): the protocol's maximum.
    #[serde(default = "default_max_token_lifetime")]
    pub max_token_lifetime_secs: u64,
}

fn default_max_token_lifetime() -> u64 {
    crate::token::MAX_ACCESS_TOKEN_LIFETIME_SECS + crate::token::LIFETIME_ALLOWANCE_SECS
}

impl EdgeState {
    pub fn is_revoked(&self, device_id: &str) -> bool {
        self.revoked.iter().any(|r| r.id == device_id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EdgeStateError {
    #[error("the edge state answer has no valid MAC")]
    BadMac,
    #[error("the edge state document is malformed")]
    Malformed,
    #[error("the edge state document is too large")]
    TooLarge,
    #[error("the secret is too short")]
    WeakSecret,
}

impl EdgeStateError {
    pub const fn reason(&self) -> &'static str {
        match self {
            EdgeStateError::BadMac => "edge_state.bad_mac",
            EdgeStateError::Malformed => "edge_state.malformed",
            EdgeStateError::TooLarge => "edge_state.too_large",
            EdgeStateError::WeakSecret => "edge_state.weak_secret",
        }
    }
}

fn mac(secret: &[u8], request_nonce: &str, body: &[u8]) -> Result<Hmac<Sha256>, EdgeStateError> {
    if secret.len() < crate::signature::MIN_SECRET_BYTES {
        return Err(EdgeStateError::WeakSecret);
    }
    let mut m = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| EdgeStateError::WeakSecret)?;
    m.update(DOMAIN);
    m.update(request_nonce.as_bytes());
    m.update(b"\0");
    m.update(&Sha256::digest(body));
    Ok(m)
}

/// `HMAC-SHA256(secret, DOMAIN || nonce || 0x00 || SHA-256(body))`, hex: what the agent puts in
/// [`MAC_HEADER`]. `request_nonce` is the `x-relay-nonce` of the request being answered.
pub fn response_mac(
    secret: &[u8],
    request_nonce: &str,
    body: &[u8],
) -> Result<String, EdgeStateError> {
    Ok(hex::encode(
        mac(secret, request_nonce, body)?.finalize().into_bytes(),
    ))
}

/// Checks the MAC (constant time) and parses the document.
pub fn verify_response(
    secret: &[u8],
    request_nonce: &str,
    body: &[u8],
    mac_hex: &str,
) -> Result<EdgeState, EdgeStateError> {
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(EdgeStateError::TooLarge);
    }
    let given = hex::decode(mac_hex.trim()).map_err(|_| EdgeStateError::BadMac)?;
    mac(secret, request_nonce, body)?
        .verify_slice(&given)
        .map_err(|_| EdgeStateError::BadMac)?;
    serde_json::from_slice(body).map_err(|_| EdgeStateError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: [u8; 32] = [7; 32];

    fn doc() -> Vec<u8> {
        serde_json::to_vec(&EdgeState {
            generated_at: 100,
            jwks: Jwks { keys: vec![] },
            revoked: vec![RevokedDevice {
                id: "dev_a".into(),
                revoked_at: 90,
            }],
            max_token_lifetime_secs: 960,
        })
        .unwrap()
    }

    #[test]
    fn a_document_without_the_lifetime_cap_gets_the_protocol_maximum() {
        let state: EdgeState =
            serde_json::from_str(r#"{"generated_at":1,"jwks":{"keys":[]},"revoked":[]}"#).unwrap();
        assert_eq!(
            state.max_token_lifetime_secs,
            crate::token::MAX_ACCESS_TOKEN_LIFETIME_SECS + crate::token::LIFETIME_ALLOWANCE_SECS
        );
    }

    #[test]
    fn a_document_maced_for_the_nonce_verifies() {
        let body = doc();
        let mac = response_mac(&SECRET, "nonce-1234567890ab", &body).unwrap();
        let state = verify_response(&SECRET, "nonce-1234567890ab", &body, &mac).unwrap();
        assert!(state.is_revoked("dev_a"));
        assert!(!state.is_revoked("dev_b"));
    }

    #[test]
    fn an_answer_to_another_request_or_altered_is_refused() {
        let body = doc();
        let mac = response_mac(&SECRET, "nonce-1234567890ab", &body).unwrap();
        assert_eq!(
            verify_response(&SECRET, "nonce-other-000000", &body, &mac),
            Err(EdgeStateError::BadMac)
        );
        let mut altered = body.clone();
        altered[5] ^= 1;
        assert_eq!(
            verify_response(&SECRET, "nonce-1234567890ab", &altered, &mac),
            Err(EdgeStateError::BadMac)
        );
        assert_eq!(
            verify_response(&[8; 32], "nonce-1234567890ab", &body, &mac),
            Err(EdgeStateError::BadMac)
        );
        assert_eq!(
            verify_response(&SECRET, "nonce-1234567890ab", &body, "zz"),
            Err(EdgeStateError::BadMac)
        );
    }

    #[test]
    fn short_secrets_and_huge_documents_are_refused() {
        assert_eq!(
            response_mac(&[1; 8], "n", b"{}"),
            Err(EdgeStateError::WeakSecret)
        );
        let big = vec![b' '; MAX_DOCUMENT_BYTES + 1];
        assert_eq!(
            verify_response(&SECRET, "n", &big, "00"),
            Err(EdgeStateError::TooLarge)
        );
    }
}
