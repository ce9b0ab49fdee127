//! LAN helpers: the agent's `[lan]` section on loopback, loopback-only mDNS for the reference
//! client, pairing "the phone" through the Worker, and an impostor LAN server.
//!
//! Confinement: every listener binds 127.0.0.1, and every mDNS daemon (agent, client, impostor,
//! raw browser) is restricted to the `lo` interface and to a private UDP port per test (not
//! 5353), so no test packet is addressed to anything but loopback and parallel tests do not see
//! each other's advertisements. When the tests can (root), each also runs in a network
//! namespace of its own ([`crate::netns`]), where not even the kernel's multicast membership
//! reports can leave the machine.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use argus_client::browse::BrowseConfig;
use argus_client::pairing::{self, DeviceInfo};
use argus_client::{ClientState, SessionOptions};
use argus_shared::pair_uri::PairUri;
use origin_agent::mdns::{Advertisement, Advertiser};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

use crate::stack::Stack;

/// The only interface test mDNS traffic uses.
pub const LOOPBACK_IF: &str = "lo";

/// Runs the LAN test `name` (its function's name): in a network namespace of its own when
/// possible ([`crate::netns`]), on a multi-threaded runtime, failing after `limit`.
pub fn run_isolated_test(name: &str, limit: Duration, body: impl std::future::Future<Output = ()>) {
    if crate::netns::run_isolated(name) {
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            tokio::time::timeout(limit, body)
                .await
                .expect("the test took too long")
        });
}

/// A TLS connection to the agent's LAN listener at `addr`, its certificate checked against `pin`.
pub async fn pinned_tls(
    addr: SocketAddr,
    pin: argus_client::pin::Pin,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let config = argus_client::pin::pinned_tls_config(pin).expect("pinned TLS config");
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the LAN listener");
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    connector
        .connect(name, tcp)
        .await
        .expect("TLS with the pinned certificate")
}

/// A UDP port for one test's mDNS traffic (free when asked).
pub fn mdns_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free UDP port")
}

/// The agent's `[lan]` section: HTTPS on an ephemeral loopback port, advertised on `lo` only.
pub fn lan_section(mdns_port: u16, instance_name: &str) -> String {
    format!(
        "[lan]\nenabled = true\nlisten = \"127.0.0.1:0\"\nmdns = true\nmdns_interfaces = [\"{LOOPBACK_IF}\"]\nmdns_port = {mdns_port}\ninstance_name = \"{instance_name}\"\n"
    )
}

/// Loopback-only browsing on the test's mDNS port.
pub fn browse(mdns_port: u16) -> BrowseConfig {
    BrowseConfig {
        interfaces: vec![LOOPBACK_IF.to_owned()],
        mdns_port,
    }
}

/// Session options for tests: loopback mDNS, quick re-checks.
pub fn session_options(mdns_port: u16) -> SessionOptions {
    SessionOptions {
        browse: Some(browse(mdns_port)),
        discovery_timeout: Duration::from_secs(3),
        probe_timeout: Duration::from_millis(1500),
        recheck_every: Duration::from_secs(2),
        state_path: None,
        sealed: false,
    }
}

/// A new owner code's pairing link (`argusai://pair?…`).
pub fn pair_link(stack: &Stack, scope: &str) -> String {
    stack.owner_code(scope)["pair_uri"]
        .as_str()
        .expect("pair_uri")
        .to_owned()
}

/// Pairs the reference client through the Worker (the link's relay URL is the production one;
/// the test's Worker stands in for it).
pub async fn pair_through_relay(stack: &Stack, scope: &str) -> ClientState {
    let uri = PairUri::parse(&pair_link(stack, scope)).expect("pairing link parses");
    let paired = pairing::pair(&uri, Some(&stack.edge_url()), &device_info(), None)
        .await
        .unwrap_or_else(|e| panic!("pairing through the relay: {e}\n{}", stack.logs()));
    assert_eq!(paired.via_lan, None);
    paired.state
}

pub fn device_info() -> DeviceInfo {
    DeviceInfo {
        name: "Reference phone".into(),
        model: Some("test".into()),
        platform: Some("ios".into()),
        os_version: Some("18.1".into()),
        app_version: Some("1.4.0".into()),
    }
}

/// The agent's LAN certificate (DER), as the impostor may copy it (it is public).
pub fn agent_certificate(stack: &Stack) -> CertificateDer<'static> {
    let pem = std::fs::read(stack.agent.data_dir().join("lan-cert.pem")).expect("lan-cert.pem");
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(&pem).expect("a PEM certificate")
}

/// Which certificate the impostor shows.
pub enum ImpostorCert {
    /// Its own self-signed certificate.
    Own,
    /// The real server's certificate, without its key (it signs with its own).
    Copied(CertificateDer<'static>),
}

/// A LAN server that claims to be the agent: advertised as `_argusai._tcp` with the agent's
/// fingerprint in TXT, answering every request with the agent's health identity.
pub struct Impostor {
    pub addr: SocketAddr,
    advertiser: Option<Advertiser>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
struct Present(Arc<CertifiedKey>);

impl ResolvesServerCert for Present {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

impl Impostor {
    /// `health`: the JSON it answers (the real server's, copied). `mdns_port`: advertise there.
    pub async fn start(cert: ImpostorCert, health: serde_json::Value, mdns_port: u16) -> Impostor {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let own = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("certificate");
        let cert = match cert {
            ImpostorCert::Own => own.der().clone(),
            ImpostorCert::Copied(c) => c,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let signing = provider
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                key.serialize_der(),
            )))
            .expect("signing key");
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocols")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Present(Arc::new(CertifiedKey::new(
                vec![cert],
                signing,
            )))));
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let body = health.to_string();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let body = body.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16384 {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(resp.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        let fingerprint = health["fingerprint"].as_str().unwrap_or("").to_owned();
        let advertiser = Advertiser::start(
            Advertisement {
                instance_name: "ArgusAI impostor".into(),
                host_name: "impostor.local.".into(),
                address: Some(addr.ip()),
                https_port: addr.port(),
                http_port: None,
                fingerprint,
            },
            &[LOOPBACK_IF.to_owned()],
            mdns_port,
        )
        .expect("impostor advertises");
        Impostor {
            addr,
            advertiser: Some(advertiser),
            task,
        }
    }

    pub async fn stop(mut self) {
        if let Some(a) = self.advertiser.take() {
            a.stop().await;
        }
        self.task.abort();
    }
}

impl Drop for Impostor {
    fn drop(&mut self) {
        self.task.abort();
    }
}
