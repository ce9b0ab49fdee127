//! The benchmarked operations, the same natively and in wasm (exported with wasm-bindgen for
//! `run.mjs` under Node).

use argus_shared::image::{
    transcode_to, JpegEffort, JpegSettings, Limits, OutputFormat, Variant, WebpSettings,
};

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

/// `mobile` WebP at another encoder quality and decode scale (the WebP sweep; the 1/4 column).
pub fn pipeline_webp_at(input: &[u8], quality: u8, oversample: u8) -> Vec<u8> {
    let v = Variant {
        webp: WebpSettings {
            quality,
            decode_oversample: oversample,
        },
        ..Variant::MOBILE
    };
    ours(input, &v, OutputFormat::Webp)
}

/// `mobile` JPEG with another encoder effort, quality and decode scale (the JPEG sweep; the
/// "jpeg small" column: progressive + trellis from a 1/2 decode, the previous default).
pub fn pipeline_jpeg_at(input: &[u8], fast: bool, quality: u8, oversample: u8) -> Vec<u8> {
    let v = Variant {
        jpeg: JpegSettings {
            quality,
            effort: if fast {
                JpegEffort::Fast
            } else {
                JpegEffort::Small
            },
            decode_oversample: oversample,
        },
        ..Variant::MOBILE
    };
    ours(input, &v, OutputFormat::Jpeg)
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
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, Variant::MOBILE.jpeg.quality);
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
    pub fn pipeline_webp_at(input: &[u8], quality: u8, oversample: u8) -> Vec<u8> {
        super::pipeline_webp_at(input, quality, oversample)
    }

    #[wasm_bindgen]
    pub fn pipeline_jpeg_at(input: &[u8], fast: bool, quality: u8, oversample: u8) -> Vec<u8> {
        super::pipeline_jpeg_at(input, fast, quality, oversample)
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
