//! Changing a message's flags and keywords, and finding its file wherever its name
//! (which carries the flags, Maildir style) is at the time of use.
//!
//! Several sessions change the flags of one message at once (a phone and a laptop), each
//! from its own, possibly stale, view. So a change is an edit (add, remove, replace)
//! applied in the writer's transaction to the message as the index has it then, and the
//! file is renamed from the name the index gives it then: two sessions' changes both
//! take effect, in the order they commit, and neither fails on a name the other changed.
//! Readers do not hold the writer, so a file they look for may have been renamed since
//! they read the index: [`Store::read_message`] looks for it again by its basename.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use crate::address::Address;
use crate::error::{IoContext, Result};
use crate::maildir::{FileName, Flags};
use crate::reader::MessageRecord;
use crate::store::Store;

/// How an edit combines with the flags a message has (IMAP STORE's `+FLAGS`, `-FLAGS`
/// and `FLAGS`, RFC 3501 §6.4.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagOp {
    Add,
    Remove,
    Replace,
}

/// A change of flags and keywords, applied to each message as it is when the change
/// commits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlagEdit {
    pub op: FlagOp,
    pub flags: Flags,
    /// Keywords compare without case (RFC 3501 §2.3.2 leaves it open; clients expect
    /// it); one already on the message keeps its spelling.
    pub keywords: Vec<String>,
    /// CONDSTORE's UNCHANGEDSINCE (RFC 7162 §3.1.3): a message whose modseq is above
    /// it is left alone, checked in the same transaction as the change.
    pub unchanged_since: Option<i64>,
}

impl FlagEdit {
    pub fn new(op: FlagOp, flags: Flags, keywords: Vec<String>) -> FlagEdit {
        FlagEdit {
            op,
            flags,
            keywords,
            unchanged_since: None,
        }
    }

    /// The flags and keywords a message with `flags` and `keywords` gets.
    pub fn applied_to(&self, flags: Flags, keywords: &[String]) -> (Flags, Vec<String>) {
        let named = |k: &String| self.keywords.iter().any(|x| x.eq_ignore_ascii_case(k));
        match self.op {
            FlagOp::Replace => (self.flags, self.keywords.clone()),
            FlagOp::Add => {
                let mut all = keywords.to_vec();
                for k in &self.keywords {
                    if !all.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                        all.push(k.clone());
                    }
                }
                (flags.union(self.flags), all)
            }
            FlagOp::Remove => (
                flags.without(self.flags),
                keywords.iter().filter(|k| !named(k)).cloned().collect(),
            ),
        }
    }
}

/// What an edit did to one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagOutcome {
    /// Its flags changed; its new modseq.
    Changed(i64),
    /// It already had the flags asked for.
    Unchanged,
    /// Left alone: changed after the edit's UNCHANGEDSINCE.
    Modified,
    /// Not in the mailbox (any more): expunged meanwhile.
    Gone,
}

/// A message's flag state as the index has it inside the writer's transaction.
struct Current {
    basename: String,
    flags: Flags,
    keywords: Vec<String>,
    modseq: i64,
}

impl Store {
    /// Applies `edit` to the messages `rows` of one folder, each as the index has it
    /// when the transaction runs; each changed message gets a new modseq. Returns each
    /// row's outcome, in input order.
    ///
    /// The file is renamed to carry the new flags before the index row changes. If the
    /// process dies between the two, the index still names the old flags and the file
    /// is found by its basename (by [`Store::read_message`], and here at the next edit).
    pub fn edit_flags(
        &self,
        owner: &Address,
        folder: &str,
        mailbox_id: i64,
        rows: Vec<i64>,
        edit: FlagEdit,
    ) -> Result<Vec<(i64, FlagOutcome)>> {
        let cur = self.folder_dir(owner, folder).join("cur");
        self.write(move |conn| {
            rows.into_iter()
                .map(|row| Ok((row, edit_one(conn, &cur, mailbox_id, row, &edit)?)))
                .collect()
        })
    }

