//! Talking to the agent's tunnel listener the way the Worker does: every request signed with the
//! edge secret (`shared::signature`, the same code the Worker runs), a fresh nonce each time, the
//! device id and client IP the Worker would vouch for.
//!
//! Tests use it to reach the agent without the Worker — to check each defence at the agent itself,
//! with requests the Worker would already have refused or cleaned.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use argus_shared::headers;
use argus_shared::signature::{self, BodyBinding, SignedParts};
use sha2::{Digest, Sha256};

use crate::agent::Agent;
use crate::stack::PairedDevice;

/// The client IP a [`Tunnel`] claims (TEST-NET-2), as the Worker would sign it.
pub const DEFAULT_CLIENT_IP: &str = "198.51.100.7";

/// A fresh nonce: 32 characters of `[0-9a-f]`, never repeated within a process.
pub fn nonce() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = Sha256::new();
    h.update(std::process::id().to_le_bytes());
    h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    h.update(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            .to_le_bytes(),
    );
    hex::encode(&h.finalize()[..16])
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What to sign, and what to spoil for attack tests. `Signing::default()` signs like the Worker
/// for a device-less request from no particular IP.
#[derive(Debug, Clone, Default)]
pub struct Signing {
    pub device_id: Option<String>,
    pub client_ip: Option<String>,
    /// Seconds added to the current time for the timestamp (stale: -3600).
    pub skew_secs: i64,
    /// Use this nonce instead of a fresh one (replay tests).
    pub nonce: Option<String>,
    /// Flip one character of the signature.
    pub tamper: bool,
    /// Send no signature headers at all.
    pub unsigned: bool,
}

/// The signature headers for one request, as the Worker's `forward::sign_into` sets them —
/// or spoiled as `how` says.
pub fn signed_headers(
    secret: &[u8],
    method: &str,
    path_and_query: &str,
    body: BodyBinding,
    how: &Signing,
) -> Vec<(&'static str, String)> {
    if how.unsigned {
        return Vec::new();
    }
    let ts = (unix_now() as i64 + how.skew_secs).max(0) as u64;
    let nonce = how.nonce.clone().unwrap_or_else(self::nonce);
    let parts = SignedParts {
        method,
        path_and_query,
        device_id: how.device_id.as_deref(),
        client_ip: how.client_ip.as_deref(),
        body,
        link: None,
    };
    let mut sig = signature::sign(secret, &parts, ts, &nonce).expect("signable request");
    if how.tamper {
        let last = sig.pop().expect("non-empty");
        sig.push(if last == '0' { '1' } else { '0' });
    }
    let mut out = vec![
        (headers::RELAY_SIGNATURE, sig),
        (headers::RELAY_TIMESTAMP, ts.to_string()),
        (headers::RELAY_NONCE, nonce),
        (headers::RELAY_BODY_DIGEST, body.to_header_value()),
    ];
    if let Some(d) = &how.device_id {
        out.push((headers::RELAY_DEVICE, d.clone()));
    }
    if let Some(ip) = &how.client_ip {
        out.push((headers::RELAY_CLIENT_IP, ip.clone()));
    }
    out
}

/// A client of the agent's tunnel listener that signs like the Worker.
#[derive(Clone)]
pub struct Tunnel {
    http: reqwest::Client,
    base: String,
    secret: Vec<u8>,
    pub client_ip: String,
    pub token: Option<String>,
    pub device_id: Option<String>,
}

impl Tunnel {
    pub fn new(base: &str, secret: &[u8]) -> Tunnel {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .expect("http client");
        Tunnel {
            http,
            base: base.trim_end_matches('/').to_owned(),
            secret: secret.to_vec(),
            client_ip: DEFAULT_CLIENT_IP.to_owned(),
            token: None,
            device_id: None,
        }
    }

