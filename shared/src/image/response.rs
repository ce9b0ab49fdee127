//! What the relay answers for an image route, wherever it transcodes: the edge Worker
//! (`edge-worker/src/images.rs`, cache = the Cache API) and the agent's LAN listener
//! (`origin-agent/src/domain/proxy/images.rs`, cache = memory). One set of rules, so a phone gets the same
//! bytes, headers and validators at home and away:
//!
//! 1. [`negotiate`]: the quality (`?quality=` on raw-image routes — the relay's parameter,
//!    removed from what the backend gets —, else the policy's default for the device's
//!    platform) and the format from `Accept` ([`super::request::choose_format`]);
//! 2. [`cache_key_path`]: stored files only ([`is_stored_file`]); keyed by variant, format, and
//!    the target as forwarded — nothing about the device;
//! 3. the original is fetched without the client's [`CONDITIONAL_HEADERS`], read up to
//!    [`body_limit`], and [`produce`]d: transcoded, or passed through with the reason;
//! 4. the phone gets [`KEPT_ORIGIN_HEADERS`] (the original's `Last-Modified`: a variant changes
//!    when its original does), an [`etag_of`] the bytes it got (304 on a matching
//!    `If-None-Match`), `Cache-Control` from [`phone_cache_control`], `Vary: Accept` on raw
//!    images, and `x-relay-image` saying what was done.

use sha2::{Digest, Sha256};

use super::request::{self as img_req, QualityParamError};
use super::{json, transcode_to, Limits, OutputFormat, Variant};
use crate::path::CanonicalTarget;
use crate::policy::Policy;
use crate::route::{ImageBody, ImageKind};

/// Reserved path prefix of cache keys (never a route: nothing under it is forwarded).
pub const CACHE_PREFIX: &str = "/__argus-relay/image-cache/v1";

/// Client request headers not sent to the origin when the relay transcodes: the bytes the
/// phone may hold are the relay's, not the origin's, so the relay answers conditionals itself.
pub const CONDITIONAL_HEADERS: &[&str] = &[
    "if-none-match",
    "if-modified-since",
    "if-match",
    "if-unmodified-since",
    "if-range",
    "range",
];

/// Origin response headers kept on what the phone gets. `Last-Modified` is the original's: a
/// variant changes exactly when its original does (the ETag is the variant's own bytes').
pub const KEPT_ORIGIN_HEADERS: &[&str] = &[
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "last-modified",
];

/// What to do with an image request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The target to forward: the request's, without the relay's `quality` parameter.
    pub forwarded: CanonicalTarget,
    pub action: ImageAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageAction {
    /// `original` asked for (or the default): forwarded as any request, conditionals and
    /// ranges included (`x-relay-image: passthrough; reason=original`).
    Original,
    /// The client accepts no format the relay makes: forwarded untouched
    /// (`reason=not_acceptable`, `Vary: Accept`).
    NotAcceptable,
    Transcode {
        variant: Variant,
        format: OutputFormat,
    },
}

/// The `x-relay-image` value of [`ImageAction::Original`].
pub const ORIGINAL: &str = "passthrough; reason=original";
/// The `x-relay-image` value of [`ImageAction::NotAcceptable`].
pub const NOT_ACCEPTABLE: &str = "passthrough; reason=not_acceptable";

/// Step 1 for a `GET` on an image route of `kind`. Camera snapshot/preview bodies are JSON, and
/// `quality` is ArgusAI's own parameter there: those follow the policy only, and carry JPEG
/// whatever the `Accept` (it describes the JSON).
pub fn negotiate(
    kind: ImageKind,
    target: &CanonicalTarget,
    accept: Option<&str>,
    policy: &Policy,
    platform: &str,
) -> Result<Negotiated, QualityParamError> {
    let body = kind.body();
    let (asked, forwarded) = match body {
        ImageBody::Raw => {
            let (asked, rest) = img_req::take_quality(target.query.as_deref())?;
            let mut t = target.clone();
            t.query = rest;
            (asked, t)
        }
        ImageBody::JsonBase64 { .. } => (None, target.clone()),
    };
    let quality = img_req::effective_quality(asked, policy.image_quality_for(platform));
    let action = match Variant::for_quality(quality) {
        None => ImageAction::Original,
        Some(variant) => {
            let format = match body {
                ImageBody::Raw => img_req::choose_format(accept, policy.image_webp_allowed()),
                ImageBody::JsonBase64 { .. } => Some(OutputFormat::Jpeg),
            };
            match format {
                Some(format) => ImageAction::Transcode { variant, format },
                None => ImageAction::NotAcceptable,
            }
        }
    };
    Ok(Negotiated { forwarded, action })
}

