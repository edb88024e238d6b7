//! `store check --repair`: rebuilding the index from the Maildirs.

mod common;

use std::fs;

use lifeboat_mailstore::check::Problem;
use lifeboat_mailstore::{Class, Flags, NewMessage, Store, synthetic};

use common::{address, inbox, store_with_user};

#[test]
fn rebuilds_a_deleted_index_from_the_maildirs() {
    let dir = tempfile::tempdir().unwrap();
    let (store, owner) = store_with_user(dir.path(), "alice@example.test");
    store.lock_for_delivery().unwrap();
    let mut journal = NewMessage::new(
        owner.clone(),
        "INBOX",
        synthetic::message(1),
        Class::Journal,
    );
    journal.envelope_from = Some("sender@else.test".into());
    journal.envelope_to = vec![owner.clone()];
    store.deliver(journal).unwrap();
    let mut diverted = NewMessage::new(
        owner.clone(),
        "INBOX",
        synthetic::message(2),
        Class::Diverted,
    );
    diverted.envelope_from = Some("".into());
    diverted.envelope_to = vec![address("sales@example.test")];
    diverted.flags = Flags::SEEN;
    store.deliver(diverted).unwrap();
    store
        .deliver(NewMessage::new(
            owner.clone(),
            "Sent",
            synthetic::message(3),
            Class::Sent,
        ))
        .unwrap();
    let old_uidvalidity = {
        let reader = store.reader().unwrap();
        let user = reader.user(owner.as_str()).unwrap().unwrap();
        reader
            .mailbox(user.id, "INBOX")
            .unwrap()
            .unwrap()
            .uidvalidity
    };
    drop(store);

    for suffix in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(dir.path().join(format!("index.sqlite{suffix}")));
    }

    let store = Store::open(dir.path(), "test.host").unwrap();
    let before = store.check(false).unwrap();
    assert!(before.problems.contains(&Problem::UnindexedUser {
        path: store.user_dir(&owner)
    }));
    assert!(!before.is_consistent());

    let repaired = store.check(true).unwrap();
    assert!(!repaired.problems.is_empty());
    let after = store.check(false).unwrap();
    assert!(
        after.is_consistent(),
        "still inconsistent: {:?}",
        after.problems
    );

    let reader = store.reader().unwrap();
    let user = reader.user(owner.as_str()).unwrap().unwrap();
    assert!(
        !user.active,
        "a recreated user stays disabled until an admin sets a password"
    );
    let names: Vec<_> = reader
        .mailboxes(user.id)
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(
        names,
        ["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"]
    );
    let inbox_box = reader.mailbox(user.id, "INBOX").unwrap().unwrap();
    assert!(
        inbox_box.uidvalidity > old_uidvalidity,
        "a rebuilt mailbox needs a new UIDVALIDITY"
    );
    assert_eq!(
        reader
            .mailbox(user.id, "Sent")
            .unwrap()
            .unwrap()
            .special_use
            .as_deref(),
        Some("\\Sent")
    );

    let (_, messages) = inbox(&store, &owner);
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].class, Class::Journal);
    assert_eq!(
        messages[0].envelope_from.as_deref(),
        Some("sender@else.test")
    );
    assert_eq!(messages[1].class, Class::Diverted);
    assert_eq!(messages[1].envelope_to, ["sales@example.test"]);
    assert_eq!(messages[1].flags, Flags::SEEN);
    assert_eq!(
        messages[1].replay_state.as_deref(),
        Some("pending"),
        "a diverted copy of unknown replay state must be replayed, not forgotten"
    );
    let sent_box = reader.mailbox(user.id, "Sent").unwrap().unwrap();
    let sent = reader.messages(sent_box.id).unwrap();
    assert_eq!((sent.len(), sent[0].class), (1, Class::Sent));
}

