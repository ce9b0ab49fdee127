use super::*;
use crate::api::ErrorCode;

fn facts<'a>(method: &'a str, path: &'a str) -> RequestFacts<'a> {
    RequestFacts {
        method,
        decoded_path: path,
        country: Some("US"),
        asn: Some(7922),
        tls_version: Some("TLSv1.3"),
        device: Some(DeviceFacts {
            platform: "ios",
            app_version: Some("1.5.0"),
            os_version: Some("17.2"),
            scope_read_only: false,
        }),
    }
}

fn reason(p: &Policy, f: &RequestFacts<'_>) -> Option<&'static str> {
    match p.evaluate(f) {
        Decision::Allow => None,
        Decision::Deny(d) => {
            assert_eq!(d.error_code().status(), 403);
            Some(d.as_str())
        }
    }
}

fn policy(text: &str) -> Policy {
    match Policy::from_toml(text) {
        Ok(p) => p,
        Err(e) => panic!("policy refused:\n{e}"),
    }
}

fn errors(text: &str) -> Vec<String> {
    match Policy::from_toml(text) {
        Ok(p) => panic!("policy accepted: {p:?}"),
        Err(e) => e.to_string().lines().map(str::to_string).collect(),
    }
}

#[test]
fn versions_compare_numerically() {
    let v = |s| Version::parse(s).unwrap();
    assert!(v("1.10.0") > v("1.9"));
    assert!(v("1.4") == v("1.4.0"));
    assert!(v("2") > v("1.99.99.99"));
    assert!(v("16.0") < v("16.0.1"));
    for bad in [
        "",
        "1.",
        ".1",
        "1..2",
        "v1",
        "1.2.3.4.5",
        "1.2-beta",
        "+1",
        "1.a",
        " 1",
        "9999999999",
    ] {
        assert_eq!(Version::parse(bad), None, "{bad:?}");
    }
    let r = |s| Version::parse_reported(s);
    assert_eq!(r("1.4.0"), Some(v("1.4.0")));
    assert_eq!(r(" 1.4.0 "), Some(v("1.4.0")));
    assert_eq!(r("1.4.0+77"), Some(v("1.4.0")));
    assert_eq!(r("1.4.0 (77)"), Some(v("1.4.0")));
    assert!(r("1.4.0-beta.2").unwrap() < v("1.4.0"));
    assert!(r("1.4.0-beta.2").unwrap() > v("1.3.9"));
    assert_eq!(r("1.2.3.4.5"), Some(v("1.2.3.4")));
    for bad in ["", "beta", "1.x", "x1", "1..2", "1.4.0b"] {
        assert_eq!(r(bad), None, "{bad:?}");
    }
}

#[test]
fn tls_versions() {
    assert_eq!(
        TlsVersion::from_reported("TLSv1.3"),
        Some(TlsVersion::Tls13)
    );
    assert_eq!(
        TlsVersion::from_reported("TLSv1.2"),
        Some(TlsVersion::Tls12)
    );
    assert_eq!(
        TlsVersion::from_reported("TLSv1.1"),
        Some(TlsVersion::Tls11)
    );
    assert_eq!(TlsVersion::from_reported("TLSv1"), Some(TlsVersion::Tls10));
    assert_eq!(
        TlsVersion::from_reported("TLSv1_3"),
        Some(TlsVersion::Tls13)
    );
    assert_eq!(TlsVersion::from_reported("SSLv3"), Some(TlsVersion::Ssl));
    assert_eq!(TlsVersion::from_reported(""), None);
    assert_eq!(TlsVersion::from_reported("TLSv2"), None);
    assert_eq!(TlsVersion::from_reported("é"), None);
}

#[test]
fn path_rule_matching() {
    let r = |s| PathRule::compile(s).unwrap();
    let get = method_bit("GET");
    let post = method_bit("POST");
    assert!(r("/api/v1/events").matches(get, "/api/v1/events"));
    assert!(r("/api/v1/events").matches(get, "/api/v1/events/"));
    assert!(!r("/api/v1/events").matches(get, "/api/v1/events/1"));
    assert!(!r("/api/v1/events").matches(get, "/api/v1/Events"));
    assert!(r("/api/v1/events/*").matches(get, "/api/v1/events/1"));
    assert!(!r("/api/v1/events/*").matches(get, "/api/v1/events"));
    assert!(!r("/api/v1/events/*").matches(get, "/api/v1/events/1/2"));
    assert!(r("/api/v1/thumbnails/**").matches(get, "/api/v1/thumbnails/a/b/c"));
    assert!(r("/api/v1/thumbnails/**").matches(get, "/api/v1/thumbnails"));
    assert!(!r("/api/v1/thumbnails/**").matches(get, "/api/v1/thumbnailsx"));
    assert!(r("/**").matches(get, "/anything/at/all"));
    assert!(r("/**").matches(get, "/"));
    assert!(r("/").matches(get, "/"));
    assert!(!r("/").matches(get, "/a"));
    assert!(r("GET /x").matches(get, "/x"));
    assert!(!r("GET /x").matches(post, "/x"));
    assert!(!r("GET /x").matches(0, "/x"));
    assert!(r("/x").matches(0, "/x"));
    assert!(r("GET, POST /x").matches(post, "/x"));
    assert_eq!(r("POST,GET /x").source, "GET,POST /x");
    assert_eq!(r("/").prefix, "/");
    assert_eq!(r("/**").prefix, "/");
    assert_eq!(r("/*").prefix, "/");
    assert_eq!(r("/docs/**").prefix, "/docs");
    assert_eq!(r("/a/b").prefix, "/a/b");
    assert_eq!(r("/a/*/c").prefix, "/a/");
    assert!(r("/*").matches(get, "/x"));
    assert!(r("/*/b").matches(get, "/x/b"));
    assert!(!r("/a/b").matches(get, "/a/bc"));
    assert!(!r("/a/b").matches(get, "/a"));
}

#[test]
fn path_rule_errors() {
    for (src, needle) in [
        ("", "empty pattern"),
        ("api/v1", "starting with '/'"),
        ("FETCH /a", "unknown method \"FETCH\""),
        ("get /a", "upper-case"),
        ("/a/", "does not end in '/'"),
        ("/a//b", "empty segment"),
        ("/a/../b", "'.' and '..'"),
        ("/a/**/b", "must be the last segment"),
        ("/a/*.jpg", "whole segment"),
        ("/a?b=1", "cannot appear"),
        ("/a%2fb", "cannot appear"),
        ("/a\\b", "cannot appear"),
        ("/a b", "cannot appear"),
    ] {
        match PathRule::compile(src) {
            Ok(r) => panic!("{src:?} compiled: {r:?}"),
            Err(e) => assert!(e.contains(needle), "{src:?}: {e}"),
        }
    }
}

#[test]
fn minimal_document_uses_the_defaults() {
    let p = policy("version = 1");
    assert_eq!(p, Policy::default_policy());
    assert!(p.warnings().is_empty(), "{:?}", p.warnings());
    assert_eq!(p.default_image_quality(), None);
}

#[test]
fn geo_allow_countries() {
    let p = policy("version = 1\n[geo]\nallow_countries = [\"US\", \"CA\"]");
    assert_eq!(reason(&p, &facts("GET", "/api/v1/events")), None);
    let mut f = facts("GET", "/api/v1/events");
    f.country = Some("ca");
    assert_eq!(reason(&p, &f), None);
    f.country = Some("FR");
    assert_eq!(reason(&p, &f), Some("geo.country_not_allowed"));
    f.country = None;
    assert_eq!(reason(&p, &f), Some("geo.country_not_allowed"));
    f.country = Some("");
    assert_eq!(reason(&p, &f), Some("geo.country_not_allowed"));
    f.country = Some("T1");
    assert_eq!(reason(&p, &f), Some("geo.country_not_allowed"));
    // Public routes (no device) are subject to geo rules too.
    f.device = None;
    f.method = "POST";
    f.decoded_path = "/api/v1/devices/pair";
    assert_eq!(reason(&p, &f), Some("geo.country_not_allowed"));

    let p = policy("version = 1\n[geo]\nallow_countries = [\"US\", \"XX\"]");
    f.country = None;
    assert_eq!(reason(&p, &f), None);
}

#[test]
fn geo_deny_countries_and_asns() {
    let p =
        policy("version = 1\n[geo]\ndeny_countries = [\"T1\", \"XX\"]\ndeny_asns = [64496, 64497]");
    let mut f = facts("GET", "/api/v1/events");
    assert_eq!(reason(&p, &f), None);
    f.country = Some("T1");
    assert_eq!(reason(&p, &f), Some("geo.country_denied"));
    f.country = None;
    assert_eq!(reason(&p, &f), Some("geo.country_denied"));
    f.country = Some("DE");
    f.asn = Some(64497);
    assert_eq!(reason(&p, &f), Some("geo.asn_denied"));
    f.asn = None;
    assert_eq!(reason(&p, &f), None);
}

#[test]
fn min_tls() {
    let p = policy("version = 1\n[geo]\nmin_tls_version = \"1.2\"");
    let mut f = facts("GET", "/api/v1/events");
    assert_eq!(reason(&p, &f), None);
    f.tls_version = Some("TLSv1.2");
    assert_eq!(reason(&p, &f), None);
    f.tls_version = Some("TLSv1.1");
    assert_eq!(reason(&p, &f), Some("tls.version_too_old"));
    f.tls_version = Some("TLSv1");
    assert_eq!(reason(&p, &f), Some("tls.version_too_old"));
    f.tls_version = Some("SSLv3");
    assert_eq!(reason(&p, &f), Some("tls.version_too_old"));
    f.tls_version = Some("");
    assert_eq!(reason(&p, &f), Some("tls.version_unknown"));
    f.tls_version = None;
    assert_eq!(reason(&p, &f), Some("tls.version_unknown"));
    // Without a minimum, an unknown version is fine.
    assert_eq!(reason(&Policy::default_policy(), &f), None);
}

#[test]
fn device_rules() {
    let p = policy(
        "version = 1\n[devices]\nplatforms = [\"ios\", \"android\"]\nmin_app_version = \"1.4.0\"\n\
         min_os_version = { ios = \"16.0\", android = \"12\" }",
    );
    let base = facts("GET", "/api/v1/events");
    assert_eq!(reason(&p, &base), None);
    let with = |d: DeviceFacts<'static>| RequestFacts {
        device: Some(d),
        ..base
    };
    let dev = DeviceFacts {
        platform: "ios",
        app_version: Some("1.4.0"),
        os_version: Some("16.0"),
        scope_read_only: false,
    };
    assert_eq!(reason(&p, &with(dev)), None);
    assert_eq!(
        reason(
            &p,
            &with(DeviceFacts {
                platform: "IOS",
                ..dev
            })
        ),
        None
    );
    assert_eq!(
        reason(
            &p,
            &with(DeviceFacts {
                platform: "web",
                ..dev
            })
        ),
        Some("device.platform_not_allowed")
    );
    assert_eq!(
        reason(
            &p,
            &with(DeviceFacts {
                app_version: Some("1.3.9"),
                ..dev
            })
        ),
        Some("device.app_too_old")
    );
    assert_eq!(
        reason(
            &p,
            &with(DeviceFacts {
                app_version: Some("1.10"),
                ..dev
            })
        ),
        None
    );
    assert_eq!(
        reason(
            &p,
            &with(DeviceFacts {
                app_version: Some("1.4.0-rc.1"),
                ..dev
            })
        ),
        Some("device.app_too_old")
    );
    assert_eq!(
        reason(
            &p,
            &with(DeviceFacts {
                app_version: None,
                ..dev
            })
        ),
        Some("device.app_version_unknown")
    );
    assert_eq!(
        reason(
            &p,
            &with(DeviceFacts {
                app_version: Some("latest"),
                ..dev
            })
        ),
        Some("device.app_version_unknown")
    );
    assert_eq!(
        reason(
            &p,
            &with(DeviceFacts {
                os_version: Some("15.7.9"),
                ..dev
            })
        ),
        Some("device.os_too_old")
    );
    assert_eq!(
        reason(
            &p,
            &with(DeviceFacts {
                os_version: None,
                ..dev
            })
        ),
        Some("device.os_version_unknown")
    );
    let android = DeviceFacts {
        platform: "android",
        app_version: Some("1.4.1"),
        os_version: Some("12"),
        scope_read_only: false,
    };
    assert_eq!(reason(&p, &with(android)), None);
    assert_eq!(
        reason(
            &p,
            &with(DeviceFacts {
                os_version: Some("11.0.1"),
                ..android
            })
        ),
        Some("device.os_too_old")
    );
    // No device (public route): device rules do not apply.
    let public = RequestFacts {
        method: "POST",
        decoded_path: "/api/v1/mobile/auth/pair",
        device: None,
        ..base
    };
    assert_eq!(reason(&p, &public), None);
}

