//! One function per subcommand. Each loads what it needs, does one thing, and reports
//! failure as an [`exit::Failure`] with a documented exit status.

pub(crate) mod expire;
mod outage;
mod store;
mod users;

use lifeboat_mailstore::{Address, Store};

use crate::cli::{Cli, Command, ConfigCommand};
use crate::config::Config;
use crate::exit::{CommandResult, Failure};

pub fn run(cli: Cli) -> CommandResult {
    match cli.command {
        Command::Config(ConfigCommand::Check) => check_config(&cli.config),
        Command::User(command) => users::user(&load(&cli.config)?, command),
        Command::Alias(command) => users::alias(&load(&cli.config)?, command),
        Command::Store(command) => store::store(&load(&cli.config)?, command),
        Command::Outage(command) => outage::outage(&load(&cli.config)?, command),
        Command::Status { json } => outage::status(&load(&cli.config)?, json),
        Command::Serve => crate::serve::run(&cli.config),
        Command::Replay { dry_run } => {
            let config = load(&cli.config)?;
            let store = open_store(&config)?;
            crate::replay::run(&config, store, dry_run)
        }
        Command::Expire => expire::expire(&load(&cli.config)?),
    }
}

fn load(path: &std::path::Path) -> Result<Config, Failure> {
    Ok(Config::load(path)?)
}

fn check_config(path: &std::path::Path) -> CommandResult {
    let config = load(path)?;
    println!("{}: ok", config.path.display());
    for origin in &config.origins {
        println!(
            "  origin {}: {} for {}",
            origin.name,
            origin.address,
            origin.domains.join(", ")
        );
    }
    Ok(())
}

/// Opens the store named by the configuration. Run as root, first becomes the account
/// `serve` runs as, so files the command creates stay usable by `serve`; a missing
/// account stops the command with the same message `serve` gives.
fn open_store(config: &Config) -> Result<Store, Failure> {
    if let Some(account) = crate::serve::privileges::target(config)? {
        crate::serve::privileges::become_user(config, &account)?;
    }
    Ok(Store::open(&config.data_dir, &config.hostname)?)
}

/// Parses an address and checks its domain belongs to a configured origin.
fn protected_address(config: &Config, text: &str) -> Result<Address, Failure> {
    let address = Address::parse(text)?;
    if config.origin_for_domain(address.domain()).is_none() {
        return Err(Failure::failed(format!(
            "{address}: domain {} is not a domain of any [[origin]] in {}",
            address.domain(),
            config.path.display()
        )));
    }
    Ok(address)
}
