//! Everything the edge refuses, as one enum, and the one function that turns it into a response.

use argus_shared::api::{ErrorBody, ErrorCode};
use argus_shared::headers;
use worker::{Headers, Response};

/// `reason` of the 400 for [`EdgeError::RequestBodyIncomplete`].
const REASON_BODY_INCOMPLETE: &str = "body.incomplete";
/// `reason` of the 403 for [`EdgeError::SealedRequired`].
const REASON_SEALED_REQUIRED: &str = "sealed.required";

#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// The Worker's configuration is missing or invalid. `reason` names the setting.
    #[error("the relay is not configured correctly")]
    Config { reason: &'static str },
    #[error("the request path is not in canonical form")]
    NonCanonicalPath { reason: &'static str },
    #[error("this path is not reachable remotely")]
    Refused { reason: &'static str },
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A relay-owned parameter is malformed (e.g. `?quality=`). `reason` names it.
    #[error("the request has an invalid parameter")]
    BadRequest { reason: &'static str },
    #[error("a device token is required")]
    Unauthenticated,
    #[error("the device token is not valid")]
    InvalidToken { reason: &'static str },
    #[error("the request is not allowed by the relay policy")]
    Denied { reason: &'static str },
    /// The policy's `[sealed] required`: a plain device request.
    #[error("this relay accepts device requests in sealed mode only (Oblivious HTTP: POST /api/v1/relay/sealed)")]
    SealedRequired,
    #[error("too many requests")]
    RateLimited { retry_after_secs: u32 },
    #[error("the home server could not be reached")]
    OriginUnreachable,
    /// No fresh, verified edge state (token keys, revoked devices) from the agent: device
    /// requests fail closed. `reason` is `edge_state.unavailable` or an
    /// [`argus_shared::edge_state::EdgeStateError`] reason.
    #[error("the relay cannot check device tokens right now")]
    EdgeStateUnavailable { reason: &'static str },
    /// The client's request body did not arrive in full: it aborted the upload, or its
    /// connection broke. `cause` is the runtime's message. Logged, never the relay's fault.
    #[error("the request body did not arrive in full")]
    RequestBodyIncomplete { cause: String },
    /// A call into the Workers runtime failed. `at` names the step, `cause` is the runtime's
    /// message; both are logged with the request id (never sent to the client).
    #[error("internal error")]
    Runtime { at: &'static str, cause: String },
    /// An internal step failed without a cause to report (prefer [`EdgeError::Runtime`]).
    #[error("internal error")]
    Internal,
}

/// `map_err` for a failed runtime call at step `at`: keeps the runtime's message as the cause.
pub fn runtime<E: std::fmt::Display>(at: &'static str) -> impl FnOnce(E) -> EdgeError {
    move |e| EdgeError::Runtime {
        at,
        cause: e.to_string(),
    }
}

impl EdgeError {
    fn code(&self) -> ErrorCode {
        match self {
            EdgeError::Config { .. }
            | EdgeError::OriginUnreachable
            | EdgeError::EdgeStateUnavailable { .. } => ErrorCode::Unavailable,
            EdgeError::NonCanonicalPath { .. } => ErrorCode::NonCanonicalPath,
            EdgeError::Refused { .. } => ErrorCode::NotFound,
            EdgeError::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            EdgeError::BadRequest { .. } | EdgeError::RequestBodyIncomplete { .. } => {
                ErrorCode::BadRequest
            }
            EdgeError::Unauthenticated => ErrorCode::Unauthenticated,
            EdgeError::InvalidToken { .. } => ErrorCode::InvalidToken,
            EdgeError::Denied { reason } if reason.starts_with("scope.") => {
                ErrorCode::InsufficientScope
            }
            EdgeError::Denied { .. } | EdgeError::SealedRequired => ErrorCode::Forbidden,
            EdgeError::RateLimited { .. } => ErrorCode::RateLimited,
            EdgeError::Internal | EdgeError::Runtime { .. } => ErrorCode::Internal,
        }
    }

    fn reason(&self) -> Option<&'static str> {
        match self {
            EdgeError::Config { reason }
            | EdgeError::NonCanonicalPath { reason }
            | EdgeError::Refused { reason }
            | EdgeError::InvalidToken { reason }
            | EdgeError::Denied { reason }
            | EdgeError::BadRequest { reason }
            | EdgeError::EdgeStateUnavailable { reason } => Some(reason),
            EdgeError::RequestBodyIncomplete { .. } => Some(REASON_BODY_INCOMPLETE),
            EdgeError::SealedRequired => Some(REASON_SEALED_REQUIRED),
            _ => None,
        }
    }

    pub fn into_response(self, request_id: &str) -> Response {
        let code = self.code();
        let mut body = ErrorBody::new(code, self.to_string(), request_id);
        if let Some(reason) = self.reason() {
            body = body.with_reason(reason);
        }
        let headers = Headers::new();
        let _ = headers.set("content-type", "application/json");
        let _ = headers.set("cache-control", "no-store");
        let _ = headers.set(headers::REQUEST_ID, request_id);
        match &self {
            EdgeError::Unauthenticated => {
                let _ = headers.set("www-authenticate", r#"Bearer realm="argus-relay""#);
            }
            EdgeError::InvalidToken { .. } => {
                let _ = headers.set(
                    "www-authenticate",
                    r#"Bearer realm="argus-relay", error="invalid_token""#,
                );
            }
            EdgeError::Denied { reason } if reason.starts_with("scope.") => {
                let _ = headers.set(
                    "www-authenticate",
                    r#"Bearer realm="argus-relay", error="insufficient_scope""#,
                );
            }
            EdgeError::RateLimited { retry_after_secs } => {
                let _ = headers.set("retry-after", &retry_after_secs.to_string());
            }
            _ => {}
        }
        match &self {
            EdgeError::Runtime { at, cause } => {
                worker::console_error!("request {request_id}: {self} at {at}: {cause}");
            }
            EdgeError::RequestBodyIncomplete { cause } => {
                worker::console_warn!("request {request_id}: {self}: {cause}");
            }
            EdgeError::Internal | EdgeError::Config { .. } => {
                worker::console_error!("request {request_id}: {self} ({:?})", self.reason());
            }
            _ => {}
        }
        Response::builder()
            .with_status(code.status())
            .with_headers(headers)
            .fixed(body.to_json().into_bytes())
    }
}
