//! The one place the binaries read flags and environment variables (clap `env`): each group below
//! fills the plain configuration struct of the crate that owns it. Binaries that take no flags (the
//! Lambda entry points) call [`Settings::from_env`]; the CLI flattens [`Settings`] into its
//! subcommands, so flags override the environment, which overrides the defaults.
//!
//! The quality-gate settings are generated from the gate's table (`ekyc_core::quality::LIMITS`):
//! one flag and one variable per row.

use clap::{Arg, ArgMatches, Args, FromArgMatches, Parser};
use ekyc_aws::{ModelLocation, S3Config};
use ekyc_core::liveness::Fusion;
use ekyc_core::metrics::MetricsConfig;
use ekyc_core::quality::{QualityLimits, LIMITS};
use ekyc_core::{Calibration, Decision, Limits, ModelSelection, PipelineConfig};
use ekyc_http::sessions::SessionConfig;
use ekyc_http::ServerConfig;
use std::path::PathBuf;

/// All settings of the pipeline and its adapters.
#[derive(Args, Clone, Debug)]
pub struct Settings {
    #[command(flatten)]
    pub models: ModelArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub quality: QualityArgs,
    #[command(flatten)]
    pub decision: DecisionArgs,
    #[command(flatten)]
    pub matching: MatchArgs,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub s3: S3Args,
    #[command(flatten)]
    pub metrics: MetricsArgs,
}

/// Where models come from and which ones are active.
#[derive(Args, Clone, Debug)]
pub struct ModelArgs {
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
    /// Landmark models of the quality gate (face mesh for head pose, eye model for eyes open;
    /// comma-separated manifest names); default: the manifest's default set; `none`: no landmark
    /// checks.
    #[arg(long, env = "EKYC_LANDMARK_MODELS", value_delimiter = ',')]
    pub landmark_models: Vec<String>,
    /// Face-embedding model (identity across a capture session's frames; a manifest name);
    /// default: the manifest's default; `none`: no embedding (sessions then cannot check identity
    /// and answer RETRY).
    #[arg(long, env = "EKYC_EMBEDDING_MODEL", value_delimiter = ',')]
    pub embedding_model: Vec<String>,
    /// S3 bucket holding manifest.toml and the models (loaded into memory at start-up instead of models_dir).
    #[arg(long, env = "EKYC_MODEL_BUCKET")]
    pub model_bucket: Option<String>,
    /// Key prefix of the models in EKYC_MODEL_BUCKET (e.g. "models/").
    #[arg(long, env = "EKYC_MODEL_PREFIX", default_value = "")]
    pub model_prefix: String,
}

/// Input limits, checked before any pixel is allocated.
#[derive(Args, Clone, Debug)]
pub struct LimitArgs {
    /// Largest accepted encoded image, in bytes.
    #[arg(long, env = "EKYC_MAX_IMAGE_BYTES", default_value_t = Limits::default().max_image_bytes)]
    pub max_image_bytes: usize,
    /// Largest accepted width or height, in pixels.
    #[arg(long, env = "EKYC_MAX_IMAGE_SIDE", default_value_t = Limits::default().max_image_side)]
    pub max_image_side: u32,
    /// Largest accepted width x height.
    #[arg(long, env = "EKYC_MAX_IMAGE_PIXELS", default_value_t = Limits::default().max_image_pixels)]
    pub max_image_pixels: u64,
    /// JPEGs at least twice this size (long side) are decoded at a reduced DCT scale (1/2, 1/4, 1/8)
    /// keeping the long side at least this large: a 12-MP photo costs little more than a small one.
    #[arg(long, env = "EKYC_DECODE_MAX_SIDE", default_value_t = Limits::default().decode_max_side)]
    pub decode_max_side: u32,
    /// Per-request decode budget in MiB: the peak memory of one decode (native depth incl. 16-bit
    /// and alpha, plus the RGB copies), checked on the header before decoding.
    #[arg(long, env = "EKYC_MAX_DECODE_MB", default_value_t = Limits::default().max_decode_bytes >> 20)]
    pub max_decode_mb: u64,
}

