//! The S3 upload trigger: `ObjectCreated` under the uploads prefix → verdict JSON under the results
//! prefix (`<results>/<key without the uploads prefix>.json`).
//!
//! Idempotent under at-least-once delivery: a result records the source object's ETag (and version);
//! an event for an object whose result already carries that ETag is skipped, and results are written
//! with a conditional put (`If-None-Match: *`, or `If-Match` on the result being replaced), so two
//! concurrent deliveries yield one result. Bad uploads (not an image, corrupt, too large) get an error
//! result and are not retried; infrastructure failures are returned as errors so Lambda retries and,
//! after the retries, sends the event to the on-failure destination.
//!
//! Face match by upload convention: `<uploads>/<case>/selfie.<ext>` and
//! `<uploads>/<case>/document.<ext>` → `<results>/<case>.json` with the match outcome (as `POST
//! /v1/match`, `require_live` on). The event of whichever arrives second finds its partner and
//! writes the result; the first one's event is skipped (WAITING_FOR_PAIR). The result records
//! both sources' ETags (`source-etag` = `<selfie etag>+<document etag>`), so duplicate deliveries
//! and the two events of one pair yield one result, and replacing either image re-runs the match.
//!
//! With metrics on ([`S3Config::metrics`]), every record also prints one CloudWatch EMF line to
//! stdout ([`ekyc_core::metrics`]: its status, reason codes and stage latencies; no image data).

use crate::{describe, http_status, S3Config};
use aws_lambda_events::event::s3::S3Event;
use aws_sdk_s3::primitives::ByteStream;
use ekyc_core::error::{DecodeError, Error};
use ekyc_core::metrics::{ColdStartFlag, ModelSource, Verification};
use ekyc_core::{CheckOptions, ModelInfo, Pipeline, Verdict};
use serde::Serialize;
use std::ops::ControlFlow::{self, Break, Continue};
use std::sync::Arc;
use std::time::Instant;

/// Metadata key on a result object holding the source object's ETag.
pub const SOURCE_ETAG_META: &str = "source-etag";

/// The trigger's shared state (built once per process).
pub struct Trigger {
    pub client: aws_sdk_s3::Client,
    pub pipeline: Arc<Pipeline>,
    pub config: S3Config,
}

/// What happened to one record.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A result was written.
    Written,
    /// A result for this object version already exists.
    Duplicate,
    /// The key is outside the uploads prefix (or inside the results prefix).
    OutsidePrefix,
    /// The object no longer exists (deleted or replaced before we got to it).
    Gone,
    /// A match case's selfie or document whose partner has not arrived yet.
    WaitingForPair,
}

impl Outcome {
    /// The outcome as a reason code (the metrics' reason of a skipped record).
    pub fn code(&self) -> &'static str {
        match self {
            Outcome::Written => "WRITTEN",
            Outcome::Duplicate => "DUPLICATE",
            Outcome::OutsidePrefix => "OUTSIDE_PREFIX",
            Outcome::Gone => "GONE",
            Outcome::WaitingForPair => "WAITING_FOR_PAIR",
        }
    }
}

/// A record that was dealt with: what happened, the result's key and the record's metrics.
struct Done {
    outcome: Outcome,
    result_key: Option<String>,
    metric: Verification,
}

impl Done {
    fn skipped(outcome: Outcome, result_key: Option<String>) -> Done {
        let metric = Verification::skipped(outcome.code());
        Done {
            outcome,
            result_key,
            metric,
        }
    }
}

/// The first record this process handles carries `cold_start: true` in its metrics line.
static COLD_START: ColdStartFlag = ColdStartFlag::new();

#[derive(Debug, Clone, Serialize)]
pub struct RecordReport {
    pub bucket: String,
    pub key: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_key: Option<String>,
}

/// Infrastructure failures of a batch (the records that succeeded are not lost: their results are
/// written, and a retry skips them as duplicates).
#[derive(Debug, thiserror::Error)]
#[error("{} of {total} S3 records failed: {}", failures.len(), failures.join("; "))]
pub struct TriggerError {
    pub total: usize,
    pub failures: Vec<String>,
}

