//! Face match over HTTP: `POST /v1/match` (a selfie and a document photo) and
//! `POST /v1/sessions/{id}/match` (a verified capture session's reference frame and a document).
//! The work is `ekyc_core::Pipeline::match_images` / `match_reference`; this module reads the two
//! images (bounded), maps errors to their codes (a decode error names its side) and answers.
//! Neither the embeddings nor the similarity are logged.

use crate::error::{ApiError, ErrorKind};
use crate::{input, request_id, set_request_id, AppState};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ekyc_core::face_match::MatchOutcome;
use ekyc_core::pipeline::MatchSide;
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;

/// Response of `POST /v1/match`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MatchResponse {
    pub request_id: String,
    #[serde(flatten)]
    pub outcome: MatchOutcome,
}

/// Response of `POST /v1/sessions/{id}/match`: the outcome against the session's reference
/// frame, whose liveness is the session's status.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionMatchResponse {
    pub request_id: String,
    pub session_id: String,
    /// The session's status (LIVE, SPOOF or RETRY).
    pub session_status: String,
    #[serde(flatten)]
    pub outcome: MatchOutcome,
}

/// multipart/form-data body of `POST /v1/match` (for the OpenAPI schema).
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
pub(crate) struct MatchUpload {
    /// The selfie (JPEG, PNG or WebP).
    #[schema(value_type = String, format = Binary)]
    pub selfie: Vec<u8>,
    /// The identity document's photo page.
    #[schema(value_type = String, format = Binary)]
    pub document: Vec<u8>,
}

/// JSON body of `POST /v1/match`: base64 strings (for the OpenAPI schema).
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
pub(crate) struct MatchBase64 {
    pub selfie: String,
    pub document: String,
}

/// The body of a match request, bounded: two images (multipart or base64 JSON, which carries
/// 4/3 of the bytes). Reserves the body budget like `POST /v1/liveness`.
async fn read_images(
    state: &AppState,
    req: Request,
    names: &[&str],
) -> Result<Vec<Vec<u8>>, ApiError> {
    let ctype = input::content_type(&req);
    let limit = state.server.max_body_bytes;
    let _budget = match state.reserve_body(req.headers()) {
        Ok(b) => b,
        Err(e) => {
            crate::drain(req).await;
            return Err(e);
        }
    };
    let body = state
        .within_body_timeout(input::read_body(req, input::body_limit_for(&ctype, limit)))
        .await?;
    let image_limit = state.pipeline.config().limits.max_image_bytes.min(limit);
    input::named_images(&ctype, body, names, image_limit).await
}

/// A core error of one side, with the side in its message.
fn side_error(side: MatchSide, e: &ekyc_core::Error) -> ApiError {
    if matches!(e, ekyc_core::Error::NoEmbeddingModel) {
        return ApiError::new(
            ErrorKind::MatchUnavailable,
            "face match is not available: this server has no face-embedding model or no match threshold",
        );
    }
    let mut api = ApiError::from(e);
    if api.kind != ErrorKind::Internal {
        api.message = format!("{}: {}", side.as_str(), api.message);
    }
    api
}

/// Run a match on the blocking pool under a verification permit.
async fn run_match<F>(state: &Arc<AppState>, f: F) -> Result<MatchOutcome, ApiError>
where
    F: FnOnce(&ekyc_core::Pipeline) -> Result<MatchOutcome, (MatchSide, ekyc_core::Error)>
        + Send
        + 'static,
{
    let _permit = state
        .permits
        .acquire()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let st = state.clone();
    tokio::task::spawn_blocking(move || f(&st.pipeline))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|(side, e)| side_error(side, &e))
}

fn log_outcome(id: &str, route: &'static str, o: &MatchOutcome, t0: Instant) {
    tracing::info!(
        request_id = %id,
        route,
        http_status = 200,
        is_match = o.is_match,
        reasons = ?o.reasons.iter().map(|r| r.code.as_str()).collect::<Vec<_>>(),
        selfie_ms = o.timings.selfie_ms,
        document_ms = o.timings.document_ms,
        embed_ms = o.timings.embed_ms,
        total_ms = t0.elapsed().as_secs_f64() * 1e3,
        "matched"
    );
}

fn error_response(id: &str, route: &'static str, e: ApiError) -> Response {
    let status = e.status();
    match &e.detail {
        Some(detail) => {
            tracing::error!(request_id = %id, route, http_status = status.as_u16(), code = e.code(), error = %detail, "internal error");
        }
        None => {
            tracing::info!(request_id = %id, route, http_status = status.as_u16(), code = e.code(), "match refused");
        }
    }
    let mut resp = e.with_request_id(id).into_response();
    set_request_id(resp.headers_mut(), id);
    resp
}

