//! The hardened forwarder to the ArgusAI backend.
//!
//! ArgusAI cannot defend itself (see `docs/security.md`), so every request the agent forwards is
//! rewritten here, whatever listener it came from:
//! - client credentials for the backend are removed (`Cookie` — its `access_token` cookie beats
//!   Bearer —, `X-API-Key`, `Authorization`: device tokens never reach the backend);
//! - the client's `User-Agent` is replaced (a UA containing `testclient` skips ArgusAI's auth);
//! - `X-Forwarded-For` is exactly one value, the real client IP (uvicorn trusts it from 127.0.0.1
//!   and keys its login limit on it); every other forwarding header is dropped;
//! - the agent's own backend credential is added: its ArgusAI user session as
//!   `Authorization: Bearer` ([`crate::domain::proxy::backend_session`]), or, while it has none, the configured
//!   API key (docs/proxy.md, "The agent's credential"); never a cookie;
//! - a backend 401 to a request sent with the session renews the session once (shared by every
//!   request refused the same token) and retries the request once if its body can be replayed
//!   (no body, or one of at most [`REPLAYABLE_BODY_BYTES`] with a `Content-Length`); otherwise,
//!   and when the retry is refused too, the client gets a JSON 502 naming the cause
//!   (`backend_session_refused`, `backend_session_missing`), never ArgusAI's 401;
//! - `Set-Cookie` of ArgusAI's `access_token`/`refresh_token` is removed from answers (the agent's
//!   session never reaches a phone);
//! - hop-by-hop headers, and those the client names in `Connection`, are dropped
//!   ([`headers::ForwardedRequestHeaders`]); a WebSocket upgrade gets its own
//!   `Connection: upgrade` / `Upgrade: websocket`;
//! - the relay's own `Sec-WebSocket-Protocol` entries (the token, `argus-relay`) are removed from
//!   every request;
//! - redirects are passed back, never followed; a `Location` naming the backend's own address is
//!   made relative (the backend's trailing-slash 307s keep working, its address does not leak).
//!
//! Bodies stream both ways with backpressure, frame by frame; nothing is buffered here (uploads
//! to `/api/v1/system/restore`, backup downloads, exports, SSE, video ranges all pass through).
//!
//! Timeouts, by route class ([`BackendClass`]), all from `backend.request_timeout_secs` (`T`):
//!
//! | class | response head | response body |
//! |---|---|---|
//! | `api`, `image` | within `T` of the request body's end | finished within `T` of the head |
//! | `video`, `export` | within `T` | no total; cut after `T` without data |
//! | `event_stream` (SSE), `websocket` | within `T` | no limit (they are meant to stay open; a WebSocket until its token's `exp` or its device's revocation, [`crate::domain::proxy::ws_bridge`]) |
//!
//! The head timer starts when the request body has been sent, so a 100 MB upload over a slow link
//! is not cut by it; a request body that stalls for `limits.idle_timeout_secs` is (see the tunnel
//! listener). Backend refused → 502 at once; no head in time → 504; a body cut mid-way (backend
//! died) → the client's stream is cut too, the connection closed, the agent carries on.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use argus_shared::headers;
use argus_shared::route::BackendClass;
use argus_shared::ws_auth;
use hyper::body::Body as _;
use hyper::header::{HeaderName, HeaderValue};
use hyper::upgrade::OnUpgrade;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::Semaphore;

use crate::base::error::AgentError;
use crate::base::http::body::{self, Body};
use crate::base::metrics::{UpstreamError, METRICS};
use crate::domain::proxy::backend_session::{BackendSession, Renewal};
use crate::domain::proxy::body::{BodyError, Watched};

/// The `User-Agent` the backend sees on every proxied request.
pub const BACKEND_USER_AGENT: &str = concat!("argus-relay/", env!("CARGO_PKG_VERSION"));

