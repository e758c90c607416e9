//! The minivision APK models as the service runs them (tract, from the recipe's ONNX) against the
//! original ncnn models on the same pixels.
//!
//! `tools/recipes/minivision_ncnn2onnx.py` checks its ONNX in onnxruntime against the `ncnn`
//! package and writes the check's exact inputs and ncnn's softmax next to the model
//! (`<file>.ncnn-check.json`). Here each model is loaded through the manifest and the core, as the
//! service loads it, fed those pixels, and its live probability must match ncnn's within 1e-4.
//! Skips when the recipe has not run (the models are not provisioned by default).

mod common;

use base64::Engine;
use ekyc_core::detect::BBox;
use ekyc_core::{ModelSelection, Pipeline, PipelineConfig, Registry};
use ekyc_models::manifest::{Manifest, Region, Role};
use image::RgbImage;
use serde::Deserialize;

#[derive(Deserialize)]
struct Check {
    model: String,
    tolerance: f64,
    inputs: Vec<CheckInput>,
}

#[derive(Deserialize)]
struct CheckInput {
    label: String,
    width: u32,
    height: u32,
    bgr_base64: String,
    ncnn_softmax: Vec<f64>,
}

/// The manifest's models built by the minivision recipe.
fn recipe_models(m: &Manifest) -> Vec<String> {
    m.models
        .iter()
        .filter(|e| e.recipe.starts_with("minivision-ncnn2onnx:"))
        .map(|e| e.name.clone())
        .collect()
}

#[test]
fn tract_matches_ncnn_on_the_recipe_check_inputs() {
    let dir = common::repo().join("models");
    let manifest = Manifest::load(&dir.join("manifest.toml")).expect("manifest");
    let names = recipe_models(&manifest);
    assert_eq!(names.len(), 4, "the four APK models have manifest entries");
    let checks: Vec<_> = names
        .iter()
        .filter_map(|n| {
            let e = manifest.get(n)?;
            let check = dir.join(format!("{}.ncnn-check.json", e.file));
            (dir.join(&e.file).exists() && check.exists()).then_some((n.clone(), check))
        })
        .collect();
    if checks.len() < names.len() {
        common::skip("the minivision APK models built by their recipe (ekyc models fetch --all)");
        return;
    }
    // The check inputs are the model's input size already: feed them whole, as a whole-frame
    // model (data, not code: the same entries with region = whole_frame).
    let mut whole = manifest;
    for e in &mut whole.models {
        if let Some(l) = e.liveness.as_mut() {
            l.region = Region::WholeFrame;
            l.crop_scale = 0.0;
        }
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        tmp.path().join("manifest.toml"),
        toml::to_string(&whole).expect("manifest toml"),
    )
    .expect("write manifest");
    for e in &whole.models {
        if dir.join(&e.file).exists() {
            std::fs::copy(dir.join(&e.file), tmp.path().join(&e.file)).expect("copy model");
        }
    }
    let detector = whole
        .models
        .iter()
        .find(|e| e.role == Role::Detector && e.default)
        .expect("a default detector");
    let files = ekyc_models::DirFiles::open(tmp.path()).expect("models");
    let registry = Registry::load(
        &files,
        &ModelSelection {
            detectors: vec![detector.name.clone()],
            liveness: names,
            landmarks: vec!["none".into()],
            embedding: vec!["none".into()],
        },
    )
    .expect("load the APK models");
    let pipeline = Pipeline::new(registry, PipelineConfig::default());
    let mut worst = 0.0f64;
    for (name, path) in &checks {
        let check: Check =
            serde_json::from_slice(&std::fs::read(path).expect("read check")).expect("check json");
        assert!(check.tolerance <= 1e-4);
        assert!(
            check.inputs.len() >= 10,
            "{}: {} inputs",
            check.model,
            check.inputs.len()
        );
        let model = pipeline
            .ensemble()
            .models()
            .iter()
            .find(|m| &m.name == name)
            .expect("model in the ensemble");
        for input in &check.inputs {
            let bgr = base64::engine::general_purpose::STANDARD
                .decode(&input.bgr_base64)
                .expect("base64");
            let rgb: Vec<u8> = bgr
                .chunks_exact(3)
                .flat_map(|p| [p[2], p[1], p[0]])
                .collect();
            let img = RgbImage::from_raw(input.width, input.height, rgb).expect("pixels");
            let face = BBox {
                x: 0.0,
                y: 0.0,
                width: input.width as f32,
                height: input.height as f32,
            };
            let live = f64::from(model.score(&img, &face).expect("score"));
            let d = (live - input.ncnn_softmax[1]).abs();
            worst = worst.max(d);
            assert!(
                d <= 1e-4,
                "{name} on {}: tract {live:.6} vs ncnn {:.6}",
                input.label,
                input.ncnn_softmax[1]
            );
        }
    }
    eprintln!("tract vs ncnn, 4 APK models: max |live probability difference| {worst:.2e}");
}
