//! The fallback listener's SMTP session, byte for byte, on a real store (no sockets:
//! an in-memory duplex stream).

use std::time::Duration;

use lifeboat::fallback::{Fallback, Settings, run_session};
use lifeboat_mailstore::{Address, Class, NewUser, OutageState, Routes, Store, password};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, duplex};

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    fallback: std::sync::Arc<Fallback>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), "test.host").unwrap();
    store.lock_for_delivery().unwrap();
    store
        .add_user(NewUser {
            address: Address::parse("alice@example.test").unwrap(),
            password_hash: password::unusable(),
            aliases: Vec::new(),
            active: true,
            alternate_email: None,
        })
        .unwrap();
    let domains = vec!["example.test".to_string()];
    let fallback = Fallback::new(
        store.clone(),
        Settings {
            hostname: "lifeboat.test".into(),
            routes: Routes::new([("main", domains.as_slice())]),
            max_message_size: 1000,
            allowed_clients: vec!["127.0.0.0/8".parse().unwrap()],
        },
        None,
    );
    Fixture {
        _dir: dir,
        store,
        fallback,
    }
}

/// Sends `input` (all of it, pipelined) and returns every reply line.
async fn session(f: &Fixture, input: &[u8]) -> Vec<String> {
    let (client, server) = duplex(1 << 20);
    let fallback = f.fallback.clone();
    let task = tokio::spawn(async move {
        let _ = run_session(server, &fallback, Duration::from_secs(5)).await;
    });
    let (client_read, mut client_write) = tokio::io::split(client);
    client_write.write_all(input).await.unwrap();
    client_write.shutdown().await.unwrap();
    let mut lines = Vec::new();
    let mut reader = BufReader::new(client_read).lines();
    while let Ok(Some(line)) = reader.next_line().await {
        lines.push(line);
    }
    task.await.unwrap();
    lines
}

fn codes(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .filter(|l| l.as_bytes().get(3) == Some(&b' '))
        .map(|l| &l[..3])
        .collect()
}

const MESSAGE: &str = "EHLO gateway\r\nMAIL FROM:<s@else.test>\r\nRCPT TO:<alice@example.test>\r\n\
RCPT TO:<nobody@example.test>\r\nDATA\r\nSubject: hi\r\nX-Lifeboat-ID: abc\r\n\r\n..dot\r\n.\r\nQUIT\r\n";

#[tokio::test]
async fn origin_up_every_recipient_gets_4xx_and_nothing_is_stored() {
    let f = fixture();
    let lines = session(&f, MESSAGE.as_bytes()).await;
    // DATA is refused, so the message lines that follow are (bad) commands.
    assert_eq!(
        codes(&lines),
        [
            "220", "250", "250", "450", "450", "503", "500", "500", "500", "500", "500", "221"
        ]
    );
    assert!(lines.iter().any(|l| l.contains("origin is not in outage")));
}

#[tokio::test]
async fn outage_protected_recipient_is_stored_dot_unstuffed_before_250() {
    let f = fixture();
    f.store
        .set_origin_state("main", OutageState::Outage, "test", true)
        .unwrap();
    let lines = session(&f, MESSAGE.as_bytes()).await;
    assert_eq!(
        codes(&lines),
        ["220", "250", "250", "250", "450", "354", "250", "221"]
    );
    let reader = f.store.reader().unwrap();
    let user = reader.user("alice@example.test").unwrap().unwrap();
    let inbox = reader.mailbox(user.id, "INBOX").unwrap().unwrap();
    let messages = reader.messages(inbox.id).unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].class, Class::Diverted);
    // `abc` was written by a sender, not made by the milter: ignored.
    assert_eq!(messages[0].lifeboat_id, None);
    let owner = Address::parse("alice@example.test").unwrap();
    let content = std::fs::read(f.store.message_path(&owner, "INBOX", &messages[0])).unwrap();
    assert!(
        content.ends_with(b"\r\n\r\n.dot\r\n"),
        "{}",
        String::from_utf8_lossy(&content)
    );
}

