//! Request decoding for `POST /v1/liveness`: the query, and the image from multipart, raw or base64 JSON.

use crate::error::{ApiError, ErrorKind};
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::header::CONTENT_TYPE;
use base64::Engine;
use ekyc_core::CheckOptions;

/// multipart/form-data body (the prototype's contract).
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
pub(crate) struct MultipartUpload {
    /// The image file (JPEG, PNG or WebP).
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// JSON body with a base64 image (standard alphabet; a `data:image/...;base64,` prefix is accepted).
/// For the OpenAPI schema only: the body is read by [`base64_field`].
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
pub(crate) struct Base64Image {
    pub image: String,
}

/// `enable_checks=true|false` (also 1/0, yes/no, on/off, as FastAPI accepted). Unknown parameters are
/// ignored; a malformed value is a 400.
pub(crate) fn parse_query(q: Option<&str>) -> Result<CheckOptions, ApiError> {
    let mut opts = CheckOptions::default();
    if let Some(v) = bool_param(q, "enable_checks")? {
        opts.enable_checks = v;
    }
    Ok(opts)
}

/// `require_live` and `enable_checks` of `POST /v1/match` (both default true).
pub(crate) fn parse_match_query(
    q: Option<&str>,
) -> Result<ekyc_core::face_match::MatchOptions, ApiError> {
    let mut opts = ekyc_core::face_match::MatchOptions::default();
    if let Some(v) = bool_param(q, "require_live")? {
        opts.require_live = v;
    }
    if let Some(v) = bool_param(q, "enable_checks")? {
        opts.enable_checks = v;
    }
    Ok(opts)
}

/// The boolean query parameter `name` (the last one given), if present.
fn bool_param(q: Option<&str>, name: &str) -> Result<Option<bool>, ApiError> {
    let Some(q) = q else { return Ok(None) };
    let mut out = None;
    for (k, v) in form_urlencoded_pairs(q) {
        if k == name {
            out = Some(match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => {
                    return Err(ApiError::new(
                        ErrorKind::BadQuery,
                        format!(
                            "{name} must be true or false, got \"{}\"",
                            crate::error::excerpt(&v)
                        ),
                    ))
                }
            });
        }
    }
    Ok(out)
}

fn form_urlencoded_pairs(q: &str) -> Vec<(String, String)> {
    serde_urlencoded_pairs(q).unwrap_or_default()
}

fn serde_urlencoded_pairs(q: &str) -> Option<Vec<(String, String)>> {
    // axum's Query uses serde_urlencoded; decode pairs the same way.
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&format!("/?{q}").parse().ok()?)
        .ok()
        .map(|axum::extract::Query(v)| v)
}

/// The request's `Content-Type` value ("" when absent).
pub(crate) fn content_type(req: &Request) -> String {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// The largest body that can carry `limit` bytes of images: base64 JSON carries 4/3 of them plus
/// a little framing, multipart a little framing.
pub(crate) fn body_limit_for(ctype: &str, limit: usize) -> usize {
    if mime_of(ctype) == "application/json" {
        limit / 3 * 4 + 1024
    } else {
        limit + 64 * 1024
    }
}

/// Read the body (bounded) and extract the image bytes according to the content type.
pub(crate) async fn read_image(req: Request, limit: usize) -> Result<Vec<u8>, ApiError> {
    let ctype = content_type(&req);
    let body = read_body_with(req, body_limit_for(&ctype, limit), || too_large(limit)).await?;
    extract_image(&ctype, body, limit).await
}

/// The media type of a `Content-Type` value, lower case, without parameters.
fn mime_of(ctype: &str) -> String {
    ctype
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorKind::BodyTooLarge,
        format!("request body is over the limit of {limit} bytes of image data"),
    )
}

