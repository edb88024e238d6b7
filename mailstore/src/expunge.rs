//! Removing messages from a user's view: POP3 DELE + QUIT, IMAP EXPUNGE.
//!
//! A user deleting a message must never destroy a copy the origin has not received yet.
//! POP3 clients delete after download by default, so during an outage most diverted
//! copies would otherwise vanish before replay. The rule, by the copy's replay ledger
//! state:
//!
//! - no ledger row (journal and other copies) or `delivered`: the index row (and ledger
//!   row) is deleted, then the file is removed;
//! - `pending` or `rejected`: the copy is *hidden* (`messages.expunged_at` is set). Users
//!   never see it again, but its file and rows stay, so replay still delivers it (and an
//!   admin still finds a rejected one). Once replay has delivered it,
//!   [`Store::purge_expunged`] removes it.
//!
//! UIDs are never reused either way: `uidnext` only grows. Every path that takes a
//! message out of a user's view (these, MOVE, expiry, a cancelled capture, `store check
//! --repair`) does it through [`record_expunges`] in the same transaction: the mailbox's
//! HIGHESTMODSEQ moves, so every IMAP session notices, and a tombstone per UID tells an
//! IMAP QRESYNC client that was away which messages left since when
//! ([`crate::Reader::expunged_since`]). Expiry keeps the newest [`TOMBSTONES_KEPT`] per
//! mailbox.
//!
//! Expiry ([`Store::expire`], `lifeboat expire` and `serve`'s daily run) follows the same
//! rule by age: journal copies and `delivered` copies whose internal date is older than
//! the cut-off go (rows first, in one transaction, then files); `pending` and `rejected`
//! copies, and copies of any other class without a ledger row, stay.
//!
//! Every removal marks its files first: a name in the folder's `tmp/` (what a delivery
//! leaves while it is in flight), made durable in the same transaction that deletes the
//! rows. A crash after the commit and before the files are gone then leaves files whose
//! rows are gone *with* their markers, and the next holder of the delivery lock removes
//! them (`Store::lock_for_delivery`: a marked file the index does not know goes). Without
//! the marker such a file would look unindexed, and `store check --repair` would index it
//! again from its trace block: a copy the origin already has would be replayed a second
//! time. A crash before the commit leaves rows and files, and only the markers go.

use std::fs;
use std::io;
use std::path::PathBuf;

use rusqlite::{Connection, OptionalExtension, params};

use crate::address::Address;
use crate::error::{Error, IoContext, Result};
use crate::maildir::{FileName, Flags};
use crate::store::{Store, now};

/// What [`Store::expunge`] did with each requested UID.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExpungeReport {
    /// Gone for good: rows deleted and files removed.
    pub removed: Vec<u32>,
    /// Hidden from the user but kept, because the origin has not received them.
    pub kept_for_replay: Vec<u32>,
}

/// What [`Store::expire`] removed, per user and class (`journal`, `diverted`, `sent`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExpireReport {
    /// (user, class) -> copies removed.
    pub removed: std::collections::BTreeMap<(String, String), usize>,
    /// Hidden copies whose replay finished, removed by [`Store::purge_expunged`].
    pub purged: usize,
}

impl ExpireReport {
    /// Copies removed by age (not counting `purged`).
    pub fn total(&self) -> usize {
        self.removed.values().sum()
    }
}

/// A file whose index row is gone, to remove once the transaction has committed.
pub(crate) struct Doomed {
    owner: String,
    folder: String,
    basename: String,
    flags: Flags,
}

