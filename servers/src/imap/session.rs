//! One IMAP session as a state machine over the store: commands in, responses out. No
//! sockets here (the server in `server.rs` drives it), so every rule is unit-tested.
//!
//! States follow RFC 3501 §3: not authenticated → authenticated → selected → logout.
//! Store access is blocking (SQLite, files); the server runs each command on the
//! blocking pool.

use std::borrow::Cow;
use std::sync::Arc;

use imap_codec::imap_types::command::{
    Command, CommandBody, FetchModifier, SelectParameter, StoreModifier,
};
use imap_codec::imap_types::core::{IString, NString, Tag, Vec1};
use imap_codec::imap_types::extensions::enable::CapabilityEnable;
use imap_codec::imap_types::flag::{Flag, FlagNameAttribute, FlagPerm, StoreType};
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::response::{
    Capability, Code, CommandContinuationRequest, Data, Response, Status,
};
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::SequenceSet;
use imap_codec::imap_types::status::{StatusDataItem, StatusDataItemName};

use super::flags::{SYSTEM_FLAGS, split_flags};
use super::mailbox::{MailboxView, Selected};
use super::names::{DELIMITER, delimiter, mailbox_name, to_mailbox, wildcard_match, wire_name};
pub use super::response::{After, NoCode, Rejection, Reply};
use super::response::{Responses, bad, data, no, nz, nz64, ok, uid_set, untagged_ok};
use super::{fetch, search};

use lifeboat_mailstore::Class;
use lifeboat_mailstore::address::Address;
use lifeboat_mailstore::deliver::NewMessage;
use lifeboat_mailstore::error::{MailboxError, Result as StoreResult};
use lifeboat_mailstore::flags::FlagChange;
use lifeboat_mailstore::maildir::Flags;
use lifeboat_mailstore::reader::{MailboxRecord, Reader};
use lifeboat_mailstore::store::Store;

/// Largest literal (an APPEND) accepted: advertised as APPENDLIMIT, enforced by the
/// server.
pub const MAX_LITERAL: u32 = 50 * 1024 * 1024;

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

enum State {
    NotAuthenticated,
    Authenticated(User),
    Selected(User, Box<Selected>),
    Logout,
}

pub struct Session {
    store: Store,
    config: Arc<SessionConfig>,
    tls: bool,
    state: State,
    /// CONDSTORE was enabled (or used): FETCH responses carry MODSEQ.
    condstore: bool,
}

