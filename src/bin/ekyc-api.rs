//! The HTTP API binary: inside AWS Lambda (AWS_LAMBDA_RUNTIME_API set) it serves API Gateway events
//! through lambda_http; anywhere else it listens on EKYC_HOST:EKYC_PORT (default 127.0.0.1:3000).
//! Configuration comes from the environment only (see README "Configuration").

use ekyc_liveness::{logging, Settings};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    logging::tune_allocator();
    logging::init();
    let settings = Settings::from_env()?;
    // Models load before serving: a Lambda init error (never a half-loaded function) if anything is
    // wrong, with one log line naming the model and where it was looked for.
    let pipeline = settings.load_pipeline().await?;
    ekyc_http::serve(ekyc_http::AppState::new(pipeline, settings.server()?)?).await
}
