//! User story: phones on a mobile connection get small pictures and compressed event lists.
//!
//! The real Worker (workerd) transcodes the stand-in backend's photos
//! (`../shared/testdata/photos`, served under `/api/v1/thumbnails/2025-11-20/`) and keeps the
//! variants in its edge cache; `x-relay-image` says what it did, `x-relay-cache` whether the
//! cache answered.

use std::io::Read;
use std::time::{Duration, Instant};

use argus_shared::image::{probe, Probe};
use e2e::backend::PHOTO_DATE;
use e2e::phone::Phone;
use e2e::stack::{eventually, Stack, StackOptions};

fn photo_path(name: &str) -> String {
    format!("/api/v1/thumbnails/{PHOTO_DATE}/{name}")
}

/// Width and height from the JPEG's frame header.
fn jpeg_size(bytes: &[u8]) -> (u32, u32) {
    match probe(bytes) {
        Probe::Jpeg(f) => (f.width, f.height),
        other => panic!("not a JPEG: {other:?}"),
    }
}

/// Width and height of a WebP answer, checked to be a lossy `RIFF`/`WEBP` file that decodes.
fn webp_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..4], b"RIFF", "RIFF magic");
    assert_eq!(&bytes[8..12], b"WEBP", "WEBP magic");
    let mut d = image_webp::WebPDecoder::new(std::io::Cursor::new(bytes)).expect("a WebP");
    assert!(d.is_lossy());
    let mut px = vec![0; d.output_buffer_size().expect("size")];
    d.read_image(&mut px).expect("the WebP decodes");
    d.dimensions()
}

struct Got {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

async fn get(phone: &Phone, path: &str, headers: &[(&str, &str)]) -> Got {
    let mut rb = phone.request(reqwest::Method::GET, path);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let resp = rb.send().await.expect("request sent");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.expect("body").to_vec();
    Got {
        status,
        headers,
        body,
    }
}

/// What the backend received for `path` (query included in `target`).
fn backend_targets(stack: &Stack, path: &str) -> Vec<String> {
    stack
        .backend
        .requests()
        .into_iter()
        .filter(|r| r.path() == path)
        .map(|r| r.target)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn mobile_images_are_small_cached_and_refused_to_a_revoked_device() {
    let stack = Stack::start().await;
    let device = stack.pair_phone("owner").await;
    let phone = stack.phone().with_token(&device.access_token);
    let jpeg = [("accept", "image/jpeg")];

    // The 1920×1080 photo at quality=mobile: ≤ 480 px wide JPEG, smaller than the original.
    let large = photo_path("cups-1920x1080.jpg");
    let original = stack.backend.photo_bytes("cups-1920x1080.jpg").unwrap();
    let first = get(&phone, &format!("{large}?quality=mobile"), &jpeg).await;
    assert_eq!(first.status, 200, "{}", stack.logs());
    assert_eq!(first.header("content-type"), "image/jpeg");
    let (w, h) = jpeg_size(&first.body);
    assert!(w <= 480 && (w, h) == (480, 270), "{w}x{h}");
    assert!(first.body.len() < original.len());
    assert!(
        first
            .header("x-relay-image")
            .starts_with("transcoded; variant=mobile"),
        "{}",
        first.header("x-relay-image")
    );
    assert_eq!(first.header("x-relay-cache"), "miss");
    assert!(first.header("cache-control").starts_with("private"));
    assert_eq!(first.header("vary"), "Accept");
    // Validators: the variant's own ETag, the original's Last-Modified (from the backend, through
    // the agent).
    // (Compared with the backend's at the end of this test, not to disturb the fetch counts.)
    assert!(first.header("etag").starts_with("\"r1-"));
    let variant_last_modified = first.header("last-modified").to_owned();
    assert!(!variant_last_modified.is_empty());
    eprintln!(
        "mobile: {} bytes -> {} bytes ({w}x{h})",
        original.len(),
        first.body.len()
    );
    // `quality` is the relay's: the backend never sees it.
    assert_eq!(backend_targets(&stack, &large), vec![large.clone()]);

    // Again: from the edge cache, same bytes, the origin not asked.
    let second = get(&phone, &format!("{large}?quality=mobile"), &jpeg).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.header("x-relay-cache"), "hit", "{}", stack.logs());
    assert_eq!(second.body, first.body);
    assert!(second.header("cache-control").starts_with("private"));
    assert_eq!(
        backend_targets(&stack, &large).len(),
        1,
        "the origin saw one fetch"
    );
    // The phone's own cache revalidates with the ETag.
    let etag = second.header("etag").to_owned();
    let not_modified = get(
        &phone,
        &format!("{large}?quality=mobile"),
        &[("accept", "image/jpeg"), ("if-none-match", etag.as_str())],
    )
    .await;
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.body.is_empty());

