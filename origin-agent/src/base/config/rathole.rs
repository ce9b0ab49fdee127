//! The `[rathole]` section of the agent's configuration: the tunnel of the self-hosted relay
//! (docs/selfhost.md). What the agent does with it is in `crate::domain::tunnel::rathole`.
//!
//! ```toml
//! [rathole]
//! server = "relay.example.org:2333"     # the VPS's rathole server
//! server_public_key = "base64…"         # its Noise static key (pinned: `selfhost init` writes it)
//! token = "…"                           # the service's token (or ARGUS_RELAY_RATHOLE_TOKEN)
//! binary = "rathole"                    # path, or a name looked up on PATH
//! service = "argus"                     # the service's name on the server
//! ready_timeout_secs = 60               # running but not connected this long → restart
//! stop_timeout_secs = 10                # SIGTERM → SIGKILL on shutdown
//! ```

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::base::config::cloudflared::valid_hostname;
use crate::base::config::ConfigError;

pub const DEFAULT_SERVICE: &str = "argus";

const D_READY_TIMEOUT: u64 = 60;
const D_STOP_TIMEOUT: u64 = 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatholeConfig {
    pub server: String,
    pub server_public_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default = "default_binary")]
    pub binary: PathBuf,
    #[serde(default = "default_service")]
    pub service: String,
    #[serde(default = "d_ready")]
    pub ready_timeout_secs: u64,
    #[serde(default = "d_stop")]
    pub stop_timeout_secs: u64,
}

fn default_binary() -> PathBuf {
    PathBuf::from("rathole")
}
fn default_service() -> String {
    DEFAULT_SERVICE.to_owned()
}
fn d_ready() -> u64 {
    D_READY_TIMEOUT
}
fn d_stop() -> u64 {
    D_STOP_TIMEOUT
}

fn invalid(field: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        message: message.into(),
    }
}

/// A 32-byte X25519 key in standard base64, as `rathole --genkey` prints it.
pub fn is_noise_key(text: &str) -> bool {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .is_ok_and(|k| k.len() == 32)
}

/// A rathole service token: printable, no quotes or spaces (it goes into TOML files).
pub fn is_token(text: &str) -> bool {
    (16..=512).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl RatholeConfig {
    /// A section with the defaults and no token yet.
    pub fn new(server: String, server_public_key: String) -> RatholeConfig {
        RatholeConfig {
            server,
            server_public_key,
            token: None,
            binary: default_binary(),
            service: default_service(),
            ready_timeout_secs: D_READY_TIMEOUT,
            stop_timeout_secs: D_STOP_TIMEOUT,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let (host, port) = self.server.rsplit_once(':').ok_or_else(|| {
            invalid(
                "rathole.server",
                "must be host:port (e.g. relay.example.org:2333)",
            )
        })?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty()
            || port.parse::<u16>().map_or(true, |p| p == 0)
            || !(valid_hostname(host) || host.parse::<std::net::IpAddr>().is_ok())
        {
            return Err(invalid(
                "rathole.server",
                format!(
                    "{:?} is not host:port (e.g. relay.example.org:2333)",
                    self.server
                ),
            ));
        }
        if !is_noise_key(&self.server_public_key) {
            return Err(invalid(
                "rathole.server_public_key",
                "is not a Noise public key (32 bytes in base64, as `rathole --genkey` or \
                 `argus-relay selfhost init` prints it)",
            ));
        }
        match &self.token {
            None => {
                return Err(invalid(
                    "rathole.token",
                    "is missing (set it, or ARGUS_RELAY_RATHOLE_TOKEN)",
                ))
            }
            Some(t) if !is_token(t) => {
                return Err(invalid(
                    "rathole.token",
                    "must be 16 to 512 characters of A-Z, a-z, 0-9, - and _",
                ))
            }
            Some(_) => {}
        }
        if self.service.is_empty()
            || self.service.len() > 64
            || !self
                .service
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid(
                "rathole.service",
                "must be 1 to 64 characters of A-Z, a-z, 0-9, - and _",
            ));
        }
        if self.binary.as_os_str().is_empty() {
            return Err(invalid("rathole.binary", "is empty"));
        }
        if !(1..=3600).contains(&self.ready_timeout_secs) {
            return Err(invalid(
                "rathole.ready_timeout_secs",
                "must be between 1 and 3600",
            ));
        }
        if !(1..=300).contains(&self.stop_timeout_secs) {
            return Err(invalid(
                "rathole.stop_timeout_secs",
                "must be between 1 and 300",
            ));
        }
        Ok(())
    }

    pub fn stop_timeout(&self) -> Duration {
        Duration::from_secs(self.stop_timeout_secs)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const KEY: &str = "yQpXB5BspCKpOMkzWxVCiL7rwa0z7Xfvwl8D6v5B9zw=";

    /// A valid `[rathole]` section for tests.
    pub(crate) fn cfg() -> RatholeConfig {
        RatholeConfig {
            token: Some("0123456789abcdef0123".into()),
            ..RatholeConfig::new("relay.example.org:2333".into(), KEY.into())
        }
    }

    #[test]
    fn a_valid_section_and_its_errors() {
        cfg().validate().unwrap();
        let field = |c: RatholeConfig| match c.validate() {
            Err(ConfigError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(RatholeConfig {
                server: "relay.example.org".into(),
                ..cfg()
            }),
            "rathole.server"
        );
        assert_eq!(
            field(RatholeConfig {
                server_public_key: "c2hvcnQ=".into(),
                ..cfg()
            }),
            "rathole.server_public_key"
        );
        assert_eq!(
            field(RatholeConfig {
                token: None,
                ..cfg()
            }),
            "rathole.token"
        );
        assert_eq!(
            field(RatholeConfig {
                token: Some("has \"quotes\" and spaces".into()),
                ..cfg()
            }),
            "rathole.token"
        );
        assert!(RatholeConfig {
            server: "10.0.0.1:2333".into(),
            ..cfg()
        }
        .validate()
        .is_ok());
    }
}
