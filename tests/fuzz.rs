//! Fuzzing `ekyc_core::decode::decode` on the stable toolchain (proptest): structured mutations of
//! small valid JPEG (baseline, greyscale, progressive, restart markers), PNG (RGB, RGBA 16-bit,
//! palette, 1-bit) and WebP (lossless, lossy, lossy with alpha) seeds — bit flips, byte edits,
//! insertions, deletions, duplicated ranges, segment/chunk length edits, header dimension edits,
//! cuts with and without the format's end re-appended — optionally with the PNG CRCs and the RIFF
//! size fixed up afterwards, so that mutations reach the decoders' inner loops.
//!
//! The property: `decode` never panics; it returns pixels within the limits (sides, pixel count)
//! or a typed `DecodeError` whose message is our own words (the decoder's error is only its
//! `source()`).
//!
//! Cases per run: `EKYC_FUZZ_CASES` (default 256, a second or two); `tools/test.sh` runs many more.
//! A failing case is shrunk and its seed saved to `tests/fuzz_regressions/proptest-decode.txt`,
//! which every run replays first; keep the minimal input itself as a file in
//! `tests/fuzz_regressions/decode/` too (replayed by `regressions_replay`). The HTTP input suite
//! is `crates/http/src/input/fuzz.rs`.

use ekyc_core::decode::{decode, Decoded};
use ekyc_core::{DecodeError, Limits};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, FileFailurePersistence, TestError, TestRunner};
use std::collections::BTreeMap;
use std::error::Error as _;
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

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
            "/tests/fuzz_regressions/proptest-decode.txt"
        )))),
        ..Config::default()
    }
}

/// Tighter than the service's defaults, so a mutated header claiming a large image is refused
/// (or decoded) quickly.
fn limits() -> Limits {
    Limits {
        max_image_side: 4096,
        max_image_pixels: 4_000_000,
        max_decode_bytes: 64 << 20,
        ..Limits::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Jpeg,
    Png,
    Webp,
}

fn format_of(b: &[u8]) -> Format {
    if b.starts_with(&[0xff, 0xd8]) {
        Format::Jpeg
    } else if b.starts_with(b"\x89PNG") {
        Format::Png
    } else {
        Format::Webp
    }
}

/// A 40x32 picture with gradients and texture (so every encoder has something to code).
fn picture() -> image::RgbImage {
    image::RgbImage::from_fn(40, 32, |x, y| {
        let n = (x * 7 + y * 13) ^ (x * y);
        image::Rgb([(x * 6) as u8, (y * 8) as u8, (n % 251) as u8])
    })
}

fn encode(img: image::DynamicImage, f: image::ImageFormat) -> Vec<u8> {
    let mut c = Cursor::new(Vec::new());
    img.write_to(&mut c, f).expect("encode seed");
    c.into_inner()
}

fn png_with(color: png::ColorType, depth: png::BitDepth, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, 40, 32);
        enc.set_color(color);
        enc.set_depth(depth);
        if color == png::ColorType::Indexed {
            enc.set_palette(
                (0..16u8)
                    .flat_map(|i| [i * 16, 255 - i * 16, i * 8])
                    .collect::<Vec<_>>(),
            );
        }
        let mut w = enc.write_header().expect("png header");
        w.write_image_data(data).expect("png data");
    }
    out
}

