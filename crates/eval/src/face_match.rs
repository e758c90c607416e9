//! ISO/IEC 19795-1 verification metrics for the face match: FNMR and FMR at a threshold with
//! their intervals, the EER, FNMR at a target FMR, the threshold for a target FMR, and the
//! labelled comparisons they come from.
//!
//! # Conventions
//!
//! * A comparison's `score` is a similarity: **higher = more alike**; a pair *matches* iff
//!   `score >= threshold` (a score exactly at the threshold matches).
//! * FNMR(t) = genuine comparisons with score < t / genuine comparisons;
//!   FMR(t) = impostor comparisons with score ≥ t / impostor comparisons.
//! * A comparison that could not be scored (no face, a document face under the size floor) is a
//!   *failure to acquire*; it is counted separately and, as ISO/IEC 19795-1's FNMR excludes it,
//!   not in the rates (the FTA rate is reported next to them).
//! * With `n` impostor comparisons and no false match, the 95 % (two-sided Clopper–Pearson) upper
//!   bound of the FMR is `1 − 0.025^(1/n)` ≈ 3.7/n ([`crate::stats::min_trials_for_zero_error_bound`]):
//!   a claim at FMR 1e-3 needs 3,688 impostor comparisons without a false match (about 3,000 by
//!   the one-sided rule of three), and more when independent subjects are counted instead.

use crate::stats::{min_trials_for_zero_error_bound, Rate, RateSummary};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Same person or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairLabel {
    Genuine,
    Impostor,
}

impl PairLabel {
    pub fn parse(s: &str) -> Option<PairLabel> {
        match s.trim().to_ascii_lowercase().as_str() {
            "genuine" | "same" | "mated" | "1" => Some(PairLabel::Genuine),
            "impostor" | "different" | "non-mated" | "nonmated" | "0" => Some(PairLabel::Impostor),
            _ => None,
        }
    }
}

/// One labelled comparison: image `a` (the probe, e.g. the selfie) against `b` (e.g. the
/// document), paths as written in the pairs file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pair {
    pub a: String,
    pub b: String,
    pub label: PairLabel,
}

/// An error in a pairs or identities file (line numbers from 1).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PairsError {
    #[error("line {line}: expected {expected} comma-separated fields, found {found}")]
    Fields {
        line: usize,
        expected: usize,
        found: usize,
    },
    #[error("line {line}: unknown label {label:?} (genuine or impostor)")]
    Label { line: usize, label: String },
    #[error("line {line}: an image is compared with itself")]
    SelfPair { line: usize },
    #[error("no comparisons")]
    Empty,
}

fn data_lines(text: &str) -> impl Iterator<Item = (usize, Vec<&str>)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(n, l)| (n, l.split(',').map(str::trim).collect()))
}

/// Parse `a,b,label` lines (a header line `a,b,label` and `#` comments are skipped).
pub fn parse_pairs(text: &str) -> Result<Vec<Pair>, PairsError> {
    let mut out = Vec::new();
    for (line, f) in data_lines(text) {
        if f.len() != 3 {
            return Err(PairsError::Fields {
                line,
                expected: 3,
                found: f.len(),
            });
        }
        if out.is_empty() && f[2].eq_ignore_ascii_case("label") {
            continue;
        }
        let label = PairLabel::parse(f[2]).ok_or_else(|| PairsError::Label {
            line,
            label: f[2].to_string(),
        })?;
        if f[0] == f[1] {
            return Err(PairsError::SelfPair { line });
        }
        out.push(Pair {
            a: f[0].to_string(),
            b: f[1].to_string(),
            label,
        });
    }
    if out.is_empty() {
        return Err(PairsError::Empty);
    }
    Ok(out)
}

