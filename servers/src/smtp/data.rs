//! The server side of DATA (RFC 5321 §4.1.1.4): the message up to CRLF `.` CRLF with
//! dot-stuffing undone, by smtp-proto's `DataReceiver`, for every SMTP server Lifeboat
//! runs (submission and the fallback listener). Only CRLF ends a line here: a bare LF
//! followed by `.` is message text, never the end (the "SMTP smuggling" class of bugs).

use smtp_proto::request::receiver::{DataReceiver, DummyDataReceiver};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::connection::{Connection, ReadError};

#[derive(Debug, PartialEq, Eq)]
pub enum Data {
    /// The message, its last line ending in CRLF.
    Message(Vec<u8>),
    /// Bigger than the limit: read to the end and thrown away, so the session stays
    /// in step and can answer 552.
    TooBig,
}

/// Reads one DATA body after the 354. Memory stays within `max` plus one read.
pub async fn read_data<S: AsyncRead + AsyncWrite + Unpin>(
    connection: &mut Connection<S>,
    max: u64,
) -> Result<Data, ReadError> {
    let mut receiver = DataReceiver::new();
    let mut message = Vec::new();
    let mut done = false;
    connection
        .read_with(|bytes| {
            let mut iter = bytes.iter();
            done = receiver.ingest(&mut iter, &mut message);
            (
                bytes.len() - iter.as_slice().len(),
                done || message.len() as u64 > max,
            )
        })
        .await?;
    if message.len() as u64 <= max {
        return Ok(Data::Message(message));
    }
    drop(message);
    if done {
        return Ok(Data::TooBig);
    }
    // Over the limit: skip the rest without keeping it.
    let mut skipper = DummyDataReceiver::new_data(&receiver);
    connection
        .read_with(|bytes| {
            let mut iter = bytes.iter();
            let done = skipper.ingest(&mut iter);
            (bytes.len() - iter.as_slice().len(), done)
        })
        .await?;
    Ok(Data::TooBig)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn read(input: &[u8], max: u64) -> (Result<Data, ReadError>, Vec<u8>) {
        let (client, server) = tokio::io::duplex(1 << 16);
        let mut client = client;
        client.write_all(input).await.unwrap();
        drop(client);
        let mut connection = Connection::new(server, 1000);
        let data = read_data(&mut connection, max).await;
        let rest = connection.read_line().await.unwrap_or_default();
        (data, rest)
    }

    #[tokio::test]
    async fn the_body_ends_at_crlf_dot_crlf_and_dots_are_unstuffed() {
        let (data, rest) = read(b"Subject: x\r\n\r\n..dot\r\nlast\r\n.\r\nQUIT\r\n", 1000).await;
        assert_eq!(
            data.unwrap(),
            Data::Message(b"Subject: x\r\n\r\n.dot\r\nlast\r\n".to_vec())
        );
        assert_eq!(rest, b"QUIT", "what follows the body is the next command");
    }

    #[tokio::test]
    async fn a_bare_lf_dot_does_not_end_the_body() {
        let (data, _) = read(b"a\n.\nMAIL FROM:<x>\r\nb\r\n.\r\n", 1000).await;
        assert_eq!(
            data.unwrap(),
            Data::Message(b"a\n.\nMAIL FROM:<x>\r\nb\r\n".to_vec())
        );
    }

    #[tokio::test]
    async fn an_oversized_body_is_read_to_its_end_and_refused() {
        let mut input = b"x".repeat(5000);
        input.extend_from_slice(b"\r\n.\r\nNOOP\r\n");
        let (data, rest) = read(&input, 100).await;
        assert_eq!(data.unwrap(), Data::TooBig);
        assert_eq!(rest, b"NOOP");
    }

    #[tokio::test]
    async fn a_connection_closed_in_the_body_is_an_error() {
        let (data, _) = read(b"unfinished\r\n", 1000).await;
        assert!(matches!(data, Err(ReadError::Closed)));
    }
}
