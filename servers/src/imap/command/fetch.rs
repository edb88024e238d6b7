//! FETCH and UID FETCH, with CONDSTORE's CHANGEDSINCE (RFC 7162 §3.1.4). What each data
//! item says about a message is `imap::fetch`'s business; this is the command: which
//! messages, reading them, and the `\Seen` that BODY[...] sets (RFC 3501 §6.4.5).

use imap_codec::imap_types::command::FetchModifier;
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::fetch::MacroOrMessageDataItemNames;
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::imap_types::sequence::SequenceSet;
use lifeboat_mailstore::error::Result as StoreResult;
use lifeboat_mailstore::flags::FlagChange;
use lifeboat_mailstore::maildir::Flags;
use lifeboat_mailstore::reader::{MessageRecord, Reader};

use crate::imap::context::Context;
use crate::imap::fetch::{self as items, Item};
use crate::imap::response::{NoCode, Reply, bad, data, no, nz, ok};

pub fn fetch(
    cx: &mut Context,
    reader: &Reader,
    tag: &Tag<'static>,
    set: &SequenceSet,
    names: MacroOrMessageDataItemNames<'static>,
    uid: bool,
    modifiers: &[FetchModifier],
) -> StoreResult<Reply> {
    let mut items = items::item_names(names, uid);
    let mut changed_since = None;
    for modifier in modifiers {
        match modifier {
            FetchModifier::ChangedSince(value) => changed_since = Some(value.get()),
            // VANISHED needs QRESYNC, which is not offered.
            FetchModifier::Vanished => {
                return Ok(Reply::new(vec![bad(tag, "QRESYNC is not enabled")]));
            }
        }
    }
    if changed_since.is_some() && !items.contains(&Item::ModSeq) {
        items.push(Item::ModSeq);
    }
    fetch_items(cx, reader, tag, set, &items, uid, changed_since)
}

/// The FETCH responses for `items` of the messages `set` names, then others' changes.
fn fetch_items(
    cx: &mut Context,
    reader: &Reader,
    tag: &Tag<'static>,
    set: &SequenceSet,
    items: &[Item],
    uid: bool,
    changed_since: Option<u64>,
) -> StoreResult<Reply> {
    // Asking for MODSEQ turns CONDSTORE on, as enabling it does (RFC 7162 §3.1).
    let condstore = cx.condstore || items.contains(&Item::ModSeq);
    cx.condstore = condstore;
    let (store, user, selected) = cx.selected();
    if !uid && !selected.view.valid_sequence(set) {
        return Ok(Reply::new(vec![bad(
            tag,
            "invalid message sequence number",
        )]));
    }
    let mut positions = selected.view.resolve(set, uid);
    if let Some(since) = changed_since {
        // RFC 7162 §3.1.4: only messages changed after that modseq.
        positions.retain(|&i| selected.view.messages[i].modseq > since as i64);
    }
    let marks_seen = !selected.read_only && items.iter().any(Item::marks_seen);
    let needs_bytes = items.iter().any(Item::needs_bytes);
    let mut responses = Vec::with_capacity(positions.len() + 1);
    let mut seen = SeenNow::default();
    for index in positions {
        let mut message = selected.view.messages[index].clone();
        let bytes = if needs_bytes {
            match store.read_message(&user.address, &selected.record.name, &message) {
                Ok(bytes) => Some(bytes),
                Err(e) => {
                    tracing::error!(error = %e, uid = message.uid, "imap: cannot read a message");
                    return Ok(Reply::new(vec![no(
                        tag,
                        Some(NoCode::ServerBug),
                        "cannot read a message",
                    )]));
                }
            }
        } else {
            None
        };
        let marked = marks_seen && seen.mark(&mut message);
        responses.push(response(index, &message, items, marked, bytes, condstore));
    }
    if !seen.changes.is_empty() {
        let (address, name, id) = (&user.address, &selected.record.name, selected.record.id);
        store.set_flags(address, name, id, seen.changes)?;
    }
    // Others' changes (no EXPUNGE during FETCH); ours is already in the responses.
    if let Some(changes) = selected.refresh(reader, false, condstore, &seen.uids)? {
        responses.extend(changes);
    }
    responses.push(ok(tag, "FETCH completed"));
    Ok(Reply::new(responses))
}

/// The `\Seen` flags this FETCH sets, stored once all messages are answered.
#[derive(Default)]
struct SeenNow {
    changes: Vec<FlagChange>,
    uids: Vec<u32>,
}

impl SeenNow {
    /// Sets `\Seen` on the message (as this FETCH's answer will show it) unless it has
    /// it; whether it was set.
    fn mark(&mut self, message: &mut MessageRecord) -> bool {
        if message.flags.contains(Flags::SEEN) {
            return false;
        }
        self.changes.push(FlagChange {
            row: message.row,
            basename: message.basename.clone(),
            old_flags: message.flags,
            flags: message.flags.union(Flags::SEEN),
            keywords: message.keywords.clone(),
        });
        message.flags = message.flags.union(Flags::SEEN);
        self.uids.push(message.uid);
        true
    }
}

/// One message's FETCH response. RFC 3501 §6.4.5: a FETCH that sets \Seen reports the
/// new flags, asked for or not.
fn response(
    index: usize,
    message: &MessageRecord,
    items: &[Item],
    marked_seen: bool,
    bytes: Option<Vec<u8>>,
    condstore: bool,
) -> Response<'static> {
    let with_flags;
    let items = if marked_seen && !items.contains(&Item::Flags) {
        with_flags = [items, &[Item::Flags]].concat();
        &with_flags[..]
    } else {
        items
    };
    let values = items::values(items, message, bytes.as_deref(), condstore);
    data(Data::Fetch {
        seq: nz(index as u32 + 1),
        items: values,
    })
}
