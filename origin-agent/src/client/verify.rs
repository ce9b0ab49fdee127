//! "Is this LAN server mine?" Two checks, in order:
//! 1. TLS with the pin ([`super::pin`]): the certificate hashes to the pinned fingerprint and the
//!    handshake is signed with its key;
//! 2. `GET /api/v1/health` over that connection names the same `fingerprint` and, once known,
//!    the same `instance_id` as pairing gave.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::pin::Pin;

/// Why a LAN candidate was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LanRejected {
    #[error("not reachable: {0}")]
    Unreachable(String),
    #[error("its certificate is not the pinned one")]
    WrongCertificate,
    #[error("TLS failed: {0}")]
    Tls(String),
    #[error("not an argus-relay health answer: {0}")]
    NotArgus(String),
    #[error("it claims another identity ({0})")]
    WrongIdentity(String),
}

/// What `/api/v1/health` says about the server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Health {
    pub status: String,
    pub service: String,
    pub version: String,
    pub instance_id: String,
    pub fingerprint: String,
}

/// Checks the server at `addr` with `http` (a client built on [`super::pin::pinned_tls_config`]
/// for `pin`). `instance_id`: what pairing recorded (`None` while pairing).
pub async fn verify_lan(
    http: &reqwest::Client,
    addr: SocketAddr,
    pin: &Pin,
    instance_id: Option<&str>,
    timeout: Duration,
) -> Result<Health, LanRejected> {
    let url = format!("https://{addr}/api/v1/health");
    let resp = http
        .get(&url)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| classify(&e))?;
    if !resp.status().is_success() {
        return Err(LanRejected::NotArgus(format!("status {}", resp.status())));
    }
    let health: Health = resp
        .json()
        .await
        .map_err(|e| LanRejected::NotArgus(e.to_string()))?;
    if health.service != "argus-relay" {
        return Err(LanRejected::NotArgus(format!(
            "service {:?}",
            health.service
        )));
    }
    if Pin::parse(&health.fingerprint).ok().as_ref() != Some(pin) {
        return Err(LanRejected::WrongIdentity(format!(
            "fingerprint {}",
            health.fingerprint
        )));
    }
    if let Some(expected) = instance_id {
        if health.instance_id != expected {
            return Err(LanRejected::WrongIdentity(format!(
                "instance {}",
                health.instance_id
            )));
        }
    }
    Ok(health)
}

/// Sorts a transport failure: a refused pin is not the same as an unreachable host.
pub fn classify(e: &reqwest::Error) -> LanRejected {
    match find_rustls_error(e) {
        Some(rustls::Error::InvalidCertificate(
            rustls::CertificateError::ApplicationVerificationFailure,
        )) => LanRejected::WrongCertificate,
        Some(other) => LanRejected::Tls(other.to_string()),
        None => LanRejected::Unreachable(chain(e)),
    }
}

fn find_rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(r) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return Some(r);
            }
        }
        cur = err.source();
    }
    None
}

/// The error and its causes on one line.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}
