//! Commands on the user's mailboxes as a whole, from the authenticated state: LIST and
//! LSUB, STATUS, CREATE, DELETE, RENAME, SUBSCRIBE and UNSUBSCRIBE.
//!
//! The store refuses what it cannot do with a typed [`MailboxError`]; here each variant
//! becomes its RFC 5530 response code, with the store's words as the text.

use std::borrow::Cow;
use std::collections::HashSet;

use imap_codec::imap_types::core::{Atom, Tag};
use imap_codec::imap_types::flag::FlagNameAttribute;
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::response::Data;
use imap_codec::imap_types::status::{StatusDataItem, StatusDataItemName};
use lifeboat_mailstore::Error;
use lifeboat_mailstore::error::{MailboxError, Result as StoreResult};
use lifeboat_mailstore::reader::{MailboxRecord, Reader};

use crate::imap::context::Context;
use crate::imap::mailbox::MailboxView;
use crate::imap::names::{
    DELIMITER, delimiter, mailbox_name, to_mailbox, wildcard_match, wire_name,
};
use crate::imap::response::{NoCode, Rejection, Reply, data, no, nz, ok};

/// LIST, or LSUB (only subscribed mailboxes), of the mailboxes whose wire names match
/// the reference and pattern joined.
pub fn list(
    cx: &mut Context,
    reader: &Reader,
    tag: &Tag<'static>,
    reference: &Mailbox<'_>,
    pattern: &ListMailbox<'_>,
    lsub: bool,
) -> StoreResult<Reply> {
    let pattern = match pattern {
        ListMailbox::Token(token) => String::from_utf8_lossy(token.as_ref()).into_owned(),
        ListMailbox::String(string) => String::from_utf8_lossy(string.as_ref()).into_owned(),
    };
    let reference = match reference {
        Mailbox::Inbox => "INBOX".to_string(),
        Mailbox::Other(other) => String::from_utf8_lossy(other.inner().as_ref()).into_owned(),
    };
    let mut responses = Vec::new();
    if pattern.is_empty() {
        // RFC 3501 §6.3.8: an empty pattern asks for the delimiter and root name.
        responses.push(data(Data::List {
            items: vec![FlagNameAttribute::Noselect],
            delimiter: Some(delimiter()),
            mailbox: Mailbox::try_from("").expect("valid"),
        }));
    } else {
        let pattern = format!("{reference}{pattern}");
        let mailboxes = reader.mailboxes(cx.user_id())?;
        let holders = if lsub {
            subscription_holders(&mailboxes, &pattern)
        } else {
            HashSet::new()
        };
        for mailbox in &mailboxes {
            if !wildcard_match(&pattern, &wire_name(&mailbox.name)) {
                continue;
            }
            if !lsub || mailbox.subscribed {
                responses.push(data(entry(mailbox, lsub)));
            } else if holders.contains(mailbox.name.as_str()) {
                responses.push(data(noselect_lsub(mailbox)));
            }
        }
    }
    responses.push(ok(
        tag,
        if lsub {
            "LSUB completed"
        } else {
            "LIST completed"
        },
    ));
    Ok(Reply::new(responses))
}

/// The mailboxes an LSUB with `%` must list although they are not subscribed (RFC 3501
/// §6.3.9): those holding a subscribed mailbox the pattern stops short of, so the
/// client can find it ("foo" for a subscribed "foo.bar" and `%`).
fn subscription_holders<'a>(mailboxes: &'a [MailboxRecord], pattern: &str) -> HashSet<&'a str> {
    let mut holders = HashSet::new();
    if !pattern.contains('%') {
        return holders;
    }
    for mailbox in mailboxes.iter().filter(|m| m.subscribed) {
        if wildcard_match(pattern, &wire_name(&mailbox.name)) {
            continue;
        }
        let name = mailbox.name.as_str();
        for (at, _) in name.match_indices(DELIMITER) {
            holders.insert(&name[..at]);
        }
    }
    holders
}

