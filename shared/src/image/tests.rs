//! Pipeline tests on photos and on crafted inputs.
//!
//! Every test that needs photos runs on each [`PhotoSet`]: the generated photos
//! ([`crate::test_photos`], always) and the real photos in `../shared/testdata/photos` beside the
//! checkout (CI has them; a fresh clone does not, and the tests then say so on stderr).

use super::probe::tests::jpeg_header;
use super::*;
use crate::fuzzing::XorShift as Rng;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::OnceLock;

/// One set of test photos under the reference set's names (`cups-1920x1080.jpg` …).
enum PhotoSet {
    Generated,
    Reference(PathBuf),
}

impl PhotoSet {
    fn photo(&self, name: &str) -> Vec<u8> {
        match self {
            PhotoSet::Generated => {
                static JPEGS: OnceLock<Vec<(&str, Vec<u8>)>> = OnceLock::new();
                let all = JPEGS.get_or_init(|| {
                    crate::test_photos::ALL
                        .iter()
                        .map(|p| (p.name, p.jpeg()))
                        .collect()
                });
                all.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, jpeg)| jpeg.clone())
                    .unwrap_or_else(|| panic!("no generated photo {name}"))
            }
            PhotoSet::Reference(dir) => {
                let path = dir.join(name);
                std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            }
        }
    }
}

impl std::fmt::Display for PhotoSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PhotoSet::Generated => f.write_str("generated"),
            PhotoSet::Reference(_) => f.write_str("reference"),
        }
    }
}

/// The generated set, and the reference set when `../shared/testdata/photos` is beside the
/// checkout. Its absence is written to stderr directly, past the test harness's capture, so a
/// fresh clone's `cargo test` shows what it did not check.
fn photo_sets(test: &str) -> Vec<PhotoSet> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata/photos");
    if dir.is_dir() {
        vec![PhotoSet::Generated, PhotoSet::Reference(dir)]
    } else {
        let _ = writeln!(
            std::io::stderr(),
            "{test}: skipped on the reference photos ({} is absent); ran on the generated ones",
            dir.display()
        );
        vec![PhotoSet::Generated]
    }
}

const LARGE: [&str; 3] = [
    "cups-1920x1080.jpg",
    "leaf-1920x1080.jpg",
    "water-1920x1080.jpg",
];
const SMALL: [&str; 3] = ["cups-320x180.jpg", "leaf-320x180.jpg", "water-320x180.jpg"];

/// Decodes a JPEG fully (test oracle): (width, height, channels).
fn dims(jpeg: &[u8]) -> (u32, u32, usize) {
    let mut d = jpeg_decoder::Decoder::new(jpeg);
    let px = d.decode().expect("output decodes");
    let info = d.info().expect("info");
    (
        u32::from(info.width),
        u32::from(info.height),
        px.len() / (usize::from(info.width) * usize::from(info.height)),
    )
}

/// A smooth synthetic picture (gradients and a few edges), `channels` 1 or 3.
fn synthetic(w: u32, h: u32, channels: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity((w * h * channels) as usize);
    for y in 0..h {
        for x in 0..w {
            let edge = if (x / 97 + y / 61) % 2 == 0 { 40 } else { 0 };
            let r = ((x * 255 / w) as u8).saturating_add(edge);
            let g = (y * 255 / h) as u8;
            let b = (((x + y) * 255 / (w + h)) as u8).saturating_add(edge / 2);
            if channels == 1 {
                v.push(((u32::from(r) + u32::from(g) + u32::from(b)) / 3) as u8);
            } else {
                v.extend_from_slice(&[r, g, b]);
            }
        }
    }
    v
}

#[test]
fn full_hd_photos_become_480_wide_and_smaller() {
    for set in photo_sets("full_hd_photos_become_480_wide_and_smaller") {
        for name in LARGE {
            let input = set.photo(name);
            let out = transcode(&input, &Variant::MOBILE, &Limits::DEFAULT)
                .unwrap_or_else(|e| panic!("{set} {name}: {e}"));
            assert_eq!((out.width, out.height), (480, 270), "{set} {name}");
            assert_eq!((out.source_width, out.source_height), (1920, 1080));
            assert_eq!(out.format, OutputFormat::Jpeg);
            assert!(
                out.bytes.len() * 4 < input.len(),
                "{set} {name}: {} -> {} bytes",
                input.len(),
                out.bytes.len()
            );
            assert_eq!(dims(&out.bytes), (480, 270, 3), "{set} {name}");
            assert!(out
                .header_value(&Variant::MOBILE)
                .contains("from=1920x1080; to=480x270"));
        }
    }
}

