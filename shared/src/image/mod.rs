//! Image transcoding for phones: the backend's JPEGs made small (at most 480 px wide for
//! `mobile`), the same code at the edge Worker (wasm32) and natively.
//!
//! The pipeline ([`transcode`]):
//! 1. [`probe`]: format, dimensions and the number of scans from the headers alone — no pixels,
//!    no allocation — and the limits ([`Limits`]: input bytes, pixels, scans, and a work budget
//!    of scans × pixels) checked there, so a decompression or scan bomb is refused before any
//!    decoding;
//! 2. `decode`: `jpeg-decoder` with DCT-domain scaling to the smallest of 1/1, 1/2, 1/4, 1/8 that
//!    still leaves at least the target size (JPEG at `mobile`: 1920 → 480 straight from the IDCT)
//!    or twice it (WebP: 1920 → 960, for the resampling pass to filter);
//! 3. `resize`: `fast_image_resize` Lanczos3 to the target width, aspect kept, never upscaled
//!    (skipped when the decode already gave that size);
//! 4. `encode`: JPEG with `mozjpeg-rs` ([`JpegEffort`]: baseline with optimised Huffman tables, or
//!    progressive with trellis quantisation), or lossy WebP with `vaam-image-webp` (pure-Rust VP8) — [`OutputFormat`], chosen by
//!    the caller from the client's `Accept` ([`request::choose_format`]).
//!
//! Every way this can fail or not be worth it ends in [`Passthrough`]: the caller serves the
//! original bytes and says why (`x-relay-image: passthrough; reason=…`). Nothing here panics on
//! input: headers are parsed with bounds checks, and the decoder and encoder return errors.
//!
//! See docs/benchmarks.md ("Images") for the measurements behind each choice.

mod decode;
mod encode;
pub mod json;
pub mod probe;
pub mod request;
mod resize;
pub mod response;

use thiserror::Error;

use crate::policy::ImageQuality;
pub use probe::{probe, Format, JpegFacts, Probe};

/// What a transcoded variant looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Variant {
    /// Stable name (cache keys, headers): `high`, `mobile`, `low`.
    pub name: &'static str,
    /// The output is at most this wide (aspect kept). Originals no wider pass through.
    pub max_width: u32,
    /// How JPEG output is made (what the iOS app gets: it asks for `image/jpeg`).
    pub jpeg: JpegSettings,
    /// How WebP output is made (clients whose `Accept` names `image/webp`).
    pub webp: WebpSettings,
}

/// JPEG output settings of a [`Variant`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JpegSettings {
    /// mozjpeg quality, 1–100.
    pub quality: u8,
    /// How hard the encoder works for its bytes.
    pub effort: JpegEffort,
    /// 1 or 2: as [`WebpSettings::decode_oversample`].
    pub decode_oversample: u8,
}

/// WebP output settings of a [`Variant`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WebpSettings {
    /// vaam-image-webp (VP8) quality, 0–100. Higher than the JPEG's for about the same
    /// SSIMULACRA2: the two scales are not the same (docs/benchmarks.md, "Images").
    pub quality: u8,
    /// DCT-domain decoding stops at the smallest scale (1/1, 1/2, 1/4, 1/8) that still leaves at
    /// least this many times the target size for Lanczos3 to filter: 2 (sharper; 1920 → 960 →
    /// 480) or 1 (cheaper; 1920 → 480 straight from the IDCT, no resampling pass). See
    /// docs/benchmarks.md.
    pub decode_oversample: u8,
}