/// Where the upload came from.
#[derive(Debug, Clone, Serialize)]
pub struct Source {
    pub bucket: String,
    pub key: String,
    pub etag: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    pub size: i64,
}

/// The result document written to S3.
#[derive(Debug, Serialize)]
pub struct ResultDoc {
    pub source: Source,
    /// The verdict status, or "ERROR" when the upload could not be verified.
    pub status: String,
    pub verdict: Option<Verdict>,
    pub error: Option<ResultError>,
    pub models: Vec<ModelInfo>,
    pub processed_at: String,
    pub request_id: String,
    pub service_version: &'static str,
}

/// The result document of a match case (`<results>/<case>.json`).
#[derive(Debug, Serialize)]
pub struct MatchResultDoc {
    pub case: String,
    pub selfie: Source,
    pub document: Source,
    /// "MATCH", "NO_MATCH", or "ERROR" when an image could not be read.
    pub status: String,
    pub outcome: Option<ekyc_core::face_match::MatchOutcome>,
    pub error: Option<ResultError>,
    pub processed_at: String,
    pub request_id: String,
    pub service_version: &'static str,
}

/// The roles of a match case's images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseRole {
    Selfie,
    Document,
}

/// `<case>/selfie.<ext>` or `<case>/document.<ext>` (the key below the uploads prefix; the
/// stem in any case, the extension one of jpg, jpeg, png, webp) → the case and the role.
pub fn match_case(rel: &str) -> Option<(&str, CaseRole)> {
    let (case, name) = rel.rsplit_once('/')?;
    if case.is_empty() {
        return None;
    }
    let (stem, ext) = name.rsplit_once('.')?;
    if !["jpg", "jpeg", "png", "webp"]
        .iter()
        .any(|e| ext.eq_ignore_ascii_case(e))
    {
        return None;
    }
    let role = if stem.eq_ignore_ascii_case("selfie") {
        CaseRole::Selfie
    } else if stem.eq_ignore_ascii_case("document") {
        CaseRole::Document
    } else {
        return None;
    };
    Some((case, role))
}

#[derive(Debug, Serialize)]
pub struct ResultError {
    pub code: String,
    pub message: String,
}

/// S3 event keys are URL-encoded with `+` for spaces.
pub fn decode_key(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|c| c.into_owned())
        .unwrap_or(spaced)
}

fn unquote(etag: &str) -> String {
    etag.trim_matches('"').to_string()
}

impl From<TriggerError> for lambda_runtime::Diagnostic {
    fn from(e: TriggerError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: "TriggerError".into(),
            error_message: e.to_string(),
        }
    }
}

impl Trigger {
    fn uploads_prefix(&self) -> &str {
        &self.config.uploads_prefix
    }
    fn results_prefix(&self) -> &str {
        &self.config.results_prefix
    }

    /// Process every record of the event. Returns per-record reports, or an error naming the records
    /// that hit infrastructure failures (after all records were attempted).
    pub async fn handle(
        &self,
        event: S3Event,
        request_id: &str,
    ) -> Result<Vec<RecordReport>, TriggerError> {
        let total = event.records.len();
        let mut reports = Vec::new();
        let mut failures = Vec::new();
        for rec in event.records {
            let bucket = rec.s3.bucket.name.clone().unwrap_or_default();
            let key = decode_key(rec.s3.object.key.as_deref().unwrap_or_default());
            let version = rec
                .s3
                .object
                .version_id
                .clone()
                .filter(|v| !v.is_empty() && v != "null");
            let started = Instant::now();
            let processed = self.process(&bucket, &key, version, request_id).await;
            let record_ms = started.elapsed().as_secs_f64() * 1e3;
            match processed {
                Ok(Done {
                    outcome,
                    result_key,
                    metric,
                }) => {
                    tracing::info!(request_id, bucket = %bucket, key = %key, outcome = ?outcome, result_key = ?result_key, "record processed");
                    self.emit_metrics(metric, record_ms);
                    reports.push(RecordReport {
                        bucket,
                        key,
                        outcome,
                        result_key,
                    });
                }
                Err(msg) => {
                    tracing::error!(request_id, bucket = %bucket, key = %key, error = %msg, "record failed; will be retried");
                    self.emit_metrics(Verification::failed(None), record_ms);
                    failures.push(format!("s3://{bucket}/{key}: {msg}"));
                }
            }
        }
        if failures.is_empty() {
            Ok(reports)
        } else {
            Err(TriggerError { total, failures })
        }
    }

