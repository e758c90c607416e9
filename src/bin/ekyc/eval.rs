//! `ekyc eval` (and the parts `ekyc calibrate`/`calibrate-quality` share, see `calibrate.rs`):
//! measure the pipeline on labelled folders of images with the ISO/IEC 30107-3 metrics of
//! [`ekyc_eval`].
//!
//! The work is in the library: [`ekyc_eval::dataset`] collects the labelled files,
//! [`ekyc_eval::run`] runs them through the service's pipeline (gate on, and for `eval` gate off),
//! [`ekyc_eval::report`] renders the summary, report.md and scores.csv, and
//! [`ekyc_eval::quality_calibration`] suggests quality-gate limits. This file holds the flags, the
//! progress bar, printing and writing files.

use anyhow::{Context, Result};
use clap::Args;
use ekyc_core::Pipeline;
use ekyc_eval::dataset::{collect, Collected, Item};
use ekyc_eval::report::{scores_csv, EvalOutput, EvalOutputInput};
use ekyc_eval::retry::RetrySummary;
use ekyc_eval::run::{model_label, run_all, samples, RunOutput};
use ekyc_eval::{plot, EvalReport, GatePolicy, ScoreSet};
use ekyc_liveness::Settings;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Bins of the score histogram.
const HIST_BINS: usize = 20;

/// The labelled data: bona fide and attack folders.
#[derive(Args, Debug)]
pub(crate) struct DataArgs {
    /// Folder of bona fide (live) captures; sub-folders are included.
    #[arg(long, value_name = "DIR")]
    pub(crate) live: PathBuf,
    /// Folder of presentation attacks. Each sub-folder is one attack type named after it
    /// (print/, replay/, mask/, ...); images directly in DIR have attack type "unknown" unless
    /// --attack-types names them.
    #[arg(long, value_name = "DIR")]
    pub(crate) spoof: PathBuf,
    /// CSV mapping attack image → attack type: lines `file,attack_type`, where file is the path
    /// relative to --spoof or just the file name; `#` comments and a `file,attack_type` header are
    /// allowed. Overrides the sub-folder name.
    #[arg(long, value_name = "FILE.csv")]
    pub(crate) attack_types: Option<PathBuf>,
    /// How captures without a liveness score (quality gate failed, no face) are counted.
    #[arg(long, value_enum, default_value_t = GatePolicy::CountAsRejected)]
    pub(crate) gate_policy: GatePolicy,
}

/// `ekyc eval`.
#[derive(Args, Debug)]
pub(crate) struct EvalArgs {
    #[command(flatten)]
    pub(crate) data: DataArgs,
    /// Output folder: report.json, report.md, det.png/.svg, hist.png/.svg, scores.csv.
    #[arg(long, value_name = "DIR", default_value = "out/eval")]
    pub(crate) out: PathBuf,
    #[command(flatten)]
    pub(crate) config: Settings,
}

/// Collects the labelled files; prints the mapping's notes as warnings.
pub(crate) fn collect_data(
    live: &Path,
    spoof: Option<&Path>,
    attack_types: Option<&Path>,
) -> Result<Collected> {
    let c = collect(live, spoof, attack_types)?;
    for n in &c.notes {
        eprintln!("warning: {n}");
    }
    Ok(c)
}

/// [`run_all`] with a progress bar on stderr showing the next file's name.
pub(crate) fn run_with_progress(
    pipeline: &Pipeline,
    items: &[Item],
    gate_off: bool,
    what: &str,
) -> Result<RunOutput> {
    let pb = ProgressBar::new(items.len() as u64);
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:32}] {pos}/{len} images, {elapsed} elapsed, ~{eta} left  {wide_msg}",
        )?
        .progress_chars("=> "),
    );
    pb.set_prefix(what.to_string());
    let out = run_all(pipeline, items, gate_off, |done, _| {
        pb.set_position(done as u64);
        if let Some(next) = items.get(done) {
            let name = next
                .path
                .file_name()
                .map(|n| n.to_string_lossy().to_string());
            pb.set_message(name.unwrap_or_default());
        }
    });
    pb.finish_and_clear();
    Ok(out)
}

pub(crate) fn write(path: &Path, contents: impl AsRef<[u8]>) -> Result<()> {
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}

pub(crate) fn eval(args: EvalArgs) -> Result<ExitCode> {
    let EvalArgs { data, out, config } = args;
    let collected = collect_data(&data.live, Some(&data.spoof), data.attack_types.as_deref())?;
    let pipeline = config.load_local_pipeline().context("loading models")?;
    let run = run_with_progress(&pipeline, &collected.items, true, "eval")?;
    let threshold = pipeline.config().decision.liveness_threshold;
    let policy = data.gate_policy;
    let (on, off) = samples(&run.runs);
    let label = model_label(&pipeline);
    // Every attack type found on disk is reported, also one whose images all failed (absent).
    let types = collected.attack_per_type().into_keys().collect::<Vec<_>>();
    let set_on = ScoreSet::new(&on, policy)?.with_attack_types(types.clone());
    let set_off = ScoreSet::new(&off, policy)?.with_attack_types(types);
    let output = EvalOutput::new(EvalOutputInput {
        live_dir: &data.live,
        spoof_dir: &data.spoof,
        attack_types_file: data.attack_types.as_deref(),
        collected: &collected,
        runs: &run.runs,
        models: run.models.clone(),
        label: label.clone(),
        threshold,
        policy,
        report_on: EvalReport::new(&set_on, f64::from(threshold), format!("{label}, gate on"))?,
        report_off: EvalReport::new(&set_off, f64::from(threshold), format!("{label}, gate off"))?,
    });

    let decision = &pipeline.config().decision;
    let retry = RetrySummary::new(&run.runs, decision.retry_band, decision.retry_max_spread);

    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    write(
        &out.join("report.md"),
        format!(
            "{}\n{}",
            output.full_markdown(&run.runs, &out),
            retry.to_markdown()
        ),
    )?;
    write(
        &out.join("retry.json"),
        serde_json::to_string_pretty(&retry)?,
    )?;
    write(
        &out.join("report.json"),
        serde_json::to_string_pretty(&output)?,
    )?;
    write(&out.join("scores.csv"), scores_csv(&run.runs, threshold))?;

    let title = plot::title_with_counts(&format!("{label}, gate on"), &set_on.counts());
    let op = set_on.at(f64::from(threshold))?.det_point();
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

    print!("{}", output.summary_markdown(&out));
    print!("\n{}", retry.to_markdown());
    Ok(ExitCode::SUCCESS)
}
