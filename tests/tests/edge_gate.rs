//! The edge Worker, running in workerd (`wrangler dev`), as the phone meets it: what it refuses
//! before anything reaches the home connection, and that what it forwards carries a signature the
//! origin can verify with the shared code.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use argus_shared::signature::{self, BodyBinding, SignedParts};
use argus_shared::token::{sign_access_token, AccessClaims, Scope, TokenSigningKey};
use e2e::phone::{send_raw, Phone};
use e2e::worker::{EdgeWorker, WorkerSettings};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

const SECRET_HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const ISSUER: &str = "https://relay.test";
const AUDIENCE: &str = "argus-relay";

/// What the stand-in origin saw: (method, target, signature verified, device).
type Seen = Arc<Mutex<Vec<(String, String, bool, Option<String>)>>>;

/// A stand-in for the agent's tunnel listener: verifies the edge signature with the shared code.
async fn start_origin() -> (SocketAddr, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let seen = seen2.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let h = req.headers();
                        let get =
                            |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
                        let target = req
                            .uri()
                            .path_and_query()
                            .map(|p| p.to_string())
                            .unwrap_or_default();
                        let device = get("x-relay-device");
                        let ip = get("x-relay-client-ip");
                        let ok = (|| {
                            let secret = hex_decode(SECRET_HEX);
                            let ts = signature::parse_timestamp(&get("x-relay-timestamp")?).ok()?;
                            let body =
                                BodyBinding::parse_header_value(&get("x-relay-body-digest")?)
                                    .ok()?;
                            let parts = SignedParts {
                                method: req.method().as_str(),
                                path_and_query: &target,
                                device_id: device.as_deref(),
                                client_ip: ip.as_deref(),
                                body,
                            };
                            let now = std::time::SystemTime::now()
                                .duration_since(std::time::UNIX_EPOCH)
                                .ok()?
                                .as_secs();
                            signature::verify(
                                &secret,
                                &parts,
                                ts,
                                &get("x-relay-nonce")?,
                                &get("x-relay-signature")?,
                                now,
                            )
                            .ok()
                        })()
                        .is_some();
                        seen.lock()
                            .unwrap()
                            .push((req.method().to_string(), target, ok, device));
                        Ok::<_, Infallible>(
                            Response::builder()
                                .header("content-type", "application/json")
                                .header("x-origin", "stand-in")
                                .body(Full::new(Bytes::from_static(
                                    br#"{"events":[],"total_count":0}"#,
                                )))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, seen)
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn key() -> TokenSigningKey {
    TokenSigningKey::from_seed_with_thumbprint_kid([7u8; 32])
}

fn token(key: &TokenSigningKey, scope: Scope) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    sign_access_token(
        key,
        &AccessClaims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: "dev_test_1".into(),
            iat: now,
            nbf: now,
            exp: now + 600,
            jti: "jti-1".into(),
            scope,
            name: "Test phone".into(),
            platform: "ios".into(),
            app_version: Some("1.0.0".into()),
            os_version: Some("17.0".into()),
        },
    )
}

fn start_worker(origin: &str, dir: &std::path::Path) -> EdgeWorker {
    let jwks = serde_json::json!({ "keys": [key().jwk()] }).to_string();
    let settings = WorkerSettings {
        vars: vec![
            ("ORIGIN_URL".into(), origin.into()),
            ("TOKEN_ISSUER".into(), ISSUER.into()),
            ("TOKEN_AUDIENCE".into(), AUDIENCE.into()),
            ("TOKEN_JWKS".into(), jwks),
        ],
        secrets: vec![("RELAY_SIGNING_SECRET".into(), SECRET_HEX.into())],
        rate_limits: vec![],
    };
    EdgeWorker::start(dir, &settings).unwrap_or_else(|e| panic!("worker: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_gate_refuses_bad_requests_and_signs_good_ones() {
    let (origin, seen) = start_origin().await;
    let dir = tempfile::tempdir().unwrap();
    let origin_url = format!("http://{origin}");
    let d = dir.path().to_owned();
    let worker = tokio::task::spawn_blocking(move || start_worker(&origin_url, &d))
        .await
        .unwrap();
    let phone = Phone::new(&worker.url());

    // No token: 401 JSON with WWW-Authenticate; nothing reaches the origin.
    let resp = phone.get("/api/v1/events?limit=2").await;
    assert_eq!(resp.status(), 401, "{}", worker.output());
    assert!(resp.headers().get("www-authenticate").is_some());
    assert!(resp.headers().get("x-request-id").is_some());
    let (_, body) = Phone::json(resp).await;
    assert_eq!(body["error"]["code"], "unauthenticated");
    assert!(body["error"]["request_id"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));

    // A token from another install's key: 401 invalid_token.
    let other = TokenSigningKey::from_seed_with_thumbprint_kid([9u8; 32]);
    let (status, body) = phone
        .clone()
        .with_token(&token(&other, Scope::Owner))
        .get_json("/api/v1/events")
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("invalid_token"))
    );

    // A refused backend path, even with a valid token.
    let phone = phone.with_token(&token(&key(), Scope::Viewer));
    let (status, body) = phone.get_json("/openapi.json").await;
    assert_eq!(status, 404, "{body}");

    // Encoded slash: refused before routing.
    let (status, text) = send_raw(
        &worker.url(),
        "GET /api/v1/thumbnails/a%2f..%2fapp.db HTTP/1.1",
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("non_canonical_path"), "{text}");

    // Viewer scope may not write.
    let resp = phone
        .request(reqwest::Method::DELETE, "/api/v1/events/1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(
        seen.lock().unwrap().is_empty(),
        "nothing refused may reach the origin: {:?}",
        seen.lock().unwrap()
    );

    // A valid request is forwarded, signed, with the device id, and the answer comes back.
    let resp = phone.get("/api/v1/events?limit=2").await;
    assert_eq!(resp.status(), 200, "{}", worker.output());
    assert_eq!(
        resp.headers().get("x-origin").and_then(|v| v.to_str().ok()),
        Some("stand-in")
    );
    let seen_now = seen.lock().unwrap().clone();
    assert_eq!(seen_now.len(), 1);
    assert_eq!(seen_now[0].1, "/api/v1/events?limit=2");
    assert!(seen_now[0].2, "the origin verifies the edge signature");
    assert_eq!(seen_now[0].3.as_deref(), Some("dev_test_1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_origin_down_the_worker_answers_json_503() {
    let dir = tempfile::tempdir().unwrap();
    let port = e2e::process::free_port();
    let d = dir.path().to_owned();
    let worker =
        tokio::task::spawn_blocking(move || start_worker(&format!("http://127.0.0.1:{port}"), &d))
            .await
            .unwrap();
    let phone = Phone::new(&worker.url()).with_token(&token(&key(), Scope::Owner));
    let resp = phone.get("/api/v1/events").await;
    assert_eq!(resp.status(), 503, "{}", worker.output());
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let (_, body) = Phone::json(resp).await;
    assert_eq!(body["error"]["code"], "unavailable");
}
