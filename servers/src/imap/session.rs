//! One IMAP session as a state machine over the store: commands in, responses out. No
//! sockets here (the server in `server.rs` drives it), so every rule is unit-tested.
//!
//! States follow RFC 3501 §3: not authenticated → authenticated → selected → logout.
//! The session owns the connection's side of them (TLS, logins, capabilities) and routes
//! every other command to its family in `command/`, which work on the session's
//! `Context`. Store access is blocking (SQLite, files); the server runs each command on
//! the blocking pool.

use std::borrow::Cow;
use std::sync::Arc;

use imap_codec::imap_types::auth::AuthMechanism;
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::{Tag, Vec1};
use imap_codec::imap_types::response::{
    Capability, Code, CommandContinuationRequest, Data, Response,
};
use lifeboat_mailstore::error::Result as StoreResult;
use lifeboat_mailstore::reader::{Reader, UserRecord};
use lifeboat_mailstore::store::Store;

use super::command::store::FlagUpdate;
use super::command::{append, copy, expunge, fetch, info, mailboxes, search, select, store};
use super::context::{Context, State};
pub use super::context::{SessionConfig, User};
pub use super::response::{After, NoCode, Rejection, Reply};
use super::response::{Responses, bad, bye, data, no, ok, ok_code};

/// Largest literal (an APPEND) accepted: advertised as APPENDLIMIT, enforced by the
/// server.
pub const MAX_LITERAL: u32 = 50 * 1024 * 1024;

pub struct Session {
    cx: Context,
    tls: bool,
}

impl Session {
    /// A session reads the index through the store's pool of connections, so an idle
    /// session holds no SQLite connection (and its page cache) of its own.
    pub fn new(store: Store, config: Arc<SessionConfig>, tls: bool) -> Session {
        Session {
            cx: Context::new(store, config),
            tls,
        }
    }

    pub fn store(&self) -> &Store {
        &self.cx.store
    }

    pub fn is_selected(&self) -> bool {
        self.cx.is_selected()
    }

    pub fn tls_started(&mut self) {
        self.tls = true;
    }

    pub fn is_authenticated(&self) -> bool {
        self.cx.user().is_some()
    }

    pub fn user(&self) -> Option<&User> {
        self.cx.user()
    }

    /// The greeting's capability list (what the client may use right now).
    pub fn capabilities(&self) -> Vec1<Capability<'static>> {
        let mut list = vec![
            Capability::Imap4Rev1,
            Capability::LiteralPlus,
            Capability::SaslIr,
            Capability::Id,
            Capability::Enable,
            Capability::Idle,
            Capability::Namespace,
            Capability::Unselect,
            Capability::CondStore,
            Capability::UidPlus,
            Capability::Move,
            other_capability("SPECIAL-USE"),
            other_capability(&format!("APPENDLIMIT={MAX_LITERAL}")),
        ];
        if !self.is_authenticated() {
            if !self.tls && self.cx.config.starttls {
                list.push(Capability::StartTls);
            }
            if self.login_allowed() {
                list.push(Capability::Auth(AuthMechanism::Plain));
            } else {
                list.push(Capability::LoginDisabled);
            }
        }
        Vec1::try_from(list).expect("not empty")
    }

    fn login_allowed(&self) -> bool {
        self.tls || self.cx.config.plaintext_login
    }

    /// Handles one command (LOGIN, AUTHENTICATE and IDLE are driven by the server, which
    /// calls [`Session::logged_in`] and [`Session::poll_changes`]).
    pub fn handle(&mut self, command: Command<'static>) -> Reply {
        let tag = command.tag;
        let store = self.cx.store.clone();
        match store.with_reader(|reader| self.dispatch(reader, &tag, command.body)) {
            Ok(reply) => reply,
            Err(e) => {
                tracing::error!(error = %e, "imap: store error");
                Reply::new(vec![no(&tag, None, "server error; try again")])
            }
        }
    }

    /// Routes a command by the states RFC 3501 §6 allows it in: any state here, the
    /// rest once logged in ([`authenticated`]).
    fn dispatch(
        &mut self,
        reader: &Reader,
        tag: &Tag<'static>,
        body: CommandBody<'static>,
    ) -> StoreResult<Reply> {
        use CommandBody as C;
        match body {
            C::Capability => Ok(self.capability(tag)),
            C::Noop | C::Check => select::noop(&mut self.cx, reader, tag),
            C::Logout => Ok(self.logout(tag)),
            C::StartTLS => Ok(self.starttls(tag)),
            C::Id { .. } => Ok(info::id(tag)),
            // The server checks passwords itself (asynchronously, with rate limits).
            C::Login { .. } | C::Authenticate { .. } => Ok(Reply::new(vec![bad(
                tag,
                "LOGIN and AUTHENTICATE are handled elsewhere",
            )])),
            _ if !self.is_authenticated() => Ok(Reply::new(vec![bad(tag, "log in first")])),
            body => authenticated(&mut self.cx, reader, tag, body),
        }
    }

    fn capability(&self, tag: &Tag<'static>) -> Reply {
        Reply::new(vec![
            data(Data::Capability(self.capabilities())),
            ok(tag, "CAPABILITY completed"),
        ])
    }

    fn logout(&mut self, tag: &Tag<'static>) -> Reply {
        self.cx.state = State::Logout;
        Reply {
            after: After::Logout,
            ..Reply::new(vec![bye("logging out"), ok(tag, "LOGOUT completed")])
        }
    }

    fn starttls(&self, tag: &Tag<'static>) -> Reply {
        if self.tls || !self.cx.config.starttls {
            Reply::new(vec![bad(tag, "TLS is already active or not available")])
        } else if self.is_authenticated() {
            Reply::new(vec![bad(tag, "already authenticated")])
        } else {
            Reply {
                after: After::StartTls,
                ..Reply::new(vec![ok(tag, "begin TLS negotiation now")])
            }
        }
    }

    /// The user proved who they are (the server checked the password, with the shared
    /// rate limits): the session is authenticated.
    pub fn logged_in(&mut self, user: &UserRecord) {
        self.cx.state = State::Authenticated(User {
            id: user.id,
            address: user.address.clone(),
        });
    }

    /// Tagged OK for a successful login, with the capabilities that now apply.
    pub fn login_ok(&self, tag: &Tag<'static>, text: &'static str) -> Response<'static> {
        ok_code(tag, Code::Capability(self.capabilities()), text)
    }

    /// Why a login may not even be tried on this connection, if it may not.
    pub fn login_refusal(&self) -> Option<Rejection> {
        if self.is_authenticated() {
            Some(Rejection::new(None, "already authenticated"))
        } else if !self.login_allowed() {
            Some(Rejection::new(
                Some(NoCode::PrivacyRequired),
                "use STARTTLS or the TLS port to log in",
            ))
        } else {
            None
        }
    }

    /// Untagged EXISTS / EXPUNGE / FETCH for what changed in the selected mailbox since
    /// the client last heard (for IDLE).
    pub fn poll_changes(&mut self, reader: &Reader) -> StoreResult<Responses> {
        self.cx.poll_changes(reader)
    }

    /// The continuation request AUTHENTICATE PLAIN sends when there is no initial
    /// response.
    pub fn empty_challenge() -> CommandContinuationRequest<'static> {
        CommandContinuationRequest::Base64(Cow::Borrowed(b""))
    }
}

