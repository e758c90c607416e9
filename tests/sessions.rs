//! Capture sessions on real frames and a real server: the clip in `../shared/testdata/video`
//! performs its head turns and passes with the moves it performs and fails with others; still
//! pictures repeated, moved, scaled or rotated in 2-D fail the challenge; two people fail the
//! identity check; the protocol's single use, expiry and failure limit over HTTP.

mod common;

use common::{read, settings};
use ekyc_core::session::{decide, parse_steps, SessionCode, SessionRules, SessionStatus, Step};
use serde_json::Value;
use std::path::PathBuf;

const BOUNDARY: &str = "XyZekycSessionBoundary";

/// The clip's frames (not in the repository).
fn hamilton() -> Option<PathBuf> {
    let p = common::repo().join("../shared/testdata/video/hamilton");
    p.is_dir().then_some(p)
}

/// Frames `from..=to` every `every`-th of the clip, with their capture times at 29.97 fps.
fn clip(from: usize, to: usize, every: usize) -> Vec<(Vec<u8>, u64)> {
    let dir = hamilton().expect("clip");
    (from..=to)
        .step_by(every)
        .map(|i| {
            let b = std::fs::read(dir.join(format!("frame_{i:04}.jpg"))).expect("frame");
            (b, (i as f64 * 1000.0 / 29.97).round() as u64)
        })
        .collect()
}

fn observe(frames: &[(Vec<u8>, u64)]) -> Vec<ekyc_core::session::FrameObservation> {
    let refs: Vec<(&[u8], u64)> = frames.iter().map(|(b, t)| (b.as_slice(), *t)).collect();
    common::p()
        .observe_frames(&refs, 2)
        .map_err(|(i, e)| format!("frame {i}: {e}"))
        .expect("frames analysed")
}

fn codes(d: &ekyc_core::session::SessionDecision) -> Vec<SessionCode> {
    d.reasons.iter().map(|r| r.code).collect()
}

/// The clip's moves, as measured (`ekyc session-check ../shared/testdata/video/hamilton --from
/// 100 --to 190 --every 3 --fps 29.97 --steps TURN_RIGHT,CENTER` prints every frame's pose): from
/// frame 100 the performer faces the camera (yaw 5°), turns to his right from frame 112 (yaw up
/// to 27° at 133–136), is back facing the camera from 142 to 190 (yaw −11° to 12°: his left turns
/// never reach the 15° a turn needs), and never closes his eyes (openness 0.26 to 0.48). Frames
/// from 211 on are another shot (the audience: several faces).
const CLIP_FROM: usize = 100;
const CLIP_TO: usize = 190;
const CLIP_EVERY: usize = 3;
const CLIP_STEPS: &str = "TURN_RIGHT,CENTER";
const CLIP_NOT_PERFORMED: [&str; 2] = ["TURN_LEFT,CENTER", "BLINK,CENTER"];

#[test]
fn the_clip_passes_the_moves_it_performs_and_fails_others() {
    if common::pipeline().is_none() {
        return;
    }
    if hamilton().is_none() {
        common::skip("../shared/testdata/video/hamilton (the clip's frames)");
        return;
    }
    let frames = clip(CLIP_FROM, CLIP_TO, CLIP_EVERY);
    let obs = observe(&frames);
    let rules = SessionRules::default();
    let performed = parse_steps(CLIP_STEPS).expect("steps");
    let d = decide(&performed, &obs, &rules);
    assert_eq!(d.status, SessionStatus::Live, "{:#?}", d.reasons);
    assert!(d.steps.iter().all(|s| s.done));
    // The same face throughout: at least 80 % of the frames match the identity template (a hand
    // or the microphone in front of the face lowers a few).
    let sims: Vec<f32> = d.identity_similarity.iter().flatten().copied().collect();
    let matching = sims
        .iter()
        .filter(|s| **s >= rules.min_identity_similarity)
        .count();
    assert!(matching * 5 >= sims.len() * 4, "{sims:?}");
    // The turn is to the person's right: positive mesh yaw.
    assert!(d.steps[0].value.is_some_and(|v| v > 20.0), "{:?}", d.steps);
    for steps in CLIP_NOT_PERFORMED {
        let d = decide(&parse_steps(steps).expect("steps"), &obs, &rules);
        assert_eq!(
            codes(&d),
            vec![SessionCode::ChallengeNotMet],
            "{steps}: {d:?}"
        );
        assert_eq!(d.status, SessionStatus::Retry);
    }
    // Past the shot change (the audience): several faces, other people.
    let cut = observe(&clip(180, 240, 3));
    let d = decide(&performed, &cut, &rules);
    let c = codes(&d);
    assert!(c.contains(&SessionCode::MultipleFaces), "{d:?}");
    assert_ne!(d.status, SessionStatus::Live);
}

