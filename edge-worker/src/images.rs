//! Images for phones: the backend's pictures transcoded at the edge ([`argus_shared::image`]) and
//! kept in the edge cache (Cache API). The rules are [`argus_shared::image::response`], which the
//! agent's LAN listener follows too; this module is the Worker's I/O around them.
//!
//! Called by [`crate::bandwidth`] for `GET` on an image route ([`argus_shared::route::image_kind`]),
//! *after* the gate: device token against a fresh edge state (so a revoked device never reaches
//! the cache), policy, rate limit.
//!
//! 1. Quality: `?quality=original|high|mobile|low` on routes whose body is the image (the
//!    parameter is the relay's: removed before forwarding, and the signature covers what is
//!    forwarded); else the policy's `images.platform_quality` for the device's platform, else
//!    `images.default_quality`, else `original`. Camera snapshot/preview bodies are JSON, and
//!    `quality` is ArgusAI's own parameter there: those follow the policy only.
//! 2. `original`: forwarded as any request (`x-relay-image: passthrough; reason=original`).
//! 3. Format from `Accept` ([`img_req::choose_format`]): WebP when `image/webp` is named with
//!    `q` > 0 (browsers) and the policy's `images.webp` is not `false`, else JPEG when JPEG is acceptable (the iOS app's `Accept: image/jpeg`,
//!    wildcards, no header), else the original untouched (`reason=not_acceptable`). Camera
//!    snapshot/preview JSON carries JPEG whatever the `Accept` (it describes the JSON).
//! 4. Cache lookup (stored files only — thumbnails, event thumbnails and frames, entity thumbnails;
//!    never live camera snapshots). Key: [`cache_key`] = variant + format + path + forwarded
//!    query: nothing about the device.
//! 5. Miss: fetch through the tunnel without the client's conditional/range headers, read at most
//!    [`Limits::max_input_bytes`] (larger ones stream through untouched), transcode, answer, store.
//!
//! Phones get `Cache-Control: private` (with the edge TTL as `max-age`), `Vary: Accept`, the
//! original's `Last-Modified` (from the backend, through the agent), an ETag of the bytes they
//! got (answered with 304 on `If-None-Match`), `x-relay-image` saying what was done and why, and
//! `x-relay-cache: hit|miss` on cacheable routes.

use argus_shared::headers;
use argus_shared::image::request::{self as img_req, etag_matches};
use argus_shared::image::response::{
    self as img_resp, ImageAction, CONDITIONAL_HEADERS, KEPT_ORIGIN_HEADERS,
};
use argus_shared::image::{Limits, OutputFormat, Passthrough, Variant};
use argus_shared::path::CanonicalTarget;
use argus_shared::route::{ImageBody, ImageKind};
use argus_shared::token::AccessClaims;
use futures_util::StreamExt;
use worker::{Cache, Headers, Method, Request, RequestInit, Response, ResponseBody};

use crate::config::EdgeConfig;
use crate::error::{internal, EdgeError};
use crate::forward;

