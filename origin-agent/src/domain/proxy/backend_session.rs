//! The agent's own ArgusAI user session: the credential the proxy adds to every request it
//! forwards (`Authorization: Bearer <access JWT>`).
//!
//! Why a session and not ArgusAI's API key (docs/proxy.md, "The agent's credential"): ArgusAI
//! checks an `X-API-Key` with bcrypt on its event loop for every request (~260 ms, serialising the
//! whole backend), and 40 of its routes (push registration, `/auth/me`, the AI stream) accept a
//! user JWT only. A JWT costs it an HMAC and one row lookup.
//!
//! Life cycle:
//! - `argus-relay backend login` (the owner, once) signs in with a username and password, and
//!   stores ArgusAI's 30-day refresh token in the agent's database ([`Store::save_backend_login`]).
//!   The password is never stored; the agent never logs in by itself (no login storm is possible:
//!   ArgusAI allows 5 logins per 15 minutes per address).
//! - The running agent exchanges the refresh token for an access JWT (`POST
//!   /api/v1/auth/refresh`, which rotates the refresh token: the successor is written to the store
//!   before the access token is used) at start-up, and again ahead of expiry: once
//!   [`REFRESH_AHEAD_FRACTION`] of the token's life is left, by a background task, so requests do not
//!   wait. The access token lives in memory only.
//! - Every refresh is single-flight: concurrent callers wait for the one in progress.
//! - A backend 401 on a request sent with token `T` triggers at most one refresh (shared by every
//!   request that was refused `T`) and one retry ([`BackendSession::renew_after_rejection`]); a
//!   token obtained that way and refused again within [`REJECTION_COOLDOWN_SECS`] is not renewed
//!   again: the request gets a 502 naming the cause.
//! - ArgusAI refusing the refresh token (revoked, reused, expired, user disabled) makes the
//!   session `refused`, recorded in the store: nothing is retried until the owner signs in again
//!   (the background task notices a new login in the store within [`STORE_POLL_SECS`]).
//! - Transient failures (ArgusAI down, its 20-per-minute refresh limit) are retried with
//!   backoff; the current token is used while it is valid.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderValue;
use hyper::{Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};

use crate::domain::store::{Store, StoreError, StoredBackendSession};

/// A token is renewed once this fraction of its lifetime is left (24 h → renewed with ~4.8 h left).
pub const REFRESH_AHEAD_FRACTION: u64 = 5;
/// ...but at least this many seconds before expiry.
const MIN_REFRESH_AHEAD_SECS: u64 = 1;
/// A token obtained because the previous one was refused is not renewed again because of a
/// refusal for this long (bounds refreshes to one a minute if ArgusAI refuses fresh tokens).
pub const REJECTION_COOLDOWN_SECS: u64 = 60;
/// While no session is usable, the store is read this often for a new login.
pub const STORE_POLL_SECS: u64 = 2;
/// Backoff after a transient refresh failure: first, and at most.
const BACKOFF_FIRST_SECS: u64 = 2;
const BACKOFF_MAX_SECS: u64 = 60;
/// Lifetime assumed for an access token whose `exp` cannot be read (refreshed early, harmlessly).
const UNKNOWN_LIFETIME_SECS: u64 = 15 * 60;
/// The refresh call gets this long.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest refresh answer read.
const MAX_EXCHANGE_ANSWER: usize = 64 * 1024;

/// What the owner runs to (re)establish the session.
pub const LOGIN_COMMAND: &str = "argus-relay backend login";

/// A fresh pair from `POST /api/v1/auth/refresh`.
#[derive(Clone, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
}

/// Why a refresh failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExchangeError {
    /// ArgusAI refused the refresh token (revoked, reused, expired, user disabled): final.
    #[error("ArgusAI refused the refresh token ({0})")]
    Refused(String),
    /// ArgusAI's refresh limit (20 per minute per address).
    #[error("ArgusAI's refresh limit was reached")]
    RateLimited { retry_after_secs: u64 },
    /// Not reachable, timed out, 5xx, or an answer that is not a token pair.
    #[error("{0}")]
    Unavailable(String),
}

/// The refresh call (a trait so the state machine can be tested without a backend).
pub trait TokenExchange: Send + Sync + 'static {
    fn refresh<'a>(
        &'a self,
        refresh_token: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Tokens, ExchangeError>> + Send + 'a>>;
}

