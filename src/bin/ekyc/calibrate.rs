//! `ekyc calibrate` (the liveness threshold for an APCER or BPCER target) and
//! `ekyc calibrate-quality` (quality-gate limits from bona fide captures of one camera): flags,
//! printing and the optional `.env` update; the calculations are [`ekyc_eval::ScoreSet::calibrate`]
//! and [`ekyc_eval::quality_calibration`].

use crate::eval::{collect_data, run_with_progress, write, DataArgs};
use anyhow::{bail, Context, Result};
use clap::{ArgGroup, Args};
use ekyc_eval::report::calibration_text;
use ekyc_eval::retry::choose_band;
use ekyc_eval::run::{model_label, samples, threshold_f32};
use ekyc_eval::{quality_calibration, ScoreSet, Target};
use ekyc_liveness::Settings;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `ekyc calibrate`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("target").required(true).args(["target_apcer", "target_bpcer"])))]
pub(crate) struct CalibrateArgs {
    #[command(flatten)]
    pub(crate) data: DataArgs,
    /// Highest acceptable APCER (fraction, 0.05 = 5 %): the threshold with the lowest BPCER
    /// among those with APCER ≤ X on this data (banking-grade: small X).
    #[arg(long, value_name = "X")]
    pub(crate) target_apcer: Option<f64>,
    /// Highest acceptable BPCER (fraction): the threshold with the lowest APCER among those with
    /// BPCER ≤ X on this data (low friction: small X).
    #[arg(long, value_name = "X")]
    pub(crate) target_bpcer: Option<f64>,
    /// Also choose the RETRY band: the narrowest band around the chosen threshold whose decided
    /// captures (outside the band) have APCER (attack types pooled) ≤ X; with
    /// --retry-max-bpcer, both targets (the one not given is not constrained).
    #[arg(long, value_name = "X")]
    pub(crate) retry_max_apcer: Option<f64>,
    /// See --retry-max-apcer: the decided captures' BPCER ≤ X.
    #[arg(long, value_name = "X")]
    pub(crate) retry_max_bpcer: Option<f64>,
    /// First fit a Platt scaling of the score (equal class weights; docs/ensembles.md) and choose
    /// the threshold and band on the calibrated scores; prints `EKYC_LIVENESS_CALIBRATION=a,b`
    /// and the manifest's `[[calibration]]` entry for this ensemble.
    #[arg(long)]
    pub(crate) platt: bool,
    /// Also write `EKYC_LIVENESS_THRESHOLD=<value>` (and `EKYC_RETRY_BAND`,
    /// `EKYC_LIVENESS_CALIBRATION`, when chosen) into FILE (the lines are replaced if present).
    #[arg(long, value_name = "FILE")]
    pub(crate) write_env: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) config: Settings,
}

/// `ekyc calibrate-quality`.
#[derive(Args, Debug)]
pub(crate) struct CalibrateQualityArgs {
    /// Folder of bona fide captures from the camera to calibrate for; sub-folders are included.
    #[arg(long, value_name = "DIR")]
    pub(crate) live: PathBuf,
    /// Write the measurements and suggestions as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    /// Write the suggested `EKYC_*` limits into FILE (existing lines for the same keys are
    /// replaced). Without it nothing is changed.
    #[arg(long, value_name = "FILE")]
    pub(crate) write_env: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) config: Settings,
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
        let key = entries.iter().find(|(k, _)| {
            bare.strip_prefix(k.as_str())
                .is_some_and(|r| r.starts_with('='))
        });
        match key {
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
    write(path, text)
}

