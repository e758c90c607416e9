//! Models as data: manifest → verified bytes → optimised tract plans, built once per process.

pub mod manifest;
pub mod plan_cache;
pub mod provision;

use crate::config::ModelConfig;
use crate::detect::Detector;
use crate::error::ModelError;
use crate::liveness::LivenessModel;
use manifest::{sha256_hex, Layout, Manifest, ModelEntry, Role};
use serde::Serialize;
use std::sync::{Arc, Mutex, OnceLock};
use tract_onnx::prelude::*;

/// A tract plan with its input shape fixed. Parsing and the IO check happen at load; the expensive
/// optimisation happens at load for primary models and on first use for fallbacks (see [`Registry`]).
#[derive(Clone)]
pub struct Plan {
    inner: Arc<PlanInner>,
}

struct PlanInner {
    name: String,
    output_shapes: Vec<Vec<usize>>,
    /// True when `typed` already went through [`graph_passes`] (a cached plan).
    passes_done: bool,
    typed: Mutex<Option<TypedModel>>,
    runnable: OnceLock<Result<Arc<TypedRunnableModel>, String>>,
}

impl Plan {
    /// Parse ONNX bytes, check the input against the manifest, fix the input shape, type the graph.
    pub fn from_onnx(entry: &ModelEntry, bytes: &[u8]) -> Result<Plan, ModelError> {
        Ok(Plan::from_typed(
            entry,
            typed_from_onnx(entry, bytes)?,
            false,
        ))
    }

    /// A plan from the compiled-plan cache (see [`plan_cache`]): NNEF of the graph after
    /// [`graph_passes`]; its input must still match the manifest.
    pub fn from_cached(entry: &ModelEntry, nnef_tar: &[u8]) -> Result<Plan, ModelError> {
        let typed = nnef()
            .model_for_read(&mut std::io::Cursor::new(nnef_tar))
            .map_err(|e| ModelError::Load {
                name: entry.name.clone(),
                message: format!("cached plan: {e:#}"),
            })?;
        let want = input_shape(entry);
        let got = typed
            .input_fact(0)
            .ok()
            .and_then(|f| f.shape.as_concrete().map(|s| s.to_vec()));
        if got.as_deref() != Some(&want[..]) {
            return Err(ModelError::IoMismatch {
                name: entry.name.clone(),
                message: format!("cached plan input is {got:?}, manifest says {want:?}"),
            });
        }
        Ok(Plan::from_typed(entry, typed, true))
    }

    /// The graph of an ONNX model after [`graph_passes`], serialised as NNEF (for the plan cache).
    pub fn passes_to_nnef(entry: &ModelEntry, onnx: &[u8]) -> Result<Vec<u8>, ModelError> {
        let err = |e: TractError| ModelError::Load {
            name: entry.name.clone(),
            message: format!("{e:#}"),
        };
        let m = graph_passes(typed_from_onnx(entry, onnx)?, &entry.name).map_err(err)?;
        let mut tar = Vec::new();
        nnef().write_to_tar(&m, &mut tar).map_err(err)?;
        Ok(tar)
    }

    fn from_typed(entry: &ModelEntry, typed: TypedModel, passes_done: bool) -> Plan {
        let output_shapes = (0..typed.outputs.len())
            .map(|i| {
                typed
                    .output_fact(i)
                    .ok()
                    .and_then(|f| f.shape.as_concrete().map(|s| s.to_vec()))
                    .unwrap_or_default()
            })
            .collect();
        Plan {
            inner: Arc::new(PlanInner {
                name: entry.name.clone(),
                output_shapes,
                passes_done,
                typed: Mutex::new(Some(typed)),
                runnable: OnceLock::new(),
            }),
        }
    }

    /// Optimise and build the runnable plan (once; later calls return at once).
    pub fn prepare(&self) -> Result<&Arc<TypedRunnableModel>, ModelError> {
        let r = self.inner.runnable.get_or_init(|| {
            let typed = self
                .inner
                .typed
                .lock()
                .map_err(|_| "model lock poisoned".to_string())?
                .take()
                .ok_or_else(|| "model already consumed".to_string())?;
            let build = || -> TractResult<Arc<TypedRunnableModel>> {
                let mut m = if self.inner.passes_done {
                    typed
                } else {
                    graph_passes(typed, &self.inner.name)?
                };
                m.optimize()?;
                m.into_runnable()
            };
            build().map_err(|e| format!("{e:#}"))
        });
        r.as_ref().map_err(|m| ModelError::Load {
            name: self.inner.name.clone(),
            message: m.clone(),
        })
    }

