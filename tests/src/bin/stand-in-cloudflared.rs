//! A stand-in for cloudflared (which cannot be installed here), faithful where the agent meets
//! it: the command line, the metrics server's `/ready` and `/metrics`, logs on stderr, SIGTERM —
//! and, told by a control file, the ways the real one fails: it flaps, hangs, crashes, or never
//! connects.
//!
//! ```text
//! stand-in-cloudflared tunnel [--no-autoupdate] [--metrics ADDR] [--grace-period D]
//!                             [--loglevel L] [--config FILE] run [--token TOKEN] [NAME]
//! ```
//! The token may also come from `TUNNEL_TOKEN` (as for the real one). With `--config`, the file
//! is checked like cloudflared does: `tunnel`, an existing `credentials-file`, an ingress list
//! ending in a catch-all rule; `metrics` may be set there too.
//!
//! `/ready` answers `200 {"status":200,"readyConnections":4,"connectorId":"…"}` while "connected"
//! and `503 {"status":503,"readyConnections":0,…}` otherwise; `/metrics` has `build_info`.
//!
//! Stand-in controls (environment):
//! - `STANDIN_CLOUDFLARED_CONTROL` — a file re-read every 50 ms holding one command:
//!   `ready`, `not-ready`, `flap MS` (alternate every MS), `hang` (stop answering anything and
//!   ignore SIGTERM, for good), `hang-once` (the same, and the file is reset to `ready` so the
//!   next process is healthy), `crash` (every process exits 1 at once), `crash-once` (this one
//!   exits 1, the file is reset to `ready`);
//! - `STANDIN_CLOUDFLARED_MODE` — the command when there is no control file (default `ready`);
//! - `STANDIN_CLOUDFLARED_READY_AFTER_MS` — time to the first connection (default 300);
//! - `STANDIN_CLOUDFLARED_EDGE_LISTEN` — `ip:port` where it plays the edge side of the tunnel:
//!   while connected, TCP connections are relayed to the ingress service (and cut when the
//!   connection drops); otherwise requests get Cloudflare's `530` error 1033 page;
//! - `STANDIN_CLOUDFLARED_INGRESS` — `http://ip:port`, the service for a token (remotely managed)
//!   tunnel; with `--config`, the first ingress rule's service;
//! - `STANDIN_CLOUDFLARED_EXPECT_TOKEN` — exit 1 ("Unauthorized") unless the token equals it;
//! - `STANDIN_CLOUDFLARED_IGNORE_TERM=1` — ignore SIGTERM (a wedged process);
//! - `STANDIN_CLOUDFLARED_TAP` — a file to append every byte relayed through the tunnel to, both
//!   ways (what the Worker forwards and what it gets back), for tests that assert on them;
//! - `STANDIN_CLOUDFLARED_LOG` — a file to append `<unix_ms> <pid> <event>` lines to: `start
//!   token|config`, `connected`, `disconnected`, `hang`, `term`, `crash`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const VERSION: &str = "2025.1.0-standin";

#[derive(Debug, Default, PartialEq, Eq)]
struct Cli {
    metrics: Option<SocketAddr>,
    config: Option<PathBuf>,
    token: Option<String>,
    name: Option<String>,
}

fn parse_cli(args: &[String]) -> Result<Cli, String> {
    let mut cli = Cli::default();
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("tunnel") => {}
        Some(other) => return Err(format!("unknown command {other:?}; want `tunnel … run`")),
        None => return Err("no command; want `tunnel … run`".into()),
    }
    let mut seen_run = false;
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("flag {flag} needs a value"))
        };
        match (seen_run, flag) {
            (false, "--no-autoupdate") => {}
            (false, "--metrics") => {
                cli.metrics = Some(value()?.parse().map_err(|e| format!("--metrics: {e}"))?)
            }
            (false, "--config") => cli.config = Some(PathBuf::from(value()?)),
            (false, "--grace-period" | "--loglevel" | "--logfile" | "--protocol") => {
                value()?;
            }
            (false, "run") => seen_run = true,
            (true, "--token") => cli.token = Some(value()?),
            (true, name) if !name.starts_with('-') && cli.name.is_none() => {
                cli.name = Some(name.to_owned())
            }
            (_, other) => return Err(format!("flag provided but not defined: {other}")),
        }
    }
    if !seen_run {
        return Err("missing subcommand `run`".into());
    }
    Ok(cli)
}

