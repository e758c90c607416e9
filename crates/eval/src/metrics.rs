//! ISO/IEC 30107-3 error rates, the threshold sweep and everything derived
//! from it (EER, BPCER@APCER, APCER@BPCER, calibration, DET points).
//!
//! # Threshold sweep
//!
//! The candidate thresholds are every distinct score among the scored
//! (non-gated) samples, in ascending order, plus one value above the maximum
//! (the next representable `f64`, [`f64::next_up`]) at which everything is
//! rejected. Because a sample is accepted iff `score >= threshold`, these
//! candidates realise every distinct (APCER, BPCER) pair the data allows.
//!
//! # Selection rules (all comparisons of rates are exact, on the counts)
//!
//! * **EER**: among candidates where both APCER_max and BPCER are defined, the
//!   one minimising |APCER_max − BPCER|; ties go to the lowest threshold. The
//!   EER is reported as the mean (APCER_max + BPCER) / 2 at that candidate,
//!   together with both rates and the remaining gap, so a coarse crossing is
//!   visible rather than hidden by interpolation.
//! * **BPCER @ APCER ≤ x**: among candidates with APCER_max ≤ x, the lowest
//!   BPCER; ties go to the lower APCER_max, then to the highest threshold.
//! * **APCER @ BPCER ≤ x**: among candidates with BPCER ≤ x, the lowest
//!   APCER_max; ties go to the lower BPCER, then to the highest threshold.
//!   (When both rates tie, a higher threshold rejects the same bona fide and
//!   no more attacks of any type, so it is never worse.)
//! * If no candidate meets a target the answer is `None`: nothing is
//!   extrapolated.
//! * **APCER_max** picks the attack type with the highest APCER; ties go to
//!   the type with fewer counted samples (the wider, more cautious interval),
//!   then to the alphabetically first type.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::report::fmt_pct;
use super::stats::{min_trials_for_zero_error_bound, Rate, RateSummary, CONFIDENCE_95};
use super::{Class, EvalError, GatePolicy, Sample};

/// Scores of one population, sorted ascending, plus its gated count.
#[derive(Debug, Clone, Default)]
struct Population {
    scores: Vec<f64>,
    gated: usize,
}

impl Population {
    fn counted(&self, policy: GatePolicy) -> usize {
        match policy {
            GatePolicy::CountAsRejected => self.scores.len() + self.gated,
            GatePolicy::Exclude => self.scores.len(),
        }
    }

    /// Number of scored samples with `score < threshold` (rejected).
    fn below(&self, threshold: f64) -> usize {
        self.scores.partition_point(|s| *s < threshold)
    }

    /// BPCER-style rate: rejected / counted (gated count as rejected under
    /// `CountAsRejected`).
    fn rejection_rate(&self, threshold: f64, policy: GatePolicy) -> Rate {
        let gated_rejected = match policy {
            GatePolicy::CountAsRejected => self.gated,
            GatePolicy::Exclude => 0,
        };
        Rate::new(self.below(threshold) + gated_rejected, self.counted(policy))
    }

    /// APCER-style rate: accepted / counted (gated attacks are never
    /// accepted).
    fn acceptance_rate(&self, threshold: f64, policy: GatePolicy) -> Rate {
        Rate::new(
            self.scores.len() - self.below(threshold),
            self.counted(policy),
        )
    }

    fn count(&self, policy: GatePolicy) -> ClassCount {
        ClassCount {
            total: self.scores.len() + self.gated,
            scored: self.scores.len(),
            gated: self.gated,
            counted: self.counted(policy),
        }
    }
}

/// Exact comparison of two defined rates by value (`e1/t1` vs `e2/t2`).
/// Rates with `total == 0` compare as equal to each other and below
/// everything; callers filter them out first.
pub(crate) fn cmp_rate(a: &Rate, b: &Rate) -> Ordering {
    match (a.total, b.total) {
        (0, 0) => Ordering::Equal,
        (0, _) => Ordering::Less,
        (_, 0) => Ordering::Greater,
        _ => {
            let lhs = a.errors as u128 * b.total as u128;
            let rhs = b.errors as u128 * a.total as u128;
            lhs.cmp(&rhs)
        }
    }
}

