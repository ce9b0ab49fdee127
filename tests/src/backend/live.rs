//! `/api/v1/cameras/{camera_id}/stream`: ArgusAI's live stream protocol (its commit c5efc85).
//!
//! - `?quality=low|medium|high` (default `medium`): low 640×360 at 5 fps (JPEG q70), medium
//!   1280×720 at 10 fps (q80), high 1920×1080 at 15 fps (the full-size photos as they are).
//!   Frames are the stand-in's full-size photos made to each level's size with the shared JPEG
//!   pipeline; each carries a JPEG comment `argus-standin seq=<n> sent_us=<unix µs>
//!   quality=<level>`, so a test can tell every frame's age when it arrives.
//! - Client → server: `{"type":"quality_change","quality":…}` (answered
//!   `{"type":"quality_changed","quality":…}`), `{"type":"ping"}` (answered `{"type":"pong"}`).
//! - Errors: `{"type":"error","code":…,"message":…}` then a close: an unknown camera
//!   `CAMERA_NOT_FOUND` / 4004, a camera without an RTSP URL (the `usb` one) `NO_RTSP_URL` /
//!   4400, more than `config.max_camera_streams` at once `STREAM_LIMIT_REACHED` / 4429.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use argus_shared::image::{JpegEffort, JpegSettings, Limits, Variant, WebpSettings};
use argus_shared::live_stream::{jpeg_comments, with_comments, BackendQuality};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use super::server::{Photo, State};
use super::ws::Ws;

/// The frames of each level, made once per stand-in.
pub(crate) struct LevelFrames {
    low: Vec<Vec<u8>>,
    medium: Vec<Vec<u8>>,
    high: Vec<Vec<u8>>,
}

const fn variant(name: &'static str, max_width: u32, quality: u8) -> Variant {
    Variant {
        name,
        max_width,
        jpeg: JpegSettings {
            quality,
            effort: JpegEffort::Fast,
            decode_oversample: 2,
        },
        webp: WebpSettings {
            quality,
            decode_oversample: 2,
        },
    }
}

impl LevelFrames {
    /// Each level from the full-size photos the pipeline can make every level of (a photo it
    /// passes through, e.g. one with an EXIF rotation, would stream at the wrong size); the
    /// generated 1080p test photos if none of them can.
    fn make(large: &[Photo]) -> LevelFrames {
        let low = variant("low", 640, 70);
        let medium = variant("medium", 1280, 80);
        let levels_of = |src: &[u8]| -> Option<[Vec<u8>; 3]> {
            let at = |v: &Variant| {
                argus_shared::image::transcode(src, v, &Limits::DEFAULT)
                    .ok()
                    .map(|t| t.bytes)
            };
            Some([at(&low)?, at(&medium)?, src.to_vec()])
        };
        let mut made: Vec<[Vec<u8>; 3]> =
            large.iter().filter_map(|p| levels_of(&p.bytes)).collect();
        if made.is_empty() {
            made = argus_shared::test_photos::ALL
                .iter()
                .filter(|p| p.width == 1920)
                .filter_map(|p| levels_of(&p.jpeg()))
                .collect();
        }
        let mut frames = LevelFrames {
            low: Vec::new(),
            medium: Vec::new(),
            high: Vec::new(),
        };
        for [l, m, h] in made {
            frames.low.push(l);
            frames.medium.push(m);
            frames.high.push(h);
        }
        frames
    }

    fn of(&self, q: BackendQuality) -> &[Vec<u8>] {
        match q {
            BackendQuality::Low => &self.low,
            BackendQuality::Medium => &self.medium,
            BackendQuality::High => &self.high,
        }
    }
}

/// ArgusAI's frame interval at each level.
fn interval(q: BackendQuality) -> Duration {
    Duration::from_millis(match q {
        BackendQuality::Low => 200,
        BackendQuality::Medium => 100,
        BackendQuality::High => 67,
    })
}

pub(crate) fn frames(st: &State) -> &LevelFrames {
    static FRAMES: OnceLock<LevelFrames> = OnceLock::new();
    FRAMES.get_or_init(|| LevelFrames::make(&st.large))
}

