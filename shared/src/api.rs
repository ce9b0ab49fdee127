//! Wire types both sides put on the network: the JSON error body and its codes.
//!
//! Every error argus-relay answers (edge or agent) is `{"error":{"code","message","request_id"}}`
//! with the HTTP status that [`ErrorCode::status`] gives. Clients branch on `code`; `message` is for
//! people and never carries secrets, stack traces or policy contents.

use serde::{Deserialize, Serialize};

/// A machine-readable error code and the HTTP status it is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed (bad JSON, missing field, bad parameter).
    BadRequest,
    /// The path is not in canonical form (encoded dot segments, `%2f`, backslashes, `//`, NUL…).
    NonCanonicalPath,
    /// No credential was presented where one is required.
    Unauthenticated,
    /// A credential was presented but is not valid (signature, expiry, audience, revoked…).
    InvalidToken,
    /// The edge signature on a forwarded request is missing, wrong, stale or replayed.
    InvalidSignature,
    /// Authenticated, but a rule forbids this request. The message names the rule.
    Forbidden,
    /// The caller's scope does not allow this operation.
    InsufficientScope,
    /// Nothing here.
    NotFound,
    /// The path exists, the method does not.
    MethodNotAllowed,
    /// A pairing code that is unknown, expired, already used or locked. Deliberately one code.
    InvalidCode,
    /// Request state conflicts (e.g. pairing not yet confirmed).
    Conflict,
    /// Body larger than allowed.
    PayloadTooLarge,
    /// Too many requests; `Retry-After` says when to come back.
    RateLimited,
    /// The next hop answered with something unusable or could not be reached.
    BadGateway,
    /// The next hop is not available (tunnel down, agent down).
    Unavailable,
    /// The next hop did not answer in time.
    GatewayTimeout,
    /// ArgusAI refused the relay's own session with it (the owner must sign the agent in again:
    /// `argus-relay backend login`).
    BackendSessionRefused,
    /// ArgusAI needs a user session for this and the relay's agent is not signed in.
    BackendSessionMissing,
    /// A bug on our side. Logged with the request id; details are never sent.
    Internal,
}

impl ErrorCode {
    /// The HTTP status this code is answered with.
    pub const fn status(self) -> u16 {
        match self {
            ErrorCode::BadRequest | ErrorCode::NonCanonicalPath => 400,
            ErrorCode::Unauthenticated | ErrorCode::InvalidToken | ErrorCode::InvalidSignature => {
                401
            }
            ErrorCode::Forbidden | ErrorCode::InsufficientScope => 403,
            ErrorCode::NotFound | ErrorCode::InvalidCode => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Conflict => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::RateLimited => 429,
            ErrorCode::Internal => 500,
            ErrorCode::BadGateway
            | ErrorCode::BackendSessionRefused
            | ErrorCode::BackendSessionMissing => 502,
            ErrorCode::Unavailable => 503,
            ErrorCode::GatewayTimeout => 504,
        }
    }

    /// The snake_case string sent on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::NonCanonicalPath => "non_canonical_path",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InvalidSignature => "invalid_signature",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::InvalidCode => "invalid_code",
            ErrorCode::Conflict => "conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::BadGateway => "bad_gateway",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::GatewayTimeout => "gateway_timeout",
            ErrorCode::BackendSessionRefused => "backend_session_refused",
            ErrorCode::BackendSessionMissing => "backend_session_missing",
            ErrorCode::Internal => "internal",
        }
    }
}

/// `{"error":{"code","message","request_id"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    pub request_id: String,
    /// For denials: which rule denied (e.g. `geo.country_denied`). Never the rule's contents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>, request_id: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code,
                message: message.into(),
                request_id: request_id.into(),
                reason: None,
            },
        }
    }

    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.error.reason = Some(reason.into());
        self
    }

    pub fn status(&self) -> u16 {
        self.error.code.status()
    }

    /// Serialised body. Serialising these plain types cannot fail.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            String::from(r#"{"error":{"code":"internal","message":"error","request_id":""}}"#)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_the_documented_shape() {
        let body = ErrorBody::new(ErrorCode::RateLimited, "slow down", "req-1");
        let v: serde_json::Value = serde_json::from_str(&body.to_json()).unwrap();
        assert_eq!(v["error"]["code"], "rate_limited");
        assert_eq!(v["error"]["message"], "slow down");
        assert_eq!(v["error"]["request_id"], "req-1");
        assert!(v["error"].get("reason").is_none());
        assert_eq!(body.status(), 429);
    }

    #[test]
    fn wire_strings_match_serde() {
        for code in [
            ErrorCode::BadRequest,
            ErrorCode::NonCanonicalPath,
            ErrorCode::InvalidCode,
            ErrorCode::GatewayTimeout,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }
}