/// The image bytes of a request body that has been read, by its `Content-Type` header value
/// (`ctype`, "" when absent): the multipart field `file`, a raw `image/*` body, or the base64
/// `image` string of a JSON object (a `data:image/...;base64,` prefix accepted). More than
/// `limit` image bytes, or none, is an error. No I/O: this is [`read_image`] after the body has
/// arrived, and what the fuzz suite (`input/fuzz.rs`) drives.
pub async fn extract_image(ctype: &str, body: Bytes, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mime = mime_of(ctype);
    let image = match mime.as_str() {
        "multipart/form-data" => multipart_file(ctype, body).await?,
        "image/jpeg" | "image/jpg" | "image/png" | "image/webp" => body.to_vec(),
        "application/json" => decode_base64(&base64_field(&body)?, "image")?,
        "" => {
            return Err(ApiError::new(
                ErrorKind::UnsupportedMediaType,
                "missing Content-Type: send multipart/form-data (field `file`), image/jpeg|png|webp, or application/json",
            ))
        }
        other => {
            return Err(ApiError::new(
                ErrorKind::UnsupportedMediaType,
                format!("unsupported Content-Type \"{}\": send multipart/form-data (field `file`), image/jpeg|png|webp, or application/json", crate::error::excerpt(other)),
            ))
        }
    };
    if image.len() > limit {
        return Err(too_large(limit));
    }
    if image.is_empty() {
        return Err(ApiError::new(
            ErrorKind::EmptyImage,
            "the image is empty (0 bytes)",
        ));
    }
    Ok(image)
}

/// The bytes of a base64 string (standard alphabet, whitespace ignored, an optional
/// `data:image/...;base64,` prefix); errors name `field`.
fn decode_base64(image: &str, field: &str) -> Result<Vec<u8>, ApiError> {
    let data = match image.split_once(";base64,") {
        Some((prefix, rest)) if prefix.starts_with("data:") => rest,
        _ => image,
    };
    let cleaned: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(cleaned.as_bytes())
        .map_err(|e| {
            ApiError::new(
                ErrorKind::BadBase64,
                base64_message(&e).replacen("the image field", &format!("the {field} field"), 1),
            )
        })
}

/// Read a body of at most `body_limit` bytes (413 over it, 400 when it ends early).
pub(crate) async fn read_body(req: Request, body_limit: usize) -> Result<Bytes, ApiError> {
    read_body_with(req, body_limit, || {
        ApiError::new(
            ErrorKind::BodyTooLarge,
            format!("request body is over the limit of {body_limit} bytes"),
        )
    })
    .await
}

/// [`read_body`] with the 413's own words.
async fn read_body_with(
    req: Request,
    body_limit: usize,
    too_large: impl Fn() -> ApiError,
) -> Result<Bytes, ApiError> {
    if let Some(len) = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > body_limit {
            // Read (and drop) what the client is sending before answering, so that it reads the
            // 413 instead of a connection reset in the middle of its upload.
            crate::drain(req).await;
            return Err(too_large());
        }
    }
    match axum::body::to_bytes(req.into_body(), body_limit).await {
        Ok(b) => Ok(b),
        Err(e) if over_limit(&e) => Err(too_large()),
        // The client stopped before sending what it announced (or the connection broke).
        Err(_) => Err(ApiError::new(
            ErrorKind::IncompleteBody,
            "the request body ended before its announced length",
        )),
    }
}

/// The images named `names` of a body that has been read: multipart/form-data fields of those
/// names, or the base64 string fields of a JSON object. Each at most `limit` bytes and not
/// empty; a missing one is MISSING_FILE naming it. Other fields are ignored.
pub(crate) async fn named_images(
    ctype: &str,
    body: Bytes,
    names: &[&str],
    limit: usize,
) -> Result<Vec<Vec<u8>>, ApiError> {
    let mut found: Vec<Option<Vec<u8>>> = vec![None; names.len()];
    match mime_of(ctype).as_str() {
        "multipart/form-data" => {
            let boundary = multer::parse_boundary(ctype).map_err(|_| {
                ApiError::new(
                    ErrorKind::MalformedMultipart,
                    "multipart/form-data needs a boundary parameter",
                )
            })?;
            let stream = futures_util::stream::once(async move {
                Ok::<Bytes, std::convert::Infallible>(body)
            });
            let mut mp = multer::Multipart::new(stream, boundary);
            while let Some(field) = mp.next_field().await.map_err(|e| multipart_error(&e))? {
                let Some(i) = names.iter().position(|n| field.name() == Some(n)) else {
                    continue;
                };
                let data = field.bytes().await.map_err(|e| multipart_error(&e))?;
                found[i] = Some(data.to_vec());
            }
        }
        "application/json" => {
            let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
                ApiError::new(
                    ErrorKind::BadJson,
                    format!(
                        "the body is not valid JSON (line {}, column {})",
                        e.line(),
                        e.column()
                    ),
                )
            })?;
            let serde_json::Value::Object(obj) = v else {
                return Err(ApiError::new(
                    ErrorKind::BadJson,
                    "the JSON body must be an object of base64 strings",
                ));
            };
            for (i, n) in names.iter().enumerate() {
                match obj.get(*n) {
                    Some(serde_json::Value::String(s)) => found[i] = Some(decode_base64(s, n)?),
                    Some(_) => {
                        return Err(ApiError::new(
                            ErrorKind::BadJson,
                            format!("the JSON field \"{n}\" must be a base64 string"),
                        ))
                    }
                    None => {}
                }
            }
        }
        other => {
            return Err(ApiError::new(
                ErrorKind::UnsupportedMediaType,
                format!(
                    "unsupported Content-Type \"{}\": send multipart/form-data (fields {}) or application/json",
                    crate::error::excerpt(other),
                    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                ),
            ))
        }
    }
    names
        .iter()
        .zip(found)
        .map(|(n, f)| match f {
            None => Err(ApiError::new(
                ErrorKind::MissingFile,
                format!("the body has no field named `{n}`"),
            )),
            Some(b) if b.is_empty() => Err(ApiError::new(
                ErrorKind::EmptyImage,
                format!("{n}: the image is empty (0 bytes)"),
            )),
            Some(b) if b.len() > limit => Err(ApiError::new(
                ErrorKind::BodyTooLarge,
                format!("{n}: the image is over the limit of {limit} bytes"),
            )),
            Some(b) => Ok(b),
        })
        .collect()
}

