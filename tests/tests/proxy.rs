//! User story (issue 6): the agent is a production reverse proxy in front of ArgusAI. Every kind of
//! traffic the app uses passes through unchanged and streamed — JSON, long downloads, 100 MB
//! uploads, server-sent events, WebSockets, video ranges, HEAD, the backend's own redirects —
//! both through the Worker and straight into the agent's tunnel listener (signed like the
//! Worker).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use e2e::agent::rss_kib_of;
use e2e::backend::StandInBackend;
use e2e::stack::{policy_with_system_paths, Stack, StackOptions, BACKEND_API_KEY};
use e2e::via::Via;
use futures_util::{SinkExt, StreamExt};
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::Message;

async fn owner_stack(opts: StackOptions) -> (Stack, e2e::PairedDevice) {
    let stack = Stack::start_with(StackOptions {
        policy: Some(policy_with_system_paths(&["HEAD /api/v1/events/*/video"])),
        ..opts
    })
    .await;
    let device = stack.pair_phone("owner").await;
    (stack, device)
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

#[tokio::test(flavor = "multi_thread")]
async fn json_and_a_streamed_backup_download_arrive_unchanged() {
    let (stack, device) = owner_stack(StackOptions::default()).await;
    let direct = reqwest::Client::new()
        .get(format!("{}/api/v1/events?limit=5", stack.backend.url()))
        .header("x-api-key", BACKEND_API_KEY)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let backup_len = 8 * 1024 * 1024;
    let expected_backup = sha256_hex(&StandInBackend::backup_bytes(backup_len));

    for via in stack.vias(&device) {
        let resp = via.get("/api/v1/events?limit=5").send().await.unwrap();
        assert_eq!(resp.status(), 200, "{}: {}", via.name(), stack.logs());
        assert_eq!(resp.headers()["content-type"], "application/json");
        assert_eq!(resp.bytes().await.unwrap(), direct, "{}", via.name());

        // 8 MiB, chunked by the backend: arrives in many chunks, byte for byte.
        let mut resp = via
            .get("/api/v1/system/backup/20250101-000000/download")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{}: {}", via.name(), stack.logs());
        assert_eq!(resp.headers()["content-type"], "application/zip");
        assert!(resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("argusai-backup-20250101-000000.zip"));
        let (mut hasher, mut total, mut chunks) = (Sha256::new(), 0usize, 0usize);
        while let Some(c) = resp.chunk().await.unwrap() {
            hasher.update(&c);
            total += c.len();
            chunks += 1;
        }
        assert_eq!(total, backup_len, "{}", via.name());
        assert_eq!(hex::encode(hasher.finalize()), expected_backup);
        assert!(
            chunks > 8,
            "{}: streamed, not one buffer ({chunks})",
            via.name()
        );
    }
}

/// 100 MiB of deterministic bytes in 64 KiB chunks.
const UPLOAD_LEN: usize = 100 * 1024 * 1024;
const UPLOAD_CHUNK: usize = 64 * 1024;

fn upload_chunk(i: usize) -> Bytes {
    let mut c = vec![0u8; UPLOAD_CHUNK];
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for b in c.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b.copy_from_slice(&x.to_le_bytes()[..b.len()]);
    }
    Bytes::from(c)
}

