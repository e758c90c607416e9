//! The HTTP API over a real TCP socket: every accepted input form on real images, every bad-input
//! class with its status and code, /health, /openapi.json, CORS.

mod common;

use common::{png_header, read, settings, LIVE};
use ekyc_http::router;
use serde_json::Value;
use std::sync::OnceLock;

const BOUNDARY: &str = "XyZekycTestBoundary";

/// Start one server for this test binary on a free port; returns its base URL.
fn server() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| start(6 * 1024 * 1024))
}

/// A second server with a 20 KB body limit (small enough that an over-limit body fits in the
/// socket buffers, so the client reads the early 413 instead of a broken pipe).
fn small_server() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| start(20 * 1024))
}

fn start(max_body_bytes: usize) -> String {
    let mut c = settings();
    c.server.max_body_bytes = max_body_bytes;
    c.server.cors_origins = vec!["https://app.example.com".into()];
    start_with(&c)
}

/// Serve the router of `c` on a free loopback port in a thread of its own; returns the base URL.
fn start_with(c: &ekyc_liveness::Settings) -> String {
    common::serve_in_thread(common::app_state(c).expect("models"))
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new().build()
}

/// POST and return (status, JSON body, headers of interest).
fn post(path: &str, ctype: Option<&str>, body: &[u8]) -> (u16, Value) {
    post_to(server(), path, ctype, body)
}

fn post_to(base: &str, path: &str, ctype: Option<&str>, body: &[u8]) -> (u16, Value) {
    let mut req = agent().post(&format!("{base}{path}"));
    if let Some(c) = ctype {
        req = req.set("Content-Type", c);
    }
    let resp = match req.send_bytes(body) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport ({} bytes, {ctype:?}): {e}", body.len()),
    };
    let status = resp.status();
    let text = resp.into_string().expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")),
    )
}

fn multipart(field: &str, data: &[u8]) -> Vec<u8> {
    let mut b = format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"selfie.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").into_bytes();
    b.extend_from_slice(data);
    b.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    b
}

fn mp_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

fn b64(data: &[u8]) -> Vec<u8> {
    use base64::Engine;
    serde_json::to_vec(
        &serde_json::json!({"image": base64::engine::general_purpose::STANDARD.encode(data)}),
    )
    .expect("json")
}

#[test]
fn multipart_raw_and_base64_give_the_right_verdicts() {
    if !common::models_present() {
        return;
    }
    let live = read(LIVE);
    let (s, v) = post("/v1/liveness", Some(&mp_type()), &multipart("file", &live));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "LIVE");
    assert_eq!(v["is_live"], true);
    assert!(v["request_id"].as_str().is_some_and(|s| !s.is_empty()));
    for k in [
        "liveness_score",
        "confidence",
        "reasons",
        "scores",
        "quality",
        "timings",
        "models",
    ] {
        assert!(v.get(k).is_some(), "seed/documented field {k} missing: {v}");
    }

    let spoof = read("spoof/hyperfas_fake_screen.png");
    let (s, v) = post("/v1/liveness", Some("image/png"), &spoof);
    assert_eq!((s, v["status"].as_str()), (200, Some("SPOOF")), "{v}");
    assert!(v["liveness_score"].as_f64().expect("score") < 0.1);

    let (s, v) = post(
        "/v1/liveness",
        Some("application/json"),
        &b64(&read("live/vietmoney_true_001.jpg")),
    );
    assert_eq!((s, v["status"].as_str()), (200, Some("LIVE")), "{v}");

    // A quality failure is a 200 with reasons, as in the prototype.
    let (s, v) = post("/v1/liveness", Some("image/jpeg"), &common::two_faces_png());
    assert_eq!(
        (s, v["status"].as_str()),
        (200, Some("QUALITY_FAILED")),
        "{v}"
    );
    assert_eq!(v["reasons"][0]["code"], "MULTIPLE_FACES");
    assert!(v["liveness_score"].is_null());

    // enable_checks=false scores the largest face instead.
    let (s, v) = post(
        "/v1/liveness?enable_checks=false",
        Some("image/jpeg"),
        &common::two_faces_png(),
    );
    assert_eq!(s, 200);
    assert!(
        v["liveness_score"].as_f64().is_some()
            && v["reasons"].as_array().is_some_and(|r| r.is_empty()),
        "{v}"
    );

    let (s, v) = post(
        "/v1/liveness",
        Some("image/png"),
        &read("other/skimage_chelsea_noface.png"),
    );
    assert_eq!((s, v["status"].as_str()), (200, Some("NO_FACE")), "{v}");
}

