//! HTTP adapter: one axum Router (built once per process around the shared [`Pipeline`]), served
//! locally by `axum::serve` or inside AWS Lambda by `lambda_http::run`.

pub mod auth;
mod demo;
pub mod error;
pub mod face_match;
mod input;
pub mod listen;
pub mod openapi;
pub mod sessions;
pub mod uploads;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ekyc_core::{Pipeline, Verdict};
use error::{ApiError, ErrorKind};
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;

/// HTTP adapter settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Address to listen on when not running inside AWS Lambda.
    pub host: String,
    /// Port to listen on when not running inside AWS Lambda.
    pub port: u16,
    /// Largest accepted request body in bytes (raw; base64 JSON bodies may be 4/3 of this).
    pub max_body_bytes: usize,
    /// Origins allowed by CORS. Empty = CORS off. No wildcard, no credentials.
    pub cors_origins: Vec<String>,
    /// Verifications run at the same time (others wait their turn); 0 = the number of CPUs.
    pub max_concurrency: usize,
    /// Serve the demo page at / and /demo.
    pub demo: bool,
    /// After SIGTERM/SIGINT, seconds to let requests in flight finish before exiting anyway.
    pub shutdown_grace_s: f64,
    /// Memory the process may use, in MiB (inside Lambda: the function's memory size), for the
    /// decode-budget plan; `None` = not planned.
    pub memory_mb: Option<u64>,
    /// Seconds a request body may take to arrive (slow or stalled uploads get 408).
    pub body_timeout_s: f64,
    /// API keys required on /v1/* (empty = none).
    pub api_keys: auth::ApiKeys,
    /// Connections open at once on the local server (the next is answered 503).
    pub max_connections: usize,
    /// Seconds a new connection may take to send its whole request head (else 408, or closed if
    /// it sent nothing).
    pub header_timeout_s: f64,
    /// Memory for request bodies being received, in MiB: each upload reserves twice its
    /// Content-Length (the body and its copy) before it is read; over the budget it gets 503.
    pub body_memory_mb: u64,
    /// CloudWatch EMF lines per verification (inside Lambda by default).
    pub metrics: ekyc_core::metrics::MetricsConfig,
    /// Capture sessions (`/v1/sessions`).
    pub sessions: sessions::SessionConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "127.0.0.1".into(),
            port: 3000,
            max_body_bytes: 6 * 1024 * 1024,
            cors_origins: Vec::new(),
            max_concurrency: 0,
            demo: true,
            shutdown_grace_s: 10.0,
            memory_mb: None,
            body_timeout_s: 30.0,
            api_keys: auth::ApiKeys::default(),
            max_connections: 256,
            header_timeout_s: 10.0,
            body_memory_mb: 128,
            metrics: ekyc_core::metrics::MetricsConfig::default(),
            sessions: sessions::SessionConfig::default(),
        }
    }
}

impl ServerConfig {
    /// The connection layer's limits.
    pub fn connection_limits(&self) -> listen::ConnectionLimits {
        listen::ConnectionLimits {
            max_connections: self.max_connections.max(1),
            header_timeout: std::time::Duration::from_secs_f64(self.header_timeout_s.max(0.1)),
            max_head_bytes: listen::MAX_HEAD_BYTES,
            max_uri_bytes: listen::MAX_URI_BYTES,
            max_headers: listen::MAX_HEADERS,
        }
    }

    /// Bytes one upload reserves from the body budget: twice its announced length (the body and
    /// the copy that extraction makes), or twice the body limit when no length is announced.
    pub fn body_reservation(&self, content_length: Option<u64>) -> u64 {
        let limit = self.max_body_bytes as u64;
        2 * content_length.map_or(limit, |n| n.min(limit)).max(1)
    }
}

impl AppState {
    /// `read` (a request body arriving) cut after the body timeout: 408 BODY_TIMEOUT; a stalled
    /// upload's buffer is dropped with it.
    pub(crate) async fn within_body_timeout<T>(
        &self,
        read: impl std::future::Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        let timeout = std::time::Duration::from_secs_f64(self.server.body_timeout_s.max(0.1));
        tokio::time::timeout(timeout, read).await.map_err(|_| {
            ApiError::new(
                ErrorKind::BodyTimeout,
                format!(
                    "the request body did not arrive within {:.0} s",
                    timeout.as_secs_f64()
                ),
            )
        })?
    }