impl Store {
    /// Removes `uids` from the user's view of mailbox `mailbox_id`, in one transaction on
    /// the single writer. UIDs that are not in the mailbox (or already expunged) are
    /// ignored. Copies still waiting for replay are hidden, not removed (module docs).
    pub fn expunge(&self, mailbox_id: i64, uids: &[u32]) -> Result<ExpungeReport> {
        self.require_delivery_lock()?;
        let uids = uids.to_vec();
        let store = self.clone();
        let (report, doomed) = self.write(move |conn| {
            let (report, doomed) = expunge_rows(conn, mailbox_id, &uids)?;
            store.mark_for_removal(&doomed)?;
            Ok((report, doomed))
        })?;
        self.remove_files(doomed);
        Ok(report)
    }

    /// Removes hidden copies whose replay has finished (`delivered`): replay and expiry
    /// call this. Returns how many went. Rejected copies stay until an admin acts.
    pub fn purge_expunged(&self) -> Result<usize> {
        self.require_delivery_lock()?;
        let store = self.clone();
        let doomed = self.write(move |conn| {
            let doomed = purge_rows(conn)?;
            store.mark_for_removal(&doomed)?;
            Ok(doomed)
        })?;
        let count = doomed.len();
        self.remove_files(doomed);
        Ok(count)
    }

    /// Removes journal copies and copies replay has delivered whose internal date is
    /// before `cutoff` (seconds since the epoch), then purges hidden copies whose replay
    /// finished. Pending and rejected copies are never touched (docs/design.md §4.5).
    /// Rows go in one transaction on the single writer, then the files
    /// ([`Store::remove_files`]); the files are marked for removal first, so a crash in
    /// between leaves files the next start removes (module docs).
    /// Expiry also drops all but the newest [`TOMBSTONES_KEPT`] tombstones of each
    /// mailbox.
    pub fn expire(&self, cutoff: i64) -> Result<ExpireReport> {
        let (removed, doomed) = self.expire_rows(cutoff)?;
        self.remove_files(doomed);
        let purged = self.purge_expunged()?;
        Ok(ExpireReport { removed, purged })
    }

    /// Removes the copies the milter made of the message Postfix queued as `queue_id`,
    /// because Postfix then refused (or discarded) that message: a milter after
    /// Lifeboat's said no at end of message, after Lifeboat's copies were durable
    /// (docs/design.md §5.1). Only copies nothing has used yet go: journal copies, and
    /// diverted copies still `pending` with no replay attempt, made in the last
    /// [`CANCEL_WINDOW`] seconds (Postfix's queue ids are unique only among the
    /// messages in its queue). Returns how many went.
    pub fn cancel_capture(&self, queue_id: &str) -> Result<usize> {
        self.require_delivery_lock()?;
        let (store, queue_id) = (self.clone(), queue_id.to_string());
        let doomed = self.write(move |conn| {
            let doomed = cancel_rows(conn, &queue_id, now() - CANCEL_WINDOW)?;
            store.mark_for_removal(&doomed)?;
            Ok(doomed)
        })?;
        let count = doomed.len();
        self.remove_files(doomed);
        Ok(count)
    }

    /// Expiry's first half: the rows go, in one transaction that also makes the files'
    /// removal markers durable. [`Store::remove_files`] is the second half.
    fn expire_rows(&self, cutoff: i64) -> Result<(ExpiredCounts, Vec<Doomed>)> {
        self.require_delivery_lock()?;
        let store = self.clone();
        self.write(move |conn| {
            let (removed, doomed) = expire_rows(conn, cutoff)?;
            store.mark_for_removal(&doomed)?;
            drop_old_tombstones(conn, TOMBSTONES_KEPT)?;
            Ok((removed, doomed))
        })
    }

    /// Keeps only about the newest `keep` tombstones of each mailbox (see
    /// [`record_expunges`]; expiry keeps [`TOMBSTONES_KEPT`]). Returns how many went.
    pub fn forget_old_tombstones(&self, keep: usize) -> Result<usize> {
        self.write(move |conn| drop_old_tombstones(conn, keep))
    }

