//! The I/O around [`super::machine`]: starts the tunnel program ([`TunnelProvider`]: cloudflared
//! or rathole), probes it (cloudflared's `/ready`, rathole's log lines), stops it (SIGTERM, then
//! SIGKILL), and publishes every transition to the [`TunnelMonitor`]. What follows is said of
//! cloudflared; rathole is run the same way with its own command line
//! ([`TunnelProvider::prepare`]).
//!
//! The command line is cloudflared's own:
//! `cloudflared tunnel --no-autoupdate --metrics ADDR --grace-period Ns [--config FILE] run`, with
//! a token passed as `TUNNEL_TOKEN` in the environment (not on the command line, where any local
//! user could read it). cloudflared runs in its own process group (a Ctrl-C in the agent's
//! terminal reaches the agent, which then stops cloudflared in order) and gets SIGTERM if the
//! agent dies (Linux `PR_SET_PDEATHSIG`; it is spawned from a runtime worker thread, which lives as
//! long as the agent), so no stale cloudflared keeps answering on the metrics address — and,
//! before each start, the agent refuses to trust a metrics address something else already
//! listens on.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::machine::{Action, Machine, Mode, Probe};
use super::provider::TunnelProvider;
use super::rathole::{self, LineSays};
use super::readiness;
use super::CloudflaredConfig;
use super::TunnelMonitor;

/// SIGTERM → SIGKILL when restarting a broken cloudflared (not at shutdown: see
/// `stop_timeout_secs`): it is hung or useless, in-flight requests are not worth waiting for.
const RESTART_GRACE: Duration = Duration::from_secs(3);
/// Environment the agent may hold that cloudflared must not inherit.
const SCRUBBED_ENV: &[&str] = &[
    "ARGUS_RELAY_BACKEND_API_KEY",
    "ARGUS_RELAY_TUNNEL_TOKEN",
    "ARGUS_RELAY_RATHOLE_TOKEN",
    "TUNNEL_TOKEN",
];
/// At most this much of cloudflared's last error line goes into the status.
const MAX_LAST_WORDS: usize = 240;
/// How long to wait for a dead cloudflared's last output lines.
const OUTPUT_DRAIN: Duration = Duration::from_millis(200);