impl Session {
    /// A session reads the index through the store's pool of connections, so an idle
    /// session holds no SQLite connection (and its page cache) of its own.
    pub fn new(store: Store, config: Arc<SessionConfig>, tls: bool) -> Session {
        Session {
            store,
            config,
            tls,
            state: State::NotAuthenticated,
            condstore: false,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn is_selected(&self) -> bool {
        matches!(self.state, State::Selected(..))
    }

    pub fn tls_started(&mut self) {
        self.tls = true;
    }

    pub fn is_authenticated(&self) -> bool {
        matches!(self.state, State::Authenticated(_) | State::Selected(..))
    }

    pub fn user(&self) -> Option<&User> {
        match &self.state {
            State::Authenticated(user) | State::Selected(user, _) => Some(user),
            _ => None,
        }
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
            if !self.tls && self.config.starttls {
                list.push(Capability::StartTls);
            }
            if self.login_allowed() {
                list.push(Capability::Auth(
                    imap_codec::imap_types::auth::AuthMechanism::Plain,
                ));
            } else {
                list.push(Capability::LoginDisabled);
            }
        }
        Vec1::try_from(list).expect("not empty")
    }

    /// SELECT/EXAMINE parameters: CONDSTORE turns CONDSTORE on; anything else is not
    /// supported.
    fn enable_condstore(&mut self, parameters: &[SelectParameter]) -> bool {
        let all_condstore = parameters
            .iter()
            .all(|p| matches!(p, SelectParameter::CondStore));
        if all_condstore {
            self.condstore = true;
        }
        all_condstore
    }

    fn login_allowed(&self) -> bool {
        self.tls || self.config.plaintext_login
    }

    /// Handles one command (AUTHENTICATE and IDLE are driven by the server, which calls
    /// [`Session::login`] and [`Session::poll_changes`]).
    pub fn handle(&mut self, command: Command<'static>) -> Reply {
        let tag = command.tag;
        let store = self.store.clone();
        match store.with_reader(|reader| self.dispatch(reader, &tag, command.body)) {
            Ok(reply) => reply,
            Err(e) => {
                tracing::error!(error = %e, "imap: store error");
                Reply::new(vec![no(&tag, None, "server error; try again")])
            }
        }
    }

    fn dispatch(
        &mut self,
        reader: &Reader,
        tag: &Tag<'static>,
        body: CommandBody<'static>,
    ) -> StoreResult<Reply> {
        use CommandBody as C;
        let authenticated = self.is_authenticated();
        let selected = matches!(self.state, State::Selected(..));
        let reply = match body {
            C::Capability => Reply::new(vec![
                data(Data::Capability(self.capabilities())),
                ok(tag, "CAPABILITY completed"),
            ]),
            C::Noop | C::Check => {
                let mut responses = self.poll_changes(reader)?;
                responses.push(ok(tag, "NOOP completed"));
                Reply::new(responses)
            }
            C::Logout => {
                self.state = State::Logout;
                Reply {
                    responses: vec![
                        Response::Status(Status::bye(None, "logging out").expect("valid text")),
                        ok(tag, "LOGOUT completed"),
                    ],
                    after: After::Logout,
                    auth_failed: false,
                }
            }
            C::StartTLS if self.tls || !self.config.starttls => {
                Reply::new(vec![bad(tag, "TLS is already active or not available")])
            }
            C::StartTLS if authenticated => Reply::new(vec![bad(tag, "already authenticated")]),
            C::StartTLS => Reply {
                responses: vec![ok(tag, "begin TLS negotiation now")],
                after: After::StartTls,
                auth_failed: false,
            },
            C::Id { .. } => Reply::new(vec![
                data(Data::Id {
                    parameters: Some(vec![(
                        IString::try_from("name").expect("valid"),
                        NString::try_from("Lifeboat").expect("valid"),
                    )]),
                }),
                ok(tag, "ID completed"),
            ]),
            // The server checks passwords itself (asynchronously, with rate limits).
            C::Login { .. } | C::Authenticate { .. } => Reply::new(vec![bad(
                tag,
                "LOGIN and AUTHENTICATE are handled elsewhere",
            )]),
            _ if !authenticated => Reply::new(vec![bad(tag, "log in first")]),

            C::Enable { capabilities } => {
                let mut enabled = Vec::new();
                for capability in capabilities.into_inner() {
                    if matches!(capability, CapabilityEnable::CondStore) {
                        self.condstore = true;
                        enabled.push(capability);
                    }
                }
                Reply::new(vec![
                    data(Data::Enabled {
                        capabilities: enabled,
                    }),
                    ok(tag, "ENABLE completed"),
                ])
            }
            C::Namespace => Reply::new(vec![
                data(Data::Namespace {
                    personal: vec![imap_codec::imap_types::extensions::namespace::Namespace {
                        prefix: IString::try_from("").expect("valid"),
                        delimiter: Some(
                            imap_codec::imap_types::core::QuotedChar::try_from(DELIMITER)
                                .expect("valid"),
                        ),
                        extensions: vec![],
                    }],
                    other: vec![],
                    shared: vec![],
                }),
                ok(tag, "NAMESPACE completed"),
            ]),
            C::List {
                reference,
                mailbox_wildcard,
            } => self.list(reader, tag, &reference, &mailbox_wildcard, false)?,
            C::Lsub {
                reference,
                mailbox_wildcard,
            } => self.list(reader, tag, &reference, &mailbox_wildcard, true)?,
            C::Status {
                mailbox,
                item_names,
            } => self.status(reader, tag, &mailbox, &item_names)?,
            C::Select {
                mailbox,
                parameters,
            }
            | C::Examine {
                mailbox,
                parameters,
            } if !parameters.is_empty() && !self.enable_condstore(&parameters) => {
                let _ = mailbox;
                Reply::new(vec![bad(tag, "only the CONDSTORE parameter is supported")])
            }
            C::Select { mailbox, .. } => self.select(reader, tag, &mailbox, false)?,
            C::Examine { mailbox, .. } => self.select(reader, tag, &mailbox, true)?,
            C::Subscribe { mailbox } => self.subscribe(reader, tag, &mailbox, true)?,
            C::Unsubscribe { mailbox } => self.subscribe(reader, tag, &mailbox, false)?,
            C::Create { mailbox } => {
                let user = self.user().cloned().expect("authenticated");
                let result = match mailbox_name(&mailbox) {
                    // A trailing delimiter only says "will hold mailboxes" (RFC 3501).
                    Some(name) => self
                        .store
                        .create_mailbox(&user.address, name.trim_end_matches(DELIMITER))
                        .map_err(Refused::Store),
                    None => Err(Refused::not_a_name()),
                };
                self.finish(reader, tag, result, "CREATE completed")?
            }
            C::Delete { mailbox } => {
                let user = self.user().cloned().expect("authenticated");
                let result = match mailbox_name(&mailbox) {
                    Some(name) if self.selected_name() == Some(name.as_str()) => {
                        Err(Refused::Session(Rejection::new(
                            None,
                            "close the mailbox before deleting it",
                        )))
                    }
                    Some(name) => self
                        .store
                        .delete_mailbox(&user.address, &name)
                        .map_err(Refused::Store),
                    None => Err(Refused::Store(MailboxError::Nonexistent.into())),
                };
                self.finish(reader, tag, result, "DELETE completed")?
            }
            C::Rename { from, to } => {
                let user = self.user().cloned().expect("authenticated");
                let result = match (mailbox_name(&from), mailbox_name(&to)) {
                    (Some(from), Some(to)) => self
                        .store
                        .rename_mailbox(&user.address, &from, &to)
                        .map_err(Refused::Store),
                    _ => Err(Refused::not_a_name()),
                };
                self.finish(reader, tag, result, "RENAME completed")?
            }
            C::Append {
                mailbox,
                flags,
                date,
                message,
            } => {
                let content = match message {
                    imap_codec::imap_types::extensions::binary::LiteralOrLiteral8::Literal(l) => {
                        l.into_inner().into_owned()
                    }
                    imap_codec::imap_types::extensions::binary::LiteralOrLiteral8::Literal8(l) => {
                        l.data.into_owned()
                    }
                };
                let date = date.map(|d| d.as_ref().timestamp());
                self.append(reader, tag, &mailbox, &flags, date, content)?
            }
            _ if !selected => Reply::new(vec![bad(tag, "select a mailbox first")]),

            C::Close => {
                // RFC 3501 §6.4.2: CLOSE expunges silently (unless read-only).
                self.expunge(reader, None)?;
                let user = self.user().cloned().expect("selected");
                self.state = State::Authenticated(user);
                Reply::new(vec![ok(tag, "CLOSE completed")])
            }
            C::Unselect => {
                let user = self.user().cloned().expect("selected");
                self.state = State::Authenticated(user);
                Reply::new(vec![ok(tag, "UNSELECT completed")])
            }
            C::Expunge => self.expunge_command(reader, tag, None)?,
            C::ExpungeUid { sequence_set } => {
                self.expunge_command(reader, tag, Some(&sequence_set))?
            }
            C::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                modifiers,
            } => {
                let mut items = fetch::item_names(macro_or_item_names, uid);
                let mut changed_since = None;
                for modifier in modifiers {
                    match modifier {
                        FetchModifier::ChangedSince(value) => changed_since = Some(value.get()),
                        // VANISHED needs QRESYNC, which is not offered.
                        FetchModifier::Vanished => {
                            return Ok(Reply::new(vec![bad(tag, "QRESYNC is not enabled")]));
                        }
                    }
                }
                if changed_since.is_some() && !items.contains(&fetch::Item::ModSeq) {
                    items.push(fetch::Item::ModSeq);
                }
                self.fetch(reader, tag, &sequence_set, &items, uid, changed_since)?
            }
            C::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                modifiers,
            } => {
                let silent = matches!(
                    response,
                    imap_codec::imap_types::flag::StoreResponse::Silent
                );
                let unchanged_since = modifiers
                    .iter()
                    .map(|StoreModifier::UnchangedSince(value)| *value)
                    .next();
                if unchanged_since.is_some() {
                    self.condstore = true;
                }
                let update = FlagUpdate {
                    kind,
                    silent,
                    flags,
                    unchanged_since,
                };
                self.store_flags(reader, tag, &sequence_set, update, uid)?
            }
            C::Copy {
                sequence_set,
                mailbox,
                uid,
            } => self.copy(reader, tag, &sequence_set, &mailbox, uid, false)?,
            C::Move {
                sequence_set,
                mailbox,
                uid,
            } => self.copy(reader, tag, &sequence_set, &mailbox, uid, true)?,
            C::Search {
                charset: Some(charset),
                ..
            } if !search::supports_charset(charset.as_ref()) => Reply::new(vec![Response::Status(
                Status::no(
                    Some(tag.clone()),
                    Some(Code::badcharset(vec![
                        imap_codec::imap_types::core::Charset::try_from("UTF-8").expect("valid"),
                        imap_codec::imap_types::core::Charset::try_from("US-ASCII").expect("valid"),
                    ])),
                    "only UTF-8 and US-ASCII searches",
                )
                .expect("valid text"),
            )]),
            C::Search { uid, criteria, .. } => self.search(tag, &criteria.into_inner(), uid)?,
            _ => Reply::new(vec![bad(tag, "command not supported")]),
        };
        Ok(reply)
    }

    /// The user proved who they are (the server checked the password, with the shared
    /// rate limits): the session is authenticated.
    pub fn logged_in(&mut self, user: &lifeboat_mailstore::reader::UserRecord) {
        self.state = State::Authenticated(User {
            id: user.id,
            address: user.address.clone(),
        });
    }

    /// Tagged OK for a successful login, with the capabilities that now apply.
    pub fn login_ok(&self, tag: &Tag<'static>, text: &'static str) -> Response<'static> {
        Response::Status(
            Status::ok(
                Some(tag.clone()),
                Some(Code::Capability(self.capabilities())),
                text,
            )
            .expect("valid text"),
        )
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

    // ---- mailboxes ----

    fn user_id(&self) -> i64 {
        self.user().map(|u| u.id).unwrap_or_default()
    }

    fn find_mailbox(
        &self,
        reader: &Reader,
        mailbox: &Mailbox<'_>,
    ) -> StoreResult<Option<MailboxRecord>> {
        match mailbox_name(mailbox) {
            Some(name) => reader.mailbox(self.user_id(), &name),
            None => Ok(None),
        }
    }

    fn list(
        &mut self,
        reader: &Reader,
        tag: &Tag<'static>,
        reference: &Mailbox<'_>,
        pattern: &ListMailbox<'_>,
        lsub: bool,
    ) -> StoreResult<Reply> {
        let pattern_text = match pattern {
            ListMailbox::Token(token) => String::from_utf8_lossy(token.as_ref()).into_owned(),
            ListMailbox::String(string) => String::from_utf8_lossy(string.as_ref()).into_owned(),
        };
        let reference = match reference {
            Mailbox::Inbox => "INBOX".to_string(),
            Mailbox::Other(other) => String::from_utf8_lossy(other.inner().as_ref()).into_owned(),
        };
        let mut responses = Vec::new();
        if pattern_text.is_empty() {
            // RFC 3501 §6.3.8: the delimiter and root name.
            responses.push(data(Data::List {
                items: vec![FlagNameAttribute::Noselect],
                delimiter: Some(delimiter()),
                mailbox: Mailbox::try_from("").expect("valid"),
            }));
        } else {
            let pattern = format!("{reference}{pattern_text}");
            for mailbox in reader.mailboxes(self.user_id())? {
                let wire = wire_name(&mailbox.name);
                if !wildcard_match(&pattern, &wire) || (lsub && !mailbox.subscribed) {
                    continue;
                }
                let mut items = Vec::new();
                if let Some(special) = &mailbox.special_use {
                    items.push(FlagNameAttribute::from(
                        imap_codec::imap_types::core::Atom::try_from(
                            special.trim_start_matches('\\').to_string(),
                        )
                        .expect("special-use names are atoms"),
                    ));
                }
                let entry = if lsub {
                    Data::Lsub {
                        items,
                        delimiter: Some(delimiter()),
                        mailbox: to_mailbox(&mailbox.name),
                    }
                } else {
                    Data::List {
                        items,
                        delimiter: Some(delimiter()),
                        mailbox: to_mailbox(&mailbox.name),
                    }
                };
                responses.push(data(entry));
            }
        }
        responses.push(ok(
            tag,
            if lsub {
                "LSUB completed"
            } else {
                "LIST completed"
            },
        ));
        Ok(Reply::new(responses))
    }

    fn status(
        &mut self,
        reader: &Reader,
        tag: &Tag<'static>,
        mailbox: &Mailbox<'static>,
        names: &[StatusDataItemName],
    ) -> StoreResult<Reply> {
        let Some(record) = self.find_mailbox(reader, mailbox)? else {
            return Ok(Reply::new(vec![no(
                tag,
                Some(NoCode::Nonexistent),
                "no such mailbox",
            )]));
        };
        let view = MailboxView::load(reader, &record)?;
        let mut items = Vec::new();
        for name in names {
            let item = match name {
                StatusDataItemName::Messages => StatusDataItem::Messages(view.exists()),
                StatusDataItemName::Recent => StatusDataItem::Recent(0),
                StatusDataItemName::UidNext => StatusDataItem::UidNext(nz(record.uidnext)),
                StatusDataItemName::UidValidity => {
                    StatusDataItem::UidValidity(nz(record.uidvalidity))
                }
                StatusDataItemName::Unseen => StatusDataItem::Unseen(view.unseen()),
                StatusDataItemName::Deleted => StatusDataItem::Deleted(view.deleted()),
                StatusDataItemName::HighestModSeq => StatusDataItem::HighestModSeq(
                    u64::try_from(record.highest_modseq).unwrap_or(1).max(1),
                ),
                _ => continue,
            };
            items.push(item);
        }
        Ok(Reply::new(vec![
            data(Data::Status {
                mailbox: mailbox.clone(),
                items: Cow::Owned(items),
            }),
            ok(tag, "STATUS completed"),
        ]))
    }

    fn select(
        &mut self,
        reader: &Reader,
        tag: &Tag<'static>,
        mailbox: &Mailbox<'static>,
        read_only: bool,
    ) -> StoreResult<Reply> {
        let user = self.user().cloned().expect("authenticated");
        // A failed SELECT leaves no mailbox selected (RFC 3501 §6.3.1).
        self.state = State::Authenticated(user.clone());
        let Some(record) = self.find_mailbox(reader, mailbox)? else {
            return Ok(Reply::new(vec![no(
                tag,
                Some(NoCode::Nonexistent),
                "no such mailbox",
            )]));
        };
        let view = MailboxView::load(reader, &record)?;
        let mut responses = vec![
            data(Data::Flags(SYSTEM_FLAGS.to_vec())),
            data(Data::Exists(view.exists())),
            data(Data::Recent(0)),
            untagged_ok(Code::UidValidity(nz(record.uidvalidity)), "UIDs valid"),
            untagged_ok(Code::UidNext(nz(record.uidnext)), "predicted next UID"),
            untagged_ok(
                Code::PermanentFlags(if read_only {
                    vec![]
                } else {
                    let mut perm: Vec<FlagPerm> =
                        SYSTEM_FLAGS.iter().cloned().map(FlagPerm::Flag).collect();
                    perm.push(FlagPerm::Asterisk);
                    perm
                }),
                "flags permitted",
            ),
            untagged_ok(
                Code::HighestModSeq(nz64(record.highest_modseq)),
                "highest modseq",
            ),
        ];
        if let Some(first_unseen) = view.first_unseen() {
            responses.push(untagged_ok(Code::Unseen(first_unseen), "first unseen"));
        }
        let code = if read_only {
            Code::ReadOnly
        } else {
            Code::ReadWrite
        };
        responses.push(Response::Status(
            Status::ok(Some(tag.clone()), Some(code), "SELECT completed").expect("valid text"),
        ));
        self.state = State::Selected(
            user,
            Box::new(Selected {
                record,
                read_only,
                view,
            }),
        );
        Ok(Reply::new(responses))
    }

    /// Untagged EXISTS / EXPUNGE / FETCH for what changed in the selected mailbox since
    /// the client last heard, as NOOP, IDLE and the end of other commands report them.
    pub fn poll_changes(&mut self, reader: &Reader) -> StoreResult<Responses> {
        let condstore = self.condstore;
        let State::Selected(_, selected) = &mut self.state else {
            return Ok(Vec::new());
        };
        match selected.refresh(reader, true, condstore, &[])? {
            Some(responses) => Ok(responses),
            None => Ok(vec![Response::Status(
                Status::bye(None, "the selected mailbox was deleted").expect("valid text"),
            )]),
        }
    }

    // ---- messages ----

    fn fetch(
        &mut self,
        reader: &Reader,
        tag: &Tag<'static>,
        set: &SequenceSet,
        items: &[fetch::Item],
        uid: bool,
        changed_since: Option<u64>,
    ) -> StoreResult<Reply> {
        let condstore = self.condstore || items.contains(&fetch::Item::ModSeq);
        self.condstore = condstore;
        let State::Selected(user, selected) = &mut self.state else {
            unreachable!("checked by dispatch")
        };
        if !uid && !selected.view.valid_sequence(set) {
            return Ok(Reply::new(vec![bad(
                tag,
                "invalid message sequence number",
            )]));
        }
        let mut positions = selected.view.resolve(set, uid);
        if let Some(since) = changed_since {
            // RFC 7162 §3.1.4: only messages changed after that modseq.
            positions.retain(|&i| selected.view.messages[i].modseq > since as i64);
        }
        let marks_seen = !selected.read_only && items.iter().any(fetch::Item::marks_seen);
        let mut responses = Vec::with_capacity(positions.len() + 1);
        let mut seen_changes = Vec::new();
        let mut seen_uids = Vec::new();
        for index in positions {
            let message = &selected.view.messages[index];
            let needs_bytes = items.iter().any(fetch::Item::needs_bytes);
            let bytes = if needs_bytes {
                match self
                    .store
                    .read_message(&user.address, &selected.record.name, message)
                {
                    Ok(bytes) => Some(bytes),
                    Err(e) => {
                        tracing::error!(error = %e, uid = message.uid, "imap: cannot read a message");
                        return Ok(Reply::new(vec![no(
                            tag,
                            Some(NoCode::ServerBug),
                            "cannot read a message",
                        )]));
                    }
                }
            } else {
                None
            };
            let mut message = message.clone();
            if marks_seen && !message.flags.contains(Flags::SEEN) {
                seen_changes.push(FlagChange {
                    row: message.row,
                    basename: message.basename.clone(),
                    old_flags: message.flags,
                    flags: message.flags.union(Flags::SEEN),
                    keywords: message.keywords.clone(),
                });
                message.flags = message.flags.union(Flags::SEEN);
                seen_uids.push(message.uid);
            }
            let seq = nz(index as u32 + 1);
            // RFC 3501 §6.4.5: a FETCH that sets \Seen reports the new flags.
            let with_flags;
            let items =
                if seen_uids.last() == Some(&message.uid) && !items.contains(&fetch::Item::Flags) {
                    with_flags = [items, &[fetch::Item::Flags]].concat();
                    &with_flags[..]
                } else {
                    items
                };
            let values = fetch::values(items, &message, bytes.as_deref(), condstore);
            responses.push(data(Data::Fetch { seq, items: values }));
        }
        if !seen_changes.is_empty() {
            self.store.set_flags(
                &user.address,
                &selected.record.name,
                selected.record.id,
                seen_changes,
            )?;
        }
        // Others' changes (no EXPUNGE during FETCH); ours is already in the responses.
        if let Some(changes) = selected.refresh(reader, false, condstore, &seen_uids)? {
            responses.extend(changes);
        }
        responses.push(ok(tag, "FETCH completed"));
        Ok(Reply::new(responses))
    }

    fn store_flags(
        &mut self,
        reader: &Reader,
        tag: &Tag<'static>,
        set: &SequenceSet,
        update: FlagUpdate,
        uid: bool,
    ) -> StoreResult<Reply> {
        let FlagUpdate {
            kind,
            silent,
            flags,
            unchanged_since,
        } = update;
        let condstore = self.condstore;
        let State::Selected(user, selected) = &mut self.state else {
            unreachable!("checked by dispatch")
        };
        if selected.read_only {
            return Ok(Reply::new(vec![no(
                tag,
                Some(NoCode::ReadOnly),
                "mailbox is read-only",
            )]));
        }
        if !uid && !selected.view.valid_sequence(set) {
            return Ok(Reply::new(vec![bad(
                tag,
                "invalid message sequence number",
            )]));
        }
        // \Recent belongs to the server; other unknown system flags cannot be kept.
        if flags.iter().any(|f| matches!(f, Flag::Extension(_))) {
            return Ok(Reply::new(vec![bad(
                tag,
                "that system flag cannot be stored",
            )]));
        }
        let (system, keywords) = split_flags(&flags);
        let mut changes = Vec::new();
        let mut positions = selected.view.resolve(set, uid);
        // RFC 7162 §3.1.3: messages changed since UNCHANGEDSINCE are left alone and named
        // in a MODIFIED response code.
        let mut modified = Vec::new();
        if let Some(since) = unchanged_since {
            positions.retain(|&i| {
                let message = &selected.view.messages[i];
                let untouched = message.modseq <= since as i64;
                if !untouched {
                    modified.push(if uid { message.uid } else { i as u32 + 1 });
                }
                untouched
            });
        }
        for &index in &positions {
            let message = &selected.view.messages[index];
            let (new_flags, new_keywords) = match kind {
                StoreType::Replace => (system, keywords.clone()),
                StoreType::Add => {
                    let mut all = message.keywords.clone();
                    for k in &keywords {
                        if !all.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                            all.push(k.clone());
                        }
                    }
                    (message.flags.union(system), all)
                }
                StoreType::Remove => (
                    Flags::from_bits(message.flags.bits() & !system.bits()),
                    message
                        .keywords
                        .iter()
                        .filter(|x| !keywords.iter().any(|k| k.eq_ignore_ascii_case(x)))
                        .cloned()
                        .collect(),
                ),
            };
            if new_flags != message.flags || new_keywords != message.keywords {
                changes.push(FlagChange {
                    row: message.row,
                    basename: message.basename.clone(),
                    old_flags: message.flags,
                    flags: new_flags,
                    keywords: new_keywords,
                });
            }
        }
        if !changes.is_empty() {
            self.store.set_flags(
                &user.address,
                &selected.record.name,
                selected.record.id,
                changes,
            )?;
        }
        let ours: Vec<u32> = positions
            .iter()
            .filter_map(|&i| selected.view.messages.get(i).map(|m| m.uid))
            .collect();
        // Others' changes (no EXPUNGE during STORE), then ours unless .SILENT.
        let reported = if silent { &[][..] } else { &ours[..] };
        let mut responses = selected
            .refresh(reader, false, condstore, reported)?
            .unwrap_or_default();
        if !silent {
            for (index, message) in selected.view.messages.iter().enumerate() {
                if ours.contains(&message.uid) {
                    responses.push(data(Data::Fetch {
                        seq: nz(index as u32 + 1),
                        items: fetch::flags_update(message, uid, condstore),
                    }));
                }
            }
        }
        if modified.is_empty() {
            responses.push(ok(tag, "STORE completed"));
        } else {
            let numbers: Vec<imap_codec::imap_types::sequence::Sequence> = modified
                .iter()
                .map(|&n| imap_codec::imap_types::sequence::Sequence::from(nz(n)))
                .collect();
            let set = SequenceSet(Vec1::try_from(numbers).expect("not empty"));
            responses.push(Response::Status(
                Status::ok(
                    Some(tag.clone()),
                    Some(Code::Modified(set)),
                    "conditional STORE failed for some messages",
                )
                .expect("valid text"),
            ));
        }
        Ok(Reply::new(responses))
    }

    /// The tagged answer to a store operation, after telling the client what changed
    /// in its selected mailbox meanwhile.
    fn finish(
        &mut self,
        reader: &Reader,
        tag: &Tag<'static>,
        result: Result<(), Refused>,
        done: &'static str,
    ) -> StoreResult<Reply> {
        let mut responses = self.poll_changes(reader)?;
        responses.push(match result {
            Ok(()) => ok(tag, done),
            Err(Refused::Session(rejection)) => rejection.response(tag),
            Err(Refused::Store(lifeboat_mailstore::Error::Mailbox(why))) => {
                mailbox_rejection(&why).response(tag)
            }
            // Not about the mailbox (the user's account went away meanwhile).
            Err(Refused::Store(lifeboat_mailstore::Error::Refused(why))) => {
                Rejection::new(None, why).response(tag)
            }
            Err(Refused::Store(e)) => return Err(e),
        });
        Ok(Reply::new(responses))
    }

    fn selected_name(&self) -> Option<&str> {
        match &self.state {
            State::Selected(_, selected) => Some(&selected.record.name),
            _ => None,
        }
    }

    fn subscribe(
        &mut self,
        reader: &Reader,
        tag: &Tag<'static>,
        mailbox: &Mailbox<'_>,
        subscribed: bool,
    ) -> StoreResult<Reply> {
        let result = match self.find_mailbox(reader, mailbox)? {
            Some(record) => self
                .store
                .set_subscribed(record.id, subscribed)
                .map_err(Refused::Store),
            None => Err(Refused::Store(MailboxError::Nonexistent.into())),
        };
        let done = if subscribed {
            "SUBSCRIBE completed"
        } else {
            "UNSUBSCRIBE completed"
        };
        self.finish(reader, tag, result, done)
    }

    fn append(
        &mut self,
        reader: &Reader,
        tag: &Tag<'static>,
        mailbox: &Mailbox<'_>,
        flags: &[Flag<'_>],
        date: Option<i64>,
        content: Vec<u8>,
    ) -> StoreResult<Reply> {
        let user = self.user().cloned().expect("authenticated");
        let Some(target) = self.find_mailbox(reader, mailbox)? else {
            return Ok(Reply::new(vec![no(
                tag,
                Some(NoCode::TryCreate),
                "no such mailbox",
            )]));
        };
        let (system, keywords) = split_flags(flags);
        let class = if target.special_use.as_deref() == Some("\\Sent")
            && reader.in_continuity(&self.config.routes, &user.address)?
            && !self.already_sent(reader, target.id, &content)?
        {
            Class::Sent
        } else {
            Class::Other
        };
        let mut message = NewMessage::new(user.address.clone(), &target.name, content, class);
        message.flags = system;
        message.internal_date = date;
        if class == Class::Sent {
            // Replayed into the user's own mailbox at the origin (DESIGN.md, Replay).
            message.envelope_from = Some(user.address.to_string());
            message.envelope_to = vec![user.address.clone()];
        }
        let stored = self.store.deliver(message)?;
        if !keywords.is_empty() {
            self.set_keywords(reader, &user.address, &target, stored.uid, keywords)?;
        }
        let mut responses = self.poll_changes(reader)?;
        responses.push(Response::Status(
            Status::ok(
                Some(tag.clone()),
                Some(Code::AppendUid {
                    uid_validity: nz(stored.uidvalidity),
                    uid: nz(stored.uid),
                }),
                "APPEND completed",
            )
            .expect("valid text"),
        ));
        Ok(Reply::new(responses))
    }

    fn set_keywords(
        &self,
        reader: &Reader,
        owner: &Address,
        mailbox: &MailboxRecord,
        uid: u32,
        keywords: Vec<String>,
    ) -> StoreResult<()> {
        let Some(message) = reader
            .visible_messages(mailbox.id)?
            .into_iter()
            .find(|m| m.uid == uid)
        else {
            return Ok(());
        };
        self.store.set_flags(
            owner,
            &mailbox.name,
            mailbox.id,
            vec![FlagChange {
                row: message.row,
                basename: message.basename.clone(),
                old_flags: message.flags,
                flags: message.flags,
                keywords,
            }],
        )?;
        Ok(())
    }

    /// Whether a sent copy with this message's Message-ID is already in the mailbox
    /// (sent through submission, or appended twice by a client).
    fn already_sent(&self, reader: &Reader, mailbox_id: i64, content: &[u8]) -> StoreResult<bool> {
        match lifeboat_mailstore::deliver::header_value(content, "Message-ID") {
            Some(message_id) => reader.has_sent_copy(mailbox_id, &message_id),
            None => Ok(false),
        }
    }

    /// COPY and MOVE (RFC 6851): copies are new messages of class `other` in the target
    /// (the originals keep their replay duty); MOVE then expunges the originals.
    fn copy(
        &mut self,
        reader: &Reader,
        tag: &Tag<'static>,
        set: &SequenceSet,
        mailbox: &Mailbox<'_>,
        uid: bool,
        moving: bool,
    ) -> StoreResult<Reply> {
        let Some(target) = self.find_mailbox(reader, mailbox)? else {
            return Ok(Reply::new(vec![no(
                tag,
                Some(NoCode::TryCreate),
                "no such mailbox",
            )]));
        };
        let State::Selected(user, selected) = &mut self.state else {
            unreachable!("checked by dispatch")
        };
        if moving && selected.read_only {
            return Ok(Reply::new(vec![no(
                tag,
                Some(NoCode::ReadOnly),
                "mailbox is read-only",
            )]));
        }
        if !uid && !selected.view.valid_sequence(set) {
            return Ok(Reply::new(vec![bad(
                tag,
                "invalid message sequence number",
            )]));
        }
        let mut pairs = Vec::new();
        for index in selected.view.resolve(set, uid) {
            let original = &selected.view.messages[index];
            let bytes = self
                .store
                .read_message(&user.address, &selected.record.name, original)?;
            let mut copy = NewMessage::new(user.address.clone(), &target.name, bytes, Class::Other);
            copy.flags = original.flags;
            copy.internal_date = Some(original.internal_date);
            let stored = self.store.deliver(copy)?;
            pairs.push((original.uid, stored.uid, original.keywords.clone()));
        }
        let (user, source_id) = (user.clone(), selected.record.id);
        for (_, new_uid, keywords) in &pairs {
            if !keywords.is_empty() {
                self.set_keywords(reader, &user.address, &target, *new_uid, keywords.clone())?;
            }
        }
        let code = (!pairs.is_empty()).then(|| Code::CopyUid {
            uid_validity: nz(target.uidvalidity),
            source: uid_set(pairs.iter().map(|p| p.0)),
            destination: uid_set(pairs.iter().map(|p| p.1)),
        });
        let mut responses = Vec::new();
        if moving {
            if let Some(code) = code {
                responses.push(untagged_ok(code, "moved"));
            }
            let originals: Vec<u32> = pairs.iter().map(|p| p.0).collect();
            if !originals.is_empty() {
                self.store.expunge(source_id, &originals)?;
            }
            responses.extend(self.poll_changes(reader)?);
            responses.push(ok(tag, "MOVE completed"));
        } else {
            responses.extend(self.poll_changes(reader)?);
            responses.push(Response::Status(
                Status::ok(Some(tag.clone()), code, "COPY completed").expect("valid text"),
            ));
        }
        Ok(Reply::new(responses))
    }

    fn expunge_command(
        &mut self,
        reader: &Reader,
        tag: &Tag<'static>,
        only: Option<&SequenceSet>,
    ) -> StoreResult<Reply> {
        if matches!(&self.state, State::Selected(_, s) if s.read_only) {
            return Ok(Reply::new(vec![no(
                tag,
                Some(NoCode::ReadOnly),
                "mailbox is read-only",
            )]));
        }
        self.expunge(reader, only)?;
        let mut responses = self.poll_changes(reader)?;
        responses.push(ok(tag, "EXPUNGE completed"));
        Ok(Reply::new(responses))
    }

    /// Removes the `\Deleted` messages (of `only`, a UID set, when given) from the
    /// selected mailbox. Copies that still wait for replay are only hidden (see
    /// [`Store::expunge`]). The client hears of it at the next `poll_changes`.
    fn expunge(&mut self, reader: &Reader, only: Option<&SequenceSet>) -> StoreResult<()> {
        let State::Selected(_, selected) = &mut self.state else {
            return Ok(());
        };
        if selected.read_only {
            return Ok(());
        }
        // Decide on the current flags, not the client's possibly stale view.
        let Some(record) = reader.mailbox_by_id(selected.record.id)? else {
            return Ok(());
        };
        let current = MailboxView::load(reader, &record)?;
        let allowed: Option<Vec<usize>> = only.map(|set| current.resolve(set, true));
        let doomed: Vec<u32> = current
            .messages
            .iter()
            .enumerate()
            .filter(|(i, m)| {
                m.flags.contains(Flags::DELETED) && allowed.as_ref().is_none_or(|a| a.contains(i))
            })
            .map(|(_, m)| m.uid)
            .collect();
        if !doomed.is_empty() {
            self.store.expunge(selected.record.id, &doomed)?;
        }
        Ok(())
    }

    fn search(
        &mut self,
        tag: &Tag<'static>,
        criteria: &[SearchKey<'static>],
        uid: bool,
    ) -> StoreResult<Reply> {
        let State::Selected(user, selected) = &mut self.state else {
            unreachable!("checked by dispatch")
        };
        let mut hits = Vec::new();
        let view = &selected.view;
        let needs_bytes = criteria.iter().any(search::needs_message);
        for (index, message) in view.messages.iter().enumerate() {
            let bytes = if needs_bytes {
                self.store
                    .read_message(&user.address, &selected.record.name, message)?
            } else {
                Vec::new()
            };
            let candidate = search::Candidate {
                seq: index as u32 + 1,
                uid: message.uid,
                flags: message.flags,
                keywords: &message.keywords,
                internal_date: message.internal_date,
                size: message.size,
                message: &bytes,
                modseq: u64::try_from(message.modseq).unwrap_or(0),
            };
            if criteria
                .iter()
                .all(|key| search::matches(key, &candidate, view.exists(), view.max_uid()))
            {
                hits.push(nz(if uid { message.uid } else { index as u32 + 1 }));
            }
        }
        Ok(Reply::new(vec![
            data(Data::Search(hits, None)),
            ok(tag, "SEARCH completed"),
        ]))
    }

    /// The continuation request AUTHENTICATE PLAIN sends when there is no initial
    /// response.
    pub fn empty_challenge() -> CommandContinuationRequest<'static> {
        CommandContinuationRequest::Base64(Cow::Borrowed(b""))
    }
}

