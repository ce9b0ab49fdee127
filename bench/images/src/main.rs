//! Native half of `make bench`: milliseconds per photo for the pipeline, the `image` crate
//! baseline and a plain copy, bytes before/after, and SSIM (luma) of both outputs against an
//! uncompressed reference (full decode + Lanczos3 in `image`).

use std::time::Instant;

use image_bench::{baseline, copy, pipeline};

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
    (start.elapsed().as_secs_f64() * 1000.0 / f64::from(RUNS), out)
}

fn luma(img: &image::RgbImage) -> Vec<f64> {
    img.pixels()
        .map(|p| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
        .collect()
}

/// Mean SSIM over 8×8 windows (step 4) on luma.
fn ssim(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    let (w, h) = (a.width() as usize, a.height() as usize);
    let (la, lb) = (luma(a), luma(b));
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let (mut sum, mut n) = (0.0, 0u32);
    for y in (0..h.saturating_sub(8)).step_by(4) {
        for x in (0..w.saturating_sub(8)).step_by(4) {
            let (mut ma, mut mb) = (0.0, 0.0);
            for dy in 0..8 {
                for dx in 0..8 {
                    ma += la[(y + dy) * w + x + dx];
                    mb += lb[(y + dy) * w + x + dx];
                }
            }
            ma /= 64.0;
            mb /= 64.0;
            let (mut va, mut vb, mut cov) = (0.0, 0.0, 0.0);
            for dy in 0..8 {
                for dx in 0..8 {
                    let da = la[(y + dy) * w + x + dx] - ma;
                    let db = lb[(y + dy) * w + x + dx] - mb;
                    va += da * da;
                    vb += db * db;
                    cov += da * db;
                }
            }
            va /= 63.0;
            vb /= 63.0;
            cov /= 63.0;
            sum += ((2.0 * ma * mb + c1) * (2.0 * cov + c2))
                / ((ma * ma + mb * mb + c1) * (va + vb + c2));
            n += 1;
        }
    }
    sum / f64::from(n.max(1))
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "../../../shared/testdata/photos".into());
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
        .collect();
    names.sort();
    println!("native (release profile of the Worker: opt-level s, 3 for the image crates, LTO; {RUNS} warm runs each)");
    println!(
        "{:<22} {:>9} {:>9} {:>8} {:>7} {:>9} {:>9} {:>8} {:>8}",
        "photo", "pipeline", "image", "copy", "ratio", "bytes in", "out", "SSIM", "SSIM img"
    );
    for path in names {
        let input = std::fs::read(&path).expect("photo");
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (t_pipe, out) = time(pipeline, &input);
        let (t_base, base_out) = time(baseline, &input);
        let (t_copy, _) = time(copy, &input);
        if out.is_empty() {
            println!(
                "{name:<22} passthrough (no wider than 480 px); copy {t_copy:.3} ms; {} bytes",
                input.len()
            );
            continue;
        }
        // Reference: full decode, Lanczos3, no compression.
        let full = image::load_from_memory(&input).expect("decodes").to_rgb8();
        let (w, h) = full.dimensions();
        let th = ((u64::from(h) * 480 + u64::from(w) / 2) / u64::from(w)) as u32;
        let reference =
            image::imageops::resize(&full, 480, th, image::imageops::FilterType::Lanczos3);
        let ours = image::load_from_memory(&out).expect("ours decodes").to_rgb8();
        let theirs = image::load_from_memory(&base_out)
            .expect("baseline decodes")
            .to_rgb8();
        println!(
            "{name:<22} {t_pipe:>7.2}ms {t_base:>7.2}ms {t_copy:>6.3}ms {:>6.1}x {:>9} {:>9} {:>8.4} {:>8.4}",
            t_base / t_pipe,
            input.len(),
            out.len(),
            ssim(&ours, &reference),
            ssim(&theirs, &reference),
        );
        println!(
            "{:<22} image crate output: {} bytes",
            "",
            base_out.len()
        );
    }
}