/// The liveness decision.
#[derive(Args, Clone, Debug)]
pub struct DecisionArgs {
    /// Liveness decision threshold: `is_live = liveness_score >= threshold`.
    #[arg(long, env = "EKYC_LIVENESS_THRESHOLD", default_value_t = Decision::default().liveness_threshold)]
    pub liveness_threshold: f32,
    /// Run the liveness models of the ensemble on parallel threads (lower latency when a second
    /// core is free; same CPU time).
    #[arg(long, env = "EKYC_PARALLEL_LIVENESS", default_value_t = false, action = clap::ArgAction::Set)]
    pub parallel_liveness: bool,
    /// When cores are idle, run a verification's independent stages (passive model beside the
    /// landmarks, the two eyes) on two threads: same results, lower latency.
    #[arg(long, env = "EKYC_PARALLEL_STAGES", default_value_t = Decision::default().parallel_stages, action = clap::ArgAction::Set)]
    pub parallel_stages: bool,
    /// How the liveness models' probabilities are combined: `mean_probability` (weighted mean)
    /// or `mean_logit` (sigmoid of the weighted mean log-odds).
    #[arg(long, env = "EKYC_LIVENESS_FUSION", default_value = Decision::default().fusion.as_str(),
          value_parser = parse_fusion)]
    pub fusion: Fusion,
    /// Half-width of the uncertain band around the threshold: a liveness score closer to the
    /// threshold than this is RETRY (ask for another capture); 0 = no band.
    #[arg(long, env = "EKYC_RETRY_BAND", default_value_t = Decision::default().retry_band)]
    pub retry_band: f32,
    /// Largest spread of the ensemble's live probabilities (highest minus lowest) before the
    /// verdict is RETRY (the models disagree); 1 = never.
    #[arg(long, env = "EKYC_RETRY_MAX_SPREAD", default_value_t = Decision::default().retry_max_spread)]
    pub retry_max_spread: f32,
    /// Calibration of the fused score into `liveness_score`: `auto` (the manifest's
    /// `[[calibration]]` entry for exactly the active liveness models and fusion, none if it has
    /// none), `none`, or Platt parameters `a,b` (`sigmoid(a·logit(raw) + b)`, as `ekyc calibrate
    /// --platt` prints them).
    #[arg(long, env = "EKYC_LIVENESS_CALIBRATION", default_value = "auto",
          value_parser = parse_calibration)]
    pub calibration: Calibration,
}

fn parse_calibration(s: &str) -> Result<Calibration, String> {
    Calibration::parse(s)
        .ok_or_else(|| format!("{s:?}: expected auto, none or two numbers a,b with a > 0"))
}

fn parse_fusion(s: &str) -> Result<Fusion, String> {
    Fusion::parse(s).ok_or_else(|| {
        let names: Vec<&str> = Fusion::ALL.iter().map(|f| f.as_str()).collect();
        format!("unknown fusion {s:?}; one of {}", names.join(", "))
    })
}

/// Face match (selfie against document).
#[derive(Args, Clone, Debug)]
pub struct MatchArgs {
    /// Face-match threshold: `match = similarity >= threshold` (cosine of the embeddings);
    /// default: the embedding model's calibrated `match_threshold` in the manifest.
    #[arg(long, env = "EKYC_MATCH_THRESHOLD")]
    pub match_threshold: Option<f32>,
    /// The smallest eye distance (original pixels) of a usable document face; under it the
    /// answer is no match with DOCUMENT_FACE_TOO_SMALL.
    #[arg(long, env = "EKYC_MIN_DOCUMENT_EYE_DISTANCE_PX",
          default_value_t = ekyc_core::face_match::DEFAULT_MIN_DOCUMENT_EYE_DISTANCE_PX)]
    pub min_document_eye_distance_px: f32,
    /// Detectors tried on the document, in order (comma-separated manifest names of active
    /// detectors); default: the active detectors, largest input (full range) first.
    #[arg(long, env = "EKYC_DOCUMENT_DETECTORS", value_delimiter = ',')]
    pub document_detectors: Vec<String>,
}

/// A fixed challenge for tests (`EKYC_SESSION_FIXED_STEPS`).
#[derive(Clone, Debug, PartialEq)]
pub struct FixedSteps(pub Vec<ekyc_core::session::Step>);

fn parse_fixed_steps(s: &str) -> Result<FixedSteps, String> {
    let steps = ekyc_core::session::parse_steps(s)?;
    if steps.is_empty() {
        return Err("at least one step".into());
    }
    Ok(FixedSteps(steps))
}

