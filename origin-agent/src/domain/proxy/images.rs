//! Images for phones on the LAN: the same variants the edge Worker makes (`?quality=` and
//! `Accept`), made here natively with the same code ([`argus_shared::image::response`] for the
//! rules, [`argus_shared::image`] for the pipeline), so a phone gets the same bytes and headers
//! at home as away. Called by the router for `GET` on an image route arriving on the LAN
//! listener ([`crate::base::http::Via::Lan`]), after the device token and the path rules.
//!
//! - The original is fetched from the backend without the relay's `quality` parameter and
//!   without the client's conditional and range headers, read up to the image limits (larger
//!   ones stream through untouched, `reason=too_large`).
//! - Transcoding is CPU work (bounded per image by [`Limits`]: pixels, scans, and the scans ×
//!   pixels budget): it runs on tokio's blocking pool, never on the async workers that serve
//!   every other request, at most one per core at once ([`LanImages::cpu`]); at most
//!   [`MAX_IMAGES_IN_FLIGHT`] originals are held in memory at once.
//! - Variants of stored files (thumbnails, event thumbnails and frames, entity thumbnails) are
//!   kept in memory ([`VariantCache`], [`CACHE_BYTES`] in all), keyed as the Worker keys its
//!   edge cache ([`img_resp::cache_key_path`]) and kept for the TTL the Worker would use.
//! - The policy is the built-in default ([`lan_policy`]), as for the LAN's path rules: no
//!   default quality (so no `?quality=` means the original) and WebP allowed.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::{LazyLock, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use argus_shared::headers;
use argus_shared::image::request::{self as img_req, etag_matches};
use argus_shared::image::response::{
    self as img_resp, ImageAction, CONDITIONAL_HEADERS, KEPT_ORIGIN_HEADERS,
};
use argus_shared::image::{Limits, OutputFormat, Passthrough, Variant};
use argus_shared::path::CanonicalTarget;
use argus_shared::policy::Policy;
use argus_shared::route::{ImageBody, ImageKind};
use argus_shared::token::AccessClaims;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{HeaderMap, Request, Response, StatusCode};
use tokio::sync::Semaphore;

use crate::base::error::AgentError;
use crate::base::http::body::{self, Body, BoxError};
use crate::domain::proxy::backend::{Backend, ForwardContext};

/// Memory for kept variants, in all.
pub const CACHE_BYTES: usize = 32 * 1024 * 1024;
/// No one entry takes more than this share of [`CACHE_BYTES`] (an original passed through
/// because it was already small enough can be large).
const MAX_ENTRY_BYTES: usize = CACHE_BYTES / 8;
/// Originals read for transcoding at once (each up to `Limits::max_input_bytes`).
pub const MAX_IMAGES_IN_FLIGHT: usize = 8;

/// The built-in policy (compiled once): the LAN's path rules and image settings.
pub fn lan_policy() -> &'static Policy {
    static POLICY: LazyLock<Policy> = LazyLock::new(Policy::default_policy);
    &POLICY
}

/// The LAN's image state: the variant cache and the concurrency bounds.
pub struct LanImages {
    cache: Mutex<VariantCache>,
    /// Originals being fetched, read or transcoded.
    in_flight: Semaphore,
    /// Transcodes running on the blocking pool.
    cpu: Semaphore,
}

impl Default for LanImages {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        LanImages {
            cache: Mutex::new(VariantCache::new(CACHE_BYTES)),
            in_flight: Semaphore::new(MAX_IMAGES_IN_FLIGHT),
            cpu: Semaphore::new(cores),
        }
    }
}

/// What to make of an original.
#[derive(Debug, Clone, Copy)]
pub struct Transcode {
    pub variant: Variant,
    pub format: OutputFormat,
}

impl LanImages {
    fn cache(&self) -> std::sync::MutexGuard<'_, VariantCache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// [`img_resp::produce`] on tokio's blocking pool, at most one per core at once: the async
    /// workers that serve every other request never run image code.
    pub async fn produce(
        &self,
        body_kind: ImageBody,
        original: Vec<u8>,
        origin_type: Option<String>,
        to: Transcode,
        limits: Limits,
    ) -> Result<img_resp::Produced, AgentError> {
        let _cpu = self.cpu.acquire().await.map_err(|_| AgentError::Internal)?;
        tokio::task::spawn_blocking(move || {
            img_resp::produce(
                body_kind,
                original,
                origin_type.as_deref(),
                &to.variant,
                to.format,
                &limits,
            )
        })
        .await
        .map_err(|e| {
            // A panic in image code: its message is in `e`.
            tracing::error!(error = %e, "the image transcode task failed");
            AgentError::Internal
        })
    }
}

