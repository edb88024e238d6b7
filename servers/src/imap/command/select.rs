//! Selecting a mailbox and leaving it: SELECT and EXAMINE (read-only) with CONDSTORE's
//! and QRESYNC's parameters (RFC 7162 §3.1.8, §3.2.5), CLOSE, UNSELECT (RFC 3691), and
//! NOOP/CHECK, which only report what changed meanwhile.

use imap_codec::imap_types::command::SelectParameter;
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Code, Data};
use imap_codec::imap_types::sequence::SequenceSet;
use lifeboat_mailstore::error::Result as StoreResult;
use lifeboat_mailstore::reader::Reader;

use super::expunge::expunge_deleted;
use crate::imap::context::{Context, State};
use crate::imap::fetch::flags_update;
use crate::imap::flags::{mailbox_flags, permanent_flags};
use crate::imap::mailbox::{MailboxView, Selected};
use crate::imap::response::{
    NoCode, Reply, Responses, bad, data, no, nz, nz64, ok, ok_code, untagged_ok,
};
use crate::imap::vanished::{self, SeqMatch, UidRanges, has_asterisk};

/// SELECT, or EXAMINE (`read_only`).
pub fn select(
    cx: &mut Context,
    reader: &Reader,
    tag: &Tag<'static>,
    mailbox: &Mailbox<'static>,
    parameters: &[SelectParameter],
    read_only: bool,
) -> StoreResult<Reply> {
    // Parameters are checked before anything changes (RFC 7162 §3.2.5).
    let resync = match Resync::from_parameters(parameters, cx.qresync) {
        Ok(resync) => resync,
        Err(why) => return Ok(Reply::new(vec![bad(tag, why)])),
    };
    if !parameters.is_empty() {
        cx.condstore = true;
    }
    // RFC 7162 §3.2.11: the responses before it were about the mailbox closed.
    let mut responses = Vec::new();
    if cx.is_selected() {
        responses.push(untagged_ok(Code::Closed, "previous mailbox closed"));
    }
    // A failed SELECT leaves no mailbox selected (RFC 3501 §6.3.1).
    cx.deselect();
    let Some((record, view)) = MailboxView::load(reader, |r| cx.find_mailbox(r, mailbox))? else {
        responses.push(no(tag, Some(NoCode::Nonexistent), "no such mailbox"));
        return Ok(Reply::new(responses));
    };
    let selected = Selected::open(&cx.store, record, read_only, view)?;
    responses.extend(opening(&selected));
    if let Some(resync) = resync
        && resync.uid_validity == selected.record.uidvalidity
    {
        responses.extend(resync.changes(reader, &selected)?);
    }
    let code = if read_only {
        Code::ReadOnly
    } else {
        Code::ReadWrite
    };
    responses.push(ok_code(tag, code, "SELECT completed"));
    cx.state = State::Selected(cx.logged_in_user(), Box::new(selected));
    Ok(Reply::new(responses))
}

/// What a client that was away knows of the mailbox: SELECT's QRESYNC parameter.
struct Resync {
    uid_validity: u32,
    modseq: i64,
    known_uids: Option<SequenceSet>,
    matched: Option<SeqMatch>,
}

