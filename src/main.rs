use std::process::ExitCode;

use clap::Parser;
use lifeboat::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Admin commands log warnings and errors to stderr; LIFEBOAT_LOG overrides.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LIFEBOAT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match lifeboat::commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("lifeboat: {failure}");
            ExitCode::from(failure.code)
        }
    }
}