/// A kept variant, as the phone gets it (without `Cache-Control` and the request id).
#[derive(Clone)]
struct Kept {
    headers: HeaderMap,
    body: Bytes,
    ttl_secs: u32,
    expires: Instant,
}

/// Variants by cache key, at most `capacity` bytes in all; the oldest go first.
///
/// An entry costs its body, its key (held twice: the map and the age order) and its headers,
/// plus [`ENTRY_OVERHEAD`]: keys carry the forwarded query, which the phone chooses, so a
/// device asking for one small thumbnail under many long queries must fill the budget, not
/// grow the agent past it.
pub struct VariantCache {
    /// Each entry with its place in `order`.
    entries: HashMap<String, (Kept, u64)>,
    /// Keys by insertion, oldest first (a map, so that removing one is not a scan).
    order: BTreeMap<u64, String>,
    next: u64,
    bytes: usize,
    capacity: usize,
}

/// What an entry costs besides its body, key and headers: the map slots, the `Kept`, the
/// allocations' headers.
const ENTRY_OVERHEAD: usize = 256;

fn cost(key: &str, kept: &Kept) -> usize {
    let headers: usize = kept
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 32)
        .sum();
    kept.body.len() + 2 * key.len() + headers + ENTRY_OVERHEAD
}

impl VariantCache {
    fn new(capacity: usize) -> VariantCache {
        VariantCache {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            next: 0,
            bytes: 0,
            capacity,
        }
    }

    fn get(&mut self, key: &str, now: Instant) -> Option<Kept> {
        match self.entries.get(key) {
            Some((k, _)) if k.expires > now => Some(k.clone()),
            Some(_) => {
                self.remove(key);
                None
            }
            None => None,
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some((old, at)) = self.entries.remove(key) {
            self.bytes -= cost(key, &old);
            self.order.remove(&at);
        }
    }

    fn insert(&mut self, key: String, kept: Kept) {
        let size = cost(&key, &kept);
        if size > MAX_ENTRY_BYTES.min(self.capacity) {
            return;
        }
        self.remove(&key);
        while self.bytes + size > self.capacity {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some((old, _)) = self.entries.remove(&oldest) {
                self.bytes -= cost(&oldest, &old);
            }
        }
        self.bytes += size;
        let at = self.next;
        self.next += 1;
        self.order.insert(at, key.clone());
        self.entries.insert(key, (kept, at));
    }
}

/// Where [`serve`] gets images from: the backend, through the LAN's variant cache.
pub struct ImageSources<'a> {
    pub backend: &'a Backend,
    pub lan_images: &'a LanImages,
}

