//! Face match (1:1 verification): is the person of the selfie the one on the identity document?
//!
//! ```text
//! selfie ───► the liveness verdict (as POST /v1/liveness) ─┐
//!             + the judged face's embedding                ├─► cosine ≥ threshold ─► MatchOutcome
//! document ─► detect (full range first) ─► largest face ───┘
//!             size + sharpness report, eye-distance floor
//! ```
//!
//! The decision rules are pure ([`decide`]); [`crate::Pipeline::match_images`] runs the stages.
//! Embeddings never leave this module's callers: the outcome carries only their cosine.

use crate::detect::Face;
use crate::quality::QualityScores;
use crate::registry::ModelInfo;
use crate::Verdict;
use serde::Serialize;

/// How a match is decided (the adapters fill it from their settings).
#[derive(Debug, Clone, PartialEq)]
pub struct MatchConfig {
    /// Cosine similarity at or above which the two faces are the same person. `None`: the
    /// embedding model's calibrated `match_threshold` in the manifest.
    pub threshold: Option<f32>,
    /// The smallest eye distance, in original-image pixels, of a usable document face.
    pub min_document_eye_distance_px: f32,
    /// Detectors tried on the document, in order, until one finds a face (names of loaded
    /// detectors; unknown names are skipped). Empty: the pipeline's detectors, full range first.
    pub document_detectors: Vec<String>,
}

impl Default for MatchConfig {
    fn default() -> Self {
        MatchConfig {
            threshold: None,
            min_document_eye_distance_px: DEFAULT_MIN_DOCUMENT_EYE_DISTANCE_PX,
            document_detectors: Vec::new(),
        }
    }
}

/// The default floor on a document face's eye distance (original pixels). Measured on the ICAO
/// specimen (docs/face_match.md): the TD2 page scaled down against the TD3 page keeps a
/// similarity of 0.96–0.97 down to 19 px between the eyes and 0.94 at 17 px, then falls
/// (0.88 at 14 px, 0.74 at 10 px, 0.60 at 8 px): under 20 px the embedding is mostly
/// interpolation (the model's template has 35 px between the eyes).
pub const DEFAULT_MIN_DOCUMENT_EYE_DISTANCE_PX: f32 = 20.0;

/// Per-request options.
#[derive(Debug, Clone, Copy)]
pub struct MatchOptions {
    /// Answer "no match" unless the selfie's liveness verdict is LIVE (the default).
    pub require_live: bool,
    /// Run the selfie's quality gate (the liveness endpoint's `enable_checks`).
    pub enable_checks: bool,
}

impl Default for MatchOptions {
    fn default() -> Self {
        MatchOptions {
            require_live: true,
            enable_checks: true,
        }
    }
}

/// Why the answer is "no match" (stable codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MatchCode {
    /// No face was found in the selfie.
    SelfieNoFace,
    /// `require_live` and the selfie's verdict is not LIVE (see `selfie`).
    SelfieNotLive,
    /// No face was found on the document.
    DocumentNoFace,
    /// The document face's eye distance is under the floor.
    DocumentFaceTooSmall,
    /// An embedding could not be computed for one of the faces (keypoints degenerate).
    FaceNotAligned,
    /// The similarity is below the threshold: different people (or too different pictures).
    NotSamePerson,
}

impl MatchCode {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchCode::SelfieNoFace => "SELFIE_NO_FACE",
            MatchCode::SelfieNotLive => "SELFIE_NOT_LIVE",
            MatchCode::DocumentNoFace => "DOCUMENT_NO_FACE",
            MatchCode::DocumentFaceTooSmall => "DOCUMENT_FACE_TOO_SMALL",
            MatchCode::FaceNotAligned => "FACE_NOT_ALIGNED",
            MatchCode::NotSamePerson => "NOT_SAME_PERSON",
        }
    }
}

/// One reason for "no match".
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MatchReason {
    pub code: MatchCode,
    pub message: String,
}

