//! `ekyc eval-gate`: the quality gate against labels by eye (`testdata/labels/*.csv`): how many
//! acceptable captures pass, and for each labelled reason how many are rejected, and with that
//! reason. The counting is [`ekyc_eval::gate_labels`]; this file reads the files and runs the gate.

use anyhow::{bail, Context, Result};
use clap::Args;
use ekyc_core::{CheckOptions, Status};
use ekyc_eval::gate_labels::{parse_labels, GateReport, Outcome};
use ekyc_liveness::Settings;
use std::path::PathBuf;
use std::process::ExitCode;

/// `ekyc eval-gate`.
#[derive(Args, Debug)]
pub(crate) struct GateArgs {
    /// Labels CSV: `file,acceptable,reason,note` (see testdata/labels/).
    #[arg(long, value_name = "FILE.csv")]
    labels: PathBuf,
    /// Folder holding the labelled images.
    #[arg(long, value_name = "DIR")]
    images: PathBuf,
    /// Write the Markdown report here (and the JSON next to it, .json).
    #[arg(long, value_name = "FILE.md")]
    out: Option<PathBuf>,
    /// Exit 1 when fewer than this share of the acceptable captures pass (e.g. 0.95).
    #[arg(long, value_name = "SHARE")]
    min_pass: Option<f64>,
    #[command(flatten)]
    config: Settings,
}

pub(crate) fn eval_gate(args: GateArgs) -> Result<ExitCode> {
    let text = std::fs::read_to_string(&args.labels)
        .with_context(|| format!("reading {}", args.labels.display()))?;
    let labels = parse_labels(&text)?;
    if labels.is_empty() {
        bail!("{} has no labelled images", args.labels.display());
    }
    let pipeline = args
        .config
        .load_local_pipeline()
        .context("loading models")?;
    let opts = CheckOptions {
        enable_checks: true,
    };
    let outcomes: Vec<Outcome> = labels
        .into_iter()
        .map(|label| {
            let path = args.images.join(&label.file);
            let got = match std::fs::read(&path) {
                Err(_) => Err("READ_FAILED".to_string()),
                Ok(bytes) => match pipeline.run(&bytes, opts) {
                    Err(e) => Err(e.code().to_string()),
                    Ok(v) if v.status == Status::NoFace => Ok(vec!["NO_FACE".to_string()]),
                    // Only a QUALITY_FAILED verdict's reasons are the gate's; a RETRY's are the
                    // liveness decision's (the gate passed).
                    Ok(v) if v.status == Status::QualityFailed => Ok(v
                        .reasons
                        .iter()
                        .map(|r| r.code.as_str().to_string())
                        .collect()),
                    Ok(_) => Ok(Vec::new()),
                },
            };
            Outcome { label, got }
        })
        .collect();
    let report = GateReport::new(&outcomes);
    let md = report.to_markdown(&args.labels.display().to_string());
    print!("{md}");
    if let Some(out) = &args.out {
        std::fs::write(out, &md).with_context(|| format!("writing {}", out.display()))?;
        let json = out.with_extension("json");
        std::fs::write(&json, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", json.display()))?;
    }
    let share = report.acceptable_pass.value.unwrap_or(0.0);
    Ok(match args.min_pass {
        Some(min) if share < min => {
            eprintln!(
                "acceptable captures passing: {:.1} % < {:.1} %",
                share * 100.0,
                min * 100.0
            );
            ExitCode::from(1)
        }
        _ => ExitCode::SUCCESS,
    })
}
