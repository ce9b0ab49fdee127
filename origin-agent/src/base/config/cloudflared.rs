//! The `[cloudflared]` section of the agent's configuration (what the supervisor makes of it:
//! [`crate::domain::tunnel`]).
//!
//! ```toml
//! [cloudflared]
//! enabled = true                  # run cloudflared as the agent's child; false = it runs on its
//!                                 # own (systemd unit, container) and the agent only watches /ready
//! binary = "cloudflared"          # path, or a name looked up on PATH
//! token = "eyJh…"                 # a remotely managed tunnel's token, or
//! config = "/etc/argus-relay/cloudflared.yml"   # a locally managed tunnel (`argus-relay tunnel config`)
//! metrics = "127.0.0.1:20241"     # cloudflared's metrics server (its /ready); loopback
//! hostname = "tunnel.example.com" # the tunnel's public hostname (the Worker's ORIGIN_URL)
//!
//! # Tuning (defaults shown):
//! probe_interval_ms = 1000        # how often /ready is asked
//! ready_timeout_secs = 60         # alive but not connected this long → restart
//! unresponsive_timeout_secs = 15  # /ready unanswered this long → hung → restart
//! stable_after_secs = 60          # connected this long → the backoff starts over
//! backoff_initial_ms = 1000       # first restart delay (doubles, with jitter)
//! backoff_max_secs = 60           # longest restart delay; restarts never give up
//! stop_timeout_secs = 30          # SIGTERM → SIGKILL on shutdown
//! ```
//!
//! The token can also come from `ARGUS_RELAY_TUNNEL_TOKEN`. It is handed to cloudflared in its
//! environment (`TUNNEL_TOKEN`), never on its command line, where every local user could read it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::base::config::ConfigError;

/// cloudflared's usual first metrics port.
pub const DEFAULT_METRICS: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    20241,
));

const D_PROBE_MS: u64 = 1000;
const D_READY_TIMEOUT: u64 = 60;
const D_UNRESPONSIVE: u64 = 15;
const D_STABLE: u64 = 60;
const D_BACKOFF_INITIAL_MS: u64 = 1000;
const D_BACKOFF_MAX: u64 = 60;
const D_STOP_TIMEOUT: u64 = 30;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudflaredConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_binary")]
    pub binary: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<PathBuf>,
    #[serde(default = "default_metrics")]
    pub metrics: SocketAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default = "d_probe", skip_serializing_if = "is_d_probe")]
    pub probe_interval_ms: u64,
    #[serde(default = "d_ready", skip_serializing_if = "is_d_ready")]
    pub ready_timeout_secs: u64,
    #[serde(default = "d_unresp", skip_serializing_if = "is_d_unresp")]
    pub unresponsive_timeout_secs: u64,
    #[serde(default = "d_stable", skip_serializing_if = "is_d_stable")]
    pub stable_after_secs: u64,
    #[serde(default = "d_binit", skip_serializing_if = "is_d_binit")]
    pub backoff_initial_ms: u64,
    #[serde(default = "d_bmax", skip_serializing_if = "is_d_bmax")]
    pub backoff_max_secs: u64,
    #[serde(default = "d_stop", skip_serializing_if = "is_d_stop")]
    pub stop_timeout_secs: u64,
}

fn yes() -> bool {
    true
}
fn default_binary() -> PathBuf {
    PathBuf::from("cloudflared")
}
fn default_metrics() -> SocketAddr {
    DEFAULT_METRICS
}
macro_rules! default_fns {
    ($($get:ident, $is:ident, $value:expr;)*) => {$(
        fn $get() -> u64 { $value }
        fn $is(v: &u64) -> bool { *v == $value }
    )*};
}
default_fns! {
    d_probe, is_d_probe, D_PROBE_MS;
    d_ready, is_d_ready, D_READY_TIMEOUT;
    d_unresp, is_d_unresp, D_UNRESPONSIVE;
    d_stable, is_d_stable, D_STABLE;
    d_binit, is_d_binit, D_BACKOFF_INITIAL_MS;
    d_bmax, is_d_bmax, D_BACKOFF_MAX;
    d_stop, is_d_stop, D_STOP_TIMEOUT;
}

impl Default for CloudflaredConfig {
    fn default() -> Self {
        CloudflaredConfig {
            enabled: true,
            binary: default_binary(),
            token: None,
            config: None,
            metrics: DEFAULT_METRICS,
            hostname: None,
            probe_interval_ms: D_PROBE_MS,
            ready_timeout_secs: D_READY_TIMEOUT,
            unresponsive_timeout_secs: D_UNRESPONSIVE,
            stable_after_secs: D_STABLE,
            backoff_initial_ms: D_BACKOFF_INITIAL_MS,
            backoff_max_secs: D_BACKOFF_MAX,
            stop_timeout_secs: D_STOP_TIMEOUT,
        }
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        message: message.into(),
    }
}

fn in_range(field: &'static str, v: u64, lo: u64, hi: u64) -> Result<(), ConfigError> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(invalid(field, format!("must be between {lo} and {hi}")))
    }
}

/// A DNS name as cloudflared's ingress and the Worker's ORIGIN_URL take it (no scheme, no path).
pub fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

impl CloudflaredConfig {
    pub fn probe_interval(&self) -> Duration {
        Duration::from_millis(self.probe_interval_ms)
    }

