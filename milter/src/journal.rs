//! Journal copies are written in the background.
//!
//! A journal copy never delays mail (docs/design.md §4.3: journal failures never reject mail;
//! Postfix delivers the message to the origin anyway), so the milter answers at end of
//! message as soon as the copy is queued here, and one thread stores queued copies in
//! batches that share a group commit. The queue is bounded by bytes: when it is full
//! the copy is skipped and logged, never waited for.
//!
//! The fallback listener may see a message while its journal copy is still queued;
//! [`Store::deliver_journal`] then stores nothing (one copy per user and
//! `X-Lifeboat-ID`, checked in the index transaction), and the fallback listener's
//! own insert re-checks the same way, so neither order stores a message twice.

use std::sync::mpsc;
use std::thread;

use lifeboat_mailstore::{NewMessage, Store};
use tokio::sync::watch;

/// Queued journal copies may hold at most this many bytes of messages (one message
/// is always admitted when the queue is below it, however large).
pub const JOURNAL_QUEUE_BYTES: usize = 64 << 20;

/// Copies stored per batch at most, so one commit stays short.
const MAX_BATCH: usize = 256;

/// What is queued and not yet stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Backlog {
    messages: usize,
    bytes: usize,
}

pub struct JournalQueue {
    copies: mpsc::Sender<NewMessage>,
    backlog: watch::Sender<Backlog>,
    /// [`JOURNAL_QUEUE_BYTES`] outside tests.
    limit_bytes: usize,
}

impl JournalQueue {
    /// Starts the thread that stores queued copies into `store`. It ends when the queue
    /// is dropped and everything queued is stored.
    pub fn start(store: Store) -> JournalQueue {
        JournalQueue::with_limit(store, JOURNAL_QUEUE_BYTES)
    }

    fn with_limit(store: Store, limit_bytes: usize) -> JournalQueue {
        let (copies, queued) = mpsc::channel();
        let backlog = watch::Sender::new(Backlog::default());
        let done = backlog.clone();
        let spawned = thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || store_queued(&store, &queued, &done));
        if let Err(e) = spawned {
            // Without the thread nothing is admitted (see `push`): mail flows, unjournalled.
            tracing::error!(error = %e, "milter: could not start the journal writer; journal copies are skipped");
        }
        JournalQueue {
            copies,
            backlog,
            limit_bytes,
        }
    }

    /// Queues a copy; `false` when the queue is full (or the writer is gone) and the
    /// copy was dropped.
    pub fn push(&self, copy: NewMessage) -> bool {
        let bytes = copy.content.len();
        let admitted = self.backlog.send_if_modified(|backlog| {
            if backlog.bytes >= self.limit_bytes {
                return false;
            }
            backlog.messages += 1;
            backlog.bytes += bytes;
            true
        });
        if !admitted {
            return false;
        }
        if self.copies.send(copy).is_err() {
            self.backlog.send_modify(|backlog| {
                backlog.messages -= 1;
                backlog.bytes -= bytes;
            });
            return false;
        }
        true
    }

    /// Returns once every copy queued so far has been stored (or has failed).
    pub async fn flushed(&self) {
        let mut backlog = self.backlog.subscribe();
        let _ = backlog.wait_for(|b| b.messages == 0).await;
    }
}

fn store_queued(
    store: &Store,
    queued: &mpsc::Receiver<NewMessage>,
    backlog: &watch::Sender<Backlog>,
) {
    while let Ok(first) = queued.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queued.try_recv() {
                Ok(copy) => batch.push(copy),
                Err(_) => break,
            }
        }
        let bytes: usize = batch.iter().map(|c| c.content.len()).sum();
        let names: Vec<(String, String)> = batch
            .iter()
            .map(|c| {
                (
                    c.owner.to_string(),
                    c.lifeboat_id
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                )
            })
            .collect();
        let count = batch.len();
        for ((owner, lifeboat_id), result) in names.iter().zip(store.deliver_journal(batch)) {
            match result {
                Ok(Some(stored)) => {
                    tracing::debug!(%owner, %lifeboat_id, uid = stored.uid, "milter: journal copy stored")
                }
                Ok(None) => {
                    tracing::info!(%owner, %lifeboat_id, "milter: journal copy not stored, the user already has this message")
                }
                Err(e) => {
                    tracing::warn!(%owner, %lifeboat_id, error = %e, "milter: journal copy failed (Postfix still delivers the message)")
                }
            }
        }
        backlog.send_modify(|b| {
            b.messages -= count;
            b.bytes -= bytes;
        });
    }
}

#[cfg(test)]
mod tests {
    use lifeboat_mailstore::{Address, Class, NewUser, password};

    use super::*;

    fn store(dir: &std::path::Path) -> Store {
        let store = Store::open(dir, "test.host").unwrap();
        store
            .add_user(NewUser {
                address: Address::parse("u@example.test").unwrap(),
                password_hash: password::unusable(),
                aliases: Vec::new(),
                active: true,
                alternate_email: None,
            })
            .unwrap();
        store.lock_for_delivery().unwrap();
        store
    }

    fn copy(store: &Store) -> NewMessage {
        let mut copy = NewMessage::new(
            Address::parse("u@example.test").unwrap(),
            "INBOX",
            b"Subject: s\r\n\r\nbody\r\n".to_vec(),
            Class::Journal,
        );
        copy.lifeboat_id = Some(store.keyring().new_lifeboat_id());
        copy
    }

    fn journal_count(store: &Store) -> usize {
        let reader = store.reader().unwrap();
        let user = reader.user("u@example.test").unwrap().unwrap();
        let inbox = reader.mailbox(user.id, "INBOX").unwrap().unwrap();
        reader.messages(inbox.id).unwrap().len()
    }

    #[tokio::test]
    async fn queued_copies_are_stored_once_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let queue = JournalQueue::start(store.clone());
        assert!(queue.push(copy(&store)));
        assert!(queue.push(copy(&store)));
        queue.flushed().await;
        assert_eq!(journal_count(&store), 2);
    }

    #[tokio::test]
    async fn a_full_queue_skips_the_copy_instead_of_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        // A limit of zero bytes: the queue is always full.
        let queue = JournalQueue::with_limit(store.clone(), 0);
        assert!(!queue.push(copy(&store)));
        queue.flushed().await;
        assert_eq!(journal_count(&store), 0);
    }
}
