//! Numerical building blocks: error-rate counts with binomial confidence
//! intervals (Wilson score and Clopper–Pearson "exact"), the inverse normal
//! CDF (Wichura's AS241, used for Wilson's z and for the DET probit axes) and
//! the regularized incomplete beta function (Lentz continued fraction, used
//! for Clopper–Pearson).
//!
//! Everything here is dependency-free `f64` arithmetic; [`quantile`] is the one
//! percentile definition of the crate (reports, calibration, benchmarks).

use serde::{Deserialize, Serialize};

use super::EvalError;

/// Default confidence level for every interval in reports.
pub const CONFIDENCE_95: f64 = 0.95;

/// An error rate as raw counts: `errors` out of `total` trials.
///
/// Keeping the counts (not just the ratio) is what makes confidence intervals
/// and "absent" (0 trials) possible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rate {
    pub errors: usize,
    pub total: usize,
}

impl Rate {
    pub fn new(errors: usize, total: usize) -> Self {
        Self { errors, total }
    }

    /// `errors / total`, or `None` when there are no trials (the rate is
    /// absent, not 0). Also `None` for a malformed rate with
    /// `errors > total`, which this module never produces.
    pub fn value(&self) -> Option<f64> {
        if self.total == 0 || self.errors > self.total {
            None
        } else {
            Some(self.errors as f64 / self.total as f64)
        }
    }

    /// Wilson score interval at the given two-sided confidence level.
    pub fn wilson(&self, confidence: f64) -> Result<Option<Interval>, EvalError> {
        wilson_interval(self.errors, self.total, confidence)
    }

    /// Clopper–Pearson (exact binomial) interval at the given two-sided
    /// confidence level.
    pub fn clopper_pearson(&self, confidence: f64) -> Result<Option<Interval>, EvalError> {
        clopper_pearson_interval(self.errors, self.total, confidence)
    }

    /// 95% Wilson interval; `None` when the rate is absent.
    pub fn wilson95(&self) -> Option<Interval> {
        self.wilson(CONFIDENCE_95).ok().flatten()
    }

    /// 95% Clopper–Pearson interval; `None` when the rate is absent.
    pub fn clopper_pearson95(&self) -> Option<Interval> {
        self.clopper_pearson(CONFIDENCE_95).ok().flatten()
    }

    /// Counts, value and both 95% intervals, ready to serialise.
    pub fn summary(&self) -> RateSummary {
        RateSummary {
            errors: self.errors,
            total: self.total,
            value: self.value(),
            wilson95: self.wilson95(),
            clopper_pearson95: self.clopper_pearson95(),
        }
    }
}

/// A closed interval `[lower, upper]` within `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub lower: f64,
    pub upper: f64,
}

/// A [`Rate`] together with its value and 95% intervals, as written to
/// reports. `value`/intervals are `None` ("absent") when `total == 0`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateSummary {
    pub errors: usize,
    pub total: usize,
    pub value: Option<f64>,
    pub wilson95: Option<Interval>,
    pub clopper_pearson95: Option<Interval>,
}

impl RateSummary {
    pub fn rate(&self) -> Rate {
        Rate::new(self.errors, self.total)
    }
}

fn check_confidence(confidence: f64) -> Result<(), EvalError> {
    if confidence.is_finite() && confidence > 0.0 && confidence < 1.0 {
        Ok(())
    } else {
        Err(EvalError::InvalidConfidence(confidence))
    }
}

/// Wilson score interval for `errors` successes out of `total` trials.
///
/// `Ok(None)` when `total == 0` or `errors > total`; `Err` when
/// `confidence` is not strictly between 0 and 1.
///
/// With `p = errors/total`, `z = Φ⁻¹(1 − α/2)`:
/// `centre = (p + z²/2n) / (1 + z²/n)`,
/// `half = z·sqrt(p(1−p)/n + z²/4n²) / (1 + z²/n)`.
pub fn wilson_interval(
    errors: usize,
    total: usize,
    confidence: f64,
) -> Result<Option<Interval>, EvalError> {
    check_confidence(confidence)?;
    if total == 0 || errors > total {
        return Ok(None);
    }
    let n = total as f64;
    let p = errors as f64 / n;
    let z = inverse_normal_cdf(1.0 - (1.0 - confidence) / 2.0);
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    // At k = 0 (k = n) the lower (upper) bound is exactly 0 (1); set it so
    // rounding does not leave 1e-17.
    let lower = if errors == 0 {
        0.0
    } else {
        (centre - half).max(0.0)
    };
    let upper = if errors == total {
        1.0
    } else {
        (centre + half).min(1.0)
    };
    Ok(Some(Interval { lower, upper }))
}

