//! The load-and-fault suite (issue 19): the whole chain — phone → Worker in workerd → tunnel
//! stand-in → agent → stand-in ArgusAI — under a phone-like load, with faults injected one at a
//! time while the load runs, and the figures of each window.
//!
//! [`run`] starts one stack with everything the faults need (a stand-in cloudflared the agent
//! supervises, the LAN listener, the agent's data directory on a small tmpfs, the agent's clock
//! under libfaketime), pairs the phones, and for each client count runs a window per fault:
//! `requests_per_window / 4` requests of calm load, the fault for `hold`, the fault taken away,
//! recovery measured by a probe phone, and load until the window holds `requests_per_window`
//! requests. After each window the agent's database is checked (`PRAGMA integrity_check`, no
//! device and no refresh family lost). Then, optionally, the soak. [`report`] turns the result
//! into docs/reliability.md.
//!
//! Bounded: every phase has a request count and a time limit; every process belongs to the
//! [`Stack`] and dies with it; load goes only to loopback.

pub mod faults;
pub mod load;
pub mod report;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use faults::{Fault, FaultKit};
use load::{Load, Reference, Tally};

use crate::cloudflared::TunnelOptions;
use crate::phone::Phone;
use crate::stack::{PairedDevice, Stack, StackOptions};

/// How big a run is.
#[derive(Debug, Clone)]
pub struct ChaosConfig {
    /// Concurrent phones, one level after the other (the issue: 64 and 256).
    pub clients: Vec<usize>,
    /// Requests in each fault's window (the issue: 10,000).
    pub requests_per_window: u64,
    /// How long a fault lasts (some last longer: see [`faults::inject`]).
    pub hold: Duration,
    /// The faults, in order.
    pub faults: Vec<Fault>,
    /// Phones that also keep the notification WebSocket open (one more watches a live stream).
    pub streams: usize,
    /// A phone refreshes its tokens every this many requests.
    pub refresh_every: u64,
    /// The soak at a steady load of `clients[0]` phones (`None`: no soak).
    pub soak: Option<Duration>,
}

impl ChaosConfig {
    /// The short run of `make test`: 16 phones, 300 requests per window, every fault once.
    pub fn short() -> ChaosConfig {
        ChaosConfig {
            clients: vec![16],
            requests_per_window: 300,
            hold: Duration::from_secs(2),
            faults: Fault::ALL.to_vec(),
            streams: 3,
            refresh_every: 40,
            soak: None,
        }
    }

    /// The run of `make chaos` (the sizes), each size overridable from the environment:
    /// `CHAOS_CLIENTS` (comma-separated, default `64,256`), `CHAOS_REQUESTS` (per window,
    /// default 10000), `CHAOS_SOAK_SECS` (default 1800; 0 = no soak), `CHAOS_HOLD_SECS`
    /// (default 3), `CHAOS_FAULTS` (comma-separated [`Fault::name`]s, default all).
    pub fn full_from_env() -> Result<ChaosConfig, String> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let num = |k: &str, default: u64| -> Result<u64, String> {
            var(k).map_or(Ok(default), |v| {
                v.trim().parse().map_err(|e| format!("{k}={v}: {e}"))
            })
        };
        let clients = match var("CHAOS_CLIENTS") {
            Some(v) => v
                .split(',')
                .map(|c| {
                    c.trim()
                        .parse()
                        .map_err(|e| format!("CHAOS_CLIENTS={v}: {e}"))
                })
                .collect::<Result<Vec<usize>, String>>()?,
            None => vec![64, 256],
        };
        if clients.is_empty() || clients.contains(&0) {
            return Err("CHAOS_CLIENTS needs at least one non-zero count".into());
        }
        let soak = num("CHAOS_SOAK_SECS", 1800)?;
        let faults = match var("CHAOS_FAULTS") {
            Some(v) => v
                .split(',')
                .map(|name| {
                    Fault::ALL
                        .into_iter()
                        .find(|f| f.name() == name.trim())
                        .ok_or_else(|| {
                            let names: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
                            format!(
                                "CHAOS_FAULTS: unknown {name:?} (known: {})",
                                names.join(", ")
                            )
                        })
                })
                .collect::<Result<Vec<Fault>, String>>()?,
            None => Fault::ALL.to_vec(),
        };
        Ok(ChaosConfig {
            clients,
            requests_per_window: num("CHAOS_REQUESTS", 10_000)?.max(40),
            hold: Duration::from_secs(num("CHAOS_HOLD_SECS", 3)?.max(1)),
            faults,
            streams: 4,
            refresh_every: 50,
            soak: (soak > 0).then(|| Duration::from_secs(soak)),
        })
    }
}

