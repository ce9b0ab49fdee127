//! `argus-relay client …`: the reference phone client ([`argus_client`]) on the command line,
//! for trying a deployment and for the end-to-end tests. Every command prints one JSON object on
//! stdout; logs go to stderr (`RUST_LOG`, default `warn`).
//!
//! ```text
//! argus-relay client pair --state phone.json --uri 'argusai://pair?code=…&url=…&fp=sha256:…' [--lan]
//! argus-relay client discover
//! argus-relay client route --state phone.json
//! argus-relay client get --state phone.json /api/v1/events?limit=5
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;

use super::CliError;
use argus_client::browse::{self, BrowseConfig};
use argus_client::pairing::{self, DeviceInfo, LanPairing};
use argus_client::{ClientError, ClientState, Session, SessionOptions};
use argus_shared::mdns::PORT as MDNS_PORT;
use argus_shared::pair_uri::PairUri;

#[derive(Debug, clap::Subcommand)]
pub enum ClientCommand {
    /// Pair with the owner's code (the QR link) and save the device's state.
    Pair(PairArgs),
    /// List the argus-relay servers advertised on the LAN (mDNS), unverified.
    Discover(DiscoverArgs),
    /// Choose the way to the server (LAN if one proves the pinned identity, else the relay).
    Route(RouteArgs),
    /// GET a path with the device token over the chosen route.
    Get(GetArgs),
}

#[derive(Debug, clap::Args)]
pub struct MdnsArgs {
    /// Browse on this interface only (repeatable; default: every interface).
    #[arg(long = "mdns-interface", value_name = "NAME")]
    pub interfaces: Vec<String>,
    /// The mDNS port (5353 on real networks).
    #[arg(long, default_value_t = MDNS_PORT)]
    pub mdns_port: u16,
    /// Do not browse (use the last LAN address and the relay only).
    #[arg(long)]
    pub no_mdns: bool,
}

