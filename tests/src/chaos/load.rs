//! The load: phones doing what the ArgusAI app does, each answer checked against what the
//! backend holds for that very request.
//!
//! Every client is a paired device talking to the Worker. In a loop it asks, in a fixed mix,
//! for event-list pages (the app's `limit`/`offset` and the relay's compact `page`/`fields`),
//! event details, event thumbnails (transcoded and cached by the Worker), and now and then
//! refreshes its tokens (at once when the access token has expired, as the app does; after a
//! failed refresh it keeps the refresh token it has, as the app must, and when the answer was
//! lost — no answer, or a 5xx — sends the refresh again at once, within the agent's 30 s grace,
//! as docs/mobile-integration.md asks). A few phones keep the WebSocket notification stream
//! open and one watches a live camera stream; they reconnect when it drops.
//!
//! Checks: a list page must hold exactly the ids the backend has at that offset, each event
//! equal to the backend's; a detail must equal the backend's event; a thumbnail must be a JPEG
//! whose digest equals the one the stack gave for the same URL before any fault (the backend's
//! own bytes when the Worker passed it through untouched). A failed answer must be a JSON error
//! (`{"error":{"code",…}}`) with its status. Notifications must arrive in the order the backend
//! sent them; live frames must be whole JPEGs.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argus_shared::image::{probe, Probe};
use base64::Engine as _;
use futures_util::StreamExt;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

use crate::phone::Phone;
use crate::stack::{PairedDevice, Stack};

/// Events per page of the app's list and of the compact list.
const PAGE: usize = 20;
/// The compact list's fields, as the seed names them.
const COMPACT_FIELDS: &str = "id,timestamp,thumbnail_url,description";
/// A phone gives up on an answer after this long (the harness's phones, and about what an app's
/// HTTP client waits; a request of the "slow backend" fault takes 5 s).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// A refresh gives up sooner: a lost answer is retried at once, and the retry must reach the
/// agent within 30 s of the first attempt (docs/mobile-integration.md, "Tokens").
const REFRESH_TIMEOUT: Duration = Duration::from_secs(10);
/// The recovery probe gives up on one answer after this long and asks again.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the backend holds: the reference every answer is checked against.
pub struct Reference {
    ids: Vec<String>,
    events: HashMap<String, Value>,
    thumbnails: Vec<String>,
    /// Thumbnail URL → digest of the answer the stack gave before any fault.
    thumbnail_digests: Mutex<HashMap<String, [u8; 32]>>,
}

impl Reference {
    pub fn of(stack: &Stack) -> Reference {
        let ids = stack.backend.event_ids();
        let events: HashMap<String, Value> = ids
            .iter()
            .filter_map(|id| Some((id.clone(), stack.backend.event_json(id)?)))
            .collect();
        let mut thumbnails: Vec<String> = ids
            .iter()
            .filter_map(|id| events.get(id)?["thumbnail_path"].as_str())
            // ArgusAI stores `thumbnails/<date>/<file>`, served at `/api/v1/thumbnails/<date>/<file>`.
            .map(|p| format!("/api/v1/{}", p.trim_start_matches('/')))
            .collect();
        thumbnails.sort();
        thumbnails.dedup();
        thumbnails.truncate(24);
        Reference {
            ids,
            events,
            thumbnails,
            thumbnail_digests: Mutex::new(HashMap::new()),
        }
    }

    /// Fetches every thumbnail of the mix once, calmly, and keeps its digest (each must be a JPEG).
    pub async fn learn_thumbnails(&self, phone: &Phone, token: &str) -> Result<(), String> {
        for path in &self.thumbnails {
            let resp = phone
                .request(reqwest::Method::GET, path)
                .bearer_auth(token)
                .header("accept", "image/jpeg")
                .send()
                .await
                .map_err(|e| format!("{path}: {e}"))?;
            let status = resp.status().as_u16();
            let body = resp.bytes().await.map_err(|e| format!("{path}: {e}"))?;
            if status != 200 || !matches!(probe(&body), Probe::Jpeg(_)) {
                return Err(format!(
                    "{path}: {status}, {} bytes, not a JPEG before any fault",
                    body.len()
                ));
            }
            self.lock_digests()
                .insert(path.clone(), Sha256::digest(&body).into());
        }
        Ok(())
    }