    /// Puts a marker for each doomed file in its folder's `tmp/` and makes them durable;
    /// runs inside the transaction that deletes the rows, before its commit.
    pub(crate) fn mark_for_removal(&self, doomed: &[Doomed]) -> Result<()> {
        let mut dirs = std::collections::BTreeSet::new();
        for file in doomed {
            let Ok(owner) = Address::parse(&file.owner) else {
                continue;
            };
            let tmp = self.folder_dir(&owner, &file.folder).join("tmp");
            let marker = tmp.join(&file.basename);
            crate::private::open_file(&marker)
                .context(|| format!("marking {} for removal", marker.display()))?;
            dirs.insert(tmp);
        }
        for dir in dirs {
            crate::maildir::fsync_dir(&dir).context(|| format!("fsync {}", dir.display()))?;
        }
        Ok(())
    }

    /// The rows are committed as gone before their files are removed, and each file was
    /// marked for removal in that transaction: a crash in between leaves a marked file
    /// that the next start removes, never a row without its file nor a file that repair
    /// would index (and replay) again. The marker goes last.
    pub(crate) fn remove_files(&self, doomed: Vec<Doomed>) {
        for file in doomed {
            let Ok(owner) = Address::parse(&file.owner) else {
                continue;
            };
            let folder_dir = self.folder_dir(&owner, &file.folder);
            let marker = folder_dir.join("tmp").join(&file.basename);
            let cur = folder_dir.join("cur");
            let path: PathBuf = cur.join(FileName::cur_name(&file.basename, file.flags));
            // A flag change (IMAP STORE) queued before this expunge's commit may have
            // renamed the file since: find it by its basename.
            let path = if path.exists() {
                Some(path)
            } else {
                crate::flags::find_by_basename(&cur, &file.basename)
            };
            let removed = match path.map(|path| (fs::remove_file(&path), path)) {
                None => true,
                Some((Ok(()), _)) => true,
                Some((Err(e), _)) if e.kind() == io::ErrorKind::NotFound => true,
                Some((Err(e), path)) => {
                    tracing::warn!(path = %path.display(), error = %e, "could not remove an expunged message file; the next start removes it");
                    false
                }
            };
            if removed && let Err(e) = fs::remove_file(&marker) {
                tracing::warn!(path = %marker.display(), error = %e, "could not remove a removal marker");
            }
        }
    }
}

