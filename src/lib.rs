//! ekyc-liveness: the binaries' shared edge. `settings` reads flags and environment into the plain
//! configuration structs of the crates (`ekyc-core`, `ekyc-http`, `ekyc-aws`); `logging` installs
//! the JSON log subscriber and tunes the allocator for long-running servers.
//!
//! The crates, in dependency order: `ekyc-models` (models as data) ← `ekyc-core` (the pipeline) ←
//! `ekyc-http`, `ekyc-aws`, `ekyc-eval` (adapters and evaluation) ← this crate (the `ekyc`,
//! `ekyc-api` and `ekyc-s3` binaries). See ARCHITECTURE.md.

pub mod logging;
pub mod settings;

pub use settings::Settings;
