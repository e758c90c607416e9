//! The evaluation report: every number of one [`ScoreSet`] in one serialisable struct
//! ([`EvalReport`]) with a Markdown rendering; the whole `ekyc eval` output (gate on and off,
//! per-image table, `scores.csv`) and the `ekyc calibrate` text ([`summary`]); the crate's one
//! percent, Markdown-cell and CSV-field formatters.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::metrics::{sample_size_notes, Counts, OperatingPoint, ScoreSet, Target};
use super::stats::{Interval, RateSummary};
use super::{EvalError, GatePolicy, Sample};

mod summary;

pub use summary::{
    calibration_text, counts_text, opt_rate_text, rate_cell, rate_text, scores_csv, status_counts,
    uncertainty_text, EvalOutput, EvalOutputInput, GateSection, ImageCounts, StatusCounts,
    MAX_REPORT_ROWS,
};

/// BPCER at fixed APCER targets: (name, APCER target).
pub const BPCER_AT_APCER_TARGETS: [(&str, f64); 3] =
    [("BPCER100", 0.01), ("BPCER20", 0.05), ("BPCER10", 0.10)];

/// APCER at fixed BPCER targets: (name, BPCER target).
pub const APCER_AT_BPCER_TARGETS: [(&str, f64); 2] =
    [("APCER@BPCER=1%", 0.01), ("APCER@BPCER=5%", 0.05)];

/// One "metric at a fixed target on the other rate" result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetResult {
    /// e.g. `"BPCER100"` or `"APCER@BPCER=1%"`.
    pub name: String,
    /// Which rate is constrained and to what (≤).
    pub target: Target,
    /// Threshold used; `None` if no candidate meets the target.
    pub threshold: Option<f64>,
    /// The reported metric (BPCER for BPCERxx, APCER_max for APCER@BPCER).
    pub value: Option<RateSummary>,
    /// The constrained rate actually achieved at `threshold`.
    pub constraint: Option<RateSummary>,
    /// Attack type attaining APCER_max at `threshold`.
    pub apcer_max_type: Option<String>,
    /// Whether zero errors on this data could even show the target at 95%.
    pub supported_by_sample_size: bool,
}

/// Equal error rate with the component rates and their intervals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EerReport {
    pub threshold: f64,
    /// (APCER_max + BPCER) / 2 at `threshold`.
    pub eer: f64,
    /// |APCER_max − BPCER| at `threshold`.
    pub gap: f64,
    pub apcer_max: RateSummary,
    pub bpcer: RateSummary,
}

/// Everything the evaluation computes, ready for JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub model: String,
    /// The threshold in use (accept as bona fide iff score ≥ threshold).
    pub threshold: f64,
    pub policy: GatePolicy,
    pub policy_description: String,
    /// Samples per class and attack type, with gated counts.
    pub counts: Counts,
    /// APCER per attack type at `threshold`; absent types have `value: null`.
    pub apcer_per_type: BTreeMap<String, RateSummary>,
    /// ISO APCER (maximum over present attack types) at `threshold`.
    pub apcer_max: Option<RateSummary>,
    pub apcer_max_type: Option<String>,
    pub bpcer: RateSummary,
    /// (APCER_max + BPCER)/2; deprecated by ISO/IEC 30107-3.
    pub acer: Option<f64>,
    pub eer: Option<EerReport>,
    /// BPCER100, BPCER20, BPCER10.
    pub bpcer_at_apcer: Vec<TargetResult>,
    /// APCER at BPCER = 1% and 5%.
    pub apcer_at_bpcer: Vec<TargetResult>,
    pub notes: Vec<String>,
}

fn target_result(
    set: &ScoreSet,
    name: &str,
    target: Target,
    op: Option<OperatingPoint>,
) -> (TargetResult, Vec<String>) {
    let (supported, notes) = sample_size_notes(&set.counts(), target);
    let (value, constraint) = match (&op, target) {
        (Some(p), Target::Apcer(_)) => (Some(p.bpcer.summary()), p.apcer_max.map(|r| r.summary())),
        (Some(p), Target::Bpcer(_)) => (p.apcer_max.map(|r| r.summary()), Some(p.bpcer.summary())),
        (None, _) => (None, None),
    };
    let notes = notes.into_iter().map(|n| format!("{name}: {n}")).collect();
    (
        TargetResult {
            name: name.to_string(),
            target,
            threshold: op.as_ref().map(|p| p.threshold),
            value,
            constraint,
            apcer_max_type: op.and_then(|p| p.apcer_max_type),
            supported_by_sample_size: supported,
        },
        notes,
    )
}

