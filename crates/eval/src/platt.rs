//! Platt scaling fitted on labelled scores (`ekyc calibrate --platt`): a one-feature logistic
//! regression of the class on the clamped `logit(score)` ([`Platt::feature`]), with Platt's (1999) smoothed targets
//! (`(N₊ + 1)/(N₊ + 2)` and `1/(N₋ + 2)`, so a separable set still gives finite parameters) and
//! the two classes weighted equally (each class sums to half the weight), so the calibrated score
//! is the bona fide posterior at equal priors whatever the mix of the calibration data.

use crate::{Class, Sample};
use ekyc_core::liveness::Platt;
use serde::Serialize;

/// A fitted scaling and what it was fitted on.
#[derive(Debug, Clone, Serialize)]
pub struct PlattFit {
    pub platt: Platt,
    pub bona_fide: usize,
    pub attacks: usize,
    /// Newton iterations until the step was below 1e-10.
    pub iterations: usize,
    /// The weighted log-loss (nats per unit weight) before (identity) and after.
    pub log_loss_before: f64,
    pub log_loss_after: f64,
}

/// Why no scaling could be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlattError {
    #[error("Platt scaling needs scored captures of both classes (bona fide {bona_fide}, attacks {attacks})")]
    OneClass { bona_fide: usize, attacks: usize },
    #[error(
        "the fitted slope {a} is not positive: on this data a higher score does not mean more live"
    )]
    NotIncreasing { a: f64 },
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// The weighted log-loss of `p` at the smoothed targets.
fn log_loss(points: &[(f64, f64, f64)], p: Platt) -> f64 {
    let wsum: f64 = points.iter().map(|&(_, _, w)| w).sum();
    let loss: f64 = points
        .iter()
        .map(|&(x, t, w)| {
            let q = sigmoid(p.a * x + p.b).clamp(1e-15, 1.0 - 1e-15);
            -w * (t * q.ln() + (1.0 - t) * (1.0 - q).ln())
        })
        .sum();
    loss / wsum
}

/// Fit on the scored samples (`None` scores, the gate's rejections, are left out).
pub fn fit(samples: &[Sample]) -> Result<PlattFit, PlattError> {
    let scored: Vec<(f64, bool)> = samples
        .iter()
        .filter_map(|s| {
            s.score
                .map(|v| (Platt::feature(v), s.class == Class::BonaFide))
        })
        .collect();
    let pos = scored.iter().filter(|(_, live)| *live).count();
    let neg = scored.len() - pos;
    if pos == 0 || neg == 0 {
        return Err(PlattError::OneClass {
            bona_fide: pos,
            attacks: neg,
        });
    }
    let (t_pos, t_neg) = (
        (pos as f64 + 1.0) / (pos as f64 + 2.0),
        1.0 / (neg as f64 + 2.0),
    );
    let (w_pos, w_neg) = (0.5 / pos as f64, 0.5 / neg as f64);
    let points: Vec<(f64, f64, f64)> = scored
        .iter()
        .map(|&(x, live)| {
            if live {
                (x, t_pos, w_pos)
            } else {
                (x, t_neg, w_neg)
            }
        })
        .collect();
    // Newton's method on the convex weighted log-loss, from the identity; step halving keeps
    // every step a descent.
    let mut p = Platt::IDENTITY;
    let mut loss = log_loss(&points, p);
    let before = loss;
    let mut iterations = 0;
    for _ in 0..100 {
        iterations += 1;
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for &(x, t, w) in &points {
            let q = sigmoid(p.a * x + p.b);
            let d = w * (q - t);
            let v = w * q * (1.0 - q);
            ga += d * x;
            gb += d;
            haa += v * x * x;
            hab += v * x;
            hbb += v;
        }
        // A tiny ridge keeps the 2x2 system solvable when every x is the same.
        let (haa, hbb) = (haa + 1e-12, hbb + 1e-12);
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-300 {
            break;
        }
        let da = (hbb * ga - hab * gb) / det;
        let db = (haa * gb - hab * ga) / det;
        let mut step = 1.0;
        let mut next = Platt {
            a: p.a - da,
            b: p.b - db,
        };
        let mut next_loss = log_loss(&points, next);
        while next_loss > loss && step > 1e-8 {
            step *= 0.5;
            next = Platt {
                a: p.a - step * da,
                b: p.b - step * db,
            };
            next_loss = log_loss(&points, next);
        }
        let moved = (next.a - p.a).abs().max((next.b - p.b).abs());
        if next_loss <= loss {
            p = next;
            loss = next_loss;
        }
        if moved < 1e-10 {
            break;
        }
    }
    if p.a <= 0.0 {
        return Err(PlattError::NotIncreasing { a: p.a });
    }
    Ok(PlattFit {
        platt: p,
        bona_fide: pos,
        attacks: neg,
        iterations,
        log_loss_before: before,
        log_loss_after: loss,
    })
}

