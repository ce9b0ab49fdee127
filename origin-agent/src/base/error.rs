//! Everything the agent refuses or fails at, and the one mapping to status + JSON body.

use argus_shared::api::ErrorCode;
use hyper::header::HeaderValue;
use hyper::Response;

use crate::base::http::body::{self, Body};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("the request path is not in canonical form")]
    NonCanonicalPath { reason: &'static str },
    #[error("not found")]
    NotFound,
    #[error("this path is not reachable from here")]
    Refused { reason: &'static str },
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("a device token is required")]
    Unauthenticated,
    #[error("the admin token is required (it is in the data directory, file admin.token)")]
    AdminTokenRequired,
    /// A browser request to the admin API that did not come from the admin page itself
    /// (another origin, or without the page's CSRF token): 403.
    #[error("refused: this request did not come from the admin page")]
    CsrfRefused { reason: &'static str },
    #[error("the device token is not valid")]
    InvalidToken { reason: &'static str },
    #[error("the edge signature is not valid")]
    InvalidSignature { reason: &'static str },
    /// A correctly signed request that already arrived once. Refused, but answered as a
    /// transport failure (503, `Retry-After`) rather than an authentication one: the usual
    /// sender is workerd itself, which sends a GET again, with the same headers, on a new
    /// connection when a reused one is reset before the answer (the first copy may have been
    /// served) — and the phone should simply ask again, which the Worker signs afresh.
    #[error("this request already reached the home server once; send it again")]
    SignatureReplayed,
    #[error("this device may not do that")]
    InsufficientScope,
    /// A policy rule refused the request (`reason`: the rule's stable code, e.g. `path.denied`).
    #[error("the relay's policy does not allow this request")]
    Forbidden { reason: &'static str },
    #[error("{0}")]
    BadRequest(String),
    /// A relay-owned parameter is malformed (e.g. `?quality=`). `reason` names it, as the
    /// Worker's `bad_request` does.
    #[error("the request has an invalid parameter")]
    InvalidParameter { reason: &'static str },
    #[error("invalid, expired or already used code")]
    InvalidCode,
    /// A sealed request (Oblivious HTTP) that cannot be opened or used: tampered, for an unknown
    /// key, stale, replayed, malformed. `reason` names which (`sealed.*`).
    #[error("the sealed request was refused")]
    SealedRefused { reason: &'static str },
    #[error("{0}")]
    Conflict(&'static str),
    #[error("too many attempts; try again later")]
    RateLimited { retry_after_secs: u64 },
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("the ArgusAI backend could not be reached")]
    BackendUnreachable,
    /// An answer the agent reads whole (an event list it shapes) was larger than it reads.
    #[error("the ArgusAI backend's answer is larger than the relay reads ({max} bytes)")]
    BackendAnswerTooLarge { max: usize },
    #[error("the ArgusAI backend did not answer in time")]
    BackendTimeout,
    /// ArgusAI refused the agent's own session (after at most one renewal).
    #[error("{cause}: run `argus-relay backend login` on the agent")]
    BackendSessionRefused { cause: String },
    /// ArgusAI needs a user session for this and the agent has none (at most an API key).
    #[error("ArgusAI needs the agent's user session for this and the agent is not signed in: run `argus-relay backend login` on the agent")]
    BackendSessionMissing,
    /// The agent's session was renewed after a refusal, and this request could not be sent again
    /// (its body streamed): the client may repeat it.
    #[error("the agent's ArgusAI session was renewed: send the request again")]
    BackendSessionRenewed,
    #[error("the relay's disk is full: pairing and token renewal are refused until its owner frees space (reading keeps working)")]
    StorageFull,
    #[error("internal error")]
    Internal,
}

impl AgentError {
    pub fn code(&self) -> ErrorCode {
        match self {
            AgentError::NonCanonicalPath { .. } => ErrorCode::NonCanonicalPath,
            AgentError::NotFound | AgentError::Refused { .. } => ErrorCode::NotFound,
            AgentError::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            AgentError::Unauthenticated | AgentError::AdminTokenRequired => {
                ErrorCode::Unauthenticated
            }
            AgentError::CsrfRefused { .. } => ErrorCode::Forbidden,
            AgentError::InvalidToken { .. } => ErrorCode::InvalidToken,
            AgentError::InvalidSignature { .. } => ErrorCode::InvalidSignature,
            AgentError::InsufficientScope => ErrorCode::InsufficientScope,
            AgentError::Forbidden { .. } => ErrorCode::Forbidden,
            AgentError::BadRequest(_)
            | AgentError::InvalidParameter { .. }
            | AgentError::SealedRefused { .. } => ErrorCode::BadRequest,
            AgentError::InvalidCode => ErrorCode::InvalidCode,
            AgentError::Conflict(_) => ErrorCode::Conflict,
            AgentError::RateLimited { .. } => ErrorCode::RateLimited,
            AgentError::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            AgentError::BackendUnreachable | AgentError::BackendAnswerTooLarge { .. } => {
                ErrorCode::BadGateway
            }
            AgentError::BackendTimeout => ErrorCode::GatewayTimeout,
            AgentError::BackendSessionRefused { .. } => ErrorCode::BackendSessionRefused,
            AgentError::BackendSessionMissing => ErrorCode::BackendSessionMissing,
            AgentError::BackendSessionRenewed
            | AgentError::StorageFull
            | AgentError::SignatureReplayed => ErrorCode::Unavailable,
            AgentError::Internal => ErrorCode::Internal,
        }
    }

    fn reason(&self) -> Option<&'static str> {
        match self {
            AgentError::CsrfRefused { reason } => Some(reason),
            AgentError::NonCanonicalPath { reason }
            | AgentError::Refused { reason }
            | AgentError::InvalidToken { reason }
            | AgentError::InvalidSignature { reason }
            | AgentError::Forbidden { reason }
            | AgentError::InvalidParameter { reason }
            | AgentError::SealedRefused { reason } => Some(reason),
            AgentError::StorageFull => Some("storage_full"),
            AgentError::SignatureReplayed => {
                Some(argus_shared::signature::SignatureError::Replayed.reason())
            }
            _ => None,
        }
    }

    /// Why the edge signature was refused (`signature.*`), when that is what this error is.
    pub fn signature_rejection(&self) -> Option<&'static str> {
        match self {
            AgentError::InvalidSignature { reason } => Some(reason),
            AgentError::SignatureReplayed => {
                Some(argus_shared::signature::SignatureError::Replayed.reason())
            }
            _ => None,
        }
    }

    pub fn into_response(self, request_id: &str) -> Response<Body> {
        let mut resp = body::error(self.code(), &self.to_string(), request_id, self.reason());
        let h = resp.headers_mut();
        if let Some(challenge) = argus_shared::bearer::www_authenticate(self.code()) {
            h.insert("www-authenticate", HeaderValue::from_static(challenge));
        }
        match &self {
            AgentError::BackendSessionRenewed | AgentError::SignatureReplayed => {
                h.insert("retry-after", HeaderValue::from_static("1"));
            }
            AgentError::RateLimited { retry_after_secs } => {
                if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                    h.insert("retry-after", v);
                }
            }
            _ => {}
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replayed_signature_is_refused_as_a_request_to_ask_again() {
        let e = AgentError::SignatureReplayed;
        assert_eq!(e.signature_rejection(), Some("signature.replayed"));
        let resp = e.into_response("req-1");
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.headers()["retry-after"], "1");
        assert!(resp.headers().get("www-authenticate").is_none());
    }

    #[test]
    fn other_signature_failures_stay_authentication_failures() {
        let e = AgentError::InvalidSignature {
            reason: "signature.stale",
        };
        assert_eq!(e.signature_rejection(), Some("signature.stale"));
        assert_eq!(e.into_response("req-1").status(), 401);
    }
}
