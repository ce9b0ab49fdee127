//! `argus-relay tunnel config` (and `init --tunnel-token/--tunnel-id`): connects the agent to a
//! Cloudflare Tunnel.
//!
//! - `--tunnel-token T` (or `--tunnel-token-file F`, or `ARGUS_RELAY_TUNNEL_TOKEN`): a remotely
//!   managed tunnel (created in the Cloudflare dashboard, whose ingress is set there). The token is
//!   stored in the agent's configuration (0600) and handed to cloudflared in its environment.
//! - `--tunnel-id ID [--tunnel-credentials FILE]`: a locally managed tunnel
//!   (`cloudflared tunnel create`); writes cloudflared's `config.yml`
//!   ([`crate::domain::tunnel::cloudflared_config`]): the hostname → the agent's tunnel listener, anything
//!   else → 404, metrics on loopback.
//!
//! Either way the `[cloudflared]` section of the agent's configuration is set (edited in place;
//! the rest of the file, comments included, is kept) so `argus-relay run` supervises cloudflared,
//! or — `--observe-only` — only watches one that runs on its own.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::CliError;
use crate::base::config::cloudflared::CloudflaredConfig;
use crate::base::config::AgentConfig;
use crate::domain::tunnel::cloudflared_config::{self, LocalTunnel};

/// cloudflared's configuration file name, beside the agent's by default.
pub const CLOUDFLARED_CONFIG_FILE: &str = "cloudflared.yml";

#[derive(Debug, clap::Subcommand)]
pub enum TunnelCommand {
    /// Connect the agent to a Cloudflare Tunnel: set [cloudflared] in the configuration and, for a
    /// locally managed tunnel, write cloudflared's config.yml.
    Config(TunnelConfigArgs),
}

#[derive(Debug, clap::Args)]
pub struct TunnelConfigArgs {
    #[command(flatten)]
    pub config: super::ConfigArg,
    #[command(flatten)]
    pub tunnel: TunnelSetupArgs,
    /// Where to write cloudflared's config.yml (with --tunnel-id). Default: beside the agent's
    /// configuration file.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// The tunnel flags `init` and `tunnel config` share.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TunnelSetupArgs {
    /// A remotely managed tunnel's token (Cloudflare dashboard → Zero Trust → Networks → Tunnels).
    #[arg(
        long,
        env = "ARGUS_RELAY_TUNNEL_TOKEN",
        hide_env_values = true,
        conflicts_with_all = ["tunnel_token_file", "tunnel_id"]
    )]
    pub tunnel_token: Option<String>,
    /// A file holding the tunnel token (keeps it out of the shell history).
    #[arg(long, conflicts_with = "tunnel_id")]
    pub tunnel_token_file: Option<PathBuf>,
    /// A locally managed tunnel's UUID or name (`cloudflared tunnel create argus-relay`).
    #[arg(long)]
    pub tunnel_id: Option<String>,
    /// The locally managed tunnel's credentials file. Default: <ID>.json beside the agent's
    /// configuration (copy it there from ~/.cloudflared/).
    #[arg(long, requires = "tunnel_id")]
    pub tunnel_credentials: Option<PathBuf>,
    /// The tunnel's public hostname, e.g. tunnel.example.com (the Worker's ORIGIN_URL).
    #[arg(long)]
    pub tunnel_hostname: Option<String>,
    /// cloudflared's metrics address, where the agent reads /ready (loopback).
    #[arg(long)]
    pub tunnel_metrics: Option<SocketAddr>,
    /// The cloudflared binary (path, or a name on PATH).
    #[arg(long)]
    pub cloudflared_binary: Option<PathBuf>,
    /// cloudflared runs on its own (its own systemd unit or container): only watch its /ready.
    #[arg(long)]
    pub observe_only: bool,
}

impl TunnelSetupArgs {
    /// Whether any tunnel flag was given.
    pub fn given(&self) -> bool {
        self.tunnel_token.is_some()
            || self.tunnel_token_file.is_some()
            || self.tunnel_id.is_some()
            || self.tunnel_hostname.is_some()
            || self.tunnel_metrics.is_some()
            || self.cloudflared_binary.is_some()
            || self.observe_only
    }
}

