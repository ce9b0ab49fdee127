//! The Worker's configuration: `[vars]` and secrets, parsed and validated once per isolate.
//!
//! | name | kind | what |
//! |---|---|---|
//! | `ORIGIN_URL` | var | where the tunnel reaches the agent, e.g. `https://tunnel.example.com` |
//! | `TOKEN_ISSUER`, `TOKEN_AUDIENCE` | var | the `iss`/`aud` the agent puts in access tokens |
//! | `POLICY` | var | the relay policy (TOML); absent = the built-in default policy |
//! | `RELAY_SIGNING_SECRET` | secret | hex, ≥ 32 bytes: the HMAC key for signing forwarded requests |
//! | `RATE_LIMITER` | var | `binding` (default: Cloudflare's rate-limiting bindings) or `isolate` (counted in the Worker's isolate: plain workerd, [`crate::rate_limit`]) |
//! | `CLIENT_IP_HEADER` | var | the request header holding the client's IP; default `cf-connecting-ip` (set by Cloudflare). Self-hosted: the header the reverse proxy in front of workerd overwrites on every request (Caddy: `x-argus-client-ip`); only that proxy can reach workerd |
//!
//! `argus-relay init` prints the exact values. A bad setting makes every request answer 503
//! `unavailable` with `reason` naming the setting (e.g. `config.origin_url`), never a guess.
//!
//! The token keys and revoked devices are not configuration: they change at the agent and reach
//! the Worker as the edge state ([`crate::edge_state`]).

use std::cell::RefCell;
use std::rc::Rc;

use argus_shared::policy::Policy;
use argus_shared::signature::MIN_SECRET_BYTES;
use argus_shared::token::Expectations;
use worker::Env;

use crate::error::EdgeError;
use crate::rate_limit::Limiter;

pub struct EdgeConfig {
    /// Scheme + host (+ port), no trailing slash.
    pub origin: String,
    pub signing_secret: Vec<u8>,
    pub expectations: Expectations,
    pub policy: Policy,
    pub limiter: Limiter,
    /// Lower-case name of the header holding the client IP (`CLIENT_IP_HEADER`).
    pub client_ip_header: String,
}

/// Cloudflare's header for the connecting client's IP.
pub const CLOUDFLARE_CLIENT_IP_HEADER: &str = "cf-connecting-ip";

thread_local! {
    // Workers isolates are single-threaded and env does not change within one.
    static CONFIG: RefCell<Option<Rc<EdgeConfig>>> = const { RefCell::new(None) };
}

/// The parsed configuration, from the isolate's cache or parsed now. Errors are not cached, so a
/// fixed secret takes effect without a redeploy of the code.
pub fn get(env: &Env) -> Result<Rc<EdgeConfig>, EdgeError> {
    if let Some(cfg) = CONFIG.with(|c| c.borrow().clone()) {
        return Ok(cfg);
    }
    let cfg = Rc::new(parse(env)?);
    CONFIG.with(|c| *c.borrow_mut() = Some(cfg.clone()));
    Ok(cfg)
}

fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name)
        .ok()
        .map(|v| v.to_string())
        .filter(|v| !v.trim().is_empty())
}

fn secret(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .ok()
        .map(|v| v.to_string())
        .filter(|v| !v.trim().is_empty())
}

fn parse(env: &Env) -> Result<EdgeConfig, EdgeError> {
    let origin = var(env, "ORIGIN_URL").ok_or(EdgeError::Config {
        reason: "config.origin_url",
    })?;
    let origin = parse_origin(&origin).ok_or(EdgeError::Config {
        reason: "config.origin_url",
    })?;

    let secret_hex = secret(env, "RELAY_SIGNING_SECRET").ok_or(EdgeError::Config {
        reason: "config.relay_signing_secret",
    })?;
    let signing_secret = hex::decode(secret_hex.trim())
        .ok()
        .filter(|s| s.len() >= MIN_SECRET_BYTES)
        .ok_or(EdgeError::Config {
            reason: "config.relay_signing_secret",
        })?;

    let issuer = var(env, "TOKEN_ISSUER").ok_or(EdgeError::Config {
        reason: "config.token_issuer",
    })?;
    let audience = var(env, "TOKEN_AUDIENCE").ok_or(EdgeError::Config {
        reason: "config.token_audience",
    })?;

    let policy = match var(env, "POLICY") {
        Some(text) => Policy::from_toml(&text).map_err(|e| {
            worker::console_error!("POLICY does not parse: {e}");
            EdgeError::Config {
                reason: "config.policy_invalid",
            }
        })?,
        None => Policy::default_policy(),
    };

    let limiter =
        Limiter::from_var(var(env, "RATE_LIMITER").as_deref()).ok_or(EdgeError::Config {
            reason: "config.rate_limiter",
        })?;
    let client_ip_header = match var(env, "CLIENT_IP_HEADER") {
        None => CLOUDFLARE_CLIENT_IP_HEADER.to_owned(),
        Some(name) => valid_header_name(&name).ok_or(EdgeError::Config {
            reason: "config.client_ip_header",
        })?,
    };

    Ok(EdgeConfig {
        origin,
        limiter,
        client_ip_header,
        signing_secret,
        expectations: Expectations::new(issuer, audience),
        policy,
    })
}

/// A lower-cased HTTP header name (token characters only).
fn valid_header_name(raw: &str) -> Option<String> {
    let name = raw.trim().to_ascii_lowercase();
    (!name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then_some(name)
}

/// Accepts `http(s)://host[:port]` with an optional trailing slash; nothing else (no path, query,
/// credentials), so the forwarded URL is always `origin + canonical path`.
fn parse_origin(raw: &str) -> Option<String> {
    let url = worker::Url::parse(raw.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
        || url.path() != "/"
    {
        return None;
    }
    let mut origin = url.origin().ascii_serialization();
    if origin == "null" {
        return None;
    }
    origin.truncate(origin.trim_end_matches('/').len());
    Some(origin)
}
