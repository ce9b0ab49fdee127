//! User story (local network fallback): at home the phone goes straight to the agent over HTTPS
//! with the pinned certificate, found by mDNS; elsewhere, or when something else answers on the
//! LAN, it uses the relay (the Worker under workerd). "Home" is decided by cryptographic
//! identity, never by the network's name.
//!
//! "The phone" is the reference client (`argus_client`, and `argus-relay client` on the
//! command line). Everything stays on loopback: listeners on 127.0.0.1, mDNS on `lo` only and on
//! a private port per test (see `e2e::lan`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use argus_client::http::lan_client;
use argus_client::pin::{pinned_tls_config, Pin};
use argus_client::verify::LanRejected;
use argus_client::{ClientState, Route, Session, SessionOptions};
use e2e::agent::Agent;
use e2e::lan::{
    agent_certificate, browse, lan_section, mdns_port, pair_link, pair_through_relay, pinned_tls,
    session_options, Impostor, ImpostorCert, LOOPBACK_IF,
};
use e2e::phone::exchange_raw;
use e2e::stack::{eventually, Stack, StackOptions};
use serde_json::Value;

/// Every test finishes within this, or fails.
const TEST_LIMIT: Duration = Duration::from_secs(180);

fn run(name: &str, body: impl std::future::Future<Output = ()>) {
    e2e::lan::run_isolated_test(name, TEST_LIMIT, body)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn lan_stack(mdns: u16) -> Stack {
    Stack::start_with(StackOptions {
        agent_toml: Some(lan_section(mdns, "ArgusAI test home")),
        ..StackOptions::default()
    })
    .await
}

/// The agent's own health answer (through the Worker).
async fn health(stack: &Stack) -> Value {
    let (status, body) = stack.phone().get_json("/api/v1/health").await;
    assert_eq!(status, 200, "{body}");
    body
}

/// A request written byte for byte over pinned TLS (HTTP clients normalise `%2e%2e`).
async fn raw_lan(addr: SocketAddr, pin: Pin, head: &str) -> (u16, String) {
    raw_lan_with_body(addr, pin, head, "").await
}

/// Like [`raw_lan`], with a body (its `Content-Length` is added).
async fn raw_lan_with_body(addr: SocketAddr, pin: Pin, head: &str, body: &str) -> (u16, String) {
    let length = if body.is_empty() {
        String::new()
    } else {
        format!("\r\nContent-Length: {}", body.len())
    };
    let request = format!("{head}\r\nHost: {addr}\r\nConnection: close{length}\r\n\r\n{body}");
    exchange_raw(pinned_tls(addr, pin).await, &request).await
}

/// A TLS connection to the agent's LAN listener, its certificate checked against `pin`.
fn body_of(raw: &str) -> Value {
    let body = raw.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str(body).unwrap_or(Value::Null)
}

/// How many request log lines the agent wrote for `path` on `listener`, once it has written
/// `want` (or after 3 s). A line is written when the answer's body is done, which can be just
/// after the phone has read it all.
async fn logged(stack: &Stack, listener: &str, path: &str, want: usize) -> usize {
    eventually(Duration::from_secs(3), || async {
        (stack.agent.saw(listener, path) >= want).then_some(())
    })
    .await;
    stack.agent.saw(listener, path)
}

#[test]
fn at_home_the_phone_goes_straight_to_the_agent() {
    run("at_home_the_phone_goes_straight_to_the_agent", async {
        let mdns = mdns_port();
        let stack = lan_stack(mdns).await;
        let lan = stack
            .agent
            .lan_addr()
            .expect("the agent runs its LAN listener");
        let identity = health(&stack).await;

        // Paired through the relay, the phone knows the pin and the instance.
        let state = pair_through_relay(&stack, "owner").await;
        assert_eq!(state.fingerprint, identity["fingerprint"]);
        assert_eq!(state.instance_id, identity["instance_id"]);

        // mDNS finds the agent; the pin and the health identity check out: the LAN is used.
        let session = Session::open(state.clone(), session_options(mdns)).unwrap();
        let started = Instant::now();
        assert_eq!(session.resolve().await, Route::Lan(lan), "{}", stack.logs());
        let resolve_took = started.elapsed();

        let before = stack.agent.saw("lan", "/api/v1/events");
        let mut lan_times = Vec::new();
        for _ in 0..10 {
            let resp = session.get("/api/v1/events?limit=1").await.unwrap();
            assert_eq!((resp.route, resp.status), (Route::Lan(lan), 200));
            lan_times.push(resp.elapsed);
        }
        assert_eq!(
            logged(&stack, "lan", "/api/v1/events", before + 10).await - before,
            10
        );

        // Tokens rotate at home too.
        let old_refresh = session.state().await.refresh_token;
        session.refresh().await.unwrap();
        assert_eq!(
            logged(&stack, "lan", "/api/v1/mobile/auth/refresh", 1).await,
            1
        );
        assert_ne!(session.state().await.refresh_token, old_refresh);
        let resp = session.get("/api/v1/events?limit=1").await.unwrap();
        assert_eq!((resp.route, resp.status), (Route::Lan(lan), 200));

        // The same phone without discovery goes through the relay.
        let away = Session::open(
            ClientState {
                last_lan: None,
                ..state.clone()
            },
            SessionOptions {
                browse: None,
                ..session_options(mdns)
            },
        )
        .unwrap();
        assert_eq!(away.resolve().await, Route::Relay);
        let mut relay_times = Vec::new();
        for _ in 0..10 {
            let resp = away.get("/api/v1/events?limit=1").await.unwrap();
            assert_eq!(
                (resp.route, resp.status),
                (Route::Relay, 200),
                "{:?}",
                resp.json()
            );
            relay_times.push(resp.elapsed);
        }
        eprintln!(
            "LAN chosen in {resolve_took:?}; GET /api/v1/events median: LAN {:?}, relay {:?}",
            median(lan_times),
            median(relay_times)
        );

        // The command-line client chooses the LAN too.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("phone.json");
        state.save(&file).unwrap();
        let port = mdns.to_string();
        let file_s = file.to_string_lossy();
        let out: Value = serde_json::from_str(
            &e2e::agent::run_cli(
                &[
                    "client",
                    "route",
                    "--state",
                    &file_s,
                    "--mdns-interface",
                    LOOPBACK_IF,
                    "--mdns-port",
                    &port,
                ],
                &[],
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(out["route"], "lan", "{out}");
        assert_eq!(out["address"], lan.to_string(), "{out}");
    });
}

#[test]
fn the_lan_listener_has_the_same_gate_as_the_relay() {
    run("the_lan_listener_has_the_same_gate_as_the_relay", async {
        let mdns = mdns_port();
        let stack = lan_stack(mdns).await;
        let lan = stack.agent.lan_addr().unwrap();
        let state = pair_through_relay(&stack, "viewer").await;
        let pin = state.pin().unwrap();
        let http = lan_client(pin, Duration::from_secs(2)).unwrap();
        let url = |p: &str| format!("https://{lan}{p}");

        // No token, a bad token: refused like at the edge.
        let resp = http.get(url("/api/v1/events")).send().await.unwrap();
        assert_eq!(resp.status(), 401);
        assert!(resp.headers().contains_key("www-authenticate"));
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthenticated", "{body}");
        let resp = http
            .get(url("/api/v1/events"))
            .bearer_auth("not.a.token")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);

        // With a token: served. A viewer may not write, even at home.
        let ok = http
            .get(url("/api/v1/events?limit=1"))
            .bearer_auth(&state.access_token)
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        let resp = http
            .delete(url("/api/v1/events/1"))
            .bearer_auth(&state.access_token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403);

        // Never-served routes and the tunnel-only edge-state document stay closed.
        for path in [
            "/docs",
            "/openapi.json",
            "/api/v1/system/tunnel/status",
            "/relay/v1/edge-state",
        ] {
            let resp = http
                .get(url(path))
                .bearer_auth(&state.access_token)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 404, "{path}");
        }

        // What the default policy keeps from phones stays closed at home too (the agent has no
        // copy of the Worker's POLICY: the built-in path rules apply on the LAN).
        for path in [
            "/api/v1/system/settings",
            "/api/v1/logs",
            "/api/v1/integrations/mqtt/config",
        ] {
            let resp = http
                .get(url(path))
                .bearer_auth(&state.access_token)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 403, "{path}");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"]["code"], "forbidden", "{body}");
            assert_eq!(body["error"]["reason"], "path.denied", "{body}");
        }

        // ArgusAI's database leak: the dot segments are resolved as the Worker's runtime
        // resolves them, and `/api/v1/app.db` is not a path a phone may reach.
        let (status, raw) = raw_lan(
            lan,
            pin,
            &format!(
                "GET /api/v1/thumbnails/%2e%2e/app.db HTTP/1.1\r\nAuthorization: Bearer {}",
                state.access_token
            ),
        )
        .await;
        assert_eq!(status, 403, "{raw}");
        assert_eq!(body_of(&raw)["error"]["code"], "forbidden", "{raw}");
        // An encoded slash survives the URL standard and is refused before routing.
        let (status, raw) =
            raw_lan(lan, pin, "GET /api/v1/thumbnails/a%2f..%2fapp.db HTTP/1.1").await;
        assert_eq!(status, 400, "{raw}");
        assert_eq!(
            body_of(&raw)["error"]["code"],
            "non_canonical_path",
            "{raw}"
        );

        // The backend saw the agent's credential and one X-Forwarded-For: the peer's address.
        let events: Vec<_> = stack
            .backend
            .requests()
            .into_iter()
            .filter(|r| r.path() == "/api/v1/events")
            .collect();
        let last = events.last().expect("the backend saw the LAN request");
        assert_eq!(last.header_all("x-forwarded-for"), vec!["127.0.0.1"]);
        // Its only Authorization is the agent's own ArgusAI session, never the phone's token.
        let auth = last.header_all("authorization");
        assert_eq!(auth.len(), 1, "{auth:?}");
        assert_eq!(
            stack.backend.user_of_authorization(auth[0]).as_deref(),
            Some(e2e::backend::DEFAULT_ADMIN_USERNAME)
        );
        assert!(!auth[0].contains(&state.access_token));
    });
}

