//! `ekyc eval`, `ekyc calibrate` and `ekyc calibrate-quality`: measure the pipeline on labelled
//! folders of images with the ISO/IEC 30107-3 metrics of [`ekyc_eval`].
//!
//! Images are run through the full pipeline exactly as the service runs them
//! ([`Pipeline::run`] with the quality gate on). A capture the gate rejects (`QUALITY_FAILED`) or
//! in which no face is found (`NO_FACE`) has no liveness score: it is *gated*, and `--gate-policy`
//! says how gated captures enter the error rates. `eval` also runs every image with the gate off
//! (`enable_checks = false`), which measures the liveness models alone.

use anyhow::{bail, Context, Result};
use clap::{ArgGroup, Args, ValueEnum};
use ekyc_core::quality::QualityScores;
use ekyc_core::quality::{Kind, Metric, QualityLimits, Side as GateSide};
use ekyc_core::{CheckOptions, ModelInfo, Pipeline, Status, Verdict};
use ekyc_eval::plot;
use ekyc_eval::report::EvalReport;
use ekyc_eval::{Calibration, Class, DetPoint, GatePolicy, RateSummary, Sample, ScoreSet, Target};
use ekyc_liveness::Settings;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Attack type of images placed directly in the spoof folder (not in a sub-folder) and not named
/// in `--attack-types`.
const UNKNOWN_ATTACK: &str = "unknown";

/// Files with these extensions are documentation next to the images: listed as ignored, not run.
const NON_IMAGE_EXTENSIONS: [&str; 9] = [
    "md", "txt", "csv", "json", "toml", "yaml", "yml", "html", "pdf",
];

/// Rows of the per-image table in report.md (scores.csv always has every image).
const MAX_REPORT_ROWS: usize = 500;

/// Bins of the score histogram.
const HIST_BINS: usize = 20;

/// How captures without a liveness score (quality gate failed or no face) enter the rates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum GatePolicyArg {
    /// A gated bona fide capture is a rejection (BPCER); a gated attack is a correctly rejected attack.
    #[default]
    CountAsRejected,
    /// Gated captures are left out of every rate (their counts are still reported).
    Exclude,
}

impl GatePolicyArg {
    fn policy(self) -> GatePolicy {
        match self {
            GatePolicyArg::CountAsRejected => GatePolicy::CountAsRejected,
            GatePolicyArg::Exclude => GatePolicy::Exclude,
        }
    }

    fn name(self) -> &'static str {
        match self {
            GatePolicyArg::CountAsRejected => "count-as-rejected",
            GatePolicyArg::Exclude => "exclude",
        }
    }

    /// The policy in plain words, for reports.
    fn explain(self) -> &'static str {
        match self {
            GatePolicyArg::CountAsRejected => {
                "A capture rejected by the quality gate (QUALITY_FAILED) or with no face found \
                 (NO_FACE) gets no liveness score. Under count-as-rejected such a capture counts \
                 as what the service does with it: a rejected bona fide capture is an error in \
                 BPCER (numerator and denominator), a rejected attack is a correctly rejected \
                 attack (in its type's APCER denominator, never in the numerator). The rates are \
                 those of the whole service, gate included."
            }
            GatePolicyArg::Exclude => {
                "A capture rejected by the quality gate (QUALITY_FAILED) or with no face found \
                 (NO_FACE) gets no liveness score. Under exclude such captures are left out of \
                 every rate (numerator and denominator); how many there were is reported \
                 separately. The rates are those of the liveness models on the captures the gate \
                 lets through."
            }
        }
    }
}

/// The labelled data: bona fide and attack folders.
#[derive(Args, Debug)]
pub struct DataArgs {
    /// Folder of bona fide (live) captures; sub-folders are included.
    #[arg(long, value_name = "DIR")]
    pub live: PathBuf,
    /// Folder of presentation attacks. Each sub-folder is one attack type named after it
    /// (print/, replay/, mask/, ...); images directly in DIR have attack type "unknown" unless
    /// --attack-types names them.
    #[arg(long, value_name = "DIR")]
    pub spoof: PathBuf,
    /// CSV mapping attack image → attack type: lines `file,attack_type`, where file is the path
    /// relative to --spoof or just the file name; `#` comments and a `file,attack_type` header are
    /// allowed. Overrides the sub-folder name.
    #[arg(long, value_name = "FILE.csv")]
    pub attack_types: Option<PathBuf>,
    /// How captures without a liveness score (quality gate failed, no face) are counted.
    #[arg(long, value_enum, default_value_t = GatePolicyArg::CountAsRejected)]
    pub gate_policy: GatePolicyArg,
}

/// `ekyc eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Output folder: report.json, report.md, det.png/.svg, hist.png/.svg, scores.csv.
    #[arg(long, value_name = "DIR", default_value = "out/eval")]
    pub out: PathBuf,
    #[command(flatten)]
    pub config: Settings,
}

/// `ekyc calibrate`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("target").required(true).args(["target_apcer", "target_bpcer"])))]
pub struct CalibrateArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Highest acceptable APCER (fraction, 0.05 = 5 %): the threshold with the lowest BPCER
    /// among those with APCER ≤ X on this data (banking-grade: small X).
    #[arg(long, value_name = "X")]
    pub target_apcer: Option<f64>,
    /// Highest acceptable BPCER (fraction): the threshold with the lowest APCER among those with
    /// BPCER ≤ X on this data (low friction: small X).
    #[arg(long, value_name = "X")]
    pub target_bpcer: Option<f64>,
    /// Also write `EKYC_LIVENESS_THRESHOLD=<value>` into FILE (the line is replaced if present).
    #[arg(long, value_name = "FILE")]
    pub write_env: Option<PathBuf>,
    #[command(flatten)]
    pub config: Settings,
}

/// `ekyc calibrate-quality`.
#[derive(Args, Debug)]
pub struct CalibrateQualityArgs {
    /// Folder of bona fide captures from the camera to calibrate for; sub-folders are included.
    #[arg(long, value_name = "DIR")]
    pub live: PathBuf,
    /// Write the measurements and suggestions as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Write the suggested `EKYC_*` limits into FILE (existing lines for the same keys are
    /// replaced). Without it nothing is changed.
    #[arg(long, value_name = "FILE")]
    pub write_env: Option<PathBuf>,
    #[command(flatten)]
    pub config: Settings,
}