pub(crate) fn expunge_rows(
    conn: &Connection,
    mailbox_id: i64,
    uids: &[u32],
) -> Result<(ExpungeReport, Vec<Doomed>)> {
    let (owner, folder): (String, String) = conn
        .query_row(
            "SELECT u.address, m.name FROM mailboxes m JOIN users u ON u.id = m.user_id
             WHERE m.id = ?1",
            [mailbox_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .ok_or_else(|| Error::Refused(format!("no mailbox with id {mailbox_id}")))?;
    let mut report = ExpungeReport::default();
    let mut doomed = Vec::new();
    let mut find = conn.prepare_cached(
        "SELECT m.id, m.basename, m.flags, l.state
         FROM messages m LEFT JOIN replay_ledger l ON l.message_row = m.id
         WHERE m.mailbox_id = ?1 AND m.uid = ?2 AND m.expunged_at IS NULL",
    )?;
    let mut found = Vec::new();
    for &uid in uids {
        let row: Option<(i64, String, u8, Option<String>)> = find
            .query_row(params![mailbox_id, uid], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?;
        found.extend(row.map(|row| (uid, row)));
    }
    if found.is_empty() {
        return Ok((report, doomed));
    }
    // One modseq for the whole expunge, so IMAP CONDSTORE clients see it as one change.
    let gone: Vec<u32> = found.iter().map(|(uid, _)| *uid).collect();
    let modseq = record_expunges(conn, mailbox_id, &gone)?;
    for (uid, (row, basename, flags, state)) in found {
        if waits_for_origin(state.as_deref()) {
            conn.execute(
                "UPDATE messages SET expunged_at = ?2, modseq = ?3 WHERE id = ?1",
                params![row, now(), modseq],
            )?;
            report.kept_for_replay.push(uid);
        } else {
            conn.execute("DELETE FROM replay_ledger WHERE message_row = ?1", [row])?;
            conn.execute("DELETE FROM messages WHERE id = ?1", [row])?;
            report.removed.push(uid);
            doomed.push(Doomed {
                owner: owner.clone(),
                folder: folder.clone(),
                basename,
                flags: Flags::from_bits(flags),
            });
        }
    }
    Ok((report, doomed))
}

/// Takes `uids` (ascending or not) out of mailbox `mailbox_id`'s IMAP view for good, in
/// the caller's transaction: the mailbox gets one new modseq for all of them (its
/// HIGHESTMODSEQ moves, so every session sees a change) and each UID a tombstone with
/// it (RFC 7162 §3.2: "the server MUST associate the incremented mod-sequence with the
/// UIDs of the expunged messages"). A UID that has a tombstone keeps its first one.
/// Returns the modseq.
pub(crate) fn record_expunges(conn: &Connection, mailbox_id: i64, uids: &[u32]) -> Result<i64> {
    let modseq: i64 = conn
        .prepare_cached(
            "UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ?1
             RETURNING highestmodseq",
        )?
        .query_row([mailbox_id], |r| r.get(0))?;
    let mut tombstone = conn.prepare_cached(
        "INSERT OR IGNORE INTO expunged_uids (mailbox_id, uid, modseq) VALUES (?1, ?2, ?3)",
    )?;
    for &uid in uids {
        tombstone.execute(params![mailbox_id, uid, modseq])?;
    }
    Ok(modseq)
}

/// How many tombstones (see [`record_expunges`]) expiry keeps per mailbox: the expunges
/// of the last days of an ordinary mailbox. A QRESYNC client that was away for longer is
/// told of every UID it names that is gone (the RFC's fallback), which for a mailbox
/// expiry thins from the oldest end is a short list of ranges.
pub const TOMBSTONES_KEPT: usize = 10_000;

/// Drops all but about the newest `keep` tombstones of each mailbox: whole modseqs go,
/// oldest first, and the mailbox's `tombstones_since` rises to the highest one dropped,
/// so every expunge above it still has its tombstone. Returns how many went.
fn drop_old_tombstones(conn: &Connection, keep: usize) -> Result<usize> {
    let crowded: Vec<i64> = conn
        .prepare("SELECT mailbox_id FROM expunged_uids GROUP BY mailbox_id HAVING count(*) > ?1")?
        .query_map([keep as i64], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut dropped = 0;
    for mailbox_id in crowded {
        let cut: i64 = conn.query_row(
            "SELECT modseq FROM expunged_uids WHERE mailbox_id = ?1
             ORDER BY modseq DESC LIMIT 1 OFFSET ?2",
            params![mailbox_id, keep as i64],
            |r| r.get(0),
        )?;
        dropped += conn.execute(
            "DELETE FROM expunged_uids WHERE mailbox_id = ?1 AND modseq <= ?2",
            params![mailbox_id, cut],
        )?;
        conn.execute(
            "UPDATE mailboxes SET tombstones_since = max(tombstones_since, ?2) WHERE id = ?1",
            params![mailbox_id, cut],
        )?;
    }
    Ok(dropped)
}

/// Whether a copy in this ledger state must stay in the store: the origin has not
/// received it (`pending`), or refused it and an admin must see it (`rejected`).
fn waits_for_origin(state: Option<&str>) -> bool {
    matches!(state, Some("pending") | Some("rejected"))
}

type ExpiredCounts = std::collections::BTreeMap<(String, String), usize>;

/// How old a copy may be for [`Store::cancel_capture`] to take it: Postfix logs a
/// refusal within a second of the milter's answer.
pub const CANCEL_WINDOW: i64 = 3600;

/// A message a removal takes: its rows and UID, and the file that goes after the commit.
struct Removal {
    row: i64,
    mailbox_id: i64,
    uid: u32,
    file: Doomed,
}

/// The columns [`removal`] reads, in its order; a query may select more after them.
const REMOVAL_COLUMNS: &str =
    "SELECT m.id, m.mailbox_id, m.uid, u.address, b.name, m.basename, m.flags";
/// Where [`REMOVAL_COLUMNS`] come from.
const REMOVAL_FROM: &str = "FROM messages m
     JOIN mailboxes b ON b.id = m.mailbox_id
     JOIN users u ON u.id = b.user_id
     LEFT JOIN replay_ledger l ON l.message_row = m.id";

fn removal(r: &rusqlite::Row<'_>) -> rusqlite::Result<Removal> {
    Ok(Removal {
        row: r.get(0)?,
        mailbox_id: r.get(1)?,
        uid: r.get(2)?,
        file: Doomed {
            owner: r.get(3)?,
            folder: r.get(4)?,
            basename: r.get(5)?,
            flags: Flags::from_bits(r.get(6)?),
        },
    })
}

/// Deletes the rows of `removals`, with one modseq step per mailbox they touch (so IMAP
/// clients see the change); returns the files to remove after the commit.
fn remove_rows(conn: &Connection, removals: Vec<Removal>) -> Result<Vec<Doomed>> {
    let mut touched = Touched::new();
    let mut doomed = Vec::new();
    for removal in removals {
        conn.execute(
            "DELETE FROM replay_ledger WHERE message_row = ?1",
            [removal.row],
        )?;
        conn.execute("DELETE FROM messages WHERE id = ?1", [removal.row])?;
        touched
            .entry(removal.mailbox_id)
            .or_default()
            .push(removal.uid);
        doomed.push(removal.file);
    }
    for (mailbox_id, uids) in touched {
        record_expunges(conn, mailbox_id, &uids)?;
    }
    Ok(doomed)
}

/// The UIDs a removal took from each mailbox.
type Touched = std::collections::BTreeMap<i64, Vec<u32>>;

fn cancel_rows(conn: &Connection, queue_id: &str, since: i64) -> Result<Vec<Doomed>> {
    let found = conn
        .prepare(&format!(
            "{REMOVAL_COLUMNS} {REMOVAL_FROM}
             WHERE m.queue_id = ?1 AND m.created_at >= ?2
               AND ((m.class = 'journal' AND l.state IS NULL)
                    OR (m.class = 'diverted' AND l.state = 'pending' AND l.attempts = 0))"
        ))?
        .query_map(params![queue_id, since], removal)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    remove_rows(conn, found)
}

fn expire_rows(conn: &Connection, cutoff: i64) -> Result<(ExpiredCounts, Vec<Doomed>)> {
    let old = conn
        .prepare(&format!(
            "{REMOVAL_COLUMNS}, m.class {REMOVAL_FROM}
             WHERE m.internal_date < ?1
               AND ((m.class = 'journal' AND l.state IS NULL) OR l.state = 'delivered')"
        ))?
        .query_map([cutoff], |r| Ok((removal(r)?, r.get::<_, String>(7)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut counts = ExpiredCounts::new();
    for (removal, class) in &old {
        *counts
            .entry((removal.file.owner.clone(), class.clone()))
            .or_default() += 1;
    }
    let doomed = remove_rows(conn, old.into_iter().map(|(removal, _)| removal).collect())?;
    Ok((counts, doomed))
}

fn purge_rows(conn: &Connection) -> Result<Vec<Doomed>> {
    let mut stmt = conn.prepare(
        "SELECT m.id, u.address, b.name, m.basename, m.flags, l.state
         FROM messages m
         JOIN mailboxes b ON b.id = m.mailbox_id
         JOIN users u ON u.id = b.user_id
         LEFT JOIN replay_ledger l ON l.message_row = m.id
         WHERE m.expunged_at IS NOT NULL",
    )?;
    let hidden = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                Doomed {
                    owner: r.get(1)?,
                    folder: r.get(2)?,
                    basename: r.get(3)?,
                    flags: Flags::from_bits(r.get(4)?),
                },
                r.get::<_, Option<String>>(5)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut doomed = Vec::new();
    for (row, file, state) in hidden {
        if waits_for_origin(state.as_deref()) {
            continue;
        }
        conn.execute("DELETE FROM replay_ledger WHERE message_row = ?1", [row])?;
        conn.execute("DELETE FROM messages WHERE id = ?1", [row])?;
        doomed.push(file);
    }
    Ok(doomed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::class::Class;
    use crate::deliver::NewMessage;

    fn store_with_user() -> (tempfile::TempDir, Store, Address) {
        crate::testing::store_with_user("alice@example.test")
    }

    fn deliver(store: &Store, owner: &Address, class: Class) -> crate::Stored {
        store
            .deliver(NewMessage::new(
                owner.clone(),
                "INBOX",
                b"Subject: x\r\n\r\nbody\r\n".to_vec(),
                class,
            ))
            .unwrap()
    }

    #[test]
    fn journal_copies_go_and_pending_copies_are_hidden_until_replayed() {
        let (_dir, store, alice) = store_with_user();
        let journal = deliver(&store, &alice, Class::Journal);
        let diverted = deliver(&store, &alice, Class::Diverted);
        let kept = deliver(&store, &alice, Class::Journal);

        let report = store
            .expunge(journal.mailbox_id, &[journal.uid, diverted.uid, 999])
            .unwrap();
        assert_eq!(report.removed, vec![journal.uid]);
        assert_eq!(report.kept_for_replay, vec![diverted.uid]);
        assert!(!journal.path.exists(), "the journal copy's file is removed");
        assert!(diverted.path.exists(), "the pending copy's file stays");

        let reader = store.reader().unwrap();
        let visible: Vec<u32> = reader
            .visible_messages(journal.mailbox_id)
            .unwrap()
            .iter()
            .map(|m| m.uid)
            .collect();
        assert_eq!(visible, vec![kept.uid]);
        let all = reader.messages(journal.mailbox_id).unwrap();
        let hidden = all.iter().find(|m| m.uid == diverted.uid).unwrap();
        assert!(hidden.expunged);
        assert_eq!(hidden.replay_state.as_deref(), Some("pending"));

        // Expunging a hidden copy again changes nothing.
        let again = store.expunge(journal.mailbox_id, &[diverted.uid]).unwrap();
        assert_eq!(again, ExpungeReport::default());

        // Nothing to purge while it is pending; once replay delivered it, it goes.
        assert_eq!(store.purge_expunged().unwrap(), 0);
        let row = hidden.row;
        store
            .write(move |conn| {
                conn.execute(
                    "UPDATE replay_ledger SET state = 'delivered' WHERE message_row = ?1",
                    [row],
                )?;
                Ok(())
            })
            .unwrap();
        assert_eq!(store.purge_expunged().unwrap(), 1);
        assert!(!diverted.path.exists());
        assert_eq!(reader.messages(journal.mailbox_id).unwrap().len(), 1);

        // UIDs are not reused after an expunge.
        let next = deliver(&store, &alice, Class::Journal);
        assert!(next.uid > kept.uid);
    }

    fn highest_modseq(store: &Store, mailbox_id: i64) -> i64 {
        let reader = store.reader().unwrap();
        reader
            .mailbox_by_id(mailbox_id)
            .unwrap()
            .unwrap()
            .highest_modseq
    }

    #[test]
    fn every_removal_leaves_a_tombstone_with_its_modseq() {
        let (_dir, store, alice) = store_with_user();
        let journal = deliver(&store, &alice, Class::Journal);
        let diverted = deliver(&store, &alice, Class::Diverted);
        let old = [
            deliver(&store, &alice, Class::Journal),
            deliver(&store, &alice, Class::Journal),
        ];
        let (inbox, reader) = (journal.mailbox_id, store.reader().unwrap());
        let before = highest_modseq(&store, inbox);
        assert_eq!(reader.expunged_since(inbox, before).unwrap(), Some(vec![]));

        // Removed and hidden alike: both left the user's view, at one modseq.
        store.expunge(inbox, &[diverted.uid, journal.uid]).unwrap();
        let expunged = highest_modseq(&store, inbox);
        assert_eq!(expunged, before + 1);
        assert_eq!(
            reader.expunged_since(inbox, before).unwrap(),
            Some(vec![journal.uid, diverted.uid])
        );
        assert_eq!(
            reader.expunged_since(inbox, expunged).unwrap(),
            Some(vec![])
        );
        // Naming only messages that are gone changes nothing.
        store.expunge(inbox, &[journal.uid, 999]).unwrap();
        assert_eq!(highest_modseq(&store, inbox), expunged);

        // Expiry: the old journal copies go (the hidden pending copy stays), at one
        // more modseq.
        store.expire(now() + 10).unwrap();
        let expired = highest_modseq(&store, inbox);
        assert_eq!(expired, expunged + 1);
        assert_eq!(
            reader.expunged_since(inbox, expunged).unwrap(),
            Some(old.iter().map(|m| m.uid).collect())
        );
        assert_eq!(
            reader.expunged_since(inbox, before).unwrap().unwrap().len(),
            4
        );
    }

    #[test]
    fn expiry_keeps_the_newest_tombstones_and_then_cannot_tell_older_ones() {
        let (_dir, store, alice) = store_with_user();
        let stored: Vec<_> = (0..4)
            .map(|_| deliver(&store, &alice, Class::Journal))
            .collect();
        let inbox = stored[0].mailbox_id;
        let mut modseqs = Vec::new();
        for message in &stored {
            store.expunge(inbox, &[message.uid]).unwrap();
            modseqs.push(highest_modseq(&store, inbox));
        }
        let dropped = store.forget_old_tombstones(2).unwrap();
        assert_eq!(dropped, 2);
        let reader = store.reader().unwrap();
        assert_eq!(
            reader.expunged_since(inbox, modseqs[1]).unwrap(),
            Some(vec![stored[2].uid, stored[3].uid])
        );
        assert_eq!(reader.expunged_since(inbox, modseqs[1] - 1).unwrap(), None);
        assert_eq!(reader.expunged_since(inbox, 0).unwrap(), None);
        // Within the limit nothing goes.
        assert_eq!(store.forget_old_tombstones(2).unwrap(), 0);
    }

    #[test]
    fn a_file_renamed_by_a_flag_change_is_still_removed() {
        let (_dir, store, alice) = store_with_user();
        let journal = deliver(&store, &alice, Class::Journal);
        // What a flag change queued just before the expunge leaves behind: the file
        // carries other flags than the ones the expunge read.
        let renamed = journal.path.with_file_name(FileName::cur_name(
            journal
                .path
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .split(":2,")
                .next()
                .unwrap(),
            Flags::SEEN,
        ));
        fs::rename(&journal.path, &renamed).unwrap();
        let report = store.expunge(journal.mailbox_id, &[journal.uid]).unwrap();
        assert_eq!(report.removed, vec![journal.uid]);
        assert!(!renamed.exists());
    }

    #[test]
    fn rejected_copies_stay_hidden_for_the_admin() {
        let (_dir, store, alice) = store_with_user();
        let sent = deliver(&store, &alice, Class::Sent);
        let row = sent.message_row;
        store
            .write(move |conn| {
                conn.execute(
                    "UPDATE replay_ledger SET state = 'rejected' WHERE message_row = ?1",
                    [row],
                )?;
                Ok(())
            })
            .unwrap();
        let report = store.expunge(sent.mailbox_id, &[sent.uid]).unwrap();
        assert_eq!(report.kept_for_replay, vec![sent.uid]);
        assert_eq!(store.purge_expunged().unwrap(), 0);
        assert!(sent.path.exists());
    }

    /// Issue 12, item 18: a crash between expiry's commit and the removal of the files
    /// left delivered copies on disk without rows, and repair indexed them again from
    /// their trace blocks: replayed to the origin a second time. The marked files go
    /// at the next start instead.
    #[test]
    fn a_crash_between_expirys_commit_and_the_files_replays_nothing_again() {
        let (dir, store, alice) = store_with_user();
        let diverted = deliver(&store, &alice, Class::Diverted);
        let journal = deliver(&store, &alice, Class::Journal);
        let row = diverted.message_row;
        store
            .write(move |conn| {
                conn.execute(
                    "UPDATE replay_ledger SET state = 'delivered' WHERE message_row = ?1",
                    [row],
                )?;
                Ok(())
            })
            .unwrap();
        // Expiry's transaction commits, then the process dies before removing files.
        let (removed, _doomed) = store.expire_rows(now() + 10).unwrap();
        assert_eq!(removed.values().sum::<usize>(), 2);
        assert!(diverted.path.exists() && journal.path.exists());
        drop(store);

        let store = Store::open(dir.path(), "test.host").unwrap();
        let report = store.check(true).unwrap();
        assert_eq!(report.recovery.unwrap().removed, 2, "{report:?}");
        assert!(!diverted.path.exists() && !journal.path.exists());
        let after = store.check(false).unwrap();
        assert!(after.is_consistent(), "{:?}", after.problems);
        let reader = store.reader().unwrap();
        assert_eq!(reader.messages(diverted.mailbox_id).unwrap(), []);
    }

    #[test]
    fn cancelling_a_capture_removes_only_its_unused_copies() {
        let (_dir, store, alice) = store_with_user();
        let with_queue_id = |class, queue_id: &str| {
            let mut message = NewMessage::new(
                alice.clone(),
                "INBOX",
                b"Subject: x\r\n\r\nbody\r\n".to_vec(),
                class,
            );
            message.queue_id = Some(queue_id.to_string());
            store.deliver(message).unwrap()
        };
        let refused = with_queue_id(Class::Diverted, "AAA1");
        let refused_journal = with_queue_id(Class::Journal, "AAA1");
        let kept = with_queue_id(Class::Diverted, "BBB2");
        let attempted = with_queue_id(Class::Diverted, "CCC3");
        let row = attempted.message_row;
        store
            .write(move |conn| {
                conn.execute(
                    "UPDATE replay_ledger SET attempts = 1 WHERE message_row = ?1",
                    [row],
                )?;
                Ok(())
            })
            .unwrap();

        let before = highest_modseq(&store, kept.mailbox_id);
        assert_eq!(store.cancel_capture("AAA1").unwrap(), 2);
        assert_eq!(
            store
                .reader()
                .unwrap()
                .expunged_since(kept.mailbox_id, before)
                .unwrap(),
            Some(vec![refused.uid, refused_journal.uid])
        );
        assert_eq!(
            store.cancel_capture("CCC3").unwrap(),
            0,
            "replay has tried it"
        );
        assert_eq!(store.cancel_capture("ZZZ9").unwrap(), 0);
        assert!(!refused.path.exists() && !refused_journal.path.exists());
        assert!(kept.path.exists() && attempted.path.exists());
        let uids: Vec<u32> = store
            .reader()
            .unwrap()
            .messages(kept.mailbox_id)
            .unwrap()
            .iter()
            .map(|m| m.uid)
            .collect();
        assert_eq!(uids, [kept.uid, attempted.uid]);
        assert!(store.check(false).unwrap().is_consistent());
    }
}
