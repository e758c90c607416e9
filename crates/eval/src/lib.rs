//! Offline evaluation of the liveness (presentation-attack detection, PAD)
//! model following ISO/IEC 30107-3.
//!
//! # Conventions
//!
//! * A [`Sample`] carries a liveness `score` where **higher means more live**;
//!   `score == None` means the quality gate rejected the capture before
//!   liveness ran ("gated").
//! * Decision: a sample is **accepted as bona fide iff `score >= threshold`**
//!   (samples exactly at the threshold are accepted).
//! * [`GatePolicy`] decides what gated samples do to the metrics:
//!   [`GatePolicy::CountAsRejected`] counts a gated bona fide as a rejection
//!   (adds to BPCER's numerator and denominator) and a gated attack as
//!   correctly rejected (adds to APCER's denominator only);
//!   [`GatePolicy::Exclude`] drops gated samples from every rate. Gated counts
//!   per class are reported either way.
//! * APCER is computed per attack type (accepted attacks / attacks of that
//!   type); the ISO APCER is the maximum over attack types that have at least
//!   one counted sample. A type with no counted samples is *absent*: its rate
//!   is `None`, never 0, and it does not take part in the maximum.
//! * BPCER = rejected bona fide / bona fide. ACER = (APCER_max + BPCER) / 2 is
//!   reported only for comparison with papers (ISO/IEC 30107-3 deprecates it).
//!
//! Modules: [`stats`] (intervals, probit, incomplete beta, [`quantile`]),
//! [`metrics`] (rates, threshold sweep, EER, BPCER@APCER, calibration, DET
//! points), [`plot`] (DET curve and score histogram as PNG + SVG), [`report`]
//! (serialisable [`report::EvalReport`], Markdown, the `ekyc eval` summary and
//! `scores.csv`), [`dataset`] (labelled folders), [`run`] (images through the
//! service's pipeline), [`quality_calibration`] (quality-gate limits from bona
//! fide captures), [`roc`] (ROC AUC with DeLong's interval), [`ensembles`] (every combination
//! of liveness models and fusions measured and ranked by one rule), [`bench_http`] (the HTTP
//! benchmark, Unix) and [`procinfo`] (process CPU and memory from /proc).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub mod dataset;
pub mod ensembles;
pub mod face_match;
pub mod gate_labels;
pub mod metrics;
pub mod platt;
pub mod plot;
pub mod procinfo;
pub mod quality_calibration;
pub mod report;
pub mod retry;
pub mod roc;
pub mod run;
pub mod stats;

#[cfg(unix)]
pub mod bench_http;

#[cfg(test)]
mod tests;

pub use metrics::{
    Calibration, ClassCount, Counts, DetPoint, Eer, OperatingPoint, ScoreSet, SweepPoint, Target,
};
pub use report::EvalReport;
pub use stats::{quantile, Interval, Rate, RateSummary};

/// Ground truth of a sample.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Class {
    /// A genuine live presentation.
    BonaFide,
    /// A presentation attack of the given type, e.g. `"print"`, `"replay"`,
    /// `"mask"` or `"unknown"`.
    Attack(String),
}

impl Class {
    /// The attack type, or `None` for bona fide.
    pub fn attack_type(&self) -> Option<&str> {
        match self {
            Class::BonaFide => None,
            Class::Attack(t) => Some(t.as_str()),
        }
    }

    pub fn is_bona_fide(&self) -> bool {
        matches!(self, Class::BonaFide)
    }
}

/// One evaluated capture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub id: String,
    pub class: Class,
    /// Liveness score, higher = more live; `None` = rejected by the quality
    /// gate before liveness ran.
    pub score: Option<f64>,
}

impl Sample {
    pub fn bona_fide(id: impl Into<String>, score: Option<f64>) -> Self {
        Self {
            id: id.into(),
            class: Class::BonaFide,
            score,
        }
    }

    pub fn attack(
        id: impl Into<String>,
        attack_type: impl Into<String>,
        score: Option<f64>,
    ) -> Self {
        Self {
            id: id.into(),
            class: Class::Attack(attack_type.into()),
            score,
        }
    }

