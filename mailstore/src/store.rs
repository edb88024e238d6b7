//! The store handle: where things live on disk, the index writer, and the delivery lock.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};
use rusqlite::Connection;

use crate::address::Address;
use crate::error::{Error, IoContext, Result};
use crate::maildir;
use crate::private;
use crate::reader::Reader;
use crate::secret::Keyring;
use crate::writer::Writer;

pub const INDEX_FILE: &str = "index.sqlite";
const DELIVERY_LOCK_FILE: &str = "delivery.lock";

/// A handle on one store (`data_dir`). Cheap to clone; all clones share one writer.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    data_dir: PathBuf,
    hostname: String,
    /// The key behind Lifeboat's marks (`X-Lifeboat-ID`, trace seals, sent marks).
    keyring: Keyring,
    writer: Writer,
    delivery_lock: Mutex<Option<Flock<File>>>,
    /// Idle read connections, reused so hot paths (the milter) do not open one per call.
    idle_readers: Mutex<Vec<Reader>>,
    /// Bumped after every committed write, so sessions of this process (IMAP IDLE) hear
    /// of new mail at once instead of polling.
    changes: tokio::sync::watch::Sender<u64>,
}

impl Store {
    /// Opens the store in `data_dir`, creating the directory layout, index and key if
    /// missing (owner-only modes, see [`private`]). `hostname` goes into Maildir file
    /// names.
    pub fn open(data_dir: &Path, hostname: &str) -> Result<Store> {
        private::create_data_dir(data_dir)
            .context(|| format!("creating {}", data_dir.display()))?;
        let mail_dir = data_dir.join("mail");
        private::create_dir_all(&mail_dir)
            .context(|| format!("creating {}", mail_dir.display()))?;
        let keyring = Keyring::load_or_create(data_dir)?;
        let writer = Writer::start(&data_dir.join(INDEX_FILE))?;
        Ok(Store {
            inner: Arc::new(Inner {
                data_dir: data_dir.to_path_buf(),
                hostname: hostname.to_string(),
                keyring,
                writer,
                delivery_lock: Mutex::new(None),
                idle_readers: Mutex::new(Vec::new()),
                changes: tokio::sync::watch::Sender::new(0),
            }),
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    pub fn hostname(&self) -> &str {
        &self.inner.hostname
    }

    /// The store's key: makes and checks `X-Lifeboat-ID`, trace seals and sent marks.
    pub fn keyring(&self) -> &Keyring {
        &self.inner.keyring
    }

    pub fn index_path(&self) -> PathBuf {
        self.inner.data_dir.join(INDEX_FILE)
    }

    /// `<data_dir>/mail/<domain>/<local>`: the user's Maildir (INBOX at its root).
    pub fn user_dir(&self, address: &Address) -> PathBuf {
        self.inner
            .data_dir
            .join("mail")
            .join(address.domain())
            .join(address.local())
    }

    pub fn folder_dir(&self, owner: &Address, folder: &str) -> PathBuf {
        maildir::folder_dir(&self.user_dir(owner), folder)
    }

    /// Where a message's file is now (its name carries the current flags).
    pub fn message_path(
        &self,
        owner: &Address,
        folder: &str,
        message: &crate::MessageRecord,
    ) -> PathBuf {
        self.folder_dir(owner, folder)
            .join("cur")
            .join(maildir::FileName::cur_name(
                &message.basename,
                message.flags,
            ))
    }

    /// A read-only connection of its own (WAL readers never block the writer).
    pub fn reader(&self) -> Result<Reader> {
        Reader::open(&self.index_path())
    }

    /// Runs `f` with a pooled read connection.
    pub fn with_reader<T>(&self, f: impl FnOnce(&Reader) -> Result<T>) -> Result<T> {
        let pooled = self
            .inner
            .idle_readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop();
        let reader = match pooled {
            Some(reader) => reader,
            None => self.reader()?,
        };
        let result = f(&reader);
        self.inner
            .idle_readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(reader);
        result
    }

    /// Runs `f` on the single writer, in a transaction shared with concurrent writes;
    /// returns once that transaction has committed.
    pub(crate) fn write<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.changed(self.inner.writer.call(f))
    }

    /// Wakes the subscribers of [`Store::changes`] after a committed write.
    fn changed<T>(&self, result: Result<T>) -> Result<T> {
        if result.is_ok() {
            self.notify_changed();
        }
        result
    }

    pub(crate) fn notify_changed(&self) {
        self.inner.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees a new value after every write this process commits (other
    /// processes' writes are not seen: poll for those).
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// [`Store::write`] for a job that stores a staged file: its directory is fsynced
    /// (shared with the other jobs of the group) before the commit.
    pub(crate) fn write_staged<T, F>(&self, staged: &crate::maildir::StagedFile, f: F) -> Result<T>
    where
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.changed(self.inner.writer.call_after_sync(Some(staged.dir()), f))
    }

    /// Queues a job that stores a staged file without waiting for its commit. Its
    /// directory is fsynced before the commit when the delivery is durable.
    pub(crate) fn submit_staged<T, F>(
        &self,
        staged: &crate::maildir::StagedFile,
        sync: crate::writer::FileSync,
        f: F,
    ) -> Result<crate::writer::Answer<T>>
    where
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let sync_dir = (sync == crate::writer::FileSync::Durable).then(|| staged.dir());
        self.inner.writer.submit(sync_dir, f)
    }

    /// Takes the store's delivery lock (one delivering process per store), then cleans up
    /// deliveries a crash interrupted. Message deliveries need this lock.
    pub fn lock_for_delivery(&self) -> Result<RecoveryReport> {
        let mut held = self
            .inner
            .delivery_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if held.is_none() {
            let path = self.inner.data_dir.join(DELIVERY_LOCK_FILE);
            let file =
                private::open_file(&path).context(|| format!("opening {}", path.display()))?;
            let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock)
                .map_err(|_| Error::DeliveryLocked(path.clone()))?;
            *held = Some(lock);
        }
        drop(held);
        self.recover_interrupted()
    }

    /// Whether this handle holds the delivery lock.
    pub fn holds_delivery_lock(&self) -> bool {
        self.inner
            .delivery_lock
            .lock()
            .map(|held| held.is_some())
            .unwrap_or(false)
    }

    /// Resolves every name left in a `tmp/`: if the index has the message, the delivery
    /// completed and only the marker goes; otherwise its caller was never told "stored"
    /// (the mail is still with Postfix), so the half-delivered file goes too.
    fn recover_interrupted(&self) -> Result<RecoveryReport> {
        let mut report = RecoveryReport::default();
        let reader = self.reader()?;
        for folder in reader.all_folders()? {
            let dir = self.folder_dir(&folder.owner, &folder.name);
            let pending = maildir::interrupted_deliveries(&dir)?;
            if pending.is_empty() {
                continue;
            }
            let on_disk = maildir::list_messages(&dir)?;
            for basename in pending {
                let indexed = reader.has_basename(folder.mailbox_id, &basename)?;
                if !indexed {
                    for (path, name) in on_disk.iter().filter(|(_, n)| n.basename == basename) {
                        fs::remove_file(path).context(|| format!("removing {}", path.display()))?;
                        tracing::info!(path = %path.display(), flags = ?name.flags, "removed an interrupted delivery");
                        report.removed += 1;
                    }
                } else {
                    report.completed += 1;
                }
                let marker = dir.join("tmp").join(&basename);
                fs::remove_file(&marker).context(|| format!("removing {}", marker.display()))?;
            }
        }
        Ok(report)
    }

    pub(crate) fn require_delivery_lock(&self) -> Result<()> {
        if self.holds_delivery_lock() {
            Ok(())
        } else {
            Err(Error::NotDeliveryHolder)
        }
    }
}

/// What [`Store::lock_for_delivery`] found left over from a crash.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Deliveries whose index row had committed: only the marker was left.
    pub completed: usize,
    /// Files whose index row never committed, removed (their mail stayed with Postfix).
    pub removed: usize,
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
