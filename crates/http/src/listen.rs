//! The local server's connections (not used inside AWS Lambda, where API Gateway is the HTTP
//! server). Each connection carries one HTTP/1.1 request: its head is read here with a deadline and
//! size limits and checked before hyper sees it, so every rejection below the router — a head
//! that never ends, a too-long target, too many or too large header fields, a bad Content-Length,
//! another protocol version — is answered with the API's JSON error, and an idle or half-open
//! connection cannot stay open. A cap on open connections answers the excess 503 at once. The
//! response closes the connection (`Connection: close`): one request costs tens of milliseconds
//! of CPU, a new loopback or LAN connection a fraction of one.

use crate::error::{ApiError, ErrorKind};
use axum::Router;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

/// Largest request head (request line and header fields) accepted.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Longest request target (path and query) accepted.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most header fields accepted in one request.
pub const MAX_HEADERS: usize = 64;

/// Limits of the connection layer.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionLimits {
    /// Connections open at once; the next one is answered 503 TOO_MANY_CONNECTIONS and closed.
    pub max_connections: usize,
    /// Time from accepting a connection to having its whole request head.
    pub header_timeout: Duration,
    pub max_head_bytes: usize,
    pub max_uri_bytes: usize,
    pub max_headers: usize,
}

/// Why a request head is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeadProblem {
    Malformed,
    Version,
    TooManyHeaders,
    TooLarge,
    UriTooLong(usize),
    BadContentLength,
    LengthAndChunked,
    BadTransferEncoding,
}

impl HeadProblem {
    fn to_error(&self, limits: &ConnectionLimits) -> ApiError {
        let (kind, message) = match self {
            HeadProblem::Malformed => (
                ErrorKind::BadRequest,
                "the request head is not valid HTTP/1.1".to_string(),
            ),
            HeadProblem::Version => (
                ErrorKind::HttpVersion,
                "only HTTP/1.1 and HTTP/1.0 are served (HTTP/2 terminates at the proxy in front)"
                    .to_string(),
            ),
            HeadProblem::TooManyHeaders => (
                ErrorKind::HeadersTooLarge,
                format!("more than {} header fields", limits.max_headers),
            ),
            HeadProblem::TooLarge => (
                ErrorKind::HeadersTooLarge,
                format!("the request head is over {} bytes", limits.max_head_bytes),
            ),
            HeadProblem::UriTooLong(n) => (
                ErrorKind::UriTooLong,
                format!(
                    "the request target is {n} bytes or more, over the limit of {}",
                    limits.max_uri_bytes
                ),
            ),
            HeadProblem::BadContentLength => (
                ErrorKind::BadContentLength,
                "Content-Length must be one decimal number".to_string(),
            ),
            HeadProblem::LengthAndChunked => (
                ErrorKind::BadContentLength,
                "a request may not have both Content-Length and Transfer-Encoding".to_string(),
            ),
            HeadProblem::BadTransferEncoding => (
                ErrorKind::BadRequest,
                "the only Transfer-Encoding accepted is chunked (HTTP/1.1)".to_string(),
            ),
        };
        ApiError::new(kind, message)
    }
}

/// Check the bytes received so far: `Ok(None)` = the head is not complete yet, `Ok(Some(n))` = a
/// complete, acceptable head of `n` bytes, `Err` = refuse the request.
pub(crate) fn check_head(
    buf: &[u8],
    limits: &ConnectionLimits,
) -> Result<Option<usize>, HeadProblem> {
    let mut fields = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut req = httparse::Request::new(&mut fields);
    let n = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            // A request line still without its end, already past the target limit.
            let line_end = buf.iter().position(|&b| b == b'\n');
            if line_end.is_none() && buf.len() > limits.max_uri_bytes + 32 {
                return Err(HeadProblem::UriTooLong(buf.len()));
            }
            if buf.len() > limits.max_head_bytes {
                return Err(HeadProblem::TooLarge);
            }
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HeadProblem::TooManyHeaders),
        Err(httparse::Error::Version) => return Err(HeadProblem::Version),
        Err(_) => return Err(HeadProblem::Malformed),
    };
    if n > limits.max_head_bytes {
        return Err(HeadProblem::TooLarge);
    }
    let path_len = req.path.map_or(0, str::len);
    if path_len > limits.max_uri_bytes {
        return Err(HeadProblem::UriTooLong(path_len));
    }
    let mut length: Option<u64> = None;
    let mut chunked = false;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value)
                .map_err(|_| HeadProblem::BadContentLength)?
                .trim_matches([' ', '\t']);
            if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HeadProblem::BadContentLength);
            }
            let parsed: u64 = v.parse().map_err(|_| HeadProblem::BadContentLength)?;
            if length.is_some_and(|l| l != parsed) {
                return Err(HeadProblem::BadContentLength);
            }
            length = Some(parsed);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let v = std::str::from_utf8(h.value).map_err(|_| HeadProblem::BadTransferEncoding)?;
            if chunked || !v.trim_matches([' ', '\t']).eq_ignore_ascii_case("chunked") {
                return Err(HeadProblem::BadTransferEncoding);
            }
            chunked = true;
        }
    }
    if chunked && req.version != Some(1) {
        return Err(HeadProblem::BadTransferEncoding);
    }
    if chunked && length.is_some() {
        return Err(HeadProblem::LengthAndChunked);
    }
    Ok(Some(n))
}

