//! Capture sessions over HTTP (challenge–response liveness over a burst of frames):
//! `POST /v1/sessions` issues a random challenge, `POST /v1/sessions/{id}/verify` takes the frames
//! of the attempt once, `GET /v1/sessions/{id}/result` gives the backend the full evidence. The
//! decision is `ekyc_core::session::decide`; this module is the protocol, the single-use store and
//! the per-client failure limit.
//!
//! Two stores behind [`SessionStore`]: in-process ([`MemoryStore`]; `ekyc serve` needs nothing):
//! single use is a compare-and-set under a lock, at most [`SessionConfig::max_sessions`] sessions
//! (forgettable ones dropped first; when every slot holds a live session a new one gets 503); or
//! object storage ([`SessionBackend`], S3 in `ekyc-aws`) for several Lambda instances: a session is
//! one JSON object created with `If-None-Match: *` and consumed with `If-Match` on its ETag, so two
//! verify calls on two instances cannot both run; failures are empty marker objects listed per
//! client. A result holds the measurements and, for the backend's audit, the reference frame and up
//! to 4 audit frames as the client sent them; never an embedding. The in-process store keeps at
//! most [`MEMORY_RESULTS_BYTES`] of such images (the oldest results lose theirs first).

use crate::error::{ApiError, ErrorKind};
use crate::uploads::{StoreError, StoreFuture};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ekyc_core::session::{
    decide, draw_steps, SessionDecision, SessionReason, SessionRules, SessionStatus, Step,
};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Session settings (the service's defaults in [`Default`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    /// Seconds a session may be verified after it was created.
    pub ttl_s: u64,
    /// Seconds a verified session's result stays readable.
    pub result_ttl_s: u64,
    /// Sessions held at once (created or with a readable result).
    pub max_sessions: usize,
    /// Failed attempts (SPOOF or RETRY) per client within `failure_window_s` before 429.
    pub max_failures: usize,
    pub failure_window_s: u64,
    /// Total bytes of an attempt's body.
    pub max_bytes: usize,
    /// Frames analysed at once within one attempt.
    pub frame_threads: usize,
    /// The decision's thresholds (frame counts and duration included).
    pub rules: SessionRules,
    /// A fixed challenge instead of a random one: for tests only (`EKYC_SESSION_FIXED_STEPS`).
    pub fixed_steps: Option<Vec<Step>>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            ttl_s: 180,
            result_ttl_s: 600,
            max_sessions: 10_000,
            max_failures: 5,
            failure_window_s: 180,
            max_bytes: 6 * 1024 * 1024,
            frame_threads: 2,
            rules: SessionRules::default(),
            fixed_steps: None,
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// 128 random bits from the operating system, as 32 hex digits.
fn random_id() -> Result<String, ApiError> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b).map_err(|e| ApiError::internal(&e))?;
    Ok(hex::encode(b))
}

fn random_u64() -> Result<u64, ApiError> {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).map_err(|e| ApiError::internal(&e))?;
    Ok(u64::from_le_bytes(b))
}

/// Where a session is in its life.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE", tag = "phase", content = "result")]
enum Phase {
    Pending,
    /// The one verify call is running.
    Verifying,
    Done(Arc<serde_json::Value>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    steps: Vec<Step>,
    nonce: String,
    created_ms: u64,
    expires_ms: u64,
    #[serde(flatten)]
    phase: Phase,
    /// When the record may be forgotten.
    forget_ms: u64,
}

/// Object storage for sessions (S3 in `ekyc-aws`): conditional writes make single use hold
/// across processes.
pub trait SessionBackend: Send + Sync {
    /// Write `key` only if no object is there (`If-None-Match: *`); false when one is.
    fn create<'a>(&'a self, key: &'a str, body: Vec<u8>) -> StoreFuture<'a, bool>;
    /// The object at `key` and its ETag (`None` when there is none); an error over `max_bytes`.
    fn read<'a>(
        &'a self,
        key: &'a str,
        max_bytes: u64,
    ) -> StoreFuture<'a, Option<(Vec<u8>, String)>>;
    /// Replace `key` only while its ETag is `etag` (`If-Match`); false when it changed.
    fn replace<'a>(&'a self, key: &'a str, body: Vec<u8>, etag: &'a str) -> StoreFuture<'a, bool>;
    /// Up to `max` keys under `prefix`.
    fn list<'a>(&'a self, prefix: &'a str, max: usize) -> StoreFuture<'a, Vec<String>>;
}

