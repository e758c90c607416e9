//! S3 adapter: models from S3 at cold start, `models push`, and the upload trigger.
//!
//! Credentials, region and endpoint come from the standard AWS chain (aws-config): inside Lambda the
//! function's role; locally `AWS_*` variables (`AWS_ENDPOINT_URL` points at a local S3 server).

pub mod models;
pub mod trigger;

use crate::config::Config;
use crate::error::{Error, ModelError};
use crate::pipeline::Pipeline;
use aws_sdk_s3::error::SdkError;
use std::time::Duration;

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

/// Load the pipeline: from S3 when `EKYC_MODEL_BUCKET` is set (into memory, verified), else from the
/// models directory (or the models embedded at build time). Logs which source was used.
/// A failure is logged as one line naming the model and where it was looked for.
pub async fn load_pipeline(config: Config) -> Result<Pipeline, Error> {
    let client = match &config.models.model_bucket {
        Some(b) if !b.is_empty() => Some(client().await),
        _ => None,
    };
    let loaded = load_pipeline_with(config, client.as_ref()).await;
    if let Err(e) = &loaded {
        tracing::error!(error = %e, code = e.code(), "model loading failed");
    }
    loaded
}

/// [`load_pipeline`] with a given S3 client (used when a bucket is configured).
pub async fn load_pipeline_with(
    config: Config,
    client: Option<&aws_sdk_s3::Client>,
) -> Result<Pipeline, Error> {
    let started = std::time::Instant::now();
    let pipeline = match (config.models.model_bucket.clone(), client) {
        (Some(bucket), Some(client)) if !bucket.is_empty() => {
            let registry = models::load_registry(client, &bucket, &config).await?;
            Pipeline { registry, config }
        }
        _ => tokio::task::spawn_blocking(move || Pipeline::load(config))
            .await
            .map_err(|e| Error::Config(format!("model loading task failed: {e}")))??,
    };
    tracing::info!(
        model_source = %pipeline.registry.source,
        models = ?pipeline.registry.models.iter().map(|m| format!("{}@{}", m.name, &m.sha256[..12.min(m.sha256.len())])).collect::<Vec<_>>(),
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

fn fetch_err(name: &str, message: String) -> Error {
    Error::Model(ModelError::Fetch {
        name: name.to_string(),
        message,
    })
}
