//! Shared test helpers: the provisioned models (see .ci/run) and the shared testdata, by path.
#![allow(dead_code)]

use ekyc_liveness::{Config, Pipeline};
use std::path::PathBuf;
use std::sync::OnceLock;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// ../shared/testdata/faces, or $EKYC_TESTDATA.
pub fn faces() -> PathBuf {
    std::env::var_os("EKYC_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/testdata/faces"))
}

pub fn face(rel: &str) -> PathBuf {
    faces().join(rel)
}

pub fn read(rel: &str) -> Vec<u8> {
    let p = face(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("test image {}: {e}", p.display()))
}

/// The default configuration with the repository's models directory.
pub fn config() -> Config {
    let mut c = Config::from_env().expect("config from env");
    c.models.models_dir = repo().join("models");
    c
}

/// One pipeline for the whole test binary (models load once, as in the service).
pub fn pipeline() -> &'static Pipeline {
    static P: OnceLock<Pipeline> = OnceLock::new();
    P.get_or_init(|| {
        Pipeline::load(config())
            .expect("models must be provisioned: run `ekyc models fetch` (see README)")
    })
}

/// Image files (jpg/png/webp) of a testdata folder, sorted.
pub fn images_in(dir: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(faces().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| {
            let n = n.to_ascii_lowercase();
            n.ends_with(".jpg")
                || n.ends_with(".jpeg")
                || n.ends_with(".png")
                || n.ends_with(".webp")
        })
        .map(|n| format!("{dir}/{n}"))
        .collect();
    v.sort();
    v
}

/// A PNG whose IHDR claims `w` x `h` (valid CRCs) followed by a tiny IDAT: a decompression-bomb header.
pub fn png_header(w: u32, h: u32) -> Vec<u8> {
    fn crc(data: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    let mut v = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    v.extend_from_slice(&13u32.to_be_bytes());
    v.extend_from_slice(&ihdr);
    v.extend_from_slice(&crc(&ihdr).to_be_bytes());
    let idat = b"IDAT\x78\x9c\x03\x00\x00\x00\x00\x01";
    v.extend_from_slice(&((idat.len() - 4) as u32).to_be_bytes());
    v.extend_from_slice(idat);
    v.extend_from_slice(&crc(idat).to_be_bytes());
    v
}
