//! `ekyc eval-ensembles`: measure every combination of candidate liveness models and both fusion
//! rules on labelled sets, and pick the default by the written rule of
//! [`ekyc_eval::ensembles::RULE`].
//!
//! The measurement and the rule are in the library ([`ekyc_eval::ensembles`], [`ekyc_eval::roc`]);
//! this file holds the flags, running the images once (every candidate active, checks off),
//! timing each model, the progress bar, printing and writing files.

use anyhow::{bail, Context, Result};
use clap::Args;
use ekyc_core::{CheckOptions, Pipeline};
use ekyc_eval::dataset::{collect, Item};
use ekyc_eval::ensembles::{
    evaluate, median_ms, scores_csv, CandidateModel, EnsembleConfig, EnsembleReport,
    EnsembleSample, ScoreLine,
};
use ekyc_eval::GatePolicy;
use ekyc_liveness::Settings;
use ekyc_models::manifest::Role;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use crate::eval::write;

/// Faces the CPU cost is measured on (the first ones found, in set order).
const COST_FACES: usize = 30;
/// Timed runs of each model on each of those faces.
const COST_RUNS: usize = 3;

/// One `--set NAME:LIVE_DIR:SPOOF_DIR`.
#[derive(Debug, Clone)]
pub(crate) struct SetArg {
    name: String,
    live: PathBuf,
    spoof: PathBuf,
}

fn parse_set(s: &str) -> Result<SetArg, String> {
    let mut parts = s.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(name), Some(live), Some(spoof))
            if !name.is_empty() && !live.is_empty() && !spoof.is_empty() =>
        {
            Ok(SetArg {
                name: name.to_string(),
                live: PathBuf::from(live),
                spoof: PathBuf::from(spoof),
            })
        }
        _ => Err(format!(
            "expected NAME:LIVE_DIR:SPOOF_DIR (three non-empty parts), got {s:?}"
        )),
    }
}

/// `ekyc eval-ensembles`.
#[derive(Args, Debug)]
pub(crate) struct EnsemblesArgs {
    /// A labelled set: its name, the folder of bona fide captures and the folder of attacks
    /// (sub-folders name attack types, as in `ekyc eval`). Repeat for several sets; the rule
    /// ranks on all of them pooled. NAME and LIVE_DIR cannot contain ':'.
    #[arg(long = "set", value_name = "NAME:LIVE_DIR:SPOOF_DIR", required = true, value_parser = parse_set)]
    sets: Vec<SetArg>,
    /// Candidate liveness models (comma-separated manifest names); default: every liveness model
    /// of the manifest whose file is in the models directory. (--liveness-models is ignored.)
    #[arg(long, value_delimiter = ',', value_name = "A,B,...")]
    models: Vec<String>,
    /// Largest number of models in a combination (default: all candidates).
    #[arg(long, value_name = "K")]
    max_size: Option<usize>,
    /// Combinations whose summed CPU cost per face is above this are not eligible (default: no
    /// budget). Exit status 1 when no combination is within it.
    #[arg(long, value_name = "MS")]
    cpu_budget_ms: Option<f64>,
    /// How captures without a score (no face found) count in EER and BPCER.
    #[arg(long, value_enum, default_value_t = GatePolicy::CountAsRejected)]
    gate_policy: GatePolicy,
    /// Output folder: report.md, report.json, scores.csv.
    #[arg(long, value_name = "DIR", default_value = "out/ensembles")]
    out: PathBuf,
    #[command(flatten)]
    config: Settings,
}

/// Every liveness model of the manifest whose file is present (in the models directory, or
/// embedded in the binary when the directory has no manifest), except stand-ins (`stand_in =
/// true`: random weights for format and speed tests, never a candidate).
fn present_liveness_models(dir: &Path) -> Result<Vec<String>> {
    let files = ekyc_models::source::dir_or_embedded(dir)
        .with_context(|| format!("reading the manifest in {}", dir.display()))?;
    let on_disk = dir.join("manifest.toml").exists();
    let names: Vec<String> = files
        .manifest()
        .models
        .iter()
        .filter(|e| e.role == Role::Liveness && !e.stand_in)
        .filter(|e| {
            if on_disk {
                dir.join(&e.file).is_file()
            } else {
                files.model(e).is_ok()
            }
        })
        .map(|e| e.name.clone())
        .collect();
    if names.is_empty() {
        bail!(
            "no liveness model file is present in {} (run `ekyc models fetch`, or pass --models)",
            dir.display()
        );
    }
    Ok(names)
}

/// What running one image said.
enum Outcome {
    /// The verdict's status and, when a face was found, every candidate's probability.
    Ran {
        status: &'static str,
        probabilities: Option<Vec<f64>>,
    },
    /// Could not be read or run: `CODE: message`.
    Failed(String),
}

