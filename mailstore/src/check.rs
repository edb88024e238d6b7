//! `lifeboat store check [--repair]`: compares the index with the Maildirs on disk.
//!
//! The Maildir is the source of truth for message bytes; the index for UIDs, flags and
//! replay state. Repair therefore keeps every UID the index still knows, gives files the
//! index does not know new UIDs (in arrival order), drops rows whose file is gone, and
//! rebuilds users and mailboxes from the directory layout when the index lost them (a
//! rebuilt mailbox gets a new, larger UIDVALIDITY, as RFC 3501 requires).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use rusqlite::params;

use crate::address::Address;
use crate::class::Class;
use crate::deliver::{IndexRow, body_digest, header_value, insert_message};
use crate::error::{Error, IoContext, Result};
use crate::expunge::record_expunges;
use crate::maildir::{self, FileName, Flags, STANDARD_FOLDERS};
use crate::password;
use crate::reader::MessageRecord;
use crate::store::{RecoveryReport, Store, now};
use crate::trace::{self, TraceFields};
use crate::users::{create_mailbox, user_id};

/// One difference between the index and the disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A user's Maildir (or one of its folders) has no index entry.
    UnindexedUser {
        path: PathBuf,
    },
    UnindexedFolder {
        owner: String,
        path: PathBuf,
    },
    /// The index knows a folder whose directory is gone.
    MissingFolder {
        owner: String,
        folder: String,
    },
    /// A message file the index does not list.
    UnindexedFile {
        path: PathBuf,
    },
    /// An index row whose file is gone. `unreplayed` when the origin never got it.
    MissingFile {
        owner: String,
        folder: String,
        uid: u32,
        unreplayed: bool,
    },
    /// The file is shorter or longer than the index recorded (and the `S=` in its name
    /// says): its write never reached the disk whole (journal copies are not fsynced, see `writer::FileSync`).
    /// Repair removes a torn journal copy and its row (Postfix delivered that message to
    /// the origin); any other torn copy is only reported.
    TornFile {
        path: PathBuf,
        class: Class,
        expected: u64,
        actual: u64,
    },
    /// An unindexed file starts with trace-block lines whose seal does not verify (a
    /// client's message that begins with `X-Lifeboat-Class:` and the like, or a copy
    /// stored before trace blocks were sealed): repair indexes it as an `other` copy,
    /// never replayed.
    UnsealedTrace {
        path: PathBuf,
        claimed: Option<Class>,
    },
    /// The flags in the file name differ from the index (the index wins).
    FlagsDiffer {
        path: PathBuf,
        index: Flags,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::UnindexedUser { path } => {
                write!(f, "Maildir without a user in the index: {}", path.display())
            }
            Problem::UnindexedFolder { owner, path } => {
                write!(f, "{owner}: folder not in the index: {}", path.display())
            }
            Problem::MissingFolder { owner, folder } => {
                write!(f, "{owner}: folder {folder} is missing on disk")
            }
            Problem::UnindexedFile { path } => {
                write!(f, "message file not in the index: {}", path.display())
            }
            Problem::MissingFile {
                owner,
                folder,
                uid,
                unreplayed,
            } => {
                write!(f, "{owner}: {folder} UID {uid}: file is missing")?;
                if *unreplayed {
                    write!(f, " (NOT YET REPLAYED TO THE ORIGIN: this copy is lost)")?;
                }
                Ok(())
            }
            Problem::TornFile {
                path,
                class,
                expected,
                actual,
            } => {
                write!(
                    f,
                    "{class} copy is {actual} bytes, its name says {expected}: {}",
                    path.display()
                )?;
                if *class != Class::Journal {
                    write!(
                        f,
                        " (NOT A JOURNAL COPY: not repaired, restore it from a backup)"
                    )?;
                }
                Ok(())
            }
            Problem::UnsealedTrace { path, claimed } => {
                write!(
                    f,
                    "trace block without a valid seal (claims class {}): indexed as an other copy, not replayed: {}",
                    claimed.map_or("none", Class::as_str),
                    path.display()
                )
            }
            Problem::FlagsDiffer { path, index } => write!(
                f,
                "flags in file name differ from the index (index has \"{}\"): {}",
                index.maildir_info(),
                path.display()
            ),
        }
    }
}

