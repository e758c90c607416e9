//! The demo page: `GET /` and `GET /demo` serve one self-contained HTML page (inline CSS and JS,
//! no external resources) that captures or uploads a selfie, posts it to `v1/liveness` and shows
//! the verdict. Served only when `server.demo` (EKYC_DEMO / --demo) is on.
//!
//! Content-Security-Policy: the inline `<script>` and `<style>` are allowed by their SHA-256
//! hashes, computed once from the embedded page, so the policy can never drift from the page and
//! no `'unsafe-inline'` is needed.

use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// The page, embedded in the binary.
pub(crate) const PAGE: &str = include_str!("../../../assets/demo.html");

/// Routes of the demo page (stateless, so they merge into a router of any state).
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(page))
        .route("/demo", get(page))
}

async fn page() -> Response {
    let mut resp = PAGE.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(csp()) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(self), microphone=(), geolocation=()"),
    );
    resp
}

/// The Content-Security-Policy of the page.
pub(crate) fn csp() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        let scripts = hashes(PAGE, "script");
        let styles = hashes(PAGE, "style");
        format!(
            "default-src 'none'; script-src {scripts}; style-src {styles}; \
             img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; \
             base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        )
    })
}

/// `'sha256-…'` sources for the contents of every `<tag>…</tag>` element of `html`
/// (`'none'` when there is none).
fn hashes(html: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find(&open) {
        let body = &rest[start + open.len()..];
        let Some(end) = body.find(&close) else { break };
        let digest = Sha256::digest(&body.as_bytes()[..end]);
        out.push(format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest)
        ));
        rest = &body[end + close.len()..];
    }
    if out.is_empty() {
        "'none'".to_string()
    } else {
        out.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_is_self_contained_and_hashed() {
        // One inline script and one inline style, both covered by the policy.
        assert_eq!(PAGE.matches("<script>").count(), 1);
        assert_eq!(PAGE.matches("<style>").count(), 1);
        let csp = csp();
        assert_eq!(csp.matches("'sha256-").count(), 2, "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        for needle in [
            "connect-src 'self'",
            "img-src 'self' blob: data:",
            "media-src 'self' blob:",
        ] {
            assert!(csp.contains(needle), "{needle} missing from {csp}");
        }
        // Nothing is loaded from elsewhere, and no inline handlers or style attributes (the
        // policy would block them).
        for bad in [
            "src=\"http",
            "href=\"http",
            "src=\"//",
            "href=\"//",
            "@import",
            "url(",
            " style=\"",
            " onclick=",
            " onload=",
        ] {
            assert!(!PAGE.contains(bad), "page contains {bad:?}");
        }
        // The API is called by a relative URL (so it also works under an API Gateway stage).
        assert!(PAGE.contains("\"v1/liveness"));
    }

    #[test]
    fn hashes_match_known_digest() {
        // sha256("") = 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=
        assert_eq!(
            hashes("<style></style>", "style"),
            "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
        );
        assert_eq!(hashes("<p>no script</p>", "script"), "'none'");
    }
}
