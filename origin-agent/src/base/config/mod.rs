//! The agent's configuration: one TOML file (written by `argus-relay init`), overridable by
//! environment variables, validated once with errors that name the field.
//!
//! ```toml
//! data_dir = "/var/lib/argus-relay"           # keys, database, certificates (0700)
//! public_url = "https://relay.example.com"    # what phones use from outside (the Worker's route)
//!
//! [backend]
//! url = "http://127.0.0.1:8000"               # ArgusAI
//! # api_key = "…"                             # fallback only: the agent's credential is its user
//!                                             # session (`argus-relay backend login`); a key costs
//!                                             # ArgusAI a bcrypt per request (docs/proxy.md)
//! request_timeout_secs = 100                  # API responses (Cloudflare's own limit); SSE, WebSockets,
//!                                             # exports and video are not cut by it (proxy.rs)
//! max_concurrent_requests = 64                # API/image requests in flight to ArgusAI; more wait
//!
//! [tunnel]
//! listen = "127.0.0.1:8470"                   # cloudflared's ingress points here; loopback only
//!
//! [admin]
//! listen = "127.0.0.1:8471"                   # owner CLI and API; loopback only
//!
//! [tokens]
//! issuer = "https://relay.example.com"        # default: public_url
//! audience = "argus-relay"
//! access_ttl_secs = 900                       # at most 900
//!
//! [lan]                                       # optional; see docs/architecture.md "LAN"
//! enabled = false                             # HTTPS for phones at home (device tokens required)
//! listen = "0.0.0.0:8443"
//! mdns = true                                 # advertise _argusai._tcp (Bonjour)
//! # instance_name = "ArgusAI on myhost"        # the Bonjour name (default: from the hostname)
//! # mdns_interfaces = ["eth0"]                # default: every interface
//! # plain_http_listen = "0.0.0.0:8000"        # plain HTTP for the current iOS app: tokens in clear!
//! # admin_page = true                         # the Mobile Access page over HTTPS here too
//!                                             # (sign in: `argus-relay ui --lan`)
//! # max_connections_per_peer = 32             # connections at once from one address
//!
//! [limits]                                    # per listener (see server.rs, proxy.rs)
//! max_header_bytes = 16384                    # request line + headers; larger → 431
//! header_read_timeout_secs = 10               # from accept (TLS handshake included) to the first
//!                                             # head's end; later, from a head's first byte (slowloris)
//! idle_timeout_secs = 120                     # keep-alive idle, and a streamed upload's stall;
//!                                             # above cloudflared's 90 s origin keep-alive
//! max_connections = 1024                      # further connections are closed at once
//! max_body_bytes = 104857600                  # streamed request bodies; larger → 413
//! ```
//!
//! Environment overrides (highest precedence): `ARGUS_RELAY_DATA_DIR`, `ARGUS_RELAY_PUBLIC_URL`,
//! `ARGUS_RELAY_BACKEND_URL`, `ARGUS_RELAY_BACKEND_API_KEY`, `ARGUS_RELAY_TUNNEL_LISTEN`,
//! `ARGUS_RELAY_ADMIN_LISTEN`, `ARGUS_RELAY_TUNNEL_TOKEN` (`cloudflared.token`).
//!
//! The optional `[cloudflared]` section (cloudflared supervised or observed) is documented in
//! [`crate::base::config::cloudflared`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub mod cloudflared;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

fn invalid(field: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        message: message.into(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub data_dir: PathBuf,
    pub public_url: String,
    #[serde(default)]
    pub backend: BackendConfig,
    #[serde(default)]
    pub tunnel: ListenConfig,
    #[serde(default = "ListenConfig::admin_default")]
    pub admin: ListenConfig,
    #[serde(default)]
    pub tokens: TokenConfig,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub lan: LanConfig,
    /// cloudflared, supervised or observed ([`crate::base::config::cloudflared`]); absent = not watched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloudflared: Option<crate::base::config::cloudflared::CloudflaredConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    #[serde(default = "BackendConfig::default_url")]
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    #[serde(default = "BackendConfig::default_timeout")]
    pub request_timeout_secs: u64,
    /// API and image requests in flight to the backend at once (streams are not counted).
    #[serde(default = "BackendConfig::default_max_concurrent")]
    pub max_concurrent_requests: usize,
}

impl BackendConfig {
    fn default_url() -> String {
        "http://127.0.0.1:8000".into()
    }
    fn default_timeout() -> u64 {
        100
    }
    fn default_max_concurrent() -> usize {
        64
    }
}

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig {
            url: Self::default_url(),
            api_key: None,
            request_timeout_secs: Self::default_timeout(),
            max_concurrent_requests: Self::default_max_concurrent(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    pub listen: SocketAddr,
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8470)),
        }
    }
}