/// Seconds since the Unix epoch (a trait object so tests can move time).
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Where the session is, for status, `doctor` and the Mobile Access page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Nobody signed the agent in.
    Missing,
    /// Signed in; no access token yet (start-up, or the first refresh is in progress).
    Starting,
    /// A valid access token.
    Active,
    /// Renewing fails for a transient reason and the access token expires soon (or has).
    Expiring,
    /// ArgusAI refused the session: the owner must sign in again.
    Refused,
}

/// The session as status reports it (no token in it).
#[derive(Debug, Clone, Serialize)]
pub struct SessionView {
    pub state: SessionState,
    pub username: Option<String>,
    pub role: Option<String>,
    pub signed_in_at: Option<i64>,
    pub access_expires_in_secs: Option<u64>,
    pub last_renewed_secs_ago: Option<u64>,
    /// Refreshes this agent made since it started.
    pub refreshes: u64,
    pub last_error: Option<String>,
    /// In plain words, when something is wrong, with what to run.
    pub problem: Option<String>,
}

/// The access token in use.
#[derive(Clone)]
struct Access {
    bearer: HeaderValue,
    expires_at: u64,
    /// When it should be renewed.
    renew_at: u64,
    obtained_at: u64,
    /// Obtained because the previous token was refused.
    after_rejection: bool,
}

struct Inner {
    /// The stored session this agent works from (`None`: no login).
    stored: Option<StoredBackendSession>,
    access: Option<Access>,
    refused: Option<String>,
    last_error: Option<String>,
    /// No transient retry before this (backoff).
    retry_at: u64,
    backoff_secs: u64,
    refreshes: u64,
    last_renewed_at: Option<u64>,
    last_store_read: u64,
}

/// The session. Cheap to share (`Arc`).
pub struct BackendSession {
    store: Arc<Store>,
    exchange: Box<dyn TokenExchange>,
    clock: Clock,
    inner: Mutex<Inner>,
    /// Single flight: held for the whole of a refresh.
    refreshing: tokio::sync::Mutex<()>,
    /// Wakes the background task when a request's refresh changed the plan (e.g. a refusal: it
    /// must start watching the store for a new login instead of sleeping until the next renewal).
    replan: tokio::sync::Notify,
}

/// The outcome of a renewal request.
pub enum Renewal {
    /// Send with this token.
    Token(HeaderValue),
    /// No usable session: the cause, in words.
    Refused(String),
    /// No session at all.
    Missing,
}

fn bearer(token: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// `exp` and `iat` of a JWT's payload, read without verifying it (the agent is its holder, not its
/// judge).
fn jwt_times(token: &str) -> (Option<u64>, Option<u64>) {
    #[derive(Deserialize)]
    struct Times {
        exp: Option<u64>,
        iat: Option<u64>,
    }
    let times = token
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p.trim_end_matches('=')).ok())
        .and_then(|b| serde_json::from_slice::<Times>(&b).ok());
    match times {
        Some(t) => (t.exp, t.iat),
        None => (None, None),
    }
}

/// When a token obtained at `now` with these claims should be renewed, and when it expires.
pub fn renewal_times(now: u64, exp: Option<u64>, iat: Option<u64>) -> (u64, u64) {
    let expires_at = exp.unwrap_or(now + UNKNOWN_LIFETIME_SECS);
    let issued = iat.unwrap_or(now).min(now);
    let lifetime = expires_at.saturating_sub(issued);
    let ahead = (lifetime / REFRESH_AHEAD_FRACTION).max(MIN_REFRESH_AHEAD_SECS);
    (expires_at.saturating_sub(ahead).max(now), expires_at)
}

