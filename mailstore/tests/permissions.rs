//! Everything the store creates is owner-only, whatever the umask of the process that
//! created it (an admin's shell usually has 022). Its own test binary: the umask is
//! per process.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use lifeboat_mailstore::{Class, NewMessage};

use common::{address, store_with_user};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every file and directory under `dir`, itself included.
fn walk(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    found.push(dir.to_path_buf());
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, found);
        } else {
            found.push(path);
        }
    }
}

#[test]
fn with_umask_022_nothing_in_the_store_is_readable_by_others() {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let parent = tempfile::tempdir().unwrap();
    let data_dir = parent.path().join("data");
    let (store, owner) = store_with_user(&data_dir, "u@example.test");
    store.lock_for_delivery().unwrap();
    let mut message = NewMessage::new(
        owner.clone(),
        "INBOX",
        b"Subject: s\r\n\r\nbody\r\n".to_vec(),
        Class::Diverted,
    );
    message.envelope_from = Some("s@else.test".into());
    message.envelope_to = vec![address("u@example.test")];
    store.deliver(message).unwrap();
    store.create_mailbox(&owner, "Projects").unwrap();

    let mut found = Vec::new();
    walk(&data_dir, &mut found);
    for name in [
        "index.sqlite",
        "index.sqlite-wal",
        "delivery.lock",
        "lifeboat.key",
    ] {
        assert!(
            found.contains(&data_dir.join(name)),
            "{name} is missing: {found:?}"
        );
    }
    assert!(found.len() > 20, "a Maildir with folders: {found:?}");
    for path in &found {
        let expected = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(path), expected, "{}", path.display());
    }
}