pub(crate) fn calibrate(args: CalibrateArgs) -> Result<ExitCode> {
    let CalibrateArgs {
        data,
        target_apcer,
        target_bpcer,
        retry_max_apcer,
        retry_max_bpcer,
        platt,
        write_env,
        config,
    } = args;
    let target = match (target_apcer, target_bpcer) {
        (Some(x), None) => Target::Apcer(x),
        (None, Some(x)) => Target::Bpcer(x),
        _ => bail!("give exactly one of --target-apcer and --target-bpcer"),
    };
    let collected = collect_data(&data.live, Some(&data.spoof), data.attack_types.as_deref())?;
    let pipeline = config.load_local_pipeline().context("loading models")?;
    let run = run_with_progress(&pipeline, &collected.items, false, "calibrate")?;
    let (measured, _) = samples(&run.runs);
    let current = pipeline.config().decision.liveness_threshold;
    let now = ScoreSet::new(&measured, data.gate_policy)?.at(f64::from(current))?;
    let mut entries = Vec::new();
    let on = if platt {
        // Fitted on the scores as the service gives them now (through its current calibration),
        // so the setting is the composition of both.
        let fit = ekyc_eval::platt::fit(&measured)?;
        let before = pipeline.config().decision.calibration.platt();
        let total = before.then(fit.platt);
        println!(
            "Platt scaling ({} bona fide, {} attacks, classes weighted equally): a = {:.4}, b = {:.4} \
             over the current calibration ({}); weighted log-loss {:.4} → {:.4}",
            fit.bona_fide,
            fit.attacks,
            fit.platt.a,
            fit.platt.b,
            pipeline.config().decision.calibration.describe(),
            fit.log_loss_before,
            fit.log_loss_after
        );
        let names: Vec<String> = pipeline
            .ensemble()
            .models()
            .iter()
            .map(|m| format!("{:?}", m.name))
            .collect();
        println!("EKYC_LIVENESS_CALIBRATION={total}");
        println!(
            "# or, for this ensemble by default, in models/manifest.toml:\n[[calibration]]\nmodels = [{}]\nfusion = \"{}\"\nplatt = [{}, {}]",
            names.join(", "),
            pipeline.ensemble().fusion().as_str(),
            total.a,
            total.b
        );
        entries.push(("EKYC_LIVENESS_CALIBRATION".to_string(), total.to_string()));
        ekyc_eval::platt::rescore(&measured, fit.platt)
    } else {
        measured
    };
    let set = ScoreSet::new(&on, data.gate_policy)?;
    let cal = set.calibrate(target)?;
    print!(
        "{}",
        calibration_text(
            &set.counts(),
            &model_label(&pipeline),
            data.gate_policy,
            &run.errors(),
            current,
            &now,
            &cal,
            target,
        )
    );
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
    entries.push(("EKYC_LIVENESS_THRESHOLD".to_string(), value.to_string()));
    let mut code = ExitCode::SUCCESS;
    if retry_max_apcer.is_some() || retry_max_bpcer.is_some() {
        let (max_a, max_b) = (
            retry_max_apcer.unwrap_or(1.0),
            retry_max_bpcer.unwrap_or(1.0),
        );
        match choose_band(&on, f64::from(value), max_a, max_b) {
            Some(c) => {
                let pct = |r: &ekyc_eval::stats::RateSummary| {
                    format!(
                        "{}/{} = {}",
                        r.errors,
                        r.total,
                        r.value
                            .map(|v| format!("{:.1} %", v * 100.0))
                            .unwrap_or_else(|| "n/a".into())
                    )
                };
                println!(
                    "RETRY band ±{:.2} (decided APCER ≤ {max_a}, BPCER ≤ {max_b}; scored captures only): \
                     RETRY bona fide {}, attacks {}; decided BPCER {}, APCER (pooled) {}",
                    c.band,
                    pct(&c.bona_fide_retry),
                    pct(&c.attack_retry),
                    pct(&c.bpcer_decided),
                    pct(&c.apcer_decided)
                );
                println!("EKYC_RETRY_BAND={:.2}", c.band);
                entries.push(("EKYC_RETRY_BAND".to_string(), format!("{:.2}", c.band)));
            }
            None => {
                println!("No RETRY band below 0.5 meets APCER ≤ {max_a} and BPCER ≤ {max_b} on this data.");
                code = ExitCode::from(1);
            }
        }
    }
    if let Some(path) = write_env {
        update_env_file(&path, &entries)?;
        let keys: Vec<String> = entries.iter().map(|(k, v)| format!("{k}={v}")).collect();
        eprintln!("wrote {} to {}", keys.join(", "), path.display());
    }
    Ok(code)
}

pub(crate) fn calibrate_quality(args: CalibrateQualityArgs) -> Result<ExitCode> {
    let CalibrateQualityArgs {
        live,
        out,
        write_env,
        config,
    } = args;
    let collected = collect_data(&live, None, None)?;
    let pipeline = config.load_local_pipeline().context("loading models")?;
    let run = run_with_progress(&pipeline, &collected.items, false, "quality")?;
    let result = quality_calibration::calibrate(
        &live.display().to_string(),
        &run.runs,
        &pipeline.config().quality,
    );
    print!("{}", result.to_text());
    if let Some(path) = out {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        write(&path, serde_json::to_string_pretty(&result)?)?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = write_env {
        let env = result.env_entries();
        update_env_file(&path, &env)?;
        eprintln!("wrote {} limits to {}", env.len(), path.display());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
