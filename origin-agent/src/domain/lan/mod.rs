//! Phones at home: the LAN listener's self-signed certificate ([`cert`]) and its mDNS
//! advertisement ([`mdns`]).

pub(crate) mod cert;
pub mod mdns;
