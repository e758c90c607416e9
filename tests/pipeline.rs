//! End-to-end tests of the core on the real testdata images.

mod common;

use common::{has, images_in, p, pipeline, read, settings, LIVE};
use ekyc_core::quality::ReasonCode;
use ekyc_core::{CheckOptions, Status, Verdict};
use image::{DynamicImage, ImageFormat, RgbImage};
use std::collections::BTreeSet;
use std::io::Cursor;

const CHECKS: CheckOptions = CheckOptions {
    enable_checks: true,
};
const NO_CHECKS: CheckOptions = CheckOptions {
    enable_checks: false,
};

fn run(rel: &str, opts: CheckOptions) -> Verdict {
    p().run(&read(rel), opts)
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn codes(v: &Verdict) -> BTreeSet<&'static str> {
    v.reasons.iter().map(|r| r.code.as_str()).collect()
}

fn encode(img: &RgbImage, fmt: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(img.clone())
        .write_to(&mut out, fmt)
        .expect("encode");
    out.into_inner()
}

fn decoded(rel: &str) -> RgbImage {
    ekyc_core::decode::decode(&read(rel), &settings().pipeline().limits)
        .expect("decode")
        .image
}

/// Scores and boxes match the independent Python/onnxruntime reference (tools/reference.py, run on
/// the pixels our decoder produced) within 1e-4 on every live and spoof image (the issue asks 1e-3;
/// 1e-4 also shows that no speed change — PReLU rewrite, parallel ensemble — moved a score): each
/// model's live probability and the calibrated liveness score of the default ensemble.
#[test]
fn scores_match_independent_reference() {
    if pipeline().is_none() {
        return;
    }
    let path = common::repo().join("tests/fixtures/reference_scores.json");
    let text = std::fs::read_to_string(&path).expect("reference fixture");
    let fixture: serde_json::Value = serde_json::from_str(&text).expect("fixture json");
    let images = fixture["images"].as_array().expect("images");
    let expected: BTreeSet<String> = images_in("live")
        .into_iter()
        .chain(images_in("spoof"))
        .collect();
    let covered: BTreeSet<String> = images
        .iter()
        .map(|i| i["path"].as_str().unwrap_or("").to_string())
        .collect();
    // Every available live/ and spoof/ image has a reference (all of them where ../shared exists).
    if common::shared().is_some() {
        assert_eq!(
            covered, expected,
            "fixture must cover every live/ and spoof/ image"
        );
    } else {
        assert!(
            expected.is_subset(&covered),
            "fixture must cover every vendored image"
        );
    }
    for img in images {
        let rel = img["path"].as_str().expect("path");
        if !has(rel) {
            continue;
        }
        let v = run(rel, NO_CHECKS);
        let face = v.face.as_ref().unwrap_or_else(|| panic!("{rel}: no face"));
        let b = img["faces"][0]["box"].as_array().expect("box");
        let got = [face.bbox.x, face.bbox.y, face.bbox.width, face.bbox.height];
        for (g, e) in got.iter().zip(b) {
            let e = e.as_f64().expect("num") as f32;
            assert!(
                (g - e).abs() < 0.05,
                "{rel}: box {got:?} vs reference {b:?}"
            );
        }
        for s in &v.scores {
            let e = img["scores"][&s.model].as_f64().expect("model score") as f32;
            assert!(
                (s.live_probability - e).abs() < 1e-4,
                "{rel} {}: {} vs reference {e}",
                s.model,
                s.live_probability
            );
        }
        // The reference applies the manifest's calibration for the default ensemble itself.
        let e = img["liveness_score"].as_f64().expect("liveness_score") as f32;
        let got = v.liveness_score.expect("score");
        assert!(
            (got - e).abs() < 1e-4,
            "{rel}: liveness score {got} vs reference {e}"
        );
    }
}

