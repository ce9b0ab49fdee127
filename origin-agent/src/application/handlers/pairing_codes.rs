//! Owner-initiated pairing codes (the admin API and the admin page make them) and the pairing
//! URI their QR code carries (written with [`argus_shared::pair_uri`], which phones read it
//! with). The codes themselves are [`crate::domain::pairing::codes`]; the durable state is in
//! [`crate::domain::store`].

use argus_shared::cert_fingerprint::CertFingerprint;
use argus_shared::pair_uri::PairUri;
use serde::{Deserialize, Serialize};

use crate::application::state::{AppState, OwnerCodeState};
use crate::base::clock::unix_now;
use crate::base::error::AgentError;
use crate::domain::pairing::codes;
use crate::domain::store::{PairError, Scope};

/// Owner codes live at most this long (seconds).
pub const MAX_OWNER_CODE_TTL_SECS: u64 = 600;

/// The body of "make an owner pairing code", the same on the admin API and the admin page:
/// `{"scope": "owner" | "viewer", "ttl_secs": n}`, both optional.
#[derive(Debug, Deserialize)]
pub struct NewOwnerCode {
    #[serde(default)]
    scope: Option<String>,
    #[serde(default = "max_owner_code_ttl")]
    ttl_secs: u64,
}

fn max_owner_code_ttl() -> u64 {
    MAX_OWNER_CODE_TTL_SECS
}

impl NewOwnerCode {
    /// Creates the code it asks for ([`create_owner_code`]).
    pub async fn create(&self, state: &AppState) -> Result<CreatedOwnerCode, AgentError> {
        create_owner_code(state, scope_or_least(self.scope.as_deref())?, self.ttl_secs).await
    }
}

/// The scope an owner named for a pairing, or [`Scope::LEAST_PRIVILEGE`] when they named none
/// (the CLI asks for `owner` explicitly).
pub fn scope_or_least(named: Option<&str>) -> Result<Scope, AgentError> {
    match named {
        None => Ok(Scope::LEAST_PRIVILEGE),
        Some(s) => Scope::parse(s)
            .ok_or_else(|| AgentError::BadRequest("scope must be \"owner\" or \"viewer\"".into())),
    }
}

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
pub async fn create_owner_code(
    state: &AppState,
    scope: Scope,
    ttl_secs: u64,
) -> Result<CreatedOwnerCode, AgentError> {
    if ttl_secs == 0 || ttl_secs > MAX_OWNER_CODE_TTL_SECS {
        return Err(AgentError::BadRequest(format!(
            "ttl_secs must be between 1 and {MAX_OWNER_CODE_TTL_SECS}"
        )));
    }
    // What the owner's QR code carries for the phone to pin (the agent read it from its own
    // certificate at start, so this cannot fail short of a bug).
    let fingerprint = CertFingerprint::parse(&state.lan_fingerprint).map_err(|e| {
        tracing::error!(error = %e, "the LAN certificate's fingerprint");
        AgentError::Internal
    })?;
    let now = unix_now();
    let expires_at = now + ttl_secs;
    for _ in 0..8 {
        let code = codes::new_owner_code();
        let created = state.store.off_worker({
            let code = code.clone();
            let (expires_at, now) = (
                i64::try_from(expires_at).unwrap_or(i64::MAX),
                i64::try_from(now).unwrap_or(i64::MAX),
            );
            move |s| s.create_pairing_code(&code, scope, expires_at, now)
        });
        match created.await {
            Ok(()) => {
                state.remember_owner_code(
                    &code,
                    OwnerCodeState {
                        expires_at,
                        device_id: None,
                    },
                );
                return Ok(CreatedOwnerCode {
                    pair_uri: PairUri {
                        code: code.clone(),
                        url: state.config.public_url.clone(),
                        fingerprint,
                        // `okp`: the Oblivious HTTP key pin (sealed mode).
                        ohttp_keys_sha256: Some(state.sealed_keys.pin().to_string()),
                    }
                    .to_string(),
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
            Err(PairError::Store(e)) => return Err(super::phone::store_failed(e)),
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

    fn request(json: &str) -> NewOwnerCode {
        serde_json::from_str(json).expect("a well-formed request")
    }

    #[test]
    fn a_code_asked_for_without_a_scope_or_ttl_is_a_viewers_for_the_longest_time() {
        let asked = request("{}");
        assert_eq!(
            scope_or_least(asked.scope.as_deref()).ok(),
            Some(Scope::Viewer)
        );
        assert_eq!(asked.ttl_secs, MAX_OWNER_CODE_TTL_SECS);
    }

    #[test]
    fn only_owner_and_viewer_are_scopes() {
        assert_eq!(
            scope_or_least(request(r#"{"scope":"owner"}"#).scope.as_deref()).ok(),
            Some(Scope::Owner)
        );
        assert!(matches!(
            scope_or_least(request(r#"{"scope":"admin"}"#).scope.as_deref()),
            Err(AgentError::BadRequest(_))
        ));
    }
}
