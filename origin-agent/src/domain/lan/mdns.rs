//! mDNS/Bonjour: the agent advertises its LAN listener as `_argusai._tcp.local.` so phones at home
//! find it without knowing its address. The advertisement is a hint, never a proof: phones
//! decide "this is my server" by the pinned certificate and `/api/v1/health`
//! ([`argus_client::verify`]).
//!
//! TXT record (RFC 6763 §6):
//!
//! | key | value |
//! |---|---|
//! | `version` | the agent's version |
//! | `api_port` | the HTTPS (pinned) port |
//! | `ssl` | `true` |
//! | `fingerprint` | `sha256:<hex>` of the LAN certificate |
//! | `http_port` | the plain HTTP port, only when `lan.plain_http_listen` is set |
//!
//! The SRV port is the HTTPS port, except when plain HTTP is on: then it is the plain port, since
//! the current ArgusAI iOS app connects to `http://<address>:<SRV port>`.
//!
//! [mdns-sd](https://docs.rs/mdns-sd) runs its own thread, re-checks the interfaces every 5 s and
//! announces on interfaces that appear (addresses follow the interfaces when the listener is on
//! an unspecified address); we log its interface events. [`Advertiser::stop`] sends the goodbye.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use argus_client::browse::restrict_interfaces;
use mdns_sd::{DaemonEvent, ServiceDaemon, ServiceInfo, UnregisterStatus};

use crate::base::config::LanConfig;

pub use argus_shared::mdns::{txt, SERVICE_TYPE};

/// How long [`Advertiser::stop`] waits for the daemon to confirm the goodbye.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("{0}")]
    Mdns(#[from] mdns_sd::Error),
}

/// What is advertised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertisement {
    pub instance_name: String,
    /// `<name>.local.`
    pub host_name: String,
    /// `None`: every address of the interfaces advertised on (the listener is on 0.0.0.0/[::]).
    pub address: Option<IpAddr>,
    pub https_port: u16,
    pub http_port: Option<u16>,
    pub fingerprint: String,
}

impl Advertisement {
    pub fn for_listener(
        lan: &LanConfig,
        https: SocketAddr,
        plain_http: Option<SocketAddr>,
        fingerprint: &str,
    ) -> Advertisement {
        let host = hostname();
        Advertisement {
            instance_name: lan
                .instance_name
                .clone()
                .unwrap_or_else(|| format!("ArgusAI on {host}")),
            host_name: format!("{host}.local."),
            address: Some(https.ip()).filter(|ip| !ip.is_unspecified()),
            https_port: https.port(),
            http_port: plain_http.map(|a| a.port()),
            fingerprint: fingerprint.to_owned(),
        }
    }

    /// The SRV port (see the module documentation).
    pub fn srv_port(&self) -> u16 {
        self.http_port.unwrap_or(self.https_port)
    }

    pub fn txt(&self) -> Vec<(&'static str, String)> {
        let mut txt = vec![
            (txt::VERSION, env!("CARGO_PKG_VERSION").to_owned()),
            (txt::API_PORT, self.https_port.to_string()),
            (txt::SSL, "true".to_owned()),
            (txt::FINGERPRINT, self.fingerprint.clone()),
        ];
        if let Some(p) = self.http_port {
            txt.push((txt::HTTP_PORT, p.to_string()));
        }
        txt
    }

    fn service_info(&self) -> Result<ServiceInfo, DiscoveryError> {
        let txt = self.txt();
        let info = match self.address {
            Some(ip) => ServiceInfo::new(
                SERVICE_TYPE,
                &self.instance_name,
                &self.host_name,
                ip,
                self.srv_port(),
                txt.as_slice(),
            )?,
            None => ServiceInfo::new(
                SERVICE_TYPE,
                &self.instance_name,
                &self.host_name,
                (),
                self.srv_port(),
                txt.as_slice(),
            )?
            .enable_addr_auto(),
        };
        Ok(info)
    }
}

/// The machine's host name as a DNS label (`argus-relay` if it has none usable).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| {
            !s.is_empty()
                && s.len() <= 63
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .unwrap_or_else(|| "argus-relay".to_owned())
}

/// A running advertisement.
pub struct Advertiser {
    daemon: ServiceDaemon,
    fullname: String,
    monitor: tokio::task::JoinHandle<()>,
}