    /// The record's EMF line on stdout, when metrics are on (one `println!`: one whole line).
    fn emit_metrics(&self, metric: Verification, record_ms: f64) {
        let metric = metric
            .with_request_ms(record_ms)
            .with_cold_start(COLD_START.take())
            .with_model_source(ModelSource::from_origin(self.pipeline.origin()));
        if let Some(line) = self.config.metrics.line(metric) {
            println!("{line}");
        }
    }

    /// One record. `Err` = infrastructure failure (retry); `Ok` = done (written or skipped).
    async fn process(
        &self,
        bucket: &str,
        key: &str,
        version: Option<String>,
        request_id: &str,
    ) -> Result<Done, String> {
        let Some(rel) = key.strip_prefix(self.uploads_prefix()) else {
            return Ok(Done::skipped(Outcome::OutsidePrefix, None));
        };
        if key.starts_with(self.results_prefix()) || rel.is_empty() || key.ends_with('/') {
            return Ok(Done::skipped(Outcome::OutsidePrefix, None));
        }
        if let Some((case, _)) = match_case(rel) {
            return self.process_match(bucket, case, request_id).await;
        }
        let result_key = format!("{}{rel}.json", self.results_prefix());

        // The source object as it is now.
        let source = match self.head_source(bucket, key, version.as_deref()).await? {
            Continue(s) => s,
            Break(o) => return Ok(Done::skipped(o, None)),
        };
        // An existing result for the same object version: done already.
        let previous = match self
            .previous_result(bucket, &result_key, &source.etag)
            .await?
        {
            Continue(p) => p,
            Break(()) => return Ok(Done::skipped(Outcome::Duplicate, Some(result_key))),
        };

        let limit = self.pipeline.config().limits.max_image_bytes;
        let outcome = if source.size > limit as i64 {
            Err(Error::Decode(DecodeError::TooManyBytes {
                size: usize::try_from(source.size).unwrap_or(usize::MAX),
                limit,
            }))
        } else {
            let bytes = match self.download(&source).await? {
                Continue(b) => b,
                Break(o) => return Ok(Done::skipped(o, None)),
            };
            let p = self.pipeline.clone();
            tokio::task::spawn_blocking(move || p.run(&bytes, CheckOptions::default()))
                .await
                .map_err(|e| format!("pipeline task failed: {e}"))?
        };
        let (status, verdict, error, metric) = match outcome {
            Ok(v) => {
                let metric = Verification::verdict(&v);
                (v.status.as_str().to_string(), Some(v), None, metric)
            }
            Err(Error::Decode(d)) => (
                "ERROR".to_string(),
                None,
                Some(ResultError {
                    code: d.code().to_string(),
                    message: d.to_string(),
                }),
                Verification::error(d.code()),
            ),
            // Model/config faults are ours, not the uploader's: retry.
            Err(other) => return Err(format!("pipeline: {other}")),
        };
        let doc = ResultDoc {
            source,
            status,
            verdict,
            error,
            models: self.pipeline.models().to_vec(),
            processed_at: now_rfc3339(),
            request_id: request_id.to_string(),
            service_version: env!("CARGO_PKG_VERSION"),
        };
        let (written, result_key) = self
            .write_result(bucket, &result_key, &doc, previous.as_deref())
            .await?;
        Ok(match written {
            Outcome::Written => Done {
                outcome: written,
                result_key,
                metric,
            },
            // Another delivery wrote the result first: this verification is not counted twice.
            Outcome::Duplicate
            | Outcome::OutsidePrefix
            | Outcome::Gone
            | Outcome::WaitingForPair => Done::skipped(written, result_key),
        })
    }

