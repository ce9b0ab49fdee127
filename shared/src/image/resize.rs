//! Lanczos3 resampling with `fast_image_resize` (SSE4.1/AVX2 natively, SIMD128 in wasm when the
//! Worker is built with `+simd128`).
//!
//! The crate is used with its `only_u8x4` feature: without it, its runtime dispatch over every
//! pixel type links a 512 KiB table (16-bit alpha reciprocals) into the Worker's wasm, +~300 KB
//! gzip for nothing we use. So pixels go through as RGBx (alpha ignored: `use_alpha(false)`),
//! which costs one widening and one narrowing copy of the small, already DCT-scaled image.

use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use super::{Passthrough, Pixels};

/// `src` resized to exactly `w`×`h` (returned as is when it already is that size).
pub(crate) fn to(src: Pixels, w: u32, h: u32) -> Result<Pixels, Passthrough> {
    if src.width == w && src.height == h {
        return Ok(src);
    }
    let channels = usize::from(src.channels);
    if channels != 1 && channels != 3 {
        return Err(Passthrough::UnsupportedJpeg("components"));
    }
    let mut wide = Vec::with_capacity(src.data.len() / channels * 4);
    for px in src.data.chunks_exact(channels) {
        match px {
            [l] => wide.extend_from_slice(&[*l, *l, *l, 255]),
            [r, g, b] => wide.extend_from_slice(&[*r, *g, *b, 255]),
            _ => return Err(Passthrough::Corrupt),
        }
    }
    let from = Image::from_vec_u8(src.width, src.height, wide, PixelType::U8x4)
        .map_err(|_| Passthrough::Corrupt)?;
    let mut into = Image::new(w, h, PixelType::U8x4);
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
        .use_alpha(false);
    Resizer::new()
        .resize(&from, &mut into, &options)
        .map_err(|_| Passthrough::EncodeFailed)?;
    let wide = into.into_vec();
    let mut data = Vec::with_capacity(wide.len() / 4 * channels);
    for px in wide.chunks_exact(4) {
        data.extend_from_slice(px.get(..channels).unwrap_or_default());
    }
    Ok(Pixels {
        width: w,
        height: h,
        channels: src.channels,
        data,
    })
}