/// The LSUB line of a mailbox that is not subscribed but holds one that is.
fn noselect_lsub(mailbox: &MailboxRecord) -> Data<'static> {
    Data::Lsub {
        items: vec![FlagNameAttribute::Noselect],
        delimiter: Some(delimiter()),
        mailbox: to_mailbox(&mailbox.name),
    }
}

/// One mailbox's LIST or LSUB line; its SPECIAL-USE attribute (RFC 6154) if it has one.
fn entry(mailbox: &MailboxRecord, lsub: bool) -> Data<'static> {
    let mut items = Vec::new();
    if let Some(special) = &mailbox.special_use {
        items.push(FlagNameAttribute::from(
            Atom::try_from(special.trim_start_matches('\\').to_string())
                .expect("special-use names are atoms"),
        ));
    }
    let (delimiter, mailbox) = (Some(delimiter()), to_mailbox(&mailbox.name));
    if lsub {
        Data::Lsub {
            items,
            delimiter,
            mailbox,
        }
    } else {
        Data::List {
            items,
            delimiter,
            mailbox,
        }
    }
}

/// STATUS: counts of a mailbox without selecting it. RECENT counts the messages no
/// read-write session has heard of yet (as an EXAMINE would see them).
pub fn status(
    cx: &mut Context,
    reader: &Reader,
    tag: &Tag<'static>,
    mailbox: &Mailbox<'static>,
    names: &[StatusDataItemName],
) -> StoreResult<Reply> {
    let Some((record, view)) = MailboxView::load(reader, |r| cx.find_mailbox(r, mailbox))? else {
        return Ok(Reply::new(vec![no(
            tag,
            Some(NoCode::Nonexistent),
            "no such mailbox",
        )]));
    };
    let mut items = Vec::new();
    for name in names {
        let item = match name {
            StatusDataItemName::Messages => StatusDataItem::Messages(view.exists()),
            StatusDataItemName::Recent => StatusDataItem::Recent(view.unclaimed(&record)),
            StatusDataItemName::UidNext => StatusDataItem::UidNext(nz(record.uidnext)),
            StatusDataItemName::UidValidity => StatusDataItem::UidValidity(nz(record.uidvalidity)),
            StatusDataItemName::Unseen => StatusDataItem::Unseen(view.unseen()),
            StatusDataItemName::Deleted => StatusDataItem::Deleted(view.deleted()),
            StatusDataItemName::HighestModSeq => StatusDataItem::HighestModSeq(
                u64::try_from(record.highest_modseq).unwrap_or(1).max(1),
            ),
            _ => continue,
        };
        items.push(item);
    }
    // What changed in the selected mailbox meanwhile, as after any command.
    let mut responses = cx.poll_changes(reader)?;
    responses.push(data(Data::Status {
        mailbox: mailbox.clone(),
        items: Cow::Owned(items),
    }));
    responses.push(ok(tag, "STATUS completed"));
    Ok(Reply::new(responses))
}

pub fn create(
    cx: &mut Context,
    reader: &Reader,
    tag: &Tag<'static>,
    mailbox: &Mailbox<'_>,
) -> StoreResult<Reply> {
    let user = cx.logged_in_user();
    let result = match mailbox_name(mailbox) {
        // A trailing delimiter only says "will hold mailboxes" (RFC 3501 §6.3.3).
        Some(name) => cx
            .store
            .create_mailbox(&user.address, name.trim_end_matches(DELIMITER))
            .map_err(Refused::Store),
        None => Err(Refused::not_a_name()),
    };
    finish(cx, reader, tag, result, "CREATE completed")
}

pub fn delete(
    cx: &mut Context,
    reader: &Reader,
    tag: &Tag<'static>,
    mailbox: &Mailbox<'_>,
) -> StoreResult<Reply> {
    let user = cx.logged_in_user();
    let result = match mailbox_name(mailbox) {
        // The session would go on showing a mailbox that is gone.
        Some(name) if cx.selected_name() == Some(name.as_str()) => Err(Refused::Session(
            Rejection::new(None, "close the mailbox before deleting it"),
        )),
        Some(name) => cx
            .store
            .delete_mailbox(&user.address, &name)
            .map_err(Refused::Store),
        // No mailbox can have a name that is not modified UTF-7.
        None => Err(Refused::Store(MailboxError::Nonexistent.into())),
    };
    finish(cx, reader, tag, result, "DELETE completed")
}

