//! What every command works on: the store, the listener's settings, the login and
//! selection state (RFC 3501 §3) and whether CONDSTORE and QRESYNC are on. The session
//! owns one and hands it to the command families in `command/`; it lives apart from the
//! session because the commands need it and the session needs the commands.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use imap_codec::imap_types::mailbox::Mailbox;
use lifeboat_mailstore::address::Address;
use lifeboat_mailstore::error::Result as StoreResult;
use lifeboat_mailstore::reader::{MailboxRecord, Reader};
use lifeboat_mailstore::store::Store;

pub use super::mailbox::Enabled;
use super::mailbox::Selected;
use super::names::mailbox_name;
use super::response::{Outbox, Responses, bye};

/// What the listener a session came in on allows.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    pub hostname: String,
    /// Whether LOGIN/AUTHENTICATE may be used before TLS: loopback listeners, or the
    /// admin allowed plaintext.
    pub plaintext_login: bool,
    /// Whether STARTTLS can be offered (a certificate is loaded).
    pub starttls: bool,
    /// Which origin owns which domain: an APPEND to Sent while the user's origin is
    /// down is a sent copy, replayed to the origin later.
    pub routes: lifeboat_mailstore::capture::Routes,
}

/// The authenticated user.
#[derive(Clone, Debug)]
pub struct User {
    pub id: i64,
    pub address: Address,
}

pub enum State {
    NotAuthenticated,
    Authenticated(User),
    Selected(User, Box<Selected>),
    Logout,
}

pub struct Context {
    pub store: Store,
    pub config: Arc<SessionConfig>,
    pub state: State,
    /// CONDSTORE was enabled (or used): FETCH responses carry MODSEQ.
    pub condstore: bool,
    /// QRESYNC was enabled (RFC 7162 §3.2.3): expunges are reported as VANISHED, and
    /// SELECT's QRESYNC parameter and UID FETCH's VANISHED modifier may be used.
    pub qresync: bool,
    /// Where the running command sends responses it makes before its reply.
    pub outbox: Outbox,
    /// Set when the connection ends (shutdown, client gone) while a command runs.
    pub cancel: Cancel,
}

/// Tells a command that runs long (FETCH, SEARCH over many messages) to stop: the server
/// is shutting down or the client is gone, and nobody will read the answer. Commands
/// look at it between messages, so shutdown never waits for one to finish.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl Context {
    pub fn new(store: Store, config: Arc<SessionConfig>) -> Context {
        Context {
            store,
            config,
            state: State::NotAuthenticated,
            condstore: false,
            qresync: false,
            outbox: Outbox::default(),
            cancel: Cancel::default(),
        }
    }

    /// How this session hears of changes.
    pub fn enabled(&self) -> Enabled {
        Enabled {
            condstore: self.condstore,
            qresync: self.qresync,
        }
    }

    pub fn user(&self) -> Option<&User> {
        match &self.state {
            State::Authenticated(user) | State::Selected(user, _) => Some(user),
            _ => None,
        }
    }

    /// The user, for commands the session routes only once logged in.
    pub fn logged_in_user(&self) -> User {
        self.user().cloned().expect("routed after login")
    }

    pub fn user_id(&self) -> i64 {
        self.user().map(|u| u.id).unwrap_or_default()
    }

    pub fn is_selected(&self) -> bool {
        matches!(self.state, State::Selected(..))
    }

    pub fn is_read_only(&self) -> bool {
        matches!(&self.state, State::Selected(_, selected) if selected.read_only)
    }

    /// The store, the user and the selected mailbox, borrowed apart, for commands the
    /// session routes only in the selected state.
    pub fn selected(&mut self) -> (&Store, &User, &mut Selected) {
        let State::Selected(user, selected) = &mut self.state else {
            unreachable!("routed in the selected state")
        };
        (&self.store, user, selected)
    }

    pub fn selected_name(&self) -> Option<&str> {
        match &self.state {
            State::Selected(_, selected) => Some(&selected.record.name),
            _ => None,
        }
    }

    /// Back to the authenticated state (CLOSE, UNSELECT, a failed SELECT).
    pub fn deselect(&mut self) {
        if let State::Selected(user, _) = &self.state {
            self.state = State::Authenticated(user.clone());
        }
    }

    /// The user's mailbox a client named; `None` when there is none by that name (or
    /// the name is not modified UTF-7).
    pub fn find_mailbox(
        &self,
        reader: &Reader,
        mailbox: &Mailbox<'_>,
    ) -> StoreResult<Option<MailboxRecord>> {
        match mailbox_name(mailbox) {
            Some(name) => reader.mailbox(self.user_id(), &name),
            None => Ok(None),
        }
    }

    /// Untagged EXISTS / EXPUNGE (or VANISHED) / FETCH for what changed in the selected
    /// mailbox since the client last heard, as NOOP, IDLE and the end of other commands
    /// report them.
    pub fn poll_changes(&mut self, reader: &Reader) -> StoreResult<Responses> {
        let enabled = self.enabled();
        let State::Selected(_, selected) = &mut self.state else {
            return Ok(Vec::new());
        };
        match selected.refresh(&self.store, reader, true, enabled, &[])? {
            Some(responses) => Ok(responses),
            None => Ok(vec![bye("the selected mailbox was deleted")]),
        }
    }
}
