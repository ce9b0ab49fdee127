//! A small closed-loop HTTP/1.1 load generator for `make bench` (scripts/bench-proxy.sh).
//!
//! Why not oha or wrk: requests to the agent's tunnel listener must carry a fresh edge signature
//! each (HMAC over method, path, device, client IP, body digest, with a never-reused nonce), which
//! no off-the-shelf generator computes. This one signs every request exactly like the Worker
//! (`argus_shared::signature`), and does the same work for every target — the backend direct,
//! nginx, the agent — so the comparison is fair (the backend and nginx ignore the headers).
//!
//! ```text
//! loadgen --target NAME=URL [--target NAME=URL]... | --url URL [--label NAME]
//!         [--connections 64] [--duration 10] [--warmup 2] [--rounds 1] [--threads 1]
//!         [--secret HEX] [--token JWT] [--device ID] [--pair-code CODE] [--pair-url URL]
//!         [--client-ip IP] [--rss-pid PID] [--hold SECS] [--header NAME:VALUE]...
//! loadgen compare FILE...
//! ```
//! Per target, N keep-alive connections, each sending the next request as soon as the previous
//! answer is read. With several targets and `--rounds R`, the targets take turns in R slices of
//! `duration / R` each (after a `warmup` each), so a change in the machine's background load
//! affects every target alike. Every request is identical whatever the target (the same signed
//! headers, token and extra headers), so the client does the same work for each.
//! `--pair-code` pairs a device first (signed POST to `/api/v1/devices/pair` at `--pair-url`,
//! default the first target) and uses its token. `--rss-pid` samples that process's resident
//! memory during the run (peak), and after `--hold` seconds with every connection still open and
//! idle. Prints one JSON line per target: requests, errors, rps, p50/p90/p99/p99.9/max (ms).
//! `compare` reads such lines and prints a Markdown table, each run against the first (and its
//! throughput against the first run labelled `nginx…`, if any).
//! Every request carries a fresh `X-Request-Id`, as the Worker's do.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use argus_shared::headers;
use argus_shared::signature::{self, BodyBinding, SignedParts};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

const USAGE: &str = "usage: loadgen (--target NAME=URL)... | --url URL [--label NAME]
       [--connections N] [--duration S] [--warmup S] [--rounds N] [--threads N] [--secret HEX]
       [--token JWT] [--device ID] [--pair-code CODE] [--pair-url URL] [--client-ip IP]
       [--rss-pid PID] [--hold S] [--header NAME:VALUE]...
       loadgen compare FILE...";

/// Where requests go: `http://ip:port/path?query`.
#[derive(Clone)]
struct Target {
    label: String,
    addr: SocketAddr,
    host: String,
    path: String,
}

fn target(label: &str, url: &str) -> Result<Target, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: must be http://ip:port/path"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Ok(Target {
        label: label.to_owned(),
        addr: host
            .parse()
            .map_err(|e| format!("{host}: {e} (use ip:port)"))?,
        host: host.to_owned(),
        path: path.to_owned(),
    })
}

#[derive(Clone)]
struct Args {
    targets: Vec<Target>,
    connections: usize,
    duration: Duration,
    warmup: Duration,
    rounds: u32,
    threads: usize,
    secret: Option<Vec<u8>>,
    token: Option<String>,
    device: Option<String>,
    pair_code: Option<String>,
    pair_url: Option<Target>,
    client_ip: String,
    rss_pid: Option<u32>,
    hold: Duration,
    extra_headers: Vec<(String, String)>,
}

