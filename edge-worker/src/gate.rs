//! The checks every request passes, in order, before anything is forwarded:
//!
//! 1. method and canonical path ([`argus_shared::path`]) — before anyone routes on them; the
//!    method as sent (not workers-rs's mapping, which turns unknown methods into GET);
//! 2. route class ([`argus_shared::route`]) — refused paths and unlisted methods end here;
//! 3. device token ([`argus_shared::token`]) — except the public pairing and identity routes —
//!    against the keys of a fresh edge state ([`crate::edge_state`]; a token this isolate already
//!    verified under the same keys skips the signature check, [`VerifiedTokens`]), then
//!    "not revoked" from the same state;
//! 4. policy ([`argus_shared::policy`]) — geo, TLS, device, scope and path rules;
//! 5. rate limit ([`crate::rate_limit`]) — per IP for pairing, per device for the API;
//! 6. signed forwarding ([`crate::forward`]); for devices through [`crate::bandwidth`]
//!    (images transcoded and cached at the edge, JSON compressed).
//!
//! Sealed requests (`POST /api/v1/relay/sealed`, [`argus_shared::sealed`]) pass the same token,
//! revocation, policy (geo, TLS, device; the path rules see only the sealed path) and rate-limit
//! checks, then go to the agent as they came: a `message/ohttp-req` body of declared size, read
//! and digest-signed, never decrypted, transcoded or cached. With the policy's
//! `[sealed] required`, plain device requests are refused after the token check
//! (`sealed.required`); pairing and the public routes stay plain.

use argus_shared::bearer;
use argus_shared::path::{self, CanonicalTarget};
use argus_shared::policy::{Decision, DeviceFacts, RequestFacts};
use argus_shared::route::{self, AgentRoute, Route};
use argus_shared::sealed::{MAX_SEALED_REQUEST_BYTES, REQUEST_MEDIA_TYPE};
use std::cell::RefCell;
use std::sync::Arc;

use argus_shared::token::{self, AccessClaims, Expectations, KeySet, Scope, VerifiedTokens};
use argus_shared::ws_auth;
use worker::{Env, Request, Response};

use crate::bandwidth;
use crate::cf::CfFacts;
use crate::config::{self, EdgeConfig};
use crate::edge_state;
use crate::error::EdgeError;
use crate::forward;
use crate::rate_limit::{self, Class};

/// `reason` of the 401 for a valid token of a device the edge state lists as revoked.
const REASON_DEVICE_REVOKED: &str = "token.device_revoked";

pub async fn handle(req: Request, env: &Env, request_id: &str) -> Result<Response, EdgeError> {
    let cfg = config::get(env)?;
    let target = target_of(&req.inner().url())?;
    let canonical = path::canonicalize(&target)
        .map_err(|e| EdgeError::NonCanonicalPath { reason: e.reason() })?;
    // The method as the client sent it: workers-rs's `Request::method()` maps every method it
    // does not know (PROPFIND, MOVE, …) to GET, which would serve them as GETs.
    let method = req.inner().method();
    let cf = CfFacts::of(&req);
    let client_ip = req
        .headers()
        .get(cfg.client_ip_header.as_str())
        .ok()
        .flatten();

    match route::classify(&method, &canonical.decoded_path) {
        Route::Refused(reason) => Err(EdgeError::Refused { reason }),
        Route::MethodNotAllowed => Err(EdgeError::MethodNotAllowed),
        Route::Public(_) => {
            check_policy(&cfg, &method, &canonical, &cf, None)?;
            let ip_key = client_ip.clone().unwrap_or_else(|| String::from("unknown"));
            rate_limit::check(env, cfg.limiter, Class::Pairing, format!("ip:{ip_key}")).await?;
            forward::to_origin(
                req,
                &cfg,
                &canonical,
                None,
                client_ip.as_deref(),
                None,
                request_id,
            )
            .await
        }
        Route::Agent(AgentRoute::Sealed) => {
            let claims = authenticate(&req, &cfg, request_id).await?;
            check_policy(&cfg, &method, &canonical, &cf, Some(&claims))?;
            rate_limit::check(
                env,
                cfg.limiter,
                Class::Device,
                format!("device:{}", claims.sub),
            )
            .await?;
            check_sealed_body(&req)?;
            forward::to_origin(
                req,
                &cfg,
                &canonical,
                Some(&claims.sub),
                client_ip.as_deref(),
                None,
                request_id,
            )
            .await
        }
        Route::Agent(_) | Route::Backend { .. } => {
            let claims = authenticate(&req, &cfg, request_id).await?;
            if cfg.policy.sealed_required() {
                return Err(EdgeError::SealedRequired);
            }
            check_policy(&cfg, &method, &canonical, &cf, Some(&claims))?;
            rate_limit::check(
                env,
                cfg.limiter,
                Class::Device,
                format!("device:{}", claims.sub),
            )
            .await?;
            bandwidth::to_origin(
                req,
                &cfg,
                &canonical,
                &claims,
                client_ip.as_deref(),
                request_id,
            )
            .await
        }
    }
}

/// A sealed request is `message/ohttp-req` with a declared length the forwarder reads and
/// digest-signs (never a streamed, unsigned body: the agent refuses those).
fn check_sealed_body(req: &Request) -> Result<(), EdgeError> {
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let media_type = header("content-type");
    let media_type = media_type
        .as_deref()
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if !media_type.is_some_and(|m| m.eq_ignore_ascii_case(REQUEST_MEDIA_TYPE)) {
        return Err(EdgeError::BadRequest {
            reason: "sealed.content_type",
        });
    }
    match header("content-length").and_then(|v| v.trim().parse::<usize>().ok()) {
        Some(len) if len > 0 && len <= MAX_SEALED_REQUEST_BYTES => Ok(()),
        _ => Err(EdgeError::BadRequest {
            reason: "sealed.length",
        }),
    }
}

