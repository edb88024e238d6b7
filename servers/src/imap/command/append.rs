//! APPEND, with MULTIAPPEND's several messages (RFC 3502), BINARY's literal8 (RFC
//! 3516) and UIDPLUS's APPENDUID (RFC 4315). A message appended to the `\Sent` mailbox
//! while the user's origin is down is a sent copy, replayed to the origin later
//! (docs/design.md §7); every other APPEND is just mail the user keeps.
//!
//! All the messages of one APPEND are stored in one transaction of the store
//! ([`Store::deliver_together`](lifeboat_mailstore::store::Store)), read back from the
//! spool one at a time as the store writes them: all or none, and an empty message
//! cancels the lot (RFC 3502). A literal8 message with binary parts is stored with
//! those parts base64-encoded ([`binary::storable`]); one whose NUL cannot be moved into
//! a part is refused with `NO [UNKNOWN-CTE]`.

use lifeboat_mailstore::Class;
use lifeboat_mailstore::deliver::{NewMessage, header_value};
use lifeboat_mailstore::error::{Error as StoreError, Result as StoreResult};
use lifeboat_mailstore::reader::{MailboxRecord, Reader};

use crate::imap::context::{Context, User};
use crate::imap::flags::split_flags;
use crate::imap::mime::binary;
use crate::imap::response::{NoCode, Rejection, Reply, append_uid, no, ok_code};
use crate::imap::upload::Append;

pub fn append(cx: &mut Context, reader: &Reader, mut append: Append) -> StoreResult<Reply> {
    let tag = append.tag.clone();
    let user = cx.logged_in_user();
    let Some(target) = cx.find_mailbox(reader, &append.mailbox)? else {
        return Ok(Reply::new(vec![no(
            &tag,
            Some(NoCode::TryCreate),
            "no such mailbox",
        )]));
    };
    if append.messages.iter().any(|m| m.is_empty()) {
        return Ok(Reply::new(vec![no(
            &tag,
            None,
            "an empty message cancels the APPEND",
        )]));
    }
    // Why the store was told to stop, when it is the message's fault.
    let mut refusal = None;
    let count = append.messages.len();
    let cx_ref = &*cx;
    let messages = (0..count).map(|index| {
        let content = append.take(index).map_err(|source| StoreError::Io {
            context: "reading back a spooled APPEND".into(),
            source,
        })?;
        let upload = &append.messages[index];
        let content = if upload.binary {
            binary::storable(content).ok_or_else(|| {
                refusal = Some(Rejection::new(
                    Some(NoCode::UnknownCte),
                    "binary data outside a body part cannot be stored",
                ));
                StoreError::Refused("binary content".into())
            })?
        } else {
            content
        };
        let (system, keywords) = split_flags(&upload.flags);
        let class = class(cx_ref, reader, &user, &target, &content)?;
        let mut message = NewMessage::new(user.address.clone(), &target.name, content, class);
        message.flags = system;
        message.keywords = keywords;
        message.internal_date = upload.date.as_ref().map(|d| d.as_ref().timestamp());
        if class == Class::Sent {
            // Replayed into the user's own mailbox at the origin (docs/design.md, replay).
            message.envelope_from = Some(user.address.to_string());
            message.envelope_to = vec![user.address.clone()];
        }
        Ok(message)
    });
    let stored = match (cx_ref.store.deliver_together(messages), refusal) {
        (Ok(stored), _) => stored,
        (Err(_), Some(refusal)) => return Ok(Reply::new(vec![refusal.response(&tag)])),
        (Err(e), None) => return Err(e),
    };
    let uids: Vec<u32> = stored.iter().map(|s| s.uid).collect();
    let uid_validity = stored.first().map_or(target.uidvalidity, |s| s.uidvalidity);
    let mut responses = cx.poll_changes(reader)?;
    responses.push(ok_code(
        &tag,
        append_uid(uid_validity, &uids),
        "APPEND completed",
    ));
    Ok(Reply::new(responses))
}

