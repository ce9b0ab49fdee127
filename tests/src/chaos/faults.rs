//! The faults, each injected into the running stack and taken away again.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use argus_client::pin::Pin;
use tokio::io::AsyncWriteExt;

use super::load::Tally;
use crate::stack::Stack;

/// Where Debian's package `faketime` puts libfaketime (per architecture).
const LIBFAKETIME_PATHS: [&str; 3] = [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
];

/// libfaketime, if installed.
pub fn libfaketime() -> Option<PathBuf> {
    LIBFAKETIME_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// A fault of the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// No fault: the reference row.
    None,
    /// 1. The backend killed (port closed, connections dropped) and restarted.
    BackendKilled,
    /// 1. The backend answers after 5 s.
    BackendSlow,
    /// 1. The backend sends half of each body and drops the connection.
    BackendHalfClosed,
    /// 2. The agent `kill -9`ed and restarted.
    AgentKilled,
    /// 3. The tunnel drops and comes back every 2 s.
    TunnelFlapping,
    /// 3. The tunnel process hangs without closing (the agent must notice and replace it).
    TunnelHanging,
    /// 4. workerd killed and restarted.
    WorkerRestarted,
    /// 5. The agent's disk full, then freed.
    DiskFull,
    /// 6. The agent's clock stepped 2 minutes ahead, then back.
    ClockAhead,
    /// 6. The agent's clock stepped 2 minutes behind, then back.
    ClockBehind,
    /// 7. A flood of new TCP connections and slowloris heads at the LAN listener.
    LanFlood,
}

impl Fault {
    pub const ALL: [Fault; 12] = [
        Fault::None,
        Fault::BackendKilled,
        Fault::BackendSlow,
        Fault::BackendHalfClosed,
        Fault::AgentKilled,
        Fault::TunnelFlapping,
        Fault::TunnelHanging,
        Fault::WorkerRestarted,
        Fault::DiskFull,
        Fault::ClockAhead,
        Fault::ClockBehind,
        Fault::LanFlood,
    ];

    /// The fault's name for `CHAOS_FAULTS`.
    pub fn name(self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::BackendKilled => "backend-killed",
            Fault::BackendSlow => "backend-slow",
            Fault::BackendHalfClosed => "backend-half-closed",
            Fault::AgentKilled => "agent-killed",
            Fault::TunnelFlapping => "tunnel-flapping",
            Fault::TunnelHanging => "tunnel-hanging",
            Fault::WorkerRestarted => "workerd-restarted",
            Fault::DiskFull => "disk-full",
            Fault::ClockAhead => "clock-ahead",
            Fault::ClockBehind => "clock-behind",
            Fault::LanFlood => "lan-flood",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Fault::None => "none (reference)",
            Fault::BackendKilled => "1. backend killed, restarted",
            Fault::BackendSlow => "1. backend slow (5 s answers)",
            Fault::BackendHalfClosed => "1. backend half-closed mid-body",
            Fault::AgentKilled => "2. agent kill -9, restarted",
            Fault::TunnelFlapping => "3. tunnel flapping (2 s)",
            Fault::TunnelHanging => "3. tunnel hanging, not closing",
            Fault::WorkerRestarted => "4. workerd restarted",
            Fault::DiskFull => "5. agent disk full, freed",
            Fault::ClockAhead => "6. agent clock +2 min, back",
            Fault::ClockBehind => "6. agent clock -2 min, back",
            Fault::LanFlood => "7. LAN: SYN/connection flood + slowloris",
        }
    }
}

/// What the stack needs for every fault: a tunnel stand-in, a LAN listener, the data directory
/// on its own small disk, the agent under libfaketime reading its offset from `clock_file`.
pub struct FaultKit {
    pub clock_file: PathBuf,
    pub lan_pin: Option<Pin>,
}

/// The agent's environment for a steppable clock (libfaketime, its offset re-read every second;
/// monotonic time left alone so timeouts keep working), or `None` when libfaketime is absent.
pub fn faketime_env(clock_file: &Path) -> Option<Vec<(String, String)>> {
    let lib = libfaketime()?;
    std::fs::write(clock_file, "+0\n").ok()?;
    Some(
        [
            ("LD_PRELOAD", lib.display().to_string()),
            ("FAKETIME_TIMESTAMP_FILE", clock_file.display().to_string()),
            ("FAKETIME_CACHE_DURATION", "1".to_owned()),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
    )
}

/// Steps the agent's clock to `offset` (libfaketime syntax: `+120`, `-120`, `+0`).
pub fn step_clock(kit: &FaultKit, offset: &str) -> Result<(), String> {
    let tmp = kit.clock_file.with_extension("tmp");
    std::fs::write(&tmp, format!("{offset}\n")).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, &kit.clock_file).map_err(|e| e.to_string())
}

