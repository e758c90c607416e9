//! The quality gate: reject unusable captures early, with every failing reason at once.
//!
//! The gate is data: [`LIMITS`] is the one table of its limits (name, environment variable, default,
//! metric, side, reason code, message). [`measure`] computes every metric ([`QualityScores`]);
//! [`gate`] checks the table's limits against them, in [`GROUPS`] (each group reports only its
//! first failure). The settings, `calibrate-quality`, the OpenAPI schema and the README table all
//! read the same table. Adding a check is one [`Limit`] row plus its measurement.

use crate::detect::{BBox, Face, Point};
use crate::landmarks::FaceLandmarks;
use crate::pixels::{grey_square, laplacian_variance, luma_histogram, mean_luma, Rect};
use image::RgbImage;
use serde::Serialize;

/// Stable reason codes.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    HeadPitch,
    EyesClosed,
    /// One side of the face is lit much more than the other.
    UnevenLighting,
    FaceOccluded,
    /// RETRY: the liveness score is within the uncertain band around the threshold.
    UncertainLiveness,
    /// RETRY: the ensemble's models disagree by more than the configured spread.
    ModelsDisagree,
}

impl ReasonCode {
    /// Every code, in declaration order.
    pub const ALL: [ReasonCode; 15] = [
        ReasonCode::NoFace,
        ReasonCode::MultipleFaces,
        ReasonCode::FaceTooSmall,
        ReasonCode::FaceCutOff,
        ReasonCode::TooDark,
        ReasonCode::TooBright,
        ReasonCode::Blurry,
        ReasonCode::HeadRoll,
        ReasonCode::HeadYaw,
        ReasonCode::HeadPitch,
        ReasonCode::EyesClosed,
        ReasonCode::UnevenLighting,
        ReasonCode::FaceOccluded,
        ReasonCode::UncertainLiveness,
        ReasonCode::ModelsDisagree,
    ];

    /// The code as serialised (SCREAMING_SNAKE_CASE; a unit test checks it against serde).
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
            ReasonCode::HeadPitch => "HEAD_PITCH",
            ReasonCode::EyesClosed => "EYES_CLOSED",
            ReasonCode::UnevenLighting => "UNEVEN_LIGHTING",
            ReasonCode::FaceOccluded => "FACE_OCCLUDED",
            ReasonCode::UncertainLiveness => "UNCERTAIN_LIVENESS",
            ReasonCode::ModelsDisagree => "MODELS_DISAGREE",
        }
    }
}

/// Why a capture was rejected.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QualityScores {
    pub faces: usize,
    /// Mean luma of the upper face (see [`upper_face`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_brightness: Option<f32>,
    /// ISO/IEC 29794-5 under-exposure: share of upper-face pixels with luma below
    /// [`UNDEREXPOSED_LUMA`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_underexposed: Option<f32>,
    /// ISO/IEC 29794-5 over-exposure: share of upper-face pixels with luma at or above
    /// [`OVEREXPOSED_LUMA`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_overexposed: Option<f32>,
    /// ISO/IEC 29794-5 dynamic range: entropy of the upper face's luma histogram, bits (0..8).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_dynamic_range: Option<f32>,
    /// ISO/IEC 29794-5 illumination uniformity: intersection of the luma histograms of the upper
    /// face's two halves (split at the nose tip), 0..1 (1 = both halves lit alike).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub illumination_uniformity: Option<f32>,
    /// ISO/IEC 29794-5 face occlusion (our measure): the share of samples around the nose and
    /// around the mouth, the lower of the two, whose colour is the face's own skin colour, 0..1
    /// (see [`lower_face_skin`]). A face mask or a phone over the lower face measures about 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lower_face_skin: Option<f32>,
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
    /// Head yaw from the face mesh, degrees (when the landmark models are loaded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yaw_deg: Option<f32>,
    /// Head pitch from the face mesh, degrees.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pitch_deg: Option<f32>,
    /// Openness of the less open eye: eyelid height / eye width from the eye-contour model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eyes_open: Option<f32>,
}

/// Result of the gate.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct QualityReport {
    /// Every failing check (empty = the capture is usable).
    pub reasons: Vec<Reason>,
    /// Every measurement.
    pub scores: QualityScores,
}

/// Side of the grey face square on which sharpness is measured.
pub const SHARPNESS_SIZE: u32 = 112;

/// Luma below which a pixel counts as under-exposed (detail lost in the dark).
pub const UNDEREXPOSED_LUMA: f32 = 25.0;
/// Luma at or above which a pixel counts as over-exposed (clipped highlights).
pub const OVEREXPOSED_LUMA: f32 = 247.0;

/// A measured quantity of the gate; its name is its key in [`QualityScores`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    FaceBrightness,
    FaceUnderexposed,
    FaceOverexposed,
    FaceDynamicRange,
    IlluminationUniformity,
    LowerFaceSkin,
    ImageBrightness,
    Sharpness,
    FaceAreaRatio,
    FaceHeightRatio,
    EyeDistancePx,
    FaceInsideRatio,
    RollDeg,
    Yaw,
    YawDeg,
    PitchDeg,
    EyesOpen,
}

