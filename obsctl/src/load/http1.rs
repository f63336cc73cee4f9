//! Reading HTTP/1.1 responses off a keep-alive connection, as cheaply as wrk does: the head
//! parsed in place with `httparse`, the body skipped by its framing (`Content-Length`, chunked,
//! or until close) without being kept, and the bytes of the next response left in the buffer.
//!
//! Written here rather than through hyper's client: hyper runs each connection as its own task
//! and hands every request and response across a channel, two task wake-ups per request that
//! cost obsctl about as much CPU as the rest of a request (profiled with `perf`): on a machine
//! shared with the target, that CPU is taken from the target.

use tokio::io::{AsyncRead, AsyncReadExt as _};

/// Largest response head accepted (status line and headers).
const MAX_HEAD: usize = 64 * 1024;
/// Most headers in a response head.
const MAX_HEADERS: usize = 128;
/// Bytes read at once.
const READ_CHUNK: usize = 16 * 1024;

/// Why a response could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The connection closed before the response was complete; `empty` when not one byte of it
    /// had arrived (a keep-alive connection the server had already closed).
    #[error("the connection closed before {}", if *empty { "any response" } else { "the response was complete" })]
    Closed {
        /// No byte of the response arrived.
        empty: bool,
    },
    /// The socket failed.
    #[error("reading the response failed: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not an HTTP/1.1 response.
    #[error("malformed response: {0}")]
    Malformed(String),
}

/// A response read to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// Its status.
    pub status: u16,
    /// Whether the connection can carry another request.
    pub reusable: bool,
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// The read side of one connection: what was read and not yet consumed.
#[derive(Debug)]
pub struct Reader {
    buf: Vec<u8>,
    start: usize,
}

impl Default for Reader {
    fn default() -> Self {
        Self {
            buf: Vec::with_capacity(READ_CHUNK),
            start: 0,
        }
    }
}

impl Reader {
    fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.buf.len());
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Reads more bytes; false at the end of the stream.
    async fn fill<R: AsyncRead + Unpin>(&mut self, io: &mut R) -> Result<bool, ReadError> {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        // Into the spare capacity: zeroing a buffer per read costs more than parsing.
        self.buf.reserve(READ_CHUNK);
        let n = io.read_buf(&mut self.buf).await?;
        Ok(n > 0)
    }

    /// Reads one whole response to the request just written (`head` for a HEAD request, whose
    /// response has no body whatever its headers say), skipping interim 1xx responses.
    pub async fn response<R: AsyncRead + Unpin>(
        &mut self,
        io: &mut R,
        head: bool,
    ) -> Result<Response, ReadError> {
        let mut any = !self.pending().is_empty();
        loop {
            let (status, framing, keep_alive) = loop {
                match parse_head(self.pending(), head)? {
                    Some((consumed, parsed)) => {
                        self.consume(consumed);
                        break parsed;
                    }
                    None if self.pending().len() >= MAX_HEAD => {
                        return Err(ReadError::Malformed(format!(
                            "a response head longer than {MAX_HEAD} bytes"
                        )));
                    }
                    None => {
                        if !self.fill(io).await? {
                            return Err(ReadError::Closed { empty: !any });
                        }
                        any = true;
                    }
                }
            };
            // 1xx (but 101, which ends HTTP on this connection) come before the final response.
            if (100..200).contains(&status) && status != 101 {
                continue;
            }
            let complete = self.skip_body(io, framing).await?;
            return Ok(Response {
                status,
                reusable: keep_alive && complete && framing != Framing::UntilClose && status != 101,
            });
        }
    }

    /// Discards the body; false when it ended with the connection.
    async fn skip_body<R: AsyncRead + Unpin>(
        &mut self,
        io: &mut R,
        framing: Framing,
    ) -> Result<bool, ReadError> {
        match framing {
            Framing::None => Ok(true),
            Framing::Length(n) => self.skip(io, n).await.map(|()| true),
            Framing::Chunked => self.skip_chunks(io).await.map(|()| true),
            Framing::UntilClose => {
                self.consume(self.pending().len());
                while self.fill(io).await? {
                    self.consume(self.pending().len());
                }
                Ok(false)
            }
        }
    }

    async fn skip<R: AsyncRead + Unpin>(
        &mut self,
        io: &mut R,
        mut n: u64,
    ) -> Result<(), ReadError> {
        loop {
            let here = (self.pending().len() as u64).min(n);
            self.consume(here as usize);
            n -= here;
            if n == 0 {
                return Ok(());
            }
            if !self.fill(io).await? {
                return Err(ReadError::Closed { empty: false });
            }
        }
    }

    /// One line (without its CRLF), read as far as needed.
    async fn line<R: AsyncRead + Unpin>(&mut self, io: &mut R) -> Result<Vec<u8>, ReadError> {
        loop {
            if let Some(at) = self.pending().windows(2).position(|w| w == b"\r\n") {
                let line = self.pending()[..at].to_vec();
                self.consume(at + 2);
                return Ok(line);
            }
            if self.pending().len() >= MAX_HEAD {
                return Err(ReadError::Malformed("a chunk line without its end".into()));
            }
            if !self.fill(io).await? {
                return Err(ReadError::Closed { empty: false });
            }
        }
    }

    async fn skip_chunks<R: AsyncRead + Unpin>(&mut self, io: &mut R) -> Result<(), ReadError> {
        // Bounded by the stream: each pass consumes a chunk, and a stream that stops sending
        // ends in Closed or in the caller's timeout.
        loop {
            let line = self.line(io).await?;
            let size = chunk_size(&line)?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !self.line(io).await?.is_empty() {}
                return Ok(());
            }
            self.skip(io, size).await?;
            if !self.line(io).await?.is_empty() {
                return Err(ReadError::Malformed(
                    "chunk data longer than its size".into(),
                ));
            }
        }
    }
}