impl Resync {
    /// The QRESYNC parameter, if given; CONDSTORE may come with it. Refused: QRESYNC
    /// before `ENABLE QRESYNC` (RFC 7162 §3.2.5), `*` where UIDs or numbers must be
    /// given, a parameter twice.
    fn from_parameters(
        parameters: &[SelectParameter],
        qresync_enabled: bool,
    ) -> Result<Option<Resync>, &'static str> {
        let mut resync = None;
        let mut condstore = false;
        for parameter in parameters {
            match parameter {
                SelectParameter::CondStore if !condstore => condstore = true,
                SelectParameter::QResync { .. } if !qresync_enabled => {
                    return Err("QRESYNC is not enabled");
                }
                SelectParameter::QResync {
                    uid_validity,
                    mod_sequence_value,
                    known_uids,
                    seq_match_data,
                } if resync.is_none() => {
                    let sets = known_uids
                        .iter()
                        .chain(seq_match_data.iter().flat_map(|(s, u)| [s, u]));
                    if sets.into_iter().any(has_asterisk) {
                        return Err("QRESYNC's UIDs and message numbers may not use *");
                    }
                    resync = Some(Resync {
                        uid_validity: uid_validity.get(),
                        modseq: i64::try_from(mod_sequence_value.get()).unwrap_or(i64::MAX),
                        known_uids: known_uids.clone(),
                        matched: seq_match_data
                            .clone()
                            .map(|(seqs, uids)| SeqMatch { seqs, uids }),
                    });
                }
                _ => return Err("a SELECT parameter was given twice"),
            }
        }
        Ok(resync)
    }

    /// What changed since the client's modseq among the UIDs it knows (all up to the
    /// mailbox's UIDNEXT when it named none): `VANISHED (EARLIER)` first, then a FETCH
    /// with UID, FLAGS and MODSEQ per message changed (RFC 7162 §3.2.5.1).
    fn changes(&self, reader: &Reader, selected: &Selected) -> StoreResult<Responses> {
        let (record, view) = (&selected.record, &selected.view);
        let last = record.uidnext.saturating_sub(1);
        let known = match &self.known_uids {
            Some(set) => UidRanges::from_set(set, last),
            None => UidRanges::up_to(last),
        };
        let vanished = vanished::earlier(
            reader,
            record,
            &view.messages,
            &known,
            self.modseq,
            self.matched.as_ref(),
        )?;
        let mut responses: Responses = vanished.into_iter().collect();
        for (index, message) in view.messages.iter().enumerate() {
            if message.modseq > self.modseq && known.contains(message.uid) {
                let recent = view.is_recent(message.uid);
                responses.push(data(Data::Fetch {
                    seq: nz(index as u32 + 1),
                    items: flags_update(message, recent, true, true),
                }));
            }
        }
        Ok(responses)
    }
}

/// The untagged responses RFC 3501 §6.3.1 requires of a SELECT, with HIGHESTMODSEQ
/// (RFC 7162). FLAGS name every keyword in the mailbox; a read-only mailbox permits no
/// flags.
fn opening(selected: &Selected) -> Responses {
    let (record, view, keywords) = (&selected.record, &selected.view, &selected.keywords);
    let permanent = if selected.read_only {
        vec![]
    } else {
        permanent_flags(keywords)
    };
    let mut responses = vec![
        data(Data::Flags(mailbox_flags(keywords))),
        data(Data::Exists(view.exists())),
        data(Data::Recent(view.recent_count())),
        untagged_ok(Code::UidValidity(nz(record.uidvalidity)), "UIDs valid"),
        untagged_ok(Code::UidNext(nz(record.uidnext)), "predicted next UID"),
        untagged_ok(Code::PermanentFlags(permanent), "flags permitted"),
        untagged_ok(
            Code::HighestModSeq(nz64(record.highest_modseq)),
            "highest modseq",
        ),
    ];
    if let Some(first_unseen) = view.first_unseen() {
        responses.push(untagged_ok(Code::Unseen(first_unseen), "first unseen"));
    }
    responses
}

/// CLOSE: RFC 3501 §6.4.2 has it expunge silently (unless read-only), then deselect.
pub fn close(cx: &mut Context, reader: &Reader, tag: &Tag<'static>) -> StoreResult<Reply> {
    expunge_deleted(cx, reader, None)?;
    cx.deselect();
    Ok(Reply::new(vec![ok(tag, "CLOSE completed")]))
}

/// UNSELECT (RFC 3691): CLOSE without the expunge.
pub fn unselect(cx: &mut Context, tag: &Tag<'static>) -> Reply {
    cx.deselect();
    Reply::new(vec![ok(tag, "UNSELECT completed")])
}

/// NOOP and CHECK, in any state: what changed in the selected mailbox, if any.
pub fn noop(cx: &mut Context, reader: &Reader, tag: &Tag<'static>) -> StoreResult<Reply> {
    let mut responses = cx.poll_changes(reader)?;
    responses.push(ok(tag, "NOOP completed"));
    Ok(Reply::new(responses))
}

#[cfg(test)]
mod tests {
    use crate::imap::testing::{Fixture, exchange};

    const FLAGS: &str = "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n";

