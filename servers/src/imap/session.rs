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
use imap_codec::imap_types::extensions::sort::SortAlgorithm;
use imap_codec::imap_types::extensions::thread::ThreadingAlgorithm;
use imap_codec::imap_types::response::{
    Capability, Code, CommandContinuationRequest, Data, Response,
};
use lifeboat_mailstore::error::Result as StoreResult;
use lifeboat_mailstore::reader::{Reader, UserRecord};
use lifeboat_mailstore::store::Store;

use super::command::store::FlagUpdate;
use super::command::{
    append, copy, expunge, fetch, info, mailboxes, search, select, sort, store, thread,
};
pub use super::context::{Cancel, SessionConfig, User};
use super::context::{Context, State};
use super::esearch::ReturnOptions;
use super::list::ListCommand;
use super::mailbox::MessageSet;
pub use super::preparse::Request;
// Where the server and the fuzz target have always found them.
pub use super::response::{After, Outbox, Outgoing, Reply};
use super::response::{NoCode, Rejection, Responses, bad, bye, data, no, ok, ok_code};
use super::upload::Append;

pub use super::upload::MAX_LITERAL;

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
            Capability::QResync,
            Capability::UidPlus,
            Capability::Move,
            other_capability("MULTIAPPEND"),
            Capability::Binary,
            other_capability("SPECIAL-USE"),
            other_capability("CHILDREN"),
            Capability::ListExtended,
            other_capability("LIST-STATUS"),
            Capability::StatusSize,
            other_capability(&format!("APPENDLIMIT={MAX_LITERAL}")),
            Capability::Sort(None),
            Capability::Sort(Some(SortAlgorithm::Display)),
            Capability::Thread(ThreadingAlgorithm::OrderedSubject),
            Capability::Thread(ThreadingAlgorithm::References),
            other_capability("ESEARCH"),
            other_capability("SEARCHRES"),
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
    /// calls [`Session::logged_in`] and [`Session::poll_changes`]). Untagged responses
    /// a command sends ahead (FETCH) come first in the reply.
    pub fn handle(&mut self, request: impl Into<Request>) -> Reply {
        self.handle_with(request, Outbox::default())
    }

    /// [`Session::handle`], with the responses a command sends ahead going to `outbox`
    /// as they are made.
    pub fn handle_with(&mut self, request: impl Into<Request>, outbox: Outbox) -> Reply {
        let request = request.into();
        let tag = request.tag().clone();
        self.answer(&tag, outbox, |this, reader| match request {
            Request::Command(command) => this.dispatch(reader, &command.tag, command.body, None),
            Request::Search { command, returns } => {
                this.dispatch(reader, &command.tag, command.body, Some(returns))
            }
            Request::List(_) if !this.is_authenticated() => {
                Ok(Reply::new(vec![bad(&tag, "log in first")]))
            }
            Request::List(list) => mailboxes::list(&mut this.cx, reader, &list),
        })
    }

    /// An APPEND the server framed itself (MULTIAPPEND's several messages, big ones in a
    /// spool file), like [`Session::handle_with`].
    pub fn handle_append(&mut self, append: Append, outbox: Outbox) -> Reply {
        let tag = append.tag.clone();
        self.answer(&tag, outbox, |this, reader| {
            if !this.is_authenticated() {
                return Ok(Reply::new(vec![bad(&append.tag, "log in first")]));
            }
            append::append(&mut this.cx, reader, append)
        })
    }

    /// Runs a command on a reader of the index, with `outbox` for what it sends ahead; a
    /// store error is a tagged NO.
    fn answer(
        &mut self,
        tag: &Tag<'static>,
        outbox: Outbox,
        run: impl FnOnce(&mut Self, &Reader) -> StoreResult<Reply>,
    ) -> Reply {
        self.cx.outbox = outbox;
        let store = self.cx.store.clone();
        let mut reply = match store.with_reader(|reader| run(self, reader)) {
            Ok(reply) => reply,
            Err(e) => {
                tracing::error!(error = %e, "imap: store error");
                Reply::new(vec![no(tag, None, "server error; try again")])
            }
        };
        // A streaming outbox goes now: the server knows the command is over when it does.
        let sent_ahead = std::mem::take(&mut self.cx.outbox).into_kept();
        reply
            .responses
            .splice(0..0, sent_ahead.into_iter().map(Outgoing::Line));
        reply
    }

    /// What the server sets to stop the command running now (see [`Cancel`]).
    pub fn cancel(&self) -> Cancel {
        self.cx.cancel.clone()
    }

    /// Routes a command by the states RFC 3501 §6 allows it in: any state here, the
    /// rest once logged in ([`authenticated`]).
    fn dispatch(
        &mut self,
        reader: &Reader,
        tag: &Tag<'static>,
        body: CommandBody<'static>,
        search_return: Option<ReturnOptions>,
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
            body => authenticated(&mut self.cx, reader, tag, body, search_return),
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
    search_return: Option<ReturnOptions>,
) -> StoreResult<Reply> {
    use CommandBody as C;
    match body {
        C::Enable { capabilities } => Ok(info::enable(cx, tag, capabilities)),
        C::Namespace => Ok(info::namespace(tag)),
        C::List {
            reference,
            mailbox_wildcard,
        } => {
            let list = ListCommand::basic(tag.clone(), &reference, &mailbox_wildcard, false);
            mailboxes::list(cx, reader, &list)
        }
        C::Lsub {
            reference,
            mailbox_wildcard,
        } => {
            let list = ListCommand::basic(tag.clone(), &reference, &mailbox_wildcard, true);
            mailboxes::list(cx, reader, &list)
        }
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
        body @ C::Append { .. } => {
            let command = Command {
                tag: tag.clone(),
                body,
            };
            match Append::from_command(command) {
                Some(append) => append::append(cx, reader, append),
                None => Ok(Reply::new(vec![bad(tag, "could not parse that command")])),
            }
        }
        _ if !cx.is_selected() => Ok(Reply::new(vec![bad(tag, "select a mailbox first")])),
        body => selected(cx, reader, tag, body, search_return),
    }
}