    /// Reserve the body budget for a request with these headers (its Content-Length; 503
    /// SERVER_BUSY when other uploads hold the budget); released when the permit drops.
    pub(crate) fn reserve_body(
        &self,
        headers: &HeaderMap,
    ) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
        let announced = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let want_kib = self.server.body_reservation(announced).div_ceil(1024);
        u32::try_from(want_kib)
            .ok()
            .and_then(|kib| self.body_budget.try_acquire_many(kib).ok())
            .ok_or_else(|| {
                ApiError::new(
                    ErrorKind::Busy,
                    format!(
                        "the server is receiving its maximum of uploads ({} MiB of bodies); retry shortly",
                        self.server.body_memory_mb
                    ),
                )
            })
    }
}

/// True when running inside AWS Lambda (the runtime API address is set).
pub fn in_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some_and(|v| !v.is_empty())
}

/// State shared by every request.
pub struct AppState {
    pub pipeline: Pipeline,
    pub server: ServerConfig,
    pub started: Instant,
    /// At most `max_concurrency` verifications run at once (CPU-bound work; more only costs memory).
    permits: tokio::sync::Semaphore,
    /// The body budget, in KiB.
    body_budget: tokio::sync::Semaphore,
    /// Set by the first verification (the EMF cold-start flag).
    first_verification_done: std::sync::atomic::AtomicBool,
    /// Uploads through object storage (`POST /v1/uploads`, `GET /v1/results/{id}`); `None` = off.
    pub uploads: Option<uploads::Uploads>,
    /// Capture sessions: the single-use store and the per-client failure counts.
    pub(crate) sessions: sessions::SessionStore,
}

/// Response of `POST /v1/liveness`: the verdict plus a request id.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LivenessResponse {
    /// Correlates the answer with the server logs (API Gateway's request id inside Lambda).
    pub request_id: String,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// Response of `GET /health`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// "ok" when the models are loaded (the server does not answer before that).
    pub status: &'static str,
    pub version: &'static str,
    /// Where the models were loaded from.
    pub model_source: String,
    pub models: Vec<ekyc_core::ModelInfo>,
    pub liveness_threshold: f32,
    /// How the fused score is calibrated into `liveness_score`: `none` or the Platt parameters
    /// `a,b` (`sigmoid(a·logit(raw) + b)`).
    pub liveness_calibration: String,
    pub uptime_s: f64,
}

/// Build the router. `state` holds the loaded models; nothing is loaded per request.
pub fn router(state: Arc<AppState>) -> Router {
    let server = state.server.clone();
    // The API routes need a key when keys are configured; /health, /openapi.json and the demo
    // page do not.
    let api = Router::new()
        .route("/v1/liveness", post(liveness))
        .route("/v1/uploads", post(uploads::create))
        .route("/v1/results/{id}", get(uploads::result))
        .route("/v1/sessions", post(sessions::create))
        .route("/v1/sessions/{id}/verify", post(sessions::verify))
        .route("/v1/sessions/{id}/result", get(sessions::result))
        .route("/v1/sessions/{id}/match", post(face_match::session_match))
        .route("/v1/match", post(face_match::match_images))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ));
    let mut routes = api
        .route("/health", get(health))
        .route("/openapi.json", get(openapi::serve));
    if server.demo {
        routes = routes.merge(demo::routes());
    }
    let mut app = routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    if let Some(cors) = cors_layer(&server) {
        app = app.layer(cors);
    }
    // REST API (v1) events carry the stage in the path (/Prod/v1/liveness); strip it before routing.
    Router::new()
        .fallback_service(app)
        .layer(axum::middleware::map_request(strip_stage))
}

async fn strip_stage(mut req: Request) -> Request {
    use lambda_http::request::RequestContext;
    use lambda_http::RequestExt;
    let stage = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(c)) => c.stage.clone(),
        _ => None,
    };
    let Some(stage) = stage else { return req };
    let prefix = format!("/{stage}/");
    let path = req.uri().path();
    if let Some(rest) = path.strip_prefix(prefix.as_str()) {
        let pq = match req.uri().query() {
            Some(q) => format!("/{rest}?{q}"),
            None => format!("/{rest}"),
        };
        let mut parts = req.uri().clone().into_parts();
        if let Ok(pq) = pq.parse() {
            parts.path_and_query = Some(pq);
            if let Ok(uri) = axum::http::Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
    req
}

fn cors_layer(cfg: &ServerConfig) -> Option<tower_http::cors::CorsLayer> {
    let origins: Vec<HeaderValue> = cfg
        .cors_origins
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty() && *o != "*")
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        tower_http::cors::CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
            .allow_credentials(false)
            .max_age(std::time::Duration::from_secs(600)),
    )
}

