//! User story: a phone watches a camera live, on Wi-Fi, LTE or a 3G-like link, at home or away;
//! the relay keeps the stream within what the link delivers and never lets it fall behind
//! (docs/mobile-integration.md, "Live preview").
//!
//! The phone's link is shaped with `tc` (a token bucket, `tbf`, on the agent's LAN port's
//! traffic to the phone) inside a network namespace the test makes; every frame's age is read
//! from the comment the stand-in ArgusAI puts in it (sent at, µs) when it arrives at the phone.
//! Without namespaces (not root, no `tc`) the shaped tests say so and skip.

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

use argus_shared::image::{probe, Probe};
use e2e::backend::live::read_frame_comment;
use e2e::lan::{lan_section, mdns_port};
use e2e::stack::{Stack, StackOptions};

const TEST_LIMIT: Duration = Duration::from_secs(90);

fn run(name: &str, body: impl std::future::Future<Output = ()>) {
    e2e::lan::run_isolated_test(name, TEST_LIMIT, body)
}

/// Whether this process is inside a namespace of its own, where `tc` may shape `lo`.
fn can_shape() -> bool {
    std::env::var_os("ARGUS_E2E_INSIDE_NETNS").is_some()
}

fn tc(args: &str) {
    let out = Command::new("tc")
        .args(args.split_whitespace())
        .output()
        .expect("tc runs");
    assert!(
        out.status.success(),
        "tc {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Shapes what the agent's port `port` sends (to the phone) to `rate` (`500kbit`, `30mbit`) with
/// a token bucket; everything else on `lo` (the agent and ArgusAI) goes unshaped. An `htb` root
/// sorts the phone's traffic (a `u32` match on the source port) into a class whose qdisc is the
/// `tbf`.
fn shape(port: u16, rate: &str) {
    // Loopback's 64 KiB packets would never fit the bucket's 16 KiB burst: an Ethernet MTU.
    let mtu = Command::new("ip")
        .args(["link", "set", "lo", "mtu", "1500"])
        .status()
        .expect("ip runs");
    assert!(mtu.success());
    tc("qdisc add dev lo root handle 1: htb default 10");
    tc("class add dev lo parent 1: classid 1:10 htb rate 10gbit quantum 60000");
    tc("class add dev lo parent 1: classid 1:20 htb rate 10gbit quantum 60000");
    tc(&format!(
        "qdisc add dev lo parent 1:20 handle 20: tbf rate {rate} burst 16kb latency 200ms"
    ));
    tc(&format!(
        "filter add dev lo parent 1: protocol ip prio 1 u32 match ip sport {port} 0xffff flowid 1:20"
    ));
}

fn reshape(rate: &str) {
    tc(&format!(
        "qdisc change dev lo parent 1:20 handle 20: tbf rate {rate} burst 16kb latency 200ms"
    ));
}

async fn lan_stack() -> Stack {
    Stack::start_with(StackOptions {
        agent_toml: Some(lan_section(mdns_port(), "ArgusAI test home")),
        without_worker: true,
        ..StackOptions::default()
    })
    .await
}

type HomeWs =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

async fn watch_at_home(stack: &Stack, token: &str, query: &str) -> HomeWs {
    let camera = stack
        .backend
        .camera_id("Driveway")
        .expect("a Driveway camera");
    e2e::ws::at_home(
        stack,
        token,
        &format!("/api/v1/cameras/{camera}/stream{query}"),
    )
    .await
}

/// One frame as the phone got it.
#[derive(Debug, Clone)]
struct Got {
    /// Since the watching began.
    at: Duration,
    age: Duration,
    bytes: usize,
    width: u32,
}

fn unix_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

/// Reads the stream for `how_long`; text messages are returned beside the frames.
async fn watch<S>(ws: &mut S, how_long: Duration) -> (Vec<Got>, Vec<String>)
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let start = Instant::now();
    let mut frames = Vec::new();
    let mut texts = Vec::new();
    while start.elapsed() < how_long {
        let left = how_long.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, ws.next()).await {
            Err(_) => break,
            Ok(Some(Ok(Message::Binary(b)))) => {
                let (_, sent_us, _) = read_frame_comment(&b).expect("the frame's comment survives");
                let width = match probe(&b) {
                    Probe::Jpeg(f) => f.width,
                    other => panic!("not a JPEG: {other:?}"),
                };
                frames.push(Got {
                    at: start.elapsed(),
                    age: Duration::from_micros(
                        u64::try_from(unix_us().saturating_sub(sent_us)).unwrap(),
                    ),
                    bytes: b.len(),
                    width,
                });
            }
            Ok(Some(Ok(Message::Text(t)))) => texts.push(t.to_string()),
            Ok(Some(Ok(_))) => {}
            other => panic!("the stream ended: {other:?}"),
        }
    }
    (frames, texts)
}

