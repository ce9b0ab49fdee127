//! A stand-in for the ArgusAI backend (Python/FastAPI), faithful to the real one where the relay
//! meets it: the same paths, JSON shapes, status codes and error bodies (`{"detail": ...}`, FastAPI's
//! 422 lists), the same auth middleware quirks, and the same path-traversal hole in thumbnail
//! serving — so tests can prove the relay protects it.
//!
//! What it serves (see `docs` of each handler in `backend/server.rs`):
//! - `GET /`, `GET /health`, `GET /metrics` (Prometheus), `GET /docs`, `GET /redoc`,
//!   `GET /openapi.json` (the real document) — no auth, like the real app;
//! - `GET /api/v1/events` (paging, filters, 422 validation), `GET /api/v1/events/{id}` (404
//!   `Event not found`), `.../thumbnail`, `.../frames`, `.../frames/{n}` (no auth),
//!   `.../video` (Range, 206/416; `HEAD` is 405 as on ArgusAI);
//! - `GET /api/v1/cameras`, `GET /api/v1/cameras/{id}`; push registration under `/api/v1/devices`
//!   (`POST`, `GET`, `PUT …/token`, `PUT …/preferences`, `PUT /{id}`, `DELETE`);
//! - `GET /api/v1/thumbnails/{date}/{file}` — files under a temp `data/thumbnails/`, joined naively,
//!   so `/api/v1/thumbnails/%2e%2e/app.db` returns the fake database ([`APP_DB_MARKER`]);
//! - `GET /api/v1/system/ai-processing-stream` (SSE), `GET /api/v1/system/backup/{ts}/download`
//!   (8 MiB chunked), `POST /api/v1/system/restore` (streamed, counted, SHA-256);
//! - WebSockets `/ws` (hello, echo, `ping`→`pong`, notifications), `/ws/stream/{camera_id}` and
//!   `/api/v1/cameras/{camera_id}/stream` (ArgusAI's live stream protocol: levels, quality
//!   changes, errors; [`live`]);
//! - fault modes for proxy tests, off by default: [`StandInBackend::set_delay`] (slow answers),
//!   [`StandInBackend::set_cut_after`] (streamed downloads die mid-body);
//! - every other path of the real API: 401 without credentials (the middleware runs first), then
//!   405 for a wrong method, 501 for a real route the stand-in does not implement, 404 otherwise.
//!
//! Auth, per route as on ArgusAI (`backend/route_auth.rs`): some routes need nothing, most take an
//! `X-API-Key` equal to [`BackendConfig::api_key`] or a user JWT, push registration and the
//! account routes only a user JWT, the AI-processing streams an admin's JWT, the event thumbnail a
//! signed URL (422 without one). A user JWT is the `access_token` cookie (which beats
//! `Authorization: Bearer`). A `User-Agent` containing `testclient` skips the global middleware.
//! The API-key check costs [`BackendConfig::api_key_verify_time`] and, as ArgusAI's bcrypt on its
//! event loop, stalls every other request meanwhile.
//!
//! Users and web sessions (`backend/users.rs`): `POST /api/v1/auth/login` (5 per 15 minutes per
//! client IP), `POST /api/v1/auth/refresh` (rotating refresh tokens, reuse detection, 20 per
//! minute), HS256 access JWTs of [`BackendConfig::access_token_lifetime`], `GET /api/v1/auth/me`;
//! [`BackendConfig::session_token`] is accepted as an admin's JWT too (older tests).
//!
//! Every request is recorded ([`StandInBackend::requests`]) with its method, raw target and headers.

mod data;
pub mod live;
mod push;
mod query;
pub mod route_auth;
mod routes;
mod server;
mod users;
mod ws;

pub use users::{StandInUser, UserRole, LOGIN_LIMIT, REFRESH_LIMIT};

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

pub use push::PushDevice;
use server::{Layout, Photo, State};