    // A browser-style Accept (WebP named, any image allowed) gets WebP: its own cache entry
    // (the key has the format), so one more origin fetch, then hits.
    let browser_accept = [(
        "accept",
        "image/avif,image/webp,image/apng,image/*,*/*;q=0.8",
    )];
    let webp = get(&phone, &format!("{large}?quality=mobile"), &browser_accept).await;
    assert_eq!(webp.status, 200, "{}", stack.logs());
    assert_eq!(webp.header("content-type"), "image/webp");
    assert_eq!(webp_size(&webp.body), (480, 270));
    assert!(
        webp.header("x-relay-image")
            .starts_with("transcoded; variant=mobile; format=webp; from=1920x1080; to=480x270"),
        "{}",
        webp.header("x-relay-image")
    );
    assert_eq!(webp.header("x-relay-cache"), "miss");
    assert_eq!(webp.header("vary"), "Accept");
    assert_ne!(webp.header("etag"), first.header("etag"));
    // The "480×270, ~15 KB" class; never more than the original.
    assert!(
        webp.body.len() < 20_000 && webp.body.len() < original.len(),
        "{}",
        webp.body.len()
    );
    eprintln!(
        "mobile: {} bytes -> {} bytes JPEG, {} bytes WebP",
        original.len(),
        first.body.len(),
        webp.body.len()
    );
    assert!(first
        .header("x-relay-image")
        .contains("format=jpeg; from=1920x1080; to=480x270"));
    // A client that takes only WebP gets the same stored WebP variant; JPEG is still JPEG.
    let webp_only = get(
        &phone,
        &format!("{large}?quality=mobile"),
        &[("accept", "image/webp")],
    )
    .await;
    assert_eq!(webp_only.status, 200);
    assert_eq!(webp_only.header("x-relay-cache"), "hit", "{}", stack.logs());
    assert_eq!(webp_only.header("content-type"), "image/webp");
    assert_eq!(webp_only.body, webp.body);
    let again = get(&phone, &format!("{large}?quality=mobile"), &jpeg).await;
    assert_eq!(again.header("x-relay-cache"), "hit");
    assert_eq!(again.header("content-type"), "image/jpeg");
    assert_eq!(again.body, first.body);
    // A wildcard alone is not a promise to decode WebP: JPEG.
    let any = get(
        &phone,
        &format!("{large}?quality=mobile"),
        &[("accept", "*/*")],
    )
    .await;
    assert_eq!(any.header("content-type"), "image/jpeg");
    assert_eq!(any.body, first.body);
    assert_eq!(
        backend_targets(&stack, &large).len(),
        2,
        "one fetch per format, the rest from the edge cache"
    );
    // A client that takes neither gets the original, untouched, and is told why.
    let png_only = get(
        &phone,
        &format!("{large}?quality=mobile"),
        &[("accept", "image/png")],
    )
    .await;
    assert_eq!(png_only.status, 200);
    assert_eq!(png_only.body, original);
    assert_eq!(
        png_only.header("x-relay-image"),
        "passthrough; reason=not_acceptable"
    );

    // The 320×180 thumbnail is already small: passed through byte for byte.
    let small = photo_path("leaf-320x180.jpg");
    let got = get(&phone, &format!("{small}?quality=mobile"), &jpeg).await;
    assert_eq!(got.status, 200);
    assert_eq!(
        got.body,
        stack.backend.photo_bytes("leaf-320x180.jpg").unwrap()
    );
    assert_eq!(got.header("x-relay-image"), "passthrough; reason=small");