#[test]
fn repair_keeps_known_uids_and_indexes_unknown_files_after_them() {
    let dir = tempfile::tempdir().unwrap();
    let (store, owner) = store_with_user(dir.path(), "bob@example.test");
    store.lock_for_delivery().unwrap();
    let stored: Vec<_> = (1..=3)
        .map(|seq| {
            store
                .deliver(NewMessage::new(
                    owner.clone(),
                    "INBOX",
                    synthetic::message(seq),
                    Class::Journal,
                ))
                .unwrap()
        })
        .collect();
    // A file vanishes, another arrives behind the index's back (an admin's copy into new/),
    // and one file's flags are changed on disk.
    fs::remove_file(&stored[1].path).unwrap();
    let foreign = store
        .user_dir(&owner)
        .join("new")
        .join("1700000000.M1P1.elsewhere,S=10");
    fs::write(&foreign, synthetic::message(9)).unwrap();
    let flagged = stored[2].path.with_file_name(
        stored[2]
            .path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .replace(":2,", ":2,F"),
    );
    fs::rename(&stored[2].path, &flagged).unwrap();

    let report = store.check(false).unwrap();
    assert_eq!(report.problems.len(), 3, "{:?}", report.problems);
    assert!(report.problems.iter().any(|p| matches!(
        p,
        Problem::MissingFile {
            uid: 2,
            unreplayed: false,
            ..
        }
    )));

    let (inbox_id, _) = inbox(&store, &owner);
    let reader = store.reader().unwrap();
    let before = reader
        .mailbox_by_id(inbox_id)
        .unwrap()
        .unwrap()
        .highest_modseq;
    store.check(true).unwrap();
    assert!(store.check(false).unwrap().is_consistent());
    let (_, messages) = inbox(&store, &owner);
    let uids: Vec<_> = messages.iter().map(|m| m.uid).collect();
    assert_eq!(
        uids,
        [1, 3, 4],
        "known UIDs kept, UID 2 never reused, the new file gets 4"
    );
    // The row repair dropped is an expunge IMAP clients hear of, QRESYNC ones later too.
    assert_eq!(
        reader.expunged_since(inbox_id, before).unwrap(),
        Some(vec![2])
    );
    let content = fs::read(store.message_path(&owner, "INBOX", &messages[2])).unwrap();
    assert_eq!(synthetic::verify(&content), Some(9));
    assert_eq!(messages[1].flags, Flags::empty(), "the index's flags win");
    assert!(store.message_path(&owner, "INBOX", &messages[1]).exists());
}

/// Journal copies are not fsynced (Postfix still delivers the message), so a crash can
/// leave one shorter than its name's `S=` says: check finds it, repair removes it.
#[test]
fn a_torn_journal_copy_is_found_by_check_and_removed_by_repair() {
    let dir = tempfile::tempdir().unwrap();
    let (store, owner) = store_with_user(dir.path(), "alice@example.test");
    store.lock_for_delivery().unwrap();
    let journal = |n: u64| {
        let mut message = NewMessage::new(
            owner.clone(),
            "INBOX",
            synthetic::message(n),
            Class::Journal,
        );
        message.envelope_from = Some("sender@else.test".into());
        message.envelope_to = vec![owner.clone()];
        message.lifeboat_id = Some(store.keyring().new_lifeboat_id());
        message
    };
    let stored: Vec<_> = store
        .deliver_journal(vec![journal(1), journal(2)])
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    // What an unflushed write looks like after a power cut: the name, part of the bytes.
    let torn = &stored[0].path;
    let whole = fs::read(torn).unwrap();
    fs::write(torn, &whole[..whole.len() / 3]).unwrap();

    let report = store.check(false).unwrap();
    assert_eq!(
        report.problems,
        [Problem::TornFile {
            path: torn.clone(),
            class: Class::Journal,
            expected: whole.len() as u64,
            actual: (whole.len() / 3) as u64,
        }]
    );
    let repaired = store.check(true).unwrap();
    assert_eq!(repaired.problems.len(), 1);
    assert!(!torn.exists());
    let (_, messages) = inbox(&store, &owner);
    assert_eq!(messages.len(), 1, "the whole copy stays");
    assert_eq!(messages[0].uid, stored[1].uid);
    assert!(store.check(false).unwrap().is_consistent());
}

/// Durable copies are fsynced, so a torn one means the disk lost data: it is reported,
/// never deleted by repair.
#[test]
fn a_torn_diverted_copy_is_reported_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (store, owner) = store_with_user(dir.path(), "alice@example.test");
    store.lock_for_delivery().unwrap();
    let mut diverted = NewMessage::new(
        owner.clone(),
        "INBOX",
        synthetic::message(1),
        Class::Diverted,
    );
    diverted.envelope_from = Some("sender@else.test".into());
    diverted.envelope_to = vec![owner.clone()];
    let stored = store.deliver(diverted).unwrap();
    let whole = fs::read(&stored.path).unwrap();
    fs::write(&stored.path, &whole[..10]).unwrap();

    let report = store.check(true).unwrap();
    assert!(
        matches!(
            &report.problems[..],
            [Problem::TornFile {
                class: Class::Diverted,
                ..
            }]
        ),
        "{:?}",
        report.problems
    );
    assert!(
        report.problems[0]
            .to_string()
            .contains("NOT A JOURNAL COPY")
    );
    assert!(stored.path.exists());
    assert_eq!(inbox(&store, &owner).1.len(), 1);
}

