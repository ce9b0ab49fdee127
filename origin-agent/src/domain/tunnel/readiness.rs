//! cloudflared's own word on its tunnel: `GET /ready` on its metrics server.
//!
//! cloudflared answers `200 {"status":200,"readyConnections":4,"connectorId":"…"}` when it
//! holds at least one connection to Cloudflare's edge, and `503` (same shape,
//! `readyConnections: 0`) when it holds none. Unlike its `/healthcheck` (which says OK as long as
//! the process runs), this is proof of an edge connection, so it is the only thing that makes the
//! agent say "connected" ([`interpret`]). The version comes from `build_info` on `/metrics`.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde::Deserialize;

use super::machine::Probe;

/// `/ready` documents are tiny; anything bigger is not cloudflared.
const MAX_READY_BYTES: usize = 16 * 1024;
const MAX_METRICS_BYTES: usize = 4 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReadyDoc {
    ready_connections: u32,
    #[serde(default)]
    connector_id: Option<String>,
}

/// What one `/ready` answer proves.
pub fn interpret(status: u16, body: &[u8]) -> Probe {
    let doc = serde_json::from_slice::<ReadyDoc>(body).ok();
    match (status, doc) {
        (200, Some(doc)) if doc.ready_connections > 0 => Probe::Ready {
            connections: doc.ready_connections,
            connector_id: doc.connector_id.filter(|c| {
                !c.is_empty() && c.len() <= 64 && c.bytes().all(|b| b.is_ascii_graphic())
            }),
        },
        (200 | 503, Some(doc)) => Probe::NotReady {
            connections: doc.ready_connections,
        },
        (503, None) => Probe::NotReady { connections: 0 },
        (200, None) => Probe::NoAnswer {
            reason: "its metrics address answered /ready without cloudflared's readiness \
                     document (is it cloudflared's --metrics address?)"
                .into(),
        },
        (other, _) => Probe::NoAnswer {
            reason: format!(
                "its metrics address answered /ready with HTTP {other} (is it cloudflared's \
                 --metrics address?)"
            ),
        },
    }
}

/// `version` of the `build_info` series in Prometheus text, e.g.
/// `build_info{goversion="go1.22.5",revision="…",type="",version="2024.8.2"} 1`.
pub fn build_version(metrics: &str) -> Option<String> {
    let line = metrics
        .lines()
        .find(|l| l.starts_with("build_info{") || l.starts_with("cloudflared_build_info{"))?;
    let labels = line.split_once('{')?.1.split_once('}')?.0;
    labels.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        let v = v.trim().strip_prefix('"')?.strip_suffix('"')?;
        (k.trim() == "version"
            && !v.is_empty()
            && v.len() <= 64
            && v.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| v.to_owned())
    })
}

/// One `GET /ready` within `timeout`.
pub async fn probe(addr: SocketAddr, timeout: Duration) -> Probe {
    match get(addr, "/ready", timeout, MAX_READY_BYTES).await {
        Ok((status, body)) => interpret(status, &body),
        Err(reason) => Probe::NoAnswer { reason },
    }
}

/// cloudflared's version, if its `/metrics` says.
pub async fn version(addr: SocketAddr, timeout: Duration) -> Option<String> {
    let (status, body) = get(addr, "/metrics", timeout, MAX_METRICS_BYTES)
        .await
        .ok()?;
    if status != 200 {
        return None;
    }
    build_version(&String::from_utf8_lossy(&body))
}

async fn get(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
    limit: usize,
) -> Result<(u16, Bytes), String> {
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
                _ => format!("cannot connect: {e}"),
            })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake failed: {e}"))?;
        let conn = tokio::spawn(conn);
        let req = Request::get(path)
            .header(hyper::header::HOST, addr.to_string())
            .header(
                hyper::header::USER_AGENT,
                crate::domain::proxy::backend::BACKEND_USER_AGENT,
            )
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("no HTTP answer: {e}"))?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), limit)
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        conn.abort();
        Ok::<_, String>((status, body))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok((status, body))) => Ok((status.as_u16(), body)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_needs_200_and_a_connection() {
        assert_eq!(
            interpret(
                200,
                br#"{"status":200,"readyConnections":4,"connectorId":"7b0d3c5e-1f2a-4c1e-9d1c-0a2b3c4d5e6f"}"#
            ),
            Probe::Ready {
                connections: 4,
                connector_id: Some("7b0d3c5e-1f2a-4c1e-9d1c-0a2b3c4d5e6f".into())
            }
        );
        assert_eq!(
            interpret(
                200,
                br#"{"status":200,"readyConnections":0,"connectorId":"x"}"#
            ),
            Probe::NotReady { connections: 0 }
        );
        assert_eq!(
            interpret(
                503,
                br#"{"status":503,"readyConnections":0,"connectorId":"x"}"#
            ),
            Probe::NotReady { connections: 0 }
        );
        assert_eq!(interpret(503, b"oops"), Probe::NotReady { connections: 0 });
    }

    #[test]
    fn anything_else_is_no_proof() {
        for (status, body) in [
            (200, &b"OK"[..]),
            (200, b"{}"),
            (200, br#"{"readyConnections":-1}"#),
            (404, b"404 page not found"),
            (500, br#"{"readyConnections":4}"#),
        ] {
            assert!(
                matches!(interpret(status, body), Probe::NoAnswer { .. }),
                "{status} {:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn odd_connector_ids_are_dropped() {
        let p = interpret(200, br#"{"readyConnections":1,"connectorId":"a b\n"}"#);
        assert_eq!(
            p,
            Probe::Ready {
                connections: 1,
                connector_id: None
            }
        );
    }

    #[test]
    fn version_from_build_info() {
        let text = "# HELP build_info Build and version information\n# TYPE build_info gauge\n\
                    build_info{goversion=\"go1.22.5\",revision=\"2024-08-20\",type=\"\",version=\"2024.8.2\"} 1\n";
        assert_eq!(build_version(text).as_deref(), Some("2024.8.2"));
        assert_eq!(build_version("cloudflared_tunnel_ha_connections 4\n"), None);
        assert_eq!(build_version("build_info{version=\"\"} 1"), None);
    }
}