/// Exact comparison of |a − b| for two pairs of defined rates.
fn cmp_gap(a: (&Rate, &Rate), b: (&Rate, &Rate)) -> Ordering {
    // |e1/t1 − e2/t2| = |e1 t2 − e2 t1| / (t1 t2), as a fraction num/den.
    fn gap(x: &Rate, y: &Rate) -> (u128, u128) {
        let l = x.errors as u128 * y.total as u128;
        let r = y.errors as u128 * x.total as u128;
        (l.abs_diff(r), x.total as u128 * y.total as u128)
    }
    let (n1, d1) = gap(a.0, a.1);
    let (n2, d2) = gap(b.0, b.1);
    // Values up to ~4e9 samples stay inside u128 here; saturate beyond.
    n1.saturating_mul(d2).cmp(&n2.saturating_mul(d1))
}

/// The worst (highest) defined rate; ties → fewer counted samples → first.
fn worst_rate<'a, I>(rates: I) -> Option<(&'a str, Rate)>
where
    I: IntoIterator<Item = (&'a str, Rate)>,
{
    let mut best: Option<(&'a str, Rate)> = None;
    for (name, rate) in rates {
        if rate.value().is_none() {
            continue;
        }
        best = match best {
            None => Some((name, rate)),
            Some((bn, br)) => match cmp_rate(&rate, &br) {
                Ordering::Greater => Some((name, rate)),
                Ordering::Equal if rate.total < br.total => Some((name, rate)),
                _ => Some((bn, br)),
            },
        };
    }
    best
}

fn check_threshold(threshold: f64) -> Result<(), EvalError> {
    if threshold.is_finite() {
        Ok(())
    } else {
        Err(EvalError::InvalidThreshold(threshold))
    }
}

fn check_target(x: f64) -> Result<(), EvalError> {
    if x.is_finite() && (0.0..=1.0).contains(&x) {
        Ok(())
    } else {
        Err(EvalError::InvalidTarget(x))
    }
}

fn rate_le(rate: &Rate, x: f64) -> bool {
    rate.value().is_some_and(|v| v <= x)
}

/// Sample counts of one class (or attack type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ClassCount {
    /// All samples of the class.
    pub total: usize,
    /// Samples with a liveness score.
    pub scored: usize,
    /// Samples rejected by the quality gate (no score).
    pub gated: usize,
    /// Samples that enter the rates under the gate policy
    /// (`scored + gated` for `CountAsRejected`, `scored` for `Exclude`).
    pub counted: usize,
}

impl ClassCount {
    fn add(&mut self, other: &ClassCount) {
        self.total += other.total;
        self.scored += other.scored;
        self.gated += other.gated;
        self.counted += other.counted;
    }
}

/// Sample counts per class and attack type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub policy: GatePolicy,
    pub bona_fide: ClassCount,
    /// Per attack type, including declared types with no samples.
    pub attacks: BTreeMap<String, ClassCount>,
}

impl Counts {
    /// All attack types added up.
    pub fn attack_total(&self) -> ClassCount {
        let mut sum = ClassCount::default();
        for c in self.attacks.values() {
            sum.add(c);
        }
        sum
    }
}

/// All rates at one threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatingPoint {
    pub threshold: f64,
    /// APCER per attack type; a type with `total == 0` is absent
    /// (`value() == None`) and excluded from the maximum.
    pub apcer_per_type: BTreeMap<String, Rate>,
    /// ISO APCER: the maximum over present attack types; `None` if none.
    pub apcer_max: Option<Rate>,
    /// The attack type that attains `apcer_max`.
    pub apcer_max_type: Option<String>,
    pub bpcer: Rate,
}

impl OperatingPoint {
    /// ACER = (APCER_max + BPCER) / 2. Deprecated by ISO/IEC 30107-3;
    /// provided for comparison with papers. `None` if either is undefined.
    pub fn acer(&self) -> Option<f64> {
        let a = self.apcer_max.as_ref()?.value()?;
        let b = self.bpcer.value()?;
        Some((a + b) / 2.0)
    }

