//! Which program carries the tunnel, and everything that differs between them; the supervisor
//! ([`super::supervisor`]) and the state machine ([`super::machine`]) are the same for both.
//!
//! | | cloudflared (`[cloudflared]`) | rathole (`[rathole]`, the self-hosted relay) |
//! |---|---|---|
//! | command | `cloudflared tunnel … run`, token in its environment | `rathole --client FILE` (0600 file in the data directory) |
//! | proof of a connection | `GET /ready` on its metrics address | its "Control channel established" log line |
//! | why not connected | `/ready` says 503 | its last "Failed to run the control channel" line |
//! | modes | supervised or observed | supervised |

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::machine::{Mode, Naming, Timing};
use super::rathole::{RatholeConfig, CLIENT_CONFIG_FILE};
use super::CloudflaredConfig;

/// How often rathole's latest log verdict is read (a memory read, no I/O).
const RATHOLE_PROBE_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Debug, Clone)]
pub enum TunnelProvider {
    Cloudflared(CloudflaredConfig),
    Rathole {
        cfg: RatholeConfig,
        /// The agent's tunnel listener: where rathole forwards the service.
        local: SocketAddr,
        /// Where the client configuration is written before each start.
        config_file: PathBuf,
    },
}

/// A program's command line and environment.
pub struct CommandLine {
    pub args: Vec<OsString>,
    pub env: Vec<(&'static str, String)>,
}

impl TunnelProvider {
    /// The provider the agent's configuration names, if any (`[cloudflared]` or `[rathole]`;
    /// both at once is refused by the configuration's validation).
    pub fn of(cfg: &crate::base::config::AgentConfig) -> Option<TunnelProvider> {
        if let Some(r) = &cfg.rathole {
            return Some(TunnelProvider::Rathole {
                cfg: r.clone(),
                local: cfg.tunnel.listen,
                config_file: cfg.data_dir.join(CLIENT_CONFIG_FILE),
            });
        }
        cfg.cloudflared.clone().map(TunnelProvider::Cloudflared)
    }

    pub fn name(&self) -> &'static str {
        self.naming().program
    }

    pub fn naming(&self) -> Naming {
        match self {
            TunnelProvider::Cloudflared(_) => Naming::CLOUDFLARED,
            TunnelProvider::Rathole { .. } => Naming::RATHOLE,
        }
    }

    pub fn mode(&self) -> Mode {
        match self {
            TunnelProvider::Cloudflared(c) => c.mode(),
            TunnelProvider::Rathole { .. } => Mode::Supervised,
        }
    }

    pub fn timing(&self) -> Timing {
        match self {
            TunnelProvider::Cloudflared(c) => c.timing(),
            TunnelProvider::Rathole { cfg, .. } => cfg.timing(),
        }
    }

    pub fn probe_interval(&self) -> Duration {
        match self {
            TunnelProvider::Cloudflared(c) => c.probe_interval(),
            TunnelProvider::Rathole { .. } => RATHOLE_PROBE_INTERVAL,
        }
    }

    pub fn stop_timeout(&self) -> Duration {
        match self {
            TunnelProvider::Cloudflared(c) => c.stop_timeout(),
            TunnelProvider::Rathole { cfg, .. } => cfg.stop_timeout(),
        }
    }

    pub fn binary(&self) -> &Path {
        match self {
            TunnelProvider::Cloudflared(c) => &c.binary,
            TunnelProvider::Rathole { cfg, .. } => &cfg.binary,
        }
    }

    /// cloudflared's metrics address (its `/ready`); rathole has none.
    pub fn metrics(&self) -> Option<SocketAddr> {
        match self {
            TunnelProvider::Cloudflared(c) => Some(c.metrics),
            TunnelProvider::Rathole { .. } => None,
        }
    }

    /// Where the tunnel ends on the far side: cloudflared's public hostname, or the rathole
    /// server's address.
    pub fn far_end(&self) -> Option<String> {
        match self {
            TunnelProvider::Cloudflared(c) => c.hostname.clone(),
            TunnelProvider::Rathole { cfg, .. } => Some(cfg.server.clone()),
        }
    }

    /// Everything to do right before a start, and the command line: cloudflared's metrics
    /// address must be free (else its readiness could not be told apart); rathole's client file
    /// is written (0600: it holds the service token).
    pub fn prepare(&self) -> Result<CommandLine, String> {
        match self {
            TunnelProvider::Cloudflared(cfg) => {
                if let Err(e) = std::net::TcpListener::bind(cfg.metrics) {
                    return Err(if e.kind() == std::io::ErrorKind::AddrInUse {
                        format!(
                            "its metrics address {} is already in use (is another cloudflared \
                             still running?); its readiness could not be told apart",
                            cfg.metrics
                        )
                    } else {
                        format!("its metrics address {} cannot be used: {e}", cfg.metrics)
                    });
                }
                let (args, env) = super::supervisor::command_line(cfg);
                Ok(CommandLine { args, env })
            }
            TunnelProvider::Rathole {
                cfg,
                local,
                config_file,
            } => {
                crate::base::private_file::replace_file(
                    config_file,
                    cfg.client_toml(*local).as_bytes(),
                    0o600,
                )
                .map_err(|e| {
                    format!(
                        "its configuration {} could not be written: {e}",
                        config_file.display()
                    )
                })?;
                Ok(CommandLine {
                    args: vec!["--client".into(), config_file.clone().into_os_string()],
                    // rathole's log lines are read by the agent: no colours.
                    env: vec![("NO_COLOR", "1".to_owned())],
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn rathole_gets_a_private_client_file_and_no_secret_on_its_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(CLIENT_CONFIG_FILE);
        let p = TunnelProvider::Rathole {
            cfg: RatholeConfig {
                token: Some("secret-token-0123456789".into()),
                ..RatholeConfig::new(
                    "10.0.0.1:2333".into(),
                    "yQpXB5BspCKpOMkzWxVCiL7rwa0z7Xfvwl8D6v5B9zw=".into(),
                )
            },
            local: "127.0.0.1:8470".parse().unwrap(),
            config_file: file.clone(),
        };
        let line = p.prepare().unwrap();
        let args: Vec<String> = line
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args, ["--client", file.to_str().unwrap()]);
        assert!(!line.env.iter().any(|(_, v)| v.contains("secret-token")));
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("secret-token-0123456789"));
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(p.mode(), Mode::Supervised);
        assert_eq!(p.metrics(), None);
        // A second start rewrites it.
        p.prepare().unwrap();
    }
}