/// The first bytes of the fake `data/app.db` the traversal hole leaks.
pub const APP_DB_MARKER: &[u8] = b"SQLite format 3\0ARGUS-STANDIN-SECRET-DB";
/// The request target that leaks the database on the real backend (and on the stand-in).
pub const TRAVERSAL_TARGET: &str = "/api/v1/thumbnails/%2e%2e/app.db";
/// The thumbnail date directory holding every photo of the test data under its own name, e.g.
/// `/api/v1/thumbnails/2025-11-20/cups-320x180.jpg`.
pub const PHOTO_DATE: &str = "2025-11-20";
/// Default API key (`X-API-Key`).
pub const DEFAULT_API_KEY: &str = "argus_standin_0123456789abcdef";
/// Default session token (`access_token` cookie or `Authorization: Bearer`), JWT-shaped.
pub const DEFAULT_SESSION_TOKEN: &str =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VyX2lkIjoic3RhbmQtaW4ifQ.c3RhbmQtaW4tc2lnbmF0dXJl";
/// The stand-in's default admin user (`admin_jwt` routes need an admin) and its password.
pub const DEFAULT_ADMIN_USERNAME: &str = "admin";
pub const DEFAULT_ADMIN_PASSWORD: &str = "standin-admin-password";
/// A default non-admin user (role `viewer`) and its password.
pub const DEFAULT_VIEWER_USERNAME: &str = "viewer";
pub const DEFAULT_VIEWER_PASSWORD: &str = "standin-viewer-password";
/// One bcrypt (cost 12) `X-API-Key` check on the real backend, as measured (~250-260 ms).
pub const ARGUSAI_API_KEY_VERIFY_TIME: Duration = Duration::from_millis(250);
/// The real backend's answer to a 20-event `GET /api/v1/events` with a user JWT, as measured.
pub const ARGUSAI_EVENT_LIST_TIME: Duration = Duration::from_millis(14);
/// Default seed of the generated data ("ArgusAI!").
pub const DEFAULT_SEED: u64 = 0x4172_6775_7341_4921;

