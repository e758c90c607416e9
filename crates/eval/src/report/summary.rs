//! The `ekyc eval` output (gate on and off side by side, per image) and the `ekyc calibrate` text.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use ekyc_core::ModelInfo;

use super::{
    csv_field, fmt_pct, md_escape, EvalReport, APCER_AT_BPCER_TARGETS, BPCER_AT_APCER_TARGETS,
};
use crate::dataset::Collected;
use crate::metrics::{Calibration, Counts, OperatingPoint, Target};
use crate::run::{ImageError, ImageRun};
use crate::stats::{Interval, RateSummary};
use crate::GatePolicy;

/// Rows of the per-image table in report.md (scores.csv always has every image).
pub const MAX_REPORT_ROWS: usize = 500;

/// Files found per class (including the ones that could not be evaluated).
#[derive(Debug, Serialize)]
pub struct ImageCounts {
    pub bona_fide: usize,
    pub attack: usize,
    pub attack_per_type: BTreeMap<String, usize>,
    /// Files that could not be evaluated (unreadable, not an image, corrupt, ...).
    pub errors: usize,
    /// Documentation files next to the images, not run.
    pub ignored_files: Vec<String>,
}

/// Per class: how many images got each status, and each gate reason.
#[derive(Debug, Default, Serialize)]
pub struct StatusCounts {
    pub status: BTreeMap<String, usize>,
    pub reasons: BTreeMap<String, usize>,
}

/// One side of the comparison.
#[derive(Debug, Serialize)]
pub struct GateSection {
    /// "gate on": the service as deployed; "gate off": enable_checks = false.
    pub description: String,
    pub bona_fide: StatusCounts,
    pub attack: StatusCounts,
    pub report: EvalReport,
}

/// Everything `ekyc eval` reports (report.json).
#[derive(Debug, Serialize)]
pub struct EvalOutput {
    pub live_dir: String,
    pub spoof_dir: String,
    pub attack_types_file: Option<String>,
    pub models: Vec<ModelInfo>,
    pub liveness_models: String,
    pub threshold: f32,
    pub gate_policy: &'static str,
    pub gate_policy_explained: &'static str,
    pub images: ImageCounts,
    pub gate_on: GateSection,
    pub gate_off: GateSection,
    pub errors: Vec<ImageError>,
    pub notes: Vec<String>,
}

/// What [`EvalOutput::new`] is built from.
pub struct EvalOutputInput<'a> {
    pub live_dir: &'a Path,
    pub spoof_dir: &'a Path,
    pub attack_types_file: Option<&'a Path>,
    pub collected: &'a Collected,
    pub runs: &'a [ImageRun],
    pub models: Vec<ModelInfo>,
    /// The liveness models, `"a + b"`.
    pub label: String,
    pub threshold: f32,
    pub policy: GatePolicy,
    pub report_on: EvalReport,
    pub report_off: EvalReport,
}

/// Status and reason counts of one class (`bona_fide` or attacks), gate on or off.
pub fn status_counts(runs: &[ImageRun], bona_fide: bool, gate_on: bool) -> StatusCounts {
    let mut c = StatusCounts::default();
    for o in runs {
        if o.item.class.is_bona_fide() != bona_fide {
            continue;
        }
        let Ok(r) = &o.result else { continue };
        let run = if gate_on {
            Some(&r.gate_on)
        } else {
            r.gate_off.as_ref()
        };
        if let Some(run) = run {
            *c.status.entry(run.status.as_str().to_string()).or_default() += 1;
            for reason in &run.reasons {
                *c.reasons.entry(reason.clone()).or_default() += 1;
            }
        }
    }
    c
}

/// `LIVE 3; SPOOF 1; reasons: BLURRY 1`.
pub fn counts_text(c: &StatusCounts) -> String {
    let mut parts: Vec<String> = c.status.iter().map(|(k, v)| format!("{k} {v}")).collect();
    if !c.reasons.is_empty() {
        let r: Vec<String> = c.reasons.iter().map(|(k, v)| format!("{k} {v}")).collect();
        parts.push(format!("reasons: {}", r.join(", ")));
    }
    if parts.is_empty() {
        "–".into()
    } else {
        parts.join("; ")
    }
}

