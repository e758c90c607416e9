//! Models as data. A model is a manifest entry ([`manifest`]): what it is, where its bytes come from
//! (present file → offline mirror → public URL → recipe, [`provision`]), how to feed it and how to
//! read its output. Bytes reach a process through a [`source::ModelFiles`] (a directory, the
//! binary's embedded copy, S3 in the AWS adapter), always verified against the manifest's sha256,
//! and become runnable tract plans through typed stages ([`plan`]): [`plan::ParsedModel`] →
//! named graph passes ([`passes`]) → [`plan::PassedModel`] (what the [`plan_cache`] stores) →
//! [`plan::Runnable`].
//!
//! This crate knows nothing of faces: the detectors and classifiers that use these plans live in
//! `ekyc-core`.

mod error;
pub mod manifest;
pub mod passes;
pub mod plan;
pub mod plan_cache;
pub mod provision;
pub mod source;

pub use error::{BoxError, ModelError};
pub use manifest::{Manifest, ModelEntry, Role};
pub use plan::{ParsedModel, PassedModel, Plan, Runnable};
pub use source::{DirFiles, EmbeddedFiles, ModelFiles};
