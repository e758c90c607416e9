//! Decoding: formats, EXIF orientation, limits checked before allocation, typed errors.

mod common;

use common::{png_header, read, settings};
use ekyc_core::decode::decode;
use ekyc_core::DecodeError;

fn code(bytes: &[u8]) -> &'static str {
    match decode(bytes, &settings().pipeline().limits) {
        Ok(_) => "OK",
        Err(e) => e.code(),
    }
}

#[test]
fn bad_inputs_get_typed_errors() {
    assert_eq!(code(b""), "EMPTY_IMAGE");
    assert_eq!(code(b"hello, this is not an image at all"), "NOT_AN_IMAGE");
    assert_eq!(
        code(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"),
        "UNSUPPORTED_FORMAT"
    );
    assert_eq!(
        code(b"BM\x00\x00\x00\x00\x00\x00\x00\x00"),
        "UNSUPPORTED_FORMAT"
    );

    let jpeg = read(common::LIVE);
    assert_eq!(code(&jpeg), "OK");
    assert_eq!(code(&jpeg[..jpeg.len() / 2]), "TRUNCATED_IMAGE");
    assert_eq!(code(&jpeg[..400]), "TRUNCATED_IMAGE");
    let png = read("spoof/hyperfas_fake_screen.png");
    assert_eq!(code(&png[..png.len() / 2]), "TRUNCATED_IMAGE");

    // A JPEG whose frame header is malformed (SOF0 segment of length 3), with scan and end markers.
    let mut corrupt = vec![0xff, 0xd8, 0xff, 0xc0, 0x00, 0x03];
    corrupt.extend([0x55; 100]);
    corrupt.extend([0xff, 0xda, 0x00, 0x02, 0xff, 0xd9]);
    assert_eq!(code(&corrupt), "CORRUPT_IMAGE");
}

#[test]
fn huge_headers_are_rejected_before_allocation() {
    // 100000 x 100000 would need 30 GB; rejected from the header alone.
    let e = decode(&png_header(100_000, 100_000), &settings().pipeline().limits)
        .expect_err("must reject");
    assert!(
        matches!(
            e,
            DecodeError::TooLarge {
                width: 100_000,
                height: 100_000,
                ..
            }
        ),
        "{e:?}"
    );
    // Within the side limit but over the pixel limit (9000 x 9000 = 81 MP > 50 MP).
    let e =
        decode(&png_header(9_000, 9_000), &settings().pipeline().limits).expect_err("must reject");
    assert_eq!(e.code(), "IMAGE_TOO_LARGE");
    // Byte limit.
    let mut limits = settings().pipeline().limits;
    limits.max_image_bytes = 1000;
    let e = decode(&read(common::LIVE), &limits).expect_err("must reject");
    assert!(matches!(e, DecodeError::TooManyBytes { limit: 1000, .. }));
    // Side limit applies to real images too.
    let mut limits = settings().pipeline().limits;
    limits.max_image_side = 500;
    assert_eq!(
        decode(&read(common::LIVE), &limits)
            .expect_err("side")
            .code(),
        "IMAGE_TOO_LARGE"
    );
}

#[test]
fn exif_orientation_is_applied() {
    for rel in [
        "live/minivision_image_T1.jpg",
        "spoof/minivision_image_F1.jpg",
        "spoof/minivision_image_F2.jpg",
    ] {
        let d = decode(&read(rel), &settings().pipeline().limits).expect("decode");
        assert_eq!(d.info.exif_orientation, 6, "{rel}");
        assert_eq!(
            d.image.dimensions(),
            (480, 640),
            "{rel}: stored 640x480, upright 480x640"
        );
        assert_eq!((d.info.width, d.info.height), (480, 640));
    }
    let d = decode(&read(common::LIVE), &settings().pipeline().limits).expect("decode");
    assert_eq!(
        (d.info.exif_orientation, d.info.decode_scale, d.info.format),
        (1, 1, "jpeg")
    );
}

/// Decompression bombs inside the pixel limits are refused from the header when their decode would
/// exceed the per-request budget (native depth, alpha and the RGB copies counted), or decoded within it.
#[test]
fn decompression_bombs_are_refused_or_decoded_within_the_budget() {
    let limits = settings().pipeline().limits;
    assert_eq!(limits.max_decode_bytes, 256 << 20, "default budget");
    // 7071x7071 RGBA16 PNG (50 MP, 8 bytes per pixel = 400 MB), interlaced (decoded whole):
    // refused before decoding.
    let e = decode(&common::png_header_full(7071, 7071, 16, 6, true), &limits).expect_err("refuse");
    assert_eq!(e.code(), "IMAGE_TOO_LARGE");
    assert!(e.to_string().contains("budget"), "{e}");
    // The same size in 8-bit RGB is still over (147 MB decoder buffer + 147 MB RGB copy)...
    assert_eq!(
        decode(&common::png_header_full(7071, 7071, 8, 2, true), &limits)
            .expect_err("refuse")
            .code(),
        "IMAGE_TOO_LARGE"
    );
    // ...and a smaller budget refuses a smaller image.
    let mut small = limits.clone();
    small.max_decode_bytes = 8 << 20;
    assert_eq!(
        decode(&common::png_header_full(2000, 2000, 8, 2, true), &small)
            .expect_err("refuse")
            .code(),
        "IMAGE_TOO_LARGE"
    );
    // Not interlaced, the same headers are decoded row by row into a box average (a few MB at
    // most): these carry no image data, so they end as TRUNCATED_IMAGE, not over the budget.
    for (w, depth, color, budget) in [
        (7071, 16, 6, &limits),
        (7071, 8, 2, &limits),
        (2000, 8, 2, &small),
    ] {
        let e = decode(&common::png_header_with(w, w, depth, color), budget).expect_err("no data");
        assert_eq!(e.code(), "TRUNCATED_IMAGE", "{w} px, {depth}-bit: {e}");
    }

    // 7000x7000 lossless WebP of one colour (a few KB): refused from its header.
    let img = image::RgbImage::from_pixel(7000, 7000, image::Rgb([90, 120, 150]));
    let mut webp = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut webp, image::ImageFormat::WebP)
        .expect("encode webp");
    let webp = webp.into_inner();
    assert!(webp.len() < 200_000, "a bomb: {} bytes", webp.len());
    let e = decode(&webp, &limits).expect_err("refuse");
    assert_eq!(e.code(), "IMAGE_TOO_LARGE", "{e}");

    // 7000x7000 1-bit PNG (6 KB of file, 6 MB of bits, 49 MP).
    let onebit = common::one_bit_png_bomb();
    assert!(onebit.len() < 200_000, "a bomb: {} bytes", onebit.len());
    // Decoded row by row at 1/8 (the long side stays >= 800 px): 875x875, a few MB in all.
    let d = decode(&onebit, &limits).expect("decoded within budget");
    assert_eq!(d.image.dimensions(), (875, 875));
    assert_eq!(
        (d.info.width, d.info.height, d.info.decode_scale),
        (7000, 7000, 8)
    );
}

