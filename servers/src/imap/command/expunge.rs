//! EXPUNGE and UID EXPUNGE (RFC 4315), and the silent expunge CLOSE does.

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::sequence::SequenceSet;
use lifeboat_mailstore::error::Result as StoreResult;
use lifeboat_mailstore::maildir::Flags;
use lifeboat_mailstore::reader::Reader;

use crate::imap::context::Context;
use crate::imap::mailbox::MailboxView;
use crate::imap::response::{NoCode, Reply, no, ok};

/// EXPUNGE, or UID EXPUNGE of the UIDs in `only`: the client hears of each message
/// removed through the change report, as of any other session's expunge.
pub fn expunge(
    cx: &mut Context,
    reader: &Reader,
    tag: &Tag<'static>,
    only: Option<&SequenceSet>,
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
    only: Option<&SequenceSet>,
) -> StoreResult<()> {
    let (store, _, selected) = cx.selected();
    if selected.read_only {
        return Ok(());
    }
    // Decide on the current flags, not the client's possibly stale view.
    let Some(record) = reader.mailbox_by_id(selected.record.id)? else {
        return Ok(());
    };
    let current = MailboxView::load(reader, &record)?;
    let allowed: Option<Vec<usize>> = only.map(|set| current.resolve(set, true));
    let doomed: Vec<u32> = current
        .messages
        .iter()
        .enumerate()
        .filter(|(i, m)| {
            m.flags.contains(Flags::DELETED) && allowed.as_ref().is_none_or(|a| a.contains(i))
        })
        .map(|(_, m)| m.uid)
        .collect();
    if !doomed.is_empty() {
        store.expunge(selected.record.id, &doomed)?;
    }
    Ok(())
}