fn p99_age(frames: &[Got]) -> Duration {
    let mut ages: Vec<_> = frames.iter().map(|f| f.age).collect();
    ages.sort();
    ages[(ages.len() * 99).div_ceil(100).max(1) - 1]
}

/// Frame bits per second delivered over `frames`' span.
fn bitrate(frames: &[Got]) -> f64 {
    let bytes: usize = frames.iter().map(|f| f.bytes).sum();
    let span = frames.last().unwrap().at - frames.first().unwrap().at;
    bytes as f64 * 8.0 / span.as_secs_f64().max(0.001)
}

fn widths(frames: &[Got]) -> Vec<u32> {
    let mut w: Vec<u32> = frames.iter().map(|f| f.width).collect();
    w.dedup();
    w
}

fn report(what: &str, frames: &[Got]) {
    if frames.len() < 2 {
        println!("{what}: {} frames", frames.len());
        return;
    }
    println!(
        "{what}: {} frames, p99 age {:?}, {:.0} kbit/s, widths {:?}",
        frames.len(),
        p99_age(frames),
        bitrate(frames) / 1000.0,
        widths(frames)
    );
}

fn skip(name: &str) -> bool {
    if can_shape() {
        return false;
    }
    println!("SKIP {name}: needs a network namespace of its own (root, unshare, ip, tc) to shape the link");
    true
}

#[test]
fn at_500_kbits_the_stream_keeps_flowing_at_data_saver_with_fresh_frames() {
    let name = "at_500_kbits_the_stream_keeps_flowing_at_data_saver_with_fresh_frames";
    run(name, async {
        if skip(name) {
            return;
        }
        let stack = lan_stack().await;
        let token = stack.pair_phone_direct("viewer").await.access_token;
        shape(stack.agent.lan_addr().unwrap().port(), "500kbit");
        let mut ws = watch_at_home(&stack, &token, "").await;
        let (frames, _) = watch(&mut ws, Duration::from_secs(20)).await;
        report("500 kbit/s, all", &frames);
        let settled: Vec<_> = frames
            .iter()
            .filter(|f| f.at > Duration::from_secs(5))
            .cloned()
            .collect();
        report("500 kbit/s, after 5 s", &settled);
        assert!(
            settled.len() >= 20,
            "the stream keeps flowing: {}",
            settled.len()
        );
        assert!(p99_age(&settled) <= Duration::from_secs(1));
        assert!(bitrate(&settled) <= 500_000.0);
        let last = &settled[settled.len() - 5..];
        assert!(
            last.iter().all(|f| f.width <= 640),
            "settles at data saver, reduced or low: {:?}",
            widths(&settled)
        );
    });
}

#[test]
fn at_1_5_mbits_the_stream_settles_at_medium_or_below_within_500_ms() {
    let name = "at_1_5_mbits_the_stream_settles_at_medium_or_below_within_500_ms";
    run(name, async {
        if skip(name) {
            return;
        }
        let stack = lan_stack().await;
        let token = stack.pair_phone_direct("viewer").await.access_token;
        shape(stack.agent.lan_addr().unwrap().port(), "1500kbit");
        let mut ws = watch_at_home(&stack, &token, "?quality=auto").await;
        let (frames, _) = watch(&mut ws, Duration::from_secs(20)).await;
        let settled: Vec<_> = frames
            .iter()
            .filter(|f| f.at > Duration::from_secs(8))
            .cloned()
            .collect();
        report("1.5 Mbit/s, after 8 s", &settled);
        assert!(settled.len() >= 20);
        assert!(p99_age(&settled) <= Duration::from_millis(500));
        assert!(settled.iter().all(|f| f.width <= 1280));
        assert!(bitrate(&settled) <= 1_500_000.0);
    });
}

