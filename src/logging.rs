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

/// Long-running servers: tune glibc malloc (measured with `ekyc bench-http`, 4 clients, 1,000
/// requests, docs/performance.md):
/// - at most 2 arenas: by default glibc gives busy threads their own arenas (up to 8 per core),
///   which grows the resident set by tens of MiB without making anything faster;
/// - a fixed 1 MiB mmap threshold: decoded images and other buffers above it go straight to mmap
///   and back to the system when freed, instead of glibc's sliding threshold parking them in the
///   heap (RSS after 1,000 requests 81 → 66 MiB for +0.5 ms CPU per request; 256 KiB cost +5.5 ms
///   of page faults per request, as tract's activations then also go to mmap).
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called once at start-up before other threads.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
