//! The identity endpoints the phone calls (through the edge, or on the LAN):
//!
//! | route | who | what |
//! |---|---|---|
//! | `POST /api/v1/devices/pair` | anyone with an owner code | redeem the code: device + tokens |
//! | `POST /api/v1/mobile/auth/pair` | anyone | ask to pair (ArgusAI app flow): a 6-digit code |
//! | `GET /api/v1/mobile/auth/status/{code}` | the asking phone | `{confirmed, expired}` |
//! | `POST /api/v1/mobile/auth/exchange` | the asking phone | confirmed code → tokens |
//! | `POST /api/v1/mobile/auth/refresh` | a device | rotate the refresh token |
//! | `POST /api/v1/mobile/auth/revoke` | a device | sign this device out (owner: `revoke_all`) |
//! | `GET /api/v1/devices` | owner | the paired devices |
//! | `PUT /api/v1/devices/{id}/rename` | owner, or the device itself | rename |
//! | `DELETE /api/v1/devices/{id}` | owner, or the device itself | revoke |
//! | `GET /.well-known/jwks.json` | anyone | the public token keys |
//! | `GET /api/v1/health` | anyone | liveness and the server's identity (instance id, LAN certificate fingerprint) |
//! | `GET /api/v1/relay/status` | owner | see [`crate::application::handlers::status`] |
//!
//! Every code-taking endpoint first checks the caller's failure window
//! ([`crate::domain::pairing::limiter`]) and charges it on failure; unknown, expired, used and locked codes get
//! the same answer.

