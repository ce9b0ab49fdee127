//! Issuing what a paired device holds: a short-lived access token (EdDSA JWT, verified by the
//! edge and the agent with the shared code) and an opaque refresh token (≥ 256 random bits,
//! stored only as its SHA-256, rotated on every use).

use argus_shared::token::{sign_access_token, AccessClaims, TokenSigningKey};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use serde::Serialize;

use crate::domain::store::{refresh_token_hash, Device};

/// Prefix of refresh tokens (lets secret scanners and people recognise one).
pub const REFRESH_PREFIX: &str = "art1_";
/// Random bytes in a refresh token.
pub const REFRESH_BYTES: usize = 32;

fn random_b64(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A new device id: `dev_` + 128 random bits.
pub fn new_device_id() -> String {
    format!("dev_{}", random_b64(16))
}

/// A new refresh-token family id.
pub fn new_family_id() -> String {
    format!("fam_{}", random_b64(16))
}

/// A fresh refresh token and the hash the store keeps.
pub struct NewRefreshToken {
    pub token: String,
    pub hash: [u8; 32],
}

pub fn new_refresh_token() -> NewRefreshToken {
    let token = format!("{REFRESH_PREFIX}{}", random_b64(REFRESH_BYTES));
    let hash = refresh_token_hash(token.as_bytes());
    NewRefreshToken { token, hash }
}

/// Whether a presented string can be one of ours (checked before any store lookup).
pub fn looks_like_refresh_token(s: &str) -> bool {
    s.len() == REFRESH_PREFIX.len() + 43
        && s.starts_with(REFRESH_PREFIX)
        && s[REFRESH_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Who the tokens are for and how long they live.
pub struct Issuer<'a> {
    pub key: &'a TokenSigningKey,
    pub issuer: &'a str,
    pub audience: &'a str,
    pub ttl_secs: u64,
}

impl Issuer<'_> {
    pub fn access_token(&self, device: &Device, now: u64) -> String {
        let claims = AccessClaims {
            iss: self.issuer.to_owned(),
            aud: self.audience.to_owned(),
            sub: device.id.clone(),
            iat: now,
            nbf: now,
            exp: now + self.ttl_secs,
            jti: random_b64(12),
            scope: device.scope,
            name: device.name.clone(),
            platform: device.platform.clone().unwrap_or_else(|| "unknown".into()),
            app_version: device.app_version.clone(),
            os_version: device.os_version.clone(),
        };
        sign_access_token(self.key, &claims)
    }
}

/// The ArgusAI `TokenPair` shape, with a truthful `expires_in`.
#[derive(Debug, Serialize)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub device_id: String,
    /// The pin of the agent's Oblivious HTTP key configuration
    /// ([`argus_shared::sealed::key_config_pin`]): a sealed-mode phone checks the configuration
    /// it fetches against it.
    pub ohttp_keys_sha256: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_are_long_random_and_recognisable() {
        let a = new_refresh_token();
        let b = new_refresh_token();
        assert_ne!(a.token, b.token);
        assert!(looks_like_refresh_token(&a.token), "{}", a.token);
        assert_eq!(a.hash, refresh_token_hash(a.token.as_bytes()));
        assert!(!looks_like_refresh_token("art1_short"));
        assert!(!looks_like_refresh_token(
            &a.token.replace("art1_", "xxx1_")
        ));
        let mut bad = a.token.clone();
        bad.pop();
        bad.push('!');
        assert!(!looks_like_refresh_token(&bad));
    }

    #[test]
    fn ids_are_distinct() {
        assert_ne!(new_device_id(), new_device_id());
        assert!(new_device_id().starts_with("dev_"));
        assert!(new_family_id().starts_with("fam_"));
    }
}
