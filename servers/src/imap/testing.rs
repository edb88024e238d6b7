//! Fixtures for the IMAP command tests: a store with one user in a temp dir and a
//! [`Session`] on it. Commands go in as the bytes a client sends (decoded as the
//! server's `imap::input` decodes them: `imap::preparse`, then imap-codec, else as an
//! extended LIST) and responses come out as the bytes the server writes, so tests pin
//! down the wire, not our types.

use std::sync::Arc;

use imap_codec::imap_types::response::Response;
use lifeboat_mailstore::{
    Address, Class, MailboxRecord, MessageRecord, NewMessage, NewUser, Routes, Store, UserRecord,
    password,
};

use super::input::{Input, Received, Step};
use super::preparse;
use super::response::Outgoing;
use super::session::{After, Reply, Session, SessionConfig};

pub const USER: &str = "a@example.test";

/// The internal date of the fixture messages: 24-Nov-2026 10:00:00 +0000.
pub const DATE: i64 = 1_795_514_400;

/// Message `n` of the fixtures.
pub fn message(n: usize) -> Vec<u8> {
    format!(
        "From: Sender <s@else.test>\r\nTo: {USER}\r\nSubject: message {n}\r\n\
         Message-ID: <m{n}@else.test>\r\n\r\nbody {n}\r\n"
    )
    .into_bytes()
}

pub struct Fixture {
    _dir: tempfile::TempDir,
    pub store: Store,
    pub user: UserRecord,
    pub session: Session,
    /// What the last command told the server to do once its responses are written.
    pub after: After,
}

impl Fixture {
    /// Not logged in, on a listener that allows plaintext logins and offers no STARTTLS.
    pub fn new() -> Fixture {
        Fixture::with_listener(true, false)
    }

    pub fn with_listener(plaintext_login: bool, starttls: bool) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), "imap.test").unwrap();
        store.lock_for_delivery().unwrap();
        store
            .add_user(NewUser {
                address: Address::parse(USER).unwrap(),
                password_hash: password::unusable(),
                aliases: vec![],
                active: true,
                alternate_email: None,
            })
            .unwrap();
        let user = store.reader().unwrap().user(USER).unwrap().unwrap();
        let session = Session::new(store.clone(), config(plaintext_login, starttls), false);
        Fixture {
            _dir: dir,
            store,
            user,
            session,
            after: After::Continue,
        }
    }

    /// Logged in, with messages 1 to `count` in INBOX (UIDs 1 to `count`), which an
    /// earlier session already saw: none is `\Recent` ([`Fixture::deliver`] more).
    pub fn logged_in(count: usize) -> Fixture {
        let mut fixture = Fixture::new();
        for n in 1..=count {
            fixture.deliver("INBOX", n);
        }
        let inbox = fixture.mailbox("INBOX");
        fixture.store.claim_recent(inbox.id, inbox.uidnext).unwrap();
        fixture.session.logged_in(&fixture.user);
        fixture
    }

    /// [`Fixture::logged_in`] with INBOX selected (the SELECT's responses dropped).
    pub fn selected(count: usize) -> Fixture {
        let mut fixture = Fixture::logged_in(count);
        let select = fixture.run(b"s1 SELECT INBOX\r\n");
        assert!(select.last().unwrap().starts_with("s1 OK"), "{select:?}");
        fixture
    }

    /// Stores message `n` in `folder` as inbound mail, dated [`DATE`]; its UID.
    pub fn deliver(&self, folder: &str, n: usize) -> u32 {
        let mut new = NewMessage::new(
            Address::parse(USER).unwrap(),
            folder,
            message(n),
            Class::Journal,
        );
        new.internal_date = Some(DATE);
        self.store.deliver(new).unwrap().uid
    }

    /// Stores `content` in INBOX as inbound mail with this internal date; its UID.
    pub fn deliver_bytes(&self, content: &str, internal_date: i64) -> u32 {
        let mut new = NewMessage::new(
            Address::parse(USER).unwrap(),
            "INBOX",
            content.as_bytes().to_vec(),
            Class::Journal,
        );
        new.internal_date = Some(internal_date);
        self.store.deliver(new).unwrap().uid
    }

    /// Another session of the same user on the same store (another client).
    pub fn other_session(&self) -> Session {
        let mut session = Session::new(self.store.clone(), config(true, false), false);
        session.logged_in(&self.user);
        session
    }

    /// One command line (with its CRLF, and any literals as LITERAL+) through the session;
    /// the encoded responses, one string each.
    pub fn run(&mut self, command: &[u8]) -> Vec<String> {
        let (responses, after) = exchange(&mut self.session, command);
        self.after = after;
        responses
    }

    /// [`Fixture::run`], the responses as bytes (BINARY data need not be UTF-8).
    pub fn run_raw(&mut self, command: &[u8]) -> Vec<Vec<u8>> {
        let request = preparse::decode(command).expect("one command");
        let reply = self.session.handle(request);
        self.after = reply.after;
        reply.responses.iter().map(Outgoing::encode).collect()
    }

    /// A command as the server takes it: framed by [`Input`] (after login: big APPEND
    /// literals spooled), several messages for MULTIAPPEND, then run; the answer to
    /// each step (continuation requests left out).
    pub fn framed(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut input = Input::new();
        if self.session.is_authenticated() {
            input.logged_in(self._dir.path().to_path_buf());
        }
        input.push(bytes, std::time::Instant::now());
        let mut answers = Vec::new();
        while let Some(step) = input.next_step() {
            let reply = match step {
                Step::GoAhead => continue,
                Step::Received(Received::Append(append)) => {
                    self.session.handle_append(append, Default::default())
                }
                Step::Received(Received::Command(request)) => self.session.handle(request),
                Step::Refused(refusal) => {
                    answers.push(encode_status(&refusal.status()));
                    continue;
                }
                Step::Received(other) => panic!("{other:?}"),
            };
            self.after = reply.after;
            answers.extend(strings(&reply));
        }
        answers
    }

    pub fn mailbox(&self, name: &str) -> MailboxRecord {
        let reader = self.store.reader().unwrap();
        reader.mailbox(self.user.id, name).unwrap().unwrap()
    }

    /// The bytes of message `index` (0-based) of mailbox `name`, as the store keeps them.
    pub fn stored(&self, name: &str, index: usize) -> Vec<u8> {
        let message = &self.messages(name)[index];
        let owner = Address::parse(USER).unwrap();
        self.store.read_message(&owner, name, message).unwrap()
    }

    pub fn messages(&self, name: &str) -> Vec<MessageRecord> {
        let id = self.mailbox(name).id;
        self.store.reader().unwrap().visible_messages(id).unwrap()
    }
}

