//! A phone's WebSockets: opened through the relay (the Worker) or at home (the LAN listener, its
//! certificate pinned) with a bearer token, and read until they end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use argus_client::pin::{pinned_tls_config, Pin};
use futures_util::StreamExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::lan::agent_certificate;
use crate::stack::Stack;

/// Adds `Authorization: Bearer <token>`.
pub fn bearer(req: &mut Request, token: &str) {
    req.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
}

/// A WebSocket through the Worker, as the phone opens it away from home.
pub async fn via_relay(
    stack: &Stack,
    token: &str,
    path: &str,
) -> WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>> {
    let url = format!("{}{path}", stack.edge_url().replace("http://", "ws://"));
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "mf-cf-blob",
        HeaderValue::from_str(&stack.phone().cf.to_string()).unwrap(),
    );
    bearer(&mut req, token);
    let (ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .unwrap_or_else(|e| panic!("upgrade through the relay refused: {e}\n{}", stack.logs()));
    assert_eq!(resp.status(), 101);
    ws
}

/// A WebSocket straight to the agent's LAN listener, its certificate pinned.
pub async fn at_home(
    stack: &Stack,
    token: &str,
    path: &str,
) -> WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>> {
    let addr: SocketAddr = stack.agent.lan_addr().expect("the LAN listener runs");
    let pin = Pin::of_certificate(agent_certificate(stack).as_ref());
    let connector = tokio_rustls::TlsConnector::from(Arc::new(pinned_tls_config(pin).unwrap()));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let tls = connector.connect(name, tcp).await.unwrap();
    let mut req = format!("wss://{addr}{path}").into_client_request().unwrap();
    bearer(&mut req, token);
    let (ws, resp) = tokio_tungstenite::client_async(req, tls)
        .await
        .unwrap_or_else(|e| panic!("upgrade at home refused: {e}\n{}", stack.logs()));
    assert_eq!(resp.status(), 101);
    ws
}

/// Waits for `n` binary frames (the live stream is flowing).
pub async fn frames<S>(ws: &mut S, n: usize)
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let mut got = 0;
    while got < n {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Binary(_)))) => got += 1,
            Ok(Some(Ok(_))) => {}
            other => panic!("the stream is not flowing: {other:?}"),
        }
    }
}

/// How a socket ended, as the phone saw it.
#[derive(Debug)]
pub struct Ended {
    pub code: Option<u16>,
    pub reason: String,
    /// When the close frame (or the end of the connection) arrived.
    pub at: Instant,
    /// Messages received before it.
    pub messages: usize,
}

/// Reads until the socket ends, at most `limit` from now (`None`: still open then).
pub async fn ended<S>(ws: &mut S, limit: Duration) -> Option<Ended>
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let deadline = tokio::time::Instant::now() + limit;
    let mut messages = 0;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return None,
            Ok(Some(Ok(Message::Close(frame)))) => {
                return Some(Ended {
                    code: frame.as_ref().map(|f| u16::from(f.code)),
                    reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                    at: Instant::now(),
                    messages,
                })
            }
            Ok(Some(Ok(_))) => messages += 1,
            Ok(None) | Ok(Some(Err(_))) => {
                return Some(Ended {
                    code: None,
                    reason: String::new(),
                    at: Instant::now(),
                    messages,
                })
            }
        }
    }
}