use argus_shared::route::{AgentRoute, PublicRoute};
use argus_shared::token::{AccessClaims, Scope};
use hyper::{Request, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::application::state::AppState;
use crate::base::clock::unix_now;
use crate::base::error::AgentError;
use crate::base::http::body::{self, Body};
use crate::base::http::RequestContext;
use crate::domain::pairing::codes;
use crate::domain::pairing::limiter::Client;
use crate::domain::pairing::tokens::{self, Issuer, TokenPair};
use crate::domain::store::{
    Device, DeviceInfo, PairError, PairingKind, PairingStatus, PhonePairingRequest, RefreshError,
    StoreError,
};

/// Identity request bodies are small; anything bigger is refused before parsing.
const MAX_JSON_BODY: usize = 16 * 1024;
/// Phone-initiated pairing requests live this long (the ArgusAI app polls every 2 s).
pub const PHONE_CODE_TTL_SECS: u64 = 600;

fn now_i64(now: u64) -> i64 {
    i64::try_from(now).unwrap_or(i64::MAX)
}

pub(crate) fn store_failed(e: StoreError) -> AgentError {
    match e {
        StoreError::InvalidInput(what) => AgentError::BadRequest(format!("invalid {what}")),
        full if full.is_disk_full() => {
            tracing::error!(error = %full, "the data directory's disk is full");
            AgentError::StorageFull
        }
        other => {
            tracing::error!(error = %other, "store failure");
            AgentError::Internal
        }
    }
}

pub(crate) async fn read_json<T: DeserializeOwned>(req: Request<Body>) -> Result<T, AgentError> {
    let bytes = read_small_body(req).await?;
    parse_json(&bytes)
}

/// Like [`read_json`], but an empty body means `T::default()` (a malformed one is still a 400).
async fn read_json_or_default<T: DeserializeOwned + Default>(
    req: Request<Body>,
) -> Result<T, AgentError> {
    let bytes = read_small_body(req).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse_json(&bytes)
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AgentError> {
    serde_json::from_slice(bytes)
        .map_err(|e| AgentError::BadRequest(format!("invalid JSON body: {e}")))
}

/// The whole body, at most `MAX_JSON_BODY` bytes.
async fn read_small_body(req: Request<Body>) -> Result<bytes::Bytes, AgentError> {
    body::read_capped(req.into_body(), MAX_JSON_BODY)
        .await
        .map_err(|e| match e {
            body::ReadCappedError::TooLarge { .. } => AgentError::PayloadTooLarge,
            body::ReadCappedError::Read(_) => {
                AgentError::BadRequest("could not read the request body".into())
            }
        })
}

/// The `n`th segment of a decoded canonical path (`/a/b` → 0:`a`, 1:`b`).
pub(crate) fn segment(decoded_path: &str, n: usize) -> Result<&str, AgentError> {
    decoded_path
        .trim_start_matches('/')
        .split('/')
        .nth(n)
        .filter(|s| !s.is_empty())
        .ok_or(AgentError::NotFound)
}

/// RFC 3339 UTC, as ArgusAI's `expires_at` strings.
pub fn rfc3339(unix: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix))
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// Public routes

pub async fn public(
    state: &AppState,
    route: PublicRoute,
    req: Request<Body>,
    ctx: &RequestContext,
    decoded_path: &str,
) -> Result<Response<Body>, AgentError> {
    let client = Client::from(ctx.client_ip);
    match route {
        PublicRoute::Jwks => Ok(body::json(StatusCode::OK, &state.keys.jwks())),
        PublicRoute::OhttpKeys => Ok(crate::application::sealed::key_config_response(state)),
        PublicRoute::Health => Ok(body::json(
            StatusCode::OK,
            &serde_json::json!({
                "status": "ok",
                "service": "argus-relay",
                "version": env!("CARGO_PKG_VERSION"),
                "instance_id": state.instance_id,
                "fingerprint": state.lan_fingerprint,
            }),
        )),
        PublicRoute::PairCode => redeem_owner_code(state, req, client).await,
        PublicRoute::MobilePair => phone_pair(state, req, client).await,
        PublicRoute::MobileStatus => {
            let code = segment(decoded_path, 5)?.to_owned();
            phone_status(state, &code, client).await
        }
        PublicRoute::MobileExchange => phone_exchange(state, req, client).await,
        PublicRoute::MobileRefresh => refresh(state, req, client).await,
    }
}

fn check_window(state: &AppState, client: Client, now: u64) -> Result<(), AgentError> {
    state
        .pairing_failures
        .check(client, now)
        .map_err(|retry_after_secs| AgentError::RateLimited { retry_after_secs })
}

/// A code the agent itself found malformed: charged to the live codes of `kind` in the store,
/// as a wrong code would be.
async fn charge_live_codes(
    state: &AppState,
    kind: PairingKind,
    now: u64,
) -> Result<(), AgentError> {
    state
        .store
        .off_worker(move |s| s.record_failed_attempt(kind, now_i64(now)))
        .await
        .map_err(store_failed)
}

/// Charges a failed code attempt to the caller (the store has charged the live codes).
fn failed_code(state: &AppState, client: Client, now: u64) -> AgentError {
    state.pairing_failures.record_failure(client, now);
    AgentError::InvalidCode
}

#[derive(Deserialize)]
struct OwnerPairRequest {
    code: String,
    device_info: OwnerPairDeviceInfo,
}

#[derive(Deserialize)]
struct OwnerPairDeviceInfo {
    name: String,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    platform: Option<String>,
    #[serde(default)]
    os_version: Option<String>,
    #[serde(default)]
    app_version: Option<String>,
    #[serde(default)]
    device_id: Option<String>,
}

/// Who the phone paired with: the relay URL, and the identity it checks on the LAN
/// (certificate pin, and the instance id `/api/v1/health` must report).
#[derive(Serialize)]
struct ServerInfo<'a> {
    url: &'a str,
    fingerprint: &'a str,
    instance_id: &'a str,
    /// The Oblivious HTTP key pin (sealed mode), as in the QR link's `okp`.
    ohttp_keys_sha256: String,
}

#[derive(Serialize)]
struct OwnerPairResponse<'a> {
    device_id: String,
    access_token: String,
    refresh_token: String,
    token_type: &'static str,
    expires_in: u64,
    server: ServerInfo<'a>,
}

