//! Sealed mode (RFC 9458 Oblivious HTTP), end to end through workerd: the relay still decides
//! who talks to the home, but what they say — paths, events, pictures — crosses the Worker and
//! the tunnel as ciphertext only.

use std::time::{Duration, SystemTime};

use argus_client::sealed::{self, KeyConfig};
use argus_client::{ClientError, ClientState, Session, SessionOptions};
use reqwest::Method;
use serde_json::{json, Value};

use e2e::backend::PHOTO_DATE;
use e2e::cloudflared::TunnelOptions;
use e2e::lan::pair_through_relay;
use e2e::phone::{cf_blob, Phone};
use e2e::stack::{Stack, StackOptions};

fn sealed_session(state: &ClientState) -> Session {
    Session::open(
        state.clone(),
        SessionOptions {
            browse: None,
            sealed: true,
            ..SessionOptions::default()
        },
    )
    .expect("session")
}

fn plain_session(state: &ClientState) -> Session {
    Session::open(
        state.clone(),
        SessionOptions {
            browse: None,
            ..SessionOptions::default()
        },
    )
    .expect("session")
}

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The verified key configuration, as a phone would hold it.
async fn key_config(stack: &Stack, state: &ClientState) -> KeyConfig {
    sealed::fetch_key_config(
        &reqwest::Client::new(),
        &stack.edge_url(),
        state
            .ohttp_keys_sha256
            .as_deref()
            .expect("pin from pairing"),
    )
    .await
    .expect("key configuration")
}

/// POSTs a sealed `GET path` with `token` through the Worker, as `phone` (its `request.cf`).
async fn post_sealed(phone: &Phone, token: &str, body: Vec<u8>) -> (u16, Option<String>, Vec<u8>) {
    let resp = phone
        .request(Method::POST, argus_shared::sealed::SEALED_PATH)
        .bearer_auth(token)
        .header("content-type", argus_shared::sealed::REQUEST_MEDIA_TYPE)
        .body(body)
        .send()
        .await
        .expect("sealed request");
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, ct, resp.bytes().await.expect("body").to_vec())
}

fn seal_get(config: &KeyConfig, path: &str) -> sealed::SealedRequest {
    sealed::seal(config, &Method::GET, path, &[], None, SystemTime::now()).expect("seal")
}

