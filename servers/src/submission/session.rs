//! The submission protocol (RFC 6409 over RFC 5321) as a state machine: command lines
//! in, steps out. No sockets and no store: the server (`mod.rs`) performs the steps that
//! need them (checking a password, talking to Postfix), so every rule here is
//! unit-tested.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use lifeboat_mailstore::address::Address;

use crate::auth::AuthFailure;
use smtp_proto::{AUTH_LOGIN, AUTH_PLAIN, Request};

/// What the listener allows.
#[derive(Clone, Debug)]
pub struct Policy {
    pub hostname: String,
    /// Logins before TLS: loopback listeners, or `[auth] allow_plaintext`.
    pub plaintext_login: bool,
    /// A certificate is loaded, so STARTTLS can be offered.
    pub tls_available: bool,
    /// The connection is already TLS.
    pub tls: bool,
    pub max_message_size: u64,
}

/// What the server must do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this reply (one or more lines, without the final CRLF) and read on.
    Reply(String),
    /// Send `220 2.0.0 ready to start TLS`, then hand the connection to TLS.
    StartTls,
    /// Check these credentials; then call [`Session::login_succeeded`] or
    /// [`Session::login_failed`].
    Login { user: String, password: String },
    /// Start a relay transaction for this sender (already checked against the user).
    Mail { sender: String, size: u64 },
    /// Ask the relay about one recipient and pass its answer on.
    Rcpt { recipient: String },
    /// Send `354`, read the message (dot-stuffed, up to the size limit), then call
    /// [`Session::message`].
    Data,
    /// Drop the relay transaction.
    Reset(String),
    /// Send this reply and close.
    Quit(String),
}

/// Where an AUTH exchange stands.
#[derive(Debug, PartialEq, Eq)]
enum Auth {
    None,
    /// AUTH PLAIN sent without an initial response.
    PlainResponse,
    /// AUTH LOGIN: waiting for the user name, then for the password.
    LoginUser,
    LoginPassword(String),
}

pub struct Session {
    policy: Policy,
    greeted: bool,
    auth: Auth,
    /// The logged-in user's own address and aliases: who they may send as.
    user: Option<Vec<Address>>,
    in_transaction: bool,
    recipients: usize,
}

/// At most this many recipients per message (RFC 5321 §4.5.3.1.8 asks for ≥ 100).
const MAX_RECIPIENTS: usize = 500;

impl Session {
    pub fn new(policy: Policy) -> Session {
        Session {
            policy,
            greeted: false,
            auth: Auth::None,
            user: None,
            in_transaction: false,
            recipients: 0,
        }
    }

    pub fn greeting(&self) -> String {
        format!("220 {} ESMTP Lifeboat submission", self.policy.hostname)
    }

    pub fn tls_started(&mut self) {
        self.policy.tls = true;
        // RFC 3207 §4.2: forget everything learned before TLS.
        self.greeted = false;
        self.reset();
    }

    fn login_allowed(&self) -> bool {
        self.policy.tls || self.policy.plaintext_login
    }

    fn reset(&mut self) {
        self.in_transaction = false;
        self.recipients = 0;
    }

    /// The logged-in user's own address.
    pub fn user(&self) -> Option<&Address> {
        self.user.as_ref().and_then(|addresses| addresses.first())
    }

    /// `addresses`: the user's own address first, then their aliases.
    pub fn login_succeeded(&mut self, addresses: Vec<Address>) -> String {
        self.user = Some(addresses);
        "235 2.7.0 authenticated".into()
    }

    pub fn login_failed(&mut self, why: &AuthFailure) -> String {
        match why {
            AuthFailure::LockedOut => "454 4.7.0 too many failed logins; try again later",
            AuthFailure::Unavailable(_) => {
                "454 4.7.0 cannot check passwords right now; try again later"
            }
            AuthFailure::BadCredentials | AuthFailure::Inactive => {
                "535 5.7.8 wrong user name or password"
            }
        }
        .into()
    }

    /// Whether `address` is the user's own or one of their aliases.
    pub fn may_send_as(&self, address: &str) -> bool {
        let Ok(address) = Address::parse(address) else {
            return false;
        };
        self.user.as_ref().is_some_and(|own| {
            own.iter()
                .any(|a| a.as_str().eq_ignore_ascii_case(address.as_str()))
        })
    }