/// A pinned TLS connection to `addr` from the loopback address `source` (on Linux every
/// 127.0.0.0/8 address is this machine, and the agent sees each as a different peer).
async fn pinned_tls_from(
    source: std::net::IpAddr,
    addr: SocketAddr,
    pin: Pin,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(pinned_tls_config(pin).unwrap()));
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    let tcp = socket.connect(addr).await?;
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    connector.connect(name, tcp).await
}

#[test]
fn a_phone_is_served_while_another_host_holds_idle_handshakes() {
    run(
        "a_phone_is_served_while_another_host_holds_idle_handshakes",
        async {
            use tokio::io::AsyncReadExt;
            let mdns = mdns_port();
            // Ten slots on the LAN listener, four per host, two seconds to send a request.
            let stack = Stack::start_with(StackOptions {
                agent_toml: Some(format!(
                    "{}max_connections_per_peer = 4\n[limits]\nmax_connections = 10\n\
                     header_read_timeout_secs = 2\n",
                    lan_section(mdns, "ArgusAI test home")
                )),
                without_worker: true,
                ..StackOptions::default()
            })
            .await;
            let lan = stack.agent.lan_addr().unwrap();
            let pin = Pin::of_certificate(agent_certificate(&stack).as_ref());
            let phone_token = stack.pair_phone_direct("viewer").await.access_token;

            // Another host on the network completes TLS handshakes and sends nothing.
            let other_host: std::net::IpAddr = "127.0.0.2".parse().unwrap();
            let mut held = Vec::new();
            let mut refused = 0;
            for _ in 0..12 {
                match pinned_tls_from(other_host, lan, pin).await {
                    Ok(tls) => held.push((tls, Instant::now())),
                    Err(_) => refused += 1,
                }
            }
            assert_eq!(
                (held.len(), refused),
                (4, 8),
                "one host gets four connections"
            );

            // A phone is served meanwhile.
            let phone = lan_client(pin, Duration::from_secs(5)).unwrap();
            let resp = phone
                .get(format!("https://{lan}/api/v1/events?limit=1"))
                .bearer_auth(&phone_token)
                .send()
                .await
                .expect("the phone reaches the LAN listener");
            assert_eq!(resp.status(), 200);

            // The idle handshakes are cut after the header timeout, not the keep-alive one.
            for (mut tls, opened) in held {
                let mut buf = [0u8; 64];
                let read = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf)).await;
                let after = opened.elapsed();
                assert!(
                    matches!(read, Ok(Ok(0) | Err(_))),
                    "an idle connection was kept for {after:?}"
                );
                assert!(after < Duration::from_secs(5), "cut after {after:?}");
            }
            // And the host may connect again.
            assert!(pinned_tls_from(other_host, lan, pin).await.is_ok());
        },
    );
}

