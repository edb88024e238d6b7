//! `lifeboat expire`: removes journal and replayed copies older than `history_days`.
//!
//! Expiry deletes messages, so it needs the store's delivery lock, which `lifeboat serve`
//! holds while it runs. `serve` therefore expires by itself, once at start and then once a
//! day ([`run_daily`]); the command is for a store no `serve` is running on, and exits 75
//! (try later) when `serve` holds the lock.

use std::time::Duration;

use lifeboat_mailstore::{Error, ExpireReport, Store};

use super::open_store;
use crate::config::Config;
use crate::exit::{self, CommandResult, Failure};

const DAY: i64 = 86_400;

pub fn expire(config: &Config) -> CommandResult {
    let store = open_store(config)?;
    match store.lock_for_delivery() {
        Ok(_) => {}
        Err(Error::DeliveryLocked(_)) => {
            return Err(Failure::new(
                exit::TEMPFAIL,
                "lifeboat serve is running on this store; it expires old copies itself once a day",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    let report = run_once(&store, config.history_days)?;
    for ((user, class), count) in &report.removed {
        println!("{user}: {count} {class} copies removed");
    }
    if report.purged > 0 {
        println!(
            "{} deleted copies removed after replay delivered them",
            report.purged
        );
    }
    println!(
        "{} copies older than {} days removed",
        report.total(),
        config.history_days
    );
    Ok(())
}

/// Expires copies older than `history_days` days and logs what went.
pub fn run_once(store: &Store, history_days: u32) -> Result<ExpireReport, Failure> {
    let cutoff = lifeboat_mailstore::store::now() - i64::from(history_days) * DAY;
    let report = store.expire(cutoff)?;
    for ((user, class), count) in &report.removed {
        tracing::info!(user = %user, class = %class, count, "expired old copies");
    }
    tracing::info!(
        removed = report.total(),
        purged = report.purged,
        history_days,
        "expiry done"
    );
    Ok(report)
}

/// `serve`'s expiry: once now, then every 24 hours until `stopped` turns true. Failures
/// are logged and retried the next day.
pub async fn run_daily(
    store: Store,
    history_days: u32,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let store = store.clone();
        match tokio::task::spawn_blocking(move || run_once(&store, history_days)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "expiry failed; retrying in a day"),
            Err(e) => tracing::error!(error = %e, "expiry task failed; retrying in a day"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(DAY as u64)) => {}
            _ = stopped.changed() => return,
        }
        if *stopped.borrow() {
            return;
        }
    }
}
