//! The three-way decision in an evaluation: how often the service answers RETRY (the score in
//! the uncertain band around the threshold, or the models disagreeing), and the error rates of
//! the captures it decided (LIVE or SPOOF).
//!
//! Counted from the service's own statuses (gate on), so the band and the spread rule are
//! exactly the ones the pipeline applied. Captures without a score (gated) are not counted.

use std::fmt::Write as _;

use serde::Serialize;

use ekyc_core::Status;

use crate::run::ImageRun;
use crate::stats::{Rate, RateSummary};

/// One class's RETRY share and its error rate among the decided captures.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClassRetry {
    /// Captures with a liveness score.
    pub scored: usize,
    /// RETRY among the scored captures.
    pub retry: RateSummary,
    /// Errors among the decided captures: bona fide answered SPOOF (BPCER), attacks answered
    /// LIVE (APCER, all attack types pooled).
    pub error_decided: RateSummary,
}

/// RETRY rates and decided error rates, for bona fide captures and attacks.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RetrySummary {
    pub retry_band: f32,
    pub retry_max_spread: f32,
    pub bona_fide: ClassRetry,
    pub attacks: ClassRetry,
}

fn class_retry(statuses: &[Status], error: Status) -> ClassRetry {
    let scored = statuses.len();
    let retry = statuses.iter().filter(|s| **s == Status::Retry).count();
    let errors = statuses.iter().filter(|s| **s == error).count();
    ClassRetry {
        scored,
        retry: Rate::new(retry, scored).summary(),
        error_decided: Rate::new(errors, scored - retry).summary(),
    }
}

impl RetrySummary {
    /// From the gate-on runs of an evaluation.
    pub fn new(runs: &[ImageRun], retry_band: f32, retry_max_spread: f32) -> RetrySummary {
        let mut bona = Vec::new();
        let mut attack = Vec::new();
        for r in runs {
            let Ok(runs) = &r.result else { continue };
            if runs.gate_on.score.is_none() {
                continue;
            }
            if r.item.class.is_bona_fide() {
                bona.push(runs.gate_on.status);
            } else {
                attack.push(runs.gate_on.status);
            }
        }
        RetrySummary {
            retry_band,
            retry_max_spread,
            bona_fide: class_retry(&bona, Status::Spoof),
            attacks: class_retry(&attack, Status::Live),
        }
    }

