//! Choosing the liveness ensemble by measurement: every combination of candidate models and
//! both fusion rules, measured on the same captures, ranked by one written rule.
//!
//! Pure: the caller runs the images once (every candidate active, checks off), hands over each
//! capture's per-model live probabilities (`None` when no face was found) and each model's CPU
//! cost, and gets back an [`EnsembleReport`] (serialisable, with [`EnsembleReport::to_markdown`]).
//!
//! # What is measured per combination
//!
//! * Combinations: every non-empty subset of the candidates (optionally up to `max_size`
//!   models), by size and then in candidate order. A single model is one row (its own
//!   probability, no fusion); a subset of two or more is one row per [`Fusion`] (weights from
//!   the candidates, normalised within the subset by [`Fusion::fuse`]).
//! * Pooled over all sets: AUC with DeLong's 95 % interval ([`crate::roc`], scored samples only;
//!   the gated count is reported), EER ([`ScoreSet::eer`]) with the interval described in
//!   [`EerSummary::interval`], BPCER at APCER_max ≤ 10 % and ≤ 5 % ([`ScoreSet::bpcer_at_apcer`])
//!   with Wilson 95 % intervals, all under the caller's [`GatePolicy`].
//! * Per set (when there are several): AUC with its interval.
//! * Cost: the sum of the models' CPU milliseconds, and the number of models.
//!
//! # The rule
//!
//! [`RULE`], applied by [`rank`]: among combinations whose CPU cost is within the budget, the
//! highest lower 95 % bound of AUC on the pooled sets; ties within [`AUC_TIE`] go to the lower
//! CPU cost, then fewer models. (Remaining ties: the higher lower bound, the higher AUC, then
//! enumeration order — which puts `mean_probability`, the service default, before `mean_logit`.)
//! The table lists the rows in the order the rule picks them: the winner, then the rule applied
//! again to the rest, and so on; combinations over the budget follow (ranked the same way among
//! themselves), then those without an AUC.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use ekyc_core::liveness::Fusion;
use serde::{Deserialize, Serialize};

use crate::metrics::{Counts, ScoreSet};
use crate::report::{csv_field, fmt_pct, md_escape};
use crate::roc::{self, Auc};
use crate::stats::{Interval, RateSummary};
use crate::{Class, EvalError, GatePolicy, Sample};

/// The selection rule, verbatim (it is printed in every report).
pub const RULE: &str = "among combinations whose CPU cost is within the budget, the highest \
                        lower 95 % bound of AUC on the pooled sets; ties within 0.005 go to the \
                        lower CPU cost, then fewer models";

/// Lower AUC bounds this close to the best one count as tied under [`RULE`].
pub const AUC_TIE: f64 = 0.005;

/// Differences of AUC or EER at most this large count as ties in the fusion comparison (and
/// absorb rounding in [`AUC_TIE`]).
pub const EPS: f64 = 1e-12;

/// The APCER targets reported for every combination (BPCER10, BPCER20).
pub const APCER_TARGETS: [f64; 2] = [0.10, 0.05];

/// At most this many combinations are evaluated (cap the size with `max_size` otherwise).
pub const MAX_COMBINATIONS: usize = 4096;

/// What the table shows for a single model's fusion.
pub const NO_FUSION: &str = "—";

/// One candidate liveness model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateModel {
    /// The manifest name.
    pub name: String,
    /// Its weight in a fusion (the manifest's `weight`).
    pub weight: f64,
    /// Its CPU cost on one face, milliseconds.
    pub cpu_ms: f64,
}

/// One capture with every candidate's live probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleSample {
    /// The capture (its path).
    pub id: String,
    /// Ground truth.
    pub class: Class,
    /// Name of the data set it belongs to.
    pub set: String,
    /// Live probability of each candidate, in candidate order; `None` when the capture got no
    /// score (no face found): it is gated for every combination.
    pub probabilities: Option<Vec<f64>>,
}

/// How the combinations are enumerated, counted and ranked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct EnsembleConfig {
    /// How gated captures enter EER and BPCER (AUC uses scored captures only).
    pub policy: GatePolicy,
    /// Largest number of models in a combination; `None` = all candidates.
    pub max_size: Option<usize>,
    /// Combinations costing more CPU milliseconds are not eligible; `None` = no budget.
    pub cpu_budget_ms: Option<f64>,
    /// Number of faces the CPU costs were measured on (reported only).
    pub cost_faces: usize,
}

/// Models (indices into the candidates) and how they are fused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Combination {
    /// Candidate indices, ascending.
    pub models: Vec<usize>,
    /// `None` for a single model.
    pub fusion: Option<Fusion>,
}

impl Combination {
    /// The combination's score on one capture's probabilities (in candidate order).
    /// `probabilities` and `weights` must cover every index in `models`.
    pub fn score(&self, probabilities: &[f64], weights: &[f64]) -> Option<f64> {
        match self.fusion {
            None => probabilities.get(*self.models.first()?).copied(),
            Some(f) => {
                let pairs: Option<Vec<(f64, f64)>> = self
                    .models
                    .iter()
                    .map(|&i| Some((*probabilities.get(i)?, *weights.get(i)?)))
                    .collect();
                Some(f.fuse(pairs?))
            }
        }
    }
}

/// Every non-empty subset of `0..n` with at most `max_size` elements (all when `None`), by size
/// and then lexicographically.
pub fn subsets(n: usize, max_size: Option<usize>) -> Vec<Vec<usize>> {
    let top = max_size.unwrap_or(n).min(n);
    let mut out = Vec::new();
    for k in 1..=top {
        // The lexicographically first k-subset, then successors until none is left.
        let mut idx: Vec<usize> = (0..k).collect();
        loop {
            out.push(idx.clone());
            // The rightmost position that can still move right.
            let Some(p) = (0..k).rev().find(|&p| idx[p] < n - k + p) else {
                break;
            };
            idx[p] += 1;
            for q in p + 1..k {
                idx[q] = idx[q - 1] + 1;
            }
        }
    }
    out
}

/// The number of combinations [`combinations`] yields, without building them (saturating).
pub fn combination_count(n: usize, max_size: Option<usize>) -> usize {
    let top = max_size.unwrap_or(n).min(n);
    let mut total: usize = 0;
    let mut binom: u128 = 1; // C(n, k), built incrementally
    for k in 1..=top {
        // C(n, k) = C(n, k − 1) · (n − k + 1) / k, exact in integers; saturate on overflow.
        let Some(next) = binom.checked_mul((n - k + 1) as u128) else {
            return usize::MAX;
        };
        binom = next / k as u128;
        let per = if k == 1 { 1 } else { Fusion::ALL.len() as u128 };
        let rows = usize::try_from(binom.saturating_mul(per)).unwrap_or(usize::MAX);
        total = total.saturating_add(rows);
    }
    total
}

/// Every subset of [`subsets`]; a single model once (no fusion), larger subsets once per
/// [`Fusion::ALL`].
pub fn combinations(n: usize, max_size: Option<usize>) -> Vec<Combination> {
    let mut out = Vec::new();
    for models in subsets(n, max_size) {
        if models.len() == 1 {
            out.push(Combination {
                models,
                fusion: None,
            });
        } else {
            for f in Fusion::ALL {
                out.push(Combination {
                    models: models.clone(),
                    fusion: Some(f),
                });
            }
        }
    }
    out
}