impl BackendSession {
    /// Loads the stored session (if any); call [`BackendSession::run`] to keep it fresh.
    pub fn new(
        store: Arc<Store>,
        exchange: Box<dyn TokenExchange>,
        clock: Clock,
    ) -> Result<BackendSession, StoreError> {
        let stored = store.backend_session()?;
        let now = clock();
        let refused = stored
            .as_ref()
            .and_then(|s| s.refused.as_ref().map(|(_, r)| r.clone()));
        Ok(BackendSession {
            store,
            exchange,
            inner: Mutex::new(Inner {
                stored,
                access: None,
                refused,
                last_error: None,
                retry_at: 0,
                backoff_secs: BACKOFF_FIRST_SECS,
                refreshes: 0,
                last_renewed_at: None,
                last_store_read: now,
            }),
            clock,
            refreshing: tokio::sync::Mutex::new(()),
            replan: tokio::sync::Notify::new(),
        })
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The token to send now, without waiting: `Some` while the current token is valid. (A token
    /// due for renewal is still valid; the background task renews it.)
    pub fn current(&self) -> Option<HeaderValue> {
        let now = (self.clock)();
        let inner = self.inner();
        inner
            .access
            .as_ref()
            .filter(|a| a.expires_at > now)
            .map(|a| a.bearer.clone())
    }

    /// The token to send: the current one, else the result of a refresh (shared with any in
    /// progress). `None`: no usable session (missing, refused, or ArgusAI unreachable).
    pub async fn bearer(&self) -> Option<HeaderValue> {
        if let Some(t) = self.current() {
            return Some(t);
        }
        {
            // Nothing to wait for: no login, or a refused one (the background task watches the
            // store for the next login).
            let inner = self.inner();
            if inner.stored.is_none() || inner.refused.is_some() {
                return None;
            }
        }
        match self.renew(None).await {
            Renewal::Token(t) => Some(t),
            Renewal::Refused(_) | Renewal::Missing => None,
        }
    }

    /// A request sent with `rejected` got a 401: renew once for everyone who was refused that
    /// token. `Token` means: retry with it.
    pub async fn renew_after_rejection(&self, rejected: &HeaderValue) -> Renewal {
        self.renew(Some(rejected)).await
    }

    /// Why the session cannot be used right now (for the 502 a refused request gets).
    /// `Token` if the session became usable since (the request went without it: the caller may
    /// ask the client to try again).
    pub fn unusable_reason(&self) -> Renewal {
        let now = (self.clock)();
        let inner = self.inner();
        if let Some(a) = inner.access.as_ref().filter(|a| a.expires_at > now) {
            return Renewal::Token(a.bearer.clone());
        }
        if inner.stored.is_none() {
            return Renewal::Missing;
        }
        Renewal::Refused(
            inner
                .refused
                .clone()
                .or_else(|| inner.last_error.clone())
                .unwrap_or_else(|| "ArgusAI refused the agent's access token".into()),
        )
    }

    async fn renew(&self, rejected: Option<&HeaderValue>) -> Renewal {
        let _flight = self.refreshing.lock().await;
        let now = (self.clock)();
        // Whoever held the flight before may have done the work.
        {
            let mut inner = self.inner();
            if let Some(a) = inner.access.as_ref().filter(|a| a.expires_at > now) {
                match rejected {
                    None => return Renewal::Token(a.bearer.clone()),
                    Some(r) if *r != a.bearer => return Renewal::Token(a.bearer.clone()),
                    Some(_)
                        if a.after_rejection && now < a.obtained_at + REJECTION_COOLDOWN_SECS =>
                    {
                        let why = format!(
                            "ArgusAI refused an access token it issued {} s ago",
                            now.saturating_sub(a.obtained_at)
                        );
                        inner.last_error = Some(why.clone());
                        return Renewal::Refused(why);
                    }
                    Some(_) => {}
                }
            }
            if inner.stored.is_none() {
                return Renewal::Missing;
            }
            if let Some(r) = &inner.refused {
                return Renewal::Refused(r.clone());
            }
            // Transient failures back off, except a rejection (its token is known bad).
            if rejected.is_none() && now < inner.retry_at {
                return Renewal::Refused(
                    inner
                        .last_error
                        .clone()
                        .unwrap_or_else(|| "renewing the session failed".into()),
                );
            }
        }
        self.refresh_now(rejected.is_some()).await
    }

    /// One refresh (the caller holds the flight).
    async fn refresh_now(&self, after_rejection: bool) -> Renewal {
        // The token to present: a newer login in the store wins over the chain in memory.
        let stored = match self.reload_store() {
            Some(s) => s,
            None => return Renewal::Missing,
        };
        if let Some((_, r)) = &stored.refused {
            return Renewal::Refused(r.clone());
        }
        let result = tokio::time::timeout(
            EXCHANGE_TIMEOUT,
            self.exchange.refresh(&stored.refresh_token),
        )
        .await
        .unwrap_or_else(|_| Err(ExchangeError::Unavailable("ArgusAI did not answer".into())));
        let now = (self.clock)();
        match result {
            Ok(tokens) => {
                // The successor is durable before anything uses the new access token: a crash
                // now must not leave the store holding the spent token (its reuse would revoke
                // the session). One fsync about once a day, on this task: not worth a thread hop.
                let rotated = self.store.rotate_backend_refresh(
                    stored.generation,
                    &stored.refresh_token,
                    &tokens.refresh_token,
                    i64::try_from(now).unwrap_or(i64::MAX),
                );
                let Some(value) = bearer(&tokens.access_token) else {
                    return self.transient(
                        now,
                        "ArgusAI's access token is not a valid header value".into(),
                    );
                };
                let (exp, iat) = jwt_times(&tokens.access_token);
                let (renew_at, expires_at) = renewal_times(now, exp, iat);
                let mut inner = self.inner();
                match rotated {
                    Ok(true) => {
                        if let Some(s) = inner.stored.as_mut() {
                            s.refresh_token = tokens.refresh_token.clone();
                            s.rotated_at = i64::try_from(now).unwrap_or(i64::MAX);
                        }
                    }
                    Ok(false) => tracing::info!(
                        "the ArgusAI session was replaced by a new login during a refresh"
                    ),
                    Err(e) => {
                        // Keep the successor in memory: the chain continues from here.
                        tracing::error!(error = %e, "could not store the rotated ArgusAI refresh token");
                        if let Some(s) = inner.stored.as_mut() {
                            s.refresh_token = tokens.refresh_token.clone();
                        }
                    }
                }
                inner.access = Some(Access {
                    bearer: value.clone(),
                    expires_at,
                    renew_at,
                    obtained_at: now,
                    after_rejection,
                });
                inner.refused = None;
                inner.last_error = None;
                inner.retry_at = 0;
                inner.backoff_secs = BACKOFF_FIRST_SECS;
                inner.refreshes += 1;
                inner.last_renewed_at = Some(now);
                drop(inner);
                self.replan.notify_one();
                tracing::info!(
                    expires_in = expires_at.saturating_sub(now),
                    "ArgusAI session renewed"
                );
                Renewal::Token(value)
            }
            Err(ExchangeError::Refused(why)) => {
                let reason = format!("ArgusAI refused the agent's session ({why})");
                tracing::warn!(reason, "the agent must be signed in again: {LOGIN_COMMAND}");
                if let Err(e) = self.store.mark_backend_session_refused(
                    stored.generation,
                    &reason,
                    i64::try_from(now).unwrap_or(i64::MAX),
                ) {
                    tracing::error!(error = %e, "could not record the refused session");
                }
                {
                    let mut inner = self.inner();
                    inner.access = None;
                    inner.refused = Some(reason.clone());
                    inner.refreshes += 1;
                }
                self.replan.notify_one();
                Renewal::Refused(reason)
            }
            Err(ExchangeError::RateLimited { retry_after_secs }) => {
                self.replan.notify_one();
                let mut inner = self.inner();
                inner.refreshes += 1;
                inner.retry_at = now + retry_after_secs.max(BACKOFF_MAX_SECS);
                let why = "ArgusAI's refresh limit (20 per minute) was reached".to_owned();
                inner.last_error = Some(why.clone());
                self.usable_or(inner, now, why)
            }
            Err(ExchangeError::Unavailable(why)) => self.transient(now, why),
        }
    }

    fn transient(&self, now: u64, why: String) -> Renewal {
        tracing::warn!(
            error = why,
            "renewing the ArgusAI session failed; will retry"
        );
        self.replan.notify_one();
        let mut inner = self.inner();
        inner.refreshes += 1;
        inner.retry_at = now + inner.backoff_secs;
        inner.backoff_secs = (inner.backoff_secs * 2).min(BACKOFF_MAX_SECS);
        let why = format!("renewing the session failed: {why}");
        inner.last_error = Some(why.clone());
        self.usable_or(inner, now, why)
    }

    /// The current token if it is still valid, else the failure.
    fn usable_or(&self, inner: std::sync::MutexGuard<'_, Inner>, now: u64, why: String) -> Renewal {
        match inner.access.as_ref().filter(|a| a.expires_at > now) {
            Some(a) => Renewal::Token(a.bearer.clone()),
            None => Renewal::Refused(why),
        }
    }

    /// Re-reads the stored session; adopts a new login (new generation). Returns the session to
    /// refresh from.
    fn reload_store(&self) -> Option<StoredBackendSession> {
        let now = (self.clock)();
        let fresh = match self.store.backend_session() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "could not read the ArgusAI session from the store");
                return self.inner().stored.clone();
            }
        };
        let mut inner = self.inner();
        inner.last_store_read = now;
        match (fresh, inner.stored.as_ref()) {
            (None, _) => {
                inner.stored = None;
                inner.access = None;
                inner.refused = None;
            }
            (Some(f), Some(mine)) if f.generation == mine.generation => {
                // Same login: the in-memory chain is authoritative (it may be ahead of a failed
                // write); a refusal recorded by anyone stands.
                if f.refused.is_some() && inner.refused.is_none() {
                    inner.refused = f.refused.as_ref().map(|(_, r)| r.clone());
                }
            }
            (Some(f), _) => {
                tracing::info!(
                    username = f.username,
                    "using the ArgusAI session of a new login"
                );
                inner.refused = f.refused.as_ref().map(|(_, r)| r.clone());
                inner.access = None;
                inner.last_error = None;
                inner.retry_at = 0;
                inner.backoff_secs = BACKOFF_FIRST_SECS;
                inner.stored = Some(f);
            }
        }
        let mut s = inner.stored.clone()?;
        if let Some(r) = &inner.refused {
            s.refused.get_or_insert((0, r.clone()));
        }
        Some(s)
    }

    /// Seconds until the background task should look again, and whether a refresh is due now.
    fn next_step(&self, now: u64) -> (bool, u64) {
        let inner = self.inner();
        if inner.stored.is_none() || inner.refused.is_some() {
            // Waiting for a login.
            let due = now >= inner.last_store_read + STORE_POLL_SECS;
            return (due, STORE_POLL_SECS);
        }
        if now < inner.retry_at {
            return (false, inner.retry_at - now);
        }
        match &inner.access {
            None => (true, BACKOFF_FIRST_SECS),
            Some(a) if now >= a.renew_at => (true, BACKOFF_FIRST_SECS),
            Some(a) => (false, (a.renew_at - now).min(3600)),
        }
    }

    /// One step of the background task: refreshes if due (or polls the store for a login).
    /// Returns how long to sleep before the next step.
    pub async fn tick(&self) -> Duration {
        let now = (self.clock)();
        let (due, _) = self.next_step(now);
        if due {
            let waiting_for_login = {
                let inner = self.inner();
                inner.stored.is_none() || inner.refused.is_some()
            };
            if waiting_for_login {
                let _flight = self.refreshing.lock().await;
                self.reload_store();
            }
            let usable = {
                let inner = self.inner();
                inner.stored.is_some() && inner.refused.is_none()
            };
            if usable {
                let _flight = self.refreshing.lock().await;
                // Someone may have renewed while we waited for the flight.
                if self.next_step((self.clock)()).0 {
                    self.refresh_now(false).await;
                }
            }
        }
        let (_, wait) = self.next_step((self.clock)());
        Duration::from_secs(wait.max(1))
    }

    /// Keeps the session fresh until `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            let wait = self.tick().await;
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(wait) => {}
                _ = self.replan.notified() => {}
            }
        }
    }

    /// For status: where the session is.
    pub fn view(&self) -> SessionView {
        let now = (self.clock)();
        let inner = self.inner();
        let access = inner.access.as_ref().filter(|a| a.expires_at > now);
        let state = match (&inner.stored, &inner.refused, access) {
            (None, _, _) => SessionState::Missing,
            (Some(_), Some(_), _) => SessionState::Refused,
            (Some(_), None, Some(a)) if inner.last_error.is_some() && now >= a.renew_at => {
                SessionState::Expiring
            }
            (Some(_), None, Some(_)) => SessionState::Active,
            (Some(_), None, None) if inner.last_error.is_some() => SessionState::Expiring,
            (Some(_), None, None) => SessionState::Starting,
        };
        let problem = match state {
            SessionState::Missing => Some(format!(
                "the agent is not signed in to ArgusAI: run `{LOGIN_COMMAND}` (push registration \
                 and other user-only routes fail until then)"
            )),
            SessionState::Refused => Some(format!(
                "{}: run `{LOGIN_COMMAND}`",
                inner
                    .refused
                    .as_deref()
                    .unwrap_or("ArgusAI refused the agent's session")
            )),
            SessionState::Expiring => Some(format!(
                "the agent's ArgusAI session {}: {}; it is retried (if ArgusAI keeps refusing, run \
                 `{LOGIN_COMMAND}`)",
                match access {
                    Some(a) => format!("expires in {} s", a.expires_at.saturating_sub(now)),
                    None => "has expired".to_owned(),
                },
                inner.last_error.as_deref().unwrap_or("renewing fails")
            )),
            SessionState::Active | SessionState::Starting => None,
        };
        SessionView {
            state,
            username: inner.stored.as_ref().map(|s| s.username.clone()),
            role: inner.stored.as_ref().and_then(|s| s.role.clone()),
            signed_in_at: inner.stored.as_ref().map(|s| s.signed_in_at),
            access_expires_in_secs: access.map(|a| a.expires_at.saturating_sub(now)),
            last_renewed_secs_ago: inner.last_renewed_at.map(|t| now.saturating_sub(t)),
            refreshes: inner.refreshes,
            last_error: inner.last_error.clone(),
            problem,
        }
    }
}

