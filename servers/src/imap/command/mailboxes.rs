//! Commands on the user's mailboxes as a whole, from the authenticated state: LIST and
//! LSUB (with LIST-EXTENDED, LIST-STATUS and CHILDREN), STATUS (with STATUS=SIZE),
//! CREATE, DELETE, RENAME, SUBSCRIBE and UNSUBSCRIBE.
//!
//! The store refuses what it cannot do with a typed [`MailboxError`]; here each variant
//! becomes its RFC 5530 response code, with the store's words as the text.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use imap_codec::imap_types::core::{Atom, Tag};
use imap_codec::imap_types::flag::FlagNameAttribute;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::Data;
use imap_codec::imap_types::status::{StatusDataItem, StatusDataItemName};
use lifeboat_mailstore::Error;
use lifeboat_mailstore::error::{MailboxError, Result as StoreResult};
use lifeboat_mailstore::reader::{MailboxRecord, MailboxStatus, Reader};

use crate::imap::context::Context;
use crate::imap::list::ListCommand;
use crate::imap::names::{DELIMITER, Patterns, delimiter, mailbox_name, to_mailbox, wire_name};
use crate::imap::response::{NoCode, Outgoing, Rejection, Reply, data, no, nz, ok};

/// LIST or LSUB, in RFC 3501's syntax or RFC 5258's ([`ListCommand`]).
///
/// Which names are listed (RFC 5258 §3.3, which RFC 3501's LIST and LSUB agree with):
/// those a pattern matches that meet the selection criteria (LIST: the mailbox exists;
/// LSUB or `(SUBSCRIBED)`: it is subscribed; `(SPECIAL-USE)`: it has a special use),
/// and those a pattern matches that hold a mailbox meeting them which no pattern
/// matches (the `%` that stops at `Fruit` when only `Fruit.Banana` is subscribed): with
/// RECURSIVEMATCH as they are, with CHILDINFO; else only where RFC 3501 lists them,
/// `\Noselect` (LSUB's parent of a subscribed mailbox, LIST's missing level of the
/// hierarchy), or `\NonExistent` in RFC 5258's syntax. A name the store has no mailbox
/// for is a parent level missing under a mailbox that exists (`store check --repair`
/// can make one); subscriptions belong to mailboxes, so none is subscribed.
///
/// Every line says `\HasChildren` or `\HasNoChildren` (CHILDREN, RFC 3348) and the
/// special use; `\Subscribed` when asked for. With RETURN (STATUS ...) each mailbox
/// that meets the criteria is followed by its STATUS (RFC 5819), everything read in one
/// snapshot of the index.
pub fn list(cx: &mut Context, reader: &Reader, list: &ListCommand) -> StoreResult<Reply> {
    let tag = &list.tag;
    let done = if list.lsub {
        "LSUB completed"
    } else {
        "LIST completed"
    };
    if !list.extended && list.patterns.iter().all(String::is_empty) {
        // RFC 3501 §6.3.8: an empty pattern asks for the delimiter and root name.
        let (items, delimiter) = (vec![FlagNameAttribute::Noselect], Some(delimiter()));
        let mailbox = Mailbox::try_from("").expect("valid");
        let root = if list.lsub {
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
        };
        return Ok(Reply::new(vec![data(root), ok(tag, done)]));
    }
    // The patterns joined to the reference; RFC 5258 §3: an empty one matches nothing.
    let patterns: Vec<String> = list
        .patterns
        .iter()
        .filter(|pattern| !pattern.is_empty())
        .map(|pattern| format!("{}{pattern}", list.reference))
        .collect();
    let patterns = Patterns::new(patterns.iter().map(String::as_str));
    let mut lines: Vec<Outgoing> = if list.returns.status.is_empty() {
        Vec::new()
    } else {
        // What changed in the selected mailbox meanwhile, as STATUS tells it first.
        cx.poll_changes(reader)?
            .into_iter()
            .map(Outgoing::from)
            .collect()
    };
    let user_id = cx.user_id();
    reader.snapshot(|reader| {
        let mailboxes = reader.mailboxes(user_id)?;
        for name in Listing::new(&mailboxes, list, &patterns).listed() {
            lines.push(list_line(list, &name));
            if let Some(record) = name
                .record
                .filter(|_| name.meets && !list.returns.status.is_empty())
            {
                let counts = reader.mailbox_status(record)?;
                lines.push(data(status_data(record, &counts, &list.returns.status)).into());
            }
        }
        Ok(())
    })?;
    lines.push(ok(tag, done).into());
    Ok(Reply::new(lines))
}

