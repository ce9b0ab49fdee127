//! The domain layer: the relay's concepts. It names only the base layer (and std, crates,
//! `argus_shared`); never the state, router, handlers or listeners.

pub(crate) mod auth;
pub(crate) mod key_ring;
pub(crate) mod lan;
pub(crate) mod pairing;
pub(crate) mod proxy;
pub mod sealed_keys;
pub mod store;
pub(crate) mod tunnel;
