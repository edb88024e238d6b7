//! Mailboxes users create, rename, delete and subscribe to (IMAP CREATE, RENAME, DELETE,
//! SUBSCRIBE). Names are UTF-8 with `.` as the hierarchy separator, as Maildir++ spells
//! them on disk (`.Archive.2026/`).

use std::fs;

use rusqlite::{OptionalExtension, params};

use crate::address::Address;
use crate::error::{Error, IoContext, MailboxError, Result};
use crate::folder::canonical_folder;
use crate::maildir;
use crate::store::Store;
use crate::users::create_mailbox;

fn refused<T>(why: MailboxError) -> Result<T> {
    Err(Error::Mailbox(why))
}

/// Checks a mailbox name a user chose: it becomes a directory name.
pub fn check_name(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.len() > 200
        || name.starts_with('.')
        || name.ends_with('.')
        || name.contains("..")
        || name.contains('/')
        || name.chars().any(char::is_control);
    if bad {
        return refused(MailboxError::InvalidName(name.to_string()));
    }
    Ok(())
}

impl Store {
    /// Creates mailbox `name` for `owner`, subscribed, with any missing parent mailboxes
    /// (not subscribed).
    pub fn create_mailbox(&self, owner: &Address, name: &str) -> Result<()> {
        let name = canonical_folder(name);
        check_name(&name)?;
        if name == "INBOX" {
            return refused(MailboxError::InboxAlwaysExists);
        }
        let user_dir = self.user_dir(owner);
        let (owner, name) = (owner.to_string(), name.to_string());
        self.write(move |conn| {
            let user_id: i64 = conn
                .query_row("SELECT id FROM users WHERE address = ?1", [&owner], |r| {
                    r.get(0)
                })
                .optional()?
                .ok_or_else(|| Error::Refused(format!("no user {owner}")))?;
            let exists = |n: &str| -> Result<bool> {
                Ok(conn
                    .query_row(
                        "SELECT 1 FROM mailboxes WHERE user_id = ?1 AND name = ?2",
                        params![user_id, n],
                        |_| Ok(()),
                    )
                    .optional()?
                    .is_some())
            };
            if exists(&name)? {
                return refused(MailboxError::AlreadyExists(name));
            }
            // RFC 3501 §6.3.3: create the superior hierarchy too. Only the mailbox asked
            // for is subscribed: LSUB shows the parents made on the way as \Noselect.
            let parts: Vec<&str> = name.split('.').collect();
            for depth in 1..=parts.len() {
                let path = parts[..depth].join(".");
                if exists(&path)? {
                    continue;
                }
                let dir = maildir::folder_dir(&user_dir, &path);
                maildir::create_folder(&dir, true)?;
                let id = create_mailbox(conn, user_id, &path, None, &dir)?;
                if depth < parts.len() {
                    conn.execute("UPDATE mailboxes SET subscribed = 0 WHERE id = ?1", [id])?;
                }
            }
            Ok(())
        })
    }

