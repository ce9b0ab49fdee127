//! Sealed mode, the agent's side: the Oblivious HTTP gateway (RFC 9458) behind the relay.
//!
//! [`keys`] holds the HPKE key configurations (current, and the previous one during a
//! rotation's overlap); [`gateway`] opens a sealed request, routes the request inside through
//! the same router as a plain one, and seals the answer. The shared constants (paths, media
//! types, limits, the key pin) are in [`argus_shared::sealed`]. docs/security.md, "Sealed mode".

pub mod gateway;
pub mod keys;

use argus_shared::sealed::KEYS_MEDIA_TYPE;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::Response;

use crate::body::{self, Body};
use crate::state::AppState;

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