/// The samples with their scores put through `p` (the gate's rejections stay `None`).
pub fn rescore(samples: &[Sample], p: Platt) -> Vec<Sample> {
    samples
        .iter()
        .map(|s| Sample {
            id: s.id.clone(),
            class: s.class.clone(),
            score: s.score.map(|v| p.apply(v)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attack(id: &str, v: f64) -> Sample {
        Sample {
            id: id.into(),
            class: Class::Attack("print".into()),
            score: Some(v),
        }
    }

    #[test]
    fn recovers_a_known_scaling() {
        // Scores whose logits are spread evenly, with the class frequencies of
        // sigmoid(2·x − 1) at each logit x: the fit must come back near a = 2, b = −1. With many
        // points per logit the smoothing and the equal-class weighting move it only a little
        // (the weighting shifts b by ln(N₋/N₊), here checked by hand below).
        let mut samples = Vec::new();
        let mut pos = 0usize;
        let mut neg = 0usize;
        for i in -20..=20 {
            let x = f64::from(i) * 0.15;
            let q = sigmoid(2.0 * x - 1.0);
            let raw = sigmoid(x);
            let n_live = (q * 1000.0).round() as usize;
            for k in 0..1000 {
                if k < n_live {
                    samples.push(Sample::bona_fide(format!("{i}-{k}"), Some(raw)));
                    pos += 1;
                } else {
                    samples.push(attack(&format!("{i}-{k}"), raw));
                    neg += 1;
                }
            }
        }
        let fit = fit(&samples).expect("fit");
        // Equal-class weighting: b moves by ln(neg/pos) from the unweighted −1.
        let b = -1.0 + (neg as f64 / pos as f64).ln();
        assert!((fit.platt.a - 2.0).abs() < 0.02, "{:?}", fit.platt);
        assert!((fit.platt.b - b).abs() < 0.02, "{:?} vs b {b}", fit.platt);
        assert!(fit.log_loss_after <= fit.log_loss_before);
        assert_eq!((fit.bona_fide, fit.attacks), (pos, neg));
    }

    #[test]
    fn separable_data_stays_finite_and_increasing() {
        let samples = vec![
            Sample::bona_fide("a", Some(0.9)),
            Sample::bona_fide("b", Some(0.8)),
            Sample::bona_fide("c", Some(0.95)),
            attack("d", 0.1),
            attack("e", 0.3),
        ];
        let fit = fit(&samples).expect("fit");
        assert!(
            fit.platt.a > 0.0 && fit.platt.a.is_finite(),
            "{:?}",
            fit.platt
        );
        // Balanced classes: the midpoint between the groups maps near 0.5.
        let mid = fit.platt.apply(0.55);
        assert!((0.2..0.8).contains(&mid), "{mid}");
        assert!(fit.platt.apply(0.9) > 0.75 && fit.platt.apply(0.1) < 0.25);
    }

    #[test]
    fn one_class_or_a_decreasing_score_is_an_error() {
        let only_live = vec![
            Sample::bona_fide("a", Some(0.9)),
            Sample::bona_fide("b", None),
        ];
        assert_eq!(
            fit(&only_live).unwrap_err(),
            PlattError::OneClass {
                bona_fide: 1,
                attacks: 0
            }
        );
        let upside_down = vec![
            Sample::bona_fide("a", Some(0.1)),
            Sample::bona_fide("b", Some(0.2)),
            attack("c", 0.9),
            attack("d", 0.8),
        ];
        assert!(matches!(
            fit(&upside_down),
            Err(PlattError::NotIncreasing { .. })
        ));
        // Rescoring keeps the gate's rejections and applies the scaling.
        let p = Platt { a: 2.0, b: 0.0 };
        let r = rescore(&[Sample::bona_fide("x", None), attack("y", 0.5)], p);
        assert_eq!(r[0].score, None);
        assert!((r[1].score.unwrap_or(0.0) - 0.5).abs() < 1e-12);
    }
}
