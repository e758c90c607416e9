//! Decoding with limits: image bytes → upright RGB pixels, or a typed [`DecodeError`].
//!
//! Limits (bytes, width, height, pixels) are checked on the header before any pixel buffer is
//! allocated, so a decompression bomb or a header claiming 100000x100000 costs nothing. EXIF
//! orientation is applied. Large JPEGs are decoded at a reduced DCT scale.
//!
//! A truncated image is [`DecodeError::Truncated`] whatever bytes follow the cut, never a verdict
//! on a partially decoded picture:
//! - JPEG: [`jpeg_scan`] walks the entropy-coded data of every scan and counts its blocks (both
//!   decoders would fill a scan that runs into an appended end-of-image marker with zero bits);
//!   scans missing at the end (progressive refinement, a component never coded) count too.
//! - PNG: the png decoder fails when the zlib stream of the IDAT chunks ends before the last row;
//!   whether that is the data ending is asked of the decoder itself, on the image data alone
//!   (see [`png_ends_early`]).
//! - WebP: the RIFF chunks must all be there ([`webp_layout`]); the lossy (VP8) decoder's
//!   "corrupt bitstream" is its boolean decoder reading past the end of a partition.

mod jpeg_scan;
mod png_scaled;

use crate::config::Limits;
use crate::error::DecodeError;
use ekyc_models::BoxError;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};
use serde::Serialize;
use std::io::Cursor;

/// An upright RGB image plus what we learnt while decoding it.
#[derive(Debug)]
pub struct Decoded {
    pub image: RgbImage,
    pub info: ImageInfo,
}

/// Facts about the decoded image, reported in the verdict.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImageInfo {
    /// "jpeg", "png" or "webp".
    pub format: &'static str,
    /// Upright width and height of the original image, in pixels.
    pub width: u32,
    pub height: u32,
    /// EXIF orientation tag that was applied (1 = none).
    pub exif_orientation: u8,
    /// 1 for a full decode, 2/4/8 when a large JPEG was decoded at reduced DCT scale.
    pub decode_scale: u32,
}

impl Decoded {
    /// Factor from decoded-pixel coordinates to original-image coordinates.
    pub fn scale_to_original(&self) -> f32 {
        self.info.width as f32 / self.image.width().max(1) as f32
    }
}

