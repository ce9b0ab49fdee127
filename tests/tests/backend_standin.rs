//! Tests of the stand-in ArgusAI backend itself, talking to it directly (reqwest, raw TCP and a
//! WebSocket client): if these hold, tests that go through the relay can trust what the stand-in
//! says and records.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use e2e::backend::{BackendConfig, StandInBackend, APP_DB_MARKER, PHOTO_DATE, TRAVERSAL_TARGET};
use futures_util::{SinkExt, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

const KEY: &str = "test-api-key-0123";

async fn backend() -> StandInBackend {
    backend_with(|_| {}).await
}

async fn backend_with(f: impl FnOnce(&mut BackendConfig)) -> StandInBackend {
    let mut config = BackendConfig {
        api_key: KEY.to_owned(),
        ..BackendConfig::default()
    };
    f(&mut config);
    StandInBackend::start(config)
        .await
        .expect("stand-in starts")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

async fn get_json(b: &StandInBackend, target: &str) -> (u16, serde_json::Value) {
    let r = client()
        .get(format!("{}{target}", b.url()))
        .header("x-api-key", KEY)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.expect("json body"))
}

/// Sends `request` as is over TCP (no client-side URL normalisation) and returns status, headers
/// (lower-case names) and body. The request should say `Connection: close`.
async fn raw(b: &StandInBackend, request: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(b.addr())
        .await
        .expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .expect("response in time")
        .expect("read");
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of head");
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let body = buf[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body)
}

fn raw_get(target: &str, extra: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: backend\r\n{extra}Connection: close\r\n\r\n")
}

fn hv<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn openapi() -> serde_json::Value {
    let bytes = std::fs::read(e2e::backend::default_openapi_path())
        .expect("openapi.json of the real backend");
    serde_json::from_slice(&bytes).expect("openapi parses")
}

#[tokio::test]
async fn public_routes_answer_like_the_real_backend() {
    let b = backend().await;
    let c = client();
    let r = c.get(format!("{}/health", b.url())).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["server"], "uvicorn");
    let health: serde_json::Value = r.json().await.unwrap();
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["camera_count"], 4);

    let r = c.get(format!("{}/metrics", b.url())).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("# TYPE argusai_events_processed_total counter"));

    let r = c.get(format!("{}/docs", b.url())).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("SwaggerUIBundle"));

    let r = c
        .get(format!("{}/openapi.json", b.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let served = r.bytes().await.unwrap();
    assert_eq!(
        served.as_ref(),
        std::fs::read(e2e::backend::default_openapi_path())
            .unwrap()
            .as_slice()
    );

    let root: serde_json::Value = c.get(b.url()).send().await.unwrap().json().await.unwrap();
    assert_eq!(root["name"], "ArgusAI API");
}

#[tokio::test]
async fn event_list_has_the_real_shape_and_pages() {
    let b = backend().await;
    let spec = openapi();
    let props: HashSet<String> = spec["components"]["schemas"]["EventResponse"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let list_props: HashSet<String> = spec["components"]["schemas"]["EventListResponse"]
        ["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();

    let (status, page) = get_json(&b, "/api/v1/events").await;
    assert_eq!(status, 200);
    let keys: HashSet<String> = page.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, list_props);
    assert_eq!(page["total_count"], 137);
    assert_eq!(page["limit"], 50);
    assert_eq!(page["offset"], 0);
    assert_eq!(page["has_more"], true);
    assert_eq!(page["next_offset"], 50);
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 50);
    for e in events {
        let keys: HashSet<String> = e.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, props, "an event has exactly EventResponse's fields");
        assert!(e["description"].as_str().unwrap().len() > 100);
        let conf = e["confidence"].as_i64().unwrap();
        assert!((0..=100).contains(&conf));
    }
    let size = serde_json::to_vec(events).unwrap().len() / events.len();
    assert!(
        (2_500..=3_500).contains(&size),
        "~3 KB per event, got {size}"
    );

    // Page through everything: the ids are the backend's, newest first, each once.
    let mut ids = Vec::new();
    let mut offset = 0;
    loop {
        let (status, page) =
            get_json(&b, &format!("/api/v1/events?limit=40&offset={offset}")).await;
        assert_eq!(status, 200);
        ids.extend(
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_owned()),
        );
        match page["next_offset"].as_u64() {
            Some(n) => {
                assert_eq!(page["has_more"], true);
                offset = n;
            }
            None => {
                assert_eq!(page["has_more"], false);
                assert_eq!(page["events"].as_array().unwrap().len(), 137 - 3 * 40);
                break;
            }
        }
    }
    assert_eq!(ids, b.event_ids());
    let (_, past_end) = get_json(&b, "/api/v1/events?offset=1000").await;
    assert_eq!(past_end["events"].as_array().unwrap().len(), 0);
    assert_eq!(past_end["has_more"], false);

    let (_, asc) = get_json(&b, "/api/v1/events?sort_order=asc&limit=1").await;
    assert_eq!(
        asc["events"][0]["id"].as_str().unwrap(),
        ids.last().unwrap()
    );

    // Filters (unknown parameters are ignored).
    let camera = b.camera_ids()[0].clone();
    let (_, filtered) = get_json(
        &b,
        &format!("/api/v1/events?camera_id={camera}&limit=500&whatever=1"),
    )
    .await;
    let n = filtered["total_count"].as_u64().unwrap();
    assert!(n > 0 && n < 137);
    assert!(filtered["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["camera_id"] == camera.as_str()));
    let (_, alerts) = get_json(&b, "/api/v1/events?alert_triggered=true&limit=500").await;
    assert!(alerts["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["alert_triggered"] == true));

    // Deterministic: another backend with the same seed serves the same bytes.
    let other = backend().await;
    let body = |b: &StandInBackend| {
        let url = format!("{}/api/v1/events?limit=500", b.url());
        async move {
            client()
                .get(url)
                .header("x-api-key", KEY)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
        }
    };
    assert_eq!(body(&b).await, body(&other).await);
}

#[tokio::test]
async fn bad_query_parameters_get_fastapis_422() {
    let b = backend().await;
    let cases = [
        ("limit=0", "limit", "greater_than_equal"),
        ("limit=501", "limit", "less_than_equal"),
        ("limit=ten", "limit", "int_parsing"),
        ("offset=-1", "offset", "greater_than_equal"),
        (
            "sort_order=sideways",
            "sort_order",
            "string_pattern_mismatch",
        ),
        ("alert_triggered=maybe", "alert_triggered", "bool_parsing"),
        ("min_confidence=101", "min_confidence", "less_than_equal"),
        (
            "start_time=yesterday",
            "start_time",
            "datetime_from_date_parsing",
        ),
    ];
    for (query, field, kind) in cases {
        let (status, body) = get_json(&b, &format!("/api/v1/events?{query}")).await;
        assert_eq!(status, 422, "{query}");
        let detail = body["detail"].as_array().unwrap();
        assert_eq!(detail.len(), 1, "{query}: {body}");
        assert_eq!(detail[0]["loc"], serde_json::json!(["query", field]));
        assert_eq!(detail[0]["type"], kind);
        assert!(detail[0]["msg"].is_string());
    }
    let (status, body) = get_json(&b, "/api/v1/events?limit=0&offset=-5").await;
    assert_eq!(status, 422);
    assert_eq!(
        body["detail"].as_array().unwrap().len(),
        2,
        "every error is reported"
    );
    let (status, body) = get_json(&b, "/api/v1/events?limit=500").await;
    assert_eq!(status, 200);
    assert_eq!(body["events"].as_array().unwrap().len(), 137);
}

#[tokio::test]
async fn single_event_or_404() {
    let b = backend().await;
    let id = b.event_ids()[7].clone();
    let (status, event) = get_json(&b, &format!("/api/v1/events/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(event, b.event_json(&id).unwrap());
    let (status, body) = get_json(&b, "/api/v1/events/00000000-0000-4000-8000-000000000000").await;
    assert_eq!(status, 404);
    assert_eq!(body, serde_json::json!({"detail": "Event not found"}));
}

#[tokio::test]
async fn auth_follows_the_real_middleware() {
    let b = backend().await;
    let token = b.config().session_token.clone();
    let url = format!("{}/api/v1/events?limit=1", b.url());
    let c = client();
    let status =
        |rb: reqwest::RequestBuilder| async move { rb.send().await.unwrap().status().as_u16() };

    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"detail": "Not authenticated"})
    );

    assert_eq!(status(c.get(&url).header("x-api-key", KEY)).await, 200);
    // A wrong key falls through to the token check: no token, so "Not authenticated".
    let r = c
        .get(&url)
        .header("x-api-key", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["detail"],
        "Not authenticated"
    );
    assert_eq!(status(c.get(&url).bearer_auth(&token)).await, 200);
    let r = c.get(&url).bearer_auth("forged").send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["detail"],
        "Invalid token"
    );
    assert_eq!(
        status(
            c.get(&url)
                .header("cookie", format!("access_token={token}"))
        )
        .await,
        200
    );
    // The cookie beats Bearer, whichever is the good one.
    assert_eq!(
        status(
            c.get(&url)
                .header("cookie", format!("access_token={token}"))
                .bearer_auth("forged")
        )
        .await,
        200
    );
    assert_eq!(
        status(
            c.get(&url)
                .header("cookie", "access_token=forged")
                .bearer_auth(&token)
        )
        .await,
        401
    );
    // Starlette's TestClient user agent skips auth entirely.
    assert_eq!(
        status(
            c.get(&url)
                .header("user-agent", "python-requests testclient")
        )
        .await,
        200
    );

    // Excluded from auth, like the real middleware.
    let id = b.event_ids()[0].clone();
    for target in [
        "/health".to_owned(),
        "/metrics".to_owned(),
        "/docs".to_owned(),
        "/openapi.json".to_owned(),
        format!("/api/v1/thumbnails/{PHOTO_DATE}/cups-320x180.jpg"),
        format!("/api/v1/events/{id}/frames"),
        format!("/api/v1/events/{id}/frames/1"),
    ] {
        assert_eq!(
            status(c.get(format!("{}{target}", b.url()))).await,
            200,
            "{target}"
        );
    }
    for target in [
        "/api/v1/metrics",
        "/api/v1/system/ai-processing-stream",
        "/api/v1/cameras",
    ] {
        assert_eq!(
            status(c.get(format!("{}{target}", b.url()))).await,
            401,
            "{target}"
        );
    }
    // The middleware runs before routing: unknown paths are 401 without credentials.
    assert_eq!(status(c.get(format!("{}/api/v1/nope", b.url()))).await, 401);
    let r = c
        .get(format!("{}/api/v1/nope", b.url()))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"detail": "Not Found"})
    );
    let r = c
        .put(format!("{}/api/v1/events", b.url()))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET, POST");
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"detail": "Method Not Allowed"})
    );
}

