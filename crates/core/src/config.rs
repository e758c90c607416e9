//! Plain configuration of the core. Binaries fill these from flags and the environment (the root
//! crate's `settings`); the core only reads them. Every struct has the service's defaults.

pub use crate::quality::QualityLimits;

/// Input limits, checked before any pixel is allocated.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest accepted encoded image, in bytes.
    pub max_image_bytes: usize,
    /// Largest accepted width or height, in pixels.
    pub max_image_side: u32,
    /// Largest accepted width x height.
    pub max_image_pixels: u64,
    /// JPEGs at least twice this size (long side) are decoded at a reduced DCT scale (1/2, 1/4,
    /// 1/8) keeping the long side at least this large.
    pub decode_max_side: u32,
    /// Per-request decode budget: the most memory one decode may hold at its peak (the decoder's
    /// buffer at the image's native depth, 16-bit and alpha included, plus the RGB copies),
    /// computed from the header before any pixel is allocated; also the cap on any single decoder
    /// allocation.
    pub max_decode_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_image_bytes: 15 * 1024 * 1024,
            max_image_side: 10_000,
            max_image_pixels: 50_000_000,
            decode_max_side: 800,
            max_decode_bytes: 256 << 20,
        }
    }
}

/// How the liveness score becomes a decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// `is_live = liveness_score >= liveness_threshold`.
    pub liveness_threshold: f32,
    /// Run the models of the ensemble on parallel threads (lower latency when a core is free).
    pub parallel_liveness: bool,
    /// How the models' live probabilities become the ensemble's score.
    pub fusion: crate::liveness::Fusion,
}

impl Default for Decision {
    fn default() -> Self {
        Decision {
            liveness_threshold: 0.5,
            parallel_liveness: false,
            fusion: crate::liveness::Fusion::default(),
        }
    }
}

/// Which models of the manifest are active (empty = the manifest's default set).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelSelection {
    /// Face detectors, tried in order until one finds a face.
    pub detectors: Vec<String>,
    /// Liveness models of the ensemble.
    pub liveness: Vec<String>,
    /// Landmark models of the quality gate (`["none"]`: none).
    pub landmarks: Vec<String>,
}

/// Everything the pipeline needs besides its models.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PipelineConfig {
    pub limits: Limits,
    pub quality: QualityLimits,
    pub decision: Decision,
}
