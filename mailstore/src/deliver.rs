//! The one durable write path. Every capture path (milter, fallback listener, IMAP
//! APPEND, submission) stores messages through [`Store::deliver`]:
//!
//! 1. the file is written to `tmp/`, fsynced, and linked into `cur/`;
//! 2. the index writer fsyncs `cur/` (once for all deliveries of its group commit into
//!    that folder), then commits the index row (UID, flags, class, envelope, ledger);
//! 3. only then does `deliver` return `Ok`; on any error the file is removed again.
//!
//! Journal copies may skip the fsyncs of step 1 and 2 (see [`FileSync`]).
//!
//! A crash between 1 and 2 leaves a marker in `tmp/` that the next holder of the delivery
//! lock resolves (see `Store::lock_for_delivery`).

use std::borrow::Cow;
use std::path::PathBuf;

use rusqlite::{Connection, OptionalExtension, params};

use crate::address::Address;
use crate::class::Class;
use crate::error::{Error, Result, refused};
use crate::folder::canonical_folder;
use crate::maildir::{Flags, StagedFile, new_basename, new_copy_basename};
use crate::secret::{Keyring, LifeboatId, hex, sha256};
use crate::store::{Store, now};
use crate::trace::{self, TraceFields};
use crate::writer::{Answer, FileSync};

/// A message to store for one protected user.
#[derive(Clone, Debug)]
pub struct NewMessage {
    /// The user's own address (aliases already resolved).
    pub owner: Address,
    pub folder: String,
    /// The message as received; bare LF line ends are stored as CRLF.
    pub content: Vec<u8>,
    pub class: Class,
    /// Envelope sender (`Some("")` for the null sender `<>`).
    pub envelope_from: Option<String>,
    /// Original envelope recipients (before alias resolution) that this copy stands for.
    pub envelope_to: Vec<Address>,
    /// `X-Lifeboat-ID` the milter put on the message (made or verified with the store's
    /// key: never a value a sender wrote).
    pub lifeboat_id: Option<LifeboatId>,
    /// Postfix's queue id of the message, when the milter stored the copy.
    pub queue_id: Option<String>,
    pub flags: Flags,
    /// IMAP keywords (`$Forwarded`, `Junk`, ...): kept in the index only, stored with
    /// the row so no session sees the message without them.
    pub keywords: Vec<String>,
    /// Seconds since the epoch; now when `None`.
    pub internal_date: Option<i64>,
}

impl NewMessage {
    pub fn new(owner: Address, folder: &str, content: Vec<u8>, class: Class) -> NewMessage {
        NewMessage {
            owner,
            folder: folder.to_string(),
            content,
            class,
            envelope_from: None,
            envelope_to: Vec::new(),
            lifeboat_id: None,
            queue_id: None,
            flags: Flags::empty(),
            keywords: Vec::new(),
            internal_date: None,
        }
    }
}

/// Where a delivered message ended up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub message_row: i64,
    pub mailbox_id: i64,
    pub uid: u32,
    pub uidvalidity: u32,
    pub path: PathBuf,
    pub replay_id: Option<String>,
}

/// What the index records about a message file (besides where it is).
pub(crate) struct IndexRow {
    pub basename: String,
    pub flags: Flags,
    /// Keywords separated by spaces, as the `keywords` column keeps them.
    pub keywords: String,
    pub internal_date: i64,
    pub size: i64,
    pub class: Class,
    pub envelope_from: Option<String>,
    /// Original envelope recipients, one per line.
    pub envelope_to: String,
    pub lifeboat_id: Option<String>,
    pub header_message_id: Option<String>,
    /// [`body_digest`] of the message, for copies with an `X-Lifeboat-ID`.
    pub body_digest: Option<String>,
    pub queue_id: Option<String>,
}

/// Whether a delivery may store a second copy of a message the user already has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Copies {
    Any,
    /// At most one journal or diverted copy per user and message: same `X-Lifeboat-ID`
    /// and same body ([`body_digest`]).
    OnePerMessage,
}