/// The seeds: small valid images of every supported coding.
fn seeds() -> &'static [(&'static str, Vec<u8>)] {
    static SEEDS: OnceLock<Vec<(&'static str, Vec<u8>)>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let rgb = image::DynamicImage::ImageRgb8(picture());
        let vendored = |name: &str| {
            std::fs::read(repo().join("testdata/decode").join(name))
                .unwrap_or_else(|e| panic!("testdata/decode/{name}: {e}"))
        };
        let rgba16 =
            image::DynamicImage::ImageRgba16(image::ImageBuffer::from_fn(40, 32, |x, y| {
                image::Rgba([
                    (x * 1600) as u16,
                    (y * 2000) as u16,
                    999,
                    (x * y * 50) as u16,
                ])
            }));
        let indexed: Vec<u8> = (0..40 * 32 / 2).map(|i| (i * 37 % 256) as u8).collect();
        let onebit: Vec<u8> = (0..5 * 32).map(|i| (i * 91 % 256) as u8).collect();
        vec![
            (
                "baseline.jpg",
                encode(rgb.clone(), image::ImageFormat::Jpeg),
            ),
            (
                "grey.jpg",
                encode(rgb.grayscale().to_luma8().into(), image::ImageFormat::Jpeg),
            ),
            ("progressive.jpg", vendored("astronaut_progressive.jpg")),
            ("restart.jpg", vendored("astronaut_restart.jpg")),
            ("rgb.png", encode(rgb.clone(), image::ImageFormat::Png)),
            ("rgba16.png", encode(rgba16, image::ImageFormat::Png)),
            (
                "palette.png",
                png_with(png::ColorType::Indexed, png::BitDepth::Four, &indexed),
            ),
            (
                "onebit.png",
                png_with(png::ColorType::Grayscale, png::BitDepth::One, &onebit),
            ),
            ("lossless.webp", encode(rgb, image::ImageFormat::WebP)),
            ("lossy.webp", vendored("astronaut_lossy.webp")),
            ("lossy_alpha.webp", vendored("astronaut_lossy_alpha.webp")),
        ]
    })
}

/// A new value for a length or size field.
#[derive(Debug, Clone)]
enum Length {
    Zero,
    Max,
    Delta(i16),
    Value(u32),
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    Insert(Index, Vec<u8>),
    Delete(Index, u16),
    Duplicate(Index, u16),
    /// Cut, and append the format's end: JPEG `FF D9`, PNG an IEND chunk, WebP nothing (the RIFF
    /// size is fixed up).
    CutKeepEnd(Index),
    Cut(Index),
    /// The n-th length field: a JPEG segment length, a PNG chunk length, the RIFF or a chunk size.
    Length(Index, Length),
    /// The width and height in the frame / IHDR / VP8, VP8L or VP8X header.
    Dimensions(u32, u32),
}

fn length() -> impl Strategy<Value = Length> {
    prop_oneof![
        Just(Length::Zero),
        Just(Length::Max),
        any::<i16>().prop_map(|d| Length::Delta(d % 64)),
        any::<u32>().prop_map(Length::Value),
    ]
}

fn dimension() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(1),
        1u32..300,
        300u32..5000,
        Just(16_383),
        Just(65_535),
        any::<u32>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::SetByte(i, v)),
        2 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        1 => (any::<Index>(), 1u16..512).prop_map(|(i, n)| Mutation::Delete(i, n)),
        1 => (any::<Index>(), 1u16..512).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        1 => any::<Index>().prop_map(Mutation::CutKeepEnd),
        1 => any::<Index>().prop_map(Mutation::Cut),
        2 => (any::<Index>(), length()).prop_map(|(i, l)| Mutation::Length(i, l)),
        2 => (dimension(), dimension()).prop_map(|(w, h)| Mutation::Dimensions(w, h)),
    ]
}

/// A length field: position, width in bytes, big-endian.
type Field = (usize, usize, bool);

fn be16(b: &[u8], p: usize) -> Option<usize> {
    b.get(p..p + 2)
        .map(|s| usize::from(u16::from_be_bytes([s[0], s[1]])))
}

fn be32(b: &[u8], p: usize) -> Option<usize> {
    b.get(p..p + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize)
}

