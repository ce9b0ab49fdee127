//! The edge Worker, running in workerd (`wrangler dev`), as the phone meets it: what it refuses
//! before anything reaches the home connection, that what it forwards carries a signature the
//! origin can verify with the shared code, and that it takes token keys and revoked devices from
//! the agent's edge state (MAC-checked, at most `MAX_AGE_SECS` old, fail closed).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argus_shared::edge_state::{
    self, EdgeState, RevokedDevice, EDGE_STATE_PATH, MAC_HEADER, MAX_AGE_SECS, MAX_DOCUMENT_BYTES,
};
use argus_shared::signature::{self, BodyBinding, SignedParts};
use argus_shared::token::{sign_access_token, AccessClaims, Jwk, Jwks, Scope, TokenSigningKey};
use e2e::phone::{send_raw, Phone};
use e2e::signer::unix_now;
use e2e::worker::{EdgeWorker, WorkerSettings};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Bytes;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

const SECRET_HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const ISSUER: &str = "https://relay.test";
const AUDIENCE: &str = "argus-relay";
const DEVICE: &str = "dev_test_1";
const REVOKED_DEVICE: &str = "dev_revoked_1";

/// What the stand-in origin was forwarded: (method, target, signature verified, device).
type Seen = Arc<Mutex<Vec<(String, String, bool, Option<String>)>>>;

/// How the stand-in answers `GET /relay/v1/edge-state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StateMode {
    /// The document with a MAC over the request's nonce, as the agent does.
    Good,
    /// The document with a MAC over another nonce (a replayed or altered answer).
    BadMac,
    /// A JSON 500.
    ServerError,
    /// A properly MACed document padded past `MAX_DOCUMENT_BYTES`, with its `Content-Length`.
    TooLarge,
    /// The same, chunked (no `Content-Length`): only counting the bytes read catches it.
    TooLargeChunked,
}

/// What the stand-in's edge state says; tests change it at runtime.
struct StateDoc {
    keys: Vec<Jwk>,
    revoked: Vec<String>,
    mode: StateMode,
    max_token_lifetime_secs: u64,
}

/// One edge-state request as the stand-in saw it: the edge signature verified for `GET`
/// [`EDGE_STATE_PATH`] with no device, no client IP and the digest of the empty body.
#[derive(Debug, Clone)]
struct StateFetch {
    verified: bool,
}

/// A stand-in for the agent's tunnel listener: verifies the edge signature with the shared code
/// and serves the edge state.
struct Origin {
    addr: SocketAddr,
    /// Every request except the edge-state fetches.
    forwarded: Seen,
    state_fetches: Arc<Mutex<Vec<StateFetch>>>,
    doc: Arc<Mutex<StateDoc>>,
}

impl Origin {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn forwarded(&self) -> Vec<(String, String, bool, Option<String>)> {
        self.forwarded.lock().unwrap().clone()
    }

    fn forwarded_for(&self, device: &str) -> usize {
        self.forwarded()
            .iter()
            .filter(|f| f.3.as_deref() == Some(device))
            .count()
    }

    fn state_fetches(&self) -> Vec<StateFetch> {
        self.state_fetches.lock().unwrap().clone()
    }

    fn set_mode(&self, mode: StateMode) {
        self.doc.lock().unwrap().mode = mode;
    }

    fn revoke(&self, device: &str) {
        self.doc.lock().unwrap().revoked.push(device.into());
    }

    fn add_key(&self, key: &TokenSigningKey) {
        self.doc.lock().unwrap().keys.push(key.jwk());
    }

    fn remove_key(&self, key: &TokenSigningKey) {
        self.doc.lock().unwrap().keys.retain(|k| k.kid != key.kid);
    }
}

/// The edge signature of `req`, checked with the shared code.
fn edge_signature_ok(
    req: &Request<hyper::body::Incoming>,
    target: &str,
    device: Option<&str>,
    ip: Option<&str>,
    body: BodyBinding,
) -> bool {
    let h = req.headers();
    let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
    (|| {
        let secret = hex_decode(SECRET_HEX);
        let ts = signature::parse_timestamp(&get("x-relay-timestamp")?).ok()?;
        let link = get("x-relay-link");
        let parts = SignedParts {
            method: req.method().as_str(),
            path_and_query: target,
            device_id: device,
            client_ip: ip,
            body,
            link: link.as_deref(),
        };
        signature::verify(
            &secret,
            &parts,
            ts,
            &get("x-relay-nonce")?,
            &get("x-relay-signature")?,
            unix_now(),
        )
        .ok()
    })()
    .is_some()
}

