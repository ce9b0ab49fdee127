//! What the Worker does to save a phone's bandwidth, after the gate let a device request through:
//!
//! - `GET` on an image route: [`crate::images`] (transcoded, cached at the edge);
//! - everything else: forwarded ([`crate::forward`]), and a JSON or text answer is compressed for
//!   the phone: the Worker sets `Content-Encoding` (br, else gzip, by what the phone accepts:
//!   `request.cf.clientAcceptEncoding`, else the `Accept-Encoding` header) and the
//!   runtime compresses the body as it sends it (`encodeBody: "automatic"`; workerd does the same
//!   locally). Event lists cross the tunnel gzipped by the agent (the Worker asks for gzip on
//!   every forward); the runtime decodes them and they are re-encoded for the phone the same
//!   way. See docs/benchmarks.md.

use argus_shared::encoding;
use argus_shared::path::CanonicalTarget;
use argus_shared::route;
use argus_shared::token::AccessClaims;
use worker::{Method, Request, Response};

use crate::cf::CfFacts;
use crate::error::EdgeError;
use crate::{config::EdgeConfig, forward, images};

pub async fn to_origin(
    req: Request,
    cfg: &EdgeConfig,
    target: &CanonicalTarget,
    claims: &AccessClaims,
    client_ip: Option<&str>,
    request_id: &str,
) -> Result<Response, EdgeError> {
    if req.method() == Method::Get {
        if let Some(kind) = route::image_kind(&target.decoded_path) {
            return images::serve(req, cfg, target, kind, claims, client_ip, request_id).await;
        }
    }
    // Cloudflare (and Miniflare) rewrite the request's Accept-Encoding; what the phone can
    // decode is in `request.cf.clientAcceptEncoding` when they did.
    let accept_encoding = CfFacts::of(&req)
        .client_accept_encoding
        .or_else(|| req.headers().get("accept-encoding").ok().flatten());
    let resp =
        forward::to_origin(req, cfg, target, Some(&claims.sub), client_ip, request_id).await?;
    compress_for_phone(resp, accept_encoding.as_deref())
}

/// Asks the runtime to compress an eligible answer for the phone: 200, JSON or text, not known
/// to be tiny, and either plain or gzip from the agent (event lists cross the tunnel gzipped; the
/// runtime decoded them on arrival, so the phone gets its own coding — br, gzip or none — like
/// any other answer).
fn compress_for_phone(
    mut resp: Response,
    accept_encoding: Option<&str>,
) -> Result<Response, EdgeError> {
    let h = resp.headers();
    let get = |name: &str| h.get(name).ok().flatten();
    let origin_coding = get("content-encoding").map(|c| c.trim().to_ascii_lowercase());
    let from_agent_gzip = origin_coding.as_deref() == Some("gzip");
    let eligible = resp.status_code() == 200
        && (origin_coding.is_none() || from_agent_gzip)
        && get("content-type").is_some_and(|ct| encoding::is_compressible(&ct))
        && (from_agent_gzip
            || get("content-length")
                .and_then(|l| l.trim().parse::<u64>().ok())
                .is_none_or(|len| len >= encoding::MIN_COMPRESS_BYTES));
    if !eligible {
        return Ok(resp);
    }
    let coding = encoding::choose(accept_encoding);
    if coding.is_none() && !from_agent_gzip {
        return Ok(resp);
    }
    let h = resp.headers_mut();
    let set = |k: &str, v: &str| h.set(k, v).map_err(|_| EdgeError::Internal);
    // Either length is not the one sent: the runtime frames the encoded body itself.
    h.delete("content-length")
        .map_err(|_| EdgeError::Internal)?;
    match coding {
        Some(coding) => set("content-encoding", coding)?,
        None => h
            .delete("content-encoding")
            .map_err(|_| EdgeError::Internal)?,
    }
    let vary = h.get("vary").ok().flatten();
    match vary {
        Some(v) if v.to_ascii_lowercase().contains("accept-encoding") => {}
        Some(v) => set("vary", &format!("{v}, Accept-Encoding"))?,
        None => set("vary", "Accept-Encoding")?,
    }
    Ok(resp)
}
