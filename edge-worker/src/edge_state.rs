//! The edge state ([`argus_shared::edge_state`]): the token keys and revoked devices, fetched from
//! the agent and kept per isolate for at most [`MAX_AGE_SECS`].
//!
//! - `GET {ORIGIN_URL}/relay/v1/edge-state`, signed like every forwarded request (no device, no
//!   client IP, the digest of the empty body), redirects not followed.
//! - Only a `200` whose body (at most [`MAX_DOCUMENT_BYTES`], by `Content-Length` and by the bytes
//!   actually read) carries a valid [`MAC_HEADER`] for the nonce this request sent is accepted.
//! - Anything else fails the request that needed the state with 503 `unavailable` (fail closed) and
//!   caches nothing; the next request tries again.
//! - A cached copy is used only while younger than [`MAX_AGE_SECS`], counted from when its fetch
//!   was sent (so the bound holds whatever the fetch took). Concurrent requests of one isolate
//!   that find it stale may each fetch (no lock across the await); the copy whose fetch was sent
//!   last is kept.

use std::cell::RefCell;
use std::rc::Rc;

use argus_shared::edge_state::{
    self as shared, EdgeState, EDGE_STATE_PATH, MAC_HEADER, MAX_AGE_SECS, MAX_DOCUMENT_BYTES,
};
use argus_shared::headers;
use argus_shared::signature::{BodyBinding, SignedParts};
use argus_shared::token::{
    Expectations, KeySet, LIFETIME_ALLOWANCE_SECS, MAX_ACCESS_TOKEN_LIFETIME_SECS,
};
use wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{Fetch, Headers, Method, Request, RequestInit, RequestRedirect, ResponseBody};

use crate::config::EdgeConfig;
use crate::error::{internal, EdgeError};
use crate::forward;

/// The generic reason when the agent could not be asked or did not answer usably.
const UNAVAILABLE: &str = "edge_state.unavailable";
/// The document verified but its JWKS does not give a usable key set.
const JWKS_INVALID: &str = "edge_state.jwks_invalid";

/// A verified edge state, the key set built from it, and what tokens must match.
pub struct FreshState {
    pub state: EdgeState,
    pub keys: KeySet,
    /// The configured issuer and audience, with the agent's token lifetime cap (never above the
    /// protocol's, [`MAX_ACCESS_TOKEN_LIFETIME_SECS`] plus [`LIFETIME_ALLOWANCE_SECS`]).
    pub expectations: Expectations,
    /// `Date.now()` (ms) when the fetch that produced it was sent.
    fetched_at_ms: u64,
}

impl FreshState {
    fn is_fresh(&self, now_ms: u64) -> bool {
        now_ms >= self.fetched_at_ms && now_ms - self.fetched_at_ms < MAX_AGE_SECS * 1000
    }
}

thread_local! {
    // Workers isolates are single-threaded; the copy is shared by the requests of one isolate.
    static STATE: RefCell<Option<Rc<FreshState>>> = const { RefCell::new(None) };
}

/// The edge state, from the isolate's cache while younger than [`MAX_AGE_SECS`], else fetched
/// from the agent now. Errors are not cached.
pub async fn get(cfg: &EdgeConfig, request_id: &str) -> Result<Rc<FreshState>, EdgeError> {
    let now_ms = worker::Date::now().as_millis();
    if let Some(cached) = STATE.with(|s| s.borrow().clone()) {
        if cached.is_fresh(now_ms) {
            return Ok(cached);
        }
    }
    let fresh = Rc::new(fetch(cfg, request_id, now_ms).await.inspect_err(|e| {
        worker::console_warn!("request {request_id}: no edge state: {e:?}");
    })?);
    STATE.with(|s| {
        let mut slot = s.borrow_mut();
        // A slower fetch sent earlier does not replace a newer copy.
        if slot
            .as_ref()
            .is_none_or(|old| old.fetched_at_ms <= fresh.fetched_at_ms)
        {
            *slot = Some(fresh.clone());
        }
    });
    Ok(fresh)
}

fn unavailable(reason: &'static str) -> EdgeError {
    EdgeError::EdgeStateUnavailable { reason }
}

