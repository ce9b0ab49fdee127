//! The admin listener: loopback only, for the owner's CLI (and the admin page).
//!
//! Every request needs `Authorization: Bearer <admin token>` (the token is in
//! `<data_dir>/admin.token`, 0600), compared in constant time, or the admin page's session
//! cookie with its same-origin and CSRF checks ([`crate::admin_ui::authorize_api`]). The `Host`
//! header must name a loopback address or `localhost`, so a web page in the owner's browser
//! cannot reach this API through DNS rebinding. `/admin/ui…` is the page itself
//! ([`crate::admin_ui`]).
//!
//! | method | path | body → answer |
//! |---|---|---|
//! | POST | `/admin/pairing-codes` | `{scope, ttl_secs}` → 201 `{code, scope, expires_at, expires_in, pair_uri, public_url, fingerprint}` |
//! | GET | `/admin/pairing-codes/{code}` | → `{code, state: pending\|redeemed\|expired, device_id, device_name}` |
//! | GET | `/admin/pairings/pending` | → `{pending: [{id, phone_device_id, platform, name, model, created_at, expires_at}]}` |
//! | POST | `/admin/pairings/confirm` | `{code, scope}` → `{confirmed: true}` |
//! | POST | `/admin/pairings/deny` | `{code}` or `{id}` (of the pending list) → `{denied: true}` |
//! | GET | `/admin/devices` | → `{devices, total}` |
//! | PUT | `/admin/devices/{id}/rename` | `{name}` → the device |
//! | DELETE | `/admin/devices/{id}` | → `{revoked: true, device_id}` |
//! | POST | `/admin/keys/rotate` | → `{kid, jwks}` |
//! | GET | `/admin/status` | → the relay status ([`crate::relay_status`]) with local detail |
//! | POST | `/admin/doctor-probes` | → 201 `{probe, param, expires_in}`: a one-time probe for `argus-relay doctor` ([`crate::edge_stats`]) |
//! | GET | `/admin/metrics` | → Prometheus text format ([`crate::metrics`]) |

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::admin_ui::Served;
use crate::body::{self, Body};
use crate::clock::unix_now;
use crate::error::AgentError;
use crate::identity::{self, codes, http as id_http};
use crate::require_device_token::bearer;
use crate::state::AppState;
use crate::store::{PairError, Scope};

pub async fn handle(
    state: Arc<AppState>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    let request_id = crate::request_id::new();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let mut resp = match serve(&state, req.map(body::incoming), peer, &request_id).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(&request_id),
    };
    crate::metrics::METRICS.request(
        "admin",
        crate::metrics::RouteLabel::Admin,
        resp.status().as_u16(),
    );
    tracing::info!(
        listener = "admin",
        request_id,
        %method,
        path = %path.char_indices().nth(200).map_or(&*path, |(i, _)| &path[..i]),
        status = resp.status().as_u16(),
        "request"
    );
    crate::admin_ui::harden(resp.headers_mut());
    resp
}

/// The `Host` header's host without its port: `[::1]:8471` → `::1`, `127.0.0.1:8471` →
/// `127.0.0.1`, `localhost:8471` → `localhost`. `None` unless the header is exactly
/// `uri-host [":" port]` ([`parse_host`]).
fn host_name(req: &Request<Body>) -> Option<&str> {
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())?;
    parse_host(host).map(|(name, _)| name)
}

/// Parses a `Host` value strictly (RFC 9110 §7.2, RFC 3986 §3.2.2): a bracketed IPv6 literal
/// (`[::1]`), or a name or IPv4 address of letters, digits, `-`, `.` and `_`; then optionally
/// `:` and a port of 1-5 digits that fits in 16 bits. Anything else (`[::1]evil`,
/// `localhost:evil`, `a:1:2`, an empty port) is `None`.
fn parse_host(value: &str) -> Option<(&str, Option<u16>)> {
    let (name, port) = if let Some(rest) = value.strip_prefix('[') {
        let (literal, after) = rest.split_once(']')?;
        literal.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (literal, port)
    } else {
        let (name, port) = match value.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (value, None),
        };
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !name_ok {
            return None;
        }
        (name, port)
    };
    let port = match port {
        None => None,
        Some(p) if (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok()?)
        }
        Some(_) => return None,
    };
    Some((name, port))
}

