//! User stories (device identity), end to end through the edge Worker in workerd:
//! the owner pairs a phone with a code; the existing ArgusAI iOS app pairs with its own flow;
//! tokens refresh with rotation; stolen refresh tokens are caught; the owner revokes a device.

use std::time::{Duration, Instant};

use e2e::phone::Phone;
use e2e::stack::{eventually, Stack};
use serde_json::json;

fn assert_error(status: u16, body: &serde_json::Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_owner_pairs_a_phone_with_a_one_time_code() {
    let stack = Stack::start().await;
    let created = stack.owner_code("owner");
    let code = created["code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 6);
    let uri = created["pair_uri"].as_str().unwrap();
    assert!(
        uri.starts_with(&format!(
            "argusai://pair?code={code}&url=https://relay.test&fp=sha256:"
        )),
        "{uri}"
    );

    let phone = stack.phone();
    let info = json!({"name": "Anna's iPhone", "model": "iPhone15,2", "platform": "ios",
                      "os_version": "18.1", "app_version": "1.4.0", "device_id": "IOS-UUID-1"});
    // Typed with a dash and in lower case: still the code.
    let typed = format!("{}-{}", &code[..3], &code[3..]).to_lowercase();
    let (status, answer) = phone
        .post_json_json(
            "/api/v1/devices/pair",
            &json!({"code": typed, "device_info": info}),
        )
        .await;
    assert_eq!(status, 200, "{answer}\n{}", stack.logs());
    assert_eq!(answer["token_type"], "bearer");
    assert!(answer["expires_in"].as_u64().unwrap() <= 900);
    assert_eq!(answer["server"]["url"], "https://relay.test");
    assert_eq!(answer["server"]["fingerprint"], created["fingerprint"]);
    let access = answer["access_token"].as_str().unwrap();

    // The token works through the Worker; the owner sees the device.
    let me = stack.phone().with_token(access);
    let (status, list) = me.get_json("/api/v1/devices").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["total"], 1);
    assert_eq!(list["devices"][0]["name"], "Anna's iPhone");
    assert_eq!(list["devices"][0]["current"], true);
    assert_eq!(me.get("/api/v1/events?limit=1").await.status(), 200);

    // The owner's `pair` sees who paired.
    let state = stack.agent.cli(&["devices", "--json"]).unwrap();
    assert!(state.contains("Anna's iPhone"), "{state}");

    // Single use: the same code again is refused, like any wrong code.
    let (status, again) = phone
        .post_json_json(
            "/api/v1/devices/pair",
            &json!({"code": code, "device_info": {"name": "x"}}),
        )
        .await;
    assert_error(status, &again, 404, "invalid_code");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_code_is_refused_like_an_unknown_one() {
    let stack = Stack::start().await;
    let out = stack
        .agent
        .cli(&["pair", "--no-wait", "--json", "--ttl", "1"])
        .unwrap();
    let created: serde_json::Value = serde_json::from_str(&out).unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let phone = stack.phone();
    let (s1, expired) = phone
        .post_json_json(
            "/api/v1/devices/pair",
            &json!({"code": created["code"], "device_info": {"name": "late"}}),
        )
        .await;
    let (s2, unknown) = phone
        .post_json_json(
            "/api/v1/devices/pair",
            &json!({"code": "XXXXXX", "device_info": {"name": "guess"}}),
        )
        .await;
    assert_error(s1, &expired, 404, "invalid_code");
    assert_error(s2, &unknown, 404, "invalid_code");
    assert_eq!(expired["error"]["message"], unknown["error"]["message"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guesser_is_locked_out_after_five_wrong_codes() {
    let stack = Stack::start().await;
    let real = stack.owner_code("viewer");
    let phone = stack.phone();
    for guess in ["AAAAAC", "AAAAAD", "AAAAAE", "AAAAAF", "AAAAAG"] {
        let (status, body) = phone
            .post_json_json(
                "/api/v1/devices/pair",
                &json!({"code": guess, "device_info": {"name": "g"}}),
            )
            .await;
        assert_error(status, &body, 404, "invalid_code");
    }
    // Even the right code is refused now, from this client, with Retry-After.
    let resp = phone
        .post_json(
            "/api/v1/devices/pair",
            &json!({"code": real["code"], "device_info": {"name": "g"}}),
        )
        .await;
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0 && retry_after <= 600, "{retry_after}");
    let (status, body) = Phone::json(resp).await;
    assert_error(status, &body, 429, "rate_limited");
    // Polling is limited the same way.
    let (status, body) = phone.get_json("/api/v1/mobile/auth/status/402918").await;
    assert_error(status, &body, 429, "rate_limited");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_argusai_ios_app_pairs_with_its_own_flow_and_the_owner_confirms() {
    let stack = Stack::start().await;
    let app = stack.phone();
    // The app asks to pair and shows the code.
    let (status, asked) = app
        .post_json_json(
            "/api/v1/mobile/auth/pair",
            &json!({"device_id": "A1B2C3D4-IOS", "platform": "ios",
                    "device_name": "Ben's iPhone", "device_model": "iPhone16,1"}),
        )
        .await;
    assert_eq!(status, 200, "{asked}\n{}", stack.logs());
    let code = asked["code"].as_str().unwrap().to_owned();
    assert!(
        code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
        "{code}"
    );
    assert!(asked["expires_in"].as_u64().unwrap() > 0);
    assert!(
        asked["expires_at"].as_str().unwrap().ends_with('Z'),
        "{asked}"
    );

    // It polls; nothing yet. Exchanging early is refused.
    let status_path = format!("/api/v1/mobile/auth/status/{code}");
    assert_eq!(
        app.get_json(&status_path).await.1,
        json!({"confirmed": false, "expired": false})
    );
    let (s, early) = app
        .post_json_json(
            "/api/v1/mobile/auth/exchange",
            &json!({"code": code, "device_id": "A1B2C3D4-IOS"}),
        )
        .await;
    assert_error(s, &early, 409, "conflict");

    // The owner sees the request and confirms it (read-only access).
    let pending = stack.agent.cli(&["pending"]).unwrap();
    assert!(pending.contains("Ben's iPhone"), "{pending}");
    stack
        .agent
        .cli(&["confirm", &code, "--scope", "viewer"])
        .unwrap();
    assert_eq!(
        app.get_json(&status_path).await.1,
        json!({"confirmed": true, "expired": false})
    );

    // The app exchanges with its own device id and gets a truthful expiry.
    let (status, pair) = app
        .post_json_json(
            "/api/v1/mobile/auth/exchange",
            &json!({"code": code, "device_id": "A1B2C3D4-IOS"}),
        )
        .await;
    assert_eq!(status, 200, "{pair}");
    assert_eq!(pair["token_type"], "bearer");
    assert!(pair["device_id"].as_str().unwrap().starts_with("dev_"));
    let expires_in = pair["expires_in"].as_u64().unwrap();
    let claims = jwt_claims(pair["access_token"].as_str().unwrap());
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        expires_in
    );
    assert_eq!(claims["scope"], "viewer");
    assert_eq!(claims["name"], "Ben's iPhone");

    // The code is spent.
    assert_eq!(
        app.get_json(&status_path).await.1,
        json!({"confirmed": false, "expired": true})
    );

    // A viewer reads but does not manage devices or write.
    let viewer = stack
        .phone()
        .with_token(pair["access_token"].as_str().unwrap());
    assert_eq!(viewer.get("/api/v1/events?limit=1").await.status(), 200);
    let (s, b) = viewer.get_json("/api/v1/devices").await;
    assert_error(s, &b, 403, "insufficient_scope");

    // The app's refresh sends its own device id; that is accepted.
    let (status, refreshed) = app
        .post_json_json(
            "/api/v1/mobile/auth/refresh",
            &json!({"refresh_token": pair["refresh_token"], "device_id": "A1B2C3D4-IOS"}),
        )
        .await;
    assert_eq!(status, 200, "{refreshed}");
    assert_ne!(refreshed["refresh_token"], pair["refresh_token"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denied_request_never_pairs() {
    let stack = Stack::start().await;
    let app = stack.phone();
    let (_, asked) = app
        .post_json_json(
            "/api/v1/mobile/auth/pair",
            &json!({"device_id": "EVIL-1", "platform": "android"}),
        )
        .await;
    let code = asked["code"].as_str().unwrap().to_owned();
    stack.agent.cli(&["deny", &code]).unwrap();
    let (_, st) = app
        .get_json(&format!("/api/v1/mobile/auth/status/{code}"))
        .await;
    assert_eq!(st, json!({"confirmed": false, "expired": true}));
    let (s, b) = app
        .post_json_json(
            "/api/v1/mobile/auth/exchange",
            &json!({"code": code, "device_id": "EVIL-1"}),
        )
        .await;
    assert_error(s, &b, 404, "invalid_code");
}

/// The phone's `POST /api/v1/mobile/auth/refresh` with `token` for `device_id` (the future
/// borrows nothing, so a closure can hand it out).
fn refresh(
    phone: &Phone,
    device_id: &str,
    token: &str,
) -> impl std::future::Future<Output = (u16, serde_json::Value)> {
    let body = json!({"refresh_token": token, "device_id": device_id});
    let phone = phone.clone();
    async move {
        phone
            .post_json_json("/api/v1/mobile/auth/refresh", &body)
            .await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_tokens_rotate_and_a_reused_one_ends_the_session() {
    let stack = Stack::start().await;
    let device = stack.pair_phone("owner").await;
    let phone = stack.phone();
    let refresh = |token: &str| refresh(&phone, &device.device_id, token);
    let (s, first) = refresh(&device.refresh_token).await;
    assert_eq!(s, 200, "{first}");
    let second_token = first["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_token, device.refresh_token);
    assert_eq!(
        stack
            .phone()
            .with_token(first["access_token"].as_str().unwrap())
            .get("/api/v1/events?limit=1")
            .await
            .status(),
        200
    );

    let (s, second) = refresh(&second_token).await;
    assert_eq!(s, 200, "{second}");
    let third_token = second["refresh_token"].as_str().unwrap().to_owned();

    // Someone replays the first token (older than the one rotated just before, so no retry
    // leeway): the whole family is revoked...
    let (s, reused) = refresh(&device.refresh_token).await;
    assert_error(s, &reused, 401, "invalid_token");
    assert_eq!(reused["error"]["reason"], "refresh.reused");
    // ...so the legitimate phone's current token stops working too, and it must pair again.
    let (s, after) = refresh(&third_token).await;
    assert_error(s, &after, 401, "invalid_token");
    assert_eq!(after["error"]["reason"], "refresh.revoked");

    // Garbage and foreign device ids are refused.
    let (s, b) = refresh("art1_not-a-token").await;
    assert_error(s, &b, 401, "invalid_token");
}

/// The phone's refresh answer is lost in flight (workerd restarted, a timeout under load): it
/// refreshes again with the token it still holds, within the reuse grace, gets a fresh pair and
/// keeps working; the device is not revoked. The pair it never received is dead.
#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_whose_answer_was_lost_can_be_retried_once() {
    let stack = Stack::start().await;
    let device = stack.pair_phone("owner").await;
    let phone = stack.phone();
    let refresh = |token: &str| refresh(&phone, &device.device_id, token);
    // The agent rotates, but the answer never reaches the phone.
    let (s, lost) = refresh(&device.refresh_token).await;
    assert_eq!(s, 200, "{lost}");
    let lost_token = lost["refresh_token"].as_str().unwrap().to_owned();

    // The phone retries with the token it holds: a fresh pair, and it keeps working.
    let (s, retried) = refresh(&device.refresh_token).await;
    assert_eq!(s, 200, "{retried}");
    let access = retried["access_token"].as_str().unwrap();
    assert_eq!(
        stack
            .phone()
            .with_token(access)
            .get("/api/v1/events?limit=1")
            .await
            .status(),
        200
    );
    let (s, next) = refresh(retried["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 200, "{next}");
    let (s, devices) = stack
        .phone()
        .with_token(next["access_token"].as_str().unwrap())
        .get_json("/api/v1/devices")
        .await;
    assert_eq!(s, 200, "{devices}");
    let listed = devices["devices"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["id"] == device.device_id.as_str()))
        .expect("the device is listed");
    assert!(listed["revoked_at"].is_null(), "{listed}");

    // The pair the phone never received was superseded: whoever presents it is a copy.
    let (s, copied) = refresh(&lost_token).await;
    assert_error(s, &copied, 401, "invalid_token");
    assert_eq!(copied["error"]["reason"], "refresh.reused");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_device_is_refused_at_once_and_the_edge_learns_within_the_bound() {
    let stack = Stack::start().await;
    let owner = stack.pair_phone("owner").await;
    let lost = stack.pair_phone("viewer").await;
    let lost_phone = stack.phone().with_token(&lost.access_token);
    assert_eq!(lost_phone.get("/api/v1/events?limit=1").await.status(), 200);

    // The owner revokes the lost phone from the CLI.
    let revoked_at = Instant::now();
    stack.agent.cli(&["revoke", &lost.device_id]).unwrap();
    let (s, b) = lost_phone.get_json("/api/v1/events?limit=1").await;
    assert_error(s, &b, 401, "invalid_token");
    assert_eq!(b["error"]["reason"], "token.device_revoked");

    // Within the bound the Worker itself refuses it: the agent no longer sees its requests.
    let before = stack.agent_saw("/api/v1/events");
    let edge_refuses = eventually(Duration::from_secs(8), || {
        let lost_phone = lost_phone.clone();
        let stack = &stack;
        async move {
            let seen = stack.agent_saw("/api/v1/events");
            let (s, _) = lost_phone.get_json("/api/v1/events?limit=1").await;
            (s == 401 && stack.agent_saw("/api/v1/events") == seen).then_some(())
        }
    })
    .await;
    assert!(
        edge_refuses.is_some(),
        "the edge kept forwarding a revoked device\n{}",
        stack.logs()
    );
    let took = revoked_at.elapsed();
    eprintln!(
        "edge refused the revoked device {took:?} after revocation (agent saw {} more)",
        stack.agent_saw("/api/v1/events") - before
    );
    assert!(took <= Duration::from_secs(7), "{took:?}");

    // Its refresh family ended with it; the owner is unaffected.
    let (s, b) = stack
        .phone()
        .post_json_json(
            "/api/v1/mobile/auth/refresh",
            &json!({"refresh_token": lost.refresh_token}),
        )
        .await;
    assert_error(s, &b, 401, "invalid_token");
    assert_eq!(
        stack
            .phone()
            .with_token(&owner.access_token)
            .get("/api/v1/events?limit=1")
            .await
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_viewer_cannot_manage_other_devices_but_can_sign_itself_out() {
    let stack = Stack::start().await;
    let owner = stack.pair_phone("owner").await;
    let viewer = stack.pair_phone("viewer").await;
    let v = stack.phone().with_token(&viewer.access_token);
    let other = format!("/api/v1/devices/{}", owner.device_id);
    let resp = v
        .request(reqwest::Method::DELETE, &other)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = v
        .request(reqwest::Method::PUT, &format!("{other}/rename"))
        .json(&json!({"name": "pwned"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    // A malformed sign-out is refused, not taken for "sign me out".
    let resp = v
        .request(reqwest::Method::POST, "/api/v1/mobile/auth/revoke")
        .header("content-type", "application/json")
        .body("{\"revoke_all\": \"yes\"")
        .send()
        .await
        .unwrap();
    let (s, b) = Phone::json(resp).await;
    assert_error(s, &b, 400, "bad_request");
    assert_eq!(v.get("/api/v1/events?limit=1").await.status(), 200);
    // Signing itself out works and ends its access.
    let (s, b) = v
        .post_json_json("/api/v1/mobile/auth/revoke", &json!({"revoke_all": true}))
        .await;
    assert_eq!((s, b["revoked_count"].as_u64()), (200, Some(1)), "{b}");
    assert_eq!(v.get("/api/v1/events?limit=1").await.status(), 401);
    // The owner renames itself and still works.
    let o = stack.phone().with_token(&owner.access_token);
    let resp = o
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/devices/{}/rename", owner.device_id),
        )
        .json(&json!({"name": "Kitchen iPad"}))
        .send()
        .await
        .unwrap();
    let (s, b) = Phone::json(resp).await;
    assert_eq!((s, b["name"].as_str()), (200, Some("Kitchen iPad")), "{b}");
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_rotate_without_logging_anyone_out() {
    let stack = Stack::start().await;
    let before = stack.pair_phone("owner").await;
    let out = stack.agent.cli(&["keys", "rotate"]).unwrap();
    assert!(out.contains("New signing key"), "{out}");
    let (_, jwks) = stack.phone().get_json("/.well-known/jwks.json").await;
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(2), "{jwks}");
    // Old token still valid; a token from the new key is accepted once the edge has the key.
    let old = stack.phone().with_token(&before.access_token);
    assert_eq!(old.get("/api/v1/events?limit=1").await.status(), 200);
    let after = stack.pair_phone("owner").await;
    let new_kid = jwt_header(&after.access_token)["kid"].clone();
    assert_ne!(new_kid, jwt_header(&before.access_token)["kid"]);
    let new = stack.phone().with_token(&after.access_token);
    let ok = eventually(Duration::from_secs(8), || {
        let new = new.clone();
        async move { (new.get("/api/v1/events?limit=1").await.status() == 200).then_some(()) }
    })
    .await;
    assert!(ok.is_some(), "{}", stack.logs());
}

fn b64_json(part: &str) -> serde_json::Value {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn jwt_claims(token: &str) -> serde_json::Value {
    b64_json(token.split('.').nth(1).unwrap())
}

fn jwt_header(token: &str) -> serde_json::Value {
    b64_json(token.split('.').next().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn argus_relay_pair_waits_and_reports_the_phone_that_paired() {
    use std::io::{BufRead, BufReader};
    let stack = Stack::start().await;
    let mut child = std::process::Command::new(e2e::agent::binary())
        .args(["pair", "--scope", "owner", "--config"])
        .arg(stack.agent.config_path())
        .env("ARGUS_RELAY_ADMIN_URL", stack.agent.admin_url())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut printed = Vec::new();
    let code = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("pair prints its link");
        printed.push(line.clone());
        if let Some(rest) = line.split("argusai://pair?code=").nth(1) {
            break rest.split('&').next().unwrap().to_owned();
        }
    };
    assert!(printed.iter().any(|l| l.contains("Code:")), "{printed:?}");
    let (status, _) = stack
        .phone()
        .post_json_json(
            "/api/v1/devices/pair",
            &json!({"code": code, "device_info": {"name": "Kitchen iPad", "platform": "ios"}}),
        )
        .await;
    assert_eq!(status, 200);
    let reported = (0..50)
        .find_map(|_| {
            let line = rx.recv_timeout(Duration::from_millis(200)).ok()?;
            line.starts_with("Paired: Kitchen iPad (dev_")
                .then_some(line)
        })
        .expect("pair reports the device");
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{reported}");
}

#[tokio::test(flavor = "multi_thread")]
async fn push_registration_routes_still_reach_argusai() {
    let stack = Stack::start().await;
    let owner = stack.pair_phone("owner").await;
    let phone = stack.phone().with_token(&owner.access_token);
    stack.backend.clear_requests();
    let resp = phone
        .post_json(
            "/api/v1/devices",
            &json!({"device_id": "apns-1", "platform": "ios", "push_token": "abc"}),
        )
        .await;
    assert_ne!(resp.status(), 401, "the relay let it through to ArgusAI");
    let seen = stack.backend.requests();
    assert!(
        seen.iter()
            .any(|r| r.method == "POST" && r.path() == "/api/v1/devices"),
        "ArgusAI's push registration got the request: {seen:?}"
    );
}