/// A request line, extra headers, and the status, `error.code` and `error.reason` expected.
type Case<'a> = (&'a str, &'a str, (u16, &'a str, Option<&'a str>));

/// Status, `error.code` and `error.reason` of a raw answer.
fn verdict(status: u16, raw: &str) -> (u16, Value, Value) {
    let body = body_of(raw);
    (
        status,
        body["error"]["code"].clone(),
        body["error"]["reason"].clone(),
    )
}

#[test]
fn the_lan_and_the_relay_answer_alike_and_check_in_the_same_order() {
    run(
        "the_lan_and_the_relay_answer_alike_and_check_in_the_same_order",
        async {
            let mdns = mdns_port();
            let stack = lan_stack(mdns).await;
            let lan = stack.agent.lan_addr().unwrap();
            let state = pair_through_relay(&stack, "viewer").await;
            let pin = state.pin().unwrap();
            let bearer = format!("\r\nAuthorization: Bearer {}", state.access_token);

            // (request line, extra headers, what both must answer)
            let cases: [Case; 7] = [
                // workerd resolves `%2e%2e` before the Worker sees it; the LAN resolves it the
                // same way, then both check a token before the policy's path rules.
                (
                    "GET /api/v1/thumbnails/%2e%2e/app.db HTTP/1.1",
                    "",
                    (401, "unauthenticated", None),
                ),
                (
                    "GET /api/v1/thumbnails/%2e%2e/app.db HTTP/1.1",
                    &bearer,
                    (403, "forbidden", Some("path.not_allowed")),
                ),
                // A denied path tells a caller without a token nothing about the rules.
                (
                    "GET /api/v1/logs HTTP/1.1",
                    "",
                    (401, "unauthenticated", None),
                ),
                (
                    "GET /api/v1/logs HTTP/1.1",
                    &bearer,
                    (403, "forbidden", Some("path.denied")),
                ),
                // The canonical form comes first everywhere: it is public and fixed.
                (
                    "GET /api/v1/thumbnails/a%2f..%2fapp.db HTTP/1.1",
                    "",
                    (400, "non_canonical_path", Some("encoded_slash")),
                ),
                // So does the route table, methods included.
                (
                    "GET /docs HTTP/1.1",
                    "",
                    (404, "not_found", Some("route.docs")),
                ),
                (
                    "PROPFIND /api/v1/events HTTP/1.1",
                    &bearer,
                    (405, "method_not_allowed", None),
                ),
            ];
            for (line, headers, (status, code, reason)) in cases {
                let head = format!("{line}{headers}");
                let (ws, wraw) = e2e::phone::send_raw(&stack.edge_url(), &head).await;
                let (ls, lraw) = raw_lan(lan, pin, &head).await;
                let want = (
                    status,
                    Value::from(code),
                    reason.map_or(Value::Null, Value::from),
                );
                assert_eq!(verdict(ws, &wraw), want, "relay, {head}\n{wraw}");
                assert_eq!(verdict(ls, &lraw), want, "LAN, {head}\n{lraw}");
            }
            // Nothing of it reached ArgusAI.
            assert!(
                stack
                    .backend
                    .requests()
                    .iter()
                    .all(|r| !r.path().contains("app.db") && r.path() != "/api/v1/logs"),
                "{:?}",
                stack
                    .backend
                    .requests()
                    .iter()
                    .map(|r| r.path())
                    .collect::<Vec<_>>()
            );
        },
    );
}

