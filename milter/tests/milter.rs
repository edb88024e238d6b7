//! The milter driven over the real milter protocol (indymilter-test plays Postfix), on a
//! real store in a temp dir.

use std::net::SocketAddr;
use std::sync::Arc;

use indymilter_test::{EomAction, EomActions, MacroStage, Status, TestConnection};
use lifeboat_mailstore::{
    Address, Class, MessageRecord, NewUser, OutageState, Routes, Store, password,
};
use lifeboat_milter::{Milter, Settings};
use tokio::net::TcpListener;

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    milter: Arc<Milter>,
    addr: SocketAddr,
}

async fn fixture(max_message_size: u64) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), "test.host").unwrap();
    store.lock_for_delivery().unwrap();
    for (user, aliases, active) in [
        ("alice@example.test", vec!["sales@example.test"], true),
        ("bob@example.test", vec![], true),
        ("gone@example.test", vec![], false),
    ] {
        store
            .add_user(NewUser {
                address: Address::parse(user).unwrap(),
                password_hash: password::unusable(),
                aliases: aliases
                    .into_iter()
                    .map(|a| Address::parse(a).unwrap())
                    .collect(),
                active,
                alternate_email: None,
            })
            .unwrap();
    }
    let domains = vec!["example.test".to_string()];
    let milter = Milter::new(
        store.clone(),
        Settings {
            routes: Routes::new([("main", domains.as_slice())]),
            max_message_size,
        },
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(lifeboat_milter::run(
        listener,
        milter.clone(),
        16,
        std::future::pending::<()>(),
    ));
    Fixture {
        _dir: dir,
        store,
        milter,
        addr,
    }
}

impl Fixture {
    /// Sends one message the way Postfix does; returns what the milter answered at EOM.
    async fn send(&self, recipients: &[(&str, &str)], body: &str) -> (EomActions, Status) {
        let header = [("Subject", "hello"), ("Message-ID", "<m1@else.test>")];
        self.send_with(recipients, &header, body).await
    }

    /// [`Fixture::send`] with these header fields.
    async fn send_with(
        &self,
        recipients: &[(&str, &str)],
        header: &[(&str, &str)],
        body: &str,
    ) -> (EomActions, Status) {
        let mut conn = TestConnection::open(self.addr).await.unwrap();
        // The milter waives its replies to MAIL, RCPT, headers and body.
        assert_eq!(
            conn.mail(["<sender@else.test>"]).await.unwrap(),
            Status::Noreply
        );
        for (rcpt, mailer) in recipients {
            conn.macros(
                MacroStage::Rcpt,
                [
                    ("{rcpt_mailer}", *mailer),
                    ("{rcpt_host}", "[127.0.0.1]:2526"),
                ],
            )
            .await
            .unwrap();
            assert_eq!(
                conn.rcpt([format!("<{rcpt}>")]).await.unwrap(),
                Status::Noreply
            );
        }
        for (name, value) in header {
            assert_eq!(conn.header(*name, *value).await.unwrap(), Status::Noreply);
        }
        assert_eq!(conn.body(body.to_string()).await.unwrap(), Status::Noreply);
        conn.macros(MacroStage::Eom, [("i", "ABC123")])
            .await
            .unwrap();
        let result = conn.eom().await.unwrap();
        conn.close().await.unwrap();
        result
    }

    fn inbox(&self, user: &str) -> Vec<MessageRecord> {
        let reader = self.store.reader().unwrap();
        let user = reader.user(user).unwrap().unwrap();
        let mailbox = reader.mailbox(user.id, "INBOX").unwrap().unwrap();
        reader.messages(mailbox.id).unwrap()
    }

    fn outage(&self) {
        self.store
            .set_origin_state("main", OutageState::Outage, "test", true)
            .unwrap();
    }
}

fn added_id(actions: &EomActions) -> Option<String> {
    actions.actions.iter().find_map(|a| match a {
        EomAction::AddHeader { name, value } if name.to_bytes() == b"X-Lifeboat-ID" => {
            // LEADING_SPACE is negotiated: the value carries the space after the colon.
            Some(
                value
                    .to_str()
                    .unwrap()
                    .strip_prefix(' ')
                    .expect("leading space")
                    .to_string(),
            )
        }
        _ => None,
    })
}

