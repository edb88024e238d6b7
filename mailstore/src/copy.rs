//! IMAP COPY, MOVE and MULTIAPPEND into one folder: every message is stored, or none
//! is. RFC 3501 §6.4.7 has a failed COPY leave the destination as it was, RFC 6851 §3.3
//! has a MOVE move every message or none, and RFC 3502 has an APPEND of several
//! messages append all or none; a session that saw half of one would keep it.
//!
//! A copy is the original's file byte for byte (its trace block too: clients see the
//! same message, RFC822.SIZE and all), in a file whose name marks it a copy
//! ([`crate::maildir::COPY_FIELD`]): repair indexes it as an `other` copy whatever block
//! it carries, so a COPY of a captured copy never becomes a second one to replay.
//!
//! An APPEND's messages come from outside: each is stored as [`Store::deliver`] stores
//! one (CRLF line ends, this delivery's own trace block), only together.
//!
//! The files are written first, one message at a time (only one is ever in memory),
//! then every index row goes in one job of the writer, with a MOVE's removal of the
//! originals ([`Store::expunge`]'s rules) in the same job. If anything fails, the job is
//! rolled back and every file written is removed again.

use crate::deliver::{Form, NewMessage, Staged, Stored, insert_row};
use crate::error::{Result, refused};
use crate::expunge::{Doomed, ExpungeReport, expunge_rows};
use crate::store::Store;
use crate::writer::FileSync;

/// Messages a MOVE takes from their mailbox once the copies are in: (mailbox, UIDs).
type Removal = Option<(i64, Vec<u32>)>;

impl Store {
    /// Stores `copies` (each a stored message's bytes as read, with the copy's flags and
    /// keywords), all into one folder, in one index transaction: all or none. Each is
    /// written when the iterator yields it; an error it yields undoes the rest.
    pub fn copy_messages(
        &self,
        copies: impl IntoIterator<Item = Result<NewMessage>>,
    ) -> Result<Vec<Stored>> {
        Ok(self.store_together(copies, Form::CopyOfStored, None)?.0)
    }

    /// Delivers `messages` (from outside, as [`Store::deliver`] does), all into one
    /// folder, in one index transaction: all or none (IMAP MULTIAPPEND). Each is
    /// written when the iterator yields it; an error it yields undoes the rest.
    pub fn deliver_together(
        &self,
        messages: impl IntoIterator<Item = Result<NewMessage>>,
    ) -> Result<Vec<Stored>> {
        Ok(self.store_together(messages, Form::Delivered, None)?.0)
    }

    /// [`Store::copy_messages`], and the messages `uids` of mailbox `from` go in the same
    /// transaction (hidden rather than removed while they wait for replay, as
    /// [`Store::expunge`] does).
    pub fn move_messages(
        &self,
        copies: impl IntoIterator<Item = Result<NewMessage>>,
        from: i64,
        uids: Vec<u32>,
    ) -> Result<(Vec<Stored>, ExpungeReport)> {
        self.store_together(copies, Form::CopyOfStored, Some((from, uids)))
    }

    fn store_together(
        &self,
        copies: impl IntoIterator<Item = Result<NewMessage>>,
        form: Form,
        removal: Removal,
    ) -> Result<(Vec<Stored>, ExpungeReport)> {
        self.require_delivery_lock()?;
        let staged = self.stage_all(copies, form)?;
        let (files, rows): (Vec<_>, Vec<_>) = staged
            .into_iter()
            .map(|s| (s.file, (s.owner, s.folder, s.row)))
            .unzip();
        let Some(first) = files.first() else {
            return Ok((Vec::new(), ExpungeReport::default()));
        };
        let store = self.clone();
        let committed = self.write_staged(first, move |conn| {
            let stored = rows
                .iter()
                .map(|(owner, folder, row)| insert_row(conn, owner, folder, row))
                .collect::<Result<Vec<_>>>()?;
            let (report, doomed) = match &removal {
                Some((mailbox, uids)) => expunge_rows(conn, *mailbox, uids)?,
                None => (ExpungeReport::default(), Vec::new()),
            };
            store.mark_for_removal(&doomed)?;
            Ok((stored, report, doomed))
        });
        match committed {
            Ok((mut stored, report, doomed)) => {
                for (stored, file) in stored.iter_mut().zip(files) {
                    stored.path = file.cur_path.clone();
                    file.commit();
                }
                self.remove_files(doomed);
                Ok((stored, report))
            }
            Err(e) => {
                files.iter().for_each(|file| file.discard());
                Err(e)
            }
        }
    }