/// Width and height from a JPEG's frame header.
fn jpeg_size(bytes: &[u8]) -> (u32, u32) {
    match argus_shared::image::probe(bytes) {
        argus_shared::image::Probe::Jpeg(f) => (f.width, f.height),
        other => panic!("not a JPEG: {other:?}"),
    }
}

#[test]
fn at_home_pictures_are_transcoded_as_through_the_relay() {
    run(
        "at_home_pictures_are_transcoded_as_through_the_relay",
        async {
            let mdns = mdns_port();
            let stack = lan_stack(mdns).await;
            let lan = stack.agent.lan_addr().unwrap();
            let device = pair_through_relay(&stack, "viewer").await;
            let http = lan_client(device.pin().unwrap(), Duration::from_secs(10)).unwrap();
            let name = "cups-1920x1080.jpg";
            let path = format!("/api/v1/thumbnails/{}/{name}", e2e::backend::PHOTO_DATE);
            let original = stack.backend.photo_bytes(name).expect("the test photo");
            let get = |target: String, headers: Vec<(&'static str, String)>| {
                let mut rb = http
                    .get(format!("https://{lan}{target}"))
                    .bearer_auth(&device.access_token);
                for (k, v) in headers {
                    rb = rb.header(k, v);
                }
                async move {
                    let resp = rb.send().await.expect("sent");
                    let status = resp.status().as_u16();
                    let h = resp.headers().clone();
                    let header = move |n: &str| {
                        h.get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    let body = resp.bytes().await.expect("body").to_vec();
                    (status, header, body)
                }
            };
            let jpeg = || vec![("accept", "image/jpeg".to_owned())];
            let mobile = format!("{path}?quality=mobile");

            // `?quality=mobile`: a 480×270 JPEG, much smaller than the original.
            let (status, header, body) = get(mobile.clone(), jpeg()).await;
            assert_eq!(status, 200, "{}", stack.logs());
            assert_eq!(header("content-type"), "image/jpeg");
            assert_eq!(jpeg_size(&body), (480, 270));
            assert!(body.len() < original.len() / 4, "{} bytes", body.len());
            assert_eq!(
                header("x-relay-image"),
                "transcoded; variant=mobile; format=jpeg; from=1920x1080; to=480x270"
            );
            assert_eq!(header("x-relay-cache"), "miss");
            assert_eq!(header("vary"), "Accept");
            assert!(header("cache-control").starts_with("private, max-age="));
            let etag = header("etag");
            assert!(etag.starts_with("\"r1-"), "{etag}");
            assert!(!header("last-modified").is_empty());
            eprintln!(
                "LAN mobile: {} bytes -> {} bytes",
                original.len(),
                body.len()
            );
            // Through the relay: the same bytes, so the same ETag, whichever way the phone came.
            let relay = stack
                .phone()
                .with_token(&device.access_token)
                .request(reqwest::Method::GET, &mobile)
                .header("accept", "image/jpeg")
                .send()
                .await
                .unwrap();
            assert_eq!(relay.status(), 200);
            assert_eq!(
                relay.headers().get("etag").and_then(|v| v.to_str().ok()),
                Some(etag.as_str())
            );
            assert_eq!(relay.bytes().await.unwrap().to_vec(), body);
            // The relay's parameter is not the backend's.
            let fetched = || {
                stack
                    .backend
                    .requests()
                    .into_iter()
                    .filter(|r| r.path() == path)
                    .map(|r| r.target)
                    .collect::<Vec<_>>()
            };
            assert_eq!(fetched(), vec![path.clone(), path.clone()]);

            // Again: from the agent's memory, the same bytes; the phone's cache revalidates.
            let (status, header, again) = get(mobile.clone(), jpeg()).await;
            assert_eq!((status, header("x-relay-cache").as_str()), (200, "hit"));
            assert_eq!(again, body);
            assert_eq!(fetched().len(), 2);
            let mut conditional = jpeg();
            conditional.push(("if-none-match", etag.clone()));
            let (status, _, empty) = get(mobile.clone(), conditional).await;
            assert_eq!(status, 304);
            assert!(empty.is_empty());

            // A client that names WebP gets WebP of the same size.
            let (status, header, webp) = get(
                mobile.clone(),
                vec![("accept", "image/webp,image/*".to_owned())],
            )
            .await;
            assert_eq!(status, 200);
            assert_eq!(header("content-type"), "image/webp");
            assert_eq!(&webp[8..12], b"WEBP");
            let mut d = image_webp::WebPDecoder::new(std::io::Cursor::new(&webp)).unwrap();
            assert_eq!(d.dimensions(), (480, 270));
            let mut px = vec![0; d.output_buffer_size().unwrap()];
            d.read_image(&mut px).expect("the WebP decodes");

            // No quality: the original, untouched.
            let (status, header, body) = get(path.clone(), jpeg()).await;
            assert_eq!(status, 200);
            assert_eq!(body, original);
            assert_eq!(header("x-relay-image"), "passthrough; reason=original");

            // A quality the relay does not know: the Worker's 400.
            let (status, _, body) = get(format!("{path}?quality=huge"), jpeg()).await;
            assert_eq!(status, 400);
            let body: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["error"]["reason"], "image.quality_invalid", "{body}");
        },
    );
}

