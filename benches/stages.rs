//! Criterion benches per stage and end to end, on a 640x480-class JPEG and a 12-MP JPEG.
//! Run: `cargo bench --bench stages` (models provisioned in ./models, testdata in ../shared).

use criterion::{criterion_group, criterion_main, Criterion};
use ekyc_liveness::decode::decode;
use ekyc_liveness::quality::gate;
use ekyc_liveness::{CheckOptions, Config, Pipeline};
use std::hint::black_box;
use std::path::PathBuf;

fn inputs(config: &Config) -> Vec<(&'static str, Vec<u8>)> {
    let faces = std::env::var_os("EKYC_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/faces")
        });
    let small = std::fs::read(faces.join("live/minivision_image_T1.jpg")).expect("T1");
    let src = std::fs::read(faces.join("live/vietmoney_true_001.jpg")).expect("vietmoney");
    let img = decode(&src, &config.limits).expect("decode").image;
    let big = image::imageops::resize(&img, 4000, 3000, image::imageops::FilterType::Triangle);
    let mut out = std::io::Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&big)
        .expect("encode");
    vec![("640x480", small), ("12MP", out.into_inner())]
}

fn stages(c: &mut Criterion) {
    let mut config = Config::from_env().expect("config");
    config.models.models_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models");
    let pipeline = Pipeline::load(config.clone()).expect("models");
    for (name, bytes) in inputs(&config) {
        let mut g = c.benchmark_group(name);
        g.sample_size(30);
        g.bench_function("decode", |b| {
            b.iter(|| decode(black_box(&bytes), &config.limits).expect("decode"))
        });
        let d = decode(&bytes, &config.limits).expect("decode");
        g.bench_function("detect", |b| {
            b.iter(|| pipeline.detect(black_box(&d)).expect("detect"))
        });
        let (faces, _) = pipeline.detect(&d).expect("detect");
        g.bench_function("quality", |b| {
            b.iter(|| {
                gate(
                    black_box(&d.image),
                    &faces,
                    d.scale_to_original(),
                    &config.quality,
                )
            })
        });
        if let Some(face) = faces.first() {
            for m in &pipeline.registry.liveness {
                g.bench_function(format!("liveness/{}", m.name), |b| {
                    b.iter(|| m.score(black_box(&d.image), &face.bbox).expect("score"))
                });
            }
        }
        g.bench_function("end_to_end", |b| {
            b.iter(|| {
                pipeline
                    .run(black_box(&bytes), CheckOptions::default())
                    .expect("run")
            })
        });
        g.finish();
    }
}

criterion_group!(benches, stages);
criterion_main!(benches);
