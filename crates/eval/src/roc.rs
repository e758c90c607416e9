//! Area under the ROC curve of bona fide against attack scores, with DeLong's variance.
//!
//! # Definitions
//!
//! With `m` bona fide scores `X` and `n` attack scores `Y` (higher = more live):
//!
//! * `ψ(x, y) = 1` if `x > y`, `1/2` if `x == y`, `0` otherwise (ties count one half);
//! * **AUC** `= (1 / mn) Σᵢ Σⱼ ψ(Xᵢ, Yⱼ)` — the Mann–Whitney U statistic divided by `mn`: the
//!   probability that a random bona fide capture scores above a random attack;
//! * DeLong's structural components `V10(Xᵢ) = (1/n) Σⱼ ψ(Xᵢ, Yⱼ)` and
//!   `V01(Yⱼ) = (1/m) Σᵢ ψ(Xᵢ, Yⱼ)`, their sample variances `S10` (denominator `m − 1`) and
//!   `S01` (denominator `n − 1`), and **Var(AUC)** `= S10 / m + S01 / n` (DeLong, DeLong and
//!   Clarke-Pearson 1988);
//! * the **95 % interval** `AUC ± z·√Var` with `z = Φ⁻¹(0.975)`, clamped to `[0, 1]`.
//!
//! The variance needs at least two samples in each class; with fewer it is `None` and the
//! interval is the whole `[0, 1]` (the data say nothing about the spread). When the classes are
//! perfectly separated (or perfectly inverted) every component equals the AUC, the variance is
//! 0 and the interval collapses to a point: that is a property of DeLong's estimator, and it
//! understates the uncertainty of small sets ([`Auc::degenerate`] flags it).
//!
//! The components are computed from the sorted scores in `O((m + n) log(m + n))`.

use serde::{Deserialize, Serialize};

use crate::stats::{inverse_normal_cdf, Interval, CONFIDENCE_95};
use crate::EvalError;

/// The AUC of one score comparison with its DeLong variance and interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Auc {
    /// Area under the ROC curve (ties count one half), in `[0, 1]`.
    pub auc: f64,
    /// DeLong's variance of the AUC; `None` with fewer than two samples in a class.
    pub variance: Option<f64>,
    /// Two-sided normal-approximation interval at [`Auc::confidence`], clamped to `[0, 1]`;
    /// `[0, 1]` when the variance is undefined.
    pub interval: Interval,
    /// Confidence level of [`Auc::interval`] (0.95 for [`auc`]).
    pub confidence: f64,
    /// Number of bona fide scores compared.
    pub bona_fide: usize,
    /// Number of attack scores compared.
    pub attacks: usize,
}

impl Auc {
    /// Lower bound of the interval.
    pub fn lower(&self) -> f64 {
        self.interval.lower
    }

    /// Upper bound of the interval.
    pub fn upper(&self) -> f64 {
        self.interval.upper
    }

    /// `true` when DeLong's variance is exactly 0 (perfect separation or perfect inversion), so
    /// the interval is a single point and says nothing about sampling error.
    pub fn degenerate(&self) -> bool {
        self.variance == Some(0.0)
    }
}

/// [`auc_with_confidence`] at 95 %.
pub fn auc(bona_fide: &[f64], attacks: &[f64]) -> Result<Option<Auc>, EvalError> {
    auc_with_confidence(bona_fide, attacks, CONFIDENCE_95)
}

fn sorted_finite(scores: &[f64], what: &str) -> Result<Vec<f64>, EvalError> {
    if let Some((i, &score)) = scores.iter().enumerate().find(|(_, s)| !s.is_finite()) {
        return Err(EvalError::NonFiniteScore {
            id: format!("{what} #{i}"),
            score,
        });
    }
    let mut v = scores.to_vec();
    v.sort_by(f64::total_cmp);
    Ok(v)
}

/// Twice the number of `others` below `x` plus the number equal to it (`others` ascending):
/// `2 Σⱼ ψ(x, othersⱼ)` as an integer.
fn twice_wins_over(x: f64, others: &[f64]) -> u64 {
    let below = others.partition_point(|o| *o < x);
    let not_above = others.partition_point(|o| *o <= x);
    (2 * below + (not_above - below)) as u64
}

/// Twice the number of `others` above `y` plus the number equal to it (`others` ascending).
fn twice_losses_to(y: f64, others: &[f64]) -> u64 {
    let below = others.partition_point(|o| *o < y);
    let not_above = others.partition_point(|o| *o <= y);
    (2 * (others.len() - not_above) + (not_above - below)) as u64
}

