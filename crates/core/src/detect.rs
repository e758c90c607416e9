//! Face detection with BlazeFace-style SSD detectors (MediaPipe short and full range).
//!
//! Letterbox to the model's square input, run, decode anchors (box + 6 keypoints), sigmoid scores,
//! weighted non-maximum suppression, then map back to original image coordinates.

use crate::error::ModelError;
use crate::pixels::{input_tensor, Letterbox, Rect};
use ekyc_models::manifest::{AnchorLayer, DetectorSpec, InputSpec};
use ekyc_models::plan::{output_f32, Plan};
use image::RgbImage;
use serde::Serialize;

/// A point in original-image pixel coordinates.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

/// An axis-aligned box in original-image pixel coordinates.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BBox {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

impl BBox {
    pub fn area(&self) -> f32 {
        self.width.max(0.0) * self.height.max(0.0)
    }
    pub fn center(&self) -> Point {
        Point {
            x: self.x + self.width / 2.0,
            y: self.y + self.height / 2.0,
        }
    }
    pub fn scaled(&self, s: f32) -> BBox {
        BBox {
            x: self.x * s,
            y: self.y * s,
            width: self.width * s,
            height: self.height * s,
        }
    }
}

/// One detected face.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Face {
    #[serde(rename = "box")]
    pub bbox: BBox,
    pub score: f32,
    /// right eye, left eye, nose tip, mouth centre, right ear tragion, left ear tragion.
    pub keypoints: [Point; 6],
}

impl Face {
    pub fn scaled(&self, s: f32) -> Face {
        let mut f = self.clone();
        f.bbox = f.bbox.scaled(s);
        for k in &mut f.keypoints {
            k.x *= s;
            k.y *= s;
        }
        f
    }
    pub fn eye_distance(&self) -> f32 {
        let (r, l) = (self.keypoints[0], self.keypoints[1]);
        ((l.x - r.x).powi(2) + (l.y - r.y).powi(2)).sqrt()
    }
}

/// A loaded detector: plan + anchors + decoding parameters from the manifest.
pub struct Detector {
    pub name: String,
    plan: Plan,
    input: InputSpec,
    spec: DetectorSpec,
    anchors: Vec<[f32; 2]>,
    regressors_output: usize,
    scores_output: usize,
}

/// SSD anchor centres for a square input: per layer group, row-major cells, `per_cell` anchors each.
pub fn anchors(input_size: u32, layers: &[AnchorLayer]) -> Vec<[f32; 2]> {
    let mut out = Vec::new();
    for l in layers {
        let grid = input_size.div_ceil(l.stride);
        for y in 0..grid {
            for x in 0..grid {
                for _ in 0..l.per_cell {
                    out.push([
                        (x as f32 + 0.5) / grid as f32,
                        (y as f32 + 0.5) / grid as f32,
                    ]);
                }
            }
        }
    }
    out
}

struct Candidate {
    score: f32,
    // xmin, ymin, xmax, ymax, then 6 keypoints (x, y), all normalised to the model input.
    v: [f32; 16],
}

fn iou(a: &[f32; 16], b: &[f32; 16]) -> f32 {
    let ix = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let iy = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = ix * iy;
    let ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    if ua <= 0.0 {
        0.0
    } else {
        inter / ua
    }
}

/// MediaPipe-style weighted NMS: each kept detection is the score-weighted mean of its overlapping group.
fn weighted_nms(mut c: Vec<Candidate>, iou_thr: f32) -> Vec<Candidate> {
    c.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut out = Vec::new();
    while !c.is_empty() {
        let first = c[0].v;
        let top_score = c[0].score;
        let (group, rest): (Vec<Candidate>, Vec<Candidate>) = c
            .into_iter()
            .partition(|x| iou(&first, &x.v) > iou_thr || x.v == first);
        let wsum: f32 = group.iter().map(|g| g.score).sum();
        let mut v = [0f32; 16];
        for g in &group {
            for (acc, val) in v.iter_mut().zip(g.v.iter()) {
                *acc += val * g.score / wsum;
            }
        }
        out.push(Candidate {
            score: top_score,
            v,
        });
        c = rest;
    }
    out
}

impl Detector {
    pub fn new(
        name: String,
        plan: Plan,
        input: InputSpec,
        spec: DetectorSpec,
    ) -> Result<Detector, ModelError> {
        if input.width != input.height {
            return Err(ModelError::IoMismatch {
                name,
                message: format!(
                    "detector input must be square, manifest says {}x{}",
                    input.width, input.height
                ),
            });
        }
        let anchors = anchors(input.width, &spec.anchors);
        let n = anchors.len();
        let shapes = plan.output_shapes();
        let find = |last: usize| shapes.iter().position(|s| s.as_slice() == [1, n, last]);
        let (Some(regressors_output), Some(scores_output)) = (find(16), find(1)) else {
            return Err(ModelError::IoMismatch {
                name,
                message: format!(
                    "expected outputs [1,{n},16] (regressors) and [1,{n},1] (scores) for {} anchors, model has {shapes:?}",
                    n
                ),
            });
        };
        Ok(Detector {
            name,
            plan,
            input,
            spec,
            anchors,
            regressors_output,
            scores_output,
        })
    }

    /// Detect faces in `img`; results are in `img` pixel coordinates, sorted by score.
    /// The side of the model's square input, in pixels (larger inputs find smaller faces).
    pub fn input_size(&self) -> u32 {
        self.input.width.max(self.input.height)
    }

