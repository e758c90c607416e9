//! `ekyc session-check`: the capture-session decision offline, on a folder of frames.

use anyhow::{bail, Context, Result};
use ekyc_core::session::{decide, parse_steps, SessionRules, SessionStatus};
use ekyc_liveness::Settings;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct SessionCheckArgs {
    /// Folder of frames (JPEG, PNG, WebP), taken in file-name order.
    frames_dir: PathBuf,
    /// The challenge, comma-separated (TURN_LEFT, TURN_RIGHT, LOOK_UP, BLINK, CENTER).
    #[arg(long)]
    steps: String,
    /// First frame used (position in file-name order, 0-based).
    #[arg(long, default_value_t = 0)]
    from: usize,
    /// Last frame used (inclusive; default: the last).
    #[arg(long)]
    to: Option<usize>,
    /// Use every K-th frame (e.g. 3 turns a 30 fps clip into 10 fps).
    #[arg(long, default_value_t = 1)]
    every: usize,
    /// Frame rate of the folder, for the capture timestamps (frame position / fps).
    #[arg(long, default_value_t = 10.0)]
    fps: f64,
    /// Threads analysing frames.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    #[command(flatten)]
    config: Settings,
}

pub fn run(a: SessionCheckArgs) -> Result<ExitCode> {
    let steps = parse_steps(&a.steps).map_err(anyhow::Error::msg)?;
    if steps.is_empty() {
        bail!("--steps needs at least one step");
    }
    if a.every == 0 || !(a.fps.is_finite() && a.fps > 0.0) {
        bail!("--every must be at least 1 and --fps positive");
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&a.frames_dir)
        .with_context(|| format!("reading {}", a.frames_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().and_then(|x| x.to_str()).is_some_and(|x| {
                ["jpg", "jpeg", "png", "webp"].contains(&x.to_ascii_lowercase().as_str())
            })
        })
        .collect();
    files.sort();
    let last =
        a.to.unwrap_or(usize::MAX)
            .min(files.len().saturating_sub(1));
    let chosen: Vec<(usize, &PathBuf)> = files
        .iter()
        .enumerate()
        .filter(|(i, _)| *i >= a.from && *i <= last && (i - a.from).is_multiple_of(a.every))
        .collect();
    let pipeline = a.config.load_local_pipeline().context("loading models")?;
    let limit = pipeline.config().limits.max_image_bytes;
    let mut bytes = Vec::with_capacity(chosen.len());
    for (i, p) in &chosen {
        let b = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        if b.len() > limit {
            bail!(
                "{}: {} bytes, over the {limit}-byte limit",
                p.display(),
                b.len()
            );
        }
        bytes.push((b, (*i as f64 * 1000.0 / a.fps).round() as u64));
    }
    let frames: Vec<(&[u8], u64)> = bytes.iter().map(|(b, t)| (b.as_slice(), *t)).collect();
    let t0 = std::time::Instant::now();
    let observed = pipeline
        .observe_frames(&frames, a.threads)
        .map_err(|(i, e)| anyhow::anyhow!("frame {i} ({}): {e}", chosen[i].1.display()))?;
    let analyse_ms = t0.elapsed().as_secs_f64() * 1e3;
    let rules = SessionRules {
        liveness_threshold: pipeline.config().decision.liveness_threshold,
        retry_band: pipeline.config().decision.retry_band,
        ..SessionRules::default()
    };
    let decision = decide(&steps, &observed, &rules);
    let files_json: Vec<String> = chosen
        .iter()
        .map(|(_, p)| p.display().to_string())
        .collect();
    let out = serde_json::json!({
        "status": decision.status,
        "steps": steps,
        "decision": decision,
        "frames": observed,
        "files": files_json,
        "rules": rules,
        "analyse_ms": analyse_ms,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(if decision.status == SessionStatus::Live {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