/// Where sessions are kept.
pub enum SessionStore {
    Memory(MemoryStore),
    Objects {
        backend: Arc<dyn SessionBackend>,
        /// Key prefix, e.g. `sessions/`.
        prefix: String,
    },
}

impl Default for SessionStore {
    fn default() -> Self {
        SessionStore::Memory(MemoryStore::default())
    }
}

/// A session record: steps, nonce, times, the evidence of up to `max_frames` frames and at most 5
/// of the attempt's frames in base64 (the attempt is at most 6 MiB: 8 MiB of base64).
const MAX_RECORD_BYTES: u64 = 16 << 20;

fn store_error(e: StoreError) -> ApiError {
    let mut chain = e.message.clone();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        chain.push_str(&format!(": {s}"));
        src = s.source();
    }
    ApiError::internal(&chain)
}

/// The key of a client's failure markers: a sha256 of the client key (no address in a key).
fn client_digest(client: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(client.as_bytes())[..16])
}

impl SessionStore {
    fn key(prefix: &str, id: &str) -> String {
        format!("{prefix}{id}.json")
    }

    async fn insert(&self, id: String, rec: Record, max: usize) -> Result<(), ApiError> {
        match self {
            SessionStore::Memory(m) => m.insert(id, rec, max),
            SessionStore::Objects { backend, prefix } => {
                let body = serde_json::to_vec(&rec).map_err(|e| ApiError::internal(&e))?;
                if backend
                    .create(&Self::key(prefix, &id), body)
                    .await
                    .map_err(store_error)?
                {
                    Ok(())
                } else {
                    Err(ApiError::internal(&"a new session id already exists"))
                }
            }
        }
    }

    async fn read(
        backend: &dyn SessionBackend,
        key: &str,
    ) -> Result<Option<(Record, String)>, ApiError> {
        match backend
            .read(key, MAX_RECORD_BYTES)
            .await
            .map_err(store_error)?
        {
            None => Ok(None),
            Some((b, etag)) => {
                let rec: Record = serde_json::from_slice(&b).map_err(|e| ApiError::internal(&e))?;
                Ok(Some((rec, etag)))
            }
        }
    }

    async fn begin(&self, id: &str) -> Result<Record, ApiError> {
        match self {
            SessionStore::Memory(m) => m.begin(id),
            SessionStore::Objects { backend, prefix } => {
                let key = Self::key(prefix, id);
                let (mut rec, etag) = Self::read(backend.as_ref(), &key)
                    .await?
                    .ok_or_else(not_found)?;
                check_pending(&rec, now_ms())?;
                rec.phase = Phase::Verifying;
                let body = serde_json::to_vec(&rec).map_err(|e| ApiError::internal(&e))?;
                if backend
                    .replace(&key, body, &etag)
                    .await
                    .map_err(store_error)?
                {
                    Ok(rec)
                } else {
                    Err(used())
                }
            }
        }
    }

    async fn finish(&self, id: &str, result: serde_json::Value, keep_s: u64) {
        match self {
            SessionStore::Memory(m) => m.finish(id, result, keep_s),
            SessionStore::Objects { backend, prefix } => {
                let key = Self::key(prefix, id);
                let done = async {
                    let (mut rec, etag) = Self::read(backend.as_ref(), &key)
                        .await?
                        .ok_or_else(not_found)?;
                    rec.phase = Phase::Done(Arc::new(result));
                    rec.forget_ms = now_ms() + keep_s * 1000;
                    let body = serde_json::to_vec(&rec).map_err(|e| ApiError::internal(&e))?;
                    backend
                        .replace(&key, body, &etag)
                        .await
                        .map_err(store_error)
                };
                match done.await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::error!(session_id = %id, "session result not written: the record changed");
                    }
                    Err(e) => {
                        tracing::error!(session_id = %id, error = ?e.detail, "session result not written");
                    }
                }
            }
        }
    }

    async fn result(&self, id: &str) -> Result<Arc<serde_json::Value>, ApiError> {
        match self {
            SessionStore::Memory(m) => m.result(id),
            SessionStore::Objects { backend, prefix } => {
                let (rec, _) = Self::read(backend.as_ref(), &Self::key(prefix, id))
                    .await?
                    .ok_or_else(not_found)?;
                result_of(&rec, now_ms())
            }
        }
    }

    async fn failures(&self, client: &str, window_ms: u64) -> Result<(usize, u64), ApiError> {
        match self {
            SessionStore::Memory(m) => Ok(m.failures(client, window_ms)),
            SessionStore::Objects { backend, prefix } => {
                let dir = format!("{prefix}failures/{}/", client_digest(client));
                let keys = backend.list(&dir, 1000).await.map_err(store_error)?;
                let now = now_ms();
                let mut recent: Vec<u64> = keys
                    .iter()
                    .filter_map(|k| k.strip_prefix(&dir)?.split('-').next()?.parse().ok())
                    .filter(|t: &u64| t + window_ms > now)
                    .collect();
                recent.sort_unstable();
                let wait = recent
                    .first()
                    .map_or(0, |t| (t + window_ms).saturating_sub(now));
                Ok((recent.len(), wait))
            }
        }
    }

    async fn record_failure(&self, client: &str) {
        match self {
            SessionStore::Memory(m) => m.record_failure(client),
            SessionStore::Objects { backend, prefix } => {
                let key = format!(
                    "{prefix}failures/{}/{:013}-{}",
                    client_digest(client),
                    now_ms(),
                    random_u64().map_or(0, |r| r % 1_000_000)
                );
                if let Err(e) = backend.create(&key, Vec::new()).await {
                    tracing::error!(error = %e.message, "failure marker not written");
                }
            }
        }
    }
}