/// The stored file routes: the same URL always names the same picture, so a variant can be
/// kept. Camera snapshots and previews are live.
pub fn is_stored_file(kind: ImageKind) -> bool {
    matches!(
        kind,
        ImageKind::Thumbnail
            | ImageKind::EventThumbnail
            | ImageKind::EventFrame
            | ImageKind::EntityThumbnail
    )
}

/// `{CACHE_PREFIX}/{variant}/{format}{path}[?{query}]`: the variant and the format, and the
/// path and query exactly as forwarded (so a signed event thumbnail URL is its own entry).
/// Nothing about the device.
pub fn cache_key_path(
    variant: &Variant,
    format: OutputFormat,
    forwarded: &CanonicalTarget,
) -> String {
    format!(
        "{CACHE_PREFIX}/{}/{}{}",
        variant.name,
        format.as_str(),
        forwarded.target()
    )
}

/// How many bytes of an origin answer are read for transcoding (JSON carries base64: 4/3).
/// Larger answers go to the phone untouched (`reason=too_large`).
pub fn body_limit(body: ImageBody, limits: &Limits) -> usize {
    match body {
        ImageBody::Raw => limits.max_input_bytes,
        ImageBody::JsonBase64 { .. } => limits
            .max_input_bytes
            .saturating_mul(4)
            .saturating_div(3)
            .saturating_add(64 * 1024),
    }
}

/// What the phone gets for an original that was read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Produced {
    pub body: Vec<u8>,
    pub content_type: String,
    /// The `x-relay-image` value.
    pub outcome: String,
    /// Whether it may be kept in the relay's cache: yes when transcoded, or when the reason for
    /// passing through is a property of the bytes, not of a transfer that may have gone wrong.
    pub cacheable: bool,
}

/// Step 3: transcodes `original` (a raw image, or the JSON that carries one) or passes it
/// through with the reason. CPU-bound (up to the [`Limits`] work budget): the agent runs it off
/// its async workers.
pub fn produce(
    body: ImageBody,
    original: Vec<u8>,
    origin_type: Option<&str>,
    variant: &Variant,
    format: OutputFormat,
    limits: &Limits,
) -> Produced {
    let result = match body {
        ImageBody::Raw => transcode_to(&original, variant, format, limits)
            .map(|t| (t.header_value(variant), t.format.content_type(), t.bytes)),
        ImageBody::JsonBase64 { field } => json::transcode_field(&original, field, variant, limits)
            .map(|(bytes, t)| (t.header_value(variant), "application/json", bytes)),
    };
    match result {
        Ok((outcome, content_type, body)) => Produced {
            body,
            content_type: content_type.to_owned(),
            outcome,
            cacheable: true,
        },
        Err(why) => Produced {
            body: original,
            content_type: origin_type.unwrap_or("application/octet-stream").to_owned(),
            outcome: why.header_value(),
            cacheable: why.is_cacheable(),
        },
    }
}

/// A strong ETag of the bytes the phone gets.
pub fn etag_of(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!("\"r1-{}\"", hex::encode(&digest[..12]))
}

