//! A minimal HTTP/1.1 keep-alive client: one hyper connection over one TCP stream (or a TLS
//! stream over it, for `https://` targets), one request at a time (no pipelining). Each worker
//! owns one and reopens it through the run's [`Connector`] when the server closes it. TLS only
//! changes how a connection is opened: sending a request is the same code either way.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt as _;
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
    Http(#[from] hyper::Error),
    /// Two fresh connections in a row closed before the request could be written.
    #[error("the server closed the connection before the request was sent")]
    Unsent,
}

/// Why [`Connection::send`] failed.
#[derive(Debug)]
pub enum SendError {
    /// The request was never written (the connection was already closing): it is handed back
    /// so that it can be sent again on a fresh connection.
    Unsent(Box<Request<Full<Bytes>>>),
    /// The exchange failed after the request may have reached the server.
    Failed(ClientError),
}

impl From<hyper::Error> for SendError {
    fn from(e: hyper::Error) -> Self {
        Self::Failed(ClientError::Http(e))
    }
}

/// One open keep-alive connection.
#[derive(Debug)]
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
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

    /// Opens a connection and performs the HTTP/1.1 handshake (after TLS's, for https).
    pub async fn open(&self) -> Result<Connection, ClientError> {
        let stream = self.connect().await?;
        match &self.tls {
            None => Connection::handshake(TokioIo::new(stream)).await,
            Some(_) => Connection::handshake(TokioIo::new(self.secure(stream).await?)).await,
        }
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
    /// Opens a plain-HTTP connection to `addr` and performs the HTTP/1.1 handshake.
    pub async fn open(addr: SocketAddr) -> Result<Self, ClientError> {
        Connector::plain(addr).open().await
    }

    async fn handshake<T>(io: T) -> Result<Self, ClientError>
    where
        T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let (sender, connection) = http1::handshake(io).await?;
        // The connection task ends when the sender is dropped or the server closes the socket.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self { sender })
    }

    /// True while the connection can carry another request.
    pub fn is_open(&self) -> bool {
        !self.sender.is_closed()
    }

    /// Sends `request` and reads the whole response body (so the connection can be reused),
    /// returning the status.
    pub async fn send(&mut self, request: Request<Full<Bytes>>) -> Result<StatusCode, SendError> {
        if self.sender.ready().await.is_err() {
            return Err(SendError::Unsent(Box::new(request)));
        }
        let response = match self.sender.try_send_request(request).await {
            Ok(response) => response,
            Err(mut e) => {
                return Err(match e.take_message() {
                    Some(request) => SendError::Unsent(Box::new(request)),
                    None => SendError::Failed(ClientError::Http(e.into_error())),
                });
            }
        };
        let status = response.status();
        let mut body = response.into_body();
        // Discard the body frame by frame; the loop ends with the body.
        while let Some(frame) = body.frame().await {
            frame?;
        }
        Ok(status)
    }
}
