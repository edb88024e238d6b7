//! The admin commands, one module per family; [`crate::run`] dispatches to them. Each
//! loads what it needs, does one thing, and reports failure as an [`exit::Failure`] with
//! a documented exit status.

pub mod directory;
pub mod expire;
pub mod import;
pub mod invite;
pub mod outage;
pub mod replay;
pub mod store;
pub mod users;

use lifeboat_mailstore::{Address, Store};

use crate::config::Config;
use crate::exit::{CommandResult, Failure};

pub(crate) fn load(path: &std::path::Path) -> Result<Config, Failure> {
    Ok(Config::load(path)?)
}

pub(crate) fn check_config(path: &std::path::Path) -> CommandResult {
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
pub(crate) fn open_store(config: &Config) -> Result<Store, Failure> {
    if let Some(account) = crate::privileges::target(config)? {
        crate::privileges::become_user(config, &account)?;
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
