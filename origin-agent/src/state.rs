//! What every listener shares: configuration, the store, keys, the backend client, and the small
//! pieces of in-memory state (replay cache, per-IP pairing failures, liveness facts).

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use argus_shared::token::Expectations;

use crate::clock::unix_now;
use crate::config::AgentConfig;
use crate::identity::limiter::FailureLimiter;
use crate::keys::KeyRing;
use crate::proxy::Backend;
use crate::replay::ReplayCache;
use crate::store::Store;

/// Names of the secrets in the store.
pub const SECRET_EDGE_HMAC: &str = "edge_hmac";
pub const SECRET_ADMIN_TOKEN: &str = "admin_token";
pub const SECRET_INSTANCE_ID: &str = "instance_id";

pub struct AppState {
    pub config: AgentConfig,
    pub backend: Backend,
    pub store: Arc<Store>,
    pub keys: KeyRing,
    pub expectations: Expectations,
    pub edge_secret: Vec<u8>,
    pub admin_token: Vec<u8>,
    pub instance_id: String,
    pub replay: ReplayCache,
    pub pairing_failures: FailureLimiter,
    pub started_at: u64,
    /// Unix time of the last request with a valid edge signature (0 = none yet).
    pub last_edge_request: AtomicU64,
    /// Owner codes made through the admin API, and the device each was redeemed by.
    pub owner_codes: Mutex<HashMap<String, OwnerCodeState>>,
}

#[derive(Debug, Clone)]
pub struct OwnerCodeState {
    pub expires_at: u64,
    pub device_id: Option<String>,
}

impl AppState {
    /// Records activity (throttled in the store to one write a minute per device).
    pub fn touch_device(&self, device_id: &str) {
        let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
        if let Err(e) = self.store.touch_device(device_id, now) {
            tracing::warn!(error = %e, "could not record device activity");
        }
    }
}
