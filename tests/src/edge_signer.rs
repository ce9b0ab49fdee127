//! Requests straight to the agent's tunnel listener, signed as the Worker signs them — the way an
//! attacker who found the tunnel hostname *and* stole the secret would, and the way tests reach
//! the agent without the Worker.

use argus_shared::headers;
use argus_shared::signature::{self, BodyBinding, SignedParts};

use crate::agent::Agent;

pub struct EdgeSigner {
    secret: Vec<u8>,
    base: String,
    http: reqwest::Client,
}

/// What to sign (and what to spoil, for attack tests).
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

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub fn fresh_nonce() -> String {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b).expect("random");
    hex::encode(b)
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
        if how.unsigned {
            return Vec::new();
        }
        let ts = (now() as i64 + how.skew_secs).max(0) as u64;
        let nonce = how.nonce.clone().unwrap_or_else(fresh_nonce);
        let body = BodyBinding::of_bytes(b"");
        let parts = SignedParts {
            method,
            path_and_query,
            device_id: how.device_id.as_deref(),
            client_ip: how.client_ip.as_deref(),
            body,
        };
        let mut sig = signature::sign(&self.secret, &parts, ts, &nonce).expect("sign");
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
