//! The byte side of a line-based connection (POP3, SMTP submission, the fallback
//! listener): a stream that may turn into TLS (STLS/STARTTLS), split into lines with a
//! length limit, and written in batches so pipelined commands get their answers in one
//! write.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;

pub use crate::listener::Stream;

#[derive(Debug)]
pub enum ReadError {
    /// The line was longer than the limit; it was read and thrown away.
    TooLong,
    /// The client closed the connection.
    Closed,
    Io(io::Error),
}

pub struct Connection<S = Stream> {
    stream: S,
    /// Bytes read but not consumed yet: the start of the next line(s).
    buffer: Vec<u8>,
    max_line: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    pub fn new(stream: S, max_line: usize) -> Connection<S> {
        Connection {
            stream,
            buffer: Vec::with_capacity(1024),
            max_line,
        }
    }

    /// Whether a whole line is already buffered (the client pipelines): answers can
    /// wait and go out together.
    pub fn has_buffered_line(&self) -> bool {
        self.buffer.contains(&b'\n')
    }

    pub fn has_buffered_bytes(&self) -> bool {
        !self.buffer.is_empty()
    }

    /// The next line, without its line end (CRLF or a bare LF).
    pub async fn read_line(&mut self) -> Result<Vec<u8>, ReadError> {
        let mut discarding = false;
        let mut searched = 0;
        loop {
            if let Some(offset) = self.buffer[searched..].iter().position(|&b| b == b'\n') {
                let end = searched + offset;
                let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
                if discarding {
                    return Err(ReadError::TooLong);
                }
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if self.buffer.len() > self.max_line {
                // Keep reading until the line ends, but do not keep it.
                discarding = true;
                self.buffer.clear();
            }
            searched = self.buffer.len();
            self.fill().await?;
        }
    }

    /// Hands the buffered bytes, then each chunk read, to `consume`, which returns how
    /// many it used and whether it is done; the rest stays buffered for the next read.
    /// For bodies that are not lines (SMTP DATA).
    pub async fn read_with(
        &mut self,
        mut consume: impl FnMut(&[u8]) -> (usize, bool),
    ) -> Result<(), ReadError> {
        loop {
            if !self.buffer.is_empty() {
                let (used, done) = consume(&self.buffer);
                self.buffer.drain(..used);
                if done {
                    return Ok(());
                }
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> Result<(), ReadError> {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await.map_err(ReadError::Io)?;
        if n == 0 {
            return Err(ReadError::Closed);
        }
        self.buffer.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    pub async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    pub async fn shutdown(&mut self) {
        let _ = self.stream.shutdown().await;
    }
}

impl Connection<Stream> {
    /// Runs the TLS handshake on the plain stream (after STLS/STARTTLS). Anything the
    /// client sent before the handshake must have been refused by the caller (RFC 2595
    /// §4, RFC 3207 §5 and the STARTTLS command injection class of bugs): this drops
    /// the buffer.
    pub async fn start_tls(self, acceptor: &TlsAcceptor) -> io::Result<Connection> {
        let Stream::Plain(tcp) = self.stream else {
            return Err(io::Error::other("TLS is already active"));
        };
        let tls = acceptor.accept(tcp).await?;
        Ok(Connection {
            stream: Stream::Tls(Box::new(tls)),
            buffer: Vec::with_capacity(1024),
            max_line: self.max_line,
        })
    }
}
