//! Invariant 1, "nothing lost": a writer killed with SIGKILL at random points never
//! loses a message whose delivery returned, and never leaves index and disk disagreeing.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use rand::Rng;

use common::{inbox, store_with_user};
use lifeboat_mailstore::synthetic;

const ROUNDS: u64 = 25;

#[test]
fn sigkill_at_random_points_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (store, owner) = store_with_user(dir.path(), "victim@example.test");
    drop(store);

    let mut acknowledged = BTreeSet::new();
    let mut rng = rand::rng();
    for round in 0..ROUNDS {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lifeboat-store-writer"))
            .args([dir.path().to_str().unwrap(), owner.as_str()])
            .arg((round * 1_000_000).to_string())
            .arg("1000000")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (acks, acked) = mpsc::channel();
        let reading = thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(seq) = line.strip_prefix("stored ") {
                    let _ = acks.send(seq.parse::<u64>().unwrap());
                }
            }
        });
        thread::sleep(Duration::from_millis(rng.random_range(20..250)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reading.join().unwrap();
        acknowledged.extend(acked.try_iter());
    }
    assert!(
        acknowledged.len() > ROUNDS as usize,
        "the writer barely wrote: {}",
        acknowledged.len()
    );

    let store = lifeboat_mailstore::Store::open(dir.path(), "test.host").unwrap();
    let report = store.check(false).unwrap();
    assert!(
        report.is_consistent(),
        "after the kills: {:?}",
        report.problems
    );
    let recovery = report
        .recovery
        .expect("no other process holds the delivery lock");
    eprintln!(
        "{ROUNDS} kills: {} deliveries acknowledged; interrupted deliveries: {} completed, {} removed",
        acknowledged.len(),
        recovery.completed,
        recovery.removed
    );

    let (_, messages) = inbox(&store, &owner);
    let mut present = BTreeSet::new();
    let mut last_uid = 0;
    for message in &messages {
        assert!(message.uid > last_uid, "UIDs must strictly increase");
        last_uid = message.uid;
        let content = std::fs::read(store.message_path(&owner, "INBOX", message)).unwrap();
        let seq = synthetic::verify(&content)
            .unwrap_or_else(|| panic!("torn message UID {}", message.uid));
        assert!(present.insert(seq), "message {seq} stored twice");
    }
    let lost: Vec<_> = acknowledged.difference(&present).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
}
