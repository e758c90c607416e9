//! `ekyc serve` as a process: on SIGTERM it stops accepting, finishes the requests in flight, and
//! exits 0 within the grace period even while a client holds a half-sent request; a stalled upload
//! is answered 408 after the body timeout.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// These tests time servers and measure their memory: one at a time, so that one test's load
/// (four decompression bombs, a hundred stalled uploads) does not stall another's server past
/// its timeouts on a 2-core machine.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn serve(port: u16, grace_s: &str) -> Child {
    serve_with(port, &["--shutdown-grace-s", grace_s])
}

fn serve_with(port: u16, extra: &[&str]) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_ekyc"))
        .args(["serve", "--port", &port.to_string()])
        .args(extra)
        .current_dir(common::repo())
        .env_remove("EKYC_MODELS_DIR")
        .env("EKYC_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start ekyc serve");
    // Ready = answering, not just bound: connections made while the models load queue in the
    // backlog and are accepted in a burst, which would blur the connection-cap test. Then a
    // moment for the probes' own connections to end (and free their slots).
    let t = Instant::now();
    loop {
        let up = TcpStream::connect(("127.0.0.1", port)).is_ok()
            && exchange_within(
                port,
                b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
                Duration::from_secs(5),
            )
            .starts_with("HTTP/1.1 200");
        if up {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    child
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -TERM");
}

/// Wait for the child to exit, at most `limit`; returns its exit code and how long it took.
fn wait_exit(child: &mut Child, limit: Duration) -> (Option<i32>, Duration) {
    let t = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return (status.code(), t.elapsed());
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            panic!("server still running {limit:?} after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_finishes_requests_in_flight_and_exits_zero() {
    let _serial = serial();
    if !common::models_present() {
        return;
    }
    let port = free_port();
    let mut child = serve(port, "10");
    let image = common::read(common::LIVE);
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let head = format!(
        "POST /v1/liveness HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        image.len()
    );
    s.write_all(head.as_bytes()).expect("head");
    s.write_all(&image).expect("body");
    // Let the server accept the connection (a connection still in the listen backlog is not in
    // flight), then stop it while the request is being handled.
    std::thread::sleep(Duration::from_millis(300));
    sigterm(&child);
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "in-flight request answered: {answer:.200}"
    );
    assert!(answer.contains("\"status\":\"LIVE\""), "{answer:.300}");
    let (code, _) = wait_exit(&mut child, Duration::from_secs(15));
    assert_eq!(code, Some(0));
    // Nothing is accepted any more.
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn a_stalled_client_cannot_hold_shutdown_past_the_grace_period() {
    let _serial = serial();
    if !common::models_present() {
        return;
    }
    let port = free_port();
    let mut child = serve(port, "1.5");
    // A request head that never ends, and a body that never comes.
    let mut stalled = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stalled
        .write_all(
            b"POST /v1/liveness HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\npartial",
        )
        .expect("write");
    let mut half = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    half.write_all(b"POST /v1/liv").expect("write");
    std::thread::sleep(Duration::from_millis(200));
    sigterm(&child);
    let (code, took) = wait_exit(&mut child, Duration::from_secs(15));
    assert_eq!(code, Some(0));
    assert!(
        took < Duration::from_secs(6),
        "exited after {took:?} (grace 1.5 s)"
    );
    drop((stalled, half));
}

#[test]
fn a_stalled_upload_gets_408_json_after_the_body_timeout() {
    let _serial = serial();
    if !common::models_present() {
        return;
    }
    let port = free_port();
    let mut child = serve_with(port, &["--body-timeout-s", "1"]);
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(b"POST /v1/liveness HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n0123456789")
        .expect("write");
    let t = Instant::now();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).expect("an answer, not a hang");
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"BODY_TIMEOUT\""), "{answer}");
    sigterm(&child);
    let (code, _) = wait_exit(&mut child, Duration::from_secs(15));
    assert_eq!(code, Some(0));
}

/// Send `bytes` on a new connection and read the answer until the server closes (at most 10 s).
fn exchange(port: u16, bytes: &[u8]) -> String {
    exchange_within(port, bytes, Duration::from_secs(10))
}

fn exchange_within(port: u16, bytes: &[u8], limit: Duration) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(limit)).expect("timeout");
    let _ = s.write_all(bytes);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status line's code and the JSON body's error code.
fn status_and_code(answer: &str) -> (u16, String) {
    let status = answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let v: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("a JSON body ({e}): {answer:.400}"));
    (
        status,
        v["error"]["code"].as_str().unwrap_or("").to_string(),
    )
}

