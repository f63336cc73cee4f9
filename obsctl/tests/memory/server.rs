//! A `/metrics` server on 127.0.0.1:0 that answers every request with one shared body, framed
//! with a `Content-Length` or chunked (so a client learns the size only by reading); it stops
//! when dropped.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How the body is framed on the wire.
#[derive(Debug, Clone, Copy)]
pub enum Framing {
    /// `Content-Length: N`, the body in one write.
    ContentLength,
    /// `Transfer-Encoding: chunked`, 64 KiB a chunk.
    Chunked,
}

/// Serves one body; stops when dropped.
pub struct BodyServer {
    addr: std::net::SocketAddr,
    task: JoinHandle<()>,
}

impl BodyServer {
    /// Serve `body` as Prometheus text on an ephemeral loopback port.
    pub async fn start(body: Vec<u8>, framing: Framing) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let body: Arc<[u8]> = body.into();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, Arc::clone(&body), framing));
            }
        });
        Self { addr, task }
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for BodyServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Answer requests on one connection until the client closes it (or stops reading).
async fn serve(mut stream: TcpStream, body: Arc<[u8]>, framing: Framing) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut head = Vec::new();
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if !head.windows(4).any(|w| w == b"\r\n\r\n") {
            continue;
        }
        head.clear();
        if answer(&mut stream, &body, framing).await.is_err() {
            return;
        }
    }
}

async fn answer(stream: &mut TcpStream, body: &[u8], framing: Framing) -> std::io::Result<()> {
    let framing_header = match framing {
        Framing::ContentLength => format!("Content-Length: {}", body.len()),
        Framing::Chunked => "Transfer-Encoding: chunked".to_owned(),
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         {framing_header}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    match framing {
        Framing::ContentLength => stream.write_all(body).await?,
        Framing::Chunked => {
            for chunk in body.chunks(64 * 1024) {
                stream
                    .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .await?;
                stream.write_all(chunk).await?;
                stream.write_all(b"\r\n").await?;
            }
            stream.write_all(b"0\r\n\r\n").await?;
        }
    }
    stream.flush().await
}
