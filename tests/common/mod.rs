//! Shared test helpers. Test images come from `../shared/testdata/faces` (or `$EKYC_TESTDATA`) when
//! that exists — the whole set — else from the vendored `testdata/faces` (a byte-identical subset,
//! see its SOURCES.md). Tests that need models or a
//! non-vendored image skip — saying so once per test binary — when they are absent, so `cargo test`
//! passes on any fresh clone; `tools/test.sh` provisions the models and runs everything.
#![allow(dead_code)]

use ekyc_core::Pipeline;
use ekyc_liveness::Settings;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Once, OnceLock};

pub mod s3s;

/// A bona fide capture that passes the gate and is LIVE (vendored, Apache-2.0).
pub const LIVE: &str = "live/vietmoney_true_001.jpg";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The vendored test images (testdata/faces, see its SOURCES.md).
pub fn vendored() -> PathBuf {
    repo().join("testdata/faces")
}

/// `../shared/testdata/faces` (or `$EKYC_TESTDATA`), when present.
pub fn shared() -> Option<PathBuf> {
    let p = std::env::var_os("EKYC_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/testdata/faces"));
    p.is_dir().then_some(p)
}

/// A line on stderr that the test harness does not capture (so a skip is visible in `cargo test`).
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Print one "skipping" line per reason per test binary.
pub fn skip(reason: &str) {
    static SAID: OnceLock<std::sync::Mutex<BTreeSet<String>>> = OnceLock::new();
    let said = SAID.get_or_init(Default::default);
    if let Ok(mut s) = said.lock() {
        if s.insert(reason.to_string()) {
            say(&format!("skipping tests that need {reason}"));
        }
    }
}

/// The folder the tests read images from: the shared set when present, else the vendored one.
pub fn faces() -> PathBuf {
    shared().unwrap_or_else(vendored)
}

/// The path of a test image (which may not exist; see [`has`]).
pub fn face(rel: &str) -> PathBuf {
    faces().join(rel)
}

/// True when the image `rel` is available (vendored or shared); otherwise says why tests skip.
pub fn has(rel: &str) -> bool {
    let ok = face(rel).exists();
    if !ok {
        skip(&format!(
            "{rel} (in ../shared/testdata/faces, not vendored)"
        ));
    }
    ok
}

pub fn read(rel: &str) -> Vec<u8> {
    let p = face(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("test image {}: {e}", p.display()))
}

/// The default settings with the repository's models directory.
pub fn settings() -> Settings {
    let mut s = Settings::from_env().expect("settings from env");
    s.models.models_dir = repo().join("models");
    s
}

/// True when the default models are provisioned in ./models (`ekyc models fetch`).
pub fn models_present() -> bool {
    static PRESENT: OnceLock<bool> = OnceLock::new();
    let present = *PRESENT.get_or_init(|| {
        let dir = repo().join("models");
        let Ok(m) = ekyc_models::Manifest::load(&dir.join("manifest.toml")) else {
            return false;
        };
        m.models
            .iter()
            .filter(|e| e.default)
            .all(|e| dir.join(&e.file).exists())
    });
    if !present {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            say("skipping tests that need the models: run `cargo run -- models fetch` first");
        });
    }
    present
}

/// One pipeline for the whole test binary (models load once, as in the service); `None` (and the
/// test skips) when the models are not provisioned.
pub fn pipeline() -> Option<&'static Pipeline> {
    static P: OnceLock<Pipeline> = OnceLock::new();
    if !models_present() {
        return None;
    }
    Some(P.get_or_init(|| {
        settings()
            .load_local_pipeline()
            .expect("loading the provisioned models")
    }))
}

/// Image files (jpg/png/webp) of a folder of [`faces`], sorted.
pub fn images_in(dir: &str) -> Vec<String> {
    let mut v: BTreeSet<String> = BTreeSet::new();
    if let Ok(rd) = std::fs::read_dir(faces().join(dir)) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().to_string();
            let l = n.to_ascii_lowercase();
            if l.ends_with(".jpg")
                || l.ends_with(".jpeg")
                || l.ends_with(".png")
                || l.ends_with(".webp")
            {
                v.insert(format!("{dir}/{n}"));
            }
        }
    }
    v.into_iter().collect()
}

/// Two vendored faces side by side (one picture, two people of similar size): the multiple-faces case.
pub fn two_faces_png() -> Vec<u8> {
    let a = image::load_from_memory(&read("live/vietmoney_true_001.jpg"))
        .expect("decode")
        .to_rgb8();
    let b = image::load_from_memory(&read("live/vietmoney_true_002.jpg"))
        .expect("decode")
        .to_rgb8();
    let (w, h) = (a.width() / 2, a.height() / 2);
    let a = image::imageops::resize(&a, w, h, image::imageops::FilterType::Triangle);
    let b = image::imageops::resize(&b, w, h, image::imageops::FilterType::Triangle);
    let mut out = image::RgbImage::new(w * 2, h);
    image::imageops::replace(&mut out, &a, 0, 0);
    image::imageops::replace(&mut out, &b, i64::from(w), 0);
    let mut buf = std::io::Cursor::new(Vec::new());
    out.write_to(&mut buf, image::ImageFormat::Png)
        .expect("encode");
    buf.into_inner()
}

