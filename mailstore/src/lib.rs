//! Lifeboat's store core: one Maildir per protected user plus an SQLite index, and what
//! lives on them — users, aliases and passwords, the origins' outage state, the replay
//! ledger, capture planning, expiry and `store check`. No protocol lives here: the milter
//! (`lifeboat-milter`) and the user-facing servers (`lifeboat-servers`) sit side by side
//! on this crate. The design is described in `docs/design.md`.
//!
//! Everything that stores a message goes through [`Store::deliver`], the one durable
//! write path (journal copies through its unsynced variant, [`Store::deliver_journal`]);
//! every index write goes through the store's single writer thread.

pub mod address;
pub mod capture;
pub mod check;
pub mod class;
pub mod copy;
pub mod deliver;
pub mod directory_sync;
pub mod error;
pub mod expunge;
pub mod flags;
pub mod folder;
pub mod mailboxes;
pub mod maildir;
pub mod metrics;
pub mod outage;
pub mod outcome;
pub mod password;
pub mod private;
pub mod reader;
pub mod reloadable;
pub mod replay;
mod schema;
pub mod secret;
pub mod store;
pub mod synthetic;
#[cfg(test)]
mod testing;
pub mod trace;
pub mod users;
pub mod web;
mod writer;

pub use address::Address;
pub use capture::{DivertOutcome, Fate, PlannedCopy, Routes};
pub use class::Class;
pub use deliver::{NewMessage, Stored};
pub use directory_sync::{DirectoryUser, SyncChanges, SyncRun};
pub use error::{Error, Result};
pub use expunge::{ExpireReport, ExpungeReport};
pub use maildir::Flags;
pub use outage::{OriginStatus, OutageState, ProbeRecord, ReplayCounts, Transition};
pub use outcome::CaptureOutcome;
pub use reader::{MailboxRecord, MessageRecord, Reader, UserRecord, UserSource};
pub use secret::{Keyring, LifeboatId};
pub use store::{RecoveryReport, Store};
pub use users::{NewUser, RowFailure};
