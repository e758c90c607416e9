//! `ekyc match` (one selfie against one document), `ekyc eval-match` (ISO/IEC 19795-1 FNMR/FMR
//! on labelled comparisons) and `ekyc calibrate-match` (the threshold for a target FMR). The
//! metrics are [`ekyc_eval::face_match`]; this file holds the flags, the embedding of each image
//! once, printing and writing files. Embeddings stay in memory: only similarities are written.

use crate::eval::write;
use anyhow::{bail, Context, Result};
use clap::{ArgGroup, Args};
use ekyc_core::face_match::MatchOptions;
use ekyc_core::pipeline::MatchSide;
use ekyc_core::Pipeline;
use ekyc_eval::face_match::{
    errors_at, pairs_from_identities, parse_pairs, threshold_f32_up, MatchReport, Pair, ScoredPair,
};
use ekyc_eval::plot;
use ekyc_liveness::Settings;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `ekyc match`.
#[derive(Args, Debug)]
pub(crate) struct MatchCmdArgs {
    /// The selfie (JPEG, PNG, WebP).
    pub(crate) selfie: PathBuf,
    /// The identity document's photo page.
    pub(crate) document: PathBuf,
    /// Compare even when the selfie is not LIVE (the default answers no match then).
    #[arg(long)]
    pub(crate) allow_not_live: bool,
    /// Skip the selfie's quality gate (liveness on the largest face).
    #[arg(long)]
    pub(crate) no_checks: bool,
    #[command(flatten)]
    pub(crate) config: Settings,
}

/// The labelled comparisons of `eval-match` and `calibrate-match`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("labels").required(true).args(["pairs", "identities"])))]
pub(crate) struct PairsArgs {
    /// CSV of comparisons `a,b,label` (label genuine or impostor; paths relative to --images).
    #[arg(long, value_name = "FILE.csv")]
    pub(crate) pairs: Option<PathBuf>,
    /// CSV `image,identity`: every pair of images is compared, genuine within an identity and
    /// impostor across (all impostor pairs are used).
    #[arg(long, value_name = "FILE.csv")]
    pub(crate) identities: Option<PathBuf>,
    /// Folder the paths are relative to.
    #[arg(long, value_name = "DIR")]
    pub(crate) images: PathBuf,
    /// Images whose path starts with this are documents (full-range detection first and the
    /// document eye-distance floor); the others are selfies.
    #[arg(long, default_value = "id/")]
    pub(crate) documents_under: String,
}

/// `ekyc eval-match`.
#[derive(Args, Debug)]
pub(crate) struct EvalMatchArgs {
    #[command(flatten)]
    pub(crate) data: PairsArgs,
    /// Output folder: report.json, report.md, det.png/.svg, hist.png/.svg, comparisons.csv.
    #[arg(long, value_name = "DIR", default_value = "out/eval-match")]
    pub(crate) out: PathBuf,
    #[command(flatten)]
    pub(crate) config: Settings,
}

/// `ekyc calibrate-match`.
#[derive(Args, Debug)]
pub(crate) struct CalibrateMatchArgs {
    #[command(flatten)]
    pub(crate) data: PairsArgs,
    /// Highest acceptable FMR (fraction): the lowest threshold whose FMR on these impostor
    /// comparisons is at most X.
    #[arg(long, value_name = "X")]
    pub(crate) target_fmr: f64,
    #[command(flatten)]
    pub(crate) config: Settings,
}

