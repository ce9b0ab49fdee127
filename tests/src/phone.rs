//! A client that speaks like the phone: bearer tokens, JSON, `request.cf` injected per request.

use serde_json::{json, Value};

/// The `request.cf` the Worker sees, injected with `MF-CF-Blob` (it replaces the whole object, so
/// it carries every field the Worker reads).
pub fn cf_blob(country: &str, asn: u32, tls_version: &str) -> Value {
    json!({
        "country": country,
        "asn": asn,
        "tlsVersion": tls_version,
        "colo": "AMS",
        "httpProtocol": "HTTP/2",
        "clientAcceptEncoding": "",
    })
}

#[derive(Clone)]
pub struct Phone {
    http: reqwest::Client,
    base: String,
    pub token: Option<String>,
    pub cf: Value,
}

impl Phone {
    pub fn new(base: &str) -> Phone {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("http client");
        Phone {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token: None,
            cf: cf_blob("US", 64496, "TLSv1.3"),
        }
    }

    pub fn with_token(mut self, token: &str) -> Phone {
        self.token = Some(token.to_owned());
        self
    }

    pub fn with_cf(mut self, cf: Value) -> Phone {
        self.cf = cf;
        self
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request with the phone's headers: `MF-CF-Blob`, and `Authorization` when it has a token.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut rb = self
            .http
            .request(method, self.url(path))
            .header("mf-cf-blob", self.cf.to_string());
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        rb
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::GET, path)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.request(reqwest::Method::POST, path)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// Status and JSON body (Null when the body is not JSON).
    /// The status and the JSON body. A body that cannot be read or is not JSON comes back as a
    /// string saying so (every field lookup on it is null), so a failing assertion shows why.
    pub async fn json(resp: reqwest::Response) -> (u16, Value) {
        let status = resp.status().as_u16();
        let body = match resp.bytes().await {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                Value::String(format!(
                    "<not JSON: {:?}>",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
                ))
            }),
            Err(e) => Value::String(format!("<body not read: {e:?}>")),
        };
        (status, body)
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        Phone::json(self.get(path).await).await
    }

    pub async fn post_json_json(&self, path: &str, body: &Value) -> (u16, Value) {
        Phone::json(self.post_json(path, body).await).await
    }
}

/// Sends `request_head` (request line + headers, without the final blank line) over a raw TCP
/// connection, so the target reaches the server byte for byte (HTTP clients normalise `%2e%2e`).
/// Returns the status code and the whole response text.
pub async fn send_raw(base: &str, request_head: &str) -> (u16, String) {
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    exchange_raw(
        s,
        &format!("{request_head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
    .await
}

/// Writes `request` (a whole HTTP/1.1 request, normally with `Connection: close`) on `stream`
/// and reads the answer to its end (at most 30 s). Returns the status (0 if there is none) and
/// the answer's text.
pub async fn exchange_raw<S>(mut stream: S, request: &str) -> (u16, String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        stream.read_to_end(&mut buf),
    )
    .await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}
