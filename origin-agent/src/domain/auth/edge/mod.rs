//! Requests from the edge Worker: its signature ([`signature`]), the replay cache ([`replay`],
//! on [`fingerprint_set`]) and the count of what was refused ([`stats`]).

pub(crate) mod fingerprint_set;
pub(crate) mod replay;
pub(crate) mod signature;
pub(crate) mod stats;
