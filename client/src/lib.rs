//! The reference client: what a phone app does, in Rust. `argus-relay client …` drives it from
//! the command line and the end-to-end tests use it as "the phone". It knows the agent only
//! through the wire and [`argus_shared`], as a phone app would.
//!
//! - the QR code's `argusai://pair?code=…&url=…&fp=sha256:…` is read with
//!   [`argus_shared::pair_uri::PairUri`], the definition the agent writes it with;
//! - [`pairing`]: redeem the code (over the relay, or at home over the LAN) into a [`state`];
//! - [`state`]: what the phone keeps (tokens, relay URL, the server's identity), in a 0600 file;
//! - [`browse`]: mDNS browsing for `_argusai._tcp.local.`;
//! - [`pin`]: the TLS verifier that accepts exactly the pinned certificate;
//! - [`verify`]: "is this LAN server mine?" — the pin, then `/api/v1/health`'s identity;
//! - [`session`]: requests over the LAN when it is verified, else over the relay, switching as
//!   the network changes; in sealed mode every device request goes [`sealed`] through the relay.
//!
//! "Am I home?" is answered by cryptographic identity, never by the Wi-Fi name: a LAN server is
//! used only if its TLS certificate hashes to the pin from pairing (and its handshake proves it
//! holds that certificate's key), and its health answer names the same instance.

pub mod browse;
mod clock;
pub mod error;
pub mod http;
pub mod pairing;
pub mod pin;
pub mod sealed;
pub mod session;
pub mod state;
pub mod verify;

pub use error::ClientError;
pub use session::{Route, Session, SessionOptions};
pub use state::ClientState;
