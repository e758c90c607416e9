//! The quality gate: reject unusable captures early, with every failing reason at once.
//!
//! Each check measures a score, compares it with a configurable limit, and on failure yields a
//! [`Reason`] with a stable code, a human message, the score and the limit.

use crate::config::QualityConfig;
use crate::detect::{BBox, Face};
use crate::pixels::{grey_square, laplacian_variance, mean_luma, Rect};
use image::RgbImage;
use serde::Serialize;

/// Stable reason codes.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Hash, PartialOrd, Ord, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReasonCode {
    NoFace,
    MultipleFaces,
    FaceTooSmall,
    FaceCutOff,
    TooDark,
    TooBright,
    Blurry,
    HeadRoll,
    HeadYaw,
}

impl ReasonCode {
    pub fn as_str(&self) -> &'static str {
        match self {
            ReasonCode::NoFace => "NO_FACE",
            ReasonCode::MultipleFaces => "MULTIPLE_FACES",
            ReasonCode::FaceTooSmall => "FACE_TOO_SMALL",
            ReasonCode::FaceCutOff => "FACE_CUT_OFF",
            ReasonCode::TooDark => "TOO_DARK",
            ReasonCode::TooBright => "TOO_BRIGHT",
            ReasonCode::Blurry => "BLURRY",
            ReasonCode::HeadRoll => "HEAD_ROLL",
            ReasonCode::HeadYaw => "HEAD_YAW",
        }
    }
}

/// Why a capture was rejected.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Reason {
    pub code: ReasonCode,
    pub message: String,
    /// What was measured (unit depends on the check; see `metric`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    /// The limit the score was held to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<f32>,
    /// Name of the measured quantity (same key as in `quality`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<&'static str>,
}

/// Every quality measurement, whether or not it failed.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct QualityScores {
    pub faces: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_brightness: Option<f32>,
    pub image_brightness: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sharpness: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_area_ratio: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_height_ratio: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eye_distance_px: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_inside_ratio: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roll_deg: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yaw: Option<f32>,
}

/// Result of the gate.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct QualityReport {
    pub reasons: Vec<Reason>,
    pub scores: QualityScores,
}

/// Side of the grey face square on which sharpness is measured.
pub const SHARPNESS_SIZE: u32 = 112;

/// Faces that count for the multiple-faces check (`faces` sorted by area, largest first).
pub fn significant_faces<'f>(faces: &'f [Face], cfg: &QualityConfig) -> Vec<&'f Face> {
    let largest = faces.iter().map(|f| f.bbox.area()).fold(0.0f32, f32::max);
    faces
        .iter()
        .filter(|f| f.bbox.area() >= cfg.multi_face_min_area * largest)
        .collect()
}

/// Clip a float box to the image as an integer rectangle.
pub fn clip_rect(b: &BBox, w: u32, h: u32) -> Rect {
    let x0 = b.x.floor().clamp(0.0, w as f32) as u32;
    let y0 = b.y.floor().clamp(0.0, h as f32) as u32;
    let x1 = (b.x + b.width).ceil().clamp(0.0, w as f32) as u32;
    let y1 = (b.y + b.height).ceil().clamp(0.0, h as f32) as u32;
    Rect {
        x: x0,
        y: y0,
        w: x1.saturating_sub(x0),
        h: y1.saturating_sub(y0),
    }
}