/// A PNG whose IHDR claims `w` x `h` (valid CRCs) followed by a tiny IDAT: a decompression-bomb header.
pub fn png_header(w: u32, h: u32) -> Vec<u8> {
    png_header_with(w, h, 8, 2)
}

/// [`png_header`] with a given bit depth and colour type (2 = RGB, 6 = RGBA, 0 = grey).
pub fn png_header_with(w: u32, h: u32, depth: u8, color: u8) -> Vec<u8> {
    png_header_full(w, h, depth, color, false)
}

/// [`png_header_with`], stored interlaced (Adam7) when `interlaced`.
pub fn png_header_full(w: u32, h: u32, depth: u8, color: u8, interlaced: bool) -> Vec<u8> {
    let mut v = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[depth, color, 0, 0, u8::from(interlaced)]);
    v.extend_from_slice(&13u32.to_be_bytes());
    v.extend_from_slice(&ihdr);
    v.extend_from_slice(&crc32fast::hash(&ihdr).to_be_bytes());
    let idat = b"IDAT\x78\x9c\x03\x00\x00\x00\x00\x01";
    v.extend_from_slice(&((idat.len() - 4) as u32).to_be_bytes());
    v.extend_from_slice(idat);
    v.extend_from_slice(&crc32fast::hash(idat).to_be_bytes());
    v
}

/// The HTTP adapter's shared state over freshly loaded models (`None` without models).
pub fn app_state(s: &Settings) -> Option<std::sync::Arc<ekyc_http::AppState>> {
    if !models_present() {
        return None;
    }
    let pipeline = s
        .load_local_pipeline()
        .expect("loading the provisioned models");
    Some(
        ekyc_http::AppState::new(pipeline, s.server().expect("server settings"))
            .expect("memory plan"),
    )
}

/// Serve the router over `state` on a free loopback port in a thread of its own (axum's server,
/// its own runtime); returns the base URL.
pub fn serve_in_thread(state: std::sync::Arc<ekyc_http::AppState>) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(listener.local_addr().expect("addr")).expect("send");
            axum::serve(listener, ekyc_http::router(state))
                .await
                .expect("serve");
        });
    });
    format!("http://{}", rx.recv().expect("addr"))
}

/// The shared pipeline, for tests that checked [`pipeline`] at their start.
pub fn p() -> &'static Pipeline {
    pipeline().expect("models (checked at the start of the test)")
}

/// [`two_faces_png`] as a file (for the CLI).
pub fn two_faces_file() -> PathBuf {
    static F: OnceLock<PathBuf> = OnceLock::new();
    F.get_or_init(|| {
        let dir = repo().join("target/test-images");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let p = dir.join(format!("two_faces_{}.png", std::process::id()));
        std::fs::write(&p, two_faces_png()).expect("write");
        p
    })
    .clone()
}

/// A lossless WebP header (VP8L) claiming `w`×`h` pixels, followed by a few bytes of data.
#[allow(dead_code)]
pub fn webp_lossless_header(w: u32, h: u32) -> Vec<u8> {
    let bits: u32 = (w - 1) | ((h - 1) << 14);
    let mut vp8l = vec![0x2f];
    vp8l.extend_from_slice(&bits.to_le_bytes());
    vp8l.extend_from_slice(&[0u8; 16]);
    let mut v = b"RIFF".to_vec();
    v.extend_from_slice(&((4 + 8 + vp8l.len()) as u32).to_le_bytes());
    v.extend_from_slice(b"WEBPVP8L");
    v.extend_from_slice(&(vp8l.len() as u32).to_le_bytes());
    v.extend_from_slice(&vp8l);
    v
}

/// A 7000×7000 1-bit grey PNG of zeros: ~6 KB that expand to 49 megapixels.
#[allow(dead_code)]
pub fn one_bit_png_bomb() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, 7000, 7000);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::One);
        enc.set_compression(png::Compression::High);
        let mut w = enc.write_header().expect("header");
        w.write_image_data(&vec![0u8; 875 * 7000]).expect("data");
    }
    out
}

/// The issue-12 decompression bombs, by name: a 7071×7071 RGBA16 PNG, a 7000×7000 lossless WebP
/// and a 7000×7000 1-bit PNG, each a few KB.
#[allow(dead_code)]
pub fn bombs() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("rgba16-png", png_header_with(7071, 7071, 16, 6)),
        ("lossless-webp", webp_lossless_header(7000, 7000)),
        ("1-bit-png", one_bit_png_bomb()),
    ]
}
