//! Security story: a phone's open WebSockets (the live camera view, notifications) end when its
//! device is revoked — within 1 s, through the relay (the Worker under workerd) and at home over
//! the LAN alike — and when the token they were opened with expires. The app learns why from the
//! close code: 4403 "device revoked" (pair again), 4401 "token expired: reconnect" (refresh, then
//! reconnect). ArgusAI's side of the socket is closed too.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{json, Value};

use e2e::stack::{eventually, PairedDevice, Stack, StackOptions};
use e2e::ws::{at_home, ended, frames, via_relay, Ended};

/// The bound the relay promises between a revocation and the socket's close.
const BOUND: Duration = Duration::from_secs(1);
/// How long a test waits for a socket to end before it says the socket stayed open.
const WAIT: Duration = Duration::from_secs(3);
/// Each live stream sends a frame every 50 ms.
const STREAM: &str = "/ws/stream/cam-1?fps=20";

/// A LAN listener on loopback, not advertised (these tests need no discovery).
async fn stack_with_lan() -> Stack {
    Stack::start_with(StackOptions {
        agent_toml: Some(
            "[lan]\nenabled = true\nlisten = \"127.0.0.1:0\"\nmdns = false\n".to_owned(),
        ),
        ..StackOptions::default()
    })
    .await
}

/// The close code and reason of a revoked device's sockets.
const REVOKED: (u16, &str) = (4403, "device revoked");

/// The socket `what` was closed with `expected` (code, reason) by `deadline`.
fn assert_closed(
    what: &str,
    end: Option<Ended>,
    deadline: Instant,
    (code, reason): (u16, &str),
    stack: &Stack,
) {
    let end = end.unwrap_or_else(|| panic!("{what}: still open {WAIT:?} later\n{}", stack.logs()));
    eprintln!(
        "{what}: closed {:?} after the revocation",
        end.at.saturating_duration_since(deadline - BOUND)
    );
    assert_eq!(end.code, Some(code), "{what}: {end:?}");
    assert_eq!(end.reason, reason, "{what}");
    assert!(
        end.at <= deadline,
        "{what}: closed {:?} late",
        end.at - deadline
    );
}

