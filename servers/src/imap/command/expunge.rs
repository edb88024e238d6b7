//! EXPUNGE and UID EXPUNGE (RFC 4315), and the silent expunge CLOSE does. Once QRESYNC
//! is on, the client hears of the messages removed as VANISHED, and the tagged OK
//! carries the HIGHESTMODSEQ it is now in step with (RFC 7162 §3.2.7, §3.2.9).

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::response::{Code, Response};
use lifeboat_mailstore::error::Result as StoreResult;
use lifeboat_mailstore::maildir::Flags;
use lifeboat_mailstore::reader::Reader;

use crate::imap::context::Context;
use crate::imap::mailbox::{MailboxView, MessageSet};
use crate::imap::response::{NoCode, Reply, no, nz64, ok, ok_code};

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
    let expunged = expunge_deleted(cx, reader, only)?;
    let mut responses = cx.poll_changes(reader)?;
    responses.push(done(cx, tag, expunged, "EXPUNGE completed"));
    Ok(Reply::new(responses))
}

/// The tagged OK of a command that expunged (EXPUNGE, UID EXPUNGE, MOVE) once its
/// changes are reported: with QRESYNC on and something expunged, it carries the
/// HIGHESTMODSEQ the client has now heard everything up to.
pub fn done(
    cx: &mut Context,
    tag: &Tag<'static>,
    expunged: bool,
    text: &'static str,
) -> Response<'static> {
    if !(cx.qresync && expunged && cx.is_selected()) {
        return ok(tag, text);
    }
    let (_, _, selected) = cx.selected();
    ok_code(tag, Code::HighestModSeq(nz64(selected.synced_modseq)), text)
}

/// Removes the `\Deleted` messages (of `only`, a UID set, when given) from the selected
/// mailbox, unless it is read-only. Copies that still wait for replay are only hidden
/// (see `Store::expunge`). The client hears of it at the next `poll_changes`. Whether
/// anything was expunged.
///
/// CLOSE's tagged OK carries no HIGHESTMODSEQ even with QRESYNC (unlike RFC 7162
/// §3.2.8): it goes by the current flags, so it may remove a message another session
/// marked `\Deleted` that this client never heard of, and no VANISHED may tell it so.
/// Its last known modseq stays, and its next SELECT (QRESYNC) reports the expunge.
pub fn expunge_deleted(
    cx: &mut Context,
    reader: &Reader,
    only: Option<&MessageSet>,
) -> StoreResult<bool> {
    let (store, _, selected) = cx.selected();
    if selected.read_only {
        return Ok(false);
    }
    // Decide on the current flags, not the client's possibly stale view.
    let Some((_, current)) = MailboxView::load(reader, |r| r.mailbox_by_id(selected.record.id))?
    else {
        return Ok(false);
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
    Ok(!doomed.is_empty())
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