fn deleted(actions: &EomActions) -> Vec<String> {
    actions
        .actions
        .iter()
        .filter_map(|a| match a {
            EomAction::DeleteRecipient { rcpt } => Some(rcpt.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn normal_state_journals_and_leaves_every_recipient() {
    let f = fixture(1 << 20).await;
    let (actions, status) = f.send(&[("alice@example.test", "origin")], "hi\r\n").await;
    assert_eq!(status, Status::Continue);
    assert!(deleted(&actions).is_empty());
    let id = added_id(&actions).expect("X-Lifeboat-ID added");
    // The journal copy is written in the background, after the milter answered.
    f.milter.journal_flushed().await;
    let inbox = f.inbox("alice@example.test");
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].class, Class::Journal);
    assert_eq!(inbox[0].lifeboat_id.as_deref(), Some(id.as_str()));
    assert!(
        f.store.keyring().lifeboat_id(&id).is_some(),
        "the id is keyed with the store's key: {id}"
    );
    assert_eq!(inbox[0].envelope_from.as_deref(), Some("sender@else.test"));
    let content = std::fs::read(f.store.message_path(
        &Address::parse("alice@example.test").unwrap(),
        "INBOX",
        &inbox[0],
    ))
    .unwrap();
    let text = String::from_utf8(content).unwrap();
    assert!(
        text.contains("Subject: hello\r\nMessage-ID: <m1@else.test>\r\nX-Lifeboat-ID: "),
        "{text}"
    );
    assert!(text.ends_with("\r\n\r\nhi\r\n"));
}

#[tokio::test]
async fn outage_diverts_and_removes_every_recipient() {
    let f = fixture(1 << 20).await;
    f.outage();
    let (actions, status) = f
        .send(
            &[
                ("alice@example.test", "origin"),
                ("bob@example.test", "origin"),
            ],
            "hi\r\n",
        )
        .await;
    assert_eq!(status, Status::Continue);
    assert_eq!(
        deleted(&actions),
        ["<alice@example.test>", "<bob@example.test>"]
    );
    for user in ["alice@example.test", "bob@example.test"] {
        let inbox = f.inbox(user);
        assert_eq!((inbox.len(), inbox[0].class), (1, Class::Diverted));
        assert_eq!(inbox[0].replay_state.as_deref(), Some("pending"));
    }
}

#[tokio::test]
async fn mixed_recipients_only_protected_ones_are_removed() {
    let f = fixture(1 << 20).await;
    f.outage();
    let (actions, status) = f
        .send(
            &[
                ("alice@example.test", "origin"),
                ("nobody@example.test", "origin"),
                ("gone@example.test", "origin"),
                ("friend@other.test", "smtp"),
            ],
            "hi\r\n",
        )
        .await;
    assert_eq!(status, Status::Continue);
    assert_eq!(deleted(&actions), ["<alice@example.test>"]);
    assert!(added_id(&actions).is_some());
    assert_eq!(f.inbox("alice@example.test").len(), 1);
    assert!(
        f.inbox("gone@example.test").is_empty(),
        "inactive users get nothing"
    );
}

#[tokio::test]
async fn alias_lands_in_the_owner_mailbox_with_the_original_recipient() {
    let f = fixture(1 << 20).await;
    f.outage();
    let (actions, status) = f
        .send(
            &[
                ("sales@example.test", "origin"),
                ("alice@example.test", "origin"),
            ],
            "hi\r\n",
        )
        .await;
    assert_eq!(status, Status::Continue);
    assert_eq!(deleted(&actions).len(), 2);
    let inbox = f.inbox("alice@example.test");
    assert_eq!(inbox.len(), 1, "one copy for two addresses of one user");
    assert_eq!(
        inbox[0].envelope_to,
        ["sales@example.test", "alice@example.test"]
    );
}

#[tokio::test]
async fn outbound_mail_and_postfix_rejected_recipients_are_untouched() {
    let f = fixture(1 << 20).await;
    f.outage();
    let (actions, status) = f
        .send(
            &[
                ("friend@other.test", "smtp"),
                ("alice@example.test", "error"),
            ],
            "hi\r\n",
        )
        .await;
    assert_eq!(status, Status::Continue);
    assert!(
        actions.actions.is_empty(),
        "no header, no recipient change: {actions:?}"
    );
}

#[tokio::test]
async fn oversize_messages_are_left_with_postfix() {
    let f = fixture(100).await;
    f.outage();
    let (actions, status) = f
        .send(&[("alice@example.test", "origin")], &"x".repeat(200))
        .await;
    assert_eq!(status, Status::Continue);
    assert!(actions.actions.is_empty());
    assert!(f.inbox("alice@example.test").is_empty());
}

#[tokio::test]
async fn store_failure_leaves_the_recipient_with_postfix() {
    let f = fixture(1 << 20).await;
    f.outage();
    let alice = Address::parse("alice@example.test").unwrap();
    // Every write into alice's INBOX now fails (tmp/ is not a directory).
    let tmp = f.store.user_dir(&alice).join("tmp");
    std::fs::remove_dir(&tmp).unwrap();
    std::fs::write(&tmp, b"not a directory").unwrap();
    let (actions, status) = f
        .send(
            &[
                ("alice@example.test", "origin"),
                ("bob@example.test", "origin"),
            ],
            "hi\r\n",
        )
        .await;
    assert_eq!(
        status,
        Status::Continue,
        "not discarded: alice is still Postfix's"
    );
    assert_eq!(deleted(&actions), ["<bob@example.test>"]);
    assert!(f.inbox("alice@example.test").is_empty());
    let _ = &f.milter;
}

/// The milter answers before its journal copy is written; if Postfix then hands the
/// message to the fallback listener (origin down), the fallback's diverted copy and the
/// background journal copy must end up as one copy, whichever is stored first.
#[tokio::test]
async fn a_queued_journal_copy_and_the_fallback_copy_end_up_as_one() {
    let f = fixture(1 << 20).await;
    let (actions, _) = f.send(&[("alice@example.test", "origin")], "hi\r\n").await;
    let id = added_id(&actions).expect("X-Lifeboat-ID added");
    let alice = Address::parse("alice@example.test").unwrap();
    let mut fallback_copy = lifeboat_mailstore::NewMessage::new(
        alice.clone(),
        "INBOX",
        format!("X-Lifeboat-ID: {id}\r\nSubject: hello\r\n\r\nhi\r\n").into_bytes(),
        Class::Diverted,
    );
    fallback_copy.envelope_from = Some("sender@else.test".into());
    fallback_copy.envelope_to = vec![alice];
    fallback_copy.lifeboat_id = f.store.keyring().lifeboat_id(&id);
    let store = f.store.clone();
    tokio::task::spawn_blocking(move || store.deliver_diverted(fallback_copy))
        .await
        .unwrap()
        .unwrap();
    f.milter.journal_flushed().await;

    let inbox = f.inbox("alice@example.test");
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert_eq!(inbox[0].class, Class::Diverted);
    assert_eq!(inbox[0].replay_state.as_deref(), Some("pending"));
    assert!(f.store.check(false).unwrap().is_consistent());
}

fn deleted_fields(actions: &EomActions) -> Vec<(String, i32)> {
    actions
        .actions
        .iter()
        .filter_map(|a| match a {
            EomAction::DeleteHeader { name, index } => {
                Some((name.to_string_lossy().into_owned(), *index))
            }
            _ => None,
        })
        .collect()
}

/// A sender's X-Lifeboat-* fields are deleted (last index of each name first, before the
/// milter adds its own id), for every message, copied or not; the copy and what Postfix
/// delivers carry only the milter's keyed id.
#[tokio::test]
async fn a_senders_lifeboat_fields_are_removed_from_every_message() {
    let f = fixture(1 << 20).await;
    let header = [
        ("X-Lifeboat-ID", "forged"),
        ("Subject", "hello"),
        ("X-Lifeboat-Sent", "yes"),
        (
            "x-lifeboat-id",
            "0123456789abcdef0123456789abcdef.0123456789abcdef0123456789abcdef",
        ),
    ];
    let (actions, status) = f
        .send_with(&[("alice@example.test", "origin")], &header, "hi\r\n")
        .await;
    assert_eq!(status, Status::Continue);
    assert_eq!(
        deleted_fields(&actions),
        [
            ("x-lifeboat-id".to_string(), 2),
            ("X-Lifeboat-Sent".to_string(), 1),
            ("X-Lifeboat-ID".to_string(), 1),
        ]
    );
    let added = actions
        .actions
        .iter()
        .position(|a| matches!(a, EomAction::AddHeader { .. }))
        .expect("X-Lifeboat-ID added");
    let last_delete = actions
        .actions
        .iter()
        .rposition(|a| matches!(a, EomAction::DeleteHeader { .. }))
        .unwrap();
    assert!(last_delete < added, "deletions come first: {actions:?}");
    let id = added_id(&actions).unwrap();
    assert!(f.store.keyring().lifeboat_id(&id).is_some());
    f.milter.journal_flushed().await;
    let inbox = f.inbox("alice@example.test");
    let content = std::fs::read(f.store.message_path(
        &Address::parse("alice@example.test").unwrap(),
        "INBOX",
        &inbox[0],
    ))
    .unwrap();
    let text = String::from_utf8(content).unwrap();
    assert!(
        !text.contains("forged") && !text.contains("X-Lifeboat-Sent"),
        "{text}"
    );
    assert_eq!(text.matches("X-Lifeboat-ID").count(), 1, "{text}");

    // Mail Lifeboat does not copy loses them too (the origin's Sieve rule trusts
    // X-Lifeboat-Sent).
    let (actions, _) = f
        .send_with(&[("nobody@example.test", "origin")], &header, "hi\r\n")
        .await;
    assert_eq!(deleted_fields(&actions).len(), 3);
    assert!(added_id(&actions).is_none());
}
