//! Forwarding to the origin agent: header hygiene, the request signature, the fetch, and what comes
//! back.
//!
//! - Client headers that must not travel inwards are dropped ([`headers::ForwardedRequestHeaders`]:
//!   cookies, `X-API-Key`, any `X-Forwarded-*`/`Forwarded`, any `X-Relay-*`, `CF-*`, hop-by-hop and
//!   whatever the client named in `Connection`), and the relay's token entries of
//!   `Sec-WebSocket-Protocol` on every request ([`ws_auth`]).
//!   `Authorization` is kept: the agent checks the device token again (immediate revocation) and
//!   then removes it before the backend.
//! - One `X-Forwarded-For` with the connecting IP, and `X-Request-Id`.
//! - The signature covers method, path and query, device id, client IP and a body digest; bodies of
//!   unknown or large size are streamed and marked `unsigned-body` (the nonce still makes the request
//!   unrepeatable).
//! - Redirects are passed back, never followed (the backend's trailing-slash 307s are the client's).
//! - A 5xx from the tunnel that is not our JSON (cloudflared's or Cloudflare's HTML error pages when
//!   the agent is down) becomes a JSON `unavailable` error.

use argus_shared::headers;
use argus_shared::path::CanonicalTarget;
use argus_shared::signature::{self, BodyBinding, SignedParts};
use argus_shared::ws_auth;
use wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{Fetch, Headers, Method, Request, RequestInit, RequestRedirect, Response};

use crate::config::EdgeConfig;
use crate::error::{internal, EdgeError};
use crate::request_id;

/// Bodies up to this size (declared by `Content-Length`) are read and their digest signed.
const MAX_SIGNED_BODY: u64 = 1024 * 1024;

/// A WebSocket upgrade ([`headers::is_websocket_upgrade`]).
pub fn is_websocket(req: &Request) -> bool {
    headers::is_websocket_upgrade(req.headers().get("upgrade").ok().flatten().as_deref())
}

/// Token entries ([`ws_auth`]) leave the `Sec-WebSocket-Protocol` list of every request, upgrade
/// or not, so only the relay ever sees them. On a WebSocket upgrade without `Authorization` the
/// token travels on as `Authorization` (the gate verified that one).
fn move_protocol_token(out: &Headers, is_websocket: bool) -> Result<(), EdgeError> {
    let Some(protocols) = out
        .get(ws_auth::HEADER)
        .map_err(internal("forward.protocols"))?
    else {
        return Ok(());
    };
    if is_websocket
        && !out
            .has("authorization")
            .map_err(internal("forward.protocols"))?
    {
        if let Some(token) = ws_auth::token_from_protocols(&protocols) {
            out.set("authorization", &format!("Bearer {token}"))
                .map_err(internal("forward.protocols"))?;
        }
    }
    match ws_auth::protocols_without_token(&protocols) {
        Some(rest) => out.set(ws_auth::HEADER, &rest),
        None => out.delete(ws_auth::HEADER),
    }
    .map_err(internal("forward.protocols"))
}

pub async fn to_origin(
    mut req: Request,
    cfg: &EdgeConfig,
    target: &CanonicalTarget,
    device_id: Option<&str>,
    client_ip: Option<&str>,
    link: Option<&str>,
    request_id: &str,
) -> Result<Response, EdgeError> {
    let method = req.method();
    let path_and_query = match &target.query {
        Some(q) => format!("{}?{}", target.path, q),
        None => target.path.clone(),
    };

    let out_headers = Headers::new();
    let is_websocket = is_websocket(&req);
    let connection = req.headers().get("connection").ok().flatten();
    let forwarded = headers::ForwardedRequestHeaders::new(connection.as_deref());
    for (name, value) in req.headers().entries() {
        if !forwarded.allows(&name) {
            continue;
        }
        out_headers
            .append(&name, &value)
            .map_err(internal("forward.headers"))?;
    }
    if is_websocket {
        out_headers
            .set("upgrade", "websocket")
            .map_err(internal("forward.headers"))?;
    }
    move_protocol_token(&out_headers, is_websocket)?;

    let (body, binding) = body_of(&mut req, &method, is_websocket).await?;

    sign_into(
        &out_headers,
        &cfg.signing_secret,
        &SignedParts {
            method: method.as_ref(),
            path_and_query: &path_and_query,
            device_id,
            client_ip,
            body: binding,
            link,
        },
    )?;
    let set = |k: &str, v: &str| out_headers.set(k, v).map_err(internal("forward.headers"));
    if let Some(ip) = client_ip {
        set(headers::X_FORWARDED_FOR, ip)?;
    }
    set(headers::REQUEST_ID, request_id)?;
    // The tunnel hop is the home connection's upload: let the agent gzip what it compresses (event
    // lists), whatever the phone takes. The runtime decodes it on arrival; `bandwidth` picks the
    // phone's own coding.
    set("accept-encoding", "gzip")?;

    let mut init = RequestInit::new();
    init.with_method(method)
        .with_headers(out_headers)
        .with_redirect(RequestRedirect::Manual)
        .with_body(body);
    let url = format!("{}{}", cfg.origin, path_and_query);
    let outgoing = Request::new_with_init(&url, &init).map_err(internal("forward.request"))?;
    let resp = Fetch::Request(outgoing).send().await.map_err(|e| {
        worker::console_warn!("request {request_id}: origin fetch failed: {e}");
        EdgeError::OriginUnreachable
    })?;
    respond(resp, request_id)
}

