//! Edge → agent request signatures.
//!
//! The Worker signs every request it forwards through the tunnel with HMAC-SHA256 under a secret
//! that only it and the agent hold. The agent's tunnel listener refuses anything without a valid,
//! fresh, never-seen signature, so reaching the tunnel hostname directly (or a route that fails open
//! to the origin) gets nothing.
//!
//! The signed string (version 1) is the newline-joined list
//!
//! ```text
//! argus-relay-v1
//! <timestamp: unix seconds>
//! <nonce: 16–64 chars of [A-Za-z0-9_-]>
//! <METHOD>
//! <path and query exactly as forwarded>
//! <device id, or "-" for requests without a device (pairing)>
//! <client ip, or "-">
//! <body: "sha256:<hex>" or "unsigned-body">
//! ```
//!
//! Every field is validated to contain no newline before signing, so no two different requests
//! share a signed string. Streamed bodies (uploads, WebSocket upgrades) are marked
//! `unsigned-body`: their headers are still bound to the signature, their bytes are not.
//!
//! Replay protection needs memory and so lives with the caller: [`verify`] checks the MAC and the
//! time window; the agent then remembers each nonce while its signature could still verify (until
//! [`MAX_SKEW_SECS`] past its timestamp).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The version tag at the start of every signed string and signature header.
pub const VERSION: &str = "v1";
const DOMAIN: &str = "argus-relay-v1";
/// A signature older or newer than this (seconds) is refused.
pub const MAX_SKEW_SECS: u64 = 60;
/// The body marker for requests whose bytes are streamed rather than hashed.
pub const UNSIGNED_BODY: &str = "unsigned-body";
/// Minimum length of the shared secret, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// What the body field of the signed string says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyBinding {
    /// SHA-256 of the whole body (use the digest of the empty string for no body).
    Sha256([u8; 32]),
    /// The body is streamed and not covered.
    Unsigned,
}

impl BodyBinding {
    pub fn of_bytes(body: &[u8]) -> Self {
        BodyBinding::Sha256(Sha256::digest(body).into())
    }

    /// The header form: `sha256:<hex>` or `unsigned-body`.
    pub fn to_header_value(&self) -> String {
        match self {
            BodyBinding::Sha256(d) => format!("sha256:{}", hex::encode(d)),
            BodyBinding::Unsigned => UNSIGNED_BODY.to_owned(),
        }
    }

    pub fn parse_header_value(v: &str) -> Result<Self, SignatureError> {
        if v == UNSIGNED_BODY {
            return Ok(BodyBinding::Unsigned);
        }
        let hex_part = v
            .strip_prefix("sha256:")
            .ok_or(SignatureError::Malformed("body digest"))?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut out)
            .map_err(|_| SignatureError::Malformed("body digest"))?;
        Ok(BodyBinding::Sha256(out))
    }
}

/// The parts of a request the signature covers.
#[derive(Debug, Clone, Copy)]
pub struct SignedParts<'a> {
    pub method: &'a str,
    pub path_and_query: &'a str,
    pub device_id: Option<&'a str>,
    pub client_ip: Option<&'a str>,
    pub body: BodyBinding,
    /// The edge's facts about the phone's link (`x-relay-link`, WebSocket upgrades); when
    /// present it is a last line of the signed string (absent, the string is as before).
    pub link: Option<&'a str>,
}

/// Why a signature was refused. Each maps to 401 `invalid_signature` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature header missing: {0}")]
    Missing(&'static str),
    #[error("signature header malformed: {0}")]
    Malformed(&'static str),
    #[error("unsupported signature version")]
    UnsupportedVersion,
    #[error("signature timestamp outside the allowed window")]
    Stale,
    #[error("signature does not match")]
    Mismatch,
    #[error("signature nonce already used")]
    Replayed,
    #[error("signing secret too short")]
    WeakSecret,
}

impl SignatureError {
    /// A stable reason string for logs and the error body.
    pub const fn reason(&self) -> &'static str {
        match self {
            SignatureError::Missing(_) => "signature.missing",
            SignatureError::Malformed(_) => "signature.malformed",
            SignatureError::UnsupportedVersion => "signature.unsupported_version",
            SignatureError::Stale => "signature.stale",
            SignatureError::Mismatch => "signature.mismatch",
            SignatureError::Replayed => "signature.replayed",
            SignatureError::WeakSecret => "signature.weak_secret",
        }
    }
}