/// Every pair of an `image,identity` list (header `image,identity` skipped): images of one
/// identity are genuine pairs, of two identities impostor pairs — every impostor pair is used.
/// Pairs are ordered by the list's order (`a` before `b`).
pub fn pairs_from_identities(text: &str) -> Result<Vec<Pair>, PairsError> {
    let mut items: Vec<(String, String)> = Vec::new();
    for (line, f) in data_lines(text) {
        if f.len() != 2 {
            return Err(PairsError::Fields {
                line,
                expected: 2,
                found: f.len(),
            });
        }
        if items.is_empty() && f[1].eq_ignore_ascii_case("identity") {
            continue;
        }
        items.push((f[0].to_string(), f[1].to_string()));
    }
    let mut out = Vec::new();
    for (i, (a, ia)) in items.iter().enumerate() {
        for (b, ib) in &items[i + 1..] {
            if a == b {
                continue;
            }
            out.push(Pair {
                a: a.clone(),
                b: b.clone(),
                label: if ia == ib {
                    PairLabel::Genuine
                } else {
                    PairLabel::Impostor
                },
            });
        }
    }
    if out.is_empty() {
        return Err(PairsError::Empty);
    }
    Ok(out)
}

/// The scored comparisons: similarity per class, and the failures to acquire.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MatchScores {
    pub genuine: Vec<f64>,
    pub impostor: Vec<f64>,
    /// Comparisons that could not be scored, per class.
    pub genuine_not_scored: usize,
    pub impostor_not_scored: usize,
}

/// FNMR and FMR at one threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MatchPoint {
    pub threshold: f64,
    pub fnmr: RateSummary,
    pub fmr: RateSummary,
}

/// The equal error rate: the threshold where FNMR and FMR are closest (the lowest such
/// threshold), and their mean there.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MatchEer {
    pub threshold: f64,
    pub eer: f64,
    pub fnmr: f64,
    pub fmr: f64,
}

impl MatchScores {
    /// Add a scored comparison (a non-finite score counts as not scored).
    pub fn push(&mut self, label: PairLabel, score: Option<f64>) {
        match (label, score.filter(|s| s.is_finite())) {
            (PairLabel::Genuine, Some(s)) => self.genuine.push(s),
            (PairLabel::Impostor, Some(s)) => self.impostor.push(s),
            (PairLabel::Genuine, None) => self.genuine_not_scored += 1,
            (PairLabel::Impostor, None) => self.impostor_not_scored += 1,
        }
    }

    /// FNMR and FMR at `threshold`.
    pub fn at(&self, threshold: f64) -> MatchPoint {
        let fnm = self.genuine.iter().filter(|s| **s < threshold).count();
        let fm = self.impostor.iter().filter(|s| **s >= threshold).count();
        MatchPoint {
            threshold,
            fnmr: Rate::new(fnm, self.genuine.len()).summary(),
            fmr: Rate::new(fm, self.impostor.len()).summary(),
        }
    }

    /// The thresholds at which a rate changes: every score, and one above the highest.
    pub fn candidate_thresholds(&self) -> Vec<f64> {
        let mut t: Vec<f64> = self.genuine.iter().chain(&self.impostor).copied().collect();
        t.sort_by(f64::total_cmp);
        t.dedup();
        if let Some(max) = t.last().copied() {
            t.push(next_up(max));
        }
        t
    }

    /// (FMR, FNMR) at every candidate threshold, for the DET curve.
    pub fn det(&self) -> Vec<crate::DetPoint> {
        self.candidate_thresholds()
            .into_iter()
            .filter_map(|t| {
                let p = self.at(t);
                Some(crate::DetPoint {
                    threshold: t,
                    apcer: p.fmr.value?,
                    bpcer: p.fnmr.value?,
                })
            })
            .collect()
    }

    /// The EER (`None` without both classes).
    pub fn eer(&self) -> Option<MatchEer> {
        let mut best: Option<MatchEer> = None;
        for t in self.candidate_thresholds() {
            let p = self.at(t);
            let (Some(fnmr), Some(fmr)) = (p.fnmr.value, p.fmr.value) else {
                return None;
            };
            let gap = (fnmr - fmr).abs();
            if best.is_none_or(|b| gap < (b.fnmr - b.fmr).abs()) {
                best = Some(MatchEer {
                    threshold: t,
                    eer: (fnmr + fmr) / 2.0,
                    fnmr,
                    fmr,
                });
            }
        }
        best
    }