impl Metric {
    /// Key in [`QualityScores`] and in reasons' `metric`.
    pub fn name(self) -> &'static str {
        match self {
            Metric::FaceBrightness => "face_brightness",
            Metric::FaceUnderexposed => "face_underexposed",
            Metric::FaceOverexposed => "face_overexposed",
            Metric::FaceDynamicRange => "face_dynamic_range",
            Metric::IlluminationUniformity => "illumination_uniformity",
            Metric::LowerFaceSkin => "lower_face_skin",
            Metric::ImageBrightness => "image_brightness",
            Metric::Sharpness => "sharpness",
            Metric::FaceAreaRatio => "face_area_ratio",
            Metric::FaceHeightRatio => "face_height_ratio",
            Metric::EyeDistancePx => "eye_distance_px",
            Metric::FaceInsideRatio => "face_inside_ratio",
            Metric::RollDeg => "roll_deg",
            Metric::Yaw => "yaw",
            Metric::YawDeg => "yaw_deg",
            Metric::PitchDeg => "pitch_deg",
            Metric::EyesOpen => "eyes_open",
        }
    }

    /// The measured value, when it was measured.
    pub fn get(self, q: &QualityScores) -> Option<f32> {
        match self {
            Metric::FaceBrightness => q.face_brightness,
            Metric::FaceUnderexposed => q.face_underexposed,
            Metric::FaceOverexposed => q.face_overexposed,
            Metric::FaceDynamicRange => q.face_dynamic_range,
            Metric::IlluminationUniformity => q.illumination_uniformity,
            Metric::LowerFaceSkin => q.lower_face_skin,
            Metric::ImageBrightness => Some(q.image_brightness),
            Metric::Sharpness => q.sharpness,
            Metric::FaceAreaRatio => q.face_area_ratio,
            Metric::FaceHeightRatio => q.face_height_ratio,
            Metric::EyeDistancePx => q.eye_distance_px,
            Metric::FaceInsideRatio => q.face_inside_ratio,
            Metric::RollDeg => q.roll_deg,
            Metric::Yaw => q.yaw,
            Metric::YawDeg => q.yaw_deg,
            Metric::PitchDeg => q.pitch_deg,
            Metric::EyesOpen => q.eyes_open,
        }
    }

    /// Signed angles are held to their limit by magnitude.
    pub fn by_magnitude(self) -> bool {
        matches!(
            self,
            Metric::RollDeg | Metric::Yaw | Metric::YawDeg | Metric::PitchDeg
        )
    }

    /// The value a limit is compared with.
    pub fn compared(self, v: f32) -> f32 {
        if self.by_magnitude() {
            v.abs()
        } else {
            v
        }
    }

    /// The range a limit on this metric may take, and the unit.
    pub fn range(self) -> (f64, f64) {
        match self {
            Metric::FaceBrightness | Metric::ImageBrightness => (0.0, 255.0),
            Metric::FaceAreaRatio
            | Metric::FaceInsideRatio
            | Metric::FaceUnderexposed
            | Metric::FaceOverexposed
            | Metric::IlluminationUniformity
            | Metric::LowerFaceSkin => (0.0, 1.0),
            Metric::FaceDynamicRange => (0.0, 8.0),
            Metric::RollDeg => (0.0, 180.0),
            Metric::YawDeg | Metric::PitchDeg => (0.0, 90.0),
            Metric::EyesOpen => (0.0, f64::INFINITY),
            Metric::Sharpness | Metric::FaceHeightRatio | Metric::EyeDistancePx | Metric::Yaw => {
                (0.0, f64::INFINITY)
            }
        }
    }

    /// Decimals a suggested limit is rounded to.
    pub fn decimals(self) -> usize {
        match self {
            Metric::FaceAreaRatio | Metric::FaceHeightRatio | Metric::FaceInsideRatio => 4,
            Metric::FaceUnderexposed
            | Metric::FaceOverexposed
            | Metric::FaceDynamicRange
            | Metric::IlluminationUniformity
            | Metric::LowerFaceSkin => 3,
            Metric::Yaw | Metric::EyesOpen => 3,
            _ => 1,
        }
    }

    /// Unit, for docs.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::FaceBrightness => "mean luma 0-255 (upper face: brows to nose)",
            Metric::ImageBrightness => "mean luma 0-255",
            Metric::FaceUnderexposed => "share of upper-face pixels with luma < 25",
            Metric::FaceOverexposed => "share of upper-face pixels with luma >= 247",
            Metric::FaceDynamicRange => "bits (entropy of the upper-face luma histogram)",
            Metric::IlluminationUniformity => {
                "histogram intersection of the upper face's halves, 32 luma bins (1 = alike)"
            }
            Metric::LowerFaceSkin => {
                "share of nose and mouth samples in the face's skin colour (rg chromaticity), the lower of the two"
            }
            Metric::Sharpness => "Laplacian variance (112x112 grey face)",
            Metric::FaceAreaRatio => "face box area / image area",
            Metric::FaceHeightRatio => "face box height / image height",
            Metric::EyeDistancePx => "px (original image)",
            Metric::FaceInsideRatio => "fraction of the face box (grown 10 %) inside the image",
            Metric::RollDeg => "degrees (eye line)",
            Metric::Yaw => "nose offset / eye distance (0 = frontal)",
            Metric::YawDeg => "degrees, face-mesh plane (0 = frontal)",
            Metric::PitchDeg => "degrees, face-mesh plane (0 = level)",
            Metric::EyesOpen => "eyelid height / eye width, less open eye",
        }
    }
}

/// Which side of a limit passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The metric must be at least the limit.
    Min,
    /// The metric must be at most the limit.
    Max,
}

/// What a row of [`LIMITS`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A check: `metric` held to the limit on `side`, failing with `code`.
    Check {
        metric: Metric,
        side: Side,
        code: ReasonCode,
    },
    /// A parameter of a check that is not a metric limit.
    Parameter { code: ReasonCode },
}

/// Every tunable of the gate. The discriminant is the row in [`LIMITS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    MinFaceBrightness,
    MaxFaceBrightness,
    MaxFaceUnderexposed,
    MaxFaceOverexposed,
    MinIlluminationUniformity,
    MinLowerFaceSkin,
    MinImageBrightness,
    MaxImageBrightness,
    MinSharpness,
    MinFaceAreaRatio,
    MinFaceHeightRatio,
    MinEyeDistance,
    MultiFaceMinArea,
    MinFaceInside,
    MaxRollDeg,
    MaxYaw,
    MaxYawDeg,
    MaxPitchDeg,
    MinEyesOpen,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct LimitDef {
    pub limit: Limit,
    /// Setting name: the CLI flag is `--<key with dashes>`.
    pub key: &'static str,
    /// Environment variable.
    pub env: &'static str,
    pub default: f32,
    pub kind: Kind,
    /// One-line description (flag help, README).
    pub doc: &'static str,
    /// The client-facing message of a failure, from the measured value and the limit.
    pub message: fn(f32, f32) -> String,
}

const fn check(metric: Metric, side: Side, code: ReasonCode) -> Kind {
    Kind::Check { metric, side, code }
}

