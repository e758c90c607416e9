//! Uploads through object storage (S3), for clients that should not send the image through the API:
//! `POST /v1/uploads` answers a presigned upload (one PUT of exactly the announced size and content
//! type, valid for a few minutes) and an id; the S3 trigger verifies the object and writes the result
//! document; `GET /v1/results/{id}` answers it (or that it is pending).
//!
//! Every key is scoped by the caller: `<uploads prefix><owner>/<id>` and
//! `<results prefix><owner>/<id>.json`, where `owner` is a digest of the authenticated identity
//! ([`Caller`]). Another caller's id therefore looks exactly like an unknown id.
//!
//! The storage is behind [`UploadStore`] (implemented for S3 in `ekyc-aws`), so this crate has no
//! AWS SDK dependency.

use crate::error::{excerpt, ApiError, ErrorKind};
use crate::AppState;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The content types an upload may have.
pub const CONTENT_TYPES: [&str; 3] = ["image/jpeg", "image/png", "image/webp"];

/// Largest result document read back (they are a few KB of our own JSON).
pub const MAX_RESULT_BYTES: u64 = 256 * 1024;

/// Largest `POST /v1/uploads` body.
const MAX_REQUEST_BYTES: usize = 4 * 1024;

/// A storage call that failed (the bucket could not be reached, access denied, …): a server fault.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    pub message: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    pub fn new(message: impl Into<String>) -> StoreError {
        StoreError {
            message: message.into(),
            source: None,
        }
    }

    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> StoreError {
        StoreError {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// The future a store call returns (boxed: the trait is used as `dyn`).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A presigned upload: the client sends `method` to `url` with exactly these headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PresignedUpload {
    /// "PUT".
    pub method: String,
    /// The presigned URL (a credential until it expires: do not log it).
    pub url: String,
    /// Headers the request must carry as they are (they are part of the signature), with lower-case
    /// names: at least `content-type` and `content-length`.
    pub headers: BTreeMap<String, String>,
}

/// Object storage for uploads and results.
pub trait UploadStore: Send + Sync {
    /// A presigned PUT of `key` that the storage accepts only with this content type and length,
    /// and only for `expires`.
    fn presign_put<'a>(
        &'a self,
        key: &'a str,
        content_type: &'a str,
        content_length: u64,
        expires: Duration,
    ) -> StoreFuture<'a, PresignedUpload>;

    /// True when an object exists at `key`.
    fn object_exists<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool>;

    /// The object at `key` (`None` when there is none); an error when it is larger than `max_bytes`.
    fn get_object<'a>(&'a self, key: &'a str, max_bytes: u64) -> StoreFuture<'a, Option<Vec<u8>>>;
}

/// Upload settings (the bucket itself belongs to the store).
#[derive(Debug, Clone, PartialEq)]
pub struct UploadConfig {
    /// Seconds a presigned upload stays valid.
    pub expires_s: u64,
    /// Key prefix of uploads (the S3 trigger's `EKYC_UPLOADS_PREFIX`).
    pub uploads_prefix: String,
    /// Key prefix of results (the S3 trigger's `EKYC_RESULTS_PREFIX`).
    pub results_prefix: String,
}

impl Default for UploadConfig {
    fn default() -> Self {
        UploadConfig {
            expires_s: 300,
            uploads_prefix: "uploads/".into(),
            results_prefix: "results/".into(),
        }
    }
}

/// A store and its settings, given to [`AppState::new_with_uploads`].
#[derive(Clone)]
pub struct Uploads {
    pub store: Arc<dyn UploadStore>,
    pub config: UploadConfig,
}

impl std::fmt::Debug for Uploads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uploads")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Uploads {
    pub fn new(store: Arc<dyn UploadStore>, config: UploadConfig) -> Uploads {
        Uploads { store, config }
    }

    /// Where the upload `id` of `owner` is stored.
    pub fn upload_key(&self, owner: &str, id: &uuid::Uuid) -> String {
        format!(
            "{}{owner}/{}",
            self.config.uploads_prefix,
            id.as_hyphenated()
        )
    }

    /// Where the S3 trigger writes the result of that upload.
    pub fn result_key(&self, owner: &str, id: &uuid::Uuid) -> String {
        format!(
            "{}{owner}/{}.json",
            self.config.results_prefix,
            id.as_hyphenated()
        )
    }
}

