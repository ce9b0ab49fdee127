//! Security story: the owner's policy decides who gets in — by country, network, TLS version,
//! platform, app and OS version, scope and path — in the real Worker (workerd), with
//! `request.cf` as Cloudflare would set it; and every non-canonical path is refused before it
//! can reach home.

use serde_json::{json, Value};

use e2e::phone::{cf_blob, send_raw};
use e2e::signer::{EdgeSigner, Signing};
use e2e::stack::{Stack, StackOptions};

const POLICY: &str = r#"
version = 1
[geo]
deny_countries = ["T1", "KP"]
deny_asns = [64511]
min_tls_version = "1.2"
[devices]
platforms = ["ios", "android"]
min_app_version = "1.4.0"
min_os_version = { ios = "16.0" }
[paths]
allow = ["@default"]
deny = ["@default", "GET /api/v1/events/export"]
"#;

fn info(platform: &str, os: &str, app: &str) -> Value {
    json!({"name": format!("{platform} {os} {app}"), "platform": platform, "os_version": os, "app_version": app})
}

/// (name, token, request.cf, method, path, expected status, expected reason)
type Case<'a> = (
    &'a str,
    &'a str,
    Value,
    &'a str,
    &'a str,
    u16,
    Option<&'a str>,
);

#[tokio::test(flavor = "multi_thread")]
async fn each_policy_rule_allows_and_denies_at_the_edge() {
    let stack = Stack::start_with(StackOptions {
        policy: Some(POLICY.into()),
        ..StackOptions::default()
    })
    .await;
    let good = stack
        .pair_phone_with("owner", info("ios", "18.1", "1.4.0"))
        .await;
    let viewer = stack
        .pair_phone_with("viewer", info("android", "14", "2.0.0"))
        .await;
    let windows = stack
        .pair_phone_with("owner", info("windows", "11", "1.4.0"))
        .await;
    let old_app = stack
        .pair_phone_with("owner", info("ios", "18.1", "1.3.9"))
        .await;
    let old_os = stack
        .pair_phone_with("owner", info("ios", "15.2", "1.4.0"))
        .await;

    let us = cf_blob("US", 64496, "TLSv1.3");
    let cases: Vec<Case> = vec![
        (
            "allowed",
            &good.access_token,
            us.clone(),
            "GET",
            "/api/v1/events?limit=1",
            200,
            None,
        ),
        (
            "Tor",
            &good.access_token,
            cf_blob("T1", 64496, "TLSv1.3"),
            "GET",
            "/api/v1/events",
            403,
            Some("geo.country_denied"),
        ),
        (
            "denied country",
            &good.access_token,
            cf_blob("KP", 64496, "TLSv1.3"),
            "GET",
            "/api/v1/events",
            403,
            Some("geo.country_denied"),
        ),
        (
            "other country",
            &good.access_token,
            cf_blob("DE", 64496, "TLSv1.3"),
            "GET",
            "/api/v1/events?limit=1",
            200,
            None,
        ),
        (
            "denied ASN",
            &good.access_token,
            cf_blob("US", 64511, "TLSv1.3"),
            "GET",
            "/api/v1/events",
            403,
            Some("geo.asn_denied"),
        ),
        (
            "old TLS",
            &good.access_token,
            cf_blob("US", 64496, "TLSv1.1"),
            "GET",
            "/api/v1/events",
            403,
            Some("tls.version_too_old"),
        ),
        (
            "TLS 1.2",
            &good.access_token,
            cf_blob("US", 64496, "TLSv1.2"),
            "GET",
            "/api/v1/events?limit=1",
            200,
            None,
        ),
        (
            "platform",
            &windows.access_token,
            us.clone(),
            "GET",
            "/api/v1/events",
            403,
            Some("device.platform_not_allowed"),
        ),
        (
            "old app",
            &old_app.access_token,
            us.clone(),
            "GET",
            "/api/v1/events",
            403,
            Some("device.app_too_old"),
        ),
        (
            "old OS",
            &old_os.access_token,
            us.clone(),
            "GET",
            "/api/v1/events",
            403,
            Some("device.os_too_old"),
        ),
        (
            "android has no OS minimum",
            &viewer.access_token,
            us.clone(),
            "GET",
            "/api/v1/events?limit=1",
            200,
            None,
        ),
        (
            "viewer writes",
            &viewer.access_token,
            us.clone(),
            "POST",
            "/api/v1/events/e1/feedback",
            403,
            Some("scope.read_only"),
        ),
        (
            "denied path",
            &good.access_token,
            us.clone(),
            "GET",
            "/api/v1/events/export",
            403,
            Some("path.denied"),
        ),
        (
            "system is denied by default",
            &good.access_token,
            us.clone(),
            "GET",
            "/api/v1/system/settings",
            403,
            Some("path.denied"),
        ),
        (
            "not in the allowlist",
            &good.access_token,
            us.clone(),
            "GET",
            "/api/v1/logs",
            403,
            None,
        ),
    ];
    let before = stack.backend.requests().len();
    let mut allowed = 0;
    for (name, token, cf, method, path, status, reason) in cases {
        let phone = stack.phone().with_token(token).with_cf(cf);
        let resp = phone
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                path,
            )
            .send()
            .await
            .unwrap();
        let (s, body) = e2e::phone::Phone::json(resp).await;
        assert_eq!(s, status, "{name}: {body}");
        if let Some(reason) = reason {
            assert_eq!(body["error"]["reason"], reason, "{name}: {body}");
        }
        if s == 200 {
            allowed += 1;
        } else {
            assert!(body["error"]["code"].is_string(), "{name}: {body}");
            assert!(
                !body.to_string().contains("64511"),
                "denials name the rule, not the policy"
            );
        }
    }
    assert_eq!(
        stack.backend.requests().len() - before,
        allowed,
        "only allowed requests reached ArgusAI"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_non_canonical_path_is_refused_before_it_reaches_home() {
    let stack = Stack::start().await;
    let device = stack.pair_phone("owner").await;
    let auth = format!("Authorization: Bearer {}", device.access_token);
    let signer = EdgeSigner::for_agent(&stack.agent);
    let bearer = format!("Bearer {}", device.access_token);
    let targets = [
        "/api/v1/thumbnails/..%2fapp.db",
        "/api/v1/thumbnails/%2e%2e%2fapp.db",
        "/api/v1/thumbnails/..%5capp.db",
        "/api/v1/thumbnails/%252e%252e/app.db",
        "/api/v1/thumbnails/%c0%ae%c0%ae/app.db",
        "/api/v1/thumbnails/a%00.jpg",
        "/api/v1/thumbnails/x;/app.db",
        "/api/v1//events",
        "/api/v1/thumbnails/%E2%80%A4%E2%80%A4/app.db",
    ];
    stack.backend.clear_requests();
    for target in targets {
        let (status, text) = send_raw(
            &stack.edge_url(),
            &format!("GET {target} HTTP/1.1\r\n{auth}"),
        )
        .await;
        assert_eq!(status, 400, "edge: {target}\n{text}");
        assert!(
            text.contains("non_canonical_path"),
            "edge: {target}\n{text}"
        );
        // Straight to the agent with a valid edge signature: the agent refuses it too.
        let (status, body) = signer
            .send(
                "GET",
                target,
                &[("authorization", &bearer)],
                &Signing::default(),
            )
            .await;
        assert_eq!(status, 400, "agent: {target}: {body}");
    }
    // The raw `%2e%2e` that leaks ArgusAI's database: the WHATWG parser in the Worker resolves it
    // away (the phone gets a refusal, not the file); the agent sees it raw and refuses it.
    let (status, text) = send_raw(
        &stack.edge_url(),
        &format!(
            "GET {} HTTP/1.1\r\n{auth}\r\nMF-CF-Blob: {}",
            e2e::backend::TRAVERSAL_TARGET,
            cf_blob("US", 64496, "TLSv1.3")
        ),
    )
    .await;
    assert!(status == 400 || status == 403 || status == 404, "{text}");
    assert!(!text.contains("SQLite format"), "{text}");
    let (status, text) = signer
        .send_raw(
            "GET",
            e2e::backend::TRAVERSAL_TARGET,
            &[("authorization", &bearer)],
            &Signing::default(),
        )
        .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("non_canonical_path"), "{text}");
    assert!(
        stack
            .backend
            .requests()
            .iter()
            .all(|r| !r.target.contains("app.db")),
        "nothing touching app.db reached ArgusAI"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_answer_429_with_retry_after_per_ip_for_pairing_and_per_device_for_the_api() {
    let stack = Stack::start_with(StackOptions {
        rate_limits: vec![("PAIRING_LIMITER".into(), 12), ("DEVICE_LIMITER".into(), 5)],
        ..StackOptions::default()
    })
    .await;
    let a = stack.pair_phone("viewer").await;
    let b = stack.pair_phone("viewer").await;
    // Per device: `a` runs out, `b` is unaffected.
    let pa = stack.phone().with_token(&a.access_token);
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(pa.get("/api/v1/events?limit=1").await);
    }
    let limited = statuses
        .iter()
        .find(|r| r.status() == 429)
        .expect("device limited");
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 60);
    let pb = stack.phone().with_token(&b.access_token);
    assert_eq!(
        pb.get("/api/v1/events?limit=1").await.status(),
        200,
        "another device has its own budget"
    );
    // Per IP on the pairing routes (two pairings already used some of it).
    let phone = stack.phone();
    let mut hit = None;
    for i in 0..16 {
        let (s, body) = phone.get_json("/api/v1/mobile/auth/status/402918").await;
        if s == 429 {
            hit = Some((i, body));
            break;
        }
    }
    let (_, body) = hit.expect("pairing limited per IP");
    assert_eq!(body["error"]["code"], "rate_limited");
}

