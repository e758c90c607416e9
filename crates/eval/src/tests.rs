//! Scenario tests on small synthetic score lists. Every expected value is
//! computed by hand in the comments next to it.

use std::path::PathBuf;

use crate::metrics::{Calibration, ScoreSet, Target};
use crate::report::EvalReport;
use crate::stats::Rate;
use crate::{plot, EvalError, GatePolicy, Sample};

fn bf(id: &str, s: f64) -> Sample {
    Sample::bona_fide(id, Some(s))
}
fn atk(id: &str, t: &str, s: f64) -> Sample {
    Sample::attack(id, t, Some(s))
}

/// Scenario A: 4 bona fide and two attack types.
///
/// bona fide: 0.9 0.8 0.6 0.3
/// print:     0.7 0.2 0.1
/// replay:    0.65 0.55
fn scenario_a() -> Vec<Sample> {
    vec![
        bf("b1", 0.9),
        bf("b2", 0.8),
        bf("b3", 0.6),
        bf("b4", 0.3),
        atk("p1", "print", 0.7),
        atk("p2", "print", 0.2),
        atk("p3", "print", 0.1),
        atk("r1", "replay", 0.65),
        atk("r2", "replay", 0.55),
    ]
}

fn set_a() -> ScoreSet {
    ScoreSet::new(&scenario_a(), GatePolicy::CountAsRejected).unwrap()
}

const EPS: f64 = 1e-12;

#[test]
fn rates_at_threshold_scenario_a() {
    // t = 0.5
    // BPCER: bona fide below 0.5 → {0.3} → 1/4
    // APCER print: print ≥ 0.5 → {0.7} → 1/3
    // APCER replay: replay ≥ 0.5 → {0.65, 0.55} → 2/2
    // APCER_max = replay, 1.0; ACER = (1.0 + 0.25)/2 = 0.625
    let op = set_a().at(0.5).unwrap();
    assert_eq!(op.bpcer, Rate::new(1, 4));
    assert_eq!(op.apcer_per_type["print"], Rate::new(1, 3));
    assert_eq!(op.apcer_per_type["replay"], Rate::new(2, 2));
    assert_eq!(op.apcer_max, Some(Rate::new(2, 2)));
    assert_eq!(op.apcer_max_type.as_deref(), Some("replay"));
    assert!((op.acer().unwrap() - 0.625).abs() < EPS);

    // t = 0.7 (print p1 sits exactly on the threshold → accepted)
    // BPCER: {0.6, 0.3} < 0.7 → 2/4; print {0.7} → 1/3; replay 0/2
    // APCER_max = print 1/3; ACER = (1/3 + 1/2)/2 = 5/12
    let op = set_a().at(0.7).unwrap();
    assert_eq!(op.bpcer, Rate::new(2, 4));
    assert_eq!(op.apcer_per_type["print"], Rate::new(1, 3));
    assert_eq!(op.apcer_per_type["replay"], Rate::new(0, 2));
    assert_eq!(op.apcer_max, Some(Rate::new(1, 3)));
    assert_eq!(op.apcer_max_type.as_deref(), Some("print"));
    assert!((op.acer().unwrap() - 5.0 / 12.0).abs() < EPS);
    let det = op.det_point().unwrap();
    assert_eq!((det.threshold, det.bpcer), (0.7, 0.5));
    assert!((det.apcer - 1.0 / 3.0).abs() < EPS);
}