impl MdnsArgs {
    fn browse(&self) -> Option<BrowseConfig> {
        (!self.no_mdns).then(|| BrowseConfig {
            interfaces: self.interfaces.clone(),
            mdns_port: self.mdns_port,
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct PairArgs {
    /// Where to keep the device's state (tokens, relay URL, server identity); created 0600.
    #[arg(long)]
    pub state: PathBuf,
    /// The pairing link: argusai://pair?code=…&url=…&fp=sha256:…
    #[arg(long)]
    pub uri: String,
    /// Use this relay URL instead of the link's (https://, or http:// to loopback).
    #[arg(long)]
    pub relay_url: Option<String>,
    /// The device's name as the owner will see it.
    #[arg(long, default_value = "argus-relay client")]
    pub name: String,
    /// Look for the server on the LAN first (pairing then works without internet).
    #[arg(long)]
    pub lan: bool,
    /// How long to look on the LAN (milliseconds).
    #[arg(long, default_value_t = 2000)]
    pub lan_timeout_ms: u64,
    #[command(flatten)]
    pub mdns: MdnsArgs,
}

#[derive(Debug, clap::Args)]
pub struct DiscoverArgs {
    /// How long to listen (milliseconds).
    #[arg(long, default_value_t = 2000)]
    pub timeout_ms: u64,
    #[command(flatten)]
    pub mdns: MdnsArgs,
}

#[derive(Debug, clap::Args)]
pub struct RouteArgs {
    /// The device's state file (from `client pair`); token rotations are saved back to it.
    #[arg(long)]
    pub state: PathBuf,
    /// How long to look for the LAN before choosing the relay (milliseconds).
    #[arg(long, default_value_t = 2000)]
    pub discovery_timeout_ms: u64,
    /// Sealed mode: the request goes through the relay as Oblivious HTTP to the key pinned at
    /// pairing (the relay sees who and when, not what); never in clear, never over the LAN.
    #[arg(long)]
    pub sealed: bool,
    #[command(flatten)]
    pub mdns: MdnsArgs,
}

#[derive(Debug, clap::Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub route: RouteArgs,
    /// The path (and query), e.g. /api/v1/events?limit=5
    pub path: String,
}

fn failed(e: ClientError) -> CliError {
    CliError::Failed(e.to_string())
}

fn print(value: &serde_json::Value) {
    println!("{value}");
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

pub fn run(cmd: ClientCommand) -> Result<(), CliError> {
    init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Failed(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async move {
        match cmd {
            ClientCommand::Pair(a) => pair(a).await,
            ClientCommand::Discover(a) => discover(a).await,
            ClientCommand::Route(a) => route(a).await,
            ClientCommand::Get(a) => get(a).await,
        }
    })
}

async fn pair(a: PairArgs) -> Result<(), CliError> {
    if a.state.exists() {
        return Err(CliError::Usage(format!(
            "{} exists: this device is paired already (remove the file to pair again)",
            a.state.display()
        )));
    }
    let uri = PairUri::parse(&a.uri).map_err(|e| CliError::Usage(e.to_string()))?;
    let device = DeviceInfo {
        name: a.name,
        model: None,
        platform: Some("cli".into()),
        os_version: None,
        app_version: Some(env!("CARGO_PKG_VERSION").into()),
    };
    let lan = match (a.lan, a.mdns.browse()) {
        (true, Some(browse)) => Some(LanPairing {
            browse,
            timeout: Duration::from_millis(a.lan_timeout_ms),
        }),
        _ => None,
    };
    let paired = pairing::pair(&uri, a.relay_url.as_deref(), &device, lan.as_ref())
        .await
        .map_err(failed)?;
    paired.state.save(&a.state).map_err(failed)?;
    print(&json!({
        "paired": true,
        "device_id": paired.state.device_id,
        "relay_url": paired.state.relay_url,
        "fingerprint": paired.state.fingerprint,
        "instance_id": paired.state.instance_id,
        "via": if paired.via_lan.is_some() { "lan" } else { "relay" },
    }));
    Ok(())
}

async fn discover(a: DiscoverArgs) -> Result<(), CliError> {
    let Some(cfg) = a.mdns.browse() else {
        return Err(CliError::Usage(
            "discover needs mDNS (drop --no-mdns)".into(),
        ));
    };
    let found = browse::discover(&cfg, Duration::from_millis(a.timeout_ms))
        .await
        .map_err(|e| failed(e.into()))?;
    print(&json!({ "services": found }));
    Ok(())
}

async fn open(a: &RouteArgs) -> Result<(Session, Duration), CliError> {
    let state = ClientState::load(&a.state).map_err(failed)?;
    let session = Session::open(
        state,
        SessionOptions {
            browse: a.mdns.browse(),
            discovery_timeout: Duration::from_millis(a.discovery_timeout_ms),
            state_path: Some(a.state.clone()),
            sealed: a.sealed,
            ..SessionOptions::default()
        },
    )
    .map_err(failed)?;
    let started = Instant::now();
    if !a.sealed {
        session.resolve().await;
    }
    Ok((session, started.elapsed()))
}

async fn route(a: RouteArgs) -> Result<(), CliError> {
    let (session, took) = open(&a).await?;
    let mut out = session.route().to_json();
    out["resolve_ms"] = json!(took.as_millis() as u64);
    out["rejected"] = json!(session
        .rejections()
        .iter()
        .map(|(addr, why)| json!({"address": addr.to_string(), "reason": why.to_string()}))
        .collect::<Vec<_>>());
    print(&out);
    Ok(())
}

async fn get(a: GetArgs) -> Result<(), CliError> {
    let (session, _) = open(&a.route).await?;
    let resp = session.get(&a.path).await.map_err(failed)?;
    let mut out = resp.route.to_json();
    out["status"] = json!(resp.status);
    out["elapsed_ms"] = json!(resp.elapsed.as_secs_f64() * 1000.0);
    out["body"] = match serde_json::from_slice::<serde_json::Value>(&resp.body) {
        Ok(v) => v,
        Err(_) => json!(String::from_utf8_lossy(&resp.body)),
    };
    print(&out);
    if resp.status >= 400 {
        return Err(CliError::Failed(format!(
            "the server answered {}",
            resp.status
        )));
    }
    Ok(())
}