/// A still picture moved in 2-D: rotated by `deg` about its centre, scaled by `scale` and shifted
/// by (`dx`, `dy`) pixels (bilinear; outside is grey), as PNG.
fn moved(img: &image::RgbImage, deg: f32, scale: f32, dx: f32, dy: f32) -> Vec<u8> {
    let (w, h) = (img.width() as f32, img.height() as f32);
    let (s, c) = deg.to_radians().sin_cos();
    let out = image::RgbImage::from_fn(img.width(), img.height(), |x, y| {
        // Inverse map: output pixel → source pixel.
        let (u, v) = (x as f32 - w / 2.0 - dx, y as f32 - h / 2.0 - dy);
        let (sx, sy) = (
            (c * u + s * v) / scale + w / 2.0,
            (-s * u + c * v) / scale + h / 2.0,
        );
        if sx < 0.0 || sy < 0.0 || sx >= w - 1.0 || sy >= h - 1.0 {
            return image::Rgb([128, 128, 128]);
        }
        let (x0, y0) = (sx.floor(), sy.floor());
        let (fx, fy) = (sx - x0, sy - y0);
        let p = |xx: u32, yy: u32| img.get_pixel(xx, yy).0.map(f32::from);
        let (a, b) = (p(x0 as u32, y0 as u32), p(x0 as u32 + 1, y0 as u32));
        let (cc, d) = (p(x0 as u32, y0 as u32 + 1), p(x0 as u32 + 1, y0 as u32 + 1));
        image::Rgb(std::array::from_fn(|k| {
            let top = a[k] + (b[k] - a[k]) * fx;
            let bot = cc[k] + (d[k] - cc[k]) * fx;
            (top + (bot - top) * fy).round().clamp(0.0, 255.0) as u8
        }))
    });
    let mut buf = std::io::Cursor::new(Vec::new());
    out.write_to(&mut buf, image::ImageFormat::Png)
        .expect("png");
    buf.into_inner()
}

/// Ten frames of `rel` moved along a path that would fake every step if 2-D motion counted.
fn moved_frames(rel: &str) -> Vec<(Vec<u8>, u64)> {
    let img = image::load_from_memory(&read(rel))
        .expect("decode")
        .to_rgb8();
    let path: [(f32, f32, f32, f32); 10] = [
        (0.0, 1.0, 0.0, 0.0),
        (0.0, 1.0, 40.0, 0.0),
        (8.0, 1.05, 60.0, 0.0),
        (0.0, 1.0, 0.0, 0.0),
        (-8.0, 0.95, -60.0, 0.0),
        (-12.0, 0.9, -40.0, -20.0),
        (0.0, 1.0, 0.0, 0.0),
        (0.0, 1.1, 0.0, -40.0),
        (5.0, 1.2, 0.0, -60.0),
        (0.0, 1.0, 2.0, 0.0),
    ];
    path.iter()
        .enumerate()
        .map(|(i, &(deg, s, dx, dy))| (moved(&img, deg, s, dx, dy), 100 * i as u64))
        .collect()
}

#[test]
fn a_still_picture_moved_in_2d_does_not_turn_its_head() {
    if common::pipeline().is_none() {
        return;
    }
    let obs = observe(&moved_frames(common::LIVE));
    let yaws: Vec<f32> = obs.iter().filter_map(|o| o.yaw_deg).collect();
    let pitches: Vec<f32> = obs.iter().filter_map(|o| o.pitch_deg).collect();
    assert_eq!(
        yaws.len(),
        obs.len(),
        "a face and a pose in every frame: {obs:?}"
    );
    let spread = |v: &[f32]| {
        v.iter().copied().fold(f32::NEG_INFINITY, f32::max)
            - v.iter().copied().fold(f32::INFINITY, f32::min)
    };
    // In-plane rotation, translation and scaling leave the mesh's yaw and pitch (nearly) alone:
    // well under the 15° a turn needs.
    assert!(spread(&yaws) < 8.0, "yaw moved with a 2-D motion: {yaws:?}");
    assert!(
        spread(&pitches) < 8.0,
        "pitch moved with a 2-D motion: {pitches:?}"
    );
    let rules = SessionRules::default();
    for steps in [
        "TURN_LEFT,CENTER,TURN_RIGHT,CENTER",
        "LOOK_UP,CENTER,BLINK,CENTER",
    ] {
        let d = decide(&parse_steps(steps).expect("steps"), &obs, &rules);
        assert!(
            codes(&d).contains(&SessionCode::ChallengeNotMet),
            "{steps}: {d:?}"
        );
        assert_ne!(d.status, SessionStatus::Live);
    }
}