/// Decode `bytes` within `limits`.
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Decoded, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    if bytes.len() > limits.max_image_bytes {
        return Err(DecodeError::TooManyBytes {
            size: bytes.len(),
            limit: limits.max_image_bytes,
        });
    }
    let format = image::guess_format(bytes).map_err(|_| DecodeError::NotAnImage)?;
    let format_name = match format {
        ImageFormat::Jpeg => "jpeg",
        ImageFormat::Png => "png",
        ImageFormat::WebP => "webp",
        other => {
            return Err(DecodeError::UnsupportedFormat(
                other
                    .extensions_str()
                    .first()
                    .copied()
                    .unwrap_or("unknown")
                    .to_uppercase(),
            ))
        }
    };

    let webp = if format == ImageFormat::WebP {
        Some(webp_layout(bytes)?)
    } else {
        None
    };
    if format == ImageFormat::Jpeg {
        // The decoders fill a scan that ends early with zero bits instead of failing: count the
        // blocks of every scan here. The bookkeeping of a progressive walk is at most 1/8 of
        // the budget (it is 1/64 of the decoded pixels' size at most).
        match jpeg_scan::walk(
            bytes,
            limits.max_image_side,
            limits.max_image_pixels,
            limits.max_decode_bytes / 8,
        ) {
            jpeg_scan::Scan::Complete => {}
            jpeg_scan::Scan::Truncated(what) => return Err(DecodeError::truncated(what)),
            jpeg_scan::Scan::Corrupt(what) => return Err(DecodeError::corrupt(what)),
            jpeg_scan::Scan::NotChecked => {
                if !jpeg_has_eoi(bytes) {
                    return Err(DecodeError::truncated(
                        "JPEG has no end-of-image marker after its last scan",
                    ));
                }
            }
        }
    }
    let fail = |e: image::ImageError| {
        let err = map_image_error(e, limits, format_name);
        match (&err, format, webp) {
            (DecodeError::Corrupt { .. }, ImageFormat::Png, _) if png_ends_early(bytes) => {
                into_truncated(err, "the PNG image data ends before its last row")
            }
            (DecodeError::Corrupt { source, .. }, ImageFormat::WebP, Some(layout))
                if layout.lossy_only && source.as_deref().is_some_and(|e| vp8_ran_out(e)) =>
            {
                into_truncated(err, "the WebP (VP8) data ends before its last macroblock")
            }
            _ => err,
        }
    };

    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(image_limits(limits));
    let mut decoder = reader.into_decoder().map_err(&fail)?;
    let (w, h) = decoder.dimensions();
    check_dimensions(w, h, limits)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);

    let denom = jpeg_scale_denominator(w.max(h), limits.decode_max_side);
    let scaled = format == ImageFormat::Jpeg && denom > 1;
    // A large non-interlaced PNG is averaged row by row: its full size is never held.
    let png_factor = match format {
        ImageFormat::Png => png_scaled::factor(w, h, limits.decode_max_side),
        _ => 1,
    };
    let png_rows = png_factor > 1 && png_scaled::is_sequential(bytes) == Some(true);
    let needed = if png_rows {
        let (ow, oh) = (
            u64::from(w.div_ceil(png_factor)),
            u64::from(h.div_ceil(png_factor)),
        );
        let reoriented = if orientation != Orientation::NoTransforms {
            ow * oh * 3
        } else {
            0
        };
        png_scaled::peak_bytes(w, h, png_factor) + reoriented
    } else {
        decode_peak_bytes(
            w,
            h,
            if scaled { denom } else { 1 },
            decoder.total_bytes(),
            orientation != Orientation::NoTransforms,
        )
    };
    if needed > limits.max_decode_bytes {
        return Err(DecodeError::TooLarge {
            width: w,
            height: h,
            limit: format!(
                "decoding needs {} MiB at {} bytes per pixel, over the budget of {} MiB",
                needed.div_ceil(1 << 20),
                decoder.total_bytes() / (u64::from(w) * u64::from(h)).max(1),
                limits.max_decode_bytes >> 20
            ),
        });
    }
    let (rgb, decode_scale) = if scaled {
        drop(decoder);
        decode_jpeg_scaled(bytes, w, h, denom)?
    } else if png_rows {
        drop(decoder);
        let img = png_scaled::decode(bytes, png_factor).map_err(|e| {
            let err = classify("PNG", e);
            match err {
                DecodeError::Corrupt { .. } if png_ends_early(bytes) => {
                    into_truncated(err, "the PNG image data ends before its last row")
                }
                other => other,
            }
        })?;
        (img, png_factor)
    } else {
        let dynimg = DynamicImage::from_decoder(decoder).map_err(&fail)?;
        (dynimg.into_rgb8(), 1)
    };
    let image = apply_orientation(rgb, orientation);
    let (uw, uh) = if orientation_swaps_axes(orientation) {
        (h, w)
    } else {
        (w, h)
    };
    Ok(Decoded {
        image,
        info: ImageInfo {
            format: format_name,
            width: uw,
            height: uh,
            exif_orientation: orientation_tag(orientation),
            decode_scale,
        },
    })
}

/// The `image` crate's limits for a decode within `limits`. Width/height are checked by
/// `check_dimensions` (with a clear error); the allocation cap is a second line of defence inside
/// the decoders: no single decoder allocation may exceed the request's decode budget.
fn image_limits(limits: &Limits) -> image::Limits {
    let mut img_limits = image::Limits::default();
    img_limits.max_alloc = Some(limits.max_decode_bytes);
    img_limits
}

/// `err` (corrupt, with the decoder's error as its source) as truncation.
fn into_truncated(err: DecodeError, what: &str) -> DecodeError {
    match err {
        DecodeError::Corrupt { source, .. } => DecodeError::Truncated {
            what: what.to_string(),
            source,
        },
        other => other,
    }
}

