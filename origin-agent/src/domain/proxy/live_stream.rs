//! The adaptive live preview: a camera's live stream (ArgusAI's
//! `/api/v1/cameras/{id}/stream` and `/ws/stream/{id}` WebSockets) relayed so that it fits the
//! phone's link and never falls behind. The decisions are [`argus_shared::live_stream`]'s; this
//! is the I/O around them.
//!
//! - **One frame waits, the newest wins**: frames from ArgusAI go to a one-frame mailbox; a
//!   frame that arrives while another still waits replaces it (counted as dropped). The writer
//!   takes the mailbox's frame only when the previous write to the phone has completed, so a
//!   frame is never older than one frame interval plus the link's transit time. The phone's
//!   socket has a small unsent-bytes low-water mark (`base::http::server`), so a write completes
//!   when the link has taken the frame, not when a kernel buffer has.
//! - **Measured, not guessed**: each write's completion time feeds the [`Controller`], which
//!   steps the level down fast and up after sustained headroom. ArgusAI's levels are changed
//!   with its own `{"type":"quality_change"}` message sent on the phone's behalf; its
//!   `quality_changed` replies are hidden from the phone unless the phone asked.
//! - **Below ArgusAI's `low`** the relay re-encodes frames itself (the shared JPEG pipeline,
//!   natively, on the blocking pool, one per core at most) and caps the frame rate.
//! - **The phone's choice is a ceiling**: `quality=<level>` on the URL or a `quality_change`
//!   from the phone; `quality=auto` (or none) adapts freely.
//! - **A phone that never reads** costs one waiting frame and one being written; a write that
//!   does not complete within [`WRITE_STALL_LIMIT`] closes the stream.
//! - The socket's lifetime is the device token's, as for every WebSocket ([`SocketLifetime`]):
//!   the phone gets 4401/4403 between two frames.
//!
//! Everything else passes unchanged both ways: `ping`/`pong`, ArgusAI's errors and its close
//! codes (4004, 4400, 4429).

use std::collections::VecDeque;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use argus_shared::image;
use argus_shared::live_stream::{
    quality_change_message, quality_changed_message, BackendMessage, BackendQuality, Controller,
    Level, PhoneMessage, Requested,
};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, Semaphore};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::base::http::send_queue::SendQueue;
use crate::base::stream_stats::{StreamIdentity, StreamStats};
use crate::domain::proxy::ws_bridge::{BridgeEnd, SocketLifetime, CLOSE_WITHIN};

/// A write to the phone that takes longer than this ends the stream: the phone stopped
/// reading (a zero window) or its link is gone.
pub const WRITE_STALL_LIMIT: Duration = Duration::from_secs(10);
/// After writing a frame, the next waits until the phone's socket holds at most this share of
/// it (sent but unacknowledged, or unsent; at least [`MIN_IN_FLIGHT`]): the time that takes is
/// the frame's drain time, and the frames that arrive meanwhile replace each other in the
/// mailbox instead of queueing on the link. A little is left in flight so that the link's round
/// trip is not spent idle between frames.
const IN_FLIGHT_SHARE: u64 = 4;
const MIN_IN_FLIGHT: u64 = 2 * 1024;
/// How often the phone's socket is asked while a frame drains.
const DRAIN_POLL: Duration = Duration::from_millis(5);
/// How often the controller judges the link.
const EVALUATE_EVERY: Duration = Duration::from_millis(250);
/// Text messages waiting for the phone at most (pongs, ArgusAI's errors, replies); more means
/// the phone is not reading.
const MAX_WAITING_MESSAGES: usize = 64;
/// The largest message taken from ArgusAI (a 1080p JPEG is ~150-500 KB).
const MAX_BACKEND_MESSAGE: usize = 8 * 1024 * 1024;
/// The largest message taken from the phone (it sends only small control messages).
const MAX_PHONE_MESSAGE: usize = 64 * 1024;

/// Re-encodes running at once, across all streams: one per core.
static REENCODERS: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(1, |n| n.get())));

/// How one stream is to be relayed, decided at the upgrade (`application::router`).
#[derive(Debug, Clone)]
pub struct StreamPlan {
    pub who: StreamIdentity,
    pub requested: Requested,
    pub start: Level,
    /// ArgusAI takes `quality_change` on this route (`/api/v1/cameras/{id}/stream`); the older
    /// `/ws/stream/{id}` streams at one level, which the relay can only thin and re-encode.
    pub backend_levels: bool,
    /// The phone's socket, asked whether the link has delivered a frame before the next one
    /// goes (`None`: not a TCP connection the agent accepted; write completion alone is timed).
    pub send_queue: Option<SendQueue>,
}