#[derive(Clone)]
pub struct Backend {
    client: Client<HttpConnector, Body>,
    scheme: hyper::http::uri::Scheme,
    authority: hyper::http::uri::Authority,
    /// `http://host:port` of the backend, as its redirects spell it.
    origin: String,
    api_key: Option<HeaderValue>,
    /// The agent's ArgusAI user session (preferred over the API key).
    session: Option<Arc<BackendSession>>,
    timeout: Duration,
    /// Bounds the `api` and `image` requests in flight to the backend (see [`Backend::new`]).
    short_requests: Arc<Semaphore>,
}

/// Pooled backend connections idle longer than this are not reused: uvicorn (ArgusAI's server)
/// closes keep-alive connections after 5 s, and reusing one it is closing fails the request.
const POOL_IDLE: Duration = Duration::from_secs(4);

/// Every read from a backend connection is into a buffer of this size (and a response head must
/// fit in it). One page of ArgusAI's event list (20 events, ~64 KB) is then one read from the
/// backend and about one write to the client; with hyper's adaptive buffer (8 KiB, doubling, capped
/// at 32 KiB here before) it was two reads and ~4.6 writes (strace, one connection). Each extra
/// trip through the kernel and the scheduler showed in the latency the agent adds (A/B at light
/// load, both orders: +0.26-0.27 -> +0.15-0.16 ms at the median, the same as nginx).
/// Its memory: the buffer is touched only as far as a read fills it, and an idle pooled connection
/// is closed after [`POOL_IDLE`]; +1.3 MB RSS after a 64-connection burst of event lists (A/B).
/// hyper's default (adaptive up to ~400 KiB) let buffers grow to 64-128 KiB and stay so.
const BACKEND_READ_BUF: usize = 64 * 1024;

/// A request body up to this size (with a `Content-Length`) is buffered when the request goes
/// with the agent's session, so that it can be sent again after a 401 and a session renewal
/// (push registration, settings). Larger and unsized bodies stream and are not retried.
pub const REPLAYABLE_BODY_BYTES: u64 = 64 * 1024;

/// Which credential of the agent a request went with.
enum Sent {
    Session(HeaderValue),
    ApiKey,
    Nothing,
}

/// What it takes to send a request again: its head (without the credential) and body.
struct Replay {
    method: hyper::Method,
    uri: Uri,
    headers: hyper::HeaderMap,
    body: bytes::Bytes,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendConfigError {
    #[error("backend url {0:?} is not an http:// URL with a host")]
    BadUrl(String),
    #[error("backend api key contains characters not allowed in a header")]
    BadApiKey,
}

/// Who is asking, for the headers the backend sees.
pub struct ForwardContext {
    pub client_ip: Option<IpAddr>,
    pub request_id: String,
    /// The client's side of a WebSocket upgrade, when the request asks for one.
    pub client_upgrade: Option<OnUpgrade>,
    /// The route class (timeouts and metrics).
    pub class: BackendClass,
    /// How long an upgraded connection may live (the device token's); an upgrade is refused
    /// without one.
    pub socket_lifetime: Option<crate::domain::proxy::ws_bridge::SocketLifetime>,
}

impl Backend {
    /// `max_concurrent`: at most this many `api`/`image` requests are in flight to ArgusAI at
    /// once (each holds a connection until its body is read); more wait their turn, within the
    /// head timeout. It spares ArgusAI (one Python process) a stampede and bounds the agent's
    /// connections and memory. Streams (SSE, WebSockets, exports, video) are not counted: they
    /// stay open for long and must not starve the API.
    pub fn new(
        url: &str,
        api_key: Option<&str>,
        timeout: Duration,
        max_concurrent: usize,
    ) -> Result<Backend, BackendConfigError> {
        let uri: Uri = url
            .parse()
            .map_err(|_| BackendConfigError::BadUrl(url.into()))?;
        let scheme = uri
            .scheme()
            .cloned()
            .ok_or_else(|| BackendConfigError::BadUrl(url.into()))?;
        if scheme != hyper::http::uri::Scheme::HTTP {
            // The backend sits beside the agent; TLS to it is not supported (and not needed).
            return Err(BackendConfigError::BadUrl(url.into()));
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| BackendConfigError::BadUrl(url.into()))?;
        let api_key = api_key
            .map(|k| HeaderValue::from_str(k).map_err(|_| BackendConfigError::BadApiKey))
            .transpose()?
            .map(|mut v| {
                v.set_sensitive(true);
                v
            });
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_max_idle_per_host(64)
            .http1_read_buf_exact_size(BACKEND_READ_BUF)
            .build(connector);
        Ok(Backend {
            client,
            origin: format!("{scheme}://{authority}"),
            scheme,
            authority,
            api_key,
            session: None,
            timeout,
            short_requests: Arc::new(Semaphore::new(max_concurrent.max(1))),
        })
    }

