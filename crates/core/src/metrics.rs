//! Metrics as CloudWatch embedded metric format (EMF) lines: one JSON object per line, which
//! CloudWatch Logs turns into metrics when the line reaches a Lambda function's log group.
//!
//! This is only a format (no AWS SDK, no I/O): the adapters build a [`Record`] (a verification or
//! a cold start) and print [`Record::emf_line`] to stdout. docs/observability.md lists the metrics.
//!
//! ```text
//! {"_aws":{"Timestamp":1795953600000,"CloudWatchMetrics":[{"Namespace":"ekyc-liveness",
//!   "Dimensions":[["FunctionName"],["FunctionName","Status"]],"Metrics":[{"Name":"Verifications","Unit":"Count"}]}, …]},
//!  "FunctionName":"ekyc-liveness-prod-TriggerFunction-…","Status":"QUALITY_FAILED","Verifications":1,
//!  "Reason_BLURRY":1,"PipelineLatency":14.2,…,"reasons":["BLURRY"],"cold_start":false,"model_source":"s3"}
//! ```
//!
//! A line holds the status, reason codes, timings and where the models came from: never image
//! bytes, face boxes, crops, scores per model or embeddings (a test checks the keys).

use crate::pipeline::{Status, Verdict};
use serde_json::{Map, Number, Value};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "ekyc-liveness";

/// Prefix of the per-reason count metrics (`Reason_BLURRY`, `Reason_NOT_AN_IMAGE`, …).
pub const REASON_PREFIX: &str = "Reason_";

/// At most this many reason metrics per line (EMF allows 100 metrics per directive).
const MAX_REASONS: usize = 32;

/// Whether and how metric lines are written (filled by the binaries' settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Write EMF lines (inside Lambda by default).
    pub enabled: bool,
    /// The `FunctionName` dimension: the Lambda function's name (AWS_LAMBDA_FUNCTION_NAME), so
    /// the metrics line up with AWS/Lambda's own.
    pub function_name: String,
    /// The CloudWatch namespace.
    pub namespace: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: false,
            function_name: String::new(),
            namespace: NAMESPACE.to_string(),
        }
    }
}

impl MetricsConfig {
    /// The record of `event` now, or `None` when metrics are off.
    pub fn record(&self, event: impl Into<Event>) -> Option<Record> {
        self.enabled.then(|| Record {
            namespace: self.namespace.clone(),
            function_name: self.function_name.clone(),
            timestamp_ms: now_ms(),
            event: event.into(),
        })
    }

    /// The EMF line of `event`, or `None` when metrics are off.
    pub fn line(&self, event: impl Into<Event>) -> Option<String> {
        self.record(event).map(|r| r.emf_line())
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// Where the models were loaded from (the `ModelSource` dimension of the cold-start metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelSource {
    S3,
    Dir,
    Embedded,
    Other,
}

impl ModelSource {
    /// From [`crate::Pipeline::origin`] (`s3://bucket/prefix`, `dir:models`, `embedded`).
    pub fn from_origin(origin: &str) -> ModelSource {
        if origin.starts_with("s3://") {
            ModelSource::S3
        } else if origin.starts_with("dir:") {
            ModelSource::Dir
        } else if origin == "embedded" {
            ModelSource::Embedded
        } else {
            ModelSource::Other
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ModelSource::S3 => "s3",
            ModelSource::Dir => "dir",
            ModelSource::Embedded => "embedded",
            ModelSource::Other => "other",
        }
    }
}

/// The `Status` dimension of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerificationStatus {
    /// A verdict: LIVE, SPOOF, QUALITY_FAILED or NO_FACE.
    Verdict(Status),
    /// The input was refused (not an image, too large, …); the error code is the reason.
    Error,
    /// Our failure (storage, models): the request is answered 5xx or the event retried.
    Failed,
    /// Nothing to verify (a repeated delivery, an object gone or outside the uploads prefix).
    Skipped,
}

impl VerificationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VerificationStatus::Verdict(s) => s.as_str(),
            VerificationStatus::Error => "ERROR",
            VerificationStatus::Failed => "FAILED",
            VerificationStatus::Skipped => "SKIPPED",
        }
    }
}

/// Milliseconds per stage; `None` = the stage did not run (no metric value, so averages are not
/// diluted by zeros).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Latencies {
    pub decode_ms: Option<f64>,
    pub detect_ms: Option<f64>,
    pub quality_ms: Option<f64>,
    pub liveness_ms: Option<f64>,
    /// decode → verdict.
    pub pipeline_ms: Option<f64>,
    /// The whole request or record, I/O included (e.g. the S3 download and the result upload).
    pub request_ms: Option<f64>,
}