#[test]
fn sweep_scenario_a() {
    // Distinct scores ascending: 0.1 0.2 0.3 0.55 0.6 0.65 0.7 0.8 0.9, plus
    // next_up(0.9).
    //  t     BPCER  print  replay  APCER_max
    //  0.1   0/4    3/3    2/2     2/2 (tie at 1.0 → fewer samples: replay)
    //  0.2   0/4    2/3    2/2     2/2
    //  0.3   0/4    1/3    2/2     2/2
    //  0.55  1/4    1/3    2/2     2/2
    //  0.6   1/4    1/3    1/2     1/2
    //  0.65  2/4    1/3    1/2     1/2
    //  0.7   2/4    1/3    0/2     1/3
    //  0.8   2/4    0/3    0/2     0/2 (tie at 0 → fewer samples: replay)
    //  0.9   3/4    0/3    0/2     0/2
    //  0.9+  4/4    0/3    0/2     0/2
    let s = set_a();
    let sw = s.sweep();
    let thresholds: Vec<f64> = sw.iter().map(|p| p.threshold).collect();
    assert_eq!(
        thresholds,
        vec![
            0.1,
            0.2,
            0.3,
            0.55,
            0.6,
            0.65,
            0.7,
            0.8,
            0.9,
            0.9f64.next_up()
        ]
    );
    let expected = [
        ((2, 2), (0, 4)),
        ((2, 2), (0, 4)),
        ((2, 2), (0, 4)),
        ((2, 2), (1, 4)),
        ((1, 2), (1, 4)),
        ((1, 2), (2, 4)),
        ((1, 3), (2, 4)),
        ((0, 2), (2, 4)),
        ((0, 2), (3, 4)),
        ((0, 2), (4, 4)),
    ];
    for (p, ((ae, at), (be, bt))) in sw.iter().zip(expected) {
        assert_eq!(p.apcer_max, Some(Rate::new(ae, at)), "t = {}", p.threshold);
        assert_eq!(p.bpcer, Rate::new(be, bt), "t = {}", p.threshold);
    }
    // DET: one point per candidate, from (APCER 1, BPCER 0) to (0, 1).
    let det = s.det_points();
    assert_eq!(det.len(), 10);
    assert_eq!((det[0].apcer, det[0].bpcer), (1.0, 0.0));
    assert_eq!((det[9].apcer, det[9].bpcer), (0.0, 1.0));
    assert_eq!((det[6].apcer, det[6].bpcer), (1.0 / 3.0, 0.5));
}

#[test]
fn eer_and_fixed_targets_scenario_a() {
    let s = set_a();
    // |APCER_max − BPCER| over the sweep table above:
    // 1, 1, 1, 0.75, 0.25, 0 (at 0.65), 1/6, 0.5, 0.75, 1 → EER at t = 0.65,
    // EER = (1/2 + 2/4)/2 = 0.5, gap 0.
    let e = s.eer().unwrap();
    assert_eq!(e.threshold, 0.65);
    assert!((e.eer - 0.5).abs() < EPS);
    assert_eq!(e.gap, 0.0);
    assert_eq!(e.apcer_max, Rate::new(1, 2));
    assert_eq!(e.bpcer, Rate::new(2, 4));

    // BPCER100 (APCER_max ≤ 1%): candidates with APCER_max = 0 are 0.8 (BPCER
    // 2/4), 0.9 (3/4), 0.9+ (4/4) → BPCER100 = 2/4 at t = 0.8. APCER_max is
    // 1/3 at best above 0 elsewhere, so BPCER20 and BPCER10 are the same.
    for x in [0.01, 0.05, 0.10] {
        let op = s.bpcer_at_apcer(x).unwrap().unwrap();
        assert_eq!(op.threshold, 0.8, "x = {x}");
        assert_eq!(op.bpcer, Rate::new(2, 4));
        assert_eq!(op.apcer_max, Some(Rate::new(0, 2)));
    }
    // With a 40% APCER budget t = 0.7 (APCER_max 1/3, BPCER 2/4) ties t = 0.8
    // on BPCER; the lower APCER_max (0 at 0.8) wins.
    assert_eq!(s.bpcer_at_apcer(0.4).unwrap().unwrap().threshold, 0.8);
    // With a 50% budget t = 0.6 (APCER_max 1/2, BPCER 1/4) is the best.
    let op = s.bpcer_at_apcer(0.5).unwrap().unwrap();
    assert_eq!(op.threshold, 0.6);
    assert_eq!(op.bpcer, Rate::new(1, 4));

    // APCER @ BPCER ≤ 1%: candidates with BPCER = 0 are 0.1, 0.2, 0.3, all with
    // APCER_max 2/2 and BPCER 0/4 → full tie → highest threshold 0.3, where
    // print is 1/3 (vs 3/3 at 0.1).
    let op = s.apcer_at_bpcer(0.01).unwrap().unwrap();
    assert_eq!(op.threshold, 0.3);
    assert_eq!(op.apcer_max, Some(Rate::new(2, 2)));
    assert_eq!(op.apcer_per_type["print"], Rate::new(1, 3));
    // APCER @ BPCER ≤ 25%: 0.55 and 0.6 (BPCER 1/4) also qualify; 0.6 has
    // APCER_max 1/2.
    let op = s.apcer_at_bpcer(0.25).unwrap().unwrap();
    assert_eq!(op.threshold, 0.6);
    assert_eq!(op.apcer_max, Some(Rate::new(1, 2)));

    assert!(matches!(
        s.bpcer_at_apcer(1.5),
        Err(EvalError::InvalidTarget(_))
    ));
    assert!(matches!(
        s.apcer_at_bpcer(f64::NAN),
        Err(EvalError::InvalidTarget(_))
    ));
}

