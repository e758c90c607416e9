//! Running labelled images through the service's pipeline ([`Pipeline::run`], quality gate on,
//! and optionally once more with it off) and turning the verdicts into [`Sample`]s.
//!
//! A capture the gate rejects (`QUALITY_FAILED`) or in which no face is found (`NO_FACE`) has no
//! liveness score: it is *gated*. With the gate off (`enable_checks = false`) only `NO_FACE`
//! captures are gated, which measures the liveness models alone.

use serde::Serialize;

use ekyc_core::quality::QualityScores;
use ekyc_core::{CheckOptions, ModelInfo, Pipeline, Status, Verdict};

use crate::dataset::Item;
use crate::Sample;

/// What one pipeline run said about an image.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub status: Status,
    /// Liveness score when liveness ran (LIVE / SPOOF / RETRY).
    pub score: Option<f32>,
    /// Reason codes: the gate's failures (QUALITY_FAILED), NO_FACE, or why a scored capture is
    /// RETRY (UNCERTAIN_LIVENESS, MODELS_DISAGREE).
    pub reasons: Vec<String>,
}

impl RunResult {
    pub fn from_verdict(v: &Verdict) -> Self {
        RunResult {
            status: v.status,
            score: match v.status {
                Status::Live | Status::Spoof | Status::Retry => v.liveness_score,
                Status::QualityFailed | Status::NoFace => None,
            },
            reasons: v
                .reasons
                .iter()
                .map(|r| r.code.as_str().to_string())
                .collect(),
        }
    }
}

/// An image that could not be evaluated.
#[derive(Debug, Clone, Serialize)]
pub struct ImageError {
    pub path: String,
    pub class: &'static str,
    pub attack_type: Option<String>,
    /// `READ_FAILED` or the pipeline's error code.
    pub code: String,
    pub message: String,
}

/// The runs of one readable image.
#[derive(Debug, Clone)]
pub struct Runs {
    pub gate_on: RunResult,
    /// Present when the image was also run with the gate off.
    pub gate_off: Option<RunResult>,
    /// The quality metrics of the gate-on run.
    pub quality: QualityScores,
}

/// What happened to one image.
#[derive(Debug, Clone)]
pub struct ImageRun {
    pub item: Item,
    pub result: Result<Runs, ImageError>,
}

/// Every image's run, in input order, and the models that produced them.
#[derive(Debug, Clone)]
pub struct RunOutput {
    pub runs: Vec<ImageRun>,
    /// The models of the first verdict (the pipeline's models when no image could be run).
    pub models: Vec<ModelInfo>,
}

impl RunOutput {
    /// The images that could not be evaluated.
    pub fn errors(&self) -> Vec<ImageError> {
        self.runs
            .iter()
            .filter_map(|o| o.result.as_ref().err().cloned())
            .collect()
    }
}

fn image_error(item: &Item, code: &str, message: String) -> ImageError {
    ImageError {
        path: item.path.display().to_string(),
        class: item.class_name(),
        attack_type: item.class.attack_type().map(str::to_string),
        code: code.to_string(),
        message,
    }
}

fn run_one(
    pipeline: &Pipeline,
    item: &Item,
    gate_off: bool,
    models: &mut Option<Vec<ModelInfo>>,
) -> Result<Runs, ImageError> {
    let err = |code: &str, message: String| image_error(item, code, message);
    let bytes = std::fs::read(&item.path).map_err(|e| err("READ_FAILED", e.to_string()))?;
    let on = pipeline
        .run(
            &bytes,
            CheckOptions {
                enable_checks: true,
            },
        )
        .map_err(|e| err(e.code(), e.to_string()))?;
    if models.is_none() {
        *models = Some(on.models.clone());
    }
    let off = if gate_off {
        let v = pipeline
            .run(
                &bytes,
                CheckOptions {
                    enable_checks: false,
                },
            )
            .map_err(|e| err(e.code(), e.to_string()))?;
        Some(RunResult::from_verdict(&v))
    } else {
        None
    };
    Ok(Runs {
        gate_on: RunResult::from_verdict(&on),
        gate_off: off,
        quality: on.quality.clone(),
    })
}

/// Runs every item through the pipeline with the gate on and, if `gate_off`, once more with it
/// off. Unreadable or undecodable files become [`ImageError`]s, never silently dropped.
/// `progress(done, total)` is called once before the first image (`done = 0`) and after each.
pub fn run_all(
    pipeline: &Pipeline,
    items: &[Item],
    gate_off: bool,
    mut progress: impl FnMut(usize, usize),
) -> RunOutput {
    let mut models: Option<Vec<ModelInfo>> = None;
    let mut runs = Vec::with_capacity(items.len());
    progress(0, items.len());
    for (i, item) in items.iter().enumerate() {
        let result = run_one(pipeline, item, gate_off, &mut models);
        runs.push(ImageRun {
            item: item.clone(),
            result,
        });
        progress(i + 1, items.len());
    }
    let models = models.unwrap_or_else(|| pipeline.models().to_vec());
    RunOutput { runs, models }
}

fn sample(item: &Item, score: Option<f32>) -> Sample {
    Sample {
        id: item.path.display().to_string(),
        class: item.class.clone(),
        score: score.map(f64::from),
    }
}

/// Samples with the gate on (gated = QUALITY_FAILED or NO_FACE) and, for the images also run
/// with it off, with the gate off (gated = NO_FACE only). Errors are not samples.
pub fn samples(runs: &[ImageRun]) -> (Vec<Sample>, Vec<Sample>) {
    let mut on = Vec::new();
    let mut off = Vec::new();
    for o in runs {
        if let Ok(r) = &o.result {
            on.push(sample(&o.item, r.gate_on.score));
            if let Some(g) = &r.gate_off {
                off.push(sample(&o.item, g.score));
            }
        }
    }
    (on, off)
}

/// The liveness models of the pipeline's ensemble, `"a + b"`.
pub fn model_label(pipeline: &Pipeline) -> String {
    let names: Vec<&str> = pipeline
        .ensemble()
        .models()
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    names.join(" + ")
}

/// The smallest f32 at or above `t`: the threshold the service (which compares f32 scores with
/// an f32 threshold) needs to make the same decisions as the f64 threshold chosen on f32 scores.
pub fn threshold_f32(t: f64) -> f32 {
    let t32 = t as f32;
    if f64::from(t32) < t {
        t32.next_up()
    } else {
        t32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_f32_keeps_decisions() {
        // A score itself stays; next_up(max) in f64 must not round back to the max score.
        let s = 0.734_567_9_f32;
        assert_eq!(threshold_f32(f64::from(s)), s);
        let above = f64::from(s).next_up();
        let t = threshold_f32(above);
        assert!(t > s && f64::from(t) >= above);
        assert_eq!(t.to_string().parse::<f32>().ok(), Some(t));
    }
}
