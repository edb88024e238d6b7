//! Lifeboat's LDAP directory client (OpenLDAP or Active Directory, through `ldap3` over
//! StartTLS or LDAPS with rustls):
//!
//! - [`list_users`]: the paged search (RFC 2696) that reads every user under `base`,
//!   maps each entry to a [`DirectoryUser`] (or a [`Skipped`] with its reason) and drops
//!   entries that conflict among themselves; `lifeboat directory sync` hands the result
//!   to `Store::sync_directory`;
//! - [`check_password`]: a login checked by binding as the user, after finding their
//!   entry with the service account, with a verdict that tells "wrong password" from
//!   "the directory cannot be reached" (only the latter may fall back to a cached
//!   password).
//!
//! A crate of its own because both the `lifeboat` binary (sync) and `lifeboat-servers`
//! (logins) use it, and neither should depend on the other; it holds no store logic
//! beyond the types it produces for it.

mod connection;
mod entry;
mod listing;
mod login;
mod settings;
pub mod tls;

pub use connection::DirectoryError;
pub use lifeboat_mailstore::directory_sync::{
    DirectoryUser, DisableReason, SkipReason, Skipped, SyncInput,
};
pub use listing::list_users;
pub use login::{Verdict, check_password};
pub use settings::{Attributes, Kind, Settings};
