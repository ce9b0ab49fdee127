//! A certificate fingerprint, `sha256:<64 hex digits>`: the SHA-256 of the LAN certificate's DER.
//! The agent publishes it (the pairing link, the pairing answer, `/api/v1/health`, the mDNS TXT
//! record) and a phone pins it: it then accepts exactly that certificate on the LAN.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The text form's prefix (accepted in any case, written in lower case).
const PREFIX: &str = "sha256:";

/// The SHA-256 of a certificate's DER.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CertFingerprint([u8; 32]);

/// Text that is not `sha256:<64 hex digits>` (holds at most its first 80 characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a fingerprint (expected sha256:<64 hex digits>)")]
pub struct FingerprintError(pub String);

impl CertFingerprint {
    /// Reads `sha256:<64 hex digits>` (either case).
    pub fn parse(text: &str) -> Result<CertFingerprint, FingerprintError> {
        let bad = || FingerprintError(text.chars().take(80).collect());
        let hex_part = text
            .get(..PREFIX.len())
            .filter(|p| p.eq_ignore_ascii_case(PREFIX))
            .and_then(|_| text.get(PREFIX.len()..))
            .ok_or_else(bad)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut out).map_err(|_| bad())?;
        Ok(CertFingerprint(out))
    }

    /// The fingerprint of a DER certificate.
    pub fn of_certificate(der: &[u8]) -> CertFingerprint {
        CertFingerprint(Sha256::digest(der).into())
    }

    /// Whether `der` is the certificate this fingerprint names (compared in constant time).
    pub fn matches(&self, der: &[u8]) -> bool {
        let actual: [u8; 32] = Sha256::digest(der).into();
        bool::from(actual.ct_eq(&self.0))
    }
}

impl fmt::Display for CertFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", hex::encode(self.0))
    }
}

impl fmt::Debug for CertFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_the_sha256_of_the_der_in_lower_case_hex() {
        let fp = CertFingerprint::of_certificate(b"abc");
        assert_eq!(
            fp.to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(fp.matches(b"abc"));
        assert!(!fp.matches(b"abd"));
    }

    #[test]
    fn reads_what_it_writes_in_either_case() {
        let fp = CertFingerprint::of_certificate(b"certificate");
        assert_eq!(CertFingerprint::parse(&fp.to_string()), Ok(fp));
        let upper = fp.to_string().to_uppercase();
        assert_eq!(CertFingerprint::parse(&upper), Ok(fp));
    }

    #[test]
    fn refuses_anything_else() {
        let good = CertFingerprint::of_certificate(b"x").to_string();
        for bad in [
            "",
            "sha256:",
            "sha256",
            "sha1:00",
            "sha256:zz",
            &good[7..],
            &good[..good.len() - 2],
            &format!("{good}00"),
            &format!(" {good}"),
            &good.replace("sha256:", "sha256-"),
            "sha256:é0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert!(CertFingerprint::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn errors_quote_at_most_80_characters() {
        let long = "x".repeat(10_000);
        let FingerprintError(quoted) = CertFingerprint::parse(&long).unwrap_err();
        assert_eq!(quoted.chars().count(), 80);
    }
}