/// What waits for the phone, shared by the reading side and the writer.
struct Outbox {
    state: Mutex<OutboxState>,
    wake: Notify,
}

struct OutboxState {
    /// Text and close messages, in order, before any frame.
    messages: VecDeque<Message>,
    /// The one frame waiting.
    frame: Option<WaitingFrame>,
    /// No more is coming: the writer sends what waits, then ends.
    closing: bool,
    controller: Controller,
}

struct WaitingFrame {
    jpeg: Vec<u8>,
    arrived: Instant,
}

impl Outbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, OutboxState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a message for the phone; `false` if too many wait already.
    fn message(&self, m: Message) -> bool {
        let queued = {
            let mut s = self.lock();
            if s.messages.len() >= MAX_WAITING_MESSAGES {
                false
            } else {
                s.messages.push_back(m);
                true
            }
        };
        self.wake.notify_one();
        queued
    }
}

/// Why the writer stopped.
#[derive(Debug)]
enum WriterEnd {
    /// Everything queued was sent after the stream started closing.
    Done,
    Stalled,
    Failed(tokio_tungstenite::tungstenite::Error),
}

fn ws_config(max_message: usize) -> WebSocketConfig {
    WebSocketConfig {
        max_message_size: Some(max_message),
        max_frame_size: Some(max_message),
        ..WebSocketConfig::default()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Relays a camera stream between the phone (`client`) and ArgusAI (`backend`), both already
/// upgraded, until either closes or `lifetime` ends; see the module documentation.
pub async fn run<C, B>(
    client: C,
    backend: B,
    mut lifetime: SocketLifetime,
    plan: StreamPlan,
) -> BridgeEnd
where
    C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    B: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let phone =
        WebSocketStream::from_raw_socket(client, Role::Server, Some(ws_config(MAX_PHONE_MESSAGE)))
            .await;
    let backend = WebSocketStream::from_raw_socket(
        backend,
        Role::Client,
        Some(ws_config(MAX_BACKEND_MESSAGE)),
    )
    .await;
    let (phone_tx, mut phone_rx) = phone.split();
    let (mut backend_tx, mut backend_rx) = backend.split();

    let plan_send_queue = plan.send_queue;
    let epoch = Instant::now();
    let now_ms = move || millis(epoch.elapsed());
    let stats = StreamStats::register(plan.who.clone(), plan.start);
    let outbox = Arc::new(Outbox {
        state: Mutex::new(OutboxState {
            messages: VecDeque::new(),
            frame: None,
            closing: false,
            controller: Controller::new(plan.start, plan.requested, now_ms()),
        }),
        wake: Notify::new(),
    });
    let mut relay = Relay {
        plan,
        outbox: outbox.clone(),
        stats: stats.clone(),
        backend_quality: None,
        phone_awaits: None,
        last_frame_at: None,
    };
    relay.backend_quality = Some(relay.plan.start.backend());

    let writer = write_to_phone(phone_tx, outbox.clone(), stats.clone(), plan_send_queue);
    tokio::pin!(writer);
    let ended = lifetime.ended();
    tokio::pin!(ended);
    let mut tick = tokio::time::interval(EVALUATE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let why = loop {
        tokio::select! {
            end = &mut writer => {
                match end {
                    WriterEnd::Stalled => tracing::info!(
                        device = relay.plan.who.device_id.as_str(),
                        "live stream closed: the phone stopped taking frames"
                    ),
                    WriterEnd::Failed(e) => tracing::debug!(error = %e, "live stream: phone gone"),
                    WriterEnd::Done => {}
                }
                let _ = backend_tx.close().await;
                return BridgeEnd::Closed;
            }
            msg = backend_rx.next() => match msg {
                Some(Ok(m)) => {
                    if !relay.on_backend_message(m) {
                        break None;
                    }
                }
                // ArgusAI went away without a close frame: so does the phone's stream.
                _ => {
                    relay.finish(None);
                    break None;
                }
            },
            msg = phone_rx.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let forward = relay.on_phone_text(&t, now_ms());
                    for m in forward {
                        if backend_tx.send(m).await.is_err() {
                            relay.finish(None);
                            break;
                        }
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let _ = backend_tx.send(Message::Close(frame)).await;
                    let _ = backend_tx.close().await;
                    return BridgeEnd::Closed;
                }
                Some(Ok(m @ Message::Binary(_))) => {
                    if backend_tx.send(m).await.is_err() {
                        relay.finish(None);
                    }
                }
                // Pings are answered by the WebSocket layer; pongs need nothing.
                Some(Ok(_)) => {}
                None | Some(Err(_)) => {
                    let _ = backend_tx.close().await;
                    return BridgeEnd::Closed;
                }
            },
            _ = tick.tick() => {
                let changed = relay.outbox.lock().controller.evaluate(now_ms());
                if let Some(level) = changed {
                    if let Some(m) = relay.apply(level) {
                        if backend_tx.send(m).await.is_err() {
                            relay.finish(None);
                        }
                    }
                }
            }
            why = &mut ended => break Some(why),
        }
    };
    // Closing: ArgusAI's connection is dropped when this returns; the phone gets what waits
    // (the relay's own close frame, if the lifetime ended) within the bound.
    if let Some(why) = why {
        relay.finish(Some(why));
    }
    let sent = tokio::time::timeout(CLOSE_WITHIN, &mut writer).await;
    drop(backend_tx);
    match why {
        None => BridgeEnd::Closed,
        Some(why) => BridgeEnd::Cut {
            why,
            close_frame_sent: matches!(sent, Ok(WriterEnd::Done)),
        },
    }
}

/// The reading side's state.
struct Relay {
    plan: StreamPlan,
    outbox: Arc<Outbox>,
    stats: Arc<StreamStats>,
    /// The level ArgusAI was last asked for (`None`: the route has no levels).
    backend_quality: Option<BackendQuality>,
    /// The phone asked for this level and ArgusAI's reply to it goes to the phone.
    phone_awaits: Option<BackendQuality>,
    last_frame_at: Option<Instant>,
}

impl Relay {
    /// Handles a message from ArgusAI; `false` when the stream is over.
    fn on_backend_message(&mut self, m: Message) -> bool {
        match m {
            Message::Binary(jpeg) => {
                self.stats.frame_in();
                let now = Instant::now();
                let mut s = self.outbox.lock();
                // The relay's own levels cap the frame rate (above them, ArgusAI's rate is the
                // level's): frames closer together are not passed on.
                let level = s.controller.level();
                let gap = Duration::from_millis(level.min_frame_gap_ms());
                if level.reencode().is_some()
                    && self
                        .last_frame_at
                        .is_some_and(|t| now.duration_since(t) < gap)
                {
                    return true;
                }
                self.last_frame_at = Some(now);
                if s.frame.is_some() {
                    s.controller.on_dropped();
                    self.stats.frame_dropped();
                }
                s.frame = Some(WaitingFrame { jpeg, arrived: now });
                drop(s);
                self.outbox.wake.notify_one();
                true
            }
            Message::Text(text) => {
                if let BackendMessage::QualityChanged(q) = BackendMessage::parse(&text) {
                    if self.phone_awaits != Some(q) {
                        // The relay's own request: the phone did not ask.
                        return true;
                    }
                    self.phone_awaits = None;
                }
                if !self.outbox.message(Message::Text(text)) {
                    self.finish(None);
                    return false;
                }
                true
            }
            Message::Close(frame) => {
                // ArgusAI's close code (4004, 4400, 4429 …) reaches the phone unchanged.
                let mut s = self.outbox.lock();
                s.frame = None;
                s.messages.push_back(Message::Close(frame));
                s.closing = true;
                drop(s);
                self.outbox.wake.notify_one();
                false
            }
            // Pings are answered by the WebSocket layer.
            _ => true,
        }
    }

    /// Handles a text message from the phone; returns what goes on to ArgusAI.
    fn on_phone_text(&mut self, text: &str, now_ms: u64) -> Vec<Message> {
        let PhoneMessage::QualityChange(requested) = PhoneMessage::parse(text) else {
            return vec![Message::Text(text.to_owned())];
        };
        let changed = self.outbox.lock().controller.set_ceiling(requested, now_ms);
        let name = match requested {
            Requested::Auto => "auto",
            Requested::AtMost(l) => l.as_str(),
        };
        let level = changed.unwrap_or_else(|| self.outbox.lock().controller.level());
        let to_backend = changed.and_then(|l| self.apply(l));
        // ArgusAI answers when it was asked for exactly what the phone named; otherwise the
        // relay answers.
        let backend_answers = to_backend.is_some()
            && matches!(requested, Requested::AtMost(l) if l == level && l.reencode().is_none());
        if backend_answers {
            self.phone_awaits = Some(level.backend());
        } else {
            let _ = self
                .outbox
                .message(Message::Text(quality_changed_message(name)));
        }
        to_backend.into_iter().collect()
    }

    /// The controller (or the phone) moved to `level`: counts it, and returns the
    /// `quality_change` for ArgusAI if its level changes.
    fn apply(&mut self, level: Level) -> Option<Message> {
        self.stats.level_changed(level);
        tracing::debug!(
            device = self.plan.who.device_id.as_str(),
            camera = self.plan.who.camera_id.as_str(),
            level = level.as_str(),
            "live stream level"
        );
        if !self.plan.backend_levels || self.backend_quality == Some(level.backend()) {
            return None;
        }
        self.backend_quality = Some(level.backend());
        Some(Message::Text(quality_change_message(level.backend())))
    }

    /// No more frames: the phone gets what waits, then `why`'s close frame (or, with `None`, a
    /// normal close if nothing else ends the stream).
    fn finish(&mut self, why: Option<crate::domain::proxy::ws_frames::RelayClose>) {
        let mut s = self.outbox.lock();
        s.frame = None;
        if let Some(why) = why {
            // Before anything else that waits: the socket's lifetime is over.
            s.messages.clear();
            s.messages.push_back(Message::Close(Some(CloseFrame {
                code: CloseCode::from(why.code()),
                reason: why.reason().into(),
            })));
        } else if !s.closing {
            s.messages.push_back(Message::Close(None));
        }
        s.closing = true;
        drop(s);
        self.outbox.wake.notify_one();
    }
}

/// What the writer takes next.
enum Next {
    Message(Message),
    Frame(WaitingFrame, Level),
    Done,
}

/// Writes to the phone: messages first, then the waiting frame (re-encoded if the level says
/// so), one at a time, each write timed for the controller.
async fn write_to_phone<S>(
    mut phone: SplitSink<WebSocketStream<S>, Message>,
    outbox: Arc<Outbox>,
    stats: Arc<StreamStats>,
    send_queue: Option<SendQueue>,
) -> WriterEnd
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let next = {
            let mut s = outbox.lock();
            if let Some(m) = s.messages.pop_front() {
                Some(Next::Message(m))
            } else if let Some(f) = s.frame.take() {
                Some(Next::Frame(f, s.controller.level()))
            } else if s.closing {
                Some(Next::Done)
            } else {
                None
            }
        };
        let Some(next) = next else {
            outbox.wake.notified().await;
            continue;
        };
        match next {
            Next::Done => {
                let _ = phone.close().await;
                return WriterEnd::Done;
            }
            Next::Message(m) => {
                let is_close = matches!(m, Message::Close(_));
                match tokio::time::timeout(WRITE_STALL_LIMIT, phone.send(m)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return WriterEnd::Failed(e),
                    Err(_) => return WriterEnd::Stalled,
                }
                if is_close {
                    return WriterEnd::Done;
                }
            }
            Next::Frame(frame, level) => {
                let jpeg = match level.reencode() {
                    Some(variant) => match reencode(frame.jpeg, variant).await {
                        Some(jpeg) => jpeg,
                        None => continue,
                    },
                    None => frame.jpeg,
                };
                let bytes = jpeg.len() as u64;
                let started = Instant::now();
                let sent = async {
                    phone.send(Message::Binary(jpeg)).await?;
                    if let Some(queue) = send_queue {
                        drained(queue, (bytes / IN_FLIGHT_SHARE).max(MIN_IN_FLIGHT)).await;
                    }
                    Ok::<(), tokio_tungstenite::tungstenite::Error>(())
                };
                match tokio::time::timeout(WRITE_STALL_LIMIT, sent).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return WriterEnd::Failed(e),
                    Err(_) => return WriterEnd::Stalled,
                }
                let write = started.elapsed();
                outbox.lock().controller.on_sent(bytes, millis(write));
                stats.frame_sent(bytes, frame.arrived.elapsed());
            }
        }
    }
}

