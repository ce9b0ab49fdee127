//! The argus-relay origin agent (library). The binary `argus-relay` is in `main.rs`.
//!
//! Layout: [`listener`] accepts (tunnel: edge-signed requests; admin: the owner; lan: phones at
//! home), [`router`] sends each request to [`identity`] (pairing, tokens, devices) or through
//! [`proxy`] to ArgusAI (on the LAN, image routes through [`images`]); [`store`] is the SQLite state; [`discovery`] advertises the LAN listener
//! over mDNS; [`client`] is the reference phone client; [`cli`] is every subcommand.

pub mod admin_ui;
pub mod backend_session;
pub mod body;
pub mod cli;
pub mod client;
pub mod clock;
pub mod compact_event_list;
pub mod config;
pub mod conn;
pub mod detach_head;
pub mod discovery;
pub mod drain_unread_body;
pub mod edge_stats;
pub mod error;
pub mod fingerprint_set;
pub mod identity;
pub mod images;
pub mod keys;
pub mod lan_cert;
pub mod listener;
pub mod metrics;
pub mod proxy;
pub mod proxy_body;
pub mod qr;
pub mod relay_status;
pub mod replay;
pub mod request_id;
pub mod require_device_token;
pub mod require_edge_signature;
pub mod router;
pub mod sealed;
pub mod server;
pub mod state;
pub mod store;
pub mod tunnel;
pub mod ws_bridge;
pub mod ws_frames;
