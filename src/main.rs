use std::process::ExitCode;

use clap::Parser;
use lifeboat::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `serve` sets up logging from its configuration.
    if !matches!(cli.command, lifeboat::cli::Command::Serve) {
        lifeboat::logging::init_for_commands();
    }
    match lifeboat::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("lifeboat: {failure}");
            ExitCode::from(failure.code)
        }
    }
}
