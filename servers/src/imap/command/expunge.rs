//! EXPUNGE and UID EXPUNGE (RFC 4315), and the silent expunge CLOSE does.

use imap_codec::imap_types::core::Tag;
use lifeboat_mailstore::error::Result as StoreResult;
use lifeboat_mailstore::maildir::Flags;
use lifeboat_mailstore::reader::Reader;

use crate::imap::context::Context;
use crate::imap::mailbox::{MailboxView, MessageSet};
use crate::imap::response::{NoCode, Reply, no, ok};

/// EXPUNGE, or UID EXPUNGE of the UIDs in `only`: the client hears of each message
/// removed through the change report, as of any other session's expunge.
pub fn expunge(
    cx: &mut Context,
    reader: &Reader,
    tag: &Tag<'static>,
    only: Option<&MessageSet>,
) -> StoreResult<Reply> {
    if cx.is_read_only() {
        return Ok(Reply::new(vec![no(
            tag,
            Some(NoCode::ReadOnly),
            "mailbox is read-only",
        )]));
    }
    expunge_deleted(cx, reader, only)?;
    let mut responses = cx.poll_changes(reader)?;
    responses.push(ok(tag, "EXPUNGE completed"));
    Ok(Reply::new(responses))
}

/// Removes the `\Deleted` messages (of `only`, a UID set, when given) from the selected
/// mailbox, unless it is read-only. Copies that still wait for replay are only hidden
/// (see `Store::expunge`). The client hears of it at the next `poll_changes`.
pub fn expunge_deleted(
    cx: &mut Context,
    reader: &Reader,
    only: Option<&MessageSet>,
) -> StoreResult<()> {
    let (store, _, selected) = cx.selected();
    if selected.read_only {
        return Ok(());
    }
    // Decide on the current flags, not the client's possibly stale view.
    let Some((_, current)) = MailboxView::load(reader, |r| r.mailbox_by_id(selected.record.id))?
    else {
        return Ok(());
    };
    let allowed: Option<Vec<usize>> = only.map(|set| current.resolve(set, true));
    let doomed: Vec<u32> = current
        .messages
        .iter()
        .enumerate()
        .filter(|(i, m)| {
            m.flags.contains(Flags::DELETED)
                && allowed.as_ref().is_none_or(|a| a.binary_search(i).is_ok())
        })
        .map(|(_, m)| m.uid)
        .collect();
    if !doomed.is_empty() {
        store.expunge(selected.record.id, &doomed)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::imap::testing::{Fixture, exchange};

    #[test]
    fn expunge_removes_deleted_messages_highest_first() {
        let mut f = Fixture::selected(3);
        f.run(b"a0 STORE 1,3 +FLAGS.SILENT (\\Deleted)\r\n");
        assert_eq!(
            f.run(b"a1 EXPUNGE\r\n"),
            [
                "* 3 EXPUNGE\r\n",
                "* 1 EXPUNGE\r\n",
                "a1 OK EXPUNGE completed\r\n"
            ]
        );
        let left: Vec<u32> = f.messages("INBOX").iter().map(|m| m.uid).collect();
        assert_eq!(left, [2]);
        assert_eq!(f.run(b"a2 EXPUNGE\r\n"), ["a2 OK EXPUNGE completed\r\n"]);
    }

    #[test]
    fn uid_expunge_removes_only_the_named() {
        let mut f = Fixture::selected(3);
        f.run(b"a0 STORE 1:3 +FLAGS.SILENT (\\Deleted)\r\n");
        assert_eq!(
            f.run(b"a1 UID EXPUNGE 2:3\r\n"),
            [
                "* 3 EXPUNGE\r\n",
                "* 2 EXPUNGE\r\n",
                "a1 OK EXPUNGE completed\r\n"
            ]
        );
        let left: Vec<u32> = f.messages("INBOX").iter().map(|m| m.uid).collect();
        assert_eq!(left, [1]);
    }

    #[test]
    fn expunge_goes_by_the_current_flags() {
        let mut f = Fixture::selected(2);
        let mut other = f.other_session();
        exchange(&mut other, b"b1 SELECT INBOX\r\n");
        exchange(&mut other, b"b2 STORE 2 +FLAGS.SILENT (\\Deleted)\r\n");
        assert_eq!(
            f.run(b"a1 EXPUNGE\r\n"),
            ["* 2 EXPUNGE\r\n", "a1 OK EXPUNGE completed\r\n"]
        );
    }

    #[test]
    fn a_read_only_mailbox_is_not_expunged() {
        let mut f = Fixture::selected(1);
        f.run(b"a0 STORE 1 +FLAGS.SILENT (\\Deleted)\r\n");
        f.run(b"a1 EXAMINE INBOX\r\n");
        assert_eq!(
            f.run(b"a2 EXPUNGE\r\n"),
            ["a2 NO [READ-ONLY] mailbox is read-only\r\n"]
        );
        assert_eq!(
            f.run(b"a3 UID EXPUNGE 1\r\n"),
            ["a3 NO [READ-ONLY] mailbox is read-only\r\n"]
        );
        assert_eq!(f.messages("INBOX").len(), 1);
    }
}