/// The EER of a combination.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EerSummary {
    /// (APCER_max + BPCER) / 2 at the EER threshold (see [`crate::metrics`]).
    pub eer: f64,
    /// The threshold where it is reached.
    pub threshold: f64,
    /// |APCER_max − BPCER| there.
    pub gap: f64,
    /// APCER_max there, with its intervals.
    pub apcer_max: RateSummary,
    /// BPCER there, with its intervals.
    pub bpcer: RateSummary,
    /// The EER code has no interval of its own, so this is built from the Wilson 95 % intervals
    /// of the two rates at the EER threshold: the mean of their lower bounds and the mean of
    /// their upper bounds (it contains the EER; it is not an exact 95 % interval).
    pub interval: Option<Interval>,
}

/// BPCER at an APCER_max target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BpcerAtApcer {
    /// The target: APCER_max ≤ this.
    pub max_apcer: f64,
    /// The chosen threshold.
    pub threshold: f64,
    /// BPCER there, with its intervals (Wilson 95 % in the table).
    pub bpcer: RateSummary,
    /// APCER_max there.
    pub apcer_max: Option<RateSummary>,
    /// The attack type attaining it.
    pub apcer_max_type: Option<String>,
}

/// The AUC of one set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetAuc {
    /// The set's name.
    pub set: String,
    /// `None` when the set has no scored bona fide or no scored attack.
    pub auc: Option<Auc>,
}

/// Everything measured on one combination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComboRow {
    /// Position in the rule's order, from 1 (1 = the winner when it is within the budget).
    pub rank: usize,
    /// The models, in candidate order.
    pub models: Vec<String>,
    /// `None` for a single model.
    pub fusion: Option<Fusion>,
    /// `"a + b, mean_logit"` or `"a"`.
    pub label: String,
    /// Number of models.
    pub n_models: usize,
    /// Summed CPU milliseconds of the models.
    pub cpu_ms: f64,
    /// Whether [`ComboRow::cpu_ms`] is within the budget (always, without one).
    pub within_budget: bool,
    /// Samples per class on the pooled sets: scored, gated, counted under the policy.
    pub counts: Counts,
    /// AUC on the pooled sets (scored samples only).
    pub auc: Option<Auc>,
    /// EER on the pooled sets.
    pub eer: Option<EerSummary>,
    /// BPCER at APCER_max ≤ 10 %; `None` when no threshold reaches it.
    pub bpcer_at_apcer10: Option<BpcerAtApcer>,
    /// BPCER at APCER_max ≤ 5 %; `None` when no threshold reaches it.
    pub bpcer_at_apcer5: Option<BpcerAtApcer>,
    /// AUC per set (empty with a single set).
    pub per_set_auc: Vec<SetAuc>,
}

impl ComboRow {
    /// The fusion's name, or [`NO_FUSION`] for a single model.
    pub fn fusion_name(&self) -> &'static str {
        self.fusion.map(Fusion::as_str).unwrap_or(NO_FUSION)
    }

    fn auc_lower(&self) -> Option<f64> {
        self.auc.map(|a| a.lower())
    }
}

/// One data set's size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetSummary {
    /// The name given on the command line.
    pub name: String,
    /// Bona fide captures (scored + gated).
    pub bona_fide: usize,
    /// Attack captures (scored + gated).
    pub attacks: usize,
    /// Captures without a score (no face).
    pub gated: usize,
}

/// mean_logit against mean_probability on one subset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FusionDiff {
    /// The subset's models.
    pub models: Vec<String>,
    /// AUC with mean_probability.
    pub auc_mean_probability: Option<f64>,
    /// AUC with mean_logit.
    pub auc_mean_logit: Option<f64>,
    /// mean_logit − mean_probability in AUC (positive: mean_logit is better).
    pub auc_difference: Option<f64>,
    /// EER with mean_probability.
    pub eer_mean_probability: Option<f64>,
    /// EER with mean_logit.
    pub eer_mean_logit: Option<f64>,
    /// mean_logit − mean_probability in EER (negative: mean_logit is better).
    pub eer_difference: Option<f64>,
}

/// Who wins how often on one metric.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct FusionTally {
    /// Subsets where both fusions have the metric.
    pub subsets: usize,
    /// Subsets where mean_logit is better.
    pub mean_logit_wins: usize,
    /// Subsets where mean_probability is better.
    pub mean_probability_wins: usize,
    /// Subsets where they are equal (within [`EPS`]).
    pub ties: usize,
    /// Mean of mean_logit − mean_probability over those subsets.
    pub mean_difference: Option<f64>,
}

impl FusionTally {
    /// `higher_is_better`: AUC (true) or EER (false).
    fn of(diffs: impl Iterator<Item = f64>, higher_is_better: bool) -> FusionTally {
        let mut t = FusionTally::default();
        let mut sum = 0.0;
        for d in diffs {
            t.subsets += 1;
            sum += d;
            let logit_better = if higher_is_better { d > EPS } else { d < -EPS };
            let prob_better = if higher_is_better { d < -EPS } else { d > EPS };
            if logit_better {
                t.mean_logit_wins += 1;
            } else if prob_better {
                t.mean_probability_wins += 1;
            } else {
                t.ties += 1;
            }
        }
        t.mean_difference = (t.subsets > 0).then(|| sum / t.subsets as f64);
        t
    }
}

/// The two fusions compared on every subset of two or more models.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FusionComparison {
    /// One entry per subset, in enumeration order.
    pub per_subset: Vec<FusionDiff>,
    /// AUC: higher is better.
    pub auc: FusionTally,
    /// EER: lower is better.
    pub eer: FusionTally,
}

/// Compares the fusions on `rows` (any order): pairs the mean_probability and mean_logit rows of
/// each subset.
pub fn compare_fusions(rows: &[ComboRow]) -> FusionComparison {
    let mut pairs: Vec<(Vec<String>, Option<&ComboRow>, Option<&ComboRow>)> = Vec::new();
    for r in rows {
        let Some(f) = r.fusion else { continue };
        let i = match pairs.iter().position(|(m, _, _)| *m == r.models) {
            Some(i) => i,
            None => {
                pairs.push((r.models.clone(), None, None));
                pairs.len() - 1
            }
        };
        let slot = &mut pairs[i];
        match f {
            Fusion::MeanProbability => slot.1 = Some(r),
            Fusion::MeanLogit => slot.2 = Some(r),
        }
    }
    let diff = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
    let per_subset: Vec<FusionDiff> = pairs
        .into_iter()
        .map(|(models, prob, logit)| {
            let auc_p = prob.and_then(|r| r.auc).map(|a| a.auc);
            let auc_l = logit.and_then(|r| r.auc).map(|a| a.auc);
            let eer_p = prob.and_then(|r| r.eer).map(|e| e.eer);
            let eer_l = logit.and_then(|r| r.eer).map(|e| e.eer);
            FusionDiff {
                models,
                auc_mean_probability: auc_p,
                auc_mean_logit: auc_l,
                auc_difference: diff(auc_p, auc_l),
                eer_mean_probability: eer_p,
                eer_mean_logit: eer_l,
                eer_difference: diff(eer_p, eer_l),
            }
        })
        .collect();
    FusionComparison {
        auc: FusionTally::of(per_subset.iter().filter_map(|d| d.auc_difference), true),
        eer: FusionTally::of(per_subset.iter().filter_map(|d| d.eer_difference), false),
        per_subset,
    }
}