#[test]
fn os_minimum_only_for_listed_platforms() {
    let p = policy("version = 1\n[devices]\nmin_os_version = { ios = \"16\" }");
    let f = RequestFacts {
        device: Some(DeviceFacts {
            platform: "android",
            app_version: None,
            os_version: None,
            scope_read_only: false,
        }),
        ..facts("GET", "/api/v1/events")
    };
    assert_eq!(reason(&p, &f), None);
}

#[test]
fn read_only_scope() {
    let p = Policy::default_policy();
    let viewer = |method: &'static str, path: &'static str| RequestFacts {
        device: Some(DeviceFacts {
            platform: "ios",
            app_version: None,
            os_version: None,
            scope_read_only: true,
        }),
        ..facts(method, path)
    };
    assert_eq!(reason(&p, &viewer("GET", "/api/v1/events")), None);
    assert_eq!(reason(&p, &viewer("GET", "/ws")), None);
    assert_eq!(
        reason(&p, &viewer("POST", "/api/v1/events/e1/feedback")),
        Some("scope.read_only")
    );
    // Self-service routes pass here; the agent allows them only on the device itself.
    assert_eq!(reason(&p, &viewer("DELETE", "/api/v1/devices/d1")), None);
    assert_eq!(
        reason(&p, &viewer("PUT", "/api/v1/devices/d1/rename")),
        None
    );
    assert_eq!(
        reason(&p, &viewer("POST", "/api/v1/mobile/auth/revoke")),
        None
    );
    assert_eq!(
        reason(&p, &viewer("PUT", "/api/v1/devices/d1/preferences")),
        Some("scope.read_only")
    );
    assert_eq!(
        reason(&p, &viewer("PATCH", "/api/v1/notifications/n1/read")),
        Some("scope.read_only")
    );
    let d = match p.evaluate(&viewer("POST", "/api/v1/events/e1/feedback")) {
        Decision::Deny(d) => d,
        Decision::Allow => panic!("allowed"),
    };
    assert_eq!(d.error_code(), ErrorCode::InsufficientScope);
    // With full scope the same request passes.
    assert_eq!(
        reason(&p, &facts("POST", "/api/v1/events/e1/feedback")),
        None
    );
}

