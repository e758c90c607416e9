//! Fuzzing the request-body extraction ([`extract_image`]) on the stable toolchain (proptest):
//! multipart bodies built from random parts (names, filenames, part content types, data, with and
//! without the closing boundary), JSON bodies (the `image` field in base64 with and without a
//! `data:` prefix and whitespace, other types, other shapes, deep nesting) and raw bytes, each then
//! mutated (bit flips, insertions, deletions, cuts, stray boundaries), under real and random
//! content types and limits.
//!
//! The properties: no panic; image bytes are non-empty and within the limit; an error is a client
//! error (4xx `ErrorKind`) with a message and no internal detail; and an unmutated well-formed
//! body gives exactly the image it carries (or the error its size calls for).
//!
//! Cases per run: `EKYC_FUZZ_CASES` (default 256); `tools/test.sh` runs many more. A failing case
//! is shrunk and its seed saved to `tests/fuzz_regressions/proptest-http-input.txt` (replayed
//! first by every run); keep the minimal input as a file in `tests/fuzz_regressions/http/` too
//! (format in `tests/fuzz_regressions/README.md`, replayed by `regressions_replay`).
//!
//! It lives beside `input.rs` because that module is private to the crate; `tests/fuzz.rs` is the
//! decode suite.

use super::extract_image;
use crate::error::ApiError;
use axum::body::Bytes;
use base64::Engine;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

const BOUNDARY: &str = "ekyc-fuzz-7MA4YWxkTrZu0gW";

fn cases() -> u32 {
    std::env::var("EKYC_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn config() -> Config {
    Config {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fuzz_regressions/proptest-http-input.txt"
        )))),
        ..Config::default()
    }
}

fn run(ctype: &str, body: Vec<u8>, limit: usize) -> Result<Vec<u8>, ApiError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    rt.block_on(extract_image(ctype, Bytes::from(body), limit))
}

#[derive(Debug, Clone)]
struct Part {
    name: Option<String>,
    filename: Option<String>,
    ctype: Option<&'static str>,
    data: Vec<u8>,
}

fn part() -> impl Strategy<Value = Part> {
    (
        prop_oneof![
            3 => Just(Some("file".to_string())),
            1 => Just(None),
            2 => "[a-z]{0,6}".prop_map(Some),
        ],
        prop::option::of("[a-z.]{0,10}"),
        prop::option::of(prop::sample::select(vec![
            "image/jpeg",
            "application/octet-stream",
            "text/plain",
        ])),
        prop::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(|(name, filename, ctype, data)| Part {
            name,
            filename,
            ctype,
            data,
        })
}

fn multipart(parts: &[Part], close: bool) -> Vec<u8> {
    let mut v = Vec::new();
    for p in parts {
        v.extend(format!("--{BOUNDARY}\r\nContent-Disposition: form-data").bytes());
        if let Some(n) = &p.name {
            v.extend(format!("; name=\"{n}\"").bytes());
        }
        if let Some(f) = &p.filename {
            v.extend(format!("; filename=\"{f}\"").bytes());
        }
        v.extend(b"\r\n");
        if let Some(c) = p.ctype {
            v.extend(format!("Content-Type: {c}\r\n").bytes());
        }
        v.extend(b"\r\n");
        v.extend(&p.data);
        v.extend(b"\r\n");
    }
    if close {
        v.extend(format!("--{BOUNDARY}--\r\n").bytes());
    }
    v
}

/// A body, and what an unmutated one must give (`None`: no exact expectation).
#[derive(Debug, Clone)]
enum Body {
    Multipart {
        parts: Vec<Part>,
        close: bool,
    },
    Json {
        data: Vec<u8>,
        prefix: bool,
        spaces: Index,
    },
    JsonOther(String),
    Raw(Vec<u8>),
}

fn json_other() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{\"image\": 5}".to_string()),
        Just("{\"image\": null}".to_string()),
        Just("{\"picture\": \"AAAA\"}".to_string()),
        Just("[\"image\"]".to_string()),
        Just("\"image\"".to_string()),
        Just("{\"image\": \"not base64!\"}".to_string()),
        Just("{\"image\": \"data:;base64,\"}".to_string()),
        (1usize..4000).prop_map(|n| "[".repeat(n)),
        (1usize..200).prop_map(|n| format!("{}\"image\": 1{}", "{\"a\":".repeat(n), "}".repeat(n))),
        ".{0,64}",
    ]
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        3 => (prop::collection::vec(part(), 0..4), any::<bool>())
            .prop_map(|(parts, close)| Body::Multipart { parts, close }),
        2 => (prop::collection::vec(any::<u8>(), 0..200), any::<bool>(), any::<Index>())
            .prop_map(|(data, prefix, spaces)| Body::Json { data, prefix, spaces }),
        1 => json_other().prop_map(Body::JsonOther),
        1 => prop::collection::vec(any::<u8>(), 0..300).prop_map(Body::Raw),
    ]
}