/// How uncertain the numbers are, computed from the counts (bona fide counted; counted attacks
/// per type).
pub fn uncertainty_text(bona: usize, attacks: &BTreeMap<String, usize>) -> String {
    let bound = |n: usize| fmt_pct(1.0 - 0.025f64.powf(1.0 / n as f64));
    let mut s = String::new();
    if bona > 0 {
        let _ = write!(
            s,
            "With {bona} bona fide captures one error moves BPCER by {}, and 0 errors only show \
             BPCER ≤ {} (95% Clopper–Pearson upper bound).",
            fmt_pct(1.0 / bona as f64),
            bound(bona)
        );
    }
    let per_type: Vec<String> = attacks
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{k} ({n}): 0 errors show APCER ≤ {}", bound(*n)))
        .collect();
    if !per_type.is_empty() {
        let _ = write!(
            s,
            " APCER is per attack type, so each type's own count matters: {}.",
            per_type.join("; ")
        );
    }
    let _ = write!(
        s,
        " Claiming 1% needs at least 368 samples per class (and per attack type) with 0 errors."
    );
    s.trim().to_string()
}

/// `2/10 = 20.00% (95% Wilson [5.67%, 50.98%], Clopper–Pearson [2.52%, 55.61%])`.
pub fn rate_text(r: &RateSummary) -> String {
    let Some(v) = r.value else {
        return format!("{}/{} (absent: no counted samples)", r.errors, r.total);
    };
    let ci = |i: Option<Interval>| {
        i.map(|i| format!("[{}, {}]", fmt_pct(i.lower), fmt_pct(i.upper)))
            .unwrap_or_else(|| "–".into())
    };
    format!(
        "{}/{} = {} (95% Wilson {}, Clopper–Pearson {})",
        r.errors,
        r.total,
        fmt_pct(v),
        ci(r.wilson95),
        ci(r.clopper_pearson95)
    )
}

/// [`rate_text`], or `undefined`.
pub fn opt_rate_text(r: Option<&RateSummary>) -> String {
    r.map(rate_text).unwrap_or_else(|| "undefined".into())
}

/// Compact table cell: `10.00% (1/10; Wilson 1.79–40.42%, CP 0.25–44.50%)`.
pub fn rate_cell(r: Option<&RateSummary>) -> String {
    let Some(r) = r else {
        return "undefined".into();
    };
    let Some(v) = r.value else {
        return format!("absent ({}/{})", r.errors, r.total);
    };
    let ci = |i: Option<Interval>| {
        i.map(|i| format!("{:.2}–{:.2}%", i.lower * 100.0, i.upper * 100.0))
            .unwrap_or_else(|| "–".into())
    };
    format!(
        "{} ({}/{}; Wilson {}, CP {})",
        fmt_pct(v),
        r.errors,
        r.total,
        ci(r.wilson95),
        ci(r.clopper_pearson95)
    )
}