#[test]
fn deny_wins_over_allow() {
    let p = policy(
        "version = 1\n[paths]\nallow = [\"/api/v1/**\"]\ndeny = [\"/api/v1/events/*/video\", \"DELETE /api/v1/events/*\"]",
    );
    assert_eq!(reason(&p, &facts("GET", "/api/v1/events/e1")), None);
    assert_eq!(
        reason(&p, &facts("GET", "/api/v1/events/e1/video")),
        Some("path.denied")
    );
    assert_eq!(
        reason(&p, &facts("GET", "/api/v1/events/e1/video/")),
        Some("path.denied")
    );
    assert_eq!(
        reason(&p, &facts("DELETE", "/api/v1/events/e1")),
        Some("path.denied")
    );
    assert_eq!(reason(&p, &facts("GET", "/ws")), Some("path.not_allowed"));
    let (allow, deny) = p.path_rules();
    assert_eq!(allow, vec!["/api/v1/**"]);
    assert_eq!(
        deny,
        vec!["/api/v1/events/*/video", "DELETE /api/v1/events/*"]
    );
}

#[test]
fn at_default_expands() {
    let p = policy(
        "version = 1\n[paths]\nallow = [\"@default\", \"GET /api/v1/digests/*\"]\ndeny = [\"@default\", \"/api/v1/summaries/**\"]",
    );
    assert_eq!(reason(&p, &facts("GET", "/api/v1/digests/d1")), None);
    assert_eq!(reason(&p, &facts("GET", "/api/v1/events")), None);
    assert_eq!(
        reason(&p, &facts("GET", "/api/v1/summaries")),
        Some("path.denied")
    );
    assert_eq!(reason(&p, &facts("GET", "/metrics")), Some("path.denied"));
    assert!(p.warnings().is_empty());
}