#[test]
fn without_a_verified_lan_server_the_phone_uses_the_relay() {
    run(
        "without_a_verified_lan_server_the_phone_uses_the_relay",
        async {
            let mdns = mdns_port();
            // The agent's LAN listener is off: nothing of ours on the LAN.
            let stack = Stack::start().await;
            let identity = health(&stack).await;
            let state = pair_through_relay(&stack, "viewer").await;

            // Nothing answers: the relay after the discovery window.
            let session = Session::open(state.clone(), session_options(mdns)).unwrap();
            let started = Instant::now();
            assert_eq!(session.resolve().await, Route::Relay);
            let nothing_took = started.elapsed();
            let resp = session.get("/api/v1/events?limit=1").await.unwrap();
            assert_eq!((resp.route, resp.status), (Route::Relay, 200));
            drop(session);

            // A remembered LAN address that no longer answers costs one refused connection.
            let closed: SocketAddr = format!("127.0.0.1:{}", e2e::process::free_port())
                .parse()
                .unwrap();
            let no_mdns = SessionOptions {
                browse: None,
                ..session_options(mdns)
            };
            let session = Session::open(
                ClientState {
                    last_lan: Some(closed),
                    ..state.clone()
                },
                no_mdns.clone(),
            )
            .unwrap();
            let started = Instant::now();
            assert_eq!(session.resolve().await, Route::Relay);
            let stale_took = started.elapsed();
            assert!(matches!(
                session.rejections().as_slice(),
                [(a, LanRejected::Unreachable(_))] if *a == closed
            ));
            drop(session);

            // An impostor advertises the service with the agent's fingerprint in TXT and answers
            // health with the agent's identity — but has its own certificate.
            let impostor = Impostor::start(ImpostorCert::Own, identity.clone(), mdns).await;
            let session = Session::open(state.clone(), session_options(mdns)).unwrap();
            let started = Instant::now();
            assert_eq!(session.resolve().await, Route::Relay);
            let impostor_took = started.elapsed();
            assert!(
                session
                    .rejections()
                    .iter()
                    .any(|(a, why)| *a == impostor.addr && *why == LanRejected::WrongCertificate),
                "{:?}",
                session.rejections()
            );
            let resp = session.get("/api/v1/events?limit=1").await.unwrap();
            assert_eq!((resp.route, resp.status), (Route::Relay, 200));
            drop(session);
            impostor.stop().await;

            // The impostor copies the agent's (public) certificate but cannot sign with its key.
            let mdns2 = mdns_port();
            let impostor = Impostor::start(
                ImpostorCert::Copied(agent_certificate(&stack)),
                identity.clone(),
                mdns2,
            )
            .await;
            let session = Session::open(state.clone(), session_options(mdns2)).unwrap();
            assert_eq!(session.resolve().await, Route::Relay);
            assert!(
                session
                    .rejections()
                    .iter()
                    .any(|(a, why)| *a == impostor.addr && matches!(why, LanRejected::Tls(_))),
                "{:?}",
                session.rejections()
            );
            impostor.stop().await;

            eprintln!(
            "fell back to the relay: nothing on the LAN {nothing_took:?} (discovery window {:?}); \
             stale LAN address {stale_took:?}; impostor {impostor_took:?}",
            session_options(mdns).discovery_timeout
        );
        },
    );
}

/// The same server's LAN listener in a second process (same configuration and data directory,
/// so the same certificate, instance id and devices), so it can go away while the relay path —
/// the Stack's agent — stays up: as when the phone leaves home.
fn start_lan_process(stack: &Stack) -> Agent {
    Agent::start_with_args(
        stack.agent.config_path(),
        Vec::new(),
        vec!["--lan-listen".into(), "127.0.0.1:0".into()],
    )
    .unwrap_or_else(|e| panic!("LAN process: {e}"))
}

