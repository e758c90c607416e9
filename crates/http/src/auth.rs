//! Optional API keys for the local server (`Authorization: Bearer <key>` on `/v1/*`). Keys are
//! kept only as sha256 digests and compared in constant time; inside AWS the API Gateway
//! authorizer (template.yaml) authenticates callers instead.

use crate::error::{ApiError, ErrorKind};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The accepted keys, as sha256 digests. Empty = no authentication.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ApiKeys(Vec<[u8; 32]>);

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} keys)", self.0.len())
    }
}

/// An entry of EKYC_API_KEYS that is neither a key nor `sha256:<64 hex digits>`.
#[derive(Debug, thiserror::Error)]
#[error("EKYC_API_KEYS entry {index}: {why}")]
pub struct ApiKeyError {
    pub index: usize,
    pub why: &'static str,
}

impl ApiKeys {
    /// From configuration entries: `sha256:<hex digest of the key>` (preferred: the secret is not
    /// in the configuration), or the key itself (hashed here and the plain text dropped).
    pub fn from_entries(entries: &[String]) -> Result<ApiKeys, ApiKeyError> {
        let mut keys = Vec::new();
        for (index, e) in entries.iter().map(|e| e.trim()).enumerate() {
            if e.is_empty() {
                continue;
            }
            if let Some(hex_digest) = e.strip_prefix("sha256:") {
                let mut d = [0u8; 32];
                hex::decode_to_slice(hex_digest, &mut d).map_err(|_| ApiKeyError {
                    index,
                    why: "sha256: must be followed by 64 hex digits",
                })?;
                keys.push(d);
            } else if e.len() < 16 {
                return Err(ApiKeyError {
                    index,
                    why: "a key must be at least 16 characters",
                });
            } else {
                keys.push(Sha256::digest(e.as_bytes()).into());
            }
        }
        Ok(ApiKeys(keys))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when `presented` is one of the keys. Every stored digest is compared, each in
    /// constant time, so the time does not depend on which key (if any) matched.
    pub fn accepts(&self, presented: &str) -> bool {
        self.accepted_digest(presented).is_some()
    }

    /// The digest of `presented` when it is one of the keys (the caller's identity for uploads).
    pub fn accepted_digest(&self, presented: &str) -> Option<[u8; 32]> {
        let d: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut ok = subtle::Choice::from(0);
        for k in &self.0 {
            ok |= k.ct_eq(&d);
        }
        bool::from(ok).then_some(d)
    }
}

/// Middleware: 401 JSON unless the request carries an accepted bearer key.
pub(crate) async fn require_key(
    State(state): State<Arc<crate::AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let keys = &state.server.api_keys;
    if keys.is_empty() {
        return next.run(req).await;
    }
    let accepted = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .and_then(|k| keys.accepted_digest(k));
    if let Some(d) = accepted {
        // Which key it was (as its digest): uploads and results are kept apart per key.
        let mut req = req;
        req.extensions_mut().insert(crate::uploads::ApiKeyDigest(d));
        return next.run(req).await;
    }
    crate::drain(req).await;
    let mut resp = ApiError::new(
        ErrorKind::Unauthorized,
        "missing or unknown API key: send Authorization: Bearer <key>",
    )
    .into_response();
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_hashed_keys_are_accepted_others_not() {
        let hashed = format!(
            "sha256:{}",
            hex::encode(Sha256::digest(b"second-key-0123456789"))
        );
        let keys = ApiKeys::from_entries(&["first-key-0123456789".into(), hashed]).expect("keys");
        assert!(keys.accepts("first-key-0123456789"));
        assert!(keys.accepts("second-key-0123456789"));
        assert!(!keys.accepts("first-key-012345678"));
        assert!(!keys.accepts(""));
        assert!(ApiKeys::default().is_empty());
        assert!(ApiKeys::from_entries(&["short".into()]).is_err());
        assert!(ApiKeys::from_entries(&["sha256:abc".into()]).is_err());
        assert_eq!(format!("{keys:?}"), "ApiKeys(2 keys)", "never printed");
    }
}
