//! Quality-gate calibration: the gate's metrics measured on bona fide captures of one camera,
//! and limits suggested from them. The suggestion only ever loosens a limit: bona fide captures
//! show how loose the gate must be for this camera, not how strict it may be (tightening needs
//! examples of bad captures).

use std::fmt::Write as _;

use serde::Serialize;

use ekyc_core::quality::{Kind, Metric, QualityLimits, QualityScores, Side as GateSide};
use ekyc_core::Status;

use crate::report::md_escape;
use crate::run::{ImageError, ImageRun};
use crate::stats::quantile;

/// Which side of a metric a limit bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Min,
    Max,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Min => "min",
            Side::Max => "max",
        }
    }
}

/// One configurable limit of the quality gate (a check row of `ekyc_core::quality::LIMITS`).
#[derive(Debug, Clone)]
pub struct Bound {
    /// The metric's name (`|name|` when held to its limit by magnitude).
    pub label: String,
    pub metric: Metric,
    pub side: Side,
    pub env: &'static str,
    pub current: f32,
    /// Valid range of the metric (suggestions are clamped to it).
    pub range: (f64, f64),
    /// Decimals printed in the env line.
    pub decimals: usize,
    /// The metric is capped at 1 (face_inside_ratio): the safety factor applies to 1 − value.
    pub complement: bool,
}

impl Bound {
    /// The value the limit is compared with.
    pub fn value(&self, q: &QualityScores) -> Option<f32> {
        self.metric.get(q).map(|v| self.metric.compared(v))
    }
}

/// The gate's checks, from its table ([`QualityLimits::iter`] over `LIMITS`).
pub fn bounds(cfg: &QualityLimits) -> Vec<Bound> {
    cfg.iter()
        .filter_map(|(d, current)| {
            let Kind::Check { metric, side, .. } = d.kind else {
                return None;
            };
            Some(Bound {
                label: if metric.by_magnitude() {
                    format!("|{}|", metric.name())
                } else {
                    metric.name().to_string()
                },
                metric,
                side: match side {
                    GateSide::Min => Side::Min,
                    GateSide::Max => Side::Max,
                },
                env: d.env,
                current,
                range: metric.range(),
                decimals: metric.decimals(),
                complement: metric == Metric::FaceInsideRatio,
            })
        })
        .collect()
}

/// Safety factor of the suggestion rule (see [`data_bound`]).
pub const SAFETY: f64 = 0.8;

/// The rule, in words (printed and in the JSON).
pub const QUALITY_RULE: &str =
    "data bound: min-side limits 0.8 × p1 (face_inside_ratio, capped at 1: \
     1 − (1 − p1)/0.8), max-side limits p99/0.8 = 1.25 × p99; percentiles by linear \
     interpolation (close to min/max below 100 captures), clamped to the metric's range and \
     rounded outward. suggested = the current limit if it already admits the data bound, else \
     the data bound: bona fide captures show how loose the gate must be for this camera, never \
     how strict it may be, so the suggestion only loosens.";

/// Rounds a bound outward (min side down, max side up) at `decimals`, so rounding never makes
/// it stricter.
pub fn round_outward(v: f64, side: Side, decimals: usize) -> f64 {
    let f = 10f64.powi(decimals as i32);
    match side {
        Side::Min => (v * f).floor() / f,
        Side::Max => (v * f).ceil() / f,
    }
}

/// The rule: min-side limits get `0.8 × p1` (for face_inside_ratio, capped at 1, the factor
/// applies to the share outside: `1 − (1 − p1) / 0.8`); max-side limits get `p99 / 0.8`
/// (= 1.25 × p99). Percentiles by [`quantile`]; with fewer than 100 captures p1 and p99 are
/// close to the minimum and maximum. Clamped to the metric's range, rounded outward.
pub fn data_bound(b: &Bound, sorted: &[f64]) -> Option<f64> {
    let v = match b.side {
        Side::Min => {
            let p1 = quantile(sorted, 0.01)?;
            if b.complement {
                1.0 - (1.0 - p1) / SAFETY
            } else {
                p1 * SAFETY
            }
        }
        Side::Max => quantile(sorted, 0.99)? / SAFETY,
    };
    Some(round_outward(
        v.clamp(b.range.0, b.range.1),
        b.side,
        b.decimals,
    ))
}

