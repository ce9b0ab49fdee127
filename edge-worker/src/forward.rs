//! Forwarding to the origin agent: header hygiene, the request signature, the fetch, and what comes
//! back.
//!
//! - Client headers that must not travel inwards are dropped ([`headers::is_stripped_request_header`]:
//!   cookies, `X-API-Key`, any `X-Forwarded-*`/`Forwarded`, any `X-Relay-*`, `CF-*`, hop-by-hop).
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
use wasm_bindgen::JsValue;
use worker::{Fetch, Headers, Method, Request, RequestInit, RequestRedirect, Response};

use crate::config::EdgeConfig;
use crate::error::EdgeError;
use crate::request_id;

/// Bodies up to this size (declared by `Content-Length`) are read and their digest signed.
const MAX_SIGNED_BODY: u64 = 1024 * 1024;

/// `Upgrade: websocket`.
pub fn is_websocket(req: &Request) -> bool {
    req.headers()
        .get("upgrade")
        .ok()
        .flatten()
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
}

/// A token offered as a WebSocket subprotocol ([`ws_auth`]) travels on as `Authorization`, and
/// leaves the protocol list, so only the relay ever sees it.
fn move_protocol_token(out: &Headers) -> Result<(), EdgeError> {
    let Some(protocols) = out.get(ws_auth::HEADER).map_err(|_| EdgeError::Internal)? else {
        return Ok(());
    };
    if out.has("authorization").map_err(|_| EdgeError::Internal)? {
        return Ok(());
    }
    if let Some(token) = ws_auth::token_from_protocols(&protocols) {
        out.set("authorization", &format!("Bearer {token}"))
            .map_err(|_| EdgeError::Internal)?;
    }
    match ws_auth::protocols_without_token(&protocols) {
        Some(rest) => out.set(ws_auth::HEADER, &rest),
        None => out.delete(ws_auth::HEADER),
    }
    .map_err(|_| EdgeError::Internal)
}

pub async fn to_origin(
    mut req: Request,
    cfg: &EdgeConfig,
    target: &CanonicalTarget,
    device_id: Option<&str>,
    client_ip: Option<&str>,
    request_id: &str,
) -> Result<Response, EdgeError> {
    let method = req.method();
    let path_and_query = match &target.query {
        Some(q) => format!("{}?{}", target.path, q),
        None => target.path.clone(),
    };

    let out_headers = Headers::new();
    let is_websocket = is_websocket(&req);
    for (name, value) in req.headers().entries() {
        if headers::is_stripped_request_header(&name) {
            continue;
        }
        out_headers
            .append(&name, &value)
            .map_err(|_| EdgeError::Internal)?;
    }
    if is_websocket {
        out_headers
            .set("upgrade", "websocket")
            .map_err(|_| EdgeError::Internal)?;
        move_protocol_token(&out_headers)?;
    }

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
        },
    )?;
    let set = |k: &str, v: &str| out_headers.set(k, v).map_err(|_| EdgeError::Internal);
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
    let outgoing = Request::new_with_init(&url, &init).map_err(|_| EdgeError::Internal)?;
    let resp = Fetch::Request(outgoing).send().await.map_err(|e| {
        worker::console_warn!("request {request_id}: origin fetch failed: {e}");
        EdgeError::OriginUnreachable
    })?;
    respond(resp, request_id)
}

/// Signs `parts` now with a fresh nonce and sets the signature headers on `out`
/// (`x-relay-signature`, `-timestamp`, `-nonce`, `-body-digest`, and `-device` / `-client-ip` when
/// present). Every request the Worker sends to the origin goes through here. Returns the nonce.
pub fn sign_into(
    out: &Headers,
    secret: &[u8],
    parts: &SignedParts<'_>,
) -> Result<String, EdgeError> {
    let now = worker::Date::now().as_millis() / 1000;
    let nonce = request_id::nonce().ok_or(EdgeError::Internal)?;
    let sig = signature::sign(secret, parts, now, &nonce).map_err(|_| EdgeError::Internal)?;
    let set = |k: &str, v: &str| out.set(k, v).map_err(|_| EdgeError::Internal);
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
            let bytes = req.bytes().await.map_err(|_| EdgeError::Internal)?;
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
        out.append(&name, &value).map_err(|_| EdgeError::Internal)?;
    }
    out.set(headers::REQUEST_ID, request_id)
        .map_err(|_| EdgeError::Internal)?;
    Ok(resp.with_headers(out))
}
