//! User story (issue 6): limits and faults. A slow, dead or dying backend, oversized or slow
//! clients and too many connections each get a bounded, JSON (where HTTP still applies) answer;
//! the agent never crashes and serves the next request; SIGTERM lets in-flight requests finish.
//! Small limits are configured per test so each fault shows within a second or two.

use std::time::{Duration, Instant};

use argus_shared::signature::BodyBinding;
use e2e::phone::Phone;
use e2e::process::free_port;
use e2e::stack::{policy_with_system_paths, Stack, StackOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MIB: usize = 1024 * 1024;

/// Owner device, system paths allowed at the edge, a 1 s API timeout and a 1 MiB body cap.
async fn small_limits_stack(with_worker: bool) -> (Stack, e2e::PairedDevice) {
    let stack = Stack::start_with(StackOptions {
        policy: Some(policy_with_system_paths(&[])),
        agent_toml: Some(
            "[backend]\nrequest_timeout_secs = 1\n\
             [limits]\nmax_body_bytes = 1048576\nheader_read_timeout_secs = 1\n\
             idle_timeout_secs = 3\nmax_connections = 6\n"
                .into(),
        ),
        without_worker: !with_worker,
        ..StackOptions::default()
    })
    .await;
    let device = if with_worker {
        stack.pair_phone("owner").await
    } else {
        stack.pair_phone_direct("owner").await
    };
    (stack, device)
}

fn assert_json_error(via: &str, status: u16, body: &serde_json::Value, want: u16, code: &str) {
    assert_eq!(status, want, "{via}: {body}");
    assert_eq!(body["error"]["code"], code, "{via}: {body}");
    assert!(body["error"]["request_id"].as_str().is_some(), "{body}");
}

fn agent_alive(stack: &mut Stack) {
    let running = stack
        .agent
        .process_mut()
        .map(|p| p.is_running())
        .unwrap_or(false);
    assert!(running, "the agent died:\n{}", stack.logs());
}

async fn metric(stack: &Stack, line_start: &str) -> f64 {
    let text = reqwest::Client::new()
        .get(format!("{}/admin/metrics", stack.agent.admin_url()))
        .bearer_auth(stack.agent.admin_token().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("no {line_start} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_backend_gets_a_json_504_but_streams_outlive_the_api_timeout() {
    let (mut stack, device) = small_limits_stack(true).await;
    for via in stack.vias(&device) {
        stack.backend.set_delay(Some(Duration::from_secs(3)));
        let started = Instant::now();
        let (status, body) =
            Phone::json(via.get("/api/v1/events?limit=1").send().await.unwrap()).await;
        let took = started.elapsed();
        assert_json_error(via.name(), status, &body, 504, "gateway_timeout");
        assert!(
            took < Duration::from_millis(2500),
            "{}: {took:?}",
            via.name()
        );

        // SSE (and exports, video, WebSockets) are not cut by the 1 s API timeout: 4 events over
        // 2.1 s all arrive.
        stack.backend.set_delay(None);
        let resp = via
            .get("/api/v1/system/ai-processing-stream?count=4&interval_ms=700")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let text = resp.text().await.unwrap();
        assert_eq!(
            text.matches("event: event_processed").count(),
            4,
            "{}",
            via.name()
        );
    }
    assert!(
        metric(
            &stack,
            "argus_relay_upstream_errors_total{kind=\"timeout\"}"
        )
        .await
            >= 2.0
    );
    agent_alive(&mut stack);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backend_dying_mid_stream_cuts_the_download_and_the_agent_carries_on() {
    let (mut stack, device) = small_limits_stack(true).await;
    let full = 8 * MIB;
    for via in stack.vias(&device) {
        stack.backend.set_cut_after(Some(MIB as u64));
        let mut resp = via
            .get("/api/v1/system/backup/x/download")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{}", via.name());
        let mut got = 0usize;
        let outcome = loop {
            match resp.chunk().await {
                Ok(Some(c)) => got += c.len(),
                Ok(None) => break "ended",
                Err(_) => break "error",
            }
        };
        assert!(
            got < full && got >= MIB / 2,
            "{}: {got} bytes ({outcome})",
            via.name()
        );
        assert_eq!(
            outcome,
            "error",
            "{}: a cut stream must not look complete",
            via.name()
        );

        // The next request works, and the next download is whole.
        stack.backend.set_cut_after(None);
        let resp = via.get("/api/v1/events?limit=1").send().await.unwrap();
        assert_eq!(resp.status(), 200, "{}", via.name());
        let resp = via
            .get("/api/v1/system/backup/x/download")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.bytes().await.unwrap().len(), full, "{}", via.name());
    }
    assert!(metric(&stack, "argus_relay_upstream_errors_total{kind=\"cut\"}").await >= 2.0);
    agent_alive(&mut stack);
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_over_the_cap_get_a_json_413() {
    let (mut stack, device) = small_limits_stack(true).await;
    for via in stack.vias(&device) {
        stack.backend.clear_requests();
        // Declared too large: refused before a byte is read or the backend is contacted.
        let resp = via
            .upload(reqwest::Method::POST, "/api/v1/system/restore")
            .header("content-type", "application/zip")
            .body(vec![1u8; 2 * MIB])
            .send()
            .await
            .unwrap();
        let (status, body) = Phone::json(resp).await;
        assert_json_error(via.name(), status, &body, 413, "payload_too_large");
        assert_eq!(
            stack
                .backend
                .count(|r| r.path() == "/api/v1/system/restore"),
            0
        );

        // Chunked, no length: cut where it passes the cap, answered 413.
        let chunks =
            (0..32).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![2u8; 64 * 1024])));
        let resp = via
            .upload(reqwest::Method::POST, "/api/v1/system/restore")
            .header("content-type", "application/zip")
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            )))
            .send()
            .await
            .unwrap();
        let (status, body) = Phone::json(resp).await;
        assert_json_error(via.name(), status, &body, 413, "payload_too_large");

        // Under the cap it goes through.
        let resp = via
            .upload(reqwest::Method::POST, "/api/v1/system/restore")
            .body(vec![3u8; MIB])
            .send()
            .await
            .unwrap();
        let (status, body) = Phone::json(resp).await;
        assert_eq!(status, 200, "{}: {body}", via.name());
        assert_eq!(body["received"], MIB as u64);
    }
    agent_alive(&mut stack);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_that_stalls_is_cut_after_the_idle_timeout() {
    let (mut stack, device) = small_limits_stack(false).await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(1);
    tx.send(Ok(bytes::Bytes::from(vec![1u8; 64 * 1024])))
        .await
        .unwrap();
    let body = reqwest::Body::wrap_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|c| (c, rx))
    }));
    let started = Instant::now();
    let resp = stack
        .tunnel()
        .with_device(&device)
        .streamed(reqwest::Method::POST, "/api/v1/system/restore")
        .body(body)
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    let (status, body) = Phone::json(resp).await;
    assert_json_error("direct", status, &body, 400, "bad_request");
    // idle_timeout_secs = 3
    assert!(
        took >= Duration::from_millis(2800) && took < Duration::from_secs(6),
        "{took:?}"
    );
    drop(tx);
    agent_alive(&mut stack);
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_headers_get_431() {
    let (mut stack, device) = small_limits_stack(true).await;
    let big = "x".repeat(20 * 1024);
    for via in stack.vias(&device) {
        let (status, text) = via
            .raw("GET", "/api/v1/events?limit=1", &[("X-Padding", &big)])
            .await;
        assert_eq!(
            status,
            431,
            "{}: {}",
            via.name(),
            &text[..text.len().min(300)]
        );
        // And the next request is served.
        let resp = via.get("/api/v1/events?limit=1").send().await.unwrap();
        assert_eq!(resp.status(), 200, "{}", via.name());
    }
    agent_alive(&mut stack);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_backend_down_the_agent_answers_a_json_502_at_once() {
    let stack = Stack::start_with(StackOptions {
        backend_url: Some(format!("http://127.0.0.1:{}", free_port())),
        ..StackOptions::default()
    })
    .await;
    let device = stack.pair_phone("viewer").await;
    for via in stack.vias(&device) {
        let started = Instant::now();
        let (status, body) =
            Phone::json(via.get("/api/v1/events?limit=1").send().await.unwrap()).await;
        let took = started.elapsed();
        assert_json_error(via.name(), status, &body, 502, "bad_gateway");
        assert!(took < Duration::from_secs(1), "{}: {took:?}", via.name());
        assert!(!body.to_string().contains("127.0.0.1"), "{body}");
    }
}

/// Reads until the peer closes (or `limit` passes); returns when it closed, if it did.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((started + limit).into(), s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slowloris_head_is_cut_after_the_header_read_timeout() {
    let (mut stack, _device) = small_limits_stack(false).await;
    let addr = stack.agent.tunnel_addr();
    let mut s = TcpStream::connect(addr).await.unwrap();
    // One header byte every 200 ms: the head never ends.
    s.write_all(b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let writer = tokio::spawn(async move {
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if s.write_all(b"a").await.is_err() {
                return Some(());
            }
        }
        None
    });
    let cut = writer.await.unwrap();
    assert!(cut.is_some(), "the slow head was never cut");
    assert!(
        metric(
            &stack,
            "argus_relay_connections_timed_out_total{listener=\"tunnel\",kind=\"header_read\"}"
        )
        .await
            >= 1.0
    );

    // Measured: a connection that sends half a head, then nothing, is closed after ~1 s.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /api/v1/events HTTP/1.1\r\nHost")
        .await
        .unwrap();
    let closed = closed_within(&mut s, Duration::from_secs(5)).await;
    let closed = closed.expect("closed");
    assert!(
        closed >= Duration::from_millis(900) && closed < Duration::from_millis(2500),
        "{closed:?}"
    );
    agent_alive(&mut stack);
}

