//! Logic that both halves of argus-relay run: the edge Worker (wasm32) and the origin agent (native).
//!
//! Everything here is a pure function of its inputs. Time (`now`, in Unix seconds) and random bytes
//! (nonces, ids) are passed in by the caller, so the same code runs in workerd, in the agent and in
//! tests with fixed instants.
#![forbid(unsafe_code)]

pub mod api;
pub mod bearer;
pub mod cert_fingerprint;
pub mod edge_state;
pub mod encoding;
pub mod event_list;
#[doc(hidden)]
pub mod fuzzing;
pub mod headers;
pub mod image;
pub mod live_stream;
pub mod mdns;
pub mod pair_uri;
pub mod path;
pub mod policy;
pub mod rate_limit;
pub mod route;
pub mod sealed;
pub mod signature;
#[doc(hidden)]
pub mod test_photos;
pub mod token;
pub mod ws_auth;