/// Every bona fide capture passes the quality gate with the default thresholds (liveness decides
/// it: LIVE, SPOOF, or RETRY when its calibrated score is within the band around the threshold).
#[test]
fn every_live_image_passes_the_gate() {
    if pipeline().is_none() {
        return;
    }
    for rel in images_in("live") {
        let v = run(&rel, CHECKS);
        let allowed: &[&str] = if v.status == Status::Retry {
            &["UNCERTAIN_LIVENESS"]
        } else {
            &[]
        };
        assert!(
            codes(&v).iter().all(|c| allowed.contains(c)),
            "{rel}: unexpected reasons {:?}",
            codes(&v)
        );
        assert!(
            matches!(v.status, Status::Live | Status::Spoof | Status::Retry),
            "{rel}: {:?}",
            v.status
        );
        assert!(v.liveness_score.is_some());
    }
}

/// The quality cases in other/ fail with the right reasons (exact sets; hand-checked by looking at
/// each image). Cases the gate cannot see are listed with an empty set and why.
#[test]
fn quality_cases_fail_with_the_right_reasons() {
    if pipeline().is_none() {
        return;
    }
    let table: &[(&str, Status, &[&str])] = &[
        (
            "other/facerec_two_people.jpg",
            Status::QualityFailed,
            &["MULTIPLE_FACES"],
        ),
        (
            "other/facerec_obama_partial_face.jpg",
            Status::QualityFailed,
            &["FACE_CUT_OFF"],
        ),
        // Full-body shot: the face is 14 % of the picture height.
        (
            "other/facerec_obama3.jpg",
            Status::QualityFailed,
            &["FACE_TOO_SMALL"],
        ),
        // 427x240: eyes ~23 px apart.
        (
            "other/facerec_obama-240p.jpg",
            Status::QualityFailed,
            &["FACE_TOO_SMALL"],
        ),
        // 25x25 crops: eyes 9 px apart, and upscaled pixels have no detail.
        (
            "other/skimage_lfw_subset_000_face.png",
            Status::QualityFailed,
            &["FACE_TOO_SMALL", "BLURRY"],
        ),
        (
            "other/skimage_lfw_subset_001_face.png",
            Status::QualityFailed,
            &["FACE_TOO_SMALL", "BLURRY"],
        ),
        // 25x25 background patch: not a face (and very dark).
        (
            "other/skimage_lfw_subset_150_nonface.png",
            Status::NoFace,
            &["NO_FACE", "TOO_DARK"],
        ),
        (
            "other/skimage_chelsea_noface.png",
            Status::NoFace,
            &["NO_FACE"],
        ),
        // Cartoon face on an ID template: no real face.
        (
            "other/aws_thai_id_template.png",
            Status::NoFace,
            &["NO_FACE"],
        ),
        // Head turned to the side and tilted (the face mesh: yaw 33°, pitch 29°); its 31 px eye
        // distance passes the 28 px limit set on the labelled webcam captures.
        (
            "other/aws_nosepoint.png",
            Status::QualityFailed,
            &["HEAD_YAW", "HEAD_PITCH"],
        ),
        // Closed eyes: the iris model's eyelid contour (openness 0.12; open eyes measure 0.22 and
        // more on the labelled webcam captures).
        (
            "other/aws_eyesclosed.png",
            Status::QualityFailed,
            &["EYES_CLOSED"],
        ),
        // A thin red crosshair drawn over the face is not a quality defect the checks measure.
        ("other/aws_selfie_overlay.png", Status::Live, &[]),
    ];
    let listed: BTreeSet<String> = table.iter().map(|t| t.0.to_string()).collect();
    let all: BTreeSet<String> = images_in("other").into_iter().collect();
    assert!(
        all.is_subset(&listed),
        "every image in other/ needs an expectation: {:?}",
        all.difference(&listed).collect::<Vec<_>>()
    );
    if common::shared().is_some() {
        assert_eq!(listed, all, "every expectation needs its image");
    }
    for (rel, status, want) in table {
        if !has(rel) {
            continue;
        }
        let v = run(rel, CHECKS);
        let want: BTreeSet<&str> = want.iter().copied().collect();
        assert_eq!(codes(&v), want, "{rel}: reasons");
        assert_eq!(v.status, *status, "{rel}: status");
        for r in &v.reasons {
            assert!(!r.message.is_empty());
            if r.code != ReasonCode::NoFace {
                assert!(
                    r.score.is_some() && r.limit.is_some(),
                    "{rel}: {:?} lacks score/limit",
                    r.code
                );
            }
        }
        if *status == Status::QualityFailed {
            assert!(
                v.liveness_score.is_none() && !v.is_live,
                "{rel}: liveness must not run"
            );
        }
    }
}

