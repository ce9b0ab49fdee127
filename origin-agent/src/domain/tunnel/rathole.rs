//! rathole, the tunnel of the self-hosted relay (docs/selfhost.md): the client configuration the
//! agent writes for it, its timing, and what its log lines prove.
//!
//! The `[rathole]` section is [`crate::base::config::rathole`].
//!
//! The agent runs `rathole --client FILE`, FILE being `rathole-client.toml` in the data directory
//! (0600, written before every start), with Noise `Noise_NK_25519_ChaChaPoly_BLAKE2s`: the client
//! only completes the handshake with the holder of the pinned server key, and the server only
//! forwards for the holder of the token. rathole has no readiness endpoint: its own log lines
//! ([`interpret_line`]) are the proof — "Control channel established" is the only thing that
//! makes the agent say connected; every failure line says why, in the status and in `doctor`.

use std::net::SocketAddr;
use std::time::Duration;

use super::backoff::Backoff;
use super::machine::Timing;
pub use crate::base::config::rathole::{RatholeConfig, DEFAULT_SERVICE};

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
impl RatholeConfig {
    pub fn timing(&self) -> Timing {
        Timing {
            ready_timeout: Duration::from_secs(self.ready_timeout_secs),
            // rathole's state is read from its own output: there is no endpoint that could hang.
            unresponsive_timeout: Duration::MAX,
            stable_after: Timing::default().stable_after,
            backoff: Backoff::DEFAULT,
        }
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
    use crate::base::config::rathole::tests::{cfg, KEY};

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