/// Every heading two levels deeper (the library's report starts at `#`; it goes under a `##`).
fn demote_headings(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.starts_with('#') {
                format!("##{l}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn worst(r: &EvalReport) -> String {
    r.apcer_max_type
        .as_deref()
        .map(|t| format!(" (worst type: {t})"))
        .unwrap_or_default()
}

fn eer_cell(r: &EvalReport) -> String {
    match &r.eer {
        Some(e) => format!(
            "{} at threshold {:.4} (APCER {}/{}, BPCER {}/{})",
            fmt_pct(e.eer),
            e.threshold,
            e.apcer_max.errors,
            e.apcer_max.total,
            e.bpcer.errors,
            e.bpcer.total
        ),
        None => "undefined".into(),
    }
}

fn target_cell(r: &EvalReport, i: usize, apcer: bool) -> String {
    let t = if apcer {
        r.bpcer_at_apcer.get(i)
    } else {
        r.apcer_at_bpcer.get(i)
    };
    match t {
        Some(t) => match (t.threshold, &t.value) {
            (Some(th), Some(v)) => format!(
                "{} at threshold {:.4}{}",
                rate_cell(Some(v)),
                th,
                if t.supported_by_sample_size {
                    ""
                } else {
                    "; too few samples to show the target"
                }
            ),
            _ => "not reached on this data".into(),
        },
        None => "–".into(),
    }
}

impl EvalOutput {
    pub fn new(input: EvalOutputInput<'_>) -> Self {
        let EvalOutputInput {
            live_dir,
            spoof_dir,
            attack_types_file,
            collected,
            runs,
            models,
            label,
            threshold,
            policy,
            report_on,
            report_off,
        } = input;
        let errors: Vec<ImageError> = runs
            .iter()
            .filter_map(|o| o.result.as_ref().err().cloned())
            .collect();
        let bona_fide = collected
            .items
            .iter()
            .filter(|i| i.class.is_bona_fide())
            .count();
        EvalOutput {
            live_dir: live_dir.display().to_string(),
            spoof_dir: spoof_dir.display().to_string(),
            attack_types_file: attack_types_file.map(|p| p.display().to_string()),
            models,
            liveness_models: label,
            threshold,
            gate_policy: policy.as_str(),
            gate_policy_explained: policy.explain(),
            images: ImageCounts {
                bona_fide,
                attack: collected.items.len() - bona_fide,
                attack_per_type: collected.attack_per_type(),
                errors: errors.len(),
                ignored_files: collected
                    .ignored
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect(),
            },
            gate_on: GateSection {
                description: "the service as deployed: quality gate, then liveness; \
                              QUALITY_FAILED and NO_FACE are gated"
                    .into(),
                bona_fide: status_counts(runs, true, true),
                attack: status_counts(runs, false, true),
                report: report_on,
            },
            gate_off: GateSection {
                description: "enable_checks=false: liveness on every image with a face; only \
                              NO_FACE is gated"
                    .into(),
                bona_fide: status_counts(runs, true, false),
                attack: status_counts(runs, false, false),
                report: report_off,
            },
            errors,
            notes: collected.notes.clone(),
        }
    }

    /// The short Markdown summary (printed to stdout and at the top of report.md); `dir` is the
    /// output folder it points to.
    pub fn summary_markdown(&self, dir: &Path) -> String {
        let on = &self.gate_on.report;
        let off = &self.gate_off.report;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# Liveness evaluation (ISO/IEC 30107-3): {}\n",
            md_escape(&self.liveness_models)
        );
        let per_type: Vec<String> = self
            .images
            .attack_per_type
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(
            s,
            "- Images: **{} bona fide** (`{}`), **{} attacks** (`{}`: {}){}; {} could not be evaluated{}.",
            self.images.bona_fide,
            self.live_dir,
            self.images.attack,
            self.spoof_dir,
            per_type.join(", "),
            self.attack_types_file
                .as_ref()
                .map(|f| format!(", attack types from `{f}`"))
                .unwrap_or_default(),
            self.errors.len(),
            if self.images.ignored_files.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} non-image files ignored",
                    self.images.ignored_files.len()
                )
            }
        );
        let _ = writeln!(s, "- Models:");
        for m in &self.models {
            let _ = writeln!(
                s,
                "  - `{}` ({}) sha256 `{}`",
                m.name,
                format!("{:?}", m.role).to_lowercase(),
                m.sha256
            );
        }
        let _ = writeln!(
            s,
            "- Threshold: **{}** (EKYC_LIVENESS_THRESHOLD): a capture is accepted as bona fide \
             iff liveness_score ≥ threshold.",
            self.threshold
        );
        let _ = writeln!(
            s,
            "- Gate policy: **{}**. {}",
            self.gate_policy, self.gate_policy_explained
        );
        let _ = writeln!(
            s,
            "- Gate on = the service as deployed (quality gate, then liveness). Gate off = the \
             same images with enable_checks=false: liveness scores every image with a face; only \
             NO_FACE images stay unscored (counted by the same policy).\n- Rates are \
             errors/counted with 95% Wilson score and Clopper–Pearson (CP, exact) intervals.\n"
        );

        let _ = writeln!(
            s,
            "| at threshold {} | gate on | gate off |",
            self.threshold
        );
        let _ = writeln!(s, "|---|---|---|");
        let _ = writeln!(
            s,
            "| bona fide: outcomes | {} | {} |",
            md_escape(&counts_text(&self.gate_on.bona_fide)),
            md_escape(&counts_text(&self.gate_off.bona_fide))
        );
        let _ = writeln!(
            s,
            "| attacks: outcomes | {} | {} |",
            md_escape(&counts_text(&self.gate_on.attack)),
            md_escape(&counts_text(&self.gate_off.attack))
        );
        let _ = writeln!(
            s,
            "| **BPCER** | {} | {} |",
            rate_cell(Some(&on.bpcer)),
            rate_cell(Some(&off.bpcer))
        );
        let _ = writeln!(
            s,
            "| **APCER** (max over attack types) | {}{} | {}{} |",
            rate_cell(on.apcer_max.as_ref()),
            worst(on),
            rate_cell(off.apcer_max.as_ref()),
            worst(off)
        );
        let types: BTreeSet<&String> = on
            .apcer_per_type
            .keys()
            .chain(off.apcer_per_type.keys())
            .collect();
        for t in types {
            let _ = writeln!(
                s,
                "| APCER {} | {} | {} |",
                md_escape(t),
                rate_cell(on.apcer_per_type.get(t)),
                rate_cell(off.apcer_per_type.get(t))
            );
        }
        let _ = writeln!(s, "| EER | {} | {} |", eer_cell(on), eer_cell(off));
        for (i, (name, _)) in BPCER_AT_APCER_TARGETS.iter().enumerate() {
            let _ = writeln!(
                s,
                "| {name} | {} | {} |",
                target_cell(on, i, true),
                target_cell(off, i, true)
            );
        }
        for (i, (name, _)) in APCER_AT_BPCER_TARGETS.iter().enumerate() {
            let _ = writeln!(
                s,
                "| {name} | {} | {} |",
                target_cell(on, i, false),
                target_cell(off, i, false)
            );
        }
        let _ = writeln!(s);
        let attacks_scored: BTreeMap<String, usize> = on
            .counts
            .attacks
            .iter()
            .map(|(k, c)| (k.clone(), c.counted))
            .collect();
        let _ = writeln!(
            s,
            "**How sure?** {}\n",
            uncertainty_text(on.counts.bona_fide.counted, &attacks_scored)
        );
        if !self.errors.is_empty() {
            let _ = writeln!(s, "**Could not be evaluated** ({}):\n", self.errors.len());
            for e in &self.errors {
                let _ = writeln!(
                    s,
                    "- `{}` ({}): {} {}",
                    e.path,
                    e.class,
                    e.code,
                    md_escape(&e.message)
                );
            }
            let _ = writeln!(s);
        }
        for n in &self.notes {
            let _ = writeln!(s, "- Note: {}", md_escape(n));
        }
        let _ = writeln!(
            s,
            "Full report: `{}` (every rate with both intervals, EER and BPCER/APCER at fixed \
             targets, per-image scores); plots `det.png`, `hist.png`; per image `scores.csv`.",
            dir.join("report.md").display()
        );
        s
    }

    /// report.md: the summary, both full reports, the per-image table and the ignored files.
    pub fn full_markdown(&self, runs: &[ImageRun], dir: &Path) -> String {
        let mut full = self.summary_markdown(dir);
        let _ = writeln!(full, "\n## Gate on: full report\n");
        let _ = writeln!(
            full,
            "{}\n",
            demote_headings(&self.gate_on.report.to_markdown())
        );
        let _ = writeln!(full, "## Gate off: full report\n");
        let _ = writeln!(
            full,
            "{}\n",
            demote_headings(&self.gate_off.report.to_markdown())
        );
        let _ = writeln!(full, "## Per image\n");
        let _ = writeln!(full, "{}", per_image_table(runs, self.threshold));
        if !self.images.ignored_files.is_empty() {
            let _ = writeln!(full, "\nIgnored (not images):\n");
            for f in &self.images.ignored_files {
                let _ = writeln!(full, "- `{}`", md_escape(f));
            }
        }
        full
    }
}