/// Suggested limit: the current one when it already admits the data bound (it passes these
/// captures with the safety margin), else the data bound. It only ever loosens.
pub fn suggest(b: &Bound, data: f64) -> f64 {
    let current = f64::from(b.current);
    match b.side {
        Side::Min if current <= data => current,
        Side::Max if current >= data => current,
        _ => data,
    }
}

/// One limit: the measured distribution, the current limit and the suggestion.
#[derive(Debug, Serialize)]
pub struct BoundReport {
    pub metric: String,
    pub side: Side,
    pub env: &'static str,
    pub n: usize,
    pub min: Option<f64>,
    pub p5: Option<f64>,
    pub median: Option<f64>,
    pub p95: Option<f64>,
    pub max: Option<f64>,
    pub current: f32,
    /// Captures the current limit rejects on this metric.
    pub current_rejects: usize,
    pub data_bound: Option<f64>,
    pub suggested: f64,
    /// Decimals of the metric (printing only).
    #[serde(skip)]
    pub decimals: usize,
}

impl BoundReport {
    /// `ENV=value` at the metric's decimals.
    pub fn suggested_text(&self) -> String {
        format!("{:.d$}", self.suggested, d = self.decimals)
    }
}

/// The whole calibration (written as JSON with `--out`).
#[derive(Debug, Serialize)]
pub struct QualityCalibration {
    pub live_dir: String,
    pub images: usize,
    pub measured: usize,
    pub no_face: usize,
    pub errors: Vec<ImageError>,
    /// Images the current gate rejects: (path, reason codes).
    pub currently_rejected: Vec<(String, Vec<String>)>,
    pub rule: &'static str,
    pub bounds: Vec<BoundReport>,
}

/// Measures every limit of `cfg` on the gate-on runs of bona fide captures in `live_dir`.
pub fn calibrate(live_dir: &str, runs: &[ImageRun], cfg: &QualityLimits) -> QualityCalibration {
    let measured: Vec<(&ImageRun, &crate::run::Runs)> = runs
        .iter()
        .filter_map(|o| o.result.as_ref().ok().map(|r| (o, r)))
        .collect();
    let errors: Vec<ImageError> = runs
        .iter()
        .filter_map(|o| o.result.as_ref().err().cloned())
        .collect();
    let no_face = measured
        .iter()
        .filter(|(_, r)| r.gate_on.status == Status::NoFace)
        .count();
    let currently_rejected: Vec<(String, Vec<String>)> = measured
        .iter()
        // The gate's rejections only (a RETRY's reasons are the liveness decision's).
        .filter(|(_, r)| r.gate_on.status == Status::QualityFailed)
        .map(|(o, r)| (o.item.path.display().to_string(), r.gate_on.reasons.clone()))
        .collect();

    let mut reports = Vec::new();
    for b in bounds(cfg) {
        let mut values: Vec<f64> = measured
            .iter()
            .filter_map(|(_, r)| b.value(&r.quality))
            .map(f64::from)
            .filter(|v| v.is_finite())
            .collect();
        values.sort_by(f64::total_cmp);
        let current = f64::from(b.current);
        let current_rejects = values
            .iter()
            .filter(|v| match b.side {
                Side::Min => **v < current,
                Side::Max => **v > current,
            })
            .count();
        let data = data_bound(&b, &values);
        reports.push(BoundReport {
            metric: b.label.clone(),
            side: b.side,
            env: b.env,
            n: values.len(),
            min: values.first().copied(),
            p5: quantile(&values, 0.05),
            median: quantile(&values, 0.5),
            p95: quantile(&values, 0.95),
            max: values.last().copied(),
            current: b.current,
            current_rejects,
            data_bound: data,
            suggested: data.map(|d| suggest(&b, d)).unwrap_or(current),
            decimals: b.decimals,
        });
    }
    QualityCalibration {
        live_dir: live_dir.to_string(),
        images: runs.len(),
        measured: measured.len(),
        no_face,
        errors,
        currently_rejected,
        rule: QUALITY_RULE,
        bounds: reports,
    }
}