impl EvalReport {
    /// Builds the report for `set` at `threshold`.
    pub fn new(
        set: &ScoreSet,
        threshold: f64,
        model: impl Into<String>,
    ) -> Result<Self, EvalError> {
        let op = set.at(threshold)?;
        let counts = set.counts();
        let mut notes = vec![
            "Decision rule: a capture is accepted as bona fide iff score >= threshold; \
             ties at the threshold are accepted."
                .to_string(),
            "EER rule: over the sweep of candidate thresholds (every distinct score plus one \
             above the maximum), the threshold minimising |APCER_max - BPCER| (ties: lowest \
             threshold); EER = (APCER_max + BPCER)/2 there, no interpolation."
                .to_string(),
            "ACER is deprecated by ISO/IEC 30107-3 and shown only for comparison with \
             published results."
                .to_string(),
        ];
        let absent: Vec<&str> = counts
            .attacks
            .iter()
            .filter(|(_, c)| c.counted == 0)
            .map(|(k, _)| k.as_str())
            .collect();
        if !absent.is_empty() {
            notes.push(format!(
                "Attack types with no counted samples are reported as absent and left out of \
                 APCER_max: {}.",
                absent.join(", ")
            ));
        }

        let eer = set.eer().map(|e| EerReport {
            threshold: e.threshold,
            eer: e.eer,
            gap: e.gap,
            apcer_max: e.apcer_max.summary(),
            bpcer: e.bpcer.summary(),
        });
        if eer.is_none() {
            notes.push(
                "EER is undefined: it needs counted samples of both bona fide and attacks."
                    .to_string(),
            );
        }

        let mut bpcer_at_apcer = Vec::new();
        for (name, x) in BPCER_AT_APCER_TARGETS {
            let (r, n) = target_result(set, name, Target::Apcer(x), set.bpcer_at_apcer(x)?);
            if r.threshold.is_none() {
                notes.push(format!(
                    "{name}: {}",
                    set.unreachable_note(Target::Apcer(x))
                ));
            }
            notes.extend(n);
            bpcer_at_apcer.push(r);
        }
        let mut apcer_at_bpcer = Vec::new();
        for (name, x) in APCER_AT_BPCER_TARGETS {
            let (r, n) = target_result(set, name, Target::Bpcer(x), set.apcer_at_bpcer(x)?);
            if r.threshold.is_none() {
                notes.push(format!(
                    "{name}: {}",
                    set.unreachable_note(Target::Bpcer(x))
                ));
            }
            notes.extend(n);
            apcer_at_bpcer.push(r);
        }

        Ok(Self {
            model: model.into(),
            threshold,
            policy: set.policy(),
            policy_description: set.policy().describe().to_string(),
            apcer_per_type: op
                .apcer_per_type
                .iter()
                .map(|(k, r)| (k.clone(), r.summary()))
                .collect(),
            apcer_max: op.apcer_max.map(|r| r.summary()),
            apcer_max_type: op.apcer_max_type.clone(),
            bpcer: op.bpcer.summary(),
            acer: op.acer(),
            counts,
            eer,
            bpcer_at_apcer,
            apcer_at_bpcer,
            notes,
        })
    }

    /// Convenience: build the [`ScoreSet`] and the report in one go.
    pub fn from_samples(
        samples: &[Sample],
        threshold: f64,
        policy: GatePolicy,
        model: impl Into<String>,
    ) -> Result<Self, EvalError> {
        Self::new(&ScoreSet::new(samples, policy)?, threshold, model)
    }

    pub fn to_json_pretty(&self) -> Result<String, EvalError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Title for plots: model name and counts.
    pub fn plot_title(&self) -> String {
        super::plot::title_with_counts(&self.model, &self.counts)
    }

    /// Renders the report as Markdown tables.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        // `write!` into a String cannot fail; ignore the Ok(()).
        let _ = writeln!(
            md,
            "# Liveness PAD evaluation: {}\n",
            md_escape(&self.model)
        );
        let _ = writeln!(
            md,
            "- Threshold in use: **{}** (accepted as bona fide iff score ≥ threshold)",
            self.threshold
        );
        let _ = writeln!(
            md,
            "- Gate policy: `{:?}` ({})",
            self.policy, self.policy_description
        );
        let _ = writeln!(
            md,
            "- Intervals: 95% Wilson score and 95% Clopper–Pearson (exact)\n"
        );

        let _ = writeln!(md, "## Samples\n");
        let _ = writeln!(
            md,
            "| class | attack type | total | scored | gated | counted in rates |"
        );
        let _ = writeln!(md, "|---|---|---:|---:|---:|---:|");
        let b = &self.counts.bona_fide;
        let _ = writeln!(
            md,
            "| bona fide | – | {} | {} | {} | {} |",
            b.total, b.scored, b.gated, b.counted
        );
        for (k, c) in &self.counts.attacks {
            let _ = writeln!(
                md,
                "| attack | {} | {} | {} | {} | {} |",
                md_escape(k),
                c.total,
                c.scored,
                c.gated,
                c.counted
            );
        }
        let a = self.counts.attack_total();
        let _ = writeln!(
            md,
            "| attack | *all types* | {} | {} | {} | {} |\n",
            a.total, a.scored, a.gated, a.counted
        );

