//! The facts the gate reads from `request.cf`.
//!
//! Read straight from the JS object with serde rather than through `worker::Cf`, whose getters
//! unwrap internally and panic when a field is absent (it is, under local workerd and for some
//! requests in production).

use serde::Deserialize;
use wasm_bindgen::JsValue;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CfFacts {
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub asn: Option<u32>,
    #[serde(default)]
    pub tls_version: Option<String>,
    /// The TCP round trip between the phone and Cloudflare, in ms (`clientTcpRtt`; absent over
    /// QUIC and under local workerd).
    #[serde(default)]
    pub client_tcp_rtt: Option<u32>,
    /// The `Accept-Encoding` the client really sent, when Cloudflare replaced the header the
    /// Worker sees (it normalises it, e.g. to `gzip, br`). Empty: the client sent none.
    #[serde(default)]
    pub client_accept_encoding: Option<String>,
}

impl CfFacts {
    pub fn of(req: &worker::Request) -> CfFacts {
        let raw: &JsValue = req.inner().as_ref();
        let Ok(cf) = js_sys::Reflect::get(raw, &JsValue::from_str("cf")) else {
            return CfFacts::default();
        };
        if cf.is_undefined() || cf.is_null() {
            return CfFacts::default();
        }
        serde_wasm_bindgen::from_value(cf).unwrap_or_default()
    }
}
