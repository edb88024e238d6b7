//! STORE and UID STORE: flags and keywords, with `.SILENT` and CONDSTORE's
//! UNCHANGEDSINCE (RFC 7162 §3.1.3).

use imap_codec::imap_types::command::StoreModifier;
use imap_codec::imap_types::core::{Tag, Vec1};
use imap_codec::imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_codec::imap_types::response::{Code, Data, Response};
use imap_codec::imap_types::sequence::{Sequence, SequenceSet};
use lifeboat_mailstore::error::Result as StoreResult;
use lifeboat_mailstore::flags::FlagChange;
use lifeboat_mailstore::maildir::Flags;
use lifeboat_mailstore::reader::{MessageRecord, Reader};

use crate::imap::context::Context;
use crate::imap::fetch::flags_update;
use crate::imap::flags::split_flags;
use crate::imap::mailbox::Selected;
use crate::imap::response::{NoCode, Reply, bad, data, no, nz, ok, ok_code};

/// A STORE's change.
pub struct FlagUpdate {
    pub kind: StoreType,
    /// `.SILENT`: no untagged FETCH for the messages changed.
    pub silent: bool,
    pub flags: Vec<Flag<'static>>,
    /// CONDSTORE's UNCHANGEDSINCE.
    pub unchanged_since: Option<u64>,
}

impl FlagUpdate {
    pub fn new(
        kind: StoreType,
        response: StoreResponse,
        flags: Vec<Flag<'static>>,
        modifiers: &[StoreModifier],
    ) -> FlagUpdate {
        FlagUpdate {
            kind,
            silent: matches!(response, StoreResponse::Silent),
            flags,
            unchanged_since: modifiers
                .iter()
                .map(|StoreModifier::UnchangedSince(value)| *value)
                .next(),
        }
    }
}

pub fn store(
    cx: &mut Context,
    reader: &Reader,
    tag: &Tag<'static>,
    set: &SequenceSet,
    uid: bool,
    update: FlagUpdate,
) -> StoreResult<Reply> {
    // UNCHANGEDSINCE turns CONDSTORE on, even for a STORE that is refused (RFC 7162 §3.1).
    if update.unchanged_since.is_some() {
        cx.condstore = true;
    }
    let condstore = cx.condstore;
    let (store, user, selected) = cx.selected();
    if selected.read_only {
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
    // \Recent belongs to the server; other unknown system flags cannot be kept.
    if update.flags.iter().any(|f| matches!(f, Flag::Extension(_))) {
        return Ok(Reply::new(vec![bad(
            tag,
            "that system flag cannot be stored",
        )]));
    }
    let (positions, modified) = unchanged(selected, set, uid, update.unchanged_since);
    let (system, keywords) = split_flags(&update.flags);
    let changes: Vec<FlagChange> = positions
        .iter()
        .filter_map(|&i| change(&selected.view.messages[i], update.kind, system, &keywords))
        .collect();
    if !changes.is_empty() {
        let (name, id) = (&selected.record.name, selected.record.id);
        store.set_flags(&user.address, name, id, changes)?;
    }
    let ours: Vec<u32> = positions
        .iter()
        .filter_map(|&i| selected.view.messages.get(i).map(|m| m.uid))
        .collect();
    // Others' changes (no EXPUNGE during STORE), then ours unless .SILENT.
    let reported = if update.silent { &[][..] } else { &ours[..] };
    let mut responses = selected
        .refresh(reader, false, condstore, reported)?
        .unwrap_or_default();
    if !update.silent {
        for (index, message) in selected.view.messages.iter().enumerate() {
            if ours.contains(&message.uid) {
                responses.push(data(Data::Fetch {
                    seq: nz(index as u32 + 1),
                    items: flags_update(message, uid, condstore),
                }));
            }
        }
    }
    responses.push(done(tag, &modified));
    Ok(Reply::new(responses))
}

/// The positions of the messages to change and, with UNCHANGEDSINCE, the numbers (UIDs
/// for UID STORE) of those changed since, which RFC 7162 §3.1.3 leaves alone.
fn unchanged(
    selected: &Selected,
    set: &SequenceSet,
    uid: bool,
    unchanged_since: Option<u64>,
) -> (Vec<usize>, Vec<u32>) {
    let mut positions = selected.view.resolve(set, uid);
    let mut modified = Vec::new();
    if let Some(since) = unchanged_since {
        positions.retain(|&i| {
            let message = &selected.view.messages[i];
            let untouched = message.modseq <= since as i64;
            if !untouched {
                modified.push(if uid { message.uid } else { i as u32 + 1 });
            }
            untouched
        });
    }
    (positions, modified)
}

/// What the STORE does to one message; `None` when its flags stay as they are.
/// Keywords compare without case; an added keyword keeps the spelling it had.
fn change(
    message: &MessageRecord,
    kind: StoreType,
    system: Flags,
    keywords: &[String],
) -> Option<FlagChange> {
    let (new_flags, new_keywords) = match kind {
        StoreType::Replace => (system, keywords.to_vec()),
        StoreType::Add => {
            let mut all = message.keywords.clone();
            for k in keywords {
                if !all.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                    all.push(k.clone());
                }
            }
            (message.flags.union(system), all)
        }
        StoreType::Remove => (
            Flags::from_bits(message.flags.bits() & !system.bits()),
            message
                .keywords
                .iter()
                .filter(|x| !keywords.iter().any(|k| k.eq_ignore_ascii_case(x)))
                .cloned()
                .collect(),
        ),
    };
    let unchanged = new_flags == message.flags && new_keywords == message.keywords;
    (!unchanged).then(|| FlagChange {
        row: message.row,
        basename: message.basename.clone(),
        old_flags: message.flags,
        flags: new_flags,
        keywords: new_keywords,
    })
}

