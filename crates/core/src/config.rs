//! Plain configuration of the core. Binaries fill these from flags and the environment (the root
//! crate's `settings`); the core only reads them. Every struct has the service's defaults.

pub use crate::quality::QualityLimits;

/// Input limits, checked before any pixel is allocated.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest accepted encoded image, in bytes.
    pub max_image_bytes: usize,
    /// Largest accepted width or height, in pixels.
    pub max_image_side: u32,
    /// Largest accepted width x height.
    pub max_image_pixels: u64,
    /// JPEGs at least twice this size (long side) are decoded at a reduced DCT scale (1/2, 1/4,
    /// 1/8) keeping the long side at least this large.
    pub decode_max_side: u32,
    /// Per-request decode budget: the most memory one decode may hold at its peak (the decoder's
    /// buffer at the image's native depth, 16-bit and alpha included, plus the RGB copies),
    /// computed from the header before any pixel is allocated; also the cap on any single decoder
    /// allocation.
    pub max_decode_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_image_bytes: 15 * 1024 * 1024,
            max_image_side: 10_000,
            max_image_pixels: 50_000_000,
            decode_max_side: 800,
            max_decode_bytes: 256 << 20,
        }
    }
}

/// How the liveness score becomes a decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// `is_live = liveness_score >= liveness_threshold`.
    pub liveness_threshold: f32,
    /// Run the models of the ensemble on parallel threads (lower latency when a core is free).
    pub parallel_liveness: bool,
    /// When this process has idle cores (fewer verifications in flight than half the cores), run
    /// a verification's independent stages on two threads: the passive model beside the landmark
    /// stage (its score is dropped when the gate rejects), and the two eyes of the eye model side
    /// by side. Same results; lower latency at the cost of the speculative passive run on
    /// rejected captures.
    pub parallel_stages: bool,
    /// How the models' live probabilities become the ensemble's score.
    pub fusion: crate::liveness::Fusion,
    /// Half-width of the uncertain band around the threshold: a score with
    /// `|score - threshold| < retry_band` is RETRY (0 = no band).
    pub retry_band: f32,
    /// Largest spread (highest minus lowest live probability) of the ensemble's models before the
    /// evidence counts as weak and the verdict is RETRY (1 = never).
    pub retry_max_spread: f32,
    /// How the fused score is calibrated into `liveness_score` (the threshold and the RETRY band
    /// are in calibrated units).
    pub calibration: Calibration,
}

/// Which calibration turns the fused score into `liveness_score`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum Calibration {
    /// The manifest's `[[calibration]]` entry fitted for the active ensemble (its models and
    /// fusion); none when it has no such entry.
    #[default]
    Auto,
    /// The fused score as it is.
    None,
    /// This Platt scaling.
    Platt(crate::liveness::Platt),
}

impl Calibration {
    /// `auto`, `none` or `a,b` (see [`crate::liveness::Platt::parse`]).
    pub fn parse(s: &str) -> Option<Calibration> {
        match s.trim() {
            "auto" => Some(Calibration::Auto),
            "none" => Some(Calibration::None),
            other => crate::liveness::Platt::parse(other).map(Calibration::Platt),
        }
    }

    /// The Platt scaling this stands for once resolved (`Auto` unresolved: the identity).
    pub fn platt(self) -> crate::liveness::Platt {
        match self {
            Calibration::Platt(p) => p,
            Calibration::Auto | Calibration::None => crate::liveness::Platt::IDENTITY,
        }
    }

    /// `auto`, `none` or `a,b`.
    pub fn describe(self) -> String {
        match self {
            Calibration::Auto => "auto".into(),
            Calibration::None => "none".into(),
            Calibration::Platt(p) => p.to_string(),
        }
    }
}

impl Default for Decision {
    fn default() -> Self {
        Decision {
            liveness_threshold: 0.5,
            parallel_liveness: false,
            parallel_stages: true,
            fusion: crate::liveness::Fusion::default(),
            retry_band: 0.1,
            retry_max_spread: 1.0,
            calibration: Calibration::Auto,
        }
    }
}

