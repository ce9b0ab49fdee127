//! Public keys: JWK / JWKS (RFC 7517, RFC 8037) and the verifier's [`KeySet`].

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;

use super::{TokenSigningKey, ALG};

/// A stable key id for `verifying_key`: its RFC 7638 JWK thumbprint (SHA-256, base64url, 43
/// characters), so the same key always gets the same `kid` wherever it is computed.
pub fn key_id_for(verifying_key: &VerifyingKey) -> String {
    // RFC 7638 §3.2: the required members in lexicographic order, no whitespace. RFC 8037 §2
    // names them for OKP keys: crv, kty, x. The base64url alphabet needs no JSON escaping.
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(verifying_key.as_bytes())
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// One public key (RFC 7517). [`TokenSigningKey::jwk`] writes
/// `{"kty":"OKP","crv":"Ed25519","x":…,"kid":…,"alg":"EdDSA","use":"sig"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type; must be `"OKP"`.
    pub kty: String,
    /// Curve; must be `"Ed25519"`. Missing (e.g. an RSA key) reads as empty and is refused.
    #[serde(default)]
    pub crv: String,
    /// The 32-byte public key, unpadded base64url.
    #[serde(default)]
    pub x: String,
    /// Key id, as in token headers.
    pub kid: String,
    /// If present must be `"EdDSA"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Public key use; if present must be `"sig"`.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// If present must contain `"verify"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ops: Option<Vec<String>>,
}

impl Jwk {
    /// The JWK of an Ed25519 public key.
    pub fn ed25519(kid: impl Into<String>, key: &VerifyingKey) -> Self {
        Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: URL_SAFE_NO_PAD.encode(key.as_bytes()),
            kid: kid.into(),
            alg: Some(ALG.into()),
            use_: Some("sig".into()),
            key_ops: None,
        }
    }

    /// The verifying key, if this is a usable Ed25519 signature-verification key.
    pub fn to_verifying_key(&self) -> Result<VerifyingKey, KeySetError> {
        let invalid = |reason| KeySetError::InvalidKey {
            kid: self.kid.clone(),
            reason,
        };
        if self.kid.is_empty() {
            return Err(invalid("empty kid"));
        }
        if self.kty != "OKP" || self.crv != "Ed25519" {
            return Err(invalid("not an Ed25519 OKP key"));
        }
        if self.alg.as_deref().is_some_and(|alg| alg != ALG) {
            return Err(invalid("alg is not EdDSA"));
        }
        if self.use_.as_deref().is_some_and(|u| u != "sig") {
            return Err(invalid("use is not sig"));
        }
        if let Some(ops) = &self.key_ops {
            if !ops.iter().any(|op| op == "verify") {
                return Err(invalid("key_ops lacks verify"));
            }
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(&self.x)
            .map_err(|_| invalid("x is not strict base64url"))?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| invalid("x is not 32 bytes"))?;
        let key =
            VerifyingKey::from_bytes(&bytes).map_err(|_| invalid("x is not a curve point"))?;
        if key.is_weak() {
            return Err(invalid("small-order public key"));
        }
        Ok(key)
    }
}

/// A JWK Set (RFC 7517 §5): `{"keys":[…]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// Why a key or key set was refused. Key ids are public and may be shown; keys are not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySetError {
    #[error("JWKS is not JSON of the expected shape")]
    Json,
    #[error("JWKS contains private key material")]
    PrivateKeyMaterial,
    #[error("key {kid:?}: {reason}")]
    InvalidKey { kid: String, reason: &'static str },
    #[error("key id {0:?} appears twice")]
    DuplicateKid(String),
}

/// The keys a verifier trusts, by `kid`. Refuses anything but Ed25519 signature keys.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KeySet {
    keys: BTreeMap<String, VerifyingKey>,
}

impl KeySet {
    /// An empty set (verifies nothing).
    pub fn new() -> Self {
        KeySet::default()
    }

    /// Every key of `jwks`, all or nothing: one unusable key or a repeated `kid` fails the set.
    pub fn from_jwks(jwks: &Jwks) -> Result<KeySet, KeySetError> {
        let mut set = KeySet::new();
        for jwk in &jwks.keys {
            set.insert(jwk.kid.clone(), jwk.to_verifying_key()?)?;
        }
        Ok(set)
    }

    /// [`KeySet::from_jwks`] from JSON text. A set with a private member (`d`) is refused: it
    /// means a secret is being published.
    pub fn from_jwks_json(json: &str) -> Result<KeySet, KeySetError> {
        let value: serde_json::Value = serde_json::from_str(json).map_err(|_| KeySetError::Json)?;
        let has_private = value
            .get("keys")
            .and_then(serde_json::Value::as_array)
            .is_some_and(|keys| keys.iter().any(|k| k.get("d").is_some()));
        if has_private {
            return Err(KeySetError::PrivateKeyMaterial);
        }
        let jwks: Jwks = serde_json::from_value(value).map_err(|_| KeySetError::Json)?;
        KeySet::from_jwks(&jwks)
    }

    /// The public half of `key`, under its `kid`.
    pub fn from_signing_key(key: &TokenSigningKey) -> KeySet {
        let mut keys = BTreeMap::new();
        keys.insert(key.kid.clone(), key.verifying_key());
        KeySet { keys }
    }

    /// Adds a key. Refuses an empty or repeated `kid` and small-order keys.
    pub fn insert(&mut self, kid: impl Into<String>, key: VerifyingKey) -> Result<(), KeySetError> {
        let kid = kid.into();
        if kid.is_empty() {
            return Err(KeySetError::InvalidKey {
                kid,
                reason: "empty kid",
            });
        }
        if key.is_weak() {
            return Err(KeySetError::InvalidKey {
                kid,
                reason: "small-order public key",
            });
        }
        if self.keys.contains_key(&kid) {
            return Err(KeySetError::DuplicateKid(kid));
        }
        self.keys.insert(kid, key);
        Ok(())
    }

    /// The key for `kid`.
    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.get(kid)
    }

    /// The key ids, sorted.
    pub fn kids(&self) -> Vec<&str> {
        self.keys.keys().map(String::as_str).collect()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The set as a JWKS, e.g. to publish it.
    pub fn to_jwks(&self) -> Jwks {
        Jwks {
            keys: self
                .keys
                .iter()
                .map(|(kid, key)| Jwk::ed25519(kid.clone(), key))
                .collect(),
        }
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("kids", &self.kids())
            .finish()
    }
}