/// ArgusAI's end of every socket is closed too.
async fn backend_sockets_closed(stack: &Stack) {
    let closed = eventually(Duration::from_secs(3), || async {
        (stack.backend.active_websockets() == 0).then_some(())
    })
    .await;
    assert!(
        closed.is_some(),
        "the backend still has {} open WebSockets",
        stack.backend.active_websockets()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_phone_loses_its_live_streams_within_a_second_through_the_relay_and_at_home() {
    let stack = stack_with_lan().await;
    let phone = stack.pair_phone("viewer").await;
    let token = &phone.access_token;
    let mut relay_stream = via_relay(&stack, token, STREAM).await;
    let mut relay_updates = via_relay(&stack, token, "/ws").await;
    let mut home_stream = at_home(&stack, token, STREAM).await;
    frames(&mut relay_stream, 2).await;
    frames(&mut home_stream, 2).await;

    // Another phone's stream is not touched.
    let other = stack.pair_phone("viewer").await;
    let mut others = via_relay(&stack, &other.access_token, STREAM).await;
    frames(&mut others, 1).await;

    stack
        .agent
        .cli(&["revoke", &phone.device_id])
        .expect("argus-relay revoke");
    let deadline = Instant::now() + BOUND;
    let (a, b, c) = tokio::join!(
        ended(&mut relay_stream, WAIT),
        ended(&mut relay_updates, WAIT),
        ended(&mut home_stream, WAIT),
    );
    assert_closed(
        "the live stream through the relay",
        a,
        deadline,
        REVOKED,
        &stack,
    );
    assert_closed("/ws through the relay", b, deadline, REVOKED, &stack);
    assert_closed("the live stream at home", c, deadline, REVOKED, &stack);

    frames(&mut others, 3).await;
    drop(others);
    backend_sockets_closed(&stack).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_out_and_revoke_all_close_the_streams_of_the_devices_they_revoke() {
    let stack = stack_with_lan().await;
    let owner = stack.pair_phone("owner").await;
    let leaving = stack.pair_phone("viewer").await;
    let staying = stack.pair_phone("viewer").await;
    let mut leaving_stream = at_home(&stack, &leaving.access_token, STREAM).await;
    let mut staying_stream = via_relay(&stack, &staying.access_token, STREAM).await;
    let mut owner_stream = at_home(&stack, &owner.access_token, STREAM).await;
    frames(&mut leaving_stream, 1).await;
    frames(&mut staying_stream, 1).await;
    frames(&mut owner_stream, 1).await;

    // A phone signs itself out (through the relay): its stream at home ends.
    let resp = stack
        .phone()
        .with_token(&leaving.access_token)
        .post_json("/api/v1/mobile/auth/revoke", &json!({}))
        .await;
    assert_eq!(resp.status(), 200);
    let deadline = Instant::now() + BOUND;
    let end = ended(&mut leaving_stream, WAIT).await;
    assert_closed(
        "the signed-out phone's stream",
        end,
        deadline,
        REVOKED,
        &stack,
    );
    frames(&mut staying_stream, 2).await;

    // The owner signs every phone out.
    let resp = stack
        .phone()
        .with_token(&owner.access_token)
        .post_json("/api/v1/mobile/auth/revoke", &json!({"revoke_all": true}))
        .await;
    assert_eq!(resp.status(), 200);
    let deadline = Instant::now() + BOUND;
    let (a, b) = tokio::join!(
        ended(&mut staying_stream, WAIT),
        ended(&mut owner_stream, WAIT)
    );
    assert_closed(
        "a viewer's stream after revoke_all",
        a,
        deadline,
        REVOKED,
        &stack,
    );
    assert_closed(
        "the owner's stream after revoke_all",
        b,
        deadline,
        REVOKED,
        &stack,
    );
    backend_sockets_closed(&stack).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reused_refresh_token_revokes_the_device_its_streams_and_its_listing() {
    let stack = Stack::start().await;
    let phone = stack.pair_phone("viewer").await;
    let mut stream = via_relay(&stack, &phone.access_token, STREAM).await;
    frames(&mut stream, 1).await;
    let body = json!({"refresh_token": phone.refresh_token, "device_id": phone.device_id});
    let app = stack.phone();
    let refresh = || app.post_json_json("/api/v1/mobile/auth/refresh", &body);
    let (status, _) = refresh().await;
    assert_eq!(status, 200);
    // Once more within the reuse grace passes as a retry after a lost answer...
    let (status, _) = refresh().await;
    assert_eq!(status, 200);
    // ...but the same refresh token a third time: someone holds a copy.
    let (status, body) = refresh().await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["reason"], "refresh.reused");
    let deadline = Instant::now() + BOUND;
    let end = ended(&mut stream, WAIT).await;
    assert_closed(
        "the stream after a refresh-token reuse",
        end,
        deadline,
        REVOKED,
        &stack,
    );

    // The owner's listing says so: revoked, and why (it said "active" before).
    let listed: Value = serde_json::from_str(
        &stack
            .agent
            .cli(&["devices", "--json"])
            .expect("devices --json"),
    )
    .expect("JSON");
    let device = listed["devices"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["id"] == phone.device_id.as_str()))
        .expect("the device is listed")
        .clone();
    assert!(device["revoked_at"].is_i64(), "{device}");
    assert_eq!(device["revoked_reason"], "refresh_token_reused", "{device}");
    let table = stack.agent.cli(&["devices"]).expect("devices");
    let row = table
        .lines()
        .find(|l| l.contains(&phone.device_id))
        .expect("the device's row");
    assert!(row.ends_with("revoked (refresh token reused)"), "{table}");
    assert!(table.contains("(0 active, 1 revoked)"), "{table}");
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A token for `like`'s device with the same claims but `exp` = `exp`, signed with the install's
/// key (read from the agent's database, as only the agent can): a token about to expire, without
/// waiting out a real lifetime (at least 60 s).
fn token_expiring_at(stack: &Stack, like: &PairedDevice, exp: u64) -> String {
    let store = origin_agent::store::Store::open(stack.agent.data_dir().join("relay.db")).unwrap();
    let key = store.current_signing_key().unwrap().unwrap();
    let signer = SigningKey::from_bytes(&key.seed);
    let mut parts = like.access_token.split('.');
    let header = parts.next().unwrap();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap();
    let t = now();
    claims["iat"] = json!(t);
    claims["nbf"] = json!(t);
    claims["exp"] = json!(exp);
    claims["jti"] = json!(format!("short-{t}"));
    let input = format!(
        "{header}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
    );
    let sig = signer.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_ends_with_4401_when_the_token_it_was_opened_with_expires() {
    let stack = stack_with_lan().await;
    let phone = stack.pair_phone("viewer").await;
    let exp = now() + 4;
    let token = token_expiring_at(&stack, &phone, exp);
    let mut relay_stream = via_relay(&stack, &token, STREAM).await;
    let mut home_stream = at_home(&stack, &token, STREAM).await;
    frames(&mut relay_stream, 2).await;
    frames(&mut home_stream, 2).await;

    let (a, b) = tokio::join!(
        ended(&mut relay_stream, Duration::from_secs(10)),
        ended(&mut home_stream, Duration::from_secs(10)),
    );
    let exp_time = UNIX_EPOCH + Duration::from_secs(exp);
    for (what, end) in [("through the relay", a), ("at home", b)] {
        let end = end.unwrap_or_else(|| panic!("{what}: still open 10 s later\n{}", stack.logs()));
        assert_eq!(end.code, Some(4401), "{what}: {end:?}");
        assert_eq!(end.reason, "token expired: reconnect", "{what}");
        assert!(end.messages > 0, "{what}: the stream flowed until then");
        let when = SystemTime::now() - end.at.elapsed();
        let after_exp = when
            .duration_since(exp_time)
            .unwrap_or_else(|early| panic!("{what}: closed {:?} before exp", early.duration()));
        eprintln!("{what}: closed {after_exp:?} after exp");
        assert!(after_exp < BOUND, "{what}: closed {after_exp:?} after exp");
    }
    backend_sockets_closed(&stack).await;
}
