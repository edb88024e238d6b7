//! The IMAP server (RFC 3501 with the extensions real clients rely on), on the store.
//!
//! - [`session`]: the protocol state machine, socket-free: TLS, logins, capabilities,
//!   and routing each command by state to its family in `command/` (mailboxes, select,
//!   fetch, store, copy, append, expunge, search, info), which work on the session's
//!   `context` (store, login and selection state);
//! - [`mailbox`]: the selected mailbox as the client knows it, and what changed in it;
//! - [`fetch`]: FETCH data items; [`mime`]: ENVELOPE, BODYSTRUCTURE and body sections;
//!   [`search`]: SEARCH keys;
//! - [`response`]: building responses, with typed NO codes; [`flags`] and [`names`]:
//!   flags and mailbox names between the wire and the store ([`mutf7`]), and LIST
//!   patterns; [`list`]: LIST and LSUB as RFC 5258 extends them, and the parse of that
//!   syntax, which imap-codec lacks;
//! - [`input`]: the client's bytes into messages (lines and literals), with the limits
//!   before and after login, APPEND literals spooled to a file;
//! - [`server`]: the tokio shell: listeners, TLS and STARTTLS, logins, IDLE, time limits,
//!   responses written as commands make them.
//!
//! The modules form layers without cycles: server → (input, session) → command →
//! context → mailbox → fetch → (mime, flags, response).

mod command;
mod context;
pub mod fetch;
pub mod flags;
pub mod input;
pub mod list;
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