#[test]
fn a_spoof_moved_through_the_steps_is_not_live_and_two_people_are_not_one() {
    if common::pipeline().is_none() {
        return;
    }
    let rules = SessionRules::default();
    let steps = [Step::TurnLeft, Step::Center];
    if common::has("spoof/minivision_image_F1.jpg") {
        let obs = observe(&moved_frames("spoof/minivision_image_F1.jpg"));
        let d = decide(&steps, &obs, &rules);
        assert_ne!(d.status, SessionStatus::Live, "{d:?}");
    }
    // Frames alternating between two people.
    let a = read("live/vietmoney_true_001.jpg");
    let b = read(if common::has("live/facerec_obama.jpg") {
        "live/facerec_obama.jpg"
    } else {
        "live/vietmoney_true_003.jpg"
    });
    let frames: Vec<(Vec<u8>, u64)> = (0..6)
        .map(|i| {
            (
                if i % 2 == 0 { a.clone() } else { b.clone() },
                100 * i as u64,
            )
        })
        .collect();
    let d = decide(&steps, &observe(&frames), &rules);
    let c = codes(&d);
    assert!(c.contains(&SessionCode::IdentityChanged), "{d:?}");
    assert!(c.contains(&SessionCode::FramesRepeated), "{d:?}");
    assert_eq!(d.status, SessionStatus::Spoof);
}

// ---- over HTTP ----

fn start(fixed_steps: Option<&str>, ttl_s: u64) -> String {
    start_with_store(
        fixed_steps,
        ttl_s,
        ekyc_http::sessions::SessionStore::default(),
    )
}

/// A server with its sessions in `store` (this process's memory, or S3).
fn start_with_store(
    fixed_steps: Option<&str>,
    ttl_s: u64,
    store: ekyc_http::sessions::SessionStore,
) -> String {
    let mut c = settings();
    c.server.session_ttl_s = ttl_s;
    c.server.session_fixed_steps =
        fixed_steps.map(|s| ekyc_liveness::settings::FixedSteps(parse_steps(s).expect("steps")));
    let pipeline = c.load_local_pipeline().expect("models");
    let state = ekyc_http::AppState::new_with_stores(
        pipeline,
        c.server().expect("server settings"),
        None,
        store,
    )
    .expect("memory plan");
    common::serve_in_thread(state)
}

fn call(req: ureq::Request, body: Option<(&str, Vec<u8>)>) -> (u16, Value, Option<String>) {
    let resp = match body {
        Some((ctype, b)) => req.set("Content-Type", ctype).send_bytes(&b),
        None => req.call(),
    };
    let resp = match resp {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport: {e}"),
    };
    let status = resp.status();
    let retry = resp.header("retry-after").map(str::to_string);
    let text = resp.into_string().expect("body");
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, v, retry)
}

fn create(base: &str, device: &str) -> (u16, Value, Option<String>) {
    call(
        ureq::post(&format!("{base}/v1/sessions")).set("X-Device-Id", device),
        None,
    )
}

/// The multipart body of an attempt: `frame` fields and one `timestamps` field.
fn attempt(frames: &[(Vec<u8>, u64)]) -> (String, Vec<u8>) {
    let mut b = Vec::new();
    for (i, (data, _)) in frames.iter().enumerate() {
        b.extend_from_slice(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"frame\"; filename=\"f{i}.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").as_bytes());
        b.extend_from_slice(data);
        b.extend_from_slice(b"\r\n");
    }
    let stamps: Vec<String> = frames.iter().map(|(_, t)| t.to_string()).collect();
    b.extend_from_slice(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"timestamps\"\r\n\r\n{}\r\n--{BOUNDARY}--\r\n", stamps.join(",")).as_bytes());
    (format!("multipart/form-data; boundary={BOUNDARY}"), b)
}

