//! QR codes for pairing: the same symbol (error correction level M) rendered for a terminal,
//! as SVG and as PNG. Pure functions; nothing here touches files or the network.
//!
//! Every rendering has the 4-module quiet zone the standard asks for and draws dark modules
//! dark on a light background, which is what scanners expect. The terminal rendering sets its
//! own colours (black on bright white) so it scans on dark-themed terminals too.

use image::{ImageEncoder, Luma};
use qrcode::render::svg;
use qrcode::{Color, EcLevel, QrCode};

/// Modules of light margin around the symbol (ISO/IEC 18004 asks for 4).
pub const QUIET_ZONE: usize = 4;

/// Pixels per module in the PNG.
pub const PNG_MODULE_PX: u32 = 8;

/// Start of each terminal line: black foreground on bright white background.
const ANSI_START: &str = "\x1b[30;107m";
/// End of each terminal line: back to the terminal's own colours.
const ANSI_RESET: &str = "\x1b[0m";

#[derive(Debug, thiserror::Error)]
pub enum QrError {
    #[error("cannot make a QR code of this text: {0}")]
    Encode(String),
    #[error("cannot encode the QR code as PNG: {0}")]
    Png(String),
}

fn encode(text: &str) -> Result<QrCode, QrError> {
    QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|e| QrError::Encode(e.to_string()))
}

#[cfg(test)]
/// The symbol's modules (without quiet zone), row by row; `true` = dark.
pub fn modules(text: &str) -> Result<Vec<Vec<bool>>, QrError> {
    let code = encode(text)?;
    let width = code.width();
    let colors = code.to_colors();
    Ok(colors
        .chunks(width.max(1))
        .map(|row| row.iter().map(|c| *c == Color::Dark).collect())
        .collect())
}

