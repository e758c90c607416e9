//! The quality gate against labels by eye: which captures are acceptable for an eKYC selfie, and
//! for the others the one main reason a reviewer would give (`testdata/labels/*.csv`).
//!
//! Pure: the caller runs the gate on each labelled image and hands over the reason codes it
//! gave; [`GateReport`] counts how many acceptable captures pass (with a Wilson 95 % interval),
//! and for each labelled reason how many captures were rejected, and how many with that reason.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::report::md_escape;
use crate::stats::{Rate, RateSummary};
use crate::EvalError;

/// One labelled capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Label {
    pub file: String,
    pub acceptable: bool,
    /// The main reason when not acceptable (a reason code such as `HEAD_YAW`).
    pub reason: Option<String>,
    pub note: String,
}

/// Parse a labels CSV: `#` comment lines, a `file,acceptable,reason,note` header, then one line
/// per image (`yes`/`no`; the note is the rest of the line).
pub fn parse_labels(text: &str) -> Result<Vec<Label>, EvalError> {
    let mut out = Vec::new();
    let mut header = false;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if !header {
            if line.trim() != "file,acceptable,reason,note" {
                return Err(EvalError::Labels(format!(
                    "line {}: expected the header file,acceptable,reason,note",
                    i + 1
                )));
            }
            header = true;
            continue;
        }
        let mut f = line.splitn(4, ',');
        let (file, acceptable, reason, note) = (
            f.next().unwrap_or("").trim(),
            f.next().unwrap_or("").trim(),
            f.next().unwrap_or("").trim(),
            f.next().unwrap_or("").trim(),
        );
        let acceptable = match acceptable {
            "yes" => true,
            "no" => false,
            other => {
                return Err(EvalError::Labels(format!(
                    "line {}: acceptable must be yes or no, not {other:?}",
                    i + 1
                )))
            }
        };
        if file.is_empty() || (!acceptable && reason.is_empty()) {
            return Err(EvalError::Labels(format!(
                "line {}: a file name, and a reason when not acceptable",
                i + 1
            )));
        }
        out.push(Label {
            file: file.to_string(),
            acceptable,
            reason: (!reason.is_empty()).then(|| reason.to_string()),
            note: note.to_string(),
        });
    }
    if !header {
        return Err(EvalError::Labels("no header line".into()));
    }
    Ok(out)
}

/// What the gate said about one labelled capture: its reason codes (empty = passed), or the
/// error that stopped it (`Err(code)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub label: Label,
    pub got: Result<Vec<String>, String>,
}

impl Outcome {
    /// Passed the gate (no reason, no error).
    pub fn passed(&self) -> bool {
        matches!(&self.got, Ok(r) if r.is_empty())
    }

    /// The gate's first reason, `PASS`, or `ERROR:<code>`.
    pub fn first(&self) -> String {
        match &self.got {
            Ok(r) => r.first().cloned().unwrap_or_else(|| "PASS".into()),
            Err(code) => format!("ERROR:{code}"),
        }
    }

    /// Agrees with the label: an acceptable capture passed, or a rejected one names the
    /// labelled reason among its reasons.
    pub fn agrees(&self) -> bool {
        match (&self.label.reason, &self.got) {
            (None, _) => self.passed(),
            (Some(want), Ok(r)) => r.iter().any(|c| c == want),
            (Some(want), Err(code)) => code == want,
        }
    }
}

/// Counts for one labelled reason.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReasonRow {
    pub reason: String,
    pub labelled: usize,
    /// Rejected by the gate (any reason or an error).
    pub rejected: usize,
    /// Rejected and the labelled reason among the gate's reasons.
    pub right_reason: usize,
    /// What the gate said first, with counts.
    pub got: BTreeMap<String, usize>,
}

/// The gate against the labels.
#[derive(Debug, Clone, Serialize)]
pub struct GateReport {
    pub images: usize,
    /// Acceptable captures that passed the gate (with a Wilson 95 % interval).
    pub acceptable_pass: RateSummary,
    /// Why acceptable captures were rejected (the gate's first reason), with counts.
    pub acceptable_rejected_by: BTreeMap<String, usize>,
    pub reasons: Vec<ReasonRow>,
    /// Every capture whose outcome disagrees with its label.
    pub disagreements: Vec<Outcome>,
}

impl GateReport {
    pub fn new(outcomes: &[Outcome]) -> GateReport {
        let acceptable: Vec<&Outcome> = outcomes.iter().filter(|o| o.label.acceptable).collect();
        let passed = acceptable.iter().filter(|o| o.passed()).count();
        let mut acceptable_rejected_by = BTreeMap::new();
        for o in acceptable.iter().filter(|o| !o.passed()) {
            *acceptable_rejected_by.entry(o.first()).or_insert(0) += 1;
        }
        let mut rows: BTreeMap<String, ReasonRow> = BTreeMap::new();
        for o in outcomes {
            let Some(reason) = &o.label.reason else {
                continue;
            };
            let row = rows.entry(reason.clone()).or_insert_with(|| ReasonRow {
                reason: reason.clone(),
                labelled: 0,
                rejected: 0,
                right_reason: 0,
                got: BTreeMap::new(),
            });
            row.labelled += 1;
            row.rejected += usize::from(!o.passed());
            row.right_reason += usize::from(o.agrees());
            *row.got.entry(o.first()).or_insert(0) += 1;
        }
        GateReport {
            images: outcomes.len(),
            // Rate counts errors: here the "errors" are the passes.
            acceptable_pass: Rate::new(passed, acceptable.len()).summary(),
            acceptable_rejected_by,
            reasons: rows.into_values().collect(),
            disagreements: outcomes.iter().filter(|o| !o.agrees()).cloned().collect(),
        }
    }

