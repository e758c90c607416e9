//! A model's way from ONNX bytes to a runnable tract plan, as types (after tract's own
//! `InferenceModel → TypedModel → runnable` stages):
//!
//! ```text
//! ONNX bytes ──ParsedModel::from_onnx──► ParsedModel ──apply_passes──► PassedModel ──optimize──► Runnable
//!                                                       (passes::ALL)      ▲   │
//!                                                  plan cache (NNEF) ──────┘   └──to_nnef──► plan cache
//! ```
//!
//! [`Plan`] is what a detector or classifier holds: a [`Runnable`] built at start-up, or a
//! [`PassedModel`] optimised on first use (fallback detectors most requests never need).

use crate::manifest::ModelEntry;
use crate::passes;
use crate::ModelError;
use std::sync::{Arc, Mutex, OnceLock};
use tract_onnx::prelude::*;

/// Concrete output shapes of a typed graph (an empty vec for an output whose shape is not concrete).
fn output_shapes(m: &TypedModel) -> Vec<Vec<usize>> {
    (0..m.outputs.len())
        .map(|i| {
            m.output_fact(i)
                .ok()
                .and_then(|f| f.shape.as_concrete().map(|s| s.to_vec()))
                .unwrap_or_default()
        })
        .collect()
}

/// An ONNX graph, parsed and typed, its input fixed to the manifest's shape.
pub struct ParsedModel {
    name: String,
    model: TypedModel,
}

impl ParsedModel {
    /// Parse ONNX bytes, check the model's declared input against the manifest, fix the input shape,
    /// type the graph.
    pub fn from_onnx(entry: &ModelEntry, bytes: &[u8]) -> Result<ParsedModel, ModelError> {
        let name = entry.name.as_str();
        let mut model = tract_onnx::onnx()
            .model_for_read(&mut std::io::Cursor::new(bytes))
            .map_err(|e| ModelError::load(name, e))?;
        let shape = entry.input.tensor_shape();
        // A model with a concrete input shape must agree with the manifest.
        let declared = model
            .input_fact(0)
            .map_err(|e| ModelError::load(name, e))?
            .shape
            .clone();
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
                    name: name.to_string(),
                    message: format!(
                        "model input is {dims:?}, manifest says {shape:?} ({:?})",
                        entry.input.layout
                    ),
                });
            }
        }
        model = model
            .with_input_fact(0, f32::fact(shape).into())
            .map_err(|e| ModelError::load(name, e))?;
        let model = model.into_typed().map_err(|e| ModelError::IoMismatch {
            name: name.to_string(),
            message: format!("model does not accept input {shape:?}: {e:#}"),
        })?;
        Ok(ParsedModel {
            name: name.to_string(),
            model,
        })
    }

    /// Run the load-time graph passes ([`passes::apply_all`]).
    pub fn apply_passes(self) -> Result<PassedModel, ModelError> {
        let model = passes::apply_all(self.model, &self.name)
            .map_err(|e| ModelError::load(&self.name, e))?;
        Ok(PassedModel {
            name: self.name,
            model,
        })
    }
}

/// A graph after the load-time passes: what the compiled-plan cache stores, and what tract's
/// codegen ([`PassedModel::optimize`]) turns into a [`Runnable`].
#[derive(Clone)]
pub struct PassedModel {
    name: String,
    model: TypedModel,
}

fn nnef() -> tract_nnef::framework::Nnef {
    use tract_onnx::WithOnnx;
    tract_nnef::nnef().with_onnx()
}

impl PassedModel {
    /// Read a cached plan (NNEF tar); its input must still match the manifest.
    pub fn from_nnef(entry: &ModelEntry, nnef_tar: &[u8]) -> Result<PassedModel, ModelError> {
        let model = nnef()
            .model_for_read(&mut std::io::Cursor::new(nnef_tar))
            .map_err(|e| ModelError::load(&entry.name, e.context("cached plan")))?;
        let want = entry.input.tensor_shape();
        let got = model
            .input_fact(0)
            .ok()
            .and_then(|f| f.shape.as_concrete().map(|s| s.to_vec()));
        if got.as_deref() != Some(&want[..]) {
            return Err(ModelError::IoMismatch {
                name: entry.name.clone(),
                message: format!("cached plan input is {got:?}, manifest says {want:?}"),
            });
        }
        Ok(PassedModel {
            name: entry.name.clone(),
            model,
        })
    }