/// Boxes and keypoints sit on the faces (positions read off the images by hand).
#[test]
fn detections_sit_on_the_faces() {
    if pipeline().is_none() {
        return;
    }
    // Eileen Collins, 512x512: face roughly x 179..272, y 81..174; right eye (image left) ~ (205,100).
    let v = run("live/skimage_astronaut.jpg", CHECKS);
    let f = v.face.expect("face");
    assert!(
        (f.bbox.x - 179.0).abs() < 4.0 && (f.bbox.y - 81.0).abs() < 4.0,
        "{:?}",
        f.bbox
    );
    assert!(
        (f.bbox.width - 93.0).abs() < 6.0 && (f.bbox.height - 93.0).abs() < 6.0,
        "{:?}",
        f.bbox
    );
    let (re, le, nose) = (f.keypoints[0], f.keypoints[1], f.keypoints[2]);
    assert!(
        (re.x - 205.0).abs() < 4.0 && (re.y - 100.0).abs() < 4.0,
        "right eye {re:?}"
    );
    assert!(
        (le.x - 249.0).abs() < 4.0 && (le.y - 108.0).abs() < 4.0,
        "left eye {le:?}"
    );
    assert!(
        nose.x > re.x && nose.x < le.x && nose.y > re.y,
        "nose {nose:?}"
    );

    // Minivision T1 is stored 640x480 with EXIF Orientation=6: upright 480x640, face upright in it.
    let v = run("live/minivision_image_T1.jpg", CHECKS);
    assert_eq!(
        (v.image.width, v.image.height, v.image.exif_orientation),
        (480, 640, 6)
    );
    let f = v.face.expect("face");
    assert!(
        f.keypoints[0].y < f.keypoints[3].y,
        "eyes above the mouth when upright"
    );
    assert!(
        (f.bbox.x - 96.0).abs() < 5.0 && (f.bbox.y - 166.0).abs() < 5.0,
        "{:?}",
        f.bbox
    );

    // Two people side by side: two faces, both about the same size, one on each half.
    let two = common::two_faces_png();
    let d = ekyc_core::decode::decode(&two, &settings().pipeline().limits).expect("decode");
    let faces = p().detect(&d).expect("detect").faces;
    assert_eq!(faces.len(), 2);
    let half = d.image.width() as f32 / 2.0;
    let mut xs: Vec<f32> = faces.iter().map(|f| f.bbox.center().x).collect();
    xs.sort_by(f32::total_cmp);
    assert!(
        xs[0] < half && xs[1] > half,
        "one face per half of the image: {xs:?}"
    );
    let (a, b) = (faces[0].bbox.area(), faces[1].bbox.area());
    assert!(a.min(b) / a.max(b) > 0.5, "similar sizes: {a} vs {b}");

    // A small passport photo is missed by the short-range model and found by the full-range fallback.
    if !has("id/passporteye_100_pass-bdr.jpg") {
        return;
    }
    let v = run("id/passporteye_100_pass-bdr.jpg", NO_CHECKS);
    assert_eq!(v.detector.as_deref(), Some("blazeface_full"));
    let f = v.face.expect("face");
    assert!(
        f.bbox.x > 0.0 && f.bbox.x + f.bbox.width < 1874.0 / 2.0,
        "photo is on the left half: {:?}",
        f.bbox
    );
}

