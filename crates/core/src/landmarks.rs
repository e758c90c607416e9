//! Landmarks for the quality gate: a face mesh (head pose, eye corners) and an eye-contour model
//! (how open each eye is), both described by their manifest entries.
//!
//! The mesh runs on a square crop `crop_scale` × the face box's long side, rotated so that the
//! detector's eyes are level (as MediaPipe feeds it). Its 3-D points give the head's yaw and pitch
//! from the normal of the face plane. The eye model runs on each eye, on a square crop
//! `crop_scale` × the distance between that eye's mesh corners, levelled, the image-left eye
//! mirrored (the model takes the subject's left eye); the eye's openness is the height of its
//! eyelid contour over its width.

use crate::detect::Face;
use crate::error::ModelError;
use crate::pixels::{rotated_tensor, RotatedSquare};
use ekyc_models::manifest::{InputSpec, LandmarkKind, LandmarkSpec};
use ekyc_models::plan::{output_f32, Plan};
use image::RgbImage;

/// A loaded landmark model.
pub struct LandmarkModel {
    pub name: String,
    plan: Plan,
    input: InputSpec,
    pub spec: LandmarkSpec,
}

/// What the landmark models measured on one face.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FaceLandmarks {
    /// Head yaw from the mesh, degrees (0 = facing the camera; the gate holds its magnitude).
    pub yaw_deg: f32,
    /// Head pitch from the mesh, degrees (0 = level; the gate holds its magnitude).
    pub pitch_deg: f32,
    /// Face-presence probability of the mesh (1 when the model has no such output).
    pub presence: f32,
    /// Openness of the less open eye (eyelid height / eye width), when an eye model is loaded.
    pub eyes_open: Option<f32>,
}

impl LandmarkModel {
    pub fn new(
        name: String,
        plan: Plan,
        input: InputSpec,
        spec: LandmarkSpec,
    ) -> Result<LandmarkModel, ModelError> {
        let shapes = plan.output_shapes();
        let n0: Option<usize> = shapes.first().map(|s| s.iter().product());
        let presence_ok = spec.presence_output.is_none_or(|i| {
            shapes
                .get(i)
                .is_some_and(|s| s.iter().product::<usize>() == 1)
        });
        if n0 != Some(spec.points * 3) || !presence_ok || input.width != input.height {
            return Err(ModelError::IoMismatch {
                name,
                message: format!(
                    "{} points (x, y, z) and a square input expected; outputs {shapes:?}, input {}x{}",
                    spec.points, input.width, input.height
                ),
            });
        }
        Ok(LandmarkModel {
            name,
            plan,
            input,
            spec,
        })
    }

    /// Run on a square; the points (x, y, z) in the model's input pixels, and the presence
    /// logit's probability (1 without one).
    fn run(&self, img: &RgbImage, sq: &RotatedSquare) -> Result<(Vec<[f32; 3]>, f32), ModelError> {
        let t = rotated_tensor(&self.input, img, sq)
            .map_err(|e| ModelError::inference(&self.name, e))?;
        let out = self.plan.run(t)?;
        let v = output_f32(&out, 0).ok_or_else(|| self.err("landmark output missing"))?;
        let points: Vec<[f32; 3]> = v.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
        if points.len() != self.spec.points || points.iter().flatten().any(|x| !x.is_finite()) {
            return Err(self.err("landmark output malformed"));
        }
        let presence = match self.spec.presence_output {
            Some(i) => {
                let logit = output_f32(&out, i)
                    .and_then(|p| p.first().copied())
                    .ok_or_else(|| self.err("presence output missing"))?;
                crate::sigmoid(logit)
            }
            None => 1.0,
        };
        Ok((points, presence))
    }

    fn err(&self, e: &'static str) -> ModelError {
        ModelError::inference(&self.name, e)
    }
}

/// The gate's landmark stage: a face mesh and, optionally, an eye-contour model.
pub struct Landmarker {
    mesh: LandmarkModel,
    eye: Option<LandmarkModel>,
}

impl Landmarker {
    /// From the loaded landmark models: the first face mesh and the first eye-contour model.
    /// `None` without a face mesh (the eye model needs its eye corners).
    pub fn from_models(models: Vec<LandmarkModel>) -> Option<Landmarker> {
        let mut mesh = None;
        let mut eye = None;
        for m in models {
            match m.spec.kind {
                LandmarkKind::FaceMesh if mesh.is_none() => mesh = Some(m),
                LandmarkKind::EyeContour if eye.is_none() => eye = Some(m),
                _ => {}
            }
        }
        mesh.map(|mesh| Landmarker { mesh, eye })
    }

