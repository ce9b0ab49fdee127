//! The LAN listener: phones at home talk to the agent directly, over HTTPS with the self-signed
//! certificate `argus-relay init` made ([`crate::domain::lan::cert`]). Phones pin that certificate by its
//! SHA-256 fingerprint (given at pairing), so no CA and no stable address are needed.
//!
//! Order: TLS → the request target as the Worker's runtime would see it
//! ([`path::as_parsed_by_the_url_standard`]: `%2e%2e` and `..` resolved, so a phone gets the same
//! answer at home and away) → shared router ([`router::dispatch`], [`Via::Lan`]) with the peer's
//! IP as the client IP: canonical path, route table, device token, then the built-in policy's
//! path rules — the Worker's order (docs/security.md, "Order of the checks"). There is no edge
//! signature here; the router requires a device token on every non-public route, exactly as
//! behind the tunnel, and the proxy applies the same header hygiene. Image routes are
//! transcoded per `?quality=` as at the edge ([`crate::domain::proxy::images`]). The public routes (pairing,
//! refresh, health, JWKS) are served too — a phone may pair at home — with the same per-client
//! failure windows, keyed by the peer IP.
//!
//! The policy: the Worker evaluates the owner's `POLICY`, which the agent does not have. Here the
//! built-in default path rules and image settings apply ([`argus_shared::policy::DEFAULT_ALLOW`] and
//! [`DEFAULT_DENY`](argus_shared::policy::DEFAULT_DENY)), so a device reaches no more at home than
//! a default relay lets through (no `/api/v1/logs`, integrations, system settings…). Geo, TLS and
//! device-version rules are about the internet path and do not apply here.
//!
//! Optionally ([`crate::base::config::LanConfig::plain_http_listen`]) the same handler is served over
//! plain HTTP for apps that cannot pin; tokens then cross the LAN in clear text.
//!
//! While the listener runs it is advertised over mDNS ([`crate::domain::lan::mdns`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use argus_shared::path;
use hyper::body::Incoming;
use hyper::{Request, Response};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::application::router;
use crate::application::state::AppState;
use crate::base::http::body::{self, Body};
use crate::base::http::server::{self, Handshake};
use crate::base::http::{RequestContext, Via};
use crate::domain::lan::cert;
use crate::domain::lan::mdns::{Advertisement, Advertiser};
use crate::domain::proxy::backend::is_websocket_upgrade;

#[derive(Debug, thiserror::Error)]
pub enum LanError {
    #[error("LAN certificate {path}: {message}")]
    Certificate { path: String, message: String },
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("mDNS: {0}")]
    Mdns(#[from] crate::domain::lan::mdns::DiscoveryError),
}

