//! decode → detect → quality gate → liveness → verdict, with stage timings. Each stage is a method
//! returning its own type ([`Decoded`], [`Detections`], [`QualityReport`], [`EnsembleScore`]); the
//! [`Verdict`] is assembled once from them ([`Verdict::assemble`]).

use crate::config::{Calibration, Decision, PipelineConfig};
use crate::decode::{decode, Decoded, ImageInfo};
use crate::detect::{Detector, Face};
use crate::embed::{Embedder, Embedding};
use crate::error::Error;
use crate::face_match::{
    self, DocumentQuality, DocumentReport, MatchOptions, MatchOutcome, MatchTimings,
};
use crate::landmarks::{FaceLandmarks, Landmarker};
use crate::liveness::{Ensemble, EnsembleScore, ModelScore};
use crate::quality::{gate, QualityReport, QualityScores, Reason};
use crate::registry::{ModelInfo, Registry};
use serde::Serialize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Per-request options (the prototype's `enable_checks`).
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
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// Liveness ran but the evidence is weak — the score is close to the threshold, or the models
    /// disagree (see `reasons`): ask for another capture instead of deciding.
    Retry,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 5] = [
        Status::Live,
        Status::Spoof,
        Status::QualityFailed,
        Status::NoFace,
        Status::Retry,
    ];

    /// The status as serialised ("LIVE", "SPOOF", "QUALITY_FAILED", "NO_FACE", "RETRY").
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Live => "LIVE",
            Status::Spoof => "SPOOF",
            Status::QualityFailed => "QUALITY_FAILED",
            Status::NoFace => "NO_FACE",
            Status::Retry => "RETRY",
        }
    }
}

/// Milliseconds spent in each stage.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Timings {
    pub decode_ms: f64,
    pub detect_ms: f64,
    pub quality_ms: f64,
    pub liveness_ms: f64,
    pub total_ms: f64,
}

/// The faces found in an image (largest first, in decoded-image pixels) and by which detector.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Detections {
    pub faces: Vec<Face>,
    /// The first detector that found a face (`None` when none did).
    pub detector: Option<String>,
}

/// The verdict on one image.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Verdict {
    pub status: Status,
    /// True only for status LIVE.
    pub is_live: bool,
    /// Ensemble probability that the face is live (0..1, higher = more live). Null when liveness did
    /// not run. NOTE: the Python prototype's `liveness_score` was the spoof probability.
    pub liveness_score: Option<f32>,
    /// Probability of the decided class: liveness_score when LIVE, 1 - liveness_score when SPOOF
    /// (null otherwise, RETRY included).
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

/// Everything the stages produced for one image, from which the verdict is built.
pub struct StageOutputs<'a> {
    pub decoded: &'a Decoded,
    pub detections: Detections,
    pub quality: QualityReport,
    /// `None` when liveness did not run (no face, or the gate failed with checks on).
    pub liveness: Option<EnsembleScore>,
    pub timings: Timings,
}

impl Verdict {
    /// The verdict from the stages' outputs.
    pub fn assemble(
        s: StageOutputs<'_>,
        opts: CheckOptions,
        decision: &Decision,
        models: &[ModelInfo],
    ) -> Verdict {
        let threshold = decision.liveness_threshold;
        let to_original = s.decoded.scale_to_original();
        let face = s.detections.faces.first().map(|f| f.scaled(to_original));
        let mut retry_reasons = Vec::new();
        let (status, is_live, liveness_score, confidence, scores) = match s.liveness {
            Some(e) => {
                let probs: Vec<f32> = e.per_model.iter().map(|m| m.live_probability).collect();
                let (status, why) = decision.decide(e.score, &probs);
                retry_reasons = why;
                let conf = match status {
                    Status::Live => Some(e.score),
                    Status::Spoof => Some(1.0 - e.score),
                    _ => None,
                };
                (
                    status,
                    status == Status::Live,
                    Some(e.score),
                    conf,
                    e.per_model,
                )
            }
            None if face.is_none() => (Status::NoFace, false, None, None, Vec::new()),
            None => (Status::QualityFailed, false, None, None, Vec::new()),
        };
        // Reasons are reported when the verdict rests on them (no face; the gate with checks on;
        // why a scored capture is RETRY).
        let reasons = if liveness_score.is_none() {
            s.quality.reasons
        } else {
            retry_reasons
        };
        Verdict {
            status,
            is_live,
            liveness_score,
            confidence,
            threshold,
            reasons,
            scores,
            quality: s.quality.scores,
            face,
            detector: s.detections.detector,
            checks_enabled: opts.enable_checks,
            image: s.decoded.info.clone(),
            timings: s.timings,
            models: models.to_vec(),
        }
    }
}

