//! The argus-relay origin agent (library). The binary `argus-relay` is in `main.rs`.
//!
//! Work in progress: the modules below compile and are tested; the listeners, router, identity
//! HTTP handlers and most CLI subcommands are not wired yet (see docs/architecture.md, "Status").

pub mod body;
pub mod cli;
pub mod clock;
pub mod config;
pub mod error;
pub mod keys;
pub mod proxy;
pub mod qr;
pub mod replay;
pub mod request_id;
pub mod require_edge_signature;
pub mod server;
pub mod store;
