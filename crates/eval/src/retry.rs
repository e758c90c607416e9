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