// ---------------------------------------------------------------------------------------------
// Collecting the labelled files
// ---------------------------------------------------------------------------------------------

/// One labelled file.
#[derive(Debug, Clone)]
struct Item {
    path: PathBuf,
    class: Class,
}

impl Item {
    fn class_name(&self) -> &'static str {
        if self.class.is_bona_fide() {
            "bona_fide"
        } else {
            "attack"
        }
    }
}

#[derive(Debug, Default)]
struct Collected {
    items: Vec<Item>,
    /// Documentation files found next to the images (not run).
    ignored: Vec<PathBuf>,
    /// Notes about the attack-type mapping (entries that matched nothing).
    notes: Vec<String>,
}

fn is_hidden(p: &Path) -> bool {
    p.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

fn is_documentation(p: &Path) -> bool {
    p.extension().is_some_and(|e| {
        let e = e.to_string_lossy().to_ascii_lowercase();
        NON_IMAGE_EXTENSIONS.contains(&e.as_str())
    })
}

/// Every non-hidden file under `dir` (recursively), sorted, split into (candidates, ignored).
fn files_under(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut files = Vec::new();
    let mut ignored = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries =
            std::fs::read_dir(&d).with_context(|| format!("reading folder {}", d.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("reading folder {}", d.display()))?;
            let path = entry.path();
            if is_hidden(&path) {
                continue;
            }
            let ft = entry
                .file_type()
                .with_context(|| format!("reading {}", path.display()))?;
            if ft.is_dir() || (ft.is_symlink() && path.is_dir()) {
                stack.push(path);
            } else if is_documentation(&path) {
                ignored.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    ignored.sort();
    Ok((files, ignored))
}

/// `file,attack_type` lines → map from key (relative path or file name) to type.
fn read_attack_types(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading attack types {}", path.display()))?;
    let mut map = BTreeMap::new();
    let mut seen_data = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((file, kind)) = line.split_once(',') else {
            bail!(
                "{}:{}: expected `file,attack_type`, got {line:?}",
                path.display(),
                i + 1
            );
        };
        let (file, kind) = (file.trim().trim_matches('"'), kind.trim().trim_matches('"'));
        if !seen_data
            && file.eq_ignore_ascii_case("file")
            && kind.eq_ignore_ascii_case("attack_type")
        {
            seen_data = true;
            continue;
        }
        seen_data = true;
        if file.is_empty() || kind.is_empty() || kind.contains(',') {
            bail!(
                "{}:{}: expected `file,attack_type`, got {line:?}",
                path.display(),
                i + 1
            );
        }
        if let Some(old) = map.insert(file.to_string(), kind.to_string()) {
            if old != kind {
                bail!(
                    "{}:{}: {file} is mapped twice ({old} and {kind})",
                    path.display(),
                    i + 1
                );
            }
        }
    }
    Ok(map)
}

/// Relative path with `/` separators, for matching mapping keys on every platform.
fn rel_key(path: &Path, root: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn collect(live: &Path, spoof: Option<&Path>, attack_types: Option<&Path>) -> Result<Collected> {
    let mut c = Collected::default();
    let (files, ignored) = files_under(live)?;
    if files.is_empty() {
        bail!("no images found in {}", live.display());
    }
    c.ignored.extend(ignored);
    c.items.extend(files.into_iter().map(|path| Item {
        path,
        class: Class::BonaFide,
    }));

    let Some(spoof) = spoof else {
        return Ok(c);
    };
    let mapping = match attack_types {
        Some(p) => read_attack_types(p)?,
        None => BTreeMap::new(),
    };
    let mut used: BTreeSet<&str> = BTreeSet::new();
    let (files, ignored) = files_under(spoof)?;
    if files.is_empty() {
        bail!("no images found in {}", spoof.display());
    }
    c.ignored.extend(ignored);
    for path in files {
        let rel = rel_key(&path, spoof);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let from_folder = match rel.split_once('/') {
            Some((folder, _)) => folder.to_string(),
            None => UNKNOWN_ATTACK.to_string(),
        };
        let kind = if let Some((k, v)) = mapping.get_key_value(rel.as_str()) {
            used.insert(k.as_str());
            v.clone()
        } else if let Some((k, v)) = mapping.get_key_value(name.as_str()) {
            used.insert(k.as_str());
            v.clone()
        } else {
            from_folder
        };
        c.items.push(Item {
            path,
            class: Class::Attack(kind),
        });
    }
    let unused: Vec<&str> = mapping
        .keys()
        .map(String::as_str)
        .filter(|k| !used.contains(k))
        .collect();
    if !unused.is_empty() {
        let note = format!(
            "attack-types entries that match no file in {}: {}",
            spoof.display(),
            unused.join(", ")
        );
        eprintln!("warning: {note}");
        c.notes.push(note);
    }
    Ok(c)
}

// ---------------------------------------------------------------------------------------------
// Running the pipeline
// ---------------------------------------------------------------------------------------------

/// What one pipeline run said about an image.
#[derive(Debug, Clone, Serialize)]
struct RunResult {
    status: Status,
    /// Liveness score when liveness ran (LIVE / SPOOF).
    score: Option<f32>,
    /// Reason codes (gate failures; NO_FACE).
    reasons: Vec<String>,
}

impl RunResult {
    fn from_verdict(v: &Verdict) -> Self {
        RunResult {
            status: v.status,
            score: match v.status {
                Status::Live | Status::Spoof => v.liveness_score,
                Status::QualityFailed | Status::NoFace => None,
            },
            reasons: v
                .reasons
                .iter()
                .map(|r| r.code.as_str().to_string())
                .collect(),
        }
    }
}

/// An image that could not be evaluated.
#[derive(Debug, Clone, Serialize)]
struct ImageError {
    path: String,
    class: &'static str,
    attack_type: Option<String>,
    code: String,
    message: String,
}

/// The outcome for one image.
#[derive(Debug, Clone)]
struct Outcome {
    item: Item,
    result: std::result::Result<Runs, ImageError>,
}

#[derive(Debug, Clone)]
struct Runs {
    gate_on: RunResult,
    gate_off: Option<RunResult>,
    quality: QualityScores,
}

fn status_str(s: Status) -> &'static str {
    match s {
        Status::Live => "LIVE",
        Status::Spoof => "SPOOF",
        Status::QualityFailed => "QUALITY_FAILED",
        Status::NoFace => "NO_FACE",
    }
}

fn progress(n: usize, what: &str) -> Result<ProgressBar> {
    let pb = ProgressBar::new(n as u64);
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:32}] {pos}/{len} images, {elapsed} elapsed, ~{eta} left  {wide_msg}",
        )?
        .progress_chars("=> "),
    );
    pb.set_prefix(what.to_string());
    Ok(pb)
}