fn fmt_num(v: Option<f64>, decimals: usize) -> String {
    v.map(|v| format!("{v:.decimals$}"))
        .unwrap_or_else(|| "–".into())
}

impl QualityCalibration {
    /// The suggested `EKYC_*` limits, `(key, value)`.
    pub fn env_entries(&self) -> Vec<(String, String)> {
        self.bounds
            .iter()
            .map(|r| (r.env.to_string(), r.suggested_text()))
            .collect()
    }

    /// The text `ekyc calibrate-quality` prints: counts, rule, the table (Markdown), the
    /// captures the current gate rejects, and the suggested `KEY=value` lines.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Quality-gate calibration on {} bona fide captures in {} ({} measured, {} without a \
             face, {} could not be read).",
            self.images,
            self.live_dir,
            self.measured,
            self.no_face,
            self.errors.len()
        );
        let _ = writeln!(s, "Rule: {}", self.rule);
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "| metric | limit | n | min | p5 | median | p95 | max | current | current rejects | data bound | suggested |"
        );
        let _ = writeln!(
            s,
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for r in &self.bounds {
            let d = r.decimals;
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                md_escape(&r.metric),
                r.side.as_str(),
                r.n,
                fmt_num(r.min, d),
                fmt_num(r.p5, d),
                fmt_num(r.median, d),
                fmt_num(r.p95, d),
                fmt_num(r.max, d),
                fmt_num(Some(f64::from(r.current)), d),
                r.current_rejects,
                fmt_num(r.data_bound, d),
                fmt_num(Some(r.suggested), d),
            );
        }
        let _ = writeln!(s);
        if self.currently_rejected.is_empty() {
            let _ = writeln!(s, "The current gate passes every measured capture.");
        } else {
            let _ = writeln!(
                s,
                "The current gate rejects {} of {} measured captures:",
                self.currently_rejected.len(),
                self.measured
            );
            for (p, reasons) in &self.currently_rejected {
                let _ = writeln!(s, "  {p}: {}", reasons.join(", "));
            }
        }
        for e in &self.errors {
            let _ = writeln!(
                s,
                "  could not be evaluated: {} ({}: {})",
                e.path, e.code, e.message
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "Suggested limits (nothing is changed without --write-env):"
        );
        for (k, v) in self.env_entries() {
            let _ = writeln!(s, "{k}={v}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestion_only_loosens() {
        let all = bounds(&QualityLimits::default());
        let sharp = all.iter().find(|b| b.env == "EKYC_MIN_SHARPNESS");
        let Some(sharp) = sharp else {
            panic!("sharpness bound missing")
        };
        // Data far above the limit: keep the current limit.
        assert_eq!(suggest(sharp, 500.0), f64::from(sharp.current));
        // Data bound below the limit: loosen to it.
        assert_eq!(suggest(sharp, 10.0), 10.0);
        let inside = all.iter().find(|b| b.env == "EKYC_MIN_FACE_INSIDE");
        let Some(inside) = inside else {
            panic!("inside bound missing")
        };
        // All captures fully inside: the data bound is 1.0, the current limit (< 1) stays.
        assert_eq!(data_bound(inside, &[1.0, 1.0, 1.0]), Some(1.0));
        assert_eq!(suggest(inside, 1.0), f64::from(inside.current));
        // A max-side limit: p99 / 0.8, rounded up.
        let yaw = all.iter().find(|b| b.side == Side::Max);
        let Some(yaw) = yaw else {
            panic!("no max-side bound")
        };
        let d = data_bound(yaw, &[0.0, 0.1]).expect("data bound");
        assert!(d >= 0.099 / SAFETY, "{d}");
    }

    #[test]
    fn rounding_is_outward() {
        assert_eq!(round_outward(0.123_45, Side::Min, 3), 0.123);
        assert_eq!(round_outward(0.123_45, Side::Max, 3), 0.124);
    }
}