async fn wait_route(
    rx: &mut tokio::sync::watch::Receiver<Route>,
    want: impl Fn(&Route) -> bool,
    within: Duration,
) -> Route {
    tokio::time::timeout(within, rx.wait_for(|r| want(r)))
        .await
        .expect("route change in time")
        .map(|r| *r)
        .expect("session alive")
}

#[test]
fn the_phone_follows_the_lan_as_it_comes_and_goes() {
    run("the_phone_follows_the_lan_as_it_comes_and_goes", async {
        let mdns = mdns_port();
        // The shared configuration describes mDNS; only the second process turns the LAN on.
        let section =
            lan_section(mdns, "ArgusAI test home").replace("enabled = true", "enabled = false");
        let stack = Stack::start_with(StackOptions {
            agent_toml: Some(section),
            ..StackOptions::default()
        })
        .await;
        assert_eq!(stack.agent.lan_addr(), None);
        let state = pair_through_relay(&stack, "viewer").await;
        let mut lan_agent = start_lan_process(&stack);
        let lan = lan_agent.lan_addr().unwrap();

        let session = Session::open(state, session_options(mdns)).unwrap();
        let mut route = session.watch_route();
        assert_eq!(
            session.resolve().await,
            Route::Lan(lan),
            "{}",
            lan_agent.output()
        );
        assert_eq!(
            session.get("/api/v1/events?limit=1").await.unwrap().route,
            Route::Lan(lan)
        );

        // The LAN listener stops (graceful: mDNS goodbye): the session moves to the relay by
        // itself, before any request fails.
        let stopped = Instant::now();
        lan_agent.terminate();
        wait_route(&mut route, |r| *r == Route::Relay, Duration::from_secs(10)).await;
        let goodbye_took = stopped.elapsed();
        let resp = session.get("/api/v1/events?limit=1").await.unwrap();
        assert_eq!((resp.route, resp.status), (Route::Relay, 200));

        // It comes back (on another port): the session finds it, verifies it, moves to it.
        let back = Instant::now();
        let mut lan_agent = start_lan_process(&stack);
        let lan2 = lan_agent.lan_addr().unwrap();
        let started_in = back.elapsed();
        wait_route(
            &mut route,
            |r| *r == Route::Lan(lan2),
            Duration::from_secs(15),
        )
        .await;
        let return_took = back.elapsed();
        let resp = session.get("/api/v1/events?limit=1").await.unwrap();
        assert_eq!((resp.route, resp.status), (Route::Lan(lan2), 200));

        // It dies without a goodbye: the next request fails on the LAN and is served by the
        // relay within the same call.
        lan_agent.stop();
        let started = Instant::now();
        let resp = session.get("/api/v1/events?limit=1").await.unwrap();
        let failover_took = started.elapsed();
        assert_eq!((resp.route, resp.status), (Route::Relay, 200));
        assert_eq!(session.route(), Route::Relay);

        eprintln!(
            "LAN gone (goodbye) → relay in {goodbye_took:?}; LAN back → used again {return_took:?} \
             after starting it (of which the agent's start {started_in:?}); \
             LAN dead without goodbye → request served by the relay in {failover_took:?}"
        );
    });
}

#[test]
fn mdns_advertises_the_lan_listener_and_withdraws_it() {
    run("mdns_advertises_the_lan_listener_and_withdraws_it", async {
        let mdns = mdns_port();
        let section = format!(
            "{}plain_http_listen = \"127.0.0.1:0\"\n",
            lan_section(mdns, "ArgusAI mdns test")
        );
        let mut stack = Stack::start_with(StackOptions {
            agent_toml: Some(section),
            without_worker: true,
            ..StackOptions::default()
        })
        .await;
        let lan = stack.agent.lan_addr().unwrap();
        let plain = stack.agent.lan_http_addr().expect("plain HTTP listener");

        // The plain listener: same gate (tokens required), identity readable.
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let resp = http
            .get(format!("http://{plain}/api/v1/events"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
        let identity: Value = http
            .get(format!("http://{plain}/api/v1/health"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();

        // A raw browser on lo sees the records.
        let daemon = mdns_sd::ServiceDaemon::new_with_port(mdns).unwrap();
        daemon.disable_interface(mdns_sd::IfKind::All).unwrap();
        daemon
            .enable_interface(mdns_sd::IfKind::Name(LOOPBACK_IF.into()))
            .unwrap();
        let events = daemon.browse("_argusai._tcp.local.").unwrap();
        let fullname = "ArgusAI mdns test._argusai._tcp.local.";
        let resolved = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Ok(mdns_sd::ServiceEvent::ServiceResolved(s)) = events.recv_async().await {
                    if s.get_fullname() == fullname {
                        return s;
                    }
                }
            }
        })
        .await
        .expect("the agent's service is resolved");
        let txt = |k: &str| resolved.get_property_val_str(k).map(str::to_owned);
        assert_eq!(txt("version").as_deref(), Some(env!("CARGO_PKG_VERSION")));
        assert_eq!(txt("api_port"), Some(lan.port().to_string()));
        assert_eq!(txt("ssl").as_deref(), Some("true"));
        assert_eq!(
            txt("fingerprint").as_deref(),
            identity["fingerprint"].as_str()
        );
        assert_eq!(txt("http_port"), Some(plain.port().to_string()));
        // The current ArgusAI app uses the SRV port with plain HTTP.
        assert_eq!(resolved.get_port(), plain.port());
        assert!(resolved
            .get_addresses()
            .iter()
            .any(|ip| ip.to_ip_addr() == lan.ip()));

        // The reference client's browser reads the same.
        let found = argus_client::browse::discover(&browse(mdns), Duration::from_secs(3))
            .await
            .unwrap();
        let ours = found
            .iter()
            .find(|c| c.fullname == fullname)
            .expect("found");
        assert_eq!(ours.addrs, vec![lan]);

        // Stopped gracefully, the agent withdraws the service.
        let stopped = Instant::now();
        stack.agent.terminate();
        let removed = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Ok(mdns_sd::ServiceEvent::ServiceRemoved(_, name)) =
                    events.recv_async().await
                {
                    if name == fullname {
                        return;
                    }
                }
            }
        })
        .await;
        assert!(removed.is_ok(), "no goodbye\n{}", stack.agent.output());
        eprintln!("withdrawn {:?} after SIGTERM", stopped.elapsed());
        let _ = daemon.shutdown();
    });
}

