//! What the phone keeps between runs: its tokens, the relay URL, the server's identity and the
//! last LAN address that proved itself. One JSON file, 0600, replaced atomically.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use argus_shared::pair_uri::check_relay_url;

use super::pin::Pin;
use super::ClientError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientState {
    /// Where the relay is (the Worker's public URL).
    pub relay_url: String,
    pub device_id: String,
    pub access_token: String,
    /// Unix time the access token expires (from `expires_in` at issue).
    pub access_expires_at: u64,
    pub refresh_token: String,
    /// The LAN certificate pin, `sha256:<hex>`.
    pub fingerprint: String,
    /// The server's instance id (`/api/v1/health`), checked on the LAN with the pin.
    pub instance_id: String,
    /// The last LAN address that passed the pin and identity checks (tried first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_lan: Option<SocketAddr>,
    /// The agent's Oblivious HTTP key pin (sealed mode), from pairing; updated, after a key
    /// rotation, from inside a sealed answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ohttp_keys_sha256: Option<String>,
}

impl ClientState {
    pub fn pin(&self) -> Result<Pin, ClientError> {
        Ok(Pin::parse(&self.fingerprint)?)
    }

    pub fn load(path: &Path) -> Result<ClientState, ClientError> {
        let fail = |message: String| ClientError::State {
            path: path.to_owned(),
            message,
        };
        let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        let state: ClientState =
            serde_json::from_slice(&bytes).map_err(|e| fail(format!("not a client state: {e}")))?;
        state.pin().map_err(|e| fail(e.to_string()))?;
        check_relay_url(&state.relay_url).map_err(|e| fail(e.to_string()))?;
        Ok(state)
    }

    /// Writes the state (0600) next to `path`, then renames it into place.
    pub fn save(&self, path: &Path) -> Result<(), ClientError> {
        let fail = |message: String| ClientError::State {
            path: path.to_owned(),
            message,
        };
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| fail(e.to_string()))?;
        let name = path
            .file_name()
            .ok_or_else(|| fail("not a file name".into()))?
            .to_string_lossy();
        let tmp = path.with_file_name(format!(".{name}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| fail(e.to_string()))?;
        f.write_all(&bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| fail(e.to_string()))?;
        std::fs::rename(&tmp, path).map_err(|e| fail(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ClientState {
        ClientState {
            relay_url: "https://relay.example.com".into(),
            device_id: "dev_1".into(),
            access_token: "a.b.c".into(),
            access_expires_at: 1_700_000_000,
            refresh_token: "art1_x".into(),
            fingerprint: format!("sha256:{}", "ab".repeat(32)),
            instance_id: "0011223344556677".into(),
            last_lan: Some("192.168.1.5:8443".parse().unwrap()),
            ohttp_keys_sha256: None,
        }
    }

    #[test]
    fn saves_privately_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("phone.json");
        sample().save(&path).unwrap();
        sample().save(&path).unwrap();
        assert_eq!(ClientState::load(&path).unwrap(), sample());
        let mode = std::fs::metadata(&path).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );
    }

    #[test]
    fn refuses_a_state_with_a_bad_pin_or_relay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("phone.json");
        let mut s = sample();
        s.fingerprint = "sha256:00".into();
        s.save(&path).unwrap();
        assert!(ClientState::load(&path).is_err());
        let mut s = sample();
        s.relay_url = "http://203.0.113.9".into();
        s.save(&path).unwrap();
        assert!(ClientState::load(&path).is_err());
    }
}