    /// The lowest threshold whose FMR on these impostor comparisons is at most `target` (the
    /// fewest false non-matches among those that meet it): with `k = ⌊target · n⌋` false
    /// matches allowed, just above the (k+1)-th highest impostor score — not at the next genuine
    /// score, which would only look better on this set. `None` without impostor comparisons or
    /// with a target outside [0, 1].
    pub fn threshold_for_fmr(&self, target: f64) -> Option<f64> {
        if self.impostor.is_empty() || !(0.0..=1.0).contains(&target) {
            return None;
        }
        let mut imp = self.impostor.clone();
        imp.sort_by(|a, b| b.total_cmp(a));
        let allowed = (target * imp.len() as f64 + 1e-9).floor() as usize;
        Some(match imp.get(allowed) {
            Some(s) => next_up(*s),
            // Every impostor may match: the lowest score of all.
            None => self
                .genuine
                .iter()
                .chain(&self.impostor)
                .copied()
                .fold(f64::INFINITY, f64::min),
        })
    }

    /// FNMR at the threshold chosen for `target` FMR.
    pub fn fnmr_at_fmr(&self, target: f64) -> Option<MatchPoint> {
        self.threshold_for_fmr(target).map(|t| self.at(t))
    }
}

/// The smallest f64 above `x` (for the threshold just above a score).
pub fn next_up(x: f64) -> f64 {
    if x.is_nan() || x == f64::INFINITY {
        return x;
    }
    if x == 0.0 {
        return f64::from_bits(1);
    }
    let b = x.to_bits();
    f64::from_bits(if x > 0.0 { b + 1 } else { b - 1 })
}

/// A threshold as the service uses it (f32), rounded *up* so that no comparison below the f64
/// threshold passes it.
pub fn threshold_f32_up(t: f64) -> f32 {
    let f = t as f32;
    if f64::from(f) < t {
        f32::from_bits(if f >= 0.0 {
            f.to_bits() + 1
        } else {
            f.to_bits() - 1
        })
    } else {
        f
    }
}

/// How far a set of impostor comparisons is from supporting an FMR claim.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClaimSupport {
    pub target_fmr: f64,
    /// Impostor comparisons without a false match needed for the 95 % upper bound to reach it.
    pub impostors_needed: Option<usize>,
    pub impostors_here: usize,
}

pub fn claim_support(target_fmr: f64, impostors: usize) -> ClaimSupport {
    ClaimSupport {
        target_fmr,
        impostors_needed: min_trials_for_zero_error_bound(target_fmr, 0.95),
        impostors_here: impostors,
    }
}

/// The `ekyc eval-match` report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchReport {
    pub model: String,
    pub genuine: usize,
    pub impostor: usize,
    pub genuine_not_scored: usize,
    pub impostor_not_scored: usize,
    pub at_threshold: MatchPoint,
    pub eer: Option<MatchEer>,
    pub fnmr_at_fmr_1e2: Option<MatchPoint>,
    pub fnmr_at_fmr_1e3: Option<MatchPoint>,
    pub claims: Vec<ClaimSupport>,
    /// Lowest genuine and highest impostor similarity.
    pub lowest_genuine: Option<f64>,
    pub highest_impostor: Option<f64>,
    /// Every comparison's score (null = not scored), in the pairs' order.
    pub comparisons: Vec<ScoredPair>,
}

/// One comparison in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredPair {
    pub a: String,
    pub b: String,
    pub label: PairLabel,
    pub similarity: Option<f64>,
    /// Why it was not scored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_scored: Option<String>,
}

