//! User story (operations): `argus-relay doctor` checks the chain from the outside in and says
//! in plain words what to fix. Every finding it can make is produced here by a real fault: a
//! Worker with the wrong secret, a tunnel that is down, ArgusAI down or refusing the agent's key,
//! a public URL that does not answer or answers for another installation, a clock that is off,
//! an invalid policy, a stopped agent.

use std::time::{Duration, SystemTime};

use e2e::cloudflared::{Tuning, TunnelOptions};
use e2e::process::free_port;
use e2e::stack::{Stack, StackOptions};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `argus-relay doctor --json ARGS`: (exit success, the findings by check name).
fn doctor(stack: &Stack, args: &[&str]) -> (bool, Value) {
    let mut all = vec!["doctor", "--json", "--timeout", "10"];
    all.extend_from_slice(args);
    let out = stack.agent.cli_output(&all);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "doctor output is not JSON ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let mut by_check = serde_json::Map::new();
    for f in report["findings"].as_array().expect("findings") {
        by_check.insert(f["check"].as_str().unwrap().to_owned(), f.clone());
    }
    assert_eq!(
        out.status.success(),
        report["ok"] == Value::Bool(true),
        "exit status matches the verdict"
    );
    (out.status.success(), Value::Object(by_check))
}

fn verdict<'a>(findings: &'a Value, check: &str) -> &'a str {
    findings[check]["verdict"].as_str().unwrap_or("")
}

fn says(findings: &Value, check: &str, words: &str) -> bool {
    let f = &findings[check];
    format!("{} {}", f["summary"], f["fix"]).contains(words)
}