fn score_cell(x: Option<f32>) -> String {
    x.map(|v| format!("{v:.4}")).unwrap_or_else(|| "–".into())
}

/// The per-image Markdown table (first [`MAX_REPORT_ROWS`] images).
fn per_image_table(runs: &[ImageRun], threshold: f32) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| image | class | attack type | gate on: status | score | reasons | gate off: score | decision (gate on) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---:|---|---:|---|");
    for o in runs.iter().take(MAX_REPORT_ROWS) {
        let path = md_escape(&o.item.path.display().to_string());
        let class = o.item.class_name();
        let kind = o.item.class.attack_type().unwrap_or("–");
        match &o.result {
            Ok(r) => {
                let decision = match r.gate_on.score {
                    Some(v) if v >= threshold => "accept",
                    Some(_) => "reject",
                    None => "reject (gated)",
                };
                let _ = writeln!(
                    s,
                    "| `{path}` | {class} | {kind} | {} | {} | {} | {} | {decision} |",
                    r.gate_on.status.as_str(),
                    score_cell(r.gate_on.score),
                    if r.gate_on.reasons.is_empty() {
                        "–".to_string()
                    } else {
                        r.gate_on.reasons.join(", ")
                    },
                    score_cell(r.gate_off.as_ref().and_then(|g| g.score)),
                );
            }
            Err(e) => {
                let _ = writeln!(
                    s,
                    "| `{path}` | {class} | {kind} | ERROR {} | – | {} | – | – |",
                    e.code,
                    md_escape(&e.message)
                );
            }
        }
    }
    if runs.len() > MAX_REPORT_ROWS {
        let _ = writeln!(
            s,
            "\n(first {MAX_REPORT_ROWS} of {} images; all are in scores.csv)",
            runs.len()
        );
    }
    s
}

