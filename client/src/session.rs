//! A paired phone's session: every request goes over the LAN when a verified LAN server is
//! known, else over the relay — and the choice follows the network.
//!
//! Choosing ([`Session::resolve`], bounded by [`SessionOptions::discovery_timeout`]):
//! 1. the last LAN address that passed verification, then every mDNS candidate whose TXT
//!    fingerprint is absent or equals the pin, each checked by [`super::verify::verify_lan`];
//! 2. the first that passes is used; if none does in time, the relay.
//!
//! Keeping (a background task, while the session lives):
//! - a LAN request that fails in transport (refused, reset, timed out, a new connection failing
//!   the pin) switches to the relay at once and retries there when that is safe (the request
//!   never left, or the method is idempotent), then looks for the LAN again;
//! - an mDNS goodbye for the instance in use switches to the relay;
//! - a new instance that verifies switches to the LAN;
//! - a local address appearing or disappearing (network change) re-checks everything;
//! - on the relay, the LAN is looked for again every [`SessionOptions::recheck_every`].
//!
//! Tokens: the access token is refreshed (rotating the refresh token) a minute before it expires
//! and once on a `401 invalid_token` (other than `token.device_revoked`); refreshes are serialised, since presenting a rotated refresh
//! token twice revokes the whole family. The state file is rewritten after every rotation.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::browse::{BrowseConfig, BrowseEvent, Browser, LanCandidate};
use super::http::{lan_client, relay_client};
use super::pin::Pin;
use super::state::ClientState;
use super::verify::{chain, verify_lan, LanRejected};
use super::ClientError;
use crate::clock::unix_now;

/// Refresh the access token this long before it expires.
const REFRESH_MARGIN_SECS: u64 = 60;

#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// mDNS browsing; `None` = no discovery (the last LAN address and the relay only).
    pub browse: Option<BrowseConfig>,
    /// How long [`Session::resolve`] looks for the LAN before choosing the relay.
    pub discovery_timeout: Duration,
    /// Connect + TLS + health for one LAN candidate.
    pub probe_timeout: Duration,
    /// While on the relay, look for the LAN again this often.
    pub recheck_every: Duration,
    /// Where to persist token rotations and the last LAN address.
    pub state_path: Option<PathBuf>,
    /// Sealed mode ([`super::sealed`]): every request with the device token goes sealed through
    /// the relay, never in clear and never over the LAN; the key is the one pinned at pairing.
    pub sealed: bool,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            browse: Some(BrowseConfig::default()),
            discovery_timeout: Duration::from_secs(2),
            probe_timeout: Duration::from_millis(1500),
            recheck_every: Duration::from_secs(30),
            state_path: None,
            sealed: false,
        }
    }
}

/// Which way requests go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    Lan(SocketAddr),
    Relay,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Lan(a) => write!(f, "lan {a}"),
            Route::Relay => f.write_str("relay"),
        }
    }
}

impl Route {
    pub fn is_lan(&self) -> bool {
        matches!(self, Route::Lan(_))
    }

    /// `{"route":"lan","address":"…"}` / `{"route":"relay"}`.
    pub fn to_json(&self) -> Value {
        match self {
            Route::Lan(a) => json!({"route": "lan", "address": a.to_string()}),
            Route::Relay => json!({"route": "relay"}),
        }
    }
}

/// An answer, and the way it came.
#[derive(Debug, Clone)]
pub struct Response {
    pub route: Route,
    pub status: u16,
    pub body: bytes::Bytes,
    pub elapsed: Duration,
}

impl Response {
    /// The body as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

struct Inner {
    opts: SessionOptions,
    pin: Pin,
    state: tokio::sync::Mutex<ClientState>,
    relay_http: reqwest::Client,
    lan_http: reqwest::Client,
    route: watch::Sender<Route>,
    candidates: Mutex<Vec<LanCandidate>>,
    candidates_changed: Notify,
    recheck: Notify,
    rejections: Mutex<Vec<(SocketAddr, LanRejected)>>,
    /// Sealed mode: the key configuration, fetched and checked against the pin on first use.
    sealed_key: tokio::sync::Mutex<Option<super::sealed::KeyConfig>>,
}

pub struct Session {
    inner: Arc<Inner>,
    keeper: JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        // Drops the browser (and its mDNS daemon) with the task.
        self.keeper.abort();
    }
}

