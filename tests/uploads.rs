//! Uploads through S3 (`POST /v1/uploads`, the presigned PUT, the S3 trigger, `GET /v1/results/{id}`)
//! against a real local S3 server (s3s-fs 0.14.1, tests/common/s3s.rs), and the requests' validation
//! (with an in-memory store, so it runs without s3s-fs).
//!
//! What s3s-fs checks of a presigned PUT (found by these tests; AWS S3 checks the same): the
//! signature over the signed headers — a request whose Content-Length or Content-Type differs from
//! the signed one is refused 403 and nothing is stored — and the expiry (`X-Amz-Expires`): a URL used
//! after it expired is refused 403.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::s3s::{bucket, client, event};
use common::{read, settings, LIVE};
use ekyc_aws::trigger::{Outcome, Trigger};
use ekyc_aws::uploads::S3Uploads;
use ekyc_http::uploads::{
    Caller, PresignedUpload, StoreError, StoreFuture, UploadConfig, UploadStore, Uploads,
};
use ekyc_http::AppState;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;

const KEY_A: &str = "caller-a-key-0123456789";
const KEY_B: &str = "caller-b-key-0123456789";

/// The server's state with API keys A and B and the given upload store (`None` = uploads off).
fn state(store: Option<Arc<dyn UploadStore>>) -> Arc<AppState> {
    let mut s = settings();
    s.server.api_keys = vec![KEY_A.into(), KEY_B.into()];
    let pipeline = s.load_local_pipeline().expect("models");
    let uploads = store.map(|st| Uploads::new(st, s.upload_config()));
    AppState::new_with_uploads(pipeline, s.server().expect("server"), uploads).expect("state")
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

async fn call(
    state: &Arc<AppState>,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<(&str, String)>,
) -> Answer {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let req = match body {
        Some((ctype, b)) => req.header("content-type", ctype).body(Body::from(b)),
        None => req.body(Body::empty()),
    }
    .expect("request");
    let resp = ekyc_http::router(state.clone())
        .oneshot(req)
        .await
        .expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("not JSON ({status}): {}", String::from_utf8_lossy(&bytes)));
    Answer {
        status,
        headers,
        body,
    }
}

async fn create(state: &Arc<AppState>, key: &str, content_type: &str, length: usize) -> Answer {
    let body = json!({"content_type": content_type, "content_length": length}).to_string();
    call(
        state,
        "POST",
        "/v1/uploads",
        Some(key),
        Some(("application/json", body)),
    )
    .await
}

async fn result(state: &Arc<AppState>, key: Option<&str>, id: &str) -> Answer {
    call(state, "GET", &format!("/v1/results/{id}"), key, None).await
}

/// PUT `data` to a presigned upload with its signed headers, as a plain HTTP client does (the
/// client computes Content-Length from the body; `content_type` overrides the signed one).
async fn put(upload: &Value, data: Vec<u8>, content_type: Option<&str>) -> (u16, String) {
    let upload = upload.clone();
    let content_type = content_type.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        let url = upload["url"].as_str().expect("url");
        let mut req = ureq::request(upload["method"].as_str().expect("method"), url);
        for (k, v) in upload["headers"].as_object().expect("headers") {
            if k == "content-length" {
                continue;
            }
            let v = match (k.as_str(), &content_type) {
                ("content-type", Some(ct)) => ct.as_str(),
                _ => v.as_str().expect("header value"),
            };
            req = req.set(k, v);
        }
        match req.send_bytes(&data) {
            Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
            Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
            Err(e) => panic!("PUT to the presigned URL: {e}"),
        }
    })
    .await
    .expect("PUT task")
}

