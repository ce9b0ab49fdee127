//! The base layer: what any server of ours needs, nothing about pairing, devices or ArgusAI.
//! It names only std, crates and `argus_shared`.

pub(crate) mod clock;
pub(crate) mod config;
pub(crate) mod error;
pub(crate) mod http;
pub(crate) mod metrics;
pub(crate) mod qr;