/// Run every check. `faces` are in `img` coordinates, largest first; `to_original` converts `img`
/// pixels to original-image pixels (reduced-scale decode).
pub fn gate(
    img: &RgbImage,
    faces: &[Face],
    to_original: f32,
    cfg: &QualityConfig,
) -> QualityReport {
    let (w, h) = (img.width(), img.height());
    let mut r = QualityReport::default();
    let whole = Rect { x: 0, y: 0, w, h };
    r.scores.image_brightness = mean_luma(img, whole, 16_384);
    let significant = significant_faces(faces, cfg);
    r.scores.faces = significant.len();
    let Some(face) = faces.first() else {
        r.reasons.push(reason(
            ReasonCode::NoFace,
            "No face was found in the image.".into(),
            None,
            None,
            None,
        ));
        brightness_image_only(&mut r, cfg);
        return r;
    };
    if significant.len() > 1 {
        r.reasons.push(reason(
            ReasonCode::MultipleFaces,
            format!(
                "{} faces were found; exactly one person must be in the picture.",
                significant.len()
            ),
            Some(significant.len() as f32),
            Some(1.0),
            Some("faces"),
        ));
    }

    // Size.
    let area_ratio = face.bbox.area() / (w as f32 * h as f32);
    let eye_px = face.eye_distance() * to_original;
    let height_ratio = face.bbox.height / h as f32;
    r.scores.face_area_ratio = Some(area_ratio);
    r.scores.face_height_ratio = Some(height_ratio);
    r.scores.eye_distance_px = Some(eye_px);
    if area_ratio < cfg.min_face_area_ratio {
        r.reasons.push(reason(
            ReasonCode::FaceTooSmall,
            format!(
                "The face covers {:.1}% of the image; move closer (at least {:.1}%).",
                area_ratio * 100.0,
                cfg.min_face_area_ratio * 100.0
            ),
            Some(area_ratio),
            Some(cfg.min_face_area_ratio),
            Some("face_area_ratio"),
        ));
    } else if height_ratio < cfg.min_face_height_ratio {
        r.reasons.push(reason(
            ReasonCode::FaceTooSmall,
            format!(
                "The face is {:.0}% of the picture's height; move closer (at least {:.0}%).",
                height_ratio * 100.0,
                cfg.min_face_height_ratio * 100.0
            ),
            Some(height_ratio),
            Some(cfg.min_face_height_ratio),
            Some("face_height_ratio"),
        ));
    } else if eye_px < cfg.min_eye_distance {
        r.reasons.push(reason(
            ReasonCode::FaceTooSmall,
            format!(
                "The eyes are {eye_px:.0} px apart; the face needs more resolution (at least {:.0} px).",
                cfg.min_eye_distance
            ),
            Some(eye_px),
            Some(cfg.min_eye_distance),
            Some("eye_distance_px"),
        ));
    }

    // Cut off: the face box grown by 10 % must lie (almost) inside the image.
    let g = BBox {
        x: face.bbox.x - face.bbox.width * 0.05,
        y: face.bbox.y - face.bbox.height * 0.05,
        width: face.bbox.width * 1.1,
        height: face.bbox.height * 1.1,
    };
    let inside = clip_rect(&g, w, h);
    let inside_ratio = (inside.w as f32 * inside.h as f32) / g.area().max(1.0);
    let inside_ratio = inside_ratio.min(1.0);
    r.scores.face_inside_ratio = Some(inside_ratio);
    if inside_ratio < cfg.min_face_inside {
        r.reasons.push(reason(
            ReasonCode::FaceCutOff,
            format!(
                "Only {:.0}% of the face is inside the picture; centre the whole face in the frame.",
                inside_ratio * 100.0
            ),
            Some(inside_ratio),
            Some(cfg.min_face_inside),
            Some("face_inside_ratio"),
        ));
    }

    // Brightness on the face and on the whole image.
    let face_rect = clip_rect(&face.bbox, w, h);
    let fb = mean_luma(img, face_rect, 4_096);
    r.scores.face_brightness = Some(fb);
    if fb < cfg.min_face_brightness {
        r.reasons.push(reason(
            ReasonCode::TooDark,
            format!("The face is too dark (brightness {fb:.0}, minimum {:.0}); add light in front of you.", cfg.min_face_brightness),
            Some(fb),
            Some(cfg.min_face_brightness),
            Some("face_brightness"),
        ));
    } else if fb > cfg.max_face_brightness {
        r.reasons.push(reason(
            ReasonCode::TooBright,
            format!(
                "The face is overexposed (brightness {fb:.0}, maximum {:.0}); avoid direct light.",
                cfg.max_face_brightness
            ),
            Some(fb),
            Some(cfg.max_face_brightness),
            Some("face_brightness"),
        ));
    } else {
        brightness_image_only(&mut r, cfg);
    }

    // Sharpness on the face crop at a fixed size.
    if face_rect.w >= 2 && face_rect.h >= 2 {
        let grey = grey_square(img, face_rect, SHARPNESS_SIZE);
        let sharp = laplacian_variance(&grey, SHARPNESS_SIZE as usize);
        r.scores.sharpness = Some(sharp);
        if sharp < cfg.min_sharpness {
            r.reasons.push(reason(
                ReasonCode::Blurry,
                format!("The face is blurry (sharpness {sharp:.0}, minimum {:.0}); hold still and focus.", cfg.min_sharpness),
                Some(sharp),
                Some(cfg.min_sharpness),
                Some("sharpness"),
            ));
        }
    }

    // Pose: roll from the eye line; yaw from the nose tip's offset from the eye midpoint, measured
    // along the eye line and divided by the eye distance (0 = frontal, ±0.5 ≈ nose above one eye).
    let k = &face.keypoints;
    let (re, le, nose) = (k[0], k[1], k[2]);
    let (dx, dy) = (le.x - re.x, le.y - re.y);
    let eye_d = (dx * dx + dy * dy).sqrt();
    let roll = dy.atan2(dx).to_degrees();
    let yaw = if eye_d > 0.0 {
        let (mx, my) = ((re.x + le.x) / 2.0, (re.y + le.y) / 2.0);
        ((nose.x - mx) * dx + (nose.y - my) * dy) / (eye_d * eye_d)
    } else {
        0.0
    };
    r.scores.roll_deg = Some(roll);
    r.scores.yaw = Some(yaw);
    if roll.abs() > cfg.max_roll_deg {
        r.reasons.push(reason(
            ReasonCode::HeadRoll,
            format!(
                "The head is tilted {:.0}° (maximum {:.0}°); keep your head upright.",
                roll.abs(),
                cfg.max_roll_deg
            ),
            Some(roll),
            Some(cfg.max_roll_deg),
            Some("roll_deg"),
        ));
    }
    if yaw.abs() > cfg.max_yaw {
        r.reasons.push(reason(
            ReasonCode::HeadYaw,
            format!("The head is turned to the side (yaw {yaw:.2}, maximum {:.2}); look straight at the camera.", cfg.max_yaw),
            Some(yaw),
            Some(cfg.max_yaw),
            Some("yaw"),
        ));
    }
    r
}

fn brightness_image_only(r: &mut QualityReport, cfg: &QualityConfig) {
    let ib = r.scores.image_brightness;
    if ib < cfg.min_image_brightness {
        r.reasons.push(reason(
            ReasonCode::TooDark,
            format!(
                "The picture is too dark (brightness {ib:.0}, minimum {:.0}).",
                cfg.min_image_brightness
            ),
            Some(ib),
            Some(cfg.min_image_brightness),
            Some("image_brightness"),
        ));
    } else if ib > cfg.max_image_brightness {
        r.reasons.push(reason(
            ReasonCode::TooBright,
            format!(
                "The picture is overexposed (brightness {ib:.0}, maximum {:.0}).",
                cfg.max_image_brightness
            ),
            Some(ib),
            Some(cfg.max_image_brightness),
            Some("image_brightness"),
        ));
    }
}

fn reason(
    code: ReasonCode,
    message: String,
    score: Option<f32>,
    limit: Option<f32>,
    metric: Option<&'static str>,
) -> Reason {
    Reason {
        code,
        message,
        score,
        limit,
        metric,
    }
}
