//! `models/manifest.toml`: what each model is, where it comes from, how to feed it, how to read it.

use crate::ModelError;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The parsed manifest.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Manifest {
    #[serde(rename = "model")]
    pub models: Vec<ModelEntry>,
    /// Score calibrations fitted for particular ensembles (`[[calibration]]`).
    #[serde(rename = "calibration", default, skip_serializing_if = "Vec::is_empty")]
    pub calibrations: Vec<CalibrationEntry>,
}

/// A liveness-score calibration fitted for one ensemble by `ekyc calibrate --platt`: Platt
/// scaling of the fused score, `calibrated = sigmoid(a * logit(raw) + b)`. The pipeline uses the
/// entry whose models (any order) and fusion are exactly the active ensemble's.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CalibrationEntry {
    /// The liveness models of the ensemble.
    pub models: Vec<String>,
    /// `"mean_probability"` or `"mean_logit"`.
    pub fusion: String,
    /// `[a, b]`.
    pub platt: [f64; 2],
    /// What it was fitted on (data, counts, command).
    #[serde(default)]
    pub notes: String,
}

impl CalibrationEntry {
    /// Whether this entry was fitted for the ensemble of `models` fused by `fusion`.
    pub fn fits(&self, models: &[&str], fusion: &str) -> bool {
        let mut a: Vec<&str> = self.models.iter().map(String::as_str).collect();
        let mut b: Vec<&str> = models.to_vec();
        a.sort_unstable();
        b.sort_unstable();
        self.fusion == fusion && a == b
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Detector,
    Liveness,
    /// Face or eye landmarks for the quality gate (pose, eyes open).
    Landmarks,
    /// A face embedding (identity across the frames of a capture session, face match).
    Embedding,
}

/// One model.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    pub name: String,
    pub role: Role,
    #[serde(default)]
    pub default: bool,
    pub file: String,
    pub sha256: String,
    #[serde(default)]
    pub mirror_path: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub recipe: String,
    #[serde(default)]
    pub license: String,
    #[serde(default)]
    pub sources: Vec<String>,
    #[serde(default)]
    pub notes: String,
    /// A stand-in with random weights (format and speed tests only): never a candidate when
    /// ensembles are measured, never part of the default set.
    #[serde(default)]
    pub stand_in: bool,
    pub input: InputSpec,
    #[serde(default)]
    pub detector: Option<DetectorSpec>,
    #[serde(default)]
    pub liveness: Option<LivenessSpec>,
    #[serde(default)]
    pub landmarks: Option<LandmarkSpec>,
    #[serde(default)]
    pub embedding: Option<EmbeddingSpec>,
}

/// Where one detector keypoint goes in the aligned crop.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TemplatePoint {
    /// Index into the detector's keypoints (0 right eye, 1 left eye, 2 nose tip, 3 mouth centre).
    pub keypoint: usize,
    /// Position in the model's input pixels.
    pub x: f32,
    pub y: f32,
}

/// A face-embedding model: the face is aligned by the similarity transform (rotation, uniform
/// scale, translation; least squares) that takes the detector's keypoints onto `template`, and the
/// first output's `dims` values, L2-normalised, are the embedding (compared by cosine).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingSpec {
    pub dims: usize,
    pub template: Vec<TemplatePoint>,
    /// The cosine similarity at or above which two faces are the same person (selfie against
    /// document), calibrated with `ekyc calibrate-match`; none: the model is not used for face
    /// match unless a threshold is configured.
    #[serde(default)]
    pub match_threshold: Option<f32>,
}

/// What a landmark model locates.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LandmarkKind {
    /// A face mesh on a square crop `crop_scale` × the face box's long side, rotated so the
    /// detector's eyes are level. Needs `eye_corners` and `pose`.
    FaceMesh,
    /// One eye's contour on a square crop `crop_scale` × the distance between the eye's corners
    /// (from the face mesh), levelled; the model takes the subject's left eye and the other is
    /// mirrored. The first `lid_points` points are the eyelids.
    EyeContour,
}

/// Mesh point indices for the head pose: the face plane's normal is the cross product of
/// `left → right` and `top → bottom` (3-D mesh coordinates).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PosePoints {
    pub left: usize,
    pub right: usize,
    pub top: usize,
    pub bottom: usize,
}

/// A landmark model: where its crop comes from and what its outputs mean.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LandmarkSpec {
    pub kind: LandmarkKind,
    pub crop_scale: f32,
    /// Points in the first output (x, y, z each, in input pixels).
    pub points: usize,
    /// Face mesh: the output holding the face-presence logit, if any.
    #[serde(default)]
    pub presence_output: Option<usize>,
    /// Face mesh: each eye's two corner points, the eye on the image's left first.
    #[serde(default)]
    pub eye_corners: Vec<[usize; 2]>,
    /// Face mesh: the points of the head pose.
    #[serde(default)]
    pub pose: Option<PosePoints>,
    /// Eye contour: the first `lid_points` points trace the eyelids.
    #[serde(default)]
    pub lid_points: usize,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