/// Degraded copies of a good capture fail with the matching reason, all at once.
#[test]
fn degraded_captures_fail_with_matching_reasons() {
    if pipeline().is_none() {
        return;
    }
    let img = decoded(LIVE);
    let base = run(LIVE, CHECKS);
    assert_eq!(base.status, Status::Live);

    let blurred = image::imageops::blur(&img, 6.0);
    let v = p()
        .run(&encode(&blurred, ImageFormat::Png), CHECKS)
        .expect("run");
    assert_eq!(codes(&v), BTreeSet::from(["BLURRY"]), "{:?}", v.quality);

    let mut dark = img.clone();
    dark.pixels_mut().for_each(|p| p.0 = p.0.map(|c| c / 8));
    let v = p()
        .run(&encode(&dark, ImageFormat::Png), CHECKS)
        .expect("run");
    assert!(
        codes(&v).contains("TOO_DARK"),
        "{:?} {:?}",
        codes(&v),
        v.quality
    );

    let mut bright = img.clone();
    bright
        .pixels_mut()
        .for_each(|p| p.0 = p.0.map(|c| 255 - (255 - c) / 10));
    let v = p()
        .run(&encode(&bright, ImageFormat::Png), CHECKS)
        .expect("run");
    assert!(
        codes(&v).contains("TOO_BRIGHT"),
        "{:?} {:?}",
        codes(&v),
        v.quality
    );

    // Dark and blurred: both reasons reported together.
    let mut both = image::imageops::blur(&img, 6.0);
    both.pixels_mut().for_each(|p| p.0 = p.0.map(|c| c / 8));
    let v = p()
        .run(&encode(&both, ImageFormat::Png), CHECKS)
        .expect("run");
    let c = codes(&v);
    assert!(c.contains("TOO_DARK") && c.contains("BLURRY"), "{c:?}");

    // Rolled 45 degrees (the limit is 35): HEAD_ROLL.
    let rolled = rotate(&img, 45f32.to_radians());
    let v = p()
        .run(&encode(&rolled, ImageFormat::Png), CHECKS)
        .expect("run");
    assert!(
        codes(&v).contains("HEAD_ROLL"),
        "{:?} {:?}",
        codes(&v),
        v.quality
    );
    assert!(v.quality.roll_deg.expect("roll").abs() > 35.0);
}

/// Rotate about the centre (nearest neighbour), keeping the size.
fn rotate(img: &RgbImage, a: f32) -> RgbImage {
    let (w, h) = img.dimensions();
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    RgbImage::from_fn(w, h, |x, y| {
        let (dx, dy) = (x as f32 - cx, y as f32 - cy);
        let sx = cx + dx * a.cos() + dy * a.sin();
        let sy = cy - dx * a.sin() + dy * a.cos();
        if sx >= 0.0 && sy >= 0.0 && (sx as u32) < w && (sy as u32) < h {
            *img.get_pixel(sx as u32, sy as u32)
        } else {
            image::Rgb([0, 0, 0])
        }
    })
}

/// enable_checks=false scores the largest face even when the gate would reject it.
#[test]
fn checks_off_scores_the_largest_face() {
    if pipeline().is_none() {
        return;
    }
    let two = common::two_faces_png();
    let gated = p().run(&two, CHECKS).expect("run");
    assert_eq!(gated.status, Status::QualityFailed);
    let v = p().run(&two, NO_CHECKS).expect("run");
    assert!(matches!(v.status, Status::Live | Status::Spoof));
    assert!(v.reasons.is_empty() && v.liveness_score.is_some() && !v.checks_enabled);
    assert_eq!(v.quality.faces, 2, "measurements are still reported");
    // No face is still NO_FACE.
    assert_eq!(
        run("other/skimage_chelsea_noface.png", NO_CHECKS).status,
        Status::NoFace
    );
}

