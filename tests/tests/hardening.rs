//! User story (issue 6): ArgusAI cannot defend itself, so the agent does. One test per rule, each
//! with the exact attacking request, sent both through the Worker and straight to the agent's
//! tunnel listener with a valid edge signature (as if the Worker had let it through), and each
//! checked against what the stand-in ArgusAI actually received.

use e2e::backend::{RecordedRequest, APP_DB_MARKER, DEFAULT_SESSION_TOKEN};
use e2e::stack::{policy_with_system_paths, Stack, StackOptions, BACKEND_API_KEY};
use e2e::via::Via;

async fn stack() -> (Stack, e2e::PairedDevice) {
    // Owner device and a policy that lets `/api/v1/system/**` through the edge: every refusal
    // below is then the agent's and the route table's, not the default policy's.
    let stack = Stack::start_with(StackOptions {
        policy: Some(policy_with_system_paths(&[])),
        ..StackOptions::default()
    })
    .await;
    let device = stack.pair_phone("owner").await;
    (stack, device)
}

/// The requests for `path` the backend received since the last clear.
fn received(stack: &Stack, path: &str) -> Vec<RecordedRequest> {
    stack
        .backend
        .requests()
        .into_iter()
        .filter(|r| r.path() == path)
        .collect()
}

/// Sends `extra` headers on a GET of `/api/v1/events?limit=1` both ways and returns what the
/// backend received each time.
async fn attack_with_headers(
    stack: &Stack,
    device: &e2e::PairedDevice,
    extra: &[(&str, &str)],
) -> Vec<(Via, RecordedRequest)> {
    let mut out = Vec::new();
    for via in stack.vias(device) {
        stack.backend.clear_requests();
        let (status, text) = via.raw("GET", "/api/v1/events?limit=1", extra).await;
        assert_eq!(status, 200, "{}: {text}\n{}", via.name(), stack.logs());
        let seen = received(stack, "/api/v1/events");
        assert_eq!(seen.len(), 1, "{}", via.name());
        out.push((via, seen[0].clone()));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_testclient_user_agent_never_reaches_argusai() {
    let (stack, device) = stack().await;
    // ArgusAI skips authentication for any User-Agent containing "testclient".
    for extra in [
        vec![("User-Agent", "testclient")],
        vec![("User-Agent", "Mozilla/5.0 (testclient)")],
        vec![("User-Agent", "TestClient"), ("User-Agent", "testclient")],
    ] {
        for (via, r) in attack_with_headers(&stack, &device, &extra).await {
            let ua = r.header_all("user-agent");
            assert_eq!(ua.len(), 1, "{}: {ua:?}", via.name());
            assert!(ua[0].starts_with("argus-relay/"), "{}: {ua:?}", via.name());
            assert!(!ua[0].to_lowercase().contains("testclient"));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cookies_and_client_api_keys_are_stripped() {
    let (stack, device) = stack().await;
    // The `access_token` cookie beats Bearer in ArgusAI; a client X-API-Key would be tried first.
    let cookie = format!("access_token={DEFAULT_SESSION_TOKEN}; session=abc");
    let extra = [
        ("Cookie", cookie.as_str()),
        ("Cookie", "access_token=second"),
        ("X-API-Key", "attacker-chosen-key"),
        ("x-api-key", BACKEND_API_KEY),
    ];
    for (via, r) in attack_with_headers(&stack, &device, &extra).await {
        assert!(!r.has_header("cookie"), "{}: {:?}", via.name(), r.headers);
        assert!(
            r.header_all("x-api-key").is_empty(),
            "{}: no client key reaches ArgusAI",
            via.name()
        );
        let auth = r.header_all("authorization");
        assert_eq!(auth.len(), 1, "{}: {auth:?}", via.name());
        assert_eq!(
            stack.backend.user_of_authorization(auth[0]).as_deref(),
            Some(e2e::backend::DEFAULT_ADMIN_USERNAME),
            "{}: only the agent's own session",
            via.name()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn exactly_one_x_forwarded_for_with_the_real_client_ip() {
    let (stack, device) = stack().await;
    // uvicorn trusts X-Forwarded-For from 127.0.0.1 and ArgusAI keys its login limit on it.
    let extra = [
        ("X-Forwarded-For", "1.2.3.4"),
        ("X-Forwarded-For", "5.6.7.8, 9.9.9.9"),
        ("X-Real-IP", "1.2.3.4"),
        ("Forwarded", "for=1.2.3.4;proto=https"),
        ("X-Forwarded-Host", "evil.example"),
        ("X-Forwarded-Proto", "http"),
        ("True-Client-IP", "1.2.3.4"),
        ("X-Client-IP", "1.2.3.4"),
        // Not addresses, but the same family of "trust me" headers some frameworks honour.
        ("X-Original-URL", "/api/v1/thumbnails/%2e%2e/app.db"),
        ("X-HTTP-Method-Override", "DELETE"),
    ];
    let mut seen = attack_with_headers(&stack, &device, &extra).await;
    // Past the Worker, a `CF-Connecting-IP` can only come from the Worker's own request (Cloudflare
    // overwrites the client's; `wrangler dev` does not, so it is sent straight to the agent only).
    let mut direct = stack.tunnel().with_device(&device);
    direct.client_ip = "203.0.113.50".into();
    stack.backend.clear_requests();
    let (status, _) = direct
        .raw(
            "GET",
            "/api/v1/events?limit=1",
            &[
                ("CF-Connecting-IP", "1.2.3.4"),
                ("X-Forwarded-For", "1.2.3.4"),
            ],
        )
        .await;
    assert_eq!(status, 200);
    seen.push((
        Via::Tunnel(direct),
        received(&stack, "/api/v1/events")[0].clone(),
    ));
    for (via, r) in seen {
        let xff = r.header_all("x-forwarded-for");
        assert_eq!(xff.len(), 1, "{}: {xff:?}", via.name());
        let want: Vec<String> = match &via {
            // What workerd reports as the connecting IP of a local client.
            Via::Edge(_) => vec!["127.0.0.1".into(), "::1".into()],
            // What the edge signed.
            Via::Tunnel(t) => vec![t.client_ip.clone()],
        };
        assert!(want.iter().any(|w| w == xff[0]), "{}: {xff:?}", via.name());
        for h in [
            "x-real-ip",
            "forwarded",
            "x-forwarded-host",
            "x-forwarded-proto",
            "cf-connecting-ip",
            "true-client-ip",
            "x-client-ip",
            "x-original-url",
            "x-http-method-override",
        ] {
            assert!(!r.has_header(h), "{}: {h} reached the backend", via.name());
        }
        assert!(
            !r.headers.iter().any(|(_, v)| v.contains("1.2.3.4")),
            "{}: a spoofed address reached the backend: {:?}",
            via.name(),
            r.headers
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn path_traversal_in_any_encoding_is_refused() {
    let (stack, device) = stack().await;
    // `/api/v1/thumbnails/%2e%2e/app.db` serves ArgusAI's whole database.
    let attacks = [
        "/api/v1/thumbnails/%2e%2e/app.db",
        "/api/v1/thumbnails/%2E%2E/app.db",
        "/api/v1/thumbnails/.%2e/app.db",
        "/api/v1/thumbnails/%2e./app.db",
        "/api/v1/thumbnails/../app.db",
        "/api/v1/thumbnails/2025-11-20/../../app.db",
        "/api/v1/thumbnails/%252e%252e/app.db",
        "/api/v1/thumbnails/%c0%ae%c0%ae/app.db",
        "/api/v1/thumbnails/%e0%80%ae%e0%80%ae/app.db",
        "/api/v1/thumbnails/a%2f..%2fapp.db",
        "/api/v1/thumbnails/a%2F%2e%2e%2Fapp.db",
        "/api/v1/thumbnails/..%5capp.db",
        "/api/v1/thumbnails/..%255capp.db",
        "/api/v1/thumbnails/%2e%2e;/app.db",
        "/api/v1/thumbnails/x/..;/app.db",
        "/api/v1/thumbnails//../app.db",
        "/api/v1/thumbnails/%2e%2e/app.db%00.jpg",
        "/api/v1/thumbnails/%u002e%u002e/app.db",
    ];
    for via in stack.vias(&device) {
        stack.backend.clear_requests();
        for target in attacks {
            let (status, text) = via.raw("GET", target, &[]).await;
            let allowed: &[u16] = match via {
                // workerd resolves plain and `%2e` dot segments while parsing the URL, so some
                // arrive at the Worker as `/api/v1/app.db`, which the policy refuses (403).
                Via::Edge(_) => &[400, 403],
                Via::Tunnel(_) => &[400],
            };
            assert!(
                allowed.contains(&status),
                "{}: {target}: {status}\n{text}",
                via.name()
            );
            assert!(
                !text
                    .as_bytes()
                    .windows(15)
                    .any(|w| w == &APP_DB_MARKER[..15]),
                "{}: {target} leaked the database",
                via.name()
            );
            if let Via::Tunnel(_) = via {
                assert!(text.contains("\"non_canonical_path\""), "{target}: {text}");
            }
        }
        let reached: Vec<_> = stack
            .backend
            .requests()
            .into_iter()
            .map(|r| r.target)
            .collect();
        assert!(
            reached.is_empty(),
            "{}: traversal attempts reached ArgusAI: {reached:?}",
            via.name()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tunnel_controls_docs_and_metrics_are_refused_remotely() {
    let (stack, device) = stack().await;
    let attacks = [
        ("POST", "/api/v1/system/tunnel/stop", "route.system_tunnel"),
        ("POST", "/api/v1/system/tunnel/start", "route.system_tunnel"),
        ("GET", "/api/v1/system/tunnel/status", "route.system_tunnel"),
        ("GET", "/api/v1/system/tunnel", "route.system_tunnel"),
        ("GET", "/docs", "route.docs"),
        ("GET", "/docs/oauth2-redirect", "route.docs"),
        ("GET", "/redoc", "route.docs"),
        ("GET", "/openapi.json", "route.docs"),
        ("GET", "/metrics", "route.metrics"),
        ("GET", "/metrics/", "route.metrics"),
        ("GET", "/api/v1/metrics", "route.metrics"),
    ];
    for via in stack.vias(&device) {
        stack.backend.clear_requests();
        for (method, target, reason) in attacks {
            let (status, text) = via.raw(method, target, &[("Content-Length", "0")]).await;
            assert_eq!(status, 404, "{}: {method} {target}: {text}", via.name());
            assert!(
                text.contains("\"not_found\"") && text.contains(reason),
                "{}: {method} {target}: {text}",
                via.name()
            );
        }
        assert!(
            stack.backend.requests().is_empty(),
            "{}: {:?}",
            via.name(),
            stack.backend.requests()
        );
        // Meanwhile the rest of /api/v1/system is the owner's (the policy above lets it through).
        let resp = via
            .get("/api/v1/system/backup/x/download?size=10")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{}", via.name());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agent_authenticates_to_argusai_with_its_own_session() {
    let (stack, device) = stack().await;
    for via in stack.vias(&device) {
        stack.backend.clear_requests();
        // An authenticated ArgusAI route answers 200: the agent's session was accepted …
        let resp = via.get("/api/v1/events?limit=2").send().await.unwrap();
        assert_eq!(resp.status(), 200, "{}: {}", via.name(), stack.logs());
        let r = &received(&stack, "/api/v1/events")[0];
        // … and it is the only credential ArgusAI saw: a Bearer JWT, no key (a bcrypt per
        // request), no cookie.
        let auth = r.header_all("authorization");
        assert_eq!(auth.len(), 1, "{}: {auth:?}", via.name());
        assert_eq!(
            stack.backend.user_of_authorization(auth[0]).as_deref(),
            Some(e2e::backend::DEFAULT_ADMIN_USERNAME)
        );
        assert!(!r.has_header("x-api-key") && !r.has_header("cookie"));
    }
    // Without a credential ArgusAI refuses (the stand-in checks like the real one): the 200 above was
    // the agent's doing, not an open backend.
    let resp = reqwest::get(format!("{}/api/v1/events", stack.backend.url()))
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn device_tokens_never_reach_argusai() {
    let (stack, device) = stack().await;
    let token = device.access_token.clone();
    // The token in every place a credential could travel: it must stop at the agent.
    let cookie = format!("access_token={token}");
    // The WebSocket subprotocol form on a request that is no upgrade (issue 20 §6): the relay's
    // entries go, the client's own protocols stay.
    let protocols = format!("argus-relay, argus-relay.bearer.{token}, chat");
    let extra = [
        ("Cookie", cookie.as_str()),
        ("X-API-Key", token.as_str()),
        ("Proxy-Authorization", "Bearer x"),
        ("Sec-WebSocket-Protocol", protocols.as_str()),
    ];
    // The only Authorization ArgusAI sees is the agent's own session.
    let agents_session = |r: &e2e::backend::RecordedRequest| {
        r.header_all("authorization")
            .iter()
            .all(|a| stack.backend.user_of_authorization(a).is_some())
    };
    for (via, r) in attack_with_headers(&stack, &device, &extra).await {
        assert!(agents_session(&r), "{}: {:?}", via.name(), r.headers);
        assert!(!r.has_header("proxy-authorization"), "{}", via.name());
        assert_eq!(
            r.header_all("sec-websocket-protocol"),
            vec!["chat"],
            "{}",
            via.name()
        );
        let leaked: Vec<_> = r
            .headers
            .iter()
            .filter(|(_, v)| v.contains(&token) || v.contains(&token[..40]))
            .collect();
        assert!(
            leaked.is_empty(),
            "{}: the device token reached ArgusAI in {leaked:?}",
            via.name()
        );
    }
    // A WebSocket upgrade carries the token too; it stops at the agent as well.
    for via in stack.vias(&device) {
        stack.backend.clear_requests();
        let (ws, _) = tokio_tungstenite::connect_async(via.websocket_request("/ws"))
            .await
            .unwrap();
        drop(ws);
        let r = &received(&stack, "/ws")[0];
        assert!(agents_session(r), "{}: {:?}", via.name(), r.headers);
        assert!(
            !r.headers.iter().any(|(_, v)| v.contains(&token)),
            "{}",
            via.name()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_the_client_names_in_connection_stop_at_the_first_hop() {
    let (stack, device) = stack().await;
    // RFC 9110 §7.6.1: a field listed in `Connection` is for the next hop only. A client that
    // names one must not get it to ArgusAI (the agent's own headers are set after the filter).
    let extra = [
        ("Connection", "X-Hop-Secret, keep-alive"),
        ("Connection", "Range"),
        ("X-Hop-Secret", "only-for-the-next-hop"),
        ("Range", "bytes=0-1"),
        ("Keep-Alive", "timeout=5"),
        ("Proxy-Connection", "keep-alive"),
        ("TE", "trailers"),
        ("X-Kept", "yes"),
    ];
    for (via, r) in attack_with_headers(&stack, &device, &extra).await {
        // workerd consumes `Connection` before the Worker runs (the Worker gets no `Connection`
        // header, so it cannot know the names in it), and the Worker's request to the agent
        // carries its own: through the Worker only the fixed hop-by-hop fields can be removed.
        let named: &[&str] = match via {
            Via::Edge(_) => &[],
            Via::Tunnel(_) => &["x-hop-secret", "range"],
        };
        for h in ["keep-alive", "proxy-connection", "te"].iter().chain(named) {
            assert!(
                !r.has_header(h),
                "{}: {h} reached the backend: {:?}",
                via.name(),
                r.headers
            );
        }
        assert!(
            !r.header_all("connection")
                .iter()
                .any(|v| v.to_ascii_lowercase().contains("x-hop-secret")),
            "{}: {:?}",
            via.name(),
            r.headers
        );
        assert_eq!(r.header_all("x-kept"), vec!["yes"], "{}", via.name());
    }
    // A WebSocket upgrade still gets its own `Connection: upgrade` / `Upgrade: websocket`.
    for via in stack.vias(&device) {
        stack.backend.clear_requests();
        let (ws, _) = tokio_tungstenite::connect_async(via.websocket_request("/ws"))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", via.name()));
        drop(ws);
        let r = &received(&stack, "/ws")[0];
        assert_eq!(r.header_all("upgrade"), vec!["websocket"], "{}", via.name());
    }
}