    /// The report as Markdown.
    pub fn to_markdown(&self, title: &str) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Quality gate vs labels: {}\n", md_escape(title));
        let p = &self.acceptable_pass;
        let ci = p
            .wilson95
            .as_ref()
            .map(|c| format!(" [{:.1} %, {:.1} %]", c.lower * 100.0, c.upper * 100.0))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "{} images. Acceptable captures passing the gate: **{}/{}** = {}{ci} (Wilson 95 %).\n",
            self.images,
            p.errors,
            p.total,
            p.value
                .map(|v| format!("{:.1} %", v * 100.0))
                .unwrap_or_else(|| "n/a".into()),
        );
        if !self.acceptable_rejected_by.is_empty() {
            let list: Vec<String> = self
                .acceptable_rejected_by
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let _ = writeln!(
                s,
                "Acceptable captures rejected, by the gate's first reason: {}.\n",
                list.join(", ")
            );
        }
        let _ = writeln!(
            s,
            "| labelled reason | captures | rejected | with that reason | the gate's first reason |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---|");
        for r in &self.reasons {
            let got: Vec<String> = r.got.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                md_escape(&r.reason),
                r.labelled,
                r.rejected,
                r.right_reason,
                md_escape(&got.join(", "))
            );
        }
        if !self.disagreements.is_empty() {
            let _ = writeln!(s, "\n## Disagreements\n");
            let _ = writeln!(s, "| file | label | the gate said | note |");
            let _ = writeln!(s, "|---|---|---|---|");
            for o in &self.disagreements {
                let said = match &o.got {
                    Ok(r) if r.is_empty() => "PASS".to_string(),
                    Ok(r) => r.join(", "),
                    Err(c) => format!("ERROR:{c}"),
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} |",
                    md_escape(&o.label.file),
                    o.label.reason.as_deref().unwrap_or("acceptable"),
                    md_escape(&said),
                    md_escape(&o.label.note)
                );
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "# comment\nfile,acceptable,reason,note\na.jpg,yes,,frontal\nb.jpg,no,HEAD_YAW,turned; far\nc.jpg,no,EYES_CLOSED,blink, with a comma\nd.jpg,yes,,dim\n";

    fn outcome(l: &Label, got: &[&str]) -> Outcome {
        Outcome {
            label: l.clone(),
            got: Ok(got.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn labels_parse_with_comments_and_commas_in_notes() {
        let l = parse_labels(CSV).expect("parse");
        assert_eq!(l.len(), 4);
        assert!(l[0].acceptable && l[0].reason.is_none());
        assert_eq!(l[1].reason.as_deref(), Some("HEAD_YAW"));
        assert_eq!(l[2].note, "blink, with a comma");
        assert!(parse_labels("file,acceptable,reason,note\na.jpg,maybe,,x\n").is_err());
        assert!(parse_labels("file,acceptable,reason,note\na.jpg,no,,x\n").is_err());
        assert!(parse_labels("a.jpg,yes,,x\n").is_err());
    }

    #[test]
    fn counts_passes_rejections_and_right_reasons() {
        let l = parse_labels(CSV).expect("parse");
        let outcomes = vec![
            outcome(&l[0], &[]),
            outcome(&l[1], &["FACE_TOO_SMALL", "HEAD_YAW"]),
            outcome(&l[2], &[]),
            outcome(&l[3], &["TOO_DARK"]),
        ];
        let r = GateReport::new(&outcomes);
        assert_eq!((r.acceptable_pass.errors, r.acceptable_pass.total), (1, 2));
        assert_eq!(r.acceptable_rejected_by.get("TOO_DARK"), Some(&1));
        let yaw = r
            .reasons
            .iter()
            .find(|x| x.reason == "HEAD_YAW")
            .expect("row");
        assert_eq!((yaw.labelled, yaw.rejected, yaw.right_reason), (1, 1, 1));
        assert_eq!(yaw.got.get("FACE_TOO_SMALL"), Some(&1));
        let eyes = r
            .reasons
            .iter()
            .find(|x| x.reason == "EYES_CLOSED")
            .expect("row");
        assert_eq!((eyes.rejected, eyes.right_reason), (0, 0));
        // Disagreements: the closed eyes that passed and the dim capture rejected.
        let files: Vec<&str> = r
            .disagreements
            .iter()
            .map(|o| o.label.file.as_str())
            .collect();
        assert_eq!(files, ["c.jpg", "d.jpg"]);
        let md = r.to_markdown("t");
        assert!(md.contains("**1/2** = 50.0 %"), "{md}");
        // An error is a rejection, never a pass.
        let e = Outcome {
            label: l[0].clone(),
            got: Err("TRUNCATED_IMAGE".into()),
        };
        assert!(!e.passed() && !e.agrees() && e.first() == "ERROR:TRUNCATED_IMAGE");
    }
}
