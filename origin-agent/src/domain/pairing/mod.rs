//! Pairing a phone: one-time codes ([`codes`]), per-client failure windows ([`limiter`]) and the
//! tokens a paired device receives ([`tokens`]). The durable state is in [`crate::domain::store`];
//! the HTTP routes are [`crate::application::handlers::phone`] and
//! [`crate::application::handlers::pairing_codes`].

pub(crate) mod codes;
pub(crate) mod limiter;
pub(crate) mod tokens;
