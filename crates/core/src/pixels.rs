//! Pixel operations shared by the stages: half-pixel bilinear resize straight into model tensors,
//! letterboxing, area-averaged grey crops and luma statistics. No intermediate images are allocated.

use ekyc_models::manifest::{ColorOrder, InputSpec, Layout};
use image::RgbImage;
use tract_onnx::prelude::{Tensor, TractResult};

/// An integer pixel rectangle inside an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

/// Sampling table for one axis of a half-pixel bilinear resize (the OpenCV INTER_LINEAR geometry,
/// in floating point): for output index i, src = (i + 0.5) * in / out - 0.5, clamped at 0.
struct Axis {
    i0: Vec<usize>,
    i1: Vec<usize>,
    f: Vec<f32>,
}

fn axis(origin: u32, in_len: u32, out_len: u32) -> Axis {
    let n = out_len as usize;
    let mut a = Axis {
        i0: Vec::with_capacity(n),
        i1: Vec::with_capacity(n),
        f: Vec::with_capacity(n),
    };
    let last = in_len.saturating_sub(1) as f64;
    let ratio = f64::from(in_len) / f64::from(out_len.max(1));
    for i in 0..n {
        let s = ((i as f64 + 0.5) * ratio - 0.5).max(0.0);
        let (i0, i1, f) = if s >= last {
            (last, last, 0.0)
        } else {
            let i0 = s.floor();
            (i0, i0 + 1.0, s - i0)
        };
        a.i0.push(origin as usize + i0 as usize);
        a.i1.push(origin as usize + i1 as usize);
        a.f.push(f as f32);
    }
    a
}

/// Resize `region` of `img` to `out_w` x `out_h` (bilinear) and hand each output pixel to `put`.
pub fn resize_bilinear(
    img: &RgbImage,
    region: Rect,
    out_w: u32,
    out_h: u32,
    mut put: impl FnMut(usize, usize, [f32; 3]),
) {
    let xs = axis(region.x, region.w, out_w);
    let ys = axis(region.y, region.h, out_h);
    let stride = img.width() as usize * 3;
    let raw = img.as_raw();
    let px = |row: usize, col: usize| -> [f32; 3] {
        let o = row * stride + col * 3;
        match raw.get(o..o + 3) {
            Some(p) => [f32::from(p[0]), f32::from(p[1]), f32::from(p[2])],
            None => [0.0; 3],
        }
    };
    for (oy, ((&y0, &y1), &fy)) in ys.i0.iter().zip(&ys.i1).zip(&ys.f).enumerate() {
        for (ox, ((&x0, &x1), &fx)) in xs.i0.iter().zip(&xs.i1).zip(&xs.f).enumerate() {
            let (a, b, c, d) = (px(y0, x0), px(y0, x1), px(y1, x0), px(y1, x1));
            let mut out = [0f32; 3];
            for k in 0..3 {
                let top = a[k] + (b[k] - a[k]) * fx;
                let bot = c[k] + (d[k] - c[k]) * fx;
                out[k] = top + (bot - top) * fy;
            }
            put(ox, oy, out);
        }
    }
}

/// Where a letterboxed image sits inside the square model input.
#[derive(Debug, Clone, Copy)]
pub struct Letterbox {
    pub off_x: u32,
    pub off_y: u32,
    pub new_w: u32,
    pub new_h: u32,
    /// Input pixels → original pixels.
    pub scale_x: f32,
    pub scale_y: f32,
}

impl Letterbox {
    pub fn new(w: u32, h: u32, side_w: u32, side_h: u32) -> Letterbox {
        let s = f64::from(w.max(h));
        let side = f64::from(side_w.min(side_h));
        let new_w = ((f64::from(w) * side / s + 0.5).floor() as u32).clamp(1, side_w);
        let new_h = ((f64::from(h) * side / s + 0.5).floor() as u32).clamp(1, side_h);
        Letterbox {
            off_x: (side_w - new_w) / 2,
            off_y: (side_h - new_h) / 2,
            new_w,
            new_h,
            scale_x: w as f32 / new_w as f32,
            scale_y: h as f32 / new_h as f32,
        }
    }

    /// Model-input pixel coordinates → original image coordinates.
    pub fn to_image(&self, x: f32, y: f32) -> (f32, f32) {
        (
            (x - self.off_x as f32) * self.scale_x,
            (y - self.off_y as f32) * self.scale_y,
        )
    }
}

