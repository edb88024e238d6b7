//! Arbitrary bytes from a fallback-relay client: the session must answer and end without
//! panicking, whatever arrives (commands, pipelining, DATA, garbage, huge lines).
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use lifeboat::fallback::{Fallback, Settings, run_session};
use lifeboat_mailstore::{Address, NewUser, OutageState, Routes, Store, password};
use tokio::io::AsyncReadExt;

struct World {
    _dir: tempfile::TempDir,
    fallback: Arc<Fallback>,
    runtime: tokio::runtime::Runtime,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), "fuzz.test").unwrap();
        store.lock_for_delivery().unwrap();
        store
            .add_user(NewUser {
                address: Address::parse("a@example.test").unwrap(),
                password_hash: password::unusable(),
                aliases: vec![],
                active: true,
                alternate_email: None,
            })
            .unwrap();
        store.set_origin_state("main", OutageState::Outage, "fuzz", true).unwrap();
        let domains = vec!["example.test".to_string()];
        let fallback = Fallback::new(
            store,
            Settings {
                hostname: "fuzz.test".into(),
                routes: Routes::new([("main", domains.as_slice())]),
                max_message_size: 64 * 1024,
                allowed_clients: vec![],
            },
            None,
        );
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        World { _dir: dir, fallback, runtime }
    })
}

fuzz_target!(|input: &[u8]| {
    let world = world();
    world.runtime.block_on(async {
        let (mut replies, writer) = tokio::io::duplex(1 << 20);
        let drain = tokio::spawn(async move {
            let mut out = Vec::new();
            let _ = replies.read_to_end(&mut out).await;
        });
        let stream = tokio::io::join(input, writer);
        let _ = run_session(stream, &world.fallback, Duration::from_millis(50)).await;
        let _ = drain.await;
    });
});
