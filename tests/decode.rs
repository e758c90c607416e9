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
    // 7071x7071 RGBA16 PNG (50 MP, 8 bytes per pixel = 400 MB): refused before decoding.
    let e = decode(&common::png_header_with(7071, 7071, 16, 6), &limits).expect_err("refuse");
    assert_eq!(e.code(), "IMAGE_TOO_LARGE");
    assert!(e.to_string().contains("budget"), "{e}");
    // The same size in 8-bit RGB is still over (147 MB decoder buffer + 147 MB RGB copy)...
    assert_eq!(
        decode(&png_header(7071, 7071), &limits)
            .expect_err("refuse")
            .code(),
        "IMAGE_TOO_LARGE"
    );
    // ...and a smaller budget refuses a smaller image.
    let mut small = limits.clone();
    small.max_decode_bytes = 8 << 20;
    assert_eq!(
        decode(&png_header(2000, 2000), &small)
            .expect_err("refuse")
            .code(),
        "IMAGE_TOO_LARGE"
    );

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

    // 7000x7000 1-bit PNG (6 MB of bits, 49 MB as 8-bit grey + 147 MB RGB): within the budget, decoded.
    let mut onebit = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut onebit, 7000, 7000);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::One);
        let mut w = enc.write_header().expect("header");
        w.write_image_data(&vec![0u8; 875 * 7000]).expect("data");
    }
    assert!(onebit.len() < 200_000, "a bomb: {} bytes", onebit.len());
    let peak = ekyc_core::decode::decode_peak_bytes(7000, 7000, 1, 7000 * 7000, false);
    assert!(peak <= limits.max_decode_bytes, "{peak}");
    let d = decode(&onebit, &limits).expect("decoded within budget");
    assert_eq!(d.image.dimensions(), (7000, 7000));
}