#[test]
fn the_other_variants() {
    for set in photo_sets("the_other_variants") {
        let input = set.photo("cups-1920x1080.jpg");
        let high = transcode(&input, &Variant::HIGH, &Limits::DEFAULT).expect("high");
        assert_eq!((high.width, high.height), (1280, 720));
        let low = transcode(&input, &Variant::LOW, &Limits::DEFAULT).expect("low");
        assert_eq!((low.width, low.height), (320, 180));
        let mobile = transcode(&input, &Variant::MOBILE, &Limits::DEFAULT).expect("mobile");
        assert!(low.bytes.len() < mobile.bytes.len() && mobile.bytes.len() < high.bytes.len());
        assert_eq!(Variant::for_quality(ImageQuality::Original), None);
        assert_eq!(
            Variant::for_quality(ImageQuality::Mobile),
            Some(Variant::MOBILE)
        );
    }
}

#[test]
fn small_originals_pass_through() {
    for set in photo_sets("small_originals_pass_through") {
        for name in SMALL {
            assert_eq!(
                transcode(&set.photo(name), &Variant::MOBILE, &Limits::DEFAULT),
                Err(Passthrough::Small),
                "{set} {name}"
            );
        }
        // Exactly the variant's width is not upscaled or re-encoded either.
        let px = synthetic(480, 200, 3);
        let jpeg = mozjpeg_rs::Encoder::new(mozjpeg_rs::Preset::BaselineFastest)
            .encode_rgb(&px, 480, 200)
            .unwrap();
        assert_eq!(
            transcode(&jpeg, &Variant::MOBILE, &Limits::DEFAULT),
            Err(Passthrough::Small)
        );
    }
}

#[test]
fn target_sizes_keep_the_aspect_and_never_upscale() {
    assert_eq!(target_size(1920, 1080, 480), Some((480, 270)));
    assert_eq!(target_size(1080, 1920, 480), Some((480, 853)));
    assert_eq!(target_size(4000, 3, 480), Some((480, 1)));
    assert_eq!(target_size(65535, 1, 480), Some((480, 1)));
    assert_eq!(target_size(480, 270, 480), None);
    assert_eq!(target_size(320, 180, 480), None);
    assert_eq!(target_size(0, 10, 480), None);
    assert_eq!(target_size(10, 0, 480), None);
}

#[test]
fn decompression_bombs_are_refused_from_the_header() {
    for set in photo_sets("decompression_bombs_are_refused_from_the_header") {
        let bomb = jpeg_header(0xC0, 65535, 65535, 3);
        assert_eq!(
            transcode(&bomb, &Variant::MOBILE, &Limits::DEFAULT),
            Err(Passthrough::TooManyPixels {
                width: 65535,
                height: 65535
            })
        );
        // Just over the baseline cap; progressive has its own, lower one.
        assert!(matches!(
            plan(
                &jpeg_header(0xC0, 4097, 4096, 3),
                &Variant::MOBILE,
                &Limits::DEFAULT
            ),
            Err(Passthrough::TooManyPixels { .. })
        ));
        assert!(plan(
            &jpeg_header(0xC2, 3840, 2160, 3),
            &Variant::MOBILE,
            &Limits::DEFAULT
        )
        .is_ok());
        assert!(matches!(
            plan(
                &jpeg_header(0xC2, 4096, 4096, 3),
                &Variant::MOBILE,
                &Limits::DEFAULT
            ),
            Err(Passthrough::TooManyPixels { .. })
        ));
        // The bomb header followed by a real scan of a small image: the header still decides.
        let mut real = set.photo("cups-320x180.jpg");
        // Patch the SOF of the real file to claim 65535×65535.
        let sof = real
            .windows(2)
            .position(|w| w == [0xFF, 0xC0])
            .expect("a baseline SOF");
        real[sof + 5..sof + 7].copy_from_slice(&65535u16.to_be_bytes());
        real[sof + 7..sof + 9].copy_from_slice(&65535u16.to_be_bytes());
        assert!(matches!(
            transcode(&real, &Variant::MOBILE, &Limits::DEFAULT),
            Err(Passthrough::TooManyPixels { .. })
        ));
    }
}