    /// One command line (without CRLF).
    pub fn handle_line(&mut self, line: &[u8]) -> Step {
        if self.auth != Auth::None {
            return self.auth_response(line);
        }
        let mut with_crlf = line.to_vec();
        with_crlf.extend_from_slice(b"\r\n");
        let request = Request::parse(&mut with_crlf.iter());
        let reply = |text: &str| Step::Reply(text.to_string());
        match request {
            Ok(Request::Ehlo { host }) => {
                self.greeted = true;
                self.reset();
                Step::Reply(self.ehlo_reply(&host))
            }
            Ok(Request::Helo { .. }) => {
                self.greeted = true;
                self.reset();
                Step::Reply(format!("250 {}", self.policy.hostname))
            }
            Ok(Request::StartTls) if self.policy.tls || !self.policy.tls_available => {
                reply("454 4.7.0 TLS not available")
            }
            // TLS must come first: what was said in clear (the login among it) would
            // otherwise carry over into the protected session.
            Ok(Request::StartTls) if self.user.is_some() => {
                reply("503 5.5.1 already authenticated")
            }
            Ok(Request::StartTls) => Step::StartTls,
            Ok(Request::Quit) => Step::Quit("221 2.0.0 bye".into()),
            Ok(Request::Noop { .. }) => reply("250 2.0.0 ok"),
            Ok(Request::Rset) => {
                self.reset();
                Step::Reset("250 2.0.0 ok".into())
            }
            Ok(Request::Vrfy { .. }) => reply("252 2.5.0 cannot verify"),
            Ok(_) if !self.greeted => reply("503 5.5.1 say EHLO first"),
            Ok(Request::Auth { .. }) if self.user.is_some() => {
                reply("503 5.5.1 already authenticated")
            }
            Ok(Request::Auth { .. }) if !self.login_allowed() => {
                reply("538 5.7.11 encryption required: STARTTLS first")
            }
            Ok(Request::Auth {
                mechanism,
                initial_response,
            }) => self.auth_start(mechanism, &initial_response),
            Ok(Request::Mail { .. }) if self.user.is_none() => {
                reply("530 5.7.0 authentication required")
            }
            Ok(Request::Mail { .. }) if self.in_transaction => {
                reply("503 5.5.1 nested MAIL command")
            }
            Ok(Request::Mail { from }) => {
                if from.size as u64 > self.policy.max_message_size {
                    return reply("552 5.3.4 message too big");
                }
                if !self.may_send_as(&from.address) {
                    return Step::Reply(format!(
                        "553 5.7.1 <{}> is not yours to send as",
                        from.address
                    ));
                }
                self.in_transaction = true;
                Step::Mail {
                    sender: from.address.into_owned(),
                    size: from.size as u64,
                }
            }
            Ok(Request::Rcpt { .. }) if !self.in_transaction => reply("503 5.5.1 MAIL first"),
            Ok(Request::Rcpt { .. }) if self.recipients >= MAX_RECIPIENTS => {
                reply("452 4.5.3 too many recipients")
            }
            Ok(Request::Rcpt { to }) => Step::Rcpt {
                recipient: to.address.into_owned(),
            },
            Ok(Request::Data) if self.recipients == 0 => reply("503 5.5.1 no valid recipients"),
            Ok(Request::Data) => Step::Data,
            Ok(Request::Bdat { .. }) => reply("502 5.5.1 BDAT is not offered; use DATA"),
            Ok(_) => reply("502 5.5.1 command not implemented"),
            Err(_) => reply("500 5.5.2 syntax error"),
        }
    }

    /// The relay accepted a recipient.
    pub fn recipient_accepted(&mut self) {
        self.recipients += 1;
    }

    /// The message was relayed (or refused): the transaction is over.
    pub fn transaction_done(&mut self) {
        self.reset();
    }