/// PUT `data` to a presigned upload with `Expect: 100-continue` over a plain TCP connection, with
/// the signed headers (`content_type` overriding the signed one) and the body's real length: for the
/// requests S3 refuses, which it may answer before reading the body (a client that writes the
/// whole body first can then see a broken pipe instead of the answer).
async fn put_expect_continue(
    upload: &Value,
    data: Vec<u8>,
    content_type: Option<&str>,
) -> (u16, String) {
    use std::io::{Read, Write};
    let url = upload["url"].as_str().expect("url").to_string();
    let mut head = String::new();
    for (k, v) in upload["headers"].as_object().expect("headers") {
        let v = match (k.as_str(), content_type) {
            ("content-length", _) => continue,
            ("content-type", Some(ct)) => ct,
            _ => v.as_str().expect("header value"),
        };
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    tokio::task::spawn_blocking(move || {
        let rest = url.strip_prefix("http://").expect("http URL");
        let (authority, target) = rest.split_at(rest.find('/').expect("path"));
        let mut conn = std::net::TcpStream::connect(authority).expect("connect");
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let request = format!(
            "PUT {target} HTTP/1.1\r\nhost: {authority}\r\n{head}content-length: {}\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n",
            data.len()
        );
        conn.write_all(request.as_bytes()).expect("head");
        let read_head = |conn: &mut std::net::TcpStream| {
            let mut buf = Vec::new();
            let mut byte = [0u8; 1];
            while !buf.ends_with(b"\r\n\r\n") && conn.read(&mut byte).is_ok_and(|n| n == 1) {
                buf.push(byte[0]);
            }
            String::from_utf8_lossy(&buf).to_string()
        };
        let status = |head: &str| {
            head.split_whitespace()
                .nth(1)
                .and_then(|s| s.parse::<u16>().ok())
                .unwrap_or(0)
        };
        let mut first = read_head(&mut conn);
        if status(&first) == 100 {
            conn.write_all(&data).expect("body");
            first = read_head(&mut conn);
        }
        let mut body = String::new();
        let _ = conn.read_to_string(&mut body);
        (status(&first), body)
    })
    .await
    .expect("PUT task")
}

/// The object key a presigned URL of the test server names (path style: /<bucket>/<key>).
fn key_of(url: &str, bucket: &str) -> String {
    let path = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(_, p)| p.split('?').next().unwrap_or(p))
        .expect("a URL with a path");
    path.strip_prefix(&format!("{bucket}/"))
        .expect("path-style URL")
        .to_string()
}

fn owner_of(api_key: &str) -> String {
    Caller::ApiKey(Sha256::digest(api_key.as_bytes()).into()).owner()
}

