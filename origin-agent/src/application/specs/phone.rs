//! The phone's identity endpoints, one rule per test, over a real store in a temporary data
//! directory (no workerd, no listener).

use hyper::{Method, StatusCode};
use serde_json::json;

use super::{error_code, error_reason, request, Answer, Paired, TestAgent};
use crate::application::handlers::pairing_codes::create_owner_code;
use crate::domain::store::Scope;

async fn post(
    agent: &TestAgent,
    path: &str,
    token: Option<&str>,
    body: serde_json::Value,
) -> Answer {
    agent
        .phone(request(Method::POST, path, token, Some(body)))
        .await
}

async fn refresh(agent: &TestAgent, refresh_token: &str, device_id: Option<&str>) -> Answer {
    let mut body = json!({ "refresh_token": refresh_token });
    if let Some(id) = device_id {
        body["device_id"] = json!(id);
    }
    post(agent, "/api/v1/mobile/auth/refresh", None, body).await
}

fn active(agent: &TestAgent, device: &Paired) -> bool {
    agent
        .state
        .store
        .is_device_active(&device.device_id)
        .unwrap()
}

#[tokio::test]
async fn an_owner_code_pairs_one_phone_once() {
    let agent = TestAgent::new();
    let code = create_owner_code(&agent.state, Scope::Viewer, 600)
        .await
        .unwrap()
        .code;
    let pair = json!({"code": code, "device_info": {"name": "Alice's iPhone", "platform": "ios"}});

    let (status, body) = post(&agent, "/api/v1/devices/pair", None, pair.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["server"]["url"], "https://relay.example.test");
    assert_eq!(
        body["server"]["instance_id"],
        agent.state.instance_id.as_str()
    );
    let device = agent
        .state
        .store
        .device(body["device_id"].as_str().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(
        (device.name.as_str(), device.scope),
        ("Alice's iPhone", Scope::Viewer)
    );

    let (status, body) = post(&agent, "/api/v1/devices/pair", None, pair).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "invalid_code")
    );
}

#[tokio::test]
async fn five_wrong_codes_lock_the_client_out_even_for_the_right_code() {
    let agent = TestAgent::new();
    let real = create_owner_code(&agent.state, Scope::Viewer, 600)
        .await
        .unwrap()
        .code;
    // Unknown and malformed codes get the same answer.
    for guess in ["AAAAAC", "AAAAAD", "not a code!", "AAAAAF", "AAAAAG"] {
        let (status, body) = post(
            &agent,
            "/api/v1/devices/pair",
            None,
            json!({"code": guess, "device_info": {"name": "g"}}),
        )
        .await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::NOT_FOUND, "invalid_code"),
            "{guess}"
        );
    }
    let (status, body) = post(
        &agent,
        "/api/v1/devices/pair",
        None,
        json!({"code": real, "device_info": {"name": "g"}}),
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    let (status, _) = agent
        .phone(request(
            Method::GET,
            "/api/v1/mobile/auth/status/402918",
            None,
            None,
        ))
        .await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "polling is limited the same way"
    );
}