    /// A Markdown section.
    pub fn to_markdown(&self) -> String {
        let pct = |r: &RateSummary| match (r.value, &r.wilson95) {
            (Some(v), Some(ci)) => format!(
                "{:.1} % [{:.1}, {:.1}] ({}/{})",
                v * 100.0,
                ci.lower * 100.0,
                ci.upper * 100.0,
                r.errors,
                r.total
            ),
            _ => format!("n/a ({}/{})", r.errors, r.total),
        };
        let mut s = String::new();
        let _ = writeln!(
            s,
            "## Three-way decision (gate on): RETRY band ±{} around the threshold, RETRY when the models' spread > {}\n",
            self.retry_band, self.retry_max_spread
        );
        let _ = writeln!(s, "| class | scored | RETRY | error among decided |");
        let _ = writeln!(s, "|---|---:|---|---|");
        let _ = writeln!(
            s,
            "| bona fide | {} | {} | BPCER {} |",
            self.bona_fide.scored,
            pct(&self.bona_fide.retry),
            pct(&self.bona_fide.error_decided)
        );
        let _ = writeln!(
            s,
            "| attacks | {} | {} | APCER (pooled) {} |",
            self.attacks.scored,
            pct(&self.attacks.retry),
            pct(&self.attacks.error_decided)
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_shares_and_decided_errors_by_hand() {
        use Status::*;
        // Bona fide: 10 scored, 2 RETRY, 1 SPOOF among the 8 decided.
        let bona = [
            Live, Live, Live, Live, Live, Live, Live, Spoof, Retry, Retry,
        ];
        let c = class_retry(&bona, Spoof);
        assert_eq!((c.scored, c.retry.errors, c.retry.total), (10, 2, 10));
        assert_eq!((c.error_decided.errors, c.error_decided.total), (1, 8));
        // Attacks: all RETRY → no decided capture, no error rate.
        let c = class_retry(&[Retry, Retry], Live);
        assert_eq!(c.error_decided.total, 0);
        assert_eq!(c.error_decided.value, None);
    }
}

/// A RETRY band chosen for target error rates of the decided captures.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BandChoice {
    /// Half-width of the band around the threshold (`EKYC_RETRY_BAND`).
    pub band: f64,
    /// Scored bona fide captures in the band (RETRY).
    pub bona_fide_retry: RateSummary,
    /// Scored attacks in the band (RETRY).
    pub attack_retry: RateSummary,
    /// Bona fide captures below the threshold among the decided ones.
    pub bpcer_decided: RateSummary,
    /// Attacks at or above the threshold among the decided ones (all attack types pooled).
    pub apcer_decided: RateSummary,
}

/// The bands tried by [`choose_band`]: 0 to 0.5 in steps of 0.01.
pub const BAND_STEPS: usize = 50;

/// The narrowest band (0, 0.01, …, 0.49) around `threshold` for which the captures outside it —
/// those the service decides — have APCER ≤ `max_apcer` and BPCER ≤ `max_bpcer` (scored captures
/// only; gated ones are neither RETRY nor decided by liveness). `None` when no band meets both.
pub fn choose_band(
    samples: &[crate::Sample],
    threshold: f64,
    max_apcer: f64,
    max_bpcer: f64,
) -> Option<BandChoice> {
    let scored: Vec<(f64, bool)> = samples
        .iter()
        .filter_map(|s| s.score.map(|v| (v, s.class.is_bona_fide())))
        .collect();
    (0..BAND_STEPS).find_map(|k| {
        let band = k as f64 / 100.0;
        let (mut bona, mut bona_retry, mut bona_err) = (0, 0, 0);
        let (mut att, mut att_retry, mut att_err) = (0, 0, 0);
        for &(v, bona_fide) in &scored {
            // As the service decides: RETRY iff |score - threshold| < band (f32 there, f64 here;
            // the grid keeps the comparison away from rounding).
            let retry = (v - threshold).abs() < band - 1e-9;
            if bona_fide {
                bona += 1;
                bona_retry += usize::from(retry);
                bona_err += usize::from(!retry && v < threshold);
            } else {
                att += 1;
                att_retry += usize::from(retry);
                att_err += usize::from(!retry && v >= threshold);
            }
        }
        let bpcer = Rate::new(bona_err, bona - bona_retry);
        let apcer = Rate::new(att_err, att - att_retry);
        let ok = bpcer.value().is_none_or(|b| b <= max_bpcer)
            && apcer.value().is_none_or(|a| a <= max_apcer);
        ok.then(|| BandChoice {
            band,
            bona_fide_retry: Rate::new(bona_retry, bona).summary(),
            attack_retry: Rate::new(att_retry, att).summary(),
            bpcer_decided: bpcer.summary(),
            apcer_decided: apcer.summary(),
        })
    })
}

#[cfg(test)]
mod band_tests {
    use super::*;
    use crate::Sample;

    #[test]
    fn the_narrowest_band_that_meets_both_targets() {
        // Threshold 0.5. Bona fide: 0.9, 0.8, 0.55, 0.45 (an error unless in the band);
        // attacks: 0.1, 0.2, 0.58 (an error unless in the band).
        let mut s: Vec<Sample> = [0.9, 0.8, 0.55, 0.45]
            .iter()
            .enumerate()
            .map(|(i, &v)| Sample::bona_fide(format!("b{i}"), Some(v)))
            .collect();
        for (i, v) in [0.1, 0.2, 0.58].into_iter().enumerate() {
            s.push(Sample::attack(format!("a{i}"), "print", Some(v)));
        }
        s.push(Sample::bona_fide("gated", None));
        // No errors allowed: 0.45 needs a band > 0.05 and 0.58 one > 0.08 → 0.09.
        let c = choose_band(&s, 0.5, 0.0, 0.0).expect("a band");
        assert!((c.band - 0.09).abs() < 1e-12, "{c:?}");
        assert_eq!((c.bona_fide_retry.errors, c.bona_fide_retry.total), (2, 4));
        assert_eq!((c.attack_retry.errors, c.attack_retry.total), (1, 3));
        assert_eq!((c.bpcer_decided.errors, c.bpcer_decided.total), (0, 2));
        // One bona fide error in four is allowed (25 %) but no attack error: 0.58 → band 0.09
        // again, and 0.45 is then in it too.
        let c = choose_band(&s, 0.5, 0.0, 0.25).expect("a band");
        assert!((c.band - 0.09).abs() < 1e-12);
        // Attack errors allowed up to 1/3, bona fide too: no band needed.
        let c = choose_band(&s, 0.5, 0.34, 0.25).expect("a band");
        assert_eq!(c.band, 0.0);
        // A target no band below 0.5 reaches: an attack at 0.99.
        s.push(Sample::attack("a9", "print", Some(0.99)));
        assert!(choose_band(&s, 0.5, 0.0, 0.0).is_none());
    }
}