    #[test]
    fn select_reports_the_mailbox() {
        let mut f = Fixture::logged_in(2);
        let inbox = f.mailbox("INBOX");
        assert_eq!(
            f.run(b"a1 SELECT INBOX\r\n"),
            [
                FLAGS.to_string(),
                "* 2 EXISTS\r\n".into(),
                "* 0 RECENT\r\n".into(),
                format!("* OK [UIDVALIDITY {}] UIDs valid\r\n", inbox.uidvalidity),
                "* OK [UIDNEXT 3] predicted next UID\r\n".into(),
                "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] \
                 flags permitted\r\n"
                    .into(),
                format!(
                    "* OK [HIGHESTMODSEQ {}] highest modseq\r\n",
                    inbox.highest_modseq
                ),
                "* OK [UNSEEN 1] first unseen\r\n".into(),
                "a1 OK [READ-WRITE] SELECT completed\r\n".into(),
            ]
        );
        assert!(f.session.is_selected());
    }

    #[test]
    fn flags_and_permanentflags_name_every_keyword_in_the_mailbox() {
        let mut f = Fixture::logged_in(3);
        let mut other = f.other_session();
        exchange(&mut other, b"b1 SELECT INBOX\r\n");
        exchange(&mut other, b"b2 STORE 1 +FLAGS.SILENT ($Work Junk)\r\n");
        exchange(&mut other, b"b3 STORE 3 +FLAGS.SILENT ($Label1 $work)\r\n");
        let select = f.run(b"a1 SELECT INBOX\r\n");
        let keywords = "$Work Junk $Label1";
        assert_eq!(
            select[0],
            format!("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft {keywords})\r\n")
        );
        assert_eq!(
            select[5],
            format!(
                "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \
                 {keywords} \\*)] flags permitted\r\n"
            )
        );
        let examine = f.run(b"a2 EXAMINE INBOX\r\n");
        assert_eq!(examine[0], "* OK [CLOSED] previous mailbox closed\r\n");
        assert!(
            examine[1].ends_with(&format!("{keywords})\r\n")),
            "{examine:?}"
        );
        assert_eq!(examine[6], "* OK [PERMANENTFLAGS ()] flags permitted\r\n");
    }

    #[test]
    fn a_keyword_new_to_the_mailbox_is_announced_before_it_is_used() {
        let mut f = Fixture::selected(2);
        let mut other = f.other_session();
        exchange(&mut other, b"b1 SELECT INBOX\r\n");
        let system = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";
        let (stored, _) = exchange(&mut other, b"b2 STORE 1 +FLAGS ($Later)\r\n");
        assert_eq!(
            stored,
            [
                format!("* FLAGS ({system} $Later)\r\n"),
                format!("* OK [PERMANENTFLAGS ({system} $Later \\*)] flags permitted\r\n"),
                "* 1 FETCH (FLAGS ($Later))\r\n".into(),
                "b2 OK STORE completed\r\n".into(),
            ]
        );
        assert_eq!(
            f.run(b"a1 NOOP\r\n"),
            [
                format!("* FLAGS ({system} $Later)\r\n"),
                format!("* OK [PERMANENTFLAGS ({system} $Later \\*)] flags permitted\r\n"),
                "* 1 FETCH (UID 1 FLAGS ($Later))\r\n".into(),
                "a1 OK NOOP completed\r\n".into(),
            ]
        );
        // Known already (in any case): no new FLAGS.
        let (stored, _) = exchange(&mut other, b"b3 STORE 2 +FLAGS ($later)\r\n");
        assert_eq!(
            stored,
            [
                "* 2 FETCH (FLAGS ($later))\r\n",
                "b3 OK STORE completed\r\n"
            ]
        );
    }