/// A sent copy when appended to `\Sent` during the user's outage, unless a sent copy
/// with its Message-ID is already there (sent through submission, or appended twice).
fn class(
    cx: &Context,
    reader: &Reader,
    user: &User,
    target: &MailboxRecord,
    content: &[u8],
) -> StoreResult<Class> {
    let sent = target.special_use.as_deref() == Some("\\Sent")
        && reader.in_continuity(&cx.config.routes, &user.address)?
        && !already_sent(reader, target.id, content)?;
    Ok(if sent { Class::Sent } else { Class::Other })
}

fn already_sent(reader: &Reader, mailbox_id: i64, content: &[u8]) -> StoreResult<bool> {
    match header_value(content, "Message-ID") {
        Some(message_id) => reader.has_sent_copy(mailbox_id, &message_id),
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use crate::imap::testing::{Fixture, USER};
    use lifeboat_mailstore::{Class, Flags, OutageState};

    const MESSAGE: &str = "Subject: appended\r\nMessage-ID: <ap@example.test>\r\n\r\nhello\r\n";

    fn append(mailbox: &str, flags: &str) -> Vec<u8> {
        format!(
            "a1 APPEND {mailbox} {flags} \"20-Nov-2026 12:00:00 +0100\" {{{}+}}\r\n{MESSAGE}\r\n",
            MESSAGE.len()
        )
        .into_bytes()
    }

    #[test]
    fn append_stores_flags_keywords_and_date() {
        let mut f = Fixture::logged_in(0);
        let archive = f.mailbox("Archive").uidvalidity;
        assert_eq!(
            f.run(&append("Archive", "(\\Seen $Work)")),
            [format!(
                "a1 OK [APPENDUID {archive} 1] APPEND completed\r\n"
            )]
        );
        let stored = &f.messages("Archive")[0];
        assert_eq!(stored.flags, Flags::SEEN);
        assert_eq!(stored.keywords, ["$Work"]);
        assert_eq!(stored.internal_date, 1_795_172_400);
        assert_eq!(stored.class, Class::Other);
    }

    #[test]
    fn keywords_are_stored_with_the_message_not_after_it() {
        let mut f = Fixture::logged_in(0);
        let before = f.mailbox("Archive").highest_modseq;
        f.run(&append("Archive", "(\\Seen $Work)"));
        // One change: no session ever sees the message without its keywords.
        let stored = &f.messages("Archive")[0];
        assert_eq!(stored.keywords, ["$Work"]);
        assert_eq!(stored.modseq, before + 1);
        assert_eq!(f.mailbox("Archive").highest_modseq, before + 1);
    }

    #[test]
    fn append_needs_an_existing_mailbox_and_a_login() {
        let mut f = Fixture::logged_in(0);
        assert_eq!(
            f.run(&append("Nowhere", "()")),
            ["a1 NO [TRYCREATE] no such mailbox\r\n"]
        );
        let mut f = Fixture::new();
        assert_eq!(f.run(&append("INBOX", "()")), ["a1 BAD log in first\r\n"]);
        assert_eq!(
            f.framed(&append("INBOX", "()")),
            ["a1 BAD log in first\r\n"]
        );
    }

    #[test]
    fn append_to_the_selected_mailbox_reports_it() {
        let mut f = Fixture::selected(2);
        let inbox = f.mailbox("INBOX").uidvalidity;
        assert_eq!(
            f.run(&append("INBOX", "()")),
            [
                "* 3 EXISTS\r\n".to_string(),
                "* 1 RECENT\r\n".into(),
                format!("a1 OK [APPENDUID {inbox} 3] APPEND completed\r\n")
            ]
        );
    }

    #[test]
    fn append_to_sent_in_an_outage_is_a_sent_copy_once() {
        let mut f = Fixture::logged_in(0);
        f.run(&append("Sent", "(\\Seen)"));
        f.store
            .set_origin_state("main", OutageState::Outage, "test", true)
            .unwrap();
        f.run(&append("Sent", "(\\Seen)"));
        f.run(&append("Sent", "(\\Seen)"));
        let sent = f.messages("Sent");
        let classes: Vec<Class> = sent.iter().map(|m| m.class).collect();
        assert_eq!(classes, [Class::Other, Class::Sent, Class::Other]);
        assert_eq!(sent[1].envelope_from.as_deref(), Some(USER));
        assert_eq!(sent[1].envelope_to, [USER]);
    }

    /// The RFC 3502 §6.3.11 example, byte for byte.
    fn rfc_3502_example() -> String {
        let first = "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n\
                     From: Fred Foobar <foobar@Blurdybloop.example.COM>\r\n\
                     Subject: afternoon meeting\r\nTo: mooch@owatagu.example.net\r\n\
                     Message-Id: <B27397-0100000@Blurdybloop.example.COM>\r\n\
                     MIME-Version: 1.0\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n\
                     Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n";
        let second = "Date: Mon, 7 Feb 1994 22:43:04 -0800 (PST)\r\n\
                      From: Joe Mooch <mooch@OWaTaGu.example.net>\r\n\
                      Subject: Re: afternoon meeting\r\nTo: foobar@blurdybloop.example.com\r\n\
                      Message-Id: <a0434793874930@OWaTaGu.example.net>\r\n\
                      MIME-Version: 1.0\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n\
                      3:30 is fine with me.\r\n";
        format!(
            "A003 APPEND Archive (\\Seen) {{329}}\r\n{first} (\\Seen) \
             \" 7-Feb-1994 22:43:04 -0800\" {{295}}\r\n{second}\r\n"
        )
    }

    #[test]
    fn multiappend_stores_every_message_in_one_change_and_names_every_uid() {
        let mut f = Fixture::logged_in(0);
        let archive = f.mailbox("Archive");
        assert_eq!(
            f.framed(rfc_3502_example().as_bytes()),
            [format!(
                "A003 OK [APPENDUID {} 1:2] APPEND completed\r\n",
                archive.uidvalidity
            )]
        );
        let stored = f.messages("Archive");
        assert_eq!(stored.len(), 2);
        assert!(stored.iter().all(|m| m.flags == Flags::SEEN));
        assert_eq!(stored[1].internal_date, 760_689_784);
        assert_eq!(stored[0].modseq, archive.highest_modseq + 1);
        assert_eq!(stored[1].modseq, archive.highest_modseq + 2);
        assert!(
            String::from_utf8(f.stored("Archive", 1))
                .unwrap()
                .ends_with("3:30 is fine with me.\r\n")
        );
        // RFC 3502's other examples: no such mailbox (answered once the literal is in:
        // the framing does not look mailboxes up), and a literal refused before it comes.
        assert_eq!(
            f.framed(b"A004 APPEND bogusname (\\Flagged) {5}\r\nhello\r\n"),
            ["A004 NO [TRYCREATE] no such mailbox\r\n"]
        );
        let mut big = b"A005 APPEND Archive (\\Flagged) {99}\r\n".to_vec();
        big.extend_from_slice(&[b'x'; 99]);
        big.extend_from_slice(b" {60000000}\r\n");
        assert_eq!(f.framed(&big), ["A005 NO [TOOBIG] literal too big\r\n"]);
        assert_eq!(f.messages("Archive").len(), 2);
    }

    #[test]
    fn a_multiappend_stores_all_or_nothing() {
        let mut f = Fixture::logged_in(0);
        // An empty message cancels it (RFC 3502).
        assert_eq!(
            f.framed(b"a1 APPEND Archive {5+}\r\nfirst {0+}\r\n {6+}\r\nthird!\r\n"),
            ["a1 NO an empty message cancels the APPEND\r\n"]
        );
        // A NUL the store cannot move into a part: UNKNOWN-CTE, and the first is gone too.
        assert_eq!(
            f.framed(b"a2 APPEND Archive {5+}\r\nfirst ~{14+}\r\nSubject: \0\r\n\r\n\r\n"),
            ["a2 NO [UNKNOWN-CTE] binary data outside a body part cannot be stored\r\n"]
        );
        assert!(f.messages("Archive").is_empty());
        let archive = f.store.folder_dir(
            &lifeboat_mailstore::Address::parse(USER).unwrap(),
            "Archive",
        );
        assert_eq!(std::fs::read_dir(archive.join("cur")).unwrap().count(), 0);
        // Spooled messages too, and the UIDs given out to nothing are not given again.
        let mut bytes = b"a3 APPEND Archive {70000+}\r\n".to_vec();
        bytes.extend_from_slice(&[b'a'; 70_000]);
        bytes.extend_from_slice(b" (\\Draft) {70001+}\r\n");
        bytes.extend_from_slice(&[b'b'; 70_001]);
        bytes.extend_from_slice(b"\r\n");
        let uidvalidity = f.mailbox("Archive").uidvalidity;
        assert_eq!(
            f.framed(&bytes),
            [format!(
                "a3 OK [APPENDUID {uidvalidity} 1:2] APPEND completed\r\n"
            )]
        );
        assert_eq!(f.stored("Archive", 0), vec![b'a'; 70_000]);
        assert_eq!(f.stored("Archive", 1), vec![b'b'; 70_001]);
        assert_eq!(f.messages("Archive")[1].flags, Flags::DRAFT);
    }

    #[test]
    fn a_multiappend_to_the_selected_mailbox_reports_the_new_messages() {
        let mut f = Fixture::selected(1);
        let inbox = f.mailbox("INBOX").uidvalidity;
        assert_eq!(
            f.framed(b"a1 APPEND INBOX {3}\r\none {3}\r\ntwo {5}\r\nthree\r\n"),
            [
                "* 4 EXISTS\r\n".to_string(),
                "* 3 RECENT\r\n".into(),
                format!("a1 OK [APPENDUID {inbox} 2:4] APPEND completed\r\n")
            ]
        );
    }

    #[test]
    fn a_literal8_with_a_binary_part_is_stored_base64_and_fetched_back_whole() {
        let mut f = Fixture::logged_in(0);
        let data: Vec<u8> = (0..=255u8).collect();
        let mut message = b"Subject: bin\r\nMIME-Version: 1.0\r\n\
            Content-Type: multipart/mixed; boundary=x\r\n\r\n\
            --x\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
            --x\r\nContent-Type: application/octet-stream\r\n\
            Content-Transfer-Encoding: binary\r\n\r\n"
            .to_vec();
        message.extend_from_slice(&data);
        message.extend_from_slice(b"\r\n--x--\r\n");
        let mut bytes = format!("a1 APPEND INBOX ~{{{}}}\r\n", message.len()).into_bytes();
        bytes.extend_from_slice(&message);
        bytes.extend_from_slice(b"\r\n");
        let answer = f.framed(&bytes);
        assert!(answer[0].starts_with("a1 OK [APPENDUID "), "{answer:?}");
        let stored = f.stored("INBOX", 0);
        assert!(!stored.contains(&0));
        assert!(
            String::from_utf8(stored)
                .unwrap()
                .contains("Content-Transfer-Encoding: base64\r\n\r\nAAECAwQF")
        );
        f.run(b"s1 SELECT INBOX\r\n");
        let mut expected = b"* 1 FETCH (BINARY.SIZE[2] 256 BINARY[2] ~{256}\r\n".to_vec();
        expected.extend_from_slice(&data);
        expected.extend_from_slice(b")\r\n");
        let answer = f.run_raw(b"a2 FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[2])\r\n");
        assert_eq!(answer[0], expected);
    }
}