/// Clopper–Pearson ("exact") interval for `errors` out of `total`.
///
/// `lower = B⁻¹(α/2; k, n−k+1)` (0 when k = 0),
/// `upper = B⁻¹(1−α/2; k+1, n−k)` (1 when k = n), where `B⁻¹` is the
/// quantile of the Beta distribution. The k = 0 and k = n bounds have the
/// closed forms `1 − (α/2)^(1/n)` and `(α/2)^(1/n)`, which are used directly.
///
/// `Ok(None)` when `total == 0` or `errors > total`; `Err` for an invalid
/// confidence level.
pub fn clopper_pearson_interval(
    errors: usize,
    total: usize,
    confidence: f64,
) -> Result<Option<Interval>, EvalError> {
    check_confidence(confidence)?;
    if total == 0 || errors > total {
        return Ok(None);
    }
    let half_alpha = (1.0 - confidence) / 2.0;
    let k = errors as f64;
    let n = total as f64;
    let lower = if errors == 0 {
        0.0
    } else if errors == total {
        half_alpha.powf(1.0 / n)
    } else {
        inverse_regularized_incomplete_beta(half_alpha, k, n - k + 1.0)
    };
    let upper = if errors == total {
        1.0
    } else if errors == 0 {
        1.0 - half_alpha.powf(1.0 / n)
    } else {
        inverse_regularized_incomplete_beta(1.0 - half_alpha, k + 1.0, n - k)
    };
    Ok(Some(Interval { lower, upper }))
}

/// Smallest number of trials `n` for which observing **zero** errors gives a
/// two-sided Clopper–Pearson upper bound `1 − (α/2)^(1/n)` at or below
/// `target`. `None` when no finite `n` can (target ≤ 0) or inputs are invalid.
///
/// Example: target 1%, 95% confidence → 368 (because
/// ln(0.025)/ln(0.99) = 367.04).
pub fn min_trials_for_zero_error_bound(target: f64, confidence: f64) -> Option<usize> {
    if check_confidence(confidence).is_err() || !target.is_finite() || target <= 0.0 {
        return None;
    }
    if target >= 1.0 {
        return Some(1);
    }
    let half_alpha = (1.0 - confidence) / 2.0;
    let n = (half_alpha.ln() / (1.0 - target).ln()).ceil();
    if !n.is_finite() || n < 1.0 {
        return Some(1);
    }
    let mut n = n as usize;
    // Guard against rounding at the boundary: make the bound really hold.
    while 1.0 - half_alpha.powf(1.0 / n as f64) > target {
        n += 1;
    }
    while n > 1 && 1.0 - half_alpha.powf(1.0 / (n - 1) as f64) <= target {
        n -= 1;
    }
    Some(n)
}

fn polyval(coeffs: &[f64], x: f64) -> f64 {
    coeffs.iter().rev().fold(0.0, |acc, &c| acc * x + c)
}