    /// Deletes mailbox `name` and its messages. Refused for INBOX, for a mailbox with
    /// children (RFC 3501 §6.3.4 allows refusing), and while any copy in it still has
    /// to go back to the origin.
    pub fn delete_mailbox(&self, owner: &Address, name: &str) -> Result<()> {
        let name = canonical_folder(name);
        if name == "INBOX" {
            return refused(MailboxError::InboxCannotBeDeleted);
        }
        let dir = self.folder_dir(owner, &name);
        let (owner_text, name_text) = (owner.to_string(), name.to_string());
        self.write(move |conn| {
            let mailbox: (i64, i64) = conn
                .query_row(
                    "SELECT m.id, m.user_id FROM mailboxes m JOIN users u ON u.id = m.user_id
                     WHERE u.address = ?1 AND m.name = ?2",
                    params![owner_text, name_text],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?
                .ok_or(MailboxError::Nonexistent)?;
            let children: i64 = conn.query_row(
                &format!("SELECT count(*) FROM mailboxes WHERE user_id = ?1 AND {INSIDE}"),
                params![mailbox.1, format!("{name_text}.")],
                |r| r.get(0),
            )?;
            if children > 0 {
                return refused(MailboxError::HasChildren);
            }
            let waiting: i64 = conn.query_row(
                "SELECT count(*) FROM messages m JOIN replay_ledger l ON l.message_row = m.id
                 WHERE m.mailbox_id = ?1 AND l.state IN ('pending', 'rejected')",
                [mailbox.0],
                |r| r.get(0),
            )?;
            if waiting > 0 {
                return refused(MailboxError::AwaitingReplay(waiting.unsigned_abs()));
            }
            // Only delivered copies have ledger rows left here.
            conn.execute(
                "DELETE FROM replay_ledger WHERE message_row IN
                 (SELECT id FROM messages WHERE mailbox_id = ?1)",
                [mailbox.0],
            )?;
            conn.execute("DELETE FROM messages WHERE mailbox_id = ?1", [mailbox.0])?;
            conn.execute("DELETE FROM mailboxes WHERE id = ?1", [mailbox.0])?;
            Ok(())
        })?;
        // The rows are gone; the files follow. Leftovers only cost disk (check reports
        // them), never a wrong view.
        if dir.exists() {
            fs::remove_dir_all(&dir).context(|| format!("removing {}", dir.display()))?;
        }
        Ok(())
    }

    /// Renames mailbox `from` (and the mailboxes inside it) to `to`. UIDVALIDITY stays:
    /// the messages keep their UIDs under the new name.
    pub fn rename_mailbox(&self, owner: &Address, from: &str, to: &str) -> Result<()> {
        let (from, to) = (canonical_folder(from), canonical_folder(to));
        check_name(&to)?;
        if from == "INBOX" {
            return refused(MailboxError::InboxCannotBeRenamed);
        }
        if to == "INBOX" {
            return refused(MailboxError::InboxCannotBeReplaced);
        }
        let user_dir = self.user_dir(owner);
        let (owner, from, to) = (owner.to_string(), from.to_string(), to.to_string());
        self.write(move |conn| {
            let user_id: i64 = conn
                .query_row("SELECT id FROM users WHERE address = ?1", [&owner], |r| {
                    r.get(0)
                })
                .optional()?
                .ok_or_else(|| Error::Refused(format!("no user {owner}")))?;
            let names: Vec<String> = {
                let mut stmt = conn.prepare(&format!(
                    "SELECT name FROM mailboxes WHERE user_id = ?1
                     AND (name = ?3 OR {INSIDE}) ORDER BY length(name)"
                ))?;
                let rows =
                    stmt.query_map(params![user_id, format!("{from}."), from], |r| r.get(0))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            if names.first() != Some(&from) {
                return refused(MailboxError::Nonexistent);
            }
            let taken: Option<i64> = conn
                .query_row(
                    "SELECT 1 FROM mailboxes WHERE user_id = ?1 AND name = ?2",
                    params![user_id, to],
                    |r| r.get(0),
                )
                .optional()?;
            if taken.is_some() {
                return refused(MailboxError::AlreadyExists(to));
            }
            for old in &names {
                let new = format!("{to}{}", &old[from.len()..]);
                let (old_dir, new_dir) = (
                    maildir::folder_dir(&user_dir, old),
                    maildir::folder_dir(&user_dir, &new),
                );
                fs::rename(&old_dir, &new_dir).context(|| {
                    format!("renaming {} to {}", old_dir.display(), new_dir.display())
                })?;
                conn.execute(
                    "UPDATE mailboxes SET name = ?1 WHERE user_id = ?2 AND name = ?3",
                    params![new, user_id, old],
                )?;
            }
            Ok(())
        })
    }

    /// Claims the mailbox's `\Recent` messages below UID `until` for one IMAP session
    /// (RFC 3501 §2.3.2: only the first session to be notified of a message sees it as
    /// recent). Returns the first UID this claim took: the session's recent messages are
    /// those from it up to `until`. Two sessions claiming at once get disjoint ranges.
    pub fn claim_recent(&self, mailbox_id: i64, until: u32) -> Result<u32> {
        self.write(move |conn| {
            let first: Option<u32> = conn
                .prepare_cached("SELECT first_recent_uid FROM mailboxes WHERE id = ?1")?
                .query_row([mailbox_id], |r| r.get(0))
                .optional()?;
            let Some(first) = first else {
                return Ok(until);
            };
            if until > first {
                conn.prepare_cached("UPDATE mailboxes SET first_recent_uid = ?2 WHERE id = ?1")?
                    .execute(params![mailbox_id, until])?;
            }
            Ok(first)
        })
    }

    pub fn set_subscribed(&self, mailbox_id: i64, subscribed: bool) -> Result<()> {
        self.write(move |conn| {
            conn.execute(
                "UPDATE mailboxes SET subscribed = ?1 WHERE id = ?2",
                params![subscribed, mailbox_id],
            )?;
            Ok(())
        })
    }
}

/// SQL for "mailbox `name` lies inside the mailbox whose name and delimiter are `?2`".
/// Not `LIKE`, which ignores case: `Projects` would have had `projects.x` as a child.
const INSIDE: &str = "substr(name, 1, length(?2)) = ?2";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Class, NewMessage};

