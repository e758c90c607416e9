//! API errors: one JSON shape; the HTTP status and the stable code come from the error's kind
//! (a typed enum, no string matching). Logging is the handler's job, not the constructor's.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ekyc_core::error::{DecodeError, Error};
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

/// What went wrong, as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    MalformedMultipart,
    MissingFile,
    BadJson,
    BadBase64,
    BadQuery,
    EmptyImage,
    /// The body ended before its announced Content-Length.
    IncompleteBody,
    /// The body did not arrive within the body timeout.
    BodyTimeout,
    /// No accepted API key.
    Unauthorized,
    NotFound,
    MethodNotAllowed,
    BodyTooLarge,
    UnsupportedMediaType,
    /// The image could not be decoded (its code is the decoder error's).
    Decode(DecodeKind),
    Internal,
}

/// The decode failures, by [`DecodeError`] variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeKind {
    Empty,
    TooManyBytes,
    NotAnImage,
    UnsupportedFormat,
    TooLarge,
    Truncated,
    Corrupt,
}

impl DecodeKind {
    /// The kind of a decode error.
    pub fn of(e: &DecodeError) -> DecodeKind {
        match e {
            DecodeError::Empty => DecodeKind::Empty,
            DecodeError::TooManyBytes { .. } => DecodeKind::TooManyBytes,
            DecodeError::NotAnImage => DecodeKind::NotAnImage,
            DecodeError::UnsupportedFormat(_) => DecodeKind::UnsupportedFormat,
            DecodeError::TooLarge { .. } => DecodeKind::TooLarge,
            DecodeError::Truncated { .. } => DecodeKind::Truncated,
            // DecodeError is non-exhaustive: a new variant is corruption until mapped here.
            _ => DecodeKind::Corrupt,
        }
    }
}

impl ErrorKind {
    /// Every kind (for the README's table test).
    pub const ALL: [ErrorKind; 21] = [
        ErrorKind::MalformedMultipart,
        ErrorKind::MissingFile,
        ErrorKind::BadJson,
        ErrorKind::BadBase64,
        ErrorKind::BadQuery,
        ErrorKind::EmptyImage,
        ErrorKind::IncompleteBody,
        ErrorKind::BodyTimeout,
        ErrorKind::Unauthorized,
        ErrorKind::NotFound,
        ErrorKind::MethodNotAllowed,
        ErrorKind::BodyTooLarge,
        ErrorKind::UnsupportedMediaType,
        ErrorKind::Decode(DecodeKind::Empty),
        ErrorKind::Decode(DecodeKind::TooManyBytes),
        ErrorKind::Decode(DecodeKind::NotAnImage),
        ErrorKind::Decode(DecodeKind::UnsupportedFormat),
        ErrorKind::Decode(DecodeKind::TooLarge),
        ErrorKind::Decode(DecodeKind::Truncated),
        ErrorKind::Decode(DecodeKind::Corrupt),
        ErrorKind::Internal,
    ];

    /// Stable machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::MalformedMultipart => "MALFORMED_MULTIPART",
            ErrorKind::MissingFile => "MISSING_FILE",
            ErrorKind::BadJson => "BAD_JSON",
            ErrorKind::BadBase64 => "BAD_BASE64",
            ErrorKind::BadQuery => "BAD_QUERY",
            ErrorKind::EmptyImage | ErrorKind::Decode(DecodeKind::Empty) => "EMPTY_IMAGE",
            ErrorKind::IncompleteBody => "INCOMPLETE_BODY",
            ErrorKind::BodyTimeout => "BODY_TIMEOUT",
            ErrorKind::Unauthorized => "UNAUTHORIZED",
            ErrorKind::NotFound => "NOT_FOUND",
            ErrorKind::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            ErrorKind::BodyTooLarge => "BODY_TOO_LARGE",
            ErrorKind::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            ErrorKind::Decode(DecodeKind::TooManyBytes) => "IMAGE_TOO_MANY_BYTES",
            ErrorKind::Decode(DecodeKind::NotAnImage) => "NOT_AN_IMAGE",
            ErrorKind::Decode(DecodeKind::UnsupportedFormat) => "UNSUPPORTED_FORMAT",
            ErrorKind::Decode(DecodeKind::TooLarge) => "IMAGE_TOO_LARGE",
            ErrorKind::Decode(DecodeKind::Truncated) => "TRUNCATED_IMAGE",
            ErrorKind::Decode(DecodeKind::Corrupt) => "CORRUPT_IMAGE",
            ErrorKind::Internal => "INTERNAL",
        }
    }

    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::MalformedMultipart
            | ErrorKind::MissingFile
            | ErrorKind::BadJson
            | ErrorKind::BadBase64
            | ErrorKind::BadQuery
            | ErrorKind::EmptyImage
            | ErrorKind::IncompleteBody
            | ErrorKind::Decode(DecodeKind::Empty) => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::BodyTooLarge
            | ErrorKind::Decode(DecodeKind::TooManyBytes | DecodeKind::TooLarge) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ErrorKind::UnsupportedMediaType
            | ErrorKind::Decode(DecodeKind::NotAnImage | DecodeKind::UnsupportedFormat) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            ErrorKind::Decode(DecodeKind::Truncated | DecodeKind::Corrupt) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error answer of the API.
#[derive(Debug)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    pub request_id: Option<String>,
    /// For the server log only (a server fault's cause); never sent.
    pub detail: Option<String>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
            request_id: None,
            detail: None,
        }
    }

    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// A genuine server fault: answered without internals; `detail` goes to the log line.
    pub fn internal(detail: &dyn std::fmt::Display) -> ApiError {
        let mut e = ApiError::new(ErrorKind::Internal, "internal server error");
        e.detail = Some(detail.to_string());
        e
    }

    pub fn with_request_id(mut self, id: &str) -> ApiError {
        self.request_id = Some(id.to_string());
        self
    }
}

impl From<&Error> for ApiError {
    /// Input problems keep their code and message; model faults become INTERNAL.
    fn from(e: &Error) -> ApiError {
        match e {
            Error::Decode(d) => ApiError::new(ErrorKind::Decode(DecodeKind::of(d)), d.to_string()),
            other => ApiError::internal(&ekyc_core::error::chain(other)),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.kind.code().to_string(),
                message: self.message,
                request_id: self.request_id,
            },
        };
        (self.kind.status(), axum::Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_decode_error_maps_to_its_own_code() {
        let cases = [
            DecodeError::Empty,
            DecodeError::TooManyBytes { size: 2, limit: 1 },
            DecodeError::NotAnImage,
            DecodeError::UnsupportedFormat("GIF".into()),
            DecodeError::TooLarge {
                width: 1,
                height: 1,
                limit: "x".into(),
            },
        ];
        for d in cases {
            let kind = ErrorKind::Decode(DecodeKind::of(&d));
            assert_eq!(kind.code(), d.code(), "{d:?}");
            assert!(kind.status().is_client_error());
        }
    }

    #[test]
    fn only_internal_is_a_server_error() {
        for k in ErrorKind::ALL {
            assert_eq!(
                k.status().is_server_error(),
                k == ErrorKind::Internal,
                "{k:?}"
            );
        }
    }
}
