//! The fallback listener's SMTP dialogue as a state machine, the same shape as
//! submission's: command lines in, steps out. No sockets and no store: the connection
//! (`connection.rs`) asks the store about each recipient and stores the message.

use lifeboat_mailstore::{Address, Fate};
use smtp_proto::Request;

/// What the connection must do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this reply (one or more lines, without the final CRLF) and read on.
    Reply(String),
    /// Ask the store about this recipient, then call [`Session::recipient`].
    Rcpt(String),
    /// Send `354`, read the message (up to the size limit), then store it for the
    /// [`Transaction`] taken with [`Session::take_transaction`].
    Data,
    /// Send this reply and close.
    Quit(String),
}

/// The current mail transaction.
#[derive(Debug, Default)]
pub struct Transaction {
    pub sender: String,
    /// Accepted recipients and what the store decided for each.
    pub recipients: Vec<(Address, Fate)>,
}

pub struct Session {
    hostname: String,
    max_message_size: u64,
    transaction: Option<Transaction>,
}

impl Session {
    pub fn new(hostname: String, max_message_size: u64) -> Session {
        Session {
            hostname,
            max_message_size,
            transaction: None,
        }
    }

    pub fn greeting(&self) -> String {
        format!("220 {} ESMTP Lifeboat fallback", self.hostname)
    }

    /// One command line (without its line end).
    pub fn handle_line(&mut self, line: &[u8]) -> Step {
        let mut with_crlf = line.to_vec();
        with_crlf.extend_from_slice(b"\r\n");
        let reply = |text: &str| Step::Reply(text.to_string());
        match Request::parse(&mut with_crlf.iter()) {
            Ok(Request::Ehlo { .. }) => {
                self.transaction = None;
                Step::Reply(format!(
                    "250-{}\r\n250-PIPELINING\r\n250-SIZE {}\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES",
                    self.hostname, self.max_message_size
                ))
            }
            Ok(Request::Helo { .. }) => {
                self.transaction = None;
                Step::Reply(format!("250 {}", self.hostname))
            }
            Ok(Request::Mail { from }) if from.size as u64 > self.max_message_size => {
                reply("452 4.3.4 message too big for the fallback store")
            }
            Ok(Request::Mail { from }) => {
                self.transaction = Some(Transaction {
                    sender: from.address.into_owned(),
                    recipients: Vec::new(),
                });
                reply("250 2.1.0 ok")
            }
            Ok(Request::Rcpt { to }) if self.transaction.is_some() => {
                Step::Rcpt(to.address.into_owned())
            }
            Ok(Request::Rcpt { .. }) => reply("503 5.5.1 MAIL first"),
            Ok(Request::Data) if self.recipients() == 0 => reply("503 5.5.1 no valid recipients"),
            Ok(Request::Data) => Step::Data,
            Ok(Request::Rset) => {
                self.transaction = None;
                reply("250 2.0.0 ok")
            }
            Ok(Request::Noop { .. }) => reply("250 2.0.0 ok"),
            Ok(Request::Quit) => Step::Quit("221 2.0.0 bye".into()),
            Ok(Request::Vrfy { .. }) => reply("252 2.5.0 cannot verify"),
            Ok(_) => reply("502 5.5.1 command not implemented"),
            Err(_) => reply("500 5.5.2 syntax error"),
        }
    }

    /// The store will take a diverted copy for this recipient.
    pub fn recipient(&mut self, address: Address, fate: Fate) {
        if let Some(transaction) = self.transaction.as_mut() {
            transaction.recipients.push((address, fate));
        }
    }

    /// The transaction DATA completes (or aborts); the session starts afresh.
    pub fn take_transaction(&mut self) -> Transaction {
        self.transaction.take().unwrap_or_default()
    }

    pub fn max_message_size(&self) -> u64 {
        self.max_message_size
    }

    fn recipients(&self) -> usize {
        self.transaction.as_ref().map_or(0, |t| t.recipients.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session::new("fallback.test".into(), 1000)
    }

    fn reply(step: Step) -> String {
        match step {
            Step::Reply(text) | Step::Quit(text) => text,
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    fn capture() -> Fate {
        Fate::Capture {
            origin: "main".into(),
            owner: Address::parse("a@example.test").unwrap(),
            divert: true,
        }
    }

    #[test]
    fn a_transaction_needs_mail_then_an_accepted_recipient() {
        let mut s = session();
        assert!(reply(s.handle_line(b"RCPT TO:<a@example.test>")).starts_with("503"));
        assert!(reply(s.handle_line(b"MAIL FROM:<x@else.test>")).starts_with("250"));
        assert_eq!(
            s.handle_line(b"DATA"),
            Step::Reply("503 5.5.1 no valid recipients".into())
        );
        assert_eq!(
            s.handle_line(b"RCPT TO:<a@example.test>"),
            Step::Rcpt("a@example.test".into())
        );
        s.recipient(Address::parse("a@example.test").unwrap(), capture());
        assert_eq!(s.handle_line(b"DATA"), Step::Data);
        let transaction = s.take_transaction();
        assert_eq!(transaction.sender, "x@else.test");
        assert_eq!(transaction.recipients.len(), 1);
        assert!(reply(s.handle_line(b"RCPT TO:<a@example.test>")).starts_with("503"));
    }

    #[test]
    fn an_announced_size_over_the_limit_is_refused_at_mail() {
        let mut s = session();
        assert!(reply(s.handle_line(b"MAIL FROM:<x@else.test> SIZE=5000")).starts_with("452"));
        assert!(reply(s.handle_line(b"RCPT TO:<a@example.test>")).starts_with("503"));
    }

    #[test]
    fn rset_and_ehlo_forget_the_transaction() {
        for reset in [&b"RSET"[..], b"EHLO postfix.test", b"HELO postfix.test"] {
            let mut s = session();
            s.handle_line(b"MAIL FROM:<x@else.test>");
            assert!(reply(s.handle_line(reset)).starts_with("250"));
            assert!(reply(s.handle_line(b"RCPT TO:<a@example.test>")).starts_with("503"));
        }
    }

    #[test]
    fn ehlo_offers_size_and_pipelining_and_unknown_commands_are_refused() {
        let mut s = session();
        let ehlo = reply(s.handle_line(b"EHLO postfix.test"));
        assert!(ehlo.contains("250-SIZE 1000") && ehlo.contains("PIPELINING"));
        assert!(reply(s.handle_line(b"AUTH PLAIN AAAA")).starts_with("502"));
        assert!(reply(s.handle_line(b"\x00\xffgarbage")).starts_with("500"));
        assert_eq!(s.handle_line(b"QUIT"), Step::Quit("221 2.0.0 bye".into()));
    }
}