fn host_is_loopback(req: &Request<Body>) -> bool {
    let Some(name) = host_name(req) else {
        return false;
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The request carries the admin token.
pub(crate) fn authorized(state: &AppState, req: &Request<Body>) -> bool {
    let Some(token) = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
    else {
        return false;
    };
    bool::from(token.as_bytes().ct_eq(&state.admin_token))
}

fn parse_scope(s: &str) -> Result<Scope, AgentError> {
    Scope::parse(s)
        .ok_or_else(|| AgentError::BadRequest("scope must be \"owner\" or \"viewer\"".into()))
}

#[derive(Deserialize)]
struct CreateCode {
    #[serde(default = "default_scope")]
    scope: String,
    #[serde(default = "default_ttl")]
    ttl_secs: u64,
}

fn default_scope() -> String {
    // Least privilege unless the owner asks for more (as the CLI does).
    "viewer".into()
}

fn default_ttl() -> u64 {
    identity::MAX_OWNER_CODE_TTL_SECS
}

#[derive(Deserialize)]
struct Decide {
    /// The code the phone shows (confirm needs it: it proves the owner has that phone).
    #[serde(default)]
    code: Option<String>,
    /// Deny only: the request's `id` from the pending list.
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    scope: Option<String>,
}

async fn serve(
    state: &AppState,
    req: Request<Body>,
    peer: SocketAddr,
    request_id: &str,
) -> Result<Response<Body>, AgentError> {
    if !host_is_loopback(&req) {
        return Err(AgentError::Refused {
            reason: "admin.host_not_loopback",
        });
    }
    if crate::admin_ui::is_ui_path(req.uri().path()) {
        return Ok(crate::admin_ui::serve(state, req, peer, Served::Loopback, request_id).await);
    }
    if !authorized(state, &req) {
        crate::admin_ui::authorize_api(state, &req, Served::Loopback)?;
    }
    api(state, req).await
}

/// `/admin…` on the LAN listener (HTTPS), when `[lan] admin_page` is on: the page, and the API
/// for the page's session only — the admin token is never taken over the network. The `Host`
/// must be an IP address or a `.local` name (what a browser at home uses), so a web page cannot
/// reach it through DNS rebinding.
pub async fn serve_on_lan(
    state: &AppState,
    req: Request<Body>,
    peer: SocketAddr,
    request_id: &str,
) -> Response<Body> {
    let result = if !host_is_lan_name(&req) {
        Err(AgentError::Refused {
            reason: "admin.host_not_lan",
        })
    } else if crate::admin_ui::is_ui_path(req.uri().path()) {
        Ok(crate::admin_ui::serve(state, req, peer, Served::Lan, request_id).await)
    } else if let Err(e) = crate::admin_ui::authorize_api(state, &req, Served::Lan) {
        Err(e)
    } else {
        api(state, req).await
    };
    let mut resp = result.unwrap_or_else(|e| e.into_response(request_id));
    crate::admin_ui::harden(resp.headers_mut());
    resp
}

/// The `Host` names an IP address (any port) or an mDNS `.local` name.
fn host_is_lan_name(req: &Request<Body>) -> bool {
    let Some(name) = host_name(req) else {
        return false;
    };
    name.parse::<std::net::IpAddr>().is_ok()
        || (name.len() > ".local".len()
            && name.to_ascii_lowercase().ends_with(".local")
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
}

/// The admin API proper, once the caller is authorized.
async fn api(state: &AppState, req: Request<Body>) -> Result<Response<Body>, AgentError> {
    let path = req.uri().path().to_owned();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = req.method().clone();
    let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
    match (method, segs.as_slice()) {
        (Method::POST, ["admin", "pairing-codes"]) => {
            let body: CreateCode = id_http::read_json(req).await?;
            let created =
                identity::create_owner_code(state, parse_scope(&body.scope)?, body.ttl_secs)?;
            Ok(body::json(StatusCode::CREATED, &created))
        }
        (Method::GET, ["admin", "pairing-codes", code]) => {
            let code = codes::normalize(code).ok_or(AgentError::NotFound)?;
            let known = state.owner_code(&code).ok_or(AgentError::NotFound)?;
            let device_name = match &known.device_id {
                Some(id) => state.store.device(id).ok().flatten().map(|d| d.name),
                None => None,
            };
            let code_state = if known.device_id.is_some() {
                "redeemed"
            } else if known.expires_at <= unix_now() {
                "expired"
            } else {
                "pending"
            };
            Ok(body::json(
                StatusCode::OK,
                &serde_json::json!({
                    "code": code,
                    "state": code_state,
                    "expires_at": known.expires_at,
                    "device_id": known.device_id,
                    "device_name": device_name,
                }),
            ))
        }
        (Method::GET, ["admin", "pairings", "pending"]) => {
            let pending = state.store.pending_phone_pairings(now).map_err(|e| {
                tracing::error!(error = %e, "store failure");
                AgentError::Internal
            })?;
            Ok(body::json(
                StatusCode::OK,
                &serde_json::json!({ "pending": pending }),
            ))
        }
        (Method::POST, ["admin", "pairings", verb @ ("confirm" | "deny")]) => {
            let confirm = *verb == "confirm";
            let body: Decide = id_http::read_json(req).await?;
            if let (false, None, Some(id)) = (confirm, &body.code, body.id) {
                return deny_by_id(state, id, now);
            }
            let code = body
                .code
                .as_deref()
                .ok_or_else(|| AgentError::BadRequest("code is required".into()))
                .and_then(|c| codes::normalize(c).ok_or(AgentError::InvalidCode))?;
            let result = if confirm {
                let scope = parse_scope(body.scope.as_deref().unwrap_or("viewer"))?;
                state.store.confirm_pairing(&code, scope, now)
            } else {
                state.store.deny_pairing(&code, now)
            };
            match result {
                Ok(()) => {
                    tracing::info!(confirm, "owner decided a phone pairing");
                    let key = if confirm { "confirmed" } else { "denied" };
                    Ok(body::json(
                        StatusCode::OK,
                        &serde_json::json!({ key: true }),
                    ))
                }
                Err(PairError::Store(e)) => {
                    tracing::error!(error = %e, "store failure");
                    Err(AgentError::Internal)
                }
                Err(_) => Err(AgentError::InvalidCode),
            }
        }
        (Method::GET, ["admin", "devices"]) => Ok(body::json(
            StatusCode::OK,
            &id_http::device_list(state, None)?,
        )),
        (Method::PUT, ["admin", "devices", id, "rename"]) => {
            let id = (*id).to_owned();
            let body: id_http::RenameBody = id_http::read_json(req).await?;
            id_http::rename(state, &id, &body.name, None)
        }
        (Method::DELETE, ["admin", "devices", id]) => id_http::revoke(state, id),
        (Method::POST, ["admin", "keys", "rotate"]) => rotate_keys(state),
        (Method::GET, ["admin", "status"]) => crate::relay_status::answer(state, true).await,
        (Method::POST, ["admin", "doctor-probes"]) => {
            let probe = state.edge_stats.new_probe(unix_now()).map_err(|e| {
                tracing::error!(error = %e, "cannot make a doctor probe");
                AgentError::Internal
            })?;
            Ok(body::json(
                StatusCode::CREATED,
                &serde_json::json!({
                    "probe": probe,
                    "param": crate::edge_stats::PROBE_PARAM,
                    "expires_in": crate::edge_stats::PROBE_TTL_SECS,
                }),
            ))
        }
        (Method::GET, ["admin", "metrics"]) => Response::builder()
            .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
            .header("cache-control", "no-store")
            .body(body::full(crate::metrics::METRICS.render()))
            .map_err(|_| AgentError::Internal),
        (
            _,
            ["admin", "pairing-codes", ..]
            | ["admin", "pairings", ..]
            | ["admin", "devices", ..]
            | ["admin", "keys", ..]
            | ["admin", "status"]
            | ["admin", "doctor-probes"]
            | ["admin", "metrics"],
        ) => Err(AgentError::MethodNotAllowed),
        _ => Err(AgentError::NotFound),
    }
}

fn deny_by_id(state: &AppState, id: i64, now: i64) -> Result<Response<Body>, AgentError> {
    match state.store.deny_pairing_by_id(id, now) {
        Ok(true) => {
            tracing::info!(confirm = false, "owner decided a phone pairing");
            Ok(body::json(
                StatusCode::OK,
                &serde_json::json!({ "denied": true }),
            ))
        }
        Ok(false) => Err(AgentError::InvalidCode),
        Err(e) => {
            tracing::error!(error = %e, "store failure");
            Err(AgentError::Internal)
        }
    }
}

fn rotate_keys(state: &AppState) -> Result<Response<Body>, AgentError> {
    let internal = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "key rotation failed");
        AgentError::Internal
    };
    let seed = crate::keys::new_seed().map_err(|e| internal(&e))?;
    let signing = argus_shared::token::TokenSigningKey::from_seed_with_thumbprint_kid(seed);
    let now = unix_now();
    state
        .store
        .add_signing_key(&signing.kid, &seed, i64::try_from(now).unwrap_or(i64::MAX))
        .map_err(|e| internal(&e))?;
    state
        .keys
        .reload(&state.store, now)
        .map_err(|e| internal(&e))?;
    // The sealed-mode key rotates with it; the previous one is accepted during the overlap.
    let ohttp_key_id = crate::sealed::keys::rotate(&state.store, now).map_err(|e| internal(&e))?;
    state
        .sealed_keys
        .reload(&state.store, now)
        .map_err(|e| internal(&e))?;
    tracing::info!(kid = %signing.kid, ohttp_key_id, "signing and Oblivious HTTP keys rotated");
    Ok(body::json(
        StatusCode::OK,
        &serde_json::json!({
            "kid": signing.kid,
            "jwks": state.keys.jwks(),
            "ohttp_key_id": ohttp_key_id,
            "ohttp_keys_sha256": &*state.sealed_keys.pin(),
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_host(host: &str) -> Request<Body> {
        Request::builder()
            .uri("/admin/status")
            .header(hyper::header::HOST, host)
            .body(body::empty())
            .unwrap()
    }

    #[test]
    fn host_values_parse_strictly() {
        assert_eq!(parse_host("localhost"), Some(("localhost", None)));
        assert_eq!(
            parse_host("localhost:8471"),
            Some(("localhost", Some(8471)))
        );
        assert_eq!(
            parse_host("127.0.0.1:8471"),
            Some(("127.0.0.1", Some(8471)))
        );
        assert_eq!(parse_host("[::1]"), Some(("::1", None)));
        assert_eq!(parse_host("[::1]:8471"), Some(("::1", Some(8471))));
        assert_eq!(
            parse_host("home.local:65535"),
            Some(("home.local", Some(65535)))
        );
        for bad in [
            "",
            ":8471",
            "[::1]evil",
            "[::1]:evil",
            "[::1]:",
            "[::1]8471",
            "[::1]]:8471",
            "[evil]:8471",
            "[::1",
            "localhost:evil",
            "localhost:",
            "localhost:8471:1",
            "localhost:65536",
            "localhost:123456",
            "localhost:+80",
            "local host",
            "localhost/x",
            "user@localhost",
            "::1",
        ] {
            assert_eq!(parse_host(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_loopback_hosts_reach_the_admin_api() {
        for ok in [
            "localhost:8471",
            "LOCALHOST",
            "127.0.0.1:8471",
            "127.0.0.2",
            "[::1]:8471",
        ] {
            assert!(host_is_loopback(&with_host(ok)), "{ok}");
        }
        for bad in [
            "[::1]evil",
            "localhost:evil",
            "127.0.0.1:evil",
            "localhost.evil.example",
            "evil.example:8471",
            "192.168.1.10:8471",
            "[::1]:8471:1",
        ] {
            assert!(!host_is_loopback(&with_host(bad)), "{bad}");
        }
        let no_host = Request::builder().body(body::empty()).unwrap();
        assert!(!host_is_loopback(&no_host));
    }

    #[test]
    fn the_lan_page_takes_addresses_and_local_names_only() {
        for ok in [
            "192.168.1.10:8443",
            "[fe80::1]:8443",
            "home.local:8443",
            "Home.Local",
        ] {
            assert!(host_is_lan_name(&with_host(ok)), "{ok}");
        }
        for bad in [
            "[fe80::1]evil",
            "home.local:evil",
            "192.168.1.10:evil",
            "evil.example",
            ".local",
            "a_b.local",
        ] {
            assert!(!host_is_lan_name(&with_host(bad)), "{bad}");
        }
    }
}