    /// Adds the agent's ArgusAI user session: sent instead of the API key whenever it is usable.
    pub fn with_session(mut self, session: Arc<BackendSession>) -> Backend {
        self.session = Some(session);
        self
    }

    /// The session, if the agent has one configured.
    pub fn session(&self) -> Option<&Arc<BackendSession>> {
        self.session.as_ref()
    }

    /// Whether an API key is configured (the fallback while no session is usable).
    pub fn has_api_key(&self) -> bool {
        self.api_key.is_some()
    }

    /// The credential to send, if it is known without waiting.
    fn credential_now(&self) -> Option<Sent> {
        match &self.session {
            Some(session) => session.current().map(Sent::Session),
            None => Some(self.fallback()),
        }
    }

    /// The credential to send after waiting for a session refresh if one is needed.
    async fn credential_after_refresh(&self) -> Sent {
        match &self.session {
            Some(session) => match session.bearer().await {
                Some(token) => Sent::Session(token),
                None => self.fallback(),
            },
            None => self.fallback(),
        }
    }

    fn fallback(&self) -> Sent {
        if self.api_key.is_some() {
            Sent::ApiKey
        } else {
            Sent::Nothing
        }
    }

    fn insert_credential(&self, h: &mut hyper::HeaderMap, sent: &Sent) {
        match sent {
            Sent::Session(token) => {
                h.insert(hyper::header::AUTHORIZATION, token.clone());
            }
            Sent::ApiKey => {
                if let Some(key) = &self.api_key {
                    h.insert(HeaderName::from_static(headers::X_API_KEY), key.clone());
                }
            }
            Sent::Nothing => {}
        }
    }