#[tokio::test(flavor = "multi_thread")]
async fn sealed_answers_equal_plain_ones_and_nothing_readable_crosses_the_relay() {
    let stack = Stack::start_with(StackOptions {
        tunnel: Some(TunnelOptions {
            tap: true,
            ..TunnelOptions::default()
        }),
        ..StackOptions::default()
    })
    .await;
    let tunnel = stack.cloudflared();
    let state = pair_through_relay(&stack, "owner").await;
    assert!(
        state.ohttp_keys_sha256.is_some(),
        "pairing pins the key configuration"
    );
    let sealed = sealed_session(&state);
    let plain = plain_session(&state);

    // The markers: an event's description, and a run of its photo's bytes.
    let id = stack.backend.event_ids()[3].clone();
    let description = stack.backend.event_json(&id).unwrap()["description"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(description.len() > 20, "{description:?}");
    let thumbnail = stack.backend.event_thumbnail_target(&id).unwrap();

    let before = tunnel.tapped().len();
    let list = sealed.get("/api/v1/events?limit=20").await.unwrap();
    let detail = sealed.get(&format!("/api/v1/events/{id}")).await.unwrap();
    let original = sealed.get(&thumbnail).await.unwrap();
    let large = format!("/api/v1/thumbnails/{PHOTO_DATE}/cups-1920x1080.jpg");
    let large_original = stack.backend.photo_bytes("cups-1920x1080.jpg").unwrap();
    let mobile = sealed
        .get(&format!("{large}?quality=mobile"))
        .await
        .unwrap();
    let push = json!({"device_id": "sealed-phone", "platform": "ios", "name": "Sealed",
                      "push_token": "a".repeat(64)});
    let registered = sealed
        .request(Method::POST, "/api/v1/devices", Some(&push))
        .await
        .unwrap();
    let sealed_bytes = tunnel.tapped()[before..].to_vec();
    assert!(
        sealed_bytes.len() > 10_000,
        "the tap saw the sealed traffic"
    );

    assert_eq!(list.status, 200);
    assert!(
        contains(&list.body, description.as_bytes())
            || contains(&detail.body, description.as_bytes())
    );
    assert_eq!(detail.status, 200);
    assert_eq!(
        json_of(&detail.body)["description"],
        Value::from(description.clone())
    );
    assert_eq!(original.status, 200);
    let photo_run = original.body[original.body.len() / 2..][..48].to_vec();
    assert_eq!(mobile.status, 200);
    assert!(
        mobile.body.len() < large_original.len() / 4,
        "transcoded at the agent: {} of {} bytes",
        mobile.body.len(),
        large_original.len()
    );
    assert!(
        matches!(registered.status, 200 | 201),
        "{}",
        String::from_utf8_lossy(&registered.body)
    );

    // Nothing of it in any byte the Worker forwarded or got back.
    for (what, marker) in [
        ("the description", description.as_bytes()),
        ("the photo", &photo_run[..]),
        ("the path", b"/api/v1/events".as_slice()),
    ] {
        assert!(
            !contains(&sealed_bytes, marker),
            "{what} crossed the tunnel in clear"
        );
    }

    // The same requests in clear: the same answers — and the markers do cross the tunnel.
    let before = tunnel.tapped().len();
    let plain_list = plain.get("/api/v1/events?limit=20").await.unwrap();
    let plain_detail = plain.get(&format!("/api/v1/events/{id}")).await.unwrap();
    let plain_original = plain.get(&thumbnail).await.unwrap();
    let plain_mobile = plain.get(&format!("{large}?quality=mobile")).await.unwrap();
    let plain_registered = plain
        .request(Method::POST, "/api/v1/devices", Some(&push))
        .await
        .unwrap();
    let plain_bytes = tunnel.tapped()[before..].to_vec();
    assert_eq!(json_of(&list.body), json_of(&plain_list.body));
    assert_eq!(json_of(&detail.body), json_of(&plain_detail.body));
    assert_eq!(original.body, plain_original.body);
    assert_eq!(
        mobile.body, plain_mobile.body,
        "the agent's transcode is the edge's"
    );
    assert_eq!(registered.status, plain_registered.status);
    assert!(
        contains(&plain_bytes, description.as_bytes()) && contains(&plain_bytes, &photo_run),
        "the tap sees plain traffic (so it would have seen the sealed traffic in clear)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_edge_gates_sealed_requests_as_plain_ones_and_the_agent_refuses_paths_inside() {
    let stack = Stack::start_with(StackOptions {
        policy: Some("version = 1\n[geo]\ndeny_countries = [\"KP\"]\n".into()),
        rate_limits: vec![("DEVICE_LIMITER".into(), 8)],
        ..StackOptions::default()
    })
    .await;
    let owner = pair_through_relay(&stack, "owner").await;
    let viewer = pair_through_relay(&stack, "viewer").await;
    let config = key_config(&stack, &owner).await;
    let phone = stack.phone();

    // A country the policy denies: refused at the edge, outside the seal.
    let (status, _, body) = post_sealed(
        &phone.clone().with_cf(cf_blob("KP", 13335, "TLSv1.3")),
        &owner.access_token,
        seal_get(&config, "/api/v1/events").bytes,
    )
    .await;
    assert_eq!(
        (status, json_of(&body)["error"]["reason"].clone()),
        (403, Value::from("geo.country_denied"))
    );

    // No token / a bad token: refused at the edge.
    let (status, _, _) = post_sealed(
        &phone,
        "not-a-token",
        seal_get(&config, "/api/v1/events").bytes,
    )
    .await;
    assert_eq!(status, 401);

    // A path the agent refuses (the default deny list): refused inside the seal; outside, the
    // relay saw a 200 like any other.
    let logs = seal_get(&config, "/api/v1/logs");
    let (status, ct, body) = post_sealed(&phone, &owner.access_token, logs.bytes).await;
    assert_eq!((status, ct.as_deref()), (200, Some("message/ohttp-res")));
    let opened = sealed::open(logs.opener, &body).expect("opens");
    assert_eq!(opened.status, 403);
    assert_eq!(json_of(&opened.body)["error"]["reason"], "path.denied");

    // The wrong scope: a viewer's sealed POST is refused inside, by the agent (the edge cannot
    // see the inner method).
    let viewer_session = sealed_session(&viewer);
    let resp = viewer_session
        .request(
            Method::POST,
            "/api/v1/devices",
            Some(&json!({"device_id": "v", "platform": "ios"})),
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 403);
    assert_eq!(json_of(&resp.body)["error"]["code"], "insufficient_scope");

    // Rate limit: per device, sealed or not.
    let session = sealed_session(&owner);
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(session.get("/api/v1/events?limit=1").await.unwrap().status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");

    // A revoked device: refused (the agent at once, the edge once its state refreshes).
    stack.agent.cli(&["revoke", &viewer.device_id]).unwrap();
    let resp = viewer_session.get("/api/v1/events?limit=1").await;
    match resp {
        Ok(r) => assert_eq!(r.status, 401, "{}", String::from_utf8_lossy(&r.body)),
        Err(e) => assert_eq!(e.reason(), Some("token.device_revoked"), "{e}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn substituted_tampered_replayed_and_rotated_keys() {
    let stack = Stack::start().await;
    let state = pair_through_relay(&stack, "owner").await;
    let config = key_config(&stack, &state).await;
    let phone = stack.phone();

    // A relay serving another key than the one from pairing: the client refuses, sends nothing.
    let substituted = ClientState {
        ohttp_keys_sha256: Some("ab".repeat(32)),
        ..state.clone()
    };
    let backend_before = stack.backend.requests().len();
    let err = sealed_session(&substituted)
        .get("/api/v1/events")
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::SealedKeyMismatch { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("not the one from pairing"),
        "{err}"
    );

    // Tampered ciphertext: 400 at the agent, nothing proxied.
    let mut tampered = seal_get(&config, "/api/v1/events").bytes;
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    let (status, _, body) = post_sealed(&phone, &state.access_token, tampered).await;
    assert_eq!(
        (status, json_of(&body)["error"]["reason"].clone()),
        (400, Value::from("sealed.undecryptable"))
    );
    assert_eq!(
        stack.backend.requests().len(),
        backend_before,
        "nothing proxied"
    );

    // Replayed: the same sealed bytes again are refused.
    let once = seal_get(&config, "/api/v1/events?limit=1").bytes;
    let (first, _, _) = post_sealed(&phone, &state.access_token, once.clone()).await;
    let (second, _, body) = post_sealed(&phone, &state.access_token, once).await;
    assert_eq!(first, 200);
    assert_eq!(
        (second, json_of(&body)["error"]["reason"].clone()),
        (400, Value::from("sealed.replayed"))
    );

    // A stale inner date is refused.
    let stale = sealed::seal(
        &config,
        &Method::GET,
        "/api/v1/events",
        &[],
        None,
        SystemTime::now() - Duration::from_secs(120),
    )
    .unwrap();
    let (status, _, body) = post_sealed(&phone, &state.access_token, stale.bytes).await;
    assert_eq!(
        (status, json_of(&body)["error"]["reason"].clone()),
        (400, Value::from("sealed.stale"))
    );

    // Rotation: the old configuration is still accepted (the overlap), and the client adopts
    // the new one from the pin it reads inside the seal.
    let session = sealed_session(&state);
    assert_eq!(
        session.get("/api/v1/events?limit=1").await.unwrap().status,
        200
    );
    let rotated = stack.agent.cli(&["keys", "rotate"]).unwrap();
    assert!(rotated.contains("Oblivious HTTP"), "{rotated}");
    let old = seal_get(&config, "/api/v1/events?limit=1");
    let (status, _, body) = post_sealed(&phone, &state.access_token, old.bytes).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let opened = sealed::open(old.opener, &body).unwrap();
    assert_eq!(opened.status, 200);
    let new_pin = opened
        .current_pin
        .expect("the answer names the current key");
    assert_ne!(Some(&new_pin), state.ohttp_keys_sha256.as_ref());
    assert_eq!(
        session.get("/api/v1/events?limit=1").await.unwrap().status,
        200
    );
    assert_eq!(
        session.state().await.ohttp_keys_sha256,
        Some(new_pin.clone())
    );
    let fresh = key_config(
        &stack,
        &ClientState {
            ohttp_keys_sha256: Some(new_pin),
            ..state.clone()
        },
    )
    .await;
    assert_ne!(fresh.encoded, config.encoded);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_sealed_required_plain_device_requests_are_refused_and_pairing_still_works() {
    let stack = Stack::start_with(StackOptions {
        policy: Some("version = 1\n[sealed]\nrequired = true\n".into()),
        ..StackOptions::default()
    })
    .await;
    let state = pair_through_relay(&stack, "owner").await;
    let (status, body) = stack
        .phone()
        .with_token(&state.access_token)
        .get_json("/api/v1/events?limit=1")
        .await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["reason"], "sealed.required");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sealed mode"),
        "{body}"
    );
    let resp = sealed_session(&state)
        .get("/api/v1/events?limit=1")
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
}
