//! Native half of `make bench`: milliseconds per photo for the pipeline at `mobile` (JPEG, WebP,
//! WebP at the cheaper 1/4 DCT scale, and "jpeg small": the slower progressive + trellis JPEG from
//! a 1/2 decode, the previous default), the `image` crate baseline and a plain copy; then bytes
//! and SSIMULACRA2 of each output against sharp's `resize(480).webp({quality: 75})` of the same
//! photo (written by `sharp.mjs` earlier in the same run), all scored against one uncompressed
//! reference (full decode + Lanczos3 by the `image` crate); then a WebP quality sweep and a JPEG
//! sweep (effort × decode scale × quality).
//!
//! `image-bench PHOTOS [SHARP_DIR]`.

use std::time::Instant;

use argus_shared::image::Variant;
use image_bench::{baseline, copy, pipeline, pipeline_jpeg_at, pipeline_webp, pipeline_webp_at};
use ssimulacra2::{compute_frame_ssimulacra2, ColorPrimaries, Rgb, TransferCharacteristic};

const RUNS: u32 = 20;

fn time(f: impl Fn(&[u8]) -> Vec<u8>, input: &[u8]) -> (f64, Vec<u8>) {
    for _ in 0..3 {
        std::hint::black_box(f(input));
    }
    let start = Instant::now();
    let mut out = Vec::new();
    for _ in 0..RUNS {
        out = std::hint::black_box(f(input));
    }
    (
        start.elapsed().as_secs_f64() * 1000.0 / f64::from(RUNS),
        out,
    )
}

fn to_rgb(img: &image::RgbImage) -> Rgb {
    let data = img
        .pixels()
        .map(|p| {
            [
                f32::from(p[0]) / 255.0,
                f32::from(p[1]) / 255.0,
                f32::from(p[2]) / 255.0,
            ]
        })
        .collect();
    Rgb::new(
        data,
        img.width() as usize,
        img.height() as usize,
        TransferCharacteristic::SRGB,
        ColorPrimaries::BT709,
    )
    .expect("rgb")
}

