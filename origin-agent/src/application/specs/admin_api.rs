//! The admin API's rules, one per test, over a real store in a temporary data directory (the
//! admission checks — admin token, loopback `Host` — are the listener's: `listener::admin`).

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use super::{error_code, request, Answer, TestAgent};
use crate::domain::store::Scope;

async fn admin(agent: &TestAgent, method: Method, path: &str, body: Option<Value>) -> Answer {
    agent.admin(request(method, path, None, body)).await
}

/// A phone asks to pair (the ArgusAI app's flow); its code.
async fn phone_asks(agent: &TestAgent, phone_id: &str) -> String {
    let (status, body) = agent
        .phone(request(
            Method::POST,
            "/api/v1/mobile/auth/pair",
            None,
            Some(json!({"device_id": phone_id, "platform": "ios"})),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["code"].as_str().unwrap().to_owned()
}

async fn exchange(agent: &TestAgent, code: &str, phone_id: &str) -> Answer {
    agent
        .phone(request(
            Method::POST,
            "/api/v1/mobile/auth/exchange",
            None,
            Some(json!({"code": code, "device_id": phone_id})),
        ))
        .await
}

#[tokio::test]
async fn an_owner_code_is_a_viewer_code_unless_asked_and_reports_who_redeemed_it() {
    let agent = TestAgent::new();
    let (status, created) = admin(
        &agent,
        Method::POST,
        "/admin/pairing-codes",
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["scope"], "viewer");
    let code = created["code"].as_str().unwrap();
    assert!(created["pair_uri"]
        .as_str()
        .unwrap()
        .starts_with(&format!("argusai://pair?code={code}&")));
    let state_path = format!("/admin/pairing-codes/{code}");
    let (_, state) = admin(&agent, Method::GET, &state_path, None).await;
    assert_eq!(state["state"], "pending");

    let (status, paired) = agent
        .phone(request(
            Method::POST,
            "/api/v1/devices/pair",
            None,
            Some(json!({"code": code, "device_info": {"name": "Kitchen iPad"}})),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{paired}");
    let (_, state) = admin(&agent, Method::GET, &state_path, None).await;
    assert_eq!(
        (&state["state"], &state["device_id"], &state["device_name"]),
        (
            &json!("redeemed"),
            &paired["device_id"],
            &json!("Kitchen iPad")
        )
    );

    let (status, owner) = admin(
        &agent,
        Method::POST,
        "/admin/pairing-codes",
        Some(json!({"scope": "owner", "ttl_secs": 60})),
    )
    .await;
    assert_eq!(
        (status, &owner["scope"]),
        (StatusCode::CREATED, &json!("owner"))
    );
    let (status, _) = admin(&agent, Method::GET, "/admin/pairing-codes/ZZZZZZ", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a code it did not make");
}

#[tokio::test]
async fn a_code_with_an_unknown_scope_or_a_bad_lifetime_is_refused() {
    let agent = TestAgent::new();
    for body in [
        json!({"scope": "admin"}),
        json!({"ttl_secs": 0}),
        json!({"ttl_secs": 1_000_000}),
        json!({"scope": 1}),
    ] {
        let (status, answer) = admin(
            &agent,
            Method::POST,
            "/admin/pairing-codes",
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            (status, error_code(&answer)),
            (StatusCode::BAD_REQUEST, "bad_request"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn confirming_takes_the_phones_code_and_gives_the_chosen_scope() {
    let agent = TestAgent::new();
    let code = phone_asks(&agent, "PHONE-A").await;
    let (_, pending) = admin(&agent, Method::GET, "/admin/pairings/pending", None).await;
    assert_eq!(
        pending["pending"].as_array().map(Vec::len),
        Some(1),
        "{pending}"
    );
    assert_eq!(pending["pending"][0]["phone_device_id"], "PHONE-A");

    let confirm = "/admin/pairings/confirm";
    let (status, _) = admin(
        &agent,
        Method::POST,
        confirm,
        Some(json!({"scope": "owner"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the code is required");
    let (status, body) = admin(
        &agent,
        Method::POST,
        confirm,
        Some(json!({"code": "999999"})),
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "invalid_code")
    );
    let (status, body) = admin(
        &agent,
        Method::POST,
        confirm,
        Some(json!({"code": code, "scope": "owner"})),
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"confirmed": true})));

    let (status, tokens) = exchange(&agent, &code, "PHONE-A").await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let device = agent
        .state
        .store
        .device(tokens["device_id"].as_str().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(device.scope, Scope::Owner);
}

#[tokio::test]
async fn a_request_denied_from_the_pending_list_never_pairs() {
    let agent = TestAgent::new();
    let code = phone_asks(&agent, "PHONE-A").await;
    let (_, pending) = admin(&agent, Method::GET, "/admin/pairings/pending", None).await;
    let id = pending["pending"][0]["id"].clone();
    let (status, body) = admin(
        &agent,
        Method::POST,
        "/admin/pairings/deny",
        Some(json!({"id": id})),
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"denied": true})));
    let (status, _) = admin(
        &agent,
        Method::POST,
        "/admin/pairings/deny",
        Some(json!({"id": id})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "already decided");

    let (status, _) = admin(
        &agent,
        Method::POST,
        "/admin/pairings/confirm",
        Some(json!({"code": code})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a denied request cannot be confirmed"
    );
    let (status, _) = exchange(&agent, &code, "PHONE-A").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, pending) = admin(&agent, Method::GET, "/admin/pairings/pending", None).await;
    assert_eq!(pending, json!({"pending": []}));
}

#[tokio::test]
async fn the_owner_lists_renames_and_revokes_any_device() {
    let agent = TestAgent::new();
    let phone = agent.pair(Scope::Viewer, "p").await;
    let path = format!("/admin/devices/{}", phone.device_id);

    let (status, list) = admin(&agent, Method::GET, "/admin/devices", None).await;
    assert_eq!((status, list["total"].as_u64()), (StatusCode::OK, Some(1)));
    assert!(
        list["devices"][0].get("current").is_none(),
        "the CLI is no device"
    );

    let (status, renamed) = admin(
        &agent,
        Method::PUT,
        &format!("{path}/rename"),
        Some(json!({"name": "Hall"})),
    )
    .await;
    assert_eq!((status, &renamed["name"]), (StatusCode::OK, &json!("Hall")));
    let (status, body) = admin(
        &agent,
        Method::PUT,
        &format!("{path}/rename"),
        Some(json!({"name": ""})),
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "bad_request")
    );

    let (status, body) = admin(&agent, Method::DELETE, &path, None).await;
    assert_eq!(
        (status, body["revoked"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    assert!(!agent
        .state
        .store
        .is_device_active(&phone.device_id)
        .unwrap());
    let (status, _) = admin(&agent, Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "already revoked");
    let (status, _) = admin(
        &agent,
        Method::PUT,
        "/admin/devices/nope/rename",
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn rotating_the_signing_key_logs_nobody_out() {
    let agent = TestAgent::new();
    let owner = agent.pair(Scope::Owner, "o").await;
    let old_kid = agent.state.keys.current().kid.clone();

    let (status, rotated) = admin(&agent, Method::POST, "/admin/keys/rotate", None).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_ne!(rotated["kid"], old_kid.as_str());
    assert_eq!(
        agent.state.keys.current().kid,
        rotated["kid"].as_str().unwrap()
    );
    assert_eq!(rotated["jwks"]["keys"].as_array().map(Vec::len), Some(2));

    let (status, _) = agent
        .phone(request(
            Method::GET,
            "/api/v1/devices",
            Some(&owner.access_token),
            None,
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "a token of the old key still works");
}

#[tokio::test]
async fn unknown_paths_are_not_found_and_known_ones_take_only_their_methods() {
    let agent = TestAgent::new();
    for (method, path) in [
        (Method::DELETE, "/admin/pairing-codes"),
        (Method::POST, "/admin/devices"),
        (Method::GET, "/admin/keys/rotate"),
        (Method::POST, "/admin/status"),
        (Method::DELETE, "/admin/metrics"),
    ] {
        let (status, _) = admin(&agent, method.clone(), path, None).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
    }
    for path in ["/admin", "/admin/nothing", "/api/v1/devices"] {
        let (status, _) = admin(&agent, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
}
