//! Image augmentation: seeded random flips, rotation, crop-and-scale, brightness and contrast,
//! noise and blur, applied to training images only (CHW `f32` in `[0, 1]`, as the trainer holds
//! them). Each is a few lines over the pixel grid the trainer already has, so no image crate
//! round trip (to `u8` and back) is needed.

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::ImageShape;
use crate::error::{Result, WickError};

/// Which augmentations a run applies, and how strongly. `Default` is none.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Augment {
    /// Mirror left–right with probability ½.
    pub flip_horizontal: bool,
    /// Mirror top–bottom with probability ½ (for photos taken from above: cells, leaves, parts).
    pub flip_vertical: bool,
    /// Rotate by a uniform angle in `±rotate_degrees`.
    pub rotate_degrees: f32,
    /// Zoom into a random crop of at least this share of each side (1 = no crop), scaled back to
    /// the full size.
    pub crop_min_side: f32,
    /// Shift brightness by up to `±brightness` (pixel values are 0–1).
    pub brightness: f32,
    /// Scale contrast by a factor in `1 ± contrast` around the image's mean.
    pub contrast: f32,
    /// Gaussian noise of this standard deviation.
    pub noise_std: f32,
    /// Blur with a Gaussian of up to this standard deviation in pixels, half the time.
    pub blur_sigma: f32,
}

/// The names `--augment` takes, each turning one augmentation on at its usual strength.
pub const AUGMENT_NAMES: [&str; 6] = ["flip", "rotate", "crop", "color", "noise", "blur"];

impl Augment {
    /// The usual strengths of the named augmentations (see [`AUGMENT_NAMES`]); `vflip` also
    /// mirrors top–bottom. An unknown name is an error that lists the known ones.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self> {
        let mut a = Self::default();
        for name in names {
            match name.trim() {
                "flip" => a.flip_horizontal = true,
                "vflip" => a.flip_vertical = true,
                "rotate" => a.rotate_degrees = 15.0,
                "crop" => a.crop_min_side = 0.8,
                "color" => {
                    a.brightness = 0.1;
                    a.contrast = 0.2;
                }
                "noise" => a.noise_std = 0.02,
                "blur" => a.blur_sigma = 1.0,
                "" => {}
                other => {
                    return Err(WickError::InvalidSpec(format!(
                        "`{other}` is not an augmentation; use any of {}, or vflip",
                        AUGMENT_NAMES.join(", ")
                    )))
                }
            }
        }
        Ok(a)
    }

    /// Whether the named augmentation (see [`Augment::from_names`]) is on.
    pub fn has(&self, name: &str) -> bool {
        match name {
            "flip" => self.flip_horizontal,
            "vflip" => self.flip_vertical,
            "rotate" => self.rotate_degrees > 0.0,
            "crop" => self.crop_min_side > 0.0 && self.crop_min_side < 1.0,
            "color" => self.brightness > 0.0 || self.contrast > 0.0,
            "noise" => self.noise_std > 0.0,
            "blur" => self.blur_sigma > 0.0,
            _ => false,
        }
    }

    /// Turns the named augmentation on at its usual strength, or off.
    pub fn set(&mut self, name: &str, on: bool) {
        let usual = Self::from_names([name]).unwrap_or_default();
        match name {
            "flip" => self.flip_horizontal = on,
            "vflip" => self.flip_vertical = on,
            "rotate" => self.rotate_degrees = if on { usual.rotate_degrees } else { 0.0 },
            "crop" => self.crop_min_side = if on { usual.crop_min_side } else { 0.0 },
            "color" => {
                (self.brightness, self.contrast) = if on {
                    (usual.brightness, usual.contrast)
                } else {
                    (0.0, 0.0)
                }
            }
            "noise" => self.noise_std = if on { usual.noise_std } else { 0.0 },
            "blur" => self.blur_sigma = if on { usual.blur_sigma } else { 0.0 },
            _ => {}
        }
    }

    /// Whether any augmentation is on.
    pub fn is_active(&self) -> bool {
        *self != Self::default() && self.check().is_ok()
    }

    /// Strengths out of range are an error naming the setting.
    pub fn check(&self) -> Result<()> {
        let bad = |name: &str, range: &str| {
            Err(WickError::InvalidSpec(format!(
                "augmentation `{name}` must be {range}"
            )))
        };
        if !(0.0..=180.0).contains(&self.rotate_degrees) {
            return bad("rotate_degrees", "between 0 and 180");
        }
        if !(self.crop_min_side == 0.0 || (0.1..=1.0).contains(&self.crop_min_side)) {
            return bad("crop_min_side", "0 (off) or between 0.1 and 1");
        }
        for (name, v) in [
            ("brightness", self.brightness),
            ("contrast", self.contrast),
            ("noise_std", self.noise_std),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(name, "between 0 and 1");
            }
        }
        if !(0.0..=5.0).contains(&self.blur_sigma) {
            return bad("blur_sigma", "between 0 and 5");
        }
        Ok(())
    }

    /// As [`Augment::apply`], drawing from a generator seeded with `seed` (previews draw the
    /// same versions every time).
    pub fn apply_seeded(&self, chw: &mut [f32], shape: ImageShape, seed: u64) {
        self.apply(
            chw,
            shape,
            &mut <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(seed),
        );
    }

    /// Augments one CHW image in place.
    pub fn apply(&self, chw: &mut [f32], shape: ImageShape, rng: &mut impl Rng) {
        let (h, w) = (shape.height, shape.width);
        if h == 0 || w == 0 || chw.len() != shape.len() {
            return;
        }
        let flip_x = self.flip_horizontal && rng.random_bool(0.5);
        let flip_y = self.flip_vertical && rng.random_bool(0.5);
        let angle = if self.rotate_degrees > 0.0 {
            rng.random_range(-self.rotate_degrees..=self.rotate_degrees)
                .to_radians()
        } else {
            0.0
        };
        let side = if self.crop_min_side > 0.0 && self.crop_min_side < 1.0 {
            rng.random_range(self.crop_min_side..=1.0)
        } else {
            1.0
        };
        // Where the crop's centre lands, so the crop stays inside the image.
        let (cx, cy) = (
            (1.0 - side) * rng.random_range(-0.5..=0.5f32),
            (1.0 - side) * rng.random_range(-0.5..=0.5f32),
        );
        if flip_x || flip_y || angle != 0.0 || side < 1.0 {
            warp(chw, shape, flip_x, flip_y, angle, side, (cx, cy));
        }
        if self.blur_sigma > 0.0 && rng.random_bool(0.5) {
            blur(chw, shape, rng.random_range(0.1..=self.blur_sigma.max(0.1)));
        }
        if self.brightness > 0.0 || self.contrast > 0.0 {
            let shift = if self.brightness > 0.0 {
                rng.random_range(-self.brightness..=self.brightness)
            } else {
                0.0
            };
            let factor = if self.contrast > 0.0 {
                rng.random_range(1.0 - self.contrast..=1.0 + self.contrast)
            } else {
                1.0
            };
            let mean = chw.iter().sum::<f32>() / chw.len() as f32;
            chw.iter_mut()
                .for_each(|v| *v = ((*v - mean) * factor + mean + shift).clamp(0.0, 1.0));
        }
        if self.noise_std > 0.0 {
            for v in chw.iter_mut() {
                // Box–Muller: two uniforms make one normal draw.
                let (u1, u2): (f32, f32) = (rng.random_range(f32::EPSILON..1.0), rng.random());
                let z = (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos();
                *v = (*v + z * self.noise_std).clamp(0.0, 1.0);
            }
        }
    }
}

