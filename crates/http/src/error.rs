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
    /// The request head is not valid HTTP/1.1 (answered below the router).
    BadRequest,
    /// Content-Length is not one decimal number, or conflicts with Transfer-Encoding.
    BadContentLength,
    /// The request head did not arrive within the header timeout.
    HeaderTimeout,
    /// The request target is longer than the server accepts.
    UriTooLong,
    /// The request head is larger, or has more header fields, than the server accepts.
    HeadersTooLarge,
    /// Not HTTP/1.0 or HTTP/1.1 (HTTP/2 is not served in cleartext).
    HttpVersion,
    /// The server holds its maximum of open connections.
    TooManyConnections,
    /// The memory for request bodies is in use by other uploads.
    Busy,
    /// `POST /v1/uploads` / `GET /v1/results/{id}` on a server without an uploads bucket.
    UploadsDisabled,
    /// The id of `GET /v1/results/{id}` is not a UUID.
    BadUploadId,
    /// No upload or result under this id for this caller.
    ResultNotFound,
    /// The id of a `/v1/sessions/{id}` route is not a session id (32 hex digits).
    BadSessionId,
    /// No session under this id (never created, or forgotten after its expiry).
    SessionNotFound,
    /// The session was verified already (a session is verified once).
    SessionUsed,
    /// The session expired before it was verified.
    SessionExpired,
    /// The session was not verified yet (`GET /v1/sessions/{id}/result`).
    SessionPending,
    /// The frames of `POST /v1/sessions/{id}/verify` are malformed (no frame, bad timestamps).
    BadFrames,
    /// Too many failed sessions from this client recently.
    TooManyFailures,
    /// `POST /v1/sessions/{id}/match` on a session whose result kept no reference frame.
    SessionNoReference,
    /// A face match was asked of a server without a face-embedding model or match threshold.
    MatchUnavailable,
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
    pub const ALL: [ErrorKind; 41] = [
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
        ErrorKind::BadRequest,
        ErrorKind::BadContentLength,
        ErrorKind::HeaderTimeout,
        ErrorKind::UriTooLong,
        ErrorKind::HeadersTooLarge,
        ErrorKind::HttpVersion,
        ErrorKind::TooManyConnections,
        ErrorKind::Busy,
        ErrorKind::UploadsDisabled,
        ErrorKind::BadUploadId,
        ErrorKind::ResultNotFound,
        ErrorKind::BadSessionId,
        ErrorKind::SessionNotFound,
        ErrorKind::SessionUsed,
        ErrorKind::SessionExpired,
        ErrorKind::SessionPending,
        ErrorKind::BadFrames,
        ErrorKind::TooManyFailures,
        ErrorKind::SessionNoReference,
        ErrorKind::MatchUnavailable,
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
            ErrorKind::BadRequest => "BAD_REQUEST",
            ErrorKind::BadContentLength => "BAD_CONTENT_LENGTH",
            ErrorKind::HeaderTimeout => "HEADER_TIMEOUT",
            ErrorKind::UriTooLong => "URI_TOO_LONG",
            ErrorKind::HeadersTooLarge => "HEADERS_TOO_LARGE",
            ErrorKind::HttpVersion => "HTTP_VERSION_NOT_SUPPORTED",
            ErrorKind::TooManyConnections => "TOO_MANY_CONNECTIONS",
            ErrorKind::Busy => "SERVER_BUSY",
            ErrorKind::UploadsDisabled => "UPLOADS_DISABLED",
            ErrorKind::BadUploadId => "BAD_UPLOAD_ID",
            ErrorKind::ResultNotFound => "RESULT_NOT_FOUND",
            ErrorKind::BadSessionId => "BAD_SESSION_ID",
            ErrorKind::SessionNotFound => "SESSION_NOT_FOUND",
            ErrorKind::SessionUsed => "SESSION_USED",
            ErrorKind::SessionExpired => "SESSION_EXPIRED",
            ErrorKind::SessionPending => "SESSION_PENDING",
            ErrorKind::BadFrames => "BAD_FRAMES",
            ErrorKind::TooManyFailures => "TOO_MANY_FAILURES",
            ErrorKind::SessionNoReference => "SESSION_NO_REFERENCE",
            ErrorKind::MatchUnavailable => "MATCH_UNAVAILABLE",
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
            | ErrorKind::BadRequest
            | ErrorKind::BadContentLength
            | ErrorKind::BadUploadId
            | ErrorKind::BadSessionId
            | ErrorKind::BadFrames
            | ErrorKind::Decode(DecodeKind::Empty) => StatusCode::BAD_REQUEST,
            ErrorKind::SessionNotFound => StatusCode::NOT_FOUND,
            ErrorKind::SessionUsed | ErrorKind::SessionPending | ErrorKind::SessionNoReference => {
                StatusCode::CONFLICT
            }
            ErrorKind::MatchUnavailable => StatusCode::NOT_IMPLEMENTED,
            ErrorKind::SessionExpired => StatusCode::GONE,
            ErrorKind::TooManyFailures => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::HeaderTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorKind::UriTooLong => StatusCode::URI_TOO_LONG,
            ErrorKind::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorKind::HttpVersion => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            ErrorKind::TooManyConnections | ErrorKind::Busy => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::NotFound | ErrorKind::UploadsDisabled | ErrorKind::ResultNotFound => {
                StatusCode::NOT_FOUND
            }
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

/// A client-supplied value as it may appear in a message: at most 40 characters, printable ASCII
/// only (anything else becomes `?`), `…` when cut.
pub fn excerpt(s: &str) -> String {
    const MAX: usize = 40;
    let mut out: String = s
        .chars()
        .take(MAX)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .map(|c| if c == '"' || c == '\\' { '?' } else { c })
        .collect();
    if s.chars().count() > MAX {
        out.push('…');
    }
    out
}

/// An error answer of the API.
#[derive(Debug)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    pub request_id: Option<String>,
    /// For the server log only (a server fault's cause); never sent.
    pub detail: Option<String>,
    /// Seconds for the Retry-After header, when the error sets its own.
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
            request_id: None,
            detail: None,
            retry_after: None,
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

impl ApiError {
    /// The JSON body of this error.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.kind.code().to_string(),
                message: self.message.clone(),
                request_id: self.request_id.clone(),
            },
        }
    }

    /// Seconds a client should wait before retrying (the 503s: capacity that frees up quickly).
    pub fn retry_after_s(&self) -> Option<u32> {
        self.retry_after
            .or((self.kind.status() == StatusCode::SERVICE_UNAVAILABLE).then_some(1))
    }

    /// The whole HTTP/1.1 response (head and JSON body, `Connection: close`), for the errors the
    /// connection layer answers before a request reaches the router.
    pub fn to_http1_bytes(&self) -> Vec<u8> {
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let status = self.kind.status();
        let mut head = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            body.len()
        );
        if let Some(s) = self.retry_after_s() {
            head.push_str(&format!("retry-after: {s}\r\n"));
        }
        if let Some(id) = &self.request_id {
            head.push_str(&format!("x-request-id: {id}\r\n"));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&body);
        out
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry = self.retry_after_s();
        let mut resp = (self.kind.status(), axum::Json(self.body())).into_response();
        if let Some(s) = retry {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(s),
            );
        }
        resp
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
    fn server_errors_are_faults_or_capacity() {
        for k in ErrorKind::ALL {
            let expected = matches!(
                k,
                ErrorKind::Internal
                    | ErrorKind::HttpVersion
                    | ErrorKind::TooManyConnections
                    | ErrorKind::Busy
                    // 501: the server is configured without face match.
                    | ErrorKind::MatchUnavailable
            );
            assert_eq!(k.status().is_server_error(), expected, "{k:?}");
        }
    }

    #[test]
    fn excerpts_are_short_and_printable() {
        assert_eq!(excerpt("maybe"), "maybe");
        let long = excerpt(&"x".repeat(60_000));
        assert_eq!(long.chars().count(), 41);
        assert_eq!(excerpt("a\u{0}b\r\n\"é"), "a?b????");
    }

    #[test]
    fn connection_layer_errors_are_whole_json_responses() {
        let e = ApiError::new(ErrorKind::UriTooLong, "the request target is 9000 bytes")
            .with_request_id("abc");
        let bytes = e.to_http1_bytes();
        let text = String::from_utf8(bytes).expect("utf8");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(v["error"]["code"], "URI_TOO_LONG");
        assert_eq!(v["error"]["request_id"], "abc");
        let busy = ApiError::new(ErrorKind::Busy, "busy").to_http1_bytes();
        assert!(String::from_utf8_lossy(&busy).contains("retry-after: 1\r\n"));
    }
}
