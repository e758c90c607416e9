//! Structured JSON logs (tracing). Filter with EKYC_LOG (default "info"). Image bytes, face crops and
//! embeddings are never logged.

/// Install the JSON subscriber on stderr (idempotent).
pub fn init() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("EKYC_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .json()
        .with_current_span(false)
        .try_init();
}