/// Commands of the selected state (RFC 3501 §6.4, and UNSELECT, MOVE, UID EXPUNGE,
/// SORT and THREAD). A set may be `$` (RFC 5182): it names the saved search result.
fn selected(
    cx: &mut Context,
    reader: &Reader,
    tag: &Tag<'static>,
    body: CommandBody<'static>,
    search_return: Option<ReturnOptions>,
) -> StoreResult<Reply> {
    use CommandBody as C;
    let named = |cx: &mut Context, set| MessageSet::named(set, &cx.selected().2.view);
    match body {
        C::Close => select::close(cx, reader, tag),
        C::Unselect => Ok(select::unselect(cx, tag)),
        C::Expunge => expunge::expunge(cx, reader, tag, None),
        C::ExpungeUid { sequence_set } => {
            let set = named(cx, sequence_set);
            expunge::expunge(cx, reader, tag, Some(&set))
        }
        C::Fetch {
            sequence_set,
            macro_or_item_names,
            uid,
            modifiers,
        } => {
            let set = named(cx, sequence_set);
            fetch::fetch(cx, reader, tag, &set, macro_or_item_names, uid, &modifiers)
        }
        C::Store {
            sequence_set,
            kind,
            response,
            flags,
            uid,
            modifiers,
        } => {
            let update = FlagUpdate::new(kind, response, flags, &modifiers);
            let set = named(cx, sequence_set);
            store::store(cx, reader, tag, &set, uid, update)
        }
        C::Copy {
            sequence_set,
            mailbox,
            uid,
        } => {
            let set = named(cx, sequence_set);
            copy::copy(cx, reader, tag, &set, &mailbox, uid, false)
        }
        C::Move {
            sequence_set,
            mailbox,
            uid,
        } => {
            let set = named(cx, sequence_set);
            copy::copy(cx, reader, tag, &set, &mailbox, uid, true)
        }
        C::Search {
            charset,
            criteria,
            uid,
        } => search::search(cx, reader, tag, charset, criteria, uid, search_return),
        C::Sort {
            sort_criteria,
            charset,
            search_criteria,
            uid,
        } => sort::sort(
            cx,
            reader,
            tag,
            &sort_criteria,
            &charset,
            search_criteria,
            uid,
        ),
        C::Thread {
            algorithm,
            charset,
            search_criteria,
            uid,
        } => thread::thread(cx, reader, tag, &algorithm, &charset, search_criteria, uid),
        _ => Ok(Reply::new(vec![bad(tag, "command not supported")])),
    }
}

fn other_capability(name: &str) -> Capability<'static> {
    Capability::try_from(name.to_string()).expect("a valid capability atom")
}

#[cfg(test)]
mod tests {
    use crate::imap::session::After;
    use crate::imap::testing::{Fixture, USER, encode};

    const COMMON: &str = "IMAP4REV1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT \
                          CONDSTORE QRESYNC UIDPLUS MOVE MULTIAPPEND BINARY SPECIAL-USE \
                          CHILDREN LIST-EXTENDED LIST-STATUS STATUS=SIZE APPENDLIMIT=52428800 \
                          SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES ESEARCH \
                          SEARCHRES";

    #[test]
    fn capability_depends_on_the_listener_and_the_login() {
        let mut plaintext = Fixture::new();
        assert_eq!(
            plaintext.run(b"a1 CAPABILITY\r\n"),
            [
                format!("* CAPABILITY {COMMON} AUTH=PLAIN\r\n"),
                "a1 OK CAPABILITY completed\r\n".into()
            ]
        );
        let mut tls_first = Fixture::with_listener(false, true);
        assert_eq!(
            tls_first.run(b"a1 CAPABILITY\r\n")[0],
            format!("* CAPABILITY {COMMON} STARTTLS LOGINDISABLED\r\n")
        );
        let mut logged_in = Fixture::logged_in(0);
        assert_eq!(
            logged_in.run(b"a1 CAPABILITY\r\n")[0],
            format!("* CAPABILITY {COMMON}\r\n")
        );
    }