fn bytes_of(b: &Body) -> Vec<u8> {
    match b {
        Body::Multipart { parts, close } => multipart(parts, *close),
        Body::Json {
            data,
            prefix,
            spaces,
        } => {
            let mut b64 = base64::engine::general_purpose::STANDARD.encode(data);
            if !b64.is_empty() {
                // Whitespace, escaped for JSON (a raw newline in a string is not JSON).
                b64.insert_str(spaces.index(b64.len()), " \\n\\t");
            }
            let pre = if *prefix {
                "data:image/png;base64,"
            } else {
                ""
            };
            format!("{{\"image\": \"{pre}{b64}\"}}").into_bytes()
        }
        Body::JsonOther(s) => s.clone().into_bytes(),
        Body::Raw(v) => v.clone(),
    }
}

/// The image an unmutated body carries under its own content type: `Ok(image)`, or `Err(code)`.
fn expected(b: &Body, limit: usize) -> Option<Result<Vec<u8>, &'static str>> {
    let image = match b {
        Body::Multipart { parts, close: true } => {
            match parts.iter().find(|p| p.name.as_deref() == Some("file")) {
                Some(p) => p.data.clone(),
                None => return Some(Err("MISSING_FILE")),
            }
        }
        Body::Json { data, .. } => data.clone(),
        Body::Raw(v) => v.clone(),
        _ => return None,
    };
    Some(if image.len() > limit {
        Err("BODY_TOO_LARGE")
    } else if image.is_empty() {
        Err("EMPTY_IMAGE")
    } else {
        Ok(image)
    })
}

fn own_ctype(b: &Body) -> &'static str {
    match b {
        Body::Multipart { .. } => "multipart/form-data; boundary=ekyc-fuzz-7MA4YWxkTrZu0gW",
        Body::Json { .. } | Body::JsonOther(_) => "application/json",
        Body::Raw(_) => "image/jpeg",
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(Index, u8),
    Insert(Index, Vec<u8>),
    Delete(Index, u8),
    Cut(Index),
    /// A stray boundary line (with or without the closing dashes) somewhere.
    Boundary(Index, bool),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, n)| Mutation::Delete(i, n)),
        any::<Index>().prop_map(Mutation::Cut),
        (any::<Index>(), any::<bool>()).prop_map(|(i, c)| Mutation::Boundary(i, c)),
    ]
}

fn apply(v: &mut Vec<u8>, m: &Mutation) {
    let n = v.len();
    match m {
        Mutation::FlipBit(i, b) if n > 0 => v[i.index(n)] ^= 1 << b,
        Mutation::Insert(i, bytes) => {
            let at = i.index(n + 1);
            v.splice(at..at, bytes.iter().copied());
        }
        Mutation::Delete(i, len) if n > 0 => {
            let at = i.index(n);
            v.drain(at..(at + usize::from(*len)).min(n));
        }
        Mutation::Cut(i) => v.truncate(i.index(n + 1)),
        Mutation::Boundary(i, close) => {
            let at = i.index(n + 1);
            let s = format!("\r\n--{BOUNDARY}{}\r\n", if *close { "--" } else { "" });
            v.splice(at..at, s.bytes());
        }
        _ => {}
    }
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        // The body's own content type.
        6 => Just(None),
        1 => prop::sample::select(vec![
            "multipart/form-data",
            "multipart/form-data; boundary=",
            "multipart/form-data; boundary=\"ekyc-fuzz-7MA4YWxkTrZu0gW\"",
            "Multipart/Form-Data; boundary=ekyc-fuzz-7MA4YWxkTrZu0gW",
            "multipart/form-data; boundary=other",
            "image/png",
            "image/webp",
            "IMAGE/JPG",
            "application/json; charset=utf-8",
            "text/plain",
            "",
            ";",
        ])
        .prop_map(|s| Some(s.to_string())),
        1 => ".{0,40}".prop_map(Some),
    ]
}