#[tokio::test]
async fn thumbnail_path_traversal_leaks_the_database_like_the_real_one() {
    let b = backend().await;
    for target in [
        TRAVERSAL_TARGET,
        "/api/v1/thumbnails/%2E%2E/app.db",
        "/api/v1/thumbnails/../app.db",
    ] {
        let (status, headers, body) = raw(&b, &raw_get(target, "")).await;
        assert_eq!(status, 200, "{target}");
        assert!(body.starts_with(APP_DB_MARKER), "{target} leaks app.db");
        assert!(
            String::from_utf8_lossy(&body).contains(KEY),
            "the leaked database holds the API key"
        );
        assert_eq!(hv(&headers, "content-type"), Some("image/jpeg"));
    }
    // The log keeps the target exactly as it arrived.
    assert!(b.requests().iter().any(|r| r.target == TRAVERSAL_TARGET));
    assert_eq!(
        std::fs::read(b.app_db_path()).unwrap()[..APP_DB_MARKER.len()],
        *APP_DB_MARKER
    );
    // Encoded slashes decode to separators before routing: no route, 404.
    let (status, _, _) = raw(&b, &raw_get("/api/v1/thumbnails/..%2F..%2Fetc/passwd", "")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn thumbnails_are_jpegs_with_validators() {
    let b = backend().await;
    let c = client();
    let url = format!(
        "{}/api/v1/thumbnails/{PHOTO_DATE}/cups-320x180.jpg",
        b.url()
    );
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    assert!(r.headers().contains_key("last-modified"));
    let bytes = r.bytes().await.unwrap();
    assert_eq!(
        bytes.as_ref(),
        b.photo_bytes("cups-320x180.jpg").unwrap().as_slice()
    );
    let r = c
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);

    let r = c
        .get(format!(
            "{}/api/v1/thumbnails/{PHOTO_DATE}/missing.jpg",
            b.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.bytes().await.unwrap().is_empty());

    let id = b.event_ids()[3].clone();
    let target = b.event_thumbnail_target(&id).unwrap();
    let r = c.get(format!("{}{target}", b.url())).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let by_path = r.bytes().await.unwrap();
    assert_eq!(&by_path[..2], b"\xff\xd8");
    // The event's own thumbnail route wants a signed URL that nothing in ArgusAI hands out:
    // without `signature` and `expires` it is FastAPI's 422, credentials or not.
    let thumbnail = |query: String| {
        c.get(format!("{}/api/v1/events/{id}/thumbnail{query}", b.url()))
            .header("x-api-key", KEY)
            .send()
    };
    let r = thumbnail(String::new()).await.unwrap();
    assert_eq!(r.status(), 422);
    let body: serde_json::Value = r.json().await.unwrap();
    let missing: Vec<&serde_json::Value> = body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["loc"][1])
        .collect();
    assert_eq!(missing, ["signature", "expires"]);
    let r = thumbnail("?signature=x&expires=1".into()).await.unwrap();
    assert_eq!(r.status(), 403, "expired signed URL");
    let later = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 60) as i64;
    let r = thumbnail(format!("?signature={}&expires={later}", "0".repeat(64)))
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "wrong signature");
    let signed = b.signed_thumbnail_query(&id, later);
    let r = thumbnail(format!("?{signed}")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(
        r.bytes().await.unwrap(),
        by_path,
        "the event's thumbnail file is its photo"
    );
    // A signed URL alone does not pass the middleware.
    let r = c
        .get(format!("{}/api/v1/events/{id}/thumbnail?{signed}", b.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn video_serves_byte_ranges() {
    let b = backend().await;
    let c = client();
    let id = b.event_ids()[0].clone();
    let expected = b.video_bytes(&id).unwrap();
    assert_eq!(expected.len(), 1024 * 1024);
    let url = format!("{}/api/v1/events/{id}/video", b.url());
    let get = |range: Option<&str>| {
        let mut rb = c.get(&url).header("x-api-key", KEY);
        if let Some(r) = range {
            rb = rb.header("range", r);
        }
        rb.send()
    };

    let r = get(None).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert_eq!(r.headers()["content-type"], "video/mp4");
    assert_eq!(r.bytes().await.unwrap().as_ref(), expected.as_slice());

    for (range, start, end) in [
        ("bytes=0-99", 0, 99),
        ("bytes=1000-", 1000, expected.len() - 1),
        ("bytes=-100", expected.len() - 100, expected.len() - 1),
    ] {
        let r = get(Some(range)).await.unwrap();
        assert_eq!(r.status(), 206, "{range}");
        assert_eq!(
            r.headers()["content-range"],
            format!("bytes {start}-{end}/{}", expected.len()).as_str()
        );
        assert_eq!(r.bytes().await.unwrap().as_ref(), &expected[start..=end]);
    }
    let r = get(Some("bytes=2000000-")).await.unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["content-range"], "bytes */1048576");

    // ArgusAI's video route is GET only: HEAD is FastAPI's 405.
    let r = c.head(&url).header("x-api-key", KEY).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET");
    let (status, _) = get_json(&b, "/api/v1/events/nope/video").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn sse_events_arrive_one_by_one() {
    let b = backend().await;
    let started = Instant::now();
    let r = client()
        .get(format!(
            "{}/api/v1/system/ai-processing-stream?count=5&interval_ms=100",
            b.url()
        ))
        .bearer_auth(&b.config().session_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut stream = r.bytes_stream();
    let mut buf = Vec::new();
    let mut arrivals = Vec::new();
    while let Some(chunk) = stream.next().await {
        buf.extend_from_slice(&chunk.unwrap());
        while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = buf.drain(..end + 2).collect();
            arrivals.push((started.elapsed(), String::from_utf8(event).unwrap()));
        }
    }
    assert_eq!(arrivals.len(), 5);
    for (i, (_, text)) in arrivals.iter().enumerate() {
        assert!(text.starts_with(&format!("id: {i}\n")), "{text}");
        let data = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["seq"], i);
        assert!(v["event"]["id"].is_string());
    }
    // Incremental: the first event was there well before the last was sent.
    let spread = arrivals[4].0 - arrivals[0].0;
    assert!(
        spread >= Duration::from_millis(300),
        "events spread over {spread:?}"
    );
}

#[tokio::test]
async fn backup_download_streams_deterministic_bytes() {
    let b = backend().await;
    let r = client()
        .get(format!(
            "{}/api/v1/system/backup/2025-01-15-14-30-00/download",
            b.url()
        ))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/zip");
    assert_eq!(r.headers()["transfer-encoding"], "chunked");
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("argusai-backup-2025-01-15-14-30-00.zip"));
    let mut stream = r.bytes_stream();
    let (mut body, mut chunks) = (Vec::new(), 0usize);
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk.unwrap());
        chunks += 1;
    }
    assert_eq!(body.len(), 8 * 1024 * 1024);
    assert!(chunks > 1);
    assert!(
        body == StandInBackend::backup_bytes(body.len()),
        "the documented bytes"
    );
    let small = client()
        .get(format!(
            "{}/api/v1/system/backup/x/download?size=1000",
            b.url()
        ))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        small.as_ref(),
        StandInBackend::backup_bytes(1000).as_slice()
    );
    assert!(small.starts_with(b"PK\x03\x04"));
}