pub fn rename(
    cx: &mut Context,
    reader: &Reader,
    tag: &Tag<'static>,
    from: &Mailbox<'_>,
    to: &Mailbox<'_>,
) -> StoreResult<Reply> {
    let user = cx.logged_in_user();
    let result = match (mailbox_name(from), mailbox_name(to)) {
        (Some(from), Some(to)) => cx
            .store
            .rename_mailbox(&user.address, &from, &to)
            .map_err(Refused::Store),
        _ => Err(Refused::not_a_name()),
    };
    finish(cx, reader, tag, result, "RENAME completed")
}

/// SUBSCRIBE (`subscribed`) or UNSUBSCRIBE; only existing mailboxes are subscribed to.
pub fn subscribe(
    cx: &mut Context,
    reader: &Reader,
    tag: &Tag<'static>,
    mailbox: &Mailbox<'_>,
    subscribed: bool,
) -> StoreResult<Reply> {
    let result = match cx.find_mailbox(reader, mailbox)? {
        Some(record) => cx
            .store
            .set_subscribed(record.id, subscribed)
            .map_err(Refused::Store),
        None => Err(Refused::Store(MailboxError::Nonexistent.into())),
    };
    let done = if subscribed {
        "SUBSCRIBE completed"
    } else {
        "UNSUBSCRIBE completed"
    };
    finish(cx, reader, tag, result, done)
}

/// Why a mailbox command failed: the store refused it, or the session did before
/// asking the store.
enum Refused {
    Store(Error),
    Session(Rejection),
}

impl Refused {
    /// The client's name is not modified UTF-7.
    fn not_a_name() -> Refused {
        Refused::Session(Rejection::new(None, "not a valid mailbox name"))
    }
}

/// The tagged answer to a change of mailboxes, after telling the client what changed in
/// its selected mailbox meanwhile (whether or not the change worked).
fn finish(
    cx: &mut Context,
    reader: &Reader,
    tag: &Tag<'static>,
    result: Result<(), Refused>,
    done: &'static str,
) -> StoreResult<Reply> {
    let mut responses = cx.poll_changes(reader)?;
    responses.push(match result {
        Ok(()) => ok(tag, done),
        Err(Refused::Session(rejection)) => rejection.response(tag),
        Err(Refused::Store(Error::Mailbox(why))) => mailbox_rejection(&why).response(tag),
        // Not about the mailbox: the user's account went away meanwhile.
        Err(Refused::Store(Error::Refused(why))) => Rejection::new(None, why).response(tag),
        Err(Refused::Store(e)) => return Err(e),
    });
    Ok(Reply::new(responses))
}

/// The store's mailbox refusals as IMAP tells them (RFC 5530 codes), in the store's
/// words but naming the mailbox as the client does (modified UTF-7).
fn mailbox_rejection(error: &MailboxError) -> Rejection {
    use MailboxError as E;
    let code = match error {
        E::AlreadyExists(_) | E::InboxCannotBeReplaced => Some(NoCode::AlreadyExists),
        E::Nonexistent => Some(NoCode::Nonexistent),
        E::HasChildren | E::AwaitingReplay(_) => Some(NoCode::InUse),
        E::InvalidName(_)
        | E::InboxAlwaysExists
        | E::InboxCannotBeRenamed
        | E::InboxCannotBeDeleted => None,
    };
    let as_the_client_names_it = match error {
        E::AlreadyExists(name) => E::AlreadyExists(wire_name(name)),
        E::InvalidName(name) => E::InvalidName(wire_name(name)),
        other => other.clone(),
    };
    Rejection::new(code, as_the_client_names_it.to_string())
}