struct ImageResult {
    set: String,
    item: Item,
    outcome: Outcome,
}

/// Runs `item` once with checks off; the probabilities in `names` order.
fn run_one(pipeline: &Pipeline, item: &Item, names: &[String]) -> Outcome {
    let bytes = match std::fs::read(&item.path) {
        Ok(b) => b,
        Err(e) => return Outcome::Failed(format!("READ_FAILED: {e}")),
    };
    let v = match pipeline.run(
        &bytes,
        CheckOptions {
            enable_checks: false,
        },
    ) {
        Ok(v) => v,
        Err(e) => return Outcome::Failed(format!("{}: {e}", e.code())),
    };
    let probabilities = if v.scores.is_empty() {
        None
    } else {
        let per: Option<Vec<f64>> = names
            .iter()
            .map(|n| {
                v.scores
                    .iter()
                    .find(|s| &s.model == n)
                    .map(|s| f64::from(s.live_probability))
            })
            .collect();
        match per {
            Some(p) => Some(p),
            None => {
                return Outcome::Failed(format!(
                    "MODEL_MISSING: the verdict lacks a candidate's score (has {:?})",
                    v.scores
                        .iter()
                        .map(|s| s.model.as_str())
                        .collect::<Vec<_>>()
                ))
            }
        }
    };
    Outcome::Ran {
        status: v.status.as_str(),
        probabilities,
    }
}

fn progress_bar(len: usize, prefix: &str) -> Result<ProgressBar> {
    let pb = ProgressBar::new(len as u64);
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:32}] {pos}/{len} images, {elapsed} elapsed, ~{eta} left  {wide_msg}",
        )?
        .progress_chars("=> "),
    );
    pb.set_prefix(prefix.to_string());
    Ok(pb)
}

/// Milliseconds per model (median of every timing) over the first [`COST_FACES`] images with a
/// face, and how many faces that was.
fn measure_cost(pipeline: &Pipeline, results: &[ImageResult]) -> Result<(Vec<f64>, usize)> {
    let models = pipeline.ensemble().models();
    let with_face = results.iter().filter(|r| {
        matches!(
            r.outcome,
            Outcome::Ran {
                probabilities: Some(_),
                ..
            }
        )
    });
    let mut timings: Vec<Vec<f64>> = vec![Vec::new(); models.len()];
    let mut faces = 0;
    for r in with_face {
        if faces == COST_FACES {
            break;
        }
        let path = &r.item.path;
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let decoded = pipeline
            .decode(&bytes)
            .with_context(|| format!("decoding {}", path.display()))?;
        let detections = pipeline
            .detect(&decoded)
            .with_context(|| format!("detecting in {}", path.display()))?;
        let Some(face) = detections.faces.first() else {
            continue;
        };
        for (m, t) in models.iter().zip(timings.iter_mut()) {
            for _ in 0..COST_RUNS {
                let t0 = Instant::now();
                m.score(&decoded.image, &face.bbox)
                    .with_context(|| format!("{} on {}", m.name, path.display()))?;
                t.push(t0.elapsed().as_secs_f64() * 1e3);
            }
        }
        faces += 1;
    }
    if faces == 0 {
        bail!("no image has a face: the models' CPU cost cannot be measured");
    }
    let ms = median_ms(&timings)
        .into_iter()
        .map(|m| m.unwrap_or(f64::NAN))
        .collect();
    Ok((ms, faces))
}

/// report.json: the library's report plus where the data came from and what failed.
#[derive(Serialize)]
struct JsonOut<'a> {
    #[serde(flatten)]
    report: &'a EnsembleReport,
    inputs: Vec<JsonSet<'a>>,
    errors: Vec<JsonError<'a>>,
}

#[derive(Serialize)]
struct JsonSet<'a> {
    name: &'a str,
    live_dir: String,
    spoof_dir: String,
}

#[derive(Serialize)]
struct JsonError<'a> {
    set: &'a str,
    path: String,
    error: &'a str,
}

