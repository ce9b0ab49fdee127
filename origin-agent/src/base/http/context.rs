//! What a listener established about a request before routing.

use std::net::IpAddr;

use hyper::upgrade::OnUpgrade;

/// Which remote listener a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// From the edge Worker through the tunnel: the Worker already applied the owner's policy
    /// and made the image variants.
    Tunnel,
    /// Straight from a phone on the home network: the router applies the built-in policy's
    /// path rules (after the device token, as the Worker does) and transcodes image routes
    /// per `?quality=` ([`crate::domain::proxy::images`]).
    Lan,
    /// The request inside a sealed one (`application::sealed`): the edge saw only ciphertext,
    /// so the router does what it does for the LAN (path rules, images per `?quality=`).
    Sealed,
}

/// What the listener established about the request before routing.
pub struct RequestContext {
    pub via: Via,
    pub request_id: String,
    pub client_ip: Option<IpAddr>,
    pub client_upgrade: Option<OnUpgrade>,
    /// The device the edge vouched for in its signature (tunnel listener only): the token must
    /// be that device's.
    pub edge_device: Option<String>,
}