/// scores.csv: one row per image, gate on and off, with the decision at `threshold`.
pub fn scores_csv(runs: &[ImageRun], threshold: f32) -> String {
    let mut s = String::from(
        "path,class,attack_type,gate_on_status,gate_on_score,gate_on_reasons,gate_on_decision,gate_off_status,gate_off_score,gate_off_decision,error\n",
    );
    let decision = |x: Option<f32>| match x {
        Some(v) if v >= threshold => "accept",
        _ => "reject",
    };
    for o in runs {
        let path = csv_field(&o.item.path.display().to_string());
        let class = o.item.class_name();
        let kind = csv_field(o.item.class.attack_type().unwrap_or(""));
        match &o.result {
            Ok(r) => {
                let (off_status, off_score, off_decision) = match &r.gate_off {
                    Some(g) => (
                        g.status.as_str(),
                        g.score.map(|v| v.to_string()).unwrap_or_default(),
                        decision(g.score),
                    ),
                    None => ("", String::new(), ""),
                };
                let _ = writeln!(
                    s,
                    "{path},{class},{kind},{},{},{},{},{off_status},{off_score},{off_decision},",
                    r.gate_on.status.as_str(),
                    r.gate_on.score.map(|v| v.to_string()).unwrap_or_default(),
                    csv_field(&r.gate_on.reasons.join(";")),
                    decision(r.gate_on.score),
                );
            }
            Err(e) => {
                let _ = writeln!(
                    s,
                    "{path},{class},{kind},ERROR,,,,,,,{}",
                    csv_field(&format!("{}: {}", e.code, e.message))
                );
            }
        }
    }
    s
}