/// The digest of the API key a request was accepted with (set by the API-key middleware).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ApiKeyDigest(pub [u8; 32]);

/// Who is asking, as far as this service can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// API Gateway's JWT authorizer accepted a token: its issuer and subject.
    Jwt { issuer: String, subject: String },
    /// API Gateway's IAM authorization: the caller's ARN (an assumed role without its session name).
    Iam { arn: String },
    /// The local server's API keys: the sha256 of the key presented.
    ApiKey([u8; 32]),
    /// No authentication is configured.
    Anonymous,
}

impl Caller {
    /// The caller of `req`: the API Gateway authorizer's identity inside Lambda, else the API key
    /// the request was accepted with, else anonymous. A JWT without `sub` (nor `client_id`) is
    /// refused: it names nobody whose uploads could be kept apart.
    pub fn of(req: &Request) -> Result<Caller, ApiError> {
        if let Some(c) = gateway_caller(req)? {
            return Ok(c);
        }
        if let Some(ApiKeyDigest(d)) = req.extensions().get::<ApiKeyDigest>() {
            return Ok(Caller::ApiKey(*d));
        }
        Ok(Caller::Anonymous)
    }

    /// The key segment for this caller: 32 hex digits (the first 16 bytes of a sha256 of the
    /// identity), or `anonymous`.
    pub fn owner(&self) -> String {
        let identity = match self {
            Caller::Anonymous => return "anonymous".into(),
            // Length-prefixed, so no two (issuer, subject) pairs give the same text.
            Caller::Jwt { issuer, subject } => {
                format!("jwt|{}|{issuer}|{subject}", issuer.len())
            }
            Caller::Iam { arn } => format!("iam|{arn}"),
            Caller::ApiKey(d) => format!("key|{}", hex::encode(d)),
        };
        let d = Sha256::digest(identity.as_bytes());
        hex::encode(&d[..16])
    }
}

/// `arn:aws:sts::123456789012:assumed-role/Role/session` → `…:assumed-role/Role`: every session of a
/// role is the same caller (a backend's sessions rotate; the role is what is authorised).
fn principal_arn(arn: &str) -> String {
    if let Some((head, rest)) = arn.split_once(":assumed-role/") {
        if let Some((role, _session)) = rest.split_once('/') {
            return format!("{head}:assumed-role/{role}");
        }
    }
    arn.to_string()
}

fn jwt_caller(claims: &dyn Fn(&str) -> Option<String>) -> Result<Caller, ApiError> {
    let subject = claims("sub")
        .or_else(|| claims("client_id"))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::Unauthorized,
                "the token has no sub (or client_id) claim: uploads need a caller identity",
            )
        })?;
    Ok(Caller::Jwt {
        issuer: claims("iss").unwrap_or_default(),
        subject,
    })
}

/// The identity API Gateway's authorizer put in the request context (inside Lambda only: the
/// context comes from the invocation event, never from a client's headers).
fn gateway_caller(req: &Request) -> Result<Option<Caller>, ApiError> {
    use lambda_http::request::RequestContext;
    use lambda_http::RequestExt;
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(c)) => {
            let Some(auth) = &c.authorizer else {
                return Ok(None);
            };
            if let Some(jwt) = &auth.jwt {
                return jwt_caller(&|k| jwt.claims.get(k).cloned()).map(Some);
            }
            if let Some(arn) = auth.iam.as_ref().and_then(|i| i.user_arn.as_deref()) {
                if !arn.is_empty() {
                    return Ok(Some(Caller::Iam {
                        arn: principal_arn(arn),
                    }));
                }
            }
            Ok(None)
        }
        Some(RequestContext::ApiGatewayV1(c)) => {
            // A Cognito user-pool authorizer puts the token's claims under authorizer.claims.
            if let Some(claims) = c
                .authorizer
                .fields
                .get("claims")
                .and_then(|v| v.as_object())
            {
                return jwt_caller(&|k| claims.get(k).and_then(|v| v.as_str()).map(str::to_string))
                    .map(Some);
            }
            Ok(c.identity
                .user_arn
                .as_deref()
                .filter(|a| !a.is_empty())
                .map(|arn| Caller::Iam {
                    arn: principal_arn(arn),
                }))
        }
        _ => Ok(None),
    }
}