/// Configuration of a [`StandInBackend`].
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// Accepted in `X-API-Key`.
    pub api_key: String,
    /// What one `X-API-Key` check costs: ArgusAI runs bcrypt (cost 12, ~250 ms) on its event
    /// loop for every request carrying a key, so the stand-in answers *nothing else* meanwhile.
    /// Default zero; [`ARGUSAI_API_KEY_VERIFY_TIME`] models the real backend.
    pub api_key_verify_time: Duration,
    /// What answering `GET /api/v1/events` takes besides auth (default zero;
    /// [`ARGUSAI_EVENT_LIST_TIME`] models the real backend). ArgusAI's handler is a plain `def`,
    /// run in Starlette's thread pool, so concurrent lists overlap: the stand-in waits without
    /// holding its event loop (the GIL's contention is not modelled).
    pub event_list_time: Duration,
    /// ArgusAI's `ENCRYPTION_KEY`: the key of signed thumbnail URLs.
    pub encryption_key: String,
    /// Accepted as the `access_token` cookie or a Bearer token, besides the JWTs the stand-in
    /// issues (older tests use it as a fixed credential).
    pub session_token: String,
    /// The user accounts (`POST /api/v1/auth/login`). Default: [`DEFAULT_ADMIN_USERNAME`] (admin)
    /// and [`DEFAULT_VIEWER_USERNAME`] (viewer).
    pub users: Vec<StandInUser>,
    /// Lifetime of the access JWTs issued by login and refresh (ArgusAI: 24 h).
    pub access_token_lifetime: Duration,
    /// The JPEG photos (`*-320x180.jpg` become thumbnails/frames). Default:
    /// [`default_photos_dir`].
    pub photos_dir: PathBuf,
    /// ArgusAI's `openapi.json`: served at `/openapi.json` and the source of the route table.
    /// Default: `$ARGUS_OPENAPI_JSON`, else `<workspace>/../shared/argusai/openapi.json`. Missing or
    /// `None`: a built-in table of the implemented routes.
    pub openapi_path: Option<PathBuf>,
    /// Number of generated events (default 137).
    pub event_count: usize,
    /// Seed of all generated data.
    pub seed: u64,
    /// SSE events per stream when `?count=` is absent (default 10).
    pub sse_default_count: u64,
    /// Gap between SSE events when `?interval_ms=` is absent (default 100 ms).
    pub sse_interval: Duration,
    /// Size of the backup download when `?size=` is absent (default 8 MiB).
    pub backup_size: u64,
    /// Size of every event video (default 1 MiB).
    pub video_size: u64,
    /// Gap between camera-stream frames when `?fps=` is absent (default 250 ms).
    pub ws_frame_interval: Duration,
    /// Live camera streams at once before `STREAM_LIMIT_REACHED` (default 4).
    pub max_camera_streams: usize,
    /// Period of the text `ping` heartbeat on `/ws` (ArgusAI: 30 s).
    pub ws_heartbeat: Duration,
    /// Origins of the CORS middleware (ArgusAI's default: `http://localhost:3000`).
    pub cors_origins: Vec<String>,
    /// FastAPI's `redirect_slashes`: ArgusAI sets it to `False` (a stray trailing slash is a 404);
    /// `true` gives Starlette's 307 to the other spelling.
    pub redirect_slashes: bool,
    /// Record every request for [`StandInBackend::requests`] (default). Off for load tests: the
    /// log grows without bound.
    pub record_requests: bool,
}

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig {
            api_key: DEFAULT_API_KEY.to_owned(),
            api_key_verify_time: Duration::ZERO,
            event_list_time: Duration::ZERO,
            session_token: DEFAULT_SESSION_TOKEN.to_owned(),
            encryption_key: "stand-in-encryption-key".to_owned(),
            users: vec![
                StandInUser {
                    username: DEFAULT_ADMIN_USERNAME.to_owned(),
                    password: DEFAULT_ADMIN_PASSWORD.to_owned(),
                    role: UserRole::Admin,
                },
                StandInUser {
                    username: DEFAULT_VIEWER_USERNAME.to_owned(),
                    password: DEFAULT_VIEWER_PASSWORD.to_owned(),
                    role: UserRole::Viewer,
                },
            ],
            access_token_lifetime: Duration::from_secs(24 * 3600),
            photos_dir: default_photos_dir(),
            openapi_path: Some(default_openapi_path()),
            event_count: 137,
            seed: DEFAULT_SEED,
            sse_default_count: 10,
            sse_interval: Duration::from_millis(100),
            backup_size: 8 * 1024 * 1024,
            video_size: 1024 * 1024,
            ws_frame_interval: Duration::from_millis(250),
            ws_heartbeat: Duration::from_secs(30),
            max_camera_streams: 4,
            cors_origins: vec!["http://localhost:3000".to_owned()],
            redirect_slashes: false,
            record_requests: true,
        }
    }
}

/// `$ARGUS_PHOTOS_DIR`, else `<workspace>/../shared/testdata/photos` (real photos: CI has them),
/// else the generated stand-ins for them ([`argus_shared::test_photos`]: same names and sizes),
/// written once into `target/` (a fresh clone has no `../shared`).
pub fn default_photos_dir() -> PathBuf {
    match std::env::var_os("ARGUS_PHOTOS_DIR") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => {
            let reference = crate::reference_dir().join("testdata").join("photos");
            if reference.is_dir() {
                reference
            } else {
                generated_photos_dir()
            }
        }
    }
}

/// `target/generated-photos-v2/`, holding every [`argus_shared::test_photos::ALL`] JPEG. Each file
/// is written under a temporary name and renamed, so test processes running at once never read a
/// partial one; they are deterministic, so whichever process wrote one wrote the same bytes.
/// Bump the version when the generator changes.
fn generated_photos_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = crate::workspace_root()
            .join("target")
            .join("generated-photos-v2");
        let made = (|| -> io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            for photo in &argus_shared::test_photos::ALL {
                let path = dir.join(photo.name);
                if !path.exists() {
                    let tmp = dir.join(format!(".{}.{}", photo.name, std::process::id()));
                    std::fs::write(&tmp, photo.jpeg())?;
                    std::fs::rename(&tmp, &path)?;
                }
            }
            Ok(())
        })();
        if let Err(e) = made {
            panic!("stand-in backend: cannot write generated photos to {}: {e}", dir.display());
        }
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "stand-in backend: ../shared/testdata/photos is absent; serving the generated photos in {}",
            dir.display()
        );
        dir
    })
    .clone()
}