    /// ArgusAI answered 401 to a request sent with `sent`: renew the session (once for all who
    /// were refused the same token) and send `replay` again, or name the cause.
    async fn after_unauthorized(
        &self,
        first: Response<hyper::body::Incoming>,
        sent: Sent,
        replay: Option<Replay>,
        request_id: &str,
    ) -> Result<Response<hyper::body::Incoming>, AgentError> {
        let Some(session) = &self.session else {
            return Ok(first);
        };
        drop(first);
        let renewal = match &sent {
            Sent::Session(token) => session.renew_after_rejection(token).await,
            Sent::ApiKey | Sent::Nothing => session.unusable_reason(),
        };
        let token = match renewal {
            Renewal::Token(token) => token,
            Renewal::Refused(cause) => {
                tracing::warn!(request_id, cause, "ArgusAI refused the agent's session");
                return Err(AgentError::BackendSessionRefused { cause });
            }
            Renewal::Missing => return Err(AgentError::BackendSessionMissing),
        };
        if matches!(sent, Sent::ApiKey | Sent::Nothing) {
            // The session became usable meanwhile (a new login): this request went without it;
            // the client may send it again.
            return Err(AgentError::BackendSessionRenewed);
        }
        let Some(replay) = replay else {
            return Err(AgentError::BackendSessionRenewed);
        };
        let mut req = Request::builder()
            .method(replay.method)
            .uri(replay.uri)
            .version(hyper::Version::HTTP_11)
            .body(body::full(replay.body))
            .map_err(|_| AgentError::Internal)?;
        *req.headers_mut() = replay.headers;
        req.headers_mut()
            .insert(hyper::header::AUTHORIZATION, token);
        let resp = match tokio::time::timeout(self.timeout, self.client.request(req)).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(_)) => {
                METRICS.upstream_error(UpstreamError::Unreachable);
                return Err(AgentError::BackendUnreachable);
            }
            Err(_) => {
                METRICS.upstream_error(UpstreamError::Timeout);
                return Err(AgentError::BackendTimeout);
            }
        };
        if resp.status() == StatusCode::UNAUTHORIZED {
            let cause = "ArgusAI refused the agent's renewed access token".to_owned();
            tracing::warn!(request_id, cause, "ArgusAI refused the agent's session");
            return Err(AgentError::BackendSessionRefused { cause });
        }
        Ok(resp)
    }

    /// A GET of a backend path, without credential (health checks: `/health` needs none, and an
    /// API key would cost ArgusAI a bcrypt).
    pub async fn get(&self, path: &str) -> Result<Response<hyper::body::Incoming>, AgentError> {
        let uri = self.uri_for(path)?;
        let mut req = Request::get(uri)
            .body(body::empty())
            .map_err(|_| AgentError::Internal)?;
        req.headers_mut().insert(
            hyper::header::USER_AGENT,
            HeaderValue::from_static(BACKEND_USER_AGENT),
        );
        match tokio::time::timeout(self.timeout, self.client.request(req)).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(_)) => Err(AgentError::BackendUnreachable),
            Err(_) => Err(AgentError::BackendTimeout),
        }
    }

    fn uri_for(&self, path_and_query: &str) -> Result<Uri, AgentError> {
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
            .map_err(|_| AgentError::NonCanonicalPath {
                reason: "path.malformed",
            })
    }

    /// Forwards `req` (whose path was already checked) and returns the backend's response.
    pub async fn forward(
        &self,
        req: Request<Body>,
        ctx: ForwardContext,
    ) -> Result<Response<Body>, AgentError> {
        let (parts, req_body) = req.into_parts();
        let path_and_query = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let uri = self.uri_for(path_and_query)?;
        let wants_upgrade = is_websocket_upgrade(&parts.headers);

        let mut out = Request::builder()
            .method(parts.method.clone())
            .uri(uri)
            .version(hyper::Version::HTTP_11);
        let h = out.headers_mut().ok_or(AgentError::Internal)?;
        let forwarded = headers::ForwardedRequestHeaders::new(
            parts
                .headers
                .get_all(hyper::header::CONNECTION)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        );
        for (name, value) in parts.headers.iter() {
            let n = name.as_str();
            if !forwarded.allows(n)
                || n == headers::AUTHORIZATION
                || n == "user-agent"
                || n == "host"
                || n == "expect"
            {
                continue;
            }
            // A clone shares the request's own head buffer, not hyper's read buffer: the
            // server copied the head out of that before hyper read on (detach_head).
            h.append(name.clone(), value.clone());
        }
        // Nothing of the incoming head (URI, headers) is referenced past this point.
        drop(parts);
        h.insert(
            hyper::header::USER_AGENT,
            HeaderValue::from_static(BACKEND_USER_AGENT),
        );
        if let Some(ip) = ctx.client_ip {
            if let Ok(v) = HeaderValue::from_str(&ip.to_string()) {
                h.insert(HeaderName::from_static(headers::X_FORWARDED_FOR), v);
            }
        }
        if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
            h.insert(HeaderName::from_static(headers::REQUEST_ID), v);
        }
        let sent = match self.credential_now() {
            Some(sent) => sent,
            // Boxed: the slow path (a refresh) must not grow every request's future.
            None => Box::pin(self.credential_after_refresh()).await,
        };
        // On every request, upgrade or not: the relay's entries never reach the backend.
        let offered_relay_protocol = ws_protocols_for_backend(h) && wants_upgrade;
        if wants_upgrade {
            h.insert(
                hyper::header::CONNECTION,
                HeaderValue::from_static("upgrade"),
            );
            h.insert(
                hyper::header::UPGRADE,
                HeaderValue::from_static("websocket"),
            );
        }
        // A request sent with the session can be sent again after a 401 if its body is known.
        let (req_body, replay) = if matches!(sent, Sent::Session(_)) {
            let target = parts_method_uri(&out);
            let head = out.headers_ref().ok_or(AgentError::Internal)?;
            Box::pin(replayable(req_body, head, &target)).await?
        } else {
            (req_body, None)
        };
        if let Some(h) = out.headers_mut() {
            self.insert_credential(h, &sent);
        }
        // The head timer starts once the request body is sent (uploads may take long).
        let (req_body, body_sent) = if req_body.is_end_stream() {
            (req_body, None)
        } else {
            let (b, rx) = Watched::new(req_body).signal_end();
            (body::boxed(b), Some(rx))
        };
        let out = out.body(req_body).map_err(|_| AgentError::Internal)?;

        let short = matches!(ctx.class, BackendClass::Api | BackendClass::Image);
        let permit = if short {
            let acquire = self.short_requests.clone().acquire_owned();
            match tokio::time::timeout(self.timeout, acquire).await {
                Ok(Ok(p)) => Some(p),
                Ok(Err(_)) => return Err(AgentError::Internal),
                Err(_) => {
                    tracing::warn!(
                        request_id = ctx.request_id.as_str(),
                        "no backend slot in time"
                    );
                    METRICS.upstream_error(UpstreamError::Timeout);
                    return Err(AgentError::BackendTimeout);
                }
            }
        } else {
            None
        };
        // Latency is ArgusAI's: measured once a slot is held.
        let started = Instant::now();
        let head_timeout = async {
            if let Some(rx) = body_sent {
                let _ = rx.await;
            }
            tokio::time::sleep(self.timeout).await
        };
        let result = tokio::select! {
            r = self.client.request(out) => Some(r),
            _ = head_timeout => None,
        };
        let mut resp = match result {
            Some(Ok(resp)) => resp,
            Some(Err(e)) => {
                let cause = BodyError::find(&e);
                tracing::warn!(request_id = ctx.request_id.as_str(), error = %e, ?cause, "backend request failed");
                return Err(match cause {
                    Some(BodyError::TooLarge { .. }) => {
                        METRICS.upstream_error(UpstreamError::BodyTooLarge);
                        AgentError::PayloadTooLarge
                    }
                    Some(BodyError::Stalled { .. } | BodyError::DeadlineExceeded { .. }) => {
                        METRICS.upstream_error(UpstreamError::BodyStalled);
                        AgentError::BadRequest("the request body stopped arriving".into())
                    }
                    None => {
                        METRICS.upstream_error(UpstreamError::Unreachable);
                        AgentError::BackendUnreachable
                    }
                });
            }
            None => {
                tracing::warn!(request_id = ctx.request_id.as_str(), "backend timed out");
                METRICS.upstream_error(UpstreamError::Timeout);
                return Err(AgentError::BackendTimeout);
            }
        };
        if resp.status() == StatusCode::UNAUTHORIZED && self.session.is_some() {
            resp = Box::pin(self.after_unauthorized(resp, sent, replay, &ctx.request_id)).await?;
        }
        METRICS.upstream_latency(ctx.class, started.elapsed());

        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            let Some(client_upgrade) = ctx.client_upgrade.filter(|_| wants_upgrade) else {
                return Err(AgentError::BackendUnreachable);
            };
            let Some(lifetime) = ctx.socket_lifetime else {
                return Err(AgentError::Internal);
            };
            let backend_upgrade = hyper::upgrade::on(&mut resp);
            let request_id = ctx.request_id.clone();
            tokio::spawn(async move {
                match tokio::try_join!(client_upgrade, backend_upgrade) {
                    Ok((client, backend)) => {
                        METRICS.websocket_opened();
                        let end = crate::domain::proxy::ws_bridge::run(
                            TokioIo::new(client),
                            TokioIo::new(backend),
                            lifetime,
                        )
                        .await;
                        match end {
                            crate::domain::proxy::ws_bridge::BridgeEnd::Closed => {
                                tracing::debug!(request_id, "websocket closed")
                            }
                            cut => {
                                tracing::info!(request_id, ?cut, "websocket closed by the relay")
                            }
                        }
                        METRICS.websocket_closed();
                    }
                    Err(e) => tracing::warn!(request_id, error = %e, "websocket upgrade failed"),
                }
            });
            let (mut parts, _) = resp.into_parts();
            add_request_id(&mut parts.headers, &ctx.request_id);
            if offered_relay_protocol && !parts.headers.contains_key(ws_auth::HEADER) {
                parts.headers.insert(
                    HeaderName::from_static(ws_auth::HEADER),
                    HeaderValue::from_static(ws_auth::PROTOCOL),
                );
            }
            return Ok(Response::from_parts(parts, body::empty()));
        }

        let (mut parts, resp_body) = resp.into_parts();
        for name in headers::HOP_BY_HOP {
            parts.headers.remove(*name);
        }
        strip_session_cookies(&mut parts.headers);
        if parts.status.is_redirection() {
            self.relativize_location(&mut parts.headers);
        }
        add_request_id(&mut parts.headers, &ctx.request_id);
        let watched = Watched::new(resp_body).hold(permit);
        let watched = match ctx.class {
            BackendClass::Api | BackendClass::Image => watched.deadline(self.timeout),
            BackendClass::Video | BackendClass::Export => watched.stall_after(self.timeout),
            BackendClass::EventStream | BackendClass::WebSocket => watched,
        };
        let body = watched.report_cut(ctx.request_id);
        Ok(Response::from_parts(parts, body::boxed(body)))
    }

    /// `Location: http://<backend>/x` → `/x` (the backend builds absolute URLs from `Host`).
    fn relativize_location(&self, h: &mut hyper::HeaderMap) {
        let Some(loc) = h.get(hyper::header::LOCATION).and_then(|v| v.to_str().ok()) else {
            return;
        };
        let Some(rest) = loc
            .get(..self.origin.len())
            .filter(|p| p.eq_ignore_ascii_case(&self.origin))
            .and_then(|_| loc.get(self.origin.len()..))
        else {
            return;
        };
        let rel = match rest {
            "" => "/".to_owned(),
            r if r.starts_with('/') => r.to_owned(),
            r if r.starts_with('?') => format!("/{r}"),
            _ => return, // `http://host:8000evil.com`: not ours; leave it.
        };
        if let Ok(v) = HeaderValue::from_str(&rel) {
            h.insert(hyper::header::LOCATION, v);
        }
    }
}