/// Body of `POST /v1/uploads`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUpload {
    /// image/jpeg, image/png or image/webp.
    pub content_type: String,
    /// The exact size of the image in bytes (1 ≤ size ≤ the image byte limit).
    pub content_length: u64,
}

impl CreateUpload {
    /// The canonical content type, or the error the request gets.
    pub fn validate(&self, max_image_bytes: usize) -> Result<&'static str, ApiError> {
        let wanted = self.content_type.trim();
        let Some(ct) = CONTENT_TYPES
            .iter()
            .find(|t| t.eq_ignore_ascii_case(wanted))
        else {
            return Err(ApiError::new(
                ErrorKind::UnsupportedMediaType,
                format!(
                    "content_type \"{}\" is not one of {}",
                    excerpt(wanted),
                    CONTENT_TYPES.join(", ")
                ),
            ));
        };
        if self.content_length == 0 {
            return Err(ApiError::new(
                ErrorKind::EmptyImage,
                "content_length is 0: an upload needs an image",
            ));
        }
        if self.content_length > max_image_bytes as u64 {
            return Err(ApiError::new(
                ErrorKind::Decode(crate::error::DecodeKind::TooManyBytes),
                format!(
                    "content_length {} is over the limit of {max_image_bytes} bytes",
                    self.content_length
                ),
            ));
        }
        Ok(ct)
    }
}

/// Answer of `POST /v1/uploads`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UploadCreated {
    /// The id to ask `GET /v1/results/{id}` with (a UUID).
    pub upload_id: String,
    /// How to upload the image: one request, exactly as described.
    pub upload: PresignedUpload,
    /// Seconds the upload URL stays valid.
    pub expires_in_s: u64,
    /// Where the result will be (relative to the API's base URL).
    pub result_url: String,
}

/// `GET /v1/results/{id}` while the upload waits for (or is in) verification.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResultPending {
    /// "PENDING".
    pub status: &'static str,
    pub upload_id: String,
}

fn store(state: &AppState) -> Result<&Uploads, ApiError> {
    state.uploads.as_ref().ok_or_else(|| {
        ApiError::new(
            ErrorKind::UploadsDisabled,
            "uploads through object storage are not configured on this server (EKYC_UPLOADS_BUCKET)",
        )
    })
}

fn store_fault(e: &StoreError) -> ApiError {
    ApiError::internal(&format_args!("{e}{}", source_text(e)))
}

fn source_text(e: &StoreError) -> String {
    use std::error::Error as _;
    let mut out = String::new();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

/// The bounded JSON body of `POST /v1/uploads`.
async fn read_request(req: Request, timeout: Duration) -> Result<CreateUpload, ApiError> {
    use http_body_util::BodyExt;
    let json_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        crate::drain(req).await;
        return Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            "send application/json: {\"content_type\": \"image/jpeg\", \"content_length\": <bytes>}",
        ));
    }
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_REQUEST_BYTES as u64) {
        crate::drain(req).await;
        return Err(ApiError::new(
            ErrorKind::BodyTooLarge,
            format!("the request body is over {MAX_REQUEST_BYTES} bytes"),
        ));
    }
    let body = http_body_util::Limited::new(req.into_body(), MAX_REQUEST_BYTES);
    let bytes = match tokio::time::timeout(timeout, body.collect()).await {
        Err(_) => {
            return Err(ApiError::new(
                ErrorKind::BodyTimeout,
                format!(
                    "the request body did not arrive within {:.0} s",
                    timeout.as_secs_f64()
                ),
            ))
        }
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(ApiError::new(
                ErrorKind::BodyTooLarge,
                format!("the request body is over {MAX_REQUEST_BYTES} bytes"),
            ))
        }
        Ok(Err(_)) => {
            return Err(ApiError::new(
                ErrorKind::IncompleteBody,
                "the request body could not be read",
            ))
        }
        Ok(Ok(b)) => b.to_bytes(),
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            ErrorKind::BadJson,
            format!(
                "expected {{\"content_type\": \"image/jpeg|image/png|image/webp\", \"content_length\": <bytes>}}: {}",
                excerpt(&e.to_string())
            ),
        )
    })
}