/// `$ARGUS_OPENAPI_JSON`, else `<workspace>/../shared/argusai/openapi.json`.
pub fn default_openapi_path() -> PathBuf {
    match std::env::var_os("ARGUS_OPENAPI_JSON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => crate::reference_dir().join("argusai").join("openapi.json"),
    }
}

/// One request as it reached the stand-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// The request target as received: path and query, percent-encoding untouched.
    pub target: String,
    /// Header names lower-case, in arrival order, repeated headers repeated.
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn has_header(&self, name: &str) -> bool {
        self.header(name).is_some()
    }

    /// The target without its query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

/// The shared, append-only log of requests; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct RequestLog(Arc<Mutex<Vec<RecordedRequest>>>);

impl RequestLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<RecordedRequest>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn push(&self, r: RecordedRequest) {
        self.lock().push(r);
    }

    pub fn all(&self) -> Vec<RecordedRequest> {
        self.lock().clone()
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    pub fn count(&self, pred: impl Fn(&RecordedRequest) -> bool) -> usize {
        self.lock().iter().filter(|r| pred(r)).count()
    }
}

/// A running stand-in backend. Dropping it stops it (tasks end, the port is freed, the temp data
/// directory goes away); [`StandInBackend::shutdown`] does the same and waits for the listener.
pub struct StandInBackend {
    addr: SocketAddr,
    state: Arc<State>,
    stop: watch::Sender<bool>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for StandInBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandInBackend")
            .field("addr", &self.addr)
            .field("data_dir", &self.state.layout.data)
            .finish()
    }
}

fn is_jpeg(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"))
}

fn link_or_copy(src: &Path, dst: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        if std::os::unix::fs::symlink(src, dst).is_ok() {
            return Ok(());
        }
    }
    std::fs::copy(src, dst).map(|_| ())
}

fn fake_database(api_key: &str) -> Vec<u8> {
    let mut db = APP_DB_MARKER.to_vec();
    db.push(0);
    db.extend_from_slice(b"CREATE TABLE users (id VARCHAR NOT NULL, username VARCHAR(50) NOT NULL, password_hash VARCHAR(255) NOT NULL, is_active BOOLEAN, PRIMARY KEY (id))\0");
    db.extend_from_slice(b"admin\0$2b$12$StandInStandInStandInOu1Jw9yQfCq8a0r3nVq6cPZ0FakeHash\0");
    db.extend_from_slice(b"CREATE TABLE api_keys (id VARCHAR NOT NULL, name VARCHAR(100), key_hash VARCHAR(255), key_prefix VARCHAR(16))\0");
    db.extend_from_slice(format!("relay\0{api_key}\0").as_bytes());
    db.extend_from_slice(b"CREATE TABLE system_settings (key VARCHAR PRIMARY KEY, value TEXT)\0settings_openai_api_key\0sk-standin-not-a-real-key\0");
    db.resize(8192, 0);
    db
}