/// Runs every item through the pipeline with the gate on, and (if `gate_off`) once more with it
/// off. Unreadable or undecodable files become errors, never silently dropped. Returns the
/// outcomes and the models of the first verdict.
fn run_all(
    pipeline: &Pipeline,
    items: &[Item],
    gate_off: bool,
    what: &str,
) -> Result<(Vec<Outcome>, Vec<ModelInfo>)> {
    let pb = progress(items.len(), what)?;
    let mut models: Option<Vec<ModelInfo>> = None;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        pb.set_message(
            item.path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default(),
        );
        let err = |code: &str, message: String| ImageError {
            path: item.path.display().to_string(),
            class: item.class_name(),
            attack_type: item.class.attack_type().map(str::to_string),
            code: code.to_string(),
            message,
        };
        let result = match std::fs::read(&item.path) {
            Err(e) => Err(err("READ_FAILED", e.to_string())),
            Ok(bytes) => {
                match pipeline.run(
                    &bytes,
                    CheckOptions {
                        enable_checks: true,
                    },
                ) {
                    Err(e) => Err(err(e.code(), e.to_string())),
                    Ok(on) => {
                        if models.is_none() {
                            models = Some(on.models.clone());
                        }
                        let off = if gate_off {
                            pipeline
                                .run(
                                    &bytes,
                                    CheckOptions {
                                        enable_checks: false,
                                    },
                                )
                                .map(|v| Some(RunResult::from_verdict(&v)))
                                .map_err(|e| err(e.code(), e.to_string()))
                        } else {
                            Ok(None)
                        };
                        off.map(|gate_off| Runs {
                            gate_on: RunResult::from_verdict(&on),
                            gate_off,
                            quality: on.quality.clone(),
                        })
                    }
                }
            }
        };
        out.push(Outcome {
            item: item.clone(),
            result,
        });
        pb.inc(1);
    }
    pb.finish_and_clear();
    let models = models.unwrap_or_else(|| pipeline.models().to_vec());
    Ok((out, models))
}

fn sample(item: &Item, score: Option<f32>) -> Sample {
    Sample {
        id: item.path.display().to_string(),
        class: item.class.clone(),
        score: score.map(f64::from),
    }
}

/// Samples with the gate on (gated = QUALITY_FAILED or NO_FACE) and, if run, with it off
/// (gated = NO_FACE only). Errors are not samples.
fn samples(outcomes: &[Outcome]) -> (Vec<Sample>, Vec<Sample>) {
    let mut on = Vec::new();
    let mut off = Vec::new();
    for o in outcomes {
        if let Ok(r) = &o.result {
            on.push(sample(&o.item, r.gate_on.score));
            if let Some(g) = &r.gate_off {
                off.push(sample(&o.item, g.score));
            }
        }
    }
    (on, off)
}

fn model_label(pipeline: &Pipeline) -> String {
    let names: Vec<&str> = pipeline
        .ensemble()
        .models()
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    names.join(" + ")
}

// ---------------------------------------------------------------------------------------------
// Formatting helpers
// ---------------------------------------------------------------------------------------------

