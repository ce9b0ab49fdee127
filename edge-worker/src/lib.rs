//! The argus-relay edge Worker.
//!
//! Every request from a phone lands here first. The Worker decides, before anything reaches the home
//! connection: is the path canonical, who serves it, is the device token valid and not revoked, does
//! the policy allow it, is the caller within its rate limit. What passes is signed
//! ([`argus_shared::signature`]) and forwarded through the tunnel to the origin agent.
//!
//! The logic is in `argus-shared`; this crate is the glue to the Workers runtime:
//! [`config`] (env → typed config, parsed once per isolate), [`edge_state`] (token keys and revoked
//! devices from the agent, at most [`argus_shared::edge_state::MAX_AGE_SECS`] old), [`gate`] (the
//! checks in order), [`forward`] (header hygiene, signing, the origin fetch), [`bandwidth`] and
//! [`images`] (transcoded, edge-cached images and compressed JSON for phones) and [`error`] (one
//! JSON error shape).

mod bandwidth;
mod cf;
mod config;
mod edge_state;
mod error;
mod forward;
mod gate;
mod images;
mod rate_limit;
mod request_id;

use worker::{event, Context, Env, Request, Response, Result};

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let request_id = request_id::new();
    match gate::handle(req, &env, &request_id).await {
        Ok(resp) => Ok(resp),
        Err(err) => Ok(err.into_response(&request_id)),
    }
}