#[test]
fn default_deny_keeps_system_changes_and_secrets_from_a_wide_allow() {
    let p = policy("version = 1\n[paths]\nallow = [\"/api/v1/**\"]\ndeny = [\"@default\"]");
    for (m, path) in [
        ("GET", "/api/v1/system/ai-processing-stream"),
        ("GET", "/api/v1/system/ai-stats"),
        ("GET", "/api/v1/system/storage"),
    ] {
        assert_eq!(reason(&p, &facts(m, path)), None, "{m} {path}");
    }
    for (m, path) in [
        ("POST", "/api/v1/system/backup"),
        ("GET", "/api/v1/system/backup/20250101/download"),
        ("PUT", "/api/v1/system/ai-models/openai"),
        ("GET", "/api/v1/system/settings"),
        ("GET", "/api/v1/system/settings/"),
    ] {
        assert_eq!(
            reason(&p, &facts(m, path)),
            Some("path.denied"),
            "{m} {path}"
        );
    }
}

#[test]
fn default_policy_denies_the_dangerous() {
    let p = Policy::default_policy();
    for (m, path) in [
        ("GET", "/api/v1/system/settings"),
        ("POST", "/api/v1/system/tunnel/stop"),
        ("POST", "/api/v1/system/tunnel/start"),
        ("GET", "/api/v1/system/backup/20250101/download"),
        ("GET", "/api/v1/system/backup/list"),
        ("GET", "/api/v1/system"),
        ("POST", "/api/v1/system"),
        ("POST", "/api/v1/system/restore"),
        ("POST", "/api/v1/system/test-key"),
        ("PUT", "/api/v1/system/settings"),
        ("DELETE", "/api/v1/system/data"),
        ("GET", "/api/v1/system/smtp/settings"),
        ("GET", "/api/v1/system/debug/ai-keys"),
        ("GET", "/api/v1/system/tunnel/status"),
        ("HEAD", "/api/v1/system/ai-processing-stream"),
        ("OPTIONS", "/api/v1/system/ai-processing-stream"),
        ("GET", "/docs"),
        ("GET", "/docs/"),
        ("GET", "/docs/oauth2-redirect"),
        ("GET", "/redoc"),
        ("GET", "/openapi.json"),
        ("GET", "/metrics"),
        ("GET", "/api/v1/metrics"),
        ("GET", "/health"),
        ("POST", "/api/v1/auth/login"),
        ("POST", "/api/v1/auth/change-password"),
        ("POST", "/api/v1/api-keys"),
        ("POST", "/api/v1/users"),
        ("POST", "/api/v1/mobile/auth/confirm"),
        ("GET", "/api/v1/mobile/auth/pending"),
        ("GET", "/api/v1/logs/download"),
        ("GET", "/api/v1/homekit/qrcode"),
        ("GET", "/api/v1/integrations/mqtt/config"),
        ("GET", "/api/v1/protect/controllers"),
        ("DELETE", "/api/v1/devices/inactive"),
    ] {
        assert_eq!(
            reason(&p, &facts(m, path)),
            Some("path.denied"),
            "{m} {path}"
        );
    }
    for (m, path) in [
        ("GET", "/"),
        ("DELETE", "/api/v1/events/e1"),
        ("DELETE", "/api/v1/events/bulk"),
        ("POST", "/api/v1/cameras"),
        ("DELETE", "/api/v1/cameras/c1"),
        ("PUT", "/api/v1/cameras/c1"),
        ("GET", "/api/v1/alert-rules"),
        ("POST", "/api/v1/push/test"),
        ("HEAD", "/api/v1/events"),
        ("GET", "/api/v1/thumbnails/2025-01-01"),
        ("GET", "/api/v1/thumbnails/a/b/c"),
        ("GET", "/ws/other"),
        ("DELETE", "/api/v1/notifications"),
    ] {
        assert_eq!(
            reason(&p, &facts(m, path)),
            Some("path.not_allowed"),
            "{m} {path}"
        );
    }
}

