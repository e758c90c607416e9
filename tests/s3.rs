//! S3 paths against a real S3-compatible server (s3s-fs, started here on 127.0.0.1 with a temp dir):
//! models at cold start, `models push`, and the upload trigger with real S3 event JSON.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use common::s3s::{bucket, client, client_with, event};
use common::{read, repo, settings, LIVE};
use ekyc_aws::trigger::{Outcome, Trigger};
use ekyc_aws::LoadError;
use ekyc_aws::{load_pipeline_with, models};
use ekyc_core::{CheckOptions, ModelError, Pipeline};
use serde_json::Value;
use std::sync::Arc;

async fn put(bucket: &str, key: &str, data: Vec<u8>) {
    client()
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(data))
        .send()
        .await
        .expect("put");
}

async fn get_json(bucket: &str, key: &str) -> Option<Value> {
    let out = client()
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .ok()?;
    let b = out.body.collect().await.ok()?.into_bytes();
    serde_json::from_slice(&b).ok()
}

/// The files of a default model prefix (manifest + the six default models).
const MODEL_FILES: [&str; 7] = [
    "manifest.toml",
    "face_detection_short_range.onnx",
    "face_detection_full_range.onnx",
    "face_landmark.onnx",
    "iris_landmark.onnx",
    "apk_v1_crop27.onnx",
    "MobileFaceNet.onnx",
];

/// Models pushed once to s3://models/v1/.
async fn pushed_models() -> &'static str {
    static DONE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    DONE.get_or_init(|| async {
        let b = bucket("models").await;
        let up = models::push(&client(), &repo().join("models"), &b, "v1", &[], false)
            .await
            .expect("push");
        // tools/test.sh's `ekyc models fetch --all` wrote the compiled plans, pushed alongside.
        let plans = up.iter().filter(|k| k.contains("/v1/.plans/")).count();
        assert_eq!(up.len() - plans, 7, "6 default models + manifest: {up:?}");
        assert_eq!(plans, 12, "a plan + its sha256 sidecar per model: {up:?}");
        assert!(
            up.last().is_some_and(|k| k.ends_with("v1/manifest.toml")),
            "manifest uploaded last"
        );
    })
    .await;
    "models"
}

fn s3_config(bucket: &str, prefix: &str) -> ekyc_liveness::Settings {
    let mut c = settings();
    c.models.model_bucket = Some(bucket.into());
    c.models.model_prefix = prefix.into();
    c
}

/// Load the pipeline `c` describes with the test server's client.
async fn load(
    c: ekyc_liveness::Settings,
    client: &aws_sdk_s3::Client,
) -> Result<Pipeline, LoadError> {
    load_pipeline_with(&c.location(), &c.selection(), c.pipeline(), Some(client)).await
}

/// The S3 suites need the models and the s3s-fs binary (tools/test.sh installs it).
fn ready() -> bool {
    if !common::models_present() {
        return false;
    }
    common::s3s::available()
}