/// Inverse of the standard normal CDF (the probit / normal deviate),
/// Wichura 1988, algorithm AS241 (PPND16), relative accuracy about 1e-16.
///
/// Returns `-∞` at 0, `+∞` at 1 and `NaN` outside `[0, 1]`.
// The coefficients are kept digit-for-digit as published so they can be
// checked against the paper; f64 rounds the excess digits away.
#[allow(clippy::excessive_precision)]
pub fn inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 8] = [
        3.387_132_872_796_366_608,
        1.331_416_678_917_843_774_5e2,
        1.971_590_950_306_551_442_7e3,
        1.373_169_376_550_946_112_5e4,
        4.592_195_393_154_987_145_7e4,
        6.726_577_092_700_870_085_3e4,
        3.343_057_558_358_812_810_5e4,
        2.509_080_928_730_122_672_7e3,
    ];
    const B: [f64; 8] = [
        1.0,
        4.231_333_070_160_091_125_2e1,
        6.871_870_074_920_579_083e2,
        5.394_196_021_424_751_107_7e3,
        2.121_379_430_158_659_586_7e4,
        3.930_789_580_009_271_061e4,
        2.872_908_573_572_194_267_4e4,
        5.226_495_278_852_854_561e3,
    ];
    const C: [f64; 8] = [
        1.423_437_110_749_683_577_34,
        4.630_337_846_156_545_295_9,
        5.769_497_221_460_691_405_5,
        3.647_848_324_763_204_605_04,
        1.270_458_252_452_368_382_58,
        2.417_807_251_774_506_117_7e-1,
        2.272_384_498_926_918_458_33e-2,
        7.745_450_142_783_414_076_4e-4,
    ];
    const D: [f64; 8] = [
        1.0,
        2.053_191_626_637_758_821_87,
        1.676_384_830_183_803_849_4,
        6.897_673_349_851_000_045_5e-1,
        1.481_039_764_274_800_745_9e-1,
        1.519_866_656_361_645_719_66e-2,
        5.475_938_084_995_344_946e-4,
        1.050_750_071_644_416_843_24e-9,
    ];
    const E: [f64; 8] = [
        6.657_904_643_501_103_777_2,
        5.463_784_911_164_114_369_9,
        1.784_826_539_917_291_335_8,
        2.965_605_718_285_048_912_3e-1,
        2.653_218_952_657_612_309_3e-2,
        1.242_660_947_388_078_438_6e-3,
        2.711_555_568_743_487_578_15e-5,
        2.010_334_399_292_288_132_65e-7,
    ];
    const F: [f64; 8] = [
        1.0,
        5.998_322_065_558_879_376_9e-1,
        1.369_298_809_227_358_053_1e-1,
        1.487_536_129_085_061_485_25e-2,
        7.868_691_311_456_132_591e-4,
        1.846_318_317_510_054_681_8e-5,
        1.421_511_758_316_445_888_7e-7,
        2.044_263_103_389_939_785_64e-15,
    ];

    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180_625 - q * q;
        return q * polyval(&A, r) / polyval(&B, r);
    }
    let tail = if q < 0.0 { p } else { 1.0 - p };
    let r = (-tail.ln()).sqrt();
    let x = if r <= 5.0 {
        let r = r - 1.6;
        polyval(&C, r) / polyval(&D, r)
    } else {
        let r = r - 5.0;
        polyval(&E, r) / polyval(&F, r)
    };
    if q < 0.0 {
        -x
    } else {
        x
    }
}

