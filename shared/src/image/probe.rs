//! What an image is, from its headers only: format, dimensions and the JPEG facts that decide
//! whether it can be transcoded. Reads headers, never pixels, and allocates nothing, so a
//! decompression bomb (a 65535×65535 header on a few hundred bytes) is refused in microseconds.
//!
//! For a JPEG it also counts the scans (SOS markers) up to EOI: the marker segments are walked by
//! their lengths, and the entropy-coded data after each scan header is skipped with `memchr` to
//! the next `0xFF` that starts a marker (`0xFF 0x00` is a stuffed data byte, `0xFF 0xD0`–`0xD7`
//! a restart marker inside the data, `0xFF 0xFF` fill). A decoder walks every block of the image
//! once per scan, so a few hundred bytes of empty scans cost it seconds; the
//! count is what [`super::plan`] limits. Between segments, bytes that are not a marker are
//! skipped as `jpeg-decoder` and libjpeg skip them, so every scan the decoder would decode is
//! counted. Linear in the input, which [`super::Limits::max_input_bytes`] bounds.

/// The container, as sniffed from the magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
    Gif,
    Webp,
    Unknown,
}

impl Format {
    pub const fn as_str(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::Gif => "gif",
            Format::Webp => "webp",
            Format::Unknown => "unknown",
        }
    }
}

/// The facts of a JPEG's frame header (SOFn) and the segments before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JpegFacts {
    pub width: u32,
    pub height: u32,
    /// Colour components: 1 (greyscale), 3 (YCbCr/RGB), 4 (CMYK/YCCK).
    pub components: u8,
    /// Sample precision in bits (8 for nearly every JPEG; 12 and 16 exist).
    pub precision: u8,
    pub progressive: bool,
    /// Arithmetic-coded (SOF9–SOF15 without the lossless/differential ones we refuse anyway).
    pub arithmetic: bool,
    pub lossless: bool,
    /// Hierarchical (differential) frames: SOF5–7, SOF13–15.
    pub differential: bool,
    /// EXIF orientation (1–8) when an EXIF segment before the frame header names one.
    pub orientation: Option<u16>,
    /// Scan headers (SOS markers) between the frame header and EOI (or the end of the input).
    pub scans: u32,
}

/// What [`probe`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Jpeg(JpegFacts),
    /// A non-JPEG format, with its dimensions when the header gives them cheaply.
    Other {
        format: Format,
        dimensions: Option<(u32, u32)>,
    },
    /// Starts like a JPEG but its headers are broken or end before the frame header.
    BrokenJpeg,
}

