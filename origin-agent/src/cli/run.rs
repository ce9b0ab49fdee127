//! `argus-relay run`: the agent itself — the tunnel listener (for cloudflared) and the admin
//! listener (for the owner), both on loopback, until SIGINT/SIGTERM, then a graceful drain.
//! With a `[cloudflared]` section it also runs (or watches) cloudflared ([`crate::domain::tunnel`]).
//!
//! When both listeners are bound it prints one JSON line on stdout,
//! `{"listening":{"tunnel":"127.0.0.1:8470","admin":"127.0.0.1:8471"}}`, for supervisors and
//! tests (plus `"lan":"ip:port"` and `"lan_http":"ip:port"` when the LAN listener runs, see
//! [`crate::listener::lan`]); logs go to stderr (`RUST_LOG`, default `info`; `ARGUS_RELAY_LOG_FORMAT=json` for JSON).

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::CliError;
use crate::application::state::AppState;
use crate::base::clock::unix_now;
use crate::base::config::AgentConfig;
use crate::listener::lan::LanListeners;
use crate::listener::{admin, edge};

/// How often keys are reloaded (retiring expired ones) and old pairing rows pruned.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60);
/// Dead pairing codes and expired refresh tokens are kept this long for the record.
const PRUNE_AFTER_SECS: i64 = 7 * 24 * 3600;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: super::ConfigArg,
    /// Overrides `tunnel.listen` (loopback only; port 0 picks a free port).
    #[arg(long)]
    pub tunnel_listen: Option<SocketAddr>,
    /// Overrides `admin.listen` (loopback only; port 0 picks a free port).
    #[arg(long)]
    pub admin_listen: Option<SocketAddr>,
    /// Serves the LAN listener (HTTPS, pinned certificate) on this address: overrides
    /// `lan.listen` and turns the LAN listener on (port 0 picks a free port).
    #[arg(long)]
    pub lan_listen: Option<SocketAddr>,
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let json = std::env::var("ARGUS_RELAY_LOG_FORMAT").is_ok_and(|v| v == "json");
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

pub fn run(args: RunArgs) -> Result<(), CliError> {
    crate::base::http::server::limit_malloc_arenas();
    init_tracing();
    let mut cfg = AgentConfig::load(&args.config.config)?;
    if let Some(a) = args.tunnel_listen {
        cfg.tunnel.listen = a;
    }
    if let Some(a) = args.admin_listen {
        cfg.admin.listen = a;
    }
    if let Some(a) = args.lan_listen {
        cfg.lan.listen = a;
        cfg.lan.enabled = true;
    }
    cfg.validate()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Failed(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(serve(cfg))
}

async fn serve(cfg: AgentConfig) -> Result<(), CliError> {
    let state =
        Arc::new(AppState::open(cfg).map_err(|e| CliError::Failed(format!("cannot start: {e}")))?);
    crate::base::metrics::METRICS.set_start_time(state.started_at);
    crate::base::http::server::raise_fd_limit();
    tokio::spawn(crate::base::http::server::return_freed_memory());
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|e| CliError::Failed(format!("cannot listen on {addr}: {e}")))
    };
    let tunnel_listener = bind(state.config.tunnel.listen).await?;
    let admin_listener = bind(state.config.admin.listen).await?;
    let tunnel_addr = tunnel_listener
        .local_addr()
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let admin_addr = admin_listener
        .local_addr()
        .map_err(|e| CliError::Failed(e.to_string()))?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let limits = state.config.limits.clone();
    let st = state.clone();
    let tunnel_task = tokio::spawn(crate::base::http::server::serve(
        "tunnel",
        tunnel_listener,
        limits.clone(),
        stop_rx.clone(),
        move |req, peer| edge::handle(st.clone(), req, peer),
    ));
    let st = state.clone();
    let admin_task = tokio::spawn(crate::base::http::server::serve(
        "admin",
        admin_listener,
        limits,
        stop_rx.clone(),
        move |req, peer| admin::handle(st.clone(), req, peer),
    ));
    let lan = if state.config.lan.enabled {
        Some(
            LanListeners::start(state.clone(), stop_rx.clone())
                .await
                .map_err(|e| CliError::Failed(format!("LAN listener: {e}")))?,
        )
    } else {
        None
    };
    let housekeeping = tokio::spawn(housekeeping(state.clone(), stop_rx.clone()));
    // The agent's ArgusAI session: renewed ahead of expiry; a new `backend login` is picked up.
    let backend_session = state
        .backend
        .session()
        .cloned()
        .map(|s| tokio::spawn(s.run(stop_rx.clone())));
    let cloudflared = crate::domain::tunnel::supervisor::start(
        state.config.cloudflared.clone(),
        state.tunnel.clone(),
        stop_rx,
    );

    let mut ready = serde_json::json!({"listening": {"tunnel": tunnel_addr, "admin": admin_addr}});
    if let Some(lan) = &lan {
        ready["listening"]["lan"] = serde_json::json!(lan.https);
        if let Some(plain) = lan.plain_http {
            ready["listening"]["lan_http"] = serde_json::json!(plain);
        }
    }
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{ready}");
        let _ = out.flush();
    }
    tracing::info!(
        tunnel = %tunnel_addr,
        admin = %admin_addr,
        backend = %state.config.backend.url,
        version = env!("CARGO_PKG_VERSION"),
        "argus-relay agent running"
    );

    shutdown_signal().await;
    tracing::info!("shutting down: draining connections");
    let mut lan = lan;
    if let Some(lan) = lan.as_mut() {
        lan.withdraw().await;
    }
    let _ = stop_tx.send(true);
    let lan_done = async {
        if let Some(lan) = lan {
            lan.finish().await;
        }
    };
    if let Some(task) = backend_session {
        task.abort();
    }
    let _ = tokio::join!(tunnel_task, admin_task, housekeeping, lan_done, cloudflared);
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

async fn housekeeping(state: Arc<AppState>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(HOUSEKEEPING_EVERY) => {}
        }
        let st = state.clone();
        let result = tokio::task::spawn_blocking(move || {
            let now = unix_now();
            if let Err(e) = st.keys.reload(&st.store, now) {
                tracing::error!(error = %e, "reloading keys failed");
            }
            st.store
                .prune(i64::try_from(now).unwrap_or(i64::MAX), PRUNE_AFTER_SECS)
        })
        .await;
        match result {
            Ok(Ok((codes, tokens))) if codes + tokens > 0 => {
                tracing::debug!(codes, tokens, "pruned old pairing codes and refresh tokens");
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "pruning failed"),
            _ => {}
        }
    }
}
