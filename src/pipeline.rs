//! decode → detect → quality gate → liveness → verdict, with stage timings.

use crate::config::Config;
use crate::decode::{decode, Decoded, ImageInfo};
use crate::detect::Face;
use crate::error::Error;
use crate::liveness::{ensemble, ModelScore};
use crate::models::{ModelInfo, Registry};
use crate::quality::{gate, QualityScores, Reason};
use serde::Serialize;
use std::time::Instant;

/// Per-request options (the seed's `enable_checks`).
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    /// Run the quality gate before liveness. When false, liveness is scored on the largest face.
    pub enable_checks: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            enable_checks: true,
        }
    }
}

/// Outcome of a verification.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Liveness score at or above the threshold.
    Live,
    /// Liveness score below the threshold (a presentation attack is likely).
    Spoof,
    /// The capture was rejected by the quality gate; see `reasons`. Liveness was not run.
    QualityFailed,
    /// No face was found.
    NoFace,
}

/// Milliseconds spent in each stage.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Timings {
    pub decode_ms: f64,
    pub detect_ms: f64,
    pub quality_ms: f64,
    pub liveness_ms: f64,
    pub total_ms: f64,
}

/// The verdict on one image.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Verdict {
    pub status: Status,
    /// True only for status LIVE.
    pub is_live: bool,
    /// Ensemble probability that the face is live (0..1, higher = more live). Null when liveness did
    /// not run. NOTE: the Python prototype's `liveness_score` was the spoof probability.
    pub liveness_score: Option<f32>,
    /// Probability of the decided class: liveness_score when LIVE, 1 - liveness_score when SPOOF.
    pub confidence: Option<f32>,
    /// The decision threshold in use: is_live = liveness_score >= threshold.
    pub threshold: f32,
    /// Why the capture failed the gate (empty when it passed or checks were off).
    pub reasons: Vec<Reason>,
    /// Live probability per liveness model.
    pub scores: Vec<ModelScore>,
    /// Every quality measurement.
    pub quality: QualityScores,
    /// The face that was judged (largest), in original-image pixels.
    pub face: Option<Face>,
    /// Detector that found the face.
    pub detector: Option<String>,
    pub checks_enabled: bool,
    pub image: ImageInfo,
    pub timings: Timings,
    pub models: Vec<ModelInfo>,
}

/// The loaded models plus configuration; build once per process, share by reference.
pub struct Pipeline {
    pub registry: Registry,
    pub config: Config,
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

impl Pipeline {
    /// Load the models named by the configuration from the models directory.
    pub fn load(config: Config) -> Result<Pipeline, Error> {
        let registry = Registry::load(&config.models)?;
        Ok(Pipeline { registry, config })
    }

    /// Verify one encoded image.
    pub fn run(&self, bytes: &[u8], opts: CheckOptions) -> Result<Verdict, Error> {
        let t0 = Instant::now();
        let decoded = decode(bytes, &self.config.limits)?;
        let decode_ms = ms(t0);
        let mut v = self.run_decoded(&decoded, opts)?;
        v.timings.decode_ms = decode_ms;
        v.timings.total_ms = ms(t0);
        Ok(v)
    }

    /// Detect faces (largest first) with the first detector that finds any; coordinates in `img` pixels.
    pub fn detect(&self, decoded: &Decoded) -> Result<(Vec<Face>, Option<String>), Error> {
        for d in &self.registry.detectors {
            let mut faces = d.detect(&decoded.image)?;
            if !faces.is_empty() {
                faces.sort_by(|a, b| b.bbox.area().total_cmp(&a.bbox.area()));
                return Ok((faces, Some(d.name.clone())));
            }
        }
        Ok((Vec::new(), None))
    }

    /// Everything after decoding.
    pub fn run_decoded(&self, decoded: &Decoded, opts: CheckOptions) -> Result<Verdict, Error> {
        let t0 = Instant::now();
        let img = &decoded.image;
        let to_original = decoded.scale_to_original();
        let (faces, detector) = self.detect(decoded)?;
        let detect_ms = ms(t0);

        let t1 = Instant::now();
        let report = gate(img, &faces, to_original, &self.config.quality);
        let quality_ms = ms(t1);
        let threshold = self.config.liveness_threshold;
        let mut v = Verdict {
            status: Status::NoFace,
            is_live: false,
            liveness_score: None,
            confidence: None,
            threshold,
            reasons: Vec::new(),
            scores: Vec::new(),
            quality: report.scores,
            face: faces.first().map(|f| f.scaled(to_original)),
            detector,
            checks_enabled: opts.enable_checks,
            image: decoded.info.clone(),
            timings: Timings {
                detect_ms,
                quality_ms,
                ..Timings::default()
            },
            models: self.registry.models.clone(),
        };
        let Some(face) = faces.first() else {
            v.reasons = report.reasons;
            return Ok(v);
        };
        if opts.enable_checks && !report.reasons.is_empty() {
            v.status = Status::QualityFailed;
            v.reasons = report.reasons;
            return Ok(v);
        }

        let t2 = Instant::now();
        let score_one = |m: &crate::liveness::LivenessModel| -> Result<ModelScore, Error> {
            Ok(ModelScore {
                model: m.name.clone(),
                live_probability: m.score(img, &face.bbox)?,
                weight: m.spec.weight,
            })
        };
        let models = &self.registry.liveness;
        let scores: Vec<ModelScore> = if self.config.parallel_liveness && models.len() > 1 {
            // One scoped thread per extra model; the calling thread runs the first.
            std::thread::scope(|s| {
                let others: Vec<_> = models[1..]
                    .iter()
                    .map(|m| s.spawn(move || score_one(m)))
                    .collect();
                let mut out = vec![score_one(&models[0])];
                out.extend(others.into_iter().map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::Config("liveness thread panicked".into())))
                }));
                out.into_iter().collect::<Result<Vec<_>, Error>>()
            })?
        } else {
            models
                .iter()
                .map(score_one)
                .collect::<Result<Vec<_>, Error>>()?
        };
        v.timings.liveness_ms = ms(t2);
        let score = ensemble(&scores);
        v.scores = scores;
        v.liveness_score = Some(score);
        v.is_live = score >= threshold;
        v.status = if v.is_live {
            Status::Live
        } else {
            Status::Spoof
        };
        v.confidence = Some(if v.is_live { score } else { 1.0 - score });
        Ok(v)
    }
}