impl Session {
    /// Starts a session on the relay and its background keeper (needs a Tokio runtime). Call
    /// [`Session::resolve`] to look for the LAN first.
    pub fn open(state: ClientState, opts: SessionOptions) -> Result<Session, ClientError> {
        let pin = state.pin()?;
        let browser = opts.browse.as_ref().map(Browser::start).transpose()?;
        let inner = Arc::new(Inner {
            lan_http: lan_client(pin, opts.probe_timeout)?,
            relay_http: relay_client()?,
            opts,
            pin,
            state: tokio::sync::Mutex::new(state),
            route: watch::Sender::new(Route::Relay),
            candidates: Mutex::new(Vec::new()),
            candidates_changed: Notify::new(),
            recheck: Notify::new(),
            rejections: Mutex::new(Vec::new()),
            sealed_key: tokio::sync::Mutex::new(None),
        });
        let keeper = tokio::spawn(keep(inner.clone(), browser));
        Ok(Session { inner, keeper })
    }

    pub fn route(&self) -> Route {
        *self.inner.route.borrow()
    }

    /// Follows route changes.
    pub fn watch_route(&self) -> watch::Receiver<Route> {
        self.inner.route.subscribe()
    }

    /// The state as it is now (tokens rotate).
    pub async fn state(&self) -> ClientState {
        self.inner.state.lock().await.clone()
    }

    /// LAN servers refused so far, and why (most recent last; at most 32).
    pub fn rejections(&self) -> Vec<(SocketAddr, LanRejected)> {
        lock(&self.inner.rejections).clone()
    }

    /// mDNS instances seen so far.
    pub fn candidates(&self) -> Vec<LanCandidate> {
        lock(&self.inner.candidates).clone()
    }

    /// Chooses the route now (see the module documentation).
    pub async fn resolve(&self) -> Route {
        let inner = &self.inner;
        if let Route::Lan(addr) = self.route() {
            if inner.check(addr).await {
                return Route::Lan(addr);
            }
            inner.use_relay("the LAN server no longer verifies");
        }
        let deadline = tokio::time::Instant::now() + inner.opts.discovery_timeout;
        let mut tried = HashSet::new();
        loop {
            let changed = inner.candidates_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            for addr in inner.addresses_to_try().await {
                if tried.insert(addr) && inner.check(addr).await {
                    inner.use_lan(addr).await;
                    return Route::Lan(addr);
                }
            }
            if inner.opts.browse.is_none()
                || tokio::time::timeout_at(deadline, changed).await.is_err()
            {
                break;
            }
        }
        inner.use_relay("no verified LAN server");
        Route::Relay
    }

    pub async fn get(&self, path: &str) -> Result<Response, ClientError> {
        self.request(Method::GET, path, None).await
    }