/// The parts of cloudflared's config.yml the stand-in uses (it reads the simple form
/// `argus-relay tunnel config` writes).
#[derive(Debug, Default, PartialEq, Eq)]
struct ConfigFile {
    tunnel: Option<String>,
    credentials_file: Option<String>,
    metrics: Option<String>,
    /// (hostname, service) in order.
    ingress: Vec<(Option<String>, String)>,
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    if v.starts_with('"') {
        serde_json::from_str(v).unwrap_or_else(|_| v.trim_matches('"').to_owned())
    } else {
        v.trim_matches('\'').to_owned()
    }
}

fn parse_config(text: &str) -> ConfigFile {
    let mut c = ConfigFile::default();
    let mut host: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        let item = trimmed.strip_prefix("- ").unwrap_or(trimmed);
        let Some((k, v)) = item.split_once(':') else {
            continue;
        };
        match (line.starts_with(' '), k.trim()) {
            (false, "tunnel") => c.tunnel = Some(unquote(v)),
            (false, "credentials-file") => c.credentials_file = Some(unquote(v)),
            (false, "metrics") => c.metrics = Some(unquote(v)),
            (true, "hostname") => host = Some(unquote(v)),
            (true, "service") => c.ingress.push((host.take(), unquote(v))),
            _ => {}
        }
    }
    c
}

fn log_line(level: &str, msg: &str) {
    let now = humantime_now();
    eprintln!("{now} {level} {msg}");
}

fn humantime_now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:03}Z", d.as_secs(), d.subsec_millis())
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

#[derive(Clone)]
struct EventLog(Option<PathBuf>);