fn used() -> ApiError {
    ApiError::new(
        ErrorKind::SessionUsed,
        "the session was verified already; create a new one",
    )
}

/// A pending, unexpired record may be consumed.
fn check_pending(r: &Record, now: u64) -> Result<(), ApiError> {
    match r.phase {
        Phase::Pending if now <= r.expires_ms => Ok(()),
        Phase::Pending => Err(ApiError::new(
            ErrorKind::SessionExpired,
            "the session expired before it was verified; create a new one",
        )),
        _ => Err(used()),
    }
}

fn result_of(r: &Record, now: u64) -> Result<Arc<serde_json::Value>, ApiError> {
    match &r.phase {
        Phase::Done(v) => Ok(v.clone()),
        Phase::Pending if now > r.expires_ms => Err(ApiError::new(
            ErrorKind::SessionExpired,
            "the session expired without being verified",
        )),
        _ => Err(ApiError::new(
            ErrorKind::SessionPending,
            "the session has not been verified yet",
        )),
    }
}

/// The in-process session store.
#[derive(Debug, Default)]
pub struct MemoryStore {
    sessions: Mutex<HashMap<String, Record>>,
    failures: Mutex<HashMap<String, VecDeque<u64>>>,
}

/// Bytes of readable results the in-process store keeps (their reference and audit images are
/// most of it); over it, the oldest results lose their images first.
const MEMORY_RESULTS_BYTES: usize = 64 << 20;

