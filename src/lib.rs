//! ekyc-liveness: an eKYC face check. Image bytes → quality gate → passive liveness → verdict.
//!
//! The core (`decode`, `detect`, `quality`, `liveness`, `pipeline`, `models`) has no HTTP or AWS
//! types; adapters (CLI, `http` for HTTP/Lambda, S3 trigger) live at the edge and call [`Pipeline::run`].

pub mod config;
pub mod decode;
pub mod detect;
pub mod error;
pub mod eval;
pub mod http;
pub mod liveness;
pub mod logging;
pub mod models;
pub mod pipeline;
pub mod pixels;
pub mod quality;
pub mod s3;

pub use config::Config;
pub use error::{DecodeError, Error, ModelError};
pub use pipeline::{CheckOptions, Pipeline, Status, Verdict};
