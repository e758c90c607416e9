//! `ekyc eval`, `ekyc calibrate` and `ekyc calibrate-quality` end to end on the shared testdata.

mod common;

use common::{face, faces, images_in, repo};
use std::path::Path;
use std::process::{Command, Output};

fn ekyc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ekyc"))
        .args(args)
        .current_dir(repo())
        .env_remove("EKYC_MODELS_DIR")
        .env_remove("EKYC_LIVENESS_THRESHOLD")
        .output()
        .expect("run ekyc")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn dir(rel: &str) -> String {
    face(rel).display().to_string()
}

fn decode_png(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (img.width(), img.height())
}

#[test]
fn eval_writes_every_output() {
    if !common::models_present() {
        return;
    }
    let n_live = images_in("live").len();
    let n_spoof = images_in("spoof").len();
    assert!(
        n_live > 0 && n_spoof > 0,
        "testdata at {}",
        faces().display()
    );
    let out_dir = tempfile::tempdir().expect("tempdir");
    let out = out_dir.path().display().to_string();
    let stdout = ok(&ekyc(&[
        "eval",
        "--live",
        &dir("live"),
        "--spoof",
        &dir("spoof"),
        "--out",
        &out,
    ]));

    for f in [
        "report.json",
        "report.md",
        "det.png",
        "det.svg",
        "hist.png",
        "hist.svg",
        "scores.csv",
    ] {
        let p = out_dir.path().join(f);
        let len = std::fs::metadata(&p)
            .unwrap_or_else(|e| panic!("{f}: {e}"))
            .len();
        assert!(len > 0, "{f} is empty");
    }
    assert_eq!(decode_png(&out_dir.path().join("det.png")), (900, 860));
    assert_eq!(decode_png(&out_dir.path().join("hist.png")), (1000, 620));

    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.path().join("report.json")).expect("report.json"),
    )
    .expect("report.json is JSON");
    assert_eq!(json["images"]["bona_fide"], n_live);
    assert_eq!(json["images"]["attack"], n_spoof);
    assert_eq!(json["images"]["errors"], 0);
    // No sub-folders and no --attack-types: every attack is "unknown".
    assert_eq!(json["images"]["attack_per_type"]["unknown"], n_spoof);
    for section in ["gate_on", "gate_off"] {
        let counts = &json[section]["report"]["counts"];
        assert_eq!(counts["bona_fide"]["total"], n_live, "{section}");
        assert_eq!(counts["attacks"]["unknown"]["total"], n_spoof, "{section}");
        assert!(json[section]["report"]["bpcer"]["value"].is_number());
    }
    assert_eq!(json["threshold"], 0.5);
    assert_eq!(json["gate_policy"], "count-as-rejected");
    let models = json["models"].as_array().expect("models");
    assert!(models
        .iter()
        .all(|m| m["sha256"].as_str().is_some_and(|s| s.len() == 64)));

    let csv = std::fs::read_to_string(out_dir.path().join("scores.csv")).expect("scores.csv");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("path,class,attack_type,gate_on_status,gate_on_score,gate_on_reasons,gate_on_decision,gate_off_status,gate_off_score,gate_off_decision,error")
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), n_live + n_spoof, "{csv}");
    assert_eq!(
        rows.iter().filter(|r| r.contains(",bona_fide,")).count(),
        n_live
    );
    assert!(rows.iter().all(|r| !r.contains("ERROR")), "{csv}");

    let md = std::fs::read_to_string(out_dir.path().join("report.md")).expect("report.md");
    for needle in [
        "# Liveness evaluation (ISO/IEC 30107-3)",
        "Gate policy: **count-as-rejected**",
        "## Gate off: full report",
        "| **BPCER** |",
        "## Per image",
    ] {
        assert!(md.contains(needle), "{needle:?} missing from report.md");
    }
    assert!(stdout.starts_with("# Liveness evaluation"), "{stdout}");
    assert!(stdout.contains("| **APCER** (max over attack types) |"));
}

