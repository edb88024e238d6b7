//! Changing a message's flags and keywords, and reading its bytes wherever its name
//! (which carries the flags, Maildir style) currently is.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use rusqlite::params;

use crate::address::Address;
use crate::error::{IoContext, Result};
use crate::maildir::{FileName, Flags};
use crate::reader::MessageRecord;
use crate::store::Store;

/// New flags for one message.
#[derive(Clone, Debug)]
pub struct FlagChange {
    pub row: i64,
    pub basename: String,
    pub old_flags: Flags,
    pub flags: Flags,
    pub keywords: Vec<String>,
}

impl Store {
    /// Sets flags and keywords of messages in one folder; each changed message gets a
    /// new modseq. Returns the new modseq per changed row, in input order.
    ///
    /// The file is renamed to carry the new flags before the index row changes. If the
    /// process dies between the two, the index still names the old flags and
    /// [`Store::read_message`] finds the file by its basename.
    pub fn set_flags(
        &self,
        owner: &Address,
        folder: &str,
        mailbox_id: i64,
        changes: Vec<FlagChange>,
    ) -> Result<Vec<(i64, i64)>> {
        let cur = self.folder_dir(owner, folder).join("cur");
        self.write(move |conn| {
            let mut modseqs = Vec::with_capacity(changes.len());
            for change in changes {
                if change.old_flags != change.flags {
                    let from = cur.join(FileName::cur_name(&change.basename, change.old_flags));
                    let to = cur.join(FileName::cur_name(&change.basename, change.flags));
                    if let Err(e) = std::fs::rename(&from, &to) {
                        // Already renamed by an interrupted earlier change: carry on.
                        if e.kind() != ErrorKind::NotFound || !to.exists() {
                            return Err(e).context(|| format!("renaming {}", from.display()));
                        }
                    }
                }
                let modseq: i64 = conn.query_row(
                    "UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ?1
                     RETURNING highestmodseq",
                    [mailbox_id],
                    |r| r.get(0),
                )?;
                conn.execute(
                    "UPDATE messages SET flags = ?1, keywords = ?2, modseq = ?3
                     WHERE id = ?4 AND mailbox_id = ?5",
                    params![
                        change.flags.bits(),
                        change.keywords.join(" "),
                        modseq,
                        change.row,
                        mailbox_id
                    ],
                )?;
                modseqs.push((change.row, modseq));
            }
            Ok(modseqs)
        })
    }

    /// The bytes of a stored message.
    pub fn read_message(
        &self,
        owner: &Address,
        folder: &str,
        message: &MessageRecord,
    ) -> Result<Vec<u8>> {
        self.read_file(owner, folder, &message.basename, message.flags)
    }

    /// The bytes of the file `basename` with `flags` in its name (or other flags: see
    /// [`Store::set_flags`]).
    pub fn read_file(
        &self,
        owner: &Address,
        folder: &str,
        basename: &str,
        flags: Flags,
    ) -> Result<Vec<u8>> {
        let path = self
            .folder_dir(owner, folder)
            .join("cur")
            .join(FileName::cur_name(basename, flags));
        match std::fs::read(&path) {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let found = find_by_basename(path.parent().unwrap_or(Path::new(".")), basename);
                match found {
                    Some(other) => {
                        std::fs::read(&other).context(|| format!("reading {}", other.display()))
                    }
                    None => Err(e).context(|| format!("reading {}", path.display())),
                }
            }
            result => result.context(|| format!("reading {}", path.display())),
        }
    }
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
    use crate::{Class, NewMessage, NewUser, password};

    #[test]
    fn flags_rename_the_file_and_bump_modseq() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), "h").unwrap();
        store.lock_for_delivery().unwrap();
        let owner = Address::parse("a@x.test").unwrap();
        store
            .add_user(NewUser {
                address: owner.clone(),
                password_hash: password::unusable(),
                aliases: Vec::new(),
                active: true,
                alternate_email: None,
            })
            .unwrap();
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
        let modseqs = store
            .set_flags(
                &owner,
                "INBOX",
                mailbox.id,
                vec![FlagChange {
                    row: stored.message_row,
                    basename: before.basename.clone(),
                    old_flags: before.flags,
                    flags: Flags::SEEN.union(Flags::FLAGGED),
                    keywords: vec!["$Important".into()],
                }],
            )
            .unwrap();
        let after = reader.messages(mailbox.id).unwrap().remove(0);
        assert_eq!(after.flags, Flags::SEEN.union(Flags::FLAGGED));
        assert_eq!(after.keywords, ["$Important"]);
        assert_eq!(modseqs, [(after.row, after.modseq)]);
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
    }
}