    pub fn detect(&self, img: &RgbImage) -> Result<Vec<Face>, ModelError> {
        let side = self.input.width;
        let lb = Letterbox::new(img.width(), img.height(), side, side);
        let tensor = input_tensor(
            &self.input,
            img,
            Rect {
                x: 0,
                y: 0,
                w: img.width(),
                h: img.height(),
            },
            Rect {
                x: lb.off_x,
                y: lb.off_y,
                w: lb.new_w,
                h: lb.new_h,
            },
        )
        .map_err(|e| ModelError::inference(&self.name, e))?;
        let outputs = self.plan.run(tensor)?;
        let reg = output_f32(&outputs, self.regressors_output)
            .ok_or_else(|| self.err("regressors output missing"))?;
        let logits = output_f32(&outputs, self.scores_output)
            .ok_or_else(|| self.err("scores output missing"))?;
        let s = side as f32;
        let min_logit = logit(self.spec.min_score);
        let mut cands = Vec::new();
        for (i, (a, &lg)) in self.anchors.iter().zip(logits).enumerate() {
            if lg < min_logit {
                continue;
            }
            let score = crate::sigmoid(lg);
            if score < self.spec.min_score {
                continue;
            }
            let r = &reg[i * 16..i * 16 + 16];
            let (cx, cy) = (r[0] / s + a[0], r[1] / s + a[1]);
            let (w, h) = (r[2] / s, r[3] / s);
            let mut v = [0f32; 16];
            v[0] = cx - w / 2.0;
            v[1] = cy - h / 2.0;
            v[2] = cx + w / 2.0;
            v[3] = cy + h / 2.0;
            for k in 0..6 {
                v[4 + 2 * k] = r[4 + 2 * k] / s + a[0];
                v[5 + 2 * k] = r[5 + 2 * k] / s + a[1];
            }
            cands.push(Candidate { score, v });
        }
        let kept = weighted_nms(cands, self.spec.nms_iou);
        Ok(kept
            .into_iter()
            .map(|c| {
                let p = |x: f32, y: f32| {
                    let (ix, iy) = lb.to_image(x * s, y * s);
                    Point { x: ix, y: iy }
                };
                let tl = p(c.v[0], c.v[1]);
                let br = p(c.v[2], c.v[3]);
                let mut kps = [Point { x: 0.0, y: 0.0 }; 6];
                for (k, kp) in kps.iter_mut().enumerate() {
                    *kp = p(c.v[4 + 2 * k], c.v[5 + 2 * k]);
                }
                Face {
                    bbox: BBox {
                        x: tl.x,
                        y: tl.y,
                        width: br.x - tl.x,
                        height: br.y - tl.y,
                    },
                    score: c.score,
                    keypoints: kps,
                }
            })
            .collect())
    }

    fn err(&self, e: impl std::fmt::Display) -> ModelError {
        ModelError::inference(&self.name, e.to_string())
    }
}

fn logit(p: f32) -> f32 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln() - 1e-4
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(score: f32, x0: f32, y0: f32, x1: f32, y1: f32) -> Candidate {
        let mut v = [0f32; 16];
        v[..4].copy_from_slice(&[x0, y0, x1, y1]);
        Candidate { score, v }
    }

    #[test]
    fn blazeface_short_has_896_anchors() {
        let layers = [
            AnchorLayer {
                stride: 8,
                per_cell: 2,
            },
            AnchorLayer {
                stride: 16,
                per_cell: 6,
            },
        ];
        let a = anchors(128, &layers);
        assert_eq!(a.len(), 16 * 16 * 2 + 8 * 8 * 6);
        assert_eq!(a[0], [0.5 / 16.0, 0.5 / 16.0]);
        assert_eq!(a[1], a[0], "two anchors per cell");
        assert_eq!(a[2], [1.5 / 16.0, 0.5 / 16.0]);
    }

    #[test]
    fn iou_of_known_boxes() {
        let a = cand(1.0, 0.0, 0.0, 2.0, 2.0).v;
        let b = cand(1.0, 1.0, 0.0, 3.0, 2.0).v;
        assert!((iou(&a, &b) - 2.0 / 6.0).abs() < 1e-6);
        assert_eq!(iou(&a, &cand(1.0, 5.0, 5.0, 6.0, 6.0).v), 0.0);
        assert_eq!(iou(&a, &a), 1.0);
    }

    #[test]
    fn weighted_nms_merges_overlaps_and_keeps_the_rest() {
        let c = vec![
            cand(0.6, 0.1, 0.1, 0.3, 0.3),
            cand(0.9, 0.0, 0.0, 0.2, 0.2),
            cand(0.8, 0.7, 0.7, 0.9, 0.9),
        ];
        // IoU of the first two = 0.01 / 0.07 ≈ 0.14: merged at 0.1, apart at 0.3.
        let kept = weighted_nms(c, 0.1);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].score, 0.9, "a group keeps its best score");
        // Score-weighted mean of xmin: (0.9 * 0.0 + 0.6 * 0.1) / 1.5 = 0.04.
        assert!((kept[0].v[0] - 0.04).abs() < 1e-6, "{}", kept[0].v[0]);
        assert_eq!(kept[1].v[0], 0.7);
        let apart = weighted_nms(
            vec![cand(0.6, 0.1, 0.1, 0.3, 0.3), cand(0.9, 0.0, 0.0, 0.2, 0.2)],
            0.3,
        );
        assert_eq!(apart.len(), 2);
    }

    #[test]
    fn logit_inverts_the_sigmoid() {
        for p in [0.1f32, 0.5, 0.75] {
            assert!((crate::sigmoid(logit(p)) - p).abs() < 1e-4);
        }
    }
}