/// The real exchange: `POST {backend}/api/v1/auth/refresh` with `{"refresh_token"}` in the body
/// (never a cookie; ArgusAI prefers its `refresh_token` cookie, and the agent sends none).
pub struct HttpExchange {
    client: Client<HttpConnector, Full<Bytes>>,
    uri: Uri,
}

impl HttpExchange {
    /// `backend_origin`: `http://host:port`.
    pub fn new(backend_origin: &str) -> Result<HttpExchange, String> {
        let uri: Uri = format!(
            "{}/api/v1/auth/refresh",
            backend_origin.trim_end_matches('/')
        )
        .parse()
        .map_err(|e| format!("backend url: {e}"))?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        Ok(HttpExchange {
            client: Client::builder(TokioExecutor::new()).build(connector),
            uri,
        })
    }

    async fn call(&self, refresh_token: &str) -> Result<Tokens, ExchangeError> {
        let body = serde_json::json!({ "refresh_token": refresh_token }).to_string();
        let req = Request::post(self.uri.clone())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(
                hyper::header::USER_AGENT,
                crate::domain::proxy::backend::BACKEND_USER_AGENT,
            )
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ExchangeError::Unavailable(e.to_string()))?;
        let resp =
            self.client.request(req).await.map_err(|e| {
                ExchangeError::Unavailable(format!("ArgusAI is not reachable: {e}"))
            })?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(hyper::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(60);
        let bytes = http_body_util::Limited::new(resp.into_body(), MAX_EXCHANGE_ANSWER)
            .collect()
            .await
            .map_err(|e| ExchangeError::Unavailable(format!("reading ArgusAI's answer: {e}")))?
            .to_bytes();
        match status {
            StatusCode::OK => serde_json::from_slice::<Tokens>(&bytes).map_err(|e| {
                ExchangeError::Unavailable(format!(
                    "ArgusAI's refresh answer is not a token pair: {e}"
                ))
            }),
            StatusCode::TOO_MANY_REQUESTS => Err(ExchangeError::RateLimited {
                retry_after_secs: retry_after,
            }),
            s if s.is_client_error() => Err(ExchangeError::Refused(format!(
                "HTTP {}: {}",
                s.as_u16(),
                detail_of(&bytes)
            ))),
            s => Err(ExchangeError::Unavailable(format!(
                "ArgusAI answered the refresh with HTTP {}",
                s.as_u16()
            ))),
        }
    }
}