/// The size of a chunk from its line (`1a;ext=1`).
fn chunk_size(line: &[u8]) -> Result<u64, ReadError> {
    let digits = line.split(|b| *b == b';').next().unwrap_or_default();
    let text = std::str::from_utf8(digits).unwrap_or_default().trim();
    u64::from_str_radix(text, 16).map_err(|_| {
        ReadError::Malformed(format!("chunk size {:?}", String::from_utf8_lossy(line)))
    })
}

/// A parsed response head: status, body framing, whether the server keeps the connection.
type Head = (u16, Framing, bool);

/// The head at the start of `bytes`, if complete, and the bytes it takes.
fn parse_head(bytes: &[u8], head: bool) -> Result<Option<(usize, Head)>, ReadError> {
    // Left uninitialised: zeroing 128 headers per response cost more than parsing them.
    let mut headers =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        bytes,
        &mut headers,
    );
    let consumed = match parsed {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(ReadError::Malformed(e.to_string())),
    };
    let status = response.code.unwrap_or(0);
    let http10 = response.version == Some(0);
    let (mut length, mut chunked, mut close, mut keep_alive) = (None, false, false, false);
    for header in response.headers.iter() {
        let value = || std::str::from_utf8(header.value).unwrap_or_default();
        if header.name.eq_ignore_ascii_case("content-length") {
            let value = value();
            let parsed = value
                .trim()
                .parse::<u64>()
                .map_err(|_| ReadError::Malformed(format!("content-length {value:?}")))?;
            if length.is_some_and(|l| l != parsed) {
                return Err(ReadError::Malformed("conflicting content-length".into()));
            }
            length = Some(parsed);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value()
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if header.name.eq_ignore_ascii_case("connection") {
            for token in value().split(',').map(str::trim) {
                close |= token.eq_ignore_ascii_case("close");
                keep_alive |= token.eq_ignore_ascii_case("keep-alive");
            }
        }
    }
    let no_body = head || (100..200).contains(&status) || status == 204 || status == 304;
    let framing = if no_body {
        Framing::None
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    let reusable = !close && (!http10 || keep_alive);
    Ok(Some((consumed, (status, framing, reusable))))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads responses from `wire`, delivered `piece` bytes at a time.
    async fn responses(wire: &[u8], piece: usize, heads: &[bool]) -> Vec<Result<Response, String>> {
        let (mut client, mut server) = tokio::io::duplex(64);
        let wire = wire.to_vec();
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt as _;
            for part in wire.chunks(piece.max(1)) {
                if server.write_all(part).await.is_err() {
                    return;
                }
            }
        });
        let mut reader = Reader::default();
        let mut out = Vec::new();
        for head in heads {
            out.push(
                reader
                    .response(&mut client, *head)
                    .await
                    .map_err(|e| e.to_string()),
            );
        }
        writer.abort();
        out
    }

    fn ok(status: u16, reusable: bool) -> Result<Response, String> {
        Ok(Response { status, reusable })
    }

    #[tokio::test]
    async fn keep_alive_responses_follow_each_other_whatever_the_framing_and_the_pieces() {
        let wire = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello\
HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nTrailer: t\r\n\r\n\
HTTP/1.1 204 No Content\r\n\r\n\
HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n\
HTTP/1.1 503 Busy\r\nconnection: close\r\ncontent-length: 2\r\n\r\nno";
        for piece in [1, 7, 4096] {
            let got = responses(wire, piece, &[false, false, false, true, false]).await;
            assert_eq!(
                got,
                [
                    ok(200, true),
                    ok(404, true),
                    ok(204, true),
                    ok(200, true),
                    ok(503, false)
                ],
                "pieces of {piece}"
            );
        }
    }

    #[tokio::test]
    async fn a_body_until_close_and_http_1_0_end_the_connection() {
        let got = responses(b"HTTP/1.1 200 OK\r\n\r\nbody until close", 5, &[false]).await;
        assert_eq!(got, [ok(200, false)]);
        let got = responses(
            b"HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n",
            64,
            &[false],
        )
        .await;
        assert_eq!(got, [ok(200, false)]);
    }

    #[tokio::test]
    async fn broken_responses_are_errors_never_panics() {
        let cases: [&[u8]; 6] = [
            b"",
            b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort",
            b"garbage\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        ];
        for wire in cases {
            let got = responses(wire, 3, &[false]).await;
            assert!(
                got[0].is_err(),
                "{:?}: {got:?}",
                String::from_utf8_lossy(wire)
            );
        }
        let empty = responses(b"", 1, &[false]).await;
        assert_eq!(empty[0], Err(ReadError::Closed { empty: true }.to_string()));
    }
}