pub async fn serve(
    state: ImageSources<'_>,
    req: Request<Body>,
    forward: ForwardContext,
    target: &CanonicalTarget,
    kind: ImageKind,
    claims: &AccessClaims,
    policy: &Policy,
) -> Result<Response<Body>, AgentError> {
    let body_kind = kind.body();
    let accept = header(req.headers(), "accept").map(str::to_owned);
    let negotiated = img_resp::negotiate(kind, target, accept.as_deref(), policy, &claims.platform)
        .map_err(|e| AgentError::InvalidParameter { reason: e.reason() })?;
    let forwarded = negotiated.forwarded;
    let request_id = forward.request_id.clone();

    let (variant, format) = match negotiated.action {
        ImageAction::Transcode { variant, format } => (variant, format),
        ImageAction::Original | ImageAction::NotAcceptable => {
            let (mut parts, body) = req.into_parts();
            parts.uri = uri_of(&forwarded)?;
            let mut resp = state
                .backend
                .forward(Request::from_parts(parts, body), forward)
                .await?;
            let h = resp.headers_mut();
            if negotiated.action == ImageAction::Original {
                set(h, headers::RELAY_IMAGE, img_resp::ORIGINAL);
            } else {
                set(h, headers::RELAY_IMAGE, img_resp::NOT_ACCEPTABLE);
                // Another `Accept` would have got a variant.
                h.append(hyper::header::VARY, HeaderValue::from_static("Accept"));
            }
            return Ok(resp);
        }
    };

    let if_none_match = header(req.headers(), "if-none-match").map(str::to_owned);
    let key = img_resp::is_stored_file(kind)
        .then(|| img_resp::cache_key_path(&variant, format, &forwarded));
    if let Some(key) = &key {
        let hit = state.lan_images.cache().get(key, Instant::now());
        if let Some(kept) = hit {
            let mut h = kept.headers;
            set(
                &mut h,
                "cache-control",
                &img_resp::phone_cache_control(true, Some(kept.ttl_secs)),
            );
            set(&mut h, headers::RELAY_CACHE, "hit");
            return Ok(finish(
                h,
                kept.body,
                if_none_match.as_deref(),
                body_kind,
                &request_id,
            ));
        }
    }

    // The original, without the client's conditionals; read whole only up to the limits.
    let _in_flight = state
        .lan_images
        .in_flight
        .acquire()
        .await
        .map_err(|_| AgentError::Internal)?;
    let (mut parts, _) = req.into_parts();
    parts.uri = uri_of(&forwarded)?;
    for name in CONDITIONAL_HEADERS {
        parts.headers.remove(*name);
    }
    let outgoing = Request::from_parts(parts, body::empty());
    let resp = state.backend.forward(outgoing, forward).await?;
    if resp.status() != StatusCode::OK {
        return Ok(resp);
    }
    let (origin, origin_body) = resp.into_parts();
    let ttl = img_req::edge_ttl(header(&origin.headers, "cache-control"));
    let limits = Limits::DEFAULT;
    let original = match read_capped(
        origin_body,
        img_resp::body_limit(body_kind, &limits),
        header(&origin.headers, "content-length"),
    )
    .await?
    {
        Read::Whole(bytes) => bytes,
        Read::TooLarge(body) => {
            let mut resp = Response::from_parts(origin, body);
            let why = Passthrough::TooLarge {
                max: limits.max_input_bytes,
            };
            set(
                resp.headers_mut(),
                headers::RELAY_IMAGE,
                &why.header_value(),
            );
            return Ok(resp);
        }
    };

    // The transcode, off the async workers.
    let origin_type = header(&origin.headers, "content-type").map(str::to_owned);
    let produced = state
        .lan_images
        .produce(
            body_kind,
            original,
            origin_type,
            Transcode { variant, format },
            limits,
        )
        .await
        .inspect_err(|e| tracing::error!(request_id, error = %e, "image transcode failed"))?;

    let mut h = HeaderMap::new();
    for name in KEPT_ORIGIN_HEADERS {
        if let Some(v) = origin.headers.get(*name) {
            h.insert(HeaderName::from_static(name), v.clone());
        }
    }
    set(&mut h, "content-type", &produced.content_type);
    set(&mut h, "etag", &img_resp::etag_of(&produced.body));
    set(&mut h, headers::RELAY_IMAGE, &produced.outcome);
    let body = Bytes::from(produced.body);
    if let (Some(key), Some(ttl), true) = (&key, ttl, produced.cacheable) {
        let kept = Kept {
            headers: h.clone(),
            body: body.clone(),
            ttl_secs: ttl,
            expires: Instant::now() + Duration::from_secs(u64::from(ttl)),
        };
        state.lan_images.cache().insert(key.clone(), kept);
    }
    set(
        &mut h,
        "cache-control",
        &img_resp::phone_cache_control(key.is_some(), ttl),
    );
    if key.is_some() {
        set(&mut h, headers::RELAY_CACHE, "miss");
    }
    Ok(finish(
        h,
        body,
        if_none_match.as_deref(),
        body_kind,
        &request_id,
    ))
}

/// The phone's answer: 304 when its `If-None-Match` already names these bytes.
fn finish(
    mut h: HeaderMap,
    body: Bytes,
    if_none_match: Option<&str>,
    body_kind: ImageBody,
    request_id: &str,
) -> Response<Body> {
    set(&mut h, headers::REQUEST_ID, request_id);
    if matches!(body_kind, ImageBody::Raw) {
        // The format (and whether the relay transcodes at all) follows `Accept`.
        set(&mut h, "vary", "Accept");
    }
    let etag = header(&h, "etag").unwrap_or_default().to_owned();
    let (status, body) = if if_none_match.is_some_and(|inm| etag_matches(inm, &etag)) {
        h.remove(hyper::header::CONTENT_TYPE);
        (StatusCode::NOT_MODIFIED, body::empty())
    } else {
        (StatusCode::OK, body::full(body))
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    *resp.headers_mut() = h;
    resp
}

fn uri_of(target: &CanonicalTarget) -> Result<hyper::Uri, AgentError> {
    target
        .target()
        .parse()
        .map_err(|_| AgentError::NonCanonicalPath {
            reason: "path.malformed",
        })
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn set(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(HeaderName::from_static(name), v);
    }
}

enum Read {
    Whole(Vec<u8>),
    /// Over the cap: the body to send on untouched (what was read, then the rest).
    TooLarge(Body),
}

/// The whole body when it is at most `cap` bytes (by `Content-Length` first, then by what
/// arrives); otherwise the body to stream through as it came.
async fn read_capped(
    mut body: Body,
    cap: usize,
    content_length: Option<&str>,
) -> Result<Read, AgentError> {
    if content_length
        .and_then(|l| l.trim().parse::<u64>().ok())
        .is_some_and(|len| len > cap as u64)
    {
        return Ok(Read::TooLarge(body));
    }
    let mut read = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            tracing::warn!(error = %e, "the backend's image answer broke off");
            AgentError::BackendUnreachable
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        read.extend_from_slice(&data);
        if read.len() > cap {
            return Ok(Read::TooLarge(body::boxed(Prefixed {
                head: Some(Bytes::from(read)),
                rest: body,
            })));
        }
    }
    Ok(Read::Whole(read))
}