#[test]
fn every_bad_input_class_gets_its_status_and_code() {
    if !common::models_present() {
        return;
    }
    let live = read(LIVE);
    // Cases answered before the body is read get a small body: with a whole photo behind the
    // answer, the test server (axum::serve, keep-alive) may close while the client still writes,
    // and the client sees a broken pipe instead of the answer on a loaded machine.
    let small = live[..1024].to_vec();
    // (what, path, content type, body, status, code)
    type Case = (
        &'static str,
        String,
        Option<String>,
        Vec<u8>,
        u16,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "missing file field",
            "/v1/liveness".into(),
            Some(mp_type()),
            multipart("photo", &live),
            400,
            "MISSING_FILE",
        ),
        (
            "malformed multipart",
            "/v1/liveness".into(),
            Some(mp_type()),
            b"--nope\r\ngarbage".to_vec(),
            400,
            "MALFORMED_MULTIPART",
        ),
        (
            "multipart without boundary",
            "/v1/liveness".into(),
            Some("multipart/form-data".into()),
            multipart("file", &small),
            400,
            "MALFORMED_MULTIPART",
        ),
        (
            "bad base64",
            "/v1/liveness".into(),
            Some("application/json".into()),
            br#"{"image": "!!!not base64!!!"}"#.to_vec(),
            400,
            "BAD_BASE64",
        ),
        (
            "bad json",
            "/v1/liveness".into(),
            Some("application/json".into()),
            b"{\"image\": ".to_vec(),
            400,
            "BAD_JSON",
        ),
        (
            "bad query",
            "/v1/liveness?enable_checks=perhaps".into(),
            Some("image/jpeg".into()),
            small.clone(),
            400,
            "BAD_QUERY",
        ),
        (
            "empty file",
            "/v1/liveness".into(),
            Some(mp_type()),
            multipart("file", b""),
            400,
            "EMPTY_IMAGE",
        ),
        (
            "image dimensions over the limit",
            "/v1/liveness".into(),
            Some("image/png".into()),
            png_header(100_000, 100_000),
            413,
            "IMAGE_TOO_LARGE",
        ),
        (
            "unsupported content type",
            "/v1/liveness".into(),
            Some("text/plain".into()),
            b"hello".to_vec(),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            "no content type",
            "/v1/liveness".into(),
            None,
            small.clone(),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            "unsupported image format",
            "/v1/liveness".into(),
            Some("image/png".into()),
            b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec(),
            415,
            "UNSUPPORTED_FORMAT",
        ),
        (
            "not an image",
            "/v1/liveness".into(),
            Some(mp_type()),
            multipart("file", b"just some text"),
            415,
            "NOT_AN_IMAGE",
        ),
        (
            "truncated image",
            "/v1/liveness".into(),
            Some("image/jpeg".into()),
            live[..live.len() / 2].to_vec(),
            422,
            "TRUNCATED_IMAGE",
        ),
        (
            "corrupt image",
            "/v1/liveness".into(),
            Some("image/jpeg".into()),
            corrupt_jpeg(),
            422,
            "CORRUPT_IMAGE",
        ),
        (
            "JSON array instead of an object",
            "/v1/liveness".into(),
            Some("application/json".into()),
            br#"[{"image": "AAAA"}]"#.to_vec(),
            400,
            "BAD_JSON",
        ),
        (
            "JSON object without a string image",
            "/v1/liveness".into(),
            Some("application/json".into()),
            br#"{"image": 42}"#.to_vec(),
            400,
            "BAD_JSON",
        ),
        (
            "unknown path",
            "/v2/liveness".into(),
            Some("image/jpeg".into()),
            small.clone(),
            404,
            "NOT_FOUND",
        ),
    ];
    for (what, path, ctype, body, status, code) in cases {
        let (s, v) = post(&path, ctype.as_deref(), &body);
        assert_eq!(s, status, "{what}: {v}");
        assert_eq!(v["error"]["code"], code, "{what}: {v}");
        let msg = v["error"]["message"].as_str().unwrap_or("");
        assert!(
            !msg.is_empty() && !msg.contains("panick") && !msg.contains("src/"),
            "{what}: {msg}"
        );
    }
    // Error messages never echo the body: a long JSON string comes back as a position only.
    let echo = format!("\"{}\"", "secret-input-".repeat(2000));
    let (s, v) = post("/v1/liveness", Some("application/json"), echo.as_bytes());
    let msg = v["error"]["message"].as_str().unwrap_or("");
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("BAD_JSON")),
        "{v}"
    );
    assert!(!msg.contains("secret-input") && msg.len() < 200, "{msg}");
    // A body shorter than its Content-Length is the client's fault (400), not "too large".
    let (s, v) = short_body(server());
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("INCOMPLETE_BODY")),
        "{v}"
    );
    // Body over the limit: raw, multipart and base64 (whose limit is 4/3 of the raw one).
    let big = vec![0xffu8; 40 * 1024];
    for (ctype, body) in [
        ("image/jpeg".to_string(), big.clone()),
        (mp_type(), multipart("file", &big)),
        ("application/json".to_string(), b64(&big)),
    ] {
        let (s, v) = post_to(small_server(), "/v1/liveness", Some(&ctype), &body);
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (413, Some("BODY_TOO_LARGE")),
            "{ctype}: {v}"
        );
    }
    // Just under the limit still goes through to the decoder (which finds no image in 0xff bytes).
    let (s, v) = post_to(
        small_server(),
        "/v1/liveness",
        Some("image/jpeg"),
        &vec![0xffu8; 19 * 1024],
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (415, Some("NOT_AN_IMAGE")),
        "{v}"
    );
    // GET on the POST endpoint.
    let r = agent().get(&format!("{}/v1/liveness", server())).call();
    let Err(ureq::Error::Status(405, r)) = r else {
        panic!("expected 405")
    };
    let v: Value = serde_json::from_str(&r.into_string().expect("body")).expect("json");
    assert_eq!(v["error"]["code"], "METHOD_NOT_ALLOWED");
}

