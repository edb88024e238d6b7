//! The IMAP server (RFC 3501 with the extensions real clients rely on), on the store.
//!
//! - [`session`]: the protocol state machine, socket-free: TLS, logins, capabilities,
//!   and routing each command by state to its family in `command/` (mailboxes, select,
//!   fetch, store, copy, append, expunge, search, info), which work on the session's
//!   `context` (store, login and selection state);
//! - [`mailbox`]: the selected mailbox as the client knows it, and what changed in it;
//!   [`vanished`]: what a QRESYNC client is told of messages expunged while it was away;
//! - [`fetch`]: FETCH data items; [`mime`]: ENVELOPE, BODYSTRUCTURE and body sections;
//!   [`search`]: SEARCH keys; [`esearch`]: ESEARCH result options and SAVE; [`sort`] and
//!   [`thread`]: SORT keys and THREAD's algorithms;
//! - [`preparse`]: what imap-codec does not parse (`SEARCH RETURN (...)`, `$`), taken
//!   out of a command before it does, and the extended LIST it refuses ([`list`]): a
//!   message becomes a [`session::Request`];
//! - [`response`]: building responses, with typed NO codes; [`flags`] and [`names`]:
//!   flags and mailbox names between the wire and the store ([`mutf7`]), and LIST
//!   patterns; [`list`]: LIST and LSUB as RFC 5258 extends them, and the parse of that
//!   syntax, which imap-codec lacks;
//! - [`input`]: the client's bytes into messages (lines and literals), with the limits
//!   before and after login, APPEND literals spooled to a file; [`upload`]: the
//!   messages of an APPEND (several with MULTIAPPEND);
//! - [`server`]: the tokio shell: listeners, TLS and STARTTLS, logins, IDLE, time limits,
//!   responses written as commands make them.
//!
//! The modules form layers without cycles: server → (input, session) → command →
//! context → mailbox → (fetch, vanished) → (mime, flags, response); input, session and
//! command → upload; input and session → preparse → (list, esearch).

mod command;
mod context;
pub mod esearch;
pub mod fetch;
pub mod flags;
pub mod input;
pub mod list;
pub mod mailbox;
pub mod mime;
pub mod mutf7;
pub mod names;
pub mod preparse;
pub mod response;
pub mod search;
pub mod server;
pub mod session;
pub mod sort;
#[cfg(test)]
mod testing;
pub mod thread;
pub mod upload;
pub mod vanished;