    /// Writes the files of `copies`, which must all go to one folder (one directory to
    /// fsync before the commit); on any error, removes those already written.
    fn stage_all(
        &self,
        copies: impl IntoIterator<Item = Result<NewMessage>>,
        form: Form,
    ) -> Result<Vec<Staged>> {
        let mut staged: Vec<Staged> = Vec::new();
        for copy in copies {
            let next = copy.and_then(|message| {
                let elsewhere = staged.first().is_some_and(|s| {
                    s.owner != message.owner.as_str() || s.folder != message.folder
                });
                if elsewhere {
                    return refused("the messages of one COPY or APPEND go to one folder");
                }
                self.stage(message, form, FileSync::Durable)
            });
            match next {
                Ok(one) => staged.push(one),
                Err(e) => {
                    staged.iter().for_each(|s| s.file.discard());
                    return Err(e);
                }
            }
        }
        Ok(staged)
    }
}

#[allow(dead_code)]
fn _doomed_is_used(_: Doomed) {}

#[cfg(test)]
mod tests {
    use crate::error::Error;
    use crate::{Class, NewMessage};

    #[test]
    fn a_move_stores_every_copy_and_removes_every_original_or_does_nothing() {
        let (_dir, store, owner) = crate::testing::store_with_user("a@x.test");
        let message = |folder: &str, n: u8| {
            let content = format!("Subject: {n}\r\n\r\nbody\r\n").into_bytes();
            NewMessage::new(owner.clone(), folder, content, Class::Other)
        };
        let originals: Vec<_> = (1..=2)
            .map(|n| store.deliver(message("INBOX", n)).unwrap())
            .collect();
        let inbox = originals[0].mailbox_id;
        let uids: Vec<u32> = originals.iter().map(|s| s.uid).collect();
        let failing = vec![
            Ok(message("Archive", 1)),
            Err(Error::Refused("cannot read".into())),
        ];
        assert!(store.move_messages(failing, inbox, uids.clone()).is_err());
        let reader = store.reader().unwrap();
        let user = reader.user("a@x.test").unwrap().unwrap();
        let archive = reader.mailbox(user.id, "Archive").unwrap().unwrap();
        assert!(reader.messages(archive.id).unwrap().is_empty());
        assert_eq!(reader.messages(inbox).unwrap().len(), 2);
        let archive_dir = store.folder_dir(&owner, "Archive");
        assert_eq!(
            std::fs::read_dir(archive_dir.join("cur")).unwrap().count(),
            0
        );

        let copies = vec![Ok(message("Archive", 1)), Ok(message("Archive", 2))];
        let (stored, report) = store.move_messages(copies, inbox, uids.clone()).unwrap();
        assert_eq!(stored.iter().map(|s| s.uid).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(report.removed, uids);
        assert_eq!(reader.messages(archive.id).unwrap().len(), 2);
        assert!(reader.messages(inbox).unwrap().is_empty());
        assert!(store.check(false).unwrap().problems.is_empty());
    }

    #[test]
    fn messages_delivered_together_are_all_stored_in_one_change_or_none_is() {
        let (_dir, store, owner) = crate::testing::store_with_user("a@x.test");
        let message = |n: u8, class| {
            let content = format!("Subject: {n}\n\nbody\n").into_bytes();
            NewMessage::new(owner.clone(), "Sent", content, class)
        };
        let failing = vec![
            Ok(message(1, Class::Other)),
            Err(Error::Refused("cancelled".into())),
            Ok(message(3, Class::Other)),
        ];
        assert!(store.deliver_together(failing).is_err());
        let reader = store.reader().unwrap();
        let user = reader.user("a@x.test").unwrap().unwrap();
        let sent = reader.mailbox(user.id, "Sent").unwrap().unwrap();
        assert!(reader.messages(sent.id).unwrap().is_empty());
        let dir = store.folder_dir(&owner, "Sent");
        assert_eq!(std::fs::read_dir(dir.join("cur")).unwrap().count(), 0);

        let together = vec![Ok(message(1, Class::Other)), Ok(message(2, Class::Sent))];
        let stored = store.deliver_together(together).unwrap();
        assert_eq!(stored.iter().map(|s| s.uid).collect::<Vec<_>>(), [1, 2]);
        // Delivered, not copied: CRLF, a trace block, a replay ledger row for a sent copy.
        assert!(stored[0].replay_id.is_none() && stored[1].replay_id.is_some());
        let rows = reader.messages(sent.id).unwrap();
        assert_eq!(rows[0].modseq, rows[1].modseq - 1);
        let bytes = std::fs::read(&stored[1].path).unwrap();
        assert!(bytes.ends_with(b"Subject: 2\r\n\r\nbody\r\n"));
        assert!(bytes.starts_with(b"X-Lifeboat-Class: sent\r\n"));
        assert!(store.check(false).unwrap().problems.is_empty());
    }
}
