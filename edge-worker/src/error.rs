//! Everything the edge refuses, as one enum, and the one function that turns it into a response.

use argus_shared::api::{ErrorBody, ErrorCode};
use argus_shared::policy::DenyReason;
use argus_shared::{bearer, headers};
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
    /// The owner's policy refused the request; the message is the reason's own sentence.
    #[error("{}", reason.message())]
    Denied { reason: DenyReason },
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
    /// A step of the Worker failed (most often a call into the Workers runtime). `at` names the
    /// step, `cause` is what failed; both are logged with the request id, never sent to the
    /// client (it gets the plain 500).
    #[error("internal error")]
    Internal { at: &'static str, cause: String },
}

/// `map_err` for a failed step `at`: keeps the error's message as the cause.
pub fn internal<E: std::fmt::Display>(at: &'static str) -> impl FnOnce(E) -> EdgeError {
    move |e| EdgeError::Internal {
        at,
        cause: e.to_string(),
    }
}

/// How loudly a refusal is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogLevel {
    Error,
    Warn,
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
            EdgeError::Denied { reason } => reason.error_code(),
            EdgeError::SealedRequired => ErrorCode::Forbidden,
            EdgeError::RateLimited { .. } => ErrorCode::RateLimited,
            EdgeError::Internal { .. } => ErrorCode::Internal,
        }
    }

    fn reason(&self) -> Option<&'static str> {
        match self {
            EdgeError::Config { reason }
            | EdgeError::NonCanonicalPath { reason }
            | EdgeError::Refused { reason }
            | EdgeError::InvalidToken { reason }
            | EdgeError::BadRequest { reason }
            | EdgeError::EdgeStateUnavailable { reason } => Some(reason),
            EdgeError::Denied { reason } => Some(reason.as_str()),
            EdgeError::RequestBodyIncomplete { .. } => Some(REASON_BODY_INCOMPLETE),
            EdgeError::SealedRequired => Some(REASON_SEALED_REQUIRED),
            _ => None,
        }
    }

    /// What the Worker's log says about this refusal, if anything: the request id, the message
    /// and what the client never sees (the failed step and its cause, the setting at fault).
    fn log_line(&self, request_id: &str) -> Option<(LogLevel, String)> {
        match self {
            EdgeError::Internal { at, cause } => Some((
                LogLevel::Error,
                format!("request {request_id}: {self} at {at}: {cause}"),
            )),
            EdgeError::Config { reason } => Some((
                LogLevel::Error,
                format!("request {request_id}: {self} ({reason})"),
            )),
            EdgeError::RequestBodyIncomplete { cause } => Some((
                LogLevel::Warn,
                format!("request {request_id}: {self}: {cause}"),
            )),
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
        if let Some(challenge) = bearer::www_authenticate(code) {
            let _ = headers.set("www-authenticate", challenge);
        }
        if let EdgeError::RateLimited { retry_after_secs } = &self {
            let _ = headers.set("retry-after", &retry_after_secs.to_string());
        }
        match self.log_line(request_id) {
            Some((LogLevel::Error, line)) => worker::console_error!("{line}"),
            Some((LogLevel::Warn, line)) => worker::console_warn!("{line}"),
            None => {}
        }
        Response::builder()
            .with_status(code.status())
            .with_headers(headers)
            .fixed(body.to_json().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_error_keeps_its_cause_for_the_log_and_only_there() {
        let err = internal("images.cache_put")("KV PUT failed: 429 Too Many Requests");
        // The client's body: the plain 500, no step, no cause.
        assert_eq!(err.code(), ErrorCode::Internal);
        assert_eq!(err.code().status(), 500);
        assert_eq!(err.to_string(), "internal error");
        assert_eq!(err.reason(), None);
        // The log: request id, step and cause.
        assert_eq!(
            err.log_line("req-1"),
            Some((
                LogLevel::Error,
                "request req-1: internal error at images.cache_put: \
                 KV PUT failed: 429 Too Many Requests"
                    .to_string()
            ))
        );
    }

    #[test]
    fn a_runtime_error_becomes_the_cause() {
        let err = internal("forward.headers")(worker::Error::RustError("bad header".into()));
        assert!(
            matches!(&err, EdgeError::Internal { at: "forward.headers", cause } if cause.contains("bad header")),
            "{err:?}"
        );
    }

    #[test]
    fn refusals_the_client_caused_are_not_logged_as_errors() {
        for err in [
            EdgeError::Unauthenticated,
            EdgeError::Denied {
                reason: DenyReason::PathDenied,
            },
            EdgeError::RateLimited {
                retry_after_secs: 60,
            },
        ] {
            assert_eq!(err.log_line("req-1"), None, "{err:?}");
        }
        let (level, line) = EdgeError::RequestBodyIncomplete {
            cause: "connection reset".into(),
        }
        .log_line("req-2")
        .expect("logged");
        assert_eq!(level, LogLevel::Warn);
        assert!(
            line.contains("req-2") && line.contains("connection reset"),
            "{line}"
        );
        let (level, line) = EdgeError::Config {
            reason: "config.policy_invalid",
        }
        .log_line("req-3")
        .expect("logged");
        assert_eq!(level, LogLevel::Error);
        assert!(
            line.contains("req-3") && line.contains("config.policy_invalid"),
            "{line}"
        );
    }

    #[test]
    fn a_scope_denial_is_insufficient_scope_every_other_denial_forbidden() {
        for reason in DenyReason::ALL {
            let err = EdgeError::Denied { reason };
            assert_eq!(err.code(), reason.error_code(), "{reason}");
            assert_eq!(err.reason(), Some(reason.as_str()));
            assert_eq!(err.to_string(), reason.message());
        }
        for (reason, code) in [
            (DenyReason::ScopeReadOnly, ErrorCode::InsufficientScope),
            (DenyReason::CountryDenied, ErrorCode::Forbidden),
        ] {
            assert_eq!(EdgeError::Denied { reason }.code(), code, "{reason}");
        }
    }
}