/// The size of a result's images (base64 text).
fn image_bytes(v: &serde_json::Value) -> usize {
    let one = |x: &serde_json::Value| x["data"].as_str().map_or(0, str::len);
    one(&v["reference_image"])
        + v["audit_images"]
            .as_array()
            .map_or(0, |a| a.iter().map(one).sum())
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn insert(&self, id: String, rec: Record, max: usize) -> Result<(), ApiError> {
        let mut m = self.lock();
        let now = now_ms();
        if m.len() >= max {
            m.retain(|_, r| r.forget_ms > now);
        }
        if m.len() >= max {
            return Err(ApiError::new(
                ErrorKind::Busy,
                "the server holds its maximum of open sessions; retry shortly",
            ));
        }
        m.insert(id, rec);
        Ok(())
    }

    /// Pending → Verifying, once. The record's steps and nonce for the attempt.
    fn begin(&self, id: &str) -> Result<Record, ApiError> {
        let mut m = self.lock();
        let r = m.get_mut(id).ok_or_else(not_found)?;
        check_pending(r, now_ms())?;
        r.phase = Phase::Verifying;
        Ok(r.clone())
    }

    fn finish(&self, id: &str, result: serde_json::Value, keep_s: u64) {
        let mut m = self.lock();
        if let Some(r) = m.get_mut(id) {
            r.phase = Phase::Done(Arc::new(result));
            r.forget_ms = now_ms() + keep_s * 1000;
        }
        // Keep the results' images within the budget: the oldest results lose theirs first.
        let held = |m: &HashMap<String, Record>| -> usize {
            m.values()
                .map(|r| match &r.phase {
                    Phase::Done(v) => image_bytes(v),
                    _ => 0,
                })
                .sum()
        };
        let mut total = held(&m);
        while total > MEMORY_RESULTS_BYTES {
            let oldest = m
                .iter()
                .filter(|(_, r)| matches!(&r.phase, Phase::Done(v) if image_bytes(v) > 0))
                .min_by_key(|(_, r)| r.forget_ms)
                .map(|(k, _)| k.clone());
            let Some(k) = oldest else { break };
            if let Some(r) = m.get_mut(&k) {
                if let Phase::Done(v) = &r.phase {
                    let mut v = v.as_ref().clone();
                    total -= image_bytes(&v);
                    v["reference_image"] = serde_json::Value::Null;
                    v["audit_images"] = serde_json::json!([]);
                    v["images_dropped"] = serde_json::Value::Bool(true);
                    r.phase = Phase::Done(Arc::new(v));
                }
            }
        }
    }

    fn result(&self, id: &str) -> Result<Arc<serde_json::Value>, ApiError> {
        let m = self.lock();
        let r = m.get(id).ok_or_else(not_found)?;
        result_of(r, now_ms())
    }

    /// Failures of `client` within the window, after forgetting older ones.
    fn failures(&self, client: &str, window_ms: u64) -> (usize, u64) {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = now_ms();
        let Some(q) = f.get_mut(client) else {
            return (0, 0);
        };
        while q.front().is_some_and(|t| t + window_ms <= now) {
            q.pop_front();
        }
        let wait = q.front().map_or(0, |t| (t + window_ms).saturating_sub(now));
        let n = q.len();
        if n == 0 {
            f.remove(client);
        }
        (n, wait)
    }

    fn record_failure(&self, client: &str) {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // Bound the table: forget clients whose failures are all older than an hour.
        if f.len() > 100_000 {
            let cutoff = now_ms().saturating_sub(3_600_000);
            f.retain(|_, q| q.back().is_some_and(|t| *t > cutoff));
        }
        f.entry(client.to_string()).or_default().push_back(now_ms());
    }
}

fn not_found() -> ApiError {
    ApiError::new(
        ErrorKind::SessionNotFound,
        "no session with this id (never created, or expired and forgotten)",
    )
}

/// A session id is 32 lower-case hex digits.
fn check_id(id: &str) -> Result<(), ApiError> {
    if id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorKind::BadSessionId,
            "a session id is 32 lower-case hex digits",
        ))
    }
}

/// The client a failure is counted against: the `X-Device-Id` header when sent, else the
/// caller's source IP as API Gateway saw it, else the caller's identity.
fn client_key(req: &Request) -> String {
    use lambda_http::request::RequestContext;
    use lambda_http::RequestExt;
    if let Some(d) = req
        .headers()
        .get("x-device-id")
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= 128)
    {
        return format!("device:{d}");
    }
    let ip = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(c)) => c.http.source_ip.clone(),
        Some(RequestContext::ApiGatewayV1(c)) => c.identity.source_ip.clone(),
        _ => None,
    };
    if let Some(ip) = ip.filter(|s| !s.is_empty()) {
        return format!("ip:{ip}");
    }
    match crate::uploads::Caller::of(req) {
        Ok(c) => format!("caller:{}", c.owner()),
        Err(_) => "caller:anonymous".into(),
    }
}

/// The limits a client must respect.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionLimits {
    pub max_frames: usize,
    pub min_frames: usize,
    pub max_bytes: usize,
    pub max_duration_ms: u64,
}

/// One step as issued.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IssuedStep {
    #[schema(value_type = String)]
    pub step: Step,
    /// What to show the person.
    pub instruction: &'static str,
}

/// The challenge of a session.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Challenge {
    #[schema(value_type = Vec<String>)]
    pub steps: Vec<Step>,
    pub instructions: Vec<IssuedStep>,
    /// 64 random bits (hex) the client may show on screen or bind into its capture.
    pub nonce: String,
}

/// Response of `POST /v1/sessions`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionCreated {
    pub session_id: String,
    pub challenge: Challenge,
    /// Unix milliseconds after which the session cannot be verified.
    pub expires_at_ms: u64,
    /// The same instant, RFC 3339 (UTC).
    pub expires_at: String,
    pub limits: SessionLimits,
}

/// A reason the attempt was not LIVE (client-facing).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClientReason {
    pub code: String,
    pub message: String,
}