/// How journal copies are written (see [`FileSync`]).
const JOURNAL_FILE_SYNC: FileSync = FileSync::Unsynced;

impl Store {
    /// Stores `message` durably; returns only after the file and its index row are safe.
    pub fn deliver(&self, message: NewMessage) -> Result<Stored> {
        self.start_delivery(message, FileSync::Durable, Copies::Any)?
            .finish()?
            .ok_or_else(|| Error::Refused("delivery stored nothing".into()))
    }

    /// [`Store::deliver`] for several messages, all in one group commit.
    pub fn deliver_all(&self, messages: Vec<NewMessage>) -> Vec<Result<Stored>> {
        let started: Vec<_> = messages
            .into_iter()
            .map(|m| self.start_delivery(m, FileSync::Durable, Copies::Any))
            .collect();
        started
            .into_iter()
            .map(|delivery| {
                delivery
                    .and_then(PendingDelivery::finish)?
                    .ok_or_else(|| Error::Refused("delivery stored nothing".into()))
            })
            .collect()
    }

    /// Stores journal copies (history only: Postfix delivers the message to the origin
    /// too), all in one group commit. Each is stored at most once per user and
    /// `X-Lifeboat-ID`: `Ok(None)` when the user already has a copy, e.g. the diverted
    /// one the fallback listener stored while this copy waited in the milter's queue.
    pub fn deliver_journal(&self, messages: Vec<NewMessage>) -> Vec<Result<Option<Stored>>> {
        let started: Vec<_> = messages
            .into_iter()
            .map(|m| self.start_delivery(m, JOURNAL_FILE_SYNC, Copies::OnePerMessage))
            .collect();
        started
            .into_iter()
            .map(|delivery| delivery.and_then(PendingDelivery::finish))
            .collect()
    }

    /// Stores a durable copy unless the user already has one with the same
    /// `X-Lifeboat-ID` (`Ok(None)`). The check runs in the index writer's transaction, so
    /// two capture paths racing for one message cannot both store it.
    pub(crate) fn deliver_once(&self, message: NewMessage) -> Result<Option<Stored>> {
        self.start_delivery(message, FileSync::Durable, Copies::OnePerMessage)?
            .finish()
    }

    /// Writes the file and queues its index row; [`PendingDelivery::finish`] waits for
    /// the commit. Starting several before finishing any puts them in one group commit.
    fn start_delivery(
        &self,
        message: NewMessage,
        sync: FileSync,
        copies: Copies,
    ) -> Result<PendingDelivery> {
        self.require_delivery_lock()?;
        let Staged {
            file: staged,
            row,
            owner,
            folder,
        } = self.stage(message, Form::Delivered, sync)?;
        let same_message = match (copies, &row.lifeboat_id, &row.body_digest) {
            (Copies::OnePerMessage, Some(id), Some(digest)) => Some((id.clone(), digest.clone())),
            _ => None,
        };
        let answer = self.submit_staged(&staged, sync, move |conn| {
            if let Some((id, digest)) = &same_message
                && copy_exists(conn, &owner, id, digest)?
            {
                return Ok(None);
            }
            insert_row(conn, &owner, &folder, &row).map(Some)
        });
        match answer {
            Ok(answer) => Ok(PendingDelivery {
                staged,
                answer,
                store: self.clone(),
            }),
            Err(e) => {
                staged.discard();
                Err(e)
            }
        }
    }