#[test]
fn eer_tie_goes_to_lowest_threshold() {
    // bona fide 0.3 0.9; print 0.1 0.5 0.7
    //  t     BPCER  APCER  gap
    //  0.1   0/2    3/3    1
    //  0.3   0/2    2/3    2/3
    //  0.5   1/2    2/3    1/6   ← tie
    //  0.7   1/2    1/3    1/6   ← tie
    //  0.9   1/2    0/3    1/2
    //  0.9+  2/2    0/3    1
    // Rule: lowest threshold → t = 0.5, EER = (2/3 + 1/2)/2 = 7/12.
    let samples = vec![
        bf("b1", 0.3),
        bf("b2", 0.9),
        atk("p1", "print", 0.1),
        atk("p2", "print", 0.5),
        atk("p3", "print", 0.7),
    ];
    let e = ScoreSet::new(&samples, GatePolicy::Exclude)
        .unwrap()
        .eer()
        .unwrap();
    assert_eq!(e.threshold, 0.5);
    assert!((e.eer - 7.0 / 12.0).abs() < EPS);
    assert!((e.gap - 1.0 / 6.0).abs() < EPS);
}

#[test]
fn ties_at_threshold_are_accepted() {
    // bona fide 0.5 0.5 0.4; print 0.5 0.2; t = 0.5
    // Accepted iff score ≥ 0.5: both bona fide at 0.5 accepted → BPCER 1/3
    // (only 0.4 rejected); print 0.5 accepted → APCER 1/2.
    // If ">" were used instead, BPCER would be 3/3 and APCER 0/2.
    let samples = vec![
        bf("b1", 0.5),
        bf("b2", 0.5),
        bf("b3", 0.4),
        atk("p1", "print", 0.5),
        atk("p2", "print", 0.2),
    ];
    let s = ScoreSet::new(&samples, GatePolicy::CountAsRejected).unwrap();
    let op = s.at(0.5).unwrap();
    assert_eq!(op.bpcer, Rate::new(1, 3));
    assert_eq!(op.apcer_max, Some(Rate::new(1, 2)));
    // Duplicate scores give one candidate: 0.2, 0.4, 0.5, next_up(0.5).
    assert_eq!(
        s.candidate_thresholds(),
        vec![0.2, 0.4, 0.5, 0.5f64.next_up()]
    );
    // Just above the tie everything at 0.5 is rejected: BPCER 3/3, APCER 0/2.
    let op = s.at(0.5f64.next_up()).unwrap();
    assert_eq!(op.bpcer, Rate::new(3, 3));
    assert_eq!(op.apcer_max, Some(Rate::new(0, 2)));
    // The per-sample decision agrees: the tied attack is accepted.
    assert_eq!(samples[3].decision(0.5), crate::Decision::Accept);
    assert_eq!(samples[2].decision(0.5), crate::Decision::Reject);
}