/// Signs `parts` now with a fresh nonce and sets the signature headers on `out`
/// (`x-relay-signature`, `-timestamp`, `-nonce`, `-body-digest`, and `-device` / `-client-ip` /
/// `-link` when present). Every request the Worker sends to the origin goes through here. Returns the nonce.
pub fn sign_into(
    out: &Headers,
    secret: &[u8],
    parts: &SignedParts<'_>,
) -> Result<String, EdgeError> {
    let now = worker::Date::now().as_millis() / 1000;
    let nonce = request_id::nonce().map_err(internal("forward.nonce"))?;
    let sig = signature::sign(secret, parts, now, &nonce).map_err(internal("forward.sign"))?;
    let set = |k: &str, v: &str| out.set(k, v).map_err(internal("forward.sign"));
    set(headers::RELAY_SIGNATURE, &sig)?;
    set(headers::RELAY_TIMESTAMP, &now.to_string())?;
    set(headers::RELAY_NONCE, &nonce)?;
    set(headers::RELAY_BODY_DIGEST, &parts.body.to_header_value())?;
    if let Some(device) = parts.device_id {
        set(headers::RELAY_DEVICE, device)?;
    }
    if let Some(ip) = parts.client_ip {
        set(headers::RELAY_CLIENT_IP, ip)?;
    }
    if let Some(link) = parts.link {
        set(headers::RELAY_LINK, link)?;
    }
    Ok(nonce)
}

async fn body_of(
    req: &mut Request,
    method: &Method,
    is_websocket: bool,
) -> Result<(Option<JsValue>, BodyBinding), EdgeError> {
    if matches!(method, Method::Get | Method::Head | Method::Options) || is_websocket {
        return Ok((None, BodyBinding::of_bytes(b"")));
    }
    let declared = req
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(len) if len <= MAX_SIGNED_BODY => {
            let bytes = read_body(req).await?;
            let binding = BodyBinding::of_bytes(&bytes);
            let body = if bytes.is_empty() {
                None
            } else {
                Some(js_sys::Uint8Array::from(bytes.as_slice()).into())
            };
            Ok((body, binding))
        }
        _ => {
            // Streamed straight through: re-wrapping the JS stream in Rust costs memory per byte.
            let stream = req.inner().body();
            Ok((stream.map(JsValue::from), BodyBinding::Unsigned))
        }
    }
}

/// The whole request body. A client that stops sending it (aborted upload, broken connection)
/// gives [`EdgeError::RequestBodyIncomplete`] with the runtime's own message, e.g. workerd's
/// "Network connection lost." (`Request::bytes` keeps only string rejections, and workerd
/// rejects with an `Error` object).
async fn read_body(req: &Request) -> Result<Vec<u8>, EdgeError> {
    let incomplete = |e: JsValue| EdgeError::RequestBodyIncomplete {
        cause: js_message(&e),
    };
    let promise = req.inner().array_buffer().map_err(incomplete)?;
    let buffer = JsFuture::from(promise).await.map_err(incomplete)?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// The message of a JS exception or rejection value.
fn js_message(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

fn respond(resp: Response, request_id: &str) -> Result<Response, EdgeError> {
    let status = resp.status_code();
    let is_json = resp
        .headers()
        .get("content-type")
        .ok()
        .flatten()
        .is_some_and(|ct| ct.starts_with("application/json"));
    if status >= 500 && !is_json {
        // Not the agent talking: the tunnel or Cloudflare's own error page.
        return Err(EdgeError::OriginUnreachable);
    }
    let out = Headers::new();
    for (name, value) in resp.headers().entries() {
        out.append(&name, &value)
            .map_err(internal("forward.response_headers"))?;
    }
    out.set(headers::REQUEST_ID, request_id)
        .map_err(internal("forward.response_headers"))?;
    Ok(resp.with_headers(out))
}
