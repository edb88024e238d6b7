//! The POP3 session as a state machine without I/O (RFC 1939 §3 states: AUTHORIZATION,
//! TRANSACTION, UPDATE). The connection feeds it one line at a time; it appends its
//! answers to an output buffer and says what else must happen ([`Next`]): a password
//! check, a TLS handshake, a message to send, or the deletions of UPDATE. Whatever the
//! input, it answers with `+OK`/`-ERR` and never panics.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::command::{Command, ParseError};
use crate::auth::AuthFailure;

/// What the connection must do after [`Session::handle_line`].
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Send what was written and read the next line.
    Continue,
    /// Check these credentials, then call [`Session::login_succeeded`] or
    /// [`Session::login_failed`].
    Authenticate { user: String, password: String },
    /// Send what was written (the `+OK` to STLS), then do the TLS handshake and call
    /// [`Session::tls_started`]. Bytes the client sent after STLS must be discarded.
    StartTls,
    /// Send message `index` (0-based in the maildrop): the whole message, or the header
    /// and `top_lines` body lines. The connection writes `+OK`, the dot-stuffed message
    /// and the terminating `.` (see [`super::message`]).
    Send {
        index: usize,
        top_lines: Option<u32>,
    },
    /// QUIT in TRANSACTION: remove these messages (indexes into the maildrop), then call
    /// [`Session::update_finished`] and close.
    Update { deleted: Vec<usize> },
    /// Send what was written and close the connection.
    Close,
}

/// One message of the maildrop as the session needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listing {
    pub uid: u32,
    /// Octets with CRLF line ends, before dot-stuffing (RFC 1939 §11).
    pub size: u64,
}

/// The messages of a maildrop at login, with its UIDVALIDITY (for UIDL).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Maildrop {
    pub uidvalidity: u32,
    pub messages: Vec<Listing>,
}

/// How the listener treats logins; fixed per connection.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Logins without TLS are allowed (loopback listener or `[auth] allow_plaintext`).
    pub plaintext_allowed: bool,
    /// STLS can be offered (a certificate is loaded and the connection is not TLS yet).
    pub tls_available: bool,
    /// The connection is TLS (implicit TLS listener).
    pub tls: bool,
}

/// Failed logins one connection may make before it is closed.
const MAX_LOGIN_FAILURES: u32 = 3;

#[derive(Debug)]
enum State {
    Authorization {
        /// The name from USER, waiting for PASS.
        user: Option<String>,
        /// AUTH PLAIN sent `+ `; the next line is the client's response.
        awaiting_sasl: bool,
    },
    Transaction {
        maildrop: Maildrop,
        deleted: Vec<bool>,
    },
    Closed,
}

pub struct Session {
    state: State,
    policy: Policy,
    login_failures: u32,
}