async fn redeem_owner_code(
    state: &AppState,
    req: Request<Body>,
    client: Client,
) -> Result<Response<Body>, AgentError> {
    check_window(state, client, unix_now())?;
    let body: OwnerPairRequest = read_json(req).await?;
    let now = unix_now();
    let Some(code) = codes::normalize(&body.code) else {
        charge_live_codes(state, PairingKind::OwnerInitiated, now).await?;
        return Err(failed_code(state, client, now));
    };
    let info = DeviceInfo {
        name: body.device_info.name,
        model: body.device_info.model,
        platform: body.device_info.platform,
        os_version: body.device_info.os_version,
        app_version: body.device_info.app_version,
        phone_device_id: body.device_info.device_id,
    };
    let device_id = tokens::new_device_id();
    let family_id = tokens::new_family_id();
    let refresh = tokens::new_refresh_token();
    let redeemed = state.store.off_worker({
        let code = code.clone();
        let hash = refresh.hash;
        move |s| s.redeem_owner_code(&code, &info, &device_id, &hash, &family_id, now_i64(now))
    });
    let device = match redeemed.await {
        Ok(device) => device,
        Err(PairError::InvalidCode | PairError::DeviceMismatch) => {
            return Err(failed_code(state, client, now))
        }
        Err(PairError::Store(e)) => return Err(store_failed(e)),
        Err(e) => {
            tracing::error!(error = %e, "unexpected pairing failure");
            return Err(AgentError::Internal);
        }
    };
    state.owner_code_redeemed(&code, &device.id);
    tracing::info!(device_id = %device.id, scope = device.scope.as_str(), "device paired (owner code)");
    let pair = issue(state, &device, refresh.token, now);
    Ok(body::json(
        StatusCode::OK,
        &OwnerPairResponse {
            device_id: pair.device_id,
            access_token: pair.access_token,
            refresh_token: pair.refresh_token,
            token_type: pair.token_type,
            expires_in: pair.expires_in,
            server: ServerInfo {
                url: &state.config.public_url,
                fingerprint: &state.lan_fingerprint,
                instance_id: &state.instance_id,
                ohttp_keys_sha256: pair.ohttp_keys_sha256,
            },
        },
    ))
}

fn issue(state: &AppState, device: &Device, refresh_token: String, now: u64) -> TokenPair {
    let key = state.keys.current();
    let issuer = Issuer {
        key: &key,
        issuer: &state.expectations.issuer,
        audience: &state.expectations.audience,
        ttl_secs: state.config.access_ttl(),
    };
    TokenPair {
        access_token: issuer.access_token(device, now),
        refresh_token,
        token_type: "bearer",
        expires_in: state.config.access_ttl(),
        device_id: device.id.clone(),
        ohttp_keys_sha256: state.sealed_keys.pin().to_string(),
    }
}

#[derive(Deserialize)]
struct PhonePairBody {
    device_id: String,
    platform: String,
    #[serde(default)]
    device_name: Option<String>,
    #[serde(default)]
    device_model: Option<String>,
}

#[derive(Serialize)]
struct PairingCodeResponse {
    code: String,
    expires_in: u64,
    expires_at: String,
}

async fn phone_pair(
    state: &AppState,
    req: Request<Body>,
    client: Client,
) -> Result<Response<Body>, AgentError> {
    let now = unix_now();
    // Asking to pair costs from the same per-client budget as a failure: it fills the owner's
    // pending list, so one client may not flood it.
    state
        .pairing_requests
        .check(client, now)
        .map_err(|retry_after_secs| AgentError::RateLimited { retry_after_secs })?;
    let body: PhonePairBody = read_json(req).await?;
    let request = PhonePairingRequest {
        phone_device_id: body.device_id,
        platform: Some(body.platform),
        name: body
            .device_name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "Phone".into()),
        model: body.device_model,
    };
    let expires_at = now + PHONE_CODE_TTL_SECS;
    for _ in 0..8 {
        let code = codes::new_phone_code();
        let created = state.store.off_worker({
            let (code, request) = (code.clone(), request.clone());
            move |s| s.create_phone_pairing(&code, &request, now_i64(expires_at), now_i64(now))
        });
        match created.await {
            Ok(()) => {
                state.pairing_requests.record_failure(client, now);
                tracing::info!(
                    name = %request.name,
                    platform = ?request.platform,
                    "phone asked to pair; waiting for the owner (argus-relay pending)"
                );
                return Ok(body::json(
                    StatusCode::OK,
                    &PairingCodeResponse {
                        code,
                        expires_in: PHONE_CODE_TTL_SECS,
                        expires_at: rfc3339(expires_at),
                    },
                ));
            }
            Err(PairError::CodeInUse) => continue,
            Err(PairError::TooManyPending) => {
                return Err(AgentError::RateLimited {
                    retry_after_secs: 60,
                })
            }
            Err(PairError::Store(e)) => return Err(store_failed(e)),
            Err(e) => {
                tracing::error!(error = %e, "unexpected pairing failure");
                return Err(AgentError::Internal);
            }
        }
    }
    Err(AgentError::Internal)
}