fn normalize_hostname(h: &str) -> String {
    h.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The given flags that say otherwise than an existing `[cloudflared]` section (so that
/// re-running `init` with the same flags, or with `ARGUS_RELAY_TUNNEL_TOKEN` set, changes
/// nothing and is not an error).
pub fn differences(
    existing: &CloudflaredConfig,
    setup: &TunnelSetupArgs,
) -> Result<Vec<&'static str>, CliError> {
    let mut out = Vec::new();
    let token = match (&setup.tunnel_token, &setup.tunnel_token_file) {
        (Some(t), _) => Some(t.trim().to_owned()),
        (None, Some(f)) => Some(read_token_file(f)?),
        (None, None) => None,
    };
    if token.is_some() && token != existing.token {
        out.push(if setup.tunnel_token.is_some() {
            "--tunnel-token"
        } else {
            "--tunnel-token-file"
        });
    }
    if setup.tunnel_id.is_some() && existing.config.is_none() {
        out.push("--tunnel-id");
    }
    if setup
        .tunnel_hostname
        .as_deref()
        .is_some_and(|h| Some(normalize_hostname(h)) != existing.hostname)
    {
        out.push("--tunnel-hostname");
    }
    if setup.tunnel_metrics.is_some_and(|m| m != existing.metrics) {
        out.push("--tunnel-metrics");
    }
    if setup
        .cloudflared_binary
        .as_ref()
        .is_some_and(|b| *b != existing.binary)
    {
        out.push("--cloudflared-binary");
    }
    if setup.observe_only && existing.enabled {
        out.push("--observe-only");
    }
    Ok(out)
}

fn absolute(p: &Path) -> Result<PathBuf, CliError> {
    if p.is_absolute() {
        Ok(p.to_owned())
    } else {
        Ok(std::env::current_dir()
            .map_err(|e| CliError::Failed(format!("current directory: {e}")))?
            .join(p))
    }
}

fn read_token_file(path: &Path) -> Result<String, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    let token = text.trim().to_owned();
    if token.is_empty() {
        return Err(CliError::Usage(format!("{} is empty", path.display())));
    }
    Ok(token)
}

/// Writes `bytes` to `path` atomically (temp file + rename) with `mode`.
fn replace_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CliError> {
    let failed = |e: std::io::Error| CliError::Failed(format!("{}: {e}", path.display()));
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(failed)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(failed)
}

/// Sets `[cloudflared]` in the configuration text, keeping everything else as it is.
pub fn with_section(text: &str, section: &CloudflaredConfig) -> Result<String, CliError> {
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| CliError::Failed(format!("the configuration does not parse: {e}")))?;
    let table = toml_edit::ser::to_document(section)
        .map_err(|e| CliError::Failed(format!("cannot write [cloudflared]: {e}")))?;
    doc["cloudflared"] = toml_edit::Item::Table(table.as_table().clone());
    Ok(doc.to_string())
}

