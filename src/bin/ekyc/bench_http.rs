//! `ekyc bench-http`: the same HTTP client against any server with the prototype's contract
//! (`POST /v1/liveness`, multipart/form-data field `file`, optional `?enable_checks=`, JSON answer),
//! so this service and the Python prototype can be compared side by side.
//!
//! Phases: start the server (`--server-cmd`, cold start = spawn → first successful POST answer,
//! polled every 5 ms with a real multipart request) or use a running one (`--url`); warm-up; a
//! single-client sequential phase (latency without contention); an N-client phase (throughput and
//! latency under load). Server-side CPU comes from `/proc/<pid>/stat` (utime + stime + cutime +
//! cstime, summed over the server process and all its descendants, so uvicorn workers count), memory
//! from `/proc/<pid>/status` (VmRSS summed over the same processes; VmHWM of the main process).
//!
//! Server PID: with `--server-cmd` the command runs under `sh -c` in its own process group. Write
//! `exec` in front of it (`--server-cmd "exec uvicorn app:app --port 8000"`) so that the spawned PID
//! is the server; without `exec` the tool walks down from the shell to its only child. With `--url`
//! give `--pid`, or the tool looks up the process listening on the URL's port (/proc/net/tcp*).

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Per-request timeout (connect + send + answer).
const TIMEOUT: Duration = Duration::from_secs(30);
/// A phase stops early after this many transport-level errors (the server is gone or wedged).
const MAX_TRANSPORT_ERRORS: u64 = 10;
/// Cumulative request counts (all POSTs answered since the server became ready) at which the
/// server's RSS is sampled.
const RSS_MILESTONES: &[u64] = &[
    100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000,
];

#[derive(clap::Args, Debug)]
pub struct Args {
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

/// One prepared multipart body.
struct Upload {
    path: String,
    bytes: usize,
    content_type: String,
    body: Vec<u8>,
}

fn multipart(path: &Path) -> Result<Upload> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
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
// /proc accounting

struct ProcStat {
    comm: String,
    ppid: u32,
    /// utime + stime + cutime + cstime, clock ticks (all threads; reaped children).
    ticks: u64,
}

fn proc_stat(pid: u32) -> Option<ProcStat> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let comm = s.get(open + 1..close)?.to_string();
    let f: Vec<&str> = s.get(close + 1..)?.split_whitespace().collect();
    // f[0] = state (field 3), f[1] = ppid (4), f[11..15] = utime stime cutime cstime (14..17).
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    Some(ProcStat {
        comm,
        ppid: num(1)? as u32,
        ticks: num(11)? + num(12)? + num(13)? + num(14)?,
    })
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
                .collect()
        })
        .unwrap_or_default()
}

fn children(pid: u32) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|&p| proc_stat(p).is_some_and(|s| s.ppid == pid))
        .collect()
}

/// `root` and all its descendants (by ppid), root first.
fn process_tree(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = all_pids()
        .into_iter()
        .filter_map(|p| proc_stat(p).map(|s| (p, s.ppid)))
        .collect();
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        for &(p, pp) in &parents {
            if pp == parent && !tree.contains(&p) {
                tree.push(p);
            }
        }
        i += 1;
    }
    tree
}

fn tree_ticks(root: u32) -> Option<u64> {
    proc_stat(root)?;
    Some(
        process_tree(root)
            .into_iter()
            .filter_map(|p| proc_stat(p).map(|s| s.ticks))
            .sum(),
    )
}

fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

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
    let main_rss = status_kib(root, "VmRSS:")?;
    let main_hwm = status_kib(root, "VmHWM:").unwrap_or(0);
    let tree = process_tree(root);
    let rss: u64 = tree.iter().filter_map(|&p| status_kib(p, "VmRSS:")).sum();
    Some(Mem {
        rss_mib: rss as f64 / 1024.0,
        main_rss_mib: main_rss as f64 / 1024.0,
        main_hwm_mib: main_hwm as f64 / 1024.0,
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

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux if that fails).
fn clk_tck() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// The process(es) listening on a local TCP port: the root of them (uvicorn master, not workers).
fn listener_pid(port: u16) -> Option<u32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(inode)) = (f.get(1), f.get(3), f.get(9)) else {
                continue;
            };
            let p = local
                .rsplit(':')
                .next()
                .and_then(|h| u16::from_str_radix(h, 16).ok());
            if p == Some(port) && *state == "0A" {
                inodes.push(format!("socket:[{inode}]"));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    let owners: Vec<u32> = all_pids()
        .into_iter()
        .filter(|pid| {
            std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|d| {
                    d.filter_map(|e| e.ok()).any(|e| {
                        std::fs::read_link(e.path())
                            .is_ok_and(|l| inodes.iter().any(|i| l.as_os_str() == i.as_str()))
                    })
                })
                .unwrap_or(false)
        })
        .collect();
    owners
        .iter()
        .copied()
        .find(|&p| proc_stat(p).is_some_and(|s| !owners.contains(&s.ppid)))
}