pub enum Layout {
    NCHW,
    NHWC,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
pub enum ColorOrder {
    RGB,
    BGR,
}

/// How to turn pixels into the model's input tensor.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub width: u32,
    pub height: u32,
    pub layout: Layout,
    pub color: ColorOrder,
    /// Per channel, in the model's channel order, in 0..255 units: tensor = (pixel - mean) / std.
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl InputSpec {
    /// The input tensor's shape (batch 1, three channels) in this spec's layout.
    pub fn tensor_shape(&self) -> [usize; 4] {
        let (w, h) = (self.width as usize, self.height as usize);
        match self.layout {
            Layout::NCHW => [1, 3, h, w],
            Layout::NHWC => [1, h, w, 3],
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorLayer {
    pub stride: u32,
    pub per_cell: u32,
}

/// SSD-style (BlazeFace) detector head.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorSpec {
    pub anchors: Vec<AnchorLayer>,
    pub min_score: f32,
    pub nms_iou: f32,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// N logits → softmax; the probability of class `live_index` is the live score.
    Softmax,
    /// One logit; sigmoid = probability of spoof; live score = 1 - p.
    SigmoidSpoof,
    /// One logit; sigmoid = probability of live.
    SigmoidLive,
}

/// Which part of the image a liveness model sees.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Region {
    /// The minivision crop: `crop_scale` times the face box, shifted inside the image.
    #[default]
    FaceCrop,
    /// The whole image, resized to the input size (which may be non-square, e.g. 60×80); the
    /// face box is not used and `crop_scale` must be 0 or absent.
    WholeFrame,
}

/// Liveness classifier on a face crop or the whole frame.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LivenessSpec {
    #[serde(default)]
    pub region: Region,
    #[serde(default)]
    pub crop_scale: f32,
    pub output: OutputKind,
    #[serde(default)]
    pub live_index: usize,
    pub weight: f32,
}

impl Manifest {
    pub fn from_toml(text: &str, origin: &str) -> Result<Manifest, ModelError> {
        let m: Manifest = toml::from_str(text).map_err(|e| ModelError::Manifest {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        m.validate(origin)?;
        Ok(m)
    }

    pub fn load(path: &Path) -> Result<Manifest, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        Manifest::from_toml(&text, &path.display().to_string())
    }

    fn validate(&self, origin: &str) -> Result<(), ModelError> {
        let bad = |message: String| ModelError::Manifest {
            path: origin.to_string(),
            message,
        };
        let mut names = std::collections::HashSet::new();
        for m in &self.models {
            if !names.insert(m.name.as_str()) {
                return Err(bad(format!("duplicate model name {}", m.name)));
            }
            if m.sha256.len() != 64 || !m.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(format!(
                    "model {}: sha256 must be 64 hex digits",
                    m.name
                )));
            }
            if m.file.contains('/') || m.file.contains("..") || m.file.is_empty() {
                return Err(bad(format!(
                    "model {}: file must be a plain file name",
                    m.name
                )));
            }
            if m.stand_in && m.default {
                return Err(bad(format!(
                    "model {}: a stand-in cannot be in the default set",
                    m.name
                )));
            }
            if m.input.width == 0 || m.input.height == 0 || m.input.std.contains(&0.0) {
                return Err(bad(format!(
                    "model {}: input size and std must be non-zero",
                    m.name
                )));
            }
            match m.role {
                Role::Detector => {
                    let d = m.detector.as_ref().ok_or_else(|| {
                        bad(format!(
                            "model {}: role detector needs [model.detector]",
                            m.name
                        ))
                    })?;
                    if d.anchors.is_empty()
                        || d.anchors.iter().any(|a| a.stride == 0 || a.per_cell == 0)
                    {
                        return Err(bad(format!(
                            "model {}: anchors must be non-empty and non-zero",
                            m.name
                        )));
                    }
                }
                Role::Landmarks => {
                    let l = m.landmarks.as_ref().ok_or_else(|| {
                        bad(format!(
                            "model {}: role landmarks needs [model.landmarks]",
                            m.name
                        ))
                    })?;
                    let in_range = |i: usize| i < l.points;
                    let ok = l.crop_scale.is_finite()
                        && l.crop_scale > 0.0
                        && l.points > 0
                        && match l.kind {
                            LandmarkKind::FaceMesh => {
                                l.eye_corners.len() == 2
                                    && l.eye_corners.iter().flatten().all(|&i| in_range(i))
                                    && l.pose.is_some_and(|p| {
                                        [p.left, p.right, p.top, p.bottom].into_iter().all(in_range)
                                    })
                            }
                            LandmarkKind::EyeContour => {
                                l.lid_points >= 3 && l.lid_points <= l.points
                            }
                        };
                    if !ok {
                        return Err(bad(format!(
                            "model {}: landmarks need crop_scale > 0 and point indices below points (face_mesh: two eye_corners and pose; eye_contour: lid_points >= 3)",
                            m.name
                        )));
                    }
                }
                Role::Embedding => {
                    let e = m.embedding.as_ref().ok_or_else(|| {
                        bad(format!(
                            "model {}: role embedding needs [model.embedding]",
                            m.name
                        ))
                    })?;
                    let points_ok = e.template.len() >= 2
                        && e.template.iter().all(|t| {
                            t.keypoint < 6
                                && t.x.is_finite()
                                && t.y.is_finite()
                                && (0.0..=m.input.width as f32).contains(&t.x)
                                && (0.0..=m.input.height as f32).contains(&t.y)
                        });
                    if e.dims == 0 || !points_ok || m.input.width != m.input.height {
                        return Err(bad(format!(
                            "model {}: an embedding needs dims > 0, a square input and at least two template points (keypoint 0-5) inside it",
                            m.name
                        )));
                    }
                }
                Role::Liveness => {
                    let l = m.liveness.as_ref().ok_or_else(|| {
                        bad(format!(
                            "model {}: role liveness needs [model.liveness]",
                            m.name
                        ))
                    })?;
                    if !(l.weight.is_finite() && l.weight > 0.0) {
                        return Err(bad(format!("model {}: weight must be > 0", m.name)));
                    }
                    let crop_ok = match l.region {
                        Region::FaceCrop => l.crop_scale.is_finite() && l.crop_scale > 0.0,
                        Region::WholeFrame => l.crop_scale == 0.0,
                    };
                    if !crop_ok {
                        return Err(bad(format!(
                            "model {}: region face_crop needs crop_scale > 0; whole_frame takes none",
                            m.name
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&ModelEntry> {
        self.models.iter().find(|m| m.name == name)
    }

    /// The active models of a role: the named ones in the given order, or the manifest's defaults.
    pub fn select(&self, role: Role, names: &[String]) -> Result<Vec<&ModelEntry>, ModelError> {
        if names.is_empty() {
            return Ok(self
                .models
                .iter()
                .filter(|m| m.role == role && m.default)
                .collect());
        }
        names
            .iter()
            .map(|n| {
                let m = self.get(n).ok_or_else(|| ModelError::Unknown(n.clone()))?;
                if m.role != role {
                    return Err(ModelError::Manifest {
                        path: "manifest".into(),
                        message: format!("model {n} has role {:?}, not {role:?}", m.role),
                    });
                }
                Ok(m)
            })
            .collect()
    }
}

/// Hex sha256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// Check bytes against the manifest's sha256; `origin` names where they came from.
pub fn verify_bytes(e: &ModelEntry, bytes: &[u8], origin: &str) -> Result<(), ModelError> {
    let actual = sha256_hex(bytes);
    if actual.eq_ignore_ascii_case(&e.sha256) {
        Ok(())
    } else {
        Err(ModelError::HashMismatch {
            name: e.name.clone(),
            origin: format!("{origin}/{}", e.file),
            expected: e.sha256.clone(),
            actual,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(layout: Layout) -> InputSpec {
        InputSpec {
            width: 80,
            height: 60,
            layout,
            color: ColorOrder::RGB,
            mean: [0.0; 3],
            std: [1.0; 3],
        }
    }

    #[test]
    fn tensor_shape_follows_layout() {
        assert_eq!(spec(Layout::NCHW).tensor_shape(), [1, 3, 60, 80]);
        assert_eq!(spec(Layout::NHWC).tensor_shape(), [1, 60, 80, 3]);
    }

    #[test]
    fn sha256_of_empty_input() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn manifest_rejects_path_like_file_names() {
        let text = r#"
[[model]]
name = "m"
role = "liveness"
file = "../m.onnx"
sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
input = { width = 80, height = 80, layout = "NCHW", color = "BGR", mean = [0.0, 0.0, 0.0], std = [1.0, 1.0, 1.0] }
liveness = { crop_scale = 2.7, output = "softmax", live_index = 1, weight = 1.0 }
"#;
        let err = Manifest::from_toml(text, "test").unwrap_err();
        assert_eq!(err.code(), "MODEL_MANIFEST");
        assert!(Manifest::from_toml(&text.replace("../m.onnx", "m.onnx"), "test").is_ok());
    }

    #[test]
    fn region_and_crop_scale_must_agree() {
        let text = |liveness: &str| {
            format!(
                r#"
[[model]]
name = "m"
role = "liveness"
file = "m.onnx"
sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
input = {{ width = 60, height = 80, layout = "NCHW", color = "BGR", mean = [0.0, 0.0, 0.0], std = [1.0, 1.0, 1.0] }}
liveness = {{ {liveness}, output = "softmax", live_index = 1, weight = 1.0 }}
"#
            )
        };
        let whole = Manifest::from_toml(&text(r#"region = "whole_frame""#), "t").unwrap();
        let l = whole.models[0].liveness.as_ref().unwrap();
        assert_eq!(l.region, Region::WholeFrame);
        let crop = Manifest::from_toml(&text("crop_scale = 2.7"), "t").unwrap();
        assert_eq!(
            crop.models[0].liveness.as_ref().unwrap().region,
            Region::FaceCrop
        );
        for bad in [
            r#"region = "whole_frame", crop_scale = 2.7"#,
            r#"region = "face_crop""#,
            r#"region = "elsewhere", crop_scale = 2.7"#,
        ] {
            assert!(Manifest::from_toml(&text(bad), "t").is_err(), "{bad}");
        }
    }
}
