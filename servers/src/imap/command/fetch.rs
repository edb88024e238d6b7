//! FETCH and UID FETCH, with CONDSTORE's CHANGEDSINCE (RFC 7162 §3.1.4), QRESYNC's
//! VANISHED (§3.2.6) and BINARY (RFC 3516). What each data item says about a message is
//! `imap::fetch`'s business; this is the command: which messages, reading them, the
//! `\Seen` that BODY[...] and BINARY[...] set (RFC 3501 §6.4.5), and `NO [UNKNOWN-CTE]`
//! for a BINARY section whose transfer encoding cannot be undone.

use imap_codec::imap_types::command::FetchModifier;
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::fetch::MacroOrMessageDataItemNames;
use lifeboat_mailstore::error::Result as StoreResult;
use lifeboat_mailstore::flags::{FlagEdit, FlagOp};
use lifeboat_mailstore::maildir::Flags;
use lifeboat_mailstore::reader::{MessageRecord, Reader};

use crate::imap::context::Context;
use crate::imap::fetch::{self as items, Item};
use crate::imap::mailbox::MessageSet;
use crate::imap::mime::{self, binary};
use crate::imap::response::{Gone, NoCode, Reply, bad, encode, no, ok};
use crate::imap::vanished::{self, UidRanges};

pub fn fetch(
    cx: &mut Context,
    reader: &Reader,
    tag: &Tag<'static>,
    set: &MessageSet,
    names: MacroOrMessageDataItemNames<'static>,
    uid: bool,
    modifiers: &[FetchModifier],
) -> StoreResult<Reply> {
    let mut items = items::item_names(names, uid);
    let mut changed_since = None;
    let mut vanished = false;
    for modifier in modifiers {
        match modifier {
            FetchModifier::ChangedSince(value) => changed_since = Some(value.get()),
            FetchModifier::Vanished => vanished = true,
        }
    }
    // RFC 7162 §3.2.6: VANISHED only in UID FETCH, with CHANGEDSINCE, once enabled.
    let refusal = if !vanished {
        None
    } else if !cx.qresync {
        Some("QRESYNC is not enabled")
    } else if !uid {
        Some("VANISHED is for UID FETCH")
    } else if changed_since.is_none() {
        Some("VANISHED needs CHANGEDSINCE")
    } else {
        None
    };
    if let Some(refusal) = refusal {
        return Ok(Reply::new(vec![bad(tag, refusal)]));
    }
    if changed_since.is_some() && !items.contains(&Item::ModSeq) {
        items.push(Item::ModSeq);
    }
    let changes = changed_since.map(|since| Changes {
        since: i64::try_from(since).unwrap_or(i64::MAX),
        vanished,
    });
    fetch_items(cx, reader, tag, set, &items, uid, changes)
}

/// CHANGEDSINCE: only messages changed after the modseq, and with VANISHED, first the
/// UIDs of the set expunged after it.
#[derive(Clone, Copy)]
struct Changes {
    since: i64,
    vanished: bool,
}