#[test]
fn a_phone_pairs_at_home_over_the_lan() {
    run("a_phone_pairs_at_home_over_the_lan", async {
        let mdns = mdns_port();
        let stack = lan_stack(mdns).await;
        let lan = stack.agent.lan_addr().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("phone.json");
        let file_s = file.to_string_lossy().into_owned();
        let port = mdns.to_string();
        let mdns_args = ["--mdns-interface", LOOPBACK_IF, "--mdns-port", &port];

        // The QR code's link, the LAN found by mDNS and verified by the pin in the link.
        let link = pair_link(&stack, "viewer");
        let edge = stack.edge_url();
        let mut args = vec![
            "client",
            "pair",
            "--state",
            &file_s,
            "--uri",
            &link,
            "--relay-url",
            &edge,
            "--lan",
            "--name",
            "Kitchen iPad",
        ];
        args.extend(mdns_args);
        let out: Value = serde_json::from_str(&e2e::agent::run_cli(&args, &[]).unwrap()).unwrap();
        assert_eq!(out["via"], "lan", "{out}\n{}", stack.logs());
        assert_eq!(stack.agent.saw("lan", "/api/v1/devices/pair"), 1);
        assert_eq!(stack.agent.saw("tunnel", "/api/v1/devices/pair"), 0);
        let state = ClientState::load(&file).unwrap();
        assert_eq!(state.last_lan, Some(lan));

        // The device works at home and through the relay.
        let mut args = vec!["client", "get", "--state", &file_s];
        args.extend(mdns_args);
        args.push("/api/v1/events?limit=1");
        let out: Value = serde_json::from_str(&e2e::agent::run_cli(&args, &[]).unwrap()).unwrap();
        assert_eq!(
            (&out["route"], &out["status"]),
            (&Value::from("lan"), &Value::from(200))
        );
        ClientState {
            last_lan: None,
            ..state.clone()
        }
        .save(&file)
        .unwrap();
        let out: Value = serde_json::from_str(
            &e2e::agent::run_cli(
                &[
                    "client",
                    "get",
                    "--state",
                    &file_s,
                    "--no-mdns",
                    "/api/v1/events?limit=1",
                ],
                &[],
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            (&out["route"], &out["status"]),
            (&Value::from("relay"), &Value::from(200))
        );

        // Guessing codes at home is limited per peer address, as through the relay.
        let http = lan_client(state.pin().unwrap(), Duration::from_secs(2)).unwrap();
        let mut statuses = Vec::new();
        for guess in ["AAAAAC", "AAAAAD", "AAAAAE", "AAAAAF", "AAAAAG", "AAAAAH"] {
            let resp = http
                .post(format!("https://{lan}/api/v1/devices/pair"))
                .json(&serde_json::json!({"code": guess, "device_info": {"name": "g"}}))
                .send()
                .await
                .unwrap();
            statuses.push(resp.status().as_u16());
        }
        assert_eq!(statuses, vec![404, 404, 404, 404, 404, 429]);
    });
}

#[test]
fn the_owner_opens_the_mobile_access_page_from_a_computer_at_home() {
    run(
        "the_owner_opens_the_mobile_access_page_from_a_computer_at_home",
        async {
            let mdns = mdns_port();
            let section = format!(
                "{}plain_http_listen = \"127.0.0.1:0\"\nadmin_page = true\n",
                lan_section(mdns, "ArgusAI admin page test")
            );
            let stack = Stack::start_with(StackOptions {
                agent_toml: Some(section),
                without_worker: true,
                ..StackOptions::default()
            })
            .await;
            let lan = stack.agent.lan_addr().unwrap();
            let plain = stack.agent.lan_http_addr().unwrap();
            let pin = Pin::of_certificate(agent_certificate(&stack).as_ref());
            let admin_token = stack.agent.admin_token().unwrap();

            // Without a session: nothing, and the admin token is not taken over the network.
            let (status, _) = raw_lan(lan, pin, "GET /admin/devices HTTP/1.1").await;
            assert_eq!(status, 401);
            let (status, raw) = raw_lan(
                lan,
                pin,
                &format!("GET /admin/devices HTTP/1.1\r\nAuthorization: Bearer {admin_token}"),
            )
            .await;
            assert_eq!(status, 401, "{raw}");
            let (status, raw) = raw_lan(
                lan,
                pin,
                &format!(
                    "POST /admin/ui/login-links HTTP/1.1\r\nAuthorization: Bearer {admin_token}"
                ),
            )
            .await;
            assert_eq!(status, 404, "the LAN mints no sign-in links: {raw}");
            // Never over plain HTTP.
            let resp = reqwest::Client::builder()
                .no_proxy()
                .build()
                .unwrap()
                .get(format!("http://{plain}/admin/ui"))
                .send()
                .await
                .unwrap();
            assert_ne!(resp.status(), 200);
            assert!(!resp.text().await.unwrap().contains("Mobile Access"));

            // `argus-relay ui --lan` makes the one-time link; opened at home it starts a session
            // whose cookie is Secure.
            let out = stack
                .agent
                .cli(&["ui", "--lan", "--host", &lan.to_string(), "--json"])
                .unwrap();
            let link: Value = serde_json::from_str(&out).unwrap();
            let url = link["url"].as_str().unwrap();
            let prefix = format!("https://{lan}");
            let path = url.strip_prefix(&prefix).unwrap_or_else(|| panic!("{url}"));
            assert!(path.starts_with("/admin/ui/login?ticket="), "{url}");
            let (status, raw) = raw_lan(lan, pin, &format!("GET {path} HTTP/1.1")).await;
            assert_eq!(status, 200, "{raw}");
            // The session's key, for the page's script only.
            let csrf = raw
                .split("name=\"session-key\" content=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .expect("the sign-in answer hands over the session's key")
                .to_owned();
            let cookie_line = raw
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
                .expect("a session cookie");
            for attribute in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/admin"] {
                assert!(cookie_line.contains(attribute), "{cookie_line}");
            }
            let cookie = cookie_line
                .split_once(':')
                .unwrap()
                .1
                .split(';')
                .next()
                .unwrap()
                .trim()
                .to_owned();
            // The link worked once.
            let (status, _) = raw_lan(lan, pin, &format!("GET {path} HTTP/1.1")).await;
            assert_eq!(status, 401);

            // The page, without the key in it.
            let (status, raw) = raw_lan(
                lan,
                pin,
                &format!("GET /admin/ui HTTP/1.1\r\nCookie: {cookie}"),
            )
            .await;
            assert_eq!(status, 200, "{raw}");
            assert!(!raw.contains(&csrf));
            assert!(raw.to_ascii_lowercase().contains("content-security-policy"));

            // The page's API calls: reads with the session and its key (the cookie alone reads
            // nothing), changes with the HTTPS origin too; an http:// origin (another site on
            // the same host) is refused.
            let read = |key: &str| {
                format!(
                    "GET /admin/devices HTTP/1.1\r\nCookie: {cookie}\r\nSec-Fetch-Site: same-origin{key}"
                )
            };
            let (status, raw) = raw_lan(lan, pin, &read("")).await;
            assert_eq!(status, 403, "{raw}");
            let (status, raw) =
                raw_lan(lan, pin, &read(&format!("\r\nX-CSRF-Token: {csrf}"))).await;
            assert_eq!(status, 200, "{raw}");
            let create = |origin: String| {
                format!(
                    "POST /admin/ui/pairing-code HTTP/1.1\r\nCookie: {cookie}\r\nOrigin: {origin}\r\n\
                     X-CSRF-Token: {csrf}\r\nContent-Type: application/json"
                )
            };
            let (status, raw) = raw_lan_with_body(
                lan,
                pin,
                &create(format!("http://{lan}")),
                r#"{"scope":"viewer"}"#,
            )
            .await;
            assert_eq!(status, 403, "{raw}");
            let (status, raw) = raw_lan_with_body(
                lan,
                pin,
                &create(format!("https://{lan}")),
                r#"{"scope":"viewer"}"#,
            )
            .await;
            assert_eq!(status, 201, "{raw}");
            let created = body_of(&raw);
            assert!(
                created["qr_svg"].as_str().unwrap().starts_with("<svg"),
                "{created}"
            );

            // A page reached through another name (DNS rebinding) is refused before any of it.
            let (status, raw) = exchange_raw(
                pinned_tls(lan, pin).await,
                &format!(
                    "GET /admin/devices HTTP/1.1\r\nHost: evil.example\r\nCookie: {cookie}\r\n\
                     Connection: close\r\n\r\n"
                ),
            )
            .await;
            assert_eq!(status, 404, "{raw}");
        },
    );
}