fn pct(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

/// `2/10 = 20.00% (95% Wilson [5.67%, 50.98%], Clopper–Pearson [2.52%, 55.61%])`.
fn rate_text(r: &RateSummary) -> String {
    let Some(v) = r.value else {
        return format!("{}/{} (absent: no counted samples)", r.errors, r.total);
    };
    let ci = |i: Option<ekyc_eval::Interval>| {
        i.map(|i| format!("[{}, {}]", pct(i.lower), pct(i.upper)))
            .unwrap_or_else(|| "–".into())
    };
    format!(
        "{}/{} = {} (95% Wilson {}, Clopper–Pearson {})",
        r.errors,
        r.total,
        pct(v),
        ci(r.wilson95),
        ci(r.clopper_pearson95)
    )
}

fn opt_rate_text(r: Option<&RateSummary>) -> String {
    r.map(rate_text).unwrap_or_else(|| "undefined".into())
}

/// Compact table cell: `10.00% (1/10; Wilson 1.79–40.42%, CP 0.25–44.50%)`.
fn rate_cell(r: Option<&RateSummary>) -> String {
    let Some(r) = r else {
        return "undefined".into();
    };
    let Some(v) = r.value else {
        return format!("absent ({}/{})", r.errors, r.total);
    };
    let ci = |i: Option<ekyc_eval::Interval>| {
        i.map(|i| format!("{:.2}–{:.2}%", i.lower * 100.0, i.upper * 100.0))
            .unwrap_or_else(|| "–".into())
    };
    format!(
        "{} ({}/{}; Wilson {}, CP {})",
        pct(v),
        r.errors,
        r.total,
        ci(r.wilson95),
        ci(r.clopper_pearson95)
    )
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Markdown cell text.
fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
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

/// The smallest f32 at or above `t`: the threshold the service (which compares f32 scores with
/// an f32 threshold) needs to make the same decisions as the f64 threshold chosen on f32 scores.
fn threshold_f32(t: f64) -> f32 {
    let t32 = t as f32;
    if f64::from(t32) < t {
        t32.next_up()
    } else {
        t32
    }
}

/// Sets `KEY=value` lines in an env file: replaces existing lines for the keys (also
/// `export KEY=...`), appends the others, keeps everything else.
fn update_env_file(path: &Path, entries: &[(String, String)]) -> Result<()> {
    let old = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut lines: Vec<String> = Vec::new();
    for line in old.lines() {
        let bare = line.trim_start();
        let bare = bare.strip_prefix("export ").unwrap_or(bare);
        match entries.iter().find(|(k, _)| {
            bare.strip_prefix(k.as_str())
                .is_some_and(|r| r.starts_with('='))
        }) {
            Some((k, v)) => {
                if done.insert(k.as_str()) {
                    lines.push(format!("{k}={v}"));
                }
            }
            None => lines.push(line.to_string()),
        }
    }
    for (k, v) in entries {
        if !done.contains(k.as_str()) {
            lines.push(format!("{k}={v}"));
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// ekyc eval
// ---------------------------------------------------------------------------------------------

/// Files found per class (including the ones that could not be evaluated).
#[derive(Debug, Serialize)]
struct ImageCounts {
    bona_fide: usize,
    attack: usize,
    attack_per_type: BTreeMap<String, usize>,
    /// Files that could not be evaluated (unreadable, not an image, corrupt, ...).
    errors: usize,
    /// Documentation files next to the images, not run.
    ignored_files: Vec<String>,
}

/// Per class: how many images got each status, and each gate reason.
#[derive(Debug, Default, Serialize)]
struct StatusCounts {
    status: BTreeMap<String, usize>,
    reasons: BTreeMap<String, usize>,
}

#[derive(Debug, Serialize)]
struct GateSection {
    /// "gate on": the service as deployed; "gate off": enable_checks = false.
    description: String,
    bona_fide: StatusCounts,
    attack: StatusCounts,
    report: EvalReport,
}

#[derive(Debug, Serialize)]
struct EvalOutput {
    live_dir: String,
    spoof_dir: String,
    attack_types_file: Option<String>,
    models: Vec<ModelInfo>,
    liveness_models: String,
    threshold: f32,
    gate_policy: &'static str,
    gate_policy_explained: &'static str,
    images: ImageCounts,
    gate_on: GateSection,
    gate_off: GateSection,
    errors: Vec<ImageError>,
    notes: Vec<String>,
}

fn status_counts(outcomes: &[Outcome], bona_fide: bool, gate_on: bool) -> StatusCounts {
    let mut c = StatusCounts::default();
    for o in outcomes {
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
            *c.status
                .entry(status_str(run.status).to_string())
                .or_default() += 1;
            for reason in &run.reasons {
                *c.reasons.entry(reason.clone()).or_default() += 1;
            }
        }
    }
    c
}

fn counts_text(c: &StatusCounts) -> String {
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

/// How uncertain the numbers are, computed from the counts.
fn uncertainty_text(bona: usize, attacks: &BTreeMap<String, usize>) -> String {
    let bound = |n: usize| pct(1.0 - 0.025f64.powf(1.0 / n as f64));
    let mut s = String::new();
    if bona > 0 {
        let _ = write!(
            s,
            "With {bona} bona fide captures one error moves BPCER by {}, and 0 errors only show \
             BPCER ≤ {} (95% Clopper–Pearson upper bound).",
            pct(1.0 / bona as f64),
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

/// The short Markdown summary (printed to stdout and at the top of report.md).
fn eval_summary(out: &EvalOutput, dir: &Path) -> String {
    let on = &out.gate_on.report;
    let off = &out.gate_off.report;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Liveness evaluation (ISO/IEC 30107-3): {}\n",
        md(&out.liveness_models)
    );
    let per_type: Vec<String> = out
        .images
        .attack_per_type
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let _ = writeln!(
        s,
        "- Images: **{} bona fide** (`{}`), **{} attacks** (`{}`: {}){}; {} could not be evaluated{}.",
        out.images.bona_fide,
        out.live_dir,
        out.images.attack,
        out.spoof_dir,
        per_type.join(", "),
        out.attack_types_file
            .as_ref()
            .map(|f| format!(", attack types from `{f}`"))
            .unwrap_or_default(),
        out.errors.len(),
        if out.images.ignored_files.is_empty() {
            String::new()
        } else {
            format!(
                "; {} non-image files ignored",
                out.images.ignored_files.len()
            )
        }
    );
    let _ = writeln!(s, "- Models:");
    for m in &out.models {
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
        "- Threshold: **{}** (EKYC_LIVENESS_THRESHOLD): a capture is accepted as bona fide iff \
         liveness_score ≥ threshold.",
        out.threshold
    );
    let _ = writeln!(
        s,
        "- Gate policy: **{}**. {}",
        out.gate_policy, out.gate_policy_explained
    );
    let _ = writeln!(
        s,
        "- Gate on = the service as deployed (quality gate, then liveness). Gate off = the same \
         images with enable_checks=false: liveness scores every image with a face; only NO_FACE \
         images stay unscored (counted by the same policy).\n- Rates are errors/counted with 95% \
         Wilson score and Clopper–Pearson (CP, exact) intervals.\n"
    );

    let _ = writeln!(s, "| at threshold {} | gate on | gate off |", out.threshold);
    let _ = writeln!(s, "|---|---|---|");
    let _ = writeln!(
        s,
        "| bona fide: outcomes | {} | {} |",
        md(&counts_text(&out.gate_on.bona_fide)),
        md(&counts_text(&out.gate_off.bona_fide))
    );
    let _ = writeln!(
        s,
        "| attacks: outcomes | {} | {} |",
        md(&counts_text(&out.gate_on.attack)),
        md(&counts_text(&out.gate_off.attack))
    );
    let _ = writeln!(
        s,
        "| **BPCER** | {} | {} |",
        rate_cell(Some(&on.bpcer)),
        rate_cell(Some(&off.bpcer))
    );
    let worst = |r: &EvalReport| {
        r.apcer_max_type
            .as_deref()
            .map(|t| format!(" (worst type: {t})"))
            .unwrap_or_default()
    };
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
            md(t),
            rate_cell(on.apcer_per_type.get(t)),
            rate_cell(off.apcer_per_type.get(t))
        );
    }
    let eer = |r: &EvalReport| match &r.eer {
        Some(e) => format!(
            "{} at threshold {:.4} (APCER {}/{}, BPCER {}/{})",
            pct(e.eer),
            e.threshold,
            e.apcer_max.errors,
            e.apcer_max.total,
            e.bpcer.errors,
            e.bpcer.total
        ),
        None => "undefined".into(),
    };
    let _ = writeln!(s, "| EER | {} | {} |", eer(on), eer(off));
    let target = |r: &EvalReport, i: usize, apcer: bool| {
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
    };
    for (i, (name, _)) in ekyc_eval::report::BPCER_AT_APCER_TARGETS.iter().enumerate() {
        let _ = writeln!(
            s,
            "| {name} | {} | {} |",
            target(on, i, true),
            target(off, i, true)
        );
    }
    for (i, (name, _)) in ekyc_eval::report::APCER_AT_BPCER_TARGETS.iter().enumerate() {
        let _ = writeln!(
            s,
            "| {name} | {} | {} |",
            target(on, i, false),
            target(off, i, false)
        );
    }
    let _ = writeln!(s);
    let mut attacks_scored: BTreeMap<String, usize> = BTreeMap::new();
    for (k, c) in &on.counts.attacks {
        attacks_scored.insert(k.clone(), c.counted);
    }
    let _ = writeln!(
        s,
        "**How sure?** {}\n",
        uncertainty_text(on.counts.bona_fide.counted, &attacks_scored)
    );
    if !out.errors.is_empty() {
        let _ = writeln!(s, "**Could not be evaluated** ({}):\n", out.errors.len());
        for e in &out.errors {
            let _ = writeln!(
                s,
                "- `{}` ({}): {} {}",
                e.path,
                e.class,
                e.code,
                md(&e.message)
            );
        }
        let _ = writeln!(s);
    }
    for n in &out.notes {
        let _ = writeln!(s, "- Note: {}", md(n));
    }
    let _ = writeln!(
        s,
        "Full report: `{}` (every rate with both intervals, EER and BPCER/APCER at fixed targets, \
         per-image scores); plots `det.png`, `hist.png`; per image `scores.csv`.",
        dir.join("report.md").display()
    );
    s
}

fn per_image_table(outcomes: &[Outcome], threshold: f32) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| image | class | attack type | gate on: status | score | reasons | gate off: score | decision (gate on) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---:|---|---:|---|");
    for o in outcomes.iter().take(MAX_REPORT_ROWS) {
        let path = md(&o.item.path.display().to_string());
        let class = o.item.class_name();
        let kind = o.item.class.attack_type().unwrap_or("–");
        match &o.result {
            Ok(r) => {
                let score =
                    |x: Option<f32>| x.map(|v| format!("{v:.4}")).unwrap_or_else(|| "–".into());
                let decision = match r.gate_on.score {
                    Some(v) if v >= threshold => "accept",
                    Some(_) => "reject",
                    None => "reject (gated)",
                };
                let _ = writeln!(
                    s,
                    "| `{path}` | {class} | {kind} | {} | {} | {} | {} | {decision} |",
                    status_str(r.gate_on.status),
                    score(r.gate_on.score),
                    if r.gate_on.reasons.is_empty() {
                        "–".to_string()
                    } else {
                        r.gate_on.reasons.join(", ")
                    },
                    score(r.gate_off.as_ref().and_then(|g| g.score)),
                );
            }
            Err(e) => {
                let _ = writeln!(
                    s,
                    "| `{path}` | {class} | {kind} | ERROR {} | – | {} | – | – |",
                    e.code,
                    md(&e.message)
                );
            }
        }
    }
    if outcomes.len() > MAX_REPORT_ROWS {
        let _ = writeln!(
            s,
            "\n(first {MAX_REPORT_ROWS} of {} images; all are in scores.csv)",
            outcomes.len()
        );
    }
    s
}

fn write_scores_csv(path: &Path, outcomes: &[Outcome], threshold: f32) -> Result<()> {
    let mut s = String::from(
        "path,class,attack_type,gate_on_status,gate_on_score,gate_on_reasons,gate_on_decision,gate_off_status,gate_off_score,gate_off_decision,error\n",
    );
    let decision = |x: Option<f32>| match x {
        Some(v) if v >= threshold => "accept",
        _ => "reject",
    };
    for o in outcomes {
        let path = csv_field(&o.item.path.display().to_string());
        let class = o.item.class_name();
        let kind = csv_field(o.item.class.attack_type().unwrap_or(""));
        match &o.result {
            Ok(r) => {
                let (off_status, off_score, off_decision) = match &r.gate_off {
                    Some(g) => (
                        status_str(g.status),
                        g.score.map(|v| v.to_string()).unwrap_or_default(),
                        decision(g.score),
                    ),
                    None => ("", String::new(), ""),
                };
                let _ = writeln!(
                    s,
                    "{path},{class},{kind},{},{},{},{},{off_status},{off_score},{off_decision},",
                    status_str(r.gate_on.status),
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
    std::fs::write(path, s).with_context(|| format!("writing {}", path.display()))
}

fn det_operating_point(set: &ScoreSet, threshold: f64) -> Result<Option<DetPoint>> {
    let op = set.at(threshold)?;
    Ok(
        match (op.apcer_max.and_then(|r| r.value()), op.bpcer.value()) {
            (Some(apcer), Some(bpcer)) => Some(DetPoint {
                threshold,
                apcer,
                bpcer,
            }),
            _ => None,
        },
    )
}

pub fn eval(args: EvalArgs) -> Result<ExitCode> {
    let EvalArgs { data, out, config } = args;
    let collected = collect(&data.live, Some(&data.spoof), data.attack_types.as_deref())?;
    let pipeline = config.load_local_pipeline().context("loading models")?;
    let (outcomes, models) = run_all(&pipeline, &collected.items, true, "eval")?;
    let threshold = pipeline.config().decision.liveness_threshold;
    let policy = data.gate_policy.policy();
    let (on, off) = samples(&outcomes);
    let label = model_label(&pipeline);

    let set_on = ScoreSet::new(&on, policy)?;
    let set_off = ScoreSet::new(&off, policy)?;
    let report_on = EvalReport::new(&set_on, f64::from(threshold), format!("{label}, gate on"))?;
    let report_off = EvalReport::new(&set_off, f64::from(threshold), format!("{label}, gate off"))?;

    let mut attack_per_type: BTreeMap<String, usize> = BTreeMap::new();
    for i in &collected.items {
        if let Some(t) = i.class.attack_type() {
            *attack_per_type.entry(t.to_string()).or_default() += 1;
        }
    }
    let errors: Vec<ImageError> = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err().cloned())
        .collect();
    let output = EvalOutput {
        live_dir: data.live.display().to_string(),
        spoof_dir: data.spoof.display().to_string(),
        attack_types_file: data.attack_types.as_ref().map(|p| p.display().to_string()),
        models,
        liveness_models: label.clone(),
        threshold,
        gate_policy: data.gate_policy.name(),
        gate_policy_explained: data.gate_policy.explain(),
        images: ImageCounts {
            bona_fide: collected
                .items
                .iter()
                .filter(|i| i.class.is_bona_fide())
                .count(),
            attack: collected
                .items
                .iter()
                .filter(|i| !i.class.is_bona_fide())
                .count(),
            attack_per_type,
            errors: errors.len(),
            ignored_files: collected
                .ignored
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
        },
        gate_on: GateSection {
            description: "the service as deployed: quality gate, then liveness; QUALITY_FAILED \
                          and NO_FACE are gated"
                .into(),
            bona_fide: status_counts(&outcomes, true, true),
            attack: status_counts(&outcomes, false, true),
            report: report_on,
        },
        gate_off: GateSection {
            description: "enable_checks=false: liveness on every image with a face; only \
                          NO_FACE is gated"
                .into(),
            bona_fide: status_counts(&outcomes, true, false),
            attack: status_counts(&outcomes, false, false),
            report: report_off,
        },
        errors,
        notes: collected.notes.clone(),
    };

    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let summary = eval_summary(&output, &out);

    let mut full = summary.clone();
    let _ = writeln!(full, "\n## Gate on: full report\n");
    let _ = writeln!(
        full,
        "{}\n",
        demote_headings(&output.gate_on.report.to_markdown())
    );
    let _ = writeln!(full, "## Gate off: full report\n");
    let _ = writeln!(
        full,
        "{}\n",
        demote_headings(&output.gate_off.report.to_markdown())
    );
    let _ = writeln!(full, "## Per image\n");
    let _ = writeln!(full, "{}", per_image_table(&outcomes, threshold));
    if !output.images.ignored_files.is_empty() {
        let _ = writeln!(full, "\nIgnored (not images):\n");
        for f in &output.images.ignored_files {
            let _ = writeln!(full, "- `{}`", md(f));
        }
    }

    std::fs::write(out.join("report.md"), &full)
        .with_context(|| format!("writing {}", out.join("report.md").display()))?;
    std::fs::write(
        out.join("report.json"),
        serde_json::to_string_pretty(&output)?,
    )
    .with_context(|| format!("writing {}", out.join("report.json").display()))?;
    write_scores_csv(&out.join("scores.csv"), &outcomes, threshold)?;

    let title = plot::title_with_counts(&format!("{label}, gate on"), &set_on.counts());
    let op = det_operating_point(&set_on, f64::from(threshold))?;
    plot::det_curve(
        &set_on.det_points(),
        op.as_ref(),
        &format!("DET: {title}"),
        &out.join("det.png"),
        &out.join("det.svg"),
    )?;
    plot::score_histogram(
        &on,
        f64::from(threshold),
        HIST_BINS,
        &format!("Liveness scores: {title}"),
        &out.join("hist.png"),
        &out.join("hist.svg"),
    )?;

    print!("{summary}");
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------------
// ekyc calibrate
// ---------------------------------------------------------------------------------------------

fn print_calibration(cal: &Calibration, target: Target) {
    match target {
        Target::Apcer(x) => println!(
            "Target: APCER ≤ {} (the threshold with the lowest BPCER among those meeting it)",
            pct(x)
        ),
        Target::Bpcer(x) => println!(
            "Target: BPCER ≤ {} (the threshold with the lowest APCER among those meeting it)",
            pct(x)
        ),
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
    println!(
        "{apcer_label}{worst}: {}",
        opt_rate_text(cal.apcer_max.as_ref())
    );
    for (k, r) in &cal.apcer_per_type {
        println!("  APCER {k}: {}", rate_text(r));
    }
    println!("{bpcer_label}: {}", opt_rate_text(cal.bpcer.as_ref()));
}

pub fn calibrate(args: CalibrateArgs) -> Result<ExitCode> {
    let CalibrateArgs {
        data,
        target_apcer,
        target_bpcer,
        write_env,
        config,
    } = args;
    let target = match (target_apcer, target_bpcer) {
        (Some(x), None) => Target::Apcer(x),
        (None, Some(x)) => Target::Bpcer(x),
        _ => bail!("give exactly one of --target-apcer and --target-bpcer"),
    };
    let collected = collect(&data.live, Some(&data.spoof), data.attack_types.as_deref())?;
    let pipeline = config.load_local_pipeline().context("loading models")?;
    let (outcomes, _) = run_all(&pipeline, &collected.items, false, "calibrate")?;
    let (on, _) = samples(&outcomes);
    let policy = data.gate_policy.policy();
    let set = ScoreSet::new(&on, policy)?;
    let cal = set.calibrate(target)?;
    let counts = set.counts();
    let a = counts.attack_total();

    println!(
        "Calibration of the liveness threshold on {} bona fide + {} attack images ({}), gate on, \
         gate policy {}.",
        counts.bona_fide.total,
        a.total,
        model_label(&pipeline),
        data.gate_policy.name()
    );
    println!(
        "Gated (quality gate or no face): bona fide {}, attacks {}. {}",
        counts.bona_fide.gated,
        a.gated,
        data.gate_policy.explain()
    );
    let errors: Vec<&ImageError> = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err())
        .collect();
    if !errors.is_empty() {
        println!("Could not be evaluated ({}):", errors.len());
        for e in &errors {
            println!("  {} ({}): {} {}", e.path, e.class, e.code, e.message);
        }
    }
    let current = pipeline.config().decision.liveness_threshold;
    let now = set.at(f64::from(current))?;
    println!(
        "At the current threshold {current}: APCER {}, BPCER {}",
        opt_rate_text(now.apcer_max.map(|r| r.summary()).as_ref()),
        rate_text(&now.bpcer.summary())
    );
    println!();
    print_calibration(&cal, target);
    if !cal.notes.is_empty() {
        println!("Notes:");
        for n in &cal.notes {
            println!("  - {n}");
        }
    }
    let Some(t) = cal.threshold else {
        println!("No threshold meets the target on this data; nothing to set.");
        return Ok(ExitCode::from(1));
    };
    let value = threshold_f32(t);
    println!(
        "Chosen threshold: {value} (accept iff liveness_score ≥ {value}; chosen on this data, \
         so the rates above are optimistic for new data)"
    );
    println!("EKYC_LIVENESS_THRESHOLD={value}");
    if let Some(path) = write_env {
        update_env_file(
            &path,
            &[("EKYC_LIVENESS_THRESHOLD".to_string(), value.to_string())],
        )?;
        eprintln!(
            "wrote EKYC_LIVENESS_THRESHOLD={value} to {}",
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------------
// ekyc calibrate-quality
// ---------------------------------------------------------------------------------------------

/// Which side of a metric a limit bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Side {
    Min,
    Max,
}

/// One configurable limit of the quality gate (a check row of `ekyc_core::quality::LIMITS`).
struct Bound {
    /// The metric's name (`|name|` when held to its limit by magnitude).
    label: String,
    metric: Metric,
    side: Side,
    env: &'static str,
    current: f32,
    /// Valid range of the metric (suggestions are clamped to it).
    range: (f64, f64),
    /// Decimals printed in the env line.
    decimals: usize,
    /// The metric is capped at 1 (face_inside_ratio): the safety factor applies to 1 − value.
    complement: bool,
}

impl Bound {
    /// The value the limit is compared with.
    fn value(&self, q: &QualityScores) -> Option<f32> {
        self.metric.get(q).map(|v| self.metric.compared(v))
    }
}

/// The gate's checks, from its table.
fn bounds(cfg: &QualityLimits) -> Vec<Bound> {
    cfg.iter()
        .filter_map(|(d, current)| {
            let Kind::Check { metric, side, .. } = d.kind else {
                return None;
            };
            Some(Bound {
                label: if metric.by_magnitude() {
                    format!("|{}|", metric.name())
                } else {
                    metric.name().to_string()
                },
                metric,
                side: match side {
                    GateSide::Min => Side::Min,
                    GateSide::Max => Side::Max,
                },
                env: d.env,
                current,
                range: metric.range(),
                decimals: metric.decimals(),
                complement: metric == Metric::FaceInsideRatio,
            })
        })
        .collect()
}

/// Safety factor of the suggestion rule (see [`suggest`]).
const SAFETY: f64 = 0.8;

/// Linear-interpolation percentile (numpy's default) of sorted values, `q` in [0, 1].
fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let pos = q.clamp(0.0, 1.0) * last as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let (a, b) = (*sorted.get(lo)?, *sorted.get(hi)?);
    Some(a + (b - a) * (pos - lo as f64))
}

/// Rounds a bound outward (min side down, max side up) at `decimals`, so rounding never makes
/// it stricter.
fn round_outward(v: f64, side: Side, decimals: usize) -> f64 {
    let f = 10f64.powi(decimals as i32);
    match side {
        Side::Min => (v * f).floor() / f,
        Side::Max => (v * f).ceil() / f,
    }
}

/// The rule: min-side limits get `0.8 × p1` (for face_inside_ratio, capped at 1, the factor
/// applies to the share outside: `1 − (1 − p1) / 0.8`); max-side limits get `p99 / 0.8`
/// (= 1.25 × p99). Percentiles by linear interpolation; with fewer than 100 captures p1 and p99
/// are close to the minimum and maximum. Clamped to the metric's range, rounded outward.
fn data_bound(b: &Bound, sorted: &[f64]) -> Option<f64> {
    let v = match b.side {
        Side::Min => {
            let p1 = percentile(sorted, 0.01)?;
            if b.complement {
                1.0 - (1.0 - p1) / SAFETY
            } else {
                p1 * SAFETY
            }
        }
        Side::Max => percentile(sorted, 0.99)? / SAFETY,
    };
    Some(round_outward(
        v.clamp(b.range.0, b.range.1),
        b.side,
        b.decimals,
    ))
}

/// Suggested limit: the current one when it already admits the data bound (it passes these
/// captures with the safety margin), else the data bound. It only ever loosens: bona fide
/// captures show how loose the gate must be for this camera, not how strict it may be
/// (tightening needs examples of bad captures).
fn suggest(b: &Bound, data: f64) -> f64 {
    let current = f64::from(b.current);
    match b.side {
        Side::Min if current <= data => current,
        Side::Max if current >= data => current,
        _ => data,
    }
}

#[derive(Debug, Serialize)]
struct BoundReport {
    metric: String,
    side: Side,
    env: &'static str,
    n: usize,
    min: Option<f64>,
    p5: Option<f64>,
    median: Option<f64>,
    p95: Option<f64>,
    max: Option<f64>,
    current: f32,
    /// Captures the current limit rejects on this metric.
    current_rejects: usize,
    data_bound: Option<f64>,
    suggested: f64,
}

#[derive(Debug, Serialize)]
struct QualityCalibration {
    live_dir: String,
    images: usize,
    measured: usize,
    no_face: usize,
    errors: Vec<ImageError>,
    /// Images the current gate rejects: (path, reason codes).
    currently_rejected: Vec<(String, Vec<String>)>,
    rule: &'static str,
    bounds: Vec<BoundReport>,
}

const QUALITY_RULE: &str = "data bound: min-side limits 0.8 × p1 (face_inside_ratio, capped at 1: \
     1 − (1 − p1)/0.8), max-side limits p99/0.8 = 1.25 × p99; percentiles by linear \
     interpolation (close to min/max below 100 captures), clamped to the metric's range and \
     rounded outward. suggested = the current limit if it already admits the data bound, else \
     the data bound: bona fide captures show how loose the gate must be for this camera, never \
     how strict it may be, so the suggestion only loosens.";

fn fmt_num(v: Option<f64>, decimals: usize) -> String {
    v.map(|v| format!("{v:.decimals$}"))
        .unwrap_or_else(|| "–".into())
}

pub fn calibrate_quality(args: CalibrateQualityArgs) -> Result<ExitCode> {
    let CalibrateQualityArgs {
        live,
        out,
        write_env,
        config,
    } = args;
    let collected = collect(&live, None, None)?;
    let pipeline = config.load_local_pipeline().context("loading models")?;
    let (outcomes, _) = run_all(&pipeline, &collected.items, false, "quality")?;
    let cfg = pipeline.config().quality.clone();

    let measured: Vec<(&Outcome, &Runs)> = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().ok().map(|r| (o, r)))
        .collect();
    let errors: Vec<ImageError> = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err().cloned())
        .collect();
    let no_face = measured
        .iter()
        .filter(|(_, r)| r.gate_on.status == Status::NoFace)
        .count();
    let currently_rejected: Vec<(String, Vec<String>)> = measured
        .iter()
        .filter(|(_, r)| !r.gate_on.reasons.is_empty())
        .map(|(o, r)| (o.item.path.display().to_string(), r.gate_on.reasons.clone()))
        .collect();

    let mut reports = Vec::new();
    for b in bounds(&cfg) {
        let mut values: Vec<f64> = measured
            .iter()
            .filter_map(|(_, r)| b.value(&r.quality))
            .map(f64::from)
            .filter(|v| v.is_finite())
            .collect();
        values.sort_by(f64::total_cmp);
        let current = f64::from(b.current);
        let current_rejects = values
            .iter()
            .filter(|v| match b.side {
                Side::Min => **v < current,
                Side::Max => **v > current,
            })
            .count();
        let data = data_bound(&b, &values);
        reports.push(BoundReport {
            metric: b.label.clone(),
            side: b.side,
            env: b.env,
            n: values.len(),
            min: values.first().copied(),
            p5: percentile(&values, 0.05),
            median: percentile(&values, 0.5),
            p95: percentile(&values, 0.95),
            max: values.last().copied(),
            current: b.current,
            current_rejects,
            data_bound: data,
            suggested: data.map(|d| suggest(&b, d)).unwrap_or(current),
        });
    }
    let decimals: BTreeMap<&str, usize> =
        bounds(&cfg).iter().map(|b| (b.env, b.decimals)).collect();

    println!(
        "Quality-gate calibration on {} bona fide captures in {} ({} measured, {} without a face, \
         {} could not be read).",
        outcomes.len(),
        live.display(),
        measured.len(),
        no_face,
        errors.len()
    );
    println!("Rule: {QUALITY_RULE}");
    println!();
    println!(
        "| metric | limit | n | min | p5 | median | p95 | max | current | current rejects | data bound | suggested |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &reports {
        let d = decimals.get(r.env).copied().unwrap_or(3);
        let side = match r.side {
            Side::Min => "min",
            Side::Max => "max",
        };
        println!(
            "| {} | {side} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            md(&r.metric),
            r.n,
            fmt_num(r.min, d),
            fmt_num(r.p5, d),
            fmt_num(r.median, d),
            fmt_num(r.p95, d),
            fmt_num(r.max, d),
            fmt_num(Some(f64::from(r.current)), d),
            r.current_rejects,
            fmt_num(r.data_bound, d),
            fmt_num(Some(r.suggested), d),
        );
    }
    println!();
    if currently_rejected.is_empty() {
        println!("The current gate passes every measured capture.");
    } else {
        println!(
            "The current gate rejects {} of {} measured captures:",
            currently_rejected.len(),
            measured.len()
        );
        for (p, reasons) in &currently_rejected {
            println!("  {p}: {}", reasons.join(", "));
        }
    }
    for e in &errors {
        println!(
            "  could not be evaluated: {} ({}: {})",
            e.path, e.code, e.message
        );
    }
    println!();
    println!("Suggested limits (nothing is changed without --write-env):");
    let mut env: Vec<(String, String)> = Vec::new();
    for r in &reports {
        let d = decimals.get(r.env).copied().unwrap_or(3);
        let value = format!("{:.d$}", r.suggested);
        println!("{}={value}", r.env);
        env.push((r.env.to_string(), value));
    }

    let result = QualityCalibration {
        live_dir: live.display().to_string(),
        images: outcomes.len(),
        measured: measured.len(),
        no_face,
        errors,
        currently_rejected,
        rule: QUALITY_RULE,
        bounds: reports,
    };
    if let Some(path) = out {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, serde_json::to_string_pretty(&result)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = write_env {
        update_env_file(&path, &env)?;
        eprintln!("wrote {} limits to {}", env.len(), path.display());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_f32_keeps_decisions() {
        // A score itself stays; next_up(max) in f64 must not round back to the max score.
        let s = 0.734_567_9_f32;
        assert_eq!(threshold_f32(f64::from(s)), s);
        let above = f64::from(s).next_up();
        let t = threshold_f32(above);
        assert!(t > s && f64::from(t) >= above);
        assert_eq!(t.to_string().parse::<f32>().ok(), Some(t));
    }

    #[test]
    fn percentiles_interpolate() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(percentile(&v, 0.5), Some(3.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&v, 1.0), Some(5.0));
        assert_eq!(percentile(&v, 0.25), Some(2.0));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn suggestion_only_loosens() {
        let all = bounds(&QualityLimits::default());
        let sharp = all.iter().find(|b| b.env == "EKYC_MIN_SHARPNESS");
        let Some(sharp) = sharp else {
            panic!("sharpness bound missing")
        };
        // Data far above the limit: keep the current limit.
        assert_eq!(suggest(sharp, 500.0), f64::from(sharp.current));
        // Data bound below the limit: loosen to it.
        assert_eq!(suggest(sharp, 10.0), 10.0);
        let inside = all.iter().find(|b| b.env == "EKYC_MIN_FACE_INSIDE");
        let Some(inside) = inside else {
            panic!("inside bound missing")
        };
        // All captures fully inside: the data bound is 1.0, the current 0.97 stays.
        assert_eq!(data_bound(inside, &[1.0, 1.0, 1.0]), Some(1.0));
        assert_eq!(suggest(inside, 1.0), f64::from(inside.current));
    }

    #[test]
    fn env_file_lines_are_replaced_or_appended() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join(".env");
        std::fs::write(&p, "# c\nEKYC_LIVENESS_THRESHOLD=0.5\nOTHER=1\n").expect("write");
        update_env_file(
            &p,
            &[
                ("EKYC_LIVENESS_THRESHOLD".into(), "0.7".into()),
                ("EKYC_MAX_YAW".into(), "0.4".into()),
            ],
        )
        .expect("update");
        let text = std::fs::read_to_string(&p).expect("read");
        assert_eq!(
            text,
            "# c\nEKYC_LIVENESS_THRESHOLD=0.7\nOTHER=1\nEKYC_MAX_YAW=0.4\n"
        );
    }

    #[test]
    fn attack_type_mapping_parses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("t.csv");
        std::fs::write(
            &p,
            "# x\nfile,attack_type\na.jpg,print\nsub/b.png, replay\n",
        )
        .expect("w");
        let m = read_attack_types(&p).expect("parse");
        assert_eq!(m.get("a.jpg").map(String::as_str), Some("print"));
        assert_eq!(m.get("sub/b.png").map(String::as_str), Some("replay"));
        std::fs::write(&p, "a.jpg\n").expect("w");
        assert!(read_attack_types(&p).is_err());
    }
}
