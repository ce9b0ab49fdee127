//! Who is asking: the owner (admin token, admin page sessions and their CSRF checks), a phone
//! (device access tokens), the edge Worker (request signatures, replay cache, its rejections).

pub(crate) mod admin_session;
pub(crate) mod admin_token;
pub(crate) mod csrf;
pub(crate) mod device_token;
pub(crate) mod edge;