impl Decision {
    /// LIVE, SPOOF or RETRY for an ensemble score and its models' probabilities, with the
    /// reasons of a RETRY.
    pub fn decide(
        &self,
        score: f32,
        per_model: &[f32],
    ) -> (crate::Status, Vec<crate::quality::Reason>) {
        use crate::quality::{Reason, ReasonCode};
        let mut reasons = Vec::new();
        let t = self.liveness_threshold;
        let distance = (score - t).abs();
        if distance < self.retry_band {
            reasons.push(Reason {
                code: ReasonCode::UncertainLiveness,
                message: format!(
                    "The liveness score {score:.2} is within {:.2} of the threshold {t:.2}; take another picture.",
                    self.retry_band
                ),
                score: Some(distance),
                limit: Some(self.retry_band),
                metric: Some("threshold_distance"),
            });
        }
        let (lo, hi) = per_model
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &p| {
                (lo.min(p), hi.max(p))
            });
        let spread = if per_model.len() >= 2 { hi - lo } else { 0.0 };
        if spread > self.retry_max_spread {
            reasons.push(Reason {
                code: ReasonCode::ModelsDisagree,
                message: format!(
                    "The liveness models disagree (live probabilities {lo:.2} to {hi:.2}); take another picture."
                ),
                score: Some(spread),
                limit: Some(self.retry_max_spread),
                metric: Some("model_spread"),
            });
        }
        let status = if !reasons.is_empty() {
            crate::Status::Retry
        } else if score >= t {
            crate::Status::Live
        } else {
            crate::Status::Spoof
        };
        (status, reasons)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quality::ReasonCode;
    use crate::Status;

    fn d(band: f32, spread: f32) -> Decision {
        Decision {
            retry_band: band,
            retry_max_spread: spread,
            ..Decision::default()
        }
    }

    #[test]
    fn the_band_and_the_spread_make_retry() {
        let codes = |r: &[crate::quality::Reason]| r.iter().map(|r| r.code).collect::<Vec<_>>();
        // Threshold 0.5, band 0.1: 0.41..0.59 is RETRY; 0.4 and 0.6 are decided (the edge is out).
        assert_eq!(d(0.1, 1.0).decide(0.6, &[0.6]).0, Status::Live);
        assert_eq!(d(0.1, 1.0).decide(0.5, &[0.5]).0, Status::Retry);
        assert_eq!(d(0.1, 1.0).decide(0.45, &[0.45]).0, Status::Retry);
        assert_eq!(d(0.1, 1.0).decide(0.39, &[0.39]).0, Status::Spoof);
        let (s, r) = d(0.1, 1.0).decide(0.55, &[0.5, 0.6]);
        assert_eq!(
            (s, codes(&r)),
            (Status::Retry, vec![ReasonCode::UncertainLiveness])
        );
        // No band: the threshold alone.
        assert_eq!(d(0.0, 1.0).decide(0.5, &[0.5]).0, Status::Live);
        assert_eq!(d(0.0, 1.0).decide(0.4999, &[0.4999]).0, Status::Spoof);
        // Spread 0.9 > 0.5: RETRY even with a confident mean; one model never disagrees.
        let (s, r) = d(0.1, 0.5).decide(0.9, &[0.99, 0.09]);
        assert_eq!(
            (s, codes(&r)),
            (Status::Retry, vec![ReasonCode::ModelsDisagree])
        );
        assert_eq!(d(0.1, 0.5).decide(0.9, &[0.9]).0, Status::Live);
        assert!((r[0].score.unwrap_or(0.0) - 0.9).abs() < 1e-6);
    }
}

/// Which models of the manifest are active (empty = the manifest's default set).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelSelection {
    /// Face detectors, tried in order until one finds a face.
    pub detectors: Vec<String>,
    /// Liveness models of the ensemble.
    pub liveness: Vec<String>,
    /// Landmark models of the quality gate (`["none"]`: none).
    pub landmarks: Vec<String>,
    /// Face-embedding model (identity across a capture session's frames; `["none"]`: none).
    pub embedding: Vec<String>,
}

/// Everything the pipeline needs besides its models.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PipelineConfig {
    pub limits: Limits,
    pub quality: QualityLimits,
    pub decision: Decision,
    /// Face match (selfie against document).
    pub matching: crate::face_match::MatchConfig,
}
