//! The models layer's one error type, with a stable code per variant and the underlying error kept
//! as the `source()` (tract's error chain, I/O errors).

use std::path::PathBuf;

/// The underlying cause of a load or inference failure (tract's error chain, kept intact).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Problems with model files: manifest, provisioning, verification, loading, inference.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    #[error("model manifest {path}: {message}")]
    Manifest { path: String, message: String },
    #[error("model {name}: not found (tried: {tried})")]
    Missing { name: String, tried: String },
    #[error("model {name}: sha256 mismatch for {origin}: expected {expected}, got {actual}")]
    HashMismatch {
        name: String,
        origin: String,
        expected: String,
        actual: String,
    },
    #[error("model {name}: {message}")]
    Fetch { name: String, message: String },
    #[error("model store {key}: {message}")]
    Store { key: String, message: String },
    #[error("model {name}: failed to load")]
    Load {
        name: String,
        #[source]
        source: BoxError,
    },
    #[error("model {name}: input/output does not match its manifest entry: {message}")]
    IoMismatch { name: String, message: String },
    #[error("model {name}: inference failed")]
    Inference {
        name: String,
        #[source]
        source: BoxError,
    },
    #[error("unknown model {0} (not in the manifest)")]
    Unknown(String),
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("model {name}: {what} panicked")]
    Panicked { name: String, what: &'static str },
}

impl ModelError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ModelError::Manifest { .. } => "MODEL_MANIFEST",
            ModelError::Missing { .. } => "MODEL_MISSING",
            ModelError::HashMismatch { .. } => "MODEL_HASH_MISMATCH",
            ModelError::Fetch { .. } => "MODEL_FETCH",
            ModelError::Store { .. } => "MODEL_STORE",
            ModelError::Load { .. } => "MODEL_LOAD",
            ModelError::IoMismatch { .. } => "MODEL_IO_MISMATCH",
            ModelError::Inference { .. } => "MODEL_INFERENCE",
            ModelError::Unknown(_) => "MODEL_UNKNOWN",
            ModelError::Io { .. } => "MODEL_IO",
            ModelError::Panicked { .. } => "MODEL_PANICKED",
        }
    }

    /// A load failure of `name` caused by `source` (e.g. a tract error).
    pub fn load(name: &str, source: impl Into<BoxError>) -> ModelError {
        ModelError::Load {
            name: name.to_string(),
            source: source.into(),
        }
    }

    /// An inference failure of `name` caused by `source` (a tract error or a description).
    pub fn inference(name: &str, source: impl Into<BoxError>) -> ModelError {
        ModelError::Inference {
            name: name.to_string(),
            source: source.into(),
        }
    }
}
