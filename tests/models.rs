//! Models as data: provisioning, verification, load-time IO checks, a new format by manifest alone.

mod common;

use common::{read, repo, settings, LIVE};
use ekyc_core::{CheckOptions, ModelError, ModelSelection, Registry};
use ekyc_models::manifest::Manifest;
use ekyc_models::provision::{self, Origin};
use std::path::{Path, PathBuf};

/// The offline model mirror ($EKYC_MODEL_MIRROR or ../shared/models); tests that provision from
/// it skip without it.
fn mirror_or_skip() -> Option<PathBuf> {
    let m = std::env::var_os("EKYC_MODEL_MIRROR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/models"));
    if m.is_dir() {
        Some(m)
    } else {
        common::skip("the offline model mirror (../shared/models or EKYC_MODEL_MIRROR)");
        None
    }
}

fn mirror() -> PathBuf {
    mirror_or_skip().expect("mirror (checked at the start of the test)")
}

/// The repository's manifest with MiniFASNetV2 + MiniFASNetV1SE as the default liveness set instead
/// of apk_v1_crop27: the mirror holds the pair, while the APK model is built by its recipe (a
/// Python venv from PyPI), which these provisioning tests do not run (tests/minivision_ncnn.rs and
/// `models fetch` in tools/test.sh cover it).
fn mirror_defaults(manifest: String) -> String {
    let flip = |m: String, name: &str, from: bool| {
        let old = format!("name = \"{name}\"\nrole = \"liveness\"\ndefault = {from}");
        assert!(m.contains(&old), "manifest entry {name} default = {from}");
        m.replace(
            &old,
            &old.replace(
                &format!("default = {from}"),
                &format!("default = {}", !from),
            ),
        )
    };
    let m = flip(manifest, "MiniFASNetV2", false);
    let m = flip(m, "MiniFASNetV1SE", false);
    flip(m, "apk_v1_crop27", true)
}

/// A fresh models directory holding only the repository's manifest with the mirror's default set
/// ([`mirror_defaults`]), optionally edited further.
fn models_dir(edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = std::fs::read_to_string(repo().join("models/manifest.toml")).expect("manifest");
    std::fs::write(
        dir.path().join("manifest.toml"),
        edit(mirror_defaults(manifest)),
    )
    .expect("write manifest");
    dir
}

fn fetch(dir: &Path, all: bool) -> Result<Vec<(String, Origin)>, ModelError> {
    let m = Manifest::load(&dir.join("manifest.toml"))?;
    let entries = provision::entries(&m, &[], all)?;
    provision::fetch_all(dir, &entries, Some(&mirror()), false)
}

fn load(dir: &Path, liveness: &[&str]) -> Result<Registry, ModelError> {
    let files = ekyc_models::DirFiles::open(dir)?;
    let selection = ModelSelection {
        detectors: Vec::new(),
        liveness: liveness.iter().map(|s| s.to_string()).collect(),
        landmarks: Vec::new(),
        embedding: vec!["none".into()],
    };
    Registry::load(&files, &selection)
}

#[test]
fn provisions_from_the_mirror_then_finds_files_present() {
    if mirror_or_skip().is_none() {
        return;
    }
    let dir = models_dir(|m| m);
    let got = fetch(dir.path(), false).expect("fetch");
    // Two detectors, two liveness models, the face mesh, the iris model and the face embedding.
    assert_eq!(got.len(), 7);
    assert!(
        got.iter().all(|(_, o)| matches!(o, Origin::Mirror(_))),
        "{got:?}"
    );
    let again = fetch(dir.path(), false).expect("fetch again");
    assert!(
        again.iter().all(|(_, o)| *o == Origin::Present),
        "{again:?}"
    );
    let m = Manifest::load(&dir.path().join("manifest.toml")).expect("manifest");
    let verified = provision::verify_all(
        dir.path(),
        &provision::entries(&m, &[], false).expect("entries"),
    )
    .expect("verify");
    assert_eq!(verified.len(), 7);
    load(dir.path(), &[]).expect("load");
}

#[test]
fn missing_model_is_a_clear_error_naming_it() {
    let dir = models_dir(|m| m);
    let m = Manifest::load(&dir.path().join("manifest.toml")).expect("manifest");
    let e = m.get("MiniFASNetV2").expect("entry");
    let err = provision::fetch_one(dir.path(), e, Some(Path::new("/nonexistent-mirror")), false)
        .expect_err("missing");
    assert!(
        matches!(&err, ModelError::Missing { name, .. } if name == "MiniFASNetV2"),
        "{err}"
    );
    assert!(
        err.to_string().contains("MiniFASNetV2") && err.to_string().contains("/nonexistent-mirror"),
        "{err}"
    );
    let err = load(dir.path(), &[]).err().expect("load must fail");
    assert!(matches!(err, ModelError::Missing { .. }), "{err}");
}