fn le32(b: &[u8], p: usize) -> Option<usize> {
    b.get(p..p + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
}

/// The length fields of `b`, walking its structure as far as it holds together.
fn length_fields(b: &[u8]) -> Vec<Field> {
    let mut v = Vec::new();
    match format_of(b) {
        Format::Jpeg => {
            let mut p = 2;
            while p + 4 <= b.len() && b[p] == 0xff {
                let m = b[p + 1];
                if matches!(m, 0x01 | 0xd0..=0xd9) {
                    p += 2;
                    continue;
                }
                v.push((p + 2, 2, true));
                if m == 0xda {
                    break;
                }
                match be16(b, p + 2) {
                    Some(len) => p += 2 + len,
                    None => break,
                }
            }
        }
        Format::Png => {
            let mut p = 8;
            while let Some(len) = be32(b, p) {
                v.push((p, 4, true));
                p = p.saturating_add(12).saturating_add(len);
            }
        }
        Format::Webp => {
            v.push((4, 4, false));
            let mut p = 12;
            while let Some(len) = le32(b, p + 4) {
                v.push((p + 4, 4, false));
                p = p.saturating_add(8).saturating_add(len + (len & 1));
            }
        }
    }
    v
}

fn put(b: &mut [u8], (pos, width, big): Field, value: u64) {
    let bytes = value.to_be_bytes();
    let mut field = bytes[8 - width..].to_vec();
    if !big {
        field.reverse();
    }
    if let Some(dst) = b.get_mut(pos..pos + width) {
        dst.copy_from_slice(&field);
    }
}

fn get(b: &[u8], (pos, width, big): Field) -> u64 {
    let Some(src) = b.get(pos..pos + width) else {
        return 0;
    };
    let mut v = 0u64;
    for i in 0..width {
        let byte = if big { src[i] } else { src[width - 1 - i] };
        v = (v << 8) | u64::from(byte);
    }
    v
}

/// PNG: every chunk's CRC recomputed. WebP: the RIFF size set to the data's.
fn fix_up(b: &mut [u8]) {
    match format_of(b) {
        Format::Png => {
            let mut p = 8;
            while let Some(len) = be32(b, p) {
                let end = p.saturating_add(12).saturating_add(len);
                if end > b.len() {
                    break;
                }
                let crc = crc32fast::hash(&b[p + 4..end - 4]);
                b[end - 4..end].copy_from_slice(&crc.to_be_bytes());
                p = end;
            }
        }
        Format::Webp => {
            if b.len() >= 8 {
                let size = (b.len() - 8) as u64;
                put(b, (4, 4, false), size);
            }
        }
        Format::Jpeg => {}
    }
}

const IEND: [u8; 12] = [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xae, 0x42, 0x60, 0x82];

fn set_dimensions(b: &mut [u8], w: u32, h: u32) {
    match format_of(b) {
        Format::Jpeg => {
            let mut p = 2;
            while p + 9 <= b.len() && b[p] == 0xff {
                let m = b[p + 1];
                if matches!(m, 0xc0..=0xc3 | 0xc5..=0xc7 | 0xc9..=0xcb | 0xcd..=0xcf) {
                    put(b, (p + 5, 2, true), u64::from(h & 0xffff));
                    put(b, (p + 7, 2, true), u64::from(w & 0xffff));
                    return;
                }
                match be16(b, p + 2) {
                    Some(len) if m != 0xda => p += 2 + len,
                    _ => return,
                }
            }
        }
        Format::Png => {
            put(b, (16, 4, true), u64::from(w));
            put(b, (20, 4, true), u64::from(h));
            if b.len() >= 33 {
                let crc = crc32fast::hash(&b[12..29]);
                b[29..33].copy_from_slice(&crc.to_be_bytes());
            }
        }
        Format::Webp => {
            let mut p = 12;
            while let (Some(tag), Some(len)) = (b.get(p..p + 4), le32(b, p + 4)) {
                let d = p + 8;
                match tag {
                    b"VP8L" if b.len() >= d + 5 => {
                        let bits =
                            (w.wrapping_sub(1) & 0x3fff) | ((h.wrapping_sub(1) & 0x3fff) << 14);
                        let old = get(b, (d + 1, 4, false)) as u32;
                        put(b, (d + 1, 4, false), u64::from((old & 0xf000_0000) | bits));
                        return;
                    }
                    b"VP8 " if b.len() >= d + 10 => {
                        put(b, (d + 6, 2, false), u64::from(w & 0x3fff));
                        put(b, (d + 8, 2, false), u64::from(h & 0x3fff));
                        return;
                    }
                    b"VP8X" if b.len() >= d + 10 => {
                        put(
                            b,
                            (d + 4, 3, false),
                            u64::from(w.wrapping_sub(1) & 0xff_ffff),
                        );
                        put(
                            b,
                            (d + 7, 3, false),
                            u64::from(h.wrapping_sub(1) & 0xff_ffff),
                        );
                    }
                    _ => {}
                }
                p = p.saturating_add(8).saturating_add(len + (len & 1));
            }
        }
    }
}

fn apply(b: &mut Vec<u8>, m: &Mutation) {
    let n = b.len();
    if n == 0 {
        return;
    }
    match m {
        Mutation::FlipBit(i, bit) => b[i.index(n)] ^= 1 << bit,
        Mutation::SetByte(i, v) => b[i.index(n)] = *v,
        Mutation::Insert(i, v) => {
            let at = i.index(n + 1);
            b.splice(at..at, v.iter().copied());
        }
        Mutation::Delete(i, len) => {
            let at = i.index(n);
            let end = (at + usize::from(*len)).min(n);
            b.drain(at..end);
        }
        Mutation::Duplicate(i, len) => {
            let at = i.index(n);
            let end = (at + usize::from(*len)).min(n);
            let copy = b[at..end].to_vec();
            b.splice(end..end, copy);
        }
        Mutation::Cut(i) => b.truncate(i.index(n)),
        Mutation::CutKeepEnd(i) => {
            let f = format_of(b);
            b.truncate(i.index(n));
            match f {
                Format::Jpeg => b.extend([0xff, 0xd9]),
                Format::Png => b.extend(IEND),
                Format::Webp => {
                    if b.len() % 2 == 1 {
                        b.push(0);
                    }
                    fix_up(b);
                }
            }
        }
        Mutation::Length(i, l) => {
            let fields = length_fields(b);
            if fields.is_empty() {
                return;
            }
            let f = fields[i.index(fields.len())];
            let max = if f.1 == 2 { 0xffff } else { 0xffff_ffff };
            let v = match l {
                Length::Zero => 0,
                Length::Max => max,
                Length::Delta(d) => (get(b, f) as i64 + i64::from(*d)).clamp(0, max as i64) as u64,
                Length::Value(v) => u64::from(*v) & max,
            };
            put(b, f, v);
        }
        Mutation::Dimensions(w, h) => set_dimensions(b, *w, *h),
    }
}

/// The property every answer must have.
fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    check_answer(&decode(bytes, &limits()))
}