/// Natural log of the gamma function for `x > 0` (Lanczos, g = 7, n = 9;
/// relative error around 1e-15).
#[allow(clippy::excessive_precision)]
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEF: [f64; 9] = [
        0.999_999_999_999_809_93,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_13,
        -176.615_029_162_140_59,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_571_6e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1−x) = π / sin(πx).
        let s = (std::f64::consts::PI * x).sin();
        return (std::f64::consts::PI / s.abs()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut acc = COEF[0];
    for (i, &c) in COEF.iter().enumerate().skip(1) {
        acc += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + acc.ln()
}

/// Continued fraction for the incomplete beta function, modified Lentz.
fn beta_continued_fraction(x: f64, a: f64, b: f64) -> f64 {
    const MAX_ITER: usize = 10_000;
    const EPS: f64 = 1e-15;
    const TINY: f64 = 1e-300;
    let qab = a + b;
    let qap = a + 1.0;
    let qam = a - 1.0;
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=MAX_ITER {
        let m = m as f64;
        let m2 = 2.0 * m;
        // Even step.
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        // Odd step.
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// Regularized incomplete beta function `I_x(a, b)` for `a, b > 0`,
/// `x` clamped to `[0, 1]`; `NaN` for invalid `a`, `b` or `x`.
pub fn regularized_incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    let valid_shape = |v: f64| v.is_finite() && v > 0.0;
    if x.is_nan() || !valid_shape(a) || !valid_shape(b) {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    // The continued fraction converges fast for x < (a+1)/(a+b+2); use the
    // symmetry I_x(a,b) = 1 − I_{1−x}(b,a) on the other side.
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_continued_fraction(x, a, b) / a
    } else {
        1.0 - front * beta_continued_fraction(1.0 - x, b, a) / b
    }
}

/// Quantile of the Beta(a, b) distribution: the `x` with `I_x(a, b) = p`,
/// found by bisection (I_x is monotone in x), to about 1e-15.
pub fn inverse_regularized_incomplete_beta(p: f64, a: f64, b: f64) -> f64 {
    let valid_shape = |v: f64| v.is_finite() && v > 0.0;
    if p.is_nan() || !(0.0..=1.0).contains(&p) || !valid_shape(a) || !valid_shape(b) {
        return f64::NAN;
    }
    if p == 0.0 {
        return 0.0;
    }
    if p == 1.0 {
        return 1.0;
    }
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if regularized_incomplete_beta(mid, a, b) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Quantile `q` ∈ [0, 1] (clamped) of `sorted` (ascending, finite) by linear
/// interpolation between the closest ranks (numpy's default, "type 7"):
/// position `q · (n − 1)`. `None` for no data.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let pos = q.clamp(0.0, 1.0) * last as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let (a, b) = (*sorted.get(lo)?, *sorted.get(hi)?);
    Some(a + (b - a) * (pos - lo as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn inverse_normal_known_values() {
        // Reference values from mpmath (50 digits), rounded:
        // Φ⁻¹(0.975) = 1.959963984540054
        assert!(close(
            inverse_normal_cdf(0.975),
            1.959_963_984_540_054,
            1e-12
        ));
        assert!(close(
            inverse_normal_cdf(0.025),
            -1.959_963_984_540_054,
            1e-12
        ));
        // Central region: Φ⁻¹(0.9) = 1.2815515655446004
        assert!(close(
            inverse_normal_cdf(0.9),
            1.281_551_565_544_600_4,
            1e-12
        ));
        // Intermediate tail (r <= 5): Φ⁻¹(0.001) = -3.090232306167813
        assert!(close(
            inverse_normal_cdf(0.001),
            -3.090_232_306_167_813,
            1e-11
        ));
        // Far tail (r > 5): Φ⁻¹(1e-20) = -9.262340089798408
        assert!(close(
            inverse_normal_cdf(1e-20),
            -9.262_340_089_798_408,
            1e-9
        ));
        assert_eq!(inverse_normal_cdf(0.5), 0.0);
        assert_eq!(inverse_normal_cdf(0.0), f64::NEG_INFINITY);
        assert_eq!(inverse_normal_cdf(1.0), f64::INFINITY);
        assert!(inverse_normal_cdf(1.5).is_nan());
        assert!(inverse_normal_cdf(f64::NAN).is_nan());
    }

    #[test]
    fn ln_gamma_known_values() {
        // Γ(5) = 24; Γ(0.5) = sqrt(π); Γ(10) = 362880.
        assert!(close(ln_gamma(5.0), 24f64.ln(), 1e-13));
        assert!(close(
            ln_gamma(0.5),
            std::f64::consts::PI.sqrt().ln(),
            1e-13
        ));
        assert!(close(ln_gamma(10.0), 362_880f64.ln(), 1e-12));
    }

    #[test]
    fn incomplete_beta_known_values() {
        // I_x(1,1) = x (uniform CDF).
        assert!(close(
            regularized_incomplete_beta(0.3, 1.0, 1.0),
            0.3,
            1e-14
        ));
        // I_x(a,1) = x^a.
        assert!(close(
            regularized_incomplete_beta(0.5, 3.0, 1.0),
            0.125,
            1e-14
        ));
        // I_x(1,b) = 1 − (1−x)^b.
        assert!(close(
            regularized_incomplete_beta(0.2, 1.0, 4.0),
            1.0 - 0.8f64.powi(4),
            1e-14
        ));
        // I_0.5(2,3): Beta(2,3) CDF at 0.5 = sum_{j=2}^{4} C(4,j) 0.5^4 = (6+4+1)/16 = 0.6875.
        assert!(close(
            regularized_incomplete_beta(0.5, 2.0, 3.0),
            0.6875,
            1e-14
        ));
        // Symmetry branch (x above the switch point): I_0.9(2,3) =
        // sum_{j=2}^{4} C(4,j) .9^j .1^(4-j) = 6*.81*.01 + 4*.729*.1 + .6561 = 0.9963.
        assert!(close(
            regularized_incomplete_beta(0.9, 2.0, 3.0),
            0.9963,
            1e-13
        ));
        // Round trip of the quantile.
        let x = inverse_regularized_incomplete_beta(0.6875, 2.0, 3.0);
        assert!(close(x, 0.5, 1e-12));
    }

    #[test]
    fn clopper_pearson_known_values() {
        // 0/10: upper = 1 − 0.025^(1/10) = 1 − 0.6915029 = 0.3084971.
        let ci = clopper_pearson_interval(0, 10, 0.95).unwrap().unwrap();
        assert_eq!(ci.lower, 0.0);
        assert!(close(ci.upper, 0.308_497_1, 1e-6), "{ci:?}");
        // 10/10 mirrors it.
        let ci = clopper_pearson_interval(10, 10, 0.95).unwrap().unwrap();
        assert!(close(ci.lower, 0.691_502_9, 1e-6));
        assert_eq!(ci.upper, 1.0);
        // 5/10: [0.18708603, 0.81291397] (R: binom.test(5, 10)$conf.int).
        let ci = clopper_pearson_interval(5, 10, 0.95).unwrap().unwrap();
        assert!(close(ci.lower, 0.187_086_0, 1e-6), "{ci:?}");
        assert!(close(ci.upper, 0.812_914_0, 1e-6), "{ci:?}");
        // 1/20: [0.00126509, 0.24873266] (R: binom.test(1, 20)$conf.int).
        let ci = clopper_pearson_interval(1, 20, 0.95).unwrap().unwrap();
        assert!(close(ci.lower, 0.001_265_1, 1e-6), "{ci:?}");
        assert!(close(ci.upper, 0.248_732_7, 1e-6), "{ci:?}");
        // Absent and invalid.
        assert_eq!(clopper_pearson_interval(0, 0, 0.95).unwrap(), None);
        assert!(clopper_pearson_interval(1, 2, 1.0).is_err());
    }

    #[test]
    fn wilson_known_values() {
        // 5/10, z = 1.959964, z² = 3.841459:
        // denom = 1 + 0.3841459 = 1.3841459; centre = (0.5 + 0.1920729)/1.3841459 = 0.5
        // half = 1.959964 * sqrt(0.025 + 0.0096036)/1.3841459 = 0.263407
        // → [0.236593, 0.763407]
        let ci = wilson_interval(5, 10, 0.95).unwrap().unwrap();
        assert!(close(ci.lower, 0.236_593, 2e-6), "{ci:?}");
        assert!(close(ci.upper, 0.763_407, 2e-6), "{ci:?}");
        // 0/10: centre = 0.1920729/1.3841459 = 0.138767, half = 1.959964 *
        // sqrt(0.0096036)/1.3841459 = 0.138767 → [0, 0.277533].
        let ci = wilson_interval(0, 10, 0.95).unwrap().unwrap();
        assert_eq!(ci.lower, 0.0);
        assert!(close(ci.upper, 0.277_533, 2e-6), "{ci:?}");
        assert_eq!(wilson_interval(0, 0, 0.95).unwrap(), None);
        assert!(wilson_interval(0, 1, 0.0).is_err());
    }

    #[test]
    fn rate_value_and_summary() {
        assert_eq!(Rate::new(1, 4).value(), Some(0.25));
        assert_eq!(Rate::new(0, 0).value(), None);
        assert_eq!(Rate::new(5, 4).value(), None);
        let s = Rate::new(0, 10).summary();
        assert_eq!(s.value, Some(0.0));
        assert!(close(s.clopper_pearson95.unwrap().upper, 0.3085, 1e-4));
        let absent = Rate::new(0, 0).summary();
        assert_eq!(absent.value, None);
        assert_eq!(absent.wilson95, None);
        assert_eq!(absent.clopper_pearson95, None);
    }

    #[test]
    fn min_trials_zero_error() {
        // ln(0.025)/ln(0.99) = 367.04 → 368; check the bound really holds at
        // 368 and not at 367.
        assert_eq!(min_trials_for_zero_error_bound(0.01, 0.95), Some(368));
        assert!(1.0 - 0.025f64.powf(1.0 / 368.0) <= 0.01);
        assert!(1.0 - 0.025f64.powf(1.0 / 367.0) > 0.01);
        // 5%: ln(0.025)/ln(0.95) = 71.92 → 72.
        assert_eq!(min_trials_for_zero_error_bound(0.05, 0.95), Some(72));
        assert_eq!(min_trials_for_zero_error_bound(0.0, 0.95), None);
    }

    #[test]
    fn quantile_interpolates_linearly() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&v, 0.5), Some(3.0));
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&v, 1.0), Some(5.0));
        assert_eq!(quantile(&v, 0.25), Some(2.0));
        // Between ranks: position 0.95 · 4 = 3.8 → 4 + 0.8 · (5 − 4).
        assert!(close(quantile(&v, 0.95).unwrap(), 4.8, 1e-12));
        // Out-of-range q is clamped.
        assert_eq!(quantile(&v, -1.0), Some(1.0));
        assert_eq!(quantile(&v, 2.0), Some(5.0));
        // Even count: the median is the mean of the middle two.
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 10.0], 0.5), Some(2.5));
        assert_eq!(quantile(&[7.0], 0.99), Some(7.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