    /// Requests carry this device's token and id (as the Worker forwards them).
    pub fn with_device(mut self, device: &PairedDevice) -> Tunnel {
        self.token = Some(device.access_token.clone());
        self.device_id = Some(device.device_id.clone());
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn headers(&self, method: &str, target: &str, body: BodyBinding) -> Vec<(String, String)> {
        let how = Signing {
            device_id: self.device_id.clone(),
            client_ip: Some(self.client_ip.clone()),
            ..Signing::default()
        };
        let mut h: Vec<(String, String)> = signed_headers(&self.secret, method, target, body, &how)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        h.push((headers::X_FORWARDED_FOR.into(), self.client_ip.clone()));
        if let Some(t) = &self.token {
            h.push(("authorization".into(), format!("Bearer {t}")));
        }
        h
    }

    fn builder(
        &self,
        method: reqwest::Method,
        target: &str,
        body: BodyBinding,
    ) -> reqwest::RequestBuilder {
        let mut rb = self
            .http
            .request(method.clone(), format!("{}{}", self.base, target));
        for (k, v) in self.headers(method.as_str(), target, body) {
            rb = rb.header(k, v);
        }
        rb
    }

    /// A body-less request (signed with the empty body's digest, as the Worker does for GET).
    pub fn request(&self, method: reqwest::Method, target: &str) -> reqwest::RequestBuilder {
        self.builder(method, target, BodyBinding::of_bytes(b""))
    }

    /// A request whose `body` is digest-signed (the Worker's way up to 1 MiB).
    pub fn with_body(
        &self,
        method: reqwest::Method,
        target: &str,
        body: Vec<u8>,
    ) -> reqwest::RequestBuilder {
        self.builder(method, target, BodyBinding::of_bytes(&body))
            .body(body)
    }

    pub fn post_json(&self, target: &str, value: &serde_json::Value) -> reqwest::RequestBuilder {
        self.with_body(
            reqwest::Method::POST,
            target,
            serde_json::to_vec(value).expect("json"),
        )
        .header("content-type", "application/json")
    }

    /// A request whose body is streamed and marked `unsigned-body` (the Worker's way past 1 MiB).
    pub fn streamed(&self, method: reqwest::Method, target: &str) -> reqwest::RequestBuilder {
        self.builder(method, target, BodyBinding::Unsigned)
    }

    pub async fn get(&self, target: &str) -> reqwest::Response {
        self.request(reqwest::Method::GET, target)
            .send()
            .await
            .expect("request sent")
    }

    /// A WebSocket handshake request for `target` (signed like the Worker signs upgrades).
    pub fn websocket_request(
        &self,
        target: &str,
    ) -> tokio_tungstenite::tungstenite::handshake::client::Request {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!("{}{}", self.base.replacen("http://", "ws://", 1), target);
        let mut req = url.into_client_request().expect("ws request");
        for (k, v) in self.headers("GET", target, BodyBinding::of_bytes(b"")) {
            req.headers_mut().insert(
                hyper::header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        req
    }

    /// Sends `METHOD target` over a raw TCP connection, byte for byte (HTTP clients would
    /// normalise `%2e%2e`), signed for exactly that target, plus `extra` headers.
    pub async fn raw(&self, method: &str, target: &str, extra: &[(&str, &str)]) -> (u16, String) {
        let mut head = format!("{method} {target} HTTP/1.1");
        for (k, v) in self.headers(method, target, BodyBinding::of_bytes(b"")) {
            head.push_str(&format!("\r\n{k}: {v}"));
        }
        for (k, v) in extra {
            head.push_str(&format!("\r\n{k}: {v}"));
        }
        crate::phone::send_raw(&self.base, &head).await
    }
}

/// Signs requests to `agent`'s tunnel listener with its real secret, spoiled as each test
/// says — the way an attacker who found the tunnel hostname *and* stole the secret would.
pub struct EdgeSigner {
    secret: Vec<u8>,
    base: String,
    http: reqwest::Client,
}

impl EdgeSigner {
    /// A signer for `agent`'s tunnel listener with its real secret.
    pub fn for_agent(agent: &Agent) -> EdgeSigner {
        let wc = agent.worker_config().expect("worker-config");
        let secret = hex::decode(&wc.secrets["RELAY_SIGNING_SECRET"]).expect("hex secret");
        EdgeSigner {
            secret,
            base: agent.tunnel_url(),
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
        }
    }

    /// The relay headers that sign `method target` (empty body) per `how`.
    pub fn signature_headers(
        &self,
        method: &str,
        path_and_query: &str,
        how: &Signing,
    ) -> Vec<(&'static str, String)> {
        signed_headers(
            &self.secret,
            method,
            path_and_query,
            BodyBinding::of_bytes(b""),
            how,
        )
    }

    /// Like [`EdgeSigner::send`], over a raw connection so the target reaches the agent byte for
    /// byte (HTTP clients normalise `%2e%2e`). Returns the status and the whole response text.
    pub async fn send_raw(
        &self,
        method: &str,
        target: &str,
        extra: &[(&str, &str)],
        how: &Signing,
    ) -> (u16, String) {
        let mut head = format!("{method} {target} HTTP/1.1");
        for (k, v) in extra {
            head.push_str(&format!("\r\n{k}: {v}"));
        }
        for (k, v) in self.signature_headers(method, target, how) {
            head.push_str(&format!("\r\n{k}: {v}"));
        }
        crate::phone::send_raw(&self.base, &head).await
    }

    /// `method path` with `extra` headers and an empty body, signed per `how`.
    pub async fn send(
        &self,
        method: &str,
        path_and_query: &str,
        extra: &[(&str, &str)],
        how: &Signing,
    ) -> (u16, serde_json::Value) {
        let method_v = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut rb = self
            .http
            .request(method_v, format!("{}{path_and_query}", self.base));
        for (k, v) in extra {
            rb = rb.header(*k, *v);
        }
        for (k, v) in self.signature_headers(method, path_and_query, how) {
            rb = rb.header(k, v);
        }
        let resp = rb.send().await.expect("agent answers");
        crate::phone::Phone::json(resp).await
    }
}