    /// A request with the device token, over the current route.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, ClientError> {
        if !path.starts_with('/') {
            return Err(ClientError::BadPath(path.chars().take(80).collect()));
        }
        let token = self.inner.fresh_access_token().await?;
        let resp = self
            .inner
            .send_routed(&method, path, body, Some(&token))
            .await?;
        let error = resp.json()["error"].clone();
        if resp.status == 401
            && error["code"] == "invalid_token"
            && error["reason"] != "token.device_revoked"
        {
            self.inner.refresh(Some(&token)).await?;
            let token = self.inner.state.lock().await.access_token.clone();
            return self
                .inner
                .send_routed(&method, path, body, Some(&token))
                .await;
        }
        Ok(resp)
    }

    /// Rotates the tokens now.
    pub async fn refresh(&self) -> Result<(), ClientError> {
        self.inner.refresh(None).await
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inner {
    fn route(&self) -> Route {
        *self.route.borrow()
    }

    fn use_relay(&self, why: &str) {
        let old = self.route.send_replace(Route::Relay);
        if old != Route::Relay {
            tracing::info!(from = %old, why, "using the relay");
        }
    }

    async fn use_lan(&self, addr: SocketAddr) {
        let old = self.route.send_replace(Route::Lan(addr));
        if old != Route::Lan(addr) {
            tracing::info!(from = %old, to = %addr, "using the LAN");
        }
        let mut state = self.state.lock().await;
        if state.last_lan != Some(addr) {
            state.last_lan = Some(addr);
            self.persist(&state);
        }
    }

    fn persist(&self, state: &ClientState) {
        if let Some(path) = &self.opts.state_path {
            if let Err(e) = state.save(path) {
                tracing::warn!(error = %e, "cannot save the client state");
            }
        }
    }

    /// Verifies one LAN address; remembers why it was refused.
    async fn check(&self, addr: SocketAddr) -> bool {
        let instance = self.state.lock().await.instance_id.clone();
        match verify_lan(
            &self.lan_http,
            addr,
            &self.pin,
            Some(&instance),
            self.opts.probe_timeout,
        )
        .await
        {
            Ok(_) => true,
            Err(why) => {
                tracing::info!(%addr, reason = %why, "LAN server not used");
                let mut r = lock(&self.rejections);
                if r.len() >= 32 {
                    r.remove(0);
                }
                r.push((addr, why));
                false
            }
        }
    }

    /// The last verified LAN address, then the addresses of candidates that may be ours.
    async fn addresses_to_try(&self) -> Vec<SocketAddr> {
        let mut out: Vec<SocketAddr> = self.state.lock().await.last_lan.into_iter().collect();
        for c in lock(&self.candidates).iter() {
            if !self.may_be_ours(c) {
                continue;
            }
            for a in &c.addrs {
                if !out.contains(a) {
                    out.push(*a);
                }
            }
        }
        out
    }

    /// A TXT fingerprint that names another certificate means another server; a missing one
    /// or ours is worth a (verified) try.
    fn may_be_ours(&self, c: &LanCandidate) -> bool {
        c.fingerprint
            .as_deref()
            .is_none_or(|f| Pin::parse(f).ok() == Some(self.pin))
    }

    /// Re-checks the current LAN server, or looks for one.
    async fn reevaluate(&self) {
        if let Route::Lan(addr) = self.route() {
            if self.check(addr).await {
                return;
            }
            self.use_relay("the LAN server no longer verifies");
        }
        for addr in self.addresses_to_try().await {
            if self.check(addr).await {
                self.use_lan(addr).await;
                return;
            }
        }
    }

    async fn fresh_access_token(&self) -> Result<String, ClientError> {
        let token = {
            let state = self.state.lock().await;
            if state.access_expires_at > unix_now() + REFRESH_MARGIN_SECS {
                return Ok(state.access_token.clone());
            }
            state.access_token.clone()
        };
        self.refresh(Some(&token)).await?;
        Ok(self.state.lock().await.access_token.clone())
    }

    /// Rotates the tokens, unless `unless_changed_from` is given and another task already did.
    async fn refresh(&self, unless_changed_from: Option<&str>) -> Result<(), ClientError> {
        // Held across the call: two refreshes with one refresh token revoke the family.
        let mut state = self.state.lock().await;
        if unless_changed_from.is_some_and(|t| t != state.access_token) {
            return Ok(());
        }
        let body = json!({"refresh_token": state.refresh_token, "device_id": state.device_id});
        let resp = self
            .send_routed_with(
                &state.relay_url,
                &Method::POST,
                "/api/v1/mobile/auth/refresh",
                Some(&body),
                None,
            )
            .await?;
        let answer = resp.json();
        if resp.status != 200 {
            return Err(ClientError::from_answer(resp.status, &answer));
        }
        let (Some(access), Some(refresh), Some(expires_in)) = (
            answer["access_token"].as_str(),
            answer["refresh_token"].as_str(),
            answer["expires_in"].as_u64(),
        ) else {
            return Err(ClientError::BadAnswer("refresh answer incomplete".into()));
        };
        state.access_token = access.to_owned();
        state.refresh_token = refresh.to_owned();
        state.access_expires_at = unix_now() + expires_in;
        self.persist(&state);
        tracing::info!(via = %resp.route, "tokens refreshed");
        Ok(())
    }

    async fn send_routed(
        &self,
        method: &Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Result<Response, ClientError> {
        let relay = self.state.lock().await.relay_url.clone();
        self.send_routed_with(&relay, method, path, body, token)
            .await
    }

    /// Over the LAN if that is the route (falling back as the module documentation says), else
    /// over the relay at `relay`.
    async fn send_routed_with(
        &self,
        relay: &str,
        method: &Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Result<Response, ClientError> {
        if let (true, Some(token)) = (self.opts.sealed, token) {
            return self.send_sealed(relay, method, path, body, token).await;
        }
        if let Route::Lan(addr) = self.route() {
            let base = format!("https://{addr}");
            match self
                .send(
                    &self.lan_http,
                    Route::Lan(addr),
                    &base,
                    method,
                    path,
                    body,
                    token,
                )
                .await
            {
                Ok(resp) => return Ok(resp),
                Err(e) => {
                    let never_sent = e.is_connect();
                    tracing::info!(%addr, error = %chain(&e), "LAN request failed; switching to the relay");
                    self.use_relay("a LAN request failed");
                    self.recheck.notify_one();
                    if !never_sent && !is_idempotent(method) {
                        return Err(ClientError::Transport {
                            what: base,
                            message: chain(&e),
                        });
                    }
                }
            }
        }
        self.send(
            &self.relay_http,
            Route::Relay,
            relay,
            method,
            path,
            body,
            token,
        )
        .await
        .map_err(|e| ClientError::Transport {
            what: relay.to_owned(),
            message: chain(&e),
        })
    }

    /// Sealed mode: through the relay, sealed to the pinned key; adopts a rotated key whose pin
    /// the agent names inside the seal.
    async fn send_sealed(
        &self,
        relay: &str,
        method: &Method,
        path: &str,
        body: Option<&Value>,
        token: &str,
    ) -> Result<Response, ClientError> {
        let mut key = self.sealed_key.lock().await;
        let config = match &*key {
            Some(config) => config.clone(),
            None => {
                let pin = self.state.lock().await.ohttp_keys_sha256.clone();
                let pin = pin.ok_or(ClientError::SealedNotPaired)?;
                let config = super::sealed::fetch_key_config(&self.relay_http, relay, &pin).await?;
                key.insert(config).clone()
            }
        };
        let (resp, current_pin) =
            super::sealed::send(&self.relay_http, relay, &config, method, path, body, token)
                .await?;
        if let Some(new_pin) = current_pin.filter(|p| *p != config.pin) {
            let rotated =
                super::sealed::fetch_key_config(&self.relay_http, relay, &new_pin).await?;
            *key = Some(rotated);
            let mut state = self.state.lock().await;
            state.ohttp_keys_sha256 = Some(new_pin);
            self.persist(&state);
            tracing::info!("the agent's Oblivious HTTP key rotated; the new one is pinned");
        }
        Ok(resp)
    }

    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        http: &reqwest::Client,
        route: Route,
        base: &str,
        method: &Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Result<Response, reqwest::Error> {
        let started = Instant::now();
        let mut rb = http.request(method.clone(), format!("{base}{path}"));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let resp = rb.send().await?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await?;
        Ok(Response {
            route,
            status,
            body,
            elapsed: started.elapsed(),
        })
    }

    fn add_candidate(&self, c: LanCandidate) {
        let mut list = lock(&self.candidates);
        list.retain(|x| x.fullname != c.fullname);
        list.push(c);
        drop(list);
        self.candidates_changed.notify_waiters();
    }

    fn remove_candidate(&self, fullname: &str) -> Option<LanCandidate> {
        let mut list = lock(&self.candidates);
        let i = list.iter().position(|c| c.fullname == fullname)?;
        Some(list.remove(i))
    }
}

fn is_idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
    )
}

/// The background keeper (see the module documentation).
async fn keep(inner: Arc<Inner>, browser: Option<Browser>) {
    async fn next_event(b: &Option<Browser>) -> Option<BrowseEvent> {
        match b {
            Some(b) => b.next().await,
            None => std::future::pending().await,
        }
    }
    let mut browser = browser;
    loop {
        let on_relay = inner.route() == Route::Relay;
        tokio::select! {
            ev = next_event(&browser) => match ev {
                None => {
                    tracing::warn!("mDNS browsing stopped");
                    browser = None;
                }
                Some(BrowseEvent::Found(c)) => {
                    let worth = inner.route() == Route::Relay && inner.may_be_ours(&c);
                    let addrs = c.addrs.clone();
                    inner.add_candidate(c);
                    if worth {
                        for addr in addrs {
                            if inner.check(addr).await {
                                inner.use_lan(addr).await;
                                break;
                            }
                        }
                    }
                }
                Some(BrowseEvent::Gone { fullname }) => {
                    let gone = inner.remove_candidate(&fullname);
                    if let (Route::Lan(addr), Some(c)) = (inner.route(), gone) {
                        if c.addrs.contains(&addr) {
                            inner.use_relay("the LAN server said goodbye");
                            inner.reevaluate().await;
                        }
                    }
                }
                Some(BrowseEvent::NetworkChanged { ip, added }) => {
                    tracing::info!(%ip, added, "network changed; looking again");
                    inner.reevaluate().await;
                }
            },
            _ = inner.recheck.notified() => inner.reevaluate().await,
            _ = tokio::time::sleep(inner.opts.recheck_every), if on_relay => inner.reevaluate().await,
        }
    }
}