    fn lock_digests(&self) -> std::sync::MutexGuard<'_, HashMap<String, [u8; 32]>> {
        self.thumbnail_digests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn pages(&self) -> usize {
        self.ids.len().div_ceil(PAGE).max(1)
    }
}

/// One request of the mix.
#[derive(Debug, Clone)]
enum Ask {
    List { offset: usize },
    Compact { page: usize },
    Detail { id: String },
    Thumbnail { path: String },
    Refresh,
}

impl Ask {
    /// The `n`-th request of a client: 6 list pages, 4 compact pages, 5 details, 4 thumbnails
    /// and 1 refresh in every 20 (the refresh only every `refresh_every` requests).
    fn nth(r: &Reference, client: usize, n: u64, refresh_every: u64) -> Ask {
        let k = (n as usize).wrapping_mul(7).wrapping_add(client * 13);
        if n > 0 && n.is_multiple_of(refresh_every) {
            return Ask::Refresh;
        }
        match n % 19 {
            0..=5 => Ask::List {
                offset: (k % r.pages()) * PAGE,
            },
            6..=9 => Ask::Compact {
                page: k % r.pages() + 1,
            },
            10..=14 => Ask::Detail {
                id: r.ids[k % r.ids.len()].clone(),
            },
            _ => Ask::Thumbnail {
                path: r.thumbnails[k % r.thumbnails.len().max(1)].clone(),
            },
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Ask::List { .. } => "list",
            Ask::Compact { .. } => "compact",
            Ask::Detail { .. } => "detail",
            Ask::Thumbnail { .. } => "thumbnail",
            Ask::Refresh => "refresh",
        }
    }
}

/// What became of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Failed cleanly: a JSON error with its status, or a transport error; says how.
    Failed(String),
    /// A failed answer that is not a JSON error.
    BadError(String),
    /// An answer that does not match what the backend holds for the request.
    Crossed(String),
}

/// The tally of one window of the run.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub requests: u64,
    pub ok: u64,
    /// How requests failed ("503 origin_unavailable", "transport: timeout", …) and how often.
    pub failed: BTreeMap<String, u64>,
    pub bad_errors: u64,
    pub crossed: u64,
    /// The first few mismatches and bad errors, for the report.
    pub examples: Vec<String>,
    pub latencies_us: Vec<u32>,
    /// WebSocket notifications received / out of order; live frames / broken frames; reconnects.
    pub notifications: u64,
    pub notifications_out_of_order: u64,
    pub live_frames: u64,
    pub live_frames_broken: u64,
    pub stream_reconnects: u64,
}

impl Tally {
    pub fn record(&mut self, outcome: Outcome, took: Duration) {
        self.requests += 1;
        match outcome {
            Outcome::Ok => {
                self.ok += 1;
                self.latencies_us
                    .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
            }
            Outcome::Failed(how) => *self.failed.entry(how).or_default() += 1,
            Outcome::BadError(what) => {
                self.bad_errors += 1;
                self.example(what);
            }
            Outcome::Crossed(what) => {
                self.crossed += 1;
                self.example(what);
            }
        }
    }

    /// Adds `other`'s counts to this one.
    pub fn merge(&mut self, other: Tally) {
        self.requests += other.requests;
        self.ok += other.ok;
        for (how, n) in other.failed {
            *self.failed.entry(how).or_default() += n;
        }
        self.bad_errors += other.bad_errors;
        self.crossed += other.crossed;
        for e in other.examples {
            self.example(e);
        }
        self.latencies_us.extend(other.latencies_us);
        self.notifications += other.notifications;
        self.notifications_out_of_order += other.notifications_out_of_order;
        self.live_frames += other.live_frames;
        self.live_frames_broken += other.live_frames_broken;
        self.stream_reconnects += other.stream_reconnects;
    }

    fn example(&mut self, what: String) {
        if self.examples.len() < 5 {
            self.examples.push(what);
        }
    }

    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum::<u64>() + self.bad_errors
    }

    /// The `p`-quantile of successful requests' latency, in ms.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        let mut l = self.latencies_us.clone();
        l.sort_unstable();
        if l.is_empty() {
            return 0.0;
        }
        let i = ((l.len() as f64 - 1.0) * p).round() as usize;
        f64::from(l[i.min(l.len() - 1)]) / 1000.0
    }
}

