//! The one typed configuration of the service.
//!
//! Every setting is a CLI flag and an environment variable (clap `env`), declared here and nowhere else.
//! Binaries that take no flags (the Lambda entry points) call [`Config::from_env`]; the CLI flattens
//! [`Config`] into its subcommands, so flags override the environment which overrides the defaults.

use clap::{Args, Parser};
use serde::Serialize;
use std::path::PathBuf;

/// All settings of the pipeline and its adapters.
#[derive(Args, Clone, Debug, Serialize)]
pub struct Config {
    #[command(flatten)]
    pub models: ModelConfig,
    #[command(flatten)]
    pub limits: Limits,
    #[command(flatten)]
    pub quality: QualityConfig,
    /// Liveness decision threshold: `is_live = liveness_score >= threshold`.
    #[arg(long, env = "EKYC_LIVENESS_THRESHOLD", default_value_t = 0.5)]
    pub liveness_threshold: f32,
    /// Run the liveness models of the ensemble on parallel threads (lower latency when a second
    /// core is free; same CPU time).
    #[arg(long, env = "EKYC_PARALLEL_LIVENESS", default_value_t = false, action = clap::ArgAction::Set)]
    pub parallel_liveness: bool,
    #[command(flatten)]
    pub server: ServerConfig,
    #[command(flatten)]
    pub s3: S3Config,
}

/// Where models come from and which ones are active.
#[derive(Args, Clone, Debug, Serialize)]
pub struct ModelConfig {
    /// Directory holding manifest.toml and the provisioned model files.
    #[arg(long, env = "EKYC_MODELS_DIR", default_value = "models")]
    pub models_dir: PathBuf,
    /// Offline mirror laid out like ../shared/models (`<mirror>/<mirror_path>`), tried by `models fetch`.
    #[arg(long, env = "EKYC_MODEL_MIRROR")]
    pub model_mirror: Option<PathBuf>,
    /// Liveness models to use (comma-separated manifest names); default: the manifest's default set.
    #[arg(long, env = "EKYC_LIVENESS_MODELS", value_delimiter = ',')]
    pub liveness_models: Vec<String>,
    /// Face detectors to use, tried in order until one finds a face; default: the manifest's default set.
    #[arg(long, env = "EKYC_DETECTORS", value_delimiter = ',')]
    pub detectors: Vec<String>,
    /// S3 bucket holding manifest.toml and the models (loaded into memory at start-up instead of models_dir).
    #[arg(long, env = "EKYC_MODEL_BUCKET")]
    pub model_bucket: Option<String>,
    /// Key prefix of the models in EKYC_MODEL_BUCKET (e.g. "models/").
    #[arg(long, env = "EKYC_MODEL_PREFIX", default_value = "")]
    pub model_prefix: String,
}

/// Input limits, checked before any pixel is allocated.
#[derive(Args, Clone, Debug, Serialize)]
pub struct Limits {
    /// Largest accepted encoded image, in bytes.
    #[arg(long, env = "EKYC_MAX_IMAGE_BYTES", default_value_t = 15 * 1024 * 1024)]
    pub max_image_bytes: usize,
    /// Largest accepted width or height, in pixels.
    #[arg(long, env = "EKYC_MAX_IMAGE_SIDE", default_value_t = 10_000)]
    pub max_image_side: u32,
    /// Largest accepted width x height.
    #[arg(long, env = "EKYC_MAX_IMAGE_PIXELS", default_value_t = 50_000_000)]
    pub max_image_pixels: u64,
    /// JPEGs at least twice this size (long side) are decoded at a reduced DCT scale (1/2, 1/4, 1/8)
    /// keeping the long side at least this large: a 12-MP photo costs little more than a small one.
    #[arg(long, env = "EKYC_DECODE_MAX_SIDE", default_value_t = 800)]
    pub decode_max_side: u32,
}

