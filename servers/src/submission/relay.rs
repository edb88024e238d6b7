//! The submission server's side of Postfix: one SMTP transaction per submitted message,
//! opened at MAIL, so each recipient gets Postfix's own answer.

use std::time::Duration;

use mail_send::SmtpClient;
use tokio::net::TcpStream;

use crate::smtp::reply_text;

/// Limit on each exchange with Postfix.
const TIMEOUT: Duration = Duration::from_secs(60);

pub struct Relay {
    client: SmtpClient<TcpStream>,
}

impl Relay {
    /// Connects, greets, and starts a transaction for `sender`. The error is the answer
    /// for the client (4xx when Postfix cannot be reached: the client retries).
    pub async fn open(
        (host, port): &(String, u16),
        hostname: &str,
        sender: &str,
        size: u64,
    ) -> Result<Relay, String> {
        let unreachable = |why: String| {
            tracing::error!(relay = %format!("{host}:{port}"), %why, "submission: cannot hand mail to Postfix");
            "451 4.4.1 the mail relay is not reachable; try again later".to_string()
        };
        let client = crate::smtp::connect((host.as_str(), *port), hostname, false, TIMEOUT)
            .await
            .map_err(unreachable)?;
        let size = if size > 0 {
            format!(" SIZE={size}")
        } else {
            String::new()
        };
        let mut relay = Relay { client };
        let (accepted, answer) = relay
            .command(format!("MAIL FROM:<{sender}>{size}\r\n"))
            .await;
        if accepted { Ok(relay) } else { Err(answer) }
    }

    /// Postfix's answer to one recipient: (accepted, reply line for the client).
    pub async fn rcpt(&mut self, recipient: &str) -> (bool, String) {
        self.command(format!("RCPT TO:<{recipient}>\r\n")).await
    }

    /// Sends the message; Postfix's final answer is the client's.
    pub async fn data(&mut self, message: &[u8]) -> (bool, String) {
        let (go, answer) = self.command("DATA\r\n".to_string()).await;
        if !go {
            return (false, answer);
        }
        let sent = tokio::time::timeout(TIMEOUT, async {
            self.client.write_message(message).await?;
            self.client
                .read()
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))
        })
        .await;
        match sent {
            Ok(Ok(reply)) => (reply.code / 100 == 2, reply_text(&reply)),
            _ => (
                false,
                "451 4.4.1 the mail relay did not answer; try again".to_string(),
            ),
        }
    }

    async fn command(&mut self, command: String) -> (bool, String) {
        match self.client.cmd(command.as_bytes()).await {
            Ok(reply) => (matches!(reply.code / 100, 2 | 3), reply_text(&reply)),
            Err(e) => {
                tracing::error!(error = %e, "submission: the mail relay failed");
                (
                    false,
                    "451 4.4.1 the mail relay failed; try again".to_string(),
                )
            }
        }
    }
}