    /// The file step of a delivery: the message in its `form` is written and linked
    /// into `cur/` ([`StagedFile`]); the index row that names it is returned, to commit.
    pub(crate) fn stage(&self, message: NewMessage, form: Form, sync: FileSync) -> Result<Staged> {
        let content = match form {
            Form::Delivered => Cow::Owned(stored_form(&message, self.keyring())),
            Form::CopyOfStored => Cow::Borrowed(&message.content[..]),
        };
        let folder_dir = self.folder_dir(&message.owner, &message.folder);
        if !folder_dir.join("cur").is_dir() {
            return refused(format!(
                "no folder `{}` for {} ({} is missing)",
                message.folder,
                message.owner,
                folder_dir.display()
            ));
        }
        let size = content.len() as u64;
        let basename = match form {
            Form::Delivered => new_basename(self.hostname(), size),
            Form::CopyOfStored => new_copy_basename(self.hostname(), size),
        };
        let durable = sync == FileSync::Durable;
        let file =
            StagedFile::write_named(&folder_dir, basename, &content, message.flags, durable)?;
        let body_digest = message.lifeboat_id.as_ref().map(|_| body_digest(&content));
        let row = IndexRow {
            basename: file.basename.clone(),
            flags: message.flags,
            keywords: message.keywords.join(" "),
            internal_date: message.internal_date.unwrap_or_else(now),
            size: content.len() as i64,
            class: message.class,
            envelope_from: message.envelope_from,
            envelope_to: join_addresses(&message.envelope_to),
            lifeboat_id: message.lifeboat_id.map(|id| id.to_string()),
            header_message_id: header_value(&content, "Message-ID"),
            body_digest,
            queue_id: message.queue_id,
        };
        Ok(Staged {
            file,
            row,
            owner: message.owner.to_string(),
            folder: message.folder,
        })
    }
}

/// How the bytes a caller hands over become the file's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    /// A message from outside ([`stored_form`]): CRLF line ends, any genuine trace block
    /// dropped, this delivery's own block in front.
    Delivered,
    /// A copy of a stored message's file (IMAP COPY/MOVE), byte for byte: a client sees
    /// the same message (RFC 3501 §6.4.7 copies it), trace block included, and the name
    /// marks it a copy so repair does not trust that block
    /// ([`crate::maildir::COPY_FIELD`]).
    CopyOfStored,
}

/// A message file in `cur/` and the index row that will name it.
pub(crate) struct Staged {
    pub file: StagedFile,
    pub row: IndexRow,
    pub owner: String,
    pub folder: String,
}

/// A message file in place whose index row is queued on the writer.
struct PendingDelivery {
    staged: StagedFile,
    answer: Answer<Option<Stored>>,
    /// Told once the row is committed, so IMAP IDLE hears of the new message.
    store: Store,
}

impl PendingDelivery {
    /// Waits for the commit; removes the file again when no row was committed.
    fn finish(self) -> Result<Option<Stored>> {
        match self.answer.wait() {
            Ok(Some(mut stored)) => {
                stored.path = self.staged.cur_path.clone();
                self.staged.commit();
                self.store.notify_changed();
                Ok(Some(stored))
            }
            Ok(None) => {
                self.staged.discard();
                Ok(None)
            }
            Err(e) => {
                self.staged.discard();
                Err(e)
            }
        }
    }
}

/// Whether `owner` has a journal or diverted copy of this message: this
/// `X-Lifeboat-ID` and this body.
fn copy_exists(conn: &Connection, owner: &str, lifeboat_id: &str, digest: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM messages m
             JOIN mailboxes b ON b.id = m.mailbox_id JOIN users u ON u.id = b.user_id
             WHERE m.lifeboat_id = ?1 AND u.address = ?2 AND m.body_digest = ?3
               AND m.class IN ('journal', 'diverted')
             LIMIT 1",
        )?
        .query_row(params![lifeboat_id, owner, digest], |_| Ok(()))
        .optional()?
        .is_some())
}

