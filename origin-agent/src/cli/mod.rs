//! The `argus-relay` command line: one module per subcommand group.
//!
//! Owner commands that change a running agent's state (pairing, devices, keys) talk to its admin
//! API on loopback, authenticated with the admin token in the data directory; `init`,
//! `worker-config`, `policy check` and `config check` work on files alone.

mod admin_client;
pub mod backend;
pub mod client;
mod devices;
pub mod doctor;
pub mod init;
mod pairing;
mod run;
pub mod status;
pub mod tunnel;
mod worker_config;
// The Mobile Access page's sign-in link.
mod ui;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::base::config::{AgentConfig, ConfigError};

#[derive(Debug, Parser)]
#[command(
    name = "argus-relay",
    version,
    about = "Secure remote access to a self-hosted ArgusAI server: the origin agent and its owner tools."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Args)]
pub struct ConfigArg {
    /// The agent's configuration file (written by `argus-relay init`).
    #[arg(
        long,
        env = "ARGUS_RELAY_CONFIG",
        default_value = "/etc/argus-relay/config.toml"
    )]
    pub config: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the configuration and data directory (keys, secrets, LAN certificate). Safe to re-run.
    Init(init::InitArgs),
    /// Run the agent: the tunnel listener for cloudflared and the admin listener, on loopback
    /// (and the LAN listener when `[lan] enabled`).
    Run(run::RunArgs),
    /// Print what the edge Worker needs: its [vars] and its secret.
    WorkerConfig(worker_config::WorkerConfigArgs),
    /// Create a one-time pairing code and QR code, and wait for a phone to pair.
    Pair(pairing::PairArgs),
    /// List phone-initiated pairing requests waiting for the owner.
    Pending(pairing::PendingArgs),
    /// Confirm a phone-initiated pairing request.
    Confirm(pairing::DecideArgs),
    /// Deny a phone-initiated pairing request.
    Deny(pairing::DecideArgs),
    /// List paired devices.
    Devices(devices::ListArgs),
    /// Rename a device.
    Rename(devices::RenameArgs),
    /// Revoke a device: its tokens stop working at once.
    Revoke(devices::RevokeArgs),
    /// Print a one-time sign-in link to the Mobile Access page (pairing QR, devices, status).
    Ui(ui::UiArgs),
    /// Signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Relay policy tools.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// The reference phone client: pair, discover the server on the LAN, choose LAN or relay.
    Client {
        #[command(subcommand)]
        command: client::ClientCommand,
    },
    /// The Cloudflare Tunnel (cloudflared) the agent runs or watches.
    Tunnel {
        #[command(subcommand)]
        command: tunnel::TunnelCommand,
    },
    /// The running agent's status: tunnel, edge, backend, devices.
    Status(status::StatusArgs),
    /// Check the whole chain (public URL → Worker → tunnel → agent → ArgusAI) and say what to fix.
    Doctor(doctor::DoctorArgs),
    /// The agent's own ArgusAI session: `login` once (asked for by `init`), `logout`.
    Backend {
        #[command(subcommand)]
        command: backend::BackendCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a new signing key; tokens signed by the previous one stay valid until they expire.
    Rotate(ConfigArg),
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file (TOML) before deploying it.
    Check { file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the agent's configuration file (with environment overrides applied).
    Check(ConfigArg),
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
    #[error(
        "the agent's admin API is not reachable at {url}: {reason} (is `argus-relay run` running?)"
    )]
    AgentUnreachable { url: String, reason: String },
    #[error("the agent refused: {0}")]
    Refused(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) | CliError::Config(_) => 2,
            _ => 1,
        }
    }
}

pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Init(a) => init::init(a),
        Command::Run(a) => run::run(a),
        Command::WorkerConfig(a) => worker_config::worker_config(a),
        Command::Pair(a) => pairing::pair(a),
        Command::Pending(a) => pairing::pending(a),
        Command::Confirm(a) => pairing::decide(a, true),
        Command::Deny(a) => pairing::decide(a, false),
        Command::Devices(a) => devices::list(a),
        Command::Rename(a) => devices::rename(a),
        Command::Revoke(a) => devices::revoke(a),
        Command::Ui(a) => ui::ui(a),
        Command::Keys {
            command: KeysCommand::Rotate(a),
        } => devices::rotate_keys(a),
        Command::Policy {
            command: PolicyCommand::Check { file },
        } => policy_check(&file),
        Command::Client { command } => client::run(command),
        Command::Tunnel { command } => tunnel::run(command),
        Command::Status(a) => status::status(a),
        Command::Doctor(a) => doctor::doctor(a),
        Command::Backend { command } => backend::run(command),
        Command::Config {
            command: ConfigCommand::Check(a),
        } => {
            let cfg = AgentConfig::load(&a.config)?;
            println!(
                "{}: ok (backend {}, tunnel {}, admin {})",
                a.config.display(),
                cfg.backend.url,
                cfg.tunnel.listen,
                cfg.admin.listen
            );
            Ok(())
        }
    }
}

fn policy_check(file: &std::path::Path) -> Result<(), CliError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
    match argus_shared::policy::Policy::from_toml(&text) {
        Ok(_) => {
            println!("{}: ok", file.display());
            Ok(())
        }
        Err(e) => Err(CliError::Failed(format!("{}: {e}", file.display()))),
    }
}
