//! Lifeboat's SMTP/LMTP client, shared by replay, the submission relay and notices: one
//! connection, then transactions of MAIL, RCPT per recipient and DATA, each answer a
//! typed [`Reply`]. (The health probe judges each step itself: `origin_watch::probe`.)
//!
//! mail-send supplies the reply parser and the greeting; the DATA transfer is written
//! here because mail-send's adds a blank line to a message that already ends in CRLF
//! and does not dot-stuff a first line that starts with a dot.

use std::fmt;
use std::time::Duration;

use mail_send::SmtpClient;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::reply::Reply;

/// Which step of setting up a connection failed.
#[derive(Debug)]
pub enum ConnectError {
    Connect(std::io::Error),
    TimedOut(&'static str),
    /// The server greeted with something other than 220.
    Banner(Reply),
    /// EHLO/LHLO failed (refused, or the connection broke).
    Greeting(String),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Connect(e) => write!(f, "connect: {e}"),
            ConnectError::TimedOut(step) => write!(f, "{step}: timed out"),
            ConnectError::Banner(reply) => write!(f, "banner: {reply}"),
            ConnectError::Greeting(why) => write!(f, "greeting: {why}"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// The connection broke or the server stopped answering in time: the transaction's
/// outcome is unknown and the connection unusable.
#[derive(Debug)]
pub struct Broken(pub String);

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Broken {}

impl From<mail_send::Error> for Broken {
    fn from(e: mail_send::Error) -> Broken {
        Broken(e.to_string())
    }
}

impl From<std::io::Error> for Broken {
    fn from(e: std::io::Error) -> Broken {
        Broken(e.to_string())
    }
}

/// RFC 5321 §4.5.3.2.6: a client waits 10 minutes for the reply to the end of data
/// (the server may be scanning or delivering the message meanwhile).
const FINAL_REPLY_TIMEOUT: Duration = Duration::from_secs(600);

pub struct Client {
    /// Keeps `timeout` for every command.
    inner: SmtpClient<TcpStream>,
}

impl Client {
    /// Connects to `host:port` and greets it (LHLO for LMTP). `timeout` limits each step
    /// and, afterwards, every exchange.
    pub async fn connect(
        (host, port): (&str, u16),
        hostname: &str,
        lmtp: bool,
        timeout: Duration,
    ) -> Result<Client, ConnectError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect((host, port)))
            .await
            .map_err(|_| ConnectError::TimedOut("connect"))?
            .map_err(ConnectError::Connect)?;
        let _ = stream.set_nodelay(true);
        let mut inner = SmtpClient { stream, timeout };
        let banner: Reply = tokio::time::timeout(timeout, inner.read())
            .await
            .map_err(|_| ConnectError::TimedOut("banner"))?
            .map_err(|e| ConnectError::Greeting(e.to_string()))?
            .into();
        if banner.code != 220 {
            return Err(ConnectError::Banner(banner));
        }
        let greeting = if lmtp {
            inner.lhlo(hostname).await
        } else {
            inner.ehlo(hostname).await
        };
        greeting.map_err(|e| ConnectError::Greeting(e.to_string()))?;
        Ok(Client { inner })
    }

    /// `MAIL FROM:<sender>`, with `SIZE=` when known.
    pub async fn mail(&mut self, sender: &str, size: Option<u64>) -> Result<Reply, Broken> {
        let size = size.map(|s| format!(" SIZE={s}")).unwrap_or_default();
        self.command(&format!("MAIL FROM:<{sender}>{size}\r\n"))
            .await
    }

    pub async fn rcpt(&mut self, recipient: &str) -> Result<Reply, Broken> {
        self.command(&format!("RCPT TO:<{recipient}>\r\n")).await
    }

    /// DATA, then the message (dot-stuffed) if the server says 354. Returns the DATA
    /// refusal, or the final replies: one for SMTP, one per accepted recipient for LMTP
    /// (`replies`).
    pub async fn data(&mut self, message: &[u8], replies: usize) -> Result<Vec<Reply>, Broken> {
        let go = self.command("DATA\r\n").await?;
        if go.code != 354 {
            return Ok(vec![go]);
        }
        let answers = tokio::time::timeout(FINAL_REPLY_TIMEOUT, async {
            write_dot_stuffed(&mut self.inner.stream, message).await?;
            self.inner
                .read_many(replies.max(1))
                .await
                .map_err(Broken::from)
        })
        .await
        .map_err(|_| Broken("no answer after the message".into()))??;
        Ok(answers.into_iter().map(Reply::from).collect())
    }

    /// Ends a transaction the caller gave up on; a failure here only means the next
    /// transaction reconnects.
    pub async fn rset(&mut self) -> Result<Reply, Broken> {
        self.command("RSET\r\n").await
    }

    pub async fn quit(mut self) {
        let _ = self.command("QUIT\r\n").await;
    }

    async fn command(&mut self, line: &str) -> Result<Reply, Broken> {
        Ok(self.inner.cmd(line.as_bytes()).await?.into())
    }
}

/// RFC 5321 §4.5.2: a line starting with `.` gets another; the message ends with
/// CRLF `.` CRLF (the CRLF ending the last line counts).
async fn write_dot_stuffed(stream: &mut TcpStream, message: &[u8]) -> std::io::Result<()> {
    let stuffed = dot_stuff(message);
    stream.write_all(&stuffed).await?;
    stream.flush().await
}

fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 64);
    let mut line_start = true;
    for &byte in message {
        if line_start && byte == b'.' {
            out.push(b'.');
        }
        out.push(byte);
        line_start = byte == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::dot_stuff;

    #[test]
    fn dots_at_line_starts_are_doubled_and_the_end_marker_follows_the_last_line() {
        assert_eq!(
            dot_stuff(b".first\r\nmid.dle\r\n.\r\n..two\r\n"),
            b"..first\r\nmid.dle\r\n..\r\n...two\r\n.\r\n"
        );
    }

    #[test]
    fn a_message_without_a_final_line_end_gets_one() {
        assert_eq!(dot_stuff(b"body"), b"body\r\n.\r\n");
        assert_eq!(dot_stuff(b""), b"\r\n.\r\n");
    }
}
