//! What the agent answers itself: the phone's pairing and device routes ([`phone`]), owner
//! pairing codes ([`pairing_codes`]), the admin API ([`admin_api`]), the relay status
//! ([`status`]) and the admin page ([`admin_ui`]).

pub(crate) mod admin_api;
pub(crate) mod admin_ui;
pub(crate) mod pairing_codes;
pub(crate) mod phone;
pub(crate) mod status;