/// Announce 10,000 bytes, send 100, close the sending half; return the answer's status and JSON.
fn short_body(base: &str) -> (u16, Value) {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    let head = format!(
        "POST /v1/liveness HTTP/1.1\r\nHost: {addr}\r\nContent-Type: image/jpeg\r\nContent-Length: 10000\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).expect("head");
    s.write_all(&[0xff; 100]).expect("body");
    s.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn corrupt_jpeg() -> Vec<u8> {
    let mut c = vec![0xff, 0xd8, 0xff, 0xc0, 0x00, 0x03];
    c.extend([0x55; 100]);
    c.extend([0xff, 0xda, 0x00, 0x02, 0xff, 0xd9]);
    c
}

#[test]
fn health_and_openapi() {
    if !common::models_present() {
        return;
    }
    let v: Value = agent()
        .get(&format!("{}/health", server()))
        .call()
        .expect("health")
        .into_string()
        .map(|t| serde_json::from_str(&t).expect("json"))
        .expect("body");
    assert_eq!(v["status"], "ok");
    assert_eq!(v["models"].as_array().map(|m| m.len()), Some(6));
    assert!(v["liveness_calibration"]
        .as_str()
        .is_some_and(|c| c.contains(',')));
    assert!(v["models"][0]["sha256"]
        .as_str()
        .is_some_and(|s| s.len() == 64));
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));

    let doc: Value = agent()
        .get(&format!("{}/openapi.json", server()))
        .call()
        .expect("openapi")
        .into_string()
        .map(|t| serde_json::from_str(&t).expect("json"))
        .expect("body");
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|s| s.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    let op = &doc["paths"]["/v1/liveness"]["post"];
    let content = op["requestBody"]["content"].as_object().expect("content");
    for ct in [
        "multipart/form-data",
        "image/jpeg",
        "image/png",
        "image/webp",
        "application/json",
    ] {
        assert!(
            content.contains_key(ct),
            "request body type {ct} documented"
        );
    }
    for status in ["200", "400", "413", "415", "422", "500"] {
        assert!(
            op["responses"].get(status).is_some(),
            "response {status} documented"
        );
    }
    assert!(doc["paths"]["/health"]["get"].is_object());
    // The documented verdict schema has the fields the server really sends.
    let schemas = &doc["components"]["schemas"];
    assert!(
        schemas["LivenessResponse"].is_object() && schemas["Verdict"].is_object(),
        "{schemas}"
    );
    let props = schemas["Verdict"]["properties"].as_object().expect("props");
    let (_, sample) = post("/v1/liveness", Some("image/jpeg"), &read(LIVE));
    for k in sample
        .as_object()
        .expect("obj")
        .keys()
        .filter(|k| *k != "request_id")
    {
        assert!(props.contains_key(k), "field {k} sent but not documented");
    }
}

