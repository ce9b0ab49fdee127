//! One routing table for the remote listeners: what the agent serves itself, what goes to the
//! backend, and what is refused. The route classes come from [`argus_shared::route`], the same
//! table the edge uses.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use argus_shared::path;
use argus_shared::route::{self, Route};
use argus_shared::token::Scope;
use hyper::upgrade::OnUpgrade;
use hyper::{Method, Request, Response};

use crate::body::Body;
use crate::clock::unix_now;
use crate::compact_event_list;
use crate::error::AgentError;
use crate::identity;
use crate::metrics::RouteLabel;
use crate::proxy::ForwardContext;
use crate::require_device_token;
use crate::state::AppState;
use crate::ws_bridge::SocketLifetime;

/// What the listener established about the request before routing.
pub struct RequestContext {
    pub request_id: String,
    pub client_ip: Option<IpAddr>,
    pub client_upgrade: Option<OnUpgrade>,
    /// The device the edge vouched for in its signature (tunnel listener only): the token must
    /// be that device's.
    pub edge_device: Option<String>,
}

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
/// slot (1,000 connections share 64) then holds this future alone, not also the listener's and
/// router's state, which rustc keeps for the whole life of an `async fn` that awaits a callee
/// (its arguments, and locals already moved into the callee). docs/benchmarks.md, "Proxy".
pub type Dispatched<'a> =
    Pin<Box<dyn Future<Output = Result<Response<Body>, AgentError>> + Send + 'a>>;

pub async fn dispatch(
    state: &AppState,
    req: Request<Body>,
    ctx: RequestContext,
) -> Result<Response<Body>, AgentError> {
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let classified = classify(req.method(), target)?;
    route(state, req, ctx, classified)?.await
}

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
            identity::http::public(state, public, req, &ctx, &canonical.decoded_path).await
        })),
        Route::Agent(agent_route) => {
            let claims = require_device_token::check(state, req.headers(), unix_now())?;
            agrees_with_edge(&ctx, &claims)?;
            Ok(Box::pin(async move {
                identity::http::device_route(
                    state,
                    agent_route,
                    req,
                    &claims,
                    &canonical.decoded_path,
                )
                .await
            }))
        }
        Route::Backend { class } => {
            let claims = require_device_token::check(state, req.headers(), unix_now())?;
            agrees_with_edge(&ctx, &claims)?;
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
            let forward = ForwardContext {
                client_ip: ctx.client_ip,
                request_id: ctx.request_id,
                client_upgrade: ctx.client_upgrade,
                class,
                socket_lifetime,
            };
            if !compact_event_list::applies(req.method(), &canonical) {
                return Ok(Box::pin(state.backend.forward(req, forward)));
            }
            Ok(match compact_event_list::prepare(req, &canonical)? {
                Ok(list) => Box::pin(async move {
                    let resp = state.backend.forward(list.request, forward).await?;
                    compact_event_list::finish(resp, list.plan.as_ref(), &list.negotiated).await
                }),
                Err(untouched) => Box::pin(state.backend.forward(untouched, forward)),
            })
        }
    }
}
