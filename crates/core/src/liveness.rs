//! Passive liveness: crop around the face as the reference does (or take the whole frame, as the
//! manifest says), preprocess per manifest, run,
//! turn the output into a live probability, and combine the models by weight.

use crate::detect::BBox;
use crate::error::{Error, ModelError};
use crate::pixels::{input_tensor, Rect};
use ekyc_models::manifest::{InputSpec, LivenessSpec, OutputKind, Region};
use ekyc_models::plan::{output_f32, Plan};
use image::RgbImage;
use serde::Serialize;

/// A loaded liveness classifier.
pub struct LivenessModel {
    pub name: String,
    plan: Plan,
    input: InputSpec,
    pub spec: LivenessSpec,
}

/// One model's output on one face.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelScore {
    pub model: String,
    /// Probability that the face is live, per this model.
    pub live_probability: f32,
    pub weight: f32,
}

/// The minivision crop (`CropImage._get_new_box`): a region `crop_scale` times the face box (reduced so
/// it fits), centred on the box, shifted (not clipped) to stay inside the image; inclusive integer bounds.
pub fn crop_region(img_w: u32, img_h: u32, b: &BBox, crop_scale: f32) -> Rect {
    let (w, h) = (img_w as f32, img_h as f32);
    let bw = b.width.max(1.0);
    let bh = b.height.max(1.0);
    let scale = crop_scale.min((h - 1.0) / bh).min((w - 1.0) / bw);
    let (nw, nh) = (bw * scale, bh * scale);
    let (cx, cy) = (b.x + bw / 2.0, b.y + bh / 2.0);
    let (mut l, mut t, mut r, mut bt) =
        (cx - nw / 2.0, cy - nh / 2.0, cx + nw / 2.0, cy + nh / 2.0);
    if l < 0.0 {
        r -= l;
        l = 0.0;
    }
    if t < 0.0 {
        bt -= t;
        t = 0.0;
    }
    if r > w - 1.0 {
        l -= r - (w - 1.0);
        r = w - 1.0;
    }
    if bt > h - 1.0 {
        t -= bt - (h - 1.0);
        bt = h - 1.0;
    }
    // Python int(): truncation toward zero; then clamp so the rectangle is always inside the image.
    let x0 = (l.trunc().max(0.0) as u32).min(img_w.saturating_sub(1));
    let y0 = (t.trunc().max(0.0) as u32).min(img_h.saturating_sub(1));
    let x1 = (r.trunc().max(0.0) as u32).clamp(x0, img_w.saturating_sub(1));
    let y1 = (bt.trunc().max(0.0) as u32).clamp(y0, img_h.saturating_sub(1));
    Rect {
        x: x0,
        y: y0,
        w: x1 - x0 + 1,
        h: y1 - y0 + 1,
    }
}

impl LivenessModel {
    pub fn new(
        name: String,
        plan: Plan,
        input: InputSpec,
        spec: LivenessSpec,
    ) -> Result<LivenessModel, ModelError> {
        let shapes = plan.output_shapes();
        let n_out: Option<usize> = shapes.first().map(|s| s.iter().product());
        let ok = match (spec.output, n_out) {
            (OutputKind::Softmax, Some(n)) => n >= 2 && spec.live_index < n,
            (OutputKind::SigmoidLive | OutputKind::SigmoidSpoof, Some(n)) => n == 1,
            (_, None) => false,
        };
        if !ok {
            return Err(ModelError::IoMismatch {
                name,
                message: format!(
                    "output {:?} (live_index {}) does not fit the model's first output {shapes:?}",
                    spec.output, spec.live_index
                ),
            });
        }
        Ok(LivenessModel {
            name,
            plan,
            input,
            spec,
        })
    }

