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
            AgentError::BackendSessionRenewed | AgentError::StorageFull => ErrorCode::Unavailable,
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
            AgentError::BackendSessionRenewed => {
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
