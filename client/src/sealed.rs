//! Sealed mode, the phone's side: every device request through the relay as an Oblivious HTTP
//! message (RFC 9458) to the agent's key, pinned at pairing.
//!
//! - The key configuration is fetched from [`KEYS_PATH`] and used only if its SHA-256 equals the
//!   pin from pairing (QR link `okp`, pairing answer `ohttp_keys_sha256`): a relay that serves
//!   its own key gets [`ClientError::SealedKeyMismatch`], and nothing is sent.
//! - The request (method, path, `Date`, the app's headers, the body) is encoded as Binary HTTP
//!   (RFC 9292), sealed, and `POST`ed to [`SEALED_PATH`] with the device token outside.
//! - A `200 message/ohttp-res` is opened and its inner status, headers and body are the answer;
//!   anything else is the edge (or the agent) refusing the outer request, answered as is.
//! - Inner answers carry the agent's current pin ([`CURRENT_KEYS_HEADER`]); after a key
//!   rotation the client adopts the new configuration, checked against that pin, which it read
//!   inside the seal.
//!
//! There is no fallback: a sealed-mode client that cannot seal fails the request.

use std::io::Cursor;
use std::time::{Instant, SystemTime};

use argus_shared::sealed::{
    is_pin, key_config_pin, CURRENT_KEYS_HEADER, KEYS_MEDIA_TYPE, KEYS_PATH, REQUEST_MEDIA_TYPE,
    RESPONSE_MEDIA_TYPE, SEALED_PATH,
};
use bhttp::Message;
use reqwest::Method;

use crate::session::{Response, Route};
use crate::ClientError;

/// A verified key configuration, ready to seal requests to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyConfig {
    /// The `application/ohttp-keys` body, whose SHA-256 is `pin`.
    pub encoded: Vec<u8>,
    pub pin: String,
}

/// Fetches the key configuration from the relay and checks it against `pin`.
pub async fn fetch_key_config(
    http: &reqwest::Client,
    relay: &str,
    pin: &str,
) -> Result<KeyConfig, ClientError> {
    if !is_pin(pin) {
        return Err(ClientError::SealedNotPaired);
    }
    let url = format!("{relay}{KEYS_PATH}");
    let transport = |e: reqwest::Error| ClientError::Transport {
        what: url.clone(),
        message: e.to_string(),
    };
    let resp = http
        .get(&url)
        .header("accept", KEYS_MEDIA_TYPE)
        .send()
        .await
        .map_err(transport)?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await.map_err(transport)?;
    if status != 200 {
        let json = serde_json::from_slice(&body).unwrap_or_default();
        return Err(ClientError::from_answer(status, &json));
    }
    let served = key_config_pin(&body);
    if served != pin {
        return Err(ClientError::SealedKeyMismatch {
            pinned: pin.to_owned(),
            served,
        });
    }
    Ok(KeyConfig {
        encoded: body.to_vec(),
        pin: pin.to_owned(),
    })
}

/// A request encapsulated for the agent, and what opens its answer.
pub struct SealedRequest {
    pub bytes: Vec<u8>,
    pub opener: ohttp::ClientResponse,
}

/// Encodes `method path` (with `Date: now`, `headers` and `body`) as Binary HTTP and seals it
/// to `config`.
pub fn seal(
    config: &KeyConfig,
    method: &Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    now: SystemTime,
) -> Result<SealedRequest, ClientError> {
    let mut message = Message::request(
        method.as_str().as_bytes().to_vec(),
        b"https".to_vec(),
        Vec::new(),
        path.as_bytes().to_vec(),
    );
    message.put_header("date", httpdate::fmt_http_date(now));
    for (name, value) in headers {
        message.put_header(*name, *value);
    }
    if let Some(body) = body {
        message.write_content(body);
    }
    let mut encoded = Vec::new();
    message
        .write_bhttp(bhttp::Mode::KnownLength, &mut encoded)
        .map_err(|e| ClientError::Sealed(format!("encoding the request: {e}")))?;
    let (bytes, opener) = ohttp::ClientRequest::from_encoded_config_list(&config.encoded)
        .and_then(|c| c.encapsulate(&encoded))
        .map_err(|e| ClientError::Sealed(format!("sealing the request: {e}")))?;
    Ok(SealedRequest { bytes, opener })
}

