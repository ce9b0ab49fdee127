//! Scan bombs (issue 20 §2): a JPEG whose few bytes declare thousands of scans, each of which
//! makes the decoder walk the whole image, is refused from its headers, before any decoding; a
//! real progressive JPEG still transcodes. The inputs are made here, not read from files.

use super::*;

/// A smooth gradient picture, RGB.
fn gradient(w: u32, h: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            v.extend_from_slice(&[
                (x * 255 / w) as u8,
                (y * 255 / h) as u8,
                ((x ^ y) & 0xFF) as u8,
            ]);
        }
    }
    v
}

/// A progressive JPEG as mozjpeg writes one (its own scan script).
fn progressive(w: u32, h: u32) -> Vec<u8> {
    mozjpeg_rs::Encoder::new(mozjpeg_rs::Preset::ProgressiveBalanced)
        .quality(85)
        .encode_rgb(&gradient(w, h), w, h)
        .expect("encodes")
}

/// The identifier of the frame's first component (read from SOF2, walking the segments before
/// the first scan by their lengths).
fn first_component_id(jpeg: &[u8]) -> u8 {
    let mut pos = 2;
    loop {
        assert_eq!(jpeg[pos], 0xFF, "a marker at {pos}");
        let code = jpeg[pos + 1];
        let len = usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
        if code == 0xC2 {
            // length(2) precision(1) height(2) width(2) count(1), then id, sampling, table.
            return jpeg[pos + 10];
        }
        assert_ne!(code, 0xDA, "no SOF2 before the first scan");
        pos += 2 + len;
    }
}

/// `jpeg` with `extra` empty scans inserted before its EOI: DC successive-approximation
/// refinements of the first component (Ss = Se = 0, Ah = 1, Al = 0) with no entropy-coded data.
/// Each is 10 bytes, legal, and decoded by a full pass over the component's blocks.
fn with_empty_scans(jpeg: &[u8], extra: usize) -> Vec<u8> {
    assert!(jpeg.ends_with(&[0xFF, 0xD9]));
    let id = first_component_id(jpeg);
    let scan = [0xFF, 0xDA, 0x00, 0x08, 0x01, id, 0x00, 0x00, 0x00, 0x10];
    let body = &jpeg[..jpeg.len() - 2];
    let mut out = Vec::with_capacity(body.len() + extra * scan.len() + 2);
    out.extend_from_slice(body);
    for _ in 0..extra {
        out.extend_from_slice(&scan);
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

fn scans(jpeg: &[u8]) -> u32 {
    match probe(jpeg) {
        Probe::Jpeg(f) => f.scans,
        other => panic!("not a JPEG: {other:?}"),
    }
}

#[test]
fn a_real_progressive_jpeg_has_few_scans_and_still_transcodes() {
    let jpeg = progressive(1280, 960);
    let n = scans(&jpeg);
    assert!(
        (2..=Limits::DEFAULT.max_scans).contains(&n),
        "mozjpeg wrote {n} scans"
    );
    let out = transcode(&jpeg, &Variant::MOBILE, &Limits::DEFAULT).expect("transcodes");
    assert_eq!((out.width, out.height), (480, 360));
    // A baseline JPEG is one scan.
    let baseline = mozjpeg_rs::Encoder::new(mozjpeg_rs::Preset::BaselineFastest)
        .encode_rgb(&gradient(64, 48), 64, 48)
        .expect("encodes");
    assert_eq!(scans(&baseline), 1);
}

#[test]
fn the_decoder_takes_the_empty_scans_so_they_are_a_real_bomb() {
    // Without the limits, each extra scan is decoded (a pass over the image), not rejected:
    // what makes thousands of them cost seconds.
    let jpeg = progressive(640, 480);
    let bomb = with_empty_scans(&jpeg, 40);
    assert_eq!(scans(&bomb), scans(&jpeg) + 40);
    let mut decoder = jpeg_decoder::Decoder::new(&bomb[..]);
    let pixels = decoder
        .decode()
        .expect("the decoder accepts the empty scans");
    assert_eq!(pixels.len(), 640 * 480 * 3);
}

#[test]
fn a_scan_bomb_is_passed_through_from_its_headers() {
    let jpeg = progressive(1280, 960);
    let bomb = with_empty_scans(&jpeg, 5000);
    let n = scans(&bomb);
    assert_eq!(n, scans(&jpeg) + 5000);
    let refused = Passthrough::TooManyScans {
        scans: n,
        max: Limits::DEFAULT.max_scans,
    };
    // Decided in `plan`, which decodes nothing.
    assert_eq!(
        plan(&bomb, &Variant::MOBILE, &Limits::DEFAULT).map(|_| ()),
        Err(refused.clone())
    );
    assert_eq!(
        transcode_to(
            &bomb,
            &Variant::MOBILE,
            OutputFormat::Webp,
            &Limits::DEFAULT
        ),
        Err(refused)
    );
    assert_eq!(
        Passthrough::TooManyScans { scans: n, max: 32 }.header_value(),
        "passthrough; reason=too_many_scans"
    );
    // One scan over the limit is enough.
    let limit = Limits::DEFAULT.max_scans as usize;
    let just_over = with_empty_scans(&jpeg, limit + 1 - scans(&jpeg) as usize);
    assert!(matches!(
        transcode(&just_over, &Variant::MOBILE, &Limits::DEFAULT),
        Err(Passthrough::TooManyScans { .. })
    ));
}

/// SOI, SOF2 of `w`×`h` (3 components), `n` scan headers with no data, EOI: what the probe and
/// `plan` read, nothing a decoder could finish.
fn header_only(w: u16, h: u16, n: usize) -> Vec<u8> {
    let mut v = vec![0xFF, 0xD8, 0xFF, 0xC2, 0x00, 0x11, 0x08];
    v.extend_from_slice(&h.to_be_bytes());
    v.extend_from_slice(&w.to_be_bytes());
    v.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    for _ in 0..n {
        v.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x00, 0x10]);
    }
    v.extend_from_slice(&[0xFF, 0xD9]);
    v
}

#[test]
fn the_work_budget_bounds_scans_times_pixels() {
    let budget = Limits::DEFAULT.max_scan_pixels;
    // 4096×2048 (8.4 MP, the progressive cap): 10 scans (libjpeg's script) fit, 20 — under the
    // scan limit — do not.
    assert!(plan(
        &header_only(4096, 2048, 10),
        &Variant::MOBILE,
        &Limits::DEFAULT
    )
    .is_ok());
    assert_eq!(
        plan(
            &header_only(4096, 2048, 20),
            &Variant::MOBILE,
            &Limits::DEFAULT
        )
        .map(|_| ()),
        Err(Passthrough::OverBudget {
            scan_pixels: 4096 * 2048 * 20,
            max: budget,
        })
    );
    // A 1080p picture may use every scan the limit allows.
    assert!(plan(
        &header_only(1920, 1080, 32),
        &Variant::MOBILE,
        &Limits::DEFAULT
    )
    .is_ok());
    // The budget is its own limit: a tighter one refuses what the scan limit lets through.
    let tight = Limits {
        max_scan_pixels: 1920 * 1080 * 4,
        ..Limits::DEFAULT
    };
    assert!(matches!(
        plan(&header_only(1920, 1080, 5), &Variant::MOBILE, &tight),
        Err(Passthrough::OverBudget { .. })
    ));
    assert_eq!(
        Passthrough::OverBudget {
            scan_pixels: 1,
            max: 0
        }
        .reason(),
        "over_budget"
    );
}