pub(crate) fn insert_row(
    conn: &Connection,
    owner: &str,
    folder: &str,
    row: &IndexRow,
) -> Result<Stored> {
    // The statements of every delivery are cached: parsing them cost more than running them.
    let mailbox: Option<(i64, u32)> = conn
        .prepare_cached(
            "SELECT m.id, m.uidvalidity FROM mailboxes m JOIN users u ON u.id = m.user_id
             WHERE u.address = ?1 AND m.name = ?2",
        )?
        .query_row(params![owner, canonical_folder(folder)], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let Some((mailbox_id, uidvalidity)) = mailbox else {
        return refused(format!("no mailbox `{folder}` for {owner}"));
    };
    let (message_row, uid, replay_id) = insert_message(conn, mailbox_id, row)?;
    Ok(Stored {
        message_row,
        mailbox_id,
        uid,
        uidvalidity,
        path: PathBuf::new(),
        replay_id,
    })
}

/// Adds a message row with the mailbox's next UID, and a replay ledger row when the copy
/// must go back to the origin. Returns (row id, UID, replay id).
pub(crate) fn insert_message(
    conn: &Connection,
    mailbox_id: i64,
    row: &IndexRow,
) -> Result<(i64, u32, Option<String>)> {
    let (uid, modseq) = allocate_uid(conn, mailbox_id)?;
    conn.prepare_cached(
        "INSERT INTO messages (mailbox_id, uid, basename, flags, modseq, internal_date, size,
                               class, envelope_from, envelope_to, lifeboat_id,
                               header_message_id, created_at, body_digest, queue_id, keywords)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?
    .execute(params![
        mailbox_id,
        uid,
        row.basename,
        row.flags.bits(),
        modseq,
        row.internal_date,
        row.size,
        row.class.as_str(),
        row.envelope_from,
        row.envelope_to,
        row.lifeboat_id,
        row.header_message_id,
        now(),
        row.body_digest,
        row.queue_id,
        row.keywords,
    ])?;
    let message_row = conn.last_insert_rowid();
    let replay_id = if row.class.is_replayed() {
        Some(add_to_ledger(conn, message_row)?)
    } else {
        None
    };
    Ok((message_row, uid, replay_id))
}

/// Takes the mailbox's next UID and modseq. UIDs only ever grow: `uidnext` is never
/// lowered, so a UID is never handed out twice.
pub(crate) fn allocate_uid(conn: &Connection, mailbox_id: i64) -> Result<(u32, i64)> {
    conn.prepare_cached(
        "UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1
         WHERE id = ?1 RETURNING uidnext - 1, highestmodseq",
    )?
    .query_row([mailbox_id], |r| Ok((r.get(0)?, r.get(1)?)))
    .map_err(Error::from)
}

/// Records that a copy must be replayed; returns its stable `X-Lifeboat-Replay-ID`.
pub(crate) fn add_to_ledger(conn: &Connection, message_row: i64) -> Result<String> {
    let replay_id = format!("{:032x}", rand::random::<u128>());
    conn.prepare_cached(
        "INSERT INTO replay_ledger (message_row, replay_id, state, updated_at)
         VALUES (?1, ?2, 'pending', ?3)",
    )?
    .execute(params![message_row, replay_id, now()])?;
    Ok(replay_id)
}

fn join_addresses(addresses: &[Address]) -> String {
    addresses
        .iter()
        .map(Address::as_str)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The bytes written to disk: a sealed trace block (Return-Path and Delivered-To when
/// there is an envelope; the class of captured copies; see [`crate::trace`]), then the
/// message with CRLF line ends. A genuine trace block at the top of the message itself
/// (a client copying or re-appending a captured copy) is dropped: only this delivery's
/// own block may say what the copy is.
pub(crate) fn stored_form(message: &NewMessage, keyring: &Keyring) -> Vec<u8> {
    let content = to_crlf(&message.content);
    let content = trace::strip_genuine(keyring, &content);
    let fields = TraceFields {
        envelope_from: message.envelope_from.clone(),
        envelope_to: message.envelope_to.iter().map(|a| a.to_string()).collect(),
        class: (message.class != Class::Other).then_some(message.class),
    };
    let mut out = trace::sealed_block(keyring, &fields, content);
    out.extend_from_slice(content);
    out
}

/// SHA-256 (hex) of the body of `content`: what follows the first empty line, with CRLF
/// line ends. The milter, which sees a message before Postfix queues it, and the fallback
/// listener, which gets it from Postfix's queue, see different header sections (Postfix
/// adds its `Received:` line in between) but the same body, so the body tells whether two
/// copies with one `X-Lifeboat-ID` are one message.
pub fn body_digest(content: &[u8]) -> String {
    let content = to_crlf(content);
    let body = if content.starts_with(b"\r\n") {
        &content[2..]
    } else {
        content
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(&[][..], |at| &content[at + 4..])
    };
    hex(&sha256(body))
}

/// Turns bare LF into CRLF, leaving existing CRLF alone.
pub fn to_crlf(content: &[u8]) -> Cow<'_, [u8]> {
    let bare_lf = content
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || content[i - 1] != b'\r'));
    if !bare_lf {
        return Cow::Borrowed(content);
    }
    let mut out = Vec::with_capacity(content.len() + content.len() / 32);
    for (i, &b) in content.iter().enumerate() {
        if b == b'\n' && (i == 0 || content[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    Cow::Owned(out)
}

/// The unfolded value of the first header field `name` in the header section.
pub fn header_value(content: &[u8], name: &str) -> Option<String> {
    header_values(content, name).into_iter().next()
}

/// The unfolded, non-empty values of every header field `name` in the header section,
/// in order.
pub fn header_values(content: &[u8], name: &str) -> Vec<String> {
    let lines = content
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let mut values = Vec::new();
    let mut value: Option<String> = None;
    for line in lines {
        if line.is_empty() {
            break;
        }
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        match (&mut value, continuation) {
            (Some(v), true) => v.push_str(&String::from_utf8_lossy(line)),
            (_, false) => {
                values.extend(value.take());
                if let Some(colon) = line.iter().position(|&b| b == b':')
                    && line[..colon].eq_ignore_ascii_case(name.as_bytes())
                {
                    value = Some(String::from_utf8_lossy(&line[colon + 1..]).into_owned());
                }
            }
            (None, true) => {}
        }
    }
    values.extend(value);
    values
        .into_iter()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_normalisation_keeps_existing_pairs() {
        assert_eq!(&*to_crlf(b"a\r\nb\nc\n"), b"a\r\nb\r\nc\r\n");
        assert!(matches!(to_crlf(b"a\r\nb\r\n"), Cow::Borrowed(_)));
        assert_eq!(&*to_crlf(b"\n"), b"\r\n");
    }

    #[test]
    fn header_value_unfolds_and_stops_at_body() {
        let msg = b"Subject: hi\r\nMessage-ID:\r\n <abc@x>\r\n\r\nMessage-ID: <body@x>\r\n";
        assert_eq!(header_value(msg, "message-id").as_deref(), Some("<abc@x>"));
        assert_eq!(
            header_value(b"Subject: a\r\n\r\nMessage-ID: <b>\r\n", "Message-ID"),
            None
        );
    }

    #[test]
    fn trace_block_names_the_envelope_and_replayed_class() {
        let owner = Address::parse("u@example.test").unwrap();
        let mut message = NewMessage::new(
            owner,
            "INBOX",
            b"Subject: s\n\nbody\n".to_vec(),
            Class::Diverted,
        );
        message.envelope_from = Some("s@else.test".into());
        message.envelope_to = vec![Address::parse("alias@example.test").unwrap()];
        let keyring = Keyring::from_bytes(&[5; 32]);
        let stored = String::from_utf8(stored_form(&message, &keyring)).unwrap();
        let (block, rest) = stored.split_once("X-Lifeboat-Trace: ").unwrap();
        assert_eq!(
            block,
            "Return-Path: <s@else.test>\r\nDelivered-To: alias@example.test\r\nX-Lifeboat-Class: diverted\r\n"
        );
        let (seal, message) = rest.split_once("\r\n").unwrap();
        assert_eq!(seal.len(), 32);
        assert_eq!(message, "Subject: s\r\n\r\nbody\r\n");
    }
}
