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
//! 5. rate limit (Workers rate-limiting bindings) — per IP for pairing, per device for the API;
//! 6. signed forwarding ([`crate::forward`]); for devices through [`crate::bandwidth`]
//!    (images transcoded and cached at the edge, JSON compressed).

use argus_shared::path::{self, CanonicalTarget};
use argus_shared::policy::{Decision, DeviceFacts, RequestFacts};
use argus_shared::route::{self, Route};
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

/// Rate-limit bindings (see `wrangler.toml`).
const PAIRING_LIMITER: &str = "PAIRING_LIMITER";
const DEVICE_LIMITER: &str = "DEVICE_LIMITER";
/// Both limiters use 60-second periods.
const LIMIT_PERIOD_SECS: u32 = 60;
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
    let client_ip = req.headers().get("cf-connecting-ip").ok().flatten();

    match route::classify(&method, &canonical.decoded_path) {
        Route::Refused(reason) => Err(EdgeError::Refused { reason }),
        Route::MethodNotAllowed => Err(EdgeError::MethodNotAllowed),
        Route::Public(_) => {
            check_policy(&cfg, &method, &canonical, &cf, None)?;
            let ip_key = client_ip.clone().unwrap_or_else(|| String::from("unknown"));
            rate_limit(env, PAIRING_LIMITER, format!("ip:{ip_key}")).await?;
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
        Route::Agent(_) | Route::Backend { .. } => {
            let claims = authenticate(&req, &cfg, request_id).await?;
            check_policy(&cfg, &method, &canonical, &cf, Some(&claims))?;
            rate_limit(env, DEVICE_LIMITER, format!("device:{}", claims.sub)).await?;
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
        (Some(h), _) => bearer_token(h).ok_or(EdgeError::Unauthenticated)?,
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

/// `Bearer <token>` (scheme case-insensitive, one space).
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token.trim())
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
        Decision::Deny(denial) => Err(EdgeError::Denied {
            reason: denial.reason,
        }),
    }
}

async fn rate_limit(env: &Env, binding: &str, key: String) -> Result<(), EdgeError> {
    let limiter = env.rate_limiter(binding).map_err(|_| EdgeError::Config {
        reason: "config.rate_limiter",
    })?;
    let outcome = limiter.limit(key).await.map_err(|_| EdgeError::Internal)?;
    if outcome.success {
        Ok(())
    } else {
        Err(EdgeError::RateLimited {
            retry_after_secs: LIMIT_PERIOD_SECS,
        })
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

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }
}