/// The FETCH responses for `items` of the messages `set` names, then others' changes.
/// Each message's responses go to the outbox as soon as they are made (the server
/// writes them meanwhile); the command stops early when nobody reads any more.
fn fetch_items(
    cx: &mut Context,
    reader: &Reader,
    tag: &Tag<'static>,
    set: &MessageSet,
    items: &[Item],
    uid: bool,
    changes: Option<Changes>,
) -> StoreResult<Reply> {
    // Asking for MODSEQ turns CONDSTORE on, as enabling it does (RFC 7162 §3.1).
    let condstore = cx.condstore || items.contains(&Item::ModSeq);
    cx.condstore = condstore;
    let enabled = cx.enabled();
    let mut outbox = std::mem::take(&mut cx.outbox);
    let cancel = cx.cancel.clone();
    let (store, user, selected) = cx.selected();
    if !uid && !selected.view.valid_sequence(set) {
        cx.outbox = outbox;
        return Ok(Reply::new(vec![bad(
            tag,
            "invalid message sequence number",
        )]));
    }
    let mut positions = selected.view.resolve(set, uid);
    if let Some(changes) = changes {
        if changes.vanished {
            // Before any FETCH, so message numbers stay as the client has them.
            let (record, messages) = (&selected.record, &selected.view.messages[..]);
            let star = record
                .uidnext
                .saturating_sub(1)
                .max(selected.view.max_uid());
            let asked = match set {
                MessageSet::Set(set) => UidRanges::from_set(set, star),
                // `$` (RFC 5182): the UIDs saved.
                MessageSet::Uids(uids) => UidRanges::from_ascending(uids),
            };
            let earlier = vanished::earlier(reader, record, messages, &asked, changes.since, None)?;
            if let Some(response) = earlier
                && outbox.send(encode(&response)) == Err(Gone)
            {
                cx.outbox = outbox;
                return Ok(Reply::new(vec![no(tag, None, "FETCH cancelled")]));
            }
        }
        // RFC 7162 §3.1.4: only messages changed after that modseq.
        positions.retain(|&i| selected.view.messages[i].modseq > changes.since);
    }
    let marks_seen = !selected.read_only && items.iter().any(Item::marks_seen);
    let needs_bytes = items.iter().any(Item::needs_bytes);
    // RFC 3501 §6.4.5: a FETCH that sets \Seen reports the new flags, asked for or not.
    let with_flags = [items, &[Item::Flags]].concat();
    let items_and_flags = if items.contains(&Item::Flags) {
        items
    } else {
        &with_flags[..]
    };
    let grouping = items::Grouping {
        condstore,
        uid,
        limit: items::GROUP_BYTES,
    };
    let mut seen = SeenNow::default();
    let mut gone = false;
    let mut unknown_cte = false;
    for index in positions {
        if cancel.is_cancelled() {
            gone = true;
            break;
        }
        let mut message = selected.view.messages[index].clone();
        let bytes = if needs_bytes {
            match store.read_message(&user.address, &selected.record.name, &message) {
                Ok(bytes) => Some(bytes),
                // RFC 2180 §4.1.3: another session expunged it, and this one may not hear
                // of it yet; it gets empty data rather than a NO.
                Err(_) if reader.message_flags(message.row)?.is_none() => Some(Vec::new()),
                Err(e) => {
                    tracing::error!(error = %e, uid = message.uid, "imap: cannot read a message");
                    cx.outbox = outbox;
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
        // BINARY items work on the message's MIME tree, parsed once for them all.
        let mut binary_parts = items.iter().filter_map(Item::binary_part).peekable();
        let tree = match (&bytes, binary_parts.peek()) {
            (Some(bytes), Some(_)) => Some(mime::tree::parse(bytes)),
            _ => None,
        };
        if tree
            .as_ref()
            .is_some_and(|root| !binary::known(root, binary_parts))
        {
            unknown_cte = true;
            break;
        }
        let marked = marks_seen && seen.mark(&mut message);
        if marked {
            // What this answer tells the client is what its view holds now.
            selected.view.messages[index].flags = message.flags;
        }
        let items = if marked { items_and_flags } else { items };
        let recent = selected.view.is_recent(message.uid);
        let bytes = bytes.as_deref();
        let sent = items::in_groups(
            items,
            &message,
            recent,
            bytes,
            tree.as_ref(),
            grouping,
            |group| outbox.send(items::response(index as u32 + 1, group)),
        );
        if sent == Err(Gone) {
            gone = true;
            break;
        }
    }
    cx.outbox = outbox;
    let (store, user, selected) = cx.selected();
    // Messages answered are seen, even when the client went away meanwhile.
    if !seen.rows.is_empty() {
        let (address, name, id) = (&user.address, &selected.record.name, selected.record.id);
        let seen_now = FlagEdit::new(FlagOp::Add, Flags::SEEN, Vec::new());
        store.edit_flags(address, name, id, seen.rows, seen_now)?;
    }
    if gone {
        return Ok(Reply::new(vec![no(tag, None, "FETCH cancelled")]));
    }
    if unknown_cte {
        return Ok(Reply::new(vec![no(
            tag,
            Some(NoCode::UnknownCte),
            "cannot decode that section's Content-Transfer-Encoding",
        )]));
    }
    // Others' changes (no EXPUNGE during FETCH); ours is already in the view, so only
    // what others changed meanwhile is news (a keyword another session added).
    let mut responses = Vec::new();
    if let Some(changes) = selected.refresh(store, reader, false, enabled, &[])? {
        responses.extend(changes);
    }
    responses.extend(selected.withheld_expunges(enabled));
    responses.push(ok(tag, "FETCH completed"));
    Ok(Reply::new(responses))
}

/// The messages this FETCH sets `\Seen` on, stored once all messages are answered.
#[derive(Default)]
struct SeenNow {
    rows: Vec<i64>,
}

impl SeenNow {
    /// Sets `\Seen` on the message (as this FETCH's answer will show it) unless it has
    /// it; whether it was set.
    fn mark(&mut self, message: &mut MessageRecord) -> bool {
        if message.flags.contains(Flags::SEEN) {
            return false;
        }
        self.rows.push(message.row);
        message.flags = message.flags.union(Flags::SEEN);
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use imap_codec::CommandCodec;
    use imap_codec::decode::Decoder;
    use lifeboat_mailstore::{Address, Class, NewMessage};

    use crate::imap::response::{Gone, Outbox};
    use crate::imap::testing::{DATE, Fixture, USER, encode_all, exchange};

    /// Message `index` of INBOX as stored (the store adds a header), as a literal.
    fn literal(f: &Fixture, index: usize) -> String {
        let bytes = String::from_utf8(f.stored("INBOX", index)).unwrap();
        format!("{{{}}}\r\n{bytes}", bytes.len())
    }

    #[test]
    fn attributes_without_the_message() {
        let mut f = Fixture::selected(2);
        let size = f.stored("INBOX", 0).len();
        assert_eq!(f.messages("INBOX")[0].size, size as u64);
        assert_eq!(
            f.run(b"a1 FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE)\r\n"),
            [
                format!(
                    "* 1 FETCH (FLAGS () UID 1 RFC822.SIZE {size} INTERNALDATE \
                     \"24-Nov-2026 10:00:00 +0000\")\r\n"
                ),
                format!(
                    "* 2 FETCH (FLAGS () UID 2 RFC822.SIZE {size} INTERNALDATE \
                     \"24-Nov-2026 10:00:00 +0000\")\r\n"
                ),
                "a1 OK FETCH completed\r\n".into(),
            ]
        );
        assert_eq!(f.messages("INBOX")[0].internal_date, DATE);
        // UID FETCH puts UID first.
        assert_eq!(
            f.run(b"a2 UID FETCH 2 FLAGS\r\n"),
            [
                "* 2 FETCH (UID 2 FLAGS ())\r\n",
                "a2 OK FETCH completed\r\n"
            ]
        );
    }

    #[test]
    fn body_sets_seen_and_reports_it_peek_does_not() {
        let mut f = Fixture::selected(2);
        assert_eq!(
            f.run(b"a1 FETCH 2 BODY.PEEK[HEADER.FIELDS (SUBJECT)]\r\n"),
            [
                "* 2 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {22}\r\nSubject: message 2\r\n\r\n)\r\n",
                "a1 OK FETCH completed\r\n"
            ]
        );
        assert_eq!(
            f.run(b"a2 FETCH 1 BODY[]\r\n"),
            [
                format!("* 1 FETCH (BODY[] {} FLAGS (\\Seen))\r\n", literal(&f, 0)),
                "a2 OK FETCH completed\r\n".into()
            ]
        );
        let seen: Vec<bool> = f
            .messages("INBOX")
            .iter()
            .map(|m| m.flags.contains(lifeboat_mailstore::Flags::SEEN))
            .collect();
        assert_eq!(seen, [true, false]);
        // Already seen: no FLAGS unless asked.
        assert_eq!(
            f.run(b"a3 FETCH 1 RFC822\r\n"),
            [
                format!("* 1 FETCH (RFC822 {})\r\n", literal(&f, 0)),
                "a3 OK FETCH completed\r\n".into()
            ]
        );
    }

    #[test]
    fn seen_from_a_fetch_keeps_what_another_session_set_meanwhile() {
        let mut f = Fixture::selected(1);
        let mut other = f.other_session();
        exchange(&mut other, b"b1 SELECT INBOX\r\n");
        f.run(b"a1 STORE 1 +FLAGS.SILENT (\\Flagged $Work)\r\n");
        // The other session's view is older than that change.
        let (fetched, _) = exchange(&mut other, b"b2 FETCH 1 BODY[TEXT]\r\n");
        assert_eq!(fetched.last().unwrap(), "b2 OK FETCH completed\r\n");
        let message = &f.messages("INBOX")[0];
        assert_eq!(message.keywords, ["$Work"]);
        assert_eq!(
            message.flags,
            lifeboat_mailstore::Flags::FLAGGED.union(lifeboat_mailstore::Flags::SEEN)
        );
    }

    #[test]
    fn examine_never_sets_seen() {
        let mut f = Fixture::logged_in(1);
        f.run(b"a1 EXAMINE INBOX\r\n");
        assert_eq!(
            f.run(b"a2 FETCH 1 BODY[TEXT]\r\n"),
            [
                "* 1 FETCH (BODY[TEXT] {8}\r\nbody 1\r\n)\r\n",
                "a2 OK FETCH completed\r\n"
            ]
        );
        assert!(f.messages("INBOX")[0].flags == lifeboat_mailstore::Flags::empty());
    }

    #[test]
    fn sequence_numbers_past_the_end_are_bad_uids_past_the_end_name_nothing() {
        let mut f = Fixture::selected(2);
        assert_eq!(
            f.run(b"a1 FETCH 3 FLAGS\r\n"),
            ["a1 BAD invalid message sequence number\r\n"]
        );
        assert_eq!(
            f.run(b"a2 FETCH 1:3 FLAGS\r\n"),
            ["a2 BAD invalid message sequence number\r\n"]
        );
        assert_eq!(
            f.run(b"a3 UID FETCH 9 FLAGS\r\n"),
            ["a3 OK FETCH completed\r\n"]
        );
        let mut empty = Fixture::logged_in(0);
        empty.run(b"a4 SELECT Archive\r\n");
        assert_eq!(
            empty.run(b"a5 FETCH 1 FLAGS\r\n"),
            ["a5 BAD invalid message sequence number\r\n"]
        );
        assert_eq!(
            empty.run(b"a6 UID FETCH 1:* FLAGS\r\n"),
            ["a6 OK FETCH completed\r\n"]
        );
    }

    #[test]
    fn changedsince_and_modseq() {
        let mut f = Fixture::selected(2);
        let before = f.mailbox("INBOX").highest_modseq;
        f.run(b"a1 STORE 2 +FLAGS.SILENT (\\Answered)\r\n");
        let modseq = f.messages("INBOX")[1].modseq;
        assert!(modseq > before);
        assert_eq!(
            f.run(format!("a2 FETCH 1:* FLAGS (CHANGEDSINCE {before})\r\n").as_bytes()),
            [
                format!("* 2 FETCH (FLAGS (\\Answered) MODSEQ ({modseq}))\r\n"),
                "a2 OK FETCH completed\r\n".into()
            ]
        );
        // Only changes after the modseq given, not at it.
        let first = f.messages("INBOX")[0].modseq;
        assert_eq!(
            f.run(format!("a2 FETCH 1:* FLAGS (CHANGEDSINCE {first})\r\n").as_bytes()),
            [
                format!("* 2 FETCH (FLAGS (\\Answered) MODSEQ ({modseq}))\r\n"),
                "a2 OK FETCH completed\r\n".into()
            ]
        );
        // CHANGEDSINCE turned CONDSTORE on for the session.
        assert_eq!(
            f.run(b"a3 FETCH 1 UID\r\n")[0],
            format!("* 1 FETCH (UID 1 MODSEQ ({first}))\r\n")
        );
        assert_eq!(
            f.run(b"a4 UID FETCH 1:* FLAGS (CHANGEDSINCE 1 VANISHED)\r\n"),
            ["a4 BAD QRESYNC is not enabled\r\n"]
        );
        f.run(b"a5 ENABLE QRESYNC\r\n");
        assert_eq!(
            f.run(b"a6 FETCH 1:* FLAGS (CHANGEDSINCE 1 VANISHED)\r\n"),
            ["a6 BAD VANISHED is for UID FETCH\r\n"]
        );
        assert_eq!(
            f.run(b"a7 UID FETCH 1:* FLAGS (VANISHED)\r\n"),
            ["a7 BAD VANISHED needs CHANGEDSINCE\r\n"]
        );
    }

    #[test]
    fn asking_for_modseq_turns_condstore_on() {
        let mut f = Fixture::selected(1);
        let modseq = f.messages("INBOX")[0].modseq;
        assert_eq!(
            f.run(b"a1 FETCH 1 (MODSEQ)\r\n"),
            [
                format!("* 1 FETCH (MODSEQ ({modseq}))\r\n"),
                "a1 OK FETCH completed\r\n".into()
            ]
        );
        assert_eq!(
            f.run(b"a2 FETCH 1 FLAGS\r\n")[0],
            format!("* 1 FETCH (FLAGS () MODSEQ ({modseq}))\r\n")
        );
    }

    #[test]
    fn a_message_file_that_cannot_be_read_is_a_server_bug() {
        let mut f = Fixture::selected(1);
        let owner = lifeboat_mailstore::Address::parse(USER).unwrap();
        let dir = f.store.folder_dir(&owner, "INBOX");
        for sub in ["cur", "new"] {
            for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
                std::fs::remove_file(entry.unwrap().path()).unwrap();
            }
        }
        assert_eq!(
            f.run(b"a1 FETCH 1 BODY.PEEK[]\r\n"),
            ["a1 NO [SERVERBUG] cannot read a message\r\n"]
        );
        // What the index knows is still served.
        assert_eq!(f.run(b"a2 FETCH 1 UID\r\n")[0], "* 1 FETCH (UID 1)\r\n");
    }

    #[test]
    fn a_message_another_session_expunged_has_empty_data_until_this_one_hears_of_it() {
        let mut f = Fixture::selected(2);
        let mut other = f.other_session();
        exchange(&mut other, b"b1 SELECT INBOX\r\n");
        exchange(&mut other, b"b2 STORE 2 +FLAGS.SILENT (\\Deleted)\r\n");
        exchange(&mut other, b"b3 EXPUNGE\r\n");
        assert_eq!(
            f.run(b"a1 FETCH 2 BODY.PEEK[TEXT]\r\n"),
            [
                "* 2 FETCH (BODY[TEXT] {0}\r\n)\r\n",
                "a1 OK FETCH completed\r\n"
            ]
        );
    }

    #[test]
    fn new_mail_is_reported_but_expunges_wait_for_a_later_command() {
        let mut f = Fixture::selected(2);
        let mut other = f.other_session();
        exchange(&mut other, b"b1 SELECT INBOX\r\n");
        exchange(&mut other, b"b2 STORE 2 +FLAGS.SILENT (\\Deleted)\r\n");
        exchange(&mut other, b"b3 EXPUNGE\r\n");
        f.deliver("INBOX", 3);
        assert_eq!(
            f.run(b"a1 FETCH 2 UID\r\n"),
            [
                "* 2 FETCH (UID 2)\r\n",
                "* 3 EXISTS\r\n",
                "* 1 RECENT\r\n",
                "a1 OK FETCH completed\r\n"
            ]
        );
        assert_eq!(
            f.run(b"a2 NOOP\r\n"),
            ["* 2 EXPUNGE\r\n", "a2 OK NOOP completed\r\n"]
        );
    }

    #[test]
    fn macros_expand() {
        let mut f = Fixture::selected(1);
        let size = f.messages("INBOX")[0].size;
        assert_eq!(
            f.run(b"a1 FETCH 1 FAST\r\n"),
            [
                format!(
                    "* 1 FETCH (FLAGS () INTERNALDATE \"24-Nov-2026 10:00:00 +0000\" \
                     RFC822.SIZE {size})\r\n"
                ),
                "a1 OK FETCH completed\r\n".into()
            ]
        );
    }

    /// A message of about `size` bytes in INBOX; its UID.
    fn deliver_big(f: &Fixture, size: usize) -> u32 {
        let mut content = b"Subject: big\r\n\r\n".to_vec();
        while content.len() < size {
            content.extend_from_slice(&[b'x'; 78]);
            content.extend_from_slice(b"\r\n");
        }
        let owner = Address::parse(USER).unwrap();
        let message = NewMessage::new(owner, "INBOX", content, Class::Journal);
        f.store.deliver(message).unwrap().uid
    }

    #[test]
    fn many_sections_of_one_message_come_in_responses_of_about_a_mib() {
        let mut f = Fixture::logged_in(0);
        deliver_big(&f, 400_000);
        f.run(b"s1 SELECT INBOX\r\n");
        let ranges: Vec<String> = (0..7).map(|i| format!("BODY.PEEK[]<{i}.400000>")).collect();
        let answer = f.run(format!("a1 UID FETCH 1 ({})\r\n", ranges.join(" ")).as_bytes());
        // 400 KB each: three make a MiB, so 3 + 3 + 1, each with the UID.
        assert_eq!(
            answer.len(),
            4,
            "{:?}",
            answer.iter().map(|a| &a[..40]).collect::<Vec<_>>()
        );
        assert!(answer[0].starts_with("* 1 FETCH (UID 1 BODY[]<0> {"));
        assert!(answer[1].starts_with("* 1 FETCH (UID 1 BODY[]<3> {"));
        assert!(answer[2].starts_with("* 1 FETCH (UID 1 BODY[]<6> {"));
        assert_eq!(answer[3], "a1 OK FETCH completed\r\n");
        let sections = answer.iter().map(|a| a.matches("BODY[]<").count());
        assert_eq!(sections.collect::<Vec<_>>(), [3, 3, 1, 0]);
    }

    #[test]
    fn responses_stream_out_and_the_fetch_stops_when_nobody_reads() {
        let mut f = Fixture::selected(3);
        let sent = Arc::new(AtomicUsize::new(0));
        let counted = sent.clone();
        let outbox = Outbox::streaming(move |response| {
            // The server writes it now; here the client reads one and goes away.
            assert!(String::from_utf8_lossy(&response).contains(" FETCH (BODY[] {"));
            match counted.fetch_add(1, Ordering::Relaxed) {
                0 => Ok(()),
                _ => Err(Gone),
            }
        });
        let (_, command) = CommandCodec::default()
            .decode_static(b"a1 FETCH 1:3 BODY.PEEK[]\r\n")
            .unwrap();
        let reply = f.session.handle_with(command, outbox);
        assert_eq!(
            sent.load(Ordering::Relaxed),
            2,
            "stopped at the first refusal"
        );
        let reply = encode_all(&reply.responses);
        assert_eq!(reply, ["a1 NO FETCH cancelled\r\n"]);
        // A cancelled session (shutdown) answers nothing more.
        f.session.cancel().cancel();
        assert_eq!(
            f.run(b"a2 FETCH 1:3 FLAGS\r\n"),
            ["a2 NO FETCH cancelled\r\n"]
        );
        assert_eq!(f.run(b"a3 SEARCH ALL\r\n"), ["a3 NO SEARCH cancelled\r\n"]);
    }

    const PARTS: &str = "Subject: parts\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
        --b\r\nContent-Type: text/plain; charset=utf-8\r\n\
        Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9\r\n\
        --b\r\nContent-Type: application/octet-stream\r\n\
        Content-Transfer-Encoding: base64\r\n\r\nAGFiYwBk\r\n\
        --b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-unknown\r\n\r\n???\r\n\
        --b--\r\n";

    /// INBOX with [`PARTS`] as its one message, selected.
    fn with_parts() -> Fixture {
        let mut f = Fixture::logged_in(0);
        let owner = Address::parse(USER).unwrap();
        let message = NewMessage::new(owner, "INBOX", PARTS.as_bytes().to_vec(), Class::Other);
        f.store.deliver(message).unwrap();
        f.run(b"s1 SELECT INBOX\r\n");
        f
    }

    #[test]
    fn binary_decodes_the_section_and_peek_leaves_it_unseen() {
        let mut f = with_parts();
        assert_eq!(
            f.run(b"a1 FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])\r\n"),
            [
                "* 1 FETCH (BINARY.SIZE[1] 5 BINARY[1] {5}\r\ncaf\u{e9})\r\n",
                "a1 OK FETCH completed\r\n"
            ]
        );
        assert!(f.messages("INBOX")[0].flags == lifeboat_mailstore::Flags::empty());
        // NUL in the decoded data: a literal8. BINARY (not PEEK) sets \Seen.
        assert_eq!(
            f.run(b"a2 FETCH 1 BINARY[2]\r\n"),
            [
                "* 1 FETCH (FLAGS (\\Seen \\Recent) BINARY[2] ~{6}\r\n\0abc\0d)\r\n",
                "a2 OK FETCH completed\r\n"
            ]
        );
        assert_eq!(
            f.messages("INBOX")[0].flags,
            lifeboat_mailstore::Flags::SEEN
        );
        // A part that is not there is empty; BINARY[] is the message as stored.
        assert_eq!(
            f.run(b"a3 FETCH 1 (BINARY.SIZE[9] BINARY.PEEK[9])\r\n")[0],
            "* 1 FETCH (BINARY.SIZE[9] 0 BINARY[9] {0}\r\n)\r\n"
        );
        let whole = f.stored("INBOX", 0);
        assert_eq!(
            f.run(b"a4 FETCH 1 BINARY.SIZE[]\r\n")[0],
            format!("* 1 FETCH (BINARY.SIZE[] {})\r\n", whole.len())
        );
    }

    #[test]
    fn binary_ranges_name_their_origin_and_each_section_is_decoded_once_per_message() {
        let mut f = with_parts();
        // Asked alternately, answered section by section (RFC 3516 §4.3, RFC 9051's
        // `BINARY[1]<0>`), UID first as UID FETCH wants.
        assert_eq!(
            f.run(
                b"a1 UID FETCH 1 (BINARY.PEEK[1]<0.1> BINARY.PEEK[2]<1.2> BINARY.PEEK[1]<3.9>)\r\n"
            ),
            [
                "* 1 FETCH (UID 1 BINARY[1]<0> {1}\r\nc BINARY[1]<3> {2}\r\n\u{e9} \
                 BINARY[2]<1> {2}\r\nab)\r\n",
                "a1 OK FETCH completed\r\n"
            ]
        );
        // Past the end: empty.
        assert_eq!(
            f.run(b"a2 FETCH 1 BINARY.PEEK[2]<100.5>\r\n")[0],
            "* 1 FETCH (BINARY[2]<100> {0}\r\n)\r\n"
        );
    }

    #[test]
    fn an_unknown_transfer_encoding_is_refused_with_unknown_cte() {
        let mut f = with_parts();
        for item in ["BINARY[3]", "BINARY.PEEK[3]<0.1>", "BINARY.SIZE[3]"] {
            assert_eq!(
                f.run(format!("a1 FETCH 1 (FLAGS {item})\r\n").as_bytes()),
                ["a1 NO [UNKNOWN-CTE] cannot decode that section's Content-Transfer-Encoding\r\n"]
            );
        }
        assert!(
            f.messages("INBOX")[0].flags == lifeboat_mailstore::Flags::empty(),
            "refused: not seen"
        );
        // BODY[3] is still there, as stored.
        assert_eq!(
            f.run(b"a2 FETCH 1 BODY.PEEK[3]\r\n")[0],
            "* 1 FETCH (BODY[3] {3}\r\n???)\r\n"
        );
    }
}