#[test]
fn too_many_bytes_are_not_read() {
    for set in photo_sets("too_many_bytes_are_not_read") {
        let limits = Limits {
            max_input_bytes: 1000,
            ..Limits::DEFAULT
        };
        assert_eq!(
            transcode(&set.photo("cups-1920x1080.jpg"), &Variant::MOBILE, &limits),
            Err(Passthrough::TooLarge { max: 1000 })
        );
    }
}

#[test]
fn foreign_and_unusual_inputs_pass_through_with_a_reason() {
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend_from_slice(&[0, 0, 7, 128, 0, 0, 4, 56, 8, 2, 0, 0, 0]);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (png, "unsupported_format"),
        (b"GIF89a\x80\x07\x38\x04".to_vec(), "unsupported_format"),
        (b"SQLite format 3\0".to_vec(), "unsupported_format"),
        (Vec::new(), "unsupported_format"),
        (jpeg_header(0xC0, 1920, 1080, 4), "cmyk"),
        (jpeg_header(0xC0, 1920, 1080, 2), "unsupported_jpeg"),
        (jpeg_header(0xC3, 1920, 1080, 3), "unsupported_jpeg"),
        (jpeg_header(0xC9, 1920, 1080, 3), "unsupported_jpeg"),
        (jpeg_header(0xC0, 1920, 0, 3), "unsupported_jpeg"),
        (vec![0xFF, 0xD8, 0xFF], "corrupt"),
        // A frame header but no tables and no scan.
        (jpeg_header(0xC0, 1920, 1080, 3), "corrupt"),
    ];
    for (input, reason) in cases {
        let got = transcode(&input, &Variant::MOBILE, &Limits::DEFAULT);
        assert_eq!(
            got.as_ref().map_err(Passthrough::reason),
            Err(reason),
            "{:?}",
            input.get(..input.len().min(12))
        );
        assert!(got
            .err()
            .is_some_and(|e| e.header_value() == format!("passthrough; reason={reason}")));
    }
}

#[test]
fn greyscale_and_progressive_jpegs_are_transcoded() {
    let grey = mozjpeg_rs::Encoder::new(mozjpeg_rs::Preset::BaselineBalanced)
        .quality(90)
        .encode_gray(&synthetic(1600, 900, 1), 1600, 900)
        .unwrap();
    let out = transcode(&grey, &Variant::MOBILE, &Limits::DEFAULT).expect("grey");
    assert_eq!(dims(&out.bytes), (480, 270, 1));

    let progressive = mozjpeg_rs::Encoder::new(mozjpeg_rs::Preset::ProgressiveBalanced)
        .quality(90)
        .encode_rgb(&synthetic(1280, 960, 3), 1280, 960)
        .unwrap();
    assert!(matches!(
        probe(&progressive),
        Probe::Jpeg(JpegFacts {
            progressive: true,
            ..
        })
    ));
    let out = transcode(&progressive, &Variant::MOBILE, &Limits::DEFAULT).expect("progressive");
    assert_eq!(dims(&out.bytes), (480, 360, 3));
}

#[test]
fn an_exif_rotated_jpeg_passes_through() {
    for set in photo_sets("an_exif_rotated_jpeg_passes_through") {
        let input = set.photo("cups-1920x1080.jpg");
        // Insert APP1 Exif with orientation 6 right after SOI.
        let mut tiff = b"MM\x00\x2a\x00\x00\x00\x08".to_vec();
        tiff.extend_from_slice(&1u16.to_be_bytes());
        tiff.extend_from_slice(&0x0112u16.to_be_bytes());
        tiff.extend_from_slice(&3u16.to_be_bytes());
        tiff.extend_from_slice(&1u32.to_be_bytes());
        tiff.extend_from_slice(&6u16.to_be_bytes());
        tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        let mut seg = b"Exif\0\0".to_vec();
        seg.extend_from_slice(&tiff);
        let mut rotated = vec![0xFF, 0xD8, 0xFF, 0xE1];
        rotated.extend_from_slice(&(seg.len() as u16 + 2).to_be_bytes());
        rotated.extend_from_slice(&seg);
        rotated.extend_from_slice(&input[2..]);
        assert_eq!(
            transcode(&rotated, &Variant::MOBILE, &Limits::DEFAULT),
            Err(Passthrough::Orientation)
        );
    }
}

