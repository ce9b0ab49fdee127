//! What a request asks for: the relay's own `quality` query parameter (stripped before the
//! request goes to the backend) and the formats its `Accept` header allows.

use thiserror::Error;

use super::OutputFormat;
use crate::policy::ImageQuality;

/// The relay's query parameter: `?quality=original|high|mobile|low`.
pub const QUALITY_PARAM: &str = "quality";

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QualityParamError {
    #[error("quality must be one of original, high, mobile, low")]
    Invalid,
    #[error("quality is given more than once")]
    Repeated,
}

impl QualityParamError {
    pub const fn reason(&self) -> &'static str {
        match self {
            QualityParamError::Invalid => "image.quality_invalid",
            QualityParamError::Repeated => "image.quality_repeated",
        }
    }
}

/// Splits `quality=` out of a raw (still encoded) query. Returns the quality asked for, if any,
/// and the query without it (`None` when nothing is left), in its original order and encoding.
pub fn take_quality(
    query: Option<&str>,
) -> Result<(Option<ImageQuality>, Option<String>), QualityParamError> {
    let Some(query) = query else {
        return Ok((None, None));
    };
    let mut quality = None;
    let mut rest: Vec<&str> = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == QUALITY_PARAM {
            if quality.is_some() {
                return Err(QualityParamError::Repeated);
            }
            quality = Some(ImageQuality::parse(value).ok_or(QualityParamError::Invalid)?);
        } else if !pair.is_empty() {
            rest.push(pair);
        }
    }
    let rest = (!rest.is_empty()).then(|| rest.join("&"));
    Ok((quality, rest))
}

/// The quality for a request: the one it asked for, else the policy's default for its
/// platform, else the policy's default, else [`ImageQuality::Original`].
pub fn effective_quality(
    asked: Option<ImageQuality>,
    policy_default: Option<ImageQuality>,
) -> ImageQuality {
    asked.or(policy_default).unwrap_or(ImageQuality::Original)
}

/// How an `Accept` header rates `media` (`type/subtype`): `Some(true)` when the most specific
/// matching range (exact > `type/*` > `*/*`) has `q` > 0, `Some(false)` when it has `q=0`,
/// `None` when no range matches.
fn rating(accept: &str, media: &str) -> Option<(u8, bool)> {
    let (want_type, _) = media.split_once('/').unwrap_or((media, ""));
    let mut best: Option<(u8, bool)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let zero = parts.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=")
                .or_else(|| p.strip_prefix("Q="))
                .and_then(|v| v.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        let specificity = if name == media {
            3
        } else if name.strip_suffix("/*") == Some(want_type) {
            2
        } else if name == "*/*" {
            1
        } else {
            continue;
        };
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, !zero));
        }
    }
    best
}

/// True when an `Accept` header allows `media` (`type/subtype`): an exact, `type/*` or `*/*`
/// range without `q=0`. No header accepts everything (RFC 9110 §12.5.1).
pub fn accepts(accept: Option<&str>, media: &str) -> bool {
    let Some(accept) = accept else {
        return true;
    };
    if accept.trim().is_empty() {
        return true;
    }
    rating(accept, media).is_some_and(|(_, ok)| ok)
}

/// True when an `Accept` header names `media` itself (not through a wildcard) with `q` > 0.
pub fn names(accept: Option<&str>, media: &str) -> bool {
    accept
        .and_then(|a| rating(a, media))
        .is_some_and(|(specificity, ok)| specificity == 3 && ok)
}