impl Latencies {
    /// The verdict's stage timings; liveness only when it ran.
    pub fn from_verdict(v: &Verdict) -> Latencies {
        let t = &v.timings;
        Latencies {
            decode_ms: Some(t.decode_ms),
            detect_ms: Some(t.detect_ms),
            quality_ms: Some(t.quality_ms),
            liveness_ms: v.liveness_score.map(|_| t.liveness_ms),
            pipeline_ms: Some(t.total_ms),
            request_ms: None,
        }
    }

    fn named(&self) -> [(&'static str, Option<f64>); 6] {
        [
            ("DecodeLatency", self.decode_ms),
            ("DetectLatency", self.detect_ms),
            ("QualityLatency", self.quality_ms),
            ("LivenessLatency", self.liveness_ms),
            ("PipelineLatency", self.pipeline_ms),
            ("RequestLatency", self.request_ms),
        ]
    }
}

/// One verification (an HTTP request or an S3 object).
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    pub status: VerificationStatus,
    /// Quality reason codes (QUALITY_FAILED, NO_FACE) or the error code (ERROR), or why a record
    /// was skipped.
    pub reasons: Vec<String>,
    pub latencies: Latencies,
    /// The first verification of this process (it paid for the cold start).
    pub cold_start: bool,
    pub model_source: Option<ModelSource>,
}

impl Verification {
    fn new(status: VerificationStatus, reasons: Vec<String>, latencies: Latencies) -> Self {
        Verification {
            status,
            reasons,
            latencies,
            cold_start: false,
            model_source: None,
        }
    }

    /// A verdict: its status, its reason codes and its stage timings.
    pub fn verdict(v: &Verdict) -> Self {
        let reasons = v
            .reasons
            .iter()
            .map(|r| r.code.as_str().to_string())
            .collect();
        Self::new(
            VerificationStatus::Verdict(v.status),
            reasons,
            Latencies::from_verdict(v),
        )
    }

    /// Refused input, with its error code (e.g. `NOT_AN_IMAGE`).
    pub fn error(code: &str) -> Self {
        Self::new(
            VerificationStatus::Error,
            vec![code.to_string()],
            Latencies::default(),
        )
    }

    /// Our failure; `code` when there is a stable one (e.g. a model error's code).
    pub fn failed(code: Option<&str>) -> Self {
        Self::new(
            VerificationStatus::Failed,
            code.map(str::to_string).into_iter().collect(),
            Latencies::default(),
        )
    }

    /// Nothing verified, with why (e.g. `DUPLICATE`).
    pub fn skipped(reason: &str) -> Self {
        Self::new(
            VerificationStatus::Skipped,
            vec![reason.to_string()],
            Latencies::default(),
        )
    }

    /// With the whole request's or record's duration.
    pub fn with_request_ms(mut self, ms: f64) -> Self {
        self.latencies.request_ms = Some(ms);
        self
    }

    pub fn with_cold_start(mut self, cold_start: bool) -> Self {
        self.cold_start = cold_start;
        self
    }

    pub fn with_model_source(mut self, source: ModelSource) -> Self {
        self.model_source = Some(source);
        self
    }
}

/// A process start: the models loaded (or not) after `duration_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Init {
    /// Where the models came from (`None` when loading failed).
    pub model_source: Option<ModelSource>,
    pub duration_ms: f64,
    /// The error's stable code when the init failed (e.g. `MODEL_MISSING`).
    pub error_code: Option<String>,
}

impl Init {
    pub fn loaded(model_source: ModelSource, duration_ms: f64) -> Self {
        Init {
            model_source: Some(model_source),
            duration_ms,
            error_code: None,
        }
    }

    pub fn failed(error_code: &str, duration_ms: f64) -> Self {
        Init {
            model_source: None,
            duration_ms,
            error_code: Some(error_code.to_string()),
        }
    }
}

/// What a line reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Verification(Verification),
    Init(Init),
}

impl From<Verification> for Event {
    fn from(v: Verification) -> Self {
        Event::Verification(v)
    }
}

impl From<Init> for Event {
    fn from(i: Init) -> Self {
        Event::Init(i)
    }
}