    /// A match case: both images present → the match result (idempotent on both ETags).
    async fn process_match(
        &self,
        bucket: &str,
        case: &str,
        request_id: &str,
    ) -> Result<Done, String> {
        let dir = format!("{}{case}/", self.uploads_prefix());
        let result_key = format!("{}{case}.json", self.results_prefix());
        // The newest object of each role in the case's folder.
        let listed = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(&dir)
            .max_keys(100)
            .send()
            .await
            .map_err(|e| format!("listing s3://{bucket}/{dir}: {}", describe(&e)))?;
        let mut newest: [Option<(String, i64)>; 2] = [None, None];
        for o in listed.contents() {
            let Some(key) = o.key() else { continue };
            let Some(rel) = key.strip_prefix(self.uploads_prefix()) else {
                continue;
            };
            let Some((c, r)) = match_case(rel) else {
                continue;
            };
            if c != case {
                continue;
            }
            let t = o.last_modified().map_or(0, |d| d.secs());
            let slot = &mut newest[usize::from(r == CaseRole::Document)];
            if slot.as_ref().is_none_or(|(_, old)| t > *old) {
                *slot = Some((key.to_string(), t));
            }
        }
        let [Some((selfie_key, _)), Some((document_key, _))] = newest else {
            return Ok(Done::skipped(Outcome::WaitingForPair, None));
        };
        let selfie = match self.head_source(bucket, &selfie_key, None).await? {
            Continue(s) => s,
            Break(o) => return Ok(Done::skipped(o, None)),
        };
        let document = match self.head_source(bucket, &document_key, None).await? {
            Continue(s) => s,
            Break(o) => return Ok(Done::skipped(o, None)),
        };
        let pair_etag = format!("{}+{}", selfie.etag, document.etag);
        let previous = match self
            .previous_result(bucket, &result_key, &pair_etag)
            .await?
        {
            Continue(p) => p,
            Break(()) => return Ok(Done::skipped(Outcome::Duplicate, Some(result_key))),
        };
        let limit = self.pipeline.config().limits.max_image_bytes;
        let too_big = [&selfie, &document]
            .into_iter()
            .find(|s| s.size > limit as i64)
            .map(|s| (s.key.clone(), s.size));
        let outcome = match too_big {
            Some((key, size)) => Err((
                key,
                Error::Decode(DecodeError::TooManyBytes {
                    size: usize::try_from(size).unwrap_or(usize::MAX),
                    limit,
                }),
            )),
            None => {
                let a = match self.download(&selfie).await? {
                    Continue(b) => b,
                    Break(o) => return Ok(Done::skipped(o, None)),
                };
                let b = match self.download(&document).await? {
                    Continue(b) => b,
                    Break(o) => return Ok(Done::skipped(o, None)),
                };
                let p = self.pipeline.clone();
                let opts = ekyc_core::face_match::MatchOptions::default();
                let (sk, dk) = (selfie.key.clone(), document.key.clone());
                tokio::task::spawn_blocking(move || p.match_images(&a, &b, opts))
                    .await
                    .map_err(|e| format!("pipeline task failed: {e}"))?
                    .map_err(|(side, e)| {
                        let key = match side {
                            ekyc_core::pipeline::MatchSide::Selfie => sk,
                            ekyc_core::pipeline::MatchSide::Document => dk,
                        };
                        (key, e)
                    })
            }
        };
        let (status, outcome, error, metric) = match outcome {
            Ok(o) => {
                let metric = o
                    .selfie
                    .as_ref()
                    .map_or(Verification::skipped("MATCH"), Verification::verdict);
                let status = if o.is_match { "MATCH" } else { "NO_MATCH" };
                (status.to_string(), Some(o), None, metric)
            }
            Err((key, Error::Decode(d))) => (
                "ERROR".to_string(),
                None,
                Some(ResultError {
                    code: d.code().to_string(),
                    message: format!("{key}: {d}"),
                }),
                Verification::error(d.code()),
            ),
            Err((_, other)) => return Err(format!("pipeline: {other}")),
        };
        let doc = MatchResultDoc {
            case: case.to_string(),
            selfie,
            document,
            status,
            outcome,
            error,
            processed_at: now_rfc3339(),
            request_id: request_id.to_string(),
            service_version: env!("CARGO_PKG_VERSION"),
        };
        let body =
            serde_json::to_vec_pretty(&doc).map_err(|e| format!("serialising result: {e}"))?;
        let (written, result_key) = self
            .put_result(
                bucket,
                &result_key,
                body,
                &pair_etag,
                None,
                previous.as_deref(),
            )
            .await?;
        Ok(match written {
            Outcome::Written => Done {
                outcome: written,
                result_key,
                metric,
            },
            other => Done::skipped(other, result_key),
        })
    }