/// The face found on the document and its quality.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DocumentReport {
    /// The largest face, in original-image pixels (null when none was found).
    pub face: Option<Face>,
    /// Faces found on the document (a ghost image next to the main portrait counts).
    pub faces: usize,
    /// The detector that found it.
    pub detector: Option<String>,
    /// Size and sharpness of the face: eye distance (original pixels), face height / image
    /// height, Laplacian variance of the face at a fixed size, brightness.
    pub quality: DocumentQuality,
    /// The document face is usable (found, and its eye distance at least the floor).
    pub usable: bool,
    pub image: crate::decode::ImageInfo,
}

/// The measurements reported for a document face.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DocumentQuality {
    pub eye_distance_px: Option<f32>,
    pub min_eye_distance_px: f32,
    pub face_height_ratio: Option<f32>,
    pub sharpness: Option<f32>,
    pub face_brightness: Option<f32>,
}

impl DocumentQuality {
    pub fn from_scores(q: &QualityScores, min_eye_distance_px: f32) -> DocumentQuality {
        DocumentQuality {
            eye_distance_px: q.eye_distance_px,
            min_eye_distance_px,
            face_height_ratio: q.face_height_ratio,
            sharpness: q.sharpness,
            face_brightness: q.face_brightness,
        }
    }
}

/// Milliseconds per stage of a match.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MatchTimings {
    /// The selfie's liveness verdict (decode to verdict).
    pub selfie_ms: f64,
    /// The document: decode, detection, quality.
    pub document_ms: f64,
    /// Both embeddings.
    pub embed_ms: f64,
    pub total_ms: f64,
}

/// The answer to "is the selfie the person on the document?".
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MatchOutcome {
    /// True only when the similarity is at or above the threshold, the document face is usable
    /// and (with `require_live`) the selfie is LIVE.
    #[serde(rename = "match")]
    pub is_match: bool,
    /// Cosine similarity of the two faces' embeddings (-1..1). Null when it was not computed
    /// (no face on either side, an unusable document face, or a selfie that is not LIVE under
    /// `require_live`).
    pub similarity: Option<f32>,
    pub threshold: f32,
    pub require_live: bool,
    /// Why the answer is no match (empty for a match).
    pub reasons: Vec<MatchReason>,
    /// The selfie's liveness verdict, as `POST /v1/liveness` returns it (absent when the selfie
    /// is a capture session's reference frame: the session decided its liveness).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selfie: Option<Verdict>,
    pub document: DocumentReport,
    pub timings: MatchTimings,
    /// The embedding model.
    pub embedding_model: String,
    pub models: Vec<ModelInfo>,
}

/// What the selfie side contributes to a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelfieFacts {
    pub has_face: bool,
    pub is_live: bool,
}

/// Whether the embeddings are worth computing: both faces exist, the document face is usable and
/// the selfie passes `require_live`. Otherwise the reasons why not.
pub fn preconditions(
    selfie: SelfieFacts,
    document: &DocumentReport,
    require_live: bool,
) -> Vec<MatchReason> {
    let mut out = Vec::new();
    if !selfie.has_face {
        out.push(MatchReason {
            code: MatchCode::SelfieNoFace,
            message: "No face was found in the selfie.".into(),
        });
    } else if require_live && !selfie.is_live {
        out.push(MatchReason {
            code: MatchCode::SelfieNotLive,
            message: "The selfie is not LIVE (see selfie.status); a match needs a live selfie."
                .into(),
        });
    }
    if document.face.is_none() {
        out.push(MatchReason {
            code: MatchCode::DocumentNoFace,
            message: "No face was found on the document.".into(),
        });
    } else if !document.usable {
        let q = &document.quality;
        out.push(MatchReason {
            code: MatchCode::DocumentFaceTooSmall,
            message: format!(
                "The document face's eyes are {:.0} px apart; at least {:.0} px are needed. Photograph the document closer or at a higher resolution.",
                q.eye_distance_px.unwrap_or(0.0),
                q.min_eye_distance_px
            ),
        });
    }
    out
}

