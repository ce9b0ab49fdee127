//! What every listener shares: configuration, the store, keys, the backend client, and the small
//! pieces of in-memory state (replay cache, per-client pairing windows, liveness facts).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use argus_shared::token::Expectations;

use crate::base::clock::unix_now;
use crate::base::config::AgentConfig;
use crate::domain::auth::device_token;
use crate::domain::auth::edge::replay::ReplayCache;
use crate::domain::key_ring::{KeyRing, KeyRingError};
use crate::domain::pairing::limiter::FailureLimiter;
use crate::domain::proxy::backend::{Backend, BackendConfigError};
use crate::domain::store::{Store, StoreError};

/// Names of the secrets in the store.
pub const SECRET_EDGE_HMAC: &str = "edge_hmac";
pub const SECRET_ADMIN_TOKEN: &str = "admin_token";
pub const SECRET_INSTANCE_ID: &str = "instance_id";

/// At most this many owner codes are remembered for `GET /admin/pairing-codes/{code}`.
const MAX_REMEMBERED_OWNER_CODES: usize = 256;

pub struct AppState {
    pub config: AgentConfig,
    pub backend: Backend,
    pub store: Arc<Store>,
    pub keys: KeyRing,
    pub expectations: Expectations,
    pub edge_secret: Vec<u8>,
    pub admin_token: Vec<u8>,
    pub instance_id: String,
    /// `sha256:<hex>` of the LAN certificate (DER), as put in pairing QR codes.
    pub lan_fingerprint: String,
    pub replay: ReplayCache,
    /// The Oblivious HTTP keys sealed requests are opened with ([`crate::application::sealed`]).
    pub sealed_keys: crate::domain::sealed_keys::SealedKeys,
    /// Encapsulations of sealed requests opened within the freshness window (replays refused).
    pub sealed_replay: ReplayCache,
    /// Device tokens verified recently (see `require_device_token`).
    pub token_memory: device_token::TokenMemory,
    /// Failed code attempts per client (redeem, status, exchange, refresh).
    pub pairing_failures: FailureLimiter,
    /// Phone-initiated pairing requests per client.
    pub pairing_requests: FailureLimiter,
    pub started_at: u64,
    /// Signed requests accepted and refused, by reason (for status and `doctor`).
    pub edge_stats: crate::domain::auth::edge::stats::EdgeStats,
    /// The latest word on cloudflared (see [`crate::domain::tunnel`]).
    pub tunnel: crate::domain::tunnel::TunnelMonitor,
    /// Owner codes made through the admin API, and the device each was redeemed by.
    owner_codes: Mutex<HashMap<String, OwnerCodeState>>,
    /// The admin page's sign-in tickets and browser sessions (in memory).
    pub admin_sessions: crate::domain::auth::admin_session::Sessions,
    /// The LAN's image variants and transcoding bounds.
    pub lan_images: crate::domain::proxy::images::LanImages,
}