/// A model input tensor filled from a region of an image, per the manifest's input spec.
/// The region is resized to `dst` (w, h) and placed at (dst_x, dst_y); the rest is black padding.
pub fn input_tensor(
    spec: &InputSpec,
    img: &RgbImage,
    region: Rect,
    dst: Rect,
) -> TractResult<Tensor> {
    let (w, h) = (spec.width as usize, spec.height as usize);
    let plane = w * h;
    let order: [usize; 3] = match spec.color {
        ColorOrder::RGB => [0, 1, 2],
        ColorOrder::BGR => [2, 1, 0],
    };
    let inv_std = spec.std.map(|s| 1.0 / s);
    let mut data = vec![0f32; plane * 3];
    // Padding: a black pixel, normalised.
    for c in 0..3 {
        let pad = (0.0 - spec.mean[c]) * inv_std[c];
        if pad != 0.0 {
            for i in 0..plane {
                data[index(spec.layout, plane, w, c, i % w, i / w)] = pad;
            }
        }
    }
    resize_bilinear(img, region, dst.w, dst.h, |x, y, rgb| {
        let (px, py) = (x + dst.x as usize, y + dst.y as usize);
        if px < w && py < h {
            for c in 0..3 {
                let v = rgb[order[c]];
                data[index(spec.layout, plane, w, c, px, py)] = (v - spec.mean[c]) * inv_std[c];
            }
        }
    });
    Tensor::from_shape(&spec.tensor_shape(), &data)
}

#[inline]
fn index(layout: Layout, plane: usize, w: usize, c: usize, x: usize, y: usize) -> usize {
    match layout {
        Layout::NCHW => c * plane + y * w + x,
        Layout::NHWC => (y * w + x) * 3 + c,
    }
}

/// Rec. 601 luma of an RGB pixel.
#[inline]
pub fn luma(p: &[u8]) -> f32 {
    0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2])
}

/// Call `f` with the luma of every pixel of a regular grid over the region that samples at most
/// ~`max_samples` pixels.
fn for_each_sampled_luma(img: &RgbImage, r: Rect, max_samples: u32, mut f: impl FnMut(f32)) {
    if r.w == 0 || r.h == 0 {
        return;
    }
    let total = u64::from(r.w) * u64::from(r.h);
    let step = ((total as f64 / f64::from(max_samples.max(1)))
        .sqrt()
        .floor() as u32)
        .max(1);
    let mut y = r.y;
    while y < r.y + r.h {
        let mut x = r.x;
        while x < r.x + r.w {
            f(luma(&img.get_pixel(x, y).0));
            x += step;
        }
        y += step;
    }
}

/// Mean luma of a region, sampling at most ~`max_samples` pixels on a regular grid.
pub fn mean_luma(img: &RgbImage, r: Rect, max_samples: u32) -> f32 {
    let (mut sum, mut n) = (0f64, 0u64);
    for_each_sampled_luma(img, r, max_samples, |v| {
        sum += f64::from(v);
        n += 1;
    });
    (sum / n.max(1) as f64) as f32
}

/// Histogram of the luma (rounded to 0..=255) of a region, sampling at most ~`max_samples`
/// pixels on the same regular grid as [`mean_luma`].
pub fn luma_histogram(img: &RgbImage, r: Rect, max_samples: u32) -> [u32; 256] {
    let mut hist = [0u32; 256];
    for_each_sampled_luma(img, r, max_samples, |v| {
        hist[v.round().clamp(0.0, 255.0) as usize] += 1;
    });
    hist
}

/// Grey (luma) version of `region` resized to `size` x `size`: area average when shrinking (so fine
/// detail is measured the same way whatever the photo resolution), bilinear when enlarging.
pub fn grey_square(img: &RgbImage, r: Rect, size: u32) -> Vec<f32> {
    let n = size as usize;
    let mut out = vec![0f32; n * n];
    if r.w == 0 || r.h == 0 {
        return out;
    }
    if r.w >= size && r.h >= size {
        for oy in 0..n {
            let y0 = r.y + (oy as u64 * u64::from(r.h) / n as u64) as u32;
            let y1 = (r.y + ((oy as u64 + 1) * u64::from(r.h) / n as u64) as u32).max(y0 + 1);
            for ox in 0..n {
                let x0 = r.x + (ox as u64 * u64::from(r.w) / n as u64) as u32;
                let x1 = (r.x + ((ox as u64 + 1) * u64::from(r.w) / n as u64) as u32).max(x0 + 1);
                let (mut s, mut c) = (0f32, 0u32);
                for y in y0..y1 {
                    for x in x0..x1 {
                        s += luma(&img.get_pixel(x, y).0);
                        c += 1;
                    }
                }
                out[oy * n + ox] = s / c.max(1) as f32;
            }
        }
    } else {
        resize_bilinear(img, r, size, size, |x, y, p| {
            out[y * n + x] = 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
        });
    }
    out
}