    #[test]
    fn only_any_state_commands_work_before_login() {
        let mut f = Fixture::new();
        assert_eq!(f.run(b"a1 NOOP\r\n"), ["a1 OK NOOP completed\r\n"]);
        // CHECK is answered like NOOP, in any state.
        assert_eq!(f.run(b"a2 CHECK\r\n"), ["a2 OK NOOP completed\r\n"]);
        for command in [
            &b"a3 SELECT INBOX\r\n"[..],
            b"a3 LIST \"\" *\r\n",
            b"a3 FETCH 1 FLAGS\r\n",
            b"a3 ENABLE CONDSTORE\r\n",
            b"a3 IDLE\r\n",
        ] {
            assert_eq!(f.run(command), ["a3 BAD log in first\r\n"]);
        }
    }

    #[test]
    fn login_and_authenticate_belong_to_the_server() {
        let mut f = Fixture::new();
        for command in [&b"a1 LOGIN a pw\r\n"[..], b"a1 AUTHENTICATE PLAIN\r\n"] {
            assert_eq!(
                f.run(command),
                ["a1 BAD LOGIN and AUTHENTICATE are handled elsewhere\r\n"]
            );
        }
        assert!(!f.session.is_authenticated());
    }

    #[test]
    fn starttls_when_offered_and_not_yet_active() {
        let mut f = Fixture::new();
        assert_eq!(
            f.run(b"a1 STARTTLS\r\n"),
            ["a1 BAD TLS is already active or not available\r\n"]
        );
        assert_eq!(f.after, After::Continue);

        let mut f = Fixture::with_listener(false, true);
        assert_eq!(
            f.run(b"a2 STARTTLS\r\n"),
            ["a2 OK begin TLS negotiation now\r\n"]
        );
        assert_eq!(f.after, After::StartTls);
        f.session.tls_started();
        assert_eq!(
            f.run(b"a3 STARTTLS\r\n"),
            ["a3 BAD TLS is already active or not available\r\n"]
        );
        // Over TLS, logins are allowed.
        assert!(f.run(b"a4 CAPABILITY\r\n")[0].ends_with(" AUTH=PLAIN\r\n"));

        let mut f = Fixture::with_listener(true, true);
        f.session.logged_in(&f.user);
        assert_eq!(
            f.run(b"a5 STARTTLS\r\n"),
            ["a5 BAD already authenticated\r\n"]
        );
        assert_eq!(f.after, After::Continue);
    }

    #[test]
    fn logout_says_bye_and_ends_the_session() {
        let mut f = Fixture::selected(1);
        assert_eq!(
            f.run(b"a1 LOGOUT\r\n"),
            ["* BYE logging out\r\n", "a1 OK LOGOUT completed\r\n"]
        );
        assert_eq!(f.after, After::Logout);
        assert!(!f.session.is_authenticated() && !f.session.is_selected());
        assert_eq!(f.run(b"a2 SELECT INBOX\r\n"), ["a2 BAD log in first\r\n"]);
    }

    #[test]
    fn unsupported_commands_get_bad_in_the_state_they_reach() {
        let mut f = Fixture::logged_in(1);
        assert_eq!(f.run(b"a1 IDLE\r\n"), ["a1 BAD select a mailbox first\r\n"]);
        f.run(b"a2 SELECT INBOX\r\n");
        assert_eq!(f.run(b"a3 IDLE\r\n"), ["a3 BAD command not supported\r\n"]);
    }

    #[test]
    fn a_login_answers_with_the_new_capabilities() {
        let mut f = Fixture::new();
        f.session.logged_in(&f.user);
        let ok = f.session.login_ok(&tag(), "logged in");
        assert_eq!(
            encode(&ok),
            format!("a1 OK [CAPABILITY {COMMON}] logged in\r\n")
        );
        assert_eq!(f.session.user().unwrap().address.as_str(), USER);
    }

    #[test]
    fn logins_are_refused_before_tls_unless_allowed_and_once_logged_in() {
        let refusal = |f: &Fixture| {
            f.session
                .login_refusal()
                .map(|r| encode(&r.response(&tag())))
        };
        let tls_first = Fixture::with_listener(false, true);
        assert_eq!(
            refusal(&tls_first).unwrap(),
            "a1 NO [PRIVACYREQUIRED] use STARTTLS or the TLS port to log in\r\n"
        );
        let mut f = Fixture::new();
        assert_eq!(refusal(&f), None);
        f.session.logged_in(&f.user);
        assert_eq!(refusal(&f).unwrap(), "a1 NO already authenticated\r\n");
    }

    fn tag() -> imap_codec::imap_types::core::Tag<'static> {
        imap_codec::imap_types::core::Tag::try_from("a1").unwrap()
    }
}
