//! Photo-like JPEGs made in code, for tests and benchmarks of the thumbnail pipeline in a checkout
//! that has no reference photos beside it (`../shared/testdata/photos`, which CI has).
//!
//! The set mirrors the reference set's names and geometry: three scenes (`cups`, `leaf`,
//! `water`), each as a 1920×1080 baseline 4:2:0 JPEG at quality 80 and as the 320×180 thumbnail
//! ArgusAI writes (quality 85). The names say which reference photo a file stands in for, not
//! what it shows.
//!
//! What makes them photo-like where the pipeline cares: smooth lighting gradients and
//! low-frequency structure (what resizing keeps), soft-edged objects (edges that ring when
//! resized badly), fine texture and sensor grain (what makes a photo's JPEG large: ~180-330 KB
//! at 1920×1080, ~12-20 KB at 320×180, like the reference photos), and a mid-scale texture that
//! survives being made smaller, so the live stream's 640 and 1280 px frames weigh what the
//! reference photos' do (lighter frames would make a shaped link look roomier than a camera's
//! frames find it). Everything is a pure function of the scene's seed and the size: the same
//! bytes on every machine and every run.

use crate::fuzzing::XorShift;

/// One generated photo: a scene at one size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestPhoto {
    /// File name, as in the reference set, e.g. `cups-1920x1080.jpg`.
    pub name: &'static str,
    scene: Scene,
    pub width: u32,
    pub height: u32,
    quality: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Scene {
    seed: u64,
    /// Sky/background colours, top and bottom (sRGB 0..=1).
    top: [u8; 3],
    bottom: [u8; 3],
    /// How many soft-edged objects stand in the scene.
    objects: usize,
    /// Strength of the mid-scale texture in percent (how busy the scene is once made smaller).
    detail: u8,
}

const CUPS: Scene = Scene {
    seed: 0x6375_7073,
    top: [232, 220, 200],
    bottom: [120, 86, 60],
    objects: 9,
    detail: 50,
};
const LEAF: Scene = Scene {
    seed: 0x6c65_6166,
    top: [70, 96, 40],
    bottom: [150, 90, 30],
    objects: 6,
    detail: 90,
};
const WATER: Scene = Scene {
    seed: 0x7761_7465,
    top: [150, 190, 230],
    bottom: [20, 70, 110],
    objects: 12,
    detail: 100,
};

const fn photo(name: &'static str, scene: Scene, width: u32, quality: u8) -> TestPhoto {
    TestPhoto {
        name,
        scene,
        width,
        height: width * 9 / 16,
        quality,
    }
}

/// Every generated photo: the three scenes at 1920×1080, then at 320×180.
pub const ALL: [TestPhoto; 6] = [
    photo("cups-1920x1080.jpg", CUPS, 1920, 80),
    photo("leaf-1920x1080.jpg", LEAF, 1920, 80),
    photo("water-1920x1080.jpg", WATER, 1920, 80),
    photo("cups-320x180.jpg", CUPS, 320, 85),
    photo("leaf-320x180.jpg", LEAF, 320, 85),
    photo("water-320x180.jpg", WATER, 320, 85),
];

/// The generated photo named `name`, if the set has one.
pub fn by_name(name: &str) -> Option<TestPhoto> {
    ALL.iter().copied().find(|p| p.name == name)
}

impl TestPhoto {
    /// The photo as a baseline 4:2:0 JPEG.
    pub fn jpeg(&self) -> Vec<u8> {
        let rgb = self.rgb();
        mozjpeg_rs::Encoder::new(mozjpeg_rs::Preset::BaselineFastest)
            .quality(self.quality)
            .subsampling(mozjpeg_rs::Subsampling::S420)
            .encode_rgb(&rgb, self.width, self.height)
            // Only invalid dimensions or a buffer of the wrong length fail, and neither can here.
            .expect("the generated pixels encode")
    }

    /// The photo's pixels, RGB, row-major.
    pub fn rgb(&self) -> Vec<u8> {
        render(&self.scene, self.width, self.height)
    }
}

/// A soft-edged, shaded, textured ellipse.
struct Object {
    cx: f32,
    cy: f32,
    /// Inverse radii (per unit of scene height).
    inv_rx: f32,
    inv_ry: f32,
    cos: f32,
    sin: f32,
    colour: [f32; 3],
    texture_seed: u64,
    /// Texture frequency, cycles per scene height.
    texture_freq: f32,
}

