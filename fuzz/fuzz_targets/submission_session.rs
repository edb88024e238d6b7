//! SMTP submission command lines through the sans-I/O session, and arbitrary message
//! headers through its sender check: any bytes get a well-formed reply, never a panic,
//! and a header that passes the check names only the user's own addresses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_mailstore::Address;
use lifeboat_servers::submission::session::{Policy, Session, Step};

fuzz_target!(|data: &[u8]| {
    let mut session = Session::new(Policy {
        hostname: "fuzz.test".into(),
        plaintext_login: data.first().is_some_and(|b| b & 1 == 1),
        tls_available: true,
        tls: data.first().is_some_and(|b| b & 2 == 2),
        max_message_size: 10_000,
    });
    let own = Address::parse("alice@fuzz.test").unwrap();
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match session.handle_line(line) {
            Step::Reply(text) | Step::Reset(text) | Step::Quit(text) => {
                assert!(text.len() >= 3 && text.as_bytes()[..3].iter().all(u8::is_ascii_digit));
            }
            Step::Login { password, .. } => {
                if password == "right" {
                    session.login_succeeded(vec![own.clone()]);
                } else {
                    session.login_failed(&lifeboat_servers::auth::AuthFailure::BadCredentials);
                }
            }
            Step::Rcpt { .. } => session.recipient_accepted(),
            Step::Data | Step::Mail { .. } | Step::StartTls => {}
        }
    }
    if session.user().is_some() && session.check_header_from(data).is_ok() {
        // Passing means every From/Sender address is the user's: the raw header must
        // at least mention it.
        let text = String::from_utf8_lossy(data).to_ascii_lowercase();
        assert!(text.contains("alice@fuzz.test"));
    }
});