#[test]
fn tampered_models_fail_with_the_hash_error() {
    if mirror_or_skip().is_none() {
        return;
    }
    let dir = models_dir(|m| m);
    fetch(dir.path(), false).expect("fetch");
    let path = dir.path().join("MiniFASNetV1SE.onnx");
    let mut bytes = std::fs::read(&path).expect("read");
    let n = bytes.len();
    bytes[n / 2] ^= 0x01;
    std::fs::write(&path, &bytes).expect("write");
    let err = load(dir.path(), &[]).err().expect("must fail");
    assert!(
        matches!(&err, ModelError::HashMismatch { name, .. } if name == "MiniFASNetV1SE"),
        "{err}"
    );
    // Provisioning refuses the present, wrong file instead of silently replacing it.
    let err = fetch(dir.path(), false).expect_err("fetch must fail");
    assert_eq!(err.code(), "MODEL_HASH_MISMATCH");

    // A wrong file in the mirror is refused too, naming the model.
    let fake_mirror = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(fake_mirror.path().join("minifasnet")).expect("mkdir");
    std::fs::write(
        fake_mirror.path().join("minifasnet/MiniFASNetV2.onnx"),
        b"not the model",
    )
    .expect("write");
    let dir2 = models_dir(|m| m);
    let m = Manifest::load(&dir2.path().join("manifest.toml")).expect("manifest");
    let err = provision::fetch_one(
        dir2.path(),
        m.get("MiniFASNetV2").expect("entry"),
        Some(fake_mirror.path()),
        false,
    )
    .expect_err("wrong mirror file");
    assert!(
        matches!(&err, ModelError::HashMismatch { name, .. } if name == "MiniFASNetV2"),
        "{err}"
    );
    assert!(
        !dir2.path().join("MiniFASNetV2.onnx").exists(),
        "nothing written on a hash mismatch"
    );
}

#[test]
fn io_that_does_not_match_the_manifest_fails_at_load() {
    if mirror_or_skip().is_none() {
        return;
    }
    // MiniFASNetV2 takes 80x80; a manifest claiming 96x96 must not load.
    let dir = models_dir(|m| {
        let i = m.find("name = \"MiniFASNetV2\"").expect("entry");
        let (a, b) = m.split_at(i);
        format!(
            "{a}{}",
            b.replacen("width = 80\nheight = 80", "width = 96\nheight = 96", 1)
        )
    });
    fetch(dir.path(), false).expect("fetch");
    let err = load(dir.path(), &[]).err().expect("must fail");
    assert!(
        matches!(&err, ModelError::IoMismatch { name, .. } if name == "MiniFASNetV2"),
        "{err}"
    );

    // Wrong anchor layout for the short-range detector: its outputs cannot match.
    let dir = models_dir(|m| {
        m.replacen(
            "{ stride = 16, per_cell = 6 }",
            "{ stride = 16, per_cell = 2 }",
            1,
        )
    });
    fetch(dir.path(), false).expect("fetch");
    let err = load(dir.path(), &[]).err().expect("must fail");
    assert!(
        matches!(&err, ModelError::IoMismatch { name, .. } if name == "blazeface_short"),
        "{err}"
    );
    assert!(
        err.to_string().contains("[1,896,16]") || err.to_string().contains("regressors"),
        "{err}"
    );

    // A softmax live_index beyond the 3 classes.
    let dir = models_dir(|m| m.replacen("live_index = 1", "live_index = 5", 1));
    fetch(dir.path(), false).expect("fetch");
    assert!(matches!(
        load(dir.path(), &[]),
        Err(ModelError::IoMismatch { .. })
    ));
}

/// The seed's MobileNetV3 format (224x224, ImageNet mean/std, one spoof logit) plugs in through its
/// manifest entry alone.
#[test]
fn seed_format_model_plugs_in_by_manifest() {
    if mirror_or_skip().is_none() {
        return;
    }
    let dir = models_dir(|m| m);
    fetch(dir.path(), false).expect("fetch the defaults");
    let m = Manifest::load(&dir.path().join("manifest.toml")).expect("manifest");
    let standin = provision::entries(&m, &["mnv3_seed_standin".to_string()], false).expect("entry");
    provision::fetch_all(dir.path(), &standin, Some(&mirror()), false).expect("fetch the stand-in");
    let mut c = settings();
    c.models.models_dir = dir.path().to_path_buf();
    c.models.liveness_models = vec!["mnv3_seed_standin".into()];
    let p = c.load_local_pipeline().expect("load stand-in");
    let v = p.run(&read(LIVE), CheckOptions::default()).expect("run");
    assert_eq!(v.scores.len(), 1);
    assert_eq!(v.scores[0].model, "mnv3_seed_standin");
    let s = v.liveness_score.expect("score");
    assert!((0.0..=1.0).contains(&s), "{s}");
    assert!(v.models.iter().any(|m| m.name == "mnv3_seed_standin"));
}