#[tokio::test]
async fn bad_input_gets_protocol_errors_not_a_crash() {
    let f = fixture();
    let long = format!("NOOP {}\r\n", "x".repeat(10_000));
    let input = format!(
        "HELO gw\r\nRCPT TO:<alice@example.test>\r\nFOO bar\r\n\x00\x01\x02\r\nMAIL FROM:<bad\r\n{long}NOOP\r\nQUIT\r\n"
    );
    let lines = session(&f, input.as_bytes()).await;
    assert_eq!(
        codes(&lines),
        [
            "220", "250", "503", "500", "500", "500", "500", "250", "221"
        ]
    );
}

#[tokio::test]
async fn oversize_message_gets_4xx_and_the_session_stays_in_step() {
    let f = fixture();
    f.store
        .set_origin_state("main", OutageState::Outage, "test", true)
        .unwrap();
    let body = "x".repeat(2000);
    let input = format!(
        "EHLO gw\r\nMAIL FROM:<s@else.test> SIZE=5000\r\nMAIL FROM:<s@else.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n{body}\r\n.\r\nNOOP\r\nQUIT\r\n"
    );
    let lines = session(&f, input.as_bytes()).await;
    assert_eq!(
        codes(&lines),
        [
            "220", "250", "452", "250", "250", "354", "452", "250", "221"
        ]
    );
}

fn alice_inbox(f: &Fixture) -> Vec<String> {
    let reader = f.store.reader().unwrap();
    let user = reader.user("alice@example.test").unwrap().unwrap();
    let inbox = reader.mailbox(user.id, "INBOX").unwrap().unwrap();
    let owner = Address::parse("alice@example.test").unwrap();
    reader
        .messages(inbox.id)
        .unwrap()
        .iter()
        .map(|m| {
            let content = std::fs::read(f.store.message_path(&owner, "INBOX", m)).unwrap();
            String::from_utf8(content).unwrap()
        })
        .collect()
}

fn delivery(id: &str, subject: &str) -> String {
    format!(
        "EHLO gateway\r\nMAIL FROM:<s@else.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n\
         X-Lifeboat-ID: {id}\r\nSubject: {subject}\r\n\r\n{subject} body\r\n.\r\nQUIT\r\n"
    )
}

/// Issue 12, item 2: two different messages carrying the same X-Lifeboat-ID a sender
/// wrote were both answered 250 and the second was never stored. Each is stored now.
#[tokio::test]
async fn messages_carrying_the_same_forged_id_are_each_stored() {
    let f = fixture();
    f.store
        .set_origin_state("main", OutageState::Outage, "test", true)
        .unwrap();
    for subject in ["first", "second"] {
        let lines = session(&f, delivery("abc", subject).as_bytes()).await;
        assert_eq!(
            codes(&lines),
            ["220", "250", "250", "250", "354", "250", "221"]
        );
    }
    let stored = alice_inbox(&f);
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert!(stored[0].contains("Subject: first") && stored[1].contains("Subject: second"));
}

/// An id the milter really made, copied onto another message (say from a delivered
/// one), verifies but does not make that message the first one: the bodies differ.
/// The same message again (Postfix retrying after a lost reply) is still stored once.
#[tokio::test]
async fn a_genuine_id_on_another_message_does_not_merge_it() {
    let f = fixture();
    f.store
        .set_origin_state("main", OutageState::Outage, "test", true)
        .unwrap();
    let id = f.store.keyring().new_lifeboat_id().to_string();
    for subject in ["first", "second", "second"] {
        let lines = session(&f, delivery(&id, subject).as_bytes()).await;
        assert_eq!(
            codes(&lines),
            ["220", "250", "250", "250", "354", "250", "221"]
        );
    }
    let stored = alice_inbox(&f);
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert!(stored[0].contains("Subject: first") && stored[1].contains("Subject: second"));
}
