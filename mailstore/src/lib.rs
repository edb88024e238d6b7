//! Lifeboat's mail store: one Maildir per protected user plus an SQLite index, and (in
//! later modules) the IMAP, POP3 and submission servers that read it.
//!
//! Everything that stores a message goes through [`Store::deliver`], the one durable
//! write path (journal copies through its unsynced variant, [`Store::deliver_journal`]);
//! every index write goes through the store's single writer thread.

pub mod address;
pub mod capture;
pub mod check;
pub mod deliver;
pub mod error;
pub mod maildir;
pub mod outage;
pub mod password;
pub mod reader;
pub mod reloadable;
mod schema;
pub mod store;
pub mod synthetic;
pub mod users;
mod writer;

pub use address::Address;
pub use capture::{DivertOutcome, Fate, PlannedCopy, Routes};
pub use deliver::{Class, NewMessage, Stored};
pub use error::{Error, Result};
pub use maildir::Flags;
pub use outage::{OriginStatus, OutageState, ReplayCounts, Transition};
pub use reader::{MailboxRecord, MessageRecord, Reader, UserRecord};
pub use store::{RecoveryReport, Store};
pub use users::{NewUser, RowFailure};