#[test]
fn attack_type_with_zero_samples_is_absent() {
    // Scenario A plus a declared "mask" type with no samples, and an
    // "unknown" type whose only sample was gated.
    let mut samples = scenario_a();
    samples.push(Sample::attack("u1", "unknown", None));
    let declared = ["mask"];

    // Exclude: mask has 0 samples, unknown 0 counted → both absent (None),
    // not 0, and not in the max: APCER_max at 0.5 stays replay 2/2.
    let s = ScoreSet::new(&samples, GatePolicy::Exclude)
        .unwrap()
        .with_attack_types(declared);
    let op = s.at(0.5).unwrap();
    assert_eq!(op.apcer_per_type["mask"], Rate::new(0, 0));
    assert_eq!(op.apcer_per_type["mask"].value(), None);
    assert_eq!(op.apcer_per_type["unknown"].value(), None);
    assert_eq!(op.apcer_max, Some(Rate::new(2, 2)));
    // At 0.8 every present type is 0: print 0/3, replay 0/2. Absent types
    // must not win the max even though 0/0 "ties" at nothing.
    let op = s.at(0.8).unwrap();
    assert_eq!(op.apcer_max, Some(Rate::new(0, 2)));
    assert_eq!(op.apcer_max_type.as_deref(), Some("replay"));
    let c = s.counts();
    assert_eq!(c.attacks["mask"].total, 0);
    assert_eq!(c.attacks["unknown"].gated, 1);
    assert_eq!(c.attacks["unknown"].counted, 0);

    // CountAsRejected: the gated "unknown" attack is a caught attack → 0/1,
    // present with value 0.
    let s = ScoreSet::new(&samples, GatePolicy::CountAsRejected)
        .unwrap()
        .with_attack_types(declared);
    assert_eq!(
        s.at(0.5).unwrap().apcer_per_type["unknown"],
        Rate::new(0, 1)
    );

    // The report shows "absent" for mask and notes it.
    let r = EvalReport::new(&s, 0.5, "m").unwrap();
    assert_eq!(r.apcer_per_type["mask"].value, None);
    let md = r.to_markdown();
    assert!(
        md.contains("| APCER (mask) | 0 / 0 | absent | – | – |"),
        "{md}"
    );
    assert!(md.contains("left out of APCER_max: mask"), "{md}");

    // Only an all-gated attack type under Exclude: no present type, so
    // APCER_max is None (not 0/1 or 0/0).
    let gated_only = vec![bf("b1", 0.9), Sample::attack("u1", "unknown", None)];
    let s = ScoreSet::new(&gated_only, GatePolicy::Exclude).unwrap();
    let op = s.at(0.5).unwrap();
    assert_eq!(op.apcer_max, None);
    assert_eq!(op.apcer_max_type, None);
    assert!(s.eer().is_none());
    assert!(s.det_points().is_empty());

    // No attacks at all: APCER_max is None and so is ACER and EER.
    let only_bf = vec![bf("b1", 0.9)];
    let s = ScoreSet::new(&only_bf, GatePolicy::Exclude).unwrap();
    let op = s.at(0.5).unwrap();
    assert_eq!(op.apcer_max, None);
    assert_eq!(op.acer(), None);
    assert!(s.eer().is_none());
    assert!(s.bpcer_at_apcer(0.01).unwrap().is_none());
}

#[test]
fn perfect_separation() {
    // bona fide 0.8 0.9 0.95; print 0.1 0.2; replay 0.3
    // Sweep: 0.1 → APCER_max 1/1 (replay) BPCER 0; 0.2 → 1/1, 0; 0.3 → 1/1, 0;
    // 0.8 → APCER 0, BPCER 0 (gap 0 → EER 0 at 0.8); 0.9 → 0, 1/3; …
    let samples = vec![
        bf("b1", 0.8),
        bf("b2", 0.9),
        bf("b3", 0.95),
        atk("p1", "print", 0.1),
        atk("p2", "print", 0.2),
        atk("r1", "replay", 0.3),
    ];
    let s = ScoreSet::new(&samples, GatePolicy::CountAsRejected).unwrap();
    let e = s.eer().unwrap();
    assert_eq!(e.eer, 0.0);
    assert_eq!(e.threshold, 0.8);
    // BPCER100: APCER 0 at 0.8, 0.9, 0.95, 0.95+ with BPCER 0, 1/3, 2/3, 3/3
    // → 0 at 0.8.
    let op = s.bpcer_at_apcer(0.01).unwrap().unwrap();
    assert_eq!(op.bpcer, Rate::new(0, 3));
    assert_eq!(op.threshold, 0.8);
    // APCER@BPCER1%: BPCER 0 at 0.1, 0.2, 0.3, 0.8 → APCER_max 0 only at 0.8.
    let op = s.apcer_at_bpcer(0.01).unwrap().unwrap();
    assert_eq!(op.threshold, 0.8);
    assert_eq!(op.apcer_max.unwrap().errors, 0);
    assert!(s
        .det_points()
        .iter()
        .any(|p| p.apcer == 0.0 && p.bpcer == 0.0));
}

