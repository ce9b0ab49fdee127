//! Pairing with the owner's code: `POST /api/v1/devices/pair` through the relay — or, when the
//! phone is at home and a LAN server proves it holds the certificate named in the QR code,
//! straight to it (pairing then works without internet).

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use argus_shared::pair_uri::{check_relay_url, PairUri};

use super::browse::{BrowseConfig, BrowseEvent, Browser};
use super::http::{json_answer, lan_client, relay_client};
use super::pin::Pin;
use super::state::ClientState;
use super::verify::{verify_lan, Health};
use super::ClientError;
use crate::clock::unix_now;

/// What the phone says about itself (`device_info`).
#[derive(Debug, Clone, Serialize)]
pub struct DeviceInfo {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
}

/// Where to look for the server on the LAN while pairing.
#[derive(Debug, Clone)]
pub struct LanPairing {
    pub browse: BrowseConfig,
    /// How long to look before using the relay.
    pub timeout: Duration,
}

/// How pairing went.
#[derive(Debug, Clone)]
pub struct Paired {
    pub state: ClientState,
    /// `Some(address)` if the code was redeemed over the LAN.
    pub via_lan: Option<SocketAddr>,
}

/// Redeems the code in `uri`. `relay_override` replaces the link's relay URL (a relay under
/// development); `lan`: look for the server at home first.
pub async fn pair(
    uri: &PairUri,
    relay_override: Option<&str>,
    device: &DeviceInfo,
    lan: Option<&LanPairing>,
) -> Result<Paired, ClientError> {
    let relay_url = relay_override
        .map(|u| u.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| uri.url.clone());
    check_relay_url(&relay_url)?;
    let pin = uri.fingerprint;
    let lan_http = lan_client(pin, Duration::from_secs(2))?;
    let found = match lan {
        Some(cfg) => find_lan(&lan_http, &pin, cfg).await?,
        None => None,
    };
    let body = json!({"code": uri.code, "device_info": device});
    let redeem = |http: reqwest::Client, base: String| {
        let body = body.clone();
        async move {
            let answer = json_answer(
                http.post(format!("{base}/api/v1/devices/pair")).json(&body),
                &base,
            )
            .await;
            (http, base, answer)
        }
    };
    let (http, base, via_lan, result) = match found {
        Some((addr, _)) => {
            let (http, base, result) = redeem(lan_http.clone(), format!("https://{addr}")).await;
            match result {
                // The LAN server went away between verification and redeeming: the relay.
                Err(ClientError::Transport { message, .. }) => {
                    tracing::info!(%addr, error = %message, "pairing over the LAN failed; using the relay");
                    let (http, base, result) = redeem(relay_client()?, relay_url.clone()).await;
                    (http, base, None, result)
                }
                other => (http, base, Some(addr), other),
            }
        }
        None => {
            let (http, base, result) = redeem(relay_client()?, relay_url.clone()).await;
            (http, base, None, result)
        }
    };
    let (status, answer) = result?;
    if status != 200 {
        return Err(ClientError::from_answer(status, &answer));
    }
    let text = |k: &str| {
        answer[k]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ClientError::BadAnswer(format!("no {k}")))
    };
    let server_fp = answer["server"]["fingerprint"]
        .as_str()
        .ok_or_else(|| ClientError::BadAnswer("no server.fingerprint".into()))?;
    if Pin::parse(server_fp).ok() != Some(pin) {
        // The QR code (shown by the owner) and the server disagree: trust neither.
        return Err(ClientError::IdentityMismatch(format!(
            "the code names {pin}, the server says {server_fp}"
        )));
    }
    // The Oblivious HTTP key pin: from the QR link (shown by the owner) when it has one, and the
    // answer must agree; an answer alone (older links) is taken as the pairing's word.
    let answered_okp = answer["ohttp_keys_sha256"]
        .as_str()
        .or(answer["server"]["ohttp_keys_sha256"].as_str());
    let ohttp_keys_sha256 = match (&uri.ohttp_keys_sha256, answered_okp) {
        (Some(link), Some(said)) if link != said => {
            return Err(ClientError::IdentityMismatch(format!(
                "the code names Oblivious HTTP key {link}, the server says {said}"
            )))
        }
        (Some(link), _) => Some(link.clone()),
        (None, said) => said.map(str::to_owned),
    };
    let instance_id = match answer["server"]["instance_id"].as_str() {
        Some(id) => id.to_owned(),
        None => health(&http, &base, &pin).await?.instance_id,
    };
    let expires_in = answer["expires_in"]
        .as_u64()
        .ok_or_else(|| ClientError::BadAnswer("no expires_in".into()))?;
    Ok(Paired {
        state: ClientState {
            relay_url,
            device_id: text("device_id")?,
            access_token: text("access_token")?,
            access_expires_at: unix_now() + expires_in,
            refresh_token: text("refresh_token")?,
            fingerprint: pin.to_string(),
            instance_id,
            last_lan: via_lan,
            ohttp_keys_sha256,
        },
        via_lan,
    })
}

/// `/api/v1/health` (older agents' pairing answers carry no instance id).
async fn health(http: &reqwest::Client, base: &str, pin: &Pin) -> Result<Health, ClientError> {
    let (status, body) = json_answer(http.get(format!("{base}/api/v1/health")), base).await?;
    if status != 200 {
        return Err(ClientError::from_answer(status, &body));
    }
    let h: Health =
        serde_json::from_value(body).map_err(|e| ClientError::BadAnswer(e.to_string()))?;
    if Pin::parse(&h.fingerprint).ok().as_ref() != Some(pin) {
        return Err(ClientError::IdentityMismatch(format!(
            "the server's health names {}",
            h.fingerprint
        )));
    }
    Ok(h)
}

/// Browses until a server proves the pin, or `cfg.timeout`.
async fn find_lan(
    http: &reqwest::Client,
    pin: &Pin,
    cfg: &LanPairing,
) -> Result<Option<(SocketAddr, Health)>, ClientError> {
    let browser = Browser::start(&cfg.browse)?;
    let deadline = tokio::time::Instant::now() + cfg.timeout;
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, browser.next()).await {
        let BrowseEvent::Found(c) = ev else { continue };
        if c.fingerprint
            .as_deref()
            .is_some_and(|f| Pin::parse(f).ok().as_ref() != Some(pin))
        {
            continue;
        }
        for addr in c.addrs {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match verify_lan(http, addr, pin, None, left.min(Duration::from_secs(2))).await {
                Ok(h) => return Ok(Some((addr, h))),
                Err(e) => tracing::info!(%addr, reason = %e, "LAN server refused for pairing"),
            }
        }
    }
    Ok(None)
}