/// The path and query of the request URL exactly as the runtime received it (still encoded).
fn target_of(url: &str) -> Result<String, EdgeError> {
    let after_scheme =
        url.split_once("://")
            .map(|(_, rest)| rest)
            .ok_or(EdgeError::NonCanonicalPath {
                reason: "path.malformed",
            })?;
    let start = after_scheme.find('/').ok_or(EdgeError::NonCanonicalPath {
        reason: "path.malformed",
    })?;
    let target = &after_scheme[start..];
    // A fragment never reaches a server; drop it if a client sent one anyway.
    Ok(target.split('#').next().unwrap_or(target).to_owned())
}

/// The bearer token (or, on a WebSocket upgrade, the [`ws_auth`] subprotocol token), verified against the keys of a fresh edge state, of a device that the state
/// does not list as revoked. No token: refused before the state is fetched.
async fn authenticate(
    req: &Request,
    cfg: &EdgeConfig,
    request_id: &str,
) -> Result<Arc<AccessClaims>, EdgeError> {
    let header = req.headers().get("authorization").ok().flatten();
    let protocols = req.headers().get(ws_auth::HEADER).ok().flatten();
    let token = match (&header, &protocols) {
        (Some(h), _) => bearer::parse(h).ok_or(EdgeError::Unauthenticated)?,
        // Browsers cannot set headers on a WebSocket: the token may ride in the subprotocols.
        (None, Some(p)) if forward::is_websocket(req) => {
            ws_auth::token_from_protocols(p).ok_or(EdgeError::Unauthenticated)?
        }
        _ => return Err(EdgeError::Unauthenticated),
    };
    let fresh = edge_state::get(cfg, request_id).await?;
    let now = worker::Date::now().as_millis() / 1000;
    let claims = verify_remembered(token, &fresh.keys, &fresh.expectations, now)?;
    // Checked on every request, remembered token or not.
    if fresh.state.is_revoked(&claims.sub) {
        return Err(EdgeError::InvalidToken {
            reason: REASON_DEVICE_REVOKED,
        });
    }
    Ok(claims)
}

thread_local! {
    /// Tokens this isolate already verified ([`VerifiedTokens`]: same token, same keys and
    /// expectations, time claims still valid). Revocation is not part of it: the fresh edge
    /// state's list is checked on every request.
    static VERIFIED: RefCell<VerifiedTokens> = RefCell::new(VerifiedTokens::default());
}

/// [`token::verify_access_token`], skipping the signature check for a token this isolate
/// verified before under the same keys.
fn verify_remembered(
    token: &str,
    keys: &KeySet,
    expect: &Expectations,
    now: u64,
) -> Result<Arc<AccessClaims>, EdgeError> {
    // The edge has no revocation generation (see above): always 0.
    const GENERATION: u64 = 0;
    if let Some(claims) =
        VERIFIED.with_borrow(|v| v.get(token, keys, expect, GENERATION, now).cloned())
    {
        return Ok(claims);
    }
    let claims = token::verify_access_token(token, keys, expect, now)
        .map(Arc::new)
        .map_err(|e| EdgeError::InvalidToken { reason: e.reason() })?;
    VERIFIED.with_borrow_mut(|v| v.insert(token, keys, expect, claims.clone(), GENERATION, now));
    Ok(claims)
}

fn check_policy(
    cfg: &EdgeConfig,
    method: &str,
    canonical: &CanonicalTarget,
    cf: &CfFacts,
    claims: Option<&AccessClaims>,
) -> Result<(), EdgeError> {
    let facts = RequestFacts {
        method,
        decoded_path: &canonical.decoded_path,
        country: cf.country.as_deref(),
        asn: cf.asn,
        tls_version: cf.tls_version.as_deref(),
        device: claims.map(|c| DeviceFacts {
            platform: &c.platform,
            app_version: c.app_version.as_deref(),
            os_version: c.os_version.as_deref(),
            scope_read_only: c.scope == Scope::Viewer,
        }),
    };
    match cfg.policy.evaluate(&facts) {
        Decision::Allow => Ok(()),
        Decision::Deny(reason) => Err(EdgeError::Denied { reason }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_is_the_url_as_the_runtime_parsed_it() {
        // workerd hands the Worker the URL after the WHATWG parser resolved the dot segments,
        // encoded or not: the Worker checks (and forwards) `/api/v1/app.db`, never the raw
        // `%2e%2e` form. The LAN listener parses the same way (`path::as_parsed_by_the_url_standard`),
        // so both answer alike.
        let runtime_url = |raw: &str| {
            format!(
                "https://relay.example{}",
                path::as_parsed_by_the_url_standard(raw).unwrap()
            )
        };
        assert_eq!(
            target_of(&runtime_url("/api/v1/thumbnails/%2e%2e/app.db")).unwrap(),
            "/api/v1/app.db"
        );
        // Escapes the parser leaves alone are kept as they came, for `canonicalize` to judge.
        assert_eq!(
            target_of(&runtime_url("/api/v1/thumbnails/a%2fb")).unwrap(),
            "/api/v1/thumbnails/a%2fb"
        );
        assert_eq!(
            target_of("http://127.0.0.1:8787/api/v1/events?limit=2#x").unwrap(),
            "/api/v1/events?limit=2"
        );
        assert!(target_of("no-scheme").is_err());
    }
}