impl Variant {
    /// `mobile`: the "480×270, tens of KB" class for phone lists and notifications. JPEG is made
    /// to fit the Workers free plan's 10 ms of CPU: decoded at 1/4 straight to 480 px, encoded
    /// baseline without trellis (SSIMULACRA2 71–77 on the test photos, ~10 % more bytes than the
    /// slow settings). WebP has no fast setting (its encoder dominates either way), so it keeps
    /// the sharper 1/2 decode + Lanczos3.
    pub const MOBILE: Variant = Variant {
        name: "mobile",
        max_width: 480,
        jpeg: JpegSettings {
            quality: 70,
            effort: JpegEffort::Fast,
            decode_oversample: 1,
        },
        webp: WebpSettings {
            quality: 86,
            decode_oversample: 2,
        },
    };
    /// `high`: full-screen on a phone.
    pub const HIGH: Variant = Variant {
        name: "high",
        max_width: 1280,
        jpeg: JpegSettings {
            quality: 80,
            effort: JpegEffort::Fast,
            decode_oversample: 2,
        },
        webp: WebpSettings {
            quality: 90,
            decode_oversample: 2,
        },
    };
    /// `low`: small list icons, poor connections.
    pub const LOW: Variant = Variant {
        name: "low",
        max_width: 320,
        jpeg: JpegSettings {
            quality: 60,
            effort: JpegEffort::Fast,
            decode_oversample: 1,
        },
        webp: WebpSettings {
            quality: 80,
            decode_oversample: 2,
        },
    };

    /// The variant of a quality; `None` for [`ImageQuality::Original`] (bytes untouched).
    pub const fn for_quality(q: ImageQuality) -> Option<Variant> {
        match q {
            ImageQuality::Original => None,
            ImageQuality::High => Some(Variant::HIGH),
            ImageQuality::Mobile => Some(Variant::MOBILE),
            ImageQuality::Low => Some(Variant::LOW),
        }
    }
}

/// How much CPU the JPEG encoder spends on making the file smaller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JpegEffort {
    /// Baseline, optimised Huffman tables, no trellis quantisation: ~1/6 of `Small`'s CPU for
    /// ~10–15 % more bytes at the same quality setting.
    Fast,
    /// Progressive, trellis quantisation, optimised Huffman tables (mozjpeg's defaults).
    Small,
}

/// The output format (part of the edge cache key, see `edge-worker/src/images.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    Jpeg,
    /// Lossy WebP (VP8), for clients whose `Accept` names `image/webp`.
    Webp,
}

impl OutputFormat {
    pub const fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpeg",
            OutputFormat::Webp => "webp",
        }
    }

    pub const fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::Webp => "image/webp",
        }
    }
}

/// Input limits, checked before any pixel is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Larger inputs are not read into memory at all (the caller streams them through).
    pub max_input_bytes: usize,
    /// Baseline JPEGs: at most this many pixels (width × height of the header).
    pub max_pixels: u64,
    /// Progressive JPEGs keep every DCT coefficient of the whole image while decoding
    /// (2 bytes per sample), so they get a lower cap.
    pub max_progressive_pixels: u64,
    /// At most this many scans (SOS markers, counted by the [`probe`]). The decoder walks every
    /// block of the components a scan covers, whether the scan carries data or not, so a
    /// few bytes per scan buy a full pass over the image each (docs/benchmarks.md, "Images":
    /// what scan bombs cost).
    pub max_scans: u32,
    /// The work budget of one decode, in scan-pixels: scans × width × height, decided from the
    /// headers before any decoding. It bounds the decoder's block passes whatever the mix of
    /// size and scans; the other part of its work, entropy decoding, is linear in the input,
    /// which `max_input_bytes` bounds.
    pub max_scan_pixels: u64,
}