// ---------------------------------------------------------------------------------------------
// Truncation whatever bytes follow (issue 12, item 4): an image cut short and given its format's
// end back is TRUNCATED_IMAGE, never a verdict on a partially decoded picture.

/// A 96x64 picture with texture everywhere (so every part of the file codes some of it).
fn textured() -> image::RgbImage {
    image::RgbImage::from_fn(96, 64, |x, y| {
        let n = (x * 31 + y * 17) ^ (x * y);
        image::Rgb([(x * 2 + y) as u8, (y * 4) as u8, (n % 253) as u8])
    })
}

fn encoded(img: image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut c = std::io::Cursor::new(Vec::new());
    img.write_to(&mut c, format).expect("encode");
    c.into_inner()
}

fn vendored_decode(name: &str) -> Vec<u8> {
    let p = common::repo().join("testdata/decode").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Cut points from 10 % to 95 % of `len`, in steps of 5 %.
fn cut_points(len: usize) -> Vec<usize> {
    (2..=19).map(|i| len * i * 5 / 100).collect()
}

/// Positions where `pattern` starts in `b`, from `from` on.
fn positions(b: &[u8], pattern: &[u8], from: usize) -> Vec<usize> {
    (from..b.len().saturating_sub(pattern.len() - 1))
        .filter(|&i| b[i..].starts_with(pattern))
        .collect()
}

/// Decoding `original` works (and gives what the `image` crate gives); every mutant is refused
/// with one of `allowed`, or decodes to exactly the original's pixels (a cut that lost no pixel
/// data). Returns how many did the latter.
fn assert_refused(
    name: &str,
    original: &[u8],
    mutants: &[(String, Vec<u8>)],
    allowed: &[&str],
) -> usize {
    let limits = settings().pipeline().limits;
    let d = decode(original, &limits).unwrap_or_else(|e| panic!("{name}: {e}"));
    let reference = image::load_from_memory(original)
        .expect("image crate")
        .to_rgb8();
    assert!(
        d.image == reference,
        "{name}: same pixels as the image crate"
    );
    assert!(!mutants.is_empty(), "{name}: no mutants");
    let mut whole = 0;
    for (what, m) in mutants {
        match decode(m, &limits) {
            Ok(cut) if cut.image == d.image => whole += 1,
            Ok(cut) => panic!(
                "{name} {what}: decoded a cut image ({}x{}) to other pixels",
                cut.image.width(),
                cut.image.height()
            ),
            Err(e) => {
                assert!(allowed.contains(&e.code()), "{name} {what}: {e}");
                let msg = e.to_string();
                if let Some(src) = std::error::Error::source(&e) {
                    assert!(!msg.contains(&src.to_string()), "{name} {what}: {msg}");
                }
            }
        }
    }
    whole
}

fn jpeg_mutants(b: &[u8]) -> Mutants {
    let with_eoi = |at: usize| {
        let mut m = b[..at].to_vec();
        m.extend([0xff, 0xd9]);
        m
    };
    let mut v: Mutants = cut_points(b.len())
        .into_iter()
        .map(|at| (format!("cut at {at} + FF D9"), with_eoi(at)))
        .collect();
    // At a scan boundary (progressive: the refinement scans missing) and before a restart marker.
    let scans = positions(b, &[0xff, 0xda], 2);
    for &at in scans.iter().skip(1) {
        v.push((format!("cut before the scan at {at} + FF D9"), with_eoi(at)));
    }
    for at in (0xd0..=0xd7u8)
        .flat_map(|m| positions(b, &[0xff, m], 2))
        .step_by(7)
    {
        v.push((
            format!("cut before the restart marker at {at} + FF D9"),
            with_eoi(at),
        ));
    }
    // No end marker at all, and garbage after the cut.
    v.push(("cut at half".into(), b[..b.len() / 2].to_vec()));
    let mut junk = b[..b.len() * 6 / 10].to_vec();
    junk.extend((0..64u8).map(|i| i.wrapping_mul(37)));
    junk.extend([0xff, 0xd9]);
    v.push(("cut at 60 % + 64 junk bytes + FF D9".into(), junk));
    v
}

#[test]
fn cut_jpegs_that_keep_their_end_marker_are_truncated() {
    let rgb = image::DynamicImage::ImageRgb8(textured());
    let files = [
        (
            "baseline (image crate)",
            encoded(rgb.clone(), image::ImageFormat::Jpeg),
        ),
        (
            "greyscale (image crate)",
            encoded(rgb.grayscale().to_luma8().into(), image::ImageFormat::Jpeg),
        ),
        (
            "baseline, restart markers",
            vendored_decode("astronaut_restart.jpg"),
        ),
        ("progressive", vendored_decode("astronaut_progressive.jpg")),
        (
            "progressive, restart markers",
            vendored_decode("astronaut_progressive_restart.jpg"),
        ),
        (
            "progressive greyscale",
            vendored_decode("astronaut_progressive_gray.jpg"),
        ),
    ];
    for (name, b) in &files {
        let mut mutants = jpeg_mutants(b);
        assert!(mutants.len() >= 20, "{name}: {} mutants", mutants.len());
        // 64 junk bytes inside a scan are as likely to be read as an invalid code or a marker.
        let junk = mutants.pop().expect("junk mutant");
        assert_eq!(assert_refused(name, b, &mutants, &["TRUNCATED_IMAGE"]), 0);
        let allowed = ["TRUNCATED_IMAGE", "CORRUPT_IMAGE"];
        assert_eq!(assert_refused(name, b, &[junk], &allowed), 0);
    }
}

/// The chunks of a PNG: (start, end) of each, the end including the CRC.
fn png_chunks(b: &[u8]) -> Vec<(usize, usize)> {
    let mut v = Vec::new();
    let mut p = 8;
    while p + 12 <= b.len() {
        let len = u32::from_be_bytes([b[p], b[p + 1], b[p + 2], b[p + 3]]) as usize;
        v.push((p, p + 12 + len));
        p += 12 + len;
    }
    v
}

const IEND: [u8; 12] = [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xae, 0x42, 0x60, 0x82];

fn png_mutants(b: &[u8]) -> Mutants {
    let chunks = png_chunks(b);
    let mut v = Vec::new();
    for at in cut_points(b.len()) {
        let mut plain = b[..at].to_vec();
        plain.extend(IEND);
        v.push((format!("cut at {at} + IEND"), plain));
        // The cut chunk made whole: its length what is left, its CRC recomputed.
        if let Some(&(start, _)) = chunks.iter().find(|&&(s, e)| s + 8 <= at && at < e) {
            let data_len = (at - start - 8) as u32;
            let mut fixed = b[..start].to_vec();
            fixed.extend(data_len.to_be_bytes());
            fixed.extend(&b[start + 4..at]);
            let crc = crc32fast::hash(&fixed[start + 4..]);
            fixed.extend(crc.to_be_bytes());
            fixed.extend(IEND);
            v.push((format!("cut at {at}, the chunk fixed up + IEND"), fixed));
        }
    }
    // At every chunk boundary after IHDR, up to the last IDAT.
    for &(start, _) in chunks.iter().skip(1) {
        if &b[start + 4..start + 8] == b"IEND" {
            break;
        }
        let mut m = b[..start].to_vec();
        m.extend(IEND);
        v.push((format!("cut before the chunk at {start} + IEND"), m));
    }
    v
}

#[test]
fn cut_pngs_that_keep_their_end_chunk_are_truncated() {
    let single = encoded(
        image::DynamicImage::ImageRgb8(textured()),
        image::ImageFormat::Png,
    );
    // The same pixels in IDAT chunks of at most 1 KB each.
    let mut multi = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut multi, 96, 64);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().expect("header");
        let mut s = w.stream_writer_with_size(1024).expect("stream");
        std::io::Write::write_all(&mut s, textured().as_raw()).expect("data");
        s.finish().expect("finish");
    }
    let idats = png_chunks(&multi)
        .iter()
        .filter(|&&(s, _)| &multi[s + 4..s + 8] == b"IDAT")
        .count();
    assert!(idats > 5, "{idats} IDAT chunks");
    let rgba16 = image::DynamicImage::ImageRgba16(image::ImageBuffer::from_fn(64, 48, |x, y| {
        image::Rgba([
            (x * 1000) as u16,
            (y * 1300) as u16,
            (x * y * 20) as u16,
            60_000,
        ])
    }));
    let rgba16 = encoded(rgba16, image::ImageFormat::Png);
    for (name, b) in [
        ("one IDAT", single),
        ("many IDATs", multi),
        ("RGBA 16-bit", rgba16),
    ] {
        assert_refused(name, &b, &png_mutants(&b), &["TRUNCATED_IMAGE"]);
    }
}