#[derive(Serialize)]
struct PairingStatusResponse {
    confirmed: bool,
    expired: bool,
}

async fn phone_status(
    state: &AppState,
    raw_code: &str,
    client: Client,
) -> Result<Response<Body>, AgentError> {
    let now = unix_now();
    check_window(state, client, now)?;
    let status = match codes::normalize(raw_code) {
        // A miss charges the live codes: a write.
        Some(code) => state
            .store
            .off_worker(move |s| s.pairing_status(&code, now_i64(now)))
            .await
            .map_err(store_failed)?,
        None => {
            charge_live_codes(state, PairingKind::PhoneInitiated, now).await?;
            None
        }
    };
    let (confirmed, expired) = match status {
        Some(PairingStatus::Pending) => (false, false),
        Some(PairingStatus::Confirmed) => (true, false),
        // Denied, expired, used, unknown: the same answer (the app stops polling on `expired`).
        Some(PairingStatus::Denied | PairingStatus::Expired) => (false, true),
        None => {
            state.pairing_failures.record_failure(client, now);
            (false, true)
        }
    };
    Ok(body::json(
        StatusCode::OK,
        &PairingStatusResponse { confirmed, expired },
    ))
}

#[derive(Deserialize)]
struct ExchangeBody {
    code: String,
    #[serde(default)]
    device_id: Option<String>,
}

async fn phone_exchange(
    state: &AppState,
    req: Request<Body>,
    client: Client,
) -> Result<Response<Body>, AgentError> {
    check_window(state, client, unix_now())?;
    let body: ExchangeBody = read_json(req).await?;
    let now = unix_now();
    let Some(code) = codes::normalize(&body.code) else {
        charge_live_codes(state, PairingKind::PhoneInitiated, now).await?;
        return Err(failed_code(state, client, now));
    };
    let device_id = tokens::new_device_id();
    let family_id = tokens::new_family_id();
    let refresh = tokens::new_refresh_token();
    let hash = refresh.hash;
    let exchanged = state.store.off_worker(move |s| {
        let phone = body.device_id.as_deref();
        s.exchange_phone_code(&code, phone, &device_id, &hash, &family_id, now_i64(now))
    });
    match exchanged.await {
        Ok(device) => {
            tracing::info!(device_id = %device.id, scope = device.scope.as_str(), "device paired (phone request)");
            Ok(body::json(
                StatusCode::OK,
                &issue(state, &device, refresh.token, now),
            ))
        }
        Err(PairError::InvalidCode | PairError::DeviceMismatch) => {
            Err(failed_code(state, client, now))
        }
        Err(PairError::NotConfirmed) => Err(AgentError::Conflict(
            "the owner has not confirmed this pairing yet",
        )),
        Err(PairError::Store(e)) => Err(store_failed(e)),
        Err(e) => {
            tracing::error!(error = %e, "unexpected pairing failure");
            Err(AgentError::Internal)
        }
    }
}

#[derive(Deserialize)]
struct RefreshBody {
    refresh_token: String,
    /// Ours or the phone's own id (the ArgusAI app sends its own).
    #[serde(default)]
    device_id: Option<String>,
}

fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