#[test]
fn cors_allows_only_the_configured_origins() {
    if !common::models_present() {
        return;
    }
    let ok = agent()
        .request("OPTIONS", &format!("{}/v1/liveness", server()))
        .set("Origin", "https://app.example.com")
        .set("Access-Control-Request-Method", "POST")
        .call()
        .expect("preflight");
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(ok.header("access-control-allow-credentials"), None);
    let other = agent()
        .get(&format!("{}/health", server()))
        .set("Origin", "https://evil.example.net")
        .call()
        .expect("health");
    assert_eq!(other.header("access-control-allow-origin"), None);
}

/// The demo page is served at / and /demo when on, and those paths are JSON 404s when off.
#[test]
fn demo_page_on_and_off() {
    if !common::models_present() {
        return;
    }
    for demo in [true, false] {
        let mut c = settings();
        c.server.demo = demo;
        let state = common::app_state(&c).expect("models");
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            use tower::ServiceExt;
            for path in ["/", "/demo"] {
                let req = axum::http::Request::get(path)
                    .body(axum::body::Body::empty())
                    .expect("request");
                let resp = router(state.clone()).oneshot(req).await.expect("response");
                let status = resp.status().as_u16();
                let ctype = resp
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let csp = resp.headers().get("content-security-policy").is_some();
                let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
                    .await
                    .expect("body");
                let body = String::from_utf8_lossy(&body);
                if demo {
                    assert_eq!(status, 200, "{path}");
                    assert_eq!(ctype, "text/html; charset=utf-8");
                    assert!(csp, "{path}: CSP header");
                    assert!(body.starts_with("<!doctype html>"), "{path}");
                } else {
                    assert_eq!(status, 404, "{path}");
                    assert!(ctype.starts_with("application/json"), "{path}: {ctype}");
                    let v: Value = serde_json::from_str(&body).expect("JSON");
                    assert_eq!(v["error"]["code"], "NOT_FOUND", "{body}");
                }
            }
        });
    }
}

/// With EKYC_API_KEYS set, /v1/* needs `Authorization: Bearer <key>` (plain or sha256 entries);
/// /health stays open.
#[test]
fn api_keys_guard_the_api() {
    if !common::models_present() {
        return;
    }
    use sha2::Digest;
    let mut c = settings();
    let second = "second-key-for-tests-0123456789";
    c.server.api_keys = vec![
        "first-key-for-tests-0123456789".into(),
        format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(second.as_bytes()))
        ),
    ];
    let base = start_with(&c);
    let live = read(LIVE);
    let call = |auth: Option<&str>| {
        let mut req = agent()
            .post(&format!("{base}/v1/liveness"))
            .set("Content-Type", "image/jpeg");
        if let Some(a) = auth {
            req = req.set("Authorization", a);
        }
        match req.send_bytes(&live) {
            Ok(r) => (
                r.status(),
                r.header("www-authenticate").map(str::to_string),
                r.into_string().unwrap_or_default(),
            ),
            Err(ureq::Error::Status(code, r)) => (
                code,
                r.header("www-authenticate").map(str::to_string),
                r.into_string().unwrap_or_default(),
            ),
            Err(e) => panic!("{e}"),
        }
    };
    for auth in [
        None,
        Some("Bearer wrong-key-0123456789"),
        Some("Basic Zm9vOmJhcg=="),
    ] {
        let (status, www, body) = call(auth);
        assert_eq!(status, 401, "{auth:?}: {body}");
        assert_eq!(www.as_deref(), Some("Bearer"));
        let v: Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(v["error"]["code"], "UNAUTHORIZED", "{body}");
    }
    for key in ["first-key-for-tests-0123456789", second] {
        let (status, _, body) = call(Some(&format!("Bearer {key}")));
        assert_eq!(status, 200, "{body}");
    }
    let health = agent()
        .get(&format!("{base}/health"))
        .call()
        .expect("health without a key");
    assert_eq!(health.status(), 200);
}