/// The table.
pub const LIMITS: [LimitDef; 19] = [
    LimitDef {
        limit: Limit::MinFaceBrightness,
        key: "min_face_brightness",
        env: "EKYC_MIN_FACE_BRIGHTNESS",
        default: 25.0,
        kind: check(Metric::FaceBrightness, Side::Min, ReasonCode::TooDark),
        doc: "Minimum mean luma (0-255) of the upper face (brows to nose: a face mask or a beard does not darken it).",
        message: |v, l| format!("The face is too dark (brightness {v:.0}, minimum {l:.0}); add light in front of you."),
    },
    LimitDef {
        limit: Limit::MaxFaceBrightness,
        key: "max_face_brightness",
        env: "EKYC_MAX_FACE_BRIGHTNESS",
        default: 225.0,
        kind: check(Metric::FaceBrightness, Side::Max, ReasonCode::TooBright),
        doc: "Maximum mean luma (0-255) of the upper face.",
        message: |v, l| format!("The face is overexposed (brightness {v:.0}, maximum {l:.0}); avoid direct light."),
    },
    LimitDef {
        limit: Limit::MaxFaceUnderexposed,
        key: "max_face_underexposed",
        env: "EKYC_MAX_FACE_UNDEREXPOSED",
        default: 0.6,
        kind: check(Metric::FaceUnderexposed, Side::Max, ReasonCode::TooDark),
        doc: "Maximum share of upper-face pixels with luma below 25 (ISO/IEC 29794-5 under-exposure).",
        message: |v, l| {
            format!(
                "{:.0}% of the face is lost in shadow (at most {:.0}%); add light in front of you.",
                v * 100.0,
                l * 100.0
            )
        },
    },
    LimitDef {
        limit: Limit::MaxFaceOverexposed,
        key: "max_face_overexposed",
        env: "EKYC_MAX_FACE_OVEREXPOSED",
        default: 0.3,
        kind: check(Metric::FaceOverexposed, Side::Max, ReasonCode::TooBright),
        doc: "Maximum share of upper-face pixels with luma of 247 or more (ISO/IEC 29794-5 over-exposure).",
        message: |v, l| {
            format!(
                "{:.0}% of the face is washed out by light (at most {:.0}%); avoid direct light.",
                v * 100.0,
                l * 100.0
            )
        },
    },
    LimitDef {
        limit: Limit::MinIlluminationUniformity,
        key: "min_illumination_uniformity",
        env: "EKYC_MIN_ILLUMINATION_UNIFORMITY",
        default: UNIFORMITY_DEFAULT,
        kind: check(
            Metric::IlluminationUniformity,
            Side::Min,
            ReasonCode::UnevenLighting,
        ),
        doc: "Minimum illumination uniformity: intersection of the luma histograms (32 bins) of the upper face's left and right halves, split at the nose tip (ISO/IEC 29794-5 illumination uniformity).",
        message: |v, l| format!("One side of the face is much darker than the other (uniformity {v:.2}, minimum {l:.2}); face the light."),
    },
    LimitDef {
        limit: Limit::MinLowerFaceSkin,
        key: "min_lower_face_skin",
        env: "EKYC_MIN_LOWER_FACE_SKIN",
        default: LOWER_FACE_SKIN_DEFAULT,
        kind: check(Metric::LowerFaceSkin, Side::Min, ReasonCode::FaceOccluded),
        doc: "Minimum share of the samples around the nose and around the mouth (the lower of the two) in the colour of the face's skin above them (rg chromaticity within 0.05 of the upper face's median; ISO/IEC 29794-5 face occlusion). A face mask or a phone over the lower face measures about 0.",
        message: |v, l| format!("The lower face looks covered (skin visible {:.0}%, at least {:.0}%); take off a face mask and keep your hands and phone away from your face.", v * 100.0, l * 100.0),
    },
    LimitDef {
        limit: Limit::MinImageBrightness,
        key: "min_image_brightness",
        env: "EKYC_MIN_IMAGE_BRIGHTNESS",
        default: 20.0,
        kind: check(Metric::ImageBrightness, Side::Min, ReasonCode::TooDark),
        doc: "Minimum mean luma (0-255) of the whole image.",
        message: |v, l| format!("The picture is too dark (brightness {v:.0}, minimum {l:.0})."),
    },
    LimitDef {
        limit: Limit::MaxImageBrightness,
        key: "max_image_brightness",
        env: "EKYC_MAX_IMAGE_BRIGHTNESS",
        default: 235.0,
        kind: check(Metric::ImageBrightness, Side::Max, ReasonCode::TooBright),
        doc: "Maximum mean luma (0-255) of the whole image.",
        message: |v, l| format!("The picture is overexposed (brightness {v:.0}, maximum {l:.0})."),
    },
    LimitDef {
        limit: Limit::MinSharpness,
        key: "min_sharpness",
        env: "EKYC_MIN_SHARPNESS",
        default: 40.0,
        kind: check(Metric::Sharpness, Side::Min, ReasonCode::Blurry),
        doc: "Minimum sharpness: variance of the Laplacian of the face crop resized to 112x112 grey.",
        message: |v, l| format!("The face is blurry (sharpness {v:.0}, minimum {l:.0}); hold still and focus."),
    },
    LimitDef {
        limit: Limit::MinFaceAreaRatio,
        key: "min_face_area_ratio",
        env: "EKYC_MIN_FACE_AREA_RATIO",
        default: 0.02,
        kind: check(Metric::FaceAreaRatio, Side::Min, ReasonCode::FaceTooSmall),
        doc: "Minimum face box area / image area.",
        message: |v, l| {
            format!(
                "The face covers {:.1}% of the image; move closer (at least {:.1}%).",
                v * 100.0,
                l * 100.0
            )
        },
    },
    LimitDef {
        limit: Limit::MinFaceHeightRatio,
        key: "min_face_height_ratio",
        env: "EKYC_MIN_FACE_HEIGHT_RATIO",
        default: 0.15,
        kind: check(Metric::FaceHeightRatio, Side::Min, ReasonCode::FaceTooSmall),
        doc: "Minimum face box height / image height (a selfie, not a full-body shot).",
        message: |v, l| {
            format!(
                "The face is {:.0}% of the picture's height; move closer (at least {:.0}%).",
                v * 100.0,
                l * 100.0
            )
        },
    },
    LimitDef {
        limit: Limit::MinEyeDistance,
        key: "min_eye_distance",
        env: "EKYC_MIN_EYE_DISTANCE",
        default: 28.0,
        kind: check(Metric::EyeDistancePx, Side::Min, ReasonCode::FaceTooSmall),
        doc: "Minimum distance between the eyes, in original-image pixels.",
        message: |v, l| format!("The eyes are {v:.0} px apart; the face needs more resolution (at least {l:.0} px)."),
    },
    LimitDef {
        limit: Limit::MultiFaceMinArea,
        key: "multi_face_min_area",
        env: "EKYC_MULTI_FACE_MIN_AREA",
        default: 0.1,
        kind: Kind::Parameter {
            code: ReasonCode::MultipleFaces,
        },
        doc: "Faces smaller than this fraction of the largest face's area are ignored by the multiple-faces check.",
        message: |v, _| format!("{v} faces were found; exactly one person must be in the picture."),
    },
    LimitDef {
        limit: Limit::MinFaceInside,
        key: "min_face_inside",
        env: "EKYC_MIN_FACE_INSIDE",
        default: 0.97,
        kind: check(Metric::FaceInsideRatio, Side::Min, ReasonCode::FaceCutOff),
        doc: "Minimum fraction of the face box (grown by 10 %) that must lie inside the image.",
        message: |v, _| {
            format!(
                "Only {:.0}% of the face is inside the picture; centre the whole face in the frame.",
                v * 100.0
            )
        },
    },
    LimitDef {
        limit: Limit::MaxRollDeg,
        key: "max_roll_deg",
        env: "EKYC_MAX_ROLL_DEG",
        default: 35.0,
        kind: check(Metric::RollDeg, Side::Max, ReasonCode::HeadRoll),
        doc: "Maximum absolute head roll (eye-line angle), degrees.",
        message: |v, l| {
            format!(
                "The head is tilted {:.0}° (maximum {l:.0}°); keep your head upright.",
                v.abs()
            )
        },
    },
    LimitDef {
        limit: Limit::MaxYaw,
        key: "max_yaw",
        env: "EKYC_MAX_YAW",
        default: 0.35,
        kind: check(Metric::Yaw, Side::Max, ReasonCode::HeadYaw),
        doc: "Maximum absolute yaw: nose-tip offset from the eye midpoint along the eye line / eye distance (0 = frontal).",
        message: |v, l| format!("The head is turned to the side (yaw {v:.2}, maximum {l:.2}); look straight at the camera."),
    },
    LimitDef {
        limit: Limit::MaxYawDeg,
        key: "max_yaw_deg",
        env: "EKYC_MAX_YAW_DEG",
        default: 28.0,
        kind: check(Metric::YawDeg, Side::Max, ReasonCode::HeadYaw),
        doc: "Maximum absolute head yaw from the face mesh, degrees (ISO/IEC 29794-5 head pose).",
        message: |v, l| {
            format!(
                "The head is turned {:.0}° to the side (maximum {l:.0}°); look straight at the camera.",
                v.abs()
            )
        },
    },
    LimitDef {
        limit: Limit::MaxPitchDeg,
        key: "max_pitch_deg",
        env: "EKYC_MAX_PITCH_DEG",
        default: 27.0,
        kind: check(Metric::PitchDeg, Side::Max, ReasonCode::HeadPitch),
        doc: "Maximum absolute head pitch from the face mesh, degrees (ISO/IEC 29794-5 head pose).",
        message: |v, l| {
            format!(
                "The head is tilted {:.0}° up or down (maximum {l:.0}°); hold the camera at eye level.",
                v.abs()
            )
        },
    },
    LimitDef {
        limit: Limit::MinEyesOpen,
        key: "min_eyes_open",
        env: "EKYC_MIN_EYES_OPEN",
        default: 0.2,
        kind: check(Metric::EyesOpen, Side::Min, ReasonCode::EyesClosed),
        doc: "Minimum eye openness (eyelid height / eye width of the less open eye; ISO/IEC 29794-5 eyes open).",
        message: |v, l| format!("The eyes look closed (openness {v:.2}, minimum {l:.2}); open your eyes and look at the camera."),
    },
];