    /// The result at `result_key`: `Break` when it was written for `source_etag` already (a
    /// duplicate delivery), else the ETag of the result it would replace (`None`: no result).
    async fn previous_result(
        &self,
        bucket: &str,
        result_key: &str,
        source_etag: &str,
    ) -> Result<ControlFlow<(), Option<String>>, String> {
        match self
            .client
            .head_object()
            .bucket(bucket)
            .key(result_key)
            .send()
            .await
        {
            Ok(h) => {
                let same = h
                    .metadata()
                    .and_then(|m| m.get(SOURCE_ETAG_META))
                    .is_some_and(|e| e == source_etag);
                Ok(if same {
                    Break(())
                } else {
                    Continue(h.e_tag().map(unquote))
                })
            }
            Err(e) if http_status(&e) == Some(404) => Ok(Continue(None)),
            Err(e) => Err(format!(
                "checking s3://{bucket}/{result_key}: {}",
                describe(&e)
            )),
        }
    }

    async fn head_source(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<ControlFlow<Outcome, Source>, String> {
        let mut req = self.client.head_object().bucket(bucket).key(key);
        if let Some(v) = version {
            req = req.version_id(v);
        }
        match req.send().await {
            Ok(h) => Ok(Continue(Source {
                bucket: bucket.to_string(),
                key: key.to_string(),
                etag: h.e_tag().map(unquote).unwrap_or_default(),
                version_id: version
                    .map(str::to_string)
                    .or_else(|| h.version_id().map(str::to_string)),
                size: h.content_length().unwrap_or(0),
            })),
            Err(e) if http_status(&e) == Some(404) => Ok(Break(Outcome::Gone)),
            Err(e) => Err(format!("reading s3://{bucket}/{key}: {}", describe(&e))),
        }
    }

    /// Download exactly the version we inspected (If-Match on its ETag).
    async fn download(&self, s: &Source) -> Result<ControlFlow<Outcome, Vec<u8>>, String> {
        let mut req = self.client.get_object().bucket(&s.bucket).key(&s.key);
        if let Some(v) = &s.version_id {
            req = req.version_id(v);
        } else if !s.etag.is_empty() {
            req = req.if_match(format!("\"{}\"", s.etag));
        }
        let out = match req.send().await {
            Ok(o) => o,
            // Replaced or deleted since the HEAD: the newer object's own event will handle it.
            Err(e) if matches!(http_status(&e), Some(404 | 412)) => {
                return Ok(Break(Outcome::Gone))
            }
            Err(e) => {
                return Err(format!(
                    "downloading s3://{}/{}: {}",
                    s.bucket,
                    s.key,
                    describe(&e)
                ))
            }
        };
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| format!("downloading s3://{}/{}: {e}", s.bucket, s.key))?;
        Ok(Continue(bytes.into_bytes().to_vec()))
    }