    // quality=original: the backend's bytes.
    let got = get(&phone, &format!("{large}?quality=original"), &jpeg).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, original);
    assert_eq!(got.header("x-relay-image"), "passthrough; reason=original");
    // No quality and no policy default: original too (the default policy sets none).
    let got = get(&phone, &large, &jpeg).await;
    assert_eq!(got.body, original);

    // A bad quality value is the client's error, in the relay's JSON shape.
    let (s, b) = Phone::json(
        phone
            .request(reqwest::Method::GET, &format!("{large}?quality=huge"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(b["error"]["code"], "bad_request");
    assert_eq!(b["error"]["reason"], "image.quality_invalid");

    // Hostile and broken files: passed through with the reason, never a 500.
    let day = stack.backend.thumbnails_dir().join(PHOTO_DATE);
    let mut bomb = stack.backend.photo_bytes("cups-320x180.jpg").unwrap();
    let sof = bomb.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    bomb[sof + 5..sof + 9].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
    std::fs::write(day.join("bomb.jpg"), &bomb).unwrap();
    let truncated = original[..original.len() / 3].to_vec();
    std::fs::write(day.join("truncated.jpg"), &truncated).unwrap();
    let garbage: Vec<u8> = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10]
        .into_iter()
        .chain((0..5000u32).map(|i| (i * 7919 % 251) as u8))
        .collect();
    std::fs::write(day.join("garbage.jpg"), &garbage).unwrap();
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x07\x80\0\0\x048\x08\x02\0\0\0".to_vec();
    png.extend_from_slice(&[0; 64]);
    std::fs::write(day.join("photo.png"), &png).unwrap();
    for (file, bytes, reasons) in [
        ("bomb.jpg", &bomb, &["too_many_pixels"][..]),
        ("garbage.jpg", &garbage, &["corrupt"][..]),
        ("photo.png", &png, &["unsupported_format"][..]),
        // jpeg-decoder fills a scan that ends early: a transcoded picture is a correct answer too.
        ("truncated.jpg", &truncated, &["corrupt", "transcoded"][..]),
    ] {
        let started = Instant::now();
        let got = get(
            &phone,
            &format!("{}?quality=mobile", photo_path(file)),
            &jpeg,
        )
        .await;
        assert_eq!(got.status, 200, "{file}: {}", stack.logs());
        let what = got.header("x-relay-image").to_owned();
        let ok = reasons
            .iter()
            .any(|r| what == format!("passthrough; reason={r}") || what.starts_with(r));
        assert!(ok, "{file}: {what}");
        if what.starts_with("passthrough") {
            assert_eq!(&got.body, bytes, "{file}: the original, untouched");
        } else {
            assert_eq!(jpeg_size(&got.body).0, 480, "{file}");
        }
        eprintln!("{file}: {what} in {:?}", started.elapsed());
    }

    // The owner revokes the phone: within the edge-state bound (5 s) even the cached variant is
    // refused, and the refusal is the edge's own.
    let revoked_at = Instant::now();
    stack.agent.cli(&["revoke", &device.device_id]).unwrap();
    let refused = eventually(Duration::from_secs(6), || {
        let phone = phone.clone();
        let large = large.clone();
        async move {
            let got = get(&phone, &format!("{large}?quality=mobile"), &jpeg).await;
            (got.status == 401).then_some(got)
        }
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "a revoked device still got the cached image\n{}",
            stack.logs()
        )
    });
    assert!(revoked_at.elapsed() <= Duration::from_secs(6));
    let body: serde_json::Value = serde_json::from_slice(&refused.body).unwrap();
    assert_eq!(body["error"]["code"], "invalid_token");
    assert_eq!(body["error"]["reason"], "token.device_revoked");
    assert_eq!(
        backend_targets(&stack, &large).len(),
        5,
        "two transcoding fetches (JPEG, WebP), three originals (png-only, quality=original, \
         no quality), nothing for the revoked device"
    );

    // The variant's Last-Modified is the original's (the backend's, passed on by the agent).
    let origin = reqwest::Client::new()
        .get(format!("{}{large}", stack.backend.url()))
        .header("x-api-key", e2e::backend::DEFAULT_API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(
        origin.headers()["last-modified"].to_str().unwrap(),
        variant_last_modified
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_policy_gives_ios_small_images_can_turn_webp_off_and_event_lists_are_compressed() {
    let stack = Stack::start_with(StackOptions {
        policy: Some(
            "version = 1\n[images]\nplatform_quality = { ios = \"mobile\" }\nwebp = false\n".into(),
        ),
        ..StackOptions::default()
    })
    .await;
    // pair_phone pairs as platform "ios", like the ArgusAI iOS app.
    let device = stack.pair_phone("viewer").await;
    let phone = stack.phone().with_token(&device.access_token);

    // The unmodified app: `Accept: image/jpeg`, no query. It gets the mobile variant.
    let target = photo_path("water-1920x1080.jpg");
    let original = stack.backend.photo_bytes("water-1920x1080.jpg").unwrap();
    let got = get(&phone, &target, &[("accept", "image/jpeg")]).await;
    assert_eq!(got.status, 200, "{}", stack.logs());
    assert_eq!(got.header("content-type"), "image/jpeg");
    assert_eq!(jpeg_size(&got.body), (480, 270));
    assert!(got.body.len() < original.len());
    eprintln!(
        "policy default (ios=mobile): {} -> {} bytes",
        original.len(),
        got.body.len()
    );
    // It can still ask for the original.
    let got = get(
        &phone,
        &format!("{target}?quality=original"),
        &[("accept", "image/jpeg")],
    )
    .await;
    assert_eq!(got.body, original);
    // `webp = false` (a free-plan deployment keeping every transcode on the fast JPEG path): a
    // client that names WebP gets the JPEG variant.
    let browser = "image/avif,image/webp,image/apng,image/*,*/*;q=0.8";
    let got = get(&phone, &target, &[("accept", browser)]).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-type"), "image/jpeg");
    assert_eq!(jpeg_size(&got.body), (480, 270));
    assert!(got.header("x-relay-image").contains("format=jpeg"));
    // Other image routes too: an event frame (320×180 from the backend: passed through).
    let event = stack.backend.event_ids()[0].clone();
    let got = get(
        &phone,
        &format!("/api/v1/events/{event}/frames/1"),
        &[("accept", "image/jpeg")],
    )
    .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.header("x-relay-image"), "passthrough; reason=small");

    // Event lists: 50 events, plain vs compressed by the Worker for the phone. Cloudflare
    // rewrites Accept-Encoding before the Worker; the phone's own is in
    // `request.cf.clientAcceptEncoding`, so the test sets both.
    let path = "/api/v1/events?limit=50";
    let phone_accepting = |enc: &str| {
        let mut cf = e2e::phone::cf_blob("US", 64496, "TLSv1.3");
        cf["clientAcceptEncoding"] = enc.into();
        phone.clone().with_cf(cf)
    };
    let none = get(&phone, path, &[]).await;
    assert_eq!(
        none.header("content-encoding"),
        "",
        "a client that asked for none"
    );
    let plain = get(
        &phone_accepting("identity"),
        path,
        &[("accept-encoding", "identity")],
    )
    .await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("content-encoding"), "");
    let page: serde_json::Value = serde_json::from_slice(&plain.body).unwrap();
    assert_eq!(page["events"].as_array().map(Vec::len), Some(50));

    let gz = get(
        &phone_accepting("gzip"),
        path,
        &[("accept-encoding", "gzip")],
    )
    .await;
    assert_eq!(gz.status, 200);
    assert_eq!(gz.header("content-encoding"), "gzip", "{}", stack.logs());
    assert!(gz
        .header("vary")
        .to_ascii_lowercase()
        .contains("accept-encoding"));
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(gz.body.as_slice())
        .read_to_end(&mut unzipped)
        .expect("valid gzip");
    assert_eq!(unzipped, plain.body, "the same JSON, compressed");

    // What the iOS app sends. The Worker asks for br; what goes on the wire is the runtime's
    // choice among what the client accepts (locally workerd answers gzip here, br to `br` alone).
    let ios = get(
        &phone_accepting("gzip, deflate, br"),
        path,
        &[("accept-encoding", "gzip, deflate, br")],
    )
    .await;
    assert_eq!(ios.status, 200);
    let coding = ios.header("content-encoding").to_owned();
    assert!(coding == "br" || coding == "gzip", "{coding}");
    let br = get(&phone_accepting("br"), path, &[("accept-encoding", "br")]).await;
    assert_eq!(br.status, 200);
    eprintln!(
        "accept-encoding \"gzip, deflate, br\" -> {coding}; \"br\" -> {:?}",
        br.header("content-encoding")
    );
    eprintln!(
        "GET {path}: {} bytes plain, {} gzip, {} br ({:.1}x / {:.1}x smaller)",
        plain.body.len(),
        gz.body.len(),
        br.body.len(),
        plain.body.len() as f64 / gz.body.len() as f64,
        plain.body.len() as f64 / br.body.len() as f64
    );
    assert!(gz.body.len() * 4 < plain.body.len());

    // Images are not compressed again.
    let img = get(
        &phone_accepting("gzip, br"),
        &target,
        &[("accept", "image/jpeg"), ("accept-encoding", "gzip, br")],
    )
    .await;
    assert_eq!(img.header("content-encoding"), "");
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_phone_pages_through_compact_event_lists() {
    let stack = Stack::start().await;
    let device = stack.pair_phone("viewer").await;
    let phone = stack.phone().with_token(&device.access_token);
    let ids = stack.backend.event_ids();
    let total = ids.len();

    // The seed's paging and projection, names as the seed spells them.
    let compact = "/api/v1/events?page=2&per_page=20&fields=id,timestamp,thumbnail_url,description";
    let got = get(&phone, compact, &[]).await;
    assert_eq!(got.status, 200, "{}", stack.logs());
    let page: serde_json::Value = serde_json::from_slice(&got.body).expect("JSON");
    let events = page["events"].as_array().expect("events");
    let got_ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(
        got_ids,
        ids[20..40].iter().map(String::as_str).collect::<Vec<_>>()
    );
    for e in events {
        let keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        assert!(
            keys.iter()
                .all(|k| ["id", "timestamp", "thumbnail_path", "description"].contains(k)),
            "only the asked fields (ArgusAI's names): {keys:?}"
        );
        assert!(e.get("description").is_some() && e.get("timestamp").is_some());
    }
    assert_eq!(
        page["pagination"],
        serde_json::json!({"page": 2, "per_page": 20, "total": total, "has_next": total > 40})
    );
    // ...and what the backend sent besides, as it sent it.
    assert_eq!(page["total_count"], total);
    assert_eq!(page["offset"], 20);
    // The backend was asked in its own terms.
    assert_eq!(
        backend_targets(&stack, "/api/v1/events"),
        vec!["/api/v1/events?limit=20&offset=20".to_owned()]
    );

    // The same page as the iOS app asks for it: untouched by the relay, the full events.
    let full = get(&phone, "/api/v1/events?limit=20&offset=20", &[]).await;
    assert_eq!(full.status, 200);
    let full_page: serde_json::Value = serde_json::from_slice(&full.body).unwrap();
    assert!(full_page.get("pagination").is_none());
    assert_eq!(full_page["events"][0]["id"], ids[20].as_str());
    assert!(full_page["events"][0].get("processing_metadata").is_some());

    // Compressed for a phone that takes it.
    let mut cf = e2e::phone::cf_blob("US", 64496, "TLSv1.3");
    cf["clientAcceptEncoding"] = "gzip".into();
    let gz = get(
        &phone.clone().with_cf(cf),
        compact,
        &[("accept-encoding", "gzip")],
    )
    .await;
    assert_eq!(gz.header("content-encoding"), "gzip", "{}", stack.logs());
    assert_eq!(gunzip(&gz.body), got.body, "the same JSON, compressed");
    eprintln!(
        "20-event page: {} bytes as the backend sends it, {} projected, {} projected + gzip",
        full.body.len(),
        got.body.len(),
        gz.body.len()
    );
    assert!(
        got.body.len() * 4 < full.body.len(),
        "projection saves most of it"
    );

    // The tunnel hop itself is gzip: what the Worker sends the agent, asked directly.
    let tunnel = stack.tunnel().with_device(&device);
    let hop = tunnel
        .request(reqwest::Method::GET, compact)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(hop.headers()["content-encoding"], "gzip");
    let hop_bytes = hop.bytes().await.unwrap();
    assert_eq!(gunzip(&hop_bytes), got.body);

    // Validators: the same list again is a 304 with no body.
    let etag = got.header("etag").to_owned();
    assert!(etag.starts_with("W/\""), "{etag}");
    let again = get(&phone, compact, &[("if-none-match", &etag)]).await;
    assert_eq!(again.status, 304, "{}", stack.logs());
    assert!(again.body.is_empty());
    let app_etag = full.header("etag").to_owned();
    let again = get(
        &phone,
        "/api/v1/events?limit=20&offset=20",
        &[("if-none-match", &app_etag)],
    )
    .await;
    assert_eq!(again.status, 304, "the app's own call has validators too");

    // Bad parameters: a JSON 400 that says which, and nothing reaches the backend.
    let before = backend_targets(&stack, "/api/v1/events").len();
    for (bad, says) in [
        ("/api/v1/events?per_page=1000", "per_page"),
        ("/api/v1/events?page=0", "page"),
        ("/api/v1/events?page=2&limit=10", "mixed"),
        ("/api/v1/events?fields=id,pasword", "pasword"),
    ] {
        let got = get(&phone, bad, &[]).await;
        assert_eq!(got.status, 400, "{bad}");
        let err: serde_json::Value = serde_json::from_slice(&got.body).expect("JSON error");
        assert_eq!(err["error"]["code"], "bad_request", "{bad}");
        let message = err["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{bad}: {message}");
        assert!(err["error"]["request_id"].is_string());
    }
    assert_eq!(backend_targets(&stack, "/api/v1/events").len(), before);
}