#[tokio::test]
async fn a_phone_initiated_pairing_waits_for_the_owner_then_exchanges_once() {
    let agent = TestAgent::new();
    let (status, asked) = post(
        &agent,
        "/api/v1/mobile/auth/pair",
        None,
        json!({"device_id": "PHONE-A", "platform": "ios", "device_name": "Bob's iPhone"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{asked}");
    let code = asked["code"].as_str().unwrap().to_owned();
    let status_path = format!("/api/v1/mobile/auth/status/{code}");
    let exchange = json!({"code": code, "device_id": "PHONE-A"});

    let (_, body) = agent
        .phone(request(Method::GET, &status_path, None, None))
        .await;
    assert_eq!(body, json!({"confirmed": false, "expired": false}));
    let (status, body) = post(
        &agent,
        "/api/v1/mobile/auth/exchange",
        None,
        exchange.clone(),
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::CONFLICT, "conflict"),
        "not yet"
    );

    agent
        .state
        .store
        .confirm_pairing(&code, Scope::Viewer, 1)
        .unwrap();
    let (_, body) = agent
        .phone(request(Method::GET, &status_path, None, None))
        .await;
    assert_eq!(body, json!({"confirmed": true, "expired": false}));

    let (status, tokens) = post(
        &agent,
        "/api/v1/mobile/auth/exchange",
        None,
        exchange.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let device = agent
        .state
        .store
        .device(tokens["device_id"].as_str().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(device.phone_device_id.as_deref(), Some("PHONE-A"));
    let (status, body) = post(&agent, "/api/v1/mobile/auth/exchange", None, exchange).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "invalid_code"),
        "used"
    );
}

#[tokio::test]
async fn another_phone_exchanging_a_confirmed_code_gets_nothing_and_kills_the_code() {
    let agent = TestAgent::new();
    let (_, asked) = post(
        &agent,
        "/api/v1/mobile/auth/pair",
        None,
        json!({"device_id": "PHONE-A", "platform": "ios"}),
    )
    .await;
    let code = asked["code"].as_str().unwrap().to_owned();
    agent
        .state
        .store
        .confirm_pairing(&code, Scope::Owner, 1)
        .unwrap();

    let (status, body) = post(
        &agent,
        "/api/v1/mobile/auth/exchange",
        None,
        json!({"code": code, "device_id": "PHONE-EVE"}),
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "invalid_code")
    );
    let (status, _) = post(
        &agent,
        "/api/v1/mobile/auth/exchange",
        None,
        json!({"code": code, "device_id": "PHONE-A"}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the code was denied on the spot"
    );
    assert_eq!(agent.state.store.device_count().unwrap(), 0);
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_token_ends_the_device() {
    let agent = TestAgent::new();
    let phone = agent.pair(Scope::Viewer, "p").await;

    let (status, rotated) = refresh(&agent, &phone.refresh_token, Some(&phone.device_id)).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let next = rotated["refresh_token"].as_str().unwrap();
    assert_ne!(next, phone.refresh_token);
    assert_eq!(rotated["device_id"], phone.device_id.as_str());
    // The phone got its successor and used it: the first token is now spent for good (the
    // reuse grace covers only an answer that never arrived, `REFRESH_REUSE_GRACE_SECS`).
    let (status, again) = refresh(&agent, next, None).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    let latest = again["refresh_token"].as_str().unwrap();

    let (status, body) = refresh(&agent, &phone.refresh_token, None).await;
    assert_eq!(
        (status, error_code(&body), error_reason(&body)),
        (StatusCode::UNAUTHORIZED, "invalid_token", "refresh.reused")
    );
    assert!(!active(&agent, &phone));
    // The whole family is revoked, the latest token with it.
    let (status, body) = refresh(&agent, latest, None).await;
    assert_eq!(
        (status, error_reason(&body)),
        (StatusCode::UNAUTHORIZED, "refresh.revoked")
    );
}

#[tokio::test]
async fn a_refresh_token_presented_for_another_device_is_treated_as_stolen() {
    let agent = TestAgent::new();
    let phone = agent.pair(Scope::Owner, "p").await;
    let (status, body) = refresh(&agent, &phone.refresh_token, Some("someone-else")).await;
    assert_eq!(
        (status, error_reason(&body)),
        (StatusCode::UNAUTHORIZED, "refresh.device_mismatch")
    );
    assert!(!active(&agent, &phone));
}

#[tokio::test]
async fn a_malformed_refresh_token_is_unknown() {
    let agent = TestAgent::new();
    let (status, body) = refresh(&agent, "not-a-token", None).await;
    assert_eq!(
        (status, error_reason(&body)),
        (StatusCode::UNAUTHORIZED, "refresh.unknown")
    );
}

#[tokio::test]
async fn an_empty_sign_out_revokes_the_calling_device_only() {
    let agent = TestAgent::new();
    let owner = agent.pair(Scope::Owner, "o").await;
    let viewer = agent.pair(Scope::Viewer, "v").await;
    let (status, body) = agent
        .phone(request(
            Method::POST,
            "/api/v1/mobile/auth/revoke",
            Some(&viewer.access_token),
            None,
        ))
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"revoked_count": 1}))
    );
    assert!(!active(&agent, &viewer));
    assert!(active(&agent, &owner));
    // Its access ends at once.
    let (status, body) = agent
        .phone(request(
            Method::GET,
            "/api/v1/devices",
            Some(&viewer.access_token),
            None,
        ))
        .await;
    assert_eq!(
        (status, error_reason(&body)),
        (StatusCode::UNAUTHORIZED, "token.device_revoked")
    );
}