#[test]
fn all_wrong() {
    // Attacks all score above bona fide: bona fide 0.1 0.2; print 0.8 0.9.
    //  t     BPCER  APCER  gap
    //  0.1   0/2    2/2    1
    //  0.2   1/2    2/2    0.5
    //  0.8   2/2    2/2    0    ← EER = 1.0 at 0.8
    //  0.9   2/2    1/2    0.5
    //  0.9+  2/2    0/2    1
    let samples = vec![
        bf("b1", 0.1),
        bf("b2", 0.2),
        atk("p1", "print", 0.8),
        atk("p2", "print", 0.9),
    ];
    let s = ScoreSet::new(&samples, GatePolicy::CountAsRejected).unwrap();
    let e = s.eer().unwrap();
    assert_eq!(e.threshold, 0.8);
    assert_eq!(e.eer, 1.0);
    // BPCER100: only 0.9+ has APCER 0 → BPCER 2/2 there.
    let op = s.bpcer_at_apcer(0.01).unwrap().unwrap();
    assert_eq!(op.threshold, 0.9f64.next_up());
    assert_eq!(op.bpcer, Rate::new(2, 2));
    // APCER@BPCER1%: only 0.1 has BPCER 0 → APCER 2/2.
    let op = s.apcer_at_bpcer(0.01).unwrap().unwrap();
    assert_eq!(op.threshold, 0.1);
    assert_eq!(op.apcer_max, Some(Rate::new(2, 2)));
}

/// bona fide: 0.9 0.7 0.2 gated gated; print: 0.6 0.3 gated
fn gated_samples() -> Vec<Sample> {
    vec![
        bf("b1", 0.9),
        bf("b2", 0.7),
        bf("b3", 0.2),
        Sample::bona_fide("b4", None),
        Sample::bona_fide("b5", None),
        atk("p1", "print", 0.6),
        atk("p2", "print", 0.3),
        Sample::attack("p3", "print", None),
    ]
}

#[test]
fn gated_samples_under_both_policies() {
    let samples = gated_samples();
    // CountAsRejected, t = 0.5:
    // BPCER = (0.2 rejected + 2 gated) / 5 = 3/5; APCER = {0.6} / 3 = 1/3.
    let s = ScoreSet::new(&samples, GatePolicy::CountAsRejected).unwrap();
    let op = s.at(0.5).unwrap();
    assert_eq!(op.bpcer, Rate::new(3, 5));
    assert_eq!(op.apcer_max, Some(Rate::new(1, 3)));
    let c = s.counts();
    assert_eq!(
        (
            c.bona_fide.total,
            c.bona_fide.scored,
            c.bona_fide.gated,
            c.bona_fide.counted
        ),
        (5, 3, 2, 5)
    );
    let p = c.attacks["print"];
    assert_eq!((p.total, p.scored, p.gated, p.counted), (3, 2, 1, 3));
    // Even at the lowest candidate (0.2) the 2 gated bona fide are rejected:
    // BPCER ≥ 2/5, so APCER@BPCER1% does not exist and calibration says so.
    assert!(s.apcer_at_bpcer(0.01).unwrap().is_none());
    let cal = s.calibrate(Target::Bpcer(0.01)).unwrap();
    assert_eq!(cal.threshold, None);
    assert!(
        cal.notes
            .iter()
            .any(|n| n.contains("lowest achievable is 40.00% (2/5)") && n.contains("2 gated")),
        "{:?}",
        cal.notes
    );

    // Exclude, t = 0.5: BPCER = {0.2} / 3 = 1/3; APCER = {0.6} / 2 = 1/2;
    // gated counts are still reported.
    let s = ScoreSet::new(&samples, GatePolicy::Exclude).unwrap();
    let op = s.at(0.5).unwrap();
    assert_eq!(op.bpcer, Rate::new(1, 3));
    assert_eq!(op.apcer_max, Some(Rate::new(1, 2)));
    let c = s.counts();
    assert_eq!((c.bona_fide.gated, c.bona_fide.counted), (2, 3));
    assert_eq!(
        (c.attacks["print"].gated, c.attacks["print"].counted),
        (1, 2)
    );
    // APCER@BPCER1% now exists: t = 0.2 has BPCER 0/3 and APCER 2/2.
    let op = s.apcer_at_bpcer(0.01).unwrap().unwrap();
    assert_eq!(op.threshold, 0.2);
    assert_eq!(op.apcer_max, Some(Rate::new(2, 2)));

    // Report keeps the gated counts under both policies.
    for policy in [GatePolicy::CountAsRejected, GatePolicy::Exclude] {
        let r = EvalReport::from_samples(&samples, 0.5, policy, "m").unwrap();
        assert_eq!(r.counts.bona_fide.gated, 2);
        assert_eq!(r.counts.attacks["print"].gated, 1);
    }
}