    /// This point on the DET curve (the marker of the threshold in use); `None` unless both
    /// APCER_max and BPCER are defined.
    pub fn det_point(&self) -> Option<DetPoint> {
        Some(DetPoint {
            threshold: self.threshold,
            apcer: self.apcer_max.as_ref()?.value()?,
            bpcer: self.bpcer.value()?,
        })
    }
}

/// One candidate of the threshold sweep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    pub threshold: f64,
    /// `None` when no attack type has counted samples.
    pub apcer_max: Option<Rate>,
    pub bpcer: Rate,
}

/// A point of the DET curve (both rates defined).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DetPoint {
    pub threshold: f64,
    pub apcer: f64,
    pub bpcer: f64,
}

/// Equal error rate, by the rule in the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Eer {
    pub threshold: f64,
    /// (APCER_max + BPCER) / 2 at `threshold`.
    pub eer: f64,
    pub apcer_max: Rate,
    pub bpcer: Rate,
    /// |APCER_max − BPCER| at `threshold` (0 when the curves meet exactly).
    pub gap: f64,
}

/// Calibration target: the maximum acceptable rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Target {
    /// Lowest-BPCER threshold with APCER_max ≤ x.
    Apcer(f64),
    /// Lowest-APCER_max threshold with BPCER ≤ x.
    Bpcer(f64),
}

impl Target {
    pub fn value(&self) -> f64 {
        match self {
            Target::Apcer(x) | Target::Bpcer(x) => *x,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Target::Apcer(_) => "APCER",
            Target::Bpcer(_) => "BPCER",
        }
    }
}

/// Result of [`calibrate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub target: Target,
    /// Chosen threshold; `None` if no candidate meets the target.
    pub threshold: Option<f64>,
    /// Achieved APCER_max (with 95% intervals) at the chosen threshold.
    pub apcer_max: Option<RateSummary>,
    pub apcer_max_type: Option<String>,
    pub apcer_per_type: BTreeMap<String, RateSummary>,
    /// Achieved BPCER (with 95% intervals) at the chosen threshold.
    pub bpcer: Option<RateSummary>,
    /// `false` when the relevant population is too small for zero errors to
    /// put the 95% Clopper–Pearson upper bound at or below the target.
    pub supported_by_sample_size: bool,
    /// Plain-language caveats.
    pub notes: Vec<String>,
}

/// Scores split by class, ready for repeated threshold queries.
#[derive(Debug, Clone)]
pub struct ScoreSet {
    policy: GatePolicy,
    bona_fide: Population,
    attacks: BTreeMap<String, Population>,
}

impl ScoreSet {
    /// Splits the samples by class. Fails on a NaN or infinite score.
    pub fn new(samples: &[Sample], policy: GatePolicy) -> Result<Self, EvalError> {
        let mut bona_fide = Population::default();
        let mut attacks: BTreeMap<String, Population> = BTreeMap::new();
        for s in samples {
            let pop = match &s.class {
                Class::BonaFide => &mut bona_fide,
                Class::Attack(t) => attacks.entry(t.clone()).or_default(),
            };
            match s.score {
                None => pop.gated += 1,
                Some(v) if v.is_finite() => pop.scores.push(v),
                Some(v) => {
                    return Err(EvalError::NonFiniteScore {
                        id: s.id.clone(),
                        score: v,
                    })
                }
            }
        }
        bona_fide.scores.sort_by(f64::total_cmp);
        for p in attacks.values_mut() {
            p.scores.sort_by(f64::total_cmp);
        }
        Ok(Self {
            policy,
            bona_fide,
            attacks,
        })
    }

