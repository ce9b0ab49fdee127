//! One routing table for the remote listeners: what the agent serves itself, what goes to the
//! backend, and what is refused. The route classes come from [`argus_shared::route`], the same
//! table the edge uses.

use std::future::Future;
use std::pin::Pin;

use argus_shared::path;
use argus_shared::route::{self, AgentRoute, Route};
use argus_shared::token::Scope;
use hyper::{Method, Request, Response};

use crate::application::handlers::phone;
use crate::application::sealed;
use crate::application::state::AppState;
use crate::base::clock::unix_now;
use crate::base::error::AgentError;
use crate::base::http::body::Body;
use crate::base::http::{RequestContext, Via};
use crate::base::metrics::RouteLabel;
use crate::domain::auth::device_token;
use crate::domain::proxy::backend::ForwardContext;
use crate::domain::proxy::ws_bridge::SocketLifetime;
use crate::domain::proxy::{event_list, images};

/// A token for another device than the one the edge signed for is refused: the two checks must
/// agree.
fn agrees_with_edge(
    ctx: &RequestContext,
    claims: &argus_shared::token::AccessClaims,
) -> Result<(), AgentError> {
    match &ctx.edge_device {
        Some(d) if *d != claims.sub => Err(AgentError::InvalidSignature {
            reason: "signature.device_mismatch",
        }),
        _ => Ok(()),
    }
}

/// A request's canonical path and route, decided once before dispatch.
pub struct Classified {
    pub canonical: path::CanonicalTarget,
    pub route: Route,
}

impl Classified {
    /// The route as a metrics label.
    pub fn label(&self) -> RouteLabel {
        match self.route {
            Route::Refused(_) | Route::MethodNotAllowed => RouteLabel::Refused,
            Route::Public(_) => RouteLabel::Public,
            Route::Agent(_) => RouteLabel::Agent,
            Route::Backend { class } => RouteLabel::Backend(class),
        }
    }
}

/// The canonical-path check and the route table, for a method and request target.
pub fn classify(method: &Method, target: &str) -> Result<Classified, AgentError> {
    let canonical = path::canonicalize(target)
        .map_err(|e| AgentError::NonCanonicalPath { reason: e.reason() })?;
    let route = route::classify(method.as_str(), &canonical.decoded_path);
    Ok(Classified { canonical, route })
}

/// What is left of a routed request once the checks that need no waiting have passed: the
/// route's own work (the agent's handler, or the exchange with the backend), boxed.
///
/// Boxed and returned rather than awaited inside the router: a request waiting for a backend
/// slot then holds this future alone, not also the listener's and router's state, which rustc
/// keeps for the whole life of an `async fn` that awaits a callee (its arguments, and locals
/// already moved into the callee). docs/benchmarks.md, "Proxy" → "Where the proxy's settings
/// come from".
pub type Dispatched<'a> =
    Pin<Box<dyn Future<Output = Result<Response<Body>, AgentError>> + Send + 'a>>;

/// Routes a request already [`classify`]d: refusals and the device-token checks happen here, at
/// once; the route's work is returned, to be awaited by the caller.
pub fn route<'a>(
    state: &'a AppState,
    req: Request<Body>,
    ctx: RequestContext,
    classified: Classified,
) -> Result<Dispatched<'a>, AgentError> {
    let Classified { canonical, route } = classified;
    match route {
        Route::Refused(reason) => Err(AgentError::Refused { reason }),
        Route::MethodNotAllowed => Err(AgentError::MethodNotAllowed),
        Route::Public(public) => Ok(Box::pin(async move {
            phone::public(state, public, req, &ctx, &canonical.decoded_path).await
        })),
        Route::Agent(AgentRoute::Sealed) => {
            let claims = device_token::check(state.device_tokens(), req.headers(), unix_now())?;
            agrees_with_edge(&ctx, &claims)?;
            Ok(Box::pin(async move {
                let (inner, sealer) = sealed::open(state, req).await?.into_parts();
                let request_id = ctx.request_id.clone();
                let answer = match route_sealed(state, inner, ctx, &claims).await {
                    Ok(answer) => answer,
                    Err(e) => e.into_response(&request_id),
                };
                sealed::seal(state, sealer, answer, &request_id).await
            }))
        }
        Route::Agent(agent_route) => {
            let claims = device_token::check(state.device_tokens(), req.headers(), unix_now())?;
            agrees_with_edge(&ctx, &claims)?;
            path_rules(ctx.via, req.method(), &canonical)?;
            Ok(Box::pin(async move {
                phone::device_route(state, agent_route, req, &claims, &canonical.decoded_path).await
            }))
        }
        Route::Backend { class } => {
            let claims = device_token::check(state.device_tokens(), req.headers(), unix_now())?;
            agrees_with_edge(&ctx, &claims)?;
            path_rules(ctx.via, req.method(), &canonical)?;
            if claims.scope == Scope::Viewer && !matches!(*req.method(), Method::GET | Method::HEAD)
            {
                return Err(AgentError::InsufficientScope);
            }
            // Backups, restore, settings — the whole database: owners only, whatever the edge
            // policy allowed.
            let system = canonical.decoded_path == "/api/v1/system"
                || canonical.decoded_path.starts_with("/api/v1/system/");
            if system && claims.scope != Scope::Owner {
                return Err(AgentError::InsufficientScope);
            }
            if state.token_memory.due_touch(&claims.sub, unix_now()) {
                state.touch_device(&claims.sub);
            }
            // An upgraded connection lives no longer than this token and its device.
            let socket_lifetime = ctx
                .client_upgrade
                .is_some()
                .then(|| SocketLifetime::new(state.store.clone(), &claims.sub, claims.exp));
            let via = ctx.via;
            let (req, live_stream) = match ctx.client_upgrade.is_some() {
                true => live_stream_plan(state, req, &canonical.decoded_path, &claims.sub, via),
                false => (req, None),
            };
            let forward = ForwardContext {
                client_ip: ctx.client_ip,
                request_id: ctx.request_id,
                client_upgrade: ctx.client_upgrade,
                class,
                socket_lifetime,
                live_stream,
            };
            if via != Via::Tunnel && req.method() == Method::GET {
                if let Some(kind) = route::image_kind(&canonical.decoded_path) {
                    return Ok(Box::pin(async move {
                        let policy = images::lan_policy();
                        let sources = images::ImageSources {
                            backend: &state.backend,
                            lan_images: &state.lan_images,
                        };
                        images::serve(sources, req, forward, &canonical, kind, &claims, policy)
                            .await
                    }));
                }
            }
            if !event_list::applies(req.method(), &canonical) {
                return Ok(Box::pin(state.backend.forward(req, forward)));
            }
            Ok(match event_list::prepare(req, &canonical)? {
                Ok(list) => Box::pin(async move {
                    let resp = state.backend.forward(list.request, forward).await?;
                    event_list::finish(resp, list.plan.as_ref(), &list.negotiated).await
                }),
                Err(untouched) => Box::pin(state.backend.forward(untouched, forward)),
            })
        }
    }
}