    #[test]
    fn new_mail_is_recent_for_the_first_read_write_session_to_see_it() {
        let mut f = Fixture::logged_in(0);
        f.deliver("INBOX", 1);
        f.deliver("INBOX", 2);
        // EXAMINE shows what is recent and takes nothing: RFC 3501 §2.3.2 ties taking
        // it to a read-write session.
        let examine = f.run(b"a1 EXAMINE INBOX\r\n");
        assert_eq!(examine[2], "* 2 RECENT\r\n");
        let mut other = f.other_session();
        let (select, _) = exchange(&mut other, b"b1 SELECT INBOX\r\n");
        assert_eq!(select[2], "* 2 RECENT\r\n");
        let (fetched, _) = exchange(&mut other, b"b2 FETCH 1:2 FLAGS\r\n");
        assert_eq!(
            fetched,
            [
                "* 1 FETCH (FLAGS (\\Recent))\r\n",
                "* 2 FETCH (FLAGS (\\Recent))\r\n",
                "b2 OK FETCH completed\r\n"
            ]
        );
        let select = f.run(b"a2 SELECT INBOX\r\n");
        assert_eq!(select[3], "* 0 RECENT\r\n");
        assert_eq!(
            f.run(b"a3 FETCH 1 FLAGS\r\n")[0],
            "* 1 FETCH (FLAGS ())\r\n"
        );
        // New mail is recent for the session that hears of it first.
        f.deliver("INBOX", 3);
        assert_eq!(
            f.run(b"a4 NOOP\r\n"),
            [
                "* 3 EXISTS\r\n",
                "* 1 RECENT\r\n",
                "a4 OK NOOP completed\r\n"
            ]
        );
        assert_eq!(
            f.run(b"a5 FETCH 3 FLAGS\r\n")[0],
            "* 3 FETCH (FLAGS (\\Recent))\r\n"
        );
        let (noop, _) = exchange(&mut other, b"b3 NOOP\r\n");
        assert_eq!(noop, ["* 3 EXISTS\r\n", "b3 OK NOOP completed\r\n"]);
        let (fetched, _) = exchange(&mut other, b"b4 FETCH 2:3 FLAGS\r\n");
        assert_eq!(
            fetched[..2],
            [
                "* 2 FETCH (FLAGS (\\Recent))\r\n",
                "* 3 FETCH (FLAGS ())\r\n"
            ]
        );
    }

    #[test]
    fn examine_is_read_only_and_an_empty_mailbox_has_no_unseen() {
        let mut f = Fixture::logged_in(0);
        let archive = f.mailbox("Archive");
        assert_eq!(
            f.run(b"a1 EXAMINE Archive\r\n"),
            [
                FLAGS.to_string(),
                "* 0 EXISTS\r\n".into(),
                "* 0 RECENT\r\n".into(),
                format!("* OK [UIDVALIDITY {}] UIDs valid\r\n", archive.uidvalidity),
                "* OK [UIDNEXT 1] predicted next UID\r\n".into(),
                "* OK [PERMANENTFLAGS ()] flags permitted\r\n".into(),
                "* OK [HIGHESTMODSEQ 1] highest modseq\r\n".into(),
                "a1 OK [READ-ONLY] SELECT completed\r\n".into(),
            ]
        );
    }

    #[test]
    fn a_failed_select_leaves_no_mailbox_selected() {
        let mut f = Fixture::selected(1);
        assert_eq!(
            f.run(b"a1 SELECT Nowhere\r\n"),
            [
                "* OK [CLOSED] previous mailbox closed\r\n",
                "a1 NO [NONEXISTENT] no such mailbox\r\n"
            ]
        );
        assert!(!f.session.is_selected());
        assert_eq!(
            f.run(b"a2 FETCH 1 FLAGS\r\n"),
            ["a2 BAD select a mailbox first\r\n"]
        );
    }

    #[test]
    fn the_condstore_parameter_turns_condstore_on_and_others_are_refused() {
        let mut f = Fixture::logged_in(1);
        assert_eq!(
            f.run(b"a1 SELECT INBOX (QRESYNC (1 1))\r\n"),
            ["a1 BAD QRESYNC is not enabled\r\n"]
        );
        assert!(!f.session.is_selected());
        let select = f.run(b"a2 SELECT INBOX (CONDSTORE)\r\n");
        assert_eq!(
            select.last().unwrap(),
            "a2 OK [READ-WRITE] SELECT completed\r\n"
        );
        let modseq = f.messages("INBOX")[0].modseq;
        assert_eq!(
            f.run(b"a3 FETCH 1 UID\r\n")[0],
            format!("* 1 FETCH (UID 1 MODSEQ ({modseq}))\r\n")
        );
    }