/// The best row among `candidates` (indices into `rows`, each with an AUC) by [`RULE`].
fn pick(rows: &[ComboRow], candidates: &[usize]) -> Option<usize> {
    let best_lower = candidates
        .iter()
        .filter_map(|&i| rows.get(i)?.auc_lower())
        .max_by(f64::total_cmp)?;
    candidates
        .iter()
        .copied()
        .filter(|&i| {
            rows.get(i)
                .and_then(ComboRow::auc_lower)
                .is_some_and(|lo| best_lower - lo <= AUC_TIE + EPS)
        })
        .min_by(|&a, &b| {
            let (ra, rb) = (&rows[a], &rows[b]);
            let neg = |r: &ComboRow, f: fn(&Auc) -> f64| -r.auc.as_ref().map(f).unwrap_or(0.0);
            ra.cpu_ms
                .total_cmp(&rb.cpu_ms)
                .then(ra.n_models.cmp(&rb.n_models))
                .then(neg(ra, Auc::lower).total_cmp(&neg(rb, Auc::lower)))
                .then(neg(ra, |x| x.auc).total_cmp(&neg(rb, |x| x.auc)))
                .then(a.cmp(&b))
        })
}

/// Applies [`pick`] repeatedly: the order in which the rule picks `group`.
fn rule_order(rows: &[ComboRow], mut group: Vec<usize>) -> Vec<usize> {
    let mut out = Vec::with_capacity(group.len());
    while let Some(best) = pick(rows, &group) {
        out.push(best);
        group.retain(|&i| i != best);
    }
    out
}

/// The order of `rows` by [`RULE`] (indices into `rows`) and the winner, if any row is within
/// the budget and has an AUC. Rows' `within_budget` must be set.
pub fn rank(rows: &[ComboRow]) -> (Vec<usize>, Option<usize>) {
    let group = |within: bool| -> Vec<usize> {
        (0..rows.len())
            .filter(|&i| rows[i].within_budget == within && rows[i].auc.is_some())
            .collect()
    };
    let eligible = rule_order(rows, group(true));
    let winner = eligible.first().copied();
    let mut order = eligible;
    order.extend(rule_order(rows, group(false)));
    order.extend((0..rows.len()).filter(|&i| rows[i].auc.is_none()));
    (order, winner)
}

/// The result of [`evaluate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleReport {
    /// [`RULE`], verbatim.
    pub rule: String,
    /// The CPU budget in milliseconds; `None` = no budget.
    pub cpu_budget_ms: Option<f64>,
    /// The largest combination evaluated; `None` = all candidates.
    pub max_size: Option<usize>,
    /// How gated captures enter EER and BPCER.
    pub policy: GatePolicy,
    /// The candidates with their weights and CPU costs.
    pub candidates: Vec<CandidateModel>,
    /// Number of faces the CPU costs were measured on.
    pub cost_faces: usize,
    /// The data sets, in input order.
    pub sets: Vec<SetSummary>,
    /// Every combination, in the rule's order.
    pub rows: Vec<ComboRow>,
    /// The rule's choice (a copy of the first row), `None` if no combination is within the
    /// budget with an AUC.
    pub winner: Option<ComboRow>,
    /// mean_logit against mean_probability.
    pub fusion: FusionComparison,
    /// Caveats in plain words.
    pub notes: Vec<String>,
}

fn bad(message: impl Into<String>) -> EvalError {
    EvalError::Ensemble(message.into())
}

fn check_input(
    candidates: &[CandidateModel],
    samples: &[EnsembleSample],
    config: &EnsembleConfig,
) -> Result<(), EvalError> {
    if candidates.is_empty() {
        return Err(bad("no candidate models"));
    }
    for (i, c) in candidates.iter().enumerate() {
        if candidates[..i].iter().any(|o| o.name == c.name) {
            return Err(bad(format!("candidate {} is listed twice", c.name)));
        }
        if !(c.weight.is_finite() && c.weight >= 0.0) {
            return Err(bad(format!("candidate {} has weight {}", c.name, c.weight)));
        }
        if !(c.cpu_ms.is_finite() && c.cpu_ms >= 0.0) {
            return Err(bad(format!(
                "candidate {} has CPU cost {}",
                c.name, c.cpu_ms
            )));
        }
    }
    if config.max_size == Some(0) {
        return Err(bad("the largest combination must have at least one model"));
    }
    if let Some(b) = config.cpu_budget_ms {
        if !(b.is_finite() && b >= 0.0) {
            return Err(bad(format!(
                "the CPU budget must be a finite number ≥ 0, got {b}"
            )));
        }
    }
    let count = combination_count(candidates.len(), config.max_size);
    if count > MAX_COMBINATIONS {
        return Err(bad(format!(
            "{count} combinations of {} candidates is more than {MAX_COMBINATIONS}; cap the size",
            candidates.len()
        )));
    }
    for s in samples {
        if let Some(p) = &s.probabilities {
            if p.len() != candidates.len() {
                return Err(bad(format!(
                    "sample {} has {} probabilities for {} candidates",
                    s.id,
                    p.len(),
                    candidates.len()
                )));
            }
            if let Some(&v) = p.iter().find(|v| !v.is_finite()) {
                return Err(EvalError::NonFiniteScore {
                    id: s.id.clone(),
                    score: v,
                });
            }
        }
    }
    Ok(())
}

/// The sets in order of first appearance, with their sizes; an error when a set lacks bona
/// fide or attack samples.
fn set_summaries(samples: &[EnsembleSample]) -> Result<Vec<SetSummary>, EvalError> {
    let mut sets: Vec<SetSummary> = Vec::new();
    for s in samples {
        let i = match sets.iter().position(|x| x.name == s.set) {
            Some(i) => i,
            None => {
                sets.push(SetSummary {
                    name: s.set.clone(),
                    bona_fide: 0,
                    attacks: 0,
                    gated: 0,
                });
                sets.len() - 1
            }
        };
        let set = &mut sets[i];
        if s.class.is_bona_fide() {
            set.bona_fide += 1;
        } else {
            set.attacks += 1;
        }
        if s.probabilities.is_none() {
            set.gated += 1;
        }
    }
    if sets.is_empty() {
        return Err(bad("no samples"));
    }
    for s in &sets {
        if s.bona_fide == 0 {
            return Err(EvalError::EmptyClass {
                set: s.name.clone(),
                class: "bona fide",
            });
        }
        if s.attacks == 0 {
            return Err(EvalError::EmptyClass {
                set: s.name.clone(),
                class: "attack",
            });
        }
    }
    Ok(sets)
}

/// AUC of the scored samples among `samples`.
fn auc_of<'a>(samples: impl Iterator<Item = &'a Sample>) -> Result<Option<Auc>, EvalError> {
    let mut bona_fide = Vec::new();
    let mut attacks = Vec::new();
    for s in samples {
        if let Some(v) = s.score {
            if s.class.is_bona_fide() {
                bona_fide.push(v);
            } else {
                attacks.push(v);
            }
        }
    }
    roc::auc(&bona_fide, &attacks)
}

fn eer_summary(set: &ScoreSet) -> Option<EerSummary> {
    let e = set.eer()?;
    let interval = match (e.apcer_max.wilson95(), e.bpcer.wilson95()) {
        (Some(a), Some(b)) => Some(Interval {
            lower: (a.lower + b.lower) / 2.0,
            upper: (a.upper + b.upper) / 2.0,
        }),
        _ => None,
    };
    Some(EerSummary {
        eer: e.eer,
        threshold: e.threshold,
        gap: e.gap,
        apcer_max: e.apcer_max.summary(),
        bpcer: e.bpcer.summary(),
        interval,
    })
}