    /// Checks who the message says it is from (RFC 6409 §8 lets the server enforce
    /// this): exactly one `From:` field (RFC 5322 §3.6), and every address of it and of
    /// any `Sender:` must be the user's own or an alias. Field names are matched the way
    /// a lenient reader would (any case, blanks before the colon), and the addresses are
    /// parsed with comments, groups and quoting understood (mail-parser), so
    /// `From: (<own@x>) other@x` names `other@x`.
    pub fn check_header_from(&self, message: &[u8]) -> Result<(), String> {
        let fields = sender_fields(message);
        let from_fields = fields.iter().filter(|(name, _)| name == "from").count();
        match from_fields {
            0 => return Err("550 5.6.0 the message has no From: header".into()),
            1 => {}
            _ => return Err("550 5.6.0 the message has more than one From: header".into()),
        }
        for (name, value) in &fields {
            let label = if name == "from" { "From" } else { "Sender" };
            let addresses = parse_addresses(value);
            let Some(addresses) = addresses.filter(|a| !a.is_empty()) else {
                return Err(format!(
                    "550 5.6.0 the {label}: header names no usable address"
                ));
            };
            if let Some(other) = addresses.iter().find(|a| !self.may_send_as(a)) {
                return Err(format!(
                    "553 5.7.1 {label}: <{other}> is not yours to send as"
                ));
            }
        }
        Ok(())
    }

    fn ehlo_reply(&self, host: &str) -> String {
        let mut lines = vec![format!("{} greets {host}", self.policy.hostname)];
        lines.push("PIPELINING".into());
        lines.push(format!("SIZE {}", self.policy.max_message_size));
        lines.push("8BITMIME".into());
        lines.push("ENHANCEDSTATUSCODES".into());
        if !self.policy.tls && self.policy.tls_available {
            lines.push("STARTTLS".into());
        }
        if self.login_allowed() && self.user.is_none() {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        let last = lines.len() - 1;
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| format!("250{}{l}", if i == last { ' ' } else { '-' }))
            .collect::<Vec<_>>()
            .join("\r\n")
    }

    fn auth_start(&mut self, mechanism: u64, initial: &str) -> Step {
        match mechanism {
            AUTH_PLAIN if initial.is_empty() => {
                self.auth = Auth::PlainResponse;
                Step::Reply("334 ".into())
            }
            AUTH_PLAIN => self.plain(initial.as_bytes()),
            AUTH_LOGIN if initial.is_empty() => {
                self.auth = Auth::LoginUser;
                Step::Reply("334 VXNlcm5hbWU6".into()) // "Username:"
            }
            AUTH_LOGIN => match decode(initial.as_bytes()) {
                Some(user) => {
                    self.auth = Auth::LoginPassword(user);
                    Step::Reply("334 UGFzc3dvcmQ6".into()) // "Password:"
                }
                None => Step::Reply("501 5.5.2 invalid base64".into()),
            },
            _ => Step::Reply("504 5.5.4 only AUTH PLAIN and LOGIN are offered".into()),
        }
    }

    fn auth_response(&mut self, line: &[u8]) -> Step {
        let state = std::mem::replace(&mut self.auth, Auth::None);
        if line == b"*" {
            return Step::Reply("501 5.0.0 authentication cancelled".into());
        }
        match state {
            Auth::PlainResponse => self.plain(line),
            Auth::LoginUser => match decode(line) {
                Some(user) => {
                    self.auth = Auth::LoginPassword(user);
                    Step::Reply("334 UGFzc3dvcmQ6".into())
                }
                None => Step::Reply("501 5.5.2 invalid base64".into()),
            },
            Auth::LoginPassword(user) => match decode(line) {
                Some(password) => Step::Login { user, password },
                None => Step::Reply("501 5.5.2 invalid base64".into()),
            },
            Auth::None => Step::Reply("500 5.5.2 syntax error".into()),
        }
    }

    fn plain(&mut self, encoded: &[u8]) -> Step {
        let Ok(decoded) = BASE64.decode(encoded) else {
            return Step::Reply("501 5.5.2 invalid base64".into());
        };
        match crate::sasl::plain(&decoded) {
            Ok((user, password)) => Step::Login { user, password },
            Err(why) => Step::Reply(format!("501 5.5.2 {why}")),
        }
    }
}

fn decode(encoded: &[u8]) -> Option<String> {
    BASE64
        .decode(encoded)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
}