/// Whether a PNG that failed to decode failed because its image data ends early: a chunk runs
/// past the end of the data, the chunks end (at IEND or the end of the data) before any IDAT, or
/// the png decoder, given the file cut right after its IDAT chunks, runs out of input (its zlib
/// stream wants more) before the last row. A zlib stream that is malformed fails the same way
/// whatever follows it, and stays corrupt. The png decoder reports a zlib stream that ends before
/// the last row ("Corrupt deflate stream. InsufficientInput", or "IDAT or fDAT chunk does not have
/// enough data") as a format error like any other, hence this second look. It reads the rows one
/// at a time (one row of memory, whatever the image's size).
fn png_ends_early(bytes: &[u8]) -> bool {
    let be = |p: usize| {
        bytes
            .get(p..p + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let mut pos = 8;
    let mut idat_end = None;
    while let (Some(len), Some(tag)) = (be(pos), bytes.get(pos + 4..pos + 8)) {
        let end = pos.saturating_add(12).saturating_add(len as usize);
        if end > bytes.len() {
            // A chunk cut by the end of the data (the decoder may have failed on the bytes that
            // follow the cut first, an appended IEND read as image data, say).
            return true;
        }
        if tag == b"IDAT" {
            idat_end = Some(end);
        } else if idat_end.is_some() || tag == b"IEND" {
            break;
        }
        pos = end;
    }
    let Some(end) = idat_end else {
        return true;
    };
    let Ok(mut reader) = png::Decoder::new(Cursor::new(&bytes[..end])).read_info() else {
        return false;
    };
    loop {
        match reader.next_row() {
            Ok(Some(_)) => {}
            Ok(None) => return false,
            Err(png::DecodingError::IoError(e)) => {
                return e.kind() == std::io::ErrorKind::UnexpectedEof
            }
            Err(_) => return false,
        }
    }
}

/// What [`webp_layout`] learnt from a WebP file's chunks.
#[derive(Debug, Clone, Copy)]
struct WebpLayout {
    /// A still lossy (VP8) image without an alpha chunk.
    lossy_only: bool,
}

/// The RIFF chunks of a WebP file: truncated when the RIFF header or a chunk announces more bytes
/// than there are, when no image chunk (VP8, VP8L or an animation frame) is there, or when the
/// extended header announces an EXIF chunk (which carries the orientation) that is missing.
fn webp_layout(bytes: &[u8]) -> Result<WebpLayout, DecodeError> {
    let le = |p: usize| {
        bytes
            .get(p..p + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let riff_size = le(4).ok_or_else(|| DecodeError::truncated("the WebP header is cut"))?;
    let riff_end = riff_size.saturating_add(8);
    // One byte short is a missing pad byte after an odd-sized last chunk.
    if riff_end > bytes.len().saturating_add(1) {
        return Err(DecodeError::truncated(
            "the WebP data is shorter than its RIFF header says",
        ));
    }
    let end = riff_end.min(bytes.len());
    let (mut image, mut alpha, mut frames, mut exif, mut flags) = (None, false, false, false, 0);
    let mut pos = 12;
    while pos < end {
        let (Some(tag), Some(size)) = (bytes.get(pos..pos + 4), le(pos + 4)) else {
            return Err(DecodeError::truncated("a WebP chunk header is cut"));
        };
        let data_end = pos.saturating_add(8).saturating_add(size);
        if data_end > end {
            return Err(DecodeError::truncated(
                "a WebP chunk runs past the end of the data",
            ));
        }
        match tag {
            b"VP8X" => flags = bytes.get(pos + 8).copied().unwrap_or(0),
            b"VP8 " | b"VP8L" => {
                image.get_or_insert(tag);
            }
            b"ALPH" => alpha = true,
            b"ANMF" => frames = true,
            b"EXIF" => exif = true,
            _ => {}
        }
        pos = data_end + (size & 1);
    }
    if image.is_none() && !frames {
        return Err(DecodeError::truncated(
            "the WebP data ends before its image chunk",
        ));
    }
    if flags & 0x08 != 0 && !exif {
        return Err(DecodeError::truncated(
            "the WebP data ends before its EXIF chunk",
        ));
    }
    Ok(WebpLayout {
        lossy_only: image == Some(b"VP8 ".as_slice()) && !alpha && !frames,
    })
}

/// True when the WebP decoder's error (anywhere in the chain) is the lossy decoder running out of
/// data: in image-webp 0.2 the VP8 boolean decoder's only failure, "corrupt bitstream", is reading
/// past the end of its partition, and "not enough init data" a partition shorter than 2 bytes.
/// (The lossless decoder uses "corrupt bitstream" for malformed data too, so it stays corrupt.)
fn vp8_ran_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(w) = err.downcast_ref::<image_webp::DecodingError>() {
            return matches!(
                w,
                image_webp::DecodingError::BitStreamError
                    | image_webp::DecodingError::NotEnoughInitData
            );
        }
        cur = err.source();
    }
    false
}

/// Upper bound of the bytes one decode holds at its peak, from the header: the decoder's own buffer
/// at its native depth (`native` = width × height × bytes per pixel, 16-bit and alpha included) —
/// for a DCT-scaled JPEG at most 4 bytes per scaled pixel — plus the 8-bit RGB copy, plus one
/// more RGB copy when the EXIF orientation is applied.
pub fn decode_peak_bytes(w: u32, h: u32, denom: u32, native: u64, reoriented: bool) -> u64 {
    let d = u64::from(denom.max(1));
    let (sw, sh) = (u64::from(w).div_ceil(d), u64::from(h).div_ceil(d));
    let decoder = if d > 1 { sw * sh * 4 } else { native };
    let rgb = sw * sh * 3;
    decoder + rgb + if reoriented { rgb } else { 0 }
}

/// True when an EOI marker (FF D9) follows the last start-of-scan marker (FF DA). Entropy-coded data
/// byte-stuffs 0xFF, so neither marker can occur inside scan data.
fn jpeg_has_eoi(bytes: &[u8]) -> bool {
    let last_sos = bytes.windows(2).rposition(|w| w == [0xff, 0xda]);
    match last_sos {
        Some(i) => bytes[i..].windows(2).any(|w| w == [0xff, 0xd9]),
        None => false,
    }
}

fn check_dimensions(w: u32, h: u32, limits: &Limits) -> Result<(), DecodeError> {
    if w == 0 || h == 0 {
        return Err(DecodeError::corrupt(format!("image has zero size {w}x{h}")));
    }
    if w > limits.max_image_side || h > limits.max_image_side {
        return Err(DecodeError::TooLarge {
            width: w,
            height: h,
            limit: format!("max side {} px", limits.max_image_side),
        });
    }
    if u64::from(w) * u64::from(h) > limits.max_image_pixels {
        return Err(DecodeError::TooLarge {
            width: w,
            height: h,
            limit: format!("max {} pixels", limits.max_image_pixels),
        });
    }
    Ok(())
}

/// The largest DCT scale denominator (1, 2, 4, 8) that keeps the long side at least `min_long_side`.
fn jpeg_scale_denominator(long: u32, min_long_side: u32) -> u32 {
    let mut denom = 1u32;
    while denom < 8 && long / (denom * 2) >= min_long_side.max(1) {
        denom *= 2;
    }
    denom
}

/// Decode a large JPEG at DCT scale 1/`denom`.
fn decode_jpeg_scaled(
    bytes: &[u8],
    w: u32,
    h: u32,
    denom: u32,
) -> Result<(RgbImage, u32), DecodeError> {
    let mut dec = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    dec.read_info().map_err(map_jpeg_error)?;
    let req_w = u16::try_from(w.div_ceil(denom)).unwrap_or(u16::MAX);
    let req_h = u16::try_from(h.div_ceil(denom)).unwrap_or(u16::MAX);
    let (sw, sh) = dec.scale(req_w, req_h).map_err(map_jpeg_error)?;
    let pixels = dec.decode().map_err(map_jpeg_error)?;
    let info = dec
        .info()
        .ok_or_else(|| DecodeError::corrupt("JPEG header missing after decode"))?;
    let (sw, sh) = (u32::from(sw), u32::from(sh));
    let n = (sw as usize) * (sh as usize);
    let rgb: Vec<u8> = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => pixels,
        jpeg_decoder::PixelFormat::L8 => pixels.iter().flat_map(|&v| [v, v, v]).collect(),
        jpeg_decoder::PixelFormat::L16 => pixels
            .chunks_exact(2)
            .flat_map(|c| [c[0], c[0], c[0]])
            .collect(),
        jpeg_decoder::PixelFormat::CMYK32 => pixels
            .chunks_exact(4)
            .flat_map(|c| {
                let k = u16::from(c[3]);
                [c[0], c[1], c[2]].map(|v| ((u16::from(v) * k) / 255) as u8)
            })
            .collect(),
    };
    if rgb.len() < n * 3 {
        return Err(DecodeError::truncated("JPEG data ends early"));
    }
    let img = RgbImage::from_raw(sw, sh, rgb)
        .ok_or_else(|| DecodeError::corrupt("JPEG buffer size mismatch"))?;
    // The scale the decoder chose: the one whose rounded-up width it returned (`w / sw` would say
    // 7 for a 6721-pixel-wide image decoded at 1/8 to 841 pixels).
    let actual = [1, 2, 4, 8]
        .into_iter()
        .find(|&d| w.div_ceil(d) == sw)
        .unwrap_or_else(|| (w / sw.max(1)).max(1));
    Ok((img, actual))
}

fn map_jpeg_error(e: jpeg_decoder::Error) -> DecodeError {
    match e {
        jpeg_decoder::Error::Unsupported(u) => {
            let _ = u;
            DecodeError::UnsupportedFormat("JPEG variant".into())
        }
        other => classify("JPEG", Box::new(other)),
    }
}

/// A decoder failure by its type: running out of data (an `io::ErrorKind::UnexpectedEof` anywhere
/// in the error's source chain) is truncation, anything else corruption. The decoder's error is
/// kept as the source, never shown to a client.
fn classify(format: &str, e: BoxError) -> DecodeError {
    if ends_early(e.as_ref()) {
        DecodeError::Truncated {
            what: format!("the {format} data ends early"),
            source: Some(e),
        }
    } else {
        DecodeError::Corrupt {
            what: format!("the {format} data is malformed"),
            source: Some(e),
        }
    }
}

/// True when `e` or one of its sources is an I/O "unexpected end of file".
fn ends_early(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::UnexpectedEof {
                return true;
            }
        }
        if let Some(image::ImageError::IoError(io)) = err.downcast_ref::<image::ImageError>() {
            if io.kind() == std::io::ErrorKind::UnexpectedEof {
                return true;
            }
        }
        if let Some(jpeg_decoder::Error::Io(io)) = err.downcast_ref::<jpeg_decoder::Error>() {
            if io.kind() == std::io::ErrorKind::UnexpectedEof {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

fn map_image_error(e: image::ImageError, limits: &Limits, format: &str) -> DecodeError {
    use image::ImageError as E;
    match e {
        E::Limits(l) => DecodeError::TooLarge {
            width: 0,
            height: 0,
            limit: format!("{l} (max side {} px)", limits.max_image_side),
        },
        E::Unsupported(_) => {
            DecodeError::UnsupportedFormat(format!("{} variant", format.to_uppercase()))
        }
        other => classify(format, Box::new(other)),
    }
}

fn orientation_swaps_axes(o: Orientation) -> bool {
    matches!(
        o,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

fn orientation_tag(o: Orientation) -> u8 {
    o.to_exif()
}

fn apply_orientation(img: RgbImage, o: Orientation) -> RgbImage {
    if o == Orientation::NoTransforms {
        return img;
    }
    let mut d = DynamicImage::ImageRgb8(img);
    d.apply_orientation(o);
    d.into_rgb8()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dct_scale_keeps_the_long_side_at_least_the_minimum() {
        assert_eq!(jpeg_scale_denominator(4000, 800), 4);
        assert_eq!(jpeg_scale_denominator(1600, 800), 2);
        assert_eq!(jpeg_scale_denominator(1599, 800), 1);
        assert_eq!(jpeg_scale_denominator(100_000, 800), 8, "at most 1/8");
        assert_eq!(jpeg_scale_denominator(640, 0), 8, "0 is treated as 1");
    }

    #[test]
    fn end_marker_must_follow_the_last_scan() {
        assert!(jpeg_has_eoi(&[0xff, 0xd8, 0xff, 0xda, 1, 2, 0xff, 0xd9]));
        assert!(!jpeg_has_eoi(&[0xff, 0xd8, 0xff, 0xda, 1, 2, 3]));
        assert!(
            !jpeg_has_eoi(&[0xff, 0xd8, 0xff, 0xd9, 0xff, 0xda, 1]),
            "EOI before the scan"
        );
        assert!(!jpeg_has_eoi(&[0xff, 0xd8]), "no scan");
    }

    #[test]
    fn decode_peak_counts_depth_alpha_and_copies() {
        // 7071x7071 RGBA16 PNG: 8 bytes per pixel native + the RGB copy.
        let n = 7071u64 * 7071;
        assert_eq!(decode_peak_bytes(7071, 7071, 1, n * 8, false), n * 11);
        // A 4000x3000 JPEG decoded at 1/4: 1000x750 scaled pixels, at most 4 + 3 (+ 3) bytes each.
        assert_eq!(
            decode_peak_bytes(4000, 3000, 4, 12_000_000 * 3, true),
            750_000 * 10
        );
    }

    #[test]
    fn limits_are_checked_before_decoding() {
        let limits = Limits::default();
        assert!(matches!(decode(b"", &limits), Err(DecodeError::Empty)));
        assert!(matches!(
            decode(b"not an image", &limits),
            Err(DecodeError::NotAnImage)
        ));
        assert!(check_dimensions(10_001, 10, &limits).is_err());
        assert!(
            check_dimensions(8_000, 8_000, &limits).is_err(),
            "64 MP > 50 MP"
        );
        assert!(matches!(
            check_dimensions(0, 5, &limits),
            Err(DecodeError::Corrupt { .. })
        ));
        assert!(check_dimensions(4000, 3000, &limits).is_ok());
    }
}