fn stop(mut child: Child) {
    sigterm(&child);
    let (code, _) = wait_exit(&mut child, Duration::from_secs(15));
    assert_eq!(code, Some(0));
}

/// What the HTTP layer refuses below the router is answered with the documented JSON too.
#[test]
fn errors_below_the_router_are_json() {
    let _serial = serial();
    if !common::models_present() {
        return;
    }
    let port = free_port();
    let child = serve_with(port, &[]);
    let long_uri = format!(
        "GET /health?q={} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(60_000)
    );
    let big_header = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(20_000)
    );
    let many: String = (0..100).map(|i| format!("X-{i}: v\r\n")).collect();
    let many = format!("GET /health HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"POST /v1/liveness HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n".to_vec(), 400, "BAD_CONTENT_LENGTH"),
        (b"POST /v1/liveness HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n".to_vec(), 400, "BAD_CONTENT_LENGTH"),
        (b"POST /v1/liveness HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(), 400, "BAD_CONTENT_LENGTH"),
        (b"GET /health HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n".to_vec(), 400, "BAD_REQUEST"),
        (long_uri.into_bytes(), 414, "URI_TOO_LONG"),
        (big_header.into_bytes(), 431, "HEADERS_TOO_LARGE"),
        (many.into_bytes(), 431, "HEADERS_TOO_LARGE"),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(), 505, "HTTP_VERSION_NOT_SUPPORTED"),
        // A body shorter than its Content-Length is the client's fault, not a too-large body.
        (b"POST /v1/liveness HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 1000\r\n\r\nshort".to_vec(), 400, "INCOMPLETE_BODY"),
    ];
    for (request, status, code) in cases {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let _ = s.write_all(&request);
        if code == "INCOMPLETE_BODY" {
            let _ = s.shutdown(std::net::Shutdown::Write);
        }
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        assert_eq!(
            status_and_code(&answer),
            (status, code.to_string()),
            "{answer:.300}"
        );
        assert!(
            answer.contains("content-type: application/json"),
            "{answer:.300}"
        );
        assert!(
            !answer.contains("aaaaaaaaaa") && !answer.contains("bbbbbbbbbb"),
            "no echo"
        );
    }
    // The server still serves.
    let ok = exchange(port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok:.200}");
    assert!(
        ok.to_ascii_lowercase().contains("connection: close"),
        "{ok:.300}"
    );
    stop(child);
}

/// Idle connections and half-sent heads are closed after the header timeout (408 JSON for a
/// started head), and open connections are capped.
#[test]
fn idle_and_half_sent_connections_are_closed_and_capped() {
    let _serial = serial();
    if !common::models_present() {
        return;
    }
    let port = free_port();
    let child = serve_with(
        port,
        // 6 s: long enough that the 40 stay open while the 41st is tried on a loaded machine.
        &["--header-timeout-s", "6", "--max-connections", "40"],
    );
    let t = Instant::now();
    let mut idle = Vec::new();
    let mut half = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(("127.0.0.1", port)).expect("connect"));
        let mut h = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        h.write_all(b"POST /v1/liveness HTTP/1.1\r\nHost: x\r\nContent-Le")
            .expect("write");
        half.push(h);
    }
    // 40 open: the next connection is refused with 503 JSON at once.
    std::thread::sleep(Duration::from_millis(200));
    let over = exchange(port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        status_and_code(&over),
        (503, "TOO_MANY_CONNECTIONS".into()),
        "{:?} after the first connection: {over:.300}",
        t.elapsed()
    );
    assert!(over.contains("retry-after: 1"), "{over:.300}");
    for mut s in half {
        s.set_read_timeout(Some(Duration::from_secs(12)))
            .expect("timeout");
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        assert_eq!(
            status_and_code(&answer),
            (408, "HEADER_TIMEOUT".into()),
            "{answer:.300}"
        );
    }
    for mut s in idle {
        s.set_read_timeout(Some(Duration::from_secs(12)))
            .expect("timeout");
        let mut answer = Vec::new();
        let n = s
            .read_to_end(&mut answer)
            .expect("closed by the server, not a read timeout");
        assert_eq!(n, 0, "an idle connection is closed without an answer");
    }
    assert!(t.elapsed() < Duration::from_secs(14), "{:?}", t.elapsed());
    // Their slots are free again.
    let ok = exchange(port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok:.200}");
    stop(child);
}