/// The checks in reporting order; each group reports only its first failing check (a face that
/// is too small is reported once; the image's brightness only when the face's passes).
pub const GROUPS: [&[Limit]; 10] = [
    &[
        Limit::MinFaceAreaRatio,
        Limit::MinFaceHeightRatio,
        Limit::MinEyeDistance,
    ],
    &[Limit::MinFaceInside],
    &[
        Limit::MinFaceBrightness,
        Limit::MaxFaceBrightness,
        Limit::MaxFaceUnderexposed,
        Limit::MaxFaceOverexposed,
        Limit::MinImageBrightness,
        Limit::MaxImageBrightness,
    ],
    &[Limit::MinIlluminationUniformity],
    &[Limit::MinLowerFaceSkin],
    &[Limit::MinSharpness],
    &[Limit::MaxRollDeg],
    &[Limit::MaxYaw, Limit::MaxYawDeg],
    &[Limit::MaxPitchDeg],
    &[Limit::MinEyesOpen],
];

impl Limit {
    /// This limit's row of [`LIMITS`].
    pub fn def(self) -> &'static LimitDef {
        &LIMITS[self as usize]
    }
}

/// The value of every [`Limit`]; defaults from [`LIMITS`].
#[derive(Debug, Clone, PartialEq)]
pub struct QualityLimits([f32; LIMITS.len()]);

impl Default for QualityLimits {
    fn default() -> Self {
        QualityLimits(LIMITS.map(|d| d.default))
    }
}

impl QualityLimits {
    pub fn get(&self, l: Limit) -> f32 {
        self.0[l as usize]
    }

    pub fn set(&mut self, l: Limit, v: f32) {
        self.0[l as usize] = v;
    }

    /// Each limit's row and value, in table order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static LimitDef, f32)> + '_ {
        LIMITS.iter().zip(self.0.iter().copied())
    }
}

impl Serialize for QualityLimits {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(LIMITS.len()))?;
        for (d, v) in self.iter() {
            m.serialize_entry(d.key, &v)?;
        }
        m.end()
    }
}

/// Faces that count for the multiple-faces check (`faces` sorted by area, largest first).
pub fn significant_faces<'f>(faces: &'f [Face], limits: &QualityLimits) -> Vec<&'f Face> {
    let largest = faces.iter().map(|f| f.bbox.area()).fold(0.0f32, f32::max);
    let min_share = limits.get(Limit::MultiFaceMinArea);
    faces
        .iter()
        .filter(|f| f.bbox.area() >= min_share * largest)
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

/// The upper face, where exposure is measured: the middle 80 % of the face box's width, from 10 %
/// below its top down to the nose tip. Brows, eyes and cheeks; not the mouth and chin, which a
/// face mask, a beard or a dark scarf may cover without the face being badly lit.
pub fn upper_face(face: &Face, w: u32, h: u32) -> Rect {
    let b = &face.bbox;
    let top = b.y + 0.1 * b.height;
    let nose = face.keypoints[2].y.clamp(b.y, b.y + b.height);
    let bottom = nose.max(top + 0.2 * b.height);
    clip_rect(
        &BBox {
            x: b.x + 0.1 * b.width,
            y: top,
            width: 0.8 * b.width,
            height: bottom - top,
        },
        w,
        h,
    )
}

/// Default of [`Limit::MinIlluminationUniformity`] (docs/quality.md: set below the labelled
/// acceptable webcam captures).
const UNIFORMITY_DEFAULT: f32 = 0.15;

/// Bins of the halves' histograms for illumination uniformity (8 luma levels each: the halves
/// have a few hundred samples, and skin texture should not count as unevenness).
const UNIFORMITY_BINS: usize = 32;