fn verify(
    base: &str,
    id: &str,
    device: &str,
    frames: &[(Vec<u8>, u64)],
) -> (u16, Value, Option<String>) {
    let (ctype, body) = attempt(frames);
    call(
        ureq::post(&format!("{base}/v1/sessions/{id}/verify")).set("X-Device-Id", device),
        Some((&ctype, body)),
    )
}

#[test]
fn the_protocol_is_single_use_expires_and_limits_failures() {
    if common::pipeline().is_none() {
        return;
    }
    let base = start(None, 180);
    let (s, v, _) = create(&base, "dev-a");
    assert_eq!(s, 201, "{v}");
    let id = v["session_id"].as_str().expect("id").to_string();
    assert_eq!(id.len(), 32);
    let steps = v["challenge"]["steps"].as_array().expect("steps");
    assert!(steps.len() == 4 || steps.len() == 6, "{v}");
    assert!(
        steps.iter().skip(1).step_by(2).all(|s| s == "CENTER"),
        "{v}"
    );
    assert!(v["challenge"]["nonce"]
        .as_str()
        .is_some_and(|n| n.len() == 16));
    assert_eq!(v["limits"]["max_bytes"], 6 * 1024 * 1024);
    assert!(v["expires_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    // Not verified yet.
    let (s, v, _) = call(ureq::get(&format!("{base}/v1/sessions/{id}/result")), None);
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("SESSION_PENDING"))
    );

    // A still picture sent as every frame: repeated frames, the challenge not met, not LIVE.
    let still: Vec<(Vec<u8>, u64)> = (0..8).map(|i| (read(common::LIVE), 100 * i)).collect();
    let (s, v, _) = verify(&base, &id, "dev-a", &still);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "SPOOF", "{v}");
    let got: Vec<&str> = v["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .filter_map(|r| r["code"].as_str())
        .collect();
    assert!(
        got.contains(&"FRAMES_REPEATED") && got.contains(&"CHALLENGE_NOT_MET"),
        "{v}"
    );
    assert!(
        v.get("liveness_score").is_none() && !v.to_string().contains("score"),
        "no scores to the client: {v}"
    );
    assert!(v["retry_hint"].as_str().is_some());
    // The backend's evidence.
    let (s, r, _) = call(ureq::get(&format!("{base}/v1/sessions/{id}/result")), None);
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["frames"].as_array().map(Vec::len), Some(8));
    assert!(
        r["evidence"]["steps"].is_array() && r["models"].is_array(),
        "{r}"
    );
    let frames = r["frames"].as_array().expect("frames");
    assert!(
        frames.iter().all(|f| f.get("embedding").is_none()),
        "embeddings never leave the server: {r}"
    );
    // The reference frame and the audit frames, as the client sent them.
    let reference = &r["reference_image"];
    assert_eq!(reference["content_type"], "image/jpeg", "{reference}");
    assert_eq!(reference["frame"], r["evidence"]["reference_frame"]);
    use base64::Engine;
    let sent = base64::engine::general_purpose::STANDARD
        .decode(reference["data"].as_str().expect("data"))
        .expect("base64");
    assert_eq!(sent, read(common::LIVE));
    let audit = r["audit_images"].as_array().expect("audit images");
    assert!(!audit.is_empty() && audit.len() <= 4, "{}", audit.len());
    // Replayed: 409.
    let (s, v, _) = verify(&base, &id, "dev-a", &still);
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("SESSION_USED")),
        "{v}"
    );
    // Unknown and malformed ids.
    let (s, v, _) = verify(&base, &"0".repeat(32), "dev-a", &still);
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("SESSION_NOT_FOUND")),
        "{v}"
    );
    let (s, v, _) = verify(&base, "nope", "dev-a", &still);
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("BAD_SESSION_ID")),
        "{v}"
    );
    // A frame that is not an image: the decode error, naming the frame.
    let (s, v, _) = create(&base, "dev-b");
    assert_eq!(s, 201);
    let id2 = v["session_id"].as_str().expect("id").to_string();
    let mut bad = still.clone();
    bad[3].0 = b"not an image at all".to_vec();
    let (s, v, _) = verify(&base, &id2, "dev-b", &bad);
    assert_eq!(s, 415, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("frame 3:")),
        "{v}"
    );

    // Expiry: a session with a 0 s lifetime cannot be verified a second later.
    let short = start(None, 0);
    let (_, v, _) = create(&short, "dev-c");
    let id3 = v["session_id"].as_str().expect("id").to_string();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (s, v, _) = verify(&short, &id3, "dev-c", &still);
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (410, Some("SESSION_EXPIRED")),
        "{v}"
    );

    // The failure limit: five failed sessions from one device, then 429 with Retry-After; another
    // device is not affected.
    let limited = start(None, 180);
    for _ in 0..5 {
        let (_, v, _) = create(&limited, "dev-d");
        let id = v["session_id"].as_str().expect("id").to_string();
        let (s, v, _) = verify(&limited, &id, "dev-d", &still[..2]);
        assert_eq!((s, v["status"].as_str()), (200, Some("SPOOF")), "{v}");
    }
    let (s, v, retry) = create(&limited, "dev-d");
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (429, Some("TOO_MANY_FAILURES")),
        "{v}"
    );
    assert!(retry
        .and_then(|r| r.parse::<u32>().ok())
        .is_some_and(|r| (1..=180).contains(&r)));
    let (s, _, _) = create(&limited, "dev-e");
    assert_eq!(s, 201);
}