type Body = BoxBody<Bytes, Infallible>;

fn json_response(status: u16, body: Vec<u8>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-origin", "stand-in")
        .body(Full::new(Bytes::from(body)).boxed())
        .unwrap()
}

/// The answer to an edge-state request: the document of `doc`, MACed as its mode says.
fn edge_state_answer(
    req: &Request<hyper::body::Incoming>,
    doc: &Mutex<StateDoc>,
    fetches: &Mutex<Vec<StateFetch>>,
) -> Response<Body> {
    let h = req.headers();
    let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let empty = BodyBinding::of_bytes(b"");
    let verified = req.method() == hyper::Method::GET
        && get("x-relay-device").is_none()
        && get("x-relay-client-ip").is_none()
        && get("x-relay-body-digest").as_deref() == Some(empty.to_header_value().as_str())
        && edge_signature_ok(req, EDGE_STATE_PATH, None, None, empty);
    fetches.lock().unwrap().push(StateFetch { verified });
    if !verified {
        return json_response(401, br#"{"error":{"code":"invalid_signature"}}"#.to_vec());
    }
    let nonce = get("x-relay-nonce").unwrap_or_default();
    let (mode, mut body) = {
        let doc = doc.lock().unwrap();
        let state = EdgeState {
            generated_at: unix_now(),
            jwks: Jwks {
                keys: doc.keys.clone(),
            },
            revoked: doc
                .revoked
                .iter()
                .map(|id| RevokedDevice {
                    id: id.clone(),
                    revoked_at: unix_now() as i64,
                })
                .collect(),
            max_token_lifetime_secs: doc.max_token_lifetime_secs,
        };
        (doc.mode, serde_json::to_vec(&state).unwrap())
    };
    let secret = hex_decode(SECRET_HEX);
    match mode {
        StateMode::ServerError => json_response(500, br#"{"error":{"code":"internal"}}"#.to_vec()),
        StateMode::Good | StateMode::BadMac => {
            let mac_nonce = if mode == StateMode::Good {
                nonce
            } else {
                format!("{nonce}-other")
            };
            let mac = edge_state::response_mac(&secret, &mac_nonce, &body).unwrap();
            let mut resp = json_response(200, body);
            resp.headers_mut().insert(MAC_HEADER, mac.parse().unwrap());
            resp
        }
        StateMode::TooLarge | StateMode::TooLargeChunked => {
            // Still valid JSON (trailing whitespace) with a valid MAC: only the size is wrong.
            body.resize(MAX_DOCUMENT_BYTES + 1024, b' ');
            let mac = edge_state::response_mac(&secret, &nonce, &body).unwrap();
            let mut resp = if mode == StateMode::TooLarge {
                json_response(200, body)
            } else {
                let chunks: Vec<Result<_, Infallible>> = body
                    .chunks(16 * 1024)
                    .map(|c| Ok(hyper::body::Frame::data(Bytes::copy_from_slice(c))))
                    .collect();
                Response::builder()
                    .header("content-type", "application/json")
                    .body(StreamBody::new(futures_util::stream::iter(chunks)).boxed())
                    .unwrap()
            };
            resp.headers_mut().insert(MAC_HEADER, mac.parse().unwrap());
            resp
        }
    }
}

async fn start_origin(keys: Vec<Jwk>, revoked: Vec<String>) -> Origin {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = Origin {
        addr: listener.local_addr().unwrap(),
        forwarded: Arc::default(),
        state_fetches: Arc::default(),
        doc: Arc::new(Mutex::new(StateDoc {
            keys,
            revoked,
            mode: StateMode::Good,
            // The agent's default: 900 s tokens plus the allowance.
            max_token_lifetime_secs: 960,
        })),
    };
    let (seen, fetches, doc) = (
        origin.forwarded.clone(),
        origin.state_fetches.clone(),
        origin.doc.clone(),
    );
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (seen, fetches, doc) = (seen.clone(), fetches.clone(), doc.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (seen, fetches, doc) = (seen.clone(), fetches.clone(), doc.clone());
                    async move {
                        let target = req
                            .uri()
                            .path_and_query()
                            .map(|p| p.to_string())
                            .unwrap_or_default();
                        if target == EDGE_STATE_PATH {
                            return Ok::<_, Infallible>(edge_state_answer(&req, &doc, &fetches));
                        }
                        let h = req.headers();
                        let get =
                            |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
                        let device = get("x-relay-device");
                        let ip = get("x-relay-client-ip");
                        let ok = get("x-relay-body-digest")
                            .and_then(|d| BodyBinding::parse_header_value(&d).ok())
                            .is_some_and(|body| {
                                edge_signature_ok(
                                    &req,
                                    &target,
                                    device.as_deref(),
                                    ip.as_deref(),
                                    body,
                                )
                            });
                        seen.lock()
                            .unwrap()
                            .push((req.method().to_string(), target, ok, device));
                        Ok(json_response(
                            200,
                            br#"{"events":[],"total_count":0}"#.to_vec(),
                        ))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    origin
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
    token_for(key, scope, DEVICE)
}

fn token_for(key: &TokenSigningKey, scope: Scope, device: &str) -> String {
    let now = unix_now();
    sign_access_token(
        key,
        &AccessClaims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: device.into(),
            iat: now,
            nbf: now,
            exp: now + 600,
            jti: format!("jti-{device}"),
            scope,
            name: "Test phone".into(),
            platform: "ios".into(),
            app_version: Some("1.0.0".into()),
            os_version: Some("17.0".into()),
        },
    )
}

fn start_worker(origin: &str, dir: &std::path::Path) -> EdgeWorker {
    let settings = WorkerSettings {
        vars: vec![
            ("ORIGIN_URL".into(), origin.into()),
            ("TOKEN_ISSUER".into(), ISSUER.into()),
            ("TOKEN_AUDIENCE".into(), AUDIENCE.into()),
        ],
        secrets: vec![("RELAY_SIGNING_SECRET".into(), SECRET_HEX.into())],
        ..WorkerSettings::default()
    };
    EdgeWorker::start(dir, &settings).unwrap_or_else(|e| panic!("worker: {e}"))
}

/// The stand-in origin (serving `key()` and revoking [`REVOKED_DEVICE`]) and a Worker pointed at it.
async fn start_stack(dir: &std::path::Path) -> (Origin, EdgeWorker) {
    let origin = start_origin(vec![key().jwk()], vec![REVOKED_DEVICE.into()]).await;
    let origin_url = origin.url();
    let d = dir.to_owned();
    let worker = tokio::task::spawn_blocking(move || start_worker(&origin_url, &d))
        .await
        .unwrap();
    (origin, worker)
}

/// Status, `error.code` and `error.reason` of a GET.
async fn outcome(phone: &Phone, path: &str) -> (u16, Option<String>, Option<String>) {
    let (status, body) = phone.get_json(path).await;
    let field = |f: &str| body["error"][f].as_str().map(str::to_owned);
    (status, field("code"), field("reason"))
}

/// Polls `GET path` until `done` holds for its outcome or `deadline` (after `since`) passes.
/// Returns how long after `since` the first such answer came, if one did.
async fn time_until(
    phone: &Phone,
    path: &str,
    since: Instant,
    deadline: Duration,
    done: impl Fn(&(u16, Option<String>, Option<String>)) -> bool,
) -> Option<Duration> {
    while since.elapsed() < deadline {
        if done(&outcome(phone, path).await) {
            return Some(since.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// The bound the Worker promises for changes at the agent: `MAX_AGE_SECS`, plus one second for
/// the request that observes it.
fn change_bound() -> Duration {
    Duration::from_secs(MAX_AGE_SECS + 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_gate_refuses_bad_requests_and_signs_good_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (origin, worker) = start_stack(dir.path()).await;
    let phone = Phone::new(&worker.url());

    // No token: 401 JSON with WWW-Authenticate; nothing reaches the origin, not even a state fetch.
    let resp = phone.get("/api/v1/events?limit=2").await;
    assert_eq!(resp.status(), 401, "{}", worker.output());
    assert!(resp.headers().get("www-authenticate").is_some());
    assert!(resp.headers().get("x-request-id").is_some());
    let (_, body) = Phone::json(resp).await;
    assert_eq!(body["error"]["code"], "unauthenticated");
    assert!(body["error"]["request_id"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    assert!(origin.state_fetches().is_empty());

    // A token from another install's key: 401 invalid_token.
    let other = TokenSigningKey::from_seed_with_thumbprint_kid([9u8; 32]);
    let (status, body) = phone
        .clone()
        .with_token(&token(&other, Scope::Owner))
        .get_json("/api/v1/events")
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("invalid_token")),
        "{body}"
    );

    // A valid token of a device the agent lists as revoked: 401 invalid_token, device_revoked.
    let resp = phone
        .clone()
        .with_token(&token_for(&key(), Scope::Owner, REVOKED_DEVICE))
        .get("/api/v1/events")
        .await;
    assert_eq!(resp.status(), 401, "{}", worker.output());
    assert!(resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("invalid_token")));
    let (_, body) = Phone::json(resp).await;
    assert_eq!(body["error"]["code"], "invalid_token", "{body}");
    assert_eq!(body["error"]["reason"], "token.device_revoked", "{body}");

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
        origin.forwarded().is_empty(),
        "nothing refused may reach the origin: {:?}",
        origin.forwarded()
    );

    // A valid request is forwarded, signed, with the device id, and the answer comes back.
    let resp = phone.get("/api/v1/events?limit=2").await;
    assert_eq!(resp.status(), 200, "{}", worker.output());
    assert_eq!(
        resp.headers().get("x-origin").and_then(|v| v.to_str().ok()),
        Some("stand-in")
    );
    let seen_now = origin.forwarded();
    assert_eq!(seen_now.len(), 1);
    assert_eq!(seen_now[0].1, "/api/v1/events?limit=2");
    assert!(seen_now[0].2, "the origin verifies the edge signature");
    assert_eq!(seen_now[0].3.as_deref(), Some(DEVICE));

    // The edge state was fetched (signed like a forwarded request, device "-") and then reused:
    // these requests came well within MAX_AGE_SECS of each other.
    let fetches = origin.state_fetches();
    assert!(!fetches.is_empty());
    assert!(fetches.iter().all(|f| f.verified), "{fetches:?}");
    assert!(
        fetches.len() < 4,
        "the state is cached per isolate: {fetches:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn methods_the_route_table_does_not_list_are_refused_not_served_as_get() {
    let dir = tempfile::tempdir().unwrap();
    let (origin, worker) = start_stack(dir.path()).await;
    let bearer = format!("Authorization: Bearer {}", token(&key(), Scope::Owner));

    // WebDAV and custom verbs on a route that serves GET: a JSON 405, nothing forwarded.
    for method in ["PROPFIND", "MOVE", "MKCOL", "REPORT", "PURGE"] {
        let (status, text) = send_raw(
            &worker.url(),
            &format!("{method} /api/v1/events HTTP/1.1\r\n{bearer}"),
        )
        .await;
        assert_eq!(status, 405, "{method}: {text}\n{}", worker.output());
        assert!(text.contains("\"method_not_allowed\""), "{method}: {text}");
        assert!(text.contains("application/json"), "{method}: {text}");
    }
    assert!(
        origin.forwarded().is_empty(),
        "an unlisted method reached the origin: {:?}",
        origin.forwarded()
    );

    // What workerd answers itself, before any Worker code runs (docs/security.md, "Methods"):
    // an asterisk target cannot become a JS Request URL, CONNECT goes to a `connect` handler
    // the Worker does not have, and methods outside kj's list (or not upper-case) are refused
    // by its HTTP parser. Plain text, nothing forwarded; if the runtime ever lets one through,
    // this fails and the Worker's JSON answer should be checked for it here.
    for (head, runtime_status) in [
        ("GET * HTTP/1.1", 500),
        ("OPTIONS * HTTP/1.1", 500),
        ("CONNECT 127.0.0.1:443 HTTP/1.1", 500),
        ("CONNECT /api/v1/events HTTP/1.1", 500),
        ("FROB /api/v1/events HTTP/1.1", 501),
        ("get /api/v1/events HTTP/1.1", 501),
    ] {
        let (status, text) = send_raw(&worker.url(), &format!("{head}\r\n{bearer}")).await;
        assert_eq!(status, runtime_status, "{head}: {text}");
        assert!(!text.contains("application/json"), "{head}: {text}");
    }
    assert!(origin.forwarded().is_empty(), "{:?}", origin.forwarded());

    // The same request as GET is served: the refusal is the method's.
    let (status, text) = send_raw(
        &worker.url(),
        &format!("GET /api/v1/events HTTP/1.1\r\n{bearer}"),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(origin.forwarded().len(), 1);
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
    assert_eq!(body["error"]["reason"], "edge_state.unavailable", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_verified_edge_state_device_requests_fail_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (origin, worker) = start_stack(dir.path()).await;
    let phone = Phone::new(&worker.url()).with_token(&token(&key(), Scope::Owner));

    // An answer MACed for another request: 503 JSON, nothing forwarded.
    origin.set_mode(StateMode::BadMac);
    let resp = phone.get("/api/v1/events").await;
    assert_eq!(resp.status(), 503, "{}", worker.output());
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let (_, body) = Phone::json(resp).await;
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert_eq!(body["error"]["reason"], "edge_state.bad_mac", "{body}");

    // The agent's edge-state endpoint failing (a JSON 500): 503, the 500 is not passed through.
    origin.set_mode(StateMode::ServerError);
    let (status, code, reason) = outcome(&phone, "/api/v1/events").await;
    assert_eq!(
        (status, code.as_deref(), reason.as_deref()),
        (503, Some("unavailable"), Some("edge_state.unavailable"))
    );
    assert_eq!(origin.forwarded_for(DEVICE), 0, "{:?}", origin.forwarded());

    // A document over MAX_DOCUMENT_BYTES, declared or streamed: 503, however well MACed.
    for mode in [StateMode::TooLarge, StateMode::TooLargeChunked] {
        origin.set_mode(mode);
        let (status, code, reason) = outcome(&phone, "/api/v1/events").await;
        assert_eq!(
            (status, code.as_deref(), reason.as_deref()),
            (503, Some("unavailable"), Some("edge_state.too_large")),
            "{mode:?}"
        );
    }
    assert_eq!(origin.forwarded_for(DEVICE), 0, "{:?}", origin.forwarded());

    // Public routes need no edge state.
    let (status, body) = Phone::new(&worker.url()).get_json("/api/v1/health").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(origin.forwarded().len(), 1, "{:?}", origin.forwarded());

    // Failures are not cached: as soon as the agent answers properly, requests pass.
    origin.set_mode(StateMode::Good);
    let (status, _, _) = outcome(&phone, "/api/v1/events").await;
    assert_eq!(status, 200, "{}", worker.output());
    assert_eq!(origin.forwarded_for(DEVICE), 1);

    // A cached copy is not used past MAX_AGE_SECS when the agent stops answering properly.
    origin.set_mode(StateMode::BadMac);
    let since = Instant::now();
    let took = time_until(
        &phone,
        "/api/v1/events",
        since,
        change_bound() + Duration::from_secs(1),
        |o| o.0 == 503,
    )
    .await;
    eprintln!(
        "stale copy dropped after {took:?} (bound {:?})",
        change_bound()
    );
    let took = took.expect("the stale copy must stop being used");
    assert!(took <= change_bound(), "{took:?}");
    assert!(origin.state_fetches().iter().all(|f| f.verified));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_revoked_at_the_agent_is_refused_within_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let (origin, worker) = start_stack(dir.path()).await;
    let phone = Phone::new(&worker.url()).with_token(&token(&key(), Scope::Owner));

    let (status, _, _) = outcome(&phone, "/api/v1/events").await;
    assert_eq!(status, 200, "{}", worker.output());

    origin.revoke(DEVICE);
    let since = Instant::now();
    let took = time_until(
        &phone,
        "/api/v1/events",
        since,
        change_bound() + Duration::from_secs(1),
        |o| {
            o.0 == 401
                && o.1.as_deref() == Some("invalid_token")
                && o.2.as_deref() == Some("token.device_revoked")
        },
    )
    .await;
    eprintln!(
        "revocation reached the edge after {took:?} (MAX_AGE_SECS = {MAX_AGE_SECS}, bound {:?})",
        change_bound()
    );
    let took = took.expect("a revoked device must be refused");
    assert!(took <= change_bound(), "{took:?}");

    // Once refused, it stays refused and nothing more of it is forwarded.
    let forwarded = origin.forwarded_for(DEVICE);
    for _ in 0..3 {
        let (status, _, reason) = outcome(&phone, "/api/v1/events").await;
        assert_eq!(
            (status, reason.as_deref()),
            (401, Some("token.device_revoked"))
        );
    }
    assert_eq!(origin.forwarded_for(DEVICE), forwarded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotated_at_the_agent_are_used_within_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let (origin, worker) = start_stack(dir.path()).await;
    let new_key = TokenSigningKey::from_seed_with_thumbprint_kid([11u8; 32]);
    let old_phone = Phone::new(&worker.url()).with_token(&token(&key(), Scope::Owner));
    let new_phone = Phone::new(&worker.url()).with_token(&token(&new_key, Scope::Owner));

    // Before the agent publishes the new key, its tokens are unknown.
    let (status, code, reason) = outcome(&new_phone, "/api/v1/events").await;
    assert_eq!(
        (status, code.as_deref(), reason.as_deref()),
        (401, Some("invalid_token"), Some("unknown_kid")),
        "{}",
        worker.output()
    );

    // Rotation: the new key is added (the old one still valid) ...
    origin.add_key(&new_key);
    let since = Instant::now();
    let took = time_until(
        &new_phone,
        "/api/v1/events",
        since,
        change_bound() + Duration::from_secs(1),
        |o| o.0 == 200,
    )
    .await;
    eprintln!(
        "new key accepted after {took:?} (bound {:?})",
        change_bound()
    );
    let took = took.expect("a token of the new key must be accepted");
    assert!(took <= change_bound(), "{took:?}");
    let (status, _, _) = outcome(&old_phone, "/api/v1/events").await;
    assert_eq!(status, 200, "the previous key is still published");

    // ... and later the old key retired.
    origin.remove_key(&key());
    let since = Instant::now();
    let took = time_until(
        &old_phone,
        "/api/v1/events",
        since,
        change_bound() + Duration::from_secs(1),
        |o| o.0 == 401 && o.2.as_deref() == Some("unknown_kid"),
    )
    .await;
    eprintln!(
        "retired key refused after {took:?} (bound {:?})",
        change_bound()
    );
    let took = took.expect("a token of a retired key must be refused");
    assert!(took <= change_bound(), "{took:?}");
    let (status, _, _) = outcome(&new_phone, "/api/v1/events").await;
    assert_eq!(status, 200);
    assert!(origin.state_fetches().iter().all(|f| f.verified));
}

/// A token of [`DEVICE`] signed with `key`, issued now and living `lifetime_secs`.
fn token_living(key: &TokenSigningKey, lifetime_secs: u64) -> String {
    let now = unix_now();
    sign_access_token(
        key,
        &AccessClaims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: DEVICE.into(),
            iat: now,
            nbf: now,
            exp: now + lifetime_secs,
            jti: format!("jti-lives-{lifetime_secs}"),
            scope: Scope::Owner,
            name: "Test phone".into(),
            platform: "ios".into(),
            app_version: Some("1.0.0".into()),
            os_version: Some("17.0".into()),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_living_longer_than_the_agent_issues_them_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (origin, worker) = start_stack(dir.path()).await;
    // Signed with the agent's real key (a signing bug, a leaked key), valid in every other way.
    let ten_minutes = Phone::new(&worker.url()).with_token(&token_living(&key(), 600));
    let a_year = Phone::new(&worker.url()).with_token(&token_living(&key(), 365 * 24 * 3600));
    assert_eq!(
        outcome(&ten_minutes, "/api/v1/events").await.0,
        200,
        "{}",
        worker.output()
    );
    assert_eq!(
        outcome(&a_year, "/api/v1/events").await,
        (
            401,
            Some("invalid_token".into()),
            Some("token_lifetime_too_long".into())
        )
    );
    assert_eq!(origin.forwarded_for(DEVICE), 1);

    // The agent's lifetime cap comes with its edge state: an owner who set 5-minute tokens
    // (300 s + 60 s allowance) gets 10-minute ones refused at the edge too, within the bound.
    origin.doc.lock().unwrap().max_token_lifetime_secs = 360;
    let since = Instant::now();
    let took = time_until(
        &ten_minutes,
        "/api/v1/events",
        since,
        change_bound() + Duration::from_secs(1),
        |o| o.0 == 401 && o.2.as_deref() == Some("token_lifetime_too_long"),
    )
    .await;
    let took = took.expect("the agent's lower cap must reach the edge");
    assert!(took <= change_bound(), "{took:?}");
    let five_minutes = Phone::new(&worker.url()).with_token(&token_living(&key(), 300));
    assert_eq!(outcome(&five_minutes, "/api/v1/events").await.0, 200);
}