#[derive(Debug, Default)]
pub struct CheckReport {
    pub users: usize,
    pub folders: usize,
    pub messages: usize,
    pub problems: Vec<Problem>,
    /// Whether the problems were repaired.
    pub repaired: bool,
    /// Interrupted deliveries cleaned up first (only when no other process delivers).
    pub recovery: Option<RecoveryReport>,
    /// Deliveries in flight in another process, left alone.
    pub in_flight: usize,
}

impl CheckReport {
    pub fn is_consistent(&self) -> bool {
        self.problems.is_empty()
    }
}

/// A folder as found on disk.
struct DiskFolder {
    name: String,
    dir: PathBuf,
}

impl Store {
    /// Compares index and disk; with `repair`, makes them agree. Repair needs the delivery
    /// lock (so `lifeboat serve` must be stopped); a plain check runs beside it.
    pub fn check(&self, repair: bool) -> Result<CheckReport> {
        let mut report = CheckReport::default();
        match self.lock_for_delivery() {
            Ok(recovery) => report.recovery = Some(recovery),
            Err(e @ Error::DeliveryLocked(_)) if repair => return Err(e),
            Err(Error::DeliveryLocked(_)) => {}
            Err(e) => return Err(e),
        }
        let mail_dir = self.data_dir().join("mail");
        for (address, user_dir) in user_dirs(&mail_dir)? {
            report.users += 1;
            self.check_user(&address, &user_dir, repair, &mut report)?;
        }
        self.check_users_without_dirs(repair, &mut report)?;
        report.repaired = repair;
        Ok(report)
    }

    fn check_user(
        &self,
        address: &Address,
        user_dir: &Path,
        repair: bool,
        report: &mut CheckReport,
    ) -> Result<()> {
        let reader = self.reader()?;
        let known = reader.user(address.as_str())?;
        if known.is_none() {
            report.problems.push(Problem::UnindexedUser {
                path: user_dir.to_path_buf(),
            });
            if repair {
                self.recreate_user(address)?;
            }
        }
        let user = reader.user(address.as_str())?;
        let mailboxes = match &user {
            Some(user) => reader.mailboxes(user.id)?,
            None => Vec::new(),
        };
        let disk_folders = folders_on_disk(user_dir)?;
        let disk_names: HashSet<&str> = disk_folders.iter().map(|f| f.name.as_str()).collect();
        for mailbox in &mailboxes {
            if !disk_names.contains(mailbox.name.as_str()) {
                report.problems.push(Problem::MissingFolder {
                    owner: address.to_string(),
                    folder: mailbox.name.clone(),
                });
                if repair {
                    let dir = maildir::folder_dir(user_dir, &mailbox.name);
                    maildir::create_folder(&dir, mailbox.name != "INBOX")?;
                    maildir::write_uidvalidity_file(&dir, mailbox.uidvalidity)?;
                }
            }
        }
        for folder in disk_folders {
            report.folders += 1;
            let mailbox = mailboxes.iter().find(|m| m.name == folder.name);
            let mailbox_id = match mailbox {
                Some(m) => Some(m.id),
                None if user.is_some() || repair => {
                    report.problems.push(Problem::UnindexedFolder {
                        owner: address.to_string(),
                        path: folder.dir.clone(),
                    });
                    if repair {
                        Some(self.recreate_mailbox(address, &folder)?)
                    } else {
                        None
                    }
                }
                None => None,
            };
            let rows = match mailbox_id {
                Some(id) if mailbox.is_some() => reader.messages(id)?,
                _ => Vec::new(),
            };
            self.check_folder(address, &folder, mailbox_id, rows, repair, report)?;
        }
        Ok(())
    }

