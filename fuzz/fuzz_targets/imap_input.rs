//! Client bytes through IMAP's input framing (`imap::input`), in pieces of a size the
//! input picks, before or after login (APPEND literals spooled to a temp dir), waiting
//! for DONE or AUTHENTICATE data as the server would. Every refusal must encode to one
//! status line; an APPEND (several messages with MULTIAPPEND, literal8 or not) must be
//! within the per-command limits and read back whole; nothing may panic.
#![no_main]

use std::time::Instant;

use imap_codec::ResponseCodec;
use imap_codec::encode::Encoder;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::response::Response;
use libfuzzer_sys::fuzz_target;
use lifeboat_servers::imap::input::{Expect, Input, Received, Step};
use lifeboat_servers::imap::preparse::Request;
use lifeboat_servers::imap::upload::{MAX_MESSAGES, MAX_TOTAL};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let spool = tempfile::tempdir().unwrap();
    let mut input = Input::new();
    if flags & 1 == 1 {
        input.logged_in(spool.path().to_path_buf());
    }
    let piece = usize::from(flags >> 1).max(1);
    for chunk in rest.chunks(piece) {
        input.push(chunk, Instant::now());
        while let Some(step) = input.next_step() {
            match step {
                Step::GoAhead => {}
                Step::Refused(refusal) => {
                    let bytes = ResponseCodec::default()
                        .encode(&Response::Status(refusal.status()))
                        .dump();
                    assert!(bytes.ends_with(b"\r\n") && !bytes[..bytes.len() - 2].contains(&b'\n'));
                    if refusal.close {
                        return;
                    }
                }
                Step::Received(Received::Command(Request::Command(command))) => match &command.body {
                    CommandBody::Idle => input.expect(Expect::IdleDone),
                    CommandBody::Authenticate {
                        initial_response: None,
                        ..
                    } => input.expect(Expect::AuthenticateData),
                    _ => {}
                },
                Step::Received(Received::Command(Request::List(list))) => {
                    assert!(!list.patterns.is_empty());
                }
                Step::Received(Received::Command(Request::Search { .. })) => {}
                Step::Received(Received::Append(mut append)) => {
                    assert!(!append.messages.is_empty() && append.messages.len() <= MAX_MESSAGES);
                    let total: u64 = append.messages.iter().map(|m| m.len()).sum();
                    assert!(total <= MAX_TOTAL);
                    for index in 0..append.messages.len() {
                        let length = append.messages[index].len();
                        let bytes = append.take(index).unwrap();
                        assert_eq!(bytes.len() as u64, length);
                        assert!(append.messages[index].binary || !bytes.contains(&0));
                    }
                }
                Step::Received(Received::IdleDone | Received::AuthenticateData(_)) => {
                    input.expect(Expect::Command)
                }
            }
        }
    }
});