/// Quality-gate thresholds. Each check reports its measured score and the limit it was held to.
#[derive(Args, Clone, Debug, Serialize)]
pub struct QualityConfig {
    /// Minimum mean luma (0-255) of the face region.
    #[arg(long, env = "EKYC_MIN_FACE_BRIGHTNESS", default_value_t = 50.0)]
    pub min_face_brightness: f32,
    /// Maximum mean luma (0-255) of the face region.
    #[arg(long, env = "EKYC_MAX_FACE_BRIGHTNESS", default_value_t = 225.0)]
    pub max_face_brightness: f32,
    /// Minimum mean luma (0-255) of the whole image.
    #[arg(long, env = "EKYC_MIN_IMAGE_BRIGHTNESS", default_value_t = 35.0)]
    pub min_image_brightness: f32,
    /// Maximum mean luma (0-255) of the whole image.
    #[arg(long, env = "EKYC_MAX_IMAGE_BRIGHTNESS", default_value_t = 235.0)]
    pub max_image_brightness: f32,
    /// Minimum sharpness: variance of the Laplacian of the face crop resized to 112x112 grey.
    #[arg(long, env = "EKYC_MIN_SHARPNESS", default_value_t = 40.0)]
    pub min_sharpness: f32,
    /// Minimum face box area / image area.
    #[arg(long, env = "EKYC_MIN_FACE_AREA_RATIO", default_value_t = 0.02)]
    pub min_face_area_ratio: f32,
    /// Minimum face box height / image height (a selfie, not a full-body shot).
    #[arg(long, env = "EKYC_MIN_FACE_HEIGHT_RATIO", default_value_t = 0.15)]
    pub min_face_height_ratio: f32,
    /// Minimum distance between the eyes, in original-image pixels.
    #[arg(long, env = "EKYC_MIN_EYE_DISTANCE", default_value_t = 32.0)]
    pub min_eye_distance: f32,
    /// Faces smaller than this fraction of the largest face's area are ignored by the multiple-faces check.
    #[arg(long, env = "EKYC_MULTI_FACE_MIN_AREA", default_value_t = 0.1)]
    pub multi_face_min_area: f32,
    /// Minimum fraction of the face box (grown by 10 %) that must lie inside the image.
    #[arg(long, env = "EKYC_MIN_FACE_INSIDE", default_value_t = 0.97)]
    pub min_face_inside: f32,
    /// Maximum absolute head roll (eye-line angle), degrees.
    #[arg(long, env = "EKYC_MAX_ROLL_DEG", default_value_t = 25.0)]
    pub max_roll_deg: f32,
    /// Maximum absolute yaw: nose-tip offset from the eye midpoint along the eye line / eye distance (0 = frontal).
    #[arg(long, env = "EKYC_MAX_YAW", default_value_t = 0.35)]
    pub max_yaw: f32,
}

/// HTTP adapter settings.
#[derive(Args, Clone, Debug, Serialize)]
pub struct ServerConfig {
    /// Address to listen on when not running inside AWS Lambda.
    #[arg(long, env = "EKYC_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on when not running inside AWS Lambda.
    #[arg(long, env = "EKYC_PORT", default_value_t = 3000)]
    pub port: u16,
    /// Largest accepted request body in bytes (raw; base64 JSON bodies may be 4/3 of this).
    #[arg(long, env = "EKYC_MAX_BODY_BYTES", default_value_t = 6 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Origins allowed by CORS (comma-separated). Empty = CORS off. No wildcard, no credentials.
    #[arg(long, env = "EKYC_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Verifications run at the same time (others wait their turn); 0 = the number of CPUs. Bounds
    /// memory and keeps latency predictable under overload.
    #[arg(long, env = "EKYC_MAX_CONCURRENCY", default_value_t = 0)]
    pub max_concurrency: usize,
    /// Serve the demo page at / and /demo.
    #[arg(long, env = "EKYC_DEMO", default_value_t = true, action = clap::ArgAction::Set)]
    pub demo: bool,
}

/// S3 upload-trigger settings.
#[derive(Args, Clone, Debug, Serialize)]
pub struct S3Config {
    /// Key prefix of uploaded images that the trigger processes.
    #[arg(long, env = "EKYC_UPLOADS_PREFIX", default_value = "uploads/")]
    pub uploads_prefix: String,
    /// Key prefix under which verdict JSON files are written (`<results>/<original key>.json`).
    #[arg(long, env = "EKYC_RESULTS_PREFIX", default_value = "results/")]
    pub results_prefix: String,
}

#[derive(Parser)]
#[command(no_binary_name = true)]
struct EnvOnly {
    #[command(flatten)]
    config: Config,
}

impl Config {
    /// Read the configuration from the environment only (for binaries without flags).
    pub fn from_env() -> Result<Config, crate::Error> {
        EnvOnly::try_parse_from(std::iter::empty::<String>())
            .map(|e| e.config)
            .map_err(|e| crate::Error::Config(e.to_string()))
    }
}

/// True when running inside AWS Lambda (the runtime API address is set).
pub fn in_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some_and(|v| !v.is_empty())
}
