//! Request ids: taken from the edge when it sent a well-formed one (it is signed together with the
//! request's other headers only indirectly, so it is used for correlation, never for decisions),
//! otherwise made here.

use hyper::HeaderMap;

/// 16 random bytes, hex. From the thread's CSPRNG (`rand::thread_rng`, seeded from the OS):
/// an id is for correlation, not a secret, and a `getrandom` system call per request (the LAN
/// and admin listeners make one for every request) cost more than the rest of this function.
pub fn new() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

/// The incoming `X-Request-Id` if it is 8–64 characters of `[A-Za-z0-9-]`, else a new id.
pub fn from_headers(h: &HeaderMap) -> String {
    h.get(argus_shared::headers::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (8..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map(str::to_owned)
        .unwrap_or_else(new)
}