    /// Measure the face (in `img` coordinates); with `parallel`, the two eyes run on two threads
    /// (same result).
    pub fn measure(
        &self,
        img: &RgbImage,
        face: &Face,
        parallel: bool,
    ) -> Result<FaceLandmarks, ModelError> {
        let b = &face.bbox;
        let (re, le) = (face.keypoints[0], face.keypoints[1]);
        let sq = RotatedSquare {
            cx: b.x + b.width / 2.0,
            cy: b.y + b.height / 2.0,
            side: self.mesh.spec.crop_scale * b.width.max(b.height),
            angle: (le.y - re.y).atan2(le.x - re.x),
            mirror: false,
        };
        let (points, presence) = self.mesh.run(img, &sq)?;
        let (yaw_deg, pitch_deg) = self
            .mesh
            .spec
            .pose
            .and_then(|p| head_pose(&points, p.left, p.right, p.top, p.bottom))
            .unwrap_or((0.0, 0.0));
        let n = self.mesh.input.width as f32;
        let to_image = |i: usize| points.get(i).map(|p| sq.to_image(p[0], p[1], n));
        let eyes_open = match &self.eye {
            None => None,
            Some(eye) => {
                let mut corners = Vec::with_capacity(self.mesh.spec.eye_corners.len());
                for [a, bb] in &self.mesh.spec.eye_corners {
                    let (Some(pa), Some(pb)) = (to_image(*a), to_image(*bb)) else {
                        return Err(self.mesh.err("eye corner index out of range"));
                    };
                    corners.push((pa, pb));
                }
                let one = |k: usize| {
                    let (pa, pb) = corners[k];
                    eye_openness(eye, img, pa, pb, k == 0)
                };
                let each: Vec<Result<f32, ModelError>> = if parallel && corners.len() == 2 {
                    std::thread::scope(|s| {
                        let other = s.spawn(|| one(1));
                        let first = one(0);
                        let second = other
                            .join()
                            .unwrap_or_else(|_| Err(self.mesh.err("eye model thread panicked")));
                        vec![first, second]
                    })
                } else {
                    (0..corners.len()).map(one).collect()
                };
                let mut open = f32::INFINITY;
                for o in each {
                    open = open.min(o?);
                }
                open.is_finite().then_some(open)
            }
        };
        Ok(FaceLandmarks {
            yaw_deg,
            pitch_deg,
            presence,
            eyes_open,
        })
    }
}

/// Openness of the eye between corners `a` and `b` (image coordinates): the eye model's eyelid
/// contour height over its width, on a levelled square crop (mirrored for the image-left eye).
fn eye_openness(
    eye: &LandmarkModel,
    img: &RgbImage,
    a: (f32, f32),
    b: (f32, f32),
    mirror: bool,
) -> Result<f32, ModelError> {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let width = (dx * dx + dy * dy).sqrt();
    if !(width.is_finite() && width >= 1.0) {
        return Ok(0.0);
    }
    // Level the eye whichever corner comes first.
    let mut angle = dy.atan2(dx);
    if dx < 0.0 {
        angle += std::f32::consts::PI;
    }
    let sq = RotatedSquare {
        cx: (a.0 + b.0) / 2.0,
        cy: (a.1 + b.1) / 2.0,
        side: eye.spec.crop_scale * width,
        angle,
        mirror,
    };
    let (points, _) = eye.run(img, &sq)?;
    Ok(lid_openness(
        &points[..eye.spec.lid_points.min(points.len())],
    ))
}

/// Height over width of a set of eyelid points (0 when they have no width).
pub fn lid_openness(lids: &[[f32; 3]]) -> f32 {
    let (mut x0, mut x1, mut y0, mut y1) = (
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::INFINITY,
        f32::NEG_INFINITY,
    );
    for p in lids {
        x0 = x0.min(p[0]);
        x1 = x1.max(p[0]);
        y0 = y0.min(p[1]);
        y1 = y1.max(p[1]);
    }
    let w = x1 - x0;
    if w.is_finite() && w > 0.0 {
        (y1 - y0) / w
    } else {
        0.0
    }
}