/// The loaded models plus configuration; build once per process, share by reference.
pub struct Pipeline {
    detectors: Vec<Detector>,
    landmarker: Option<Landmarker>,
    embedder: Option<Embedder>,
    ensemble: Ensemble,
    models: Vec<ModelInfo>,
    origin: String,
    config: PipelineConfig,
    /// Analyses in flight in this process (a verification counts 1, a session attempt its
    /// threads): the stages run on two threads only while at most half the cores are busy.
    busy: AtomicUsize,
    cores: usize,
}

/// Holds a share of [`Pipeline::busy`] while alive.
struct Busy<'a> {
    count: &'a AtomicUsize,
    n: usize,
    /// The process was idle enough for parallel stages when this share was taken.
    idle: bool,
}

impl<'a> Busy<'a> {
    fn enter(p: &'a Pipeline, n: usize) -> Busy<'a> {
        let before = p.busy.fetch_add(n, Ordering::Relaxed);
        Busy {
            count: &p.busy,
            n,
            idle: p.config.decision.parallel_stages && 2 * (before + n) <= p.cores,
        }
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(self.n, Ordering::Relaxed);
    }
}

/// Run `f`, returning its result and the milliseconds it took.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let out = f();
    (out, t.elapsed().as_secs_f64() * 1e3)
}