#[test]
fn default_policy_allows_the_app() {
    let p = Policy::default_policy();
    for (m, path) in [
        ("POST", "/api/v1/devices/pair"),
        ("POST", "/api/v1/mobile/auth/pair"),
        ("GET", "/api/v1/mobile/auth/status/123456"),
        ("POST", "/api/v1/mobile/auth/exchange"),
        ("POST", "/api/v1/mobile/auth/refresh"),
        ("POST", "/api/v1/mobile/auth/revoke"),
        ("GET", "/.well-known/jwks.json"),
        ("GET", "/api/v1/health"),
        ("GET", "/api/v1/relay/status"),
        ("GET", "/api/v1/devices"),
        ("POST", "/api/v1/devices"),
        ("DELETE", "/api/v1/devices/d1"),
        ("PUT", "/api/v1/devices/d1"),
        ("PUT", "/api/v1/devices/d1/rename"),
        ("PUT", "/api/v1/devices/d1/token"),
        ("PUT", "/api/v1/devices/d1/preferences"),
        ("GET", "/api/v1/events"),
        ("GET", "/api/v1/events/"),
        ("GET", "/api/v1/events/recent"),
        ("GET", "/api/v1/events/123e4567-e89b-12d3-a456-426614174000"),
        ("GET", "/api/v1/events/e1/thumbnail"),
        ("GET", "/api/v1/events/e1/frames"),
        ("GET", "/api/v1/events/e1/frames/2"),
        ("GET", "/api/v1/events/e1/video"),
        ("POST", "/api/v1/events/e1/feedback"),
        ("GET", "/api/v1/events/stats/aggregate"),
        ("GET", "/api/v1/thumbnails/2025-01-01/abc.jpg"),
        ("GET", "/api/v1/motion-events"),
        ("GET", "/api/v1/cameras"),
        ("GET", "/api/v1/cameras/c1"),
        ("GET", "/api/v1/cameras/c1/preview"),
        ("GET", "/api/v1/cameras/c1/stream/snapshot"),
        ("GET", "/api/v1/cameras/c1/stream/info"),
        ("GET", "/api/v1/context/entities"),
        ("GET", "/api/v1/context/entities/n1"),
        ("GET", "/api/v1/context/entities/n1/thumbnail"),
        ("GET", "/api/v1/notifications"),
        ("PATCH", "/api/v1/notifications/mark-all-read"),
        ("PATCH", "/api/v1/notifications/n1/read"),
        ("DELETE", "/api/v1/notifications/n1"),
        ("GET", "/api/v1/summaries/daily"),
        ("GET", "/ws"),
        ("GET", "/ws/stream/3"),
        ("GET", "/api/v1/system/ai-processing-stream"),
    ] {
        assert_eq!(reason(&p, &facts(m, path)), None, "{m} {path}");
    }
}

