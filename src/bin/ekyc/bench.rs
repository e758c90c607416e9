//! `ekyc bench`: numbers anyone can rerun. Single-threaded stage timings, start-up, peak memory.

use anyhow::{Context, Result};
use ekyc_core::{CheckOptions, Pipeline};
use ekyc_liveness::Settings;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Instant;

/// Quantile `p` of the values ([`ekyc_eval::quantile`], linear interpolation); NaN for none.
fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    ekyc_eval::quantile(v, p).unwrap_or(f64::NAN)
}

fn twelve_mp_jpeg(testdata: &std::path::Path, pipeline: &Pipeline) -> Result<Vec<u8>> {
    let src = std::fs::read(testdata.join("live/vietmoney_true_001.jpg"))
        .context("reading vietmoney_true_001.jpg")?;
    let img = pipeline.decode(&src)?.image;
    let big = image::imageops::resize(&img, 4000, 3000, image::imageops::FilterType::Triangle);
    let mut out = std::io::Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode_image(&big)?;
    Ok(out.into_inner())
}

pub(crate) fn run(
    images: Vec<PathBuf>,
    iterations: usize,
    testdata: PathBuf,
    config: Settings,
) -> Result<ExitCode> {
    let t_load = Instant::now();
    let pipeline = config.load_local_pipeline().context("loading models")?;
    let load_ms = t_load.elapsed().as_secs_f64() * 1e3;

    let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
    if images.is_empty() {
        let t1 = testdata.join("live/minivision_image_T1.jpg");
        inputs.push((
            "640x480 JPEG (minivision_image_T1)".into(),
            std::fs::read(&t1).with_context(|| format!("{}", t1.display()))?,
        ));
        inputs.push((
            "12-MP 4000x3000 JPEG (q90)".into(),
            twelve_mp_jpeg(&testdata, &pipeline)?,
        ));
    } else {
        for p in &images {
            inputs.push((p.display().to_string(), std::fs::read(p)?));
        }
    }

    println!(
        "ekyc bench: {} timed runs per image, 1 thread, models: {}",
        iterations,
        pipeline
            .models()
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("model load (in-process, parallel plans): {load_ms:.1} ms");
    println!(
        "{:<36} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10}",
        "image", "decode", "detect", "quality", "liveness", "e2e p50", "e2e p95", "e2e mean"
    );
    let opts = CheckOptions::default();
    for (name, bytes) in &inputs {
        for _ in 0..5 {
            pipeline.run(bytes, opts)?;
        }
        let (mut dec, mut det, mut q, mut liv, mut e2e) = (vec![], vec![], vec![], vec![], vec![]);
        for _ in 0..iterations {
            let t = Instant::now();
            let d = pipeline.decode(bytes)?;
            let t_dec = t.elapsed().as_secs_f64() * 1e3;
            let t = Instant::now();
            let found = pipeline.detect(&d)?;
            let t_det = t.elapsed().as_secs_f64() * 1e3;
            let t = Instant::now();
            let report = pipeline.quality(&d, &found)?;
            let t_q = t.elapsed().as_secs_f64() * 1e3;
            let t = Instant::now();
            if let Some(f) = found.faces.first() {
                std::hint::black_box(pipeline.liveness(&d, f)?);
            }
            let t_l = t.elapsed().as_secs_f64() * 1e3;
            std::hint::black_box(report);
            dec.push(t_dec);
            det.push(t_det);
            q.push(t_q);
            liv.push(t_l);
            let t = Instant::now();
            std::hint::black_box(pipeline.run(bytes, opts)?);
            e2e.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let mean = e2e.iter().sum::<f64>() / e2e.len().max(1) as f64;
        println!(
            "{:<36} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>10.2} {:>10.2}",
            name,
            pct(&mut dec, 0.5),
            pct(&mut det, 0.5),
            pct(&mut q, 0.5),
            pct(&mut liv, 0.5),
            pct(&mut e2e.clone(), 0.5),
            pct(&mut e2e, 0.95),
            mean
        );
    }
    println!("(stage columns are p50 ms; e2e = Pipeline::run on the encoded bytes)");
    bench_session(&pipeline, &inputs[0].1, iterations.clamp(5, 50))?;
    bench_match(&pipeline, &testdata, iterations.clamp(5, 50))?;
    if let Some(rss) = ekyc_eval::procinfo::peak_rss_mib() {
        println!("peak RSS of this process: {rss:.1} MiB");
    }

    // Process start → first verdict: spawn `ekyc check` on each image, several times; each child reports
    // its own peak RSS (VmHWM): the memory of one real verification from a cold process.
    let Ok(exe) = std::env::current_exe() else {
        return Ok(ExitCode::SUCCESS);
    };
    for (name, bytes) in &inputs {
        let tmp = std::env::temp_dir().join(format!("ekyc-bench-{}.img", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        let mut runs = Vec::new();
        let mut rss = 0f64;
        for _ in 0..7 {
            let t = Instant::now();
            let out = Command::new(&exe)
                .arg("check")
                .arg("--report-memory")
                .arg(&tmp)
                .arg("--models-dir")
                .arg(&config.models.models_dir)
                .output()?;
            runs.push(t.elapsed().as_secs_f64() * 1e3);
            let stderr = String::from_utf8_lossy(&out.stderr);
            if let Some(v) = stderr.lines().find_map(|l| l.strip_prefix("peak_rss_mib=")) {
                rss = rss.max(v.trim().parse().unwrap_or(f64::NAN));
            }
            if out.stdout.is_empty() {
                anyhow::bail!(
                    "ekyc check printed nothing: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        let _ = std::fs::remove_file(&tmp);
        println!(
            "{name}: process start → first verdict (ekyc check, 7 runs): p50 {:.1} ms, min {:.1} ms; peak RSS {rss:.1} MiB",
            pct(&mut runs.clone(), 0.5),
            pct(&mut runs, 0.0)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// CPU time of this process so far, milliseconds (user + system, from /proc/self/stat).
fn process_cpu_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks * 10.0) // USER_HZ = 100 on Linux
}

/// A face match (`Pipeline::match_images`, require_live off so that the embeddings always run):
/// the 640x480 selfie against the ICAO specimen passport page when it is there (the vendored
/// images have no document: then the selfie against itself); wall p50 and CPU per match.
fn bench_match(pipeline: &Pipeline, testdata: &std::path::Path, runs: usize) -> Result<()> {
    if !pipeline.has_embedder() || pipeline.match_threshold().is_none() {
        return Ok(());
    }
    let selfie = std::fs::read(testdata.join("live/minivision_image_T1.jpg"))?;
    let doc_path = testdata.join("id/passporteye_100_pass-uto.jpg");
    let (document, what) = match std::fs::read(&doc_path) {
        Ok(d) => (d, "793x536 passport page"),
        Err(_) => (selfie.clone(), "the same selfie"),
    };
    let opts = ekyc_core::face_match::MatchOptions {
        require_live: false,
        enable_checks: true,
    };
    for _ in 0..3 {
        std::hint::black_box(
            pipeline
                .match_images(&selfie, &document, opts)
                .map_err(|(s, e)| anyhow::anyhow!("{}: {e}", s.as_str()))?,
        );
    }
    let mut wall = Vec::with_capacity(runs);
    let cpu0 = process_cpu_ms();
    for _ in 0..runs {
        let t = Instant::now();
        std::hint::black_box(
            pipeline
                .match_images(&selfie, &document, opts)
                .map_err(|(s, e)| anyhow::anyhow!("{}: {e}", s.as_str()))?,
        );
        wall.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let cpu = match (cpu0, process_cpu_ms()) {
        (Some(a), Some(b)) => format!("{:.1} ms", (b - a) / runs as f64),
        _ => "n/a".into(),
    };
    println!(
        "face match, 640x480 selfie vs {what}, {runs} runs: wall p50 {:.1} ms, CPU {cpu} per match (selfie verdict + document + 2 embeddings)",
        pct(&mut wall, 0.5)
    );
    Ok(())
}

/// A capture session of 10 frames (the first image, shifted by a pixel per frame so that no two
/// are identical): `Pipeline::observe_frames` on 1 and 2 threads, then `session::decide`; wall
/// time per session and per frame, and the process CPU per session.
fn bench_session(pipeline: &Pipeline, image: &[u8], runs: usize) -> Result<()> {
    use ekyc_core::session::{decide, SessionRules, Step};
    let base = image::load_from_memory(image)?.to_rgb8();
    let frames: Vec<(Vec<u8>, u64)> = (0..10u32)
        .map(|i| {
            let mut f = image::RgbImage::new(base.width(), base.height());
            image::imageops::replace(&mut f, &base, i64::from(i), 0);
            let mut buf = std::io::Cursor::new(Vec::new());
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 90).encode_image(&f)?;
            Ok((buf.into_inner(), 100 * u64::from(i)))
        })
        .collect::<Result<_>>()?;
    let refs: Vec<(&[u8], u64)> = frames.iter().map(|(b, t)| (b.as_slice(), *t)).collect();
    let steps = [Step::TurnLeft, Step::Center, Step::Blink, Step::Center];
    // The first session of a process also optimises the models kept for first use (the embedding
    // model): timed on its own, then out of the way of the steady-state runs.
    let t = Instant::now();
    pipeline
        .observe_frames(&refs, 1)
        .map_err(|(i, e)| anyhow::anyhow!("frame {i}: {e}"))?;
    println!(
        "first session of this process (models optimised on first use included), 1 thread: {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    for threads in [1usize, 2] {
        let mut wall = Vec::with_capacity(runs);
        let cpu0 = process_cpu_ms();
        for _ in 0..runs {
            let t = Instant::now();
            let obs = pipeline
                .observe_frames(&refs, threads)
                .map_err(|(i, e)| anyhow::anyhow!("frame {i}: {e}"))?;
            std::hint::black_box(decide(&steps, &obs, &SessionRules::default()));
            wall.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let cpu = match (cpu0, process_cpu_ms()) {
            (Some(a), Some(b)) => format!("{:.1} ms", (b - a) / runs as f64),
            _ => "n/a".into(),
        };
        println!(
            "session of 10 640x480-class frames, {threads} thread(s), {runs} runs: wall p50 {:.1} ms ({:.1} ms per frame), CPU {cpu} per session",
            pct(&mut wall.clone(), 0.5),
            pct(&mut wall, 0.5) / 10.0
        );
    }
    Ok(())
}