fn bpcer_at(set: &ScoreSet, max_apcer: f64) -> Result<Option<BpcerAtApcer>, EvalError> {
    Ok(set.bpcer_at_apcer(max_apcer)?.map(|op| BpcerAtApcer {
        max_apcer,
        threshold: op.threshold,
        bpcer: op.bpcer.summary(),
        apcer_max: op.apcer_max.map(|r| r.summary()),
        apcer_max_type: op.apcer_max_type,
    }))
}

fn label(models: &[String], fusion: Option<Fusion>) -> String {
    let names = models.join(" + ");
    match fusion {
        Some(f) => format!("{names}, {}", f.as_str()),
        None => names,
    }
}

fn measure(
    combo: &Combination,
    candidates: &[CandidateModel],
    samples: &[EnsembleSample],
    sets: &[SetSummary],
    config: &EnsembleConfig,
) -> Result<ComboRow, EvalError> {
    let weights: Vec<f64> = candidates.iter().map(|c| c.weight).collect();
    let scored: Vec<Sample> = samples
        .iter()
        .map(|s| Sample {
            id: s.id.clone(),
            class: s.class.clone(),
            score: s
                .probabilities
                .as_deref()
                .and_then(|p| combo.score(p, &weights)),
        })
        .collect();
    let set = ScoreSet::new(&scored, config.policy)?;
    let [t10, t5] = APCER_TARGETS;
    let per_set_auc = if sets.len() > 1 {
        sets.iter()
            .map(|set| {
                let members = scored
                    .iter()
                    .zip(samples)
                    .filter(|(_, s)| s.set == set.name)
                    .map(|(x, _)| x);
                Ok(SetAuc {
                    set: set.name.clone(),
                    auc: auc_of(members)?,
                })
            })
            .collect::<Result<Vec<_>, EvalError>>()?
    } else {
        Vec::new()
    };
    let models: Vec<String> = combo
        .models
        .iter()
        .filter_map(|&i| candidates.get(i).map(|c| c.name.clone()))
        .collect();
    let cpu_ms: f64 = combo
        .models
        .iter()
        .filter_map(|&i| candidates.get(i).map(|c| c.cpu_ms))
        .sum();
    Ok(ComboRow {
        rank: 0,
        label: label(&models, combo.fusion),
        n_models: models.len(),
        models,
        fusion: combo.fusion,
        cpu_ms,
        within_budget: config.cpu_budget_ms.is_none_or(|b| cpu_ms <= b),
        counts: set.counts(),
        auc: auc_of(scored.iter())?,
        eer: eer_summary(&set),
        bpcer_at_apcer10: bpcer_at(&set, t10)?,
        bpcer_at_apcer5: bpcer_at(&set, t5)?,
        per_set_auc,
    })
}

/// Measures every combination (see the module docs) and ranks them by [`RULE`].
///
/// Errors: no candidates, a duplicate name, a negative or non-finite weight, cost or budget,
/// `max_size == Some(0)`, more than [`MAX_COMBINATIONS`] combinations, a sample whose
/// probabilities do not match the candidates or are not finite, no samples, or a set without
/// bona fide or without attack samples ([`EvalError::EmptyClass`]).
pub fn evaluate(
    candidates: &[CandidateModel],
    samples: &[EnsembleSample],
    config: &EnsembleConfig,
) -> Result<EnsembleReport, EvalError> {
    check_input(candidates, samples, config)?;
    let sets = set_summaries(samples)?;
    let rows: Vec<ComboRow> = combinations(candidates.len(), config.max_size)
        .iter()
        .map(|c| measure(c, candidates, samples, &sets, config))
        .collect::<Result<_, _>>()?;
    let fusion = compare_fusions(&rows);
    let (order, winner) = rank(&rows);
    let mut sorted: Vec<ComboRow> = Vec::with_capacity(rows.len());
    for (pos, &i) in order.iter().enumerate() {
        if let Some(r) = rows.get(i) {
            let mut r = r.clone();
            r.rank = pos + 1;
            sorted.push(r);
        }
    }
    let winner = winner.and_then(|_| sorted.first().cloned());

    let mut notes = Vec::new();
    let degenerate = sorted
        .iter()
        .filter(|r| r.auc.is_some_and(|a| a.degenerate()))
        .count();
    if degenerate > 0 {
        notes.push(format!(
            "{degenerate} of {} combinations separate the pooled classes perfectly (or perfectly \
             wrongly): DeLong's variance is then 0 and the AUC interval a single point, which \
             understates the uncertainty of a small set",
            sorted.len()
        ));
    }
    for set in sets.iter().filter(|_| sets.len() > 1) {
        let n = sorted
            .iter()
            .filter(|r| {
                r.per_set_auc
                    .iter()
                    .any(|x| x.set == set.name && x.auc.is_some_and(|a| a.degenerate()))
            })
            .count();
        if n > 0 {
            notes.push(format!(
                "set {}: {n} of {} combinations separate its classes perfectly (or perfectly \
                 wrongly), so its AUC interval is a single point that understates the \
                 uncertainty ({} bona fide, {} attacks)",
                set.name,
                sorted.len(),
                set.bona_fide,
                set.attacks
            ));
        }
    }
    if sorted
        .iter()
        .any(|r| r.auc.is_some_and(|a| a.variance.is_none()))
    {
        notes.push(
            "a class with fewer than 2 scored samples has no DeLong variance: its AUC interval is \
             [0, 1]"
                .to_string(),
        );
    }
    let gated: usize = sets.iter().map(|s| s.gated).sum();
    if gated > 0 {
        notes.push(format!(
            "{gated} captures had no face and no score: AUC is over scored captures only; EER and \
             BPCER count them {}",
            match config.policy {
                GatePolicy::CountAsRejected => "as rejected (count-as-rejected)",
                GatePolicy::Exclude => "nowhere (exclude)",
            }
        ));
    }
    if winner.is_none() {
        notes.push(match config.cpu_budget_ms {
            Some(b) if sorted.iter().any(|r| r.auc.is_some()) => {
                format!("no combination is within the CPU budget of {b:.2} ms: there is no winner")
            }
            _ => "no combination has an AUC (no scored bona fide or attack): there is no winner"
                .to_string(),
        });
    }
    notes.push(
        "EER interval: the mean of the Wilson 95 % bounds of APCER_max and BPCER at the EER \
         threshold (the EER code has no interval of its own); it contains the EER but is not an \
         exact 95 % interval"
            .to_string(),
    );

    Ok(EnsembleReport {
        rule: RULE.to_string(),
        cpu_budget_ms: config.cpu_budget_ms,
        max_size: config.max_size,
        policy: config.policy,
        candidates: candidates.to_vec(),
        cost_faces: config.cost_faces,
        sets,
        rows: sorted,
        winner,
        fusion,
        notes,
    })
}

fn fmt_auc(a: Option<&Auc>) -> String {
    match a {
        Some(a) => format!("{:.3} [{:.3}, {:.3}]", a.auc, a.lower(), a.upper()),
        None => "–".to_string(),
    }
}

fn fmt_interval_pct(value: f64, ci: Option<Interval>) -> String {
    match ci {
        Some(i) => format!(
            "{} [{}, {}]",
            fmt_pct(value),
            fmt_pct(i.lower),
            fmt_pct(i.upper)
        ),
        None => fmt_pct(value),
    }
}

