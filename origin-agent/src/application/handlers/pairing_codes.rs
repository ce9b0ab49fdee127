//! Owner-initiated pairing codes (the admin API and the admin page make them) and the pairing
//! URI their QR code carries. The codes themselves are [`crate::domain::pairing::codes`]; the
//! durable state is in [`crate::domain::store`].

use serde::Serialize;

use crate::application::state::{AppState, OwnerCodeState};
use crate::base::clock::unix_now;
use crate::base::error::AgentError;
use crate::domain::pairing::{codes, pair_uri};
use crate::domain::store::{PairError, Scope};

/// Owner codes live at most this long (seconds).
pub const MAX_OWNER_CODE_TTL_SECS: u64 = 600;

/// A new owner-initiated code as the admin API returns it.
#[derive(Debug, Serialize)]
pub struct CreatedOwnerCode {
    pub code: String,
    pub scope: &'static str,
    pub expires_at: u64,
    pub expires_in: u64,
    /// `argusai://pair?code=…&url=…&fp=sha256:…`: what the QR code encodes.
    pub pair_uri: String,
    pub public_url: String,
    pub fingerprint: String,
}

/// Creates a one-time owner code (CSPRNG, never trivial, redrawn on collision).
pub fn create_owner_code(
    state: &AppState,
    scope: Scope,
    ttl_secs: u64,
) -> Result<CreatedOwnerCode, AgentError> {
    if ttl_secs == 0 || ttl_secs > MAX_OWNER_CODE_TTL_SECS {
        return Err(AgentError::BadRequest(format!(
            "ttl_secs must be between 1 and {MAX_OWNER_CODE_TTL_SECS}"
        )));
    }
    let now = unix_now();
    let expires_at = now + ttl_secs;
    for _ in 0..8 {
        let code = codes::new_owner_code();
        match state.store.create_pairing_code(
            &code,
            scope,
            i64::try_from(expires_at).unwrap_or(i64::MAX),
            i64::try_from(now).unwrap_or(i64::MAX),
        ) {
            Ok(()) => {
                state.remember_owner_code(
                    &code,
                    OwnerCodeState {
                        expires_at,
                        device_id: None,
                    },
                );
                return Ok(CreatedOwnerCode {
                    // `okp`: the Oblivious HTTP key pin (sealed mode), 64 hex digits.
                    pair_uri: format!(
                        "{}&okp={}",
                        pair_uri(&code, &state.config.public_url, &state.lan_fingerprint),
                        state.sealed_keys.pin()
                    ),
                    code,
                    scope: scope.as_str(),
                    expires_at,
                    expires_in: ttl_secs,
                    public_url: state.config.public_url.clone(),
                    fingerprint: state.lan_fingerprint.clone(),
                });
            }
            Err(PairError::CodeInUse) => continue,
            Err(PairError::TooManyPending) => {
                return Err(AgentError::Conflict(
                    "too many unused pairing codes; wait for some to expire",
                ))
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot create a pairing code");
                return Err(AgentError::Internal);
            }
        }
    }
    Err(AgentError::Internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_uri_encodes_the_url() {
        assert_eq!(
            pair_uri("K7QRTA", "https://relay.example.com", "sha256:ab01"),
            "argusai://pair?code=K7QRTA&url=https://relay.example.com&fp=sha256:ab01"
        );
    }
}