/// The running load: its clients record into the current window's tally.
pub struct Load {
    window: Arc<Mutex<Tally>>,
    completed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    notify_seq: Arc<AtomicU64>,
    /// Each phone's current tokens, in the order of the devices it was started with.
    tokens: Vec<Arc<tokio::sync::Mutex<Tokens>>>,
}

/// A paired phone's tokens, rotated by its refreshes.
struct Tokens {
    device_id: String,
    access: String,
    refresh: String,
    /// The access token's `exp`, read once when it arrives.
    access_exp: Option<u64>,
}

impl Tokens {
    fn new(device_id: &str, access: &str, refresh: &str) -> Tokens {
        let mut tokens = Tokens {
            device_id: device_id.to_owned(),
            access: String::new(),
            refresh: String::new(),
            access_exp: None,
        };
        tokens.renewed(access, refresh);
        tokens
    }

    /// Takes a new pair (pairing or refresh answer).
    fn renewed(&mut self, access: &str, refresh: &str) {
        self.access = access.to_owned();
        self.refresh = refresh.to_owned();
        self.access_exp = access
            .split('.')
            .nth(1)
            .and_then(|claims| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(claims)
                    .ok()
            })
            .and_then(|json| serde_json::from_slice::<Value>(&json).ok())
            .and_then(|claims| claims["exp"].as_u64());
    }

    /// The app renews a minute before the access token runs out (docs/mobile-integration.md,
    /// "Tokens"); its `exp` says when as well as the answer's `expires_in` does.
    fn renewal_due(&self) -> bool {
        self.access_exp
            .is_some_and(|exp| crate::signer::unix_now() + 60 >= exp)
    }
}

impl Load {
    /// Starts `clients` phones (the first `devices.len()` of them, one device each), `streams`
    /// of which also keep a notification WebSocket open, and one live stream.
    pub fn start(
        stack: &Stack,
        reference: Arc<Reference>,
        devices: &[PairedDevice],
        streams: usize,
        refresh_every: u64,
    ) -> Load {
        let window = Arc::new(Mutex::new(Tally::default()));
        let completed = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let notify_seq = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        let mut all_tokens = Vec::new();
        let edge = stack.edge_url();
        for (i, device) in devices.iter().enumerate() {
            let tokens = Arc::new(tokio::sync::Mutex::new(Tokens::new(
                &device.device_id,
                &device.access_token,
                &device.refresh_token,
            )));
            all_tokens.push(tokens.clone());
            let phone = Phone::new(&edge);
            tasks.push(tokio::spawn(client_loop(
                i,
                phone.clone(),
                tokens.clone(),
                reference.clone(),
                window.clone(),
                completed.clone(),
                stop.clone(),
                refresh_every,
            )));
            if i < streams {
                tasks.push(tokio::spawn(socket_loop(
                    edge.clone(),
                    phone.cf.to_string(),
                    "/ws".to_owned(),
                    tokens.clone(),
                    window.clone(),
                    stop.clone(),
                )));
            }
            if i == streams {
                tasks.push(tokio::spawn(socket_loop(
                    edge.clone(),
                    phone.cf.to_string(),
                    format!(
                        "/ws/stream/{}?fps=10",
                        stack
                            .backend
                            .camera_ids()
                            .first()
                            .cloned()
                            .unwrap_or_default()
                    ),
                    tokens,
                    window.clone(),
                    stop.clone(),
                )));
            }
        }
        Load {
            window,
            completed,
            stop,
            tasks,
            notify_seq,
            tokens: all_tokens,
        }
    }

    /// Requests answered (or failed) since the start.
    pub fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    /// Waits until `n` more requests have completed (or `limit` passed).
    pub async fn wait_requests(&self, n: u64, limit: Duration) {
        let target = self.completed() + n;
        let deadline = Instant::now() + limit;
        while self.completed() < target && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Ends the current window: its tally, and a fresh one from now on.
    pub fn take_window(&self) -> Tally {
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *w)
    }

    /// Pushes a numbered notification from the backend to every open `/ws`.
    pub fn notify(&self, stack: &Stack) {
        let seq = self.notify_seq.fetch_add(1, Ordering::Relaxed);
        stack
            .backend
            .notify(serde_json::json!({"type": "chaos", "seq": seq}));
    }