#[test]
fn the_clip_is_live_through_the_server_with_the_seeded_challenge() {
    if common::pipeline().is_none() {
        return;
    }
    if hamilton().is_none() {
        common::skip("../shared/testdata/video/hamilton (the clip's frames)");
        return;
    }
    let base = start(Some(CLIP_STEPS), 180);
    let (s, v, _) = create(&base, "dev-clip");
    assert_eq!(s, 201, "{v}");
    let steps: Vec<&str> = v["challenge"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(steps.join(","), CLIP_STEPS);
    let id = v["session_id"].as_str().expect("id").to_string();
    let frames = clip(CLIP_FROM, CLIP_TO, CLIP_EVERY);
    let (s, v, _) = verify(&base, &id, "dev-clip", &frames);
    assert_eq!((s, v["status"].as_str()), (200, Some("LIVE")), "{v}");
    assert!(v["retry_hint"].is_null());
    let (s, r, _) = call(ureq::get(&format!("{base}/v1/sessions/{id}/result")), None);
    assert_eq!(s, 200);
    let done: Vec<bool> = r["evidence"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["done"] == true)
        .collect();
    assert!(done.iter().all(|d| *d), "{r}");
    assert!(r["evidence"]["reference_frame"].is_number(), "{r}");

    // Face match against the session's reference frame: a frame of the same clip as the
    // "document" is the same person; another person's passport page is not.
    let doc = |data: &[u8]| {
        let mut b = Vec::new();
        b.extend_from_slice(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"document\"; filename=\"d.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").as_bytes());
        b.extend_from_slice(data);
        b.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
        b
    };
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    let url = format!("{base}/v1/sessions/{id}/match");
    let same = clip(CLIP_FROM, CLIP_FROM, 1).remove(0).0;
    let (s, m, _) = call(ureq::post(&url), Some((ct.as_str(), doc(&same))));
    assert_eq!(s, 200, "{m}");
    assert_eq!(
        (m["match"].as_bool(), m["session_status"].as_str()),
        (Some(true), Some("LIVE")),
        "{m}"
    );
    assert!(
        m["selfie"].is_null() && m["document"]["face"]["box"].is_object(),
        "{m}"
    );
    if common::has("id/passporteye_100_pass-uto.jpg") {
        let other = common::read("id/passporteye_100_pass-uto.jpg");
        let (s, m, _) = call(ureq::post(&url), Some((ct.as_str(), doc(&other))));
        assert_eq!(s, 200, "{m}");
        assert_eq!(m["match"].as_bool(), Some(false), "{m}");
        assert_eq!(
            m["reasons"][0]["code"].as_str(),
            Some("NOT_SAME_PERSON"),
            "{m}"
        );
    }
    // Only verified sessions: a new one is pending (409), an unknown one 404.
    let (_, fresh, _) = create(&base, "dev-clip");
    let fresh_id = fresh["session_id"].as_str().expect("id");
    let (s, m, _) = call(
        ureq::post(&format!("{base}/v1/sessions/{fresh_id}/match")),
        Some((ct.as_str(), doc(&same))),
    );
    assert_eq!(
        (s, m["error"]["code"].as_str()),
        (409, Some("SESSION_PENDING")),
        "{m}"
    );
    let (s, m, _) = call(
        ureq::post(&format!("{base}/v1/sessions/{}/match", "0".repeat(32))),
        Some((ct.as_str(), doc(&same))),
    );
    assert_eq!(
        (s, m["error"]["code"].as_str()),
        (404, Some("SESSION_NOT_FOUND")),
        "{m}"
    );
}