    /// Serialise as NNEF (the compiled-plan cache's format).
    pub fn to_nnef(&self) -> Result<Vec<u8>, ModelError> {
        let mut tar = Vec::new();
        nnef()
            .write_to_tar(&self.model, &mut tar)
            .map_err(|e| ModelError::load(&self.name, e))?;
        Ok(tar)
    }

    /// Concrete output shapes.
    pub fn output_shapes(&self) -> Vec<Vec<usize>> {
        output_shapes(&self.model)
    }

    /// tract's codegen: optimise and build the runnable plan.
    pub fn optimize(self) -> Result<Runnable, ModelError> {
        let shapes = output_shapes(&self.model);
        let mut m = self.model;
        m.optimize().map_err(|e| ModelError::load(&self.name, e))?;
        let plan = m
            .into_runnable()
            .map_err(|e| ModelError::load(&self.name, e))?;
        Ok(Runnable {
            name: self.name.into(),
            plan,
            output_shapes: shapes,
        })
    }
}

/// An optimised plan, ready to run; cheap to clone (shared).
#[derive(Clone)]
pub struct Runnable {
    name: Arc<str>,
    plan: Arc<TypedRunnableModel>,
    output_shapes: Vec<Vec<usize>>,
}

impl Runnable {
    /// Run on one input tensor.
    pub fn run(&self, input: Tensor) -> Result<TVec<TValue>, ModelError> {
        self.plan
            .run(tvec!(input.into()))
            .map_err(|e| ModelError::inference(&self.name, e))
    }
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

/// The plan a detector or classifier holds: runnable now, or optimised on first use.
pub struct Plan {
    name: String,
    output_shapes: Vec<Vec<usize>>,
    state: PlanState,
}

enum PlanState {
    Ready(Runnable),
    /// Optimised on first use. The passed graph is kept until that succeeds (a failed attempt is
    /// retried by the next caller, with the same error if it is deterministic).
    Deferred(Box<Deferred>),
}

struct Deferred {
    passed: Mutex<Option<PassedModel>>,
    ready: OnceLock<Runnable>,
}

impl Plan {
    /// A plan that is already runnable.
    pub fn ready(r: Runnable) -> Plan {
        Plan {
            name: r.name.to_string(),
            output_shapes: r.output_shapes.clone(),
            state: PlanState::Ready(r),
        }
    }

    /// A plan optimised on first use.
    pub fn deferred(p: PassedModel) -> Plan {
        Plan {
            name: p.name.clone(),
            output_shapes: p.output_shapes(),
            state: PlanState::Deferred(Box::new(Deferred {
                passed: Mutex::new(Some(p)),
                ready: OnceLock::new(),
            })),
        }
    }

    /// Concrete output shapes (known before optimisation).
    pub fn output_shapes(&self) -> &[Vec<usize>] {
        &self.output_shapes
    }

    /// The runnable plan (optimising a deferred one, once).
    pub fn runnable(&self) -> Result<&Runnable, ModelError> {
        match &self.state {
            PlanState::Ready(r) => Ok(r),
            PlanState::Deferred(d) => {
                let (passed, ready) = (&d.passed, &d.ready);
                if let Some(r) = ready.get() {
                    return Ok(r);
                }
                let mut guard = passed.lock().map_err(|_| ModelError::Panicked {
                    name: self.name.clone(),
                    what: "an earlier optimisation of this model",
                })?;
                if let Some(r) = ready.get() {
                    return Ok(r);
                }
                // Only the first successful caller consumes the graph; a failure keeps it.
                let graph = guard.clone().ok_or_else(|| ModelError::Panicked {
                    name: self.name.clone(),
                    what: "an earlier optimisation of this model",
                })?;
                let runnable = graph.optimize()?;
                *guard = None;
                Ok(ready.get_or_init(|| runnable))
            }
        }
    }

    /// Run on one input tensor.
    pub fn run(&self, input: Tensor) -> Result<TVec<TValue>, ModelError> {
        self.runnable()?.run(input)
    }
}