/// Variance of the 4-neighbour Laplacian over the interior of a square grey image.
pub fn laplacian_variance(grey: &[f32], size: usize) -> f32 {
    if size < 3 || grey.len() < size * size {
        return 0.0;
    }
    let (mut sum, mut sq, mut n) = (0f64, 0f64, 0f64);
    for y in 1..size - 1 {
        for x in 1..size - 1 {
            let c = grey[y * size + x];
            let l = grey[(y - 1) * size + x]
                + grey[(y + 1) * size + x]
                + grey[y * size + x - 1]
                + grey[y * size + x + 1]
                - 4.0 * c;
            let l = f64::from(l);
            sum += l;
            sq += l * l;
            n += 1.0;
        }
    }
    let mean = sum / n;
    (sq / n - mean * mean) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn axis_follows_the_opencv_half_pixel_geometry() {
        // 4 → 2: src = (i + 0.5) * 2 - 0.5 = 0.5, 2.5.
        let a = axis(0, 4, 2);
        assert_eq!((a.i0.clone(), a.i1.clone()), (vec![0, 2], vec![1, 3]));
        assert!(a.f.iter().all(|f| (f - 0.5).abs() < 1e-6));
        // 2 → 4: src = (i + 0.5) / 2 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (≥ last: edge).
        let a = axis(10, 2, 4);
        assert_eq!(a.i0, vec![10, 10, 10, 11]);
        assert_eq!(a.i1, vec![11, 11, 11, 11]);
        assert!((a.f[1] - 0.25).abs() < 1e-6 && (a.f[2] - 0.75).abs() < 1e-6);
        assert_eq!(a.f[3], 0.0);
    }

    #[test]
    fn letterbox_centres_and_maps_back() {
        let lb = Letterbox::new(640, 480, 128, 128);
        assert_eq!((lb.new_w, lb.new_h, lb.off_x, lb.off_y), (128, 96, 0, 16));
        assert_eq!(lb.to_image(64.0, 64.0), (320.0, 240.0));
        assert_eq!(lb.to_image(0.0, 16.0), (0.0, 0.0));
    }

    #[test]
    fn laplacian_of_flat_and_striped_images() {
        let n = 8;
        assert_eq!(laplacian_variance(&vec![7.0; n * n], n), 0.0);
        // Vertical stripes 0/10: interior Laplacian alternates ±20 → variance 400.
        let stripes: Vec<f32> = (0..n * n)
            .map(|i| if i % 2 == 0 { 0.0 } else { 10.0 })
            .collect();
        assert!((laplacian_variance(&stripes, n) - 400.0).abs() < 1e-3);
        assert_eq!(laplacian_variance(&[1.0; 4], 2), 0.0, "too small");
    }

    #[test]
    fn grey_square_averages_when_shrinking() {
        let img = RgbImage::from_fn(4, 4, |x, _| {
            if x < 2 {
                Rgb([0, 0, 0])
            } else {
                Rgb([200, 200, 200])
            }
        });
        let g = grey_square(
            &img,
            Rect {
                x: 0,
                y: 0,
                w: 4,
                h: 4,
            },
            2,
        );
        assert_eq!(g.len(), 4);
        assert!(g[0].abs() < 1e-3 && (g[1] - 200.0).abs() < 1e-2, "{g:?}");
        assert!(
            (mean_luma(
                &img,
                Rect {
                    x: 0,
                    y: 0,
                    w: 4,
                    h: 4
                },
                16
            ) - 100.0)
                .abs()
                < 1e-2
        );
    }

    #[test]
    fn input_tensor_orders_channels_and_normalises() {
        let spec = InputSpec {
            width: 2,
            height: 2,
            layout: Layout::NCHW,
            color: ColorOrder::BGR,
            mean: [0.0, 10.0, 20.0],
            std: [1.0, 2.0, 4.0],
        };
        let img = RgbImage::from_pixel(4, 4, Rgb([100, 50, 30]));
        let full = Rect {
            x: 0,
            y: 0,
            w: 4,
            h: 4,
        };
        let t = input_tensor(
            &spec,
            &img,
            full,
            Rect {
                x: 0,
                y: 0,
                w: 2,
                h: 2,
            },
        )
        .expect("tensor");
        assert_eq!(t.shape(), &[1, 3, 2, 2]);
        let v: Vec<f32> = t
            .to_plain_array_view::<f32>()
            .expect("f32")
            .iter()
            .copied()
            .collect();
        // Channel 0 = B = 30, channel 1 = (50 - 10) / 2, channel 2 = (100 - 20) / 4.
        assert_eq!(&v[0..4], &[30.0; 4]);
        assert_eq!(&v[4..8], &[20.0; 4]);
        assert_eq!(&v[8..12], &[20.0; 4]);
        // Into a 1x1 destination: the rest is normalised black padding.
        let t = input_tensor(
            &spec,
            &img,
            full,
            Rect {
                x: 1,
                y: 1,
                w: 1,
                h: 1,
            },
        )
        .expect("tensor");
        let v: Vec<f32> = t
            .to_plain_array_view::<f32>()
            .expect("f32")
            .iter()
            .copied()
            .collect();
        assert_eq!(v[4], -5.0, "padding (0 - 10) / 2");
        assert_eq!(v[3], 30.0);
    }
}