/// Blocks the async runtime's thread briefly for a harness call that is synchronous.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// What a fault's injection saw besides the load.
#[derive(Debug, Default)]
pub struct Injected {
    /// What the extra attempts answered (pairing and refresh while the disk is full, …).
    pub notes: Vec<String>,
    /// Expectations of the fault itself that did not hold.
    pub broken: Vec<String>,
}

/// Injects `fault`, holds it for `hold`, takes it away; returns once the faulty part is back
/// (the moment recovery is measured from).
pub async fn inject(
    stack: &mut Stack,
    kit: &FaultKit,
    fault: Fault,
    hold: Duration,
    lan: &mut Tally,
) -> Result<Injected, String> {
    let mut out = Injected::default();
    match fault {
        Fault::None => {}
        Fault::BackendKilled => {
            stack.backend.kill();
            tokio::time::sleep(hold).await;
            stack.backend.revive().await.map_err(|e| e.to_string())?;
        }
        Fault::BackendSlow => {
            stack.backend.set_delay(Some(Duration::from_secs(5)));
            tokio::time::sleep(hold.max(Duration::from_secs(6))).await;
            stack.backend.set_delay(None);
            // The backend is back when it has given the answers it took while slow (each one
            // still takes its 5 s): until then they hold the agent's backend slots.
            let since = Instant::now();
            while stack.backend.slow_answers_owed() > 0 && since.elapsed() < Duration::from_secs(10)
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            out.notes.push(format!(
                "its last slow answer left {:.1} s after it turned fast",
                since.elapsed().as_secs_f64()
            ));
        }
        Fault::BackendHalfClosed => {
            stack.backend.set_half_bodies(true);
            tokio::time::sleep(hold).await;
            stack.backend.set_half_bodies(false);
        }
        Fault::AgentKilled => {
            // SIGKILL (the whole process group), then the same binary on the same ports.
            blocking(|| stack.agent.stop());
            tokio::time::sleep(hold / 2).await;
            blocking(|| stack.agent.restart())?;
        }
        Fault::TunnelFlapping => {
            stack.cloudflared().set("flap 2000");
            tokio::time::sleep(hold.max(Duration::from_secs(6))).await;
            stack.cloudflared().set("ready");
        }
        Fault::TunnelHanging => {
            // The process stops answering anything and ignores SIGTERM; the agent's supervisor
            // must notice (unresponsive timeout), kill it and start a healthy one. The "part"
            // is back at once: recovery is the supervisor's.
            stack.cloudflared().set("hang-once");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Fault::WorkerRestarted => {
            let worker = stack.worker.as_mut().ok_or("no Worker")?;
            blocking(|| worker.restart())?;
        }
        Fault::DiskFull => {
            // A phone that will renew its tokens while the disk is full.
            let mut renewing = stack.pair_phone("viewer").await;
            let disk = stack.small_disk.as_ref().ok_or("no small disk")?;
            // SQLite goes on writing into room its WAL file already has, so a disk that fills
            // while the WAL is long refuses nothing for a while. The case that bites is a disk
            // filling just after a checkpoint emptied the WAL: make it, then take every byte.
            blocking(|| checkpoint_wal(stack.agent.data_dir()))?;
            let filled = blocking(|| disk.fill())?;
            out.notes.push(format!(
                "filled {} KiB after a WAL checkpoint",
                filled / 1024
            ));
            tokio::time::sleep(hold / 2).await;
            // With the WAL empty every write needs new space: both are refused as storage_full,
            // nothing else (a 200 would mean the fault did not take and the row shows nothing).
            let pairing = try_pairing(stack).await;
            let refresh = try_refresh(stack, &mut renewing).await;
            out.notes
                .push(format!("while full: pairing {pairing}, refresh {refresh}"));
            for (what, answer) in [("pairing", &pairing), ("refresh", &refresh)] {
                if !answer.contains("storage_full") {
                    out.broken.push(format!(
                        "{what} while the disk is full: {answer} (expected a storage_full error)"
                    ));
                }
            }
            tokio::time::sleep(hold / 2).await;
            blocking(|| disk.free())?;
            // A refused refresh changed nothing: the phone's token renews now.
            let pairing = try_pairing(stack).await;
            let refresh = try_refresh(stack, &mut renewing).await;
            out.notes
                .push(format!("space back: pairing {pairing}, refresh {refresh}"));
            for (what, answer) in [("pairing", &pairing), ("refresh", &refresh)] {
                if answer != "200" {
                    out.broken
                        .push(format!("{what} after space came back: {answer}"));
                }
            }
        }
        Fault::ClockAhead | Fault::ClockBehind => {
            let offset = if fault == Fault::ClockAhead {
                "+120"
            } else {
                "-120"
            };
            step_clock(kit, offset)?;
            // libfaketime re-reads the offset every second.
            tokio::time::sleep(hold.max(Duration::from_secs(3))).await;
            step_clock(kit, "+0")?;
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }
        Fault::LanFlood => {
            let addr = stack.agent.lan_addr().ok_or("no LAN listener")?;
            let pin = kit.lan_pin.ok_or("no LAN certificate pin")?;
            let token = stack.pair_phone("viewer").await.access_token;
            let detail = format!(
                "/api/v1/events/{}",
                stack
                    .backend
                    .event_ids()
                    .first()
                    .cloned()
                    .unwrap_or_default()
            );
            let (opened, phones) = lan_flood(addr, pin, &token, &detail, hold, lan).await;
            if phones.starts_with("0 ok") {
                out.broken.push(format!(
                    "no LAN phone request succeeded during the flood: {phones}"
                ));
            }
            out.notes.push(format!(
                "{opened} flood connections held from 127.0.0.2; LAN phone requests meanwhile: {phones}"
            ));
        }
    }
    Ok(out)
}

/// `PRAGMA wal_checkpoint(TRUNCATE)` on the agent's database, beside the running agent (as its
/// own automatic checkpoint does, down to an empty WAL file).
fn checkpoint_wal(data_dir: &Path) -> Result<(), String> {
    let path = data_dir.join("relay.db");
    let run = || -> rusqlite::Result<(i64, i64, i64)> {
        let db = rusqlite::Connection::open(&path)?;
        db.busy_timeout(Duration::from_secs(5))?;
        db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
    };
    match run() {
        Ok((0, _, _)) => Ok(()),
        Ok((busy, log, done)) => Err(format!(
            "WAL checkpoint of {} incomplete (busy {busy}, {done} of {log} frames)",
            path.display()
        )),
        Err(e) => Err(format!("WAL checkpoint of {}: {e}", path.display())),
    }
}

/// A token refresh of `device` through the Worker (its tokens replaced by the new ones when it
/// succeeds): `200`, or its status, error code and reason.
async fn try_refresh(stack: &Stack, device: &mut crate::stack::PairedDevice) -> String {
    let body = serde_json::json!({"refresh_token": device.refresh_token,
                                  "device_id": device.device_id});
    let (status, answer) = stack
        .phone()
        .post_json_json("/api/v1/mobile/auth/refresh", &body)
        .await;
    if let (200, Some(access), Some(refresh)) = (
        status,
        answer["access_token"].as_str(),
        answer["refresh_token"].as_str(),
    ) {
        device.access_token = access.to_owned();
        device.refresh_token = refresh.to_owned();
    }
    error_text(status, &answer)
}

/// `200`, or its status, error code and reason: `503 unavailable (storage_full)`.
fn error_text(status: u16, answer: &serde_json::Value) -> String {
    match answer["error"]["code"].as_str() {
        Some(code) => format!(
            "{status} {code} ({})",
            answer["error"]["reason"].as_str().unwrap_or("-")
        ),
        None => status.to_string(),
    }
}

/// A pairing as the owner starts it (`argus-relay pair`, which stores a code) and the phone
/// finishes it through the Worker: `200`, or what refused it.
async fn try_pairing(stack: &Stack) -> String {
    let code = match blocking(|| {
        stack
            .agent
            .cli(&["pair", "--no-wait", "--json", "--scope", "viewer"])
    }) {
        Ok(out) => serde_json::from_str::<serde_json::Value>(&out)
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_owned)),
        Err(e) => {
            let said = e
                .lines()
                .rfind(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
                .to_owned();
            // The CLI prints the agent's error message; a full disk has its own.
            return if said.contains("disk is full") {
                "owner code refused (storage_full)".into()
            } else {
                format!("owner code refused ({said})")
            };
        }
    };
    let Some(code) = code else {
        return "owner code: no code".into();
    };
    let body = serde_json::json!({"code": code, "device_info": {"name": "Chaos phone",
        "model": "iPhone15,2", "platform": "ios", "os_version": "18.1", "app_version": "1.4.0"}});
    let (status, answer) = stack
        .phone()
        .post_json_json("/api/v1/devices/pair", &body)
        .await;
    error_text(status, &answer)
}

