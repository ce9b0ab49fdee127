//! User story (tunnel lifecycle): the tunnel comes back on its own, and the relay never claims
//! what it cannot prove. The agent supervises a stand-in cloudflared (`stand-in-cloudflared`,
//! told by a control file to flap, hang, crash or never connect) and reports its state.
//!
//! Timings printed with `--nocapture` (`TIMING …` lines) are measurements, not assertions beyond
//! generous bounds: probes every 250 ms, backoff 250 ms doubling to 2 s, hang after 2 s without
//! an answer, not-ready restart after 4 s (see `e2e::cloudflared::Tuning`).

use std::time::{Duration, Instant};

use e2e::cloudflared::{process_alive, Tuning, TunnelKind, TunnelOptions};
use e2e::stack::{Stack, StackOptions};
use serde_json::Value;

fn tunnel_stack(tunnel: TunnelOptions) -> StackOptions {
    StackOptions {
        tunnel: Some(tunnel),
        without_worker: true,
        ..StackOptions::default()
    }
}

fn connected(s: &Value) -> bool {
    s["tunnel"]["connected"] == Value::Bool(true)
}

fn state(s: &Value) -> &str {
    s["tunnel"]["state"].as_str().unwrap_or("")
}

fn last_error(s: &Value) -> String {
    s["tunnel"]["last_error"]["message"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread")]
async fn the_agent_reports_connected_only_when_ready_says_so() {
    let stack = Stack::start_with(tunnel_stack(TunnelOptions {
        initial: "not-ready".into(),
        tuning: Tuning {
            ready_timeout_secs: 30,
            ..Tuning::default()
        },
        ..TunnelOptions::default()
    }))
    .await;
    let cf = stack.cloudflared();

    // cloudflared runs but has no edge connection: never "connected", for as long as it lasts.
    let (s, _) = stack
        .wait_status(WAIT, "cloudflared started", |s| {
            cf.starts() == 1 && s["tunnel"]["checked_secs_ago"].is_u64()
        })
        .await;
    assert_eq!(s["tunnel"]["monitoring"], "supervised");
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        let s = stack.agent.status().await;
        assert!(!connected(&s), "claims connected without /ready: {s:#}");
        assert_eq!(state(&s), "connecting", "{s:#}");
        assert_eq!(s["tunnel"]["ready_connections"], 0);
        assert_eq!(s["status"], "degraded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // /ready says 200: connected, with what cloudflared reported.
    cf.set("ready");
    let (s, took) = stack.wait_status(WAIT, "connected", connected).await;
    println!("TIMING ready → reported connected: {took:?}");
    assert_eq!(state(&s), "connected");
    assert_eq!(s["tunnel"]["ready_connections"], 4);
    assert!(
        s["tunnel"]["connector_id"]
            .as_str()
            .is_some_and(|c| c.contains("standin")),
        "{s:#}"
    );
    assert_eq!(s["tunnel"]["process"]["pid"], cf.last_pid().unwrap());
    assert_eq!(s["status"], "ok", "{s:#}");
    let (s, _) = stack
        .wait_status(WAIT, "version", |s| {
            s["versions"]["cloudflared"].is_string()
        })
        .await;
    assert_eq!(s["versions"]["cloudflared"], "2025.1.0-standin");

    // The edge connection drops while the process lives: not connected, at once.
    cf.set("not-ready");
    let (s, took) = stack
        .wait_status(WAIT, "not connected", |s| !connected(s))
        .await;
    println!("TIMING /ready 503 → reported not connected: {took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(state(&s), "reconnecting");
    assert_eq!(s["tunnel"]["ready_connections"], 0);
    assert!(s["tunnel"]["connector_id"].is_null(), "{s:#}");
    assert!(last_error(&s).contains("lost its connections"), "{s:#}");
    assert!(s["problems"][0]
        .as_str()
        .unwrap()
        .contains("tunnel is not connected"));

    cf.set("ready");
    let (s, _) = stack.wait_status(WAIT, "connected again", connected).await;
    assert_eq!(s["tunnel"]["reconnects"], 1);
    assert_eq!(s["tunnel"]["restarts"], 0, "cloudflared itself reconnected");
    assert_eq!(cf.starts(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_is_restarted_with_backoff_and_reported_honestly() {
    let stack = Stack::start_with(tunnel_stack(TunnelOptions::default())).await;
    let cf = stack.cloudflared();
    stack.wait_status(WAIT, "connected", connected).await;
    let first_pid = cf.last_pid().unwrap();

    // One crash.
    let crashed_at = Instant::now();
    cf.set("crash-once");
    let (s, took) = stack
        .wait_status(WAIT, "crash noticed", |s| {
            s["tunnel"]["restarts"] == 1 || state(s) == "backoff"
        })
        .await;
    println!("TIMING crash → reported ({}): {took:?}", state(&s));
    assert!(!connected(&s), "{s:#}");
    let (s, took) = stack
        .wait_status(WAIT, "connected after the crash", |s| {
            connected(s) && s["tunnel"]["restarts"] == 1
        })
        .await;
    let _ = took;
    println!("TIMING crash → connected again: {:?}", crashed_at.elapsed());
    assert_ne!(cf.last_pid(), Some(first_pid));
    assert!(!process_alive(first_pid));
    assert_eq!(s["tunnel"]["reconnects"], 1);
    let err = last_error(&s);
    assert!(err.contains("cloudflared exited (exit status 1"), "{err}");
    assert!(
        err.contains("stand-in crash requested"),
        "its own last words: {err}"
    );

    // Crashing over and over: restarted without end, the delay growing to its cap, never
    // reported connected, and the status says when the next attempt is.
    cf.set("crash");
    let until = Instant::now() + Duration::from_secs(7);
    let mut saw_backoff_with_eta = false;
    while Instant::now() < until {
        let s = stack.agent.status().await;
        // Once the agent has seen the loop (a second restart), never "connected" again.
        assert!(
            !connected(&s) || s["tunnel"]["restarts"].as_u64() < Some(2),
            "{s:#}"
        );
        if state(&s) == "backoff" && s["tunnel"]["next_attempt_in_ms"].as_u64().is_some() {
            saw_backoff_with_eta = true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(saw_backoff_with_eta);
    let starts: Vec<u128> = cf.events_of("start").iter().map(|e| e.at_ms).collect();
    let gaps: Vec<u128> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    println!("TIMING gaps between starts while crashing (ms): {gaps:?}");
    let crash_gaps = &gaps[1..];
    assert!(crash_gaps.len() >= 4, "kept restarting: {gaps:?}");
    assert!(
        crash_gaps.iter().all(|g| *g <= 2000 + 1500),
        "never beyond the 2 s cap (plus start time): {gaps:?}"
    );
    assert!(
        crash_gaps.iter().rev().take(2).all(|g| *g >= 1000),
        "grown to at least half the cap: {gaps:?}"
    );
    let s = stack.agent.status().await;
    assert!(s["tunnel"]["restarts"].as_u64().unwrap() >= 5, "{s:#}");

    // And back as soon as cloudflared can connect again.
    cf.set("ready");
    let (_, took) = stack.wait_status(WAIT, "connected", connected).await;
    println!("TIMING fixed → connected (within one backoff ≤ 2 s): {took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_cloudflared_is_detected_killed_and_restarted() {
    let stack = Stack::start_with(tunnel_stack(TunnelOptions::default())).await;
    let cf = stack.cloudflared();
    stack.wait_status(WAIT, "connected", connected).await;
    let hung_pid = cf.last_pid().unwrap();

    let hung_at = Instant::now();
    cf.set("hang-once");
    let (_, took) = stack
        .wait_status(WAIT, "not connected", |s| !connected(s))
        .await;
    println!("TIMING hang → reported not connected: {took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    let (s, _) = stack
        .wait_status(WAIT, "restarted", |s| s["tunnel"]["restarts"] == 1)
        .await;
    println!(
        "TIMING hang → killed and restarted: {:?}",
        hung_at.elapsed()
    );
    assert!(last_error(&s).contains("(hung)"), "{s:#}");
    assert!(!process_alive(hung_pid), "the hung process is gone");
    // It ignored SIGTERM, so it took SIGKILL.
    assert!(cf
        .events_of("term-ignored")
        .iter()
        .any(|e| e.pid == hung_pid));
    let (s, _) = stack.wait_status(WAIT, "connected again", connected).await;
    println!("TIMING hang → connected again: {:?}", hung_at.elapsed());
    assert_ne!(s["tunnel"]["process"]["pid"], hung_pid);
    assert_eq!(s["tunnel"]["reconnects"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flapping_tunnel_counts_its_reconnects() {
    let stack = Stack::start_with(tunnel_stack(TunnelOptions {
        initial: "flap 800".into(),
        ..TunnelOptions::default()
    }))
    .await;
    let cf = stack.cloudflared();
    stack.wait_status(WAIT, "connected", connected).await;
    let (s, took) = stack
        .wait_status(Duration::from_secs(15), "three reconnects", |s| {
            s["tunnel"]["reconnects"].as_u64().unwrap_or(0) >= 3
        })
        .await;
    println!("TIMING three reconnects of a tunnel flapping every 800 ms: {took:?}");
    assert_eq!(s["tunnel"]["restarts"], 0, "{s:#}");
    assert_eq!(cf.starts(), 1);
    let ups = cf.events_of("connected").len() as u64;
    let reconnects = s["tunnel"]["reconnects"].as_u64().unwrap();
    assert!(reconnects <= ups, "never more reconnects than real ones");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cloudflared_that_never_connects_is_never_reported_connected() {
    let stack = Stack::start_with(tunnel_stack(TunnelOptions {
        initial: "not-ready".into(),
        tuning: Tuning {
            ready_timeout_secs: 2,
            ..Tuning::default()
        },
        ..TunnelOptions::default()
    }))
    .await;
    let cf = stack.cloudflared();
    let until = Instant::now() + Duration::from_secs(7);
    let mut states = std::collections::BTreeSet::new();
    while Instant::now() < until {
        let s = stack.agent.status().await;
        assert!(!connected(&s), "{s:#}");
        assert_eq!(s["tunnel"]["ready_connections"], 0);
        states.insert(state(&s).to_owned());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s = stack.agent.status().await;
    assert!(cf.starts() >= 2, "restarted after the ready timeout");
    assert!(
        last_error(&s).contains("not connected to Cloudflare for 2 s"),
        "{s:#}"
    );
    assert!(states.contains("connecting"), "{states:?}");
    assert!(
        !states.contains("reconnecting"),
        "it never was connected: {states:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_owner_sees_the_tunnel_through_the_worker_and_viewers_do_not() {
    let stack = Stack::start_with(StackOptions {
        tunnel: Some(TunnelOptions::default()),
        ..StackOptions::default()
    })
    .await;
    let cf = stack.cloudflared();
    stack.wait_status(WAIT, "connected", connected).await;
    let owner = stack.pair_phone("owner").await;
    let viewer = stack.pair_phone("viewer").await;
    let phone = stack.phone().with_token(&owner.access_token);

    let (status, s) = phone.get_json("/api/v1/relay/status").await;
    assert_eq!(status, 200, "{s}\n{}", stack.logs());
    assert_eq!(s["status"], "ok", "{s:#}");
    assert_eq!(s["tunnel"]["state"], "connected");
    assert_eq!(s["tunnel"]["connected"], true);
    assert_eq!(s["tunnel"]["ready_connections"], 4);
    assert_eq!(s["tunnel"]["hostname"], "tunnel.test");
    assert!(
        s["tunnel"].get("process").is_none(),
        "no pids or internal addresses for phones: {s:#}"
    );
    // This very request came through the Worker and the tunnel, signed.
    assert!(
        s["edge"]["last_request_secs_ago"].as_u64().unwrap() <= 2,
        "{s:#}"
    );
    assert!(s["edge"]["signed_requests"].as_u64().unwrap() >= 3);
    assert_eq!(s["edge"]["rejected"]["total"], 0);
    assert_eq!(s["devices"]["paired"], 2);
    assert!(s["keys"]["signing_kid"]
        .as_str()
        .is_some_and(|k| !k.is_empty()));
    assert_eq!(s["versions"]["agent"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s["backend"]["reachable"], true);

    let (status, body) = stack
        .phone()
        .with_token(&viewer.access_token)
        .get_json("/api/v1/relay/status")
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "insufficient_scope");

    // ArgusAI's own /health stays local (the agent's backend check uses it); the relay's is
    // /api/v1/health.
    let (status, body) = phone.get_json("/health").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["reason"], "route.backend_health");
    let (status, body) = stack.phone().get_json("/api/v1/health").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["instance_id"], s["instance_id"]);

    // The tunnel drops: the phone gets an honest error, the owner's CLI sees why.
    cf.set("not-ready");
    let (s, _) = stack
        .wait_status(WAIT, "not connected", |s| !connected(s))
        .await;
    assert_eq!(state(&s), "reconnecting");
    let (status, body) = phone.get_json("/api/v1/relay/status").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    let human = stack.agent.cli(&["status"]).unwrap();
    assert!(human.contains("Tunnel:   reconnecting"), "{human}");

    cf.set("ready");
    stack.wait_status(WAIT, "connected", connected).await;
    let got = e2e::stack::eventually(WAIT, || async {
        let (status, s) = phone.get_json("/api/v1/relay/status").await;
        (status == 200).then_some(s)
    })
    .await
    .unwrap_or_else(|| panic!("status through the Worker again\n{}", stack.logs()));
    assert_eq!(got["tunnel"]["reconnects"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_locally_managed_tunnel_runs_from_the_written_config() {
    let stack = Stack::start_with(tunnel_stack(TunnelOptions {
        kind: TunnelKind::LocalConfig,
        ..TunnelOptions::default()
    }))
    .await;
    let cf = stack.cloudflared();
    stack.wait_status(WAIT, "connected", connected).await;
    assert_eq!(cf.events_of("start")[0].what, "start config");
    let yml = std::fs::read_to_string(cf.dir.join("cloudflared.yml")).unwrap();
    assert!(
        yml.contains(&format!("service: \"http://{}\"", cf.service)),
        "{yml}"
    );
    assert!(yml.contains("service: \"http_status:404\""), "{yml}");

    // Whatever comes through the tunnel without the Worker's signature is refused, and counted.
    let (status, body) = e2e::phone::Phone::new(&cf.origin_url())
        .get_json("/api/v1/health")
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["reason"], "signature.missing");
    let s = stack.agent.status().await;
    assert_eq!(s["edge"]["rejected"]["by_reason"]["signature.missing"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_stops_cloudflared_with_sigterm_then_sigkill() {
    for ignore_term in [false, true] {
        let mut stack = Stack::start_with(tunnel_stack(TunnelOptions {
            ignore_term,
            ..TunnelOptions::default()
        }))
        .await;
        stack.wait_status(WAIT, "connected", connected).await;
        let cf_pid = stack.cloudflared().last_pid().unwrap();
        let started = Instant::now();
        let exit = stack
            .agent
            .process_mut()
            .unwrap()
            .terminate(Duration::from_secs(15));
        let took = started.elapsed();
        println!("TIMING agent shutdown (cloudflared ignores SIGTERM: {ignore_term}): {took:?}");
        assert!(exit.is_some_and(|s| s.success()), "agent exited cleanly");
        assert!(!process_alive(cf_pid), "cloudflared is gone");
        let events: Vec<String> = stack
            .cloudflared()
            .events()
            .into_iter()
            .filter(|e| e.pid == cf_pid)
            .map(|e| e.what)
            .collect();
        if ignore_term {
            assert!(events.contains(&"term-ignored".to_owned()), "{events:?}");
            assert!(
                took >= Duration::from_secs(2),
                "waited stop_timeout: {took:?}"
            );
        } else {
            assert!(events.contains(&"term".to_owned()), "{events:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cloudflared_that_cannot_start_is_retried_and_explained() {
    let stack = Stack::start_with(tunnel_stack(TunnelOptions {
        binary: Some("/nonexistent/cloudflared".into()),
        ..TunnelOptions::default()
    }))
    .await;
    let (s, _) = stack
        .wait_status(WAIT, "backoff", |s| state(s) == "backoff")
        .await;
    let err = last_error(&s);
    assert!(err.contains("could not be started"), "{err}");
    assert!(err.contains("No such file"), "{err}");
    assert!(!connected(&s));

    // Something else holds the metrics address: its answers could not be told from
    // cloudflared's, so no cloudflared is started (or trusted) there.
    let stack = Stack::start_with(tunnel_stack(TunnelOptions {
        initial: "crash".into(),
        ..TunnelOptions::default()
    }))
    .await;
    let metrics = stack.cloudflared().metrics;
    let squatter =
        e2e::stack::eventually(WAIT, || async { std::net::TcpListener::bind(metrics).ok() })
            .await
            .expect("the metrics address is free between crashes");
    let (s, _) = stack
        .wait_status(WAIT, "refused to start", |s| {
            last_error(s).contains("already in use")
        })
        .await;
    assert!(!connected(&s));
    assert_eq!(state(&s), "backoff");
    drop(squatter);
}