fn example_policy() -> String {
    e2e::workspace_root()
        .join("docs/example-policy.toml")
        .display()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_relay_passes_every_check() {
    let stack = Stack::start_with(StackOptions {
        tunnel: Some(TunnelOptions::default()),
        ..StackOptions::default()
    })
    .await;
    stack
        .wait_status(Duration::from_secs(10), "connected", |s| {
            s["tunnel"]["connected"] == true
        })
        .await;
    let edge = stack.edge_url();
    let policy = example_policy();
    let (ok, f) = doctor(&stack, &["--public-url", &edge, "--policy", &policy]);
    assert!(ok, "{f:#}\n{}", stack.logs());
    for check in [
        "public_url",
        "edge_signature",
        "clock",
        "tunnel",
        "agent",
        "backend",
        "backend_session",
        "policy",
    ] {
        assert_eq!(verdict(&f, check), "ok", "{check}: {f:#}");
    }
    assert!(says(&f, "public_url", "answers as this agent"), "{f:#}");
    assert!(says(&f, "edge_signature", "accepted it"), "{f:#}");

    // The human form says the same.
    let out = stack
        .agent
        .cli_output(&["doctor", "--public-url", &edge, "--policy", &policy]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("No problems found."), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_with_the_wrong_secret_is_named() {
    let stack = Stack::start_with(StackOptions {
        worker_secret: Some("ab".repeat(32)),
        ..StackOptions::default()
    })
    .await;
    let edge = stack.edge_url();
    let (ok, f) = doctor(&stack, &["--public-url", &edge]);
    assert!(!ok);
    assert_eq!(verdict(&f, "public_url"), "ok", "{f:#}");
    assert_eq!(verdict(&f, "edge_signature"), "fail", "{f:#}");
    assert!(
        says(
            &f,
            "edge_signature",
            "different secret than this agent's (this agent counted it)"
        ),
        "{f:#}"
    );
    assert!(
        says(
            &f,
            "edge_signature",
            "wrangler secret put RELAY_SIGNING_SECRET"
        ),
        "{f:#}"
    );

    // The agent's status counts the refusals by reason and says what they mean.
    let s = stack.agent.status().await;
    assert!(
        s["edge"]["rejected"]["by_reason"]["signature.mismatch"].as_u64() >= Some(1),
        "{s:#}"
    );
    assert_eq!(s["edge"]["signed_requests"], 0);
    assert!(
        s["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().contains("RELAY_SIGNING_SECRET")),
        "{s:#}"
    );
}

/// The agent's status `problems` and `notes`, as text.
fn problems_and_notes(s: &Value) -> (Vec<String>, Vec<String>) {
    let list = |k: &str| -> Vec<String> {
        s[k].as_array()
            .unwrap_or_else(|| panic!("no {k}: {s:#}"))
            .iter()
            .map(|p| p.as_str().unwrap().to_owned())
            .collect()
    };
    (list("problems"), list("notes"))
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_requests_do_not_make_the_status_blame_the_secret_or_the_clock() {
    use argus_shared::signature::BodyBinding;
    use e2e::signer::{signed_headers, EdgeSigner, Signing};

    let stack = Stack::start_with(StackOptions {
        without_worker: true,
        ..StackOptions::default()
    })
    .await;
    // The edge's requests (signed with the real secret) are accepted.
    let real = EdgeSigner::for_agent(&stack.agent);
    let (status, _) = real
        .send("GET", "/api/v1/health", &[], &Signing::default())
        .await;
    assert_eq!(status, 200);

    // Anyone who finds the tunnel hostname: signatures made with a secret of their own, with
    // current, old and future timestamps; one without any; the real one with a flipped byte.
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let target = "/api/v1/health";
    for skew_secs in [0, -3600, 3600] {
        let how = Signing {
            skew_secs,
            ..Signing::default()
        };
        let mut rb = http.get(format!("{}{target}", stack.agent.tunnel_url()));
        for (k, v) in signed_headers(&[7u8; 32], "GET", target, BodyBinding::of_bytes(b""), &how) {
            rb = rb.header(k, v);
        }
        let resp = rb.send().await.unwrap();
        assert_eq!(resp.status(), 401);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body["error"]["reason"], "signature.mismatch",
            "{skew_secs}: {body}"
        );
    }
    let (s, body) = real
        .send(
            "GET",
            target,
            &[],
            &Signing {
                tamper: true,
                skew_secs: -3600,
                ..Signing::default()
            },
        )
        .await;
    assert_eq!(
        (s, body["error"]["reason"].as_str()),
        (401, Some("signature.mismatch"))
    );
    let (s, _) = real
        .send(
            "GET",
            target,
            &[],
            &Signing {
                unsigned: true,
                ..Signing::default()
            },
        )
        .await;
    assert_eq!(s, 401);

    // Counted, and reported as information: nothing about the owner's secret or clock.
    let st = stack.agent.status().await;
    assert_eq!(st["edge"]["rejected"]["total"], 5, "{st:#}");
    let (problems, notes) = problems_and_notes(&st);
    assert!(problems.is_empty(), "{st:#}");
    assert_eq!(st["status"], "ok", "{st:#}");
    assert!(
        notes
            .iter()
            .any(|n| n.contains("5 requests without a valid edge signature")),
        "{st:#}"
    );
    let text = stack.agent.cli_output(&["status"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Notes:"), "{text}");
    assert!(!text.contains("RELAY_SIGNING_SECRET"), "{text}");

    // A request signed with the real secret but an hour old — only the secret's holder can
    // make one — does say the clock is off.
    let (s, body) = real
        .send(
            "GET",
            target,
            &[],
            &Signing {
                skew_secs: -3600,
                ..Signing::default()
            },
        )
        .await;
    assert_eq!(
        (s, body["error"]["reason"].as_str()),
        (401, Some("signature.stale"))
    );
    let (problems, _) = problems_and_notes(&stack.agent.status().await);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("clock is off"), "{problems:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tunnel_that_is_down_is_found() {
    let stack = Stack::start_with(StackOptions {
        tunnel: Some(TunnelOptions {
            initial: "not-ready".into(),
            // Long enough that a slow machine's doctor run still finds it connecting (after
            // this the supervisor restarts cloudflared, and the state reads `backoff`).
            tuning: Tuning {
                ready_timeout_secs: 120,
                ..Tuning::default()
            },
            ..TunnelOptions::default()
        }),
        ..StackOptions::default()
    })
    .await;
    let edge = stack.edge_url();
    let (ok, f) = doctor(&stack, &["--public-url", &edge]);
    assert!(!ok);
    assert_eq!(verdict(&f, "public_url"), "ok", "the Worker answers: {f:#}");
    assert_eq!(verdict(&f, "edge_signature"), "fail", "{f:#}");
    assert!(
        says(
            &f,
            "edge_signature",
            "cannot reach the agent through the tunnel"
        ),
        "{f:#}"
    );
    assert_eq!(verdict(&f, "tunnel"), "fail", "{f:#}");
    assert!(says(&f, "tunnel", "the tunnel is connecting"), "{f:#}");
    assert!(says(&f, "tunnel", "port 7844"), "{f:#}");
    assert_eq!(verdict(&f, "backend"), "ok", "{f:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn argusai_down_or_refusing_the_key_is_found() {
    let dead = format!("http://127.0.0.1:{}", free_port());
    let stack = Stack::start_with(StackOptions {
        backend_url: Some(dead),
        without_worker: true,
        ..StackOptions::default()
    })
    .await;
    let (ok, f) = doctor(&stack, &[]);
    assert!(!ok);
    assert_eq!(verdict(&f, "backend"), "fail", "{f:#}");
    assert!(says(&f, "backend", "does not answer"), "{f:#}");
    let s = stack.agent.status().await;
    assert_eq!(s["backend"]["reachable"], false);
    assert_eq!(s["status"], "degraded");

    let stack = Stack::start_with(StackOptions {
        agent_backend_api_key: Some("not-the-key".into()),
        without_worker: true,
        ..StackOptions::default()
    })
    .await;
    let (_, f) = doctor(&stack, &[]);
    assert_eq!(verdict(&f, "backend"), "fail", "{f:#}");
    assert!(says(&f, "backend", "refuses the agent's API key"), "{f:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_url_an_invalid_policy_and_a_stopped_agent_are_found() {
    let mut stack = Stack::start_with(StackOptions {
        without_worker: true,
        ..StackOptions::default()
    })
    .await;
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let bad_policy = stack.dir.path().join("bad-policy.toml");
    std::fs::write(
        &bad_policy,
        "version = 1\n[geo]\nallow_countries = [\"not a country\"]\n",
    )
    .unwrap();
    let bad = bad_policy.display().to_string();
    let (ok, f) = doctor(&stack, &["--public-url", &nowhere, "--policy", &bad]);
    assert!(!ok);
    assert_eq!(verdict(&f, "public_url"), "fail", "{f:#}");
    assert!(says(&f, "public_url", "cannot be reached"), "{f:#}");
    assert_eq!(verdict(&f, "edge_signature"), "skip");
    assert_eq!(verdict(&f, "clock"), "skip");
    assert_eq!(verdict(&f, "tunnel"), "warn", "no [cloudflared]: {f:#}");
    assert!(says(&f, "tunnel", "argus-relay tunnel config"), "{f:#}");
    assert_eq!(verdict(&f, "agent"), "ok");
    assert_eq!(verdict(&f, "policy"), "fail", "{f:#}");

    stack.agent.stop();
    let (_, f) = doctor(&stack, &["--public-url", &nowhere]);
    assert_eq!(verdict(&f, "agent"), "fail", "{f:#}");
    assert!(says(&f, "agent", "systemctl start argus-relay"), "{f:#}");
    // With the agent stopped, the stored session is what doctor can tell.
    assert_eq!(verdict(&f, "backend_session"), "skip", "{f:#}");
    assert!(
        says(&f, "backend_session", "signed in to ArgusAI as admin"),
        "{f:#}"
    );
    assert_eq!(verdict(&f, "tunnel"), "skip");
}

/// A one-route HTTP server: `GET /api/v1/health` → `body` with `Date: date`.
async fn stub(body: Value, date: SystemTime) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let body = body.to_string();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nDate: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    httpdate::fmt_http_date(date),
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_skewed_clock_and_another_installation_are_found() {
    let stack = Stack::start_with(StackOptions {
        without_worker: true,
        ..StackOptions::default()
    })
    .await;
    let s = stack.agent.status().await;
    let ours = s["instance_id"].as_str().unwrap().to_owned();

    // The edge's clock (its Date header) 5 minutes behind ours.
    let url = stub(
        serde_json::json!({"status": "ok", "service": "argus-relay", "instance_id": ours}),
        SystemTime::now() - Duration::from_secs(300),
    )
    .await;
    let (ok, f) = doctor(&stack, &["--public-url", &url]);
    assert!(!ok);
    assert_eq!(verdict(&f, "public_url"), "ok", "{f:#}");
    assert_eq!(verdict(&f, "clock"), "fail", "{f:#}");
    assert!(says(&f, "clock", "300 s ahead of the edge's"), "{f:#}");
    assert!(says(&f, "clock", "timedatectl set-ntp true"), "{f:#}");

    // Another installation answers at the public URL.
    let url = stub(
        serde_json::json!({"status": "ok", "service": "argus-relay", "instance_id": "0123456789abcdef"}),
        SystemTime::now(),
    )
    .await;
    let (_, f) = doctor(&stack, &["--public-url", &url]);
    assert_eq!(verdict(&f, "public_url"), "fail", "{f:#}");
    assert!(
        says(
            &f,
            "public_url",
            "another argus-relay agent (instance 0123456789abcdef)"
        ),
        "{f:#}"
    );
    assert_eq!(verdict(&f, "clock"), "ok", "{f:#}");
}