/// A signed keep-alive GET, as raw bytes.
fn signed_get(t: &e2e::signer::Tunnel, target: &str) -> String {
    let mut head = format!("GET {target} HTTP/1.1\r\nHost: agent");
    for (k, v) in t.headers(
        "GET",
        target,
        argus_shared::signature::BodyBinding::of_bytes(b""),
    ) {
        head.push_str(&format!("\r\n{k}: {v}"));
    }
    head.push_str("\r\n\r\n");
    head
}

/// Reads one response with a `Content-Length` body; returns its status line.
async fn read_response(s: &mut TcpStream) -> String {
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = Vec::new();
    loop {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed early");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .and_then(|v| v.trim().parse().ok())
                })
                .unwrap_or(0);
            if body.len() >= len {
                return head.lines().next().unwrap_or("").to_owned();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_keep_alive_connections_live_for_the_idle_timeout_not_the_header_timeout() {
    let (mut stack, device) = small_limits_stack(false).await;
    let tunnel = stack.tunnel().with_device(&device);
    let addr = stack.agent.tunnel_addr();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(signed_get(&tunnel, "/api/v1/events?limit=1").as_bytes())
        .await
        .unwrap();
    assert!(read_response(&mut s).await.contains(" 200 "));
    // Idle for 2 s — longer than the 1 s header timeout, shorter than the 3 s idle timeout.
    tokio::time::sleep(Duration::from_secs(2)).await;
    s.write_all(signed_get(&tunnel, "/api/v1/events?limit=1").as_bytes())
        .await
        .unwrap();
    assert!(
        read_response(&mut s).await.contains(" 200 "),
        "reused after 2 s idle"
    );
    // Then left idle: closed after ~3 s.
    let closed = closed_within(&mut s, Duration::from_secs(8))
        .await
        .expect("closed");
    assert!(
        closed >= Duration::from_millis(2800) && closed < Duration::from_millis(4500),
        "{closed:?}"
    );
    assert!(
        metric(
            &stack,
            "argus_relay_connections_timed_out_total{listener=\"tunnel\",kind=\"idle\"}"
        )
        .await
            >= 1.0
    );
    agent_alive(&mut stack);
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_past_the_cap_are_closed_at_once() {
    // A long header timeout, so the held connections stay until the test lets them go.
    let mut stack = Stack::start_with(StackOptions {
        agent_toml: Some("[limits]\nmax_connections = 6\nheader_read_timeout_secs = 60\n".into()),
        without_worker: true,
        ..StackOptions::default()
    })
    .await;
    let device = stack.pair_phone_direct("viewer").await;
    let addr = stack.agent.tunnel_addr();
    // max_connections = 6: hold six open, each proven accepted by a finished request.
    let tunnel = stack.tunnel().with_device(&device);
    let mut held = Vec::new();
    for _ in 0..6 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let target = "/api/v1/events?limit=1";
        let mut head = format!("GET {target} HTTP/1.1\r\nhost: agent");
        for (k, v) in tunnel.headers("GET", target, BodyBinding::of_bytes(b"")) {
            head.push_str(&format!("\r\n{k}: {v}"));
        }
        head.push_str("\r\n\r\n");
        s.write_all(head.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let n = s.read(&mut buf).await.unwrap();
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&buf[..n])
        );
        held.push(s);
    }
    let mut extra = TcpStream::connect(addr).await.unwrap();
    let closed = closed_within(&mut extra, Duration::from_secs(5)).await;
    assert!(closed.is_some(), "the 7th connection was kept");
    assert!(
        metric(
            &stack,
            "argus_relay_connections_rejected_total{listener=\"tunnel\"}"
        )
        .await
            >= 1.0
    );
    // Freeing one lets the next in (once the agent has seen it close).
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // The tunnel client has no pooled connection yet: each try opens a new one.
        let sent = tunnel
            .request(reqwest::Method::GET, "/api/v1/events?limit=1")
            .send()
            .await;
        match sent {
            Ok(resp) => {
                assert_eq!(resp.status(), 200);
                break;
            }
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no slot freed within 5 s: {e}"),
        }
    }
    drop(held);
    agent_alive(&mut stack);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_the_in_flight_request_finish() {
    let mut stack = Stack::start_with(StackOptions {
        without_worker: true,
        ..StackOptions::default()
    })
    .await;
    let device = stack.pair_phone_direct("viewer").await;
    let tunnel = stack.tunnel().with_device(&device);
    stack.backend.set_delay(Some(Duration::from_secs(2)));
    let in_flight = tokio::spawn(async move {
        let resp = tunnel.get("/api/v1/events?limit=2").await;
        let status = resp.status();
        (status, resp.json::<serde_json::Value>().await.ok())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = stack.agent.pid().expect("pid");
    // SAFETY: a plain syscall to our own child process.
    unsafe {
        libc::kill(pid as i32, libc::SIGTERM);
    }
    // No new connections once shutdown began …
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        TcpStream::connect(stack.agent.tunnel_addr()).await.is_err(),
        "the listener still accepts after SIGTERM"
    );
    // … but the request in flight completes.
    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, 200, "{}", stack.logs());
    assert_eq!(body.unwrap()["events"].as_array().map(Vec::len), Some(2));
    let exit = tokio::task::block_in_place(|| {
        stack
            .agent
            .process_mut()
            .expect("agent process")
            .terminate(Duration::from_secs(10))
    });
    assert!(
        exit.is_some_and(|s| s.success()),
        "{exit:?}\n{}",
        stack.logs()
    );
    let logs = stack.agent.output();
    assert!(logs.contains("drained"), "{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn at_most_max_concurrent_requests_reach_argusai_at_once() {
    let stack = Stack::start_with(StackOptions {
        without_worker: true,
        agent_toml: Some("[backend]\nmax_concurrent_requests = 2\n".into()),
        ..StackOptions::default()
    })
    .await;
    let device = stack.pair_phone_direct("viewer").await;
    let tunnel = stack.tunnel().with_device(&device);
    stack.backend.set_delay(Some(Duration::from_millis(800)));
    let started = Instant::now();
    let requests: Vec<_> = (0..4)
        .map(|i| {
            let t = tunnel.clone();
            tokio::spawn(async move {
                t.get(&format!("/api/v1/events?limit={}", i + 1))
                    .await
                    .status()
            })
        })
        .collect();
    for r in requests {
        assert_eq!(r.await.unwrap(), 200);
    }
    // Four 0.8 s answers, two at a time: two waves.
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(4),
        "{took:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_the_phone_aborts_is_logged_with_its_cause() {
    let stack = Stack::start_with(StackOptions {
        policy: Some(policy_with_system_paths(&[])),
        ..StackOptions::default()
    })
    .await;
    let device = stack.pair_phone("owner").await;
    let phone = stack.phone().with_token(&device.access_token);
    // A signed-size body (declared ≤ 1 MiB: the Worker reads it whole to sign its digest), of
    // which the phone sends a tenth before it gives up.
    let addr = phone
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut s = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/v1/system/restore HTTP/1.1\r\nHost: {addr}\r\nmf-cf-blob: {}\r\n\
         authorization: Bearer {}\r\ncontent-type: application/octet-stream\r\n\
         content-length: 100000\r\n\r\n",
        phone.cf, device.access_token
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&[7u8; 10_000]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(s);

    let worker = stack.worker.as_ref().expect("a Worker");
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let out = worker.output();
        if let Some(line) = out
            .lines()
            .find(|l| l.contains("the request body did not arrive in full"))
        {
            break line.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no log line names the aborted upload:\n{}",
            stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("the Worker logged: {line}");
    // `request <id>: the request body did not arrive in full: <the runtime's reason>`.
    let (_, after) = line.split_once("request ").expect("the request id");
    let (id, cause) = after
        .split_once(": the request body did not arrive in full: ")
        .expect("a cause after the message");
    assert!(!id.is_empty() && !id.contains(' '), "{line}");
    assert!(!cause.trim().is_empty(), "{line}");
    assert!(
        !worker.output().contains("internal error (None)"),
        "{}",
        stack.logs()
    );
    // Nothing of it reached ArgusAI.
    assert!(stack
        .backend
        .requests()
        .iter()
        .all(|r| r.path() != "/api/v1/system/restore"));
}