/// FastAPI's `{"detail": "..."}`, else the start of the body.
pub fn detail_of(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
        .unwrap_or_else(|| {
            String::from_utf8_lossy(&body[..body.len().min(200)])
                .chars()
                .filter(|c| !c.is_control())
                .collect()
        })
}

impl TokenExchange for HttpExchange {
    fn refresh<'a>(
        &'a self,
        refresh_token: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Tokens, ExchangeError>> + Send + 'a>> {
        Box::pin(self.call(refresh_token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    /// A fake ArgusAI: counts refreshes, answers after `delay`, with tokens whose `exp` is
    /// `now + lifetime`, or with the scripted failure.
    struct FakeExchange {
        calls: Arc<AtomicUsize>,
        now: Arc<AtomicU64>,
        lifetime: u64,
        delay: Duration,
        fail: Arc<Mutex<Option<ExchangeError>>>,
    }

    fn jwt(iat: u64, exp: u64, n: usize) -> String {
        let payload = URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"u","exp":{exp},"iat":{iat}}}"#));
        format!("eyJhbGciOiJIUzI1NiJ9.{payload}.sig{n}")
    }

    impl TokenExchange for FakeExchange {
        fn refresh<'a>(
            &'a self,
            refresh_token: &'a str,
        ) -> Pin<Box<dyn Future<Output = Result<Tokens, ExchangeError>> + Send + 'a>> {
            Box::pin(async move {
                let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::time::sleep(self.delay).await;
                if let Some(e) = self.fail.lock().expect("lock").clone() {
                    return Err(e);
                }
                let now = self.now.load(Ordering::SeqCst);
                Ok(Tokens {
                    access_token: jwt(now, now + self.lifetime, n),
                    refresh_token: format!("{refresh_token}+"),
                })
            })
        }
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        store: Arc<Store>,
        session: Arc<BackendSession>,
        calls: Arc<AtomicUsize>,
        now: Arc<AtomicU64>,
        fail: Arc<Mutex<Option<ExchangeError>>>,
    }

    fn fixture(signed_in: bool, lifetime: u64, delay: Duration) -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(Store::open(dir.path().join("d").join("relay.db")).expect("store"));
        if signed_in {
            store
                .save_backend_login("admin", Some("admin"), "r0", 1_000)
                .expect("login saved");
        }
        let now = Arc::new(AtomicU64::new(1_000));
        let calls = Arc::new(AtomicUsize::new(0));
        let fail = Arc::new(Mutex::new(None));
        let exchange = FakeExchange {
            calls: calls.clone(),
            now: now.clone(),
            lifetime,
            delay,
            fail: fail.clone(),
        };
        let clock_now = now.clone();
        let clock: Clock = Arc::new(move || clock_now.load(Ordering::SeqCst));
        let session = Arc::new(
            BackendSession::new(store.clone(), Box::new(exchange), clock).expect("session"),
        );
        Fixture {
            _dir: dir,
            store,
            session,
            calls,
            now,
            fail,
        }
    }

    #[test]
    fn renewal_is_due_with_a_fifth_of_the_lifetime_left() {
        // ArgusAI's 24 h token: renewed with 4.8 h left.
        assert_eq!(
            renewal_times(0, Some(86_400), Some(0)),
            (86_400 - 17_280, 86_400)
        );
        // Obtained late in its life (the agent started with an old token): renewed at once.
        assert_eq!(renewal_times(80_000, Some(86_400), Some(0)).0, 80_000);
        // A 2 s token is renewed 1 s ahead, not 0.4 s.
        assert_eq!(renewal_times(10, Some(12), Some(10)), (11, 12));
        // No readable `exp`: assumed short.
        assert_eq!(
            renewal_times(100, None, None).1,
            100 + UNKNOWN_LIFETIME_SECS
        );
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_refresh() {
        let f = fixture(true, 3600, Duration::from_millis(50));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let s = f.session.clone();
                tokio::spawn(async move { s.bearer().await })
            })
            .collect();
        let mut tokens = Vec::new();
        for t in tasks {
            tokens.push(t.await.expect("task").expect("a token"));
        }
        assert_eq!(
            f.calls.load(Ordering::SeqCst),
            1,
            "one refresh for 16 callers"
        );
        assert!(tokens.windows(2).all(|w| w[0] == w[1]));
        // The rotated refresh token is what the store now holds.
        let stored = f.store.backend_session().expect("read").expect("present");
        assert_eq!(stored.refresh_token, "r0+");
    }

    #[tokio::test]
    async fn the_background_step_renews_ahead_of_expiry_and_not_before() {
        let f = fixture(true, 100, Duration::ZERO);
        f.session.tick().await; // start-up refresh
        assert_eq!(f.calls.load(Ordering::SeqCst), 1);
        f.now.store(1_079, Ordering::SeqCst); // 21 s left: not yet (renew with 20 s left)
        let wait = f.session.tick().await;
        assert_eq!(f.calls.load(Ordering::SeqCst), 1);
        assert_eq!(wait, Duration::from_secs(1));
        f.now.store(1_080, Ordering::SeqCst);
        f.session.tick().await;
        assert_eq!(f.calls.load(Ordering::SeqCst), 2);
        assert_eq!(f.session.view().state, SessionState::Active);
        // Requests in between never waited: the token stayed valid throughout.
        assert!(f.session.current().is_some());
    }

    #[tokio::test]
    async fn a_rejected_token_is_renewed_once_for_all_and_not_again_at_once() {
        let f = fixture(true, 3600, Duration::from_millis(20));
        let first = f.session.bearer().await.expect("token");
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (s, t) = (f.session.clone(), first.clone());
                tokio::spawn(async move { s.renew_after_rejection(&t).await })
            })
            .collect();
        let mut renewed = Vec::new();
        for t in tasks {
            match t.await.expect("task") {
                Renewal::Token(t) => renewed.push(t),
                _ => panic!("renewal failed"),
            }
        }
        assert_eq!(f.calls.load(Ordering::SeqCst), 2, "start-up + one renewal");
        assert!(renewed.iter().all(|t| *t != first && *t == renewed[0]));
        // The renewed token refused too, at once: no third refresh; the cause is named.
        match f.session.renew_after_rejection(&renewed[0]).await {
            Renewal::Refused(why) => assert!(why.contains("refused an access token"), "{why}"),
            _ => panic!("expected a refusal"),
        }
        assert_eq!(f.calls.load(Ordering::SeqCst), 2);
        // After the cool-down, a refusal may renew again.
        f.now.fetch_add(REJECTION_COOLDOWN_SECS, Ordering::SeqCst);
        assert!(matches!(
            f.session.renew_after_rejection(&renewed[0]).await,
            Renewal::Token(_)
        ));
        assert_eq!(f.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_refused_session_is_not_retried_until_a_new_login() {
        let f = fixture(true, 3600, Duration::ZERO);
        *f.fail.lock().expect("lock") = Some(ExchangeError::Refused("HTTP 401: revoked".into()));
        assert!(f.session.bearer().await.is_none());
        assert_eq!(f.session.view().state, SessionState::Refused);
        for _ in 0..5 {
            assert!(f.session.bearer().await.is_none());
            f.session.tick().await;
        }
        assert_eq!(
            f.calls.load(Ordering::SeqCst),
            1,
            "no retry of a refused session"
        );
        let stored = f.store.backend_session().expect("read").expect("present");
        assert!(stored.refused.is_some(), "the refusal is recorded");
        // The owner signs in again; the background step adopts it.
        *f.fail.lock().expect("lock") = None;
        f.store
            .save_backend_login("admin", None, "new", 1_000)
            .expect("login");
        f.now.fetch_add(STORE_POLL_SECS, Ordering::SeqCst);
        f.session.tick().await;
        assert_eq!(f.session.view().state, SessionState::Active);
        assert_eq!(f.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn transient_failures_back_off_and_keep_the_valid_token() {
        let f = fixture(true, 100, Duration::ZERO);
        let token = f.session.bearer().await.expect("token");
        *f.fail.lock().expect("lock") = Some(ExchangeError::Unavailable("down".into()));
        f.now.store(1_085, Ordering::SeqCst); // due (renew with 20 s left)
        f.session.tick().await;
        assert_eq!(f.calls.load(Ordering::SeqCst), 2);
        assert_eq!(f.session.current(), Some(token), "still valid: still used");
        assert_eq!(f.session.view().state, SessionState::Expiring);
        // Within the backoff: no new attempt, however many requests come.
        for _ in 0..10 {
            let _ = f.session.bearer().await;
            f.session.tick().await;
        }
        assert_eq!(f.calls.load(Ordering::SeqCst), 2);
        *f.fail.lock().expect("lock") = None;
        f.now.fetch_add(BACKOFF_FIRST_SECS, Ordering::SeqCst);
        f.session.tick().await;
        assert_eq!(f.calls.load(Ordering::SeqCst), 3);
        assert_eq!(f.session.view().state, SessionState::Active);
    }

    #[tokio::test]
    async fn without_a_login_nothing_is_called() {
        let f = fixture(false, 100, Duration::ZERO);
        assert!(f.session.bearer().await.is_none());
        f.session.tick().await;
        assert_eq!(f.calls.load(Ordering::SeqCst), 0);
        let view = f.session.view();
        assert_eq!(view.state, SessionState::Missing);
        assert!(view.problem.expect("a problem").contains(LOGIN_COMMAND));
    }
}