impl Limits {
    /// 16 MiB of input; 4096×4096 (16.7 MP) baseline, 8.4 MP (4K UHD) progressive. Sized for a
    /// Worker's 128 MB: a 16.7 MP baseline decode at 1/2 scale needs ~25 MB, an 8.4 MP
    /// progressive one ~50 MB of coefficients.
    ///
    /// 32 scans: encoders write far fewer — libjpeg's and libjpeg-turbo's progressive script 10
    /// for colour and 6 for greyscale, mozjpeg's searched scripts about as many, a baseline
    /// JPEG one (or one per component) — so 32 refuses no real picture and caps a scan bomb at
    /// about 3 times a normal decode's passes.
    ///
    /// 2^27 scan-pixels (134 M): a 4K UHD progressive picture with its 10 scans (83 M), a
    /// 1920×1080 one with all 32 (66 M), a 16.7 MP baseline one with one scan per component
    /// (50 M); at most ~16 block passes over the largest image, where 32 × 8.4 MP would allow
    /// 268 M. Measured in docs/benchmarks.md ("Images").
    pub const DEFAULT: Limits = Limits {
        max_input_bytes: 16 * 1024 * 1024,
        max_pixels: 4096 * 4096,
        max_progressive_pixels: 1 << 23,
        max_scans: 32,
        max_scan_pixels: 1 << 27,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Why the original is served instead of a transcoded variant. Each has a stable
/// [`reason`](Passthrough::reason) for the `x-relay-image` header.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Passthrough {
    #[error("the original is no wider than the variant")]
    Small,
    #[error("the transcoded image would not be smaller than the original")]
    NotSmaller,
    #[error("the original is larger than {max} bytes")]
    TooLarge { max: usize },
    #[error("the image header declares {width}×{height} pixels, over the limit")]
    TooManyPixels { width: u32, height: u32 },
    #[error("the JPEG has {scans} scans, over the limit of {max}")]
    TooManyScans { scans: u32, max: u32 },
    #[error("decoding would take {scan_pixels} scan-pixels, over the budget of {max}")]
    OverBudget { scan_pixels: u64, max: u64 },
    #[error("not a JPEG ({0})")]
    UnsupportedFormat(&'static str),
    #[error("a CMYK/YCCK JPEG (colour conversion not attempted)")]
    Cmyk,
    #[error("a JPEG kind the decoder does not handle ({0})")]
    UnsupportedJpeg(&'static str),
    #[error("an EXIF orientation other than 1 (rotating is left to the client)")]
    Orientation,
    #[error("the image is corrupt or truncated")]
    Corrupt,
    #[error("the encoder failed")]
    EncodeFailed,
}

impl Passthrough {
    /// Stable code, e.g. `small`, `too_many_pixels`, `corrupt`.
    pub const fn reason(&self) -> &'static str {
        match self {
            Passthrough::Small => "small",
            Passthrough::NotSmaller => "not_smaller",
            Passthrough::TooLarge { .. } => "too_large",
            Passthrough::TooManyPixels { .. } => "too_many_pixels",
            Passthrough::TooManyScans { .. } => "too_many_scans",
            Passthrough::OverBudget { .. } => "over_budget",
            Passthrough::UnsupportedFormat(_) => "unsupported_format",
            Passthrough::Cmyk => "cmyk",
            Passthrough::UnsupportedJpeg(_) => "unsupported_jpeg",
            Passthrough::Orientation => "orientation",
            Passthrough::Corrupt => "corrupt",
            Passthrough::EncodeFailed => "encode_failed",
        }
    }

    /// Whether an original passed through for this reason may be kept in a cache: yes when the
    /// reason is a property of the bytes, not of a transfer that may have gone wrong.
    pub const fn is_cacheable(&self) -> bool {
        !matches!(
            self,
            Passthrough::Corrupt | Passthrough::EncodeFailed | Passthrough::TooLarge { .. }
        )
    }

    /// The `x-relay-image` header value: `passthrough; reason=<code>`.
    pub fn header_value(&self) -> String {
        format!("passthrough; reason={}", self.reason())
    }
}

/// A transcoded image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcoded {
    pub bytes: Vec<u8>,
    pub format: OutputFormat,
    pub width: u32,
    pub height: u32,
    pub source_width: u32,
    pub source_height: u32,
}

impl Transcoded {
    /// The `x-relay-image` header value, e.g.
    /// `transcoded; variant=mobile; format=webp; from=1920x1080; to=480x270`.
    pub fn header_value(&self, variant: &Variant) -> String {
        format!(
            "transcoded; variant={}; format={}; from={}x{}; to={}x{}",
            variant.name,
            self.format.as_str(),
            self.source_width,
            self.source_height,
            self.width,
            self.height
        )
    }
}

/// The output size for a source of `w`×`h` and a maximum width: aspect kept (rounded, at least
/// 1 px), never upscaled. `None` when the source is no wider than `max_width`.
pub fn target_size(w: u32, h: u32, max_width: u32) -> Option<(u32, u32)> {
    if w <= max_width || w == 0 || h == 0 || max_width == 0 {
        return None;
    }
    let th = (u64::from(h) * u64::from(max_width) + u64::from(w) / 2) / u64::from(w);
    Some((max_width, u32::try_from(th.max(1)).ok()?))
}

/// Checks what the headers say against `limits` and `variant`; on success returns the JPEG facts
/// and the target size. Cheap: no decoding.
pub fn plan(
    input: &[u8],
    variant: &Variant,
    limits: &Limits,
) -> Result<(JpegFacts, (u32, u32)), Passthrough> {
    if input.len() > limits.max_input_bytes {
        return Err(Passthrough::TooLarge {
            max: limits.max_input_bytes,
        });
    }
    let facts = match probe(input) {
        Probe::Jpeg(f) => f,
        Probe::BrokenJpeg => return Err(Passthrough::Corrupt),
        Probe::Other { format, .. } => return Err(Passthrough::UnsupportedFormat(format.as_str())),
    };
    if facts.width == 0 || facts.height == 0 {
        // Height 0 means "defined later by a DNL marker": legal, rare, not supported here.
        return Err(Passthrough::UnsupportedJpeg("dnl_height"));
    }
    let pixels = u64::from(facts.width) * u64::from(facts.height);
    let cap = if facts.progressive {
        limits.max_progressive_pixels
    } else {
        limits.max_pixels
    };
    if pixels > cap {
        return Err(Passthrough::TooManyPixels {
            width: facts.width,
            height: facts.height,
        });
    }
    if facts.scans > limits.max_scans {
        return Err(Passthrough::TooManyScans {
            scans: facts.scans,
            max: limits.max_scans,
        });
    }
    let scan_pixels = pixels.saturating_mul(u64::from(facts.scans));
    if scan_pixels > limits.max_scan_pixels {
        return Err(Passthrough::OverBudget {
            scan_pixels,
            max: limits.max_scan_pixels,
        });
    }
    if facts.lossless || facts.differential {
        return Err(Passthrough::UnsupportedJpeg("lossless_or_hierarchical"));
    }
    if facts.arithmetic {
        return Err(Passthrough::UnsupportedJpeg("arithmetic"));
    }
    if facts.precision != 8 {
        return Err(Passthrough::UnsupportedJpeg("precision"));
    }
    match facts.components {
        1 | 3 => {}
        4 => return Err(Passthrough::Cmyk),
        _ => return Err(Passthrough::UnsupportedJpeg("components")),
    }
    if facts.orientation.is_some_and(|o| o != 1) {
        return Err(Passthrough::Orientation);
    }
    let target =
        target_size(facts.width, facts.height, variant.max_width).ok_or(Passthrough::Small)?;
    Ok((facts, target))
}

/// Transcodes `input` to `variant` as JPEG, or says why the original should be served instead.
pub fn transcode(
    input: &[u8],
    variant: &Variant,
    limits: &Limits,
) -> Result<Transcoded, Passthrough> {
    transcode_to(input, variant, OutputFormat::Jpeg, limits)
}

/// Transcodes `input` to `variant` in `format`, or says why the original should be served
/// instead (never more bytes than the original: [`Passthrough::NotSmaller`]).
pub fn transcode_to(
    input: &[u8],
    variant: &Variant,
    format: OutputFormat,
    limits: &Limits,
) -> Result<Transcoded, Passthrough> {
    let (facts, (tw, th)) = plan(input, variant, limits)?;
    let oversample = match format {
        OutputFormat::Jpeg => variant.jpeg.decode_oversample,
        OutputFormat::Webp => variant.webp.decode_oversample,
    };
    let decoded = decode::decode_scaled(input, &facts, tw, th, oversample)?;
    let resized = resize::to(decoded, tw, th)?;
    let bytes = match format {
        OutputFormat::Jpeg => encode::jpeg(&resized, variant.jpeg.quality, variant.jpeg.effort)?,
        OutputFormat::Webp => encode::webp(&resized, variant.webp.quality)?,
    };
    if bytes.len() >= input.len() {
        return Err(Passthrough::NotSmaller);
    }
    Ok(Transcoded {
        bytes,
        format,
        width: tw,
        height: th,
        source_width: facts.width,
        source_height: facts.height,
    })
}

/// Decoded pixels, 8 bits per sample, row-major, no padding.
#[derive(Debug)]
pub(crate) struct Pixels {
    pub width: u32,
    pub height: u32,
    /// 1 (grey) or 3 (RGB).
    pub channels: u8,
    pub data: Vec<u8>,
}

#[cfg(test)]
mod scan_bomb_tests;
#[cfg(test)]
mod tests;
