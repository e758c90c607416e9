//! Capture sessions: challenge–response liveness over a burst of frames. Pure rules, no I/O.
//!
//! The server draws a challenge (2–3 moves among TURN_LEFT, TURN_RIGHT, LOOK_UP, BLINK in random
//! order, CENTER after each); the client records frames while the person performs it; each frame
//! is analysed by the pipeline ([`FrameObservation`]); [`decide`] checks, each rule a reason code:
//! temporal sanity (count, order, duration, repeated frames), one face per frame, the same face in
//! every frame (embedding similarity to the reference frame), every step performed in order, the
//! passive liveness of the frontal frames, and the quality gate on the reference frame.
//!
//! Moves are measured from the face mesh's head pose, which a 2-D motion of a still picture (in-
//! plane rotation, translation, scaling) does not change: a photo moved in front of the camera
//! cannot turn its head.

use crate::embed::Embedding;
use crate::quality::ReasonCode;
use serde::{Deserialize, Serialize};

/// One step of a challenge. Directions are the person's own: TURN_LEFT = the head turns to the
/// person's left (towards the right of an unmirrored camera image).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Step {
    TurnLeft,
    TurnRight,
    LookUp,
    Blink,
    Center,
}

impl Step {
    /// The moves a challenge is drawn from (CENTER goes between them).
    pub const MOVES: [Step; 4] = [Step::TurnLeft, Step::TurnRight, Step::LookUp, Step::Blink];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::TurnLeft => "TURN_LEFT",
            Step::TurnRight => "TURN_RIGHT",
            Step::LookUp => "LOOK_UP",
            Step::Blink => "BLINK",
            Step::Center => "CENTER",
        }
    }

    pub fn parse(s: &str) -> Option<Step> {
        let s = s.trim().to_ascii_uppercase();
        [Step::Center]
            .into_iter()
            .chain(Step::MOVES)
            .find(|st| st.as_str() == s)
    }

    /// What the person is asked to do (client-facing).
    pub fn instruction(self) -> &'static str {
        match self {
            Step::TurnLeft => "Turn your head to your left",
            Step::TurnRight => "Turn your head to your right",
            Step::LookUp => "Look up",
            Step::Blink => "Blink",
            Step::Center => "Look straight at the camera",
        }
    }
}

/// Parse a comma-separated list of steps ("TURN_LEFT,CENTER,BLINK").
pub fn parse_steps(s: &str) -> Result<Vec<Step>, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| Step::parse(p).ok_or_else(|| format!("unknown step {p:?}")))
        .collect()
}

/// A small deterministic generator (SplitMix64) for drawing challenges from a random seed.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (n > 0), by rejection (no modulo bias).
    pub fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let v = self.next_u64();
            if v < zone {
                return v % n;
            }
        }
    }
}

/// Draw a challenge from `seed` (the caller's randomness: 64 bits from the OS in the service):
/// 2 or 3 distinct moves in random order, each followed by CENTER. TURN_LEFT and TURN_RIGHT are
/// never adjacent without CENTER between them, by construction.
pub fn draw_steps(seed: u64) -> Vec<Step> {
    let mut rng = SplitMix64::new(seed);
    let mut moves = Step::MOVES.to_vec();
    // Fisher–Yates.
    for i in (1..moves.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        moves.swap(i, j);
    }
    let n = 2 + rng.below(2) as usize;
    moves
        .into_iter()
        .take(n)
        .flat_map(|m| [m, Step::Center])
        .collect()
}

/// The thresholds of the session decision (service defaults in [`Default`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionRules {
    /// Fewest frames an attempt must have.
    pub min_frames: usize,
    /// Most frames an attempt may have.
    pub max_frames: usize,
    /// Longest span from the first frame's timestamp to the last's, milliseconds.
    pub max_duration_ms: u64,
    /// A turn is done when the head's yaw passes this many degrees towards the asked side.
    pub turn_deg: f32,
    /// LOOK_UP is done when the pitch rises this many degrees above the frontal pose.
    pub look_up_deg: f32,
    /// CENTER is held when yaw and pitch are both within this many degrees of the frontal pose.
    pub center_deg: f32,
    /// BLINK: the less open eye drops below this share of the session's open-eye level…
    pub blink_closed_ratio: f32,
    /// …and comes back above this share.
    pub blink_open_ratio: f32,
    /// A frame is the session's face when its embedding has at least this cosine similarity with
    /// the identity template (the reference frame and the frontal frames that match it)…
    pub min_identity_similarity: f32,
    /// …or, not matching the (frontal) template, at least this similarity with the next frame
    /// with a face before or after it that is the session's face: a turned head matches its
    /// neighbours 100 ms away better than a frontal template, while another person's face
    /// matches neither (the chain is checked both ways until nothing changes)…
    pub min_chain_similarity: f32,
    /// …and at most this share of the frames with a face facing the camera (|yaw| under
    /// `turn_deg`) may be neither (a hand or a microphone over the face, motion blur); every move
    /// needs at least one matching frame.
    pub max_identity_outliers: f32,
    /// The passive score (median over the frontal frames) must reach this to be LIVE.
    pub liveness_threshold: f32,
    /// A passive median within this of the threshold is RETRY.
    pub retry_band: f32,
}