impl Advertiser {
    /// Starts the mDNS daemon on `interfaces` (all when empty) and `mdns_port` (5353 for
    /// phones), and registers `ad`.
    pub fn start(
        ad: Advertisement,
        interfaces: &[String],
        mdns_port: u16,
    ) -> Result<Advertiser, DiscoveryError> {
        let daemon = ServiceDaemon::new_with_port(mdns_port)?;
        let started = (|| {
            restrict_interfaces(&daemon, interfaces)?;
            let events = daemon.monitor()?;
            let info = ad.service_info()?;
            let fullname = info.get_fullname().to_owned();
            daemon.register(info)?;
            Ok::<_, DiscoveryError>((events, fullname))
        })();
        let (events, fullname) = match started {
            Ok(v) => v,
            Err(e) => {
                let _ = daemon.shutdown();
                return Err(e);
            }
        };
        tracing::info!(
            service = %fullname,
            port = ad.srv_port(),
            api_port = ad.https_port,
            address = ?ad.address,
            "advertising the LAN listener over mDNS"
        );
        let monitor = tokio::spawn(async move {
            while let Ok(event) = events.recv_async().await {
                match event {
                    DaemonEvent::IpAdd(ip) => {
                        tracing::info!(%ip, "mDNS: address appeared; announcing there")
                    }
                    DaemonEvent::IpDel(ip) => tracing::info!(%ip, "mDNS: address went away"),
                    DaemonEvent::NameChange(c) => {
                        tracing::warn!(change = ?c, "mDNS: name conflict resolved by renaming")
                    }
                    DaemonEvent::Error(e) => tracing::warn!(error = %e, "mDNS daemon error"),
                    other => tracing::debug!(event = ?other, "mDNS"),
                }
            }
        });
        Ok(Advertiser {
            daemon,
            fullname,
            monitor,
        })
    }

    pub fn fullname(&self) -> &str {
        &self.fullname
    }

    /// Withdraws the advertisement (goodbye packets), then stops the daemon.
    pub async fn stop(self) {
        match self.daemon.unregister(&self.fullname) {
            Ok(rx) => match tokio::time::timeout(STOP_TIMEOUT, rx.recv_async()).await {
                Ok(Ok(UnregisterStatus::OK)) => {
                    tracing::info!(service = %self.fullname, "mDNS advertisement withdrawn")
                }
                other => {
                    tracing::warn!(result = ?other, "mDNS: withdrawing the advertisement failed")
                }
            },
            Err(e) => tracing::warn!(error = %e, "mDNS: withdrawing the advertisement failed"),
        }
        if let Ok(rx) = self.daemon.shutdown() {
            let _ = tokio::time::timeout(STOP_TIMEOUT, rx.recv_async()).await;
        }
        self.monitor.abort();
    }
}

impl Drop for Advertiser {
    /// Without [`Advertiser::stop`]: the daemon stops without a goodbye (the records age out).
    fn drop(&mut self) {
        let _ = self.daemon.shutdown();
        self.monitor.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_carries_version_port_ssl_and_fingerprint() {
        let lan = LanConfig {
            instance_name: Some("Home".into()),
            ..LanConfig::default()
        };
        let ad =
            Advertisement::for_listener(&lan, "0.0.0.0:8443".parse().unwrap(), None, "sha256:00ff");
        assert_eq!(ad.instance_name, "Home");
        assert_eq!(ad.address, None);
        assert_eq!(ad.srv_port(), 8443);
        assert!(ad.host_name.ends_with(".local."));
        let txt = ad.txt();
        assert!(txt.contains(&("api_port", "8443".into())));
        assert!(txt.contains(&("ssl", "true".into())));
        assert!(txt.contains(&("fingerprint", "sha256:00ff".into())));
        assert!(txt.iter().any(|(k, _)| *k == "version"));
        assert!(!txt.iter().any(|(k, _)| *k == "http_port"));
        ad.service_info().unwrap();
    }

    #[test]
    fn with_plain_http_the_srv_port_is_the_plain_one() {
        let ad = Advertisement::for_listener(
            &LanConfig::default(),
            "192.168.1.5:8443".parse().unwrap(),
            Some("192.168.1.5:8000".parse().unwrap()),
            "sha256:00ff",
        );
        assert_eq!(ad.address, Some("192.168.1.5".parse().unwrap()));
        assert_eq!(ad.srv_port(), 8000);
        assert!(ad.txt().contains(&("api_port", "8443".into())));
        assert!(ad.txt().contains(&("http_port", "8000".into())));
    }
}