    /// Live probability for the face `b` (in `img` coordinates).
    pub fn score(&self, img: &RgbImage, b: &BBox) -> Result<f32, ModelError> {
        let region = match self.spec.region {
            Region::FaceCrop => crop_region(img.width(), img.height(), b, self.spec.crop_scale),
            Region::WholeFrame => Rect {
                x: 0,
                y: 0,
                w: img.width(),
                h: img.height(),
            },
        };
        let dst = Rect {
            x: 0,
            y: 0,
            w: self.input.width,
            h: self.input.height,
        };
        let t = input_tensor(&self.input, img, region, dst)
            .map_err(|e| ModelError::inference(&self.name, e))?;
        let out = self.plan.run(t)?;
        let v = output_f32(&out, 0).ok_or_else(|| self.err("output missing"))?;
        let p = match self.spec.output {
            OutputKind::Softmax => {
                let m = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let sum: f32 = v.iter().map(|x| (x - m).exp()).sum();
                let live = v
                    .get(self.spec.live_index)
                    .copied()
                    .ok_or_else(|| self.err("live_index out of range"))?;
                (live - m).exp() / sum
            }
            OutputKind::SigmoidLive => crate::sigmoid(v.first().copied().unwrap_or(0.0)),
            OutputKind::SigmoidSpoof => 1.0 - crate::sigmoid(v.first().copied().unwrap_or(0.0)),
        };
        if p.is_finite() {
            Ok(p)
        } else {
            Err(self.err("non-finite score"))
        }
    }

    fn err(&self, e: &'static str) -> ModelError {
        ModelError::inference(&self.name, e)
    }
}

/// How the models' live probabilities are combined into the ensemble's score.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fusion {
    /// Weighted mean of the probabilities.
    #[default]
    MeanProbability,
    /// Sigmoid of the weighted mean of the log-odds `ln(p / (1 - p))`: a confident model weighs
    /// more than a hesitant one.
    MeanLogit,
}

impl Fusion {
    pub const ALL: [Fusion; 2] = [Fusion::MeanProbability, Fusion::MeanLogit];

    pub fn as_str(self) -> &'static str {
        match self {
            Fusion::MeanProbability => "mean_probability",
            Fusion::MeanLogit => "mean_logit",
        }
    }

    /// Parse the name [`Fusion::as_str`] gives.
    pub fn parse(s: &str) -> Option<Fusion> {
        Fusion::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// Fuse `(probability, weight)` pairs; 0 when the weights sum to 0 or there are none.
    pub fn fuse(self, scores: impl IntoIterator<Item = (f64, f64)> + Clone) -> f64 {
        let wsum: f64 = scores.clone().into_iter().map(|(_, w)| w).sum();
        if wsum <= 0.0 {
            return 0.0;
        }
        match self {
            Fusion::MeanProbability => scores.into_iter().map(|(p, w)| p * w).sum::<f64>() / wsum,
            Fusion::MeanLogit => {
                let z = scores.into_iter().map(|(p, w)| logit(p) * w).sum::<f64>() / wsum;
                1.0 / (1.0 + (-z).exp())
            }
        }
    }
}

/// Platt scaling of the fused score, `calibrated = sigmoid(a * logit(raw) + b)`, fitted by
/// `ekyc calibrate --platt` with the classes weighted equally, so that a liveness score means the
/// same whichever ensemble produced it: the probability of a bona fide presentation at equal
/// priors, on the data it was fitted on. Monotone increasing (a > 0): it moves where a threshold
/// falls, never the order of two captures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Platt {
    pub a: f64,
    pub b: f64,
}

impl Platt {
    /// No calibration: the fused score as it is.
    pub const IDENTITY: Platt = Platt { a: 1.0, b: 0.0 };

    /// Scores are clamped to `[EPS, 1 − EPS]` before their logit: an f32 probability cannot
    /// resolve `1 − p` much below 1e-7, so logits beyond ±9.2 would be rounding noise (and an
    /// independent f64 implementation would disagree there).
    pub const EPS: f64 = 1e-4;

    /// The feature a Platt scaling is linear in: the clamped logit of the score.
    pub fn feature(raw: f64) -> f64 {
        let p = raw.clamp(Platt::EPS, 1.0 - Platt::EPS);
        (p / (1.0 - p)).ln()
    }

    /// The calibrated score of a fused score (the identity returns it unchanged, unclamped).
    pub fn apply(self, raw: f64) -> f64 {
        if self == Platt::IDENTITY {
            return raw;
        }
        1.0 / (1.0 + (-(self.a * Platt::feature(raw) + self.b)).exp())
    }