/// The format to transcode to for this `Accept`, or `None` when the client accepts none we
/// produce (the original is then passed through untouched).
///
/// - **WebP** only when `image/webp` is named explicitly with `q` > 0 (browsers and image
///   libraries that decode WebP say so: Chrome, Firefox, Safari ≥ 14, Android's, SDWebImage).
///   A wildcard (`*/*`, `image/*`) or no `Accept` at all does *not* get WebP: such clients
///   (`curl`, scripts, older apps) may not decode it, and JPEG is what every one does.
/// - Otherwise **JPEG** when `image/jpeg` is acceptable, by name or by wildcard (or no header).
///   The iOS app sends `Accept: image/jpeg`, so it keeps getting JPEG.
/// - Otherwise `None`.
///
/// When both are named, WebP wins whatever the `q` values (the client said it decodes it; the
/// relay picks the smaller format), except that `image/webp;q=0` is a refusal.
///
/// `webp_allowed` false (the policy's `images.webp = false`): never WebP, JPEG by the rules above.
pub fn choose_format(accept: Option<&str>, webp_allowed: bool) -> Option<OutputFormat> {
    if webp_allowed && names(accept, OutputFormat::Webp.content_type()) {
        Some(OutputFormat::Webp)
    } else if accepts(accept, OutputFormat::Jpeg.content_type()) {
        Some(OutputFormat::Jpeg)
    } else {
        None
    }
}

/// How long the edge keeps a transcoded variant: the origin's `max-age` (capped at
/// [`MAX_EDGE_TTL_SECS`]), [`DEFAULT_EDGE_TTL_SECS`] without one, `None` (do not keep) for
/// `no-store`, `no-cache` or `max-age=0`. `private` does not stop it: the edge cache is this
/// household's own, and is consulted only after the device token and the policy passed.
pub fn edge_ttl(cache_control: Option<&str>) -> Option<u32> {
    let Some(cc) = cache_control else {
        return Some(DEFAULT_EDGE_TTL_SECS);
    };
    let mut ttl = DEFAULT_EDGE_TTL_SECS;
    for directive in cc.split(',') {
        let d = directive.trim().to_ascii_lowercase();
        if d == "no-store" || d == "no-cache" {
            return None;
        }
        if let Some(v) = d.strip_prefix("max-age=") {
            ttl = v.trim_matches('"').parse::<u32>().ok()?;
        }
    }
    (ttl > 0).then_some(ttl.min(MAX_EDGE_TTL_SECS))
}

/// Without a `max-age` from the origin.
pub const DEFAULT_EDGE_TTL_SECS: u32 = 3600;
/// Never longer than a day.
pub const MAX_EDGE_TTL_SECS: u32 = 86_400;