async fn fetch(cfg: &EdgeConfig, request_id: &str, now_ms: u64) -> Result<FreshState, EdgeError> {
    let out_headers = Headers::new();
    let nonce = forward::sign_into(
        &out_headers,
        &cfg.signing_secret,
        &SignedParts {
            method: Method::Get.as_ref(),
            path_and_query: EDGE_STATE_PATH,
            device_id: None,
            client_ip: None,
            body: BodyBinding::of_bytes(b""),
            link: None,
        },
    )?;
    out_headers
        .set(headers::REQUEST_ID, request_id)
        .map_err(internal("edge_state.headers"))?;
    out_headers
        .set("accept", "application/json")
        .map_err(internal("edge_state.headers"))?;

    let mut init = RequestInit::new();
    init.with_method(Method::Get)
        .with_headers(out_headers)
        .with_redirect(RequestRedirect::Manual);
    let url = format!("{}{}", cfg.origin, EDGE_STATE_PATH);
    let outgoing = Request::new_with_init(&url, &init).map_err(internal("edge_state.request"))?;
    let resp = Fetch::Request(outgoing).send().await.map_err(|e| {
        worker::console_warn!("request {request_id}: edge state fetch failed: {e}");
        unavailable(UNAVAILABLE)
    })?;

    let status = resp.status_code();
    if status != 200 {
        worker::console_warn!("request {request_id}: edge state answer {status}");
        cancel_body(resp.body());
        return Err(unavailable(UNAVAILABLE));
    }
    let header = |name: &str| resp.headers().get(name).ok().flatten();
    if let Some(declared) = header("content-length") {
        match declared.trim().parse::<u64>() {
            Ok(len) if len <= MAX_DOCUMENT_BYTES as u64 => {}
            Ok(_) => {
                cancel_body(resp.body());
                return Err(unavailable(shared::EdgeStateError::TooLarge.reason()));
            }
            Err(_) => {
                cancel_body(resp.body());
                return Err(unavailable(shared::EdgeStateError::Malformed.reason()));
            }
        }
    }
    let Some(mac) = header(MAC_HEADER) else {
        cancel_body(resp.body());
        return Err(unavailable(shared::EdgeStateError::BadMac.reason()));
    };
    let body = read_capped(resp.body(), MAX_DOCUMENT_BYTES).await?;

    let state = shared::verify_response(&cfg.signing_secret, &nonce, &body, &mac)
        .map_err(|e| unavailable(e.reason()))?;
    let keys = KeySet::from_jwks(&state.jwks)
        .ok()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| unavailable(JWKS_INVALID))?;
    let expectations = Expectations {
        max_lifetime_secs: state
            .max_token_lifetime_secs
            .min(MAX_ACCESS_TOKEN_LIFETIME_SECS + LIFETIME_ALLOWANCE_SECS),
        ..cfg.expectations.clone()
    };
    Ok(FreshState {
        state,
        keys,
        expectations,
        fetched_at_ms: now_ms,
    })
}

/// The whole body, refusing (and cancelling the stream) as soon as it exceeds `cap` bytes.
async fn read_capped(body: &ResponseBody, cap: usize) -> Result<Vec<u8>, EdgeError> {
    let stream = match body {
        ResponseBody::Empty => return Ok(Vec::new()),
        ResponseBody::Body(bytes) if bytes.len() <= cap => return Ok(bytes.clone()),
        ResponseBody::Body(_) => {
            return Err(unavailable(shared::EdgeStateError::TooLarge.reason()))
        }
        ResponseBody::Stream(stream) => stream,
    };
    let reader = worker::web_sys::ReadableStreamDefaultReader::new(stream)
        .map_err(|_| unavailable(UNAVAILABLE))?;
    let mut out = Vec::new();
    loop {
        let chunk = JsFuture::from(reader.read())
            .await
            .map_err(|_| unavailable(UNAVAILABLE))?;
        let done = js_sys::Reflect::get(&chunk, &JsValue::from_str("done"))
            .ok()
            .and_then(|d| d.as_bool())
            .unwrap_or(true);
        if done {
            return Ok(out);
        }
        let value = js_sys::Reflect::get(&chunk, &JsValue::from_str("value"))
            .map_err(|_| unavailable(UNAVAILABLE))?;
        let bytes = value
            .dyn_into::<js_sys::Uint8Array>()
            .map_err(|_| unavailable(UNAVAILABLE))?;
        if out.len() + bytes.length() as usize > cap {
            // Not awaited: the answer is refused either way.
            let _ = reader.cancel();
            return Err(unavailable(shared::EdgeStateError::TooLarge.reason()));
        }
        let start = out.len();
        out.resize(start + bytes.length() as usize, 0);
        bytes.copy_to(&mut out[start..]);
    }
}

/// Drops an unread body without waiting for it (frees the connection).
fn cancel_body(body: &ResponseBody) {
    if let ResponseBody::Stream(stream) = body {
        let _ = stream.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_fresh_for_less_than_max_age_only() {
        let s = FreshState {
            state: EdgeState {
                generated_at: 0,
                jwks: Default::default(),
                revoked: vec![],
                max_token_lifetime_secs: 960,
            },
            keys: KeySet::new(),
            expectations: Expectations::new("https://r", "argus-relay"),
            fetched_at_ms: 10_000,
        };
        assert!(s.is_fresh(10_000));
        assert!(s.is_fresh(10_000 + MAX_AGE_SECS * 1000 - 1));
        assert!(!s.is_fresh(10_000 + MAX_AGE_SECS * 1000));
        // A clock that went backwards does not extend the copy's life.
        assert!(!s.is_fresh(9_999));
    }
}