/// (VmRSS, VmHWM) of a process, in MiB.
fn rss_mib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Uploads that stall just before their end hold at most the body budget, are answered 408 after
/// the body timeout (the rest 503 at once), and their memory is returned when they end.
#[test]
fn stalled_uploads_hold_at_most_the_body_budget_and_release_it() {
    let _serial = serial();
    if !common::models_present() || !std::path::Path::new("/proc/self/status").exists() {
        return;
    }
    let port = free_port();
    let child = serve_with(
        port,
        &[
            "--body-timeout-s",
            "2",
            "--body-memory-mb",
            "64",
            "--max-concurrency",
            "1",
        ],
    );
    let _ = exchange(port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    let (base, _) = rss_mib(child.id());
    const CLIENTS: usize = 20;
    const LENGTH: usize = 6_000_000;
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                s.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
                let head = format!("POST /v1/liveness HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: {LENGTH}\r\n\r\n");
                let _ = s.write_all(head.as_bytes());
                let _ = s.write_all(&vec![0xAB; LENGTH - 100_000]);
                let mut answer = Vec::new();
                let _ = s.read_to_end(&mut answer);
                String::from_utf8_lossy(&answer).into_owned()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let (during, _) = rss_mib(child.id());
    let answers: Vec<String> = threads
        .into_iter()
        .map(|t| t.join().expect("client"))
        .collect();
    let codes: Vec<(u16, String)> = answers.iter().map(|a| status_and_code(a)).collect();
    let timeouts = codes
        .iter()
        .filter(|c| **c == (408, "BODY_TIMEOUT".to_string()))
        .count();
    let busy = codes
        .iter()
        .filter(|c| **c == (503, "SERVER_BUSY".to_string()))
        .count();
    // 64 MiB / (2 × 6 MB) = 5 uploads in the budget.
    assert_eq!((timeouts, busy), (5, CLIENTS - 5), "{codes:?}");
    std::thread::sleep(Duration::from_millis(500));
    let (after, peak) = rss_mib(child.id());
    eprintln!("stalled uploads: RSS base {base} MiB, during {during} MiB, after {after} MiB, peak {peak} MiB");
    assert!(
        peak <= base + 64 + 32,
        "peak {peak} MiB over base {base} + body budget 64 MiB + 32"
    );
    assert!(
        after <= base + 16,
        "after {after} MiB, base {base} MiB: memory not returned"
    );
    stop(child);
}

/// Four decompression bombs at once (each a few KB, 49-50 megapixels): the process's peak RSS stays
/// under the stated worst case and, with the row-by-row PNG path, far under it.
#[test]
fn four_concurrent_bombs_stay_under_the_memory_bound() {
    let _serial = serial();
    if !common::models_present() || !std::path::Path::new("/proc/self/status").exists() {
        return;
    }
    let port = free_port();
    let child = serve_with(port, &["--max-concurrency", "4"]);
    let _ = exchange(port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    let (base, _) = rss_mib(child.id());
    let bombs = common::bombs();
    let mut threads = Vec::new();
    for (name, bytes) in bombs {
        for _ in 0..4 {
            let bytes = bytes.clone();
            threads.push(std::thread::spawn(move || {
                let kind = if name.ends_with("webp") { "webp" } else { "png" };
                let head = format!(
                    "POST /v1/liveness HTTP/1.1\r\nHost: x\r\nContent-Type: image/{kind}\r\nContent-Length: {}\r\n\r\n",
                    bytes.len()
                );
                let mut req = head.into_bytes();
                req.extend_from_slice(&bytes);
                let t = Instant::now();
                let answer = exchange_within(port, &req, Duration::from_secs(120));
                (name, answer, t.elapsed())
            }));
        }
    }
    for t in threads {
        let (name, answer, took) = t.join().expect("client");
        eprintln!("{name}: {:.12} in {took:?}", answer);
        let status: u16 = answer.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
        // Decoded (200), refused from the header (413), or its empty image data found out (422).
        assert!(matches!(status, 200 | 413 | 422), "{name}: {answer:.300}");
    }
    let (_, peak) = rss_mib(child.id());
    // The stated worst case (README "Memory"): 160 MiB reserve + 128 MiB bodies + 4 × 256 MiB.
    let bound = 160 + 128 + 4 * 256;
    eprintln!("4 concurrent bombs: RSS base {base} MiB, peak {peak} MiB (bound {bound} MiB)");
    assert!(peak < bound, "peak {peak} MiB");
    assert!(peak < base + 200, "peak {peak} MiB, base {base} MiB");
    stop(child);
}
