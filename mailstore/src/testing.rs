//! Fixtures for the unit tests of this crate.

use crate::address::Address;
use crate::password;
use crate::store::Store;
use crate::users::NewUser;

/// A store in a new temp dir, holding the delivery lock, with one active user.
pub fn store_with_user(user: &str) -> (tempfile::TempDir, Store, Address) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), "test.host").unwrap();
    store.lock_for_delivery().unwrap();
    let address = Address::parse(user).unwrap();
    store
        .add_user(NewUser {
            address: address.clone(),
            password_hash: password::hash("pw"),
            aliases: vec![],
            active: true,
            alternate_email: None,
        })
        .unwrap();
    (dir, store, address)
}
