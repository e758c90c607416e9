//! `ekyc serve` as a process: on SIGTERM it stops accepting, finishes the requests in flight, and
//! exits 0 within the grace period even while a client holds a half-sent request; a stalled upload
//! is answered 408 after the body timeout.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

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
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
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
