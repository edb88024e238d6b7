//! `lifeboat directory sync [--dry-run]`.

use super::open_store;
use crate::cli::DirectoryCommand;
use crate::config::Config;
use crate::directory_sync::{SyncFailure, describe, sync_once};
use crate::exit::{CommandResult, Failure, TEMPFAIL};

pub fn directory(config: &Config, command: DirectoryCommand) -> CommandResult {
    let DirectoryCommand::Sync { dry_run } = command;
    if config.directory.url.is_none() {
        return Err(Failure::failed(format!(
            "no [directory] url in {}",
            config.path.display()
        )));
    }
    let store = open_store(config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::failed(format!("starting the runtime: {e}")))?;
    let changes = runtime
        .block_on(sync_once(&store, config, !dry_run))
        .map_err(|failure| match failure {
            SyncFailure::Directory(e) => Failure::new(
                TEMPFAIL,
                format!("{e}; nothing changed, the last good sync stands"),
            ),
            other => Failure::failed(other.to_string()),
        })?;
    let verb = if dry_run { "would " } else { "" };
    for change in &changes.changes {
        println!("{verb}{}", describe(change));
    }
    for skipped in &changes.skipped {
        println!("{verb}skip     {}: {}", skipped.dn, skipped.reason);
    }
    println!(
        "{}{} added, {} changed, {} disabled, {} skipped, {} unchanged",
        if dry_run {
            "dry run, nothing changed: "
        } else {
            ""
        },
        changes.added(),
        changes.changed(),
        changes.disabled(),
        changes.skipped.len(),
        changes.unchanged
    );
    Ok(())
}
