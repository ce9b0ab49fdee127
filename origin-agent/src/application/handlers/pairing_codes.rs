//! Owner-initiated pairing codes (the admin API and the admin page make them) and the pairing
//! URI their QR code carries. The codes themselves are [`crate::domain::pairing::codes`]; the
//! durable state is in [`crate::domain::store`].

use serde::{Deserialize, Serialize};

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

/// A request for an owner code, from the admin API or the admin page: `{scope, ttl_secs}`,
/// both optional.
#[derive(Debug, Deserialize)]
pub struct NewOwnerCode {
    /// Least privilege unless the owner asks for more (as the CLI does).
    #[serde(default = "least_privilege")]
    pub scope: String,
    #[serde(default = "longest_ttl")]
    pub ttl_secs: u64,
}

fn least_privilege() -> String {
    Scope::Viewer.as_str().into()
}

fn longest_ttl() -> u64 {
    MAX_OWNER_CODE_TTL_SECS
}

impl NewOwnerCode {
    pub fn scope(&self) -> Result<Scope, AgentError> {
        parse_scope(&self.scope)
    }
}

/// `owner` or `viewer`, else a 400 that says so.
pub fn parse_scope(s: &str) -> Result<Scope, AgentError> {
    Scope::parse(s)
        .ok_or_else(|| AgentError::BadRequest("scope must be \"owner\" or \"viewer\"".into()))
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
                    pair_uri: pair_uri(&code, &state.config.public_url, &state.lan_fingerprint),
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

    fn request(json: &str) -> NewOwnerCode {
        serde_json::from_str(json).expect("a well-formed request")
    }

    #[test]
    fn a_code_asked_for_without_a_scope_or_ttl_is_a_viewers_for_the_longest_time() {
        let asked = request("{}");
        assert_eq!(asked.scope().ok(), Some(Scope::Viewer));
        assert_eq!(asked.ttl_secs, MAX_OWNER_CODE_TTL_SECS);
    }

    #[test]
    fn only_owner_and_viewer_are_scopes() {
        assert_eq!(
            request(r#"{"scope":"owner"}"#).scope().ok(),
            Some(Scope::Owner)
        );
        assert!(matches!(
            request(r#"{"scope":"admin"}"#).scope(),
            Err(AgentError::BadRequest(_))
        ));
    }
}