/// One EMF record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub namespace: String,
    /// The `FunctionName` dimension.
    pub function_name: String,
    /// `_aws.Timestamp`: milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    pub event: Event,
}

/// EMF units used here.
#[derive(Debug, Clone, Copy)]
enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// Builds the object: values at the top level, one directive per set of dimension sets.
struct Builder {
    namespace: String,
    root: Map<String, Value>,
    directives: Vec<Value>,
}

impl Builder {
    fn new(namespace: &str) -> Self {
        Builder {
            namespace: namespace.to_string(),
            root: Map::new(),
            directives: Vec::new(),
        }
    }

    fn dimension(&mut self, key: &str, value: &str) {
        let value = if value.is_empty() { "unknown" } else { value };
        self.root.insert(key.into(), Value::String(value.into()));
    }

    fn property(&mut self, key: &str, value: Value) {
        self.root.insert(key.into(), value);
    }

    /// One directive: `metrics` under each dimension set. A non-finite value is left out (with
    /// its declaration); negative durations are clamped to 0.
    fn directive(&mut self, dimension_sets: &[&[&str]], metrics: &[(String, f64, Unit)]) {
        let mut declared = Vec::new();
        for (name, value, unit) in metrics {
            if !value.is_finite() {
                continue;
            }
            let v = match unit {
                Unit::Count => value.max(0.0),
                // Durations to the microsecond: shorter lines, no false precision.
                Unit::Milliseconds => (value.max(0.0) * 1e3).round() / 1e3,
            };
            // Whole counts as integers (1, not 1.0).
            let n = if matches!(unit, Unit::Count) && v.fract() == 0.0 && v < u64::MAX as f64 {
                Number::from(v as u64)
            } else {
                match Number::from_f64(v) {
                    Some(n) => n,
                    None => continue,
                }
            };
            self.root.insert(name.clone(), Value::Number(n));
            let mut m = Map::new();
            m.insert("Name".into(), Value::String(name.clone()));
            m.insert("Unit".into(), Value::String(unit.as_str().into()));
            declared.push(Value::Object(m));
        }
        if declared.is_empty() {
            return;
        }
        let dims = dimension_sets
            .iter()
            .map(|set| Value::Array(set.iter().map(|d| Value::String((*d).into())).collect()))
            .collect();
        let mut d = Map::new();
        d.insert("Namespace".into(), Value::String(self.namespace.clone()));
        d.insert("Dimensions".into(), Value::Array(dims));
        d.insert("Metrics".into(), Value::Array(declared));
        self.directives.push(Value::Object(d));
    }

    fn finish(mut self, timestamp_ms: u64) -> Value {
        let mut aws = Map::new();
        aws.insert("Timestamp".into(), Value::Number(timestamp_ms.into()));
        aws.insert("CloudWatchMetrics".into(), Value::Array(self.directives));
        self.root.insert("_aws".into(), Value::Object(aws));
        Value::Object(self.root)
    }
}

