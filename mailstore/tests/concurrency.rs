//! Concurrent writers and readers: no UID is ever reused or reassigned, and no reader
//! sees a message whose file is incomplete.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use lifeboat_mailstore::{Class, NewMessage, synthetic};

use common::{inbox, store_with_user};

const WRITERS: u64 = 4;
const PER_WRITER: u64 = 150;

#[test]
fn writers_and_readers_never_see_reused_uids_or_torn_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (store, owner) = store_with_user(dir.path(), "busy@example.test");
    store.lock_for_delivery().unwrap();
    let done = Arc::new(AtomicBool::new(false));

    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (store, owner, done) = (store.clone(), owner.clone(), done.clone());
            thread::spawn(move || {
                let mut seen: HashMap<u32, u64> = HashMap::new();
                let mut listings = 0;
                while !done.load(Ordering::Relaxed) || listings == 0 {
                    let (_, messages) = inbox(&store, &owner);
                    let mut last = 0;
                    for m in &messages {
                        assert!(m.uid > last, "listing not in strictly increasing UID order");
                        last = m.uid;
                        let content =
                            std::fs::read(store.message_path(&owner, "INBOX", m)).unwrap();
                        let seq = synthetic::verify(&content)
                            .unwrap_or_else(|| panic!("torn message UID {}", m.uid));
                        let earlier = *seen.entry(m.uid).or_insert(seq);
                        assert_eq!(earlier, seq, "UID {} reassigned", m.uid);
                    }
                    listings += 1;
                }
                listings
            })
        })
        .collect();

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, owner) = (store.clone(), owner.clone());
            thread::spawn(move || {
                let mut uids = Vec::new();
                for i in 0..PER_WRITER {
                    let seq = w * 1000 + i;
                    let stored = store
                        .deliver(NewMessage::new(
                            owner.clone(),
                            "INBOX",
                            synthetic::message(seq),
                            Class::Journal,
                        ))
                        .unwrap();
                    uids.push(stored.uid);
                }
                uids
            })
        })
        .collect();

    let mut all_uids: Vec<u32> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    done.store(true, Ordering::Relaxed);
    for reader in readers {
        assert!(reader.join().unwrap() > 0);
    }
    all_uids.sort();
    let total = (WRITERS * PER_WRITER) as u32;
    assert_eq!(
        all_uids,
        (1..=total).collect::<Vec<_>>(),
        "each UID handed out exactly once"
    );
    let (_, messages) = inbox(&store, &owner);
    assert_eq!(messages.len() as u32, total);
    assert!(store.check(false).unwrap().is_consistent());
}