/// Applies the tunnel flags to the configuration file (and writes cloudflared's config.yml for a
/// locally managed tunnel). Returns what to tell the owner.
pub fn apply(
    config_path: &Path,
    setup: &TunnelSetupArgs,
    output: Option<&Path>,
) -> Result<String, CliError> {
    let text = std::fs::read_to_string(config_path).map_err(|source| {
        CliError::Config(crate::base::config::ConfigError::Read {
            path: config_path.into(),
            source,
        })
    })?;
    // The file as written (no environment overrides), and as the agent will run it.
    let raw = AgentConfig::from_toml_with_env(&text, config_path, |_| None)?;
    let effective = AgentConfig::load(config_path)?;

    let mut c = raw.cloudflared.clone().unwrap_or_default();
    c.enabled = !setup.observe_only;
    if let Some(h) = &setup.tunnel_hostname {
        c.hostname = Some(normalize_hostname(h));
    }
    if let Some(m) = setup.tunnel_metrics {
        c.metrics = m;
    }
    if let Some(b) = &setup.cloudflared_binary {
        c.binary = b.clone();
    }
    let token = match (&setup.tunnel_token, &setup.tunnel_token_file) {
        (Some(t), _) => Some(t.trim().to_owned()),
        (None, Some(f)) => Some(read_token_file(f)?),
        (None, None) => None,
    };
    let mut notes = Vec::new();
    let mut yml_written = None;
    if let Some(token) = token {
        c.token = Some(token);
        c.config = None;
    } else if let Some(id) = &setup.tunnel_id {
        let hostname = c.hostname.clone().ok_or_else(|| {
            CliError::Usage(
                "--tunnel-hostname is required with --tunnel-id (the hostname cloudflared routes \
                 to the agent)"
                    .into(),
            )
        })?;
        let config_dir = absolute(config_path)?
            .parent()
            .map(Path::to_owned)
            .unwrap_or_else(|| PathBuf::from("/"));
        let credentials = match &setup.tunnel_credentials {
            Some(p) => absolute(p)?,
            None => config_dir.join(format!("{id}.json")),
        };
        let out = match output {
            Some(p) => absolute(p)?,
            None => config_dir.join(CLOUDFLARED_CONFIG_FILE),
        };
        let yml = cloudflared_config::render(&LocalTunnel {
            tunnel_id: id,
            credentials_file: &credentials,
            hostname: &hostname,
            service: effective.tunnel.listen,
            metrics: c.metrics,
        })
        .map_err(|e| CliError::Usage(e.to_string()))?;
        replace_file(&out, yml.as_bytes(), 0o644)?;
        if !credentials.exists() {
            notes.push(format!(
                "The credentials file {} does not exist yet: copy it from ~/.cloudflared/{id}.json \
                 (made by `cloudflared tunnel create`), readable by the agent's user only.",
                credentials.display()
            ));
        }
        notes.push(format!(
            "Point the hostname at the tunnel: cloudflared tunnel route dns {id} {hostname}"
        ));
        c.config = Some(out.clone());
        c.token = None;
        yml_written = Some(out);
    } else if c.enabled && c.token.is_none() && c.config.is_none() {
        return Err(CliError::Usage(
            "give --tunnel-token (a tunnel made in the Cloudflare dashboard), --tunnel-id (one made \
             with `cloudflared tunnel create`), or --observe-only (cloudflared runs on its own)"
                .into(),
        ));
    }
    if setup.observe_only {
        // The separately run cloudflared holds its own token or configuration.
        c.token = None;
        c.config = None;
    }
    c.validate()?;

    let new_text = with_section(&text, &c)?;
    // The whole file must still be a valid configuration before it replaces the old one.
    AgentConfig::from_toml_with_env(&new_text, config_path, |_| None)?;
    replace_file(config_path, new_text.as_bytes(), 0o600)?;

    let mut out = String::new();
    if let Some(yml) = &yml_written {
        out.push_str(&format!("Wrote {}\n", yml.display()));
    }
    out.push_str(&format!(
        "Set [cloudflared] in {}: {}\n",
        config_path.display(),
        match (c.enabled, &c.token, &c.config) {
            (false, _, _) => format!(
                "cloudflared runs on its own; the agent watches its /ready at {}",
                c.metrics
            ),
            (true, Some(_), _) => "the agent runs cloudflared with the tunnel token".to_owned(),
            (true, None, Some(p)) => format!("the agent runs cloudflared with {}", p.display()),
            (true, None, None) => "incomplete".to_owned(),
        }
    ));
    if c.token.is_some() {
        notes.push(format!(
            "In the Cloudflare dashboard (Zero Trust → Networks → Tunnels → your tunnel → Public \
             Hostname) route {} to service http://{} — nothing else.",
            c.hostname.as_deref().unwrap_or("<your tunnel hostname>"),
            effective.tunnel.listen
        ));
    }
    notes.push(format!(
        "The Worker's ORIGIN_URL is https://{} (`argus-relay worker-config` prints it).",
        c.hostname.as_deref().unwrap_or("<your tunnel hostname>")
    ));
    notes.push(
        "Restart the agent (`systemctl restart argus-relay`), then check with `argus-relay doctor`."
            .into(),
    );
    out.push('\n');
    for n in notes {
        out.push_str(&format!("- {n}\n"));
    }
    Ok(out)
}