/// The TLS server configuration for the LAN certificate in `data_dir` (TLS 1.2 and 1.3, ring,
/// HTTP/1.1 only).
pub fn tls_config(data_dir: &std::path::Path) -> Result<rustls::ServerConfig, LanError> {
    let cert_path = data_dir.join(cert::CERT_FILE);
    let key_path = data_dir.join(cert::KEY_FILE);
    let bad = |path: &std::path::Path, e: &dyn std::fmt::Display| LanError::Certificate {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let certs = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| bad(&cert_path, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&cert_path, &e))?;
    if certs.is_empty() {
        return Err(bad(&cert_path, &"no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| bad(&key_path, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// TLS in front of the HTTP loop.
pub struct Tls(pub TlsAcceptor);

impl Handshake for Tls {
    type Stream = TlsStream<TcpStream>;
    async fn handshake(&self, tcp: TcpStream) -> std::io::Result<Self::Stream> {
        self.0.accept(tcp).await
    }
}

/// One request on the LAN listener (`listener` is `lan` or `lan_http`, for the log).
pub async fn handle(
    state: Arc<AppState>,
    mut req: Request<Incoming>,
    peer: SocketAddr,
    listener: &'static str,
) -> Response<Body> {
    let request_id = crate::base::http::request_id::new();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = std::time::Instant::now();
    // The owner's page, over HTTPS only, when configured (the phones' routes never start so).
    if listener == "lan"
        && state.config.lan.admin_page
        && (path == "/admin" || path.starts_with("/admin/"))
    {
        let resp = crate::listener::admin::serve_on_lan(
            &state,
            req.map(body::incoming),
            peer,
            &request_id,
        )
        .await;
        crate::base::metrics::METRICS.request(
            listener,
            crate::base::metrics::RouteLabel::Admin,
            resp.status().as_u16(),
        );
        tracing::info!(
            listener,
            request_id,
            %method,
            path = %path.chars().take(200).collect::<String>(),
            status = resp.status().as_u16(),
            "request"
        );
        return resp;
    }
    let client_ip = peer_ip(peer);
    let client_upgrade = is_websocket_upgrade(req.headers()).then(|| hyper::upgrade::on(&mut req));
    let (mut parts, incoming) = req.into_parts();
    as_the_worker_sees_it(&mut parts.uri);
    let body =
        crate::domain::proxy::body::request_body(incoming, &parts.headers, &state.config.limits);
    let req = Request::from_parts(parts, ());
    let label = router::classify(
        req.method(),
        req.uri().path_and_query().map_or("/", |p| p.as_str()),
    )
    .map_or(crate::base::metrics::RouteLabel::Rejected, |c| c.label());
    let ctx = RequestContext {
        via: Via::Lan,
        request_id: request_id.clone(),
        client_ip: Some(client_ip),
        client_upgrade,
        // No edge on the LAN: the phone's token is the only identity.
        edge_device: None,
    };
    let result = match body {
        Ok(body) => router::dispatch(&state, req.map(|()| body), ctx).await,
        Err(e) => Err(e),
    };
    let resp = match result {
        Ok(resp) => resp,
        Err(e) => e.into_response(&request_id),
    };
    crate::base::metrics::METRICS.request(listener, label, resp.status().as_u16());
    tracing::info!(
        listener,
        request_id,
        %method,
        path = %path.char_indices().nth(200).map_or(&*path, |(i, _)| &path[..i]),
        status = resp.status().as_u16(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    resp
}

/// Replaces the request target with what the WHATWG URL parser makes of it, as workerd does for
/// the Worker. A target it cannot take (`*`) is left for the router to refuse.
fn as_the_worker_sees_it(uri: &mut hyper::Uri) {
    let Some(raw) = uri.path_and_query().map(|p| p.as_str()) else {
        return;
    };
    let Ok(parsed) = path::as_parsed_by_the_url_standard(raw) else {
        return;
    };
    if parsed != raw {
        if let Ok(resolved) = parsed.parse() {
            *uri = resolved;
        }
    }
}

/// The peer's address as the router keys it (IPv4-mapped IPv6 as IPv4).
fn peer_ip(peer: SocketAddr) -> IpAddr {
    peer.ip().to_canonical()
}

/// The running LAN listeners and their advertisement.
pub struct LanListeners {
    pub https: SocketAddr,
    pub plain_http: Option<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
    advertiser: Option<Advertiser>,
}

impl LanListeners {
    /// Binds the listeners, starts serving them and (if configured) advertises them. They stop
    /// when `stop` turns true; call [`LanListeners::finish`] to withdraw the advertisement and
    /// wait for the drain.
    pub async fn start(
        state: Arc<AppState>,
        stop: watch::Receiver<bool>,
    ) -> Result<LanListeners, LanError> {
        let lan = state.config.lan.clone();
        let tls = Arc::new(Tls(TlsAcceptor::from(Arc::new(tls_config(
            &state.config.data_dir,
        )?))));
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| LanError::Bind { addr, source })
        };
        let listener = bind(lan.listen).await?;
        let https = listener.local_addr().map_err(|source| LanError::Bind {
            addr: lan.listen,
            source,
        })?;
        let plain = match lan.plain_http_listen {
            Some(addr) => {
                let l = bind(addr).await?;
                let local = l
                    .local_addr()
                    .map_err(|source| LanError::Bind { addr, source })?;
                Some((l, local))
            }
            None => None,
        };

        let per_peer = server::PeerLimit {
            max: lan.max_connections_per_peer,
        };
        let mut tasks = Vec::new();
        let st = state.clone();
        tasks.push(tokio::spawn(server::serve_with(
            "lan",
            listener,
            tls,
            state.config.limits.clone(),
            Some(per_peer),
            stop.clone(),
            move |req, peer| handle(st.clone(), req, peer, "lan"),
        )));
        let plain_http = plain.as_ref().map(|(_, a)| *a);
        if let Some((l, _)) = plain {
            let st = state.clone();
            tasks.push(tokio::spawn(server::serve_with(
                "lan_http",
                l,
                Arc::new(server::PlainTcp),
                state.config.limits.clone(),
                Some(per_peer),
                stop,
                move |req, peer| handle(st.clone(), req, peer, "lan_http"),
            )));
        }

        let advertiser = if lan.mdns {
            let ad = Advertisement::for_listener(&lan, https, plain_http, &state.lan_fingerprint);
            match Advertiser::start(ad, &lan.mdns_interfaces, lan.mdns_port) {
                Ok(a) => Some(a),
                Err(e) => {
                    // The listener is still useful by address (the phone remembers the last one).
                    tracing::warn!(error = %e, "mDNS advertisement failed; LAN listener runs unadvertised");
                    None
                }
            }
        } else {
            None
        };
        if plain_http.is_some() {
            tracing::warn!(
                "LAN plain HTTP is on: device tokens cross the local network unencrypted"
            );
        }
        Ok(LanListeners {
            https,
            plain_http,
            tasks,
            advertiser,
        })
    }

    /// Withdraws the advertisement (mDNS goodbye) so phones stop coming; call before asking
    /// the listeners to stop.
    pub async fn withdraw(&mut self) {
        if let Some(a) = self.advertiser.take() {
            a.stop().await;
        }
    }

    /// Withdraws the advertisement if still up, then waits for the listeners to drain (the
    /// caller has asked them to stop).
    pub async fn finish(mut self) {
        self.withdraw().await;
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(target: &str) -> String {
        let mut uri: hyper::Uri = target.parse().unwrap();
        as_the_worker_sees_it(&mut uri);
        uri.to_string()
    }

    #[test]
    fn the_target_is_judged_as_the_worker_sees_it() {
        assert_eq!(seen("/api/v1/thumbnails/%2e%2e/app.db"), "/api/v1/app.db");
        assert_eq!(seen("/api/v1/events?limit=1"), "/api/v1/events?limit=1");
        // What the standard parser keeps is the router's to refuse, as at the edge.
        assert_eq!(
            seen("/api/v1/thumbnails/a%2f..%2fapp.db"),
            "/api/v1/thumbnails/a%2f..%2fapp.db"
        );
        assert_eq!(seen("*"), "*");
    }
}