#[tokio::test]
async fn presigned_upload_is_verified_and_readable_only_by_its_caller() {
    if !common::models_present() || !common::s3s::available() {
        return;
    }
    let b = bucket("uploads-api").await;
    let store = Arc::new(S3Uploads::new(client(), b.clone()));
    let app = state(Some(store.clone()));
    let image = read(LIVE);

    // 1. The presigned upload.
    let created = create(&app, KEY_A, "image/jpeg", image.len()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let doc = &created.body;
    let id = doc["upload_id"].as_str().expect("upload_id").to_string();
    assert!(
        id.len() == 36 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-'),
        "a UUID: {id}"
    );
    assert_eq!(doc["expires_in_s"], 300);
    assert_eq!(doc["result_url"], format!("/v1/results/{id}"));
    assert_eq!(
        created
            .headers
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some(format!("/v1/results/{id}").as_str())
    );
    let upload = &doc["upload"];
    assert_eq!(upload["method"], "PUT");
    assert_eq!(upload["headers"]["content-type"], "image/jpeg");
    assert_eq!(upload["headers"]["content-length"], image.len().to_string());
    let url = upload["url"].as_str().expect("url");
    assert!(url.starts_with(&common::s3s::server().url), "{url}");
    // The signature covers the content type and length, and the URL expires after 300 s.
    assert!(
        url.contains("X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost"),
        "{url}"
    );
    assert!(url.contains("X-Amz-Expires=300"), "{url}");
    let key = key_of(url, &b);
    assert_eq!(key, format!("uploads/{}/{id}", owner_of(KEY_A)));

    // Nothing uploaded yet: not found (the same answer as an unknown id).
    let before = result(&app, Some(KEY_A), &id).await;
    assert_eq!(before.status, StatusCode::NOT_FOUND);
    assert_eq!(before.body["error"]["code"], "RESULT_NOT_FOUND");

    // 2. S3 refuses what was not signed: another size, another content type. Nothing is stored.
    let shorter = image[..image.len() - 1].to_vec();
    let (status, text) = put_expect_continue(upload, shorter, None).await;
    assert_eq!(status, 403, "a shorter body than signed: {text}");
    assert!(text.contains("SignatureDoesNotMatch"), "{text}");
    let mut longer = image.clone();
    longer.extend_from_slice(&[0; 1000]);
    let (status, text) = put_expect_continue(upload, longer, None).await;
    assert_eq!(status, 403, "a longer body than signed: {text}");
    assert!(text.contains("SignatureDoesNotMatch"), "{text}");
    let (status, text) = put_expect_continue(upload, image.clone(), Some("image/png")).await;
    assert_eq!(status, 403, "another content type than signed: {text}");
    assert!(text.contains("SignatureDoesNotMatch"), "{text}");
    assert_eq!(
        result(&app, Some(KEY_A), &id).await.status,
        StatusCode::NOT_FOUND,
        "refused uploads store nothing"
    );

    // 3. The upload as signed.
    let (status, text) = put(upload, image.clone(), None).await;
    assert_eq!(status, 200, "{text}");
    let pending = result(&app, Some(KEY_A), &id).await;
    assert_eq!(pending.status, StatusCode::ACCEPTED, "{}", pending.body);
    assert_eq!(pending.body["status"], "PENDING");
    assert_eq!(pending.body["upload_id"], id.as_str());
    assert_eq!(
        pending
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    // Another caller asking for the same id: exactly what an unknown id gets.
    let other = result(&app, Some(KEY_B), &id).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    assert_eq!(other.body["error"]["code"], "RESULT_NOT_FOUND");

    // 4. The S3 trigger verifies the object (a real S3 put event for that key).
    let trigger = Trigger {
        client: client(),
        pipeline: Arc::new(settings().load_local_pipeline().expect("models")),
        config: settings().s3(),
    };
    let reports = trigger
        .handle(event("s3-put-image.json", &b, Some(&key)), "req-upload")
        .await
        .expect("handled");
    assert_eq!(reports[0].outcome, Outcome::Written);
    assert_eq!(
        reports[0].result_key.as_deref(),
        Some(format!("results/{}/{id}.json", owner_of(KEY_A)).as_str())
    );

    // 5. The result, for its caller only.
    let done = result(&app, Some(KEY_A), &id).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.body["status"], "LIVE", "{}", done.body);
    assert_eq!(done.body["verdict"]["status"], "LIVE");
    assert_eq!(done.body["source"]["key"], key.as_str());
    assert_eq!(done.body["source"]["size"], image.len());
    assert_eq!(done.body["request_id"], "req-upload");
    assert_eq!(
        done.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    assert!(done.headers.get("x-request-id").is_some());
    let other = result(&app, Some(KEY_B), &id).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    assert_eq!(other.body["error"]["code"], "RESULT_NOT_FOUND");
    let anonymous = result(&app, None, &id).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    // The same id in upper case is the same upload.
    assert_eq!(
        result(&app, Some(KEY_A), &id.to_uppercase()).await.status,
        StatusCode::OK
    );

    // Unknown and malformed ids.
    let unknown = result(&app, Some(KEY_A), "0b9c3f1e-8a4d-4f6b-9c2e-1d3a5b7c9e0f").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.body["error"]["code"], "RESULT_NOT_FOUND");
    assert!(unknown.body["error"]["request_id"].is_string());
    for bad in ["not-a-uuid", "..%2F..%2Fmodels%2Fmanifest.toml"] {
        let a = result(&app, Some(KEY_A), bad).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(a.body["error"]["code"], "BAD_UPLOAD_ID", "{bad}");
    }

    // 6. An expired URL is refused (presigned for 1 s, used after 2 s) and stores nothing.
    let late_id = "11111111-2222-4333-8444-555555555555";
    let late_key = format!("uploads/{}/{late_id}", owner_of(KEY_A));
    let late: PresignedUpload = store
        .presign_put(
            &late_key,
            "image/jpeg",
            image.len() as u64,
            Duration::from_secs(1),
        )
        .await
        .expect("presign");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let late = serde_json::to_value(&late).expect("json");
    let (status, text) = put_expect_continue(&late, image.clone(), None).await;
    assert_eq!(status, 403, "an expired URL: {text}");
    assert!(text.contains("Request has expired"), "{text}");
    assert_eq!(
        result(&app, Some(KEY_A), late_id).await.status,
        StatusCode::NOT_FOUND
    );
    // The same request with a URL still in time is accepted (the 403 was the expiry), and is
    // pending until the trigger ran.
    let in_time: PresignedUpload = store
        .presign_put(
            &late_key,
            "image/jpeg",
            image.len() as u64,
            Duration::from_secs(60),
        )
        .await
        .expect("presign");
    let in_time = serde_json::to_value(&in_time).expect("json");
    assert_eq!(
        put_expect_continue(&in_time, image.clone(), None).await.0,
        200
    );
    assert_eq!(
        result(&app, Some(KEY_A), late_id).await.status,
        StatusCode::ACCEPTED
    );
}

/// An in-memory store that records what it was asked to sign.
#[derive(Default)]
struct MemoryStore {
    signed: Mutex<Vec<(String, String, u64)>>,
}

impl UploadStore for MemoryStore {
    fn presign_put<'a>(
        &'a self,
        key: &'a str,
        content_type: &'a str,
        content_length: u64,
        _expires: Duration,
    ) -> StoreFuture<'a, PresignedUpload> {
        Box::pin(async move {
            self.signed
                .lock()
                .map_err(|_| StoreError::new("poisoned"))?
                .push((key.to_string(), content_type.to_string(), content_length));
            Ok(PresignedUpload {
                method: "PUT".into(),
                url: format!("https://bucket.example/{key}?X-Amz-Signature=x"),
                headers: [
                    ("content-type".to_string(), content_type.to_string()),
                    ("content-length".to_string(), content_length.to_string()),
                ]
                .into(),
            })
        })
    }
    fn object_exists<'a>(&'a self, _key: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async { Ok(false) })
    }
    fn get_object<'a>(&'a self, _key: &'a str, _max: u64) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async { Ok(None) })
    }
}

