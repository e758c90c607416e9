//! `ekyc eval-ensembles` end to end on the vendored images (testdata/faces) with the two default
//! liveness models: the report's rows, their intervals, the winner against the written rule, and
//! scores.csv.

mod common;

use common::{repo, vendored};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// The rule's tie width (ekyc_eval::ensembles::AUC_TIE), restated so the test checks the binary's
/// choice independently of the library code that made it.
const AUC_TIE: f64 = 0.005;

fn ekyc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ekyc"))
        .args(args)
        .current_dir(repo())
        .env_remove("EKYC_MODELS_DIR")
        .env_remove("EKYC_LIVENESS_MODELS")
        .output()
        .expect("run ekyc")
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .filter(|e| e.path().is_file() && !e.file_name().to_string_lossy().starts_with('.'))
        .count()
}

fn num(v: &Value, path: &[&str]) -> f64 {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_f64()
        .unwrap_or_else(|| panic!("{path:?} is not a number in {v}"))
}

#[test]
fn eval_ensembles_on_the_vendored_images() {
    if !common::models_present() {
        return;
    }
    let live = vendored().join("live");
    let spoof = vendored().join("spoof");
    let n_images = files_in(&live) + files_in(&spoof);
    let out_dir = tempfile::tempdir().expect("tempdir");
    let set = format!("faces:{}:{}", live.display(), spoof.display());
    let out = ekyc(&[
        "eval-ensembles",
        "--set",
        &set,
        "--models",
        "MiniFASNetV2,MiniFASNetV1SE",
        "--out",
        &out_dir.path().display().to_string(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("cost measured over "), "{stdout}");
    assert!(stdout.contains("winner: "), "{stdout}");
    assert!(stdout.contains("report.md"), "{stdout}");

    let json = std::fs::read_to_string(out_dir.path().join("report.json")).expect("report.json");
    let report: Value = serde_json::from_str(&json).expect("report.json is JSON");
    let rows = report["rows"].as_array().expect("rows");
    // 2 singles + the pair under each of the 2 fusions.
    assert_eq!(rows.len(), 4, "{json}");
    let singles = rows.iter().filter(|r| r["fusion"].is_null()).count();
    assert_eq!(singles, 2);
    let mut fusions: Vec<&str> = rows.iter().filter_map(|r| r["fusion"].as_str()).collect();
    fusions.sort_unstable();
    assert_eq!(fusions, ["mean_logit", "mean_probability"]);
    for r in rows {
        let auc = num(r, &["auc", "auc"]);
        let lo = num(r, &["auc", "interval", "lower"]);
        let hi = num(r, &["auc", "interval", "upper"]);
        assert!((0.0..=1.0).contains(&auc), "{r}");
        assert!(0.0 <= lo && lo <= auc && auc <= hi && hi <= 1.0, "{r}");
        assert!(num(r, &["cpu_ms"]) > 0.0, "{r}");
    }
    let pair: Vec<&Value> = rows.iter().filter(|r| !r["fusion"].is_null()).collect();
    let single_cost: f64 = rows
        .iter()
        .filter(|r| r["fusion"].is_null())
        .map(|r| num(r, &["cpu_ms"]))
        .sum();
    for p in pair {
        assert!((num(p, &["cpu_ms"]) - single_cost).abs() < 1e-9, "{p}");
    }

    // The winner by the rule, recomputed: no budget → every row eligible; the highest lower
    // bound; within 0.005 of it, the lowest CPU cost, then the fewest models.
    let winner = &report["winner"];
    assert!(winner.is_object(), "no winner: {json}");
    let lower = |r: &Value| num(r, &["auc", "interval", "lower"]);
    let best = rows.iter().map(lower).fold(f64::NEG_INFINITY, f64::max);
    let tied: Vec<&Value> = rows
        .iter()
        .filter(|r| best - lower(r) <= AUC_TIE + 1e-12)
        .collect();
    let w_lo = lower(winner);
    assert!(best - w_lo <= AUC_TIE + 1e-12, "{winner}");
    let w_cost = num(winner, &["cpu_ms"]);
    let w_n = num(winner, &["n_models"]);
    for r in &tied {
        let (c, n) = (num(r, &["cpu_ms"]), num(r, &["n_models"]));
        assert!(
            c > w_cost || (c == w_cost && n >= w_n),
            "{} beats the winner {} by the rule",
            r["label"],
            winner["label"]
        );
    }
    assert_eq!(rows[0]["label"], winner["label"]);
    assert_eq!(
        report["rule"].as_str(),
        Some(
            "among combinations whose CPU cost is within the budget, the highest lower 95 % bound \
             of AUC on the pooled sets; ties within 0.005 go to the lower CPU cost, then fewer \
             models"
        )
    );

    let md = std::fs::read_to_string(out_dir.path().join("report.md")).expect("report.md");
    assert!(md.contains(report["rule"].as_str().unwrap_or("?")), "{md}");
    assert!(md.contains("mean_logit − mean_probability"), "{md}");

    let csv = std::fs::read_to_string(out_dir.path().join("scores.csv")).expect("scores.csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("path,set,class,attack_type,MiniFASNetV2,MiniFASNetV1SE,status,error")
    );
    assert_eq!(lines.len(), 1 + n_images, "{csv}");
}

#[test]
fn eval_ensembles_rejects_a_set_without_attacks() {
    if !common::models_present() {
        return;
    }
    let live = vendored().join("live");
    let empty = tempfile::tempdir().expect("tempdir");
    let out_dir = tempfile::tempdir().expect("tempdir");
    let set = format!("faces:{}:{}", live.display(), empty.path().display());
    let out = ekyc(&[
        "eval-ensembles",
        "--set",
        &set,
        "--out",
        &out_dir.path().display().to_string(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("set faces") && stderr.contains("no images found"),
        "{stderr}"
    );
}