#[tokio::test]
async fn a_malformed_sign_out_is_refused_not_taken_for_sign_me_out() {
    let agent = TestAgent::new();
    let viewer = agent.pair(Scope::Viewer, "v").await;
    let mut req = request(
        Method::POST,
        "/api/v1/mobile/auth/revoke",
        Some(&viewer.access_token),
        None,
    );
    *req.body_mut() = crate::base::http::body::full("{\"revoke_all\": \"yes\"");
    let (status, body) = agent.phone(req).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "bad_request")
    );
    assert!(active(&agent, &viewer));
}

#[tokio::test]
async fn revoke_all_signs_out_everyone_for_an_owner_and_only_itself_for_a_viewer() {
    let agent = TestAgent::new();
    let owner = agent.pair(Scope::Owner, "o").await;
    let viewer = agent.pair(Scope::Viewer, "v").await;
    let other = agent.pair(Scope::Viewer, "w").await;
    let revoke_all = json!({"revoke_all": true});

    let (status, body) = post(
        &agent,
        "/api/v1/mobile/auth/revoke",
        Some(&viewer.access_token),
        revoke_all.clone(),
    )
    .await;
    assert_eq!(
        (status, body["revoked_count"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    assert!(active(&agent, &owner) && active(&agent, &other));

    let (status, body) = post(
        &agent,
        "/api/v1/mobile/auth/revoke",
        Some(&owner.access_token),
        revoke_all,
    )
    .await;
    assert_eq!(
        (status, body["revoked_count"].as_u64()),
        (StatusCode::OK, Some(2))
    );
    assert_eq!(agent.state.store.device_count().unwrap(), 0);
}

#[tokio::test]
async fn a_viewer_may_only_revoke_or_rename_itself_and_not_list_devices() {
    let agent = TestAgent::new();
    let owner = agent.pair(Scope::Owner, "o").await;
    let viewer = agent.pair(Scope::Viewer, "v").await;
    let v = Some(viewer.access_token.as_str());
    let theirs = format!("/api/v1/devices/{}", owner.device_id);
    let mine = format!("/api/v1/devices/{}", viewer.device_id);
    let name = json!({"name": "pwned"});

    for req in [
        request(Method::DELETE, &theirs, v, None),
        request(
            Method::PUT,
            &format!("{theirs}/rename"),
            v,
            Some(name.clone()),
        ),
        request(Method::GET, "/api/v1/devices", v, None),
        request(Method::GET, "/api/v1/relay/status", v, None),
    ] {
        let what = format!("{} {}", req.method(), req.uri());
        let (status, body) = agent.phone(req).await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::FORBIDDEN, "insufficient_scope"),
            "{what}"
        );
    }
    assert!(active(&agent, &owner));
    assert_eq!(
        agent
            .state
            .store
            .device(&owner.device_id)
            .unwrap()
            .unwrap()
            .name,
        "o"
    );

    let (status, body) = agent
        .phone(request(
            Method::PUT,
            &format!("{mine}/rename"),
            v,
            Some(json!({"name": " Kitchen "})),
        ))
        .await;
    assert_eq!(
        (status, body["name"].as_str()),
        (StatusCode::OK, Some("Kitchen"))
    );
    let (status, _) = agent.phone(request(Method::DELETE, &mine, v, None)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!active(&agent, &viewer));
}

#[tokio::test]
async fn an_owner_manages_every_device_and_sees_which_is_itself() {
    let agent = TestAgent::new();
    let owner = agent.pair(Scope::Owner, "o").await;
    let viewer = agent.pair(Scope::Viewer, "v").await;
    let o = Some(owner.access_token.as_str());

    let (status, list) = agent
        .phone(request(Method::GET, "/api/v1/devices", o, None))
        .await;
    assert_eq!(
        (status, list["total"].as_u64()),
        (StatusCode::OK, Some(2)),
        "{list}"
    );
    let me = list["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["current"] == true)
        .unwrap();
    assert_eq!(me["id"], owner.device_id.as_str());

    let theirs = format!("/api/v1/devices/{}", viewer.device_id);
    let (status, body) = agent.phone(request(Method::DELETE, &theirs, o, None)).await;
    assert_eq!(
        (status, body["revoked"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    assert!(!active(&agent, &viewer));
    let (status, _) = agent.phone(request(Method::DELETE, &theirs, o, None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "already revoked");
    let (status, _) = agent
        .phone(request(
            Method::DELETE,
            "/api/v1/devices/no-such-device",
            o,
            None,
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let devices = agent.state.store.list_devices().unwrap();
    let ended = devices.iter().find(|d| d.id == viewer.device_id).unwrap();
    assert!(ended.revoked_at.is_some(), "revoked devices stay listed");
}
