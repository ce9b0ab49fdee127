//! JPEG decoding with DCT-domain downscaling (`jpeg-decoder`'s `scale`): the IDCT is run at 1/2,
//! 1/4 or 1/8 size, so a 1920×1080 frame for a 480-wide target is decoded straight to 960×540 —
//! a quarter of the work and memory of a full decode.

use jpeg_decoder::{Decoder, PixelFormat};

use super::{JpegFacts, Passthrough, Pixels};

/// Decodes at the smallest DCT scale that still gives at least `oversample` (1 or 2, clamped)
/// times the target size (2: the Lanczos3 pass that follows has real pixels to filter; 1/4
/// straight to 480 px measured softer, see docs/benchmarks.md), converting to 8-bit grey or RGB.
pub(crate) fn decode_scaled(
    input: &[u8],
    facts: &JpegFacts,
    target_w: u32,
    target_h: u32,
    oversample: u8,
) -> Result<Pixels, Passthrough> {
    let mut decoder = Decoder::new(input);
    decoder.read_info().map_err(|_| Passthrough::Corrupt)?;
    let info = decoder.info().ok_or(Passthrough::Corrupt)?;
    // The decoder read the same frame header as the probe; disagreeing means a second frame
    // header or a bug: do not trust either.
    if u32::from(info.width) != facts.width || u32::from(info.height) != facts.height {
        return Err(Passthrough::Corrupt);
    }
    let channels: u8 = match info.pixel_format {
        PixelFormat::L8 => 1,
        PixelFormat::RGB24 => 3,
        PixelFormat::CMYK32 => return Err(Passthrough::Cmyk),
        PixelFormat::L16 => return Err(Passthrough::UnsupportedJpeg("precision")),
    };
    let factor = u32::from(oversample.clamp(1, 2));
    let want_w = u16::try_from(target_w.saturating_mul(factor)).unwrap_or(u16::MAX);
    let want_h = u16::try_from(target_h.saturating_mul(factor)).unwrap_or(u16::MAX);
    let (w, h) = decoder
        .scale(want_w, want_h)
        .map_err(|_| Passthrough::Corrupt)?;
    let (w, h) = (u32::from(w), u32::from(h));
    let expected =
        usize::try_from(u64::from(w) * u64::from(h) * u64::from(channels)).map_err(|_| {
            Passthrough::TooManyPixels {
                width: facts.width,
                height: facts.height,
            }
        })?;
    decoder.set_max_decoding_buffer_size(expected);
    let data = decoder.decode().map_err(|_| Passthrough::Corrupt)?;
    if data.len() != expected || w == 0 || h == 0 {
        return Err(Passthrough::Corrupt);
    }
    Ok(Pixels {
        width: w,
        height: h,
        channels,
        data,
    })
}
