//! mDNS browsing for `_argusai._tcp.local.`: what the LAN offers. Everything learnt here is a
//! hint to be verified ([`super::verify`]); nothing in a TXT record is trusted.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use mdns_sd::{DaemonEvent, Receiver, ResolvedService, ServiceDaemon, ServiceEvent};
use serde::Serialize;

use argus_shared::mdns::{txt, PORT as MDNS_PORT, SERVICE_TYPE};
use mdns_sd::IfKind;

/// What mDNS browsing reports (the daemon could not start, or an interface is unknown).
pub type DiscoveryError = mdns_sd::Error;

/// Where to browse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowseConfig {
    /// Interface names; empty = every interface.
    pub interfaces: Vec<String>,
    /// 5353 on real networks.
    pub mdns_port: u16,
}

impl Default for BrowseConfig {
    fn default() -> Self {
        BrowseConfig {
            interfaces: Vec::new(),
            mdns_port: MDNS_PORT,
        }
    }
}

/// One advertised instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LanCandidate {
    /// `<instance>._argusai._tcp.local.`
    pub fullname: String,
    pub host: String,
    /// HTTPS addresses (TXT `api_port` with `ssl=true`); empty if the instance offers no HTTPS.
    pub addrs: Vec<SocketAddr>,
    /// TXT `fingerprint` (a hint: the pin decides).
    pub fingerprint: Option<String>,
    pub version: Option<String>,
    /// The SRV port (plain HTTP for the current ArgusAI app when the agent offers it).
    pub srv_port: u16,
}

impl LanCandidate {
    fn from_resolved(s: &ResolvedService) -> LanCandidate {
        let ssl = s
            .get_property_val_str(txt::SSL)
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
        let https_port = s
            .get_property_val_str(txt::API_PORT)
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| ssl && *p != 0);
        let mut ips: Vec<IpAddr> = s
            .get_addresses()
            .iter()
            .map(|ip| ip.to_ip_addr())
            // Link-local IPv6 needs a scope id a URL cannot carry portably.
            .filter(|ip| !matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80))
            .collect();
        // IPv4 first, then a stable order.
        ips.sort_by_key(|ip| (ip.is_ipv6(), *ip));
        LanCandidate {
            fullname: s.get_fullname().to_owned(),
            host: s.get_hostname().to_owned(),
            addrs: https_port
                .map(|p| ips.iter().map(|ip| SocketAddr::new(*ip, p)).collect())
                .unwrap_or_default(),
            fingerprint: s.get_property_val_str(txt::FINGERPRINT).map(str::to_owned),
            version: s.get_property_val_str(txt::VERSION).map(str::to_owned),
            srv_port: s.get_port(),
        }
    }
}

/// What the browser reports.
#[derive(Debug, Clone)]
pub enum BrowseEvent {
    /// An instance was resolved (or its records changed).
    Found(LanCandidate),
    /// An instance said goodbye (or its records expired).
    Gone { fullname: String },
    /// A local address appeared or went away: the network may have changed.
    NetworkChanged { ip: IpAddr, added: bool },
}

/// A running browse (its own mDNS daemon thread; stopped on drop).
pub struct Browser {
    daemon: ServiceDaemon,
    services: Receiver<ServiceEvent>,
    monitor: Receiver<DaemonEvent>,
}

impl Browser {
    pub fn start(cfg: &BrowseConfig) -> Result<Browser, DiscoveryError> {
        let daemon = ServiceDaemon::new_with_port(cfg.mdns_port)?;
        let started = (|| {
            restrict_interfaces(&daemon, &cfg.interfaces)?;
            let monitor = daemon.monitor()?;
            let services = daemon.browse(SERVICE_TYPE)?;
            Ok::<_, DiscoveryError>((services, monitor))
        })();
        match started {
            Ok((services, monitor)) => Ok(Browser {
                daemon,
                services,
                monitor,
            }),
            Err(e) => {
                let _ = daemon.shutdown();
                Err(e)
            }
        }
    }

    /// The next event; `None` once the daemon has stopped.
    pub async fn next(&self) -> Option<BrowseEvent> {
        loop {
            tokio::select! {
                ev = self.services.recv_async() => match ev.ok()? {
                    ServiceEvent::ServiceResolved(s) => {
                        return Some(BrowseEvent::Found(LanCandidate::from_resolved(&s)))
                    }
                    ServiceEvent::ServiceRemoved(_, fullname) => {
                        return Some(BrowseEvent::Gone { fullname })
                    }
                    _ => {}
                },
                ev = self.monitor.recv_async() => match ev.ok()? {
                    DaemonEvent::IpAdd(ip) => return Some(BrowseEvent::NetworkChanged { ip, added: true }),
                    DaemonEvent::IpDel(ip) => return Some(BrowseEvent::NetworkChanged { ip, added: false }),
                    _ => {}
                },
            }
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.daemon.shutdown();
    }
}

/// Makes `daemon` use only the interfaces named in `names` (all when empty). Sent before any
/// browse or register, so nothing goes out elsewhere. (The agent's advertiser uses it too.)
pub fn restrict_interfaces(daemon: &ServiceDaemon, names: &[String]) -> Result<(), DiscoveryError> {
    if names.is_empty() {
        return Ok(());
    }
    daemon.disable_interface(IfKind::All)?;
    daemon.enable_interface(
        names
            .iter()
            .map(|n| IfKind::Name(n.clone()))
            .collect::<Vec<_>>(),
    )?;
    Ok(())
}

/// Browses for `timeout` and returns every instance resolved meanwhile (for
/// `argus-relay client discover`).
pub async fn discover(
    cfg: &BrowseConfig,
    timeout: Duration,
) -> Result<Vec<LanCandidate>, DiscoveryError> {
    let browser = Browser::start(cfg)?;
    let mut found: Vec<LanCandidate> = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, browser.next()).await {
        match ev {
            BrowseEvent::Found(c) => {
                found.retain(|f| f.fullname != c.fullname);
                found.push(c);
            }
            BrowseEvent::Gone { fullname } => found.retain(|f| f.fullname != fullname),
            BrowseEvent::NetworkChanged { .. } => {}
        }
    }
    Ok(found)
}