impl Session {
    /// A new session; writes the greeting.
    pub fn new(policy: Policy, hostname: &str, out: &mut Vec<u8>) -> Session {
        reply(
            out,
            true,
            &format!("Lifeboat POP3 server ready on {hostname}"),
        );
        Session {
            state: State::Authorization {
                user: None,
                awaiting_sasl: false,
            },
            policy,
            login_failures: 0,
        }
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Whether the session is past login (for logging and shutdown).
    pub fn is_logged_in(&self) -> bool {
        matches!(self.state, State::Transaction { .. })
    }

    fn login_allowed(&self) -> bool {
        self.policy.tls || self.policy.plaintext_allowed
    }

    /// Handles one line (without its CRLF).
    pub fn handle_line(&mut self, line: &[u8], out: &mut Vec<u8>) -> Next {
        if let State::Authorization {
            awaiting_sasl: awaiting @ true,
            ..
        } = &mut self.state
        {
            *awaiting = false;
            return self.sasl_response(line, out);
        }
        let command = match Command::parse(line) {
            Ok(command) => command,
            Err(ParseError::Empty) => {
                reply(out, false, "empty command");
                return Next::Continue;
            }
            Err(e) => {
                reply(out, false, &e.to_string());
                return Next::Continue;
            }
        };
        match &self.state {
            State::Authorization { .. } => self.authorization(command, out),
            State::Transaction { .. } => self.transaction(command, out),
            State::Closed => Next::Close,
        }
    }

    fn authorization(&mut self, command: Command, out: &mut Vec<u8>) -> Next {
        let pending_user = match &mut self.state {
            State::Authorization { user, .. } => user.take(),
            _ => None,
        };
        match command {
            Command::Capa => {
                self.capabilities(out);
                Next::Continue
            }
            Command::Quit => {
                reply(out, true, "Lifeboat POP3 server signing off");
                self.state = State::Closed;
                Next::Close
            }
            Command::Stls => {
                if self.policy.tls {
                    reply(out, false, "already using TLS");
                } else if !self.policy.tls_available {
                    reply(out, false, "[SYS/TEMP] TLS is not available");
                } else {
                    reply(out, true, "Begin TLS negotiation");
                    return Next::StartTls;
                }
                Next::Continue
            }
            Command::User(name) => {
                if !self.login_allowed() {
                    refuse_plaintext(out, self.policy.tls_available);
                    return Next::Continue;
                }
                reply(out, true, "send PASS");
                self.state = State::Authorization {
                    user: Some(name),
                    awaiting_sasl: false,
                };
                Next::Continue
            }
            Command::Pass(password) => match pending_user {
                Some(user) => Next::Authenticate { user, password },
                None => {
                    reply(out, false, "USER first");
                    Next::Continue
                }
            },
            Command::Auth {
                mechanism: None, ..
            } => {
                // Before CAPA, clients asked for the mechanisms with a bare AUTH.
                reply(out, true, "SASL mechanisms follow");
                if self.login_allowed() {
                    out.extend_from_slice(b"PLAIN\r\n");
                }
                out.extend_from_slice(b".\r\n");
                Next::Continue
            }
            Command::Auth {
                mechanism: Some(mechanism),
                initial_response,
            } => {
                if mechanism != "PLAIN" {
                    reply(out, false, "unsupported SASL mechanism (PLAIN only)");
                    return Next::Continue;
                }
                if !self.login_allowed() {
                    refuse_plaintext(out, self.policy.tls_available);
                    return Next::Continue;
                }
                match initial_response {
                    Some(response) => self.sasl_response(response.as_bytes(), out),
                    None => {
                        // RFC 5034: an empty challenge.
                        out.extend_from_slice(b"+ \r\n");
                        self.state = State::Authorization {
                            user: None,
                            awaiting_sasl: true,
                        };
                        Next::Continue
                    }
                }
            }
            Command::Stat
            | Command::List(_)
            | Command::Retr(_)
            | Command::Dele(_)
            | Command::Noop
            | Command::Rset
            | Command::Top { .. }
            | Command::Uidl(_) => {
                reply(out, false, "not logged in");
                Next::Continue
            }
        }
    }

    /// The client's answer to AUTH PLAIN (RFC 4616: `[authzid] NUL authcid NUL passwd`).
    fn sasl_response(&mut self, line: &[u8], out: &mut Vec<u8>) -> Next {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line == b"*" {
            reply(out, false, "AUTH cancelled");
            return Next::Continue;
        }
        // RFC 5034 §4: "=" is an empty initial response.
        let decoded = if line == b"=" {
            Ok(Vec::new())
        } else {
            BASE64.decode(line)
        };
        let Ok(decoded) = decoded else {
            reply(out, false, "invalid base64 in SASL response");
            return Next::Continue;
        };
        let parts: Vec<&[u8]> = decoded.split(|&b| b == 0).collect();
        let [authzid, authcid, password] = parts.as_slice() else {
            reply(out, false, "malformed PLAIN response");
            return Next::Continue;
        };
        // Logging in as someone else (a proxy authorisation) is not supported.
        if !authzid.is_empty() && !authzid.eq_ignore_ascii_case(authcid) {
            reply(
                out,
                false,
                "[AUTH] authorization identity must be empty or the user",
            );
            return Next::Continue;
        }
        match (std::str::from_utf8(authcid), std::str::from_utf8(password)) {
            (Ok(user), Ok(password)) if !user.is_empty() => Next::Authenticate {
                user: user.to_string(),
                password: password.to_string(),
            },
            _ => {
                reply(out, false, "malformed PLAIN response");
                Next::Continue
            }
        }
    }

    /// The credentials were right and the maildrop is locked for this session.
    pub fn login_succeeded(&mut self, maildrop: Maildrop, out: &mut Vec<u8>) {
        let deleted = vec![false; maildrop.messages.len()];
        let (count, size) = totals(&maildrop, &deleted);
        reply(
            out,
            true,
            &format!("logged in; maildrop has {count} messages ({size} octets)"),
        );
        self.state = State::Transaction { maildrop, deleted };
    }

    /// The login was refused; returns [`Next::Close`] when this connection has failed
    /// too often.
    pub fn login_failed(&mut self, why: LoginRefusal, out: &mut Vec<u8>) -> Next {
        let text = match why {
            LoginRefusal::Auth(AuthFailure::LockedOut) => {
                "[LOGIN-DELAY] too many failed logins; try again later"
            }
            LoginRefusal::Auth(AuthFailure::Unavailable(_)) => {
                "[SYS/TEMP] cannot check passwords right now; try again later"
            }
            LoginRefusal::Auth(_) => "[AUTH] authentication failed",
            LoginRefusal::InUse => "[IN-USE] another POP3 session is using this maildrop",
            LoginRefusal::Store => "[SYS/TEMP] cannot open the maildrop; try again later",
        };
        reply(out, false, text);
        self.login_failures += 1;
        if self.login_failures >= MAX_LOGIN_FAILURES {
            self.state = State::Closed;
            return Next::Close;
        }
        Next::Continue
    }

    /// The TLS handshake after STLS succeeded: forget everything said before it
    /// (RFC 2595 §4: the client must discard cached capabilities; so does the server).
    pub fn tls_started(&mut self) {
        self.policy.tls = true;
        self.policy.tls_available = false;
        self.state = State::Authorization {
            user: None,
            awaiting_sasl: false,
        };
    }

    fn capabilities(&self, out: &mut Vec<u8>) {
        reply(out, true, "capability list follows");
        let mut capa =
            String::from("TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n");
        if matches!(self.state, State::Authorization { .. }) {
            if self.login_allowed() {
                capa.push_str("USER\r\nSASL PLAIN\r\n");
            }
            if self.policy.tls_available && !self.policy.tls {
                capa.push_str("STLS\r\n");
            }
        }
        capa.push_str("IMPLEMENTATION Lifeboat\r\n.\r\n");
        out.extend_from_slice(capa.as_bytes());
    }

    fn transaction(&mut self, command: Command, out: &mut Vec<u8>) -> Next {
        let State::Transaction { maildrop, deleted } = &mut self.state else {
            return Next::Close;
        };
        // A message number that names a message not marked deleted.
        let live = |n: u32, deleted: &[bool]| -> Option<usize> {
            let index = usize::try_from(n).ok()?.checked_sub(1)?;
            (index < deleted.len() && !deleted[index]).then_some(index)
        };
        match command {
            Command::Capa => {
                self.capabilities(out);
            }
            Command::Stat => {
                let (count, size) = totals(maildrop, deleted);
                reply(out, true, &format!("{count} {size}"));
            }
            Command::List(None) => {
                let (count, size) = totals(maildrop, deleted);
                reply(out, true, &format!("{count} messages ({size} octets)"));
                for (index, message) in maildrop.messages.iter().enumerate() {
                    if !deleted[index] {
                        out.extend_from_slice(
                            format!("{} {}\r\n", index + 1, message.size).as_bytes(),
                        );
                    }
                }
                out.extend_from_slice(b".\r\n");
            }
            Command::List(Some(n)) => match live(n, deleted) {
                Some(index) => reply(out, true, &format!("{n} {}", maildrop.messages[index].size)),
                None => no_such_message(out),
            },
            Command::Uidl(None) => {
                reply(out, true, "unique-id listing follows");
                for (index, message) in maildrop.messages.iter().enumerate() {
                    if !deleted[index] {
                        let uid = unique_id(maildrop.uidvalidity, message.uid);
                        out.extend_from_slice(format!("{} {uid}\r\n", index + 1).as_bytes());
                    }
                }
                out.extend_from_slice(b".\r\n");
            }
            Command::Uidl(Some(n)) => match live(n, deleted) {
                Some(index) => {
                    let uid = unique_id(maildrop.uidvalidity, maildrop.messages[index].uid);
                    reply(out, true, &format!("{n} {uid}"));
                }
                None => no_such_message(out),
            },
            Command::Retr(n) => match live(n, deleted) {
                Some(index) => {
                    return Next::Send {
                        index,
                        top_lines: None,
                    };
                }
                None => no_such_message(out),
            },
            Command::Top { message, lines } => match live(message, deleted) {
                Some(index) => {
                    return Next::Send {
                        index,
                        top_lines: Some(lines),
                    };
                }
                None => no_such_message(out),
            },
            Command::Dele(n) => match live(n, deleted) {
                Some(index) => {
                    deleted[index] = true;
                    reply(out, true, &format!("message {n} deleted"));
                }
                None => no_such_message(out),
            },
            Command::Rset => {
                deleted.iter_mut().for_each(|d| *d = false);
                let (count, size) = totals(maildrop, deleted);
                reply(
                    out,
                    true,
                    &format!("maildrop has {count} messages ({size} octets)"),
                );
            }
            Command::Noop => reply(out, true, ""),
            Command::Quit => {
                let deleted = deleted
                    .iter()
                    .enumerate()
                    .filter(|(_, d)| **d)
                    .map(|(i, _)| i)
                    .collect();
                return Next::Update { deleted };
            }
            Command::User(_) | Command::Pass(_) | Command::Auth { .. } => {
                reply(out, false, "already logged in");
            }
            Command::Stls => reply(out, false, "STLS only before login"),
        }
        Next::Continue
    }

    /// The UPDATE state's deletions are done (`ok`) or failed; writes the last answer.
    pub fn update_finished(&mut self, ok: bool, out: &mut Vec<u8>) {
        if let State::Transaction { maildrop, deleted } = &self.state {
            let (left, _) = totals(maildrop, &vec![false; deleted.len()]);
            let removed = deleted.iter().filter(|d| **d).count();
            if ok {
                reply(
                    out,
                    true,
                    &format!(
                        "Lifeboat POP3 server signing off ({} messages left)",
                        left - removed
                    ),
                );
            } else {
                reply(
                    out,
                    false,
                    "[SYS/TEMP] some deleted messages were not removed",
                );
            }
        }
        self.state = State::Closed;
    }
}

/// Why a login that reached the connection was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginRefusal {
    Auth(AuthFailure),
    /// Another session holds the maildrop (RFC 2449 `[IN-USE]`).
    InUse,
    /// The maildrop could not be read.
    Store,
}

