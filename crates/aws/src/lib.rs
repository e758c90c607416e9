//! AWS adapter: models from S3 at cold start ([`models::S3Files`]), `models push`, the S3 upload
//! trigger ([`trigger`]), presigned uploads for the HTTP API ([`uploads::S3Uploads`]) and the
//! pipeline loader every binary uses ([`load_pipeline`]).
//!
//! Credentials, region and endpoint come from the standard AWS chain (aws-config): inside Lambda the
//! function's role; locally `AWS_*` variables (`AWS_ENDPOINT_URL` points at a local S3 server).

pub mod models;
pub mod sessions;
pub mod trigger;
pub mod uploads;

use aws_sdk_s3::error::SdkError;
use ekyc_core::{ModelSelection, Pipeline, PipelineConfig, Registry};
use ekyc_models::{source, ModelError};
use std::path::PathBuf;
use std::time::Duration;

/// S3 upload-trigger settings.
#[derive(Debug, Clone, PartialEq)]
pub struct S3Config {
    /// Key prefix of uploaded images that the trigger processes.
    pub uploads_prefix: String,
    /// Key prefix under which verdict JSON files are written (`<results>/<original key>.json`).
    pub results_prefix: String,
    /// One CloudWatch EMF line per record on stdout when enabled (inside Lambda by default).
    pub metrics: ekyc_core::metrics::MetricsConfig,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            uploads_prefix: "uploads/".into(),
            results_prefix: "results/".into(),
            metrics: ekyc_core::metrics::MetricsConfig::default(),
        }
    }
}

/// Where the models come from: an S3 bucket when one is set, else a directory (or the models
/// embedded in the binary when that directory has no manifest).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelLocation {
    /// Directory holding manifest.toml and the provisioned model files.
    pub models_dir: PathBuf,
    /// S3 bucket holding manifest.toml and the models (loaded into memory at start-up).
    pub bucket: Option<String>,
    /// Key prefix of the models in `bucket` (e.g. "models/").
    pub prefix: String,
}

impl Default for ModelLocation {
    fn default() -> Self {
        ModelLocation {
            models_dir: PathBuf::from("models"),
            bucket: None,
            prefix: String::new(),
        }
    }
}

/// Why the pipeline could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("the model loading task failed")]
    Task(#[from] tokio::task::JoinError),
}

impl LoadError {
    pub fn code(&self) -> &'static str {
        match self {
            LoadError::Model(e) => e.code(),
            LoadError::Task(_) => "MODEL_PANICKED",
        }
    }
}

/// An S3 client from the environment's AWS configuration, with bounded timeouts. Path-style
/// addressing is used when a custom endpoint (a local server) is configured.
pub async fn client() -> aws_sdk_s3::Client {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(20))
        .operation_timeout(Duration::from_secs(45))
        .build();
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timeouts)
        .load()
        .await;
    let custom_endpoint = shared.endpoint_url().is_some();
    let conf = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(custom_endpoint)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Load the pipeline: from S3 when `location.bucket` is set (into memory, verified), else from the
/// models directory (or the models embedded at build time). Logs which source was used, or one line
/// naming the model and where it was looked for.
pub async fn load_pipeline(
    location: &ModelLocation,
    selection: &ModelSelection,
    config: PipelineConfig,
) -> Result<Pipeline, LoadError> {
    let client = match &location.bucket {
        Some(b) if !b.is_empty() => Some(client().await),
        _ => None,
    };
    let loaded = load_pipeline_with(location, selection, config, client.as_ref()).await;
    if let Err(e) = &loaded {
        tracing::error!(error = %ekyc_core::error::chain(e), code = e.code(), "model loading failed");
    }
    loaded
}

/// [`load_pipeline`] with a given S3 client (used when a bucket is configured).
pub async fn load_pipeline_with(
    location: &ModelLocation,
    selection: &ModelSelection,
    config: PipelineConfig,
    client: Option<&aws_sdk_s3::Client>,
) -> Result<Pipeline, LoadError> {
    let started = std::time::Instant::now();
    let registry = match (location.bucket.as_deref(), client) {
        (Some(bucket), Some(client)) if !bucket.is_empty() => {
            let files =
                models::S3Files::download(client, bucket, &location.prefix, selection).await?;
            let selection = selection.clone();
            tokio::task::spawn_blocking(move || Registry::load(&files, &selection)).await??
        }
        _ => {
            let (dir, selection) = (location.models_dir.clone(), selection.clone());
            tokio::task::spawn_blocking(move || {
                let files = source::dir_or_embedded(dir)?;
                Registry::load(files.as_ref(), &selection)
            })
            .await??
        }
    };
    let pipeline = Pipeline::new(registry, config);
    tracing::info!(
        model_source = %pipeline.origin(),
        models = ?pipeline.models().iter().map(|m| format!("{}@{}", m.name, &m.sha256[..12.min(m.sha256.len())])).collect::<Vec<_>>(),
        load_ms = started.elapsed().as_secs_f64() * 1e3,
        "models loaded"
    );
    Ok(pipeline)
}

/// `prefix` with exactly one trailing slash (or empty).
pub fn normalize_prefix(prefix: &str) -> String {
    let p = prefix.trim_matches('/');
    if p.is_empty() {
        String::new()
    } else {
        format!("{p}/")
    }
}

/// HTTP status of a failed S3 call, when the service answered.
pub fn http_status<E>(e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// A readable description of an S3 error (service code and message, or the transport problem).
pub fn describe<E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error>(
    e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> String {
    match e {
        SdkError::ServiceError(s) => {
            let err = s.err();
            let status = s.raw().status().as_u16();
            match (err.code(), err.message()) {
                (Some(c), Some(m)) => format!("HTTP {status} {c}: {m}"),
                (Some(c), None) => format!("HTTP {status} {c}"),
                _ => format!("HTTP {status}"),
            }
        }
        SdkError::TimeoutError(_) => "timed out".into(),
        SdkError::DispatchFailure(d) => format!("could not reach S3: {d:?}"),
        other => other.to_string(),
    }
}

fn fetch_err(name: &str, message: String) -> ModelError {
    ModelError::Fetch {
        name: name.to_string(),
        message,
    }
}