/// The `ekyc calibrate` text up to the chosen threshold: data, gated counts and policy, images
/// that could not be evaluated, the rates at the current threshold, the target and the rates at
/// the chosen threshold, and the calibration's notes.
#[allow(clippy::too_many_arguments)]
pub fn calibration_text(
    counts: &Counts,
    label: &str,
    policy: GatePolicy,
    errors: &[ImageError],
    current: f32,
    at_current: &OperatingPoint,
    cal: &Calibration,
    target: Target,
) -> String {
    let mut s = String::new();
    let a = counts.attack_total();
    let _ = writeln!(
        s,
        "Calibration of the liveness threshold on {} bona fide + {} attack images ({}), gate \
         on, gate policy {}.",
        counts.bona_fide.total,
        a.total,
        label,
        policy.as_str()
    );
    let _ = writeln!(
        s,
        "Gated (quality gate or no face): bona fide {}, attacks {}. {}",
        counts.bona_fide.gated,
        a.gated,
        policy.explain()
    );
    if !errors.is_empty() {
        let _ = writeln!(s, "Could not be evaluated ({}):", errors.len());
        for e in errors {
            let _ = writeln!(s, "  {} ({}): {} {}", e.path, e.class, e.code, e.message);
        }
    }
    let _ = writeln!(
        s,
        "At the current threshold {current}: APCER {}, BPCER {}",
        opt_rate_text(at_current.apcer_max.map(|r| r.summary()).as_ref()),
        rate_text(&at_current.bpcer.summary())
    );
    let _ = writeln!(s);
    match target {
        Target::Apcer(x) => {
            let _ = writeln!(
                s,
                "Target: APCER ≤ {} (the threshold with the lowest BPCER among those meeting it)",
                fmt_pct(x)
            );
        }
        Target::Bpcer(x) => {
            let _ = writeln!(
                s,
                "Target: BPCER ≤ {} (the threshold with the lowest APCER among those meeting it)",
                fmt_pct(x)
            );
        }
    }
    let worst = cal
        .apcer_max_type
        .as_deref()
        .map(|t| format!(" (worst type: {t})"))
        .unwrap_or_default();
    let (apcer_label, bpcer_label) = match target {
        Target::Apcer(_) => ("Achieved APCER", "Expected BPCER"),
        Target::Bpcer(_) => ("Expected APCER", "Achieved BPCER"),
    };
    let _ = writeln!(
        s,
        "{apcer_label}{worst}: {}",
        opt_rate_text(cal.apcer_max.as_ref())
    );
    for (k, r) in &cal.apcer_per_type {
        let _ = writeln!(s, "  APCER {k}: {}", rate_text(r));
    }
    let _ = writeln!(s, "{bpcer_label}: {}", opt_rate_text(cal.bpcer.as_ref()));
    if !cal.notes.is_empty() {
        let _ = writeln!(s, "Notes:");
        for n in &cal.notes {
            let _ = writeln!(s, "  - {n}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_uncertainty_texts() {
        let mut c = StatusCounts::default();
        assert_eq!(counts_text(&c), "–");
        c.status.insert("LIVE".into(), 3);
        c.status.insert("QUALITY_FAILED".into(), 1);
        c.reasons.insert("BLURRY".into(), 1);
        assert_eq!(
            counts_text(&c),
            "LIVE 3; QUALITY_FAILED 1; reasons: BLURRY 1"
        );
        let attacks = BTreeMap::from([("print".to_string(), 10), ("mask".to_string(), 0)]);
        let t = uncertainty_text(10, &attacks);
        assert!(t.starts_with("With 10 bona fide captures one error moves BPCER by 10.00%"));
        assert!(
            t.contains("print (10): 0 errors show APCER ≤ 30.85%"),
            "{t}"
        );
        assert!(!t.contains("mask"), "{t}");
    }

    #[test]
    fn rate_cells_and_texts() {
        let r = crate::Rate::new(1, 10).summary();
        assert!(rate_cell(Some(&r)).starts_with("10.00% (1/10; Wilson "));
        assert_eq!(rate_cell(None), "undefined");
        let absent = crate::Rate::new(0, 0).summary();
        assert_eq!(rate_cell(Some(&absent)), "absent (0/0)");
        assert_eq!(rate_text(&absent), "0/0 (absent: no counted samples)");
        assert!(rate_text(&r).starts_with("1/10 = 10.00% (95% Wilson ["));
    }
}
