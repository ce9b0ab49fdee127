//! The router: which route goes where, and the checks each class gets, through the router over a
//! provisioned agent whose backend does not answer: a request that passed every check
//! of the agent ends in `bad_gateway`.

use hyper::{Method, StatusCode};

use super::{error_code, error_reason, request, TestAgent};
use crate::base::http::{RequestContext, Via};
use crate::domain::store::Scope;

#[tokio::test]
async fn public_routes_need_no_token() {
    let agent = TestAgent::new();
    let (status, health) = agent
        .phone(request(Method::GET, "/api/v1/health", None, None))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["service"], "argus-relay");
    assert_eq!(health["instance_id"], agent.state.instance_id.as_str());
    assert_eq!(health["fingerprint"], agent.state.lan_fingerprint.as_str());
    let (status, jwks) = agent
        .phone(request(Method::GET, "/.well-known/jwks.json", None, None))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn agent_and_backend_routes_need_a_device_token() {
    let agent = TestAgent::new();
    for (method, path) in [
        (Method::GET, "/api/v1/devices"),
        (Method::POST, "/api/v1/mobile/auth/revoke"),
        (Method::GET, "/api/v1/events"),
        (Method::GET, "/api/v1/cameras"),
    ] {
        let (status, body) = agent.phone(request(method.clone(), path, None, None)).await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::UNAUTHORIZED, "unauthenticated"),
            "{path}"
        );
        let (status, body) = agent
            .phone(request(method, path, Some("not.a.jwt"), None))
            .await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::UNAUTHORIZED, "invalid_token"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn refused_and_non_canonical_paths_never_reach_a_handler() {
    let agent = TestAgent::new();
    let owner = agent.pair(Scope::Owner, "o").await;
    let o = Some(owner.access_token.as_str());
    let (status, body) = agent
        .phone(request(Method::POST, "/api/v1/system/tunnel/stop", o, None))
        .await;
    assert_eq!(
        (status, error_reason(&body)),
        (StatusCode::NOT_FOUND, "route.system_tunnel")
    );
    let (status, body) = agent.phone(request(Method::GET, "/docs", o, None)).await;
    assert_eq!(
        (status, error_reason(&body)),
        (StatusCode::NOT_FOUND, "route.docs")
    );
    let (status, body) = agent
        .phone(request(Method::GET, "/api/v1/events/../devices", o, None))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "non_canonical_path")
    );
}

#[tokio::test]
async fn a_viewer_reads_through_the_relay_but_never_writes() {
    let agent = TestAgent::new();
    let viewer = agent.pair(Scope::Viewer, "v").await;
    let owner = agent.pair(Scope::Owner, "o").await;
    let v = Some(viewer.access_token.as_str());
    let o = Some(owner.access_token.as_str());
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        let (status, body) = agent
            .phone(request(method.clone(), "/api/v1/events/1", v, None))
            .await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::FORBIDDEN, "insufficient_scope"),
            "{method}"
        );
    }
    // Past the agent's checks: on to the (absent) backend.
    let (status, _) = agent
        .phone(request(Method::GET, "/api/v1/events/1", v, None))
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let (status, _) = agent
        .phone(request(Method::DELETE, "/api/v1/events/1", o, None))
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn the_system_routes_are_for_owners_only_whatever_the_edge_allowed() {
    let agent = TestAgent::new();
    let viewer = agent.pair(Scope::Viewer, "v").await;
    let owner = agent.pair(Scope::Owner, "o").await;
    let path = "/api/v1/system/settings";
    let (status, body) = agent
        .phone(request(Method::GET, path, Some(&viewer.access_token), None))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::FORBIDDEN, "insufficient_scope")
    );
    let (status, _) = agent
        .phone(request(Method::GET, path, Some(&owner.access_token), None))
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn the_token_must_be_the_device_the_edge_signed_for() {
    let agent = TestAgent::new();
    let phone = agent.pair(Scope::Owner, "p").await;
    let ctx = |edge_device: &str| RequestContext {
        via: Via::Tunnel,
        request_id: "test".into(),
        client_ip: None,
        client_upgrade: None,
        edge_device: Some(edge_device.to_owned()),
    };
    let req = || {
        request(
            Method::GET,
            "/api/v1/devices",
            Some(&phone.access_token),
            None,
        )
    };
    let (status, body) = agent.phone_with(req(), ctx("another-device")).await;
    assert_eq!(
        (status, error_reason(&body)),
        (StatusCode::UNAUTHORIZED, "signature.device_mismatch")
    );
    let (status, _) = agent.phone_with(req(), ctx(&phone.device_id)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn at_home_the_built_in_path_rules_apply_after_the_token() {
    let agent = TestAgent::new();
    let owner = agent.pair(Scope::Owner, "o").await;
    let lan = || RequestContext {
        via: Via::Lan,
        request_id: "test".into(),
        client_ip: None,
        client_upgrade: None,
        edge_device: None,
    };
    let (status, body) = agent
        .phone_with(request(Method::GET, "/api/v1/logs", None, None), lan())
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNAUTHORIZED, "unauthenticated"),
        "no token: nothing learned about the rules"
    );
    let (status, body) = agent
        .phone_with(
            request(Method::GET, "/api/v1/logs", Some(&owner.access_token), None),
            lan(),
        )
        .await;
    assert_eq!(
        (status, error_reason(&body)),
        (StatusCode::FORBIDDEN, "path.denied")
    );
}
