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

    store.check(true).unwrap();
    assert!(store.check(false).unwrap().is_consistent());
    let (_, messages) = inbox(&store, &owner);
    let uids: Vec<_> = messages.iter().map(|m| m.uid).collect();
    assert_eq!(
        uids,
        [1, 3, 4],
        "known UIDs kept, UID 2 never reused, the new file gets 4"
    );
    let content = fs::read(store.message_path(&owner, "INBOX", &messages[2])).unwrap();
    assert_eq!(synthetic::verify(&content), Some(9));
    assert_eq!(messages[1].flags, Flags::empty(), "the index's flags win");
    assert!(store.message_path(&owner, "INBOX", &messages[1]).exists());
}