/// Removes the relay's own WebSocket subprotocols (the token entry and [`ws_auth::PROTOCOL`])
/// from what the backend is offered; true if the client offered [`ws_auth::PROTOCOL`] (the
/// agent then selects it in the `101`).
fn ws_protocols_for_backend(h: &mut hyper::HeaderMap) -> bool {
    let Some(offered) = h
        .get(ws_auth::HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        h.remove(ws_auth::HEADER);
        return false;
    };
    h.remove(ws_auth::HEADER);
    if let Some(rest) = ws_auth::protocols_for_backend(&offered) {
        if let Ok(v) = HeaderValue::from_str(&rest) {
            h.insert(HeaderName::from_static(ws_auth::HEADER), v);
        }
    }
    ws_auth::offers_relay_protocol(&offered)
}

/// The method and URI of a request being built.
fn parts_method_uri(out: &hyper::http::request::Builder) -> Option<(hyper::Method, Uri)> {
    Some((out.method_ref()?.clone(), out.uri_ref()?.clone()))
}

/// `body` as something that can be sent twice, when it is small and its size known: then the
/// head (`h`, before the credential is added) and the bytes are kept for a retry.
async fn replayable(
    req_body: Body,
    h: &hyper::HeaderMap,
    method_uri: &Option<(hyper::Method, Uri)>,
) -> Result<(Body, Option<Replay>), AgentError> {
    let Some((method, uri)) = method_uri.clone() else {
        return Ok((req_body, None));
    };
    let replay = |bytes: bytes::Bytes| Replay {
        method,
        uri,
        headers: h.clone(),
        body: bytes,
    };
    if req_body.is_end_stream() {
        return Ok((req_body, Some(replay(bytes::Bytes::new()))));
    }
    let declared = h
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n <= REPLAYABLE_BODY_BYTES => {
            let cap = usize::try_from(n).unwrap_or(usize::MAX);
            match body::read_capped(req_body, cap).await {
                Ok(bytes) => Ok((body::full(bytes.clone()), Some(replay(bytes)))),
                Err(body::ReadCappedError::TooLarge { .. }) => Err(AgentError::BadRequest(
                    "the request body is longer than its Content-Length".into(),
                )),
                Err(body::ReadCappedError::Read(e)) => {
                    if BodyError::find(&*e).is_some_and(|c| matches!(c, BodyError::TooLarge { .. }))
                    {
                        return Err(AgentError::PayloadTooLarge);
                    }
                    Err(AgentError::BadRequest(
                        "the request body stopped arriving".into(),
                    ))
                }
            }
        }
        _ => Ok((req_body, None)),
    }
}