        let _ = writeln!(md, "## Error rates at threshold {}\n", self.threshold);
        let _ = writeln!(
            md,
            "| metric | errors / counted | rate | 95% Wilson | 95% Clopper–Pearson |"
        );
        let _ = writeln!(md, "|---|---:|---:|---|---|");
        for (k, r) in &self.apcer_per_type {
            let _ = writeln!(md, "| APCER ({}) | {} |", md_escape(k), rate_cells(Some(r)));
        }
        let worst = self
            .apcer_max_type
            .as_deref()
            .map(|t| format!("; worst type: {}", md_escape(t)))
            .unwrap_or_default();
        let _ = writeln!(
            md,
            "| **APCER** (ISO, max over types{worst}) | {} |",
            rate_cells(self.apcer_max.as_ref())
        );
        let _ = writeln!(md, "| **BPCER** | {} |", rate_cells(Some(&self.bpcer)));
        let _ = writeln!(
            md,
            "| ACER (deprecated by ISO/IEC 30107-3) | – | {} | – | – |\n",
            self.acer.map(fmt_pct).unwrap_or_else(|| "n/a".to_string())
        );

        let _ = writeln!(md, "## Operating points from the threshold sweep\n");
        let _ = writeln!(
            md,
            "| metric | constraint | threshold | value | errors / counted | 95% Wilson | 95% Clopper–Pearson | constrained rate achieved | data supports target |"
        );
        let _ = writeln!(md, "|---|---|---:|---:|---:|---|---|---|---|");
        match &self.eer {
            Some(e) => {
                let _ = writeln!(
                    md,
                    "| EER | APCER_max ≈ BPCER | {} | {} | – | – | – | APCER_max {} ({}/{}), BPCER {} ({}/{}), gap {} | – |",
                    e.threshold,
                    fmt_pct(e.eer),
                    opt_pct(e.apcer_max.value),
                    e.apcer_max.errors,
                    e.apcer_max.total,
                    opt_pct(e.bpcer.value),
                    e.bpcer.errors,
                    e.bpcer.total,
                    fmt_pct(e.gap)
                );
            }
            None => {
                let _ = writeln!(
                    md,
                    "| EER | APCER_max ≈ BPCER | – | undefined | – | – | – | – | – |"
                );
            }
        }
        for r in self.bpcer_at_apcer.iter().chain(&self.apcer_at_bpcer) {
            let constraint = match r.target {
                Target::Apcer(x) => format!("APCER_max ≤ {}", fmt_pct(x)),
                Target::Bpcer(x) => format!("BPCER ≤ {}", fmt_pct(x)),
            };
            let supports = if r.supported_by_sample_size {
                "yes"
            } else {
                "no (see notes)"
            };
            match r.threshold {
                Some(t) => {
                    let achieved = r
                        .constraint
                        .as_ref()
                        .map(|c| format!("{} ({}/{})", opt_pct(c.value), c.errors, c.total))
                        .unwrap_or_else(|| "–".to_string());
                    let _ = writeln!(
                        md,
                        "| {} | {constraint} | {t} | {} | {achieved} | {supports} |",
                        md_escape(&r.name),
                        rate_cells_with_value_first(r.value.as_ref())
                    );
                }
                None => {
                    let _ = writeln!(
                        md,
                        "| {} | {constraint} | – | not reached | – | – | – | – | {supports} |",
                        md_escape(&r.name)
                    );
                }
            }
        }

        if !self.notes.is_empty() {
            let _ = writeln!(md, "\n## Notes\n");
            for n in &self.notes {
                let _ = writeln!(md, "- {}", n.replace('\n', " "));
            }
        }
        md
    }
}

/// Percent with two decimals, e.g. `0.0125` → `"1.25%"` (every percentage the crate prints).
pub fn fmt_pct(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

/// Text safe inside a Markdown table cell: `|` escaped, newlines as spaces.
pub fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// One CSV field (RFC 4180): quoted when it holds a comma, quote, line break or
/// leading/trailing space; quotes doubled.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn opt_pct(v: Option<f64>) -> String {
    v.map(fmt_pct).unwrap_or_else(|| "absent".to_string())
}

fn fmt_ci(ci: Option<Interval>) -> String {
    match ci {
        Some(i) => format!("[{}, {}]", fmt_pct(i.lower), fmt_pct(i.upper)),
        None => "–".to_string(),
    }
}

/// `errors / counted | rate | wilson | cp` cells.
fn rate_cells(r: Option<&RateSummary>) -> String {
    match r {
        Some(r) => format!(
            "{} / {} | {} | {} | {}",
            r.errors,
            r.total,
            opt_pct(r.value),
            fmt_ci(r.wilson95),
            fmt_ci(r.clopper_pearson95)
        ),
        None => "– | absent | – | –".to_string(),
    }
}

/// `rate | errors / counted | wilson | cp` cells.
fn rate_cells_with_value_first(r: Option<&RateSummary>) -> String {
    match r {
        Some(r) => format!(
            "{} | {} / {} | {} | {}",
            opt_pct(r.value),
            r.errors,
            r.total,
            fmt_ci(r.wilson95),
            fmt_ci(r.clopper_pearson95)
        ),
        None => "absent | – | – | –".to_string(),
    }
}