fn parse() -> Result<Args, String> {
    let mut url = None;
    let mut label = "run".to_owned();
    let mut a = Args {
        targets: Vec::new(),
        connections: 64,
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(2),
        rounds: 1,
        threads: 1,
        secret: None,
        token: None,
        device: None,
        pair_code: None,
        pair_url: None,
        client_ip: "198.51.100.7".into(),
        rss_pid: None,
        hold: Duration::ZERO,
        extra_headers: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let secs = |v: String| -> Result<Duration, String> {
            v.parse::<f64>()
                .map(Duration::from_secs_f64)
                .map_err(|e| format!("{v}: {e}"))
        };
        match flag.as_str() {
            "--url" => url = Some(value()?),
            "--label" => label = value()?,
            "--target" => {
                let v = value()?;
                let (name, u) = v.split_once('=').ok_or("--target needs NAME=URL")?;
                a.targets.push(target(name, u)?);
            }
            "--connections" => a.connections = value()?.parse().map_err(|e| format!("{e}"))?,
            "--duration" => a.duration = secs(value()?)?,
            "--warmup" => a.warmup = secs(value()?)?,
            "--rounds" => a.rounds = value()?.parse().map_err(|e| format!("{e}"))?,
            "--threads" => a.threads = value()?.parse().map_err(|e| format!("{e}"))?,
            "--secret" => a.secret = Some(hex::decode(value()?).map_err(|e| format!("{e}"))?),
            "--token" => a.token = Some(value()?),
            "--device" => a.device = Some(value()?),
            "--pair-code" => a.pair_code = Some(value()?),
            "--pair-url" => a.pair_url = Some(target("pair", &value()?)?),
            "--client-ip" => a.client_ip = value()?,
            "--rss-pid" => a.rss_pid = Some(value()?.parse().map_err(|e| format!("{e}"))?),
            "--hold" => a.hold = secs(value()?)?,
            "--header" => {
                let v = value()?;
                let (k, val) = v.split_once(':').ok_or("--header needs NAME:VALUE")?;
                a.extra_headers
                    .push((k.trim().to_owned(), val.trim().to_owned()));
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if let Some(u) = url {
        a.targets.push(target(&label, &u)?);
    }
    if a.targets.is_empty() {
        return Err("--target or --url is required".into());
    }
    if a.connections == 0 || a.threads == 0 || a.rounds == 0 {
        return Err("--connections, --threads and --rounds must be at least 1".into());
    }
    Ok(a)
}

/// Unique nonces without a hash per request: a random prefix and a counter.
struct Nonces {
    prefix: String,
    counter: AtomicU64,
}

impl Nonces {
    fn new() -> Nonces {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            ^ u128::from(std::process::id()) << 64;
        let digest = <sha2::Sha256 as sha2::Digest>::digest(seed.to_le_bytes());
        Nonces {
            prefix: hex::encode(&digest[..8]),
            counter: AtomicU64::new(0),
        }
    }

    fn next(&self) -> String {
        format!(
            "{}{:016x}",
            self.prefix,
            self.counter.fetch_add(1, Ordering::Relaxed)
        )
    }
}

fn request(
    a: &Args,
    nonces: &Nonces,
    host: &str,
    method: &str,
    target: &str,
    body: Option<Vec<u8>>,
) -> Request<Full<Bytes>> {
    // A fresh request id on every request, as the Worker sends (the agent keeps a well-formed
    // one instead of making its own).
    let mut rb = Request::builder()
        .method(method)
        .uri(target)
        .header("host", host)
        .header(headers::REQUEST_ID, nonces.next());
    let body = body.unwrap_or_default();
    if let Some(secret) = &a.secret {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let nonce = nonces.next();
        let binding = BodyBinding::of_bytes(&body);
        let parts = SignedParts {
            method,
            path_and_query: target,
            device_id: a.device.as_deref(),
            client_ip: Some(&a.client_ip),
            body: binding,
            link: None,
        };
        if let Ok(sig) = signature::sign(secret, &parts, now, &nonce) {
            rb = rb
                .header(headers::RELAY_SIGNATURE, sig)
                .header(headers::RELAY_TIMESTAMP, now.to_string())
                .header(headers::RELAY_NONCE, nonce)
                .header(headers::RELAY_BODY_DIGEST, binding.to_header_value())
                .header(headers::RELAY_CLIENT_IP, &a.client_ip)
                .header(headers::X_FORWARDED_FOR, &a.client_ip);
            if let Some(d) = &a.device {
                rb = rb.header(headers::RELAY_DEVICE, d);
            }
        }
    }
    if let Some(t) = &a.token {
        rb = rb.header("authorization", format!("Bearer {t}"));
    }
    for (k, v) in &a.extra_headers {
        rb = rb.header(k.as_str(), v.as_str());
    }
    if !body.is_empty() {
        rb = rb.header("content-type", "application/json");
    }
    rb.body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Request::new(Full::new(Bytes::new())))
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> Result<Sender, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Pairs a device with an owner code (signed like the Worker) and returns (device id, token).
async fn pair(a: &Args, nonces: &Nonces, code: &str) -> Result<(String, String), String> {
    let at = a.pair_url.as_ref().unwrap_or(&a.targets[0]);
    let mut sender = connect(at.addr).await?;
    let body = serde_json::json!({
        "code": code,
        "device_info": {"name": "loadgen", "model": "bench", "platform": "ios",
                        "os_version": "18.1", "app_version": "1.4.0"}
    });
    let req = request(
        a,
        nonces,
        &at.host,
        "POST",
        "/api/v1/devices/pair",
        Some(body.to_string().into_bytes()),
    );
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("pair: {e}"))?;
    let status = resp.status();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("pair: {e}"))?
        .to_bytes();
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("pair answer: {e}"))?;
    if !status.is_success() {
        return Err(format!("pair: {status} {v}"));
    }
    match (v["device_id"].as_str(), v["access_token"].as_str()) {
        (Some(d), Some(t)) => Ok((d.to_owned(), t.to_owned())),
        _ => Err(format!("pair answer without a token: {v}")),
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

struct Outcome {
    latencies_us: Vec<u32>,
    errors: u64,
    non_2xx: u64,
    sender: Option<Sender>,
}

async fn worker(
    a: Arc<Args>,
    nonces: Arc<Nonces>,
    t: Arc<Target>,
    mut sender: Sender,
    measure_from: Instant,
    stop_at: Instant,
) -> Outcome {
    let mut out = Outcome {
        latencies_us: Vec::with_capacity(16 * 1024),
        errors: 0,
        non_2xx: 0,
        sender: None,
    };
    loop {
        if Instant::now() >= stop_at {
            break;
        }
        if sender.ready().await.is_err() {
            out.errors += 1;
            match connect(t.addr).await {
                Ok(s) => sender = s,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let req = request(&a, &nonces, &t.host, "GET", &t.path, None);
        let started = Instant::now();
        let ok = match sender.send_request(req).await {
            Ok(resp) => {
                let good = resp.status().is_success();
                match resp.into_body().collect().await {
                    Ok(_) => Some(good),
                    Err(_) => None,
                }
            }
            Err(_) => None,
        };
        let took = started.elapsed();
        if started >= measure_from {
            match ok {
                Some(true) => out
                    .latencies_us
                    .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX)),
                Some(false) => out.non_2xx += 1,
                None => out.errors += 1,
            }
        }
    }
    out.sender = Some(sender);
    out
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i.min(sorted.len() - 1)]) / 1000.0
}