pub async fn serve(
    req: Request,
    cfg: &EdgeConfig,
    target: &CanonicalTarget,
    kind: ImageKind,
    claims: &AccessClaims,
    client_ip: Option<&str>,
    request_id: &str,
) -> Result<Response, EdgeError> {
    let body_kind = kind.body();
    // 1. Which quality and format, and the target as it is forwarded.
    let accept = req.headers().get("accept").ok().flatten();
    let negotiated = img_resp::negotiate(
        kind,
        target,
        accept.as_deref(),
        &cfg.policy,
        &claims.platform,
    )
    .map_err(|e| EdgeError::BadRequest { reason: e.reason() })?;
    let forwarded = negotiated.forwarded;
    let device = Some(claims.sub.as_str());

    // 2, 3. Original, or no format the client takes: an ordinary forward, conditionals and
    // ranges included.
    let (variant, format) = match negotiated.action {
        ImageAction::Transcode { variant, format } => (variant, format),
        ImageAction::Original => {
            let mut resp =
                forward::to_origin(req, cfg, &forwarded, device, client_ip, None, request_id)
                    .await?;
            mark(&mut resp, img_resp::ORIGINAL)?;
            return Ok(resp);
        }
        ImageAction::NotAcceptable => {
            let mut resp =
                forward::to_origin(req, cfg, &forwarded, device, client_ip, None, request_id)
                    .await?;
            mark(&mut resp, img_resp::NOT_ACCEPTABLE)?;
            // Another `Accept` would have got a variant.
            resp.headers_mut()
                .append("vary", "Accept")
                .map_err(internal("images.vary"))?;
            return Ok(resp);
        }
    };

    // 4. The edge cache (stored files only).
    let if_none_match = req.headers().get("if-none-match").ok().flatten();
    let key = if img_resp::is_stored_file(kind) {
        Some(cache_key(&req, &variant, format, &forwarded)?)
    } else {
        None
    };
    if let Some(key) = &key {
        match Cache::default().get(key.as_str(), false).await {
            Ok(Some(hit)) => {
                return from_cache(hit, if_none_match.as_deref(), request_id).await;
            }
            Ok(None) => {}
            Err(e) => worker::console_warn!("request {request_id}: cache lookup failed: {e}"),
        }
    }

    // 5. The origin, without the client's conditionals.
    let outgoing = without_conditionals(&req)?;
    let resp = forward::to_origin(
        outgoing, cfg, &forwarded, device, client_ip, None, request_id,
    )
    .await?;
    if resp.status_code() != 200 {
        return Ok(resp);
    }
    let origin_headers = resp.headers().clone();
    let origin_type = origin_headers.get("content-type").ok().flatten();
    let ttl = img_req::edge_ttl(
        origin_headers
            .get("cache-control")
            .ok()
            .flatten()
            .as_deref(),
    );
    let limits = Limits::DEFAULT;
    let original = match read_capped(resp, img_resp::body_limit(body_kind, &limits)).await? {
        Read::Whole(bytes) => bytes,
        Read::TooLarge(mut resp) => {
            mark(
                &mut resp,
                &Passthrough::TooLarge {
                    max: limits.max_input_bytes,
                }
                .header_value(),
            )?;
            return Ok(resp);
        }
    };

    let produced = img_resp::produce(
        body_kind,
        original,
        origin_type.as_deref(),
        &variant,
        format,
        &limits,
    );
    let body = produced.body;

    let out = Headers::new();
    let set = |h: &Headers, k: &str, v: &str| h.set(k, v).map_err(internal("images.headers"));
    for name in KEPT_ORIGIN_HEADERS {
        if let Some(v) = origin_headers.get(name).ok().flatten() {
            set(&out, name, &v)?;
        }
    }
    set(&out, "content-type", &produced.content_type)?;
    set(&out, "etag", &img_resp::etag_of(&body))?;
    set(&out, headers::RELAY_IMAGE, &produced.outcome)?;

    if let (Some(key), Some(ttl), true) = (&key, ttl, produced.cacheable) {
        let stored = Headers::new();
        for (k, v) in out.entries() {
            set(&stored, &k, &v)?;
        }
        set(&stored, "cache-control", &format!("public, max-age={ttl}"))?;
        let copy = Response::builder()
            .with_status(200)
            .with_headers(stored)
            .fixed(body.clone());
        if let Err(e) = Cache::default().put(key.as_str(), copy).await {
            worker::console_warn!("request {request_id}: cache store failed: {e}");
        }
    }

    let phone_cc = img_resp::phone_cache_control(key.is_some(), ttl);
    set(&out, "cache-control", &phone_cc)?;
    if key.is_some() {
        set(&out, headers::RELAY_CACHE, "miss")?;
    }
    finish(out, body, if_none_match.as_deref(), body_kind, request_id)
}

/// `{scheme://host}` + [`img_resp::cache_key_path`]: the Cache API keys by URL.
fn cache_key(
    req: &Request,
    variant: &Variant,
    format: OutputFormat,
    forwarded: &CanonicalTarget,
) -> Result<String, EdgeError> {
    let url = req.url().map_err(internal("images.cache_key"))?;
    let origin = url.origin().ascii_serialization();
    Ok(format!(
        "{origin}{}",
        img_resp::cache_key_path(variant, format, forwarded)
    ))
}