fn fmt_bpcer(b: Option<&BpcerAtApcer>) -> String {
    match b.and_then(|b| Some((b.bpcer.value?, b.bpcer.wilson95))) {
        Some((v, ci)) => fmt_interval_pct(v, ci),
        None => "unreachable".to_string(),
    }
}

fn fmt_signed(x: Option<f64>, pct: bool) -> String {
    match x {
        Some(v) if pct => format!("{:+.2} pp", v * 100.0),
        Some(v) => format!("{v:+.4}"),
        None => "–".to_string(),
    }
}

impl EnsembleReport {
    /// One line naming the winner and its numbers (or why there is none).
    pub fn winner_line(&self) -> String {
        match &self.winner {
            Some(w) => format!(
                "winner: {} — AUC {} (pooled), EER {}, CPU {:.2} ms, {} model{}",
                w.label,
                fmt_auc(w.auc.as_ref()),
                w.eer
                    .map(|e| fmt_pct(e.eer))
                    .unwrap_or_else(|| "–".to_string()),
                w.cpu_ms,
                w.n_models,
                if w.n_models == 1 { "" } else { "s" }
            ),
            None => match self.cpu_budget_ms {
                Some(b) => format!("winner: none (no combination with an AUC within {b:.2} ms)"),
                None => "winner: none (no combination has an AUC)".to_string(),
            },
        }
    }

    /// The Markdown report: data, rule, winner, the table in the rule's order, the fusion
    /// comparison and the notes.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# Liveness ensembles\n");
        let _ = writeln!(md, "## Data\n");
        let _ = writeln!(md, "| set | bona fide | attacks | no face (gated) |");
        let _ = writeln!(md, "|---|---:|---:|---:|");
        for s in &self.sets {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                md_escape(&s.name),
                s.bona_fide,
                s.attacks,
                s.gated
            );
        }
        let _ = writeln!(
            md,
            "\nGate policy for EER and BPCER: `{}` ({}). AUC is over scored captures only.\n",
            self.policy.as_str(),
            self.policy.describe()
        );
        let _ = writeln!(md, "## Candidates\n");
        let _ = writeln!(md, "| model | weight | CPU ms per face |");
        let _ = writeln!(md, "|---|---:|---:|");
        for c in &self.candidates {
            let _ = writeln!(
                md,
                "| {} | {} | {:.2} |",
                md_escape(&c.name),
                c.weight,
                c.cpu_ms
            );
        }
        let _ = writeln!(
            md,
            "\nCPU cost: median of 3 timed runs of each model on each of {} faces, one thread.\n",
            self.cost_faces
        );

        let _ = writeln!(md, "## Rule\n");
        let _ = writeln!(md, "> {}\n", self.rule);
        let _ = writeln!(
            md,
            "CPU budget: {}. Largest combination: {}.\n",
            self.cpu_budget_ms
                .map(|b| format!("{b:.2} ms"))
                .unwrap_or_else(|| "none".to_string()),
            self.max_size
                .map(|k| format!("{k} models"))
                .unwrap_or_else(|| "all candidates".to_string())
        );
        let _ = writeln!(md, "## Winner\n");
        let _ = writeln!(md, "{}\n", md_escape(&self.winner_line()));

        let _ = writeln!(md, "## Combinations, in the rule's order\n");
        let multi = self.sets.len() > 1;
        let mut head = String::from(
            "| # | models | fusion | AUC [95% CI] | EER [CI] | BPCER @ APCER ≤ 10% [95% CI] | \
             BPCER @ APCER ≤ 5% [95% CI] | CPU ms | in budget |",
        );
        let mut rule = String::from("|---:|---|---|---|---|---|---|---:|---|");
        if multi {
            for s in &self.sets {
                let _ = write!(head, " AUC {} |", md_escape(&s.name));
                rule.push_str("---|");
            }
        }
        let _ = writeln!(md, "{head}\n{rule}");
        for r in &self.rows {
            let eer = r
                .eer
                .map(|e| fmt_interval_pct(e.eer, e.interval))
                .unwrap_or_else(|| "–".to_string());
            let _ = write!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {:.2} | {} |",
                r.rank,
                md_escape(&r.models.join(" + ")),
                r.fusion_name(),
                fmt_auc(r.auc.as_ref()),
                eer,
                fmt_bpcer(r.bpcer_at_apcer10.as_ref()),
                fmt_bpcer(r.bpcer_at_apcer5.as_ref()),
                r.cpu_ms,
                if r.within_budget { "yes" } else { "no" }
            );
            if multi {
                for s in &self.sets {
                    let a = r.per_set_auc.iter().find(|x| x.set == s.name);
                    let _ = write!(md, " {} |", fmt_auc(a.and_then(|a| a.auc.as_ref())));
                }
            }
            md.push('\n');
        }

        let _ = writeln!(md, "\n## Fusion: mean_logit − mean_probability\n");
        if self.fusion.per_subset.is_empty() {
            let _ = writeln!(md, "No subset has two or more models.");
        } else {
            let _ = writeln!(md, "| models | ΔAUC | ΔEER |");
            let _ = writeln!(md, "|---|---:|---:|");
            for d in &self.fusion.per_subset {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} |",
                    md_escape(&d.models.join(" + ")),
                    fmt_signed(d.auc_difference, false),
                    fmt_signed(d.eer_difference, true)
                );
            }
            let line = |what: &str, t: &FusionTally, better: &str, pct: bool| {
                format!(
                    "- {what} ({better} is better) over {} subset(s): mean_logit wins {}, \
                     mean_probability wins {}, ties {}; mean difference {}",
                    t.subsets,
                    t.mean_logit_wins,
                    t.mean_probability_wins,
                    t.ties,
                    fmt_signed(t.mean_difference, pct)
                )
            };
            let _ = writeln!(md);
            let _ = writeln!(md, "{}", line("AUC", &self.fusion.auc, "higher", false));
            let _ = writeln!(md, "{}", line("EER", &self.fusion.eer, "lower", true));
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

/// One line of `scores.csv`.
#[derive(Debug, Clone, Copy)]
pub struct ScoreLine<'a> {
    /// The image's path.
    pub path: &'a str,
    /// Its set.
    pub set: &'a str,
    /// Ground truth.
    pub class: &'a Class,
    /// The verdict's status with checks off (`LIVE`, `SPOOF`, `NO_FACE`) or `ERROR`.
    pub status: &'a str,
    /// Each candidate's live probability; `None` without a face or on error.
    pub probabilities: Option<&'a [f64]>,
    /// Why the image could not be run.
    pub error: Option<&'a str>,
}