/// The UIDL of a message: UIDVALIDITY and UID of INBOX, which the store never reuses
/// together, in the form Dovecot uses by default (`%08Xv%08Xu`).
pub fn unique_id(uidvalidity: u32, uid: u32) -> String {
    format!("{uidvalidity:08X}{uid:08X}")
}

fn totals(maildrop: &Maildrop, deleted: &[bool]) -> (usize, u64) {
    maildrop
        .messages
        .iter()
        .zip(deleted)
        .filter(|(_, d)| !**d)
        .fold((0, 0), |(count, size), (m, _)| (count + 1, size + m.size))
}

fn reply(out: &mut Vec<u8>, ok: bool, text: &str) {
    out.extend_from_slice(if ok { b"+OK" } else { b"-ERR" });
    if !text.is_empty() {
        out.push(b' ');
        out.extend_from_slice(text.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

fn no_such_message(out: &mut Vec<u8>) {
    reply(out, false, "no such message");
}

fn refuse_plaintext(out: &mut Vec<u8>, tls_available: bool) {
    let text = if tls_available {
        "[AUTH] plaintext authentication is not allowed without TLS; use STLS first"
    } else {
        "[AUTH] plaintext authentication is not allowed without TLS"
    };
    reply(out, false, text);
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: Policy = Policy {
        plaintext_allowed: true,
        tls_available: false,
        tls: false,
    };

    /// Drives a session line by line, like the connection does, with a fixed maildrop
    /// and password.
    struct Driver {
        session: Session,
        out: Vec<u8>,
        maildrop: Maildrop,
    }

    impl Driver {
        fn new(policy: Policy) -> Driver {
            let mut out = Vec::new();
            let session = Session::new(policy, "host.test", &mut out);
            // RFC 1939 §5-7 examples: two messages of 120 and 200 octets.
            let maildrop = Maildrop {
                uidvalidity: 0x1234,
                messages: vec![Listing { uid: 1, size: 120 }, Listing { uid: 7, size: 200 }],
            };
            Driver {
                session,
                out,
                maildrop,
            }
        }

        /// Sends one line; returns what the server wrote and what it asked for.
        fn send(&mut self, line: &str) -> (String, Next) {
            self.out.clear();
            let mut next = self.session.handle_line(line.as_bytes(), &mut self.out);
            if let Next::Authenticate { user, password } = &next {
                next = if user == "mrose" && password == "tanstaaf" {
                    self.session
                        .login_succeeded(self.maildrop.clone(), &mut self.out);
                    Next::Continue
                } else {
                    self.session.login_failed(
                        LoginRefusal::Auth(AuthFailure::BadCredentials),
                        &mut self.out,
                    )
                };
            }
            (String::from_utf8(self.out.clone()).unwrap(), next)
        }

        fn text(&mut self, line: &str) -> String {
            self.send(line).0
        }
    }

    #[test]
    fn rfc1939_example_session() {
        let mut d = Driver::new(OPEN);
        assert!(String::from_utf8_lossy(&d.out).starts_with("+OK "));
        assert_eq!(d.text("USER mrose"), "+OK send PASS\r\n");
        assert!(
            d.text("PASS tanstaaf")
                .starts_with("+OK logged in; maildrop has 2 messages (320 octets)")
        );
        assert_eq!(d.text("STAT"), "+OK 2 320\r\n");
        assert_eq!(
            d.text("LIST"),
            "+OK 2 messages (320 octets)\r\n1 120\r\n2 200\r\n.\r\n"
        );
        assert_eq!(d.text("LIST 2"), "+OK 2 200\r\n");
        assert_eq!(d.text("LIST 3"), "-ERR no such message\r\n");
        assert_eq!(
            d.send("RETR 1").1,
            Next::Send {
                index: 0,
                top_lines: None
            }
        );
        assert_eq!(d.text("DELE 1"), "+OK message 1 deleted\r\n");
        assert_eq!(d.text("DELE 1"), "-ERR no such message\r\n");
        assert_eq!(d.text("RETR 1"), "-ERR no such message\r\n");
        assert_eq!(d.text("STAT"), "+OK 1 200\r\n");
        assert_eq!(
            d.text("LIST"),
            "+OK 1 messages (200 octets)\r\n2 200\r\n.\r\n"
        );
        assert_eq!(
            d.text("UIDL"),
            "+OK unique-id listing follows\r\n2 0000123400000007\r\n.\r\n"
        );
        assert_eq!(d.text("UIDL 2"), "+OK 2 0000123400000007\r\n");
        assert_eq!(
            d.send("TOP 2 10").1,
            Next::Send {
                index: 1,
                top_lines: Some(10)
            }
        );
        assert_eq!(d.text("NOOP"), "+OK\r\n");
        assert_eq!(
            d.text("RSET"),
            "+OK maildrop has 2 messages (320 octets)\r\n"
        );
        d.text("DELE 2");
        assert_eq!(d.send("QUIT").1, Next::Update { deleted: vec![1] });
        d.out.clear();
        d.session.update_finished(true, &mut d.out);
        assert_eq!(
            String::from_utf8_lossy(&d.out),
            "+OK Lifeboat POP3 server signing off (1 messages left)\r\n"
        );
        assert!(d.session.is_closed());
    }

    #[test]
    fn quit_before_login_closes_without_update() {
        let mut d = Driver::new(OPEN);
        let (text, next) = d.send("QUIT");
        assert!(text.starts_with("+OK"));
        assert_eq!(next, Next::Close);
    }

    #[test]
    fn transaction_commands_need_a_login_and_pass_needs_user() {
        let mut d = Driver::new(OPEN);
        assert_eq!(d.text("STAT"), "-ERR not logged in\r\n");
        assert_eq!(d.text("PASS x"), "-ERR USER first\r\n");
        assert_eq!(d.text("FOO"), "-ERR unknown command\r\n");
        assert_eq!(d.text(""), "-ERR empty command\r\n");
        // A command between USER and PASS forgets the user.
        d.text("USER mrose");
        d.text("NOOP");
        assert_eq!(d.text("PASS tanstaaf"), "-ERR USER first\r\n");
    }

    #[test]
    fn wrong_passwords_are_refused_and_the_third_closes() {
        let mut d = Driver::new(OPEN);
        d.text("USER mrose");
        assert_eq!(d.text("PASS nope"), "-ERR [AUTH] authentication failed\r\n");
        d.text("USER mrose");
        assert_eq!(d.send("PASS nope").1, Next::Continue);
        d.text("USER mrose");
        assert_eq!(d.send("PASS nope").1, Next::Close);
    }

    #[test]
    fn auth_plain_with_and_without_initial_response() {
        let mut d = Driver::new(OPEN);
        let token = BASE64.encode(b"\0mrose\0tanstaaf");
        assert!(
            d.text(&format!("AUTH PLAIN {token}"))
                .starts_with("+OK logged in")
        );

        let mut d = Driver::new(OPEN);
        assert_eq!(d.text("AUTH PLAIN"), "+ \r\n");
        assert!(d.text(&token).starts_with("+OK logged in"));

        let mut d = Driver::new(OPEN);
        d.text("AUTH PLAIN");
        assert_eq!(d.text("*"), "-ERR AUTH cancelled\r\n");
        d.text("AUTH PLAIN");
        assert_eq!(d.text("!!!"), "-ERR invalid base64 in SASL response\r\n");
        let other = BASE64.encode(b"root\0mrose\0tanstaaf");
        assert!(
            d.text(&format!("AUTH PLAIN {other}"))
                .starts_with("-ERR [AUTH]")
        );
        let same = BASE64.encode(b"mrose\0mrose\0tanstaaf");
        assert!(d.text(&format!("AUTH PLAIN {same}")).starts_with("+OK"));
        assert_eq!(d.text("AUTH PLAIN x"), "-ERR already logged in\r\n");
    }

    #[test]
    fn auth_lists_mechanisms_and_refuses_others() {
        let mut d = Driver::new(OPEN);
        assert_eq!(
            d.text("AUTH"),
            "+OK SASL mechanisms follow\r\nPLAIN\r\n.\r\n"
        );
        assert!(d.text("AUTH CRAM-MD5").starts_with("-ERR"));
    }

    #[test]
    fn without_tls_and_plaintext_forbidden_only_stls_is_offered() {
        let policy = Policy {
            plaintext_allowed: false,
            tls_available: true,
            tls: false,
        };
        let mut d = Driver::new(policy);
        let capa = d.text("CAPA");
        assert!(capa.contains("STLS\r\n"), "{capa}");
        assert!(!capa.contains("USER"), "{capa}");
        assert!(!capa.contains("SASL"), "{capa}");
        assert!(d.text("USER mrose").starts_with("-ERR [AUTH] "));
        let token = BASE64.encode(b"\0mrose\0tanstaaf");
        assert!(
            d.text(&format!("AUTH PLAIN {token}"))
                .starts_with("-ERR [AUTH] ")
        );
        assert_eq!(d.text("AUTH"), "+OK SASL mechanisms follow\r\n.\r\n");

        assert_eq!(
            d.send("STLS"),
            ("+OK Begin TLS negotiation\r\n".into(), Next::StartTls)
        );
        d.session.tls_started();
        let capa = d.text("CAPA");
        assert!(capa.contains("USER\r\nSASL PLAIN\r\n"), "{capa}");
        assert!(!capa.contains("STLS"), "{capa}");
        assert_eq!(d.text("STLS"), "-ERR already using TLS\r\n");
        d.text("USER mrose");
        assert!(d.text("PASS tanstaaf").starts_with("+OK"));
    }

    #[test]
    fn stls_without_a_certificate_is_refused() {
        let mut d = Driver::new(OPEN);
        assert!(!d.text("CAPA").contains("STLS"));
        assert_eq!(d.text("STLS"), "-ERR [SYS/TEMP] TLS is not available\r\n");
    }

    #[test]
    fn in_use_and_locked_out_have_response_codes() {
        let mut d = Driver::new(OPEN);
        let mut out = Vec::new();
        d.session.login_failed(LoginRefusal::InUse, &mut out);
        assert!(String::from_utf8_lossy(&out).starts_with("-ERR [IN-USE] "));
        out.clear();
        d.session
            .login_failed(LoginRefusal::Auth(AuthFailure::LockedOut), &mut out);
        assert!(String::from_utf8_lossy(&out).starts_with("-ERR [LOGIN-DELAY] "));
    }

    #[test]
    fn message_numbers_out_of_range_never_panic() {
        let mut d = Driver::new(OPEN);
        d.text("USER mrose");
        d.text("PASS tanstaaf");
        for line in [
            "RETR 4294967295",
            "TOP 3 1",
            "DELE 9",
            "UIDL 0",
            "LIST 4294967295",
        ] {
            assert!(d.text(line).starts_with("-ERR"), "{line}");
        }
    }
}
