//! Error types of the core, one enum per layer, each with a stable string code.
//!
//! Adapters (CLI, HTTP, S3) map `code()` to their own status in one table; nothing here knows about HTTP.

use std::path::PathBuf;

/// Why image bytes could not become pixels.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("the image is empty (0 bytes)")]
    Empty,
    #[error("the image is {size} bytes, over the limit of {limit} bytes")]
    TooManyBytes { size: usize, limit: usize },
    #[error("the data is not a recognised image (expected JPEG, PNG or WebP)")]
    NotAnImage,
    #[error("unsupported image format {0} (supported: JPEG, PNG, WebP)")]
    UnsupportedFormat(String),
    #[error("the image is {width}x{height} pixels, over the limit ({limit})")]
    TooLarge {
        width: u32,
        height: u32,
        limit: String,
    },
    #[error("the image is truncated: {0}")]
    Truncated(String),
    #[error("the image could not be decoded: {0}")]
    Corrupt(String),
}

impl DecodeError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::Empty => "EMPTY_IMAGE",
            DecodeError::TooManyBytes { .. } => "IMAGE_TOO_MANY_BYTES",
            DecodeError::NotAnImage => "NOT_AN_IMAGE",
            DecodeError::UnsupportedFormat(_) => "UNSUPPORTED_FORMAT",
            DecodeError::TooLarge { .. } => "IMAGE_TOO_LARGE",
            DecodeError::Truncated(_) => "TRUNCATED_IMAGE",
            DecodeError::Corrupt(_) => "CORRUPT_IMAGE",
        }
    }
}

/// Problems with model files: manifest, provisioning, verification, loading, inference.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model manifest {path}: {message}")]
    Manifest { path: String, message: String },
    #[error("model {name}: not found (tried: {tried})")]
    Missing { name: String, tried: String },
    #[error("model {name}: sha256 mismatch for {source_desc}: expected {expected}, got {actual}")]
    HashMismatch {
        name: String,
        source_desc: String,
        expected: String,
        actual: String,
    },
    #[error("model {name}: {message}")]
    Fetch { name: String, message: String },
    #[error("model {name}: failed to load: {message}")]
    Load { name: String, message: String },
    #[error("model {name}: input/output does not match its manifest entry: {message}")]
    IoMismatch { name: String, message: String },
    #[error("model {name}: inference failed: {message}")]
    Inference { name: String, message: String },
    #[error("unknown model {0} (not in the manifest)")]
    Unknown(String),
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ModelError {
    pub fn code(&self) -> &'static str {
        match self {
            ModelError::Manifest { .. } => "MODEL_MANIFEST",
            ModelError::Missing { .. } => "MODEL_MISSING",
            ModelError::HashMismatch { .. } => "MODEL_HASH_MISMATCH",
            ModelError::Fetch { .. } => "MODEL_FETCH",
            ModelError::Load { .. } => "MODEL_LOAD",
            ModelError::IoMismatch { .. } => "MODEL_IO_MISMATCH",
            ModelError::Inference { .. } => "MODEL_INFERENCE",
            ModelError::Unknown(_) => "MODEL_UNKNOWN",
            ModelError::Io { .. } => "MODEL_IO",
        }
    }
}

/// Any error of the core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("configuration: {0}")]
    Config(String),
}

impl Error {
    pub fn code(&self) -> &'static str {
        match self {
            Error::Decode(e) => e.code(),
            Error::Model(e) => e.code(),
            Error::Config(_) => "CONFIG",
        }
    }
}