    /// `self` followed by `next`, as one Platt scaling (a composition of two is one).
    pub fn then(self, next: Platt) -> Platt {
        Platt {
            a: next.a * self.a,
            b: next.a * self.b + next.b,
        }
    }

    /// `"a,b"` with a > 0 (finite numbers).
    pub fn parse(s: &str) -> Option<Platt> {
        let (a, b) = s.split_once(',')?;
        let a: f64 = a.trim().parse().ok()?;
        let b: f64 = b.trim().parse().ok()?;
        (a.is_finite() && b.is_finite() && a > 0.0).then_some(Platt { a, b })
    }
}

impl std::fmt::Display for Platt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{},{}", self.a, self.b)
    }
}

/// Log-odds of a probability, clamped to ±ln(1e6) so that 0 and 1 stay finite.
pub fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

/// The passive-liveness stage: the active models and how to run them.
pub struct Ensemble {
    models: Vec<LivenessModel>,
    parallel: bool,
    fusion: Fusion,
    calibration: Platt,
}

/// The ensemble's answer on one face.
#[derive(Debug, Clone, PartialEq)]
pub struct EnsembleScore {
    /// Each model's live probability and weight, in ensemble order.
    pub per_model: Vec<ModelScore>,
    /// The models' live probabilities fused by the ensemble's [`Fusion`].
    pub raw: f32,
    /// `raw` through the ensemble's calibration ([`Platt`]; the same as `raw` without one).
    pub score: f32,
}

impl Ensemble {
    /// `parallel`: run the models on scoped threads (the calling thread runs the first).
    pub fn new(
        models: Vec<LivenessModel>,
        parallel: bool,
        fusion: Fusion,
        calibration: Platt,
    ) -> Ensemble {
        Ensemble {
            models,
            parallel,
            fusion,
            calibration,
        }
    }

    /// The calibration applied to the fused score.
    pub fn calibration(&self) -> Platt {
        self.calibration
    }

    /// How the models' probabilities are combined.
    pub fn fusion(&self) -> Fusion {
        self.fusion
    }

    /// The models, in ensemble order.
    pub fn models(&self) -> &[LivenessModel] {
        &self.models
    }

    /// Score the face `b` (in `img` coordinates) with every model.
    pub fn score(&self, img: &RgbImage, b: &BBox) -> Result<EnsembleScore, Error> {
        let score_one = |m: &LivenessModel| -> Result<ModelScore, Error> {
            Ok(ModelScore {
                model: m.name.clone(),
                live_probability: m.score(img, b)?,
                weight: m.spec.weight,
            })
        };
        let models = &self.models;
        let per_model: Vec<ModelScore> = match models.split_first() {
            Some((first, rest)) if self.parallel && !rest.is_empty() => std::thread::scope(|s| {
                let others: Vec<_> = rest.iter().map(|m| s.spawn(move || score_one(m))).collect();
                let mut out = vec![score_one(first)];
                out.extend(others.into_iter().map(|h| {
                    h.join()
                        .unwrap_or(Err(Error::Panicked("a liveness model thread")))
                }));
                out.into_iter().collect::<Result<Vec<_>, Error>>()
            })?,
            _ => models
                .iter()
                .map(score_one)
                .collect::<Result<Vec<_>, Error>>()?,
        };
        let raw = fuse(&per_model, self.fusion);
        let score = self.calibration.apply(f64::from(raw)) as f32;
        Ok(EnsembleScore {
            per_model,
            raw,
            score,
        })
    }
}

