//! One directory sync: read the directory (`lifeboat-directory`), then apply the listing
//! to the store in one transaction (`Store::sync_directory`). Used by `lifeboat
//! directory sync` and, every `sync_interval`, by `serve`.
//!
//! A directory that cannot be read changes nothing: the failure is recorded for
//! `lifeboat status` and the last good sync stands.

use std::time::Instant;

use lifeboat_directory::DirectoryError;
use lifeboat_mailstore::directory_sync::{Change, SyncChanges};
use lifeboat_mailstore::{Store, store::now};
use tokio::task::spawn_blocking;

use crate::config::Config;

/// Why a sync changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum SyncFailure {
    #[error("no [directory] url is configured")]
    NotConfigured,
    /// The directory could not be read; the store is as it was.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error("store: {0}")]
    Store(#[from] lifeboat_mailstore::Error),
}

/// Runs one sync; with `apply` false (a dry run) nothing is changed or recorded.
pub async fn sync_once(
    store: &Store,
    config: &Config,
    apply: bool,
) -> Result<SyncChanges, SyncFailure> {
    let settings = config
        .directory
        .settings()
        .ok_or(SyncFailure::NotConfigured)?;
    let domains: Vec<String> = config
        .origins
        .iter()
        .flat_map(|o| o.domains.iter().cloned())
        .collect();
    let started_at = now();
    let clock = Instant::now();
    let listing = lifeboat_directory::list_users(&settings, &domains).await;
    let elapsed_ms = || clock.elapsed().as_millis() as i64;
    let listing = match listing {
        Ok(listing) => listing,
        Err(error) => {
            tracing::error!(error = %error, "directory sync failed; nothing changed");
            if apply {
                let (store, message) = (store.clone(), error.to_string());
                let ms = elapsed_ms();
                let _ =
                    spawn_blocking(move || store.record_failed_sync(started_at, ms, message)).await;
            }
            return Err(error.into());
        }
    };
    let read_ms = elapsed_ms();
    let store = store.clone();
    let changes = spawn_blocking(move || store.sync_directory(listing, apply, started_at, read_ms))
        .await
        .map_err(|e| lifeboat_mailstore::Error::Refused(e.to_string()))??;
    log(&changes, apply, clock.elapsed().as_millis());
    Ok(changes)
}

fn log(changes: &SyncChanges, applied: bool, ms: u128) {
    for change in &changes.changes {
        tracing::info!(applied, change = %describe(change), "directory sync");
    }
    for skipped in &changes.skipped {
        tracing::warn!(dn = %skipped.dn, reason = %skipped.reason, "directory sync skipped an entry");
    }
    tracing::info!(
        applied,
        added = changes.added(),
        changed = changes.changed(),
        disabled = changes.disabled(),
        skipped = changes.skipped.len(),
        unchanged = changes.unchanged,
        ms,
        "directory sync done"
    );
}

/// One line per change, as `directory sync` prints it.
pub fn describe(change: &Change) -> String {
    match change {
        Change::Added {
            address,
            active: true,
        } => format!("add      {address}"),
        Change::Added {
            address,
            active: false,
        } => format!("add      {address} (disabled)"),
        Change::Updated { address, fields } => format!("change   {address}: {}", fields.join(", ")),
        Change::Enabled { address } => format!("enable   {address}"),
        Change::Disabled { address, why } => format!("disable  {address}: {}", why.as_str()),
    }
}

/// Runs a sync now and then every `sync_interval` until `stopped`, inside `serve`.
pub async fn run_periodically(
    store: Store,
    config: Config,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        // Failures are logged and recorded by sync_once; the next round tries again.
        let _ = sync_once(&store, &config, true).await;
        tokio::select! {
            _ = stopped.changed() => return,
            () = tokio::time::sleep(config.directory.sync_interval) => {}
        }
    }
}
