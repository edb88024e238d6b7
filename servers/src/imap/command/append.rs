//! APPEND (with UIDPLUS's APPENDUID, RFC 4315). A message appended to the `\Sent`
//! mailbox while the user's origin is down is a sent copy, replayed to the origin later
//! (docs/design.md §7); every other APPEND is just mail the user keeps.

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::Code;
use lifeboat_mailstore::Class;
use lifeboat_mailstore::deliver::{NewMessage, header_value};
use lifeboat_mailstore::error::Result as StoreResult;
use lifeboat_mailstore::reader::{MailboxRecord, Reader};

use crate::imap::context::{Context, User};
use crate::imap::flags::split_flags;
use crate::imap::response::{NoCode, Reply, no, nz, ok_code};

pub fn append(
    cx: &mut Context,
    reader: &Reader,
    tag: &Tag<'static>,
    mailbox: &Mailbox<'_>,
    flags: &[Flag<'_>],
    date: Option<DateTime>,
    message: LiteralOrLiteral8<'static>,
) -> StoreResult<Reply> {
    let content = match message {
        LiteralOrLiteral8::Literal(literal) => literal.into_inner().into_owned(),
        LiteralOrLiteral8::Literal8(literal) => literal.data.into_owned(),
    };
    let user = cx.logged_in_user();
    let Some(target) = cx.find_mailbox(reader, mailbox)? else {
        return Ok(Reply::new(vec![no(
            tag,
            Some(NoCode::TryCreate),
            "no such mailbox",
        )]));
    };
    let (system, keywords) = split_flags(flags);
    let class = class(cx, reader, &user, &target, &content)?;
    let mut message = NewMessage::new(user.address.clone(), &target.name, content, class);
    message.flags = system;
    message.keywords = keywords;
    message.internal_date = date.map(|d| d.as_ref().timestamp());
    if class == Class::Sent {
        // Replayed into the user's own mailbox at the origin (docs/design.md, replay).
        message.envelope_from = Some(user.address.to_string());
        message.envelope_to = vec![user.address.clone()];
    }
    let stored = cx.store.deliver(message)?;
    let mut responses = cx.poll_changes(reader)?;
    let code = Code::AppendUid {
        uid_validity: nz(stored.uidvalidity),
        uid: nz(stored.uid),
    };
    responses.push(ok_code(tag, code, "APPEND completed"));
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
}
