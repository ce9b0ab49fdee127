//! The agent's listeners. Each decides who may reach the shared router:
//! - [`tunnel`]: loopback, for cloudflared; every request must carry a valid edge signature;
//! - [`admin`]: loopback, for the owner's CLI and page; admin token required;
//! - [`lan`]: the home network, HTTPS with the pinned certificate; device tokens required.

pub mod admin;
pub mod lan;
pub mod tunnel;