    pub fn is_gated(&self) -> bool {
        self.score.is_none()
    }

    /// The system decision at `threshold`: gated samples are rejected by the
    /// gate; otherwise accepted iff `score >= threshold`.
    pub fn decision(&self, threshold: f64) -> Decision {
        match self.score {
            Some(s) if s >= threshold => Decision::Accept,
            _ => Decision::Reject,
        }
    }
}

/// What the system does with a capture at a given threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Accepted as bona fide.
    Accept,
    /// Rejected (by the liveness threshold or by the quality gate).
    Reject,
}

impl Decision {
    pub fn as_str(&self) -> &'static str {
        match self {
            Decision::Accept => "accept",
            Decision::Reject => "reject",
        }
    }
}

/// How samples rejected by the quality gate (`score == None`) enter the
/// metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum GatePolicy {
    /// A gated bona fide is a rejection (counts in BPCER's numerator and
    /// denominator); a gated attack is correctly rejected (counts in its
    /// type's APCER denominator only).
    #[default]
    CountAsRejected,
    /// Gated samples are left out of every rate (still counted as gated).
    Exclude,
}

impl GatePolicy {
    /// The flag value: `count-as-rejected` or `exclude`.
    pub fn as_str(&self) -> &'static str {
        match self {
            GatePolicy::CountAsRejected => "count-as-rejected",
            GatePolicy::Exclude => "exclude",
        }
    }

    /// The policy in plain words, for reports on the service's images (quality gate, no face).
    pub fn explain(&self) -> &'static str {
        match self {
            GatePolicy::CountAsRejected => {
                "A capture rejected by the quality gate (QUALITY_FAILED) or with no face found \
                 (NO_FACE) gets no liveness score. Under count-as-rejected such a capture counts \
                 as what the service does with it: a rejected bona fide capture is an error in \
                 BPCER (numerator and denominator), a rejected attack is a correctly rejected \
                 attack (in its type's APCER denominator, never in the numerator). The rates are \
                 those of the whole service, gate included."
            }
            GatePolicy::Exclude => {
                "A capture rejected by the quality gate (QUALITY_FAILED) or with no face found \
                 (NO_FACE) gets no liveness score. Under exclude such captures are left out of \
                 every rate (numerator and denominator); how many there were is reported \
                 separately. The rates are those of the liveness models on the captures the gate \
                 lets through."
            }
        }
    }

    pub fn describe(&self) -> &'static str {
        match self {
            GatePolicy::CountAsRejected => {
                "gated bona fide count as rejections in BPCER; gated attacks count as correctly rejected in their APCER denominators"
            }
            GatePolicy::Exclude => "gated samples are excluded from all rates",
        }
    }
}

/// Errors of the evaluation library.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("sample {id:?} has a non-finite score ({score})")]
    NonFiniteScore { id: String, score: f64 },
    #[error("threshold must be a finite number, got {0}")]
    InvalidThreshold(f64),
    #[error("target rate must be a finite number in [0, 1], got {0}")]
    InvalidTarget(f64),
    #[error("confidence level must be strictly between 0 and 1, got {0}")]
    InvalidConfidence(f64),
    #[error("histogram needs at least one bin")]
    InvalidBins,
    #[error("plotting {path}: {message}")]
    Plot { path: PathBuf, message: String },
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Reading the data: `what` is e.g. "folder" or "attack types" (the cause is the source).
    #[error("reading {what} {}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no images found in {}", .0.display())]
    NoImages(PathBuf),
    /// A labels CSV (`gate_labels`) that does not parse.
    #[error("labels: {0}")]
    Labels(String),
    #[error("{}:{line}: {message}", path.display())]
    AttackTypes {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("writing CSV: {0}")]
    Write(#[from] std::io::Error),
    #[error("serialising report: {0}")]
    Json(#[from] serde_json::Error),
    /// Invalid input to [`ensembles::evaluate`] (candidates, sizes, budget, probabilities).
    #[error("ensemble evaluation: {0}")]
    Ensemble(String),
    /// A data set without bona fide or without attack samples.
    #[error("set {set:?} has no {class} samples")]
    EmptyClass { set: String, class: &'static str },
}