/// A square region of the image: `side` pixels wide, centred on (`cx`, `cy`), its x axis at
/// `angle` radians (image coordinates, y down), mirrored left-right when `mirror`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RotatedSquare {
    pub cx: f32,
    pub cy: f32,
    pub side: f32,
    pub angle: f32,
    pub mirror: bool,
}

impl RotatedSquare {
    /// Image coordinates of the point (`gx`, `gy`) of an `n` × `n` grid laid over the square
    /// (grid pixel units: the grid pixel (i, j) spans [i, i+1) × [j, j+1)).
    pub fn to_image(&self, gx: f32, gy: f32, n: f32) -> (f32, f32) {
        let gx = if self.mirror { n - gx } else { gx };
        let u = (gx / n - 0.5) * self.side;
        let v = (gy / n - 0.5) * self.side;
        let (s, c) = self.angle.sin_cos();
        (self.cx + c * u - s * v, self.cy + s * u + c * v)
    }
}

/// A model input tensor sampled (bilinear, at pixel centres) from a rotated square of the image,
/// per the manifest's input spec (which must be square); outside the image is black.
pub fn rotated_tensor(spec: &InputSpec, img: &RgbImage, sq: &RotatedSquare) -> TractResult<Tensor> {
    let (w, h) = (spec.width as usize, spec.height as usize);
    let n = spec.width as f32;
    let plane = w * h;
    let order: [usize; 3] = match spec.color {
        ColorOrder::RGB => [0, 1, 2],
        ColorOrder::BGR => [2, 1, 0],
    };
    let inv_std = spec.std.map(|s| 1.0 / s);
    let (iw, ih) = (img.width() as i64, img.height() as i64);
    let raw = img.as_raw();
    let px = |x: i64, y: i64| -> [f32; 3] {
        if x < 0 || y < 0 || x >= iw || y >= ih {
            return [0.0; 3];
        }
        let o = (y as usize * iw as usize + x as usize) * 3;
        match raw.get(o..o + 3) {
            Some(p) => [f32::from(p[0]), f32::from(p[1]), f32::from(p[2])],
            None => [0.0; 3],
        }
    };
    let mut data = vec![0f32; plane * 3];
    for gy in 0..h {
        for gx in 0..w {
            let (x, y) = sq.to_image(gx as f32 + 0.5, gy as f32 + 0.5, n);
            let (x, y) = (x - 0.5, y - 0.5);
            let (x0, y0) = (x.floor(), y.floor());
            let (fx, fy) = (x - x0, y - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            let (a, b, c, d) = (
                px(x0, y0),
                px(x0 + 1, y0),
                px(x0, y0 + 1),
                px(x0 + 1, y0 + 1),
            );
            for k in 0..3 {
                let top = a[order[k]] + (b[order[k]] - a[order[k]]) * fx;
                let bot = c[order[k]] + (d[order[k]] - c[order[k]]) * fx;
                let v = top + (bot - top) * fy;
                data[index(spec.layout, plane, w, k, gx, gy)] = (v - spec.mean[k]) * inv_std[k];
            }
        }
    }
    Tensor::from_shape(&spec.tensor_shape(), &data)
}
