//! The IMAP server (RFC 3501 with the extensions real clients rely on), on the store.
//!
//! - [`session`]: the protocol state machine, socket-free;
//! - [`mailbox`]: the selected mailbox as the client knows it;
//! - [`fetch`]: FETCH data items; [`mime`]: ENVELOPE, BODYSTRUCTURE and body sections;
//!   [`search`]: SEARCH keys;
//! - [`server`]: the tokio shell: listeners, TLS and STARTTLS, IDLE, limits.

mod command;
mod context;
pub mod fetch;
pub mod flags;
pub mod mailbox;
pub mod mime;
pub mod mutf7;
pub mod names;
pub mod response;
pub mod search;
pub mod server;
pub mod session;
#[cfg(test)]
mod testing;