/// What the agent's database holds that must never be lost.
#[derive(Debug, Clone, Default)]
pub struct Held {
    pub devices: BTreeSet<String>,
    pub families: BTreeSet<String>,
    /// `PRAGMA integrity_check`'s answer (`ok`) or why it could not run.
    pub integrity: String,
}

impl Held {
    /// Reads the agent's database (read-only, beside the running agent).
    pub fn read(data_dir: &Path) -> Held {
        let path = data_dir.join("relay.db");
        let read = || -> rusqlite::Result<Held> {
            let db = rusqlite::Connection::open_with_flags(
                &path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )?;
            db.busy_timeout(Duration::from_secs(5))?;
            let integrity: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
            let set = |sql: &str| -> rusqlite::Result<BTreeSet<String>> {
                let mut stmt = db.prepare(sql)?;
                let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
                rows.collect()
            };
            Ok(Held {
                devices: set("SELECT id FROM devices WHERE revoked_at IS NULL")?,
                families: set("SELECT id FROM refresh_families WHERE revoked_at IS NULL")?,
                integrity,
            })
        };
        read().unwrap_or_else(|e| Held {
            integrity: format!("cannot read {}: {e}", path.display()),
            ..Held::default()
        })
    }
}

/// Devices and refresh families there before a window and gone after it, and the integrity check.
#[derive(Debug, Clone, Default)]
pub struct Lost {
    pub devices: usize,
    pub families: usize,
    pub integrity: String,
}

/// One window's figures.
#[derive(Debug, Clone)]
pub struct Row {
    pub clients: usize,
    pub fault: Fault,
    pub tally: Tally,
    /// From the faulty part being back to the first correct answer through the whole chain.
    pub recovery: Option<Duration>,
    pub lost: Lost,
    pub notes: Vec<String>,
    /// The fault's own expectations that did not hold (see [`faults::Injected::broken`]).
    pub broken: Vec<String>,
    /// Why the fault was not injected (a capability the machine lacks).
    pub skipped: Option<String>,
    pub seconds: f64,
}

/// The soak's figures.
#[derive(Debug, Clone, Default)]
pub struct Soak {
    pub clients: usize,
    pub seconds: f64,
    pub tally: Tally,
    /// (seconds since start, agent RSS KiB, agent open fds)
    pub samples: Vec<(f64, u64, usize)>,
    pub rss_slope_mb_per_10min: f64,
    pub p99_start_ms: f64,
    pub p99_end_ms: f64,
}

/// Everything a run measured.
#[derive(Debug, Clone)]
pub struct ChaosReport {
    pub config: ChaosConfig,
    pub rows: Vec<Row>,
    pub soak: Option<Soak>,
    pub started_unix: u64,
    pub seconds: f64,
    /// The agent's warnings and errors (its last process), for the report.
    pub agent_warnings: Vec<String>,
}

/// Recovery is given up after this long.
pub const RECOVERY_LIMIT: Duration = Duration::from_secs(60);
/// A window (or the soak's sample) waits at most this long for its requests.
const WINDOW_LIMIT: Duration = Duration::from_secs(600);