/// cloudflared's arguments and environment for `cfg` (pure; see the module docs).
pub fn command_line(cfg: &CloudflaredConfig) -> (Vec<OsString>, Vec<(&'static str, String)>) {
    let mut args: Vec<OsString> = vec![
        "tunnel".into(),
        "--no-autoupdate".into(),
        "--metrics".into(),
        cfg.metrics.to_string().into(),
        "--grace-period".into(),
        format!("{}s", cfg.stop_timeout_secs.saturating_sub(5).max(1)).into(),
    ];
    if let Some(config) = &cfg.config {
        args.push("--config".into());
        args.push(config.clone().into_os_string());
    }
    args.push("run".into());
    let env = cfg
        .token
        .iter()
        .map(|t| ("TUNNEL_TOKEN", t.clone()))
        .collect();
    (args, env)
}

/// Starts watching (and, when enabled, running) the tunnel program until `stop` turns true.
/// Without a tunnel section it returns a finished task.
pub fn start(
    cfg: Option<TunnelProvider>,
    monitor: TunnelMonitor,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    match cfg {
        Some(cfg) => tokio::spawn(run(cfg, monitor, stop)),
        None => tokio::spawn(async {}),
    }
}

struct Running {
    child: Child,
    pid: Option<u32>,
    last_words: Arc<Mutex<Option<String>>>,
    /// rathole only: what its latest link line said.
    link: Arc<Mutex<Option<LineSays>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Running {
    /// After the process ended: lets its last output lines arrive (briefly), then returns them.
    async fn last_words(self) -> Arc<Mutex<Option<String>>> {
        for reader in self.readers {
            let _ = tokio::time::timeout(OUTPUT_DRAIN, reader).await;
        }
        self.last_words
    }
}

async fn run(cfg: TunnelProvider, monitor: TunnelMonitor, mut stop: watch::Receiver<bool>) {
    let mode = cfg.mode();
    let program = cfg.name();
    let interval = cfg.probe_interval();
    let probe_timeout = super::readiness_timeout(interval);
    let mut machine = Machine::new(
        mode,
        cfg.timing(),
        Instant::now(),
        Box::new(rand::random::<f64>),
    )
    .named(cfg.naming());
    let mut running: Option<Running> = None;
    let mut version: Option<String> = None;
    // `/metrics` is asked once per process, after its first ready answer.
    let mut version_asked = false;
    let mut action = if *stop.borrow() {
        Action::Done
    } else {
        machine.start(Instant::now())
    };
    tracing::info!(
        mode = ?mode,
        program,
        metrics = ?cfg.metrics(),
        "watching the tunnel"
    );
    let mut last_state = None;
    loop {
        let snapshot = machine.snapshot();
        if last_state != Some(snapshot.state) {
            last_state = Some(snapshot.state);
            let error = snapshot
                .last_error
                .as_ref()
                .map(|e| e.message.as_str())
                .unwrap_or("");
            tracing::info!(
                state = snapshot.state.as_str(),
                ready_connections = snapshot.ready_connections,
                reconnects = snapshot.reconnects,
                restarts = snapshot.restarts,
                last_error = error,
                "tunnel state"
            );
        }
        monitor.publish(
            snapshot,
            running.as_ref().and_then(|r| r.pid),
            version.clone(),
        );
        action = match action {
            Action::Done => break,
            Action::Spawn => match spawn(&cfg) {
                Ok(r) => {
                    tracing::info!(pid = r.pid, binary = %cfg.binary().display(), "{program} started");
                    running = Some(r);
                    version_asked = false;
                    machine.spawned(Instant::now())
                }
                Err(why) => {
                    tracing::warn!(error = %why, "{program} could not be started");
                    machine.spawn_failed(&why, Instant::now())
                }
            },
            Action::Wait(delay) => {
                tokio::select! {
                    _ = tokio::time::sleep(delay) => machine.backoff_elapsed(Instant::now()),
                    _ = stop.changed() => machine.stop(Instant::now()),
                }
            }
            Action::Terminate { reason } => {
                let grace = if *stop.borrow() {
                    cfg.stop_timeout()
                } else {
                    RESTART_GRACE.min(cfg.stop_timeout())
                };
                tracing::info!(%reason, "stopping {program}");
                let how = match running.take() {
                    Some(r) => terminate(r, grace).await,
                    None => "not running".to_owned(),
                };
                tracing::info!(how = %how, "{program} stopped");
                machine.exited(&how, Instant::now())
            }
            Action::Probe => {
                tokio::select! {
                    status = wait_exit(&mut running) => {
                        let last_words = match running.take() {
                            Some(r) => r.last_words().await,
                            None => Arc::default(),
                        };
                        let how = describe_exit(status, &last_words);
                        tracing::warn!(how = %how, "{program} exited");
                        machine.exited(&how, Instant::now())
                    }
                    _ = stop.changed() => machine.stop(Instant::now()),
                    _ = tokio::time::sleep(interval) => {
                        let probe = match &cfg {
                            TunnelProvider::Cloudflared(c) => {
                                let probe = readiness::probe(c.metrics, probe_timeout).await;
                                if matches!(probe, Probe::Ready { .. }) && !version_asked {
                                    version_asked = true;
                                    if let Some(v) = readiness::version(c.metrics, probe_timeout).await {
                                        version = Some(v);
                                    }
                                }
                                probe
                            }
                            TunnelProvider::Rathole { .. } => rathole_probe(running.as_ref()),
                        };
                        if let Some(at) = monitor.last_carried() {
                            machine.carried(at);
                        }
                        machine.probe(probe, Instant::now())
                    }
                }
            }
        };
    }
    monitor.publish(machine.snapshot(), None, version);
    tracing::info!("no longer watching {program}");
    if mode == Mode::Supervised {
        debug_assert!(running.is_none());
    }
}

/// Waits for the child to exit; never resolves without one.
async fn wait_exit(running: &mut Option<Running>) -> std::io::Result<ExitStatus> {
    match running {
        Some(r) => r.child.wait().await,
        None => std::future::pending().await,
    }
}

/// rathole's link, as its latest line about it says: nothing yet is "not ready".
fn rathole_probe(running: Option<&Running>) -> Probe {
    let said = running.and_then(|r| r.link.lock().ok().and_then(|l| l.clone()));
    match said {
        Some(LineSays::Connected) => Probe::Ready {
            connections: 1,
            connector_id: None,
        },
        Some(LineSays::Failed(reason)) => Probe::Failing { reason },
        Some(LineSays::Nothing) | None => Probe::NotReady { connections: 0 },
    }
}

fn spawn(cfg: &TunnelProvider) -> Result<Running, String> {
    let line = cfg.prepare()?;
    let (args, env) = (line.args, line.env);
    let mut cmd = Command::new(cfg.binary());
    cmd.args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    for name in SCRUBBED_ENV {
        cmd.env_remove(name);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    // SAFETY: prctl is async-signal-safe and touches nothing but the calling (child) process.
    unsafe {
        cmd.pre_exec(|| {
            #[cfg(target_os = "linux")]
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| {
        let program = cfg.name();
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            format!(" (install {program}, or set {program}.binary to its path)")
        } else {
            String::new()
        };
        format!(
            "cannot run {:?}: {e}{hint}",
            cfg.binary().display().to_string()
        )
    })?;
    let last_words = Arc::new(Mutex::new(None));
    let link = Arc::new(Mutex::new(None));
    let kind = match cfg {
        TunnelProvider::Cloudflared(_) => OutputOf::Cloudflared,
        TunnelProvider::Rathole { .. } => OutputOf::Rathole(link.clone()),
    };
    let mut readers = Vec::new();
    if let Some(out) = child.stdout.take() {
        readers.push(tokio::spawn(relay_output(
            out,
            last_words.clone(),
            kind.clone(),
        )));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(tokio::spawn(relay_output(err, last_words.clone(), kind)));
    }
    Ok(Running {
        pid: child.id(),
        child,
        last_words,
        link,
        readers,
    })
}

/// Whose output a reader copies, and (rathole) where its link verdict goes.
#[derive(Clone)]
enum OutputOf {
    Cloudflared,
    Rathole(Arc<Mutex<Option<LineSays>>>),
}

/// Copies the program's log lines into ours and remembers its last error line (and, for
/// rathole, what its latest line about the link said).
async fn relay_output(
    stream: impl AsyncRead + Unpin,
    last_words: Arc<Mutex<Option<String>>>,
    of: OutputOf,
) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let line: String = line
            .chars()
            .filter(|c| !c.is_control())
            .take(2000)
            .collect();
        let is_error = match &of {
            OutputOf::Cloudflared => {
                let is_error = line.contains(" ERR ") || line.contains("level=error");
                if is_error || line.contains(" WRN ") {
                    tracing::warn!(target: "cloudflared", "{line}");
                } else {
                    tracing::info!(target: "cloudflared", "{line}");
                }
                is_error
            }
            OutputOf::Rathole(link) => {
                let is_error = line.contains(" ERROR ") || line.starts_with("Error");
                if is_error || line.contains(" WARN ") {
                    tracing::warn!(target: "rathole", "{line}");
                } else {
                    tracing::info!(target: "rathole", "{line}");
                }
                let says = rathole::interpret_line(&line);
                if says != LineSays::Nothing {
                    if let Ok(mut l) = link.lock() {
                        *l = Some(says);
                    }
                }
                is_error
            }
        };
        if is_error {
            if let Ok(mut w) = last_words.lock() {
                *w = Some(line.chars().take(MAX_LAST_WORDS).collect());
            }
        }
    }
}

fn describe_status(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "ended".to_owned(),
    }
}

fn describe_exit(
    status: std::io::Result<ExitStatus>,
    last_words: &Arc<Mutex<Option<String>>>,
) -> String {
    let mut how = match status {
        Ok(s) => describe_status(&s),
        Err(e) => format!("could not be waited for: {e}"),
    };
    if let Some(words) = last_words.lock().ok().and_then(|w| w.clone()) {
        how.push_str("; its last error: ");
        how.push_str(&words);
    }
    how
}

/// SIGTERM, up to `grace` to exit, then SIGKILL.
async fn terminate(mut r: Running, grace: Duration) -> String {
    if let Some(pid) = r.pid.and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: plain syscall on our own child's pid (not yet reaped, so not reused).
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    match tokio::time::timeout(grace, r.child.wait()).await {
        Ok(status) => describe_exit(status, &Arc::default()),
        Err(_) => {
            let _ = r.child.start_kill();
            let status = r.child.wait().await;
            format!(
                "did not stop within {} s of SIGTERM, so it was killed ({})",
                grace.as_secs_f32(),
                status
                    .map(|s| describe_status(&s))
                    .unwrap_or_else(|e| e.to_string())
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_travels_in_the_environment_not_the_command_line() {
        let cfg = CloudflaredConfig {
            token: Some("eyJzZWNyZXQiOnRydWV9".into()),
            ..CloudflaredConfig::default()
        };
        let (args, env) = command_line(&cfg);
        let args: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "tunnel",
                "--no-autoupdate",
                "--metrics",
                "127.0.0.1:20241",
                "--grace-period",
                "25s",
                "run"
            ]
        );
        assert!(!args.iter().any(|a| a.contains("eyJ")));
        assert_eq!(env, [("TUNNEL_TOKEN", "eyJzZWNyZXQiOnRydWV9".to_owned())]);
    }

    #[test]
    fn a_config_file_goes_before_run() {
        let cfg = CloudflaredConfig {
            config: Some("/etc/argus-relay/cloudflared.yml".into()),
            stop_timeout_secs: 2,
            ..CloudflaredConfig::default()
        };
        let (args, env) = command_line(&cfg);
        let args: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            &args[4..],
            [
                "--grace-period",
                "1s",
                "--config",
                "/etc/argus-relay/cloudflared.yml",
                "run"
            ]
        );
        assert!(env.is_empty());
    }
}