/// Returns once the phone's socket holds at most `in_flight` bytes (or cannot say).
async fn drained(queue: SendQueue, in_flight: u64) {
    while queue.bytes().is_some_and(|queued| queued > in_flight) {
        tokio::time::sleep(DRAIN_POLL).await;
    }
}

/// `jpeg` re-encoded to `variant` on the blocking pool, keeping its comments (capture times);
/// the original if it cannot be made smaller (already small, not a JPEG the pipeline takes).
/// `None` only if the work itself failed (a panic): the frame is skipped.
async fn reencode(jpeg: Vec<u8>, variant: image::Variant) -> Option<Vec<u8>> {
    let Ok(_permit) = REENCODERS.acquire().await else {
        return Some(jpeg);
    };
    let work = tokio::task::spawn_blocking(move || {
        match argus_shared::live_stream::reencode(&jpeg, &variant) {
            Some(smaller) => smaller,
            None => jpeg,
        }
    });
    match work.await {
        Ok(out) => Some(out),
        Err(e) => {
            tracing::error!(error = %e, "live stream re-encode failed; frame skipped");
            None
        }
    }
}

/// The camera id if `decoded_path` is one of ArgusAI's live stream routes, and whether that
/// route takes `quality_change` (`/api/v1/cameras/{id}/stream` does, `/ws/stream/{id}` not).
pub fn stream_route(decoded_path: &str) -> Option<(&str, bool)> {
    let single = |id: &str| !id.is_empty() && !id.contains('/');
    if let Some(id) = decoded_path
        .strip_prefix("/api/v1/cameras/")
        .and_then(|rest| rest.strip_suffix("/stream"))
    {
        return single(id).then_some((id, true));
    }
    let id = decoded_path.strip_prefix("/ws/stream/")?;
    single(id).then_some((id, false))
}