/// [`ScoreSet::calibrate`] on fresh samples.
fn calibrate(
    samples: &[Sample],
    policy: GatePolicy,
    target: Target,
) -> Result<Calibration, EvalError> {
    ScoreSet::new(samples, policy)?.calibrate(target)
}

#[test]
fn calibration_notes_small_data() {
    // 10 bona fide at 0.50, 0.55, …, 0.95; 10 print attacks at 0.00 … 0.09.
    let mut samples: Vec<Sample> = (0..10)
        .map(|i| bf(&format!("b{i}"), 0.5 + 0.05 * i as f64))
        .collect();
    samples.extend((0..10).map(|i| atk(&format!("p{i}"), "print", 0.01 * i as f64)));
    let policy = GatePolicy::CountAsRejected;

    // Target APCER 1%: APCER 0 from t = 0.5 up; lowest BPCER (0/10) at 0.5.
    // With 10 attacks, 0 errors only shows APCER ≤ 1 − 0.025^(1/10) = 30.85%,
    // so the target is not supported; 368 attacks would be needed.
    let cal = calibrate(&samples, policy, Target::Apcer(0.01)).unwrap();
    assert_eq!(cal.threshold, Some(0.5));
    assert_eq!(cal.apcer_max.unwrap().errors, 0);
    assert_eq!(cal.bpcer.unwrap().errors, 0);
    let cp = cal.apcer_max.unwrap().clopper_pearson95.unwrap();
    assert!((cp.upper - 0.308_497_1).abs() < 1e-6);
    assert!(!cal.supported_by_sample_size);
    assert_eq!(cal.notes.len(), 1, "{:?}", cal.notes);
    assert!(cal.notes[0].contains("30.85%"), "{}", cal.notes[0]);
    assert!(cal.notes[0].contains("368"), "{}", cal.notes[0]);

    // Target APCER 50%: zero errors out of 10 → upper 30.85% ≤ 50%, so the
    // size supports it (needed n = ceil(ln 0.025 / ln 0.5) = 6) → no notes.
    let cal = calibrate(&samples, policy, Target::Apcer(0.5)).unwrap();
    assert!(cal.supported_by_sample_size);
    assert!(cal.notes.is_empty(), "{:?}", cal.notes);

    // Target BPCER 20%: n = 10 < ceil(ln 0.025 / ln 0.8) = 17 → unsupported.
    let cal = calibrate(&samples, policy, Target::Bpcer(0.2)).unwrap();
    assert!(!cal.supported_by_sample_size);
    assert!(
        cal.notes[0].contains("bona fide (n = 10)"),
        "{}",
        cal.notes[0]
    );

    // Point estimate meets the target but the interval does not: make 4 of
    // the 10 attacks score 0.9. Target APCER 50%: any t in (0.05, 0.9] gives
    // APCER 4/10; BPCER 0 up to t = 0.5, so t = 0.5 (highest among the full
    // ties). CP upper for 4/10 = 73.76% > 50%.
    let mut s2: Vec<Sample> = samples[..10].to_vec();
    s2.extend((0..6).map(|i| atk(&format!("p{i}"), "print", 0.01 * i as f64)));
    s2.extend((6..10).map(|i| atk(&format!("p{i}"), "print", 0.9)));
    let cal = calibrate(&s2, policy, Target::Apcer(0.5)).unwrap();
    assert_eq!(cal.threshold, Some(0.5));
    assert_eq!(cal.apcer_max.unwrap().errors, 4);
    assert!(cal.supported_by_sample_size);
    assert!(
        cal.notes.iter().any(|n| n.contains("73.76%")),
        "{:?}",
        cal.notes
    );

    assert!(matches!(
        calibrate(&samples, policy, Target::Bpcer(-0.1)),
        Err(EvalError::InvalidTarget(_))
    ));
}

#[test]
fn non_finite_scores_and_thresholds_are_errors() {
    let samples = vec![bf("b1", f64::NAN)];
    assert!(matches!(
        ScoreSet::new(&samples, GatePolicy::Exclude),
        Err(EvalError::NonFiniteScore { .. })
    ));
    let s = set_a();
    assert!(matches!(
        s.at(f64::NAN),
        Err(EvalError::InvalidThreshold(_))
    ));
    assert!(s.at(f64::INFINITY).is_err());
}