impl StandInBackend {
    /// Starts on `127.0.0.1:0`.
    pub async fn start(config: BackendConfig) -> io::Result<StandInBackend> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Starts on `addr`.
    pub async fn start_on(addr: SocketAddr, config: BackendConfig) -> io::Result<StandInBackend> {
        let config = Arc::new(config);
        let prepared = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || Prepared::new(&config))
                .await
                .map_err(io::Error::other)??
        };
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, stop_rx) = watch::channel(false);
        let (notify, _) = broadcast::channel(256);
        let Prepared {
            events,
            cameras,
            small,
            large,
            layout,
            routes,
            openapi,
        } = prepared;
        let by_id: HashMap<String, usize> = events
            .iter()
            .enumerate()
            .map(|(i, e)| (e.event.id.clone(), i))
            .collect();
        let users = users::Users::new(&config.users, config.access_token_lifetime);
        let state = Arc::new(State {
            users,
            config: Arc::unwrap_or_clone(config),
            events,
            by_id,
            cameras,
            small,
            large,
            layout,
            routes,
            openapi,
            log: RequestLog::default(),
            notify,
            active_ws: AtomicUsize::new(0),
            shutdown: stop_rx,
            started: Instant::now(),
            faults: server::Faults::default(),
            event_loop: tokio::sync::Mutex::new(()),
            push_devices: Default::default(),
            camera_streams: Default::default(),
            stream_qualities: Default::default(),
            api_key_checks: Default::default(),
        });
        let accept = tokio::spawn(server::accept_loop(listener, state.clone()));
        Ok(StandInBackend {
            addr,
            state,
            stop,
            accept: Some(accept),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn config(&self) -> &BackendConfig {
        &self.state.config
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.log.all()
    }

    pub fn clear_requests(&self) {
        self.state.log.clear()
    }

    /// How many recorded requests satisfy `pred`.
    pub fn count(&self, pred: impl Fn(&RecordedRequest) -> bool) -> usize {
        self.state.log.count(pred)
    }

    /// The live log (shared with the server).
    pub fn request_log(&self) -> RequestLog {
        self.state.log.clone()
    }

    /// The generated events' ids, newest first (the order of `GET /api/v1/events`).
    pub fn event_ids(&self) -> Vec<String> {
        self.state
            .events
            .iter()
            .map(|e| e.event.id.clone())
            .collect()
    }

    /// One generated event as the backend serves it.
    pub fn event_json(&self, id: &str) -> Option<serde_json::Value> {
        let i = *self.state.by_id.get(id)?;
        serde_json::to_value(&self.state.events[i].event).ok()
    }

    /// `/api/v1/thumbnails/<date>/event_<id>.jpg` of an event.
    pub fn event_thumbnail_target(&self, id: &str) -> Option<String> {
        let e = &self.state.events[*self.state.by_id.get(id)?];
        Some(format!(
            "/api/v1/thumbnails/{}/{}",
            e.date, e.thumbnail_file
        ))
    }

    /// `?signature=…&expires=…` for `/api/v1/events/{id}/thumbnail`, signed as ArgusAI's
    /// (unused) `SignedURLService` would with [`BackendConfig::encryption_key`].
    pub fn signed_thumbnail_query(&self, id: &str, expires: i64) -> String {
        let sig = server::thumbnail_signature(&self.state.config.encryption_key, id, expires);
        format!("signature={sig}&expires={expires}")
    }

    /// How many `X-API-Key` checks (ArgusAI: one bcrypt each, ~250 ms on its event loop) the
    /// stand-in has begun.
    pub fn api_key_checks(&self) -> u64 {
        self.state.api_key_checks.load(Ordering::SeqCst)
    }

    /// The push-notification devices registered so far (`POST /api/v1/devices`), oldest first.
    pub fn push_devices(&self) -> Vec<PushDevice> {
        self.state.push_devices.all()
    }

    /// Every level a live stream (`/api/v1/cameras/{id}/stream`) was asked for, in order: each
    /// stream's `quality=` at its start and each `quality_change`.
    pub fn stream_qualities(&self) -> Vec<&'static str> {
        self.state
            .stream_qualities
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Live camera streams running now.
    pub fn active_camera_streams(&self) -> usize {
        self.state.camera_streams.load(Ordering::SeqCst)
    }

    /// The camera named `name` ("Driveway", "Garage" …): its id.
    pub fn camera_id(&self, name: &str) -> Option<String> {
        self.state
            .cameras
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.id.clone())
    }

    /// The cameras' ids (the `{camera_id}` of `/ws/stream/`).
    pub fn camera_ids(&self) -> Vec<String> {
        self.state.cameras.iter().map(|c| c.id.clone()).collect()
    }

    /// The bytes `GET /api/v1/events/{id}/video` serves.
    pub fn video_bytes(&self, id: &str) -> Option<Vec<u8>> {
        let i = *self.state.by_id.get(id)?;
        let len = usize::try_from(self.state.config.video_size).ok()?;
        Some(data::synthetic(
            data::video_stream_id(self.state.config.seed, i),
            data::VIDEO_HEADER,
            0,
            len,
        ))
    }

    /// The first `len` bytes of any backup download.
    pub fn backup_bytes(len: usize) -> Vec<u8> {
        data::synthetic(data::BACKUP_STREAM, data::BACKUP_HEADER, 0, len)
    }

    /// A photo of the test data by file name (e.g. `cups-320x180.jpg`).
    pub fn photo_bytes(&self, name: &str) -> Option<Vec<u8>> {
        self.state
            .small
            .iter()
            .chain(self.state.large.iter())
            .find(|p| p.name == name)
            .map(|p| p.bytes.to_vec())
    }

    /// The temp `data/` directory (holding `app.db` and `thumbnails/`).
    pub fn data_dir(&self) -> &Path {
        &self.state.layout.data
    }

    pub fn thumbnails_dir(&self) -> &Path {
        &self.state.layout.thumbnails
    }

    pub fn app_db_path(&self) -> &Path {
        &self.state.layout.app_db
    }

    /// Broadcasts `{"type":"notification","data":data}` to every `/ws` client; returns how many
    /// were connected.
    pub fn notify(&self, data: serde_json::Value) -> usize {
        let msg = serde_json::json!({ "type": "notification", "data": data }).to_string();
        self.state.notify.send(msg).unwrap_or(0)
    }

    /// Fault mode: every HTTP answer waits `delay` first (`None`: off). For "backend slow".
    pub fn set_delay(&self, delay: Option<Duration>) {
        let ms = delay.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.state.faults.delay_ms.store(ms, Ordering::Relaxed);
    }

    /// Requests the backend took while slow ([`Self::set_delay`]) and has not answered yet.
    pub fn slow_answers_owed(&self) -> u64 {
        self.state.faults.delayed.load(Ordering::SeqCst)
    }

    /// Fault mode: every answer of a known length from now on announces its length, sends half
    /// of its body and drops the connection (`false`: off).
    pub fn set_half_bodies(&self, on: bool) {
        self.state.faults.half_bodies.store(on, Ordering::Relaxed);
    }

    /// Kills the stand-in as a crash would: the port stops accepting (connections are refused)
    /// and every open connection, stream and WebSocket is dropped. Its data, users and sessions
    /// survive for [`StandInBackend::revive`] (ArgusAI keeps them in its database).
    pub fn kill(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
        self.state.faults.life.send_modify(|l| *l += 1);
    }

    /// Starts serving again on the same port after [`StandInBackend::kill`].
    pub async fn revive(&mut self) -> io::Result<()> {
        if self.accept.is_some() {
            return Ok(());
        }
        let listener = bind_reusing(self.addr)?;
        self.accept = Some(tokio::spawn(server::accept_loop(
            listener,
            self.state.clone(),
        )));
        Ok(())
    }

    /// Fault mode: streamed downloads started from now on (backup download, SSE) die after
    /// `bytes`, aborting the connection mid-body (`None`: off). For "backend dies mid-stream".
    pub fn set_cut_after(&self, bytes: Option<u64>) {
        self.state
            .faults
            .cut_after
            .store(bytes.unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// A fresh access JWT for `username`, as its login would give (for calling the backend
    /// directly "with a JWT").
    pub fn access_token_for(&self, username: &str) -> Option<String> {
        self.state.users.access_token_for(username)
    }

    /// The user whose valid access JWT an `Authorization` value carries (`Bearer <jwt>`), e.g.
    /// to check that a request came with the agent's session.
    pub fn user_of_authorization(&self, authorization: &str) -> Option<String> {
        let token = authorization.strip_prefix("Bearer ")?;
        self.state.users.verify(token).map(|u| u.username.clone())
    }

    /// `POST /api/v1/auth/login` requests received (whatever their outcome).
    pub fn login_requests(&self) -> u64 {
        self.state.users.counters.logins.load(Ordering::Relaxed)
    }

    /// `POST /api/v1/auth/refresh` requests received (whatever their outcome).
    pub fn refresh_requests(&self) -> u64 {
        self.state.users.counters.refreshes.load(Ordering::Relaxed)
    }

    /// Revokes every web session (refresh-token family): later refreshes answer 401. Access
    /// tokens already issued stay valid until they expire, as in ArgusAI.
    pub fn revoke_sessions(&self) {
        self.state.users.revoke_sessions()
    }

    /// A new JWT secret (ArgusAI reinstalled, `JWT_SECRET_KEY` changed): every access token
    /// issued so far is refused.
    pub fn rotate_jwt_secret(&self) {
        self.state.users.rotate_secret()
    }

    /// Deactivates (or reactivates) a user: its tokens stop (or start again) verifying.
    pub fn set_user_active(&self, username: &str, active: bool) -> bool {
        self.state.users.set_active(username, active)
    }

    /// WebSocket connections currently open.
    pub fn active_websockets(&self) -> usize {
        self.state.active_ws.load(Ordering::SeqCst)
    }

    /// Stops serving: closes the listener (the port is free when this returns) and every
    /// connection, including streams and WebSockets.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(accept) = self.accept.take() {
            let _ = accept.await;
        }
    }
}