#[test]
fn default_rules_compile() {
    let mut errors = Vec::new();
    compile_defaults(DEFAULT_ALLOW, "allow", &mut errors);
    compile_defaults(DEFAULT_DENY, "deny", &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(Policy::default_policy().allow.len(), DEFAULT_ALLOW.len());
}

#[test]
fn parse_errors_name_the_field() {
    assert_eq!(
        errors("version = 1\n[geo]\nallow_countries = [\"US\", \"CA\", \"USA\"]"),
        vec!["geo.allow_countries[2]: \"USA\" is not a 2-letter country code"]
    );
    let e = errors("version = 1\n[geo]\ndeny_countries = [\"UK\", \"us\", \"1A\"]");
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(e[0].starts_with("geo.deny_countries[0]: \"UK\" is not an ISO 3166-1 alpha-2 country code (the United Kingdom is \"GB\")"), "{e:?}");
    assert_eq!(
        e[1],
        "geo.deny_countries[1]: \"us\" must be upper-case (\"US\")"
    );
    assert!(
        e[2].starts_with("geo.deny_countries[2]: \"1A\" is not a 2-letter country code"),
        "{e:?}"
    );
    assert_eq!(
        errors("version = 1\n[geo]\nallow_countries = [\"US\"]\ndeny_countries = [\"T1\"]"),
        vec!["geo: allow_countries and deny_countries are both set; use one"]
    );
    assert_eq!(
        errors("version = 1\n[geo]\nallow_countries = []"),
        vec!["geo.allow_countries: is empty, which would refuse every request (omit it to allow every country)"]
    );
    assert_eq!(
        errors("version = 1\n[geo]\nmin_tls_version = \"TLSv1.2\""),
        vec!["geo.min_tls_version: \"TLSv1.2\" is not one of \"1.0\", \"1.1\", \"1.2\", \"1.3\""]
    );
    assert_eq!(
        errors("version = 1\n[geo]\ndeny_asns = [0]"),
        vec!["geo.deny_asns[0]: 0 is not an AS number"]
    );
    assert_eq!(
        errors("version = 2"),
        vec!["version: unsupported version 2 (this build understands 1)"]
    );
    assert_eq!(
        errors("version = 1\n[devices]\nmin_app_version = \"1.4.0-beta\""),
        vec!["devices.min_app_version: \"1.4.0-beta\" is not a version: 1 to 4 dot-separated numbers (e.g. \"1.4.0\", \"16\")"]
    );
    assert_eq!(
        errors("version = 1\n[devices]\nmin_os_version = { ios = \"sixteen\" }"),
        vec!["devices.min_os_version.ios: \"sixteen\" is not a version: 1 to 4 dot-separated numbers (e.g. \"1.4.0\", \"16\")"]
    );
    let e = errors("version = 1\n[devices]\nplatforms = [\"iOS\"]");
    assert!(
        e[0].starts_with("devices.platforms[0]: \"iOS\" is not a platform name"),
        "{e:?}"
    );
    assert_eq!(
        errors("version = 1\n[devices]\nplatforms = []"),
        vec!["devices.platforms: is empty, which would refuse every device (omit it to allow every platform)"]
    );
    let e = errors("version = 1\n[paths]\nallow = [\"/api/v1/events\", \"/api/v1/*.jpg\"]\ndeny = [\"FETCH /x\"]");
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[0].starts_with("paths.allow[1]: \"/api/v1/*.jpg\": a wildcard is a whole segment"),
        "{e:?}"
    );
    assert!(
        e[1].starts_with("paths.deny[0]: unknown method \"FETCH\""),
        "{e:?}"
    );
    let e = errors("version = 1\n[paths]\nallow = []");
    assert!(e[0].starts_with("paths.allow: is empty"), "{e:?}");
    assert_eq!(
        errors("version = 1\n[images]\ndefault_quality = \"ultra\""),
        vec!["images.default_quality: \"ultra\" is not one of \"original\", \"high\", \"mobile\", \"low\""]
    );
}