/// An opened answer.
#[derive(Debug)]
pub struct Opened {
    pub status: u16,
    pub body: bytes::Bytes,
    /// The agent's current key pin, as read inside the seal.
    pub current_pin: Option<String>,
}

/// Opens a sealed answer.
pub fn open(opener: ohttp::ClientResponse, sealed: &[u8]) -> Result<Opened, ClientError> {
    let inner = opener
        .decapsulate(sealed)
        .map_err(|e| ClientError::Sealed(format!("the answer does not open: {e}")))?;
    let message = Message::read_bhttp(&mut Cursor::new(&inner[..]))
        .map_err(|e| ClientError::Sealed(format!("the answer is not Binary HTTP: {e}")))?;
    let status = message
        .control()
        .status()
        .ok_or_else(|| ClientError::Sealed("the answer has no status".into()))?
        .code();
    let current_pin = message
        .header()
        .get(CURRENT_KEYS_HEADER.as_bytes())
        .and_then(|v| std::str::from_utf8(v).ok())
        .filter(|p| is_pin(p))
        .map(str::to_owned);
    Ok(Opened {
        status,
        body: bytes::Bytes::copy_from_slice(message.content()),
        current_pin,
    })
}

/// Sends one sealed request through the relay at `relay` with the device `token`. A refusal of
/// the outer request (the edge's token, policy or rate-limit checks) comes back as the outer
/// answer; an accepted one as the inner answer.
#[allow(clippy::too_many_arguments)]
pub async fn send(
    http: &reqwest::Client,
    relay: &str,
    config: &KeyConfig,
    method: &Method,
    path: &str,
    json_body: Option<&serde_json::Value>,
    token: &str,
) -> Result<(Response, Option<String>), ClientError> {
    let started = Instant::now();
    let body = json_body.map(|b| b.to_string().into_bytes());
    let mut headers = vec![("accept", "application/json, image/*")];
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    let sealed = seal(
        config,
        method,
        path,
        &headers,
        body.as_deref(),
        SystemTime::now(),
    )?;
    let url = format!("{relay}{SEALED_PATH}");
    let transport = |e: reqwest::Error| ClientError::Transport {
        what: relay.to_owned(),
        message: e.to_string(),
    };
    let resp = http
        .post(&url)
        .bearer_auth(token)
        .header("content-type", REQUEST_MEDIA_TYPE)
        .body(sealed.bytes)
        .send()
        .await
        .map_err(transport)?;
    let status = resp.status().as_u16();
    let is_sealed_answer = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.eq_ignore_ascii_case(RESPONSE_MEDIA_TYPE));
    let bytes = resp.bytes().await.map_err(transport)?;
    if status != 200 || !is_sealed_answer {
        return Ok((
            Response {
                route: Route::Relay,
                status,
                body: bytes,
                elapsed: started.elapsed(),
            },
            None,
        ));
    }
    let opened = open(sealed.opener, &bytes)?;
    Ok((
        Response {
            route: Route::Relay,
            status: opened.status,
            body: opened.body,
            elapsed: started.elapsed(),
        },
        opened.current_pin,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_that_does_not_hash_to_the_pin_is_refused_before_any_request() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = rt
            .block_on(fetch_key_config(
                &reqwest::Client::new(),
                "http://127.0.0.1:9",
                "not-a-pin",
            ))
            .unwrap_err();
        assert!(matches!(err, ClientError::SealedNotPaired), "{err}");
    }
}