/// HTTP adapter settings.
#[derive(Args, Clone, Debug)]
pub struct ServerArgs {
    /// Address to listen on when not running inside AWS Lambda.
    #[arg(long, env = "EKYC_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on when not running inside AWS Lambda.
    #[arg(long, env = "EKYC_PORT", default_value_t = 3000)]
    pub port: u16,
    /// Largest accepted request body in bytes (raw; base64 JSON bodies may be 4/3 of this).
    #[arg(long, env = "EKYC_MAX_BODY_BYTES", default_value_t = ServerConfig::default().max_body_bytes)]
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
    /// After SIGTERM/SIGINT, seconds to let requests in flight finish before exiting anyway.
    #[arg(long, env = "EKYC_SHUTDOWN_GRACE_S", default_value_t = ServerConfig::default().shutdown_grace_s)]
    pub shutdown_grace_s: f64,
    /// Memory the process may use, in MiB: concurrency is lowered so that permits × the decode
    /// budget fits (default inside Lambda: AWS_LAMBDA_FUNCTION_MEMORY_SIZE).
    #[arg(long, env = "EKYC_MEMORY_MB")]
    pub memory_mb: Option<u64>,
    /// Seconds a request body may take to arrive; slower or stalled uploads get 408 BODY_TIMEOUT.
    #[arg(long, env = "EKYC_BODY_TIMEOUT_S", default_value_t = ServerConfig::default().body_timeout_s)]
    pub body_timeout_s: f64,
    /// Connections the local server keeps open at once; the next is answered 503
    /// TOO_MANY_CONNECTIONS and closed.
    #[arg(long, env = "EKYC_MAX_CONNECTIONS", default_value_t = ServerConfig::default().max_connections)]
    pub max_connections: usize,
    /// Seconds a connection may take to send its whole request head (then 408 HEADER_TIMEOUT; a
    /// connection that sent nothing is closed).
    #[arg(long, env = "EKYC_HEADER_TIMEOUT_S", default_value_t = ServerConfig::default().header_timeout_s)]
    pub header_timeout_s: f64,
    /// MiB for request bodies being received (each reserves twice its Content-Length); over it,
    /// uploads get 503 SERVER_BUSY.
    #[arg(long, env = "EKYC_BODY_MEMORY_MB", default_value_t = ServerConfig::default().body_memory_mb)]
    pub body_memory_mb: u64,
    /// Seconds a capture session may be verified after it was created.
    #[arg(long, env = "EKYC_SESSION_TTL_S", default_value_t = SessionConfig::default().ttl_s)]
    pub session_ttl_s: u64,
    /// Failed sessions (SPOOF or RETRY) per client (X-Device-Id, else source IP, else caller)
    /// within EKYC_SESSION_FAILURE_WINDOW_S before POST /v1/sessions answers 429.
    #[arg(long, env = "EKYC_SESSION_MAX_FAILURES", default_value_t = SessionConfig::default().max_failures)]
    pub session_max_failures: usize,
    /// The window of EKYC_SESSION_MAX_FAILURES, seconds.
    #[arg(long, env = "EKYC_SESSION_FAILURE_WINDOW_S", default_value_t = SessionConfig::default().failure_window_s)]
    pub session_failure_window_s: u64,
    /// TESTS ONLY: every session gets this challenge (comma-separated steps) instead of a random
    /// one. Never set in production: a known challenge can be pre-recorded.
    #[arg(long, env = "EKYC_SESSION_FIXED_STEPS", value_parser = parse_fixed_steps)]
    pub session_fixed_steps: Option<FixedSteps>,
    /// API keys required on /v1/* as `Authorization: Bearer <key>` (comma-separated; prefer
    /// `sha256:<hex digest of the key>` entries so the secret is not in the configuration).
    /// Empty = no authentication (behind API Gateway, its authorizer does it).
    #[arg(
        long,
        env = "EKYC_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_keys: Vec<String>,
}

