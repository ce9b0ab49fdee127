//! Specifications of the application layer's rules — the phone's identity endpoints
//! ([`phone`]), the admin API ([`admin_api`]) and the router ([`routes`]) — and their test
//! support: the agent's [`AppState`] over a private temporary data directory, provisioned
//! as `argus-relay init` does ([`provision`]) and opened as `argus-relay run` does
//! ([`AppState::open`]), so handler tests exercise the real store, keys and limits without
//! workerd or a listener. The backend URL points at a closed loopback port: a request that
//! passes every check of the agent ends in `bad_gateway`.

mod admin_api;
mod phone;
mod routes;

use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::{Method, Request, StatusCode};
use serde_json::Value;

use crate::application::handlers::pairing_codes::create_owner_code;
use crate::application::router;
use crate::application::state::{provision, AppState};
use crate::base::config::AgentConfig;
use crate::base::http::body::{self, Body};
use crate::base::http::{RequestContext, Via};
use crate::domain::store::{Scope, Store};

/// A backend address nothing listens on (the discard port).
const CLOSED_BACKEND: &str = "http://127.0.0.1:9";

/// A provisioned agent; its data directory lives as long as it does.
pub(crate) struct TestAgent {
    pub state: Arc<AppState>,
    _data: tempfile::TempDir,
}

/// A paired device, as the pairing answer gave it.
pub(crate) struct Paired {
    pub device_id: String,
    pub access_token: String,
    pub refresh_token: String,
}

/// A status and its JSON body (`Null` when the body is not JSON).
pub(crate) type Answer = (StatusCode, Value);

impl TestAgent {
    pub fn new() -> TestAgent {
        let data = tempfile::tempdir().expect("temporary directory");
        let config = AgentConfig::new(
            data.path().join("data"),
            "https://relay.example.test".into(),
            CLOSED_BACKEND.into(),
        );
        let store = Store::open(config.database_path()).expect("store");
        provision(&config, &store).expect("provision");
        drop(store);
        let state = Arc::new(AppState::open(config).expect("open the agent"));
        TestAgent { state, _data: data }
    }

    /// The request a phone sends, through the router, as from the edge (the tunnel).
    pub async fn phone(&self, req: Request<Body>) -> Answer {
        let ctx = RequestContext {
            via: Via::Tunnel,
            request_id: "test".into(),
            client_ip: None,
            client_upgrade: None,
            edge_device: None,
        };
        self.phone_with(req, ctx).await
    }

    /// The same, with the listener's context given.
    pub async fn phone_with(&self, req: Request<Body>, ctx: RequestContext) -> Answer {
        let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let routed = router::classify(req.method(), target)
            .and_then(|classified| router::route(&self.state, req, ctx, classified));
        let resp = match routed {
            Ok(work) => work.await.unwrap_or_else(|e| e.into_response("test")),
            Err(e) => e.into_response("test"),
        };
        answer(resp).await
    }

    /// An admin API request, as the admin listener passes it on once the caller is authorized.
    pub async fn admin(&self, req: Request<Body>) -> Answer {
        let resp = match crate::application::handlers::admin_api::api(&self.state, req).await {
            Ok(resp) => resp,
            Err(e) => e.into_response("test"),
        };
        answer(resp).await
    }

    /// Pairs a device with an owner code, as a phone does (`POST /api/v1/devices/pair`).
    pub async fn pair(&self, scope: Scope, name: &str) -> Paired {
        let code = create_owner_code(&self.state, scope, 600)
            .await
            .expect("owner code")
            .code;
        let (status, body) = self
            .phone(request(
                Method::POST,
                "/api/v1/devices/pair",
                None,
                Some(serde_json::json!({"code": code, "device_info": {"name": name}})),
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let text = |k: &str| body[k].as_str().expect(k).to_owned();
        Paired {
            device_id: text("device_id"),
            access_token: text("access_token"),
            refresh_token: text("refresh_token"),
        }
    }
}

/// A request with an optional bearer token and JSON body.
pub(crate) fn request(
    method: Method,
    target: &str,
    token: Option<&str>,
    json: Option<Value>,
) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(target);
    if let Some(token) = token {
        b = b.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = match json {
        Some(v) => {
            b = b.header(hyper::header::CONTENT_TYPE, "application/json");
            body::full(v.to_string())
        }
        None => body::empty(),
    };
    b.body(body).expect("request")
}

/// A response's status and JSON body.
pub(crate) async fn answer(resp: hyper::Response<Body>) -> Answer {
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The error code of an error answer (`""` if it is not one).
pub(crate) fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// The reason of an error answer (`""` if none).
pub(crate) fn error_reason(body: &Value) -> &str {
    body["error"]["reason"].as_str().unwrap_or("")
}
