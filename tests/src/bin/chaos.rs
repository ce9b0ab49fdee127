//! `make chaos`: the full load-and-fault suite (`e2e::chaos`), its figures written to
//! docs/reliability.md (or `CHAOS_REPORT`).
//!
//! Sizes from the environment (see `ChaosConfig::full_from_env`): `CHAOS_CLIENTS` (`64,256`),
//! `CHAOS_REQUESTS` (10000 per window), `CHAOS_SOAK_SECS` (1800), `CHAOS_HOLD_SECS` (3).
//! `CHAOS_MACHINE` describes the machine in the report (default: CPU model and core count).
//! Exits 1 when a target is missed (the report is written anyway).

use std::process::ExitCode;
use std::time::Duration;

use e2e::chaos::{self, report, ChaosConfig};
use e2e::cloudflared::Tuning;

fn machine() -> String {
    if let Ok(m) = std::env::var("CHAOS_MACHINE") {
        if !m.trim().is_empty() {
            return m;
        }
    }
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores")
}

fn main() -> ExitCode {
    let config = match ChaosConfig::full_from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("chaos: {e}");
            return ExitCode::from(2);
        }
    };
    let out = std::env::var("CHAOS_REPORT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| e2e::workspace_root().join("docs/reliability.md"));
    let command = format!(
        "make chaos (CHAOS_CLIENTS={} CHAOS_REQUESTS={} CHAOS_SOAK_SECS={} CHAOS_HOLD_SECS={})",
        config
            .clients
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(","),
        config.requests_per_window,
        config.soak.map_or(0, |d| d.as_secs()),
        config.hold.as_secs()
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("chaos: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Ctrl-C or SIGTERM drops the run: the stack's processes are killed as groups and the
    // agent's small disk unmounted; the kernel's parent-death signal alone would leave the
    // Worker's workerd (a grandchild, under wrangler) running.
    let result = runtime.block_on(async {
        tokio::select! {
            result = chaos::run(config, |line| eprintln!("chaos: {line}")) => Some(result),
            signal = interrupted() => {
                eprintln!("chaos: {signal}: stopping every process the run started");
                None
            }
        }
    });
    let Some(result) = result else {
        eprintln!("chaos: interrupted, no report written");
        return ExitCode::from(130);
    };
    let tuning = Tuning::default();
    let tunnel_bound =
        Duration::from_secs(tuning.unresponsive_timeout_secs + tuning.backoff_max_secs)
            + report::RECOVERY_TARGET;
    let md = report::markdown(&result, &machine(), &command, tunnel_bound);
    if let Err(e) = std::fs::write(&out, &md) {
        eprintln!("chaos: {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    eprintln!("chaos: figures written to {}", out.display());
    let missed = result
        .rows
        .iter()
        .filter(|r| !report::misses(r, tunnel_bound).is_empty())
        .count();
    if missed > 0 {
        eprintln!("chaos: {missed} windows missed a target (see the report)");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Resolves on SIGINT or SIGTERM, naming it.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        },
        // Without handlers the default actions stay (and the parent-death signal).
        _ => std::future::pending().await,
    }
}
