//! The fallback listener's delivery: at most one copy per user and message (same
//! X-Lifeboat-ID, same body).

mod common;

use std::sync::LazyLock;

use lifeboat_mailstore::{Class, DivertOutcome, Keyring, LifeboatId, NewMessage, synthetic};

use common::{address, inbox, store_with_user};

/// Ids as a milter makes them (the store trusts the type; the fallback listener checks
/// a field's value with the store's key before it makes one).
static IDS: LazyLock<Vec<LifeboatId>> = LazyLock::new(|| {
    let keyring = Keyring::from_bytes(&[9; 32]);
    (0..3).map(|_| keyring.new_lifeboat_id()).collect()
});

fn copy(owner: &str, class: Class, rcpts: &[&str]) -> NewMessage {
    copy_of(5, owner, class, rcpts)
}

/// A copy of synthetic message `n`, all with the same X-Lifeboat-ID.
fn copy_of(n: u64, owner: &str, class: Class, rcpts: &[&str]) -> NewMessage {
    let mut message = NewMessage::new(address(owner), "INBOX", synthetic::message(n), class);
    message.envelope_from = Some("sender@else.test".into());
    message.envelope_to = rcpts.iter().map(|r| address(r)).collect();
    message.lifeboat_id = Some(IDS[0].clone());
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
    assert!(content.starts_with(b"Return-Path: <sender@else.test>\r\nDelivered-To: u@example.test\r\nX-Lifeboat-Class: diverted\r\nX-Lifeboat-Trace: "));
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

/// The milter writes journal copies in the background, so the fallback listener may have
/// stored the diverted copy of a message before its journal copy is written.
#[test]
fn a_journal_copy_written_after_the_diverted_one_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, owner) = store_with_user(dir.path(), "u@example.test");
    store.lock_for_delivery().unwrap();
    let DivertOutcome::Stored(diverted) = store
        .deliver_diverted(copy("u@example.test", Class::Diverted, &["u@example.test"]))
        .unwrap()
    else {
        panic!("nothing to upgrade: the diverted copy is stored")
    };

    let results = store.deliver_journal(vec![copy(
        "u@example.test",
        Class::Journal,
        &["u@example.test"],
    )]);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].as_ref().unwrap(), &None, "no second copy");

    let (_, messages) = inbox(&store, &owner);
    assert_eq!(messages.len(), 1);
    assert_eq!(
        (messages[0].uid, messages[0].class),
        (diverted.uid, Class::Diverted)
    );
    let report = store.check(false).unwrap();
    assert!(
        report.is_consistent(),
        "the skipped journal file is gone too: {:?}",
        report.problems
    );
}

/// The other order: the background journal copy landed first and the fallback listener
/// upgrades it; a later journal write of the same message (a copy queued twice) adds
/// nothing either.
#[test]
fn a_background_journal_copy_is_upgraded_by_the_fallback_and_never_doubled() {
    let dir = tempfile::tempdir().unwrap();
    let (store, owner) = store_with_user(dir.path(), "u@example.test");
    store.lock_for_delivery().unwrap();
    let journal = store
        .deliver_journal(vec![copy(
            "u@example.test",
            Class::Journal,
            &["u@example.test"],
        )])
        .pop()
        .unwrap()
        .unwrap()
        .expect("first copy is stored");
    let outcome = store
        .deliver_diverted(copy("u@example.test", Class::Diverted, &["u@example.test"]))
        .unwrap();
    assert!(
        matches!(&outcome, DivertOutcome::Upgraded(s) if s.uid == journal.uid),
        "{outcome:?}"
    );
    let again = store.deliver_journal(vec![copy(
        "u@example.test",
        Class::Journal,
        &["u@example.test"],
    )]);
    assert_eq!(again[0].as_ref().unwrap(), &None);
    let (_, messages) = inbox(&store, &owner);
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].class, Class::Diverted);
    assert!(store.check(false).unwrap().is_consistent());
}

/// Journal copies of one batch share a group commit and each is stored once.
#[test]
fn a_journal_batch_stores_each_message_once() {
    let dir = tempfile::tempdir().unwrap();
    let (store, owner) = store_with_user(dir.path(), "u@example.test");
    store.lock_for_delivery().unwrap();
    let batch: Vec<NewMessage> = (0..5)
        .map(|i| {
            let mut message = copy("u@example.test", Class::Journal, &["u@example.test"]);
            // Messages 3 and 4 repeat message 2's X-Lifeboat-ID.
            message.lifeboat_id = Some(IDS[i.min(2)].clone());
            message
        })
        .collect();
    let stored: Vec<bool> = store
        .deliver_journal(batch)
        .into_iter()
        .map(|r| r.unwrap().is_some())
        .collect();
    assert_eq!(stored, [true, true, true, false, false]);
    assert_eq!(inbox(&store, &owner).1.len(), 3);
    assert!(store.check(false).unwrap().is_consistent());
}

