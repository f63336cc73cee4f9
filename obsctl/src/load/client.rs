//! A minimal HTTP/1.1 keep-alive client: one hyper connection over one TCP stream, one request at
//! a time (no pipelining). Each worker owns one and reopens it when the server closes it.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use tokio::net::TcpStream;

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

impl Connection {
    /// Opens a connection to `addr` and performs the HTTP/1.1 handshake.
    pub async fn open(addr: SocketAddr) -> Result<Self, ClientError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|error| ClientError::Connect { addr, error })?;
        // Small requests must not wait for Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
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