/// Response of `POST /v1/sessions/{id}/verify`: pass/fail only — no scores, so that an attacker
/// cannot hill-climb.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionVerdict {
    pub session_id: String,
    /// LIVE, SPOOF or RETRY.
    pub status: String,
    pub reasons: Vec<ClientReason>,
    /// What to do next (null when LIVE).
    pub retry_hint: Option<String>,
}

/// Unix milliseconds as RFC 3339 UTC (civil-from-days, proleptic Gregorian).
fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[utoipa::path(
    post,
    path = "/v1/sessions",
    responses(
        (status = 201, description = "A new session with its challenge", body = SessionCreated),
        (status = 429, description = "Too many failed sessions from this client (Retry-After)", body = crate::error::ErrorBody),
        (status = 503, description = "The server holds its maximum of sessions", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn create(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let client = client_key(&req);
    drop(req);
    match create_inner(&state, &client).await {
        Ok(c) => (StatusCode::CREATED, Json(c)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn rate_limited(state: &AppState, client: &str) -> Result<(), ApiError> {
    let cfg = &state.server.sessions;
    let (n, wait_ms) = state
        .sessions
        .failures(client, cfg.failure_window_s * 1000)
        .await?;
    if n >= cfg.max_failures {
        let mut e = ApiError::new(
            ErrorKind::TooManyFailures,
            format!(
                "{n} failed sessions in the last {} s; wait before trying again",
                cfg.failure_window_s
            ),
        );
        e.retry_after = Some(u32::try_from(wait_ms.div_ceil(1000).max(1)).unwrap_or(u32::MAX));
        return Err(e);
    }
    Ok(())
}

async fn create_inner(state: &AppState, client: &str) -> Result<SessionCreated, ApiError> {
    let cfg = &state.server.sessions;
    rate_limited(state, client).await?;
    let id = random_id()?;
    let steps = match &cfg.fixed_steps {
        Some(s) => s.clone(),
        None => draw_steps(random_u64()?),
    };
    let nonce = format!("{:016x}", random_u64()?);
    let created_ms = now_ms();
    let expires_ms = created_ms + cfg.ttl_s * 1000;
    state
        .sessions
        .insert(
            id.clone(),
            Record {
                steps: steps.clone(),
                nonce: nonce.clone(),
                created_ms,
                expires_ms,
                phase: Phase::Pending,
                forget_ms: expires_ms + cfg.result_ttl_s * 1000,
            },
            cfg.max_sessions,
        )
        .await?;
    tracing::info!(session_id = %id, steps = ?steps.iter().map(|s| s.as_str()).collect::<Vec<_>>(), "session created");
    Ok(SessionCreated {
        session_id: id,
        challenge: Challenge {
            instructions: steps
                .iter()
                .map(|s| IssuedStep {
                    step: *s,
                    instruction: s.instruction(),
                })
                .collect(),
            steps,
            nonce,
        },
        expires_at_ms: expires_ms,
        expires_at: rfc3339(expires_ms),
        limits: SessionLimits {
            max_frames: cfg.rules.max_frames,
            min_frames: cfg.rules.min_frames,
            max_bytes: cfg.max_bytes,
            max_duration_ms: cfg.rules.max_duration_ms,
        },
    })
}

/// The frames of an attempt: multipart fields `frame` (repeated, in capture order) and either
/// one `timestamps` field (comma-separated milliseconds, one per frame) or a `timestamp` field
/// after each frame.
async fn read_frames(
    ctype: &str,
    body: Bytes,
    max_frames: usize,
) -> Result<Vec<(Vec<u8>, u64)>, ApiError> {
    let bad = |m: String| ApiError::new(ErrorKind::BadFrames, m);
    let boundary = multer::parse_boundary(ctype).map_err(|_| {
        ApiError::new(
            ErrorKind::MalformedMultipart,
            "send multipart/form-data (fields `frame` and `timestamps`) with a boundary",
        )
    })?;
    let stream =
        futures_util::stream::once(async move { Ok::<Bytes, std::convert::Infallible>(body) });
    let mut mp = multer::Multipart::new(stream, boundary);
    let mut frames: Vec<Vec<u8>> = Vec::new();
    let mut stamps: Vec<u64> = Vec::new();
    let parse_ms = |s: &str| -> Result<u64, ApiError> {
        s.trim().parse::<u64>().map_err(|_| {
            bad(format!(
                "a timestamp is not a whole number of milliseconds: \"{}\"",
                crate::error::excerpt(s)
            ))
        })
    };
    while let Some(field) = mp.next_field().await.map_err(|_| {
        ApiError::new(
            ErrorKind::MalformedMultipart,
            "the multipart body is malformed",
        )
    })? {
        let name = field.name().unwrap_or("").to_string();
        let data = field.bytes().await.map_err(|_| {
            ApiError::new(
                ErrorKind::MalformedMultipart,
                "the multipart body is malformed",
            )
        })?;
        match name.as_str() {
            "frame" => {
                if frames.len() == max_frames {
                    return Err(bad(format!("more than {max_frames} frames")));
                }
                if data.is_empty() {
                    return Err(bad(format!("frame {} is empty", frames.len())));
                }
                frames.push(data.to_vec());
            }
            "timestamps" => {
                let text = std::str::from_utf8(&data)
                    .map_err(|_| bad("timestamps must be text".into()))?;
                for part in text.split(',').filter(|p| !p.trim().is_empty()) {
                    stamps.push(parse_ms(part)?);
                }
            }
            "timestamp" => {
                let text =
                    std::str::from_utf8(&data).map_err(|_| bad("timestamp must be text".into()))?;
                stamps.push(parse_ms(text)?);
            }
            _ => {}
        }
    }
    if frames.is_empty() {
        return Err(bad(
            "no field `frame`: send the frames of the attempt".into()
        ));
    }
    if stamps.len() != frames.len() {
        return Err(bad(format!(
            "{} frames but {} timestamps: send one capture time (ms) per frame",
            frames.len(),
            stamps.len()
        )));
    }
    Ok(frames.into_iter().zip(stamps).collect())
}

/// The retry hint for a decision.
fn hint(d: &SessionDecision) -> Option<String> {
    use ekyc_core::session::SessionCode as C;
    if d.status == SessionStatus::Live {
        return None;
    }
    let first = d.reasons.first().map(|r| r.code);
    Some(
        match first {
            Some(C::ChallengeNotMet) => "Start a new session and follow each instruction in turn, going back to the centre after each move.",
            Some(C::TooFewFrames | C::SessionTooLong | C::TooManyFrames) => "Start a new session and record the steps at about 10 frames per second, within the time limit.",
            Some(C::NoFace | C::QualityFailed) => "Start a new session in good light, with your whole face in the oval.",
            Some(C::MultipleFaces) => "Start a new session with only your face in view.",
            _ => "Start a new session.",
        }
        .to_string(),
    )
}

fn client_reasons(reasons: &[SessionReason]) -> Vec<ClientReason> {
    reasons
        .iter()
        .map(|r| ClientReason {
            code: serde_json::to_value(r.code)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            message: r.message.clone(),
        })
        .collect()
}

#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/verify",
    params(("id" = String, Path, description = "The session id")),
    request_body(description = "multipart/form-data: repeated field `frame` (JPEG/PNG/WebP, capture order) and `timestamps` (comma-separated capture times, ms), or a `timestamp` field after each frame.", content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "LIVE, SPOOF or RETRY with reasons; no scores", body = SessionVerdict),
        (status = 400, description = "Bad id, malformed multipart, bad frames or timestamps; a frame that is no image (with its index)", body = crate::error::ErrorBody),
        (status = 404, description = "SESSION_NOT_FOUND", body = crate::error::ErrorBody),
        (status = 409, description = "SESSION_USED: verified already", body = crate::error::ErrorBody),
        (status = 410, description = "SESSION_EXPIRED", body = crate::error::ErrorBody),
        (status = 413, description = "Body over the session's byte limit", body = crate::error::ErrorBody),
        (status = 429, description = "Too many failed sessions from this client (Retry-After)", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn verify(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let t0 = std::time::Instant::now();
    let client = client_key(&req);
    match verify_inner(&state, &id, &client, req).await {
        Ok(v) => {
            tracing::info!(session_id = %id, status = %v.status, reasons = ?v.reasons.iter().map(|r| r.code.as_str()).collect::<Vec<_>>(), total_ms = t0.elapsed().as_secs_f64() * 1e3, "session verified");
            Json(v).into_response()
        }
        Err(e) => {
            tracing::info!(session_id = %crate::error::excerpt(&id), http_status = e.status().as_u16(), code = e.code(), "session verify refused");
            e.into_response()
        }
    }
}

async fn verify_inner(
    state: &Arc<AppState>,
    id: &str,
    client: &str,
    req: Request,
) -> Result<SessionVerdict, ApiError> {
    let cfg = state.server.sessions.clone();
    // Single use: the session is consumed before its frames are read. A refusal still reads (and
    // drops) the body, so a client that is uploading gets the JSON answer, not a reset connection.
    let early = async {
        check_id(id)?;
        rate_limited(state, client).await?;
        state.sessions.begin(id).await
    };
    let rec = match early.await {
        Ok(r) => r,
        Err(e) => {
            crate::drain(req).await;
            return Err(e);
        }
    };
    let ctype = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let timeout = Duration::from_secs_f64(state.server.body_timeout_s.max(0.1));
    let limit = cfg.max_bytes;
    let body = tokio::time::timeout(timeout, axum::body::to_bytes(req.into_body(), limit))
        .await
        .map_err(|_| ApiError::new(ErrorKind::BodyTimeout, "the frames did not arrive in time"))?
        .map_err(|_| {
            ApiError::new(
                ErrorKind::BodyTooLarge,
                format!("the frames are over the session's limit of {limit} bytes"),
            )
        });
    let keep_s = cfg.result_ttl_s;
    let fail = |e: ApiError| async move {
        state.sessions.record_failure(client).await;
        state
            .sessions
            .finish(
                id,
                serde_json::json!({"session_id": id, "status": "ERROR", "error": e.body().error}),
                keep_s,
            )
            .await;
        e
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => return Err(fail(e).await),
    };
    let frames = match read_frames(&ctype, body, cfg.rules.max_frames).await {
        Ok(f) => f,
        Err(e) => return Err(fail(e).await),
    };
    let _permit = state
        .permits
        .acquire()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let st = state.clone();
    let steps = rec.steps.clone();
    let rules = cfg.rules.clone();
    let threads = cfg.frame_threads;
    let outcome = tokio::task::spawn_blocking(move || {
        let t0 = std::time::Instant::now();
        let refs: Vec<(&[u8], u64)> = frames.iter().map(|(b, t)| (b.as_slice(), *t)).collect();
        let observed = st.pipeline.observe_frames(&refs, threads);
        let analyse_ms = t0.elapsed().as_secs_f64() * 1e3;
        observed.map(|obs| {
            let d = decide(&steps, &obs, &rules);
            (d, obs, analyse_ms, frames)
        })
    })
    .await
    .map_err(|e| ApiError::internal(&e))?;
    let (decision, observed, analyse_ms, frames) = match outcome {
        Ok(x) => x,
        Err((i, e)) => {
            let mut api = ApiError::from(&e);
            api.message = format!("frame {i}: {}", api.message);
            return Err(fail(api).await);
        }
    };
    let verdict = SessionVerdict {
        session_id: id.to_string(),
        status: status_str(decision.status).to_string(),
        reasons: client_reasons(&decision.reasons),
        retry_hint: hint(&decision),
    };
    if decision.status != SessionStatus::Live {
        state.sessions.record_failure(client).await;
    }
    let result = serde_json::json!({
        "session_id": id,
        "status": verdict.status,
        "reasons": decision.reasons,
        "challenge": {"steps": rec.steps, "nonce": rec.nonce},
        "created_at_ms": rec.created_ms,
        "verified_at_ms": now_ms(),
        "evidence": decision,
        "frames": observed,
        "timings": {"analyse_ms": analyse_ms, "frames": observed.len()},
        "models": state.pipeline.models(),
        "reference_image": decision.reference_frame.and_then(|i| image_json(&frames, i)),
        "audit_images": decision
            .audit_frames
            .iter()
            .filter_map(|&i| image_json(&frames, i))
            .collect::<Vec<_>>(),
    });
    state.sessions.finish(id, result, cfg.result_ttl_s).await;
    Ok(verdict)
}

/// Frame `i` of the attempt as the client sent it (base64), for the backend's audit.
fn image_json(frames: &[(Vec<u8>, u64)], i: usize) -> Option<serde_json::Value> {
    use base64::Engine;
    let (bytes, ts) = frames.get(i)?;
    let kind = match bytes.get(..4) {
        Some([0xFF, 0xD8, ..]) => "image/jpeg",
        Some([0x89, b'P', b'N', b'G']) => "image/png",
        _ => "image/webp",
    };
    Some(serde_json::json!({
        "frame": i,
        "timestamp_ms": ts,
        "content_type": kind,
        "data": base64::engine::general_purpose::STANDARD.encode(bytes),
    }))
}

/// A verified session's status and its reference frame's bytes (for `POST
/// /v1/sessions/{id}/match`): 404/409/410 as `GET …/result`, and 409 SESSION_NO_REFERENCE when
/// the result kept no reference frame (no frame had a usable face, or the in-process store
/// dropped the images of old results).
pub(crate) async fn reference_of(
    state: &AppState,
    id: &str,
) -> Result<(String, Vec<u8>), ApiError> {
    use base64::Engine;
    check_id(id)?;
    let v = state.sessions.result(id).await?;
    let status = v
        .get("status")
        .and_then(|s| s.as_str())
        .unwrap_or("ERROR")
        .to_string();
    let no_reference = || {
        ApiError::new(
            ErrorKind::SessionNoReference,
            "the session kept no reference frame to match; run a new session",
        )
    };
    let data = v
        .get("reference_image")
        .and_then(|r| r.get("data"))
        .and_then(|d| d.as_str())
        .ok_or_else(no_reference)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| no_reference())?;
    Ok((status, bytes))
}

fn status_str(s: SessionStatus) -> &'static str {
    match s {
        SessionStatus::Live => "LIVE",
        SessionStatus::Spoof => "SPOOF",
        SessionStatus::Retry => "RETRY",
    }
}

#[utoipa::path(
    get,
    path = "/v1/sessions/{id}/result",
    params(("id" = String, Path, description = "The session id")),
    responses(
        (status = 200, description = "The full evidence: each step with its frames and measured pose, identity similarity, passive scores per frame and aggregated, quality reasons, timings, model hashes, the reference and audit frame indices"),
        (status = 404, description = "SESSION_NOT_FOUND", body = crate::error::ErrorBody),
        (status = 409, description = "SESSION_PENDING: not verified yet", body = crate::error::ErrorBody),
        (status = 410, description = "SESSION_EXPIRED without a verification", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn result(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let got = match check_id(&id) {
        Ok(()) => state.sessions.result(&id).await,
        Err(e) => Err(e),
    };
    match got {
        Ok(v) => Json(v.as_ref().clone()).into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_by_hand() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_283_000_000), "2026-12-03T07:30:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn ids_are_32_hex_digits() {
        let id = random_id().unwrap_or_default();
        assert!(check_id(&id).is_ok(), "{id}");
        assert_ne!(random_id().unwrap_or_default(), id);
        for bad in ["", "abc", &"G".repeat(32), &"A".repeat(32), &"a".repeat(33)] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_session_is_used_once_and_expires() {
        let store = MemoryStore::default();
        let rec = |expires_ms| Record {
            steps: vec![Step::Blink, Step::Center],
            nonce: "n".into(),
            created_ms: 0,
            expires_ms,
            phase: Phase::Pending,
            forget_ms: u64::MAX,
        };
        store.insert("a".into(), rec(u64::MAX), 10).ok();
        store.insert("old".into(), rec(1), 10).ok();
        assert!(store.begin("a").is_ok());
        assert_eq!(
            store.begin("a").map(|_| ()).unwrap_err().kind,
            ErrorKind::SessionUsed
        );
        assert_eq!(
            store.result("a").map(|_| ()).unwrap_err().kind,
            ErrorKind::SessionPending
        );
        store.finish("a", serde_json::json!({"ok": true}), 60);
        assert_eq!(store.result("a").map(|v| v["ok"] == true).ok(), Some(true));
        assert_eq!(
            store.begin("old").map(|_| ()).unwrap_err().kind,
            ErrorKind::SessionExpired
        );
        assert_eq!(
            store.begin("nope").map(|_| ()).unwrap_err().kind,
            ErrorKind::SessionNotFound
        );
        // Full: forgettable records make room; live ones do not.
        let small = MemoryStore::default();
        let mut gone = rec(u64::MAX);
        gone.forget_ms = 0;
        small.insert("x".into(), gone, 1).ok();
        assert!(small.insert("y".into(), rec(u64::MAX), 1).is_ok());
        assert_eq!(
            small
                .insert("z".into(), rec(u64::MAX), 1)
                .map_err(|e| e.kind),
            Err(ErrorKind::Busy)
        );
    }

    #[test]
    fn failures_are_counted_per_client_within_the_window() {
        let store = MemoryStore::default();
        for _ in 0..3 {
            store.record_failure("c");
        }
        assert_eq!(store.failures("c", 60_000).0, 3);
        assert_eq!(store.failures("other", 60_000).0, 0);
        assert_eq!(store.failures("c", 0).0, 0);
    }
}
