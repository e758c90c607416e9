//! `ekyc`: the command-line face check (check images, manage models, benchmark).

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use ekyc_core::{CheckOptions, Status};
use ekyc_liveness::{logging, Settings};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

mod bench;
mod bench_http;
mod calibrate;
mod ensembles;
mod eval;
mod face_match;
mod gate;
mod models;
mod session;

#[derive(Parser)]
#[command(
    name = "ekyc",
    version,
    about = "eKYC face check: quality gate + passive liveness"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Check images; prints one JSON verdict per line (or a table with --pretty). Exit 0 only if all are LIVE.
    Check {
        /// Image files (JPEG, PNG, WebP).
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Print a human-readable table instead of JSON lines.
        #[arg(long)]
        pretty: bool,
        /// Skip the quality gate and score liveness on the largest face (the seed's enable_checks=false).
        #[arg(long)]
        no_checks: bool,
        /// Print this process's peak resident memory (VmHWM) to stderr at the end.
        #[arg(long)]
        report_memory: bool,
        #[command(flatten)]
        config: Settings,
    },
    /// Decode images exactly as the pipeline does (limits, EXIF orientation, reduced-scale JPEG) and write
    /// the upright RGB pixels as OUT/<path relative to --root>.png (input for tools/reference.py).
    Decode {
        #[arg(required = true)]
        images: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        /// Paths in OUT are relative to this directory.
        #[arg(long)]
        root: PathBuf,
        #[command(flatten)]
        config: Settings,
    },
    /// Benchmark: per-stage and end-to-end latency on one core for a 640x480-class JPEG and a 12-MP
    /// JPEG, process start → first verdict, and peak memory.
    Bench {
        /// Images to time (default: testdata/faces/live/minivision_image_T1.jpg and a 12-MP
        /// 4000x3000 JPEG made from vietmoney_true_001.jpg).
        images: Vec<PathBuf>,
        /// Timed runs per image (after 5 warm-up runs).
        #[arg(long, default_value_t = 200)]
        iterations: usize,
        /// Directory of the default test images.
        #[arg(long, default_value = "testdata/faces")]
        testdata: PathBuf,
        #[command(flatten)]
        config: Settings,
    },
    /// HTTP benchmark against any server with the prototype's contract (POST /v1/liveness, multipart
    /// field `file`): cold start, sequential and N-client latency, throughput, server CPU per request
    /// and RSS from /proc. Starts the server itself with --server-cmd, or uses --url.
    BenchHttp(bench_http::Args),
    /// Serve the HTTP API locally (the same router as the Lambda function; see `ekyc-api`).
    Serve {
        #[command(flatten)]
        config: Settings,
    },
    /// ISO/IEC 30107-3 evaluation of labelled folders: APCER per attack type, BPCER, EER, DET curve
    /// and score histogram, gate on and off; writes report.json/.md, det.png/.svg, hist.png/.svg,
    /// scores.csv into --out and prints the summary.
    Eval(eval::EvalArgs),
    /// Measure every combination of candidate liveness models and both fusion rules on labelled
    /// sets (AUC, EER, BPCER at APCER 10 % and 5 %, 95 % intervals, CPU cost) and pick the default by
    /// the written rule; writes report.md, report.json and scores.csv into --out.
    EvalEnsembles(ensembles::EnsemblesArgs),
    /// The quality gate against labels by eye (testdata/labels/*.csv): acceptable captures that
    /// pass (with a 95 % interval), and per labelled reason how many are rejected and with which
    /// reason; prints Markdown (and writes it with --out).
    EvalGate(gate::GateArgs),
    /// Choose the liveness threshold that meets an APCER or BPCER target on labelled folders; print
    /// the other rate with 95% intervals and the line EKYC_LIVENESS_THRESHOLD=<value>.
    Calibrate(calibrate::CalibrateArgs),
    /// Measure the quality-gate metrics on bona fide captures of a camera; print percentiles, the
    /// current limits and suggested EKYC_* limits (changes nothing without --write-env).
    CalibrateQuality(calibrate::CalibrateQualityArgs),
    /// The capture-session decision offline on a folder of frames (for evaluation and support):
    /// prints the decision, the per-step evidence and every frame's measurements as JSON. Exit 0
    /// only if LIVE.
    SessionCheck(session::SessionCheckArgs),
    /// Face match: is the person of SELFIE the one on DOCUMENT? Prints the JSON outcome (as POST
    /// /v1/match). Exit 0 on a match, 1 on no match, 2 on an error.
    Match(face_match::MatchCmdArgs),
    /// ISO/IEC 19795-1 evaluation of the face match on labelled comparisons (--pairs or
    /// --identities): FNMR and FMR at the threshold with Wilson and Clopper–Pearson intervals, EER,
    /// FNMR at FMR 1e-2 and 1e-3, DET plot and similarity histogram; writes them into --out.
    EvalMatch(face_match::EvalMatchArgs),
    /// Choose the face-match threshold for a target FMR on labelled comparisons; prints both
    /// rates with 95 % intervals and the line EKYC_MATCH_THRESHOLD=<value>.
    CalibrateMatch(face_match::CalibrateMatchArgs),
    /// Provision, verify or list models.
    Models {
        #[command(subcommand)]
        cmd: models::ModelsCmd,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.cmd, Cmd::Serve { .. }) {
        logging::tune_allocator();
        logging::init();
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.cmd {
        Cmd::Check {
            images,
            pretty,
            no_checks,
            report_memory,
            config,
        } => {
            let code = check(images, pretty, no_checks, config);
            if report_memory {
                eprintln!(
                    "peak_rss_mib={:.1}",
                    ekyc_eval::procinfo::peak_rss_mib().unwrap_or(f64::NAN)
                );
            }
            code
        }
        Cmd::Models { cmd } => models::run(cmd),
        Cmd::Eval(args) => eval::eval(args),
        Cmd::SessionCheck(args) => session::run(args),
        Cmd::Match(args) => face_match::match_one(args),
        Cmd::EvalMatch(args) => face_match::eval_match(args),
        Cmd::CalibrateMatch(args) => face_match::calibrate_match(args),
        Cmd::EvalEnsembles(args) => ensembles::run(args),
        Cmd::EvalGate(args) => gate::eval_gate(args),
        Cmd::BenchHttp(args) => bench_http::run(args),
        Cmd::Calibrate(args) => calibrate::calibrate(args),
        Cmd::CalibrateQuality(args) => calibrate::calibrate_quality(args),
        Cmd::Serve { config } => {
            tokio::runtime::Runtime::new()?.block_on(async {
                let pipeline = config.load_pipeline().await.context("loading models")?;
                let uploads = config.uploads().await;
                let sessions = config.session_store().await;
                let state = ekyc_http::AppState::new_with_stores(
                    pipeline,
                    config.server()?,
                    uploads,
                    sessions,
                )?;
                ekyc_http::serve(state)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Bench {
            images,
            iterations,
            testdata,
            config,
        } => bench::run(images, iterations, testdata, config),
        Cmd::Decode {
            images,
            out,
            root,
            config,
        } => {
            for path in &images {
                let bytes =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                let d = ekyc_core::decode::decode(&bytes, &config.pipeline().limits)?;
                let rel = path.strip_prefix(&root).unwrap_or(path);
                let mut name = rel.as_os_str().to_os_string();
                name.push(".png");
                let dest = out.join(name);
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                d.image
                    .save(&dest)
                    .with_context(|| format!("writing {}", dest.display()))?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn check(
    images: Vec<PathBuf>,
    pretty: bool,
    no_checks: bool,
    config: Settings,
) -> Result<ExitCode> {
    let pipeline = config.load_local_pipeline().context("loading models")?;
    let limit = pipeline.config().limits.max_image_bytes;
    let opts = CheckOptions {
        enable_checks: !no_checks,
    };
    let mut all_live = true;
    let mut out = std::io::stdout().lock();
    let code = |all_live: bool| {
        if all_live {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    };
    if pretty {
        let head = format!(
            "{:<40} {:<15} {:>6} {:>7}  reasons",
            "image", "status", "score", "ms"
        );
        if quiet_on_closed_stdout(writeln!(out, "{head}"))? {
            return Ok(code(all_live));
        }
    }
    for path in &images {
        // The same byte limit as the server, applied while reading (a FIFO or /dev/zero cannot
        // exhaust memory); an unreadable file is an error line for that file, and the batch goes on.
        let result = read_bounded(path, limit).and_then(|bytes| {
            pipeline
                .run(&bytes, opts)
                .map_err(|e| (e.code(), e.to_string()))
        });
        let line = match result {
            Ok(v) => {
                all_live &= v.status == Status::Live;
                if pretty {
                    let reasons: Vec<&str> = v.reasons.iter().map(|r| r.code.as_str()).collect();
                    format!(
                        "{:<40} {:<15} {:>6} {:>7.1}  {}",
                        path.display(),
                        format!("{:?}", v.status),
                        v.liveness_score
                            .map(|s| format!("{s:.3}"))
                            .unwrap_or_else(|| "-".into()),
                        v.timings.total_ms,
                        reasons.join(",")
                    )
                } else {
                    let mut j = serde_json::to_value(&v)?;
                    if let Some(o) = j.as_object_mut() {
                        o.insert(
                            "file".into(),
                            serde_json::Value::String(path.display().to_string()),
                        );
                    }
                    j.to_string()
                }
            }
            Err((code, message)) => {
                all_live = false;
                if pretty {
                    format!(
                        "{:<40} {:<15} {:>6} {:>7}  {}",
                        path.display(),
                        "ERROR",
                        "-",
                        "-",
                        message
                    )
                } else {
                    serde_json::json!({"file": path.display().to_string(), "error": {"code": code, "message": message}})
                        .to_string()
                }
            }
        };
        if quiet_on_closed_stdout(writeln!(out, "{line}"))? {
            return Ok(code(all_live));
        }
    }
    Ok(code(all_live))
}

/// Read at most `limit` bytes of `path`; more is IMAGE_TOO_MANY_BYTES, failure READ_FAILED.
pub(crate) fn read_bounded(
    path: &std::path::Path,
    limit: usize,
) -> Result<Vec<u8>, (&'static str, String)> {
    use std::io::Read;
    let read_failed = |e: std::io::Error| {
        (
            "READ_FAILED",
            format!("cannot read {}: {e}", path.display()),
        )
    };
    let f = std::fs::File::open(path).map_err(read_failed)?;
    let mut bytes = Vec::new();
    f.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read_failed)?;
    if bytes.len() > limit {
        return Err((
            "IMAGE_TOO_MANY_BYTES",
            format!("the input is over the limit of {limit} bytes"),
        ));
    }
    Ok(bytes)
}

/// `Ok(true)` when stdout was closed by the reader (e.g. `| head`): stop quietly.
fn quiet_on_closed_stdout(r: std::io::Result<()>) -> Result<bool> {
    match r {
        Ok(()) => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(true),
        Err(e) => Err(e.into()),
    }
}