#[tokio::test]
async fn cold_start_from_s3_matches_local_models() {
    if !ready() {
        return;
    }
    let b = pushed_models().await;
    let t = std::time::Instant::now();
    let from_s3 = load(s3_config(b, "v1/"), &client())
        .await
        .expect("load from S3");
    eprintln!(
        "cold start from S3 (download + verify + plans): {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(from_s3.origin(), "s3://models/v1/");
    let local = common::p();
    assert_eq!(from_s3.models(), local.models());
    let cached: Vec<&str> = from_s3
        .models()
        .iter()
        .filter(|m| m.from_plan_cache)
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(
        cached,
        [
            "blazeface_short",
            "blazeface_full",
            "apk_v1_crop27",
            "face_mesh",
            "iris",
            "mobilefacenet"
        ]
    );
    for rel in [
        LIVE,
        "spoof/minivision_image_F2.jpg",
        "other/aws_nosepoint.png",
    ] {
        let a = from_s3
            .run(&read(rel), CheckOptions::default())
            .expect("s3 verdict");
        let l = local
            .run(&read(rel), CheckOptions::default())
            .expect("local verdict");
        assert_eq!(
            (a.status, a.liveness_score),
            (l.status, l.liveness_score),
            "{rel}"
        );
    }
    // Plans are optional: without them (or with a damaged one) the plans are built from the ONNX.
    let m = ekyc_models::manifest::Manifest::load(&repo().join("models/manifest.toml"))
        .expect("manifest");
    for f in MODEL_FILES {
        let data = std::fs::read(repo().join("models").join(f)).expect("local model");
        put(b, &format!("noplans/{f}"), data.clone()).await;
        put(b, &format!("badplan/{f}"), data).await;
    }
    let apk = m.get("apk_v1_crop27").expect("entry");
    let (tar, sidecar) = ekyc_models::plan_cache::relative_paths(apk);
    let mut data = std::fs::read(repo().join("models").join(&tar)).expect("local plan");
    let n = data.len() / 2;
    data[n] ^= 0x40;
    put(b, &format!("badplan/{tar}"), data).await;
    let side = std::fs::read(repo().join("models").join(&sidecar)).expect("sidecar");
    put(b, &format!("badplan/{sidecar}"), side).await;
    for prefix in ["noplans/", "badplan/"] {
        let p = load(s3_config(b, prefix), &client())
            .await
            .expect("load without plans");
        assert!(p.models().iter().all(|m| !m.from_plan_cache), "{prefix}");
        let rel = "spoof/minivision_image_F2.jpg";
        let (a, l) = (
            p.run(&read(rel), CheckOptions::default()).expect("verdict"),
            local
                .run(&read(rel), CheckOptions::default())
                .expect("verdict"),
        );
        assert_eq!((a.status, a.liveness_score), (l.status, l.liveness_score));
    }
    // Prefix without the trailing slash is the same place.
    let again = load(s3_config(b, "v1"), &client()).await.expect("no slash");
    assert_eq!(again.origin(), "s3://models/v1/");
}

#[tokio::test]
async fn tampered_or_missing_model_objects_fail_init_clearly() {
    if !ready() {
        return;
    }
    let b = pushed_models().await;
    // Copy v1 to "tampered/", flipping one byte of the liveness model; "partial/" lacks the mesh.
    for f in MODEL_FILES {
        let mut data = std::fs::read(repo().join("models").join(f)).expect("local model");
        if f == "apk_v1_crop27.onnx" {
            let n = data.len() / 2;
            data[n] ^= 0x40;
        }
        put(b, &format!("tampered/{f}"), data.clone()).await;
        if f != "face_landmark.onnx" {
            put(b, &format!("partial/{f}"), data).await;
        }
    }
    let err = load(s3_config(b, "tampered/"), &client())
        .await
        .err()
        .expect("must fail");
    match &err {
        LoadError::Model(ModelError::HashMismatch { name, origin, .. }) => {
            assert_eq!(name, "apk_v1_crop27");
            assert!(origin.contains("s3://models/tampered/"), "{origin}");
        }
        other => panic!("expected a hash mismatch, got {other}"),
    }
    let err = load(s3_config(b, "partial/"), &client())
        .await
        .err()
        .expect("must fail");
    assert!(
        matches!(&err, LoadError::Model(ModelError::Missing { name, tried }) if name == "face_mesh" && tried.contains("s3://models/partial/face_landmark.onnx")),
        "{err}"
    );
    let err = load(s3_config(b, "nothing-here/"), &client())
        .await
        .err()
        .expect("must fail");
    assert!(
        matches!(&err, LoadError::Model(ModelError::Missing { name, .. }) if name == "manifest"),
        "{err}"
    );
    // Wrong credentials: access denied, named.
    let err = load(s3_config(b, "v1/"), &client_with("wrong-secret"))
        .await
        .err()
        .expect("must fail");
    assert_eq!(err.code(), "MODEL_FETCH", "{err}");
}

/// A trigger over the uploads bucket, with the pushed models.
async fn trigger(max_image_bytes: Option<usize>) -> Trigger {
    let b = pushed_models().await;
    let mut c = s3_config(b, "v1/");
    if let Some(m) = max_image_bytes {
        c.limits.max_image_bytes = m;
    }
    Trigger {
        client: client(),
        pipeline: Arc::new(load(c.clone(), &client()).await.expect("models")),
        config: c.s3(),
    }
}

#[tokio::test]
async fn upload_is_verified_once_and_written_as_result() {
    if !ready() {
        return;
    }
    let b = bucket("uploads-a").await;
    let t = trigger(None).await;
    put(
        &b,
        "uploads/selfie-0001.png",
        read("spoof/hyperfas_fake_screen.png"),
    )
    .await;
    let reports = t
        .handle(event("s3-put-image.json", &b, None), "req-1")
        .await
        .expect("handled");
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].outcome, Outcome::Written);
    assert_eq!(
        reports[0].result_key.as_deref(),
        Some("results/selfie-0001.png.json")
    );
    let doc = get_json(&b, "results/selfie-0001.png.json")
        .await
        .expect("result object");
    assert_eq!(doc["status"], "SPOOF", "{doc}");
    assert_eq!(doc["verdict"]["status"], "SPOOF");
    assert_eq!(doc["source"]["key"], "uploads/selfie-0001.png");
    assert!(
        doc["source"]["etag"]
            .as_str()
            .is_some_and(|e| e.len() >= 16),
        "{doc}"
    );
    assert_eq!(doc["models"].as_array().map(|m| m.len()), Some(6));
    assert!(doc["models"][0]["sha256"]
        .as_str()
        .is_some_and(|s| s.len() == 64));
    assert!(
        doc["processed_at"]
            .as_str()
            .is_some_and(|s| s.starts_with("20")),
        "{doc}"
    );
    assert_eq!(doc["request_id"], "req-1");
    let etag = |c: aws_sdk_s3::Client| async move {
        c.head_object()
            .bucket("uploads-a")
            .key("results/selfie-0001.png.json")
            .send()
            .await
            .expect("head")
            .e_tag()
            .map(str::to_string)
    };
    let before = etag(client()).await;

    // The same event again (S3 at-least-once, Lambda retry): skipped, result untouched.
    let again = t
        .handle(event("s3-put-image.json", &b, None), "req-2")
        .await
        .expect("handled");
    assert_eq!(again[0].outcome, Outcome::Duplicate);
    assert_eq!(etag(client()).await, before);
    assert_eq!(
        get_json(&b, "results/selfie-0001.png.json")
            .await
            .expect("result")["request_id"],
        "req-1"
    );

    // A new upload under the same key (new ETag) is processed again and replaces the result.
    put(&b, "uploads/selfie-0001.png", read(LIVE)).await;
    let third = t
        .handle(event("s3-put-image.json", &b, None), "req-3")
        .await
        .expect("handled");
    assert_eq!(third[0].outcome, Outcome::Written);
    let doc = get_json(&b, "results/selfie-0001.png.json")
        .await
        .expect("result");
    assert_eq!(
        (doc["status"].as_str(), doc["request_id"].as_str()),
        (Some("LIVE"), Some("req-3"))
    );
}