/// Accept connections until `stop` turns true, then wait for the connections still open at most
/// `grace` (a stalled client cannot hold the process longer).
pub(crate) async fn run(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let mut stopping = stop.clone();
    let max = limits.max_connections.clamp(1, u32::MAX as usize);
    let open = Arc::new(Semaphore::new(max));
    let limits = Arc::new(limits);
    loop {
        tokio::select! {
            biased;
            _ = async { let _ = stopping.wait_for(|s| *s).await; } => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => match open.clone().try_acquire_owned() {
                    Ok(permit) => {
                        tokio::spawn(connection(stream, app.clone(), limits.clone(), stop.clone(), permit));
                    }
                    Err(_) => refuse(stream, max),
                },
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    tracing::info!("shutting down: no new connections, finishing requests in flight");
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    match tokio::time::timeout(grace, open.acquire_many(all)).await {
        Ok(_) => tracing::info!("every connection finished"),
        Err(_) => tracing::warn!(
            grace_s = grace.as_secs_f64(),
            open = max - open.available_permits(),
            "shutdown grace period over; exiting with connections still open"
        ),
    };
}

/// Over the connection cap: answer 503 if the socket takes it at once, and close. No task, no
/// waiting: a flood of connections costs one small write each.
fn refuse(stream: TcpStream, max: usize) {
    let e = ApiError::new(
        ErrorKind::TooManyConnections,
        format!("the server has its maximum of {max} connections open; retry shortly"),
    );
    let _ = stream.try_write(&e.to_http1_bytes());
}

async fn connection(
    mut stream: TcpStream,
    app: Router,
    limits: Arc<ConnectionLimits>,
    mut stop: watch::Receiver<bool>,
    _open: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(4096);
    let head = tokio::select! {
        r = tokio::time::timeout(limits.header_timeout, read_head(&mut stream, &mut buf, &limits)) => r,
        // No request in flight yet: nothing to finish.
        _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
    };
    let problem = match head {
        Ok(Ok(())) => None,
        Ok(Err(HeadRead::Closed)) => return,
        Ok(Err(HeadRead::Refused(p))) => Some(p.to_error(&limits)),
        // An idle connection is closed quietly; a client that started a head hears why.
        Err(_) if buf.is_empty() => return,
        Err(_) => Some(ApiError::new(
            ErrorKind::HeaderTimeout,
            format!(
                "the request head did not arrive within {:.0} s",
                limits.header_timeout.as_secs_f64()
            ),
        )),
    };
    if let Some(e) = problem {
        let id = uuid::Uuid::new_v4().to_string();
        tracing::info!(request_id = %id, http_status = e.status().as_u16(), code = e.code(), "refused below the router");
        answer_and_close(stream, &e.with_request_id(&id)).await;
        return;
    }
    let io = hyper_util::rt::TokioIo::new(Prefixed {
        prefix: buf,
        pos: 0,
        inner: stream,
    });
    let service = hyper_util::service::TowerToHyperService::new(app);
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(false)
        .serve_connection(io, service)
        .without_shutdown();
    match conn.await {
        // An answer sent before the whole body was read (an error, a busy server): let the
        // client finish writing for a moment so that it reads the answer instead of a reset.
        Ok(parts) => linger(parts.io.into_inner().inner).await,
        Err(e) => tracing::debug!(error = %e, "connection ended early"),
    }
}

enum HeadRead {
    /// The client closed (or the socket failed) before a whole head: nothing to answer.
    Closed,
    Refused(HeadProblem),
}

async fn read_head(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    limits: &ConnectionLimits,
) -> Result<(), HeadRead> {
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|_| HeadRead::Closed)?;
        if n == 0 {
            return Err(HeadRead::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
        match check_head(buf, limits) {
            Ok(Some(_)) => return Ok(()),
            Ok(None) => {}
            Err(p) => return Err(HeadRead::Refused(p)),
        }
    }
}

/// Write an error response, half-close, and read (and drop) what the client still sends for a
/// moment, so that closing does not reset the connection before the client reads the answer.
async fn answer_and_close(mut stream: TcpStream, e: &ApiError) {
    let bytes = e.to_http1_bytes();
    let write = stream.write_all(&bytes);
    if tokio::time::timeout(Duration::from_secs(2), write)
        .await
        .is_ok()
    {
        linger(stream).await;
    }
}

/// Half-close, then read and drop what the client still sends — at most 8 MiB for at most 1 s —
/// so that closing a socket with unread data does not reset the connection (and lose the answer)
/// before the client has read it.
async fn linger(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 8192];
    let read = async {
        let mut total = 0usize;
        while total < (8 << 20) {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), read).await;
}

/// The stream with the bytes already read (the request head, perhaps some body) in front, so
/// that hyper reads the request from its beginning.
struct Prefixed {
    prefix: Vec<u8>,
    pos: usize,
    inner: TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.pos < this.prefix.len() {
            let n = (this.prefix.len() - this.pos).min(buf.remaining());
            buf.put_slice(&this.prefix[this.pos..this.pos + n]);
            this.pos += n;
            if this.pos == this.prefix.len() {
                this.prefix = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            max_connections: 8,
            header_timeout: Duration::from_secs(1),
            max_head_bytes: MAX_HEAD_BYTES,
            max_uri_bytes: MAX_URI_BYTES,
            max_headers: MAX_HEADERS,
        }
    }

    fn check(head: &str) -> Result<Option<usize>, HeadProblem> {
        check_head(head.as_bytes(), &limits())
    }

    #[test]
    fn complete_heads_pass_and_partial_heads_wait() {
        let ok = "POST /v1/liveness HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\nbody";
        assert_eq!(check(ok), Ok(Some(ok.len() - 4)));
        assert_eq!(check("POST /v1/liveness HTTP/1.1\r\nHost: x"), Ok(None));
        assert_eq!(check(""), Ok(None));
        let chunked = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(matches!(check(chunked), Ok(Some(_))));
    }

    #[test]
    fn bad_lengths_are_refused() {
        for cl in ["abc", "-1", "1e3", "5, 5", "", "99999999999999999999"] {
            let h = format!("POST / HTTP/1.1\r\nContent-Length: {cl}\r\n\r\n");
            assert_eq!(check(&h), Err(HeadProblem::BadContentLength), "{cl:?}");
        }
        let twice = "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n";
        assert_eq!(check(twice), Err(HeadProblem::BadContentLength));
        let same = "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n";
        assert!(matches!(check(same), Ok(Some(_))));
        let both = "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(check(both), Err(HeadProblem::LengthAndChunked));
        let gzip = "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
        assert_eq!(check(gzip), Err(HeadProblem::BadTransferEncoding));
        let old = "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(check(old), Err(HeadProblem::BadTransferEncoding));
    }

    #[test]
    fn oversized_heads_are_refused_with_their_own_problem() {
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_URI_BYTES + 1));
        assert!(matches!(check(&long), Err(HeadProblem::UriTooLong(_))));
        // Still arriving, already too long: refused before the line ends.
        let arriving = format!("GET /{}", "a".repeat(MAX_URI_BYTES + 100));
        assert!(matches!(check(&arriving), Err(HeadProblem::UriTooLong(_))));
        let big = format!(
            "GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n",
            "b".repeat(MAX_HEAD_BYTES)
        );
        assert_eq!(check(&big), Err(HeadProblem::TooLarge));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(check(&many), Err(HeadProblem::TooManyHeaders));
    }

    #[test]
    fn other_protocols_are_refused() {
        let h2 = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        assert_eq!(check(h2), Err(HeadProblem::Version));
        assert_eq!(
            check("\x16\x03\x01\x02\x00\x01"),
            Err(HeadProblem::Malformed)
        );
        assert_eq!(
            check("GET / HTTP/1.1\r\nBad Header: x\r\n\r\n"),
            Err(HeadProblem::Malformed)
        );
    }

    #[test]
    fn every_problem_is_a_client_or_version_error_in_our_words() {
        let l = limits();
        for p in [
            HeadProblem::Malformed,
            HeadProblem::Version,
            HeadProblem::TooManyHeaders,
            HeadProblem::TooLarge,
            HeadProblem::UriTooLong(9000),
            HeadProblem::BadContentLength,
            HeadProblem::LengthAndChunked,
            HeadProblem::BadTransferEncoding,
        ] {
            let e = p.to_error(&l);
            let s = e.status().as_u16();
            assert!(s == 505 || (400..500).contains(&s), "{p:?} {s}");
            assert!(!e.message.contains('{'), "{}", e.message);
        }
    }
}
