//! Face embeddings: the face aligned onto the model's template by a similarity transform of the
//! detector's keypoints, then the model's output, L2-normalised. Compared by cosine.
//!
//! The transform (rotation, uniform scale, translation) is the least-squares fit that takes the
//! template points (input pixels) onto the keypoints (image pixels); the crop is that square of
//! the image, sampled bilinearly by [`rotated_tensor`]. Everything about the model — input size,
//! normalisation, which keypoint goes where, the embedding's length — is its manifest entry.

use crate::detect::Face;
use crate::error::ModelError;
use crate::pixels::{rotated_tensor, RotatedSquare};
use ekyc_models::manifest::{EmbeddingSpec, InputSpec};
use ekyc_models::plan::{output_f32, Plan};
use image::RgbImage;

/// A loaded embedding model.
pub struct Embedder {
    pub name: String,
    plan: Plan,
    input: InputSpec,
    spec: EmbeddingSpec,
}

/// An L2-normalised face embedding. Never logged, never sent to a client.
#[derive(Clone, PartialEq)]
pub struct Embedding(Vec<f32>);

impl std::fmt::Debug for Embedding {
    // Biometric data: the values are not printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Embedding({} dims)", self.0.len())
    }
}

impl Embedding {
    /// L2-normalise `v`; `None` when it is zero or not finite.
    pub fn from_raw(mut v: Vec<f32>) -> Option<Embedding> {
        let norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        if !(norm.is_finite() && norm > 1e-12) {
            return None;
        }
        for x in &mut v {
            *x = (f64::from(*x) / norm) as f32;
        }
        Some(Embedding(v))
    }

    /// The L2-normalised mean of embeddings of one length; `None` when there are none, the
    /// lengths differ or they cancel out.
    pub fn mean(all: &[&Embedding]) -> Option<Embedding> {
        let first = all.first()?;
        if all.iter().any(|e| e.len() != first.len()) {
            return None;
        }
        let mut sum = vec![0f32; first.len()];
        for e in all {
            for (s, x) in sum.iter_mut().zip(&e.0) {
                *s += x;
            }
        }
        Embedding::from_raw(sum)
    }

    /// Cosine similarity (-1..1); 0 when the lengths differ.
    pub fn cosine(&self, other: &Embedding) -> f32 {
        if self.0.len() != other.0.len() {
            return 0.0;
        }
        self.0
            .iter()
            .zip(&other.0)
            .map(|(a, b)| f64::from(*a) * f64::from(*b))
            .sum::<f64>() as f32
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A similarity transform `p = scale · R(angle) · (t - centre_t) + centre_p`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub scale: f32,
    pub angle: f32,
    /// Mean of the template points (input pixels).
    pub from: (f32, f32),
    /// Mean of the image points.
    pub to: (f32, f32),
}

impl Similarity {
    /// The least-squares similarity taking `from[i]` onto `to[i]` (Umeyama's closed form in 2-D,
    /// no reflection). `None` with fewer than two pairs, coinciding template points or a
    /// non-finite input.
    pub fn fit(from: &[(f32, f32)], to: &[(f32, f32)]) -> Option<Similarity> {
        if from.len() != to.len() || from.len() < 2 {
            return None;
        }
        let n = from.len() as f64;
        let mean = |v: &[(f32, f32)]| {
            let (sx, sy) = v.iter().fold((0f64, 0f64), |(a, b), p| {
                (a + f64::from(p.0), b + f64::from(p.1))
            });
            (sx / n, sy / n)
        };
        let (mf, mt) = (mean(from), mean(to));
        let (mut a, mut b, mut norm) = (0f64, 0f64, 0f64);
        for (f, t) in from.iter().zip(to) {
            let (fx, fy) = (f64::from(f.0) - mf.0, f64::from(f.1) - mf.1);
            let (tx, ty) = (f64::from(t.0) - mt.0, f64::from(t.1) - mt.1);
            a += fx * tx + fy * ty;
            b += fx * ty - fy * tx;
            norm += fx * fx + fy * fy;
        }
        if !(norm > 1e-9 && a.is_finite() && b.is_finite()) {
            return None;
        }
        let (sc, ss) = (a / norm, b / norm);
        let scale = (sc * sc + ss * ss).sqrt();
        if !(scale > 1e-9 && scale.is_finite()) {
            return None;
        }
        Some(Similarity {
            scale: scale as f32,
            angle: ss.atan2(sc) as f32,
            from: (mf.0 as f32, mf.1 as f32),
            to: (mt.0 as f32, mt.1 as f32),
        })
    }

    /// Where the template point `t` lands in the image.
    pub fn apply(&self, t: (f32, f32)) -> (f32, f32) {
        let (u, v) = (t.0 - self.from.0, t.1 - self.from.1);
        let (s, c) = self.angle.sin_cos();
        (
            self.to.0 + self.scale * (c * u - s * v),
            self.to.1 + self.scale * (s * u + c * v),
        )
    }

    /// The square of the image that an `n` × `n` input covers under this transform.
    pub fn square(&self, n: f32) -> RotatedSquare {
        let (cx, cy) = self.apply((n / 2.0, n / 2.0));
        RotatedSquare {
            cx,
            cy,
            side: n * self.scale,
            angle: self.angle,
            mirror: false,
        }
    }
}

impl Embedder {
    pub fn new(
        name: String,
        plan: Plan,
        input: InputSpec,
        spec: EmbeddingSpec,
    ) -> Result<Embedder, ModelError> {
        let out: Option<usize> = plan.output_shapes().first().map(|s| s.iter().product());
        if out != Some(spec.dims) || input.width != input.height {
            return Err(ModelError::IoMismatch {
                name,
                message: format!(
                    "a {}-value first output and a square input expected; outputs {:?}, input {}x{}",
                    spec.dims,
                    plan.output_shapes(),
                    input.width,
                    input.height
                ),
            });
        }
        Ok(Embedder {
            name,
            plan,
            input,
            spec,
        })
    }