fn check_answer(answer: &Result<Decoded, DecodeError>) -> Result<(), TestCaseError> {
    let limits = limits();
    match answer {
        Ok(d) => {
            let (w, h) = d.image.dimensions();
            prop_assert!(w > 0 && h > 0);
            prop_assert!(w <= limits.max_image_side && h <= limits.max_image_side);
            prop_assert!(d.info.width <= limits.max_image_side);
            prop_assert!(d.info.height <= limits.max_image_side);
            prop_assert!(
                u64::from(d.info.width) * u64::from(d.info.height) <= limits.max_image_pixels
            );
            prop_assert!([1, 2, 4, 8].contains(&d.info.decode_scale));
        }
        Err(e) => {
            prop_assert!(
                [
                    "EMPTY_IMAGE",
                    "IMAGE_TOO_MANY_BYTES",
                    "NOT_AN_IMAGE",
                    "UNSUPPORTED_FORMAT",
                    "IMAGE_TOO_LARGE",
                    "TRUNCATED_IMAGE",
                    "CORRUPT_IMAGE",
                ]
                .contains(&e.code()),
                "{e}"
            );
            let msg = e.to_string();
            prop_assert!(!msg.is_empty());
            if let Some(src) = e.source() {
                let s = src.to_string();
                prop_assert!(
                    s.len() < 12 || !msg.contains(&s),
                    "the decoder's words in the message: {msg}"
                );
            }
            if let DecodeError::Truncated { what, .. } | DecodeError::Corrupt { what, .. } = e {
                prop_assert!(!what.is_empty());
            }
        }
    }
    Ok(())
}