impl MatchReport {
    pub fn new(model: &str, threshold: f64, comparisons: Vec<ScoredPair>) -> MatchReport {
        let mut s = MatchScores::default();
        for c in &comparisons {
            s.push(c.label, c.similarity);
        }
        let fold = |v: &[f64], f: fn(f64, f64) -> f64| v.iter().copied().reduce(f);
        MatchReport {
            model: model.to_string(),
            genuine: s.genuine.len(),
            impostor: s.impostor.len(),
            genuine_not_scored: s.genuine_not_scored,
            impostor_not_scored: s.impostor_not_scored,
            at_threshold: s.at(threshold),
            eer: s.eer(),
            fnmr_at_fmr_1e2: s.fnmr_at_fmr(1e-2),
            fnmr_at_fmr_1e3: s.fnmr_at_fmr(1e-3),
            claims: [1e-2, 1e-3]
                .into_iter()
                .map(|t| claim_support(t, s.impostor.len()))
                .collect(),
            lowest_genuine: fold(&s.genuine, f64::min),
            highest_impostor: fold(&s.impostor, f64::max),
            comparisons,
        }
    }

    pub fn scores(&self) -> MatchScores {
        let mut s = MatchScores::default();
        for c in &self.comparisons {
            s.push(c.label, c.similarity);
        }
        s
    }

    /// The summary as Markdown.
    pub fn markdown(&self) -> String {
        let rate = |r: &RateSummary| match (r.value, r.wilson95, r.clopper_pearson95) {
            (Some(v), Some(w), Some(c)) => format!(
                "{:.2} % ({}/{}; Wilson 95 % [{:.2}, {:.2}] %, Clopper–Pearson [{:.2}, {:.2}] %)",
                v * 100.0,
                r.errors,
                r.total,
                w.lower * 100.0,
                w.upper * 100.0,
                c.lower * 100.0,
                c.upper * 100.0
            ),
            _ => format!("absent ({}/{})", r.errors, r.total),
        };
        let mut out = format!(
            "# Face match: {}\n\n{} genuine and {} impostor comparisons scored ({} genuine and {} impostor not scored: no usable face).\n\n",
            self.model, self.genuine, self.impostor, self.genuine_not_scored, self.impostor_not_scored
        );
        let p = &self.at_threshold;
        out.push_str(&format!(
            "| | value |\n|---|---|\n| threshold | {:.4} |\n| FNMR | {} |\n| FMR | {} |\n",
            p.threshold,
            rate(&p.fnmr),
            rate(&p.fmr)
        ));
        if let Some(e) = &self.eer {
            out.push_str(&format!(
                "| EER | {:.2} % at {:.4} (FNMR {:.2} %, FMR {:.2} %) |\n",
                e.eer * 100.0,
                e.threshold,
                e.fnmr * 100.0,
                e.fmr * 100.0
            ));
        }
        for (name, q) in [
            ("FNMR at FMR ≤ 1e-2", &self.fnmr_at_fmr_1e2),
            ("FNMR at FMR ≤ 1e-3", &self.fnmr_at_fmr_1e3),
        ] {
            if let Some(q) = q {
                out.push_str(&format!(
                    "| {name} | {} at threshold {:.4} |\n",
                    rate(&q.fnmr),
                    q.threshold
                ));
            }
        }
        if let (Some(g), Some(i)) = (self.lowest_genuine, self.highest_impostor) {
            out.push_str(&format!(
                "| lowest genuine / highest impostor similarity | {g:.4} / {i:.4} |\n"
            ));
        }
        out.push('\n');
        let mut images: Vec<&str> = self
            .comparisons
            .iter()
            .flat_map(|c| [c.a.as_str(), c.b.as_str()])
            .collect();
        images.sort_unstable();
        images.dedup();
        out.push_str(&format!(
            "- The intervals treat the comparisons as independent trials; they come from {} images, each in up to {} comparisons, so the real uncertainty is larger than shown.\n",
            images.len(),
            images.len().saturating_sub(1)
        ));
        for c in &self.claims {
            if let Some(n) = c.impostors_needed {
                out.push_str(&format!(
                    "- A claim of FMR ≤ {:e} at 95 % confidence needs at least {n} impostor comparisons without a false match; this set has {} ({}).\n",
                    c.target_fmr,
                    c.impostors_here,
                    if c.impostors_here >= n { "enough" } else { "far too few: the number is an observation on this set, not a claim" }
                ));
            }
        }
        out
    }
}