// ---------------------------------------------------------------------------------------------
// The server under test

struct Server {
    child: Child,
    log: PathBuf,
    keep_log: bool,
}

impl Server {
    fn spawn(cmd: &str, log: &Path) -> Result<Server> {
        let out = std::fs::File::create(log)
            .with_context(|| format!("creating server log {}", log.display()))?;
        let err = out.try_clone()?;
        let child = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting `sh -c {cmd:?}`"))?;
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
        let Some(s) = proc_stat(pid) else { break };
        if !matches!(s.comm.as_str(), "sh" | "dash" | "bash" | "env") {
            break;
        }
        match children(pid).as_slice() {
            [only] => pid = *only,
            _ => break,
        }
    }
    pid
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
    let self0 = proc_stat(std::process::id()).map(|s| s.ticks);
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
    let self1 = proc_stat(std::process::id()).map(|s| s.ticks);
    Phase {
        name,
        clients,
        wall_s,
        samples,
        cpu_ticks: cpu0.zip(cpu1).map(|(a, b)| b.saturating_sub(a)),
        client_cpu_ticks: self0.zip(self1).map(|(a, b)| b.saturating_sub(a)),
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // Nearest rank.
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
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
        p50: pct(&lat, 0.50),
        p95: pct(&lat, 0.95),
        p99: pct(&lat, 0.99),
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
// Machine, date

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// UTC now as ISO 8601 (civil-from-days, no date crate).
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, sod) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
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

pub fn run(args: Args) -> Result<ExitCode> {
    if args.clients == 0 || args.requests == 0 {
        bail!("--clients and --requests must be at least 1");
    }
    let uploads: Vec<Upload> = args
        .images
        .iter()
        .map(|p| multipart(p))
        .collect::<Result<_>>()?;
    let base = match (&args.url, args.port) {
        (Some(u), _) => u.trim_end_matches('/').to_string(),
        (None, Some(p)) => format!("http://127.0.0.1:{p}"),
        (None, None) => "http://127.0.0.1:3000".to_string(),
    };
    let mut endpoint = format!("{base}/v1/liveness");
    if let Some(c) = args.enable_checks {
        endpoint.push_str(&format!("?enable_checks={c}"));
    }
    let tck = clk_tck();
    let argv: Vec<String> = std::env::args().collect();
    let command = argv
        .iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ");
    let date = utc_now();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = cpu_model();
    let load_start = loadavg();
    println!("ekyc bench-http  {date}");
    println!("machine: {nproc} CPUs ({cpu}), load average at start {load_start}, CLK_TCK {tck}");
    println!("command: {command}");
    println!("endpoint: POST {endpoint}  (multipart/form-data, field `file`)");
    for u in &uploads {
        println!("image: {} ({} bytes)", u.path, u.bytes);
    }

    // --- server: spawn + cold start, or an existing one
    let mut server = None;
    let mut cold_start_ms = None;
    let mut spawned_pid = None;
    let pid_source;
    let root: Option<u32>;
    let probe = agent();
    if let Some(cmd) = &args.server_cmd {
        let log = args.server_log.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("ekyc-bench-http-{}.log", std::process::id()))
        });
        let t0 = Instant::now();
        let mut s = Server::spawn(cmd, &log)?;
        s.keep_log = args.server_log.is_some();
        spawned_pid = Some(s.child.id());
        let limit = Duration::from_secs_f64(args.start_timeout.max(0.1));
        let first = loop {
            let r = post(&probe, &endpoint, &uploads[0]);
            if (200..300).contains(&r.http) {
                break r;
            }
            if let Ok(Some(status)) = s.child.try_wait() {
                s.keep_log = true;
                bail!(
                    "the server exited ({status}) before answering; log {}:\n{}",
                    s.log.display(),
                    s.log_tail()
                );
            }
            if t0.elapsed() > limit {
                s.keep_log = true;
                bail!(
                    "no successful answer within {:.0} s (last: HTTP {} {}); log {}:\n{}",
                    limit.as_secs_f64(),
                    r.http,
                    r.error.unwrap_or_default(),
                    s.log.display(),
                    s.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        cold_start_ms = Some(ms);
        let r = server_root(s.child.id());
        pid_source = if r == s.child.id() {
            "spawned (sh -c exec)"
        } else {
            "child of the spawned shell"
        };
        root = Some(r);
        println!(
            "server: `{cmd}` pid {r} ({pid_source}); cold start (spawn → first answer) {ms:.1} ms, first verdict {}",
            first.verdict.as_deref().unwrap_or("-")
        );
        server = Some(s);
    } else {
        let r = post(&probe, &endpoint, &uploads[0]);
        if r.http == 0 {
            bail!("no answer from {endpoint}: {}", r.error.unwrap_or_default());
        }
        root = match args.pid {
            Some(p) => {
                pid_source = "--pid";
                Some(p)
            }
            None => {
                pid_source = "listening socket";
                url_port(&base).and_then(listener_pid)
            }
        };
        match root {
            Some(p) => println!("server: {base}, pid {p} ({pid_source})"),
            None => println!(
                "server: {base}, pid unknown (pass --pid): no server-side CPU/memory numbers"
            ),
        }
    }
    // Optional: what the server says about itself (ours: models and hashes; the prototype may have
    // no /health, which is fine).
    let health = health(&base);
    if let Some(models) = health
        .as_ref()
        .and_then(|h| h.get("models"))
        .and_then(Value::as_array)
    {
        let names: Vec<&str> = models
            .iter()
            .filter_map(|m| m.get("name").and_then(Value::as_str))
            .collect();
        println!("server models (GET /health): {}", names.join(", "));
    }
    let served = Served {
        n: AtomicU64::new(1),
        root,
        samples: Mutex::new(Vec::new()),
    };
    let mem_ready = root.and_then(memory);
    if let Some(m) = mem_ready {
        if m.processes > 1 {
            println!(
                "server process tree: {} processes (CPU and VmRSS summed over all of them)",
                m.processes
            );
        }
    }

    // --- warm-up
    let mut warm_http: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..args.warmup {
        let r = post(&probe, &endpoint, &uploads[i % uploads.len()]);
        if r.http == 0 {
            bail!("warm-up request failed: {}", r.error.unwrap_or_default());
        }
        served.tick();
        *warm_http.entry(r.http.to_string()).or_insert(0) += 1;
    }
    let mem_warm = root.and_then(memory);
    drop(probe);

    // --- phases
    let seq_n = args.sequential_requests.unwrap_or(args.requests.min(500));
    let mut phases = Vec::new();
    if seq_n > 0 {
        phases.push(run_phase(
            "sequential",
            1,
            seq_n,
            &endpoint,
            &uploads,
            &served,
        ));
    }
    phases.push(run_phase(
        "load",
        args.clients,
        args.requests,
        &endpoint,
        &uploads,
        &served,
    ));
    let mem_end = root.and_then(memory);
    let served_total = served.n.load(Ordering::Relaxed);
    let load_end = loadavg();
    if let Some(s) = server.as_mut() {
        s.stop();
    }
    let summaries: Vec<Summary> = phases.iter().map(|p| summarize(p, tck)).collect();

    // --- overall server CPU per request (both measured phases)
    let measured: usize = summaries.iter().map(|s| s.answered).sum();
    let ticks: Option<u64> = phases.iter().map(|p| p.cpu_ticks).sum();
    let cpu_ms_per_request = ticks
        .filter(|_| measured > 0)
        .map(|t| t as f64 * 1000.0 / tck as f64 / measured as f64);
    let rss_samples: Vec<(u64, Mem)> = served.samples.lock().map(|v| v.clone()).unwrap_or_default();
    let rss_at_1000 = rss_samples
        .iter()
        .find(|(n, _)| *n == 1_000)
        .map(|(_, m)| *m);

    // --- table
    println!();
    println!(
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
    );
    for (p, s) in phases.iter().zip(&summaries) {
        println!(
            "{:<11} {:>7} {:>8} {:>8} {:>9.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>11} {:>11}",
            p.name,
            p.clients,
            s.requests,
            s.non_2xx,
            s.rps,
            s.p50,
            s.p95,
            s.p99,
            s.max,
            fmt_opt(s.cpu_ms_per_request, 2),
            fmt_opt(s.client_cpu_ms_per_request, 2)
        );
    }
    println!("(latency: client side, send → whole answer read; srv/cli ms/req: CPU time of the server process tree / of this client per answered request)");
    println!();
    if let Some(ms) = cold_start_ms {
        println!("cold start (spawn → first successful answer): {ms:.1} ms");
    }
    println!(
        "server CPU per request (sequential + load, {} requests): {} ms  [(Δutime+Δstime+Δcutime+Δcstime)/requests, CLK_TCK {tck}]",
        measured,
        fmt_opt(cpu_ms_per_request, 2)
    );
    let show = |label: &str, m: Option<Mem>| {
        if let Some(m) = m {
            println!(
                "RSS {label:<26} {:>7.1} MiB  (main process {:.1} MiB, VmHWM {:.1} MiB, {} process{})",
                m.rss_mib,
                m.main_rss_mib,
                m.main_hwm_mib,
                m.processes,
                if m.processes == 1 { "" } else { "es" }
            );
        }
    };
    show("when ready", mem_ready);
    show(&format!("after warm-up ({})", args.warmup + 1), mem_warm);
    for (n, m) in &rss_samples {
        show(&format!("after {n} requests"), Some(*m));
    }
    show(&format!("at the end ({served_total})"), mem_end);
    println!("load average at the end: {load_end}");
    for (p, s) in phases.iter().zip(&summaries) {
        let v: Vec<String> = s.verdicts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let h: Vec<String> = s.http.iter().map(|(k, n)| format!("{k}: {n}")).collect();
        println!(
            "{}: HTTP {}; verdicts {}",
            p.name,
            h.join(", "),
            v.join(", ")
        );
        for e in &s.first_errors {
            println!("  transport error: {e}");
        }
    }

    // --- JSON
    let transport_errors: usize = summaries.iter().map(|s| s.transport_errors).sum();
    let mut http_all: BTreeMap<String, usize> = BTreeMap::new();
    for s in &summaries {
        for (k, n) in &s.http {
            *http_all.entry(k.clone()).or_insert(0) += n;
        }
    }
    if let Some(path) = &args.json_out {
        let phases_json: serde_json::Map<String, Value> = phases
            .iter()
            .zip(&summaries)
            .map(|(p, s)| (p.name.to_string(), summary_json(p, s, tck)))
            .collect();
        let load = summaries.last();
        let samples_json: Vec<Value> = rss_samples
            .iter()
            .map(|(n, m)| {
                let mut v = mem_json(Some(*m));
                if let Some(o) = v.as_object_mut() {
                    o.insert("after_requests".into(), json!(n));
                }
                v
            })
            .collect();
        let doc = json!({
            "tool": "ekyc bench-http",
            "version": env!("CARGO_PKG_VERSION"),
            "date": date,
            "command": command,
            "argv": argv,
            "machine": {
                "nproc": nproc,
                "cpu_model": cpu,
                "clk_tck": tck,
                "loadavg_start": load_start,
                "loadavg_end": load_end,
            },
            "server": {
                "url": base,
                "endpoint": endpoint,
                "server_cmd": args.server_cmd,
                "spawned_pid": spawned_pid,
                "pid": root,
                "pid_source": pid_source,
                "processes": mem_end.map(|m| m.processes),
            },
            "health": health,
            "images": uploads.iter().map(|u| json!({"path": u.path, "bytes": u.bytes})).collect::<Vec<_>>(),
            "enable_checks": args.enable_checks,
            "clients": args.clients,
            "requests": load.map(|s| s.requests),
            "sequential_requests": seq_n,
            "warmup": args.warmup,
            "warmup_http_status": warm_http,
            "cold_start_ms": cold_start_ms.map(|v| round(v, 2)),
            "cpu_ms_per_request": cpu_ms_per_request.map(|v| round(v, 3)),
            "throughput_rps": load.map(|s| num(s.rps, 1)),
            "latency_ms": load.map(|s| json!({"p50": num(s.p50, 2), "p95": num(s.p95, 2), "p99": num(s.p99, 2)})),
            "http_status": http_all,
            "transport_errors": transport_errors,
            "phases": phases_json,
            "memory": {
                "when_ready": mem_json(mem_ready),
                "after_warmup": mem_json(mem_warm),
                "after_1000": mem_json(rss_at_1000),
                "end": mem_json(mem_end),
                "samples": samples_json,
                "requests_served": served_total,
            },
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }

    if transport_errors > 0 {
        eprintln!("error: {transport_errors} request(s) failed at transport level");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
