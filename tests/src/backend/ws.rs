//! The WebSocket routes: `/ws` (notifications), `/ws/stream/{camera_id}` (JPEG frames) and
//! `/api/v1/cameras/{camera_id}/stream` (ArgusAI's live stream protocol, [`super::live`]).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::query::{Query, Validator};
use super::server::{detail, empty, response, set, Resp, State};

/// `Upgrade: websocket` on a GET with `Connection: upgrade` and a key.
pub(crate) fn is_upgrade(req: &Request<Incoming>) -> bool {
    let h = req.headers();
    let has_token = |name: &str, token: &str| {
        h.get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    req.method() == hyper::Method::GET
        && has_token("upgrade", "websocket")
        && has_token("connection", "upgrade")
        && h.contains_key("sec-websocket-key")
}

struct ActiveGuard(Arc<State>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active_ws.fetch_sub(1, Ordering::SeqCst);
    }
}

enum Kind {
    Notifications,
    /// ArgusAI's live stream protocol ([`super::live`]).
    LiveStream {
        camera_id: String,
        quality: argus_shared::live_stream::BackendQuality,
    },
    Camera {
        camera_id: String,
        interval: Duration,
        count: Option<u64>,
        high: bool,
    },
}

/// Answers the handshake (101) and runs the route on the upgraded connection.
pub(crate) fn accept(
    st: &Arc<State>,
    req: &mut Request<Incoming>,
    template: &str,
    params: &[(String, String)],
    q: &Query,
) -> Resp {
    if req
        .headers()
        .get("sec-websocket-version")
        .and_then(|v| v.to_str().ok())
        != Some("13")
    {
        let mut r = detail(
            StatusCode::UPGRADE_REQUIRED,
            "Unsupported WebSocket version",
        );
        set(r.headers_mut(), "sec-websocket-version", "13");
        return r;
    }
    let camera_param = || {
        params
            .iter()
            .find(|(k, _)| k == "camera_id")
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let kind = match template {
        "/api/v1/cameras/{camera_id}/stream" => {
            let quality = match q.get("quality") {
                None => argus_shared::live_stream::BackendQuality::Medium,
                Some(v) => match argus_shared::live_stream::BackendQuality::parse(v) {
                    Some(q) => q,
                    // FastAPI refuses a WebSocket whose query fails validation with 403.
                    None => return response(StatusCode::FORBIDDEN, None, empty()),
                },
            };
            Kind::LiveStream {
                camera_id: camera_param(),
                quality,
            }
        }
        "/ws/stream/{camera_id}" => {
            let mut v = Validator::default();
            let fps = v.query_int(q, "fps", None, Some(1), Some(60));
            let count = v.query_int(q, "count", None, Some(0), None);
            if !v.is_ok() {
                return response(StatusCode::FORBIDDEN, None, empty());
            }
            let interval = fps
                .map(|f| Duration::from_millis(1000 / f as u64))
                .unwrap_or(st.config.ws_frame_interval);
            let camera_id = camera_param();
            Kind::Camera {
                camera_id,
                interval,
                count: count.map(|c| c as u64),
                high: q.get("quality") == Some("high"),
            }
        }
        _ => Kind::Notifications,
    };
    let key = req
        .headers()
        .get("sec-websocket-key")
        .map(|k| derive_accept_key(k.as_bytes()))
        .unwrap_or_default();
    let on_upgrade = hyper::upgrade::on(req);
    let st2 = st.clone();
    st.spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        st2.active_ws.fetch_add(1, Ordering::SeqCst);
        let _guard = ActiveGuard(st2.clone());
        match kind {
            Kind::Notifications => notifications(ws, st2).await,
            Kind::LiveStream { camera_id, quality } => {
                super::live::camera_stream(ws, st2, camera_id, quality).await
            }
            Kind::Camera {
                camera_id,
                interval,
                count,
                high,
            } => camera(ws, st2, camera_id, interval, count, high).await,
        }
    });
    let mut r = response(StatusCode::SWITCHING_PROTOCOLS, None, empty());
    let h = r.headers_mut();
    set(h, "upgrade", "websocket");
    set(h, "connection", "Upgrade");
    set(h, "sec-websocket-accept", &key);
    r
}

pub(crate) type Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// `/ws`: says hello, answers `ping` with `pong` (text, like ArgusAI; protocol pings are answered
/// by tungstenite), echoes other text as `{"type":"echo","data":...}` and binary as binary, relays
/// [`StandInBackend::notify`](super::StandInBackend::notify) broadcasts, and sends ArgusAI's text
/// `ping` heartbeat every `config.ws_heartbeat`.
async fn notifications(ws: Ws, st: Arc<State>) {
    let mut rx = st.notify.subscribe();
    let (mut tx, mut incoming) = ws.split();
    let hello = serde_json::json!({
        "type": "hello",
        "server": "argusai-standin",
        "version": "1.0.0",
        "heartbeat_seconds": st.config.ws_heartbeat.as_secs(),
    });
    if tx.send(Message::Text(hello.to_string())).await.is_err() {
        return;
    }
    let period = st.config.ws_heartbeat.max(Duration::from_millis(10));
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tokio::select! {
            msg = incoming.next() => {
                let reply = match msg {
                    None | Some(Err(_)) => break,
                    Some(Ok(Message::Text(t))) => match t.as_str() {
                        "ping" => Some(Message::Text("pong".into())),
                        "pong" => None,
                        _ => {
                            let data = serde_json::from_str::<serde_json::Value>(&t).unwrap_or(serde_json::Value::String(t));
                            Some(Message::Text(serde_json::json!({"type": "echo", "data": data}).to_string()))
                        }
                    },
                    Some(Ok(Message::Binary(b))) => Some(Message::Binary(b)),
                    // Close: tungstenite queues the reply; the next read sends it and ends the stream.
                    Some(Ok(_)) => None,
                };
                if let Some(m) = reply {
                    if tx.send(m).await.is_err() {
                        break;
                    }
                }
            }
            note = rx.recv() => match note {
                Ok(text) => {
                    if tx.send(Message::Text(text)).await.is_err() {
                        break;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
            _ = heartbeat.tick() => {
                if tx.send(Message::Text("ping".into())).await.is_err() {
                    break;
                }
            }
        }
    }
}

/// `/ws/stream/{camera_id}`: binary JPEG frames (the 320×180 photos; the full-size ones with
/// `quality=high`) every `interval` (`?fps=`, default `config.ws_frame_interval`), `count` of them
/// if given, then a normal close.
async fn camera(
    ws: Ws,
    st: Arc<State>,
    _camera_id: String,
    interval: Duration,
    count: Option<u64>,
    high: bool,
) {
    let photos = if high && !st.large.is_empty() {
        &st.large
    } else {
        &st.small
    };
    let (mut tx, mut incoming) = ws.split();
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(1)));
    let mut sent: u64 = 0;
    let mut closing = false;
    loop {
        tokio::select! {
            msg = incoming.next() => match msg {
                None | Some(Err(_)) => break,
                Some(Ok(Message::Close(_))) => closing = true,
                Some(Ok(_)) => {}
            },
            _ = tick.tick(), if !closing => {
                if count.is_some_and(|c| sent >= c) || photos.is_empty() {
                    closing = true;
                    if tx.send(Message::Close(None)).await.is_err() {
                        break;
                    }
                    continue;
                }
                let frame = photos[(sent as usize) % photos.len()].bytes.to_vec();
                if tx.send(Message::Binary(frame)).await.is_err() {
                    break;
                }
                sent += 1;
            }
        }
    }
}