/// The chunks of a WebP: (start, end) of each (end past the pad byte), after the RIFF header.
fn webp_chunks(b: &[u8]) -> Vec<(usize, usize)> {
    let mut v = Vec::new();
    let mut p = 12;
    while p + 8 <= b.len() {
        let len = u32::from_le_bytes([b[p + 4], b[p + 5], b[p + 6], b[p + 7]]) as usize;
        v.push((p, p + 8 + len + (len & 1)));
        p += 8 + len + (len & 1);
    }
    v
}

/// `b` with its RIFF size set to its length (and a pad byte when that is odd).
fn riff_fixed(mut b: Vec<u8>) -> Vec<u8> {
    if b.len() % 2 == 1 {
        b.push(0);
    }
    let size = (b.len() - 8) as u32;
    b[4..8].copy_from_slice(&size.to_le_bytes());
    b
}

/// Named mutants of an image.
type Mutants = Vec<(String, Vec<u8>)>;

/// The mutants with only the RIFF size fixed up, and those with the cut chunk's size fixed too.
fn webp_mutants(b: &[u8]) -> (Mutants, Mutants) {
    let chunks = webp_chunks(b);
    let (mut riff, mut chunk) = (Vec::new(), Vec::new());
    for at in cut_points(b.len()) {
        riff.push((
            format!("cut at {at}, RIFF size fixed"),
            riff_fixed(b[..at].to_vec()),
        ));
        if let Some(&(start, _)) = chunks.iter().find(|&&(s, e)| s + 8 <= at && at < e) {
            let mut m = b[..at].to_vec();
            let size = (at - start - 8) as u32;
            m[start + 4..start + 8].copy_from_slice(&size.to_le_bytes());
            chunk.push((
                format!("cut at {at}, chunk and RIFF sizes fixed"),
                riff_fixed(m),
            ));
        }
    }
    for &(start, _) in &chunks {
        riff.push((
            format!("cut before the chunk at {start}, RIFF size fixed"),
            riff_fixed(b[..start].to_vec()),
        ));
    }
    (riff, chunk)
}