    pub fn stop_timeout(&self) -> Duration {
        Duration::from_secs(self.stop_timeout_secs)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.metrics.port() == 0 {
            return Err(invalid("cloudflared.metrics", "needs a fixed port"));
        }
        if let Some(h) = &self.hostname {
            if !valid_hostname(h) {
                return Err(invalid(
                    "cloudflared.hostname",
                    format!(
                        "{h:?} is not a host name (no scheme, no path: e.g. tunnel.example.com)"
                    ),
                ));
            }
        }
        if let Some(t) = &self.token {
            if t.is_empty() || t.len() > 4096 || !t.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(invalid(
                    "cloudflared.token",
                    "is not a tunnel token (one line of printable characters, as the Cloudflare \
                     dashboard shows it)",
                ));
            }
        }
        if let Some(c) = &self.config {
            if !c.is_absolute() {
                return Err(invalid("cloudflared.config", "must be an absolute path"));
            }
        }
        if self.enabled {
            match (&self.token, &self.config) {
                (Some(_), Some(_)) => return Err(invalid(
                    "cloudflared",
                    "set either token (a remotely managed tunnel) or config (a locally managed \
                         one), not both",
                )),
                (None, None) => {
                    return Err(invalid(
                        "cloudflared",
                        "needs token or config (see `argus-relay tunnel config --help`), or \
                         enabled = false when cloudflared runs on its own",
                    ))
                }
                _ => {}
            }
            if !self.metrics.ip().is_loopback() {
                return Err(invalid(
                    "cloudflared.metrics",
                    "must be a loopback address (cloudflared's metrics server is not for the network)",
                ));
            }
            if self.binary.as_os_str().is_empty() {
                return Err(invalid("cloudflared.binary", "is empty"));
            }
        }
        in_range(
            "cloudflared.probe_interval_ms",
            self.probe_interval_ms,
            100,
            10_000,
        )?;
        in_range(
            "cloudflared.ready_timeout_secs",
            self.ready_timeout_secs,
            1,
            3600,
        )?;
        in_range(
            "cloudflared.unresponsive_timeout_secs",
            self.unresponsive_timeout_secs,
            1,
            3600,
        )?;
        in_range(
            "cloudflared.stable_after_secs",
            self.stable_after_secs,
            1,
            86_400,
        )?;
        in_range(
            "cloudflared.backoff_initial_ms",
            self.backoff_initial_ms,
            10,
            60_000,
        )?;
        in_range(
            "cloudflared.backoff_max_secs",
            self.backoff_max_secs,
            1,
            3600,
        )?;
        in_range(
            "cloudflared.stop_timeout_secs",
            self.stop_timeout_secs,
            1,
            300,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<CloudflaredConfig, String> {
        let c: CloudflaredConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn token_or_config_when_supervised() {
        let c = parse("token = \"eyJhIjoiYiJ9\"\n").unwrap();
        assert!(c.enabled);
        assert_eq!(c.metrics, DEFAULT_METRICS);
        assert_eq!(c.ready_timeout_secs, 60);
        assert!(parse("config = \"/etc/argus-relay/cloudflared.yml\"\n").is_ok());
        let e = parse("").unwrap_err();
        assert!(e.starts_with("cloudflared:"), "{e}");
        let e = parse("token = \"x\"\nconfig = \"/c.yml\"\n").unwrap_err();
        assert!(e.contains("not both"), "{e}");
        let e = parse("config = \"relative.yml\"\n").unwrap_err();
        assert!(e.starts_with("cloudflared.config:"), "{e}");
        let e = parse("token = \"a b\"\n").unwrap_err();
        assert!(e.starts_with("cloudflared.token:"), "{e}");
    }

    #[test]
    fn observed_needs_neither() {
        let c = parse("enabled = false\nmetrics = \"127.0.0.1:20245\"\n").unwrap();
        assert!(!c.enabled);
    }

    #[test]
    fn metrics_must_be_loopback_with_a_port() {
        let e = parse("token = \"t\"\nmetrics = \"0.0.0.0:20241\"\n").unwrap_err();
        assert!(e.starts_with("cloudflared.metrics:"), "{e}");
        let e = parse("token = \"t\"\nmetrics = \"127.0.0.1:0\"\n").unwrap_err();
        assert!(e.starts_with("cloudflared.metrics:"), "{e}");
    }

    #[test]
    fn hostnames_and_ranges() {
        assert!(parse("token = \"t\"\nhostname = \"tunnel.example.com\"\n").is_ok());
        let e = parse("token = \"t\"\nhostname = \"https://tunnel.example.com\"\n").unwrap_err();
        assert!(e.starts_with("cloudflared.hostname:"), "{e}");
        let e = parse("token = \"t\"\nprobe_interval_ms = 5\n").unwrap_err();
        assert!(e.starts_with("cloudflared.probe_interval_ms:"), "{e}");
        let e = parse("token = \"t\"\nbogus = 1\n").unwrap_err();
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn defaults_are_not_written_back() {
        let c = CloudflaredConfig {
            token: Some("t".into()),
            ..CloudflaredConfig::default()
        };
        let text = toml::to_string(&c).unwrap();
        assert!(!text.contains("probe_interval_ms"), "{text}");
        assert_eq!(parse(&text).unwrap(), c);
    }
}