fn valid_nonce(nonce: &str) -> bool {
    (16..=64).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn no_newline(field: &str) -> bool {
    !field.bytes().any(|b| b == b'\n' || b == b'\r')
}

/// The exact string that is MACed.
pub fn signed_string(
    parts: &SignedParts<'_>,
    timestamp: u64,
    nonce: &str,
) -> Result<String, SignatureError> {
    if !valid_nonce(nonce) {
        return Err(SignatureError::Malformed("nonce"));
    }
    let device = parts.device_id.unwrap_or("-");
    let ip = parts.client_ip.unwrap_or("-");
    for (field, name) in [
        (parts.method, "method"),
        (parts.path_and_query, "path"),
        (device, "device"),
        (ip, "client ip"),
    ] {
        if field.is_empty() || !no_newline(field) {
            return Err(SignatureError::Malformed(name));
        }
    }
    let mut signed = format!(
        "{DOMAIN}\n{timestamp}\n{nonce}\n{}\n{}\n{device}\n{ip}\n{}",
        parts.method,
        parts.path_and_query,
        parts.body.to_header_value()
    );
    if let Some(link) = parts.link {
        if link.is_empty() || !no_newline(link) {
            return Err(SignatureError::Malformed("link"));
        }
        signed.push('\n');
        signed.push_str(link);
    }
    Ok(signed)
}

fn mac(secret: &[u8]) -> Result<HmacSha256, SignatureError> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(SignatureError::WeakSecret);
    }
    HmacSha256::new_from_slice(secret).map_err(|_| SignatureError::WeakSecret)
}

/// Signs; returns the `X-Relay-Signature` header value `v1=<hex>`.
pub fn sign(
    secret: &[u8],
    parts: &SignedParts<'_>,
    timestamp: u64,
    nonce: &str,
) -> Result<String, SignatureError> {
    let mut m = mac(secret)?;
    m.update(signed_string(parts, timestamp, nonce)?.as_bytes());
    Ok(format!(
        "{VERSION}={}",
        hex::encode(m.finalize().into_bytes())
    ))
}

/// Checks version, the MAC (in constant time), then freshness (±[`MAX_SKEW_SECS`] around
/// `now`). The MAC comes first so that [`SignatureError::Stale`] is only ever said of a request
/// signed with the secret: anyone can send an old timestamp, so a refusal for the time says
/// something about the clocks only when the signer is known. Replay is the caller's check
/// (remember `nonce` until `timestamp + MAX_SKEW_SECS` has passed).
pub fn verify(
    secret: &[u8],
    parts: &SignedParts<'_>,
    timestamp: u64,
    nonce: &str,
    signature_header: &str,
    now: u64,
) -> Result<(), SignatureError> {
    let hex_sig = signature_header
        .strip_prefix("v1=")
        .ok_or(SignatureError::UnsupportedVersion)?;
    let mut given = [0u8; 32];
    hex::decode_to_slice(hex_sig, &mut given)
        .map_err(|_| SignatureError::Malformed("signature"))?;
    let mut m = mac(secret)?;
    m.update(signed_string(parts, timestamp, nonce)?.as_bytes());
    // `verify_slice` compares in constant time.
    m.verify_slice(&given)
        .map_err(|_| SignatureError::Mismatch)?;
    if timestamp.abs_diff(now) > MAX_SKEW_SECS {
        return Err(SignatureError::Stale);
    }
    Ok(())
}