#[test]
fn eval_types_attacks_by_folder_and_lists_bad_files() {
    if !common::models_present() {
        return;
    }
    let spoof = tempfile::tempdir().expect("tempdir");
    let spoofs = images_in("spoof");
    let (a, b) = (&spoofs[0], &spoofs[1]);
    for (sub, rel) in [("print", a), ("replay", b)] {
        let d = spoof.path().join(sub);
        std::fs::create_dir_all(&d).expect("mkdir");
        let name = Path::new(rel).file_name().expect("name");
        std::fs::copy(face(rel), d.join(name)).expect("copy");
    }
    std::fs::write(spoof.path().join("junk.jpg"), b"not an image at all").expect("write");
    std::fs::write(spoof.path().join("NOTES.md"), b"# notes").expect("write");
    let out_dir = tempfile::tempdir().expect("tempdir");
    let stdout = ok(&ekyc(&[
        "eval",
        "--live",
        &dir("live"),
        "--spoof",
        &spoof.path().display().to_string(),
        "--out",
        &out_dir.path().display().to_string(),
        "--gate-policy",
        "exclude",
    ]));
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.path().join("report.json")).expect("report.json"),
    )
    .expect("json");
    assert_eq!(json["gate_policy"], "exclude");
    assert_eq!(json["images"]["attack"], 3);
    assert_eq!(json["images"]["attack_per_type"]["print"], 1);
    assert_eq!(json["images"]["attack_per_type"]["replay"], 1);
    assert_eq!(json["images"]["attack_per_type"]["unknown"], 1);
    assert_eq!(json["images"]["errors"], 1);
    assert_eq!(json["errors"][0]["code"], "NOT_AN_IMAGE");
    assert!(json["errors"][0]["path"]
        .as_str()
        .is_some_and(|p| p.ends_with("junk.jpg")));
    assert_eq!(
        json["images"]["ignored_files"].as_array().map(Vec::len),
        Some(1)
    );
    assert!(
        stdout.contains("junk.jpg"),
        "errors are in the summary: {stdout}"
    );
    let csv = std::fs::read_to_string(out_dir.path().join("scores.csv")).expect("csv");
    assert!(csv
        .lines()
        .any(|l| l.contains("junk.jpg,attack,unknown,ERROR")));
}

#[test]
fn calibrate_prints_the_threshold_line() {
    if !common::models_present() {
        return;
    }
    let env = tempfile::tempdir().expect("tempdir");
    let env_file = env.path().join("ekyc.env");
    std::fs::write(&env_file, "EKYC_PORT=8080\nEKYC_LIVENESS_THRESHOLD=0.5\n").expect("write");
    let stdout = ok(&ekyc(&[
        "calibrate",
        "--live",
        &dir("live"),
        "--spoof",
        &dir("spoof"),
        "--target-apcer",
        "0.2",
        "--write-env",
        &env_file.display().to_string(),
    ]));
    let line = stdout
        .lines()
        .find(|l| l.starts_with("EKYC_LIVENESS_THRESHOLD="))
        .unwrap_or_else(|| panic!("no threshold line in\n{stdout}"));
    let value: f32 = line["EKYC_LIVENESS_THRESHOLD=".len()..]
        .parse()
        .expect("threshold is a number");
    assert!((0.0..=1.0).contains(&value), "{value}");
    assert!(stdout.contains("Expected BPCER:"), "{stdout}");
    assert!(stdout.contains("Clopper–Pearson"), "{stdout}");
    // With a handful of attacks the small-sample note must be there.
    assert!(stdout.contains("too little data"), "{stdout}");
    let written = std::fs::read_to_string(&env_file).expect("env file");
    assert_eq!(written, format!("EKYC_PORT=8080\n{line}\n"));

    // With RETRY targets the band is chosen too, and written next to the threshold.
    let stdout = ok(&ekyc(&[
        "calibrate",
        "--live",
        &dir("live"),
        "--spoof",
        &dir("spoof"),
        "--target-apcer",
        "0.2",
        "--retry-max-apcer",
        "0",
        "--retry-max-bpcer",
        "0",
        "--write-env",
        &env_file.display().to_string(),
    ]));
    let band = stdout
        .lines()
        .find(|l| l.starts_with("EKYC_RETRY_BAND="))
        .unwrap_or_else(|| panic!("no band line in\n{stdout}"));
    let b: f64 = band["EKYC_RETRY_BAND=".len()..].parse().expect("band");
    assert!((0.0..0.5).contains(&b), "{b}");
    assert!(stdout.contains("decided BPCER 0/"), "{stdout}");
    let written = std::fs::read_to_string(&env_file).expect("env file");
    assert!(written.ends_with(&format!("{band}\n")), "{written}");
}

#[test]
fn calibrate_quality_prints_every_metric() {
    if !common::models_present() {
        return;
    }
    let stdout = ok(&ekyc(&["calibrate-quality", "--live", &dir("live")]));
    for metric in [
        "face_brightness",
        "image_brightness",
        "sharpness",
        "face_area_ratio",
        "face_height_ratio",
        "eye_distance_px",
        "face_inside_ratio",
        "roll_deg",
        "yaw",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with('|') && l.contains(metric)),
            "{metric} missing:\n{stdout}"
        );
    }
    for env in [
        "EKYC_MIN_FACE_BRIGHTNESS=",
        "EKYC_MAX_FACE_BRIGHTNESS=",
        "EKYC_MIN_IMAGE_BRIGHTNESS=",
        "EKYC_MAX_IMAGE_BRIGHTNESS=",
        "EKYC_MIN_SHARPNESS=",
        "EKYC_MIN_FACE_AREA_RATIO=",
        "EKYC_MIN_FACE_HEIGHT_RATIO=",
        "EKYC_MIN_EYE_DISTANCE=",
        "EKYC_MIN_FACE_INSIDE=",
        "EKYC_MAX_ROLL_DEG=",
        "EKYC_MAX_YAW=",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(env)),
            "{env} missing:\n{stdout}"
        );
    }
    // The shipped defaults pass every bona fide test image.
    assert!(stdout.contains("The current gate passes every measured capture."));
}
