//! The argus-relay origin agent (library). The binary `argus-relay` is in `main.rs`.
//!
//! The modules are in layers; a layer names only the layers below it (`tests/layers.rs` checks
//! it, docs/architecture.md is the map):
//! - [`base`]: what any server needs — errors, clock, configuration, metrics, HTTP plumbing;
//! - [`domain`]: the relay's concepts — the store, keys, authentication, pairing, the proxy to
//!   ArgusAI, the cloudflared tunnel, the LAN certificate and mDNS;
//! - [`application`]: the agent's state (an aggregate of domain types), the router and the
//!   request handlers;
//! - [`listener`]: who may reach the router (the edge through the tunnel, the owner, the LAN);
//! - [`cli`]: every subcommand, the shell around the rest.
//!
//! The reference phone client is its own crate, `argus-client` (`client/` at the repository root).

pub(crate) mod application;
pub(crate) mod base;
pub mod cli;
pub(crate) mod domain;
pub(crate) mod listener;

// What the end-to-end tests and tools use, besides the CLI.
pub use base::http::body;
pub use domain::lan::mdns;
pub use domain::proxy::event_list;
// The sealed-mode keys and answer encoding, for `make bench` (tests/src/bin/sealed-cost.rs).
pub use application::sealed::encode_answer as encode_sealed_answer;
pub use domain::sealed_keys;
pub use domain::store;
