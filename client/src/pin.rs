//! Certificate pinning for the LAN: the phone accepts exactly the certificate whose SHA-256 (of
//! the DER) it was given at pairing, and nothing else — no CA, no name check, no validity
//! period (the pin is the trust; the certificate is self-signed for 20 years).
//!
//! Only the end-entity certificate's hash is compared; the handshake signature is still verified
//! with that certificate's public key, so a server that copies the (public) certificate without
//! its private key fails the handshake.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ClientError;

/// A certificate pin: the SHA-256 of a certificate's DER, written `sha256:<hex>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pin([u8; 32]);

impl Pin {
    pub fn parse(text: &str) -> Result<Pin, ClientError> {
        let bad = || ClientError::BadFingerprint(text.chars().take(80).collect());
        let hex_part = text
            .get(..7)
            .filter(|p| p.eq_ignore_ascii_case("sha256:"))
            .and_then(|_| text.get(7..))
            .ok_or_else(bad)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut out).map_err(|_| bad())?;
        Ok(Pin(out))
    }

    /// The pin of a DER certificate.
    pub fn of_certificate(der: &[u8]) -> Pin {
        Pin(Sha256::digest(der).into())
    }

    pub fn matches(&self, der: &[u8]) -> bool {
        let actual: [u8; 32] = Sha256::digest(der).into();
        bool::from(actual.ct_eq(&self.0))
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Accepts exactly the pinned end-entity certificate; checks handshake signatures with it.
#[derive(Debug)]
pub struct PinVerifier {
    pin: Pin,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinVerifier {
    pub fn new(pin: Pin) -> PinVerifier {
        PinVerifier {
            pin,
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.pin.matches(end_entity.as_ref()) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A TLS client configuration that trusts exactly `pin` (TLS 1.2/1.3, HTTP/1.1).
pub fn pinned_tls_config(pin: Pin) -> Result<rustls::ClientConfig, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinVerifier::new(pin)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use rustls::server::{ClientHello, ResolvesServerCert};
    use rustls::sign::CertifiedKey;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    struct Made {
        cert: CertificateDer<'static>,
        key: PrivateKeyDer<'static>,
    }

    fn make_cert() -> Made {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        Made {
            cert: cert.der().clone(),
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }

    /// Presents `cert` but signs with `key`, whatever they are (rustls' own builder refuses a
    /// mismatched pair, an impostor's server would not).
    #[derive(Debug)]
    struct Present(Arc<CertifiedKey>);

    impl ResolvesServerCert for Present {
        fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
            Some(self.0.clone())
        }
    }

    /// A one-connection TLS server on loopback; returns its address.
    async fn server(
        cert: CertificateDer<'static>,
        key: PrivateKeyDer<'static>,
    ) -> std::net::SocketAddr {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let signing = provider.key_provider.load_private_key(key).unwrap();
        let certified = Arc::new(CertifiedKey::new(vec![cert], signing));
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Present(certified)));
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            if let Ok((tcp, _)) = listener.accept().await {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let mut buf = [0u8; 4];
                    if tls.read_exact(&mut buf).await.is_ok() {
                        let _ = tls.write_all(b"pong").await;
                    }
                }
            }
        });
        addr
    }

    async fn talk(addr: std::net::SocketAddr, pin: Pin) -> Result<(), std::io::Error> {
        let connector = tokio_rustls::TlsConnector::from(Arc::new(pinned_tls_config(pin).unwrap()));
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let name = ServerName::IpAddress(addr.ip().into());
        let mut tls = connector.connect(name, tcp).await?;
        tls.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"pong");
        Ok(())
    }

    fn rustls_error(e: &std::io::Error) -> Option<&rustls::Error> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    }

    #[test]
    fn pins_parse_and_print() {
        let made = make_cert();
        let pin = Pin::of_certificate(&made.cert);
        assert_eq!(
            pin.to_string(),
            format!("sha256:{}", hex::encode(Sha256::digest(&made.cert)))
        );
        assert_eq!(Pin::parse(&pin.to_string()).unwrap(), pin);
        assert_eq!(
            Pin::parse(
                &pin.to_string()
                    .to_uppercase()
                    .replacen("SHA256", "sha256", 1)
            )
            .unwrap(),
            pin
        );
        for bad in [
            "",
            "sha256:",
            "sha1:00",
            "sha256:zz",
            &format!("{pin}00"),
            "sha256:é",
        ] {
            assert!(Pin::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn the_right_pin_is_accepted() {
        let made = make_cert();
        let pin = Pin::of_certificate(&made.cert);
        let addr = server(made.cert, made.key).await;
        talk(addr, pin).await.expect("pinned certificate accepted");
    }

    #[tokio::test]
    async fn a_wrong_pin_is_refused() {
        let made = make_cert();
        let other = make_cert();
        let addr = server(made.cert, made.key).await;
        let err = talk(addr, Pin::of_certificate(&other.cert))
            .await
            .expect_err("another certificate must be refused");
        assert!(
            matches!(
                rustls_error(&err),
                Some(rustls::Error::InvalidCertificate(
                    CertificateError::ApplicationVerificationFailure
                ))
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn the_pinned_certificate_without_its_key_is_refused() {
        // The impostor copies the real (public) certificate but has only its own key.
        let real = make_cert();
        let impostor = make_cert();
        let pin = Pin::of_certificate(&real.cert);
        let addr = server(real.cert, impostor.key).await;
        let err = talk(addr, pin)
            .await
            .expect_err("a handshake signed with another key must be refused");
        assert!(
            matches!(
                rustls_error(&err),
                Some(rustls::Error::InvalidCertificate(
                    CertificateError::BadSignature
                )) | Some(rustls::Error::PeerMisbehaved(_))
            ),
            "{err:?}"
        );
    }
}