/// Write a failing input to `target/fuzz-failures/` (to be copied to
/// `tests/fuzz_regressions/decode/` with the fix); returns its path.
fn keep_failure(bytes: &[u8]) -> String {
    let ext = match format_of(bytes) {
        Format::Jpeg => "jpg",
        Format::Png => "png",
        Format::Webp => "webp",
    };
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let dir = repo().join("target/fuzz-failures");
    let path = dir.join(format!("decode-{hash:016x}.{ext}"));
    let _ = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, bytes));
    path.display().to_string()
}

/// Any sequence of up to three mutations of any seed: no panic, a typed answer within the limits.
/// Prints how the cases were answered (visible with `--nocapture`).
#[test]
fn decode_survives_structured_mutations() {
    let answers: Mutex<BTreeMap<&'static str, u32>> = Mutex::default();
    let strategy = (
        any::<Index>(),
        prop::collection::vec(mutation(), 1..4),
        any::<bool>(),
    );
    let mutated = |(seed, mutations, fixed): &(Index, Vec<Mutation>, bool)| {
        let all = seeds();
        let mut bytes = all[seed.index(all.len())].1.clone();
        for m in mutations {
            apply(&mut bytes, m);
        }
        if *fixed {
            fix_up(&mut bytes);
        }
        bytes
    };
    let mut runner = TestRunner::new(config());
    let result = runner.run(&strategy, |case| {
        let bytes = mutated(&case);
        let answer = std::panic::catch_unwind(|| decode(&bytes, &limits()))
            .map_err(|_| TestCaseError::fail("decode panicked"))?;
        if let Ok(mut a) = answers.lock() {
            *a.entry(answer.as_ref().map_or_else(DecodeError::code, |_| "OK"))
                .or_default() += 1;
        }
        check_answer(&answer)
    });
    let answers = answers.into_inner().unwrap_or_default();
    eprintln!(
        "decode fuzz: {} cases: {answers:?}",
        answers.values().sum::<u32>()
    );
    match result {
        Ok(()) => {}
        Err(TestError::Fail(why, case)) => {
            let kept = keep_failure(&mutated(&case));
            panic!("{why}: minimal input {case:?}, written to {kept}");
        }
        Err(e) => panic!("{e}"),
    }
}

/// The seeds decode (else the suite would only be fuzzing the error paths).
#[test]
fn seeds_decode() {
    for (name, bytes) in seeds() {
        let d = decode(bytes, &limits()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(d.image.width() > 0, "{name}");
    }
}

/// The code a kept input's name asks for: `name.CODE.ext` (e.g. `cut.TRUNCATED_IMAGE.jpg`, or
/// `OK`); `None` for `name.ext`.
fn expected_code(path: &std::path::Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let parts: Vec<&str> = name.split('.').collect();
    let code = parts
        .len()
        .checked_sub(2)
        .and_then(|i| parts.get(i).filter(|_| i > 0))?;
    code.chars()
        .all(|c| c.is_ascii_uppercase() || c == '_')
        .then(|| code.to_string())
}

/// Every kept input (a crash or a near miss found by this suite, or written by hand) still gets a
/// typed answer, and the one its name asks for.
#[test]
fn regressions_replay() {
    let dir = repo().join("tests/fuzz_regressions/decode");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/fuzz_regressions/decode") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        let bytes = std::fs::read(&path).expect("read regression input");
        check(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Some(want) = expected_code(&path) {
            let got = match decode(&bytes, &limits()) {
                Ok(_) => "OK",
                Err(e) => e.code(),
            };
            assert_eq!(got, want, "{}", path.display());
        }
        n += 1;
    }
    assert!(n > 0, "no inputs in {}", dir.display());
}