/// The `From:` and `Sender:` fields of the header section, unfolded, names lowercased.
fn sender_fields(message: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut fields: Vec<(String, Vec<u8>)> = Vec::new();
    let mut current: Option<(String, Vec<u8>)> = None;
    for line in message.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break; // end of the header section
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if let Some((_, value)) = current.as_mut() {
                value.push(b' ');
                value.extend_from_slice(line);
            }
            continue;
        }
        fields.extend(current.take());
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let name = String::from_utf8_lossy(&line[..colon])
                .trim()
                .to_ascii_lowercase();
            current = Some((name, line[colon + 1..].to_vec()));
        }
    }
    fields.extend(current);
    fields.retain(|(name, _)| name == "from" || name == "sender");
    fields
}

/// Every address of an address-list value, group members included; `None` when an
/// entry has no address at all (it could hide one a reader would see).
fn parse_addresses(value: &[u8]) -> Option<Vec<String>> {
    let mut field = b"From:".to_vec();
    field.extend_from_slice(value);
    field.extend_from_slice(b"\r\n\r\n");
    let parsed = mail_parser::MessageParser::default().parse_headers(&field)?;
    let list = parsed.from()?;
    let mut addresses = Vec::new();
    for addr in list.iter() {
        addresses.push(addr.address.as_deref()?.to_string());
    }
    Some(addresses)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(tls: bool, plaintext_login: bool) -> Policy {
        Policy {
            hostname: "lifeboat.test".into(),
            plaintext_login,
            tls_available: true,
            tls,
            max_message_size: 1000,
        }
    }

    fn logged_in() -> Session {
        let mut session = Session::new(policy(true, false));
        session.handle_line(b"EHLO client");
        let step = session.handle_line(b"AUTH PLAIN AGFsaWNlQHgudGVzdABzZWNyZXQ=");
        assert_eq!(
            step,
            Step::Login {
                user: "alice@x.test".into(),
                password: "secret".into()
            }
        );
        session.login_succeeded(vec![
            Address::parse("alice@x.test").unwrap(),
            Address::parse("sales@x.test").unwrap(),
        ]);
        session
    }

    fn reply(step: Step) -> String {
        match step {
            Step::Reply(text) => text,
            other => panic!("not a reply: {other:?}"),
        }
    }

    #[test]
    fn without_tls_only_starttls_is_offered_and_auth_is_refused() {
        let mut session = Session::new(policy(false, false));
        let ehlo = reply(session.handle_line(b"EHLO client"));
        assert!(
            ehlo.ends_with("250 STARTTLS") && !ehlo.contains("AUTH"),
            "{ehlo}"
        );
        assert!(reply(session.handle_line(b"AUTH PLAIN AGEAYg==")).starts_with("538 5.7.11"));
        assert!(reply(session.handle_line(b"MAIL FROM:<a@x.test>")).starts_with("530"));
        assert_eq!(session.handle_line(b"STARTTLS"), Step::StartTls);
        session.tls_started();
        assert!(reply(session.handle_line(b"MAIL FROM:<a@x.test>")).starts_with("503"));
        let ehlo = reply(session.handle_line(b"EHLO client"));
        assert!(
            ehlo.ends_with("250 AUTH PLAIN LOGIN") && !ehlo.contains("STARTTLS"),
            "{ehlo}"
        );
    }

    #[test]
    fn auth_login_takes_two_base64_lines_and_can_be_cancelled() {
        let mut session = Session::new(policy(false, true));
        session.handle_line(b"EHLO client");
        assert_eq!(
            reply(session.handle_line(b"AUTH LOGIN")),
            "334 VXNlcm5hbWU6"
        );
        assert_eq!(
            reply(session.handle_line(b"Ym9iQHgudGVzdA==")),
            "334 UGFzc3dvcmQ6"
        );
        assert_eq!(
            session.handle_line(b"cHc="),
            Step::Login {
                user: "bob@x.test".into(),
                password: "pw".into()
            }
        );
        assert_eq!(reply(session.handle_line(b"AUTH PLAIN")), "334 ");
        assert!(reply(session.handle_line(b"*")).starts_with("501"));
        assert!(reply(session.handle_line(b"AUTH CRAM-MD5")).starts_with("504"));
    }

    #[test]
    fn senders_must_be_the_user_or_an_alias() {
        let mut session = logged_in();
        assert!(reply(session.handle_line(b"MAIL FROM:<boss@x.test>")).starts_with("553 5.7.1"));
        assert_eq!(
            session.handle_line(b"MAIL FROM:<Sales@x.test> SIZE=100"),
            Step::Mail {
                sender: "Sales@x.test".into(),
                size: 100
            }
        );
        assert!(
            session
                .check_header_from(b"From: Alice <alice@x.test>\r\n\r\nx")
                .is_ok()
        );
        assert!(
            session
                .check_header_from(b"From: sales@x.test\r\n\r\nx")
                .is_ok()
        );
        let spoofed = session.check_header_from(b"From: \"alice@x.test\" <ceo@x.test>\r\n\r\nx");
        assert!(spoofed.unwrap_err().starts_with("553 5.7.1"));
        assert!(
            session
                .check_header_from(b"Subject: none\r\n\r\nx")
                .is_err()
        );
    }

    #[test]
    fn transactions_need_their_commands_in_order_and_within_limits() {
        let mut session = logged_in();
        assert!(reply(session.handle_line(b"RCPT TO:<b@y.test>")).starts_with("503"));
        assert!(
            reply(session.handle_line(b"MAIL FROM:<alice@x.test> SIZE=5000")).starts_with("552")
        );
        assert!(matches!(
            session.handle_line(b"MAIL FROM:<alice@x.test>"),
            Step::Mail { .. }
        ));
        assert!(reply(session.handle_line(b"MAIL FROM:<alice@x.test>")).starts_with("503"));
        assert!(reply(session.handle_line(b"DATA")).starts_with("503 5.5.1 no valid"));
        assert!(matches!(
            session.handle_line(b"RCPT TO:<b@y.test>"),
            Step::Rcpt { .. }
        ));
        session.recipient_accepted();
        assert_eq!(session.handle_line(b"DATA"), Step::Data);
        session.transaction_done();
        assert!(reply(session.handle_line(b"BDAT 10 LAST")).starts_with("502"));
        assert!(reply(session.handle_line(b"bogus")).starts_with("500"));
        assert!(matches!(session.handle_line(b"QUIT"), Step::Quit(_)));
    }

    #[test]
    fn header_from_tricks_are_refused() {
        let session = logged_in();
        let refused = |header: &str| {
            let message = format!("{header}Subject: s\r\n\r\nbody\r\n");
            session
                .check_header_from(message.as_bytes())
                .err()
                .unwrap_or_else(|| panic!("accepted: {header:?}"))
        };
        // Two From fields, own first: a reader may show either.
        assert!(refused("From: alice@x.test\r\nFrom: ceo@x.test\r\n").starts_with("550 5.6.0"));
        // A list with someone else in it.
        assert!(refused("From: ceo@x.test, <alice@x.test>\r\n").starts_with("553 5.7.1"));
        // The own address only inside a comment.
        assert!(refused("From: (<alice@x.test>) ceo@x.test\r\n").starts_with("553 5.7.1"));
        // Blanks before the colon still make a From field (obsolete syntax readers take).
        assert!(refused("From : ceo@x.test\r\n").starts_with("553 5.7.1"));
        assert!(refused("From: alice@x.test\r\nFROM : ceo@x.test\r\n").starts_with("550"));
        // A folded field is read whole.
        assert!(refused("From: Alice <alice@x.test>,\r\n ceo@x.test\r\n").starts_with("553"));
        // Sender: is checked too; group members count.
        assert!(refused("From: alice@x.test\r\nSender: ceo@x.test\r\n").starts_with("553"));
        assert!(refused("From: team: alice@x.test, ceo@x.test;\r\n").starts_with("553"));
        assert!(refused("From: undisclosed-recipients:;\r\n").starts_with("550"));
        assert!(refused("From: \"alice@x.test\"\r\n").starts_with("550"));
        // What a mail client writes passes.
        for fine in [
            "From: Alice <alice@x.test>\r\n",
            "From: \"Alice, Sales\" <sales@x.test>\r\nSender: alice@x.test\r\n",
            "from: alice@x.test (Alice)\r\n",
            "From: =?utf-8?q?Alic=C3=A9?= <alice@x.test>\r\n",
        ] {
            let message = format!("{fine}Subject: s\r\n\r\nFrom: ceo@x.test in the body\r\n");
            assert_eq!(
                session.check_header_from(message.as_bytes()),
                Ok(()),
                "{fine}"
            );
        }
    }
}