#[test]
fn unknown_model_names_are_rejected() {
    let files = ekyc_models::DirFiles::open(repo().join("models")).expect("manifest");
    let selection = ModelSelection {
        detectors: Vec::new(),
        liveness: vec!["NoSuchModel".into()],
        landmarks: Vec::new(),
        embedding: Vec::new(),
    };
    assert!(
        matches!(Registry::load(&files, &selection), Err(ModelError::Unknown(n)) if n == "NoSuchModel")
    );
}

/// Run the PReLU pass on `file` (input 1×3×side×side), and the model with and without it on one
/// deterministic pseudo-random input (`scale` maps 0..255 to the model's range): the number of
/// rewritten PReLUs and the largest difference of the first output.
fn prelu_rewrite(file: &str, side: usize, seed: u32, scale: impl Fn(f32) -> f32) -> (usize, f32) {
    use tract_onnx::prelude::*;
    let path = repo().join("models").join(file);
    let typed = tract_onnx::onnx()
        .model_for_path(&path)
        .and_then(|m| m.with_input_fact(0, f32::fact([1, 3, side, side]).into()))
        .and_then(|m| m.into_typed())
        .and_then(|m| m.into_decluttered())
        .expect("load");
    let mut rewritten = typed.clone();
    let n = ekyc_models::passes::PreluToMax
        .rewrite(&mut rewritten)
        .expect("pass");
    let run = |m: TypedModel| {
        let plan = m
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .expect("plan");
        let mut x = seed;
        let data: Vec<f32> = (0..3 * side * side)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                scale(((x >> 16) % 256) as f32)
            })
            .collect();
        let t = Tensor::from_shape(&[1, 3, side, side], &data).expect("tensor");
        let out = plan.run(tvec!(t.into())).expect("run");
        ekyc_models::plan::output_f32(&out, 0)
            .expect("f32")
            .to_vec()
    };
    let (a, b) = (run(typed), run(rewritten));
    let diff = a
        .iter()
        .zip(&b)
        .map(|(p, q)| (p - q).abs())
        .fold(0f32, f32::max);
    (n, diff)
}

/// The load-time PReLU → max(x, slope·x) pass applies to MiniFASNet and changes no output.
#[test]
fn prelu_rewrite_is_exact_on_minifasnet() {
    if !common::models_present() {
        return;
    }
    if !repo().join("models/MiniFASNetV2.onnx").exists() {
        common::skip("MiniFASNetV2 (not in the default set: `ekyc models fetch --all`)");
        return;
    }
    // A deterministic pseudo-random 0..255 BGR crop.
    let (n, diff) = prelu_rewrite("MiniFASNetV2.onnx", 80, 12345, |v| v);
    assert!(n >= 10, "MiniFASNetV2 has many PReLUs; rewrote {n}");
    assert!(diff <= 1e-5, "logits differ by {diff}");
}

/// The same pass on the landmark models, whose PReLUs include slopes above 1 (rewritten as
/// max(x, 0) + slope·min(x, 0)): every PReLU is rewritten and the outputs do not move.
#[test]
fn prelu_rewrite_is_exact_on_the_landmark_models() {
    if !common::models_present() {
        return;
    }
    for (file, side, prelus) in [
        ("face_landmark.onnx", 192usize, 23usize),
        ("iris_landmark.onnx", 64, 53),
    ] {
        let (n, diff) = prelu_rewrite(file, side, 777, |v| v / 127.5 - 1.0);
        assert_eq!(n, prelus, "{file}: every PReLU rewritten");
        assert!(diff <= 1e-4, "{file}: outputs differ by {diff}");
    }
}

/// Verdicts of every live/ and spoof/ image with the models in `dir`: the liveness score, each
/// model's probability, and the landmark measures (yaw, pitch, eyes open).
fn scores_of(dir: &Path) -> Vec<(String, Option<f32>, Vec<f32>)> {
    let mut c = settings();
    c.models.models_dir = dir.to_path_buf();
    let p = c.load_local_pipeline().expect("load");
    let mut out = Vec::new();
    for img in common::images_in("live")
        .into_iter()
        .chain(common::images_in("spoof"))
    {
        let v = p.run(&read(&img), CheckOptions::default()).expect("run");
        let mut per_model: Vec<f32> = v.scores.iter().map(|s| s.live_probability).collect();
        let q = &v.quality;
        per_model.extend([q.yaw_deg, q.pitch_deg, q.eyes_open].into_iter().flatten());
        out.push((img, v.liveness_score, per_model));
    }
    out
}