    /// The bytes of a stored message, wherever its file is now (see
    /// [`Store::read_file`]). The record may be older than the last flag change.
    pub fn read_message(
        &self,
        owner: &Address,
        folder: &str,
        message: &MessageRecord,
    ) -> Result<Vec<u8>> {
        let cur = self.folder_dir(owner, folder).join("cur");
        let indexed = || {
            self.with_reader(|r| r.message_flags(message.row))
                .ok()
                .flatten()
        };
        read_whole(&cur, &message.basename, message.flags, indexed)
    }

    /// The bytes of the file `basename`, looked for with `flags` in its name first,
    /// then with whatever flags it carries now.
    pub fn read_file(
        &self,
        owner: &Address,
        folder: &str,
        basename: &str,
        flags: Flags,
    ) -> Result<Vec<u8>> {
        let cur = self.folder_dir(owner, folder).join("cur");
        read_whole(&cur, basename, flags, || None)
    }
}

/// Applies `edit` to message `row` as the index has it now, renaming its file.
fn edit_one(
    conn: &Connection,
    cur: &Path,
    mailbox_id: i64,
    row: i64,
    edit: &FlagEdit,
) -> Result<FlagOutcome> {
    let Some(current) = current(conn, mailbox_id, row)? else {
        return Ok(FlagOutcome::Gone);
    };
    if edit
        .unchanged_since
        .is_some_and(|since| current.modseq > since)
    {
        return Ok(FlagOutcome::Modified);
    }
    let (flags, keywords) = edit.applied_to(current.flags, &current.keywords);
    if flags == current.flags && keywords == current.keywords {
        return Ok(FlagOutcome::Unchanged);
    }
    if flags != current.flags {
        rename(cur, &current.basename, current.flags, flags)?;
    }
    let modseq: i64 = conn
        .prepare_cached(
            "UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ?1
             RETURNING highestmodseq",
        )?
        .query_row([mailbox_id], |r| r.get(0))?;
    conn.prepare_cached(
        "UPDATE messages SET flags = ?1, keywords = ?2, modseq = ?3 WHERE id = ?4",
    )?
    .execute(params![flags.bits(), keywords.join(" "), modseq, row])?;
    Ok(FlagOutcome::Changed(modseq))
}

/// The message's flags, keywords and modseq in the writer's transaction; `None` when it
/// is not in the mailbox or was expunged.
fn current(conn: &Connection, mailbox_id: i64, row: i64) -> Result<Option<Current>> {
    Ok(conn
        .prepare_cached(
            "SELECT basename, flags, keywords, modseq FROM messages
             WHERE id = ?1 AND mailbox_id = ?2 AND expunged_at IS NULL",
        )?
        .query_row(params![row, mailbox_id], |r| {
            Ok(Current {
                basename: r.get(0)?,
                flags: Flags::from_bits(r.get(1)?),
                keywords: r
                    .get::<_, String>(2)?
                    .split_whitespace()
                    .map(str::to_string)
                    .collect(),
                modseq: r.get(3)?,
            })
        })
        .optional()?)
}

/// Renames the file from the name the index has (`indexed` flags) to one with `flags`.
/// Flag renames all run on the writer, so the index's name is the file's, unless a crash
/// or a failed commit came between an earlier rename and its row: then the file is found
/// by its basename.
fn rename(cur: &Path, basename: &str, indexed: Flags, flags: Flags) -> Result<()> {
    let to = cur.join(FileName::cur_name(basename, flags));
    let from = cur.join(FileName::cur_name(basename, indexed));
    match std::fs::rename(&from, &to) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let Some(found) = find_by_basename(cur, basename) else {
                return Err(e).context(|| format!("renaming {}", from.display()));
            };
            std::fs::rename(&found, &to).context(|| format!("renaming {}", found.display()))
        }
        result => result.context(|| format!("renaming {}", from.display())),
    }
}

/// How often a reader looks for a file again before it gives up: each look starts
/// after the last one failed, and a file is renamed only by a commit of the writer, so
/// a file that exists is missed only when flag changes keep landing in between.
const LOOKS: usize = 4;