/// The properties of every answer.
fn check(result: &Result<Vec<u8>, ApiError>, limit: usize) -> Result<(), TestCaseError> {
    match result {
        Ok(image) => {
            prop_assert!(!image.is_empty());
            prop_assert!(image.len() <= limit, "{} > {limit}", image.len());
        }
        Err(e) => {
            prop_assert!(e.status().is_client_error(), "{}: {}", e.code(), e.message);
            prop_assert!(!e.message.is_empty());
            prop_assert!(e.detail.is_none(), "{}", e.message);
        }
    }
    Ok(())
}

/// Prints how the cases were answered (visible with `--nocapture`).
#[test]
fn extract_image_survives_mutated_bodies() {
    let answers: Mutex<BTreeMap<&'static str, u32>> = Mutex::default();
    let strategy = (
        body(),
        prop::collection::vec(mutation(), 0..4),
        content_type(),
        prop_oneof![0usize..300, Just(1usize << 20)],
    );
    let mut runner = TestRunner::new(config());
    let result = runner.run(&strategy, |(body, mutations, ctype, limit)| {
        let mut bytes = bytes_of(&body);
        for m in &mutations {
            apply(&mut bytes, m);
        }
        let own = ctype.is_none();
        let ctype = ctype.unwrap_or_else(|| own_ctype(&body).to_string());
        let result = run(&ctype, bytes, limit);
        if let Ok(mut a) = answers.lock() {
            let code = result.as_ref().map_or_else(ApiError::code, |_| "OK");
            *a.entry(code).or_default() += 1;
        }
        check(&result, limit)?;
        if own && mutations.is_empty() {
            if let Some(want) = expected(&body, limit) {
                match (&result, want) {
                    (Ok(got), Ok(want)) => prop_assert_eq!(got, &want),
                    (Err(e), Err(code)) => prop_assert_eq!(e.code(), code),
                    (got, want) => prop_assert!(
                        false,
                        "got {:?}, want {:?}",
                        got.as_ref().map(Vec::len).map_err(ApiError::code),
                        want.map(|v| v.len())
                    ),
                }
            }
        }
        Ok(())
    });
    let answers = answers.into_inner().unwrap_or_default();
    eprintln!(
        "http input fuzz: {} cases: {answers:?}",
        answers.values().sum::<u32>()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}

fn regressions() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fuzz_regressions/http")
}

/// Every kept input still gets a typed answer. A file is `content-type: <value>`, `limit: <n>`,
/// an empty line, then the body bytes (see `tests/fuzz_regressions/README.md`).
#[test]
fn regressions_replay() {
    let mut n = 0;
    for entry in std::fs::read_dir(regressions()).expect("tests/fuzz_regressions/http") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        let raw = std::fs::read(&path).expect("read regression input");
        let (head, body) = match raw.windows(2).position(|w| w == b"\n\n") {
            Some(i) => (&raw[..i], raw[i + 2..].to_vec()),
            None => panic!("{}: no empty line after the header", path.display()),
        };
        let head = String::from_utf8_lossy(head);
        let mut ctype = "";
        let mut limit = 1 << 20;
        for line in head.lines() {
            if let Some(v) = line.strip_prefix("content-type:") {
                ctype = v.trim();
            } else if let Some(v) = line.strip_prefix("limit:") {
                limit = v.trim().parse().expect("limit: a number");
            }
        }
        let result = run(ctype, body, limit);
        check(&result, limit).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        n += 1;
    }
    assert!(n > 0, "no inputs in {}", regressions().display());
}