    fn check_folder(
        &self,
        owner: &Address,
        folder: &DiskFolder,
        mailbox_id: Option<i64>,
        rows: Vec<MessageRecord>,
        repair: bool,
        report: &mut CheckReport,
    ) -> Result<()> {
        let in_flight: HashSet<String> = if report.recovery.is_some() {
            HashSet::new()
        } else {
            maildir::interrupted_deliveries(&folder.dir)?
                .into_iter()
                .collect()
        };
        let mut on_disk: HashMap<String, (PathBuf, FileName)> = HashMap::new();
        for (path, name) in maildir::list_messages(&folder.dir)? {
            if in_flight.contains(&name.basename) {
                report.in_flight += 1;
                continue;
            }
            on_disk.insert(name.basename.clone(), (path, name));
        }
        for row in rows {
            report.messages += 1;
            match on_disk.remove(&row.basename) {
                Some((path, _)) if let Some(actual) = torn_length(&path, row.size)? => {
                    report.problems.push(Problem::TornFile {
                        path: path.clone(),
                        class: row.class,
                        expected: row.size,
                        actual,
                    });
                    if repair && row.class == Class::Journal {
                        fs::remove_file(&path)
                            .context(|| format!("removing {}", path.display()))?;
                        self.forget_row(mailbox_id, &row)?;
                    }
                }
                Some((path, name)) => {
                    let in_cur = path.parent().is_some_and(|p| p.ends_with("cur"));
                    if name.flags != row.flags || !in_cur {
                        report.problems.push(Problem::FlagsDiffer {
                            path: path.clone(),
                            index: row.flags,
                        });
                        if repair {
                            let target = folder
                                .dir
                                .join("cur")
                                .join(FileName::cur_name(&row.basename, row.flags));
                            fs::rename(&path, &target).context(|| {
                                format!("renaming {} to {}", path.display(), target.display())
                            })?;
                        }
                    }
                }
                None => {
                    let unreplayed =
                        matches!(row.replay_state.as_deref(), Some("pending" | "rejected"));
                    report.problems.push(Problem::MissingFile {
                        owner: owner.to_string(),
                        folder: folder.name.clone(),
                        uid: row.uid,
                        unreplayed,
                    });
                    if repair {
                        self.forget_row(mailbox_id, &row)?;
                    }
                }
            }
        }
        let mut unindexed: Vec<(PathBuf, FileName)> = on_disk.into_values().collect();
        // New UIDs follow arrival order: the time prefix of the name, then the name.
        unindexed.sort_by(|a, b| arrival_key(&a.1.basename).cmp(&arrival_key(&b.1.basename)));
        for (path, name) in unindexed {
            report
                .problems
                .push(Problem::UnindexedFile { path: path.clone() });
            if let (true, Some(mailbox_id)) = (repair, mailbox_id) {
                let untrusted = self.index_file(&folder.dir, mailbox_id, &path, &name)?;
                report.problems.extend(untrusted);
            }
        }
        Ok(())
    }

    /// Removes the index row (and any ledger row) of a message whose file is gone or
    /// torn, as an expunge: IMAP sessions and QRESYNC clients hear of it.
    fn forget_row(&self, mailbox_id: Option<i64>, row: &MessageRecord) -> Result<()> {
        let (row, uid) = (row.row, row.uid);
        self.write(move |conn| {
            conn.execute("DELETE FROM replay_ledger WHERE message_row = ?1", [row])?;
            conn.execute("DELETE FROM messages WHERE id = ?1", [row])?;
            if let Some(mailbox_id) = mailbox_id {
                record_expunges(conn, mailbox_id, &[uid])?;
            }
            Ok(())
        })
    }

