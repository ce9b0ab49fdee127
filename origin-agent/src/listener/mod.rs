//! The agent's listeners: admission only. Each decides who may reach the shared router:
//! - [`edge`]: loopback, for cloudflared (traffic from the edge Worker); every request must
//!   carry a valid edge signature;
//! - [`admin`]: loopback, for the owner's CLI and page; admin token required;
//! - [`lan`]: the home network, HTTPS with the pinned certificate; device tokens required.

pub(crate) mod admin;
pub(crate) mod edge;
pub(crate) mod lan;
