//! The `ekyc` binary as a user runs it.

mod common;

use common::{face, repo, LIVE};
use std::process::Command;

fn ekyc(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ekyc"))
        .args(args)
        .current_dir(repo())
        .env_remove("EKYC_MODELS_DIR")
        .output()
        .expect("run ekyc")
}

fn path(rel: &str) -> String {
    face(rel).display().to_string()
}

#[test]
fn check_prints_json_lines_and_exit_code_means_all_live() {
    if !common::models_present() {
        return;
    }
    let out = ekyc(&["check", &path(LIVE), &path("live/minivision_image_T1.jpg")]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines
        .iter()
        .all(|l| l["status"] == "LIVE" && l["file"].is_string()));

    let out = ekyc(&[
        "check",
        &path(LIVE),
        &path("spoof/hyperfas_fake_screen.png"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().nth(1).is_some_and(|l| l.contains("\"SPOOF\"")),
        "{text}"
    );
}

#[test]
fn check_reports_bad_files_and_pretty_tables() {
    if !common::models_present() {
        return;
    }
    let junk = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(junk.path(), b"definitely not an image").expect("write");
    let out = ekyc(&["check", junk.path().to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["error"]["code"], "NOT_AN_IMAGE");

    let two_faces = common::two_faces_file().display().to_string();
    let out = ekyc(&["check", "--pretty", &two_faces]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("image"), "{text}");
    assert!(text.contains("MULTIPLE_FACES"), "{text}");

    let out = ekyc(&[
        "check",
        "--no-checks",
        "--liveness-threshold",
        "0.0",
        &two_faces,
    ]);
    assert_eq!(out.status.code(), Some(0), "threshold 0 and no gate: LIVE");
}

#[test]
fn models_list_and_verify() {
    if !common::models_present() {
        return;
    }
    let out = ekyc(&["models", "verify"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The default set: two detectors, the liveness model, the face mesh, the iris model and the
    // face embedding.
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 6);
    let out = ekyc(&["models", "list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("mnv3_seed_standin") && text.contains("Apache-2.0"),
        "{text}"
    );
}

/// Inputs are read with the server's byte limit; an unreadable file is an error line and the batch
/// goes on; a closed stdout ends the run quietly (no panic).
#[test]
fn check_survives_bad_inputs_and_a_closed_stdout() {
    if !common::models_present() {
        return;
    }
    let t = std::time::Instant::now();
    let out = ekyc(&["check", "/dev/zero", "/no/such/file.jpg", &path(LIVE)]);
    assert!(t.elapsed().as_secs() < 60, "bounded read");
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 3, "one line per input");
    assert_eq!(lines[0]["error"]["code"], "IMAGE_TOO_MANY_BYTES");
    assert_eq!(lines[1]["error"]["code"], "READ_FAILED");
    assert_eq!(lines[2]["status"], "LIVE");

    let mut child = Command::new(env!("CARGO_BIN_EXE_ekyc"))
        .args(["check", &path(LIVE), &path(LIVE), &path(LIVE)])
        .current_dir(repo())
        .env_remove("EKYC_MODELS_DIR")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(out.status.code(), Some(101), "{stderr}");
}