#[test]
fn a_transcode_that_would_grow_passes_through() {
    // Noise at quality 5 is a small file of 8×8 blocks; at 70 the resized blocks' edges cost
    // more than the whole original.
    let mut rng = Rng(7);
    let noise: Vec<u8> = (0..600 * 400 * 3).map(|_| rng.next_u64() as u8).collect();
    let tiny = mozjpeg_rs::Encoder::new(mozjpeg_rs::Preset::ProgressiveSmallest)
        .quality(5)
        .encode_rgb(&noise, 600, 400)
        .unwrap();
    assert_eq!(
        transcode(&tiny, &Variant::MOBILE, &Limits::DEFAULT).map(|t| t.bytes.len()),
        Err(Passthrough::NotSmaller),
        "original {} bytes",
        tiny.len()
    );
}

#[test]
fn truncated_inputs_never_panic() {
    for set in photo_sets("truncated_inputs_never_panic") {
        let input = set.photo("water-1920x1080.jpg");
        let variant = Variant {
            name: "test",
            max_width: 200,
            ..Variant::LOW
        };
        for cut in [
            0,
            1,
            2,
            3,
            100,
            600,
            input.len() / 10,
            input.len() / 2,
            input.len() - 2,
        ] {
            match transcode(&input[..cut], &variant, &Limits::DEFAULT) {
                // jpeg-decoder fills a scan that ends early; a smaller, valid JPEG is a fine answer.
                Ok(out) => assert_eq!(dims(&out.bytes).0, 200, "{set} cut {cut}"),
                Err(e) => assert!(
                    matches!(e, Passthrough::Corrupt | Passthrough::UnsupportedFormat(_)),
                    "{set} cut {cut}: {e:?}"
                ),
            }
        }
    }
}

#[test]
fn corrupted_bytes_never_panic() {
    for set in photo_sets("corrupted_bytes_never_panic") {
        let input = set.photo("leaf-320x180.jpg");
        let variant = Variant {
            name: "test",
            max_width: 100,
            ..Variant::LOW
        };
        let mut rng = Rng(0x5EED_1234_ABCD_0001);
        let (mut ok, mut passed) = (0, 0);
        for _ in 0..300 {
            let mut bad = input.clone();
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(bad.len());
                bad[at] = rng.next_u64() as u8;
            }
            if rng.below(4) == 0 {
                bad.truncate(rng.below(bad.len()));
            }
            match transcode(&bad, &variant, &Limits::DEFAULT) {
                Ok(out) => {
                    // Whatever came out is a real JPEG of the promised size.
                    let (w, _, _) = dims(&out.bytes);
                    assert_eq!(w, 100);
                    ok += 1;
                }
                Err(_) => passed += 1,
            }
        }
        assert!(
            ok > 0 && ok + passed == 300,
            "{set} {ok} transcoded, {passed} passed"
        );
    }
}

