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
        // An `io::Error`'s `source()` skips the error it wraps (tokio-rustls wraps the rustls
        // error in one, the connector wraps that in another): look inside instead.
        cur = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A TLS server on loopback with a fresh self-signed certificate; returns it and the address.
    async fn tls_server() -> (SocketAddr, Vec<u8>) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = cert.der().to_vec();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let _ = acceptor.accept(tcp).await;
            }
        });
        (addr, der)
    }

    #[tokio::test]
    async fn another_certificate_is_reported_as_such() {
        let (addr, _) = tls_server().await;
        let pin = Pin::parse(&format!("sha256:{}", "ab".repeat(32))).unwrap();
        let http = super::super::http::lan_client(pin, Duration::from_secs(2)).unwrap();
        let err = verify_lan(&http, addr, &pin, None, Duration::from_secs(2))
            .await
            .unwrap_err();
        assert_eq!(err, LanRejected::WrongCertificate);
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable() {
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let pin = Pin::parse(&format!("sha256:{}", "ab".repeat(32))).unwrap();
        let http = super::super::http::lan_client(pin, Duration::from_secs(2)).unwrap();
        let err = verify_lan(&http, addr, &pin, None, Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(matches!(err, LanRejected::Unreachable(_)), "{err:?}");
    }
}
