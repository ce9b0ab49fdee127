//! Sealed mode, the agent's side: the Oblivious HTTP gateway (RFC 9458 §6) behind the relay.
//! `POST /api/v1/relay/sealed` opened, routed, sealed; `GET /.well-known/ohttp-keys` served.
//! The keys are [`crate::domain::sealed_keys`]; the constants both sides share (paths, media
//! types, limits, the key pin) are [`argus_shared::sealed`]. docs/security.md, "Sealed mode".
//!
//! Order, after the outer checks the router already made (the outer device token, the same
//! device as the edge signed for) and the tunnel listener's (a digest-signed body):
//! 1. `Content-Type: message/ohttp-req`, at most [`MAX_SEALED_REQUEST_BYTES`];
//! 2. opened under the key it names ([`SealedKeys::open`]): tampered or unknown → 400, nothing
//!    routed;
//! 3. the Binary HTTP request parsed; its `Date` within [`FRESHNESS_WINDOW_SECS`] and its
//!    encapsulation never seen within that window (a replay → 400);
//! 4. the inner request rebuilt with the *outer* token (an inner `Authorization` is dropped: the
//!    identity is the one the edge and the router verified), the client's headers filtered as
//!    the edge filters plain ones; the router then routes it like a plain request with
//!    `Via::Sealed`: canonical path, route, scope, the built-in path rules, images per
//!    `?quality=`;
//! 5. the answer (whatever it is, refusals included: the edge never learns which path was
//!    refused) read up to [`MAX_SEALED_RESPONSE_BYTES`], encoded as Binary HTTP with the current
//!    key pin ([`CURRENT_KEYS_HEADER`]) and sealed: `200 message/ohttp-res`, `no-store`.

use std::io::Cursor;

use argus_shared::headers::{ForwardedRequestHeaders, HOP_BY_HOP};
use argus_shared::route::{AgentRoute, BackendClass, Route};
use argus_shared::sealed::{
    check_fresh, FreshnessError, CURRENT_KEYS_HEADER, FRESHNESS_WINDOW_SECS, KEYS_MEDIA_TYPE,
    MAX_SEALED_REQUEST_BYTES, MAX_SEALED_RESPONSE_BYTES, REQUEST_MEDIA_TYPE, RESPONSE_MEDIA_TYPE,
};
use bhttp::Message;
use hyper::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response};
use ohttp::ServerResponse;

use crate::application::state::AppState;
use crate::base::clock::unix_now;
use crate::base::error::AgentError;
use crate::base::http::body::{self, Body, ReadCappedError};

fn refused(reason: &'static str) -> AgentError {
    AgentError::SealedRefused { reason }
}

/// A sealed request opened: the inner request (carrying the outer token), and what seals its
/// answer.
pub struct Opened {
    pub request: Request<Body>,
    sealer: ServerResponse,
}

/// Steps 1–4: checks, opens and unpacks a sealed request (the outer token already verified by
/// the router). Errors are the sealed layer's own refusals, answered outside the seal.
pub async fn open(state: &AppState, req: Request<Body>) -> Result<Opened, AgentError> {
    let media_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if !media_type.is_some_and(|m| m.eq_ignore_ascii_case(REQUEST_MEDIA_TYPE)) {
        return Err(refused("sealed.content_type"));
    }
    let outer_authorization = req.headers().get(hyper::header::AUTHORIZATION).cloned();
    let sealed = body::read_capped(req.into_body(), MAX_SEALED_REQUEST_BYTES)
        .await
        .map_err(|e| match e {
            ReadCappedError::TooLarge { .. } => AgentError::PayloadTooLarge,
            ReadCappedError::Read(_) => AgentError::BadRequest("request body unreadable".into()),
        })?;
    let now = unix_now();
    let (inner, sealer) = state
        .sealed_keys
        .open(&sealed, now)
        .map_err(|e| refused(e.reason()))?;
    let message = Message::read_bhttp(&mut Cursor::new(&inner[..]))
        .map_err(|_| refused("sealed.malformed"))?;
    let date = inner_date(&message)?;
    check_fresh(date, now).map_err(|e| refused(e.reason()))?;
    // The encapsulated key (the request's key id, suite and HPKE `enc`, RFC 9458 §4.3) is fresh
    // randomness per request: seen twice within the window, it is a replay.
    let header_len = (1 + 6 + 32).min(sealed.len());
    if !state.sealed_replay.first_use(
        &hex::encode(&sealed[..header_len]),
        date.unwrap_or(now),
        now,
    ) {
        return Err(refused("sealed.replayed"));
    }
    Ok(Opened {
        request: inner_request(&message, outer_authorization)?,
        sealer,
    })
}

/// Inner routes a seal cannot carry: another sealed request, and answers that never end (no
/// chunked OHTTP here). Refused inside the seal.
pub fn check_inner_route(route: &Route) -> Result<(), AgentError> {
    match route {
        Route::Agent(AgentRoute::Sealed) => Err(refused("sealed.nested")),
        Route::Backend {
            class: BackendClass::WebSocket | BackendClass::EventStream,
        } => Err(refused("sealed.streaming_unsupported")),
        _ => Ok(()),
    }
}

