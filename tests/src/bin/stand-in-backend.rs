//! The stand-in ArgusAI backend as a process (for `make demo` and manual poking).
//!
//! ```text
//! stand-in-backend [--listen 127.0.0.1:8000] [--api-key KEY] [--session-token TOKEN]
//!                  [--photos DIR] [--openapi FILE] [--events N] [--seed N] [--no-record]
//!                  [--like-argusai | --api-key-verify-ms N] [--event-list-ms N]
//! ```
//! `--no-record` keeps no request log (for load tests: it would grow without bound).
//! `--like-argusai` models the real backend's costs: every `X-API-Key` check takes 250 ms
//! (bcrypt, cost 12) during which the whole stand-in answers nothing else;
//! `--api-key-verify-ms N` sets that cost (default 0); and a `GET /api/v1/events` answer takes
//! 14 ms (ArgusAI's, measured with a JWT; its handler runs in a thread pool, so lists overlap),
//! `--event-list-ms N` sets that (default 0).
//! Prints `listening on http://ADDR` once it accepts connections; runs until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use std::time::Duration;

use e2e::backend::{
    BackendConfig, StandInBackend, ARGUSAI_API_KEY_VERIFY_TIME, ARGUSAI_EVENT_LIST_TIME,
};

const USAGE: &str =
    "usage: stand-in-backend [--listen ADDR] [--api-key KEY] [--session-token TOKEN] \
[--photos DIR] [--openapi FILE] [--events N] [--seed N] [--no-record] \
[--like-argusai | --api-key-verify-ms N] [--event-list-ms N]";

fn parse(args: impl Iterator<Item = String>) -> Result<(SocketAddr, BackendConfig), String> {
    let mut listen: SocketAddr = "127.0.0.1:8000".parse().map_err(|e| format!("{e}"))?;
    let mut config = BackendConfig::default();
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        if flag == "--no-record" {
            config.record_requests = false;
            continue;
        }
        if flag == "--like-argusai" {
            config.api_key_verify_time = ARGUSAI_API_KEY_VERIFY_TIME;
            config.event_list_time = ARGUSAI_EVENT_LIST_TIME;
            continue;
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--listen" => listen = value()?.parse().map_err(|e| format!("--listen: {e}"))?,
            "--api-key" => config.api_key = value()?,
            "--session-token" => config.session_token = value()?,
            "--photos" => config.photos_dir = PathBuf::from(value()?),
            "--openapi" => config.openapi_path = Some(PathBuf::from(value()?)),
            "--events" => {
                config.event_count = value()?.parse().map_err(|e| format!("--events: {e}"))?
            }
            "--api-key-verify-ms" => {
                let ms = value()?
                    .parse()
                    .map_err(|e| format!("--api-key-verify-ms: {e}"))?;
                config.api_key_verify_time = Duration::from_millis(ms);
            }
            "--event-list-ms" => {
                let ms = value()?
                    .parse()
                    .map_err(|e| format!("--event-list-ms: {e}"))?;
                config.event_list_time = Duration::from_millis(ms);
            }
            "--seed" => config.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok((listen, config))
}

async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let (listen, config) = match parse(std::env::args().skip(1)) {
        Ok(v) => v,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("stand-in-backend: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let backend = match StandInBackend::start_on(listen, config).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("stand-in-backend: cannot start on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {}", backend.url());
        let _ = out.flush();
    }
    terminated().await;
    backend.shutdown().await;
    ExitCode::SUCCESS
}