impl ListenConfig {
    fn admin_default() -> Self {
        ListenConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8471)),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Defaults to `public_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_ttl_secs: Option<u64>,
}

/// `[lan]`: the LAN listener (HTTPS with the self-signed certificate phones pin) and its
/// mDNS/Bonjour advertisement. Off unless `enabled` (or `run --lan-listen`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LanConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
    /// Plain HTTP beside the HTTPS listener, for apps that cannot pin (the current ArgusAI iOS
    /// app browses Bonjour, then uses `http://ip:port`). Off by default: tokens cross the LAN in
    /// clear text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plain_http_listen: Option<SocketAddr>,
    /// Advertise `_argusai._tcp.local.` while the LAN listener runs.
    pub mdns: bool,
    /// The Bonjour instance name (default `ArgusAI on <hostname>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_name: Option<String>,
    /// Advertise on these interfaces only (names, e.g. `eth0`); empty = every interface.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mdns_interfaces: Vec<String>,
    /// The mDNS UDP port. Always 5353 for phones; another value isolates tests.
    #[serde(skip_serializing_if = "LanConfig::is_default_mdns_port")]
    pub mdns_port: u16,
    /// Also serve the owner's Mobile Access page (`/admin/ui`) on the HTTPS LAN listener, signed
    /// in with a one-time link from `argus-relay ui --lan` (never on the plain-HTTP listener).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub admin_page: bool,
    /// At most this many connections open at once from one address (HTTPS and plain HTTP each),
    /// so one host on the network cannot take the slots phones need (`[limits]
    /// max_connections` is the listener's total). A phone uses a handful.
    #[serde(skip_serializing_if = "LanConfig::is_default_max_connections_per_peer")]
    pub max_connections_per_peer: usize,
}

pub use argus_shared::mdns::PORT as MDNS_PORT;
/// `[lan] max_connections_per_peer` by default: a phone opens a few connections at once (6 per
/// host in URLSession, more with live streams); this leaves room and keeps one host to ~3 % of
/// the default 1,024 slots.
pub const DEFAULT_LAN_MAX_CONNECTIONS_PER_PEER: usize = 32;
/// Longest Bonjour instance name (one DNS label).
pub const MAX_INSTANCE_NAME_BYTES: usize = 63;

impl Default for LanConfig {
    fn default() -> Self {
        LanConfig {
            enabled: false,
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            plain_http_listen: None,
            mdns: true,
            instance_name: None,
            mdns_interfaces: Vec::new(),
            mdns_port: MDNS_PORT,
            admin_page: false,
            max_connections_per_peer: DEFAULT_LAN_MAX_CONNECTIONS_PER_PEER,
        }
    }
}

impl LanConfig {
    fn is_default_mdns_port(port: &u16) -> bool {
        *port == MDNS_PORT
    }

    fn is_default_max_connections_per_peer(n: &usize) -> bool {
        *n == DEFAULT_LAN_MAX_CONNECTIONS_PER_PEER
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.plain_http_listen == Some(self.listen) && self.listen.port() != 0 {
            return Err(invalid(
                "lan.plain_http_listen",
                "must differ from lan.listen",
            ));
        }
        if let Some(name) = &self.instance_name {
            if name.trim().is_empty()
                || name.len() > MAX_INSTANCE_NAME_BYTES
                || name.chars().any(char::is_control)
            {
                return Err(invalid(
                    "lan.instance_name",
                    format!("1 to {MAX_INSTANCE_NAME_BYTES} bytes, no control characters"),
                ));
            }
        }
        if self.mdns_interfaces.iter().any(|n| n.trim().is_empty()) {
            return Err(invalid("lan.mdns_interfaces", "names must not be empty"));
        }
        if self.mdns_port == 0 {
            return Err(invalid("lan.mdns_port", "must not be 0"));
        }
        if self.max_connections_per_peer == 0 {
            return Err(invalid("lan.max_connections_per_peer", "must not be 0"));
        }
        Ok(())
    }
}

pub const DEFAULT_AUDIENCE: &str = "argus-relay";
pub const MAX_ACCESS_TTL_SECS: u64 = argus_shared::token::MAX_ACCESS_TOKEN_LIFETIME_SECS;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_header_bytes: usize,
    pub header_read_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    pub max_connections: usize,
    pub max_body_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 16 * 1024,
            header_read_timeout_secs: 10,
            // Longer than cloudflared's idle keep-alive to the origin (90 s), so the agent never
            // closes a connection cloudflared is about to reuse.
            idle_timeout_secs: 120,
            max_connections: 1024,
            max_body_bytes: 100 * 1024 * 1024,
        }
    }
}