/// Sample variance (denominator `len − 1`) of `values` around `mean`; `None` below 2 values.
fn sample_variance(values: &[f64], mean: f64) -> Option<f64> {
    let k = values.len();
    (k >= 2).then(|| values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (k - 1) as f64)
}

/// AUC of `bona_fide` against `attacks` with DeLong's variance and a two-sided interval at
/// `confidence` (see the module docs). `Ok(None)` when either class is empty; `Err` for a
/// non-finite score or a confidence level outside `(0, 1)`.
pub fn auc_with_confidence(
    bona_fide: &[f64],
    attacks: &[f64],
    confidence: f64,
) -> Result<Option<Auc>, EvalError> {
    if !(confidence.is_finite() && confidence > 0.0 && confidence < 1.0) {
        return Err(EvalError::InvalidConfidence(confidence));
    }
    let x = sorted_finite(bona_fide, "bona fide score")?;
    let y = sorted_finite(attacks, "attack score")?;
    let (m, n) = (x.len(), y.len());
    if m == 0 || n == 0 {
        return Ok(None);
    }
    let twice_u: Vec<u64> = x.iter().map(|&xi| twice_wins_over(xi, &y)).collect();
    let total: u64 = twice_u.iter().sum();
    let auc = total as f64 / (2.0 * m as f64 * n as f64);
    let v10: Vec<f64> = twice_u
        .iter()
        .map(|&t| t as f64 / (2.0 * n as f64))
        .collect();
    let v01: Vec<f64> = y
        .iter()
        .map(|&yj| twice_losses_to(yj, &x) as f64 / (2.0 * m as f64))
        .collect();
    let variance = match (sample_variance(&v10, auc), sample_variance(&v01, auc)) {
        (Some(s10), Some(s01)) => Some(s10 / m as f64 + s01 / n as f64),
        _ => None,
    };
    let interval = match variance {
        Some(var) => {
            let z = inverse_normal_cdf(1.0 - (1.0 - confidence) / 2.0);
            let half = z * var.max(0.0).sqrt();
            Interval {
                lower: (auc - half).clamp(0.0, 1.0),
                upper: (auc + half).clamp(0.0, 1.0),
            }
        }
        None => Interval {
            lower: 0.0,
            upper: 1.0,
        },
    };
    Ok(Some(Auc {
        auc,
        variance,
        interval,
        confidence,
        bona_fide: m,
        attacks: n,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 1e-12;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= EPS
    }

    fn get(bf: &[f64], atk: &[f64]) -> Auc {
        auc(bf, atk)
            .expect("finite scores")
            .expect("both classes present")
    }

    #[test]
    fn perfect_separation() {
        // Every bona fide above every attack: ψ = 1 everywhere, AUC = 1, V10 = V01 = 1,
        // both sample variances 0 → Var = 0, interval [1, 1].
        let a = get(&[0.9, 0.8, 0.7], &[0.1, 0.2]);
        assert_eq!(a.auc, 1.0);
        assert_eq!(a.variance, Some(0.0));
        assert!(a.degenerate());
        assert_eq!((a.lower(), a.upper()), (1.0, 1.0));
        assert_eq!((a.bona_fide, a.attacks), (3, 2));
    }

    #[test]
    fn all_wrong() {
        // Every attack above every bona fide: AUC = 0, Var = 0, interval [0, 0].
        let a = get(&[0.1, 0.2], &[0.8, 0.9, 0.95]);
        assert_eq!(a.auc, 0.0);
        assert_eq!(a.variance, Some(0.0));
        assert_eq!((a.lower(), a.upper()), (0.0, 0.0));
    }

    #[test]
    fn all_tied() {
        // Every pair tied: ψ = 1/2 everywhere → AUC = 0.5, every component 0.5 → Var = 0.
        let a = get(&[0.5, 0.5], &[0.5, 0.5, 0.5]);
        assert_eq!(a.auc, 0.5);
        assert_eq!(a.variance, Some(0.0));
    }

    #[test]
    fn ties_count_half_with_hand_computed_delong_variance() {
        // X (bona fide) = 0.9 0.6 0.4, Y (attacks) = 0.6 0.3 0.2 0.1; m = 3, n = 4.
        // V10: 0.9 beats 4 → 4/4 = 1; 0.6 beats 3, ties 1 → 3.5/4 = 0.875; 0.4 beats 3 → 0.75.
        // AUC = (1 + 0.875 + 0.75) / 3 = 0.875.
        // V01: 0.6 loses to 0.9, ties 0.6 → 1.5/3 = 0.5; 0.3, 0.2, 0.1 lose to all → 1.
        // S10 = (0.125² + 0 + 0.125²) / 2 = 0.015625; S01 = (0.375² + 3·0.125²) / 3 = 0.0625.
        // Var = 0.015625/3 + 0.0625/4 = 1/192 + 1/64 = 1/48 = 0.0208333…
        // sd = 0.1443376; half = 1.959964 · 0.1443376 = 0.2828965 → [0.5921035, 1 (clamped)].
        let a = get(&[0.9, 0.6, 0.4], &[0.6, 0.3, 0.2, 0.1]);
        assert!(close(a.auc, 0.875), "{a:?}");
        let var = a.variance.expect("variance");
        assert!(close(var, 1.0 / 48.0), "{a:?}");
        assert!((a.lower() - 0.592_103_5).abs() < 1e-6, "{a:?}");
        assert_eq!(a.upper(), 1.0);
        assert!(!a.degenerate());
    }

    #[test]
    fn delong_variance_matches_an_independent_numpy_computation() {
        // Checked with the full pairwise matrix in numpy (not the sorted counts used here):
        //
        //   import numpy as np
        //   x = np.array([0.9, 0.8, 0.8, 0.55, 0.4, 0.3])   # bona fide
        //   y = np.array([0.8, 0.5, 0.4, 0.2, 0.1])         # attacks
        //   psi = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])
        //   auc = psi.mean()
        //   var = psi.mean(axis=1).var(ddof=1) / len(x) + psi.mean(axis=0).var(ddof=1) / len(y)
        //   print(repr(auc), repr(var))
        //
        // output: np.float64(0.75) np.float64(0.025111111111111112)
        // (the same script on the previous test's data prints 0.875 and 0.020833333333333332).
        let a = get(&[0.9, 0.8, 0.8, 0.55, 0.4, 0.3], &[0.8, 0.5, 0.4, 0.2, 0.1]);
        assert!(close(a.auc, 0.75), "{a:?}");
        assert!(
            close(a.variance.expect("variance"), 0.025_111_111_111_111_112),
            "{a:?}"
        );
        assert!(a.lower() <= a.auc && a.auc <= a.upper());
    }

    #[test]
    fn swapping_the_classes_mirrors_the_auc_and_keeps_the_variance() {
        let bf = [0.9, 0.8, 0.8, 0.55, 0.4, 0.3];
        let atk = [0.8, 0.5, 0.4, 0.2, 0.1];
        let a = get(&bf, &atk);
        let b = get(&atk, &bf);
        assert!(close(a.auc + b.auc, 1.0));
        let (va, vb) = (
            a.variance.unwrap_or(f64::NAN),
            b.variance.unwrap_or(f64::NAN),
        );
        assert!(close(va, vb), "{va} vs {vb}");
    }

    #[test]
    fn order_of_the_input_does_not_matter() {
        let a = get(&[0.3, 0.9, 0.55, 0.8, 0.4, 0.8], &[0.1, 0.8, 0.2, 0.5, 0.4]);
        assert!(close(a.auc, 0.75));
    }

    #[test]
    fn one_sample_in_a_class_has_no_variance() {
        // X = 0.5, Y = 0.5 0.2: ψ = 1/2, 1 → AUC = 0.75; S10 needs m ≥ 2 → no variance, [0, 1].
        let a = get(&[0.5], &[0.5, 0.2]);
        assert!(close(a.auc, 0.75));
        assert_eq!(a.variance, None);
        assert_eq!((a.lower(), a.upper()), (0.0, 1.0));
    }

    #[test]
    fn empty_class_non_finite_score_and_bad_confidence() {
        assert_eq!(auc(&[], &[0.1]).ok().flatten(), None);
        assert_eq!(auc(&[0.1], &[]).ok().flatten(), None);
        assert!(matches!(
            auc(&[0.1, f64::NAN], &[0.2]),
            Err(EvalError::NonFiniteScore { .. })
        ));
        assert!(matches!(
            auc_with_confidence(&[0.1], &[0.2], 1.0),
            Err(EvalError::InvalidConfidence(_))
        ));
    }

    #[test]
    fn other_confidence_levels_narrow_the_interval() {
        let bf = [0.9, 0.6, 0.4];
        let atk = [0.6, 0.3, 0.2, 0.1];
        let a95 = get(&bf, &atk);
        let a80 = auc_with_confidence(&bf, &atk, 0.80)
            .ok()
            .flatten()
            .expect("auc");
        assert_eq!(a80.confidence, 0.80);
        assert!(a80.lower() > a95.lower());
    }
}
