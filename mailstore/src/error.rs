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
