//! IMAP command bytes through imap-codec's `CommandCodec` and `preparse` (`$`, SEARCH
//! RETURN, an extended LIST, as the server's input reads them) and the session state
//! machine,
//! on a real (temp) store with one user and a few messages in INBOX and Archive. The
//! session logs in after a few commands (as the server does once a password checked
//! out, with [`Session::logged_in`]), and any LOGIN/AUTHENTICATE logs in at once, so the
//! authenticated and selected commands get fuzzed too. Every response must encode to a
//! CRLF-terminated line; nothing may panic.
//!
//! The store persists between runs (flags stay set); INBOX is topped up to a few messages
//! when EXPUNGE/CLOSE emptied it, so a crash is reproduced by running its input against
//! a fresh store (as `cargo fuzz run imap_session CRASH_FILE` does).
#![no_main]

use std::sync::{Arc, OnceLock};

use imap_codec::decode::{CommandDecodeError, Decoder};
use imap_codec::imap_types::command::CommandBody;
use imap_codec::CommandCodec;
use libfuzzer_sys::fuzz_target;
use lifeboat_servers::imap::preparse::{self, Request};
use lifeboat_servers::imap::session::{After, Outgoing, Session, SessionConfig};
use lifeboat_mailstore::{Address, Class, NewMessage, NewUser, Store, UserRecord, password};

const USER: &str = "a@example.test";

struct World {
    _dir: tempfile::TempDir,
    store: Store,
    user: UserRecord,
}

fn message(n: usize) -> Vec<u8> {
    format!(
        "From: \"Sender, The\" <s@else.test>\r\nTo: a@example.test, b@else.test\r\n\
         Subject: =?utf-8?q?m=C3=A9ssage?= {n}\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n\
         Message-ID: <m{n}@else.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nbody {n}\r\n\
         --b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n\
         --b--\r\n"
    )
    .into_bytes()
}

fn deliver(store: &Store, folder: &str, n: usize) {
    let owner = Address::parse(USER).unwrap();
    store
        .deliver(NewMessage::new(owner, folder, message(n), Class::Journal))
        .unwrap();
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), "fuzz.test").unwrap();
        store.lock_for_delivery().unwrap();
        store
            .add_user(NewUser {
                address: Address::parse(USER).unwrap(),
                password_hash: password::unusable(),
                aliases: vec![],
                active: true,
                alternate_email: None,
            })
            .unwrap();
        for n in 1..=4 {
            deliver(&store, "INBOX", n);
        }
        deliver(&store, "Archive", 5);
        let user = store.reader().unwrap().user(USER).unwrap().unwrap();
        World {
            _dir: dir,
            store,
            user,
        }
    })
}

/// Keeps a few messages in INBOX whatever earlier runs expunged.
fn top_up(world: &World) {
    let reader = world.store.reader().unwrap();
    let inbox = reader.mailbox(world.user.id, "INBOX").unwrap().unwrap();
    let count = reader.visible_messages(inbox.id).unwrap().len();
    for n in count..3 {
        deliver(&world.store, "INBOX", 10 + n);
    }
}

fn check_encodes(responses: &[imap_codec::imap_types::response::Response<'static>]) {
    let responses: Vec<Outgoing> = responses.iter().cloned().map(Outgoing::from).collect();
    check_replies(&responses);
}

fn check_replies(responses: &[Outgoing]) {
    for response in responses {
        let bytes = response.encode();
        assert!(
            bytes.ends_with(b"\r\n"),
            "{:?}",
            String::from_utf8_lossy(&bytes)
        );
        // What a command encodes itself (ESEARCH, THREAD, LIST with extended data, FETCH
        // with BINARY data sent ahead) is untagged.
        if let Outgoing::Line(_) = response {
            assert!(
                bytes.starts_with(b"* "),
                "{:?}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let world = world();
    top_up(world);
    let (flags, mut input) = match data.split_first() {
        Some((&flags, rest)) => (flags, rest),
        None => return,
    };
    let config = Arc::new(SessionConfig {
        hostname: "fuzz.test".into(),
        plaintext_login: flags & 1 == 1,
        starttls: flags & 2 == 2,
        routes: lifeboat_mailstore::Routes::new([("main", ["example.test".to_string()].as_slice())]),
    });
    let mut session = Session::new(world.store.clone(), config, flags & 4 == 4);
    // Log in after this many commands (never when the high bit is set).
    let login_after = if flags & 0x80 == 0 {
        (flags >> 3) & 7
    } else {
        u8::MAX
    };
    let _ = session.capabilities();
    let mut handled = 0u8;
    while !input.is_empty() {
        if handled == login_after && !session.is_authenticated() {
            session.logged_in(&world.user);
        }
        // One message as the server frames it: imap-codec finds where a command ends;
        // a line it cannot read may still be one with `$` or RETURN (...), which
        // `preparse` reads, as the server's input does for every message.
        let request = match CommandCodec::default().decode_static(input) {
            Ok((rest, _)) => {
                let message = &input[..input.len() - rest.len()];
                input = rest;
                preparse::decode(message)
            }
            // The server waits for more bytes (or the literal); the input ends here.
            Err(CommandDecodeError::Incomplete | CommandDecodeError::LiteralFound { .. }) => {
                return;
            }
            // BAD unless `preparse` reads it (`$`, RETURN, an extended LIST, on one line
            // here); the server resumes after the line.
            Err(CommandDecodeError::Failed) => match input.iter().position(|&b| b == b'\n') {
                Some(at) => {
                    let line = &input[..=at];
                    input = &input[at + 1..];
                    preparse::decode(line)
                }
                None => return,
            },
        };
        let Some(request) = request else { continue };
        handled = handled.saturating_add(1);
        if let Request::Command(command) = &request {
            match &command.body {
                // The server checks passwords; here any login succeeds when allowed.
                CommandBody::Login { .. } | CommandBody::Authenticate { .. } => {
                    if session.login_refusal().is_none() {
                        session.logged_in(&world.user);
                        check_encodes(&[session.login_ok(&command.tag, "logged in")]);
                    }
                    continue;
                }
                CommandBody::Idle => {
                    let store = world.store.clone();
                    if session.is_selected() {
                        let responses = store
                            .with_reader(|reader| session.poll_changes(reader))
                            .unwrap();
                        check_encodes(&responses);
                    }
                    continue;
                }
                _ => {}
            }
        }
        let reply = session.handle(request);
        assert!(!reply.responses.is_empty());
        check_replies(&reply.responses);
        match reply.after {
            After::Continue => {}
            After::StartTls => session.tls_started(),
            After::Logout => return,
        }
    }
});
