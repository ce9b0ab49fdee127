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
use argus_shared::live_stream::EdgeLink;
use argus_shared::path::CanonicalTarget;
use argus_shared::route;
use argus_shared::token::AccessClaims;
use worker::{Method, Request, Response};

use crate::cf::CfFacts;
use crate::error::{internal, EdgeError};
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
    let cf = CfFacts::of(&req);
    // A WebSocket upgrade may be a live stream: the agent starts it at a level that fits what
    // the edge knows of the phone's link.
    let link = forward::is_websocket(&req)
        .then(|| {
            EdgeLink {
                rtt_ms: cf.client_tcp_rtt,
                platform: Some(claims.platform.clone()),
            }
            .to_header_value()
        })
        .flatten();
    let accept_encoding = cf
        .client_accept_encoding
        .or_else(|| req.headers().get("accept-encoding").ok().flatten());
    let resp = forward::to_origin(
        req,
        cfg,
        target,
        Some(&claims.sub),
        client_ip,
        link.as_deref(),
        request_id,
    )
    .await?;
    compress_for_phone(resp, accept_encoding.as_deref())
}

/// Makes the answer's coding one the phone takes. The Worker asks the origin for gzip on every
/// forward (the tunnel is the home connection's upload); the runtime decodes a gzip body on
/// arrival and encodes what the Worker returns by its `Content-Encoding`, so that header is the
/// only thing to decide:
/// - a 200 JSON or text answer (not known to be tiny): br, else gzip, else none, by what the phone
///   accepts — whether the agent sent it plain or gzip (event lists cross the tunnel gzipped);
/// - any other gzip answer: kept for a phone that takes gzip, else sent decoded.
fn compress_for_phone(
    mut resp: Response,
    accept_encoding: Option<&str>,
) -> Result<Response, EdgeError> {
    let h = resp.headers();
    let get = |name: &str| h.get(name).ok().flatten();
    let origin_coding = get("content-encoding").map(|c| c.trim().to_ascii_lowercase());
    let origin_gzip = origin_coding.as_deref() == Some("gzip");
    let compressible = resp.status_code() == 200
        && (origin_coding.is_none() || origin_gzip)
        && get("content-type").is_some_and(|ct| encoding::is_compressible(&ct))
        && (origin_gzip
            || get("content-length")
                .and_then(|l| l.trim().parse::<u64>().ok())
                .is_none_or(|len| len >= encoding::MIN_COMPRESS_BYTES));
    let coding = if compressible {
        encoding::choose(accept_encoding)
    } else if origin_gzip {
        encoding::accepts_gzip(accept_encoding).then_some("gzip")
    } else {
        return Ok(resp);
    };
    if coding.is_none() && !origin_gzip {
        return Ok(resp);
    }
    let h = resp.headers_mut();
    let set = |k: &str, v: &str| h.set(k, v).map_err(internal("bandwidth.headers"));
    // Either length is not the one sent: the runtime frames the encoded body itself.
    h.delete("content-length")
        .map_err(internal("bandwidth.headers"))?;
    match coding {
        Some(coding) => set("content-encoding", coding)?,
        None => h
            .delete("content-encoding")
            .map_err(internal("bandwidth.headers"))?,
    }
    let vary = h.get("vary").ok().flatten();
    match vary {
        Some(v) if v.to_ascii_lowercase().contains("accept-encoding") => {}
        Some(v) => set("vary", &format!("{v}, Accept-Encoding"))?,
        None => set("vary", "Accept-Encoding")?,
    }
    Ok(resp)
}
