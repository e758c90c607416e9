//! The pure core of ekyc-liveness: image bytes → quality gate → passive liveness → verdict.
//!
//! ```text
//! bytes ─► decode ─► detect ─► quality gate ─► passive liveness ─► Verdict
//!          Decoded   Detections  QualityReport   EnsembleScore     (assembled once)
//! ```
//!
//! No HTTP, AWS or CLI types live here (a test in the root crate fails if this crate gains such a
//! dependency); adapters pass plain configuration ([`config`]) and call [`Pipeline`]. Models come
//! from `ekyc-models` through a [`ekyc_models::ModelFiles`] source and are loaded once into a
//! [`Registry`].

pub mod config;
pub mod decode;
pub mod detect;
pub mod embed;
pub mod error;
pub mod face_match;
pub mod landmarks;
pub mod liveness;
pub mod metrics;
pub mod pipeline;
pub mod pixels;
pub mod quality;
pub mod registry;
pub mod session;

pub use config::{Calibration, Decision, Limits, ModelSelection, PipelineConfig};
pub use error::{DecodeError, Error, ModelError};
pub use pipeline::{CheckOptions, Detections, Pipeline, Status, Verdict};
pub use registry::{ModelInfo, Registry};

/// The logistic function, with the argument clamped to ±100 (no overflow to inf/NaN).
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x.clamp(-100.0, 100.0)).exp())
}