/// `scores.csv`: `path,set,class,attack_type,<one column per model>,status,error`, one line per
/// image (no image data).
pub fn scores_csv(models: &[String], lines: &[ScoreLine<'_>]) -> String {
    let mut s = String::from("path,set,class,attack_type");
    for m in models {
        s.push(',');
        s.push_str(&csv_field(m));
    }
    s.push_str(",status,error\n");
    for l in lines {
        let class = if l.class.is_bona_fide() {
            "bona_fide"
        } else {
            "attack"
        };
        let _ = write!(
            s,
            "{},{},{class},{}",
            csv_field(l.path),
            csv_field(l.set),
            csv_field(l.class.attack_type().unwrap_or(""))
        );
        for i in 0..models.len() {
            s.push(',');
            if let Some(v) = l.probabilities.and_then(|p| p.get(i)) {
                let _ = write!(s, "{v}");
            }
        }
        let _ = writeln!(
            s,
            ",{},{}",
            csv_field(l.status),
            csv_field(l.error.unwrap_or(""))
        );
    }
    s
}

/// Per-model CPU milliseconds from raw timings: the median of every timing of each model.
/// `None` for a model without timings.
pub fn median_ms(timings: &[Vec<f64>]) -> Vec<Option<f64>> {
    timings
        .iter()
        .map(|t| {
            let mut v: Vec<f64> = t.iter().copied().filter(|x| x.is_finite()).collect();
            v.sort_by(f64::total_cmp);
            crate::stats::quantile(&v, 0.5)
        })
        .collect()
}

/// Per-set AUCs of `row` by name (convenience for callers and tests).
pub fn per_set_map(row: &ComboRow) -> BTreeMap<&str, Option<&Auc>> {
    row.per_set_auc
        .iter()
        .map(|s| (s.set.as_str(), s.auc.as_ref()))
        .collect()
}

/// Does `report.winner` satisfy [`RULE`] against every row? (Used by tests and as a
/// self-check.) `true` when there is no winner and no row is eligible.
pub fn winner_satisfies_rule(report: &EnsembleReport) -> bool {
    let eligible: Vec<&ComboRow> = report
        .rows
        .iter()
        .filter(|r| r.within_budget && r.auc.is_some())
        .collect();
    let Some(w) = &report.winner else {
        return eligible.is_empty();
    };
    let Some(w_lo) = w.auc_lower() else {
        return false;
    };
    if !w.within_budget {
        return false;
    }
    let best = eligible
        .iter()
        .filter_map(|r| r.auc_lower())
        .fold(f64::NEG_INFINITY, f64::max);
    if best - w_lo > AUC_TIE + EPS {
        return false;
    }
    // No tied row is cheaper, or as cheap with fewer models.
    eligible.iter().all(|r| {
        let tied = r.auc_lower().is_some_and(|lo| best - lo <= AUC_TIE + EPS);
        !tied
            || match r.cpu_ms.total_cmp(&w.cpu_ms) {
                Ordering::Less => false,
                Ordering::Equal => r.n_models >= w.n_models,
                Ordering::Greater => true,
            }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(name: &str, cpu_ms: f64) -> CandidateModel {
        CandidateModel {
            name: name.to_string(),
            weight: 1.0,
            cpu_ms,
        }
    }

    fn sample(id: &str, live: bool, set: &str, p: Option<Vec<f64>>) -> EnsembleSample {
        EnsembleSample {
            id: id.to_string(),
            class: if live {
                Class::BonaFide
            } else {
                Class::Attack("print".to_string())
            },
            set: set.to_string(),
            probabilities: p,
        }
    }

    /// A row with only what the rule looks at.
    fn row(
        label: &str,
        lower: Option<f64>,
        cpu_ms: f64,
        n_models: usize,
        within: bool,
    ) -> ComboRow {
        ComboRow {
            rank: 0,
            models: vec![label.to_string()],
            fusion: None,
            label: label.to_string(),
            n_models,
            cpu_ms,
            within_budget: within,
            counts: Counts {
                policy: GatePolicy::CountAsRejected,
                bona_fide: Default::default(),
                attacks: BTreeMap::new(),
            },
            auc: lower.map(|lo| Auc {
                auc: (lo + 1.0) / 2.0,
                variance: Some(0.01),
                interval: Interval {
                    lower: lo,
                    upper: 1.0,
                },
                confidence: 0.95,
                bona_fide: 10,
                attacks: 10,
            }),
            eer: None,
            bpcer_at_apcer10: None,
            bpcer_at_apcer5: None,
            per_set_auc: Vec::new(),
        }
    }

    fn labels(rows: &[ComboRow], order: &[usize]) -> Vec<String> {
        order.iter().map(|&i| rows[i].label.clone()).collect()
    }

    #[test]
    fn subsets_by_size_then_lexicographic() {
        assert_eq!(
            subsets(3, None),
            vec![
                vec![0],
                vec![1],
                vec![2],
                vec![0, 1],
                vec![0, 2],
                vec![1, 2],
                vec![0, 1, 2]
            ]
        );
        assert_eq!(subsets(3, Some(1)), vec![vec![0], vec![1], vec![2]]);
        assert_eq!(subsets(2, Some(5)).len(), 3);
        assert!(subsets(0, None).is_empty());
        // 2^n − 1 subsets; C(5, ≤2) = 5 + 10.
        assert_eq!(subsets(5, None).len(), 31);
        assert_eq!(subsets(5, Some(2)).len(), 15);
    }

    #[test]
    fn combinations_double_the_multi_model_subsets() {
        // 2 models: a, b, {a,b}×2 = 4 rows; 3 models: 3 + (3 + 1)×2 = 11.
        let c = combinations(2, None);
        assert_eq!(c.len(), 4);
        assert_eq!(c[0].fusion, None);
        assert_eq!(c[2].fusion, Some(Fusion::MeanProbability));
        assert_eq!(c[3].fusion, Some(Fusion::MeanLogit));
        assert_eq!(combinations(3, None).len(), 11);
        for (n, k) in [(3, None), (5, Some(2)), (6, Some(4)), (1, None)] {
            assert_eq!(
                combination_count(n, k),
                combinations(n, k).len(),
                "{n} {k:?}"
            );
        }
        // 40 candidates: far beyond the cap, computed without overflow.
        assert!(combination_count(40, None) > MAX_COMBINATIONS);
        assert_eq!(combination_count(300, None), usize::MAX);
    }

    #[test]
    fn combination_scores_use_the_fusion() {
        let p = [0.9, 0.5, 0.2];
        let w = [1.0, 1.0, 3.0];
        let single = Combination {
            models: vec![1],
            fusion: None,
        };
        assert_eq!(single.score(&p, &w), Some(0.5));
        // Weighted mean of 0.9 (w 1) and 0.2 (w 3): (0.9 + 0.6) / 4 = 0.375.
        let mean = Combination {
            models: vec![0, 2],
            fusion: Some(Fusion::MeanProbability),
        };
        assert!((mean.score(&p, &w).unwrap_or(f64::NAN) - 0.375).abs() < 1e-12);
        // Out-of-range index: no score rather than a panic.
        let bad = Combination {
            models: vec![7],
            fusion: None,
        };
        assert_eq!(bad.score(&p, &w), None);
    }

    #[test]
    fn rule_takes_the_highest_lower_bound() {
        let rows = vec![
            row("a", Some(0.80), 1.0, 1, true),
            row("b", Some(0.90), 5.0, 2, true),
            row("c", Some(0.70), 0.5, 1, true),
        ];
        let (order, winner) = rank(&rows);
        assert_eq!(winner, Some(1));
        assert_eq!(labels(&rows, &order), ["b", "a", "c"]);
    }

    #[test]
    fn rule_ties_within_0_005_go_to_cheaper_then_fewer_models() {
        // b's bound is 0.004 below a's: tied → the cheaper b wins. c is as cheap as b but has
        // more models. d is cheaper still but 0.006 below the best: not tied.
        let rows = vec![
            row("a", Some(0.900), 5.0, 1, true),
            row("b", Some(0.896), 2.0, 1, true),
            row("c", Some(0.899), 2.0, 2, true),
            row("d", Some(0.894), 1.0, 1, true),
        ];
        let (order, winner) = rank(&rows);
        assert_eq!(winner, Some(1), "{:?}", labels(&rows, &order));
        // Then among c, a, d: best is a (0.900) → tied: c (0.899, 2 ms); d is 0.006 below.
        assert_eq!(labels(&rows, &order), ["b", "c", "a", "d"]);
        // Exactly 0.005 below counts as tied (rounding absorbed).
        let rows = vec![
            row("a", Some(0.9), 5.0, 1, true),
            row("b", Some(0.895), 2.0, 1, true),
        ];
        assert_eq!(rank(&rows).1, Some(1));
    }

    #[test]
    fn rule_respects_the_budget_and_missing_aucs() {
        let rows = vec![
            row("big", Some(0.95), 20.0, 3, false),
            row("small", Some(0.80), 4.0, 1, true),
            row("none", None, 1.0, 1, true),
            row("big2", Some(0.90), 15.0, 2, false),
        ];
        let (order, winner) = rank(&rows);
        assert_eq!(winner, Some(1));
        assert_eq!(labels(&rows, &order), ["small", "big", "big2", "none"]);
        // Nothing within the budget: no winner, still every row ordered.
        let rows = vec![
            row("big", Some(0.95), 20.0, 3, false),
            row("none", None, 1.0, 1, true),
        ];
        let (order, winner) = rank(&rows);
        assert_eq!(winner, None);
        assert_eq!(order.len(), 2);
    }

    /// Two sets, two models. Model a separates well, b is noisy; a NO_FACE capture in set 2.
    fn data() -> (Vec<CandidateModel>, Vec<EnsembleSample>) {
        let candidates = vec![cand("a", 2.0), cand("b", 3.0)];
        let samples = vec![
            sample("s1-l1", true, "one", Some(vec![0.95, 0.6])),
            sample("s1-l2", true, "one", Some(vec![0.85, 0.3])),
            sample("s1-l3", true, "one", Some(vec![0.70, 0.9])),
            sample("s1-a1", false, "one", Some(vec![0.10, 0.7])),
            sample("s1-a2", false, "one", Some(vec![0.40, 0.2])),
            sample("s1-a3", false, "one", Some(vec![0.75, 0.1])),
            sample("s2-l1", true, "two", Some(vec![0.99, 0.99])),
            sample("s2-l2", true, "two", Some(vec![0.60, 0.8])),
            sample("s2-l3", true, "two", None),
            sample("s2-a1", false, "two", Some(vec![0.05, 0.5])),
            sample("s2-a2", false, "two", Some(vec![0.30, 0.95])),
        ];
        (candidates, samples)
    }

    #[test]
    fn evaluate_measures_every_combination() {
        let (c, s) = data();
        let report = evaluate(&c, &s, &EnsembleConfig::default()).expect("evaluate");
        assert_eq!(report.rows.len(), 4);
        assert_eq!(report.rule, RULE);
        assert_eq!(report.sets.len(), 2);
        assert_eq!(report.sets[1].gated, 1);
        assert!(winner_satisfies_rule(&report));
        let ranks: Vec<usize> = report.rows.iter().map(|r| r.rank).collect();
        assert_eq!(ranks, [1, 2, 3, 4]);
        for r in &report.rows {
            let a = r.auc.expect("auc");
            assert!(a.lower() <= a.auc && a.auc <= a.upper(), "{r:?}");
            assert_eq!((a.bona_fide, a.attacks), (5, 5));
            assert_eq!(r.counts.bona_fide.gated, 1);
            assert_eq!(r.per_set_auc.len(), 2);
            assert!(r.eer.is_some());
        }
        // Model a alone, pooled: bona fide 0.95 0.85 0.70 0.99 0.60, attacks 0.10 0.40 0.75
        // 0.05 0.30. Pairs won: 0.95 → 5, 0.85 → 5, 0.70 → 4, 0.99 → 5, 0.60 → 4 = 23 of 25.
        let a = report
            .rows
            .iter()
            .find(|r| r.label == "a")
            .and_then(|r| r.auc)
            .expect("a");
        assert!((a.auc - 23.0 / 25.0).abs() < 1e-12);
        // Set one for a: bona fide 0.95 0.85 0.70 vs 0.10 0.40 0.75 → 3 + 3 + 2 = 8 of 9.
        let row_a = report.rows.iter().find(|r| r.label == "a").expect("a");
        let one = per_set_map(row_a)["one"].expect("set one");
        assert!((one.auc - 8.0 / 9.0).abs() < 1e-12);
        // The cost of the pair is the sum.
        let pair = report.rows.iter().find(|r| r.n_models == 2).expect("pair");
        assert_eq!(pair.cpu_ms, 5.0);
        // Set two under a: 0.99 0.60 vs 0.05 0.30 → AUC 1, variance 0: noted as degenerate.
        assert!(
            report.notes.iter().any(|n| n.starts_with("set two: ")),
            "{:?}",
            report.notes
        );
        let md = report.to_markdown();
        assert!(md.contains(RULE), "{md}");
        assert!(md.contains("AUC two"), "{md}");
        assert!(report.winner_line().starts_with("winner: "));
    }

    #[test]
    fn budget_excludes_expensive_combinations() {
        let (c, s) = data();
        let config = EnsembleConfig {
            cpu_budget_ms: Some(2.5),
            ..EnsembleConfig::default()
        };
        let report = evaluate(&c, &s, &config).expect("evaluate");
        let w = report.winner.as_ref().expect("a winner within 2.5 ms");
        assert_eq!(w.label, "a");
        assert!(winner_satisfies_rule(&report));
        assert_eq!(report.rows.iter().filter(|r| r.within_budget).count(), 1);
        let none = EnsembleConfig {
            cpu_budget_ms: Some(1.0),
            ..EnsembleConfig::default()
        };
        let report = evaluate(&c, &s, &none).expect("evaluate");
        assert!(report.winner.is_none());
        assert!(winner_satisfies_rule(&report));
        assert!(report.winner_line().contains("none"));
        // max_size 1: singles only, no fusion comparison.
        let singles = EnsembleConfig {
            max_size: Some(1),
            ..EnsembleConfig::default()
        };
        let report = evaluate(&c, &s, &singles).expect("evaluate");
        assert_eq!(report.rows.len(), 2);
        assert!(report.fusion.per_subset.is_empty());
    }

    #[test]
    fn fusion_comparison_on_made_up_scores() {
        // One bona fide, one attack; model a is confident and right on the bona fide, b is
        // wrong on both; c says 0.5 (log-odds 0) everywhere.
        //   l1: a = 0.999, b = 0.2;  x1: a = 0.6, b = 0.7.
        // {a, b}, mean_probability: l1 0.5995 < x1 0.65 → AUC 0. EER: at t = 0.65 both rates
        //   are 1 (gap 0) → EER 1.
        // {a, b}, mean_logit: l1 σ((6.907 − 1.386)/2) = σ(2.760) = 0.940, x1 σ((0.405 + 0.847)/2)
        //   = σ(0.626) = 0.652 → AUC 1; at t = 0.940 both rates are 0 → EER 0.
        // {a, c}, {b, c}: both fusions are increasing in the one model that varies → the same
        //   order → equal AUC and EER (ties).
        // {a, b, c}, mean_probability: l1 (0.999 + 0.2 + 0.5)/3 = 0.566 < x1 0.6 → AUC 0, EER 1;
        //   mean_logit: l1 σ(5.521/3) = 0.863 > x1 σ(1.253/3) = 0.603 → AUC 1, EER 0.
        // AUC: mean_logit wins 2, ties 2, mean difference (1 + 0 + 0 + 1)/4 = +0.5.
        // EER: mean_logit wins 2 (lower), ties 2, mean difference −0.5.
        let candidates = vec![cand("a", 1.0), cand("b", 1.0), cand("c", 1.0)];
        let samples = vec![
            sample("l1", true, "x", Some(vec![0.999, 0.2, 0.5])),
            sample("x1", false, "x", Some(vec![0.6, 0.7, 0.5])),
        ];
        let report = evaluate(&candidates, &samples, &EnsembleConfig::default()).expect("evaluate");
        let f = &report.fusion;
        let subsets: Vec<Vec<String>> = f.per_subset.iter().map(|d| d.models.clone()).collect();
        assert_eq!(
            subsets,
            [
                vec!["a", "b"],
                vec!["a", "c"],
                vec!["b", "c"],
                vec!["a", "b", "c"]
            ]
        );
        let d: Vec<(Option<f64>, Option<f64>)> = f
            .per_subset
            .iter()
            .map(|d| (d.auc_difference, d.eer_difference))
            .collect();
        assert_eq!(
            d,
            [
                (Some(1.0), Some(-1.0)),
                (Some(0.0), Some(0.0)),
                (Some(0.0), Some(0.0)),
                (Some(1.0), Some(-1.0))
            ]
        );
        assert_eq!(
            (
                f.auc.subsets,
                f.auc.mean_logit_wins,
                f.auc.mean_probability_wins,
                f.auc.ties
            ),
            (4, 2, 0, 2)
        );
        assert_eq!(f.auc.mean_difference, Some(0.5));
        assert_eq!(
            (
                f.eer.mean_logit_wins,
                f.eer.mean_probability_wins,
                f.eer.ties
            ),
            (2, 0, 2)
        );
        assert_eq!(f.eer.mean_difference, Some(-0.5));
        // One sample per class: no DeLong variance, every interval [0, 1], every lower bound 0
        // → all tied → the cheapest (1 ms), fewest models: the single a (enumeration order).
        assert_eq!(report.winner.as_ref().map(|w| w.label.as_str()), Some("a"));
        assert!(winner_satisfies_rule(&report));
        let md = report.to_markdown();
        assert!(md.contains("mean_logit wins 2"), "{md}");
    }

    #[test]
    fn fusion_tally_counts_wins_by_direction() {
        // AUC diffs +0.1, −0.05, 0 → logit 1, prob 1, tie 1, mean +0.05/3.
        let t = FusionTally::of([0.1, -0.05, 0.0].into_iter(), true);
        assert_eq!(
            (t.mean_logit_wins, t.mean_probability_wins, t.ties),
            (1, 1, 1)
        );
        assert!((t.mean_difference.unwrap_or(f64::NAN) - 0.05 / 3.0).abs() < 1e-12);
        // EER diffs: a negative difference is a mean_logit win.
        let t = FusionTally::of([-0.02, -0.01, 0.03].into_iter(), false);
        assert_eq!((t.mean_logit_wins, t.mean_probability_wins), (2, 1));
        assert_eq!(
            FusionTally::of(std::iter::empty(), true).mean_difference,
            None
        );
    }

    #[test]
    fn fusion_comparison_detects_a_winner() {
        // Made-up rows: on {a, b} mean_logit has AUC 0.9 vs 0.8 and EER 0.1 vs 0.2.
        let mk = |f: Fusion, auc: f64, eer: f64| {
            let mut r = row("x", Some(auc - 0.1), 1.0, 2, true);
            r.models = vec!["a".into(), "b".into()];
            r.fusion = Some(f);
            if let Some(a) = r.auc.as_mut() {
                a.auc = auc;
            }
            r.eer = Some(EerSummary {
                eer,
                threshold: 0.5,
                gap: 0.0,
                apcer_max: crate::Rate::new(1, 10).summary(),
                bpcer: crate::Rate::new(1, 10).summary(),
                interval: None,
            });
            r
        };
        let rows = vec![
            mk(Fusion::MeanLogit, 0.9, 0.1),
            mk(Fusion::MeanProbability, 0.8, 0.2),
        ];
        let f = compare_fusions(&rows);
        assert_eq!(f.per_subset.len(), 1);
        assert!((f.auc.mean_difference.unwrap_or(f64::NAN) - 0.1).abs() < 1e-12);
        assert!((f.eer.mean_difference.unwrap_or(f64::NAN) + 0.1).abs() < 1e-12);
        assert_eq!(f.auc.mean_logit_wins, 1);
        assert_eq!(f.eer.mean_logit_wins, 1);
    }

    #[test]
    fn input_errors() {
        let (c, s) = data();
        let cfg = EnsembleConfig::default();
        assert!(evaluate(&[], &s, &cfg).is_err());
        let mut short = s.clone();
        short[0].probabilities = Some(vec![0.5]);
        assert!(matches!(
            evaluate(&c, &short, &cfg),
            Err(EvalError::Ensemble(_))
        ));
        let mut nan = s.clone();
        nan[0].probabilities = Some(vec![f64::NAN, 0.5]);
        assert!(matches!(
            evaluate(&c, &nan, &cfg),
            Err(EvalError::NonFiniteScore { .. })
        ));
        let only_live: Vec<EnsembleSample> = s
            .iter()
            .filter(|x| x.set == "one" && x.class.is_bona_fide())
            .cloned()
            .collect();
        assert!(matches!(
            evaluate(&c, &only_live, &cfg),
            Err(EvalError::EmptyClass {
                class: "attack",
                ..
            })
        ));
        let zero = EnsembleConfig {
            max_size: Some(0),
            ..cfg
        };
        assert!(evaluate(&c, &s, &zero).is_err());
        let dup = vec![cand("a", 1.0), cand("a", 2.0)];
        assert!(evaluate(&dup, &s, &cfg).is_err());
    }

    #[test]
    fn csv_has_one_line_per_image() {
        let models = vec!["a".to_string(), "b,c".to_string()];
        let live = Class::BonaFide;
        let print = Class::Attack("print".into());
        let p = [0.25, 0.5];
        let lines = [
            ScoreLine {
                path: "x/1.jpg",
                set: "s",
                class: &live,
                status: "LIVE",
                probabilities: Some(&p),
                error: None,
            },
            ScoreLine {
                path: "x/2.jpg",
                set: "s",
                class: &print,
                status: "NO_FACE",
                probabilities: None,
                error: None,
            },
            ScoreLine {
                path: "x/3.jpg",
                set: "s",
                class: &print,
                status: "ERROR",
                probabilities: None,
                error: Some("DECODE_FAILED: bad"),
            },
        ];
        let csv = scores_csv(&models, &lines);
        let rows: Vec<&str> = csv.lines().collect();
        assert_eq!(rows[0], "path,set,class,attack_type,a,\"b,c\",status,error");
        assert_eq!(rows[1], "x/1.jpg,s,bona_fide,,0.25,0.5,LIVE,");
        assert_eq!(rows[2], "x/2.jpg,s,attack,print,,,NO_FACE,");
        assert_eq!(rows[3], "x/3.jpg,s,attack,print,,,ERROR,DECODE_FAILED: bad");
        assert_eq!(rows.len(), 4);
    }

    #[test]
    fn median_of_timings() {
        let m = median_ms(&[vec![3.0, 1.0, 2.0], vec![], vec![4.0, 1.0]]);
        assert_eq!(m, vec![Some(2.0), None, Some(2.5)]);
    }
}