    /// Declares attack types that should appear in reports even when the data
    /// has no sample of them (they are then reported as absent).
    pub fn with_attack_types<I, S>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for t in types {
            self.attacks.entry(t.into()).or_default();
        }
        self
    }

    pub fn policy(&self) -> GatePolicy {
        self.policy
    }

    pub fn counts(&self) -> Counts {
        Counts {
            policy: self.policy,
            bona_fide: self.bona_fide.count(self.policy),
            attacks: self
                .attacks
                .iter()
                .map(|(k, p)| (k.clone(), p.count(self.policy)))
                .collect(),
        }
    }

    /// All rates at `threshold` (accept iff `score >= threshold`).
    pub fn at(&self, threshold: f64) -> Result<OperatingPoint, EvalError> {
        check_threshold(threshold)?;
        Ok(self.at_unchecked(threshold))
    }

    fn at_unchecked(&self, threshold: f64) -> OperatingPoint {
        let apcer_per_type: BTreeMap<String, Rate> = self
            .attacks
            .iter()
            .map(|(k, p)| (k.clone(), p.acceptance_rate(threshold, self.policy)))
            .collect();
        let worst = worst_rate(apcer_per_type.iter().map(|(k, r)| (k.as_str(), *r)));
        let apcer_max_type = worst.map(|(k, _)| k.to_string());
        let apcer_max = worst.map(|(_, r)| r);
        OperatingPoint {
            threshold,
            apcer_per_type,
            apcer_max,
            apcer_max_type,
            bpcer: self.bona_fide.rejection_rate(threshold, self.policy),
        }
    }

    fn sweep_point(&self, threshold: f64) -> SweepPoint {
        let apcer_max = worst_rate(
            self.attacks
                .iter()
                .map(|(k, p)| (k.as_str(), p.acceptance_rate(threshold, self.policy))),
        )
        .map(|(_, r)| r);
        SweepPoint {
            threshold,
            apcer_max,
            bpcer: self.bona_fide.rejection_rate(threshold, self.policy),
        }
    }

    /// Candidate thresholds: every distinct score (ascending) plus
    /// `next_up(max)`, which rejects everything. Empty without scores.
    pub fn candidate_thresholds(&self) -> Vec<f64> {
        let mut all: Vec<f64> = self
            .bona_fide
            .scores
            .iter()
            .chain(self.attacks.values().flat_map(|p| p.scores.iter()))
            .copied()
            .collect();
        all.sort_by(f64::total_cmp);
        all.dedup();
        if let Some(&max) = all.last() {
            all.push(max.next_up());
        }
        all
    }

    /// APCER_max and BPCER at every candidate threshold.
    pub fn sweep(&self) -> Vec<SweepPoint> {
        self.candidate_thresholds()
            .into_iter()
            .map(|t| self.sweep_point(t))
            .collect()
    }

    /// DET curve: (APCER_max, BPCER) at every candidate where both exist.
    pub fn det_points(&self) -> Vec<DetPoint> {
        self.sweep()
            .into_iter()
            .filter_map(|p| {
                Some(DetPoint {
                    threshold: p.threshold,
                    apcer: p.apcer_max?.value()?,
                    bpcer: p.bpcer.value()?,
                })
            })
            .collect()
    }

    /// Equal error rate (see the module docs for the rule). `None` when
    /// there are no bona fide or no attack samples to compare.
    pub fn eer(&self) -> Option<Eer> {
        let mut best: Option<(f64, Rate, Rate)> = None;
        for p in self.sweep() {
            let Some(a) = p.apcer_max else { continue };
            if a.value().is_none() || p.bpcer.value().is_none() {
                continue;
            }
            let better = match &best {
                None => true,
                Some((_, ba, bb)) => cmp_gap((&a, &p.bpcer), (ba, bb)) == Ordering::Less,
            };
            if better {
                best = Some((p.threshold, a, p.bpcer));
            }
        }
        let (threshold, apcer_max, bpcer) = best?;
        let a = apcer_max.value()?;
        let b = bpcer.value()?;
        Some(Eer {
            threshold,
            eer: (a + b) / 2.0,
            apcer_max,
            bpcer,
            gap: (a - b).abs(),
        })
    }

    /// BPCER at APCER_max ≤ `max_apcer` (BPCER100 = 0.01, BPCER20 = 0.05,
    /// BPCER10 = 0.10): the full operating point at the chosen threshold, or
    /// `None` if no candidate reaches the target.
    pub fn bpcer_at_apcer(&self, max_apcer: f64) -> Result<Option<OperatingPoint>, EvalError> {
        check_target(max_apcer)?;
        let chosen = self.select(|p| {
            let a = p.apcer_max?;
            (rate_le(&a, max_apcer) && p.bpcer.value().is_some()).then_some((p.bpcer, a))
        });
        Ok(chosen.map(|t| self.at_unchecked(t)))
    }

    /// APCER_max at BPCER ≤ `max_bpcer`: the full operating point at the
    /// chosen threshold, or `None` if no candidate reaches the target.
    pub fn apcer_at_bpcer(&self, max_bpcer: f64) -> Result<Option<OperatingPoint>, EvalError> {
        check_target(max_bpcer)?;
        let chosen = self.select(|p| {
            let a = p.apcer_max?;
            (rate_le(&p.bpcer, max_bpcer) && a.value().is_some()).then_some((a, p.bpcer))
        });
        Ok(chosen.map(|t| self.at_unchecked(t)))
    }

    /// Among sweep points for which `key` yields `(primary, secondary)`,
    /// the threshold minimising primary, then secondary; full ties go to the
    /// highest threshold (the sweep is ascending, so later equal points win).
    fn select<F>(&self, key: F) -> Option<f64>
    where
        F: Fn(&SweepPoint) -> Option<(Rate, Rate)>,
    {
        let mut best: Option<(f64, Rate, Rate)> = None;
        for p in self.sweep() {
            let Some((k1, k2)) = key(&p) else { continue };
            let better = match &best {
                None => true,
                Some((_, b1, b2)) => {
                    cmp_rate(&k1, b1).then_with(|| cmp_rate(&k2, b2)) != Ordering::Greater
                }
            };
            if better {
                best = Some((p.threshold, k1, k2));
            }
        }
        best.map(|(t, _, _)| t)
    }

    /// Chooses a threshold for the target (same rule as
    /// [`ScoreSet::bpcer_at_apcer`] / [`ScoreSet::apcer_at_bpcer`]) and
    /// reports the achieved rates with both 95% intervals, plus notes when
    /// the data cannot support the target.
    pub fn calibrate(&self, target: Target) -> Result<Calibration, EvalError> {
        let x = target.value();
        check_target(x)?;
        let point = match target {
            Target::Apcer(x) => self.bpcer_at_apcer(x)?,
            Target::Bpcer(x) => self.apcer_at_bpcer(x)?,
        };
        let (supported, mut notes) = sample_size_notes(&self.counts(), target);

        match &point {
            None => notes.push(self.unreachable_note(target)),
            Some(op) => {
                let achieved = match target {
                    Target::Apcer(_) => op.apcer_max,
                    Target::Bpcer(_) => Some(op.bpcer),
                };
                if let (Some(rate), true) = (achieved, supported) {
                    if let Some(ci) = rate.clopper_pearson95() {
                        if ci.upper > x {
                            notes.push(format!(
                                "the achieved {} of {} ({}/{}) meets the {} target as a point estimate, \
                                 but its 95% Clopper–Pearson upper bound is {}",
                                target.name(),
                                fmt_pct(rate.value().unwrap_or(0.0)),
                                rate.errors,
                                rate.total,
                                fmt_pct(x),
                                fmt_pct(ci.upper)
                            ));
                        }
                    }
                }
            }
        }

        Ok(Calibration {
            target,
            threshold: point.as_ref().map(|p| p.threshold),
            apcer_max: point
                .as_ref()
                .and_then(|p| p.apcer_max.map(|r| r.summary())),
            apcer_max_type: point.as_ref().and_then(|p| p.apcer_max_type.clone()),
            apcer_per_type: point
                .as_ref()
                .map(|p| {
                    p.apcer_per_type
                        .iter()
                        .map(|(k, r)| (k.clone(), r.summary()))
                        .collect()
                })
                .unwrap_or_default(),
            bpcer: point.as_ref().map(|p| p.bpcer.summary()),
            supported_by_sample_size: supported,
            notes,
        })
    }

    /// Plain-language reason why no candidate threshold meets `target`.
    pub(crate) fn unreachable_note(&self, target: Target) -> String {
        let x = target.value();
        let counts = self.counts();
        if counts.attack_total().counted == 0 {
            return format!(
                "no threshold reaches {} ≤ {}: there are no counted attack samples, so APCER is undefined",
                target.name(),
                fmt_pct(x)
            );
        }
        if counts.bona_fide.counted == 0 {
            return format!(
                "no threshold reaches {} ≤ {}: there are no counted bona fide samples, so BPCER is undefined",
                target.name(),
                fmt_pct(x)
            );
        }
        let sweep = self.sweep();
        let best = match target {
            Target::Apcer(_) => sweep
                .iter()
                .filter_map(|p| p.apcer_max)
                .filter(|r| r.value().is_some())
                .min_by(cmp_rate),
            Target::Bpcer(_) => sweep
                .iter()
                .map(|p| p.bpcer)
                .filter(|r| r.value().is_some())
                .min_by(cmp_rate),
        };
        let gated_note = match target {
            Target::Bpcer(_)
                if self.policy == GatePolicy::CountAsRejected && counts.bona_fide.gated > 0 =>
            {
                format!(
                    "; {} gated bona fide count as rejections at every threshold",
                    counts.bona_fide.gated
                )
            }
            _ => String::new(),
        };
        match best.and_then(|r| r.value().map(|v| (r, v))) {
            Some((r, v)) => format!(
                "no threshold reaches {} ≤ {} on this data; the lowest achievable is {} ({}/{}){}",
                target.name(),
                fmt_pct(x),
                fmt_pct(v),
                r.errors,
                r.total,
                gated_note
            ),
            None => format!(
                "no threshold reaches {} ≤ {} on this data",
                target.name(),
                fmt_pct(x)
            ),
        }
    }
}