/// Names of the models whose plans came from the plan cache.
fn cached(dir: &Path) -> Vec<String> {
    let reg = load(dir, &[]).expect("load");
    reg.models()
        .iter()
        .filter(|m| m.from_plan_cache)
        .map(|m| m.name.clone())
        .collect()
}

/// The compiled-plan cache gives bit-identical verdicts; a damaged, stale or missing cache is
/// ignored (plans built from the ONNX), never trusted.
#[test]
fn plan_cache_is_exact_and_never_trusted_when_damaged() {
    if mirror_or_skip().is_none() {
        return;
    }
    use ekyc_models::plan_cache;
    let dir = models_dir(|m| m);
    fetch(dir.path(), false).expect("fetch");
    let from_onnx = scores_of(dir.path());
    let n_images = common::images_in("live").len() + common::images_in("spoof").len();
    assert!(
        n_images > 0 && from_onnx.len() == n_images,
        "{}",
        from_onnx.len()
    );
    assert!(cached(dir.path()).is_empty());

    let m = Manifest::load(&dir.path().join("manifest.toml")).expect("manifest");
    let entries = provision::entries(&m, &[], false).expect("entries");
    for e in &entries {
        let bytes = std::fs::read(dir.path().join(&e.file)).expect("read");
        let (path, size) = plan_cache::write(dir.path(), e, &bytes).expect("write cache");
        assert!(path.exists() && size > 100_000, "{} {size}", path.display());
        assert!(plan_cache::read(dir.path(), e).is_some());
    }
    // Every model uses the cache, the lazily optimised fallback detector too.
    assert_eq!(
        cached(dir.path()),
        [
            "blazeface_short",
            "blazeface_full",
            "MiniFASNetV2",
            "MiniFASNetV1SE",
            "face_mesh",
            "iris"
        ]
    );
    assert_eq!(
        scores_of(dir.path()),
        from_onnx,
        "cached plans changed a score"
    );

    // Damage one cached plan: the sidecar check rejects it and the ONNX is used.
    let v2 = m.get("MiniFASNetV2").expect("entry");
    let (path, _) = plan_cache::paths(dir.path(), v2);
    let mut tar = std::fs::read(&path).expect("read cache");
    let mid = tar.len() / 2;
    tar[mid] ^= 0x55;
    std::fs::write(&path, &tar).expect("write");
    assert!(plan_cache::read(dir.path(), v2).is_none());
    assert_eq!(
        cached(dir.path()),
        [
            "blazeface_short",
            "blazeface_full",
            "MiniFASNetV1SE",
            "face_mesh",
            "iris"
        ]
    );
    assert_eq!(scores_of(dir.path()), from_onnx);

    // A cache with a matching sidecar but for another model (wrong input size) is rejected at load.
    let v1se = m.get("MiniFASNetV1SE").expect("entry");
    let seed = m.get("mnv3_seed_standin").expect("entry");
    provision::fetch_all(dir.path(), &[seed], Some(&mirror()), false).expect("fetch seed");
    let seed_bytes = std::fs::read(dir.path().join(&seed.file)).expect("read");
    let (seed_cache, _) = plan_cache::write(dir.path(), seed, &seed_bytes).expect("cache seed");
    let (v1se_cache, v1se_sidecar) = plan_cache::paths(dir.path(), v1se);
    std::fs::copy(&seed_cache, &v1se_cache).expect("copy");
    std::fs::copy(seed_cache.with_extension("tar.sha256"), &v1se_sidecar).expect("copy");
    let tar = plan_cache::read(dir.path(), v1se).expect("sidecar matches the swapped file");
    assert!(matches!(
        ekyc_models::PassedModel::from_nnef(v1se, &tar),
        Err(ModelError::IoMismatch { .. })
    ));
    assert_eq!(
        cached(dir.path()),
        ["blazeface_short", "blazeface_full", "face_mesh", "iris"]
    );
    assert_eq!(scores_of(dir.path()), from_onnx);

    // The cache key follows the model: another hash or input size → another file.
    let mut other = v2.clone();
    other.sha256 = "0".repeat(64);
    assert_ne!(plan_cache::paths(dir.path(), &other).0, path);
    let mut other = v2.clone();
    other.input.width += 1;
    assert_ne!(plan_cache::paths(dir.path(), &other).0, path);
}

/// The cache format is tied to the tract version actually built.
#[test]
fn plan_cache_version_matches_cargo_lock() {
    let lock = std::fs::read_to_string(repo().join("Cargo.lock")).expect("Cargo.lock");
    let want = format!(
        "name = \"tract-core\"\nversion = \"{}\"",
        ekyc_models::plan_cache::TRACT_VERSION
    );
    assert!(lock.contains(&want), "Cargo.lock does not pin {want}");
}