/// The innermost cause of an error (what a failed connection actually hit).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut inner = e;
    while let Some(source) = inner.source() {
        inner = source;
    }
    inner.to_string()
}

/// A TCP connection to `addr` from 127.0.0.2: another host on the home network (the LAN
/// listener limits connections per peer address; the phones come from 127.0.0.1).
async fn connect_from_other_host(addr: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from(([127, 0, 0, 2], 0)))?;
    socket.connect(addr).await
}

/// Floods the LAN listener with `FLOOD` bare TCP connections and `SLOWLORIS` connections that
/// send a request head one byte at a time, while two LAN phones (pinned TLS) fetch `detail`
/// in a loop; their outcomes go into `lan`. Returns the connections held and a summary.
async fn lan_flood(
    addr: SocketAddr,
    pin: Pin,
    token: &str,
    detail: &str,
    hold: Duration,
    lan: &mut Tally,
) -> (usize, String) {
    const FLOOD: usize = 1000;
    const SLOWLORIS: usize = 200;
    let until = Instant::now() + hold.max(Duration::from_secs(4));
    let mut bare = Vec::new();
    for _ in 0..FLOOD {
        match tokio::time::timeout(Duration::from_millis(200), connect_from_other_host(addr)).await
        {
            Ok(Ok(s)) => bare.push(s),
            _ => break,
        }
    }
    let opened = bare.len();
    let mut slow = Vec::new();
    for _ in 0..SLOWLORIS {
        slow.push(tokio::spawn(async move {
            let Ok(mut s) = connect_from_other_host(addr).await else {
                return;
            };
            let head = b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\nX-Slow: ";
            for b in head.iter().chain(std::iter::repeat(&b'a')) {
                if Instant::now() >= until || s.write_all(&[*b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }));
    }
    let http = match argus_client::http::lan_client(pin, super::load::CLIENT_TIMEOUT) {
        Ok(h) => Arc::new(h),
        Err(e) => return (opened, format!("no LAN client: {e}")),
    };
    let url = format!("https://{addr}{detail}");
    let mut phones = Vec::new();
    for _ in 0..2 {
        let (http, url, token) = (http.clone(), url.clone(), token.to_owned());
        phones.push(tokio::spawn(async move {
            let mut t = Tally::default();
            while Instant::now() < until {
                let started = Instant::now();
                let outcome = match http.get(&url).bearer_auth(&token).send().await {
                    Ok(r) if r.status() == 200 => match r.bytes().await {
                        Ok(_) => super::load::Outcome::Ok,
                        Err(_) => super::load::Outcome::Failed("transport: body cut".into()),
                    },
                    Ok(r) => super::load::Outcome::Failed(format!("LAN {}", r.status().as_u16())),
                    Err(e) => super::load::Outcome::Failed(format!(
                        "LAN transport: {}",
                        if e.is_timeout() {
                            "timeout".to_owned()
                        } else {
                            error_chain(&e)
                        }
                    )),
                };
                t.record(outcome, started.elapsed());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            t
        }));
    }
    let mut summary = Tally::default();
    for p in phones {
        if let Ok(t) = p.await {
            summary.merge(t);
        }
    }
    for s in slow {
        let _ = s.await;
    }
    drop(bare);
    let text = format!(
        "{} ok of {} (p99 {:.0} ms)",
        summary.ok,
        summary.requests,
        summary.percentile_ms(0.99)
    );
    lan.merge(summary);
    (opened, text)
}