impl Drop for StandInBackend {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
    }
}

/// A listener on `addr` with `SO_REUSEADDR` (the port of a killed stand-in may still have
/// connections in TIME_WAIT).
fn bind_reusing(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Everything built before binding (blocking file work).
struct Prepared {
    events: Vec<data::StoredEvent>,
    cameras: Vec<data::Camera>,
    small: Vec<Photo>,
    large: Vec<Photo>,
    layout: Layout,
    routes: Vec<routes::Route>,
    openapi: Option<Bytes>,
}

impl Prepared {
    fn new(config: &BackendConfig) -> io::Result<Prepared> {
        let photos_dir = config.photos_dir.canonicalize().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "stand-in backend: photos dir {} ({e}); set ARGUS_PHOTOS_DIR",
                    config.photos_dir.display()
                ),
            )
        })?;
        let mut files: Vec<PathBuf> = std::fs::read_dir(&photos_dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_jpeg(p))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "stand-in backend: no JPEG photos in {}",
                    photos_dir.display()
                ),
            ));
        }
        let (mut small, mut large) = (Vec::new(), Vec::new());
        let mut small_paths = Vec::new();
        for f in &files {
            let name = f
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            let photo = Photo {
                name: name.clone(),
                bytes: Bytes::from(std::fs::read(f)?),
            };
            if name.contains("320x180") {
                small.push(photo);
                small_paths.push(f.clone());
            } else {
                large.push(photo);
            }
        }
        if small.is_empty() {
            // No thumbnail-sized photos: use whatever there is.
            small = large
                .iter()
                .map(|p| Photo {
                    name: p.name.clone(),
                    bytes: p.bytes.clone(),
                })
                .collect();
            small_paths = files.clone();
        }

        let events = data::generate_events(config.seed, config.event_count, small.len());
        let cameras = data::cameras(config.seed);

        // data/app.db beside data/thumbnails/<date>/<file>, like ArgusAI's backend/data/.
        let dir = tempfile::Builder::new()
            .prefix("argus-standin-")
            .tempdir()?;
        let data_dir = dir.path().join("data");
        let thumbnails = data_dir.join("thumbnails");
        std::fs::create_dir_all(thumbnails.join(PHOTO_DATE))?;
        let app_db = data_dir.join("app.db");
        std::fs::write(&app_db, fake_database(&config.api_key))?;
        for f in &files {
            if let Some(name) = f.file_name() {
                link_or_copy(f, &thumbnails.join(PHOTO_DATE).join(name))?;
            }
        }
        for e in &events {
            let day = thumbnails.join(&e.date);
            std::fs::create_dir_all(&day)?;
            let src = &small_paths[e.photo.min(small_paths.len() - 1)];
            link_or_copy(src, &day.join(&e.thumbnail_file))?;
            if let Some(annotated) = e
                .event
                .annotated_thumbnail_path
                .as_deref()
                .and_then(|p| p.rsplit('/').next())
            {
                link_or_copy(src, &day.join(annotated))?;
            }
        }
        let layout = Layout {
            _dir: dir,
            data: data_dir,
            thumbnails,
            app_db,
        };

        let openapi = config
            .openapi_path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .map(Bytes::from);
        let routes = openapi
            .as_deref()
            .and_then(routes::routes_from_openapi)
            .unwrap_or_else(routes::builtin_routes);
        Ok(Prepared {
            events,
            cameras,
            small,
            large,
            layout,
            routes,
            openapi,
        })
    }
}
