//! Forwarding to ArgusAI: the hardened [`backend`] forwarder and its request bodies ([`body`]),
//! the agent's own backend sign-in ([`backend_session`]), compact event lists ([`event_list`]),
//! LAN image variants ([`images`]) and the WebSocket bridge ([`ws_bridge`], [`ws_frames`]).

pub(crate) mod backend;
pub(crate) mod backend_session;
pub(crate) mod body;
pub mod event_list;
pub(crate) mod images;
pub(crate) mod ws_bridge;
pub(crate) mod ws_frames;