/// Reads the file of message `basename` in `cur`, however its flags changed since the
/// caller read the index: it is opened by the name with `hint` flags, else by the name
/// the index gives now (`indexed`), else by any name with its basename. Once open, a
/// rename no longer matters.
fn read_whole(
    cur: &Path,
    basename: &str,
    hint: Flags,
    indexed: impl Fn() -> Option<Flags>,
) -> Result<Vec<u8>> {
    let first = cur.join(FileName::cur_name(basename, hint));
    let mut file = match File::open(&first) {
        Err(e) if e.kind() == ErrorKind::NotFound => (0..LOOKS)
            .find_map(|_| open_renamed(cur, basename, &indexed))
            .ok_or(e),
        result => result,
    }
    .context(|| format!("reading {}", first.display()))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .context(|| format!("reading {}", first.display()))?;
    Ok(bytes)
}

/// One look for a renamed file: the index's name, then every name Lifeboat gives the
/// basename (the 32 sets of flags: a flag change that has renamed the file but not
/// committed yet), then the folder's listing (names another program wrote).
fn open_renamed(cur: &Path, basename: &str, indexed: impl Fn() -> Option<Flags>) -> Option<File> {
    let open = |path: PathBuf| File::open(path).ok();
    indexed()
        .and_then(|flags| open(cur.join(FileName::cur_name(basename, flags))))
        .or_else(|| {
            Flags::all_sets().find_map(|flags| open(cur.join(FileName::cur_name(basename, flags))))
        })
        .or_else(|| find_by_basename(cur, basename).and_then(open))
}