#[cfg(test)]
mod tests {
    use crate::imap::testing::{Fixture, USER, message};
    use lifeboat_mailstore::{Address, Class, NewMessage};

    /// The standard mailboxes as LIST shows them: INBOX first, then by name.
    const STANDARD: [&str; 6] = [
        "() \".\" INBOX",
        "(\\Archive) \".\" Archive",
        "(\\Drafts) \".\" Drafts",
        "(\\Junk) \".\" Junk",
        "(\\Sent) \".\" Sent",
        "(\\Trash) \".\" Trash",
    ];

    fn listing(kind: &str, entries: &[&str], tag_line: &str) -> Vec<String> {
        let mut lines: Vec<String> = entries
            .iter()
            .map(|entry| format!("* {kind} {entry}\r\n"))
            .collect();
        lines.push(tag_line.to_string());
        lines
    }

    #[test]
    fn list_everything_the_root_and_inbox_in_any_case() {
        let mut f = Fixture::logged_in(0);
        assert_eq!(
            f.run(b"a1 LIST \"\" *\r\n"),
            listing("LIST", &STANDARD, "a1 OK LIST completed\r\n")
        );
        assert_eq!(
            f.run(b"a2 LIST \"\" \"\"\r\n"),
            [
                "* LIST (\\Noselect) \".\" \"\"\r\n",
                "a2 OK LIST completed\r\n"
            ]
        );
        assert_eq!(
            f.run(b"a3 LIST \"\" inbox\r\n"),
            ["* LIST () \".\" INBOX\r\n", "a3 OK LIST completed\r\n"]
        );
        assert_eq!(
            f.run(b"a4 LIST \"\" Nothing*\r\n"),
            ["a4 OK LIST completed\r\n"]
        );
    }

    #[test]
    fn list_percent_stops_at_the_delimiter_and_the_reference_is_a_prefix() {
        let mut f = Fixture::logged_in(0);
        assert_eq!(
            f.run(b"a1 CREATE Projects.2026\r\n"),
            ["a1 OK CREATE completed\r\n"]
        );
        assert_eq!(
            f.run(b"a2 LIST \"\" P%\r\n"),
            ["* LIST () \".\" Projects\r\n", "a2 OK LIST completed\r\n"]
        );
        assert_eq!(
            f.run(b"a3 LIST Projects. %\r\n"),
            [
                "* LIST () \".\" Projects.2026\r\n",
                "a3 OK LIST completed\r\n"
            ]
        );
    }

    #[test]
    fn lsub_lists_the_subscribed_mailboxes() {
        let mut f = Fixture::logged_in(0);
        assert_eq!(
            f.run(b"a1 UNSUBSCRIBE Junk\r\n"),
            ["a1 OK UNSUBSCRIBE completed\r\n"]
        );
        let subscribed: Vec<&str> = STANDARD
            .into_iter()
            .filter(|e| !e.ends_with("Junk"))
            .collect();
        assert_eq!(
            f.run(b"a2 LSUB \"\" *\r\n"),
            listing("LSUB", &subscribed, "a2 OK LSUB completed\r\n")
        );
        assert_eq!(
            f.run(b"a3 SUBSCRIBE Junk\r\n"),
            ["a3 OK SUBSCRIBE completed\r\n"]
        );
        assert_eq!(
            f.run(b"a4 LSUB \"\" *\r\n"),
            listing("LSUB", &STANDARD, "a4 OK LSUB completed\r\n")
        );
        assert_eq!(
            f.run(b"a5 SUBSCRIBE Nowhere\r\n"),
            ["a5 NO [NONEXISTENT] no such mailbox\r\n"]
        );
    }