impl EventLog {
    fn event(&self, what: &str) {
        if let Some(p) = &self.0 {
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
            {
                let _ = writeln!(f, "{} {} {what}", unix_ms(), std::process::id());
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Ready,
    NotReady,
    Flap(u64),
    Hang { once: bool },
    Crash { once: bool },
}

fn parse_command(s: &str) -> Option<Command> {
    let mut words = s.split_whitespace();
    Some(match words.next()? {
        "ready" => Command::Ready,
        "not-ready" => Command::NotReady,
        "flap" => Command::Flap(words.next()?.parse().ok().filter(|ms| *ms > 0)?),
        "hang" => Command::Hang { once: false },
        "hang-once" => Command::Hang { once: true },
        "crash" => Command::Crash { once: false },
        "crash-once" => Command::Crash { once: true },
        _ => return None,
    })
}

struct Shared {
    command: Command,
    hung: bool,
}

struct Stand {
    shared: Mutex<Shared>,
    started: Instant,
    ready_after: Duration,
    connector_id: String,
    log: EventLog,
}

impl Stand {
    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn hung(&self) -> bool {
        self.lock().hung
    }

    fn connected(&self) -> bool {
        let s = self.lock();
        if s.hung {
            return false;
        }
        let elapsed = self.started.elapsed();
        if elapsed < self.ready_after {
            return false;
        }
        match s.command {
            Command::Ready => true,
            Command::NotReady | Command::Hang { .. } | Command::Crash { .. } => false,
            Command::Flap(ms) => {
                ((elapsed - self.ready_after).as_millis() / u128::from(ms)).is_multiple_of(2)
            }
        }
    }
}

/// Applies a command; returns an exit code when the process must end now.
fn apply(stand: &Stand, cmd: Command, control: Option<&Path>) -> Option<u8> {
    let reset = |p: Option<&Path>| {
        if let Some(p) = p {
            let tmp = p.with_extension("reset");
            if std::fs::write(&tmp, "ready\n").is_ok() {
                let _ = std::fs::rename(&tmp, p);
            }
        }
    };
    match cmd {
        Command::Crash { once } => {
            if once {
                reset(control);
            }
            stand.log.event("crash");
            log_line(
                "ERR",
                "Serve tunnel error error=\"stand-in crash requested\" connIndex=0",
            );
            Some(1)
        }
        Command::Hang { once } => {
            if once {
                reset(control);
            }
            let mut s = stand.lock();
            if !s.hung {
                s.hung = true;
                stand.log.event("hang");
            }
            None
        }
        other => {
            stand.lock().command = other;
            None
        }
    }
}

async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 16 * 1024 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

async fn respond(stream: &mut TcpStream, status: &str, ctype: &str, body: &str) {
    let msg = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(msg.as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn serve_metrics(listener: TcpListener, stand: Arc<Stand>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let stand = stand.clone();
        tokio::spawn(async move {
            if stand.hung() {
                // A wedged process: the kernel accepted, nobody answers.
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            let Some(head) = read_head(&mut stream).await else {
                return;
            };
            if stand.hung() {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            let path = head.split_whitespace().nth(1).unwrap_or("/");
            match path {
                "/ready" => {
                    let (status, code, n) = if stand.connected() {
                        ("200 OK", 200, 4)
                    } else {
                        ("503 Service Unavailable", 503, 0)
                    };
                    let body = format!(
                        "{{\"status\":{code},\"readyConnections\":{n},\"connectorId\":\"{}\"}}\n",
                        stand.connector_id
                    );
                    respond(&mut stream, status, "application/json", &body).await;
                }
                "/healthcheck" => respond(&mut stream, "200 OK", "text/plain", "OK\n").await,
                "/metrics" => {
                    let body = format!(
                        "# HELP build_info Build and version information\n# TYPE build_info gauge\n\
                         build_info{{goversion=\"go1.22.5\",revision=\"standin\",type=\"\",version=\"{VERSION}\"}} 1\n\
                         cloudflared_tunnel_ha_connections {}\n",
                        if stand.connected() { 4 } else { 0 }
                    );
                    respond(&mut stream, "200 OK", "text/plain; version=0.0.4", &body).await;
                }
                _ => {
                    respond(
                        &mut stream,
                        "404 Not Found",
                        "text/plain",
                        "404 page not found\n",
                    )
                    .await
                }
            }
        });
    }
}

/// Cloudflare's edge side of the tunnel: relays while connected, else error 1033.
async fn serve_edge(
    listener: TcpListener,
    stand: Arc<Stand>,
    upstream: SocketAddr,
    connected: watch::Receiver<bool>,
) {
    loop {
        let Ok((mut client, _)) = listener.accept().await else {
            continue;
        };
        let stand = stand.clone();
        let mut connected = connected.clone();
        tokio::spawn(async move {
            if stand.hung() {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            if !*connected.borrow() {
                if read_head(&mut client).await.is_some() {
                    respond(
                        &mut client,
                        "530 <none>",
                        "text/html; charset=UTF-8",
                        "<!DOCTYPE html><title>Argo Tunnel error | error code: 1033</title>",
                    )
                    .await;
                }
                return;
            }
            let Ok(mut origin) = TcpStream::connect(upstream).await else {
                respond(
                    &mut client,
                    "502 Bad Gateway",
                    "text/html; charset=UTF-8",
                    "<!DOCTYPE html><title>Bad gateway | error code: 502</title>",
                )
                .await;
                return;
            };
            let relay = async {
                match env("STANDIN_CLOUDFLARED_TAP") {
                    Some(tap) => relay_tapped(&mut client, &mut origin, Path::new(&tap)).await,
                    None => {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut origin).await;
                    }
                }
            };
            tokio::select! {
                _ = relay => {}
                _ = async { while connected.changed().await.is_ok() && *connected.borrow() {} } => {}
            }
        });
    }
}

/// Relays both ways like `copy_bidirectional`, appending every chunk to `tap`.
async fn relay_tapped(client: &mut TcpStream, origin: &mut TcpStream, tap: &Path) {
    async fn pump(
        mut from: tokio::net::tcp::ReadHalf<'_>,
        mut to: tokio::net::tcp::WriteHalf<'_>,
        tap: &Path,
    ) {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(tap)
            {
                let _ = f.write_all(&buf[..n]);
            }
            if to.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    }
    let (client_read, client_write) = client.split();
    let (origin_read, origin_write) = origin.split();
    tokio::join!(
        pump(client_read, origin_write, tap),
        pump(origin_read, client_write, tap)
    );
}

fn fail(msg: &str) -> ExitCode {
    log_line("ERR", msg);
    ExitCode::from(1)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // Never outlive whoever started us (a test's agent), even when told to ignore SIGTERM.
    // SAFETY: plain syscall affecting only this process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--version") {
        println!("cloudflared version {VERSION}");
        return ExitCode::SUCCESS;
    }
    let cli = match parse_cli(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Incorrect Usage: {e}");
            return ExitCode::from(2);
        }
    };
    let log = EventLog(env("STANDIN_CLOUDFLARED_LOG").map(PathBuf::from));
    let token = cli.token.clone().or_else(|| env("TUNNEL_TOKEN"));

    let mut metrics = cli.metrics;
    let mut ingress = env("STANDIN_CLOUDFLARED_INGRESS");
    let how = if let Some(path) = &cli.config {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => return fail(&format!("Cannot read config file {}: {e}", path.display())),
        };
        let c = parse_config(&text);
        if c.tunnel.is_none() {
            return fail("\"cloudflared tunnel run\" requires the ID or name of the tunnel to run");
        }
        let creds = c.credentials_file.unwrap_or_default();
        let creds_ok = std::fs::read_to_string(&creds)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .is_some_and(|v| v.get("TunnelSecret").is_some());
        if !creds_ok {
            return fail(&format!(
                "Tunnel credentials file '{creds}' doesn't exist or is not a file"
            ));
        }
        match c.ingress.last() {
            Some((None, _)) => {}
            _ => {
                return fail(
                    "The last ingress rule must match all URLs (i.e. it should not have a hostname or path filter)",
                )
            }
        }
        ingress = c.ingress.first().map(|(_, s)| s.clone()).or(ingress);
        if metrics.is_none() {
            metrics = c.metrics.and_then(|m| m.parse().ok());
        }
        "config"
    } else if let Some(t) = &token {
        if let Some(want) = env("STANDIN_CLOUDFLARED_EXPECT_TOKEN") {
            if *t != want {
                return fail("Unauthorized: Invalid tunnel secret");
            }
        }
        "token"
    } else {
        eprintln!("Incorrect Usage: \"cloudflared tunnel run\" requires the ID or name of the tunnel to run as the last command line argument or in the configuration file.");
        return ExitCode::from(2);
    };
    let Some(metrics) = metrics else {
        return fail("the stand-in needs --metrics (or metrics: in the config file)");
    };

    let initial = env("STANDIN_CLOUDFLARED_MODE")
        .and_then(|m| parse_command(&m))
        .unwrap_or(Command::Ready);
    let stand = Arc::new(Stand {
        shared: Mutex::new(Shared {
            command: Command::Ready,
            hung: false,
        }),
        started: Instant::now(),
        ready_after: Duration::from_millis(
            env("STANDIN_CLOUDFLARED_READY_AFTER_MS")
                .and_then(|v| v.parse().ok())
                .unwrap_or(300),
        ),
        connector_id: format!(
            "{:08x}-standin-{:04x}",
            std::process::id(),
            unix_ms() % 0xffff
        ),
        log: log.clone(),
    });
    log.event(&format!("start {how}"));
    log_line(
        "INF",
        &format!(
            "Starting tunnel (stand-in {VERSION}) tunnelID={}",
            cli.name.as_deref().unwrap_or("-")
        ),
    );

    let control = env("STANDIN_CLOUDFLARED_CONTROL").map(PathBuf::from);
    let read_control = |control: &Option<PathBuf>| {
        control
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| parse_command(&t))
    };
    let first = read_control(&control).unwrap_or(initial);
    if let Some(code) = apply(&stand, first, control.as_deref()) {
        return ExitCode::from(code);
    }

    let listener = match TcpListener::bind(metrics).await {
        Ok(l) => l,
        Err(e) => {
            return fail(&format!(
                "failed to bind the metrics server to {metrics}: {e}"
            ))
        }
    };
    log_line(
        "INF",
        &format!("Starting metrics server on {metrics}/metrics"),
    );
    tokio::spawn(serve_metrics(listener, stand.clone()));

    let (connected_tx, connected_rx) = watch::channel(false);
    if let Some(edge) = env("STANDIN_CLOUDFLARED_EDGE_LISTEN") {
        let upstream = ingress
            .as_deref()
            .and_then(|s| s.strip_prefix("http://"))
            .and_then(|s| s.trim_end_matches('/').parse::<SocketAddr>().ok());
        let (Ok(addr), Some(upstream)) = (edge.parse::<SocketAddr>(), upstream) else {
            return fail("STANDIN_CLOUDFLARED_EDGE_LISTEN needs ip:port and an http://ip:port ingress service");
        };
        match TcpListener::bind(addr).await {
            Ok(l) => {
                tokio::spawn(serve_edge(l, stand.clone(), upstream, connected_rx));
            }
            Err(e) => return fail(&format!("cannot listen on {addr}: {e}")),
        }
    }

    let ignore_term = env("STANDIN_CLOUDFLARED_IGNORE_TERM").is_some_and(|v| v == "1");
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => return fail(&format!("signal handler: {e}")),
    };
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut last_control = Instant::now();
    let mut was_connected = false;
    loop {
        tokio::select! {
            _ = term.recv() => {
                if ignore_term || stand.hung() {
                    log.event("term-ignored");
                    continue;
                }
                log.event("term");
                log_line("INF", "Initiating graceful shutdown due to signal terminated ...");
                return ExitCode::SUCCESS;
            }
            _ = tick.tick() => {
                if last_control.elapsed() >= Duration::from_millis(50) {
                    last_control = Instant::now();
                    if let Some(cmd) = read_control(&control) {
                        if let Some(code) = apply(&stand, cmd, control.as_deref()) {
                            return ExitCode::from(code);
                        }
                    }
                }
                let now = stand.connected();
                if now != was_connected {
                    was_connected = now;
                    let _ = connected_tx.send(now);
                    if now {
                        log.event("connected");
                        log_line("INF", "Registered tunnel connection connIndex=0 location=ams01 protocol=quic");
                    } else {
                        log.event("disconnected");
                        log_line("ERR", "Connection terminated error=\"stand-in: no edge connection\" connIndex=0");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn cloudflared_command_lines() {
        let c = parse_cli(&args(
            "tunnel --no-autoupdate --metrics 127.0.0.1:20241 --grace-period 25s run",
        ))
        .unwrap();
        assert_eq!(c.metrics, Some("127.0.0.1:20241".parse().unwrap()));
        let c = parse_cli(&args("tunnel --config /etc/c.yml run my-tunnel")).unwrap();
        assert_eq!(c.config.as_deref(), Some(Path::new("/etc/c.yml")));
        assert_eq!(c.name.as_deref(), Some("my-tunnel"));
        let c = parse_cli(&args("tunnel run --token abc")).unwrap();
        assert_eq!(c.token.as_deref(), Some("abc"));
        assert!(parse_cli(&args("tunnel --metrics 127.0.0.1:1")).is_err());
        assert!(parse_cli(&args("tunnel --bogus run")).is_err());
        assert!(parse_cli(&args("run")).is_err());
    }

    #[test]
    fn the_agents_config_file_reads_back() {
        let c = parse_config(
            "# comment\ntunnel: \"abc\"\ncredentials-file: \"/x/abc.json\"\nmetrics: \"127.0.0.1:20241\"\nno-autoupdate: true\ningress:\n  - hostname: \"t.example\"\n    service: \"http://127.0.0.1:8470\"\n  - service: \"http_status:404\"\n",
        );
        assert_eq!(c.tunnel.as_deref(), Some("abc"));
        assert_eq!(c.credentials_file.as_deref(), Some("/x/abc.json"));
        assert_eq!(
            c.ingress,
            [
                (Some("t.example".into()), "http://127.0.0.1:8470".into()),
                (None, "http_status:404".into())
            ]
        );
    }

    #[test]
    fn commands() {
        assert_eq!(parse_command("flap 500\n"), Some(Command::Flap(500)));
        assert_eq!(
            parse_command("crash-once"),
            Some(Command::Crash { once: true })
        );
        assert_eq!(parse_command("flap 0"), None);
        assert_eq!(parse_command(""), None);
    }
}
