//! The HTTP benchmark behind `ekyc bench-http`: the same client against any server with the
//! prototype's contract (`POST /v1/liveness`, multipart/form-data field `file`, optional
//! `?enable_checks=`, JSON answer), so this service and the Python prototype can be compared.
//!
//! Phases: start the server ([`Options::server_cmd`], cold start = spawn → first successful POST
//! answer, polled every 5 ms with a real multipart request) or use a running one
//! ([`Options::url`]); warm-up; a single-client sequential phase (latency without contention); an
//! N-client phase (throughput and latency under load). Server-side CPU comes from
//! `/proc/<pid>/stat` (utime + stime + cutime + cstime, summed over the server process and all its
//! descendants, so uvicorn workers count), memory from `/proc/<pid>/status` (VmRSS summed over the
//! same processes; VmHWM of the main process); see [`crate::procinfo`]. Latency percentiles are
//! [`crate::quantile`] (linear interpolation).
//!
//! Server PID: with a server command the command runs under `sh -c` in its own process group.
//! Write `exec` in front of it (`exec uvicorn app:app --port 8000`) so that the spawned PID is the
//! server; without `exec` the tool walks down from the shell to its only child. With a URL give
//! [`Options::pid`], or the tool looks up the process listening on the URL's port.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::procinfo::{self, tree_ticks};
use crate::quantile;

/// Per-request timeout (connect + send + answer).
const TIMEOUT: Duration = Duration::from_secs(30);
/// A phase stops early after this many transport-level errors (the server is gone or wedged).
const MAX_TRANSPORT_ERRORS: u64 = 10;
/// Cumulative request counts (all POSTs answered since the server became ready) at which the
/// server's RSS is sampled.
const RSS_MILESTONES: &[u64] = &[
    100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000,
];