/// A camera live stream upgrade is relayed adaptively ([`crate::domain::proxy::live_stream`]): its plan, and
/// the request with the `quality=` ArgusAI is to start at.
fn live_stream_plan(
    state: &AppState,
    req: Request<Body>,
    decoded_path: &str,
    device_id: &str,
    via: Via,
) -> (
    Request<Body>,
    Option<Box<crate::domain::proxy::live_stream::StreamPlan>>,
) {
    if crate::domain::proxy::live_stream::stream_route(decoded_path).is_none() {
        return (req, None);
    }
    let device = state.store.device(device_id).ok().flatten();
    let phone = crate::domain::proxy::live_stream::PhoneFacts {
        device_id,
        device_name: device.as_ref().map_or(device_id, |d| d.name.as_str()),
        platform: device.as_ref().and_then(|d| d.platform.as_deref()),
        lan: via == Via::Lan,
    };
    let (mut head, body) = req.into_parts();
    let plan = crate::domain::proxy::live_stream::plan(&mut head, decoded_path, &phone);
    (Request::from_parts(head, body), plan)
}

/// The request inside a sealed one, routed like a plain one from the same device
/// ([`Via::Sealed`]): the device the outer checks established is the edge's word here, and the
/// inner request carries the outer token (see [`sealed::open`]).
async fn route_sealed(
    state: &AppState,
    req: Request<Body>,
    ctx: RequestContext,
    claims: &argus_shared::token::AccessClaims,
) -> Result<Response<Body>, AgentError> {
    let target = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let classified = classify(req.method(), &target)?;
    sealed::check_inner_route(&classified.route)?;
    let inner_ctx = RequestContext {
        via: Via::Sealed,
        request_id: ctx.request_id,
        client_ip: ctx.client_ip,
        client_upgrade: None,
        edge_device: Some(claims.sub.clone()),
    };
    route(state, req, inner_ctx, classified)?.await
}

/// The built-in policy's path rules, on the LAN (see `listener::lan`) and inside a sealed
/// request: checked after the device token, as the Worker checks the owner's policy after it, so
/// a caller without a valid token learns nothing about which paths the relay lets through
/// (docs/security.md, "Order of the checks"). Behind the tunnel the Worker already applied the
/// owner's policy to plain requests.
fn path_rules(
    via: Via,
    method: &Method,
    canonical: &path::CanonicalTarget,
) -> Result<(), AgentError> {
    if via == Via::Tunnel {
        return Ok(());
    }
    let facts = argus_shared::policy::RequestFacts {
        method: method.as_str(),
        decoded_path: &canonical.decoded_path,
        country: None,
        asn: None,
        tls_version: None,
        device: None,
    };
    match images::lan_policy().evaluate(&facts) {
        argus_shared::policy::Decision::Allow => Ok(()),
        argus_shared::policy::Decision::Deny(d) => {
            Err(AgentError::Forbidden { reason: d.as_str() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lan_rules(method: &str, target: &str) -> Result<(), &'static str> {
        let canonical = path::canonicalize(target).expect("canonical");
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        path_rules(Via::Lan, &method, &canonical).map_err(|e| match e {
            AgentError::Forbidden { reason } => reason,
            other => panic!("{other:?}"),
        })
    }

    #[test]
    fn the_default_path_rules_apply_at_home_only() {
        assert_eq!(lan_rules("GET", "/api/v1/events?limit=1"), Ok(()));
        assert_eq!(
            lan_rules("GET", "/api/v1/thumbnails/2026-01-01/a.jpg"),
            Ok(())
        );
        assert_eq!(lan_rules("GET", "/api/v1/logs"), Err("path.denied"));
        assert_eq!(
            lan_rules("GET", "/api/v1/system/settings"),
            Err("path.denied")
        );
        assert_eq!(
            lan_rules("GET", "/api/v1/integrations/mqtt/config"),
            Err("path.denied")
        );
        // Behind the tunnel the Worker applied the owner's policy.
        let logs = path::canonicalize("/api/v1/logs").unwrap();
        assert!(path_rules(Via::Tunnel, &Method::GET, &logs).is_ok());
    }
}