fn upload_body() -> reqwest::Body {
    let chunks = UPLOAD_LEN / UPLOAD_CHUNK;
    let stream =
        futures_util::stream::iter((0..chunks).map(|i| Ok::<_, std::io::Error>(upload_chunk(i))));
    reqwest::Body::wrap_stream(stream)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_100_mb_restore_upload_streams_through_and_the_agent_stays_small() {
    let (stack, device) = owner_stack(StackOptions::default()).await;
    let mut hasher = Sha256::new();
    for i in 0..UPLOAD_LEN / UPLOAD_CHUNK {
        hasher.update(upload_chunk(i));
    }
    let expected = hex::encode(hasher.finalize());
    let pid = stack.agent.pid().expect("agent pid");

    for via in stack.vias(&device) {
        let before = rss_kib_of(pid).expect("agent RSS");
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
        let sampler = {
            let peak = peak.clone();
            tokio::spawn(async move {
                loop {
                    peak.fetch_max(rss_kib_of(pid).unwrap_or(0), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        let started = Instant::now();
        let resp = via
            .upload(reqwest::Method::POST, "/api/v1/system/restore")
            .header("content-type", "application/zip")
            .header("content-length", UPLOAD_LEN.to_string())
            .body(upload_body())
            .send()
            .await
            .unwrap();
        let elapsed = started.elapsed();
        sampler.abort();
        let peak = peak.load(Ordering::Relaxed);
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        assert_eq!(status, 200, "{}: {body}\n{}", via.name(), stack.logs());
        assert_eq!(body["received"], UPLOAD_LEN as u64, "{}", via.name());
        assert_eq!(body["sha256"], expected.as_str(), "{}", via.name());
        // Streamed, not buffered: the agent's memory does not grow with the upload.
        eprintln!(
            "{}: 100 MiB in {:.2} s; agent RSS {before} KiB before, peak {peak} KiB",
            via.name(),
            elapsed.as_secs_f64()
        );
        assert!(
            peak < before + 16 * 1024,
            "{}: agent RSS grew from {before} KiB to {peak} KiB during a 100 MiB upload",
            via.name()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn server_sent_events_arrive_as_they_are_sent() {
    let (stack, device) = owner_stack(StackOptions::default()).await;
    for via in stack.vias(&device) {
        let started = Instant::now();
        let mut resp = via
            .get("/api/v1/system/ai-processing-stream?count=4&interval_ms=600")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{}: {}", via.name(), stack.logs());
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        let first = resp.chunk().await.unwrap().expect("a first event");
        let first_at = started.elapsed();
        assert!(
            String::from_utf8_lossy(&first).starts_with("id: 0\nevent: event_processed\ndata: "),
            "{first:?}"
        );
        let mut text = String::from_utf8_lossy(&first).into_owned();
        while let Some(c) = resp.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&c));
        }
        let end_at = started.elapsed();
        assert_eq!(text.matches("event: event_processed").count(), 4, "{text}");
        // The stream lasts ≥ 1.8 s; the first event is not held back until its end.
        assert!(end_at >= Duration::from_millis(1800), "{end_at:?}");
        assert!(
            first_at + Duration::from_millis(1200) < end_at,
            "{}: first event after {first_at:?}, stream ended after {end_at:?}",
            via.name()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn websockets_echo_ping_pong_and_binary_camera_frames() {
    let (stack, device) = owner_stack(StackOptions::default()).await;
    let camera = stack.backend.camera_ids()[0].clone();
    for via in stack.vias(&device) {
        let name = via.name();
        let (mut ws, resp) = tokio_tungstenite::connect_async(via.websocket_request("/ws"))
            .await
            .unwrap_or_else(|e| panic!("{name}: /ws handshake: {e}\n{}", stack.logs()));
        assert_eq!(resp.status(), 101);
        let next_text = |m: Option<Result<Message, _>>| match m {
            Some(Ok(Message::Text(t))) => t,
            other => panic!("{name}: expected text, got {other:?}"),
        };
        let hello: serde_json::Value = serde_json::from_str(&next_text(ws.next().await)).unwrap();
        assert_eq!(hello["type"], "hello");

        ws.send(Message::Text("ping".into())).await.unwrap();
        assert_eq!(next_text(ws.next().await), "pong");
        ws.send(Message::Text(r#"{"hi":1}"#.into())).await.unwrap();
        let echo: serde_json::Value = serde_json::from_str(&next_text(ws.next().await)).unwrap();
        assert_eq!(echo, serde_json::json!({"type": "echo", "data": {"hi": 1}}));
        let blob: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        ws.send(Message::Binary(blob.clone())).await.unwrap();
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => assert_eq!(b, blob, "{name}"),
            other => panic!("{name}: expected the binary echo, got {other:?}"),
        }
        // Protocol-level ping → pong.
        ws.send(Message::Ping(b"are-you-there".to_vec()))
            .await
            .unwrap();
        match ws.next().await {
            Some(Ok(Message::Pong(p))) => assert_eq!(p, b"are-you-there"),
            other => panic!("{name}: expected a pong, got {other:?}"),
        }
        // A notification pushed by the backend reaches the phone.
        assert!(stack.backend.notify(serde_json::json!({"event": "e1"})) >= 1);
        let note: serde_json::Value = serde_json::from_str(&next_text(ws.next().await)).unwrap();
        assert_eq!(note["type"], "notification");
        ws.close(None).await.unwrap();

        // The live camera: binary JPEG frames, then the backend's close.
        let target = format!("/ws/stream/{camera}?fps=20&count=3");
        let (mut ws, _) = tokio_tungstenite::connect_async(via.websocket_request(&target))
            .await
            .unwrap_or_else(|e| panic!("{name}: camera handshake: {e}"));
        let mut frames = 0;
        while let Some(m) = ws.next().await {
            match m {
                Ok(Message::Binary(b)) => {
                    assert_eq!(&b[..2], &[0xFF, 0xD8], "{name}: a JPEG frame");
                    frames += 1;
                }
                Ok(Message::Close(_)) => break,
                Ok(_) => {}
                Err(e) => panic!("{name}: camera stream: {e}"),
            }
        }
        assert_eq!(frames, 3, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn video_ranges_and_head() {
    let (stack, device) = owner_stack(StackOptions::default()).await;
    let id = stack.backend.event_ids()[0].clone();
    let video = stack.backend.video_bytes(&id).unwrap();
    let len = video.len();
    let target = format!("/api/v1/events/{id}/video");
    for via in stack.vias(&device) {
        let name = via.name();
        let resp = via
            .get(&target)
            .header("range", "bytes=100-4195")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 206, "{name}: {}", stack.logs());
        assert_eq!(
            resp.headers()["content-range"],
            format!("bytes 100-4195/{len}").as_str()
        );
        assert_eq!(resp.headers()["accept-ranges"], "bytes");
        assert_eq!(resp.bytes().await.unwrap(), &video[100..4196]);

        let resp = via
            .get(&target)
            .header("range", "bytes=-10")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 206, "{name}");
        assert_eq!(resp.bytes().await.unwrap(), &video[len - 10..]);

        let resp = via
            .get(&target)
            .header("range", format!("bytes={len}-"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 416, "{name}");
        assert_eq!(
            resp.headers()["content-range"],
            format!("bytes */{len}").as_str()
        );

        // The test's policy lets HEAD through; ArgusAI's video route is GET only, and its 405
        // reaches the phone as it is.
        let resp = via
            .request(reqwest::Method::HEAD, &target)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 405, "{name}: {}", stack.logs());
        assert_eq!(resp.headers()["allow"], "GET", "{name}");

        let resp = via.get(&target).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.bytes().await.unwrap(), video, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn trailing_slashes_behave_exactly_as_the_backend_says() {
    // ArgusAI (`redirect_slashes=False`): a stray slash is the backend's own 404.
    let (stack, device) = owner_stack(StackOptions::default()).await;
    for via in stack.vias(&device) {
        stack.backend.clear_requests();
        let resp = via.get("/api/v1/events/?limit=1").send().await.unwrap();
        assert_eq!(resp.status(), 404, "{}", via.name());
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body, serde_json::json!({"detail": "Not Found"}));
        assert_eq!(stack.backend.count(|r| r.path() == "/api/v1/events/"), 1);
    }
    drop(stack);

    // Starlette's default: a 307 to the other spelling, passed back (relative), not followed.
    let (stack, device) = owner_stack(StackOptions {
        backend_redirect_slashes: true,
        ..StackOptions::default()
    })
    .await;
    for via in stack.vias(&device) {
        stack.backend.clear_requests();
        let resp = via.get("/api/v1/events/?limit=1").send().await.unwrap();
        assert_eq!(resp.status(), 307, "{}: {}", via.name(), stack.logs());
        assert_eq!(
            resp.headers()["location"],
            "/api/v1/events?limit=1",
            "{}: the backend's address does not leak",
            via.name()
        );
        assert_eq!(
            stack.backend.requests().len(),
            1,
            "{}: the redirect was not followed",
            via.name()
        );
        let resp = via.get("/api/v1/events?limit=1").send().await.unwrap();
        assert_eq!(resp.status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_requests_upstream_latency_websockets_and_signature_refusals() {
    let (stack, device) = owner_stack(StackOptions {
        ..StackOptions::default()
    })
    .await;
    for via in stack.vias(&device) {
        assert_eq!(
            via.get("/api/v1/events?limit=1")
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        if let Via::Tunnel(_) = via {
            let (mut ws, _) = tokio_tungstenite::connect_async(via.websocket_request("/ws"))
                .await
                .unwrap();
            let _hello = ws.next().await;
            // While it is open, the gauge says so.
            let text = admin_metrics(&stack).await;
            assert!(
                text.lines().any(|l| l == "argus_relay_websockets_active 1"),
                "{text}"
            );
            ws.close(None).await.unwrap();
        }
    }
    // Unsigned and replayed requests: counted by reason.
    let resp = reqwest::get(format!("{}/api/v1/events", stack.agent.tunnel_url()))
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    let text = admin_metrics(&stack).await;
    let value = |line_start: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit_once(' '))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or_else(|| panic!("no {line_start} in\n{text}"))
    };
    assert!(
        value("argus_relay_requests_total{listener=\"tunnel\",route=\"api\",status=\"2xx\"}")
            >= 2.0
    );
    assert!(value("argus_relay_upstream_duration_seconds_count{class=\"api\"}") >= 2.0);
    assert!(
        value("argus_relay_edge_signature_rejections_total{reason=\"signature.missing\"}") >= 1.0
    );
    assert_eq!(value("argus_relay_websockets_total"), 1.0);
    assert!(value("argus_relay_connections_active{listener=\"tunnel\"}") >= 0.0);
    assert!(value("argus_relay_process_start_time_seconds") > 1.7e9);

    // The admin token is required.
    let resp = reqwest::get(format!("{}/admin/metrics", stack.agent.admin_url()))
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

async fn admin_metrics(stack: &Stack) -> String {
    let resp = reqwest::Client::new()
        .get(format!("{}/admin/metrics", stack.agent.admin_url()))
        .bearer_auth(stack.agent.admin_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    resp.text().await.unwrap()
}