#[tokio::test]
async fn bad_uploads_get_error_results_not_retries() {
    if !ready() {
        return;
    }
    let b = bucket("uploads-b").await;
    let t = trigger(Some(400_000)).await;
    put(
        &b,
        "uploads/notes.txt",
        b"these are not the pixels you are looking for".to_vec(),
    )
    .await;
    let r = t
        .handle(event("s3-put-not-image.json", &b, None), "req-n")
        .await
        .expect("an error result is not a failure");
    assert_eq!(r[0].outcome, Outcome::Written);
    let doc = get_json(&b, "results/notes.txt.json")
        .await
        .expect("result");
    assert_eq!(
        (doc["status"].as_str(), doc["error"]["code"].as_str()),
        (Some("ERROR"), Some("NOT_AN_IMAGE")),
        "{doc}"
    );
    assert!(doc["verdict"].is_null());

    let jpeg = read(LIVE);
    put(&b, "uploads/cut.jpg", jpeg[..jpeg.len() / 2].to_vec()).await;
    t.handle(
        event("s3-put-image.json", &b, Some("uploads/cut.jpg")),
        "req-c",
    )
    .await
    .expect("handled");
    assert_eq!(
        get_json(&b, "results/cut.jpg.json").await.expect("result")["error"]["code"],
        "TRUNCATED_IMAGE"
    );

    // Over the size limit (400 kB here): refused from the object's size, before downloading it.
    put(&b, "uploads/big.jpg", vec![0u8; 500_000]).await;
    t.handle(
        event("s3-put-image.json", &b, Some("uploads/big.jpg")),
        "req-b",
    )
    .await
    .expect("handled");
    assert_eq!(
        get_json(&b, "results/big.jpg.json").await.expect("result")["error"]["code"],
        "IMAGE_TOO_MANY_BYTES"
    );
}