pub(crate) fn match_one(args: MatchCmdArgs) -> Result<ExitCode> {
    let pipeline = args
        .config
        .load_local_pipeline()
        .context("loading models")?;
    let limit = pipeline.config().limits.max_image_bytes;
    let read = |p: &Path| {
        crate::read_bounded(p, limit).map_err(|(code, m)| anyhow::anyhow!("{code}: {m}"))
    };
    let selfie = read(&args.selfie)?;
    let document = read(&args.document)?;
    let opts = MatchOptions {
        require_live: !args.allow_not_live,
        enable_checks: !args.no_checks,
    };
    match pipeline.match_images(&selfie, &document, opts) {
        Ok(out) => {
            println!("{}", serde_json::to_string(&out)?);
            Ok(if out.is_match {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Err((side, e)) => {
            println!(
                "{}",
                serde_json::json!({"error": {"code": e.code(), "message": format!("{}: {e}", side.as_str())}})
            );
            Ok(ExitCode::from(2))
        }
    }
}

fn load_pairs(data: &PairsArgs) -> Result<Vec<Pair>> {
    let read =
        |p: &Path| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()));
    Ok(match (&data.pairs, &data.identities) {
        (Some(p), _) => parse_pairs(&read(p)?).with_context(|| p.display().to_string())?,
        (None, Some(p)) => {
            pairs_from_identities(&read(p)?).with_context(|| p.display().to_string())?
        }
        (None, None) => bail!("give --pairs or --identities"),
    })
}

/// Every comparison scored: each image is decoded and embedded once (as a selfie or as a
/// document), then each pair's cosine. A pair without two embeddings is not scored, with the
/// reason code.
fn score_pairs(pipeline: &Pipeline, data: &PairsArgs, pairs: &[Pair]) -> Result<Vec<ScoredPair>> {
    let mut names: Vec<&str> = pairs
        .iter()
        .flat_map(|p| [p.a.as_str(), p.b.as_str()])
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut embeddings = BTreeMap::new();
    for (i, name) in names.iter().enumerate() {
        let path = data.images.join(name);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let side = if name.starts_with(&data.documents_under) {
            MatchSide::Document
        } else {
            MatchSide::Selfie
        };
        let e = match pipeline.decode(&bytes) {
            Ok(d) => pipeline
                .match_embedding(&d, side)
                .with_context(|| format!("embedding {name}"))?
                .map_err(|c| format!("{name}: {}", c.as_str())),
            Err(e) => Err(format!("{name}: {}", e.code())),
        };
        if let Err(why) = &e {
            eprintln!("[{}/{}] not scored: {why}", i + 1, names.len());
        }
        embeddings.insert(*name, e);
    }
    Ok(pairs
        .iter()
        .map(|p| {
            let (a, b) = (&embeddings[p.a.as_str()], &embeddings[p.b.as_str()]);
            let (similarity, not_scored) = match (a, b) {
                (Ok(a), Ok(b)) => (Some(f64::from(a.cosine(b))), None),
                (Err(w), _) | (_, Err(w)) => (None, Some(w.clone())),
            };
            ScoredPair {
                a: p.a.clone(),
                b: p.b.clone(),
                label: p.label,
                similarity,
                not_scored,
            }
        })
        .collect())
}

fn threshold_of(pipeline: &Pipeline) -> Result<f64> {
    pipeline
        .match_threshold()
        .map(f64::from)
        .context("no face-match threshold: the embedding model has no match_threshold and EKYC_MATCH_THRESHOLD is unset")
}

pub(crate) fn eval_match(args: EvalMatchArgs) -> Result<ExitCode> {
    let EvalMatchArgs { data, out, config } = args;
    let pairs = load_pairs(&data)?;
    let pipeline = config.load_local_pipeline().context("loading models")?;
    let threshold = threshold_of(&pipeline)?;
    let model = pipeline.embedding_model().unwrap_or("none").to_string();
    let scored = score_pairs(&pipeline, &data, &pairs)?;
    let report = MatchReport::new(&model, threshold, scored);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut md = report.markdown();
    md.push_str(&errors_markdown(&report, threshold));
    write(&out.join("report.md"), &md)?;
    write(
        &out.join("report.json"),
        serde_json::to_vec_pretty(&report)?,
    )?;
    let mut csv = String::from("a,b,label,similarity,not_scored\n");
    for c in &report.comparisons {
        csv.push_str(&format!(
            "{},{},{},{},{}\n",
            c.a,
            c.b,
            match c.label {
                ekyc_eval::face_match::PairLabel::Genuine => "genuine",
                ekyc_eval::face_match::PairLabel::Impostor => "impostor",
            },
            c.similarity.map(|s| format!("{s:.6}")).unwrap_or_default(),
            c.not_scored.as_deref().unwrap_or("")
        ));
    }
    write(&out.join("comparisons.csv"), csv)?;
    let s = report.scores();
    let title = format!(
        "{model}: {} genuine, {} impostor comparisons",
        s.genuine.len(),
        s.impostor.len()
    );
    let at = s.at(threshold);
    let op = match (at.fmr.value, at.fnmr.value) {
        (Some(fmr), Some(fnmr)) => Some(ekyc_eval::DetPoint {
            threshold,
            apcer: fmr,
            bpcer: fnmr,
        }),
        _ => None,
    };
    plot::det_curve_labelled(
        &s.det(),
        op.as_ref(),
        &title,
        &plot::DetLabels::MATCH,
        &out.join("det.png"),
        &out.join("det.svg"),
    )?;
    plot::similarity_histogram(
        &s.genuine,
        &s.impostor,
        (s.genuine_not_scored, s.impostor_not_scored),
        threshold,
        30,
        &title,
        &out.join("hist.png"),
        &out.join("hist.svg"),
    )?;
    print!("{md}");
    println!(
        "\nwritten: {}/{{report.md,report.json,comparisons.csv,det.png,det.svg,hist.png,hist.svg}}",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The errors at the threshold, one line each (the "each miss explained" listing).
fn errors_markdown(report: &MatchReport, threshold: f64) -> String {
    let errors = errors_at(report, threshold);
    let mut out = String::new();
    for (kind, title) in [
        (
            "false_non_match",
            "False non-matches (genuine under the threshold)",
        ),
        (
            "false_match",
            "False matches (impostor at or above the threshold)",
        ),
        ("not_scored", "Not scored (failure to acquire)"),
    ] {
        let Some(list) = errors.get(kind) else {
            continue;
        };
        out.push_str(&format!("\n## {title}: {}\n\n", list.len()));
        if kind == "not_scored" {
            // One line per image that could not be used, with how many comparisons it cost.
            let mut per: BTreeMap<&str, usize> = BTreeMap::new();
            for c in list {
                *per.entry(c.not_scored.as_deref().unwrap_or("?"))
                    .or_default() += 1;
            }
            for (why, n) in per {
                out.push_str(&format!("- {why} ({n} comparisons)\n"));
            }
            continue;
        }
        for c in list {
            match c.similarity {
                Some(s) => out.push_str(&format!("- {} vs {}: {s:.4}\n", c.a, c.b)),
                None => out.push_str(&format!(
                    "- {} vs {}: {}\n",
                    c.a,
                    c.b,
                    c.not_scored.as_deref().unwrap_or("?")
                )),
            }
        }
    }
    out
}

pub(crate) fn calibrate_match(args: CalibrateMatchArgs) -> Result<ExitCode> {
    let CalibrateMatchArgs {
        data,
        target_fmr,
        config,
    } = args;
    if !(0.0..=1.0).contains(&target_fmr) {
        bail!("--target-fmr must be a fraction in [0, 1]");
    }
    let pairs = load_pairs(&data)?;
    let pipeline = config.load_local_pipeline().context("loading models")?;
    let model = pipeline.embedding_model().unwrap_or("none").to_string();
    let scored = score_pairs(&pipeline, &data, &pairs)?;
    let report = MatchReport::new(&model, 0.0, scored);
    let s = report.scores();
    let Some(t) = s.threshold_for_fmr(target_fmr) else {
        bail!("no impostor comparison was scored: nothing to calibrate on");
    };
    let t32 = threshold_f32_up(t);
    let p = s.at(f64::from(t32));
    let pct = |r: &ekyc_eval::stats::RateSummary| {
        let w = r
            .wilson95
            .map(|i| (i.lower * 100.0, i.upper * 100.0))
            .unwrap_or_default();
        format!(
            "{:.2} % ({}/{}, Wilson 95 % [{:.2}, {:.2}] %)",
            r.value.unwrap_or(f64::NAN) * 100.0,
            r.errors,
            r.total,
            w.0,
            w.1
        )
    };
    println!(
        "target FMR ≤ {target_fmr}: threshold {t32} on {} genuine and {} impostor comparisons of {model}",
        s.genuine.len(),
        s.impostor.len()
    );
    println!("FMR  {}", pct(&p.fmr));
    println!("FNMR {}", pct(&p.fnmr));
    if let Some(c) =
        ekyc_eval::face_match::claim_support(target_fmr, s.impostor.len()).impostors_needed
    {
        if s.impostor.len() < c {
            println!(
                "note: {} impostor comparisons cannot show FMR ≤ {target_fmr} at 95 % confidence; that needs at least {c} without a false match",
                s.impostor.len()
            );
        }
    }
    println!("EKYC_MATCH_THRESHOLD={t32}");
    println!("# or, as this model's default, in models/manifest.toml under [model.embedding]:\nmatch_threshold = {t32}");
    Ok(ExitCode::SUCCESS)
}
