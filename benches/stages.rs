//! Criterion benches per stage and end to end, on a 640x480-class JPEG and a 12-MP JPEG.
//! Run: `cargo bench --bench stages` (models provisioned in ./models; vendored testdata).

use criterion::{criterion_group, criterion_main, Criterion};
use ekyc_core::{CheckOptions, Pipeline};
use ekyc_liveness::Settings;
use std::hint::black_box;
use std::path::PathBuf;

fn inputs(pipeline: &Pipeline) -> Vec<(&'static str, Vec<u8>)> {
    let faces = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/faces");
    let small = std::fs::read(faces.join("live/minivision_image_T1.jpg")).expect("T1");
    let src = std::fs::read(faces.join("live/vietmoney_true_001.jpg")).expect("vietmoney");
    let img = pipeline.decode(&src).expect("decode").image;
    let big = image::imageops::resize(&img, 4000, 3000, image::imageops::FilterType::Triangle);
    let mut out = std::io::Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&big)
        .expect("encode");
    vec![("640x480", small), ("12MP", out.into_inner())]
}

fn stages(c: &mut Criterion) {
    let mut settings = Settings::from_env().expect("settings");
    settings.models.models_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models");
    let pipeline = match settings.load_local_pipeline() {
        Ok(p) => p,
        Err(e) => {
            // A clone without provisioned models: `cargo test --all-targets` runs benches once.
            eprintln!("skipping the stage benches: {e} (run `cargo run -- models fetch`)");
            return;
        }
    };
    for (name, bytes) in inputs(&pipeline) {
        let mut g = c.benchmark_group(name);
        g.sample_size(30);
        g.bench_function("decode", |b| {
            b.iter(|| pipeline.decode(black_box(&bytes)).expect("decode"));
        });
        let d = pipeline.decode(&bytes).expect("decode");
        g.bench_function("detect", |b| {
            b.iter(|| pipeline.detect(black_box(&d)).expect("detect"));
        });
        let found = pipeline.detect(&d).expect("detect");
        g.bench_function("quality", |b| {
            b.iter(|| pipeline.quality(black_box(&d), &found).expect("quality"));
        });
        if let Some(face) = found.faces.first() {
            for m in pipeline.ensemble().models() {
                g.bench_function(format!("liveness/{}", m.name), |b| {
                    b.iter(|| m.score(black_box(&d.image), &face.bbox).expect("score"));
                });
            }
        }
        g.bench_function("end_to_end", |b| {
            b.iter(|| {
                pipeline
                    .run(black_box(&bytes), CheckOptions::default())
                    .expect("run")
            });
        });
        g.finish();
    }
}

criterion_group!(benches, stages);
criterion_main!(benches);