/// Per-image scores grouped by image, for the "each miss explained" listing: the genuine pairs
/// under the threshold and the impostor pairs at or above it.
pub fn errors_at(report: &MatchReport, threshold: f64) -> BTreeMap<&'static str, Vec<&ScoredPair>> {
    let mut out: BTreeMap<&'static str, Vec<&ScoredPair>> = BTreeMap::new();
    for c in &report.comparisons {
        match (c.label, c.similarity) {
            (PairLabel::Genuine, Some(s)) if s < threshold => {
                out.entry("false_non_match").or_default().push(c);
            }
            (PairLabel::Impostor, Some(s)) if s >= threshold => {
                out.entry("false_match").or_default().push(c);
            }
            (_, None) => out.entry("not_scored").or_default().push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(genuine: &[f64], impostor: &[f64]) -> MatchScores {
        MatchScores {
            genuine: genuine.to_vec(),
            impostor: impostor.to_vec(),
            ..MatchScores::default()
        }
    }

    #[test]
    fn rates_by_hand() {
        // Genuine 0.9 0.8 0.7 0.4; impostor 0.1 0.2 0.3 0.5 0.75.
        let s = scores(&[0.9, 0.8, 0.7, 0.4], &[0.1, 0.2, 0.3, 0.5, 0.75]);
        let p = s.at(0.5);
        // Below 0.5: the 0.4 genuine → FNMR 1/4; at or above: 0.5, 0.75 → FMR 2/5.
        assert_eq!((p.fnmr.errors, p.fnmr.total), (1, 4));
        assert_eq!((p.fmr.errors, p.fmr.total), (2, 5));
        // At a score, the score matches (inclusive).
        assert_eq!(s.at(0.75).fmr.errors, 1);
        assert_eq!(s.at(0.7).fnmr.errors, 1);
        // FMR ≤ 0.2 (1 of 5 may match): just above the second-highest impostor, 0.5; there
        // only 0.4 is a false non-match → 1/4, and 0.75 the one false match.
        assert_eq!(s.threshold_for_fmr(0.2), Some(next_up(0.5)));
        let q = s.fnmr_at_fmr(0.2).map(|p| (p.fnmr.errors, p.fmr.errors));
        assert_eq!(q, Some((1, 1)));
        // FMR 0: just above the highest impostor, 0.75 (not at the next genuine, 0.8): 0.7 and
        // 0.4 are under it.
        assert_eq!(s.threshold_for_fmr(0.0), Some(next_up(0.75)));
        assert_eq!(s.fnmr_at_fmr(0.0).map(|p| p.fnmr.errors), Some(2));
        // FMR 1: everything may match: the lowest score.
        assert_eq!(s.threshold_for_fmr(1.0), Some(0.1));
        // EER: t = 0.5 gives FNMR 1/4 = 0.25, FMR 2/5 = 0.4 (gap 0.15); t = 0.7 gives 1/4, 1/5
        // (gap 0.05); t = 0.75: 2/4, 1/5 (gap 0.3). The closest is 0.7: EER (0.25 + 0.2) / 2.
        let e = s.eer().unwrap_or(MatchEer {
            threshold: 0.0,
            eer: 0.0,
            fnmr: 0.0,
            fmr: 0.0,
        });
        assert_eq!(e.threshold, 0.7);
        assert!((e.eer - 0.225).abs() < 1e-12, "{e:?}");
        // The intervals are the library's: Wilson 95 % of 1/4.
        let w = p
            .fnmr
            .wilson95
            .map(|i| (i.lower, i.upper))
            .unwrap_or_default();
        assert!(
            (w.0 - 0.0456).abs() < 1e-3 && (w.1 - 0.6994).abs() < 1e-3,
            "{w:?}"
        );
    }

    #[test]
    fn separated_classes_have_zero_eer_and_missing_classes_none() {
        let s = scores(&[0.8, 0.9], &[0.1, 0.2, 0.3]);
        let e = s.eer().map(|e| (e.eer, e.threshold));
        // The lowest threshold with both rates 0 is 0.8 (0.3 < t ≤ 0.8 all separate; 0.8 is
        // the first candidate above 0.3).
        assert_eq!(e, Some((0.0, 0.8)));
        assert_eq!(scores(&[0.8], &[]).eer(), None);
        assert_eq!(scores(&[0.8], &[]).threshold_for_fmr(0.1), None);
        assert_eq!(s.threshold_for_fmr(1.5), None);
        // Everything above the top score: FMR 0, FNMR 1.
        let top = s.candidate_thresholds().last().copied().unwrap_or(0.0);
        assert!(top > 0.9 && s.at(top).fnmr.errors == 2);
    }

    #[test]
    fn pairs_files_parse_with_their_errors() {
        let p = parse_pairs("a,b,label\n# c\nx.jpg, y.jpg, genuine\nx.jpg,z.jpg,impostor\n");
        assert_eq!(p.as_ref().map(Vec::len), Ok(2));
        assert_eq!(
            parse_pairs("x,y,maybe"),
            Err(PairsError::Label {
                line: 1,
                label: "maybe".into()
            })
        );
        assert_eq!(
            parse_pairs("x,y"),
            Err(PairsError::Fields {
                line: 1,
                expected: 3,
                found: 2
            })
        );
        assert_eq!(
            parse_pairs("x,x,genuine"),
            Err(PairsError::SelfPair { line: 1 })
        );
        assert_eq!(parse_pairs("# nothing\n"), Err(PairsError::Empty));
    }

    #[test]
    fn identities_give_every_pair() {
        // 2 of A, 1 of B, 1 of C: 4 images → 6 pairs, 1 genuine (A, A), 5 impostor.
        let p = pairs_from_identities("image,identity\na1,A\na2,A\nb,B\nc,C\n").unwrap_or_default();
        assert_eq!(p.len(), 6);
        let genuine: Vec<_> = p.iter().filter(|p| p.label == PairLabel::Genuine).collect();
        assert_eq!(genuine.len(), 1);
        assert_eq!((genuine[0].a.as_str(), genuine[0].b.as_str()), ("a1", "a2"));
        assert_eq!(pairs_from_identities("a,A\n"), Err(PairsError::Empty));
    }

    #[test]
    fn claims_need_the_rule_of_three() {
        let c = claim_support(1e-3, 500);
        // Two-sided Clopper–Pearson: ln(0.025)/ln(1 - 1e-3) = 3687.2 → 3688.
        assert_eq!(c.impostors_needed, Some(3688));
        let r = MatchReport::new(
            "m",
            0.5,
            vec![
                ScoredPair {
                    a: "a".into(),
                    b: "b".into(),
                    label: PairLabel::Genuine,
                    similarity: Some(0.7),
                    not_scored: None,
                },
                ScoredPair {
                    a: "a".into(),
                    b: "c".into(),
                    label: PairLabel::Impostor,
                    similarity: None,
                    not_scored: Some("DOCUMENT_NO_FACE".into()),
                },
            ],
        );
        assert_eq!((r.genuine, r.impostor, r.impostor_not_scored), (1, 0, 1));
        assert!(r.markdown().contains("far too few"));
        assert_eq!(errors_at(&r, 0.8)["false_non_match"].len(), 1);
    }

    #[test]
    fn thresholds_round_up_to_f32() {
        let t = 0.1f64;
        let f = threshold_f32_up(t);
        assert!(f64::from(f) >= t);
        assert_eq!(threshold_f32_up(0.5), 0.5);
        assert!(next_up(0.3) > 0.3 && next_up(-0.3) > -0.3 && next_up(0.0) > 0.0);
    }
}