/// Whether the relevant population can support `target` at 95% confidence
/// (zero errors must give a Clopper–Pearson upper bound ≤ target), with
/// plain-language notes when it cannot.
pub(crate) fn sample_size_notes(counts: &Counts, target: Target) -> (bool, Vec<String>) {
    let x = target.value();
    let mut notes = Vec::new();
    let needed = min_trials_for_zero_error_bound(x, CONFIDENCE_95);
    let populations: Vec<(String, usize)> = match target {
        Target::Apcer(_) => counts
            .attacks
            .iter()
            .filter(|(_, c)| c.counted > 0)
            .map(|(k, c)| (format!("attack type \"{k}\""), c.counted))
            .collect(),
        Target::Bpcer(_) => {
            if counts.bona_fide.counted > 0 {
                vec![("bona fide".to_string(), counts.bona_fide.counted)]
            } else {
                Vec::new()
            }
        }
    };
    if populations.is_empty() {
        notes.push(format!(
            "{} cannot be measured: no counted {} samples",
            target.name(),
            match target {
                Target::Apcer(_) => "attack",
                Target::Bpcer(_) => "bona fide",
            }
        ));
        return (false, notes);
    }
    let Some(needed) = needed else {
        notes.push(format!(
            "a {} target of {} cannot be supported by any finite sample: the 95% upper bound is \
             always above 0",
            target.name(),
            fmt_pct(x)
        ));
        return (false, notes);
    };
    let too_small: Vec<String> = populations
        .iter()
        .filter(|(_, n)| *n < needed)
        .map(|(name, n)| {
            let bound = 1.0 - ((1.0 - CONFIDENCE_95) / 2.0).powf(1.0 / *n as f64);
            format!("{} for {name} (n = {n})", fmt_pct(bound))
        })
        .collect();
    let supported = too_small.is_empty();
    if !supported {
        notes.push(format!(
            "too little data to support {} ≤ {}: even with 0 errors the 95% Clopper–Pearson \
             upper bound 1 − 0.025^(1/n) is {}; at least {needed} counted samples{} with 0 \
             errors are needed",
            target.name(),
            fmt_pct(x),
            too_small.join(", "),
            if matches!(target, Target::Apcer(_)) {
                " per attack type"
            } else {
                ""
            }
        ));
    }
    (supported, notes)
}