pub(crate) fn run(args: EnsemblesArgs) -> Result<ExitCode> {
    let EnsemblesArgs {
        sets,
        models,
        max_size,
        cpu_budget_ms,
        gate_policy,
        out,
        config,
    } = args;
    for (i, s) in sets.iter().enumerate() {
        if sets[..i].iter().any(|o| o.name == s.name) {
            bail!("--set {} is given twice", s.name);
        }
    }
    if max_size == Some(0) {
        bail!("--max-size must be at least 1");
    }

    // The data first: a set without bona fide or attack images stops here, before any model loads.
    let mut items: Vec<(String, Item)> = Vec::new();
    for s in &sets {
        let c = collect(&s.live, Some(&s.spoof), None).with_context(|| {
            format!(
                "set {}: needs bona fide images in {} and attack images in {}",
                s.name,
                s.live.display(),
                s.spoof.display()
            )
        })?;
        for n in &c.notes {
            eprintln!("warning: set {}: {n}", s.name);
        }
        let live = c.items.iter().filter(|i| i.class.is_bona_fide()).count();
        if live == 0 || live == c.items.len() {
            bail!(
                "set {} has no {} images",
                s.name,
                if live == 0 { "bona fide" } else { "attack" }
            );
        }
        items.extend(c.items.into_iter().map(|i| (s.name.clone(), i)));
    }

    let candidates = if models.is_empty() {
        present_liveness_models(&config.models.models_dir)?
    } else {
        models
    };
    // The same settings with every candidate active.
    let mut settings = config;
    settings.models.liveness_models = candidates.clone();
    let pipeline = settings
        .load_local_pipeline()
        .with_context(|| format!("loading models {}", candidates.join(", ")))?;
    let names: Vec<String> = pipeline
        .ensemble()
        .models()
        .iter()
        .map(|m| m.name.clone())
        .collect();
    eprintln!("candidates: {}", names.join(", "));

    let pb = progress_bar(items.len(), "eval-ensembles")?;
    let mut results = Vec::with_capacity(items.len());
    for (set, item) in items {
        pb.set_message(
            item.path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default(),
        );
        let outcome = run_one(&pipeline, &item, &names);
        results.push(ImageResult { set, item, outcome });
        pb.inc(1);
    }
    pb.finish_and_clear();

    eprintln!("measuring CPU cost ({COST_RUNS} runs per model per face) ...");
    let (cost_ms, cost_faces) = measure_cost(&pipeline, &results)?;
    let candidates: Vec<CandidateModel> = pipeline
        .ensemble()
        .models()
        .iter()
        .zip(&cost_ms)
        .map(|(m, &ms)| CandidateModel {
            name: m.name.clone(),
            weight: f64::from(m.spec.weight),
            cpu_ms: ms,
        })
        .collect();

    let samples: Vec<EnsembleSample> = results
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Ran { probabilities, .. } => Some(EnsembleSample {
                id: r.item.path.display().to_string(),
                class: r.item.class.clone(),
                set: r.set.clone(),
                probabilities: probabilities.clone(),
            }),
            Outcome::Failed(_) => None,
        })
        .collect();
    let report = evaluate(
        &candidates,
        &samples,
        &EnsembleConfig {
            policy: gate_policy,
            max_size,
            cpu_budget_ms,
            cost_faces,
        },
    )?;

    let paths: Vec<String> = results
        .iter()
        .map(|r| r.item.path.display().to_string())
        .collect();
    let lines: Vec<ScoreLine<'_>> = results
        .iter()
        .zip(&paths)
        .map(|(r, path)| match &r.outcome {
            Outcome::Ran {
                status,
                probabilities,
            } => ScoreLine {
                path,
                set: &r.set,
                class: &r.item.class,
                status,
                probabilities: probabilities.as_deref(),
                error: None,
            },
            Outcome::Failed(e) => ScoreLine {
                path,
                set: &r.set,
                class: &r.item.class,
                status: "ERROR",
                probabilities: None,
                error: Some(e),
            },
        })
        .collect();
    let errors: Vec<JsonError<'_>> = results
        .iter()
        .zip(&paths)
        .filter_map(|(r, path)| match &r.outcome {
            Outcome::Failed(e) => Some(JsonError {
                set: &r.set,
                path: path.clone(),
                error: e,
            }),
            Outcome::Ran { .. } => None,
        })
        .collect();

    let mut md = report.to_markdown();
    if !errors.is_empty() {
        md.push_str("\n## Images that could not be run (not in any metric)\n\n");
        for e in &errors {
            md.push_str(&format!(
                "- {} ({}): {}\n",
                ekyc_eval::report::md_escape(&e.path),
                ekyc_eval::report::md_escape(e.set),
                ekyc_eval::report::md_escape(e.error)
            ));
        }
    }
    let json = JsonOut {
        report: &report,
        inputs: sets
            .iter()
            .map(|s| JsonSet {
                name: &s.name,
                live_dir: s.live.display().to_string(),
                spoof_dir: s.spoof.display().to_string(),
            })
            .collect(),
        errors,
    };

    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let md_path = out.join("report.md");
    write(&md_path, md)?;
    write(
        &out.join("report.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    write(&out.join("scores.csv"), scores_csv(&names, &lines))?;

    println!("cost measured over {cost_faces} faces");
    println!("{}", report.winner_line());
    println!("report: {}", md_path.display());
    Ok(if report.winner.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