/// The facts about the phone the start level is chosen from.
#[derive(Debug, Clone)]
pub struct PhoneFacts<'a> {
    pub device_id: &'a str,
    pub device_name: &'a str,
    /// As registered at pairing (`ios`, `android`, …).
    pub platform: Option<&'a str>,
    /// On the home network (the LAN listener).
    pub lan: bool,
}

/// Decides how the WebSocket upgrade `head` (a live stream route, see [`stream_route`]) is
/// relayed, and rewrites its `quality=` to the ArgusAI level the stream starts at. `None`: the
/// stream is passed through untouched (not a live stream route, or a `quality=` the relay does
/// not know, which ArgusAI answers itself).
pub fn plan(
    head: &mut hyper::http::request::Parts,
    decoded_path: &str,
    phone: &PhoneFacts<'_>,
) -> Option<Box<StreamPlan>> {
    use argus_shared::headers::RELAY_LINK;
    use argus_shared::live_stream::{EdgeLink, Network, StartHints, NETWORK_HEADER};
    let (camera_id, backend_levels) = stream_route(decoded_path)?;
    let query = head.uri.query().unwrap_or("");
    let asked = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "quality")
        .map(|(_, v)| v);
    let requested = match asked {
        None => Requested::Auto,
        Some(v) => Requested::parse(v)?,
    };
    let header = |name: &str| head.headers.get(name).and_then(|v| v.to_str().ok());
    // The edge's word reaches the agent only through the tunnel, signed with the request; on
    // the LAN there is no edge (and nothing a phone sends there is taken as the edge's).
    let mut edge = if phone.lan {
        EdgeLink::default()
    } else {
        header(RELAY_LINK).map(EdgeLink::parse).unwrap_or_default()
    };
    if edge.platform.is_none() {
        edge.platform = phone.platform.map(str::to_ascii_lowercase);
    }
    let hints = StartHints {
        lan: phone.lan,
        network: header(NETWORK_HEADER).and_then(Network::parse),
        edge,
    };
    let start = argus_shared::live_stream::start_level(&hints, requested);
    // ArgusAI is asked for the start level's own level; other parameters are kept.
    let mut kept: Vec<String> = query
        .split('&')
        .filter(|kv| !kv.is_empty() && kv.split('=').next() != Some("quality"))
        .map(str::to_owned)
        .collect();
    if backend_levels {
        kept.push(format!("quality={}", start.backend().as_str()));
    }
    let path = head.uri.path();
    let target = if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    };
    let mut uri = head.uri.clone().into_parts();
    uri.path_and_query = Some(target.parse().ok()?);
    head.uri = hyper::Uri::from_parts(uri).ok()?;
    Some(Box::new(StreamPlan {
        who: StreamIdentity {
            device_id: phone.device_id.to_owned(),
            device_name: phone.device_name.to_owned(),
            camera_id: camera_id.to_owned(),
            via: if phone.lan { "lan" } else { "tunnel" },
        },
        requested,
        start,
        backend_levels,
        send_queue: head.extensions.get::<SendQueue>().copied(),
    }))
}
