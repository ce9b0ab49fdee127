//! The agent's token keys in memory: the current signing key and every key whose tokens may still
//! be alive, loaded from the store and reloaded after a rotation.

use std::sync::{Arc, RwLock};

use argus_shared::token::{Jwks, KeySet, TokenSigningKey};

use crate::domain::store::{Store, StoreError, MAX_ACCESS_TOKEN_LIFETIME_SECS};

struct Loaded {
    current: Arc<TokenSigningKey>,
    verification: Arc<KeySet>,
}

pub struct KeyRing {
    loaded: RwLock<Loaded>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no signing key: run `argus-relay init` first")]
    NoSigningKey,
    #[error("stored signing key {0} is not usable")]
    BadKey(String),
}

fn load(store: &Store, now: u64) -> Result<Loaded, KeyRingError> {
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    store.retire_expired_keys(now, MAX_ACCESS_TOKEN_LIFETIME_SECS)?;
    let current = store
        .current_signing_key()?
        .ok_or(KeyRingError::NoSigningKey)?;
    let mut verification = KeySet::new();
    for key in store.signing_keys_for_verification(now)? {
        let signing = TokenSigningKey::from_seed(key.kid.clone(), key.seed);
        verification
            .insert(key.kid.clone(), signing.verifying_key())
            .map_err(|_| KeyRingError::BadKey(key.kid.clone()))?;
    }
    Ok(Loaded {
        current: Arc::new(TokenSigningKey::from_seed(
            current.kid.clone(),
            current.seed,
        )),
        verification: Arc::new(verification),
    })
}

impl KeyRing {
    pub fn load(store: &Store, now: u64) -> Result<KeyRing, KeyRingError> {
        Ok(KeyRing {
            loaded: RwLock::new(load(store, now)?),
        })
    }

    /// Re-reads the keys (after a rotation, and periodically to retire expired ones).
    pub fn reload(&self, store: &Store, now: u64) -> Result<(), KeyRingError> {
        let fresh = load(store, now)?;
        if let Ok(mut l) = self.loaded.write() {
            *l = fresh;
        }
        Ok(())
    }

    pub fn current(&self) -> Arc<TokenSigningKey> {
        match self.loaded.read() {
            Ok(l) => l.current.clone(),
            Err(poisoned) => poisoned.into_inner().current.clone(),
        }
    }

    pub fn verification_keys(&self) -> Arc<KeySet> {
        match self.loaded.read() {
            Ok(l) => l.verification.clone(),
            Err(poisoned) => poisoned.into_inner().verification.clone(),
        }
    }

    /// The public keys, as served at `/.well-known/jwks.json` and given to the Worker.
    pub fn jwks(&self) -> Jwks {
        self.verification_keys().to_jwks()
    }
}

/// A fresh Ed25519 seed from the OS.
pub fn new_seed() -> Result<[u8; 32], getrandom::Error> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed)?;
    Ok(seed)
}