#[test]
fn sessions_in_s3_are_shared_by_two_instances_and_used_once() {
    if common::pipeline().is_none() || !common::s3s::available() {
        return;
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let bucket = rt.block_on(common::s3s::bucket("ekyc-sessions"));
    let store = || ekyc_http::sessions::SessionStore::Objects {
        backend: std::sync::Arc::new(ekyc_aws::sessions::S3Sessions::new(
            common::s3s::client(),
            bucket.clone(),
        )),
        prefix: "sessions/".into(),
    };
    // Two instances (as two Lambda execution environments) over one bucket.
    let (a, b) = (
        start_with_store(None, 180, store()),
        start_with_store(None, 180, store()),
    );
    let (s, v, _) = create(&a, "dev-s3");
    assert_eq!(s, 201, "{v}");
    let id = v["session_id"].as_str().expect("id").to_string();
    let (s, v, _) = call(ureq::get(&format!("{b}/v1/sessions/{id}/result")), None);
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("SESSION_PENDING")),
        "{v}"
    );
    let still: Vec<(Vec<u8>, u64)> = (0..6).map(|i| (read(common::LIVE), 100 * i)).collect();
    // Created on one instance, verified on the other.
    let (s, v, _) = verify(&b, &id, "dev-s3", &still);
    assert_eq!((s, v["status"].as_str()), (200, Some("SPOOF")), "{v}");
    let (s, v, _) = verify(&a, &id, "dev-s3", &still);
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("SESSION_USED")),
        "{v}"
    );
    let (s, r, _) = call(ureq::get(&format!("{a}/v1/sessions/{id}/result")), None);
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["frames"].as_array().map(Vec::len), Some(6));
    // The record in the bucket: the evidence, no embedding.
    let obj = rt
        .block_on(async {
            common::s3s::client()
                .get_object()
                .bucket(&bucket)
                .key(format!("sessions/{id}.json"))
                .send()
                .await
                .expect("record")
                .body
                .collect()
                .await
        })
        .expect("body")
        .into_bytes();
    let rec: Value = serde_json::from_slice(&obj).expect("json");
    assert_eq!(rec["phase"], "DONE", "{rec}");
    let frames = rec["result"]["frames"].as_array().expect("frames");
    assert!(frames.iter().all(|f| f.get("embedding").is_none()), "{rec}");

    // Two verify calls at once on the two instances: one runs. (s3s-fs checks If-Match and then
    // writes without a lock, so under a true race it may let both through; S3 does not.)
    let (_, v, _) = create(&a, "dev-race");
    let id = v["session_id"].as_str().expect("id").to_string();
    let (ta, tb) = {
        let (a, b, id2, id3) = (a.clone(), b.clone(), id.clone(), id);
        let fa = still.clone();
        let fb = still.clone();
        (
            std::thread::spawn(move || verify(&a, &id2, "dev-race", &fa).0),
            std::thread::spawn(move || verify(&b, &id3, "dev-race", &fb).0),
        )
    };
    let mut codes = [ta.join().expect("a"), tb.join().expect("b")];
    codes.sort_unstable();
    if codes == [200, 200] {
        eprintln!("race: s3s-fs accepted both conditional writes (non-atomic If-Match)");
    } else {
        assert_eq!(codes, [200, 409]);
    }

    // Failures are counted across instances: four more from this device on either instance make
    // five (the first above), and the next session is refused on both.
    for i in 0..4 {
        let (first, second) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let (_, v, _) = create(first, "dev-s3");
        let id = v["session_id"].as_str().expect("id").to_string();
        let (s, _, _) = verify(second, &id, "dev-s3", &still[..2]);
        assert_eq!(s, 200);
    }
    for srv in [&a, &b] {
        let (s, v, retry) = create(srv, "dev-s3");
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (429, Some("TOO_MANY_FAILURES")),
            "{v}"
        );
        assert!(retry.is_some());
    }
}