/// The tagged OK; with MODIFIED when UNCHANGEDSINCE left messages alone.
fn done(tag: &Tag<'static>, modified: &[u32]) -> Response<'static> {
    if modified.is_empty() {
        return ok(tag, "STORE completed");
    }
    let numbers: Vec<Sequence> = modified.iter().map(|&n| Sequence::from(nz(n))).collect();
    let set = SequenceSet(Vec1::try_from(numbers).expect("not empty"));
    ok_code(
        tag,
        Code::Modified(set),
        "conditional STORE failed for some messages",
    )
}

#[cfg(test)]
mod tests {
    use crate::imap::testing::{Fixture, exchange};

    #[test]
    fn add_remove_and_replace_flags_and_keywords() {
        let mut f = Fixture::selected(2);
        assert_eq!(
            f.run(b"a1 STORE 1 +FLAGS (\\Seen)\r\n"),
            [
                "* 1 FETCH (FLAGS (\\Seen))\r\n",
                "a1 OK STORE completed\r\n"
            ]
        );
        assert_eq!(
            f.run(b"a2 STORE 1 FLAGS ($Work \\Draft)\r\n"),
            [
                "* 1 FETCH (FLAGS (\\Draft $Work))\r\n",
                "a2 OK STORE completed\r\n"
            ]
        );
        // Keywords compare without case.
        assert_eq!(
            f.run(b"a3 STORE 1 -FLAGS ($work)\r\n"),
            [
                "* 1 FETCH (FLAGS (\\Draft))\r\n",
                "a3 OK STORE completed\r\n"
            ]
        );
        assert_eq!(
            f.run(b"a4 UID STORE 2 +FLAGS (\\Answered $Later)\r\n"),
            [
                "* 2 FETCH (UID 2 FLAGS (\\Answered $Later))\r\n",
                "a4 OK STORE completed\r\n"
            ]
        );
        let second = &f.messages("INBOX")[1];
        assert_eq!(second.keywords, ["$Later"]);
        assert!(second.flags.contains(lifeboat_mailstore::Flags::ANSWERED));
    }

    #[test]
    fn silent_stores_report_their_change_as_news() {
        let mut f = Fixture::selected(1);
        // Known defect, kept as it is: RFC 3501 §6.4.6 says .SILENT sends no untagged
        // FETCH, but the session's own change comes back as news of the mailbox.
        assert_eq!(
            f.run(b"a1 STORE 1 +FLAGS.SILENT (\\Flagged)\r\n"),
            [
                "* 1 FETCH (UID 1 FLAGS (\\Flagged))\r\n",
                "a1 OK STORE completed\r\n"
            ]
        );
        assert!(
            f.messages("INBOX")[0]
                .flags
                .contains(lifeboat_mailstore::Flags::FLAGGED)
        );
    }

    #[test]
    fn others_changes_come_first() {
        let mut f = Fixture::selected(2);
        let mut other = f.other_session();
        exchange(&mut other, b"b1 SELECT INBOX\r\n");
        exchange(&mut other, b"b2 STORE 2 +FLAGS.SILENT (\\Flagged)\r\n");
        assert_eq!(
            f.run(b"a1 STORE 1 +FLAGS (\\Seen)\r\n"),
            [
                "* 2 FETCH (UID 2 FLAGS (\\Flagged))\r\n",
                "* 1 FETCH (FLAGS (\\Seen))\r\n",
                "a1 OK STORE completed\r\n"
            ]
        );
    }

    #[test]
    fn refusals() {
        let mut f = Fixture::selected(2);
        assert_eq!(
            f.run(b"a1 STORE 3 +FLAGS (\\Seen)\r\n"),
            ["a1 BAD invalid message sequence number\r\n"]
        );
        assert_eq!(
            f.run(b"a2 STORE 1 +FLAGS (\\Recent)\r\n"),
            ["a2 BAD that system flag cannot be stored\r\n"]
        );
        f.run(b"a3 EXAMINE INBOX\r\n");
        assert_eq!(
            f.run(b"a4 STORE 1 +FLAGS (\\Seen)\r\n"),
            ["a4 NO [READ-ONLY] mailbox is read-only\r\n"]
        );
        assert!(
            f.messages("INBOX")
                .iter()
                .all(|m| m.flags == lifeboat_mailstore::Flags::empty())
        );
    }

    #[test]
    fn unchangedsince_leaves_newer_messages_alone() {
        let mut f = Fixture::selected(2);
        let since = f.mailbox("INBOX").highest_modseq;
        f.run(b"a1 STORE 2 +FLAGS.SILENT (\\Answered)\r\n");
        let stored =
            f.run(format!("a2 STORE 1:2 (UNCHANGEDSINCE {since}) +FLAGS (\\Seen)\r\n").as_bytes());
        let modseq = f.messages("INBOX")[0].modseq;
        assert_eq!(
            stored,
            [
                format!("* 1 FETCH (FLAGS (\\Seen) MODSEQ ({modseq}))\r\n"),
                "a2 OK [MODIFIED 2] conditional STORE failed for some messages\r\n".into()
            ]
        );
        assert!(
            !f.messages("INBOX")[1]
                .flags
                .contains(lifeboat_mailstore::Flags::SEEN)
        );
    }

    #[test]
    fn unchangedsince_turns_condstore_on_even_when_refused() {
        let mut f = Fixture::logged_in(1);
        f.run(b"a1 EXAMINE INBOX\r\n");
        assert_eq!(
            f.run(b"a2 STORE 1 (UNCHANGEDSINCE 1) +FLAGS (\\Seen)\r\n"),
            ["a2 NO [READ-ONLY] mailbox is read-only\r\n"]
        );
        let modseq = f.messages("INBOX")[0].modseq;
        assert_eq!(
            f.run(b"a3 FETCH 1 UID\r\n")[0],
            format!("* 1 FETCH (UID 1 MODSEQ ({modseq}))\r\n")
        );
    }
}
