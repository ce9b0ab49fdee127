//! HTTP plumbing shared by every listener: bodies, the accept loop and connection tracking,
//! request ids, and what a listener establishes about a request before routing.

pub mod body;
pub(crate) mod conn;
mod context;
pub(crate) mod detach_head;
pub(crate) mod drain;
pub(crate) mod log;
pub(crate) mod request_id;
pub(crate) mod send_queue;
pub(crate) mod server;

pub(crate) use context::{RequestContext, Via};