/// The response with the request id (header, and in the body of an error), and its log line.
fn finish(id: &str, t0: Instant, route: &str, result: Result<Response, ApiError>) -> Response {
    let mut resp = match result {
        Ok(r) => {
            tracing::info!(request_id = %id, route, http_status = r.status().as_u16(), total_ms = t0.elapsed().as_secs_f64() * 1e3, "answered");
            r
        }
        Err(e) => {
            let status = e.status().as_u16();
            if let Some(detail) = &e.detail {
                tracing::error!(request_id = %id, route, http_status = status, code = e.code(), error = %detail, "internal error");
            } else {
                tracing::info!(request_id = %id, route, http_status = status, code = e.code(), "rejected");
            }
            e.with_request_id(id).into_response()
        }
    };
    crate::set_request_id(resp.headers_mut(), id);
    resp
}

#[utoipa::path(
    post,
    path = "/v1/uploads",
    request_body(content = CreateUpload, content_type = "application/json"),
    responses(
        (status = 201, description = "Upload the image with `upload` (one request, exactly these headers, before it expires), then poll `result_url`", body = UploadCreated),
        (status = 400, description = "Bad JSON, or content_length 0", body = crate::error::ErrorBody),
        (status = 401, description = "No accepted credentials", body = crate::error::ErrorBody),
        (status = 404, description = "Uploads are not configured (UPLOADS_DISABLED)", body = crate::error::ErrorBody),
        (status = 413, description = "content_length over the image byte limit", body = crate::error::ErrorBody),
        (status = 415, description = "content_type not image/jpeg, image/png or image/webp; or the request is not JSON", body = crate::error::ErrorBody),
        (status = 500, description = "The storage could not be reached", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn create(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let t0 = Instant::now();
    let id = crate::request_id(&req);
    let result = create_upload(&state, req).await;
    finish(&id, t0, "create_upload", result)
}

async fn create_upload(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let uploads = match store(state) {
        Ok(u) => u,
        Err(e) => {
            crate::drain(req).await;
            return Err(e);
        }
    };
    let caller = match Caller::of(&req) {
        Ok(c) => c,
        Err(e) => {
            crate::drain(req).await;
            return Err(e);
        }
    };
    let timeout = Duration::from_secs_f64(state.server.body_timeout_s.max(0.1));
    let wanted = read_request(req, timeout).await?;
    let content_type = wanted.validate(state.pipeline.config().limits.max_image_bytes)?;
    let upload_id = uuid::Uuid::new_v4();
    let key = uploads.upload_key(&caller.owner(), &upload_id);
    let expires = uploads.config.expires_s.max(1);
    let upload = uploads
        .store
        .presign_put(
            &key,
            content_type,
            wanted.content_length,
            Duration::from_secs(expires),
        )
        .await
        .map_err(|e| store_fault(&e))?;
    let result_url = format!("/v1/results/{}", upload_id.as_hyphenated());
    let mut resp = (
        StatusCode::CREATED,
        Json(UploadCreated {
            upload_id: upload_id.as_hyphenated().to_string(),
            upload,
            expires_in_s: expires,
            result_url: result_url.clone(),
        }),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&result_url) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

#[utoipa::path(
    get,
    path = "/v1/results/{id}",
    params(("id" = String, Path, description = "The upload_id of POST /v1/uploads")),
    responses(
        (status = 200, description = "The result document the S3 trigger wrote: {source, status (LIVE, SPOOF, QUALITY_FAILED, NO_FACE or ERROR), verdict, error, models, processed_at, request_id, service_version}", content_type = "application/json"),
        (status = 202, description = "Uploaded, not verified yet: ask again (Retry-After)", body = ResultPending),
        (status = 400, description = "The id is not a UUID (BAD_UPLOAD_ID)", body = crate::error::ErrorBody),
        (status = 401, description = "No accepted credentials", body = crate::error::ErrorBody),
        (status = 404, description = "RESULT_NOT_FOUND: never uploaded (or not yet), expired (lifecycle rule), or another caller's id; UPLOADS_DISABLED", body = crate::error::ErrorBody),
        (status = 500, description = "The storage could not be reached", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn result(
    State(state): State<Arc<AppState>>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    req: Request,
) -> Response {
    let t0 = Instant::now();
    let id = crate::request_id(&req);
    // (The request itself is not held across the store calls: its body is not `Sync`.)
    let owner = Caller::of(&req).map(|c| c.owner());
    drop(req);
    let result = find_result(&state, path.ok().map(|p| p.0), owner).await;
    finish(&id, t0, "get_result", result)
}

/// An upload id as given by a client: any UUID form; its canonical form names the objects.
pub fn parse_upload_id(raw: Option<&str>) -> Result<uuid::Uuid, ApiError> {
    raw.and_then(|s| uuid::Uuid::try_parse(s.trim()).ok())
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::BadUploadId,
                format!(
                    "\"{}\" is not an upload id (a UUID from POST /v1/uploads)",
                    excerpt(raw.unwrap_or_default())
                ),
            )
        })
}

async fn find_result(
    state: &AppState,
    raw: Option<String>,
    owner: Result<String, ApiError>,
) -> Result<Response, ApiError> {
    let uploads = store(state)?;
    let upload_id = parse_upload_id(raw.as_deref())?;
    let owner = owner?;
    let doc = uploads
        .store
        .get_object(&uploads.result_key(&owner, &upload_id), MAX_RESULT_BYTES)
        .await
        .map_err(|e| store_fault(&e))?;
    if let Some(bytes) = doc {
        // Our own document; checked to be JSON so a damaged object is a fault, not a 200.
        serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).map_err(|e| {
            ApiError::internal(&format_args!("the result document is not JSON: {e}"))
        })?;
        let mut resp = (StatusCode::OK, bytes).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return Ok(resp);
    }
    let uploaded = uploads
        .store
        .object_exists(&uploads.upload_key(&owner, &upload_id))
        .await
        .map_err(|e| store_fault(&e))?;
    if uploaded {
        let mut resp = (
            StatusCode::ACCEPTED,
            Json(ResultPending {
                status: "PENDING",
                upload_id: upload_id.as_hyphenated().to_string(),
            }),
        )
            .into_response();
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(1));
        return Ok(resp);
    }
    Err(ApiError::new(
        ErrorKind::ResultNotFound,
        "no upload with this id: not uploaded (yet), expired, or created by another caller",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lambda_request(json: &str) -> Request {
        let req = lambda_http::request::from_str(json).expect("a valid event");
        req.map(axum::body::Body::new)
    }

    fn v2_event(authorizer: &str) -> String {
        format!(
            r#"{{"version": "2.0", "routeKey": "GET /v1/results/{{id}}", "rawPath": "/v1/results/x",
            "rawQueryString": "", "headers": {{"host": "example.com"}},
            "requestContext": {{"accountId": "123456789012", "apiId": "api", "domainName": "example.com",
              "domainPrefix": "example", "http": {{"method": "GET", "path": "/v1/results/x",
              "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "test"}},
              "requestId": "r1", "routeKey": "GET /v1/results/{{id}}", "stage": "$default",
              "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": 0 {authorizer}}},
            "isBase64Encoded": false}}"#
        )
    }

    #[test]
    fn jwt_subjects_iam_roles_and_keys_are_different_owners() {
        let jwt = |sub: &str| {
            v2_event(&format!(
                r#", "authorizer": {{"jwt": {{"claims": {{"iss": "https://issuer.example", "sub": "{sub}"}}, "scopes": null}}}}"#
            ))
        };
        let a = Caller::of(&lambda_request(&jwt("user-a"))).expect("caller");
        assert_eq!(
            a,
            Caller::Jwt {
                issuer: "https://issuer.example".into(),
                subject: "user-a".into()
            }
        );
        let b = Caller::of(&lambda_request(&jwt("user-b"))).expect("caller");
        assert_ne!(a.owner(), b.owner());
        assert_eq!(a.owner().len(), 32);
        assert!(a.owner().chars().all(|c| c.is_ascii_hexdigit()));

        let iam = |session: &str| {
            v2_event(&format!(
                r#", "authorizer": {{"iam": {{"accessKey": "AKIA", "accountId": "123456789012",
                "callerId": "AROA:{session}", "principalOrgId": null,
                "userArn": "arn:aws:sts::123456789012:assumed-role/backend/{session}", "userId": "AROA:{session}"}}}}"#
            ))
        };
        let r1 = Caller::of(&lambda_request(&iam("s1"))).expect("caller");
        let r2 = Caller::of(&lambda_request(&iam("s2"))).expect("caller");
        assert_eq!(
            r1,
            Caller::Iam {
                arn: "arn:aws:sts::123456789012:assumed-role/backend".into()
            }
        );
        assert_eq!(
            r1.owner(),
            r2.owner(),
            "sessions of one role are one caller"
        );
        assert_ne!(r1.owner(), a.owner());

        let none = Caller::of(&lambda_request(&v2_event(""))).expect("caller");
        assert_eq!(none, Caller::Anonymous);
        assert_eq!(none.owner(), "anonymous");

        let no_sub = v2_event(
            r#", "authorizer": {"jwt": {"claims": {"iss": "https://issuer.example"}, "scopes": null}}"#,
        );
        let e = Caller::of(&lambda_request(&no_sub)).expect_err("no subject");
        assert_eq!(e.code(), "UNAUTHORIZED");

        let mut local = Request::new(axum::body::Body::empty());
        local.extensions_mut().insert(ApiKeyDigest([7; 32]));
        let k = Caller::of(&local).expect("caller");
        assert_eq!(k, Caller::ApiKey([7; 32]));
        assert_ne!(k.owner(), Caller::ApiKey([8; 32]).owner());
    }

    #[test]
    fn requests_are_validated_before_anything_is_signed() {
        let req = |ct: &str, n: u64| CreateUpload {
            content_type: ct.into(),
            content_length: n,
        };
        assert_eq!(req("image/jpeg", 1).validate(10).ok(), Some("image/jpeg"));
        assert_eq!(req(" Image/PNG ", 10).validate(10).ok(), Some("image/png"));
        let code = |r: CreateUpload| {
            r.validate(10)
                .err()
                .map(|e| (e.status().as_u16(), e.code()))
        };
        assert_eq!(
            code(req("image/gif", 5)),
            Some((415, "UNSUPPORTED_MEDIA_TYPE"))
        );
        assert_eq!(code(req("image/webp", 0)), Some((400, "EMPTY_IMAGE")));
        assert_eq!(
            code(req("image/webp", 11)),
            Some((413, "IMAGE_TOO_MANY_BYTES"))
        );
        assert!(serde_json::from_str::<CreateUpload>(
            r#"{"content_type": "image/jpeg", "content_length": 3, "bucket": "x"}"#
        )
        .is_err());
    }

    #[test]
    fn ids_are_uuids_and_keys_are_scoped_by_owner() {
        let id = parse_upload_id(Some("0B9C3F1E-8A4D-4F6B-9C2E-1D3A5B7C9E0F")).expect("uuid");
        let u = Uploads::new(Arc::new(NoStore), UploadConfig::default());
        assert_eq!(
            u.upload_key("abc", &id),
            "uploads/abc/0b9c3f1e-8a4d-4f6b-9c2e-1d3a5b7c9e0f"
        );
        assert_eq!(
            u.result_key("abc", &id),
            "results/abc/0b9c3f1e-8a4d-4f6b-9c2e-1d3a5b7c9e0f.json"
        );
        for bad in [None, Some(""), Some("../x"), Some("uploads/abc")] {
            let e = parse_upload_id(bad).expect_err("not a uuid");
            assert_eq!((e.status().as_u16(), e.code()), (400, "BAD_UPLOAD_ID"));
        }
        assert_eq!(
            principal_arn("arn:aws:iam::123456789012:user/alice"),
            "arn:aws:iam::123456789012:user/alice"
        );
    }

    struct NoStore;
    impl UploadStore for NoStore {
        fn presign_put<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
            _: u64,
            _: Duration,
        ) -> StoreFuture<'a, PresignedUpload> {
            Box::pin(async { Err(StoreError::new("none")) })
        }
        fn object_exists<'a>(&'a self, _: &'a str) -> StoreFuture<'a, bool> {
            Box::pin(async { Ok(false) })
        }
        fn get_object<'a>(&'a self, _: &'a str, _: u64) -> StoreFuture<'a, Option<Vec<u8>>> {
            Box::pin(async { Ok(None) })
        }
    }
}