#[test]
fn json_snapshot_field_is_transcoded_in_place() {
    for set in photo_sets("json_snapshot_field_is_transcoded_in_place") {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let input = set.photo("cups-1920x1080.jpg");
        let body = serde_json::json!({
            "camera_id": "c1",
            "image_base64": b64.encode(&input),
            "width": 1920,
        });
        let raw = serde_json::to_vec(&body).unwrap();
        let (out, t) =
            json::transcode_field(&raw, "image_base64", &Variant::MOBILE, &Limits::DEFAULT)
                .expect("transcoded");
        let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(doc["camera_id"], "c1");
        assert_eq!(doc["width"], 1920);
        let jpeg = b64.decode(doc["image_base64"].as_str().unwrap()).unwrap();
        assert_eq!(jpeg, t.bytes);
        assert_eq!(dims(&jpeg), (480, 270, 3));
        assert!(out.len() * 4 < raw.len());

        // A data URL keeps its prefix.
        let body = serde_json::json!({"thumbnail_base64": format!("data:image/jpeg;base64,{}", b64.encode(&input))});
        let (out, _) = json::transcode_field(
            &serde_json::to_vec(&body).unwrap(),
            "thumbnail_base64",
            &Variant::MOBILE,
            &Limits::DEFAULT,
        )
        .expect("transcoded");
        let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert!(doc["thumbnail_base64"]
            .as_str()
            .unwrap()
            .starts_with("data:image/jpeg;base64,/9j/"));

        for (body, reason) in [
            (b"not json".to_vec(), "unsupported_format"),
            (br#"{"other": 1}"#.to_vec(), "unsupported_format"),
            (br#"{"image_base64": 5}"#.to_vec(), "unsupported_format"),
            (br#"{"image_base64": "!!!"}"#.to_vec(), "corrupt"),
            (
                format!(
                    r#"{{"image_base64": "{}"}}"#,
                    b64.encode(set.photo("cups-320x180.jpg"))
                )
                .into_bytes(),
                "small",
            ),
        ] {
            assert_eq!(
                json::transcode_field(&body, "image_base64", &Variant::MOBILE, &Limits::DEFAULT)
                    .map(|_| ())
                    .map_err(|e| e.reason()),
                Err(reason)
            );
        }
    }
}

/// Decodes a WebP with upstream image-webp (test oracle): (width, height, lossy, RGB pixels).
fn webp_decode(webp: &[u8]) -> (u32, u32, bool, Vec<u8>) {
    let mut d = upstream_image_webp::WebPDecoder::new(std::io::Cursor::new(webp)).expect("WebP");
    let (w, h) = d.dimensions();
    let lossy = d.is_lossy();
    assert!(!d.has_alpha());
    let mut buf = vec![0; d.output_buffer_size().expect("size")];
    d.read_image(&mut buf).expect("WebP decodes");
    (w, h, lossy, buf)
}

#[test]
fn full_hd_photos_become_480_wide_webp() {
    for set in photo_sets("full_hd_photos_become_480_wide_webp") {
        for name in LARGE {
            let input = set.photo(name);
            let out = transcode_to(
                &input,
                &Variant::MOBILE,
                OutputFormat::Webp,
                &Limits::DEFAULT,
            )
            .unwrap_or_else(|e| panic!("{set} {name}: {e}"));
            assert_eq!(out.format, OutputFormat::Webp);
            assert_eq!((out.width, out.height), (480, 270), "{set} {name}");
            assert_eq!(&out.bytes[..4], b"RIFF");
            assert_eq!(
                &out.bytes[8..16],
                b"WEBPVP8 ",
                "{set} {name}: simple lossy file"
            );
            let (w, h, lossy, px) = webp_decode(&out.bytes);
            assert_eq!((w, h, lossy), (480, 270, true), "{set} {name}");
            assert_eq!(px.len(), 480 * 270 * 3);
            // The "480×270, ~15 KB" class, far below the original.
            assert!(
                out.bytes.len() * 8 < input.len() && out.bytes.len() < 25_000,
                "{set} {name}: {} -> {} bytes",
                input.len(),
                out.bytes.len()
            );
            assert!(out
                .header_value(&Variant::MOBILE)
                .starts_with("transcoded; variant=mobile; format=webp; from=1920x1080"));
            // Close to the JPEG of the same variant: the same picture, not a broken one.
            let jpeg = transcode(&input, &Variant::MOBILE, &Limits::DEFAULT).expect("jpeg");
            let mut d = jpeg_decoder::Decoder::new(jpeg.bytes.as_slice());
            let jpx = d.decode().expect("jpeg decodes");
            let mean_abs = px
                .iter()
                .zip(&jpx)
                .map(|(a, b)| u64::from(a.abs_diff(*b)))
                .sum::<u64>() as f64
                / px.len() as f64;
            assert!(
                mean_abs < 6.0,
                "{set} {name}: mean |webp - jpeg| = {mean_abs:.2}"
            );
        }
    }
}

#[test]
fn webp_for_greyscale_other_variants_and_odd_sizes() {
    for set in photo_sets("webp_for_greyscale_other_variants_and_odd_sizes") {
        let grey = mozjpeg_rs::Encoder::new(mozjpeg_rs::Preset::BaselineBalanced)
            .quality(90)
            .encode_gray(&synthetic(1600, 900, 1), 1600, 900)
            .unwrap();
        let out = transcode_to(
            &grey,
            &Variant::MOBILE,
            OutputFormat::Webp,
            &Limits::DEFAULT,
        )
        .expect("grey");
        assert_eq!(webp_decode(&out.bytes).0, 480);
        let input = set.photo("leaf-1920x1080.jpg");
        for (variant, size) in [(Variant::HIGH, (1280, 720)), (Variant::LOW, (320, 180))] {
            let out = transcode_to(&input, &variant, OutputFormat::Webp, &Limits::DEFAULT)
                .expect("variant");
            let (w, h, _, _) = webp_decode(&out.bytes);
            assert_eq!((w, h), size);
        }
        // Sizes that are not multiples of the 16 px macroblock, and a 1 px high strip.
        for (w, h) in [(1001, 333), (4000, 3), (977, 1500)] {
            let jpeg = mozjpeg_rs::Encoder::new(mozjpeg_rs::Preset::BaselineBalanced)
                .quality(95)
                .encode_rgb(&synthetic(w, h, 3), w, h)
                .unwrap();
            let (tw, th) = target_size(w, h, 480).unwrap();
            match transcode_to(
                &jpeg,
                &Variant::MOBILE,
                OutputFormat::Webp,
                &Limits::DEFAULT,
            ) {
                Ok(out) => {
                    let (dw, dh, _, _) = webp_decode(&out.bytes);
                    assert_eq!((dw, dh), (tw, th), "{set} {w}x{h}");
                }
                Err(p) => assert_eq!(p, Passthrough::NotSmaller, "{set} {w}x{h}"),
            }
        }
    }
}

#[test]
fn webp_past_the_vp8_size_limit_is_refused_not_a_panic() {
    let px = Pixels {
        width: 480,
        height: encode::WEBP_MAX_DIMENSION + 1,
        channels: 1,
        data: vec![128; 480 * (encode::WEBP_MAX_DIMENSION as usize + 1)],
    };
    assert_eq!(encode::webp(&px, 80), Err(Passthrough::EncodeFailed));
    let short = Pixels {
        width: 480,
        height: 270,
        channels: 3,
        data: vec![0; 100],
    };
    assert_eq!(encode::webp(&short, 80), Err(Passthrough::EncodeFailed));
}

#[test]
fn webp_never_more_bytes_than_the_original() {
    // A tiny, heavily compressed original just over the variant's width: any re-encode grows it.
    let px = synthetic(500, 40, 3);
    let jpeg = mozjpeg_rs::Encoder::new(mozjpeg_rs::Preset::ProgressiveSmallest)
        .quality(5)
        .encode_rgb(&px, 500, 40)
        .unwrap();
    match transcode_to(
        &jpeg,
        &Variant::MOBILE,
        OutputFormat::Webp,
        &Limits::DEFAULT,
    ) {
        Ok(out) => assert!(out.bytes.len() < jpeg.len()),
        Err(p) => assert_eq!(p, Passthrough::NotSmaller),
    }
}

#[test]
fn every_decode_scale_and_jpeg_effort_gives_the_target_size() {
    for set in photo_sets("every_decode_scale_and_jpeg_effort_gives_the_target_size") {
        let input = set.photo("water-1920x1080.jpg");
        for decode_oversample in [1, 2] {
            for effort in [JpegEffort::Fast, JpegEffort::Small] {
                let variant = Variant {
                    jpeg: JpegSettings {
                        effort,
                        decode_oversample,
                        ..Variant::MOBILE.jpeg
                    },
                    ..Variant::MOBILE
                };
                let out = transcode_to(&input, &variant, OutputFormat::Jpeg, &Limits::DEFAULT)
                    .expect("transcodes");
                assert_eq!(
                    dims(&out.bytes),
                    (480, 270, 3),
                    "{set} {effort:?} {decode_oversample}"
                );
                let Probe::Jpeg(facts) = probe(&out.bytes) else {
                    panic!("{set} {effort:?}: not a JPEG");
                };
                // Fast is baseline (any decoder, shown top to bottom); Small is progressive.
                assert_eq!(facts.progressive, effort == JpegEffort::Small);
            }
            let variant = Variant {
                webp: WebpSettings {
                    decode_oversample,
                    ..Variant::MOBILE.webp
                },
                ..Variant::MOBILE
            };
            let out = transcode_to(&input, &variant, OutputFormat::Webp, &Limits::DEFAULT)
                .expect("transcodes");
            assert_eq!((out.width, out.height), (480, 270));
        }
    }
}