    /// Stops every client and waits for them (each within its request timeout). `devices` (the
    /// ones the load started with) get the tokens their refreshes rotated to: the next load, or
    /// the soak, goes on from each phone's current tokens as the app would. Starting again from
    /// the pairing's tokens is a reused refresh token, and the agent rightly revokes the device.
    pub async fn stop(self, devices: &mut [PairedDevice]) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = tokio::time::timeout(CLIENT_TIMEOUT + Duration::from_secs(5), t).await;
        }
        for (device, tokens) in devices.iter_mut().zip(&self.tokens) {
            let tokens = tokens.lock().await;
            device.access_token.clone_from(&tokens.access);
            device.refresh_token.clone_from(&tokens.refresh);
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn client_loop(
    index: usize,
    phone: Phone,
    tokens: Arc<tokio::sync::Mutex<Tokens>>,
    reference: Arc<Reference>,
    window: Arc<Mutex<Tally>>,
    completed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    refresh_every: u64,
) {
    let mut n: u64 = 0;
    let mut refresh_next = false;
    while !stop.load(Ordering::Relaxed) {
        // As the app does (docs/mobile-integration.md, "Tokens"): the access token is renewed
        // a minute before it runs out, an expired one is refreshed before anything else, and a
        // refresh whose answer was lost is sent again at once with the same token.
        let ask = if refresh_next || tokens.lock().await.renewal_due() {
            Ask::Refresh
        } else {
            Ask::nth(&reference, index, n, refresh_every)
        };
        n += 1;
        let started = Instant::now();
        let timeout = match ask {
            Ask::Refresh => REFRESH_TIMEOUT,
            _ => CLIENT_TIMEOUT,
        };
        let outcome = run(&phone, &tokens, &reference, &ask, timeout).await;
        let took = started.elapsed();
        let failed = !matches!(outcome, Outcome::Ok);
        refresh_next = match (&ask, &outcome) {
            (_, Outcome::Failed(how)) if how.contains("token_expired") => true,
            // No answer, or the relay's own 5xx: the agent may have rotated the tokens.
            (Ask::Refresh, Outcome::Failed(how)) => !how.starts_with('4'),
            _ => false,
        };
        window
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(outcome, took);
        completed.fetch_add(1, Ordering::Relaxed);
        if failed {
            // A phone backs off a little after a failure instead of hammering.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Sends one request of the mix and checks its answer.
async fn run(
    phone: &Phone,
    tokens: &tokio::sync::Mutex<Tokens>,
    r: &Reference,
    ask: &Ask,
    timeout: Duration,
) -> Outcome {
    let (target, body) = match ask {
        Ask::List { offset } => (format!("/api/v1/events?limit={PAGE}&offset={offset}"), None),
        Ask::Compact { page } => (
            format!("/api/v1/events?page={page}&per_page={PAGE}&fields={COMPACT_FIELDS}"),
            None,
        ),
        Ask::Detail { id } => (format!("/api/v1/events/{id}"), None),
        Ask::Thumbnail { path } => (path.clone(), None),
        Ask::Refresh => {
            let t = tokens.lock().await;
            (
                "/api/v1/mobile/auth/refresh".to_owned(),
                Some(serde_json::json!({"refresh_token": t.refresh, "device_id": t.device_id})),
            )
        }
    };
    // A refresh holds the tokens until it knows the outcome, so the phone never races itself.
    let mut held = None;
    let rb = match &body {
        Some(json) => {
            held = Some(tokens.lock().await);
            phone
                .request(reqwest::Method::POST, &target)
                .json(json)
                .timeout(timeout)
        }
        None => {
            let access = tokens.lock().await.access.clone();
            phone
                .request(reqwest::Method::GET, &target)
                .bearer_auth(access)
                .header("accept", "image/jpeg, application/json")
                .timeout(timeout)
        }
    };
    let resp = match rb.send().await {
        Ok(resp) => resp,
        Err(e) => return Outcome::Failed(transport(&e)),
    };
    let status = resp.status().as_u16();
    let bytes = match resp.bytes().await {
        Ok(b) => b,
        Err(e) => return Outcome::Failed(format!("{status} then {}", transport(&e))),
    };
    if !(200..300).contains(&status) {
        return json_error(ask, &target, status, &bytes);
    }
    let what = || format!("{} {target}", ask.kind());
    match ask {
        Ask::Thumbnail { path } => {
            let digest: [u8; 32] = Sha256::digest(&bytes).into();
            match r.lock_digests().get(path) {
                Some(d) if *d == digest => Outcome::Ok,
                Some(_) => Outcome::Crossed(format!(
                    "{}: {} bytes, not the image it was before",
                    what(),
                    bytes.len()
                )),
                None => Outcome::Crossed(format!("{}: no reference digest", what())),
            }
        }
        _ => {
            let v: Value = match serde_json::from_slice(&bytes) {
                Ok(v) => v,
                Err(e) => {
                    return Outcome::Crossed(format!(
                        "{}: {status}, {} bytes, not JSON: {e}",
                        what(),
                        bytes.len()
                    ))
                }
            };
            match check_json(r, ask, &v) {
                Ok(()) => {
                    if let (Ask::Refresh, Some(t)) = (ask, held.as_mut()) {
                        match (v["access_token"].as_str(), v["refresh_token"].as_str()) {
                            (Some(a), Some(f)) => {
                                t.renewed(a, f);
                            }
                            _ => return Outcome::Crossed(format!("{}: no tokens", what())),
                        }
                    }
                    Outcome::Ok
                }
                Err(e) => Outcome::Crossed(format!("{}: {e}", what())),
            }
        }
    }
}

/// One event detail through the whole chain, with a short timeout: `true` when the answer is
/// right (the recovery probe).
pub async fn probe_detail(phone: &Phone, token: &str, r: &Reference) -> bool {
    let Some(id) = r.ids.first() else {
        return false;
    };
    let tokens = tokio::sync::Mutex::new(Tokens::new("", token, ""));
    let ask = Ask::Detail { id: id.clone() };
    run(phone, &tokens, r, &ask, PROBE_TIMEOUT).await == Outcome::Ok
}

fn transport(e: &reqwest::Error) -> String {
    let how = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body cut"
    } else {
        "connection closed"
    };
    format!("transport: {how}")
}

/// A failed answer: clean when it is `{"error":{"code":…,"message":…}}`.
fn json_error(ask: &Ask, target: &str, status: u16, bytes: &[u8]) -> Outcome {
    let v: Option<Value> = serde_json::from_slice(bytes).ok();
    match v.as_ref().and_then(|v| {
        Some((
            v["error"]["code"].as_str()?,
            v["error"]["message"].as_str()?,
        ))
    }) {
        // The reason, when the relay gives one, says which check refused (`signature.stale`).
        Some((code, _)) => match v.as_ref().and_then(|v| v["error"]["reason"].as_str()) {
            Some(reason) => Outcome::Failed(format!("{status} {code} ({reason})")),
            None => Outcome::Failed(format!("{status} {code}")),
        },
        None => Outcome::BadError(format!(
            "{} {target}: {status} {:?}",
            ask.kind(),
            String::from_utf8_lossy(&bytes[..bytes.len().min(120)])
        )),
    }
}

/// Compares a JSON answer with what the backend holds for the request.
fn check_json(r: &Reference, ask: &Ask, v: &Value) -> Result<(), String> {
    let page_ids = |offset: usize| -> Vec<&str> {
        r.ids
            .iter()
            .skip(offset)
            .take(PAGE)
            .map(String::as_str)
            .collect()
    };
    let events = |v: &Value| -> Result<Vec<Value>, String> {
        v["events"]
            .as_array()
            .cloned()
            .ok_or_else(|| "no events array".to_owned())
    };
    let ids_of = |evs: &[Value]| -> Vec<String> {
        evs.iter()
            .map(|e| e["id"].as_str().unwrap_or("?").to_owned())
            .collect()
    };
    match ask {
        Ask::List { offset } => {
            let evs = events(v)?;
            let got = ids_of(&evs);
            if got != page_ids(*offset) {
                return Err(format!("ids {got:?}"));
            }
            for e in &evs {
                let id = e["id"].as_str().unwrap_or_default();
                if r.events.get(id) != Some(e) {
                    return Err(format!("event {id} differs from the backend's"));
                }
            }
            Ok(())
        }
        Ask::Compact { page } => {
            let evs = events(v)?;
            let got = ids_of(&evs);
            if got != page_ids((page - 1) * PAGE) {
                return Err(format!("ids {got:?}"));
            }
            for e in &evs {
                let id = e["id"].as_str().unwrap_or_default();
                let held = r.events.get(id).ok_or("unknown id")?;
                if e["description"] != held["description"] || e["timestamp"] != held["timestamp"] {
                    return Err(format!("event {id}: fields differ from the backend's"));
                }
            }
            Ok(())
        }
        Ask::Detail { id } => match r.events.get(id) {
            Some(held) if held == v => Ok(()),
            _ => Err(format!("not event {id} as the backend holds it")),
        },
        Ask::Refresh => Ok(()),
        Ask::Thumbnail { .. } => Err("a thumbnail answered JSON".into()),
    }
}

/// A WebSocket kept open through the relay (`/ws` notifications, or a live stream), reopened
/// when it drops; its messages are checked and counted into the window.
async fn socket_loop(
    edge: String,
    cf: String,
    path: String,
    tokens: Arc<tokio::sync::Mutex<Tokens>>,
    window: Arc<Mutex<Tally>>,
    stop: Arc<AtomicBool>,
) {
    let live = path.starts_with("/ws/stream");
    let mut last_seq: Option<u64> = None;
    let mut first = true;
    while !stop.load(Ordering::Relaxed) {
        if !first {
            window
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .stream_reconnects += 1;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        first = false;
        let url = format!("{}{path}", edge.replace("http://", "ws://"));
        let Ok(mut req) = url.into_client_request() else {
            return;
        };
        let token = tokens.lock().await.access.clone();
        if let (Ok(cf), Ok(auth)) = (
            HeaderValue::from_str(&cf),
            HeaderValue::from_str(&format!("Bearer {token}")),
        ) {
            req.headers_mut().insert("mf-cf-blob", cf);
            req.headers_mut().insert("authorization", auth);
        }
        let connected =
            tokio::time::timeout(CLIENT_TIMEOUT, tokio_tungstenite::connect_async(req)).await;
        let Ok(Ok((mut ws, _))) = connected else {
            continue;
        };
        while !stop.load(Ordering::Relaxed) {
            let msg = match tokio::time::timeout(Duration::from_millis(500), ws.next()).await {
                Err(_) => continue,
                Ok(Some(Ok(m))) => m,
                Ok(_) => break,
            };
            let mut w = window.lock().unwrap_or_else(|p| p.into_inner());
            match msg {
                Message::Binary(frame) if live => {
                    w.live_frames += 1;
                    if !matches!(probe(&frame), Probe::Jpeg(_)) {
                        w.live_frames_broken += 1;
                    }
                }
                Message::Text(text) if !live => {
                    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    let seq = v["seq"]
                        .as_u64()
                        .or_else(|| v["data"]["seq"].as_u64())
                        .filter(|_| text.contains("chaos"));
                    if let Some(seq) = seq {
                        w.notifications += 1;
                        if last_seq.is_some_and(|l| seq <= l) {
                            w.notifications_out_of_order += 1;
                        }
                        last_seq = Some(seq);
                    }
                }
                _ => {}
            }
        }
        let _ = ws.close(None).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token shaped like the agent's (only the claims are read; nothing is verified here).
    fn token_expiring_in(secs: i64) -> String {
        let exp = crate::signer::unix_now().saturating_add_signed(secs);
        let claims = serde_json::json!({"sub": "dev-1", "exp": exp});
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            b64.encode(br#"{"alg":"EdDSA"}"#),
            b64.encode(claims.to_string())
        )
    }

    #[test]
    fn a_phone_renews_a_minute_before_its_access_token_runs_out() {
        let fresh = Tokens::new("dev-1", &token_expiring_in(900), "r");
        assert!(!fresh.renewal_due());
        let closing = Tokens::new("dev-1", &token_expiring_in(59), "r");
        assert!(closing.renewal_due());
        let expired = Tokens::new("dev-1", &token_expiring_in(-5), "r");
        assert!(expired.renewal_due());
        // Not a token it can read: it waits for the agent's 401 instead.
        assert!(!Tokens::new("dev-1", "opaque", "r").renewal_due());
    }
}