/// The stack every fault can be injected into. Panics (with why) if it cannot start.
async fn chaos_stack(dir: &Path) -> (Stack, FaultKit, Vec<String>) {
    let mut skipped = Vec::new();
    let clock_file = dir.join("agent-clock");
    let mut agent_env = Vec::new();
    match faults::faketime_env(&clock_file) {
        Some(env) => agent_env.extend(env),
        None => skipped.push(
            "clock steps: libfaketime is absent (Debian package `faketime`; scripts/bootstrap.sh \
             installs it)"
                .into(),
        ),
    }
    // SAFETY: plain syscall.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        skipped.push("disk full: mounting the agent's small disk needs root".into());
    }
    let mdns = crate::lan::mdns_port();
    let stack = Stack::start_with(StackOptions {
        tunnel: Some(TunnelOptions::default()),
        agent_toml: Some(crate::lan::lan_section(mdns, "Chaos home")),
        agent_env,
        // Many phones from one loopback address: the Worker's per-client limits would be the
        // only thing measured.
        rate_limits: vec![
            ("PAIRING_LIMITER".into(), 1_000_000),
            ("DEVICE_LIMITER".into(), 1_000_000),
        ],
        agent_data_disk_bytes: root.then_some(32 * 1024 * 1024),
        backend_quiet: true,
        ..StackOptions::default()
    })
    .await;
    let lan_pin =
        argus_client::pin::Pin::of_certificate(crate::lan::agent_certificate(&stack).as_ref());
    let kit = FaultKit {
        clock_file,
        lan_pin: Some(lan_pin),
    };
    (stack, kit, skipped)
}

/// Why `fault` cannot run here, if it cannot.
fn unavailable(fault: Fault, stack: &Stack, kit: &FaultKit) -> Option<String> {
    match fault {
        Fault::DiskFull if stack.small_disk.is_none() => {
            Some("needs root to mount the agent's small disk".into())
        }
        Fault::ClockAhead | Fault::ClockBehind
            if !kit.clock_file.exists() || faults::libfaketime().is_none() =>
        {
            Some("needs libfaketime (Debian package `faketime`)".into())
        }
        _ => None,
    }
}

/// Pairs `n` phones through the Worker.
async fn pair_phones(stack: &Stack, n: usize) -> Vec<PairedDevice> {
    let mut devices = Vec::with_capacity(n);
    for _ in 0..n {
        devices.push(stack.pair_phone("viewer").await);
    }
    devices
}

