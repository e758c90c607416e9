//! `ekyc bench-http` against our own server, started by the tool (`--server-cmd`).

mod common;

use common::{face, repo};
use std::process::Command;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[test]
fn bench_http_measures_our_server() {
    if !common::models_present() {
        return;
    }
    let exe = env!("CARGO_BIN_EXE_ekyc");
    let port = free_port();
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("bench.json");
    let server_cmd = format!("exec '{exe}' serve --port {port}");
    let run = Command::new(exe)
        .current_dir(repo())
        .env_remove("EKYC_MODELS_DIR")
        .env_remove("EKYC_LIVENESS_MODELS")
        .env_remove("EKYC_PORT")
        .args([
            "bench-http",
            "--server-cmd",
            &server_cmd,
            "--port",
            &port.to_string(),
            "--image",
            &face("live/minivision_image_T1.jpg").display().to_string(),
            "--image",
            &face(common::LIVE).display().to_string(),
            "--requests",
            "20",
            "--clients",
            "2",
            "--warmup",
            "2",
            "--json-out",
            &out.display().to_string(),
        ])
        .output()
        .expect("run ekyc bench-http");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = std::fs::read_to_string(&out).expect("json written");
    let j: serde_json::Value = serde_json::from_str(&text).expect("valid json");

    assert_eq!(j["requests"], 20, "{text}");
    assert_eq!(j["clients"], 2);
    assert_eq!(j["phases"]["load"]["requests"], 20);
    assert_eq!(j["phases"]["load"]["clients"], 2);
    assert_eq!(j["phases"]["sequential"]["requests"], 20);
    assert_eq!(j["transport_errors"], 0);
    // Every answer of both phases is a 200 with a verdict (both images are LIVE).
    assert_eq!(j["http_status"], serde_json::json!({"200": 40}), "{text}");
    assert_eq!(
        j["phases"]["load"]["verdicts"],
        serde_json::json!({"LIVE": 20})
    );

    let cold = j["cold_start_ms"].as_f64().expect("cold start");
    assert!(cold > 0.0 && cold < 120_000.0, "cold start {cold}");
    let cpu = j["cpu_ms_per_request"].as_f64().expect("cpu per request");
    assert!(cpu > 0.0 && cpu < 10_000.0, "cpu {cpu}");
    let rps = j["throughput_rps"].as_f64().expect("throughput");
    assert!(rps > 0.0);
    let p50 = j["latency_ms"]["p50"].as_f64().expect("p50");
    let p99 = j["latency_ms"]["p99"].as_f64().expect("p99");
    assert!(p50 > 0.0 && p50 <= p99, "p50 {p50} p99 {p99}");

    let pid = j["server"]["pid"].as_u64().expect("server pid");
    assert_eq!(
        j["server"]["spawned_pid"].as_u64(),
        Some(pid),
        "exec: same pid"
    );
    let rss = j["memory"]["end"]["rss_mib"].as_f64().expect("rss");
    assert!(rss > 1.0 && rss < 4096.0, "rss {rss}");
    assert!(j["machine"]["nproc"].as_u64().is_some_and(|n| n >= 1));

    // The server was stopped at the end.
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z ")),
        "server {pid} still running"
    );
}