/// Step 5: the inner answer (whatever it is, refusals included), sealed: `200
/// message/ohttp-res`, `no-store`.
pub async fn seal(
    state: &AppState,
    opened_sealer: Sealer,
    answer: Response<Body>,
    request_id: &str,
) -> Result<Response<Body>, AgentError> {
    let pin = state.sealed_keys.pin();
    let encoded = match encode_answer(answer, &pin).await {
        Ok(encoded) => encoded,
        Err(e) => encode_answer(e.into_response(request_id), &pin).await?,
    };
    let sealed_answer = opened_sealer.0.encapsulate(&encoded).map_err(|e| {
        tracing::error!(error = %e, "sealing an answer failed");
        AgentError::Internal
    })?;
    let mut resp = Response::new(body::full(sealed_answer));
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(RESPONSE_MEDIA_TYPE));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// What seals the answer to one opened request.
pub struct Sealer(ServerResponse);

impl Opened {
    /// The inner request, and what seals its answer.
    pub fn into_parts(self) -> (Request<Body>, Sealer) {
        (self.request, Sealer(self.sealer))
    }
}

/// The inner request's `Date`, in Unix seconds (`None` when absent).
fn inner_date(message: &Message) -> Result<Option<u64>, AgentError> {
    let Some(raw) = message.header().get(b"date") else {
        return Ok(None);
    };
    let malformed = || refused(FreshnessError::Malformed.reason());
    let text = std::str::from_utf8(raw).map_err(|_| malformed())?;
    let at = httpdate::parse_http_date(text).map_err(|_| malformed())?;
    Ok(Some(
        at.duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| malformed())?
            .as_secs(),
    ))
}

/// The inner request as the router takes it: method, target, the client's headers as the edge
/// would pass them on, the outer `Authorization`, the content.
fn inner_request(
    message: &Message,
    outer_authorization: Option<HeaderValue>,
) -> Result<Request<Body>, AgentError> {
    let control = message.control();
    let (Some(method), Some(path)) = (control.method(), control.path()) else {
        return Err(refused("sealed.not_a_request"));
    };
    let method = Method::from_bytes(method).map_err(|_| refused("sealed.malformed"))?;
    let path = std::str::from_utf8(path).map_err(|_| refused("sealed.malformed"))?;
    // As workerd hands a plain request's URL to the Worker: the WHATWG parse.
    let target = argus_shared::path::as_parsed_by_the_url_standard(path)
        .map_err(|_| refused("sealed.malformed"))?;
    let mut req = Request::builder()
        .method(method)
        .uri(target.as_str())
        .body(body::full(message.content().to_vec()))
        .map_err(|_| refused("sealed.malformed"))?;
    let fields = message.header();
    let connection = fields
        .get_all(b"connection")
        .filter_map(|v| std::str::from_utf8(v).ok());
    let forwarded = ForwardedRequestHeaders::new(connection);
    let h = req.headers_mut();
    for field in fields.iter() {
        let Ok(name) = HeaderName::from_bytes(field.name()) else {
            return Err(refused("sealed.malformed"));
        };
        if !forwarded.allows(name.as_str())
            || name == hyper::header::AUTHORIZATION
            || name == hyper::header::HOST
            || name == CONTENT_LENGTH
        {
            continue;
        }
        let value =
            HeaderValue::from_bytes(field.value()).map_err(|_| refused("sealed.malformed"))?;
        h.append(name, value);
    }
    if !message.content().is_empty() {
        h.insert(CONTENT_LENGTH, HeaderValue::from(message.content().len()));
    }
    if let Some(auth) = outer_authorization {
        h.insert(hyper::header::AUTHORIZATION, auth);
    }
    Ok(req)
}

/// The answer as a Binary HTTP response (known-length), with the current key pin. An answer
/// that cannot be read whole (larger than [`MAX_SEALED_RESPONSE_BYTES`], or broken off) is an
/// error, which the caller seals in its place.
pub async fn encode_answer(answer: Response<Body>, pin: &str) -> Result<Vec<u8>, AgentError> {
    let (parts, body) = answer.into_parts();
    let content = body::read_capped(body, MAX_SEALED_RESPONSE_BYTES)
        .await
        .map_err(|e| match e {
            ReadCappedError::TooLarge { cap } => AgentError::BackendAnswerTooLarge { max: cap },
            ReadCappedError::Read(e) => {
                tracing::warn!(error = %e, "the sealed request's answer broke off");
                AgentError::BackendUnreachable
            }
        })?;
    let status =
        bhttp::StatusCode::try_from(parts.status.as_u16()).map_err(|_| AgentError::Internal)?;
    let mut message = Message::response(status);
    for (name, value) in &parts.headers {
        if HOP_BY_HOP.contains(&name.as_str()) || *name == CONTENT_LENGTH {
            continue;
        }
        message.put_header(name.as_str(), value.as_bytes());
    }
    message.put_header(CURRENT_KEYS_HEADER, pin);
    message.write_content(&content);
    let mut out = Vec::with_capacity(content.len() + 256);
    message
        .write_bhttp(bhttp::Mode::KnownLength, &mut out)
        .map_err(|_| AgentError::Internal)?;
    Ok(out)
}

/// `GET /.well-known/ohttp-keys`: the current key configuration (`application/ohttp-keys`).
/// Public and cacheable for a minute: it is what a phone checks against the pin from pairing.
pub fn key_config_response(state: &AppState) -> Response<Body> {
    let mut resp = Response::new(body::full(bytes::Bytes::from(
        state.sealed_keys.served().to_vec(),
    )));
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(KEYS_MEDIA_TYPE));
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    resp
}

// Keeps the window the replay cache remembers and the one the date is checked against one value.
const _: () = assert!(FRESHNESS_WINDOW_SECS == argus_shared::signature::MAX_SKEW_SECS);