/// Resamples every channel through one inverse map (flip, rotation about the centre, crop),
/// bilinearly; pixels that map outside the image take the nearest edge pixel.
fn warp(
    chw: &mut [f32],
    shape: ImageShape,
    flip_x: bool,
    flip_y: bool,
    angle: f32,
    side: f32,
    centre: (f32, f32),
) {
    let (h, w) = (shape.height, shape.width);
    let src = chw.to_vec();
    let (sin, cos) = angle.sin_cos();
    let (hf, wf) = (h as f32, w as f32);
    for y in 0..h {
        for x in 0..w {
            // Output pixel → centred unit coordinates → the crop → rotated back → source pixel.
            let mut u = (x as f32 + 0.5) / wf - 0.5;
            let mut v = (y as f32 + 0.5) / hf - 0.5;
            if flip_x {
                u = -u;
            }
            if flip_y {
                v = -v;
            }
            let (u, v) = (u * side + centre.0, v * side + centre.1);
            // Rotation in pixel units, so a non-square image is not sheared.
            let (px, py) = (u * wf, v * hf);
            let (sx, sy) = (cos * px - sin * py, sin * px + cos * py);
            let (fx, fy) = (
                (sx + wf / 2.0 - 0.5).clamp(0.0, wf - 1.0),
                (sy + hf / 2.0 - 0.5).clamp(0.0, hf - 1.0),
            );
            let (x0, y0) = (fx.floor() as usize, fy.floor() as usize);
            let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
            let (ax, ay) = (fx - x0 as f32, fy - y0 as f32);
            for c in 0..shape.channels {
                let plane = &src[c * h * w..(c + 1) * h * w];
                let top = plane[y0 * w + x0] * (1.0 - ax) + plane[y0 * w + x1] * ax;
                let bottom = plane[y1 * w + x0] * (1.0 - ax) + plane[y1 * w + x1] * ax;
                chw[c * h * w + y * w + x] = top * (1.0 - ay) + bottom * ay;
            }
        }
    }
}

