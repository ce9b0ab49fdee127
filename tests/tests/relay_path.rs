//! User story (foundation): a paired phone's request travels phone → edge Worker (workerd) →
//! origin agent → ArgusAI and comes back unchanged; when a hop is down the phone gets a JSON error,
//! never a stack trace or an HTML page.

use e2e::phone::Phone;
use e2e::process::free_port;
use e2e::stack::{Stack, StackOptions, BACKEND_API_KEY};

fn assert_json_error(status: u16, body: &serde_json::Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        body["error"]["request_id"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_get_goes_through_all_three_hops_and_comes_back_unchanged() {
    let stack = Stack::start().await;
    let device = stack.pair_phone("owner").await;
    let phone = stack.phone().with_token(&device.access_token);

    // The same request straight to the backend, with the agent's own credential.
    let direct = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/events?limit=3&offset=1",
            stack.backend.url()
        ))
        .header("x-api-key", BACKEND_API_KEY)
        .send()
        .await
        .unwrap();
    let direct_type = direct.headers()["content-type"].clone();
    let direct_body = direct.bytes().await.unwrap();

    stack.backend.clear_requests();
    let resp = phone.get("/api/v1/events?limit=3&offset=1").await;
    assert_eq!(resp.status(), 200, "{}", stack.logs());
    assert_eq!(resp.headers()["content-type"], direct_type);
    assert!(resp.headers().contains_key("x-request-id"));
    let body = resp.bytes().await.unwrap();
    assert_eq!(body, direct_body, "the backend's bytes arrive unchanged");
    let page: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(page["limit"], 3);
    assert_eq!(page["events"].as_array().map(Vec::len), Some(3));

    // What the backend saw: the agent's session, none of the phone's credentials, one XFF.
    let seen = stack.backend.requests();
    let events: Vec<_> = seen
        .iter()
        .filter(|r| r.path() == "/api/v1/events")
        .collect();
    assert_eq!(events.len(), 1, "exactly one request reached the backend");
    let r = events[0];
    assert_eq!(r.header("x-api-key"), None);
    assert_eq!(
        r.header("authorization")
            .and_then(|a| stack.backend.user_of_authorization(a))
            .as_deref(),
        Some(e2e::backend::DEFAULT_ADMIN_USERNAME),
        "the device token stops at the agent, which sends its own session"
    );
    assert!(!r.header("user-agent").unwrap_or("").contains("testclient"));
    assert_eq!(r.header_all("x-forwarded-for").len(), 1);

    // A thumbnail: binary bytes unchanged, type kept.
    let target = stack
        .backend
        .event_thumbnail_target(&stack.backend.event_ids()[0])
        .expect("an event with a thumbnail");
    let direct = reqwest::Client::new()
        .get(format!("{}{}", stack.backend.url(), target))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let resp = phone.get(&target).await;
    assert_eq!(resp.status(), 200, "{target}: {}", stack.logs());
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    assert_eq!(resp.bytes().await.unwrap(), direct);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_agent_down_the_worker_answers_a_json_error() {
    let mut stack = Stack::start().await;
    let device = stack.pair_phone("viewer").await;
    stack.agent.stop();
    let phone = stack.phone().with_token(&device.access_token);
    for path in [
        "/api/v1/events?limit=1",
        "/api/v1/mobile/auth/status/123456",
    ] {
        let resp = phone.get(path).await;
        let ctype = resp.headers().get("content-type").cloned();
        let (status, body) = Phone::json(resp).await;
        assert!(
            status == 502 || status == 503,
            "{path}: {status} {body}\n{}",
            stack.logs()
        );
        assert_eq!(
            ctype.as_ref().map(|v| v.to_str().unwrap()),
            Some("application/json")
        );
        let code = body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert_json_error(status, &body, status, &code);
        assert!(code == "unavailable" || code == "bad_gateway", "{body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_backend_down_the_agent_answers_a_json_502() {
    let dead = format!("http://127.0.0.1:{}", free_port());
    let stack = Stack::start_with(StackOptions {
        backend_url: Some(dead),
        ..StackOptions::default()
    })
    .await;
    let device = stack.pair_phone("viewer").await;
    let phone = stack.phone().with_token(&device.access_token);
    let (status, body) = phone.get_json("/api/v1/events?limit=1").await;
    assert_json_error(status, &body, 502, "bad_gateway");
    assert!(
        !body.to_string().contains("127.0.0.1"),
        "no internal addresses leak: {body}"
    );
}
