//! `ekyc bench-http`: the same HTTP client against any server with the prototype's contract
//! (`POST /v1/liveness`, multipart/form-data field `file`), so this service and the Python
//! prototype can be compared side by side: cold start, sequential and N-client latency,
//! throughput, server CPU per request and RSS from /proc.
//!
//! The benchmark (phases, process accounting, the report) is [`ekyc_eval::bench_http`]; this file
//! holds the flags, writes the JSON and sets the exit code.

use anyhow::{Context, Result};
use ekyc_eval::bench_http::{self, Options};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Base URL of a running server (default http://127.0.0.1:3000 when --server-cmd is not given).
    #[arg(long, conflicts_with = "server_cmd")]
    url: Option<String>,
    /// Shell command that starts the server (run with `sh -c` in its own process group, killed at
    /// the end). Prefix it with `exec` so the spawned PID is the server itself.
    #[arg(long, requires = "port")]
    server_cmd: Option<String>,
    /// Port the --server-cmd server listens on (the URL becomes http://127.0.0.1:PORT).
    #[arg(long)]
    port: Option<u16>,
    /// Server PID for CPU/memory accounting with --url (default: the process listening on the port).
    #[arg(long, conflicts_with = "server_cmd")]
    pid: Option<u32>,
    /// Images to send, round-robin (repeat the flag).
    #[arg(long = "image", required = true)]
    images: Vec<PathBuf>,
    /// Concurrent clients (threads, one keep-alive connection each) in the load phase.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Requests in the load phase.
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Requests in the single-client sequential phase (default: min(--requests, 500); 0 skips it).
    #[arg(long)]
    sequential_requests: Option<usize>,
    /// Unmeasured warm-up requests before the phases.
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// Send ?enable_checks=true|false (default: no query, the server's default).
    #[arg(long)]
    enable_checks: Option<bool>,
    /// Write every number as JSON to this file.
    #[arg(long)]
    json_out: Option<PathBuf>,
    /// Seconds to wait for the first successful answer of a --server-cmd server.
    #[arg(long, default_value_t = 120.0)]
    start_timeout: f64,
    /// File for the server's stdout/stderr (default: a temporary file, removed unless start fails).
    #[arg(long)]
    server_log: Option<PathBuf>,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let opts = Options {
        url: args.url,
        server_cmd: args.server_cmd,
        port: args.port,
        pid: args.pid,
        images: args.images,
        clients: args.clients,
        requests: args.requests,
        sequential_requests: args.sequential_requests,
        warmup: args.warmup,
        enable_checks: args.enable_checks,
        start_timeout: args.start_timeout,
        server_log: args.server_log,
        argv: std::env::args().collect(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let report = bench_http::run(&opts, &mut std::io::stdout().lock())?;
    if let Some(path) = &args.json_out {
        std::fs::write(path, serde_json::to_string_pretty(&report.json)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    if report.transport_errors > 0 {
        eprintln!(
            "error: {} request(s) failed at transport level",
            report.transport_errors
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
