//! Lifeboat's SMTP clients (replay, the submission relay, notices): connecting and
//! greeting, and replies as text. The health probe judges each step itself
//! (`watch::probe`).

use std::time::Duration;

use mail_send::SmtpClient;
use smtp_proto::Response;
use tokio::net::TcpStream;

/// Connects to `host:port` and greets it (LHLO for LMTP), each step limited by
/// `timeout`, which the client keeps for its commands. The error says which step failed.
pub async fn connect(
    (host, port): (&str, u16),
    hostname: &str,
    lmtp: bool,
    timeout: Duration,
) -> Result<SmtpClient<TcpStream>, String> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect((host, port)))
        .await
        .map_err(|_| "connect: timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let mut client = SmtpClient { stream, timeout };
    let banner = tokio::time::timeout(timeout, client.read())
        .await
        .map_err(|_| "banner: timed out".to_string())?
        .map_err(|e| format!("banner: {e}"))?;
    if banner.code != 220 {
        return Err(format!("banner: {}", reply_text(&banner)));
    }
    let greeting = if lmtp {
        client.lhlo(hostname).await
    } else {
        client.ehlo(hostname).await
    };
    greeting.map_err(|e| format!("greeting: {e}"))?;
    Ok(client)
}

/// A reply as the server wrote it: smtp-proto splits the enhanced status code off the
/// text, and logs and clients want it back.
pub fn reply_text(reply: &Response<String>) -> String {
    let [class, subject, detail] = reply.esc;
    let message = reply.message.trim_end().replace("\r\n", " ");
    if class == 0 {
        format!("{} {message}", reply.code)
    } else {
        format!("{} {class}.{subject}.{detail} {message}", reply.code)
    }
}