/// Whether a document face is usable under the floor.
pub fn document_usable(face: Option<&Face>, eye_distance_px: Option<f32>, min_px: f32) -> bool {
    face.is_some() && eye_distance_px.is_some_and(|d| d >= min_px)
}

/// The decision once the preconditions hold: match when `similarity >= threshold`.
pub fn decide(similarity: f32, threshold: f32) -> Option<MatchReason> {
    (similarity < threshold || !similarity.is_finite()).then(|| MatchReason {
        code: MatchCode::NotSamePerson,
        message: format!(
            "The faces are not similar enough to be the same person ({similarity:.3} < {threshold:.3})."
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{BBox, Point};

    fn face() -> Face {
        Face {
            bbox: BBox {
                x: 0.0,
                y: 0.0,
                width: 10.0,
                height: 10.0,
            },
            score: 0.9,
            keypoints: [Point { x: 0.0, y: 0.0 }; 6],
        }
    }

    fn doc(face: Option<Face>, eye: Option<f32>) -> DocumentReport {
        let usable = document_usable(face.as_ref(), eye, 24.0);
        // (24 px here: the tests' own floor, not the default.)
        DocumentReport {
            faces: usize::from(face.is_some()),
            face,
            detector: None,
            quality: DocumentQuality {
                eye_distance_px: eye,
                min_eye_distance_px: 24.0,
                ..DocumentQuality::default()
            },
            usable,
            image: crate::decode::ImageInfo::default(),
        }
    }

    fn codes(r: &[MatchReason]) -> Vec<MatchCode> {
        r.iter().map(|r| r.code).collect()
    }

    #[test]
    fn the_threshold_is_inclusive_and_nan_never_matches() {
        assert_eq!(decide(0.5, 0.5), None);
        assert_eq!(decide(0.51, 0.5), None);
        assert_eq!(
            decide(0.4999, 0.5).map(|r| r.code),
            Some(MatchCode::NotSamePerson)
        );
        assert_eq!(
            decide(f32::NAN, 0.5).map(|r| r.code),
            Some(MatchCode::NotSamePerson)
        );
        assert_eq!(decide(-1.0, -1.0), None);
    }

    #[test]
    fn the_eye_distance_floor_is_inclusive() {
        assert!(document_usable(Some(&face()), Some(24.0), 24.0));
        assert!(!document_usable(Some(&face()), Some(23.9), 24.0));
        assert!(!document_usable(Some(&face()), None, 24.0));
        assert!(!document_usable(None, Some(99.0), 24.0));
    }

    #[test]
    fn every_failed_precondition_is_a_reason() {
        let live = SelfieFacts {
            has_face: true,
            is_live: true,
        };
        let not_live = SelfieFacts {
            has_face: true,
            is_live: false,
        };
        let none = SelfieFacts {
            has_face: false,
            is_live: false,
        };
        let good = doc(Some(face()), Some(40.0));
        assert!(preconditions(live, &good, true).is_empty());
        assert_eq!(
            codes(&preconditions(not_live, &good, true)),
            [MatchCode::SelfieNotLive]
        );
        // Without require_live a scored but non-live selfie is compared.
        assert!(preconditions(not_live, &good, false).is_empty());
        assert_eq!(
            codes(&preconditions(none, &doc(None, None), false)),
            [MatchCode::SelfieNoFace, MatchCode::DocumentNoFace]
        );
        let small = preconditions(live, &doc(Some(face()), Some(12.4)), true);
        assert_eq!(codes(&small), [MatchCode::DocumentFaceTooSmall]);
        assert!(small[0].message.contains("12 px") && small[0].message.contains("24 px"));
    }

    #[test]
    fn codes_serialise_as_documented() {
        for c in [
            MatchCode::SelfieNoFace,
            MatchCode::SelfieNotLive,
            MatchCode::DocumentNoFace,
            MatchCode::DocumentFaceTooSmall,
            MatchCode::FaceNotAligned,
            MatchCode::NotSamePerson,
        ] {
            assert_eq!(
                serde_json::to_value(c).ok(),
                Some(serde_json::Value::String(c.as_str().into()))
            );
        }
    }
}