/// Yaw and pitch in degrees from the normal of the face plane spanned by `left → right` and
/// `top → bottom` (3-D mesh points, y down, z away from the camera).
pub fn head_pose(
    points: &[[f32; 3]],
    left: usize,
    right: usize,
    top: usize,
    bottom: usize,
) -> Option<(f32, f32)> {
    let p = |i: usize| points.get(i).copied();
    let (l, r, t, b) = (p(left)?, p(right)?, p(top)?, p(bottom)?);
    let xa = [r[0] - l[0], r[1] - l[1], r[2] - l[2]];
    let ya = [b[0] - t[0], b[1] - t[1], b[2] - t[2]];
    let n = [
        xa[1] * ya[2] - xa[2] * ya[1],
        xa[2] * ya[0] - xa[0] * ya[2],
        xa[0] * ya[1] - xa[1] * ya[0],
    ];
    let len = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
    if !(len.is_finite() && len > 0.0) {
        return None;
    }
    let yaw = (n[0] / len).clamp(-1.0, 1.0).asin().to_degrees();
    let pitch = (n[1] / len).clamp(-1.0, 1.0).asin().to_degrees();
    Some((yaw, pitch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frontal_plane_has_no_yaw_or_pitch() {
        // left (0,0,0), right (10,0,0), top (5,-5,0), bottom (5,5,0): normal along z.
        let pts = [
            [0.0, 0.0, 0.0],
            [10.0, 0.0, 0.0],
            [5.0, -5.0, 0.0],
            [5.0, 5.0, 0.0],
        ];
        let (y, p) = head_pose(&pts, 0, 1, 2, 3).expect("pose");
        assert!(y.abs() < 1e-4 && p.abs() < 1e-4, "{y} {p}");
    }

    #[test]
    fn a_plane_turned_30_degrees_about_the_vertical_has_30_degrees_of_yaw() {
        let (s, c) = 30f32.to_radians().sin_cos();
        // The left-right axis rotated about y: (c, 0, -s) · 10.
        let pts = [
            [0.0, 0.0, 0.0],
            [10.0 * c, 0.0, -10.0 * s],
            [0.0, -5.0, 0.0],
            [0.0, 5.0, 0.0],
        ];
        let (y, p) = head_pose(&pts, 0, 1, 2, 3).expect("pose");
        assert!((y.abs() - 30.0).abs() < 1e-3, "{y}");
        assert!(p.abs() < 1e-3, "{p}");
        // Tilted about the horizontal axis instead: pitch.
        let pts = [
            [0.0, 0.0, 0.0],
            [10.0, 0.0, 0.0],
            [0.0, -5.0 * c, 5.0 * s],
            [0.0, 5.0 * c, -5.0 * s],
        ];
        let (y, p) = head_pose(&pts, 0, 1, 2, 3).expect("pose");
        assert!((p.abs() - 30.0).abs() < 1e-3 && y.abs() < 1e-3, "{y} {p}");
        assert!(head_pose(&pts, 0, 0, 2, 3).is_none(), "degenerate plane");
        assert!(head_pose(&pts, 0, 9, 2, 3).is_none(), "index out of range");
    }

    #[test]
    fn lid_openness_is_height_over_width() {
        let lids = [
            [0.0, 5.0, 0.0],
            [20.0, 5.0, 0.0],
            [10.0, 1.0, 0.0],
            [10.0, 9.0, 0.0],
        ];
        assert!((lid_openness(&lids) - 0.4).abs() < 1e-6);
        assert_eq!(lid_openness(&[]), 0.0);
        assert_eq!(lid_openness(&[[1.0, 1.0, 0.0]]), 0.0);
    }

    #[test]
    fn rotated_square_maps_grid_corners_and_mirrors() {
        let sq = RotatedSquare {
            cx: 50.0,
            cy: 40.0,
            side: 20.0,
            angle: std::f32::consts::FRAC_PI_2,
            mirror: false,
        };
        // Grid centre → square centre; the grid's x axis points down the image at 90°.
        let (x, y) = sq.to_image(32.0, 32.0, 64.0);
        assert!((x - 50.0).abs() < 1e-4 && (y - 40.0).abs() < 1e-4);
        let (x, y) = sq.to_image(64.0, 32.0, 64.0);
        assert!(
            (x - 50.0).abs() < 1e-4 && (y - 50.0).abs() < 1e-4,
            "{x} {y}"
        );
        let m = RotatedSquare { mirror: true, ..sq };
        let (x, y) = m.to_image(64.0, 32.0, 64.0);
        assert!(
            (x - 50.0).abs() < 1e-4 && (y - 30.0).abs() < 1e-4,
            "{x} {y}"
        );
    }
}