/// The models' live probabilities fused by `fusion` (0 when the weights sum to 0).
pub fn fuse(scores: &[ModelScore], fusion: Fusion) -> f32 {
    let pairs = scores
        .iter()
        .map(|s| (f64::from(s.live_probability), f64::from(s.weight)));
    fusion.fuse(pairs) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bbox(x: f32, y: f32, w: f32, h: f32) -> BBox {
        BBox {
            x,
            y,
            width: w,
            height: h,
        }
    }

    #[test]
    fn crop_is_scaled_centred_and_shifted_inside() {
        // 100x100 box at (200, 200) in 640x480, scale 2.7 → 270x270 centred on (250, 250).
        let r = crop_region(640, 480, &bbox(200.0, 200.0, 100.0, 100.0), 2.7);
        assert_eq!((r.x, r.y, r.w, r.h), (115, 115, 271, 271));
        // Near the left edge: shifted right, not clipped (same size).
        let r = crop_region(640, 480, &bbox(0.0, 200.0, 100.0, 100.0), 2.7);
        assert_eq!((r.x, r.w), (0, 271));
        // Scale reduced so the crop fits the image height.
        let r = crop_region(640, 480, &bbox(200.0, 100.0, 200.0, 200.0), 4.0);
        assert_eq!(r.h, 480);
        assert!(r.y + r.h <= 480 && r.x + r.w <= 640);
    }

    #[test]
    fn weighted_mean_of_model_scores() {
        let s = |p: f32, w: f32| ModelScore {
            model: "m".into(),
            live_probability: p,
            weight: w,
        };
        let mean = Fusion::MeanProbability;
        assert!((fuse(&[s(1.0, 1.0), s(0.0, 3.0)], mean) - 0.25).abs() < 1e-6);
        assert_eq!(fuse(&[], mean), 0.0);
        assert_eq!(fuse(&[], Fusion::MeanLogit), 0.0);
    }

    #[test]
    fn logit_fusion_by_hand() {
        let s = |p: f32, w: f32| ModelScore {
            model: "m".into(),
            live_probability: p,
            weight: w,
        };
        // 0.9 and 0.5 with equal weights: logits ln 9 and 0 → mean ln 3 → sigmoid 0.75.
        let f = fuse(&[s(0.9, 1.0), s(0.5, 1.0)], Fusion::MeanLogit);
        assert!((f - 0.75).abs() < 1e-6, "{f}");
        // The mean of probabilities of the same pair is 0.7.
        let m = fuse(&[s(0.9, 1.0), s(0.5, 1.0)], Fusion::MeanProbability);
        assert!((m - 0.7).abs() < 1e-6, "{m}");
        // 0 and 1 stay finite and cancel.
        let c = fuse(&[s(0.0, 1.0), s(1.0, 1.0)], Fusion::MeanLogit);
        assert!((c - 0.5).abs() < 1e-6, "{c}");
        assert_eq!(Fusion::parse("mean_logit"), Some(Fusion::MeanLogit));
        assert_eq!(Fusion::parse("median"), None);
    }

    #[test]
    fn platt_by_hand() {
        // a = 2, b = 1 on raw 0.5 (logit 0): sigmoid(1) = 0.7311.
        let p = Platt { a: 2.0, b: 1.0 };
        assert!((p.apply(0.5) - 0.731_058_6).abs() < 1e-6);
        // raw 0.9: logit ln 9 = 2.1972 → sigmoid(5.3944) = 0.99548.
        assert!((p.apply(0.9) - 0.995_481).abs() < 1e-5);
        // Beyond 1 − 1e-4 every score is the same (logit ln 9999 = 9.2102).
        assert_eq!(p.apply(0.999_99), p.apply(1.0));
        assert!((Platt::feature(1.0) - 9.210_24).abs() < 1e-4);
        // Monotone, and the identity leaves even 0 and 1 alone.
        assert!(p.apply(0.2) < p.apply(0.3));
        assert_eq!(Platt::IDENTITY.apply(1.0), 1.0);
        assert_eq!(Platt::IDENTITY.apply(0.0), 0.0);
        // A composition is one Platt scaling.
        let q = Platt { a: 0.5, b: -0.25 };
        let both = p.then(q);
        for raw in [0.05, 0.3, 0.5, 0.8, 0.97] {
            assert!(
                (both.apply(raw) - q.apply(p.apply(raw))).abs() < 1e-9,
                "{raw}"
            );
        }
        assert_eq!(Platt::parse(" 2 , 1 "), Some(p));
        assert_eq!(Platt::parse("-1,0"), None);
        assert_eq!(Platt::parse("1"), None);
        assert_eq!(Platt::parse("nan,0"), None);
        assert_eq!(Platt::parse(&p.to_string()), Some(p));
    }
}
