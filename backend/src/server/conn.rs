//! One HTTP/1 connection's guards: a socket wrapper that closes connections whose writes stall
//! and gives hyper's own parse-error answers the JSON body, and a service wrapper that tells the
//! accept loop whether a request is in progress (so shutdown and eviction drop only idle
//! connections, half-sent request heads included).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use salvo::http::StatusCode;
use salvo::hyper::body::{Body, Frame, Incoming, SizeHint};
use salvo::hyper::service::Service as HyperService;
use salvo::hyper::{Request, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// Marks requests that arrived on a connection admitted into the reserve kept for scrapes and
/// probes: the API answers them 503 so that the reserve stays free for what it is for.
#[derive(Debug, Clone, Copy)]
pub struct ReservedConnection;

/// What the accept loop, the socket wrapper and the service wrapper share about a connection.
#[derive(Debug, Default)]
pub struct ConnState {
    /// A request head was handed to the service and its response body is not finished yet.
    busy: AtomicBool,
    /// A request reached the service and its response head is not written yet: what hyper
    /// writes while this is false is its own answer to a request it could not parse.
    answering: AtomicBool,
}

impl ConnState {
    /// True while a request is being handled or its response written.
    pub fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }
}

/// The status of an answer hyper writes by itself (400, 414, 431 with an empty body and no
/// content type, for a request head it could not parse). Our own answers always carry a body
/// with a content type, so they never match.
fn automatic_status(head: &[u8]) -> Option<u16> {
    let rest = head
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| head.strip_prefix(b"HTTP/1.0 "))?;
    let status = std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()?;
    if !matches!(status, 400 | 414 | 431) {
        return None;
    }
    let end = head.windows(4).position(|w| w == b"\r\n\r\n")?;
    let lower = head[..end].to_ascii_lowercase();
    let has = |needle: &[u8]| lower.windows(needle.len()).any(|w| w == needle);
    (has(b"\r\ncontent-length: 0") && !has(b"\r\ncontent-type:")).then_some(status)
}

/// The contract's answer to a request hyper refused: JSON `detail`, and the connection closed
/// (hyper closes it after a parse error).
fn json_rejection(status: u16) -> Bytes {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let detail = match status {
        414 => "the URL is too long",
        431 => "the request headers are too large or too many",
        _ => "the request could not be parsed as HTTP/1.1",
    };
    let body = serde_json::json!({ "detail": detail }).to_string();
    Bytes::from(format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        code.as_u16(),
        code.canonical_reason().unwrap_or("Bad Request"),
        body.len()
    ))
}

/// The socket of one connection, with the guards described in the module docs.
pub struct GuardedStream {
    stream: TcpStream,
    state: Arc<ConnState>,
    write_timeout: Duration,
    /// Running while a write waits for the client to read.
    stall: Option<Pin<Box<Sleep>>>,
    /// The JSON answer replacing hyper's empty one, and how much of it is written.
    replacement: Option<(Bytes, usize)>,
    /// Accounts for a refused request (its status), before the answer goes out, so that a
    /// client that scrapes right after its answer finds it counted.
    on_rejected: Option<Box<dyn FnOnce(u16) + Send>>,
}

impl GuardedStream {
    /// Wraps `stream`; a write that makes no progress for `write_timeout` fails, and
    /// `on_rejected` is called with the status when hyper refuses a request.
    pub fn new(
        stream: TcpStream,
        state: Arc<ConnState>,
        write_timeout: Duration,
        on_rejected: Box<dyn FnOnce(u16) + Send>,
    ) -> Self {
        Self {
            stream,
            state,
            write_timeout,
            stall: None,
            replacement: None,
            on_rejected: Some(on_rejected),
        }
    }