#[derive(Default)]
struct Tally {
    latencies: Vec<u32>,
    errors: u64,
    non_2xx: u64,
    measured: Duration,
}

/// Runs every connection of `t` from now until `warmup + slice` from now; measures the slice.
async fn slice(
    a: &Arc<Args>,
    nonces: &Arc<Nonces>,
    t: &Arc<Target>,
    senders: Vec<Sender>,
    warmup: Duration,
    length: Duration,
    tally: &mut Tally,
) -> Result<Vec<Sender>, String> {
    let measure_from = Instant::now() + warmup;
    let stop_at = measure_from + length;
    let tasks: Vec<_> = senders
        .into_iter()
        .map(|s| {
            tokio::spawn(worker(
                a.clone(),
                nonces.clone(),
                t.clone(),
                s,
                measure_from,
                stop_at,
            ))
        })
        .collect();
    let mut back = Vec::with_capacity(tasks.len());
    for task in tasks {
        let o = task.await.map_err(|e| e.to_string())?;
        tally.latencies.extend(o.latencies_us);
        tally.errors += o.errors;
        tally.non_2xx += o.non_2xx;
        back.extend(o.sender);
    }
    tally.measured += length;
    Ok(back)
}

async fn run(mut a: Args) -> Result<Vec<serde_json::Value>, String> {
    let nonces = Arc::new(Nonces::new());
    if let Some(code) = a.pair_code.clone() {
        let (device, token) = pair(&a, &nonces, &code).await?;
        a.device = Some(device);
        a.token = Some(token);
    }
    let a = Arc::new(a);
    let targets: Vec<Arc<Target>> = a.targets.iter().cloned().map(Arc::new).collect();

    // Open every connection first.
    let mut conns: Vec<Vec<Sender>> = Vec::new();
    for t in &targets {
        let mut v = Vec::with_capacity(a.connections);
        for _ in 0..a.connections {
            v.push(connect(t.addr).await?);
        }
        conns.push(v);
    }
    let peak = Arc::new(AtomicU64::new(0));
    let sampling = Arc::new(AtomicBool::new(true));
    if let Some(pid) = a.rss_pid {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid).unwrap_or(0), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
    let mut tallies: Vec<Tally> = targets.iter().map(|_| Tally::default()).collect();
    let length = a.duration / a.rounds;
    for round in 0..a.rounds {
        for (i, t) in targets.iter().enumerate() {
            // A full warm-up the first time, a short ramp in later rounds.
            let warmup = if round == 0 {
                a.warmup
            } else {
                a.warmup.min(Duration::from_millis(300))
            };
            let senders = std::mem::take(&mut conns[i]);
            conns[i] = slice(&a, &nonces, t, senders, warmup, length, &mut tallies[i]).await?;
        }
    }
    let rss_after_run = a.rss_pid.and_then(rss_kib);
    let mut rss_hold = None;
    if !a.hold.is_zero() {
        // Every connection still open, idle.
        tokio::time::sleep(a.hold).await;
        rss_hold = a.rss_pid.and_then(rss_kib);
    }
    sampling.store(false, Ordering::Relaxed);
    drop(conns);
    let mut out = Vec::new();
    for (t, mut tally) in targets.iter().zip(tallies) {
        tally.latencies.sort_unstable();
        let l = &tally.latencies;
        let seconds = tally.measured.as_secs_f64();
        out.push(serde_json::json!({
            "label": t.label,
            "connections": a.connections,
            "rounds": a.rounds,
            "seconds": seconds,
            "requests": l.len(),
            "errors": tally.errors,
            "non_2xx": tally.non_2xx,
            "rps": l.len() as f64 / seconds.max(1e-9),
            "p50_ms": percentile(l, 0.50),
            "p90_ms": percentile(l, 0.90),
            "p99_ms": percentile(l, 0.99),
            "p999_ms": percentile(l, 0.999),
            "max_ms": l.last().map(|m| f64::from(*m) / 1000.0).unwrap_or(0.0),
            "rss_peak_kib": a.rss_pid.map(|_| peak.load(Ordering::Relaxed)),
            "rss_after_kib": rss_after_run,
            "rss_hold_kib": rss_hold,
        }));
    }
    Ok(out)
}