#[utoipa::path(
    post,
    path = "/v1/match",
    params(
        ("require_live" = Option<bool>, Query, description = "Answer no match unless the selfie is LIVE (default true)."),
        ("enable_checks" = Option<bool>, Query, description = "Run the selfie's quality gate (default true)."),
    ),
    request_body(description = "The selfie and the document photo: multipart/form-data with fields `selfie` and `document`, or JSON {\"selfie\": \"<base64>\", \"document\": \"<base64>\"}.",
        content(
            (MatchUpload = "multipart/form-data"),
            (MatchBase64 = "application/json"),
        )),
    responses(
        (status = 200, description = "The match outcome: match, similarity, threshold, reasons, the selfie's liveness verdict and the document face", body = MatchResponse),
        (status = 400, description = "Malformed multipart, a missing field, bad JSON/base64, bad query, empty image", body = crate::error::ErrorBody),
        (status = 401, description = "API keys are configured and the request has no accepted bearer key", body = crate::error::ErrorBody),
        (status = 413, description = "Body or an image over the limits", body = crate::error::ErrorBody),
        (status = 415, description = "Unsupported content type or image format (the message names the side)", body = crate::error::ErrorBody),
        (status = 422, description = "Truncated or corrupt image (the message names the side)", body = crate::error::ErrorBody),
        (status = 501, description = "MATCH_UNAVAILABLE: no face-embedding model or threshold configured", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn match_images(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let t0 = Instant::now();
    let id = request_id(&req);
    let query = req.uri().query().map(str::to_string);
    let result = async {
        let opts = match input::parse_match_query(query.as_deref()) {
            Ok(o) => o,
            Err(e) => {
                crate::drain(req).await;
                return Err(e);
            }
        };
        let mut images = read_images(&state, req, &["selfie", "document"]).await?;
        let document = images.pop().unwrap_or_default();
        let selfie = images.pop().unwrap_or_default();
        run_match(&state, move |p| p.match_images(&selfie, &document, opts)).await
    }
    .await;
    match result {
        Ok(outcome) => {
            log_outcome(&id, "/v1/match", &outcome, t0);
            let mut resp = Json(MatchResponse {
                request_id: id.clone(),
                outcome,
            })
            .into_response();
            set_request_id(resp.headers_mut(), &id);
            resp
        }
        Err(e) => error_response(&id, "/v1/match", e),
    }
}

#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/match",
    params(
        ("id" = String, Path, description = "The session id"),
        ("require_live" = Option<bool>, Query, description = "Answer no match unless the session is LIVE (default true)."),
    ),
    request_body(description = "The document photo: multipart/form-data field `document`, or JSON {\"document\": \"<base64>\"}.",
        content(
            (Vec<u8> = "multipart/form-data"),
            (MatchBase64 = "application/json"),
        )),
    responses(
        (status = 200, description = "The match outcome against the session's reference frame", body = SessionMatchResponse),
        (status = 404, description = "SESSION_NOT_FOUND", body = crate::error::ErrorBody),
        (status = 409, description = "SESSION_PENDING (not verified yet) or SESSION_NO_REFERENCE (no reference frame kept)", body = crate::error::ErrorBody),
        (status = 410, description = "SESSION_EXPIRED without a verification", body = crate::error::ErrorBody),
        (status = 501, description = "MATCH_UNAVAILABLE", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn session_match(
    State(state): State<Arc<AppState>>,
    Path(session_id): Path<String>,
    req: Request,
) -> Response {
    let t0 = Instant::now();
    let id = request_id(&req);
    let query = req.uri().query().map(str::to_string);
    let result = async {
        let early = async {
            let opts = input::parse_match_query(query.as_deref())?;
            let (status, reference) = crate::sessions::reference_of(&state, &session_id).await?;
            Ok::<_, ApiError>((opts, status, reference))
        };
        let (opts, status, reference) = match early.await {
            Ok(x) => x,
            Err(e) => {
                crate::drain(req).await;
                return Err(e);
            }
        };
        let mut images = read_images(&state, req, &["document"]).await?;
        let document = images.pop().unwrap_or_default();
        let is_live = status == "LIVE";
        let outcome = run_match(&state, move |p| {
            p.match_reference(&reference, is_live, &document, opts)
        })
        .await?;
        Ok((status, outcome))
    }
    .await;
    match result {
        Ok((status, outcome)) => {
            log_outcome(&id, "/v1/sessions/{id}/match", &outcome, t0);
            let mut resp = (
                StatusCode::OK,
                Json(SessionMatchResponse {
                    request_id: id.clone(),
                    session_id,
                    session_status: status,
                    outcome,
                }),
            )
                .into_response();
            set_request_id(resp.headers_mut(), &id);
            resp
        }
        Err(e) => error_response(&id, "/v1/sessions/{id}/match", e),
    }
}
