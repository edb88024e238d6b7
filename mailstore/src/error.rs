use std::path::PathBuf;

/// Everything the store can fail with. Capture paths treat every variant the same way:
/// the message was not stored, so the recipient stays with Postfix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("index: {0}")]
    Index(#[from] rusqlite::Error),
    /// A request the store refuses: unknown user, address already taken, …
    #[error("{0}")]
    Refused(String),
    /// A mailbox the user named cannot be created, renamed or deleted.
    #[error(transparent)]
    Mailbox(#[from] MailboxError),
    /// One row of a batch was refused; the whole batch was rolled back.
    #[error("row {row}: {message}")]
    RowRefused { row: usize, message: String },
    #[error("{0} is held by another process (is `lifeboat serve` running?)")]
    DeliveryLocked(PathBuf),
    #[error("this store handle does not hold the delivery lock")]
    NotDeliveryHolder,
    #[error("the index writer has stopped")]
    WriterGone,
    #[error("index commit failed: {0}")]
    CommitFailed(String),
}

/// Why the store refused to create, rename or delete a mailbox. The words are for the
/// user and name no protocol: each server adds its own codes (IMAP's `NONEXISTENT`,
/// `ALREADYEXISTS`, `INUSE`, …) by the variant, so none is parsed out of a text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MailboxError {
    /// The name cannot become a Maildir++ folder name.
    #[error("`{0}` is not a usable mailbox name")]
    InvalidName(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("no such mailbox")]
    Nonexistent,
    /// CREATE INBOX.
    #[error("INBOX always exists")]
    InboxAlwaysExists,
    /// RENAME onto INBOX.
    #[error("INBOX exists")]
    InboxCannotBeReplaced,
    #[error("renaming INBOX is not supported; create a mailbox and move the mail")]
    InboxCannotBeRenamed,
    #[error("INBOX cannot be deleted")]
    InboxCannotBeDeleted,
    /// DELETE of a mailbox that holds mailboxes (RFC 3501 §6.3.4 allows refusing).
    #[error("delete the mailboxes inside it first")]
    HasChildren,
    /// DELETE of a mailbox holding this many copies that replay has yet to deliver.
    #[error("{0} message(s) in it still have to go back to your mail server")]
    AwaitingReplay(u64),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds the path or action to an I/O error, so a log line says what failed where.
pub(crate) trait IoContext<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: what(),
            source,
        })
    }
}

pub(crate) fn refused<T>(message: impl Into<String>) -> Result<T> {
    Err(Error::Refused(message.into()))
}