async fn refresh(
    state: &AppState,
    req: Request<Body>,
    client: Client,
) -> Result<Response<Body>, AgentError> {
    check_window(state, client, unix_now())?;
    let body: RefreshBody = read_json(req).await?;
    let now = unix_now();
    if !tokens::looks_like_refresh_token(&body.refresh_token) {
        state.pairing_failures.record_failure(client, now);
        return Err(AgentError::InvalidToken {
            reason: "refresh.unknown",
        });
    }
    let old = crate::domain::store::refresh_token_hash(body.refresh_token.as_bytes());
    let new = tokens::new_refresh_token();
    let new_hash = new.hash;
    let rotated = state
        .store
        .off_worker(move |s| s.rotate_refresh(&old, &new_hash, now_i64(now)));
    let outcome = match rotated.await {
        Ok(o) => o,
        Err(e) => {
            let reason = match e {
                RefreshError::Unknown => {
                    state.pairing_failures.record_failure(client, now);
                    "refresh.unknown"
                }
                RefreshError::Expired => "refresh.expired",
                RefreshError::Reused => {
                    tracing::warn!(
                        "refresh token reused: its whole family and its device are revoked"
                    );
                    "refresh.reused"
                }
                RefreshError::Revoked => "refresh.revoked",
                RefreshError::DeviceRevoked => "token.device_revoked",
                RefreshError::Store(e) => return Err(store_failed(e)),
            };
            return Err(AgentError::InvalidToken { reason });
        }
    };
    if let Some(given) = body.device_id.as_deref() {
        let ours = same(given, &outcome.device.id);
        let phones = outcome
            .device
            .phone_device_id
            .as_deref()
            .is_some_and(|p| same(given, p));
        if !ours && !phones {
            // A valid refresh token presented for another device: treat it as stolen.
            tracing::warn!(device_id = %outcome.device.id, "refresh token presented with a foreign device id; family and device revoked");
            let family_id = outcome.family_id.clone();
            state
                .store
                .off_worker(move |s| s.revoke_for_refresh_misuse(&family_id, now_i64(now)))
                .await
                .map_err(store_failed)?;
            return Err(AgentError::InvalidToken {
                reason: "refresh.device_mismatch",
            });
        }
    }
    if outcome.grace_retry {
        tracing::info!(device_id = %outcome.device.id, "refresh retried within the reuse grace (a lost answer): rotated again");
    }
    state.touch_device(&outcome.device.id);
    Ok(body::json(
        StatusCode::OK,
        &issue(state, &outcome.device, new.token, now),
    ))
}

// ---------------------------------------------------------------------------------------------
// Device routes (a valid access token of an active device)

/// A device as shown to owners (phone API and admin API).
#[derive(Serialize)]
pub struct DeviceView {
    pub id: String,
    pub name: String,
    pub model: Option<String>,
    pub platform: Option<String>,
    pub os_version: Option<String>,
    pub app_version: Option<String>,
    pub scope: &'static str,
    pub created_at: i64,
    pub last_seen_at: Option<i64>,
    /// When the device stopped being active (revoked, or its refresh token was reused).
    pub revoked_at: Option<i64>,
    /// Why, when it did: `revoked` (by the owner or by itself) or `refresh_token_reused` (a
    /// used refresh token came back: someone holds a copy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_reason: Option<&'static str>,
    /// True for the device making the request.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub current: bool,
}

impl DeviceView {
    pub fn of(d: Device, caller: Option<&str>) -> Self {
        let revoked_at = d.ended_at();
        DeviceView {
            current: caller == Some(d.id.as_str()),
            id: d.id,
            name: d.name,
            model: d.model,
            platform: d.platform,
            os_version: d.os_version,
            app_version: d.app_version,
            scope: d.scope.as_str(),
            created_at: d.created_at,
            last_seen_at: d.last_seen_at,
            revoked_at,
            revoked_reason: match (d.reuse_detected_at, d.revoked_at) {
                (Some(_), _) => Some("refresh_token_reused"),
                (None, Some(_)) => Some("revoked"),
                (None, None) => None,
            },
        }
    }
}

#[derive(Serialize)]
pub struct DeviceList {
    pub devices: Vec<DeviceView>,
    pub total: usize,
}