#[test]
fn syntax_and_schema_errors() {
    for (text, needle) in [
        ("version = 1\nfoo = 2", "unknown field `foo`"),
        (
            "version = 1\n[geo]\nallow_country = [\"US\"]",
            "unknown field `allow_country`",
        ),
        (
            "version = 1\n[devices]\nmin_app = \"1\"",
            "unknown field `min_app`",
        ),
        (
            "version = 1\n[paths]\nallows = []",
            "unknown field `allows`",
        ),
        ("version = 1\n[paths]\ndeny = []", "missing field `allow`"),
        ("version = 1\n[tls]\nmin = \"1.2\"", "unknown field `tls`"),
        ("[geo]", "missing field `version`"),
        ("version = \"1\"", "invalid type"),
        ("version = 1\n[geo]\ndeny_asns = [-1]", "invalid value"),
        ("version = 1\n[geo\n", "line 2"),
        ("", "missing field `version`"),
    ] {
        match Policy::from_toml(text) {
            Ok(_) => panic!("{text:?} accepted"),
            Err(e @ PolicyError::Syntax(_)) => {
                assert!(e.to_string().contains(needle), "{text:?}: {e}");
                assert!(e.field_errors().is_empty());
                assert_eq!(e.reason(), "config.policy_invalid");
            }
            Err(e) => panic!("{text:?}: expected a syntax error, got {e}"),
        }
    }
}