/// True when a body error is the body limit being exceeded (not a broken or short body).
fn over_limit(e: &axum::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// The `image` string of a JSON object body. Messages are our own words with a position, never
/// an excerpt of the body (serde's messages quote the input).
fn base64_field(body: &[u8]) -> Result<String, ApiError> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorKind::BadJson,
            format!(
                "the body is not valid JSON (line {}, column {}); expected {{\"image\": \"<base64>\"}}",
                e.line(),
                e.column()
            ),
        )
    })?;
    let serde_json::Value::Object(mut obj) = v else {
        return Err(ApiError::new(
            ErrorKind::BadJson,
            "the JSON body must be an object {\"image\": \"<base64>\"}",
        ));
    };
    match obj.remove("image") {
        Some(serde_json::Value::String(s)) => Ok(s),
        _ => Err(ApiError::new(
            ErrorKind::BadJson,
            "the JSON object needs a string field \"image\" (base64)",
        )),
    }
}

async fn multipart_file(ctype: &str, body: Bytes) -> Result<Vec<u8>, ApiError> {
    let boundary = multer::parse_boundary(ctype).map_err(|_| {
        ApiError::new(
            ErrorKind::MalformedMultipart,
            "multipart/form-data needs a boundary parameter",
        )
    })?;
    let stream =
        futures_util::stream::once(async move { Ok::<Bytes, std::convert::Infallible>(body) });
    let mut mp = multer::Multipart::new(stream, boundary);
    loop {
        let field = mp.next_field().await.map_err(|e| multipart_error(&e))?;
        let Some(field) = field else {
            return Err(ApiError::new(
                ErrorKind::MissingFile,
                "multipart body has no field named `file`",
            ));
        };
        if field.name() == Some("file") {
            let data = field.bytes().await.map_err(|e| multipart_error(&e))?;
            return Ok(data.to_vec());
        }
    }
}

#[cfg(test)]
mod fuzz;

/// A base64 failure in our words, with where it happened.
fn base64_message(e: &base64::DecodeError) -> String {
    use base64::DecodeError as D;
    match e {
        D::InvalidByte(at, _) | D::InvalidLastSymbol(at, _) => {
            format!("the image field is not valid base64 (bad character at offset {at})")
        }
        D::InvalidLength(n) => {
            format!(
                "the image field is not valid base64 (length {n} is not a whole number of groups)"
            )
        }
        D::InvalidPadding => "the image field is not valid base64 (bad padding)".to_string(),
    }
}

/// A multipart failure in our words (the parser's own text stays out of the answer).
fn multipart_error(e: &multer::Error) -> ApiError {
    let what = match e {
        multer::Error::IncompleteStream | multer::Error::IncompleteFieldData { .. } => {
            "the multipart body ends before its closing boundary"
        }
        multer::Error::IncompleteHeaders | multer::Error::ReadHeaderFailed(_) => {
            "a multipart part has malformed headers"
        }
        _ => "the multipart body is malformed",
    };
    ApiError::new(ErrorKind::MalformedMultipart, what)
}
