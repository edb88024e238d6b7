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

    /// The header of a stored message: its bytes up to and including the empty line
    /// that ends the header (the whole file when there is none), read without the body,
    /// for what needs only header fields (IMAP SORT and THREAD keys, SEARCH FROM and
    /// SUBJECT). Found like [`Store::read_message`] finds the file.
    pub fn read_header(
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
        let (path, file) = open_message(&cur, &message.basename, message.flags, indexed)?;
        read_to_header_end(file).context(|| format!("reading {}", path.display()))
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
    let (path, mut file) = open_message(cur, basename, hint, indexed)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .context(|| format!("reading {}", path.display()))?;
    Ok(bytes)
}

/// Opens the file of message `basename` in `cur` (see [`read_whole`]); the path named
/// in errors with it.
fn open_message(
    cur: &Path,
    basename: &str,
    hint: Flags,
    indexed: impl Fn() -> Option<Flags>,
) -> Result<(PathBuf, File)> {
    let first = cur.join(FileName::cur_name(basename, hint));
    let file = match File::open(&first) {
        Err(e) if e.kind() == ErrorKind::NotFound => (0..LOOKS)
            .find_map(|_| open_renamed(cur, basename, &indexed))
            .ok_or(e),
        result => result,
    }
    .context(|| format!("reading {}", first.display()))?;
    Ok((first, file))
}

/// Bytes read at a time while looking for the end of a header: most headers fit in one.
const HEADER_CHUNK: usize = 16 * 1024;

/// Reads `file` up to and including the first empty line (`\r\n` or `\n` alone on its
/// line), or to its end when there is none, as IMAP's `BODY[HEADER]` draws the line.
fn read_to_header_end(mut file: impl Read) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut searched = 0;
    loop {
        let start = bytes.len();
        bytes.resize(start + HEADER_CHUNK, 0);
        let n = file.read(&mut bytes[start..])?;
        bytes.truncate(start + n);
        if let Some(end) = header_end(&bytes, searched) {
            bytes.truncate(end);
            return Ok(bytes);
        }
        if n == 0 {
            return Ok(bytes);
        }
        // A line end split across reads is looked at again with the next chunk.
        searched = bytes.len().saturating_sub(2);
    }
}

/// Where the header in `bytes` ends (just after its empty line), looking at line
/// starts from `from` on; `None` when no empty line is complete yet.
fn header_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut line_start = from;
    // `from` may sit inside a line: step to the next line start first, unless it is 0.
    if line_start > 0 {
        line_start = bytes[line_start - 1..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|at| line_start + at)?;
    }
    while line_start < bytes.len() {
        match &bytes[line_start..] {
            [b'\n', ..] => return Some(line_start + 1),
            [b'\r', b'\n', ..] => return Some(line_start + 2),
            [b'\r'] => return None,
            _ => {}
        }
        let rest = &bytes[line_start..];
        line_start += rest.iter().position(|&b| b == b'\n')? + 1;
    }
    None
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

    #[test]
    fn a_header_is_read_to_its_empty_line_and_no_further() {
        let (_dir, store, owner) = crate::testing::store_with_user("a@x.test");
        let mut big = b"Subject: big\r\nFrom: a@x.test\r\n\r\n".to_vec();
        big.resize(3 * HEADER_CHUNK, b'x');
        store
            .deliver(NewMessage::new(owner.clone(), "INBOX", big, Class::Other))
            .unwrap();
        let message = &store.reader().unwrap().messages(1).unwrap()[0];
        let whole = store.read_message(&owner, "INBOX", message).unwrap();
        let header = store.read_header(&owner, "INBOX", message).unwrap();
        assert!(header.ends_with(b"From: a@x.test\r\n\r\n"), "{header:?}");
        assert!(whole.starts_with(&header) && whole.len() > 2 * HEADER_CHUNK);
    }

    /// A reader handing out `step` bytes at a time, so line ends split across reads.
    struct Trickle<'a> {
        bytes: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    #[test]
    fn the_header_end_is_found_however_the_bytes_arrive() {
        for (message, header) in [
            (
                &b"A: 1\r\nB: 2\r\n\r\nbody\r\n\r\nmore"[..],
                &b"A: 1\r\nB: 2\r\n\r\n"[..],
            ),
            (b"A: 1\nB: 2\n\nbody", b"A: 1\nB: 2\n\n"),
            (b"\r\nbody only", b"\r\n"),
            (b"\nbody only", b"\n"),
            (b"A: 1\r\n folded\r\n\r\n", b"A: 1\r\n folded\r\n\r\n"),
            (
                b"A: no empty line\r\nB: 2\r\n",
                b"A: no empty line\r\nB: 2\r\n",
            ),
            (
                b"A: 1\r\n\rX: not blank\r\n\r\nbody",
                b"A: 1\r\n\rX: not blank\r\n\r\n",
            ),
            (b"", b""),
        ] {
            for step in [1, 2, 3, 5, 64] {
                let read = read_to_header_end(Trickle {
                    bytes: message,
                    step,
                })
                .unwrap();
                assert_eq!(
                    read,
                    header,
                    "{:?} by {step}",
                    String::from_utf8_lossy(message)
                );
            }
        }
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