/// `head`, then the rest of a body.
struct Prefixed {
    head: Option<Bytes>,
    rest: Body,
}

impl hyper::body::Body for Prefixed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(head) = self.head.take() {
            return Poll::Ready(Some(Ok(Frame::data(head))));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    /// On a runtime with a single worker thread, another task keeps running while a picture is
    /// transcoded: the transcode is not on that thread.
    #[tokio::test(flavor = "current_thread")]
    async fn transcoding_leaves_the_async_worker_free() {
        let (w, h) = (1920u32, 1080u32);
        let pixels: Vec<u8> = (0..w * h)
            .flat_map(|i| [(i % w) as u8, (i / w) as u8, (i % 251) as u8])
            .collect();
        let jpeg = mozjpeg_rs::Encoder::new(mozjpeg_rs::Preset::BaselineBalanced)
            .quality(90)
            .encode_rgb(&pixels, w, h)
            .expect("encodes");
        let ticks = Arc::new(AtomicU32::new(0));
        let counter = ticks.clone();
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(1)).await;
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
        let produced = LanImages::default()
            .produce(
                ImageBody::Raw,
                jpeg,
                Some("image/jpeg".into()),
                Transcode {
                    variant: Variant::MOBILE,
                    format: OutputFormat::Webp,
                },
                Limits::DEFAULT,
            )
            .await
            .expect("produced");
        ticker.abort();
        assert!(
            produced
                .outcome
                .starts_with("transcoded; variant=mobile; format=webp"),
            "{}",
            produced.outcome
        );
        assert!(
            ticks.load(Ordering::Relaxed) > 0,
            "the runtime's only worker thread was held for the whole transcode"
        );
    }

    fn kept(n: usize) -> Kept {
        Kept {
            headers: HeaderMap::new(),
            body: Bytes::from(vec![0u8; n]),
            ttl_secs: 60,
            expires: Instant::now() + Duration::from_secs(60),
        }
    }

    #[test]
    fn the_cache_keeps_to_its_bytes_and_drops_the_oldest() {
        let entry = cost("a", &kept(40));
        let mut c = VariantCache::new(2 * entry + entry / 2);
        c.insert("a".into(), kept(40));
        c.insert("b".into(), kept(40));
        c.insert("c".into(), kept(40));
        let now = Instant::now();
        assert!(c.get("a", now).is_none());
        assert!(c.get("b", now).is_some() && c.get("c", now).is_some());
        assert_eq!(c.bytes, 2 * entry);
        // Replacing an entry does not count it twice.
        c.insert("c".into(), kept(10));
        assert_eq!(c.bytes, entry + cost("c", &kept(10)));
        // Too large for one entry: not kept.
        c.insert("big".into(), kept(c.capacity));
        assert!(c.get("big", now).is_none());
        // Expired entries are not served.
        assert!(c.get("b", now + Duration::from_secs(61)).is_none());
        assert_eq!(c.bytes, cost("c", &kept(10)));
        assert_eq!((c.entries.len(), c.order.len()), (1, 1));
    }

    #[test]
    fn long_keys_on_small_bodies_count_against_the_budget() {
        // One tiny thumbnail under many long queries (the phone chooses the query, which is
        // part of the key): the cache must not hold more than its budget in keys.
        let capacity = 64 * 1024;
        let mut c = VariantCache::new(capacity);
        for i in 0..1_000 {
            let key = format!(
                "/img/mobile/jpeg/api/v1/thumbnails/a.jpg?{i}={}",
                "x".repeat(8 * 1024)
            );
            c.insert(key, kept(1));
        }
        let held: usize = c.entries.keys().map(|k| 2 * k.len() + 1).sum();
        assert!(
            held <= capacity,
            "{held} bytes held for a {capacity}-byte cache"
        );
        assert!(c.bytes <= capacity);
        assert_eq!(c.entries.len(), c.order.len());
    }
}
