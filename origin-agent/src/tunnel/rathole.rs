//! rathole, the tunnel of the self-hosted relay (docs/selfhost.md): the `[rathole]` section, the
//! client configuration the agent writes for it, and what its log lines prove.
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
//!
//! The agent runs `rathole --client FILE`, FILE being `rathole-client.toml` in the data directory
//! (0600, written before every start), with Noise `Noise_NK_25519_ChaChaPoly_BLAKE2s`: the client
//! only completes the handshake with the holder of the pinned server key, and the server only
//! forwards for the holder of the token. rathole has no readiness endpoint: its own log lines
//! ([`interpret_line`]) are the proof — "Control channel established" is the only thing that
//! makes the agent say connected; every failure line says why, in the status and in `doctor`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::backoff::Backoff;
use super::machine::Timing;
use crate::config::ConfigError;

/// The client configuration's file name in the data directory.
pub const CLIENT_CONFIG_FILE: &str = "rathole-client.toml";
/// The Noise pattern of both ends (rathole's default for `type = "noise"`, named for clarity).
pub const NOISE_PATTERN: &str = "Noise_NK_25519_ChaChaPoly_BLAKE2s";
/// The rathole server's heartbeat interval that `selfhost init` writes; the client gives up on a
/// silent control channel after [`HEARTBEAT_TIMEOUT_SECS`].
pub const HEARTBEAT_INTERVAL_SECS: u64 = 10;
pub const HEARTBEAT_TIMEOUT_SECS: u64 = 25;
/// How long rathole waits before dialling again after a failure.
pub const RETRY_INTERVAL_SECS: u64 = 1;
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
            || !(super::settings::valid_hostname(host) || host.parse::<std::net::IpAddr>().is_ok())
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

    pub fn timing(&self) -> Timing {
        Timing {
            ready_timeout: Duration::from_secs(self.ready_timeout_secs),
            // rathole's state is read from its own output: there is no endpoint that could hang.
            unresponsive_timeout: Duration::from_secs(u64::MAX / 4),
            stable_after: Timing::default().stable_after,
            backoff: Backoff::DEFAULT,
        }
    }

    pub fn stop_timeout(&self) -> Duration {
        Duration::from_secs(self.stop_timeout_secs)
    }

    /// The `rathole --client` configuration: dial `server`, pin its key, forward the service to
    /// the agent's tunnel listener.
    pub fn client_toml(&self, local: SocketAddr) -> String {
        let token = self.token.as_deref().unwrap_or_default();
        format!(
            "# Written by argus-relay before each start of rathole; edit [rathole] in the agent's\n\
             # configuration instead.\n\
             [client]\n\
             remote_addr = {server}\n\
             heartbeat_timeout = {HEARTBEAT_TIMEOUT_SECS}\n\
             retry_interval = {RETRY_INTERVAL_SECS}\n\n\
             [client.transport]\n\
             type = \"noise\"\n\n\
             [client.transport.noise]\n\
             pattern = \"{NOISE_PATTERN}\"\n\
             remote_public_key = {key}\n\n\
             [client.services.{service}]\n\
             token = {token}\n\
             local_addr = \"{local}\"\n",
            server = toml_str(&self.server),
            key = toml_str(self.server_public_key.trim()),
            service = self.service,
            token = toml_str(token),
        )
    }
}

/// A TOML basic string.
pub fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// What one line of rathole's output says about the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineSays {
    /// The control channel to the server is up (authenticated, Noise handshake done).
    Connected,
    /// The control channel failed or closed; why, for a person.
    Failed(String),
    /// Nothing about the link.
    Nothing,
}

/// Reads one line of rathole's log (`<time> <LEVEL> <span>: rathole::client: <message>`).
pub fn interpret_line(line: &str) -> LineSays {
    if line.contains("Control channel established") {
        return LineSays::Connected;
    }
    if line.contains("Control channel shutdown") {
        return LineSays::Failed("rathole closed its control channel to the relay server".into());
    }
    const FAILED: &str = "Failed to run the control channel: ";
    if let Some(at) = line.find(FAILED) {
        let words = &line[at + FAILED.len()..];
        let words = words.split(". Retry in").next().unwrap_or(words).trim();
        return LineSays::Failed(explain(words));
    }
    LineSays::Nothing
}

/// rathole's error chain, with what it most likely means first.
pub fn explain(words: &str) -> String {
    let words: String = words.chars().take(300).collect();
    let lower = words.to_ascii_lowercase();
    let meaning = if lower.contains("noise handshake") {
        "the Noise handshake with the relay server failed: its key is not [rathole].server_public_key \
         (compare with the public key `argus-relay selfhost init` printed), or it is not the \
         rathole server"
    } else if lower.contains("authentication failed") {
        "the relay server refused the service token ([rathole].token differs from the token in \
         the server's rathole.toml)"
    } else if lower.contains("connection refused") {
        "nothing accepts connections at the relay server's address (is rathole running on the \
         VPS, and its port open?)"
    } else if lower.contains("heartbeat timed out") {
        "the relay server stopped sending heartbeats (network or server down)"
    } else if lower.contains("failed to lookup") || lower.contains("failed to resolve") {
        "the relay server's name does not resolve"
    } else {
        "the control channel to the relay server failed"
    };
    format!("{meaning}; rathole says: {words}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "yQpXB5BspCKpOMkzWxVCiL7rwa0z7Xfvwl8D6v5B9zw=";

    fn cfg() -> RatholeConfig {
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

    #[test]
    fn the_client_file_pins_the_key_and_forwards_to_the_tunnel_listener() {
        let text = cfg().client_toml("127.0.0.1:8470".parse().unwrap());
        let doc: toml::Value = toml::from_str(&text).unwrap();
        let client = &doc["client"];
        assert_eq!(
            client["remote_addr"].as_str(),
            Some("relay.example.org:2333")
        );
        assert_eq!(client["transport"]["type"].as_str(), Some("noise"));
        assert_eq!(
            client["transport"]["noise"]["remote_public_key"].as_str(),
            Some(KEY)
        );
        assert_eq!(
            client["transport"]["noise"]["pattern"].as_str(),
            Some(NOISE_PATTERN)
        );
        let svc = &client["services"]["argus"];
        assert_eq!(svc["token"].as_str(), Some("0123456789abcdef0123"));
        assert_eq!(svc["local_addr"].as_str(), Some("127.0.0.1:8470"));
    }

    #[test]
    fn log_lines_say_connected_or_why_not() {
        assert_eq!(
            interpret_line(
                "2026-12-05T00:00:00.1Z  INFO handle{service=argus}:run: rathole::client: \
                 Control channel established"
            ),
            LineSays::Connected
        );
        let LineSays::Failed(why) = interpret_line(
            "2026-12-05T00:00:00.1Z ERROR handle{service=argus}: rathole::client: Failed to run \
             the control channel: Failed to do noise handshake: Connection reset by peer (os \
             error 104). Retry in 1s...",
        ) else {
            panic!()
        };
        assert!(why.starts_with("the Noise handshake"), "{why}");
        assert!(why.ends_with("(os error 104)"), "{why}");
        let LineSays::Failed(why) = interpret_line(
            "ERROR rathole::client: Failed to run the control channel: Failed to connect to \
             10.0.0.1:2333: Connection refused (os error 111). Retry in 2s...",
        ) else {
            panic!()
        };
        assert!(why.starts_with("nothing accepts connections"), "{why}");
        assert_eq!(
            interpret_line("INFO rathole::client: Starting 5f2a"),
            LineSays::Nothing
        );
    }
}