impl Pipeline {
    /// The pipeline over loaded models.
    /// `Calibration::Auto` is resolved here: the manifest's entry for exactly these liveness models
    /// and this fusion, else none (`config().decision.calibration` then says which).
    pub fn new(registry: Registry, mut config: PipelineConfig) -> Pipeline {
        let Registry {
            detectors,
            liveness,
            landmarks,
            embedder,
            models,
            origin,
            calibrations,
        } = registry;
        if config.decision.calibration == Calibration::Auto {
            let names: Vec<&str> = liveness.iter().map(|m| m.name.as_str()).collect();
            let fusion = config.decision.fusion.as_str();
            config.decision.calibration = calibrations
                .iter()
                .find(|c| c.fits(&names, fusion))
                .map_or(Calibration::None, |c| {
                    Calibration::Platt(crate::liveness::Platt {
                        a: c.platt[0],
                        b: c.platt[1],
                    })
                });
        }
        Pipeline {
            detectors,
            landmarker: Landmarker::from_models(landmarks),
            embedder,
            ensemble: Ensemble::new(
                liveness,
                config.decision.parallel_liveness,
                config.decision.fusion,
                config.decision.calibration.platt(),
            ),
            models,
            origin,
            config,
            busy: AtomicUsize::new(0),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    /// What was loaded (detectors first).
    pub fn models(&self) -> &[ModelInfo] {
        &self.models
    }

    /// Where the models came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn detectors(&self) -> &[Detector] {
        &self.detectors
    }

    pub fn ensemble(&self) -> &Ensemble {
        &self.ensemble
    }

    /// Verify one encoded image.
    pub fn run(&self, bytes: &[u8], opts: CheckOptions) -> Result<Verdict, Error> {
        let t0 = Instant::now();
        let (decoded, decode_ms) = timed(|| self.decode(bytes));
        let mut v = self.run_decoded(&decoded?, opts)?;
        v.timings.decode_ms = decode_ms;
        v.timings.total_ms = t0.elapsed().as_secs_f64() * 1e3;
        Ok(v)
    }

    /// Stage 1: bytes → upright pixels, within the configured limits.
    pub fn decode(&self, bytes: &[u8]) -> Result<Decoded, Error> {
        Ok(decode(bytes, &self.config.limits)?)
    }

    /// Stage 2: faces (largest first) from the first detector that finds any; coordinates in
    /// decoded-image pixels.
    pub fn detect(&self, decoded: &Decoded) -> Result<Detections, Error> {
        for d in &self.detectors {
            let mut faces = d.detect(&decoded.image)?;
            if !faces.is_empty() {
                faces.sort_by(|a, b| b.bbox.area().total_cmp(&a.bbox.area()));
                return Ok(Detections {
                    faces,
                    detector: Some(d.name.clone()),
                });
            }
        }
        Ok(Detections::default())
    }

    /// Stage 3a: landmarks of the largest face (head pose, eyes open), when landmark models
    /// are loaded.
    pub fn landmarks(
        &self,
        decoded: &Decoded,
        detections: &Detections,
    ) -> Result<Option<FaceLandmarks>, Error> {
        self.landmarks_with(decoded, detections, false)
    }

    fn landmarks_with(
        &self,
        decoded: &Decoded,
        detections: &Detections,
        parallel: bool,
    ) -> Result<Option<FaceLandmarks>, Error> {
        match (&self.landmarker, detections.faces.first()) {
            (Some(l), Some(face)) => Ok(Some(l.measure(&decoded.image, face, parallel)?)),
            _ => Ok(None),
        }
    }

    /// Stage 3: the quality gate (with the landmark stage).
    pub fn quality(
        &self,
        decoded: &Decoded,
        detections: &Detections,
    ) -> Result<QualityReport, Error> {
        self.quality_with(decoded, detections, true, false)
    }

    /// The quality gate, with the landmark stage only when `landmarks` (it costs more than the
    /// rest of the gate; with checks off nothing is decided on it), its eyes on two threads when
    /// `parallel`.
    fn quality_with(
        &self,
        decoded: &Decoded,
        detections: &Detections,
        landmarks: bool,
        parallel: bool,
    ) -> Result<QualityReport, Error> {
        let landmarks = if landmarks {
            self.landmarks_with(decoded, detections, parallel)?
        } else {
            None
        };
        Ok(gate(
            &decoded.image,
            &detections.faces,
            decoded.scale_to_original(),
            &self.config.quality,
            landmarks.as_ref(),
        ))
    }

    /// Whether a face-embedding model is loaded.
    pub fn has_embedder(&self) -> bool {
        self.embedder.is_some()
    }

    /// The face's embedding (decoded-image coordinates), when an embedding model is loaded.
    pub fn embed(&self, decoded: &Decoded, face: &Face) -> Result<Option<Embedding>, Error> {
        match &self.embedder {
            Some(e) => Ok(Some(e.embed(&decoded.image, face)?)),
            None => Ok(None),
        }
    }

    /// Stage 4: the passive-liveness ensemble on one face (decoded-image coordinates).
    pub fn liveness(&self, decoded: &Decoded, face: &Face) -> Result<EnsembleScore, Error> {
        self.ensemble.score(&decoded.image, &face.bbox)
    }

    /// One frame of a capture session: everything the session decision uses (faces, pose, eyes,
    /// passive score, embedding, the gate's reasons, a hash of the pixels).
    pub fn observe(
        &self,
        decoded: &Decoded,
        index: usize,
        timestamp_ms: u64,
    ) -> Result<crate::session::FrameObservation, Error> {
        use std::hash::{Hash, Hasher};
        let busy = Busy::enter(self, 1);
        let detections = self.detect(decoded)?;
        let report = self.quality_with(decoded, &detections, true, busy.idle)?;
        let face = detections.faces.first();
        let (liveness, embedding) = match face {
            Some(f) => (
                Some(self.liveness(decoded, f)?.score),
                self.embed(decoded, f)?,
            ),
            None => (None, None),
        };
        let mut h = std::collections::hash_map::DefaultHasher::new();
        decoded.image.dimensions().hash(&mut h);
        decoded.image.as_raw().hash(&mut h);
        let q = &report.scores;
        Ok(crate::session::FrameObservation {
            index,
            timestamp_ms,
            faces: q.faces,
            yaw_deg: q.yaw_deg,
            pitch_deg: q.pitch_deg,
            roll_deg: q.roll_deg,
            eyes_open: q.eyes_open,
            liveness,
            sharpness: q.sharpness,
            quality_reasons: report.reasons.iter().map(|r| r.code).collect(),
            pixel_hash: h.finish(),
            embedding,
        })
    }

    /// Decode and observe the frames of a session attempt (`(bytes, timestamp_ms)` in capture
    /// order) on up to `threads` threads. The first frame that fails to decode or analyse fails
    /// the attempt, with its index.
    pub fn observe_frames(
        &self,
        frames: &[(&[u8], u64)],
        threads: usize,
    ) -> Result<Vec<crate::session::FrameObservation>, (usize, Error)> {
        let threads = threads.clamp(1, frames.len().max(1));
        // Frames on several threads already use the cores: no stage parallelism inside them.
        let _busy = (threads > 1).then(|| Busy::enter(self, threads));
        let work = |t: usize| {
            frames
                .iter()
                .enumerate()
                .skip(t)
                .step_by(threads)
                .map(|(i, (bytes, ts))| {
                    self.decode(bytes)
                        .and_then(|d| self.observe(&d, i, *ts))
                        .map_err(|e| (i, e))
                })
                .collect::<Vec<_>>()
        };
        let mut all: Vec<Result<crate::session::FrameObservation, (usize, Error)>> = if threads == 1
        {
            work(0)
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads).map(|t| s.spawn(move || work(t))).collect();
                handles
                    .into_iter()
                    .flat_map(|h| {
                        h.join().unwrap_or_else(|_| {
                            vec![Err((
                                0,
                                Error::Model(crate::error::ModelError::Panicked {
                                    name: "session".into(),
                                    what: "frame analysis",
                                }),
                            ))]
                        })
                    })
                    .collect()
            })
        };
        all.sort_by_key(|r| match r {
            Ok(o) => o.index,
            Err((i, _)) => *i,
        });
        all.into_iter().collect()
    }

    /// Everything after decoding.
    pub fn run_decoded(&self, decoded: &Decoded, opts: CheckOptions) -> Result<Verdict, Error> {
        Ok(self.judge(decoded, opts)?.0)
    }

    /// The verdict, and the judged (largest) face in decoded-image coordinates.
    fn judge(
        &self,
        decoded: &Decoded,
        opts: CheckOptions,
    ) -> Result<(Verdict, Option<Face>), Error> {
        let busy = Busy::enter(self, 1);
        let (detections, detect_ms) = timed(|| self.detect(decoded));
        let detections = detections?;
        let largest = detections.faces.first().cloned();
        let gate =
            || timed(|| self.quality_with(decoded, &detections, opts.enable_checks, busy.idle));
        // With idle cores, the passive model runs beside the landmark stage on the largest face
        // (speculatively: its result is dropped when the gate rejects, as the serial path would
        // not have run it).
        let ((quality, quality_ms), speculative) = match &largest {
            Some(face) if busy.idle && opts.enable_checks => std::thread::scope(|s| {
                let passive = s.spawn(|| timed(|| self.liveness(decoded, face)));
                let gated = gate();
                (gated, Some(passive.join()))
            }),
            _ => (gate(), None),
        };
        let quality = quality?;
        let judged = largest
            .as_ref()
            .filter(|_| !opts.enable_checks || quality.reasons.is_empty());
        let (liveness, liveness_ms) = match (judged, speculative) {
            (Some(_), Some(Ok((score, ms)))) => (Some(score?), ms),
            (Some(_), Some(Err(_))) => {
                return Err(Error::Model(crate::error::ModelError::Panicked {
                    name: "liveness".into(),
                    what: "the passive model's thread",
                }))
            }
            (Some(face), None) => {
                let (score, ms) = timed(|| self.liveness(decoded, face));
                (Some(score?), ms)
            }
            (None, _) => (None, 0.0),
        };
        let timings = Timings {
            detect_ms,
            quality_ms,
            liveness_ms,
            ..Timings::default()
        };
        let verdict = Verdict::assemble(
            StageOutputs {
                decoded,
                detections,
                quality,
                liveness,
                timings,
            },
            opts,
            &self.config.decision,
            &self.models,
        );
        Ok((verdict, largest))
    }

    /// The face-match threshold in use: the configured one, else the embedding model's
    /// calibrated one; `None` without an embedding model or any threshold.
    pub fn match_threshold(&self) -> Option<f32> {
        let e = self.embedder.as_ref()?;
        self.config.matching.threshold.or(e.match_threshold())
    }

    /// The name of the embedding model, when one is loaded.
    pub fn embedding_model(&self) -> Option<&str> {
        self.embedder.as_ref().map(|e| e.name.as_str())
    }

    /// The document side of a match: the largest face found by the document detectors (full
    /// range first), its size and sharpness, and whether it is usable; the face is returned in
    /// decoded-image coordinates too.
    pub fn document(&self, decoded: &Decoded) -> Result<(DocumentReport, Option<Face>), Error> {
        let m = &self.config.matching;
        let order: Vec<&Detector> = if m.document_detectors.is_empty() {
            // The largest input first (BlazeFace full range, 192 px, before short range, 128 px):
            // a document portrait is a small face in a large picture.
            let mut all: Vec<&Detector> = self.detectors.iter().collect();
            all.sort_by_key(|d| std::cmp::Reverse(d.input_size()));
            all
        } else {
            m.document_detectors
                .iter()
                .filter_map(|n| self.detectors.iter().find(|d| &d.name == n))
                .collect()
        };
        let mut detections = Detections::default();
        for d in order {
            let mut faces = d.detect(&decoded.image)?;
            if !faces.is_empty() {
                faces.sort_by(|a, b| b.bbox.area().total_cmp(&a.bbox.area()));
                detections = Detections {
                    faces,
                    detector: Some(d.name.clone()),
                };
                break;
            }
        }
        let to_original = decoded.scale_to_original();
        let scores = crate::quality::measure(
            &decoded.image,
            &detections.faces,
            to_original,
            &self.config.quality,
            None,
        );
        let face = detections.faces.first().cloned();
        let quality = DocumentQuality::from_scores(&scores, m.min_document_eye_distance_px);
        let report = DocumentReport {
            usable: face_match::document_usable(
                face.as_ref(),
                quality.eye_distance_px,
                m.min_document_eye_distance_px,
            ),
            face: face.as_ref().map(|f| f.scaled(to_original)),
            faces: detections.faces.len(),
            detector: detections.detector,
            quality,
            image: decoded.info.clone(),
        };
        Ok((report, face))
    }

    /// The embedding of one image's face as a match takes it: a selfie's largest face by the
    /// pipeline's detectors, a document's by [`Pipeline::document`] (with its size floor). The
    /// inner error says why there is none. For evaluation (`ekyc eval-match`); never logged.
    pub fn match_embedding(
        &self,
        decoded: &Decoded,
        side: MatchSide,
    ) -> Result<Result<Embedding, face_match::MatchCode>, Error> {
        use face_match::MatchCode;
        let embedder = self.embedder.as_ref().ok_or(Error::NoEmbeddingModel)?;
        let face = match side {
            MatchSide::Selfie => match self.detect(decoded)?.faces.into_iter().next() {
                Some(f) => f,
                None => return Ok(Err(MatchCode::SelfieNoFace)),
            },
            MatchSide::Document => match self.document(decoded)? {
                (r, Some(f)) if r.usable => f,
                (_, Some(_)) => return Ok(Err(MatchCode::DocumentFaceTooSmall)),
                (_, None) => return Ok(Err(MatchCode::DocumentNoFace)),
            },
        };
        if embedder.alignment(&face).is_none() {
            return Ok(Err(MatchCode::FaceNotAligned));
        }
        Ok(Ok(embedder.embed(&decoded.image, &face)?))
    }

    /// Is the person of `selfie` the one on `document`? Decode errors name their side.
    pub fn match_images(
        &self,
        selfie: &[u8],
        document: &[u8],
        opts: MatchOptions,
    ) -> Result<MatchOutcome, (MatchSide, Error)> {
        let t0 = Instant::now();
        let ready = self.match_ready().map_err(|e| (MatchSide::Selfie, e))?;
        let checks = CheckOptions {
            enable_checks: opts.enable_checks,
        };
        let (selfie_side, selfie_ms) = timed(|| -> Result<_, Error> {
            let (decoded, decode_ms) = timed(|| self.decode(selfie));
            let decoded = decoded?;
            let (mut verdict, face) = self.judge(&decoded, checks)?;
            verdict.timings.decode_ms = decode_ms;
            Ok((decoded, verdict, face))
        });
        let (decoded, mut verdict, face) = selfie_side.map_err(|e| (MatchSide::Selfie, e))?;
        verdict.timings.total_ms = selfie_ms;
        let is_live = verdict.status == Status::Live;
        let mut out = self.compare(ready, &decoded, face.as_ref(), is_live, document, opts, t0)?;
        out.timings.selfie_ms = selfie_ms;
        out.selfie = Some(verdict);
        Ok(out)
    }

    /// The match of an already judged selfie — a capture session's reference frame, whose
    /// liveness is the session's (`is_live`) — against `document`. `selfie` is null in the
    /// outcome.
    pub fn match_reference(
        &self,
        reference: &[u8],
        is_live: bool,
        document: &[u8],
        opts: MatchOptions,
    ) -> Result<MatchOutcome, (MatchSide, Error)> {
        let t0 = Instant::now();
        let ready = self.match_ready().map_err(|e| (MatchSide::Selfie, e))?;
        let (selfie_side, selfie_ms) = timed(|| -> Result<_, Error> {
            let decoded = self.decode(reference)?;
            let face = self.detect(&decoded)?.faces.into_iter().next();
            Ok((decoded, face))
        });
        let (decoded, face) = selfie_side.map_err(|e| (MatchSide::Selfie, e))?;
        let mut out = self.compare(ready, &decoded, face.as_ref(), is_live, document, opts, t0)?;
        out.timings.selfie_ms = selfie_ms;
        Ok(out)
    }

    /// The embedding model and the threshold a match needs.
    fn match_ready(&self) -> Result<(&Embedder, f32), Error> {
        match (&self.embedder, self.match_threshold()) {
            (Some(e), Some(t)) => Ok((e, t)),
            _ => Err(Error::NoEmbeddingModel),
        }
    }

    /// The document side, the preconditions and the comparison (`selfie` null in the outcome).
    #[allow(clippy::too_many_arguments)]
    fn compare(
        &self,
        (embedder, threshold): (&Embedder, f32),
        selfie: &Decoded,
        selfie_face: Option<&Face>,
        is_live: bool,
        document: &[u8],
        opts: MatchOptions,
        t0: Instant,
    ) -> Result<MatchOutcome, (MatchSide, Error)> {
        let (document_side, document_ms) = timed(|| -> Result<_, Error> {
            let decoded = self.decode(document)?;
            let (report, face) = self.document(&decoded)?;
            Ok((decoded, report, face))
        });
        let (document_decoded, report, document_face) =
            document_side.map_err(|e| (MatchSide::Document, e))?;
        let facts = face_match::SelfieFacts {
            has_face: selfie_face.is_some(),
            is_live,
        };
        let mut reasons = face_match::preconditions(facts, &report, opts.require_live);
        let mut similarity = None;
        let mut embed_ms = 0.0;
        if let (true, Some(sf), Some(df)) = (reasons.is_empty(), selfie_face, &document_face) {
            if embedder.alignment(sf).is_none() || embedder.alignment(df).is_none() {
                // Degenerate keypoints are the input's fault, not a model failure.
                reasons.push(face_match::MatchReason {
                    code: face_match::MatchCode::FaceNotAligned,
                    message: "A face could not be aligned for comparison (its eyes, nose and mouth were not located apart).".into(),
                });
            } else {
                let (pair, ms) = timed(|| {
                    let a = embedder.embed(&selfie.image, sf);
                    let b = embedder.embed(&document_decoded.image, df);
                    (a, b)
                });
                embed_ms = ms;
                let a = pair.0.map_err(|e| (MatchSide::Selfie, Error::Model(e)))?;
                let b = pair.1.map_err(|e| (MatchSide::Document, Error::Model(e)))?;
                let s = a.cosine(&b);
                similarity = Some(s);
                reasons.extend(face_match::decide(s, threshold));
            }
        }
        Ok(MatchOutcome {
            is_match: reasons.is_empty(),
            similarity,
            threshold,
            require_live: opts.require_live,
            reasons,
            selfie: None,
            document: report,
            timings: MatchTimings {
                selfie_ms: 0.0,
                document_ms,
                embed_ms,
                total_ms: t0.elapsed().as_secs_f64() * 1e3,
            },
            embedding_model: embedder.name.clone(),
            models: self.models.clone(),
        })
    }
}

/// Which image of a match an error belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchSide {
    Selfie,
    Document,
}

impl MatchSide {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchSide::Selfie => "selfie",
            MatchSide::Document => "document",
        }
    }
}