/// The phone's `Cache-Control`: `private` with the relay's TTL as `max-age` for a stored file
/// the origin let be kept ([`super::request::edge_ttl`]), else `private, no-store`.
pub fn phone_cache_control(stored_file: bool, ttl: Option<u32>) -> String {
    match ttl.filter(|_| stored_file) {
        Some(ttl) => format!("private, max-age={ttl}"),
        None => "private, no-store".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::canonicalize;

    fn target(t: &str) -> CanonicalTarget {
        canonicalize(t).expect("canonical")
    }

    #[test]
    fn quality_and_format_are_negotiated_and_quality_is_not_forwarded() {
        let policy = Policy::default_policy();
        let t = target("/api/v1/thumbnails/2026-01-01/a.jpg?quality=mobile&x=1");
        let n = negotiate(ImageKind::Thumbnail, &t, Some("image/jpeg"), &policy, "ios").unwrap();
        assert_eq!(
            n.forwarded.target(),
            "/api/v1/thumbnails/2026-01-01/a.jpg?x=1"
        );
        assert_eq!(
            n.action,
            ImageAction::Transcode {
                variant: Variant::MOBILE,
                format: OutputFormat::Jpeg
            }
        );
        let n = negotiate(ImageKind::Thumbnail, &t, Some("image/webp"), &policy, "ios").unwrap();
        assert!(matches!(
            n.action,
            ImageAction::Transcode {
                format: OutputFormat::Webp,
                ..
            }
        ));
        let n = negotiate(ImageKind::Thumbnail, &t, Some("image/png"), &policy, "ios").unwrap();
        assert_eq!(n.action, ImageAction::NotAcceptable);
        // No quality and no policy default: the original.
        let plain = target("/api/v1/thumbnails/2026-01-01/a.jpg");
        let n = negotiate(ImageKind::Thumbnail, &plain, None, &policy, "ios").unwrap();
        assert_eq!(n.action, ImageAction::Original);
        // ArgusAI's own `quality` on the JSON snapshot is left alone; JPEG whatever the Accept.
        let snap = target("/api/v1/cameras/c1/stream/snapshot?quality=80");
        let n = negotiate(
            ImageKind::CameraSnapshot,
            &snap,
            Some("application/json"),
            &policy,
            "ios",
        )
        .unwrap();
        assert_eq!(n.forwarded, snap);
        assert_eq!(n.action, ImageAction::Original);
        assert_eq!(
            negotiate(
                ImageKind::Thumbnail,
                &target("/api/v1/thumbnails/d/a.jpg?quality=huge"),
                None,
                &policy,
                "ios"
            ),
            Err(QualityParamError::Invalid)
        );
    }

    #[test]
    fn cache_keys_name_variant_format_and_forwarded_target_only() {
        let t = target("/api/v1/events/5/thumbnail?signature=ab&expires=9");
        assert_eq!(
            cache_key_path(&Variant::LOW, OutputFormat::Webp, &t),
            "/__argus-relay/image-cache/v1/low/webp/api/v1/events/5/thumbnail?signature=ab&expires=9"
        );
        assert!(is_stored_file(ImageKind::Thumbnail));
        assert!(is_stored_file(ImageKind::EventFrame));
        assert!(!is_stored_file(ImageKind::CameraSnapshot));
        assert!(!is_stored_file(ImageKind::CameraPreview));
        assert!(!is_stored_file(ImageKind::HomekitSnapshot));
    }

    #[test]
    fn a_passthrough_keeps_the_original_and_says_why() {
        let p = produce(
            ImageBody::Raw,
            b"GIF89a..".to_vec(),
            Some("image/gif"),
            &Variant::MOBILE,
            OutputFormat::Jpeg,
            &Limits::DEFAULT,
        );
        assert_eq!(p.body, b"GIF89a..");
        assert_eq!(p.content_type, "image/gif");
        assert_eq!(p.outcome, "passthrough; reason=unsupported_format");
        assert!(p.cacheable);
        let p = produce(
            ImageBody::Raw,
            vec![0xFF, 0xD8, 0xFF],
            None,
            &Variant::MOBILE,
            OutputFormat::Jpeg,
            &Limits::DEFAULT,
        );
        assert_eq!(p.outcome, "passthrough; reason=corrupt");
        assert_eq!(p.content_type, "application/octet-stream");
        assert!(!p.cacheable);
    }

    #[test]
    fn etags_name_the_bytes() {
        assert_eq!(etag_of(b"a"), etag_of(b"a"));
        assert_ne!(etag_of(b"a"), etag_of(b"b"));
        assert!(etag_of(b"a").starts_with("\"r1-"));
        assert_eq!(phone_cache_control(true, Some(60)), "private, max-age=60");
        assert_eq!(phone_cache_control(false, Some(60)), "private, no-store");
        assert_eq!(phone_cache_control(true, None), "private, no-store");
    }
}