    fn store_with_user() -> (tempfile::TempDir, Store, Address) {
        crate::testing::store_with_user("a@x.test")
    }

    fn names(store: &Store) -> Vec<String> {
        let reader = store.reader().unwrap();
        let user = reader.user("a@x.test").unwrap().unwrap();
        reader
            .mailboxes(user.id)
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .collect()
    }

    #[test]
    fn create_rename_delete() {
        let (_dir, store, owner) = store_with_user();
        store.create_mailbox(&owner, "Projects.2026").unwrap();
        assert!(names(&store).contains(&"Projects".to_string()));
        assert!(
            store
                .folder_dir(&owner, "Projects.2026")
                .join("cur")
                .is_dir()
        );
        let again = store.create_mailbox(&owner, "Projects").unwrap_err();
        assert!(
            matches!(&again, Error::Mailbox(MailboxError::AlreadyExists(name)) if name == "Projects"),
            "{again}"
        );

        store
            .deliver(NewMessage::new(
                owner.clone(),
                "Projects.2026",
                b"Subject: x\r\n\r\nx\r\n".to_vec(),
                Class::Other,
            ))
            .unwrap();
        store.rename_mailbox(&owner, "Projects", "Work").unwrap();
        let all = names(&store);
        assert!(
            all.contains(&"Work.2026".to_string())
                && !all.iter().any(|n| n.starts_with("Projects")),
            "{all:?}"
        );
        let reader = store.reader().unwrap();
        let user = reader.user("a@x.test").unwrap().unwrap();
        let moved = reader.mailbox(user.id, "Work.2026").unwrap().unwrap();
        let message = reader.messages(moved.id).unwrap().remove(0);
        assert!(store.read_message(&owner, "Work.2026", &message).is_ok());

        let busy = store.delete_mailbox(&owner, "Work").unwrap_err();
        assert!(
            matches!(busy, Error::Mailbox(MailboxError::HasChildren)),
            "{busy}"
        );
        let gone = store.delete_mailbox(&owner, "Projects").unwrap_err();
        assert!(
            matches!(gone, Error::Mailbox(MailboxError::Nonexistent)),
            "{gone}"
        );
        let taken = store.rename_mailbox(&owner, "Work", "Archive").unwrap_err();
        assert!(
            matches!(&taken, Error::Mailbox(MailboxError::AlreadyExists(name)) if name == "Archive"),
            "{taken}"
        );
        store.delete_mailbox(&owner, "Work.2026").unwrap();
        store.delete_mailbox(&owner, "Work").unwrap();
        assert!(!names(&store).iter().any(|n| n.starts_with("Work")));
        assert!(!store.folder_dir(&owner, "Work").exists());
    }

    #[test]
    fn create_subscribes_the_mailbox_not_the_parents_it_makes() {
        let (_dir, store, owner) = store_with_user();
        store.create_mailbox(&owner, "a.b.c").unwrap();
        let reader = store.reader().unwrap();
        let user = reader.user("a@x.test").unwrap().unwrap();
        let subscribed = |name: &str| reader.mailbox(user.id, name).unwrap().unwrap().subscribed;
        assert_eq!(
            [subscribed("a"), subscribed("a.b"), subscribed("a.b.c")],
            [false, false, true]
        );
        // A parent created earlier keeps its subscription.
        store.create_mailbox(&owner, "Archive.2026").unwrap();
        assert!(subscribed("Archive") && subscribed("Archive.2026"));
    }

    #[test]
    fn recent_messages_are_claimed_once() {
        let (_dir, store, owner) = store_with_user();
        for n in 0..3 {
            let content = format!("Subject: {n}\r\n\r\nx\r\n").into_bytes();
            store
                .deliver(NewMessage::new(
                    owner.clone(),
                    "INBOX",
                    content,
                    Class::Other,
                ))
                .unwrap();
        }
        let reader = store.reader().unwrap();
        let user = reader.user("a@x.test").unwrap().unwrap();
        let inbox = reader.mailbox(user.id, "INBOX").unwrap().unwrap();
        assert_eq!((inbox.first_recent_uid, inbox.uidnext), (1, 4));
        assert_eq!(store.claim_recent(inbox.id, 3).unwrap(), 1);
        // A session that read the mailbox before that claim gets only what is left.
        assert_eq!(store.claim_recent(inbox.id, 4).unwrap(), 3);
        assert_eq!(store.claim_recent(inbox.id, 4).unwrap(), 4);
        assert_eq!(store.claim_recent(inbox.id, 2).unwrap(), 4);
        let inbox = reader.mailbox(user.id, "INBOX").unwrap().unwrap();
        assert_eq!(inbox.first_recent_uid, 4);
    }