#[tokio::test(flavor = "multi_thread")]
async fn client_headers_that_could_fool_argusai_never_reach_it() {
    let stack = Stack::start().await;
    let device = stack.pair_phone("viewer").await;
    stack.backend.clear_requests();
    let resp = stack
        .phone()
        .with_token(&device.access_token)
        .request(reqwest::Method::GET, "/api/v1/events?limit=1")
        .header("cookie", "access_token=stolen-argus-session")
        .header("x-api-key", "stolen-argus-key")
        .header("x-forwarded-for", "203.0.113.99")
        .header("forwarded", "for=203.0.113.99")
        .header("x-real-ip", "203.0.113.99")
        .header("x-relay-device", "dev_admin")
        .header("user-agent", "testclient")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-request-id"));
    let seen = stack.backend.requests();
    let r = seen.iter().find(|r| r.path() == "/api/v1/events").unwrap();
    assert_eq!(r.header("cookie"), None);
    assert_eq!(r.header("x-api-key"), None);
    assert_eq!(
        r.header("authorization")
            .and_then(|a| stack.backend.user_of_authorization(a))
            .as_deref(),
        Some(e2e::backend::DEFAULT_ADMIN_USERNAME),
        "the agent's own session, not the phone's headers"
    );
    assert_eq!(r.header_all("x-forwarded-for").len(), 1);
    assert_eq!(
        r.header("x-forwarded-for"),
        Some("127.0.0.1"),
        "the connecting IP, not the spoofed one: {:?}",
        r.headers
    );
    assert_eq!(r.header("forwarded"), None);
    assert_eq!(r.header("x-real-ip"), None);
    assert!(
        r.headers.iter().all(|(k, _)| !k.starts_with("x-relay-")),
        "{:?}",
        r.headers
    );
    assert!(!r.header("user-agent").unwrap_or("").contains("testclient"));
}