#[tokio::test]
async fn restore_counts_and_hashes_a_streamed_upload() {
    let b = backend().await;
    let payload: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        payload.chunks(100_000).map(|c| Ok(c.to_vec())).collect();
    let r = client()
        .post(format!("{}/api/v1/system/restore", b.url()))
        .header("x-api-key", KEY)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["success"], true);
    assert_eq!(v["received"], payload.len());
    assert_eq!(v["sha256"], sha256_hex(&payload));

    let r = client()
        .post(format!("{}/api/v1/system/restore", b.url()))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = client()
        .post(format!("{}/api/v1/system/restore", b.url()))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn websocket_says_hello_echoes_and_relays_notifications() {
    let b = backend().await;
    let (mut ws, resp) = tokio_tungstenite::connect_async(format!("ws://{}/ws", b.addr()))
        .await
        .expect("ws connects");
    assert_eq!(resp.status(), 101);
    let next_text = |m: Option<Result<Message, _>>| match m {
        Some(Ok(Message::Text(t))) => t,
        other => panic!("expected text, got {other:?}"),
    };
    let hello: serde_json::Value = serde_json::from_str(&next_text(ws.next().await)).unwrap();
    assert_eq!(hello["type"], "hello");

    ws.send(Message::Text(r#"{"a":1}"#.into())).await.unwrap();
    let echo: serde_json::Value = serde_json::from_str(&next_text(ws.next().await)).unwrap();
    assert_eq!(echo, serde_json::json!({"type": "echo", "data": {"a": 1}}));
    ws.send(Message::Text("plain words".into())).await.unwrap();
    let echo: serde_json::Value = serde_json::from_str(&next_text(ws.next().await)).unwrap();
    assert_eq!(echo["data"], "plain words");
    ws.send(Message::Text("ping".into())).await.unwrap();
    assert_eq!(next_text(ws.next().await), "pong");
    ws.send(Message::Ping(b"are you there".to_vec()))
        .await
        .unwrap();
    match ws.next().await {
        Some(Ok(Message::Pong(p))) => assert_eq!(p, b"are you there"),
        other => panic!("expected pong, got {other:?}"),
    }
    ws.send(Message::Binary(vec![1, 2, 3])).await.unwrap();
    assert!(matches!(ws.next().await, Some(Ok(Message::Binary(v))) if v == [1, 2, 3]));

    assert_eq!(b.active_websockets(), 1);
    assert_eq!(b.notify(serde_json::json!({"event_id": "e1"})), 1);
    let note: serde_json::Value = serde_json::from_str(&next_text(ws.next().await)).unwrap();
    assert_eq!(
        note,
        serde_json::json!({"type": "notification", "data": {"event_id": "e1"}})
    );

    ws.close(None).await.unwrap();
    while ws.next().await.is_some() {}
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.active_websockets() != 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(b.active_websockets(), 0);
    // The upgrade request was recorded like any other.
    assert_eq!(
        b.count(|r| r.path() == "/ws" && r.header("upgrade") == Some("websocket")),
        1
    );
}

#[tokio::test]
async fn camera_stream_sends_jpeg_frames() {
    let b = backend().await;
    let camera = b.camera_ids()[1].clone();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!(
        "ws://{}/ws/stream/{camera}?fps=20&count=4",
        b.addr()
    ))
    .await
    .unwrap();
    let mut frames = Vec::new();
    while let Some(m) = ws.next().await {
        match m.unwrap() {
            Message::Binary(f) => frames.push(f),
            Message::Close(_) => break,
            _ => {}
        }
    }
    assert_eq!(frames.len(), 4);
    let photos: Vec<Vec<u8>> = ["cups-320x180.jpg", "leaf-320x180.jpg", "water-320x180.jpg"]
        .iter()
        .map(|n| b.photo_bytes(n).unwrap())
        .collect();
    for f in &frames {
        assert_eq!(&f[..2], b"\xff\xd8");
        assert!(photos.contains(f));
    }
    // A plain GET of a WebSocket route is not a route (404); an upgrade to a non-WebSocket path is refused.
    let (status, _, _) = raw(&b, &raw_get("/ws", "")).await;
    assert_eq!(status, 404);
    assert!(
        tokio_tungstenite::connect_async(format!("ws://{}/api/v1/events", b.addr()))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn request_log_records_raw_targets_and_headers() {
    let b = backend().await;
    let (status, _, _) = raw(
        &b,
        &raw_get(
            "/api/v1/events?limit=2&q=%2Fa%20b",
            "X-Api-Key: test-api-key-0123\r\nX-Probe: one\r\nX-Probe: two\r\n",
        ),
    )
    .await;
    assert_eq!(status, 200);
    let reqs = b.requests();
    let r = reqs.iter().find(|r| r.path() == "/api/v1/events").unwrap();
    assert_eq!(r.method, "GET");
    assert_eq!(r.target, "/api/v1/events?limit=2&q=%2Fa%20b");
    assert_eq!(r.header("x-probe"), Some("one"));
    assert_eq!(r.header_all("X-Probe"), ["one", "two"]);
    assert_eq!(r.header("x-api-key"), Some(KEY));
    assert_eq!(b.count(|r| r.has_header("x-probe")), 1);
    let log = b.request_log();
    b.clear_requests();
    assert!(b.requests().is_empty() && log.is_empty());
    let _ = client()
        .get(format!("{}/health", b.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(log.len(), 1);
}

#[tokio::test]
async fn trailing_slashes_follow_redirect_slashes() {
    // ArgusAI: redirect_slashes=False, so the other spelling is simply not a route.
    let b = backend().await;
    let (status, body) = get_json(&b, "/api/v1/events/").await;
    assert_eq!(status, 404);
    assert_eq!(body, serde_json::json!({"detail": "Not Found"}));

    let b = backend_with(|c| c.redirect_slashes = true).await;
    let (status, headers, _) = raw(
        &b,
        &raw_get(
            "/api/v1/events/?limit=3",
            "X-API-Key: test-api-key-0123\r\n",
        ),
    )
    .await;
    assert_eq!(status, 307);
    assert_eq!(
        hv(&headers, "location"),
        Some("http://backend/api/v1/events?limit=3")
    );
    // `/health/` is not an excluded path of the auth middleware, which runs first.
    let (status, _, _) = raw(&b, &raw_get("/health/", "")).await;
    assert_eq!(status, 401);
    let (status, headers, _) =
        raw(&b, &raw_get("/health/", "X-API-Key: test-api-key-0123\r\n")).await;
    assert_eq!(status, 307);
    assert_eq!(hv(&headers, "location"), Some("http://backend/health"));
}

#[tokio::test]
async fn bad_input_never_breaks_it() {
    let b = backend().await;
    let auth = "X-API-Key: test-api-key-0123\r\n";
    for (target, extra) in [
        ("/api/v1/thumbnails/%00/x.jpg", ""),
        ("/api/v1/thumbnails/%ff%fe/%c0%af", ""),
        ("/api/v1/events/%ff", auth),
        ("/api/v1/events?limit=99999999999999999999999999&offset=%ff", auth),
        ("/api/v1/events?start_time=2025-02-30T25:61:00%2B99:99", auth),
        ("/api/v1/events?%zz=%&&=&limit", auth),
        ("/api/v1/events/x/frames/notanumber", ""),
        ("/api/v1/events/x/video", "X-API-Key: test-api-key-0123\r\nRange: bytes=--\r\n"),
        ("/api/v1/system/ai-processing-stream?count=-1", auth),
        ("/api/v1/system/backup/x/download?size=huge", auth),
        ("/ws/stream/x?fps=0", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"),
        ("/ws", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: x\r\nSec-WebSocket-Version: 8\r\n"),
        ("/api/v1/events", "Cookie: ;;=;access_token\r\nAuthorization: Bearer\r\n"),
    ] {
        let (status, _, _) = raw(&b, &raw_get(target, extra)).await;
        assert!((200..600).contains(&status), "{target}: {status}");
        assert_ne!(status, 500, "{target}: a 500 here would mean a handler failed");
    }
    // A directory passes the real handler's `os.path.exists` and then fails `open()`: a 500, as there.
    let (status, _, body) = raw(&b, &raw_get("/api/v1/thumbnails/2025-11-20/.", "")).await;
    assert_eq!(
        (status, body.as_slice()),
        (500, b"Internal Server Error".as_slice())
    );
    let (status, _, _) = raw(&b, &raw_get("/health", "")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn shutdown_frees_the_port() {
    let b = backend().await;
    let addr = b.addr();
    assert!(b.url().starts_with("http://127.0.0.1:"));
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    let _hello = ws.next().await;
    b.shutdown().await;
    let listener = std::net::TcpListener::bind(addr).expect("port is free after shutdown");
    drop(listener);
    // Open connections are closed too.
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    assert!(end.is_ok(), "the WebSocket was closed by the shutdown");

    // Dropping stops it as well.
    let b = backend().await;
    let addr = b.addr();
    drop(b);
    let deadline = Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(addr).await.is_ok() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "nothing listens after drop"
    );
}

/// `../shared/argusai/auth-routes.json` (read-only reference, absent in a fresh clone): how each
/// of the real backend's routes authenticates.
fn auth_routes_json() -> Option<serde_json::Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/argusai/auth-routes.json");
    let bytes = std::fs::read(path).ok()?;
    Some(serde_json::from_slice(&bytes).expect("auth-routes.json parses"))
}

/// A concrete path for a route template: `{event_id}` becomes `event_id-1` (never `stream`,
/// which ArgusAI's `/stream` suffix rule would exempt).
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(
            |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => format!("{name}-1"),
                None => seg.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_argusai_route_accepts_the_credentials_argusai_does() {
    use e2e::backend::route_auth::{classify, AuthClass};
    let Some(doc) = auth_routes_json() else {
        println!("skipped: ../shared/argusai/auth-routes.json not found");
        return;
    };
    let routes = doc["routes"].as_array().expect("routes");
    assert_eq!(routes.len(), 290);
    let b = backend().await;
    let admin = b.access_token_for("admin").expect("an admin user");
    let viewer = b.access_token_for("viewer").expect("a non-admin user");
    let c = client();
    let mut wrong = Vec::new();
    for r in routes {
        let (method, template, expected) = (
            r["method"].as_str().unwrap(),
            r["path"].as_str().unwrap(),
            r["auth"].as_str().unwrap(),
        );
        let websocket = r["kind"] == "websocket";
        let path = concrete(template);
        let class = classify(if websocket { "GET" } else { method }, &path, websocket);
        if class.as_str() != expected {
            wrong.push(format!(
                "{method} {template}: table says {}, ArgusAI {expected}",
                class.as_str()
            ));
            continue;
        }
        if websocket {
            continue;
        }
        // And the running stand-in enforces it. Refused by auth: the middleware's or the
        // dependency's 401, or the admin check's 403 (a handler's own 401, e.g. refresh without
        // a refresh token, is not auth refusing the credential).
        let send = |cred: Option<(&str, String)>| {
            let mut rb = c.request(method.parse().unwrap(), format!("{}{path}", b.url()));
            if let Some((name, value)) = cred {
                rb = rb.header(name, value);
            }
            async move {
                let resp = rb.send().await.unwrap();
                let status = resp.status().as_u16();
                let body: serde_json::Value = resp.json().await.unwrap_or_default();
                let refused = match (status, body["detail"].as_str()) {
                    (401, Some(d)) => [
                        "Not authenticated",
                        "Invalid token",
                        "Could not validate credentials",
                    ]
                    .contains(&d),
                    (403, Some(d)) => d == "Admin access required",
                    _ => false,
                };
                (status, refused)
            }
        };
        let none = send(None).await;
        let key = send(Some(("x-api-key", KEY.to_owned()))).await;
        let user = send(Some(("authorization", format!("Bearer {viewer}")))).await;
        let admin = send(Some(("authorization", format!("Bearer {admin}")))).await;
        // Which of (no credential, API key, non-admin JWT, admin JWT) get past auth.
        let want = match class {
            AuthClass::None => [true, true, true, true],
            AuthClass::JwtOrApiKey | AuthClass::SignedUrl => [false, true, true, true],
            AuthClass::JwtOnly => [false, false, true, true],
            AuthClass::AdminJwt => [false, false, false, true],
        };
        let got = [!none.1, !key.1, !user.1, !admin.1];
        if got != want {
            wrong.push(format!(
                "{method} {path} ({expected}): no credential {}, API key {}, user JWT {}, admin JWT {}",
                none.0, key.0, user.0, admin.0
            ));
        }
        if class == AuthClass::SignedUrl && key.0 != 422 {
            wrong.push(format!(
                "{method} {path}: {} without a signature, not 422",
                key.0
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} routes disagree:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[tokio::test]
async fn push_registration_takes_a_user_jwt_never_an_api_key() {
    let b = backend().await;
    let token = b.config().session_token.clone();
    let c = client();
    let url = |p: &str| format!("{}{p}", b.url());
    let body = serde_json::json!({"device_id": "iphone-1", "platform": "ios", "name": "Kitchen iPhone", "push_token": "apns-a"});

    // The key passes ArgusAI's middleware, then `get_current_user` refuses it.
    let r = c
        .post(url("/api/v1/devices"))
        .header("x-api-key", KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"detail": "Not authenticated"})
    );
    // A bad cookie is not retried with a good Bearer (the middleware would have taken it).
    let r = c
        .post(url("/api/v1/devices"))
        .header("cookie", "access_token=forged")
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let r = c
        .post(url("/api/v1/devices"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: serde_json::Value = r.json().await.unwrap();
    assert_eq!(created["is_new"], true);
    assert_eq!(created["device_id"], "iphone-1");
    let r = c
        .post(url("/api/v1/devices"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["is_new"],
        false,
        "an upsert"
    );

    let r = c
        .put(url("/api/v1/devices/iphone-1/token"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"push_token": "apns-b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .put(url("/api/v1/devices/iphone-1/preferences"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"quiet_hours_enabled": true, "quiet_hours_start": "22:00", "quiet_hours_end": "07:00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["quiet_hours_enabled"],
        true
    );
    let devices = b.push_devices();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].push_token.as_deref(), Some("apns-b"));
    assert_eq!(devices[0].quiet_hours_start.as_deref(), Some("22:00"));

    let r = c
        .put(url("/api/v1/devices/nope/token"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"push_token": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = c
        .post(url("/api/v1/devices"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"device_id": "x", "platform": "symbian"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = c
        .post(url("/api/v1/devices"))
        .bearer_auth(&token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);

    // The AI processing stream: an admin's JWT, never a key.
    let r = c
        .get(url("/api/v1/system/ai-processing-stream?count=1"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(url("/api/v1/system/ai-processing-stream?count=1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let viewer = b.access_token_for("viewer").unwrap();
    let r = c
        .get(url("/api/v1/system/ai-processing-stream?count=1"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a signed-in user who is not an admin");
    // A non-admin user registers push devices of their own.
    let r = c
        .post(url("/api/v1/devices"))
        .bearer_auth(&viewer)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["is_new"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_key_check_stalls_the_whole_backend() {
    let cost = Duration::from_millis(300);
    let b = backend_with(|c| c.api_key_verify_time = cost).await;
    let c = client();
    let events = format!("{}/api/v1/events?limit=1", b.url());
    let with_key = || c.get(&events).header("x-api-key", KEY).send();

    // Two keyed calls at once are checked one after the other.
    let started = Instant::now();
    let (x, y) = tokio::join!(with_key(), with_key());
    assert_eq!(
        (x.unwrap().status().as_u16(), y.unwrap().status().as_u16()),
        (200, 200)
    );
    assert!(started.elapsed() >= 2 * cost, "{:?}", started.elapsed());
    assert_eq!(b.api_key_checks(), 2);

    // While a key is being checked, even a route that checks nothing waits for it.
    let started = Instant::now();
    let keyed = tokio::spawn(with_key());
    while b.api_key_checks() < 3 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let r = c
        .get(format!(
            "{}/api/v1/thumbnails/{PHOTO_DATE}/cups-320x180.jpg",
            b.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        started.elapsed() >= cost,
        "answered during the key check: {:?}",
        started.elapsed()
    );
    assert_eq!(keyed.await.unwrap().unwrap().status(), 200);

    // A JWT costs no key check.
    let r = c
        .get(&events)
        .bearer_auth(&b.config().session_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(b.api_key_checks(), 3);
}
