//! The benchmarked operations, the same natively and in wasm (exported with wasm-bindgen for
//! `run.mjs` under Node).

use argus_shared::image::{transcode, Limits, Variant};

/// The relay's pipeline at `mobile` (480 px wide). Empty on passthrough.
pub fn pipeline(input: &[u8]) -> Vec<u8> {
    transcode(input, &Variant::MOBILE, &Limits::DEFAULT)
        .map(|t| t.bytes)
        .unwrap_or_default()
}

/// Baseline: the `image` crate — full decode, Lanczos3 resize to 480 wide, JPEG at the same
/// quality as the pipeline.
pub fn baseline(input: &[u8]) -> Vec<u8> {
    let Ok(img) = image::load_from_memory_with_format(input, image::ImageFormat::Jpeg) else {
        return Vec::new();
    };
    let (w, h) = (img.width(), img.height());
    let th = ((u64::from(h) * 480 + u64::from(w) / 2) / u64::from(w.max(1))) as u32;
    let small = img.resize_exact(480, th.max(1), image::imageops::FilterType::Lanczos3);
    let mut out = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(
        &mut out,
        Variant::MOBILE.jpeg_quality,
    );
    if small.to_rgb8().write_with_encoder(enc).is_err() {
        return Vec::new();
    }
    out
}

/// Floor: what serving the original costs (one copy).
pub fn copy(input: &[u8]) -> Vec<u8> {
    input.to_vec()
}

#[cfg(target_arch = "wasm32")]
mod js {
    use wasm_bindgen::prelude::wasm_bindgen;

    #[wasm_bindgen]
    pub fn pipeline(input: &[u8]) -> Vec<u8> {
        super::pipeline(input)
    }

    #[wasm_bindgen]
    pub fn baseline(input: &[u8]) -> Vec<u8> {
        super::baseline(input)
    }

    #[wasm_bindgen]
    pub fn copy(input: &[u8]) -> Vec<u8> {
        super::copy(input)
    }
}