/// The file in `cur` whose basename is `basename`, whatever flags its name carries.
pub(crate) fn find_by_basename(cur: &Path, basename: &str) -> Option<PathBuf> {
    let prefix = format!("{basename}:2,");
    std::fs::read_dir(cur)
        .ok()?
        .filter_map(|entry| entry.ok())
        .find(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
        .map(|entry| entry.path())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Class, NewMessage};

    #[test]
    fn a_stale_record_reads_the_message_while_its_flags_keep_changing() {
        let (_dir, store, owner) = crate::testing::store_with_user("a@x.test");
        store
            .deliver(NewMessage::new(
                owner.clone(),
                "INBOX",
                b"Subject: x\r\n\r\nbody\r\n".to_vec(),
                Class::Other,
            ))
            .unwrap();
        let reader = store.reader().unwrap();
        let user = reader.user("a@x.test").unwrap().unwrap();
        let mailbox = reader.mailbox(user.id, "INBOX").unwrap().unwrap();
        let stale = reader.messages(mailbox.id).unwrap().remove(0);
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let changer = {
            let (store, owner, stale, done) =
                (store.clone(), owner.clone(), stale.clone(), done.clone());
            std::thread::spawn(move || {
                for n in 0..300 {
                    let next = [Flags::SEEN, Flags::FLAGGED, Flags::empty()][n % 3];
                    change_flags_to(&store, &owner, mailbox.id, &stale, next);
                }
                done.store(true, std::sync::atomic::Ordering::Relaxed);
            })
        };
        let mut reads = 0;
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            let read = store.read_message(&owner, "INBOX", &stale);
            assert!(read.is_ok(), "read {reads}: {read:?}");
            reads += 1;
        }
        changer.join().unwrap();
        assert!(reads > 0);
    }

    #[test]
    fn flags_rename_the_file_and_bump_modseq() {
        let (_dir, store, owner) = crate::testing::store_with_user("a@x.test");
        let stored = store
            .deliver(NewMessage::new(
                owner.clone(),
                "INBOX",
                b"Subject: x\r\n\r\nbody\r\n".to_vec(),
                Class::Other,
            ))
            .unwrap();
        let reader = store.reader().unwrap();
        let user = reader.user("a@x.test").unwrap().unwrap();
        let mailbox = reader.mailbox(user.id, "INBOX").unwrap().unwrap();
        let before = reader.messages(mailbox.id).unwrap().remove(0);
        let edit = FlagEdit::new(
            FlagOp::Add,
            Flags::SEEN.union(Flags::FLAGGED),
            vec!["$Important".into()],
        );
        let outcomes = store
            .edit_flags(
                &owner,
                "INBOX",
                mailbox.id,
                vec![stored.message_row],
                edit.clone(),
            )
            .unwrap();
        let after = reader.messages(mailbox.id).unwrap().remove(0);
        assert_eq!(after.flags, Flags::SEEN.union(Flags::FLAGGED));
        assert_eq!(after.keywords, ["$Important"]);
        assert_eq!(outcomes, [(after.row, FlagOutcome::Changed(after.modseq))]);
        assert!(after.modseq > before.modseq);
        assert!(
            store
                .message_path(&owner, "INBOX", &after)
                .ends_with(format!("{}:2,FS", after.basename))
        );
        // The old record (old flags) still finds the bytes, as after a crash mid-change.
        assert_eq!(
            store.read_message(&owner, "INBOX", &before).unwrap(),
            store.read_message(&owner, "INBOX", &after).unwrap()
        );
        let again = store
            .edit_flags(&owner, "INBOX", mailbox.id, vec![after.row, 999], edit)
            .unwrap();
        assert_eq!(
            again,
            [
                (after.row, FlagOutcome::Unchanged),
                (999, FlagOutcome::Gone)
            ]
        );
    }

    #[test]
    fn edits_apply_to_the_flags_as_they_are_when_they_commit() {
        let (_dir, store, owner) = crate::testing::store_with_user("a@x.test");
        let stored = store
            .deliver(NewMessage::new(
                owner.clone(),
                "INBOX",
                b"Subject: x\r\n\r\nbody\r\n".to_vec(),
                Class::Other,
            ))
            .unwrap();
        let (row, mailbox) = (stored.message_row, stored.mailbox_id);
        let edit = |op, flags, keywords: &[&str]| {
            let keywords = keywords.iter().map(|k| k.to_string()).collect();
            store
                .edit_flags(
                    &owner,
                    "INBOX",
                    mailbox,
                    vec![row],
                    FlagEdit::new(op, flags, keywords),
                )
                .unwrap()
        };
        edit(FlagOp::Add, Flags::SEEN, &["$Work"]);
        edit(FlagOp::Add, Flags::FLAGGED, &["$later", "$WORK"]);
        edit(FlagOp::Remove, Flags::SEEN, &["$work"]);
        let message = store.reader().unwrap().messages(mailbox).unwrap().remove(0);
        assert_eq!(message.flags, Flags::FLAGGED);
        assert_eq!(message.keywords, ["$later"]);
        let mut conditional = FlagEdit::new(FlagOp::Replace, Flags::DRAFT, vec![]);
        conditional.unchanged_since = Some(message.modseq - 1);
        let refused = store
            .edit_flags(&owner, "INBOX", mailbox, vec![row], conditional.clone())
            .unwrap();
        assert_eq!(refused, [(row, FlagOutcome::Modified)]);
        conditional.unchanged_since = Some(message.modseq);
        let done = store
            .edit_flags(&owner, "INBOX", mailbox, vec![row], conditional)
            .unwrap();
        assert!(
            matches!(done[..], [(_, FlagOutcome::Changed(_))]),
            "{done:?}"
        );
        let message = store.reader().unwrap().messages(mailbox).unwrap().remove(0);
        assert_eq!((message.flags, message.keywords.len()), (Flags::DRAFT, 0));
        assert!(store.read_message(&owner, "INBOX", &message).is_ok());
    }

    /// Changes the message's flags to `to`.
    fn change_flags_to(
        store: &Store,
        owner: &Address,
        mailbox_id: i64,
        message: &MessageRecord,
        to: Flags,
    ) {
        let edit = FlagEdit::new(FlagOp::Replace, to, vec![]);
        store
            .edit_flags(owner, "INBOX", mailbox_id, vec![message.row], edit)
            .unwrap();
    }
}
