//! What the pages need from messages, with no HTTP and no sockets: the MIME tree read
//! through `lifeboat_servers::imap::mime` (the store's one MIME reader), HTML made safe
//! to show, and new messages built for sending and drafts.

pub mod addresses;
pub mod compose;
pub mod names;
pub mod sanitize;
pub mod search;
pub mod summary;
pub mod view;
