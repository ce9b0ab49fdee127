//! The agent's Oblivious HTTP keys in memory: the current key configuration (served publicly at
//! [`argus_shared::sealed::KEYS_PATH`], pinned by phones at pairing) and, during a rotation's
//! overlap, the one it replaced. Loaded from the store; reloaded after `keys rotate`.

use std::sync::{Arc, RwLock};

use argus_shared::sealed::key_config_pin;
use ohttp::hpke::{Aead, Kdf, Kem};
use ohttp::{KeyConfig, Server, ServerResponse, SymmetricSuite};

use crate::domain::store::{OhttpKeySecret, Store, StoreError, OHTTP_KEY_OVERLAP_SECS};

/// Why the sealed keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SealedKeysError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no Oblivious HTTP key: run `argus-relay init` (or `argus-relay keys rotate`) first")]
    NoKey,
    #[error("stored Oblivious HTTP key {key_id} is not usable: {source}")]
    BadKey {
        key_id: u8,
        #[source]
        source: ohttp::Error,
    },
}

/// Why a sealed request could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The request names a key id the agent does not hold (any more): an old configuration after
    /// the overlap, or a substituted one.
    #[error("the sealed request is for an unknown key")]
    UnknownKey,
    /// Truncated, wrong suite, or the AEAD failed: tampered with or not for us.
    #[error("the sealed request cannot be opened: {0}")]
    Undecryptable(#[source] ohttp::Error),
}

impl OpenError {
    pub fn reason(&self) -> &'static str {
        match self {
            OpenError::UnknownKey => "sealed.unknown_key",
            OpenError::Undecryptable(_) => "sealed.undecryptable",
        }
    }
}

/// The suites the agent offers, in its order of preference: AES-128-GCM (hardware AES on phones)
/// and ChaCha20-Poly1305, both over X25519 and HKDF-SHA256 (RFC 9458's examples).
fn suites() -> Vec<SymmetricSuite> {
    vec![
        SymmetricSuite::new(Kdf::HkdfSha256, Aead::Aes128Gcm),
        SymmetricSuite::new(Kdf::HkdfSha256, Aead::ChaCha20Poly1305),
    ]
}

/// The key configuration (with its private key) derived from a stored secret (RFC 9180
/// `DeriveKeyPair`): the store keeps 32 bytes, not an encoding of its own.
pub fn key_config(secret: &OhttpKeySecret) -> Result<KeyConfig, ohttp::Error> {
    KeyConfig::derive(secret.key_id, Kem::X25519Sha256, suites(), &secret.ikm)
}

struct Accepted {
    key_id: u8,
    server: Server,
    /// Unix time after which the key no longer opens requests (`None`: the current key).
    until: Option<u64>,
}

struct Loaded {
    /// Current first.
    accepted: Vec<Accepted>,
    /// The `application/ohttp-keys` body: the current configuration only.
    served: Arc<[u8]>,
    pin: Arc<str>,
}

fn load(store: &Store, now: u64) -> Result<Loaded, SealedKeysError> {
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let secrets = store.ohttp_keys_accepted(now)?;
    let current = secrets
        .iter()
        .find(|k| k.superseded_at.is_none())
        .ok_or(SealedKeysError::NoKey)?;
    let bad = |key_id| move |source| SealedKeysError::BadKey { key_id, source };
    let served: Arc<[u8]> =
        KeyConfig::encode_list(&[key_config(current).map_err(bad(current.key_id))?])
            .map_err(bad(current.key_id))?
            .into();
    let mut accepted = Vec::with_capacity(secrets.len());
    for secret in &secrets {
        let config = key_config(secret).map_err(bad(secret.key_id))?;
        accepted.push(Accepted {
            key_id: secret.key_id,
            server: Server::new(config).map_err(bad(secret.key_id))?,
            until: secret
                .superseded_at
                .map(|at| u64::try_from(at.saturating_add(OHTTP_KEY_OVERLAP_SECS)).unwrap_or(0)),
        });
    }
    Ok(Loaded {
        accepted,
        pin: key_config_pin(&served).into(),
        served,
    })
}

/// The keys sealed requests are opened with.
pub struct SealedKeys {
    loaded: RwLock<Arc<Loaded>>,
}

impl SealedKeys {
    pub fn load(store: &Store, now: u64) -> Result<SealedKeys, SealedKeysError> {
        Ok(SealedKeys {
            loaded: RwLock::new(Arc::new(load(store, now)?)),
        })
    }