/// The comment the stand-in puts in a frame: `argus-standin seq=… sent_us=… quality=…`.
pub fn frame_comment(seq: u64, sent_us: u128, q: BackendQuality) -> Vec<u8> {
    let text = format!(
        "argus-standin seq={seq} sent_us={sent_us} quality={}",
        q.as_str()
    );
    let len = u16::try_from(text.len() + 2).unwrap_or(u16::MAX);
    let mut c = vec![0xFF, 0xFE];
    c.extend_from_slice(&len.to_be_bytes());
    c.extend_from_slice(text.as_bytes());
    c
}

/// A frame's stand-in comment, if it has one: (seq, sent at in Unix µs, quality).
pub fn read_frame_comment(jpeg: &[u8]) -> Option<(u64, u128, String)> {
    let com = jpeg_comments(jpeg).into_iter().find_map(|c| {
        std::str::from_utf8(&c[4..])
            .ok()
            .filter(|t| t.starts_with("argus-standin "))
    })?;
    let field = |k: &str| {
        com.split(' ')
            .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
    };
    Some((
        field("seq")?.parse().ok()?,
        field("sent_us")?.parse().ok()?,
        field("quality")?.to_owned(),
    ))
}

fn unix_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

fn text(v: serde_json::Value) -> Message {
    Message::Text(v.to_string())
}

async fn refuse(mut ws: Ws, code: &str, message: &str, close: u16) {
    let _ = ws
        .send(text(
            serde_json::json!({"type": "error", "code": code, "message": message}),
        ))
        .await;
    let _ = ws
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::from(close),
            reason: message.to_owned().into(),
        })))
        .await;
    // Wait for the client's close (bounded), as a server does.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

/// Drops the stream count when the stream ends.
struct Streaming(Arc<State>);

impl Drop for Streaming {
    fn drop(&mut self) {
        self.0.camera_streams.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs one camera stream on an upgraded connection.
pub(crate) async fn camera_stream(
    ws: Ws,
    st: Arc<State>,
    camera_id: String,
    start: BackendQuality,
) {
    let Some(camera) = st.cameras.iter().find(|c| c.id == camera_id) else {
        return refuse(ws, "CAMERA_NOT_FOUND", "Camera not found", 4004).await;
    };
    if camera.source_type == "usb" {
        return refuse(ws, "NO_RTSP_URL", "Camera has no RTSP URL", 4400).await;
    }
    let before = st.camera_streams.fetch_add(1, Ordering::SeqCst);
    let _streaming = Streaming(st.clone());
    if before >= st.config.max_camera_streams {
        return refuse(
            ws,
            "STREAM_LIMIT_REACHED",
            "Maximum concurrent streams reached",
            4429,
        )
        .await;
    }
    st.record_stream_quality(start);
    let frames = frames(&st);
    let (mut tx, mut rx) = ws.split();
    let mut quality = start;
    let mut tick = tokio::time::interval(interval(quality));
    let mut seq: u64 = 0;
    loop {
        tokio::select! {
            msg = rx.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let v: serde_json::Value = serde_json::from_str(&t).unwrap_or_default();
                    let reply = match v["type"].as_str() {
                        Some("ping") => Some(serde_json::json!({"type": "pong"})),
                        Some("quality_change") => match v["quality"].as_str().and_then(BackendQuality::parse) {
                            Some(q) => {
                                st.record_stream_quality(q);
                                quality = q;
                                tick = tokio::time::interval(interval(q));
                                Some(serde_json::json!({"type": "quality_changed", "quality": q.as_str()}))
                            }
                            None => Some(serde_json::json!({"type": "error", "code": "INVALID_QUALITY", "message": "quality must be low, medium or high"})),
                        },
                        _ => None,
                    };
                    if let Some(r) = reply {
                        if tx.send(text(r)).await.is_err() {
                            break;
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            _ = tick.tick() => {
                let set = frames.of(quality);
                if set.is_empty() {
                    continue;
                }
                let comment = frame_comment(seq, unix_us(), quality);
                let frame = with_comments(set[(seq as usize) % set.len()].clone(), &[&comment]);
                // ArgusAI awaits each send: a slow reader slows its stream (frames queue in
                // the socket), which is what the relay is there to fix.
                if tx.send(Message::Binary(frame)).await.is_err() {
                    break;
                }
                seq += 1;
            }
        }
    }
}