#[tokio::test]
async fn upload_requests_are_validated_before_anything_is_signed() {
    if !common::models_present() {
        return;
    }
    let store = Arc::new(MemoryStore::default());
    let app = state(Some(store.clone()));
    let limit = app.pipeline.config().limits.max_image_bytes;
    let code = |a: &Answer| (a.status.as_u16(), a.body["error"]["code"].clone());

    let a = create(&app, KEY_A, "image/gif", 1000).await;
    assert_eq!(
        code(&a),
        (415, json!("UNSUPPORTED_MEDIA_TYPE")),
        "{}",
        a.body
    );
    let a = create(&app, KEY_A, "image/jpeg", 0).await;
    assert_eq!(code(&a), (400, json!("EMPTY_IMAGE")), "{}", a.body);
    let a = create(&app, KEY_A, "image/jpeg", limit + 1).await;
    assert_eq!(code(&a), (413, json!("IMAGE_TOO_MANY_BYTES")), "{}", a.body);
    for (ctype, body, want) in [
        (
            "text/plain",
            r#"{"content_type": "image/jpeg", "content_length": 5}"#,
            (415, "UNSUPPORTED_MEDIA_TYPE"),
        ),
        ("application/json", "{not json", (400, "BAD_JSON")),
        (
            "application/json",
            r#"{"content_type": "image/jpeg"}"#,
            (400, "BAD_JSON"),
        ),
        (
            "application/json",
            r#"{"content_type": "image/jpeg", "content_length": -5}"#,
            (400, "BAD_JSON"),
        ),
        (
            "application/json",
            r#"{"content_type": "image/jpeg", "content_length": 5, "key": "../x"}"#,
            (400, "BAD_JSON"),
        ),
    ] {
        let a = call(
            &app,
            "POST",
            "/v1/uploads",
            Some(KEY_A),
            Some((ctype, body.into())),
        )
        .await;
        assert_eq!(code(&a), (want.0, json!(want.1)), "{body}: {}", a.body);
    }
    let huge = format!(
        r#"{{"content_type": "{}", "content_length": 5}}"#,
        "x".repeat(10_000)
    );
    let a = call(
        &app,
        "POST",
        "/v1/uploads",
        Some(KEY_A),
        Some(("application/json", huge)),
    )
    .await;
    assert_eq!(code(&a), (413, json!("BODY_TOO_LARGE")));
    let a = create(&app, "not-a-key-0123456789", "image/jpeg", 5).await;
    assert_eq!(code(&a), (401, json!("UNAUTHORIZED")));
    let a = result(&app, Some(KEY_A), "12345").await;
    assert_eq!(code(&a), (400, json!("BAD_UPLOAD_ID")));
    assert!(
        store.signed.lock().expect("lock").is_empty(),
        "nothing was signed for a refused request"
    );

    // Accepted: the canonical type and the exact length are what gets signed, under the caller's
    // own prefix; the two callers' prefixes differ.
    let a = create(&app, KEY_A, "Image/WebP", 1234).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let b = create(&app, KEY_B, "image/png", limit).await;
    assert_eq!(b.status, StatusCode::CREATED, "{}", b.body);
    let signed = store.signed.lock().expect("lock").clone();
    assert_eq!(
        signed,
        vec![
            (
                format!(
                    "uploads/{}/{}",
                    owner_of(KEY_A),
                    a.body["upload_id"].as_str().unwrap_or_default()
                ),
                "image/webp".to_string(),
                1234
            ),
            (
                format!(
                    "uploads/{}/{}",
                    owner_of(KEY_B),
                    b.body["upload_id"].as_str().unwrap_or_default()
                ),
                "image/png".to_string(),
                limit as u64
            ),
        ]
    );

    // Without a store the routes exist and say so.
    let off = state(None);
    let a = create(&off, KEY_A, "image/jpeg", 5).await;
    assert_eq!(code(&a), (404, json!("UPLOADS_DISABLED")));
    let a = result(&off, Some(KEY_A), "0b9c3f1e-8a4d-4f6b-9c2e-1d3a5b7c9e0f").await;
    assert_eq!(code(&a), (404, json!("UPLOADS_DISABLED")));
}

#[test]
fn upload_config_defaults() {
    let c = UploadConfig::default();
    assert_eq!(
        (
            c.expires_s,
            c.uploads_prefix.as_str(),
            c.results_prefix.as_str()
        ),
        (300, "uploads/", "results/")
    );
}