#[test]
fn cut_webps_with_their_sizes_fixed_up_are_refused() {
    let lossless = encoded(
        image::DynamicImage::ImageRgb8(textured()),
        image::ImageFormat::WebP,
    );
    for (name, b) in [
        ("lossless", lossless),
        ("lossy", vendored_decode("astronaut_lossy.webp")),
        (
            "lossy with alpha",
            vendored_decode("astronaut_lossy_alpha.webp"),
        ),
    ] {
        let (riff, chunk) = webp_mutants(&b);
        assert!(
            riff.len() >= 19 && chunk.len() >= 18,
            "{name}: {} + {}",
            riff.len(),
            chunk.len()
        );
        // A chunk announcing more bytes than there are is truncation.
        assert_eq!(assert_refused(name, &b, &riff, &["TRUNCATED_IMAGE"]), 0);
        // With the chunk size fixed too, the lossy decoder's partitions run out (truncation); the
        // lossless decoder reports running out of bits like malformed data ("corrupt bitstream").
        let allowed: &[&str] = if name == "lossy" {
            &["TRUNCATED_IMAGE"]
        } else {
            &["TRUNCATED_IMAGE", "CORRUPT_IMAGE"]
        };
        assert_eq!(assert_refused(name, &b, &chunk, allowed), 0);
    }
}

