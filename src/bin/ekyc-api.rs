//! The HTTP API binary: inside AWS Lambda (AWS_LAMBDA_RUNTIME_API set) it serves API Gateway events
//! through lambda_http; anywhere else it listens on EKYC_HOST:EKYC_PORT (default 127.0.0.1:3000).
//! Configuration comes from the environment only (see README "Configuration").

use ekyc_core::metrics::{Init, ModelSource};
use ekyc_liveness::{logging, Settings};
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let started = Instant::now();
    logging::tune_allocator();
    logging::init();
    let settings = Settings::from_env()?;
    // Models load before serving: a Lambda init error (never a half-loaded function) if anything is
    // wrong, with one log line naming the model and where it was looked for.
    let loaded = settings.load_pipeline().await;
    // Inside Lambda (or EKYC_METRICS=emf): one CloudWatch EMF line for the cold start.
    let init_ms = started.elapsed().as_secs_f64() * 1e3;
    let init = match &loaded {
        Ok(p) => Init::loaded(ModelSource::from_origin(p.origin()), init_ms),
        Err(e) => Init::failed(e.code(), init_ms),
    };
    if let Some(line) = settings.metrics("ekyc-api").line(init) {
        println!("{line}");
    }
    let pipeline = loaded?;
    // With EKYC_UPLOADS_BUCKET: POST /v1/uploads and GET /v1/results/{id} (README "Uploading through S3").
    let uploads = settings.uploads().await;
    let sessions = settings.session_store().await;
    let state =
        ekyc_http::AppState::new_with_stores(pipeline, settings.server()?, uploads, sessions)?;
    ekyc_http::serve(state).await
}
