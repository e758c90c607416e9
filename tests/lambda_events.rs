//! Every events/*.json through the same router, in process, as lambda_http hands it over in AWS.

mod common;

use common::{read, settings, LIVE};
use ekyc_http::{router, AppState};
use serde_json::Value;
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;

fn state() -> Arc<AppState> {
    static S: OnceLock<Arc<AppState>> = OnceLock::new();
    S.get_or_init(|| common::app_state(&settings()).expect("models"))
        .clone()
}

fn event(name: &str) -> Value {
    let p = common::repo().join("events").join(name);
    serde_json::from_str(&std::fs::read_to_string(&p).expect("event")).expect("json")
}

/// Feed a raw event through lambda_http's request conversion and the router.
async fn invoke(ev: &Value) -> (u16, Value) {
    let req =
        lambda_http::request::from_str(&ev.to_string()).expect("lambda_http parses the event");
    let resp = router(state()).oneshot(req).await.expect("infallible");
    let status = resp.status().as_u16();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&body).expect("JSON response"),
    )
}

fn with_body(mut ev: Value, image: &[u8]) -> Value {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let old = b64.decode(ev["body"].as_str().expect("body")).expect("b64");
    // Replace the embedded synthetic image (the bytes between the part headers and the closing boundary).
    let new = if let Some(start) = find(&old, b"\r\n\r\n") {
        let end = rfind(&old, b"\r\n--").expect("closing boundary");
        [&old[..start + 4], image, &old[end..]].concat()
    } else {
        image.to_vec()
    };
    ev["body"] = Value::String(b64.encode(new));
    ev
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}
fn rfind(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).rposition(|w| w == n)
}

#[tokio::test]
async fn every_api_event_gets_the_expected_answer() {
    if !common::models_present() {
        return;
    }
    let expected: &[(&str, u16, &str)] = &[
        ("apigw-v2-multipart.json", 200, "NO_FACE"),
        ("apigw-v1-raw-image.json", 200, "NO_FACE"),
        ("apigw-v2-bad-body.json", 400, "MISSING_FILE"),
        ("apigw-v2-health.json", 200, "ok"),
        // A session id that no server issued.
        ("apigw-v2-session-create.json", 201, ""),
        ("apigw-v2-session-verify.json", 404, "SESSION_NOT_FOUND"),
        ("apigw-v2-session-result.json", 404, "SESSION_NOT_FOUND"),
        // Two gradients: neither has a face (the first reason).
        ("apigw-v2-match.json", 200, "SELFIE_NO_FACE"),
    ];
    let mut names: Vec<String> = std::fs::read_dir(common::repo().join("events"))
        .expect("events dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().to_string()))
        .filter(|n| n.starts_with("apigw-"))
        .collect();
    names.sort();
    let mut listed: Vec<String> = expected.iter().map(|e| e.0.to_string()).collect();
    listed.sort();
    assert_eq!(names, listed, "every API event has an expectation");
    for (name, status, marker) in expected {
        let (s, v) = invoke(&event(name)).await;
        assert_eq!(s, *status, "{name}: {v}");
        let got = v["status"]
            .as_str()
            .or(v["error"]["code"].as_str())
            .or(v["reasons"][0]["code"].as_str())
            .unwrap_or("");
        assert_eq!(got, *marker, "{name}: {v}");
        if name.contains("multipart") || name.contains("raw") {
            assert_eq!(
                v["image"]["format"], "png",
                "{name}: the embedded image was decoded"
            );
            assert!(
                v["request_id"].as_str().is_some_and(|id| !id.is_empty()),
                "{name}: API Gateway request id"
            );
        }
    }
    // The request id is API Gateway's.
    let (_, v) = invoke(&event("apigw-v2-multipart.json")).await;
    assert_eq!(v["request_id"], "Pq3bYhvLIAMEJbQ=");
}

#[tokio::test]
async fn the_same_events_with_a_real_face() {
    if !common::models_present() {
        return;
    }
    let (s, v) = invoke(&with_body(event("apigw-v2-multipart.json"), &read(LIVE))).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("LIVE")), "{v}");
    let (s, v) = invoke(&with_body(
        event("apigw-v1-raw-image.json"),
        &read("spoof/minivision_image_F2.jpg"),
    ))
    .await;
    // REST v1 with the stage in the path (/Prod/v1/liveness) reaches the route.
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "SPOOF", "{v}");
    assert_eq!(v["image"]["exif_orientation"], 6);

    // POST /v1/match through API Gateway: a selfie and another photo of the same person.
    if common::has("live/facerec_obama.jpg") && common::has("other/facerec_obama3.jpg") {
        use base64::Engine;
        let mut ev = event("apigw-v2-match.json");
        let ctype = ev["headers"]["content-type"]
            .as_str()
            .expect("content type")
            .to_string();
        let boundary = ctype
            .split("boundary=")
            .nth(1)
            .expect("boundary")
            .to_string();
        let mut body = Vec::new();
        for (name, rel) in [
            ("selfie", "live/facerec_obama.jpg"),
            ("document", "other/facerec_obama3.jpg"),
        ] {
            body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").as_bytes());
            body.extend_from_slice(&read(rel));
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        ev["body"] = Value::String(base64::engine::general_purpose::STANDARD.encode(body));
        let (s, v) = invoke(&ev).await;
        assert_eq!((s, v["match"].as_bool()), (200, Some(true)), "{v}");
        assert_eq!(v["request_id"], "Pq3bYhvLIAMEJbW=");
    }
}

/// An event with the example session id replaced by `id` in its path.
fn for_session(mut ev: Value, id: &str) -> Value {
    let example = "0123456789abcdef0123456789abcdef";
    for ptr in ["/rawPath", "/requestContext/http/path"] {
        if let Some(v) = ev.pointer_mut(ptr) {
            if let Some(p) = v.as_str() {
                *v = Value::String(p.replace(example, id));
            }
        }
    }
    ev
}

#[tokio::test]
async fn a_session_through_the_three_api_gateway_routes() {
    if !common::models_present() {
        return;
    }
    let (s, v) = invoke(&event("apigw-v2-session-create.json")).await;
    assert_eq!(s, 201, "{v}");
    let id = v["session_id"].as_str().expect("session id").to_string();
    assert!(
        v["challenge"]["steps"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{v}"
    );
    // Six synthetic frames without a face: not LIVE, with reasons, no scores.
    let (s, v) = invoke(&for_session(event("apigw-v2-session-verify.json"), &id)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["session_id"], id.as_str());
    assert_eq!(v["status"], "RETRY", "{v}");
    let codes: Vec<&str> = v["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .filter_map(|r| r["code"].as_str())
        .collect();
    assert!(codes.contains(&"NO_FACE"), "{v}");
    // Once only.
    let (s, v) = invoke(&for_session(event("apigw-v2-session-verify.json"), &id)).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("SESSION_USED")),
        "{v}"
    );
    let (s, v) = invoke(&for_session(event("apigw-v2-session-result.json"), &id)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["frames"].as_array().map(Vec::len), Some(6), "{v}");
}