/// Removes ArgusAI's session cookies (`access_token`, `refresh_token`) from an answer: whatever
/// the backend sets is for the agent's session, never for a phone.
pub fn strip_session_cookies(h: &mut hyper::HeaderMap) {
    if !h.contains_key(hyper::header::SET_COOKIE) {
        return;
    }
    let kept: Vec<HeaderValue> = h
        .get_all(hyper::header::SET_COOKIE)
        .iter()
        .filter(|v| {
            let name = v
                .to_str()
                .ok()
                .and_then(|s| s.split('=').next())
                .map(|n| n.trim().to_ascii_lowercase());
            !matches!(
                name.as_deref(),
                Some("access_token" | "refresh_token") | None
            )
        })
        .cloned()
        .collect();
    h.remove(hyper::header::SET_COOKIE);
    for v in kept {
        h.append(hyper::header::SET_COOKIE, v);
    }
}

fn add_request_id(h: &mut hyper::HeaderMap, request_id: &str) {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert(HeaderName::from_static(headers::REQUEST_ID), v);
    }
}

/// `Upgrade: websocket` (the `Connection: upgrade` token is implied by the client sending it).
pub fn is_websocket_upgrade(h: &hyper::HeaderMap) -> bool {
    h.get(hyper::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argusais_session_cookies_never_reach_a_phone() {
        let mut h = hyper::HeaderMap::new();
        for v in [
            "access_token=eyJ.x.y; HttpOnly; Path=/",
            "Refresh_Token=abc; Path=/api/v1/auth",
            "theme=dark; Path=/",
        ] {
            h.append(hyper::header::SET_COOKIE, HeaderValue::from_static(v));
        }
        strip_session_cookies(&mut h);
        let left: Vec<_> = h.get_all(hyper::header::SET_COOKIE).iter().collect();
        assert_eq!(left, vec!["theme=dark; Path=/"]);
    }

    /// A request waiting for one of the backend slots holds this future and nothing else of the
    /// listener's or router's (router::Dispatched): with 1,000 connections sharing 64 slots, its
    /// size is most of the agent's memory per waiting request (docs/benchmarks.md, "Proxy").
    #[test]
    fn a_request_waiting_for_a_backend_slot_holds_under_2_kib() {
        let backend = Backend::new("http://127.0.0.1:9", None, Duration::from_secs(1), 1)
            .expect("valid backend URL");
        let waiting = backend.forward(
            Request::new(body::empty()),
            ForwardContext {
                client_ip: None,
                request_id: "r".into(),
                client_upgrade: None,
                class: BackendClass::Api,
                socket_lifetime: None,
            },
        );
        let size = std::mem::size_of_val(&waiting);
        assert!(size <= 2048, "the forwarding future is {size} bytes");
    }
}
