//! The fallback listener's delivery: at most one copy per (user, X-Lifeboat-ID).

mod common;

use lifeboat_mailstore::{Class, DivertOutcome, NewMessage, synthetic};

use common::{address, inbox, store_with_user};

fn copy(owner: &str, class: Class, rcpts: &[&str]) -> NewMessage {
    let mut message = NewMessage::new(address(owner), "INBOX", synthetic::message(5), class);
    message.envelope_from = Some("sender@else.test".into());
    message.envelope_to = rcpts.iter().map(|r| address(r)).collect();
    message.lifeboat_id = Some("lb-1".into());
    message
}

#[test]
fn fallback_upgrades_the_journal_copy_in_place_and_never_stores_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (store, owner) = store_with_user(dir.path(), "u@example.test");
    store.lock_for_delivery().unwrap();
    let journal = store
        .deliver(copy("u@example.test", Class::Journal, &["u@example.test"]))
        .unwrap();

    let DivertOutcome::Upgraded(upgraded) = store
        .deliver_diverted(copy("u@example.test", Class::Diverted, &["u@example.test"]))
        .unwrap()
    else {
        panic!("the journal copy should have been upgraded")
    };
    assert_eq!(upgraded.uid, journal.uid, "same message, same UID");
    assert!(!journal.path.exists(), "the journal file is replaced");
    let content = std::fs::read(&upgraded.path).unwrap();
    assert!(content.starts_with(b"Return-Path: <sender@else.test>\r\nDelivered-To: u@example.test\r\nX-Lifeboat-Class: diverted\r\nFrom:"));
    assert_eq!(synthetic::verify(&content), Some(5));

    assert_eq!(
        store
            .deliver_diverted(copy("u@example.test", Class::Diverted, &["u@example.test"]))
            .unwrap(),
        DivertOutcome::AlreadyDiverted
    );
    let (_, messages) = inbox(&store, &owner);
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].class, Class::Diverted);
    assert_eq!(messages[0].replay_state.as_deref(), Some("pending"));
    assert!(store.check(false).unwrap().is_consistent());
}

#[test]
fn a_later_retry_for_another_alias_joins_the_replay_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let (store, owner) = store_with_user(dir.path(), "u@example.test");
    store
        .add_alias(&address("info@example.test"), &owner)
        .unwrap();
    store.lock_for_delivery().unwrap();
    store
        .deliver_diverted(copy("u@example.test", Class::Diverted, &["u@example.test"]))
        .unwrap();
    assert_eq!(
        store
            .deliver_diverted(copy(
                "u@example.test",
                Class::Diverted,
                &["info@example.test"]
            ))
            .unwrap(),
        DivertOutcome::AlreadyDiverted
    );
    let (_, messages) = inbox(&store, &owner);
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0].envelope_to,
        ["u@example.test", "info@example.test"]
    );
}