/// Every test image (the vendored or shared faces, the shared webcam captures, testdata/decode)
/// decodes, to the same pixels as the `image` crate's own decoder where no DCT scaling or EXIF
/// rotation applies: the truncation checks refuse no valid image.
#[test]
fn every_test_image_still_decodes() {
    let limits = settings().pipeline().limits;
    let mut dirs = vec![common::faces(), common::repo().join("testdata/decode")];
    match common::shared().and_then(|f| f.parent().map(|p| p.join("webcam"))) {
        Some(w) if w.is_dir() => dirs.push(w),
        _ => common::skip("../shared/testdata/webcam"),
    }
    let mut files = Vec::new();
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().and_then(|x| x.to_str()).is_some_and(|x| {
                ["jpg", "jpeg", "png", "webp"].contains(&x.to_ascii_lowercase().as_str())
            }) {
                files.push(p);
            }
        }
    }
    assert!(files.len() >= 20, "{} images", files.len());
    for p in &files {
        let b = std::fs::read(p).expect("read");
        if b.is_empty() {
            // The shared set has an empty file (webcam/live/person217.jpg).
            assert_eq!(code(&b), "EMPTY_IMAGE");
            continue;
        }
        let d = decode(&b, &limits).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        if d.info.decode_scale == 1 && d.info.exif_orientation == 1 {
            let reference = image::load_from_memory(&b).expect("image crate").to_rgb8();
            assert!(d.image == reference, "{}: pixels differ", p.display());
        }
    }
}
