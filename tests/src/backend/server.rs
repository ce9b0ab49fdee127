//! The HTTP side of the stand-in: connection handling, the auth "middleware", routing, handlers.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};

use super::data::{self, Camera, StoredEvent};
use super::query::{Query, Validator};
use super::route_auth::{self, User};
use super::routes::{self, Match, Route};
use super::users::{self, Users};
use super::{ws, BackendConfig, RecordedRequest, RequestLog};

pub(crate) type Body = UnsyncBoxBody<Bytes, io::Error>;
pub(crate) type Resp = Response<Body>;

/// A photo of the test data, kept in memory.
pub(crate) struct Photo {
    pub name: String,
    pub bytes: Bytes,
}

/// The stand-in's on-disk layout, mirroring ArgusAI's `backend/data/`: `app.db` beside
/// `thumbnails/<date>/<file>`. Removed when dropped.
pub(crate) struct Layout {
    pub _dir: tempfile::TempDir,
    pub data: PathBuf,
    pub thumbnails: PathBuf,
    pub app_db: PathBuf,
}

pub(crate) struct State {
    pub config: BackendConfig,
    pub events: Vec<StoredEvent>,
    pub by_id: HashMap<String, usize>,
    pub cameras: Vec<Camera>,
    /// 320×180 photos (event thumbnails, frames, the default camera stream).
    pub small: Vec<Photo>,
    /// Full-size photos (the `quality=high` camera stream).
    pub large: Vec<Photo>,
    pub layout: Layout,
    pub routes: Vec<Route>,
    pub openapi: Option<Bytes>,
    pub log: RequestLog,
    pub notify: broadcast::Sender<String>,
    pub active_ws: AtomicUsize,
    pub shutdown: watch::Receiver<bool>,
    pub started: Instant,
    pub faults: Faults,
    /// Users, web sessions (login/refresh) and their limits.
    pub users: Users,
    /// ArgusAI's single event loop: every request takes a turn through it, and the API-key
    /// check (bcrypt) keeps it for its whole modelled cost, stalling everyone else.
    pub event_loop: tokio::sync::Mutex<()>,
    /// `X-API-Key` checks begun (each one holds `event_loop` for its cost).
    pub api_key_checks: std::sync::atomic::AtomicU64,
    /// Push-notification devices registered through `/api/v1/devices`.
    pub push_devices: super::push::PushDevices,
    /// Live camera streams running (`/api/v1/cameras/{id}/stream`).
    pub camera_streams: AtomicUsize,
    /// Every level a live stream was asked for, in order: at its start and by `quality_change`.
    pub stream_qualities: std::sync::Mutex<Vec<&'static str>>,
}

/// The TCP peer of a request (request extension), for the limits keyed on the client address.
#[derive(Clone, Copy)]
pub(crate) struct Peer(pub SocketAddr);

/// Fault modes for proxy tests, switched at run time ([`super::StandInBackend::set_delay`],
/// [`super::StandInBackend::set_cut_after`]). Off by default; the real backend has none.
#[derive(Debug)]
pub(crate) struct Faults {
    /// Every HTTP answer (not WebSocket handshakes) waits this long first (0 = off).
    pub delay_ms: std::sync::atomic::AtomicU64,
    /// Requests taken while `delay_ms` was on whose answer is not yet given.
    pub delayed: std::sync::atomic::AtomicU64,
    /// Streamed downloads (backup, SSE) die after this many bytes, as if the process crashed
    /// (`u64::MAX` = off): the connection is aborted mid-body.
    pub cut_after: std::sync::atomic::AtomicU64,
    /// Every HTTP answer of a known length announces its whole length, sends half of it, and
    /// the connection closes (a backend that dies or half-closes mid-body).
    pub half_bodies: std::sync::atomic::AtomicBool,
    /// The process's life: bumped when it is killed ([`super::StandInBackend::kill`]); every
    /// connection and task of an earlier life ends at once.
    pub life: watch::Sender<u64>,
}

/// One request answered slowly, in [`Faults::delayed`] while it lives.
struct Delayed<'a>(&'a Faults);

impl<'a> Delayed<'a> {
    fn count(faults: &'a Faults) -> Self {
        faults
            .delayed
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Delayed(faults)
    }
}

impl Drop for Delayed<'_> {
    fn drop(&mut self) {
        self.0
            .delayed
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            delay_ms: std::sync::atomic::AtomicU64::new(0),
            delayed: std::sync::atomic::AtomicU64::new(0),
            cut_after: std::sync::atomic::AtomicU64::new(u64::MAX),
            half_bodies: std::sync::atomic::AtomicBool::new(false),
            life: watch::Sender::new(0),
        }
    }
}