    #[test]
    fn create_subscribes_the_mailbox_asked_for_not_the_parents_it_made() {
        let mut f = Fixture::logged_in(0);
        f.run(b"a1 CREATE a.b.c\r\n");
        assert_eq!(
            f.run(b"a2 LSUB \"\" a*\r\n"),
            ["* LSUB () \".\" a.b.c\r\n", "a2 OK LSUB completed\r\n"]
        );
        // RFC 3501 §6.3.9: a % that stops at a parent of a subscribed mailbox lists the
        // parent, \Noselect unless it is subscribed itself.
        let top = f.run(b"a3 LSUB \"\" %\r\n");
        let mut expected: Vec<String> =
            STANDARD.iter().map(|e| format!("* LSUB {e}\r\n")).collect();
        expected.push("* LSUB (\\Noselect) \".\" a\r\n".into());
        expected.push("a3 OK LSUB completed\r\n".into());
        assert_eq!(top, expected);
        assert_eq!(
            f.run(b"a4 LSUB a. %\r\n"),
            [
                "* LSUB (\\Noselect) \".\" a.b\r\n",
                "a4 OK LSUB completed\r\n"
            ]
        );
        assert_eq!(
            f.run(b"a5 LSUB \"\" a.b.%\r\n"),
            ["* LSUB () \".\" a.b.c\r\n", "a5 OK LSUB completed\r\n"]
        );
        f.run(b"a6 SUBSCRIBE a\r\n");
        assert_eq!(
            f.run(b"a7 LSUB \"\" a\r\n"),
            ["* LSUB () \".\" a\r\n", "a7 OK LSUB completed\r\n"]
        );
        // LIST is about mailboxes, not subscriptions: all three are selectable.
        assert_eq!(f.run(b"a8 LIST \"\" a*\r\n").len(), 4);
    }

    #[test]
    fn create_makes_parents_and_refuses_what_exists_or_cannot_be_a_name() {
        let mut f = Fixture::logged_in(0);
        // A trailing delimiter only says the mailbox will hold others.
        assert_eq!(
            f.run(b"a1 CREATE Projects.2026.\r\n"),
            ["a1 OK CREATE completed\r\n"]
        );
        let names: Vec<String> = {
            let reader = f.store.reader().unwrap();
            let all = reader.mailboxes(f.user.id).unwrap();
            all.into_iter().map(|m| m.name).collect()
        };
        assert!(names.contains(&"Projects".to_string()), "{names:?}");
        assert!(names.contains(&"Projects.2026".to_string()), "{names:?}");
        assert_eq!(
            f.run(b"a2 CREATE Projects\r\n"),
            ["a2 NO [ALREADYEXISTS] Projects already exists\r\n"]
        );
        assert_eq!(
            f.run(b"a3 CREATE inbox\r\n"),
            ["a3 NO INBOX always exists\r\n"]
        );
        assert_eq!(
            f.run(b"a4 CREATE a..b\r\n"),
            ["a4 NO `a..b` is not a usable mailbox name\r\n"]
        );
        // Not modified UTF-7.
        assert_eq!(
            f.run(b"a5 CREATE &Jjo\r\n"),
            ["a5 NO not a valid mailbox name\r\n"]
        );
    }

    #[test]
    fn inbox_in_any_case_is_one_mailbox_also_as_a_parent() {
        let mut f = Fixture::logged_in(0);
        assert_eq!(
            f.run(b"a1 CREATE inbox.x\r\n"),
            ["a1 OK CREATE completed\r\n"]
        );
        assert_eq!(
            f.run(b"a2 LIST \"\" inbox*\r\n"),
            [
                "* LIST () \".\" INBOX\r\n",
                "* LIST () \".\" INBOX.x\r\n",
                "a2 OK LIST completed\r\n"
            ]
        );
        assert_eq!(
            f.run(b"a3 CREATE Inbox.x\r\n"),
            ["a3 NO [ALREADYEXISTS] INBOX.x already exists\r\n"]
        );
        let select = f.run(b"a4 SELECT iNbOx.x\r\n");
        assert!(select.last().unwrap().starts_with("a4 OK"), "{select:?}");
    }