/// A name LIST may show: a mailbox, or a missing level above one.
struct Name<'a> {
    /// The store's name.
    name: &'a str,
    record: Option<&'a MailboxRecord>,
    /// A mailbox exists below it.
    has_children: bool,
    /// A pattern matches it.
    matched: bool,
    /// It meets the selection criteria.
    meets: bool,
    /// A mailbox below it meets the selection criteria and no pattern matches it.
    holds_unmatched: bool,
}

/// The names of one LIST, in the store's order with each missing level just before the
/// first mailbox below it.
struct Listing<'a> {
    names: Vec<Name<'a>>,
    list: &'a ListCommand,
}

impl<'a> Listing<'a> {
    /// Each name is matched once against the patterns (see [`Patterns`] for the cost);
    /// the rest is a walk over the levels of each name.
    fn new(
        mailboxes: &'a [MailboxRecord],
        list: &'a ListCommand,
        patterns: &Patterns,
    ) -> Listing<'a> {
        let existing: HashSet<&str> = mailboxes.iter().map(|m| m.name.as_str()).collect();
        let mut names: Vec<Name<'a>> = Vec::with_capacity(mailboxes.len());
        let mut at: HashMap<&'a str, usize> = HashMap::with_capacity(mailboxes.len());
        for mailbox in mailboxes {
            let levels = parents(&mailbox.name).chain([mailbox.name.as_str()]);
            for name in levels {
                if at.contains_key(name) || (name != mailbox.name && existing.contains(name)) {
                    continue;
                }
                let record = (name == mailbox.name).then_some(mailbox);
                at.insert(name, names.len());
                names.push(Name {
                    name,
                    record,
                    has_children: false,
                    matched: patterns.matches(&wire_name(name)),
                    meets: record.is_some_and(|r| meets(list, r)),
                    holds_unmatched: false,
                });
            }
        }
        for index in 0..names.len() {
            let (name, exists, unmatched) = {
                let n = &names[index];
                (n.name, n.record.is_some(), n.meets && !n.matched)
            };
            for parent in parents(name) {
                let Some(&p) = at.get(parent) else { continue };
                names[p].has_children |= exists;
                names[p].holds_unmatched |= unmatched;
            }
        }
        Listing { names, list }
    }

    fn listed(self) -> impl Iterator<Item = Name<'a>> {
        let list = self.list;
        self.names.into_iter().filter(move |n| {
            n.matched
                && (n.meets
                    || (n.holds_unmatched
                        && (list.select.recursive_match || n.record.is_none() || list.lsub)))
        })
    }
}

/// Whether a mailbox meets the selection criteria.
fn meets(list: &ListCommand, mailbox: &MailboxRecord) -> bool {
    (!(list.lsub || list.select.subscribed) || mailbox.subscribed)
        && (!list.select.special_use || mailbox.special_use.is_some())
}

/// The levels above a name, outermost first: `a` and `a.b` for `a.b.c`.
fn parents(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices(DELIMITER)
        .map(move |(at, _)| &name[..at])
}

/// The LIST (or LSUB) line of a name: `\NonExistent` or `\Noselect` first when it is one,
/// then the children, `\Subscribed`, the special use; CHILDINFO when RECURSIVEMATCH
/// found a mailbox below that meets the criteria and is not listed.
fn list_line(list: &ListCommand, name: &Name<'_>) -> Outgoing {
    let attribute = |words: &str| {
        FlagNameAttribute::from(Atom::try_from(words.to_string()).expect("attributes are atoms"))
    };
    let mut items = Vec::new();
    if list.extended {
        // RFC 5258 §3.5: \Noselect keeps its meaning here, whatever the criteria.
        if name.record.is_none() {
            items.push(attribute("NonExistent"));
        }
    } else if !name.meets {
        // A missing level (LIST), or a parent not subscribed itself (LSUB).
        items.push(FlagNameAttribute::Noselect);
    }
    items.push(attribute(if name.has_children {
        "HasChildren"
    } else {
        "HasNoChildren"
    }));
    if let Some(record) = name.record {
        if list.extended && list.returns.subscribed && record.subscribed {
            items.push(attribute("Subscribed"));
        }
        if let Some(special) = &record.special_use {
            items.push(attribute(special.trim_start_matches('\\')));
        }
    }
    let (delimiter, mailbox) = (Some(delimiter()), to_mailbox(name.name));
    let response = data(if list.lsub {
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
    });
    if list.select.recursive_match && name.holds_unmatched {
        let criteria: Vec<String> = list
            .select
            .base_options()
            .iter()
            .map(|option| format!("\"{option}\""))
            .collect();
        let extended = format!("(\"CHILDINFO\" ({}))", criteria.join(" "));
        Outgoing::extended(&response, &extended)
    } else {
        Outgoing::Imap(response)
    }
}