/// A STORE's change.
pub struct FlagUpdate {
    pub kind: StoreType,
    /// `.SILENT`: no untagged FETCH for the messages changed.
    pub silent: bool,
    pub flags: Vec<Flag<'static>>,
    /// CONDSTORE's UNCHANGEDSINCE.
    pub unchanged_since: Option<u64>,
}

fn other_capability(name: &str) -> Capability<'static> {
    Capability::try_from(name.to_string()).expect("a valid capability atom")
}

/// Why a mailbox command failed: the store refused it, or the session did before
/// asking the store.
enum Refused {
    Store(lifeboat_mailstore::Error),
    Session(Rejection),
}

impl Refused {
    /// The client's name is not modified UTF-7.
    fn not_a_name() -> Refused {
        Refused::Session(Rejection::new(None, "not a valid mailbox name"))
    }
}

/// The store's mailbox refusals as IMAP tells them (RFC 5530 codes); the text is the
/// store's own.
fn mailbox_rejection(error: &MailboxError) -> Rejection {
    use MailboxError as E;
    let code = match error {
        E::AlreadyExists(_) | E::InboxCannotBeReplaced => Some(NoCode::AlreadyExists),
        E::Nonexistent => Some(NoCode::Nonexistent),
        E::HasChildren | E::AwaitingReplay(_) => Some(NoCode::InUse),
        E::InvalidName(_)
        | E::InboxAlwaysExists
        | E::InboxCannotBeRenamed
        | E::InboxCannotBeDeleted => None,
    };
    Rejection::new(code, error.to_string())
}

#[cfg(test)]
mod tests;