/// Illumination uniformity of `upper` (the upper face), split into halves at `split_x` (the
/// nose tip; clamped so each half keeps at least a quarter): the intersection
/// `Σ min(p_left, p_right)` of the halves' normalised luma histograms, 0..1. `None` when a half
/// has no pixels.
pub fn illumination_uniformity(img: &RgbImage, upper: Rect, split_x: f32) -> Option<f32> {
    if upper.w < 4 || upper.h < 1 {
        return None;
    }
    let lo = upper.x + upper.w / 4;
    let hi = upper.x + upper.w - upper.w / 4;
    let split = (split_x.round().max(0.0) as u32).clamp(lo, hi);
    let left = Rect {
        x: upper.x,
        y: upper.y,
        w: split - upper.x,
        h: upper.h,
    };
    let right = Rect {
        x: split,
        y: upper.y,
        w: upper.x + upper.w - split,
        h: upper.h,
    };
    let binned = |r: Rect| {
        let hist = luma_histogram(img, r, 2_048);
        let mut bins = [0f64; UNIFORMITY_BINS];
        for (v, &c) in hist.iter().enumerate() {
            bins[v * UNIFORMITY_BINS / 256] += f64::from(c);
        }
        let n: f64 = bins.iter().sum();
        (n > 0.0).then(|| bins.map(|c| c / n))
    };
    let (l, r) = (binned(left)?, binned(right)?);
    Some(l.iter().zip(&r).map(|(a, b)| a.min(*b)).sum::<f64>() as f32)
}

/// Default of [`Limit::MinLowerFaceSkin`] (docs/quality.md: the labelled acceptable webcam
/// captures measure 0.180 and more, faces behind a mask 0.000, a phone over the mouth 0.012).
const LOWER_FACE_SKIN_DEFAULT: f32 = 0.08;

/// Distance in rg chromaticity (r = R/(R+G+B), g = G/(R+G+B)) within which a sample has the
/// face's skin colour. Chromaticity does not change with shading, so a shadowed cheek still
/// counts; a black, white or blue mask, a phone or a glove does not (their r is near 1/3 or
/// below, well under skin's).
const SKIN_CHROMA_TOLERANCE: f32 = 0.05;

/// Samples darker than this (luma) have no reliable colour: never skin, never the reference.
const SKIN_MIN_LUMA: f32 = 12.0;

/// Samples per side of each region's grid.
const SKIN_GRID: usize = 16;

/// Fewest reference samples with a colour for the measure to be made.
const SKIN_MIN_REFERENCE: usize = 16;

/// Face occlusion of the lower face (our measure for ISO/IEC 29794-5's face occlusion): the
/// face's own skin colour is the median rg chromaticity of the band from the forehead to just
/// under the eyes (no mask, beard or hand on the mouth covers it); then, for a band across the
/// nose tip and its wings and a band across the mouth, the share of samples within
/// [`SKIN_CHROMA_TOLERANCE`] of that colour. The lower of the two shares is returned, 0..1.
/// Regions are laid out in the frame of the eye line (so a rolled head is measured alike) in
/// units of the eye distance: reference u in [-0.6, 0.6], v in [-0.5, 0.1] from the eyes'
/// midpoint; nose u in [-0.45, 0.45], v in [-0.1, 0.15] from the nose tip; mouth u in
/// [-0.4, 0.4], v in [-0.12, 0.12] from the mouth centre (v grows towards the chin). A beard
/// lowers the mouth's share but not the nose's; a mask or a phone over the mouth takes one to
/// about 0. A hand is skin-coloured and is not detected. Greyscale images measure 1. `None` when
/// the eyes coincide, a region is outside the image or the reference is too dark to have a colour.
pub fn lower_face_skin(img: &RgbImage, face: &Face) -> Option<f32> {
    let k = &face.keypoints;
    let (re, le, nose, mouth) = (k[0], k[1], k[2], k[3]);
    let (dx, dy) = (le.x - re.x, le.y - re.y);
    let d = (dx * dx + dy * dy).sqrt();
    if d.is_nan() || d < 2.0 {
        return None;
    }
    let ex = (dx / d, dy / d);
    // Perpendicular to the eye line, pointing from the eyes towards the mouth.
    let mut ey = (-ex.1, ex.0);
    let towards_mouth = (mouth.x - re.x) * ey.0 + (mouth.y - re.y) * ey.1;
    if towards_mouth < 0.0 {
        ey = (-ey.0, -ey.1);
    }
    let (w, h) = (img.width() as f32, img.height() as f32);
    // The (r, g, luma) of each grid sample inside the image.
    let samples = |o: Point, u: (f32, f32), v: (f32, f32)| {
        let mut out = Vec::with_capacity(SKIN_GRID * SKIN_GRID);
        let n = SKIN_GRID as f32;
        for i in 0..SKIN_GRID {
            let uu = (u.0 + (u.1 - u.0) * (i as f32 + 0.5) / n) * d;
            for j in 0..SKIN_GRID {
                let vv = (v.0 + (v.1 - v.0) * (j as f32 + 0.5) / n) * d;
                let x = o.x + uu * ex.0 + vv * ey.0;
                let y = o.y + uu * ex.1 + vv * ey.1;
                let inside = x >= 0.0 && y >= 0.0 && x < w && y < h;
                if !inside {
                    continue;
                }
                let p = img.get_pixel(x as u32, y as u32).0;
                let (r, g, b) = (f32::from(p[0]), f32::from(p[1]), f32::from(p[2]));
                let sum = (r + g + b).max(1.0);
                out.push((r / sum, g / sum, 0.299 * r + 0.587 * g + 0.114 * b));
            }
        }
        out
    };
    let mid = Point {
        x: (re.x + le.x) / 2.0,
        y: (re.y + le.y) / 2.0,
    };
    let reference: Vec<(f32, f32, f32)> = samples(mid, (-0.6, 0.6), (-0.5, 0.1))
        .into_iter()
        .filter(|s| s.2 >= SKIN_MIN_LUMA)
        .collect();
    if reference.len() < SKIN_MIN_REFERENCE {
        return None;
    }
    let median = |mut v: Vec<f32>| {
        v.sort_by(f32::total_cmp);
        v[v.len() / 2]
    };
    let skin_r = median(reference.iter().map(|s| s.0).collect());
    let skin_g = median(reference.iter().map(|s| s.1).collect());
    let share = |region: Vec<(f32, f32, f32)>| {
        if region.is_empty() {
            return None;
        }
        let skin = region
            .iter()
            .filter(|s| {
                s.2 >= SKIN_MIN_LUMA && (s.0 - skin_r).hypot(s.1 - skin_g) < SKIN_CHROMA_TOLERANCE
            })
            .count();
        Some(skin as f32 / region.len() as f32)
    };
    let nose_share = share(samples(nose, (-0.45, 0.45), (-0.1, 0.15)))?;
    let mouth_share = share(samples(mouth, (-0.4, 0.4), (-0.12, 0.12)))?;
    Some(nose_share.min(mouth_share))
}

/// Exposure of a region from its luma histogram (ISO/IEC 29794-5's under-/over-exposure and
/// dynamic range, computed on luma as this gate defines them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exposure {
    pub mean: f32,
    pub underexposed: f32,
    pub overexposed: f32,
    pub entropy_bits: f32,
}