    #[test]
    fn close_expunges_silently_unless_read_only() {
        let mut f = Fixture::selected(2);
        f.run(b"a1 STORE 1 +FLAGS.SILENT (\\Deleted)\r\n");
        f.run(b"a2 EXAMINE INBOX\r\n");
        assert_eq!(f.run(b"a3 CLOSE\r\n"), ["a3 OK CLOSE completed\r\n"]);
        assert_eq!(f.messages("INBOX").len(), 2);
        assert!(!f.session.is_selected());

        f.run(b"a4 SELECT INBOX\r\n");
        assert_eq!(f.run(b"a5 CLOSE\r\n"), ["a5 OK CLOSE completed\r\n"]);
        let left: Vec<u32> = f.messages("INBOX").iter().map(|m| m.uid).collect();
        assert_eq!(left, [2]);
        assert_eq!(
            f.run(b"a6 CLOSE\r\n"),
            ["a6 BAD select a mailbox first\r\n"]
        );
    }

    #[test]
    fn unselect_leaves_deleted_messages() {
        let mut f = Fixture::selected(2);
        f.run(b"a1 STORE 1 +FLAGS.SILENT (\\Deleted)\r\n");
        assert_eq!(f.run(b"a2 UNSELECT\r\n"), ["a2 OK UNSELECT completed\r\n"]);
        assert_eq!(f.messages("INBOX").len(), 2);
        assert!(!f.session.is_selected() && f.session.is_authenticated());
    }

    #[test]
    fn noop_reports_new_mail_flag_changes_and_expunges_by_others() {
        let mut f = Fixture::selected(2);
        assert_eq!(f.run(b"a1 NOOP\r\n"), ["a1 OK NOOP completed\r\n"]);
        f.deliver("INBOX", 3);
        assert_eq!(
            f.run(b"a2 NOOP\r\n"),
            [
                "* 3 EXISTS\r\n",
                "* 1 RECENT\r\n",
                "a2 OK NOOP completed\r\n"
            ]
        );
        let mut other = f.other_session();
        exchange(&mut other, b"b1 SELECT INBOX\r\n");
        exchange(&mut other, b"b2 STORE 1 +FLAGS.SILENT (\\Flagged)\r\n");
        assert_eq!(
            f.run(b"a3 CHECK\r\n"),
            [
                "* 1 FETCH (UID 1 FLAGS (\\Flagged))\r\n",
                "a3 OK NOOP completed\r\n"
            ]
        );
        exchange(&mut other, b"b3 STORE 2 +FLAGS.SILENT (\\Deleted)\r\n");
        exchange(&mut other, b"b4 EXPUNGE\r\n");
        assert_eq!(
            f.run(b"a4 NOOP\r\n"),
            ["* 2 EXPUNGE\r\n", "a4 OK NOOP completed\r\n"]
        );
    }

    #[test]
    fn a_selected_mailbox_deleted_by_another_session_says_bye() {
        let mut f = Fixture::logged_in(0);
        f.run(b"a1 CREATE Projects\r\n");
        f.run(b"a2 SELECT Projects\r\n");
        let mut other = f.other_session();
        let (deleted, _) = exchange(&mut other, b"b1 DELETE Projects\r\n");
        assert_eq!(deleted, ["b1 OK DELETE completed\r\n"]);
        assert_eq!(
            f.run(b"a3 NOOP\r\n"),
            [
                "* BYE the selected mailbox was deleted\r\n",
                "a3 OK NOOP completed\r\n"
            ]
        );
    }

    #[test]
    fn selecting_another_mailbox_replaces_the_selection() {
        let mut f = Fixture::selected(2);
        f.deliver("Archive", 9);
        let examined = f.run(b"a1 EXAMINE Archive\r\n");
        // RFC 7162 §3.2.11: what came before was about the mailbox closed.
        assert_eq!(examined[0], "* OK [CLOSED] previous mailbox closed\r\n");
        assert_eq!(examined[2], "* 1 EXISTS\r\n");
        assert_eq!(
            examined.last().unwrap(),
            "a1 OK [READ-ONLY] SELECT completed\r\n"
        );
        assert_eq!(
            f.run(b"a2 STORE 1 +FLAGS (\\Seen)\r\n"),
            ["a2 NO [READ-ONLY] mailbox is read-only\r\n"]
        );
        assert_eq!(
            f.run(b"a3 UID FETCH 1:* UID\r\n"),
            ["* 1 FETCH (UID 1)\r\n", "a3 OK FETCH completed\r\n"]
        );
    }
}