    /// Index rows for users whose Maildir is gone entirely.
    fn check_users_without_dirs(&self, repair: bool, report: &mut CheckReport) -> Result<()> {
        let reader = self.reader()?;
        for user in reader.users()? {
            let user_dir = self.user_dir(&user.address);
            if user_dir.exists() {
                continue;
            }
            for mailbox in reader.mailboxes(user.id)? {
                report.problems.push(Problem::MissingFolder {
                    owner: user.address.to_string(),
                    folder: mailbox.name.clone(),
                });
                for row in reader.messages(mailbox.id)? {
                    report.problems.push(Problem::MissingFile {
                        owner: user.address.to_string(),
                        folder: mailbox.name.clone(),
                        uid: row.uid,
                        unreplayed: matches!(
                            row.replay_state.as_deref(),
                            Some("pending" | "rejected")
                        ),
                    });
                }
                if repair {
                    let dir = maildir::folder_dir(&user_dir, &mailbox.name);
                    maildir::create_folder(&dir, mailbox.name != "INBOX")?;
                    maildir::write_uidvalidity_file(&dir, mailbox.uidvalidity)?;
                    let id = mailbox.id;
                    self.write(move |conn| {
                        let uids: Vec<u32> = conn
                            .prepare("SELECT uid FROM messages WHERE mailbox_id = ?1")?
                            .query_map([id], |r| r.get(0))?
                            .collect::<rusqlite::Result<_>>()?;
                        conn.execute(
                            "DELETE FROM replay_ledger WHERE message_row IN
                               (SELECT id FROM messages WHERE mailbox_id = ?1)",
                            [id],
                        )?;
                        conn.execute("DELETE FROM messages WHERE mailbox_id = ?1", [id])?;
                        if !uids.is_empty() {
                            record_expunges(conn, id, &uids)?;
                        }
                        Ok(())
                    })?;
                }
            }
        }
        Ok(())
    }

    /// A user the index lost: recreated disabled, with no usable password, so an admin
    /// must set one (`lifeboat user passwd` + `user enable`) before anyone can log in.
    fn recreate_user(&self, address: &Address) -> Result<()> {
        let key = address.to_string();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO users (address, password_hash, active, created_at) VALUES (?1, ?2, 0, ?3)",
                params![key, password::unusable(), now()],
            )?;
            Ok(())
        })?;
        tracing::warn!(user = %address, "recreated a user from its Maildir: disabled until a password is set");
        Ok(())
    }

    fn recreate_mailbox(&self, owner: &Address, folder: &DiskFolder) -> Result<i64> {
        let (owner, name, dir) = (owner.to_string(), folder.name.clone(), folder.dir.clone());
        self.write(move |conn| {
            let Some(user) = user_id(conn, &owner)? else {
                return Err(Error::Refused(format!("no user {owner}")));
            };
            let special_use = STANDARD_FOLDERS
                .iter()
                .find(|(standard, _)| *standard == name)
                .and_then(|(_, use_)| *use_);
            create_mailbox(conn, user, &name, special_use, &dir)
        })
    }

    /// Gives a file the index did not know a new UID, recovering its class and envelope
    /// from the trace block `deliver` wrote at its top, when its seal verifies. A block
    /// that does not verify is reported and ignored: the file becomes an `other` copy,
    /// as does an IMAP COPY/MOVE (its name says so), whose block is its original's.
    fn index_file(
        &self,
        folder_dir: &Path,
        mailbox_id: i64,
        path: &Path,
        name: &FileName,
    ) -> Result<Option<Problem>> {
        let content = fs::read(path).context(|| format!("reading {}", path.display()))?;
        let (trace, untrusted) = match trace::find(&content) {
            // A COPY/MOVE keeps its original's block: an `other` copy, as it was indexed.
            Some(_) if name.copy => (TraceBlock::from(TraceFields::default()), None),
            Some(found) if found.is_genuine(self.keyring(), &content) => {
                (TraceBlock::from(found.fields), None)
            }
            Some(found) => {
                let problem = Problem::UnsealedTrace {
                    path: path.to_path_buf(),
                    claimed: found.fields.class,
                };
                (TraceBlock::from(TraceFields::default()), Some(problem))
            }
            None => (TraceBlock::from(TraceFields::default()), None),
        };
        let lifeboat_id = self.keyring().lifeboat_id_of(&content);
        let target = folder_dir
            .join("cur")
            .join(FileName::cur_name(&name.basename, name.flags));
        if target != path {
            fs::rename(path, &target).context(|| format!("moving {} into cur/", path.display()))?;
        }
        let row = IndexRow {
            basename: name.basename.clone(),
            flags: name.flags,
            // Keywords live in the index only: a rebuilt row has none.
            keywords: String::new(),
            internal_date: arrival_key(&name.basename).0.unwrap_or_else(now),
            size: content.len() as i64,
            class: trace.class,
            envelope_from: trace.envelope_from,
            envelope_to: trace.envelope_to.join("\n"),
            lifeboat_id: lifeboat_id.as_ref().map(|id| id.to_string()),
            header_message_id: header_value(&content, "Message-ID"),
            body_digest: lifeboat_id.map(|_| body_digest(&content)),
            queue_id: None,
        };
        // A replayed class gets a ledger row: whether the origin already got the copy is
        // unknown, so it is replayed (the stable X-Lifeboat-Replay-ID lets the origin side
        // spot a repeat).
        self.write(move |conn| insert_message(conn, mailbox_id, &row).map(|_| ()))?;
        Ok(untrusted)
    }
}