/// The verdict carries everything the API promises.
#[test]
fn verdict_json_has_the_documented_fields() {
    if pipeline().is_none() {
        return;
    }
    let v = run(LIVE, CHECKS);
    let j = serde_json::to_value(&v).expect("json");
    for k in [
        "status",
        "is_live",
        "liveness_score",
        "confidence",
        "threshold",
        "reasons",
        "scores",
        "quality",
        "face",
        "timings",
        "models",
        "image",
    ] {
        assert!(j.get(k).is_some(), "missing {k}");
    }
    assert_eq!(j["status"], "LIVE");
    // Two detectors, the liveness model, the face mesh, the iris model and the face embedding.
    assert_eq!(j["models"].as_array().map(|a| a.len()), Some(6));
    assert_eq!(j["face"]["keypoints"].as_array().map(|a| a.len()), Some(6));
    assert!(j["timings"]["total_ms"].as_f64().unwrap_or(0.0) > 0.0);
    let s = v.liveness_score.expect("score");
    assert!(
        (v.confidence.expect("conf") - s).abs() < 1e-6,
        "confidence of a LIVE verdict is its score"
    );
}

/// `liveness_score` is the fused score through the manifest's calibration for exactly the active
/// ensemble (`auto`), through none with `none`, through the given Platt parameters with `a,b`; an
/// ensemble the manifest has no entry for is not calibrated.
#[test]
fn calibration_is_the_manifests_for_the_active_ensemble() {
    if pipeline().is_none() {
        return;
    }
    use ekyc_core::liveness::Platt;
    use ekyc_core::Calibration;
    let image = read(LIVE);
    let default = pipeline().expect("p").run(&image, CHECKS).expect("run");
    let raw = f64::from(default.scores[0].live_probability);
    let manifest = ekyc_models::Manifest::load(&common::repo().join("models/manifest.toml"))
        .expect("manifest");
    let entry = manifest
        .calibrations
        .iter()
        .find(|c| c.fits(&["apk_v1_crop27"], "mean_probability"))
        .expect("the default ensemble has a calibration");
    let platt = Platt {
        a: entry.platt[0],
        b: entry.platt[1],
    };
    assert_eq!(default.scores.len(), 1);
    let want = platt.apply(raw) as f32;
    assert!(
        (default.liveness_score.expect("score") - want).abs() < 1e-6,
        "{:?} vs {want}",
        default.liveness_score
    );
    assert_eq!(
        pipeline().expect("p").config().decision.calibration,
        Calibration::Platt(platt)
    );
    let with = |cal: Calibration| {
        let mut c = settings();
        c.decision.calibration = cal;
        let p = c.load_local_pipeline().expect("load");
        (
            p.run(&image, CHECKS).expect("run"),
            p.config().decision.calibration,
        )
    };
    let (v, resolved) = with(Calibration::None);
    assert_eq!(resolved, Calibration::None);
    assert_eq!(v.liveness_score, Some(raw as f32));
    let given = Platt { a: 2.0, b: -1.0 };
    let (v, _) = with(Calibration::Platt(given));
    assert!((v.liveness_score.expect("score") - given.apply(raw) as f32).abs() < 1e-6);
    // The former pair has no entry: auto resolves to none, and its score is the plain mean.
    if common::repo().join("models/MiniFASNetV1SE.onnx").exists() {
        let mut c = settings();
        c.models.liveness_models = vec!["MiniFASNetV2".into(), "MiniFASNetV1SE".into()];
        let p = c.load_local_pipeline().expect("load");
        assert_eq!(p.config().decision.calibration, Calibration::None);
        let v = p.run(&image, CHECKS).expect("run");
        let mean = (v.scores[0].live_probability + v.scores[1].live_probability) / 2.0;
        assert!((v.liveness_score.expect("score") - mean).abs() < 1e-6);
    }
}

/// The threshold decides: a stricter threshold turns the same score into SPOOF.
#[test]
fn threshold_is_configurable() {
    if pipeline().is_none() {
        return;
    }
    let mut c = settings();
    c.decision.liveness_threshold = 0.99;
    c.decision.retry_band = 0.0;
    let strict = c.load_local_pipeline().expect("load");
    let v = strict
        .run(&read("live/vietmoney_true_002.jpg"), CHECKS)
        .expect("run");
    assert!(v.liveness_score.expect("score") < 0.99);
    assert_eq!(v.status, Status::Spoof);
    assert_eq!(v.threshold, 0.99);
}