impl Default for SessionRules {
    fn default() -> Self {
        SessionRules {
            min_frames: 5,
            max_frames: 60,
            max_duration_ms: 15_000,
            turn_deg: 15.0,
            look_up_deg: 10.0,
            center_deg: 10.0,
            blink_closed_ratio: 0.5,
            blink_open_ratio: 0.85,
            min_identity_similarity: 0.35,
            min_chain_similarity: 0.5,
            max_identity_outliers: 0.2,
            liveness_threshold: 0.5,
            retry_band: 0.1,
        }
    }
}

/// What the pipeline measured on one frame of an attempt.
#[derive(Debug, Clone, Serialize)]
pub struct FrameObservation {
    /// Position in the attempt (0-based, capture order as sent).
    pub index: usize,
    /// Capture time from the client, milliseconds.
    pub timestamp_ms: u64,
    /// Faces that count (the gate's multiple-faces rule).
    pub faces: usize,
    /// Head pose from the face mesh, degrees (None without a face or a mesh).
    pub yaw_deg: Option<f32>,
    pub pitch_deg: Option<f32>,
    pub roll_deg: Option<f32>,
    /// Openness of the less open eye (iris model).
    pub eyes_open: Option<f32>,
    /// Calibrated passive liveness score of the largest face.
    pub liveness: Option<f32>,
    /// Sharpness of the face (the gate's measure), for choosing the reference frame.
    pub sharpness: Option<f32>,
    /// The gate's failing reasons on this frame.
    pub quality_reasons: Vec<ReasonCode>,
    /// Hash of the decoded pixels (identical frames have identical hashes).
    pub pixel_hash: u64,
    /// The face's embedding (never serialised).
    #[serde(skip)]
    pub embedding: Option<Embedding>,
}

/// Which frames satisfied one step.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StepEvidence {
    pub step: Step,
    pub done: bool,
    /// The frames of the run that satisfied it (indices into the attempt).
    pub frames: Vec<usize>,
    /// The measured value at its extreme (degrees for turns and LOOK_UP, yaw/pitch distance for
    /// CENTER, openness for BLINK).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f32>,
}

/// A failed rule.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SessionReason {
    pub code: SessionCode,
    pub message: String,
}

/// The session decision's reason codes (the quality gate's codes keep their own names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionCode {
    TooFewFrames,
    TooManyFrames,
    SessionTooLong,
    FramesOutOfOrder,
    FramesRepeated,
    NoFace,
    MultipleFaces,
    IdentityChanged,
    ChallengeNotMet,
    PassiveSpoof,
    UncertainLiveness,
    /// The reference frame failed the quality gate (its codes are in `quality_reasons`).
    QualityFailed,
}

impl SessionCode {
    /// Whether the code is evidence of an attack (status SPOOF) rather than a capture to retake.
    pub fn is_attack(self) -> bool {
        matches!(
            self,
            SessionCode::FramesOutOfOrder
                | SessionCode::FramesRepeated
                | SessionCode::IdentityChanged
                | SessionCode::PassiveSpoof
        )
    }
}

/// The outcome of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionStatus {
    Live,
    Spoof,
    Retry,
}

/// The decision with its evidence (the backend's view; a client sees only status and reasons).
#[derive(Debug, Clone, Serialize)]
pub struct SessionDecision {
    pub status: SessionStatus,
    pub reasons: Vec<SessionReason>,
    /// The gate's reasons on the reference frame.
    pub quality_reasons: Vec<ReasonCode>,
    pub steps: Vec<StepEvidence>,
    /// The frame kept as the session's reference (best frontal, sharpest), if any.
    pub reference_frame: Option<usize>,
    /// Up to 4 frames for audit: one per step done, then spread over the attempt.
    pub audit_frames: Vec<usize>,
    /// The frontal pitch the moves are measured from: the median pitch of the frames facing the
    /// camera (yaw is measured from 0: the mesh's yaw is relative to the camera's axis).
    pub baseline_pitch_deg: Option<f32>,
    /// Lowest embedding similarity of a frame to the identity template.
    pub min_identity_similarity: Option<f32>,
    /// Each frame's embedding similarity to the identity template (None: no face or no
    /// embedding), in frame order.
    pub identity_similarity: Vec<Option<f32>>,
    /// Whether each frame is the session's face: it matches the template, or it is chained to a
    /// frame that is (see [`SessionRules::min_chain_similarity`]); false without a face.
    pub identity_matched: Vec<bool>,
    /// Median passive score of the frontal frames, and how many there were.
    pub passive_median: Option<f32>,
    pub passive_frames: usize,
}