impl Exposure {
    pub fn of(hist: &[u32; 256]) -> Exposure {
        let n: u64 = hist.iter().map(|&c| u64::from(c)).sum();
        if n == 0 {
            return Exposure {
                mean: 0.0,
                underexposed: 0.0,
                overexposed: 0.0,
                entropy_bits: 0.0,
            };
        }
        let nf = n as f64;
        let share = |pred: &dyn Fn(f32) -> bool| {
            let c: u64 = (0..256)
                .filter(|&v| pred(v as f32))
                .map(|v| u64::from(hist[v]))
                .sum();
            (c as f64 / nf) as f32
        };
        let mean = (0..256).map(|v| v as f64 * f64::from(hist[v])).sum::<f64>() / nf;
        let entropy = hist
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = f64::from(c) / nf;
                -p * p.log2()
            })
            .sum::<f64>();
        Exposure {
            mean: mean as f32,
            underexposed: share(&|v| v < UNDEREXPOSED_LUMA),
            overexposed: share(&|v| v >= OVEREXPOSED_LUMA),
            entropy_bits: entropy as f32,
        }
    }
}

/// Measure every metric. `faces` are in `img` coordinates, largest first; `to_original` converts
/// `img` pixels to original-image pixels (reduced-scale decode). Without a face only the image's
/// brightness is measured.
pub fn measure(
    img: &RgbImage,
    faces: &[Face],
    to_original: f32,
    limits: &QualityLimits,
    landmarks: Option<&FaceLandmarks>,
) -> QualityScores {
    let (w, h) = (img.width(), img.height());
    let mut q = QualityScores {
        faces: significant_faces(faces, limits).len(),
        image_brightness: mean_luma(img, Rect { x: 0, y: 0, w, h }, 16_384),
        ..QualityScores::default()
    };
    let Some(face) = faces.first() else {
        return q;
    };
    // Size.
    q.face_area_ratio = Some(face.bbox.area() / (w as f32 * h as f32));
    q.face_height_ratio = Some(face.bbox.height / h as f32);
    q.eye_distance_px = Some(face.eye_distance() * to_original);

    // Cut off: the face box grown by 10 % must lie (almost) inside the image.
    let g = BBox {
        x: face.bbox.x - face.bbox.width * 0.05,
        y: face.bbox.y - face.bbox.height * 0.05,
        width: face.bbox.width * 1.1,
        height: face.bbox.height * 1.1,
    };
    let inside = clip_rect(&g, w, h);
    let inside_ratio = (inside.w as f32 * inside.h as f32) / g.area().max(1.0);
    q.face_inside_ratio = Some(inside_ratio.min(1.0));

    // Exposure on the upper face; sharpness (at a fixed size) on the whole face box.
    let face_rect = clip_rect(&face.bbox, w, h);
    let upper = upper_face(face, w, h);
    let exposure = Exposure::of(&luma_histogram(img, upper, 4_096));
    q.face_brightness = Some(exposure.mean);
    q.face_underexposed = Some(exposure.underexposed);
    q.face_overexposed = Some(exposure.overexposed);
    q.face_dynamic_range = Some(exposure.entropy_bits);
    q.illumination_uniformity = illumination_uniformity(img, upper, face.keypoints[2].x);
    q.lower_face_skin = lower_face_skin(img, face);
    if face_rect.w >= 2 && face_rect.h >= 2 {
        let grey = grey_square(img, face_rect, SHARPNESS_SIZE);
        q.sharpness = Some(laplacian_variance(&grey, SHARPNESS_SIZE as usize));
    }

    // Pose: roll from the eye line; yaw from the nose tip's offset from the eye midpoint, measured
    // along the eye line and divided by the eye distance (0 = frontal, ±0.5 ≈ nose above one eye).
    let k = &face.keypoints;
    let (re, le, nose) = (k[0], k[1], k[2]);
    let (dx, dy) = (le.x - re.x, le.y - re.y);
    let eye_d = (dx * dx + dy * dy).sqrt();
    q.roll_deg = Some(dy.atan2(dx).to_degrees());
    q.yaw = Some(if eye_d > 0.0 {
        let (mx, my) = ((re.x + le.x) / 2.0, (re.y + le.y) / 2.0);
        ((nose.x - mx) * dx + (nose.y - my) * dy) / (eye_d * eye_d)
    } else {
        0.0
    });
    if let Some(l) = landmarks {
        q.yaw_deg = Some(l.yaw_deg);
        q.pitch_deg = Some(l.pitch_deg);
        q.eyes_open = l.eyes_open;
    }
    q
}

/// The failure of one check, if it fails (or `None` when it passes or was not measured).
pub fn check_limit(d: &LimitDef, value: f32, q: &QualityScores) -> Option<Reason> {
    let Kind::Check { metric, side, code } = d.kind else {
        return None;
    };
    let score = metric.get(q)?;
    let c = metric.compared(score);
    let fails = match side {
        Side::Min => c < value,
        Side::Max => c > value,
    };
    fails.then(|| Reason {
        code,
        message: (d.message)(score, value),
        score: Some(score),
        limit: Some(value),
        metric: Some(metric.name()),
    })
}