#[tokio::test]
async fn encoded_keys_batches_and_prefixes() {
    if !ready() {
        return;
    }
    let b = bucket("uploads-c").await;
    let t = trigger(None).await;
    // events/s3-put-encoded-key.json: "uploads/customer+42/sj%C3%B6+selfie%20%C3%A9t%C3%A9.png"
    let key = "uploads/customer 42/sjö selfie été.png";
    put(&b, key, read("live/vietmoney_true_001.jpg")).await;
    let r = t
        .handle(event("s3-put-encoded-key.json", &b, None), "req-u")
        .await
        .expect("handled");
    assert_eq!(r[0].key, key);
    assert_eq!(r[0].outcome, Outcome::Written);
    let doc = get_json(&b, "results/customer 42/sjö selfie été.png.json")
        .await
        .expect("result under the decoded key");
    assert_eq!(doc["status"], "LIVE");
    // A literal '+' arrives as %2B.
    put(&b, "uploads/a+b.jpg", read("live/minivision_image_T1.jpg")).await;
    t.handle(
        event("s3-put-image.json", &b, Some("uploads/a%2Bb.jpg")),
        "req-p",
    )
    .await
    .expect("handled");
    assert!(get_json(&b, "results/a+b.jpg.json").await.is_some());

    // A batch: good image, deleted object, key outside the prefix, a results/ key (no recursion),
    // and a non-image. Every record is handled; nothing fails.
    put(&b, "uploads/ok.png", read(LIVE)).await;
    put(&b, "uploads/junk.bin", vec![1, 2, 3]).await;
    let mut ev = event("s3-put-image.json", &b, Some("uploads/ok.png"));
    let template = ev.records[0].clone();
    for k in [
        "uploads/deleted.jpg",
        "elsewhere/x.jpg",
        "results/ok.png.json",
        "uploads/junk.bin",
    ] {
        let mut r = template.clone();
        r.s3.object.key = Some(k.into());
        ev.records.push(r);
    }
    let reports = t.handle(ev, "req-batch").await.expect("batch handled");
    let outcomes: Vec<(String, Outcome)> =
        reports.into_iter().map(|r| (r.key, r.outcome)).collect();
    assert_eq!(
        outcomes,
        vec![
            ("uploads/ok.png".into(), Outcome::Written),
            ("uploads/deleted.jpg".into(), Outcome::Gone),
            ("elsewhere/x.jpg".into(), Outcome::OutsidePrefix),
            ("results/ok.png.json".into(), Outcome::OutsidePrefix),
            ("uploads/junk.bin".into(), Outcome::Written),
        ]
    );
    assert_eq!(
        get_json(&b, "results/junk.bin.json").await.expect("result")["error"]["code"],
        "NOT_AN_IMAGE"
    );
}

#[tokio::test]
async fn infrastructure_failures_are_returned_for_retry() {
    if !ready() {
        return;
    }
    let b = bucket("uploads-d").await;
    put(&b, "uploads/selfie-0001.png", read(LIVE)).await;
    let good = trigger(None).await;
    let denied = Trigger {
        client: client_with("wrong-secret"),
        pipeline: good.pipeline.clone(),
        config: good.config.clone(),
    };
    let err = denied
        .handle(event("s3-put-image.json", &b, None), "req-x")
        .await
        .expect_err("must fail for a retry");
    assert_eq!((err.total, err.failures.len()), (1, 1));
    assert!(err.failures[0].contains("uploads/selfie-0001.png"), "{err}");
    assert!(
        get_json(&b, "results/selfie-0001.png.json").await.is_none(),
        "nothing written"
    );
    // The retry (with working access) succeeds.
    let r = good
        .handle(event("s3-put-image.json", &b, None), "req-y")
        .await
        .expect("retry");
    assert_eq!(r[0].outcome, Outcome::Written);
}

/// Two deliveries of the same event at the same time: each is handled and at least one writes; when
/// one writes, the result is one complete document and any later delivery is a duplicate.
/// (Exactly-one-writer under a true race depends on the server making `If-None-Match: *` atomic, as
/// AWS S3 does; s3s-fs 0.14 checks the condition and writes without a lock — in runs of this test
/// on the haswell build most races let both write, sometimes leaving the object unreadable — so
/// those races are reported, not asserted. The first race has always had a single writer.)
#[tokio::test]
async fn concurrent_deliveries_leave_one_result() {
    if !ready() {
        return;
    }
    let b = bucket("uploads-e").await;
    let t = trigger(None).await;
    let mut single_writer = 0;
    for i in 0..8 {
        let key = format!("uploads/race-{i}.jpg");
        put(&b, &key, read("live/minivision_image_T1.jpg")).await;
        let (a, c) = tokio::join!(
            t.handle(event("s3-put-image.json", &b, Some(&key)), "req-a"),
            t.handle(event("s3-put-image.json", &b, Some(&key)), "req-b")
        );
        let outcomes = [
            a.expect("a")[0].outcome.clone(),
            c.expect("c")[0].outcome.clone(),
        ];
        assert!(outcomes.contains(&Outcome::Written), "{outcomes:?}");
        if outcomes == [Outcome::Written, Outcome::Written] {
            // Both conditional writes went through: s3s-fs checks the condition and writes
            // without a lock, and two concurrent writes of one key can leave its object unreadable.
            // Nothing about the stored document can be asserted then (AWS S3 rejects the second).
            eprintln!("race-{i}: s3s-fs accepted both conditional writes");
            continue;
        }
        single_writer += 1;
        let doc = get_json(&b, &format!("results/race-{i}.jpg.json"))
            .await
            .unwrap_or_else(|| panic!("one result document ({outcomes:?})"));
        assert_eq!(doc["status"], "LIVE", "{doc}");
        assert!(
            matches!(doc["request_id"].as_str(), Some("req-a" | "req-b")),
            "{doc}"
        );
        let later = t
            .handle(event("s3-put-image.json", &b, Some(&key)), "req-c")
            .await
            .expect("later");
        assert_eq!(later[0].outcome, Outcome::Duplicate);
    }
    assert!(single_writer > 0, "every race let both writers through");
}

