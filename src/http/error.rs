//! API errors: one JSON shape, one table from stable codes to HTTP statuses.

use crate::error::Error;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// `{"error": {"code": "...", "message": "..."}}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code (see README "Error codes").
    pub code: String,
    /// Human-readable explanation; never contains internals.
    pub message: String,
    /// Correlates with the server logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// An error answer of the API.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub request_id: Option<String>,
}

/// The one table: error code → HTTP status.
pub fn status_for(code: &str) -> StatusCode {
    match code {
        "MALFORMED_MULTIPART"
        | "MISSING_FILE"
        | "BAD_JSON"
        | "BAD_BASE64"
        | "BAD_QUERY"
        | "EMPTY_IMAGE" => StatusCode::BAD_REQUEST,
        "NOT_FOUND" => StatusCode::NOT_FOUND,
        "METHOD_NOT_ALLOWED" => StatusCode::METHOD_NOT_ALLOWED,
        "BODY_TOO_LARGE" | "IMAGE_TOO_MANY_BYTES" | "IMAGE_TOO_LARGE" => {
            StatusCode::PAYLOAD_TOO_LARGE
        }
        "UNSUPPORTED_MEDIA_TYPE" | "NOT_AN_IMAGE" | "UNSUPPORTED_FORMAT" => {
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        }
        "TRUNCATED_IMAGE" | "CORRUPT_IMAGE" => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    pub fn new(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: status_for(code),
            code,
            message: message.into(),
            request_id: None,
        }
    }

    /// A genuine server fault: logged in full, answered without internals.
    pub fn internal(request_id: &str, detail: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(request_id, error = %detail, "internal error");
        ApiError::new("INTERNAL", "internal server error").with_request_id(request_id)
    }

    pub fn with_request_id(mut self, id: &str) -> ApiError {
        self.request_id = Some(id.to_string());
        self
    }

    /// Map a core error. Input problems keep their code and message; model faults become INTERNAL.
    pub fn from_core(e: &Error, request_id: &str) -> ApiError {
        match e {
            Error::Decode(d) => ApiError::new(d.code(), d.to_string()).with_request_id(request_id),
            other => ApiError::internal(request_id, other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                request_id: self.request_id,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}