/// What to benchmark and how (the `ekyc bench-http` flags).
#[derive(Debug, Clone)]
pub struct Options {
    /// Base URL of a running server (default http://127.0.0.1:3000 without `server_cmd`).
    pub url: Option<String>,
    /// Shell command that starts the server (`sh -c`, own process group, killed at the end).
    pub server_cmd: Option<String>,
    /// Port the `server_cmd` server listens on.
    pub port: Option<u16>,
    /// Server PID for CPU/memory accounting with `url` (default: the process listening on the port).
    pub pid: Option<u32>,
    /// Images to send, round-robin.
    pub images: Vec<PathBuf>,
    /// Concurrent clients in the load phase.
    pub clients: usize,
    /// Requests in the load phase.
    pub requests: usize,
    /// Requests in the sequential phase (default min(requests, 500); 0 skips it).
    pub sequential_requests: Option<usize>,
    /// Unmeasured warm-up requests.
    pub warmup: usize,
    /// Send `?enable_checks=true|false` (default: no query).
    pub enable_checks: Option<bool>,
    /// Seconds to wait for the first successful answer of a `server_cmd` server.
    pub start_timeout: f64,
    /// File for the server's stdout/stderr (default: a temporary file, removed unless start fails).
    pub server_log: Option<PathBuf>,
    /// The command line, for the report.
    pub argv: Vec<String>,
    /// Version of the tool, for the JSON report.
    pub tool_version: String,
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Usage(String),
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Spawn {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The server did not start, did not answer or failed during warm-up.
    #[error("{0}")]
    Server(String),
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
}

/// The result: every number as JSON (the `--json-out` document) and the transport errors.
#[derive(Debug)]
pub struct BenchReport {
    pub json: Value,
    pub transport_errors: usize,
}

/// One prepared multipart body.
struct Upload {
    path: String,
    bytes: usize,
    content_type: String,
    body: Vec<u8>,
}

fn multipart(path: &Path) -> Result<Upload, BenchError> {
    let data = std::fs::read(path).map_err(|source| BenchError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let mime = match ext.as_str() {
        "png" => "image/png",
        "webp" => "image/webp",
        _ => "image/jpeg",
    };
    let filename = path
        .file_name()
        .map(|n| n.to_string_lossy().replace(['"', '\r', '\n'], "_"))
        .unwrap_or_else(|| "image".into());
    let boundary = "----ekyc-bench-http-7d1c4b2a9e";
    let mut body = Vec::with_capacity(data.len() + 256);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: {mime}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(&data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Ok(Upload {
        path: path.display().to_string(),
        bytes: data.len(),
        content_type: format!("multipart/form-data; boundary={boundary}"),
        body,
    })
}

/// One request as the client saw it.
#[derive(Clone)]
struct Sample {
    ms: f64,
    /// HTTP status; 0 = transport-level error (no complete answer).
    http: u16,
    /// The answer's top-level `status` field, if it is JSON and has one.
    verdict: Option<String>,
    error: Option<String>,
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(TIMEOUT)
        .max_idle_connections_per_host(1)
        .build()
}

fn post(agent: &ureq::Agent, url: &str, up: &Upload) -> Sample {
    let t = Instant::now();
    let res = agent
        .post(url)
        .set("Content-Type", &up.content_type)
        .send_bytes(&up.body);
    // Read the whole body (returns the connection to the keep-alive pool) before stopping the clock.
    let (http, body) = match res {
        Ok(r) => (r.status(), r.into_string()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string()),
        Err(ureq::Error::Transport(e)) => {
            return Sample {
                ms: t.elapsed().as_secs_f64() * 1e3,
                http: 0,
                verdict: None,
                error: Some(e.to_string()),
            }
        }
    };
    let ms = t.elapsed().as_secs_f64() * 1e3;
    match body {
        Ok(text) => Sample {
            ms,
            http,
            verdict: serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("status").and_then(Value::as_str).map(str::to_string)),
            error: None,
        },
        Err(e) => Sample {
            ms,
            http: 0,
            verdict: None,
            error: Some(format!("reading the answer: {e}")),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Memory of the server process tree

#[derive(Clone, Copy)]
struct Mem {
    /// VmRSS summed over the process tree, MiB.
    rss_mib: f64,
    /// VmRSS of the main server process, MiB.
    main_rss_mib: f64,
    /// VmHWM (peak RSS) of the main server process, MiB.
    main_hwm_mib: f64,
    processes: usize,
}

fn memory(root: u32) -> Option<Mem> {
    let main = procinfo::memory(root)?;
    let tree = procinfo::process_tree(root);
    let rss: u64 = tree
        .iter()
        .filter_map(|&p| procinfo::memory(p).map(|m| m.rss_kib))
        .sum();
    Some(Mem {
        rss_mib: rss as f64 / 1024.0,
        main_rss_mib: main.rss_kib as f64 / 1024.0,
        main_hwm_mib: main.hwm_kib.unwrap_or(0) as f64 / 1024.0,
        processes: tree.len(),
    })
}

fn mem_json(m: Option<Mem>) -> Value {
    match m {
        Some(m) => json!({
            "rss_mib": round(m.rss_mib, 1),
            "main_rss_mib": round(m.main_rss_mib, 1),
            "main_hwm_mib": round(m.main_hwm_mib, 1),
            "processes": m.processes,
        }),
        None => Value::Null,
    }
}

// ---------------------------------------------------------------------------------------------
// The server under test

struct Server {
    child: Child,
    log: PathBuf,
    keep_log: bool,
}

impl Server {
    fn spawn(cmd: &str, log: &Path) -> Result<Server, BenchError> {
        let spawn_err = |context: String| move |source| BenchError::Spawn { context, source };
        let out = std::fs::File::create(log)
            .map_err(spawn_err(format!("creating server log {}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(spawn_err("duplicating the log handle".into()))?;
        let child = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(spawn_err(format!("starting `sh -c {cmd:?}`")))?;
        Ok(Server {
            child,
            log: log.to_path_buf(),
            keep_log: false,
        })
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// SIGTERM to the whole process group, then SIGKILL after 5 s.
    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let pgid = self.child.id();
        let signal = |sig: &str| {
            let _ = Command::new("sh")
                .arg("-c")
                .arg(format!("kill -{sig} -- -{pgid} 2>/dev/null"))
                .status();
        };
        signal("TERM");
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                signal("KILL"); // stragglers of the group (workers)
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        signal("KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        if !self.keep_log {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// The server process to account: the spawned PID, or (no `exec`) down through wrapper shells to
/// their only child.
fn server_root(spawned: u32) -> u32 {
    let mut pid = spawned;
    for _ in 0..4 {
        let Some(s) = procinfo::stat(pid) else { break };
        if !matches!(s.comm.as_str(), "sh" | "dash" | "bash" | "env") {
            break;
        }
        match procinfo::children(pid).as_slice() {
            [only] => pid = *only,
            _ => break,
        }
    }
    pid
}

/// The server the phases run against.
struct Target {
    /// Set when this tool started it (stopped at the end).
    server: Option<Server>,
    cold_start_ms: Option<f64>,
    spawned_pid: Option<u32>,
    /// The process whose tree is accounted.
    root: Option<u32>,
    pid_source: &'static str,
}

/// Spawns `cmd` and polls with real requests until the first successful answer (cold start).
fn start_server(
    opts: &Options,
    cmd: &str,
    endpoint: &str,
    first: &Upload,
    probe: &ureq::Agent,
    out: &mut dyn Write,
) -> Result<Target, BenchError> {
    let log = opts.server_log.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("ekyc-bench-http-{}.log", std::process::id()))
    });
    let t0 = Instant::now();
    let mut s = Server::spawn(cmd, &log)?;
    s.keep_log = opts.server_log.is_some();
    let spawned = s.child.id();
    let limit = Duration::from_secs_f64(opts.start_timeout.max(0.1));
    let answer = loop {
        let r = post(probe, endpoint, first);
        if (200..300).contains(&r.http) {
            break r;
        }
        if let Ok(Some(status)) = s.child.try_wait() {
            s.keep_log = true;
            return Err(BenchError::Server(format!(
                "the server exited ({status}) before answering; log {}:\n{}",
                s.log.display(),
                s.log_tail()
            )));
        }
        if t0.elapsed() > limit {
            s.keep_log = true;
            return Err(BenchError::Server(format!(
                "no successful answer within {:.0} s (last: HTTP {} {}); log {}:\n{}",
                limit.as_secs_f64(),
                r.http,
                r.error.unwrap_or_default(),
                s.log.display(),
                s.log_tail()
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    let root = server_root(spawned);
    let pid_source = if root == spawned {
        "spawned (sh -c exec)"
    } else {
        "child of the spawned shell"
    };
    writeln!(
        out,
        "server: `{cmd}` pid {root} ({pid_source}); cold start (spawn → first answer) {ms:.1} ms, first verdict {}",
        answer.verdict.as_deref().unwrap_or("-")
    )?;
    Ok(Target {
        server: Some(s),
        cold_start_ms: Some(ms),
        spawned_pid: Some(spawned),
        root: Some(root),
        pid_source,
    })
}

/// A server that is already running: one request to check it answers, then its PID.
fn attach_server(
    opts: &Options,
    base: &str,
    endpoint: &str,
    first: &Upload,
    probe: &ureq::Agent,
    out: &mut dyn Write,
) -> Result<Target, BenchError> {
    let r = post(probe, endpoint, first);
    if r.http == 0 {
        return Err(BenchError::Server(format!(
            "no answer from {endpoint}: {}",
            r.error.unwrap_or_default()
        )));
    }
    let (root, pid_source) = match opts.pid {
        Some(p) => (Some(p), "--pid"),
        None => (
            url_port(base).and_then(procinfo::listener_pid),
            "listening socket",
        ),
    };
    match root {
        Some(p) => writeln!(out, "server: {base}, pid {p} ({pid_source})")?,
        None => writeln!(
            out,
            "server: {base}, pid unknown (pass --pid): no server-side CPU/memory numbers"
        )?,
    }
    Ok(Target {
        server: None,
        cold_start_ms: None,
        spawned_pid: None,
        root,
        pid_source,
    })
}

// ---------------------------------------------------------------------------------------------
// Phases

/// Counts every POST answered since the server became ready and samples the server's RSS at
/// the milestones.
struct Served {
    n: AtomicU64,
    root: Option<u32>,
    samples: Mutex<Vec<(u64, Mem)>>,
}

impl Served {
    fn tick(&self) {
        let n = self.n.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(pid) = self.root {
            if RSS_MILESTONES.contains(&n) {
                if let (Some(m), Ok(mut v)) = (memory(pid), self.samples.lock()) {
                    v.push((n, m));
                }
            }
        }
    }
}

struct Phase {
    name: &'static str,
    clients: usize,
    wall_s: f64,
    samples: Vec<Sample>,
    cpu_ticks: Option<u64>,
    client_cpu_ticks: Option<u64>,
}

/// One measured phase: `clients` threads (one keep-alive connection each) share `requests`.
fn run_phase(
    name: &'static str,
    clients: usize,
    requests: usize,
    url: &str,
    uploads: &[Upload],
    served: &Served,
) -> Phase {
    let clients = clients.max(1);
    let next = AtomicUsize::new(0);
    let transport_errors = AtomicU64::new(0);
    let barrier = Barrier::new(clients + 1);
    let cpu0 = served.root.and_then(tree_ticks);
    let self0 = procinfo::stat(std::process::id()).map(|s| s.ticks);
    let mut wall = Instant::now();
    let mut samples = Vec::with_capacity(requests);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(|| {
                    let agent = agent();
                    let mut mine = Vec::new();
                    barrier.wait();
                    loop {
                        if transport_errors.load(Ordering::Relaxed) >= MAX_TRANSPORT_ERRORS {
                            break;
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= requests {
                            break;
                        }
                        let up = &uploads[i % uploads.len()];
                        let r = post(&agent, url, up);
                        if r.http == 0 {
                            transport_errors.fetch_add(1, Ordering::Relaxed);
                        } else {
                            served.tick();
                        }
                        mine.push(r);
                    }
                    mine
                })
            })
            .collect();
        barrier.wait();
        wall = Instant::now();
        for h in handles {
            if let Ok(v) = h.join() {
                samples.extend(v);
            }
        }
    });
    let wall_s = wall.elapsed().as_secs_f64();
    let cpu1 = served.root.and_then(tree_ticks);
    let self1 = procinfo::stat(std::process::id()).map(|s| s.ticks);
    Phase {
        name,
        clients,
        wall_s,
        samples,
        cpu_ticks: cpu0.zip(cpu1).map(|(a, b)| b.saturating_sub(a)),
        client_cpu_ticks: self0.zip(self1).map(|(a, b)| b.saturating_sub(a)),
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

fn num(x: f64, digits: i32) -> Value {
    if x.is_finite() {
        json!(round(x, digits))
    } else {
        Value::Null
    }
}

struct Summary {
    requests: usize,
    answered: usize,
    transport_errors: usize,
    non_2xx: usize,
    http: BTreeMap<String, usize>,
    verdicts: BTreeMap<String, usize>,
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
    mean: f64,
    rps: f64,
    cpu_ms_per_request: Option<f64>,
    client_cpu_ms_per_request: Option<f64>,
    first_errors: Vec<String>,
}

fn summarize(p: &Phase, tck: u64) -> Summary {
    let mut lat: Vec<f64> = p
        .samples
        .iter()
        .filter(|s| s.http != 0)
        .map(|s| s.ms)
        .collect();
    lat.sort_by(f64::total_cmp);
    let answered = lat.len();
    let mut http = BTreeMap::new();
    let mut verdicts = BTreeMap::new();
    for s in &p.samples {
        let key = if s.http == 0 {
            "transport_error".to_string()
        } else {
            s.http.to_string()
        };
        *http.entry(key).or_insert(0) += 1;
        if s.http != 0 {
            let v = s.verdict.clone().unwrap_or_else(|| "-".into());
            *verdicts.entry(v).or_insert(0) += 1;
        }
    }
    let per_req = |ticks: Option<u64>| {
        ticks
            .filter(|_| answered > 0)
            .map(|t| t as f64 * 1000.0 / tck as f64 / answered as f64)
    };
    let q = |p: f64| quantile(&lat, p).unwrap_or(f64::NAN);
    let mut first_errors: Vec<String> = p.samples.iter().filter_map(|s| s.error.clone()).collect();
    first_errors.dedup();
    first_errors.truncate(3);
    Summary {
        requests: p.samples.len(),
        answered,
        transport_errors: p.samples.len() - answered,
        non_2xx: p
            .samples
            .iter()
            .filter(|s| s.http != 0 && !(200..300).contains(&s.http))
            .count(),
        http,
        verdicts,
        p50: q(0.50),
        p95: q(0.95),
        p99: q(0.99),
        max: lat.last().copied().unwrap_or(f64::NAN),
        mean: if answered > 0 {
            lat.iter().sum::<f64>() / answered as f64
        } else {
            f64::NAN
        },
        rps: if p.wall_s > 0.0 {
            answered as f64 / p.wall_s
        } else {
            f64::NAN
        },
        cpu_ms_per_request: per_req(p.cpu_ticks),
        client_cpu_ms_per_request: per_req(p.client_cpu_ticks),
        first_errors,
    }
}

fn summary_json(p: &Phase, s: &Summary, tck: u64) -> Value {
    json!({
        "clients": p.clients,
        "requests": s.requests,
        "answered": s.answered,
        "transport_errors": s.transport_errors,
        "non_2xx": s.non_2xx,
        "http_status": s.http,
        "verdicts": s.verdicts,
        "wall_s": num(p.wall_s, 3),
        "throughput_rps": num(s.rps, 1),
        "latency_ms": {
            "p50": num(s.p50, 2), "p95": num(s.p95, 2), "p99": num(s.p99, 2),
            "max": num(s.max, 2), "mean": num(s.mean, 2),
        },
        "server_cpu_ticks": p.cpu_ticks,
        "server_cpu_ms": p.cpu_ticks.map(|t| t as f64 * 1000.0 / tck as f64),
        "cpu_ms_per_request": s.cpu_ms_per_request.map(|v| round(v, 2)),
        "client_cpu_ms_per_request": s.client_cpu_ms_per_request.map(|v| round(v, 2)),
        "first_errors": s.first_errors,
    })
}

// ---------------------------------------------------------------------------------------------
// Small helpers

/// UTC now as ISO 8601 / RFC 3339 with whole seconds, `2026-12-01T21:54:31Z`.
fn utc_now() -> String {
    use time::format_description::well_known::Rfc3339;
    let now = time::OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    now.format(&Rfc3339).unwrap_or_default()
}

fn url_port(url: &str) -> Option<u16> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next()?;
    match authority.rsplit_once(':') {
        Some((_, p)) if !p.ends_with(']') => p.parse().ok(),
        _ => Some(if url.starts_with("https") { 443 } else { 80 }),
    }
}

/// GET {base}/health as JSON, if the server has it.
fn health(base: &str) -> Option<Value> {
    let r = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(5))
        .build()
        .get(&format!("{base}/health"))
        .call()
        .ok()?;
    serde_json::from_str(&r.into_string().ok()?).ok()
}

/// `a` as one shell word (for printing the command line).
fn shell_quote(a: &str) -> String {
    let plain = !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
    if plain {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', "'\\''"))
    }
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.filter(|x| x.is_finite())
        .map(|x| format!("{x:.digits$}"))
        .unwrap_or_else(|| "-".into())
}

// ---------------------------------------------------------------------------------------------
// The run

/// What is known before the first request.
struct Setup {
    uploads: Vec<Upload>,
    base: String,
    endpoint: String,
    tck: u64,
    command: String,
    date: String,
    nproc: usize,
    cpu: String,
    load_start: String,
}

fn setup(opts: &Options) -> Result<Setup, BenchError> {
    if opts.clients == 0 || opts.requests == 0 {
        return Err(BenchError::Usage(
            "--clients and --requests must be at least 1".into(),
        ));
    }
    if opts.images.is_empty() {
        return Err(BenchError::Usage("give at least one --image".into()));
    }
    let uploads: Vec<Upload> = opts
        .images
        .iter()
        .map(|p| multipart(p))
        .collect::<Result<_, _>>()?;
    let base = match (&opts.url, opts.port) {
        (Some(u), _) => u.trim_end_matches('/').to_string(),
        (None, Some(p)) => format!("http://127.0.0.1:{p}"),
        (None, None) => "http://127.0.0.1:3000".to_string(),
    };
    let mut endpoint = format!("{base}/v1/liveness");
    if let Some(c) = opts.enable_checks {
        endpoint.push_str(&format!("?enable_checks={c}"));
    }
    Ok(Setup {
        uploads,
        base,
        endpoint,
        tck: procinfo::ticks_per_second(),
        command: opts
            .argv
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" "),
        date: utc_now(),
        nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu: procinfo::cpu_model(),
        load_start: procinfo::loadavg(),
    })
}

fn print_header(s: &Setup, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "ekyc bench-http  {}", s.date)?;
    writeln!(
        out,
        "machine: {} CPUs ({}), load average at start {}, CLK_TCK {}",
        s.nproc, s.cpu, s.load_start, s.tck
    )?;
    writeln!(out, "command: {}", s.command)?;
    writeln!(
        out,
        "endpoint: POST {}  (multipart/form-data, field `file`)",
        s.endpoint
    )?;
    for u in &s.uploads {
        writeln!(out, "image: {} ({} bytes)", u.path, u.bytes)?;
    }
    Ok(())
}

/// Optional: what the server says about itself (ours: models and hashes; the prototype may have
/// no /health, which is fine).
fn print_health(base: &str, out: &mut dyn Write) -> std::io::Result<Option<Value>> {
    let health = health(base);
    if let Some(models) = health
        .as_ref()
        .and_then(|h| h.get("models"))
        .and_then(Value::as_array)
    {
        let names: Vec<&str> = models
            .iter()
            .filter_map(|m| m.get("name").and_then(Value::as_str))
            .collect();
        writeln!(out, "server models (GET /health): {}", names.join(", "))?;
    }
    Ok(health)
}

/// Unmeasured requests; every one must get an answer.
fn warm_up(
    n: usize,
    probe: &ureq::Agent,
    s: &Setup,
    served: &Served,
) -> Result<BTreeMap<String, usize>, BenchError> {
    let mut warm_http: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..n {
        let r = post(probe, &s.endpoint, &s.uploads[i % s.uploads.len()]);
        if r.http == 0 {
            return Err(BenchError::Server(format!(
                "warm-up request failed: {}",
                r.error.unwrap_or_default()
            )));
        }
        served.tick();
        *warm_http.entry(r.http.to_string()).or_insert(0) += 1;
    }
    Ok(warm_http)
}

/// Memory of the server tree at the fixed points of the run.
struct MemPoints {
    ready: Option<Mem>,
    warm: Option<Mem>,
    end: Option<Mem>,
    /// At the [`RSS_MILESTONES`].
    samples: Vec<(u64, Mem)>,
    served_total: u64,
}

/// Everything measured, for the printed report and the JSON.
struct Measured {
    phases: Vec<Phase>,
    summaries: Vec<Summary>,
    seq_n: usize,
    warm_http: BTreeMap<String, usize>,
    mem: MemPoints,
    load_end: String,
    /// Server CPU per answered request over both measured phases.
    cpu_ms_per_request: Option<f64>,
    measured: usize,
}

fn print_report(
    opts: &Options,
    s: &Setup,
    t: &Target,
    m: &Measured,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    writeln!(out)?;
    writeln!(
        out,
        "{:<11} {:>7} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>11} {:>11}",
        "phase",
        "clients",
        "requests",
        "non-2xx",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "srv ms/req",
        "cli ms/req"
    )?;
    for (p, sm) in m.phases.iter().zip(&m.summaries) {
        writeln!(
            out,
            "{:<11} {:>7} {:>8} {:>8} {:>9.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>11} {:>11}",
            p.name,
            p.clients,
            sm.requests,
            sm.non_2xx,
            sm.rps,
            sm.p50,
            sm.p95,
            sm.p99,
            sm.max,
            fmt_opt(sm.cpu_ms_per_request, 2),
            fmt_opt(sm.client_cpu_ms_per_request, 2)
        )?;
    }
    writeln!(out, "(latency: client side, send → whole answer read; srv/cli ms/req: CPU time of the server process tree / of this client per answered request)")?;
    writeln!(out)?;
    if let Some(ms) = t.cold_start_ms {
        writeln!(
            out,
            "cold start (spawn → first successful answer): {ms:.1} ms"
        )?;
    }
    writeln!(
        out,
        "server CPU per request (sequential + load, {} requests): {} ms  [(Δutime+Δstime+Δcutime+Δcstime)/requests, CLK_TCK {}]",
        m.measured,
        fmt_opt(m.cpu_ms_per_request, 2),
        s.tck
    )?;
    let mut show = |label: &str, mem: Option<Mem>| -> std::io::Result<()> {
        if let Some(mem) = mem {
            writeln!(
                out,
                "RSS {label:<26} {:>7.1} MiB  (main process {:.1} MiB, VmHWM {:.1} MiB, {} process{})",
                mem.rss_mib,
                mem.main_rss_mib,
                mem.main_hwm_mib,
                mem.processes,
                if mem.processes == 1 { "" } else { "es" }
            )?;
        }
        Ok(())
    };
    show("when ready", m.mem.ready)?;
    show(&format!("after warm-up ({})", opts.warmup + 1), m.mem.warm)?;
    for (n, mem) in &m.mem.samples {
        show(&format!("after {n} requests"), Some(*mem))?;
    }
    show(&format!("at the end ({})", m.mem.served_total), m.mem.end)?;
    writeln!(out, "load average at the end: {}", m.load_end)?;
    for (p, sm) in m.phases.iter().zip(&m.summaries) {
        let v: Vec<String> = sm
            .verdicts
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let h: Vec<String> = sm.http.iter().map(|(k, n)| format!("{k}: {n}")).collect();
        writeln!(
            out,
            "{}: HTTP {}; verdicts {}",
            p.name,
            h.join(", "),
            v.join(", ")
        )?;
        for e in &sm.first_errors {
            writeln!(out, "  transport error: {e}")?;
        }
    }
    Ok(())
}

fn json_doc(
    opts: &Options,
    s: &Setup,
    t: &Target,
    m: &Measured,
    health: Option<Value>,
) -> (Value, usize) {
    let tck = s.tck;
    let transport_errors: usize = m.summaries.iter().map(|s| s.transport_errors).sum();
    let mut http_all: BTreeMap<String, usize> = BTreeMap::new();
    for sm in &m.summaries {
        for (k, n) in &sm.http {
            *http_all.entry(k.clone()).or_insert(0) += n;
        }
    }
    let phases_json: serde_json::Map<String, Value> = m
        .phases
        .iter()
        .zip(&m.summaries)
        .map(|(p, sm)| (p.name.to_string(), summary_json(p, sm, tck)))
        .collect();
    let load = m.summaries.last();
    let samples_json: Vec<Value> = m
        .mem
        .samples
        .iter()
        .map(|(n, mem)| {
            let mut v = mem_json(Some(*mem));
            if let Some(o) = v.as_object_mut() {
                o.insert("after_requests".into(), json!(n));
            }
            v
        })
        .collect();
    let rss_at_1000 = m
        .mem
        .samples
        .iter()
        .find(|(n, _)| *n == 1_000)
        .map(|(_, mem)| *mem);
    let doc = json!({
        "tool": "ekyc bench-http",
        "version": opts.tool_version,
        "date": s.date,
        "command": s.command,
        "argv": opts.argv,
        "machine": {
            "nproc": s.nproc,
            "cpu_model": s.cpu,
            "clk_tck": tck,
            "loadavg_start": s.load_start,
            "loadavg_end": m.load_end,
        },
        "server": {
            "url": s.base,
            "endpoint": s.endpoint,
            "server_cmd": opts.server_cmd,
            "spawned_pid": t.spawned_pid,
            "pid": t.root,
            "pid_source": t.pid_source,
            "processes": m.mem.end.map(|m| m.processes),
        },
        "health": health,
        "images": s.uploads.iter().map(|u| json!({"path": u.path, "bytes": u.bytes})).collect::<Vec<_>>(),
        "enable_checks": opts.enable_checks,
        "clients": opts.clients,
        "requests": load.map(|s| s.requests),
        "sequential_requests": m.seq_n,
        "warmup": opts.warmup,
        "warmup_http_status": m.warm_http,
        "cold_start_ms": t.cold_start_ms.map(|v| round(v, 2)),
        "cpu_ms_per_request": m.cpu_ms_per_request.map(|v| round(v, 3)),
        "throughput_rps": load.map(|s| num(s.rps, 1)),
        "latency_ms": load.map(|s| json!({"p50": num(s.p50, 2), "p95": num(s.p95, 2), "p99": num(s.p99, 2)})),
        "http_status": http_all,
        "transport_errors": transport_errors,
        "phases": phases_json,
        "memory": {
            "when_ready": mem_json(m.mem.ready),
            "after_warmup": mem_json(m.mem.warm),
            "after_1000": mem_json(rss_at_1000),
            "end": mem_json(m.mem.end),
            "samples": samples_json,
            "requests_served": m.mem.served_total,
        },
    });
    (doc, transport_errors)
}

/// Runs the benchmark, printing progress and the report to `out`; returns every number as JSON.
pub fn run(opts: &Options, out: &mut dyn Write) -> Result<BenchReport, BenchError> {
    let s = setup(opts)?;
    print_header(&s, out)?;

    let probe = agent();
    let mut target = match &opts.server_cmd {
        Some(cmd) => start_server(opts, cmd, &s.endpoint, &s.uploads[0], &probe, out)?,
        None => attach_server(opts, &s.base, &s.endpoint, &s.uploads[0], &probe, out)?,
    };
    let health = print_health(&s.base, out)?;
    let root = target.root;
    let served = Served {
        n: AtomicU64::new(1),
        root,
        samples: Mutex::new(Vec::new()),
    };
    let mem_ready = root.and_then(memory);
    if let Some(m) = mem_ready.filter(|m| m.processes > 1) {
        writeln!(
            out,
            "server process tree: {} processes (CPU and VmRSS summed over all of them)",
            m.processes
        )?;
    }

    let warm_http = warm_up(opts.warmup, &probe, &s, &served)?;
    let mem_warm = root.and_then(memory);
    drop(probe);

    let seq_n = opts.sequential_requests.unwrap_or(opts.requests.min(500));
    let mut phases = Vec::new();
    if seq_n > 0 {
        phases.push(run_phase(
            "sequential",
            1,
            seq_n,
            &s.endpoint,
            &s.uploads,
            &served,
        ));
    }
    phases.push(run_phase(
        "load",
        opts.clients,
        opts.requests,
        &s.endpoint,
        &s.uploads,
        &served,
    ));
    let mem_end = root.and_then(memory);
    let served_total = served.n.load(Ordering::Relaxed);
    let load_end = procinfo::loadavg();
    if let Some(server) = target.server.as_mut() {
        server.stop();
    }

    let summaries: Vec<Summary> = phases.iter().map(|p| summarize(p, s.tck)).collect();
    let measured: usize = summaries.iter().map(|s| s.answered).sum();
    let ticks: Option<u64> = phases.iter().map(|p| p.cpu_ticks).sum();
    let m = Measured {
        cpu_ms_per_request: ticks
            .filter(|_| measured > 0)
            .map(|t| t as f64 * 1000.0 / s.tck as f64 / measured as f64),
        measured,
        phases,
        summaries,
        seq_n,
        warm_http,
        mem: MemPoints {
            ready: mem_ready,
            warm: mem_warm,
            end: mem_end,
            samples: served.samples.lock().map(|v| v.clone()).unwrap_or_default(),
            served_total,
        },
        load_end,
    };
    print_report(opts, &s, &target, &m, out)?;
    let (json, transport_errors) = json_doc(opts, &s, &target, &m, health);
    Ok(BenchReport {
        json,
        transport_errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_is_rfc3339_whole_seconds() {
        let d = utc_now();
        assert_eq!(d.len(), 20, "{d}");
        assert!(d.ends_with('Z') && d.as_bytes()[10] == b'T', "{d}");
    }

    #[test]
    fn ports_and_quoting() {
        assert_eq!(url_port("http://127.0.0.1:8000/x"), Some(8000));
        assert_eq!(url_port("http://example.com"), Some(80));
        assert_eq!(url_port("https://example.com/"), Some(443));
        assert_eq!(shell_quote("--port=8000"), "--port=8000");
        assert_eq!(shell_quote("exec a b"), "'exec a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