async fn not_found(req: Request) -> ApiError {
    drain(req).await;
    ApiError::new(ErrorKind::NotFound, "no such endpoint; see /openapi.json")
}

async fn method_not_allowed(req: Request) -> ApiError {
    drain(req).await;
    ApiError::new(
        ErrorKind::MethodNotAllowed,
        "method not allowed on this endpoint",
    )
}

/// Read (and drop) a request body, up to a bound, before answering an error: a client still
/// uploading then gets the JSON answer instead of a reset connection.
/// The body is not kept (frames are dropped as they come), and a slow client gets at most 5 s.
pub(crate) async fn drain(req: Request) {
    use http_body_util::BodyExt;
    let mut body = req.into_body();
    let read = async {
        let mut seen = 0usize;
        while seen < 16 * 1024 * 1024 {
            match body.frame().await {
                Some(Ok(frame)) => seen += frame.data_ref().map_or(0, |d| d.len()),
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), read).await;
}

/// The request id: API Gateway's (inside Lambda), else the client's X-Request-Id, else a new UUID.
fn request_id(req: &Request) -> String {
    use lambda_http::request::RequestContext;
    use lambda_http::RequestExt;
    if let Some(ctx) = req.request_context_ref() {
        let id = match ctx {
            RequestContext::ApiGatewayV2(c) => c.request_id.clone(),
            RequestContext::ApiGatewayV1(c) => c.request_id.clone(),
            _ => None,
        };
        if let Some(id) = id.filter(|s| !s.is_empty()) {
            return id;
        }
    }
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

#[utoipa::path(
    post,
    path = "/v1/liveness",
    params(("enable_checks" = Option<bool>, Query, description = "Run the quality gate first (default true). false: score liveness on the largest face.")),
    request_body(description = "The selfie: multipart/form-data with field `file` (the prototype's contract), or a raw image/jpeg|png|webp body, or JSON {\"image\": \"<base64>\"}.",
        content(
            (input::MultipartUpload = "multipart/form-data"),
            (Vec<u8> = "image/jpeg"),
            (Vec<u8> = "image/png"),
            (Vec<u8> = "image/webp"),
            (input::Base64Image = "application/json"),
        )),
    responses(
        (status = 200, description = "A verdict: LIVE, SPOOF, QUALITY_FAILED (with reasons) or NO_FACE", body = LivenessResponse),
        (status = 400, description = "Malformed multipart, missing file, bad JSON/base64, bad query, empty image", body = error::ErrorBody),
        (status = 401, description = "API keys are configured and the request has no accepted bearer key", body = error::ErrorBody),
        (status = 408, description = "The body did not arrive within the body timeout", body = error::ErrorBody),
        (status = 413, description = "Body or image over the limits", body = error::ErrorBody),
        (status = 415, description = "Unsupported content type or image format", body = error::ErrorBody),
        (status = 422, description = "Truncated or corrupt image", body = error::ErrorBody),
        (status = 500, description = "Server fault (no internals in the message)", body = error::ErrorBody),
    )
)]
async fn liveness(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let t0 = Instant::now();
    let id = request_id(&req);
    let result = handle_liveness(state.clone(), req).await;
    let status = match &result {
        Ok(_) => StatusCode::OK,
        Err(e) => e.status(),
    };
    emit_metrics(&state, &result, t0);
    match result {
        Ok(v) => {
            tracing::info!(
                request_id = %id,
                http_status = 200,
                verdict = ?v.status,
                liveness_score = v.liveness_score,
                reasons = ?v.reasons.iter().map(|r| r.code.as_str()).collect::<Vec<_>>(),
                decode_ms = v.timings.decode_ms,
                detect_ms = v.timings.detect_ms,
                quality_ms = v.timings.quality_ms,
                liveness_ms = v.timings.liveness_ms,
                total_ms = t0.elapsed().as_secs_f64() * 1e3,
                "verified"
            );
            let mut resp = Json(LivenessResponse {
                request_id: id.clone(),
                verdict: v,
            })
            .into_response();
            set_request_id(resp.headers_mut(), &id);
            resp
        }
        Err(e) => {
            if let Some(detail) = &e.detail {
                tracing::error!(request_id = %id, http_status = status.as_u16(), code = e.code(), error = %detail, "internal error");
            } else {
                tracing::info!(request_id = %id, http_status = status.as_u16(), code = e.code(), total_ms = t0.elapsed().as_secs_f64() * 1e3, "rejected");
            }
            let mut resp = e.with_request_id(&id).into_response();
            set_request_id(resp.headers_mut(), &id);
            resp
        }
    }
}

