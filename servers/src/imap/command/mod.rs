//! The commands, one module per family (as Stalwart's `imap/src/op/` has them). Each
//! command is a function of the session's [`Context`](super::context::Context), a reader
//! of the index for this one command, the command's tag and its arguments, and returns
//! the [`Reply`](super::response::Reply). The session routes a command here only in the
//! states RFC 3501 allows it in, so no command checks the state again.
//!
//! Commands about the connection itself (CAPABILITY, STARTTLS, LOGOUT, and the logins
//! the server runs) stay with the session, which knows about TLS.

pub mod append;
pub mod copy;
pub mod expunge;
pub mod fetch;
pub mod info;
pub mod mailboxes;
pub mod search;
pub mod select;
pub mod sort;
pub mod store;
pub mod thread;