/// A reason code as part of a metric name: ASCII letters, digits and `_` only.
fn metric_safe(code: &str) -> String {
    code.chars()
        .take(64)
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

const FUNCTION_NAME: &str = "FunctionName";

impl Record {
    /// The record as an EMF object.
    pub fn to_value(&self) -> Value {
        let mut b = Builder::new(&self.namespace);
        b.dimension(FUNCTION_NAME, &self.function_name);
        match &self.event {
            Event::Verification(v) => {
                b.dimension("Status", v.status.as_str());
                b.directive(
                    &[&[FUNCTION_NAME], &[FUNCTION_NAME, "Status"]],
                    &[("Verifications".into(), 1.0, Unit::Count)],
                );
                let reasons: BTreeSet<String> = v
                    .reasons
                    .iter()
                    .map(|r| metric_safe(r))
                    .filter(|r| !r.is_empty())
                    .take(MAX_REASONS)
                    .collect();
                let mut metrics: Vec<(String, f64, Unit)> = v
                    .latencies
                    .named()
                    .into_iter()
                    .filter_map(|(name, ms)| {
                        ms.map(|ms| (name.to_string(), ms, Unit::Milliseconds))
                    })
                    .collect();
                metrics.extend(
                    reasons
                        .iter()
                        .map(|r| (format!("{REASON_PREFIX}{r}"), 1.0, Unit::Count)),
                );
                b.directive(&[&[FUNCTION_NAME]], &metrics);
                b.property(
                    "reasons",
                    Value::Array(reasons.into_iter().map(Value::String).collect()),
                );
                b.property("cold_start", Value::Bool(v.cold_start));
                if let Some(s) = v.model_source {
                    b.property("model_source", Value::String(s.as_str().into()));
                }
            }
            Event::Init(i) => match (&i.error_code, i.model_source) {
                (None, source) => {
                    let source = source.unwrap_or(ModelSource::Other);
                    b.dimension("ModelSource", source.as_str());
                    b.directive(
                        &[&[FUNCTION_NAME], &[FUNCTION_NAME, "ModelSource"]],
                        &[
                            ("ColdStart".into(), 1.0, Unit::Count),
                            ("InitDuration".into(), i.duration_ms, Unit::Milliseconds),
                        ],
                    );
                }
                (Some(code), _) => {
                    b.directive(
                        &[&[FUNCTION_NAME]],
                        &[
                            ("InitError".into(), 1.0, Unit::Count),
                            ("InitDuration".into(), i.duration_ms, Unit::Milliseconds),
                        ],
                    );
                    b.property("error_code", Value::String(metric_safe(code)));
                }
            },
        }
        b.finish(self.timestamp_ms)
    }

    /// The record as one line of JSON (no newline inside; print it as a line of its own).
    pub fn emf_line(&self) -> String {
        self.to_value().to_string()
    }
}

/// True exactly once per flag: marks the first verification after a cold start.
#[derive(Debug, Default)]
pub struct ColdStartFlag(AtomicBool);

impl ColdStartFlag {
    pub const fn new() -> Self {
        ColdStartFlag(AtomicBool::new(false))
    }

    /// True the first time it is called, false afterwards.
    pub fn take(&self) -> bool {
        !self.0.swap(true, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::ImageInfo;
    use crate::pipeline::Timings;
    use crate::quality::{QualityScores, Reason, ReasonCode};

    fn verdict(status: Status, reasons: &[ReasonCode], liveness: Option<f32>) -> Verdict {
        Verdict {
            status,
            is_live: status == Status::Live,
            liveness_score: liveness,
            confidence: liveness,
            threshold: 0.5,
            reasons: reasons
                .iter()
                .map(|&code| Reason {
                    code,
                    message: "m".into(),
                    score: Some(1.0),
                    limit: Some(2.0),
                    metric: Some("sharpness"),
                })
                .collect(),
            scores: Vec::new(),
            quality: QualityScores::default(),
            face: None,
            detector: Some("blazeface".into()),
            checks_enabled: true,
            image: ImageInfo {
                format: "jpeg",
                width: 640,
                height: 480,
                exif_orientation: 1,
                decode_scale: 1,
            },
            timings: Timings {
                decode_ms: 3.5,
                detect_ms: 2.0,
                quality_ms: 0.5,
                liveness_ms: if liveness.is_some() { 7.25 } else { 0.0 },
                total_ms: 13.25,
            },
            models: Vec::new(),
        }
    }

    fn record(event: impl Into<Event>) -> Record {
        Record {
            namespace: NAMESPACE.into(),
            function_name: "ekyc-liveness-prod-TriggerFunction-abc".into(),
            timestamp_ms: 1_795_953_600_000,
            event: event.into(),
        }
    }

    /// Parse a line and check the EMF structure; returns the object.
    fn parse(line: &str) -> Map<String, Value> {
        assert!(!line.contains('\n'), "one line: {line}");
        let v: Value = serde_json::from_str(line).expect("a JSON line");
        let obj = v.as_object().expect("an object").clone();
        let aws = obj["_aws"].as_object().expect("_aws");
        assert_eq!(aws["Timestamp"].as_u64(), Some(1_795_953_600_000));
        let directives = aws["CloudWatchMetrics"].as_array().expect("directives");
        assert!(!directives.is_empty());
        for d in directives {
            assert_eq!(d["Namespace"], NAMESPACE);
            let sets = d["Dimensions"].as_array().expect("dimension sets");
            assert!(!sets.is_empty());
            for set in sets {
                let set = set.as_array().expect("a dimension set");
                assert!(!set.is_empty() && set.len() <= 30);
                for key in set {
                    let key = key.as_str().expect("dimension name");
                    assert!(
                        obj.get(key)
                            .and_then(Value::as_str)
                            .is_some_and(|s| !s.is_empty()),
                        "dimension {key} has no string value at the top level: {line}"
                    );
                }
            }
            let metrics = d["Metrics"].as_array().expect("metrics");
            assert!(!metrics.is_empty() && metrics.len() <= 100);
            for m in metrics {
                let name = m["Name"].as_str().expect("metric name");
                assert!(["Count", "Milliseconds"].contains(&m["Unit"].as_str().expect("unit")));
                assert!(
                    obj.get(name).is_some_and(Value::is_number),
                    "metric {name} has no numeric value at the top level: {line}"
                );
            }
        }
        obj
    }

    fn metric_names(obj: &Map<String, Value>) -> Vec<String> {
        obj["_aws"]["CloudWatchMetrics"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|d| d["Metrics"].as_array().cloned().unwrap_or_default())
            .filter_map(|m| m["Name"].as_str().map(str::to_string))
            .collect()
    }

    #[test]
    fn a_live_verdict_counts_by_status_with_every_stage() {
        let v = Verification::verdict(&verdict(Status::Live, &[], Some(0.9)))
            .with_request_ms(40.0)
            .with_cold_start(true)
            .with_model_source(ModelSource::S3);
        let obj = parse(&record(v).emf_line());
        assert_eq!(obj["Status"], "LIVE");
        assert_eq!(obj["Verifications"], 1);
        assert_eq!(obj["LivenessLatency"], 7.25);
        assert_eq!(obj["PipelineLatency"], 13.25);
        assert_eq!(obj["RequestLatency"], 40.0);
        assert_eq!(obj["cold_start"], true);
        assert_eq!(obj["model_source"], "s3");
        assert_eq!(obj["reasons"], serde_json::json!([]));
        let names = metric_names(&obj);
        for n in [
            "Verifications",
            "DecodeLatency",
            "DetectLatency",
            "QualityLatency",
            "LivenessLatency",
            "PipelineLatency",
            "RequestLatency",
        ] {
            assert!(names.iter().any(|m| m == n), "{n} missing: {names:?}");
        }
        // Verifications by status and in total; latencies per function only.
        let d = &obj["_aws"]["CloudWatchMetrics"];
        assert_eq!(
            d[0]["Dimensions"],
            serde_json::json!([["FunctionName"], ["FunctionName", "Status"]])
        );
        assert_eq!(d[1]["Dimensions"], serde_json::json!([["FunctionName"]]));
    }

    #[test]
    fn a_failed_gate_counts_each_reason_once_and_no_liveness_latency() {
        let v = Verification::verdict(&verdict(
            Status::QualityFailed,
            &[ReasonCode::Blurry, ReasonCode::TooDark, ReasonCode::Blurry],
            None,
        ));
        let obj = parse(&record(v).emf_line());
        assert_eq!(obj["Status"], "QUALITY_FAILED");
        assert_eq!(obj["Reason_BLURRY"], 1);
        assert_eq!(obj["Reason_TOO_DARK"], 1);
        assert_eq!(obj["reasons"], serde_json::json!(["BLURRY", "TOO_DARK"]));
        assert!(obj.get("LivenessLatency").is_none());
        let names = metric_names(&obj);
        assert_eq!(names.iter().filter(|n| *n == "Reason_BLURRY").count(), 1);
        assert!(!names.iter().any(|n| n == "LivenessLatency"));
    }

    #[test]
    fn errors_failures_and_skips_have_their_status_and_reason() {
        let obj =
            parse(&record(Verification::error("NOT_AN_IMAGE").with_request_ms(5.0)).emf_line());
        assert_eq!(obj["Status"], "ERROR");
        assert_eq!(obj["Reason_NOT_AN_IMAGE"], 1);
        assert_eq!(obj["RequestLatency"], 5.0);
        assert!(obj.get("DecodeLatency").is_none());

        let obj = parse(&record(Verification::failed(None)).emf_line());
        assert_eq!(obj["Status"], "FAILED");
        assert_eq!(metric_names(&obj), ["Verifications"]);

        let obj = parse(&record(Verification::skipped("DUPLICATE")).emf_line());
        assert_eq!(obj["Status"], "SKIPPED");
        assert_eq!(obj["Reason_DUPLICATE"], 1);
    }

    #[test]
    fn cold_start_lines_carry_the_model_source_and_init_duration() {
        let obj = parse(&record(Init::loaded(ModelSource::S3, 812.5)).emf_line());
        assert_eq!(obj["ColdStart"], 1);
        assert_eq!(obj["InitDuration"], 812.5);
        assert_eq!(obj["ModelSource"], "s3");
        assert!(obj.get("Status").is_none() && obj.get("Verifications").is_none());

        let obj = parse(&record(Init::failed("MODEL_MISSING", 95.0)).emf_line());
        assert_eq!(obj["InitError"], 1);
        assert_eq!(obj["error_code"], "MODEL_MISSING");
        assert!(obj.get("ColdStart").is_none());
    }

    #[test]
    fn non_finite_values_are_left_out_with_their_declaration() {
        let mut v = Verification::verdict(&verdict(Status::Spoof, &[], Some(0.1)));
        v.latencies.decode_ms = Some(f64::NAN);
        v.latencies.request_ms = Some(f64::INFINITY);
        v.latencies.detect_ms = Some(-1.0);
        v.latencies.quality_ms = Some(0.123_456_7);
        let obj = parse(&record(v).emf_line());
        assert!(obj.get("DecodeLatency").is_none() && obj.get("RequestLatency").is_none());
        assert_eq!(obj["QualityLatency"], 0.123);
        assert_eq!(obj["DetectLatency"], 0.0);
        let names = metric_names(&obj);
        assert!(!names
            .iter()
            .any(|n| n == "DecodeLatency" || n == "RequestLatency"));
    }

    #[test]
    fn a_line_holds_no_image_data() {
        // Only these keys may appear: metrics, dimensions and a few small properties.
        let mut v = verdict(Status::Spoof, &[ReasonCode::HeadYaw], Some(0.2));
        v.scores.push(crate::liveness::ModelScore {
            model: "MiniFASNetV2".into(),
            live_probability: 0.2,
            weight: 1.0,
        });
        let line = record(
            Verification::verdict(&v)
                .with_request_ms(9.0)
                .with_model_source(ModelSource::Dir),
        )
        .emf_line();
        let obj = parse(&line);
        let allowed = [
            "_aws",
            "FunctionName",
            "Status",
            "Verifications",
            "DecodeLatency",
            "DetectLatency",
            "QualityLatency",
            "LivenessLatency",
            "PipelineLatency",
            "RequestLatency",
            "Reason_HEAD_YAW",
            "reasons",
            "cold_start",
            "model_source",
        ];
        for key in obj.keys() {
            assert!(allowed.contains(&key.as_str()), "unexpected key {key}");
        }
        for absent in [
            "box",
            "keypoints",
            "scores",
            "live_probability",
            "image",
            "quality",
        ] {
            assert!(!line.contains(absent), "{absent} in {line}");
        }
        assert!(line.len() < 2048, "{} bytes", line.len());
    }

    #[test]
    fn reason_codes_become_safe_metric_names() {
        let obj = parse(&record(Verification::error("odd code/é")).emf_line());
        assert_eq!(obj["Reason_odd_code__"], 1);
        // An empty function name still gives a valid dimension.
        let mut r = record(Verification::failed(None));
        r.function_name.clear();
        assert_eq!(parse(&r.emf_line())["FunctionName"], "unknown");
    }

    #[test]
    fn config_off_writes_nothing_and_on_stamps_the_time() {
        let off = MetricsConfig::default();
        assert!(off.line(Verification::failed(None)).is_none());
        let on = MetricsConfig {
            enabled: true,
            function_name: "f".into(),
            ..MetricsConfig::default()
        };
        let r = on
            .record(Init::loaded(ModelSource::Embedded, 1.0))
            .expect("on");
        assert!(r.timestamp_ms > 1_600_000_000_000);
        assert_eq!(r.namespace, NAMESPACE);
    }

    #[test]
    fn model_sources_from_origins() {
        assert_eq!(ModelSource::from_origin("s3://b/models/"), ModelSource::S3);
        assert_eq!(ModelSource::from_origin("dir:models"), ModelSource::Dir);
        assert_eq!(ModelSource::from_origin("embedded"), ModelSource::Embedded);
        assert_eq!(ModelSource::from_origin("elsewhere"), ModelSource::Other);
    }

    #[test]
    fn the_cold_start_flag_is_taken_once() {
        let f = ColdStartFlag::new();
        assert!(f.take());
        assert!(!f.take());
        assert!(!f.take());
    }

    #[test]
    fn every_verdict_status_is_a_status_dimension() {
        for s in Status::ALL {
            let obj = parse(&record(Verification::verdict(&verdict(s, &[], None))).emf_line());
            assert_eq!(obj["Status"], s.as_str());
        }
    }
}