fn unit(rng: &mut XorShift) -> f32 {
    (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32
}

fn objects(scene: &Scene) -> Vec<Object> {
    let mut rng = XorShift(scene.seed | 1);
    (0..scene.objects)
        .map(|_| {
            let angle = unit(&mut rng) * std::f32::consts::PI;
            let rx = 0.06 + unit(&mut rng) * 0.3;
            let ry = 0.05 + unit(&mut rng) * 0.25;
            Object {
                cx: unit(&mut rng) * 16.0 / 9.0,
                cy: 0.2 + unit(&mut rng) * 0.8,
                inv_rx: 1.0 / rx,
                inv_ry: 1.0 / ry,
                cos: angle.cos(),
                sin: angle.sin(),
                colour: [unit(&mut rng), unit(&mut rng), unit(&mut rng)],
                texture_seed: rng.next_u64(),
                texture_freq: 20.0 + unit(&mut rng) * 100.0,
            }
        })
        .collect()
}

/// A hash of a lattice point, in `0..1`.
fn lattice(seed: u64, x: i32, y: i32) -> f32 {
    let mut h = seed ^ (x as u32 as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^= (y as u32 as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    h ^= h >> 29;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 32;
    (h >> 40) as f32 / (1u64 << 24) as f32
}

/// Smoothly interpolated value noise in `0..1`.
fn value_noise(seed: u64, x: f32, y: f32) -> f32 {
    let (xf, yf) = (x.floor(), y.floor());
    let (xi, yi) = (xf as i32, yf as i32);
    let (tx, ty) = (x - xf, y - yf);
    let (sx, sy) = (tx * tx * (3.0 - 2.0 * tx), ty * ty * (3.0 - 2.0 * ty));
    let a = lattice(seed, xi, yi);
    let b = lattice(seed, xi + 1, yi);
    let c = lattice(seed, xi, yi + 1);
    let d = lattice(seed, xi + 1, yi + 1);
    let top = a + (b - a) * sx;
    let bottom = c + (d - c) * sx;
    top + (bottom - top) * sy
}

/// Fractal noise: `octaves` layers of value noise, each twice the frequency and half the weight
/// of the one before; about `-0.5..0.5`.
fn fbm(seed: u64, x: f32, y: f32, octaves: u32) -> f32 {
    let (mut sum, mut weight, mut freq, mut total) = (0.0, 1.0, 1.0, 0.0);
    for octave in 0..octaves {
        sum += weight * value_noise(seed.wrapping_add(u64::from(octave)), x * freq, y * freq);
        total += weight;
        weight *= 0.5;
        freq *= 2.0;
    }
    sum / total - 0.5
}

fn render(scene: &Scene, width: u32, height: u32) -> Vec<u8> {
    let objects = objects(scene);
    let scale = 1.0 / height as f32;
    // Edges are ~1.5 pixels wide at every size (anti-aliased, as a lens draws them).
    let edge = 1.5 * scale;
    let mut grain = XorShift(scene.seed.rotate_left(17) | 1);
    let mut out = Vec::with_capacity((width * height * 3) as usize);
    let lerp = |a: u8, b: u8, t: f32| f32::from(a) / 255.0 * (1.0 - t) + f32::from(b) / 255.0 * t;
    for y in 0..height {
        let v = (y as f32 + 0.5) * scale;
        let background = [
            lerp(scene.top[0], scene.bottom[0], v),
            lerp(scene.top[1], scene.bottom[1], v),
            lerp(scene.top[2], scene.bottom[2], v),
        ];
        for x in 0..width {
            let u = (x as f32 + 0.5) * scale;
            // Background: gradient, cloud-like structure, a mid-scale texture (what is left
            // of a photo's detail once it is made smaller) and a little fine texture.
            let light = 1.0
                + 0.35 * fbm(scene.seed, u * 3.0, v * 3.0, 3)
                + f32::from(scene.detail) / 100.0 * fbm(scene.seed ^ 0xaa, u * 60.0, v * 60.0, 2)
                + 0.22 * fbm(scene.seed ^ 0x55, u * 90.0, v * 90.0, 2);
            let mut px = background.map(|c| c * light);
            for o in &objects {
                let (dx, dy) = (u - o.cx, v - o.cy);
                let along = (dx * o.cos + dy * o.sin) * o.inv_rx;
                let across = (dy * o.cos - dx * o.sin) * o.inv_ry;
                let r2 = along * along + across * across;
                if r2 > 1.3 {
                    continue;
                }
                // Distance to the rim, roughly in scene units, for an anti-aliased edge.
                let r = r2.sqrt();
                let to_rim = (1.0 - r) / o.inv_rx.max(o.inv_ry);
                let coverage = (to_rim / edge + 0.5).clamp(0.0, 1.0);
                if coverage == 0.0 {
                    continue;
                }
                // Lit from the top left, darker towards the rim, with its own surface texture.
                let shade = 0.55 + 0.45 * (1.0 - r) - 0.25 * (along + across) * 0.5;
                let texture =
                    1.0 + 0.45 * fbm(o.texture_seed, u * o.texture_freq, v * o.texture_freq, 2);
                for (c, &colour) in px.iter_mut().zip(&o.colour) {
                    let surface = colour * shade * texture;
                    *c += (surface - *c) * coverage;
                }
            }
            // Sensor grain: ±~3.5 % per channel.
            for c in &mut px {
                let noise = ((grain.next_u64() >> 56) as f32 - 127.5) / 127.5;
                let value = (*c + noise * 0.035).clamp(0.0, 1.0);
                out.push((value * 255.0 + 0.5) as u8);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_set_has_every_reference_name_and_size() {
        let names: Vec<_> = ALL.iter().map(|p| (p.name, p.width, p.height)).collect();
        assert_eq!(
            names,
            [
                ("cups-1920x1080.jpg", 1920, 1080),
                ("leaf-1920x1080.jpg", 1920, 1080),
                ("water-1920x1080.jpg", 1920, 1080),
                ("cups-320x180.jpg", 320, 180),
                ("leaf-320x180.jpg", 320, 180),
                ("water-320x180.jpg", 320, 180),
            ]
        );
        assert_eq!(by_name("leaf-320x180.jpg").map(|p| p.width), Some(320));
        assert_eq!(by_name("leaf.png"), None);
    }

    #[test]
    fn pixels_are_deterministic_and_scenes_differ() {
        let small = by_name("cups-320x180.jpg").expect("in the set");
        assert_eq!(small.rgb(), small.rgb());
        let other = by_name("water-320x180.jpg").expect("in the set");
        assert_ne!(small.rgb(), other.rgb());
    }
}
