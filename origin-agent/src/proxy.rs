//! The hardened forwarder to the ArgusAI backend.
//!
//! ArgusAI cannot defend itself (see `docs/security.md`), so every request the agent forwards is
//! rewritten here, whatever listener it came from:
//! - client credentials for the backend are removed (`Cookie` — its `access_token` cookie beats
//!   Bearer —, `X-API-Key`, `Authorization`: device tokens never reach the backend);
//! - the client's `User-Agent` is replaced (a UA containing `testclient` skips ArgusAI's auth);
//! - `X-Forwarded-For` is exactly one value, the real client IP (uvicorn trusts it from 127.0.0.1
//!   and keys its login limit on it); every other forwarding header is dropped;
//! - the agent's own backend credential is added when configured;
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
//! | `event_stream` (SSE), `websocket` | within `T` | no limit (they are meant to stay open) |
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

use crate::body::{self, Body};
use crate::error::AgentError;
use crate::metrics::{UpstreamError, METRICS};
use crate::proxy_body::{BodyError, Watched};

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
            timeout,
            short_requests: Arc::new(Semaphore::new(max_concurrent.max(1))),
        })
    }

    /// A GET of a backend path with the agent's own credential (health checks).
    pub async fn get(&self, path: &str) -> Result<Response<hyper::body::Incoming>, AgentError> {
        let uri = self.uri_for(path)?;
        let mut req = Request::get(uri)
            .body(body::empty())
            .map_err(|_| AgentError::Internal)?;
        req.headers_mut().insert(
            hyper::header::USER_AGENT,
            HeaderValue::from_static(BACKEND_USER_AGENT),
        );
        if let Some(key) = &self.api_key {
            req.headers_mut()
                .insert(HeaderName::from_static(headers::X_API_KEY), key.clone());
        }
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
        if let Some(key) = &self.api_key {
            h.insert(HeaderName::from_static(headers::X_API_KEY), key.clone());
        }
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
        METRICS.upstream_latency(ctx.class, started.elapsed());

        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            let Some(client_upgrade) = ctx.client_upgrade.filter(|_| wants_upgrade) else {
                return Err(AgentError::BackendUnreachable);
            };
            let backend_upgrade = hyper::upgrade::on(&mut resp);
            let request_id = ctx.request_id.clone();
            tokio::spawn(async move {
                match tokio::try_join!(client_upgrade, backend_upgrade) {
                    Ok((client, backend)) => {
                        METRICS.websocket_opened();
                        let mut client = TokioIo::new(client);
                        let mut backend = TokioIo::new(backend);
                        match tokio::io::copy_bidirectional(&mut client, &mut backend).await {
                            Ok((up, down)) => {
                                tracing::debug!(request_id, up, down, "websocket closed")
                            }
                            Err(e) => {
                                tracing::debug!(request_id, error = %e, "websocket bridge ended")
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
            },
        );
        let size = std::mem::size_of_val(&waiting);
        assert!(size <= 2048, "the forwarding future is {size} bytes");
    }
}