/// `loadgen compare A.json B.json…`: a Markdown table, each run against the first.
fn compare(files: &[String]) -> Result<String, String> {
    let mut runs = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{f}: {e}"))?;
        for line in text.lines().filter(|l| l.starts_with('{')) {
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| format!("{f}: {e}"))?;
            runs.push(v);
        }
    }
    let base = runs.first().ok_or("no runs")?;
    let num = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or(0.0);
    // Throughput against nginx too, when one of the runs is nginx's.
    let nginx = runs
        .iter()
        .find(|r| r["label"].as_str().is_some_and(|l| l.starts_with("nginx")));
    let mut out = String::from(
        "| run | conns | req/s | vs direct | vs nginx | p50 ms | p50 added ms | p99 ms | p99 added ms | errors |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in &runs {
        let ratio = num(r, "rps") / num(base, "rps").max(1e-9) * 100.0;
        let vs_nginx = nginx.map_or("–".to_owned(), |n| {
            format!("{:.1} %", num(r, "rps") / num(n, "rps").max(1e-9) * 100.0)
        });
        out.push_str(&format!(
            "| {} | {} | {:.0} | {:.1} % | {} | {:.3} | {:+.3} | {:.3} | {:+.3} | {} |\n",
            r["label"].as_str().unwrap_or("?"),
            r["connections"],
            num(r, "rps"),
            ratio,
            vs_nginx,
            num(r, "p50_ms"),
            num(r, "p50_ms") - num(base, "p50_ms"),
            num(r, "p99_ms"),
            num(r, "p99_ms") - num(base, "p99_ms"),
            num(r, "errors") + num(r, "non_2xx"),
        ));
    }
    Ok(out)
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("compare") {
        return match compare(&argv[2..]) {
            Ok(table) => {
                print!("{table}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("loadgen compare: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let args = match parse() {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("loadgen: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadgen: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(lines) => {
            for v in lines {
                println!("{v}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}