    pub fn run(&self, input: Tensor) -> Result<TVec<TValue>, ModelError> {
        self.prepare()?
            .run(tvec!(input.into()))
            .map_err(|e| ModelError::Inference {
                name: self.inner.name.clone(),
                message: format!("{e:#}"),
            })
    }

    /// The f32 data of output `i` of a run.
    pub fn output_f32(outputs: &TVec<TValue>, i: usize) -> Option<&[f32]> {
        outputs
            .get(i)?
            .try_as_plain_ram()
            .ok()?
            .as_slice::<f32>()
            .ok()
    }

    /// Concrete output shapes (empty vec for an output whose shape is not concrete).
    pub fn output_shapes(&self) -> Vec<Vec<usize>> {
        self.inner.output_shapes.clone()
    }
}

/// Parse ONNX bytes, check the input against the manifest, fix the input shape, type the graph.
fn typed_from_onnx(entry: &ModelEntry, bytes: &[u8]) -> Result<TypedModel, ModelError> {
    let load_err = |e: TractError| ModelError::Load {
        name: entry.name.clone(),
        message: format!("{e:#}"),
    };
    let mut model = tract_onnx::onnx()
        .model_for_read(&mut std::io::Cursor::new(bytes))
        .map_err(load_err)?;
    let shape = input_shape(entry);
    // A model with a concrete input shape must agree with the manifest.
    let declared = model.input_fact(0).map_err(load_err)?.shape.clone();
    if let Some(dims) = tract_onnx::tract_hir::infer::Factoid::concretize(&declared) {
        use tract_onnx::tract_hir::internal::DimLike;
        let dims: Vec<Option<usize>> = dims.iter().map(|d| d.to_usize().ok()).collect();
        let mismatch = dims.len() != 4
            || dims
                .iter()
                .zip(shape.iter())
                .any(|(d, s)| d.is_some_and(|d| d != *s));
        if mismatch {
            return Err(ModelError::IoMismatch {
                name: entry.name.clone(),
                message: format!(
                    "model input is {dims:?}, manifest says {shape:?} ({:?})",
                    entry.input.layout
                ),
            });
        }
    }
    model = model
        .with_input_fact(0, f32::fact(shape).into())
        .map_err(load_err)?;
    model.into_typed().map_err(|e| ModelError::IoMismatch {
        name: entry.name.clone(),
        message: format!("model does not accept input {shape:?}: {e:#}"),
    })
}

/// The graph passes before tract's codegen: declutter, the PReLU rewrite, declutter again (it lets
/// tract fuse the new Max into the convolutions; skipping it made MiniFASNet 1.7x slower). Their
/// result is what the plan cache stores.
fn graph_passes(typed: TypedModel, name: &str) -> TractResult<TypedModel> {
    let mut m = typed.into_decluttered()?;
    let rewritten = prelu_to_max(&mut m)?;
    if rewritten > 0 {
        tracing::debug!(model = %name, rewritten, "PReLU nodes rewritten as max(x, slope*x)");
    }
    m.into_decluttered()
}

fn nnef() -> tract_nnef::framework::Nnef {
    use tract_onnx::WithOnnx;
    tract_nnef::nnef().with_onnx()
}