/// A mailbox's STATUS data: the items asked for, in the order asked.
fn status_data(
    record: &MailboxRecord,
    counts: &MailboxStatus,
    names: &[StatusDataItemName],
) -> Data<'static> {
    let count = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    let items = names
        .iter()
        .filter_map(|name| {
            Some(match name {
                StatusDataItemName::Messages => StatusDataItem::Messages(count(counts.messages)),
                StatusDataItemName::Recent => StatusDataItem::Recent(count(counts.recent)),
                StatusDataItemName::UidNext => StatusDataItem::UidNext(nz(record.uidnext)),
                StatusDataItemName::UidValidity => {
                    StatusDataItem::UidValidity(nz(record.uidvalidity))
                }
                StatusDataItemName::Unseen => StatusDataItem::Unseen(count(counts.unseen)),
                StatusDataItemName::Deleted => StatusDataItem::Deleted(count(counts.deleted)),
                StatusDataItemName::Size => StatusDataItem::Size(counts.size),
                StatusDataItemName::HighestModSeq => StatusDataItem::HighestModSeq(
                    u64::try_from(record.highest_modseq).unwrap_or(1).max(1),
                ),
                _ => return None,
            })
        })
        .collect();
    Data::Status {
        mailbox: to_mailbox(&record.name),
        items: Cow::Owned(items),
    }
}

