//! Lifeboat: email continuity for Postfix. This crate holds the `lifeboat` command line,
//! the configuration, the admin commands, `serve` (which wires the capture paths, the
//! origin watch and the user-facing servers together), the fallback listener, notices
//! and metrics. The store core lives in `lifeboat-mailstore`, the milter in
//! `lifeboat-milter`, the IMAP, POP3 and submission servers in `lifeboat-servers`; see
//! `docs/design.md`.

pub mod cli;
pub mod commands;
pub mod config;
pub mod directory_sync;
pub mod exit;
pub mod fallback;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod origin_watch;
pub mod privileges;
pub mod readiness;
pub mod serve;
pub mod serve_report;

use cli::{Cli, Command, ConfigCommand};
use commands::{directory, expire, load, open_store, outage, store, users};
use exit::CommandResult;

/// Runs one `lifeboat` command line.
pub fn run(cli: Cli) -> CommandResult {
    match cli.command {
        Command::Config(ConfigCommand::Check) => commands::check_config(&cli.config),
        Command::User(command) => users::user(&load(&cli.config)?, command),
        Command::Alias(command) => users::alias(&load(&cli.config)?, command),
        Command::Store(command) => store::store(&load(&cli.config)?, command),
        Command::Outage(command) => outage::outage(&load(&cli.config)?, command),
        Command::Status { json } => outage::status(&load(&cli.config)?, json),
        Command::Serve => serve::run(&cli.config),
        Command::Replay { dry_run } => {
            let config = load(&cli.config)?;
            let store = open_store(&config)?;
            commands::replay::run(&config, store, dry_run)
        }
        Command::Expire => expire::expire(&load(&cli.config)?),
        Command::Directory(command) => directory::directory(&load(&cli.config)?, command),
    }
}