impl State {
    /// Runs `fut` on the runtime until it ends, the backend shuts down or is killed.
    pub(crate) fn spawn<F>(&self, fut: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let mut stop = self.shutdown.clone();
        let mut life = self.faults.life.subscribe();
        let born = *life.borrow_and_update();
        tokio::spawn(async move {
            tokio::select! {
                _ = fut => {}
                _ = stopped(&mut stop) => {}
                _ = life.wait_for(|l| *l != born) => {}
            }
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Serving.

/// Resolves once the backend is told to stop (or the backend is gone).
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

pub(crate) async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    let mut stop = state.shutdown.clone();
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let st = state.clone();
                    state.spawn(async move {
                        let svc = service_fn(move |req| {
                            let st = st.clone();
                            async move { Ok::<_, Infallible>(handle(st, peer, req).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .timer(TokioTimer::new())
                            .serve_connection(TokioIo::new(stream), svc)
                            .with_upgrades()
                            .await;
                    });
                }
                // Out of descriptors or similar: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Response helpers.

pub(crate) fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub(crate) fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

pub(crate) fn response(status: StatusCode, content_type: Option<&str>, body: Body) -> Resp {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    if let Some(ct) = content_type {
        set(r.headers_mut(), "content-type", ct);
    }
    r
}

pub(crate) fn set(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(HeaderName::from_static(name), v);
    }
}

fn append(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.append(HeaderName::from_static(name), v);
    }
}

pub(crate) fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Resp {
    match serde_json::to_vec(value) {
        Ok(body) => response(status, Some("application/json"), full(body)),
        Err(_) => internal_error(),
    }
}

pub(crate) fn detail(status: StatusCode, msg: &str) -> Resp {
    json(status, &serde_json::json!({ "detail": msg }))
}

fn validation(v: Validator) -> Resp {
    json(StatusCode::UNPROCESSABLE_ENTITY, &v.into_body())
}

/// Starlette's `ServerErrorMiddleware` answer.
fn internal_error() -> Resp {
    response(
        StatusCode::INTERNAL_SERVER_ERROR,
        Some("text/plain; charset=utf-8"),
        full("Internal Server Error"),
    )
}

pub(crate) fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn etag_of(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    format!("\"{}\"", &hex::encode(digest)[..32])
}

/// `If-None-Match` lists `etag` (or `*`).
fn etag_matches(h: &HeaderMap, etag: &str) -> bool {
    h.get_all("if-none-match")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .map(str::trim)
                .any(|t| t == "*" || t == etag || t.strip_prefix("W/") == Some(etag))
        })
}

// ---------------------------------------------------------------------------------------------
// The request pipeline.

async fn handle(st: Arc<State>, peer: SocketAddr, mut req: Request<Incoming>) -> Resp {
    req.extensions_mut().insert(Peer(peer));
    if st.config.record_requests {
        st.log.push(RecordedRequest {
            method: req.method().as_str().to_owned(),
            target: req.uri().to_string(),
            headers: req
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
        });
    }

    // uvicorn hands the app the percent-decoded path; routing and the auth middleware see that.
    let raw_path = req.uri().path().to_owned();
    let path = percent_encoding::percent_decode_str(&raw_path)
        .decode_utf8_lossy()
        .into_owned();
    let query = Query::parse(req.uri().query());

    let origin = header(req.headers(), "origin").map(str::to_owned);
    let delay = st
        .faults
        .delay_ms
        .load(std::sync::atomic::Ordering::Relaxed);
    // Counted until this function returns (the answer is given), cancelled or not.
    let delayed = (delay > 0 && !ws::is_upgrade(&req)).then(|| Delayed::count(&st.faults));
    if delayed.is_some() {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let mut resp = if ws::is_upgrade(&req) {
        // Starlette's BaseHTTPMiddleware (auth) and CORS ignore WebSocket scopes; the handshake
        // still waits for its turn on the event loop.
        drop(st.event_loop.lock().await);
        match routes::find(&st.routes, &path, "GET", true) {
            Match::Full(route, params) => {
                ws::accept(&st, &mut req, &route.template, &params, &query)
            }
            // Starlette closes an unrouted WebSocket before accepting: uvicorn answers 403.
            _ => response(StatusCode::FORBIDDEN, None, empty()),
        }
    } else if let Some(denied) = auth(&st, &req, &path).await {
        // Read what the client is still sending first: a connection closed on an unread body is
        // reset, and the reset can destroy the 401 before the agent reads it (a streamed body
        // then looked like an unreachable backend, 502, one run in many).
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            http_body_util::Limited::new(req.into_body(), 1 << 20).collect(),
        )
        .await;
        denied
    } else if let Some(preflight) = cors_preflight(&st, &req) {
        preflight
    } else {
        let mut resp = route(&st, req, &path, &query).await;
        cors_simple(&st, origin, &mut resp);
        resp
    };
    // uvicorn's default header.
    set(resp.headers_mut(), "server", "uvicorn");
    if st
        .faults
        .half_bodies
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        return half_body(resp).await;
    }
    resp
}

/// Fault mode: `resp` with its whole length announced, half of its body sent, then the
/// connection dropped (answers of unknown length and upgrades pass untouched).
async fn half_body(resp: Resp) -> Resp {
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    if hyper::body::Body::size_hint(&body)
        .exact()
        .is_none_or(|n| n < 2)
    {
        return Response::from_parts(parts, body);
    }
    let Ok(collected) = body.collect().await else {
        return Response::from_parts(parts, empty());
    };
    let bytes = collected.to_bytes();
    set(
        &mut parts.headers,
        "content-length",
        &bytes.len().to_string(),
    );
    let half = bytes.slice(..bytes.len() / 2);
    let chunks: [Result<Frame<Bytes>, io::Error>; 2] = [
        Ok(Frame::data(half)),
        Err(io::Error::other("stand-in: closed mid-body")),
    ];
    let stream = StreamBody::new(futures_util::stream::iter(chunks));
    Response::from_parts(parts, stream.boxed_unsync())
}

// --- Auth (see `route_auth`) -----------------------------------------------------------------

/// The cookie named `name` (Starlette's parser: the last occurrence wins).
pub(crate) fn cookie(h: &HeaderMap, name: &str) -> Option<String> {
    let mut found = None;
    for v in h.get_all("cookie").iter() {
        let v = String::from_utf8_lossy(v.as_bytes());
        for part in v.split(';') {
            let (k, val) = match part.split_once('=') {
                Some((k, val)) => (k.trim(), val.trim()),
                None => ("", part.trim()),
            };
            if k == name {
                found = Some(val.trim_matches('"').to_owned());
            }
        }
    }
    found
}

/// The user a JWT (`access_token` cookie or Bearer) signs in, as ArgusAI's decode + user-row
/// lookup would find it; `None`: invalid.
/// The JWT `get_current_user` reads: the `access_token` cookie if present and not empty (an
/// invalid one is not retried with the Bearer token), else `Authorization: Bearer`.
pub(crate) fn current_user_token(h: &HeaderMap) -> Option<String> {
    cookie(h, "access_token")
        .filter(|t| !t.is_empty())
        .or_else(|| {
            header(h, "authorization")
                .and_then(|a| a.strip_prefix("Bearer "))
                .map(str::to_owned)
        })
}

/// [`BackendConfig::session_token`] is an admin's, for older tests.
pub(crate) fn user_for_token(st: &State, token: &str) -> Option<User> {
    if token == st.config.session_token {
        return Some(User {
            id: "stand-in-admin".to_owned(),
            username: "admin".to_owned(),
            admin: true,
        });
    }
    st.users.verify(token).map(|u| User {
        id: u.id.clone(),
        username: u.username.clone(),
        admin: u.role == users::UserRole::Admin,
    })
}

/// ArgusAI's `AuthMiddleware` and the endpoint's auth dependency: `None` lets the request
/// through, `Some` is the answer (401/403).
async fn auth(st: &State, req: &Request<Incoming>, path: &str) -> Option<Resp> {
    route_auth::authenticate(st, req.method(), path, req.headers())
        .await
        .err()
}

// --- CORSMiddleware ---------------------------------------------------------------------------

fn origin_allowed(st: &State, origin: &str) -> bool {
    st.config
        .cors_origins
        .iter()
        .any(|o| o == "*" || o == origin)
}

fn cors_preflight(st: &State, req: &Request<Incoming>) -> Option<Resp> {
    let h = req.headers();
    if req.method() != Method::OPTIONS || !h.contains_key("access-control-request-method") {
        return None;
    }
    let origin = header(h, "origin")?;
    if !origin_allowed(st, origin) {
        return Some(response(
            StatusCode::BAD_REQUEST,
            Some("text/plain; charset=utf-8"),
            full("Disallowed CORS origin"),
        ));
    }
    let mut r = response(
        StatusCode::OK,
        Some("text/plain; charset=utf-8"),
        full("OK"),
    );
    let rh = r.headers_mut();
    set(rh, "access-control-allow-origin", origin);
    set(
        rh,
        "access-control-allow-methods",
        "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT",
    );
    set(rh, "access-control-max-age", "600");
    set(rh, "access-control-allow-credentials", "true");
    if let Some(req_headers) = header(h, "access-control-request-headers") {
        set(rh, "access-control-allow-headers", req_headers);
    }
    set(rh, "vary", "Origin");
    Some(r)
}

fn cors_simple(st: &State, origin: Option<String>, resp: &mut Resp) {
    let Some(origin) = origin else { return };
    if !origin_allowed(st, &origin) {
        return;
    }
    let h = resp.headers_mut();
    set(h, "access-control-allow-origin", &origin);
    set(h, "access-control-allow-credentials", "true");
    append(h, "vary", "Origin");
}

// --- Router -----------------------------------------------------------------------------------

async fn route(st: &Arc<State>, req: Request<Incoming>, path: &str, query: &Query) -> Resp {
    let method = req.method().as_str().to_owned();
    match routes::find(&st.routes, path, &method, false) {
        Match::Full(route, params) => {
            let template = route.template.clone();
            dispatch(st, req, &template, &params, query).await
        }
        Match::Partial(route) => {
            let mut r = detail(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
            set(r.headers_mut(), "allow", &route.methods.join(", "));
            r
        }
        Match::None => not_found_or_redirect(st, &req, path),
    }
}

/// 404, or with `redirect_slashes` Starlette's 307 to the path with the trailing slash toggled.
fn not_found_or_redirect(st: &State, req: &Request<Incoming>, path: &str) -> Resp {
    if st.config.redirect_slashes && path != "/" {
        let other = match path.strip_suffix('/') {
            Some(p) => p.to_owned(),
            None => format!("{path}/"),
        };
        if !matches!(
            routes::find(&st.routes, &other, req.method().as_str(), false),
            Match::None
        ) {
            let raw = req.uri().path();
            let raw_other = match raw.strip_suffix('/') {
                Some(p) => p.to_owned(),
                None => format!("{raw}/"),
            };
            let host = header(req.headers(), "host").unwrap_or("127.0.0.1");
            let location = match req.uri().query() {
                Some(q) => format!("http://{host}{raw_other}?{q}"),
                None => format!("http://{host}{raw_other}"),
            };
            let mut r = response(StatusCode::TEMPORARY_REDIRECT, None, empty());
            set(r.headers_mut(), "location", &location);
            return r;
        }
    }
    detail(StatusCode::NOT_FOUND, "Not Found")
}

/// The client address ArgusAI's limits key on (see [`users::client_ip`]).
fn client_of(req: &Request<Incoming>) -> std::net::IpAddr {
    let peer = req
        .extensions()
        .get::<Peer>()
        .map_or(SocketAddr::from(([127, 0, 0, 1], 0)), |p| p.0);
    users::client_ip(peer, req.headers())
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> &'a str {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

async fn dispatch(
    st: &Arc<State>,
    req: Request<Incoming>,
    template: &str,
    params: &[(String, String)],
    q: &Query,
) -> Resp {
    let head = req.method() == Method::HEAD;
    match template {
        "/" => json(
            StatusCode::OK,
            &serde_json::json!({"name": "ArgusAI API", "version": "1.0.0", "status": "running"}),
        ),
        "/health" => health(st),
        "/metrics" => prometheus(st),
        "/openapi.json" => openapi(st, head),
        "/docs" => html(DOCS_HTML, head),
        "/redoc" => html(REDOC_HTML, head),
        "/docs/oauth2-redirect" => html(OAUTH2_REDIRECT_HTML, head),
        "/api/v1/events" => {
            if !st.config.event_list_time.is_zero() {
                tokio::time::sleep(st.config.event_list_time).await;
            }
            list_events(st, q)
        }
        "/api/v1/events/{event_id}" => get_event(st, param(params, "event_id")),
        "/api/v1/events/{event_id}/thumbnail" => {
            event_thumbnail(st, req.headers(), param(params, "event_id"), q)
        }
        "/api/v1/events/{event_id}/video" => video(st, req.headers(), param(params, "event_id")),
        "/api/v1/events/{event_id}/frames" => frames(st, param(params, "event_id")),
        "/api/v1/events/{event_id}/frames/{frame_number}" => frame(
            st,
            req.headers(),
            param(params, "event_id"),
            param(params, "frame_number"),
        ),
        "/api/v1/thumbnails/{date}/{filename}" => thumbnail_file(
            st,
            req.headers(),
            param(params, "date"),
            param(params, "filename"),
        ),
        "/api/v1/metrics" => api_metrics(st),
        "/api/v1/cameras" => json(
            StatusCode::OK,
            &st.cameras.iter().map(camera_json).collect::<Vec<_>>(),
        ),
        "/api/v1/cameras/{camera_id}" => {
            let id = param(params, "camera_id");
            match st.cameras.iter().find(|c| c.id == id) {
                Some(c) => json(StatusCode::OK, &camera_json(c)),
                None => detail(StatusCode::NOT_FOUND, &format!("Camera {id} not found")),
            }
        }
        "/api/v1/devices"
        | "/api/v1/devices/{device_id}"
        | "/api/v1/devices/{id}"
        | "/api/v1/devices/{device_id}/token"
        | "/api/v1/devices/{device_id}/preferences" => {
            push_devices(st, req, template, params).await
        }
        "/api/v1/system/ai-processing-stream" => sse(st, q),
        "/api/v1/system/backup/{timestamp}/download" => {
            backup_download(st, param(params, "timestamp"), q)
        }
        "/api/v1/system/restore" => restore(req).await,
        "/api/v1/auth/login" => {
            let ip = client_of(&req);
            st.users.login(ip, req).await
        }
        "/api/v1/auth/refresh" => {
            let ip = client_of(&req);
            st.users.refresh(ip, req).await
        }
        "/api/v1/auth/me" => st.users.me(req.headers()),
        _ => detail(
            StatusCode::NOT_IMPLEMENTED,
            "Not implemented by the stand-in ArgusAI backend",
        ),
    }
}

// --- Handlers ---------------------------------------------------------------------------------

fn health(st: &State) -> Resp {
    json(
        StatusCode::OK,
        &serde_json::json!({
            "status": "healthy",
            "camera_count": st.cameras.len(),
            "version": "1.0.0",
            "uptime_seconds": st.started.elapsed().as_secs(),
            "secrets": {"encryption_key_configured": true, "jwt_secret_configured": true},
            "protect_ws": {
                "state": "connected",
                "is_healthy": true,
                "last_message_age_seconds": 1,
                "reconnect_attempts": 0,
                "controller_name": "UDM Pro",
                "last_error": null
            }
        }),
    )
}

fn prometheus(st: &State) -> Resp {
    let mut s = String::new();
    s.push_str(
        "# HELP argusai_app_info ArgusAI application information\n# TYPE argusai_app_info gauge\n",
    );
    s.push_str("argusai_app_info{version=\"1.0.0\"} 1.0\n");
    s.push_str("# HELP argusai_cameras_active Number of active cameras\n# TYPE argusai_cameras_active gauge\n");
    s.push_str(&format!("argusai_cameras_active {}.0\n", st.cameras.len()));
    s.push_str("# HELP argusai_events_processed_total Events processed by the AI pipeline\n");
    s.push_str("# TYPE argusai_events_processed_total counter\n");
    for cam in &st.cameras {
        let n = st
            .events
            .iter()
            .filter(|e| e.event.camera_id == cam.id)
            .count();
        s.push_str(&format!(
            "argusai_events_processed_total{{camera_id=\"{}\",status=\"success\"}} {n}.0\n",
            cam.id
        ));
    }
    s.push_str("# HELP argusai_http_requests_total HTTP requests received\n# TYPE argusai_http_requests_total counter\n");
    s.push_str(&format!("argusai_http_requests_total {}.0\n", st.log.len()));
    s.push_str("# HELP argusai_protect_ws_connected Whether the Protect WebSocket is connected\n");
    s.push_str("# TYPE argusai_protect_ws_connected gauge\nargusai_protect_ws_connected 1.0\n");
    response(
        StatusCode::OK,
        Some("text/plain; version=0.0.4; charset=utf-8"),
        full(s),
    )
}

fn openapi(st: &State, head: bool) -> Resp {
    let body = st.openapi.clone().unwrap_or_else(|| {
        Bytes::from_static(
            br#"{"openapi":"3.1.0","info":{"title":"ArgusAI API","version":"1.0.0"},"paths":{}}"#,
        )
    });
    let len = body.len();
    let mut r = response(
        StatusCode::OK,
        Some("application/json"),
        if head { empty() } else { full(body) },
    );
    set(r.headers_mut(), "content-length", &len.to_string());
    r
}

fn html(page: &'static str, head: bool) -> Resp {
    let mut r = response(
        StatusCode::OK,
        Some("text/html; charset=utf-8"),
        if head { empty() } else { full(page) },
    );
    set(r.headers_mut(), "content-length", &page.len().to_string());
    r
}

const DOCS_HTML: &str = r##"<!DOCTYPE html>
<html>
<head>
<link type="text/css" rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">
<link rel="shortcut icon" href="https://fastapi.tiangolo.com/img/favicon.png">
<title>ArgusAI API - Swagger UI</title>
</head>
<body>
<div id="swagger-ui">
</div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<!-- `SwaggerUIBundle` is now available on the page -->
<script>
const ui = SwaggerUIBundle({
    url: '/openapi.json',
    "dom_id": "#swagger-ui",
"layout": "BaseLayout",
"deepLinking": true,
"showExtensions": true,
"showCommonExtensions": true,
oauth2RedirectUrl: window.location.origin + '/docs/oauth2-redirect',
    presets: [
        SwaggerUIBundle.presets.apis,
        SwaggerUIBundle.SwaggerUIStandalonePreset
        ],
    })
</script>
</body>
</html>
"##;

const REDOC_HTML: &str = r#"<!DOCTYPE html>
<html>
<head>
<title>ArgusAI API - ReDoc</title>
<meta charset="utf-8"/>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="shortcut icon" href="https://fastapi.tiangolo.com/img/favicon.png">
</head>
<body>
<noscript>ReDoc requires Javascript to function. Please enable it to browse the documentation.</noscript>
<redoc spec-url="/openapi.json"></redoc>
<script src="https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js"> </script>
</body>
</html>
"#;

const OAUTH2_REDIRECT_HTML: &str = "<!doctype html>\n<html lang=\"en-US\">\n<head>\n<title>Swagger UI: OAuth2 Redirect</title>\n</head>\n<body>\n</body>\n</html>\n";

fn split_list(s: Option<&str>) -> Option<Vec<String>> {
    s.map(|s| {
        s.split(',')
            .map(|p| p.trim().to_lowercase())
            .filter(|p| !p.is_empty())
            .collect()
    })
}

#[derive(Serialize)]
struct EventList<'a> {
    events: Vec<&'a data::Event>,
    total_count: usize,
    has_more: bool,
    next_offset: Option<u64>,
    limit: i64,
    offset: i64,
}

fn list_events(st: &State, q: &Query) -> Resp {
    let mut v = Validator::default();
    let camera_id = q.get("camera_id").map(str::to_owned);
    let start = v.query_datetime(q, "start_time");
    let end = v.query_datetime(q, "end_time");
    let min_confidence = v.query_int(q, "min_confidence", None, Some(0), Some(100));
    let object_types = split_list(q.get("object_types"));
    let alert = v.query_bool(q, "alert_triggered");
    let search = v
        .query_str(q, "search_query", Some(1), Some(500))
        .map(|s| s.to_lowercase());
    let source_type = split_list(q.get("source_type"));
    let smart = split_list(q.get("smart_detection_type"));
    let mode = split_list(q.get("analysis_mode"));
    let has_fallback = v.query_bool(q, "has_fallback");
    let low_confidence = v.query_bool(q, "low_confidence");
    let limit = v
        .query_int(q, "limit", Some(50), Some(1), Some(500))
        .unwrap_or(50);
    let offset = v
        .query_int(q, "offset", Some(0), Some(0), None)
        .unwrap_or(0);
    let sort = v.query_pattern(q, "sort_order", "desc", &["asc", "desc"], "^(asc|desc)$");
    if !v.is_ok() {
        return validation(v);
    }
    let in_list = |list: &Option<Vec<String>>, value: Option<&str>| match list {
        None => true,
        Some(l) if l.is_empty() => true,
        Some(l) => value.is_some_and(|v| l.iter().any(|x| x == &v.to_lowercase())),
    };
    let mut matching: Vec<&StoredEvent> = st
        .events
        .iter()
        .filter(|e| {
            let ev = &e.event;
            camera_id.as_ref().is_none_or(|c| &ev.camera_id == c)
                && start.is_none_or(|s| e.ts as f64 >= s.floor())
                && end.is_none_or(|t| e.ts as f64 <= t)
                && min_confidence.is_none_or(|m| ev.confidence >= m)
                && object_types.as_ref().is_none_or(|l| {
                    l.is_empty() || ev.objects_detected.iter().any(|o| l.contains(o))
                })
                && alert.is_none_or(|a| ev.alert_triggered == a)
                && search
                    .as_ref()
                    .is_none_or(|s| ev.description.to_lowercase().contains(s.as_str()))
                && in_list(&source_type, Some(&ev.source_type))
                && in_list(&smart, ev.smart_detection_type.as_deref())
                && in_list(&mode, ev.analysis_mode.as_deref())
                && has_fallback.is_none_or(|f| ev.fallback_reason.is_some() == f)
                && low_confidence.is_none_or(|l| ev.low_confidence == l)
        })
        .collect();
    if sort == "asc" {
        matching.reverse();
    }
    let total = matching.len();
    let start_at = usize::try_from(offset).unwrap_or(usize::MAX).min(total);
    let take = usize::try_from(limit).unwrap_or(0);
    let page: Vec<&data::Event> = matching[start_at..]
        .iter()
        .take(take)
        .map(|e| &e.event)
        .collect();
    let has_more = start_at + page.len() < total;
    json(
        StatusCode::OK,
        &EventList {
            events: page,
            total_count: total,
            has_more,
            next_offset: has_more.then(|| offset as u64 + limit as u64),
            limit,
            offset,
        },
    )
}

fn find_event<'a>(st: &'a State, id: &str) -> Option<(usize, &'a StoredEvent)> {
    st.by_id.get(id).map(|&i| (i, &st.events[i]))
}

fn event_not_found() -> Resp {
    detail(StatusCode::NOT_FOUND, "Event not found")
}

fn get_event(st: &State, id: &str) -> Resp {
    match find_event(st, id) {
        Some((_, e)) => json(StatusCode::OK, &e.event),
        None => event_not_found(),
    }
}

/// A JPEG answer with validators; 304 when the client already has it.
fn jpeg(
    req_headers: &HeaderMap,
    bytes: Bytes,
    cache_control: &str,
    last_modified: Option<std::time::SystemTime>,
) -> Resp {
    let etag = etag_of(&bytes);
    let lm = last_modified.map(httpdate::fmt_http_date);
    let not_modified = if req_headers.contains_key("if-none-match") {
        etag_matches(req_headers, &etag)
    } else {
        match (
            header(req_headers, "if-modified-since")
                .and_then(|v| httpdate::parse_http_date(v).ok()),
            last_modified,
        ) {
            (Some(since), Some(m)) => m <= since + Duration::from_secs(1),
            _ => false,
        }
    };
    let mut r = if not_modified {
        response(StatusCode::NOT_MODIFIED, None, empty())
    } else {
        response(StatusCode::OK, Some("image/jpeg"), full(bytes))
    };
    let h = r.headers_mut();
    set(h, "etag", &etag);
    set(h, "cache-control", cache_control);
    if let Some(lm) = lm {
        set(h, "last-modified", &lm);
    }
    r
}

/// `GET /api/v1/thumbnails/{date}/{filename}`: as naive as the real one — it joins the decoded path
/// parameters onto the thumbnails directory, so `/api/v1/thumbnails/%2e%2e/app.db` is `data/app.db`.
fn thumbnail_file(st: &State, req_headers: &HeaderMap, date: &str, filename: &str) -> Resp {
    let path = st.layout.thumbnails.join(date).join(filename);
    let origin = header(req_headers, "origin").unwrap_or("");
    let allowed = if origin.is_empty() {
        "*".to_owned()
    } else if st.config.cors_origins.iter().any(|o| o == origin) {
        origin.to_owned()
    } else {
        st.config
            .cors_origins
            .first()
            .cloned()
            .unwrap_or_else(|| "*".to_owned())
    };
    let cors = |r: &mut Resp| {
        let h = r.headers_mut();
        set(h, "access-control-allow-origin", &allowed);
        set(
            h,
            "access-control-allow-credentials",
            if allowed == "*" { "false" } else { "true" },
        );
        set(h, "cache-control", "public, max-age=86400");
    };
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(_) => {
            let mut r = response(StatusCode::NOT_FOUND, None, empty());
            cors(&mut r);
            return r;
        }
    };
    // `os.path.exists` is true for a directory, and `open()` then raises: a 500.
    let bytes = match std::fs::read(&path) {
        Ok(b) => Bytes::from(b),
        Err(_) => return internal_error(),
    };
    // The real handler serves every file as image/jpeg, the database too.
    let mut r = jpeg(
        req_headers,
        bytes,
        "public, max-age=86400",
        meta.modified().ok(),
    );
    cors(&mut r);
    r
}

/// `GET /api/v1/events/{event_id}/thumbnail`: a signed URL — `signature` and `expires` are
/// required query parameters (422 without them, before anything else looks at the event), the
/// expiry is checked first, then the HMAC ([`super::StandInBackend::signed_thumbnail_query`]).
/// Nothing in ArgusAI hands such URLs out, so phones use `/api/v1/thumbnails/{path}`.
fn event_thumbnail(st: &State, req_headers: &HeaderMap, id: &str, q: &Query) -> Resp {
    let mut v = Validator::default();
    let signature = q.get("signature");
    if signature.is_none() {
        v.missing("query", "signature");
    }
    let expires = v.query_int(q, "expires", None, None, None);
    if q.get("expires").is_none() {
        v.missing("query", "expires");
    }
    let (Some(signature), Some(expires), true) = (signature, expires, v.is_ok()) else {
        return validation(v);
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    if expires < now || !signature_valid(&st.config.encryption_key, id, expires, signature) {
        return detail(StatusCode::FORBIDDEN, "Invalid or expired signature");
    }
    let Some((_, e)) = find_event(st, id) else {
        return event_not_found();
    };
    let Some(photo) = st.small.get(e.photo) else {
        return detail(StatusCode::NOT_FOUND, "Thumbnail not found");
    };
    let created = std::time::UNIX_EPOCH + Duration::from_secs(e.ts.max(0) as u64);
    jpeg(
        req_headers,
        photo.bytes.clone(),
        "private, max-age=3600",
        Some(created),
    )
}

/// ArgusAI's thumbnail URL signature: HMAC-SHA256, hex, over `event_id:expires`, keyed with
/// `ENCRYPTION_KEY`.
pub(crate) fn thumbnail_signature(key: &str, event_id: &str, expires: i64) -> String {
    use hmac::Mac;
    let mut mac = <hmac::Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(format!("{event_id}:{expires}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn signature_valid(key: &str, event_id: &str, expires: i64, signature: &str) -> bool {
    // `hmac.compare_digest`: no early exit on the first differing byte.
    let expected = thumbnail_signature(key, event_id, expires);
    expected.len() == signature.len()
        && expected
            .bytes()
            .zip(signature.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// `CameraResponse` of a stand-in camera.
fn camera_json(c: &Camera) -> serde_json::Value {
    serde_json::json!({
        "id": c.id,
        "name": c.name,
        "type": if c.source_type == "protect" { "rtsp" } else { c.source_type },
        "source_type": c.source_type,
        "is_enabled": true,
        "is_doorbell": c.doorbell,
        "frame_rate": 5,
        "motion_enabled": true,
        "motion_sensitivity": "medium",
        "motion_cooldown": 30,
        "motion_algorithm": "mog2",
        "analysis_mode": "multi_frame",
        "created_at": "2025-10-01T08:00:00Z",
        "updated_at": "2025-11-20T08:00:00Z",
    })
}

/// Reads a JSON request body (at most 1 MiB); FastAPI's 422 when it is not JSON.
async fn json_body(req: Request<Incoming>) -> Result<serde_json::Value, Resp> {
    let body = http_body_util::Limited::new(req.into_body(), 1 << 20);
    let bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Err(detail(
                StatusCode::BAD_REQUEST,
                "Request body unreadable or too large",
            ))
        }
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        json(
            StatusCode::UNPROCESSABLE_ENTITY,
            &serde_json::json!({"detail": [{
                "type": "json_invalid",
                "loc": ["body", e.column()],
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": e.to_string()},
            }]}),
        )
    })
}

/// `/api/v1/devices…`: push registration, for the signed-in user (`route_auth` let only a user
/// JWT through).
async fn push_devices(
    st: &State,
    req: Request<Incoming>,
    template: &str,
    params: &[(String, String)],
) -> Resp {
    let Some(user) = route_auth::current_user(st, req.headers()) else {
        return detail(StatusCode::UNAUTHORIZED, "Not authenticated");
    };
    let key = params.first().map_or("", |(_, v)| v.as_str()).to_owned();
    let method = req.method().clone();
    let devices = &st.push_devices;
    match (method, template) {
        (Method::GET, _) => devices.list(&user),
        (Method::DELETE, _) => devices.delete(&user, &key),
        (method, template) => {
            let body = match json_body(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            match (method, template) {
                (Method::POST, _) => devices.register(&user, &body, uuid_v4()),
                (_, "/api/v1/devices/{device_id}/token") => {
                    devices.update_token(&user, &key, &body)
                }
                (_, "/api/v1/devices/{device_id}/preferences") => {
                    devices.update_preferences(&user, &key, &body)
                }
                _ => devices.update(&user, &key, &body),
            }
        }
    }
}

/// A random UUID (version 4), as ArgusAI's row ids.
fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    if getrandom::getrandom(&mut b).is_err() {
        b = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            .to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn frame_count(e: &StoredEvent) -> i64 {
    e.event.frame_count_used.unwrap_or(1).max(1)
}

fn frames(st: &State, id: &str) -> Resp {
    let Some((_, e)) = find_event(st, id) else {
        return event_not_found();
    };
    let n = frame_count(e);
    let ts = e.event.frame_timestamps.clone().unwrap_or_default();
    let list: Vec<serde_json::Value> = (1..=n)
        .map(|k| {
            serde_json::json!({
                "frame_number": k,
                "url": format!("/api/v1/events/{}/frames/{k}", e.event.id),
                "timestamp_seconds": ts.get(k as usize - 1).copied().unwrap_or(0.0),
            })
        })
        .collect();
    json(
        StatusCode::OK,
        &serde_json::json!({"event_id": e.event.id, "frames": list, "total_count": n}),
    )
}

fn frame(st: &State, req_headers: &HeaderMap, id: &str, number: &str) -> Resp {
    let mut v = Validator::default();
    let n = v.int_in("path", "frame_number", number, None, None);
    let Some(n) = n else { return validation(v) };
    let Some((_, e)) = find_event(st, id) else {
        return event_not_found();
    };
    if n < 1 || n > frame_count(e) || st.small.is_empty() {
        return detail(StatusCode::NOT_FOUND, "Frame not found");
    }
    let photo = &st.small[(e.photo + n as usize - 1) % st.small.len()];
    jpeg(
        req_headers,
        photo.bytes.clone(),
        "public, max-age=86400",
        None,
    )
}

/// Parses a single `bytes=` range against `len`: `Ok(None)` means "ignore the header" (absent,
/// malformed, several ranges), `Err(())` means unsatisfiable.
fn parse_range(h: &HeaderMap, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(v) = header(h, "range") else {
        return Ok(None);
    };
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| -> Option<u64> {
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Ok(None),
        (true, false) => match num(b) {
            None => Ok(None),
            Some(0) => Err(()),
            Some(_) if len == 0 => Err(()),
            Some(n) => Ok(Some((len.saturating_sub(n), len - 1))),
        },
        (false, _) => {
            let Some(start) = num(a) else { return Ok(None) };
            let end = if b.is_empty() {
                u64::MAX
            } else {
                match num(b) {
                    Some(e) => e,
                    None => return Ok(None),
                }
            };
            if end < start {
                return Ok(None);
            }
            if start >= len {
                return Err(());
            }
            Ok(Some((start, end.min(len - 1))))
        }
    }
}

/// `GET /api/v1/events/{event_id}/video` (`HEAD` is not routed: 405, as on ArgusAI).
fn video(st: &State, req_headers: &HeaderMap, id: &str) -> Resp {
    let Some((index, e)) = find_event(st, id) else {
        return event_not_found();
    };
    let len = st.config.video_size;
    let stream = data::video_stream_id(st.config.seed, index);
    let etag = format!("\"v-{:016x}-{len}\"", stream);
    let last_modified =
        httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_secs(e.ts.max(0) as u64));
    let (status, start, end) = match parse_range(req_headers, len) {
        Err(()) => {
            let mut r = response(StatusCode::RANGE_NOT_SATISFIABLE, None, empty());
            let h = r.headers_mut();
            set(h, "content-range", &format!("bytes */{len}"));
            set(h, "accept-ranges", "bytes");
            return r;
        }
        Ok(Some((s, e))) => (StatusCode::PARTIAL_CONTENT, s, e),
        Ok(None) => (StatusCode::OK, 0, len.saturating_sub(1)),
    };
    let count = if len == 0 { 0 } else { end - start + 1 };
    let body = if count == 0 {
        empty()
    } else {
        match usize::try_from(count) {
            Ok(n) => full(data::synthetic(stream, data::VIDEO_HEADER, start, n)),
            Err(_) => return internal_error(),
        }
    };
    let mut r = response(status, Some("video/mp4"), body);
    let h = r.headers_mut();
    set(h, "accept-ranges", "bytes");
    set(h, "content-length", &count.to_string());
    set(h, "etag", &etag);
    set(h, "last-modified", &last_modified);
    set(h, "cache-control", "private, max-age=3600");
    if status == StatusCode::PARTIAL_CONTENT {
        set(h, "content-range", &format!("bytes {start}-{end}/{len}"));
    }
    r
}

fn api_metrics(st: &State) -> Resp {
    let n = st.events.len();
    json(
        StatusCode::OK,
        &serde_json::json!({
            "queue_depth": 0,
            "events_processed": {"success": n, "failure": 0, "total": n},
            "processing_time_ms": {"p50": 2341.2, "p95": 4523.8, "p99": 4891.1},
            "pipeline_errors": {}
        }),
    )
}

/// `GET /api/v1/system/ai-processing-stream`: Server-Sent Events, one processed event every
/// `interval_ms` (default `config.sse_interval`), `count` of them (default
/// `config.sse_default_count`), each written and flushed as its own chunk; the first at once.
fn sse(st: &Arc<State>, q: &Query) -> Resp {
    let mut v = Validator::default();
    let count = v.query_int(
        q,
        "count",
        Some(st.config.sse_default_count as i64),
        Some(0),
        Some(1_000_000),
    );
    let interval = v.query_int(
        q,
        "interval_ms",
        Some(st.config.sse_interval.as_millis() as i64),
        Some(0),
        Some(600_000),
    );
    if !v.is_ok() {
        return validation(v);
    }
    let count = count.unwrap_or(0) as u64;
    let interval = Duration::from_millis(interval.unwrap_or(100) as u64);
    let st = st.clone();
    let cut_after = st
        .faults
        .cut_after
        .load(std::sync::atomic::Ordering::Relaxed);
    let stream = futures_util::stream::unfold((0u64, 0u64), move |(i, sent)| {
        let st = st.clone();
        async move {
            if i >= count {
                return None;
            }
            if sent >= cut_after {
                let e = io::Error::other("stand-in: died mid-stream");
                return Some((Err(e), (count, sent)));
            }
            if i > 0 {
                tokio::time::sleep(interval).await;
            }
            let record = if st.events.is_empty() {
                serde_json::json!({ "seq": i })
            } else {
                let e = &st.events[(i as usize) % st.events.len()].event;
                serde_json::json!({ "seq": i, "event": e })
            };
            let chunk = format!("id: {i}\nevent: event_processed\ndata: {record}\n\n");
            let sent = sent + chunk.len() as u64;
            Some((
                Ok::<_, io::Error>(Frame::data(Bytes::from(chunk))),
                (i + 1, sent),
            ))
        }
    });
    let mut r = response(
        StatusCode::OK,
        Some("text/event-stream; charset=utf-8"),
        StreamBody::new(stream).boxed_unsync(),
    );
    let h = r.headers_mut();
    set(h, "cache-control", "no-cache");
    set(h, "x-accel-buffering", "no");
    r
}

const CHUNK: u64 = 64 * 1024;

/// `GET /api/v1/system/backup/{timestamp}/download`: `size` (default `config.backup_size`)
/// deterministic bytes, chunked, generated as they are sent.
fn backup_download(st: &State, timestamp: &str, q: &Query) -> Resp {
    let mut v = Validator::default();
    let size = v.query_int(
        q,
        "size",
        Some(st.config.backup_size.min(i64::MAX as u64) as i64),
        Some(0),
        Some(1 << 34),
    );
    if !v.is_ok() {
        return validation(v);
    }
    let size = size.unwrap_or(0) as u64;
    let cut_after = st
        .faults
        .cut_after
        .load(std::sync::atomic::Ordering::Relaxed);
    let stream = futures_util::stream::unfold(0u64, move |pos| async move {
        if pos >= size {
            return None;
        }
        if pos >= cut_after {
            return Some((Err(io::Error::other("stand-in: died mid-stream")), size));
        }
        let n = CHUNK
            .min(size - pos)
            .min(cut_after.saturating_sub(pos).max(1)) as usize;
        let chunk = data::synthetic(data::BACKUP_STREAM, data::BACKUP_HEADER, pos, n);
        Some((
            Ok::<_, io::Error>(Frame::data(Bytes::from(chunk))),
            pos + n as u64,
        ))
    });
    let mut r = response(
        StatusCode::OK,
        Some("application/zip"),
        StreamBody::new(stream).boxed_unsync(),
    );
    let safe: String = timestamp
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    set(
        r.headers_mut(),
        "content-disposition",
        &format!("attachment; filename=argusai-backup-{safe}.zip"),
    );
    r
}

/// `POST /api/v1/system/restore`: streams the upload, counting and hashing it.
async fn restore(req: Request<Incoming>) -> Resp {
    let mut body = req.into_body();
    let mut hasher = Sha256::new();
    let mut received: u64 = 0;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Ok(d) = f.into_data() {
                    received += d.len() as u64;
                    hasher.update(&d);
                }
            }
            Err(_) => return detail(StatusCode::BAD_REQUEST, "Upload interrupted"),
        }
    }
    if received == 0 {
        let mut v = Validator::default();
        v.missing("body", "file");
        return validation(v);
    }
    json(
        StatusCode::OK,
        &serde_json::json!({
            "success": true,
            "message": "Restore completed successfully",
            "events_restored": 0,
            "settings_restored": 0,
            "thumbnails_restored": 0,
            "warnings": ["stand-in backend: nothing was restored"],
            "received": received,
            "sha256": hex::encode(hasher.finalize()),
        }),
    )
}

impl State {
    pub(crate) fn record_stream_quality(&self, q: argus_shared::live_stream::BackendQuality) {
        self.stream_qualities
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(q.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(v: &str, len: u64) -> Result<Option<(u64, u64)>, ()> {
        let mut h = HeaderMap::new();
        h.insert("range", HeaderValue::from_str(v).unwrap());
        parse_range(&h, len)
    }

    #[test]
    fn ranges() {
        assert_eq!(range("bytes=0-99", 1000), Ok(Some((0, 99))));
        assert_eq!(range("bytes=900-", 1000), Ok(Some((900, 999))));
        assert_eq!(range("bytes=-100", 1000), Ok(Some((900, 999))));
        assert_eq!(range("bytes=-5000", 1000), Ok(Some((0, 999))));
        assert_eq!(range("bytes=990-5000", 1000), Ok(Some((990, 999))));
        assert_eq!(range("bytes=1000-", 1000), Err(()));
        assert_eq!(range("bytes=-0", 1000), Err(()));
        assert_eq!(range("bytes=5-1", 1000), Ok(None));
        assert_eq!(range("bytes=0-1,5-6", 1000), Ok(None));
        assert_eq!(range("items=0-1", 1000), Ok(None));
        assert_eq!(range("bytes=x-1", 1000), Ok(None));
        assert_eq!(range("bytes=99999999999999999999999-", 1000), Ok(None));
    }

    #[test]
    fn cookies() {
        let mut h = HeaderMap::new();
        h.append("cookie", HeaderValue::from_static("a=1; access_token=abc"));
        h.append("cookie", HeaderValue::from_static("access_token=\"def\""));
        assert_eq!(cookie(&h, "access_token").as_deref(), Some("def"));
        assert_eq!(cookie(&h, "a").as_deref(), Some("1"));
        assert_eq!(cookie(&h, "b"), None);
    }
}
