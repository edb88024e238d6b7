//! The submission server's side of Postfix: one SMTP transaction per submitted message,
//! opened at MAIL, so each recipient gets Postfix's own answer.

use std::time::Duration;

use crate::smtp::{Client, Reply};

/// Limit on each exchange with Postfix.
const TIMEOUT: Duration = Duration::from_secs(60);

pub struct Relay {
    client: Client,
}

impl Relay {
    /// Connects, greets, and starts a transaction for `sender`. The error is the answer
    /// for the client (4xx when Postfix cannot be reached: the client retries).
    pub async fn open(
        (host, port): &(String, u16),
        hostname: &str,
        sender: &str,
        size: u64,
    ) -> Result<Relay, Reply> {
        let mut client = Client::connect((host.as_str(), *port), hostname, false, TIMEOUT)
            .await
            .map_err(|why| {
                tracing::error!(relay = %format!("{host}:{port}"), %why, "submission: cannot hand mail to Postfix");
                unavailable("451 4.4.1 the mail relay is not reachable; try again later")
            })?;
        let reply = client
            .mail(sender, (size > 0).then_some(size))
            .await
            .unwrap_or_else(broken);
        if reply.is_positive() {
            Ok(Relay { client })
        } else {
            Err(reply)
        }
    }

    /// Postfix's answer to one recipient.
    pub async fn rcpt(&mut self, recipient: &str) -> Reply {
        self.client.rcpt(recipient).await.unwrap_or_else(broken)
    }

    /// Sends the message; Postfix's final answer is the client's.
    pub async fn data(&mut self, message: &[u8]) -> Reply {
        match self.client.data(message, 1).await {
            Ok(mut replies) => replies.remove(0),
            Err(e) => broken(e),
        }
    }
}

fn broken(e: crate::smtp::Broken) -> Reply {
    tracing::error!(error = %e, "submission: the mail relay failed");
    unavailable("451 4.4.1 the mail relay failed; try again")
}

fn unavailable(text: &str) -> Reply {
    Reply {
        code: 451,
        text: text.to_string(),
    }
}