    /// Polls one write (`head` is its first bytes) with the stall timer and the replacement of
    /// hyper's own answers; `write` does the actual write.
    fn guarded_write(
        &mut self,
        cx: &mut Context<'_>,
        head: &[u8],
        len: usize,
        write: impl FnOnce(Pin<&mut TcpStream>, &mut Context<'_>) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        let starts_response = head.starts_with(b"HTTP/1.");
        if starts_response
            && self.replacement.is_none()
            && !self.state.answering.load(Ordering::Acquire)
            && let Some(status) = automatic_status(head)
        {
            if let Some(account) = self.on_rejected.take() {
                account(status);
            }
            self.replacement = Some((json_rejection(status), 0));
        }
        if self.replacement.is_some() {
            return self.write_replacement(cx, len);
        }
        let written = write(Pin::new(&mut self.stream), cx);
        let written = self.stalled(cx, written)?;
        if let Poll::Ready(n) = written
            && n > 0
            && starts_response
            && !head.starts_with(b"HTTP/1.1 1")
        {
            // The service's response head is out: from now on, hyper speaks for itself.
            self.state.answering.store(false, Ordering::Release);
        }
        written.map(Ok)
    }

    /// Writes the JSON answer in place of hyper's bytes, reporting them all written at the end.
    fn write_replacement(&mut self, cx: &mut Context<'_>, len: usize) -> Poll<io::Result<usize>> {
        while let Some((bytes, at)) = &self.replacement {
            if *at >= bytes.len() {
                break;
            }
            let (bytes, at) = (bytes.clone(), *at);
            let polled = Pin::new(&mut self.stream).poll_write(cx, &bytes[at..]);
            match self.stalled_raw(cx, polled) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    if let Some((_, at)) = &mut self.replacement {
                        *at += n;
                    }
                }
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => return Poll::Pending,
            }
        }
        // Anything hyper writes after its answer is swallowed too: it closes the connection.
        Poll::Ready(Ok(len))
    }

    fn stalled(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<usize>>,
    ) -> io::Result<Poll<usize>> {
        match self.stalled_raw(cx, polled) {
            Poll::Ready(Ok(n)) => Ok(Poll::Ready(n)),
            Poll::Ready(Err(error)) => Err(error),
            Poll::Pending => Ok(Poll::Pending),
        }
    }

    /// Starts the stall timer when a write waits, fails the write when it fires, and stops it
    /// on progress.
    fn stalled_raw<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stall = None;
            return polled;
        }
        let timeout = self.write_timeout;
        let stall = self
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        ready!(stall.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client did not read the response",
        )))
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .guarded_write(cx, buf, buf.len(), |stream, cx| stream.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let head: &[u8] = bufs.iter().find(|b| !b.is_empty()).map_or(&[], |b| b);
        let len = bufs.iter().map(|b| b.len()).sum();
        self.get_mut().guarded_write(cx, head, len, |stream, cx| {
            stream.poll_write_vectored(cx, bufs)
        })
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// Wraps salvo's per-connection handler: marks the connection busy while a request is handled,
/// and marks requests of reserve connections.
#[derive(Clone)]
pub struct ConnService<H> {
    handler: H,
    state: Arc<ConnState>,
    reserved: bool,
}

impl<H> ConnService<H> {
    /// Serves with `handler`; `reserved` for connections admitted into the reserve.
    pub fn new(handler: H, state: Arc<ConnState>, reserved: bool) -> Self {
        Self {
            handler,
            state,
            reserved,
        }
    }
}

impl<H, B> HyperService<Request<Incoming>> for ConnService<H>
where
    H: HyperService<Request<Incoming>, Response = Response<B>, Error = salvo::hyper::Error>,
    H::Future: Send + 'static,
    B: Body + Send + 'static,
{
    type Response = Response<GuardedBody<B>>;
    type Error = salvo::hyper::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        self.state.busy.store(true, Ordering::Release);
        self.state.answering.store(true, Ordering::Release);
        if self.reserved {
            req.extensions_mut().insert(ReservedConnection);
        }
        // Dropped with the response body, or with the future if the connection goes first.
        let guard = BusyGuard(Arc::clone(&self.state));
        let response = self.handler.call(req);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|inner| GuardedBody {
                inner,
                _guard: guard,
            }))
        })
    }
}

/// Clears the busy mark when dropped.
struct BusyGuard(Arc<ConnState>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Release);
    }
}

/// A response body that keeps its connection marked busy until hyper is done with it.
pub struct GuardedBody<B> {
    inner: B,
    _guard: BusyGuard,
}

impl<B: Body + Unpin> Body for GuardedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_own_answers_are_recognised_and_ours_are_not() {
        let hyper_431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\
            date: Sat, 05 Dec 2026 10:00:00 GMT\r\n\r\n";
        assert_eq!(automatic_status(hyper_431), Some(431));
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n\
            content-length: 0\r\n\r\n";
        assert_eq!(automatic_status(ours), None);
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(automatic_status(ok), None);
        assert_eq!(automatic_status(b"HTTP/1.1 4"), None);
    }

    #[test]
    fn the_json_rejection_is_a_complete_http_answer() {
        let bytes = json_rejection(414);
        let text = std::str::from_utf8(&bytes).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let detail: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(detail["detail"].is_string());
    }
}
