//! Large PNGs decoded row by row into a box-filtered, down-scaled 8-bit RGB image: the full-size
//! image is never held, so a small file that expands to tens of megapixels (a 1-bit or one-colour
//! "bomb") costs one row plus the small output. 16-bit samples are reduced to 8 bits and alpha is
//! dropped as each row arrives (the same pixels `image`'s `into_rgb8` gives, averaged).

use ekyc_models::BoxError;
use image::RgbImage;
use std::io::Cursor;

/// Peak bytes of [`decode`] for a `w`×`h` image at `factor`: one decoded row (at most 4 bytes
/// per pixel after the 8-bit reduction), the row accumulator and the output.
pub(crate) fn peak_bytes(w: u32, h: u32, factor: u32) -> u64 {
    let k = u64::from(factor.max(1));
    let (ow, oh) = (u64::from(w).div_ceil(k), u64::from(h).div_ceil(k));
    u64::from(w) * 4 + ow * 3 * 4 + ow * oh * 3
}

/// The box factor that keeps the long side at least `min_long_side` (1 = no scaling).
pub(crate) fn factor(w: u32, h: u32, min_long_side: u32) -> u32 {
    (w.max(h) / min_long_side.max(1)).max(1)
}

/// True when the PNG is stored without interlacing (rows arrive in order, so they can be
/// averaged as they come). `None` when the header cannot be read.
pub(crate) fn is_sequential(bytes: &[u8]) -> Option<bool> {
    let reader = png::Decoder::new(Cursor::new(bytes)).read_info().ok()?;
    Some(!reader.info().interlaced)
}

/// Decode a non-interlaced PNG averaged over `factor`×`factor` boxes (edge boxes are smaller).
pub(crate) fn decode(bytes: &[u8], factor: u32) -> Result<RgbImage, BoxError> {
    let mut dec = png::Decoder::new(Cursor::new(bytes));
    dec.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = dec.read_info()?;
    let (w, h) = (reader.info().width, reader.info().height);
    if reader.info().interlaced {
        return Err("interlaced PNGs are not decoded row by row".into());
    }
    let channels: usize = match reader.output_color_type().0 {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => return Err("palette not expanded".into()),
    };
    let k = factor.max(1) as usize;
    let (wu, hu) = (w as usize, h as usize);
    let (ow, oh) = (wu.div_ceil(k), hu.div_ceil(k));
    let mut out = vec![0u8; ow * oh * 3];
    let mut acc = vec![0u32; ow * 3];
    let (mut y, mut band_rows, mut oy) = (0usize, 0u32, 0usize);
    while y < hu {
        let Some(row) = reader.next_row()? else {
            break;
        };
        let data = row.data();
        if data.len() < wu * channels {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
        for (x, p) in data.chunks_exact(channels).take(wu).enumerate() {
            let (r, g, b) = if channels < 3 {
                (p[0], p[0], p[0])
            } else {
                (p[0], p[1], p[2])
            };
            let o = (x / k) * 3;
            acc[o] += u32::from(r);
            acc[o + 1] += u32::from(g);
            acc[o + 2] += u32::from(b);
        }
        y += 1;
        band_rows += 1;
        if band_rows as usize == k || y == hu {
            let line = &mut out[oy * ow * 3..(oy + 1) * ow * 3];
            for ox in 0..ow {
                let cols = (wu - ox * k).min(k) as u32;
                let n = cols * band_rows;
                for c in 0..3 {
                    let i = ox * 3 + c;
                    line[i] = ((acc[i] + n / 2) / n) as u8;
                }
            }
            acc.fill(0);
            band_rows = 0;
            oy += 1;
        }
    }
    if y < hu {
        // The image data ended (and the decoder accepted it) before the last row.
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("PNG image data ends after {y} of {hu} rows"),
        )
        .into());
    }
    reader.finish()?;
    RgbImage::from_raw(ow as u32, oh as u32, out).ok_or_else(|| "output size mismatch".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(img: &image::DynamicImage) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png)
            .expect("encode png");
        out.into_inner()
    }

    #[test]
    fn box_average_matches_a_reference_computation() {
        // 10x7 gradient, factor 3: boxes of 3x3 except the last column (1 px) and row (1 px).
        let img = image::RgbImage::from_fn(10, 7, |x, y| {
            image::Rgb([(x * 20) as u8, (y * 30) as u8, 77])
        });
        let png = encode(&image::DynamicImage::ImageRgb8(img.clone()));
        let out = decode(&png, 3).expect("decode");
        assert_eq!(out.dimensions(), (4, 3));
        for oy in 0..3u32 {
            for ox in 0..4u32 {
                let (mut s, mut n) = ([0u32; 3], 0u32);
                for y in oy * 3..(oy * 3 + 3).min(7) {
                    for x in ox * 3..(ox * 3 + 3).min(10) {
                        let p = img.get_pixel(x, y).0;
                        for c in 0..3 {
                            s[c] += u32::from(p[c]);
                        }
                        n += 1;
                    }
                }
                let want = s.map(|v| ((v + n / 2) / n) as u8);
                assert_eq!(out.get_pixel(ox, oy).0, want, "box {ox},{oy}");
            }
        }
    }

    #[test]
    fn sixteen_bit_alpha_and_grey_reduce_like_into_rgb8() {
        let rgba16 = image::ImageBuffer::<image::Rgba<u16>, _>::from_fn(6, 4, |x, y| {
            image::Rgba([(x * 9000) as u16, (y * 12000) as u16, 40000, 1234])
        });
        let dynimg = image::DynamicImage::ImageRgba16(rgba16);
        let want = dynimg.to_rgb8();
        let got = decode(&encode(&dynimg), 1).expect("decode");
        // STRIP_16 keeps the high byte; into_rgb8 rounds: at most one level apart.
        for (a, b) in got.pixels().zip(want.pixels()) {
            for c in 0..3 {
                assert!(a.0[c].abs_diff(b.0[c]) <= 1, "{a:?} vs {b:?}");
            }
        }
        let grey = image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(5, 5, |x, _| {
            image::Luma([(x * 50) as u8])
        }));
        assert_eq!(decode(&encode(&grey), 1).expect("decode"), grey.to_rgb8());
    }

    #[test]
    fn a_cut_image_is_an_error_not_a_short_picture() {
        let img = image::RgbImage::from_fn(64, 64, |x, y| {
            image::Rgb([(x * 4) as u8, (y * 4) as u8, ((x ^ y) * 4) as u8])
        });
        let png = encode(&image::DynamicImage::ImageRgb8(img));
        for cut in [png.len() / 3, png.len() / 2, png.len() - 20] {
            assert!(decode(&png[..cut], 2).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn factor_and_peak() {
        assert_eq!(factor(7000, 7000, 800), 8);
        assert_eq!(factor(1000, 600, 800), 1);
        assert!(peak_bytes(7000, 7000, 8) < 4 << 20);
    }
}
