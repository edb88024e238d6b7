//! COPY and MOVE (RFC 6851), and their UID forms, with UIDPLUS's COPYUID (RFC 4315).
//! Copies are new messages of class `other` in the target: the originals keep their
//! replay duty. MOVE expunges the originals in the same store transaction: a COPY or
//! MOVE that fails leaves both mailboxes as they were (RFC 3501 §6.4.7, RFC 6851 §3.3).

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::Code;
use lifeboat_mailstore::Class;
use lifeboat_mailstore::deliver::NewMessage;
use lifeboat_mailstore::error::Result as StoreResult;
use lifeboat_mailstore::reader::{MailboxRecord, MessageRecord, Reader};

use super::expunge::done;
use crate::imap::context::Context;
use crate::imap::mailbox::MessageSet;
use crate::imap::response::{
    NoCode, Rejection, Reply, bad, no, nz, ok, ok_code, uid_set, untagged_ok,
};

/// One message copied: its UID and its copy's UID.
struct Copied {
    from: u32,
    to: u32,
}

/// COPY, or MOVE (`moving`), of the messages `set` names to `mailbox`.
pub fn copy(
    cx: &mut Context,
    reader: &Reader,
    tag: &Tag<'static>,
    set: &MessageSet,
    mailbox: &Mailbox<'_>,
    uid: bool,
    moving: bool,
) -> StoreResult<Reply> {
    let Some(target) = cx.find_mailbox(reader, mailbox)? else {
        return Ok(Reply::new(vec![no(
            tag,
            Some(NoCode::TryCreate),
            "no such mailbox",
        )]));
    };
    let (_, _, selected) = cx.selected();
    if moving && selected.read_only {
        return Ok(Reply::new(vec![no(
            tag,
            Some(NoCode::ReadOnly),
            "mailbox is read-only",
        )]));
    }
    if !uid && !selected.view.valid_sequence(set) {
        return Ok(Reply::new(vec![bad(
            tag,
            "invalid message sequence number",
        )]));
    }
    let copied = match copy_messages(cx, set, uid, &target, moving) {
        Ok(copied) => copied,
        Err(e) => {
            let refusal = if names_an_expunged_message(cx, reader, set, uid)? {
                // RFC 2180 §4.4.1: another session expunged one; the client hears of it
                // now, and nothing was copied.
                Rejection::new(
                    Some(NoCode::ExpungeIssued),
                    "some of the messages no longer exist; nothing was copied",
                )
            } else {
                tracing::error!(error = %e, "imap: COPY/MOVE failed; nothing was stored");
                Rejection::new(None, "nothing was copied; try again")
            };
            let mut responses = cx.poll_changes(reader)?;
            responses.push(refusal.response(tag));
            return Ok(Reply::new(responses));
        }
    };
    let code = (!copied.is_empty()).then(|| Code::CopyUid {
        uid_validity: nz(target.uidvalidity),
        source: uid_set(copied.iter().map(|c| c.from)),
        destination: uid_set(copied.iter().map(|c| c.to)),
    });
    let mut responses = Vec::new();
    if moving {
        if let Some(code) = code {
            responses.push(untagged_ok(code, "moved"));
        }
        responses.extend(cx.poll_changes(reader)?);
        responses.push(done(cx, tag, !copied.is_empty(), "MOVE completed"));
    } else {
        responses.extend(cx.poll_changes(reader)?);
        responses.push(match code {
            Some(code) => ok_code(tag, code, "COPY completed"),
            None => ok(tag, "COPY completed"),
        });
    }
    Ok(Reply::new(responses))
}

