//! The application layer: the agent's [`state`] (an aggregate of domain types), the [`router`]
//! and the request [`handlers`]. It names the base and domain layers, never a listener or the CLI.

pub(crate) mod handlers;
pub(crate) mod router;
pub(crate) mod sealed;
#[cfg(test)]
pub(crate) mod specs;
pub(crate) mod state;