/// STATUS: counts of a mailbox without selecting it, from the index alone. RECENT counts
/// the messages no read-write session has heard of yet (as an EXAMINE would see them);
/// SIZE their octets (RFC 8438).
pub fn status(
    cx: &mut Context,
    reader: &Reader,
    tag: &Tag<'static>,
    mailbox: &Mailbox<'static>,
    names: &[StatusDataItemName],
) -> StoreResult<Reply> {
    let found = reader.snapshot(|reader| match cx.find_mailbox(reader, mailbox)? {
        Some(record) => Ok(Some((reader.mailbox_status(&record)?, record))),
        None => Ok(None),
    })?;
    let Some((counts, record)) = found else {
        return Ok(Reply::new(vec![no(
            tag,
            Some(NoCode::Nonexistent),
            "no such mailbox",
        )]));
    };
    let mut status = status_data(&record, &counts, names);
    if let Data::Status { mailbox: named, .. } = &mut status {
        // The name as the client wrote it.
        *named = mailbox.clone();
    }
    // What changed in the selected mailbox meanwhile, as after any command.
    let mut responses = cx.poll_changes(reader)?;
    responses.push(data(status));
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

    /// The standard mailboxes as LIST shows them: INBOX first, then by name; none has
    /// children (CHILDREN, RFC 3348), each but INBOX its special use (RFC 6154).
    const STANDARD: [&str; 6] = [
        "(\\HasNoChildren) \".\" INBOX",
        "(\\HasNoChildren \\Archive) \".\" Archive",
        "(\\HasNoChildren \\Drafts) \".\" Drafts",
        "(\\HasNoChildren \\Junk) \".\" Junk",
        "(\\HasNoChildren \\Sent) \".\" Sent",
        "(\\HasNoChildren \\Trash) \".\" Trash",
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
            [
                "* LIST (\\HasNoChildren) \".\" INBOX\r\n",
                "a3 OK LIST completed\r\n"
            ]
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
            [
                "* LIST (\\HasChildren) \".\" Projects\r\n",
                "a2 OK LIST completed\r\n"
            ]
        );
        assert_eq!(
            f.run(b"a3 LIST Projects. %\r\n"),
            [
                "* LIST (\\HasNoChildren) \".\" Projects.2026\r\n",
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
            [
                "* LSUB (\\HasNoChildren) \".\" a.b.c\r\n",
                "a2 OK LSUB completed\r\n"
            ]
        );
        // RFC 3501 §6.3.9: a % that stops at a parent of a subscribed mailbox lists the
        // parent, \Noselect unless it is subscribed itself.
        let top = f.run(b"a3 LSUB \"\" %\r\n");
        let mut expected: Vec<String> =
            STANDARD.iter().map(|e| format!("* LSUB {e}\r\n")).collect();
        expected.push("* LSUB (\\Noselect \\HasChildren) \".\" a\r\n".into());
        expected.push("a3 OK LSUB completed\r\n".into());
        assert_eq!(top, expected);
        assert_eq!(
            f.run(b"a4 LSUB a. %\r\n"),
            [
                "* LSUB (\\Noselect \\HasChildren) \".\" a.b\r\n",
                "a4 OK LSUB completed\r\n"
            ]
        );
        assert_eq!(
            f.run(b"a5 LSUB \"\" a.b.%\r\n"),
            [
                "* LSUB (\\HasNoChildren) \".\" a.b.c\r\n",
                "a5 OK LSUB completed\r\n"
            ]
        );
        f.run(b"a6 SUBSCRIBE a\r\n");
        assert_eq!(
            f.run(b"a7 LSUB \"\" a\r\n"),
            [
                "* LSUB (\\HasChildren) \".\" a\r\n",
                "a7 OK LSUB completed\r\n"
            ]
        );
        // LIST is about mailboxes, not subscriptions: all three are selectable.
        assert_eq!(f.run(b"a8 LIST \"\" a*\r\n").len(), 4);
    }

    /// A user with INBOX and `names` only (the standard mailboxes deleted, parents
    /// made as CREATE makes them), of which only `subscribed` are subscribed.
    fn hierarchy(names: &[&str], subscribed: &[&str]) -> Fixture {
        let mut f = Fixture::logged_in(0);
        for standard in ["Archive", "Drafts", "Junk", "Sent", "Trash"] {
            let deleted = f.run(format!("d DELETE {standard}\r\n").as_bytes());
            assert_eq!(deleted, ["d OK DELETE completed\r\n"]);
        }
        for name in names {
            let created = f.run(format!("c CREATE {name}\r\n").as_bytes());
            assert_eq!(created, ["c OK CREATE completed\r\n"]);
        }
        subscribe_only(&f, subscribed);
        f
    }

    fn subscribe_only(f: &Fixture, subscribed: &[&str]) {
        let mailboxes = f.store.reader().unwrap().mailboxes(f.user.id).unwrap();
        for mailbox in mailboxes {
            let wanted = subscribed.contains(&mailbox.name.as_str());
            f.store.set_subscribed(mailbox.id, wanted).unwrap();
        }
    }

    /// The lines as the server writes them.
    fn wire(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|line| format!("{line}\r\n")).collect()
    }

    const FRUIT: [&str; 7] = [
        "Fruit",
        "Fruit.Apple",
        "Fruit.Banana",
        "Tofu",
        "Vegetable",
        "Vegetable.Broccoli",
        "Vegetable.Corn",
    ];

    /// RFC 5258 §5, examples 1 to 6 (no Fruit.Peach: a subscription here belongs to a
    /// mailbox, so none names one that does not exist; no remote mailboxes, so REMOTE
    /// changes nothing). Every line says whether the mailbox has children.
    #[test]
    fn rfc_5258_examples_1_to_6_selection_and_return_options() {
        let subscribed = ["INBOX", "Fruit.Banana", "Vegetable", "Vegetable.Broccoli"];
        let mut f = hierarchy(&FRUIT, &subscribed);
        assert_eq!(
            f.run(b"A01 LIST \"\" \"*\"\r\n"),
            wire(&[
                r#"* LIST (\HasNoChildren) "." INBOX"#,
                r#"* LIST (\HasChildren) "." Fruit"#,
                r#"* LIST (\HasNoChildren) "." Fruit.Apple"#,
                r#"* LIST (\HasNoChildren) "." Fruit.Banana"#,
                r#"* LIST (\HasNoChildren) "." Tofu"#,
                r#"* LIST (\HasChildren) "." Vegetable"#,
                r#"* LIST (\HasNoChildren) "." Vegetable.Broccoli"#,
                r#"* LIST (\HasNoChildren) "." Vegetable.Corn"#,
                "A01 OK LIST completed",
            ])
        );
        let subscribed_lines = [
            r#"* LIST (\HasNoChildren \Subscribed) "." INBOX"#,
            r#"* LIST (\HasNoChildren \Subscribed) "." Fruit.Banana"#,
            r#"* LIST (\HasChildren \Subscribed) "." Vegetable"#,
            r#"* LIST (\HasNoChildren \Subscribed) "." Vegetable.Broccoli"#,
        ];
        let mut expected = subscribed_lines.to_vec();
        expected.push("A02 OK LIST completed");
        assert_eq!(
            f.run(b"A02 LIST (SUBSCRIBED) \"\" \"*\"\r\n"),
            wire(&expected)
        );
        let children = [
            r#"* LIST (\HasNoChildren) "." INBOX"#,
            r#"* LIST (\HasChildren) "." Fruit"#,
            r#"* LIST (\HasNoChildren) "." Tofu"#,
            r#"* LIST (\HasChildren) "." Vegetable"#,
        ];
        let mut expected = children.to_vec();
        expected.push("A03 OK LIST completed");
        assert_eq!(
            f.run(b"A03 LIST () \"\" \"%\" RETURN (CHILDREN)\r\n"),
            wire(&expected)
        );
        let mut expected = children.to_vec();
        expected.push("A04 OK LIST completed");
        assert_eq!(
            f.run(b"A04 LIST (REMOTE) \"\" \"%\" RETURN (CHILDREN)\r\n"),
            wire(&expected)
        );
        let mut expected = subscribed_lines.to_vec();
        expected.push("A05 OK LIST completed");
        assert_eq!(
            f.run(b"A05 LIST (REMOTE SUBSCRIBED) \"\" \"*\"\r\n"),
            wire(&expected)
        );
        assert_eq!(
            f.run(b"A06 LIST (REMOTE) \"\" \"*\" RETURN (SUBSCRIBED)\r\n"),
            wire(&[
                r#"* LIST (\HasNoChildren \Subscribed) "." INBOX"#,
                r#"* LIST (\HasChildren) "." Fruit"#,
                r#"* LIST (\HasNoChildren) "." Fruit.Apple"#,
                r#"* LIST (\HasNoChildren \Subscribed) "." Fruit.Banana"#,
                r#"* LIST (\HasNoChildren) "." Tofu"#,
                r#"* LIST (\HasChildren \Subscribed) "." Vegetable"#,
                r#"* LIST (\HasNoChildren \Subscribed) "." Vegetable.Broccoli"#,
                r#"* LIST (\HasNoChildren) "." Vegetable.Corn"#,
                "A06 OK LIST completed",
            ])
        );
    }

    /// RFC 5258 §5 example 7: several patterns; a mailbox two of them match is listed
    /// once, in the store's order, whatever the order of the patterns.
    #[test]
    fn rfc_5258_example_7_several_patterns() {
        let mut f = Fixture::logged_in(0);
        for name in ["Sent.March2004", "Sent.December2003", "Sent.August2004"] {
            f.run(format!("c CREATE {name}\r\n").as_bytes());
        }
        let expected = |tag: &str| {
            wire(&[
                r#"* LIST (\HasNoChildren) "." INBOX"#,
                r#"* LIST (\HasNoChildren \Drafts) "." Drafts"#,
                r#"* LIST (\HasNoChildren) "." Sent.August2004"#,
                r#"* LIST (\HasNoChildren) "." Sent.December2003"#,
                r#"* LIST (\HasNoChildren) "." Sent.March2004"#,
                &format!("{tag} OK LIST completed"),
            ])
        };
        assert_eq!(
            f.run(b"BBB LIST \"\" (\"INBOX\" \"Drafts\" \"Sent.%\")\r\n"),
            expected("BBB")
        );
        assert_eq!(
            f.run(b"BBC LIST \"\" (Sent.* inbox Sent.%2004 \"\" Drafts Sent.M*)\r\n"),
            expected("BBC")
        );
        // The reference goes in front of each pattern.
        assert_eq!(
            f.run(b"BBD LIST Sent. (%2004 M*)\r\n"),
            wire(&[
                r#"* LIST (\HasNoChildren) "." Sent.August2004"#,
                r#"* LIST (\HasNoChildren) "." Sent.March2004"#,
                "BBD OK LIST completed",
            ])
        );
        // In RFC 5258's syntax the empty pattern matches nothing (RFC 5258 §3).
        for command in [
            &b"e1 LIST \"\" (\"\")\r\n"[..],
            b"e1 LIST () \"\" \"\"\r\n",
            b"e1 LIST \"\" \"\" RETURN (CHILDREN)\r\n",
        ] {
            assert_eq!(f.run(command), ["e1 OK LIST completed\r\n"]);
        }
    }

    /// RFC 5258 §5 example 8: \HasChildren against CHILDINFO.
    #[test]
    fn rfc_5258_example_8_childinfo_for_subscribed_children() {
        let mut f = hierarchy(&["Foo.Bar", "Foo.Baz", "Moo"], &[]);
        assert_eq!(
            f.run(b"CA3 LIST \"\" \"%\" RETURN (CHILDREN)\r\n"),
            wire(&[
                r#"* LIST (\HasNoChildren) "." INBOX"#,
                r#"* LIST (\HasChildren) "." Foo"#,
                r#"* LIST (\HasNoChildren) "." Moo"#,
                "CA3 OK LIST completed",
            ])
        );
        // A) Only Foo.Baz is subscribed.
        subscribe_only(&f, &["Foo.Baz"]);
        assert_eq!(
            f.run(b"C02 LIST (SUBSCRIBED) \"\" \"*\"\r\n"),
            wire(&[
                r#"* LIST (\HasNoChildren \Subscribed) "." Foo.Baz"#,
                "C02 OK LIST completed",
            ])
        );
        assert_eq!(
            f.run(b"C03 LIST (SUBSCRIBED) \"\" \"%\"\r\n"),
            ["C03 OK LIST completed\r\n"]
        );
        assert_eq!(
            f.run(b"C04 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\"\r\n"),
            wire(&[
                r#"* LIST (\HasChildren) "." Foo ("CHILDINFO" ("SUBSCRIBED"))"#,
                "C04 OK LIST completed",
            ])
        );
        // A1) Foo is subscribed too.
        subscribe_only(&f, &["Foo", "Foo.Baz"]);
        assert_eq!(
            f.run(b"C04 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\"\r\n"),
            wire(&[
                r#"* LIST (\HasChildren \Subscribed) "." Foo ("CHILDINFO" ("SUBSCRIBED"))"#,
                "C04 OK LIST completed",
            ])
        );
        // B) Nothing is subscribed.
        subscribe_only(&f, &[]);
        assert_eq!(
            f.run(b"C04 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\"\r\n"),
            ["C04 OK LIST completed\r\n"]
        );
        // C) Foo and Moo are.
        subscribe_only(&f, &["Foo", "Moo"]);
        assert_eq!(
            f.run(b"C04 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\" RETURN (CHILDREN)\r\n"),
            wire(&[
                r#"* LIST (\HasChildren \Subscribed) "." Foo"#,
                r#"* LIST (\HasNoChildren \Subscribed) "." Moo"#,
                "C04 OK LIST completed",
            ])
        );
    }

    /// RFC 5258 §5 example 9: CHILDINFO whether or not a child matches the pattern, but
    /// (RFC 5258 §3.5's SHOULD) not where every child that meets the criteria is listed
    /// anyway: no baz2 line, and none for the pattern `*`.
    #[test]
    fn rfc_5258_example_9_childinfo_only_where_a_child_is_not_listed() {
        let subscribed = [
            "foo2.bar1",
            "foo2.bar2",
            "baz2.bar2",
            "baz2.bar22",
            "baz2.bar222",
            "eps2",
            "eps2.mamba",
            "qux2.bar2",
        ];
        let mut f = hierarchy(&subscribed, &subscribed);
        assert_eq!(
            f.run(b"D03 LIST (RECURSIVEMATCH SUBSCRIBED) \"\" \"*2\"\r\n"),
            wire(&[
                r#"* LIST (\HasNoChildren \Subscribed) "." baz2.bar2"#,
                r#"* LIST (\HasNoChildren \Subscribed) "." baz2.bar22"#,
                r#"* LIST (\HasNoChildren \Subscribed) "." baz2.bar222"#,
                r#"* LIST (\HasChildren \Subscribed) "." eps2 ("CHILDINFO" ("SUBSCRIBED"))"#,
                r#"* LIST (\HasChildren) "." foo2 ("CHILDINFO" ("SUBSCRIBED"))"#,
                r#"* LIST (\HasNoChildren \Subscribed) "." foo2.bar2"#,
                r#"* LIST (\HasNoChildren \Subscribed) "." qux2.bar2"#,
                "D03 OK LIST completed",
            ])
        );
        let everything = f.run(b"D04 LIST (RECURSIVEMATCH SUBSCRIBED) \"\" \"*\"\r\n");
        assert_eq!(everything.len(), subscribed.len() + 1, "{everything:?}");
        assert!(everything.iter().all(|line| !line.contains("CHILDINFO")));
    }

    /// A level of the hierarchy missing above a mailbox (what `store check --repair`
    /// makes of a Maildir folder alone): RFC 3501 LIST shows it \Noselect where `%`
    /// stops at it, RFC 5258 \NonExistent (RFC 5258 §5 example 11), neither when the
    /// mailbox below is listed itself; it has children, and gets no STATUS (RFC 5819).
    #[test]
    fn a_missing_level_is_noselect_or_nonexistent_and_has_children() {
        let mut f = hierarchy(&[], &[]);
        let owner = lifeboat_mailstore::Address::parse(USER).unwrap();
        let folder = f.store.folder_dir(&owner, "music.rock");
        lifeboat_mailstore::maildir::create_folder(&folder, true).unwrap();
        f.store.check(true).unwrap();
        f.deliver("music.rock", 1);
        assert_eq!(
            f.run(b"a1 LIST \"\" %\r\n"),
            wire(&[
                r#"* LIST (\HasNoChildren) "." INBOX"#,
                r#"* LIST (\Noselect \HasChildren) "." music"#,
                "a1 OK LIST completed",
            ])
        );
        assert_eq!(
            f.run(b"a2 LIST () \"\" % RETURN (STATUS (MESSAGES))\r\n"),
            wire(&[
                r#"* LIST (\HasNoChildren) "." INBOX"#,
                "* STATUS INBOX (MESSAGES 0)",
                r#"* LIST (\NonExistent \HasChildren) "." music"#,
                "a2 OK LIST completed",
            ])
        );
        assert_eq!(
            f.run(b"a3 LIST \"\" *\r\n"),
            wire(&[
                r#"* LIST (\HasNoChildren) "." INBOX"#,
                r#"* LIST (\HasNoChildren) "." music.rock"#,
                "a3 OK LIST completed",
            ])
        );
        assert_eq!(
            f.run(b"a4 LIST \"\" (% music.rock)\r\n"),
            wire(&[
                r#"* LIST (\HasNoChildren) "." INBOX"#,
                r#"* LIST (\HasNoChildren) "." music.rock"#,
                "a4 OK LIST completed",
            ])
        );
        // The repaired mailbox is subscribed (as CREATE makes one): LSUB and
        // RECURSIVEMATCH see it below the missing level.
        assert_eq!(
            f.run(b"a5 LSUB \"\" music\r\n"),
            wire(&[
                r#"* LSUB (\Noselect \HasChildren) "." music"#,
                "a5 OK LSUB completed",
            ])
        );
        assert_eq!(
            f.run(b"a6 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" m%\r\n"),
            wire(&[
                r#"* LIST (\NonExistent \HasChildren) "." music ("CHILDINFO" ("SUBSCRIBED"))"#,
                "a6 OK LIST completed",
            ])
        );
    }

    /// RFC 6154 §5.1: the SPECIAL-USE selection option lists only the special-use
    /// mailboxes; the return option asks for what every LIST says anyway.
    #[test]
    fn special_use_selection_and_return_options() {
        let mut f = Fixture::logged_in(0);
        f.run(b"a0 CREATE Sent.2025\r\n");
        assert_eq!(
            f.run(b"a1 LIST (SPECIAL-USE) \"\" *\r\n"),
            wire(&[
                r#"* LIST (\HasNoChildren \Archive) "." Archive"#,
                r#"* LIST (\HasNoChildren \Drafts) "." Drafts"#,
                r#"* LIST (\HasNoChildren \Junk) "." Junk"#,
                r#"* LIST (\HasChildren \Sent) "." Sent"#,
                r#"* LIST (\HasNoChildren \Trash) "." Trash"#,
                "a1 OK LIST completed",
            ])
        );
        assert_eq!(
            f.run(b"a2 LIST \"\" (Sent Sent.%) RETURN (SPECIAL-USE)\r\n"),
            wire(&[
                r#"* LIST (\HasChildren \Sent) "." Sent"#,
                r#"* LIST (\HasNoChildren) "." Sent.2025"#,
                "a2 OK LIST completed",
            ])
        );
        f.run(b"a3 UNSUBSCRIBE Junk\r\n");
        assert_eq!(
            f.run(b"a4 LIST (SPECIAL-USE SUBSCRIBED) \"\" J*\r\n"),
            ["a4 OK LIST completed\r\n"]
        );
        assert_eq!(
            f.run(b"a5 LIST (SPECIAL-USE RECURSIVEMATCH) \"\" %\r\n"),
            wire(&[
                r#"* LIST (\HasNoChildren \Archive) "." Archive"#,
                r#"* LIST (\HasNoChildren \Drafts) "." Drafts"#,
                r#"* LIST (\HasNoChildren \Junk) "." Junk"#,
                r#"* LIST (\HasChildren \Sent) "." Sent"#,
                r#"* LIST (\HasNoChildren \Trash) "." Trash"#,
                "a5 OK LIST completed",
            ])
        );
    }

    /// RFC 5819 §3's examples: a STATUS line after the LIST line of each mailbox that
    /// meets the criteria, none for a name that cannot be selected (bar, a missing level
    /// here) nor for one listed only for CHILDINFO.
    #[test]
    fn rfc_5819_list_status() {
        let mut f = hierarchy(&["foo", "bar.baz"], &["INBOX", "foo.x"]);
        let owner = lifeboat_mailstore::Address::parse(USER).unwrap();
        for n in 1..=3 {
            f.deliver("INBOX", n);
        }
        f.deliver("foo", 4);
        f.run(b"s SELECT INBOX\r\n");
        f.run(b"s STORE 1 +FLAGS.SILENT (\\Seen)\r\n");
        f.run(b"s UNSELECT\r\n");
        // bar stays only as the level above bar.baz.
        let baz = f.store.folder_dir(&owner, "bar.baz");
        f.run(b"d DELETE bar.baz\r\n");
        f.run(b"d DELETE bar\r\n");
        lifeboat_mailstore::maildir::create_folder(&baz, true).unwrap();
        f.store.check(true).unwrap();
        f.run(b"c CREATE foo.x\r\n");
        subscribe_only(&f, &["INBOX", "foo.x"]);
        assert_eq!(
            f.run(b"A01 LIST \"\" % RETURN (STATUS (MESSAGES UNSEEN))\r\n"),
            wire(&[
                r#"* LIST (\HasNoChildren) "." INBOX"#,
                "* STATUS INBOX (MESSAGES 3 UNSEEN 2)",
                r#"* LIST (\NonExistent \HasChildren) "." bar"#,
                r#"* LIST (\HasChildren) "." foo"#,
                "* STATUS foo (MESSAGES 1 UNSEEN 1)",
                "A01 OK LIST completed",
            ])
        );
        // As RFC 5819 writes it, without the space RFC 5258's grammar has after `)`.
        assert_eq!(
            f.run(b"A02 LIST (SUBSCRIBED RECURSIVEMATCH)\"\" % RETURN (STATUS (MESSAGES))\r\n"),
            wire(&[
                r#"* LIST (\HasNoChildren \Subscribed) "." INBOX"#,
                "* STATUS INBOX (MESSAGES 3)",
                r#"* LIST (\HasChildren) "." foo ("CHILDINFO" ("SUBSCRIBED"))"#,
                "A02 OK LIST completed",
            ])
        );
        // Every item STATUS takes, in the order asked.
        let inbox = f.mailbox("INBOX");
        let size: u64 = f.messages("INBOX").iter().map(|m| m.size).sum();
        assert_eq!(
            f.run(
                b"A03 LIST \"\" INBOX RETURN (STATUS (SIZE HIGHESTMODSEQ DELETED UIDVALIDITY \
                  UIDNEXT RECENT UNSEEN MESSAGES))\r\n"
            )[1],
            format!(
                "* STATUS INBOX (SIZE {size} HIGHESTMODSEQ {} DELETED 0 UIDVALIDITY {} \
                 UIDNEXT 4 RECENT 0 UNSEEN 2 MESSAGES 3)\r\n",
                inbox.highest_modseq, inbox.uidvalidity
            )
        );
    }

    #[test]
    fn list_status_reports_news_of_the_selected_mailbox_first() {
        let mut f = Fixture::selected(1);
        f.deliver("INBOX", 2);
        assert_eq!(
            f.run(b"a1 LIST \"\" INBOX RETURN (STATUS (MESSAGES))\r\n"),
            wire(&[
                "* 2 EXISTS",
                "* 1 RECENT",
                r#"* LIST (\HasNoChildren) "." INBOX"#,
                "* STATUS INBOX (MESSAGES 2)",
                "a1 OK LIST completed",
            ])
        );
    }

    #[test]
    fn an_extended_list_needs_a_login() {
        let mut f = Fixture::new();
        assert_eq!(f.run(b"a1 LIST () \"\" *\r\n"), ["a1 BAD log in first\r\n"]);
    }

    /// RFC 8438 §3: `STATUS blurdybloop (SIZE)`, the octets of the messages as FETCH
    /// RFC822.SIZE counts them; expunged ones no longer count.
    #[test]
    fn rfc_8438_status_size() {
        let mut f = Fixture::logged_in(0);
        f.run(b"a0 CREATE blurdybloop\r\n");
        assert_eq!(
            f.run(b"A042 STATUS blurdybloop (SIZE)\r\n"),
            [
                "* STATUS blurdybloop (SIZE 0)\r\n",
                "A042 OK STATUS completed\r\n"
            ]
        );
        for n in [1, 22, 333] {
            f.deliver("blurdybloop", n);
        }
        f.run(b"a1 SELECT blurdybloop\r\n");
        let sizes = f.run(b"a2 FETCH 1:3 RFC822.SIZE\r\n");
        let size = |line: &String| -> u64 {
            let digits = line.rsplit(' ').next().unwrap().trim_end_matches(")\r\n");
            digits.parse().unwrap()
        };
        let total: u64 = sizes[..3].iter().map(size).sum();
        assert_eq!(
            f.run(b"A042 STATUS blurdybloop (SIZE MESSAGES)\r\n")[0],
            format!("* STATUS blurdybloop (SIZE {total} MESSAGES 3)\r\n")
        );
        f.run(b"a3 STORE 2 +FLAGS.SILENT (\\Deleted)\r\n");
        f.run(b"a4 EXPUNGE\r\n");
        assert_eq!(
            f.run(b"A043 STATUS blurdybloop (SIZE)\r\n")[0],
            format!(
                "* STATUS blurdybloop (SIZE {})\r\n",
                total - size(&sizes[1])
            )
        );
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
                "* LIST (\\HasChildren) \".\" INBOX\r\n",
                "* LIST (\\HasNoChildren) \".\" INBOX.x\r\n",
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
                "* LIST (\\HasNoChildren) \".\" Entw&APw-rfe\r\n",
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