/// S3 upload-trigger settings.
#[derive(Args, Clone, Debug)]
pub struct S3Args {
    /// Key prefix of uploaded images that the trigger processes.
    #[arg(long, env = "EKYC_UPLOADS_PREFIX", default_value = "uploads/")]
    pub uploads_prefix: String,
    /// Key prefix under which verdict JSON files are written (`<results>/<original key>.json`).
    #[arg(long, env = "EKYC_RESULTS_PREFIX", default_value = "results/")]
    pub results_prefix: String,
    /// HTTP API: bucket for uploads through S3 (`POST /v1/uploads` presigns a PUT under
    /// EKYC_UPLOADS_PREFIX, `GET /v1/results/{id}` reads EKYC_RESULTS_PREFIX). Unset = those routes
    /// answer 404 UPLOADS_DISABLED.
    #[arg(long, env = "EKYC_UPLOADS_BUCKET")]
    pub uploads_bucket: Option<String>,
    /// HTTP API: seconds a presigned upload URL stays valid (1 to 604800, SigV4's maximum).
    #[arg(long, env = "EKYC_UPLOAD_EXPIRES_S", default_value_t = ekyc_http::uploads::UploadConfig::default().expires_s,
          value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub upload_expires_s: u64,
    /// HTTP API: key prefix of capture sessions in EKYC_UPLOADS_BUCKET (when the bucket is set,
    /// sessions live there, shared by every instance; else in the process).
    #[arg(long, env = "EKYC_SESSIONS_PREFIX", default_value = "sessions/")]
    pub sessions_prefix: String,
}

/// Metric lines (CloudWatch embedded metric format) on stdout.
#[derive(Args, Clone, Debug)]
pub struct MetricsArgs {
    /// CloudWatch embedded-metric-format lines on stdout (one per verification, one per cold
    /// start): `auto` = only inside AWS Lambda (AWS_LAMBDA_FUNCTION_NAME set), `emf` = always,
    /// `off` = never.
    #[arg(long, env = "EKYC_METRICS", value_enum, default_value_t = MetricsMode::Auto)]
    pub metrics: MetricsMode,
}

/// When metric lines are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricsMode {
    Auto,
    Emf,
    Off,
}

/// The quality-gate limits: one flag (`--min-face-brightness`) and one variable
/// (`EKYC_MIN_FACE_BRIGHTNESS`) per row of the gate's table.
#[derive(Clone, Debug, Default)]
pub struct QualityArgs(pub QualityLimits);

