//! The benchmarked operations, the same natively and in wasm (exported with wasm-bindgen for
//! `run.mjs` under Node).

use argus_shared::image::{transcode_to, Limits, OutputFormat, Variant};

fn ours(input: &[u8], variant: &Variant, format: OutputFormat) -> Vec<u8> {
    transcode_to(input, variant, format, &Limits::DEFAULT)
        .map(|t| t.bytes)
        .unwrap_or_default()
}

/// The relay's pipeline at `mobile` (480 px wide), JPEG. Empty on passthrough.
pub fn pipeline(input: &[u8]) -> Vec<u8> {
    ours(input, &Variant::MOBILE, OutputFormat::Jpeg)
}

/// The relay's pipeline at `mobile`, WebP (what a browser's `Accept` gets).
pub fn pipeline_webp(input: &[u8]) -> Vec<u8> {
    ours(input, &Variant::MOBILE, OutputFormat::Webp)
}

/// `mobile` with the cheaper DCT scale (1/4: 1920 → 480 straight from the IDCT, no Lanczos3).
pub const MOBILE_QUARTER: Variant = Variant {
    decode_oversample: 1,
    ..Variant::MOBILE
};

/// WebP at the cheaper decode scale.
pub fn pipeline_webp_quarter(input: &[u8]) -> Vec<u8> {
    ours(input, &MOBILE_QUARTER, OutputFormat::Webp)
}

/// JPEG at the cheaper decode scale.
pub fn pipeline_quarter(input: &[u8]) -> Vec<u8> {
    ours(input, &MOBILE_QUARTER, OutputFormat::Jpeg)
}

/// `mobile` WebP at another encoder quality (the quality sweep).
pub fn pipeline_webp_at(input: &[u8], quality: u8, oversample: u8) -> Vec<u8> {
    let v = Variant {
        webp_quality: quality,
        decode_oversample: oversample,
        ..Variant::MOBILE
    };
    ours(input, &v, OutputFormat::Webp)
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
    let enc =
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, Variant::MOBILE.jpeg_quality);
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
    pub fn pipeline_webp(input: &[u8]) -> Vec<u8> {
        super::pipeline_webp(input)
    }

    #[wasm_bindgen]
    pub fn pipeline_webp_quarter(input: &[u8]) -> Vec<u8> {
        super::pipeline_webp_quarter(input)
    }

    #[wasm_bindgen]
    pub fn pipeline_quarter(input: &[u8]) -> Vec<u8> {
        super::pipeline_quarter(input)
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