#[test]
fn report_scenario_a() {
    let r = EvalReport::new(&set_a(), 0.5, "test-model").unwrap();
    // Values from rates_at_threshold_scenario_a / eer_and_fixed_targets.
    assert_eq!((r.bpcer.errors, r.bpcer.total), (1, 4));
    assert_eq!(r.apcer_max_type.as_deref(), Some("replay"));
    assert!((r.acer.unwrap() - 0.625).abs() < EPS);
    let e = r.eer.as_ref().unwrap();
    assert_eq!((e.threshold, e.eer), (0.65, 0.5));
    let names: Vec<&str> = r.bpcer_at_apcer.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["BPCER100", "BPCER20", "BPCER10"]);
    assert_eq!(r.bpcer_at_apcer[0].threshold, Some(0.8));
    assert_eq!(r.bpcer_at_apcer[0].value.unwrap().errors, 2);
    assert_eq!(r.apcer_at_bpcer[0].threshold, Some(0.3));
    assert_eq!(r.apcer_at_bpcer[0].value.unwrap().errors, 2);
    // BPCER100 needs ≥ 368 attacks per type; this data has 3 and 2.
    assert!(!r.bpcer_at_apcer[0].supported_by_sample_size);
    // Wilson 95% for 1/4 (BPCER), z² = 3.841459: centre = (0.25 + 0.480182)
    // / 1.960365 = 0.372473, half = 1.959964·sqrt(0.046875 + 0.060023)
    // / 1.960365 = 0.326885 → [0.045587, 0.699358].
    let w = r.bpcer.wilson95.unwrap();
    assert!((w.lower - 0.045_587).abs() < 2e-6, "{w:?}");
    assert!((w.upper - 0.699_358).abs() < 2e-6, "{w:?}");

    // JSON round trip (serde_json's default float parsing may differ from
    // the original in the last ulp, so compare counts exactly and floats
    // approximately).
    let json = r.to_json_pretty().unwrap();
    let back: EvalReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back.counts, r.counts);
    assert_eq!(back.bpcer_at_apcer.len(), 3);
    assert_eq!(back.apcer_at_bpcer[1].threshold, Some(0.3));
    assert!((back.bpcer.wilson95.unwrap().upper - w.upper).abs() < 1e-12);
    assert!(json.contains("\"policy\": \"CountAsRejected\""));

    let md = r.to_markdown();
    for needle in [
        "# Liveness PAD evaluation: test-model",
        "| bona fide | – | 4 | 4 | 0 | 4 |",
        "| attack | print | 3 | 3 | 0 | 3 |",
        "| APCER (print) | 1 / 3 | 33.33% |",
        "| APCER (replay) | 2 / 2 | 100.00% |",
        "| **APCER** (ISO, max over types; worst type: replay) | 2 / 2 | 100.00% |",
        "| **BPCER** | 1 / 4 | 25.00% | [4.56%, 69.94%] |",
        "| ACER (deprecated by ISO/IEC 30107-3) | – | 62.50% |",
        "| EER | APCER_max ≈ BPCER | 0.65 | 50.00% |",
        "| BPCER100 | APCER_max ≤ 1.00% | 0.8 | 50.00% | 2 / 4 |",
        "| APCER@BPCER=1% | BPCER ≤ 1.00% | 0.3 | 100.00% | 2 / 2 |",
    ] {
        assert!(md.contains(needle), "missing {needle:?} in\n{md}");
    }
    assert_eq!(
        r.plot_title(),
        "test-model: 4 bona fide, 5 attacks (print 3, replay 2)"
    );
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ekyc-eval-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The trimmed contents of every `<text>` element of an SVG.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|chunk| {
            let body = chunk.split_once('>')?.1;
            Some(body.split_once("</text>")?.0.trim().to_string())
        })
        .collect()
}

/// Integer attribute `name="…"` inside an SVG element's text.
fn svg_attr(element: &str, name: &str) -> Option<u32> {
    let start = element.find(&format!(" {name}=\""))? + name.len() + 3;
    element[start..].split('"').next()?.parse().ok()
}

/// Decodes a PNG and returns (width, height, RGB pixels).
fn decode_png(path: &std::path::Path) -> (u32, u32, Vec<[u8; 3]>) {
    let bytes = std::fs::read(path).unwrap();
    assert!(!bytes.is_empty());
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .unwrap()
        .to_rgb8();
    let (w, h) = img.dimensions();
    (w, h, img.pixels().map(|p| p.0).collect())
}

