//! POP3 command lines through the parser and the session state machine: any bytes
//! must get `+OK`/`-ERR` answers, never a panic. Also formats the input as a message
//! (RETR/TOP) and checks the dot-stuffing can be undone.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_servers::auth::AuthFailure;
use lifeboat_servers::pop3::command::Command;
use lifeboat_servers::pop3::message::write_message;
use lifeboat_servers::pop3::session::{Listing, LoginRefusal, Maildrop, Next, Policy, Session};

fuzz_target!(|data: &[u8]| {
    let policy = Policy {
        plaintext_allowed: data.first().is_some_and(|b| b & 1 == 1),
        tls_available: data.first().is_some_and(|b| b & 2 == 2),
        tls: false,
    };
    let mut out = Vec::new();
    let mut session = Session::new(policy, "fuzz.test", &mut out);
    let maildrop = Maildrop {
        uidvalidity: 7,
        messages: (1..=5).map(|uid| Listing { uid, size: 100 * uid as u64 }).collect(),
    };
    for line in data.split(|&b| b == b'\n') {
        let _ = Command::parse(line);
        out.clear();
        let next = session.handle_line(line, &mut out);
        match &next {
            Next::Continue | Next::StartTls | Next::Close => {
                assert!(
                    out.starts_with(b"+OK") || out.starts_with(b"-ERR") || out == b"+ \r\n",
                    "{:?}",
                    String::from_utf8_lossy(&out)
                );
                assert!(out.ends_with(b"\r\n"));
            }
            Next::Authenticate { password, .. } => {
                if password == "right" {
                    session.login_succeeded(maildrop.clone(), &mut out);
                } else if session.login_failed(LoginRefusal::Auth(AuthFailure::BadCredentials), &mut out)
                    == Next::Close
                {
                    return;
                }
            }
            Next::Send { index, .. } => assert!(*index < maildrop.messages.len()),
            Next::Update { deleted } => {
                assert!(deleted.iter().all(|&i| i < maildrop.messages.len()));
                session.update_finished(true, &mut out);
                return;
            }
        }
        if next == Next::StartTls {
            session.tls_started();
        }
        if next == Next::Close || session.is_closed() {
            return;
        }
    }

    // RETR framing: undoing the dot-stuffing gives the message's lines back.
    let mut wire = Vec::new();
    write_message(&mut wire, data, None);
    assert!(wire.ends_with(b".\r\n"));
    let body = &wire[..wire.len() - 3];
    let lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    for line in &lines[..lines.len() - 1] {
        assert!(line.ends_with(b"\r"), "every line ends with CRLF");
        assert!(line != b".\r", "no bare dot line inside the message");
    }
});