pub fn run(cmd: TunnelCommand) -> Result<(), CliError> {
    match cmd {
        TunnelCommand::Config(a) => {
            let report = apply(&a.config.config, &a.tunnel, a.output.as_deref())?;
            print!("{report}");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "# my relay\ndata_dir = \"/var/lib/argus-relay\"\npublic_url = \"https://relay.example.com\"\n\n[backend]\n# ArgusAI next door\nurl = \"http://127.0.0.1:8000\"\n";

    fn setup(dir: &Path) -> PathBuf {
        let p = dir.join("config.toml");
        std::fs::write(&p, BASE).unwrap();
        p
    }

    #[test]
    fn a_token_sets_the_section_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let p = setup(dir.path());
        let report = apply(
            &p,
            &TunnelSetupArgs {
                tunnel_token: Some("eyJhIjoiYiJ9".into()),
                tunnel_hostname: Some("Tunnel.Example.com".into()),
                ..TunnelSetupArgs::default()
            },
            None,
        )
        .unwrap();
        assert!(
            report.contains("route tunnel.example.com to service http://127.0.0.1:8470"),
            "{report}"
        );
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with("# my relay\n"), "{text}");
        assert!(text.contains("# ArgusAI next door"), "{text}");
        let cfg = AgentConfig::from_toml_with_env(&text, &p, |_| None).unwrap();
        let c = cfg.cloudflared.unwrap();
        assert!(c.enabled);
        assert_eq!(c.token.as_deref(), Some("eyJhIjoiYiJ9"));
        assert_eq!(c.hostname.as_deref(), Some("tunnel.example.com"));
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_tunnel_id_writes_cloudflared_config() {
        let dir = tempfile::tempdir().unwrap();
        let p = setup(dir.path());
        let report = apply(
            &p,
            &TunnelSetupArgs {
                tunnel_id: Some("6ff42ae2-765d-4adf-8112-31c55c1551ef".into()),
                tunnel_hostname: Some("tunnel.example.com".into()),
                tunnel_metrics: Some("127.0.0.1:20242".parse().unwrap()),
                ..TunnelSetupArgs::default()
            },
            None,
        )
        .unwrap();
        let yml_path = dir.path().join(CLOUDFLARED_CONFIG_FILE);
        let yml = std::fs::read_to_string(&yml_path).unwrap();
        assert!(yml.contains("service: \"http://127.0.0.1:8470\""), "{yml}");
        assert!(yml.contains("metrics: \"127.0.0.1:20242\""), "{yml}");
        assert!(report.contains("does not exist yet"), "{report}");
        assert!(report.contains("cloudflared tunnel route dns"), "{report}");
        let cfg = AgentConfig::load(&p).unwrap();
        let c = cfg.cloudflared.unwrap();
        assert_eq!(c.config.as_deref(), Some(yml_path.as_path()));
        assert!(c.token.is_none());

        // Switching to a token drops the config file reference.
        apply(
            &p,
            &TunnelSetupArgs {
                tunnel_token: Some("tok".into()),
                ..TunnelSetupArgs::default()
            },
            None,
        )
        .unwrap();
        let c = AgentConfig::load(&p).unwrap().cloudflared.unwrap();
        assert_eq!((c.token.as_deref(), c.config), (Some("tok"), None));
        assert_eq!(c.metrics.port(), 20242, "earlier settings are kept");
    }

    #[test]
    fn nothing_to_go_on_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = setup(dir.path());
        let e = apply(&p, &TunnelSetupArgs::default(), None).unwrap_err();
        assert!(matches!(e, CliError::Usage(_)), "{e}");
        let e = apply(
            &p,
            &TunnelSetupArgs {
                tunnel_id: Some("abc".into()),
                ..TunnelSetupArgs::default()
            },
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("--tunnel-hostname"), "{e}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), BASE, "untouched");
    }

    #[test]
    fn the_same_flags_again_are_no_difference() {
        let dir = tempfile::tempdir().unwrap();
        let p = setup(dir.path());
        let flags = TunnelSetupArgs {
            tunnel_token: Some("tok".into()),
            tunnel_hostname: Some("tunnel.example.com".into()),
            ..TunnelSetupArgs::default()
        };
        apply(&p, &flags, None).unwrap();
        let c = AgentConfig::load(&p).unwrap().cloudflared.unwrap();
        assert!(differences(&c, &flags).unwrap().is_empty());
        let other = TunnelSetupArgs {
            tunnel_token: Some("other".into()),
            observe_only: true,
            ..TunnelSetupArgs::default()
        };
        assert_eq!(
            differences(&c, &other).unwrap(),
            ["--tunnel-token", "--observe-only"]
        );
    }

    #[test]
    fn observe_only_needs_no_token() {
        let dir = tempfile::tempdir().unwrap();
        let p = setup(dir.path());
        apply(
            &p,
            &TunnelSetupArgs {
                observe_only: true,
                ..TunnelSetupArgs::default()
            },
            None,
        )
        .unwrap();
        let c = AgentConfig::load(&p).unwrap().cloudflared.unwrap();
        assert!(!c.enabled);
    }
}