/// Drops the index (all of it) and rebuilds it from the Maildirs; returns the repaired
/// store.
fn lose_index_and_repair(dir: &std::path::Path, store: Store) -> Store {
    drop(store);
    // The writer thread closes its connection after the store is dropped, and closing
    // the last connection checkpoints and deletes the WAL: removing the files before it
    // has done so lets it write into the new index (SQLite then reports a short read).
    let wal = dir.join("index.sqlite-wal");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while wal.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(dir.join(format!("index.sqlite{suffix}")));
    }
    let store = Store::open(dir, "test.host").unwrap();
    store.check(true).unwrap();
    let after = store.check(false).unwrap();
    assert!(after.is_consistent(), "{:?}", after.problems);
    store
}

/// Copies of any folder waiting for replay after a repair, as (folder, class).
fn pending(store: &Store, owner: &lifeboat_mailstore::Address) -> Vec<(String, Class)> {
    let reader = store.reader().unwrap();
    let user = reader.user(owner.as_str()).unwrap().unwrap();
    let mut found = Vec::new();
    for mailbox in reader.mailboxes(user.id).unwrap() {
        for message in reader.messages(mailbox.id).unwrap() {
            if message.replay_state.as_deref() == Some("pending") {
                found.push((mailbox.name.clone(), message.class));
            }
        }
    }
    found
}

/// Issue 12, item 18: a client's APPEND of a message that starts like a trace block
/// (here, a diverted copy "from" the CEO) was taken for a captured copy by repair and
/// replayed to the origin with that forged envelope. Its unsealed block is not trusted.
#[test]
fn an_appended_message_that_looks_like_a_trace_block_is_not_replayed_after_repair() {
    let dir = tempfile::tempdir().unwrap();
    let (store, owner) = store_with_user(dir.path(), "alice@example.test");
    store.lock_for_delivery().unwrap();
    let forged = b"X-Lifeboat-Class: diverted\r\nReturn-Path: <ceo@example.test>\r\n\
        Delivered-To: bob@example.test\r\nSubject: wire the money\r\n\r\nnow\r\n";
    // What IMAP APPEND does outside continuity.
    store
        .deliver(NewMessage::new(
            owner.clone(),
            "INBOX",
            forged.to_vec(),
            Class::Other,
        ))
        .unwrap();
    let store = lose_index_and_repair(dir.path(), store);
    assert_eq!(pending(&store, &owner), []);
    let (_, messages) = inbox(&store, &owner);
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].class, Class::Other);
    assert_eq!(messages[0].envelope_from, None);
}

/// Issue 12, item 18: COPY (and MOVE) of a diverted copy kept its trace block, so after a
/// repair the copy was replayed a second time. So is a client's APPEND of a diverted
/// copy it fetched byte for byte. The store drops a genuine block from what a delivery is
/// handed; an IMAP COPY keeps its original's bytes (issue 13: clients see the same
/// message) in a file named as a copy, which repair indexes as an `other` copy.
#[test]
fn copies_of_a_diverted_copy_are_not_replayed_again_after_repair() {
    let dir = tempfile::tempdir().unwrap();
    let (store, owner) = store_with_user(dir.path(), "alice@example.test");
    store.lock_for_delivery().unwrap();
    let mut diverted = NewMessage::new(
        owner.clone(),
        "INBOX",
        synthetic::message(7),
        Class::Diverted,
    );
    diverted.envelope_from = Some("sender@else.test".into());
    diverted.envelope_to = vec![owner.clone()];
    let original = store.deliver(diverted).unwrap();
    // What IMAP COPY and a client's re-APPEND of FETCH BODY[] hand the store.
    let bytes = fs::read(&original.path).unwrap();
    for folder in ["Archive", "Trash"] {
        let copy = store
            .deliver(NewMessage::new(
                owner.clone(),
                folder,
                bytes.clone(),
                Class::Other,
            ))
            .unwrap();
        let stored = fs::read(&copy.path).unwrap();
        assert!(
            !String::from_utf8_lossy(&stored).contains("X-Lifeboat"),
            "{}",
            String::from_utf8_lossy(&stored)
        );
        assert_eq!(synthetic::verify(&stored), Some(7));
    }
    let copy = NewMessage::new(owner.clone(), "Junk", bytes.clone(), Class::Other);
    let copied = store.copy_messages([Ok(copy)]).unwrap();
    assert_eq!(fs::read(&copied[0].path).unwrap(), bytes);
    let store = lose_index_and_repair(dir.path(), store);
    assert_eq!(
        pending(&store, &owner),
        [("INBOX".to_string(), Class::Diverted)]
    );
}
