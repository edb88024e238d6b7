//! STORE and UID STORE: flags and keywords, with `.SILENT` and CONDSTORE's
//! UNCHANGEDSINCE (RFC 7162 §3.1.3).

use imap_codec::imap_types::command::StoreModifier;
use imap_codec::imap_types::core::{Tag, Vec1};
use imap_codec::imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_codec::imap_types::response::{Code, Data, Response};
use imap_codec::imap_types::sequence::{Sequence, SequenceSet};
use lifeboat_mailstore::error::Result as StoreResult;
use lifeboat_mailstore::flags::{FlagEdit, FlagOp, FlagOutcome};
use lifeboat_mailstore::reader::Reader;

use crate::imap::context::Context;
use crate::imap::fetch::flags_update;
use crate::imap::flags::split_flags;
use crate::imap::mailbox::MessageSet;
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
    set: &MessageSet,
    uid: bool,
    update: FlagUpdate,
) -> StoreResult<Reply> {
    // UNCHANGEDSINCE turns CONDSTORE on, even for a STORE that is refused (RFC 7162 §3.1).
    if update.unchanged_since.is_some() {
        cx.condstore = true;
    }
    let enabled = cx.enabled();
    let condstore = enabled.condstore;
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
    let positions = selected.view.resolve(set, uid);
    let rows = positions
        .iter()
        .map(|&i| selected.view.messages[i].row)
        .collect();
    // The edit applies to each message as the index has it when it commits, not as
    // this session last saw it: another session's change meanwhile stays.
    let (name, id) = (&selected.record.name, selected.record.id);
    let outcomes = store.edit_flags(&user.address, name, id, rows, update.edit())?;
    let (ours, modified) = sort_outcomes(selected, &positions, &outcomes, uid);
    // Others' changes (no EXPUNGE during STORE), then ours unless .SILENT.
    let reported = if update.silent { &[][..] } else { &ours[..] };
    let mut responses = selected
        .refresh(store, reader, false, enabled, reported)?
        .unwrap_or_default();
    if !update.silent {
        for (index, message) in selected.view.messages.iter().enumerate() {
            if ours.contains(&message.uid) {
                responses.push(data(Data::Fetch {
                    seq: nz(index as u32 + 1),
                    items: flags_update(
                        message,
                        selected.view.is_recent(message.uid),
                        uid,
                        condstore,
                    ),
                }));
            }
        }
    }
    responses.extend(selected.withheld_expunges(enabled));
    responses.push(done(tag, &modified));
    Ok(Reply::new(responses))
}

impl FlagUpdate {
    /// The store's edit: system flags and keywords apart, as `+FLAGS`, `-FLAGS` or
    /// `FLAGS` says.
    fn edit(&self) -> FlagEdit {
        let (system, keywords) = split_flags(&self.flags);
        let op = match self.kind {
            StoreType::Add => FlagOp::Add,
            StoreType::Remove => FlagOp::Remove,
            StoreType::Replace => FlagOp::Replace,
        };
        let mut edit = FlagEdit::new(op, system, keywords);
        edit.unchanged_since = self
            .unchanged_since
            .map(|since| i64::try_from(since).unwrap_or(i64::MAX));
        edit
    }
}

/// The UIDs of the messages the STORE applied to (changed or already as asked), and the
/// numbers (UIDs for UID STORE) of those UNCHANGEDSINCE left alone (RFC 7162 §3.1.3).
/// A message expunged meanwhile is neither (RFC 2180 §4.2.1 lets the STORE succeed).
fn sort_outcomes(
    selected: &Selected,
    positions: &[usize],
    outcomes: &[(i64, FlagOutcome)],
    uid: bool,
) -> (Vec<u32>, Vec<u32>) {
    let mut ours = Vec::new();
    let mut modified = Vec::new();
    for (&i, (_, outcome)) in positions.iter().zip(outcomes) {
        let message = &selected.view.messages[i];
        match outcome {
            FlagOutcome::Changed(_) | FlagOutcome::Unchanged => ours.push(message.uid),
            FlagOutcome::Modified => modified.push(if uid { message.uid } else { i as u32 + 1 }),
            FlagOutcome::Gone => {}
        }
    }
    (ours, modified)
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
        // A keyword new to the mailbox is announced first (see select.rs).
        let system = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";
        assert_eq!(
            f.run(b"a2 STORE 1 FLAGS ($Work \\Draft)\r\n"),
            [
                format!("* FLAGS ({system} $Work)\r\n"),
                format!("* OK [PERMANENTFLAGS ({system} $Work \\*)] flags permitted\r\n"),
                "* 1 FETCH (FLAGS (\\Draft $Work))\r\n".into(),
                "a2 OK STORE completed\r\n".into()
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
                format!("* FLAGS ({system} $Work $Later)\r\n"),
                format!("* OK [PERMANENTFLAGS ({system} $Work $Later \\*)] flags permitted\r\n"),
                "* 2 FETCH (UID 2 FLAGS (\\Answered $Later))\r\n".into(),
                "a4 OK STORE completed\r\n".into()
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
    fn a_session_that_has_not_heard_of_a_rename_still_changes_the_flags() {
        let mut f = Fixture::selected(1);
        let mut other = f.other_session();
        exchange(&mut other, b"b1 SELECT INBOX\r\n");
        // The file gets a new name (\Seen is in it); the other session has not heard.
        f.run(b"a1 STORE 1 +FLAGS.SILENT (\\Seen)\r\n");
        let (stored, _) = exchange(&mut other, b"b2 STORE 1 +FLAGS (\\Flagged)\r\n");
        assert_eq!(
            stored,
            [
                "* 1 FETCH (FLAGS (\\Flagged \\Seen))\r\n",
                "b2 OK STORE completed\r\n"
            ]
        );
        let (stored, _) = exchange(&mut other, b"b3 UID STORE 1 -FLAGS (\\Seen)\r\n");
        assert_eq!(
            stored,
            [
                "* 1 FETCH (UID 1 FLAGS (\\Flagged))\r\n",
                "b3 OK STORE completed\r\n"
            ]
        );
        assert_eq!(
            f.messages("INBOX")[0].flags,
            lifeboat_mailstore::Flags::FLAGGED
        );
        let body = f.run(b"a2 FETCH 1 BODY.PEEK[TEXT]\r\n");
        assert_eq!(body[0], "* 1 FETCH (BODY[TEXT] {8}\r\nbody 1\r\n)\r\n");
    }

    #[test]
    fn keywords_two_sessions_add_are_both_kept() {
        let mut f = Fixture::selected(1);
        let mut other = f.other_session();
        exchange(&mut other, b"b1 SELECT INBOX\r\n");
        f.run(b"a1 STORE 1 +FLAGS.SILENT ($Work)\r\n");
        // The other session's view still has no keyword: its change adds to the
        // message as it is now, not to what that session last saw.
        exchange(&mut other, b"b2 STORE 1 +FLAGS.SILENT ($Later)\r\n");
        assert_eq!(f.messages("INBOX")[0].keywords, ["$Work", "$Later"]);
        exchange(&mut other, b"b3 STORE 1 -FLAGS.SILENT ($Work)\r\n");
        f.run(b"a2 STORE 1 +FLAGS.SILENT (\\Answered)\r\n");
        let message = &f.messages("INBOX")[0];
        assert_eq!(message.keywords, ["$Later"]);
        assert_eq!(message.flags, lifeboat_mailstore::Flags::ANSWERED);
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