/// Whether a message the set names is gone from the index (another session expunged it).
fn names_an_expunged_message(
    cx: &mut Context,
    reader: &Reader,
    set: &MessageSet,
    uid: bool,
) -> StoreResult<bool> {
    let (_, _, selected) = cx.selected();
    for index in selected.view.resolve(set, uid) {
        if reader
            .message_flags(selected.view.messages[index].row)?
            .is_none()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Stores a copy of each message in `target`, with its flags, keywords and internal
/// date, all in one transaction; with `moving`, the originals go in it too.
fn copy_messages(
    cx: &mut Context,
    set: &MessageSet,
    uid: bool,
    target: &MailboxRecord,
    moving: bool,
) -> StoreResult<Vec<Copied>> {
    let (store, user, selected) = cx.selected();
    let originals: Vec<&MessageRecord> = selected
        .view
        .resolve(set, uid)
        .into_iter()
        .map(|index| &selected.view.messages[index])
        .collect();
    // Each copy is read when the store is ready for it: one message in memory at a time.
    let copies = originals.iter().map(|original| {
        let bytes = store.read_message(&user.address, &selected.record.name, original)?;
        let mut copy = NewMessage::new(user.address.clone(), &target.name, bytes, Class::Other);
        copy.flags = original.flags;
        copy.keywords = original.keywords.clone();
        copy.internal_date = Some(original.internal_date);
        Ok(copy)
    });
    let stored = if moving {
        let uids = originals.iter().map(|m| m.uid).collect();
        store.move_messages(copies, selected.record.id, uids)?.0
    } else {
        store.copy_messages(copies)?
    };
    Ok(originals
        .iter()
        .zip(stored)
        .map(|(original, stored)| Copied {
            from: original.uid,
            to: stored.uid,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use crate::imap::testing::{DATE, Fixture};
    use lifeboat_mailstore::{Class, Flags};

    #[test]
    fn copy_keeps_flags_keywords_and_dates_and_answers_copyuid() {
        let mut f = Fixture::selected(2);
        f.run(b"a0 STORE 2 +FLAGS.SILENT (\\Flagged $Work)\r\n");
        let archive = f.mailbox("Archive").uidvalidity;
        assert_eq!(
            f.run(b"a1 COPY 1:2 Archive\r\n"),
            [format!(
                "a1 OK [COPYUID {archive} 1:2 1:2] COPY completed\r\n"
            )]
        );
        let copies = f.messages("Archive");
        assert_eq!(copies.len(), 2);
        assert!(copies.iter().all(|m| m.class == Class::Other));
        assert_eq!(copies[1].flags, Flags::FLAGGED);
        assert_eq!(copies[1].keywords, ["$Work"]);
        assert_eq!(copies[0].internal_date, DATE);
        assert_eq!(f.messages("INBOX").len(), 2);
        assert_eq!(
            f.run(b"a2 UID COPY 2 Archive\r\n"),
            [format!("a2 OK [COPYUID {archive} 2 3] COPY completed\r\n")]
        );
    }

    #[test]
    fn copies_are_stored_with_their_keywords_not_after_them() {
        let mut f = Fixture::selected(1);
        f.run(b"a0 STORE 1 +FLAGS.SILENT ($Work)\r\n");
        let before = f.mailbox("Archive").highest_modseq;
        f.run(b"a1 COPY 1 Archive\r\n");
        let copy = &f.messages("Archive")[0];
        assert_eq!(copy.keywords, ["$Work"]);
        assert_eq!(copy.modseq, before + 1);
        assert_eq!(f.mailbox("Archive").highest_modseq, before + 1);
    }

    /// Removes the file of message `index` of INBOX, so copying it fails.
    fn lose_file(f: &Fixture, index: usize) {
        let owner = lifeboat_mailstore::Address::parse(crate::imap::testing::USER).unwrap();
        let message = &f.messages("INBOX")[index];
        std::fs::remove_file(f.store.message_path(&owner, "INBOX", message)).unwrap();
    }

    #[test]
    fn a_copy_that_fails_leaves_the_target_as_it_was() {
        let mut f = Fixture::selected(3);
        lose_file(&f, 1);
        let answer = f.run(b"a1 COPY 1:3 Archive\r\n");
        assert!(answer.last().unwrap().starts_with("a1 NO "), "{answer:?}");
        // RFC 3501 §6.4.7: a failed COPY restores the destination mailbox.
        assert!(f.messages("Archive").is_empty());
        let answer = f.run(b"a2 MOVE 1:3 Archive\r\n");
        assert!(answer.last().unwrap().starts_with("a2 NO "), "{answer:?}");
        assert!(f.messages("Archive").is_empty());
        assert_eq!(f.messages("INBOX").len(), 3);
        assert_eq!(f.run(b"a3 NOOP\r\n"), ["a3 OK NOOP completed\r\n"]);
        // Nothing was left behind on disk either.
        let owner = lifeboat_mailstore::Address::parse(crate::imap::testing::USER).unwrap();
        let archive = f.store.folder_dir(&owner, "Archive");
        for dir in ["cur", "tmp"] {
            assert_eq!(
                std::fs::read_dir(archive.join(dir)).unwrap().count(),
                0,
                "{dir}"
            );
        }
    }

    #[test]
    fn a_copy_into_the_selected_mailbox_is_recent_to_this_session() {
        let mut f = Fixture::selected(1);
        let inbox = f.mailbox("INBOX").uidvalidity;
        assert_eq!(
            f.run(b"a1 COPY 1 INBOX\r\n"),
            [
                "* 2 EXISTS\r\n".to_string(),
                "* 1 RECENT\r\n".into(),
                format!("a1 OK [COPYUID {inbox} 1 2] COPY completed\r\n")
            ]
        );
        assert_eq!(
            f.run(b"a2 FETCH 2 FLAGS\r\n")[0],
            "* 2 FETCH (FLAGS (\\Recent))\r\n"
        );
    }

    #[test]
    fn a_copy_is_the_same_message_byte_for_byte() {
        let mut f = Fixture::selected(1);
        f.run(b"a1 COPY 1 Archive\r\n");
        f.run(b"a2 MOVE 1 Trash\r\n");
        // The fixture's messages start with the store's trace block; so do the copies.
        let original = f.stored("Trash", 0);
        assert!(original.starts_with(b"X-Lifeboat-Class: journal\r\n"));
        assert_eq!(f.stored("Archive", 0), original);
        assert_eq!(f.messages("Archive")[0].size, original.len() as u64);
    }

    #[test]
    fn a_copy_of_a_message_another_session_expunged_copies_nothing() {
        let mut f = Fixture::selected(2);
        let mut other = f.other_session();
        crate::imap::testing::exchange(&mut other, b"b1 SELECT INBOX\r\n");
        crate::imap::testing::exchange(&mut other, b"b2 STORE 2 +FLAGS.SILENT (\\Deleted)\r\n");
        crate::imap::testing::exchange(&mut other, b"b3 EXPUNGE\r\n");
        assert_eq!(
            f.run(b"a1 COPY 1:2 Archive\r\n"),
            [
                "* 2 EXPUNGE\r\n",
                "a1 NO [EXPUNGEISSUED] some of the messages no longer exist; nothing was copied\r\n"
            ]
        );
        assert!(f.messages("Archive").is_empty());
    }

    #[test]
    fn copy_refusals() {
        let mut f = Fixture::selected(2);
        assert_eq!(
            f.run(b"a1 COPY 1 Nowhere\r\n"),
            ["a1 NO [TRYCREATE] no such mailbox\r\n"]
        );
        assert_eq!(
            f.run(b"a2 COPY 3 Archive\r\n"),
            ["a2 BAD invalid message sequence number\r\n"]
        );
        // UIDs that do not exist copy nothing, successfully.
        assert_eq!(
            f.run(b"a3 UID COPY 9 Archive\r\n"),
            ["a3 OK COPY completed\r\n"]
        );
        assert!(f.messages("Archive").is_empty());
    }

    #[test]
    fn move_expunges_the_originals() {
        let mut f = Fixture::selected(3);
        let archive = f.mailbox("Archive").uidvalidity;
        assert_eq!(
            f.run(b"a1 MOVE 1,3 Archive\r\n"),
            [
                format!("* OK [COPYUID {archive} 1,3 1:2] moved\r\n"),
                "* 3 EXPUNGE\r\n".into(),
                "* 1 EXPUNGE\r\n".into(),
                "a1 OK MOVE completed\r\n".into()
            ]
        );
        let left: Vec<u32> = f.messages("INBOX").iter().map(|m| m.uid).collect();
        assert_eq!(left, [2]);
        assert_eq!(
            f.run(b"a2 UID MOVE 9 Archive\r\n"),
            ["a2 OK MOVE completed\r\n"]
        );
    }

    #[test]
    fn a_read_only_mailbox_copies_but_does_not_move() {
        let mut f = Fixture::logged_in(1);
        f.run(b"a0 EXAMINE INBOX\r\n");
        assert_eq!(
            f.run(b"a1 UID MOVE 1 Archive\r\n"),
            ["a1 NO [READ-ONLY] mailbox is read-only\r\n"]
        );
        let archive = f.mailbox("Archive").uidvalidity;
        assert_eq!(
            f.run(b"a2 COPY 1 Archive\r\n"),
            [format!("a2 OK [COPYUID {archive} 1 1] COPY completed\r\n")]
        );
        assert_eq!(f.messages("INBOX").len(), 1);
    }
}