/// Parses the `X-Relay-Timestamp` header.
pub fn parse_timestamp(v: &str) -> Result<u64, SignatureError> {
    if v.is_empty() || v.len() > 12 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::Malformed("timestamp"));
    }
    v.parse()
        .map_err(|_| SignatureError::Malformed("timestamp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NONCE: &str = "abcdefghijklmnop";

    fn parts() -> SignedParts<'static> {
        SignedParts {
            method: "GET",
            path_and_query: "/api/v1/events?limit=20",
            device_id: Some("dev_1"),
            client_ip: Some("203.0.113.9"),
            body: BodyBinding::of_bytes(b""),
            link: None,
        }
    }

    #[test]
    fn the_link_is_covered_by_the_signature() {
        let with_link = SignedParts {
            link: Some("rtt=42; platform=ios"),
            ..parts()
        };
        let sig = sign(SECRET, &with_link, 1_000, NONCE).unwrap();
        assert_eq!(
            verify(SECRET, &with_link, 1_000, NONCE, &sig, 1_000),
            Ok(())
        );
        for forged in [None, Some("rtt=900; platform=ios")] {
            let parts = SignedParts {
                link: forged,
                ..parts()
            };
            assert_eq!(
                verify(SECRET, &parts, 1_000, NONCE, &sig, 1_000),
                Err(SignatureError::Mismatch),
                "{forged:?}"
            );
        }
        let plain = sign(SECRET, &parts(), 1_000, NONCE).unwrap();
        assert_eq!(
            verify(SECRET, &with_link, 1_000, NONCE, &plain, 1_000),
            Err(SignatureError::Mismatch),
            "a link added to a request signed without one"
        );
        let newline = SignedParts {
            link: Some("rtt=1\nx"),
            ..parts()
        };
        assert!(sign(SECRET, &newline, 1_000, NONCE).is_err());
    }

    #[test]
    fn a_fresh_signature_verifies() {
        let sig = sign(SECRET, &parts(), 1_000, NONCE).unwrap();
        assert!(sig.starts_with("v1="));
        verify(SECRET, &parts(), 1_000, NONCE, &sig, 1_030).unwrap();
    }

    #[test]
    fn every_covered_field_changes_the_signature() {
        let sig = sign(SECRET, &parts(), 1_000, NONCE).unwrap();
        let mut variants = vec![];
        let mut p = parts();
        p.method = "POST";
        variants.push(p);
        let mut p = parts();
        p.path_and_query = "/api/v1/events?limit=21";
        variants.push(p);
        let mut p = parts();
        p.device_id = Some("dev_2");
        variants.push(p);
        let mut p = parts();
        p.device_id = None;
        variants.push(p);
        let mut p = parts();
        p.client_ip = Some("203.0.113.10");
        variants.push(p);
        let mut p = parts();
        p.body = BodyBinding::Unsigned;
        variants.push(p);
        let mut p = parts();
        p.body = BodyBinding::of_bytes(b"x");
        variants.push(p);
        for v in variants {
            assert_eq!(
                verify(SECRET, &v, 1_000, NONCE, &sig, 1_000),
                Err(SignatureError::Mismatch),
                "{v:?}"
            );
        }
        assert_eq!(
            verify(SECRET, &parts(), 1_001, NONCE, &sig, 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, &parts(), 1_000, "abcdefghijklmnoq", &sig, 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(
                b"another secret of thirty-two bytes!",
                &parts(),
                1_000,
                NONCE,
                &sig,
                1_000
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn stale_and_future_timestamps_are_refused() {
        let sig = sign(SECRET, &parts(), 1_000, NONCE).unwrap();
        assert_eq!(
            verify(SECRET, &parts(), 1_000, NONCE, &sig, 1_061),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(SECRET, &parts(), 1_000, NONCE, &sig, 939),
            Err(SignatureError::Stale)
        );
        verify(SECRET, &parts(), 1_000, NONCE, &sig, 1_060).unwrap();
    }

    #[test]
    fn a_forged_signature_is_a_mismatch_whatever_its_time() {
        // Stale means "signed with the secret, at the wrong time": a forger's old or future
        // timestamp says nothing about the clocks.
        let forged = format!("v1={}", "00".repeat(32));
        for at in [0, 1_000, 5_000, u64::MAX / 2] {
            assert_eq!(
                verify(SECRET, &parts(), at, NONCE, &forged, 1_000),
                Err(SignatureError::Mismatch),
                "{at}"
            );
        }
        let other = sign(b"another secret, 32 bytes or more", &parts(), 1, NONCE).unwrap();
        assert_eq!(
            verify(SECRET, &parts(), 1, NONCE, &other, 1_000),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn malformed_headers_are_refused_without_panicking() {
        for bad in [
            "",
            "v1=",
            "v2=00",
            "v1=zz",
            "v1=00",
            &"v1=".repeat(100),
            "v1=ééé",
        ] {
            assert!(
                verify(SECRET, &parts(), 1_000, NONCE, bad, 1_000).is_err(),
                "{bad:?}"
            );
        }
        for nonce in [
            "short",
            "with space in the nonce!",
            "x\nyyyyyyyyyyyyyyyyyy",
            &"a".repeat(65),
        ] {
            assert_eq!(
                sign(SECRET, &parts(), 1_000, nonce),
                Err(SignatureError::Malformed("nonce"))
            );
        }
        let mut p = parts();
        p.path_and_query = "/a\nGET";
        assert!(sign(SECRET, &p, 1_000, NONCE).is_err());
        assert_eq!(
            sign(b"short", &parts(), 1, NONCE),
            Err(SignatureError::WeakSecret)
        );
        for ts in ["", "-1", "1e9", "9999999999999", "12 "] {
            assert!(parse_timestamp(ts).is_err(), "{ts:?}");
        }
        assert_eq!(parse_timestamp("1700000000"), Ok(1_700_000_000));
    }

    #[test]
    fn body_binding_round_trips_through_its_header() {
        for b in [BodyBinding::Unsigned, BodyBinding::of_bytes(b"hello")] {
            assert_eq!(BodyBinding::parse_header_value(&b.to_header_value()), Ok(b));
        }
        assert!(BodyBinding::parse_header_value("sha256:xyz").is_err());
        assert!(BodyBinding::parse_header_value("md5:00").is_err());
    }
}