/// [`Fixture::run`] on any session: the command decoded as the server's input does
/// (imap-codec, after `preparse`).
pub fn exchange(session: &mut Session, command: &[u8]) -> (Vec<String>, After) {
    let request = preparse::decode(command)
        .unwrap_or_else(|| panic!("not one command: {}", String::from_utf8_lossy(command)));
    let reply = session.handle(request);
    (strings(&reply), reply.after)
}

/// A reply as the server writes it, one string per response (what the command sent
/// ahead first); BINARY data that is not UTF-8 comes out lossily.
pub fn strings(reply: &Reply) -> Vec<String> {
    encode_all(&reply.responses)
}

/// Responses as the server writes them, one string each.
pub fn encode_all(responses: &[Outgoing]) -> Vec<String> {
    responses
        .iter()
        .map(|r| String::from_utf8_lossy(&r.encode()).into_owned())
        .collect()
}

/// What the server writes: a response, or one of a reply.
pub trait Wire {
    fn wire(&self) -> Vec<u8>;
}

impl Wire for Response<'static> {
    fn wire(&self) -> Vec<u8> {
        super::response::encode(self)
    }
}

impl Wire for Outgoing {
    fn wire(&self) -> Vec<u8> {
        self.encode()
    }
}

/// A response as the server writes it.
pub fn encode(response: &impl Wire) -> String {
    String::from_utf8(response.wire()).expect("the fixtures encode to UTF-8")
}

/// A status line as the server writes it.
pub fn encode_status(status: &imap_codec::imap_types::response::Status<'static>) -> String {
    encode(&Response::Status(status.clone()))
}

fn config(plaintext_login: bool, starttls: bool) -> Arc<SessionConfig> {
    Arc::new(SessionConfig {
        hostname: "imap.test".into(),
        plaintext_login,
        starttls,
        routes: Routes::new([("main", ["example.test".to_string()].as_slice())]),
    })
}
