//! A minimal HTTP/1.1 keep-alive client: one TCP stream (or a TLS stream over it, for
//! `https://` targets), one request at a time (no pipelining), requests written as prepared
//! bytes and responses read by [`http1`](super::http1). Each worker owns one connection and
//! reopens it through the run's [`Connector`] when the server closes it. TLS only changes how a
//! connection is opened: sending a request is the same code either way.

use super::http1::{ReadError, Reader};
use rustls_pki_types::ServerName;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Why a request failed before a status was known.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The TCP connection could not be opened.
    #[error("cannot connect to {addr}: {error}")]
    Connect {
        /// The address tried.
        addr: SocketAddr,
        /// The socket error.
        error: std::io::Error,
    },
    /// The TLS handshake failed (certificate not trusted, client certificate required, ...).
    #[error("TLS with {addr} failed: {detail}")]
    Tls {
        /// The address tried.
        addr: SocketAddr,
        /// What rustls found, and which flag fixes it.
        detail: String,
    },
    /// The HTTP exchange failed (connection reset, malformed response, ...).
    #[error("HTTP error: {0}")]
    Http(String),
    /// Two fresh connections in a row closed before the request could be written.
    #[error("the server closed the connection before the request was sent")]
    Unsent,
}

/// Why [`Connection::send`] failed.
#[derive(Debug)]
pub enum SendError {
    /// The request was never written (the connection was already closed): it can be sent
    /// again on a fresh connection.
    Unsent,
    /// A reused connection closed without a byte of answer: the server had closed it while it
    /// was idle, most likely before reading the request. Safe to send again only for an
    /// idempotent request.
    NoAnswer,
    /// The exchange failed after the request may have reached the server.
    Failed(ClientError),
}

/// A request ready to write: its bytes, and what the response reading needs to know of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The request line, headers and body.
    pub bytes: Vec<u8>,
    /// A HEAD request: its response has no body.
    pub head: bool,
    /// Safe to send twice (GET, HEAD, PUT, DELETE, OPTIONS, TRACE).
    pub idempotent: bool,
}

/// A connection's byte stream: TCP, or TLS over TCP.
#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Idle time after which a plain connection is checked for a close by the server before it is
/// reused: servers close idle keep-alive connections after seconds, never within this.
const IDLE_CHECK: Duration = Duration::from_millis(100);

/// One open keep-alive connection.
#[derive(Debug)]
pub struct Connection {
    stream: Stream,
    reader: Reader,
    /// The last response allowed another request.
    reusable: bool,
    /// When the last response ended; `None` before the first request.
    last_used: Option<Instant>,
}

/// Opens connections to the target: plain TCP, or TLS over it.
#[derive(Clone)]
pub struct Connector {
    addr: SocketAddr,
    /// The TLS connector and the name the server's certificate must carry (`https://` only).
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("addr", &self.addr)
            .field("tls", &self.tls.as_ref().map(|(_, name)| name))
            .finish()
    }
}

impl Connector {
    /// Plain HTTP to `addr`.
    pub fn plain(addr: SocketAddr) -> Self {
        Self { addr, tls: None }
    }

    /// HTTPS to `addr`, verifying the server as `server_name` with `config`.
    pub fn tls(
        addr: SocketAddr,
        config: Arc<rustls::ClientConfig>,
        server_name: ServerName<'static>,
    ) -> Self {
        Self {
            addr,
            tls: Some((TlsConnector::from(config), server_name)),
        }
    }

    /// The address connected to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Opens a connection (with its TLS handshake, for https).
    pub async fn open(&self) -> Result<Connection, ClientError> {
        let stream = self.connect().await?;
        let stream = match &self.tls {
            None => Stream::Plain(stream),
            Some(_) => Stream::Tls(Box::new(self.secure(stream).await?)),
        };
        Ok(Connection {
            stream,
            reader: Reader::default(),
            reusable: true,
            last_used: None,
        })
    }

    /// For https, before a run: a TLS handshake, then a moment (`wait`) for the server's verdict
    /// on the client certificate, which TLS 1.3 sends after the handshake. A TLS failure is
    /// [`ClientError::Tls`], said once instead of as one error per request; other failures
    /// are left for the run to count. Sends no request.
    pub async fn preflight(&self, wait: Duration) -> Result<(), ClientError> {
        if self.tls.is_none() {
            return Ok(());
        }
        let Ok(stream) = self.connect().await else {
            return Ok(());
        };
        let mut stream = self.secure(stream).await?;
        let mut byte = [0u8; 1];
        if let Ok(Err(error)) = tokio::time::timeout(wait, stream.read(&mut byte)).await
            && let Some(detail) = crate::tls::describe(&error)
        {
            return Err(ClientError::Tls {
                addr: self.addr,
                detail,
            });
        }
        Ok(())
    }

    async fn connect(&self) -> Result<TcpStream, ClientError> {
        let addr = self.addr;
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|error| ClientError::Connect { addr, error })?;
        // Small requests must not wait for Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    async fn secure(&self, stream: TcpStream) -> Result<TlsStream<TcpStream>, ClientError> {
        let Some((connector, name)) = &self.tls else {
            return Err(ClientError::Unsent);
        };
        connector
            .connect(name.clone(), stream)
            .await
            .map_err(|error| ClientError::Tls {
                addr: self.addr,
                detail: crate::tls::describe(&error).unwrap_or_else(|| error.to_string()),
            })
    }
}

impl Connection {
    /// Opens a plain-HTTP connection to `addr`.
    pub async fn open(addr: SocketAddr) -> Result<Self, ClientError> {
        Connector::plain(addr).open().await
    }

    /// True while the connection can carry another request at `now`: the last response allowed
    /// it, and (after an idle spell, for plain TCP) the server has not closed it meanwhile.
    pub fn is_open(&self, now: Instant) -> bool {
        if !self.reusable {
            return false;
        }
        let idle = self
            .last_used
            .is_some_and(|t| now.saturating_duration_since(t) >= IDLE_CHECK);
        match &self.stream {
            // Nothing may arrive between responses: data or an end of stream both mean the
            // server is done with this connection.
            Stream::Plain(tcp) if idle => {
                matches!(tcp.try_read(&mut [0u8; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
            _ => true,
        }
    }

    /// Writes `request`, sent at `now`, and reads the whole response (so the connection can be
    /// reused), returning the status. The caller's clock reading is reused: a request's hot
    /// path reads the clock as few times as it can.
    pub async fn send(&mut self, request: &Outgoing, now: Instant) -> Result<u16, SendError> {
        let reused = self.last_used.is_some();
        if let Err(error) = self.write(&request.bytes).await {
            // A reused connection that refuses the write was closed by the server: the request
            // did not reach it.
            return Err(if reused {
                SendError::Unsent
            } else {
                SendError::Failed(ClientError::Http(error.to_string()))
            });
        }
        match self.reader.response(&mut self.stream, request.head).await {
            Ok(response) => {
                self.reusable = response.reusable;
                self.last_used = Some(now);
                Ok(response.status)
            }
            Err(ReadError::Closed { empty: true }) if reused => Err(SendError::NoAnswer),
            Err(error) => Err(SendError::Failed(ClientError::Http(error.to_string()))),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }
}
