//! `lifeboat store check [--repair]`.

use super::open_store;
use crate::cli::StoreCommand;
use crate::config::Config;
use crate::exit::{self, CommandResult, Failure};

pub fn store(config: &Config, command: StoreCommand) -> CommandResult {
    let StoreCommand::Check { repair } = command;
    let report = open_store(config)?.check(repair)?;
    if let Some(recovery) = report.recovery
        && recovery.completed + recovery.removed > 0
    {
        println!(
            "interrupted deliveries: {} completed, {} removed (their mail stayed with Postfix)",
            recovery.completed, recovery.removed
        );
    }
    if report.in_flight > 0 {
        println!(
            "{} deliveries in flight in `lifeboat serve`, skipped",
            report.in_flight
        );
    }
    for problem in &report.problems {
        println!("{}{problem}", if repair { "repaired: " } else { "" });
    }
    println!(
        "{} users, {} folders, {} indexed messages: {}",
        report.users,
        report.folders,
        report.messages,
        match (report.problems.len(), repair) {
            (0, _) => "consistent".to_string(),
            (n, true) => format!("{n} problems repaired"),
            (n, false) => format!("{n} problems (run with --repair to fix)"),
        }
    );
    if !report.is_consistent() && !repair {
        return Err(Failure::new(
            exit::INCONSISTENT,
            "index and Maildirs disagree",
        ));
    }
    Ok(())
}
