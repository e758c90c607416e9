//! Error types of the core, one enum per layer, each variant with a stable string code.
//!
//! Adapters map the *variant* (not the string) to their own status; nothing here knows about HTTP.

pub use ekyc_models::ModelError;

/// Why image bytes could not become pixels. The messages are our own words with the measured
/// values; a decoder's own error is kept as the `source()` for logs, never in the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    #[error("the image is truncated: {what}")]
    Truncated {
        what: String,
        #[source]
        source: Option<ekyc_models::BoxError>,
    },
    #[error("the image could not be decoded: {what}")]
    Corrupt {
        what: String,
        #[source]
        source: Option<ekyc_models::BoxError>,
    },
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
            DecodeError::Truncated { .. } => "TRUNCATED_IMAGE",
            DecodeError::Corrupt { .. } => "CORRUPT_IMAGE",
        }
    }

    pub(crate) fn truncated(what: impl Into<String>) -> DecodeError {
        DecodeError::Truncated {
            what: what.into(),
            source: None,
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>) -> DecodeError {
        DecodeError::Corrupt {
            what: what.into(),
            source: None,
        }
    }
}

/// Any error of the core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input could not be decoded (the caller's fault).
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A model failed (the service's fault).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A worker thread of the pipeline panicked (the service's fault).
    #[error("{0} panicked")]
    Panicked(&'static str),
    /// A face match was asked of a pipeline without an embedding model (configuration).
    #[error("no face-embedding model is loaded (EKYC_EMBEDDING_MODEL=none)")]
    NoEmbeddingModel,
}

impl Error {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Decode(e) => e.code(),
            Error::Model(e) => e.code(),
            Error::Panicked(_) => "INTERNAL",
            Error::NoEmbeddingModel => "MATCH_UNAVAILABLE",
        }
    }
}

/// `e` followed by each of its sources (`a: b: c`), for logs.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
