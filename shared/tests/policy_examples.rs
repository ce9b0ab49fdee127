//! The documented example policy parses, and the three checks compose as the Worker and the
//! agent run them: canonicalize → classify → evaluate.

use argus_shared::path::canonicalize;
use argus_shared::policy::{Decision, DenyReason, DeviceFacts, ImageQuality, Policy, RequestFacts};
use argus_shared::route::{classify, BackendClass, PublicRoute, Route};

const EXAMPLE: &str = include_str!("../../docs/example-policy.toml");
const DOC: &str = include_str!("../../docs/policy.md");

fn phone<'a>(method: &'a str, path: &'a str) -> RequestFacts<'a> {
    RequestFacts {
        method,
        decoded_path: path,
        country: Some("US"),
        asn: Some(7922),
        tls_version: Some("TLSv1.3"),
        device: Some(DeviceFacts {
            platform: "ios",
            app_version: Some("1.4.2"),
            os_version: Some("17.5"),
            scope_read_only: false,
        }),
    }
}

fn denial(p: &Policy, f: &RequestFacts<'_>) -> Option<&'static str> {
    match p.evaluate(f) {
        Decision::Allow => None,
        Decision::Deny(d) => Some(d.as_str()),
    }
}

#[test]
fn example_policy_parses_and_behaves_as_commented() {
    let p = match Policy::from_toml(EXAMPLE) {
        Ok(p) => p,
        Err(e) => panic!("docs/example-policy.toml does not parse:\n{e}"),
    };
    assert!(p.warnings().is_empty(), "{:?}", p.warnings());
    assert_eq!(p.default_image_quality(), Some(ImageQuality::Mobile));
    assert_eq!(p.image_quality_for("ios"), Some(ImageQuality::Mobile));
    assert_eq!(p.image_quality_for("Android"), Some(ImageQuality::High));

    assert_eq!(denial(&p, &phone("GET", "/api/v1/events")), None);
    assert_eq!(denial(&p, &phone("GET", "/api/v1/digests/d1")), None);
    assert_eq!(
        denial(&p, &phone("GET", "/api/v1/events/e1/video")),
        Some("path.denied")
    );
    assert_eq!(
        denial(&p, &phone("GET", "/api/v1/events/export")),
        Some("path.denied")
    );
    let mut f = phone("GET", "/api/v1/events");
    f.country = Some("FR");
    assert_eq!(denial(&p, &f), Some("geo.country_not_allowed"));
    f.country = Some("GB");
    f.asn = Some(64511);
    assert_eq!(denial(&p, &f), Some("geo.asn_denied"));
    f.asn = None;
    f.tls_version = Some("TLSv1.1");
    assert_eq!(denial(&p, &f), Some("tls.version_too_old"));

    let mut f = phone("GET", "/api/v1/events");
    f.device = Some(DeviceFacts {
        platform: "android",
        app_version: Some("1.3.0"),
        os_version: Some("14"),
        scope_read_only: false,
    });
    assert_eq!(denial(&p, &f), Some("device.app_too_old"));
}

#[test]
fn the_database_leak_is_closed_at_every_step() {
    // Verified against ArgusAI: this returns app.db without authentication.
    let err = canonicalize("/api/v1/thumbnails/%2e%2e/app.db").unwrap_err();
    assert_eq!(err.reason(), "dot_segment");
    assert_eq!(err.status(), 400);
    for attack in [
        "/api/v1/thumbnails/../app.db",
        "/api/v1/thumbnails/%252e%252e/app.db",
        "/api/v1/thumbnails/..%2fapp.db",
        "/api/v1/thumbnails/%c0%ae%c0%ae/app.db",
        "/api/v1/thumbnails/2025-01-01/..%5c..%5capp.db",
    ] {
        assert!(canonicalize(attack).is_err(), "{attack}");
    }
}

#[test]
fn pipeline_for_ordinary_requests() {
    let policy = Policy::default_policy();

    let t = canonicalize("/api/v1/thumbnails/2025-01-01/abc.jpg").unwrap();
    assert_eq!(
        classify("GET", &t.decoded_path),
        Route::Backend {
            class: BackendClass::Image
        }
    );
    assert!(policy.evaluate(&phone("GET", &t.decoded_path)).is_allow());

    let t = canonicalize("/api/v1/events?limit=20&offset=0").unwrap();
    assert_eq!(
        classify("GET", &t.decoded_path),
        Route::Backend {
            class: BackendClass::Api
        }
    );
    assert!(policy.evaluate(&phone("GET", &t.decoded_path)).is_allow());

    let t = canonicalize("/api/v1/mobile/auth/status/123456").unwrap();
    assert_eq!(
        classify("GET", &t.decoded_path),
        Route::Public(PublicRoute::MobileStatus)
    );
    let public = RequestFacts {
        device: None,
        ..phone("GET", &t.decoded_path)
    };
    assert!(policy.evaluate(&public).is_allow());

    // Encoded letters cannot sneak past the refusal: routing sees the decoded path.
    let t = canonicalize("/api/v1/%73ystem/tunnel/stop").unwrap();
    assert_eq!(
        classify("POST", &t.decoded_path),
        Route::Refused("route.system_tunnel")
    );
    assert_eq!(
        denial(&policy, &phone("POST", &t.decoded_path)),
        Some("path.denied")
    );
}

#[test]
fn policy_doc_lists_every_reason_code_and_default_rule() {
    for r in DenyReason::ALL.map(DenyReason::as_str) {
        assert!(
            DOC.contains(&format!("`{r}`")),
            "docs/policy.md lacks `{r}`"
        );
    }
    for rule in argus_shared::policy::DEFAULT_ALLOW
        .iter()
        .chain(argus_shared::policy::DEFAULT_DENY)
    {
        assert!(
            DOC.contains(&format!("`{rule}`")),
            "docs/policy.md lacks `{rule}`"
        );
    }
    assert!(DOC.contains("config.policy_invalid"));
    assert!(DOC.contains("argus-relay policy check"));
}

/// Not a timed assertion: `cargo test -p argus-shared --release --test policy_examples -- --ignored --nocapture`
#[test]
#[ignore]
fn evaluation_cost() {
    let p = Policy::from_toml(EXAMPLE).unwrap();
    let paths = [
        "/api/v1/events",
        "/api/v1/thumbnails/2025-01-01/abc.jpg",
        "/api/v1/context/entities/n1/thumbnail",
        "/ws/stream/3",
        "/api/v1/system/tunnel/stop",
        "/api/v1/unknown/path/that/matches/nothing",
    ];
    let n = 200_000;
    let start = std::time::Instant::now();
    let mut allowed = 0usize;
    for i in 0..n {
        let f = phone("GET", paths[i % paths.len()]);
        if std::hint::black_box(&p).evaluate(&f).is_allow() {
            allowed += 1;
        }
    }
    let per = start.elapsed() / n as u32;
    println!("evaluate: {per:?} per request ({allowed} allowed)");
}