/// Extend `matched` along the frames: an unmatched frame with a face joins when its embedding
/// has at least `min` cosine similarity with the nearest frame with a face before or after it
/// that has joined; repeated until nothing changes (at most one pass per frame).
fn chain_identity(frames: &[FrameObservation], matched: &mut [bool], min: f32) {
    let faces: Vec<usize> = (0..frames.len())
        .filter(|&k| frames[k].faces >= 1 && frames[k].embedding.is_some())
        .collect();
    let close = |a: usize, b: usize| match (&frames[a].embedding, &frames[b].embedding) {
        (Some(x), Some(y)) => x.cosine(y) >= min,
        _ => false,
    };
    for _ in 0..faces.len() {
        let mut changed = false;
        for (j, &k) in faces.iter().enumerate() {
            if matched[k] {
                continue;
            }
            let before = j.checked_sub(1).map(|i| faces[i]);
            let after = faces.get(j + 1).copied();
            if [before, after]
                .into_iter()
                .flatten()
                .any(|o| matched[o] && close(k, o))
            {
                matched[k] = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
}

fn median(mut v: Vec<f32>) -> Option<f32> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f32::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// The state of one frame for the challenge.
struct Pose {
    yaw: f32,
    pitch: f32,
}

/// Run the challenge over the frames with a face: each step must be met after the previous one.
fn match_steps(
    steps: &[Step],
    frames: &[&FrameObservation],
    base_pitch: f32,
    open_level: Option<f32>,
    rules: &SessionRules,
) -> Vec<StepEvidence> {
    let pose = |f: &FrameObservation| -> Option<Pose> {
        Some(Pose {
            yaw: f.yaw_deg?,
            pitch: f.pitch_deg? - base_pitch,
        })
    };
    // Yaw sign: the face mesh's yaw is positive when the head turns to the person's right (the
    // nose towards the left of an unmirrored camera image; tests/sessions.rs holds it on the clip).
    let holds = |step: Step, f: &FrameObservation| -> Option<f32> {
        let p = pose(f)?;
        match step {
            Step::TurnLeft => (-p.yaw >= rules.turn_deg).then_some(p.yaw),
            Step::TurnRight => (p.yaw >= rules.turn_deg).then_some(p.yaw),
            Step::LookUp => (p.pitch >= rules.look_up_deg).then_some(p.pitch),
            Step::Center => {
                let d = p.yaw.abs().max(p.pitch.abs());
                (d <= rules.center_deg).then_some(d)
            }
            Step::Blink => None,
        }
    };
    let extreme = |step: Step, values: &mut dyn Iterator<Item = f32>| match step {
        Step::Center | Step::TurnLeft => values.fold(f32::INFINITY, f32::min),
        _ => values.fold(f32::NEG_INFINITY, f32::max),
    };
    let mut out: Vec<StepEvidence> = steps
        .iter()
        .map(|&step| StepEvidence {
            step,
            done: false,
            frames: Vec::new(),
            value: None,
        })
        .collect();
    // Where each step that was met starts (a position in `frames`).
    let mut starts: Vec<usize> = Vec::with_capacity(steps.len());
    let mut cursor = 0usize;
    for (k, &step) in steps.iter().enumerate() {
        let found = if step == Step::Blink {
            blink(frames, cursor, open_level, rules)
        } else {
            let start = frames[cursor.min(frames.len())..]
                .iter()
                .position(|f| holds(step, f).is_some())
                .map(|p| p + cursor);
            start.map(|s| {
                // The run of consecutive frames that hold the step, and its extreme value.
                let mut end = s;
                while end + 1 < frames.len() && holds(step, frames[end + 1]).is_some() {
                    end += 1;
                }
                let v = extreme(step, &mut (s..=end).filter_map(|i| holds(step, frames[i])));
                (s, end, v)
            })
        };
        let Some((s, e, v)) = found else { break };
        out[k] = StepEvidence {
            step,
            done: true,
            frames: (s..=e).map(|i| frames[i].index).collect(),
            value: Some(v),
        };
        starts.push(s);
        // The next step starts after this one's first satisfying frame for CENTER (the head may
        // stay centred into the next move) and after its run otherwise.
        cursor = if step == Step::Center { s + 1 } else { e + 1 };
    }
    // A head move's evidence is every frame that holds it until the next step begins, not only
    // its first run: a frame just under the threshold in the middle of a turn does not end it.
    for (k, &s) in starts.iter().enumerate() {
        let step = steps[k];
        if matches!(step, Step::Center | Step::Blink) {
            continue;
        }
        let limit = starts.get(k + 1).copied().unwrap_or(frames.len());
        let held: Vec<usize> = (s..limit.max(s + 1))
            .filter(|&i| holds(step, frames[i]).is_some())
            .collect();
        let v = extreme(
            step,
            &mut held.iter().filter_map(|&i| holds(step, frames[i])),
        );
        out[k].frames = held.iter().map(|&i| frames[i].index).collect();
        out[k].value = Some(v);
    }
    out
}

/// A blink from `cursor` on: the less open eye falls below `blink_closed_ratio` of the open level
/// and then recovers above `blink_open_ratio`. Returns (closed frame, recovered frame, lowest
/// openness).
fn blink(
    frames: &[&FrameObservation],
    cursor: usize,
    open_level: Option<f32>,
    rules: &SessionRules,
) -> Option<(usize, usize, f32)> {
    let level = open_level?;
    let closed = level * rules.blink_closed_ratio;
    let open = level * rules.blink_open_ratio;
    let mut low: Option<(usize, f32)> = None;
    for (i, f) in frames.iter().enumerate().skip(cursor) {
        let Some(e) = f.eyes_open else { continue };
        match low {
            None if e < closed => low = Some((i, e)),
            Some((s, v)) if e < v => low = Some((s, e)),
            Some((s, v)) if e >= open => return Some((s, i, v)),
            _ => {}
        }
    }
    None
}

/// Decide an attempt: `steps` as issued, `frames` in the order received.
pub fn decide(
    steps: &[Step],
    frames: &[FrameObservation],
    rules: &SessionRules,
) -> SessionDecision {
    let mut reasons = Vec::new();
    let mut reason = |code: SessionCode, message: String| {
        reasons.push(SessionReason { code, message });
    };
    let n = frames.len();
    if n < rules.min_frames {
        reason(
            SessionCode::TooFewFrames,
            format!(
                "{n} frames; at least {} are needed. Record while you follow the steps.",
                rules.min_frames
            ),
        );
    }
    if n > rules.max_frames {
        reason(
            SessionCode::TooManyFrames,
            format!("{n} frames; at most {} are accepted.", rules.max_frames),
        );
    }
    if frames
        .windows(2)
        .any(|w| w[1].timestamp_ms <= w[0].timestamp_ms)
    {
        reason(
            SessionCode::FramesOutOfOrder,
            "The frames' capture times do not increase.".into(),
        );
    }
    if let (Some(a), Some(b)) = (frames.first(), frames.last()) {
        let span = b.timestamp_ms.saturating_sub(a.timestamp_ms);
        if span > rules.max_duration_ms {
            reason(
                SessionCode::SessionTooLong,
                format!(
                    "The frames span {span} ms; at most {} ms.",
                    rules.max_duration_ms
                ),
            );
        }
    }
    let mut seen = std::collections::HashSet::new();
    if frames.iter().any(|f| !seen.insert(f.pixel_hash)) {
        reason(
            SessionCode::FramesRepeated,
            "Some frames are identical: send each captured frame once.".into(),
        );
    }
    let with_face: Vec<&FrameObservation> = frames.iter().filter(|f| f.faces >= 1).collect();
    let no_face = n - with_face.len();
    if no_face * 2 > n || with_face.is_empty() {
        reason(
            SessionCode::NoFace,
            format!("No face in {no_face} of {n} frames; keep your face in the oval."),
        );
    }
    if frames.iter().any(|f| f.faces > 1) {
        reason(
            SessionCode::MultipleFaces,
            "More than one face in a frame; only the person verifying should be in view.".into(),
        );
    }

    // The frontal pose: yaw 0 (the mesh's yaw is measured from the camera's axis, and a camera
    // above or below the face does not turn it); pitch, which a camera above or below does
    // offset, the median of the frames within `center_deg` of yaw 0.
    let base_pitch = median(
        with_face
            .iter()
            .filter(|f| f.yaw_deg.is_some_and(|y| y.abs() <= rules.center_deg))
            .filter_map(|f| f.pitch_deg)
            .collect(),
    );
    let base = base_pitch.unwrap_or(0.0);
    let frontal = |f: &&&FrameObservation| match (f.yaw_deg, f.pitch_deg) {
        (Some(y), Some(p)) => y.abs() <= rules.center_deg && (p - base).abs() <= rules.center_deg,
        _ => false,
    };
    // Reference frame: the sharpest frontal frame that passes the gate, else the sharpest frontal.
    let sharpness = |f: &&FrameObservation| f.sharpness.unwrap_or(0.0);
    let pick = |ok: &dyn Fn(&&FrameObservation) -> bool| {
        with_face
            .iter()
            .filter(frontal)
            .filter(|f| ok(f))
            .max_by(|a, b| sharpness(a).total_cmp(&sharpness(b)))
            .copied()
    };
    let reference = pick(&|f| f.quality_reasons.is_empty()).or_else(|| pick(&|_| true));

    // The challenge.
    let open_level = {
        let mut v: Vec<f32> = with_face.iter().filter_map(|f| f.eyes_open).collect();
        v.sort_by(f32::total_cmp);
        // The open-eye level: the upper quartile (blinks are short).
        (!v.is_empty()).then(|| v[(v.len() * 3) / 4])
    };
    let evidence = match_steps(steps, &with_face, base, open_level, rules);
    if let Some(miss) = evidence.iter().find(|e| !e.done) {
        reason(
            SessionCode::ChallengeNotMet,
            format!(
                "The step {} was not seen{}.",
                miss.step.as_str(),
                if evidence.iter().any(|e| e.done) {
                    " after the previous one"
                } else {
                    ""
                }
            ),
        );
    }

    // Identity: every frame with a face against the identity template — the mean embedding of
    // the reference frame and the frontal frames that match it (a robust reference: one frame's
    // embedding is noisy on a small or half-covered face; frames of another person do not join).
    let mut min_sim: Option<f32> = None;
    let mut similarity: Vec<Option<f32>> = vec![None; n];
    let template = reference.and_then(|r| r.embedding.as_ref()).map(|re| {
        let joined: Vec<&Embedding> = with_face
            .iter()
            .filter(frontal)
            .filter_map(|f| f.embedding.as_ref())
            .filter(|e| e.cosine(re) >= rules.min_identity_similarity)
            .chain(std::iter::once(re))
            .collect();
        Embedding::mean(&joined).unwrap_or_else(|| re.clone())
    });
    let mut matched: Vec<bool> = vec![false; n];
    match &template {
        Some(t) => {
            for (k, f) in frames.iter().enumerate().filter(|(_, f)| f.faces >= 1) {
                let s = f.embedding.as_ref().map_or(-1.0, |e| e.cosine(t));
                similarity[k] = Some(s);
                matched[k] = s >= rules.min_identity_similarity;
                min_sim = Some(min_sim.map_or(s, |m: f32| m.min(s)));
            }
            chain_identity(frames, &mut matched, rules.min_chain_similarity);
            // The share of outliers is taken over the frames the frontal template is a fair
            // reference for (|yaw| under a turn): a head turned 20–30° matches a frontal template
            // poorly (0.1–0.4 with MobileFaceNet on the clip) even when it is the same person; those
            // frames count through the chain and through the rule that every move needs a matching
            // frame, not as outliers.
            let in_range = |k: usize| {
                similarity[k].is_some()
                    && frames[k]
                        .yaw_deg
                        .is_none_or(|y: f32| y.abs() < rules.turn_deg)
            };
            let scored = (0..n).filter(|&k| in_range(k)).count();
            let low = (0..n).filter(|&k| in_range(k) && !matched[k]).count();
            let share = low as f32 / scored.max(1) as f32;
            // Each move must be performed by the session's face: some frame of its run matches.
            let unmatched = evidence.iter().find(|e| {
                e.done
                    && e.step != Step::Center
                    && e.frames.iter().all(|&i| {
                        frames
                            .iter()
                            .position(|f| f.index == i)
                            .is_none_or(|k| !matched[k])
                    })
            });
            if share > rules.max_identity_outliers {
                reason(
                    SessionCode::IdentityChanged,
                    format!(
                        "The face changes between frames: {low} of {scored} frames facing the camera are not the same face (similarity under {:.2} to the session's face and under {:.2} to their neighbours).",
                        rules.min_identity_similarity,
                        rules.min_chain_similarity
                    ),
                );
            } else if let Some(e) = unmatched {
                reason(
                    SessionCode::IdentityChanged,
                    format!(
                        "The step {} was performed by a face that is not the session's.",
                        e.step.as_str()
                    ),
                );
            }
        }
        None if !with_face.is_empty() => reason(
            SessionCode::UncertainLiveness,
            "No face embedding: identity across frames cannot be checked.".into(),
        ),
        None => {}
    }

    // Passive liveness on the frontal frames.
    let passive: Vec<f32> = with_face
        .iter()
        .filter(frontal)
        .filter_map(|f| f.liveness)
        .collect();
    let passive_frames = passive.len();
    let passive_median = median(passive);
    match passive_median {
        Some(m) if m < rules.liveness_threshold - rules.retry_band => reason(
            SessionCode::PassiveSpoof,
            format!(
                "The frontal frames look like a presentation attack (median score {m:.2}, threshold {:.2}).",
                rules.liveness_threshold
            ),
        ),
        Some(m) if (m - rules.liveness_threshold).abs() < rules.retry_band => reason(
            SessionCode::UncertainLiveness,
            format!(
                "The frontal frames' median score {m:.2} is within {:.2} of the threshold {:.2}.",
                rules.retry_band, rules.liveness_threshold
            ),
        ),
        Some(_) => {}
        None => {
            if !with_face.is_empty() {
                reason(
                    SessionCode::UncertainLiveness,
                    "No frontal frame with a liveness score.".into(),
                );
            }
        }
    }

    let quality_reasons = reference
        .map(|r| r.quality_reasons.clone())
        .unwrap_or_default();
    if !quality_reasons.is_empty() {
        reason(
            SessionCode::QualityFailed,
            format!(
                "The best frontal frame fails the quality gate: {}.",
                quality_reasons
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }

    let status = if reasons.iter().any(|r| r.code.is_attack()) {
        SessionStatus::Spoof
    } else if reasons.is_empty() {
        SessionStatus::Live
    } else {
        SessionStatus::Retry
    };
    // Audit frames: the first frame of each step done, then the reference; at most 4, unique.
    let mut audit: Vec<usize> = Vec::new();
    for i in evidence
        .iter()
        .filter(|e| e.step != Step::Center)
        .filter_map(|e| e.frames.first().copied())
        .chain(reference.map(|r| r.index))
        .chain(frames.first().map(|f| f.index))
        .chain(frames.last().map(|f| f.index))
    {
        if audit.len() < 4 && !audit.contains(&i) {
            audit.push(i);
        }
    }
    SessionDecision {
        status,
        reasons,
        quality_reasons,
        steps: evidence,
        reference_frame: reference.map(|r| r.index),
        audit_frames: audit,
        baseline_pitch_deg: base_pitch,
        min_identity_similarity: min_sim,
        identity_similarity: similarity,
        identity_matched: matched,
        passive_median,
        passive_frames,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(i: usize, yaw: f32, pitch: f32, eyes: f32) -> FrameObservation {
        FrameObservation {
            index: i,
            timestamp_ms: 100 * i as u64,
            faces: 1,
            yaw_deg: Some(yaw),
            pitch_deg: Some(pitch),
            roll_deg: Some(0.0),
            eyes_open: Some(eyes),
            liveness: Some(0.9),
            sharpness: Some(100.0),
            quality_reasons: Vec::new(),
            pixel_hash: i as u64,
            embedding: Embedding::from_raw(vec![1.0, 0.0]),
        }
    }

    /// Frames from a list of (yaw, pitch, eyes open).
    fn frames(poses: &[(f32, f32, f32)]) -> Vec<FrameObservation> {
        poses
            .iter()
            .enumerate()
            .map(|(i, &(y, p, e))| frame(i, y, p, e))
            .collect()
    }

    fn codes(d: &SessionDecision) -> Vec<SessionCode> {
        d.reasons.iter().map(|r| r.code).collect()
    }

    const C: (f32, f32, f32) = (0.0, 0.0, 0.3);

    #[test]
    fn a_performed_challenge_is_live() {
        // centre, turn right (positive yaw: the person's right), centre, blink, centre.
        let f = frames(&[
            C,
            C,
            (20.0, 0.0, 0.3),
            (25.0, 0.0, 0.3),
            C,
            C,
            (0.0, 0.0, 0.05),
            C,
            C,
        ]);
        let steps = [Step::TurnRight, Step::Center, Step::Blink, Step::Center];
        let d = decide(&steps, &f, &SessionRules::default());
        assert_eq!(d.status, SessionStatus::Live, "{:?}", d.reasons);
        assert_eq!(d.steps[0].frames, vec![2, 3]);
        assert_eq!(d.steps[0].value, Some(25.0));
        assert_eq!(d.steps[2].frames, vec![6, 7]);
        assert!(d.steps.iter().all(|s| s.done));
        // The sharpest frontal frame that passes the gate (all alike here: the last).
        assert_eq!(d.reference_frame, Some(8));
    }

    #[test]
    fn a_dip_inside_a_turn_does_not_end_its_evidence() {
        // A right turn with one frame just under the threshold in the middle; the turn's first
        // frame is not the session's face (a hand in front of it), a later one is.
        let mut f = frames(&[
            C,
            (20.0, 0.0, 0.3),
            (12.0, 0.0, 0.3),
            (25.0, 0.0, 0.3),
            C,
            C,
        ]);
        f[1].embedding = Embedding::from_raw(vec![0.0, 1.0]);
        let d = decide(
            &[Step::TurnRight, Step::Center],
            &f,
            &SessionRules::default(),
        );
        assert_eq!(d.steps[0].frames, vec![1, 3]);
        assert_eq!(d.steps[0].value, Some(25.0));
        assert_eq!(d.status, SessionStatus::Live, "{:?}", d.reasons);
        // Only the non-matching frame turns: the move was not made by the session's face.
        f[3] = frame(3, 0.0, 0.0, 0.3);
        let d = decide(
            &[Step::TurnRight, Step::Center],
            &f,
            &SessionRules::default(),
        );
        assert_eq!(codes(&d), vec![SessionCode::IdentityChanged]);
    }

    #[test]
    fn moves_out_of_order_or_missing_fail_the_challenge() {
        let f = frames(&[C, C, (-20.0, 0.0, 0.3), C, C, C]);
        // Asked right, performed left (negative yaw).
        let d = decide(
            &[Step::TurnRight, Step::Center],
            &f,
            &SessionRules::default(),
        );
        assert_eq!(codes(&d), vec![SessionCode::ChallengeNotMet]);
        assert_eq!(d.status, SessionStatus::Retry);
        // Asked left then up: the left turn is there, the look up is not.
        let d = decide(
            &[Step::TurnLeft, Step::Center, Step::LookUp, Step::Center],
            &f,
            &SessionRules::default(),
        );
        assert_eq!(codes(&d), vec![SessionCode::ChallengeNotMet]);
        assert!(d.steps[0].done && d.steps[1].done && !d.steps[2].done);
        // A still face (no pose change at all): nothing but CENTER is ever met.
        let still = frames(&[C; 8]);
        let d = decide(
            &[Step::Blink, Step::Center],
            &still,
            &SessionRules::default(),
        );
        assert_eq!(codes(&d), vec![SessionCode::ChallengeNotMet]);
    }

    #[test]
    fn a_constant_pose_offset_is_the_frontal_pose() {
        // A camera below the face: every frame pitched 15°; looking up lifts it to 30°.
        let f = frames(&[
            (0.0, 15.0, 0.3),
            (0.0, 15.0, 0.3),
            (0.0, 28.0, 0.3),
            (0.0, 15.0, 0.3),
            (0.0, 15.0, 0.3),
        ]);
        let d = decide(&[Step::LookUp, Step::Center], &f, &SessionRules::default());
        assert_eq!(d.status, SessionStatus::Live, "{:?}", d.reasons);
        assert_eq!(d.baseline_pitch_deg, Some(15.0));
    }

    #[test]
    fn a_turned_head_joins_through_its_neighbours_and_another_face_does_not() {
        let at = |deg: f32| {
            let r = deg.to_radians();
            Embedding::from_raw(vec![r.cos(), r.sin()])
        };
        // A right turn (yaw 20–26°) whose embeddings drift 50–75° from the frontal template:
        // three of the seven frames are under 0.35 to it (cos 70° = 0.34), which is more than
        // 20 % of outliers without the chain; each is within 20° (cos ≥ 0.94) of a neighbour.
        let mut f = frames(&[
            C,
            C,
            (20.0, 0.0, 0.3),
            (24.0, 0.0, 0.3),
            (26.0, 0.0, 0.3),
            (22.0, 0.0, 0.3),
            C,
            C,
        ]);
        for (k, deg) in [(2, 55.0), (3, 70.0), (4, 75.0), (5, 72.0)] {
            f[k].embedding = at(deg);
        }
        let rules = SessionRules::default();
        let d = decide(&[Step::TurnRight, Step::Center], &f, &rules);
        assert_eq!(
            (d.status, codes(&d)),
            (SessionStatus::Live, vec![]),
            "{:?}",
            d.identity_similarity
        );
        assert!(
            d.identity_matched.iter().all(|m| *m),
            "{:?}",
            d.identity_matched
        );
        assert!(d.identity_similarity[3].is_some_and(|s| s < 0.35));
        // Without the chain (an impossible threshold) the turned frames stay unmatched, but they
        // are not outliers: the template is frontal; the turn still has a matching frame (55°).
        let strict = SessionRules {
            min_chain_similarity: 1.1,
            ..SessionRules::default()
        };
        let d = decide(&[Step::TurnRight, Step::Center], &f, &strict);
        assert_eq!(codes(&d), vec![], "{:?} {:?}", d.reasons, d.steps);
        assert_eq!(
            d.identity_matched,
            [true, true, true, false, false, false, true, true]
        );
        // The same drift on frames facing the camera is IDENTITY_CHANGED (3 of 6 frontal frames).
        let mut h = frames(&[C, C, C, C, (20.0, 0.0, 0.3), C, C]);
        for (k, deg) in [(1, 70.0), (2, 75.0), (3, 72.0)] {
            h[k].embedding = at(deg);
        }
        let d = decide(&[Step::TurnRight, Step::Center], &h, &strict);
        assert!(
            codes(&d).contains(&SessionCode::IdentityChanged),
            "{:?}",
            codes(&d)
        );
        // Another person in every other frame matches neither the template nor a neighbour.
        let mut g = frames(&[
            C,
            C,
            (20.0, 0.0, 0.3),
            (24.0, 0.0, 0.3),
            (26.0, 0.0, 0.3),
            (22.0, 0.0, 0.3),
            C,
            C,
        ]);
        for k in [1, 3, 5] {
            g[k].embedding = at(90.0);
        }
        let d = decide(&[Step::TurnRight, Step::Center], &g, &rules);
        assert!(
            codes(&d).contains(&SessionCode::IdentityChanged),
            "{:?}",
            codes(&d)
        );
        assert_eq!(
            d.identity_matched,
            [true, false, true, false, true, false, true, true]
        );
    }

    #[test]
    fn temporal_sanity_and_identity() {
        let mut f = frames(&[C, C, (20.0, 0.0, 0.3), C, C]);
        f[3].timestamp_ms = f[1].timestamp_ms;
        f[4].pixel_hash = f[0].pixel_hash;
        f[2].embedding = Embedding::from_raw(vec![0.0, 1.0]);
        f[1].embedding = Embedding::from_raw(vec![0.0, 1.0]);
        let d = decide(
            &[Step::TurnLeft, Step::Center],
            &f,
            &SessionRules::default(),
        );
        let c = codes(&d);
        for want in [
            SessionCode::FramesOutOfOrder,
            SessionCode::FramesRepeated,
            SessionCode::IdentityChanged,
        ] {
            assert!(c.contains(&want), "{c:?}");
        }
        assert_eq!(d.status, SessionStatus::Spoof);
        assert_eq!(d.min_identity_similarity, Some(0.0));
        let d = decide(&[Step::Center], &f[..2], &SessionRules::default());
        assert!(codes(&d).contains(&SessionCode::TooFewFrames));
        let mut long = frames(&[C; 6]);
        long[5].timestamp_ms = 20_000;
        let d = decide(&[Step::Center], &long, &SessionRules::default());
        assert_eq!(codes(&d), vec![SessionCode::SessionTooLong]);
        let mut two = frames(&[C; 6]);
        two[1].faces = 2;
        assert_eq!(
            codes(&decide(&[Step::Center], &two, &SessionRules::default())),
            vec![SessionCode::MultipleFaces]
        );
    }

    #[test]
    fn passive_scores_decide_between_live_spoof_and_retry() {
        let mut f = frames(&[C; 6]);
        for x in &mut f {
            x.liveness = Some(0.1);
        }
        let d = decide(&[Step::Center], &f, &SessionRules::default());
        assert_eq!(codes(&d), vec![SessionCode::PassiveSpoof]);
        assert_eq!(d.status, SessionStatus::Spoof);
        for x in &mut f {
            x.liveness = Some(0.55);
        }
        let d = decide(&[Step::Center], &f, &SessionRules::default());
        assert_eq!(codes(&d), vec![SessionCode::UncertainLiveness]);
        assert_eq!(d.status, SessionStatus::Retry);
        assert_eq!(d.passive_frames, 6);
    }

    #[test]
    fn challenges_are_random_moves_with_center_between() {
        let mut seen = std::collections::HashSet::new();
        for seed in 0..200u64 {
            let s = draw_steps(seed);
            assert!(s.len() == 4 || s.len() == 6, "{s:?}");
            for (i, st) in s.iter().enumerate() {
                assert_eq!(*st == Step::Center, i % 2 == 1, "{s:?}");
            }
            let moves: std::collections::HashSet<_> = s.iter().step_by(2).collect();
            assert_eq!(moves.len(), s.len() / 2, "distinct moves: {s:?}");
            seen.insert(s);
        }
        assert!(seen.len() > 20, "only {} distinct challenges", seen.len());
        assert_eq!(
            parse_steps("turn_left, CENTER,Blink"),
            Ok(vec![Step::TurnLeft, Step::Center, Step::Blink])
        );
        assert!(parse_steps("JUMP").is_err());
    }
}