/// One CloudWatch EMF line for this verification (when metrics are on): the verdict with its
/// reasons and stage timings, a refused input with its code, or a server fault.
fn emit_metrics(state: &AppState, result: &Result<Verdict, ApiError>, t0: Instant) {
    use ekyc_core::metrics::{ModelSource, Verification};
    let m = &state.server.metrics;
    if !m.enabled {
        return;
    }
    let event = match result {
        Ok(v) => Verification::verdict(v),
        Err(e) if e.kind == ErrorKind::Internal => Verification::failed(Some(e.code())),
        Err(e) => Verification::error(e.code()),
    };
    let cold = !state
        .first_verification_done
        .swap(true, std::sync::atomic::Ordering::Relaxed);
    let event = event
        .with_request_ms(t0.elapsed().as_secs_f64() * 1e3)
        .with_cold_start(cold)
        .with_model_source(ModelSource::from_origin(state.pipeline.origin()));
    if let Some(line) = m.line(event) {
        println!("{line}");
    }
}

fn set_request_id(h: &mut HeaderMap, id: &str) {
    if let Ok(v) = HeaderValue::from_str(id) {
        h.insert("x-request-id", v);
    }
}

async fn handle_liveness(state: Arc<AppState>, req: Request) -> Result<Verdict, ApiError> {
    // Read the (bounded) body before answering anything, so a client streaming a large upload gets
    // the error instead of a reset connection.
    let query = req.uri().query().map(str::to_string);
    let limit = state.server.max_body_bytes;
    let _body = state.reserve_body(req.headers())?;
    // A stalled or trickling upload is cut after the body timeout; its buffer is dropped with it.
    let image = state
        .within_body_timeout(input::read_image(req, limit))
        .await?;
    let opts = input::parse_query(query.as_deref())?;
    let _permit = state
        .permits
        .acquire()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let st = state.clone();
    let run = tokio::task::spawn_blocking(move || st.pipeline.run(&image, opts))
        .await
        .map_err(|e| ApiError::internal(&e))?;
    run.map_err(|e| ApiError::from(&e))
}

#[utoipa::path(get, path = "/health", responses((status = 200, description = "Models are loaded", body = Health)))]
async fn health(State(state): State<Arc<AppState>>) -> Json<Health> {
    let p = &state.pipeline;
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        model_source: p.origin().to_string(),
        models: p.models().to_vec(),
        liveness_threshold: p.config().decision.liveness_threshold,
        liveness_calibration: p.config().decision.calibration.describe(),
        uptime_s: state.started.elapsed().as_secs_f64(),
    })
}

/// Memory kept for the process itself (models, plans, runtime, connection buffers) when the
/// decode budget is planned: docs/performance.md measures ~50–120 MiB of RSS. Request bodies have
/// their own budget ([`ServerConfig::body_memory_mb`]).
pub const PROCESS_RESERVE_BYTES: u64 = 160 << 20;

/// The memory plan does not fit: not even one decode fits in the configured memory.
#[derive(Debug, thiserror::Error)]
#[error("EKYC_MEMORY_MB={memory_mb} leaves no room for one decode of {budget_mb} MiB (EKYC_MAX_DECODE_MB) after the process reserve of {reserve_mb} MiB and the body budget of {body_mb} MiB (EKYC_BODY_MEMORY_MB)")]
pub struct MemoryPlanError {
    pub memory_mb: u64,
    pub budget_mb: u64,
    pub reserve_mb: u64,
    pub body_mb: u64,
}

/// The worst-case memory of the process, in bytes: the reserve, the body budget, and every permit
/// decoding at the full decode budget.
pub fn worst_case_bytes(server: &ServerConfig, permits: usize, decode_budget: u64) -> u64 {
    PROCESS_RESERVE_BYTES + (server.body_memory_mb << 20) + permits as u64 * decode_budget
}

