//! What the reference client reports.

use std::path::PathBuf;

use argus_shared::cert_fingerprint::FingerprintError;
use argus_shared::pair_uri::{PairUriError, RelayUrlError};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("not a pairing link: {0}")]
    BadPairUri(#[from] PairUriError),
    #[error(transparent)]
    BadFingerprint(#[from] FingerprintError),
    #[error("{0:?}: a request path starts with /")]
    BadPath(String),
    #[error(transparent)]
    BadRelayUrl(#[from] RelayUrlError),
    #[error("state file {path}: {message}")]
    State { path: PathBuf, message: String },
    #[error("cannot reach {what}: {message}")]
    Transport { what: String, message: String },
    #[error("the server answered {status} {code}: {message}")]
    Server {
        status: u16,
        code: String,
        message: String,
        reason: Option<String>,
    },
    #[error("unexpected answer from the server: {0}")]
    BadAnswer(String),
    #[error("the server's identity does not match the pairing link: {0}")]
    IdentityMismatch(String),
    #[error("no LAN server with the pinned certificate answered")]
    NoLanServer,
    #[error("mDNS: {0}")]
    Discovery(#[from] crate::browse::DiscoveryError),
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("HTTP client: {0}")]
    HttpClient(String),
    #[error("sealed mode needs the Oblivious HTTP key pin from pairing; this device was paired without one (pair again)")]
    SealedNotPaired,
    #[error("the relay serves an Oblivious HTTP key configuration (sha256 {served}) that is not the one from pairing (sha256 {pinned}): refusing to send sealed requests; the relay may be substituting its own key")]
    SealedKeyMismatch { pinned: String, served: String },
    #[error("sealed request: {0}")]
    Sealed(String),
}

impl ClientError {
    /// From a JSON error body `{"error":{"code","message","reason"?}}` (or anything else).
    pub fn from_answer(status: u16, body: &serde_json::Value) -> ClientError {
        let e = &body["error"];
        ClientError::Server {
            status,
            code: e["code"].as_str().unwrap_or("unknown").to_owned(),
            message: e["message"].as_str().unwrap_or("").to_owned(),
            reason: e["reason"].as_str().map(str::to_owned),
        }
    }

    /// The machine-readable `reason` of a server refusal, if any.
    pub fn reason(&self) -> Option<&str> {
        match self {
            ClientError::Server { reason, .. } => reason.as_deref(),
            _ => None,
        }
    }
}
