//! The tunnel listener's first check: no valid, fresh, unseen edge signature, no service.
//!
//! Whoever reaches the tunnel hostname without going through the Worker (or through a route that
//! fails open) gets a 401 here, before any routing, token check or backend contact.

use std::net::IpAddr;

use argus_shared::headers;
use argus_shared::signature::{self, BodyBinding, SignatureError, SignedParts};
use hyper::HeaderMap;

use crate::base::error::AgentError;
use crate::domain::auth::edge::replay::ReplayCache;

/// What a valid signature vouches for.
#[derive(Debug, Clone)]
pub struct EdgeFacts {
    pub device_id: Option<String>,
    pub client_ip: Option<IpAddr>,
    pub body: BodyBinding,
}

fn header<'a>(h: &'a HeaderMap, name: &'static str) -> Result<Option<&'a str>, SignatureError> {
    match h.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| SignatureError::Malformed(name)),
    }
}

fn required<'a>(h: &'a HeaderMap, name: &'static str) -> Result<&'a str, SignatureError> {
    header(h, name)?.ok_or(SignatureError::Missing(name))
}

pub fn check(
    secret: &[u8],
    replay: &ReplayCache,
    method: &str,
    path_and_query: &str,
    h: &HeaderMap,
    now: u64,
) -> Result<EdgeFacts, AgentError> {
    check_inner(secret, replay, method, path_and_query, h, now).map_err(|e| match e {
        SignatureError::Replayed => AgentError::SignatureReplayed,
        e => AgentError::InvalidSignature { reason: e.reason() },
    })
}

fn check_inner(
    secret: &[u8],
    replay: &ReplayCache,
    method: &str,
    path_and_query: &str,
    h: &HeaderMap,
    now: u64,
) -> Result<EdgeFacts, SignatureError> {
    let sig = required(h, headers::RELAY_SIGNATURE)?;
    let timestamp = signature::parse_timestamp(required(h, headers::RELAY_TIMESTAMP)?)?;
    let nonce = required(h, headers::RELAY_NONCE)?;
    let body = BodyBinding::parse_header_value(required(h, headers::RELAY_BODY_DIGEST)?)?;
    let device_id = header(h, headers::RELAY_DEVICE)?;
    let client_ip = header(h, headers::RELAY_CLIENT_IP)?;
    let link = header(h, headers::RELAY_LINK)?;
    let parts = SignedParts {
        method,
        path_and_query,
        device_id,
        client_ip,
        body,
        link,
    };
    signature::verify(secret, &parts, timestamp, nonce, sig, now)?;
    // Only a correctly signed nonce is remembered, so nobody can burn nonces for the edge.
    if !replay.first_use(nonce, timestamp, now) {
        return Err(SignatureError::Replayed);
    }
    let client_ip = client_ip
        .map(|ip| {
            ip.parse()
                .map_err(|_| SignatureError::Malformed("client ip"))
        })
        .transpose()?;
    Ok(EdgeFacts {
        device_id: device_id.map(str::to_owned),
        client_ip,
        body,
    })
}
