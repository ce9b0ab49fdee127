//! Encoding the resized pixels.
//!
//! - JPEG: `mozjpeg-rs` (a pure-Rust port of mozjpeg: trellis quantisation, optimised Huffman
//!   tables, progressive scans). `ProgressiveBalanced`: what mozjpeg's defaults give, without the
//!   exhaustive scan search of `ProgressiveSmallest` (2× the time for ~1%).
//! - WebP: `vaam-image-webp` (pure-Rust lossy VP8, a fork of `image-webp`; the library is named
//!   `image_webp`). It has no effort setting: quality is the only knob. See docs/benchmarks.md
//!   ("Images") for why this crate and what it costs.

use image_webp::{ColorType, EncoderParams, WebPEncoder};
use mozjpeg_rs::{Encoder, Preset};

use super::{JpegEffort, Passthrough, Pixels};

/// VP8 frame dimensions are 14 bits.
pub(crate) const WEBP_MAX_DIMENSION: u32 = 16_383;

pub(crate) fn jpeg(px: &Pixels, quality: u8, effort: JpegEffort) -> Result<Vec<u8>, Passthrough> {
    let encoder = match effort {
        JpegEffort::Fast => Encoder::new(Preset::BaselineFastest).optimize_huffman(true),
        JpegEffort::Small => Encoder::new(Preset::ProgressiveBalanced),
    }
    .quality(quality);
    let out = match px.channels {
        1 => encoder.encode_gray(&px.data, px.width, px.height),
        3 => encoder.encode_rgb(&px.data, px.width, px.height),
        _ => return Err(Passthrough::UnsupportedJpeg("components")),
    };
    out.map_err(|_| Passthrough::EncodeFailed)
}

/// Lossy WebP (a simple `RIFF`/`WEBP`/`VP8 ` file, no metadata). The encoder panics when the
/// buffer does not match the dimensions, so that (and VP8's 16383 px limit) is checked here.
pub(crate) fn webp(px: &Pixels, quality: u8) -> Result<Vec<u8>, Passthrough> {
    let color = match px.channels {
        1 => ColorType::L8,
        3 => ColorType::Rgb8,
        _ => return Err(Passthrough::UnsupportedJpeg("components")),
    };
    let expected = u64::from(px.width) * u64::from(px.height) * u64::from(px.channels);
    if px.width == 0
        || px.height == 0
        || px.width > WEBP_MAX_DIMENSION
        || px.height > WEBP_MAX_DIMENSION
        || px.data.len() as u64 != expected
    {
        return Err(Passthrough::EncodeFailed);
    }
    let mut out = Vec::new();
    let mut encoder = WebPEncoder::new(&mut out);
    let mut params = EncoderParams::default();
    params.use_lossy = true;
    params.lossy_quality = quality.min(100);
    encoder.set_params(params);
    encoder
        .encode(&px.data, px.width, px.height, color)
        .map_err(|_| Passthrough::EncodeFailed)?;
    Ok(out)
}