/// Commands of the authenticated state (RFC 3501 §6.3, and ENABLE, NAMESPACE), then
/// once a mailbox is selected, those of the selected state ([`selected`]).
fn authenticated(
    cx: &mut Context,
    reader: &Reader,
    tag: &Tag<'static>,
    body: CommandBody<'static>,
) -> StoreResult<Reply> {
    use CommandBody as C;
    match body {
        C::Enable { capabilities } => Ok(info::enable(cx, tag, capabilities)),
        C::Namespace => Ok(info::namespace(tag)),
        C::List {
            reference,
            mailbox_wildcard,
        } => mailboxes::list(cx, reader, tag, &reference, &mailbox_wildcard, false),
        C::Lsub {
            reference,
            mailbox_wildcard,
        } => mailboxes::list(cx, reader, tag, &reference, &mailbox_wildcard, true),
        C::Status {
            mailbox,
            item_names,
        } => mailboxes::status(cx, reader, tag, &mailbox, &item_names),
        C::Select {
            mailbox,
            parameters,
        } => select::select(cx, reader, tag, &mailbox, &parameters, false),
        C::Examine {
            mailbox,
            parameters,
        } => select::select(cx, reader, tag, &mailbox, &parameters, true),
        C::Subscribe { mailbox } => mailboxes::subscribe(cx, reader, tag, &mailbox, true),
        C::Unsubscribe { mailbox } => mailboxes::subscribe(cx, reader, tag, &mailbox, false),
        C::Create { mailbox } => mailboxes::create(cx, reader, tag, &mailbox),
        C::Delete { mailbox } => mailboxes::delete(cx, reader, tag, &mailbox),
        C::Rename { from, to } => mailboxes::rename(cx, reader, tag, &from, &to),
        C::Append {
            mailbox,
            flags,
            date,
            message,
        } => append::append(cx, reader, tag, &mailbox, &flags, date, message),
        _ if !cx.is_selected() => Ok(Reply::new(vec![bad(tag, "select a mailbox first")])),
        body => selected(cx, reader, tag, body),
    }
}

/// Commands of the selected state (RFC 3501 §6.4, and UNSELECT, MOVE, UID EXPUNGE).
fn selected(
    cx: &mut Context,
    reader: &Reader,
    tag: &Tag<'static>,
    body: CommandBody<'static>,
) -> StoreResult<Reply> {
    use CommandBody as C;
    match body {
        C::Close => select::close(cx, reader, tag),
        C::Unselect => Ok(select::unselect(cx, tag)),
        C::Expunge => expunge::expunge(cx, reader, tag, None),
        C::ExpungeUid { sequence_set } => expunge::expunge(cx, reader, tag, Some(&sequence_set)),
        C::Fetch {
            sequence_set,
            macro_or_item_names,
            uid,
            modifiers,
        } => fetch::fetch(
            cx,
            reader,
            tag,
            &sequence_set,
            macro_or_item_names,
            uid,
            &modifiers,
        ),
        C::Store {
            sequence_set,
            kind,
            response,
            flags,
            uid,
            modifiers,
        } => {
            let update = FlagUpdate::new(kind, response, flags, &modifiers);
            store::store(cx, reader, tag, &sequence_set, uid, update)
        }
        C::Copy {
            sequence_set,
            mailbox,
            uid,
        } => copy::copy(cx, reader, tag, &sequence_set, &mailbox, uid, false),
        C::Move {
            sequence_set,
            mailbox,
            uid,
        } => copy::copy(cx, reader, tag, &sequence_set, &mailbox, uid, true),
        C::Search {
            charset,
            criteria,
            uid,
        } => search::search(cx, tag, charset, criteria, uid),
        _ => Ok(Reply::new(vec![bad(tag, "command not supported")])),
    }
}

fn other_capability(name: &str) -> Capability<'static> {
    Capability::try_from(name.to_string()).expect("a valid capability atom")
}

#[cfg(test)]
mod tests;
