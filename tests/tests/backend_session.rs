//! The agent's own ArgusAI session (issue 14 §1): the owner signs the agent in once
//! (`argus-relay backend login`); the agent keeps the refresh token, renews its access token
//! ahead of expiry with one refresh for everyone, survives restarts, never logs in by itself, and
//! turns ArgusAI's refusal into a JSON 502 that says what to run. `status` and `doctor` say so too.
//!
//! Against the stand-in ArgusAI: user-only push registration (`POST /api/v1/devices`) refuses an
//! API key as ArgusAI does; login and refresh are counted there.

use std::time::{Duration, Instant};

use e2e::backend::{DEFAULT_ADMIN_PASSWORD, DEFAULT_ADMIN_USERNAME};
use e2e::stack::{BackendLogin, PairedDevice, Stack, StackOptions, BACKEND_API_KEY};
use serde_json::{json, Value};

async fn stack_with(opts: StackOptions) -> (Stack, PairedDevice) {
    let stack = Stack::start_with(StackOptions {
        without_worker: true,
        ..opts
    })
    .await;
    let device = stack.pair_phone_direct("owner").await;
    (stack, device)
}

async fn register_push(stack: &Stack, device: &PairedDevice, id: &str) -> (u16, Value) {
    let resp = stack
        .tunnel()
        .with_device(device)
        .post_json(
            "/api/v1/devices",
            &json!({"device_id": id, "platform": "ios", "name": "iPhone", "push_token": "apns-token"}),
        )
        .send()
        .await
        .expect("request sent");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn list_events(stack: &Stack, device: &PairedDevice) -> (u16, Value) {
    let resp = stack
        .tunnel()
        .with_device(device)
        .get("/api/v1/events?limit=1")
        .await;
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The user whose JWT the last request to `path` carried, and whether it carried an API key.
fn credential_seen(stack: &Stack, path: &str) -> (Option<String>, bool) {
    let seen = stack.backend.requests();
    let r = seen
        .iter()
        .rev()
        .find(|r| r.path() == path)
        .unwrap_or_else(|| panic!("no request for {path} reached the backend"));
    assert!(!r.has_header("cookie"), "the agent sends no cookie: {r:?}");
    (
        r.header("authorization")
            .and_then(|a| stack.backend.user_of_authorization(a)),
        r.has_header("x-api-key"),
    )
}

async fn session_state(stack: &Stack) -> Value {
    stack.agent.status().await["backend"]["session"].clone()
}

/// Waits (bounded) until the agent reports the session in `state`.
async fn wait_for_session(stack: &Stack, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s = session_state(stack).await;
        if s["state"] == state {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "session never became {state}: {s}\n{}",
            stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn doctor_finding(stack: &Stack, check: &str) -> Value {
    let out = stack
        .agent
        .cli_output(&["doctor", "--json", "--timeout", "3"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor --json: {e}: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    v["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["check"] == check).cloned())
        .unwrap_or_else(|| panic!("no {check} finding: {v}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn push_registration_goes_with_the_agents_session_and_survives_a_restart() {
    let (mut stack, device) = stack_with(StackOptions::default()).await;
    let (status, body) = register_push(&stack, &device, "ios-1").await;
    assert_eq!(status, 201, "{body}\n{}", stack.logs());
    assert_eq!(body["device_id"], "ios-1");
    assert_eq!(
        credential_seen(&stack, "/api/v1/devices"),
        (Some(DEFAULT_ADMIN_USERNAME.to_owned()), false),
        "a Bearer JWT of the signed-in user, no API key (a bcrypt per request on ArgusAI)"
    );
    assert_eq!(
        stack.backend.login_requests(),
        1,
        "the harness' one sign-in"
    );
    let session = wait_for_session(&stack, "active").await;
    assert_eq!(session["username"], DEFAULT_ADMIN_USERNAME);
    assert!(
        session["access_expires_in_secs"].as_u64().unwrap_or(0) > 23 * 3600,
        "{session}"
    );
    let status_text = stack.agent.cli(&["status"]).expect("status");
    assert!(
        status_text.contains("Session:  signed in to ArgusAI as admin"),
        "{status_text}"
    );
    assert_eq!(
        doctor_finding(&stack, "backend_session")["verdict"],
        "ok",
        "{}",
        stack.logs()
    );

    // A restart: the stored refresh token is renewed once; nobody signs in again.
    let refreshes = stack.backend.refresh_requests();
    stack.agent.restart().expect("agent restarts");
    let (status, body) = register_push(&stack, &device, "ios-2").await;
    assert_eq!(status, 201, "{body}\n{}", stack.logs());
    assert_eq!(
        stack.backend.login_requests(),
        1,
        "no login after a restart"
    );
    assert_eq!(
        stack.backend.refresh_requests(),
        refreshes + 1,
        "one refresh at start-up, shared by the first request"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_session_user_only_routes_answer_a_502_that_says_to_sign_in() {
    // An install from before sessions: an API key, nobody signed in.
    let (stack, device) = stack_with(StackOptions {
        backend_login: BackendLogin::None,
        agent_backend_api_key: Some(BACKEND_API_KEY.into()),
        ..StackOptions::default()
    })
    .await;
    // The key still opens ArgusAI's ordinary routes (at a bcrypt each) ...
    let (status, _) = list_events(&stack, &device).await;
    assert_eq!(status, 200, "{}", stack.logs());
    assert_eq!(credential_seen(&stack, "/api/v1/events"), (None, true));
    // ... but not the user-only ones: a JSON 502 naming the fix, not ArgusAI's 401.
    let (status, body) = register_push(&stack, &device, "ios-1").await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "backend_session_missing", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("argus-relay backend login"), "{body}");
    assert!(body["error"]["request_id"].is_string(), "{body}");

    // status, the status CLI and doctor say so.
    let s = stack.agent.status().await;
    assert_eq!(s["backend"]["session"]["state"], "missing", "{s}");
    assert_eq!(s["backend"]["credential"], "api_key", "{s}");
    assert_eq!(s["status"], "degraded", "{s}");
    assert!(
        s["problems"].as_array().is_some_and(|p| p.iter().any(|p| p
            .as_str()
            .is_some_and(|p| p.contains("argus-relay backend login")))),
        "{s}"
    );
    let status_text = stack.agent.cli(&["status"]).expect("status");
    assert!(
        status_text.contains("not signed in to ArgusAI"),
        "{status_text}"
    );
    let finding = doctor_finding(&stack, "backend_session");
    assert_eq!(finding["verdict"], "fail", "{finding}");
    assert!(
        finding["fix"]
            .as_str()
            .is_some_and(|f| f.contains("argus-relay backend login")),
        "{finding}"
    );

    // The owner signs the running agent in: it takes the session up by itself.
    e2e::agent::Agent::backend_login(
        stack.agent.config_path(),
        DEFAULT_ADMIN_USERNAME,
        DEFAULT_ADMIN_PASSWORD,
    )
    .expect("backend login");
    wait_for_session(&stack, "active").await;
    let (status, body) = register_push(&stack, &device, "ios-1").await;
    assert_eq!(status, 201, "{body}\n{}", stack.logs());
    assert_eq!(
        credential_seen(&stack, "/api/v1/devices"),
        (Some(DEFAULT_ADMIN_USERNAME.to_owned()), false),
        "the session replaces the key"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_refused_and_nothing_is_stored() {
    let (stack, _device) = stack_with(StackOptions {
        backend_login: BackendLogin::None,
        ..StackOptions::default()
    })
    .await;
    let err = e2e::agent::Agent::backend_login(
        stack.agent.config_path(),
        DEFAULT_ADMIN_USERNAME,
        "not-the-password",
    )
    .expect_err("a wrong password fails");
    assert!(err.contains("ArgusAI refused the sign-in"), "{err}");
    assert_eq!(session_state(&stack).await["state"], "missing");
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_refused_by_argusai_are_renewed_once_for_all_concurrent_requests() {
    let (stack, device) = stack_with(StackOptions::default()).await;
    let (status, _) = list_events(&stack, &device).await;
    assert_eq!(status, 200, "{}", stack.logs());
    // ArgusAI gets a new JWT secret: every access token it issued is refused; the refresh token
    // still works.
    stack.backend.rotate_jwt_secret();
    let refreshes = stack.backend.refresh_requests();
    let phones: Vec<_> = (0..16)
        .map(|_| {
            let t = stack.tunnel().with_device(&device);
            tokio::spawn(async move { t.get("/api/v1/events?limit=1").await.status().as_u16() })
        })
        .collect();
    for p in phones {
        assert_eq!(p.await.expect("phone"), 200, "{}", stack.logs());
    }
    assert_eq!(
        stack.backend.refresh_requests(),
        refreshes + 1,
        "16 requests refused the same token share one refresh"
    );
    assert_eq!(stack.backend.login_requests(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_short_lived_token_is_renewed_ahead_for_a_crowd_of_phones() {
    // 6 s tokens: renewed by the agent with ~1.2 s left, while 16 phones keep asking.
    let lifetime = Duration::from_secs(6);
    let (stack, device) = stack_with(StackOptions {
        backend_access_token_lifetime: Some(lifetime),
        ..StackOptions::default()
    })
    .await;
    let run_for = Duration::from_secs(10);
    let start = Instant::now();
    let phones: Vec<_> = (0..16)
        .map(|_| {
            let t = stack.tunnel().with_device(&device);
            tokio::spawn(async move {
                let (mut ok, mut failed) = (0u32, Vec::new());
                while start.elapsed() < run_for {
                    let resp = t.get("/api/v1/events?limit=1").await;
                    match resp.status().as_u16() {
                        200 => ok += 1,
                        s => failed.push((s, resp.text().await.unwrap_or_default())),
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                (ok, failed)
            })
        })
        .collect();
    let mut total = 0;
    for p in phones {
        let (ok, failed) = p.await.expect("phone");
        assert!(failed.is_empty(), "{failed:?}\n{}", stack.logs());
        total += ok;
    }
    let refreshes = stack.backend.refresh_requests();
    // Start-up, then one ahead of each expiry: 10 s of 6 s tokens renewed at ~4.8 s is 2-4.
    assert!(
        (2..=4).contains(&refreshes),
        "{refreshes} refreshes for {total} requests\n{}",
        stack.logs()
    );
    assert!(total > 100, "the phones made {total} requests");
    assert_eq!(stack.backend.login_requests(), 1, "never a login");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_session_gets_one_refresh_then_a_502_naming_the_cause() {
    let (stack, device) = stack_with(StackOptions::default()).await;
    let (status, _) = list_events(&stack, &device).await;
    assert_eq!(status, 200, "{}", stack.logs());
    // The owner's sessions are revoked in ArgusAI and its tokens stop verifying.
    stack.backend.revoke_sessions();
    stack.backend.rotate_jwt_secret();
    let refreshes = stack.backend.refresh_requests();
    let phones: Vec<_> = (0..8)
        .map(|_| {
            let t = stack.tunnel().with_device(&device);
            tokio::spawn(async move {
                let resp = t.get("/api/v1/events?limit=1").await;
                (
                    resp.status().as_u16(),
                    resp.json::<Value>().await.unwrap_or(Value::Null),
                )
            })
        })
        .collect();
    for p in phones {
        let (status, body) = p.await.expect("phone");
        assert_eq!(status, 502, "{body}");
        assert_eq!(body["error"]["code"], "backend_session_refused", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("ArgusAI refused the agent's session")
                    && m.contains("argus-relay backend login")),
            "{body}"
        );
    }
    assert_eq!(
        stack.backend.refresh_requests(),
        refreshes + 1,
        "one refresh attempt"
    );
    // Later requests: the same answer at once, no further refresh, no login.
    let (status, body) = list_events(&stack, &device).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (502, &json!("backend_session_refused"))
    );
    assert_eq!(stack.backend.refresh_requests(), refreshes + 1);
    assert_eq!(stack.backend.login_requests(), 1);
    // Unauthenticated routes (thumbnails) keep working.
    let thumb = stack
        .backend
        .event_thumbnail_target(&stack.backend.event_ids()[0])
        .expect("thumbnail");
    let resp = stack.tunnel().with_device(&device).get(&thumb).await;
    assert_eq!(resp.status(), 200);

    let s = session_state(&stack).await;
    assert_eq!(s["state"], "refused", "{s}");
    let status_text = stack.agent.cli(&["status"]).expect("status");
    assert!(
        status_text
            .contains("ArgusAI refused the session of admin: run `argus-relay backend login`"),
        "{status_text}"
    );
    assert_eq!(doctor_finding(&stack, "backend_session")["verdict"], "fail");

    // Signing in again repairs it without a restart.
    e2e::agent::Agent::backend_login(
        stack.agent.config_path(),
        DEFAULT_ADMIN_USERNAME,
        DEFAULT_ADMIN_PASSWORD,
    )
    .expect("backend login");
    wait_for_session(&stack, "active").await;
    let (status, _) = list_events(&stack, &device).await;
    assert_eq!(status, 200, "{}", stack.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_streamed_body_is_not_sent_twice_but_the_session_is_renewed_for_the_next_try() {
    let (stack, device) = stack_with(StackOptions::default()).await;
    let (status, _) = list_events(&stack, &device).await;
    assert_eq!(status, 200, "{}", stack.logs());
    stack.backend.rotate_jwt_secret();
    let refreshes = stack.backend.refresh_requests();
    // A body of unknown length streams to ArgusAI and cannot be replayed after its 401.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(br#"{"device_id":"ios-9","#.to_vec()),
        Ok(br#""platform":"ios"}"#.to_vec()),
    ];
    let resp = stack
        .tunnel()
        .with_device(&device)
        .streamed(reqwest::Method::POST, "/api/v1/devices")
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 503, "{}", stack.logs());
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: Value = resp.json().await.expect("JSON error");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("send the request again")),
        "{body}"
    );
    assert_eq!(stack.backend.refresh_requests(), refreshes + 1);
    // The phone's retry goes through with the renewed session.
    let (status, body) = register_push(&stack, &device, "ios-9").await;
    assert_eq!(status, 201, "{body}");
}