    /// Re-reads the keys (after a rotation).
    pub fn reload(&self, store: &Store, now: u64) -> Result<(), SealedKeysError> {
        let fresh = Arc::new(load(store, now)?);
        match self.loaded.write() {
            Ok(mut l) => *l = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }

    fn snapshot(&self) -> Arc<Loaded> {
        match self.loaded.read() {
            Ok(l) => l.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The `application/ohttp-keys` body served at [`argus_shared::sealed::KEYS_PATH`].
    pub fn served(&self) -> Arc<[u8]> {
        self.snapshot().served.clone()
    }

    /// [`key_config_pin`] of [`Self::served`]: what pairing hands the phone.
    pub fn pin(&self) -> Arc<str> {
        self.snapshot().pin.clone()
    }

    /// Opens an encapsulated request (RFC 9458 §4.3) under the key it names, if that key is
    /// current or still in its overlap at `now`. Returns the Binary HTTP request and what seals
    /// the answer.
    pub fn open(&self, sealed: &[u8], now: u64) -> Result<(Vec<u8>, ServerResponse), OpenError> {
        let key_id = *sealed.first().ok_or(OpenError::UnknownKey)?;
        let loaded = self.snapshot();
        let key = loaded
            .accepted
            .iter()
            .find(|k| k.key_id == key_id && k.until.is_none_or(|until| now < until))
            .ok_or(OpenError::UnknownKey)?;
        key.server
            .decapsulate(sealed)
            .map_err(OpenError::Undecryptable)
    }
}

/// 32 bytes of keying material from the OS for a new key.
pub fn new_key_material() -> Result<[u8; 32], getrandom::Error> {
    let mut ikm = [0u8; 32];
    getrandom::getrandom(&mut ikm)?;
    Ok(ikm)
}

/// Adds a fresh key and makes it current (`init`, `keys rotate`); the previous one stays
/// accepted for [`OHTTP_KEY_OVERLAP_SECS`]. Returns the new key id.
pub fn rotate(store: &Store, now: u64) -> Result<u8, RotateError> {
    let ikm = new_key_material()?;
    Ok(store.rotate_ohttp_key(&ikm, i64::try_from(now).unwrap_or(i64::MAX))?)
}

#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error("no randomness from the OS: {0}")]
    Random(#[from] getrandom::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal(served: &[u8], body: &[u8]) -> (Vec<u8>, ohttp::ClientResponse) {
        ohttp::ClientRequest::from_encoded_config_list(served)
            .unwrap()
            .encapsulate(body)
            .unwrap()
    }

    #[test]
    fn a_sealed_request_opens_under_the_current_key_and_the_answer_opens_at_the_client() {
        let store = Store::open_in_memory().unwrap();
        rotate(&store, 1_000).unwrap();
        let keys = SealedKeys::load(&store, 1_000).unwrap();
        assert_eq!(&*keys.pin(), key_config_pin(&keys.served()));

        let (sealed, client) = seal(&keys.served(), b"inner request");
        let (opened, server) = keys.open(&sealed, 1_000).unwrap();
        assert_eq!(opened, b"inner request");
        let answer = server.encapsulate(b"inner answer").unwrap();
        assert_eq!(client.decapsulate(&answer).unwrap(), b"inner answer");
    }

    #[test]
    fn tampered_and_unknown_key_requests_do_not_open() {
        let store = Store::open_in_memory().unwrap();
        rotate(&store, 1_000).unwrap();
        let keys = SealedKeys::load(&store, 1_000).unwrap();
        let (mut sealed, _) = seal(&keys.served(), b"inner request");
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(matches!(
            keys.open(&sealed, 1_000),
            Err(OpenError::Undecryptable(_))
        ));
        sealed[0] = 7;
        assert!(matches!(
            keys.open(&sealed, 1_000),
            Err(OpenError::UnknownKey)
        ));
        assert!(matches!(keys.open(&[], 1_000), Err(OpenError::UnknownKey)));
    }

    #[test]
    fn after_a_rotation_the_old_configuration_opens_during_the_overlap_only() {
        let store = Store::open_in_memory().unwrap();
        rotate(&store, 1_000).unwrap();
        let old = SealedKeys::load(&store, 1_000).unwrap().served();
        rotate(&store, 2_000).unwrap();
        let keys = SealedKeys::load(&store, 2_000).unwrap();
        assert_ne!(keys.served(), old, "a new configuration is served");

        let (sealed, _) = seal(&old, b"x");
        let overlap_end = 2_000 + OHTTP_KEY_OVERLAP_SECS as u64;
        assert!(keys.open(&sealed, overlap_end - 1).is_ok());
        assert!(matches!(
            keys.open(&sealed, overlap_end),
            Err(OpenError::UnknownKey)
        ));
        let (sealed, _) = seal(&keys.served(), b"x");
        assert!(keys.open(&sealed, overlap_end + 1).is_ok());
    }
}