/// The symbol for a terminal: two module rows per text line with the half blocks `▀ ▄ █`,
/// each line wrapped in ANSI colours (black on bright white) and ending in a newline. Each line
/// is `width + 2 * QUIET_ZONE` characters wide (not counting the colour escapes).
pub fn terminal(text: &str) -> Result<String, QrError> {
    let code = encode(text)?;
    let width = code.width();
    let colors = code.to_colors();
    let size = width + 2 * QUIET_ZONE;
    let dark = |x: usize, y: usize| -> bool {
        if x < QUIET_ZONE || y < QUIET_ZONE || x >= QUIET_ZONE + width || y >= QUIET_ZONE + width {
            return false;
        }
        colors
            .get((y - QUIET_ZONE) * width + (x - QUIET_ZONE))
            .is_some_and(|c| *c == Color::Dark)
    };
    let mut out = String::with_capacity((size + 16) * size.div_ceil(2) * 3);
    for row in (0..size).step_by(2) {
        out.push_str(ANSI_START);
        for x in 0..size {
            // The foreground (black) paints the half given by the glyph; the rest shows the
            // white background. A missing bottom row (odd height) is light.
            out.push(match (dark(x, row), dark(x, row + 1)) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        out.push_str(ANSI_RESET);
        out.push('\n');
    }
    Ok(out)
}

/// The symbol as a standalone SVG document, one user unit per module (scales without loss),
/// with the quiet zone; black modules on a white rectangle.
pub fn svg(text: &str) -> Result<String, QrError> {
    let code = encode(text)?;
    Ok(code
        .render::<svg::Color<'_>>()
        .quiet_zone(true)
        .module_dimensions(1, 1)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build())
}

/// The symbol as an 8-bit greyscale PNG, [`PNG_MODULE_PX`] pixels per module, with the quiet zone.
pub fn png(text: &str) -> Result<Vec<u8>, QrError> {
    let code = encode(text)?;
    let img = code
        .render::<Luma<u8>>()
        .quiet_zone(true)
        .module_dimensions(PNG_MODULE_PX, PNG_MODULE_PX)
        .dark_color(Luma([0]))
        .light_color(Luma([255]))
        .build();
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::L8,
        )
        .map_err(|e| QrError::Png(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URI: &str = "argusai://pair?code=K7P3QX&url=https%3A%2F%2Frelay.example.com&fp=sha256%3A\
                       9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

    fn strip_ansi(line: &str) -> String {
        line.replace(ANSI_START, "").replace(ANSI_RESET, "")
    }

    /// Reads the modules back out of the terminal rendering.
    fn terminal_modules(rendered: &str) -> Vec<Vec<bool>> {
        let mut rows = Vec::new();
        for line in rendered.lines() {
            let line = strip_ansi(line);
            let (top, bottom): (Vec<bool>, Vec<bool>) = line
                .chars()
                .map(|c| match c {
                    '█' => (true, true),
                    '▀' => (true, false),
                    '▄' => (false, true),
                    ' ' => (false, false),
                    other => panic!("unexpected character {other:?}"),
                })
                .unzip();
            rows.push(top);
            rows.push(bottom);
        }
        rows
    }

    /// Reads the modules back out of the SVG path (`M{x} {y}h{w}v{h}H{x}V{y}` per dark run).
    fn svg_modules(doc: &str, size: usize) -> Vec<Vec<bool>> {
        let d_start = doc.find(" d=\"").expect("path data") + 4;
        let d_len = doc[d_start..].find('"').expect("end of path data");
        let d = &doc[d_start..d_start + d_len];
        let mut grid = vec![vec![false; size]; size];
        for cmd in d.split('M').filter(|s| !s.is_empty()) {
            let (xy, rest) = cmd.split_once('h').expect("h");
            let (x, y) = xy.split_once(' ').expect("x y");
            let (w, rest) = rest.split_once('v').expect("v");
            let (h, _) = rest.split_once('H').expect("H");
            let [x, y, w, h]: [usize; 4] = [x, y, w, h].map(|n| n.parse().expect("number"));
            for row in grid.iter_mut().skip(y).take(h) {
                for cell in row.iter_mut().skip(x).take(w) {
                    *cell = true;
                }
            }
        }
        grid
    }

    fn with_quiet_zone(modules: &[Vec<bool>]) -> Vec<Vec<bool>> {
        let size = modules.len() + 2 * QUIET_ZONE;
        let mut grid = vec![vec![false; size]; size];
        for (y, row) in modules.iter().enumerate() {
            for (x, &dark) in row.iter().enumerate() {
                grid[y + QUIET_ZONE][x + QUIET_ZONE] = dark;
            }
        }
        grid
    }

    fn decode_png(bytes: &[u8]) -> image::GrayImage {
        image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
            .expect("PNG decodes")
            .to_luma8()
    }

    #[test]
    fn terminal_rendering_has_quiet_zone_and_the_modules() {
        let modules = modules(URI).unwrap();
        let size = modules.len() + 2 * QUIET_ZONE;
        let rendered = terminal(URI).unwrap();
        let lines: Vec<&str> = rendered.lines().collect();
        assert_eq!(lines.len(), size.div_ceil(2));
        for line in &lines {
            assert!(
                line.starts_with(ANSI_START) && line.ends_with(ANSI_RESET),
                "{line:?}"
            );
            assert_eq!(strip_ansi(line).chars().count(), size);
        }
        let mut read = terminal_modules(&rendered);
        assert!(read.len() == size || read.len() == size + 1);
        // The padding row of an odd height is light.
        if read.len() == size + 1 {
            assert!(read.pop().unwrap().iter().all(|d| !d));
        }
        assert_eq!(read, with_quiet_zone(&modules));
    }

    #[test]
    fn svg_is_well_formed_and_has_the_same_modules() {
        let modules = modules(URI).unwrap();
        let size = modules.len() + 2 * QUIET_ZONE;
        let doc = svg(URI).unwrap();
        assert!(doc.starts_with("<?xml"));
        assert!(doc.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(doc.contains(&format!("viewBox=\"0 0 {size} {size}\"")));
        assert!(doc.trim_end().ends_with("</svg>"));
        // Balanced: one <svg> … </svg>, self-closed rect and path, no stray markup.
        assert_eq!(doc.matches("<svg").count(), 1);
        assert_eq!(doc.matches("</svg>").count(), 1);
        assert_eq!(doc.matches('<').count(), doc.matches('>').count());
        assert_eq!(svg_modules(&doc, size), with_quiet_zone(&modules));
    }

    #[test]
    fn png_has_the_signature_plausible_size_and_the_same_modules() {
        let modules = modules(URI).unwrap();
        let size = modules.len() + 2 * QUIET_ZONE;
        let bytes = png(URI).unwrap();
        assert_eq!(bytes[..8], PNG_SIGNATURE);
        let img = decode_png(&bytes);
        let px = size as u32 * PNG_MODULE_PX;
        assert_eq!((img.width(), img.height()), (px, px));
        // Sample the centre of every module.
        let half = PNG_MODULE_PX / 2;
        let read: Vec<Vec<bool>> = (0..size as u32)
            .map(|y| {
                (0..size as u32)
                    .map(|x| {
                        img.get_pixel(x * PNG_MODULE_PX + half, y * PNG_MODULE_PX + half)
                            .0[0]
                            < 128
                    })
                    .collect()
            })
            .collect();
        assert_eq!(read, with_quiet_zone(&modules));
    }

    #[test]
    fn png_decodes_back_to_the_text() {
        let img = decode_png(&png(URI).unwrap());
        let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(
            img.width() as usize,
            img.height() as usize,
            |x, y| img.get_pixel(x as u32, y as u32).0[0],
        );
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1);
        let (meta, content) = grids[0].decode().expect("decodes");
        assert_eq!(content, URI);
        assert_eq!(meta.ecc_level, 0, "error correction level M"); // format bits: L=1, M=0, Q=3, H=2
    }

    #[test]
    fn terminal_rendering_decodes_back_to_the_text() {
        // Rasterise the terminal's modules as a scanner would see them on screen.
        let grid = terminal_modules(&terminal(URI).unwrap());
        let scale = 4;
        let (w, h) = (grid[0].len() * scale, grid.len() * scale);
        let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
            if grid[y / scale][x / scale] {
                0
            } else {
                255
            }
        });
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1);
        assert_eq!(grids[0].decode().expect("decodes").1, URI);
    }

    #[test]
    fn too_long_text_is_an_error_not_a_panic() {
        let long = "x".repeat(5000);
        assert!(matches!(terminal(&long), Err(QrError::Encode(_))));
        assert!(matches!(svg(&long), Err(QrError::Encode(_))));
        assert!(matches!(png(&long), Err(QrError::Encode(_))));
    }
}