/// The match convention: `uploads/<case>/selfie.*` + `uploads/<case>/document.*` →
/// `results/<case>.json`. The first image's event waits for its pair; the second writes the
/// result; a duplicate delivery of either is skipped; a new document re-runs the match.
#[tokio::test]
async fn a_selfie_and_a_document_in_one_case_are_matched_once() {
    if !ready() {
        return;
    }
    let (selfie, same, other) = (
        "live/facerec_obama.jpg",
        "other/facerec_obama3.jpg",
        "id/passporteye_100_pass-uto.jpg",
    );
    if ![selfie, same, other].iter().all(|r| common::has(r)) {
        common::skip("the Obama photos and the Utopia passport (../shared/testdata/faces)");
        return;
    }
    let b = bucket("uploads-match").await;
    let t = trigger(None).await;
    put(&b, "uploads/case-7/selfie.jpg", read(selfie)).await;
    let first = t
        .handle(
            event("s3-put-image.json", &b, Some("uploads/case-7/selfie.jpg")),
            "req-m1",
        )
        .await
        .expect("handled");
    assert_eq!(first[0].outcome, Outcome::WaitingForPair);
    assert!(get_json(&b, "results/case-7.json").await.is_none());

    put(&b, "uploads/case-7/document.jpg", read(same)).await;
    let second = t
        .handle(
            event("s3-put-image.json", &b, Some("uploads/case-7/document.jpg")),
            "req-m2",
        )
        .await
        .expect("handled");
    assert_eq!(second[0].outcome, Outcome::Written);
    assert_eq!(second[0].result_key.as_deref(), Some("results/case-7.json"));
    let doc = get_json(&b, "results/case-7.json").await.expect("result");
    assert_eq!(doc["status"], "MATCH", "{doc}");
    assert_eq!(doc["outcome"]["match"], true);
    assert_eq!(doc["outcome"]["selfie"]["status"], "LIVE");
    assert_eq!(doc["selfie"]["key"], "uploads/case-7/selfie.jpg");
    assert_eq!(doc["document"]["key"], "uploads/case-7/document.jpg");
    // No per-image liveness results for the case's images.
    assert!(get_json(&b, "results/case-7/selfie.jpg.json")
        .await
        .is_none());

    // Both events again (at-least-once): skipped, the result kept.
    for key in ["uploads/case-7/selfie.jpg", "uploads/case-7/document.jpg"] {
        let again = t
            .handle(event("s3-put-image.json", &b, Some(key)), "req-m3")
            .await
            .expect("handled");
        assert_eq!(again[0].outcome, Outcome::Duplicate, "{key}");
    }
    assert_eq!(
        get_json(&b, "results/case-7.json").await.expect("result")["request_id"],
        "req-m2"
    );

    // Another person's document replaces the first: matched again, no match.
    put(&b, "uploads/case-7/document.jpg", read(other)).await;
    let third = t
        .handle(
            event("s3-put-image.json", &b, Some("uploads/case-7/document.jpg")),
            "req-m4",
        )
        .await
        .expect("handled");
    assert_eq!(third[0].outcome, Outcome::Written);
    let doc = get_json(&b, "results/case-7.json").await.expect("result");
    assert_eq!(doc["status"], "NO_MATCH", "{doc}");
    assert_eq!(doc["outcome"]["reasons"][0]["code"], "NOT_SAME_PERSON");
}