/// Load-time graph pass: tract-onnx expands PReLU into `Iff(0 > x, x * slope, x)`, and tract runs
/// `Iff` without SIMD. When every slope is ≤ 1, PReLU(x) = max(x, slope * x) exactly (x ≥ 0:
/// x ≥ slope·x; x < 0: slope·x ≥ x), and Max/Mul are vectorised. Generic: any model, matched by
/// structure, constant slopes checked; anything else is left alone. Returns the number rewritten.
pub fn prelu_to_max(model: &mut TypedModel) -> TractResult<usize> {
    use tract_onnx::tract_core::ops::binary::TypedBinOp;
    use tract_onnx::tract_core::ops::logic::Iff;
    let mut count = 0;
    for id in model.eval_order()? {
        let node = &model.nodes[id];
        if node.op_as::<Iff>().is_none() || node.inputs.len() != 3 {
            continue;
        }
        let (cond, t, x) = (node.inputs[0], node.inputs[1], node.inputs[2]);
        // cond = 0 > x
        let cn = &model.nodes[cond.node];
        let is_gt = cn.op_as::<TypedBinOp>().is_some_and(|b| b.0.name() == "GT");
        if !is_gt || cn.inputs.len() != 2 || cn.inputs[1] != x {
            continue;
        }
        let zero_ok = const_all(model, cn.inputs[0], |z| z == 0.0)?;
        // t = x * slope (either order), slope constant and ≤ 1 everywhere
        let tn = &model.nodes[t.node];
        let is_mul = tn
            .op_as::<TypedBinOp>()
            .is_some_and(|b| b.0.name() == "Mul");
        if !zero_ok || !is_mul || tn.inputs.len() != 2 {
            continue;
        }
        let slope = if tn.inputs[0] == x {
            tn.inputs[1]
        } else if tn.inputs[1] == x {
            tn.inputs[0]
        } else {
            continue;
        };
        let slope_ok = const_all(model, slope, |a| a.is_finite() && a <= 1.0)?;
        if !slope_ok {
            continue;
        }
        let name = format!("{}.prelu_max", node.name);
        let mut patch = TypedModelPatch::default();
        let px = patch.tap_model(model, x)?;
        let pt = patch.tap_model(model, t)?;
        let out = patch.wire_node(name, tract_onnx::tract_core::ops::math::max(), &[px, pt])?[0];
        patch.shunt_outside(model, OutletId::new(id, 0), out)?;
        patch.apply(model)?;
        count += 1;
    }
    Ok(count)
}

/// True when `outlet` is a constant f32 tensor whose every value satisfies `pred`.
fn const_all(
    model: &TypedModel,
    outlet: OutletId,
    pred: impl Fn(f32) -> bool,
) -> TractResult<bool> {
    Ok(model
        .outlet_fact(outlet)?
        .konst
        .as_ref()
        .and_then(|k| {
            let view = k.try_as_plain_ram().ok()?;
            view.as_slice::<f32>()
                .ok()
                .map(|s| s.iter().all(|v| pred(*v)))
        })
        .unwrap_or(false))
}

fn input_shape(e: &ModelEntry) -> [usize; 4] {
    let (w, h) = (e.input.width as usize, e.input.height as usize);
    match e.input.layout {
        Layout::NCHW => [1, 3, h, w],
        Layout::NHWC => [1, h, w, 3],
    }
}

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_models.rs"));
}

/// What was loaded, for verdicts, /health and logs.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
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
    pub detectors: Vec<Detector>,
    pub liveness: Vec<LivenessModel>,
    pub models: Vec<ModelInfo>,
    /// Where the models came from ("dir:models", "s3://bucket/prefix").
    pub source: String,
}