    #[test]
    fn names_travel_in_modified_utf7() {
        let mut f = Fixture::logged_in(0);
        assert_eq!(
            f.run(b"a1 CREATE Entw&APw-rfe\r\n"),
            ["a1 OK CREATE completed\r\n"]
        );
        assert_eq!(f.mailbox("Entwürfe").name, "Entwürfe");
        assert_eq!(
            f.run(b"a2 LIST \"\" Entw*\r\n"),
            [
                "* LIST () \".\" Entw&APw-rfe\r\n",
                "a2 OK LIST completed\r\n"
            ]
        );
        // Refusals name the mailbox as the client does (building them panicked).
        assert_eq!(
            f.run(b"a3 CREATE Entw&APw-rfe\r\n"),
            ["a3 NO [ALREADYEXISTS] Entw&APw-rfe already exists\r\n"]
        );
        assert_eq!(
            f.run(b"a4 RENAME Archive Entw&APw-rfe\r\n"),
            ["a4 NO [ALREADYEXISTS] Entw&APw-rfe already exists\r\n"]
        );
        // A line break inside a literal name is no modified UTF-7.
        assert_eq!(
            f.run(b"a5 CREATE {4+}\r\na\r\nb\r\n"),
            ["a5 NO not a valid mailbox name\r\n"]
        );
    }

    #[test]
    fn delete_refusals() {
        let mut f = Fixture::logged_in(0);
        f.run(b"a0 CREATE Projects.2026\r\n");
        assert_eq!(
            f.run(b"a1 DELETE Nowhere\r\n"),
            ["a1 NO [NONEXISTENT] no such mailbox\r\n"]
        );
        assert_eq!(
            f.run(b"a2 DELETE &Jjo\r\n"),
            ["a2 NO [NONEXISTENT] no such mailbox\r\n"]
        );
        assert_eq!(
            f.run(b"a3 DELETE INBOX\r\n"),
            ["a3 NO INBOX cannot be deleted\r\n"]
        );
        assert_eq!(
            f.run(b"a4 DELETE Projects\r\n"),
            ["a4 NO [INUSE] delete the mailboxes inside it first\r\n"]
        );
        f.run(b"a5 SELECT Projects.2026\r\n");
        assert_eq!(
            f.run(b"a6 DELETE Projects.2026\r\n"),
            ["a6 NO close the mailbox before deleting it\r\n"]
        );
        f.run(b"a7 UNSELECT\r\n");
        assert_eq!(
            f.run(b"a8 DELETE Projects.2026\r\n"),
            ["a8 OK DELETE completed\r\n"]
        );
        assert_eq!(
            f.run(b"a9 DELETE Projects\r\n"),
            ["a9 OK DELETE completed\r\n"]
        );
        assert_eq!(
            f.run(b"b1 LIST \"\" Projects*\r\n"),
            ["b1 OK LIST completed\r\n"]
        );
    }

    #[test]
    fn delete_keeps_a_mailbox_with_mail_waiting_for_replay() {
        let mut f = Fixture::logged_in(0);
        f.run(b"a0 CREATE Held\r\n");
        let owner = Address::parse(USER).unwrap();
        f.store
            .deliver(NewMessage::new(owner, "Held", message(1), Class::Diverted))
            .unwrap();
        assert_eq!(
            f.run(b"a1 DELETE Held\r\n"),
            ["a1 NO [INUSE] 1 message(s) in it still have to go back to your mail server\r\n"]
        );
    }

    #[test]
    fn rename_moves_the_hierarchy_and_refuses_clashes() {
        let mut f = Fixture::logged_in(0);
        f.run(b"a0 CREATE Projects.2026\r\n");
        let uidvalidity = f.mailbox("Projects.2026").uidvalidity;
        assert_eq!(
            f.run(b"a1 RENAME Projects Work\r\n"),
            ["a1 OK RENAME completed\r\n"]
        );
        assert_eq!(f.mailbox("Work.2026").uidvalidity, uidvalidity);
        assert_eq!(
            f.run(b"a2 RENAME Nowhere Else\r\n"),
            ["a2 NO [NONEXISTENT] no such mailbox\r\n"]
        );
        assert_eq!(
            f.run(b"a3 RENAME Work Archive\r\n"),
            ["a3 NO [ALREADYEXISTS] Archive already exists\r\n"]
        );
        assert_eq!(
            f.run(b"a4 RENAME INBOX Old\r\n"),
            ["a4 NO renaming INBOX is not supported; create a mailbox and move the mail\r\n"]
        );
        assert_eq!(
            f.run(b"a5 RENAME Work inbox\r\n"),
            ["a5 NO [ALREADYEXISTS] INBOX exists\r\n"]
        );
        assert_eq!(
            f.run(b"a6 RENAME Work a..b\r\n"),
            ["a6 NO `a..b` is not a usable mailbox name\r\n"]
        );
        assert_eq!(
            f.run(b"a7 RENAME Work &Jjo\r\n"),
            ["a7 NO not a valid mailbox name\r\n"]
        );
    }