#[test]
fn warnings_for_locked_out_relay_routes() {
    let p = policy("version = 1\n[paths]\nallow = [\"GET /api/v1/events\"]");
    let w = p.warnings();
    assert!(
        w.iter().any(|w| w.contains("POST /api/v1/devices/pair")),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|w| w.contains("POST /api/v1/mobile/auth/refresh")),
        "{w:?}"
    );
    let p = policy(
        "version = 1\n[devices]\nplatforms = [\"ios\"]\nmin_os_version = { android = \"12\" }",
    );
    let w = p.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].starts_with("devices.min_os_version.android"), "{w:?}");
}

#[test]
fn image_quality() {
    let p = policy("version = 1\n[images]\ndefault_quality = \"mobile\"");
    assert_eq!(p.default_image_quality(), Some(ImageQuality::Mobile));
    assert!(
        p.image_webp_allowed(),
        "WebP is on unless the policy turns it off"
    );
    assert!(Policy::default_policy().image_webp_allowed());
    assert!(!policy("version = 1\n[images]\nwebp = false").image_webp_allowed());
    assert_eq!(p.image_quality_for("ios"), Some(ImageQuality::Mobile));
    let p = policy(
        "version = 1\n[images]\ndefault_quality = \"high\"\nplatform_quality = { ios = \"mobile\", android = \"original\" }",
    );
    assert_eq!(p.image_quality_for("iOS"), Some(ImageQuality::Mobile));
    assert_eq!(p.image_quality_for("android"), Some(ImageQuality::Original));
    assert_eq!(p.image_quality_for("web"), Some(ImageQuality::High));
    assert_eq!(Policy::default_policy().image_quality_for("ios"), None);
    assert_eq!(
        errors("version = 1\n[images]\nplatform_quality = { ios = \"tiny\", \"I OS\" = \"low\" }")
            .len(),
        2
    );
    for q in ImageQuality::ALL {
        assert_eq!(ImageQuality::parse(q.as_str()), Some(q));
    }
}
