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

/// Long-running servers: cap glibc's malloc arenas at 2. By default glibc gives busy threads their
/// own arenas (up to 8 per core), which under concurrent requests grows the resident set without
/// making anything faster; docs/performance.md has the measurements (and why a fixed mmap
/// threshold is not set).
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // The project's one `unsafe` (the workspace denies it everywhere else).
    #[allow(unsafe_code)]
    // SAFETY: mallopt only sets an allocator parameter; called once at start-up before other threads.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
