//! One request, two ways in: through the Worker (a phone) or straight to the agent's tunnel listener
//! with a valid edge signature ([`Tunnel`]). Proxy and hardening tests run the same checks both
//! ways, so each defence is shown to hold at the agent itself, not only at the edge.

use crate::phone::Phone;
use crate::signer::Tunnel;
use crate::stack::{PairedDevice, Stack};

#[derive(Clone)]
pub enum Via {
    /// phone → Worker (workerd) → agent → backend
    Edge(Phone),
    /// signed like the Worker → agent → backend
    Tunnel(Tunnel),
}

impl Stack {
    /// The paired `device` both ways: through the Worker (when the stack has one), then straight to
    /// the tunnel listener.
    pub fn vias(&self, device: &PairedDevice) -> Vec<Via> {
        let mut v = Vec::new();
        if self.worker.is_some() {
            v.push(Via::Edge(self.phone().with_token(&device.access_token)));
        }
        v.push(Via::Tunnel(self.tunnel().with_device(device)));
        v
    }
}

impl Via {
    pub fn name(&self) -> &'static str {
        match self {
            Via::Edge(_) => "through the Worker",
            Via::Tunnel(_) => "straight to the agent (signed)",
        }
    }

    pub fn base(&self) -> String {
        match self {
            Via::Edge(p) => p.url(""),
            Via::Tunnel(t) => t.base().to_owned(),
        }
    }

    /// A request without a body.
    pub fn request(&self, method: reqwest::Method, target: &str) -> reqwest::RequestBuilder {
        match self {
            Via::Edge(p) => p.request(method, target),
            Via::Tunnel(t) => t.request(method, target),
        }
    }

    pub fn get(&self, target: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::GET, target)
    }

    /// A request whose body the caller streams (the Worker streams it unsigned past 1 MiB; the
    /// tunnel client marks it `unsigned-body`).
    pub fn upload(&self, method: reqwest::Method, target: &str) -> reqwest::RequestBuilder {
        match self {
            Via::Edge(p) => p.request(method, target),
            Via::Tunnel(t) => t.streamed(method, target),
        }
    }

    /// A WebSocket handshake request with the device's credentials.
    pub fn websocket_request(
        &self,
        target: &str,
    ) -> tokio_tungstenite::tungstenite::handshake::client::Request {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        match self {
            Via::Tunnel(t) => t.websocket_request(target),
            Via::Edge(p) => {
                let url = p.url(target).replacen("http://", "ws://", 1);
                let mut req = url.into_client_request().expect("ws request");
                let h = req.headers_mut();
                h.insert(
                    "mf-cf-blob",
                    p.cf.to_string().parse().expect("cf blob header"),
                );
                if let Some(t) = &p.token {
                    h.insert(
                        "authorization",
                        format!("Bearer {t}").parse().expect("bearer header"),
                    );
                }
                req
            }
        }
    }

    /// `METHOD target` byte for byte over raw TCP (no client-side normalisation), with the
    /// device's credentials and `extra` headers.
    pub async fn raw(&self, method: &str, target: &str, extra: &[(&str, &str)]) -> (u16, String) {
        match self {
            Via::Tunnel(t) => t.raw(method, target, extra).await,
            Via::Edge(p) => {
                let mut head = format!("{method} {target} HTTP/1.1\r\nmf-cf-blob: {}", p.cf);
                if let Some(t) = &p.token {
                    head.push_str(&format!("\r\nauthorization: Bearer {t}"));
                }
                for (k, v) in extra {
                    head.push_str(&format!("\r\n{k}: {v}"));
                }
                crate::phone::send_raw(&p.url(""), &head).await
            }
        }
    }
}