/// Verifications allowed at once: the configured number (0 = CPUs), lowered so that
/// `reserve + body budget + permits × decode budget ≤ memory` when the memory is known.
pub fn plan_permits(server: &ServerConfig, decode_budget: u64) -> Result<usize, MemoryPlanError> {
    let wanted = match server.max_concurrency {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let Some(memory_mb) = server.memory_mb else {
        return Ok(wanted);
    };
    let fit = (memory_mb << 20)
        .saturating_sub(PROCESS_RESERVE_BYTES + (server.body_memory_mb << 20))
        / decode_budget.max(1);
    if fit == 0 {
        return Err(MemoryPlanError {
            memory_mb,
            budget_mb: decode_budget >> 20,
            reserve_mb: PROCESS_RESERVE_BYTES >> 20,
            body_mb: server.body_memory_mb,
        });
    }
    let permits = wanted.min(usize::try_from(fit).unwrap_or(usize::MAX));
    if permits < wanted {
        tracing::warn!(
            wanted,
            permits,
            memory_mb,
            "concurrency lowered to fit the memory"
        );
    }
    Ok(permits)
}

impl AppState {
    /// Wrap a loaded pipeline (built once per process), with as many concurrency permits as the
    /// memory plan allows ([`plan_permits`]).
    pub fn new(pipeline: Pipeline, server: ServerConfig) -> Result<Arc<AppState>, MemoryPlanError> {
        AppState::new_with_uploads(pipeline, server, None)
    }

    /// [`AppState::new`] with uploads through object storage (`None` = the upload routes answer
    /// 404 `UPLOADS_DISABLED`).
    pub fn new_with_uploads(
        pipeline: Pipeline,
        server: ServerConfig,
        uploads: Option<uploads::Uploads>,
    ) -> Result<Arc<AppState>, MemoryPlanError> {
        AppState::new_with_stores(pipeline, server, uploads, sessions::SessionStore::default())
    }

    /// [`AppState::new_with_uploads`] with capture sessions in `sessions` (object storage, so
    /// that several instances share them, or this process's memory).
    pub fn new_with_stores(
        pipeline: Pipeline,
        server: ServerConfig,
        uploads: Option<uploads::Uploads>,
        sessions: sessions::SessionStore,
    ) -> Result<Arc<AppState>, MemoryPlanError> {
        let budget = pipeline.config().limits.max_decode_bytes;
        let n = plan_permits(&server, budget)?;
        tracing::info!(
            permits = n,
            worst_case_mb = worst_case_bytes(&server, n, budget) >> 20,
            "memory plan"
        );
        // At least one largest body always fits.
        let body_kib = (server.body_memory_mb << 10)
            .max(server.body_reservation(None).div_ceil(1024))
            .min(u64::from(u32::MAX));
        Ok(Arc::new(AppState {
            pipeline,
            server,
            started: Instant::now(),
            permits: tokio::sync::Semaphore::new(n),
            body_budget: tokio::sync::Semaphore::new(body_kib as usize),
            first_verification_done: std::sync::atomic::AtomicBool::new(false),
            uploads,
            sessions,
        }))
    }

    /// The number of verifications that may run at once.
    pub fn permits(&self) -> usize {
        self.permits.available_permits()
    }
}

/// Serve: inside AWS Lambda via lambda_http, else on `host:port`.
pub async fn serve(state: Arc<AppState>) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let app = router(state.clone());
    if in_lambda() {
        tracing::info!("serving through the AWS Lambda runtime API");
        return lambda_http::run(app)
            .await
            .map_err(|e| e as Box<dyn std::error::Error + Send + Sync>);
    }
    let s = &state.server;
    let listener = tokio::net::TcpListener::bind((s.host.as_str(), s.port)).await?;
    tracing::info!(address = %listener.local_addr()?, "listening");
    // SIGTERM or SIGINT: stop accepting, let requests in flight finish, but never wait longer than
    // the grace period (a stalled client cannot hold the process).
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let grace = std::time::Duration::from_secs_f64(s.shutdown_grace_s.max(0.0));
    listen::run(listener, app, s.connection_limits(), stop_rx, grace).await;
    Ok(())
}

/// SIGTERM (what Lambda, systemd, Kubernetes and `kill` send) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_fit_the_memory() {
        let mut s = ServerConfig {
            max_concurrency: 8,
            ..ServerConfig::default()
        };
        let budget = 256 << 20;
        assert_eq!(
            plan_permits(&s, budget).ok(),
            Some(8),
            "no memory given: as configured"
        );
        // The template's Lambda size: (1769 - 160 reserve - 128 bodies) / 256 = 5.
        s.memory_mb = Some(1769);
        assert_eq!(plan_permits(&s, budget).ok(), Some(5));
        assert!(worst_case_bytes(&s, 5, budget) <= 1769 << 20);
        s.memory_mb = Some(600);
        assert_eq!(plan_permits(&s, budget).ok(), Some(1));
        s.memory_mb = Some(300);
        assert!(
            plan_permits(&s, budget).is_err(),
            "not even one decode fits"
        );
    }
}
