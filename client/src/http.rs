//! The two HTTP clients a phone needs: to the relay (WebPKI roots, as any HTTPS site) and to the
//! LAN (the pin, nothing else). Neither follows redirects or uses a proxy: a redirect or proxy
//! could carry the bearer token somewhere else.

use std::time::Duration;

use super::pin::{pinned_tls_config, Pin};
use super::ClientError;

/// Whole-request limit (the backend's own limit is 100 s; a phone gives up sooner).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const RELAY_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const USER_AGENT: &str = concat!("argus-relay-client/", env!("CARGO_PKG_VERSION"));

fn http_error(e: reqwest::Error) -> ClientError {
    ClientError::HttpClient(e.to_string())
}

pub fn relay_client() -> Result<reqwest::Client, ClientError> {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(RELAY_CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(http_error)
}

/// `connect_timeout` bounds connecting and the TLS handshake: on the LAN an absent server
/// should cost little before the relay is used.
pub fn lan_client(pin: Pin, connect_timeout: Duration) -> Result<reqwest::Client, ClientError> {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .use_preconfigured_tls(pinned_tls_config(pin)?)
        .https_only(true)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(connect_timeout)
        .timeout(REQUEST_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(50))
        .build()
        .map_err(http_error)
}

/// Status and JSON body (`Null` if the body is not JSON).
pub async fn json_answer(
    rb: reqwest::RequestBuilder,
    what: &str,
) -> Result<(u16, serde_json::Value), ClientError> {
    let resp = rb.send().await.map_err(|e| ClientError::Transport {
        what: what.to_owned(),
        message: super::verify::chain(&e),
    })?;
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.map_err(|e| ClientError::Transport {
        what: what.to_owned(),
        message: super::verify::chain(&e),
    })?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    ))
}
