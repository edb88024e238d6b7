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
    let stored = match cx_ref.store.deliver_together(messages) {
        Ok(stored) => stored,
        Err(_) if refusal.is_some() => {
            let refusal = refusal.unwrap_or_else(|| Rejection::new(None, "refused"));
            return Ok(Reply::new(vec![refusal.response(&tag)]));
        }
        Err(e) => return Err(e),
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