impl AgentConfig {
    /// A fresh configuration as `init` writes it.
    pub fn new(data_dir: PathBuf, public_url: String, backend_url: String) -> Self {
        AgentConfig {
            data_dir,
            public_url,
            backend: BackendConfig {
                url: backend_url,
                ..BackendConfig::default()
            },
            tunnel: ListenConfig::default(),
            admin: ListenConfig::admin_default(),
            tokens: TokenConfig::default(),
            limits: Limits::default(),
            lan: LanConfig::default(),
            cloudflared: None,
        }
    }

    /// Reads the file, applies environment overrides, validates.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Self::from_toml_with_env(&text, path, |k| std::env::var(k).ok())
    }

    pub fn from_toml_with_env(
        text: &str,
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut cfg: AgentConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: e.to_string(),
        })?;
        if let Some(v) = env("ARGUS_RELAY_DATA_DIR") {
            cfg.data_dir = v.into();
        }
        if let Some(v) = env("ARGUS_RELAY_PUBLIC_URL") {
            cfg.public_url = v;
        }
        if let Some(v) = env("ARGUS_RELAY_BACKEND_URL") {
            cfg.backend.url = v;
        }
        if let Some(v) = env("ARGUS_RELAY_BACKEND_API_KEY") {
            cfg.backend.api_key = Some(v);
        }
        if let Some(v) = env("ARGUS_RELAY_TUNNEL_LISTEN") {
            cfg.tunnel.listen = v
                .parse()
                .map_err(|_| invalid("tunnel.listen", format!("{v:?} is not ip:port")))?;
        }
        if let Some(v) = env("ARGUS_RELAY_ADMIN_LISTEN") {
            cfg.admin.listen = v
                .parse()
                .map_err(|_| invalid("admin.listen", format!("{v:?} is not ip:port")))?;
        }
        if let Some(v) = env("ARGUS_RELAY_TUNNEL_TOKEN").filter(|v| !v.is_empty()) {
            cfg.cloudflared.get_or_insert_with(Default::default).token = Some(v);
        }
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        check_http_url("public_url", &self.public_url)?;
        check_http_url("backend.url", &self.backend.url)?;
        if !self.tunnel.listen.ip().is_loopback() {
            return Err(invalid(
                "tunnel.listen",
                "must be a loopback address (cloudflared runs on this host)",
            ));
        }
        if !self.admin.listen.ip().is_loopback() {
            return Err(invalid("admin.listen", "must be a loopback address"));
        }
        if self.backend.request_timeout_secs == 0 || self.backend.request_timeout_secs > 600 {
            return Err(invalid(
                "backend.request_timeout_secs",
                "must be between 1 and 600",
            ));
        }
        if let Some(ttl) = self.tokens.access_ttl_secs {
            if !(60..=MAX_ACCESS_TTL_SECS).contains(&ttl) {
                return Err(invalid(
                    "tokens.access_ttl_secs",
                    "must be between 60 and 900",
                ));
            }
        }
        if self.backend.max_concurrent_requests == 0 {
            return Err(invalid(
                "backend.max_concurrent_requests",
                "must be at least 1",
            ));
        }
        if self.limits.max_connections == 0 {
            return Err(invalid("limits.max_connections", "must be at least 1"));
        }
        if self.limits.max_header_bytes < 4096 {
            return Err(invalid("limits.max_header_bytes", "must be at least 4096"));
        }
        self.lan.validate()?;
        if let Some(c) = &self.cloudflared {
            c.validate()?;
        }
        Ok(())
    }

    pub fn issuer(&self) -> String {
        self.tokens
            .issuer
            .clone()
            .unwrap_or_else(|| self.public_url.trim_end_matches('/').to_owned())
    }

    pub fn audience(&self) -> String {
        self.tokens
            .audience
            .clone()
            .unwrap_or_else(|| DEFAULT_AUDIENCE.to_owned())
    }

    pub fn access_ttl(&self) -> u64 {
        self.tokens.access_ttl_secs.unwrap_or(MAX_ACCESS_TTL_SECS)
    }

    pub fn backend_timeout(&self) -> Duration {
        Duration::from_secs(self.backend.request_timeout_secs)
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("relay.db")
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

fn check_http_url(field: &'static str, url: &str) -> Result<(), ConfigError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            invalid(
                field,
                format!("{url:?} must start with http:// or https://"),
            )
        })?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || host.contains('@') {
        return Err(invalid(field, format!("{url:?} has no valid host")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AgentConfig, ConfigError> {
        AgentConfig::from_toml_with_env(text, Path::new("t.toml"), |_| None)
    }

    #[test]
    fn minimal_file_gets_safe_defaults() {
        let cfg =
            parse("data_dir = \"/tmp/x\"\npublic_url = \"https://relay.example.com\"\n").unwrap();
        assert!(cfg.tunnel.listen.ip().is_loopback());
        assert!(cfg.admin.listen.ip().is_loopback());
        assert_eq!(cfg.access_ttl(), 900);
        assert_eq!(cfg.issuer(), "https://relay.example.com");
    }

    #[test]
    fn errors_name_the_field() {
        let err = parse(
            "data_dir = \"/x\"\npublic_url = \"https://r\"\n[tunnel]\nlisten = \"0.0.0.0:1\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("tunnel.listen:"), "{err}");
        let err = parse("data_dir = \"/x\"\npublic_url = \"ftp://r\"\n").unwrap_err();
        assert!(err.to_string().starts_with("public_url:"), "{err}");
        let err = parse("data_dir = \"/x\"\npublic_url = \"https://r\"\nbogus = 1\n").unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
        let err = parse(
            "data_dir = \"/x\"\npublic_url = \"https://r\"\n[tokens]\naccess_ttl_secs = 3600\n",
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with("tokens.access_ttl_secs:"),
            "{err}"
        );
    }

    #[test]
    fn environment_overrides_the_file() {
        let cfg = AgentConfig::from_toml_with_env(
            "data_dir = \"/x\"\npublic_url = \"https://r\"\n",
            Path::new("t.toml"),
            |k| (k == "ARGUS_RELAY_BACKEND_URL").then(|| "http://127.0.0.1:9999".to_owned()),
        )
        .unwrap();
        assert_eq!(cfg.backend.url, "http://127.0.0.1:9999");
    }

    #[test]
    fn the_lan_section_is_optional_and_off_by_default() {
        let cfg = parse("data_dir = \"/x\"\npublic_url = \"https://r\"\n").unwrap();
        assert!(!cfg.lan.enabled);
        assert!(cfg.lan.mdns);
        assert_eq!(cfg.lan.listen, SocketAddr::from(([0, 0, 0, 0], 8443)));
        assert_eq!(cfg.lan.plain_http_listen, None);
        let cfg = parse(
            "data_dir = \"/x\"\npublic_url = \"https://r\"\n[lan]\nenabled = true\nlisten = \"127.0.0.1:0\"\nmdns_interfaces = [\"lo\"]\nmdns_port = 5999\ninstance_name = \"Home\"\n",
        )
        .unwrap();
        assert!(cfg.lan.enabled);
        assert_eq!(cfg.lan.mdns_interfaces, vec!["lo".to_owned()]);
        assert_eq!(cfg.lan.mdns_port, 5999);
        let back = parse(&cfg.to_toml()).unwrap();
        assert_eq!(back.lan, cfg.lan);
    }

    #[test]
    fn lan_errors_name_the_field() {
        let base = "data_dir = \"/x\"\npublic_url = \"https://r\"\n[lan]\n";
        for (extra, field) in [
            (
                "listen = \"0.0.0.0:8443\"\nplain_http_listen = \"0.0.0.0:8443\"\n",
                "lan.plain_http_listen:",
            ),
            ("instance_name = \"\"\n", "lan.instance_name:"),
            ("mdns_interfaces = [\"\"]\n", "lan.mdns_interfaces:"),
            ("mdns_port = 0\n", "lan.mdns_port:"),
            (
                "max_connections_per_peer = 0\n",
                "lan.max_connections_per_peer:",
            ),
        ] {
            let err = parse(&format!("{base}{extra}")).unwrap_err();
            assert!(err.to_string().starts_with(field), "{err}");
        }
        let long = "x".repeat(MAX_INSTANCE_NAME_BYTES + 1);
        let err = parse(&format!("{base}instance_name = \"{long}\"\n")).unwrap_err();
        assert!(err.to_string().starts_with("lan.instance_name:"), "{err}");
    }

    #[test]
    fn written_config_reads_back() {
        let cfg = AgentConfig::new(
            "/d".into(),
            "https://r.example".into(),
            "http://127.0.0.1:8000".into(),
        );
        let back = parse(&cfg.to_toml()).unwrap();
        assert_eq!(back.public_url, "https://r.example");
    }
}