/// SSIMULACRA2 of an encoded image (JPEG or WebP) against the reference; NaN when it does not
/// decode or has another size.
fn score(reference: &image::RgbImage, encoded: &[u8]) -> f64 {
    let Ok(img) = image::load_from_memory(encoded) else {
        return f64::NAN;
    };
    let img = img.to_rgb8();
    if img.dimensions() != reference.dimensions() {
        return f64::NAN;
    }
    compute_frame_ssimulacra2(to_rgb(reference), to_rgb(&img)).unwrap_or(f64::NAN)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .unwrap_or_else(|| "../../../shared/testdata/photos".into());
    let sharp_dir = args.next();
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
        .collect();
    names.sort();
    println!("native (release profile of the Worker: opt-level s, 3 for the image crates, LTO; {RUNS} warm runs each)");
    println!(
        "{:<22} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>7}",
        "photo", "jpeg", "webp", "webp 1/4", "jpeg small", "image", "copy", "ratio"
    );
    let mut quality_rows = Vec::new();
    for path in &names {
        let input = std::fs::read(path).expect("photo");
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (t_jpeg, jpeg) = time(pipeline, &input);
        let (t_copy, _) = time(copy, &input);
        if jpeg.is_empty() {
            println!(
                "{name:<22} passthrough (no wider than 480 px); copy {t_copy:.3} ms; {} bytes",
                input.len()
            );
            continue;
        }
        let (t_webp, webp) = time(pipeline_webp, &input);
        let (t_webp4, webp4) = time(|i| pipeline_webp_at(i, Variant::MOBILE.webp.quality, 1), &input);
        let (t_jpeg4, jpeg4) = time(|i| pipeline_jpeg_at(i, false, Variant::MOBILE.jpeg.quality, 2), &input);
        let (t_base, _) = time(baseline, &input);
        println!(
            "{name:<22} {t_jpeg:>7.2}ms {t_webp:>7.2}ms {t_webp4:>7.2}ms {t_jpeg4:>7.2}ms {t_base:>7.2}ms {t_copy:>6.3}ms {:>6.1}x",
            t_base / t_jpeg,
        );
        quality_rows.push((name, input, jpeg, webp, webp4, jpeg4));
    }

    println!();
    println!(
        "bytes and SSIMULACRA2 (against full decode + Lanczos3, uncompressed; ≥ 70 is the target)"
    );
    println!(
        "{:<22} {:>8} {:>15} {:>15} {:>15} {:>15} {:>15} {:>11}",
        "photo",
        "in",
        "sharp webp q75",
        "ours webp",
        "ours jpeg",
        "webp 1/4",
        "jpeg small",
        "webp/sharp"
    );
    let mut reference_of = Vec::new();
    for (name, input, jpeg, webp, webp4, jpeg4) in &quality_rows {
        let full = image::load_from_memory(input).expect("decodes").to_rgb8();
        let (w, h) = full.dimensions();
        let th = ((u64::from(h) * 480 + u64::from(w) / 2) / u64::from(w)) as u32;
        let reference =
            image::imageops::resize(&full, 480, th, image::imageops::FilterType::Lanczos3);
        let sharp = sharp_dir
            .as_ref()
            .and_then(|d| std::fs::read(format!("{d}/{}", name.replace(".jpg", ".webp"))).ok());
        let cell = |b: &[u8]| format!("{:>6} {:>6.1}", b.len(), score(&reference, b));
        let (sharp_cell, ratio) = match &sharp {
            Some(s) => (
                cell(s),
                format!("{:.2}x", webp.len() as f64 / s.len() as f64),
            ),
            None => ("(no sharp)".to_owned(), "-".to_owned()),
        };
        println!(
            "{name:<22} {:>8} {sharp_cell:>15} {:>15} {:>15} {:>15} {:>15} {ratio:>11}",
            input.len(),
            cell(webp),
            cell(jpeg),
            cell(webp4),
            cell(jpeg4),
        );
        reference_of.push((name.clone(), input.clone(), reference, sharp));
    }

    println!();
    println!(
        "WebP quality sweep (vaam-image-webp has no effort knob): bytes, SSIMULACRA2, bytes/sharp"
    );
    for (name, input, reference, sharp) in &reference_of {
        for oversample in [2u8, 1] {
            let mut line = format!(
                "{name:<22} {:<4}",
                if oversample == 2 { "1/2" } else { "1/4" }
            );
            for q in [75u8, 80, 84, 86, 88, 90] {
                let out = pipeline_webp_at(input, q, oversample);
                let ratio = sharp
                    .as_ref()
                    .map(|s| out.len() as f64 / s.len() as f64)
                    .unwrap_or(f64::NAN);
                line.push_str(&format!(
                    "  q{q}: {:>5} {:>4.1} {:.2}x",
                    out.len(),
                    score(reference, &out),
                    ratio
                ));
            }
            println!("{line}");
        }
    }

    println!();
    println!("JPEG sweep: encoder effort (small: progressive + trellis; fast: baseline, optimised Huffman) x decode scale x quality: ms, bytes, SSIMULACRA2");
    for (name, input, reference, _) in &reference_of {
        for (fast, label) in [(false, "small"), (true, "fast")] {
            for oversample in [2u8, 1] {
                let mut line = format!(
                    "{name:<22} {label:<5} {:<4}",
                    if oversample == 2 { "1/2" } else { "1/4" }
                );
                for q in [70u8, 75, 80] {
                    let (t, out) = time(|i| pipeline_jpeg_at(i, fast, q, oversample), input);
                    line.push_str(&format!(
                        "  q{q}: {t:>5.2}ms {:>5} {:>4.1}",
                        out.len(),
                        score(reference, &out)
                    ));
                }
                println!("{line}");
            }
        }
    }
}