#[test]
fn det_plot_png_and_svg() {
    let dir = temp_dir("det");
    let s = set_a();
    let points = s.det_points();
    let op = s.at(0.5).unwrap();
    let op_point = crate::DetPoint {
        threshold: 0.5,
        apcer: op.apcer_max.and_then(|r| r.value()).unwrap(),
        bpcer: op.bpcer.value().unwrap(),
    };
    let title = plot::title_with_counts("test-model", &s.counts());
    let (png, svg) = (dir.join("det.png"), dir.join("det.svg"));
    plot::det_curve(&points, Some(&op_point), &title, &png, &svg).unwrap();

    let (w, h, px) = decode_png(&png);
    assert_eq!((w, h), (900, 860));
    // The bottom 30 rows hold only the second caption line: dark pixels
    // there mean the embedded font rendered.
    let caption_dark = px[(w as usize * (h as usize - 30))..]
        .iter()
        .filter(|p| p.iter().all(|c| *c < 100))
        .count();
    assert!(
        caption_dark > 200,
        "caption text not rendered ({caption_dark} dark px)"
    );

    let svg_text = std::fs::read_to_string(&svg).unwrap();
    assert!(svg_text.starts_with("<svg"));
    let texts = svg_texts(&svg_text);
    for want in [
        "test-model: 4 bona fide, 5 attacks (print 3, replay 2)",
        "t = 0.5",
        "0%",
        "0.1%",
        "1%",
        "5%",
        "10%",
        "20%",
        "40%",
        "100%",
        "operating threshold 0.5: APCER 100.00%, BPCER 25.00%",
    ] {
        assert!(texts.iter().any(|t| t == want), "{want:?} not in {texts:?}");
    }
    // Exactly one operating-point marker (radius 7, colour #C00030; the
    // legend swatch has radius 5). The op is at APCER 100% (clipped to the
    // right edge line) and BPCER 25%, so it sits in the right part of the
    // plot, above the middle; the PNG has the marker colour at the same spot.
    let markers: Vec<(u32, u32)> = svg_text
        .split("<circle")
        .skip(1)
        .filter_map(|c| c.split_once('>').map(|(attrs, _)| attrs))
        .filter(|c| c.contains(r#"r="7""#) && c.contains(r##"fill="#C00030""##))
        .filter_map(|c| Some((svg_attr(c, "cx")?, svg_attr(c, "cy")?)))
        .collect();
    assert_eq!(markers.len(), 1, "{markers:?}");
    let (cx, cy) = markers[0];
    assert!(cx > w * 8 / 10 && cy < h / 2, "marker at {cx},{cy}");
    assert_eq!(px[(cy * w + cx) as usize], [0xc0, 0x00, 0x30]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn histogram_png_and_svg() {
    let dir = temp_dir("hist");
    let samples = gated_samples();
    let (png, svg) = (dir.join("hist.png"), dir.join("hist.svg"));
    plot::score_histogram(&samples, 0.5, 20, "hist test", &png, &svg).unwrap();
    let (w, h, px) = decode_png(&png);
    assert_eq!((w, h), (1000, 620));
    // Bars are drawn with 45% alpha over white: some pixels are neither white
    // nor grey (a bona fide or attack tint).
    assert!(px.iter().any(|p| p[0] != p[1] || p[1] != p[2]));
    let texts = svg_texts(&std::fs::read_to_string(&svg).unwrap());
    assert!(
        texts.iter().any(|t| t.contains("2 bona fide, 1 attack")),
        "gated counts in caption: {texts:?}"
    );
    assert!(texts.iter().any(|t| t.starts_with("threshold = 0.5")));
    assert!(texts.iter().any(|t| t == "bona fide (n = 3 scored)"));
    assert!(matches!(
        plot::score_histogram(&samples, 0.5, 0, "x", &png, &svg),
        Err(EvalError::InvalidBins)
    ));
    // Unwritable path → a Plot error, not a panic.
    let bad = dir.join("no-such-dir").join("x.png");
    assert!(matches!(
        plot::score_histogram(&samples, 0.5, 10, "x", &bad, &svg),
        Err(EvalError::Plot { .. })
    ));
    std::fs::remove_dir_all(&dir).ok();
}
