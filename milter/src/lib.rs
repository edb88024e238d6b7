//! Lifeboat's Postfix milter. At end of message it decides, per recipient, to journal,
//! divert or leave alone (docs/design.md, "Capture paths"): protected recipients get a
//! copy in the store; while their origin is down the copy is the only one and the
//! recipient is removed from Postfix's transaction (all of them, when none is left), but
//! only after the store said the copy is durable.
//!
//! The milter depends only on the store core (`lifeboat-mailstore`).

mod callbacks;
mod decision;
mod journal;
mod message;

use std::future::Future;
use std::io;
use std::sync::Arc;

use lifeboat_mailstore::reloadable::Reloadable;
use lifeboat_mailstore::{Routes, Store};

pub use callbacks::negotiate_with;
pub use decision::{Decision, RecipientOutcome, decide, decide_now};
pub use journal::JOURNAL_QUEUE_BYTES;
use journal::JournalQueue;
pub use message::{Message, Recipient};

/// What the milter needs from the configuration; replaced as a whole on reload.
#[derive(Clone, Debug)]
pub struct Settings {
    pub routes: Routes,
    /// Larger messages are left with Postfix (and logged).
    pub max_message_size: u64,
}

/// The milter's shared state: the store, the current settings, and the queue of journal
/// copies waiting to be written.
pub struct Milter {
    store: Store,
    settings: Reloadable<Settings>,
    journal: JournalQueue,
}

impl Milter {
    pub fn new(store: Store, settings: Settings) -> Arc<Milter> {
        Arc::new(Milter {
            journal: JournalQueue::start(store.clone()),
            store,
            settings: Reloadable::new(settings),
        })
    }

    /// Returns once every journal copy queued so far is stored (or has failed). For
    /// shutdown, and for tests that look at journal copies.
    pub async fn journal_flushed(&self) {
        self.journal.flushed().await;
    }

    /// Applies new settings to every message that ends from now on.
    pub fn reload(&self, settings: Settings) {
        self.settings.replace(settings);
    }

    pub fn settings(&self) -> Arc<Settings> {
        self.settings.get()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }
}

/// Serves milter connections from `listener` until `shutdown` completes, at most
/// `max_connections` at once (more wait in the listen queue).
pub async fn run(
    listener: impl indymilter::Listener,
    milter: Arc<Milter>,
    max_connections: usize,
    shutdown: impl Future,
) -> io::Result<()> {
    let config = indymilter::Config {
        max_connections,
        ..Default::default()
    };
    indymilter::run(listener, callbacks::callbacks(milter), config, shutdown).await
}
