//! User story (issue 14): a paired phone uses every route the ArgusAI app needs — the event list,
//! an event's detail, cameras, pictures (`/api/v1/thumbnails/{path}`), frames, video with ranges,
//! live updates (`/ws`), a camera's live stream, push registration — and, on an owner's phone,
//! ArgusAI's AI-processing stream. Through the relay (the Worker under workerd, then the agent)
//! and at home over the agent's LAN listener, with the default policy, against a stand-in that
//! refuses API keys where ArgusAI does (push registration takes only a user JWT, the AI stream
//! only an admin's): the agent reaches them with its own ArgusAI session.

use std::net::SocketAddr;
use std::time::Duration;

use argus_client::http::lan_client;
use argus_client::pin::Pin;
use e2e::lan::{lan_section, mdns_port, pair_through_relay, pinned_tls};
use e2e::stack::{Stack, StackOptions};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Every test finishes within this, or fails.
const TEST_LIMIT: Duration = Duration::from_secs(240);

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
type Ws = WebSocketStream<Box<dyn Io>>;

/// One way from the phone to the agent.
struct Way {
    name: &'static str,
    http: reqwest::Client,
    base: String,
    token: String,
    /// Headers Cloudflare would add (the Worker under workerd reads `MF-CF-Blob`).
    edge_headers: Vec<(&'static str, String)>,
    connect: Connect,
}

enum Connect {
    /// Plain TCP (the local Worker).
    Plain(SocketAddr),
    /// TLS with the agent's pinned certificate (the LAN listener).
    Pinned(SocketAddr, Pin),
}

impl Way {
    /// Through the Worker, as the phone away from home.
    fn relay(stack: &Stack, token: &str) -> Way {
        let base = stack.edge_url();
        let addr = base
            .trim_start_matches("http://")
            .parse()
            .expect("the Worker listens on an IP:port");
        Way {
            name: "through the relay",
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
            base,
            token: token.to_owned(),
            edge_headers: vec![(
                "mf-cf-blob",
                e2e::phone::cf_blob("US", 64496, "TLSv1.3").to_string(),
            )],
            connect: Connect::Plain(addr),
        }
    }

    /// Straight to the agent's LAN listener, as the phone at home.
    fn lan(addr: SocketAddr, pin: Pin, token: &str) -> Way {
        Way {
            name: "at home over the LAN",
            http: lan_client(pin, Duration::from_secs(30)).expect("LAN client"),
            base: format!("https://{addr}"),
            token: token.to_owned(),
            edge_headers: Vec::new(),
            connect: Connect::Pinned(addr, pin),
        }
    }

    fn request(&self, method: reqwest::Method, target: &str) -> reqwest::RequestBuilder {
        let mut rb = self
            .http
            .request(method, format!("{}{target}", self.base))
            .bearer_auth(&self.token);
        for (k, v) in &self.edge_headers {
            rb = rb.header(*k, v);
        }
        rb
    }

    fn get(&self, target: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::GET, target)
    }

    async fn json(&self, rb: reqwest::RequestBuilder) -> (u16, Value) {
        let resp = rb
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", self.name));
        let status = resp.status().as_u16();
        let body = resp.bytes().await.expect("body");
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    async fn websocket(&self, target: &str) -> Ws {
        let (scheme, addr) = match &self.connect {
            Connect::Plain(a) => ("ws", *a),
            Connect::Pinned(a, _) => ("wss", *a),
        };
        let mut req = format!("{scheme}://{addr}{target}")
            .into_client_request()
            .expect("ws request");
        let h = req.headers_mut();
        h.insert(
            "authorization",
            format!("Bearer {}", self.token).parse().expect("header"),
        );
        for (k, v) in &self.edge_headers {
            h.insert(*k, v.parse().expect("header"));
        }
        let stream: Box<dyn Io> = match &self.connect {
            Connect::Plain(a) => Box::new(tokio::net::TcpStream::connect(a).await.expect("tcp")),
            Connect::Pinned(a, pin) => Box::new(pinned_tls(*a, *pin).await),
        };
        let (ws, resp) = tokio_tungstenite::client_async(req, stream)
            .await
            .unwrap_or_else(|e| panic!("{}: {target} handshake: {e}", self.name));
        assert_eq!(resp.status(), 101);
        ws
    }
}

/// The next text message (skipping protocol frames), within 10 s.
async fn next_text(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message in time")
            .expect("the socket stays open")
            .expect("a message");
        if let Message::Text(t) = m {
            return serde_json::from_str(&t).unwrap_or(Value::String(t.to_string()));
        }
    }
}