#[test]
fn a_link_falling_from_wifi_speed_to_500_kbits_steps_down_within_3_s_without_backlog() {
    let name = "a_link_falling_from_wifi_speed_to_500_kbits_steps_down_within_3_s_without_backlog";
    run(name, async {
        if skip(name) {
            return;
        }
        let stack = lan_stack().await;
        let token = stack.pair_phone_direct("viewer").await.access_token;
        shape(stack.agent.lan_addr().unwrap().port(), "30mbit");
        let mut ws = watch_at_home(&stack, &token, "?quality=medium").await;
        let (before, _) = watch(&mut ws, Duration::from_secs(4)).await;
        report("30 Mbit/s", &before);
        assert_eq!(before.last().unwrap().width, 1280, "medium on Wi-Fi");
        reshape("500kbit");
        let fell = Instant::now();
        let asked_before = stack.backend.stream_qualities().len();
        // The step down is the relay's `quality_change` to ArgusAI (frames already in flight on
        // the link still arrive after it).
        let stepped_down = async {
            loop {
                if stack.backend.stream_qualities()[asked_before..].contains(&"low") {
                    return fell.elapsed();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        let ((after, _), stepped) = tokio::join!(
            watch(&mut ws, Duration::from_secs(12)),
            tokio::time::timeout(Duration::from_secs(12), stepped_down)
        );
        report("after the fall to 500 kbit/s", &after);
        let stepped = stepped.expect("ArgusAI was asked for low");
        println!("stepped down {stepped:?} after the fall");
        assert!(stepped <= Duration::from_secs(3), "{stepped:?}");
        let recovered: Vec<_> = after
            .iter()
            .filter(|f| f.at > Duration::from_secs(5))
            .cloned()
            .collect();
        report("5 s after the fall", &recovered);
        assert!(recovered.len() >= 10);
        assert!(p99_age(&recovered) <= Duration::from_secs(1), "no backlog");
    });
}

#[test]
fn an_explicit_quality_on_a_slow_link_drops_frames_and_is_never_exceeded() {
    let name = "an_explicit_quality_on_a_slow_link_drops_frames_and_is_never_exceeded";
    run(name, async {
        if skip(name) {
            return;
        }
        let stack = lan_stack().await;
        let token = stack.pair_phone_direct("viewer").await.access_token;
        shape(stack.agent.lan_addr().unwrap().port(), "2mbit");
        let mut ws = watch_at_home(&stack, &token, "?quality=medium").await;
        let (frames, _) = watch(&mut ws, Duration::from_secs(15)).await;
        report("quality=medium at 2 Mbit/s", &frames);
        assert!(
            frames.iter().all(|f| f.width <= 1280),
            "never above the ceiling"
        );
        assert!(
            !stack.backend.stream_qualities().contains(&"high"),
            "ArgusAI never asked for more than the phone's ceiling: {:?}",
            stack.backend.stream_qualities()
        );
        // ArgusAI sends 10 fps; the phone gets fewer, and fresh ones, not a queue.
        let late: Vec<_> = frames
            .iter()
            .filter(|f| f.at > Duration::from_secs(5))
            .cloned()
            .collect();
        assert!(
            (late.len() as f64) < 10.0 * 10.0 * 0.9,
            "frames were dropped"
        );
        assert!(p99_age(&late) <= Duration::from_secs(1), "never queued");

        // The phone asks for low itself: its answer comes, the relay's own requests stay hidden.
        ws.send(Message::Text(
            r#"{"type":"quality_change","quality":"low"}"#.into(),
        ))
        .await
        .unwrap();
        let (_, texts) = watch(&mut ws, Duration::from_secs(3)).await;
        let texts: Vec<serde_json::Value> = texts
            .iter()
            .map(|t| serde_json::from_str(t).unwrap())
            .collect();
        assert_eq!(
            texts,
            [serde_json::json!({"type": "quality_changed", "quality": "low"})],
            "exactly the answer to the phone's own request"
        );
    });
}

#[test]
fn errors_from_argusai_reach_the_phone_unchanged() {
    run("errors_from_argusai_reach_the_phone_unchanged", async {
        let stack = lan_stack().await;
        let token = stack.pair_phone_direct("viewer").await.access_token;
        let garage = stack.backend.camera_id("Garage").unwrap();
        for (path, code, close) in [
            (
                "/api/v1/cameras/no-such-camera/stream".to_owned(),
                "CAMERA_NOT_FOUND",
                4004,
            ),
            (
                format!("/api/v1/cameras/{garage}/stream"),
                "NO_RTSP_URL",
                4400,
            ),
        ] {
            let mut ws = e2e::ws::at_home(&stack, &token, &path).await;
            let (error, closed) = error_and_close(&mut ws).await;
            assert_eq!(error["type"], "error");
            assert_eq!(error["code"], code);
            assert_eq!(closed, close);
        }
        // Four streams at once is ArgusAI's limit here: the fifth is refused.
        let mut open = Vec::new();
        for _ in 0..4 {
            let mut ws = watch_at_home(&stack, &token, "?quality=low").await;
            e2e::ws::frames(&mut ws, 1).await;
            open.push(ws);
        }
        // The owner sees who watches what, and /metrics counts each stream.
        let admin = |path: &str| {
            reqwest::Client::new()
                .get(format!("{}{path}", stack.agent.admin_url()))
                .bearer_auth(stack.agent.admin_token().unwrap())
                .send()
        };
        let live: serde_json::Value = admin("/admin/live-streams")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let streams = live["streams"].as_array().unwrap();
        assert_eq!(streams.len(), 4, "{live}");
        let summary = streams[0]["summary"].as_str().unwrap();
        assert!(
            summary.contains(" watching Driveway at 360p, "),
            "{summary}"
        );
        let metrics = admin("/admin/metrics").await.unwrap().text().await.unwrap();
        assert!(
            metrics.contains("argus_relay_live_streams_active 4"),
            "{metrics}"
        );
        assert!(metrics.contains("kind=\"sent\"}"), "{metrics}");
        let mut fifth = watch_at_home(&stack, &token, "?quality=low").await;
        let (error, closed) = error_and_close(&mut fifth).await;
        assert_eq!(error["code"], "STREAM_LIMIT_REACHED");
        assert_eq!(closed, 4429);
        // A ping is ArgusAI's to answer.
        let ws = &mut open[0];
        ws.send(Message::Text(r#"{"type":"ping"}"#.into()))
            .await
            .unwrap();
        let (_, texts) = watch(ws, Duration::from_secs(1)).await;
        assert_eq!(
            texts,
            [r#"{"type":"pong"}"#],
            "ArgusAI's own answer, unchanged"
        );
    });
}

async fn error_and_close<S>(ws: &mut S) -> (serde_json::Value, u16)
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let mut error = serde_json::Value::Null;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => error = serde_json::from_str(&t).unwrap(),
            Ok(Some(Ok(Message::Close(Some(f))))) => return (error, u16::from(f.code)),
            other => panic!("expected the error then a close: {other:?}"),
        }
    }
}

#[test]
fn a_phone_that_never_reads_costs_bounded_memory_and_is_closed_after_a_timeout() {
    run(
        "a_phone_that_never_reads_costs_bounded_memory_and_is_closed_after_a_timeout",
        async {
            let stack = lan_stack().await;
            let token = stack.pair_phone_direct("viewer").await.access_token;
            let before = stack.agent.rss_kib().unwrap_or(0);
            // High: ~300 KB frames at 15 fps, and the phone reads none of them.
            let ws = watch_at_home(&stack, &token, "?quality=high").await;
            let started = Instant::now();
            let mut peak = before;
            let mut closed = false;
            while started.elapsed() < Duration::from_secs(20) {
                tokio::time::sleep(Duration::from_millis(500)).await;
                peak = peak.max(stack.agent.rss_kib().unwrap_or(0));
                if stack.backend.active_camera_streams() == 0 {
                    closed = true;
                    break;
                }
            }
            println!(
                "never-reading phone: closed after {:?}, agent RSS {before} → peak {peak} KiB",
                started.elapsed()
            );
            assert!(closed, "the stream is closed after the stall timeout");
            assert!(started.elapsed() >= Duration::from_secs(9));
            // 20 s of 1080p is ~90 MB of frames; the agent holds a few of them at most.
            assert!(
                peak.saturating_sub(before) < 24 * 1024,
                "{before} → {peak} KiB"
            );
            drop(ws);
        },
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn through_the_relay_an_unshaped_stream_reaches_the_phones_ceiling() {
    let stack = Stack::start().await;
    let device = stack.pair_phone("viewer").await;
    let camera = stack.backend.camera_id("Driveway").unwrap();
    let url = format!(
        "{}/api/v1/cameras/{camera}/stream?quality=medium",
        stack.edge_url().replace("http://", "ws://")
    );
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "mf-cf-blob",
        HeaderValue::from_str(&stack.phone().cf.to_string()).unwrap(),
    );
    req.headers_mut()
        .insert("x-network", HeaderValue::from_static("cellular"));
    // A phone cannot speak for the edge: its own `x-relay-link` (a round trip that would start
    // the stream at data saver) is dropped by the Worker.
    req.headers_mut()
        .insert("x-relay-link", HeaderValue::from_static("rtt=900"));
    e2e::ws::bearer(&mut req, &device.access_token);
    let (mut ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .unwrap_or_else(|e| panic!("upgrade refused: {e}\n{}", stack.logs()));
    assert_eq!(resp.status(), 101);
    let (frames, texts) = watch(&mut ws, Duration::from_secs(12)).await;
    report("through the Worker, unshaped", &frames);
    assert!(
        texts.is_empty(),
        "the relay's own level changes stay hidden: {texts:?}"
    );
    assert_eq!(frames.first().unwrap().width, 640, "cellular starts at low");
    assert_eq!(
        frames.last().unwrap().width,
        1280,
        "and rises to the phone's ceiling"
    );
    assert_eq!(stack.backend.stream_qualities(), ["low", "medium"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn through_the_relay_a_long_round_trip_seen_by_the_edge_starts_the_stream_at_data_saver() {
    let stack = Stack::start().await;
    let device = stack.pair_phone("viewer").await;
    let camera = stack.backend.camera_id("Driveway").unwrap();
    let url = format!(
        "{}/api/v1/cameras/{camera}/stream",
        stack.edge_url().replace("http://", "ws://")
    );
    let mut req = url.into_client_request().unwrap();
    // Cloudflare measured a 400 ms TCP round trip to the phone (`request.cf.clientTcpRtt`): the
    // Worker tells the agent in the signed `x-relay-link` header.
    let mut cf = stack.phone().cf.clone();
    cf["clientTcpRtt"] = serde_json::json!(400);
    req.headers_mut().insert(
        "mf-cf-blob",
        HeaderValue::from_str(&cf.to_string()).unwrap(),
    );
    e2e::ws::bearer(&mut req, &device.access_token);
    let (mut ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .unwrap_or_else(|e| panic!("upgrade refused: {e}\n{}", stack.logs()));
    assert_eq!(resp.status(), 101);
    let (frames, _) = watch(&mut ws, Duration::from_secs(3)).await;
    report("through the Worker, 400 ms round trip", &frames);
    assert!(!frames.is_empty(), "frames flow");
    assert_eq!(
        frames.first().unwrap().width,
        320,
        "data saver: {:?}",
        widths(&frames)
    );
    assert_eq!(
        stack.backend.stream_qualities(),
        ["low"],
        "ArgusAI streams its lowest level, which the relay re-encodes"
    );
}

// ---------------------------------------------------------------------------------------------
// Benchmarks (`make bench`, scripts/bench-live.sh): ignored in `make test`.

/// Agent CPU and bytes per frame for each re-encode level, from a 1080p source (the generated
/// test photos) and from ArgusAI's `low` (640×360, what the relay really re-encodes).
#[test]
#[ignore = "benchmark: make bench"]
fn bench_reencode_cpu_per_level() {
    use argus_shared::image::{transcode, Limits, Variant};
    use argus_shared::live_stream::Level;
    let sources: Vec<Vec<u8>> = argus_shared::test_photos::ALL
        .iter()
        .filter(|p| p.width == 1920)
        .map(|p| p.jpeg())
        .collect();
    let low = Variant {
        name: "low",
        max_width: 640,
        ..Variant::MOBILE
    };
    let lows: Vec<Vec<u8>> = sources
        .iter()
        .map(|s| transcode(s, &low, &Limits::DEFAULT).unwrap().bytes)
        .collect();
    let time = |inputs: &[Vec<u8>], variant: &Variant| {
        let mut ms = Vec::new();
        let mut bytes = 0;
        for round in 0..10 {
            for input in inputs {
                let t = Instant::now();
                let out = argus_shared::live_stream::reencode(input, variant).expect("re-encoded");
                if round > 0 {
                    ms.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                bytes = out.len();
            }
        }
        ms.sort_by(f64::total_cmp);
        (ms[ms.len() / 2], ms[ms.len() * 9 / 10], bytes)
    };
    let copy = {
        let t = Instant::now();
        for s in &sources {
            std::hint::black_box(s.clone());
        }
        t.elapsed().as_secs_f64() * 1000.0 / sources.len() as f64
    };
    let source_bytes: usize = sources.iter().map(Vec::len).sum::<usize>() / sources.len();
    println!("source: 1080p q80 test photos, {source_bytes} bytes each; a plain copy {copy:.3} ms");
    for level in [Level::Reduced, Level::DataSaver] {
        let v = level.reencode().unwrap();
        let (p50, p90, bytes) = time(&sources, &v);
        println!(
            "{:<10} from 1080p: p50 {p50:.2} ms p90 {p90:.2} ms per frame (target ≤ 8 ms at data_saver: {:.2}×), {bytes} bytes ({:.1} % of the source), {:.0} kbit/s at {} fps",
            level.as_str(),
            p50 / 8.0,
            bytes as f64 * 100.0 / source_bytes as f64,
            bytes as f64 * 8.0 * f64::from(level.max_fps()) / 1000.0,
            level.max_fps()
        );
        let (p50, p90, bytes) = time(&lows, &v);
        println!(
            "{:<10} from low (640×360): p50 {p50:.2} ms p90 {p90:.2} ms per frame, {bytes} bytes",
            level.as_str()
        );
    }
}

/// Frame age at 500 kbit/s, 1.5 Mbit/s and 30 Mbit/s: the relay (adaptive, `quality=auto`)
/// against a plain pass-through (the phone straight on ArgusAI's stream at its default level,
/// what a byte-copying relay delivers), each shaped the same, in the same run.
#[test]
#[ignore = "benchmark: make bench"]
fn bench_frame_age_relay_vs_pass_through() {
    let name = "bench_frame_age_relay_vs_pass_through";
    // Three rates, two paths, 20 s each, plus the stack: longer than a test's limit.
    e2e::lan::run_isolated_test(name, Duration::from_secs(300), async {
        if skip(name) {
            return;
        }
        let stack = lan_stack().await;
        let token = stack.pair_phone_direct("viewer").await.access_token;
        let lan_port = stack.agent.lan_addr().unwrap().port();
        let backend_port: u16 = stack
            .backend
            .url()
            .rsplit(':')
            .next()
            .unwrap()
            .trim_end_matches('/')
            .parse()
            .unwrap();
        let camera = stack.backend.camera_id("Driveway").unwrap();
        let percentiles = |frames: &[Got]| {
            let mut a: Vec<_> = frames
                .iter()
                .map(|f| f.age.as_secs_f64() * 1000.0)
                .collect();
            a.sort_by(f64::total_cmp);
            let at = |p: usize| a[((a.len() * p).div_ceil(100)).max(1) - 1];
            (at(50), at(90), at(99))
        };
        for rate in ["500kbit", "1500kbit", "30mbit"] {
            let mut row = Vec::new();
            for (what, port) in [("relay", lan_port), ("pass-through", backend_port)] {
                let _ = Command::new("tc")
                    .args(["qdisc", "del", "dev", "lo", "root"])
                    .status();
                shape(port, rate);
                let frames = if what == "relay" {
                    let mut ws = watch_at_home(&stack, &token, "").await;
                    watch(&mut ws, Duration::from_secs(20)).await.0
                } else {
                    let url = format!(
                        "{}/api/v1/cameras/{camera}/stream",
                        stack.backend.url().replace("http://", "ws://")
                    );
                    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
                    watch(&mut ws, Duration::from_secs(20)).await.0
                };
                let settled: Vec<_> = frames
                    .iter()
                    .filter(|f| f.at > Duration::from_secs(5))
                    .cloned()
                    .collect();
                let (p50, p90, p99) = percentiles(&settled);
                println!(
                    "{rate:>9} {what:<12} {} frames after 5 s, age p50 {p50:.0} ms p90 {p90:.0} ms p99 {p99:.0} ms, {:.0} kbit/s",
                    settled.len(),
                    bitrate(&settled) / 1000.0
                );
                row.push(p99);
            }
            println!(
                "{rate:>9} pass-through p99 / relay p99 = {:.1}×",
                row[1] / row[0]
            );
        }
    });
}