impl Registry {
    /// Load from the models directory (manifest.toml + files), verifying every sha256; when the
    /// directory has no manifest and the binary was built with embedded models, use those.
    pub fn load(cfg: &ModelConfig) -> Result<Registry, ModelError> {
        let manifest_path = cfg.models_dir.join("manifest.toml");
        if !manifest_path.exists() {
            if let Some((text, files)) = embedded::EMBEDDED {
                let manifest = Manifest::from_toml(text, "embedded manifest.toml")?;
                return Registry::from_source(
                    &manifest,
                    cfg,
                    "embedded",
                    |_| None,
                    |e| {
                        let bytes = files
                        .iter()
                        .find(|(name, _)| *name == e.file)
                        .map(|(_, b)| b.to_vec())
                        .ok_or_else(|| ModelError::Missing {
                            name: e.name.clone(),
                            tried: "embedded models (build with EKYC_EMBED_MODELS=models after `ekyc models fetch`)".into(),
                        })?;
                        verify_bytes(e, &bytes, "embedded")?;
                        Ok(bytes)
                    },
                );
            }
        }
        let manifest = Manifest::load(&manifest_path)?;
        let dir = cfg.models_dir.clone();
        let source = format!("dir:{}", dir.display());
        let plans = dir.clone();
        let cached_plan = move |e: &ModelEntry| plan_cache::read(&plans, e);
        Registry::from_source(&manifest, cfg, &source, cached_plan, |entry| {
            let path = dir.join(&entry.file);
            let bytes = std::fs::read(&path).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    ModelError::Missing {
                        name: entry.name.clone(),
                        tried: format!("{} (run `ekyc models fetch`)", path.display()),
                    }
                } else {
                    ModelError::Io {
                        path: path.clone(),
                        source: e,
                    }
                }
            })?;
            provision::verify_file(&dir, entry, &bytes)?;
            Ok(bytes)
        })
    }

    /// Load the active models of `manifest`, getting each file's bytes from `fetch` (a directory,
    /// S3, …), which must verify them (sha256), and building the plans in parallel. Models
    /// optimised at start-up (see [`optimised_at_start`]) use the plan `cached_plan` returns for them, when it has one
    /// that passed its sha256 sidecar (see [`plan_cache`]); the ONNX bytes are still fetched and
    /// verified either way.
    pub fn from_source(
        manifest: &Manifest,
        cfg: &ModelConfig,
        source: &str,
        cached_plan: impl Fn(&ModelEntry) -> Option<Vec<u8>> + Sync,
        fetch: impl Fn(&ModelEntry) -> Result<Vec<u8>, ModelError> + Sync,
    ) -> Result<Registry, ModelError> {
        let detectors = manifest.select(Role::Detector, &cfg.detectors)?;
        let liveness = manifest.select(Role::Liveness, &cfg.liveness_models)?;
        if detectors.is_empty() || liveness.is_empty() {
            return Err(ModelError::Manifest {
                path: source.to_string(),
                message: "need at least one detector and one liveness model".into(),
            });
        }
        let entries: Vec<&ModelEntry> = detectors.iter().chain(liveness.iter()).copied().collect();
        let plans: Vec<Result<(Plan, bool), ModelError>> = std::thread::scope(|s| {
            let handles: Vec<_> = entries
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let (fetch, cached_plan) = (&fetch, &cached_plan);
                    let eager = optimised_at_start(i, e);
                    s.spawn(move || {
                        let bytes = fetch(e)?;
                        let cached = eager.then(|| cached_plan(e)).flatten().and_then(|tar| {
                            match Plan::from_cached(e, &tar) {
                                Ok(p) => Some(p),
                                Err(err) => {
                                    tracing::warn!(model = %e.name, error = %err,
                                        "cached plan unusable; building from ONNX");
                                    None
                                }
                            }
                        });
                        let from_cache = cached.is_some();
                        let plan = match cached {
                            Some(p) => p,
                            None => Plan::from_onnx(e, &bytes)?,
                        };
                        if eager {
                            plan.prepare()?;
                        }
                        Ok((plan, from_cache))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(ModelError::Load {
                            name: "?".into(),
                            message: "model loading thread panicked".into(),
                        })
                    })
                })
                .collect()
        });
        let mut reg = Registry {
            detectors: Vec::new(),
            liveness: Vec::new(),
            models: Vec::new(),
            source: source.to_string(),
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
            match e.role {
                Role::Detector => {
                    let spec = e.detector.clone().ok_or_else(|| ModelError::Manifest {
                        path: source.into(),
                        message: format!("{} lacks [model.detector]", e.name),
                    })?;
                    reg.detectors
                        .push(Detector::new(e.name.clone(), plan, e.input.clone(), spec)?);
                }
                Role::Liveness => {
                    let spec = e.liveness.clone().ok_or_else(|| ModelError::Manifest {
                        path: source.into(),
                        message: format!("{} lacks [model.liveness]", e.name),
                    })?;
                    reg.liveness.push(LivenessModel::new(
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
}

/// Whether the model at `index` of a selection (detectors first, then liveness models, as
/// [`Registry::from_source`] orders them) is optimised at start-up: the first detector and every
/// liveness model. Fallback detectors are parsed and checked at start-up but optimised on first
/// use (most requests never need them).
pub fn optimised_at_start(index: usize, e: &ModelEntry) -> bool {
    index == 0 || e.role == Role::Liveness
}

/// Check bytes against the manifest's sha256.
pub fn verify_bytes(e: &ModelEntry, bytes: &[u8], source: &str) -> Result<(), ModelError> {
    let actual = sha256_hex(bytes);
    if actual.eq_ignore_ascii_case(&e.sha256) {
        Ok(())
    } else {
        Err(ModelError::HashMismatch {
            name: e.name.clone(),
            source_desc: format!("{source}/{}", e.file),
            expected: e.sha256.clone(),
            actual,
        })
    }
}