/// Asks for an event's detail through the whole chain every 100 ms until the answer is right;
/// how long that took (`None`: not within [`RECOVERY_LIMIT`]).
async fn recovery(phone: &Phone, token: &str, reference: &Reference) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < RECOVERY_LIMIT {
        if load::probe_detail(phone, token, reference).await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Waits for `n` more requests of `load`, pushing a notification every 200 ms meanwhile.
async fn load_for(load: &Load, stack: &Stack, n: u64) {
    let target = load.completed() + n;
    let deadline = Instant::now() + WINDOW_LIMIT;
    while load.completed() < target && Instant::now() < deadline {
        load.notify(stack);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The agent's open file descriptors.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Least-squares slope of `(x, y)`.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let (mx, my) = (
        points.iter().map(|p| p.0).sum::<f64>() / n,
        points.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let cov: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let var: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if var == 0.0 {
        0.0
    } else {
        cov / var
    }
}

/// Runs the whole suite. `progress` gets a line per finished window.
pub async fn run(config: ChaosConfig, progress: impl Fn(&str)) -> ChaosReport {
    let started = Instant::now();
    let started_unix = crate::signer::unix_now();
    let work = tempfile::Builder::new()
        .prefix("argus-chaos-")
        .tempdir()
        .expect("temp dir");
    let (mut stack, kit, skipped) = chaos_stack(work.path()).await;
    for s in &skipped {
        progress(&format!("SKIPPED: {s}"));
    }
    let most = config.clients.iter().copied().max().unwrap_or(1);
    let mut phones = pair_phones(&stack, most).await;
    let probe_phone = stack.phone();
    let reference = Arc::new(Reference::of(&stack));
    reference
        .learn_thumbnails(&probe_phone, &phones[0].access_token)
        .await
        .unwrap_or_else(|e| panic!("thumbnails before any fault: {e}\n{}", stack.logs()));

    let mut rows = Vec::new();
    for &clients in &config.clients {
        let load = Load::start(
            &stack,
            reference.clone(),
            &phones[..clients],
            config.streams,
            config.refresh_every,
        );
        load_for(&load, &stack, config.requests_per_window / 8).await;
        for &fault in &config.faults {
            let window_started = Instant::now();
            // The probe phone is paired afresh for every window: its access token must not
            // expire (15 minutes) in a long run.
            let probe_device = stack.pair_phone("viewer").await;
            let from = load.completed();
            load.take_window();
            let before = Held::read(stack.agent.data_dir());
            let skipped = unavailable(fault, &stack, &kit);
            load_for(&load, &stack, config.requests_per_window / 4).await;
            let mut lan = Tally::default();
            let (mut recovered, mut notes, mut broken) = (None, Vec::new(), Vec::new());
            if skipped.is_none() {
                match faults::inject(&mut stack, &kit, fault, config.hold, &mut lan).await {
                    Ok(injected) => {
                        notes = injected.notes;
                        broken = injected.broken;
                        if fault != Fault::None {
                            recovered =
                                recovery(&probe_phone, &probe_device.access_token, &reference)
                                    .await;
                        }
                    }
                    Err(e) => broken.push(format!("injection failed: {e}")),
                }
            }
            let done = load.completed() - from;
            load_for(
                &load,
                &stack,
                config.requests_per_window.saturating_sub(done),
            )
            .await;
            let mut tally = load.take_window();
            tally.merge(lan);
            let after = Held::read(stack.agent.data_dir());
            let lost = Lost {
                devices: before.devices.difference(&after.devices).count(),
                families: before.families.difference(&after.families).count(),
                integrity: after.integrity,
            };
            let row = Row {
                clients,
                fault,
                tally,
                recovery: recovered,
                lost,
                notes,
                broken,
                skipped,
                seconds: window_started.elapsed().as_secs_f64(),
            };
            progress(&report::row_line(&row));
            rows.push(row);
        }
        load.stop(&mut phones[..clients]).await;
    }

    let soak = match config.soak {
        Some(length) => Some(
            soak(
                &stack,
                &reference,
                &mut phones[..config.clients[0]],
                &config,
                length,
                &progress,
            )
            .await,
        ),
        None => None,
    };
    let output = stack.agent.output();
    let mut agent_warnings: Vec<String> = output
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .map(str::to_owned)
        .collect();
    agent_warnings.dedup();
    let keep = agent_warnings.len().saturating_sub(40);
    agent_warnings.drain(..keep);
    drop(stack);
    ChaosReport {
        agent_warnings,
        config,
        rows,
        soak,
        started_unix,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// A steady load for `length`: the agent's RSS and open descriptors sampled every 10 s, p99 of
/// the first and the last minute.
async fn soak(
    stack: &Stack,
    reference: &Arc<Reference>,
    phones: &mut [PairedDevice],
    config: &ChaosConfig,
    length: Duration,
    progress: &impl Fn(&str),
) -> Soak {
    let load = Load::start(
        stack,
        reference.clone(),
        phones,
        config.streams,
        config.refresh_every,
    );
    let pid = stack.agent.pid().unwrap_or(0);
    let started = Instant::now();
    let sample_every = Duration::from_secs(10).min(length / 6);
    let mut all = Tally::default();
    let mut samples = Vec::new();
    let mut windows: Vec<(f64, Tally)> = Vec::new();
    load.take_window();
    while started.elapsed() < length {
        tokio::time::sleep(sample_every).await;
        load.notify(stack);
        let t = load.take_window();
        let at = started.elapsed().as_secs_f64();
        samples.push((
            at,
            crate::agent::rss_kib_of(pid).unwrap_or(0),
            open_fds(pid),
        ));
        windows.push((at, t));
        if windows.len().is_multiple_of(6) {
            progress(&format!(
                "soak {at:.0} s: RSS {} KiB, {} fds",
                samples.last().map_or(0, |s| s.1),
                samples.last().map_or(0, |s| s.2)
            ));
        }
    }
    load.stop(phones).await;
    let span = (60.0_f64).min(length.as_secs_f64() / 3.0);
    let total = started.elapsed().as_secs_f64();
    let mut first = Tally::default();
    let mut last = Tally::default();
    for (at, t) in windows {
        if at <= span + 0.5 {
            first.merge(t.clone());
        }
        if at >= total - span - 0.5 {
            last.merge(t.clone());
        }
        all.merge(t);
    }
    // The first minute warms caches and pools: the slope is taken after it.
    let points: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.0 > span)
        .map(|s| (s.0 / 600.0, s.1 as f64 / 1024.0))
        .collect();
    Soak {
        clients: phones.len(),
        seconds: total,
        rss_slope_mb_per_10min: slope(&points),
        p99_start_ms: first.percentile_ms(0.99),
        p99_end_ms: last.percentile_ms(0.99),
        tally: all,
        samples,
    }
}