    #[test]
    fn mail_waiting_for_replay_keeps_its_mailbox() {
        let (_dir, store, owner) = store_with_user();
        store.create_mailbox(&owner, "Held").unwrap();
        store
            .deliver(NewMessage::new(
                owner.clone(),
                "Held",
                b"Subject: x\r\n\r\nx\r\n".to_vec(),
                Class::Diverted,
            ))
            .unwrap();
        let refused = store.delete_mailbox(&owner, "Held").unwrap_err();
        assert!(
            matches!(refused, Error::Mailbox(MailboxError::AwaitingReplay(1))),
            "{refused}"
        );
        assert_eq!(
            refused.to_string(),
            "1 message(s) in it still have to go back to your mail server"
        );
    }

    #[test]
    fn inbox_in_any_case_is_one_mailbox_also_as_a_parent() {
        let (_dir, store, owner) = store_with_user();
        let inbox_dir = store.folder_dir(&owner, "INBOX");
        let uidvalidity = maildir::read_uidvalidity_file(&inbox_dir);
        store.create_mailbox(&owner, "inbox.x").unwrap();
        let all = names(&store);
        assert_eq!(
            all.iter()
                .filter(|n| n.eq_ignore_ascii_case("INBOX"))
                .count(),
            1,
            "{all:?}"
        );
        assert!(all.contains(&"INBOX.x".to_string()), "{all:?}");
        assert_eq!(maildir::read_uidvalidity_file(&inbox_dir), uidvalidity);
        assert!(store.folder_dir(&owner, "INBOX.x").join("cur").is_dir());
        let again = store.create_mailbox(&owner, "Inbox.x").unwrap_err();
        assert!(
            matches!(&again, Error::Mailbox(MailboxError::AlreadyExists(n)) if n == "INBOX.x"),
            "{again}"
        );
        // Below INBOX, names keep their case.
        store.create_mailbox(&owner, "INBOX.X").unwrap();
        store.rename_mailbox(&owner, "inbox.X", "Work").unwrap();
        store.rename_mailbox(&owner, "Work", "iNbOx.y").unwrap();
        store.delete_mailbox(&owner, "inbox.y").unwrap();
        let all = names(&store);
        assert!(all.contains(&"INBOX.x".to_string()), "{all:?}");
        assert!(
            !all.iter().any(|n| n == "Work" || n.ends_with(".y")),
            "{all:?}"
        );
        let report = store.check(false).unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }

    #[test]
    fn children_are_found_by_exact_prefix_not_ignoring_case() {
        let (_dir, store, owner) = store_with_user();
        store.create_mailbox(&owner, "projects.x").unwrap();
        store.create_mailbox(&owner, "Projects").unwrap();
        store.delete_mailbox(&owner, "Projects").unwrap();
        store.create_mailbox(&owner, "Projects_1.y").unwrap();
        store.rename_mailbox(&owner, "projects", "Work").unwrap();
        let all = names(&store);
        assert!(all.contains(&"Work.x".to_string()), "{all:?}");
        assert!(all.contains(&"Projects_1.y".to_string()), "{all:?}");
    }

    #[test]
    fn bad_names_and_inbox_are_refused() {
        let (_dir, store, owner) = store_with_user();
        for bad in [
            "",
            ".hidden",
            "a..b",
            "a/b",
            "../x",
            "trailing.",
            "tab\there",
        ] {
            let error = store.create_mailbox(&owner, bad).unwrap_err();
            assert!(
                matches!(&error, Error::Mailbox(MailboxError::InvalidName(name)) if name == bad),
                "{bad:?}: {error}"
            );
        }
        let refusal = |result: Result<()>| match result {
            Err(Error::Mailbox(why)) => why,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            refusal(store.create_mailbox(&owner, "inbox")),
            MailboxError::InboxAlwaysExists
        );
        assert_eq!(
            refusal(store.delete_mailbox(&owner, "INBOX")),
            MailboxError::InboxCannotBeDeleted
        );
        assert_eq!(
            refusal(store.rename_mailbox(&owner, "INBOX", "Old")),
            MailboxError::InboxCannotBeRenamed
        );
        assert_eq!(
            refusal(store.rename_mailbox(&owner, "Archive", "Inbox")),
            MailboxError::InboxCannotBeReplaced
        );
        assert_eq!(
            refusal(store.rename_mailbox(&owner, "Nowhere", "Else")),
            MailboxError::Nonexistent
        );
    }
}