pub fn device_list(state: &AppState, caller: Option<&str>) -> Result<DeviceList, AgentError> {
    let devices: Vec<DeviceView> = state
        .store
        .list_devices()
        .map_err(store_failed)?
        .into_iter()
        .map(|d| DeviceView::of(d, caller))
        .collect();
    Ok(DeviceList {
        total: devices.len(),
        devices,
    })
}

#[derive(Deserialize)]
pub struct RenameBody {
    pub name: String,
}

pub async fn rename(
    state: &AppState,
    id: &str,
    name: &str,
    caller: Option<&str>,
) -> Result<Response<Body>, AgentError> {
    let (owned_id, name) = (id.to_owned(), name.trim().to_owned());
    let renamed = state
        .store
        .off_worker(move |s| s.rename_device(&owned_id, &name))
        .await
        .map_err(store_failed)?;
    if !renamed {
        return Err(AgentError::NotFound);
    }
    let device = state
        .store
        .device(id)
        .map_err(store_failed)?
        .ok_or(AgentError::NotFound)?;
    Ok(body::json(StatusCode::OK, &DeviceView::of(device, caller)))
}

/// Revokes a device: its refresh families end and its access tokens stop working at the agent
/// at once, at the edge within [`argus_shared::edge_state::MAX_AGE_SECS`].
pub async fn revoke(state: &AppState, id: &str) -> Result<Response<Body>, AgentError> {
    let (owned_id, now) = (id.to_owned(), now_i64(unix_now()));
    let revoked = state
        .store
        .off_worker(move |s| s.revoke_device(&owned_id, now))
        .await
        .map_err(store_failed)?;
    if !revoked {
        return Err(AgentError::NotFound);
    }
    tracing::info!(device_id = %id, "device revoked");
    Ok(body::json(
        StatusCode::OK,
        &serde_json::json!({"revoked": true, "device_id": id}),
    ))
}

#[derive(Deserialize, Default)]
struct RevokeBody {
    #[serde(default)]
    revoke_all: bool,
}

pub async fn device_route(
    state: &AppState,
    route: AgentRoute,
    req: Request<Body>,
    claims: &AccessClaims,
    decoded_path: &str,
) -> Result<Response<Body>, AgentError> {
    let owner = claims.scope == Scope::Owner;
    let caller = claims.sub.as_str();
    state.touch_device(caller);
    match route {
        AgentRoute::DevicesList => {
            if !owner {
                return Err(AgentError::InsufficientScope);
            }
            Ok(body::json(
                StatusCode::OK,
                &device_list(state, Some(caller))?,
            ))
        }
        AgentRoute::DeviceDelete => {
            let id = segment(decoded_path, 3)?.to_owned();
            if !owner && id != caller {
                return Err(AgentError::InsufficientScope);
            }
            revoke(state, &id).await
        }
        AgentRoute::DeviceRename => {
            let id = segment(decoded_path, 3)?.to_owned();
            if !owner && id != caller {
                return Err(AgentError::InsufficientScope);
            }
            let body: RenameBody = read_json(req).await?;
            rename(state, &id, &body.name, Some(caller)).await
        }
        AgentRoute::MobileRevoke => {
            // No body: sign out the calling device (what the iOS app means by an empty revoke).
            let body: RevokeBody = read_json_or_default(req).await?;
            let now = now_i64(unix_now());
            let everyone = body.revoke_all && owner;
            let id = caller.to_owned();
            let count = state
                .store
                .off_worker(move |s| match everyone {
                    true => s.revoke_all_devices(now),
                    false => Ok(u64::from(s.revoke_device(&id, now)?)),
                })
                .await
                .map_err(store_failed)?;
            tracing::info!(device_id = %caller, count, "devices signed out");
            Ok(body::json(
                StatusCode::OK,
                &serde_json::json!({"revoked_count": count}),
            ))
        }
        AgentRoute::RelayStatus => {
            if !owner {
                return Err(AgentError::InsufficientScope);
            }
            crate::application::handlers::status::answer(state, false).await
        }
        // The router hands sealed requests to `crate::application::sealed`, never here.
        AgentRoute::Sealed => Err(AgentError::NotFound),
    }
}
