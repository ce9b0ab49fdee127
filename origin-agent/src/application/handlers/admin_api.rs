//! The admin API, once the admin listener let the caller in (the admin token, or the admin
//! page's session: [`crate::listener::admin`]).
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
//! | GET | `/admin/status` | → the relay status ([`crate::application::handlers::status`]) with local detail |
//! | POST | `/admin/doctor-probes` | → 201 `{probe, param, expires_in}`: a one-time probe for `argus-relay doctor` ([`crate::domain::auth::edge::stats`]) |
//! | GET | `/admin/metrics` | → Prometheus text format ([`crate::base::metrics`]) |

use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;

use crate::application::handlers::pairing_codes;
use crate::application::handlers::phone as id_http;
use crate::application::state::AppState;
use crate::base::clock::unix_now;
use crate::base::error::AgentError;
use crate::base::http::body::{self, Body};
use crate::domain::key_ring::KeyRing;
use crate::domain::pairing::codes;
use crate::domain::store::PairError;

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

/// The admin API proper, once the caller is authorized.
pub async fn api(state: &AppState, req: Request<Body>) -> Result<Response<Body>, AgentError> {
    let path = req.uri().path().to_owned();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = req.method().clone();
    let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
    match (method, segs.as_slice()) {
        (Method::POST, ["admin", "pairing-codes"]) => {
            let body: pairing_codes::NewOwnerCode = id_http::read_json(req).await?;
            let created = body.create(state).await?;
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
                return deny_by_id(state, id, now).await;
            }
            let code = body
                .code
                .as_deref()
                .ok_or_else(|| AgentError::BadRequest("code is required".into()))
                .and_then(|c| codes::normalize(c).ok_or(AgentError::InvalidCode))?;
            let scope = match confirm {
                true => Some(pairing_codes::scope_or_least(body.scope.as_deref())?),
                false => None,
            };
            let decided = state.store.off_worker(move |s| match scope {
                Some(scope) => s.confirm_pairing(&code, scope, now),
                None => s.deny_pairing(&code, now),
            });
            match decided.await {
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
            id_http::rename(state, &id, &body.name, None).await
        }
        (Method::DELETE, ["admin", "devices", id]) => id_http::revoke(state, id).await,
        (Method::POST, ["admin", "keys", "rotate"]) => rotate_keys(state).await,
        (Method::GET, ["admin", "live-streams"]) => Ok(body::json(
            StatusCode::OK,
            &super::live_streams::owner_view(state).await,
        )),
        (Method::GET, ["admin", "status"]) => {
            crate::application::handlers::status::answer(state, true).await
        }
        (Method::POST, ["admin", "doctor-probes"]) => {
            let probe = state.edge_stats.new_probe(unix_now()).map_err(|e| {
                tracing::error!(error = %e, "cannot make a doctor probe");
                AgentError::Internal
            })?;
            Ok(body::json(
                StatusCode::CREATED,
                &serde_json::json!({
                    "probe": probe,
                    "param": crate::domain::auth::edge::stats::PROBE_PARAM,
                    "expires_in": crate::domain::auth::edge::stats::PROBE_TTL_SECS,
                }),
            ))
        }
        (Method::GET, ["admin", "metrics"]) => Response::builder()
            .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
            .header("cache-control", "no-store")
            .body(body::full(crate::base::metrics::METRICS.render()))
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

async fn deny_by_id(state: &AppState, id: i64, now: i64) -> Result<Response<Body>, AgentError> {
    match state
        .store
        .off_worker(move |s| s.deny_pairing_by_id(id, now))
        .await
    {
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

async fn rotate_keys(state: &AppState) -> Result<Response<Body>, AgentError> {
    let internal = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "key rotation failed");
        AgentError::Internal
    };
    let seed = crate::domain::key_ring::new_seed().map_err(|e| internal(&e))?;
    let signing = argus_shared::token::TokenSigningKey::from_seed_with_thumbprint_kid(seed);
    let now = unix_now();
    let kid = signing.kid.clone();
    let keys = state
        .store
        .off_worker(move |s| {
            s.add_signing_key(&kid, &seed, i64::try_from(now).unwrap_or(i64::MAX))?;
            KeyRing::read(s, now)
        })
        .await
        .map_err(|e| internal(&e))?;
    state.keys.install(keys);
    // The sealed-mode key rotates with it; the previous one is accepted during the overlap.
    let ohttp_key_id = state
        .store
        .off_worker(move |s| crate::domain::sealed_keys::rotate(s, now))
        .await
        .map_err(|e| internal(&e))?;
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