/// A journal copy torn by a crash (not fsynced) is not what the fallback keeps: the
/// message Postfix hands over is whole, and it replaces the torn bytes.
#[test]
fn upgrading_a_torn_journal_copy_keeps_the_message_postfix_handed_over() {
    let dir = tempfile::tempdir().unwrap();
    let (store, owner) = store_with_user(dir.path(), "u@example.test");
    store.lock_for_delivery().unwrap();
    let journal = store
        .deliver_journal(vec![copy(
            "u@example.test",
            Class::Journal,
            &["u@example.test"],
        )])
        .pop()
        .unwrap()
        .unwrap()
        .unwrap();
    std::fs::write(&journal.path, b"Return-Path: <sender@else.test>\r\n").unwrap();

    let DivertOutcome::Upgraded(upgraded) = store
        .deliver_diverted(copy("u@example.test", Class::Diverted, &["u@example.test"]))
        .unwrap()
    else {
        panic!("the journal copy should have been upgraded")
    };
    assert_eq!(upgraded.uid, journal.uid);
    let content = std::fs::read(&upgraded.path).unwrap();
    assert_eq!(synthetic::verify(&content), Some(5), "the whole message");
    assert_eq!(inbox(&store, &owner).1.len(), 1);
    assert!(store.check(false).unwrap().is_consistent());
}

/// A journal copy whose file a crash lost (its folder was not fsynced either) is
/// upgraded from the message Postfix hands over, instead of failing every retry.
#[test]
fn upgrading_a_lost_journal_file_keeps_the_message_postfix_handed_over() {
    let dir = tempfile::tempdir().unwrap();
    let (store, owner) = store_with_user(dir.path(), "u@example.test");
    store.lock_for_delivery().unwrap();
    let journal = store
        .deliver_journal(vec![copy(
            "u@example.test",
            Class::Journal,
            &["u@example.test"],
        )])
        .pop()
        .unwrap()
        .unwrap()
        .unwrap();
    std::fs::remove_file(&journal.path).unwrap();

    let DivertOutcome::Upgraded(upgraded) = store
        .deliver_diverted(copy("u@example.test", Class::Diverted, &["u@example.test"]))
        .unwrap()
    else {
        panic!("the journal copy should have been upgraded")
    };
    assert_eq!(upgraded.uid, journal.uid);
    let content = std::fs::read(&upgraded.path).unwrap();
    assert_eq!(synthetic::verify(&content), Some(5));
    assert_eq!(inbox(&store, &owner).1.len(), 1);
    assert!(store.check(false).unwrap().is_consistent());
}

/// A crash can keep a journal file's length and lose its contents (the blocks were never
/// written back): the upgrade must not keep those bytes, whatever their length.
#[test]
fn upgrading_a_zeroed_journal_copy_of_the_right_length_keeps_postfix_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (store, owner) = store_with_user(dir.path(), "u@example.test");
    store.lock_for_delivery().unwrap();
    let journal = store
        .deliver_journal(vec![copy(
            "u@example.test",
            Class::Journal,
            &["u@example.test"],
        )])
        .pop()
        .unwrap()
        .unwrap()
        .unwrap();
    let length = std::fs::metadata(&journal.path).unwrap().len() as usize;
    std::fs::write(&journal.path, vec![0u8; length]).unwrap();

    let DivertOutcome::Upgraded(upgraded) = store
        .deliver_diverted(copy("u@example.test", Class::Diverted, &["u@example.test"]))
        .unwrap()
    else {
        panic!("the journal copy should have been upgraded")
    };
    assert_eq!(upgraded.uid, journal.uid);
    let content = std::fs::read(&upgraded.path).unwrap();
    assert!(!content.contains(&0), "no NUL bytes survive");
    assert_eq!(synthetic::verify(&content), Some(5), "the whole message");
    assert_eq!(inbox(&store, &owner).1.len(), 1);
}

/// An X-Lifeboat-ID makes two messages one only when their bodies match too: a message
/// carrying another's id (copied from a delivered message) is stored as itself, next to
/// a journal copy or a diverted copy of the other.
#[test]
fn another_message_with_the_same_id_is_stored_not_merged() {
    let dir = tempfile::tempdir().unwrap();
    let (store, owner) = store_with_user(dir.path(), "u@example.test");
    store.lock_for_delivery().unwrap();
    store
        .deliver_journal(vec![copy_of(
            1,
            "u@example.test",
            Class::Journal,
            &["u@example.test"],
        )])
        .pop()
        .unwrap()
        .unwrap()
        .unwrap();
    for n in [2, 3] {
        let outcome = store
            .deliver_diverted(copy_of(
                n,
                "u@example.test",
                Class::Diverted,
                &["u@example.test"],
            ))
            .unwrap();
        assert!(matches!(outcome, DivertOutcome::Stored(_)), "{outcome:?}");
    }
    // The same message again (Postfix retrying) is still recognised.
    assert_eq!(
        store
            .deliver_diverted(copy_of(
                3,
                "u@example.test",
                Class::Diverted,
                &["u@example.test"]
            ))
            .unwrap(),
        DivertOutcome::AlreadyDiverted
    );
    let (_, messages) = inbox(&store, &owner);
    let classes: Vec<Class> = messages.iter().map(|m| m.class).collect();
    assert_eq!(classes, [Class::Journal, Class::Diverted, Class::Diverted]);
    let bodies: Vec<Option<u64>> = messages
        .iter()
        .map(|m| {
            let path = store.message_path(&owner, "INBOX", m);
            synthetic::verify(&std::fs::read(path).unwrap())
        })
        .collect();
    assert_eq!(bodies, [Some(1), Some(2), Some(3)]);
}