    /// The manifest's calibrated face-match threshold (cosine), if any.
    pub fn match_threshold(&self) -> Option<f32> {
        self.spec.match_threshold
    }

    /// The alignment of `face` onto the template (image coordinates of `face`).
    pub fn alignment(&self, face: &Face) -> Option<Similarity> {
        let (from, to): (Vec<_>, Vec<_>) = self
            .spec
            .template
            .iter()
            .filter_map(|t| {
                let k = face.keypoints.get(t.keypoint)?;
                Some(((t.x, t.y), (k.x, k.y)))
            })
            .unzip();
        Similarity::fit(&from, &to)
    }

    /// The embedding of `face` in `img` (same coordinates).
    pub fn embed(&self, img: &RgbImage, face: &Face) -> Result<Embedding, ModelError> {
        let sim = self
            .alignment(face)
            .ok_or_else(|| ModelError::inference(&self.name, "keypoints too close to align"))?;
        let sq = sim.square(self.input.width as f32);
        let t = rotated_tensor(&self.input, img, &sq)
            .map_err(|e| ModelError::inference(&self.name, e))?;
        let out = self.plan.run(t)?;
        let v = output_f32(&out, 0)
            .ok_or_else(|| ModelError::inference(&self.name, "embedding output missing"))?;
        Embedding::from_raw(v.to_vec())
            .ok_or_else(|| ModelError::inference(&self.name, "embedding is zero or not finite"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fit_recovers_a_known_similarity() {
        let from = [
            (38.29, 51.70),
            (73.53, 51.50),
            (56.03, 71.74),
            (56.14, 92.28),
        ];
        let truth = Similarity {
            scale: 2.5,
            angle: 0.3,
            from: (10.0, -4.0),
            to: (300.0, 200.0),
        };
        let to: Vec<(f32, f32)> = from.iter().map(|p| truth.apply(*p)).collect();
        let fit = Similarity::fit(&from, &to).unwrap_or(truth);
        for (f, t) in from.iter().zip(&to) {
            let p = fit.apply(*f);
            assert!(
                (p.0 - t.0).abs() < 1e-3 && (p.1 - t.1).abs() < 1e-3,
                "{p:?} vs {t:?}"
            );
        }
        assert!(
            (fit.scale - 2.5).abs() < 1e-5 && (fit.angle - 0.3).abs() < 1e-5,
            "{fit:?}"
        );
        // The square an input covers: the template's centre, scaled and rotated.
        let sq = fit.square(112.0);
        assert!((sq.side - 280.0).abs() < 1e-3);
        let c = fit.apply((56.0, 56.0));
        assert!((sq.cx - c.0).abs() < 1e-4 && (sq.cy - c.1).abs() < 1e-4);
        // Its corner (grid 0, 0) is the template's corner.
        let corner = sq.to_image(0.0, 0.0, 112.0);
        let want = fit.apply((0.0, 0.0));
        assert!((corner.0 - want.0).abs() < 1e-3 && (corner.1 - want.1).abs() < 1e-3);
    }

    #[test]
    fn degenerate_fits_are_refused() {
        assert_eq!(Similarity::fit(&[(1.0, 1.0)], &[(2.0, 2.0)]), None);
        assert_eq!(
            Similarity::fit(&[(1.0, 1.0), (1.0, 1.0)], &[(2.0, 2.0), (3.0, 3.0)]),
            None
        );
        assert_eq!(
            Similarity::fit(&[(0.0, 0.0), (1.0, 1.0)], &[(2.0, 2.0), (2.0, 2.0)]),
            None
        );
        assert_eq!(
            Similarity::fit(&[(0.0, 0.0), (1.0, 1.0)], &[(f32::NAN, 2.0), (2.0, 2.0)]),
            None
        );
    }

    #[test]
    fn embeddings_are_unit_length_and_compared_by_cosine() {
        let a = Embedding::from_raw(vec![3.0, 4.0]).unwrap_or(Embedding(vec![]));
        assert!((a.cosine(&a) - 1.0).abs() < 1e-6);
        let b = Embedding::from_raw(vec![-4.0, 3.0]).unwrap_or(Embedding(vec![]));
        assert!(a.cosine(&b).abs() < 1e-6);
        assert_eq!(Embedding::from_raw(vec![0.0, 0.0]), None);
        assert_eq!(Embedding::from_raw(vec![f32::NAN, 1.0]), None);
        assert_eq!(format!("{a:?}"), "Embedding(2 dims)");
        let short = Embedding::from_raw(vec![1.0]).unwrap_or(Embedding(vec![]));
        assert_eq!(a.cosine(&short), 0.0);
        // The mean of (0.6, 0.8) and (-0.8, 0.6), normalised: (-0.2, 1.4) / |…|.
        let m = Embedding::mean(&[&a, &b]).unwrap_or(Embedding(vec![]));
        let n = (0.04f32 + 1.96).sqrt();
        assert!(
            (m.0[0] + 0.2 / n).abs() < 1e-6 && (m.0[1] - 1.4 / n).abs() < 1e-6,
            "{:?}",
            m.0
        );
        assert_eq!(Embedding::mean(&[]), None);
        assert_eq!(Embedding::mean(&[&a, &short]), None);
    }
}