/// Sniffs `bytes`. For a JPEG, reads the segments up to the first frame header, then counts
/// the scans after it (see the module documentation).
pub fn probe(bytes: &[u8]) -> Probe {
    if bytes.starts_with(&[0xFF, 0xD8]) {
        return match jpeg(bytes) {
            Some(facts) => Probe::Jpeg(facts),
            None => Probe::BrokenJpeg,
        };
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        // IHDR is the first chunk: length(4) "IHDR"(4) width(4) height(4).
        let dims = match (be32(bytes, 16), be32(bytes, 20)) {
            (Some(w), Some(h)) if bytes.get(12..16) == Some(b"IHDR") => Some((w, h)),
            _ => None,
        };
        return Probe::Other {
            format: Format::Png,
            dimensions: dims,
        };
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        let dims = match (le16(bytes, 6), le16(bytes, 8)) {
            (Some(w), Some(h)) => Some((u32::from(w), u32::from(h))),
            _ => None,
        };
        return Probe::Other {
            format: Format::Gif,
            dimensions: dims,
        };
    }
    if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        return Probe::Other {
            format: Format::Webp,
            dimensions: None,
        };
    }
    Probe::Other {
        format: Format::Unknown,
        dimensions: None,
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Walks the marker segments from SOI to the first SOFn, then counts the scans after it.
fn jpeg(bytes: &[u8]) -> Option<JpegFacts> {
    let mut pos = 2usize;
    let mut orientation = None;
    loop {
        // A marker: one or more 0xFF fill bytes, then the code.
        if *bytes.get(pos)? != 0xFF {
            return None;
        }
        while *bytes.get(pos)? == 0xFF {
            pos += 1;
        }
        let code = *bytes.get(pos)?;
        pos += 1;
        match code {
            // Standalone markers (TEM, RSTn) carry no length.
            0x01 | 0xD0..=0xD7 => continue,
            // SOS or EOI before any frame header: not a usable image.
            0xDA | 0xD9 | 0xD8 | 0x00 => return None,
            _ => {}
        }
        let len = usize::from(be16(bytes, pos)?);
        if len < 2 {
            return None;
        }
        let seg = bytes.get(pos + 2..pos + len)?;
        match code {
            0xC0..=0xCF if !matches!(code, 0xC4 | 0xC8 | 0xCC) => {
                let precision = *seg.first()?;
                let height = u32::from(be16(seg, 1)?);
                let width = u32::from(be16(seg, 3)?);
                let components = *seg.get(5)?;
                let scans = count_scans(bytes, pos + len);
                return Some(JpegFacts {
                    width,
                    height,
                    components,
                    precision,
                    progressive: matches!(code, 0xC2 | 0xC6 | 0xCA | 0xCE),
                    arithmetic: code >= 0xC9,
                    lossless: matches!(code, 0xC3 | 0xC7 | 0xCB | 0xCF),
                    differential: matches!(code, 0xC5 | 0xC6 | 0xC7 | 0xCD | 0xCE | 0xCF),
                    orientation,
                    scans,
                });
            }
            0xE1 if seg.starts_with(b"Exif\0\0") => {
                orientation = exif_orientation(seg.get(6..)?).or(orientation);
            }
            _ => {}
        }
        pos += len;
    }
}

/// The SOS markers from `pos` to EOI or the end of `bytes`. A truncated or damaged tail ends
/// the count; it never fails (the decoder then decides what the damage means).
fn count_scans(bytes: &[u8], mut pos: usize) -> u32 {
    let mut scans = 0u32;
    // Every marker, as the decoder finds it: the next 0xFF, any fill bytes, then a code that is
    // neither 0x00 (stuffing, skipped as garbage between segments) nor 0xFF.
    while let Some(code) = next_marker(bytes, &mut pos) {
        match code {
            0xD9 => break,
            // Standalone: SOI, TEM, RSTn carry no length.
            0xD8 | 0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let Some(len) = be16(bytes, pos).map(usize::from).filter(|&l| l >= 2) else {
            break;
        };
        pos = pos.saturating_add(len);
        if code == 0xDA {
            scans = scans.saturating_add(1);
            pos = skip_entropy_coded(bytes, pos);
        }
    }
    scans
}

/// The code of the next marker at or after `pos` (leaving `pos` just past it), skipping any
/// bytes that are not one.
fn next_marker(bytes: &[u8], pos: &mut usize) -> Option<u8> {
    loop {
        let ff = *pos + memchr::memchr(0xFF, bytes.get(*pos..)?)?;
        let mut at = ff + 1;
        while *bytes.get(at)? == 0xFF {
            at += 1;
        }
        let code = *bytes.get(at)?;
        *pos = at + 1;
        if code != 0x00 {
            return Some(code);
        }
    }
}

/// The position of the marker that ends the entropy-coded data starting at `pos`: the first
/// 0xFF followed by neither 0x00 (a stuffed 0xFF data byte) nor a restart marker (RSTn: part of
/// the scan) nor 0xFF (fill: the marker comes after). `bytes.len()` when there is none.
fn skip_entropy_coded(bytes: &[u8], mut pos: usize) -> usize {
    while let Some(found) = bytes.get(pos..).and_then(|rest| memchr::memchr(0xFF, rest)) {
        let ff = pos + found;
        match bytes.get(ff + 1) {
            Some(0x00 | 0xD0..=0xD7) => pos = ff + 2,
            Some(0xFF) => pos = ff + 1,
            Some(_) => return ff,
            None => break,
        }
    }
    bytes.len()
}

/// The orientation tag (0x0112) of IFD0 of a TIFF structure, if present and sane.
fn exif_orientation(tiff: &[u8]) -> Option<u16> {
    let little = match tiff.get(0..2)? {
        b"II" => true,
        b"MM" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let s = tiff.get(at..at.checked_add(2)?)?;
        Some(if little {
            u16::from_le_bytes([s[0], s[1]])
        } else {
            u16::from_be_bytes([s[0], s[1]])
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let s = tiff.get(at..at.checked_add(4)?)?;
        Some(if little {
            u32::from_le_bytes([s[0], s[1], s[2], s[3]])
        } else {
            u32::from_be_bytes([s[0], s[1], s[2], s[3]])
        })
    };
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    let count = usize::from(u16_at(ifd)?);
    for i in 0..count.min(256) {
        let entry = ifd.checked_add(2)?.checked_add(i.checked_mul(12)?)?;
        if u16_at(entry)? == 0x0112 {
            // Type SHORT (3), count 1: the value sits in the first two bytes of the value field.
            let v = u16_at(entry + 8)?;
            return (1..=8).contains(&v).then_some(v);
        }
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// SOI, then SOF`code` with the given geometry, then EOI (no tables, no scan).
    pub(crate) fn jpeg_header(code: u8, w: u16, h: u16, components: u8) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8, 0xFF, code];
        let len = 8 + 3 * u16::from(components);
        v.extend_from_slice(&len.to_be_bytes());
        v.push(8);
        v.extend_from_slice(&h.to_be_bytes());
        v.extend_from_slice(&w.to_be_bytes());
        v.push(components);
        for c in 0..components {
            v.extend_from_slice(&[c + 1, 0x11, 0]);
        }
        v.extend_from_slice(&[0xFF, 0xD9]);
        v
    }

    #[test]
    fn reads_sof_geometry_and_kind() {
        let p = probe(&jpeg_header(0xC0, 1920, 1080, 3));
        let Probe::Jpeg(f) = p else { panic!("{p:?}") };
        assert_eq!((f.width, f.height, f.components), (1920, 1080, 3));
        assert!(!f.progressive && !f.arithmetic && !f.lossless);
        let Probe::Jpeg(f) = probe(&jpeg_header(0xC2, 10, 20, 1)) else {
            panic!()
        };
        assert!(f.progressive);
        assert_eq!(f.components, 1);
        let Probe::Jpeg(f) = probe(&jpeg_header(0xC3, 10, 20, 3)) else {
            panic!()
        };
        assert!(f.lossless);
        let Probe::Jpeg(f) = probe(&jpeg_header(0xC9, 10, 20, 3)) else {
            panic!()
        };
        assert!(f.arithmetic);
    }

    #[test]
    fn a_bomb_header_is_read_without_decoding() {
        let Probe::Jpeg(f) = probe(&jpeg_header(0xC0, 65535, 65535, 3)) else {
            panic!()
        };
        assert_eq!((f.width, f.height), (65535, 65535));
    }

    #[test]
    fn broken_and_foreign_inputs() {
        assert_eq!(probe(&[0xFF, 0xD8]), Probe::BrokenJpeg);
        assert_eq!(probe(&[0xFF, 0xD8, 0xFF, 0xDA, 0, 2]), Probe::BrokenJpeg);
        assert_eq!(probe(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]), Probe::BrokenJpeg);
        assert_eq!(probe(&[0xFF, 0xD8, 0x12, 0x34]), Probe::BrokenJpeg);
        // A segment length pointing past the end.
        assert_eq!(
            probe(&[0xFF, 0xD8, 0xFF, 0xE0, 0xFF, 0xFF, 1]),
            Probe::BrokenJpeg
        );
        let mut h = jpeg_header(0xC0, 100, 100, 3);
        h.truncate(10);
        assert_eq!(probe(&h), Probe::BrokenJpeg);

        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&640u32.to_be_bytes());
        png.extend_from_slice(&480u32.to_be_bytes());
        assert_eq!(
            probe(&png),
            Probe::Other {
                format: Format::Png,
                dimensions: Some((640, 480))
            }
        );
        assert!(matches!(
            probe(b"GIF89a\x10\x00\x20\x00"),
            Probe::Other {
                format: Format::Gif,
                dimensions: Some((16, 32))
            }
        ));
        assert!(matches!(
            probe(b"RIFF\0\0\0\0WEBPVP8 "),
            Probe::Other {
                format: Format::Webp,
                ..
            }
        ));
        assert!(matches!(
            probe(b""),
            Probe::Other {
                format: Format::Unknown,
                ..
            }
        ));
        assert!(matches!(
            probe(b"SQLite format 3\0"),
            Probe::Other {
                format: Format::Unknown,
                ..
            }
        ));
    }

    /// SOI, SOF2 (one component), then `tail`.
    fn progressive_with(tail: &[u8]) -> Vec<u8> {
        let mut v = jpeg_header(0xC2, 16, 16, 1);
        v.truncate(v.len() - 2); // EOI
        v.extend_from_slice(tail);
        v
    }

    fn scans_of(bytes: &[u8]) -> u32 {
        let Probe::Jpeg(f) = probe(bytes) else {
            panic!("{:?}", probe(bytes))
        };
        f.scans
    }

    /// A scan header for component 1 (length 8), without its data.
    const SOS: [u8; 10] = [0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 0, 0x10];

    #[test]
    fn scans_are_counted_to_eoi() {
        assert_eq!(scans_of(&jpeg_header(0xC2, 16, 16, 1)), 0);
        let mut tail = Vec::new();
        for _ in 0..3 {
            tail.extend_from_slice(&SOS);
            tail.extend_from_slice(&[0x12, 0x34]);
        }
        tail.extend_from_slice(&[0xFF, 0xD9]);
        // After EOI nothing counts.
        tail.extend_from_slice(&SOS);
        assert_eq!(scans_of(&progressive_with(&tail)), 3);
        // Without EOI: counted to the end of the input.
        let mut truncated = tail[..tail.len() - 12].to_vec();
        truncated.extend_from_slice(&SOS);
        assert_eq!(scans_of(&progressive_with(&truncated)), 4);
    }

    #[test]
    fn entropy_coded_data_is_skipped_with_its_stuffing_and_restarts() {
        let mut tail = SOS.to_vec();
        // Data with stuffed 0xFF bytes, restart markers, and bytes that would be a scan header
        // if stuffing were not understood (0xFF 0x00 0xDA …).
        tail.extend_from_slice(&[0x01, 0xFF, 0x00, 0xDA, 0x00, 0x08, 0xFF, 0xD0, 0xFF, 0x00]);
        tail.extend_from_slice(&[0xFF, 0xD7, 0x55, 0xFF, 0x00, 0xFF, 0x00]);
        // Fill bytes before the next marker: the second scan.
        tail.extend_from_slice(&[0xFF, 0xFF, 0xFF]);
        tail.extend_from_slice(&SOS[1..]);
        tail.extend_from_slice(&[0x7F, 0xFF, 0x00]);
        // A DHT between scans (as progressive files have): its bytes are skipped by its length,
        // even one that looks like a scan header.
        tail.extend_from_slice(&[0xFF, 0xC4, 0x00, 0x08, 0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01]);
        tail.extend_from_slice(&SOS);
        tail.extend_from_slice(&[0xFF, 0xD9]);
        assert_eq!(scans_of(&progressive_with(&tail)), 3);
    }

    #[test]
    fn bytes_between_segments_are_skipped_as_the_decoder_skips_them() {
        // libjpeg and jpeg-decoder skip non-marker bytes (and 0xFF 0x00) between segments; a
        // scan hidden behind them is still a scan the decoder decodes.
        let mut tail = vec![0x00, 0x13, 0xFF, 0x00, 0x37];
        tail.extend_from_slice(&SOS);
        tail.extend_from_slice(&[0xFF, 0xD9]);
        assert_eq!(scans_of(&progressive_with(&tail)), 1);
        // A scan header whose length runs off the end counts, and ends the count (what would
        // follow is inside it), without failing the probe.
        let mut tail = vec![0xFF, 0xDA, 0xFF, 0xF0, 1, 1];
        tail.extend_from_slice(&SOS);
        assert_eq!(scans_of(&progressive_with(&tail)), 1);
    }

    #[test]
    fn exif_orientation_is_found() {
        // APP1 "Exif\0\0" + little-endian TIFF with one IFD0 entry: orientation = 6.
        let mut tiff = b"II\x2a\x00\x08\x00\x00\x00".to_vec();
        tiff.extend_from_slice(&1u16.to_le_bytes());
        tiff.extend_from_slice(&0x0112u16.to_le_bytes());
        tiff.extend_from_slice(&3u16.to_le_bytes());
        tiff.extend_from_slice(&1u32.to_le_bytes());
        tiff.extend_from_slice(&6u16.to_le_bytes());
        tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        let mut seg = b"Exif\0\0".to_vec();
        seg.extend_from_slice(&tiff);
        let mut v = vec![0xFF, 0xD8, 0xFF, 0xE1];
        v.extend_from_slice(&(seg.len() as u16 + 2).to_be_bytes());
        v.extend_from_slice(&seg);
        v.extend_from_slice(&jpeg_header(0xC0, 64, 32, 3)[2..]);
        let Probe::Jpeg(f) = probe(&v) else { panic!() };
        assert_eq!(f.orientation, Some(6));
        assert_eq!((f.width, f.height), (64, 32));
    }
}