/// A separable Gaussian blur of `sigma` pixels, edges clamped.
fn blur(chw: &mut [f32], shape: ImageShape, sigma: f32) {
    let (h, w) = (shape.height, shape.width);
    let radius = (2.0 * sigma).ceil() as isize;
    let kernel: Vec<f32> = (-radius..=radius)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = kernel.iter().sum();
    let kernel: Vec<f32> = kernel.iter().map(|k| k / total).collect();
    let mut tmp = vec![0.0f32; h * w];
    for c in 0..shape.channels {
        let plane = &mut chw[c * h * w..(c + 1) * h * w];
        for y in 0..h {
            for x in 0..w {
                tmp[y * w + x] = kernel
                    .iter()
                    .enumerate()
                    .map(|(k, wt)| {
                        wt * plane[y * w
                            + (x as isize + k as isize - radius).clamp(0, w as isize - 1) as usize]
                    })
                    .sum();
            }
        }
        for y in 0..h {
            for x in 0..w {
                plane[y * w + x] = kernel
                    .iter()
                    .enumerate()
                    .map(|(k, wt)| {
                        wt * tmp[(y as isize + k as isize - radius).clamp(0, h as isize - 1)
                            as usize
                            * w
                            + x]
                    })
                    .sum();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn gradient(shape: ImageShape) -> Vec<f32> {
        (0..shape.len())
            .map(|i| (i % shape.width) as f32 / shape.width as f32)
            .collect()
    }

    #[test]
    fn a_flip_mirrors_and_nothing_else_changes_the_image() {
        let shape = ImageShape {
            height: 4,
            width: 5,
            channels: 2,
        };
        let image = gradient(shape);
        let mut flipped = image.clone();
        warp(&mut flipped, shape, true, false, 0.0, 1.0, (0.0, 0.0));
        for c in 0..2 {
            for y in 0..4 {
                for x in 0..5 {
                    assert!(
                        (flipped[c * 20 + y * 5 + x] - image[c * 20 + y * 5 + (4 - x)]).abs()
                            < 1e-6
                    );
                }
            }
        }
        let mut same = image.clone();
        Augment::default().apply(&mut same, shape, &mut ChaCha8Rng::seed_from_u64(0));
        assert_eq!(same, image);
    }

    #[test]
    fn a_quarter_turn_of_a_square_image_moves_pixels_exactly() {
        let shape = ImageShape {
            height: 3,
            width: 3,
            channels: 1,
        };
        let image: Vec<f32> = (0..9).map(|i| i as f32 / 8.0).collect();
        let mut turned = image.clone();
        warp(
            &mut turned,
            shape,
            false,
            false,
            std::f32::consts::FRAC_PI_2,
            1.0,
            (0.0, 0.0),
        );
        // The output's top-left takes the source's top-right: a quarter turn, no blending.
        assert!((turned[0] - image[2]).abs() < 1e-5, "{turned:?}");
        assert!((turned[2] - image[8]).abs() < 1e-5, "{turned:?}");
        assert!((turned[4] - image[4]).abs() < 1e-6, "the centre stays");
    }

    #[test]
    fn every_augmentation_is_seeded_and_stays_in_range() {
        let shape = ImageShape {
            height: 16,
            width: 12,
            channels: 3,
        };
        let all = Augment::from_names(AUGMENT_NAMES).unwrap();
        assert!(all.is_active());
        let run = |seed| {
            let mut x = gradient(shape);
            all.apply(&mut x, shape, &mut ChaCha8Rng::seed_from_u64(seed));
            x
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
        assert!(run(5).iter().all(|v| (0.0..=1.0).contains(v)));
        let err = Augment::from_names(["flip", "zoom"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`zoom`") && err.contains("rotate"), "{err}");
        assert!(Augment {
            rotate_degrees: 400.0,
            ..Augment::default()
        }
        .check()
        .is_err());
        let mut a = Augment::default();
        for name in AUGMENT_NAMES.iter().chain(&["vflip"]) {
            a.set(name, true);
            assert!(a.has(name), "{name}");
        }
        assert_eq!(
            a,
            Augment {
                flip_vertical: true,
                ..all
            }
        );
        for name in AUGMENT_NAMES.iter().chain(&["vflip"]) {
            a.set(name, false);
        }
        assert_eq!(a, Augment::default());
    }

    #[test]
    fn blur_keeps_a_flat_image_flat_and_softens_an_edge() {
        let shape = ImageShape {
            height: 1,
            width: 9,
            channels: 1,
        };
        let mut flat = vec![0.5; 9];
        blur(&mut flat, shape, 1.0);
        assert!(flat.iter().all(|v| (v - 0.5).abs() < 1e-6));
        let mut edge: Vec<f32> = (0..9).map(|x| if x < 4 { 0.0 } else { 1.0 }).collect();
        blur(&mut edge, shape, 1.0);
        assert!(edge[3] > 0.1 && edge[4] < 0.9, "{edge:?}");
    }
}