/// The file's length when it differs from `expected`, the length the index recorded
/// when the file was stored (the `S=` in the names Lifeboat writes). Only asked of files
/// the index lists: a file the index does not list was never acknowledged as stored (an
/// interrupted delivery is cleaned up through its `tmp/` marker, and a file an admin
/// copied in is indexed as it is).
fn torn_length(path: &Path, expected: u64) -> Result<Option<u64>> {
    let actual = fs::metadata(path)
        .context(|| format!("reading the size of {}", path.display()))?
        .len();
    Ok((actual != expected).then_some(actual))
}

/// What repair takes from a genuine trace block.
struct TraceBlock {
    class: Class,
    envelope_from: Option<String>,
    envelope_to: Vec<String>,
}

impl From<TraceFields> for TraceBlock {
    fn from(fields: TraceFields) -> TraceBlock {
        TraceBlock {
            // A sealed block names every class but `other`.
            class: fields.class.unwrap_or(Class::Other),
            envelope_from: fields.envelope_from,
            envelope_to: fields.envelope_to,
        }
    }
}

/// `(seconds, basename)` from a `<secs>.…` Maildir name.
fn arrival_key(basename: &str) -> (Option<i64>, &str) {
    let secs = basename.split('.').next().and_then(|s| s.parse().ok());
    (secs, basename)
}

/// `<mail_dir>/<domain>/<local>` directories, as addresses.
fn user_dirs(mail_dir: &Path) -> Result<Vec<(Address, PathBuf)>> {
    let mut found = Vec::new();
    for domain in sorted_dirs(mail_dir)? {
        for local in sorted_dirs(&domain)? {
            let (Some(d), Some(l)) = (file_name(&domain), file_name(&local)) else {
                continue;
            };
            match Address::parse(&format!("{l}@{d}")) {
                Ok(address) => found.push((address, local)),
                Err(e) => {
                    tracing::warn!(path = %local.display(), error = %e, "skipping a directory that is not an address")
                }
            }
        }
    }
    Ok(found)
}

fn folders_on_disk(user_dir: &Path) -> Result<Vec<DiskFolder>> {
    let mut folders = vec![DiskFolder {
        name: "INBOX".to_string(),
        dir: user_dir.to_path_buf(),
    }];
    for dir in sorted_dirs(user_dir)? {
        let Some(name) = file_name(&dir).and_then(|n| maildir::folder_name(&n).map(str::to_string))
        else {
            continue;
        };
        if dir.join("cur").is_dir() {
            folders.push(DiskFolder { name, dir });
        }
    }
    Ok(folders)
}

fn sorted_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(dirs),
        Err(e) => return Err(e).context(|| format!("listing {}", dir.display())),
    };
    for entry in entries {
        let entry = entry.context(|| format!("listing {}", dir.display()))?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            dirs.push(entry.path());
        }
    }
    dirs.sort();
    Ok(dirs)
}

fn file_name(path: &Path) -> Option<String> {
    path.file_name()?.to_str().map(str::to_string)
}