/// True when an `If-None-Match` header matches `etag` (weak comparison, `*` matches).
pub fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let want = bare(etag);
    if_none_match
        .split(',')
        .any(|t| t.trim() == "*" || bare(t) == want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_ttl_follows_the_origin() {
        assert_eq!(edge_ttl(None), Some(DEFAULT_EDGE_TTL_SECS));
        assert_eq!(edge_ttl(Some("public, max-age=86400")), Some(86_400));
        assert_eq!(edge_ttl(Some("private, max-age=3600")), Some(3600));
        assert_eq!(edge_ttl(Some("max-age=999999")), Some(MAX_EDGE_TTL_SECS));
        assert_eq!(edge_ttl(Some("no-store")), None);
        assert_eq!(edge_ttl(Some("public, no-cache")), None);
        assert_eq!(edge_ttl(Some("max-age=0")), None);
        assert_eq!(edge_ttl(Some("max-age=abc")), None);
    }

    #[test]
    fn etags() {
        assert!(etag_matches("\"a\"", "\"a\""));
        assert!(etag_matches("W/\"a\", \"b\"", "\"a\""));
        assert!(etag_matches("*", "\"a\""));
        assert!(!etag_matches("\"b\"", "\"a\""));
    }

    #[test]
    fn quality_is_taken_out_and_the_rest_kept_in_order() {
        assert_eq!(take_quality(None), Ok((None, None)));
        assert_eq!(
            take_quality(Some("quality=mobile")),
            Ok((Some(ImageQuality::Mobile), None))
        );
        assert_eq!(
            take_quality(Some("signature=ab%2Fc&quality=original&expires=9")),
            Ok((
                Some(ImageQuality::Original),
                Some("signature=ab%2Fc&expires=9".into())
            ))
        );
        assert_eq!(
            take_quality(Some("a=1&b")),
            Ok((None, Some("a=1&b".into())))
        );
        assert_eq!(
            take_quality(Some("quality=ultra")),
            Err(QualityParamError::Invalid)
        );
        assert_eq!(
            take_quality(Some("quality")),
            Err(QualityParamError::Invalid)
        );
        assert_eq!(
            take_quality(Some("quality=low&quality=high")),
            Err(QualityParamError::Repeated)
        );
        // Only the exact key is ours.
        assert_eq!(
            take_quality(Some("image_quality=x&Quality=y")),
            Ok((None, Some("image_quality=x&Quality=y".into())))
        );
    }

    #[test]
    fn explicit_quality_beats_the_policy() {
        assert_eq!(
            effective_quality(Some(ImageQuality::Original), Some(ImageQuality::Mobile)),
            ImageQuality::Original
        );
        assert_eq!(
            effective_quality(None, Some(ImageQuality::Mobile)),
            ImageQuality::Mobile
        );
        assert_eq!(effective_quality(None, None), ImageQuality::Original);
    }

    #[test]
    fn accept_negotiation() {
        assert!(accepts(None, "image/jpeg"));
        assert!(accepts(Some(""), "image/jpeg"));
        assert!(accepts(Some("image/jpeg"), "image/jpeg"));
        assert!(accepts(Some("image/webp,image/*;q=0.8"), "image/jpeg"));
        assert!(accepts(Some("*/*"), "image/jpeg"));
        assert!(!accepts(Some("image/webp"), "image/jpeg"));
        assert!(!accepts(Some("image/jpeg;q=0"), "image/jpeg"));
        assert!(!accepts(Some("image/*, image/jpeg; q=0"), "image/jpeg"));
        assert!(accepts(Some("image/jpeg, */*;q=0"), "image/jpeg"));
        assert!(!accepts(Some("application/json"), "image/jpeg"));
        assert_eq!(
            choose_format(Some("image/jpeg"), true),
            Some(OutputFormat::Jpeg)
        );
    }

    #[test]
    fn webp_only_when_named() {
        use OutputFormat::{Jpeg, Webp};
        // What browsers send.
        let chrome = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
        assert_eq!(choose_format(Some(chrome), true), Some(Webp));
        assert_eq!(choose_format(Some("image/webp,*/*"), true), Some(Webp));
        assert_eq!(
            choose_format(Some("image/webp,image/*;q=0.8"), true),
            Some(Webp)
        );
        assert_eq!(choose_format(Some("image/webp"), true), Some(Webp));
        assert_eq!(choose_format(Some("IMAGE/WEBP; q=0.5"), true), Some(Webp));
        assert_eq!(
            choose_format(Some("image/jpeg, image/webp;q=0.1"), true),
            Some(Webp)
        );
        // The iOS app, wildcards and no header: JPEG.
        assert_eq!(choose_format(Some("image/jpeg"), true), Some(Jpeg));
        assert_eq!(choose_format(Some("*/*"), true), Some(Jpeg));
        assert_eq!(choose_format(Some("image/*"), true), Some(Jpeg));
        assert_eq!(choose_format(None, true), Some(Jpeg));
        assert_eq!(choose_format(Some(""), true), Some(Jpeg));
        // Refusals.
        assert_eq!(
            choose_format(Some("image/webp;q=0, image/*"), true),
            Some(Jpeg)
        );
        assert_eq!(choose_format(Some("image/webp;q=0"), true), None);
        assert_eq!(choose_format(Some("image/png"), true), None);
        assert_eq!(choose_format(Some("image/*, image/jpeg;q=0"), true), None);
        // The policy turned WebP off: JPEG wherever JPEG is acceptable, else the original.
        assert_eq!(choose_format(Some(chrome), false), Some(Jpeg));
        assert_eq!(choose_format(Some("image/jpeg"), false), Some(Jpeg));
        assert_eq!(choose_format(Some("image/webp"), false), None);
        assert!(names(Some("image/webp"), "image/webp"));
        assert!(!names(Some("image/*"), "image/webp"));
        assert!(!names(None, "image/webp"));
    }
}
