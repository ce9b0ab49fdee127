//! User story: the phone opens the live-updates WebSocket through the relay — with its token in
//! `Authorization`, or (a browser) as a subprotocol — and talks to ArgusAI's `/ws`; without a
//! valid token the upgrade is refused before anything reaches home, and the backend never sees
//! the token.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

use e2e::backend::RecordedRequest;
use e2e::stack::Stack;

/// The handshake reached ArgusAI with the agent's own session as its only `Authorization`,
/// never the phone's token.
fn assert_agents_session_only(stack: &Stack, upgrade: &RecordedRequest, device_token: &str) {
    let auth = upgrade.header_all("authorization");
    assert_eq!(auth.len(), 1, "{auth:?}");
    assert_eq!(
        stack.backend.user_of_authorization(auth[0]).as_deref(),
        Some(e2e::backend::DEFAULT_ADMIN_USERNAME)
    );
    assert!(!auth[0].contains(device_token));
}

async fn next_text<S>(ws: &mut S) -> String
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return t.to_string(),
            Ok(Some(Ok(_))) => continue,
            other => panic!("no text message: {other:?}"),
        }
    }
}

fn ws_request(
    stack: &Stack,
    path: &str,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let url = format!("{}{path}", stack.edge_url().replace("http://", "ws://"));
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "mf-cf-blob",
        HeaderValue::from_str(&stack.phone().cf.to_string()).unwrap(),
    );
    req
}

#[tokio::test(flavor = "multi_thread")]
async fn live_updates_flow_through_the_relay_with_a_header_token() {
    let stack = Stack::start().await;
    let device = stack.pair_phone("viewer").await;
    let mut req = ws_request(&stack, "/ws");
    req.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {}", device.access_token)).unwrap(),
    );
    let (mut ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .unwrap_or_else(|e| panic!("upgrade refused: {e}\n{}", stack.logs()));
    assert_eq!(resp.status(), 101);
    let hello = next_text(&mut ws).await;
    assert!(hello.contains("\"hello\""), "{hello}");
    ws.send(Message::Text("ping".into())).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "pong");
    ws.send(Message::Text("hi".into())).await.unwrap();
    assert!(next_text(&mut ws).await.contains("\"echo\""));
    // A notification pushed by ArgusAI reaches the phone.
    stack
        .backend
        .notify(serde_json::json!({"event_id": "e-42"}));
    let pushed = next_text(&mut ws).await;
    assert!(pushed.contains("e-42"), "{pushed}");
    let _ = ws.close(None).await;

    let seen = stack.backend.requests();
    let upgrade = seen
        .iter()
        .find(|r| r.path() == "/ws")
        .expect("backend saw /ws");
    assert_agents_session_only(&stack, upgrade, &device.access_token);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_passes_its_token_as_a_subprotocol() {
    let stack = Stack::start().await;
    let device = stack.pair_phone("viewer").await;
    let mut req = ws_request(&stack, "/ws");
    req.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_str(&format!(
            "argus-relay, argus-relay.bearer.{}",
            device.access_token
        ))
        .unwrap(),
    );
    let (mut ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .unwrap_or_else(|e| panic!("upgrade refused: {e}\n{}", stack.logs()));
    assert_eq!(resp.status(), 101);
    assert_eq!(
        resp.headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("argus-relay"),
        "the relay selects its protocol so browsers accept the handshake"
    );
    assert!(next_text(&mut ws).await.contains("\"hello\""));
    let _ = ws.close(None).await;
    let seen = stack.backend.requests();
    let upgrade = seen
        .iter()
        .find(|r| r.path() == "/ws")
        .expect("backend saw /ws");
    assert_agents_session_only(&stack, upgrade, &device.access_token);
    assert_eq!(
        upgrade.header("sec-websocket-protocol"),
        None,
        "neither the token nor the relay's protocol reaches ArgusAI"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upgrade_without_a_valid_token_never_reaches_home() {
    let stack = Stack::start().await;
    for protocols in [
        None,
        Some("argus-relay".to_owned()),
        Some("argus-relay, argus-relay.bearer.not-a-jwt".to_owned()),
    ] {
        let mut req = ws_request(&stack, "/ws/stream/cam-1");
        if let Some(p) = &protocols {
            req.headers_mut()
                .insert("sec-websocket-protocol", HeaderValue::from_str(p).unwrap());
        }
        match tokio_tungstenite::connect_async(req).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), 401, "{protocols:?}");
            }
            other => panic!("{protocols:?}: expected a 401, got {other:?}"),
        }
    }
    assert_eq!(stack.agent_saw("/ws/stream/cam-1"), 0);
    assert!(stack
        .backend
        .requests()
        .iter()
        .all(|r| !r.path().starts_with("/ws")));
}