/// The phone's whole tour of the app, one way in. `tag` keeps push registrations apart.
async fn uses_every_route(stack: &Stack, way: &Way, tag: &str) {
    let name = way.name;
    let backend = &stack.backend;

    // The event list, then one event's detail.
    let (status, list) = way.json(way.get("/api/v1/events?limit=5")).await;
    assert_eq!(status, 200, "{name}: {list}\n{}", stack.logs());
    let events = list["events"].as_array().expect("events");
    assert_eq!(events.len(), 5, "{name}");
    let event = &events[0];
    let id = event["id"].as_str().expect("id").to_owned();
    let (status, detail) = way.json(way.get(&format!("/api/v1/events/{id}"))).await;
    assert_eq!((status, &detail["id"]), (200, &json!(id)), "{name}");

    // Cameras.
    let (status, cameras) = way.json(way.get("/api/v1/cameras")).await;
    assert_eq!(status, 200, "{name}: {cameras}");
    let camera = cameras[0]["id"].as_str().expect("camera id").to_owned();
    assert_eq!(
        cameras.as_array().map(Vec::len),
        Some(backend.camera_ids().len())
    );
    let (status, one) = way
        .json(way.get(&format!("/api/v1/cameras/{camera}")))
        .await;
    assert_eq!((status, &one["id"]), (200, &json!(camera)), "{name}");

    // The event's picture: `/api/v1/` + its relative `thumbnail_path`.
    let path = event["thumbnail_path"].as_str().expect("thumbnail_path");
    let target = format!("/api/v1/{path}");
    assert_eq!(Some(&target), backend.event_thumbnail_target(&id).as_ref());
    let resp = way
        .get(&target)
        .header("accept", "image/jpeg")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{name}: {target}");
    assert_eq!(&resp.bytes().await.unwrap()[..2], b"\xff\xd8", "{name}");
    // Not `/api/v1/events/{id}/thumbnail`: ArgusAI wants a signed URL nothing hands out (422).
    let (status, _) = way
        .json(way.get(&format!("/api/v1/events/{id}/thumbnail")))
        .await;
    assert_eq!(status, 422, "{name}");

    // Frames.
    let (status, frames) = way
        .json(way.get(&format!("/api/v1/events/{id}/frames")))
        .await;
    assert_eq!(status, 200, "{name}: {frames}");
    assert!(frames["total_count"].as_i64().unwrap_or(0) >= 1, "{frames}");
    let resp = way
        .get(&format!("/api/v1/events/{id}/frames/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{name}");
    assert_eq!(&resp.bytes().await.unwrap()[..2], b"\xff\xd8", "{name}");

    // The video, by ranges as a player fetches it; `HEAD` is refused (policy and ArgusAI).
    let video = backend.video_bytes(&id).expect("video");
    let target = format!("/api/v1/events/{id}/video");
    let resp = way
        .get(&target)
        .header("range", "bytes=1000-4999")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 206, "{name}");
    assert_eq!(
        resp.headers()["content-range"],
        format!("bytes 1000-4999/{}", video.len()).as_str()
    );
    assert_eq!(resp.bytes().await.unwrap(), &video[1000..5000], "{name}");
    let (status, refused) = way.json(way.request(reqwest::Method::HEAD, &target)).await;
    assert_eq!(status, 403, "{name}: {refused}");

    // Live updates: ArgusAI's hello, then a notification as it happens.
    let mut updates = way.websocket("/ws").await;
    let hello = next_text(&mut updates).await;
    assert!(hello.is_object(), "{name}: {hello}");
    let mut notified = 0;
    for _ in 0..50 {
        notified = backend.notify(json!({"event_id": id, "tag": tag}));
        if notified > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(notified > 0, "{name}: the backend has the phone's /ws");
    loop {
        let m = next_text(&mut updates).await;
        if m["type"] == "notification" {
            assert_eq!(m["data"]["tag"], tag, "{name}");
            break;
        }
    }
    let _ = updates.close(None).await;

    // A camera's live view.
    let mut live = way
        .websocket(&format!("/ws/stream/{camera}?fps=20&count=2"))
        .await;
    let mut frames = 0;
    while let Some(m) = live.next().await {
        match m {
            Ok(Message::Binary(b)) => {
                assert_eq!(&b[..2], b"\xff\xd8", "{name}: a JPEG frame");
                frames += 1;
            }
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    assert_eq!(frames, 2, "{name}");

    // Push registration: register, refresh the APNS token, set quiet hours.
    let device_id = format!("phone-{tag}");
    let (status, registered) = way
        .json(
            way.request(reqwest::Method::POST, "/api/v1/devices")
                .json(&json!({"device_id": device_id, "platform": "ios", "push_token": "apns-1"})),
        )
        .await;
    assert_eq!(status, 201, "{name}: {registered}\n{}", stack.logs());
    assert_eq!(registered["is_new"], true);
    let (status, _) = way
        .json(
            way.request(
                reqwest::Method::PUT,
                &format!("/api/v1/devices/{device_id}/token"),
            )
            .json(&json!({"push_token": "apns-2"})),
        )
        .await;
    assert_eq!(status, 200, "{name}");
    let (status, prefs) = way
        .json(
            way.request(
                reqwest::Method::PUT,
                &format!("/api/v1/devices/{device_id}/preferences"),
            )
            .json(
                &json!({"quiet_hours_enabled": true, "quiet_hours_start": "22:00",
                          "quiet_hours_end": "07:00"}),
            ),
        )
        .await;
    assert_eq!((status, &prefs["quiet_hours_enabled"]), (200, &json!(true)));
    let stored = backend
        .push_devices()
        .into_iter()
        .find(|d| d.device_id == device_id)
        .expect("registered at ArgusAI");
    assert_eq!(stored.push_token.as_deref(), Some("apns-2"), "{name}");

    // The AI-processing stream (an owner's phone; ArgusAI: admins only).
    let mut resp = way
        .get("/api/v1/system/ai-processing-stream?count=2&interval_ms=50")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{name}: {}", stack.logs());
    let mut text = String::new();
    while let Some(c) = resp.chunk().await.unwrap() {
        text.push_str(&String::from_utf8_lossy(&c));
    }
    assert_eq!(text.matches("event: event_processed").count(), 2, "{text}");
}

/// ArgusAI itself refuses the credential the relay must not rely on.
async fn backend_refuses_api_keys_on_jwt_routes(stack: &Stack) {
    let c = reqwest::Client::builder().no_proxy().build().unwrap();
    for (method, path) in [
        (reqwest::Method::POST, "/api/v1/devices"),
        (reqwest::Method::GET, "/api/v1/system/ai-processing-stream"),
    ] {
        let r = c
            .request(method, format!("{}{path}", stack.backend.url()))
            .header("x-api-key", &stack.backend.config().api_key)
            .json(&json!({"device_id": "x", "platform": "ios"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path} with an API key");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paired_phone_uses_every_route_it_needs_through_the_relay() {
    let stack = Stack::start_with(StackOptions::default()).await;
    backend_refuses_api_keys_on_jwt_routes(&stack).await;
    let checks_before = stack.backend.api_key_checks();
    let owner = stack.pair_phone("owner").await;
    uses_every_route(&stack, &Way::relay(&stack, &owner.access_token), "relay").await;
    // The agent used its ArgusAI session: not one bcrypt-priced key check.
    assert_eq!(stack.backend.api_key_checks(), checks_before);

    // A viewer's phone reads but does not get the owner's AI feed.
    let viewer = stack.pair_phone("viewer").await;
    let way = Way::relay(&stack, &viewer.access_token);
    let (status, events) = way.json(way.get("/api/v1/events?limit=1")).await;
    assert_eq!(status, 200, "{events}");
    let (status, refused) = way
        .json(way.get("/api/v1/system/ai-processing-stream?count=1"))
        .await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["error"]["code"], "insufficient_scope", "{refused}");
}

#[test]
fn a_paired_phone_uses_every_route_it_needs_at_home_over_the_lan() {
    e2e::lan::run_isolated_test(
        "a_paired_phone_uses_every_route_it_needs_at_home_over_the_lan",
        TEST_LIMIT,
        async {
            let stack = Stack::start_with(StackOptions {
                agent_toml: Some(lan_section(mdns_port(), "ArgusAI test home")),
                ..StackOptions::default()
            })
            .await;
            let lan = stack
                .agent
                .lan_addr()
                .expect("the agent runs its LAN listener");
            let state = pair_through_relay(&stack, "owner").await;
            let pin = state.pin().expect("the pairing gave the pin");
            let checks_before = stack.backend.api_key_checks();
            uses_every_route(&stack, &Way::lan(lan, pin, &state.access_token), "lan").await;
            assert_eq!(stack.backend.api_key_checks(), checks_before);
            assert!(
                stack.agent.saw("lan", "/api/v1/devices") >= 1,
                "{}",
                stack.logs()
            );
        },
    );
}
