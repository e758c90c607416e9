//! The active models of a process, built once from a [`ModelFiles`] source and shared by reference:
//! the detectors (tried in order) and the liveness ensemble.

use crate::config::ModelSelection;
use crate::detect::Detector;
use crate::embed::Embedder;
use crate::error::ModelError;
use crate::landmarks::LandmarkModel;
use crate::liveness::LivenessModel;
use ekyc_models::manifest::{ModelEntry, Role};
use ekyc_models::plan::{ParsedModel, PassedModel, Plan};
use ekyc_models::ModelFiles;
use serde::Serialize;

/// What was loaded, for verdicts, /health and logs.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelInfo {
    pub name: String,
    pub role: Role,
    pub sha256: String,
    pub file: String,
    /// The plan came from the compiled-plan cache (not part of the API).
    #[serde(skip)]
    pub from_plan_cache: bool,
}

/// All active models, loaded once and shared by reference.
pub struct Registry {
    pub(crate) detectors: Vec<Detector>,
    pub(crate) liveness: Vec<LivenessModel>,
    pub(crate) landmarks: Vec<LandmarkModel>,
    pub(crate) embedder: Option<Embedder>,
    pub(crate) models: Vec<ModelInfo>,
    pub(crate) origin: String,
    /// The manifest's score calibrations (for [`crate::Pipeline::new`] to pick the active
    /// ensemble's).
    pub(crate) calibrations: Vec<ekyc_models::manifest::CalibrationEntry>,
}

/// Whether the model at `index` of a selection (detectors first, then liveness models, as
/// [`Registry::load`] orders them) is optimised at start-up: the first detector and every liveness
/// and landmark model (a verification needs them). Fallback detectors and the embedding model
/// (sessions and face matches only) are read and checked at start-up but optimised on first use:
/// most requests never need them, and a cold start that answers a verification does not pay for
/// them (issue 16).
pub fn optimised_at_start(index: usize, e: &ModelEntry) -> bool {
    match e.role {
        Role::Detector => index == 0,
        Role::Embedding => false,
        Role::Liveness | Role::Landmarks => true,
    }
}

/// The entries `selection` activates in `files`' manifest, detectors first.
pub fn selected<'m>(
    manifest: &'m ekyc_models::Manifest,
    selection: &ModelSelection,
) -> Result<Vec<&'m ModelEntry>, ModelError> {
    let mut v = manifest.select(Role::Detector, &selection.detectors)?;
    v.extend(manifest.select(Role::Liveness, &selection.liveness)?);
    if selection.landmarks != ["none"] {
        v.extend(manifest.select(Role::Landmarks, &selection.landmarks)?);
    }
    if selection.embedding != ["none"] {
        let e = manifest.select(Role::Embedding, &selection.embedding)?;
        if e.len() > 1 {
            return Err(ModelError::Manifest {
                path: "manifest".into(),
                message: format!("one embedding model at a time, not {}", e.len()),
            });
        }
        v.extend(e);
    }
    Ok(v)
}

/// One model's plan: from an intact cached plan, else from the verified ONNX (the ONNX bytes are
/// fetched and verified either way); optimised now when `eager`, else on first use.
fn build_plan(
    files: &dyn ModelFiles,
    e: &ModelEntry,
    eager: bool,
) -> Result<(Plan, bool), ModelError> {
    let t0 = std::time::Instant::now();
    let bytes = files.model(e)?;
    let fetched_ms = t0.elapsed().as_secs_f64() * 1e3;
    let cached = files
        .cached_plan(e)
        .and_then(|tar| match PassedModel::from_nnef(e, &tar) {
            Ok(p) => Some(p),
            Err(err) => {
                tracing::warn!(model = %e.name, error = %err, "cached plan unusable; building from ONNX");
                None
            }
        });
    let from_cache = cached.is_some();
    let passed = match cached {
        Some(p) => p,
        None => ParsedModel::from_onnx(e, &bytes)?.apply_passes()?,
    };
    let parsed_ms = t0.elapsed().as_secs_f64() * 1e3 - fetched_ms;
    let plan = if eager {
        Plan::ready(passed.optimize()?)
    } else {
        Plan::deferred(passed)
    };
    let total_ms = t0.elapsed().as_secs_f64() * 1e3;
    tracing::debug!(
        model = %e.name,
        eager,
        from_cache,
        fetched_ms,
        parsed_ms,
        optimised_ms = total_ms - fetched_ms - parsed_ms,
        "model loaded"
    );
    Ok((plan, from_cache))
}

impl Registry {
    /// Load the models `selection` activates from `files`, building the plans in parallel.
    pub fn load(
        files: &dyn ModelFiles,
        selection: &ModelSelection,
    ) -> Result<Registry, ModelError> {
        let origin = files.origin();
        let entries = selected(files.manifest(), selection)?;
        let count = |r: Role| entries.iter().filter(|e| e.role == r).count();
        if count(Role::Detector) == 0 || count(Role::Liveness) == 0 {
            return Err(ModelError::Manifest {
                path: origin,
                message: "need at least one detector and one liveness model".into(),
            });
        }
        let plans: Vec<Result<(Plan, bool), ModelError>> = std::thread::scope(|s| {
            let handles: Vec<_> = entries
                .iter()
                .enumerate()
                .map(|(i, e)| s.spawn(move || build_plan(files, e, optimised_at_start(i, e))))
                .collect();
            handles
                .into_iter()
                .zip(&entries)
                .map(|(h, e)| {
                    h.join().unwrap_or_else(|_| {
                        Err(ModelError::Panicked {
                            name: e.name.clone(),
                            what: "model loading",
                        })
                    })
                })
                .collect()
        });
        let mut reg = Registry {
            detectors: Vec::new(),
            liveness: Vec::new(),
            landmarks: Vec::new(),
            embedder: None,
            models: Vec::new(),
            origin,
            calibrations: files.manifest().calibrations.clone(),
        };
        for (e, plan) in entries.into_iter().zip(plans) {
            let (plan, from_plan_cache) = plan?;
            reg.models.push(ModelInfo {
                name: e.name.clone(),
                role: e.role,
                sha256: e.sha256.clone(),
                file: e.file.clone(),
                from_plan_cache,
            });
            let lacks = |what: &str| ModelError::Manifest {
                path: reg.origin.clone(),
                message: format!("{} lacks [model.{what}]", e.name),
            };
            match e.role {
                Role::Detector => {
                    let spec = e.detector.clone().ok_or_else(|| lacks("detector"))?;
                    reg.detectors
                        .push(Detector::new(e.name.clone(), plan, e.input.clone(), spec)?);
                }
                Role::Liveness => {
                    let spec = e.liveness.clone().ok_or_else(|| lacks("liveness"))?;
                    reg.liveness.push(LivenessModel::new(
                        e.name.clone(),
                        plan,
                        e.input.clone(),
                        spec,
                    )?);
                }
                Role::Embedding => {
                    let spec = e.embedding.clone().ok_or_else(|| lacks("embedding"))?;
                    reg.embedder =
                        Some(Embedder::new(e.name.clone(), plan, e.input.clone(), spec)?);
                }
                Role::Landmarks => {
                    let spec = e.landmarks.clone().ok_or_else(|| lacks("landmarks"))?;
                    reg.landmarks.push(LandmarkModel::new(
                        e.name.clone(),
                        plan,
                        e.input.clone(),
                        spec,
                    )?);
                }
            }
        }
        Ok(reg)
    }

    /// What was loaded, in load order (detectors first).
    pub fn models(&self) -> &[ModelInfo] {
        &self.models
    }
}
