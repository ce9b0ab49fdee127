//! Lanczos3 resampling with `fast_image_resize` (SSE4.1/AVX2 natively, SIMD128 in wasm when the
//! Worker is built with `+simd128`).

use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use super::{Passthrough, Pixels};

/// `src` resized to exactly `w`×`h` (returned as is when it already is that size).
pub(crate) fn to(src: Pixels, w: u32, h: u32) -> Result<Pixels, Passthrough> {
    if src.width == w && src.height == h {
        return Ok(src);
    }
    let pixel_type = match src.channels {
        1 => PixelType::U8,
        3 => PixelType::U8x3,
        _ => return Err(Passthrough::UnsupportedJpeg("components")),
    };
    let channels = src.channels;
    let from = Image::from_vec_u8(src.width, src.height, src.data, pixel_type)
        .map_err(|_| Passthrough::Corrupt)?;
    let mut into = Image::new(w, h, pixel_type);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    Resizer::new()
        .resize(&from, &mut into, &options)
        .map_err(|_| Passthrough::EncodeFailed)?;
    Ok(Pixels {
        width: w,
        height: h,
        channels,
        data: into.into_vec(),
    })
}