/// Measure and check: every failing reason at once (see [`GROUPS`]).
pub fn gate(
    img: &RgbImage,
    faces: &[Face],
    to_original: f32,
    limits: &QualityLimits,
    landmarks: Option<&FaceLandmarks>,
) -> QualityReport {
    let scores = measure(img, faces, to_original, limits, landmarks);
    let mut reasons = Vec::new();
    if faces.is_empty() {
        reasons.push(Reason {
            code: ReasonCode::NoFace,
            message: "No face was found in the image.".into(),
            score: None,
            limit: None,
            metric: None,
        });
    } else if scores.faces > 1 {
        let d = Limit::MultiFaceMinArea.def();
        reasons.push(Reason {
            code: ReasonCode::MultipleFaces,
            message: (d.message)(scores.faces as f32, 1.0),
            score: Some(scores.faces as f32),
            limit: Some(1.0),
            metric: Some("faces"),
        });
    }
    for group in GROUPS {
        if let Some(r) = group
            .iter()
            .find_map(|&l| check_limit(l.def(), limits.get(l), &scores))
        {
            reasons.push(r);
        }
    }
    QualityReport { reasons, scores }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Point;
    use image::Rgb;

    #[test]
    fn table_rows_are_in_enum_order_and_unique() {
        let mut keys = std::collections::HashSet::new();
        for (i, d) in LIMITS.iter().enumerate() {
            assert_eq!(d.limit as usize, i, "{} is out of order", d.key);
            assert!(keys.insert(d.key), "duplicate key {}", d.key);
            assert_eq!(d.env, format!("EKYC_{}", d.key.to_uppercase()));
        }
        // Every check appears in exactly one group.
        let grouped: Vec<Limit> = GROUPS.iter().flat_map(|g| g.iter().copied()).collect();
        for d in &LIMITS {
            let n = grouped.iter().filter(|l| **l == d.limit).count();
            let expected = usize::from(matches!(d.kind, Kind::Check { .. }));
            assert_eq!(n, expected, "{}", d.key);
        }
    }

    #[test]
    fn exposure_from_a_histogram_by_hand() {
        let mut h = [0u32; 256];
        // Half the pixels at 10 (under-exposed), a quarter at 100, a quarter at 250 (over).
        h[10] = 2;
        h[100] = 1;
        h[250] = 1;
        let e = Exposure::of(&h);
        assert!((e.mean - 92.5).abs() < 1e-4, "{e:?}");
        assert!((e.underexposed - 0.5).abs() < 1e-6);
        assert!((e.overexposed - 0.25).abs() < 1e-6);
        // Entropy of (1/2, 1/4, 1/4) = 1.5 bits.
        assert!((e.entropy_bits - 1.5).abs() < 1e-6);
        // The thresholds: 24 is under, 25 is not; 246 is not over, 247 is.
        let mut h = [0u32; 256];
        h[24] = 1;
        h[25] = 1;
        h[246] = 1;
        h[247] = 1;
        let e = Exposure::of(&h);
        assert_eq!((e.underexposed, e.overexposed), (0.25, 0.25));
        assert_eq!(Exposure::of(&[0; 256]).entropy_bits, 0.0);
    }

    #[test]
    fn a_dark_lower_face_does_not_darken_the_upper_face() {
        // A mid-grey face whose lower half (below the nose) is black, as with a black face mask.
        let f = face(100.0, 100.0, 200.0);
        let mut img = grey(400, 400, 120);
        let nose_y = f.keypoints[2].y as u32;
        for y in nose_y..300 {
            for x in 100..300 {
                img.put_pixel(x, y, Rgb([5, 5, 5]));
            }
        }
        let r = upper_face(&f, 400, 400);
        assert!(r.y + r.h <= nose_y + 1 && r.y >= 120, "{r:?}");
        let q = measure(&img, &[f], 1.0, &QualityLimits::default(), None);
        assert_eq!(q.face_underexposed, Some(0.0));
        assert!((q.face_brightness.unwrap_or(0.0) - 120.0).abs() < 1.0);
        let report = gate(
            &img,
            &[face(100.0, 100.0, 200.0)],
            1.0,
            &QualityLimits::default(),
            None,
        );
        assert!(
            !report.reasons.iter().any(|r| r.code == ReasonCode::TooDark),
            "{:?}",
            report.reasons
        );
    }

    #[test]
    fn a_mask_over_the_lower_face_is_not_skin() {
        // Face box (100,100) size 200: eyes at y 180 (x 160, 240; distance 80), nose tip
        // (200, 220), mouth (200, 260).
        let f = face(100.0, 100.0, 200.0);
        let skin = Rgb([200, 140, 110]);
        // A skin-coloured face, shaded darker towards the chin: chromaticity, not luma, counts.
        let mut img = RgbImage::from_fn(400, 400, |_, y| {
            let k = if y > 200 { 0.6 } else { 1.0 };
            Rgb(skin.0.map(|c| (f32::from(c) * k) as u8))
        });
        let open = lower_face_skin(&img, &f).unwrap_or(0.0);
        assert!(open > 0.99, "{open}");
        // A white mask from just under the eyes (y 200) down: the nose and mouth bands are white.
        for y in 200..320 {
            for x in 110..290 {
                img.put_pixel(x, y, Rgb([235, 235, 240]));
            }
        }
        assert_eq!(lower_face_skin(&img, &f), Some(0.0));
        let report = gate(
            &img,
            std::slice::from_ref(&f),
            1.0,
            &QualityLimits::default(),
            None,
        );
        let codes: Vec<ReasonCode> = report.reasons.iter().map(|r| r.code).collect();
        assert!(codes.contains(&ReasonCode::FaceOccluded), "{codes:?}");
        assert!(!codes.contains(&ReasonCode::TooDark), "{codes:?}");
        // Only the mouth covered (a phone): the lower of the two shares counts.
        let mut phone = RgbImage::from_pixel(400, 400, skin);
        for y in 248..275 {
            for x in 160..240 {
                phone.put_pixel(x, y, Rgb([20, 20, 24]));
            }
        }
        let s = lower_face_skin(&phone, &f).unwrap_or(1.0);
        assert!(s < 0.05, "{s}");
        // Greyscale: every sample has the reference's (neutral) colour.
        assert_eq!(lower_face_skin(&grey(400, 400, 120), &f), Some(1.0));
        // Degenerate: coinciding eyes, or a reference too dark to have a colour.
        let mut blind = f.clone();
        blind.keypoints[1] = blind.keypoints[0];
        assert_eq!(lower_face_skin(&img, &blind), None);
        assert_eq!(lower_face_skin(&grey(400, 400, 5), &f), None);
    }

    #[test]
    fn a_face_lit_from_one_side_is_not_uniform() {
        let f = face(100.0, 100.0, 200.0);
        let r = upper_face(&f, 400, 400);
        let nose_x = f.keypoints[2].x;
        // Evenly lit (a gradient from top to bottom, the same on both sides): 1.
        let mut even = grey(400, 400, 0);
        for (_, y, p) in even.enumerate_pixels_mut() {
            let v = (60 + y / 4) as u8;
            *p = Rgb([v, v, v]);
        }
        let u = illumination_uniformity(&even, r, nose_x).unwrap_or(0.0);
        assert!(u > 0.99, "{u}");
        // Left half at luma 40, right half at 160: no overlap at all.
        let mut split = grey(400, 400, 160);
        for y in 0..400 {
            for x in 0..nose_x as u32 {
                split.put_pixel(x, y, Rgb([40, 40, 40]));
            }
        }
        let u = illumination_uniformity(&split, r, nose_x).unwrap_or(1.0);
        assert!(u < 0.01, "{u}");
        // The split stays inside the middle half of the region, so a nose tip far outside
        // still leaves both halves measurable; an empty region is not measured.
        assert!(illumination_uniformity(&even, r, -500.0).is_some());
        let empty = Rect {
            x: 0,
            y: 0,
            w: 0,
            h: 0,
        };
        assert_eq!(illumination_uniformity(&even, empty, 0.0), None);
        let q = measure(&split, &[f], 1.0, &QualityLimits::default(), None);
        assert!(q.illumination_uniformity.unwrap_or(1.0) < 0.01);
    }

    #[test]
    fn reason_codes_serialise_as_their_str() {
        for c in ReasonCode::ALL {
            let json = serde_json::to_value(c).expect("serialise");
            assert_eq!(json, serde_json::Value::String(c.as_str().into()));
        }
    }

    fn grey(w: u32, h: u32, v: u8) -> RgbImage {
        RgbImage::from_pixel(w, h, Rgb([v, v, v]))
    }

    /// A checkerboard (sharp) image.
    fn board(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let v = if (x / 4 + y / 4) % 2 == 0 { 60 } else { 200 };
            Rgb([v, v, v])
        })
    }

    /// A frontal face box with eyes level, nose centred.
    fn face(x: f32, y: f32, size: f32) -> Face {
        let p = |fx: f32, fy: f32| Point {
            x: x + fx * size,
            y: y + fy * size,
        };
        Face {
            bbox: BBox {
                x,
                y,
                width: size,
                height: size,
            },
            score: 0.9,
            keypoints: [
                p(0.3, 0.4),
                p(0.7, 0.4),
                p(0.5, 0.6),
                p(0.5, 0.8),
                p(0.1, 0.45),
                p(0.9, 0.45),
            ],
        }
    }

    fn codes(r: &QualityReport) -> Vec<ReasonCode> {
        r.reasons.iter().map(|r| r.code).collect()
    }

    #[test]
    fn a_good_capture_passes() {
        let img = board(400, 400);
        let r = gate(
            &img,
            &[face(100.0, 100.0, 200.0)],
            1.0,
            &QualityLimits::default(),
            None,
        );
        assert_eq!(codes(&r), vec![], "{:?}", r.reasons);
        assert_eq!(r.scores.faces, 1);
        assert!((r.scores.face_area_ratio.unwrap_or(0.0) - 0.25).abs() < 1e-6);
        assert!(r.scores.roll_deg.unwrap_or(1.0).abs() < 1e-4);
        assert!(r.scores.yaw.unwrap_or(1.0).abs() < 1e-4);
    }

    #[test]
    fn no_face_reports_no_face_and_image_brightness_only() {
        let r = gate(
            &grey(100, 100, 10),
            &[],
            1.0,
            &QualityLimits::default(),
            None,
        );
        assert_eq!(codes(&r), vec![ReasonCode::NoFace, ReasonCode::TooDark]);
        assert_eq!(r.reasons[1].metric, Some("image_brightness"));
        assert_eq!(r.scores.face_brightness, None);
    }

    #[test]
    fn too_small_is_reported_once_and_flat_face_is_blurry() {
        // 10x10 face in 400x400: area, height and eye distance all fail; only the first is reported.
        let r = gate(
            &grey(400, 400, 128),
            &[face(100.0, 100.0, 10.0)],
            1.0,
            &QualityLimits::default(),
            None,
        );
        assert_eq!(
            codes(&r),
            vec![ReasonCode::FaceTooSmall, ReasonCode::Blurry]
        );
        assert_eq!(r.reasons[0].metric, Some("face_area_ratio"));
    }

    #[test]
    fn brightness_of_the_image_is_checked_only_when_the_face_passes() {
        let mut img = grey(400, 400, 250);
        let f = face(100.0, 100.0, 200.0);
        let r = gate(
            &img,
            std::slice::from_ref(&f),
            1.0,
            &QualityLimits::default(),
            None,
        );
        assert!(codes(&r).contains(&ReasonCode::TooBright));
        assert_eq!(
            r.reasons
                .iter()
                .filter(|r| r.code == ReasonCode::TooBright)
                .count(),
            1
        );
        assert_eq!(r.reasons[0].metric, Some("face_brightness"));
        // A normal face in an overexposed picture: the image's brightness is reported.
        for (x, y, p) in img.enumerate_pixels_mut() {
            if (100..300).contains(&x) && (100..300).contains(&y) {
                *p = Rgb([128, 128, 128]);
            }
        }
        let mut limits = QualityLimits::default();
        limits.set(Limit::MaxImageBrightness, 150.0);
        let r = gate(&img, &[f], 1.0, &limits, None);
        let bright: Vec<_> = r
            .reasons
            .iter()
            .filter(|r| r.code == ReasonCode::TooBright)
            .collect();
        assert_eq!(bright.len(), 1);
        assert_eq!(bright[0].metric, Some("image_brightness"));
    }

    #[test]
    fn cut_off_rolled_and_turned_faces() {
        let img = board(400, 400);
        let mut f = face(300.0, 100.0, 200.0); // half outside on the right
        let r = gate(
            &img,
            std::slice::from_ref(&f),
            1.0,
            &QualityLimits::default(),
            None,
        );
        assert!(codes(&r).contains(&ReasonCode::FaceCutOff));
        // Roll 45°: left eye 0.4·size lower than the right.
        f = face(100.0, 100.0, 200.0);
        f.keypoints[1].y += 80.0;
        let r = gate(&img, &[f], 1.0, &QualityLimits::default(), None);
        let roll = r.reasons.iter().find(|r| r.code == ReasonCode::HeadRoll);
        assert!(roll.is_some_and(|r| (r.score.unwrap_or(0.0) - 45.0).abs() < 0.01));
        // Nose above the left eye: yaw 0.5.
        let mut f = face(100.0, 100.0, 200.0);
        f.keypoints[2].x = f.keypoints[1].x;
        let r = gate(&img, &[f], 1.0, &QualityLimits::default(), None);
        let yaw = r.reasons.iter().find(|r| r.code == ReasonCode::HeadYaw);
        assert!(yaw.is_some_and(|r| (r.score.unwrap_or(0.0) - 0.5).abs() < 1e-4));
    }

    #[test]
    fn two_similar_faces_are_multiple_a_tiny_one_is_not() {
        let img = board(800, 400);
        let limits = QualityLimits::default();
        let two = [face(50.0, 100.0, 200.0), face(450.0, 100.0, 190.0)];
        let r = gate(&img, &two, 1.0, &limits, None);
        assert_eq!(r.reasons[0].code, ReasonCode::MultipleFaces);
        assert_eq!(r.reasons[0].score, Some(2.0));
        let small = [face(50.0, 100.0, 200.0), face(450.0, 100.0, 20.0)];
        assert_eq!(gate(&img, &small, 1.0, &limits, None).scores.faces, 1);
    }

    #[test]
    fn eye_distance_uses_original_pixels() {
        let img = board(400, 400);
        let f = face(100.0, 100.0, 200.0); // eyes 80 px apart in the decoded image
        let q = measure(&img, &[f], 2.0, &QualityLimits::default(), None);
        assert_eq!(q.eye_distance_px, Some(160.0));
    }
}