/// A copy of the incoming GET with the client's conditional and range headers removed.
fn without_conditionals(req: &Request) -> Result<Request, EdgeError> {
    let h = Headers::new();
    for (name, value) in req.headers().entries() {
        if CONDITIONAL_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            continue;
        }
        h.append(&name, &value)
            .map_err(internal("images.without_conditionals"))?;
    }
    let url = req.url().map_err(internal("images.without_conditionals"))?;
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(h);
    Request::new_with_init(url.as_str(), &init).map_err(internal("images.without_conditionals"))
}

fn mark(resp: &mut Response, value: &str) -> Result<(), EdgeError> {
    resp.headers_mut()
        .set(headers::RELAY_IMAGE, value)
        .map_err(internal("images.mark"))
}

/// The phone's answer from `headers` and `body`: 304 when its `If-None-Match` already names
/// these bytes.
fn finish(
    out: Headers,
    body: Vec<u8>,
    if_none_match: Option<&str>,
    body_kind: ImageBody,
    request_id: &str,
) -> Result<Response, EdgeError> {
    let set = |k: &str, v: &str| out.set(k, v).map_err(internal("images.finish"));
    set(headers::REQUEST_ID, request_id)?;
    if matches!(body_kind, ImageBody::Raw) {
        // The format (and whether the edge transcodes at all) follows `Accept`.
        set("vary", "Accept")?;
    }
    let etag = out.get("etag").ok().flatten().unwrap_or_default();
    if if_none_match.is_some_and(|inm| etag_matches(inm, &etag)) {
        let _ = out.delete("content-type");
        return Ok(Response::builder()
            .with_status(304)
            .with_headers(out)
            .empty());
    }
    Ok(Response::builder()
        .with_status(200)
        .with_headers(out)
        .fixed(body))
}

/// A stored variant, as the phone gets it.
async fn from_cache(
    mut hit: Response,
    if_none_match: Option<&str>,
    request_id: &str,
) -> Result<Response, EdgeError> {
    let out = Headers::new();
    for (k, v) in hit.headers().entries() {
        match k.as_str() {
            "cache-control" | "content-length" | "cf-cache-status" | "age" | "expires" => {}
            _ => out.append(&k, &v).map_err(internal("images.from_cache"))?,
        }
    }
    let max_age = hit
        .headers()
        .get("cache-control")
        .ok()
        .flatten()
        .and_then(|cc| img_req::edge_ttl(Some(&cc)))
        .unwrap_or(0);
    out.set("cache-control", &format!("private, max-age={max_age}"))
        .map_err(internal("images.from_cache"))?;
    out.set(headers::RELAY_CACHE, "hit")
        .map_err(internal("images.from_cache"))?;
    let body = hit.bytes().await.map_err(internal("images.from_cache"))?;
    finish(out, body, if_none_match, ImageBody::Raw, request_id)
}

enum Read {
    Whole(Vec<u8>),
    /// Over the cap: the response to send on untouched (what was read, then the rest).
    TooLarge(Response),
}

/// The whole body when it is at most `cap` bytes (by `Content-Length` first, then by what
/// arrives); otherwise the response rebuilt to stream through as it came.
async fn read_capped(mut resp: Response, cap: usize) -> Result<Read, EdgeError> {
    let declared = resp
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > cap as u64) {
        return Ok(Read::TooLarge(resp));
    }
    match resp.body() {
        ResponseBody::Empty => return Ok(Read::Whole(Vec::new())),
        ResponseBody::Body(bytes) if bytes.len() <= cap => return Ok(Read::Whole(bytes.clone())),
        ResponseBody::Body(_) => return Ok(Read::TooLarge(resp)),
        ResponseBody::Stream(_) => {}
    }
    let status = resp.status_code();
    let origin_headers = resp.headers().clone();
    let mut stream = resp.stream().map_err(|_| EdgeError::OriginUnreachable)?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| EdgeError::OriginUnreachable)?;
        out.extend_from_slice(&chunk);
        if out.len() > cap {
            let head = futures_util::stream::once(async move { Ok::<_, worker::Error>(out) });
            let resp = Response::from_stream(head.chain(stream))
                .map_err(internal("images.read_capped"))?
                .with_status(status)
                .with_headers(origin_headers);
            return Ok(Read::TooLarge(resp));
        }
    }
    Ok(Read::Whole(out))
}