impl Args for QualityArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        LIMITS.iter().fold(cmd, |cmd, d| {
            cmd.arg(
                Arg::new(d.key)
                    .long(d.key.replace('_', "-"))
                    .env(d.env)
                    .value_parser(clap::value_parser!(f32))
                    .default_value(d.default.to_string())
                    .help(d.doc),
            )
        })
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for QualityArgs {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut q = QualityLimits::default();
        for d in &LIMITS {
            if let Some(v) = m.get_one::<f32>(d.key) {
                q.set(d.limit, *v);
            }
        }
        Ok(QualityArgs(q))
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

#[derive(Parser)]
#[command(no_binary_name = true)]
struct EnvOnly {
    #[command(flatten)]
    settings: Settings,
}

impl Settings {
    /// Read the settings from the environment only (for binaries without flags).
    pub fn from_env() -> Result<Settings, clap::Error> {
        EnvOnly::try_parse_from(std::iter::empty::<String>()).map(|e| e.settings)
    }

    /// The core's configuration.
    pub fn pipeline(&self) -> PipelineConfig {
        let l = &self.limits;
        PipelineConfig {
            limits: Limits {
                max_image_bytes: l.max_image_bytes,
                max_image_side: l.max_image_side,
                max_image_pixels: l.max_image_pixels,
                decode_max_side: l.decode_max_side,
                max_decode_bytes: l.max_decode_mb << 20,
            },
            quality: self.quality.0.clone(),
            decision: Decision {
                liveness_threshold: self.decision.liveness_threshold,
                parallel_liveness: self.decision.parallel_liveness,
                parallel_stages: self.decision.parallel_stages,
                fusion: self.decision.fusion,
                retry_band: self.decision.retry_band,
                retry_max_spread: self.decision.retry_max_spread,
                calibration: self.decision.calibration,
            },
            matching: ekyc_core::face_match::MatchConfig {
                threshold: self.matching.match_threshold,
                min_document_eye_distance_px: self.matching.min_document_eye_distance_px,
                document_detectors: self.matching.document_detectors.clone(),
            },
        }
    }

    /// Which models are active.
    pub fn selection(&self) -> ModelSelection {
        ModelSelection {
            detectors: self.models.detectors.clone(),
            liveness: self.models.liveness_models.clone(),
            landmarks: self.models.landmark_models.clone(),
            embedding: self.models.embedding_model.clone(),
        }
    }

    /// Where the models are loaded from.
    pub fn location(&self) -> ModelLocation {
        ModelLocation {
            models_dir: self.models.models_dir.clone(),
            bucket: self.models.model_bucket.clone().filter(|b| !b.is_empty()),
            prefix: self.models.model_prefix.clone(),
        }
    }

    /// The HTTP adapter's configuration.
    pub fn server(&self) -> Result<ServerConfig, ekyc_http::auth::ApiKeyError> {
        let s = &self.server;
        Ok(ServerConfig {
            host: s.host.clone(),
            port: s.port,
            max_body_bytes: s.max_body_bytes,
            cors_origins: s.cors_origins.clone(),
            max_concurrency: s.max_concurrency,
            demo: s.demo,
            shutdown_grace_s: s.shutdown_grace_s,
            body_timeout_s: s.body_timeout_s,
            max_connections: s.max_connections,
            header_timeout_s: s.header_timeout_s,
            body_memory_mb: s.body_memory_mb,
            sessions: SessionConfig {
                ttl_s: s.session_ttl_s,
                max_failures: s.session_max_failures,
                failure_window_s: s.session_failure_window_s,
                max_bytes: s.max_body_bytes,
                fixed_steps: s.session_fixed_steps.clone().map(|f| f.0),
                rules: ekyc_core::session::SessionRules {
                    liveness_threshold: self.decision.liveness_threshold,
                    retry_band: self.decision.retry_band,
                    ..ekyc_core::session::SessionRules::default()
                },
                ..SessionConfig::default()
            },
            metrics: self.metrics("ekyc-api"),
            api_keys: ekyc_http::auth::ApiKeys::from_entries(&s.api_keys)?,
            memory_mb: s.memory_mb.or_else(|| {
                std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
                    .ok()
                    .and_then(|v| v.parse().ok())
            }),
        })
    }

    /// The S3 trigger's configuration.
    pub fn s3(&self) -> S3Config {
        S3Config {
            uploads_prefix: self.s3.uploads_prefix.clone(),
            results_prefix: self.s3.results_prefix.clone(),
            metrics: self.metrics("ekyc-s3"),
        }
    }

    /// The HTTP API's upload settings (the prefixes are the S3 trigger's).
    pub fn upload_config(&self) -> ekyc_http::uploads::UploadConfig {
        ekyc_http::uploads::UploadConfig {
            expires_s: self.s3.upload_expires_s,
            uploads_prefix: self.s3.uploads_prefix.clone(),
            results_prefix: self.s3.results_prefix.clone(),
        }
    }

    /// Uploads through S3 for the HTTP API, when EKYC_UPLOADS_BUCKET is set (S3 client from the
    /// environment's AWS configuration, as for the models).
    pub async fn uploads(&self) -> Option<ekyc_http::uploads::Uploads> {
        let bucket = self
            .s3
            .uploads_bucket
            .as_deref()
            .map(str::trim)
            .filter(|b| !b.is_empty())?;
        let store = ekyc_aws::uploads::S3Uploads::new(ekyc_aws::client().await, bucket);
        Some(ekyc_http::uploads::Uploads::new(
            std::sync::Arc::new(store),
            self.upload_config(),
        ))
    }

    /// Where capture sessions are kept: S3 under EKYC_SESSIONS_PREFIX when EKYC_UPLOADS_BUCKET
    /// is set (every instance shares them), else this process's memory.
    pub async fn session_store(&self) -> ekyc_http::sessions::SessionStore {
        let bucket = self
            .s3
            .uploads_bucket
            .as_deref()
            .map(str::trim)
            .filter(|b| !b.is_empty());
        match bucket {
            Some(b) => ekyc_http::sessions::SessionStore::Objects {
                backend: std::sync::Arc::new(ekyc_aws::sessions::S3Sessions::new(
                    ekyc_aws::client().await,
                    b,
                )),
                prefix: self.s3.sessions_prefix.clone(),
            },
            None => ekyc_http::sessions::SessionStore::default(),
        }
    }

    /// The metric lines' configuration: the `FunctionName` dimension is the Lambda function's
    /// name (AWS_LAMBDA_FUNCTION_NAME), else `binary`.
    pub fn metrics(&self, binary: &str) -> MetricsConfig {
        let lambda_function = std::env::var("AWS_LAMBDA_FUNCTION_NAME")
            .ok()
            .filter(|n| !n.is_empty());
        MetricsConfig {
            enabled: match self.metrics.metrics {
                MetricsMode::Auto => lambda_function.is_some(),
                MetricsMode::Emf => true,
                MetricsMode::Off => false,
            },
            function_name: lambda_function.unwrap_or_else(|| binary.to_string()),
            ..MetricsConfig::default()
        }
    }

    /// Load the pipeline these settings describe (S3 bucket, directory or embedded models).
    pub async fn load_pipeline(&self) -> Result<ekyc_core::Pipeline, ekyc_aws::LoadError> {
        ekyc_aws::load_pipeline(&self.location(), &self.selection(), self.pipeline()).await
    }

    /// Load the pipeline from the models directory (or embedded models), blocking.
    pub fn load_local_pipeline(&self) -> Result<ekyc_core::Pipeline, ekyc_core::ModelError> {
        let files = ekyc_models::source::dir_or_embedded(&self.models.models_dir)?;
        let registry = ekyc_core::Registry::load(files.as_ref(), &self.selection())?;
        Ok(ekyc_core::Pipeline::new(registry, self.pipeline()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_equal_the_crates_defaults() {
        let s = EnvOnly::try_parse_from(std::iter::empty::<String>())
            .map(|e| e.settings)
            .expect("defaults parse");
        // (Only meaningful without EKYC_* overrides in the environment; the test runner sets none.)
        if std::env::vars().any(|(k, _)| k.starts_with("EKYC_MIN") || k.starts_with("EKYC_MAX")) {
            return;
        }
        assert_eq!(s.pipeline().quality, QualityLimits::default());
        assert_eq!(s.pipeline().limits, Limits::default());
        if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_none()
            && std::env::var_os("EKYC_METRICS").is_none()
        {
            let mut server = s.server().expect("server");
            assert_eq!(server.metrics.function_name, "ekyc-api");
            server.metrics.function_name.clear();
            assert_eq!(server, ServerConfig::default());
        }
        assert_eq!(
            s.upload_config(),
            ekyc_http::uploads::UploadConfig::default()
        );
        if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_none()
            && std::env::var_os("EKYC_METRICS").is_none()
        {
            // Outside Lambda the metrics' function name is the binary's; the rest is the default.
            let mut s3 = s.s3();
            assert_eq!(s3.metrics.function_name, "ekyc-s3");
            s3.metrics.function_name.clear();
            assert_eq!(s3, S3Config::default());
        }
    }

    #[test]
    fn metrics_modes() {
        let parse = |mode: &str| {
            EnvOnly::try_parse_from(["--metrics", mode])
                .expect("flag parses")
                .settings
                .metrics("ekyc-s3")
        };
        assert!(parse("emf").enabled);
        assert!(!parse("off").enabled);
        let auto = parse("auto");
        assert_eq!(
            auto.enabled,
            std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some_and(|n| !n.is_empty())
        );
        assert!(!auto.function_name.is_empty());
        assert_eq!(auto.namespace, ekyc_core::metrics::NAMESPACE);
        assert!(EnvOnly::try_parse_from(["--metrics", "statsd"]).is_err());
    }

    #[test]
    fn every_quality_limit_is_a_flag() {
        let s = EnvOnly::try_parse_from(["--min-face-brightness", "12.5", "--max-yaw", "0.2"])
            .expect("flags parse")
            .settings;
        use ekyc_core::quality::Limit;
        assert_eq!(s.quality.0.get(Limit::MinFaceBrightness), 12.5);
        assert_eq!(s.quality.0.get(Limit::MaxYaw), 0.2);
        let help = {
            use clap::CommandFactory;
            EnvOnly::command().render_long_help().to_string()
        };
        for d in &LIMITS {
            let flag = format!("--{}", d.key.replace('_', "-"));
            assert!(help.contains(&flag), "{flag} missing from --help");
            assert!(help.contains(d.env), "{} missing from --help", d.env);
        }
    }
}