/// RETRY: a score within the band around the threshold, or models that disagree, asks for
/// another capture (also with checks off); the reasons say which and by how much.
#[test]
fn weak_evidence_is_retry() {
    if pipeline().is_none() {
        return;
    }
    let image = read("live/vietmoney_true_002.jpg");
    // A threshold 0.05 above its score puts it within the 0.1 band.
    let score = pipeline()
        .expect("p")
        .run(&image, CHECKS)
        .expect("run")
        .liveness_score
        .expect("score");
    let mut c = settings();
    c.decision.liveness_threshold = score + 0.05;
    let p = c.load_local_pipeline().expect("load");
    for opts in [CHECKS, NO_CHECKS] {
        let v = p.run(&image, opts).expect("run");
        assert_eq!(v.status, Status::Retry, "{:?}", v.liveness_score);
        assert!(!v.is_live && v.confidence.is_none() && v.liveness_score.is_some());
        assert_eq!(codes(&v), BTreeSet::from(["UNCERTAIN_LIVENESS"]));
        let r = &v.reasons[0];
        assert_eq!((r.metric, r.limit), (Some("threshold_distance"), Some(0.1)));
    }
    // The default threshold decides it LIVE; a zero spread limit makes any disagreement of a
    // two-model ensemble RETRY (one model never disagrees).
    if !common::repo().join("models/MiniFASNetV1SE.onnx").exists() {
        common::skip("MiniFASNetV2 + MiniFASNetV1SE (`ekyc models fetch --all`)");
        return;
    }
    let mut c = settings();
    c.decision.retry_max_spread = 0.0;
    c.models.liveness_models = vec!["MiniFASNetV2".into(), "MiniFASNetV1SE".into()];
    let p = c.load_local_pipeline().expect("load");
    let v = p.run(&image, CHECKS).expect("run");
    assert_eq!(v.status, Status::Retry);
    assert_eq!(codes(&v), BTreeSet::from(["MODELS_DISAGREE"]));
    let spread = v.reasons[0].score.expect("spread");
    let probs: Vec<f32> = v.scores.iter().map(|s| s.live_probability).collect();
    let want = probs.iter().copied().fold(f32::MIN, f32::max)
        - probs.iter().copied().fold(f32::MAX, f32::min);
    assert!(
        (spread - want).abs() < 1e-6 && spread > 0.0,
        "{spread} {probs:?}"
    );
    assert_eq!(
        pipeline()
            .expect("p")
            .run(&image, CHECKS)
            .expect("run")
            .status,
        Status::Live
    );
}

/// The same image as PNG, WebP and JPEG gives the same verdict; a large JPEG is decoded at reduced scale.
#[test]
fn formats_and_large_jpegs() {
    if pipeline().is_none() {
        return;
    }
    let img = decoded(LIVE);
    let png = p()
        .run(&encode(&img, ImageFormat::Png), CHECKS)
        .expect("png");
    let webp = p()
        .run(&encode(&img, ImageFormat::WebP), CHECKS)
        .expect("webp");
    assert_eq!(png.image.format, "png");
    assert_eq!(webp.image.format, "webp");
    assert_eq!(
        png.liveness_score, webp.liveness_score,
        "lossless WebP = same pixels"
    );

    // 12-MP class JPEG (4000x3000 upscale): decoded at 1/2 scale, face found, coordinates in original pixels.
    let big = image::imageops::resize(
        &decoded("live/vietmoney_true_001.jpg"),
        4000,
        3000,
        image::imageops::FilterType::Triangle,
    );
    let v = p()
        .run(&encode(&big, ImageFormat::Jpeg), CHECKS)
        .expect("big");
    assert_eq!((v.image.width, v.image.height), (4000, 3000));
    assert!(
        v.image.decode_scale >= 2,
        "decode_scale {}",
        v.image.decode_scale
    );
    assert_eq!(v.status, Status::Live, "{:?}", v.reasons);
    let f = v.face.expect("face");
    // Same face as in the 1440x1080 original (box x ~607), scaled by 4000/1440.
    assert!(
        (f.bbox.x - 607.0 * 4000.0 / 1440.0).abs() < 30.0,
        "{:?}",
        f.bbox
    );
}