#[derive(Debug, Clone)]
pub struct OwnerCodeState {
    pub expires_at: u64,
    pub device_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeyRingError),
    #[error(transparent)]
    SealedKeys(#[from] crate::domain::sealed_keys::SealedKeysError),
    #[error("could not create the Oblivious HTTP key: {0}")]
    SealedKeyCreation(#[from] crate::domain::sealed_keys::RotateError),
    #[error(transparent)]
    Backend(#[from] BackendConfigError),
    #[error("the data directory is not initialised ({0} missing): run `argus-relay init`")]
    NotInitialised(&'static str),
    #[error("LAN certificate: {0}")]
    LanCertificate(String),
    #[error("no randomness for a new key: {0}")]
    Random(#[from] getrandom::Error),
}

/// Gives a data directory everything [`AppState::open`] needs, creating only what is missing
/// (never replacing a key or secret): the token signing key, the edge request-signing secret,
/// the admin token, the instance id and the LAN certificate. Returns what it created, in words.
/// `argus-relay init` runs it; so do the handler tests.
pub fn provision(config: &AgentConfig, store: &Store) -> Result<Vec<String>, StartError> {
    let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
    let mut made = Vec::new();
    if store.current_signing_key()?.is_none() {
        let seed = crate::domain::key_ring::new_seed()?;
        let key = argus_shared::token::TokenSigningKey::from_seed_with_thumbprint_kid(seed);
        store.add_signing_key(&key.kid, &seed, now)?;
        made.push(format!("token signing key {}", key.kid));
    }
    if store.ohttp_keys_accepted(now)?.is_empty() {
        let key_id = crate::domain::sealed_keys::rotate(store, unix_now())?;
        made.push(format!("Oblivious HTTP key {key_id} (sealed mode)"));
    }
    let random = |n: usize| -> Result<Vec<u8>, StartError> {
        let mut bytes = vec![0u8; n];
        getrandom::getrandom(&mut bytes)?;
        Ok(bytes)
    };
    let secrets = [
        (SECRET_EDGE_HMAC, random(32)?, "edge request-signing secret"),
        (
            SECRET_ADMIN_TOKEN,
            hex::encode(random(32)?).into_bytes(),
            "admin token",
        ),
        (
            SECRET_INSTANCE_ID,
            hex::encode(random(8)?).into_bytes(),
            "instance id",
        ),
    ];
    for (name, value, what) in secrets {
        if store.put_secret_if_absent(name, &value, now)? {
            made.push(what.to_owned());
        }
    }
    let (fingerprint, cert_made) = crate::domain::lan::cert::ensure(&config.data_dir)
        .map_err(|e| StartError::LanCertificate(e.to_string()))?;
    if cert_made {
        made.push(format!("LAN certificate {fingerprint}"));
    }
    Ok(made)
}

/// The sealed-mode keys; a data directory initialised before sealed mode existed gets its first
/// key here (what `init` does for a new one).
fn open_sealed_keys(
    store: &Store,
    now: u64,
) -> Result<crate::domain::sealed_keys::SealedKeys, StartError> {
    use crate::domain::sealed_keys::{self, SealedKeys, SealedKeysError};
    match SealedKeys::load(store, now) {
        Err(SealedKeysError::NoKey) => {
            sealed_keys::rotate(store, now)?;
            tracing::info!("created the Oblivious HTTP key (sealed mode)");
            Ok(SealedKeys::load(store, now)?)
        }
        other => Ok(other?),
    }
}

impl AppState {
    /// Opens everything `argus-relay run` needs from the configuration and data directory.
    pub fn open(config: AgentConfig) -> Result<AppState, StartError> {
        let store = Arc::new(Store::open(config.database_path())?);
        let now = unix_now();
        let keys = KeyRing::load(&store, now)?;
        let sealed_keys = open_sealed_keys(&store, now)?;
        let secret = |name: &'static str| {
            store
                .get_secret(name)?
                .ok_or(StartError::NotInitialised(name))
        };
        let edge_secret = secret(SECRET_EDGE_HMAC)?;
        let admin_token = secret(SECRET_ADMIN_TOKEN)?;
        let instance_id = String::from_utf8_lossy(&secret(SECRET_INSTANCE_ID)?).into_owned();
        let lan_fingerprint = crate::domain::lan::cert::fingerprint_of_file(&config.data_dir)
            .map_err(|e| StartError::LanCertificate(e.to_string()))?;
        let exchange =
            crate::domain::proxy::backend_session::HttpExchange::new(&config.backend.url)
                .map_err(|_| BackendConfigError::BadUrl(config.backend.url.clone()))?;
        let session = Arc::new(crate::domain::proxy::backend_session::BackendSession::new(
            store.clone(),
            Box::new(exchange),
            Arc::new(unix_now),
        )?);
        let backend = Backend::new(
            &config.backend.url,
            config.backend.api_key.as_deref(),
            config.backend_timeout(),
            config.backend.max_concurrent_requests,
        )?
        .with_session(session);
        let tunnel = crate::domain::tunnel::TunnelMonitor::new(
            crate::domain::tunnel::TunnelProvider::of(&config).as_ref(),
        );
        Ok(AppState {
            expectations: Expectations::new(config.issuer(), config.audience())
                .with_issued_lifetime(config.access_ttl()),
            config,
            backend,
            store,
            keys,
            edge_secret,
            admin_token,
            instance_id,
            lan_fingerprint,
            replay: ReplayCache::default(),
            sealed_keys,
            sealed_replay: ReplayCache::default(),
            token_memory: Default::default(),
            pairing_failures: FailureLimiter::default(),
            pairing_requests: FailureLimiter::default(),
            started_at: now,
            edge_stats: crate::domain::auth::edge::stats::EdgeStats::default(),
            tunnel,
            owner_codes: Mutex::new(HashMap::new()),
            admin_sessions: crate::domain::auth::admin_session::Sessions::default(),
            lan_images: crate::domain::proxy::images::LanImages::default(),
        })
    }

    /// What [`device_token::check`] needs, from this state.
    pub fn device_tokens(&self) -> device_token::DeviceTokens<'_> {
        device_token::DeviceTokens {
            keys: &self.keys,
            expectations: &self.expectations,
            store: &self.store,
            memory: &self.token_memory,
        }
    }

    /// Records activity (throttled in the store to one write a minute per device), off the
    /// async workers and without waiting for it: the request does not depend on it.
    pub fn touch_device(&self, device_id: &str) {
        let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
        let id = device_id.to_owned();
        // Started at once; dropping the future leaves it running.
        drop(self.store.off_worker(move |s| {
            if let Err(e) = s.touch_device(&id, now) {
                tracing::warn!(error = %e, "could not record device activity");
            }
            Ok::<(), StoreError>(())
        }));
    }

    fn owner_codes(&self) -> std::sync::MutexGuard<'_, HashMap<String, OwnerCodeState>> {
        self.owner_codes.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn remember_owner_code(&self, code: &str, state: OwnerCodeState) {
        let now = unix_now();
        let mut codes = self.owner_codes();
        // Forget codes that expired more than a minute ago, then cap the map.
        codes.retain(|_, s| s.expires_at + 60 > now);
        if codes.len() >= MAX_REMEMBERED_OWNER_CODES {
            if let Some(oldest) = codes
                .iter()
                .min_by_key(|(_, s)| s.expires_at)
                .map(|(c, _)| c.clone())
            {
                codes.remove(&oldest);
            }
        }
        codes.insert(code.to_owned(), state);
    }

    pub fn owner_code_redeemed(&self, code: &str, device_id: &str) {
        if let Some(s) = self.owner_codes().get_mut(code) {
            s.device_id = Some(device_id.to_owned());
        }
    }

    pub fn owner_code(&self, code: &str) -> Option<OwnerCodeState> {
        self.owner_codes().get(code).cloned()
    }
}