    #[test]
    fn status_counts_without_selecting() {
        let mut f = Fixture::logged_in(3);
        f.run(b"a0 SELECT INBOX\r\n");
        f.run(b"a0 STORE 1 +FLAGS.SILENT (\\Seen \\Deleted)\r\n");
        f.run(b"a0 UNSELECT\r\n");
        let inbox = f.mailbox("INBOX");
        assert_eq!(
            f.run(
                b"a1 STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED \
                  HIGHESTMODSEQ)\r\n"
            ),
            [
                format!(
                    "* STATUS INBOX (MESSAGES 3 RECENT 0 UIDNEXT 4 UIDVALIDITY {} UNSEEN 2 \
                     DELETED 1 HIGHESTMODSEQ {})\r\n",
                    inbox.uidvalidity, inbox.highest_modseq
                ),
                "a1 OK STATUS completed\r\n".into()
            ]
        );
        assert_eq!(
            f.run(b"a2 STATUS Nowhere (MESSAGES)\r\n"),
            ["a2 NO [NONEXISTENT] no such mailbox\r\n"]
        );
    }

    #[test]
    fn status_counts_the_recent_messages_no_session_has_taken() {
        let mut f = Fixture::logged_in(0);
        f.deliver("INBOX", 1);
        f.deliver("INBOX", 2);
        let status = |f: &mut Fixture| f.run(b"a1 STATUS INBOX (RECENT)\r\n")[0].clone();
        assert_eq!(status(&mut f), "* STATUS INBOX (RECENT 2)\r\n");
        f.run(b"a2 EXAMINE Inbox\r\n");
        f.run(b"a3 UNSELECT\r\n");
        assert_eq!(status(&mut f), "* STATUS INBOX (RECENT 2)\r\n");
        f.run(b"a4 SELECT INBOX\r\n");
        f.run(b"a5 UNSELECT\r\n");
        assert_eq!(status(&mut f), "* STATUS INBOX (RECENT 0)\r\n");
    }

    #[test]
    fn status_reports_news_of_the_selected_mailbox_first() {
        let mut f = Fixture::selected(1);
        f.deliver("INBOX", 2);
        assert_eq!(
            f.run(b"a1 STATUS Archive (MESSAGES)\r\n"),
            [
                "* 2 EXISTS\r\n",
                "* 1 RECENT\r\n",
                "* STATUS Archive (MESSAGES 0)\r\n",
                "a1 OK STATUS completed\r\n"
            ]
        );
    }

    #[test]
    fn mailbox_commands_report_news_of_the_selected_mailbox_first() {
        let mut f = Fixture::selected(2);
        f.deliver("INBOX", 3);
        assert_eq!(
            f.run(b"a1 CREATE Projects\r\n"),
            [
                "* 3 EXISTS\r\n",
                "* 1 RECENT\r\n",
                "a1 OK CREATE completed\r\n"
            ]
        );
        f.deliver("INBOX", 4);
        assert_eq!(
            f.run(b"a2 CREATE Projects\r\n"),
            [
                "* 4 EXISTS\r\n",
                "* 2 RECENT\r\n",
                "a2 NO [ALREADYEXISTS] Projects already exists\r\n"
            ]
        );
    }
}