    async fn write_result(
        &self,
        bucket: &str,
        result_key: &str,
        doc: &ResultDoc,
        previous_etag: Option<&str>,
    ) -> Result<(Outcome, Option<String>), String> {
        let body =
            serde_json::to_vec_pretty(doc).map_err(|e| format!("serialising result: {e}"))?;
        self.put_result(
            bucket,
            result_key,
            body,
            &doc.source.etag,
            doc.source.version_id.as_deref(),
            previous_etag,
        )
        .await
    }

    /// Write a result conditionally: `If-None-Match: *` for a new one, `If-Match` on the one it
    /// replaces; losing the race is a duplicate, not an error.
    async fn put_result(
        &self,
        bucket: &str,
        result_key: &str,
        body: Vec<u8>,
        source_etag: &str,
        source_version: Option<&str>,
        previous_etag: Option<&str>,
    ) -> Result<(Outcome, Option<String>), String> {
        let put = |conditional: bool| {
            let mut req = self
                .client
                .put_object()
                .bucket(bucket)
                .key(result_key)
                .content_type("application/json")
                .metadata(SOURCE_ETAG_META, source_etag.to_string())
                .body(ByteStream::from(body.clone()));
            if let Some(v) = source_version {
                req = req.metadata("source-version-id", v.to_string());
            }
            if conditional {
                req = match previous_etag {
                    Some(prev) => req.if_match(format!("\"{prev}\"")),
                    None => req.if_none_match("*"),
                };
            }
            req.send()
        };
        match put(true).await {
            Ok(_) => Ok((Outcome::Written, Some(result_key.to_string()))),
            // Someone else wrote the result between our check and our write: one result, done.
            Err(e) if matches!(http_status(&e), Some(412 | 409)) => {
                Ok((Outcome::Duplicate, Some(result_key.to_string())))
            }
            // A server without conditional writes: fall back to a plain put (the ETag check above
            // still makes repeated deliveries skip).
            Err(e) if http_status(&e) == Some(501) => match put(false).await {
                Ok(_) => Ok((Outcome::Written, Some(result_key.to_string()))),
                Err(e) => Err(format!(
                    "writing s3://{bucket}/{result_key}: {}",
                    describe(&e)
                )),
            },
            Err(e) => Err(format!(
                "writing s3://{bucket}/{result_key}: {}",
                describe(&e)
            )),
        }
    }
}

fn now_rfc3339() -> String {
    aws_sdk_s3::primitives::DateTime::from(std::time::SystemTime::now())
        .fmt(aws_sdk_s3::primitives::DateTimeFormat::DateTime)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_codes_are_the_serialised_names_in_upper_case() {
        for o in [
            Outcome::Written,
            Outcome::Duplicate,
            Outcome::OutsidePrefix,
            Outcome::Gone,
            Outcome::WaitingForPair,
        ] {
            let name = serde_json::to_value(&o).expect("an outcome serialises");
            assert_eq!(
                name.as_str().map(str::to_uppercase).as_deref(),
                Some(o.code())
            );
        }
    }

    #[test]
    fn match_cases_are_named_by_their_files() {
        assert_eq!(
            match_case("case-1/selfie.jpg"),
            Some(("case-1", CaseRole::Selfie))
        );
        assert_eq!(
            match_case("a/b/Document.PNG"),
            Some(("a/b", CaseRole::Document))
        );
        assert_eq!(match_case("selfie.jpg"), None);
        assert_eq!(match_case("case/selfie.gif"), None);
        assert_eq!(match_case("case/selfie2.jpg"), None);
        assert_eq!(match_case("case/photo.jpg"), None);
        assert_eq!(match_case("/selfie.jpg"), None);
    }

    #[test]
    fn a_skipped_record_counts_as_skipped_with_its_outcome() {
        let d = Done::skipped(Outcome::Gone, None);
        assert_eq!(d.metric, Verification::skipped("GONE"));
        assert_eq!(d.outcome, Outcome::Gone);
    }
}
