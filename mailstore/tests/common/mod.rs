#![allow(dead_code)] // each test binary uses part of this

use std::path::Path;

use lifeboat_mailstore::{Address, MessageRecord, NewUser, Store, password};

pub fn address(text: &str) -> Address {
    Address::parse(text).unwrap()
}

/// A store in `dir` with one user (no usable password: these tests never log in).
pub fn store_with_user(dir: &Path, user: &str) -> (Store, Address) {
    let store = Store::open(dir, "test.host").unwrap();
    let owner = address(user);
    store
        .add_user(NewUser {
            address: owner.clone(),
            password_hash: password::unusable(),
            aliases: Vec::new(),
            active: true,
            alternate_email: None,
        })
        .unwrap();
    (store, owner)
}

pub fn inbox(store: &Store, owner: &Address) -> (i64, Vec<MessageRecord>) {
    let reader = store.reader().unwrap();
    let user = reader.user(owner.as_str()).unwrap().unwrap();
    let mailbox = reader.mailbox(user.id, "INBOX").unwrap().unwrap();
    let messages = reader.messages(mailbox.id).unwrap();
    (mailbox.id, messages)
}
