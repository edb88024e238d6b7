//! Selecting a mailbox and leaving it: SELECT and EXAMINE (read-only), CLOSE, UNSELECT
//! (RFC 3691), and NOOP/CHECK, which only report what changed meanwhile.

use imap_codec::imap_types::command::SelectParameter;
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::flag::FlagPerm;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Code, Data};
use lifeboat_mailstore::error::Result as StoreResult;
use lifeboat_mailstore::reader::{MailboxRecord, Reader};

use super::expunge::expunge_deleted;
use crate::imap::context::{Context, State};
use crate::imap::flags::SYSTEM_FLAGS;
use crate::imap::mailbox::{MailboxView, Selected};
use crate::imap::response::{
    NoCode, Reply, Responses, bad, data, no, nz, nz64, ok, ok_code, untagged_ok,
};

/// SELECT, or EXAMINE (`read_only`). CONDSTORE is the only parameter (RFC 7162 §3.1.8).
pub fn select(
    cx: &mut Context,
    reader: &Reader,
    tag: &Tag<'static>,
    mailbox: &Mailbox<'static>,
    parameters: &[SelectParameter],
    read_only: bool,
) -> StoreResult<Reply> {
    if !parameters.is_empty() && !enable_condstore(cx, parameters) {
        return Ok(Reply::new(vec![bad(
            tag,
            "only the CONDSTORE parameter is supported",
        )]));
    }
    // A failed SELECT leaves no mailbox selected (RFC 3501 §6.3.1).
    cx.deselect();
    let Some(record) = cx.find_mailbox(reader, mailbox)? else {
        return Ok(Reply::new(vec![no(
            tag,
            Some(NoCode::Nonexistent),
            "no such mailbox",
        )]));
    };
    let view = MailboxView::load(reader, &record)?;
    let mut responses = opening(&record, &view, read_only);
    let code = if read_only {
        Code::ReadOnly
    } else {
        Code::ReadWrite
    };
    responses.push(ok_code(tag, code, "SELECT completed"));
    cx.state = State::Selected(
        cx.logged_in_user(),
        Box::new(Selected {
            record,
            read_only,
            view,
        }),
    );
    Ok(Reply::new(responses))
}

/// SELECT/EXAMINE parameters: all CONDSTORE turns CONDSTORE on; anything else is not
/// supported (and changes nothing).
fn enable_condstore(cx: &mut Context, parameters: &[SelectParameter]) -> bool {
    let all_condstore = parameters
        .iter()
        .all(|p| matches!(p, SelectParameter::CondStore));
    if all_condstore {
        cx.condstore = true;
    }
    all_condstore
}

/// The untagged responses RFC 3501 §6.3.1 requires of a SELECT, with HIGHESTMODSEQ
/// (RFC 7162). A read-only mailbox permits no flags.
fn opening(record: &MailboxRecord, view: &MailboxView, read_only: bool) -> Responses {
    let permanent = if read_only {
        vec![]
    } else {
        let mut perm: Vec<FlagPerm> = SYSTEM_FLAGS.iter().cloned().map(FlagPerm::Flag).collect();
        perm.push(FlagPerm::Asterisk);
        perm
    };
    let mut responses = vec![
        data(Data::Flags(SYSTEM_FLAGS.to_vec())),
        data(Data::Exists(view.exists())),
        data(Data::Recent(0)),
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
